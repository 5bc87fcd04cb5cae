/* The Assertion Consumer Service's checks (see acs.h for the list). */
#include "acs.h"
#include "b64.h"
#include "slo_msg.h"
#include "sp_metadata.h"
#include "xml.h"
#include "xmlenc.h"
#include "xmlsig.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUS_SUCCESS "urn:oasis:names:tc:SAML:2.0:status:Success"
#define CM_BEARER "urn:oasis:names:tc:SAML:2.0:cm:bearer"

/* Formatted error messages of this file (its own buffer: a message may quote another
 * file's). */
DEFINE_ERROR_FORMATTER(fmt_error, error_buf, 600)

struct check {
	enum refusal reason;
	const char *error;
};

#define REFUSE(r, ...)                                                                     \
	do {                                                                               \
		c->reason = (r);                                                           \
		c->error = fmt_error(__VA_ARGS__);                                         \
		return -1;                                                                 \
	} while (0)


static int check_status(struct check *c, const xmlNode *resp)
{
	xmlNode *st = xml_child(resp, NS_SAMLP, "Status");
	xmlNode *code = st != NULL ? xml_child(st, NS_SAMLP, "StatusCode") : NULL;
	const char *v = code != NULL ? xml_attr(code, "Value") : NULL;
	if (v == NULL)
		REFUSE(REFUSE_STATUS, "the Response has no Status/StatusCode");
	if (strcmp(v, STATUS_SUCCESS) != 0) {
		xmlNode *sub = xml_child(code, NS_SAMLP, "StatusCode");
		const char *sv = sub != NULL ? xml_attr(sub, "Value") : NULL;
		REFUSE(REFUSE_STATUS, "the IdP answered with status %.200s%s%.200s", v,
		       sv ? " / " : "", sv ? sv : "");
	}
	return 0;
}

/* NotBefore / NotOnOrAfter of an element against now with skew. */
static int check_window(struct check *c, const xmlNode *el, const char *what, time_t now,
			long long skew, bool nooa_required, time_t *nooa_r)
{
	const char *nb = xml_attr(el, "NotBefore"), *na = xml_attr(el, "NotOnOrAfter");
	time_t t;
	if (nb != NULL) {
		if (!xml_parse_time(nb, &t))
			REFUSE(REFUSE_NOT_YET_VALID, "%s NotBefore is not a UTC dateTime", what);
		if (now + skew < t)
			REFUSE(REFUSE_NOT_YET_VALID, "%s is not valid before %s", what, nb);
	}
	if (na == NULL) {
		if (nooa_required)
			REFUSE(REFUSE_CONFIRMATION_EXPIRED, "%s has no NotOnOrAfter", what);
		return 0;
	}
	if (!xml_parse_time(na, &t))
		REFUSE(REFUSE_EXPIRED, "%s NotOnOrAfter is not a UTC dateTime", what);
	if (now - skew >= t)
		REFUSE(nooa_required ? REFUSE_CONFIRMATION_EXPIRED : REFUSE_EXPIRED,
		       "%s expired at %s", what, na);
	if (nooa_r != NULL)
		*nooa_r = t;
	return 0;
}

