/* ejabberd extauth and Prosody mod_auth_external for samlgw-authd (see authd_lines.h). */
#include "authd_lines.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int line_request_parse(char *text, struct line_request *req_r)
{
	struct line_request req = {.command = text};
	char *p = strchr(text, ':');
	if (p == NULL)
		return -1;
	*p++ = '\0';
	req.user = p;
	p = strchr(p, ':');
	if (p == NULL)
		return -1;
	*p++ = '\0';
	req.server = p;
	p = strchr(p, ':');
	if (p != NULL) {
		*p++ = '\0';
		req.password = p;
	}
	if (req.user[0] == '\0' || req.server[0] == '\0')
		return -1;
	*req_r = req;
	return 0;
}

/* Read exactly len bytes; 1 done, 0 clean end of input before any byte, -1 error. */
static int read_exact(int fd, void *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 && got == 0 ? 0 : -1;
		got += (size_t)n;
	}
	return 1;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static bool decide(struct token_store *store, const struct authd_settings *settings,
		   enum line_protocol protocol, char *text)
{
	const char *proto = protocol == LINE_EJABBERD ? "ejabberd" : "prosody";
	struct line_request req;
	if (line_request_parse(text, &req) < 0) {
		log_event(LOG_LEVEL_WARN, "bad_request", "protocol", proto, "reason",
			  "not COMMAND:USER:SERVER[:PASSWORD]", NULL);
		return false;
	}
	const char *error = NULL;
	enum store_result r;
	if (strcmp(req.command, "auth") == 0 && req.password != NULL) {
		char *jid = NULL;
		r = authd_check(store, settings, req.user, req.server, NULL, req.password, &jid,
				&error);
		log_event(r == STORE_UNAVAILABLE ? LOG_LEVEL_ERROR : LOG_LEVEL_INFO, "auth",
			  "protocol", proto, "result",
			  r == STORE_OK ? "ok" : r == STORE_INVALID ? "refused" : "unavailable",
			  "user", jid != NULL ? jid : req.user, "reason",
			  r == STORE_OK ? NULL : error, NULL);
		free(jid);
		return r == STORE_OK;
	}
	if (strcmp(req.command, "isuser") == 0) {
		r = authd_user_known(store, settings, req.user, req.server, &error);
		if (r == STORE_UNAVAILABLE)
			log_event(LOG_LEVEL_ERROR, "isuser", "protocol", proto, "result",
				  "unavailable", "reason", error, NULL);
		return r == STORE_OK;
	}
	/* setpass, tryregister, removeuser…: samlgw has no passwords to change. */
	log_event(LOG_LEVEL_INFO, "unsupported", "protocol", proto, "command", req.command, NULL);
	return false;
}

static int run_ejabberd(struct token_store *store, int in, int out,
			const struct authd_settings *settings, const char **error_r)
{
	char buf[AUTHD_LINE_MAX + 1];
	for (;;) {
		uint8_t head[2];
		int r = read_exact(in, head, 2);
		if (r == 0)
			return 0;
		if (r < 0) {
			*error_r = "the input ended inside a request";
			return -1;
		}
		size_t len = ((size_t)head[0] << 8) | head[1];
		if (len > AUTHD_LINE_MAX) {
			*error_r = "a request is larger than the limit";
			return -1;
		}
		if (read_exact(in, buf, len) != 1 && len > 0) {
			*error_r = "the input ended inside a request";
			return -1;
		}
		buf[len] = '\0';
		bool ok = memchr(buf, '\0', len) == NULL && decide(store, settings, LINE_EJABBERD, buf);
		secret_wipe(buf, sizeof(buf));
		const uint8_t answer[4] = {0, 2, 0, ok ? 1 : 0};
		if (write_all(out, answer, sizeof(answer)) < 0) {
			*error_r = "cannot write the answer";
			return -1;
		}
	}
}

static int run_prosody(struct token_store *store, int in, int out,
		       const struct authd_settings *settings, const char **error_r)
{
	char buf[AUTHD_LINE_MAX + 1];
	size_t len = 0;
	bool overlong = false;
	for (;;) {
		char *nl = memchr(buf, '\n', len);
		if (nl == NULL) {
			if (len == AUTHD_LINE_MAX) {
				/* Too long: drop it up to its newline and answer 0 then. */
				overlong = true;
				secret_wipe(buf, len);
				len = 0;
			}
			ssize_t n = read(in, buf + len, AUTHD_LINE_MAX - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				*error_r = "cannot read the input";
				secret_wipe(buf, sizeof(buf));
				return -1;
			}
			if (n == 0) {
				secret_wipe(buf, sizeof(buf));
				return 0; /* a last line without newline is not answered */
			}
			len += (size_t)n;
			continue;
		}
		size_t consumed = (size_t)(nl - buf) + 1;
		size_t line_len = consumed - 1;
		*nl = '\0';
		if (line_len > 0 && buf[line_len - 1] == '\r')
			buf[--line_len] = '\0';
		bool ok = !overlong && memchr(buf, '\0', line_len) == NULL &&
			  decide(store, settings, LINE_PROSODY, buf);
		overlong = false;
		size_t rest = len - consumed;
		memmove(buf, buf + consumed, rest);
		secret_wipe(buf + rest, len - rest);
		len = rest;
		if (write_all(out, ok ? "1\n" : "0\n", 2) < 0) {
			*error_r = "cannot write the answer";
			secret_wipe(buf, sizeof(buf));
			return -1;
		}
	}
}

int line_protocol_run(enum line_protocol protocol, int in_fd, int out_fd,
		      const struct authd_settings *settings, const char **error_r)
{
	struct token_store *store;
	if (store_open(&settings->store, &store, error_r) < 0)
		return -1;
	int ret = protocol == LINE_EJABBERD ? run_ejabberd(store, in_fd, out_fd, settings, error_r)
					    : run_prosody(store, in_fd, out_fd, settings, error_r);
	store_free(store);
	return ret;
}
