/* Metadata download with libcurl (see metadata_fetch.h). */
#include "metadata_fetch.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#define CONNECT_TIMEOUT_S 15L
#define TOTAL_TIMEOUT_S 600L   /* eduGAIN's aggregate is ~100 MB */
#define LOW_SPEED_BYTES 1024L  /* slower than this ... */
#define LOW_SPEED_TIME_S 60L   /* ... for this long aborts */
#define MAX_REDIRECTS 5L
#define ETAG_MAX 256
#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

DEFINE_ERROR_FORMATTER(fmt_error, error_buf, 600)

int metadata_fetch_init(const char **error_r)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		*error_r = "cannot initialise libcurl";
		return -1;
	}
	return 0;
}

void metadata_fetch_deinit(void)
{
	curl_global_cleanup();
}

struct sink {
	int fd;
	size_t written, max;
	bool too_big, write_failed;
	char *etag;
};

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	struct sink *s = ctx;
	size_t len = size * n;
	if (len > s->max - s->written) {
		s->too_big = true;
		return 0; /* aborts the transfer */
	}
	for (size_t off = 0; off < len;) {
		ssize_t w = write(s->fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			s->write_failed = true;
			return 0;
		}
		off += (size_t)w;
	}
	s->written += len;
	return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
	struct sink *s = ctx;
	size_t len = size * n;
	/* A new response (after a redirect) starts with its status line. */
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		free(s->etag);
		s->etag = NULL;
	} else if (len > 5 && strncasecmp(data, "ETag:", 5) == 0) {
		size_t start = 5, end = len;
		while (start < end && (data[start] == ' ' || data[start] == '\t'))
			start++;
		while (end > start && (data[end - 1] == '\r' || data[end - 1] == '\n' ||
				       data[end - 1] == ' '))
			end--;
		free(s->etag);
		s->etag = NULL;
		if (end > start && end - start <= ETAG_MAX &&
		    utf8_printable(data + start, end - start)) {
			s->etag = xstrndup(data + start, end - start);
		}
	}
	return len;
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	const bool *cancel = ctx;
	return cancel != NULL && __atomic_load_n(cancel, __ATOMIC_SEQ_CST) ? 1 : 0;
}

enum fetch_result metadata_fetch(const char *url, const char *path, size_t max_size,
				 struct fetch_validators *v, const bool *cancel,
				 const char **error_r)
{
	struct sink sink = {.max = max_size};
	struct curl_slist *headers = NULL;
	char curl_error[CURL_ERROR_SIZE] = "";
	enum fetch_result ret = FETCH_FAILED;
	CURL *curl = NULL;
	sink.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (sink.fd < 0) {
		*error_r = fmt_error("cannot create %s: %s", path, strerror(errno));
		return FETCH_FAILED;
	}
	if ((curl = curl_easy_init()) == NULL) {
		*error_r = "cannot start a libcurl transfer";
		goto out;
	}
	bool http = strncmp(url, "http://", 7) == 0; /* loopback only: the config checks */
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, http ? "http" : "https");
	curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, http ? "http" : "https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, http ? 0L : 1L);
	curl_easy_setopt(curl, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, TOTAL_TIMEOUT_S);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, LOW_SPEED_BYTES);
	curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, LOW_SPEED_TIME_S);
	curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_size);
	curl_easy_setopt(curl, CURLOPT_ACCEPT_ENCODING, ""); /* every encoding libcurl has */
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	/* samlgw points OpenSSL's default CA locations away (sp_library_init): name the
	 * system bundle explicitly for TLS to the metadata server. */
	const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
	curl_easy_setopt(curl, CURLOPT_CAINFO,
			 info->cainfo != NULL ? info->cainfo : SYSTEM_CA_BUNDLE);
	if (info->capath != NULL)
		curl_easy_setopt(curl, CURLOPT_CAPATH, info->capath);
	curl_easy_setopt(curl, CURLOPT_USERAGENT, "samlgw/" SAMLGW_VERSION);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, &sink);
	curl_easy_setopt(curl, CURLOPT_FILETIME, 1L);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)cancel);
	if (v->etag != NULL) {
		char *h = xasprintf("If-None-Match: %s", v->etag);
		headers = curl_slist_append(headers, h);
		free(h);
		curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	}
	if (v->modified > 0) {
		curl_easy_setopt(curl, CURLOPT_TIMECONDITION, (long)CURL_TIMECOND_IFMODSINCE);
		curl_easy_setopt(curl, CURLOPT_TIMEVALUE_LARGE, (curl_off_t)v->modified);
	}
	CURLcode rc = curl_easy_perform(curl);
	long status = 0;
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (sink.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		*error_r = fmt_error("%s: the metadata is larger than %zu bytes", url, max_size);
		goto out;
	}
	if (sink.write_failed) {
		*error_r = fmt_error("cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	if (rc != CURLE_OK) {
		*error_r = fmt_error("%s: %s", url,
				     curl_error[0] != '\0' ? curl_error : curl_easy_strerror(rc));
		goto out;
	}
	long unmet = 0;
	curl_easy_getinfo(curl, CURLINFO_CONDITION_UNMET, &unmet);
	if (status == 304 || unmet) {
		ret = FETCH_NOT_MODIFIED;
		goto out;
	}
	if (status != 200) {
		*error_r = fmt_error("%s: the server answered HTTP %ld", url, status);
		goto out;
	}
	if (fsync(sink.fd) < 0) {
		*error_r = fmt_error("cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	curl_off_t filetime = -1;
	curl_easy_getinfo(curl, CURLINFO_FILETIME_T, &filetime);
	free(v->etag);
	v->etag = sink.etag;
	sink.etag = NULL;
	v->modified = filetime > 0 ? (time_t)filetime : 0;
	ret = FETCH_OK;
out:
	if (close(sink.fd) < 0 && ret == FETCH_OK) {
		*error_r = fmt_error("cannot write %s: %s", path, strerror(errno));
		ret = FETCH_FAILED;
	}
	free(sink.etag);
	curl_slist_free_all(headers);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	return ret;
}
