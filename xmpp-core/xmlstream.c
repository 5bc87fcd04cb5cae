/* The restricted XML stream parser over expat (see xmlstream.h).
 *
 * Memory: each parser (expat's state and the element stack) lives in an arena of its
 * own (arena.c), capped by parser_cap(). An idle stream's parser can be freed whole
 * (xmlstream_release); the next input then builds a new one and feeds it the stream's
 * start tag again, rebuilt from the qualified name and the namespace declarations, with
 * every handler silent. Namespace declarations are the only part of the start tag that
 * changes how later input is parsed, and the byte counters behind the stanza-size cap are
 * relative to the end of the last event, which an idle stream has at the end of its input.
 * So the new parser accepts, refuses and reports exactly what the old one would have. */
#include "xmlstream.h"
#include "arena.h"
#include "util.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <expat.h>

#define NS_SEP '\x01'

/* The canonical start tag of a client stream (either order of the declarations): most
 * streams share these instead of a copy of their own. */
static const char *const common_replays[] = {
	"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
	"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'>",
};

/* The stream element's namespace declarations while its start tag is parsed. */
struct header_ns {
	char *default_ns; /* "" when none was declared */
	char *decls;      /* as attributes: " xmlns='…' xmlns:p='…'" */
};

/* One per connection, alive as long as it: kept small. */
struct xmlstream {
	XML_Parser p;        /* NULL while released */
	struct arena *arena; /* the parser's memory; NULL while released */
	const struct xmlstream_limits *limits; /* the caller's (max_stanza: ours) */
	const struct xmlstream_handlers *h;
	void *ctx;
	size_t max_stanza;
	struct xnode **stack;   /* stack[i]: open element at depth i + 2 (in the arena) */
	long long mark;         /* where the current stanza (or the gap before it) began */
	long long fed;          /* bytes given to this parser */
	struct header_ns *hdr;  /* while the stream's start tag is parsed */
	const char *replay;     /* the stream's start tag for a new parser; NULL: none */
	const char *err_condition, *err_text;
	unsigned depth;         /* 0 outside the stream, 1 inside it, 2+ inside a stanza */
	unsigned max_depth;     /* limits->max_depth, at least 1 */
	uint32_t nodes;         /* in the current stanza */
	unsigned ns_decls;      /* namespace declarations of the element being started */
	bool replay_owned;      /* replay is ours to free (not one of common_replays) */
	bool replaying;         /* feeding replay: every handler is silent */
	bool stopped;           /* xmlstream_stop() ended this stream's parsing */
	bool suspended;
};

/* The arena expat allocates from: set around every expat call that may allocate, and
 * restored after it (a handler may free another stream). */
static struct arena *current_arena;

static void *mm_malloc(size_t n)
{
	return arena_alloc(current_arena, n);
}

static void *mm_realloc(void *p, size_t n)
{
	return p == NULL ? arena_alloc(current_arena, n) : arena_realloc(p, n);
}

static const XML_Memory_Handling_Suite memsuite = {mm_malloc, mm_realloc, arena_release};

/* Most bytes of pages one parser may hold: expat keeps an unfinished stanza (up to
 * max_stanza, in a buffer grown by doubling, the old copy alive while the new one
 * fills), attribute values in string pools grown the same way, and every distinct
 * element and attribute name of the stream in its tables (a stream that keeps sending
 * new names reaches the cap and ends). */
