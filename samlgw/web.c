/* samlgw's routes (INTERFACES.md): the router, /healthz, /metrics, SP metadata, login
 * (AuthnRequest) and the ACS. The account page and tokens: account.c; logout and single
 * logout (/saml/slo): logout.c. */
#include "access.h"
#include "acs.h"
#include "app.h"
#include "chooser.h"
#include "http.h"
#include "log.h"
#include "pages.h"
#include "session.h"
#include "sp_metadata.h"
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
/* /saml/slo: logout.c */
void slo(struct app *app, struct http_request *req, struct http_reply *reply);

#define TEXT "text/plain; charset=utf-8"

static void healthz(struct app *app, struct http_reply *reply)
{
	const char *error;
	if (kv_ping(app_worker(app)->kv, &error) == KV_OK) {
		http_reply_text(reply, 200, TEXT, "ok\n");
	} else {
		log_event(LOG_LEVEL_WARN, "health_failed", "reason", error, NULL);
		http_reply_text(reply, 503, TEXT, "redis unavailable\n");
	}
}

static void metrics(struct app *app, struct http_reply *reply)
{
	reply->status = 200;
	reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
	reply->body = metrics_render(&app->metrics);
	reply->len = strlen(reply->body);
}

static void metadata(struct app *app, struct http_reply *reply)
{
	struct sp *sp = app_sp(app);
	http_reply_text(reply, 200, "application/samlmetadata+xml", sp->metadata_xml);
	sp_unref(sp);
}

#define STR_(x) #x
#define STR(x) STR_(x)

/* A return path (attacker-controlled) must stay on this site and under public_url's path,
 * also for whatever decodes it once more (a proxy, a browser): at most ACS_RETURN_MAX
 * bytes of printable ASCII without spaces or backslashes, starting with one '/'; percent
 * escapes well formed, none of them a control character or a backslash; and once they are
 * decoded, the path (before any raw '?' or '#') neither starts with "//" ("/%2F/host") nor
 * holds a "." or ".." segment, which browsers resolve ("/.//host" is "//host", "/../x"
 * leaves public_url's path). Browsers drop tabs and newlines from URLs and read a
 * backslash as '/'. Returns NULL for a good one, else which rule it breaks. */
static const char *return_problem(const char *r)
{
	size_t len = strlen(r);
	if (len == 0 || r[0] != '/')
		return "it does not start with '/'";
	if (len > ACS_RETURN_MAX)
		return "it is longer than " STR(ACS_RETURN_MAX) " bytes";
	char d[ACS_RETURN_MAX + 1]; /* r decoded */
	size_t n = 0, path_end = strcspn(r, "?#"), path_len = 0;
	for (size_t i = 0; i < len; i++) {
		if (i == path_end)
			path_len = n; /* the path ends at a raw '?' or '#', not at an escaped one */
		unsigned char c = (unsigned char)r[i];
		if (c <= ' ' || c >= 0x7f || c == '\\')
			return "it holds a space, a control character, a backslash or a non-ASCII "
			       "byte";
		if (c == '%') {
			int hi = hex_digit(r[i + 1]);
			int lo = hi < 0 ? -1 : hex_digit(r[i + 2]);
			if (lo < 0)
				return "it holds a malformed percent escape";
			c = (unsigned char)(hi * 16 + lo);
			if (c < ' ' || c == 0x7f || c == '\\')
				return "it holds an escaped control character or backslash";
			i += 2;
		}
		d[n++] = (char)c;
	}
	d[path_end < len ? path_len : n] = '\0'; /* the path */
	if (d[1] == '/')
		return "its path starts with '//' once decoded (another host)";
	for (const char *seg = d + 1;; seg++) {
		size_t sl = strcspn(seg, "/");
		if ((sl == 1 && seg[0] == '.') || (sl == 2 && seg[0] == '.' && seg[1] == '.'))
			return "its path holds a '.' or '..' segment once decoded";
		seg += sl;
		if (*seg == '\0')
			return NULL;
	}
}

