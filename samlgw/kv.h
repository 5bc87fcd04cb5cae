/* samlgw's own state in Redis (docs/redis.md): outstanding AuthnRequests, the assertion
 * replay cache and web sessions, under redis.prefix like the token store. Synchronous
 * hiredis; one kv object belongs to one thread. Every call returns KV_OK, KV_MISS (the
 * store answered: no such key, already used…) or KV_UNAVAILABLE with *error_r. */
#ifndef SAMLGW_KV_H
#define SAMLGW_KV_H

#include <stdbool.h>
#include <stddef.h>

enum kv_result {
	KV_OK = 0,
	KV_MISS = 1,
	KV_UNAVAILABLE = 2,
};

struct kv;

struct kv_options {
	const char *url;
	const char *prefix;
	int timeout_ms;
};

int kv_open(const struct kv_options *options, struct kv **kv_r, const char **error_r);
void kv_free(struct kv *kv);

enum kv_result kv_ping(struct kv *kv, const char **error_r);

/* Remember an AuthnRequest: key request:ID holds value for ttl seconds. */
enum kv_result kv_request_put(struct kv *kv, const char *id, const char *value, long long ttl,
			      const char **error_r);

/* Sessions: key session:SHA256(sid) is a hash of fields. */
struct kv_session {
	char *jid, *name, *idp, *csrf;
	long long created;
};
void kv_session_clear(struct kv_session *s);

/* A web session to store under sid (expiring ttl seconds later), ending the browser's
 * previous session old_sid (NULL: none) with it. */
struct kv_session_new {
	const char *sid;
	const char *old_sid;
	const struct kv_session *s;
	long long ttl;
};

/* Why kv_login answered KV_MISS. */
enum kv_login_refusal {
	KV_LOGIN_NO_REQUEST, /* the request ID is unknown, expired or used */
	KV_LOGIN_OTHER_IDP,  /* the request was sent to another IdP (it is used up now) */
	KV_LOGIN_REPLAY,     /* the assertion was used before (the request is used up too) */
};

/* Everything the ACS writes, as one Lua script (one round trip): take the request
 * request_id (read and delete; NULL for an unsolicited Response), whose IdP must be
 * issuer; record the assertion (key: hash of issuer and assertion ID) until replay_until
 * (Unix time), refusing a second use; then end the old session and store the new one.
 * After a refusal no session is written. Returns KV_OK with *return_to_r (the request's
 * return path, "" when unsolicited; freed by the caller), KV_MISS with *refusal_r, or
 * KV_UNAVAILABLE. */
enum kv_result kv_login(struct kv *kv, const char *issuer, const char *assertion_id,
			long long replay_until, const char *request_id,
			const struct kv_session_new *session, char **return_to_r,
			enum kv_login_refusal *refusal_r, const char **error_r);

/* Load a session and extend its life to ttl seconds; KV_MISS when there is none. */
enum kv_result kv_session_get(struct kv *kv, const char *sid, long long ttl,
			      struct kv_session *s_r, const char **error_r);
enum kv_result kv_session_delete(struct kv *kv, const char *sid, const char **error_r);

#endif
