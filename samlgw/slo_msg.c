/* Reading and verifying single logout messages (see slo_msg.h). */
#include "slo_msg.h"
#include "b64.h"
#include "util.h"
#include "xml.h"
#include "xmlsig.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <zlib.h>

#define SIGNATURE_MAX 1024 /* bytes: RSA-8192 */

DEFINE_ERROR_FORMATTER(fmt_error, error_buf, 600)

const char *slo_refusal_name(enum slo_refusal r)
{
	static const char *const names[] = {
		[SLO_BAD_REQUEST] = "bad_request",   [SLO_XML] = "xml_invalid",
		[SLO_NOT_LOGOUT] = "not_logout",     [SLO_UNKNOWN_IDP] = "unknown_idp",
		[SLO_UNSIGNED] = "unsigned",         [SLO_SIGNATURE] = "signature_invalid",
		[SLO_SHA1] = "sha1",                 [SLO_DESTINATION] = "destination",
		[SLO_EXPIRED] = "expired",           [SLO_IN_RESPONSE_TO] = "in_response_to",
		[SLO_REPLAY] = "replay",             [SLO_UNAVAILABLE] = "store_unavailable",
	};
	return (size_t)r < ARRAY_SIZE(names) && names[r] != NULL ? names[r] : "unknown";
}

void kv_slo_clear(struct kv_slo *slo)
{
	free(slo->nameid);
	free(slo->format);
	free(slo->nq);
	free(slo->spnq);
	free(slo->session_index);
	memset(slo, 0, sizeof(*slo));
}

static char *attr_capped(const xmlNode *n, const char *name)
{
	const char *v = xml_attr(n, name);
	return v != NULL && *v != '\0' && strlen(v) <= KV_SLO_FIELD_MAX ? xstrdup(v) : NULL;
}

/* A saml:NameID element into *out; false (and *out untouched) when its value is missing
 * or over the cap. */
static bool nameid_read(const xmlNode *n, struct kv_slo *out)
{
	char *v = n != NULL ? xml_text(n, KV_SLO_FIELD_MAX) : NULL;
	if (v != NULL)
		str_trim(v);
	if (v == NULL || *v == '\0') {
		free(v);
		return false;
	}
	out->nameid = v;
	out->format = attr_capped(n, "Format");
	out->nq = attr_capped(n, "NameQualifier");
	out->spnq = attr_capped(n, "SPNameQualifier");
	return true;
}

void slo_subject_read(const xmlNode *assertion, struct kv_slo *out)
{
	memset(out, 0, sizeof(*out));
	const xmlNode *subject = xml_child(assertion, NS_SAML, "Subject");
	if (subject == NULL || !nameid_read(xml_child(subject, NS_SAML, "NameID"), out))
		return;
	const xmlNode *st = xml_child(assertion, NS_SAML, "AuthnStatement");
	const char *si = st != NULL ? xml_attr(st, "SessionIndex") : NULL;
	if (si != NULL && *si != '\0' && strlen(si) <= SLO_ID_MAX)
		out->session_index = xstrdup(si);
}

void slo_msg_clear(struct slo_msg *m)
{
	free(m->issuer);
	free(m->id);
	free(m->in_response_to);
	free(m->status);
	free(m->sub_status);
	kv_slo_clear(&m->subject);
	for (size_t i = 0; i < m->n_session_indexes; i++)
		free(m->session_indexes[i]);
	free(m->relay_state);
	memset(m, 0, sizeof(*m));
}

/* Decode one urlencoded query component (with '+' as space) into a new string; NULL on a
 * bad escape or a NUL. */
static char *url_decode(const char *s, size_t len)
{
	char *out = xcalloc(1, len + 1), *o = out;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi = i + 2 < len ? hex_digit(s[i + 1]) : -1;
			int lo = hi >= 0 ? hex_digit(s[i + 2]) : -1;
			if (lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			c = (char)(hi * 16 + lo);
			i += 2;
		}
		*o++ = c;
	}
	*o = '\0';
	return out;
}

/* The Redirect binding's parameters as they appear in the raw query. */
struct raw_param {
	const char *name;
	const char *v; /* raw (still encoded) value, in the query */
	size_t len;
	bool seen;
};

