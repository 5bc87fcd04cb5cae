/* One HTTP(S) download of federation metadata into a file, with libcurl: https (http only
 * when the URL's host is loopback, as the configuration allows), TLS verified against the
 * system CA bundle, redirects only to https, timeouts, a size cap, gzip accepted, and a
 * conditional GET (If-None-Match / If-Modified-Since). It knows nothing about SAML: the
 * caller checks what was downloaded. */
#ifndef SAMLGW_METADATA_FETCH_H
#define SAMLGW_METADATA_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* Validators of the copy in hand, for a conditional GET; both optional. Owned by the
 * caller (metadata_fetch replaces them after a 200). */
struct fetch_validators {
	char *etag;	    /* the last ETag the server sent */
	time_t modified;   /* If-Modified-Since; 0: none */
};

enum fetch_result {
	FETCH_FAILED = -1,
	FETCH_NOT_MODIFIED = 0, /* 304: path untouched */
	FETCH_OK = 1,		/* 200: the body is in path */
};

/* Once per process, before any thread calls metadata_fetch. */
int metadata_fetch_init(const char **error_r);
void metadata_fetch_deinit(void);

/* GET url into path (created or truncated), at most max_size bytes (after decompression).
 * The transfer is abandoned soon after *cancel becomes true (read atomically; may be NULL).
 * Returns FETCH_OK (with v updated), FETCH_NOT_MODIFIED, or FETCH_FAILED with *error_r
 * (valid until the next call in the thread); path may then hold part of a body: the
 * caller removes it. */
enum fetch_result metadata_fetch(const char *url, const char *path, size_t max_size,
				 struct fetch_validators *v, const bool *cancel,
				 const char **error_r);

#endif
