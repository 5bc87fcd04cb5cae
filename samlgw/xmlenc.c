/* Decryption of a SAML EncryptedAssertion with OpenSSL (see xmlenc.h for the shape
 * accepted). The structure is read and checked in full first; only then is the SP key
 * used. */
#include "xmlenc.h"
#include "b64.h"
#include "xml.h"
#include "util.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#define NS_XENC11 "http://www.w3.org/2009/xmlenc11#"
#define ALG_RSA_OAEP_MGF1P NS_XENC "rsa-oaep-mgf1p"
#define ALG_SHA1 NS_DS "sha1"
#define TYPE_ELEMENT NS_XENC "Element"
#define TYPE_CONTENT NS_XENC "Content"
#define TYPE_ENCRYPTED_KEY NS_XENC "EncryptedKey"

#define GCM_IV_LEN 12
#define GCM_TAG_LEN 16
#define CBC_BLOCK 16
#define OAEP_LABEL_MAX 256
#define POOL_MAX 8

static const struct data_alg {
	const char *uri;
	const char *cipher; /* OpenSSL name */
	size_t key_len;
	bool gcm;
} data_algs[] = {
	{NS_XENC11 "aes128-gcm", "AES-128-GCM", 16, true},
	{NS_XENC11 "aes192-gcm", "AES-192-GCM", 24, true},
	{NS_XENC11 "aes256-gcm", "AES-256-GCM", 32, true},
	{NS_XENC "aes128-cbc", "AES-128-CBC", 16, false},
	{NS_XENC "aes192-cbc", "AES-192-CBC", 24, false},
	{NS_XENC "aes256-cbc", "AES-256-CBC", 32, false},
};

struct xmlenc_key {
	EVP_PKEY *pkey;
	size_t rsa_len; /* bytes of the modulus; 0 when the key is not RSA */
	EVP_MD *sha1;
	EVP_CIPHER *ciphers[ARRAY_SIZE(data_algs)];
	/* Prepared RSA-OAEP decryption contexts (no label), reused across requests: setting
	 * one up costs a provider lookup each time. */
	pthread_mutex_t lock;
	EVP_PKEY_CTX *pool[POOL_MAX];
	size_t pooled;
};

/* An unencrypted key only: never ask for a passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf, (void)size, (void)rwflag, (void)u;
	return -1;
}

int xmlenc_key_new(const char *pem, size_t len, struct xmlenc_key **key_r,
		   const char **error_r)
{
	if (len > 0x7fffffff) {
		*error_r = "the private key file is too large";
		return -1;
	}
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
				     : NULL;
	BIO_free(bio);
	ERR_clear_error();
	if (pkey == NULL) {
		*error_r = "cannot read the private key (PEM, unencrypted)";
		return -1;
	}
	struct xmlenc_key *k = xcalloc(1, sizeof(*k));
	k->pkey = pkey;
	if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA && EVP_PKEY_get_size(pkey) > 0)
		k->rsa_len = (size_t)EVP_PKEY_get_size(pkey);
	k->sha1 = EVP_MD_fetch(NULL, "SHA1", NULL);
	bool ok = k->sha1 != NULL;
	for (size_t i = 0; i < ARRAY_SIZE(data_algs); i++)
		ok = ok && (k->ciphers[i] = EVP_CIPHER_fetch(NULL, data_algs[i].cipher, NULL)) != NULL;
	pthread_mutex_init(&k->lock, NULL);
	if (!ok) {
		xmlenc_key_free(k);
		ERR_clear_error();
		*error_r = "OpenSSL lacks SHA-1 or AES-CBC/GCM";
		return -1;
	}
	*key_r = k;
	return 0;
}

void xmlenc_key_free(struct xmlenc_key *k)
{
	if (k == NULL)
		return;
	for (size_t i = 0; i < k->pooled; i++)
		EVP_PKEY_CTX_free(k->pool[i]);
	for (size_t i = 0; i < ARRAY_SIZE(data_algs); i++)
		EVP_CIPHER_free(k->ciphers[i]);
	EVP_MD_free(k->sha1);
	EVP_PKEY_free(k->pkey);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

/* ---------------------------------------------------------------- structure */

/* The next element sibling (first element child: next_el(parent->children)). */
static xmlNode *next_el(xmlNode *n)
{
	while (n != NULL && n->type != XML_ELEMENT_NODE)
		n = n->next;
	return n;
}

