/* The shared configuration file (INI). Every setting is declared once in the table in
 * config_table.c (section, key, type, default, range, validator, one-line doc); loading,
 * `--check` and docs/config.md all come from that table.
 *
 * One file serves every program: each loads it with its own program bit, which decides
 * which settings are required and which files must exist. Unknown sections and keys are
 * always errors, so a typo never passes silently. */
#ifndef SAMLGW_CONFIG_H
#define SAMLGW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Programs, as bits: what a setting is required by or used by. */
enum config_prog {
	PROG_SAMLGW = 1u << 0,
	PROG_XMPP = 1u << 1,
	PROG_TOKEN = 1u << 2, /* samlgw-token */
	PROG_AUTHD = 1u << 3, /* samlgw-authd */
	PROG_PLUGIN = 1u << 4, /* libsamlgw.so */
	PROG_ALL = 0x1fu,
};

#define CONFIG_MAX_SETTINGS 128
/* The largest config file read. */
#define CONFIG_FILE_MAX (1024 * 1024)
#define CONFIG_MAX_DOMAINS 1000

struct strlist {
	char **v;
	size_t n;
};

struct config_domain {
	char *name;
	unsigned line; /* of the [domain NAME] header */
	char *cert;
	char *key;
	struct strlist idp;
	struct strlist scope;
	char *localpart;
	struct strlist require; /* access rules, one per line (common/access_rule.h) */
	unsigned set_line[CONFIG_MAX_SETTINGS];
};

struct config {
	char *path; /* as given */
	char *dir;  /* relative paths resolve against this */
	struct {
		char *level;
		bool syslog;
	} log;
	struct {
		char *url;
		char *prefix;
		long long timeout_ms;
	} redis;
	struct {
		long long default_ttl;
		long long max_ttl;
		char *services;
		long long max_per_user;
	} token;
	struct {
		char *listen;
		char *public_url;
		long long threads;
		long long workers;
	} http;
	struct {
		char *entity_id;
		char *key;
		char *cert;
		char *idp_metadata;
		char *metadata_cert;
		char *metadata_url;
		long long metadata_refresh;
		long long clock_skew;
		long long request_ttl;
		bool allow_unsolicited;
		bool allow_sha1;
		bool allow_unsigned_cbc;
		char *discovery_url;
	} saml;
	struct {
		char *templates;
		long long session_idle;
		long long session_max;
		struct strlist token_ttls;
		long long xmpp_port;
		bool logout_revokes_tokens;
	} web;
	struct {
		char *display_name;
		char *description;
		char *information_url;
		char *privacy_url;
		char *logo_url;
		long long logo_width;
		long long logo_height;
		char *organization;
		char *organization_url;
		char *contact_technical;
		char *contact_support;
		char *contact_security;
		struct strlist requested_attributes;
		struct strlist required_attributes;
		struct strlist entity_categories;
		struct strlist assurance_certifications;
	} metadata;
	struct {
		struct strlist listen;
		struct strlist listen_tls;
		long long max_stanza_size;
		long long idle_timeout;
		long long keepalive;
		long long max_roster;
		long long max_offline;
		long long max_offline_bytes;
		long long max_output;
		long long max_connections;
		long long max_connections_per_ip;
		long long auth_timeout;
		long long tls_timeout;
		long long offline_ttl;
		long long auth_failures;
		bool version;
		char *user;
	} xmpp;
	struct config_domain *domains;
	size_t n_domains;
	unsigned set_line[CONFIG_MAX_SETTINGS];
};

/* Problems found while loading, each "FILE:LINE: message", in file order. */
struct config_problems {
	char **v;
	size_t n;
};

/* Read and check path for the programs in prog. Returns 0 with *config_r, or -1 with
 * every problem in *problems (the caller frees them with config_problems_free). */
int config_load(const char *path, unsigned prog, struct config **config_r,
		struct config_problems *problems);

/* The same over a buffer already in memory; name is used in messages and dir resolves
 * relative paths. data need not be NUL-terminated. */
int config_parse(const char *name, const char *dir, const char *data, size_t len, unsigned prog,
		 struct config **config_r, struct config_problems *problems);

void config_free(struct config *config);
void config_problems_free(struct config_problems *problems);

/* The domain section named name, or NULL. */
const struct config_domain *config_domain_find(const struct config *config, const char *name);

/* Write the config reference (Markdown) generated from the table. */
void config_write_reference(FILE *out);

#endif
