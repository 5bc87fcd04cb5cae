/* From the user name a SASL client or a saslauthd request gives to the bare JID the
 * token store keys tokens by, and to the name the host application knows the user as.
 *
 *   mode jid:       the application's user name is the bare JID (alice@example.org);
 *                   a name without '@' is completed with domain when one is set.
 *   mode localpart: the application's user name is the localpart (alice); names are
 *                   completed with domain, which is required, and a name that carries
 *                   another domain is refused (alice@elsewhere.org must not become the
 *                   local user alice).
 *
 * With restrict_domain, a name of another domain is refused in jid mode too: the domain
 * then says who the application's users are, not only how short names are completed.
 *
 * Nothing here allocates: the SASL plugin maps names inside other people's daemons, where
 * running out of memory must be an error, never an abort. */
#ifndef SAMLGW_USER_MAP_H
#define SAMLGW_USER_MAP_H

#include <stdbool.h>
#include <stddef.h>

#include "jid.h"

/* Room for a mapped JID or user name, with its NUL. */
#define USER_MAP_BUF (JID_BARE_MAX + 1)

enum user_mode {
	USER_MODE_JID = 0,
	USER_MODE_LOCALPART,
};

struct user_map {
	enum user_mode mode;
	const char *domain; /* NULL or a valid lowercase domain */
	bool restrict_domain; /* refuse other domains in jid mode too (localpart mode always does) */
};

/* Parse "jid" or "localpart". */
bool user_mode_parse(const char *text, enum user_mode *mode_r);

/* Check the map itself (localpart mode and restrict_domain need a domain; the domain must
 * be valid). Returns 0 or -1 with *error_r. */
int user_map_check(const struct user_map *map, const char **error_r);

/* The one domain whose users the map admits, or NULL when it admits every domain. */
const char *user_map_required_domain(const struct user_map *map);

/* Map user[0..len) (not NUL-terminated, at most JID_BARE_MAX bytes). Returns 0 with
 * jid_r and name_r filled, or -1 with *error_r (static); neither buffer is written then. */
int user_map_apply(const struct user_map *map, const char *user, size_t len,
		   char jid_r[USER_MAP_BUF], char name_r[USER_MAP_BUF], const char **error_r);

/* Normalise a bare JID (jid_bare_normalize's rules) into out without allocating. Returns 0,
 * or -1 with *error_r. */
int user_map_normalize(const char *text, size_t len, char out[USER_MAP_BUF],
		       const char **error_r);

#endif
