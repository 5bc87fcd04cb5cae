/* The SASL plugin's options, as the host application's SASL configuration gives them
 * (smtpd.conf, or imapd.conf with the sasl_ prefix):
 *
 *   samlgw_config      the shared samlgw INI file; its [redis] section is used
 *   samlgw_redis       Redis URL (overrides the file's redis.url; enough on its own)
 *   samlgw_prefix      key prefix when no config file is used (default samlgw:)
 *   samlgw_timeout_ms  Redis timeout when no config file is used (default 500)
 *   samlgw_service     service name tokens must grant (default: the application's)
 *   samlgw_username    jid (default) or localpart: what the application calls the user
 *   samlgw_domain      this application's domain: completes user names without '@',
 *                      and users of any other domain are refused (in every mode)
 *
 * Reading them does no network I/O; the option source is a callback so that tests need
 * no libsasl. */
#ifndef SAMLGW_PLUGIN_SETTINGS_H
#define SAMLGW_PLUGIN_SETTINGS_H

#include "store.h"
#include "user_map.h"

struct plugin_settings {
	struct store_options store; /* url and prefix owned */
	char *service;              /* NULL: the application's service name */
	enum user_mode user_mode;
	char *domain;               /* NULL when not set */
};

/* Returns the option's value or NULL when it is not set. */
typedef const char *plugin_option_get(void *context, const char *name);

enum plugin_settings_result {
	PLUGIN_CONFIGURED = 0,
	PLUGIN_UNCONFIGURED = 1, /* neither samlgw_config nor samlgw_redis is set */
	PLUGIN_BROKEN = 2,       /* *error_r says why (allocated; caller frees) */
	PLUGIN_NOMEM = 3,        /* memory ran out */
};

enum plugin_settings_result plugin_settings_load(plugin_option_get *get, void *context,
						 struct plugin_settings *settings_r,
						 char **error_r);

/* The user map these settings describe (valid while settings live). */
struct user_map plugin_settings_user_map(const struct plugin_settings *settings);

void plugin_settings_clear(struct plugin_settings *settings);

#endif
