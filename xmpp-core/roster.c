/* Rosters (RFC 6121 §2) in Redis, one hash per user, with a cache in each online account.
 *
 * Key `P xmpp:roster:JID`, field: contact bare JID, value: five flag characters then
 * "\tNAME\tGROUP\tGROUP…". Flags: subscription (n, t, f, b for none, to, from, both), ask
 * ('s' when a subscribe is unanswered, else '-'), pre-approved ('1'/'0'), an inbound
 * subscribe pending ('1'/'0'), visible ('1'; '0' marks state kept for a contact the user
 * has not added, such as a pending request). Every change is one Lua script, so the
 * subscription state machine holds under concurrent presence from both sides; the
 * account cache is updated from each script's reply.
 *
 * Caps: xmpp.max_roster items, ROSTER_ITEM_MAX bytes of name and groups per item, and
 * max_roster * ROSTER_BYTES_PER_ITEM bytes of JIDs, flags, names and groups in all (what
 * the account cache and a roster result hold). The total is kept in `P
 * xmpp:roster-bytes:JID` by every script (computed from the hash when missing); a roster
 * set that would pass it gets not-acceptable (modify: shorter values may fit), a
 * subscription that would add an item is treated as for a full roster. */
#include "xmpp.h"
#include "hashmap.h"
#include "jidx.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Every script's KEYS are the roster and its byte count. bytes() is the count, taken from
 * the hash once if missing; grow(d) changes it (d may be negative), dropping it at 0. */
#define ROSTER_BYTES_LUA                                                            \
	"local function bytes()\n"                                                  \
	"  local t = redis.call('GET', KEYS[2])\n"                                  \
	"  if t then return tonumber(t) end\n"                                      \
	"  t = 0\n"                                                                 \
	"  local all = redis.call('HGETALL', KEYS[1])\n"                            \
	"  for i = 1, #all do t = t + #all[i] end\n"                                \
	"  if t > 0 then redis.call('SET', KEYS[2], t) end\n"                       \
	"  return t\n"                                                              \
	"end\n"                                                                     \
	"local function grow(d)\n"                                                  \
	"  if d ~= 0 and redis.call('INCRBY', KEYS[2], d) <= 0 then\n"              \
	"    redis.call('DEL', KEYS[2])\n"                                          \
	"  end\n"                                                                   \
	"end\n"

/* ARGV: contact, "\tNAME\tGROUPS…", max items, max bytes. {1, new item}, or {0, 'limit'}
 * (max items) or {0, 'bytes'} (max bytes). */
static const char roster_set_lua[] =
	ROSTER_BYTES_LUA
	"local old = redis.call('HGET', KEYS[1], ARGV[1])\n"
	"local f\n"
	"if old then f = string.sub(old, 1, 4) .. '1' else\n"
	"  if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return {0, 'limit'} end\n"
	"  f = 'n-001'\n"
	"end\n"
	"local new = f .. ARGV[2]\n"
	"local d = #new - (old and #old or -#ARGV[1])\n"
	"if d > 0 and bytes() + d > tonumber(ARGV[4]) then return {0, 'bytes'} end\n"
	"bytes()\n"
	"redis.call('HSET', KEYS[1], ARGV[1], new)\n"
	"grow(d)\n"
	"return {1, new}\n";

/* ARGV: contact. Returns {1, old item} or {0, 'missing'}. */
static const char roster_remove_lua[] =
	ROSTER_BYTES_LUA
	"local old = redis.call('HGET', KEYS[1], ARGV[1])\n"
	"if not old or string.sub(old, 5, 5) ~= '1' then return {0, 'missing'} end\n"
	"bytes()\n"
	"redis.call('HDEL', KEYS[1], ARGV[1])\n"
	"grow(-(#ARGV[1] + #old))\n"
	"return {1, old}\n";

