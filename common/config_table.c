/* Every setting of the shared configuration file, declared once. config.c loads by this
 * table and `samlgw-config-reference` prints docs/config.md from it. */
#include "access_rule.h"
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
	/* Browsers send the page's origin with the host in lower case and without the
	 * scheme's default port; POSTs are checked against it (and the IdP compares URLs
	 * built from this one byte for byte). */
	size_t hlen = strcspn(rest, "/");
	for (size_t i = 0; i < hlen; i++) {
		if (rest[i] >= 'A' && rest[i] <= 'Z') {
			*error_r = "must have its host in lower case, as browsers send it";
			return false;
		}
	}
	const char *dflt = rest == value + 8 ? ":443" : ":80";
	if (hlen > strlen(dflt) && strncmp(rest + hlen - strlen(dflt), dflt, strlen(dflt)) == 0) {
		*error_r = "must leave out the scheme's default port (:443 for https, :80 for http)";
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

/* An http(s) URL as published in metadata. */
static bool v_url(const char *value, const char **error_r)
{
	if (strncmp(value, "https://", 8) != 0 && strncmp(value, "http://", 7) != 0) {
		*error_r = "must be an http:// or https:// URL";
		return false;
	}
	return v_uri(value, error_r);
}

/* Where metadata is fetched from: https, or http to a loopback host (tests). */
static bool v_metadata_url(const char *value, const char **error_r)
{
	static const char *const loopback[] = {"http://127.0.0.1/", "http://127.0.0.1:",
					       "http://[::1]/", "http://[::1]:",
					       "http://localhost/", "http://localhost:"};
	if (strncmp(value, "http://", 7) == 0) {
		bool ok = false;
		for (size_t i = 0; i < ARRAY_SIZE(loopback); i++)
			ok = ok || strncmp(value, loopback[i], strlen(loopback[i])) == 0;
		if (!ok) {
			*error_r = "must be an https:// URL (http:// only to 127.0.0.1, [::1] or "
				   "localhost)";
			return false;
		}
	} else if (strncmp(value, "https://", 8) != 0) {
		*error_r = "must be an https:// URL";
		return false;
	}
	return v_uri(value, error_r);
}

/* A contact: a mail address (published as mailto:) or a URL. */
static bool v_contact(const char *value, const char **error_r)
{
	if (strchr(value, ':') == NULL) {
		const char *at = strchr(value, '@');
		if (at == NULL || at == value || at[1] == '\0' || strchr(at + 1, '@') != NULL) {
			*error_r = "must be a mail address or a mailto:/https: URL";
			return false;
		}
		for (const char *p = value; *p; p++) {
			if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '<' || *p == '>') {
				*error_r = "must be printable ASCII without spaces";
				return false;
			}
		}
		return true;
	}
	return v_uri(value, error_r);
}

/* Plain text published in metadata or shown on pages: printable UTF-8, 1..256 bytes. */
static bool v_text(const char *value, const char **error_r)
{
	size_t len = strlen(value);
	if (len > 256 || !utf8_printable(value, len)) {
		*error_r = "must be at most 256 bytes of printable UTF-8";
		return false;
	}
	return true;
}

/* A SAML attribute samlgw knows, by friendly name or urn:oid name. */
static bool v_attribute(const char *value, const char **error_r)
{
	static const char *const known[] = {
		"eduPersonPrincipalName", "urn:oid:1.3.6.1.4.1.5923.1.1.1.6",
		"subject-id", "urn:oasis:names:tc:SAML:attribute:subject-id",
		"pairwise-id", "urn:oasis:names:tc:SAML:attribute:pairwise-id",
		"eduPersonTargetedID", "urn:oid:1.3.6.1.4.1.5923.1.1.1.10",
		"mail", "urn:oid:0.9.2342.19200300.100.1.3",
		"displayName", "urn:oid:2.16.840.1.113730.3.1.241",
		"givenName", "urn:oid:2.5.4.42",
		"sn", "urn:oid:2.5.4.4",
		"eduPersonAffiliation", "urn:oid:1.3.6.1.4.1.5923.1.1.1.1",
		"eduPersonScopedAffiliation", "urn:oid:1.3.6.1.4.1.5923.1.1.1.9",
		"eduPersonEntitlement", "urn:oid:1.3.6.1.4.1.5923.1.1.1.7",
		"uid", "urn:oid:0.9.2342.19200300.100.1.1",
	};
	for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
		if (strcmp(value, known[i]) == 0)
			return true;
	}
	*error_r = "is not an attribute samlgw knows (eduPersonPrincipalName, subject-id, "
		   "pairwise-id, eduPersonTargetedID, mail, displayName, givenName, sn, uid, "
		   "eduPersonAffiliation, eduPersonScopedAffiliation, eduPersonEntitlement, or "
		   "their urn:oid names)";
	return false;
}

