/* Parsing of `redis.url`:
 *   unix://[[USER]:PASSWORD@]/absolute/path.sock[?db=N]
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]      (HOST may be [IPv6])
 * USER, PASSWORD and the path may be percent-encoded. rediss:// (TLS) is refused: hiredis
 * 0.14 has no TLS, so use a unix socket or a local tunnel. */
#ifndef SAMLGW_REDIS_URL_H
#define SAMLGW_REDIS_URL_H

#include <stddef.h>

#define REDIS_URL_MAX 1024

enum redis_url_kind {
	REDIS_URL_UNIX,
	REDIS_URL_TCP,
};

struct redis_url {
	enum redis_url_kind kind;
	char *path;     /* REDIS_URL_UNIX */
	char *host;     /* REDIS_URL_TCP, brackets removed */
	int port;       /* REDIS_URL_TCP, default 6379 */
	char *username; /* NULL: none (AUTH with password only) */
	char *password; /* NULL: no AUTH; wiped on free */
	int db;         /* SELECT when non-zero */
};

/* Returns 0 with *url_r (free with redis_url_free), or -1 with *error_r. */
int redis_url_parse(const char *text, struct redis_url **url_r, const char **error_r);
void redis_url_free(struct redis_url *url);

/* A copy of text safe for logs and messages: any password replaced by `***`. */
char *redis_url_redact(const char *text);

#endif
