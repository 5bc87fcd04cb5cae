/* The saslauthd socket server of samlgw-authd (see authd_saslauthd.h).
 *
 * Each worker thread polls the listening socket and a stop pipe, accepts one connection,
 * reads one request (SASLAUTHD_REQUEST_MAX bytes at most, within IO_TIMEOUT_MS), answers
 * it and closes. Many clients are served at once, one per worker; more wait in the
 * listen backlog. A slow client holds its worker for the timeout at most. */
#include "authd_saslauthd.h"
#include "log.h"
#include "saslauthd_proto.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_MS 5000

struct worker {
	struct saslauthd_server *server;
	pthread_t thread;
	bool started;
};

struct saslauthd_server {
	int listen_fd;
	int stop_pipe[2];
	const struct authd_settings *settings;
	struct worker *workers;
	unsigned n_workers;
};

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for events or the deadline passes. */
static bool wait_fd(int fd, short events, long long deadline)
{
	for (;;) {
		long long left = deadline - now_ms();
		if (left <= 0)
			return false;
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, (int)left);
		if (n > 0)
			return true;
		if (n < 0 && errno != EINTR)
			return false;
	}
}

static void send_all(int fd, const uint8_t *data, size_t len, long long deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			data += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_fd(fd, POLLOUT, deadline))
			continue;
		return;
	}
}

static void answer(struct token_store *store, const struct authd_settings *settings,
		   const struct saslauthd_request *req, uint8_t out[SASLAUTHD_RESPONSE_MAX],
		   size_t *out_len)
{
	char *jid = NULL;
	const char *error = NULL;
	enum store_result r = authd_check(store, settings, req->login, req->realm, req->service,
					  req->password, &jid, &error);
	const char *result = r == STORE_OK ? "ok" : r == STORE_INVALID ? "refused" : "unavailable";
	log_event(r == STORE_UNAVAILABLE ? LOG_LEVEL_ERROR : LOG_LEVEL_INFO, "auth",
		  "protocol", "saslauthd", "result", result, "user", jid != NULL ? jid : req->login,
		  "service", req->service, "client", req->client_addr[0] ? req->client_addr : NULL,
		  "reason", r == STORE_OK ? NULL : error, NULL);
	free(jid);
	*out_len = saslauthd_response(r == STORE_OK, r == STORE_OK ? NULL
					  : r == STORE_INVALID ? "authentication failed"
							       : "the token store is unavailable",
				      out);
}

static void serve(int fd, struct token_store *store, const struct authd_settings *settings)
{
	uint8_t buf[SASLAUTHD_REQUEST_MAX];
	size_t len = 0;
	long long deadline = now_ms() + IO_TIMEOUT_MS;
	struct saslauthd_request req;
	const char *error = NULL;
	enum saslauthd_parse_result parsed = SASLAUTHD_NEED_MORE;
	while (parsed == SASLAUTHD_NEED_MORE && len < sizeof(buf)) {
		ssize_t n = recv(fd, buf + len, sizeof(buf) - len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!wait_fd(fd, POLLIN, deadline)) {
				error = "the client sent no complete request in time";
				break;
			}
			continue;
		}
		if (n <= 0) {
			error = "the client closed before a complete request";
			break;
		}
		len += (size_t)n;
		parsed = saslauthd_request_parse(buf, len, &req, &error);
	}
	secret_wipe(buf, sizeof(buf));
	if (parsed != SASLAUTHD_COMPLETE) {
		log_event(LOG_LEVEL_WARN, "bad_request", "protocol", "saslauthd", "reason",
			  error != NULL ? error : "the request is larger than the limit", NULL);
		return;
	}
	uint8_t out[SASLAUTHD_RESPONSE_MAX];
	size_t out_len;
	answer(store, settings, &req, out, &out_len);
	saslauthd_request_clear(&req);
	send_all(fd, out, out_len, deadline);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct saslauthd_server *s = w->server;
	struct token_store *store;
	const char *error;
	if (store_open(&s->settings->store, &store, &error) < 0)
		abort(); /* the options were checked before the workers started */
	for (;;) {
		struct pollfd p[2] = {{.fd = s->listen_fd, .events = POLLIN},
				      {.fd = s->stop_pipe[0], .events = POLLIN}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents != 0)
			break;
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				log_event(LOG_LEVEL_ERROR, "accept_failed", "error", strerror(errno),
					  NULL);
				poll(NULL, 0, 100);
			}
			continue; /* EAGAIN: another worker took it */
		}
		serve(fd, store, s->settings);
		close(fd);
	}
	store_free(store);
	return NULL;
}

int saslauthd_server_start(int listen_fd, const struct authd_settings *settings,
			   unsigned threads, struct saslauthd_server **server_r,
			   const char **error_r)
{
	struct token_store *probe;
	if (store_open(&settings->store, &probe, error_r) < 0)
		return -1;
	store_free(probe);
	int fl = fcntl(listen_fd, F_GETFL);
	if (fl < 0 || fcntl(listen_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		*error_r = "cannot make the listening socket non-blocking";
		return -1;
	}
	struct saslauthd_server *s = xcalloc(1, sizeof(*s));
	s->listen_fd = listen_fd;
	s->settings = settings;
	if (pipe2(s->stop_pipe, O_CLOEXEC) < 0) {
		free(s);
		*error_r = "cannot make a pipe";
		return -1;
	}
	s->workers = xcalloc(threads, sizeof(*s->workers));
	s->n_workers = threads;
	for (unsigned i = 0; i < threads; i++) {
		s->workers[i].server = s;
		if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
			saslauthd_server_stop(s);
			*error_r = "cannot start worker threads";
			return -1;
		}
		s->workers[i].started = true;
	}
	*server_r = s;
	return 0;
}

void saslauthd_server_stop(struct saslauthd_server *s)
{
	if (s == NULL)
		return;
	/* The pipe's write end closing wakes every worker's poll. */
	close(s->stop_pipe[1]);
	for (unsigned i = 0; i < s->n_workers; i++) {
		if (s->workers[i].started)
			pthread_join(s->workers[i].thread, NULL);
	}
	close(s->stop_pipe[0]);
	free(s->workers);
	free(s);
}
