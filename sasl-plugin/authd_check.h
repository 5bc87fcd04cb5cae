/* samlgw-authd's one decision: is this password a token that grants this user this
 * service? Shared by the saslauthd socket server and the ejabberd/Prosody line
 * protocols. */
#ifndef SAMLGW_AUTHD_CHECK_H
#define SAMLGW_AUTHD_CHECK_H

#include "store.h"
#include "user_map.h"

struct authd_settings {
	struct store_options store;
	struct user_map map;
	const char *service; /* NULL: the service the client names */
	const char *default_service; /* used when the client names none */
};

/* login may be a bare JID, or a localpart completed by realm (when not empty) or the
 * map's domain. Returns STORE_OK, STORE_INVALID or STORE_UNAVAILABLE with *error_r; sets
 * *jid_r (caller frees) whenever the user name could be mapped, and *service_r to the
 * service checked (static or inside settings/service, valid until the next call). */
enum store_result authd_check(struct token_store *store, const struct authd_settings *settings,
			      const char *login, const char *realm, const char *service,
			      const char *password, char **jid_r, const char **error_r);

/* Does jid hold at least one live token? (ejabberd's and Prosody's isuser.) */
enum store_result authd_user_known(struct token_store *store,
				   const struct authd_settings *settings, const char *user,
				   const char *realm, const char **error_r);

#endif
