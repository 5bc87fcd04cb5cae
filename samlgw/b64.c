/* Base64 helpers (see b64.h). */
#include "b64.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

int b64_decode(const char *text, size_t len, size_t max, unsigned char **out_r,
	       size_t *out_len_r)
{
	char *clean = xcalloc(1, len + 1);
	size_t n = 0;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/' || c == '=')) {
			free(clean);
			return -1;
		}
		clean[n++] = c;
	}
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > max + 2) {
		free(clean);
		return -1;
	}
	unsigned char *out = xcalloc(1, n / 4 * 3 + 1);
	int dlen = EVP_DecodeBlock(out, (const unsigned char *)clean, (int)n);
	if (dlen >= 0 && clean[n - 1] == '=')
		dlen -= clean[n - 2] == '=' ? 2 : 1;
	free(clean);
	if (dlen < 0 || (size_t)dlen > max) {
		free(out);
		return -1;
	}
	out[dlen] = '\0';
	*out_r = out;
	*out_len_r = (size_t)dlen;
	return 0;
}

int random_id(char out[RANDOM_ID_LEN + 1])
{
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[32];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	/* 32 bytes = 256 bits: 42 full 6-bit groups and 4 bits left. */
	size_t o = 0;
	unsigned acc = 0, bits = 0;
	for (size_t i = 0; i < sizeof(raw); i++) {
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = alphabet[(acc >> bits) & 63];
		}
	}
	out[o++] = alphabet[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	secret_wipe(raw, sizeof(raw));
	return 0;
}

int random_id_valid(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return 0;
		if (n > RANDOM_ID_LEN)
			return 0;
	}
	return n == RANDOM_ID_LEN;
}
