/* The server object: hosted domains, listening sockets, accepted connections (capped in
 * all and per address: an IPv4 address or an IPv6 /64), and a clean stop (every stream
 * gets system-shutdown, then the loop ends once they are written or after a grace
 * period). When accept() fails for want of descriptors or memory, accepting pauses for
 * ACCEPT_PAUSE_MS instead of spinning on the listener. */
#include "xmpp.h"
#include "server.h"
#include "hashmap.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/listener.h>

#define STOP_GRACE_S 3
#define ACCEPT_PAUSE_MS 500

const struct domain *server_domain(const struct server *srv, const char *name)
{
	for (size_t i = 0; i < srv->n_domains; i++)
		if (strcmp(srv->domains[i].name, name) == 0)
			return &srv->domains[i];
	return NULL;
}

bool server_hosts(const struct server *srv, const char *domain)
{
	return server_domain(srv, domain) != NULL;
}

void server_conn_gone(struct server *srv)
{
	if (srv->stopping && srv->n_conns == 0)
		event_base_loopbreak(srv->base);
}

struct server *server_new(struct event_base *base, const struct config *cfg)
{
	struct server *srv = xcalloc(1, sizeof(*srv));
	srv->base = base;
	srv->cfg = cfg;
	srv->n_domains = cfg->n_domains;
	srv->domains = xcalloc(cfg->n_domains, sizeof(*srv->domains));
	for (size_t i = 0; i < cfg->n_domains; i++) {
		srv->domains[i].name = xstrdup(cfg->domains[i].name);
		srv->domains[i].cert = cfg->domains[i].cert ? xstrdup(cfg->domains[i].cert) : NULL;
		srv->domains[i].key = cfg->domains[i].key ? xstrdup(cfg->domains[i].key) : NULL;
	}
	srv->prefix = xstrdup(cfg->redis.prefix);
	srv->accounts = hashmap_new();
	srv->rl = ratelimit_new((unsigned)cfg->xmpp.auth_failures);
	struct xmlstream_limits limits = XMLSTREAM_DEFAULT_LIMITS;
	limits.max_stanza = (size_t)cfg->xmpp.max_stanza_size;
	srv->limits = limits;
	srv->idle_timeout = cfg->xmpp.idle_timeout;
	srv->keepalive = cfg->xmpp.keepalive;
	srv->offline_ttl = cfg->xmpp.offline_ttl;
	srv->max_roster = (size_t)cfg->xmpp.max_roster;
	srv->max_offline = (size_t)cfg->xmpp.max_offline;
	srv->max_offline_bytes = (size_t)cfg->xmpp.max_offline_bytes;
	/* One stanza routed to a client must always fit. */
	srv->max_output = (size_t)cfg->xmpp.max_output;
	if (srv->max_output < 2 * limits.max_stanza)
		srv->max_output = 2 * limits.max_stanza;
	srv->auth_failures = (unsigned)cfg->xmpp.auth_failures;
	srv->max_conns = (size_t)cfg->xmpp.max_connections;
	srv->max_conns_per_ip = (size_t)cfg->xmpp.max_connections_per_ip;
	srv->per_ip = hashmap_new();
	srv->auth_timeout = cfg->xmpp.auth_timeout;
	srv->tls_timeout = cfg->xmpp.tls_timeout;
	srv->version = cfg->xmpp.version;
	return srv;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int socklen, void *arg)
{
	struct server *srv = arg;
	(void)l;
	(void)socklen;
	bool direct = listener_is_direct(srv, l);
	if (srv->stopping) {
		evutil_closesocket(fd);
		return;
	}
	char addr[CONN_ADDR_MAX], key[CONN_IPKEY_MAX];
	server_addr_key(sa, addr, key);
	if (srv->n_conns >= srv->max_conns) {
		log_event(LOG_LEVEL_DEBUG, "conn_refused", "addr", addr, "why", "max_connections",
			  NULL);
		evutil_closesocket(fd);
		return;
	}
	if (srv->max_conns_per_ip > 0) {
		const unsigned *n = hashmap_get(srv->per_ip, key);
		if (n != NULL && *n >= srv->max_conns_per_ip) {
			log_event(LOG_LEVEL_DEBUG, "conn_refused", "addr", addr, "why",
				  "max_connections_per_ip", NULL);
			evutil_closesocket(fd);
			return;
		}
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	evutil_make_socket_nonblocking(fd);
	conn_new(srv, fd, addr, key, direct);
}

void server_addr_key(const struct sockaddr *sa, char addr[CONN_ADDR_MAX],
		     char key[CONN_IPKEY_MAX])
{
	snprintf(addr, CONN_ADDR_MAX, "?");
	snprintf(key, CONN_IPKEY_MAX, "?");
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr, CONN_ADDR_MAX);
		snprintf(key, CONN_IPKEY_MAX, "%s", addr);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		inet_ntop(AF_INET6, a6, addr, CONN_ADDR_MAX);
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			inet_ntop(AF_INET, &a6->s6_addr[12], key, CONN_IPKEY_MAX);
		} else {
			const unsigned char *b = a6->s6_addr;
			snprintf(key, CONN_IPKEY_MAX, "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64", b[0],
				 b[1], b[2],
				 b[3], b[4], b[5], b[6], b[7]);
		}
	}
}

static void set_accepting(struct server *srv, bool on)
{
	for (size_t i = 0; i < srv->n_listeners; i++) {
		if (on)
			evconnlistener_enable(srv->listeners[i]);
		else
			evconnlistener_disable(srv->listeners[i]);
	}
}

