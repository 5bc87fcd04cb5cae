/* Federation metadata: the IdPs samlgw trusts, read from a single EntityDescriptor or an
 * aggregate (EntitiesDescriptor, nested or not). When a metadata certificate is given the
 * document's own signature must verify with it, else nothing is loaded. Per IdP we keep
 * what lasso does not expose: shibmd:Scope (literal and regexp), signing keys, the
 * HTTP-Redirect SSO endpoint, WantAuthnRequestsSigned and the mdui display name. */
#ifndef SAMLGW_METADATA_H
#define SAMLGW_METADATA_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "xmlsig.h"

/* The largest metadata file read (admin-supplied; eduGAIN is about 100 MB). */
#define METADATA_FILE_MAX (512u * 1024 * 1024)
#define METADATA_SCOPES_MAX 64
/* Caps on the UI information kept per IdP (more is ignored, not an error). */
#define METADATA_NAMES_MAX 32
#define METADATA_NAME_LEN_MAX 256
#define METADATA_LANG_MAX 16
#define METADATA_LOGOS_MAX 8
#define METADATA_LOGO_URL_MAX (64u * 1024) /* data:image/ logos included */
#define METADATA_CATEGORIES_MAX 32
#define METADATA_CATEGORY_LEN_MAX 1024

struct idp_scope {
	char *value;
	bool regexp;
	regex_t re; /* compiled "^(value)$" when regexp */
};

/* mdui:DisplayName / mdui:Description per xml:lang */
struct idp_text {
	char *lang;
	char *text;
};

/* mdui:Logo (lang may be NULL); url is https: or data:image/... */
struct idp_logo {
	char *url;
	char *lang;
	unsigned width, height;
};

struct idp {
	char *entity_id;
	char *display_name; /* mdui:DisplayName (English preferred) or NULL */
	char *sso_redirect; /* SingleSignOnService Location for HTTP-Redirect */
	bool want_signed;   /* WantAuthnRequestsSigned */
	struct idp_scope *scopes;
	size_t n_scopes;
	struct xmlsig_keys keys; /* signing keys */
	struct idp_text *names; /* every mdui:DisplayName */
	size_t n_names;
	struct idp_logo *logos;
	size_t n_logos;
	char **categories; /* entity-category values (EntityAttributes,
			    * http://macedir.org/entity-category) */
	size_t n_categories;
	bool hide_from_discovery; /* http://refeds.org/category/hide-from-discovery */
};

struct idp_set {
	struct idp *v; /* sorted by entity_id */
	size_t n;
	size_t n_expired; /* inner EntityDescriptors/EntitiesDescriptors left out: their
			   * validUntil passed or is no UTC dateTime */
	time_t valid_until; /* the root element's validUntil, 0 when it has none */
};

/* Called once per IdP while loading, with the IdP's EntityDescriptor as a standalone XML
 * document (for lasso). Returns -1 with *error_r to stop the load. */
typedef int idp_loaded_cb(void *ctx, const struct idp *idp, const char *entity_xml,
			  const char **error_r);

/* Load path; when metadata_cert is not NULL the root element must carry a signature that
 * verifies with it. A root element whose validUntil passed (or is no UTC dateTime) fails
 * the load; an inner one is left out with everything in it (counted in n_expired).
 * Returns 0 with *set_r, or -1 with *error_r (valid until the next call in this thread). */
int idp_set_load(const char *path, const char *metadata_cert, bool allow_sha1,
		 idp_loaded_cb *cb, void *cb_ctx, struct idp_set **set_r, const char **error_r);
void idp_set_free(struct idp_set *set);

/* The IdP with that entityID; NULL when there is none or when the set expired (its
 * validUntil passed while it was in use: expired metadata is not trusted). */
const struct idp *idp_set_find(const struct idp_set *set, const char *entity_id);

/* True when the set's validUntil is at or before now. */
bool idp_set_expired(const struct idp_set *set, time_t now);

/* The best mdui:DisplayName for lang (may be NULL): that language, else English, else
 * any; NULL when the IdP has none. */
const char *idp_name(const struct idp *idp, const char *lang);

/* True when scope (the part after '@') matches one of the IdP's shibmd:Scope entries. */
bool idp_scope_ok(const struct idp *idp, const char *scope);

#endif
