/* The text form of a per-domain access rule (`require = ATTRIBUTE: VALUE …` in a
 * [domain NAME] section), parsed in one place for the config validator and for samlgw,
 * which applies it (samlgw/access.c). */
#ifndef SAMLGW_ACCESS_RULE_H
#define SAMLGW_ACCESS_RULE_H

#include <stddef.h>

/* Caps on one rule (the config file is the admin's, but a rule is matched against
 * attacker-supplied values at every login). */
#define ACCESS_RULE_VALUES_MAX 64
#define ACCESS_RULE_VALUE_MAX 1024

struct access_rule {
	char *attribute; /* as written: a friendly name or a urn:oid / urn:oasis name */
	char **values;   /* at least one; any of them satisfies the rule */
	size_t n_values;
};

/* Parse "ATTRIBUTE: VALUE [VALUE …]": the attribute name, a ':' right after it (or
 * alone after white space), then values separated by white space. Only the syntax is
 * checked here, not whether the attribute is one samlgw knows. Returns 0 with *rule_r
 * (cleared by access_rule_clear), or -1 with *error_r (static). */
int access_rule_parse(const char *text, struct access_rule *rule_r, const char **error_r);
void access_rule_clear(struct access_rule *rule);

#endif
