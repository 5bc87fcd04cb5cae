/* XEP-0092 software version of the server; off with xmpp.version = no. The operating
 * system is never disclosed. */
#include "xmpp.h"

#include <string.h>

bool version_iq(struct conn *c, struct xnode *iq, const char *to_bare)
{
	struct xnode *q = xnode_child(iq, NS_VERSION, "query");
	if (q == NULL || !c->srv->version || (to_bare != NULL && strchr(to_bare, '@') != NULL))
		return false;
	if (strcmp(xnode_attr(iq, "type"), "get") != 0) {
		stanza_reply_error(c, iq, "modify", "bad-request");
		return true;
	}
	struct xnode *r = iq_result(iq);
	struct xnode *rq = xnode_add(r, NS_VERSION, "query");
	xnode_add_text(xnode_add(rq, NS_VERSION, "name"), "xmpp-core", 9);
	xnode_add_text(xnode_add(rq, NS_VERSION, "version"), SAMLGW_VERSION,
		       strlen(SAMLGW_VERSION));
	conn_send_node(c, r);
	xnode_free(r);
	return true;
}
