/* libmicrohttpd glue (see http.h). */
#include "http.h"
#include "util.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include <microhttpd.h>

/* One handler thread. Idle workers wait on a stack, so the one that went idle last (its
 * caches still warm) takes the next request. */
struct http_worker {
	pthread_t tid;
	pthread_cond_t wake;
	struct http_worker *next_idle;
	bool listed; /* on the idle stack */
	struct http_server *server;
};

struct http_server {
	struct MHD_Daemon *daemon;
	http_handler *handler;
	http_done *done;
	void *ctx;
	char *prefix;

	/* Requests whose body is complete wait here, their connection suspended, until a
	 * worker runs the handler; a connection has at most one request queued. */
	pthread_mutex_t lock;
	struct http_request *head, *tail;
	struct http_worker *idle;
	bool stopping;
	struct http_worker *workers;
	unsigned n_workers;

	/* Handlers running on an epoll thread itself (see on_request); at most
	 * n_threads - 1, so one epoll thread always goes on accepting connections (up to its
	 * share of HTTP_CONNECTIONS_MAX: libmicrohttpd divides the limit among the threads). */
	unsigned n_threads;
	atomic_uint inline_running;
};

/* Connections served by the calling epoll thread: libmicrohttpd keeps a connection on the
 * thread that accepted it and tells that thread when it starts and when it closes. */
static _Thread_local unsigned thread_connections;

static void reply_free(struct http_reply *r)
{
	free(r->location);
	free(r->set_cookie);
	if (r->body != NULL && r->secret)
		secret_wipe(r->body, r->len);
	free(r->body);
}

