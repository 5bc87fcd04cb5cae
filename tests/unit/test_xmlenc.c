/* Unit tests of samlgw's EncryptedAssertion decryption (samlgw/xmlenc.c) with keys and
 * ciphertexts made here with OpenSSL: what the ACS cannot send (caps beyond its message
 * size), the key loading, and many threads sharing one key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "xml.h"
#include "xmlenc.h"

#define XENC_NS "http://www.w3.org/2001/04/xmlenc#"
#define ASSERTION                                                                          \
	"<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_a\" "   \
	"Version=\"2.0\"><saml:Issuer>https://idp.example.org/</saml:Issuer></saml:Assertion>"

static EVP_PKEY *rsa;  /* the SP key */
static char *rsa_pem;  /* and as PEM */
static size_t rsa_pem_len;

static char *b64(const unsigned char *p, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	assert_non_null(out);
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

static char *pem_of(EVP_PKEY *key, const EVP_CIPHER *enc, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	assert_int_equal(PEM_write_bio_PrivateKey(bio, key, enc, (unsigned char *)"secret", 6,
						  NULL, NULL),
			 1);
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	char *out = malloc((size_t)n + 1);
	memcpy(out, data, (size_t)n);
	out[n] = '\0';
	BIO_free(bio);
	*len = (size_t)n;
	return out;
}

static int setup(void **state)
{
	xmlInitParser();
	rsa = EVP_RSA_gen(2048);
	assert_non_null(rsa);
	rsa_pem = pem_of(rsa, NULL, &rsa_pem_len);
	return 0;
}

static int teardown(void **state)
{
	EVP_PKEY_free(rsa);
	free(rsa_pem);
	return 0;
}

/* How to build one EncryptedAssertion. */
struct enc {
	bool gcm;
	size_t key_len;       /* 16, 24 or 32 */
	const char *plain;    /* default ASSERTION */
	size_t data_pad;      /* extra bytes of ciphertext (too large) */
	const char *label;    /* OAEPparams, or NULL */
	size_t label_len;
	size_t ek_extra;      /* bytes appended to the RSA ciphertext */
	const char *key_alg;  /* default rsa-oaep-mgf1p */
};

static char *oaep(const unsigned char *sym, size_t n, const struct enc *e)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, rsa, NULL);
	assert_non_null(c);
	assert_int_equal(EVP_PKEY_encrypt_init(c), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING), 1);
	if (e->label != NULL)
		assert_int_equal(EVP_PKEY_CTX_set0_rsa_oaep_label(
					 c, OPENSSL_memdup(e->label, e->label_len), (int)e->label_len),
				 1);
	unsigned char out[512 + 64];
	size_t len = 512;
	assert_int_equal(EVP_PKEY_encrypt(c, out, &len, sym, n), 1);
	EVP_PKEY_CTX_free(c);
	memset(out + len, 0x41, e->ek_extra);
	return b64(out, len + e->ek_extra);
}

static char *aes(const unsigned char *sym, const struct enc *e)
{
	const char *plain = e->plain != NULL ? e->plain : ASSERTION;
	size_t n = strlen(plain);
	const EVP_CIPHER *ciph = e->gcm ? (e->key_len == 16   ? EVP_aes_128_gcm()
					   : e->key_len == 24 ? EVP_aes_192_gcm()
							      : EVP_aes_256_gcm())
					: (e->key_len == 16   ? EVP_aes_128_cbc()
					   : e->key_len == 24 ? EVP_aes_192_cbc()
							      : EVP_aes_256_cbc());
	size_t iv_len = e->gcm ? 12 : 16;
	unsigned char *out = calloc(1, iv_len + n + 32 + e->data_pad);
	RAND_bytes(out, (int)iv_len);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int a = 0, b = 0;
	assert_int_equal(EVP_EncryptInit_ex2(c, ciph, sym, out, NULL), 1);
	assert_int_equal(EVP_EncryptUpdate(c, out + iv_len, &a, (const unsigned char *)plain,
					   (int)n),
			 1);
	assert_int_equal(EVP_EncryptFinal_ex(c, out + iv_len + a, &b), 1); /* PKCS#7 padding */
	size_t len = iv_len + (size_t)a + (size_t)b;
	if (e->gcm) {
		assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + len), 1);
		len += 16;
	}
	EVP_CIPHER_CTX_free(c);
	len += e->data_pad;
	char *text = b64(out, len);
	free(out);
	return text;
}

