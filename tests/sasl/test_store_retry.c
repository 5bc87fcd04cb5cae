/* The token store's one retry on a reused connection: it may only happen when the command
 * certainly did not run. A verification of a limited token that reached Redis and ran,
 * but whose reply was lost, must come back as unavailable and count one use, not two;
 * a connection Redis closed while it sat idle must be noticed before anything is sent,
 * so the next call works without a failure. A small proxy between the store and a
 * private Redis loses the reply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "redis_fixture.h"
#include "store.h"
#include "token.h"

static struct test_redis redis;

/* ------------------------------------------------------------------ the proxy */

enum proxy_mode {
	PROXY_PASS,
	PROXY_LOSE_NEXT_REPLY, /* forward the next request, swallow its reply, hang up */
};

#define PROXY_PAIRS 8

struct proxy {
	char path[160];
	char url[180];
	int listen_fd;
	int stop_pipe[2];
	pthread_t thread;
	atomic_int mode;
	atomic_int lost; /* replies swallowed so far */
	struct {
		int client, upstream;
		bool losing; /* this pair's request went out in PROXY_LOSE_NEXT_REPLY */
	} pairs[PROXY_PAIRS];
};

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void close_pair(struct proxy *p, int i)
{
	close(p->pairs[i].client);
	close(p->pairs[i].upstream);
	p->pairs[i].client = p->pairs[i].upstream = -1;
	p->pairs[i].losing = false;
}

static bool forward(int from, int to)
{
	char buf[16384];
	ssize_t n = read(from, buf, sizeof(buf));
	if (n <= 0)
		return false;
	return send(to, buf, (size_t)n, MSG_NOSIGNAL) == n;
}

