/* Base64 for the web layer: decoding SAML's standard base64 (white space ignored) and
 * making random base64url identifiers (session ids, CSRF tokens). */
#ifndef SAMLGW_B64_H
#define SAMLGW_B64_H

#include <stddef.h>

/* Decode text[0..len) into a new NUL-terminated buffer of at most max bytes.
 * Returns 0 with *out_r and *out_len_r, or -1 when it is not base64 or too long. */
int b64_decode(const char *text, size_t len, size_t max, unsigned char **out_r,
	       size_t *out_len_r);

/* 32 random bytes as 43 base64url characters into out. Returns -1 when the random
 * generator fails. */
#define RANDOM_ID_LEN 43
int random_id(char out[RANDOM_ID_LEN + 1]);

/* True when s is RANDOM_ID_LEN base64url characters. */
int random_id_valid(const char *s);

#endif
