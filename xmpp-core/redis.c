/* xmpp-core's Redis connections (hiredis async on the libevent loop): one for commands and
 * scripts on behalf of users, one for token checks (so that users' traffic cannot delay
 * logins past redis.timeout_ms), and one subscribed to the revocation channel.
 *
 * hiredis 0.14 has no timeouts of its own, so a watchdog tick drops a command connection
 * whose oldest command has waited longer than redis.timeout_ms (or that has not connected
 * in that time); hiredis then calls every pending callback with a NULL reply, which every
 * caller treats as "unavailable", never as success. Lost connections are re-made on the
 * tick. Commands given while there is no connection fail at once (on the next loop turn). */
#include "xmpp.h"
#include "log.h"
#include "store.h"
#include "redis_url.h"
#include "store_async.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>

#define RETRY_MS 500

struct xredis {
	struct server *srv;
	struct redis_url *url;
	char *where;
	char *channel;
	long long timeout_ms;
	struct rconn {
		redisAsyncContext *ac;
		struct timeval since;      /* connect started */
		void *head_seen;           /* oldest pending command at the last tick */
		struct timeval head_since;
	} cmd, auth;
	redisAsyncContext *sub;
	struct timeval sub_since;
	struct timeval next_retry;
	bool was_up; /* for logging state changes once */
	struct event *tick;
};

static long long ms_since(const struct timeval *a, const struct timeval *now)
{
	return (now->tv_sec - a->tv_sec) * 1000LL + (now->tv_usec - a->tv_usec) / 1000;
}

static void note_state(struct xredis *r, bool up, const char *why)
{
	if (up == r->was_up)
		return;
	r->was_up = up;
	if (up)
		log_event(LOG_LEVEL_INFO, "redis_up", "where", r->where, NULL);
	else
		log_event(LOG_LEVEL_WARN, "redis_down", "where", r->where, "why", why, NULL);
}

static void forget(struct xredis *r, const redisAsyncContext *ac)
{
	if (r->cmd.ac == ac)
		r->cmd.ac = NULL;
	if (r->auth.ac == ac)
		r->auth.ac = NULL;
}

static void on_cmd_connect(const redisAsyncContext *ac, int status)
{
	struct xredis *r = ac->data;
	if (status != REDIS_OK) {
		note_state(r, false, ac->errstr);
		forget(r, ac); /* hiredis frees it */
		return;
	}
	note_state(r, true, NULL);
}

static void on_cmd_disconnect(const redisAsyncContext *ac, int status)
{
	struct xredis *r = ac->data;
	note_state(r, false, status == REDIS_OK ? "connection dropped" : ac->errstr);
	forget(r, ac);
}

static void on_sub_connect(const redisAsyncContext *ac, int status)
{
	struct xredis *r = ac->data;
	if (status != REDIS_OK)
		r->sub = NULL;
}

static void on_sub_disconnect(const redisAsyncContext *ac, int status)
{
	struct xredis *r = ac->data;
	(void)status;
	if (r->sub == ac)
		r->sub = NULL;
}

static void on_setup_reply(redisAsyncContext *ac, void *reply, void *data)
{
	redisReply *rep = reply;
	(void)data;
	if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
		redisAsyncDisconnect(ac);
}

static void on_sub_message(redisAsyncContext *ac, void *reply, void *data)
{
	struct xredis *r = data;
	redisReply *rep = reply;
	(void)ac;
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)
		return;
	if (rep->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(rep->element[0]->str, "message") != 0 ||
	    rep->element[2]->type != REDIS_REPLY_STRING)
		return;
	const char *hash = rep->element[2]->str;
	if (rep->element[2]->len != TOKEN_HASH_HEX_LEN)
		return;
	session_revoked(r->srv, hash);
}