/* ARGV: contact, event, max items, max bytes. One step of RFC 6121 §3's subscription
 * state machine for the roster's owner: out_* when the owner sends, in_* when the owner's
 * contact sends (sub = subscribe, subd = subscribed, unsub, unsubd). Returns
 * {1, result, old item or nil, new item or nil}; result says what the caller does next:
 * forward (to the contact), deliver (to the owner), auto (answer subscribed on the
 * owner's behalf), preapproved, full (the roster is full: items or bytes) or noop. */
static const char roster_sub_lua[] =
	ROSTER_BYTES_LUA
	"local old = redis.call('HGET', KEYS[1], ARGV[1])\n"
	"local f = old and string.sub(old, 1, 5) or 'n-000'\n"
	"local rest = old and string.sub(old, 6) or '\\t'\n"
	"local sub, ask, appr, pend, vis = string.sub(f, 1, 1), string.sub(f, 2, 2),\n"
	"  string.sub(f, 3, 3), string.sub(f, 4, 4), string.sub(f, 5, 5)\n"
	"local ev = ARGV[2]\n"
	"local res = 'noop'\n"
	"if ev == 'out_sub' then\n"
	"  if sub == 'n' or sub == 'f' then ask = 's' end\n"
	"  vis = '1'; res = 'forward'\n"
	"elseif ev == 'in_sub' then\n"
	"  if sub == 'f' or sub == 'b' then res = 'auto'\n"
	"  elseif appr == '1' then\n"
	"    if sub == 'n' then sub = 'f' else sub = 'b' end\n"
	"    appr = '0'; pend = '0'; res = 'auto'\n"
	"  else pend = '1'; res = 'deliver' end\n"
	"elseif ev == 'out_subd' then\n"
	"  if sub == 'f' or sub == 'b' then res = 'noop'\n"
	"  elseif pend == '1' then\n"
	"    if sub == 'n' then sub = 'f' else sub = 'b' end\n"
	"    pend = '0'; vis = '1'; res = 'forward'\n"
	"  else appr = '1'; vis = '1'; res = 'preapproved' end\n"
	"elseif ev == 'in_subd' then\n"
	"  if ask == 's' then\n"
	"    if sub == 'n' then sub = 't' elseif sub == 'f' then sub = 'b' end\n"
	"    ask = '-'; res = 'deliver'\n"
	"  end\n"
	"elseif ev == 'out_unsub' then\n"
	"  if sub == 't' then sub = 'n' elseif sub == 'b' then sub = 'f' end\n"
	"  ask = '-'; res = 'forward'\n"
	"elseif ev == 'in_unsub' then\n"
	"  if sub == 'f' or sub == 'b' or pend == '1' then\n"
	"    if sub == 'f' then sub = 'n' elseif sub == 'b' then sub = 't' end\n"
	"    pend = '0'; res = 'deliver'\n"
	"  end\n"
	"elseif ev == 'out_unsubd' then\n"
	"  if sub == 'f' or sub == 'b' or pend == '1' or appr == '1' then\n"
	"    if sub == 'f' then sub = 'n' elseif sub == 'b' then sub = 't' end\n"
	"    pend = '0'; appr = '0'; res = 'forward'\n"
	"  end\n"
	"elseif ev == 'in_unsubd' then\n"
	"  if sub == 't' or sub == 'b' or ask == 's' then\n"
	"    if sub == 't' then sub = 'n' elseif sub == 'b' then sub = 'f' end\n"
	"    ask = '-'; res = 'deliver'\n"
	"  end\n"
	"end\n"
	"if vis == '0' and pend == '0' and appr == '0' and sub == 'n' and ask == '-' then\n"
	"  if old then\n"
	"    bytes()\n"
	"    redis.call('HDEL', KEYS[1], ARGV[1])\n"
	"    grow(-(#ARGV[1] + #old))\n"
	"  end\n"
	"  return {1, res, old or false, false}\n"
	"end\n"
	"local new = sub .. ask .. appr .. pend .. vis .. rest\n"
	"if new ~= old then\n"
	"  if not old and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then\n"
	"    return {1, 'full', false, false}\n"
	"  end\n"
	"  local d = #new - (old and #old or -#ARGV[1])\n"
	"  if d > 0 and bytes() + d > tonumber(ARGV[4]) then return {1, 'full', false, false} end\n"
	"  bytes()\n"
	"  redis.call('HSET', KEYS[1], ARGV[1], new)\n"
	"  grow(d)\n"
	"end\n"
	"return {1, res, old or false, new}\n";

