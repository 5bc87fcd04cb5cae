/* samlgw's HTTP server on libmicrohttpd: a pool of epoll threads collects each request,
 * capping its body at HTTP_BODY_MAX (a larger declared Content-Length is answered 413
 * before the body is read), a pool of workers runs the one handler (or the epoll thread
 * itself, when it serves no other connection and another epoll thread is free), and the
 * epoll thread sends the handler's reply. Per-request state lives in struct http_request and is freed
 * in exactly one place: libmicrohttpd's completion callback. */
#ifndef SAMLGW_HTTP_H
#define SAMLGW_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define HTTP_BODY_MAX        (256 * 1024)
#define HTTP_FORM_FIELDS_MAX 256
#define HTTP_CONNECTIONS_MAX 1000

struct http_field {
	char *name, *value;
};

struct http_reply {
	unsigned status;
	const char *content_type; /* static */
	char *body;               /* owned */
	size_t len;
	bool secret;              /* wipe the body once sent (it shows a token) */
	char *location;           /* owned: Location header */
	char *set_cookie;         /* owned: Set-Cookie header */
	const char *csp;          /* static or long-lived: Content-Security-Policy */
};

struct http_request {
	void *conn; /* struct MHD_Connection */
	const char *method;
	char *path;              /* without query; the public_url path prefix removed */
	char *raw_query;         /* the query as received, still encoded ("" when none): the
				  * SAML Redirect binding's signature covers it */
	char *body;              /* NUL-terminated; once the form is parsed, its decoded fields */
	size_t body_len, body_cap;
	bool too_large;
	struct timespec start;
	struct http_field *form; /* parsed urlencoded body, on first use; points into body */
	size_t n_form;
	bool form_parsed, form_bad;
	struct http_reply reply; /* the handler's, sent once answered */
	bool answered;
	struct http_request *next; /* in the workers' queue */
};

typedef void http_handler(void *ctx, struct http_request *req, struct http_reply *reply);
/* Called once per request after its reply is sent, with the reply's status. */
typedef void http_done(void *ctx, const struct http_request *req, unsigned status);

struct http_server;

/* Listen on listen (HOST:PORT) with threads epoll threads (0: one per CPU, plus one) and
 * workers handler threads (0: four per CPU, at least 8). path_prefix is the path of public_url ("" for
 * none). Returns 0 with *server_r, or -1 with *error_r. */
int http_start(const char *listen, unsigned threads, unsigned workers, const char *path_prefix,
               http_handler *handler, http_done *done, void *ctx, struct http_server **server_r,
               const char **error_r);
void http_stop(struct http_server *server);

const char *http_query(const struct http_request *req, const char *name);
const char *http_header(const struct http_request *req, const char *name);
const char *http_cookie(const struct http_request *req, const char *name);

/* The value of form field name (the first), or NULL; the body is parsed on first use. */
const char *http_form(struct http_request *req, const char *name);
/* True when the body could not be parsed as application/x-www-form-urlencoded. */
bool http_form_bad(struct http_request *req);

/* Fill reply with a status, a type and a body (copied). */
void http_reply_text(struct http_reply *reply, unsigned status, const char *type, const char *body);
void http_reply_redirect(struct http_reply *reply, unsigned status, const char *location);

/* Percent-encode s for a query component into a new string. */
char *http_url_encode(const char *s);

#endif
