/* XML signature verification with libxml2's C14N and OpenSSL (see xmlsig.h).
 *
 * The one signature shape SAML uses is read strictly (XML Signature's element order, no
 * unknown elements), the Reference resolved to the signed element itself (never by a
 * lookup the message could steer), its canonical form digested as it is produced, and
 * SignedInfo verified with keys from metadata only: KeyInfo in the message is never
 * read. */
#include "xmlsig.h"
#include "b64.h"
#include "c14n.h"
#include "xml.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/c14n.h>
#include <libxml/valid.h>
#include <libxml/xmlIO.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#define CERT_DER_MAX (64 * 1024)
#define CERT_FILE_MAX (1024 * 1024)
#define SIGNATURE_MAX 2048 /* bytes: RSA-16384 */
#define PREFIXES_MAX 8     /* InclusiveNamespaces tokens */

#define NS_EXC_C14N "http://www.w3.org/2001/10/xml-exc-c14n#"
#define NS_C14N "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
#define NS_DSIG_MORE "http://www.w3.org/2001/04/xmldsig-more#"
#define ALG_ENVELOPED NS_DS "enveloped-signature"

/* ---------------------------------------------------------------- keys */

/* Keep the certificate's public key alone. Takes over cert. */
static int keys_add(struct xmlsig_keys *keys, X509 *cert, const char **error_r)
{
	EVP_PKEY *key = cert != NULL ? X509_get_pubkey(cert) : NULL;
	X509_free(cert);
	ERR_clear_error();
	if (cert == NULL) {
		*error_r = "the certificate cannot be read";
		return -1;
	}
	int type = key != NULL ? EVP_PKEY_get_base_id(key) : EVP_PKEY_NONE;
	if (type != EVP_PKEY_RSA && type != EVP_PKEY_EC) {
		EVP_PKEY_free(key);
		*error_r = "the certificate holds no RSA or EC public key";
		return -1;
	}
	/* As NIST SP 800-131A and the federations' metadata rules: RSA from 2048 bits, EC
	 * from 256. */
	if (EVP_PKEY_get_bits(key) < (type == EVP_PKEY_RSA ? 2048 : 256)) {
		EVP_PKEY_free(key);
		*error_r = type == EVP_PKEY_RSA ? "the certificate's RSA key is shorter than 2048 bits"
						: "the certificate's EC key is shorter than 256 bits";
		return -1;
	}
	keys->v = xrealloc(keys->v, (keys->n + 1) * sizeof(*keys->v));
	keys->v[keys->n++] = key;
	return 0;
}

int xmlsig_keys_add_cert_b64(struct xmlsig_keys *keys, const char *b64, const char **error_r)
{
	unsigned char *der;
	size_t len;
	if (b64_decode(b64, strlen(b64), CERT_DER_MAX, &der, &len) < 0) {
		*error_r = "the certificate is not base64 of at most 64 KiB";
		return -1;
	}
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	free(der);
	return keys_add(keys, cert, error_r);
}

int xmlsig_keys_add_cert_file(struct xmlsig_keys *keys, const char *path, const char **error_r)
{
	char *pem;
	size_t len;
	if (read_file_capped(path, CERT_FILE_MAX, &pem, &len, error_r) < 0)
		return -1;
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	X509 *cert = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	free(pem);
	if (cert == NULL) {
		ERR_clear_error();
		*error_r = "cannot read the certificate (PEM)";
		return -1;
	}
	return keys_add(keys, cert, error_r);
}

void xmlsig_keys_clear(struct xmlsig_keys *keys)
{
	for (size_t i = 0; i < keys->n; i++)
		EVP_PKEY_free(keys->v[i]);
	free(keys->v);
	keys->v = NULL;
	keys->n = 0;
}

/* ---------------------------------------------------------------- algorithms */

enum md { MD_SHA1, MD_SHA256, MD_SHA384, MD_SHA512, MD_COUNT };

static const char *const md_names[MD_COUNT] = {"SHA1", "SHA256", "SHA384", "SHA512"};
static EVP_MD *mds[MD_COUNT];
static pthread_once_t mds_once = PTHREAD_ONCE_INIT;

/* Fetched once for the process (an implicit fetch per use costs a provider lookup). */
static void mds_fetch(void)
{
	for (int i = 0; i < MD_COUNT; i++)
		mds[i] = EVP_MD_fetch(NULL, md_names[i], NULL);
}

static const EVP_MD *md_get(enum md md)
{
	pthread_once(&mds_once, mds_fetch);
	return mds[md];
}