static char *roster_key(const struct server *srv, const char *bare)
{
	return xasprintf("%sxmpp:roster:%s", srv->prefix, bare);
}

static char *roster_bytes_key(const struct server *srv, const char *bare)
{
	return xasprintf("%sxmpp:roster-bytes:%s", srv->prefix, bare);
}

/* ARGV max items and max bytes of the scripts. */
static void roster_caps(const struct server *srv, char items[24], char bytes[24])
{
	snprintf(items, 24, "%zu", srv->max_roster);
	snprintf(bytes, 24, "%zu", srv->max_roster * ROSTER_BYTES_PER_ITEM);
}

void roster_item_free(struct ritem *it)
{
	if (it == NULL)
		return;
	free(it->name);
	for (size_t i = 0; i < it->n_groups; i++)
		free(it->groups[i]);
	free(it->groups);
	free(it);
}

struct ritem *roster_item_decode(const char *text, size_t len)
{
	if (len < 6 || text[5] != '\t' || strchr("ntfb", text[0]) == NULL)
		return NULL;
	struct ritem *it = xcalloc(1, sizeof(*it));
	it->sub = text[0];
	it->ask = text[1] == 's';
	it->approved = text[2] == '1';
	it->pending = text[3] == '1';
	it->visible = text[4] == '1';
	const char *p = text + 6, *end = text + len;
	const char *tab = memchr(p, '\t', (size_t)(end - p));
	it->name = xstrndup(p, (size_t)((tab != NULL ? tab : end) - p));
	while (tab != NULL && it->n_groups < ROSTER_GROUPS_MAX) {
		p = tab + 1;
		tab = memchr(p, '\t', (size_t)(end - p));
		it->groups = xrealloc(it->groups, (it->n_groups + 1) * sizeof(*it->groups));
		it->groups[it->n_groups++] = xstrndup(p, (size_t)((tab != NULL ? tab : end) - p));
	}
	return it;
}

static void loaded(redisReply *reply, void *data)
{
	struct server *srv = *(struct server **)data;
	char *bare = (char *)data + sizeof(struct server *);
	session_roster_loaded(srv, bare, reply != NULL && reply->type == REDIS_REPLY_ARRAY ? reply
											   : NULL);
	free(data);
}

int roster_load(struct server *srv, const char *bare)
{
	size_t len = strlen(bare);
	char *data = xcalloc(1, sizeof(struct server *) + len + 1);
	memcpy(data, &srv, sizeof(srv));
	memcpy(data + sizeof(srv), bare, len);
	char *key = roster_key(srv, bare);
	const char *argv[] = {"HGETALL", key};
	xredis_command(srv->redis, 2, argv, NULL, loaded, data);
	free(key);
	return 0;
}

void roster_cache_set(struct server *srv, const char *bare, const char *contact,
		      const char *encoded)
{
	struct account *a = hashmap_get(srv->accounts, bare);
	if (a == NULL || !a->loaded)
		return;
	struct ritem *it = encoded != NULL ? roster_item_decode(encoded, strlen(encoded)) : NULL;
	if (it != NULL)
		roster_item_free(hashmap_put(a->roster, contact, it));
	else
		roster_item_free(hashmap_remove(a->roster, contact));
}

static const char *sub_name(char sub)
{
	switch (sub) {
	case 't': return "to";
	case 'f': return "from";
	case 'b': return "both";
	default: return "none";
	}
}

