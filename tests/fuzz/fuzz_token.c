/* Fuzz target: decoding a presented token (common/token.c) and the checks every verifier
 * runs before Redis sees anything: token_well_formed (prefix, length, base64url alphabet,
 * the spelling of the last body character, the check characters), token_hash_hex and
 * token ids (token_id_valid, token_id_from_hash), plus store_verify on a store whose
 * socket does not exist (a malformed token is refused without a connection; a
 * well-formed one is "unavailable", never accepted).
 *
 * Oracle: token.h's format is implemented again here from its description. The input is
 * checked as token text, and its first 32 bytes (zero-padded) are also made into a token
 * by that description, which must be well formed, as must no single-character change of
 * it (byte 32 picks the position, byte 33 the replacement). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>

#include "store.h"
#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url of in[0..n) without padding. */
static size_t encode(const uint8_t *in, size_t n, char *out)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		acc = acc << 8 | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = alphabet[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = alphabet[(acc << (6 - bits)) & 63];
	return o;
}

/* samlgw_ + base64url(random) + base64url(SHA-256("samlgw-check:" + prefix + body)[0..4))
 * cut to TOKEN_CHECK_LEN characters. */
static void make_token(const uint8_t random[TOKEN_RANDOM_BYTES], char out[TOKEN_LEN + 1])
{
	char text[128] = "samlgw-check:" TOKEN_PREFIX;
	size_t label = strlen("samlgw-check:");
	size_t body = encode(random, TOKEN_RANDOM_BYTES, text + label + TOKEN_PREFIX_LEN);
	if (body != TOKEN_BODY_LEN)
		abort();
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256((const uint8_t *)text, label + TOKEN_PREFIX_LEN + TOKEN_BODY_LEN, md);
	char check[8];
	if (encode(md, 4, check) < TOKEN_CHECK_LEN)
		abort();
	memcpy(out, text + label, TOKEN_PREFIX_LEN + TOKEN_BODY_LEN);
	memcpy(out + TOKEN_PREFIX_LEN + TOKEN_BODY_LEN, check, TOKEN_CHECK_LEN);
	out[TOKEN_LEN] = '\0';
}

static struct token_store *store;

static void check_hash(const char *text, size_t len)
{
	char hash[TOKEN_HASH_HEX_LEN + 1];
	if (token_hash_hex(text, len, hash) < 0)
		abort();
	uint8_t md[SHA256_DIGEST_LENGTH];
	SHA256((const uint8_t *)text, len, md);
	for (size_t i = 0; i < sizeof(md); i++) {
		static const char hex[] = "0123456789abcdef";
		if (hash[2 * i] != hex[md[i] >> 4] || hash[2 * i + 1] != hex[md[i] & 15])
			abort();
	}
	if (hash[TOKEN_HASH_HEX_LEN] != '\0' || !token_id_valid(hash))
		abort();
	char id[TOKEN_ID_LEN + 1];
	token_id_from_hash(hash, id);
	if (!token_id_valid(id) || strncmp(id, hash, TOKEN_ID_LEN) != 0)
		abort();
}

static void check_store(const char *text, size_t len, bool well_formed)
{
	if (store == NULL) {
		const struct store_options o = {.url = "unix:///nonexistent/samlgw-fuzz.sock",
						.prefix = "samlgw:", .timeout_ms = 100};
		const char *error;
		if (store_open(&o, &store, &error) < 0)
			abort();
	}
	const char *error = NULL;
	enum store_result r =
		store_verify(store, text, len, "alice@example.org", "xmpp", NULL, &error);
	if (r != (well_formed ? STORE_UNAVAILABLE : STORE_INVALID) || error == NULL)
		abort();
	char *owner = NULL;
	r = store_verify_owner_in(store, text, len, "imap", "example.org", &owner, NULL, &error);
	if (r != (well_formed ? STORE_UNAVAILABLE : STORE_INVALID) || owner != NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 4096)
		return 0;
	const char *text = (const char *)data;

	/* The input as a presented token. */
	bool ok = token_well_formed(text, size);
	if (ok) {
		if (size != TOKEN_LEN || memcmp(text, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0)
			abort();
		for (size_t i = TOKEN_PREFIX_LEN; i < size; i++)
			if (text[i] == '\0' || strchr(alphabet, text[i]) == NULL)
				abort();
		/* Exactly one spelling: decoding the body and making the token again gives
		 * the same text. */
		uint8_t random[TOKEN_RANDOM_BYTES + 3] = {0};
		uint32_t acc = 0;
		int bits = 0;
		size_t o = 0;
		for (size_t i = 0; i < TOKEN_BODY_LEN; i++) {
			acc = acc << 6 | (uint32_t)(strchr(alphabet, text[TOKEN_PREFIX_LEN + i]) -
						    alphabet);
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				random[o++] = (uint8_t)(acc >> bits);
			}
		}
		char again[TOKEN_LEN + 1];
		make_token(random, again);
		if (memcmp(again, text, TOKEN_LEN) != 0)
			abort();
	}
	check_hash(text, size);
	char *copy = malloc(size + 1);
	memcpy(copy, data, size);
	copy[size] = '\0';
	bool id_ok = token_id_valid(copy);
	size_t clen = strlen(copy);
	if (id_ok != (clen >= TOKEN_ID_LEN && clen <= TOKEN_HASH_HEX_LEN &&
		      strspn(copy, "0123456789abcdef") == clen))
		abort();
	free(copy);
	check_store(text, size, ok);

	/* A token made from the input by token.h's description. */
	uint8_t random[TOKEN_RANDOM_BYTES] = {0};
	memcpy(random, data, size < sizeof(random) ? size : sizeof(random));
	char token[TOKEN_LEN + 1];
	make_token(random, token);
	if (!token_well_formed(token, TOKEN_LEN) || token_well_formed(token, TOKEN_LEN - 1))
		abort();
	check_store(token, TOKEN_LEN, true);
	if (size > TOKEN_RANDOM_BYTES + 1) {
		size_t pos = data[TOKEN_RANDOM_BYTES] % TOKEN_LEN;
		char c = (char)data[TOKEN_RANDOM_BYTES + 1];
		if (c != token[pos]) {
			token[pos] = c;
			if (token_well_formed(token, TOKEN_LEN))
				abort();
		}
	}
	return 0;
}
