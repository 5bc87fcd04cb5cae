/* The SASL plugin through libsasl2's server API, in this process: many threads
 * authenticating at once, a forked child that must not share its parent's Redis
 * connection, and Redis going away and coming back (a temporary failure, never a
 * success). The plugin is loaded from the build folder; options come from a getopt
 * callback, as an application's config file would give them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sasl/sasl.h>

#include "redis_fixture.h"
#include "store.h"
#include "token.h"

#define THREADS 8
#define PER_THREAD 50
#define SERVICE "imap"

static struct test_redis redis;
static char tokens[THREADS][TOKEN_LEN + 1];
static char plugin_path[1024];

static int getopt_cb(void *context, const char *plugin_name, const char *option,
		     const char **result, unsigned *len)
{
	if (strcmp(option, "samlgw_redis") == 0)
		*result = redis.url;
	else if (strcmp(option, "samlgw_timeout_ms") == 0)
		*result = "300";
	else if (strcmp(option, "mech_list") == 0)
		*result = "OAUTHBEARER XOAUTH2";
	else
		return SASL_FAIL;
	if (len != NULL)
		*len = (unsigned)strlen(*result);
	return SASL_OK;
}

static int getpath_cb(void *context, const char **path)
{
	*path = plugin_path;
	return SASL_OK;
}

/* libsasl2 stores every callback as int (*)(void); void (*)(void) is the generic step. */
#define SASL_CB_PROC(f) ((int (*)(void))(void (*)(void))(f))

static sasl_callback_t callbacks[] = {
	{SASL_CB_GETOPT, SASL_CB_PROC(getopt_cb), NULL},
	{SASL_CB_GETPATH, SASL_CB_PROC(getpath_cb), NULL},
	{SASL_CB_LIST_END, NULL, NULL},
};

static void jid_of(int i, char *out, size_t size)
{
	snprintf(out, size, "user%d@example.org", i);
}

/* One OAUTHBEARER exchange; returns the final libsasl status. A refused token must come
 * with the error challenge, which is answered with \x01. */
static int authenticate(const char *jid, const char *token)
{
	sasl_conn_t *conn;
	if (sasl_server_new(SERVICE, "localhost", NULL, NULL, NULL, NULL, 0, &conn) != SASL_OK)
		return SASL_FAIL;
	char msg[512];
	int n = snprintf(msg, sizeof(msg), "n,a=%s,\x01" "auth=Bearer %s\x01\x01", jid, token);
	const char *out;
	unsigned outlen;
	int r = sasl_server_start(conn, "OAUTHBEARER", msg, (unsigned)n, &out, &outlen);
	if (r == SASL_CONTINUE) {
		if (outlen == 0 || strstr(out, "\"status\":\"invalid_token\"") == NULL)
			r = SASL_FAIL;
		else
			r = sasl_server_step(conn, "\x01", 1, &out, &outlen);
	}
	if (r == SASL_OK) {
		const void *user = NULL;
		if (sasl_getprop(conn, SASL_USERNAME, &user) != SASL_OK || user == NULL ||
		    strcmp(user, jid) != 0)
			r = SASL_FAIL;
	}
	sasl_dispose(&conn);
	return r;
}

static int setup(void **state)
{
	const char *dir = getenv("SAMLGW_SASL_PLUGIN_DIR");
	const char *sys = getenv("SAMLGW_SASL_SYSTEM_DIR");
	if (dir == NULL || sys == NULL) {
		fprintf(stderr, "set SAMLGW_SASL_PLUGIN_DIR and SAMLGW_SASL_SYSTEM_DIR\n");
		return -1;
	}
	/* The system folder brings the auxprop plugin libsasl2 consults after canon_user.
	 * The plugin folder is listed twice, as a careless sasl2 path might: libsasl2 then
	 * loads the same file twice, and each load must keep its own context (under the
	 * asan and valgrind setups, sasl_server_done in teardown proves no double free). */
	snprintf(plugin_path, sizeof(plugin_path), "%s:%s:%s", dir, dir, sys);
	if (test_redis_start(&redis) < 0)
		return -1;
	struct store_options so = {.url = redis.url, .prefix = "samlgw:", .timeout_ms = 2000};
	struct token_store *store;
	const char *error;
	if (store_open(&so, &store, &error) < 0)
		return -1;
	for (int i = 0; i < THREADS; i++) {
		char jid[64];
		jid_of(i, jid, sizeof(jid));
		struct store_issue_request req = {.jid = jid, .services = SERVICE, .ttl = 3600,
						  .max_per_user = 10};
		if (store_issue(store, &req, tokens[i], NULL, &error) != STORE_OK) {
			fprintf(stderr, "issue: %s\n", error);
			store_free(store);
			return -1;
		}
	}
	store_free(store);
	return sasl_server_init(callbacks, "samlgw-test") == SASL_OK ? 0 : -1;
}