static void request_free(struct http_request *req)
{
	if (req == NULL)
		return;
	free(req->path);
	free(req->raw_query);
	if (req->body != NULL) {
		secret_wipe(req->body, req->body_len + 1); /* form decoding only shrinks it */
		free(req->body);
	}
	free(req->form); /* its fields point into the body */
	reply_free(&req->reply);
	free(req);
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

static void reply_fallback(struct http_reply *reply)
{
	if (reply->status == 0)
		http_reply_text(reply, 500, "text/plain; charset=utf-8", "Internal error.\n");
}

static void run_handler(struct http_server *s, struct http_request *req)
{
	s->handler(s->ctx, req, &req->reply);
	reply_fallback(&req->reply);
	req->answered = true;
}

static void unlist(struct http_server *s, struct http_worker *w)
{
	for (struct http_worker **p = &s->idle; *p != NULL; p = &(*p)->next_idle) {
		if (*p == w) {
			*p = w->next_idle;
			break;
		}
	}
	w->listed = false;
}

/* A worker: takes complete requests off the queue, runs the handler, and hands the
 * connection back to its epoll thread, which sends the reply. */
static void *worker_main(void *arg)
{
	struct http_worker *w = arg;
	struct http_server *s = w->server;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (s->head == NULL && !s->stopping) {
			if (!w->listed) {
				w->next_idle = s->idle;
				s->idle = w;
				w->listed = true;
			}
			pthread_cond_wait(&w->wake, &s->lock); /* the waker unlists it */
		}
		if (w->listed) /* woke by itself, and there is work: off the stack */
			unlist(s, w);
		struct http_request *req = s->head;
		if (req == NULL)
			break; /* stopping, and nothing left to answer */
		s->head = req->next;
		if (s->head == NULL)
			s->tail = NULL;
		req->next = NULL;
		pthread_mutex_unlock(&s->lock);
		run_handler(s, req);
		MHD_resume_connection(req->conn);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Wake the most recently idle worker; called with the lock held. */
static void wake_one(struct http_server *s)
{
	struct http_worker *w = s->idle;
	if (w == NULL)
		return; /* all busy: the next one to finish takes the request */
	s->idle = w->next_idle;
	w->listed = false;
	pthread_cond_signal(&w->wake);
}

/* Suspend the request's connection and queue it for a worker; false when the workers are
 * stopping (http_stop): then nothing would resume the connection, and libmicrohttpd
 * refuses to stop with a suspended one, so the caller answers it itself. */
static bool enqueue(struct http_server *s, struct http_request *req)
{
	pthread_mutex_lock(&s->lock);
	if (s->stopping) {
		pthread_mutex_unlock(&s->lock);
		return false;
	}
	MHD_suspend_connection(req->conn);
	if (s->tail != NULL)
		s->tail->next = req;
	else
		s->head = req;
	s->tail = req;
	wake_one(s);
	pthread_mutex_unlock(&s->lock);
	return true;
}

static enum MHD_Result send_too_large(struct MHD_Connection *conn)
{
	struct http_reply reply = {0};
	http_reply_text(&reply, 413, "text/plain; charset=utf-8", "Request body too large.\n");
	return send_reply(conn, &reply);
}

/* The request's declared body length: 0 without one, SIZE_MAX when it is not a number or
 * over the cap (then it is answered before the body is read). */
static size_t declared_length(struct MHD_Connection *conn)
{
	const char *cl =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl == NULL)
		return 0;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(cl, &end, 10);
	return *end != '\0' || errno != 0 || n > HTTP_BODY_MAX ? SIZE_MAX : (size_t)n;
}

/* Room for need bytes of body (need <= HTTP_BODY_MAX + 1). The first buffer takes the
 * declared length, but at most HTTP_BODY_FIRST (a client announcing 256 KiB and sending a
 * byte holds no more), then it doubles; a buffer left behind is wiped first. */
#define HTTP_BODY_FIRST (32 * 1024)
static void body_grow(struct http_request *req, size_t need, size_t declared)
{
	size_t cap = req->body == NULL ? (declared < HTTP_BODY_FIRST ? declared : HTTP_BODY_FIRST) + 1
				       : 2 * need;
	if (cap < need)
		cap = need;
	if (cap > HTTP_BODY_MAX + 1)
		cap = HTTP_BODY_MAX + 1;
	char *body = xrealloc(NULL, cap); /* read up to body_len, which stays NUL-terminated */
	body[0] = '\0';
	if (req->body != NULL) {
		memcpy(body, req->body, req->body_len + 1);
		secret_wipe(req->body, req->body_len + 1);
		free(req->body);
	}
	req->body = body;
	req->body_cap = cap;
}

/* The calling epoll thread serves this one connection only: may it run the handler itself?
 * Then a handler waiting on Redis holds up nothing but its own connection, and the request
 * saves the hand-off to a worker and back (two thread wake-ups). */
static bool claim_inline(struct http_server *s)
{
	if (thread_connections != 1)
		return false;
	unsigned n = atomic_load(&s->inline_running);
	while (n + 1 < s->n_threads) {
		if (atomic_compare_exchange_weak(&s->inline_running, &n, n + 1))
			return true;
	}
	return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	struct http_request *req = *con_cls;
	(void)version;
	if (req == NULL || req->conn == NULL) {
		if (req == NULL)
			req = xcalloc(1, sizeof(*req));
		if (req->raw_query == NULL)
			req->raw_query = xstrdup("");
		req->conn = conn;
		req->method = method;
		clock_gettime(CLOCK_MONOTONIC, &req->start);
		size_t plen = strlen(s->prefix);
		if (plen > 0 && strncmp(url, s->prefix, plen) == 0 &&
		    (url[plen] == '/' || url[plen] == '\0'))
			url += plen;
		req->path = xstrdup(url[0] == '\0' ? "/" : url);
		*con_cls = req;
		if (declared_length(conn) > HTTP_BODY_MAX) {
			/* Answered at once: the body is never read, and the connection closes
			 * after the reply. */
			req->too_large = true;
			return send_too_large(conn);
		}
		return MHD_YES;
	}
	if (req->answered)
		return send_reply(conn, &req->reply);
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;
		if (!req->too_large && req->body_len + n <= HTTP_BODY_MAX) {
			size_t need = req->body_len + n + 1;
			if (need > req->body_cap)
				body_grow(req, need, declared_length(conn));
			memcpy(req->body + req->body_len, upload_data, n);
			req->body_len += n;
			req->body[req->body_len] = '\0';
		} else {
			req->too_large = true;
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (req->too_large)
		return send_too_large(conn);
	/* The request is complete. Its handler may block (Redis, RSA): it runs on this thread
	 * only when that holds up no other connection, else on a worker while this thread
	 * goes on serving its other connections. */
	if (claim_inline(s)) {
		run_handler(s, req);
		atomic_fetch_sub(&s->inline_running, 1);
		return send_reply(conn, &req->reply);
	}
	if (!enqueue(s, req)) {
		run_handler(s, req);
		return send_reply(conn, &req->reply);
	}
	return MHD_YES;
}

/* libmicrohttpd's URI log callback sees the request line's URI before it is decoded:
 * keep its query (capped by the connection's memory limit) in a new request. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	(void)cls;
	(void)conn;
	struct http_request *req = xcalloc(1, sizeof(*req));
	const char *q = uri != NULL ? strchr(uri, '?') : NULL;
	req->raw_query = xstrdup(q != NULL ? q + 1 : "");
	return req;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct http_request *req = *con_cls;
	(void)toe;
	if (req == NULL)
		return;
	if (req->conn == NULL) { /* never reached on_request (a malformed request) */
		request_free(req);
		*con_cls = NULL;
		return;
	}
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
	if (s->done != NULL)
		s->done(s->ctx, req, ci != NULL ? ci->http_status : 0);
	request_free(req);
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	(void)cls;
	(void)conn;
	(void)socket_context;
	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		thread_connections++;
	else if (thread_connections > 0)
		thread_connections--;
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	(void)fmt;
	(void)ap; /* libmicrohttpd's own messages would bypass log_event; counted instead */
}

