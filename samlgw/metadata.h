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

#include "xmlsig.h"

/* The largest metadata file read (admin-supplied; eduGAIN is about 100 MB). */
#define METADATA_FILE_MAX (512u * 1024 * 1024)
#define METADATA_SCOPES_MAX 64

struct idp_scope {
	char *value;
	bool regexp;
	regex_t re; /* compiled "^(value)$" when regexp */
};

struct idp {
	char *entity_id;
	char *display_name; /* mdui:DisplayName (English preferred) or NULL */
	char *sso_redirect; /* SingleSignOnService Location for HTTP-Redirect */
	bool want_signed;   /* WantAuthnRequestsSigned */
	struct idp_scope *scopes;
	size_t n_scopes;
	struct xmlsig_keys keys; /* signing keys */
};

struct idp_set {
	struct idp *v; /* sorted by entity_id */
	size_t n;
	size_t n_expired; /* inner EntityDescriptors/EntitiesDescriptors left out: their
			   * validUntil passed or is no UTC dateTime */
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

const struct idp *idp_set_find(const struct idp_set *set, const char *entity_id);

/* True when scope (the part after '@') matches one of the IdP's shibmd:Scope entries. */
bool idp_scope_ok(const struct idp *idp, const char *scope);

#endif
