/* Every setting of the shared configuration file, declared once. config.c loads by this
 * table and `samlgw-config-reference` prints docs/config.md from it. */
#include "config.h"
#include "config_table.h"
#include "jid.h"
#include "log.h"
#include "redis_url.h"
#include "services.h"
#include "util.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static bool v_log_level(const char *value, const char **error_r)
{
	enum log_level level;
	if (!log_level_parse(value, &level)) {
		*error_r = "must be one of debug, info, warn, error";
		return false;
	}
	return true;
}

static bool v_redis_url(const char *value, const char **error_r)
{
	struct redis_url *url;
	if (redis_url_parse(value, &url, error_r) < 0)
		return false;
	redis_url_free(url);
	return true;
}

static bool v_prefix(const char *value, const char **error_r)
{
	size_t len = strlen(value);
	if (len == 0 || len > 64) {
		*error_r = "must be 1 to 64 characters";
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (value[i] <= ' ' || value[i] >= 0x7f || value[i] == '"') {
			*error_r = "must be printable ASCII without spaces or quotes";
			return false;
		}
	}
	return true;
}

static bool v_services(const char *value, const char **error_r)
{
	char *canonical;
	if (services_normalize(value, &canonical, error_r) < 0)
		return false;
	free(canonical);
	return true;
}

/* host:port with host an IPv4 address, a [bracketed IPv6] address or a name. */
static bool v_listen(const char *value, const char **error_r)
{
	const char *colon;
	if (value[0] == '[') {
		const char *rb = strchr(value, ']');
		if (rb == NULL || rb == value + 1 || rb[1] != ':') {
			*error_r = "must be HOST:PORT, with an IPv6 host in brackets ([::1]:5222)";
			return false;
		}
		colon = rb + 1;
	} else {
		colon = strrchr(value, ':');
		if (colon == NULL || colon == value || memchr(value, ':', (size_t)(colon - value))) {
			*error_r = "must be HOST:PORT, with an IPv6 host in brackets ([::1]:5222)";
			return false;
		}
		for (const char *p = value; p < colon; p++) {
			if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			      (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '*')) {
				*error_r = "the host holds characters a host name cannot";
				return false;
			}
		}
	}
	long long port;
	if (!parse_ll(colon + 1, 1, 65535, &port)) {
		*error_r = "the port must be a number from 1 to 65535";
		return false;
	}
	return true;
}

static bool v_public_url(const char *value, const char **error_r)
{
	const char *rest;
	if (strncmp(value, "https://", 8) == 0)
		rest = value + 8;
	else if (strncmp(value, "http://", 7) == 0)
		rest = value + 7;
	else {
		*error_r = "must start with https:// (or http:// for local tests)";
		return false;
	}
	if (*rest == '\0' || *rest == '/' || *rest == ':') {
		*error_r = "has no host";
		return false;
	}
	for (const char *p = rest; *p; p++) {
		if (*p <= ' ' || *p >= 0x7f || *p == '?' || *p == '#' || *p == '@' || *p == '"' ||
		    *p == '<' || *p == '>' || *p == '\\') {
			*error_r = "must be a plain URL: no spaces, credentials, query or fragment";
			return false;
		}
	}
	if (value[strlen(value) - 1] == '/') {
		*error_r = "must not end with '/'";
		return false;
	}
	return true;
}

/* An absolute URI such as an entityID: scheme ':' then printable ASCII. */
static bool v_uri(const char *value, const char **error_r)
{
	size_t len = strlen(value);
	if (len > 1024) {
		*error_r = "is longer than 1024 characters";
		return false;
	}
	const char *colon = strchr(value, ':');
	if (colon == NULL || colon == value) {
		*error_r = "must be an absolute URI (https://… or urn:…)";
		return false;
	}
	for (const char *p = value; p < colon; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (p > value && ((*p >= '0' && *p <= '9') || *p == '+' || *p == '-' || *p == '.')))) {
			*error_r = "must be an absolute URI (https://… or urn:…)";
			return false;
		}
	}
	for (const char *p = value; *p; p++) {
		if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '<' || *p == '>') {
			*error_r = "must be printable ASCII without spaces";
			return false;
		}
	}
	return true;
}

static bool v_domain(const char *value, const char **error_r)
{
	return jid_domain_valid(value, error_r);
}

static bool v_listen_or_none(const char *value, const char **error_r)
{
	return strcmp(value, "none") == 0 || v_listen(value, error_r);
}

#define TOP(field) offsetof(struct config, field)
#define DOM(field) offsetof(struct config_domain, field)

const char *const config_sections[] = {"log", "redis", "token", "http", "saml", "xmpp"};
const size_t config_sections_count = ARRAY_SIZE(config_sections);

enum {
	P_ALL = PROG_ALL,
	P_STORE = PROG_SAMLGW | PROG_XMPP | PROG_TOKEN | PROG_AUTHD | PROG_PLUGIN,
	P_ISSUE = PROG_SAMLGW | PROG_TOKEN,
};

