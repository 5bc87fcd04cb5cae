/* Page rendering and the error page (see pages.h). */
#include "pages.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

void page_render(struct app *app, struct http_request *req, struct http_reply *reply,
		 unsigned status, const char *page, struct tmpl_vars *vars, const char *csrf)
{
	const char *lang = templates_language(app->templates, http_header(req, "Accept-Language"));
	char *html;
	size_t len;
	const char *error;
	static const char *const titles[][2] = {{"account", "account_title"},
						{"token-issued", "issued_title"},
						{"idp-chooser", "chooser_title"},
						{"logout", "logout_title"},
						{"logged-out", "logged_out_title"},
						{"saml-post", "saml_post_title"},
						{"error", "error_title"}};
	for (size_t i = 0; i < ARRAY_SIZE(titles); i++) {
		if (strcmp(page, titles[i][0]) == 0) {
			const char *t = templates_text(app->templates, lang, titles[i][1]);
			tmpl_set(vars, "title", t != NULL ? t : "");
		}
	}
	/* The layout's logout form shows when the page belongs to a session. */
	char *logout = xasprintf("%s/logout", app->cfg->http.public_url);
	tmpl_set(vars, "logout_url", logout);
	free(logout);
	tmpl_set_bool(vars, "logged_in", csrf != NULL);
	tmpl_set(vars, "csrf", csrf != NULL ? csrf : "");
	if (templates_render(app->templates, page, lang, vars, &html, &len, &error) < 0) {
		log_event(LOG_LEVEL_ERROR, "render_failed", "page", page, "reason", error, NULL);
		http_reply_text(reply, 500, "text/plain; charset=utf-8", "Internal error.\n");
		return;
	}
	free(reply->body);
	reply->status = status;
	reply->content_type = "text/html; charset=utf-8";
	reply->body = html;
	reply->len = len;
	reply->csp = templates_csp(app->templates);
}

void page_new_ref(char ref[13])
{
	static const char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
	unsigned char raw[12];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		memset(raw, 0, sizeof(raw));
	for (size_t i = 0; i < 12; i++)
		ref[i] = alphabet[raw[i] & 31];
	ref[12] = '\0';
}

void page_error(struct app *app, struct http_request *req, struct http_reply *reply,
		unsigned status, const char *ref, const char *message_key, const char *detail)
{
	struct tmpl_vars *vars = tmpl_vars_new();
	const char *lang = templates_language(app->templates, http_header(req, "Accept-Language"));
	char key[64], code[8];
	snprintf(key, sizeof(key), "error_%s", message_key);
	const char *msg = templates_text(app->templates, lang, key);
	if (msg == NULL)
		msg = templates_text(app->templates, lang, "error_internal");
	snprintf(code, sizeof(code), "%u", status);
	tmpl_set(vars, "message", msg != NULL ? msg : "");
	tmpl_set(vars, "reference", ref != NULL ? ref : "");
	tmpl_set(vars, "detail", detail != NULL ? detail : "");
	tmpl_set(vars, "status", code);
	char *home = xasprintf("%s/", app->cfg->http.public_url);
	tmpl_set(vars, "home_url", home);
	free(home);
	page_render(app, req, reply, status, "error", vars, NULL);
	tmpl_vars_free(vars);
}
