/* XML signatures for samlgw (xmlsec1 with OpenSSL): verifying the enveloped signature of
 * one element against a set of trusted keys. Callers register IDs first
 * (xml_register_ids). Decryption: xmlenc.h. */
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

#endif
