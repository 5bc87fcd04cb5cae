/* xmpp-load: an XMPP client load generator (libevent + OpenSSL, one process, one event
 * loop, non-blocking) for bench/xmpp-load.
 *
 *   xmpp-load --connect HOST:PORT --domain DOMAIN --users FILE --sessions N
 *             [--tls starttls|direct] [--concurrency C] [--pid PID] [--idle S]
 *             [--seconds S] [--inflight W] [--rate R] [--sources K] [--cafile FILE]
 *
 * FILE has one "localpart token" per line. The run has four phases:
 *
 *   login       N sessions (TLS, SASL PLAIN with the token as password, resource bind,
 *               initial presence, then an XEP-0199 ping whose answer ends the login), at
 *               most C logins in progress at a time;
 *   idle        all N sessions stay open and silent for S seconds, then the server's VmRSS
 *               (from /proc/PID/status) is compared with the one before the first login;
 *   throughput  sessions 2k and 2k+1 are partners; a message goes to the partner's full JID
 *               with the send time (CLOCK_MONOTONIC) in its body, and the partner takes the
 *               time on arrival; W messages are kept in flight in all, spread round-robin
 *               over the senders, for 1 s of warm-up and S measured seconds;
 *   latency     the same at a fixed rate of R messages a second (paced every millisecond),
 *               so both servers are compared at the same load.
 *
 * Each phase prints one machine-readable line on stdout ("phase=login ok=… rate=…"), read
 * by bench/xmpp-load. Nothing asserts on time. Exit status: 0 measured; 1 a login failed,
 * a session ended or a message was lost or bounced (the numbers are then void); 2 setup
 * failure; 64 bad usage. */
#include "latency.h"
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#define EXIT_VOID 1
#define EXIT_SETUP 2
#define EXIT_USAGE 64

#define MAX_SESSIONS 200000
#define MAX_SOURCES 250
#define BODY_PAD 64       /* filler after the timestamp: a message of ~200 bytes */
#define WARMUP_NS 1000000000ull
#define DRAIN_NS 5000000000ull /* after a phase, wait this long for messages in flight */
#define PACE_MS 1

enum state {
	ST_IDLE,      /* not started */
	ST_FEATURES0, /* plain stream, waiting for the STARTTLS offer */
	ST_PROCEED,
	ST_FEATURES1, /* TLS stream, waiting for the SASL mechanisms */
	ST_AUTH,
	ST_FEATURES2, /* authenticated stream, waiting for bind */
	ST_BIND,
	ST_PING,
	ST_READY,
	ST_DEAD,
};

struct sess {
	unsigned index;
	enum state st;
	int fd;
	struct bufferevent *bev;
	char *user, *token;
	char *full; /* bound JID */
	uint64_t login_start_ns;
};

enum phase { PH_LOGIN, PH_IDLE, PH_THROUGHPUT, PH_LATENCY, PH_DONE };

struct samples {
	uint64_t *v;
	size_t n, cap;
};

static struct {
	struct event_base *base;
	SSL_CTX *ctx;
	struct sockaddr_in dst;
	struct in_addr sources[MAX_SOURCES];
	unsigned n_sources;
	bool direct;
	const char *domain;
	struct sess *s;
	unsigned n, concurrency;
	long server_pid;
	double idle_s, seconds, rate;
	unsigned inflight_max;
	/* login */
	unsigned next_start, in_progress, logged_in, failed;
	uint64_t login_t0, login_t1;
	struct samples login_lat;
	char first_error[300];
	/* messages */
	enum phase phase;
	bool sending;
	unsigned rr;
	uint64_t inflight, sent, received, bounced, sessions_lost;
	uint64_t window_start, window_end; /* send-time window whose messages are measured */
	uint64_t recv_in_window;           /* messages received with a send time in it */
	uint64_t phase_start;
	struct samples msg_lat;
	uint64_t paced_sent; /* latency phase: messages sent since phase_start */
	bool window_marked;  /* CPU counters taken at window_start */
	double srv_cpu_pct, cli_cpu_pct; /* over the measured window */
	double srv_cpu_used;             /* seconds, over the measured window */
	struct event *timer, *pace;
	bool starting; /* in start_next_logins() */
	double srv_cpu0, cli_cpu0;
	long rss_before;
	int exit_status;
} B;

