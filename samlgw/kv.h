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
/* Take (read and delete, atomically) the request ID; KV_MISS when unknown or used. */
enum kv_result kv_request_take(struct kv *kv, const char *id, char **value_r,
			       const char **error_r);

/* Record an assertion (key: hash of issuer and assertion ID) until expires_at (Unix time).
 * KV_MISS when it was recorded before: a replay. */
enum kv_result kv_assertion_first_use(struct kv *kv, const char *issuer, const char *id,
				      long long expires_at, const char **error_r);

/* Sessions: key session:SHA256(sid) is a hash of fields. */
struct kv_session {
	char *jid, *name, *idp, *csrf;
	long long created;
};
void kv_session_clear(struct kv_session *s);

enum kv_result kv_session_put(struct kv *kv, const char *sid, const struct kv_session *s,
			      long long ttl, const char **error_r);
/* Load a session and extend its life to ttl seconds; KV_MISS when there is none. */
enum kv_result kv_session_get(struct kv *kv, const char *sid, long long ttl,
			      struct kv_session *s_r, const char **error_r);
enum kv_result kv_session_delete(struct kv *kv, const char *sid, const char **error_r);

#endif
