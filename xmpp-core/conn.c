/* One client connection: socket and TLS (direct or STARTTLS), the stream header and
 * features, stream errors, idle timeout and whitespace keepalives, and the dispatch of
 * top-level elements to SASL, binding and stanza routing.
 *
 * Flow control: a connection whose output holds more than srv->max_output bytes (a client
 * that does not read) is ended with policy-violation, and nothing more is queued for it.
 * While its output holds more than a quarter of that, or it has REDIS_INFLIGHT_MAX Redis
 * calls in flight, its parser is suspended after the current element and reading stops;
 * the write callback (output at or below the quarter) and the end of Redis calls resume
 * it.
 *
 * Idle streams: a stream that has sent nothing for RELEASE_IDLE seconds between stanzas
 * gets its parser freed (xmlstream_release: ~12 KiB, most of an idle session's memory
 * after TLS); its next input builds a new one. Against a client that sends a byte just
 * after each release (each rebuild would cost more than it saves), a rebuild sooner than
 * REBUILD_SOON waits after the release doubles the stream's wait (up to RELEASE_IDLE <<
 * RELEASE_SHIFT_MAX), and a later one halves it.
 *
 * Timeouts, keepalives and parser releases of every connection are checked once a second
 * by one server-wide timer (a timer per connection would cost ~150 bytes each); the TLS
 * and authentication deadline of a connection not yet authenticated has its own. */
#include "xmpp.h"
#include "hashmap.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

/* Bytes handed to the parser at a time: keeps expat's buffer small. */
#define READ_CHUNK 4096
/* A closing stream that the peer does not read is dropped after this. */
#define CLOSE_GRACE 3
/* Parser release of idle streams (see the top of this file); seconds. */
#define RELEASE_IDLE 2
#define RELEASE_SHIFT_MAX 5
#define REBUILD_SOON 4

static void on_open(void *ctx, const struct xnode *header, const char *default_ns);
static void on_element(void *ctx, struct xnode *el);
static void on_close(void *ctx);
static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static const struct xmlstream_handlers handlers = {on_open, on_element, on_close};

static time_t now_s(const struct conn *c)
{
	struct timeval tv;
	event_base_gettimeofday_cached(c->srv->base, &tv);
	return tv.tv_sec;
}

/* Once closing, last_write holds when the close began. */
static time_t close_since_mark(const struct conn *c)
{
	return c->last_write;
}

static long long release_wait(const struct conn *c)
{
	return (long long)RELEASE_IDLE << c->release_shift;
}

/* Input for a released parser: it is rebuilt, and the next wait adapts. */
static void parser_rebuilt(struct conn *c)
{
	if (now_s(c) - c->released_at < REBUILD_SOON * release_wait(c)) {
		if (c->release_shift < RELEASE_SHIFT_MAX)
			c->release_shift++;
	} else if (c->release_shift > 0) {
		c->release_shift--;
	}
}

static void tick_one(struct conn *c, time_t now)
{
	if (c->closing) {
		if (now - close_since_mark(c) >= CLOSE_GRACE)
			conn_close_now(c);
		return;
	}
	if (c->overflow) {
		conn_stream_error(c, "policy-violation", "the client does not read its stream");
		return;
	}
	if (now - c->last_read >= c->srv->idle_timeout) {
		conn_stream_error(c, "connection-timeout", NULL);
		return;
	}
	if (c->header_sent && now - c->last_write >= c->srv->keepalive)
		conn_send_raw(c, " ", 1);
	if (now - c->last_read >= release_wait(c) && xmlstream_idle(c->xs)) {
		xmlstream_release(c->xs);
		c->released_at = now;
	}
}

/* Once a second, and at once when a connection's output overflows. Only the connection
 * being checked can end meanwhile; the next one is held all the same. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	(void)fd;
	(void)what;
	struct timeval tv;
	event_base_gettimeofday_cached(srv->base, &tv);
	for (struct conn *c = srv->conns, *next; c != NULL; c = next) {
		next = c->next;
		if (next != NULL)
			conn_ref(next);
		if (c->own_bev)
			tick_one(c, tv.tv_sec);
		if (next != NULL) {
			bool gone = next->closed;
			conn_unref(next);
			if (gone)
				break;
		}
	}
}

/* The TLS handshake or the authentication took too long (whitespace does not count). */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	(void)fd;
	(void)what;
	if (c->closed || c->closing || c->authed)
		return;
	if (c->handshaking) {
		log_event(LOG_LEVEL_INFO, "tls_timeout", "addr", c->addr, NULL);
		conn_close_now(c);
		return;
	}
	conn_stream_error(c, "connection-timeout", "authenticate sooner");
}

