/* Making, starting and freeing the server (main.c and the fuzz target). */
#ifndef XMPP_SERVER_H
#define XMPP_SERVER_H

#include "xmpp.h"

/* Domains, limits and settings from cfg (which must outlive the server); no sockets, no
 * Redis and no TLS contexts yet. */
struct server *server_new(struct event_base *base, const struct config *cfg);
/* Open every xmpp.listen and xmpp.listen_tls address. */
int server_listen(struct server *srv, const char **error_r);
bool listener_is_direct(const struct server *srv, const struct evconnlistener *l);
/* Close everything; accounts vanish with their last session. Accepts NULL. */
void server_free(struct server *srv);

#endif
