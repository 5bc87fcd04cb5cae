/* The IdP chooser page of GET /login (several IdPs, no discovery service configured) and
 * the cookie that remembers the IdP a browser chose last. */
#ifndef SAMLGW_CHOOSER_H
#define SAMLGW_CHOOSER_H

#include "app.h"
#include "http.h"
#include "metadata.h"
#include "sp.h"

/* The chooser: IdPs some [domain] takes users from and that do not ask to be hidden from
 * discovery, sorted by their name in the page's language, with logos; ?q= narrows the
 * list; the IdP remembered by chooser_remember comes first. ret: the checked return path
 * the login goes on to. */
void chooser_page(struct app *app, struct sp *sp, struct http_request *req,
		  struct http_reply *reply, const char *ret);

/* Remember idp as this browser's last choice (a cookie on the redirect to the IdP). */
void chooser_remember(struct app *app, struct http_reply *reply, const struct idp *idp);

#endif
