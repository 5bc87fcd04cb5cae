/* The XMPP stream parser: expat with the restrictions of RFC 6120 §11 and hard limits.
 *
 * Bytes go in with xmlstream_feed(); out come the stream header, each complete top-level
 * element (a stanza, or a stream-level element such as <starttls/>), and the end of the
 * stream. Refused input (DTDs, comments, processing instructions, entities other than
 * the five predefined ones, an encoding other than UTF-8, malformed XML, limits exceeded)
 * ends the stream with the stream error condition to send. No network, no event loop:
 * the fuzz target drives it directly.
 *
 * Each parser's memory is capped (a multiple of max_stanza): a stream that needs more,
 * e.g. one that keeps sending new element or attribute names (expat keeps every name it
 * has seen), ends with policy-violation. */
#ifndef XMPP_XMLSTREAM_H
#define XMPP_XMLSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "xml.h"

struct xmlstream_limits {
	size_t max_stanza; /* bytes of one stanza, or of the stream header */
	unsigned max_depth; /* element nesting inside a stanza */
	unsigned max_attrs; /* attributes (and namespace declarations) of one element */
	size_t max_nodes;   /* elements and text runs of one stanza */
};

#define XMLSTREAM_DEFAULT_LIMITS {262144, 32, 64, 20000}

struct xmlstream_handlers {
	/* The stream header (attributes only). default_ns is the stream's default namespace
	 * ("" when none was declared). */
	void (*open)(void *ctx, const struct xnode *header, const char *default_ns);
	/* One complete top-level element; the handler owns it. */
	void (*element)(void *ctx, struct xnode *element);
	/* </stream:stream> */
	void (*close)(void *ctx);
};

enum xmlstream_result {
	XS_OK = 0,        /* all input consumed */
	XS_SUSPENDED = 1, /* a handler called xmlstream_suspend(); the rest is kept */
	XS_STOPPED = 2,   /* a handler called xmlstream_stop(); the rest is dropped */
	XS_ERROR = -1,    /* refused input: see *condition_r / *text_r */
};

struct xmlstream;

/* limits and handlers are the caller's and must outlive the stream. */
struct xmlstream *xmlstream_new(const struct xmlstream_limits *limits,
				const struct xmlstream_handlers *handlers, void *ctx);
void xmlstream_free(struct xmlstream *xs);

/* Change the stanza size cap (it holds across resets). */
void xmlstream_set_max_stanza(struct xmlstream *xs, size_t max_stanza);

/* Start a new stream (after TLS or SASL): a fresh parser; anything kept is dropped.
 * Never call from inside a handler. */
void xmlstream_reset(struct xmlstream *xs);

/* Parse len bytes. On XS_ERROR, *condition_r is an RFC 6120 stream error condition
 * (static) and *text_r a human-readable reason (static). */
enum xmlstream_result xmlstream_feed(struct xmlstream *xs, const char *data, size_t len,
				     const char **condition_r, const char **text_r);
/* Continue after XS_SUSPENDED with the input kept; same results as xmlstream_feed(). */
enum xmlstream_result xmlstream_resume(struct xmlstream *xs, const char **condition_r,
				       const char **text_r);
/* True between XS_SUSPENDED and the next resume or reset. */
int xmlstream_suspended(const struct xmlstream *xs);

/* From inside a handler: stop after this element, keeping the rest (suspend) or
 * dropping it (stop). */
void xmlstream_suspend(struct xmlstream *xs);
void xmlstream_stop(struct xmlstream *xs);

/* True when the parser could be freed without losing anything: inside the stream
 * between stanzas, every byte fed reported, not suspended, no error. */
bool xmlstream_idle(const struct xmlstream *xs);
/* Free the parser of an idle stream (no-op otherwise; never from inside a handler). The
 * next xmlstream_feed() builds a new one that behaves exactly as the old one would
 * have: the same namespaces in scope, limits and stanza byte counts. That feed may then
 * also fail with resource-constraint (no memory) or internal-server-error. */
void xmlstream_release(struct xmlstream *xs);
bool xmlstream_released(const struct xmlstream *xs);
/* Bytes of pages the parser holds (0 while released). */
size_t xmlstream_memory(const struct xmlstream *xs);

#endif
