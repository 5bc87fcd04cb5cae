/* Bare JID validation and normalisation for token ownership (see jid.h). */
#include "jid.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

bool jid_localpart_valid(const char *local, size_t len, const char **error_r)
{
	if (len == 0) {
		*error_r = "the JID has an empty localpart";
		return false;
	}
	if (len > JID_LOCAL_MAX) {
		*error_r = "the JID localpart is longer than 1023 bytes";
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (strchr("\"&'/:<>@ ", local[i]) != NULL) {
			*error_r = "the JID localpart holds a character RFC 7622 forbids "
				   "(space \" & ' / : < > @)";
			return false;
		}
	}
	if (!utf8_printable(local, len)) {
		*error_r = "the JID localpart is not printable UTF-8";
		return false;
	}
	return true;
}

bool jid_domain_valid(const char *name, const char **error_r)
{
	size_t len = strlen(name);
	if (len == 0 || len > JID_DOMAIN_MAX) {
		*error_r = "the domain must be 1 to 253 characters";
		return false;
	}
	size_t label = 0;
	for (size_t i = 0; i <= len; i++) {
		char c = name[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63) {
				*error_r = "each label of the domain must be 1 to 63 characters";
				return false;
			}
			if (name[i - 1] == '-') {
				*error_r = "a domain label may not end with '-'";
				return false;
			}
			label = 0;
			continue;
		}
		if (label == 0 && c == '-') {
			*error_r = "a domain label may not start with '-'";
			return false;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
			*error_r = "the domain may hold only lowercase letters, digits, '-' and '.' "
				   "(write internationalised names as xn-- A-labels)";
			return false;
		}
		label++;
	}
	return true;
}

int jid_bare_normalize(const char *text, char **jid_r, const char **error_r)
{
	if (strlen(text) > JID_BARE_MAX) {
		*error_r = "the JID is too long";
		return -1;
	}
	if (strchr(text, '/') != NULL) {
		*error_r = "a bare JID may not carry a /resource";
		return -1;
	}
	const char *at = strchr(text, '@');
	if (at == NULL) {
		*error_r = "the JID must have the form localpart@domain";
		return -1;
	}
	char *jid = xstrdup(text);
	size_t llen = (size_t)(at - text);
	for (char *p = jid; *p; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	/* A single trailing dot in the domain is the same domain (RFC 7622 §3.2). */
	size_t jlen = strlen(jid);
	if (jlen > llen + 2 && jid[jlen - 1] == '.')
		jid[jlen - 1] = '\0';
	if (!jid_localpart_valid(jid, llen, error_r) || !jid_domain_valid(jid + llen + 1, error_r)) {
		free(jid);
		return -1;
	}
	*jid_r = jid;
	return 0;
}
