/* Logging: one line per event, `key=value` fields (logfmt), to stderr and optionally syslog.
 * Only a program's top layer logs; library code returns errors to its caller instead.
 * Never pass a token, password or SAML assertion body as a value. */
#ifndef SAMLGW_LOG_H
#define SAMLGW_LOG_H

#include <stdbool.h>

enum log_level {
	LOG_LEVEL_DEBUG = 0,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

enum log_target {
	LOG_TO_STDERR = 1 << 0,
	LOG_TO_SYSLOG = 1 << 1,
};

/* prog names the program in every line; events below min_level are dropped; targets is a
 * set of enum log_target bits (daemons: stderr, plus syslog when configured). */
void log_setup(const char *prog, enum log_level min_level, unsigned targets);
bool log_level_parse(const char *text, enum log_level *level_r);
const char *log_level_name(enum log_level level);

/* Write one event: `ts=… level=… prog=… event=EVENT key=value …`.
 * The variadic part is key, value pairs of strings ended by NULL; a NULL value prints `-`.
 * Values are quoted and escaped when needed and cut at 512 bytes, so attacker-chosen text
 * cannot forge fields or lines. Thread-safe: each line is a single write(2). */
void log_event(enum log_level level, const char *event, ...) __attribute__((sentinel));

#endif
