/* Presence (RFC 6121 §3, §4): subscription requests and answers driven through the
 * roster's state machine, initial and later broadcasts to subscribers and the user's own
 * resources, answers to the server's own probes from the online contacts' last presence,
 * directed presence, and unavailable presence when a session ends. Every user is local
 * (there is no server-to-server), so presence for other domains is dropped. */
#include "xmpp.h"
#include "hashmap.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

static struct account *online(struct server *srv, const char *bare)
{
	return hashmap_get(srv->accounts, bare);
}

/* A copy of p addressed to `to`, delivered to s. */
static void deliver_copy(struct session *s, const struct xnode *p, const char *to)
{
	struct xnode *cp = xnode_copy(p);
	xnode_set_attr(cp, "to", to);
	session_deliver(s, cp);
	xnode_free(cp);
}

/* p to every available session of bare (addressed to bare); returns how many. */
static size_t to_available(struct server *srv, const char *bare, const struct xnode *p)
{
	struct account *a = online(srv, bare);
	size_t n = 0;
	for (struct session *s = a != NULL ? a->sessions : NULL; s != NULL; s = s->next) {
		if (s->available) {
			deliver_copy(s, p, bare);
			n++;
		}
	}
	return n;
}

static void presence_available_to(struct server *srv, const char *from_bare, const char *to_bare)
{
	struct account *a = online(srv, from_bare);
	for (struct session *s = a != NULL ? a->sessions : NULL; s != NULL; s = s->next)
		if (s->available && s->presence != NULL)
			to_available(srv, to_bare, s->presence);
}

void presence_unavailable_to(struct server *srv, const char *from_bare, const char *to_bare)
{
	struct account *a = online(srv, from_bare);
	for (struct session *s = a != NULL ? a->sessions : NULL; s != NULL; s = s->next) {
		if (!s->available)
			continue;
		struct xnode *p = xnode_new(NS_CLIENT, "presence");
		xnode_set_attr(p, "type", "unavailable");
		xnode_set_attr(p, "from", s->full);
		to_available(srv, to_bare, p);
		xnode_free(p);
	}
}

static struct xnode *sub_stanza(const char *from, const char *to, const char *type)
{
	struct xnode *p = xnode_new(NS_CLIENT, "presence");
	xnode_set_attr(p, "from", from);
	xnode_set_attr(p, "to", to);
	xnode_set_attr(p, "type", type);
	return p;
}

struct sub_ctx {
	char *from, *to, *type;
	struct conn *conn; /* the sender's, counted with conn_redis_start(); or NULL */
};

static struct sub_ctx *sub_ctx_new(const char *from, const char *to, const char *type)
{
	struct sub_ctx *x = xcalloc(1, sizeof(*x));
	x->from = xstrdup(from);
	x->to = xstrdup(to);
	x->type = xstrdup(type);
	return x;
}

static void sub_ctx_free(struct sub_ctx *x)
{
	if (x->conn != NULL)
		conn_redis_done(x->conn);
	free(x->from);
	free(x->to);
	free(x->type);
	free(x);
}

static void in_done(struct server *srv, bool ok, const char *result, const char *old,
		    const char *new, void *data)
{
	struct sub_ctx *x = data;
	(void)old;
	(void)new;
	if (!ok) {
		log_event(LOG_LEVEL_WARN, "subscription_lost", "from", x->from, "to", x->to, "type",
			  x->type, "why", "the roster store is unavailable", NULL);
		goto out;
	}
	if (strcmp(x->type, "subscribe") == 0 && strcmp(result, "auto") == 0) {
		/* Already approved: answer on the contact's behalf. */
		presence_sub_inbound(srv, x->to, x->from, "subscribed");
		presence_available_to(srv, x->to, x->from);
	} else if (strcmp(result, "deliver") == 0) {
		struct xnode *p = sub_stanza(x->from, x->to, x->type);
		size_t n = to_available(srv, x->to, p);
		if (n == 0 && strcmp(x->type, "subscribe") == 0)
			offline_store(srv, x->to, p, NULL);
		xnode_free(p);
		if (strcmp(x->type, "subscribed") == 0)
			presence_available_to(srv, x->from, x->to);
		else if (strcmp(x->type, "unsubscribe") == 0)
			presence_unavailable_to(srv, x->to, x->from);
	}
out:
	sub_ctx_free(x);
}

