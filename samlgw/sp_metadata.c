/* Generation of this SP's metadata document (see sp_metadata.h). */
#include "sp_metadata.h"
#include "attributes.h"
#include "xml.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SAML IdP Discovery Service Protocol (sstc-saml-idp-discovery): namespace and binding. */
#define NS_IDPDISC "urn:oasis:names:tc:SAML:profiles:SSO:idp-discovery-protocol"

struct out {
	char *buf;
	size_t len;
};

static void raw(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void raw(struct out *o, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s;
	if (vasprintf(&s, fmt, ap) < 0)
		abort();
	va_end(ap);
	size_t n = strlen(s);
	o->buf = xrealloc(o->buf, o->len + n + 1);
	memcpy(o->buf + o->len, s, n + 1);
	o->len += n;
	free(s);
}

static void esc(struct out *o, const char *text)
{
	if (o->buf == NULL)
		o->buf = xcalloc(1, 1);
	xml_escape_append(&o->buf, &o->len, text);
}

/* element with escaped text */
static void el(struct out *o, const char *indent, const char *name, const char *attrs,
	       const char *text)
{
	raw(o, "%s<%s%s>", indent, name, attrs);
	esc(o, text);
	raw(o, "</%s>\n", name);
}

/* The base64 body of the first certificate in a PEM text. */
static char *pem_body(const char *pem)
{
	const char *begin = strstr(pem, "-----BEGIN CERTIFICATE-----");
	if (begin == NULL)
		return NULL;
	begin += strlen("-----BEGIN CERTIFICATE-----");
	const char *end = strstr(begin, "-----END CERTIFICATE-----");
	if (end == NULL)
		return NULL;
	char *out = xcalloc(1, (size_t)(end - begin) + 1);
	size_t n = 0;
	for (const char *p = begin; p < end; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '+' || *p == '/' || *p == '=')
			out[n++] = *p;
	}
	return out;
}

static void contact(struct out *o, const char *type, bool security, const char *value)
{
	if (value == NULL)
		return;
	if (security)
		raw(o, "  <md:ContactPerson contactType=\"other\" "
		       "remd:contactType=\"http://refeds.org/metadata/contactType/security\">\n");
	else
		raw(o, "  <md:ContactPerson contactType=\"%s\">\n", type);
	el(o, "    ", "md:GivenName", "",
	   security ? "Security Response Team" : strcmp(type, "support") == 0 ? "Support"
									    : "Technical contact");
	raw(o, "    <md:EmailAddress>%s", strchr(value, ':') == NULL ? "mailto:" : "");
	esc(o, value);
	raw(o, "</md:EmailAddress>\n  </md:ContactPerson>\n");
}

/* One saml:Attribute of mdattr:EntityAttributes with the values of l (none: nothing). */
static void entity_attribute(struct out *o, const char *name, const struct strlist *l)
{
	if (l->n == 0)
		return;
	raw(o, "      <saml:Attribute Name=\"%s\" "
	       "NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:uri\">\n", name);
	for (size_t i = 0; i < l->n; i++)
		el(o, "        ", "saml:AttributeValue", "", l->v[i]);
	raw(o, "      </saml:Attribute>\n");
}

static void requested(struct out *o, const struct strlist *l, bool required)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct attribute_def *a = attribute_by_name(l->v[i]);
		if (a == NULL)
			continue;
		raw(o, "      <md:RequestedAttribute FriendlyName=\"%s\" Name=\"%s\" "
		       "NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:uri\" "
		       "isRequired=\"%s\"/>\n",
		    a->friendly, a->oid, required ? "true" : "false");
	}
}

