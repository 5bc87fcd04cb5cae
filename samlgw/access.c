/* Access rules against a user's attributes (see access.h).
 *
 * Comparison follows the attributes' definitions (eduPerson 2020-01): eduPersonAffiliation
 * values are matched case-insensitively (caseIgnoreMatch); eduPersonScopedAffiliation is
 * VALUE@SCOPE with the value part matched the same way and the scope, a DNS domain,
 * case-insensitively too, and a rule value without '@' matches the value part under any
 * scope (attributes.c has already checked each scope against the IdP's shibmd:Scope).
 * Everything else, eduPersonEntitlement URIs included, is matched exactly. */
#include "access.h"
#include "access_rule.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool value_matches(enum attr_id id, const char *have, const char *want)
{
	switch (id) {
	case ATTR_AFFILIATION:
		return strcasecmp(have, want) == 0;
	case ATTR_SCOPED_AFFILIATION: {
		if (strchr(want, '@') != NULL)
			return strcasecmp(have, want) == 0;
		const char *at = strchr(have, '@');
		size_t n = at != NULL ? (size_t)(at - have) : strlen(have);
		return n == strlen(want) && strncasecmp(have, want, n) == 0;
	}
	default:
		return strcmp(have, want) == 0;
	}
}

static bool rule_met(const char *text, const struct saml_attrs *attrs)
{
	struct access_rule rule;
	const char *error;
	if (access_rule_parse(text, &rule, &error) < 0)
		return false;
	const struct attribute_def *def = attribute_by_name(rule.attribute);
	bool met = false;
	for (size_t i = 0; def != NULL && i < attrs->values[def->id].n && !met; i++) {
		for (size_t k = 0; k < rule.n_values && !met; k++)
			met = value_matches(def->id, attrs->values[def->id].v[i], rule.values[k]);
	}
	access_rule_clear(&rule);
	return met;
}

int access_check(const struct config_domain *domain, const struct saml_attrs *attrs,
		 const char **rule_r)
{
	for (size_t i = 0; i < domain->require.n; i++) {
		if (!rule_met(domain->require.v[i], attrs)) {
			*rule_r = domain->require.v[i];
			return -1;
		}
	}
	return 0;
}