static int split_query(const char *q, struct raw_param *p, size_t n, const char **error_r)
{
	while (*q != '\0') {
		size_t l = strcspn(q, "&");
		const char *eq = memchr(q, '=', l);
		size_t nl = eq != NULL ? (size_t)(eq - q) : l;
		for (size_t i = 0; i < n; i++) {
			if (strlen(p[i].name) != nl || memcmp(p[i].name, q, nl) != 0)
				continue;
			if (p[i].seen) {
				*error_r = fmt_error("the query holds %s twice", p[i].name);
				return -1;
			}
			p[i].seen = true;
			p[i].v = eq != NULL ? eq + 1 : q + l;
			p[i].len = eq != NULL ? l - nl - 1 : 0;
		}
		q += l;
		if (*q == '&')
			q++;
	}
	return 0;
}

/* Raw DEFLATE (RFC 1951) of at most SLO_MSG_MAX bytes. */
static int inflate_raw(const unsigned char *in, size_t len, char **out_r, size_t *len_r)
{
	char *out = xcalloc(1, SLO_MSG_MAX + 1);
	z_stream z = {0};
	if (inflateInit2(&z, -15) != Z_OK) {
		free(out);
		return -1;
	}
	z.next_in = (unsigned char *)in;
	z.avail_in = (uInt)len;
	z.next_out = (unsigned char *)out;
	z.avail_out = SLO_MSG_MAX;
	int rc = inflate(&z, Z_FINISH);
	size_t n = SLO_MSG_MAX - z.avail_out;
	inflateEnd(&z);
	if (rc != Z_STREAM_END) {
		free(out);
		return -1;
	}
	out[n] = '\0';
	*out_r = out;
	*len_r = n;
	return 0;
}

struct sig_alg {
	const char *uri;
	int key_type;
	const EVP_MD *(*md)(void);
	bool sha1;
};

static const struct sig_alg sig_algs[] = {
	{"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", EVP_PKEY_RSA, EVP_sha256, false},
	{"http://www.w3.org/2001/04/xmldsig-more#rsa-sha384", EVP_PKEY_RSA, EVP_sha384, false},
	{"http://www.w3.org/2001/04/xmldsig-more#rsa-sha512", EVP_PKEY_RSA, EVP_sha512, false},
	{"http://www.w3.org/2000/09/xmldsig#rsa-sha1", EVP_PKEY_RSA, EVP_sha1, true},
	{"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256", EVP_PKEY_EC, EVP_sha256, false},
	{"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384", EVP_PKEY_EC, EVP_sha384, false},
	{"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512", EVP_PKEY_EC, EVP_sha512, false},
	{"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1", EVP_PKEY_EC, EVP_sha1, true},
};

static bool verify_one(EVP_PKEY *key, const struct sig_alg *alg, const char *data,
		       size_t len, const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	bool ok = md != NULL && EVP_DigestVerifyInit(md, NULL, alg->md(), NULL, key) == 1 &&
		  EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)data, len) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

/* ECDSA signatures come as r||s (XML Signature's form) or DER: try DER of r||s too. */
static bool verify_ecdsa_raw(EVP_PKEY *key, const struct sig_alg *alg, const char *data,
			     size_t len, const unsigned char *sig, size_t sig_len)
{
	if (sig_len == 0 || sig_len % 2 != 0 || sig_len > 2 * 66)
		return false;
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, (int)(sig_len / 2), NULL);
	BIGNUM *s = BN_bin2bn(sig + sig_len / 2, (int)(sig_len / 2), NULL);
	unsigned char *der = NULL;
	int der_len = -1;
	if (es != NULL && r != NULL && s != NULL && ECDSA_SIG_set0(es, r, s) == 1) {
		r = s = NULL;
		der_len = i2d_ECDSA_SIG(es, &der);
	}
	bool ok = der_len > 0 && verify_one(key, alg, data, len, der, (size_t)der_len);
	OPENSSL_free(der);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	return ok;
}

/* The HTTP-Redirect signature (SAML bindings 3.4.4.1): over "NAME=v[&RelayState=v]&SigAlg=v"
 * with the values exactly as the query carries them. */
