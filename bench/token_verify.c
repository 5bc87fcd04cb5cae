/* token-verify-bench: store_verify() throughput and latency against a private Redis.
 *
 *   token-verify-bench --url unix:///path/redis.sock --clients N
 *                      (--seconds S | --requests R) [--tokens K] [--warmup S]
 *
 * Issues K unlimited tokens (one per JID, under the key prefix `bench:`), then runs N
 * threads, each with its own token store (a store belongs to one thread), verifying the
 * tokens round-robin. After a warm-up that is not measured, each call's latency is taken
 * with CLOCK_MONOTONIC into a per-thread array. Prints one machine-readable line on
 * stdout:
 *
 *   clients=N requests=R seconds=T rps=X p50_us=A p99_us=B mean_us=C failures=0
 *
 * Every verification must answer STORE_OK; any other answer is counted, the first reason
 * goes to stderr and the exit status is 1. Bad usage exits 64, setup failures 2.
 * bench/token-verify runs this next to redis-benchmark; see bench/README.md. */
#include "latency.h"
#include "store.h"
#include "token.h"
#include "util.h"

#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_FAILED 1
#define EXIT_SETUP 2
#define EXIT_USAGE 64

#define BENCH_PREFIX "bench:"
#define BENCH_SERVICE "xmpp"
#define BENCH_TIMEOUT_MS 5000
#define MAX_CLIENTS 256
#define MAX_TOKENS 100000
/* Room preallocated per thread and second in --seconds mode: well above what one
 * synchronous client can do over a unix socket. If a thread ever fills it, the array
 * grows (outside the timed call, so the latencies stay honest). */
#define SLOTS_PER_SECOND 200000

struct bench_token {
	char jid[64];
	char text[TOKEN_LEN + 1];
};

struct shared {
	const char *url;
	const struct bench_token *tokens;
	size_t ntokens;
	size_t nclients;
	long long requests_per_thread; /* 0: run until end_ns */
	uint64_t warm_end_ns, end_ns;  /* absolute CLOCK_MONOTONIC, set before the barrier */
	pthread_barrier_t barrier;
};

struct worker {
	struct shared *sh;
	int index;
	pthread_t thread;
	uint64_t *lat; /* ns per measured call */
	size_t n, cap;
	uint64_t start_ns, stop_ns; /* measured window of this thread */
	long long failures;
	char first_error[400];
	int setup_failed;
};

static int open_store(const char *url, struct token_store **store_r, const char **error_r)
{
	struct store_options so = {
		.url = url,
		.prefix = BENCH_PREFIX,
		.timeout_ms = BENCH_TIMEOUT_MS,
	};
	return store_open(&so, store_r, error_r);
}

static void note_failure(struct worker *w, enum store_result r, const char *error)
{
	if (w->failures++ == 0)
		snprintf(w->first_error, sizeof(w->first_error), "%s: %s",
			 r == STORE_INVALID ? "invalid" : "unavailable",
			 error != NULL ? error : "(no reason)");
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct shared *sh = w->sh;
	struct token_store *store = NULL;
	const char *error = NULL;
	/* Stagger the starting token so that threads do not all hit the same key. */
	size_t next = (size_t)w->index * sh->ntokens / sh->nclients % sh->ntokens;

	if (open_store(sh->url, &store, &error) < 0) {
		snprintf(w->first_error, sizeof(w->first_error), "%s", error);
		w->setup_failed = 1;
	} else {
		/* Connect before the clock starts (store_open is lazy). */
		enum store_result r = store_ping(store, &error);
		if (r != STORE_OK) {
			snprintf(w->first_error, sizeof(w->first_error), "%s", error);
			w->setup_failed = 1;
		}
	}
	pthread_barrier_wait(&sh->barrier);
	if (w->setup_failed) {
		store_free(store);
		return NULL;
	}

	/* Warm-up: loads the script into Redis (the first EVALSHA falls back to EVAL),
	 * warms caches; not measured, but its answers are still checked. */
	while (bench_now_ns() < sh->warm_end_ns) {
		const struct bench_token *t = &sh->tokens[next];
		next = (next + 1) % sh->ntokens;
		enum store_result r = store_verify(store, t->text, TOKEN_LEN, t->jid,
						   BENCH_SERVICE, NULL, &error);
		if (r != STORE_OK)
			note_failure(w, r, error);
	}

	w->start_ns = bench_now_ns();
	uint64_t t0 = w->start_ns;
	for (;;) {
		if (sh->requests_per_thread > 0) {
			if ((long long)w->n >= sh->requests_per_thread)
				break;
		} else if (t0 >= sh->end_ns) {
			break;
		}
		if (w->n == w->cap) {
			w->cap *= 2;
			w->lat = xrealloc(w->lat, w->cap * sizeof(*w->lat));
			t0 = bench_now_ns();
		}
		const struct bench_token *t = &sh->tokens[next];
		next = (next + 1) % sh->ntokens;
		enum store_result r = store_verify(store, t->text, TOKEN_LEN, t->jid,
						   BENCH_SERVICE, NULL, &error);
		uint64_t t1 = bench_now_ns();
		w->lat[w->n++] = t1 - t0;
		if (r != STORE_OK)
			note_failure(w, r, error);
		t0 = t1;
	}
	w->stop_ns = t0;
	store_free(store);
	return NULL;
}

