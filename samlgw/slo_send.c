/* Building and signing the logout messages samlgw sends (see slo_send.h). */
#include "slo_send.h"
#include "b64.h"
#include "util.h"
#include "xml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lasso/lasso.h>
#include <libxml/c14n.h>
#include <openssl/evp.h>
#include <zlib.h>

#define BINDING_REDIRECT "HTTP-Redirect"
#define BINDING_POST "HTTP-POST"

static char *lasso_one(LassoProvider *p, const char *name)
{
	char *v = lasso_provider_get_metadata_one_for_role(p, LASSO_PROVIDER_ROLE_IDP, name);
	char *out = v != NULL && *v != '\0' ? xstrdup(v) : NULL;
	g_free(v);
	return out;
}

bool slo_endpoint_find(struct sp *sp, const char *idp, bool prefer_post,
		       struct slo_endpoint *ep_r)
{
	LassoProvider *p = lasso_server_get_provider(sp->lasso_server, idp);
	if (p == NULL)
		return false;
	for (int i = 0; i < 2; i++) {
		bool post = (i == 0) == prefer_post;
		const char *b = post ? BINDING_POST : BINDING_REDIRECT;
		char key[80], rkey[100];
		snprintf(key, sizeof(key), "SingleLogoutService %s", b);
		snprintf(rkey, sizeof(rkey), "SingleLogoutService %s ResponseLocation", b);
		char *loc = lasso_one(p, key);
		if (loc == NULL)
			continue;
		char *rloc = lasso_one(p, rkey);
		*ep_r = (struct slo_endpoint){.post = post, .location = loc,
					      .response_location = rloc != NULL ? rloc
										: xstrdup(loc)};
		return true;
	}
	return false;
}

void slo_endpoint_clear(struct slo_endpoint *ep)
{
	free(ep->location);
	free(ep->response_location);
	memset(ep, 0, sizeof(*ep));
}

void slo_out_clear(struct slo_out *out)
{
	free(out->url);
	free(out->action);
	free(out->value);
	free(out->relay_state);
	memset(out, 0, sizeof(*out));
}

