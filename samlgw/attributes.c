/* SAML attributes to identity (see attributes.h). */
#include "attributes.h"
#include "jid.h"
#include "xml.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct attribute_def defs[ATTR_COUNT] = {
	{ATTR_EPPN, "urn:oid:1.3.6.1.4.1.5923.1.1.1.6", "eduPersonPrincipalName", true},
	{ATTR_SUBJECT_ID, "urn:oasis:names:tc:SAML:attribute:subject-id", "subject-id", true},
	{ATTR_PAIRWISE_ID, "urn:oasis:names:tc:SAML:attribute:pairwise-id", "pairwise-id", true},
	{ATTR_TARGETED_ID, "urn:oid:1.3.6.1.4.1.5923.1.1.1.10", "eduPersonTargetedID", false},
	{ATTR_MAIL, "urn:oid:0.9.2342.19200300.100.1.3", "mail", false},
	{ATTR_DISPLAY_NAME, "urn:oid:2.16.840.1.113730.3.1.241", "displayName", false},
	{ATTR_GIVEN_NAME, "urn:oid:2.5.4.42", "givenName", false},
	{ATTR_SN, "urn:oid:2.5.4.4", "sn", false},
	{ATTR_AFFILIATION, "urn:oid:1.3.6.1.4.1.5923.1.1.1.1", "eduPersonAffiliation", false},
	{ATTR_SCOPED_AFFILIATION, "urn:oid:1.3.6.1.4.1.5923.1.1.1.9", "eduPersonScopedAffiliation",
	 true},
	{ATTR_ENTITLEMENT, "urn:oid:1.3.6.1.4.1.5923.1.1.1.7", "eduPersonEntitlement", false},
	{ATTR_UID, "urn:oid:0.9.2342.19200300.100.1.1", "uid", false},
};

/* Formatted error messages of this file (its own buffer: a message may quote another
 * file's). */
DEFINE_ERROR_FORMATTER(fmt_error, error_buf, 400)

const struct attribute_def *attribute_by_name(const char *name)
{
	for (size_t i = 0; i < ATTR_COUNT; i++) {
		if (strcmp(defs[i].oid, name) == 0 || strcmp(defs[i].friendly, name) == 0)
			return &defs[i];
	}
	return NULL;
}

void attrs_clear(struct saml_attrs *attrs)
{
	for (size_t i = 0; i < ATTR_COUNT; i++) {
		for (size_t k = 0; k < attrs->values[i].n; k++)
			free(attrs->values[i].v[k]);
		free(attrs->values[i].v);
		attrs->values[i].v = NULL;
		attrs->values[i].n = 0;
	}
}

/* The definition an Attribute element names: by Name (URI or basic), else by FriendlyName
 * when the Name is no URI (a basic name: no ':'). */
static const struct attribute_def *def_of(const xmlNode *attr)
{
	const char *name = xml_attr(attr, "Name");
	const struct attribute_def *d = name != NULL ? attribute_by_name(name) : NULL;
	if (d == NULL && name != NULL && strchr(name, ':') != NULL)
		return NULL; /* an unknown URI name is another attribute, whatever it is called */
	if (d == NULL) {
		const char *friendly = xml_attr(attr, "FriendlyName");
		d = friendly != NULL ? attribute_by_name(friendly) : NULL;
	}
	return d;
}

/* eduPersonTargetedID's value is a NameID: NameQualifier!SPNameQualifier!value. */
static char *targeted_id(const xmlNode *value)
{
	xmlNode *nid = xml_child(value, NS_SAML, "NameID");
	if (nid == NULL)
		return xml_text(value, ATTR_VALUE_MAX);
	const char *nq = xml_attr(nid, "NameQualifier"), *spq = xml_attr(nid, "SPNameQualifier");
	if ((nq != NULL && strlen(nq) > ATTR_VALUE_MAX) ||
	    (spq != NULL && strlen(spq) > ATTR_VALUE_MAX))
		return NULL;
	char *v = xml_text(nid, ATTR_VALUE_MAX);
	if (v == NULL)
		return NULL;
	str_trim(v); /* the NameID's own white space, as for every other value */
	char *out = xasprintf("%s!%s!%s", nq ? nq : "", spq ? spq : "", v);
	free(v);
	return out;
}

/* A scoped value: exactly one '@', non-empty on both sides, scope listed for the IdP. */
static int check_scoped(const struct attribute_def *d, const char *v, const struct idp *idp,
			enum refusal *reason_r, const char **error_r)
{
	const char *at = strchr(v, '@');
	if (at == NULL || at == v || at[1] == '\0' || strchr(at + 1, '@') != NULL) {
		*reason_r = REFUSE_SCOPE;
		*error_r = fmt_error("%s value does not hold exactly one '@' between a value and a "
				     "scope", d->friendly);
		return -1;
	}
	if (!idp_scope_ok(idp, at + 1)) {
		*reason_r = REFUSE_SCOPE;
		*error_r = fmt_error("%s scope '%.200s' is not a shibmd:Scope of the IdP in its "
				     "metadata", d->friendly, at + 1);
		return -1;
	}
	return 0;
}

