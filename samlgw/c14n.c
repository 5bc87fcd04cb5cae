/* Exclusive C14N of a subtree, without comments (see c14n.h).
 *
 * It follows libxml2 2.9's c14n.c step by step for this one case (node set: the subtree
 * under top minus the subtree under minus, no comments; exclusive; no inclusive prefixes):
 * the namespace axis of xmlExcC14NProcessNamespacesAxis with its stack of rendered
 * namespaces, the sorted insertion of xmlListInsert (a new entry goes before the first
 * one not smaller), xmlC14NAttrsCompare and xmlC14NNsCompare, the text and attribute
 * escaping of xmlC11NNormalizeString, and the namespace values written as
 * xmlBufWriteQuotedString does. Anything whose result would depend on more of
 * libxml2's behaviour is declined up front: processing instructions in the subtree,
 * entity references or other unusual nodes anywhere in the document, a namespace URI
 * that libxml2's check would refuse (relative) or that holds a double quote, attribute
 * values that are not one text node, more than ATTRS_MAX attributes on an element. */
#include "c14n.h"
#include "util.h"

#include <stdbool.h>
#include <string.h>

#include <libxml/uri.h>

#define ATTRS_MAX 64
#define OUT_BUF 4096

/* ---------------------------------------------------------------- checks */

/* Namespace URIs SAML documents use, known to pass libxml2's relative-URI check. */
static const char *const known_ns[] = {
	"urn:oasis:names:tc:SAML:2.0:protocol",
	"urn:oasis:names:tc:SAML:2.0:assertion",
	"urn:oasis:names:tc:SAML:2.0:metadata",
	"http://www.w3.org/2000/09/xmldsig#",
	"http://www.w3.org/2001/04/xmlenc#",
	"http://www.w3.org/2009/xmlenc11#",
	"http://www.w3.org/2001/10/xml-exc-c14n#",
	"http://www.w3.org/2001/XMLSchema",
	"http://www.w3.org/2001/XMLSchema-instance",
	"urn:mace:shibboleth:metadata:1.0",
	"urn:oasis:names:tc:SAML:metadata:ui",
	"urn:oasis:names:tc:SAML:metadata:attribute",
	"urn:oasis:names:tc:SAML:metadata:rpi",
	"urn:oasis:names:tc:SAML:metadata:algsupport",
	"http://refeds.org/metadata",
};

/* What xmlC14NCheckForRelativeNamespaces accepts: empty, or a URI with a scheme. */
static bool href_absolute(const xmlChar *href)
{
	if (href == NULL || *href == '\0')
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(known_ns); i++) {
		if (strcmp((const char *)href, known_ns[i]) == 0)
			return true;
	}
	xmlURIPtr uri = xmlParseURI((const char *)href);
	bool ok = uri != NULL && uri->scheme != NULL && uri->scheme[0] != '\0';
	xmlFreeURI(uri);
	return ok;
}

static bool quoted_plainly(const xmlNs *ns)
{
	return ns == NULL || ns->href == NULL || strchr((const char *)ns->href, '"') == NULL;
}

/* An element in the output: everything about it must be handled exactly. */
static bool element_plain(xmlNode *e)
{
	size_t n = 0;
	if (!quoted_plainly(e->ns))
		return false;
	if (e->ns == NULL && !quoted_plainly(xmlSearchNs(e->doc, e, NULL)))
		return false;
	for (const xmlAttr *a = e->properties; a != NULL; a = a->next) {
		if (++n > ATTRS_MAX)
			return false;
		if (a->children != NULL &&
		    (a->children->next != NULL || a->children->type != XML_TEXT_NODE))
			return false;
		if (a->ns != NULL && (a->ns->prefix == NULL || !quoted_plainly(a->ns)))
			return false;
	}
	return true;
}

/* libxml2 walks the whole document whatever the node set: every node it would fail on
 * anywhere declines, and so does anything in the output this file does not render. */