const struct setting config_settings[] = {
	{"log", "level", SETTING_STRING, TOP(log.level), "info", 0, 0, v_log_level, 0, P_ALL,
	 "debug, info, warn or error", "Least important event that is logged."},
	{"log", "syslog", SETTING_BOOL, TOP(log.syslog), "no", 0, 0, NULL, 0, P_ALL, "yes or no",
	 "Also send every log line to syslog (facility daemon)."},

	{"redis", "url", SETTING_STRING, TOP(redis.url), "redis://127.0.0.1:6379", 0, 0,
	 v_redis_url, 0, P_STORE, "unix:///PATH[?db=N] or redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]",
	 "Where the token store lives. A unix socket is preferred; rediss:// is not supported."},
	{"redis", "prefix", SETTING_STRING, TOP(redis.prefix), "samlgw:", 0, 0, v_prefix, 0,
	 P_STORE, "1 to 64 printable characters",
	 "Every key samlgw writes starts with this (see docs/redis.md)."},
	{"redis", "timeout_ms", SETTING_INT, TOP(redis.timeout_ms), "500", 10, 60000, NULL, 0,
	 P_STORE, "milliseconds",
	 "Limit for connecting and for each command; past it the store counts as unavailable."},

	{"token", "default_ttl", SETTING_DURATION, TOP(token.default_ttl), "3600", 60,
	 10LL * 366 * 86400, NULL, 0, P_ISSUE, "seconds, or a number with s, m, h, d or w",
	 "Lifetime of a new token when none is asked for."},
	{"token", "max_ttl", SETTING_DURATION, TOP(token.max_ttl), "7776000", 60,
	 10LL * 366 * 86400, NULL, 0, P_ISSUE, "seconds, or a number with s, m, h, d or w",
	 "Longest lifetime a token may be issued with."},
	{"token", "services", SETTING_STRING, TOP(token.services), "xmpp", 0, 0, v_services, 0,
	 P_STORE, "comma list of service names, or *",
	 "Services a new token is valid for when none are asked for; the first one is what "
	 "`samlgw-token verify` checks by default."},
	{"token", "max_per_user", SETTING_INT, TOP(token.max_per_user), "50", 1, 10000, NULL, 0,
	 P_ISSUE, "number", "Most live tokens one JID may hold; issuing more is refused."},

	{"http", "listen", SETTING_STRING, TOP(http.listen), "127.0.0.1:8080", 0, 0, v_listen, 0,
	 PROG_SAMLGW, "HOST:PORT", "Where samlgw's web server listens (behind a TLS reverse proxy)."},
	{"http", "public_url", SETTING_STRING, TOP(http.public_url), NULL, 0, 0, v_public_url,
	 PROG_SAMLGW, PROG_SAMLGW, "https://HOST[:PORT][/PATH]",
	 "The external base URL; every URL samlgw shows or signs is built from it, never from "
	 "request headers."},

	{"saml", "entity_id", SETTING_STRING, TOP(saml.entity_id), NULL, 0, 0, v_uri, PROG_SAMLGW,
	 PROG_SAMLGW, "URI", "This service provider's SAML entityID."},
	{"saml", "key", SETTING_PATH, TOP(saml.key), NULL, 0, 0, NULL, PROG_SAMLGW, PROG_SAMLGW,
	 "file", "The SP's private key (PEM) for signing and decryption."},
	{"saml", "cert", SETTING_PATH, TOP(saml.cert), NULL, 0, 0, NULL, PROG_SAMLGW, PROG_SAMLGW,
	 "file", "The SP's certificate (PEM), published in its metadata."},
	{"saml", "idp_metadata", SETTING_PATH, TOP(saml.idp_metadata), NULL, 0, 0, NULL,
	 PROG_SAMLGW, PROG_SAMLGW, "file",
	 "A single IdP's EntityDescriptor or a federation aggregate (EntitiesDescriptor)."},
	{"saml", "metadata_cert", SETTING_PATH, TOP(saml.metadata_cert), NULL, 0, 0, NULL, 0,
	 PROG_SAMLGW, "file",
	 "When set, the metadata's signature must verify with this certificate."},

	{"xmpp", "listen", SETTING_LIST, TOP(xmpp.listen), "0.0.0.0:5222", 0, 0, v_listen_or_none,
	 0, PROG_XMPP, "HOST:PORT list, or none", "Client connections with STARTTLS."},
	{"xmpp", "listen_tls", SETTING_LIST, TOP(xmpp.listen_tls), "0.0.0.0:5223", 0, 0,
	 v_listen_or_none, 0, PROG_XMPP, "HOST:PORT list, or none",
	 "Client connections with direct TLS (XEP-0368)."},

	{"domain", "cert", SETTING_PATH, DOM(cert), NULL, 0, 0, NULL, PROG_XMPP, PROG_XMPP, "file",
	 "The domain's certificate chain (PEM) for XMPP TLS."},
	{"domain", "key", SETTING_PATH, DOM(key), NULL, 0, 0, NULL, PROG_XMPP, PROG_XMPP, "file",
	 "The private key of that certificate (PEM)."},
	{"domain", "idp", SETTING_LIST, DOM(idp), NULL, 0, 0, v_uri, PROG_SAMLGW, PROG_SAMLGW,
	 "list of entityIDs", "IdPs allowed to log users into this domain."},
	{"domain", "scope", SETTING_LIST, DOM(scope), NULL, 0, 0, v_domain, 0, PROG_SAMLGW,
	 "list of scopes (default: the domain's name)",
	 "Scope that scoped identifiers (eppn, subject-id) must carry to land in this domain."},
};
const size_t config_settings_count = ARRAY_SIZE(config_settings);

_Static_assert(ARRAY_SIZE(config_settings) <= CONFIG_MAX_SETTINGS, "raise CONFIG_MAX_SETTINGS");