/* Where a JID's localpart comes from. */
static bool v_localpart(const char *value, const char **error_r)
{
	static const char *const known[] = {"eppn", "subject-id", "mail", "uid"};
	for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
		if (strcmp(value, known[i]) == 0)
			return true;
	}
	*error_r = "must be one of eppn, subject-id, mail, uid";
	return false;
}

/* An access rule "ATTRIBUTE: VALUE …" (common/access_rule.h) over an attribute samlgw
 * knows; scoped values only where the attribute is scoped. */
static bool v_require(const char *value, const char **error_r)
{
	struct access_rule rule;
	if (access_rule_parse(value, &rule, error_r) < 0)
		return false;
	bool ok = v_attribute(rule.attribute, error_r);
	bool scoped_aff = strcmp(rule.attribute, "eduPersonScopedAffiliation") == 0 ||
			  strcmp(rule.attribute, "urn:oid:1.3.6.1.4.1.5923.1.1.1.9") == 0;
	bool aff = strcmp(rule.attribute, "eduPersonAffiliation") == 0 ||
		   strcmp(rule.attribute, "urn:oid:1.3.6.1.4.1.5923.1.1.1.1") == 0;
	for (size_t i = 0; ok && i < rule.n_values; i++) {
		const char *v = rule.values[i], *at = strchr(v, '@');
		if (aff && at != NULL) {
			*error_r = "eduPersonAffiliation values carry no scope (for VALUE@SCOPE use "
				   "eduPersonScopedAffiliation)";
			ok = false;
		} else if (scoped_aff && at != NULL &&
			   (at == v || at[1] == '\0' || strchr(at + 1, '@') != NULL ||
			    !jid_domain_valid(at + 1, error_r))) {
			*error_r = "an eduPersonScopedAffiliation value is VALUE (any scope of the "
				   "IdP) or VALUE@SCOPE with one '@' and a lower-case domain as scope";
			ok = false;
		}
	}
	access_rule_clear(&rule);
	return ok;
}

static bool v_token_ttl(const char *value, const char **error_r)
{
	long long n;
	if (!parse_duration(value, &n) || n < 60 || n > 10LL * 366 * 86400) {
		*error_r = "each must be a duration from 60 s to 10 years (s, m, h, d or w suffix)";
		return false;
	}
	return true;
}

static bool v_listen_or_none(const char *value, const char **error_r)
{
	return strcmp(value, "none") == 0 || v_listen(value, error_r);
}

#define TOP(field) offsetof(struct config, field)
#define DOM(field) offsetof(struct config_domain, field)

