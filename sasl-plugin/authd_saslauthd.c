/* The saslauthd socket server of samlgw-authd (see authd_saslauthd.h).
 *
 * One reader thread accepts connections and reads their requests, all at once, with
 * poll(); only a complete request goes to the worker threads, which check it against the
 * store, answer and close. A client that sends nothing, or a byte now and then, costs a
 * connection slot and no worker, and only until IO_TIMEOUT_MS after it connected: then it
 * is closed without an answer. At most MAX_CONNECTIONS connections are open at once
 * (being read, waiting for a worker or being answered); when a new one arrives and all
 * are taken, the oldest one still being read is closed to make room, so stalled clients
 * cannot lock others out. When every slot waits for or holds a worker, new connections
 * wait in the listen backlog. */
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

/* A client's whole request must arrive within this after it connected. */
#define IO_TIMEOUT_MS 5000
/* Connections open at once. */
#define MAX_CONNECTIONS 256

/* One connection, from accept to close. A slot is the reader's while free or being read,
 * then the workers' once queued; it goes back to the free list when its connection is
 * closed. */
struct slot {
	int fd;
	long long deadline; /* for reading the request */
	size_t len;
	uint8_t buf[SASLAUTHD_REQUEST_MAX];
	struct saslauthd_request req; /* parsed, once queued */
	struct slot *next;            /* in the free list or the queue */
};

struct worker {
	struct saslauthd_server *server;
	pthread_t thread;
	bool started;
};

struct saslauthd_server {
	int listen_fd;
	int stop_pipe[2];
	int wake_pipe[2]; /* a worker freed a slot: the reader may accept again */
	const struct authd_settings *settings;
	struct slot *slots;
	pthread_t reader;
	bool reader_started;
	struct worker *workers;
	unsigned n_workers;

