/* acs-load: POSTs pre-built SAMLResponse form bodies to samlgw's ACS from N threads, each
 * over its own keep-alive HTTP/1.1 connection, and prints one line with the rate, latency
 * percentiles and the client's own CPU use (so a saturated client shows):
 *
 *   acs-load --port P --bodies FILE --threads N [--host 127.0.0.1] [--path /saml/acs]
 *            [--expect 303]
 *
 * FILE holds one form body per line ("SAMLResponse=…", URL-encoded). Thread i sends lines
 * i, i+N, i+2N, …, each once. Every answer must carry the --expect status; anything else
 * is counted as a failure and makes the exit status 1. Loopback only. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES (512 * 1024)
#define THREADS_MAX 64

struct opts {
	const char *host, *path, *bodies;
	int port, threads, expect;
};

struct worker {
	pthread_t tid;
	const struct opts *o;
	char **bodies;
	size_t n_bodies, first;
	double *lat; /* seconds, one per request */
	size_t done, failures;
	int first_bad_status;
	char error[160];
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_to(const struct opts *o)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
	if (inet_pton(AF_INET, o->host, &sa.sin_addr) != 1 ||
	    (ntohl(sa.sin_addr.s_addr) >> 24) != 127)
		return -1; /* loopback only */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Head and body in one writev, as a reverse proxy sends a request on: one segment and one
 * wake-up of the server where two writes would make two. */
