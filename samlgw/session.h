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

/* A login's new session, made ready before the ACS's Redis step (acs_commit) stores it
 * together with the login's checks. It ends the request's previous session, if any (a
 * new login never keeps the browser's previous session alive, nor adopts it). */
struct session_new {
	char sid[RANDOM_ID_LEN + 1];
	char csrf[RANDOM_ID_LEN + 1];
	char *old_sid;
	struct kv_session data; /* points into id and csrf */
	struct kv_session_new put;
};

/* Fill *s for id and slo (the login's NameID and SessionIndex; both must outlive it). Returns 0, or -1 with *error_r when the random
 * generator fails. */
int session_prepare(struct app *app, struct http_request *req, const struct identity *id,
		    const struct kv_slo *slo, struct session_new *s, const char **error_r);
/* The session was stored: set its cookie on reply. */
void session_started(struct app *app, const struct session_new *s, struct http_reply *reply);
/* Wipe the ids; accepts a cleared or unused s. */
void session_new_clear(struct session_new *s);
/* The request's live session: KV_OK with *s, KV_MISS when none (or expired),
 * KV_UNAVAILABLE when Redis cannot be asked. */
enum kv_result session_load(struct app *app, struct http_request *req, struct session *s,
			    const char **error_r);
/* Clear the session cookie on reply. */
void session_clear_cookie(struct app *app, struct http_reply *reply);
/* The key hash (kv_session_hash) of the request's session cookie into out; false when the
 * request carries none. */
bool session_request_hash(struct app *app, struct http_request *req, char out[65]);
void session_clear(struct session *s);

/* True when the form's csrf field equals the session's token (constant time) and the
 * Origin header, when sent, is public_url's. */
bool session_csrf_ok(struct app *app, struct http_request *req, const struct session *s);

#endif
