/* libxml2 helpers for the SAML documents samlgw reads itself (see xml.h). */
#include "xml.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/valid.h>

DEFINE_ERROR_FORMATTER(fmt_error, error_buf, 300)

/* The SAX callback for <!DOCTYPE …>: stop at once, before the DTD's declarations (entities
 * among them) are read. */
static void refuse_dtd(void *ctx, const xmlChar *name, const xmlChar *external_id,
		       const xmlChar *system_id)
{
	xmlParserCtxt *ctxt = ctx;
	(void)name;
	(void)external_id;
	(void)system_id;
	ctxt->_private = ctxt; /* marks the DTD for xml_parse_safe */
	xmlStopParser(ctxt);
}

xmlDoc *xml_parse_safe(const char *data, size_t len, const char **error_r)
{
	if (len > 0x7fffffff) {
		*error_r = "the document is too large";
		return NULL;
	}
	xmlParserCtxt *ctxt = xmlNewParserCtxt();
	if (ctxt == NULL) {
		*error_r = "cannot set up the XML parser";
		return NULL;
	}
	ctxt->sax->internalSubset = refuse_dtd;
	ctxt->_private = NULL;
	/* No XML_PARSE_NOENT (entities stay unexpanded), no XML_PARSE_DTDLOAD, no
	 * XML_PARSE_HUGE (libxml2's own depth and text size limits stay on). */
	xmlDoc *doc = xmlCtxtReadMemory(ctxt, data, (int)len, "noname.xml", NULL,
					XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	bool dtd = ctxt->_private != NULL;
	const xmlError *e = xmlCtxtGetLastError(ctxt);
	if (doc == NULL && !dtd) {
		/* libxml2's message (one line, trimmed) says which limit or rule it broke. */
		const char *m = e != NULL && e->message != NULL ? e->message : "";
		size_t ml = strcspn(m, "\n");
		*error_r = fmt_error("not well-formed XML (line %d: %.*s)", e != NULL ? e->line : 0,
				     (int)(ml < 200 ? ml : 200), m);
	}
	xmlFreeParserCtxt(ctxt);
	if (doc == NULL && !dtd)
		return NULL;
	if (dtd || doc->intSubset != NULL || doc->extSubset != NULL) {
		xmlFreeDoc(doc);
		*error_r = XML_DTD_ERROR;
		return NULL;
	}
	if (xmlDocGetRootElement(doc) == NULL) {
		xmlFreeDoc(doc);
		*error_r = "the document has no root element";
		return NULL;
	}
	return doc;
}

bool xml_is(const xmlNode *node, const char *ns, const char *name)
{
	return node != NULL && node->type == XML_ELEMENT_NODE &&
	       strcmp((const char *)node->name, name) == 0 &&
	       (ns == NULL ? node->ns == NULL
			   : node->ns != NULL && node->ns->href != NULL &&
				     strcmp((const char *)node->ns->href, ns) == 0);
}

xmlNode *xml_child(const xmlNode *parent, const char *ns, const char *name)
{
	if (parent == NULL)
		return NULL;
	for (xmlNode *c = parent->children; c != NULL; c = c->next) {
		if (xml_is(c, ns, name))
			return c;
	}
	return NULL;
}

xmlNode *xml_next(const xmlNode *node, const char *ns, const char *name)
{
	for (xmlNode *c = node->next; c != NULL; c = c->next) {
		if (xml_is(c, ns, name))
			return c;
	}
	return NULL;
}

size_t xml_count_children(const xmlNode *parent, const char *ns, const char *name)
{
	size_t n = 0;
	for (xmlNode *c = parent->children; c != NULL; c = c->next)
		n += xml_is(c, ns, name);
	return n;
}

size_t xml_count_descendants(const xmlNode *node, const char *ns, const char *name)
{
	size_t n = xml_is(node, ns, name);
	for (xmlNode *c = node->children; c != NULL; c = c->next) {
		if (c->type == XML_ELEMENT_NODE)
			n += xml_count_descendants(c, ns, name);
	}
	return n;
}

static const char *attr_value(const xmlAttr *a)
{
	if (a == NULL)
		return NULL;
	if (a->children == NULL)
		return "";
	if (a->children->next != NULL || a->children->type != XML_TEXT_NODE)
		return NULL;
	return (const char *)a->children->content;
}

const char *xml_attr(const xmlNode *node, const char *name)
{
	for (const xmlAttr *a = node->properties; a != NULL; a = a->next) {
		if (a->ns == NULL && strcmp((const char *)a->name, name) == 0)
			return attr_value(a);
	}
	return NULL;
}

const char *xml_attr_ns(const xmlNode *node, const char *ns, const char *name)
{
	for (const xmlAttr *a = node->properties; a != NULL; a = a->next) {
		if (a->ns != NULL && a->ns->href != NULL &&
		    strcmp((const char *)a->ns->href, ns) == 0 &&
		    strcmp((const char *)a->name, name) == 0)
			return attr_value(a);
	}
	return NULL;
}

char *xml_text(const xmlNode *node, size_t max)
{
	size_t len = 0;
	for (const xmlNode *c = node->children; c != NULL; c = c->next) {
		if (c->type == XML_COMMENT_NODE)
			continue;
		if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE)
			return NULL;
		len += strlen((const char *)c->content);
		if (len > max)
			return NULL;
	}
	char *out = xcalloc(1, len + 1);
	size_t pos = 0;
	for (const xmlNode *c = node->children; c != NULL; c = c->next) {
		if (c->type == XML_COMMENT_NODE)
			continue;
		size_t n = strlen((const char *)c->content);
		memcpy(out + pos, c->content, n);
		pos += n;
	}
	return out;
}

