/* Parsers for the client messages of the OAUTHBEARER (RFC 7628) and XOAUTH2 SASL
 * mechanisms, and the JSON error challenges the server sends back. No libsasl here: the
 * plugin, the unit tests and the fuzz targets share this code. */
#ifndef SAMLGW_OAUTH_PARSE_H
#define SAMLGW_OAUTH_PARSE_H

#include <stdbool.h>
#include <stddef.h>

/* The largest client message either mechanism accepts (the cap on attacker input). */
#define OAUTH_MESSAGE_MAX 8192
/* Room for an error challenge built by oauth_error_challenge(). */
#define OAUTH_CHALLENGE_MAX 160

enum oauth_parse_result {
	OAUTH_PARSED = 0,
	/* The message is the client's reply to an error challenge (OAUTHBEARER: a lone
	 * \x01; XOAUTH2: empty). */
	OAUTH_ERROR_ACK = 1,
	/* Malformed, over the cap, or asks for channel binding. */
	OAUTH_MALFORMED = 2,
	/* No memory for the private copy (*error_r says so); nothing is wrong with it. */
	OAUTH_NOMEM = 3,
};

struct oauth_message {
	char *buf;         /* private copy of the message, split in place; wiped on free */
	size_t buf_len;
	const char *user;  /* OAUTHBEARER: the gs2 authzid, unescaped, NULL when absent;
			    * XOAUTH2: the user= value */
	const char *token; /* the bearer token (NUL-terminated, inside buf) */
	size_t token_len;
	const char *host;  /* OAUTHBEARER's optional host=, NULL when absent */
};

/* Parse an OAUTHBEARER client response. On OAUTH_PARSED fills *msg_r (release it with
 * oauth_message_clear); on OAUTH_MALFORMED and OAUTH_NOMEM sets *error_r (static text).
 * Never aborts when memory runs out. */
enum oauth_parse_result oauthbearer_parse(const char *data, size_t len,
					  struct oauth_message *msg_r, const char **error_r);

/* Parse an XOAUTH2 client response: user=USER\x01auth=Bearer TOKEN\x01\x01. */
enum oauth_parse_result xoauth2_parse(const char *data, size_t len, struct oauth_message *msg_r,
				      const char **error_r);

/* Wipe and free what a successful parse allocated. Accepts a zeroed struct. */
void oauth_message_clear(struct oauth_message *msg);

enum oauth_mech {
	OAUTH_MECH_OAUTHBEARER,
	OAUTH_MECH_XOAUTH2,
};

/* The JSON error challenge for a refused token (RFC 7628 §3.2.2, or Google's XOAUTH2
 * shape), naming scope (a service name: [a-z0-9_.-]). Returns its length. */
size_t oauth_error_challenge(enum oauth_mech mech, const char *status, const char *scope,
			     char out[OAUTH_CHALLENGE_MAX]);

#endif
