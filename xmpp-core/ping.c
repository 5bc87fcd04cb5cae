/* XEP-0199 XMPP ping: the server answers pings addressed to it, to no one, or to the
 * user's own bare JID. */
#include "xmpp.h"

#include <string.h>

bool ping_iq(struct conn *c, struct xnode *iq, const char *to_bare)
{
	if (xnode_child(iq, NS_PING, "ping") == NULL)
		return false;
	if (to_bare != NULL && strchr(to_bare, '@') != NULL &&
	    strcmp(to_bare, c->session->acct->bare) != 0)
		return false; /* another user's bare JID: service-unavailable */
	if (strcmp(xnode_attr(iq, "type"), "get") != 0) {
		stanza_reply_error(c, iq, "modify", "bad-request");
		return true;
	}
	struct xnode *r = iq_result(iq);
	conn_send_node(c, r);
	xnode_free(r);
	return true;
}