static void item_xml(struct xnode *query, const char *contact, const struct ritem *it)
{
	struct xnode *x = xnode_add(query, NS_ROSTER, "item");
	xnode_set_attr(x, "jid", contact);
	if (it == NULL) {
		xnode_set_attr(x, "subscription", "remove");
		return;
	}
	xnode_set_attr(x, "subscription", sub_name(it->sub));
	if (it->ask)
		xnode_set_attr(x, "ask", "subscribe");
	if (it->approved)
		xnode_set_attr(x, "approved", "true");
	if (it->name[0] != '\0')
		xnode_set_attr(x, "name", it->name);
	for (size_t i = 0; i < it->n_groups; i++) {
		struct xnode *g = xnode_add(x, NS_ROSTER, "group");
		xnode_add_text(g, it->groups[i], strlen(it->groups[i]));
	}
}

void roster_push(struct server *srv, const char *bare, const char *contact,
		 const struct ritem *item)
{
	struct account *a = hashmap_get(srv->accounts, bare);
	if (a == NULL)
		return;
	for (struct session *s = a->sessions; s != NULL; s = s->next) {
		if (!s->interested)
			continue;
		struct xnode *iq = xnode_new(NS_CLIENT, "iq");
		xnode_set_attr(iq, "type", "set");
		xnode_set_attr(iq, "id", "push");
		xnode_set_attr(iq, "to", s->full);
		item_xml(xnode_add(iq, NS_ROSTER, "query"), contact, item);
		session_deliver(s, iq);
		xnode_free(iq);
	}
}

/* Push the change from old to new (encoded items, NULL: none) when the user can see it. */
static void push_change(struct server *srv, const char *bare, const char *contact,
			const char *old, const char *new)
{
	if (old != NULL && new != NULL && strcmp(old, new) == 0)
		return;
	struct ritem *n = new != NULL ? roster_item_decode(new, strlen(new)) : NULL;
	bool old_visible = old != NULL && strlen(old) >= 5 && old[4] == '1';
	if (n != NULL && n->visible)
		roster_push(srv, bare, contact, n);
	else if (old_visible)
		roster_push(srv, bare, contact, NULL);
	roster_item_free(n);
}

static void add_visible(const char *contact, void *value, void *ctx)
{
	const struct ritem *it = value;
	if (it->visible)
		item_xml(ctx, contact, it);
}

static void roster_get(struct conn *c, struct xnode *iq)
{
	struct account *a = c->session->acct;
	c->session->interested = true;
	struct xnode *r = iq_result(iq);
	struct xnode *q = xnode_add(r, NS_ROSTER, "query");
	hashmap_each(a->roster, add_visible, q);
	conn_send_node(c, r);
	xnode_free(r);
}

/* A roster set or remove in flight: answers the client and pushes on completion. */
struct roster_call {
	struct server *srv;
	struct conn *conn; /* counted with conn_redis_start() */
	struct xnode *iq;  /* the request, for the reply */
	char *bare, *contact;
};

static void roster_call_free(struct roster_call *rc)
{
	conn_redis_done(rc->conn);
	xnode_free(rc->iq);
	free(rc->bare);
	free(rc->contact);
	free(rc);
}

static void reply_result(struct roster_call *rc)
{
	if (rc->conn->closed)
		return;
	struct xnode *r = iq_result(rc->iq);
	conn_send_node(rc->conn, r);
	xnode_free(r);
}

/* The new or old item state of a roster script's answer, or NULL after answering the iq
 * with the error (unavailable store, refusal, or an answer of an unexpected shape: an iq is
 * never left unanswered). A refusal is `refused` (type cancel), or not-acceptable (type
 * modify) when the script says 'bytes'. */
static const char *script_state(struct roster_call *rc, redisReply *reply, const char *refused)
{
	const char *type = "wait", *cond = "internal-server-error";
	if (reply != NULL && reply->element[0]->integer != 1) {
		bool bytes = reply->elements >= 2 && reply->element[1]->type == REDIS_REPLY_STRING &&
			     strcmp(reply->element[1]->str, "bytes") == 0;
		type = bytes ? "modify" : "cancel";
		cond = bytes ? "not-acceptable" : refused;
	} else if (reply != NULL && reply->elements >= 2 &&
		   reply->element[1]->type == REDIS_REPLY_STRING) {
		return reply->element[1]->str;
	}
	if (!rc->conn->closed)
		stanza_reply_error(rc->conn, rc->iq, type, cond);
	return NULL;
}

