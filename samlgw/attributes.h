/* SAML attributes samlgw understands, read from an assertion's AttributeStatements by
 * urn:oid (or urn:oasis) name or by friendly name, and the identity they give: the
 * [domain] bound to the issuing IdP whose scope matches, and the JID localpart from the
 * configured attribute. */
#ifndef SAMLGW_ATTRIBUTES_H
#define SAMLGW_ATTRIBUTES_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

#include "config.h"
#include "metadata.h"
#include "refusal.h"

#define ATTR_VALUES_MAX 64
#define ATTR_VALUE_MAX 1024
#define ATTR_STATEMENT_ATTRS_MAX 128

enum attr_id {
	ATTR_EPPN,
	ATTR_SUBJECT_ID,
	ATTR_PAIRWISE_ID,
	ATTR_TARGETED_ID,
	ATTR_MAIL,
	ATTR_DISPLAY_NAME,
	ATTR_GIVEN_NAME,
	ATTR_SN,
	ATTR_AFFILIATION,
	ATTR_SCOPED_AFFILIATION,
	ATTR_ENTITLEMENT,
	ATTR_UID,
	ATTR_COUNT
};

struct attribute_def {
	enum attr_id id;
	const char *oid;
	const char *friendly;
	bool scoped; /* value@scope, the scope checked against shibmd:Scope */
};

const struct attribute_def *attribute_by_name(const char *name);

struct saml_attrs {
	struct {
		char **v;
		size_t n;
	} values[ATTR_COUNT];
};

/* Collect the known attributes of an assertion (an Attribute is known by its Name, urn:oid
 * or basic; by its FriendlyName only when the Name is not a URI). Unknown attributes are
 * ignored; values are trimmed of surrounding white space, empty ones dropped. Scoped
 * values must hold exactly one '@' and a scope the IdP's metadata lists.
 * Returns 0, or -1 with *reason_r and *error_r (valid until the next call in the thread). */
int attrs_from_assertion(const xmlNode *assertion, const struct idp *idp,
			 struct saml_attrs *attrs, enum refusal *reason_r, const char **error_r);
void attrs_clear(struct saml_attrs *attrs);

/* The canonical (friendly) names of the attributes attrs holds a value of, comma-separated
 * in the fixed order of enum attr_id ("" when none): names only, never values, so it may
 * be logged. The caller frees it. */
char *attrs_names(const struct saml_attrs *attrs);

struct identity {
	char *jid;          /* normalised bare JID */
	char *domain;       /* the [domain] section name */
	char *display_name; /* for the account page */
	char *idp;          /* issuing IdP's entityID */
	char *attributes;   /* attrs_names() of the assertion, for the login_ok log line */
};

/* True when some [domain] lists idp (an entityID) among its IdPs. */
bool idp_has_domain(const struct config *cfg, const char *idp);

/* Pick the domain and build the JID: of the domains bound to the IdP, the one whose scope
 * matches the user's identifier (which must also be a scope the IdP may assert); when two
 * fit (they take the localpart from different attributes), none (domain_ambiguous).
 * Returns 0 with *id, or -1 with *reason_r and *error_r. */
int identity_from_attrs(const struct config *cfg, const struct idp *idp,
			const char *idp_entity_id, const struct saml_attrs *attrs,
			struct identity *id, enum refusal *reason_r, const char **error_r);
void identity_clear(struct identity *id);

#endif
