/* samlgw's own state in Redis (docs/redis.md): outstanding AuthnRequests, the assertion
 * replay cache, web sessions and single logout's state (the NameID index, our pending
 * LogoutRequests, the IdP LogoutRequest replay cache), under redis.prefix like the token
 * store. Synchronous
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

/* What single logout needs of a login (docs/saml.md, Logout): the assertion's NameID
 * (value, Format, NameQualifier, SPNameQualifier; NULL when absent) and the
 * AuthnStatement's SessionIndex. nameid NULL: the session cannot take part in SLO. */
#define KV_SLO_FIELD_MAX 1024 /* bytes, each field */
struct kv_slo {
	char *nameid, *format, *nq, *spnq, *session_index;
};

/* Sessions: key session:SHA256(sid) is a hash of fields. */
struct kv_session {
	char *jid, *name, *idp, *csrf;
	long long created;
	struct kv_slo slo;
	char *tokens; /* ids of the tokens issued in this session, space-separated, or NULL */
};
void kv_session_clear(struct kv_session *s);

/* A web session to store under sid (expiring ttl seconds later), ending the browser's
 * previous session old_sid (NULL: none) with it. */
struct kv_session_new {
	const char *sid;
	const char *old_sid;
	const struct kv_session *s;
	long long ttl;
	long long index_ttl; /* the SLO index entry's lifetime (web.session_max) */
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

/* The session's key hash (hex SHA-256 of "session", NUL, sid): what the SLO index lists. */
void kv_session_hash(const char *sid, char out[65]);
/* Note a token issued in the session (at most KV_SESSION_TOKENS_MAX are kept; KV_MISS when
 * the session is gone or full). */
#define KV_SESSION_TOKENS_MAX 64
enum kv_result kv_session_add_token(struct kv *kv, const char *sid, const char *token_id,
				    const char **error_r);
/* End the session with key hash hash (read and delete in one step, and leave the SLO index):
 * KV_OK with *s_r (what it held), KV_MISS when it was gone. */
enum kv_result kv_session_end(struct kv *kv, const char *hash, struct kv_session *s_r,
			      const char **error_r);
/* The SLO index: the key hashes of the sessions logged in by idp with NameID value
 * nameid (entries of ended sessions may linger until the index expires). On KV_OK
 * *hashes_r (each 64 hex digits) holds *n_r entries, at most KV_SLO_SESSIONS_MAX; free with
 * free(). Reading a session by hash without touching it: kv_session_peek. */
#define KV_SLO_SESSIONS_MAX 256
enum kv_result kv_slo_sessions(struct kv *kv, const char *idp, const char *nameid,
			       char (**hashes_r)[65], size_t *n_r, const char **error_r);
enum kv_result kv_session_peek(struct kv *kv, const char *hash, struct kv_session *s_r,
			       const char **error_r);

/* SP-initiated logout: remember LogoutRequest id (value: what the answer needs) for ttl
 * seconds. Taking it marks it used (for the rest of ttl): KV_OK with *value_r (freed by the
 * caller), KV_MISS with *replay_r false (unknown or expired) or true (already answered). */
enum kv_result kv_logout_put(struct kv *kv, const char *id, const char *value, long long ttl,
			     const char **error_r);
enum kv_result kv_logout_take(struct kv *kv, const char *id, char **value_r, bool *replay_r,
			      const char **error_r);
/* IdP-initiated logout: record the LogoutRequest (issuer, ID) until until (Unix time);
 * KV_MISS when it was recorded before (a replay). */
enum kv_result kv_slo_request_once(struct kv *kv, const char *issuer, const char *id,
				   long long until, const char **error_r);

#endif
