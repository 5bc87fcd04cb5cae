/* Message delivery (RFC 6121 §8.5): to a full JID the session with that resource gets it,
 * else normal and chat messages fall back to the bare JID; to a bare JID normal and chat
 * messages go to every available resource of non-negative priority, or into offline
 * storage when there is none; headlines go to available resources or are dropped;
 * groupchat to a user gets service-unavailable; errors are never answered. */
#include "xmpp.h"
#include "hashmap.h"

#include <string.h>

static const char *msg_type(const struct xnode *m)
{
	const char *t = xnode_attr(m, "type");
	return t != NULL ? t : "normal";
}

void message_to_bare(struct server *srv, const char *bare, struct xnode *m, struct conn *sender)
{
	const char *type = msg_type(m);
	if (strcmp(type, "error") == 0)
		return;
	if (strcmp(type, "groupchat") == 0) {
		if (sender != NULL)
			stanza_reply_error(sender, m, "cancel", "service-unavailable");
		return;
	}
	struct account *a = hashmap_get(srv->accounts, bare);
	size_t n = 0;
	for (struct session *s = a != NULL ? a->sessions : NULL; s != NULL; s = s->next) {
		if (s->available && s->priority >= 0) {
			session_deliver(s, m);
			n++;
		}
	}
	if (n > 0 || strcmp(type, "headline") == 0)
		return;
	offline_store(srv, bare, m, sender);
}

void message_handle(struct conn *c, struct xnode *m, const char *to_bare, const char *to_res)
{
	struct server *srv = c->srv;
	const char *type = msg_type(m);
	if (to_bare == NULL) {
		to_bare = c->session->acct->bare;
		xnode_set_attr(m, "to", to_bare);
	}
	const char *at = strchr(to_bare, '@');
	const char *domain = at != NULL ? at + 1 : to_bare;
	if (!server_hosts(srv, domain)) {
		stanza_reply_error(c, m, "cancel", "remote-server-not-found");
		return;
	}
	if (at == NULL) {
		stanza_reply_error(c, m, "cancel", "service-unavailable");
		return;
	}
	if (to_res != NULL) {
		struct account *a = hashmap_get(srv->accounts, to_bare);
		struct session *t = a != NULL ? account_session(a, to_res) : NULL;
		if (t != NULL) {
			session_deliver(t, m);
			return;
		}
		if (strcmp(type, "groupchat") == 0)
			stanza_reply_error(c, m, "cancel", "service-unavailable");
		if (strcmp(type, "normal") != 0 && strcmp(type, "chat") != 0)
			return;
	}
	message_to_bare(srv, to_bare, m, c);
}
