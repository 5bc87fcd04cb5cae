/* samlgw's Redis state (see kv.h and docs/redis.md). */
#include "kv.h"
#include "redis_url.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <openssl/evp.h>

struct kv {
	struct redis_url *url;
	char *where;
	char *prefix;
	struct timeval timeout;
	redisContext *ctx;
	pid_t pid;
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

enum kv_result kv_request_put(struct kv *kv, const char *id, const char *value, long long ttl,
			      const char **error_r)
{
	redisReply *r;
	enum kv_result res = command(kv, &r, error_r, "SET %srequest:%s %s EX %lld NX", kv->prefix,
				     id, value, ttl);
	if (res != KV_OK)
		return res;
	res = r->type == REDIS_REPLY_STATUS ? KV_OK : KV_MISS;
	freeReplyObject(r);
	if (res == KV_MISS)
		*error_r = "the request ID is already in use";
	return res;
}

enum kv_result kv_request_take(struct kv *kv, const char *id, char **value_r,
			       const char **error_r)
{
	redisReply *r;
	enum kv_result res = command(kv, &r, error_r, "GETDEL %srequest:%s", kv->prefix, id);
	if (res != KV_OK)
		return res;
	if (r->type != REDIS_REPLY_STRING) {
		freeReplyObject(r);
		*error_r = "no outstanding request with this ID (unknown, expired or used)";
		return KV_MISS;
	}
	*value_r = xstrndup(r->str, r->len);
	freeReplyObject(r);
	return KV_OK;
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

enum kv_result kv_assertion_first_use(struct kv *kv, const char *issuer, const char *id,
				      long long expires_at, const char **error_r)
{
	char h[65];
	sha256_hex(issuer, id, h);
	redisReply *r;
	enum kv_result res = command(kv, &r, error_r, "SET %sassertion:%s 1 NX EXAT %lld",
				     kv->prefix, h, expires_at);
	if (res != KV_OK)
		return res;
	res = r->type == REDIS_REPLY_STATUS ? KV_OK : KV_MISS;
	freeReplyObject(r);
	if (res == KV_MISS)
		*error_r = "this assertion was used before";
	return res;
}

void kv_session_clear(struct kv_session *s)
{
	free(s->jid);
	free(s->name);
	free(s->idp);
	secret_free(s->csrf);
	memset(s, 0, sizeof(*s));
}

static void session_key(const char *sid, char out[65])
{
	sha256_hex("session", sid, out);
}

enum kv_result kv_session_put(struct kv *kv, const char *sid, const struct kv_session *s,
			      long long ttl, const char **error_r)
{
	char h[65];
	session_key(sid, h);
	enum kv_result res = connect_kv(kv, error_r);
	if (res != KV_OK)
		return res;
	/* One MULTI/EXEC so a session never exists without its expiry, sent as one pipeline
	 * (one round trip). Any failure drops the connection, so no reply is left unread. */
	redisAppendCommand(kv->ctx, "MULTI");
	redisAppendCommand(kv->ctx, "HSET %ssession:%s jid %s name %s idp %s csrf %s created %lld",
			   kv->prefix, h, s->jid, s->name, s->idp, s->csrf, s->created);
	redisAppendCommand(kv->ctx, "EXPIRE %ssession:%s %lld", kv->prefix, h, ttl);
	redisAppendCommand(kv->ctx, "EXEC");
	bool ok = true;
	for (int i = 0; i < 4; i++) {
		redisReply *r = NULL;
		if (redisGetReply(kv->ctx, (void **)&r) != REDIS_OK || r == NULL) {
			*error_r = set_error(kv, "Redis at %s: %s", kv->where, kv->ctx->errstr);
			disconnect(kv);
			return KV_UNAVAILABLE;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			if (ok)
				*error_r = set_error(kv, "Redis at %s answered: %.200s", kv->where,
						     r->str);
			ok = false;
		} else if (i == 3 && (r->type != REDIS_REPLY_ARRAY || r->elements != 2)) {
			*error_r = set_error(kv, "Redis at %s did not store the session", kv->where);
			ok = false;
		}
		freeReplyObject(r);
	}
	return ok ? KV_OK : KV_UNAVAILABLE;
}

enum kv_result kv_session_get(struct kv *kv, const char *sid, long long ttl,
			      struct kv_session *s_r, const char **error_r)
{
	char h[65];
	session_key(sid, h);
	redisReply *r;
	enum kv_result res = command(kv, &r, error_r, "HGETALL %ssession:%s", kv->prefix, h);
	if (res != KV_OK)
		return res;
	struct kv_session s = {0};
	if (r->type == REDIS_REPLY_ARRAY) {
		for (size_t i = 0; i + 1 < r->elements; i += 2) {
			const redisReply *k = r->element[i], *v = r->element[i + 1];
			if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
				continue;
			char **field = strcmp(k->str, "jid") == 0    ? &s.jid
				       : strcmp(k->str, "name") == 0 ? &s.name
				       : strcmp(k->str, "idp") == 0  ? &s.idp
				       : strcmp(k->str, "csrf") == 0 ? &s.csrf
								     : NULL;
			if (field != NULL) {
				free(*field);
				*field = xstrndup(v->str, v->len);
			} else if (strcmp(k->str, "created") == 0) {
				parse_ll(v->str, 0, 1LL << 40, &s.created);
			}
		}
	}
	freeReplyObject(r);
	if (s.jid == NULL || s.name == NULL || s.idp == NULL || s.csrf == NULL || s.created == 0) {
		kv_session_clear(&s);
		*error_r = "no such session";
		return KV_MISS;
	}
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