static const struct c14n_alg {
	const char *uri;
	int mode;
	bool comments;
} c14n_algs[] = {
	{NS_EXC_C14N, XML_C14N_EXCLUSIVE_1_0, false},
	{NS_EXC_C14N "WithComments", XML_C14N_EXCLUSIVE_1_0, true},
	{NS_C14N, XML_C14N_1_0, false},
	{NS_C14N "#WithComments", XML_C14N_1_0, true},
};

static const struct digest_alg {
	const char *uri;
	enum md md;
} digest_algs[] = {
	{"http://www.w3.org/2001/04/xmlenc#sha256", MD_SHA256},
	{NS_DSIG_MORE "sha384", MD_SHA384},
	{"http://www.w3.org/2001/04/xmlenc#sha512", MD_SHA512},
	{NS_DS "sha1", MD_SHA1},
};

static const struct sig_alg {
	const char *uri;
	enum md md;
	int key_type;
} sig_algs[] = {
	{NS_DSIG_MORE "rsa-sha256", MD_SHA256, EVP_PKEY_RSA},
	{NS_DSIG_MORE "rsa-sha384", MD_SHA384, EVP_PKEY_RSA},
	{NS_DSIG_MORE "rsa-sha512", MD_SHA512, EVP_PKEY_RSA},
	{NS_DSIG_MORE "ecdsa-sha256", MD_SHA256, EVP_PKEY_EC},
	{NS_DSIG_MORE "ecdsa-sha384", MD_SHA384, EVP_PKEY_EC},
	{NS_DSIG_MORE "ecdsa-sha512", MD_SHA512, EVP_PKEY_EC},
	{NS_DS "rsa-sha1", MD_SHA1, EVP_PKEY_RSA},
};

static bool is_sha1(const char *alg)
{
	return alg != NULL && (strcmp(alg, NS_DS "sha1") == 0 || strcmp(alg, NS_DS "rsa-sha1") == 0 ||
			       strcmp(alg, NS_DSIG_MORE "ecdsa-sha1") == 0 ||
			       strcmp(alg, NS_DS "dsa-sha1") == 0);
}

/* ---------------------------------------------------------------- structure */

static xmlNode *next_el(xmlNode *n)
{
	while (n != NULL && n->type != XML_ELEMENT_NODE)
		n = n->next;
	return n;
}

struct c14n {
	const struct c14n_alg *alg;
	xmlChar **prefixes; /* exclusive C14N's InclusiveNamespaces, NULL-terminated */
};

static void c14n_clear(struct c14n *c)
{
	for (size_t i = 0; c->prefixes != NULL && c->prefixes[i] != NULL; i++)
		xmlFree(c->prefixes[i]);
	free(c->prefixes);
	c->prefixes = NULL;
}

struct sig {
	xmlNode *signed_info, *value;
	struct c14n si_c14n;
	const struct sig_alg *method;
	bool enveloped;
	struct c14n ref_c14n; /* alg NULL: C14N 1.0, XML Signature's default */
	const struct digest_alg *digest;
	xmlNode *digest_value;
};

static const struct c14n_alg *find_c14n(const char *alg)
{
	for (size_t i = 0; alg != NULL && i < ARRAY_SIZE(c14n_algs); i++) {
		if (strcmp(alg, c14n_algs[i].uri) == 0)
			return &c14n_algs[i];
	}
	return NULL;
}

/* An exclusive C14N's PrefixList: tokens separated by XML white space. */
static int read_prefixes(const char *list, struct c14n *c, const char **error_r)
{
	size_t n = 0;
	c->prefixes = xcalloc(PREFIXES_MAX + 1, sizeof(*c->prefixes));
	for (const char *p = list; *p != '\0';) {
		size_t len = strcspn(p, " \t\r\n");
		if (len > 0) {
			if (n == PREFIXES_MAX) {
				*error_r = "an InclusiveNamespaces PrefixList is too long";
				return -1;
			}
			c->prefixes[n++] = xmlStrndup((const xmlChar *)p, (int)len);
		}
		p += len;
		p += strspn(p, " \t\r\n");
	}
	return 0;
}

/* A CanonicalizationMethod or a C14N Transform (alg already found). */
static int read_c14n(xmlNode *method, const struct c14n_alg *alg, struct c14n *c,
		     const char **error_r)
{
	c->alg = alg;
	xmlNode *k = next_el(method->children);
	if (k == NULL)
		return 0;
	const char *list = xml_is(k, NS_EXC_C14N, "InclusiveNamespaces")
				   ? xml_attr(k, "PrefixList")
				   : NULL;
	if (alg->mode != XML_C14N_EXCLUSIVE_1_0 || list == NULL || next_el(k->next) != NULL ||
	    next_el(k->children) != NULL) {
		*error_r = "a canonicalisation method holds an unexpected element";
		return -1;
	}
	return read_prefixes(list, c, error_r);
}

