/* The SP object: lasso server, IdP metadata and keys, built once (see sp.h). */
#include "sp.h"
#include "redirect_sign.h"
#include "sp_metadata.h"
#include "util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lasso/lasso.h>
#include <lasso/xml/saml-2.0/samlp2_authn_request.h>
#include <lasso/xml/saml-2.0/samlp2_name_id_policy.h>
#include <libxml/parser.h>

/* lasso keeps per-call state in objects it shares with the server; building requests is
 * cheap, so one lock keeps it simple and safe. */
static pthread_mutex_t lasso_lock = PTHREAD_MUTEX_INITIALIZER;

/* Formatted error messages of this file (its own buffer: a message may quote another
 * file's). */
DEFINE_ERROR_FORMATTER(fmt_error, error_buf, 700)

const char *sp_environment_problem(void)
{
	const char *flag = getenv("LASSO_FLAG");
	if (flag == NULL || *flag == '\0')
		return NULL;
	return "LASSO_FLAG is set in the environment: lasso would read it at start, and its "
	       "flags can turn signature checks off (no-verify-signature) or weaken what it "
	       "signs and parses; unset LASSO_FLAG";
}

int sp_library_init(const char **error_r)
{
	const char *problem = sp_environment_problem();
	if (problem != NULL) {
		*error_r = problem;
		return -1;
	}
	/* Trust in SAML comes from metadata keys only: keep OpenSSL from reading the system
	 * CA bundle each time lasso or xmlsec sets up a key store (seconds per aggregate). */
	setenv("SSL_CERT_FILE", "/nonexistent/samlgw-no-ca-bundle", 1);
	setenv("SSL_CERT_DIR", "/nonexistent/samlgw-no-ca-dir", 1);
	xmlInitParser();
	if (lasso_init() != 0) {
		*error_r = "cannot initialise lasso";
		return -1;
	}
	return 0;
}

void sp_library_deinit(void)
{
	lasso_shutdown();
}

static int add_provider(void *ctx, const struct idp *idp, const char *entity_xml,
			const char **error_r)
{
	LassoServer *server = ctx;
	LassoProvider *p = lasso_provider_new_from_buffer(LASSO_PROVIDER_ROLE_IDP, entity_xml,
							  NULL, NULL);
	if (p == NULL) {
		*error_r = "lasso cannot read this EntityDescriptor";
		return -1;
	}
	if (lasso_server_add_provider2(server, p) != 0) {
		g_object_unref(p);
		*error_r = "lasso refused the provider";
		return -1;
	}
	g_object_unref(p);
	(void)idp;
	return 0;
}

int sp_load(const struct config *cfg, struct sp **sp_r, const char **setting_r,
	    const char **error_r)
{
	return sp_load_from(cfg, cfg->saml.idp_metadata, sp_r, setting_r, error_r);
}

int sp_load_from(const struct config *cfg, const char *idp_metadata, struct sp **sp_r,
		 const char **setting_r, const char **error_r)
{
	struct sp *sp = xcalloc(1, sizeof(*sp));
	sp->refs = 1;
	sp->cfg = cfg;
	sp->acs_url = xasprintf("%s%s", cfg->http.public_url, SP_PATH_ACS);
	char *cert = NULL, *key = NULL;
	size_t len, key_len;
	const char *error;
	if (read_file_capped(cfg->saml.cert, 1024 * 1024, &cert, &len, &error) < 0) {
		*setting_r = "saml.cert";
		*error_r = fmt_error("cannot read %s: %s", cfg->saml.cert, error);
		goto fail;
	}
	if (read_file_capped(cfg->saml.key, 1024 * 1024, &key, &key_len, &error) < 0) {
		*setting_r = "saml.key";
		*error_r = fmt_error("cannot read %s: %s", cfg->saml.key, error);
		goto fail;
	}
	if (sp_metadata_build(cfg, cert, &sp->metadata_xml, &error) < 0) {
		*setting_r = "saml.cert";
		*error_r = fmt_error("%s: %s", cfg->saml.cert, error);
		goto fail;
	}
	if (redirect_signer_new(key, key_len, &sp->signer, &error) < 0) {
		*setting_r = "saml.key";
		*error_r = fmt_error("%s: %s", cfg->saml.key, error);
		goto fail;
	}
	if (xmlenc_key_new(key, key_len, &sp->decryptor, &error) < 0) {
		*setting_r = "saml.key";
		*error_r = fmt_error("%s: %s", cfg->saml.key, error);
		goto fail;
	}
	/* lasso only builds and encodes AuthnRequests, so it gets no key: samlgw signs them
	 * itself (redirect_sign.c) with the key parsed once, where lasso would parse the key
	 * and certificate again, and leak part of them, for every request. */
	LassoServer *server = lasso_server_new_from_buffers(sp->metadata_xml, NULL, NULL, NULL);
	if (server == NULL) {
		*setting_r = "saml.cert";
		*error_r = fmt_error("lasso refused the SP metadata built from %s", cfg->saml.cert);
		goto fail;
	}
	server->signature_method = LASSO_SIGNATURE_METHOD_RSA_SHA256;
	sp->lasso_server = server;
	if (idp_set_load(idp_metadata, cfg->saml.metadata_cert, cfg->saml.allow_sha1,
			 add_provider, server, &sp->idps, &error) < 0) {
		*setting_r = cfg->saml.metadata_cert != NULL ? "saml.metadata_cert"
							     : "saml.idp_metadata";
		*error_r = fmt_error("%s", error);
		goto fail;
	}
	secret_free(key);
	free(cert);
	*sp_r = sp;
	return 0;
fail:
	secret_free(key);
	free(cert);
	sp_unref(sp);
	return -1;
}

