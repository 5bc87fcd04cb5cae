/* From the user name a SASL client or a saslauthd request gives to the bare JID the
 * token store keys tokens by, and to the name the host application knows the user as.
 *
 *   mode jid:       the application's user name is the bare JID (alice@example.org);
 *                   a name without '@' is completed with domain when one is set.
 *   mode localpart: the application's user name is the localpart (alice); names are
 *                   completed with domain, which is required, and a name that carries
 *                   another domain is refused (alice@elsewhere.org must not become the
 *                   local user alice). */
#ifndef SAMLGW_USER_MAP_H
#define SAMLGW_USER_MAP_H

#include <stdbool.h>
#include <stddef.h>

enum user_mode {
	USER_MODE_JID = 0,
	USER_MODE_LOCALPART,
};

struct user_map {
	enum user_mode mode;
	const char *domain; /* NULL or a valid lowercase domain */
};

/* Parse "jid" or "localpart". */
bool user_mode_parse(const char *text, enum user_mode *mode_r);

/* Check the map itself (localpart mode needs a domain; the domain must be valid).
 * Returns 0 or -1 with *error_r. */
int user_map_check(const struct user_map *map, const char **error_r);

/* Map user[0..len) (not NUL-terminated, at most JID_BARE_MAX bytes). Returns 0 with
 * *jid_r and *name_r (caller frees both), or -1 with *error_r (static). */
int user_map_apply(const struct user_map *map, const char *user, size_t len, char **jid_r,
		   char **name_r, const char **error_r);

#endif