static int check_subject(struct check *c, const xmlNode *assertion, const char *acs_url,
			 const char *in_response_to, bool irt_required, time_t now, long long skew,
			 time_t *nooa_r)
{
	xmlNode *subj = xml_child(assertion, NS_SAML, "Subject");
	if (subj == NULL)
		REFUSE(REFUSE_SUBJECT_CONFIRMATION, "the assertion has no Subject");
	struct check last = {REFUSE_SUBJECT_CONFIRMATION,
			     "the Subject has no bearer SubjectConfirmation"};
	for (xmlNode *sc = xml_child(subj, NS_SAML, "SubjectConfirmation"); sc != NULL;
	     sc = xml_next(sc, NS_SAML, "SubjectConfirmation")) {
		const char *m = xml_attr(sc, "Method");
		if (m == NULL || strcmp(m, CM_BEARER) != 0)
			continue;
		xmlNode *d = xml_child(sc, NS_SAML, "SubjectConfirmationData");
		if (d == NULL) {
			last = (struct check){REFUSE_RECIPIENT,
					      "the bearer SubjectConfirmation has no "
					      "SubjectConfirmationData"};
			continue;
		}
		const char *rcpt = xml_attr(d, "Recipient");
		if (rcpt == NULL || strcmp(rcpt, acs_url) != 0) {
			last = (struct check){REFUSE_RECIPIENT, fmt_error(
				"the bearer SubjectConfirmation's Recipient is %.300s, not our ACS URL",
				rcpt != NULL ? rcpt : "missing")};
			continue;
		}
		const char *irt = xml_attr(d, "InResponseTo");
		if (irt == NULL && irt_required) {
			last = (struct check){REFUSE_IN_RESPONSE_TO,
					      "the Response is unsigned, so the signed assertion's "
					      "SubjectConfirmationData must carry InResponseTo"};
			continue;
		}
		if (irt != NULL && (in_response_to == NULL || strcmp(irt, in_response_to) != 0)) {
			last = (struct check){REFUSE_IN_RESPONSE_TO,
					      "the SubjectConfirmationData's InResponseTo differs "
					      "from the Response's"};
			continue;
		}
		struct check w;
		if (check_window(&w, d, "the bearer SubjectConfirmation", now, skew, true,
				 nooa_r) < 0) {
			last = w;
			continue;
		}
		/* The replay entry must outlive every confirmation that could accept the
		 * assertion later, not only this one: the latest NotOnOrAfter of them all. */
		for (xmlNode *o = xml_child(subj, NS_SAML, "SubjectConfirmation"); o != NULL;
		     o = xml_next(o, NS_SAML, "SubjectConfirmation")) {
			xmlNode *od = xml_child(o, NS_SAML, "SubjectConfirmationData");
			time_t t;
			if (od != NULL && xml_parse_time(xml_attr(od, "NotOnOrAfter"), &t) &&
			    t > *nooa_r)
				*nooa_r = t;
		}
		return 0;
	}
	*c = last;
	return -1;
}

static int check_conditions(struct check *c, const xmlNode *assertion, const char *entity_id,
			    time_t now, long long skew, time_t *nooa_r)
{
	if (xml_count_children(assertion, NS_SAML, "Conditions") != 1)
		REFUSE(REFUSE_AUDIENCE, "the assertion does not have exactly one Conditions "
					"(an AudienceRestriction is required)");
	xmlNode *cond = xml_child(assertion, NS_SAML, "Conditions");
	if (check_window(c, cond, "the assertion (Conditions)", now, skew, false, nooa_r) < 0)
		return -1;
	size_t restrictions = 0;
	for (xmlNode *k = cond->children; k != NULL; k = k->next) {
		if (k->type != XML_ELEMENT_NODE)
			continue;
		if (xml_is(k, NS_SAML, "AudienceRestriction")) {
			bool ours = false;
			for (xmlNode *a = xml_child(k, NS_SAML, "Audience"); a != NULL;
			     a = xml_next(a, NS_SAML, "Audience")) {
				char *v = xml_text(a, 1024);
				if (v != NULL && strcmp(str_trim(v), entity_id) == 0)
					ours = true;
				free(v);
			}
			if (!ours)
				REFUSE(REFUSE_AUDIENCE,
				       "an AudienceRestriction does not name our entityID");
			restrictions++;
		} else if (xml_is(k, NS_SAML, "OneTimeUse") || xml_is(k, NS_SAML, "ProxyRestriction")) {
			/* OneTimeUse: the replay cache enforces it; ProxyRestriction limits
			 * re-issuing, which samlgw never does. */
		} else {
			REFUSE(REFUSE_CONDITION, "unknown condition <%.100s>", (const char *)k->name);
		}
	}
	if (restrictions == 0)
		REFUSE(REFUSE_AUDIENCE, "the assertion has no AudienceRestriction");
	return 0;
}

