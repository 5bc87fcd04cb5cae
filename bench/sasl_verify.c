/* sasl-verify-bench: token verifications through the SASL plugin in-process (libsasl2's
 * server API) or through samlgw-authd's saslauthd socket, against a private Redis.
 *
 *   sasl-verify-bench --mode plugin --url unix:///path/redis.sock --plugin-path DIRS
 *                     --clients N --seconds S [--tokens K] [--warmup S]
 *   sasl-verify-bench --mode authd --url unix:///path/redis.sock --socket PATH
 *                     --clients N --seconds S [--tokens K] [--warmup S]
 *
 * Issues K unlimited tokens for service imap under the key prefix `bench:` (one per JID),
 * then runs N threads, each verifying the tokens round-robin:
 *   plugin: sasl_server_new, sasl_server_start("OAUTHBEARER", initial response) and
 *           sasl_dispose per verification, as a server does per connection;
 *   authd:  a new unix socket connection per verification with one saslauthd request,
 *           as libsasl2's pwcheck_method saslauthd does.
 * After an unmeasured warm-up, each call's latency goes into a per-thread array. Prints
 * one line, in token-verify-bench's format:
 *
 *   clients=N requests=R seconds=T rps=X p50_us=A p99_us=B mean_us=C failures=0
 *
 * Every verification must succeed; failures are counted, the first reason goes to stderr
 * and the exit status is 1. Bad usage exits 64, setup failures 2. bench/sasl-verify runs
 * it next to token-verify-bench; see bench/README.md. */
#include "latency.h"
#include "store.h"
#include "token.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sasl/sasl.h>

#define EXIT_FAILED 1
#define EXIT_SETUP 2
#define EXIT_USAGE 64

#define BENCH_PREFIX "bench:"
#define BENCH_SERVICE "imap"
#define MAX_CLIENTS 256
#define MAX_TOKENS 100000
#define SLOTS_PER_SECOND 100000

enum mode { MODE_PLUGIN, MODE_AUTHD };

struct bench_token {
	char jid[64];
	char text[TOKEN_LEN + 1];
};

struct shared {
	enum mode mode;
	const char *socket;
	const struct bench_token *tokens;
	size_t ntokens, nclients;
	uint64_t warm_end_ns, end_ns;
	pthread_barrier_t barrier;
};

struct worker {
	struct shared *sh;
	int index;
	pthread_t thread;
	uint64_t *lat;
	size_t n, cap;
	uint64_t start_ns, stop_ns;
	long long failures;
	char first_error[300];
};

static const char *option_url;
static const char *option_path;

static int getopt_cb(void *context, const char *plugin_name, const char *option,
		     const char **result, unsigned *len)
{
	if (strcmp(option, "samlgw_redis") == 0)
		*result = option_url;
	else if (strcmp(option, "samlgw_prefix") == 0)
		*result = BENCH_PREFIX;
	else if (strcmp(option, "samlgw_timeout_ms") == 0)
		*result = "5000";
	else if (strcmp(option, "mech_list") == 0)
		*result = "OAUTHBEARER";
	else
		return SASL_FAIL;
	if (len != NULL)
		*len = (unsigned)strlen(*result);
	return SASL_OK;
}

static int getpath_cb(void *context, const char **path)
{
	*path = option_path;
	return SASL_OK;
}

#define SASL_CB_PROC(f) ((int (*)(void))(void (*)(void))(f))

static sasl_callback_t callbacks[] = {
	{SASL_CB_GETOPT, SASL_CB_PROC(getopt_cb), NULL},
	{SASL_CB_GETPATH, SASL_CB_PROC(getpath_cb), NULL},
	{SASL_CB_LIST_END, NULL, NULL},
};

/* One OAUTHBEARER login; NULL on success, else why not. */
static const char *verify_plugin(const struct bench_token *t)
{
	sasl_conn_t *conn;
	if (sasl_server_new(BENCH_SERVICE, "localhost", NULL, NULL, NULL, NULL, 0, &conn) != SASL_OK)
		return "sasl_server_new failed";
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "n,a=%s,\x01" "auth=Bearer %s\x01\x01", t->jid, t->text);
	const char *out;
	unsigned outlen;
	int r = sasl_server_start(conn, "OAUTHBEARER", msg, (unsigned)n, &out, &outlen);
	sasl_dispose(&conn);
	secret_wipe(msg, sizeof(msg));
	return r == SASL_OK ? NULL : sasl_errstring(r, NULL, NULL);
}

