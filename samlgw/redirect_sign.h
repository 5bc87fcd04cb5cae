/* Signing messages for the SAML HTTP-Redirect binding (SAML 2.0 bindings, 3.4.4.1) with
 * the SP key, parsed once at load: SigAlg RSA-SHA256 (or ECDSA-SHA256 for an EC key) over
 * "SAMLRequest=…&RelayState=…&SigAlg=…" exactly as the query carries them. */
#ifndef SAMLGW_REDIRECT_SIGN_H
#define SAMLGW_REDIRECT_SIGN_H

#include <stddef.h>

#define SIGALG_RSA_SHA256 "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
#define SIGALG_ECDSA_SHA256 "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"

struct redirect_signer;

/* pem: the SP's private key (PEM, unencrypted, RSA or EC). Returns 0 with *signer_r, or -1
 * with *error_r (static text). */
int redirect_signer_new(const char *pem, size_t len, struct redirect_signer **signer_r,
			const char **error_r);
void redirect_signer_free(struct redirect_signer *signer);

/* url: an unsigned Redirect-binding URL, LOCATION?…SAMLRequest=…[&RelayState=…] (or
 * SAMLResponse=…) with no
 * SigAlg or Signature yet. Returns a new URL with SigAlg and Signature appended (free
 * with free()), or NULL with *error_r. Safe to call from several threads at once. */
/* in[0..len) with everything but RFC 3986 unreserved characters percent-encoded (new
 * string). */
char *redirect_url_encode(const unsigned char *in, size_t len);

char *redirect_sign_url(const struct redirect_signer *signer, const char *url,
			const char **error_r);

/* Sign data with the SP key for an XML Signature (SignedInfo's canonical form): RSA
 * PKCS#1 v1.5 or ECDSA (as r||s) with SHA-256. Returns 0 with sig[0..*sig_len) (sig must
 * hold REDIRECT_SIGNATURE_MAX bytes) and *sigalg_r (the SignatureMethod URI), or -1 with
 * *error_r. Safe to call from several threads at once. */
#define REDIRECT_SIGNATURE_MAX 1024
/* The SigAlg / SignatureMethod URI of the SP key's signatures. */
const char *redirect_signer_alg(const struct redirect_signer *signer);
int redirect_signer_sign_xml(const struct redirect_signer *signer, const unsigned char *data,
			     size_t len, unsigned char *sig, size_t *sig_len,
			     const char **sigalg_r, const char **error_r);

#endif