static int write_request(int fd, const char *head, size_t head_len, const char *body,
			 size_t body_len)
{
	struct iovec iov[2] = {{(void *)head, head_len}, {(void *)body, body_len}};
	int n = 2;
	struct iovec *v = iov;
	while (n > 0) {
		ssize_t w = writev(fd, v, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		size_t left = (size_t)w;
		while (n > 0 && left >= v->iov_len) {
			left -= v->iov_len;
			v++;
			n--;
		}
		if (n > 0) {
			v->iov_base = (char *)v->iov_base + left;
			v->iov_len -= left;
		}
	}
	return 0;
}

/* One request/answer on fd; returns the status, or -1 on a broken connection. *close_r
 * is set when the server closes after this answer. */
static int exchange(int fd, const struct opts *o, const char *body, char *buf, size_t cap,
		    int *close_r)
{
	size_t blen = strlen(body);
	char head[512];
	int hl = snprintf(head, sizeof(head),
			  "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
			  "Content-Type: application/x-www-form-urlencoded\r\n"
			  "Content-Length: %zu\r\n\r\n",
			  o->path, o->host, o->port, blen);
	if (write_request(fd, head, (size_t)hl, body, blen) < 0)
		return -1;
	size_t have = 0;
	char *end = NULL;
	while (end == NULL) {
		if (have + 1 >= cap)
			return -1;
		ssize_t r = read(fd, buf + have, cap - 1 - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		have += (size_t)r;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	int status = 0;
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	size_t clen = 0;
	*close_r = 0;
	for (char *l = strstr(buf, "\r\n"); l != NULL && l < end; l = strstr(l + 2, "\r\n")) {
		if (strncasecmp(l + 2, "Content-Length:", 15) == 0)
			clen = strtoul(l + 17, NULL, 10);
		else if (strncasecmp(l + 2, "Connection: close", 17) == 0)
			*close_r = 1;
	}
	size_t got = have - (size_t)(end + 4 - buf);
	while (got < clen) {
		ssize_t r = read(fd, buf, cap);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return status;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	size_t cap = 256 * 1024;
	char *buf = malloc(cap);
	int fd = -1;
	for (size_t i = w->first; i < w->n_bodies; i += (size_t)w->o->threads) {
		if (fd < 0 && (fd = connect_to(w->o)) < 0) {
			snprintf(w->error, sizeof(w->error), "cannot connect to %s:%d", w->o->host,
				 w->o->port);
			break;
		}
		int closing = 0;
		double t0 = now_s();
		int status = exchange(fd, w->o, w->bodies[i], buf, cap, &closing);
		w->lat[w->done++] = now_s() - t0;
		if (status != w->o->expect) {
			w->failures++;
			if (w->first_bad_status == 0)
				w->first_bad_status = status;
		}
		if (status < 0 || closing) {
			close(fd);
			fd = -1;
		}
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int usage(void)
{
	fprintf(stderr, "usage: acs-load --port P --bodies FILE --threads N [--host 127.0.0.1] "
			"[--path /saml/acs] [--expect 303]\n");
	return 64;
}

int main(int argc, char **argv)
{
	struct opts o = {.host = "127.0.0.1", .path = "/saml/acs", .threads = 1, .expect = 303};
	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			return usage();
		if (strcmp(argv[i], "--host") == 0)
			o.host = argv[++i];
		else if (strcmp(argv[i], "--path") == 0)
			o.path = argv[++i];
		else if (strcmp(argv[i], "--bodies") == 0)
			o.bodies = argv[++i];
		else if (strcmp(argv[i], "--port") == 0)
			o.port = atoi(argv[++i]);
		else if (strcmp(argv[i], "--threads") == 0)
			o.threads = atoi(argv[++i]);
		else if (strcmp(argv[i], "--expect") == 0)
			o.expect = atoi(argv[++i]);
		else
			return usage();
	}
	if (o.bodies == NULL || o.port <= 0 || o.threads < 1 || o.threads > THREADS_MAX)
		return usage();
	FILE *f = fopen(o.bodies, "r");
	if (f == NULL) {
		perror(o.bodies);
		return 2;
	}
	char **bodies = NULL;
	size_t n = 0, cap = 0;
	char *line = malloc(LINE_MAX_BYTES);
	while (fgets(line, LINE_MAX_BYTES, f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			bodies = realloc(bodies, cap * sizeof(*bodies));
		}
		bodies[n++] = strdup(line);
	}
	free(line);
	fclose(f);
	if (n == 0) {
		fprintf(stderr, "acs-load: %s holds no bodies\n", o.bodies);
		return 2;
	}
	struct worker w[THREADS_MAX] = {0};
	double cpu0 = cpu_s(), t0 = now_s();
	for (int i = 0; i < o.threads; i++) {
		w[i] = (struct worker){.o = &o, .bodies = bodies, .n_bodies = n, .first = (size_t)i};
		w[i].lat = calloc(n / (size_t)o.threads + 1, sizeof(double));
		pthread_create(&w[i].tid, NULL, run, &w[i]);
	}
	size_t done = 0, failures = 0;
	int bad = 0;
	const char *error = NULL;
	for (int i = 0; i < o.threads; i++) {
		pthread_join(w[i].tid, NULL);
		done += w[i].done;
		failures += w[i].failures;
		if (bad == 0)
			bad = w[i].first_bad_status;
		if (w[i].error[0] != '\0')
			error = w[i].error;
	}
	double wall = now_s() - t0, cpu = cpu_s() - cpu0;
	double *all = calloc(done + 1, sizeof(double));
	size_t k = 0;
	for (int i = 0; i < o.threads; i++) {
		memcpy(all + k, w[i].lat, w[i].done * sizeof(double));
		k += w[i].done;
		free(w[i].lat);
	}
	qsort(all, done, sizeof(double), cmp_double);
	double p50 = done ? all[(done - 1) / 2] : 0, p99 = done ? all[(done * 99 - 1) / 100] : 0;
	printf("threads=%d requests=%zu seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f "
	       "client_cpu_pct=%.1f failures=%zu first_bad_status=%d\n",
	       o.threads, done, wall, (double)done / wall, p50 * 1e3, p99 * 1e3,
	       100.0 * cpu / wall, failures, bad);
	if (error != NULL)
		fprintf(stderr, "acs-load: %s\n", error);
	free(all);
	for (size_t i = 0; i < n; i++)
		free(bodies[i]);
	free(bodies);
	return failures > 0 || error != NULL || done < n ? 1 : 0;
}