/* Arm the deadline: the TLS handshake's when handshaking (never past the authentication
 * deadline), else the authentication's. */
static void arm_deadline(struct conn *c)
{
	if (c->deadline == NULL || c->authed)
		return;
	long long left = c->srv->auth_timeout - (long long)(now_s(c) - c->accepted);
	if (c->handshaking && c->srv->tls_timeout < left)
		left = c->srv->tls_timeout;
	struct timeval tv = {left > 0 ? (time_t)left : 0, 0};
	event_add(c->deadline, &tv);
}

void conn_authed(struct conn *c)
{
	if (c->deadline != NULL) {
		event_free(c->deadline);
		c->deadline = NULL;
	}
}

static struct conn *conn_alloc(struct server *srv)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	c->srv = srv;
	c->refs = 1; /* the server's list */
	c->fd = -1;
	c->id = ++srv->next_conn_id;
	c->xs = xmlstream_new(&srv->limits, &handlers, c);
	if (srv->limits.max_stanza > PREBIND_STANZA_MAX)
		xmlstream_set_max_stanza(c->xs, PREBIND_STANZA_MAX);
	c->last_read = c->last_write = c->accepted = now_s(c);
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	srv->n_conns++;
	return c;
}

struct conn *conn_new(struct server *srv, evutil_socket_t fd, const char *addr,
		      const char *ipkey, bool direct_tls)
{
	struct conn *c = conn_alloc(srv);
	c->fd = fd;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	snprintf(c->ipkey, sizeof(c->ipkey), "%s", ipkey);
	if (srv->max_conns_per_ip > 0) {
		unsigned *n = hashmap_get(srv->per_ip, ipkey);
		if (n == NULL) {
			n = xcalloc(1, sizeof(*n));
			hashmap_put(srv->per_ip, ipkey, n);
		}
		(*n)++;
	}
	c->direct_tls = direct_tls;
	if (direct_tls) {
		SSL *ssl = tls_new_ssl(srv, true);
		if (ssl != NULL)
			c->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl,
								BUFFEREVENT_SSL_ACCEPTING,
								BEV_OPT_CLOSE_ON_FREE);
		if (c->bev != NULL)
			c->fd = -1; /* the TLS bufferevent closes it */
		c->tls = true;
	} else {
		c->bev = bufferevent_socket_new(srv->base, fd, 0);
	}
	if (c->bev == NULL) {
		conn_close_now(c);
		return NULL;
	}
	c->own_bev = true;
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, srv->max_output / 4, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	if (srv->ticker == NULL) {
		struct timeval second = {1, 0};
		srv->ticker = event_new(srv->base, -1, EV_PERSIST, on_tick, srv);
		if (srv->ticker == NULL)
			abort(); /* out of memory */
		event_add(srv->ticker, &second);
	}
	c->handshaking = direct_tls;
	c->deadline = evtimer_new(srv->base, on_deadline, c);
	arm_deadline(c);
	log_event(LOG_LEVEL_DEBUG, "conn_open", "addr", c->addr, "tls", direct_tls ? "direct" : "starttls",
		  NULL);
	return c;
}

struct conn *conn_new_bev(struct server *srv, struct bufferevent *bev, bool pretend_tls)
{
	struct conn *c = conn_alloc(srv);
	snprintf(c->addr, sizeof(c->addr), "test");
	snprintf(c->ipkey, sizeof(c->ipkey), "test");
	c->bev = bev;
	c->tls = pretend_tls;
	return c;
}

void conn_ref(struct conn *c)
{
	c->refs++;
}

void conn_unref(struct conn *c)
{
	if (--c->refs > 0)
		return;
	struct server *srv = c->srv;
	xmlstream_free(c->xs);
	secret_free(c->bare);
	free(c->bind_resource);
	free(c->bind_id);
	free(c);
	server_conn_gone(srv);
}

void conn_close_now(struct conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	c->closing = true;
	session_end(c);
	conn_authed(c); /* frees the deadline */
	if (c->srv->max_conns_per_ip > 0 && c->ipkey[0] != '\0') {
		unsigned *n = hashmap_get(c->srv->per_ip, c->ipkey);
		if (n != NULL && --*n == 0)
			free(hashmap_remove(c->srv->per_ip, c->ipkey));
	}
	if (c->bev != NULL && c->own_bev)
		bufferevent_free(c->bev);
	c->bev = NULL;
	if (c->fd >= 0)
		evutil_closesocket(c->fd);
	c->fd = -1;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	c->srv->n_conns--;
	if (c->authed)
		log_event(LOG_LEVEL_DEBUG, "conn_close", "addr", c->addr, "jid", c->bare, NULL);
	conn_unref(c);
}

