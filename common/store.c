/* The Redis token store over synchronous hiredis (see store.h; key space: docs/redis.md). */
#include "store.h"
#include "store_keys.h"
#include "redis_url.h"
#include "store_scripts.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/evp.h>

struct token_store {
	struct redis_url *url;
	char *where; /* the URL without its password, for messages */
	char *prefix;       /* redis.prefix */
	char *token_prefix; /* the token key without its hash, for the scripts */
	char *channel;      /* the revocation channel */
	struct timeval timeout;
	int timeout_ms;
	redisContext *ctx;
	pid_t pid; /* process that made ctx */
	bool oom;  /* the last call failed for want of memory */
	char sha[SCRIPT_COUNT][41];
	char error[320];
};

static const char *set_error(struct token_store *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static const char *set_error(struct token_store *s, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->error, sizeof(s->error), fmt, ap);
	va_end(ap);
	return s->error;
}

static const char *out_of_memory(struct token_store *s)
{
	s->oom = true;
	return set_error(s, "out of memory");
}

/* A store with the given strings (prefix and where copied) and no connection; NULL when
 * memory runs out. */
static struct token_store *store_new(struct redis_url *url, const char *where,
				     const char *prefix, int timeout_ms)
{
	struct token_store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return NULL;
	s->url = url;
	s->where = strdup(where);
	s->prefix = strdup(prefix);
	s->token_prefix = store_token_key_try(prefix, "");
	s->channel = store_revoked_channel_try(prefix);
	s->timeout_ms = timeout_ms;
	s->timeout.tv_sec = timeout_ms / 1000;
	s->timeout.tv_usec = (timeout_ms % 1000) * 1000;
	if (s->where == NULL || s->prefix == NULL || s->token_prefix == NULL ||
	    s->channel == NULL) {
		s->url = NULL; /* the caller's on failure */
		store_free(s);
		return NULL;
	}
	return s;
}

int store_open(const struct store_options *options, struct token_store **store_r,
	       const char **error_r)
{
	struct redis_url *url;
	if (redis_url_parse(options->url, &url, error_r) < 0)
		return -1;
	if (options->timeout_ms <= 0) {
		redis_url_free(url);
		*error_r = "the Redis timeout must be positive";
		return -1;
	}
	char *where = redis_url_redact(options->url);
	struct token_store *s = store_new(url, where, options->prefix, options->timeout_ms);
	free(where);
	if (s == NULL) {
		redis_url_free(url);
		*error_r = "out of memory";
		return -1;
	}
	for (int i = 0; i < SCRIPT_COUNT; i++)
		store_script_sha1(store_script_source[i], s->sha[i]);
	*store_r = s;
	return 0;
}

static struct redis_url *url_copy(const struct redis_url *u)
{
	struct redis_url *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->kind = u->kind;
	c->port = u->port;
	c->db = u->db;
	if ((u->path != NULL && (c->path = strdup(u->path)) == NULL) ||
	    (u->host != NULL && (c->host = strdup(u->host)) == NULL) ||
	    (u->username != NULL && (c->username = strdup(u->username)) == NULL) ||
	    (u->password != NULL && (c->password = strdup(u->password)) == NULL)) {
		redis_url_free(c);
		return NULL;
	}
	return c;
}

int store_clone(const struct token_store *model, struct token_store **store_r,
		const char **error_r)
{
	struct redis_url *url = url_copy(model->url);
	struct token_store *s =
		url != NULL ? store_new(url, model->where, model->prefix, model->timeout_ms) : NULL;
	if (s == NULL) {
		redis_url_free(url);
		*error_r = "out of memory";
		return -1;
	}
	memcpy(s->sha, model->sha, sizeof(s->sha));
	*store_r = s;
	return 0;
}

bool store_out_of_memory(const struct token_store *s)
{
	return s->oom;
}

static void disconnect(struct token_store *s)
{
	if (s->ctx != NULL) {
		redisFree(s->ctx);
		s->ctx = NULL;
	}
}

void store_free(struct token_store *s)
{
	if (s == NULL)
		return;
	disconnect(s);
	redis_url_free(s->url);
	free(s->where);
	free(s->prefix);
	free(s->token_prefix);
	free(s->channel);
	secret_wipe(s->error, sizeof(s->error));
	free(s);
}

const char *store_revocation_channel(const struct token_store *s)
{
	return s->channel;
}