static bool document_plain(const xmlDoc *doc, const xmlNode *top, const xmlNode *minus)
{
	const xmlNode *n = doc->children;
	int inside = 0; /* 1 within top, 0 outside or within minus */
	while (n != NULL) {
		bool descend = false;
		if (n == top)
			inside = 1;
		else if (n == minus)
			inside = 0;
		switch (n->type) {
		case XML_ELEMENT_NODE:
			for (const xmlNs *ns = n->nsDef; ns != NULL; ns = ns->next) {
				if (!href_absolute(ns->href))
					return false;
			}
			if (inside && !element_plain((xmlNode *)n))
				return false;
			descend = n->children != NULL;
			break;
		case XML_TEXT_NODE:
		case XML_CDATA_SECTION_NODE:
		case XML_COMMENT_NODE:
			break;
		case XML_PI_NODE:
			if (inside)
				return false;
			break;
		case XML_DOCUMENT_TYPE_NODE:
		case XML_DTD_NODE:
			break;
		default:
			return false;
		}
		if (descend) {
			n = n->children;
			continue;
		}
		/* Next in document order: leave n (and each ancestor whose subtree is done
		 * too); leaving top or minus sets inside back. */
		for (;;) {
			if (n == top)
				inside = 0;
			else if (n == minus)
				inside = 1;
			if (n->next != NULL)
				break;
			n = n->parent;
			if (n == NULL || n->type == XML_DOCUMENT_NODE)
				return true;
		}
		n = n->next;
	}
	return true;
}

/* ---------------------------------------------------------------- output */

struct out {
	c14n_sink *sink;
	void *ctx;
	bool failed;
	size_t n;
	unsigned char buf[OUT_BUF];
};

static void flush(struct out *o)
{
	if (o->n > 0 && !o->failed && o->sink(o->ctx, o->buf, o->n) < 0)
		o->failed = true;
	o->n = 0;
}

static void put_slow(struct out *o, const unsigned char *s, size_t len)
{
	while (len > 0) {
		if (o->n == OUT_BUF)
			flush(o);
		size_t k = OUT_BUF - o->n < len ? OUT_BUF - o->n : len;
		memcpy(o->buf + o->n, s, k);
		o->n += k;
		s += k;
		len -= k;
	}
}

static inline void put(struct out *o, const void *p, size_t len)
{
	if (len <= OUT_BUF - o->n) {
		memcpy(o->buf + o->n, p, len);
		o->n += len;
	} else {
		put_slow(o, p, len);
	}
}

static void put_str(struct out *o, const xmlChar *s)
{
	if (s != NULL)
		put(o, s, strlen((const char *)s));
}

/* xmlC11NNormalizeString: text escapes & < > CR; attribute values & < " TAB LF CR. The
 * tables mark those bytes, and NUL, which ends the string. */
static const unsigned char text_special[256] = {
	[0] = 1, ['&'] = 1, ['<'] = 1, ['>'] = 1, ['\r'] = 1,
};
static const unsigned char attr_special[256] = {
	[0] = 1, ['&'] = 1, ['<'] = 1, ['"'] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1,
};

static void put_escaped(struct out *o, const xmlChar *s, bool attr)
{
	const unsigned char *special = attr ? attr_special : text_special;
	for (;;) {
		const xmlChar *run = s;
		while (!special[*s])
			s++;
		put(o, run, (size_t)(s - run));
		const char *rep;
		switch (*s) {
		case '\0':
			return;
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\t':
			rep = "&#x9;";
			break;
		case '\n':
			rep = "&#xA;";
			break;
		default: /* '\r' */
			rep = "&#xD;";
			break;
		}
		put(o, rep, strlen(rep));
		s++;
	}
}

static void put_qname(struct out *o, const xmlNs *ns, const xmlChar *name)
{
	if (ns != NULL && ns->prefix != NULL && ns->prefix[0] != '\0') {
		put_str(o, ns->prefix);
		put(o, ":", 1);
	}
	put_str(o, name);
}

