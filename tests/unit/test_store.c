/* Unit tests of the Redis token store against a real, private redis-server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "redis_fixture.h"
#include "store.h"
#include "util.h"

static struct test_redis redis;

static struct token_store *open_store(const char *url, int timeout_ms)
{
	struct store_options o = {.url = url, .prefix = "t:", .timeout_ms = timeout_ms};
	struct token_store *s;
	const char *error;
	assert_int_equal(store_open(&o, &s, &error), 0);
	return s;
}

static void issue(struct token_store *s, const char *jid, const char *services, long long ttl,
		  long long max_uses, char token[TOKEN_LEN + 1])
{
	struct store_issue_request req = {.jid = jid,
					  .services = services,
					  .ttl = ttl,
					  .label = "laptop",
					  .max_uses = max_uses,
					  .idp = "https://idp.example.org/idp/shibboleth",
					  .max_per_user = 50};
	const char *error = NULL;
	enum store_result r = store_issue(s, &req, token, NULL, &error);
	if (r != STORE_OK)
		fail_msg("issue: %s", error);
}

static enum store_result verify(struct token_store *s, const char *token, const char *jid,
				const char *service, const char **error_r)
{
	return store_verify(s, token, strlen(token), jid, service, NULL, error_r);
}

static int group_setup(void **state)
{
	return test_redis_start(&redis);
}

static int group_teardown(void **state)
{
	test_redis_cleanup(&redis);
	return 0;
}

static void test_lifecycle(void **state)
{
	struct token_store *s = open_store(redis.url, 1000);
	char token[TOKEN_LEN + 1];
	const char *error;
	struct token_info info;
	struct store_issue_request req = {.jid = "alice@example.org",
					  .services = "xmpp,imap",
					  .ttl = 600,
					  .label = "phone",
					  .max_per_user = 50};
	assert_int_equal(store_issue(s, &req, token, &info, &error), STORE_OK);
	assert_int_equal(info.expires - info.issued, 600);
	assert_string_equal(info.label, "phone");
	char id[TOKEN_ID_LEN + 1];
	memcpy(id, info.id, sizeof(id));
	token_info_clear(&info);

	assert_int_equal(store_verify(s, token, strlen(token), "alice@example.org", "imap", &info,
				      &error),
			 STORE_OK);
	assert_string_equal(info.id, id);
	assert_string_equal(info.services, "xmpp,imap");
	token_info_clear(&info);

	struct token_list list;
	assert_int_equal(store_list(s, "alice@example.org", &list, &error), STORE_OK);
	assert_int_equal(list.n, 1);
	assert_string_equal(list.v[0].id, id);
	assert_string_equal(list.v[0].label, "phone");
	token_list_free(&list);

	char hash[TOKEN_HASH_HEX_LEN + 1];
	assert_int_equal(store_revoke(s, "bob@example.org", id, hash, &error), STORE_INVALID);
	assert_int_equal(store_revoke(s, "alice@example.org", id, hash, &error), STORE_OK);
	assert_memory_equal(hash, id, TOKEN_ID_LEN);
	assert_int_equal(verify(s, token, "alice@example.org", "xmpp", &error), STORE_INVALID);
	assert_string_equal(error, "unknown, revoked or used-up token");
	assert_int_equal(store_revoke(s, "alice@example.org", id, hash, &error), STORE_INVALID);
	assert_int_equal(store_list(s, "alice@example.org", &list, &error), STORE_OK);
	assert_int_equal(list.n, 0);
	token_list_free(&list);
	store_free(s);
}

/* Every key and every value in Redis, concatenated. */
static char *dump_everything(void)
{
	redisContext *c = redisConnectUnix(redis.socket);
	assert_non_null(c);
	assert_int_equal(c->err, 0);
	redisReply *keys = redisCommand(c, "KEYS *");
	size_t cap = 1 << 16, len = 0;
	char *out = xcalloc(1, cap);
	for (size_t i = 0; i < keys->elements; i++) {
		const char *k = keys->element[i]->str;
		redisReply *t = redisCommand(c, "TYPE %s", k);
		redisReply *v = NULL;
		if (strcmp(t->str, "hash") == 0)
			v = redisCommand(c, "HGETALL %s", k);
		else if (strcmp(t->str, "zset") == 0)
			v = redisCommand(c, "ZRANGE %s 0 -1 WITHSCORES", k);
		else if (strcmp(t->str, "string") == 0)
			v = redisCommand(c, "GET %s", k);
		else
			fail_msg("unexpected key type %s for %s", t->str, k);
		len += (size_t)snprintf(out + len, cap - len, "%s\n", k);
		for (size_t j = 0; v != NULL && v->type == REDIS_REPLY_ARRAY && j < v->elements; j++)
			len += (size_t)snprintf(out + len, cap - len, "%s\n", v->element[j]->str);
		if (v != NULL && v->type == REDIS_REPLY_STRING)
			len += (size_t)snprintf(out + len, cap - len, "%s\n", v->str);
		assert_true(len < cap);
		freeReplyObject(v);
		freeReplyObject(t);
	}
	freeReplyObject(keys);
	redisFree(c);
	return out;
}

