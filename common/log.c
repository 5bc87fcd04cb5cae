/* Logging: one logfmt line per event to stderr, optionally to syslog (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_VALUE_MAX 512

static const char *log_prog = "samlgw";
static enum log_level log_min = LOG_LEVEL_INFO;
static bool log_syslog;
static bool log_stderr = true;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_setup(const char *prog, enum log_level min_level, unsigned targets)
{
	bool use_syslog = (targets & LOG_TO_SYSLOG) != 0;
	log_prog = prog;
	log_min = min_level;
	if (use_syslog && !log_syslog)
		openlog(prog, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_syslog = use_syslog;
	log_stderr = (targets & LOG_TO_STDERR) != 0;
}

bool log_level_parse(const char *text, enum log_level *level_r)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(text, level_names[i]) == 0) {
			*level_r = (enum log_level)i;
			return true;
		}
	}
	return false;
}

const char *log_level_name(enum log_level level)
{
	return level <= LOG_LEVEL_ERROR ? level_names[level] : "?";
}

struct line {
	char buf[LOG_LINE_MAX];
	size_t len;
};

static void put_raw(struct line *l, const char *s, size_t n)
{
	/* Keep room for the final newline. */
	size_t room = sizeof(l->buf) - 1 - l->len;
	if (n > room)
		n = room;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static bool needs_quotes(const char *v)
{
	if (*v == '\0')
		return true;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
			return true;
	}
	return false;
}

static void put_value(struct line *l, const char *v)
{
	if (v == NULL) {
		put_raw(l, "-", 1);
		return;
	}
	size_t vlen = strnlen(v, LOG_VALUE_MAX + 1);
	bool cut = vlen > LOG_VALUE_MAX;
	if (!cut && !needs_quotes(v)) {
		put_raw(l, v, vlen);
		return;
	}
	put_raw(l, "\"", 1);
	for (size_t i = 0; i < vlen && i < LOG_VALUE_MAX; i++) {
		unsigned char c = (unsigned char)v[i];
		char esc[5];
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put_raw(l, esc, 2);
		} else if (c == '\n') {
			put_raw(l, "\\n", 2);
		} else if (c == '\t') {
			put_raw(l, "\\t", 2);
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", c);
			put_raw(l, esc, 4);
		} else {
			put_raw(l, (const char *)&v[i], 1);
		}
	}
	if (cut)
		put_raw(l, "...", 3);
	put_raw(l, "\"", 1);
}

void log_event(enum log_level level, const char *event, ...)
{
	if (level < log_min || (!log_stderr && !log_syslog))
		return;
	struct line l = {.len = 0};
	char ts[40];
	struct timespec now;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + tl, sizeof(ts) - tl, ".%03ldZ", now.tv_nsec / 1000000);

	size_t body_start;
	put_raw(&l, "ts=", 3);
	put_raw(&l, ts, strlen(ts));
	put_raw(&l, " level=", 7);
	put_raw(&l, log_level_name(level), strlen(log_level_name(level)));
	put_raw(&l, " prog=", 6);
	put_value(&l, log_prog);
	body_start = l.len + 1;
	put_raw(&l, " event=", 7);
	put_value(&l, event);

	va_list ap;
	va_start(ap, event);
	for (;;) {
		const char *key = va_arg(ap, const char *);
		if (key == NULL)
			break;
		const char *value = va_arg(ap, const char *);
		put_raw(&l, " ", 1);
		put_raw(&l, key, strlen(key));
		put_raw(&l, "=", 1);
		put_value(&l, value);
	}
	va_end(ap);

	l.buf[l.len] = '\n';
	if (log_stderr) {
		ssize_t ignored = write(STDERR_FILENO, l.buf, l.len + 1);
		(void)ignored;
	}
	if (log_syslog) {
		static const int prio[] = {LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR};
		l.buf[l.len] = '\0';
		syslog(prio[level], "%s", l.buf + body_start);
	}
}