/* SIGPIPE from a write to a dead Redis must not kill the host process (the SASL plugin
 * lives in other people's daemons): block it in this thread around each command and
 * swallow any that the command raised. */
struct sigpipe_guard {
	sigset_t old;
	bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t set, pending;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigemptyset(&pending);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void sigpipe_restore(struct sigpipe_guard *g)
{
	if (!g->was_pending) {
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGPIPE);
		const struct timespec zero = {0, 0};
		while (sigtimedwait(&set, NULL, &zero) == SIGPIPE)
			;
	}
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static bool io_timed_out(const redisContext *c)
{
	return c->err == REDIS_ERR_IO && (strstr(c->errstr, "temporarily unavailable") != NULL ||
					  strstr(c->errstr, "timed out") != NULL);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connect a new close-on-exec socket to addr before deadline; returns the connected,
 * blocking socket, or -1 with errno (ETIMEDOUT when the time ran out). */
static int connect_addr(int family, const struct sockaddr *addr, socklen_t len,
			long long deadline)
{
	if (family == AF_UNIX) {
		/* A non-blocking connect to a unix socket whose backlog is full fails with
		 * EAGAIN instead of going on in the background; a blocking one waits for room
		 * for at most the send timeout. */
		long long left = deadline - now_ms();
		if (left <= 0)
			left = 1; /* a zero timeout would mean none */
		struct timeval tv = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
		    connect(fd, addr, len) < 0) {
			int saved = errno == EAGAIN || errno == EINPROGRESS ? ETIMEDOUT : errno;
			close(fd);
			errno = saved;
			return -1;
		}
		return fd;
	}
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, addr, len) < 0) {
		if (errno != EINPROGRESS && errno != EAGAIN && errno != EINTR)
			goto fail;
		for (;;) {
			long long left = deadline - now_ms();
			if (left <= 0) {
				errno = ETIMEDOUT;
				goto fail;
			}
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			int n = poll(&p, 1, (int)left);
			if (n > 0)
				break;
			if (n < 0 && errno != EINTR)
				goto fail;
		}
		int err = 0;
		socklen_t err_len = sizeof(err);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) < 0)
			goto fail;
		if (err != 0) {
			errno = err;
			goto fail;
		}
	}
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		goto fail;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
fail:;
	int saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

/* The socket to Redis, connected within redis.timeout_ms. Done here rather than by
 * hiredis 0.14, whose connect functions abort the process when an allocation fails (and
 * do not set close-on-exec). Returns the socket, or -1 with *error_r. */