static void test_token_text_never_stored(void **state)
{
	struct token_store *s = open_store(redis.url, 1000);
	char tokens[5][TOKEN_LEN + 1];
	for (int i = 0; i < 5; i++)
		issue(s, "carol@example.org", "xmpp", 600, i, tokens[i]);
	char *all = dump_everything();
	assert_non_null(strstr(all, "carol@example.org"));
	for (int i = 0; i < 5; i++) {
		/* Neither the token nor its random part, nor a large piece of it. */
		assert_null(strstr(all, tokens[i]));
		char part[17];
		memcpy(part, tokens[i] + TOKEN_PREFIX_LEN, 16);
		part[16] = '\0';
		assert_null(strstr(all, part));
	}
	free(all);
	store_free(s);
}

static void test_expiry_without_ttl(void **state)
{
	struct token_store *s = open_store(redis.url, 1000);
	char token[TOKEN_LEN + 1], hash[TOKEN_HASH_HEX_LEN + 1];
	const char *error;
	issue(s, "dave@example.org", "xmpp", 600, 0, token);
	token_hash_hex(token, TOKEN_LEN, hash);
	/* Remove the key's TTL and move the stored expiry into the past. */
	assert_int_equal(test_redis_int(&redis, "PERSIST t:token:%s", hash), 1);
	assert_int_equal(test_redis_int(&redis, "HSET t:token:%s expires 1000", hash), 0);
	assert_int_equal(verify(s, token, "dave@example.org", "xmpp", &error), STORE_INVALID);
	assert_string_equal(error, "the token has expired");
	/* The record is gone, not left behind forever. */
	assert_int_equal(test_redis_int(&redis, "EXISTS t:token:%s", hash), 0);
	store_free(s);
}

static void test_binding(void **state)
{
	struct token_store *s = open_store(redis.url, 1000);
	char token[TOKEN_LEN + 1], any[TOKEN_LEN + 1];
	const char *error;
	issue(s, "erin@example.org", "xmpp", 600, 0, token);
	assert_int_equal(verify(s, token, "erin@example.org", "xmpp", &error), STORE_OK);
	assert_int_equal(verify(s, token, "erin@example.org", "imap", &error), STORE_INVALID);
	assert_string_equal(error, "the token is not valid for service imap");
	assert_int_equal(verify(s, token, "frank@example.org", "xmpp", &error), STORE_INVALID);
	assert_string_equal(error, "the token belongs to another user");
	issue(s, "erin@example.org", "*", 600, 0, any);
	assert_int_equal(verify(s, any, "erin@example.org", "ldap", &error), STORE_OK);
	/* Unlimited tokens keep working and are not counted. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(verify(s, token, "erin@example.org", "xmpp", &error), STORE_OK);
	/* A malformed token is refused without asking Redis. */
	token[10] = token[10] == 'a' ? 'b' : 'a';
	assert_int_equal(verify(s, token, "erin@example.org", "xmpp", &error), STORE_INVALID);
	assert_string_equal(error, "not a samlgw token (wrong length, alphabet or check)");
	store_free(s);
}