/* Everything up to and including the identity; the Redis steps come after. */
struct parsed {
	xmlDoc *doc;
	xmlNode *resp, *assertion;
	char *issuer;
	char *assertion_id;
	char *in_response_to;
	time_t replay_until;
	const struct idp *idp;
	/* An AES-CBC assertion of an unsigned Response was decrypted and no signature has
	 * vouched for it yet: a refusal now reads as decryption_failed (the log line keeps
	 * the detail), so the page does not tell whether modified ciphertext decrypted to
	 * well-formed XML. */
	bool cbc_unverified;
};

static int check_message(struct check *c, struct sp *sp, struct parsed *p, const char *xml,
			 size_t xml_len, time_t now)
{
	const struct config *cfg = sp->cfg;
	long long skew = cfg->saml.clock_skew;
	const char *error;
	if (xml_len > ACS_RESPONSE_MAX)
		REFUSE(REFUSE_BAD_REQUEST, "the SAMLResponse is larger than %d bytes",
		       ACS_RESPONSE_MAX);
	p->doc = xml_parse_safe(xml, xml_len, &error);
	if (p->doc == NULL)
		REFUSE(strcmp(error, XML_DTD_ERROR) == 0 ? REFUSE_DTD : REFUSE_XML, "%s", error);
	xmlNode *resp = p->resp = xmlDocGetRootElement(p->doc);
	if (!xml_is(resp, NS_SAMLP, "Response"))
		REFUSE(REFUSE_NOT_RESPONSE, "the message is not a samlp:Response");
	const char *ver = xml_attr(resp, "Version");
	if (ver == NULL || strcmp(ver, "2.0") != 0 || xml_attr(resp, "ID") == NULL)
		REFUSE(REFUSE_NOT_RESPONSE, "the Response lacks Version 2.0 or an ID");
	if (xml_register_ids(p->doc, resp, &error) < 0)
		REFUSE(REFUSE_XML, "%s", error);

	p->issuer = xml_saml_issuer(resp);
	if (p->issuer == NULL)
		REFUSE(REFUSE_UNKNOWN_IDP, "the Response has no entity Issuer");
	p->idp = idp_set_find(sp->idps, p->issuer);
	if (p->idp == NULL)
		REFUSE(REFUSE_UNKNOWN_IDP, "the Issuer is not an IdP in our metadata");

	bool resp_signed = xml_child(resp, NS_DS, "Signature") != NULL;
	const char *dest = xml_attr(resp, "Destination");
	if (dest != NULL ? strcmp(dest, sp->acs_url) != 0 : resp_signed)
		REFUSE(REFUSE_DESTINATION, "the Response's Destination is %.300s, not our ACS URL",
		       dest != NULL ? dest : "missing (required on a signed Response)");
	if (resp_signed && xmlsig_verify(resp, &p->idp->keys, cfg->saml.allow_sha1, &error) < 0)
		REFUSE(strstr(error, "SHA-1") != NULL ? REFUSE_SHA1 : REFUSE_SIGNATURE,
		       "Response signature: %s", error);
	if (check_status(c, resp) < 0)
		return -1;

	size_t plain = xml_count_children(resp, NS_SAML, "Assertion");
	size_t enc = xml_count_children(resp, NS_SAML, "EncryptedAssertion");
	if (plain + enc != 1)
		REFUSE(REFUSE_ASSERTION_COUNT, "the Response holds %zu assertions, not exactly one",
		       plain + enc);
	/* No assertion hidden anywhere else (Extensions, Advice, …) either. */
	if (xml_count_descendants(resp, NS_SAML, "Assertion") != plain ||
	    xml_count_descendants(resp, NS_SAML, "EncryptedAssertion") != enc)
		REFUSE(REFUSE_ASSERTION_COUNT, "the Response holds assertions outside its top level");
	xmlNode *a;
	if (enc == 1) {
		xmlNode *ea = xml_child(resp, NS_SAML, "EncryptedAssertion");
		if (!resp_signed && xmlenc_is_cbc(ea)) {
			if (!cfg->saml.allow_unsigned_cbc)
				REFUSE(REFUSE_CBC_UNSIGNED,
				       "the assertion is encrypted with AES-CBC in an unsigned Response "
				       "(the IdP must sign the Response or use AES-GCM; "
				       "saml.allow_unsigned_cbc accepts it)");
			p->cbc_unverified = true;
		}
		/* Every failure of the decryption has the same reason, whatever step failed (no
		 * padding or format oracle for the client; the log has the detail). */
		a = xmlenc_decrypt(sp->decryptor, ea, &error);
		if (a == NULL)
			REFUSE(REFUSE_DECRYPTION, "%s", error);
		if (!xml_is(a, NS_SAML, "Assertion") ||
		    xml_count_children(ea, NS_SAML, "Assertion") != 1)
			REFUSE(REFUSE_DECRYPTION, "the encrypted content is not one Assertion");
		if (xml_count_descendants(a, NS_SAML, "Assertion") != 1 ||
		    xml_count_descendants(a, NS_SAML, "EncryptedAssertion") != 0)
			REFUSE(REFUSE_ASSERTION_COUNT, "the decrypted assertion holds assertions");
		if (xml_register_ids(p->doc, a, &error) < 0)
			REFUSE(REFUSE_XML, "decrypted assertion: %s", error);
	} else {
		a = xml_child(resp, NS_SAML, "Assertion");
	}
	p->assertion = a;
	const char *aver = xml_attr(a, "Version"), *aid = xml_attr(a, "ID");
	if (aver == NULL || strcmp(aver, "2.0") != 0 || aid == NULL || strlen(aid) > 256)
		REFUSE(REFUSE_NOT_RESPONSE, "the assertion lacks Version 2.0 or a usable ID");
	p->assertion_id = xstrdup(aid);
	char *aiss = xml_saml_issuer(a);
	bool same = aiss != NULL && strcmp(aiss, p->issuer) == 0;
	free(aiss);
	if (!same)
		REFUSE(REFUSE_ISSUER, "the assertion's Issuer is not the Response's");
	bool a_signed = xml_child(a, NS_DS, "Signature") != NULL;
	if (a_signed && xmlsig_verify(a, &p->idp->keys, cfg->saml.allow_sha1, &error) < 0)
		REFUSE(strstr(error, "SHA-1") != NULL ? REFUSE_SHA1 : REFUSE_SIGNATURE,
		       "assertion signature: %s", error);
	if (!resp_signed && !a_signed)
		REFUSE(REFUSE_UNSIGNED, "neither the Response nor the assertion is signed");
	p->cbc_unverified = false; /* the IdP's signature covers the plaintext now */

	const char *irt = xml_attr(resp, "InResponseTo");
	if (irt != NULL && (*irt == '\0' || strlen(irt) > 256))
		REFUSE(REFUSE_IN_RESPONSE_TO, "InResponseTo is empty or too long");
	p->in_response_to = irt != NULL ? xstrdup(irt) : NULL;
	time_t sc_until = 0, cond_until = 0;
	if (check_subject(c, a, sp->acs_url, irt, !resp_signed && irt != NULL, now, skew,
			  &sc_until) < 0)
		return -1;
	if (check_conditions(c, a, cfg->saml.entity_id, now, skew, &cond_until) < 0)
		return -1;
	if (xml_child(a, NS_SAML, "AuthnStatement") == NULL)
		REFUSE(REFUSE_NO_AUTHN_STATEMENT, "the assertion has no AuthnStatement");
	if (irt == NULL && !cfg->saml.allow_unsolicited)
		REFUSE(REFUSE_UNSOLICITED, "unsolicited Response (no InResponseTo) and "
					   "saml.allow_unsolicited is off");
	/* Remember the assertion as long as any of its time limits would accept it. */
	p->replay_until = (sc_until > cond_until ? sc_until : cond_until) + skew;
	return 0;
}

