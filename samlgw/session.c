/* Web sessions (see session.h). */
#include "session.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *cookie_name(const struct app *app)
{
	return app->secure_cookie && strcmp(app->cookie_path, "/") == 0 ? SESSION_COOKIE_HOST
									 : SESSION_COOKIE;
}

static char *cookie(const struct app *app, const char *value, long long max_age)
{
	return xasprintf("%s=%s; Path=%s; Max-Age=%lld; HttpOnly; SameSite=Lax%s",
			 cookie_name(app), value, app->cookie_path, max_age,
			 app->secure_cookie ? "; Secure" : "");
}

int session_prepare(struct app *app, struct http_request *req, const struct identity *id,
		    const struct kv_slo *slo, struct session_new *s, const char **error_r)
{
	memset(s, 0, sizeof(*s));
	if (random_id(s->sid) < 0 || random_id(s->csrf) < 0) {
		session_new_clear(s);
		*error_r = "the random generator failed";
		return -1;
	}
	const char *old = http_cookie(req, cookie_name(app));
	if (old != NULL && random_id_valid(old))
		s->old_sid = xstrdup(old);
	const struct config *c = app->cfg;
	s->data = (struct kv_session){
		.jid = id->jid,
		.name = id->display_name,
		.idp = id->idp,
		.csrf = s->csrf,
		.created = (long long)time(NULL),
	};
	if (slo != NULL)
		s->data.slo = *slo;
	s->put = (struct kv_session_new){
		.sid = s->sid,
		.old_sid = s->old_sid,
		.s = &s->data,
		.ttl = c->web.session_idle < c->web.session_max ? c->web.session_idle
								: c->web.session_max,
		.index_ttl = c->web.session_max,
	};
	return 0;
}

void session_started(struct app *app, const struct session_new *s, struct http_reply *reply)
{
	free(reply->set_cookie);
	reply->set_cookie = cookie(app, s->sid, app->cfg->web.session_max);
}

void session_new_clear(struct session_new *s)
{
	secret_wipe(s->sid, sizeof(s->sid));
	secret_wipe(s->csrf, sizeof(s->csrf));
	secret_free(s->old_sid);
	memset(s, 0, sizeof(*s));
}

enum kv_result session_load(struct app *app, struct http_request *req, struct session *s,
			    const char **error_r)
{
	memset(s, 0, sizeof(*s));
	const char *sid = http_cookie(req, cookie_name(app));
	if (sid == NULL || !random_id_valid(sid)) {
		*error_r = "no session cookie";
		return KV_MISS;
	}
	const struct config *c = app->cfg;
	struct kv *kv = app_worker(app)->kv;
	enum kv_result r = kv_session_get(kv, sid, c->web.session_idle, &s->data, error_r);
	if (r != KV_OK)
		return r;
	long long now = (long long)time(NULL);
	long long left = s->data.created + c->web.session_max - now;
	if (left <= 0) {
		kv_session_clear(&s->data);
		kv_session_delete(kv, sid, error_r);
		*error_r = "the session reached web.session_max";
		return KV_MISS;
	}
	snprintf(s->sid, sizeof(s->sid), "%s", sid);
	return KV_OK;
}

void session_clear(struct session *s)
{
	secret_wipe(s->sid, sizeof(s->sid));
	kv_session_clear(&s->data);
}

bool session_csrf_ok(struct app *app, struct http_request *req, const struct session *s)
{
	const char *origin = http_header(req, "Origin");
	if (origin != NULL && strcmp(origin, app->public_origin) != 0)
		return false;
	const char *token = http_form(req, "csrf");
	return token != NULL && strlen(token) == RANDOM_ID_LEN &&
	       strlen(s->data.csrf) == RANDOM_ID_LEN && ct_equal(token, s->data.csrf, RANDOM_ID_LEN);
}

void session_clear_cookie(struct app *app, struct http_reply *reply)
{
	free(reply->set_cookie);
	reply->set_cookie = cookie(app, "", 0);
}

bool session_request_hash(struct app *app, struct http_request *req, char out[65])
{
	const char *sid = http_cookie(req, cookie_name(app));
	if (sid == NULL || !random_id_valid(sid))
		return false;
	kv_session_hash(sid, out);
	return true;
}