static int verify_redirect(const struct raw_param *msg, const struct raw_param *relay,
			   const struct raw_param *sigalg, const struct raw_param *sig,
			   const struct idp *idp, bool allow_sha1, enum slo_refusal *reason_r,
			   const char **error_r)
{
	if (!sigalg->seen || !sig->seen) {
		*reason_r = SLO_UNSIGNED;
		*error_r = "the query carries no SigAlg and Signature";
		return -1;
	}
	char *alg_uri = url_decode(sigalg->v, sigalg->len);
	char *sig_b64 = url_decode(sig->v, sig->len);
	unsigned char *sig_bin = NULL;
	size_t sig_len = 0;
	int ret = -1;
	const struct sig_alg *alg = NULL;
	for (size_t i = 0; alg_uri != NULL && i < ARRAY_SIZE(sig_algs); i++)
		if (strcmp(alg_uri, sig_algs[i].uri) == 0)
			alg = &sig_algs[i];
	*reason_r = SLO_SIGNATURE;
	if (alg == NULL) {
		*error_r = fmt_error("unsupported SigAlg %.200s", alg_uri != NULL ? alg_uri : "");
		goto out;
	}
	if (alg->sha1 && !allow_sha1) {
		*reason_r = SLO_SHA1;
		*error_r = "the query is signed with SHA-1 and saml.allow_sha1 is off";
		goto out;
	}
	if (sig_b64 == NULL ||
	    b64_decode(sig_b64, strlen(sig_b64), SIGNATURE_MAX, &sig_bin, &sig_len) < 0) {
		*error_r = "the Signature parameter is not base64 of at most 1024 bytes";
		goto out;
	}
	char *data = xasprintf("%s=%.*s%s%.*s&SigAlg=%.*s", msg->name, (int)msg->len, msg->v,
			       relay->seen ? "&RelayState=" : "", relay->seen ? (int)relay->len : 0,
			       relay->seen ? relay->v : "", (int)sigalg->len, sigalg->v);
	size_t data_len = strlen(data);
	for (size_t i = 0; i < idp->keys.n && ret < 0; i++) {
		EVP_PKEY *key = idp->keys.v[i];
		if (EVP_PKEY_get_base_id(key) != alg->key_type)
			continue;
		if (verify_one(key, alg, data, data_len, sig_bin, sig_len) ||
		    (alg->key_type == EVP_PKEY_EC &&
		     verify_ecdsa_raw(key, alg, data, data_len, sig_bin, sig_len)))
			ret = 0;
	}
	free(data);
	if (ret < 0)
		*error_r = "the query signature does not verify with any signing key of the "
			   "IdP's metadata";
out:
	free(alg_uri);
	free(sig_b64);
	free(sig_bin);
	return ret;
}


static bool id_ok(const char *v)
{
	return v != NULL && *v != '\0' && strlen(v) <= SLO_ID_MAX && utf8_printable(v, strlen(v));
}

#define REFUSE(r, ...)                               \
	do {                                         \
		*reason_r = (r);                     \
		*error_r = fmt_error(__VA_ARGS__);   \
		goto fail;                           \
	} while (0)

/* The message's own content, once its signature (when Redirect) is known to be fine or
 * before the XML signature (POST) is checked. */
