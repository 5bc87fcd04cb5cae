/* Base64 helpers (see b64.h). */
#include "b64.h"
#include "util.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

/* Each character's base64 value plus one; 0 for a character that is not base64 ('='
 * included: padding is handled at the end), B64_WS for the white space SAML bindings wrap
 * lines with. */
#define B64_WS 65
static const unsigned char b64_value[256] = {
	[' '] = B64_WS, ['\t'] = B64_WS, ['\n'] = B64_WS, ['\r'] = B64_WS,
	['A'] = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
	23, 24, 25, 26,
	['a'] = 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46,
	47, 48, 49, 50, 51, 52,
	['0'] = 53, 54, 55, 56, 57, 58, 59, 60, 61, 62,
	['+'] = 63, ['/'] = 64,
};

/* b64_value of a character at each of the four places of a group, shifted into place;
 * B64_SLOW set for anything the fast path does not take (white space, '=', the rest). */
#define B64_SLOW 0x80000000u
static uint32_t b64_at[4][256];
static pthread_once_t b64_at_once = PTHREAD_ONCE_INIT;

static void b64_at_init(void)
{
	for (unsigned c = 0; c < 256; c++) {
		unsigned v = b64_value[c];
		for (unsigned k = 0; k < 4; k++)
			b64_at[k][c] = v == 0 || v == B64_WS ? B64_SLOW
							     : (uint32_t)(v - 1) << (18 - 6 * k);
	}
}

/* One pass: white space skipped, every other character must be base64, "=" or "==" only
 * at the very end (after white space is removed) and only where padding belongs. */
int b64_decode(const char *text, size_t len, size_t max, unsigned char **out_r,
	       size_t *out_len_r)
{
	const unsigned char *in = (const unsigned char *)text;
	pthread_once(&b64_at_once, b64_at_init);
	/* Strip white space and up to two '=' from the end. */
	size_t end = len, pad = 0;
	while (end > 0 && (pad < 2 || b64_value[in[end - 1]] == B64_WS)) {
		unsigned char c = in[end - 1];
		if (b64_value[c] == B64_WS) {
			end--;
		} else if (c == '=') {
			end--;
			pad++;
		} else {
			break;
		}
	}
	if (end / 4 * 3 > max + 3)
		return -1;
	unsigned char *out = xcalloc(1, end / 4 * 3 + 3);
	size_t o = 0, n = 0;
	uint32_t acc = 0;
	size_t i = 0;
	while (i < end) {
		/* Fast path: whole groups of four base64 characters, no white space. */
		while (n == 0 && i + 4 <= end) {
			uint32_t v = b64_at[0][in[i]] | b64_at[1][in[i + 1]] | b64_at[2][in[i + 2]] |
				     b64_at[3][in[i + 3]];
			if (v & B64_SLOW)
				break;
			out[o] = (unsigned char)(v >> 16);
			out[o + 1] = (unsigned char)(v >> 8);
			out[o + 2] = (unsigned char)v;
			o += 3;
			i += 4;
		}
		if (i == end)
			break;
		unsigned v = b64_value[in[i++]];
		if (v == B64_WS)
			continue;
		if (v == 0)
			goto bad;
		acc = acc << 6 | (v - 1);
		if (++n == 4) {
			out[o] = (unsigned char)(acc >> 16);
			out[o + 1] = (unsigned char)(acc >> 8);
			out[o + 2] = (unsigned char)acc;
			o += 3;
			n = 0;
			acc = 0;
		}
	}
	/* n characters left over: with the padding they must make a full group. */
	if (n + pad != 0 && n + pad != 4)
		goto bad;
	if (n == 3) {
		out[o++] = (unsigned char)(acc >> 10);
		out[o++] = (unsigned char)(acc >> 2);
	} else if (n == 2) {
		out[o++] = (unsigned char)(acc >> 4);
	} else if (n == 1) {
		goto bad;
	}
	if (o == 0 || o > max)
		goto bad;
	out[o] = '\0';
	*out_r = out;
	*out_len_r = o;
	return 0;
bad:
	free(out);
	return -1;
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