static const char usage_text[] =
	"usage: token-verify-bench --url unix:///path/redis.sock [--clients N]\n"
	"                          (--seconds S | --requests R) [--tokens K] [--warmup S]\n"
	"\n"
	"  --url URL       Redis to use; keys go under the prefix '" BENCH_PREFIX "' and are\n"
	"                  not cleaned up, so give it a private Redis\n"
	"  --clients N     threads, each with its own store and connection (default 1)\n"
	"  --seconds S     measure for S seconds (default 5)\n"
	"  --requests R    or: measure R verifications in all, split over the clients\n"
	"  --tokens K      tokens to issue and verify round-robin (default 1000)\n"
	"  --warmup S      unmeasured warm-up in seconds (default 0.3)\n"
	"\n"
	"Prints: clients=N requests=R seconds=T rps=X p50_us=A p99_us=B mean_us=C failures=F\n";

static int usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "token-verify-bench: %s%s%s\n%s", msg, arg != NULL ? " " : "",
		arg != NULL ? arg : "", usage_text);
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

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"url", required_argument, NULL, 'u'},     {"clients", required_argument, NULL, 'c'},
		{"seconds", required_argument, NULL, 's'}, {"requests", required_argument, NULL, 'n'},
		{"tokens", required_argument, NULL, 'k'},  {"warmup", required_argument, NULL, 'w'},
		{"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
	};
	const char *url = NULL;
	long long clients = 1, requests = 0, ntokens = 1000;
	double seconds = 5.0, warmup = 0.3;
	bool seconds_given = false;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'u':
			url = optarg;
			break;
		case 'c':
			if (!parse_ll(optarg, 1, MAX_CLIENTS, &clients))
				return usage_error("--clients wants 1 to 256, got", optarg);
			break;
		case 's':
			if (!parse_seconds(optarg, &seconds) || seconds <= 0.0)
				return usage_error("--seconds wants a positive number, got", optarg);
			seconds_given = true;
			break;
		case 'n':
			if (!parse_ll(optarg, 1, 1000000000, &requests))
				return usage_error("--requests wants 1 to 1e9, got", optarg);
			break;
		case 'k':
			if (!parse_ll(optarg, 1, MAX_TOKENS, &ntokens))
				return usage_error("--tokens wants 1 to 100000, got", optarg);
			break;
		case 'w':
			if (!parse_seconds(optarg, &warmup))
				return usage_error("--warmup wants a number of seconds, got", optarg);
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case ':':
			return usage_error("a value is missing after", argv[optind - 1]);
		default:
			return usage_error("unknown option", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage_error("unexpected argument", argv[optind]);
	if (url == NULL)
		return usage_error("--url is required", NULL);
	if (seconds_given && requests > 0)
		return usage_error("give --seconds or --requests, not both", NULL);
	if (requests > 0 && requests < clients)
		return usage_error("--requests must be at least --clients", NULL);

	/* Issue the tokens: one JID each, unlimited uses, an hour to live. */
	struct token_store *store;
	const char *error;
	if (open_store(url, &store, &error) < 0) {
		fprintf(stderr, "token-verify-bench: %s\n", error);
		return EXIT_SETUP;
	}
	struct bench_token *tokens = xcalloc((size_t)ntokens, sizeof(*tokens));
	for (long long i = 0; i < ntokens; i++) {
		snprintf(tokens[i].jid, sizeof(tokens[i].jid), "user%lld@bench.example", i);
		struct store_issue_request req = {
			.jid = tokens[i].jid,
			.services = BENCH_SERVICE,
			.ttl = 3600,
			.label = "bench",
			.max_uses = 0,
			.idp = NULL,
			.max_per_user = 1000000,
		};
		enum store_result r = store_issue(store, &req, tokens[i].text, NULL, &error);
		if (r != STORE_OK) {
			fprintf(stderr, "token-verify-bench: cannot issue a token: %s\n", error);
			store_free(store);
			free(tokens);
			return EXIT_SETUP;
		}
	}
	store_free(store);

	struct shared sh = {
		.url = url,
		.tokens = tokens,
		.ntokens = (size_t)ntokens,
		.nclients = (size_t)clients,
		.requests_per_thread = requests > 0 ? requests / clients : 0,
	};
	size_t cap = requests > 0 ? (size_t)sh.requests_per_thread
				  : (size_t)(seconds * SLOTS_PER_SECOND) + 1;
	struct worker *w = xcalloc((size_t)clients, sizeof(*w));
	if (pthread_barrier_init(&sh.barrier, NULL, (unsigned)clients + 1) != 0) {
		fprintf(stderr, "token-verify-bench: pthread_barrier_init failed\n");
		return EXIT_SETUP;
	}
	for (long long i = 0; i < clients; i++) {
		w[i].sh = &sh;
		w[i].index = (int)i;
		w[i].cap = cap;
		w[i].lat = xcalloc(cap, sizeof(*w[i].lat)); /* touched now, not while timing */
		int err = pthread_create(&w[i].thread, NULL, worker_main, &w[i]);
		if (err != 0) {
			fprintf(stderr, "token-verify-bench: pthread_create: %s\n", strerror(err));
			return EXIT_SETUP;
		}
	}
	/* The deadlines are set before the barrier releases the workers. */
	uint64_t t_start = bench_now_ns();
	sh.warm_end_ns = t_start + (uint64_t)(warmup * 1e9);
	sh.end_ns = sh.warm_end_ns + (uint64_t)(seconds * 1e9);
	pthread_barrier_wait(&sh.barrier);
	for (long long i = 0; i < clients; i++)
		pthread_join(w[i].thread, NULL);
	pthread_barrier_destroy(&sh.barrier);

	int status = 0;
	size_t total = 0;
	long long failures = 0;
	uint64_t win_start = UINT64_MAX, win_stop = 0;
	for (long long i = 0; i < clients; i++) {
		if (w[i].setup_failed) {
			fprintf(stderr, "token-verify-bench: client %lld: %s\n", i, w[i].first_error);
			status = EXIT_SETUP;
			continue;
		}
		if (w[i].failures > 0)
			fprintf(stderr, "token-verify-bench: client %lld: %lld failed verifications, "
					"first: %s\n",
				i, w[i].failures, w[i].first_error);
		failures += w[i].failures;
		total += w[i].n;
		if (w[i].start_ns < win_start)
			win_start = w[i].start_ns;
		if (w[i].stop_ns > win_stop)
			win_stop = w[i].stop_ns;
	}
	if (status == 0) {
		uint64_t *all = xcalloc(total > 0 ? total : 1, sizeof(*all));
		size_t k = 0;
		double sum = 0;
		for (long long i = 0; i < clients; i++) {
			memcpy(all + k, w[i].lat, w[i].n * sizeof(*all));
			k += w[i].n;
		}
		for (size_t i = 0; i < total; i++)
			sum += (double)all[i];
		bench_sort(all, total);
		double window = win_stop > win_start ? (double)(win_stop - win_start) / 1e9 : 0.0;
		printf("clients=%lld requests=%zu seconds=%.3f rps=%.0f p50_us=%.1f p99_us=%.1f "
		       "mean_us=%.1f failures=%lld\n",
		       clients, total, window, window > 0 ? (double)total / window : 0.0,
		       (double)bench_percentile(all, total, 50.0) / 1000.0,
		       (double)bench_percentile(all, total, 99.0) / 1000.0,
		       total > 0 ? sum / (double)total / 1000.0 : 0.0, failures);
		free(all);
		if (failures > 0)
			status = EXIT_FAILED;
	}
	for (long long i = 0; i < clients; i++)
		free(w[i].lat);
	free(w);
	for (long long i = 0; i < ntokens; i++)
		secret_wipe(tokens[i].text, sizeof(tokens[i].text));
	free(tokens);
	return status;
}
