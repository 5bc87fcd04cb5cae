/* Parsing of access rules (see access_rule.h). */
#include "access_rule.h"
#include "util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool is_space(char c)
{
	return c == ' ' || c == '\t';
}

void access_rule_clear(struct access_rule *rule)
{
	if (rule == NULL)
		return;
	free(rule->attribute);
	for (size_t i = 0; i < rule->n_values; i++)
		free(rule->values[i]);
	free(rule->values);
	rule->attribute = NULL;
	rule->values = NULL;
	rule->n_values = 0;
}

int access_rule_parse(const char *text, struct access_rule *rule_r, const char **error_r)
{
	static const char *const syntax =
		"must be 'ATTRIBUTE: VALUE [VALUE …]' (any one of the values grants access)";
	struct access_rule r = {0};
	const char *p = text;
	while (is_space(*p))
		p++;
	size_t tok = 0;
	while (p[tok] != '\0' && !is_space(p[tok]))
		tok++;
	const char *rest;
	if (tok > 1 && p[tok - 1] == ':') {
		r.attribute = xstrndup(p, tok - 1);
		rest = p + tok;
	} else {
		/* "ATTRIBUTE : VALUE" */
		const char *q = p + tok;
		while (is_space(*q))
			q++;
		if (tok == 0 || q[0] != ':' || !(q[1] == '\0' || is_space(q[1]))) {
			*error_r = syntax;
			return -1;
		}
		r.attribute = xstrndup(p, tok);
		rest = q + 1;
	}
	for (;;) {
		while (is_space(*rest))
			rest++;
		if (*rest == '\0')
			break;
		size_t n = 0;
		while (rest[n] != '\0' && !is_space(rest[n]))
			n++;
		if (r.n_values == ACCESS_RULE_VALUES_MAX) {
			*error_r = "has more than 64 values";
			goto fail;
		}
		if (n > ACCESS_RULE_VALUE_MAX) {
			*error_r = "has a value longer than 1024 bytes";
			goto fail;
		}
		if (rest[n - 1] == ',') {
			*error_r = "values are separated by spaces, not commas";
			goto fail;
		}
		if (!utf8_printable(rest, n)) {
			*error_r = "has a value that is not printable UTF-8";
			goto fail;
		}
		r.values = xrealloc(r.values, (r.n_values + 1) * sizeof(*r.values));
		r.values[r.n_values++] = xstrndup(rest, n);
		rest += n;
	}
	if (r.n_values == 0) {
		*error_r = "names no value: 'ATTRIBUTE: VALUE [VALUE …]'";
		goto fail;
	}
	*rule_r = r;
	return 0;
fail:
	access_rule_clear(&r);
	return -1;
}