static int teardown(void **state)
{
	sasl_server_done();
	test_redis_cleanup(&redis);
	/* libsasl2 has unloaded the plugin: the store pool's fork handlers must have gone
	 * with it, or this fork would run code that is no longer mapped. */
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0)
		return -1;
	return 0;
}

static void test_mechanisms_listed(void **state)
{
	sasl_conn_t *conn;
	assert_int_equal(sasl_server_new(SERVICE, "localhost", NULL, NULL, NULL, NULL, 0, &conn),
			 SASL_OK);
	const char *list;
	unsigned len;
	int count;
	assert_int_equal(sasl_listmech(conn, NULL, "", " ", "", &list, &len, &count), SASL_OK);
	assert_non_null(strstr(list, "OAUTHBEARER"));
	assert_non_null(strstr(list, "XOAUTH2"));
	sasl_dispose(&conn);
}

static void *thread_main(void *arg)
{
	int i = (int)(intptr_t)arg;
	char jid[64], other[64];
	jid_of(i, jid, sizeof(jid));
	jid_of((i + 1) % THREADS, other, sizeof(other));
	intptr_t failures = 0;
	for (int k = 0; k < PER_THREAD; k++) {
		failures += authenticate(jid, tokens[i]) != SASL_OK;
		/* Someone else's token is refused, with the error challenge. */
		if (k % 10 == 0)
			failures += authenticate(other, tokens[i]) != SASL_BADAUTH;
	}
	return (void *)failures;
}

static void test_threads(void **state)
{
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, thread_main, (void *)(intptr_t)i), 0);
	intptr_t failures = 0;
	for (int i = 0; i < THREADS; i++) {
		void *f;
		pthread_join(t[i], &f);
		failures += (intptr_t)f;
	}
	assert_int_equal(failures, 0);
}

static void test_fork(void **state)
{
	char jid[64];
	jid_of(0, jid, sizeof(jid));
	/* The parent holds a live pooled connection when it forks. */
	assert_int_equal(authenticate(jid, tokens[0]), SASL_OK);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int bad = 0;
		for (int k = 0; k < 30; k++)
			bad += authenticate(jid, tokens[0]) != SASL_OK;
		_exit(bad == 0 ? 0 : 1);
	}
	int bad = 0;
	for (int k = 0; k < 30; k++)
		bad += authenticate(jid, tokens[0]) != SASL_OK;
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(bad, 0);
}

static void test_redis_restart(void **state)
{
	char jid[64];
	jid_of(1, jid, sizeof(jid));
	assert_int_equal(authenticate(jid, tokens[1]), SASL_OK);
	/* Redis keeps nothing on disk here, so the restart also empties it. */
	test_redis_stop(&redis);
	assert_int_equal(authenticate(jid, tokens[1]), SASL_UNAVAIL);
	assert_int_equal(authenticate(jid, tokens[1]), SASL_UNAVAIL);
	assert_int_equal(test_redis_start(&redis), 0);
	/* The pooled connections are dead; the plugin reconnects. The token is gone. */
	assert_int_equal(authenticate(jid, tokens[1]), SASL_BADAUTH);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mechanisms_listed),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_fork),
		cmocka_unit_test(test_redis_restart),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
