/* Single logout messages that arrive at /saml/slo (LogoutRequest from an IdP, or the
 * LogoutResponse to ours), read and verified before anything acts on them: decoded
 * (HTTP-Redirect: base64 of raw DEFLATE; HTTP-POST: base64), parsed like a Response (no
 * DTD, no network, unique IDs, depth caps), the Issuer an IdP of the metadata, signed by
 * one of that IdP's metadata keys (Redirect: the query signature over the parameters as
 * they were sent; POST: an enveloped XML signature on the message, xmlsig.c), Destination
 * our SLO URL, IssueInstant (and a LogoutRequest's NotOnOrAfter) within the clock skew.
 * What needs shared state (InResponseTo, replay) is the caller's, in Redis. Also reads the
 * NameID and SessionIndex of an assertion for the session (acs.c). */
#ifndef SAMLGW_SLO_MSG_H
#define SAMLGW_SLO_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <libxml/tree.h>

#include "kv.h"
#include "sp.h"

#define SLO_MSG_MAX (64 * 1024)  /* bytes: the decoded (inflated) message */
#define SLO_RELAY_STATE_MAX 512  /* bytes: RelayState echoed back to the IdP */
#define SLO_SESSION_INDEXES_MAX 32
#define SLO_ID_MAX 256

/* Why a message was refused: the log's reason= word (slo_refusal_name). */
enum slo_refusal {
	SLO_BAD_REQUEST,    /* no or malformed parameters, not base64, not DEFLATE */
	SLO_XML,            /* not well-formed, DTD, duplicate IDs, caps */
	SLO_NOT_LOGOUT,     /* not a LogoutRequest/LogoutResponse 2.0 with an ID */
	SLO_UNKNOWN_IDP,    /* no Issuer, or not an IdP of the metadata */
	SLO_UNSIGNED,       /* no signature (query or XML) */
	SLO_SIGNATURE,      /* the signature does not verify with the IdP's keys */
	SLO_SHA1,           /* SHA-1, and saml.allow_sha1 is off */
	SLO_DESTINATION,    /* Destination missing or not our SLO URL */
	SLO_EXPIRED,        /* IssueInstant or NotOnOrAfter outside the allowed window */
	SLO_IN_RESPONSE_TO, /* a LogoutResponse to no pending LogoutRequest of ours */
	SLO_REPLAY,         /* a message seen before */
	SLO_UNAVAILABLE,    /* Redis did not answer */
};
const char *slo_refusal_name(enum slo_refusal r);

struct slo_msg {
	bool is_request;      /* LogoutRequest (else LogoutResponse) */
	bool redirect;        /* arrived over HTTP-Redirect (else HTTP-POST) */
	char *issuer;
	const struct idp *idp; /* points into the sp the message was read with */
	char *id;
	char *in_response_to; /* LogoutResponse */
	char *status;         /* LogoutResponse: top-level StatusCode Value */
	char *sub_status;     /* its second-level StatusCode Value, or NULL */
	time_t until;         /* keep the ID in the replay cache until then */
	/* LogoutRequest: */
	struct kv_slo subject; /* NameID; subject.nameid NULL when there was none */
	bool encrypted_id;     /* the request names its subject with an EncryptedID/BaseID */
	char *session_indexes[SLO_SESSION_INDEXES_MAX];
	size_t n_session_indexes;
	char *relay_state; /* copied from the request, or NULL */
};

/* Read and verify a logout message. value: the SAMLRequest/SAMLResponse parameter
 * (decoded); is_request which of the two it was; raw_query: for HTTP-Redirect, the query
 * string exactly as received (the signature covers it), NULL for HTTP-POST; relay_state:
 * the RelayState parameter or NULL. slo_url: our SLO endpoint. Returns 0 with *m (cleared
 * by slo_msg_clear), or -1 with *reason_r, *error_r (valid until the next call in this
 * thread) and, when known, *issuer_r (freed by the caller). */
int slo_msg_read(struct sp *sp, const char *slo_url, const char *value, bool is_request,
		 const char *raw_query, const char *relay_state, time_t now, struct slo_msg *m,
		 enum slo_refusal *reason_r, const char **error_r, char **issuer_r);
void slo_msg_clear(struct slo_msg *m);

/* The assertion's Subject NameID and AuthnStatement SessionIndex into *out (fields NULL
 * when absent or over KV_SLO_FIELD_MAX; nameid NULL then means "no SLO for this login"). */
void slo_subject_read(const xmlNode *assertion, struct kv_slo *out);
void kv_slo_clear(struct kv_slo *slo);

#endif
