/* Per-domain access rules (`require` in [domain NAME]): once the ACS has chosen the
 * user's domain, whether the user's attributes meet every rule of that domain. */
#ifndef SAMLGW_ACCESS_H
#define SAMLGW_ACCESS_H

#include "attributes.h"
#include "config.h"

/* 0 when attrs meet every `require` rule of domain (a domain without rules: always), or
 * -1 with *rule_r, the first rule not met as configured (it points into domain and may be
 * logged: it names values of the rule, never the user's). A rule that does not parse
 * (config.c has validated them all) is not met. */
int access_check(const struct config_domain *domain, const struct saml_attrs *attrs,
		 const char **rule_r);

#endif