static int read_doc(struct sp *sp, const char *slo_url, xmlDoc *doc, bool is_request,
		    bool redirect, time_t now, struct slo_msg *m, enum slo_refusal *reason_r,
		    const char **error_r)
{
	const struct config *cfg = sp->cfg;
	time_t skew = (time_t)cfg->saml.clock_skew;
	const char *error;
	xmlNode *root = xmlDocGetRootElement(doc);
	const char *want = is_request ? "LogoutRequest" : "LogoutResponse";
	if (root == NULL || !xml_is(root, NS_SAMLP, want))
		REFUSE(SLO_NOT_LOGOUT, "the %s parameter holds no samlp:%s",
		       is_request ? "SAMLRequest" : "SAMLResponse", want);
	if (xml_register_ids(doc, root, &error) < 0)
		REFUSE(SLO_XML, "%s", error);
	const char *ver = xml_attr(root, "Version"), *id = xml_attr(root, "ID");
	if (ver == NULL || strcmp(ver, "2.0") != 0 || !id_ok(id))
		REFUSE(SLO_NOT_LOGOUT, "the %s lacks Version 2.0 or a usable ID", want);
	m->id = xstrdup(id);
	m->issuer = xml_saml_issuer(root);
	if (m->issuer == NULL)
		REFUSE(SLO_UNKNOWN_IDP, "the %s has no entity Issuer", want);
	m->idp = idp_set_find(sp->idps, m->issuer);
	if (m->idp == NULL)
		REFUSE(SLO_UNKNOWN_IDP, "the Issuer is not an IdP in our metadata");
	if (!redirect) {
		if (xml_child(root, NS_DS, "Signature") == NULL)
			REFUSE(SLO_UNSIGNED, "the %s carries no XML signature", want);
		if (xmlsig_verify(root, &m->idp->keys, cfg->saml.allow_sha1, &error) < 0)
			REFUSE(strstr(error, "SHA-1") != NULL ? SLO_SHA1 : SLO_SIGNATURE,
			       "%s signature: %s", want, error);
	}
	const char *dest = xml_attr(root, "Destination");
	if (dest == NULL || strcmp(dest, slo_url) != 0)
		REFUSE(SLO_DESTINATION, "the %s's Destination is %.300s, not our SLO URL", want,
		       dest != NULL ? dest : "missing");
	const char *ii = xml_attr(root, "IssueInstant");
	time_t issued;
	if (ii == NULL || !xml_parse_time(ii, &issued))
		REFUSE(SLO_NOT_LOGOUT, "the %s has no IssueInstant in UTC", want);
	/* A logout message is answered at once: it may be as old as an AuthnRequest may wait. */
	time_t oldest = now - (time_t)cfg->saml.request_ttl - skew;
	if (issued > now + skew || issued < oldest)
		REFUSE(SLO_EXPIRED, "IssueInstant %.40s is more than saml.request_ttl in the "
				    "past or more than saml.clock_skew ahead",
		       ii);
	m->until = issued + (time_t)cfg->saml.request_ttl + 2 * skew;
	if (is_request) {
		const char *noa = xml_attr(root, "NotOnOrAfter");
		time_t t;
		if (noa != NULL && (!xml_parse_time(noa, &t) || t + skew <= now))
			REFUSE(SLO_EXPIRED, "NotOnOrAfter %.40s has passed", noa);
		xmlNode *nid = xml_child(root, NS_SAML, "NameID");
		if (nid != NULL)
			nameid_read(nid, &m->subject);
		else
			m->encrypted_id = xml_child(root, NS_SAML, "EncryptedID") != NULL ||
					  xml_child(root, NS_SAML, "BaseID") != NULL;
		for (xmlNode *si = xml_child(root, NS_SAMLP, "SessionIndex"); si != NULL;
		     si = xml_next(si, NS_SAMLP, "SessionIndex")) {
			if (m->n_session_indexes == SLO_SESSION_INDEXES_MAX)
				REFUSE(SLO_NOT_LOGOUT, "more than %d SessionIndex elements",
				       SLO_SESSION_INDEXES_MAX);
			char *v = xml_text(si, SLO_ID_MAX);
			if (v == NULL)
				REFUSE(SLO_NOT_LOGOUT, "a SessionIndex is not text of at most %d "
						       "bytes",
				       SLO_ID_MAX);
			str_trim(v);
			m->session_indexes[m->n_session_indexes++] = v;
		}
	} else {
		const char *irt = xml_attr(root, "InResponseTo");
		if (!id_ok(irt))
			REFUSE(SLO_IN_RESPONSE_TO, "the LogoutResponse has no usable InResponseTo");
		m->in_response_to = xstrdup(irt);
		xmlNode *st = xml_child(root, NS_SAMLP, "Status");
		xmlNode *code = st != NULL ? xml_child(st, NS_SAMLP, "StatusCode") : NULL;
		const char *v = code != NULL ? xml_attr(code, "Value") : NULL;
		if (v == NULL || strlen(v) > 256)
			REFUSE(SLO_NOT_LOGOUT, "the LogoutResponse has no StatusCode");
		m->status = xstrdup(v);
		xmlNode *sub = xml_child(code, NS_SAMLP, "StatusCode");
		const char *sv = sub != NULL ? xml_attr(sub, "Value") : NULL;
		if (sv != NULL && strlen(sv) <= 256)
			m->sub_status = xstrdup(sv);
	}
	return 0;
fail:
	return -1;
}

