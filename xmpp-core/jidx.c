/* Parsing and normalisation of stanza addresses (see jidx.h). */
#include "jidx.h"
#include "jid.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

int resource_valid(const char *text)
{
	size_t len = strlen(text);
	return len > 0 && len <= RESOURCE_MAX && utf8_printable(text, len);
}

void xjid_clear(struct xjid *j)
{
	free(j->local);
	free(j->domain);
	free(j->resource);
	free(j->bare);
	free(j->full);
	memset(j, 0, sizeof(*j));
}

int xjid_parse(const char *text, struct xjid *out, const char **error_r)
{
	struct xjid j = {0};
	size_t len = strlen(text);
	if (len == 0 || len > 3071) {
		*error_r = "the JID is empty or too long";
		return -1;
	}
	const char *slash = strchr(text, '/');
	size_t bare_len = slash != NULL ? (size_t)(slash - text) : len;
	const char *at = memchr(text, '@', bare_len);
	const char *dom = at != NULL ? at + 1 : text;
	size_t dom_len = bare_len - (size_t)(dom - text);
	char *domain = xstrndup(dom, dom_len);
	for (char *p = domain; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	size_t dl = strlen(domain);
	if (dl > 1 && domain[dl - 1] == '.')
		domain[dl - 1] = '\0';
	if (!jid_domain_valid(domain, error_r)) {
		free(domain);
		return -1;
	}
	j.domain = domain;
	if (at != NULL) {
		size_t ll = (size_t)(at - text);
		if (!jid_localpart_valid(text, ll, error_r))
			goto fail;
		j.local = xstrndup(text, ll);
		for (char *p = j.local; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	}
	if (slash != NULL) {
		if (!resource_valid(slash + 1)) {
			*error_r = "the resource is empty, too long or not printable UTF-8";
			goto fail;
		}
		j.resource = xstrdup(slash + 1);
	}
	j.bare = j.local != NULL ? xasprintf("%s@%s", j.local, j.domain) : xstrdup(j.domain);
	j.full = j.resource != NULL ? xasprintf("%s/%s", j.bare, j.resource) : xstrdup(j.bare);
	*out = j;
	return 0;
fail:
	xjid_clear(&j);
	return -1;
}