static void set_done(redisReply *reply, void *data)
{
	struct roster_call *rc = data;
	const char *new = script_state(rc, reply, "not-allowed");
	if (new != NULL) {
		roster_cache_set(rc->srv, rc->bare, rc->contact, new);
		reply_result(rc);
		push_change(rc->srv, rc->bare, rc->contact, NULL, new);
	}
	roster_call_free(rc);
}

static void remove_done(redisReply *reply, void *data)
{
	struct roster_call *rc = data;
	const char *old = script_state(rc, reply, "item-not-found");
	if (old != NULL) {
		roster_cache_set(rc->srv, rc->bare, rc->contact, NULL);
		reply_result(rc);
		roster_push(rc->srv, rc->bare, rc->contact, NULL);
		/* RFC 6121 §2.5.2: the contact learns that both directions ended. */
		char sub = old[0];
		bool ask = old[1] == 's', pending = old[3] == '1';
		if (sub == 't' || sub == 'b' || ask)
			presence_sub_inbound(rc->srv, rc->bare, rc->contact, "unsubscribe");
		if (sub == 'f' || sub == 'b' || pending) {
			presence_unavailable_to(rc->srv, rc->bare, rc->contact);
			presence_sub_inbound(rc->srv, rc->bare, rc->contact, "unsubscribed");
		}
	}
	roster_call_free(rc);
}

/* Tabs and line breaks inside a value would split stored fields: store them as spaces. */
static void clean(char *s)
{
	for (; *s; s++)
		if (*s == '\t' || *s == '\r' || *s == '\n')
			*s = ' ';
}

/* "\tNAME\tGROUP…" of a roster set item, or NULL when a value breaks the caps (also
 * ROSTER_ITEM_MAX bytes in all) or a group is empty or repeated. */
static char *encode_details(const struct xnode *item)
{
	const char *name = xnode_attr(item, "name");
	if (name == NULL)
		name = "";
	if (strlen(name) > ROSTER_NAME_MAX)
		return NULL;
	char *out = xasprintf("\t%s", name);
	clean(out + 1);
	char *groups[ROSTER_GROUPS_MAX];
	size_t n_groups = 0;
	for (size_t i = 0; i < item->n_children; i++) {
		const struct xnode *g = item->children[i];
		if (g->name == NULL || strcmp(g->ns, NS_ROSTER) != 0 || strcmp(g->name, "group") != 0)
			continue;
		char *text = xnode_text(g);
		clean(text);
		bool bad = text[0] == '\0' || strlen(text) > ROSTER_NAME_MAX ||
			   n_groups == ROSTER_GROUPS_MAX;
		for (size_t k = 0; k < n_groups && !bad; k++)
			bad = strcmp(groups[k], text) == 0;
		if (bad) {
			free(text);
			for (size_t k = 0; k < n_groups; k++)
				free(groups[k]);
			free(out);
			return NULL;
		}
		groups[n_groups++] = text;
	}
	for (size_t k = 0; k < n_groups; k++) {
		char *next = xasprintf("%s\t%s", out, groups[k]);
		free(out);
		free(groups[k]);
		out = next;
	}
	if (strlen(out) > ROSTER_ITEM_MAX) {
		free(out);
		return NULL;
	}
	return out;
}