/* ---------------------------------------------------------------- namespace axis */

struct ns_stack {
	const xmlNs **v;
	size_t n, cap;
};

static void ns_push(struct ns_stack *st, const xmlNs *ns)
{
	if (st->n == st->cap) {
		st->cap = st->cap == 0 ? 32 : st->cap * 2;
		st->v = xrealloc(st->v, st->cap * sizeof(*st->v));
	}
	st->v[st->n++] = ns;
}

/* xmlC14NStrEqual: NULL equals "". */
static bool str_eq(const xmlChar *a, const xmlChar *b)
{
	return strcmp(a != NULL ? (const char *)a : "", b != NULL ? (const char *)b : "") == 0;
}

static size_t str_len(const xmlChar *s)
{
	return s != NULL ? strlen((const char *)s) : 0;
}

/* xmlStrcmp: NULL before anything. */
static int str_cmp(const xmlChar *a, const xmlChar *b)
{
	if (a == b)
		return 0;
	if (a == NULL)
		return -1;
	if (b == NULL)
		return 1;
	return strcmp((const char *)a, (const char *)b);
}

/* xmlExcC14NVisibleNsStackFind: already rendered with this value by an output ancestor
 * (or this element)? Every entry here belongs to an element in the output. */
static bool ns_rendered(const struct ns_stack *st, const xmlNs *ns)
{
	const xmlChar *prefix = ns->prefix, *href = ns->href;
	bool empty = str_eq(prefix, NULL) && str_eq(href, NULL);
	for (size_t i = st->n; i-- > 0;) {
		if (str_eq(prefix, st->v[i]->prefix))
			return str_eq(href, st->v[i]->href);
	}
	return empty;
}

static bool is_xml_ns(const xmlNs *ns)
{
	return ns != NULL && ns->prefix != NULL && strcmp((const char *)ns->prefix, "xml") == 0 &&
	       ns->href != NULL && strcmp((const char *)ns->href, (const char *)XML_XML_NAMESPACE) == 0;
}

static int ns_cmp(const void *x, const void *y)
{
	const xmlNs *a = x, *b = y;
	return a == b ? 0 : str_cmp(a->prefix, b->prefix);
}

/* xmlC14NAttrsCompare. */
static int attr_cmp(const void *x, const void *y)
{
	const xmlAttr *a = x, *b = y;
	if (a == b)
		return 0;
	if (a->ns == b->ns)
		return str_cmp(a->name, b->name);
	if (a->ns == NULL)
		return -1;
	if (b->ns == NULL)
		return 1;
	if (a->ns->prefix == NULL)
		return -1;
	if (b->ns->prefix == NULL)
		return 1;
	int r = str_cmp(a->ns->href, b->ns->href);
	return r != 0 ? r : str_cmp(a->name, b->name);
}

/* xmlListInsert: before the first entry that is not smaller. */
static void sorted_insert(const void **v, size_t *n, const void *item,
			  int (*cmp)(const void *, const void *))
{
	size_t i = 0;
	while (i < *n && cmp(v[i], item) < 0)
		i++;
	memmove(v + i + 1, v + i, (*n - i) * sizeof(*v));
	v[i] = item;
	(*n)++;
}

static void put_ns(struct out *o, const xmlNs *ns)
{
	if (ns->prefix != NULL) {
		put(o, " xmlns:", 7);
		put_str(o, ns->prefix);
		put(o, "=", 1);
	} else {
		put(o, " xmlns=", 7);
	}
	put(o, "\"", 1);
	put_str(o, ns->href);
	put(o, "\"", 1);
}

