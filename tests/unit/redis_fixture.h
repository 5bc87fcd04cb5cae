/* A private redis-server for unit tests: unix socket in a temp dir, no persistence. */
#ifndef SAMLGW_TEST_REDIS_FIXTURE_H
#define SAMLGW_TEST_REDIS_FIXTURE_H

#include <sys/types.h>

struct test_redis {
	char dir[64];
	char socket[128];
	char url[160];
	pid_t pid;
};

/* Start redis-server and wait until it answers; returns 0 or -1 (message on stderr). */
int test_redis_start(struct test_redis *r);
/* Stop it (SIGTERM, wait) keeping the socket path, or remove everything with cleanup. */
void test_redis_stop(struct test_redis *r);
void test_redis_cleanup(struct test_redis *r);
/* Run one Redis command given as a format; returns the reply integer or -1. */
long long test_redis_int(struct test_redis *r, const char *fmt, ...);

#endif
