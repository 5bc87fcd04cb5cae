/* Accounts and sessions: resource binding (RFC 6120 §7) with conflicts resolved by
 * replacing the older session, the account's roster loaded before the first bind is
 * answered, the end of a session, and revocation (closing every session that logged in
 * with a revoked token, and failing every login whose check of it is still in flight:
 * the check's answer and the revocation arrive on different Redis connections, so the
 * revocation may come first). */
#include "xmpp.h"
#include "hashmap.h"
#include "jidx.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

static void free_item(const char *key, void *value, void *ctx)
{
	(void)key;
	(void)ctx;
	roster_item_free(value);
}

struct account *account_get(struct server *srv, const char *bare)
{
	struct account *a = hashmap_get(srv->accounts, bare);
	if (a != NULL)
		return a;
	size_t len = strlen(bare);
	a = xcalloc(1, sizeof(*a) + len + 1);
	memcpy(a->bare, bare, len + 1);
	a->roster = hashmap_new();
	hashmap_put(srv->accounts, bare, a);
	return a;
}

void account_maybe_free(struct server *srv, struct account *a)
{
	if (a->sessions != NULL || a->waiters != NULL || a->loading)
		return;
	hashmap_remove(srv->accounts, a->bare);
	hashmap_each(a->roster, free_item, NULL);
	hashmap_free(a->roster);
	free(a);
}

struct session *account_session(struct account *a, const char *resource)
{
	for (struct session *s = a->sessions; s != NULL; s = s->next)
		if (strcmp(s->resource, resource) == 0)
			return s;
	return NULL;
}

void session_deliver(struct session *s, const struct xnode *stanza)
{
	conn_send_node(s->conn, stanza);
}

static void bind_error(struct conn *c, const char *type, const char *condition)
{
	struct xnode *iq = xnode_new(NS_CLIENT, "iq");
	xnode_set_attr(iq, "type", "set");
	xnode_set_attr(iq, "id", c->bind_id);
	stanza_reply_error(c, iq, type, condition);
	xnode_free(iq);
}

static void bind_clear(struct conn *c)
{
	c->bind_pending = false;
	free(c->bind_resource);
	free(c->bind_id);
	c->bind_resource = c->bind_id = NULL;
}

static void bind_complete(struct conn *c, struct account *a)
{
	size_t n = 0;
	for (struct session *s = a->sessions; s != NULL; s = s->next)
		n++;
	struct session *old = account_session(a, c->bind_resource);
	if (old == NULL && n >= SESSIONS_PER_ACCOUNT_MAX) {
		bind_error(c, "wait", "resource-constraint");
		bind_clear(c);
		return;
	}
	size_t bare_len = strlen(a->bare), res_len = strlen(c->bind_resource);
	struct session *s = xcalloc(1, sizeof(*s) + bare_len + 1 + res_len + 1);
	s->conn = c;
	s->acct = a;
	memcpy(s->full, a->bare, bare_len);
	s->full[bare_len] = '/';
	memcpy(s->full + bare_len + 1, c->bind_resource, res_len + 1);
	s->resource = s->full + bare_len + 1;
	s->next = a->sessions;
	a->sessions = s;
	c->session = s;
	xmlstream_set_max_stanza(c->xs, c->srv->limits.max_stanza);
	/* The new session is in place first, so the account outlives the old one's end. */
	if (old != NULL) {
		log_event(LOG_LEVEL_INFO, "session_replaced", "jid", s->full, NULL);
		conn_stream_error(old->conn, "conflict", "replaced by a new connection");
	}
	struct xnode *iq = xnode_new(NS_CLIENT, "iq");
	xnode_set_attr(iq, "type", "result");
	xnode_set_attr(iq, "id", c->bind_id);
	struct xnode *jid = xnode_add(xnode_add(iq, NS_BIND, "bind"), NS_BIND, "jid");
	xnode_add_text(jid, s->full, strlen(s->full));
	conn_send_node(c, iq);
	xnode_free(iq);
	bind_clear(c);
	log_event(LOG_LEVEL_INFO, "session_start", "addr", c->addr, "jid", s->full, NULL);
}