struct enc_key {
	xmlNode *node;
	xmlNode *cipher_value;
	xmlNode *oaep_params; /* NULL: no label */
};

struct enc_data {
	const struct data_alg *alg;
	size_t alg_index;
	xmlNode *cipher_value;
	/* EncryptedKeys to try, in KeyInfo order (pointers into keys[]). */
	struct enc_key *try[XMLENC_KEYS_MAX];
	size_t ntry;
	struct enc_key keys[XMLENC_KEYS_MAX];
	size_t nkeys;
};

/* xenc:CipherData holding exactly one xenc:CipherValue. */
static xmlNode *cipher_value(xmlNode *cd, const char *what, const char **error_r)
{
	xmlNode *cv = next_el(cd->children);
	if (cv == NULL || !xml_is(cv, NS_XENC, "CipherValue") || next_el(cv->next) != NULL) {
		*error_r = xml_child(cd, NS_XENC, "CipherReference") != NULL
				   ? "a CipherReference is not supported (CipherValue only)"
				   : what;
		return NULL;
	}
	return cv;
}

static int parse_key_method(xmlNode *m, struct enc_key *k, const char **error_r)
{
	const char *alg = xml_attr(m, "Algorithm");
	if (alg == NULL || strcmp(alg, ALG_RSA_OAEP_MGF1P) != 0) {
		*error_r = alg != NULL && strcmp(alg, NS_XENC11 "rsa-oaep") == 0
				   ? "the EncryptedKey's algorithm xmlenc11#rsa-oaep is not supported "
				     "(rsa-oaep-mgf1p only)"
				   : "the EncryptedKey's algorithm is not RSA-OAEP";
		return -1;
	}
	bool digest = false;
	for (xmlNode *c = next_el(m->children); c != NULL; c = next_el(c->next)) {
		if (xml_is(c, NS_DS, "DigestMethod") && !digest) {
			const char *d = xml_attr(c, "Algorithm");
			if (d == NULL || strcmp(d, ALG_SHA1) != 0 || next_el(c->children) != NULL) {
				*error_r = "the EncryptedKey's OAEP digest is not SHA-1 "
					   "(rsa-oaep-mgf1p takes SHA-1 only)";
				return -1;
			}
			digest = true;
		} else if (xml_is(c, NS_XENC, "OAEPparams") && k->oaep_params == NULL) {
			k->oaep_params = c;
		} else {
			*error_r = "the EncryptedKey's EncryptionMethod holds an unexpected element";
			return -1;
		}
	}
	return 0;
}

/* xenc:EncryptedKey: EncryptionMethod, KeyInfo?, CipherData, then only elements that say
 * nothing about decryption. */
static int parse_encrypted_key(xmlNode *ek, struct enc_key *k, const char **error_r)
{
	memset(k, 0, sizeof(*k));
	k->node = ek;
	xmlNode *c = next_el(ek->children);
	if (!xml_is(c, NS_XENC, "EncryptionMethod")) {
		*error_r = "the EncryptedKey has no EncryptionMethod";
		return -1;
	}
	if (parse_key_method(c, k, error_r) < 0)
		return -1;
	c = next_el(c->next);
	if (xml_is(c, NS_DS, "KeyInfo"))
		c = next_el(c->next); /* never read: the SP key is the only key */
	if (!xml_is(c, NS_XENC, "CipherData")) {
		*error_r = "the EncryptedKey has no CipherData";
		return -1;
	}
	if ((k->cipher_value = cipher_value(c, "the EncryptedKey's CipherData is not one "
					       "CipherValue", error_r)) == NULL)
		return -1;
	for (c = next_el(c->next); c != NULL; c = next_el(c->next)) {
		if (!xml_is(c, NS_XENC, "EncryptionProperties") &&
		    !xml_is(c, NS_XENC, "ReferenceList") && !xml_is(c, NS_XENC, "CarriedKeyName")) {
			*error_r = "the EncryptedKey holds an unexpected element";
			return -1;
		}
	}
	return 0;
}