static char *build(const struct enc *e)
{
	unsigned char sym[32];
	size_t kl = e->key_len != 0 ? e->key_len : 16;
	struct enc copy = *e;
	copy.key_len = kl;
	RAND_bytes(sym, (int)kl);
	char *ek = oaep(sym, kl, &copy), *data = aes(sym, &copy);
	char *label = e->label != NULL ? b64((const unsigned char *)e->label, e->label_len) : NULL;
	char alg[64];
	snprintf(alg, sizeof(alg), "%saes%zu-%s",
		 e->gcm ? "http://www.w3.org/2009/xmlenc11#" : XENC_NS, kl * 8, e->gcm ? "gcm" : "cbc");
	size_t size = strlen(ek) + strlen(data) + (label != NULL ? strlen(label) : 0) + 2048;
	char *xml = malloc(size);
	snprintf(xml, size,
		 "<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\">"
		 "<saml:EncryptedAssertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\">"
		 "<xenc:EncryptedData xmlns:xenc=\"" XENC_NS "\" Type=\"" XENC_NS "Element\">"
		 "<xenc:EncryptionMethod Algorithm=\"%s\"/>"
		 "<ds:KeyInfo xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><xenc:EncryptedKey>"
		 "<xenc:EncryptionMethod Algorithm=\"%s\">%s%s%s</xenc:EncryptionMethod>"
		 "<xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData>"
		 "</xenc:EncryptedKey></ds:KeyInfo>"
		 "<xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData>"
		 "</xenc:EncryptedData></saml:EncryptedAssertion></samlp:Response>",
		 alg, e->key_alg != NULL ? e->key_alg : XENC_NS "rsa-oaep-mgf1p",
		 label != NULL ? "<xenc:OAEPparams>" : "", label != NULL ? label : "",
		 label != NULL ? "</xenc:OAEPparams>" : "", ek, data);
	free(ek);
	free(data);
	free(label);
	return xml;
}

/* Decrypt xml with key: the element's name, or NULL with *error_r (static). */
static const char *run(struct xmlenc_key *key, const char *xml, const char **error_r)
{
	const char *error;
	xmlDoc *doc = xml_parse_safe(xml, strlen(xml), &error);
	assert_non_null(doc);
	xmlNode *ea = xmlDocGetRootElement(doc)->children;
	xmlNode *el = xmlenc_decrypt(key, ea, error_r);
	const char *name = NULL;
	if (el != NULL) {
		/* The plaintext took the EncryptedData's place and sees the document's scope. */
		assert_ptr_equal(el->parent, ea);
		assert_ptr_equal(ea->children, el);
		assert_null(el->next);
		assert_non_null(el->ns);
		name = strcmp((const char *)el->name, "Assertion") == 0 ? "Assertion" : "other";
	}
	xmlFreeDoc(doc);
	return name;
}

static struct xmlenc_key *load(void)
{
	struct xmlenc_key *key;
	const char *error;
	assert_int_equal(xmlenc_key_new(rsa_pem, rsa_pem_len, &key, &error), 0);
	return key;
}

static void test_ciphers(void **state)
{
	struct xmlenc_key *key = load();
	const char *error;
	for (int gcm = 0; gcm < 2; gcm++) {
		for (size_t kl = 16; kl <= 32; kl += 8) {
			char *xml = build(&(struct enc){.gcm = gcm, .key_len = kl});
			assert_string_equal(run(key, xml, &error), "Assertion");
			free(xml);
		}
	}
	xmlenc_key_free(key);
}

static void test_label(void **state)
{
	struct xmlenc_key *key = load();
	const char *error;
	char *xml = build(&(struct enc){.label = "a label", .label_len = 7});
	assert_string_equal(run(key, xml, &error), "Assertion");
	free(xml);
	/* The context that held the label was not kept: the next one has none. */
	for (int i = 0; i < 3; i++) {
		xml = build(&(struct enc){0});
		assert_string_equal(run(key, xml, &error), "Assertion");
		free(xml);
	}
	char big[300];
	memset(big, 'x', sizeof(big));
	xml = build(&(struct enc){.label = big, .label_len = sizeof(big)});
	assert_null(run(key, xml, &error));
	assert_non_null(strstr(error, "OAEPparams"));
	free(xml);
	xmlenc_key_free(key);
}