static int read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* One saslauthd request on a new connection; NULL when answered OK. */
static const char *verify_authd(const char *path, const struct bench_token *t)
{
	uint8_t req[512];
	size_t len = 0;
	const char *fields[] = {t->jid, t->text, BENCH_SERVICE, ""};
	for (size_t i = 0; i < 4; i++) {
		size_t l = strlen(fields[i]);
		req[len++] = (uint8_t)(l >> 8);
		req[len++] = (uint8_t)l;
		memcpy(req + len, fields[i], l);
		len += l;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	const char *why = NULL;
	uint8_t head[2], body[256];
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		why = "cannot connect to samlgw-authd";
	else if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len)
		why = "cannot send the request";
	else if (read_full(fd, head, 2) < 0)
		why = "no answer";
	else {
		size_t n = (size_t)head[0] << 8 | head[1];
		if (n > sizeof(body) || read_full(fd, body, n) < 0)
			why = "a broken answer";
		else if (n != 2 || memcmp(body, "OK", 2) != 0)
			why = "samlgw-authd answered NO";
	}
	if (fd >= 0)
		close(fd);
	secret_wipe(req, sizeof(req));
	return why;
}

static const char *verify(const struct shared *sh, const struct bench_token *t)
{
	return sh->mode == MODE_PLUGIN ? verify_plugin(t) : verify_authd(sh->socket, t);
}

static void note(struct worker *w, const char *why)
{
	if (w->failures++ == 0)
		snprintf(w->first_error, sizeof(w->first_error), "%s", why);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	size_t next = (size_t)w->index * sh->ntokens / sh->nclients % sh->ntokens;
	pthread_barrier_wait(&sh->barrier);
	while (bench_now_ns() < sh->warm_end_ns) {
		const char *why = verify(sh, &sh->tokens[next]);
		next = (next + 1) % sh->ntokens;
		if (why != NULL)
			note(w, why);
	}
	w->start_ns = bench_now_ns();
	uint64_t t0 = w->start_ns;
	while (t0 < sh->end_ns) {
		if (w->n == w->cap) {
			w->cap *= 2;
			w->lat = xrealloc(w->lat, w->cap * sizeof(*w->lat));
			t0 = bench_now_ns();
		}
		const char *why = verify(sh, &sh->tokens[next]);
		next = (next + 1) % sh->ntokens;
		uint64_t t1 = bench_now_ns();
		w->lat[w->n++] = t1 - t0;
		if (why != NULL)
			note(w, why);
		t0 = t1;
	}
	w->stop_ns = t0;
	return NULL;
}

static const char usage_text[] =
	"usage: sasl-verify-bench --mode plugin|authd --url unix:///path/redis.sock\n"
	"                         [--plugin-path DIRS] [--socket PATH] [--clients N]\n"
	"                         [--seconds S] [--tokens K] [--warmup S]\n"
	"\n"
	"  --mode plugin   OAUTHBEARER through libsasl2's server API and the plugin found in\n"
	"                  --plugin-path (colon-separated folders)\n"
	"  --mode authd    saslauthd requests to samlgw-authd listening on --socket\n"
	"  --url URL       the Redis tokens are issued into (prefix '" BENCH_PREFIX "', not cleaned up)\n"
	"  --clients N     threads (default 1); --seconds S measured (default 5)\n"
	"  --tokens K      tokens verified round-robin (default 1000); --warmup S (default 0.3)\n"
	"\n"
	"Prints: clients=N requests=R seconds=T rps=X p50_us=A p99_us=B mean_us=C failures=F\n";

static int usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "sasl-verify-bench: %s %s\n%s", msg, arg != NULL ? arg : "", usage_text);
	return EXIT_USAGE;
}

static bool parse_seconds(const char *s, double *out_r)
{
	char *end;
	double d = strtod(s, &end);
	if (end == s || *end != '\0' || !(d >= 0.0) || d > 3600.0)
		return false;
	*out_r = d;
	return true;
}

