/* The restricted XML stream parser over expat (see xmlstream.h). */
#include "xmlstream.h"
#include "util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <expat.h>

#define NS_SEP '\x01'

struct xmlstream {
	XML_Parser p;
	struct xmlstream_limits limits;
	struct xmlstream_handlers h;
	void *ctx;
	unsigned depth;         /* 0 outside the stream, 1 inside it, 2+ inside a stanza */
	struct xnode **stack;   /* stack[i]: open element at depth i + 2 */
	size_t nodes;           /* in the current stanza */
	unsigned ns_decls;      /* namespace declarations of the element being started */
	long long mark;         /* where the current stanza (or the gap before it) began */
	long long fed;          /* bytes given to this parser */
	char *default_ns;       /* of the stream element */
	const char *err_condition, *err_text;
	bool suspended;
};

static void fail(struct xmlstream *xs, const char *condition, const char *text)
{
	if (xs->err_condition == NULL) {
		xs->err_condition = condition;
		xs->err_text = text;
	}
	XML_StopParser(xs->p, XML_FALSE);
}

static bool failed(const struct xmlstream *xs)
{
	return xs->err_condition != NULL;
}

/* Split expat's "URI\x01local" into namespace and local name (pointers into name). */
static const char *split_name(const char *name, char **ns_r)
{
	const char *sep = strchr(name, NS_SEP);
	if (sep == NULL) {
		*ns_r = NULL;
		return name;
	}
	*ns_r = xstrndup(name, (size_t)(sep - name));
	return sep + 1;
}

static struct xnode *make_element(struct xmlstream *xs, const char *name, const char **attrs)
{
	char *ns;
	const char *local = split_name(name, &ns);
	struct xnode *n = xnode_new(ns != NULL ? ns : "", local);
	free(ns);
	/* Namespace declarations count as attributes: expat reports them apart. */
	unsigned count = xs->ns_decls;
	xs->ns_decls = 0;
	if (count > xs->limits.max_attrs) {
		fail(xs, "policy-violation", "too many attributes on one element");
		xnode_free(n);
		return NULL;
	}
	for (size_t i = 0; attrs[i] != NULL; i += 2) {
		if (++count > xs->limits.max_attrs) {
			fail(xs, "policy-violation", "too many attributes on one element");
			xnode_free(n);
			return NULL;
		}
		char *ans;
		const char *alocal = split_name(attrs[i], &ans);
		xnode_add_attr_ns(n, ans, alocal, attrs[i + 1]);
		free(ans);
	}
	return n;
}

/* The stanza so far, up to the end of the event being reported, within the cap. */
static void check_size(struct xmlstream *xs)
{
	long long at = XML_GetCurrentByteIndex(xs->p);
	if (at >= 0)
		at += XML_GetCurrentByteCount(xs->p);
	if (at >= 0 && at - xs->mark > (long long)xs->limits.max_stanza)
		fail(xs, "policy-violation", "stanza too large");
}

static void on_start(void *ud, const char *name, const char **attrs)
{
	struct xmlstream *xs = ud;
	if (failed(xs))
		return;
	if (xs->depth == 0) {
		struct xnode *header = make_element(xs, name, attrs);
		if (header == NULL)
			return;
		xs->depth = 1;
		xs->mark = XML_GetCurrentByteIndex(xs->p) + XML_GetCurrentByteCount(xs->p);
		xs->h.open(xs->ctx, header, xs->default_ns != NULL ? xs->default_ns : "");
		xnode_free(header);
		return;
	}
	if (xs->depth - 1 >= xs->limits.max_depth) {
		fail(xs, "policy-violation", "elements nested too deeply");
		return;
	}
	if (xs->depth == 1) {
		xs->mark = XML_GetCurrentByteIndex(xs->p);
		xs->nodes = 0;
	} else {
		check_size(xs);
	}
	if (++xs->nodes > xs->limits.max_nodes) {
		fail(xs, "policy-violation", "too many elements in one stanza");
		return;
	}
	struct xnode *n = make_element(xs, name, attrs);
	if (n == NULL)
		return;
	if (xs->depth > 1)
		xnode_append(xs->stack[xs->depth - 2], n);
	xs->stack[xs->depth - 1] = n;
	xs->depth++;
}