static unsigned cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

static void stop_workers(struct http_server *s)
{
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	while (s->idle != NULL)
		wake_one(s);
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < s->n_workers; i++)
		pthread_join(s->workers[i].tid, NULL);
	for (unsigned i = 0; i < s->n_workers; i++)
		pthread_cond_destroy(&s->workers[i].wake);
	s->n_workers = 0;
}

static void server_free(struct http_server *s)
{
	free(s->workers);
	pthread_mutex_destroy(&s->lock);
	free(s->prefix);
	free(s);
}

int http_start(const char *listen, unsigned threads, unsigned workers, const char *path_prefix,
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
	pthread_mutex_init(&s->lock, NULL);
	if (threads == 0)
		threads = cpus() + 1;
	s->n_threads = threads;
	if (workers == 0)
		workers = cpus() * 4 < 8 ? 8 : cpus() * 4;
	s->workers = xcalloc(workers, sizeof(*s->workers));
	for (; s->n_workers < workers; s->n_workers++) {
		struct http_worker *w = &s->workers[s->n_workers];
		w->server = s;
		pthread_cond_init(&w->wake, NULL);
		if (pthread_create(&w->tid, NULL, worker_main, w) != 0) {
			pthread_cond_destroy(&w->wake);
			stop_workers(s);
			server_free(s);
			freeaddrinfo(ai);
			*error_r = "cannot start the web server's worker threads";
			return -1;
		}
	}
	/* A pool of epoll threads reads requests and writes replies; handlers run on the
	 * workers, or on an epoll thread serving only that connection (see on_request), so a
	 * slow handler never holds up another connection. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
			 MHD_ALLOW_SUSPEND_RESUME;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->daemon = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
		MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, s, MHD_OPTION_URI_LOG_CALLBACK,
		on_uri, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)HTTP_CONNECTIONS_MAX, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
		MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (s->daemon == NULL) {
		stop_workers(s);
		server_free(s);
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
	/* The workers answer what is queued (each answer resumes its connection); requests
	 * that complete from now on are answered on their epoll thread (enqueue); then the
	 * daemon closes everything. No MHD_quiesce_daemon: with epoll threads, libmicrohttpd
	 * 0.9.75 races its own threads for the listen socket there and can abort. */
	stop_workers(s);
	MHD_stop_daemon(s->daemon);
	server_free(s);
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

/* Decode one urlencoded component in place; false on a bad escape or a NUL. Runs without
 * '%' or '+' move in one piece (a SAMLResponse is long base64 with an escape every few
 * dozen characters). */
static bool url_decode(char *s)
{
	char *o = s, *p = s;
	for (;;) {
		size_t run = strcspn(p, "%+");
		if (o != p)
			memmove(o, p, run);
		o += run;
		p += run;
		if (*p == '\0')
			break;
		if (*p == '+') {
			*o++ = ' ';
			p++;
			continue;
		}
		int h = hex_digit(p[1]), l = h < 0 ? -1 : hex_digit(p[2]);
		if (h < 0 || l < 0 || (h == 0 && l == 0))
			return false;
		*o++ = (char)(h * 16 + l);
		p += 3;
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
	/* Decoded in place: the fields point into the body, which nothing else reads. */
	char *save = NULL;
	size_t cap = 0;
	for (char *f = strtok_r(req->body, "&", &save); f != NULL;
	     f = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(f, '=');
		char *v = f + strlen(f); /* no '=': the empty value */
		if (eq != NULL) {
			*eq = '\0';
			v = eq + 1;
		}
		if (req->n_form == HTTP_FORM_FIELDS_MAX || !url_decode(f) || !url_decode(v)) {
			req->form_bad = true;
			break;
		}
		if (req->n_form == cap) {
			cap = cap == 0 ? 8 : cap * 2;
			req->form = xrealloc(req->form, cap * sizeof(*req->form));
		}
		req->form[req->n_form++] = (struct http_field){f, v};
	}
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

void http_reply_text(struct http_reply *reply, unsigned status, const char *type, const char *body)
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
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
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