static size_t out_len(const struct conn *c)
{
	return c->bev != NULL ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0;
}

/* Past max_output: queue nothing more and end the stream from the ticker, never from
 * here (callers may be walking the session lists this would change). */
static void check_overflow(struct conn *c)
{
	if (c->overflow || out_len(c) <= c->srv->max_output)
		return;
	c->overflow = true;
	log_event(LOG_LEVEL_INFO, "output_overflow", "addr", c->addr, "jid", c->bare, NULL);
	if (c->srv->ticker != NULL)
		event_active(c->srv->ticker, EV_TIMEOUT, 1);
}

void conn_send_raw(struct conn *c, const char *data, size_t len)
{
	if (c->bev == NULL || c->closed || (c->overflow && !c->closing))
		return;
	bufferevent_write(c->bev, data, len);
	if (!c->closing) {
		c->last_write = now_s(c);
		check_overflow(c);
	}
}

void conn_send_node(struct conn *c, const struct xnode *n)
{
	if (c->bev == NULL || c->closed || c->closing || c->overflow)
		return;
	xml_write(bufferevent_get_output(c->bev), n, NS_CLIENT);
	c->last_write = now_s(c);
	check_overflow(c);
}

/* Reading waits while the output backs up or too many Redis calls are in flight. */
static bool must_pause(const struct conn *c)
{
	return out_len(c) > c->srv->max_output / 4 || c->redis_inflight >= REDIS_INFLIGHT_MAX;
}

void conn_redis_start(struct conn *c)
{
	conn_ref(c);
	c->redis_inflight++;
}

void conn_redis_done(struct conn *c)
{
	c->redis_inflight--;
	if (!c->closed && !c->in_feed && xmlstream_suspended(c->xs))
		conn_resume(c);
	conn_unref(c);
}

static void send_header(struct conn *c)
{
	if (c->header_sent)
		return;
	unsigned char rnd[16];
	char stream_id[2 * sizeof(rnd) + 1];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		abort();
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(stream_id + 2 * i, 3, "%02x", rnd[i]);
	const char *from = c->domain != NULL ? c->domain->name : c->srv->domains[0].name;
	char head[400];
	int n = snprintf(head, sizeof(head),
			 "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
			 "xmlns:stream='http://etherx.jabber.org/streams' id='%s' from='%s' "
			 "version='1.0' xml:lang='en'>",
			 stream_id, from);
	conn_send_raw(c, head, (size_t)n);
	c->header_sent = true;
}

void conn_stream_error(struct conn *c, const char *condition, const char *text)
{
	if (c->closing)
		return;
	send_header(c);
	if (condition != NULL) {
		struct xnode *e = xnode_new(NS_STREAMS, "error");
		xnode_add(e, NS_STREAM_ERRORS, condition);
		if (text != NULL) {
			struct xnode *t = xnode_add(e, NS_STREAM_ERRORS, "text");
			xnode_add_text(t, text, strlen(text));
		}
		struct evbuffer *out = c->bev != NULL ? bufferevent_get_output(c->bev) : NULL;
		if (out != NULL) {
			/* stream:error is written with the stream's prefix, not a default xmlns. */
			char *s = xml_to_string(e, NS_STREAMS);
			evbuffer_add(out, "<stream:", 8);
			evbuffer_add(out, s + 1, strlen(s + 1) - strlen("</error>"));
			evbuffer_add(out, "</stream:error>", 15);
			free(s);
		}
		xnode_free(e);
		log_event(LOG_LEVEL_INFO, "stream_error", "addr", c->addr, "jid", c->bare,
			  "condition", condition, "text", text, NULL);
	}
	conn_send_raw(c, "</stream:stream>", 16);
	c->closing = true;
	c->last_write = now_s(c);
	if (c->in_feed)
		xmlstream_stop(c->xs);
	session_end(c);
	if (c->bev == NULL || !c->own_bev) {
		conn_close_now(c); /* nothing of ours to flush (the fuzz target) */
		return;
	}
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_close_now(c);
}

static void limits_feature(struct conn *c, struct xnode *features)
{
	struct xnode *l = xnode_add(features, NS_LIMITS, "limits");
	char num[32];
	snprintf(num, sizeof(num), "%zu", c->srv->limits.max_stanza);
	xnode_add_text(xnode_add(l, NS_LIMITS, "max-bytes"), num, strlen(num));
	snprintf(num, sizeof(num), "%lld", c->srv->idle_timeout);
	xnode_add_text(xnode_add(l, NS_LIMITS, "idle-seconds"), num, strlen(num));
}

