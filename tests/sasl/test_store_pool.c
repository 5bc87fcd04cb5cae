/* The SASL plugin's store pool under fork(): hosts such as Cyrus IMAP and slapd may fork
 * while another thread is inside the pool. The child must still get working stores
 * (never the parent's Redis connection) and must never wait on a lock that a thread that
 * does not exist in the child held at the moment of fork. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "redis_fixture.h"
#include "store.h"
#include "store_pool.h"

#define HAMMERS 2
#define FORKS 40

static struct test_redis redis;
static struct store_pool *pool;
static atomic_bool stop;
static atomic_int running; /* hammers past their start */

static int setup(void **state)
{
	if (test_redis_start(&redis) < 0)
		return -1;
	struct store_options o = {.url = redis.url, .prefix = "p:", .timeout_ms = 2000};
	const char *error;
	return store_pool_new(&o, 2 * HAMMERS, &pool, &error);
}

static int teardown(void **state)
{
	store_pool_free(pool);
	test_redis_cleanup(&redis);
	return 0;
}

/* Takes and gives back stores as fast as it can, so the pool's lock is held much of the
 * time: a fork() then often lands while this thread holds it. */
static void *hammer(void *arg)
{
	atomic_fetch_add(&running, 1);
	while (!atomic_load(&stop)) {
		struct token_store *a = store_pool_take(pool);
		struct token_store *b = store_pool_take(pool);
		if (a != NULL)
			store_pool_give(pool, a);
		if (b != NULL)
			store_pool_give(pool, b);
	}
	return NULL;
}

/* In the child: the pool must hand out stores that reach Redis on their own connection.
 * A child stuck on the pool's lock is ended by the alarm and counts as a failure. */
static int child_checks(void)
{
	alarm(5);
	const char *error;
	for (int i = 0; i < 3; i++) {
		struct token_store *s = store_pool_take(pool);
		if (s == NULL || store_ping(s, &error) != STORE_OK)
			return 1;
		store_pool_give(pool, s);
	}
	/* A thread started in the child uses the pool too. */
	pthread_t t;
	atomic_store(&stop, false);
	if (pthread_create(&t, NULL, hammer, NULL) != 0)
		return 1;
	struct token_store *s = store_pool_take(pool);
	int bad = s == NULL || store_ping(s, &error) != STORE_OK;
	if (s != NULL)
		store_pool_give(pool, s);
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	store_pool_free(pool);
	pool = NULL;
	return bad;
}

/* The child reports through a pipe and ends with SIGKILL: the stores the parent's threads
 * had taken out at the moment of fork belong to threads that do not exist in the child,
 * and a leak check at its exit (valgrind checks forked children too) would report them. */
static void child(int report_fd)
{
	char result = (char)('0' + child_checks());
	if (write(report_fd, &result, 1) != 1)
		_exit(1);
	raise(SIGKILL);
	_exit(1);
}

static void test_fork_while_another_thread_holds_the_pool(void **state)
{
	/* Connected stores sit in the pool when the process forks, as many as the hammers
	 * take at once: they then take and give without allocating, so that a fork never
	 * lands inside the allocator (AddressSanitizer's is not fork-safe; glibc's is). */
	const char *error;
	struct token_store *held[2 * HAMMERS];
	for (int i = 0; i < 2 * HAMMERS; i++) {
		held[i] = store_pool_take(pool);
		assert_non_null(held[i]);
		assert_int_equal(store_ping(held[i], &error), STORE_OK);
	}
	for (int i = 0; i < 2 * HAMMERS; i++)
		store_pool_give(pool, held[i]);
	struct token_store *s;

	atomic_store(&stop, false);
	pthread_t t[HAMMERS];
	for (int i = 0; i < HAMMERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
	/* A thread still starting up may be inside the allocator. */
	while (atomic_load(&running) < HAMMERS)
		sched_yield();
	int stuck = 0, failed = 0;
	for (int k = 0; k < FORKS; k++) {
		int report[2];
		assert_int_equal(pipe(report), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(report[0]);
			child(report[1]);
		}
		close(report[1]);
		char result = 0;
		ssize_t n = read(report[0], &result, 1);
		close(report[0]);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
			stuck++;
		else if (n != 1 || result != '0')
			failed++;
		if (stuck > 0 || failed > 0)
			break;
	}
	atomic_store(&stop, true);
	for (int i = 0; i < HAMMERS; i++)
		pthread_join(t[i], NULL);
	if (stuck > 0 || failed > 0)
		fail_msg("a child %s", stuck > 0 ? "was stuck on the pool's lock" : "failed");

	/* The parent's pool still works. */
	s = store_pool_take(pool);
	assert_non_null(s);
	assert_int_equal(store_ping(s, &error), STORE_OK);
	store_pool_give(pool, s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fork_while_another_thread_holds_the_pool),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