static void roster_set(struct conn *c, struct xnode *iq, struct xnode *q)
{
	struct xnode *item = xnode_child(q, NS_ROSTER, "item");
	if (item == NULL || xnode_element_count(q) != 1 || xnode_attr(item, "jid") == NULL) {
		stanza_reply_error(c, iq, "modify", "bad-request");
		return;
	}
	struct xjid j;
	const char *error;
	if (xjid_parse(xnode_attr(item, "jid"), &j, &error) < 0) {
		stanza_reply_error(c, iq, "modify", "jid-malformed");
		return;
	}
	if (j.resource != NULL || j.local == NULL) {
		xjid_clear(&j);
		stanza_reply_error(c, iq, "modify", "jid-malformed");
		return;
	}
	if (strcmp(j.bare, c->session->acct->bare) == 0) {
		xjid_clear(&j);
		stanza_reply_error(c, iq, "cancel", "not-allowed");
		return;
	}
	const char *sub = xnode_attr(item, "subscription");
	bool remove = sub != NULL && strcmp(sub, "remove") == 0;
	char *details = remove ? NULL : encode_details(item);
	if (!remove && details == NULL) {
		xjid_clear(&j);
		stanza_reply_error(c, iq, "modify", "not-acceptable");
		return;
	}
	struct roster_call *rc = xcalloc(1, sizeof(*rc));
	rc->srv = c->srv;
	rc->conn = c;
	conn_redis_start(c);
	rc->iq = xnode_copy(iq);
	rc->bare = xstrdup(c->session->acct->bare);
	rc->contact = xstrdup(j.bare);
	xjid_clear(&j);
	char *key = roster_key(c->srv, rc->bare);
	char *bytes_key = roster_bytes_key(c->srv, rc->bare);
	if (remove) {
		const char *args[] = {key, bytes_key, rc->contact};
		xredis_script(c->srv->redis, roster_remove_lua, 2, 3, args, NULL, remove_done, rc);
	} else {
		char max[24], max_bytes[24];
		roster_caps(c->srv, max, max_bytes);
		const char *args[] = {key, bytes_key, rc->contact, details, max, max_bytes};
		xredis_script(c->srv->redis, roster_set_lua, 2, 6, args, NULL, set_done, rc);
	}
	free(details);
	free(bytes_key);
	free(key);
}

void roster_iq(struct conn *c, struct xnode *iq)
{
	struct xnode *q = xnode_child(iq, NS_ROSTER, "query");
	const char *type = xnode_attr(iq, "type");
	if (q == NULL) {
		stanza_reply_error(c, iq, "modify", "bad-request");
	} else if (strcmp(type, "get") == 0) {
		roster_get(c, iq);
	} else if (c->srv->redis == NULL) {
		stanza_reply_error(c, iq, "wait", "internal-server-error");
	} else {
		roster_set(c, iq, q);
	}
}

struct sub_call {
	struct server *srv;
	char *bare, *contact;
	roster_sub_cb *cb;
	void *data;
};

static void sub_done(redisReply *reply, void *data)
{
	struct sub_call *sc = data;
	const char *result = NULL, *old = NULL, *new = NULL;
	bool ok = reply != NULL && reply->element[0]->integer == 1 && reply->elements == 4 &&
		  reply->element[1]->type == REDIS_REPLY_STRING;
	if (ok) {
		result = reply->element[1]->str;
		if (reply->element[2]->type == REDIS_REPLY_STRING)
			old = reply->element[2]->str;
		if (reply->element[3]->type == REDIS_REPLY_STRING)
			new = reply->element[3]->str;
		roster_cache_set(sc->srv, sc->bare, sc->contact, new);
		push_change(sc->srv, sc->bare, sc->contact, old, new);
	}
	sc->cb(sc->srv, ok, result, old, new, sc->data);
	free(sc->bare);
	free(sc->contact);
	free(sc);
}

int roster_sub_step(struct server *srv, const char *bare, const char *contact, const char *event,
		    roster_sub_cb *cb, void *data)
{
	if (srv->redis == NULL)
		return -1;
	struct sub_call *sc = xcalloc(1, sizeof(*sc));
	sc->srv = srv;
	sc->bare = xstrdup(bare);
	sc->contact = xstrdup(contact);
	sc->cb = cb;
	sc->data = data;
	char *key = roster_key(srv, bare);
	char *bytes_key = roster_bytes_key(srv, bare);
	char max[24], max_bytes[24];
	roster_caps(srv, max, max_bytes);
	const char *args[] = {key, bytes_key, contact, event, max, max_bytes};
	xredis_script(srv->redis, roster_sub_lua, 2, 6, args, NULL, sub_done, sc);
	free(bytes_key);
	free(key);
	return 0;
}