	pthread_mutex_t lock; /* guards what follows */
	pthread_cond_t queued;
	struct slot *free_list;
	struct slot *queue_head, *queue_tail;
	bool stopping;
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

static struct slot *take_free_slot(struct saslauthd_server *s)
{
	pthread_mutex_lock(&s->lock);
	struct slot *slot = s->free_list;
	if (slot != NULL)
		s->free_list = slot->next;
	pthread_mutex_unlock(&s->lock);
	return slot;
}

/* Close the slot's connection and give the slot back (any thread). */
static void release_slot(struct saslauthd_server *s, struct slot *slot)
{
	close(slot->fd);
	slot->fd = -1;
	secret_wipe(slot->buf, slot->len);
	slot->len = 0;
	pthread_mutex_lock(&s->lock);
	slot->next = s->free_list;
	s->free_list = slot;
	pthread_mutex_unlock(&s->lock);
}

static void drop(struct saslauthd_server *s, struct slot *slot, const char *reason)
{
	log_event(LOG_LEVEL_WARN, "bad_request", "protocol", "saslauthd", "reason", reason, NULL);
	release_slot(s, slot);
}

/* What reading did to a slot. */
enum read_result {
	READ_MORE,   /* still being read */
	READ_QUEUED, /* complete: the workers have it */
	READ_CLOSED, /* dropped */
};

/* Read what the client has sent so far; hand a complete request to the workers. */
static enum read_result read_request(struct saslauthd_server *s, struct slot *slot)
{
	for (;;) {
		if (slot->len == sizeof(slot->buf)) {
			drop(s, slot, "the request is larger than the limit");
			return READ_CLOSED;
		}
		ssize_t n = recv(slot->fd, slot->buf + slot->len, sizeof(slot->buf) - slot->len,
				 MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return READ_MORE;
		if (n <= 0) {
			drop(s, slot, "the client closed before a complete request");
			return READ_CLOSED;
		}
		slot->len += (size_t)n;
		const char *error = NULL;
		enum saslauthd_parse_result parsed =
			saslauthd_request_parse(slot->buf, slot->len, &slot->req, &error);
		if (parsed == SASLAUTHD_NEED_MORE)
			continue;
		secret_wipe(slot->buf, slot->len);
		slot->len = 0;
		if (parsed == SASLAUTHD_BAD) {
			drop(s, slot, error != NULL ? error : "malformed request");
			return READ_CLOSED;
		}
		pthread_mutex_lock(&s->lock);
		slot->next = NULL;
		if (s->queue_tail != NULL)
			s->queue_tail->next = slot;
		else
			s->queue_head = slot;
		s->queue_tail = slot;
		pthread_cond_signal(&s->queued);
		pthread_mutex_unlock(&s->lock);
		return READ_QUEUED;
	}
}

/* The reader thread: accepts, reads requests and times them out. */
static void *reader_main(void *arg)
{
	struct saslauthd_server *s = arg;
	struct slot *reading[MAX_CONNECTIONS];
	size_t n_reading = 0;
	struct pollfd fds[3 + MAX_CONNECTIONS];
	for (;;) {
		/* Accept while a slot is free or a slot being read can be taken back. */
		pthread_mutex_lock(&s->lock);
		bool can_accept = s->free_list != NULL || n_reading > 0;
		pthread_mutex_unlock(&s->lock);
		long long now = now_ms();
		long long next_deadline = -1;
		nfds_t n = 0;
		fds[n++] = (struct pollfd){.fd = s->stop_pipe[0], .events = POLLIN};
		fds[n++] = (struct pollfd){.fd = s->wake_pipe[0], .events = POLLIN};
		fds[n++] = (struct pollfd){.fd = can_accept ? s->listen_fd : -1, .events = POLLIN};
		for (size_t i = 0; i < n_reading; i++) {
			fds[n++] = (struct pollfd){.fd = reading[i]->fd, .events = POLLIN};
			if (next_deadline < 0 || reading[i]->deadline < next_deadline)
				next_deadline = reading[i]->deadline;
		}
		int timeout = next_deadline < 0 ? -1
			      : next_deadline <= now ? 0
						     : (int)(next_deadline - now);
		int ready = poll(fds, n, timeout);
		if (ready < 0 && errno != EINTR)
			break;
		if (ready > 0 && fds[0].revents != 0)
			break;
		if (ready > 0 && fds[1].revents != 0) {
			char drain[64];
			while (read(s->wake_pipe[0], drain, sizeof(drain)) > 0)
				;
		}
		/* Read what arrived and drop who ran out of time (compacting the list). */
		now = now_ms();
		size_t kept = 0;
		for (size_t i = 0; i < n_reading; i++) {
			struct slot *slot = reading[i];
			enum read_result r = READ_MORE;
			if (ready > 0 && fds[3 + i].revents != 0)
				r = read_request(s, slot);
			if (r == READ_MORE && slot->deadline <= now) {
				drop(s, slot, "the client sent no complete request in time");
				r = READ_CLOSED;
			}
			if (r == READ_MORE)
				reading[kept++] = slot;
		}
		n_reading = kept;
		if (ready <= 0 || fds[2].revents == 0)
			continue;
		for (;;) {
			struct slot *slot = take_free_slot(s);
			if (slot == NULL && n_reading == 0)
				break; /* every slot waits for or holds a worker */
			int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (fd < 0) {
				if (slot != NULL) {
					pthread_mutex_lock(&s->lock);
					slot->next = s->free_list;
					s->free_list = slot;
					pthread_mutex_unlock(&s->lock);
				}
				if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
				    errno == ENOMEM) {
					log_event(LOG_LEVEL_ERROR, "accept_failed", "error",
						  strerror(errno), NULL);
					poll(NULL, 0, 100);
				}
				break; /* EAGAIN: nobody else is waiting */
			}
			if (slot == NULL) {
				/* Full: the oldest connection still being read makes room. */
				size_t oldest = 0;
				for (size_t i = 1; i < n_reading; i++) {
					if (reading[i]->deadline < reading[oldest]->deadline)
						oldest = i;
				}
				struct slot *victim = reading[oldest];
				reading[oldest] = reading[--n_reading];
				drop(s, victim, "too many connections: the oldest unfinished one was closed");
				slot = take_free_slot(s);
			}
			slot->fd = fd;
			slot->len = 0;
			slot->deadline = now_ms() + IO_TIMEOUT_MS;
			/* A client usually sends its request with its connect: read it now. */
			if (read_request(s, slot) == READ_MORE)
				reading[n_reading++] = slot;
		}
	}
	for (size_t i = 0; i < n_reading; i++)
		release_slot(s, reading[i]);
	return NULL;
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
		pthread_mutex_lock(&s->lock);
		while (s->queue_head == NULL && !s->stopping)
			pthread_cond_wait(&s->queued, &s->lock);
		struct slot *slot = s->queue_head;
		if (slot != NULL) {
			s->queue_head = slot->next;
			if (s->queue_head == NULL)
				s->queue_tail = NULL;
		}
		pthread_mutex_unlock(&s->lock);
		if (slot == NULL)
			break; /* stopping, and every queued request is answered */
		uint8_t out[SASLAUTHD_RESPONSE_MAX];
		size_t out_len;
		answer(store, s->settings, &slot->req, out, &out_len);
		saslauthd_request_clear(&slot->req);
		send_all(slot->fd, out, out_len, now_ms() + IO_TIMEOUT_MS);
		release_slot(s, slot);
		/* The reader may be waiting for a free slot to accept again. */
		char one = 1;
		if (write(s->wake_pipe[1], &one, 1) < 0) {
			/* Full: the reader has wake-ups enough to read. */
		}
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
	s->stop_pipe[0] = s->stop_pipe[1] = s->wake_pipe[0] = s->wake_pipe[1] = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->queued, NULL);
	s->slots = xcalloc(MAX_CONNECTIONS, sizeof(*s->slots));
	for (size_t i = MAX_CONNECTIONS; i-- > 0;) {
		s->slots[i].fd = -1;
		s->slots[i].next = s->free_list;
		s->free_list = &s->slots[i];
	}
	s->workers = xcalloc(threads, sizeof(*s->workers));
	s->n_workers = threads;
	if (pipe2(s->stop_pipe, O_CLOEXEC) < 0 ||
	    pipe2(s->wake_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		saslauthd_server_stop(s);
		*error_r = "cannot make a pipe";
		return -1;
	}
	for (unsigned i = 0; i < threads; i++) {
		s->workers[i].server = s;
		if (pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]) != 0) {
			saslauthd_server_stop(s);
			*error_r = "cannot start worker threads";
			return -1;
		}
		s->workers[i].started = true;
	}
	if (pthread_create(&s->reader, NULL, reader_main, s) != 0) {
		saslauthd_server_stop(s);
		*error_r = "cannot start the reader thread";
		return -1;
	}
	s->reader_started = true;
	*server_r = s;
	return 0;
}

void saslauthd_server_stop(struct saslauthd_server *s)
{
	if (s == NULL)
		return;
	/* The stop pipe's write end closing ends the reader (which drops what it was still
	 * reading); the workers then answer what is queued and end. */
	if (s->stop_pipe[1] >= 0)
		close(s->stop_pipe[1]);
	if (s->reader_started)
		pthread_join(s->reader, NULL);
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->queued);
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < s->n_workers; i++) {
		if (s->workers[i].started)
			pthread_join(s->workers[i].thread, NULL);
	}
	for (int i = 0; i < 2; i++) {
		if (s->wake_pipe[i] >= 0)
			close(s->wake_pipe[i]);
	}
	if (s->stop_pipe[0] >= 0)
		close(s->stop_pipe[0]);
	secret_wipe(s->slots, MAX_CONNECTIONS * sizeof(*s->slots));
	free(s->slots);
	pthread_cond_destroy(&s->queued);
	pthread_mutex_destroy(&s->lock);
	free(s->workers);
	free(s);
}