#define STR_(x) #x
#define STR(x) STR_(x)

static size_t ns_declared(const xmlNode *n)
{
	size_t count = 0;
	for (const xmlNs *ns = n->nsDef; ns != NULL; ns = ns->next)
		count++;
	return count;
}

/* xml_register_ids for the siblings from node on, at depth with in_scope namespace
 * declarations on their ancestors. */
static int register_ids(xmlDoc *doc, xmlNode *node, size_t depth, size_t in_scope,
			const char **error_r)
{
	for (xmlNode *n = node; n != NULL; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		/* Inclusive C14N and InclusiveNamespaces look namespaces up along the
		 * ancestors of every element: bounded by these two. */
		if (depth > XML_DEPTH_MAX) {
			*error_r = "the XML is nested more than " STR(XML_DEPTH_MAX) " elements deep";
			return -1;
		}
		size_t here = in_scope + ns_declared(n);
		if (here > XML_NS_IN_SCOPE_MAX) {
			*error_r = "an element has more than " STR(XML_NS_IN_SCOPE_MAX) " namespace "
				   "declarations in scope";
			return -1;
		}
		for (xmlAttr *a = n->properties; a != NULL; a = a->next) {
			if (a->ns != NULL || strcmp((const char *)a->name, "ID") != 0)
				continue;
			const char *v = attr_value(a);
			if (v == NULL || *v == '\0') {
				*error_r = "an ID attribute is empty";
				return -1;
			}
			/* xs:ID is an NCName. libxml2 forgets an ID with white space in it only by
			 * its collapsed form, so such a value could outlive its node. */
			if (xmlValidateNCName((const xmlChar *)v, 0) != 0) {
				*error_r = "an ID value is not an XML name (xs:ID)";
				return -1;
			}
			xmlAttr *known = xmlGetID(doc, (const xmlChar *)v);
			if (known == a)
				continue;
			if (known != NULL || xmlAddID(NULL, doc, (const xmlChar *)v, a) == NULL) {
				*error_r = "an ID value is used twice in the document";
				return -1;
			}
		}
		if (n->children != NULL &&
		    register_ids(doc, n->children, depth + 1, here, error_r) < 0)
			return -1;
	}
	return 0;
}

int xml_register_ids(xmlDoc *doc, xmlNode *node, const char **error_r)
{
	size_t depth = 1, in_scope = 0;
	for (const xmlNode *p = node->parent; p != NULL && p->type == XML_ELEMENT_NODE;
	     p = p->parent) {
		depth++;
		in_scope += ns_declared(p);
	}
	return register_ids(doc, node, depth, in_scope, error_r);
}

static bool digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

bool xml_parse_time(const char *s, time_t *t_r)
{
	int y, mo, d, h, mi, sec;
	if (s == NULL || strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' ||
	    !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d) || s[10] != 'T' ||
	    !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
	    !digits(s + 17, 2, &sec))
		return false;
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		size_t nd = strspn(p, "0123456789");
		if (nd == 0 || nd > 9)
			return false;
		p += nd;
	}
	if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
		return false;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
			.tm_hour = h, .tm_min = mi, .tm_sec = sec};
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return false;
	*t_r = t;
	return true;
}

void xml_format_time(time_t t, char *buf, size_t size)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void xml_escape_append(char **buf, size_t *len, const char *text)
{
	size_t add = 0;
	for (const char *p = text; *p; p++)
		add += *p == '&' ? 5 : (*p == '<' || *p == '>') ? 4 : *p == '"' ? 6 : 1;
	*buf = xrealloc(*buf, *len + add + 1);
	char *o = *buf + *len;
	for (const char *p = text; *p; p++) {
		switch (*p) {
		case '&':
			memcpy(o, "&amp;", 5), o += 5;
			break;
		case '<':
			memcpy(o, "&lt;", 4), o += 4;
			break;
		case '>':
			memcpy(o, "&gt;", 4), o += 4;
			break;
		case '"':
			memcpy(o, "&quot;", 6), o += 6;
			break;
		default:
			*o++ = *p;
		}
	}
	*o = '\0';
	*len += add;
}

char *xml_saml_issuer(const xmlNode *parent)
{
	xmlNode *iss = xml_child(parent, NS_SAML, "Issuer");
	if (iss == NULL)
		return NULL;
	const char *fmt = xml_attr(iss, "Format");
	if (fmt != NULL && strcmp(fmt, "urn:oasis:names:tc:SAML:2.0:nameid-format:entity") != 0)
		return NULL;
	char *v = xml_text(iss, 1024);
	if (v != NULL)
		str_trim(v);
	return v;
}