int sp_metadata_build(const struct config *cfg, const char *cert_pem, char **xml_r,
		      const char **error_r)
{
	char *cert = pem_body(cert_pem);
	if (cert == NULL) {
		*error_r = "the SP certificate file holds no PEM certificate";
		return -1;
	}
	const struct config *c = cfg;
	struct out o = {0};
	raw(&o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<md:EntityDescriptor xmlns:md=\"" NS_MD "\" xmlns:ds=\"" NS_DS "\" "
		"xmlns:mdui=\"" NS_MDUI "\" xmlns:remd=\"" NS_REMD "\" entityID=\"");
	esc(&o, c->saml.entity_id);
	raw(&o, "\">\n");
	/* Entity categories and assurance certifications (REFEDS R&S, Sirtfi, …): entity
	 * attributes, in the EntityDescriptor's own Extensions (before any role). */
	if (c->metadata.entity_categories.n + c->metadata.assurance_certifications.n > 0) {
		raw(&o, "  <md:Extensions>\n    <mdattr:EntityAttributes xmlns:mdattr=\"" NS_MDATTR
			"\" xmlns:saml=\"" NS_SAML "\">\n");
		entity_attribute(&o, "http://macedir.org/entity-category",
				 &c->metadata.entity_categories);
		entity_attribute(&o, "urn:oasis:names:tc:SAML:attribute:assurance-certification",
				 &c->metadata.assurance_certifications);
		raw(&o, "    </mdattr:EntityAttributes>\n  </md:Extensions>\n");
	}
	raw(&o, "  <md:SPSSODescriptor protocolSupportEnumeration=\"" NS_SAMLP "\" "
		"AuthnRequestsSigned=\"true\" WantAssertionsSigned=\"true\">\n"
		"    <md:Extensions>\n      <mdui:UIInfo>\n");
	el(&o, "        ", "mdui:DisplayName", " xml:lang=\"en\"", c->metadata.display_name);
	el(&o, "        ", "mdui:Description", " xml:lang=\"en\"", c->metadata.description);
	el(&o, "        ", "mdui:InformationURL", " xml:lang=\"en\"",
	   c->metadata.information_url != NULL ? c->metadata.information_url
					       : c->http.public_url);
	if (c->metadata.privacy_url != NULL)
		el(&o, "        ", "mdui:PrivacyStatementURL", " xml:lang=\"en\"",
		   c->metadata.privacy_url);
	if (c->metadata.logo_url != NULL) {
		char attrs[80];
		snprintf(attrs, sizeof(attrs), " height=\"%lld\" width=\"%lld\"",
			 c->metadata.logo_height, c->metadata.logo_width);
		el(&o, "        ", "mdui:Logo", attrs, c->metadata.logo_url);
	}
	raw(&o, "      </mdui:UIInfo>\n");
	/* Where a discovery service may send users back (it checks its return= against this,
	 * ignoring the query): the login, which takes the chosen IdP as idp=. */
	raw(&o, "      <idpdisc:DiscoveryResponse xmlns:idpdisc=\"" NS_IDPDISC "\" "
		"Binding=\"" NS_IDPDISC "\" Location=\"");
	esc(&o, c->http.public_url);
	raw(&o, "/login\" index=\"1\"/>\n    </md:Extensions>\n");
	static const char *const uses[] = {"signing", "encryption"};
	for (size_t i = 0; i < 2; i++) {
		raw(&o, "    <md:KeyDescriptor use=\"%s\">\n      <ds:KeyInfo><ds:X509Data>"
			"<ds:X509Certificate>%s</ds:X509Certificate></ds:X509Data></ds:KeyInfo>\n",
		    uses[i], cert);
		if (i == 1)
			raw(&o, "      <md:EncryptionMethod Algorithm=\"http://www.w3.org/2009/xmlenc11#aes256-gcm\"/>\n"
				"      <md:EncryptionMethod Algorithm=\"http://www.w3.org/2009/xmlenc11#aes128-gcm\"/>\n"
				"      <md:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#aes256-cbc\"/>\n"
				"      <md:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#aes128-cbc\"/>\n"
				"      <md:EncryptionMethod Algorithm=\"http://www.w3.org/2009/xmlenc11#rsa-oaep\"/>\n"
				"      <md:EncryptionMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p\"/>\n");
		raw(&o, "    </md:KeyDescriptor>\n");
	}
	raw(&o, "    <md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect\" Location=\"");
	esc(&o, c->http.public_url);
	raw(&o, SP_PATH_SLO "\"/>\n"
		"    <md:SingleLogoutService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"");
	esc(&o, c->http.public_url);
	raw(&o, SP_PATH_SLO "\"/>\n"
		"    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>\n"
		"    <md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</md:NameIDFormat>\n"
		"    <md:AssertionConsumerService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" Location=\"");
	esc(&o, c->http.public_url);
	raw(&o, SP_PATH_ACS "\" index=\"0\" isDefault=\"true\"/>\n");
	if (c->metadata.requested_attributes.n + c->metadata.required_attributes.n > 0) {
		raw(&o, "    <md:AttributeConsumingService index=\"0\" isDefault=\"true\">\n");
		el(&o, "      ", "md:ServiceName", " xml:lang=\"en\"", c->metadata.display_name);
		requested(&o, &c->metadata.required_attributes, true);
		requested(&o, &c->metadata.requested_attributes, false);
		raw(&o, "    </md:AttributeConsumingService>\n");
	}
	raw(&o, "  </md:SPSSODescriptor>\n");
	if (c->metadata.organization != NULL) {
		const char *url = c->metadata.organization_url != NULL ? c->metadata.organization_url
								       : c->http.public_url;
		raw(&o, "  <md:Organization>\n");
		el(&o, "    ", "md:OrganizationName", " xml:lang=\"en\"", c->metadata.organization);
		el(&o, "    ", "md:OrganizationDisplayName", " xml:lang=\"en\"",
		   c->metadata.organization);
		el(&o, "    ", "md:OrganizationURL", " xml:lang=\"en\"", url);
		raw(&o, "  </md:Organization>\n");
	}
	contact(&o, "technical", false, c->metadata.contact_technical);
	contact(&o, "support", false, c->metadata.contact_support);
	contact(&o, "other", true, c->metadata.contact_security);
	raw(&o, "</md:EntityDescriptor>\n");
	free(cert);
	*xml_r = o.buf;
	return 0;
}