static int issue_tokens(const char *url, struct bench_token *tokens, long long n)
{
	struct store_options so = {.url = url, .prefix = BENCH_PREFIX, .timeout_ms = 5000};
	struct token_store *store;
	const char *error;
	if (store_open(&so, &store, &error) < 0) {
		fprintf(stderr, "sasl-verify-bench: %s\n", error);
		return -1;
	}
	for (long long i = 0; i < n; i++) {
		snprintf(tokens[i].jid, sizeof(tokens[i].jid), "user%lld@sasl.bench.example", i);
		struct store_issue_request req = {.jid = tokens[i].jid, .services = BENCH_SERVICE,
						  .ttl = 3600, .label = "bench", .max_per_user = 1000000};
		if (store_issue(store, &req, tokens[i].text, NULL, &error) != STORE_OK) {
			fprintf(stderr, "sasl-verify-bench: cannot issue a token: %s\n", error);
			store_free(store);
			return -1;
		}
	}
	store_free(store);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"mode", required_argument, NULL, 'm'},    {"url", required_argument, NULL, 'u'},
		{"plugin-path", required_argument, NULL, 'p'}, {"socket", required_argument, NULL, 'S'},
		{"clients", required_argument, NULL, 'c'}, {"seconds", required_argument, NULL, 's'},
		{"tokens", required_argument, NULL, 'k'},  {"warmup", required_argument, NULL, 'w'},
		{"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	struct shared sh = {0};
	const char *mode = NULL;
	long long clients = 1, ntokens = 1000;
	double seconds = 5.0, warmup = 0.3;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'm': mode = optarg; break;
		case 'u': option_url = optarg; break;
		case 'p': option_path = optarg; break;
		case 'S': sh.socket = optarg; break;
		case 'c':
			if (!parse_ll(optarg, 1, MAX_CLIENTS, &clients))
				return usage_error("--clients wants 1 to 256, got", optarg);
			break;
		case 's':
			if (!parse_seconds(optarg, &seconds) || seconds <= 0.0)
				return usage_error("--seconds wants a positive number, got", optarg);
			break;
		case 'k':
			if (!parse_ll(optarg, 1, MAX_TOKENS, &ntokens))
				return usage_error("--tokens wants 1 to 100000, got", optarg);
			break;
		case 'w':
			if (!parse_seconds(optarg, &warmup))
				return usage_error("--warmup wants a number of seconds, got", optarg);
			break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return usage_error("bad or incomplete option", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument", argv[optind]);
	if (option_url == NULL)
		return usage_error("--url is required", NULL);
	if (mode != NULL && strcmp(mode, "plugin") == 0 && option_path != NULL)
		sh.mode = MODE_PLUGIN;
	else if (mode != NULL && strcmp(mode, "authd") == 0 && sh.socket != NULL)
		sh.mode = MODE_AUTHD;
	else
		return usage_error("--mode plugin needs --plugin-path, --mode authd needs --socket", NULL);

	struct bench_token *tokens = xcalloc((size_t)ntokens, sizeof(*tokens));
	if (issue_tokens(option_url, tokens, ntokens) < 0)
		return EXIT_SETUP;
	if (sh.mode == MODE_PLUGIN && sasl_server_init(callbacks, "sasl-verify-bench") != SASL_OK) {
		fprintf(stderr, "sasl-verify-bench: sasl_server_init failed\n");
		return EXIT_SETUP;
	}
	sh.tokens = tokens;
	sh.ntokens = (size_t)ntokens;
	sh.nclients = (size_t)clients;
	struct worker *w = xcalloc((size_t)clients, sizeof(*w));
	if (pthread_barrier_init(&sh.barrier, NULL, (unsigned)clients + 1) != 0)
		return EXIT_SETUP;
	size_t cap = (size_t)(seconds * SLOTS_PER_SECOND) + 1;
	for (long long i = 0; i < clients; i++) {
		w[i].sh = &sh;
		w[i].index = (int)i;
		w[i].cap = cap;
		w[i].lat = xcalloc(cap, sizeof(*w[i].lat));
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0)
			return EXIT_SETUP;
	}
	uint64_t t_start = bench_now_ns();
	sh.warm_end_ns = t_start + (uint64_t)(warmup * 1e9);
	sh.end_ns = sh.warm_end_ns + (uint64_t)(seconds * 1e9);
	pthread_barrier_wait(&sh.barrier);

	size_t total = 0;
	long long failures = 0;
	uint64_t first = UINT64_MAX, last = 0;
	const char *first_error = NULL;
	for (long long i = 0; i < clients; i++) {
		pthread_join(w[i].thread, NULL);
		total += w[i].n;
		failures += w[i].failures;
		if (w[i].failures > 0 && first_error == NULL)
			first_error = w[i].first_error;
		first = w[i].start_ns < first ? w[i].start_ns : first;
		last = w[i].stop_ns > last ? w[i].stop_ns : last;
	}
	uint64_t *all = xcalloc(total == 0 ? 1 : total, sizeof(*all));
	size_t k = 0;
	double sum = 0;
	for (long long i = 0; i < clients; i++) {
		for (size_t j = 0; j < w[i].n; j++) {
			all[k++] = w[i].lat[j];
			sum += (double)w[i].lat[j];
		}
		free(w[i].lat);
	}
	bench_sort(all, total);
	double elapsed = (double)(last - first) / 1e9;
	printf("clients=%lld requests=%zu seconds=%.3f rps=%.0f p50_us=%.1f p99_us=%.1f "
	       "mean_us=%.1f failures=%lld\n",
	       clients, total, elapsed, elapsed > 0 ? (double)total / elapsed : 0.0,
	       (double)bench_percentile(all, total, 50) / 1e3, (double)bench_percentile(all, total, 99) / 1e3,
	       total > 0 ? sum / (double)total / 1e3 : 0.0, failures);
	if (first_error != NULL)
		fprintf(stderr, "sasl-verify-bench: %lld verifications failed; first: %s\n", failures,
			first_error);
	free(all);
	free(w);
	secret_wipe(tokens, (size_t)ntokens * sizeof(*tokens));
	free(tokens);
	if (sh.mode == MODE_PLUGIN)
		sasl_server_done();
	return failures > 0 ? EXIT_FAILED : 0;
}