static void on_accept_retry(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	(void)fd;
	(void)what;
	if (!srv->stopping)
		set_accepting(srv, true);
}

/* accept() failed: out of descriptors or memory pauses accepting for a moment. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct server *srv = arg;
	(void)l;
	int err = EVUTIL_SOCKET_ERROR();
	if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM)
		return;
	log_event(LOG_LEVEL_WARN, "accept_paused", "why", evutil_socket_error_to_string(err),
		  NULL);
	set_accepting(srv, false);
	if (srv->accept_retry == NULL)
		srv->accept_retry = evtimer_new(srv->base, on_accept_retry, srv);
	struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
	evtimer_add(srv->accept_retry, &tv);
}

bool listener_is_direct(const struct server *srv, const struct evconnlistener *l)
{
	for (size_t i = 0; i < srv->n_listeners; i++)
		if (srv->listeners[i] == l)
			return srv->listener_direct[i];
	return false;
}

static int listen_one(struct server *srv, const char *spec, bool direct, const char **error_r)
{
	static char msg[300];
	char host[256];
	const char *colon = strrchr(spec, ':');
	size_t hl = (size_t)(colon - spec);
	if (spec[0] == '[') {
		snprintf(host, sizeof(host), "%.*s", (int)(hl - 2), spec + 1);
	} else {
		snprintf(host, sizeof(host), "%.*s", (int)hl, spec);
	}
	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, colon + 1, &hints, &res);
	if (rc != 0) {
		snprintf(msg, sizeof(msg), "cannot resolve %s: %s", spec, gai_strerror(rc));
		*error_r = msg;
		return -1;
	}
	struct evconnlistener *l = evconnlistener_new_bind(
		srv->base, on_accept, srv, LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
		1024, res->ai_addr, (int)res->ai_addrlen);
	freeaddrinfo(res);
	if (l != NULL)
		evconnlistener_set_error_cb(l, on_accept_error);
	if (l == NULL) {
		snprintf(msg, sizeof(msg), "cannot listen on %s: %s", spec,
			 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		*error_r = msg;
		return -1;
	}
	srv->listeners = xrealloc(srv->listeners, (srv->n_listeners + 1) * sizeof(*srv->listeners));
	srv->listener_direct =
		xrealloc(srv->listener_direct, (srv->n_listeners + 1) * sizeof(*srv->listener_direct));
	srv->listeners[srv->n_listeners] = l;
	srv->listener_direct[srv->n_listeners] = direct;
	srv->n_listeners++;
	log_event(LOG_LEVEL_INFO, "listening", "addr", spec, "tls", direct ? "direct" : "starttls",
		  NULL);
	return 0;
}

int server_listen(struct server *srv, const char **error_r)
{
	const struct strlist *lists[] = {&srv->cfg->xmpp.listen, &srv->cfg->xmpp.listen_tls};
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < lists[k]->n; i++) {
			if (strcmp(lists[k]->v[i], "none") == 0)
				continue;
			if (listen_one(srv, lists[k]->v[i], k == 1, error_r) < 0)
				return -1;
		}
	}
	return 0;
}

static void close_listeners(struct server *srv)
{
	for (size_t i = 0; i < srv->n_listeners; i++)
		evconnlistener_free(srv->listeners[i]);
	free(srv->listeners);
	free(srv->listener_direct);
	srv->listeners = NULL;
	srv->listener_direct = NULL;
	srv->n_listeners = 0;
}

static void on_stop_timer(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	(void)fd;
	(void)what;
	event_base_loopbreak(srv->base);
}

void server_stop(struct server *srv)
{
	if (srv->stopping)
		return;
	srv->stopping = true;
	close_listeners(srv);
	size_t n = srv->n_conns;
	struct conn **all = xcalloc(n + 1, sizeof(*all));
	size_t k = 0;
	for (struct conn *c = srv->conns; c != NULL; c = c->next) {
		conn_ref(c);
		all[k++] = c;
	}
	for (size_t i = 0; i < k; i++) {
		conn_stream_error(all[i], "system-shutdown", NULL);
		conn_unref(all[i]);
	}
	free(all);
	if (srv->n_conns == 0) {
		event_base_loopbreak(srv->base);
		return;
	}
	struct timeval grace = {STOP_GRACE_S, 0};
	srv->stop_timer = evtimer_new(srv->base, on_stop_timer, srv);
	evtimer_add(srv->stop_timer, &grace);
}

static void free_account(const char *key, void *value, void *ctx)
{
	(void)key;
	(void)ctx;
	(void)value;
}

void server_free(struct server *srv)
{
	if (srv == NULL)
		return;
	close_listeners(srv);
	while (srv->conns != NULL)
		conn_close_now(srv->conns);
	xredis_free(srv->redis);
	srv->redis = NULL;
	hashmap_each(srv->accounts, free_account, NULL);
	hashmap_free(srv->accounts);
	ratelimit_free(srv->rl);
	hashmap_free(srv->per_ip); /* empty: every connection is closed */
	if (srv->accept_retry != NULL)
		event_free(srv->accept_retry);
	tls_free(srv);
	for (size_t i = 0; i < srv->n_domains; i++) {
		free(srv->domains[i].name);
		free(srv->domains[i].cert);
		free(srv->domains[i].key);
	}
	free(srv->domains);
	free(srv->prefix);
	if (srv->stop_timer != NULL)
		event_free(srv->stop_timer);
	if (srv->ticker != NULL)
		event_free(srv->ticker);
	free(srv);
}
