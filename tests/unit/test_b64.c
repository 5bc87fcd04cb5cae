/* Unit tests of samlgw's base64 decoder (b64_decode: SAMLResponse, CipherValue, certificates
 * and signatures) against OpenSSL's encoder, and of the random identifiers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "b64.h"

/* OpenSSL's base64 of p[0..n): one line, padded. Caller frees. */
static char *encode(const unsigned char *p, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	assert_non_null(out);
	EVP_EncodeBlock((unsigned char *)out, p, (int)n);
	return out;
}

/* b64_decode of text must give exactly want[0..n). */
static void decodes_to(const char *text, const unsigned char *want, size_t n)
{
	unsigned char *out = NULL;
	size_t len = 0;
	assert_int_equal(b64_decode(text, strlen(text), 1 << 20, &out, &len), 0);
	assert_int_equal(len, n);
	assert_memory_equal(out, want, n);
	assert_int_equal(out[len], '\0');
	free(out);
}

static void refused(const char *text)
{
	unsigned char *out = (unsigned char *)"untouched";
	size_t len = 12345;
	if (b64_decode(text, strlen(text), 1 << 20, &out, &len) != -1)
		fail_msg("accepted: \"%s\"", text);
	assert_string_equal((const char *)out, "untouched"); /* outputs only on success */
	assert_int_equal(len, 12345);
}

/* Random data of every length from 1 to 300 bytes and some long ones: OpenSSL encodes,
 * b64_decode gives the bytes back. */
static void test_round_trip(void **state)
{
	(void)state;
	static const size_t big[] = {4095, 4096, 4097, 65536 + 1};
	unsigned char *data = malloc(65537);
	assert_non_null(data);
	for (size_t i = 0; i < 300 + 4; i++) {
		size_t n = i < 300 ? i + 1 : big[i - 300];
		assert_int_equal(RAND_bytes(data, (int)n), 1);
		char *text = encode(data, n);
		decodes_to(text, data, n);
		free(text);
	}
	free(data);
}

/* Every byte value in every position of a 3-byte group. */
static void test_every_byte(void **state)
{
	(void)state;
	for (unsigned v = 0; v < 256; v++) {
		for (size_t pos = 0; pos < 3; pos++) {
			unsigned char d[3] = {0x5a, 0xa5, 0x3c};
			d[pos] = (unsigned char)v;
			for (size_t n = pos + 1; n <= 3; n++) {
				char *text = encode(d, n);
				decodes_to(text, d, n);
				free(text);
			}
		}
	}
}

/* SAML bindings wrap base64 in lines: white space anywhere between characters (also
 * around and between the padding) is skipped. */
static void test_white_space(void **state)
{
	(void)state;
	const unsigned char want[] = "samlgw!!";
	decodes_to("c2FtbGd3ISE=", want, 8);
	decodes_to("c2Ft\nbGd3\r\nISE=", want, 8);
	decodes_to(" c 2 F t b G d 3 I S E = ", want, 8);
	decodes_to("\tc2FtbGd3ISE\n=\n", want, 8);
	decodes_to("c2FtbGd3IS\r\nE=\r\n", want, 8);
	decodes_to("YQ = =", (const unsigned char *)"a", 1);
	decodes_to("YQ\n=\n=\n", (const unsigned char *)"a", 1);
}

static void test_padding(void **state)
{
	(void)state;
	decodes_to("YQ==", (const unsigned char *)"a", 1);
	decodes_to("YWI=", (const unsigned char *)"ab", 2);
	decodes_to("YWJj", (const unsigned char *)"abc", 3);
	/* base64Binary and RFC 2045 pad the last group: an unpadded end is not base64. */
	refused("YQ");
	refused("YWI");
	refused("Y");
	refused("YWJjZ");      /* the same after a full group */
	refused("YQ=");        /* padding that does not complete the group */
	refused("YWI==");
	refused("YWJj=");
	refused("YQ===");
	refused("=");
	refused("==");
	refused("Y=Q=");       /* padding only at the very end */
	refused("YQ==YWI=");
	refused("YQ==\nYQ==");
}

static void test_refused(void **state)
{
	(void)state;
	refused("");
	refused(" \n\t");
	refused("YW-j");       /* base64url is not SAML's alphabet */
	refused("YW_j");
	refused("YW.j");
	refused("YWJj\v");     /* only space, tab, CR and LF are white space */
	refused("YWJj%2B");    /* still URL-encoded */
	refused("YW\x80j");
	refused("YWJj\xff");
	/* A NUL inside the given length is not base64. */
	unsigned char *out = NULL;
	size_t len = 0;
	assert_int_equal(b64_decode("YW\0j", 4, 100, &out, &len), -1);
}

static void test_cap(void **state)
{
	(void)state;
	unsigned char data[300];
	assert_int_equal(RAND_bytes(data, sizeof(data)), 1);
	char *text = encode(data, sizeof(data));
	unsigned char *out = NULL;
	size_t len = 0;
	assert_int_equal(b64_decode(text, strlen(text), 300, &out, &len), 0);
	assert_int_equal(len, 300);
	free(out);
	assert_int_equal(b64_decode(text, strlen(text), 299, &out, &len), -1);
	free(text);
	/* Only the given length is read. */
	assert_int_equal(b64_decode("YWJjZGVm", 4, 100, &out, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(out, "abc", 3);
	free(out);
}

static void test_random_id(void **state)
{
	(void)state;
	char a[RANDOM_ID_LEN + 1], b[RANDOM_ID_LEN + 1];
	assert_int_equal(random_id(a), 0);
	assert_int_equal(random_id(b), 0);
	assert_int_equal(strlen(a), RANDOM_ID_LEN);
	assert_string_not_equal(a, b);
	assert_true(random_id_valid(a));
	a[5] = '+';
	assert_false(random_id_valid(a));
	b[RANDOM_ID_LEN - 1] = '\0';
	assert_false(random_id_valid(b));
	assert_false(random_id_valid(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip), cmocka_unit_test(test_every_byte),
		cmocka_unit_test(test_white_space), cmocka_unit_test(test_padding),
		cmocka_unit_test(test_refused),    cmocka_unit_test(test_cap),
		cmocka_unit_test(test_random_id),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