static void test_verify_owner(void **state)
{
	struct token_store *s = open_store(redis.url, 1000);
	char token[TOKEN_LEN + 1], hash[TOKEN_HASH_HEX_LEN + 1];
	const char *error;
	char *owner = NULL;
	struct token_info info;
	issue(s, "lena@example.org", "imap", 600, 2, token);
	assert_int_equal(store_verify_owner(s, token, strlen(token), "imap", &owner, &info, &error),
			 STORE_OK);
	assert_string_equal(owner, "lena@example.org");
	assert_int_equal(info.uses, 1);
	token_info_clear(&info);
	free(owner);
	assert_int_equal(store_verify_owner(s, token, strlen(token), "smtp", &owner, NULL, &error),
			 STORE_INVALID);
	assert_string_equal(error, "the token is not valid for service smtp");
	/* The last use deletes the record and its entry in the owner's index. */
	assert_int_equal(store_verify_owner(s, token, strlen(token), "imap", &owner, NULL, &error),
			 STORE_OK);
	free(owner);
	assert_int_equal(store_verify_owner(s, token, strlen(token), "imap", &owner, NULL, &error),
			 STORE_INVALID);
	token_hash_hex(token, TOKEN_LEN, hash);
	assert_int_equal(test_redis_int(&redis, "ZCARD t:user:lena@example.org:tokens"), 0);
	/* Expired: refused, and removed from the owner's index too. */
	issue(s, "lena@example.org", "imap", 600, 0, token);
	token_hash_hex(token, TOKEN_LEN, hash);
	assert_int_equal(test_redis_int(&redis, "HSET t:token:%s expires 1000", hash), 0);
	assert_int_equal(store_verify_owner(s, token, strlen(token), "imap", &owner, NULL, &error),
			 STORE_INVALID);
	assert_string_equal(error, "the token has expired");
	assert_int_equal(test_redis_int(&redis, "ZCARD t:user:lena@example.org:tokens"), 0);
	store_free(s);
}

struct racer {
	const char *url;
	const char *token;
	pthread_barrier_t *barrier;
	enum store_result result;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	struct token_store *s = open_store(r->url, 2000);
	const char *error;
	pthread_barrier_wait(r->barrier);
	r->result = verify(s, r->token, "gina@example.org", "xmpp", &error);
	store_free(s);
	return NULL;
}

static void test_max_uses_concurrent(void **state)
{
	struct token_store *s = open_store(redis.url, 1000);
	char token[TOKEN_LEN + 1];
	const char *error;
	issue(s, "gina@example.org", "xmpp", 600, 1, token);
	assert_int_equal(verify(s, token, "gina@example.org", "xmpp", &error), STORE_OK);
	assert_int_equal(verify(s, token, "gina@example.org", "xmpp", &error), STORE_INVALID);

	for (long long uses = 1; uses <= 3; uses += 2) {
		issue(s, "gina@example.org", "xmpp", 600, uses, token);
		enum { N = 20 };
		pthread_t th[N];
		struct racer r[N];
		pthread_barrier_t barrier;
		pthread_barrier_init(&barrier, NULL, N);
		for (int i = 0; i < N; i++) {
			r[i] = (struct racer){.url = redis.url, .token = token, .barrier = &barrier};
			pthread_create(&th[i], NULL, race, &r[i]);
		}
		int ok = 0, invalid = 0;
		for (int i = 0; i < N; i++) {
			pthread_join(th[i], NULL);
			ok += r[i].result == STORE_OK;
			invalid += r[i].result == STORE_INVALID;
		}
		pthread_barrier_destroy(&barrier);
		assert_int_equal(ok, uses);
		assert_int_equal(invalid, N - uses);
	}
	store_free(s);
}

