/* Bare JIDs (RFC 7622) as the token store keys them: `localpart@domain`, ASCII letters
 * lowercased, domain in A-label form. Non-ASCII localpart characters are kept as given
 * (they must be valid UTF-8); no full PRECIS mapping is applied. */
#ifndef SAMLGW_JID_H
#define SAMLGW_JID_H

#include <stdbool.h>
#include <stddef.h>

#define JID_LOCAL_MAX 1023
#define JID_DOMAIN_MAX 253
#define JID_BARE_MAX (JID_LOCAL_MAX + 1 + JID_DOMAIN_MAX)

/* Normalise a bare JID into a new string (*jid_r, caller frees).
 * Returns 0, or -1 with *error_r saying what is wrong with it. */
int jid_bare_normalize(const char *text, char **jid_r, const char **error_r);

/* True when name is a valid DNS domain as used for an XMPP domain (lowercase, LDH labels). */
bool jid_domain_valid(const char *name, const char **error_r);

/* True when the localpart holds no character RFC 7622 forbids and is valid UTF-8. */
bool jid_localpart_valid(const char *local, size_t len, const char **error_r);

#endif