static redisAsyncContext *connect_one(struct xredis *r, redisConnectCallback *on_conn,
				      redisDisconnectCallback *on_disc)
{
	redisAsyncContext *ac = r->url->kind == REDIS_URL_UNIX
					? redisAsyncConnectUnix(r->url->path)
					: redisAsyncConnect(r->url->host, r->url->port);
	if (ac == NULL)
		return NULL;
	if (ac->err != 0) {
		note_state(r, false, ac->errstr);
		redisAsyncFree(ac);
		return NULL;
	}
	ac->data = r;
	redisLibeventAttach(ac, r->srv->base);
	redisAsyncSetConnectCallback(ac, on_conn);
	redisAsyncSetDisconnectCallback(ac, on_disc);
	if (r->url->password != NULL) {
		if (r->url->username != NULL)
			redisAsyncCommand(ac, on_setup_reply, NULL, "AUTH %s %s", r->url->username,
					  r->url->password);
		else
			redisAsyncCommand(ac, on_setup_reply, NULL, "AUTH %s", r->url->password);
	}
	if (r->url->db != 0)
		redisAsyncCommand(ac, on_setup_reply, NULL, "SELECT %d", r->url->db);
	return ac;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct xredis *r = arg;
	(void)fd;
	(void)what;
	struct timeval now;
	event_base_gettimeofday_cached(r->srv->base, &now);
	struct rconn *rcs[] = {&r->cmd, &r->auth};
	for (size_t i = 0; i < 2; i++) {
		struct rconn *rc = rcs[i];
		if (rc->ac == NULL)
			continue;
		bool connected = (rc->ac->c.flags & REDIS_CONNECTED) != 0;
		void *head = rc->ac->replies.head;
		if (head != rc->head_seen) {
			rc->head_seen = head;
			rc->head_since = now;
		}
		bool hung = (!connected && ms_since(&rc->since, &now) > r->timeout_ms) ||
			    (head != NULL && ms_since(&rc->head_since, &now) > r->timeout_ms);
		if (hung) {
			note_state(r, false, "did not answer in time");
			redisAsyncContext *ac = rc->ac;
			rc->ac = NULL;
			rc->head_seen = NULL;
			redisAsyncFree(ac);
			r->next_retry = now;
			r->next_retry.tv_usec += RETRY_MS * 1000;
		}
	}
	if (r->sub != NULL && !(r->sub->c.flags & REDIS_CONNECTED) &&
	    ms_since(&r->sub_since, &now) > r->timeout_ms) {
		redisAsyncContext *ac = r->sub;
		r->sub = NULL;
		redisAsyncFree(ac);
	}
	if ((r->cmd.ac == NULL || r->auth.ac == NULL || r->sub == NULL) &&
	    ms_since(&r->next_retry, &now) >= 0) {
		r->next_retry = now;
		r->next_retry.tv_usec += RETRY_MS * 1000;
		for (size_t i = 0; i < 2; i++) {
			struct rconn *rc = rcs[i];
			if (rc->ac == NULL) {
				rc->ac = connect_one(r, on_cmd_connect, on_cmd_disconnect);
				rc->since = now;
				rc->head_seen = NULL;
			}
		}
		if (r->sub == NULL) {
			r->sub = connect_one(r, on_sub_connect, on_sub_disconnect);
			r->sub_since = now;
			if (r->sub != NULL)
				redisAsyncCommand(r->sub, on_sub_message, r, "SUBSCRIBE %s",
						  r->channel);
		}
	}
}

struct xredis *xredis_new(struct server *srv, const char **error_r)
{
	struct redis_url *url;
	if (redis_url_parse(srv->cfg->redis.url, &url, error_r) < 0)
		return NULL;
	struct xredis *r = xcalloc(1, sizeof(*r));
	r->srv = srv;
	r->url = url;
	r->where = redis_url_redact(srv->cfg->redis.url);
	r->channel = store_revoked_channel(srv->cfg->redis.prefix);
	r->timeout_ms = srv->cfg->redis.timeout_ms;
	r->was_up = true;
	long long tick_ms = r->timeout_ms / 2 < 100 ? r->timeout_ms / 2 : 100;
	if (tick_ms < 5)
		tick_ms = 5;
	struct timeval tv = {tick_ms / 1000, (tick_ms % 1000) * 1000};
	r->tick = event_new(srv->base, -1, EV_PERSIST, on_tick, r);
	event_add(r->tick, &tv);
	on_tick(-1, 0, r); /* connect now */
	return r;
}