static void on_end(void *ud, const char *name)
{
	struct xmlstream *xs = ud;
	(void)name;
	if (failed(xs))
		return;
	if (xs->depth == 1) {
		xs->depth = 0;
		xs->h.close(xs->ctx);
		return;
	}
	check_size(xs);
	if (failed(xs))
		return;
	xs->depth--;
	if (xs->depth == 1) {
		struct xnode *n = xs->stack[0];
		xs->stack[0] = NULL;
		xs->mark = XML_GetCurrentByteIndex(xs->p) + XML_GetCurrentByteCount(xs->p);
		xs->h.element(xs->ctx, n);
	}
}

static void on_text(void *ud, const char *s, int len)
{
	struct xmlstream *xs = ud;
	if (failed(xs))
		return;
	if (xs->depth <= 1) {
		/* Whitespace between stanzas (keepalives) starts a new gap. */
		xs->mark = XML_GetCurrentByteIndex(xs->p) + XML_GetCurrentByteCount(xs->p);
		return;
	}
	check_size(xs);
	struct xnode *cur = xs->stack[xs->depth - 2];
	bool merges = cur->n_children > 0 && cur->children[cur->n_children - 1]->name == NULL;
	if (!merges && ++xs->nodes > xs->limits.max_nodes) {
		fail(xs, "policy-violation", "too many elements in one stanza");
		return;
	}
	xnode_add_text(cur, s, (size_t)len);
}

static void on_ns_start(void *ud, const char *prefix, const char *uri)
{
	struct xmlstream *xs = ud;
	xs->ns_decls++;
	if (xs->depth == 0 && prefix == NULL) {
		free(xs->default_ns);
		xs->default_ns = xstrdup(uri != NULL ? uri : "");
	}
}

static void on_xmldecl(void *ud, const char *version, const char *encoding, int standalone)
{
	struct xmlstream *xs = ud;
	(void)version;
	(void)standalone;
	if (encoding != NULL && strcasecmp(encoding, "UTF-8") != 0)
		fail(xs, "unsupported-encoding", "only UTF-8 is allowed");
}

static void on_comment(void *ud, const char *data)
{
	(void)data;
	fail(ud, "restricted-xml", "comments are not allowed");
}

static void on_pi(void *ud, const char *target, const char *data)
{
	(void)target;
	(void)data;
	fail(ud, "restricted-xml", "processing instructions are not allowed");
}

static void on_doctype(void *ud, const char *name, const char *sysid, const char *pubid,
		       int has_internal)
{
	(void)name;
	(void)sysid;
	(void)pubid;
	(void)has_internal;
	fail(ud, "restricted-xml", "document type declarations are not allowed");
}

static void on_entity_decl(void *ud, const char *name, int is_param, const char *value,
			   int value_len, const char *base, const char *sysid, const char *pubid,
			   const char *notation)
{
	(void)name, (void)is_param, (void)value, (void)value_len, (void)base, (void)sysid;
	(void)pubid, (void)notation;
	fail(ud, "restricted-xml", "entity declarations are not allowed");
}

static int on_unknown_encoding(void *ud, const char *name, XML_Encoding *info)
{
	(void)name;
	(void)info;
	fail(ud, "unsupported-encoding", "only UTF-8 is allowed");
	return XML_STATUS_ERROR;
}

static void clear_tree(struct xmlstream *xs)
{
	if (xs->depth > 1 && xs->stack[0] != NULL)
		xnode_free(xs->stack[0]);
	xs->stack[0] = NULL;
	xs->depth = 0;
	xs->nodes = 0;
}

static void make_parser(struct xmlstream *xs)
{
	xs->p = XML_ParserCreateNS("UTF-8", NS_SEP);
	if (xs->p == NULL)
		abort();
	XML_SetUserData(xs->p, xs);
	XML_SetElementHandler(xs->p, on_start, on_end);
	XML_SetCharacterDataHandler(xs->p, on_text);
	XML_SetStartNamespaceDeclHandler(xs->p, on_ns_start);
	XML_SetXmlDeclHandler(xs->p, on_xmldecl);
	XML_SetCommentHandler(xs->p, on_comment);
	XML_SetProcessingInstructionHandler(xs->p, on_pi);
	XML_SetStartDoctypeDeclHandler(xs->p, on_doctype);
	XML_SetEntityDeclHandler(xs->p, on_entity_decl);
	XML_SetUnknownEncodingHandler(xs->p, on_unknown_encoding, xs);
	XML_SetParamEntityParsing(xs->p, XML_PARAM_ENTITY_PARSING_NEVER);
	xs->fed = 0;
	xs->mark = 0;
	xs->ns_decls = 0;
	xs->err_condition = NULL;
	xs->err_text = NULL;
	xs->suspended = false;
	free(xs->default_ns);
	xs->default_ns = NULL;
}