static void *proxy_main(void *arg)
{
	struct proxy *p = arg;
	for (;;) {
		struct pollfd fds[2 + 2 * PROXY_PAIRS];
		int map[2 + 2 * PROXY_PAIRS];
		nfds_t n = 0;
		fds[n++] = (struct pollfd){.fd = p->stop_pipe[0], .events = POLLIN};
		fds[n++] = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
		for (int i = 0; i < PROXY_PAIRS; i++) {
			if (p->pairs[i].client < 0)
				continue;
			map[n] = i;
			fds[n++] = (struct pollfd){.fd = p->pairs[i].client, .events = POLLIN};
			map[n] = i;
			fds[n++] = (struct pollfd){.fd = p->pairs[i].upstream, .events = POLLIN};
		}
		if (poll(fds, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (fds[0].revents != 0)
			return NULL;
		if (fds[1].revents & POLLIN) {
			int c = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
			int u = c >= 0 ? connect_unix(redis.socket) : -1;
			int slot = -1;
			for (int i = 0; i < PROXY_PAIRS && slot < 0; i++)
				slot = p->pairs[i].client < 0 ? i : -1;
			if (c < 0 || u < 0 || slot < 0) {
				if (c >= 0)
					close(c);
				if (u >= 0)
					close(u);
			} else {
				p->pairs[slot].client = c;
				p->pairs[slot].upstream = u;
			}
		}
		for (nfds_t k = 2; k < n; k++) {
			int i = map[k];
			if (fds[k].revents == 0 || p->pairs[i].client < 0)
				continue;
			bool from_client = fds[k].fd == p->pairs[i].client;
			if (from_client) {
				if (atomic_load(&p->mode) == PROXY_LOSE_NEXT_REPLY) {
					atomic_store(&p->mode, PROXY_PASS);
					p->pairs[i].losing = true;
				}
				if (!forward(p->pairs[i].client, p->pairs[i].upstream))
					close_pair(p, i);
			} else if (p->pairs[i].losing) {
				/* Redis ran the command and answered; the client never hears it. */
				char buf[16384];
				if (read(p->pairs[i].upstream, buf, sizeof(buf)) > 0)
					atomic_fetch_add(&p->lost, 1);
				close_pair(p, i);
			} else if (!forward(p->pairs[i].upstream, p->pairs[i].client)) {
				close_pair(p, i);
			}
		}
	}
}

static int proxy_start(struct proxy *p)
{
	memset(p, 0, sizeof(*p));
	for (int i = 0; i < PROXY_PAIRS; i++)
		p->pairs[i].client = p->pairs[i].upstream = -1;
	snprintf(p->path, sizeof(p->path), "%s/proxy.sock", redis.dir);
	snprintf(p->url, sizeof(p->url), "unix://%s", p->path);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(p->path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, p->path, strlen(p->path) + 1);
	unlink(p->path);
	p->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(p->listen_fd, 16) < 0 || pipe(p->stop_pipe) < 0)
		return -1;
	return pthread_create(&p->thread, NULL, proxy_main, p) == 0 ? 0 : -1;
}

static void proxy_stop(struct proxy *p)
{
	close(p->stop_pipe[1]);
	pthread_join(p->thread, NULL);
	close(p->stop_pipe[0]);
	close(p->listen_fd);
	for (int i = 0; i < PROXY_PAIRS; i++) {
		if (p->pairs[i].client >= 0)
			close_pair(p, i);
	}
	unlink(p->path);
}

/* ------------------------------------------------------------------ helpers */

static struct token_store *open_store(const char *url)
{
	struct store_options o = {.url = url, .prefix = "r:", .timeout_ms = 2000};
	struct token_store *s;
	const char *error;
	assert_int_equal(store_open(&o, &s, &error), 0);
	return s;
}

static void issue(struct token_store *s, const char *jid, long long uses,
		  char token[TOKEN_LEN + 1])
{
	struct store_issue_request req = {.jid = jid, .services = "imap", .ttl = 600,
					  .max_uses = uses, .max_per_user = 100};
	const char *error;
	assert_int_equal(store_issue(s, &req, token, NULL, &error), STORE_OK);
}

static long long uses_of(const char *token)
{
	char hash[TOKEN_HASH_HEX_LEN + 1];
	token_hash_hex(token, strlen(token), hash);
	redisContext *c = redisConnectUnix(redis.socket);
	assert_non_null(c);
	redisReply *r = redisCommand(c, "HGET r:token:%s uses", hash);
	assert_non_null(r);
	long long v = r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : -1;
	freeReplyObject(r);
	redisFree(c);
	return v;
}

static int setup(void **state)
{
	return test_redis_start(&redis);
}

static int teardown(void **state)
{
	test_redis_cleanup(&redis);
	return 0;
}

/* ------------------------------------------------------------------ tests */

/* Static: a failed assertion leaves the test early, and the proxy thread must not then
 * point into a dead stack frame. */
static struct proxy p;

static void test_lost_reply_counts_one_use(void **state)
{
	assert_int_equal(proxy_start(&p), 0);
	struct token_store *direct = open_store(redis.url);
	struct token_store *s = open_store(p.url);
	char token[TOKEN_LEN + 1];
	const char *error;
	issue(direct, "lou@example.org", 3, token);
	/* Redis knows the verify scripts (so EVALSHA, not the NOSCRIPT fallback, is lost). */
	char warm[TOKEN_LEN + 1];
	char *who = NULL;
	issue(direct, "lou@example.org", 0, warm);
	assert_int_equal(store_verify(direct, warm, strlen(warm), "lou@example.org", "imap", NULL,
				      &error),
			 STORE_OK);
	assert_int_equal(store_verify_owner(direct, warm, strlen(warm), "imap", &who, NULL,
					    &error),
			 STORE_OK);
	free(who);

	/* The store's connection is up and idle, as a pooled one is. */
	assert_int_equal(store_ping(s, &error), STORE_OK);
	atomic_store(&p.mode, PROXY_LOSE_NEXT_REPLY);
	enum store_result r = store_verify(s, token, strlen(token), "lou@example.org", "imap",
					   NULL, &error);
	assert_int_equal(atomic_load(&p.lost), 1);
	/* The script ran once: one use, and the caller hears "unavailable", not a second
	 * run's answer. */
	assert_int_equal(uses_of(token), 1);
	assert_int_equal(r, STORE_UNAVAILABLE);

	/* The next call reconnects and works. */
	assert_int_equal(store_verify(s, token, strlen(token), "lou@example.org", "imap", NULL,
				      &error),
			 STORE_OK);
	assert_int_equal(uses_of(token), 2);

	/* A lost reply from the owner-only head (no user named) is the same. */
	atomic_store(&p.mode, PROXY_LOSE_NEXT_REPLY);
	char *owner = NULL;
	assert_int_equal(store_verify_owner_in(s, token, strlen(token), "imap", "example.org",
					       &owner, NULL, &error),
			 STORE_UNAVAILABLE);
	assert_null(owner);
	assert_int_equal(atomic_load(&p.lost), 2);
	/* The third and last use deleted the record. */
	assert_int_equal(uses_of(token), -1);
	store_free(s);
	store_free(direct);
	proxy_stop(&p);
}

/* Redis closing an idle connection (a restart, CLIENT KILL, its idle timeout) is noticed
 * before the next command is sent: that command then runs once on a new connection. */
static void test_closed_idle_connection_is_replaced(void **state)
{
	struct token_store *s = open_store(redis.url);
	char token[TOKEN_LEN + 1];
	const char *error;
	issue(s, "ida@example.org", 5, token);
	assert_int_equal(store_verify(s, token, strlen(token), "ida@example.org", "imap", NULL,
				      &error),
			 STORE_OK);
	redisContext *c = redisConnectUnix(redis.socket);
	assert_non_null(c);
	redisReply *r = redisCommand(c, "CLIENT KILL TYPE normal SKIPME yes");
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_INTEGER);
	assert_true(r->integer >= 1);
	freeReplyObject(r);
	redisFree(c);
	assert_int_equal(store_verify(s, token, strlen(token), "ida@example.org", "imap", NULL,
				      &error),
			 STORE_OK);
	assert_int_equal(uses_of(token), 2);

	/* A restart (Redis empties here: no persistence) is the same: no failed call. */
	test_redis_stop(&redis);
	assert_int_equal(test_redis_start(&redis), 0);
	assert_int_equal(store_verify(s, token, strlen(token), "ida@example.org", "imap", NULL,
				      &error),
			 STORE_INVALID);
	issue(s, "ida@example.org", 5, token);
	assert_int_equal(store_verify(s, token, strlen(token), "ida@example.org", "imap", NULL,
				      &error),
			 STORE_OK);
	assert_int_equal(uses_of(token), 1);
	store_free(s);
}