static size_t parser_cap(size_t max_stanza)
{
	return 8 * max_stanza + 256 * 1024;
}

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
	if (count > xs->limits->max_attrs) {
		fail(xs, "policy-violation", "too many attributes on one element");
		xnode_free(n);
		return NULL;
	}
	for (size_t i = 0; attrs[i] != NULL; i += 2) {
		if (++count > xs->limits->max_attrs) {
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
	if (at >= 0 && at - xs->mark > (long long)xs->max_stanza)
		fail(xs, "policy-violation", "stanza too large");
}

static void free_header_ns(struct header_ns *hdr)
{
	if (hdr == NULL)
		return;
	free(hdr->default_ns);
	free(hdr->decls);
	free(hdr);
}

static void forget_replay(struct xmlstream *xs)
{
	if (xs->replay_owned)
		free((char *)xs->replay);
	xs->replay = NULL;
	xs->replay_owned = false;
}

/* Keep the stream element's start tag for a new parser: its qualified name as written
 * (the end tag must match it) and its namespace declarations. Without them (expat built
 * without XML_CONTEXT_BYTES) the stream keeps its parser. */
static void keep_replay(struct xmlstream *xs, const char *local)
{
	char *ns = xs->hdr != NULL ? xs->hdr->decls : NULL;
	if (xs->hdr != NULL)
		xs->hdr->decls = NULL;
	int off = 0, size = 0;
	const char *in = XML_GetInputContext(xs->p, &off, &size);
	int count = XML_GetCurrentByteCount(xs->p);
	if (in == NULL || off < 0 || count < 2 || off >= size || size - off < count ||
	    in[off] != '<') {
		free(ns);
		return;
	}
	const char *q = in + off + 1;
	size_t qlen = 0;
	while (qlen < (size_t)count - 1 && strchr(" \t\r\n/>", q[qlen]) == NULL)
		qlen++;
	const char *colon = memchr(q, ':', qlen);
	const char *qlocal = colon != NULL ? colon + 1 : q;
	size_t llen = qlen - (size_t)(qlocal - q);
	if (llen != strlen(local) || memcmp(qlocal, local, llen) != 0) {
		free(ns);
		return;
	}
	char *r = xasprintf("<%.*s%s>", (int)qlen, q, ns != NULL ? ns : "");
	free(ns);
	for (size_t i = 0; i < ARRAY_SIZE(common_replays); i++) {
		if (strcmp(r, common_replays[i]) == 0) {
			free(r);
			xs->replay = common_replays[i];
			return;
		}
	}
	xs->replay = r;
	xs->replay_owned = true;
}

static void on_start(void *ud, const char *name, const char **attrs)
{
	struct xmlstream *xs = ud;
	if (failed(xs))
		return;
	if (xs->replaying) {
		xs->depth++;
		return;
	}
	if (xs->depth == 0) {
		struct xnode *header = make_element(xs, name, attrs);
		if (header == NULL)
			return;
		xs->depth = 1;
		xs->mark = XML_GetCurrentByteIndex(xs->p) + XML_GetCurrentByteCount(xs->p);
		keep_replay(xs, header->name);
		struct header_ns *hdr = xs->hdr;
		xs->hdr = NULL;
		xs->h->open(xs->ctx, header, hdr != NULL ? hdr->default_ns : "");
		xnode_free(header);
		free_header_ns(hdr);
		return;
	}
	if (xs->depth - 1 >= xs->max_depth) {
		fail(xs, "policy-violation", "elements nested too deeply");
		return;
	}
	if (xs->depth == 1) {
		xs->mark = XML_GetCurrentByteIndex(xs->p);
		xs->nodes = 0;
	} else {
		check_size(xs);
	}
	if (++xs->nodes > xs->limits->max_nodes) {
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
	if (failed(xs) || xs->replaying)
		return;
	if (xs->depth == 1) {
		xs->depth = 0;
		xs->h->close(xs->ctx);
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
		xs->h->element(xs->ctx, n);
	}
}

static void on_text(void *ud, const char *s, int len)
{
	struct xmlstream *xs = ud;
	if (failed(xs) || xs->replaying)
		return;
	if (xs->depth <= 1) {
		/* Whitespace between stanzas (keepalives) starts a new gap. */
		xs->mark = XML_GetCurrentByteIndex(xs->p) + XML_GetCurrentByteCount(xs->p);
		return;
	}
	check_size(xs);
	struct xnode *cur = xs->stack[xs->depth - 2];
	bool merges = cur->n_children > 0 && cur->children[cur->n_children - 1]->name == NULL;
	if (!merges && ++xs->nodes > xs->limits->max_nodes) {
		fail(xs, "policy-violation", "too many elements in one stanza");
		return;
	}
	xnode_add_text(cur, s, (size_t)len);
}

/* A namespace URI as an attribute value between single quotes: expat must read back
 * exactly uri (white space as character references, which attribute value normalisation
 * leaves alone). */
static char *escape_uri(const char *uri)
{
	size_t len = 0;
	for (const char *p = uri; *p; p++)
		len += strchr("&<'\t\n\r", *p) != NULL ? 6 : 1;
	char *out = xcalloc(len + 1, 1), *o = out;
	for (const char *p = uri; *p; p++) {
		const char *rep = *p == '&'	? "&amp;"
				  : *p == '<'	? "&lt;"
				  : *p == '\''	? "&apos;"
				  : *p == '\t'	? "&#9;"
				  : *p == '\n'	? "&#10;"
				  : *p == '\r'	? "&#13;"
						: NULL;
		if (rep != NULL) {
			size_t n = strlen(rep);
			memcpy(o, rep, n);
			o += n;
		} else {
			*o++ = *p;
		}
	}
	return out;
}

static void on_ns_start(void *ud, const char *prefix, const char *uri)
{
	struct xmlstream *xs = ud;
	if (xs->replaying)
		return;
	xs->ns_decls++;
	if (xs->depth != 0)
		return;
	if (uri == NULL)
		uri = "";
	if (xs->hdr == NULL) {
		xs->hdr = xcalloc(1, sizeof(*xs->hdr));
		xs->hdr->default_ns = xstrdup("");
	}
	if (prefix == NULL) {
		free(xs->hdr->default_ns);
		xs->hdr->default_ns = xstrdup(uri);
	}
	char *value = escape_uri(uri);
	char *decls = xasprintf("%s xmlns%s%s='%s'", xs->hdr->decls != NULL ? xs->hdr->decls : "",
				prefix != NULL ? ":" : "", prefix != NULL ? prefix : "", value);
	free(value);
	free(xs->hdr->decls);
	xs->hdr->decls = decls;
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
	if (xs->stack != NULL)
		xs->stack[0] = NULL;
	xs->depth = 0;
	xs->nodes = 0;
}

/* A parser and its element stack in xs's arena (a new arena when it has none, else the
 * arena emptied); false when memory cannot be had. */
static bool make_parser(struct xmlstream *xs)
{
	if (xs->arena == NULL)
		xs->arena = arena_new(parser_cap(xs->max_stanza));
	else
		arena_reset(xs->arena);
	if (xs->arena == NULL)
		return false;
	struct arena *saved = current_arena;
	current_arena = xs->arena;
	xs->p = XML_ParserCreate_MM("UTF-8", &memsuite, "\x01");
	xs->stack = arena_alloc(xs->arena, (xs->max_depth + 1) * sizeof(*xs->stack));
	current_arena = saved;
	if (xs->p == NULL || xs->stack == NULL) {
		if (xs->p != NULL)
			XML_ParserFree(xs->p);
		arena_release(xs->stack);
		arena_free(xs->arena);
		xs->arena = NULL;
		xs->p = NULL;
		xs->stack = NULL;
		return false;
	}
	memset(xs->stack, 0, (xs->max_depth + 1) * sizeof(*xs->stack));
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
	return true;
}

/* Free the parser and its arena (the tree being built must be gone). */
static void drop_parser(struct xmlstream *xs)
{
	arena_release(xs->stack);
	if (xs->p != NULL) {
		struct arena *saved = current_arena;
		current_arena = xs->arena;
		XML_ParserFree(xs->p);
		current_arena = saved;
	}
	arena_free(xs->arena);
	xs->p = NULL;
	xs->arena = NULL;
	xs->stack = NULL;
}

/* The state of a new stream. */
static void new_stream(struct xmlstream *xs)
{
	xs->fed = 0;
	xs->mark = 0;
	xs->ns_decls = 0;
	xs->err_condition = NULL;
	xs->err_text = NULL;
	xs->suspended = false;
	xs->replaying = false;
	xs->stopped = false;
	free_header_ns(xs->hdr);
	xs->hdr = NULL;
	forget_replay(xs);
}

struct xmlstream *xmlstream_new(const struct xmlstream_limits *limits,
				const struct xmlstream_handlers *handlers, void *ctx)
{
	struct xmlstream *xs = xcalloc(1, sizeof(*xs));
	xs->limits = limits;
	xs->max_stanza = limits->max_stanza;
	xs->max_depth = limits->max_depth < 1 ? 1 : limits->max_depth;
	xs->h = handlers;
	xs->ctx = ctx;
	if (!make_parser(xs))
		abort(); /* out of memory, as in xcalloc() */
	return xs;
}

void xmlstream_free(struct xmlstream *xs)
{
	if (xs == NULL)
		return;
	clear_tree(xs);
	drop_parser(xs);
	new_stream(xs);
	free(xs);
}

void xmlstream_reset(struct xmlstream *xs)
{
	clear_tree(xs);
	arena_release(xs->stack);
	xs->stack = NULL;
	if (xs->p != NULL) {
		struct arena *saved = current_arena;
		current_arena = xs->arena;
		XML_ParserFree(xs->p);
		current_arena = saved;
		xs->p = NULL;
	}
	new_stream(xs);
	if (!make_parser(xs))
		abort(); /* out of memory, as in xcalloc() */
}

void xmlstream_set_max_stanza(struct xmlstream *xs, size_t max_stanza)
{
	xs->max_stanza = max_stanza;
	if (xs->arena != NULL)
		arena_set_cap(xs->arena, parser_cap(max_stanza));
}

bool xmlstream_idle(const struct xmlstream *xs)
{
	return xs->p != NULL && xs->depth == 1 && xs->mark == xs->fed && !xs->suspended &&
	       !xs->stopped && !failed(xs) && xs->replay != NULL;
}

void xmlstream_release(struct xmlstream *xs)
{
	if (!xmlstream_idle(xs))
		return;
	drop_parser(xs);
}

bool xmlstream_released(const struct xmlstream *xs)
{
	return xs->p == NULL;
}

size_t xmlstream_memory(const struct xmlstream *xs)
{
	return xs->arena != NULL ? arena_held(xs->arena) : 0;
}

/* A released stream's new parser, fed the stream's start tag with its handlers silent:
 * it then stands where the old one stood (depth 1, nothing pending, the same
 * namespaces in scope), and the byte counters start where that tag ends. */
static bool restore(struct xmlstream *xs, const char **condition_r, const char **text_r)
{
	if (!make_parser(xs)) {
		*condition_r = "resource-constraint";
		*text_r = "out of memory";
		return false;
	}
	size_t len = strlen(xs->replay);
	struct arena *saved = current_arena;
	current_arena = xs->arena;
	xs->depth = 0;
	xs->replaying = true;
	enum XML_Status st = XML_Parse(xs->p, xs->replay, (int)len, XML_FALSE);
	xs->replaying = false;
	current_arena = saved;
	if (st != XML_STATUS_OK || xs->depth != 1 || failed(xs)) {
		*condition_r = "internal-server-error";
		*text_r = "the stream parser could not be restored";
		return false;
	}
	xs->fed = xs->mark = (long long)len;
	return true;
}

int xmlstream_suspended(const struct xmlstream *xs)
{
	return xs->suspended;
}

void xmlstream_suspend(struct xmlstream *xs)
{
	if (xs->p != NULL && XML_StopParser(xs->p, XML_TRUE) == XML_STATUS_OK)
		xs->suspended = true;
}

void xmlstream_stop(struct xmlstream *xs)
{
	xs->stopped = true;
	if (xs->p != NULL)
		XML_StopParser(xs->p, XML_FALSE);
}

/* Expat defers reparsing an unfinished token until twice as many bytes are there (or
 * its buffer is nearly full): that bounds the cost of a large token sent in small pieces,
 * but it would hold back a stanza whose last piece is short, and make what is reported,
 * and so the stanza size cap, depend on how the input was cut and on the size of expat's
 * buffer (a rebuilt parser has a smaller one). So everything parseable is parsed at once
 * while at most REPARSE_NOW_MAX bytes are unreported (a reparse costs no more than that),
 * and before the cap is judged. */
#define REPARSE_NOW_MAX 4096

static enum XML_Status reparse_now(struct xmlstream *xs, enum XML_Status st)
{
#ifdef HAVE_XML_REPARSE_DEFERRAL
	long long pending = xs->fed - xs->mark;
	if (st != XML_STATUS_OK || failed(xs) || pending <= 0 ||
	    (pending > REPARSE_NOW_MAX && pending <= (long long)xs->max_stanza))
		return st;
	XML_SetReparseDeferralEnabled(xs->p, XML_FALSE);
	st = XML_Parse(xs->p, NULL, 0, XML_FALSE);
	XML_SetReparseDeferralEnabled(xs->p, XML_TRUE);
#else
	(void)xs;
#endif
	return st;
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
		} else if (e == XML_ERROR_NO_MEMORY && arena_refused(xs->arena)) {
			*condition_r = "policy-violation";
			*text_r = "the stream needs too much parser memory";
		} else if (e == XML_ERROR_NO_MEMORY) {
			*condition_r = "resource-constraint";
			*text_r = "out of memory";
		} else {
			*condition_r = "not-well-formed";
			*text_r = XML_ErrorString(e);
		}
		return XS_ERROR;
	}
	/* Expat holds an unfinished tag or text run without calling us: cap it too. */
	if (xs->fed - xs->mark > (long long)xs->max_stanza) {
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
	if (xs->p == NULL && !restore(xs, condition_r, text_r))
		return XS_ERROR;
	xs->fed += (long long)len;
	struct arena *saved = current_arena;
	current_arena = xs->arena;
	enum XML_Status st = XML_Parse(xs->p, data, (int)len, XML_FALSE);
	st = reparse_now(xs, st);
	current_arena = saved;
	return finish(xs, st, condition_r, text_r);
}

enum xmlstream_result xmlstream_resume(struct xmlstream *xs, const char **condition_r,
				       const char **text_r)
{
	xs->suspended = false;
	struct arena *saved = current_arena;
	current_arena = xs->arena;
	enum XML_Status st = XML_ResumeParser(xs->p);
	st = reparse_now(xs, st);
	current_arena = saved;
	return finish(xs, st, condition_r, text_r);
}
