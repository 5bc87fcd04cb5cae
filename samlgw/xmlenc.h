/* Decryption of a SAML EncryptedAssertion with the SP's private key (XML Encryption,
 * OpenSSL directly). Only this shape is accepted; anything else is refused before any
 * private-key operation:
 *
 *   saml:EncryptedAssertion
 *     xenc:EncryptedData Type=#Element or #Content      (exactly one)
 *       xenc:EncryptionMethod  aes{128,192,256}-cbc (xmlenc) or -gcm (xmlenc11), no children
 *       ds:KeyInfo             xenc:EncryptedKey and/or ds:RetrievalMethod (Type EncryptedKey,
 *                              URI "#Id" of an EncryptedKey child of the same
 *                              EncryptedAssertion, no Transforms); other children ignored
 *       xenc:CipherData/xenc:CipherValue  (no CipherReference)
 *       xenc:EncryptionProperties?        (ignored)
 *     xenc:EncryptedKey*                   (only as targets of a RetrievalMethod)
 *
 *   xenc:EncryptedKey
 *     xenc:EncryptionMethod  rsa-oaep-mgf1p: MGF1 with SHA-1, DigestMethod absent or SHA-1,
 *                            optional OAEPparams (the label); RSA PKCS#1 v1.5 is refused
 *     ds:KeyInfo?            never read: the SP key is the only key
 *     xenc:CipherData/xenc:CipherValue
 *     xenc:ReferenceList?, xenc:CarriedKeyName?, xenc:EncryptionProperties?  (ignored)
 *
 * At most XMLENC_KEYS_MAX EncryptedKeys, tried in KeyInfo order until one decrypts (RSA-OAEP)
 * to a key of the cipher's size. AES-GCM's tag is checked before the plaintext is used;
 * AES-CBC's padding (last byte 1..16, XML Encryption's rule) after decryption. Every
 * failure after the structure checks reads alike to the caller's client (the reason is
 * the same); only the error text says more. */
#ifndef SAMLGW_XMLENC_H
#define SAMLGW_XMLENC_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

/* Caps: EncryptedKeys under one EncryptedAssertion (each costs an RSA private-key
 * operation), and the decoded CipherValue of the data. */
#define XMLENC_KEYS_MAX 4
#define XMLENC_DATA_MAX (192 * 1024)

/* The SP's private key, loaded once; used by any number of threads at once. */
struct xmlenc_key;

/* Load an unencrypted PEM private key from pem[0..len). An EC key loads too (the SP may
 * sign with one), but then nothing decrypts. Returns 0 with *key_r, or -1 with *error_r. */
int xmlenc_key_new(const char *pem, size_t len, struct xmlenc_key **key_r,
		   const char **error_r);
void xmlenc_key_free(struct xmlenc_key *key);

/* True when ea has the shape above and its data is encrypted with AES-CBC, which is not
 * authenticated: unless a signature checked before decryption covers the ciphertext, the
 * outcome of decrypting modified ciphertext tells an attacker about the plaintext (the
 * XML Encryption CBC attack). Costs no cryptography. */
bool xmlenc_is_cbc(xmlNode *ea);

/* Decrypt the EncryptedData of ea (a saml:EncryptedAssertion) in place: it is replaced by
 * the one element of the plaintext, parsed in ea's context (namespaces in scope there
 * apply; no DTD, no entities, no network). Returns that element, or NULL with *error_r
 * (static text). On failure the tree may be left half-way but stays valid. */
xmlNode *xmlenc_decrypt(struct xmlenc_key *key, xmlNode *ea, const char **error_r);

#endif
