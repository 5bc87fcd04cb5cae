/* XML signatures for samlgw: verifying the enveloped signature of one element against a
 * set of trusted keys (libxml2's canonicalisation and OpenSSL, no signature context: only
 * the one shape SAML uses is accepted). Callers register IDs first (xml_register_ids).
 * Decryption: xmlenc.h. */
#ifndef SAMLGW_XMLSIG_H
#define SAMLGW_XMLSIG_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>
#include <openssl/types.h>

/* Trusted keys of one party (an IdP's signing certificates): bare public keys. */
struct xmlsig_keys {
	EVP_PKEY **v;
	size_t n;
};

/* Add the key of a certificate given as base64 DER (an X509Certificate text). RSA, EC and
 * DSA keys load (DSA never verifies). Returns -1 with *error_r when it is no certificate. */
int xmlsig_keys_add_cert_b64(struct xmlsig_keys *keys, const char *b64, const char **error_r);
/* Add the key of a PEM certificate file. */
int xmlsig_keys_add_cert_file(struct xmlsig_keys *keys, const char *path, const char **error_r);
void xmlsig_keys_clear(struct xmlsig_keys *keys);

/* Verify the ds:Signature that is a direct child of elem. Accepted, and nothing else:
 *
 *   ds:Signature            the only one among elem's children
 *     ds:SignedInfo
 *       ds:CanonicalizationMethod  C14N 1.0 or exclusive C14N (with or without comments;
 *                                  exclusive: an optional ec:InclusiveNamespaces PrefixList)
 *       ds:SignatureMethod         rsa-sha256/384/512 (PKCS#1 v1.5), ecdsa-sha256/384/512,
 *                                  rsa-sha1 only when allow_sha1
 *       ds:Reference URI="#ID"     exactly one, ID being elem's own (unique in the document)
 *         ds:Transforms?           enveloped-signature, then at most one C14N as above
 *         ds:DigestMethod          SHA-256/384/512, SHA-1 only when allow_sha1
 *         ds:DigestValue
 *     ds:SignatureValue
 *     ds:KeyInfo?              never read: the key is one of keys
 *
 * The Reference's digest is compared in constant time, then SignedInfo verified with each
 * of keys of the signature method's type until one does. Returns 0, or -1 with *error_r
 * (static text saying exactly what failed; "SHA-1" in it when SHA-1 was refused). */
int xmlsig_verify(xmlNode *elem, const struct xmlsig_keys *keys, bool allow_sha1,
		  const char **error_r);

#endif
