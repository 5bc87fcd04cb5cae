/* Exclusive XML Canonicalization 1.0 without comments of one subtree, the form almost
 * every SAML signature uses, written straight to a sink without libxml2's per-node lists
 * and copies. Its output is byte for byte what libxml2's xmlC14NExecute gives for the
 * same node set (tests/fuzz/fuzz_c14n.c compares the two); whatever it does not handle
 * exactly as libxml2 does, it declines before writing anything, and the caller then uses
 * xmlC14NExecute. */
#ifndef SAMLGW_C14N_H
#define SAMLGW_C14N_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>

/* Receives the canonical form in pieces; returns 0, or -1 to stop. */
typedef int c14n_sink(void *ctx, const unsigned char *data, size_t len);

enum c14n_result {
	C14N_DONE = 0,     /* written in full */
	C14N_DECLINED = 1, /* nothing written: use xmlC14NExecute */
	C14N_FAILED = -1,  /* the sink failed */
};

/* The node set XML Signature canonicalises, for libxml2's xmlC14NExecute: pass
 * c14n_node_visible as its is-visible callback and a struct c14n_node_set as its data. The
 * subtree under top without the subtree under minus (the enveloped signature; NULL: none),
 * comments only when asked for; a namespace node counts by the element it is rendered on,
 * as libxml2 asks about it. */
struct c14n_node_set {
	const xmlNode *top, *minus;
	bool comments;
};
int c14n_node_visible(void *set, xmlNodePtr node, xmlNodePtr parent);

/* The subtree under top without the subtree under minus (NULL: none) and without
 * comments, exclusive C14N, no InclusiveNamespaces. */
enum c14n_result c14n_exclusive(xmlNode *top, const xmlNode *minus, c14n_sink *sink,
				void *ctx);

#endif
