/* HTTP-Redirect binding signatures (see redirect_sign.h). */
#include "redirect_sign.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define SIGNATURE_MAX 1024 /* bytes: RSA-8192 */

struct redirect_signer {
	EVP_PKEY *key;
	const char *sigalg;
};

int redirect_signer_new(const char *pem, size_t len, struct redirect_signer **signer_r,
			const char **error_r)
{
	if (len > 0x7fffffff) {
		*error_r = "the private key file is too large";
		return -1;
	}
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	if (key == NULL) {
		*error_r = "cannot read the private key (PEM, unencrypted)";
		return -1;
	}
	const char *sigalg = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA  ? SIGALG_RSA_SHA256
			     : EVP_PKEY_get_base_id(key) == EVP_PKEY_EC ? SIGALG_ECDSA_SHA256
									: NULL;
	if (sigalg == NULL) {
		EVP_PKEY_free(key);
		*error_r = "the private key is neither RSA nor EC";
		return -1;
	}
	struct redirect_signer *s = xcalloc(1, sizeof(*s));
	s->key = key;
	s->sigalg = sigalg;
	*signer_r = s;
	return 0;
}

void redirect_signer_free(struct redirect_signer *signer)
{
	if (signer == NULL)
		return;
	EVP_PKEY_free(signer->key);
	free(signer);
}

char *redirect_url_encode(const unsigned char *in, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = xcalloc(1, len * 3 + 1), *o = out;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = in[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			*o++ = (char)c;
		} else {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 15];
		}
	}
	*o = '\0';
	return out;
}

char *redirect_sign_url(const struct redirect_signer *signer, const char *url,
			const char **error_r)
{
	const char *q = strchr(url, '?');
	const char *start = q != NULL ? strstr(q, "SAMLRequest=") : NULL;
	if (start == NULL && q != NULL)
		start = strstr(q, "SAMLResponse=");
	if (start == NULL || (start[-1] != '?' && start[-1] != '&') ||
	    strstr(start, "SigAlg=") != NULL || strstr(start, "Signature=") != NULL) {
		*error_r = "the Redirect URL carries no SAMLRequest or SAMLResponse, or is signed "
			   "already";
		return NULL;
	}
	char *alg = redirect_url_encode((const unsigned char *)signer->sigalg,
					strlen(signer->sigalg));
	/* What is signed: our parameters as they appear in the query, with SigAlg last. */
	char *signed_part = xasprintf("%s&SigAlg=%s", start, alg);
	free(alg);
	unsigned char sig[SIGNATURE_MAX];
	size_t sig_len = sizeof(sig);
	char *out = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, signer->key) != 1 ||
	    EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)signed_part,
			   strlen(signed_part)) != 1) {
		*error_r = "cannot sign the Redirect-binding message with the SP key";
		goto out;
	}
	char b64[(SIGNATURE_MAX + 2) / 3 * 4 + 1];
	int b64_len = EVP_EncodeBlock((unsigned char *)b64, sig, (int)sig_len);
	char *enc = redirect_url_encode((const unsigned char *)b64, (size_t)b64_len);
	out = xasprintf("%.*s%s&Signature=%s", (int)(start - url), url, signed_part, enc);
	free(enc);
out:
	EVP_MD_CTX_free(md);
	free(signed_part);
	return out;
}

int redirect_signer_sign_xml(const struct redirect_signer *signer, const unsigned char *data,
			     size_t len, unsigned char *sig, size_t *sig_len,
			     const char **sigalg_r, const char **error_r)
{
	unsigned char der[SIGNATURE_MAX];
	size_t der_len = sizeof(der);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md != NULL &&
		 EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, signer->key) == 1 &&
		 EVP_DigestSign(md, der, &der_len, data, len) == 1;
	EVP_MD_CTX_free(md);
	if (!ok) {
		*error_r = "cannot sign the XML message with the SP key";
		return -1;
	}
	if (EVP_PKEY_get_base_id(signer->key) == EVP_PKEY_RSA) {
		memcpy(sig, der, der_len);
		*sig_len = der_len;
		*sigalg_r = SIGALG_RSA_SHA256;
		return 0;
	}
	/* XML Signature wants ECDSA as r||s, each as long as the group's order. */
	const unsigned char *p = der;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
	int half = (EVP_PKEY_get_bits(signer->key) + 7) / 8;
	if (es == NULL || half <= 0 || 2 * half > REDIRECT_SIGNATURE_MAX ||
	    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, half) != half ||
	    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + half, half) != half) {
		ECDSA_SIG_free(es);
		*error_r = "cannot encode the ECDSA signature";
		return -1;
	}
	ECDSA_SIG_free(es);
	*sig_len = 2 * (size_t)half;
	*sigalg_r = SIGALG_ECDSA_SHA256;
	return 0;
}

const char *redirect_signer_alg(const struct redirect_signer *signer)
{
	return signer->sigalg;
}
