/* XML signatures and encryption for samlgw (xmlsec1 with OpenSSL): verifying the enveloped
 * signature of one element against a set of trusted keys, and decrypting an EncryptedData
 * with the SP's private key. Callers register IDs first (xml_register_ids). */
#ifndef SAMLGW_XMLSIG_H
#define SAMLGW_XMLSIG_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>
#include <xmlsec/keys.h>

/* Trusted keys of one party (an IdP's signing certificates). */
struct xmlsig_keys {
	xmlSecKeyPtr *v;
	size_t n;
};

/* Add the key of a certificate given as base64 DER (an X509Certificate text).
 * Returns -1 with *error_r when it is no certificate. */
int xmlsig_keys_add_cert_b64(struct xmlsig_keys *keys, const char *b64, const char **error_r);
/* Add the key of a PEM certificate file. */
int xmlsig_keys_add_cert_file(struct xmlsig_keys *keys, const char *path, const char **error_r);
void xmlsig_keys_clear(struct xmlsig_keys *keys);

/* Verify the ds:Signature that is a direct child of elem: it must be the only one there,
 * carry exactly one Reference whose URI is "#" + elem's ID, use only the enveloped and
 * canonicalisation transforms, and verify with one of keys. SHA-1 (as digest or in the
 * signature method) is refused unless allow_sha1. Returns 0, or -1 with *error_r
 * (static text saying exactly what failed). */
int xmlsig_verify(xmlNode *elem, const struct xmlsig_keys *keys, bool allow_sha1,
		  const char **error_r);

/* The SP's decryption key. */
struct xmlsig_decryptor;
int xmlsig_decryptor_new(const char *key_pem_path, struct xmlsig_decryptor **dec_r,
			 const char **error_r);
void xmlsig_decryptor_free(struct xmlsig_decryptor *dec);

/* Decrypt enc_data (an xenc:EncryptedData element) in place: it is replaced by the
 * plaintext's nodes. Returns the first element of the plaintext, or NULL with *error_r. */
xmlNode *xmlsig_decrypt(const struct xmlsig_decryptor *dec, xmlNode *enc_data,
			const char **error_r);

#endif