const char *const config_sections[] = {"log", "redis", "token", "http", "saml", "web", "metadata",
				       "xmpp"};
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
	 "Where the token store lives. A unix socket is preferred; rediss:// is not supported. "
	 "In the credentials, percent-encode '/' and '@' (%2F, %40), and ':' in the user name."},
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
	 PROG_SAMLGW, PROG_SAMLGW, "https://HOST[:PORT][/PATH], host in lower case",
	 "The external base URL; every URL samlgw shows or signs is built from it, never from "
	 "request headers."},
	{"http", "threads", SETTING_INT, TOP(http.threads), "0", 0, 256, NULL, 0, PROG_SAMLGW,
	 "number", "Threads of the web server that read requests and write replies, each serving "
	 "its connections over epoll; a thread serving a single connection runs that request's "
	 "handler itself while another thread stays free to accept (one thread always does). 0: "
	 "one per CPU, plus one."},
	{"http", "workers", SETTING_INT, TOP(http.workers), "0", 0, 1024, NULL, 0, PROG_SAMLGW,
	 "number", "Threads that run the request handlers (they wait on Redis and do the RSA "
	 "work) of connections that share an epoll thread with others; 0: four per CPU, at "
	 "least 8."},

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
	{"saml", "metadata_url", SETTING_STRING, TOP(saml.metadata_url), NULL, 0, 0,
	 v_metadata_url, 0, PROG_SAMLGW, "https:// URL",
	 "Where samlgw fetches the IdP metadata (a federation aggregate) itself: at start when "
	 "idp_metadata is missing or older than metadata_refresh, then every metadata_refresh "
	 "and on SIGHUP. A fetched copy replaces idp_metadata (its folder must be writable) "
	 "only once it loads and verifies like a reload; otherwise the last good copy stays "
	 "in use. http:// only to 127.0.0.1, [::1] or localhost (tests)."},
	{"saml", "metadata_refresh", SETTING_DURATION, TOP(saml.metadata_refresh), "6h", 1,
	 7 * 86400, NULL, 0, PROG_SAMLGW, "seconds, or with s, m, h or d",
	 "How often metadata_url is fetched; after a failed fetch or check it is tried again "
	 "after 10 minutes (or this, when shorter)."},
	{"saml", "clock_skew", SETTING_DURATION, TOP(saml.clock_skew), "180", 0, 3600, NULL, 0,
	 PROG_SAMLGW, "seconds, or with s, m or h",
	 "Clock difference to the IdP tolerated in NotBefore and NotOnOrAfter checks."},
	{"saml", "request_ttl", SETTING_DURATION, TOP(saml.request_ttl), "10m", 60, 86400, NULL, 0,
	 PROG_SAMLGW, "seconds, or with s, m or h",
	 "How long a login started here may take at the IdP; its request ID is forgotten after."},
	{"saml", "allow_unsolicited", SETTING_BOOL, TOP(saml.allow_unsolicited), "no", 0, 0, NULL,
	 0, PROG_SAMLGW, "yes or no",
	 "Accept IdP-initiated responses (without InResponseTo). Off by default."},
	{"saml", "allow_sha1", SETTING_BOOL, TOP(saml.allow_sha1), "no", 0, 0, NULL, 0,
	 PROG_SAMLGW, "yes or no", "Accept RSA-SHA1 signatures and SHA-1 digests from IdPs."},
	{"saml", "allow_unsigned_cbc", SETTING_BOOL, TOP(saml.allow_unsigned_cbc), "no", 0, 0, NULL,
	 0, PROG_SAMLGW, "yes or no",
	 "Accept an assertion encrypted with AES-CBC in a Response that is not signed. Its "
	 "ciphertext is then decrypted before any signature covers it, which is what the XML "
	 "Encryption CBC attack needs, and an attacker can relabel an AES-GCM assertion as "
	 "CBC to attack it the same way; keep /metrics unreachable from outside then (its ACS "
	 "timings are precise). Off, such Responses are refused before decryption and the IdP "
	 "must sign the Response or encrypt with AES-GCM (this SP's metadata asks for GCM "
	 "first)."},
	{"saml", "discovery_url", SETTING_STRING, TOP(saml.discovery_url), NULL, 0, 0, v_url, 0,
	 PROG_SAMLGW, "URL",
	 "A SAML discovery service (IdP chooser) to send users to when several IdPs are known; "
	 "unset: samlgw's own chooser page."},

	{"web", "templates", SETTING_PATH, TOP(web.templates), "/usr/share/samlgw/templates", 0, 0,
	 NULL, 0, PROG_SAMLGW, "folder", "Page templates and translations."},
	{"web", "session_idle", SETTING_DURATION, TOP(web.session_idle), "30m", 60, 7 * 86400,
	 NULL, 0, PROG_SAMLGW, "seconds, or with s, m, h or d",
	 "A web session ends after this long without a request."},
	{"web", "session_max", SETTING_DURATION, TOP(web.session_max), "12h", 60, 30 * 86400, NULL,
	 0, PROG_SAMLGW, "seconds, or with s, m, h or d",
	 "A web session ends this long after the login, however active."},
	{"web", "token_ttls", SETTING_LIST, TOP(web.token_ttls), "1d 7d 30d 90d", 0, 0, v_token_ttl,
	 0, PROG_SAMLGW, "list of durations",
	 "Lifetimes offered on the account page (those above token.max_ttl are not shown)."},
	{"web", "xmpp_port", SETTING_INT, TOP(web.xmpp_port), "5222", 1, 65535, NULL, 0,
	 PROG_SAMLGW, "port", "The XMPP port shown to users for manual client setup."},
	{"web", "logout_revokes_tokens", SETTING_BOOL, TOP(web.logout_revokes_tokens), "no", 0, 0,
	 NULL, 0, PROG_SAMLGW, "yes or no",
	 "Logging out (the logout button, or single logout started by the IdP) also revokes the "
	 "tokens issued in that web session. No: they keep working until they expire or are "
	 "revoked."},

	{"metadata", "display_name", SETTING_STRING, TOP(metadata.display_name), "samlgw chat", 0,
	 0, v_text, 0, PROG_SAMLGW, "text", "mdui:DisplayName of this service."},
	{"metadata", "description", SETTING_STRING, TOP(metadata.description),
	 "Tokens for chat and mail clients", 0, 0, v_text, 0, PROG_SAMLGW, "text",
	 "mdui:Description of this service."},
	{"metadata", "information_url", SETTING_STRING, TOP(metadata.information_url), NULL, 0, 0,
	 v_url, 0, PROG_SAMLGW, "URL", "mdui:InformationURL (default: public_url)."},
	{"metadata", "privacy_url", SETTING_STRING, TOP(metadata.privacy_url), NULL, 0, 0, v_url,
	 0, PROG_SAMLGW, "URL", "mdui:PrivacyStatementURL; federations require one."},
	{"metadata", "logo_url", SETTING_STRING, TOP(metadata.logo_url), NULL, 0, 0, v_url, 0,
	 PROG_SAMLGW, "URL", "mdui:Logo."},
	{"metadata", "logo_width", SETTING_INT, TOP(metadata.logo_width), "80", 1, 4096, NULL, 0,
	 PROG_SAMLGW, "pixels", "Width of the logo."},
	{"metadata", "logo_height", SETTING_INT, TOP(metadata.logo_height), "60", 1, 4096, NULL, 0,
	 PROG_SAMLGW, "pixels", "Height of the logo."},
	{"metadata", "organization", SETTING_STRING, TOP(metadata.organization), NULL, 0, 0, v_text,
	 0, PROG_SAMLGW, "text", "OrganizationName (with organization_url)."},
	{"metadata", "organization_url", SETTING_STRING, TOP(metadata.organization_url), NULL, 0, 0,
	 v_url, 0, PROG_SAMLGW, "URL", "OrganizationURL."},
	{"metadata", "contact_technical", SETTING_STRING, TOP(metadata.contact_technical), NULL, 0,
	 0, v_contact, 0, PROG_SAMLGW, "mail address or URL", "Technical ContactPerson."},
	{"metadata", "contact_support", SETTING_STRING, TOP(metadata.contact_support), NULL, 0, 0,
	 v_contact, 0, PROG_SAMLGW, "mail address or URL", "Support ContactPerson."},
	{"metadata", "contact_security", SETTING_STRING, TOP(metadata.contact_security), NULL, 0, 0,
	 v_contact, 0, PROG_SAMLGW, "mail address or URL",
	 "REFEDS security contact (Sirtfi), published as remd:contactType security."},
	{"metadata", "requested_attributes", SETTING_LIST, TOP(metadata.requested_attributes),
	 "mail displayName givenName sn eduPersonScopedAffiliation", 0, 0, v_attribute, 0,
	 PROG_SAMLGW, "attribute names", "RequestedAttribute entries with isRequired=\"false\"."},
	{"metadata", "required_attributes", SETTING_LIST, TOP(metadata.required_attributes),
	 "eduPersonPrincipalName", 0, 0, v_attribute, 0, PROG_SAMLGW, "attribute names",
	 "RequestedAttribute entries with isRequired=\"true\"."},
	{"metadata", "entity_categories", SETTING_LIST, TOP(metadata.entity_categories), NULL, 0,
	 0, v_uri, 0, PROG_SAMLGW, "list of URIs",
	 "Entity categories this SP claims (e.g. http://refeds.org/category/research-and-"
	 "scholarship), published as values of the entity attribute "
	 "http://macedir.org/entity-category. The federation must approve them."},
	{"metadata", "assurance_certifications", SETTING_LIST,
	 TOP(metadata.assurance_certifications), NULL, 0, 0, v_uri, 0, PROG_SAMLGW,
	 "list of URIs",
	 "Assurance certifications this SP claims (e.g. https://refeds.org/sirtfi), published "
	 "as values of the entity attribute "
	 "urn:oasis:names:tc:SAML:attribute:assurance-certification. Sirtfi needs "
	 "contact_security."},

	{"xmpp", "listen", SETTING_LIST, TOP(xmpp.listen), "0.0.0.0:5222", 0, 0, v_listen_or_none,
	 0, PROG_XMPP, "HOST:PORT list, or none", "Client connections with STARTTLS."},
	{"xmpp", "listen_tls", SETTING_LIST, TOP(xmpp.listen_tls), "0.0.0.0:5223", 0, 0,
	 v_listen_or_none, 0, PROG_XMPP, "HOST:PORT list, or none",
	 "Client connections with direct TLS (XEP-0368)."},
	{"xmpp", "max_stanza_size", SETTING_INT, TOP(xmpp.max_stanza_size), "262144", 10000,
	 16777216, NULL, 0, PROG_XMPP, "bytes",
	 "Largest stanza (and stream header) a client may send; more closes the stream with "
	 "policy-violation. Advertised to clients (XEP-0478)."},
	{"xmpp", "max_output", SETTING_INT, TOP(xmpp.max_output), "1048576", 65536, 1073741824,
	 NULL, 0, PROG_XMPP, "bytes",
	 "Most bytes queued for a client that does not read (at least twice max_stanza_size is "
	 "used); more ends its stream with policy-violation. Above a quarter of it, the server "
	 "stops reading from that client until it has read."},
	{"xmpp", "max_connections", SETTING_INT, TOP(xmpp.max_connections), "30000", 1, 10000000,
	 NULL, 0, PROG_XMPP, "number",
	 "Most client connections at once; further ones are closed as they arrive."},
	{"xmpp", "max_connections_per_ip", SETTING_INT, TOP(xmpp.max_connections_per_ip), "1000",
	 0, 10000000, NULL, 0, PROG_XMPP, "number, 0: no cap",
	 "Most client connections at once from one IPv4 address or one IPv6 /64 (a campus NAT "
	 "may need many)."},
	{"xmpp", "auth_timeout", SETTING_DURATION, TOP(xmpp.auth_timeout), "60", 1, 3600, NULL, 0,
	 PROG_XMPP, "seconds, or with s, m or h",
	 "A connection that has not authenticated this long after it was accepted is closed "
	 "(connection-timeout), whatever it sends."},
	{"xmpp", "tls_timeout", SETTING_DURATION, TOP(xmpp.tls_timeout), "10", 1, 300, NULL, 0,
	 PROG_XMPP, "seconds, or with s, m or h",
	 "A TLS handshake (direct TLS or after STARTTLS) that takes longer is dropped."},
	{"xmpp", "idle_timeout", SETTING_DURATION, TOP(xmpp.idle_timeout), "10m", 30, 86400, NULL,
	 0, PROG_XMPP, "seconds, or with s, m or h",
	 "A connection that sends nothing for this long is closed (connection-timeout)."},
	{"xmpp", "keepalive", SETTING_DURATION, TOP(xmpp.keepalive), "60", 5, 3600, NULL, 0,
	 PROG_XMPP, "seconds, or with s, m or h",
	 "The server sends a whitespace keepalive after this long without output."},
	{"xmpp", "max_roster", SETTING_INT, TOP(xmpp.max_roster), "1000", 10, 100000, NULL, 0,
	 PROG_XMPP, "number",
	 "Most roster items one user may hold; a roster also holds at most this times 256 bytes "
	 "of JIDs, names and groups in all."},
	{"xmpp", "max_offline", SETTING_INT, TOP(xmpp.max_offline), "100", 0, 100000, NULL, 0,
	 PROG_XMPP, "number",
	 "Most messages kept for a user who is offline; further ones are bounced. 0: none."},
	{"xmpp", "max_offline_bytes", SETTING_INT, TOP(xmpp.max_offline_bytes), "1048576", 65536,
	 1073741824, NULL, 0, PROG_XMPP, "bytes",
	 "Most bytes kept for a user who is offline (one stanza: at most 64 KiB); further "
	 "messages are bounced."},
	{"xmpp", "offline_ttl", SETTING_DURATION, TOP(xmpp.offline_ttl), "30d", 60,
	 366LL * 86400, NULL, 0, PROG_XMPP, "seconds, or with s, m, h, d or w",
	 "Messages kept for an offline user are dropped this long after the last one arrived."},
	{"xmpp", "auth_failures", SETTING_INT, TOP(xmpp.auth_failures), "5", 1, 1000, NULL, 0,
	 PROG_XMPP, "number",
	 "Failed logins per client address (IPv6: per /64) in a minute before every further "
	 "check from there waits a second. Valid tokens are never refused."},
	{"xmpp", "version", SETTING_BOOL, TOP(xmpp.version), "yes", 0, 0, NULL, 0, PROG_XMPP,
	 "yes or no", "Answer XEP-0092 software version queries."},
	{"xmpp", "user", SETTING_STRING, TOP(xmpp.user), NULL, 0, 0, NULL, 0, PROG_XMPP,
	 "user name",
	 "When started as root, switch to this user (and its group) after opening the listening "
	 "sockets. Certificate files must stay readable by it for reloads on SIGHUP."},

	{"domain", "cert", SETTING_PATH, DOM(cert), NULL, 0, 0, NULL, PROG_XMPP, PROG_XMPP, "file",
	 "The domain's certificate chain (PEM) for XMPP TLS."},
	{"domain", "key", SETTING_PATH, DOM(key), NULL, 0, 0, NULL, PROG_XMPP, PROG_XMPP, "file",
	 "The private key of that certificate (PEM)."},
	{"domain", "idp", SETTING_LIST, DOM(idp), NULL, 0, 0, v_uri, PROG_SAMLGW, PROG_SAMLGW,
	 "list of entityIDs", "IdPs allowed to log users into this domain."},
	{"domain", "scope", SETTING_LIST, DOM(scope), NULL, 0, 0, v_domain, 0, PROG_SAMLGW,
	 "list of scopes (default: the domain's name)",
	 "Scope that scoped identifiers (eppn, subject-id) must carry to land in this domain."},
	{"domain", "localpart", SETTING_STRING, DOM(localpart), "eppn", 0, 0, v_localpart, 0,
	 PROG_SAMLGW, "eppn, subject-id, mail or uid",
	 "Attribute whose value (the part before '@' for eppn, subject-id and mail) becomes the "
	 "JID's localpart, lowercased; the part after '@' must be a scope of the domain and a "
	 "shibmd:Scope of the IdP. uid carries no scope: only with exactly one idp."},
	{"domain", "require", SETTING_LINES, DOM(require), NULL, 0, 0, v_require, 0, PROG_SAMLGW,
	 "ATTRIBUTE: VALUE [VALUE …]",
	 "An access rule, checked once the user's domain is chosen: the user must have one of "
	 "the values (space-separated) in the attribute (friendly or urn:oid name). Repeat the "
	 "key for more rules; all must hold. eduPersonAffiliation compares case-insensitively; "
	 "an eduPersonScopedAffiliation value without '@' matches any scope the IdP may "
	 "assert, with '@' that scope (both case-insensitively); other attributes compare "
	 "exactly. Unset: every user the domain accepts may log in."},
};
const size_t config_settings_count = ARRAY_SIZE(config_settings);

_Static_assert(ARRAY_SIZE(config_settings) <= CONFIG_MAX_SETTINGS, "raise CONFIG_MAX_SETTINGS");
