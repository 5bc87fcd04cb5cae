/* Parsing and matching of token service lists (see services.h). */
#include "services.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

bool service_name_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > SERVICE_NAME_MAX)
		return false;
	if (strcmp(name, "*") == 0)
		return true;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		      c == '.'))
			return false;
	}
	return true;
}

int services_normalize(const char *list, char **canonical_r, const char **error_r)
{
	char *copy = xstrdup(list);
	char *names[SERVICES_MAX];
	size_t n = 0;
	bool any = false;
	for (char *p = copy; *p; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	char *save = NULL;
	for (char *tok = strtok_r(copy, ", \t", &save); tok != NULL;
	     tok = strtok_r(NULL, ", \t", &save)) {
		if (!service_name_valid(tok)) {
			free(copy);
			*error_r = "a service name must be 1 to 32 of a-z 0-9 _ . - (or *)";
			return -1;
		}
		if (strcmp(tok, "*") == 0)
			any = true;
		bool dup = false;
		for (size_t i = 0; i < n; i++)
			dup = dup || strcmp(names[i], tok) == 0;
		if (dup)
			continue;
		if (n == SERVICES_MAX) {
			free(copy);
			*error_r = "too many services (at most 16)";
			return -1;
		}
		names[n++] = tok;
	}
	if (n == 0) {
		free(copy);
		*error_r = "the service list is empty";
		return -1;
	}
	char *out;
	if (any) {
		out = xstrdup("*");
	} else {
		size_t total = 0;
		for (size_t i = 0; i < n; i++)
			total += strlen(names[i]) + 1;
		out = xcalloc(1, total);
		for (size_t i = 0; i < n; i++) {
			if (i > 0)
				strcat(out, ",");
			strcat(out, names[i]);
		}
	}
	free(copy);
	*canonical_r = out;
	return 0;
}

bool services_allow(const char *canonical, const char *service)
{
	size_t slen = strlen(service);
	const char *p = canonical;
	while (*p) {
		size_t len = strcspn(p, ",");
		if ((len == 1 && p[0] == '*') || (len == slen && memcmp(p, service, len) == 0))
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return false;
}
