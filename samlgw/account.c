/* The account page (GET /), issuing (POST /tokens) and revoking (POST /tokens/revoke)
 * tokens, and logging out (POST /logout, which logout.c carries on; GET /logout, the page
 * after it; and the page that asks for it after an unsigned SAML logout message). Every POST needs the session and its CSRF token.
 * A new token is shown once, in the answer to the POST, and never stored in clear. */
#include "app.h"
#include "http.h"
#include "jid.h"
#include "log.h"
#include "logout.h"
#include "pages.h"
#include "qr.h"
#include "services.h"
#include "session.h"
#include "store.h"
#include "token.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void account_page(struct app *app, struct http_request *req, struct http_reply *reply);
void account_issue(struct app *app, struct http_request *req, struct http_reply *reply);
void account_revoke(struct app *app, struct http_request *req, struct http_reply *reply);
void account_logout(struct app *app, struct http_request *req, struct http_reply *reply);
void account_logout_confirm(struct app *app, struct http_request *req, struct http_reply *reply);
void account_logged_out(struct app *app, struct http_request *req, struct http_reply *reply);

static void format_time(long long t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M UTC", &tm);
}

static void format_ttl(long long s, char *buf, size_t size)
{
	if (s % (7 * 86400) == 0)
		snprintf(buf, size, "%lldw", s / (7 * 86400));
	else if (s % 86400 == 0)
		snprintf(buf, size, "%lldd", s / 86400);
	else if (s % 3600 == 0)
		snprintf(buf, size, "%lldh", s / 3600);
	else
		snprintf(buf, size, "%llds", s);
}

/* The JID's domain. */
static const char *jid_domain(const char *jid)
{
	const char *at = strrchr(jid, '@');
	return at != NULL ? at + 1 : jid;
}

/* Load the session or answer for its absence. Returns false when the reply is done. */
static bool need_session(struct app *app, struct http_request *req, struct http_reply *reply,
			 struct session *s, bool redirect)
{
	const char *error;
	enum kv_result r = session_load(app, req, s, &error);
	if (r == KV_OK)
		return true;
	if (r == KV_UNAVAILABLE) {
		char ref[13];
		page_new_ref(ref);
		log_event(LOG_LEVEL_ERROR, "session_unavailable", "ref", ref, "reason", error, NULL);
		page_error(app, req, reply, 503, ref, "unavailable", NULL);
		return false;
	}
	if (redirect) {
		char *to = xasprintf("%s/login", app->cfg->http.public_url);
		http_reply_redirect(reply, 302, to);
		free(to);
	} else {
		char ref[13];
		page_new_ref(ref);
		log_event(LOG_LEVEL_INFO, "request_refused", "ref", ref, "path", req->path, "reason",
			  "no session", NULL);
		page_error(app, req, reply, 403, ref, "session", NULL);
	}
	return false;
}

static bool check_csrf(struct app *app, struct http_request *req, struct http_reply *reply,
		       const struct session *s)
{
	if (session_csrf_ok(app, req, s))
		return true;
	char ref[13];
	page_new_ref(ref);
	log_event(LOG_LEVEL_WARN, "request_refused", "ref", ref, "path", req->path, "jid",
		  s->data.jid, "reason", "CSRF token or Origin mismatch", NULL);
	page_error(app, req, reply, 403, ref, "csrf", NULL);
	return false;
}

/* For the state-changing POSTs: a session, a well-formed form body and a matching CSRF
 * token (and Origin), else the reply is already made. On true the caller owns *s. */
static bool need_form_session(struct app *app, struct http_request *req,
			      struct http_reply *reply, struct session *s)
{
	if (!need_session(app, req, reply, s, false))
		return false;
	if (http_form_bad(req)) {
		/* Not a form (a NUL, a bad escape, too many fields): nothing of it is used. */
		char ref[13];
		page_new_ref(ref);
		log_event(LOG_LEVEL_WARN, "request_refused", "ref", ref, "path", req->path, "jid",
			  s->data.jid, "reason", "the form body is not application/x-www-form-urlencoded",
			  NULL);
		page_error(app, req, reply, 400, ref, "bad_request", NULL);
		session_clear(s);
		return false;
	}
	if (!check_csrf(app, req, reply, s)) {
		session_clear(s);
		return false;
	}
	return true;
}

