/* Rendering samlgw's pages through the template engine, and the error page every refused
 * request ends on: it shows a reference id that the matching log line carries too. */
#ifndef SAMLGW_PAGES_H
#define SAMLGW_PAGES_H

#include "app.h"
#include "http.h"
#include "template.h"

/* Render page with vars (in the request's language) into reply; csrf is the session's
 * token on pages of a session (the layout then shows the logout form), else NULL. Sets
 * title, logged_in, csrf and logout_url. On a template failure the reply is a plain 500
 * and the failure is logged. */
void page_render(struct app *app, struct http_request *req, struct http_reply *reply,
		 unsigned status, const char *page, struct tmpl_vars *vars, const char *csrf);

/* A new reference id (12 characters) for an error page and its log line. */
void page_new_ref(char ref[13]);

/* The error page: message_key names the message error_KEY of the translations; ref (may
 * be NULL) and detail (optional plain text) are shown below it. */
void page_error(struct app *app, struct http_request *req, struct http_reply *reply,
		unsigned status, const char *ref, const char *message_key, const char *detail);

#endif