static int add_key(struct enc_data *d, xmlNode *ek, struct enc_key **k_r,
		   const char **error_r)
{
	for (size_t i = 0; i < d->nkeys; i++) {
		if (d->keys[i].node == ek) {
			*k_r = &d->keys[i];
			return 0;
		}
	}
	if (d->nkeys == XMLENC_KEYS_MAX) {
		*error_r = "the EncryptedAssertion holds too many EncryptedKeys";
		return -1;
	}
	struct enc_key *k = &d->keys[d->nkeys];
	if (parse_encrypted_key(ek, k, error_r) < 0)
		return -1;
	d->nkeys++;
	*k_r = k;
	return 0;
}

/* ds:RetrievalMethod: an EncryptedKey child of ea by its Id, nothing else. */
static xmlNode *retrieve(xmlNode *ea, xmlNode *rm, const char **error_r)
{
	const char *type = xml_attr(rm, "Type"), *uri = xml_attr(rm, "URI");
	if (type == NULL || strcmp(type, TYPE_ENCRYPTED_KEY) != 0) {
		*error_r = "a RetrievalMethod's Type is not EncryptedKey";
		return NULL;
	}
	if (next_el(rm->children) != NULL) {
		*error_r = "a RetrievalMethod has Transforms";
		return NULL;
	}
	if (uri == NULL || uri[0] != '#' || uri[1] == '\0') {
		*error_r = "a RetrievalMethod's URI is not a same-document \"#Id\"";
		return NULL;
	}
	xmlNode *found = NULL;
	for (xmlNode *c = next_el(ea->children); c != NULL; c = next_el(c->next)) {
		const char *id = xml_attr(c, "Id");
		if (xml_is(c, NS_XENC, "EncryptedKey") && id != NULL && strcmp(id, uri + 1) == 0) {
			if (found != NULL) {
				*error_r = "a RetrievalMethod's URI names two EncryptedKeys";
				return NULL;
			}
			found = c;
		}
	}
	if (found == NULL)
		*error_r = "a RetrievalMethod does not point at an EncryptedKey in the "
			   "EncryptedAssertion";
	return found;
}

static int parse_key_info(xmlNode *ea, xmlNode *ki, struct enc_data *d, const char **error_r)
{
	for (xmlNode *c = next_el(ki->children); c != NULL; c = next_el(c->next)) {
		xmlNode *ek;
		if (xml_is(c, NS_XENC, "EncryptedKey"))
			ek = c;
		else if (xml_is(c, NS_DS, "RetrievalMethod"))
			ek = retrieve(ea, c, error_r);
		else
			continue; /* KeyName, X509Data…: never used */
		if (ek == NULL)
			return -1;
		if (d->ntry == XMLENC_KEYS_MAX) {
			*error_r = "the EncryptedData's KeyInfo names too many EncryptedKeys";
			return -1;
		}
		if (add_key(d, ek, &d->try[d->ntry], error_r) < 0)
			return -1;
		d->ntry++;
	}
	if (d->ntry == 0) {
		*error_r = "the EncryptedData's KeyInfo has no EncryptedKey";
		return -1;
	}
	return 0;
}

static int parse_encrypted_data(xmlNode *ea, xmlNode *ed, struct enc_data *d,
				const char **error_r)
{
	const char *type = xml_attr(ed, "Type");
	if (type == NULL || (strcmp(type, TYPE_ELEMENT) != 0 && strcmp(type, TYPE_CONTENT) != 0)) {
		*error_r = "the encrypted content is not XML (Type is not Element or Content)";
		return -1;
	}
	xmlNode *c = next_el(ed->children);
	const char *alg = xml_is(c, NS_XENC, "EncryptionMethod") ? xml_attr(c, "Algorithm") : NULL;
	for (size_t i = 0; alg != NULL && i < ARRAY_SIZE(data_algs); i++) {
		if (strcmp(alg, data_algs[i].uri) == 0) {
			d->alg = &data_algs[i];
			d->alg_index = i;
		}
	}
	if (d->alg == NULL) {
		*error_r = "the EncryptedData's algorithm is not AES-GCM or AES-CBC";
		return -1;
	}
	if (next_el(c->children) != NULL) {
		*error_r = "the EncryptedData's EncryptionMethod holds an element";
		return -1;
	}
	c = next_el(c->next);
	if (!xml_is(c, NS_DS, "KeyInfo")) {
		*error_r = "the EncryptedData has no KeyInfo";
		return -1;
	}
	if (parse_key_info(ea, c, d, error_r) < 0)
		return -1;
	c = next_el(c->next);
	if (!xml_is(c, NS_XENC, "CipherData")) {
		*error_r = "the EncryptedData has no CipherData";
		return -1;
	}
	if ((d->cipher_value = cipher_value(c, "the EncryptedData's CipherData is not one "
					       "CipherValue", error_r)) == NULL)
		return -1;
	c = next_el(c->next);
	if (xml_is(c, NS_XENC, "EncryptionProperties"))
		c = next_el(c->next);
	if (c != NULL) {
		*error_r = "the EncryptedData holds an unexpected element";
		return -1;
	}
	return 0;
}