static void set_url(struct app *app, struct tmpl_vars *vars, const char *name, const char *path)
{
	char *url = xasprintf("%s%s", app->cfg->http.public_url, path);
	tmpl_set(vars, name, url);
	free(url);
}

static void set_common(struct app *app, struct tmpl_vars *vars, const struct session *s)
{
	tmpl_set(vars, "display_name", s->data.name);
	tmpl_set(vars, "jid", s->data.jid);
	tmpl_set(vars, "xmpp_host", jid_domain(s->data.jid));
	char port[8];
	snprintf(port, sizeof(port), "%lld", app->cfg->web.xmpp_port);
	tmpl_set(vars, "xmpp_port", port);
	set_url(app, vars, "issue_url", "/tokens");
	set_url(app, vars, "revoke_url", "/tokens/revoke");
	set_url(app, vars, "revoke_all_url", "/tokens/revoke");
	set_url(app, vars, "account_url", "/");
}

void account_page(struct app *app, struct http_request *req, struct http_reply *reply)
{
	struct session s;
	if (!need_session(app, req, reply, &s, true))
		return;
	const struct config *c = app->cfg;
	struct token_list list = {0};
	const char *error;
	enum store_result r = store_list(app_worker(app)->store, s.data.jid, &list, &error);
	if (r != STORE_OK) {
		char ref[13];
		page_new_ref(ref);
		log_event(LOG_LEVEL_ERROR, "token_list_failed", "ref", ref, "jid", s.data.jid,
			  "reason", error, NULL);
		page_error(app, req, reply, 503, ref, "unavailable", NULL);
		session_clear(&s);
		return;
	}
	struct tmpl_vars *vars = tmpl_vars_new();
	set_common(app, vars, &s);
	tmpl_set_list(vars, "ttl_choices");
	for (size_t i = 0; i < c->web.token_ttls.n; i++) {
		long long ttl;
		if (!parse_duration(c->web.token_ttls.v[i], &ttl) || ttl > c->token.max_ttl)
			continue;
		struct tmpl_vars *it = tmpl_list_add(vars, "ttl_choices");
		char v[24], label[24];
		snprintf(v, sizeof(v), "%lld", ttl);
		format_ttl(ttl, label, sizeof(label));
		tmpl_set(it, "value", v);
		tmpl_set(it, "label", label);
		tmpl_set_bool(it, "selected", i == 0);
	}
	tmpl_set_list(vars, "services");
	char *services = xstrdup(c->token.services), *save = NULL;
	for (char *t = strtok_r(services, ", \t", &save); t != NULL; t = strtok_r(NULL, ", \t", &save)) {
		struct tmpl_vars *it = tmpl_list_add(vars, "services");
		tmpl_set(it, "name", t);
		tmpl_set_bool(it, "checked", true);
	}
	free(services);
	tmpl_set_list(vars, "tokens");
	tmpl_set_bool(vars, "has_tokens", list.n > 0);
	for (size_t i = 0; i < list.n; i++) {
		const struct token_info *t = &list.v[i];
		struct tmpl_vars *it = tmpl_list_add(vars, "tokens");
		char issued[40], expires[40];
		format_time(t->issued, issued, sizeof(issued));
		format_time(t->expires, expires, sizeof(expires));
		tmpl_set(it, "id", t->id);
		tmpl_set(it, "label", t->label);
		tmpl_set(it, "services", t->services);
		tmpl_set(it, "issued", issued);
		tmpl_set(it, "expires", expires);
	}
	token_list_free(&list);
	page_render(app, req, reply, 200, "account", vars, s.data.csrf);
	tmpl_vars_free(vars);
	session_clear(&s);
}

/* Services asked for: every "service" field, each one of token.services. */
static char *asked_services(struct app *app, struct http_request *req, const char **error_r)
{
	char *joined = xstrdup("");
	for (size_t i = 0; i < req->n_form; i++) {
		if (strcmp(req->form[i].name, "service") != 0)
			continue;
		const char *v = req->form[i].value;
		if (!service_name_valid(v) || !services_allow(app->cfg->token.services, v)) {
			free(joined);
			*error_r = "a service that this gateway does not issue tokens for";
			return NULL;
		}
		char *next = xasprintf("%s%s%s", joined, *joined ? "," : "", v);
		free(joined);
		joined = next;
	}
	char *canonical;
	if (services_normalize(*joined ? joined : app->cfg->token.services, &canonical, error_r) < 0) {
		free(joined);
		return NULL;
	}
	free(joined);
	return canonical;
}