static void parsed_clear(struct parsed *p)
{
	if (p->doc != NULL)
		xmlFreeDoc(p->doc);
	free(p->issuer);
	free(p->assertion_id);
	free(p->in_response_to);
}

void acs_result_clear(struct acs_result *r)
{
	identity_clear(&r->id);
	free(r->return_to);
	r->return_to = NULL;
}

void acs_checked_clear(struct acs_checked *ch)
{
	identity_clear(&ch->id);
	attrs_clear(&ch->attrs);
	free(ch->issuer);
	free(ch->assertion_id);
	free(ch->in_response_to);
	kv_slo_clear(&ch->slo);
	memset(ch, 0, sizeof(*ch));
}

int acs_check_xml(struct sp *sp, const char *xml, size_t len, time_t now,
		  struct acs_checked *out, enum refusal *reason_r, const char **error_r,
		  char **issuer_r)
{
	struct parsed p = {0};
	struct check chk = {0}, *c = &chk;
	struct saml_attrs attrs = {0};
	int ret = -1;
	if (check_message(c, sp, &p, xml, len, now) < 0) {
		if (p.cbc_unverified)
			c->reason = REFUSE_DECRYPTION;
		goto out;
	}
	if (attrs_from_assertion(p.assertion, p.idp, &attrs, &c->reason, &c->error) < 0)
		goto out;
	if (identity_from_attrs(sp->cfg, p.idp, p.issuer, &attrs, &out->id, &c->reason,
				&c->error) < 0)
		goto out;
	out->issuer = p.issuer;
	out->assertion_id = p.assertion_id;
	out->in_response_to = p.in_response_to;
	out->replay_until = p.replay_until;
	slo_subject_read(p.assertion, &out->slo);
	out->attrs = attrs;
	memset(&attrs, 0, sizeof(attrs));
	p.issuer = p.assertion_id = p.in_response_to = NULL;
	ret = 0;
out:
	if (ret < 0) {
		*reason_r = c->reason;
		*error_r = c->error;
		if (p.issuer != NULL) {
			*issuer_r = p.issuer;
			p.issuer = NULL;
		}
	}
	attrs_clear(&attrs);
	parsed_clear(&p);
	return ret;
}

