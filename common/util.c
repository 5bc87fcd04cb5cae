/* Small helpers shared by every component (see util.h). */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

static void oom(void)
{
	fputs("out of memory\n", stderr);
	abort();
}

char *xstrdup(const char *s)
{
	char *r = strdup(s);
	if (r == NULL)
		oom();
	return r;
}

char *xstrndup(const char *s, size_t n)
{
	char *r = strndup(s, n);
	if (r == NULL)
		oom();
	return r;
}

void *xcalloc(size_t n, size_t size)
{
	void *r = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);
	if (r == NULL)
		oom();
	return r;
}

void *xrealloc(void *p, size_t size)
{
	void *r = realloc(p, size == 0 ? 1 : size);
	if (r == NULL)
		oom();
	return r;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *r;
	va_start(ap, fmt);
	int n = vasprintf(&r, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom();
	return r;
}

bool parse_ll(const char *s, long long min, long long max, long long *out_r)
{
	if (s == NULL || *s == '\0')
		return false;
	/* strtoll accepts leading space and '+'; a config value must be plain digits. */
	const char *p = s;
	if (*p == '-')
		p++;
	if (*p < '0' || *p > '9')
		return false;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*out_r = v;
	return true;
}

bool parse_duration(const char *v, long long *out)
{
	char buf[32];
	size_t len = strlen(v);
	long long mult = 1;
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, v, len + 1);
	switch (buf[len - 1]) {
	case 's':
		mult = 1;
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	case 'w':
		mult = 7 * 86400;
		break;
	default:
		mult = 0;
		break;
	}
	if (mult != 0)
		buf[len - 1] = '\0';
	else
		mult = 1;
	long long n;
	if (!parse_ll(buf, 0, LLONG_MAX / (7 * 86400), &n))
		return false;
	*out = n * mult;
	return true;
}

char *str_trim(char *s)
{
	size_t len = strlen(s);
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' ||
			   s[len - 1] == '\n'))
		s[--len] = '\0';
	size_t start = strspn(s, " \t\r\n");
	if (start > 0)
		memmove(s, s + start, len - start + 1);
	return s;
}

int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int read_file_capped(const char *path, size_t max_size, char **data_r, size_t *size_r,
		     const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		*error_r = strerror(errno);
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		*error_r = "not a regular file";
		close(fd);
		return -1;
	}
	size_t cap = 4096, len = 0;
	char *buf = xcalloc(1, cap + 1);
	for (;;) {
		if (len == cap) {
			if (cap >= max_size) {
				*error_r = "file too large";
				free(buf);
				close(fd);
				return -1;
			}
			cap = cap * 2 > max_size ? max_size : cap * 2;
			buf = xrealloc(buf, cap + 1);
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			*error_r = strerror(errno);
			free(buf);
			close(fd);
			return -1;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*data_r = buf;
	*size_r = len;
	return 0;
}

bool ct_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

void secret_wipe(void *p, size_t len)
{
	if (p != NULL && len > 0)
		OPENSSL_cleanse(p, len);
}

void secret_free(char *s)
{
	if (s == NULL)
		return;
	secret_wipe(s, strlen(s));
	free(s);
}

bool utf8_printable(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		unsigned char c = p[i];
		if (c < 0x20 || c == 0x7f)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t n;
		unsigned int cp;
		if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (i + n >= len)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates, beyond U+10FFFF, C1 controls. */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff || (cp >= 0x80 && cp < 0xa0))
			return false;
		i += n + 1;
	}
	return true;
}

void block_stop_signals(sigset_t *set_r)
{
	sigemptyset(set_r);
	sigaddset(set_r, SIGTERM);
	sigaddset(set_r, SIGINT);
	sigaddset(set_r, SIGHUP);
	pthread_sigmask(SIG_BLOCK, set_r, NULL);
}