/* ea: one EncryptedData and EncryptedKeys (each checked, used or not). */
static int parse(xmlNode *ea, struct enc_data *d, xmlNode **ed_r, const char **error_r)
{
	xmlNode *ed = NULL;
	for (xmlNode *c = next_el(ea->children); c != NULL; c = next_el(c->next)) {
		if (xml_is(c, NS_XENC, "EncryptedData") && ed == NULL) {
			ed = c;
		} else if (!xml_is(c, NS_XENC, "EncryptedKey")) {
			*error_r = "the EncryptedAssertion holds more than one EncryptedData and "
				   "its EncryptedKeys";
			return -1;
		}
	}
	if (ed == NULL) {
		*error_r = "the EncryptedAssertion has no EncryptedData";
		return -1;
	}
	if (parse_encrypted_data(ea, ed, d, error_r) < 0)
		return -1;
	for (xmlNode *c = next_el(ea->children); c != NULL; c = next_el(c->next)) {
		struct enc_key *k;
		if (c != ed && add_key(d, c, &k, error_r) < 0)
			return -1;
	}
	*ed_r = ed;
	return 0;
}

/* ---------------------------------------------------------------- crypto */

/* Base64 of a CipherValue or OAEPparams (XML white space allowed) into a new buffer of at
 * most max bytes. */
static int decode(const xmlNode *n, size_t max, unsigned char **out_r, size_t *len_r)
{
	/* The usual case, one text node, is decoded in place; anything else via a copy. */
	const xmlNode *t = n->children;
	if (t != NULL && t->next == NULL && t->type == XML_TEXT_NODE) {
		const char *s = (const char *)t->content;
		return b64_decode(s, strlen(s), max, out_r, len_r);
	}
	char *text = xml_text(n, max / 3 * 4 + 4096);
	if (text == NULL)
		return -1;
	int r = b64_decode(text, strlen(text), max, out_r, len_r);
	free(text);
	return r;
}

static EVP_PKEY_CTX *oaep_ctx_new(struct xmlenc_key *k)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
	if (c == NULL || EVP_PKEY_decrypt_init(c) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_oaep_md(c, k->sha1) <= 0 ||
	    EVP_PKEY_CTX_set_rsa_mgf1_md(c, k->sha1) <= 0) {
		EVP_PKEY_CTX_free(c);
		return NULL;
	}
	return c;
}

static EVP_PKEY_CTX *oaep_ctx_take(struct xmlenc_key *k)
{
	EVP_PKEY_CTX *c = NULL;
	pthread_mutex_lock(&k->lock);
	if (k->pooled > 0)
		c = k->pool[--k->pooled];
	pthread_mutex_unlock(&k->lock);
	return c != NULL ? c : oaep_ctx_new(k);
}

