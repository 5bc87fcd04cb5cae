/* The token contract: how a token looks, how it is made and how it is stored.
 *
 *   samlgw_ + base64url(32 random bytes) (43 chars) + check (6 chars) = 56 characters
 *
 * The check is base64url of the first 4 bytes of SHA-256("samlgw-check:" + prefix + body):
 * it lets every component refuse mistyped or truncated tokens before any Redis round trip
 * and lets secret scanners recognise leaked tokens. Redis only ever sees token_hash_hex()
 * of the text; the token id shown to users is the first 16 hex digits of that hash. */
#ifndef SAMLGW_TOKEN_H
#define SAMLGW_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define TOKEN_PREFIX "samlgw_"
#define TOKEN_PREFIX_LEN 7
#define TOKEN_RANDOM_BYTES 32
#define TOKEN_BODY_LEN 43
#define TOKEN_CHECK_LEN 6
#define TOKEN_LEN (TOKEN_PREFIX_LEN + TOKEN_BODY_LEN + TOKEN_CHECK_LEN)
/* Anything longer than this cannot be a token; callers cap their reads with it. */
#define TOKEN_TEXT_MAX 64
#define TOKEN_HASH_HEX_LEN 64
#define TOKEN_ID_LEN 16

/* Make a new token from RAND_bytes into out (NUL-terminated). Returns 0, or -1 with
 * *error_r when the random generator fails. Wipes its intermediate buffers. */
int token_generate(char out[TOKEN_LEN + 1], const char **error_r);

/* True when text[0..len) has the token shape: prefix, length, alphabet and check. */
bool token_well_formed(const char *text, size_t len);

/* SHA-256 of the token text as 64 lowercase hex digits (NUL-terminated). */
/* Returns 0, or -1 (out empty) when SHA-256 itself failed (out of memory). */
int token_hash_hex(const char *text, size_t len, char out[TOKEN_HASH_HEX_LEN + 1]);

/* The public id of a token: the first TOKEN_ID_LEN hex digits of its hash. */
void token_id_from_hash(const char *hash_hex, char out[TOKEN_ID_LEN + 1]);

/* True when text is a plausible token id (TOKEN_ID_LEN..64 lowercase hex digits). */
bool token_id_valid(const char *text);

#endif
