/* The Assertion Consumer Service: everything between a POSTed SAMLResponse and a
 * verified identity. samlgw does every check itself on its own parse of the message
 * (libxml2, no DTDs, no network), with its own signature verification (xmlsig.c,
 * c14n.c) and decryption (xmlenc.c) on OpenSSL, because lasso does not check InResponseTo,
 * replay, Destination, Recipient, Audience or time windows and ignores decryption errors:
 *
 *   Status Success; exactly one assertion; the Response or every assertion signed by a key
 *   from the Issuer's metadata (SHA-1 refused unless allowed); the assertion's Issuer is
 *   the Response's; Destination is our ACS URL (required when the Response is signed);
 *   encrypted assertions decrypted with the SP key, any failure rejects; a bearer
 *   SubjectConfirmation with Recipient = ACS URL and a NotOnOrAfter that is required and
 *   not passed; Conditions NotBefore/NotOnOrAfter with clock skew; an AudienceRestriction
 *   naming our entityID; no unknown conditions; an AuthnStatement; InResponseTo matching
 *   an outstanding request, consumed once (unsolicited responses only when allowed); the
 *   assertion ID recorded in a replay cache until its NotOnOrAfter. */
#ifndef SAMLGW_ACS_H
#define SAMLGW_ACS_H

#include <stddef.h>
#include <time.h>

#include "attributes.h"
#include "kv.h"
#include "refusal.h"
#include "sp.h"

/* The decoded SAMLResponse may be at most this large. */
#define ACS_RESPONSE_MAX (192 * 1024)
#define ACS_RETURN_MAX 512

struct acs_result {
	struct identity id;
	char *return_to; /* local path to go to after the login */
};

/* What the checks that need no shared state (acs_check) found: everything but the
 * InResponseTo lookup and the replay cache, which acs_commit does in Redis after them. */
struct acs_checked {
	struct identity id;
	char *issuer;         /* the Response's Issuer */
	char *assertion_id;
	char *in_response_to; /* NULL for an unsolicited Response */
	time_t replay_until;  /* keep the assertion ID in the replay cache until then */
	struct saml_attrs attrs; /* the known attributes, for the domain's access rules */
	struct kv_slo slo;       /* NameID and SessionIndex, for single logout */
};

/* Every check of the Response but the two in Redis, on b64 (the SAMLResponse form value),
 * or on xml (the decoded message), at time now: parsing, signatures, decryption, the
 * structure, time windows, attributes and the identity. Pure: no network, no Redis, no
 * change to sp. Returns 0 with *out (cleared by acs_checked_clear), or -1 with *reason_r
 * and *error_r (exact, valid until the next call in this thread) and, when known,
 * *issuer_r (the claimed Issuer, freed by the caller; may stay NULL). */
int acs_check(struct sp *sp, const char *b64, size_t len, time_t now, struct acs_checked *out,
	      enum refusal *reason_r, const char **error_r, char **issuer_r);
int acs_check_xml(struct sp *sp, const char *xml, size_t len, time_t now,
		  struct acs_checked *out, enum refusal *reason_r, const char **error_r,
		  char **issuer_r);
void acs_checked_clear(struct acs_checked *checked);

/* After acs_check: the one Redis step of a login (kv_login). The InResponseTo request is
 * taken (consumed once; it must have gone to this IdP), the assertion ID put in the
 * replay cache, and only then session stored. Returns 0 with *result (its id moved out
 * of checked), or -1 with *reason_r and *error_r (valid until the next call in this
 * thread); no session is stored then. */
int acs_commit(struct kv *kv, struct acs_checked *checked, const struct kv_session_new *session,
	       struct acs_result *result, enum refusal *reason_r, const char **error_r);
void acs_result_clear(struct acs_result *result);

#endif