static void oaep_ctx_give(struct xmlenc_key *k, EVP_PKEY_CTX *c)
{
	pthread_mutex_lock(&k->lock);
	if (k->pooled < POOL_MAX) {
		k->pool[k->pooled++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&k->lock);
	EVP_PKEY_CTX_free(c);
}

/* RSA-OAEP (MGF1-SHA-1, SHA-1) of one EncryptedKey into sym[0..want). Returns 0, or -1
 * with *error_r. A failed decryption is not an error of the process: -1 as well. */
static int unwrap(struct xmlenc_key *k, const struct enc_key *ek, unsigned char *sym,
		  size_t want, const char **error_r)
{
	unsigned char *in = NULL, *label = NULL, *out = NULL;
	size_t in_len, label_len = 0, out_len;
	EVP_PKEY_CTX *c = NULL;
	int ret = -1;
	*error_r = "the EncryptedKey's CipherValue is not base64 of at most the SP key's size";
	if (decode(ek->cipher_value, k->rsa_len, &in, &in_len) < 0)
		goto out;
	if (ek->oaep_params != NULL) {
		*error_r = "the EncryptedKey's OAEPparams is not base64 of at most 256 bytes";
		if (decode(ek->oaep_params, OAEP_LABEL_MAX, &label, &label_len) < 0)
			goto out;
	}
	*error_r = "cannot set up RSA-OAEP";
	/* A context with a label is not reused (the label would stay set). */
	c = label != NULL ? oaep_ctx_new(k) : oaep_ctx_take(k);
	if (c == NULL)
		goto out;
	if (label != NULL) {
		void *l = OPENSSL_memdup(label, label_len);
		if (l == NULL || EVP_PKEY_CTX_set0_rsa_oaep_label(c, l, (int)label_len) <= 0) {
			OPENSSL_free(l);
			goto out;
		}
	}
	out = xcalloc(1, k->rsa_len);
	out_len = k->rsa_len;
	if (EVP_PKEY_decrypt(c, out, &out_len, in, in_len) <= 0) {
		*error_r = "the EncryptedKey does not decrypt with the SP key (RSA-OAEP)";
		goto out;
	}
	if (out_len != want) {
		*error_r = "the EncryptedKey holds a key of the wrong size for the cipher";
		goto out;
	}
	memcpy(sym, out, want);
	ret = 0;
out:
	if (c != NULL) {
		if (label == NULL && ret == 0)
			oaep_ctx_give(k, c);
		else
			EVP_PKEY_CTX_free(c);
	}
	if (out != NULL) {
		secret_wipe(out, k->rsa_len);
		free(out);
	}
	free(in);
	free(label);
	ERR_clear_error();
	return ret;
}

/* AES-GCM (IV, ciphertext, tag) or AES-CBC (IV, ciphertext with XML Encryption padding)
 * of in[0..len) with sym. The plaintext goes out only when it is authentic (GCM) or
 * correctly padded (CBC). */
static int aes_decrypt(const struct xmlenc_key *k, const struct enc_data *d,
		       const unsigned char *sym, const unsigned char *in, size_t len,
		       unsigned char **out_r, size_t *out_len_r, const char **error_r)
{
	const struct data_alg *a = d->alg;
	size_t iv_len = a->gcm ? GCM_IV_LEN : CBC_BLOCK;
	if (a->gcm ? len < GCM_IV_LEN + GCM_TAG_LEN
		   : len < 2 * CBC_BLOCK || len % CBC_BLOCK != 0) {
		*error_r = "the encrypted data is too short or not whole blocks";
		return -1;
	}
	size_t ct_len = len - iv_len - (a->gcm ? GCM_TAG_LEN : 0);
	unsigned char *out = xcalloc(1, ct_len + CBC_BLOCK);
	int n = 0, m = 0;
	bool ok = false;
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	*error_r = "cannot set up AES";
	if (c == NULL || EVP_DecryptInit_ex2(c, k->ciphers[d->alg_index], sym, in, NULL) <= 0 ||
	    (!a->gcm && EVP_CIPHER_CTX_set_padding(c, 0) <= 0))
		goto out;
	*error_r = a->gcm ? "the encrypted data is not authentic (AES-GCM tag)"
			  : "the encrypted data does not decrypt (AES-CBC)";
	if (EVP_DecryptUpdate(c, out, &n, in + iv_len, (int)ct_len) <= 0)
		goto out;
	if (a->gcm && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN,
					  (void *)(in + len - GCM_TAG_LEN)) <= 0)
		goto out;
	if (EVP_DecryptFinal_ex(c, out + n, &m) <= 0)
		goto out;
	size_t plain = (size_t)n + (size_t)m;
	if (!a->gcm) {
		/* XML Encryption padding: any bytes, the last one counts them (1..16). */
		unsigned pad = plain > 0 ? out[plain - 1] : 0;
		if (pad < 1 || pad > CBC_BLOCK || pad > plain) {
			*error_r = "the encrypted data does not decrypt (AES-CBC padding)";
			goto out;
		}
		plain -= pad;
	}
	ok = true;
	*out_r = out;
	*out_len_r = plain;
out:
	EVP_CIPHER_CTX_free(c);
	ERR_clear_error();
	if (!ok) {
		secret_wipe(out, ct_len + CBC_BLOCK);
		free(out);
	}
	return ok ? 0 : -1;
}