void presence_sub_inbound(struct server *srv, const char *from_bare, const char *to_bare,
			  const char *type)
{
	const char *event = strcmp(type, "subscribe") == 0	  ? "in_sub"
			    : strcmp(type, "subscribed") == 0	  ? "in_subd"
			    : strcmp(type, "unsubscribe") == 0	  ? "in_unsub"
								  : "in_unsubd";
	struct sub_ctx *x = sub_ctx_new(from_bare, to_bare, type);
	if (roster_sub_step(srv, to_bare, from_bare, event, in_done, x) < 0)
		sub_ctx_free(x);
}

static void out_done(struct server *srv, bool ok, const char *result, const char *old,
		     const char *new, void *data)
{
	struct sub_ctx *x = data;
	(void)old;
	(void)new;
	if (ok && strcmp(result, "forward") == 0) {
		if (strcmp(x->type, "unsubscribed") == 0)
			presence_unavailable_to(srv, x->from, x->to);
		presence_sub_inbound(srv, x->from, x->to, x->type);
	} else if (!ok) {
		log_event(LOG_LEVEL_WARN, "subscription_lost", "from", x->from, "to", x->to, "type",
			  x->type, "why", "the roster store is unavailable", NULL);
	}
	sub_ctx_free(x);
}

static bool is_sub_type(const char *type)
{
	return type != NULL &&
	       (strcmp(type, "subscribe") == 0 || strcmp(type, "subscribed") == 0 ||
		strcmp(type, "unsubscribe") == 0 || strcmp(type, "unsubscribed") == 0);
}

struct fanout {
	struct server *srv;
	const struct xnode *p;
	bool probe;            /* also send the contacts' presence to `self` */
	struct session *self;
};

/* A probe is answered from the contact's own roster (it decides who sees its presence),
 * never from the prober's, which may lag behind or disagree. */
static bool contact_allows(const struct account *contact, const char *bare)
{
	const struct ritem *it = hashmap_get(contact->roster, bare);
	return it != NULL && (it->sub == 'f' || it->sub == 'b');
}

static void fan_item(const char *contact, void *value, void *ctx)
{
	struct fanout *f = ctx;
	const struct ritem *it = value;
	struct account *a = online(f->srv, contact);
	if (a == NULL)
		return;
	bool probe = f->probe && (it->sub == 't' || it->sub == 'b') &&
		     contact_allows(a, f->self->acct->bare);
	for (struct session *s = a->sessions; s != NULL; s = s->next) {
		if (!s->available)
			continue;
		if (it->sub == 'f' || it->sub == 'b')
			deliver_copy(s, f->p, contact);
		if (probe && s->presence != NULL)
			deliver_copy(f->self, s->presence, f->self->full);
	}
}

/* p (from s) to subscribers, the user's own available sessions and, for unavailable,
 * whoever got directed presence. */
static void broadcast(struct server *srv, struct session *s, const struct xnode *p, bool probe)
{
	struct fanout f = {srv, p, probe, s};
	hashmap_each(s->acct->roster, fan_item, &f);
	for (struct session *o = s->acct->sessions; o != NULL; o = o->next) {
		if (o == s) {
			deliver_copy(s, p, s->full);
			continue;
		}
		if (!o->available)
			continue;
		deliver_copy(o, p, o->full);
		if (probe && o->presence != NULL)
			deliver_copy(s, o->presence, s->full);
	}
}

static void directed_unavailable(struct server *srv, struct session *s, const struct xnode *p)
{
	for (size_t i = 0; i < s->n_directed; i++) {
		const char *to = s->directed[i];
		char *bare = xstrdup(to);
		char *slash = strchr(bare, '/');
		if (slash != NULL)
			*slash = '\0';
		struct account *a = online(srv, bare);
		for (struct session *t = a != NULL ? a->sessions : NULL; t != NULL; t = t->next)
			if (t->available && (slash == NULL || strcmp(t->resource, slash + 1) == 0))
				deliver_copy(t, p, to);
		free(bare);
		free(s->directed[i]);
	}
	free(s->directed);
	s->directed = NULL;
	s->n_directed = 0;
}