static int read_transforms(xmlNode *transforms, struct sig *s, const char **error_r)
{
	for (xmlNode *t = next_el(transforms->children); t != NULL; t = next_el(t->next)) {
		const char *alg = xml_is(t, NS_DS, "Transform") ? xml_attr(t, "Algorithm") : NULL;
		const struct c14n_alg *c = find_c14n(alg);
		if (alg != NULL && strcmp(alg, ALG_ENVELOPED) == 0 && !s->enveloped &&
		    s->ref_c14n.alg == NULL && next_el(t->children) == NULL) {
			s->enveloped = true;
		} else if (c != NULL && s->ref_c14n.alg == NULL) {
			if (read_c14n(t, c, &s->ref_c14n, error_r) < 0)
				return -1;
		} else {
			*error_r = "the Reference's transforms are not enveloped-signature and one "
				   "canonicalisation";
			return -1;
		}
	}
	return 0;
}

static int read_reference(xmlNode *ref, struct sig *s, const char **error_r)
{
	xmlNode *c = next_el(ref->children);
	if (xml_is(c, NS_DS, "Transforms")) {
		if (read_transforms(c, s, error_r) < 0)
			return -1;
		c = next_el(c->next);
	}
	const char *alg = xml_is(c, NS_DS, "DigestMethod") ? xml_attr(c, "Algorithm") : NULL;
	for (size_t i = 0; alg != NULL && i < ARRAY_SIZE(digest_algs); i++) {
		if (strcmp(alg, digest_algs[i].uri) == 0)
			s->digest = &digest_algs[i];
	}
	if (s->digest == NULL || next_el(c->children) != NULL) {
		*error_r = "the Reference's DigestMethod is not SHA-256, SHA-384 or SHA-512";
		return -1;
	}
	c = next_el(c->next);
	if (!xml_is(c, NS_DS, "DigestValue") || next_el(c->next) != NULL) {
		*error_r = "the Reference is not Transforms, DigestMethod and DigestValue";
		return -1;
	}
	s->digest_value = c;
	return 0;
}

static int read_signed_info(xmlNode *si, struct sig *s, const char **error_r)
{
	xmlNode *c = next_el(si->children);
	const struct c14n_alg *c14n =
		xml_is(c, NS_DS, "CanonicalizationMethod") ? find_c14n(xml_attr(c, "Algorithm")) : NULL;
	if (c14n == NULL) {
		*error_r = "SignedInfo's CanonicalizationMethod is not C14N 1.0 or exclusive C14N";
		return -1;
	}
	if (read_c14n(c, c14n, &s->si_c14n, error_r) < 0)
		return -1;
	c = next_el(c->next);
	const char *alg = xml_is(c, NS_DS, "SignatureMethod") ? xml_attr(c, "Algorithm") : NULL;
	for (size_t i = 0; alg != NULL && i < ARRAY_SIZE(sig_algs); i++) {
		if (strcmp(alg, sig_algs[i].uri) == 0)
			s->method = &sig_algs[i];
	}
	if (s->method == NULL || next_el(c->children) != NULL) {
		*error_r = "the SignatureMethod is not RSA or ECDSA with SHA-256, SHA-384 or "
			   "SHA-512";
		return -1;
	}
	c = next_el(c->next);
	if (!xml_is(c, NS_DS, "Reference") || next_el(c->next) != NULL) {
		*error_r = "SignedInfo is not CanonicalizationMethod, SignatureMethod and one "
			   "Reference";
		return -1;
	}
	return read_reference(c, s, error_r);
}

static int read_signature(xmlNode *sig, struct sig *s, const char **error_r)
{
	xmlNode *c = next_el(sig->children);
	if (!xml_is(c, NS_DS, "SignedInfo")) {
		*error_r = "the signature has no SignedInfo";
		return -1;
	}
	s->signed_info = c;
	c = next_el(c->next);
	if (!xml_is(c, NS_DS, "SignatureValue")) {
		*error_r = "the signature has no SignatureValue after SignedInfo";
		return -1;
	}
	s->value = c;
	c = next_el(c->next);
	if (xml_is(c, NS_DS, "KeyInfo"))
		c = next_el(c->next);
	if (c != NULL) {
		*error_r = "the signature holds more than SignedInfo, SignatureValue and KeyInfo";
		return -1;
	}
	return read_signed_info(s->signed_info, s, error_r);
}