static char *b64_encode(const unsigned char *in, size_t len)
{
	char *out = xcalloc(1, (len + 2) / 3 * 4 + 1);
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

static void append(char **buf, size_t *len, const char *text)
{
	size_t n = strlen(text);
	*buf = realloc(*buf, *len + n + 1);
	if (*buf == NULL)
		abort();
	memcpy(*buf + *len, text, n + 1);
	*len += n;
}

static void append_attr(char **buf, size_t *len, const char *name, const char *value)
{
	if (value == NULL)
		return;
	append(buf, len, " ");
	append(buf, len, name);
	append(buf, len, "=\"");
	xml_escape_append(buf, len, value);
	append(buf, len, "\"");
}

/* The message as two halves: head (the root's start tag and Issuer) and tail (the rest),
 * so the signature can go between them, right after the Issuer as the schema wants. */
struct msg {
	char *head, *tail;
	size_t head_len, tail_len;
	char id[RANDOM_ID_LEN + 2];
};

static void msg_clear(struct msg *m)
{
	free(m->head);
	free(m->tail);
	memset(m, 0, sizeof(*m));
}

static int msg_start(struct msg *m, const char *root, struct sp *sp, const char *dest,
		     const char *in_response_to, const char **error_r)
{
	memset(m, 0, sizeof(*m));
	char rid[RANDOM_ID_LEN + 1];
	if (random_id(rid) < 0) {
		*error_r = "the random generator failed";
		return -1;
	}
	/* An xs:ID must not start with a digit or '-': prefix it. */
	snprintf(m->id, sizeof(m->id), "_%s", rid);
	char now[32];
	xml_format_time(time(NULL), now, sizeof(now));
	append(&m->head, &m->head_len, "<samlp:");
	append(&m->head, &m->head_len, root);
	append(&m->head, &m->head_len,
	       " xmlns:samlp=\"" NS_SAMLP "\" xmlns:saml=\"" NS_SAML "\"");
	append_attr(&m->head, &m->head_len, "ID", m->id);
	append_attr(&m->head, &m->head_len, "Version", "2.0");
	append_attr(&m->head, &m->head_len, "IssueInstant", now);
	append_attr(&m->head, &m->head_len, "Destination", dest);
	append_attr(&m->head, &m->head_len, "InResponseTo", in_response_to);
	append(&m->head, &m->head_len, "><saml:Issuer>");
	xml_escape_append(&m->head, &m->head_len, sp->cfg->saml.entity_id);
	append(&m->head, &m->head_len, "</saml:Issuer>");
	m->tail = xstrdup("");
	return 0;
}

/* HTTP-Redirect: DEFLATE, base64, URL-encode, sign the query. */
static int encode_redirect(struct sp *sp, const struct msg *m, const char *dest,
			   const char *field, const char *relay_state, struct slo_out *out,
			   const char **error_r)
{
	char *xml = xasprintf("%s%s", m->head, m->tail);
	size_t len = strlen(xml);
	uLong cap = compressBound((uLong)len) + 64;
	unsigned char *z = xcalloc(1, cap);
	z_stream s = {0};
	int ok = deflateInit2(&s, Z_BEST_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) ==
		 Z_OK;
	if (ok) {
		s.next_in = (unsigned char *)xml;
		s.avail_in = (uInt)len;
		s.next_out = z;
		s.avail_out = (uInt)cap;
		ok = deflate(&s, Z_FINISH) == Z_STREAM_END;
		deflateEnd(&s);
	}
	free(xml);
	if (!ok) {
		free(z);
		*error_r = "cannot DEFLATE the message";
		return -1;
	}
	char *b64 = b64_encode(z, cap - s.avail_out);
	free(z);
	char *enc = redirect_url_encode((const unsigned char *)b64, strlen(b64));
	free(b64);
	char *rs = relay_state != NULL
			   ? redirect_url_encode((const unsigned char *)relay_state, strlen(relay_state))
			   : NULL;
	char *url = xasprintf("%s%c%s=%s%s%s", dest, strchr(dest, '?') != NULL ? '&' : '?', field,
			      enc, rs != NULL ? "&RelayState=" : "", rs != NULL ? rs : "");
	free(enc);
	free(rs);
	out->url = redirect_sign_url(sp->signer, url, error_r);
	free(url);
	return out->url != NULL ? 0 : -1;
}

#define ALG_EXC_C14N "http://www.w3.org/2001/10/xml-exc-c14n#"
#define ALG_ENVELOPED "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
#define ALG_SHA256 "http://www.w3.org/2001/04/xmlenc#sha256"

/* HTTP-POST: an enveloped signature after the Issuer. The digest is over the message
 * without the signature in exclusive C14N (libxml2's); SignedInfo is written in its
 * canonical form already (no white space, no empty-element tags, the ds namespace the only
 * one it uses), so what is signed is exactly what a verifier canonicalises. */
static int encode_post(struct sp *sp, const struct msg *m, const char *dest,
		       const char *field, const char *relay_state, struct slo_out *out,
		       const char **error_r)
{
	char *unsigned_xml = xasprintf("%s%s", m->head, m->tail);
	xmlDoc *doc = xml_parse_safe(unsigned_xml, strlen(unsigned_xml), error_r);
	free(unsigned_xml);
	if (doc == NULL)
		return -1;
	xmlChar *c14n = NULL;
	int c14n_len = xmlC14NDocDumpMemory(doc, NULL, XML_C14N_EXCLUSIVE_1_0, NULL, 0, &c14n);
	xmlFreeDoc(doc);
	if (c14n_len < 0) {
		*error_r = "cannot canonicalise the message";
		return -1;
	}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	int ok = EVP_Digest(c14n, (size_t)c14n_len, md, &md_len, EVP_sha256(), NULL);
	xmlFree(c14n);
	if (ok != 1) {
		*error_r = "cannot digest the message";
		return -1;
	}
	char *digest = b64_encode(md, md_len);
	unsigned char sig[REDIRECT_SIGNATURE_MAX];
	size_t sig_len = 0;
	const char *sigalg = redirect_signer_alg(sp->signer);
	char *body = xasprintf(
		"<ds:CanonicalizationMethod Algorithm=\"" ALG_EXC_C14N
		"\"></ds:CanonicalizationMethod><ds:SignatureMethod Algorithm=\"%s\">"
		"</ds:SignatureMethod><ds:Reference URI=\"#%s\"><ds:Transforms><ds:Transform "
		"Algorithm=\"" ALG_ENVELOPED "\"></ds:Transform><ds:Transform Algorithm=\"" ALG_EXC_C14N
		"\"></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm=\"" ALG_SHA256
		"\"></ds:DigestMethod><ds:DigestValue>%s</ds:DigestValue></ds:Reference>",
		sigalg, m->id, digest);
	free(digest);
	char *si_c14n = xasprintf("<ds:SignedInfo xmlns:ds=\"" NS_DS "\">%s</ds:SignedInfo>", body);
	int r = redirect_signer_sign_xml(sp->signer, (const unsigned char *)si_c14n,
					 strlen(si_c14n), sig, &sig_len, &sigalg, error_r);
	free(si_c14n);
	if (r < 0) {
		free(body);
		return -1;
	}
	char *sig_b64 = b64_encode(sig, sig_len);
	char *xml = xasprintf("%s<ds:Signature xmlns:ds=\"" NS_DS "\"><ds:SignedInfo>%s"
			      "</ds:SignedInfo><ds:SignatureValue>%s</ds:SignatureValue>"
			      "</ds:Signature>%s",
			      m->head, body, sig_b64, m->tail);
	free(body);
	free(sig_b64);
	out->value = b64_encode((const unsigned char *)xml, strlen(xml));
	free(xml);
	out->action = xstrdup(dest);
	out->field = field;
	out->relay_state = relay_state != NULL ? xstrdup(relay_state) : NULL;
	return 0;
}

static int encode(struct sp *sp, const struct msg *m, bool post, const char *dest,
		  const char *field, const char *relay_state, struct slo_out *out,
		  const char **error_r)
{
	memset(out, 0, sizeof(*out));
	out->post = post;
	int r = post ? encode_post(sp, m, dest, field, relay_state, out, error_r)
		     : encode_redirect(sp, m, dest, field, relay_state, out, error_r);
	if (r < 0)
		slo_out_clear(out);
	return r;
}

int slo_send_request(struct sp *sp, const char *idp, const struct slo_endpoint *ep,
		     const struct kv_slo *subject, struct slo_out *out, char **id_r,
		     const char **error_r)
{
	struct msg m;
	if (subject->nameid == NULL) {
		*error_r = "the session has no NameID";
		return -1;
	}
	if (msg_start(&m, "LogoutRequest", sp, ep->location, NULL, error_r) < 0)
		return -1;
	/* Reason: the user asked (SAML 2.0 core 3.7.3); NotOnOrAfter as long as we wait. */
	char until[32];
	xml_format_time(time(NULL) + (time_t)sp->cfg->saml.request_ttl, until, sizeof(until));
	char *head = xasprintf("%.*s", (int)(strstr(m.head, "><saml:Issuer>") - m.head), m.head);
	size_t hl = strlen(head);
	append_attr(&head, &hl, "NotOnOrAfter", until);
	append_attr(&head, &hl, "Reason", "urn:oasis:names:tc:SAML:2.0:logout:user");
	append(&head, &hl, strstr(m.head, "><saml:Issuer>"));
	free(m.head);
	m.head = head;
	m.head_len = hl;
	append(&m.tail, &m.tail_len, "<saml:NameID");
	append_attr(&m.tail, &m.tail_len, "Format", subject->format);
	append_attr(&m.tail, &m.tail_len, "NameQualifier", subject->nq);
	append_attr(&m.tail, &m.tail_len, "SPNameQualifier", subject->spnq);
	append(&m.tail, &m.tail_len, ">");
	xml_escape_append(&m.tail, &m.tail_len, subject->nameid);
	append(&m.tail, &m.tail_len, "</saml:NameID>");
	if (subject->session_index != NULL) {
		append(&m.tail, &m.tail_len, "<samlp:SessionIndex>");
		xml_escape_append(&m.tail, &m.tail_len, subject->session_index);
		append(&m.tail, &m.tail_len, "</samlp:SessionIndex>");
	}
	append(&m.tail, &m.tail_len, "</samlp:LogoutRequest>");
	(void)idp;
	int r = encode(sp, &m, ep->post, ep->location, "SAMLRequest", NULL, out, error_r);
	if (r == 0)
		*id_r = xstrdup(m.id);
	msg_clear(&m);
	return r;
}

int slo_send_response(struct sp *sp, const struct slo_endpoint *ep, const char *in_response_to,
		      const char *status, const char *sub_status, const char *relay_state,
		      struct slo_out *out, const char **error_r)
{
	struct msg m;
	if (msg_start(&m, "LogoutResponse", sp, ep->response_location, in_response_to,
		      error_r) < 0)
		return -1;
	append(&m.tail, &m.tail_len, "<samlp:Status><samlp:StatusCode");
	append_attr(&m.tail, &m.tail_len, "Value", status);
	if (sub_status != NULL) {
		append(&m.tail, &m.tail_len, "><samlp:StatusCode");
		append_attr(&m.tail, &m.tail_len, "Value", sub_status);
		append(&m.tail, &m.tail_len, "/></samlp:StatusCode>");
	} else {
		append(&m.tail, &m.tail_len, "/>");
	}
	append(&m.tail, &m.tail_len, "</samlp:Status></samlp:LogoutResponse>");
	int r = encode(sp, &m, ep->post, ep->response_location, "SAMLResponse", relay_state, out,
		       error_r);
	msg_clear(&m);
	return r;
}
