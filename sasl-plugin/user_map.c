/* User name to bare JID mapping for the SASL plugin and samlgw-authd (see user_map.h). */
#include "user_map.h"
#include "jid.h"
#include "util.h"

#include <stdlib.h>
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
	return 0;
}

int user_map_apply(const struct user_map *map, const char *user, size_t len, char **jid_r,
		   char **name_r, const char **error_r)
{
	if (len == 0 || len > JID_BARE_MAX || memchr(user, '\0', len) != NULL) {
		*error_r = "the user name is empty, too long or holds a NUL";
		return -1;
	}
	char *text;
	if (memchr(user, '@', len) != NULL) {
		text = xstrndup(user, len);
	} else if (map->domain != NULL) {
		text = xasprintf("%.*s@%s", (int)len, user, map->domain);
	} else {
		*error_r = "the user name has no domain and none is configured";
		return -1;
	}
	char *jid;
	int ret = jid_bare_normalize(text, &jid, error_r);
	free(text);
	if (ret < 0)
		return -1;
	const char *at = strrchr(jid, '@');
	if (map->mode == USER_MODE_LOCALPART) {
		if (at == NULL || strcmp(at + 1, map->domain) != 0) {
			free(jid);
			*error_r = "the user belongs to another domain than the configured one";
			return -1;
		}
		*name_r = xstrndup(jid, (size_t)(at - jid));
	} else {
		*name_r = xstrdup(jid);
	}
	*jid_r = jid;
	return 0;
}