/* The structure around the signature, checked before anything else. */
static int check_shape(xmlNode *elem, xmlNode *sig, bool allow_sha1, const char **error_r)
{
	const char *id = xml_attr(elem, "ID");
	if (id == NULL || *id == '\0') {
		*error_r = "the signed element has no ID";
		return -1;
	}
	xmlNode *si = xml_child(sig, NS_DS, "SignedInfo");
	if (si == NULL) {
		*error_r = "the signature has no SignedInfo";
		return -1;
	}
	if (xml_count_children(si, NS_DS, "Reference") != 1) {
		*error_r = "the signature does not have exactly one Reference";
		return -1;
	}
	xmlNode *ref = xml_child(si, NS_DS, "Reference");
	const char *uri = xml_attr(ref, "URI");
	if (uri == NULL || uri[0] != '#' || strcmp(uri + 1, id) != 0) {
		*error_r = "the signature's Reference does not point at the element it is in";
		return -1;
	}
	/* The reference is resolved to elem itself; the ID must also be elem's alone. */
	xmlAttr *registered = xmlGetID(elem->doc, (const xmlChar *)id);
	if (registered == NULL || registered->parent != elem) {
		*error_r = "the signed element's ID is not its own alone in the document";
		return -1;
	}
	xmlNode *sm = xml_child(si, NS_DS, "SignatureMethod");
	xmlNode *dm = xml_child(ref, NS_DS, "DigestMethod");
	if (sm == NULL || dm == NULL) {
		*error_r = "the signature lacks SignatureMethod or DigestMethod";
		return -1;
	}
	if (!allow_sha1 &&
	    (is_sha1(xml_attr(sm, "Algorithm")) || is_sha1(xml_attr(dm, "Algorithm")))) {
		*error_r = "the signature uses SHA-1, which is not allowed (saml.allow_sha1)";
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- crypto */

static int digest_write(void *ctx, const char *buf, int len)
{
	return EVP_DigestUpdate(ctx, buf, (size_t)len) == 1 ? len : -1;
}

static int digest_sink(void *ctx, const unsigned char *data, size_t len)
{
	return EVP_DigestUpdate(ctx, data, len) == 1 ? 0 : -1;
}

/* Canonicalise set (with c) straight into a digest of md. */
static int c14n_digest(xmlDoc *doc, const struct c14n_node_set *set, const struct c14n *c,
		       enum md md, unsigned char *out, unsigned *out_len)
{
	const EVP_MD *m = md_get(md);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (m == NULL || ctx == NULL || EVP_DigestInit_ex(ctx, m, NULL) != 1) {
		EVP_MD_CTX_free(ctx);
		return -1;
	}
	int mode = c->alg != NULL ? c->alg->mode : XML_C14N_1_0;
	bool comments = c->alg != NULL && c->alg->comments && set->comments;
	/* The common case without libxml2's per-node allocations (c14n.h); the same bytes. */
	enum c14n_result fast = C14N_DECLINED;
	if (mode == XML_C14N_EXCLUSIVE_1_0 && c->prefixes == NULL && !comments)
		fast = c14n_exclusive((xmlNode *)set->top, set->minus, digest_sink, ctx);
	int r = fast == C14N_DONE ? 0 : -1;
	if (fast == C14N_DECLINED) {
		xmlOutputBuffer *buf = xmlOutputBufferCreateIO(digest_write, NULL, ctx, NULL);
		r = buf == NULL ? -1
				: xmlC14NExecute(doc, c14n_node_visible, (void *)set, mode, c->prefixes,
						 c->alg != NULL && c->alg->comments, buf);
		if (buf != NULL && xmlOutputBufferClose(buf) < 0)
			r = -1;
	}
	if (r >= 0 && EVP_DigestFinal_ex(ctx, out, out_len) != 1)
		r = -1;
	EVP_MD_CTX_free(ctx);
	return r < 0 ? -1 : 0;
}

/* The base64 text of an element into a new buffer of at most max bytes. */
static int decode_text(const xmlNode *n, size_t max, unsigned char **out_r, size_t *len_r)
{
	const xmlNode *t = n->children;
	if (t != NULL && t->next == NULL && t->type == XML_TEXT_NODE) {
		const char *s = (const char *)t->content;
		return b64_decode(s, strlen(s), max, out_r, len_r);
	}
	char *text = xml_text(n, max * 2 + 1024);
	if (text == NULL)
		return -1;
	int r = b64_decode(text, strlen(text), max, out_r, len_r);
	free(text);
	return r;
}

/* XML Signature's ECDSA value is r and s of the order's size, concatenated (shorter
 * halves as some signers write them are taken too); OpenSSL wants DER. */
static unsigned char *ecdsa_der(EVP_PKEY *key, const unsigned char *v, size_t len,
				size_t *der_len)
{
	int bits = EVP_PKEY_get_bits(key);
	size_t half = bits > 0 ? ((size_t)bits + 7) / 8 : 0;
	if (len < 2 * half && len % 2 == 0)
		half = len / 2;
	else if (len != 2 * half)
		return NULL;
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(v, (int)half, NULL), *s = BN_bin2bn(v + half, (int)half, NULL);
	unsigned char *der = NULL;
	if (sig != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(sig, r, s) == 1) {
		r = s = NULL;
		int n = i2d_ECDSA_SIG(sig, &der);
		if (n > 0)
			*der_len = (size_t)n;
		else
			der = NULL;
	}
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(sig);
	return der;
}

static bool verify_with(EVP_PKEY *key, const struct sig_alg *alg, const unsigned char *hash,
			size_t hash_len, const unsigned char *value, size_t value_len)
{
	if (EVP_PKEY_get_base_id(key) != alg->key_type)
		return false;
	unsigned char *der = NULL;
	size_t der_len = 0;
	if (alg->key_type == EVP_PKEY_EC) {
		if ((der = ecdsa_der(key, value, value_len, &der_len)) == NULL)
			return false;
		value = der;
		value_len = der_len;
	}
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
	bool ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
		  (alg->key_type != EVP_PKEY_RSA ||
		   EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1) &&
		  EVP_PKEY_CTX_set_signature_md(ctx, md_get(alg->md)) == 1 &&
		  EVP_PKEY_verify(ctx, value, value_len, hash, hash_len) == 1;
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_free(der);
	ERR_clear_error();
	return ok;
}

int xmlsig_verify(xmlNode *elem, const struct xmlsig_keys *keys, bool allow_sha1,
		  const char **error_r)
{
	if (xml_count_children(elem, NS_DS, "Signature") != 1) {
		*error_r = "the element does not carry exactly one Signature";
		return -1;
	}
	xmlNode *sig = xml_child(elem, NS_DS, "Signature");
	if (check_shape(elem, sig, allow_sha1, error_r) < 0)
		return -1;
	struct sig s = {0};
	unsigned char *value = NULL, *expected = NULL;
	size_t value_len, expected_len;
	unsigned char digest[EVP_MAX_MD_SIZE], hash[EVP_MAX_MD_SIZE];
	unsigned digest_len = 0, hash_len = 0;
	int ret = -1;
	if (read_signature(sig, &s, error_r) < 0)
		goto out;
	if (keys->n == 0) {
		*error_r = "the IdP's metadata has no signing key";
		goto out;
	}
	/* SignedInfo first: it is small, and a message nobody with the IdP's key signed goes
	 * no further than one RSA verify (the Reference's digest below walks the whole signed
	 * element). */
	struct c14n_node_set si_set = {s.signed_info, NULL, true};
	if (c14n_digest(elem->doc, &si_set, &s.si_c14n, s.method->md, hash, &hash_len) < 0) {
		*error_r = "SignedInfo cannot be canonicalised";
		goto out;
	}
	if (decode_text(s.value, SIGNATURE_MAX, &value, &value_len) < 0) {
		*error_r = "the SignatureValue is not base64 of at most 2048 bytes";
		goto out;
	}
	bool verified = false;
	for (size_t i = 0; i < keys->n && !verified; i++)
		verified = verify_with(keys->v[i], s.method, hash, hash_len, value, value_len);
	if (!verified) {
		*error_r = "the signature does not verify with any of the IdP's signing keys";
		goto out;
	}
	/* The Reference: elem, minus the signature when enveloped, never its comments (a
	 * same-document "#ID" reference drops them). */
	struct c14n_node_set ref_set = {elem, s.enveloped ? sig : NULL, false};
	if (c14n_digest(elem->doc, &ref_set, &s.ref_c14n, s.digest->md, digest, &digest_len) < 0) {
		*error_r = "the signed element cannot be canonicalised";
		goto out;
	}
	if (decode_text(s.digest_value, EVP_MAX_MD_SIZE, &expected, &expected_len) < 0 ||
	    expected_len != digest_len || !ct_equal(expected, digest, digest_len)) {
		*error_r = "the signed element's digest does not match the Reference's "
			   "DigestValue (changed after signing)";
		goto out;
	}
	ret = 0;
out:
	c14n_clear(&s.si_c14n);
	c14n_clear(&s.ref_c14n);
	free(value);
	free(expected);
	return ret;
}
