/* Web sessions: a random id in a cookie (HttpOnly, SameSite=Lax, Secure when public_url is
 * https), the session itself in Redis (kv.h) with an idle timeout (web.session_idle,
 * renewed on each request) and an absolute one (web.session_max from the login). */
#ifndef SAMLGW_SESSION_H
#define SAMLGW_SESSION_H

#include "app.h"
#include "attributes.h"
#include "b64.h"
#include "http.h"
#include "kv.h"

/* The cookie's name: with the __Host- prefix when the cookie is Secure and its path is /,
 * so that no sibling host (another tenant's name under the same parent domain) can set it. */
#define SESSION_COOKIE "samlgw_session"
#define SESSION_COOKIE_HOST "__Host-samlgw_session"

struct session {
	char sid[RANDOM_ID_LEN + 1];
	struct kv_session data;
};

/* Start a session for id, ending the request's previous one if any; sets the cookie on
 * reply. Returns KV_OK or KV_UNAVAILABLE. */
enum kv_result session_create(struct app *app, struct http_request *req,
			      const struct identity *id, struct http_reply *reply,
			      const char **error_r);
/* The request's live session: KV_OK with *s, KV_MISS when none (or expired),
 * KV_UNAVAILABLE when Redis cannot be asked. */
enum kv_result session_load(struct app *app, struct http_request *req, struct session *s,
			    const char **error_r);
/* End the request's session (if any) and clear the cookie on reply. */
void session_end(struct app *app, struct http_request *req, struct http_reply *reply);
void session_clear(struct session *s);

/* True when the form's csrf field equals the session's token (constant time) and the
 * Origin header, when sent, is public_url's. */
bool session_csrf_ok(struct app *app, struct http_request *req, const struct session *s);

#endif