static void test_caps(void **state)
{
	struct xmlenc_key *key = load();
	const char *error;
	/* CipherValue of the data beyond XMLENC_DATA_MAX: refused before any RSA. */
	char *plain = malloc(XMLENC_DATA_MAX + 64);
	size_t n = (size_t)snprintf(plain, 64, "<saml:Assertion xmlns:saml=\"urn:x\">");
	memset(plain + n, 'y', XMLENC_DATA_MAX - n);
	strcpy(plain + XMLENC_DATA_MAX, "</saml:Assertion>");
	char *xml = build(&(struct enc){.plain = plain});
	assert_null(run(key, xml, &error));
	assert_non_null(strstr(error, "192 KiB"));
	free(xml);
	free(plain);
	/* An RSA ciphertext longer than the key. */
	xml = build(&(struct enc){.ek_extra = 3});
	assert_null(run(key, xml, &error));
	assert_non_null(strstr(error, "SP key's size"));
	free(xml);
	/* PKCS#1 v1.5: refused by name, before any RSA operation. */
	xml = build(&(struct enc){.key_alg = XENC_NS "rsa-1_5"});
	assert_null(run(key, xml, &error));
	assert_string_equal(error, "the EncryptedKey's algorithm is not RSA-OAEP");
	free(xml);
	/* Ciphertext that is not whole blocks. */
	xml = build(&(struct enc){.data_pad = 1});
	assert_null(run(key, xml, &error));
	free(xml);
	xmlenc_key_free(key);
}

static void test_keys(void **state)
{
	struct xmlenc_key *key;
	const char *error;
	/* A passphrase-protected key fails without asking anyone. */
	size_t len;
	char *pem = pem_of(rsa, EVP_aes_128_cbc(), &len);
	assert_int_equal(xmlenc_key_new(pem, len, &key, &error), -1);
	free(pem);
	assert_int_equal(xmlenc_key_new("not a key", 9, &key, &error), -1);
	/* An EC key loads (the SP may sign with one), but decrypts nothing. */
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	pem = pem_of(ec, NULL, &len);
	assert_int_equal(xmlenc_key_new(pem, len, &key, &error), 0);
	char *xml = build(&(struct enc){0});
	assert_null(run(key, xml, &error));
	assert_string_equal(error, "the SP key is not an RSA key");
	free(xml);
	xmlenc_key_free(key);
	xmlenc_key_free(NULL);
	EVP_PKEY_free(ec);
	free(pem);
	/* Another RSA key: OAEP fails, the tree stays whole. */
	EVP_PKEY *other = EVP_RSA_gen(2048);
	pem = pem_of(other, NULL, &len);
	assert_int_equal(xmlenc_key_new(pem, len, &key, &error), 0);
	xml = build(&(struct enc){0});
	assert_null(run(key, xml, &error));
	assert_non_null(strstr(error, "does not decrypt with the SP key"));
	free(xml);
	xmlenc_key_free(key);
	EVP_PKEY_free(other);
	free(pem);
}

struct worker {
	struct xmlenc_key *key;
	char *xml;
	int ok;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	const char *error;
	for (int i = 0; i < 12; i++) {
		xmlDoc *doc = xml_parse_safe(w->xml, strlen(w->xml), &error);
		if (doc == NULL)
			continue;
		if (xmlenc_decrypt(w->key, xmlDocGetRootElement(doc)->children, &error) != NULL)
			w->ok++;
		xmlFreeDoc(doc);
	}
	return NULL;
}

/* One key, many threads at once: the pooled RSA contexts are never shared. */
static void test_threads(void **state)
{
	struct xmlenc_key *key = load();
	struct worker w[6];
	pthread_t t[6];
	for (int i = 0; i < 6; i++) {
		w[i] = (struct worker){key, build(&(struct enc){.gcm = i % 2}), 0};
		assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].ok, 12);
		free(w[i].xml);
	}
	xmlenc_key_free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ciphers), cmocka_unit_test(test_label),
		cmocka_unit_test(test_caps),    cmocka_unit_test(test_keys),
		cmocka_unit_test(test_threads),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