int slo_msg_read(struct sp *sp, const char *slo_url, const char *value, bool is_request,
		 const char *raw_query, const char *relay_state, time_t now, struct slo_msg *m,
		 enum slo_refusal *reason_r, const char **error_r, char **issuer_r)
{
	memset(m, 0, sizeof(*m));
	m->is_request = is_request;
	m->redirect = raw_query != NULL;
	const char *name = is_request ? "SAMLRequest" : "SAMLResponse";
	struct raw_param p[] = {{.name = name}, {.name = "RelayState"}, {.name = "SigAlg"},
				{.name = "Signature"}};
	char *b64 = NULL, *xml = NULL, *relay = NULL;
	unsigned char *bin = NULL;
	size_t bin_len = 0, xml_len = 0;
	xmlDoc *doc = NULL;
	const char *error;
	if (raw_query != NULL) {
		if (split_query(raw_query, p, ARRAY_SIZE(p), &error) < 0)
			REFUSE(SLO_BAD_REQUEST, "%s", error);
		if (!p[0].seen || p[0].len == 0)
			REFUSE(SLO_BAD_REQUEST, "the query carries no %s", name);
		b64 = url_decode(p[0].v, p[0].len);
		relay = p[1].seen ? url_decode(p[1].v, p[1].len) : NULL;
		if (b64 == NULL || (p[1].seen && relay == NULL))
			REFUSE(SLO_BAD_REQUEST, "a malformed percent escape in the query");
	} else {
		b64 = value != NULL ? xstrdup(value) : NULL;
		relay = relay_state != NULL ? xstrdup(relay_state) : NULL;
	}
	if (b64 == NULL || *b64 == '\0')
		REFUSE(SLO_BAD_REQUEST, "no %s", name);
	if (relay != NULL && (strlen(relay) > SLO_RELAY_STATE_MAX ||
			      !utf8_printable(relay, strlen(relay))))
		REFUSE(SLO_BAD_REQUEST, "RelayState is longer than %d bytes or not printable",
		       SLO_RELAY_STATE_MAX);
	if (b64_decode(b64, strlen(b64), SLO_MSG_MAX, &bin, &bin_len) < 0)
		REFUSE(SLO_BAD_REQUEST, "%s is not base64 of at most %d bytes", name, SLO_MSG_MAX);
	if (raw_query != NULL) {
		if (inflate_raw(bin, bin_len, &xml, &xml_len) < 0)
			REFUSE(SLO_BAD_REQUEST, "%s is not raw DEFLATE of at most %d bytes", name,
			       SLO_MSG_MAX);
	} else {
		/* All bin_len bytes, NULs included (the parser refuses those); a string copy
		 * would stop at the first NUL and leave xml_len past the end. */
		xml = xcalloc(1, bin_len + 1);
		memcpy(xml, bin, bin_len);
		xml_len = bin_len;
	}
	doc = xml_parse_safe(xml, xml_len, &error);
	if (doc == NULL)
		REFUSE(SLO_XML, "%s", error);
	/* The Redirect signature needs the Issuer's keys: read the message first, but refuse
	 * an unsigned one before anything else is reported about it. */
	if (raw_query != NULL && (!p[2].seen || !p[3].seen))
		REFUSE(SLO_UNSIGNED, "the query carries no SigAlg and Signature");
	if (read_doc(sp, slo_url, doc, is_request, raw_query != NULL, now, m, reason_r,
		     error_r) < 0) {
		if (*reason_r == SLO_DESTINATION || *reason_r == SLO_EXPIRED ||
		    *reason_r == SLO_NOT_LOGOUT || *reason_r == SLO_IN_RESPONSE_TO) {
			/* Say so only once the signature is known to be good. */
			if (raw_query != NULL && m->idp != NULL) {
				enum slo_refusal why;
				const char *e;
				if (verify_redirect(&p[0], &p[1], &p[2], &p[3], m->idp,
						    sp->cfg->saml.allow_sha1, &why, &e) < 0) {
					*reason_r = why;
					*error_r = e;
				}
			}
		}
		goto fail;
	}
	if (raw_query != NULL && verify_redirect(&p[0], &p[1], &p[2], &p[3], m->idp,
						 sp->cfg->saml.allow_sha1, reason_r, error_r) < 0)
		goto fail;
	m->relay_state = relay;
	relay = NULL;
	xmlFreeDoc(doc);
	free(b64);
	free(bin);
	free(xml);
	return 0;
fail:
	if (m->issuer != NULL) {
		*issuer_r = m->issuer;
		m->issuer = NULL;
	}
	slo_msg_clear(m);
	if (doc != NULL)
		xmlFreeDoc(doc);
	free(relay);
	free(b64);
	free(bin);
	free(xml);
	return -1;
}
