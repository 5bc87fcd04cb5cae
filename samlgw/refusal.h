/* Why a login was refused: one stable name per check, used in log lines (reason=…), in
 * the /metrics label and on the error page. */
#ifndef SAMLGW_REFUSAL_H
#define SAMLGW_REFUSAL_H

#define REFUSALS(X)                                                                        \
	X(REFUSE_BAD_REQUEST, "bad_request")                                               \
	X(REFUSE_XML, "xml_invalid")                                                       \
	X(REFUSE_DTD, "dtd")                                                               \
	X(REFUSE_NOT_RESPONSE, "not_a_response")                                           \
	X(REFUSE_UNKNOWN_IDP, "unknown_idp")                                               \
	X(REFUSE_STATUS, "status_not_success")                                             \
	X(REFUSE_DESTINATION, "destination")                                               \
	X(REFUSE_UNSIGNED, "unsigned")                                                     \
	X(REFUSE_SIGNATURE, "signature_invalid")                                           \
	X(REFUSE_SHA1, "sha1")                                                             \
	X(REFUSE_ASSERTION_COUNT, "assertion_count")                                       \
	X(REFUSE_DECRYPTION, "decryption_failed")                                          \
	X(REFUSE_CBC_UNSIGNED, "cbc_unsigned")                                             \
	X(REFUSE_ISSUER, "issuer_mismatch")                                                \
	X(REFUSE_SUBJECT_CONFIRMATION, "subject_confirmation")                             \
	X(REFUSE_RECIPIENT, "recipient")                                                   \
	X(REFUSE_CONFIRMATION_EXPIRED, "confirmation_expired")                             \
	X(REFUSE_NOT_YET_VALID, "not_yet_valid")                                           \
	X(REFUSE_EXPIRED, "expired")                                                       \
	X(REFUSE_AUDIENCE, "audience")                                                     \
	X(REFUSE_CONDITION, "unknown_condition")                                           \
	X(REFUSE_NO_AUTHN_STATEMENT, "no_authn_statement")                                 \
	X(REFUSE_IN_RESPONSE_TO, "in_response_to")                                         \
	X(REFUSE_UNSOLICITED, "unsolicited")                                               \
	X(REFUSE_REPLAY, "replay")                                                         \
	X(REFUSE_ATTRIBUTES, "attributes_invalid")                                         \
	X(REFUSE_SCOPE, "scope")                                                           \
	X(REFUSE_IDP_NOT_BOUND, "idp_not_bound")                                           \
	X(REFUSE_NO_DOMAIN, "no_domain")                                                   \
	X(REFUSE_LOCALPART, "localpart")                                                   \
	X(REFUSE_DOMAIN_AMBIGUOUS, "domain_ambiguous")                                     \
	X(REFUSE_ACCESS_DENIED, "access_denied")                                           \
	X(REFUSE_UNAVAILABLE, "store_unavailable")

enum refusal {
#define REFUSAL_ENUM(id, name) id,
	REFUSALS(REFUSAL_ENUM)
#undef REFUSAL_ENUM
	REFUSE_COUNT
};

static inline const char *refusal_name(enum refusal r)
{
	static const char *const names[] = {
#define REFUSAL_NAME(id, name) name,
		REFUSALS(REFUSAL_NAME)
#undef REFUSAL_NAME
	};
	return (unsigned)r < REFUSE_COUNT ? names[r] : "unknown";
}

#endif
