/* Service lists carried by tokens: names such as xmpp, imap, smtp, ldap, or `*` for all. */
#ifndef SAMLGW_SERVICES_H
#define SAMLGW_SERVICES_H

#include <stdbool.h>

#define SERVICE_NAME_MAX 32
#define SERVICES_MAX 16

/* True when name is a service name: 1..32 of [a-z0-9_.-], or `*`. */
bool service_name_valid(const char *name);

/* Parse a comma (or space) separated list into its canonical form: lowercased, duplicates
 * removed, in the order given, joined by ','. `*` absorbs every other name.
 * Returns 0 with *canonical_r (caller frees), or -1 with *error_r. */
int services_normalize(const char *list, char **canonical_r, const char **error_r);

/* True when a canonical list grants service (or holds `*`). */
bool services_allow(const char *canonical, const char *service);

#endif
