/* samlgw's Redis state (see kv.h and docs/redis.md). */
#include "kv.h"
#include "redis_url.h"
#include "store_keys.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

/* KEYS: assertion, new session, [request], [old session], [SLO index]. ARGV: has request
 * (0/1), has old session (0/1), replay until, issuer, session ttl, jid, name, idp, csrf,
 * created, then for SLO (ARGV[11] "" when the login has no NameID): nameid, its format,
 * NameQualifier, SPNameQualifier, SessionIndex, the index key's hash, the new session's
 * hash, the index ttl, the key prefix. The index (a set of session hashes) drops the
 * entries of ended sessions once it holds more than 256.
 * Answers {"ok", request state or ""} or {refusal word}. The request is used up by a login
 * and by an answer from another IdP, not by a replayed assertion (which leaves it to the
 * real answer). */
static const char login_script[] =
	"local k = 3\n"
	"local state = ''\n"
	"if ARGV[1] == '1' then\n"
	"  state = redis.call('GET', KEYS[k])\n"
	"  if not state then return {'request'} end\n"
	"  local idp = ARGV[4] .. '\\n'\n"
	"  if string.sub(state, 1, #idp) ~= idp then\n"
	"    redis.call('DEL', KEYS[k])\n"
	"    return {'idp'}\n"
	"  end\n"
	"end\n"
	"if not redis.call('SET', KEYS[1], '1', 'NX', 'EXAT', ARGV[3]) then\n"
	"  return {'replay'}\n"
	"end\n"
	"if ARGV[1] == '1' then\n"
	"  redis.call('DEL', KEYS[k])\n"
	"  k = k + 1\n"
	"end\n"
	"if ARGV[2] == '1' then redis.call('DEL', KEYS[k]) end\n"
	"redis.call('HSET', KEYS[2], 'jid', ARGV[6], 'name', ARGV[7], 'idp', ARGV[8],\n"
	"           'csrf', ARGV[9], 'created', ARGV[10])\n"
	"redis.call('EXPIRE', KEYS[2], ARGV[5])\n"
	"if ARGV[11] ~= '' then\n"
	"  local idx = KEYS[#KEYS]\n"
	"  redis.call('HSET', KEYS[2], 'nameid', ARGV[11], 'nameid_format', ARGV[12],\n"
	"             'nameid_nq', ARGV[13], 'nameid_spnq', ARGV[14], 'session_index', ARGV[15],\n"
	"             'slo_index', ARGV[16])\n"
	"  if redis.call('SCARD', idx) > 256 then\n"
	"    for _, m in ipairs(redis.call('SMEMBERS', idx)) do\n"
	"      if redis.call('EXISTS', ARGV[19] .. 'session:' .. m) == 0 then\n"
	"        redis.call('SREM', idx, m)\n"
	"      end\n"
	"    end\n"
	"  end\n"
	"  redis.call('SADD', idx, ARGV[17])\n"
	"  redis.call('EXPIRE', idx, ARGV[18])\n"
	"end\n"
	"return {'ok', state}\n";

#define STR_(x) #x
#define STR(x) STR_(x)

struct kv {
	struct redis_url *url;
	char *where;
	char *prefix;
	struct timeval timeout;
	redisContext *ctx;
	pid_t pid;
	char login_sha[41]; /* of login_script */
	char error[300];
};

