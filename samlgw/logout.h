/* Logging out (docs/saml.md, Logout): ending web sessions (and, with
 * web.logout_revokes_tokens, the tokens issued in them), SP-initiated single logout from
 * POST /logout, and /saml/slo, where IdP LogoutRequests and the answers to ours arrive. */
#ifndef SAMLGW_LOGOUT_H
#define SAMLGW_LOGOUT_H

#include "app.h"
#include "http.h"
#include "session.h"

/* POST /logout with a checked session s (CSRF done): end it, clear the cookie, and when
 * the session's IdP has a SingleLogoutService, send it a signed LogoutRequest (the reply
 * redirects or carries the auto-submitting form); else on to GET /logout. */
void logout_start(struct app *app, struct http_request *req, struct http_reply *reply,
		  const struct session *s);

/* GET or POST /saml/slo. */
void slo(struct app *app, struct http_request *req, struct http_reply *reply);

#endif
