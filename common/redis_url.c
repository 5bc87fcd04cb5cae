/* Parsing of redis.url into connection parameters (see redis_url.h). */
#include "redis_url.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Percent-decode s[0..len) into a new string; NUL bytes are refused. */
static char *pct_decode(const char *s, size_t len)
{
	char *out = xcalloc(1, len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			if (i + 2 >= len) {
				secret_free(out);
				return NULL;
			}
			int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				secret_free(out);
				return NULL;
			}
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

void redis_url_free(struct redis_url *url)
{
	if (url == NULL)
		return;
	free(url->path);
	free(url->host);
	free(url->username);
	secret_free(url->password);
	free(url);
}

/* Split "[user]:password@" off *p when present. The userinfo ends before the first '/'
 * (where a unix:// path or a redis:// database starts), as redis_url_redact assumes: a
 * '/' in a password must be percent-encoded. */
static int parse_userinfo(const char **p, const char *end, struct redis_url *url,
			  const char **error_r)
{
	const char *slash = memchr(*p, '/', (size_t)(end - *p));
	const char *at = memchr(*p, '@', (size_t)((slash != NULL ? slash : end) - *p));
	if (at == NULL)
		return 0;
	const char *colon = memchr(*p, ':', (size_t)(at - *p));
	if (colon == NULL) {
		*error_r = "the credentials must be written [USER]:PASSWORD@";
		return -1;
	}
	if (colon > *p) {
		url->username = pct_decode(*p, (size_t)(colon - *p));
		if (url->username == NULL) {
			*error_r = "bad percent-encoding in the user name";
			return -1;
		}
	}
	url->password = pct_decode(colon + 1, (size_t)(at - colon - 1));
	if (url->password == NULL) {
		*error_r = "bad percent-encoding in the password";
		return -1;
	}
	if (url->password[0] == '\0') {
		*error_r = "the password is empty";
		return -1;
	}
	*p = at + 1;
	return 0;
}

static bool parse_db(const char *s, size_t len, int *db_r)
{
	char buf[16];
	long long v;
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (!parse_ll(buf, 0, 1000000, &v))
		return false;
	*db_r = (int)v;
	return true;
}

static int parse_unix(const char *p, const char *end, struct redis_url *url, const char **error_r)
{
	url->kind = REDIS_URL_UNIX;
	if (parse_userinfo(&p, end, url, error_r) < 0)
		return -1;
	const char *q = memchr(p, '?', (size_t)(end - p));
	const char *path_end = q != NULL ? q : end;
	if (p == path_end || *p != '/') {
		*error_r = "a unix:// URL needs an absolute socket path (unix:///run/redis/redis.sock)";
		return -1;
	}
	url->path = pct_decode(p, (size_t)(path_end - p));
	if (url->path == NULL) {
		*error_r = "bad percent-encoding in the socket path";
		return -1;
	}
	if (strlen(url->path) >= 108) {
		*error_r = "the socket path is longer than a unix socket allows (107 bytes)";
		return -1;
	}
	if (q != NULL) {
		if (strncmp(q, "?db=", 4) != 0 || !parse_db(q + 4, (size_t)(end - q - 4), &url->db)) {
			*error_r = "the only query a unix:// URL takes is ?db=N";
			return -1;
		}
	}
	return 0;
}

static int parse_tcp(const char *p, const char *end, struct redis_url *url, const char **error_r)
{
	url->kind = REDIS_URL_TCP;
	url->port = 6379;
	if (parse_userinfo(&p, end, url, error_r) < 0)
		return -1;
	const char *slash = memchr(p, '/', (size_t)(end - p));
	const char *hp_end = slash != NULL ? slash : end;
	const char *port = NULL;
	if (p < hp_end && *p == '[') {
		const char *rb = memchr(p, ']', (size_t)(hp_end - p));
		if (rb == NULL) {
			*error_r = "an IPv6 host needs a closing ']'";
			return -1;
		}
		url->host = xstrndup(p + 1, (size_t)(rb - p - 1));
		if (rb + 1 < hp_end) {
			if (rb[1] != ':') {
				*error_r = "junk after the IPv6 host";
				return -1;
			}
			port = rb + 2;
		}
	} else {
		const char *colon = memchr(p, ':', (size_t)(hp_end - p));
		url->host = xstrndup(p, (size_t)((colon != NULL ? colon : hp_end) - p));
		if (colon != NULL)
			port = colon + 1;
	}
	if (url->host[0] == '\0') {
		*error_r = "the URL has no host";
		return -1;
	}
	for (const char *h = url->host; *h; h++) {
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
		      (*h >= '0' && *h <= '9') || *h == '.' || *h == '-' || *h == ':')) {
			*error_r = "the host holds characters a host name cannot";
			return -1;
		}
	}
	if (port != NULL) {
		char buf[8];
		long long v;
		size_t len = (size_t)(hp_end - port);
		if (len == 0 || len >= sizeof(buf)) {
			*error_r = "the port must be a number from 1 to 65535";
			return -1;
		}
		memcpy(buf, port, len);
		buf[len] = '\0';
		if (!parse_ll(buf, 1, 65535, &v)) {
			*error_r = "the port must be a number from 1 to 65535";
			return -1;
		}
		url->port = (int)v;
	}
	if (slash != NULL && slash + 1 < end) {
		if (!parse_db(slash + 1, (size_t)(end - slash - 1), &url->db)) {
			*error_r = "the database after '/' must be a number";
			return -1;
		}
	}
	return 0;
}

int redis_url_parse(const char *text, struct redis_url **url_r, const char **error_r)
{
	size_t len = strlen(text);
	if (len > REDIS_URL_MAX) {
		*error_r = "the URL is longer than 1024 bytes";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c <= ' ' || c >= 0x7f) {
			*error_r = "the URL holds spaces or non-ASCII characters (percent-encode them)";
			return -1;
		}
	}
	struct redis_url *url = xcalloc(1, sizeof(*url));
	const char *end = text + len;
	int ret;
	if (strncmp(text, "unix://", 7) == 0) {
		ret = parse_unix(text + 7, end, url, error_r);
	} else if (strncmp(text, "redis://", 8) == 0) {
		ret = parse_tcp(text + 8, end, url, error_r);
	} else if (strncmp(text, "rediss://", 9) == 0) {
		*error_r = "rediss:// (TLS) is not supported by hiredis 0.14; use a unix socket or "
			   "a local tunnel";
		ret = -1;
	} else {
		*error_r = "the URL must start with unix:// or redis://";
		ret = -1;
	}
	if (ret < 0) {
		redis_url_free(url);
		return -1;
	}
	*url_r = url;
	return 0;
}

char *redis_url_redact(const char *text)
{
	const char *scheme = strstr(text, "://");
	if (scheme == NULL)
		return xstrdup(text);
	const char *start = scheme + 3;
	const char *at = strchr(start, '@');
	const char *slash = strchr(start, '/');
	/* In unix:// URLs the path starts with '/', so '@' must come before it to be userinfo;
	 * a '/' may not appear inside userinfo in either scheme. */
	if (at == NULL || (slash != NULL && slash < at))
		return xstrdup(text);
	const char *colon = memchr(start, ':', (size_t)(at - start));
	if (colon == NULL)
		return xstrdup(text);
	return xasprintf("%.*s:***%s", (int)(colon - text), text, at);
}