static void login(struct app *app, struct http_request *req, struct http_reply *reply)
{
	struct sp *sp = app_sp(app);
	const struct config *c = app->cfg;
	const char *ret = http_query(req, "return");
	const char *idp_id = http_query(req, "idp");
	char ref[13];
	const char *problem = ret != NULL ? return_problem(ret) : NULL;
	if (problem != NULL) {
		/* Not an error page: the login goes on, and ends on the site's root. */
		log_event(LOG_LEVEL_WARN, "return_refused", "reason", "return_not_local", "detail",
			  problem, "return", ret, NULL);
		ret = "/";
	}
	if (ret == NULL)
		ret = "/";
	const struct idp *idp = NULL;
	if (idp_id != NULL) {
		idp = idp_set_find(sp->idps, idp_id);
		if (idp == NULL) {
			page_new_ref(ref);
			log_event(LOG_LEVEL_WARN, "login_start_refused", "ref", ref, "reason",
				  "unknown_idp", "idp", idp_id, NULL);
			page_error(app, req, reply, 400, ref, "unknown_idp", NULL);
			goto out;
		}
	} else if (sp->idps->n == 1) {
		idp = &sp->idps->v[0];
	} else if (c->saml.discovery_url != NULL) {
		/* SAML IdP discovery protocol: the service comes back with ?idp=… */
		char *r = http_url_encode(ret);
		char *back = xasprintf("%s/login?return=%s", c->http.public_url, r);
		char *eb = http_url_encode(back), *ee = http_url_encode(c->saml.entity_id);
		char *url = xasprintf("%s%sentityID=%s&return=%s&returnIDParam=idp",
				      c->saml.discovery_url,
				      strchr(c->saml.discovery_url, '?') ? "&" : "?", ee, eb);
		http_reply_redirect(reply, 302, url);
		free(url);
		free(eb);
		free(ee);
		free(back);
		free(r);
		goto out;
	} else {
		chooser_page(app, sp, req, reply, ret);
		goto out;
	}
	char *url = NULL, *id = NULL;
	const char *error;
	if (sp_authn_request(sp, idp, &url, &id, &error) < 0) {
		page_new_ref(ref);
		log_event(LOG_LEVEL_ERROR, "login_start_failed", "ref", ref, "idp", idp->entity_id,
			  "reason", error, NULL);
		page_error(app, req, reply, 500, ref, "internal", NULL);
		goto out;
	}
	char *state = xasprintf("%s\n%s", idp->entity_id, ret);
	enum kv_result r = kv_request_put(app_worker(app)->kv, id, state, c->saml.request_ttl,
					  &error);
	free(state);
	if (r != KV_OK) {
		page_new_ref(ref);
		log_event(LOG_LEVEL_ERROR, "login_start_failed", "ref", ref, "idp", idp->entity_id,
			  "reason", error, NULL);
		page_error(app, req, reply, 503, ref, "unavailable", NULL);
	} else {
		log_event(LOG_LEVEL_INFO, "login_started", "idp", idp->entity_id, "request", id,
			  NULL);
		http_reply_redirect(reply, 302, url);
		if (idp_id != NULL)
			chooser_remember(app, reply, idp);
	}
	free(url);
	free(id);
out:
	sp_unref(sp);
}

static double elapsed(const struct timespec *start)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