void conn_send_features(struct conn *c)
{
	struct xnode *f = xnode_new(NS_STREAMS, "features");
	if (!c->tls) {
		struct xnode *st = xnode_add(f, NS_TLS, "starttls");
		xnode_add(st, NS_TLS, "required");
	} else if (!c->authed) {
		sasl_features(c, f);
	} else {
		xnode_add(f, NS_BIND, "bind");
		xnode_add(xnode_add(f, NS_SESSION, "session"), NS_SESSION, "optional");
	}
	limits_feature(c, f);
	char *s = xml_to_string(f, NS_STREAMS);
	/* <features xmlns='…streams'> → <stream:features> */
	const char *inner = strchr(s, '>');
	size_t len = strlen(s);
	conn_send_raw(c, "<stream:features>", 17);
	if (inner != NULL && inner[-1] != '/')
		conn_send_raw(c, inner + 1, (size_t)(s + len - (inner + 1)) - strlen("</features>"));
	conn_send_raw(c, "</stream:features>", 18);
	free(s);
	xnode_free(f);
}

static void on_open(void *ctx, const struct xnode *header, const char *default_ns)
{
	struct conn *c = ctx;
	const char *to = xnode_attr(header, "to");
	const struct domain *d = NULL;
	if (to != NULL) {
		char lower[256];
		snprintf(lower, sizeof(lower), "%s", to);
		for (char *p = lower; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		d = server_domain(c->srv, lower);
	}
	if (d != NULL && (c->domain == NULL || !c->authed))
		c->domain = d;
	c->header_sent = false; /* every stream restart gets a new header */
	if (strcmp(header->ns, NS_STREAMS) != 0 || strcmp(header->name, "stream") != 0) {
		conn_stream_error(c, "invalid-namespace", "the root element must be stream:stream");
		return;
	}
	if (strcmp(default_ns, NS_CLIENT) != 0) {
		conn_stream_error(c, "invalid-namespace", "the default namespace must be jabber:client");
		return;
	}
	const char *version = xnode_attr(header, "version");
	if (version == NULL || strncmp(version, "1.", 2) != 0) {
		conn_stream_error(c, "unsupported-version", "XMPP 1.0 is required");
		return;
	}
	if (d == NULL || (c->authed && d != c->domain)) {
		conn_stream_error(c, "host-unknown", "this server does not host that domain");
		return;
	}
	send_header(c);
	conn_send_features(c);
}

static void on_close(void *ctx)
{
	struct conn *c = ctx;
	conn_stream_error(c, NULL, NULL);
}

static void start_tls_now(struct conn *c)
{
	c->starttls_pending = false;
	SSL *ssl = tls_new_ssl(c->srv, false);
	struct bufferevent *tb = NULL;
	if (ssl != NULL)
		tb = bufferevent_openssl_socket_new(c->srv->base, c->fd, ssl,
						    BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (tb == NULL) {
		conn_close_now(c);
		return;
	}
	/* Bytes read in clear after <starttls/> are dropped with the old bufferevent. */
	bufferevent_free(c->bev);
	c->bev = tb;
	c->fd = -1;
	c->tls = true;
	c->header_sent = false;
	c->handshaking = true;
	arm_deadline(c);
	xmlstream_reset(c->xs);
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_setwatermark(c->bev, EV_WRITE, c->srv->max_output / 4, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void handle_starttls(struct conn *c)
{
	if (c->tls) {
		conn_stream_error(c, "policy-violation", "TLS is already in place");
		return;
	}
	struct xnode *p = xnode_new(NS_TLS, "proceed");
	conn_send_node(c, p);
	xnode_free(p);
	if (c->fd < 0) { /* no socket (the fuzz target): nothing to switch */
		conn_stream_error(c, NULL, NULL);
		return;
	}
	c->starttls_pending = true;
	bufferevent_disable(c->bev, EV_READ);
	xmlstream_stop(c->xs);
}

static void on_element(void *ctx, struct xnode *el)
{
	struct conn *c = ctx;
	if (c->closing) {
		xnode_free(el);
		return;
	}
	if (strcmp(el->ns, NS_TLS) == 0 && strcmp(el->name, "starttls") == 0) {
		handle_starttls(c);
	} else if (!c->tls) {
		if (strcmp(el->ns, NS_SASL) == 0) {
			struct xnode *f = xnode_new(NS_SASL, "failure");
			xnode_add(f, NS_SASL, "encryption-required");
			conn_send_node(c, f);
			xnode_free(f);
		} else {
			conn_stream_error(c, "policy-violation", "STARTTLS is required first");
		}
	} else if (strcmp(el->ns, NS_SASL) == 0) {
		if (c->authed)
			conn_stream_error(c, "policy-violation", "already authenticated");
		else
			sasl_element(c, el);
		xnode_wipe_text(el); /* credentials */
	} else if (strcmp(el->ns, NS_CLIENT) != 0 ||
		   (strcmp(el->name, "message") != 0 && strcmp(el->name, "presence") != 0 &&
		    strcmp(el->name, "iq") != 0)) {
		conn_stream_error(c, "unsupported-stanza-type", NULL);
	} else if (!c->authed) {
		conn_stream_error(c, "not-authorized", "authenticate first");
	} else if (c->session == NULL) {
		if (strcmp(el->name, "iq") == 0 && xnode_child(el, NS_BIND, "bind") != NULL)
			session_bind(c, el);
		else if (c->bind_pending)
			stanza_reply_error(c, el, "wait", "resource-constraint");
		else
			conn_stream_error(c, "not-authorized", "bind a resource first");
	} else {
		stanza_route(c, el);
	}
	xnode_free(el);
	if (c->in_feed && !c->closing && must_pause(c))
		xmlstream_suspend(c->xs);
}

static void after_parse(struct conn *c, enum xmlstream_result r, const char *cond,
			const char *text)
{
	if (r == XS_ERROR)
		conn_stream_error(c, cond, text);
	else if (r == XS_SUSPENDED && c->bev != NULL)
		bufferevent_disable(c->bev, EV_READ);
}

void conn_input(struct conn *c, const char *data, size_t len)
{
	if (c->closing || xmlstream_suspended(c->xs))
		return;
	c->last_read = now_s(c);
	if (xmlstream_released(c->xs))
		parser_rebuilt(c);
	conn_ref(c);
	c->in_feed = true;
	const char *cond = NULL, *text = NULL;
	enum xmlstream_result r = xmlstream_feed(c->xs, data, len, &cond, &text);
	c->in_feed = false;
	after_parse(c, r, cond, text);
	conn_unref(c);
}

static void drain_input(struct conn *c)
{
	char buf[READ_CHUNK];
	bool secret = !c->authed; /* may hold credentials */
	size_t used = 0;
	conn_ref(c);
	while (!c->closed && !c->closing && !c->starttls_pending && c->bev != NULL &&
	       !xmlstream_suspended(c->xs)) {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		int n = evbuffer_remove(in, buf, sizeof(buf));
		if (n <= 0)
			break;
		if ((size_t)n > used)
			used = (size_t)n;
		conn_input(c, buf, (size_t)n);
	}
	if (secret)
		secret_wipe(buf, used);
	conn_unref(c);
}

void conn_resume(struct conn *c)
{
	if (c->closed || c->closing || c->auth_pending || c->starttls_pending || must_pause(c))
		return;
	conn_ref(c);
	if (xmlstream_suspended(c->xs)) {
		c->in_feed = true;
		const char *cond = NULL, *text = NULL;
		enum xmlstream_result r = xmlstream_resume(c->xs, &cond, &text);
		c->in_feed = false;
		after_parse(c, r, cond, text);
	}
	if (!c->closed && !c->closing && c->bev != NULL && !xmlstream_suspended(c->xs)) {
		bufferevent_enable(c->bev, EV_READ);
		drain_input(c);
	}
	conn_unref(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	drain_input(arg);
}

/* Called when the output drops to a quarter of max_output or less. */
static void on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	bool empty = evbuffer_get_length(bufferevent_get_output(bev)) == 0;
	if (c->closing) {
		if (empty)
			conn_close_now(c);
		return;
	}
	if (c->starttls_pending) {
		if (empty)
			start_tls_now(c);
		return;
	}
	conn_ref(c);
	if (xmlstream_suspended(c->xs))
		conn_resume(c);
	if (c->offline_more && !c->closed && !c->closing && c->session != NULL) {
		c->offline_more = false;
		offline_deliver(c->srv, c->session);
	}
	conn_unref(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	if (what & BEV_EVENT_CONNECTED) { /* TLS handshake done */
		c->handshaking = false;
		arm_deadline(c);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(c->bev);
		if (e != 0 && !c->header_sent)
			log_event(LOG_LEVEL_DEBUG, "tls_failed", "addr", c->addr, NULL);
	}
	conn_close_now(c);
}