static int connect_socket(struct token_store *s, const char **error_r)
{
	long long deadline = now_ms() + s->timeout_ms;
	if (s->url->kind == REDIS_URL_UNIX) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		size_t len = strlen(s->url->path);
		if (len >= sizeof(sa.sun_path)) {
			*error_r = set_error(s, "cannot connect to Redis at %s: the socket path is "
					     "too long", s->where);
			return -1;
		}
		memcpy(sa.sun_path, s->url->path, len + 1);
		int fd = connect_addr(AF_UNIX, (struct sockaddr *)&sa, sizeof(sa), deadline);
		if (fd < 0)
			*error_r = set_error(s, "cannot connect to Redis at %s: %s", s->where,
					     errno == ETIMEDOUT ? "timed out" : strerror(errno));
		return fd;
	}
	char port[16];
	snprintf(port, sizeof(port), "%d", s->url->port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai;
	int gai = getaddrinfo(s->url->host, port, &hints, &ai);
	if (gai != 0) {
		s->oom = gai == EAI_MEMORY;
		*error_r = set_error(s, "cannot connect to Redis at %s: %s", s->where,
				     gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
		return -1;
	}
	int fd = -1;
	errno = ECONNREFUSED;
	for (struct addrinfo *a = ai; a != NULL && fd < 0; a = a->ai_next)
		fd = connect_addr(a->ai_family, a->ai_addr, a->ai_addrlen, deadline);
	if (fd < 0)
		*error_r = set_error(s, "cannot connect to Redis at %s: %s", s->where,
				     errno == ETIMEDOUT ? "timed out" : strerror(errno));
	freeaddrinfo(ai);
	return fd;
}

static enum store_result connect_store(struct token_store *s, const char **error_r)
{
	struct sigpipe_guard g;
	/* Close-on-exec from the start: the connection is authenticated below, and programs
	 * the host process runs must not inherit it (they could write token records). */
	int fd = connect_socket(s, error_r);
	if (fd < 0)
		return STORE_UNAVAILABLE;
	redisContext *c = redisConnectFd(fd);
	if (c == NULL) {
		close(fd);
		*error_r = out_of_memory(s);
		return STORE_UNAVAILABLE;
	}
	if (redisSetTimeout(c, s->timeout) != REDIS_OK) {
		*error_r = set_error(s, "cannot set the Redis timeout: %s", c->errstr);
		redisFree(c);
		return STORE_UNAVAILABLE;
	}
	if (s->url->kind == REDIS_URL_TCP)
		redisEnableKeepAlive(c);

	sigpipe_block(&g);
	const char *fail = NULL;
	redisReply *r = NULL;
	if (s->url->password != NULL) {
		if (s->url->username != NULL)
			r = redisCommand(c, "AUTH %s %s", s->url->username, s->url->password);
		else
			r = redisCommand(c, "AUTH %s", s->url->password);
		if (r == NULL || r->type == REDIS_REPLY_ERROR)
			fail = "Redis refused the credentials";
		freeReplyObject(r);
	}
	if (fail == NULL && s->url->db != 0) {
		r = redisCommand(c, "SELECT %d", s->url->db);
		if (r == NULL || r->type == REDIS_REPLY_ERROR)
			fail = "Redis refused to select the database";
		freeReplyObject(r);
	}
	sigpipe_restore(&g);
	if (fail != NULL) {
		s->oom = c->err == REDIS_ERR_OOM;
		*error_r = set_error(s, "%s at %s%s%s", fail, s->where, c->err ? ": " : "",
				     c->err ? c->errstr : "");
		redisFree(c);
		return STORE_UNAVAILABLE;
	}
	s->ctx = c;
	s->pid = getpid();
	return STORE_OK;
}

/* Whether a connection that sat idle since its last reply is still worth sending on.
 * Redis sends nothing unasked, so end of file (it closed the connection: a restart, its
 * idle timeout, CLIENT KILL), an error or any unexpected byte all mean it is not. One
 * non-blocking peek; nothing is read. */
static bool idle_connection_usable(const redisContext *c)
{
	if (c->reader != NULL && c->reader->pos < c->reader->len)
		return false;
	for (;;) {
		char b;
		ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
	}
}

enum send_result {
	SEND_DONE,
	SEND_FAILED,
	SEND_TIMED_OUT,
};

/* Write the formatted command; *sent_r counts the bytes that went out. MSG_NOSIGNAL keeps
 * SIGPIPE away; the socket's send timeout (redis.timeout_ms) bounds a stuck write. */
static enum send_result send_command(int fd, const char *cmd, size_t len, size_t *sent_r,
				     int *errno_r)
{
	size_t sent = 0;
	while (sent < len) {
		ssize_t n = send(fd, cmd + sent, len - sent, MSG_NOSIGNAL);
		if (n > 0) {
			sent += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		*sent_r = sent;
		*errno_r = n < 0 ? errno : EPIPE;
		return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? SEND_TIMED_OUT
									  : SEND_FAILED;
	}
	*sent_r = sent;
	return SEND_DONE;
}

/* Run one command, at most once. A connection that Redis closed while it sat idle is
 * noticed before anything is sent and replaced. The command is tried once more, on a new
 * connection, only when it certainly did not reach Redis: a reused connection failed on
 * write before a single byte went out. Once any byte is out, a lost reply (the connection
 * broke, or Redis did not answer within the timeout) is STORE_UNAVAILABLE: the command may
 * have run, and running it again could count a token's use twice. Error replies are the
 * caller's to judge. */
static enum store_result command(struct token_store *s, int argc, const char **argv,
				 const size_t *lens, redisReply **reply_r, const char **error_r)
{
	s->oom = false;
	if (s->ctx != NULL && s->pid != getpid())
		disconnect(s); /* a forked child must not share its parent's connection */
	if (s->ctx != NULL && !idle_connection_usable(s->ctx))
		disconnect(s);
	char *cmd;
	int cmd_len = redisFormatCommandArgv(&cmd, argc, argv, lens);
	if (cmd_len < 0) {
		*error_r = out_of_memory(s);
		return STORE_UNAVAILABLE;
	}
	enum store_result ret;
	for (int attempt = 0;; attempt++) {
		bool fresh = false;
		if (s->ctx == NULL) {
			ret = connect_store(s, error_r);
			if (ret != STORE_OK)
				break;
			fresh = true;
		}
		size_t sent;
		int err = 0;
		enum send_result w = send_command(s->ctx->fd, cmd, (size_t)cmd_len, &sent, &err);
		if (w == SEND_DONE) {
			redisReply *r = NULL;
			if (redisGetReply(s->ctx, (void **)&r) == REDIS_OK && r != NULL) {
				*reply_r = r;
				ret = STORE_OK;
				break;
			}
			bool timed_out = io_timed_out(s->ctx);
			s->oom = s->ctx->err == REDIS_ERR_OOM;
			*error_r = set_error(s, "Redis at %s %s%s", s->where,
					     timed_out ? "did not answer in time" : "failed: ",
					     timed_out ? "" : s->ctx->errstr);
			disconnect(s);
			ret = STORE_UNAVAILABLE;
			break;
		}
		*error_r = set_error(s, "Redis at %s %s%s", s->where,
				     w == SEND_TIMED_OUT ? "did not take the command in time"
							 : "failed: ",
				     w == SEND_TIMED_OUT ? "" : strerror(err));
		disconnect(s);
		ret = STORE_UNAVAILABLE;
		if (w == SEND_TIMED_OUT || sent > 0 || fresh || attempt > 0)
			break;
	}
	free(cmd);
	return ret;
}

/* EVALSHA, falling back to EVAL when Redis does not have the script yet. */
static enum store_result run_script(struct token_store *s, enum store_script script, int nkeys,
				    int nargs, const char **args, const size_t *arg_lens,
				    redisReply **reply_r, const char **error_r)
{
	const char *argv[16];
	size_t lens[16];
	char nk[8];
	if (nargs + 3 > (int)ARRAY_SIZE(argv))
		abort();
	snprintf(nk, sizeof(nk), "%d", nkeys);
	argv[0] = "EVALSHA";
	argv[1] = s->sha[script];
	argv[2] = nk;
	lens[0] = 7;
	lens[1] = 40;
	lens[2] = strlen(nk);
	for (int i = 0; i < nargs; i++) {
		argv[3 + i] = args[i];
		lens[3 + i] = arg_lens != NULL ? arg_lens[i] : strlen(args[i]);
	}
	redisReply *r;
	enum store_result ret = command(s, nargs + 3, argv, lens, &r, error_r);
	if (ret != STORE_OK)
		return ret;
	if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
		freeReplyObject(r);
		argv[0] = "EVAL";
		lens[0] = 4;
		argv[1] = store_script_source[script];
		lens[1] = strlen(argv[1]);
		ret = command(s, nargs + 3, argv, lens, &r, error_r);
		if (ret != STORE_OK)
			return ret;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		*error_r = set_error(s, "Redis at %s answered with an error: %.200s", s->where,
				     r->str);
		freeReplyObject(r);
		return STORE_UNAVAILABLE;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_INTEGER) {
		*error_r = set_error(s, "Redis at %s answered in an unexpected shape", s->where);
		freeReplyObject(r);
		return STORE_UNAVAILABLE;
	}
	*reply_r = r;
	return STORE_OK;
}

static const char *reply_str(const redisReply *r, size_t i)
{
	return i < r->elements && r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str
									    : "";
}

static long long reply_ll(const redisReply *r, size_t i)
{
	if (i >= r->elements)
		return 0;
	const redisReply *e = r->element[i];
	if (e->type == REDIS_REPLY_INTEGER)
		return e->integer;
	if (e->type == REDIS_REPLY_STRING)
		return strtoll(e->str, NULL, 10);
	return 0;
}

/* For a refused operation: the reason word the script returned, as a sentence. */
static const char *reason_text(struct token_store *s, const redisReply *r, const char *service,
			       long long max_per_user)
{
	const char *why = reply_str(r, 1);
	/* Where the caller knows more than the script, say it; else the shared sentence. */
	if (strcmp(why, "service") == 0 && service != NULL)
		return set_error(s, "the token is not valid for service %s", service);
	if (strcmp(why, "limit") == 0)
		return set_error(s, "the user already holds %lld live tokens (token.max_per_user)",
				 max_per_user);
	if (strcmp(why, "ambiguous") == 0)
		return set_error(s, "the id matches more than one token; give more digits");
	return set_error(s, "%s", store_reason_text(why));
}

/* Run a script whose refusals ({0, reason}) become STORE_INVALID with that reason. */
static enum store_result run_decided(struct token_store *s, enum store_script script, int nkeys,
				     int nargs, const char **args, const char *service,
				     redisReply **reply_r, const char **error_r)
{
	redisReply *r;
	enum store_result ret = run_script(s, script, nkeys, nargs, args, NULL, &r, error_r);
	if (ret != STORE_OK)
		return ret;
	if (r->element[0]->integer != 1) {
		*error_r = reason_text(s, r, service, 0);
		freeReplyObject(r);
		return STORE_INVALID;
	}
	*reply_r = r;
	return STORE_OK;
}

static char *user_key(const struct token_store *s, const char *jid)
{
	return store_user_tokens_key(s->prefix, jid);
}

void token_info_clear(struct token_info *info)
{
	if (info == NULL)
		return;
	free(info->services);
	free(info->label);
	free(info->idp);
	memset(info, 0, sizeof(*info));
}

void token_list_free(struct token_list *list)
{
	for (size_t i = 0; i < list->n; i++)
		token_info_clear(&list->v[i]);
	free(list->v);
	list->v = NULL;
	list->n = 0;
}

enum store_result store_issue(struct token_store *s, const struct store_issue_request *req,
			      char token_r[TOKEN_LEN + 1], struct token_info *info_r,
			      const char **error_r)
{
	const char *label = req->label != NULL ? req->label : "";
	const char *idp = req->idp != NULL ? req->idp : "";
	if (req->ttl < 1) {
		*error_r = set_error(s, "the lifetime must be at least one second");
		return STORE_INVALID;
	}
	if (strlen(label) > TOKEN_LABEL_MAX || !utf8_printable(label, strlen(label))) {
		*error_r = set_error(s, "the label must be at most %d bytes of printable text",
				     TOKEN_LABEL_MAX);
		return STORE_INVALID;
	}
	if (strlen(idp) > TOKEN_IDP_MAX || !utf8_printable(idp, strlen(idp))) {
		*error_r = set_error(s, "the IdP entityID is too long or not printable");
		return STORE_INVALID;
	}
	if (req->max_uses < 0 || req->max_uses > TOKEN_MAX_USES) {
		*error_r = set_error(s, "the use limit must be from 0 (none) to %d", TOKEN_MAX_USES);
		return STORE_INVALID;
	}
	char token[TOKEN_LEN + 1];
	char hash[TOKEN_HASH_HEX_LEN + 1];
	char ttl[24], max_uses[24], max_per_user[24];
	snprintf(ttl, sizeof(ttl), "%lld", req->ttl);
	snprintf(max_uses, sizeof(max_uses), "%lld", req->max_uses);
	snprintf(max_per_user, sizeof(max_per_user), "%lld", req->max_per_user);
	char *ukey = user_key(s, req->jid);
	enum store_result ret = STORE_UNAVAILABLE;
	/* A collision of 256-bit random values does not happen; the loop only keeps the
	 * script's refusal to overwrite an existing record from ever losing a token. */
	for (int attempt = 0; attempt < 3; attempt++) {
		if (token_generate(token, error_r) < 0) {
			ret = STORE_UNAVAILABLE;
			break;
		}
		if (token_hash_hex(token, TOKEN_LEN, hash) < 0) {
			*error_r = "SHA-256 failed";
			ret = STORE_UNAVAILABLE;
			break;
		}
		char *tkey = store_token_key(s->prefix, hash);
		const char *args[] = {tkey, ukey, req->jid, req->services, ttl, label,
				      max_uses, idp, max_per_user, hash};
		redisReply *r;
		ret = run_script(s, SCRIPT_ISSUE, 2, (int)ARRAY_SIZE(args), args, NULL, &r,
				 error_r);
		free(tkey);
		if (ret != STORE_OK)
			break;
		if (r->element[0]->integer == 1) {
			memcpy(token_r, token, sizeof(token));
			if (info_r != NULL) {
				memset(info_r, 0, sizeof(*info_r));
				memcpy(info_r->hash, hash, sizeof(hash));
				token_id_from_hash(hash, info_r->id);
				info_r->services = xstrdup(req->services);
				info_r->label = xstrdup(label);
				info_r->idp = xstrdup(idp);
				info_r->issued = reply_ll(r, 1);
				info_r->expires = reply_ll(r, 2);
				info_r->max_uses = req->max_uses;
			}
			freeReplyObject(r);
			ret = STORE_OK;
			break;
		}
		bool collision = strcmp(reply_str(r, 1), "collision") == 0;
		*error_r = reason_text(s, r, NULL, req->max_per_user);
		freeReplyObject(r);
		ret = STORE_INVALID;
		if (!collision)
			break;
	}
	secret_wipe(token, sizeof(token));
	free(ukey);
	return ret;
}

/* SHA-256 of the token text as hex, as token_hash_hex computes it, but reporting a failure
 * of OpenSSL (which allocates) instead of leaving the output undefined: a hash left over
 * from an earlier call must never be looked up for this token. */
static bool hash_token(const char *token, size_t len, char out[TOKEN_HASH_HEX_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	if (EVP_Digest(token, len, md, &md_len, EVP_sha256(), NULL) != 1 ||
	    md_len * 2 != TOKEN_HASH_HEX_LEN)
		return false;
	for (unsigned i = 0; i < md_len; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[TOKEN_HASH_HEX_LEN] = '\0';
	return true;
}

/* Verify for jid, or (jid NULL) for whoever owns the token (of domain, when not NULL),
 * whose JID goes to *owner_r. Every allocation is checked (the SASL plugin runs this
 * inside other people's daemons); when memory runs out after Redis answered, the use the
 * script counted stays counted. */
static enum store_result verify(struct token_store *s, const char *token, size_t token_len,
				const char *jid, const char *domain, const char *service,
				struct token_info *info_r, char **owner_r, const char **error_r)
{
	s->oom = false;
	/* What OpenSSL fails with here (only ever for want of memory) must not stay on the
	 * thread's error queue: the SASL plugin shares the thread with its host's TLS, which
	 * would take a stale entry for an error of its own. */
	ERR_set_mark();
	/* Malformed text never costs a Redis round trip. */
	bool well_formed = token_well_formed(token, token_len);
	char hash[TOKEN_HASH_HEX_LEN + 1];
	bool hashed = well_formed && hash_token(token, token_len, hash);
	ERR_pop_to_mark();
	if (!well_formed) {
		*error_r = set_error(s, "not a samlgw token (wrong length, alphabet or check)");
		return STORE_INVALID;
	}
	if (!hashed) {
		*error_r = out_of_memory(s);
		return STORE_UNAVAILABLE;
	}
	char *tkey = store_token_key_try(s->prefix, hash);
	char *ukey = jid != NULL ? store_user_tokens_key_try(s->prefix, jid)
				 : store_user_tokens_key_try(s->prefix, "");
	redisReply *r = NULL;
	enum store_result ret;
	if (tkey == NULL || ukey == NULL) {
		*error_r = out_of_memory(s);
		ret = STORE_UNAVAILABLE;
	} else if (jid != NULL) {
		const char *args[] = {tkey, ukey, jid, service, hash};
		ret = run_decided(s, SCRIPT_VERIFY, 2, (int)ARRAY_SIZE(args), args, service, &r,
				  error_r);
	} else {
		/* The script appends "JID:tokens" to the index prefix. */
		ukey[strlen(ukey) - strlen(":tokens")] = '\0';
		const char *args[] = {tkey, service, hash, ukey, domain != NULL ? domain : ""};
		ret = run_decided(s, SCRIPT_VERIFY_ANY, 1, (int)ARRAY_SIZE(args), args, service,
				  &r, error_r);
	}
	free(tkey);
	free(ukey);
	if (ret != STORE_OK)
		return ret;
	struct token_info info = {0};
	char *owner = NULL;
	bool ok = true;
	if (info_r != NULL) {
		memcpy(info.hash, hash, sizeof(hash));
		token_id_from_hash(hash, info.id);
		info.services = strdup(reply_str(r, 1));
		info.issued = reply_ll(r, 2);
		info.expires = reply_ll(r, 3);
		info.uses = reply_ll(r, 4);
		info.max_uses = reply_ll(r, 5);
		info.label = strdup(reply_str(r, 6));
		info.idp = strdup(reply_str(r, 7));
		ok = info.services != NULL && info.label != NULL && info.idp != NULL;
	}
	if (owner_r != NULL)
		ok = ok && (owner = strdup(reply_str(r, 8))) != NULL;
	freeReplyObject(r);
	if (!ok) {
		token_info_clear(&info);
		free(owner);
		*error_r = out_of_memory(s);
		return STORE_UNAVAILABLE;
	}
	if (info_r != NULL)
		*info_r = info;
	if (owner_r != NULL)
		*owner_r = owner;
	return STORE_OK;
}

enum store_result store_verify(struct token_store *s, const char *token, size_t token_len,
			       const char *jid, const char *service, struct token_info *info_r,
			       const char **error_r)
{
	return verify(s, token, token_len, jid, NULL, service, info_r, NULL, error_r);
}

enum store_result store_verify_owner(struct token_store *s, const char *token, size_t token_len,
				     const char *service, char **jid_r, struct token_info *info_r,
				     const char **error_r)
{
	return verify(s, token, token_len, NULL, NULL, service, info_r, jid_r, error_r);
}

enum store_result store_verify_owner_in(struct token_store *s, const char *token,
					size_t token_len, const char *service,
					const char *domain, char **jid_r,
					struct token_info *info_r, const char **error_r)
{
	return verify(s, token, token_len, NULL, domain, service, info_r, jid_r, error_r);
}

enum store_result store_list(struct token_store *s, const char *jid, struct token_list *list_r,
			     const char **error_r)
{
	char *ukey = user_key(s, jid);
	const char *args[] = {ukey, s->token_prefix};
	redisReply *r;
	enum store_result ret = run_script(s, SCRIPT_LIST, 1, 2, args, NULL, &r, error_r);
	free(ukey);
	if (ret != STORE_OK)
		return ret;
	struct token_list list = {0};
	size_t n = (r->elements - 1) / 8;
	list.v = xcalloc(n, sizeof(*list.v));
	for (size_t i = 0; i < n; i++) {
		size_t b = 1 + i * 8;
		struct token_info *t = &list.v[list.n++];
		snprintf(t->hash, sizeof(t->hash), "%s", reply_str(r, b));
		token_id_from_hash(t->hash, t->id);
		t->services = xstrdup(reply_str(r, b + 1));
		t->issued = reply_ll(r, b + 2);
		t->expires = reply_ll(r, b + 3);
		t->uses = reply_ll(r, b + 4);
		t->max_uses = reply_ll(r, b + 5);
		t->label = xstrdup(reply_str(r, b + 6));
		t->idp = xstrdup(reply_str(r, b + 7));
	}
	freeReplyObject(r);
	*list_r = list;
	return STORE_OK;
}

enum store_result store_revoke(struct token_store *s, const char *jid, const char *id,
			       char hash_r[TOKEN_HASH_HEX_LEN + 1], const char **error_r)
{
	if (!token_id_valid(id)) {
		*error_r = set_error(s, "a token id is %d to 64 lowercase hex digits", TOKEN_ID_LEN);
		return STORE_INVALID;
	}
	char *ukey = user_key(s, jid);
	const char *args[] = {ukey, s->token_prefix, id, s->channel};
	redisReply *r;
	enum store_result ret = run_decided(s, SCRIPT_REVOKE, 1, 4, args, NULL, &r, error_r);
	free(ukey);
	if (ret != STORE_OK)
		return ret;
	if (hash_r != NULL)
		snprintf(hash_r, TOKEN_HASH_HEX_LEN + 1, "%s", reply_str(r, 1));
	freeReplyObject(r);
	return STORE_OK;
}

enum store_result store_revoke_all(struct token_store *s, const char *jid, size_t *count_r,
				   const char **error_r)
{
	char *ukey = user_key(s, jid);
	const char *args[] = {ukey, s->token_prefix, s->channel};
	redisReply *r;
	enum store_result ret = run_script(s, SCRIPT_REVOKE_ALL, 1, 3, args, NULL, &r, error_r);
	free(ukey);
	if (ret != STORE_OK)
		return ret;
	*count_r = (size_t)reply_ll(r, 1);
	freeReplyObject(r);
	return STORE_OK;
}

enum store_result store_ping(struct token_store *s, const char **error_r)
{
	const char *argv[] = {"PING"};
	size_t lens[] = {4};
	redisReply *r;
	enum store_result ret = command(s, 1, argv, lens, &r, error_r);
	if (ret != STORE_OK)
		return ret;
	bool ok = r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
	if (!ok)
		*error_r = set_error(s, "Redis at %s answered PING with %.100s", s->where,
				     r->type == REDIS_REPLY_ERROR ? r->str : "something else");
	freeReplyObject(r);
	return ok ? STORE_OK : STORE_UNAVAILABLE;
}