int attrs_from_assertion(const xmlNode *assertion, const struct idp *idp,
			 struct saml_attrs *attrs, enum refusal *reason_r, const char **error_r)
{
	size_t seen = 0;
	for (xmlNode *st = xml_child(assertion, NS_SAML, "AttributeStatement"); st != NULL;
	     st = xml_next(st, NS_SAML, "AttributeStatement")) {
		for (xmlNode *a = st->children; a != NULL; a = a->next) {
			if (a->type != XML_ELEMENT_NODE)
				continue;
			if (xml_is(a, NS_SAML, "EncryptedAttribute"))
				continue; /* not used by the federations we serve */
			if (!xml_is(a, NS_SAML, "Attribute") || ++seen > ATTR_STATEMENT_ATTRS_MAX) {
				*reason_r = REFUSE_ATTRIBUTES;
				*error_r = "the AttributeStatement holds something other than "
					   "at most 128 Attributes";
				goto fail;
			}
			const struct attribute_def *d = def_of(a);
			if (d == NULL)
				continue;
			for (xmlNode *v = xml_child(a, NS_SAML, "AttributeValue"); v != NULL;
			     v = xml_next(v, NS_SAML, "AttributeValue")) {
				char *text = d->id == ATTR_TARGETED_ID
						     ? targeted_id(v)
						     : xml_text(v, ATTR_VALUE_MAX);
				/* Trimmed before the check: white space around a value (an IdP
				 * that pretty-prints) is not part of it. */
				if (text != NULL)
					str_trim(text);
				if (text == NULL || !utf8_printable(text, strlen(text))) {
					free(text);
					*reason_r = REFUSE_ATTRIBUTES;
					*error_r = fmt_error("a %s value is not printable text of at "
							     "most %d bytes", d->friendly,
							     ATTR_VALUE_MAX);
					goto fail;
				}
				if (*text == '\0') {
					free(text);
					continue;
				}
				if (d->scoped &&
				    check_scoped(d, text, idp, reason_r, error_r) < 0) {
					free(text);
					goto fail;
				}
				if (attrs->values[d->id].n == ATTR_VALUES_MAX) {
					free(text);
					*reason_r = REFUSE_ATTRIBUTES;
					*error_r = fmt_error("more than %d values of %s",
							     ATTR_VALUES_MAX, d->friendly);
					goto fail;
				}
				attrs->values[d->id].v = xrealloc(
					attrs->values[d->id].v,
					(attrs->values[d->id].n + 1) * sizeof(char *));
				attrs->values[d->id].v[attrs->values[d->id].n++] = text;
			}
		}
	}
	return 0;
fail:
	attrs_clear(attrs);
	return -1;
}

char *attrs_names(const struct saml_attrs *attrs)
{
	size_t len = 1;
	for (size_t i = 0; i < ATTR_COUNT; i++)
		len += strlen(defs[i].friendly) + 1;
	char *out = xcalloc(1, len);
	size_t pos = 0;
	for (size_t i = 0; i < ATTR_COUNT; i++) {
		if (attrs->values[i].n == 0)
			continue;
		size_t n = strlen(defs[i].friendly);
		if (pos > 0)
			out[pos++] = ',';
		memcpy(out + pos, defs[i].friendly, n);
		pos += n;
	}
	out[pos] = '\0';
	return out;
}

void identity_clear(struct identity *id)
{
	free(id->jid);
	free(id->domain);
	free(id->display_name);
	free(id->idp);
	free(id->attributes);
	memset(id, 0, sizeof(*id));
}

static enum attr_id localpart_source(const char *setting)
{
	if (strcmp(setting, "subject-id") == 0)
		return ATTR_SUBJECT_ID;
	if (strcmp(setting, "mail") == 0)
		return ATTR_MAIL;
	if (strcmp(setting, "uid") == 0)
		return ATTR_UID;
	return ATTR_EPPN;
}

static bool domain_has_idp(const struct config_domain *d, const char *idp)
{
	for (size_t i = 0; i < d->idp.n; i++) {
		if (strcmp(d->idp.v[i], idp) == 0)
			return true;
	}
	return false;
}

bool idp_has_domain(const struct config *cfg, const char *idp)
{
	for (size_t k = 0; k < cfg->n_domains; k++) {
		if (domain_has_idp(&cfg->domains[k], idp))
			return true;
	}
	return false;
}

static bool domain_has_scope(const struct config_domain *d, const char *scope)
{
	for (size_t i = 0; i < d->scope.n; i++) {
		if (strcasecmp(d->scope.v[i], scope) == 0)
			return true;
	}
	return false;
}