/* ---------------------------------------------------------------- plaintext */

static bool blank(const xmlNode *n)
{
	if (n->type == XML_COMMENT_NODE)
		return true;
	if (n->type != XML_TEXT_NODE)
		return false;
	for (const xmlChar *p = n->content; p != NULL && *p; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			return false;
	}
	return true;
}

/* Parse plain in ea's context and put its one element where ed was. */
static xmlNode *replace(xmlNode *ea, xmlNode *ed, const unsigned char *plain, size_t len,
			const char **error_r)
{
	if (len > 0x7fffffff) {
		*error_r = "the decrypted content is too large";
		return NULL;
	}
	/* As the Response itself: no network, no DTD (none can occur in content), no entity
	 * substitution, libxml2's size and depth limits on. The plaintext of an Element or
	 * Content is UTF-8 whatever the document's encoding (XML Encryption 4.1); libxml2
	 * would decode it as the document's declared encoding, and go through a slower
	 * converting input for "UTF-8" too, so the declaration is hidden meanwhile. */
	xmlNode *list = NULL;
	const xmlChar *doc_encoding = ea->doc->encoding;
	ea->doc->encoding = NULL;
	xmlParserErrors pr = xmlParseInNodeContext(ea, (const char *)plain, (int)len,
						   XML_PARSE_NONET | XML_PARSE_NOERROR |
							   XML_PARSE_NOWARNING,
						   &list);
	ea->doc->encoding = doc_encoding;
	if (pr != XML_ERR_OK) {
		xmlFreeNodeList(list);
		*error_r = "the decrypted content is not well-formed XML";
		return NULL;
	}
	xmlNode *el = NULL;
	for (xmlNode *n = list; n != NULL; n = n->next) {
		if (n->type == XML_ELEMENT_NODE && el == NULL) {
			el = n;
		} else if (!blank(n)) {
			xmlFreeNodeList(list);
			*error_r = "the decrypted content is not one element";
			return NULL;
		}
	}
	if (el == NULL) {
		xmlFreeNodeList(list);
		*error_r = "the decrypted content holds no element";
		return NULL;
	}
	/* Detach el from the parsed list, drop the rest and ed, put el in ed's place. */
	if (el->prev != NULL)
		el->prev->next = el->next;
	else
		list = el->next;
	if (el->next != NULL)
		el->next->prev = el->prev;
	el->prev = el->next = NULL;
	xmlFreeNodeList(list);
	xmlReplaceNode(ed, el);
	xmlFreeNode(ed);
	return el;
}

bool xmlenc_is_cbc(xmlNode *ea)
{
	struct enc_data d = {0};
	xmlNode *ed;
	const char *error;
	return parse(ea, &d, &ed, &error) == 0 && !d.alg->gcm;
}

xmlNode *xmlenc_decrypt(struct xmlenc_key *k, xmlNode *ea, const char **error_r)
{
	struct enc_data d = {0};
	xmlNode *ed;
	if (parse(ea, &d, &ed, error_r) < 0)
		return NULL;
	if (k->rsa_len == 0) {
		*error_r = "the SP key is not an RSA key";
		return NULL;
	}
	unsigned char *data = NULL, *plain = NULL;
	size_t data_len, plain_len = 0;
	if (decode(d.cipher_value, XMLENC_DATA_MAX, &data, &data_len) < 0) {
		*error_r = "the EncryptedData's CipherValue is not base64 of at most 192 KiB";
		return NULL;
	}
	/* Each EncryptedKey in turn (IdPs list one per recipient key): the first that
	 * decrypts to a key of the cipher's size is the one. */
	unsigned char sym[32];
	int r = -1;
	for (size_t i = 0; i < d.ntry && r < 0; i++)
		r = unwrap(k, d.try[i], sym, d.alg->key_len, error_r);
	xmlNode *el = NULL;
	if (r == 0 &&
	    aes_decrypt(k, &d, sym, data, data_len, &plain, &plain_len, error_r) == 0) {
		el = replace(ea, ed, plain, plain_len, error_r);
		secret_wipe(plain, plain_len);
		free(plain);
	}
	secret_wipe(sym, sizeof(sym));
	free(data);
	return el;
}
