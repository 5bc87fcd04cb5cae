/* The SAML service provider as loaded at start (and again on SIGHUP): the SP key and
 * certificate, this SP's metadata, the trusted IdPs and the lasso server object built
 * from them once (never per request). Requests hold a reference while they use it, so a
 * reload can swap in a new one without waiting. */
#ifndef SAMLGW_SP_H
#define SAMLGW_SP_H

#include <stdbool.h>

#include "config.h"
#include "metadata.h"
#include "redirect_sign.h"
#include "xmlenc.h"
#include "xmlsig.h"

struct sp {
	int refs; /* atomic */
	const struct config *cfg;
	char *acs_url;
	char *metadata_xml; /* GET /saml/metadata */
	struct idp_set *idps;
	struct xmlenc_key *decryptor; /* the SP key, for EncryptedAssertions */
	struct redirect_signer *signer; /* Redirect-binding signatures */
	void *lasso_server; /* LassoServer */
};

/* NULL, or why lasso must not be initialised in this environment: lasso reads LASSO_FLAG
 * when it starts ("no-verify-signature" turns its signature checks off, "no-sign-messages",
 * "no-add-signature" and "no-strict-checking" weaken what it sends and parses), and samlgw
 * has no use for any of its flags, so any non-empty value is refused. */
const char *sp_environment_problem(void);

/* Once per process, before any sp_load (lasso, xmlsec and libxml2 set up); fails when
 * sp_environment_problem() finds a problem. */
int sp_library_init(const char **error_r);
void sp_library_deinit(void);

/* Load everything the SP needs from cfg (which must outlive it). Returns 0 with *sp_r
 * (one reference), or -1 with *error_r (valid until the next call in the thread) and
 * *setting_r naming the setting at fault ("saml.key"…). */
int sp_load(const struct config *cfg, struct sp **sp_r, const char **setting_r,
	    const char **error_r);
/* sp_load with the IdP metadata read from idp_metadata instead of cfg->saml.idp_metadata
 * (a fetched copy is checked this way before it replaces that file). */
int sp_load_from(const struct config *cfg, const char *idp_metadata, struct sp **sp_r,
		 const char **setting_r, const char **error_r);
struct sp *sp_ref(struct sp *sp);
void sp_unref(struct sp *sp);

/* Build an HTTP-Redirect AuthnRequest to idp, signed with the SP key (SigAlg RSA-SHA256). Returns 0 with *url_r (the redirect
 * location) and *id_r (the request ID), both to be freed, or -1 with *error_r. */
int sp_authn_request(struct sp *sp, const struct idp *idp, char **url_r, char **id_r,
		     const char **error_r);

#endif