struct sp *sp_ref(struct sp *sp)
{
	__atomic_add_fetch(&sp->refs, 1, __ATOMIC_SEQ_CST);
	return sp;
}

void sp_unref(struct sp *sp)
{
	if (sp == NULL || __atomic_sub_fetch(&sp->refs, 1, __ATOMIC_SEQ_CST) > 0)
		return;
	if (sp->lasso_server != NULL)
		lasso_server_destroy(sp->lasso_server);
	idp_set_free(sp->idps);
	xmlenc_key_free(sp->decryptor);
	redirect_signer_free(sp->signer);
	free(sp->metadata_xml);
	free(sp->acs_url);
	free(sp);
}

int sp_authn_request(struct sp *sp, const struct idp *idp, char **url_r, char **id_r,
		     const char **error_r)
{
	if (idp->sso_redirect == NULL) {
		*error_r = "the IdP has no HTTP-Redirect SingleSignOnService in its metadata";
		return -1;
	}
	pthread_mutex_lock(&lasso_lock);
	int ret = -1;
	LassoLogin *login = lasso_login_new(sp->lasso_server);
	if (login == NULL) {
		*error_r = "lasso cannot start a login";
		goto out;
	}
	/* lasso does not sign (it has no key); redirect_sign_url does, below. */
	lasso_profile_set_signature_hint(LASSO_PROFILE(login), LASSO_PROFILE_SIGNATURE_HINT_FORBID);
	int rc = lasso_login_init_authn_request(login, idp->entity_id, LASSO_HTTP_METHOD_REDIRECT);
	if (rc != 0) {
		*error_r = fmt_error("lasso cannot make an AuthnRequest: %s", lasso_strerror(rc));
		goto out;
	}
	LassoProfile *profile = LASSO_PROFILE(login);
	LassoSamlp2AuthnRequest *req = LASSO_SAMLP2_AUTHN_REQUEST(profile->request);
	g_free(req->ProtocolBinding);
	req->ProtocolBinding = g_strdup(LASSO_SAML2_METADATA_BINDING_POST);
	g_free(req->AssertionConsumerServiceURL);
	req->AssertionConsumerServiceURL = g_strdup(sp->acs_url);
	if (req->NameIDPolicy != NULL) {
		g_free(req->NameIDPolicy->Format);
		req->NameIDPolicy->Format = g_strdup(LASSO_SAML2_NAME_IDENTIFIER_FORMAT_TRANSIENT);
		req->NameIDPolicy->AllowCreate = TRUE;
	}
	rc = lasso_login_build_authn_request_msg(login);
	if (rc != 0 || profile->msg_url == NULL) {
		*error_r = fmt_error("lasso cannot encode the AuthnRequest: %s", lasso_strerror(rc));
		goto out;
	}
	const char *id = LASSO_SAMLP2_REQUEST_ABSTRACT(req)->ID;
	if (id == NULL) {
		*error_r = "lasso made an AuthnRequest without ID";
		goto out;
	}
	/* Signed always: required when the IdP says WantAuthnRequestsSigned, and
	 * harmless (and checked when present) everywhere else. */
	char *url = redirect_sign_url(sp->signer, profile->msg_url, error_r);
	if (url == NULL)
		goto out;
	*url_r = url;
	*id_r = xstrdup(id);
	ret = 0;
out:
	if (login != NULL)
		lasso_login_destroy(login);
	pthread_mutex_unlock(&lasso_lock);
	return ret;
}