static void die(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("xmpp-load: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(status);
}

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (p == NULL)
		die(EXIT_SETUP, "out of memory");
	return p;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);
	if (d == NULL)
		die(EXIT_SETUP, "out of memory");
	return d;
}

static void sample_add(struct samples *s, uint64_t v)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 65536;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = v;
}

/* Nearest-rank percentile in milliseconds; sorts the samples. */
static double percentile_ms(struct samples *s, double p)
{
	bench_sort(s->v, s->n);
	return (double)bench_percentile(s->v, s->n, p) / 1e6;
}

/* The server's VmRSS in KiB, or -1. */
static long server_rss_kib(void)
{
	if (B.server_pid <= 0)
		return -1;
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%ld/status", B.server_pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	long kib = -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* The server's user + system CPU seconds, or -1. */
static double server_cpu_s(void)
{
	if (B.server_pid <= 0)
		return -1;
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%ld/stat", B.server_pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return -1;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	unsigned long long ut, st;
	if (p == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double client_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void cpu_mark(void)
{
	B.srv_cpu0 = server_cpu_s();
	B.cli_cpu0 = client_cpu_s();
}

/* CPU use since cpu_mark() as a share of one CPU over seconds. */
static void cpu_take(double seconds)
{
	double srv = server_cpu_s();
	B.srv_cpu_used = srv >= 0 && B.srv_cpu0 >= 0 ? srv - B.srv_cpu0 : -1;
	B.srv_cpu_pct = B.srv_cpu_used >= 0 ? 100 * B.srv_cpu_used / seconds : -1;
	B.cli_cpu_pct = 100 * (client_cpu_s() - B.cli_cpu0) / seconds;
}

/* CPU shares, and the server's CPU time per operation (less sensitive than rates to
 * other load on the machine). */
static void print_cpu(uint64_t ops)
{
	printf(" server_cpu_pct=%.0f client_cpu_pct=%.0f server_cpu_us_per_op=%.1f", B.srv_cpu_pct,
	       B.cli_cpu_pct, B.srv_cpu_used >= 0 && ops > 0 ? 1e6 * B.srv_cpu_used / (double)ops : -1);
}

static void note_error(const struct sess *s, const char *what)
{
	if (B.first_error[0] == '\0')
		snprintf(B.first_error, sizeof(B.first_error), "%s: %s", s->user, what);
}

static void start_next_logins(void);
static void login_phase_done(void);
static void pump(void);

static void sess_kill(struct sess *s, const char *why)
{
	enum state was = s->st;
	if (was == ST_DEAD)
		return;
	s->st = ST_DEAD;
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	else if (s->fd >= 0)
		close(s->fd);
	s->bev = NULL;
	s->fd = -1;
	if (was == ST_READY) {
		B.sessions_lost++;
		note_error(s, why);
		B.exit_status = EXIT_VOID;
		return;
	}
	if (was == ST_IDLE)
		return;
	note_error(s, why);
	B.failed++;
	B.in_progress--;
	B.exit_status = EXIT_VOID;
	start_next_logins();
}

static void send_str(struct sess *s, const char *text)
{
	bufferevent_write(s->bev, text, strlen(text));
}

static void send_header(struct sess *s)
{
	char buf[300];
	snprintf(buf, sizeof(buf),
		 "<?xml version='1.0'?><stream:stream to='%s' version='1.0' xml:lang='en' "
		 "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
		 B.domain);
	send_str(s, buf);
}

static void send_auth(struct sess *s)
{
	size_t ul = strlen(s->user), tl = strlen(s->token);
	size_t rl = ul + tl + 2;
	unsigned char *raw = xrealloc(NULL, rl);
	raw[0] = '\0';
	memcpy(raw + 1, s->user, ul);
	raw[1 + ul] = '\0';
	memcpy(raw + 2 + ul, s->token, tl);
	char *b64 = xrealloc(NULL, 4 * (rl / 3 + 1) + 1);
	EVP_EncodeBlock((unsigned char *)b64, raw, (int)rl);
	char *msg = xrealloc(NULL, strlen(b64) + 128);
	sprintf(msg, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>",
		b64);
	send_str(s, msg);
	OPENSSL_cleanse(raw, rl);
	free(raw);
	free(b64);
	free(msg);
}

static void on_read(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

static SSL *new_ssl(void)
{
	SSL *ssl = SSL_new(B.ctx);
	if (ssl == NULL)
		die(EXIT_SETUP, "SSL_new failed");
	SSL_set_tlsext_host_name(ssl, B.domain);
	return ssl;
}

static void start_tls(struct sess *s)
{
	int fd = s->fd;
	bufferevent_free(s->bev); /* made without BEV_OPT_CLOSE_ON_FREE: fd stays open */
	s->bev = bufferevent_openssl_socket_new(B.base, fd, new_ssl(), BUFFEREVENT_SSL_CONNECTING,
						BEV_OPT_CLOSE_ON_FREE);
	if (s->bev == NULL) {
		sess_kill(s, "cannot start TLS");
		return;
	}
	s->fd = -1; /* the TLS bufferevent owns it */
	bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	send_header(s); /* written once the handshake is done */
	s->st = ST_FEATURES1;
}

static void sess_start(struct sess *s)
{
	s->login_start_ns = bench_now_ns();
	B.in_progress++;
	s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (s->fd < 0) {
		sess_kill(s, strerror(errno));
		return;
	}
	s->st = ST_FEATURES0;
	int one = 1;
	setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (B.n_sources > 0) {
		struct sockaddr_in src = {.sin_family = AF_INET};
		src.sin_addr = B.sources[s->index % B.n_sources];
		setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(s->fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
			sess_kill(s, strerror(errno));
			return;
		}
	}
	if (connect(s->fd, (struct sockaddr *)&B.dst, sizeof(B.dst)) < 0 && errno != EINPROGRESS) {
		sess_kill(s, strerror(errno));
		return;
	}
	if (B.direct) {
		s->bev = bufferevent_openssl_socket_new(B.base, s->fd, new_ssl(),
							BUFFEREVENT_SSL_CONNECTING,
							BEV_OPT_CLOSE_ON_FREE);
		if (s->bev != NULL) {
			s->fd = -1;
			bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
		}
		s->st = ST_FEATURES1;
	} else {
		s->bev = bufferevent_socket_new(B.base, s->fd, 0);
	}
	if (s->bev == NULL) {
		sess_kill(s, "cannot make a bufferevent");
		return;
	}
	bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	send_header(s);
}

static void start_next_logins(void)
{
	if (B.phase != PH_LOGIN || B.starting)
		return;
	B.starting = true;
	while (B.in_progress < B.concurrency && B.next_start < B.n)
		sess_start(&B.s[B.next_start++]);
	B.starting = false;
	if (B.in_progress == 0 && B.next_start == B.n)
		login_phase_done();
}

/* Find needle in the first len bytes of hay. */
static const char *find(const char *hay, size_t len, const char *needle)
{
	if (hay == NULL || len == 0)
		return NULL;
	return memmem(hay, len, needle, strlen(needle));
}

/* A stream error or the end of the stream in data? */
static bool stream_ended(const char *data, size_t len)
{
	return find(data, len, "<stream:error") != NULL || find(data, len, "</stream:stream>") != NULL;
}

/* Login steps: each waits for one marker in the input, drains through it and sends the
 * next request. Returns false when the marker has not arrived yet. */
static bool login_step(struct sess *s, struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);
	if (len == 0)
		return false;
	const char *data = (const char *)evbuffer_pullup(in, -1);
	const char *m = NULL;
	const char *marker = NULL;
	switch (s->st) {
	case ST_FEATURES0:
	case ST_FEATURES1:
	case ST_FEATURES2:
		marker = "</stream:features>";
		break;
	case ST_PROCEED:
		marker = "<proceed";
		break;
	case ST_AUTH:
		if (find(data, len, "<failure") != NULL) {
			sess_kill(s, "SASL failure");
			return false;
		}
		marker = "<success";
		break;
	case ST_BIND:
		marker = "</jid>";
		break;
	case ST_PING:
		/* The ping's answer: <iq … id='p1' …/> (through its '>'). */
		m = find(data, len, "id='p1'");
		if (m == NULL)
			m = find(data, len, "id=\"p1\"");
		if (m != NULL)
			m = find(m, len - (size_t)(m - data), ">");
		marker = ">";
		break;
	default:
		return false;
	}
	if (m == NULL && s->st != ST_PING)
		m = find(data, len, marker);
	if (m == NULL) {
		if (stream_ended(data, len))
			sess_kill(s, "the server ended the stream during login");
		return false;
	}
	size_t through = (size_t)(m - data) + strlen(marker);
	switch (s->st) {
	case ST_FEATURES0:
		send_str(s, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
		s->st = ST_PROCEED;
		break;
	case ST_PROCEED:
		if (find(data + through, len - through, ">") == NULL)
			return false; /* the rest of <proceed …/> */
		evbuffer_drain(in, len);
		start_tls(s);
		return false;
	case ST_FEATURES1:
		if (find(data, len, ">PLAIN<") == NULL) {
			sess_kill(s, "PLAIN not offered");
			return false;
		}
		send_auth(s);
		s->st = ST_AUTH;
		break;
	case ST_AUTH:
		send_header(s);
		s->st = ST_FEATURES2;
		through = len; /* <success/> and anything after it belong to the old stream */
		break;
	case ST_FEATURES2:
		send_str(s, "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
			    "<resource>load</resource></bind></iq>");
		s->st = ST_BIND;
		break;
	case ST_BIND: {
		const char *j = NULL;
		for (const char *p = data; (p = find(p, (size_t)(m - p), "<jid>")) != NULL; p += 5)
			j = p + 5;
		if (j == NULL) {
			sess_kill(s, "bind result without a JID");
			return false;
		}
		free(s->full);
		s->full = xrealloc(NULL, (size_t)(m - j) + 1);
		memcpy(s->full, j, (size_t)(m - j));
		s->full[m - j] = '\0';
		send_str(s, "<presence/><iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
		s->st = ST_PING;
		break;
	}
	case ST_PING: {
		uint64_t t = bench_now_ns();
		s->st = ST_READY;
		sample_add(&B.login_lat, t - s->login_start_ns);
		B.logged_in++;
		B.in_progress--;
		B.login_t1 = t;
		evbuffer_drain(in, through);
		start_next_logins();
		return false;
	}
	default:
		return false;
	}
	evbuffer_drain(in, through);
	return true;
}

/* Messages: each body is "t=<send time in ns> …". Consumes every complete body; keeps a
 * partial one for the next read. */
static void read_messages(struct sess *s, struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in);
	if (len == 0)
		return;
	const char *data = (const char *)evbuffer_pullup(in, -1);
	size_t pos = 0, keep_from = len > 16 ? len - 16 : 0;
	uint64_t t = bench_now_ns();
	bool any = false;
	for (;;) {
		const char *b = find(data + pos, len - pos, "<body>t=");
		if (b == NULL)
			break;
		const char *e = find(b, len - (size_t)(b - data), "</body>");
		if (e == NULL) {
			keep_from = (size_t)(b - data);
			goto done;
		}
		/* A bounce carries the original body: look at the enclosing stanza's type. */
		const char *start = data + pos, *msg = NULL;
		for (const char *p = start; (p = find(p, (size_t)(b - p), "<message")) != NULL; p++)
			msg = p;
		bool bounced = msg != NULL && (find(msg, (size_t)(b - msg), "type='error'") != NULL ||
					       find(msg, (size_t)(b - msg), "type=\"error\"") != NULL);
		uint64_t sent = strtoull(b + 8, NULL, 10);
		if (B.inflight > 0)
			B.inflight--;
		if (bounced) {
			B.bounced++;
			B.exit_status = EXIT_VOID;
			note_error(s, "a message bounced");
		} else {
			B.received++;
			if (sent >= B.window_start && sent < B.window_end) {
				B.recv_in_window++;
				sample_add(&B.msg_lat, t - sent);
			}
		}
		any = true;
		pos = (size_t)(e - data) + 7;
		keep_from = pos;
	}
	if (stream_ended(data + pos, len - pos)) {
		sess_kill(s, "the server ended the stream");
		return;
	}
	if (keep_from < pos)
		keep_from = pos;
done:
	evbuffer_drain(in, keep_from);
	if (any)
		pump();
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct sess *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	if (s->st == ST_READY) {
		read_messages(s, in);
		return;
	}
	while (s->st != ST_READY && s->st != ST_DEAD && login_step(s, in))
		;
	if (s->st == ST_READY)
		read_messages(s, in);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct sess *s = arg;
	if (what & BEV_EVENT_CONNECTED)
		return;
	char why[200] = "connection closed";
	if (what & BEV_EVENT_ERROR) {
		unsigned long e = bufferevent_get_openssl_error(bev);
		if (e != 0)
			ERR_error_string_n(e, why, sizeof(why));
		else if (EVUTIL_SOCKET_ERROR() != 0)
			snprintf(why, sizeof(why), "%s",
				 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	}
	sess_kill(s, why);
}

/* ---- messages */

static void send_message(struct sess *from, const struct sess *to, uint64_t t)
{
	char buf[512];
	int n = snprintf(buf, sizeof(buf),
			 "<message to='%s' type='chat' id='m%" PRIu64 "'><body>t=%" PRIu64
			 " %.*s</body></message>",
			 to->full, B.sent, t, BODY_PAD,
			 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ABCDEFGHIJKL");
	bufferevent_write(from->bev, buf, (size_t)n);
	B.sent++;
	B.inflight++;
}

/* The next ready sender with a ready partner, round-robin; NULL when there is none. */
static struct sess *next_sender(struct sess **to_r)
{
	for (unsigned tries = 0; tries < B.n; tries++) {
		unsigned i = B.rr++ % (B.n & ~1u);
		struct sess *a = &B.s[i], *b = &B.s[i ^ 1];
		if (a->st == ST_READY && b->st == ST_READY) {
			*to_r = b;
			return a;
		}
	}
	return NULL;
}

static void pump(void)
{
	if (!B.sending || B.phase != PH_THROUGHPUT)
		return;
	uint64_t t = bench_now_ns();
	while (B.inflight < B.inflight_max) {
		struct sess *to, *from = next_sender(&to);
		if (from == NULL)
			return;
		send_message(from, to, t);
	}
}

static void on_pace(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (!B.sending)
		return;
	uint64_t t = bench_now_ns();
	uint64_t due = (uint64_t)((double)(t - B.phase_start) / 1e9 * B.rate);
	while (B.paced_sent < due) {
		struct sess *to, *from = next_sender(&to);
		if (from == NULL)
			return;
		send_message(from, to, t);
		B.paced_sent++;
	}
}

static void print_messages(const char *phase)
{
	double seconds = (double)(B.window_end - B.window_start) / 1e9;
	double p50 = percentile_ms(&B.msg_lat, 50), p99 = percentile_ms(&B.msg_lat, 99);
	printf("phase=%s seconds=%.3f", phase, seconds);
	if (B.phase == PH_THROUGHPUT)
		printf(" inflight=%u", B.inflight_max);
	else
		printf(" target_rate=%.0f", B.rate);
	printf(" messages=%" PRIu64 " rate=%.0f p50_ms=%.3f p99_ms=%.3f lost=%" PRIu64
	       " bounced=%" PRIu64,
	       B.recv_in_window, (double)B.recv_in_window / seconds, p50, p99, B.inflight, B.bounced);
	print_cpu(B.recv_in_window);
	printf("\n");
	fflush(stdout);
	if (B.inflight > 0) {
		B.exit_status = EXIT_VOID;
		if (B.first_error[0] == '\0')
			snprintf(B.first_error, sizeof(B.first_error),
				 "%" PRIu64 " messages did not arrive", B.inflight);
	}
}

static void start_phase(enum phase ph);

/* Timeline of a message phase: warm-up, measured window, drain; then the next phase. */
static void on_phase_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	uint64_t t = bench_now_ns();
	if (B.phase == PH_IDLE) {
		long rss = server_rss_kib();
		printf("phase=idle sessions=%u seconds=%.1f rss_before_kib=%ld rss_after_kib=%ld "
		       "per_session_kib=%.2f\n",
		       B.logged_in, B.idle_s, B.rss_before, rss,
		       rss >= 0 && B.rss_before >= 0 && B.logged_in > 0
			       ? (double)(rss - B.rss_before) / B.logged_in
			       : -1.0);
		fflush(stdout);
		start_phase(B.seconds > 0 ? PH_THROUGHPUT : PH_DONE);
		return;
	}
	if (!B.window_marked && t >= B.window_start) {
		B.window_marked = true;
		cpu_mark();
	}
	if (B.sending && t >= B.window_end) {
		B.sending = false; /* drain what is in flight */
		cpu_take((double)(t - B.window_start) / 1e9);
		if (B.inflight > 0)
			return;
	}
	if (!B.sending && (B.inflight == 0 || t >= B.window_end + DRAIN_NS)) {
		print_messages(B.phase == PH_THROUGHPUT ? "throughput" : "latency");
		start_phase(B.phase == PH_THROUGHPUT && B.rate > 0 ? PH_LATENCY : PH_DONE);
	}
}

static void start_phase(enum phase ph)
{
	B.phase = ph;
	if (B.timer != NULL) {
		event_free(B.timer);
		B.timer = NULL;
	}
	struct timeval tv;
	switch (ph) {
	case PH_IDLE:
		B.timer = evtimer_new(B.base, on_phase_timer, NULL);
		tv.tv_sec = (time_t)B.idle_s;
		tv.tv_usec = (suseconds_t)((B.idle_s - (double)tv.tv_sec) * 1e6);
		evtimer_add(B.timer, &tv);
		break;
	case PH_THROUGHPUT:
	case PH_LATENCY:
		B.msg_lat.n = 0;
		B.recv_in_window = B.bounced = 0;
		B.inflight = 0;
		B.paced_sent = 0;
		B.phase_start = bench_now_ns();
		B.window_start = B.phase_start + WARMUP_NS;
		B.window_end = B.window_start + (uint64_t)(B.seconds * 1e9);
		B.sending = true;
		B.window_marked = false;
		if (ph == PH_LATENCY) {
			B.pace = event_new(B.base, -1, EV_PERSIST, on_pace, NULL);
			struct timeval ptv = {0, PACE_MS * 1000};
			event_add(B.pace, &ptv);
		}
		B.timer = event_new(B.base, -1, EV_PERSIST, on_phase_timer, NULL);
		tv.tv_sec = 0;
		tv.tv_usec = 10000;
		event_add(B.timer, &tv);
		pump();
		break;
	case PH_LOGIN:
		break;
	case PH_DONE:
		event_base_loopbreak(B.base);
		break;
	}
}

static void login_phase_done(void)
{
	double seconds = (double)(B.login_t1 - B.login_t0) / 1e9;
	printf("phase=login sessions=%u concurrency=%u ok=%u failed=%u seconds=%.3f rate=%.0f "
	       "p50_ms=%.3f p99_ms=%.3f",
	       B.n, B.concurrency, B.logged_in, B.failed, seconds,
	       seconds > 0 ? B.logged_in / seconds : 0.0, percentile_ms(&B.login_lat, 50),
	       percentile_ms(&B.login_lat, 99));
	cpu_take(seconds > 0 ? seconds : 1);
	print_cpu(B.logged_in);
	printf("\n");
	fflush(stdout);
	if (B.failed > 0 || B.logged_in == 0) {
		start_phase(PH_DONE);
		return;
	}
	start_phase(PH_IDLE);
}

/* ---- setup */

static void raise_nofile(rlim_t need)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur >= need)
		return;
	if (rl.rlim_max < need)
		rl.rlim_max = need; /* needs CAP_SYS_RESOURCE (root) */
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		die(EXIT_SETUP, "cannot raise the open file limit to %llu: %s",
		    (unsigned long long)need, strerror(errno));
}

static void read_users(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		die(EXIT_SETUP, "cannot open %s: %s", path, strerror(errno));
	char line[1024];
	unsigned k = 0;
	while (k < B.n && fgets(line, sizeof(line), f) != NULL) {
		char user[512], token[512];
		if (sscanf(line, "%511s %511s", user, token) != 2)
			continue;
		B.s[k].user = xstrdup(user);
		B.s[k].token = xstrdup(token);
		k++;
	}
	fclose(f);
	if (k < B.n)
		die(EXIT_SETUP, "%s has %u users, %u wanted", path, k, B.n);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: xmpp-load --connect HOST:PORT --domain DOMAIN --users FILE --sessions N\n"
		"                 [--tls starttls|direct] [--concurrency C] [--pid PID] [--idle S]\n"
		"                 [--seconds S] [--inflight W] [--rate R] [--sources K] [--cafile F]\n");
}

static unsigned long parse_num(const char *opt, const char *s, unsigned long lo, unsigned long hi)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v < lo || v > hi) {
		fprintf(stderr, "xmpp-load: %s wants a number from %lu to %lu, got '%s'\n", opt, lo,
			hi, s);
		exit(EXIT_USAGE);
	}
	return v;
}

