/* The Redis token store, synchronous (hiredis). Used by samlgw, samlgw-token,
 * samlgw-authd and the SASL plugin; xmpp-core runs the same scripts asynchronously.
 *
 * Every call returns STORE_OK, STORE_INVALID (the store answered: no such token, not
 * this user's, expired, wrong service, no uses left, limit reached…) or
 * STORE_UNAVAILABLE (Redis could not be reached or answered with an error; never to be
 * taken as success). On anything but STORE_OK, *error_r says why; it points into the
 * store and stays valid until the next call on it.
 *
 * One store object belongs to one thread at a time. It connects lazily, reconnects after
 * a failure and after fork(), applies redis.timeout_ms to connecting and to each command,
 * and never lets SIGPIPE reach the process. A connection Redis closed while it sat idle
 * (a restart) is replaced before the next command is sent. A command is never sent twice
 * once any of it went out: when its reply is lost the call is STORE_UNAVAILABLE, since
 * Redis may have run it (a verification may have counted a use). */
#ifndef SAMLGW_STORE_H
#define SAMLGW_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "token.h"

enum store_result {
	STORE_OK = 0,
	STORE_INVALID = 1,
	STORE_UNAVAILABLE = 2,
};

#define TOKEN_LABEL_MAX 64
#define TOKEN_IDP_MAX 1024
#define TOKEN_MAX_USES 1000000

struct store_options {
	const char *url;    /* redis.url */
	const char *prefix; /* redis.prefix */
	int timeout_ms;     /* redis.timeout_ms */
};

struct token_info {
	char id[TOKEN_ID_LEN + 1];
	char hash[TOKEN_HASH_HEX_LEN + 1];
	char *services;
	char *label; /* "" when none */
	char *idp;   /* "" when not issued through SAML */
	long long issued, expires; /* Unix seconds */
	long long uses, max_uses;  /* max_uses 0: unlimited (uses then stays 0) */
};

struct token_list {
	struct token_info *v;
	size_t n;
};

struct store_issue_request {
	const char *jid;       /* normalised bare JID (jid_bare_normalize) */
	const char *services;  /* canonical list (services_normalize) */
	long long ttl;         /* seconds, >= 1 */
	const char *label;     /* NULL or up to TOKEN_LABEL_MAX bytes of printable UTF-8 */
	long long max_uses;    /* 0: unlimited */
	const char *idp;       /* issuing IdP's entityID, or NULL */
	long long max_per_user;/* refuse when the JID already holds this many live tokens */
};

struct token_store;

/* Check the options (no connection yet). Returns 0, or -1 with *error_r (static). */
int store_open(const struct store_options *options, struct token_store **store_r,
	       const char **error_r);
/* A new store with model's options (no connection yet), without parsing them again and
 * without any allocation that aborts: returns 0, or -1 with *error_r when memory runs
 * out. */
int store_clone(const struct token_store *model, struct token_store **store_r,
		const char **error_r);
void store_free(struct token_store *store);

/* After a call that returned STORE_UNAVAILABLE: true when it failed for want of memory
 * (the SASL plugin then answers SASL_NOMEM). store_verify, store_verify_owner(_in) and
 * store_clone never abort when memory runs out; the other calls may. */
bool store_out_of_memory(const struct token_store *store);

/* Make a token and record it. On STORE_OK, token_r holds the text (the caller wipes it
 * after showing it) and *info_r, when not NULL, its record (free with token_info_clear). */
enum store_result store_issue(struct token_store *store, const struct store_issue_request *req,
			      char token_r[TOKEN_LEN + 1], struct token_info *info_r,
			      const char **error_r);

/* Check token for jid and service; counts a use when the token is limited.
 * On STORE_OK fills *info_r when not NULL. */
enum store_result store_verify(struct token_store *store, const char *token, size_t token_len,
			       const char *jid, const char *service, struct token_info *info_r,
			       const char **error_r);

/* Check token for service whoever owns it (for clients that name no user, such as
 * OAUTHBEARER without an authzid); on STORE_OK *jid_r is the owner's bare JID (caller
 * frees). Otherwise as store_verify. */
enum store_result store_verify_owner(struct token_store *store, const char *token,
				     size_t token_len, const char *service, char **jid_r,
				     struct token_info *info_r, const char **error_r);

/* As store_verify_owner, but when domain is not NULL the owner must be a user of that
 * domain: checked in the same atomic step before a use is counted, so a token refused
 * for its owner's domain keeps its uses (STORE_INVALID). */
enum store_result store_verify_owner_in(struct token_store *store, const char *token,
					size_t token_len, const char *service,
					const char *domain, char **jid_r,
					struct token_info *info_r, const char **error_r);

/* Live tokens of jid, oldest expiry first. */
enum store_result store_list(struct token_store *store, const char *jid, struct token_list *list_r,
			     const char **error_r);

/* Revoke jid's token whose id (or full hash) is id. STORE_INVALID: no such live token. */
enum store_result store_revoke(struct token_store *store, const char *jid, const char *id,
			       char hash_r[TOKEN_HASH_HEX_LEN + 1], const char **error_r);

/* Revoke every token of jid; *count_r says how many were live. */
enum store_result store_revoke_all(struct token_store *store, const char *jid, size_t *count_r,
				   const char **error_r);

/* PING, for health checks. */
enum store_result store_ping(struct token_store *store, const char **error_r);

/* The channel revocations are published on (message: the token's hash). */
const char *store_revocation_channel(const struct token_store *store);

void token_info_clear(struct token_info *info);
void token_list_free(struct token_list *list);

#endif
