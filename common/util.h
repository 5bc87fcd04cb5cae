/* Small helpers shared by every component: bounded string handling, number parsing,
 * reading a file with a size cap, constant-time comparison, wiping of secrets and the
 * daemons' signal mask. */
#ifndef SAMLGW_UTIL_H
#define SAMLGW_UTIL_H

#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Defines `static const char *NAME(const char *fmt, ...)`, which formats into a
 * thread-local buffer BUF of SIZE bytes and returns it: the error_r text of one file's
 * functions, valid until that file formats its next error on the same thread. Each file
 * has its own buffer, so a message may safely quote another file's. */
#define DEFINE_ERROR_FORMATTER(NAME, BUF, SIZE)                                             \
	static __thread char BUF[SIZE];                                                     \
	static const char *NAME(const char *fmt, ...) __attribute__((format(printf, 1, 2))); \
	static const char *NAME(const char *fmt, ...)                                        \
	{                                                                                    \
		va_list ap;                                                                  \
		va_start(ap, fmt);                                                           \
		vsnprintf(BUF, sizeof(BUF), fmt, ap);                                        \
		va_end(ap);                                                                  \
		return BUF;                                                                  \
	}

/* strdup that aborts on allocation failure (out of memory is not recoverable here). */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
/* Formatted allocation; aborts on allocation failure. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parse a whole string as a base-10 integer in [min, max]. Returns false on any junk. */
bool parse_ll(const char *s, long long min, long long max, long long *out_r);

/* Parse a duration in seconds: a whole number, optionally followed by s, m, h, d or w. */
bool parse_duration(const char *s, long long *out_r);

/* Remove leading and trailing ASCII white space in place; returns s. */
char *str_trim(char *s);

/* The value of a hexadecimal digit (either case), or -1 when c is none. */
int hex_digit(char c);

/* Read at most max_size bytes of a file into a NUL-terminated buffer.
 * Returns 0 and sets *data_r / *size_r, or -1 with *error_r (static or errno text). */
int read_file_capped(const char *path, size_t max_size, char **data_r, size_t *size_r,
		     const char **error_r);

/* Constant-time equality of two buffers of the same length. */
bool ct_equal(const void *a, const void *b, size_t len);

/* Wipe memory that held a secret; the compiler may not drop it. */
void secret_wipe(void *p, size_t len);
/* Wipe a NUL-terminated string's bytes, then free it. Accepts NULL. */
void secret_free(char *s);

/* True when s is valid UTF-8 without control characters (U+0000..U+001F, U+007F). */
bool utf8_printable(const char *s, size_t len);

/* Block SIGTERM, SIGINT and SIGHUP in the calling thread (threads it starts later inherit
 * the mask) and put them in *set_r, for a daemon whose main thread takes them with
 * sigwait(). Called before its sockets listen, so an early SIGTERM is a clean stop. */
void block_stop_signals(sigset_t *set_r);

#endif