static double parse_real(const char *opt, const char *s, double lo, double hi)
{
	char *end;
	double v = strtod(s, &end);
	if (*end != '\0' || end == s || !(v >= lo && v <= hi)) {
		fprintf(stderr, "xmpp-load: %s wants a number from %g to %g, got '%s'\n", opt, lo, hi,
			s);
		exit(EXIT_USAGE);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"connect", required_argument, NULL, 'c'},  {"domain", required_argument, NULL, 'd'},
		{"users", required_argument, NULL, 'u'},    {"sessions", required_argument, NULL, 'n'},
		{"tls", required_argument, NULL, 't'},      {"concurrency", required_argument, NULL, 'C'},
		{"pid", required_argument, NULL, 'p'},      {"idle", required_argument, NULL, 'i'},
		{"seconds", required_argument, NULL, 's'},  {"inflight", required_argument, NULL, 'w'},
		{"rate", required_argument, NULL, 'r'},     {"sources", required_argument, NULL, 'S'},
		{"cafile", required_argument, NULL, 'a'},   {"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *connect_to = NULL, *users = NULL, *cafile = NULL;
	B.concurrency = 100;
	B.idle_s = 5;
	B.seconds = 10;
	B.inflight_max = 1000;
	B.rate = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c': connect_to = optarg; break;
		case 'd': B.domain = optarg; break;
		case 'u': users = optarg; break;
		case 'n': B.n = (unsigned)parse_num("--sessions", optarg, 2, MAX_SESSIONS); break;
		case 't':
			if (strcmp(optarg, "direct") == 0)
				B.direct = true;
			else if (strcmp(optarg, "starttls") != 0) {
				fprintf(stderr, "xmpp-load: --tls is starttls or direct\n");
				return EXIT_USAGE;
			}
			break;
		case 'C': B.concurrency = (unsigned)parse_num("--concurrency", optarg, 1, 10000); break;
		case 'p': B.server_pid = (long)parse_num("--pid", optarg, 1, INT_MAX); break;
		case 'i': B.idle_s = parse_real("--idle", optarg, 0, 3600); break;
		case 's': B.seconds = parse_real("--seconds", optarg, 0, 3600); break;
		case 'w': B.inflight_max = (unsigned)parse_num("--inflight", optarg, 1, 1000000); break;
		case 'r': B.rate = parse_real("--rate", optarg, 0, 10000000); break;
		case 'S': B.n_sources = (unsigned)parse_num("--sources", optarg, 0, MAX_SOURCES); break;
		case 'a': cafile = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc || connect_to == NULL || B.domain == NULL || users == NULL || B.n == 0) {
		usage(stderr);
		return EXIT_USAGE;
	}
	char host[64];
	const char *colon = strrchr(connect_to, ':');
	if (colon == NULL || (size_t)(colon - connect_to) >= sizeof(host)) {
		fprintf(stderr, "xmpp-load: --connect wants IPV4:PORT\n");
		return EXIT_USAGE;
	}
	snprintf(host, sizeof(host), "%.*s", (int)(colon - connect_to), connect_to);
	B.dst.sin_family = AF_INET;
	B.dst.sin_port = htons((uint16_t)parse_num("--connect port", colon + 1, 1, 65535));
	if (inet_pton(AF_INET, host, &B.dst.sin_addr) != 1) {
		fprintf(stderr, "xmpp-load: --connect wants an IPv4 address, got '%s'\n", host);
		return EXIT_USAGE;
	}
	/* Source addresses 127.0.0.2 … 127.0.0.(K+1): K times the ephemeral ports. */
	for (unsigned i = 0; i < B.n_sources; i++)
		B.sources[i].s_addr = htonl(0x7f000002u + i);

	B.s = calloc(B.n, sizeof(*B.s));
	if (B.s == NULL)
		die(EXIT_SETUP, "out of memory");
	for (unsigned i = 0; i < B.n; i++) {
		B.s[i].index = i;
		B.s[i].fd = -1;
	}
	read_users(users);
	raise_nofile((rlim_t)B.n + 256);
	signal(SIGPIPE, SIG_IGN);

	B.ctx = SSL_CTX_new(TLS_client_method());
	if (B.ctx == NULL)
		die(EXIT_SETUP, "SSL_CTX_new failed");
	SSL_CTX_set_min_proto_version(B.ctx, TLS1_2_VERSION);
	SSL_CTX_set_session_cache_mode(B.ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(B.ctx, SSL_OP_NO_TICKET);
	if (cafile != NULL) {
		if (SSL_CTX_load_verify_locations(B.ctx, cafile, NULL) != 1)
			die(EXIT_SETUP, "cannot load %s", cafile);
		SSL_CTX_set_verify(B.ctx, SSL_VERIFY_PEER, NULL);
	}
	if (B.direct) {
		static const unsigned char alpn[] = "\x0bxmpp-client";
		SSL_CTX_set_alpn_protos(B.ctx, alpn, sizeof(alpn) - 1);
	}

	B.base = event_base_new();
	if (B.base == NULL)
		die(EXIT_SETUP, "event_base_new failed");
	B.rss_before = server_rss_kib();
	B.phase = PH_LOGIN;
	cpu_mark();
	B.login_t0 = B.login_t1 = bench_now_ns();
	start_next_logins();
	if (B.phase != PH_DONE)
		event_base_dispatch(B.base);

	if (B.first_error[0] != '\0')
		fprintf(stderr, "xmpp-load: first problem: %s\n", B.first_error);
	if (B.sessions_lost > 0)
		fprintf(stderr, "xmpp-load: %" PRIu64 " sessions ended during the run\n",
			B.sessions_lost);
	for (unsigned i = 0; i < B.n; i++) {
		if (B.s[i].bev != NULL)
			bufferevent_free(B.s[i].bev);
		else if (B.s[i].fd >= 0)
			close(B.s[i].fd);
		free(B.s[i].user);
		free(B.s[i].token);
		free(B.s[i].full);
	}
	free(B.s);
	free(B.login_lat.v);
	free(B.msg_lat.v);
	if (B.timer != NULL)
		event_free(B.timer);
	if (B.pace != NULL)
		event_free(B.pace);
	event_base_free(B.base);
	SSL_CTX_free(B.ctx);
	return B.exit_status;
}