void xredis_free(struct xredis *r)
{
	if (r == NULL)
		return;
	if (r->tick != NULL)
		event_free(r->tick);
	struct rconn *rcs[] = {&r->cmd, &r->auth};
	for (size_t i = 0; i < 2; i++) {
		if (rcs[i]->ac != NULL) {
			redisAsyncContext *ac = rcs[i]->ac;
			rcs[i]->ac = NULL;
			redisAsyncFree(ac);
		}
	}
	if (r->sub != NULL) {
		redisAsyncContext *ac = r->sub;
		r->sub = NULL;
		redisAsyncFree(ac);
	}
	redis_url_free(r->url);
	free(r->where);
	free(r->channel);
	free(r);
}

/* A failure reported on the next loop turn, so that callers never see their callback run
 * inside the call that asked for it. */
struct deferred {
	xredis_cb *cb;
	void *data;
};

static void run_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct deferred *d = arg;
	(void)fd;
	(void)what;
	d->cb(NULL, d->data);
	free(d);
}

static void fail_later(struct server *srv, xredis_cb *cb, void *data)
{
	struct deferred *d = xcalloc(1, sizeof(*d));
	d->cb = cb;
	d->data = data;
	struct timeval zero = {0, 0};
	if (event_base_once(srv->base, -1, EV_TIMEOUT, run_deferred, d, &zero) < 0)
		abort();
}

void xredis_script(struct xredis *r, const char *source, int nkeys, int nargs,
		   const char *const *args, const size_t *lens, xredis_cb *cb, void *data)
{
	if (r->cmd.ac == NULL ||
	    store_async_script(r->cmd.ac, source, nkeys, nargs, args, lens, cb, data) < 0)
		fail_later(r->srv, cb, data);
}

struct plain_call {
	xredis_cb *cb;
	void *data;
};

static void plain_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct plain_call *pc = privdata;
	redisReply *rep = reply;
	(void)ac;
	pc->cb(rep != NULL && rep->type != REDIS_REPLY_ERROR ? rep : NULL, pc->data);
	free(pc);
}

void xredis_command(struct xredis *r, int argc, const char *const *argv, const size_t *lens,
		    xredis_cb *cb, void *data)
{
	struct plain_call *pc = xcalloc(1, sizeof(*pc));
	pc->cb = cb;
	pc->data = data;
	if (r->cmd.ac == NULL ||
	    redisAsyncCommandArgv(r->cmd.ac, plain_reply, pc, argc, (const char **)argv, lens) !=
		    REDIS_OK) {
		free(pc);
		fail_later(r->srv, cb, data);
	}
}

struct verify_call {
	xredis_verify_cb *cb;
	void *data;
	int result;
	char hash[TOKEN_HASH_HEX_LEN + 1];
	const char *why;
};

static void verify_done(enum store_result result, const char *hash, const char *why,
			const char *owner, void *data)
{
	struct verify_call *vc = data;
	vc->cb((int)result, hash, why, owner, vc->data);
	free(vc);
}

static void verify_done_jid(enum store_result result, const char *hash, const char *why,
			    void *data)
{
	verify_done(result, hash, why, NULL, data);
}

static void verify_deferred(redisReply *reply, void *data)
{
	struct verify_call *vc = data;
	(void)reply;
	vc->cb(vc->result, vc->hash, vc->why, NULL, vc->data);
	free(vc);
}

void xredis_verify(struct xredis *r, const char *token, size_t len, const char *jid,
		   const char *domain, xredis_verify_cb *cb, void *data)
{
	struct verify_call *vc = xcalloc(1, sizeof(*vc));
	vc->cb = cb;
	vc->data = data;
	if (!token_well_formed(token, len)) {
		vc->result = STORE_INVALID;
		vc->why = "not a samlgw token (wrong length, alphabet or check)";
		fail_later(r->srv, verify_deferred, vc);
		return;
	}
	int queued = -1;
	if (r->auth.ac != NULL && jid != NULL)
		queued = store_async_verify(r->auth.ac, r->srv->prefix, token, len, jid, "xmpp",
					    verify_done_jid, vc);
	else if (r->auth.ac != NULL)
		queued = store_async_verify_owner(r->auth.ac, r->srv->prefix, token, len, domain,
						  "xmpp", verify_done, vc);
	if (queued < 0) {
		vc->result = STORE_UNAVAILABLE;
		vc->why = "the token store is unavailable";
		if (token_hash_hex(token, len, vc->hash) < 0)
			memset(vc->hash, 0, sizeof(vc->hash));
		fail_later(r->srv, verify_deferred, vc);
	}
}