/* The owner-only verification with a domain refuses another domain's owner before it
 * counts anything; without a domain any owner passes. */
static void test_owner_domain_checked_first(void **state)
{
	struct token_store *s = open_store(redis.url);
	char token[TOKEN_LEN + 1];
	const char *error;
	char *owner = NULL;
	issue(s, "odo@other.org", 2, token);
	assert_int_equal(store_verify_owner_in(s, token, strlen(token), "imap", "example.org",
					       &owner, NULL, &error),
			 STORE_INVALID);
	assert_string_equal(error, "the token belongs to a user of another domain");
	assert_null(owner);
	assert_int_equal(uses_of(token), 0);
	/* A domain that merely ends the same way is another domain. */
	assert_int_equal(store_verify_owner_in(s, token, strlen(token), "imap", "her.org",
					       &owner, NULL, &error),
			 STORE_INVALID);
	assert_int_equal(uses_of(token), 0);
	assert_int_equal(store_verify_owner_in(s, token, strlen(token), "imap", "other.org",
					       &owner, NULL, &error),
			 STORE_OK);
	assert_string_equal(owner, "odo@other.org");
	free(owner);
	assert_int_equal(uses_of(token), 1);
	assert_int_equal(store_verify_owner(s, token, strlen(token), "imap", &owner, NULL,
					    &error),
			 STORE_OK);
	free(owner);
	assert_int_equal(uses_of(token), -1);
	store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_owner_domain_checked_first),
		cmocka_unit_test(test_lost_reply_counts_one_use),
		cmocka_unit_test(test_closed_idle_connection_is_replaced),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