void account_issue(struct app *app, struct http_request *req, struct http_reply *reply)
{
	struct session s;
	if (!need_form_session(app, req, reply, &s))
		return;
	const struct config *c = app->cfg;
	const char *error = NULL;
	char ref[13];
	const char *label = http_form(req, "label");
	const char *ttl_text = http_form(req, "ttl");
	long long ttl = c->token.default_ttl;
	bool ttl_ok = ttl_text == NULL;
	for (size_t i = 0; ttl_text != NULL && i < c->web.token_ttls.n; i++) {
		long long v;
		if (parse_duration(c->web.token_ttls.v[i], &v) && v <= c->token.max_ttl &&
		    parse_ll(ttl_text, 1, c->token.max_ttl, &ttl) && ttl == v)
			ttl_ok = true;
	}
	if (label != NULL && (strlen(label) > TOKEN_LABEL_MAX || !utf8_printable(label, strlen(label))))
		error = "the label is longer than 64 bytes or not printable text";
	else if (!ttl_ok)
		error = "the lifetime is not one of the offered ones";
	char *services = error == NULL ? asked_services(app, req, &error) : NULL;
	if (services == NULL) {
		page_new_ref(ref);
		log_event(LOG_LEVEL_INFO, "token_issue_refused", "ref", ref, "jid", s.data.jid,
			  "reason", error, NULL);
		page_error(app, req, reply, 400, ref, "token_invalid", error);
		session_clear(&s);
		return;
	}
	struct store_issue_request ir = {
		.jid = s.data.jid,
		.services = services,
		.ttl = ttl,
		.label = label != NULL && *label ? label : NULL,
		.idp = s.data.idp,
		.max_per_user = c->token.max_per_user,
	};
	char token[TOKEN_LEN + 1];
	struct token_info info;
	enum store_result r = store_issue(app_worker(app)->store, &ir, token, &info, &error);
	free(services);
	if (r != STORE_OK) {
		page_new_ref(ref);
		log_event(LOG_LEVEL_WARN, "token_issue_failed", "ref", ref, "jid", s.data.jid,
			  "reason", error, NULL);
		page_error(app, req, reply, r == STORE_INVALID ? 409 : 503, ref,
			   r == STORE_INVALID ? "token_limit" : "unavailable", NULL);
		session_clear(&s);
		return;
	}
	metrics_count(&app->metrics.tokens_issued, 1);
	/* Remembered in the session, so that logging out can revoke it
	 * (web.logout_revokes_tokens). */
	const char *kerr;
	if (kv_session_add_token(app_worker(app)->kv, s.sid, info.id, &kerr) != KV_OK)
		log_event(LOG_LEVEL_WARN, "session_token_not_noted", "jid", s.data.jid, "id",
			  info.id, "reason", kerr, NULL);
	char ttl_s[24];
	snprintf(ttl_s, sizeof(ttl_s), "%lld", ttl);
	log_event(LOG_LEVEL_INFO, "token_issued", "jid", s.data.jid, "id", info.id, "services",
		  info.services, "ttl", ttl_s, "label", info.label, "via", "web", NULL);
	char *json = NULL, *svg = NULL;
	const char *qerr;
	struct tmpl_vars *vars = tmpl_vars_new();
	set_common(app, vars, &s);
	tmpl_set(vars, "token", token);
	tmpl_set(vars, "token_id", info.id);
	tmpl_set(vars, "label", info.label);
	tmpl_set(vars, "services", info.services);
	char expires[40];
	format_time(info.expires, expires, sizeof(expires));
	tmpl_set(vars, "expires", expires);
	if (qr_xmpp_provisioning(s.data.jid, token, &json, &qerr) == 0 &&
	    qr_svg(json, &svg, &qerr) == 0) {
		tmpl_set_html(vars, "qr_svg", svg);
		secret_free(svg);
	} else {
		log_event(LOG_LEVEL_WARN, "qr_failed", "jid", s.data.jid, "reason", qerr, NULL);
		tmpl_set_html(vars, "qr_svg", "");
	}
	secret_free(json);
	secret_wipe(token, sizeof(token));
	page_render(app, req, reply, 200, "token-issued", vars, s.data.csrf);
	reply->secret = true;
	/* The variables held the token; the engine copies values, so wipe by freeing. */
	tmpl_vars_free(vars);
	token_info_clear(&info);
	session_clear(&s);
}