int identity_from_attrs(const struct config *cfg, const struct idp *idp,
			const char *idp_entity_id, const struct saml_attrs *attrs,
			struct identity *id, enum refusal *reason_r, const char **error_r)
{
	size_t bound = 0;
	const char *foreign_scope = NULL; /* a domain's scope the IdP may not assert */
	const struct config_domain *unscoped = NULL;
	const char *unscoped_value = NULL;
	const struct config_domain *chosen = NULL;
	const char *value = NULL;
	enum attr_id src = ATTR_EPPN;
	const char *missing = NULL;
	/* Every domain bound to the IdP is looked at, not only up to the first that fits: the
	 * configuration keeps domains that share an IdP from sharing a scope (config.c), but
	 * domains taking the localpart from different attributes could both fit one user, and
	 * then neither is chosen. */
	for (size_t i = 0; i < cfg->n_domains; i++) {
		const struct config_domain *d = &cfg->domains[i];
		if (!domain_has_idp(d, idp_entity_id))
			continue;
		bound++;
		enum attr_id s = localpart_source(d->localpart != NULL ? d->localpart : "eppn");
		if (attrs->values[s].n == 0) {
			missing = defs[s].friendly;
			continue;
		}
		const char *v = attrs->values[s].v[0];
		const char *at = strrchr(v, '@');
		if (s == ATTR_UID) {
			/* Unscoped: usable only when the IdP serves exactly one domain. */
			unscoped = d;
			unscoped_value = v;
			continue;
		}
		if (at != NULL && domain_has_scope(d, at + 1)) {
			/* Whatever attribute names the user, its scope must be one the IdP may
			 * assert (shibmd:Scope): otherwise one IdP of a shared domain could name
			 * another IdP's users (mail is not a scoped attribute, so this is the
			 * only place that checks it). */
			if (!idp_scope_ok(idp, at + 1)) {
				foreign_scope = at + 1;
				continue;
			}
			if (chosen != NULL) {
				*reason_r = REFUSE_DOMAIN_AMBIGUOUS;
				*error_r = fmt_error("the user fits both [domain %.100s] (by %s) and "
						     "[domain %.100s] (by %s)",
						     chosen->name, defs[src].friendly, d->name,
						     defs[s].friendly);
				return -1;
			}
			chosen = d;
			value = v;
			src = s;
		}
	}
	if (bound == 0) {
		*reason_r = REFUSE_IDP_NOT_BOUND;
		*error_r = "no [domain] lists this IdP in its idp setting";
		return -1;
	}
	if (chosen == NULL && unscoped != NULL && bound == 1) {
		chosen = unscoped;
		value = unscoped_value;
		src = ATTR_UID;
	}
	if (chosen == NULL && foreign_scope != NULL) {
		*reason_r = REFUSE_SCOPE;
		*error_r = fmt_error("the user's scope '%.200s' is not a shibmd:Scope of the IdP in "
				     "its metadata", foreign_scope);
		return -1;
	}
	if (chosen == NULL) {
		*reason_r = REFUSE_NO_DOMAIN;
		*error_r = missing != NULL
				   ? fmt_error("the IdP sent no %s, which names the user", missing)
				   : "no [domain] bound to this IdP has a scope matching the user's "
				     "identifier";
		return -1;
	}
	/* The localpart: the part before '@' (eppn, subject-id, mail), or the whole uid. */
	size_t len = strlen(value);
	if (src != ATTR_UID) {
		const char *at = strrchr(value, '@');
		len = (size_t)(at - value);
	}
	if (len == 0 || len > JID_LOCAL_MAX) {
		*reason_r = REFUSE_LOCALPART;
		*error_r = "the localpart is empty or longer than 1023 bytes";
		return -1;
	}
	char *local = xstrndup(value, len);
	for (char *p = local; *p; p++) {
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	}
	const char *error;
	if (!jid_localpart_valid(local, len, &error)) {
		*reason_r = REFUSE_LOCALPART;
		*error_r = fmt_error("the %s localpart cannot be used in a JID: %s",
				     defs[src].friendly, error);
		free(local);
		return -1;
	}
	char *text = xasprintf("%s@%s", local, chosen->name);
	free(local);
	char *jid;
	if (jid_bare_normalize(text, &jid, &error) < 0) {
		free(text);
		*reason_r = REFUSE_LOCALPART;
		*error_r = fmt_error("the JID is not valid: %s", error);
		return -1;
	}
	free(text);
	id->jid = jid;
	id->domain = xstrdup(chosen->name);
	id->idp = xstrdup(idp_entity_id);
	id->attributes = attrs_names(attrs);
	if (attrs->values[ATTR_DISPLAY_NAME].n > 0)
		id->display_name = xstrdup(attrs->values[ATTR_DISPLAY_NAME].v[0]);
	else if (attrs->values[ATTR_GIVEN_NAME].n > 0 && attrs->values[ATTR_SN].n > 0)
		id->display_name = xasprintf("%s %s", attrs->values[ATTR_GIVEN_NAME].v[0],
					     attrs->values[ATTR_SN].v[0]);
	else
		id->display_name = xstrdup(jid);
	return 0;
}
