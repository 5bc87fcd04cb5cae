/* User name to bare JID mapping for the SASL plugin and samlgw-authd (see user_map.h). */
#include "user_map.h"

#include <stdio.h>
#include <string.h>

bool user_mode_parse(const char *text, enum user_mode *mode_r)
{
	if (strcmp(text, "jid") == 0)
		*mode_r = USER_MODE_JID;
	else if (strcmp(text, "localpart") == 0)
		*mode_r = USER_MODE_LOCALPART;
	else
		return false;
	return true;
}

int user_map_check(const struct user_map *map, const char **error_r)
{
	if (map->domain != NULL && !jid_domain_valid(map->domain, error_r))
		return -1;
	if (map->mode == USER_MODE_LOCALPART && map->domain == NULL) {
		*error_r = "user names as localparts need a domain to make the JID";
		return -1;
	}
	if (map->restrict_domain && map->domain == NULL) {
		*error_r = "restricting user names to a domain needs that domain";
		return -1;
	}
	return 0;
}

const char *user_map_required_domain(const struct user_map *map)
{
	return map->mode == USER_MODE_LOCALPART || map->restrict_domain ? map->domain : NULL;
}

/* The same rules as jid_bare_normalize (common/jid.c), which allocates with an aborting
 * allocator; test_sasl_parse checks that the two agree. */
int user_map_normalize(const char *text, size_t len, char out[USER_MAP_BUF],
		       const char **error_r)
{
	if (len > JID_BARE_MAX) {
		*error_r = "the JID is too long";
		return -1;
	}
	if (memchr(text, '/', len) != NULL) {
		*error_r = "a bare JID may not carry a /resource";
		return -1;
	}
	const char *at = memchr(text, '@', len);
	if (at == NULL) {
		*error_r = "the JID must have the form localpart@domain";
		return -1;
	}
	size_t llen = (size_t)(at - text);
	char jid[USER_MAP_BUF];
	for (size_t i = 0; i < len; i++)
		jid[i] = (char)(text[i] >= 'A' && text[i] <= 'Z' ? text[i] - 'A' + 'a' : text[i]);
	jid[len] = '\0';
	/* A single trailing dot in the domain is the same domain (RFC 7622 §3.2). */
	if (len > llen + 2 && jid[len - 1] == '.')
		jid[--len] = '\0';
	if (!jid_localpart_valid(jid, llen, error_r) || !jid_domain_valid(jid + llen + 1, error_r))
		return -1;
	memcpy(out, jid, len + 1);
	return 0;
}

int user_map_apply(const struct user_map *map, const char *user, size_t len,
		   char jid_r[USER_MAP_BUF], char name_r[USER_MAP_BUF], const char **error_r)
{
	if (len == 0 || len > JID_BARE_MAX || memchr(user, '\0', len) != NULL) {
		*error_r = "the user name is empty, too long or holds a NUL";
		return -1;
	}
	char text[USER_MAP_BUF + JID_DOMAIN_MAX + 1];
	size_t text_len = len;
	if (memchr(user, '@', len) != NULL) {
		memcpy(text, user, len);
	} else if (map->domain != NULL) {
		int n = snprintf(text, sizeof(text), "%.*s@%s", (int)len, user, map->domain);
		if (n < 0 || (size_t)n >= sizeof(text)) {
			*error_r = "the user name is too long";
			return -1;
		}
		text_len = (size_t)n;
	} else {
		*error_r = "the user name has no domain and none is configured";
		return -1;
	}
	char jid[USER_MAP_BUF];
	if (user_map_normalize(text, text_len, jid, error_r) < 0)
		return -1;
	const char *required = user_map_required_domain(map);
	if (required != NULL && strcmp(strrchr(jid, '@') + 1, required) != 0) {
		*error_r = "the user belongs to another domain than the configured one";
		return -1;
	}
	size_t jid_len = strlen(jid);
	if (map->mode == USER_MODE_LOCALPART) {
		size_t local_len = (size_t)(strrchr(jid, '@') - jid);
		memcpy(name_r, jid, local_len);
		name_r[local_len] = '\0';
	} else {
		memcpy(name_r, jid, jid_len + 1);
	}
	memcpy(jid_r, jid, jid_len + 1);
	return 0;
}
