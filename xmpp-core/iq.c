/* IQ routing (RFC 6120 §8.2.3, RFC 6121 §8.5): requests to the server, to no one, or to
 * the user's own bare JID are answered here (binding, session, roster, discovery, ping,
 * version); requests to another user's full JID go to that session; anything unanswered
 * gets service-unavailable, and results and errors nobody waits for are dropped. */
#include "xmpp.h"
#include "hashmap.h"
#include "util.h"

#include <string.h>

static bool valid_shape(const struct xnode *iq, const char *type)
{
	size_t n = xnode_element_count(iq);
	if (xnode_attr(iq, "id") == NULL)
		return false;
	if (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)
		return n == 1;
	if (strcmp(type, "result") == 0)
		return n <= 1;
	return strcmp(type, "error") == 0;
}

static void answer_here(struct conn *c, struct xnode *iq, const char *to_bare, bool own)
{
	const char *type = xnode_attr(iq, "type");
	if (strcmp(type, "result") == 0 || strcmp(type, "error") == 0)
		return;
	struct xnode *q = xnode_child(iq, NULL, NULL);
	if (strcmp(q->ns, NS_BIND) == 0) {
		stanza_reply_error(c, iq, "cancel", "not-allowed");
	} else if (strcmp(q->ns, NS_SESSION) == 0 && own) {
		struct xnode *r = iq_result(iq);
		conn_send_node(c, r);
		xnode_free(r);
	} else if (strcmp(q->ns, NS_ROSTER) == 0 && own) {
		roster_iq(c, iq);
	} else if (disco_iq(c, iq, to_bare) || ping_iq(c, iq, to_bare) ||
		   version_iq(c, iq, to_bare)) {
		/* answered */
	} else {
		stanza_reply_error(c, iq, "cancel", "service-unavailable");
	}
}

void iq_handle(struct conn *c, struct xnode *iq, const char *to_bare, const char *to_res)
{
	const char *type = xnode_attr(iq, "type");
	if (type == NULL || !valid_shape(iq, type)) {
		stanza_reply_error(c, iq, "modify", "bad-request");
		return;
	}
	struct session *s = c->session;
	if (to_bare == NULL || strcmp(to_bare, s->acct->bare) == 0) {
		if (to_res != NULL) {
			struct session *t = account_session(s->acct, to_res);
			if (t != NULL && t != s) {
				session_deliver(t, iq);
				return;
			}
			if (t == NULL) {
				if (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)
					stanza_reply_error(c, iq, "cancel", "service-unavailable");
				return;
			}
		}
		answer_here(c, iq, to_bare, true);
		return;
	}
	const char *at = strchr(to_bare, '@');
	const char *domain = at != NULL ? at + 1 : to_bare;
	if (!server_hosts(c->srv, domain)) {
		stanza_reply_error(c, iq, "cancel", "remote-server-not-found");
		return;
	}
	if (at == NULL) {
		if (to_res == NULL)
			answer_here(c, iq, to_bare, false);
		else if (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)
			stanza_reply_error(c, iq, "cancel", "service-unavailable");
		return;
	}
	if (to_res != NULL) {
		struct account *a = hashmap_get(c->srv->accounts, to_bare);
		struct session *t = a != NULL ? account_session(a, to_res) : NULL;
		if (t != NULL) {
			session_deliver(t, iq);
		} else if (strcmp(type, "get") == 0 || strcmp(type, "set") == 0) {
			stanza_reply_error(c, iq, "cancel", "service-unavailable");
		}
		return;
	}
	answer_here(c, iq, to_bare, false);
}