struct xmlstream *xmlstream_new(const struct xmlstream_limits *limits,
				const struct xmlstream_handlers *handlers, void *ctx)
{
	struct xmlstream *xs = xcalloc(1, sizeof(*xs));
	xs->limits = *limits;
	if (xs->limits.max_depth < 1)
		xs->limits.max_depth = 1;
	xs->h = *handlers;
	xs->ctx = ctx;
	xs->stack = xcalloc(xs->limits.max_depth + 1, sizeof(*xs->stack));
	make_parser(xs);
	return xs;
}

void xmlstream_free(struct xmlstream *xs)
{
	if (xs == NULL)
		return;
	clear_tree(xs);
	XML_ParserFree(xs->p);
	free(xs->stack);
	free(xs->default_ns);
	free(xs);
}

void xmlstream_reset(struct xmlstream *xs)
{
	clear_tree(xs);
	XML_ParserFree(xs->p);
	make_parser(xs);
}

void xmlstream_set_max_stanza(struct xmlstream *xs, size_t max_stanza)
{
	xs->limits.max_stanza = max_stanza;
}

int xmlstream_suspended(const struct xmlstream *xs)
{
	return xs->suspended;
}

void xmlstream_suspend(struct xmlstream *xs)
{
	if (XML_StopParser(xs->p, XML_TRUE) == XML_STATUS_OK)
		xs->suspended = true;
}

void xmlstream_stop(struct xmlstream *xs)
{
	XML_StopParser(xs->p, XML_FALSE);
}

static enum xmlstream_result finish(struct xmlstream *xs, enum XML_Status st,
				    const char **condition_r, const char **text_r)
{
	if (xs->err_condition != NULL) {
		*condition_r = xs->err_condition;
		*text_r = xs->err_text;
		return XS_ERROR;
	}
	if (st == XML_STATUS_SUSPENDED) {
		xs->suspended = true;
		return XS_SUSPENDED;
	}
	if (st == XML_STATUS_ERROR) {
		enum XML_Error e = XML_GetErrorCode(xs->p);
		if (e == XML_ERROR_ABORTED)
			return XS_STOPPED;
		if (e == XML_ERROR_UNDEFINED_ENTITY || e == XML_ERROR_ENTITY_DECLARED_IN_PE ||
		    e == XML_ERROR_EXTERNAL_ENTITY_HANDLING || e == XML_ERROR_RECURSIVE_ENTITY_REF ||
		    e == XML_ERROR_BINARY_ENTITY_REF || e == XML_ERROR_ASYNC_ENTITY ||
		    e == XML_ERROR_ATTRIBUTE_EXTERNAL_ENTITY_REF) {
			*condition_r = "restricted-xml";
			*text_r = "only the predefined entities are allowed";
		} else if (e == XML_ERROR_UNKNOWN_ENCODING || e == XML_ERROR_INCORRECT_ENCODING) {
			*condition_r = "unsupported-encoding";
			*text_r = "only UTF-8 is allowed";
		} else {
			*condition_r = "not-well-formed";
			*text_r = XML_ErrorString(e);
		}
		return XS_ERROR;
	}
	/* Expat holds an unfinished tag or text run without calling us: cap it too. */
	if (xs->fed - xs->mark > (long long)xs->limits.max_stanza) {
		*condition_r = "policy-violation";
		*text_r = "stanza too large";
		return XS_ERROR;
	}
	return XS_OK;
}

enum xmlstream_result xmlstream_feed(struct xmlstream *xs, const char *data, size_t len,
				     const char **condition_r, const char **text_r)
{
	if (xs->suspended || len > (size_t)0x7fffffff)
		abort(); /* a caller bug: feeding a suspended parser */
	xs->fed += (long long)len;
	enum XML_Status st = XML_Parse(xs->p, data, (int)len, XML_FALSE);
	return finish(xs, st, condition_r, text_r);
}

enum xmlstream_result xmlstream_resume(struct xmlstream *xs, const char **condition_r,
				       const char **text_r)
{
	xs->suspended = false;
	enum XML_Status st = XML_ResumeParser(xs->p);
	return finish(xs, st, condition_r, text_r);
}
