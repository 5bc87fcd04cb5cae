/* Stanza routing from a bound session (RFC 6120 §8, §10): the server stamps 'from' with
 * the session's full JID, checks 'to', and hands each stanza kind to its handler; and the
 * stanza error replies every handler uses. */
#include "xmpp.h"
#include "jidx.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

struct xnode *stanza_error(const struct xnode *st, const char *type, const char *condition)
{
	const char *t = xnode_attr(st, "type");
	if (t != NULL && strcmp(t, "error") == 0)
		return NULL;
	struct xnode *e = xnode_new(NS_CLIENT, st->name);
	const char *id = xnode_attr(st, "id");
	const char *from = xnode_attr(st, "from");
	const char *to = xnode_attr(st, "to");
	if (id != NULL)
		xnode_set_attr(e, "id", id);
	if (to != NULL)
		xnode_set_attr(e, "from", to);
	if (from != NULL)
		xnode_set_attr(e, "to", from);
	xnode_set_attr(e, "type", "error");
	struct xnode *err = xnode_add(e, NS_CLIENT, "error");
	xnode_set_attr(err, "type", type);
	xnode_add(err, NS_STANZAS, condition);
	return e;
}

void stanza_reply_error(struct conn *c, const struct xnode *st, const char *type,
			const char *condition)
{
	struct xnode *e = stanza_error(st, type, condition);
	if (e != NULL)
		conn_send_node(c, e);
	xnode_free(e);
}

struct xnode *iq_result(const struct xnode *iq)
{
	struct xnode *r = xnode_new(NS_CLIENT, "iq");
	const char *id = xnode_attr(iq, "id");
	const char *from = xnode_attr(iq, "from");
	const char *to = xnode_attr(iq, "to");
	xnode_set_attr(r, "type", "result");
	if (id != NULL)
		xnode_set_attr(r, "id", id);
	if (to != NULL)
		xnode_set_attr(r, "from", to);
	if (from != NULL)
		xnode_set_attr(r, "to", from);
	return r;
}

/* Drop the stanza element's attributes in a namespace other than xml: (xml:lang stays):
 * routing and the recipients go by the plain ones only. */
static void strip_ns_attrs(struct xnode *st)
{
	size_t k = 0;
	for (size_t i = 0; i < st->n_attrs; i++) {
		struct xattr *a = &st->attrs[i];
		if (a->ns != NULL && strcmp(a->ns, NS_XML) != 0) {
			free(a->ns);
			free(a->name);
			free(a->value);
			continue;
		}
		st->attrs[k++] = *a;
	}
	st->n_attrs = k;
}

void stanza_route(struct conn *c, struct xnode *st)
{
	struct session *s = c->session;
	strip_ns_attrs(st);
	xnode_set_attr(st, "from", s->full);
	const char *to = xnode_attr(st, "to");
	struct xjid j = {0};
	if (to != NULL) {
		const char *error;
		if (xjid_parse(to, &j, &error) < 0) {
			stanza_reply_error(c, st, "modify", "jid-malformed");
			return;
		}
		xnode_set_attr(st, "to", j.full);
	}
	if (strcmp(st->name, "message") == 0)
		message_handle(c, st, j.bare, j.resource);
	else if (strcmp(st->name, "presence") == 0)
		presence_handle(c, st, j.bare, j.full, j.resource != NULL);
	else
		iq_handle(c, st, j.bare, j.resource);
	xjid_clear(&j);
}
