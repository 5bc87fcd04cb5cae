/* Single logout messages samlgw sends: a LogoutRequest to the IdP a session came from
 * (SP-initiated logout) and the LogoutResponse to an IdP's LogoutRequest, always signed
 * with the SP key: over HTTP-Redirect as a signed query (redirect_sign.c), over HTTP-POST
 * with an enveloped XML signature (exclusive C14N, RSA-SHA256 or ECDSA-SHA256, SHA-256
 * digest) for an auto-submitting form. The IdP's SingleLogoutService endpoints come from
 * its metadata as lasso read it (the LassoServer in sp.c). */
#ifndef SAMLGW_SLO_SEND_H
#define SAMLGW_SLO_SEND_H

#include <stdbool.h>

#include "kv.h"
#include "sp.h"

#define STATUS_SUCCESS "urn:oasis:names:tc:SAML:2.0:status:Success"
#define STATUS_REQUESTER "urn:oasis:names:tc:SAML:2.0:status:Requester"
#define STATUS_RESPONDER "urn:oasis:names:tc:SAML:2.0:status:Responder"
#define STATUS_PARTIAL_LOGOUT "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
#define STATUS_UNKNOWN_PRINCIPAL "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal"

/* An IdP's SingleLogoutService for one binding. */
struct slo_endpoint {
	bool post;               /* HTTP-POST, else HTTP-Redirect */
	char *location;          /* where requests go */
	char *response_location; /* where responses go (Location when not given) */
};

/* The IdP's SingleLogoutService: prefer (true: HTTP-POST, false: HTTP-Redirect) when it
 * has both. Returns false when it has neither (SLO with it is not possible). */
bool slo_endpoint_find(struct sp *sp, const char *idp, bool prefer_post,
		       struct slo_endpoint *ep_r);
void slo_endpoint_clear(struct slo_endpoint *ep);

/* What goes to the browser. Redirect: url. POST: a form with action and the fields. */
struct slo_out {
	bool post;
	char *url;          /* Redirect: the signed location */
	char *action;       /* POST: the form's action */
	const char *field;  /* POST: "SAMLRequest" or "SAMLResponse" */
	char *value;        /* POST: base64 of the signed message */
	char *relay_state;  /* POST: or NULL */
};
void slo_out_clear(struct slo_out *out);

/* A LogoutRequest from us to the IdP for subject (its session's NameID and
 * SessionIndex). Returns 0 with *out and *id_r (the request's ID, freed by the caller),
 * or -1 with *error_r. */
int slo_send_request(struct sp *sp, const char *idp, const struct slo_endpoint *ep,
		     const struct kv_slo *subject, struct slo_out *out, char **id_r,
		     const char **error_r);
/* A LogoutResponse to the IdP's request in_response_to, with status (and sub_status, or
 * NULL), echoing relay_state (or NULL). */
int slo_send_response(struct sp *sp, const struct slo_endpoint *ep, const char *in_response_to,
		      const char *status, const char *sub_status, const char *relay_state,
		      struct slo_out *out, const char **error_r);

#endif