int acs_check(struct sp *sp, const char *b64, size_t len, time_t now, struct acs_checked *out,
	      enum refusal *reason_r, const char **error_r, char **issuer_r)
{
	unsigned char *xml;
	size_t xml_len;
	if (b64_decode(b64, len, ACS_RESPONSE_MAX, &xml, &xml_len) < 0) {
		*reason_r = REFUSE_BAD_REQUEST;
		*error_r = fmt_error("SAMLResponse is not base64 of at most %d bytes",
				     ACS_RESPONSE_MAX);
		return -1;
	}
	int r = acs_check_xml(sp, (const char *)xml, xml_len, now, out, reason_r, error_r,
			      issuer_r);
	free(xml);
	return r;
}

int acs_commit(struct kv *kv, struct acs_checked *ch, const struct kv_session_new *session,
	       struct acs_result *result, enum refusal *reason_r, const char **error_r)
{
	/* Only now, with a message that passed every other check, touch shared state: a
	 * forged message must not be able to consume someone's pending request. */
	char *return_to = NULL;
	enum kv_login_refusal why = KV_LOGIN_NO_REQUEST;
	const char *error;
	enum kv_result r = kv_login(kv, ch->issuer, ch->assertion_id, (long long)ch->replay_until,
				    ch->in_response_to, session, &return_to, &why, &error);
	if (r == KV_UNAVAILABLE) {
		*reason_r = REFUSE_UNAVAILABLE;
		*error_r = fmt_error("%s", error);
		return -1;
	}
	if (r == KV_MISS) {
		*reason_r = why == KV_LOGIN_REPLAY ? REFUSE_REPLAY : REFUSE_IN_RESPONSE_TO;
		*error_r = why == KV_LOGIN_NO_REQUEST ? fmt_error("InResponseTo: %s", error)
						      : fmt_error("%s", error);
		return -1;
	}
	result->id = ch->id;
	memset(&ch->id, 0, sizeof(ch->id));
	result->return_to = xstrdup(return_to[0] == '/' ? return_to : "/");
	free(return_to);
	return 0;
}