static const char *set_error(struct kv *kv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static const char *set_error(struct kv *kv, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(kv->error, sizeof(kv->error), fmt, ap);
	va_end(ap);
	return kv->error;
}

int kv_open(const struct kv_options *o, struct kv **kv_r, const char **error_r)
{
	struct redis_url *url;
	if (redis_url_parse(o->url, &url, error_r) < 0)
		return -1;
	struct kv *kv = xcalloc(1, sizeof(*kv));
	kv->url = url;
	kv->where = redis_url_redact(o->url);
	kv->prefix = xstrdup(o->prefix);
	kv->timeout.tv_sec = o->timeout_ms / 1000;
	kv->timeout.tv_usec = (o->timeout_ms % 1000) * 1000;
	store_script_sha1(login_script, kv->login_sha);
	*kv_r = kv;
	return 0;
}

static void disconnect(struct kv *kv)
{
	if (kv->ctx != NULL)
		redisFree(kv->ctx);
	kv->ctx = NULL;
}

void kv_free(struct kv *kv)
{
	if (kv == NULL)
		return;
	disconnect(kv);
	redis_url_free(kv->url);
	free(kv->where);
	free(kv->prefix);
	free(kv);
}

static enum kv_result connect_kv(struct kv *kv, const char **error_r)
{
	if (kv->ctx != NULL && kv->pid == getpid())
		return KV_OK;
	disconnect(kv);
	redisContext *c = kv->url->kind == REDIS_URL_UNIX
				  ? redisConnectUnixWithTimeout(kv->url->path, kv->timeout)
				  : redisConnectWithTimeout(kv->url->host, kv->url->port, kv->timeout);
	if (c == NULL || c->err != 0) {
		*error_r = set_error(kv, "cannot connect to Redis at %s: %s", kv->where,
				     c != NULL ? c->errstr : "out of memory");
		if (c != NULL)
			redisFree(c);
		return KV_UNAVAILABLE;
	}
	redisSetTimeout(c, kv->timeout);
	const char *fail = NULL;
	redisReply *r;
	if (kv->url->password != NULL) {
		r = kv->url->username != NULL
			    ? redisCommand(c, "AUTH %s %s", kv->url->username, kv->url->password)
			    : redisCommand(c, "AUTH %s", kv->url->password);
		if (r == NULL || r->type == REDIS_REPLY_ERROR)
			fail = "Redis refused the credentials";
		freeReplyObject(r);
	}
	if (fail == NULL && kv->url->db != 0) {
		r = redisCommand(c, "SELECT %d", kv->url->db);
		if (r == NULL || r->type == REDIS_REPLY_ERROR)
			fail = "Redis refused to select the database";
		freeReplyObject(r);
	}
	if (fail != NULL) {
		*error_r = set_error(kv, "%s at %s", fail, kv->where);
		redisFree(c);
		return KV_UNAVAILABLE;
	}
	kv->ctx = c;
	kv->pid = getpid();
	return KV_OK;
}

/* Run one command; on any transport or server error the connection is dropped and
 * KV_UNAVAILABLE returned. */
static enum kv_result command(struct kv *kv, redisReply **reply_r, const char **error_r,
			      const char *fmt, ...)
{
	enum kv_result r = connect_kv(kv, error_r);
	if (r != KV_OK)
		return r;
	va_list ap;
	va_start(ap, fmt);
	redisReply *reply = redisvCommand(kv->ctx, fmt, ap);
	va_end(ap);
	if (reply == NULL) {
		*error_r = set_error(kv, "Redis at %s: %s", kv->where, kv->ctx->errstr);
		disconnect(kv);
		return KV_UNAVAILABLE;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		*error_r = set_error(kv, "Redis at %s answered: %.200s", kv->where, reply->str);
		freeReplyObject(reply);
		return KV_UNAVAILABLE;
	}
	*reply_r = reply;
	return KV_OK;
}

enum kv_result kv_ping(struct kv *kv, const char **error_r)
{
	redisReply *r;
	enum kv_result res = command(kv, &r, error_r, "PING");
	if (res == KV_OK)
		freeReplyObject(r);
	return res;
}

/* Store value under PREFIX KIND:ID for ttl seconds, unless that key exists (KV_MISS). */
static enum kv_result put_new(struct kv *kv, const char *kind, const char *id, const char *value,
			      long long ttl, const char **error_r)
{
	redisReply *r;
	enum kv_result res = command(kv, &r, error_r, "SET %s%s:%s %s EX %lld NX", kv->prefix,
				     kind, id, value, ttl);
	if (res != KV_OK)
		return res;
	res = r->type == REDIS_REPLY_STATUS ? KV_OK : KV_MISS;
	freeReplyObject(r);
	if (res == KV_MISS)
		*error_r = "the request ID is already in use";
	return res;
}

enum kv_result kv_request_put(struct kv *kv, const char *id, const char *value, long long ttl,
			      const char **error_r)
{
	return put_new(kv, "request", id, value, ttl, error_r);
}

static void sha256_hex(const char *a, const char *b, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (ctx == NULL)
		abort();
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, a, strlen(a) + 1); /* with the NUL: a separator */
	if (b != NULL)
		EVP_DigestUpdate(ctx, b, strlen(b));
	EVP_DigestFinal_ex(ctx, md, &len);
	EVP_MD_CTX_free(ctx);
	for (unsigned i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

void kv_session_clear(struct kv_session *s)
{
	free(s->jid);
	free(s->name);
	free(s->idp);
	secret_free(s->csrf);
	free(s->slo.nameid);
	free(s->slo.format);
	free(s->slo.nq);
	free(s->slo.spnq);
	free(s->slo.session_index);
	free(s->tokens);
	memset(s, 0, sizeof(*s));
}

static void session_key(const char *sid, char out[65])
{
	sha256_hex("session", sid, out);
}

void kv_session_hash(const char *sid, char out[65])
{
	session_key(sid, out);
}

/* The SLO index key's hash: SHA-256 of the IdP's entityID, NUL, the NameID value. */
static void slo_index_hash(const char *idp, const char *nameid, char out[65])
{
	sha256_hex(idp, nameid, out);
}

/* EVALSHA of the login script, EVAL when Redis does not know it yet. */
static enum kv_result run_login_script(struct kv *kv, int argc, const char **argv,
				       size_t *lens, redisReply **reply_r,
				       const char **error_r)
{
	argv[0] = "EVALSHA";
	lens[0] = 7;
	argv[1] = kv->login_sha;
	lens[1] = 40;
	enum kv_result r = connect_kv(kv, error_r);
	for (int attempt = 0; r == KV_OK && attempt < 2; attempt++) {
		redisReply *reply = redisCommandArgv(kv->ctx, argc, argv, lens);
		if (reply == NULL) {
			*error_r = set_error(kv, "Redis at %s: %s", kv->where, kv->ctx->errstr);
			disconnect(kv);
			return KV_UNAVAILABLE;
		}
		if (attempt == 0 && reply->type == REDIS_REPLY_ERROR &&
		    strncmp(reply->str, "NOSCRIPT", 8) == 0) {
			freeReplyObject(reply);
			argv[0] = "EVAL";
			lens[0] = 4;
			argv[1] = login_script;
			lens[1] = sizeof(login_script) - 1;
			continue;
		}
		if (reply->type == REDIS_REPLY_ERROR) {
			*error_r = set_error(kv, "Redis at %s answered: %.200s", kv->where,
					     reply->str);
			freeReplyObject(reply);
			return KV_UNAVAILABLE;
		}
		*reply_r = reply;
		return KV_OK;
	}
	return r;
}

enum kv_result kv_login(struct kv *kv, const char *issuer, const char *assertion_id,
			long long replay_until, const char *request_id,
			const struct kv_session_new *session, char **return_to_r,
			enum kv_login_refusal *refusal_r, const char **error_r)
{
	char replay_hash[65], session_hash[65], old_hash[65];
	sha256_hex(issuer, assertion_id, replay_hash);
	session_key(session->sid, session_hash);
	const struct kv_session *s = session->s;
	char *keys[5] = {
		xasprintf("%sassertion:%s", kv->prefix, replay_hash),
		xasprintf("%ssession:%s", kv->prefix, session_hash),
	};
	int nkeys = 2;
	if (request_id != NULL)
		keys[nkeys++] = xasprintf("%srequest:%s", kv->prefix, request_id);
	if (session->old_sid != NULL) {
		session_key(session->old_sid, old_hash);
		keys[nkeys++] = xasprintf("%ssession:%s", kv->prefix, old_hash);
	}
	const struct kv_slo *slo = &s->slo;
	char index_hash[65] = "";
	if (slo->nameid != NULL) {
		slo_index_hash(s->idp, slo->nameid, index_hash);
		keys[nkeys++] = xasprintf("%ssloindex:%s", kv->prefix, index_hash);
	}
	char until[24], ttl[24], created[24], nk[4], index_ttl[24];
	snprintf(until, sizeof(until), "%lld", replay_until);
	snprintf(ttl, sizeof(ttl), "%lld", session->ttl);
	snprintf(created, sizeof(created), "%lld", s->created);
	snprintf(nk, sizeof(nk), "%d", nkeys);
	snprintf(index_ttl, sizeof(index_ttl), "%lld",
		 session->index_ttl > 0 ? session->index_ttl : session->ttl);
	const char *argv[3 + 5 + 19];
	size_t lens[ARRAY_SIZE(argv)];
	int argc = 2;
	argv[argc++] = nk;
	for (int i = 0; i < nkeys; i++)
		argv[argc++] = keys[i];
	const char *args[] = {
		request_id != NULL ? "1" : "0", session->old_sid != NULL ? "1" : "0", until,
		issuer, ttl, s->jid, s->name, s->idp, s->csrf, created,
		slo->nameid != NULL ? slo->nameid : "",
		slo->format != NULL ? slo->format : "",
		slo->nq != NULL ? slo->nq : "",
		slo->spnq != NULL ? slo->spnq : "",
		slo->session_index != NULL ? slo->session_index : "",
		index_hash, session_hash, index_ttl, kv->prefix,
	};
	for (size_t i = 0; i < ARRAY_SIZE(args); i++)
		argv[argc++] = args[i];
	for (int i = 2; i < argc; i++)
		lens[i] = strlen(argv[i]);
	redisReply *r = NULL;
	enum kv_result res = run_login_script(kv, argc, argv, lens, &r, error_r);
	for (int i = 0; i < nkeys; i++)
		free(keys[i]);
	if (res != KV_OK)
		return res;
	const redisReply *word = r->type == REDIS_REPLY_ARRAY && r->elements >= 1 ? r->element[0]
										   : NULL;
	if (word == NULL || word->type != REDIS_REPLY_STRING) {
		res = KV_UNAVAILABLE;
		*error_r = set_error(kv, "Redis at %s answered the login script in an unexpected "
					 "shape", kv->where);
	} else if (strcmp(word->str, "ok") == 0 && r->elements == 2 &&
		   r->element[1]->type == REDIS_REPLY_STRING) {
		/* state: "IDP-ENTITY-ID\nRETURN-PATH", its IdP checked by the script */
		const char *nl = memchr(r->element[1]->str, '\n', r->element[1]->len);
		*return_to_r = nl != NULL ? xstrndup(nl + 1, r->element[1]->len -
							       (size_t)(nl + 1 - r->element[1]->str))
					  : xstrdup("");
	} else if (strcmp(word->str, "request") == 0) {
		res = KV_MISS;
		*refusal_r = KV_LOGIN_NO_REQUEST;
		*error_r = "no outstanding request with this ID (unknown, expired or used)";
	} else if (strcmp(word->str, "idp") == 0) {
		res = KV_MISS;
		*refusal_r = KV_LOGIN_OTHER_IDP;
		*error_r = "the request was sent to another IdP than the one that answered";
	} else if (strcmp(word->str, "replay") == 0) {
		res = KV_MISS;
		*refusal_r = KV_LOGIN_REPLAY;
		*error_r = "this assertion was used before";
	} else {
		res = KV_UNAVAILABLE;
		*error_r = set_error(kv, "Redis at %s answered the login script in an unexpected "
					 "shape", kv->where);
	}
	freeReplyObject(r);
	return res;
}

/* A session's fields from an HGETALL-shaped array; false when it is no whole session. */
static bool session_from_reply(const redisReply *r, struct kv_session *s_r)
{
	struct kv_session s = {0};
	char *slo_index = NULL;
	if (r->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i + 1 < r->elements; i += 2) {
			const redisReply *k = r->element[i], *v = r->element[i + 1];
			if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
				continue;
			char **field = strcmp(k->str, "jid") == 0    ? &s.jid
				       : strcmp(k->str, "name") == 0 ? &s.name
				       : strcmp(k->str, "idp") == 0  ? &s.idp
				       : strcmp(k->str, "csrf") == 0 ? &s.csrf
				       : strcmp(k->str, "nameid") == 0 ? &s.slo.nameid
				       : strcmp(k->str, "nameid_format") == 0 ? &s.slo.format
				       : strcmp(k->str, "nameid_nq") == 0 ? &s.slo.nq
				       : strcmp(k->str, "nameid_spnq") == 0 ? &s.slo.spnq
				       : strcmp(k->str, "session_index") == 0 ? &s.slo.session_index
				       : strcmp(k->str, "tokens") == 0 ? &s.tokens
				       : strcmp(k->str, "slo_index") == 0 ? &slo_index
									     : NULL;
			if (field != NULL && v->len > 0) {
				free(*field);
				*field = xstrndup(v->str, v->len);
			} else if (strcmp(k->str, "created") == 0) {
				parse_ll(v->str, 0, 1LL << 40, &s.created);
			}
		}
	}
	free(slo_index);
	if (s.jid == NULL || s.name == NULL || s.idp == NULL || s.csrf == NULL || s.created == 0) {
		kv_session_clear(&s);
		return false;
	}
	*s_r = s;
	return true;
}

/* The session in r (a reply of command() that returned res: HGETALL's fields), which it
 * frees. */
static enum kv_result session_result(enum kv_result res, redisReply *r, struct kv_session *s_r,
				     const char **error_r)
{
	if (res != KV_OK)
		return res;
	struct kv_session s;
	bool ok = session_from_reply(r, &s);
	freeReplyObject(r);
	if (!ok) {
		*error_r = "no such session";
		return KV_MISS;
	}
	*s_r = s;
	return KV_OK;
}

enum kv_result kv_session_get(struct kv *kv, const char *sid, long long ttl,
			      struct kv_session *s_r, const char **error_r)
{
	char h[65];
	session_key(sid, h);
	redisReply *r = NULL;
	enum kv_result res = command(kv, &r, error_r, "HGETALL %ssession:%s", kv->prefix, h);
	struct kv_session s;
	res = session_result(res, r, &s, error_r);
	if (res != KV_OK)
		return res;
	res = command(kv, &r, error_r, "EXPIRE %ssession:%s %lld", kv->prefix, h, ttl);
	if (res != KV_OK) {
		kv_session_clear(&s);
		return res;
	}
	freeReplyObject(r);
	*s_r = s;
	return KV_OK;
}

enum kv_result kv_session_delete(struct kv *kv, const char *sid, const char **error_r)
{
	char h[65];
	session_key(sid, h);
	redisReply *r;
	enum kv_result res = command(kv, &r, error_r, "DEL %ssession:%s", kv->prefix, h);
	if (res == KV_OK)
		freeReplyObject(r);
	return res;
}

static bool hash_valid(const char *h)
{
	if (strlen(h) != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (hex_digit(h[i]) < 0)
			return false;
	return true;
}

/* KEYS: session. ARGV: token id, cap. Appends the id to the session's "tokens" field. */
static const char add_token_script[] =
	"if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end\n"
	"local t = redis.call('HGET', KEYS[1], 'tokens') or ''\n"
	"local n = 0\n"
	"for _ in string.gmatch(t, '%S+') do n = n + 1 end\n"
	"if n >= tonumber(ARGV[2]) then return 0 end\n"
	"if t ~= '' then t = t .. ' ' end\n"
	"redis.call('HSET', KEYS[1], 'tokens', t .. ARGV[1])\n"
	"return 1\n";

enum kv_result kv_session_add_token(struct kv *kv, const char *sid, const char *token_id,
				    const char **error_r)
{
	char h[65];
	session_key(sid, h);
	redisReply *r;
	enum kv_result res = command(kv, &r, error_r, "EVAL %s 1 %ssession:%s %s %d",
				     add_token_script, kv->prefix, h, token_id,
				     KV_SESSION_TOKENS_MAX);
	if (res != KV_OK)
		return res;
	res = r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? KV_OK : KV_MISS;
	freeReplyObject(r);
	if (res == KV_MISS)
		*error_r = "the session is gone or already lists " STR(KV_SESSION_TOKENS_MAX)
			   " tokens";
	return res;
}

/* KEYS: session. ARGV: prefix, the session's hash. Reads and deletes the session and
 * takes it out of its SLO index. */
static const char end_script[] =
	"local t = redis.call('HGETALL', KEYS[1])\n"
	"if #t == 0 then return t end\n"
	"local idx = redis.call('HGET', KEYS[1], 'slo_index')\n"
	"redis.call('DEL', KEYS[1])\n"
	"if idx and idx ~= '' then\n"
	"  redis.call('SREM', ARGV[1] .. 'sloindex:' .. idx, ARGV[2])\n"
	"end\n"
	"return t\n";

enum kv_result kv_session_end(struct kv *kv, const char *hash, struct kv_session *s_r,
			      const char **error_r)
{
	if (!hash_valid(hash)) {
		*error_r = "not a session hash";
		return KV_MISS;
	}
	redisReply *r = NULL;
	enum kv_result res = command(kv, &r, error_r, "EVAL %s 1 %ssession:%s %s %s", end_script,
				     kv->prefix, hash, kv->prefix, hash);
	return session_result(res, r, s_r, error_r);
}

enum kv_result kv_session_peek(struct kv *kv, const char *hash, struct kv_session *s_r,
			       const char **error_r)
{
	if (!hash_valid(hash)) {
		*error_r = "not a session hash";
		return KV_MISS;
	}
	redisReply *r = NULL;
	enum kv_result res = command(kv, &r, error_r, "HGETALL %ssession:%s", kv->prefix, hash);
	return session_result(res, r, s_r, error_r);
}

enum kv_result kv_slo_sessions(struct kv *kv, const char *idp, const char *nameid,
			       char (**hashes_r)[65], size_t *n_r, const char **error_r)
{
	char h[65];
	slo_index_hash(idp, nameid, h);
	redisReply *r;
	enum kv_result res = command(kv, &r, error_r, "SRANDMEMBER %ssloindex:%s %d", kv->prefix,
				     h, KV_SLO_SESSIONS_MAX);
	if (res != KV_OK)
		return res;
	size_t n = 0;
	char(*v)[65] = xcalloc(r->type == REDIS_REPLY_ARRAY && r->elements > 0 ? r->elements : 1,
			       sizeof(*v));
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		const redisReply *m = r->element[i];
		if (m->type == REDIS_REPLY_STRING && m->len == 64 && hash_valid(m->str))
			memcpy(v[n++], m->str, 65);
	}
	freeReplyObject(r);
	*hashes_r = v;
	*n_r = n;
	return KV_OK;
}

enum kv_result kv_logout_put(struct kv *kv, const char *id, const char *value, long long ttl,
			     const char **error_r)
{
	return put_new(kv, "logout", id, value, ttl, error_r);
}

/* The value a LogoutRequest's key holds once its answer came. */
#define LOGOUT_USED "\001used"

enum kv_result kv_logout_take(struct kv *kv, const char *id, char **value_r, bool *replay_r,
			      const char **error_r)
{
	redisReply *r;
	enum kv_result res = command(kv, &r, error_r, "SET %slogout:%s %s XX KEEPTTL GET",
				     kv->prefix, id, LOGOUT_USED);
	if (res != KV_OK)
		return res;
	if (r->type != REDIS_REPLY_STRING) {
		*replay_r = false;
		*error_r = "no outstanding LogoutRequest with this ID (unknown or expired)";
		res = KV_MISS;
	} else if (strcmp(r->str, LOGOUT_USED) == 0) {
		*replay_r = true;
		*error_r = "the LogoutRequest with this ID was answered before";
		res = KV_MISS;
	} else {
		*value_r = xstrndup(r->str, r->len);
	}
	freeReplyObject(r);
	return res;
}

enum kv_result kv_slo_request_once(struct kv *kv, const char *issuer, const char *id,
				   long long until, const char **error_r)
{
	char h[65];
	sha256_hex(issuer, id, h);
	redisReply *r;
	enum kv_result res = command(kv, &r, error_r, "SET %ssloreq:%s 1 NX EXAT %lld",
				     kv->prefix, h, until);
	if (res != KV_OK)
		return res;
	res = r->type == REDIS_REPLY_STATUS ? KV_OK : KV_MISS;
	freeReplyObject(r);
	if (res == KV_MISS)
		*error_r = "this LogoutRequest was received before";
	return res;
}