static void acs(struct app *app, struct http_request *req, struct http_reply *reply)
{
	struct sp *sp = app_sp(app);
	const char *b64 = http_form_bad(req) ? NULL : http_form(req, "SAMLResponse");
	struct acs_checked checked = {0};
	struct acs_result result = {0};
	struct session_new session = {0};
	enum refusal reason = REFUSE_BAD_REQUEST;
	const char *error = "the POST carries no SAMLResponse form field";
	char *issuer = NULL;
	int r = -1;
	if (b64 != NULL)
		r = acs_check(sp, b64, strlen(b64), time(NULL), &checked, &reason, &error,
			      &issuer);
	/* The domain's access rules, once the domain is chosen; a user who fails them gets
	 * no session and leaves no trace in Redis. */
	const char *denied_rule = NULL;
	const struct config_domain *domain =
		r == 0 ? config_domain_find(app->cfg, checked.id.domain) : NULL;
	if (r == 0 && (domain == NULL || access_check(domain, &checked.attrs, &denied_rule) < 0)) {
		r = -1;
		reason = REFUSE_ACCESS_DENIED;
		error = "the user does not meet an access rule (require) of the domain";
	}
	if (r == 0 && session_prepare(app, req, &checked.id, &checked.slo, &session, &error) < 0) {
		r = -1;
		reason = REFUSE_UNAVAILABLE;
	}
	/* InResponseTo, the replay cache and the session: one step in Redis. */
	if (r == 0)
		r = acs_commit(app_worker(app)->kv, &checked, &session.put, &result, &reason,
			       &error);
	if (r == 0)
		session_started(app, &session, reply);
	metrics_acs_latency(&app->metrics, elapsed(&req->start));
	if (r == 0) {
		metrics_count(&app->metrics.logins_ok, 1);
		log_event(LOG_LEVEL_INFO, "login_ok", "jid", result.id.jid, "idp", result.id.idp,
			  "domain", result.id.domain, "attributes", result.id.attributes, NULL);
		char *to = xasprintf("%s%s", app->cfg->http.public_url, result.return_to);
		http_reply_redirect(reply, 303, to);
		free(to);
	} else {
		char ref[13];
		page_new_ref(ref);
		const char *idp = issuer != NULL ? issuer : checked.issuer;
		metrics_count(&app->metrics.logins_refused[reason], 1);
		if (reason == REFUSE_ACCESS_DENIED)
			/* The rule as configured (its value names), never the user's values. */
			log_event(LOG_LEVEL_WARN, "login_refused", "ref", ref, "reason",
				  refusal_name(reason), "domain", checked.id.domain, "rule",
				  denied_rule != NULL ? denied_rule : "", "detail", error, "idp",
				  idp, "jid", checked.id.jid, NULL);
		else
			log_event(LOG_LEVEL_WARN, "login_refused", "ref", ref, "reason",
				  refusal_name(reason), "detail", error, "idp", idp, NULL);
		unsigned status = reason == REFUSE_UNAVAILABLE ? 503 : 403;
		const char *key = refusal_name(reason);
		free(reply->set_cookie);
		reply->set_cookie = NULL;
		page_error(app, req, reply, status, ref, key,
			   reason == REFUSE_IDP_NOT_BOUND    ? idp
			   : reason == REFUSE_ACCESS_DENIED ? checked.id.domain
							    : NULL);
	}
	session_new_clear(&session);
	free(issuer);
	acs_checked_clear(&checked);
	acs_result_clear(&result);
	sp_unref(sp);
}

void web_handle(void *ctx, struct http_request *req, struct http_reply *reply)
{
	struct app *app = ctx;
	const char *m = req->method, *p = req->path;
	bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
	bool post = strcmp(m, "POST") == 0;
	if (strcmp(p, "/healthz") == 0 && get)
		healthz(app, reply);
	else if (strcmp(p, "/metrics") == 0 && get)
		metrics(app, reply);
	else if (strcmp(p, SP_PATH_METADATA) == 0 && get)
		metadata(app, reply);
	else if (strcmp(p, "/login") == 0 && get)
		login(app, req, reply);
	else if (strcmp(p, SP_PATH_ACS) == 0 && post)
		acs(app, req, reply);
	else if (strcmp(p, SP_PATH_SLO) == 0 && (get || post))
		slo(app, req, reply);
	else if (strcmp(p, "/") == 0 && get)
		account_page(app, req, reply);
	else if (strcmp(p, "/tokens") == 0 && post)
		account_issue(app, req, reply);
	else if (strcmp(p, "/tokens/revoke") == 0 && post)
		account_revoke(app, req, reply);
	else if (strcmp(p, "/logout") == 0 && post)
		account_logout(app, req, reply);
	else if (strcmp(p, "/logout") == 0 && get)
		account_logged_out(app, req, reply);
	else if (strcmp(p, "/healthz") == 0 || strcmp(p, "/metrics") == 0 ||
		 strcmp(p, SP_PATH_METADATA) == 0 || strcmp(p, "/login") == 0 ||
		 strcmp(p, SP_PATH_ACS) == 0 || strcmp(p, SP_PATH_SLO) == 0 || strcmp(p, "/") == 0 ||
		 strcmp(p, "/tokens") == 0 || strcmp(p, "/tokens/revoke") == 0 ||
		 strcmp(p, "/logout") == 0)
		page_error(app, req, reply, 405, NULL, "method", NULL);
	else
		page_error(app, req, reply, 404, NULL, "not_found", NULL);
}

void web_done(void *ctx, const struct http_request *req, unsigned status)
{
	struct app *app = ctx;
	/* The handler never saw these: the body was over the cap (declared or sent). */
	if (req->too_large) {
		char detail[64];
		snprintf(detail, sizeof(detail), "the request body is larger than %d bytes",
			 HTTP_BODY_MAX);
		log_event(LOG_LEVEL_WARN, "request_refused", "reason", "body_too_large", "detail",
			  detail, "method", req->method, "path", req->path, NULL);
	}
	metrics_http(&app->metrics, status);
}
