/* Fuzz target: samlgw's exclusive C14N (samlgw/c14n.c) against libxml2's xmlC14NExecute.
 * The input is parsed as samlgw parses messages (xml_parse_safe); then, for the document
 * element and every element carrying an ID or Id attribute (at most 16), with and without
 * its first element child taken out (as an enveloped signature is), both canonicalise the
 * same node set. Whenever c14n_exclusive does not decline, its output must be byte for
 * byte libxml2's; any difference aborts. FUZZ_C14N_VERBOSE=1 prints what was compared. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/c14n.h>
#include <libxml/parser.h>

#include "c14n.h"
#include "xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOPS_MAX 16

struct buf {
	unsigned char *p;
	size_t n, cap;
};

static int buf_sink(void *ctx, const unsigned char *data, size_t len)
{
	struct buf *b = ctx;
	if (b->n + len > b->cap) {
		b->cap = (b->n + len) * 2;
		b->p = realloc(b->p, b->cap);
		if (b->p == NULL)
			abort();
	}
	memcpy(b->p + b->n, data, len);
	b->n += len;
	return 0;
}

static bool verbose;

static void compare(xmlDoc *doc, xmlNode *top, xmlNode *minus)
{
	struct buf mine = {0};
	enum c14n_result r = c14n_exclusive(top, minus, buf_sink, &mine);
	if (r == C14N_FAILED)
		abort(); /* the sink never fails */
	if (r == C14N_DECLINED) {
		if (mine.n != 0)
			abort(); /* declining writes nothing */
		if (verbose)
			fprintf(stderr, "declined <%s>\n", (const char *)top->name);
		free(mine.p);
		return;
	}
	struct c14n_node_set set = {top, minus, false};
	xmlChar *ref = NULL;
	xmlOutputBuffer *out = xmlAllocOutputBuffer(NULL);
	int n = out == NULL ? -1
			    : xmlC14NExecute(doc, c14n_node_visible, &set, XML_C14N_EXCLUSIVE_1_0, NULL, 0, out);
	/* libxml2 may refuse what c14n_exclusive rendered only when out of memory. */
	if (n < 0)
		abort();
	size_t ref_len = xmlOutputBufferGetSize(out);
	ref = (xmlChar *)xmlOutputBufferGetContent(out);
	if (ref_len != mine.n || (ref_len > 0 && memcmp(ref, mine.p, ref_len) != 0)) {
		fprintf(stderr, "c14n differs for <%s>:\nlibxml2: %.*s\nsamlgw:  %.*s\n",
			(const char *)top->name, (int)ref_len, (const char *)ref, (int)mine.n,
			(const char *)mine.p);
		abort();
	}
	if (verbose)
		fprintf(stderr, "same <%s> (%zu bytes)\n", (const char *)top->name, mine.n);
	xmlOutputBufferClose(out);
	free(mine.p);
}

static void collect(xmlNode *n, xmlNode **tops, size_t *count)
{
	for (; n != NULL && *count < TOPS_MAX; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (xmlHasProp(n, (const xmlChar *)"ID") != NULL ||
		    xmlHasProp(n, (const xmlChar *)"Id") != NULL)
			tops[(*count)++] = n;
		collect(n->children, tops, count);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	if (!init) {
		xmlInitParser();
		verbose = getenv("FUZZ_C14N_VERBOSE") != NULL;
		init = true;
	}
	const char *error;
	xmlDoc *doc = xml_parse_safe((const char *)data, size, &error);
	if (doc == NULL)
		return 0;
	xmlNode *tops[TOPS_MAX + 1];
	size_t count = 0;
	tops[count++] = xmlDocGetRootElement(doc);
	collect(tops[0]->children, tops, &count);
	for (size_t i = 0; i < count; i++) {
		compare(doc, tops[i], NULL);
		xmlNode *child = tops[i]->children;
		while (child != NULL && child->type != XML_ELEMENT_NODE)
			child = child->next;
		if (child != NULL)
			compare(doc, tops[i], child);
	}
	xmlFreeDoc(doc);
	return 0;
}