void session_bind(struct conn *c, struct xnode *iq)
{
	const char *type = xnode_attr(iq, "type");
	const char *id = xnode_attr(iq, "id");
	if (c->bind_pending || type == NULL || strcmp(type, "set") != 0 || id == NULL) {
		stanza_reply_error(c, iq, "modify", "bad-request");
		return;
	}
	struct xnode *res = xnode_child(xnode_child(iq, NS_BIND, "bind"), NS_BIND, "resource");
	char *resource = res != NULL ? xnode_text(res) : NULL;
	if (resource != NULL && resource[0] == '\0') {
		free(resource);
		resource = NULL;
	}
	if (resource != NULL && !resource_valid(resource)) {
		free(resource);
		stanza_reply_error(c, iq, "modify", "bad-request");
		return;
	}
	if (resource == NULL) {
		unsigned char rnd[8];
		if (RAND_bytes(rnd, sizeof(rnd)) != 1)
			abort();
		resource = xcalloc(1, 2 * sizeof(rnd) + 1);
		for (size_t i = 0; i < sizeof(rnd); i++)
			snprintf(resource + 2 * i, 3, "%02x", rnd[i]);
	}
	c->bind_pending = true;
	c->bind_resource = resource;
	c->bind_id = xstrdup(id);
	struct account *a = account_get(c->srv, c->bare);
	if (c->srv->redis == NULL)
		a->loaded = true; /* no storage: an empty roster */
	if (a->loaded) {
		bind_complete(c, a);
		return;
	}
	struct bind_waiter *w = xcalloc(1, sizeof(*w));
	conn_ref(c);
	w->conn = c;
	w->next = a->waiters;
	a->waiters = w;
	if (!a->loading) {
		a->loading = true;
		roster_load(c->srv, a->bare);
	}
}

void session_roster_loaded(struct server *srv, const char *bare, redisReply *reply)
{
	struct account *a = hashmap_get(srv->accounts, bare);
	if (a == NULL)
		return;
	a->loading = false;
	if (reply != NULL && !a->loaded) {
		for (size_t i = 0; i + 1 < reply->elements; i += 2) {
			const redisReply *k = reply->element[i], *v = reply->element[i + 1];
			if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
				continue;
			struct ritem *it = roster_item_decode(v->str, v->len);
			if (it != NULL)
				roster_item_free(hashmap_put(a->roster, k->str, it));
		}
		a->loaded = true;
	}
	struct bind_waiter *w = a->waiters;
	a->waiters = NULL;
	while (w != NULL) {
		struct bind_waiter *next = w->next;
		struct conn *c = w->conn;
		if (!c->closed && c->bind_pending) {
			if (a->loaded) {
				bind_complete(c, a);
			} else {
				bind_error(c, "wait", "internal-server-error");
				bind_clear(c);
			}
		}
		conn_unref(c);
		free(w);
		w = next;
	}
	account_maybe_free(srv, a);
}

void session_end(struct conn *c)
{
	struct session *s = c->session;
	if (s == NULL)
		return;
	c->session = NULL;
	struct account *a = s->acct;
	struct session **pp = &a->sessions;
	while (*pp != NULL && *pp != s)
		pp = &(*pp)->next;
	if (*pp == s)
		*pp = s->next;
	presence_session_gone(c->srv, s);
	log_event(LOG_LEVEL_INFO, "session_end", "jid", s->full, NULL);
	xnode_free(s->presence);
	for (size_t i = 0; i < s->n_directed; i++)
		free(s->directed[i]);
	free(s->directed);
	free(s);
	account_maybe_free(c->srv, a);
}

void session_revoked(struct server *srv, const char *hash)
{
	size_t n = 0;
	for (struct conn *c = srv->conns; c != NULL; c = c->next)
		n++;
	struct conn **hit = xcalloc(n + 1, sizeof(*hit));
	size_t k = 0;
	for (struct conn *c = srv->conns; c != NULL; c = c->next) {
		if (c->auth_pending && !c->authed &&
		    ct_equal(c->token_hash, hash, TOKEN_HASH_HEX_LEN)) {
			c->auth_revoked = true; /* the check in flight must not succeed */
			continue;
		}
		if (c->authed && !c->closing && ct_equal(c->token_hash, hash, TOKEN_HASH_HEX_LEN)) {
			conn_ref(c);
			hit[k++] = c;
		}
	}
	for (size_t i = 0; i < k; i++) {
		char id[TOKEN_ID_LEN + 1];
		token_id_from_hash(hash, id);
		log_event(LOG_LEVEL_INFO, "token_revoked", "jid", hit[i]->bare, "token_id", id,
			  NULL);
		conn_stream_error(hit[i], "not-authorized", "the token was revoked");
		conn_unref(hit[i]);
	}
	free(hit);
}
