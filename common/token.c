/* Token generation, shape checks and hashing (see token.h for the format). */
#include "token.h"
#include "util.h"

#include <stdbool.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding; out must hold 4*ceil(n/3) bytes. Returns chars written. */
static size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
	size_t o = 0, i = 0;
	for (; i + 3 <= n; i += 3) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
		out[o++] = b64url[v & 63];
	}
	if (n - i == 1) {
		unsigned v = (unsigned)in[i] << 16;
		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
	} else if (n - i == 2) {
		unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
	}
	return o;
}

static bool b64url_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

/* The check characters for prefix+body (the first TOKEN_PREFIX_LEN+TOKEN_BODY_LEN chars). */
static void token_check(const char *text, char out[TOKEN_CHECK_LEN])
{
	static const char label[] = "samlgw-check:";
	unsigned char md[SHA256_DIGEST_LENGTH];
	char buf[sizeof(label) - 1 + TOKEN_PREFIX_LEN + TOKEN_BODY_LEN];
	memcpy(buf, label, sizeof(label) - 1);
	memcpy(buf + sizeof(label) - 1, text, TOKEN_PREFIX_LEN + TOKEN_BODY_LEN);
	bool ok = SHA256((const unsigned char *)buf, sizeof(buf), md) != NULL;
	secret_wipe(buf, sizeof(buf));
	if (!ok) {
		/* NUL never equals a check character: the token is refused. */
		ERR_clear_error();
		memset(out, 0, TOKEN_CHECK_LEN);
		return;
	}
	char enc[8];
	size_t n = b64url_encode(md, 4, enc);
	memcpy(out, enc, n < TOKEN_CHECK_LEN ? n : TOKEN_CHECK_LEN);
	secret_wipe(md, sizeof(md));
}

int token_generate(char out[TOKEN_LEN + 1], const char **error_r)
{
	unsigned char rnd[TOKEN_RANDOM_BYTES];
	char body[48];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		ERR_clear_error();
		*error_r = "the random number generator failed";
		return -1;
	}
	size_t n = b64url_encode(rnd, sizeof(rnd), body);
	secret_wipe(rnd, sizeof(rnd));
	if (n != TOKEN_BODY_LEN) {
		secret_wipe(body, sizeof(body));
		*error_r = "internal error: token body length";
		return -1;
	}
	memcpy(out, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
	memcpy(out + TOKEN_PREFIX_LEN, body, TOKEN_BODY_LEN);
	secret_wipe(body, sizeof(body));
	token_check(out, out + TOKEN_PREFIX_LEN + TOKEN_BODY_LEN);
	out[TOKEN_LEN] = '\0';
	return 0;
}

bool token_well_formed(const char *text, size_t len)
{
	if (len != TOKEN_LEN || memcmp(text, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0)
		return false;
	for (size_t i = TOKEN_PREFIX_LEN; i < len; i++) {
		if (!b64url_char(text[i]))
			return false;
	}
	/* The last body character carries 4 bits only (32 bytes = 42 2/3 chars): its low
	 * 2 bits must be zero, so exactly one spelling of each token is accepted. */
	const char *p = strchr(b64url, text[TOKEN_PREFIX_LEN + TOKEN_BODY_LEN - 1]);
	if (((p - b64url) & 3) != 0)
		return false;
	char check[TOKEN_CHECK_LEN];
	token_check(text, check);
	return ct_equal(check, text + TOKEN_PREFIX_LEN + TOKEN_BODY_LEN, TOKEN_CHECK_LEN);
}

int token_hash_hex(const char *text, size_t len, char out[TOKEN_HASH_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];
	if (SHA256((const unsigned char *)text, len, md) == NULL) {
		ERR_clear_error();
		out[0] = '\0';
		return -1;
	}
	for (size_t i = 0; i < sizeof(md); i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[TOKEN_HASH_HEX_LEN] = '\0';
	secret_wipe(md, sizeof(md));
	return 0;
}

void token_id_from_hash(const char *hash_hex, char out[TOKEN_ID_LEN + 1])
{
	memcpy(out, hash_hex, TOKEN_ID_LEN);
	out[TOKEN_ID_LEN] = '\0';
}

bool token_id_valid(const char *text)
{
	size_t len = strlen(text);
	if (len < TOKEN_ID_LEN || len > TOKEN_HASH_HEX_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return true;
}
