/* libmicrohttpd glue (see http.h). */
#include "http.h"
#include "util.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

struct http_server {
	struct MHD_Daemon *daemon;
	http_handler *handler;
	http_done *done;
	void *ctx;
	char *prefix;
};

static void request_free(struct http_request *req)
{
	if (req == NULL)
		return;
	free(req->path);
	if (req->body != NULL) {
		secret_wipe(req->body, req->body_len);
		free(req->body);
	}
	for (size_t i = 0; i < req->n_form; i++) {
		free(req->form[i].name);
		secret_free(req->form[i].value);
	}
	free(req->form);
	free(req);
}

static void reply_free(struct http_reply *r)
{
	free(r->location);
	free(r->set_cookie);
	if (r->body != NULL && r->secret)
		secret_wipe(r->body, r->len);
	free(r->body);
}

static void free_secret_body(void *cls)
{
	struct http_reply *copy = cls;
	reply_free(copy);
	free(copy);
}

static const char security_headers[][2][64] = {
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
	{"Referrer-Policy", "no-referrer"},
	{"Cache-Control", "no-store"},
};

static enum MHD_Result send_reply(struct MHD_Connection *conn, struct http_reply *r)
{
	/* The reply's storage moves into the response and is freed (and wiped when it is a
	 * secret) by libmicrohttpd once sent. */
	struct http_reply *keep = xcalloc(1, sizeof(*keep));
	*keep = *r;
	memset(r, 0, sizeof(*r));
	struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback_cls(
		keep->len, keep->body != NULL ? keep->body : "", free_secret_body, keep);
	if (resp == NULL) {
		free_secret_body(keep);
		return MHD_NO;
	}
	for (size_t i = 0; i < ARRAY_SIZE(security_headers); i++)
		MHD_add_response_header(resp, security_headers[i][0], security_headers[i][1]);
	MHD_add_response_header(resp, "Content-Security-Policy",
				keep->csp != NULL ? keep->csp
						  : "default-src 'none'; frame-ancestors 'none'; "
						    "base-uri 'none'; form-action 'self'");
	if (keep->content_type != NULL)
		MHD_add_response_header(resp, "Content-Type", keep->content_type);
	if (keep->location != NULL)
		MHD_add_response_header(resp, "Location", keep->location);
	if (keep->set_cookie != NULL)
		MHD_add_response_header(resp, "Set-Cookie", keep->set_cookie);
	enum MHD_Result ret = MHD_queue_response(conn, keep->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct http_server *s = cls;
	struct http_request *req = *con_cls;
	(void)version;
	if (req == NULL) {
		req = xcalloc(1, sizeof(*req));
		req->conn = conn;
		req->method = method;
		clock_gettime(CLOCK_MONOTONIC, &req->start);
		size_t plen = strlen(s->prefix);
		if (plen > 0 && strncmp(url, s->prefix, plen) == 0 &&
		    (url[plen] == '/' || url[plen] == '\0'))
			url += plen;
		req->path = xstrdup(url[0] == '\0' ? "/" : url);
		*con_cls = req;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		if (!req->too_large && req->body_len + n <= HTTP_BODY_MAX) {
			req->body = xrealloc(req->body, req->body_len + n + 1);
			memcpy(req->body + req->body_len, upload_data, n);
			req->body_len += n;
			req->body[req->body_len] = '\0';
		} else {
			req->too_large = true;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	struct http_reply reply = {0};
	if (req->too_large)
		http_reply_text(&reply, 413, "text/plain; charset=utf-8",
				"Request body too large.\n");
	else
		s->handler(s->ctx, req, &reply);
	if (reply.status == 0)
		http_reply_text(&reply, 500, "text/plain; charset=utf-8", "Internal error.\n");
	return send_reply(conn, &reply);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct http_request *req = *con_cls;
	(void)toe;
	if (req == NULL)
		return;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
	if (s->done != NULL)
		s->done(s->ctx, req, ci != NULL ? ci->http_status : 0);
	request_free(req);
	*con_cls = NULL;
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	(void)fmt;
	(void)ap; /* libmicrohttpd's own messages would bypass log_event; counted instead */
}

int http_start(const char *listen, unsigned threads, const char *path_prefix,
	       http_handler *handler, http_done *done, void *ctx, struct http_server **server_r,
	       const char **error_r)
{
	char host[300];
	const char *port;
	if (listen[0] == '[') {
		const char *rb = strchr(listen, ']');
		snprintf(host, sizeof(host), "%.*s", (int)(rb - listen - 1), listen + 1);
		port = rb + 2;
	} else {
		const char *colon = strrchr(listen, ':');
		snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
		port = colon + 1;
	}
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai;
	if (getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port, &hints, &ai) != 0) {
		*error_r = "cannot resolve the http.listen address";
		return -1;
	}
	struct http_server *s = xcalloc(1, sizeof(*s));
	s->handler = handler;
	s->done = done;
	s->ctx = ctx;
	s->prefix = xstrdup(path_prefix);
	/* Handlers block (Redis, RSA): with a pool, a worker busy with one request leaves the
	 * other connections it accepted waiting, however idle the other workers are, and a
	 * worker accepts whatever arrives at once. threads == 0: one thread per connection,
	 * so requests on different connections never wait for each other. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
			 (threads == 0 ? MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL : MHD_USE_EPOLL);
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
		MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)1000, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
		MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (s->daemon == NULL) {
		free(s->prefix);
		free(s);
		*error_r = "cannot listen on http.listen (address in use or not permitted)";
		return -1;
	}
	*server_r = s;
	return 0;
}

void http_stop(struct http_server *s)
{
	if (s == NULL)
		return;
	MHD_stop_daemon(s->daemon);
	free(s->prefix);
	free(s);
}

const char *http_query(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *http_cookie(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, name);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* Decode one urlencoded component in place; false on a bad escape or a NUL. */
static bool url_decode(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (*p == '+') {
			*o++ = ' ';
		} else if (*p == '%') {
			int h = hexval(p[1]), l = h < 0 ? -1 : hexval(p[2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0))
				return false;
			*o++ = (char)(h * 16 + l);
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return true;
}

static void parse_form(struct http_request *req)
{
	req->form_parsed = true;
	if (req->body == NULL)
		return;
	const char *ct = http_header(req, "Content-Type");
	if (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0 ||
	    memchr(req->body, '\0', req->body_len) != NULL) {
		req->form_bad = true;
		return;
	}
	char *copy = xstrdup(req->body), *save = NULL;
	for (char *f = strtok_r(copy, "&", &save); f != NULL; f = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(f, '=');
		const char *v = "";
		if (eq != NULL) {
			*eq = '\0';
			v = eq + 1;
		}
		if (req->n_form == HTTP_FORM_FIELDS_MAX) {
			req->form_bad = true;
			break;
		}
		char *name = xstrdup(f), *value = xstrdup(v);
		if (!url_decode(name) || !url_decode(value)) {
			free(name);
			secret_free(value);
			req->form_bad = true;
			break;
		}
		req->form = xrealloc(req->form, (req->n_form + 1) * sizeof(*req->form));
		req->form[req->n_form++] = (struct http_field){name, value};
	}
	secret_wipe(copy, strlen(copy));
	free(copy);
}

const char *http_form(struct http_request *req, const char *name)
{
	if (!req->form_parsed)
		parse_form(req);
	for (size_t i = 0; i < req->n_form; i++) {
		if (strcmp(req->form[i].name, name) == 0)
			return req->form[i].value;
	}
	return NULL;
}

bool http_form_bad(struct http_request *req)
{
	if (!req->form_parsed)
		parse_form(req);
	return req->form_bad;
}

void http_reply_text(struct http_reply *reply, unsigned status, const char *type,
		     const char *body)
{
	free(reply->body);
	reply->status = status;
	reply->content_type = type;
	reply->body = xstrdup(body);
	reply->len = strlen(body);
}

void http_reply_redirect(struct http_reply *reply, unsigned status, const char *location)
{
	http_reply_text(reply, status, "text/plain; charset=utf-8", "Redirecting.\n");
	free(reply->location);
	reply->location = xstrdup(location);
}

char *http_url_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = xcalloc(1, strlen(s) * 3 + 1), *o = out;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '_' || *p == '.' || *p == '~') {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}