static void test_limits(void **state)
{
	struct token_store *s = open_store(redis.url, 1000);
	char token[TOKEN_LEN + 1];
	const char *error;
	struct store_issue_request req = {
		.jid = "hank@example.org", .services = "xmpp", .ttl = 60, .max_per_user = 2};
	assert_int_equal(store_issue(s, &req, token, NULL, &error), STORE_OK);
	assert_int_equal(store_issue(s, &req, token, NULL, &error), STORE_OK);
	assert_int_equal(store_issue(s, &req, token, NULL, &error), STORE_INVALID);
	assert_string_equal(error, "the user already holds 2 live tokens (token.max_per_user)");
	size_t n;
	assert_int_equal(store_revoke_all(s, "hank@example.org", &n, &error), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(store_issue(s, &req, token, NULL, &error), STORE_OK);

	req.label = "a\nb";
	assert_int_equal(store_issue(s, &req, token, NULL, &error), STORE_INVALID);
	req.label = "an overly long label that goes on and on and on past sixty-four bytes";
	assert_int_equal(store_issue(s, &req, token, NULL, &error), STORE_INVALID);
	req.label = NULL;
	req.ttl = 0;
	assert_int_equal(store_issue(s, &req, token, NULL, &error), STORE_INVALID);
	assert_int_equal(store_revoke(s, "hank@example.org", "xyz", NULL, &error), STORE_INVALID);
	store_free(s);
}

static void test_script_cache_flushed(void **state)
{
	struct token_store *s = open_store(redis.url, 1000);
	char token[TOKEN_LEN + 1];
	const char *error;
	issue(s, "ivan@example.org", "xmpp", 600, 0, token);
	redisContext *c = redisConnectUnix(redis.socket);
	freeReplyObject(redisCommand(c, "SCRIPT FLUSH"));
	redisFree(c);
	assert_int_equal(verify(s, token, "ivan@example.org", "xmpp", &error), STORE_OK);
	store_free(s);
}

static void test_fork(void **state)
{
	struct token_store *s = open_store(redis.url, 1000);
	char token[TOKEN_LEN + 1];
	const char *error;
	issue(s, "judy@example.org", "xmpp", 600, 0, token);
	pid_t pid = fork();
	if (pid == 0) {
		/* The child must not talk over its parent's connection. */
		enum store_result r = verify(s, token, "judy@example.org", "xmpp", &error);
		_exit(r == STORE_OK ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(verify(s, token, "judy@example.org", "xmpp", &error), STORE_OK);
	store_free(s);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Down, hung and refusing Redis are all "unavailable", never "invalid" or "valid";
 * the same store object works again once Redis is back. Runs last: restarts Redis. */
static void test_unavailable(void **state)
{
	struct token_store *s = open_store(redis.url, 300);
	char token[TOKEN_LEN + 1];
	const char *error;
	issue(s, "kim@example.org", "xmpp", 600, 0, token);
	assert_int_equal(verify(s, token, "kim@example.org", "xmpp", &error), STORE_OK);

	kill(redis.pid, SIGSTOP);
	double t0 = now_s();
	assert_int_equal(verify(s, token, "kim@example.org", "xmpp", &error), STORE_UNAVAILABLE);
	assert_non_null(strstr(error, "did not answer in time"));
	/* One timeout, not several (a generous bound: this is not a benchmark). */
	assert_true(now_s() - t0 < 2.0);
	kill(redis.pid, SIGCONT);

	test_redis_stop(&redis);
	assert_int_equal(verify(s, token, "kim@example.org", "xmpp", &error), STORE_UNAVAILABLE);
	assert_non_null(strstr(error, "cannot connect to Redis"));
	struct token_list list;
	size_t n;
	assert_int_equal(store_list(s, "kim@example.org", &list, &error), STORE_UNAVAILABLE);
	assert_int_equal(store_revoke_all(s, "kim@example.org", &n, &error), STORE_UNAVAILABLE);
	assert_int_equal(store_ping(s, &error), STORE_UNAVAILABLE);

	assert_int_equal(test_redis_start(&redis), 0);
	assert_int_equal(store_ping(s, &error), STORE_OK);
	/* The restarted Redis is empty: the old token is unknown, a new one works. */
	assert_int_equal(verify(s, token, "kim@example.org", "xmpp", &error), STORE_INVALID);
	issue(s, "kim@example.org", "xmpp", 600, 0, token);
	assert_int_equal(verify(s, token, "kim@example.org", "xmpp", &error), STORE_OK);

	/* An error reply (here: authentication required) is unavailable too. */
	redisContext *c = redisConnectUnix(redis.socket);
	freeReplyObject(redisCommand(c, "CONFIG SET requirepass hunter2"));
	redisFree(c);
	struct token_store *s2 = open_store(redis.url, 300);
	assert_int_equal(verify(s2, token, "kim@example.org", "xmpp", &error), STORE_UNAVAILABLE);
	store_free(s2);
	char *url = xasprintf("unix://:wrong@%s", redis.socket);
	s2 = open_store(url, 300);
	assert_int_equal(verify(s2, token, "kim@example.org", "xmpp", &error), STORE_UNAVAILABLE);
	assert_non_null(strstr(error, "refused the credentials"));
	assert_null(strstr(error, "wrong"));
	store_free(s2);
	free(url);
	url = xasprintf("unix://:hunter2@%s?db=3", redis.socket);
	s2 = open_store(url, 300);
	issue(s2, "kim@example.org", "xmpp", 600, 0, token);
	assert_int_equal(verify(s2, token, "kim@example.org", "xmpp", &error), STORE_OK);
	store_free(s2);
	free(url);
	store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test(test_token_text_never_stored),
		cmocka_unit_test(test_expiry_without_ttl),
		cmocka_unit_test(test_binding),
		cmocka_unit_test(test_verify_owner),
		cmocka_unit_test(test_max_uses_concurrent),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_script_cache_flushed),
		cmocka_unit_test(test_fork),
		cmocka_unit_test(test_unavailable),
	};
	return cmocka_run_group_tests_name("store", tests, group_setup, group_teardown);
}
