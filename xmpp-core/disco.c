/* XEP-0030 service discovery: disco#info and disco#items of the server (each hosted
 * domain) and of user accounts (answered by the server on the account's behalf). */
#include "xmpp.h"
#include "util.h"

#include <string.h>

static void feature(struct xnode *q, const char *var)
{
	xnode_set_attr(xnode_add(q, NS_DISCO_INFO, "feature"), "var", var);
}

bool disco_iq(struct conn *c, struct xnode *iq, const char *to_bare)
{
	struct xnode *q = xnode_child(iq, NULL, "query");
	if (q == NULL || (strcmp(q->ns, NS_DISCO_INFO) != 0 && strcmp(q->ns, NS_DISCO_ITEMS) != 0))
		return false;
	const char *type = xnode_attr(iq, "type");
	if (strcmp(type, "get") != 0) {
		stanza_reply_error(c, iq, "cancel", "not-allowed");
		return true;
	}
	if (xnode_attr(q, "node") != NULL) {
		stanza_reply_error(c, iq, "cancel", "item-not-found");
		return true;
	}
	bool account = to_bare != NULL && strchr(to_bare, '@') != NULL;
	struct xnode *r = iq_result(iq);
	struct xnode *rq = xnode_add(r, q->ns, "query");
	if (strcmp(q->ns, NS_DISCO_INFO) == 0) {
		struct xnode *id = xnode_add(rq, NS_DISCO_INFO, "identity");
		if (account) {
			xnode_set_attr(id, "category", "account");
			xnode_set_attr(id, "type", "registered");
		} else {
			xnode_set_attr(id, "category", "server");
			xnode_set_attr(id, "type", "im");
			xnode_set_attr(id, "name", "xmpp-core");
		}
		feature(rq, NS_DISCO_INFO);
		feature(rq, NS_DISCO_ITEMS);
		if (!account) {
			feature(rq, NS_PING);
			if (c->srv->version)
				feature(rq, NS_VERSION);
			feature(rq, "msgoffline");
			feature(rq, NS_LIMITS);
		}
	}
	conn_send_node(c, r);
	xnode_free(r);
	return true;
}
