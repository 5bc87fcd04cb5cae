/* A private redis-server for unit tests (see redis_fixture.h). */
#include "redis_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

static redisContext *connect_fixture(struct test_redis *r)
{
	struct timeval tv = {1, 0};
	redisContext *c = redisConnectUnixWithTimeout(r->socket, tv);
	if (c != NULL && c->err) {
		redisFree(c);
		return NULL;
	}
	return c;
}

int test_redis_start(struct test_redis *r)
{
	if (r->dir[0] == '\0') {
		snprintf(r->dir, sizeof(r->dir), "/tmp/samlgw-test-XXXXXX");
		if (mkdtemp(r->dir) == NULL) {
			perror("mkdtemp");
			return -1;
		}
		snprintf(r->socket, sizeof(r->socket), "%s/redis.sock", r->dir);
		snprintf(r->url, sizeof(r->url), "unix://%s", r->socket);
	}
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0)
			dup2(null, 1);
		execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", r->socket,
		       "--save", "", "--appendonly", "no", "--dir", r->dir, (char *)NULL);
		perror("redis-server");
		_exit(127);
	}
	r->pid = pid;
	for (int i = 0; i < 500; i++) {
		redisContext *c = connect_fixture(r);
		if (c != NULL) {
			redisReply *rep = redisCommand(c, "PING");
			int ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
			freeReplyObject(rep);
			redisFree(c);
			if (ok)
				return 0;
		}
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "redis-server exited early\n");
			r->pid = 0;
			return -1;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "redis-server did not come up\n");
	test_redis_stop(r);
	return -1;
}

void test_redis_stop(struct test_redis *r)
{
	if (r->pid > 0) {
		kill(r->pid, SIGKILL);
		waitpid(r->pid, NULL, 0);
		r->pid = 0;
	}
	unlink(r->socket);
}

void test_redis_cleanup(struct test_redis *r)
{
	test_redis_stop(r);
	if (r->dir[0] != '\0') {
		char path[192];
		snprintf(path, sizeof(path), "%s/dump.rdb", r->dir);
		unlink(path);
		rmdir(r->dir);
		r->dir[0] = '\0';
	}
}

long long test_redis_int(struct test_redis *r, const char *fmt, ...)
{
	redisContext *c = connect_fixture(r);
	if (c == NULL)
		return -1;
	va_list ap;
	va_start(ap, fmt);
	redisReply *rep = redisvCommand(c, fmt, ap);
	va_end(ap);
	long long v = -1;
	if (rep != NULL && rep->type == REDIS_REPLY_INTEGER)
		v = rep->integer;
	freeReplyObject(rep);
	redisFree(c);
	return v;
}