void presence_session_gone(struct server *srv, struct session *s)
{
	if (!s->available)
		return;
	s->available = false;
	struct xnode *p = xnode_new(NS_CLIENT, "presence");
	xnode_set_attr(p, "type", "unavailable");
	xnode_set_attr(p, "from", s->full);
	struct fanout f = {srv, p, false, s};
	hashmap_each(s->acct->roster, fan_item, &f);
	for (struct session *o = s->acct->sessions; o != NULL; o = o->next)
		if (o != s && o->available)
			deliver_copy(o, p, o->full);
	directed_unavailable(srv, s, p);
	xnode_free(p);
}

static int parse_priority(const struct xnode *p)
{
	struct xnode *pr = xnode_child(p, NS_CLIENT, "priority");
	if (pr == NULL)
		return 0;
	char *t = xnode_text(pr);
	long long v;
	int ret = parse_ll(str_trim(t), -128, 127, &v) ? (int)v : 0;
	free(t);
	return ret;
}

static void directed(struct conn *c, struct xnode *p, const char *to_bare, const char *to_full,
		     bool has_res, const char *type)
{
	struct server *srv = c->srv;
	struct session *s = c->session;
	size_t i = 0;
	while (i < s->n_directed && strcmp(s->directed[i], to_full) != 0)
		i++;
	/* Past the cap, available presence is not delivered: it could never be followed by
	 * unavailable when the session ends. */
	if (type == NULL && i == s->n_directed && s->n_directed >= DIRECTED_PRESENCE_MAX)
		return;
	struct account *a = online(srv, to_bare);
	for (struct session *t = a != NULL ? a->sessions : NULL; t != NULL; t = t->next)
		if (t->available && (!has_res || strcmp(t->full, to_full) == 0))
			session_deliver(t, p);
	if (type == NULL && i == s->n_directed && s->n_directed < DIRECTED_PRESENCE_MAX) {
		s->directed = xrealloc(s->directed, (s->n_directed + 1) * sizeof(*s->directed));
		s->directed[s->n_directed++] = xstrdup(to_full);
	} else if (type != NULL && i < s->n_directed) {
		free(s->directed[i]);
		s->directed[i] = s->directed[--s->n_directed];
	}
}

void presence_handle(struct conn *c, struct xnode *p, const char *to_bare, const char *to_full,
		     bool has_res)
{
	struct server *srv = c->srv;
	struct session *s = c->session;
	const char *type = xnode_attr(p, "type");
	if (type != NULL && strcmp(type, "unavailable") != 0 && !is_sub_type(type))
		return; /* probe and error from clients: the server does its own probing */
	if (to_bare == NULL) {
		if (type == NULL) {
			bool initial = !s->available;
			s->available = true;
			s->priority = parse_priority(p);
			xnode_free(s->presence);
			s->presence = xnode_copy(p);
			broadcast(srv, s, p, initial);
			if (initial)
				offline_deliver(srv, s);
		} else if (strcmp(type, "unavailable") == 0 && s->available) {
			s->available = false;
			xnode_free(s->presence);
			s->presence = NULL;
			broadcast(srv, s, p, false);
			directed_unavailable(srv, s, p);
		}
		return;
	}
	const char *at = strchr(to_bare, '@');
	if (at == NULL || !server_hosts(srv, at + 1))
		return; /* the server itself, or a domain not hosted here */
	if (is_sub_type(type)) {
		if (strcmp(to_bare, s->acct->bare) == 0)
			return;
		const char *event = strcmp(type, "subscribe") == 0    ? "out_sub"
				    : strcmp(type, "subscribed") == 0 ? "out_subd"
				    : strcmp(type, "unsubscribe") == 0 ? "out_unsub"
								       : "out_unsubd";
		struct sub_ctx *x = sub_ctx_new(s->acct->bare, to_bare, type);
		x->conn = c;
		conn_redis_start(c);
		if (roster_sub_step(srv, s->acct->bare, to_bare, event, out_done, x) < 0)
			sub_ctx_free(x);
		return;
	}
	directed(c, p, to_bare, to_full, has_res, type);
}