void account_revoke(struct app *app, struct http_request *req, struct http_reply *reply)
{
	struct session s;
	if (!need_form_session(app, req, reply, &s))
		return;
	const char *id = http_form(req, "id"), *all = http_form(req, "all");
	const char *error = NULL;
	char ref[13];
	enum store_result r;
	size_t n = 0;
	struct token_store *store = app_worker(app)->store;
	if (all != NULL && id == NULL) {
		r = store_revoke_all(store, s.data.jid, &n, &error);
	} else if (id != NULL && all == NULL && token_id_valid(id)) {
		char hash[TOKEN_HASH_HEX_LEN + 1];
		r = store_revoke(store, s.data.jid, id, hash, &error);
		n = 1;
	} else {
		r = STORE_INVALID;
		error = "the form names neither one token id nor all";
	}
	if (r != STORE_OK) {
		page_new_ref(ref);
		log_event(LOG_LEVEL_WARN, "token_revoke_failed", "ref", ref, "jid", s.data.jid,
			  "reason", error, NULL);
		page_error(app, req, reply, r == STORE_INVALID ? 404 : 503, ref,
			   r == STORE_INVALID ? "token_unknown" : "unavailable", NULL);
		session_clear(&s);
		return;
	}
	metrics_count(&app->metrics.tokens_revoked, n);
	char count[24];
	snprintf(count, sizeof(count), "%zu", n);
	log_event(LOG_LEVEL_INFO, "tokens_revoked", "jid", s.data.jid, "id", id != NULL ? id : "all",
		  "count", count, "via", "web", NULL);
	char *to = xasprintf("%s/", app->cfg->http.public_url);
	http_reply_redirect(reply, 303, to);
	free(to);
	session_clear(&s);
}

/* POST /logout: the session ends here, and at the IdP too when it takes single logout
 * (logout.c). */
void account_logout(struct app *app, struct http_request *req, struct http_reply *reply)
{
	struct session s;
	if (!need_form_session(app, req, reply, &s))
		return;
	logout_start(app, req, reply, &s);
	session_clear(&s);
}

/* GET /logout, where POST /logout leads: signed out, the page that says so (and that the
 * IdP may still remember the user, so the next login can be silent); still signed in (a
 * bookmark, a second tab), the confirm form. Going on to /login here would send the user
 * straight back in through the IdP's own session. */
void account_logged_out(struct app *app, struct http_request *req, struct http_reply *reply)
{
	const char *error;
	struct session s;
	enum kv_result r = session_load(app, req, &s, &error);
	if (r == KV_UNAVAILABLE) {
		char ref[13];
		page_new_ref(ref);
		log_event(LOG_LEVEL_ERROR, "session_unavailable", "ref", ref, "reason", error, NULL);
		page_error(app, req, reply, 503, ref, "unavailable", NULL);
		return;
	}
	struct tmpl_vars *vars = tmpl_vars_new();
	if (r == KV_OK) {
		set_common(app, vars, &s);
		tmpl_set_bool(vars, "slo", false);
		page_render(app, req, reply, 200, "logout", vars, s.data.csrf);
		session_clear(&s);
	} else {
		set_url(app, vars, "login_url", "/login");
		tmpl_set_bool(vars, "idp_confirmed", false);
		tmpl_set_bool(vars, "idp_failed", false);
		page_render(app, req, reply, 200, "logged-out", vars, NULL);
	}
	tmpl_vars_free(vars);
}

/* A SAML logout message arrived (/saml/slo) that did not verify because it is unsigned or
 * unreadable (logout.c): signed in, the user may confirm with the logout form (its CSRF
 * token), since nothing vouches for who sent the message; signed out, on to the login. */
void account_logout_confirm(struct app *app, struct http_request *req, struct http_reply *reply)
{
	struct session s;
	if (!need_session(app, req, reply, &s, true))
		return;
	log_event(LOG_LEVEL_INFO, "logout_asked", "jid", s.data.jid, "via", "slo", NULL);
	struct tmpl_vars *vars = tmpl_vars_new();
	set_common(app, vars, &s);
	tmpl_set_bool(vars, "slo", true);
	page_render(app, req, reply, 200, "logout", vars, s.data.csrf);
	tmpl_vars_free(vars);
	session_clear(&s);
}