/* Not inlined: element() recurses, and its frame should stay small. */
__attribute__((noinline)) static void namespace_axis(struct out *o, struct ns_stack *st, xmlNode *e)
{
	const void *list[ATTRS_MAX + 1];
	size_t n = 0;
	bool has_empty = false, utilizes_empty = false;
	const xmlNs *ns = e->ns;
	if (ns == NULL) {
		ns = xmlSearchNs(e->doc, e, NULL);
		utilizes_empty = true;
	}
	if (ns != NULL && !is_xml_ns(ns)) {
		if (!ns_rendered(st, ns))
			sorted_insert(list, &n, ns, ns_cmp);
		ns_push(st, ns);
		if (str_len(ns->prefix) == 0)
			has_empty = true;
	}
	for (const xmlAttr *a = e->properties; a != NULL; a = a->next) {
		if (a->ns != NULL && !is_xml_ns(a->ns)) {
			bool already = ns_rendered(st, a->ns);
			ns_push(st, a->ns);
			if (!already)
				sorted_insert(list, &n, a->ns, ns_cmp);
			if (str_len(a->ns->prefix) == 0)
				has_empty = true;
		} else if (a->ns != NULL && str_len(a->ns->prefix) == 0 && str_len(a->ns->href) == 0) {
			utilizes_empty = true;
		}
	}
	if (utilizes_empty && !has_empty) {
		static const xmlNs empty_default;
		if (!ns_rendered(st, &empty_default))
			put(o, " xmlns=\"\"", 9);
	}
	for (size_t i = 0; i < n; i++)
		put_ns(o, list[i]);
}

__attribute__((noinline)) static void attribute_axis(struct out *o, const xmlNode *e)
{
	const void *list[ATTRS_MAX];
	size_t n = 0;
	for (const xmlAttr *a = e->properties; a != NULL; a = a->next)
		sorted_insert(list, &n, a, attr_cmp);
	for (size_t i = 0; i < n; i++) {
		const xmlAttr *a = list[i];
		put(o, " ", 1);
		put_qname(o, a->ns, a->name);
		put(o, "=\"", 2);
		if (a->children != NULL && a->children->content != NULL)
			put_escaped(o, a->children->content, true);
		put(o, "\"", 1);
	}
}

static void element(struct out *o, struct ns_stack *st, xmlNode *e, const xmlNode *minus)
{
	size_t saved = st->n;
	put(o, "<", 1);
	put_qname(o, e->ns, e->name);
	namespace_axis(o, st, e);
	attribute_axis(o, e);
	put(o, ">", 1);
	for (xmlNode *c = e->children; c != NULL && !o->failed; c = c->next) {
		if (c == minus)
			continue;
		if (c->type == XML_ELEMENT_NODE)
			element(o, st, c, minus);
		else if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) &&
			 c->content != NULL)
			put_escaped(o, c->content, false);
		/* comments: not in the output; nothing else occurs (document_plain) */
	}
	put(o, "</", 2);
	put_qname(o, e->ns, e->name);
	put(o, ">", 1);
	st->n = saved;
}

enum c14n_result c14n_exclusive(xmlNode *top, const xmlNode *minus, c14n_sink *sink, void *ctx)
{
	if (top == NULL || top->type != XML_ELEMENT_NODE || top->doc == NULL ||
	    !document_plain(top->doc, top, minus))
		return C14N_DECLINED;
	struct out *o = xcalloc(1, sizeof(*o));
	o->sink = sink;
	o->ctx = ctx;
	struct ns_stack st = {0};
	element(o, &st, top, minus);
	flush(o);
	enum c14n_result r = o->failed ? C14N_FAILED : C14N_DONE;
	free(st.v);
	free(o);
	return r;
}

int c14n_node_visible(void *ctx, xmlNodePtr node, xmlNodePtr parent)
{
	const struct c14n_node_set *set = ctx;
	if (node->type == XML_COMMENT_NODE && !set->comments)
		return 0;
	const xmlNode *n = node->type == XML_NAMESPACE_DECL ? parent : node;
	for (; n != NULL; n = n->parent) {
		if (n == set->minus)
			return 0;
		if (n == set->top)
			return 1;
	}
	return 0;
}
