/* xmpp-core's stream parser (xmlstream.c) with parsers released between stanzas: for
 * every way of cutting the input into chunks, a stream whose parser is freed whenever it
 * is idle reports exactly what a stream that keeps its parser reports (elements, errors,
 * the stanza size cap), also with its own prefixes and escaped namespace URIs; a
 * stream is idle only between stanzas with nothing pending; the parser's memory is
 * capped, and a legitimate stanza of the largest size stays well under the cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util.h"
#include "xml.h"
#include "xmlstream.h"

struct rec {
	char *log;
	size_t len;
};

static void add(struct rec *r, const char *s)
{
	size_t n = strlen(s);
	r->log = xrealloc(r->log, r->len + n + 2);
	memcpy(r->log + r->len, s, n);
	r->len += n;
	r->log[r->len++] = '\n';
	r->log[r->len] = '\0';
}

static void on_open(void *ctx, const struct xnode *header, const char *default_ns)
{
	struct rec *r = ctx;
	char *s = xasprintf("open {%s}%s default=%s", header->ns, header->name, default_ns);
	add(r, s);
	free(s);
	for (size_t i = 0; i < header->n_attrs; i++) {
		const struct xattr *a = &header->attrs[i];
		s = xasprintf(" attr {%s}%s=%s", a->ns != NULL ? a->ns : "", a->name, a->value);
		add(r, s);
		free(s);
	}
}

static void on_element(void *ctx, struct xnode *el)
{
	char *s = xml_to_string(el, NS_CLIENT);
	add(ctx, s);
	free(s);
	xnode_free(el);
}

static void on_close(void *ctx)
{
	add(ctx, "close");
}

static const struct xmlstream_handlers handlers = {on_open, on_element, on_close};

/* Feed input in chunks of `chunk` bytes; with release, free the parser whenever it is
 * idle. Returns the log of what was reported; *releases_r counts the releases. */
static char *run(const char *input, size_t len, size_t chunk, bool release,
		 const struct xmlstream_limits *limits, int *releases_r)
{
	struct rec r = {0};
	add(&r, "start");
	struct xmlstream *xs = xmlstream_new(limits, &handlers, &r);
	int releases = 0;
	for (size_t off = 0; off < len; off += chunk) {
		size_t n = len - off < chunk ? len - off : chunk;
		const char *cond = NULL, *text = NULL;
		enum xmlstream_result res = xmlstream_feed(xs, input + off, n, &cond, &text);
		if (res == XS_ERROR) {
			char *s = xasprintf("error %s: %s", cond, text);
			add(&r, s);
			free(s);
			break;
		}
		assert_int_equal(res, XS_OK);
		if (release && xmlstream_idle(xs)) {
			assert_true(xmlstream_memory(xs) > 0);
			xmlstream_release(xs);
			assert_true(xmlstream_released(xs));
			assert_false(xmlstream_idle(xs));
			assert_int_equal(xmlstream_memory(xs), 0);
			releases++;
		}
	}
	xmlstream_free(xs);
	if (releases_r != NULL)
		*releases_r = releases;
	return r.log;
}

/* Every chunk size from 1 to all of it: with and without releases, the same log. */
static int same_with_releases(const char *input, const struct xmlstream_limits *limits)
{
	size_t len = strlen(input);
	int most = 0;
	for (size_t chunk = 1; chunk <= len; chunk++) {
		int releases = 0;
		char *kept = run(input, len, chunk, false, limits, NULL);
		char *freed = run(input, len, chunk, true, limits, &releases);
		if (strcmp(kept, freed) != 0)
			fail_msg("chunk %zu: kept parser:\n%s\nreleased parser:\n%s", chunk, kept,
				 freed);
		if (releases > most)
			most = releases;
		free(kept);
		free(freed);
	}
	return most;
}

static const struct xmlstream_limits defaults = XMLSTREAM_DEFAULT_LIMITS;

#define HEADER                                                                           \
	"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                      \
	"xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0' " \
	"xml:lang='en'>"

static void test_same_events(void **state)
{
	(void)state;
	assert_true(same_with_releases(HEADER
				       "<presence/> <message to='a@example.org' type='chat'>"
				       "<body>hi &amp; bye</body></message>\n"
				       "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"
				       "</stream:stream>",
				       &defaults) >= 3);
	/* The stream's own prefixes, and namespace URIs that need escaping when the start
	 * tag is rebuilt: stanzas after a release still see them. */
	assert_true(same_with_releases(
			    "<s:stream xmlns:s='http://etherx.jabber.org/streams' "
			    "xmlns='jabber:client' xmlns:x='urn:x&amp;y&lt;&apos;z&#10;w&#9;\"' "
			    "version='1.0'><message to='a@b'><x:foo x:attr='1'/></message> "
			    "<x:bar/><iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>"
			    "</s:stream>",
			    &defaults) >= 3);
	/* No default namespace on the stream element. */
	assert_true(same_with_releases("<stream:stream xmlns:stream='http://etherx.jabber.org/"
				       "streams' version='1.0'><a/><b xmlns='jabber:client'/>"
				       "</stream:stream>",
				       &defaults) >= 2);
}

static void test_same_errors(void **state)
{
	(void)state;
	static const char *const after[] = {
		"<y:foo/>",                      /* unbound prefix */
		"</stream>",                     /* does not match the start tag */
		"<!-- c -->",                    /* restricted XML */
		"<?xml version='1.0'?>",         /* a declaration past the start */
		"<?pi x?>",                      /* restricted XML */
		"<a>&unknown;</a>",              /* entity */
		"<a xmlns:xml='urn:other'/>",    /* reserved prefix */
		"<a b='1' b='2'/>",              /* duplicate attribute */
		"<a xmlns:q='urn:q' q:b='1' xmlns:r='urn:q' r:b='2'/>", /* the same after expansion */
		"<a>\xff</a>",                   /* not UTF-8 */
		"</stream:stream><a/>",          /* content after the end */
	};
	for (size_t i = 0; i < ARRAY_SIZE(after); i++) {
		char *input = xasprintf("%s<presence/>%s", HEADER, after[i]);
		same_with_releases(input, &defaults);
		free(input);
	}
}

/* A stanza of exactly max_stanza bytes passes and one more fails, after a release as
 * without (the counters restart where the last event ended). */
static void test_same_size_cap(void **state)
{
	(void)state;
	struct xmlstream_limits lim = defaults;
	lim.max_stanza = 100;
	for (size_t size = 98; size <= 102; size++) {
		/* the message's tags, <message><body></body></message>, are 32 bytes */
		char body[128];
		memset(body, 'x', size - 32);
		body[size - 32] = '\0';
		char *input = xasprintf("<stream:stream xmlns='jabber:client' "
					"xmlns:stream='http://etherx.jabber.org/streams'>"
					"<presence/>   <message><body>%s</body></message>  <a/>",
					body);
		same_with_releases(input, &lim);
		char *log = run(input, strlen(input), 7, true, &lim, NULL);
		assert_true((strstr(log, "stanza too large") != NULL) == (size > 100));
		free(log);
		free(input);
	}
}

static void test_idle(void **state)
{
	(void)state;
	struct rec r = {0};
	struct xmlstream *xs = xmlstream_new(&defaults, &handlers, &r);
	const char *cond, *text;
	assert_false(xmlstream_idle(xs)); /* no stream yet */
	assert_int_equal(xmlstream_feed(xs, HEADER, strlen(HEADER), &cond, &text), XS_OK);
	assert_true(xmlstream_idle(xs));
	assert_int_equal(xmlstream_feed(xs, "<message><body>", 15, &cond, &text), XS_OK);
	assert_false(xmlstream_idle(xs)); /* inside a stanza */
	assert_int_equal(xmlstream_feed(xs, "x</body></message>", 18, &cond, &text), XS_OK);
	assert_true(xmlstream_idle(xs));
	assert_int_equal(xmlstream_feed(xs, "<presence", 9, &cond, &text), XS_OK);
	assert_false(xmlstream_idle(xs)); /* an unfinished tag */
	xmlstream_release(xs);             /* not idle: no-op */
	assert_false(xmlstream_released(xs));
	/* (enough bytes that expat's reparse deferral does not hold the tag back) */
	assert_int_equal(xmlstream_feed(xs, "/>            \r", 15, &cond, &text), XS_OK);
	assert_false(xmlstream_idle(xs)); /* expat holds the CR */
	assert_int_equal(xmlstream_feed(xs, "\n ", 2, &cond, &text), XS_OK);
	assert_true(xmlstream_idle(xs));
	xmlstream_release(xs);
	assert_true(xmlstream_released(xs));
	assert_int_equal(xmlstream_feed(xs, "</stream:stream>", 16, &cond, &text), XS_OK);
	assert_false(xmlstream_idle(xs)); /* the stream is over */
	assert_non_null(strstr(r.log, "close"));
	/* A new stream on the same object (after TLS or SASL) starts from nothing. */
	xmlstream_reset(xs);
	assert_false(xmlstream_idle(xs));
	assert_int_equal(xmlstream_feed(xs, "<s:stream xmlns:s='x'>", 22, &cond, &text), XS_OK);
	assert_true(xmlstream_idle(xs));
	xmlstream_release(xs);
	assert_int_equal(xmlstream_feed(xs, "</s:stream>", 11, &cond, &text), XS_OK);
	xmlstream_free(xs);
	free(r.log);
}

static char *big_stanza(const char *before, size_t fill, const char *after)
{
	char *x = xcalloc(fill + 1, 1);
	memset(x, 'x', fill);
	char *s = xasprintf("%s%s%s", before, x, after);
	free(x);
	return s;
}

/* Feed in READ_CHUNK pieces; returns the log; *peak_r: the most parser memory seen. */
static char *feed_all(const char *input, const struct xmlstream_limits *lim, size_t *peak_r)
{
	struct rec r = {0};
	struct xmlstream *xs = xmlstream_new(lim, &handlers, &r);
	size_t len = strlen(input), peak = 0;
	for (size_t off = 0; off < len; off += 4096) {
		const char *cond, *text;
		size_t n = len - off < 4096 ? len - off : 4096;
		if (xmlstream_feed(xs, input + off, n, &cond, &text) == XS_ERROR) {
			char *s = xasprintf("error %s: %s", cond, text);
			add(&r, s);
			free(s);
			break;
		}
		if (xmlstream_memory(xs) > peak)
			peak = xmlstream_memory(xs);
	}
	xmlstream_free(xs);
	*peak_r = peak;
	return r.log;
}

static void test_memory_cap(void **state)
{
	(void)state;
	const size_t max = defaults.max_stanza, cap = 8 * max + 256 * 1024;
	/* Legitimate stanzas of nearly the largest size: well under the cap. */
	static const char *const shapes[][2] = {
		{HEADER "<message><body>", "</body></message>"},
		{HEADER "<message id='", "'/>"},
		{HEADER "<message><x xmlns='urn:x' a='", "'/></message>"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(shapes); i++) {
		char *input = big_stanza(shapes[i][0], max - 200, shapes[i][1]);
		size_t peak;
		char *log = feed_all(input, &defaults, &peak);
		assert_null(strstr(log, "error"));
		assert_true(peak < cap / 2);
		free(log);
		free(input);
	}
	/* Many attributes of 4 KiB each. */
	size_t off = 0, room = max + 1024;
	char *many = xcalloc(room, 1);
	off += (size_t)snprintf(many, room, "%s<message", HEADER);
	for (int i = 0; i < 60; i++) {
		off += (size_t)snprintf(many + off, room - off, " a%d='", i);
		memset(many + off, 'v', 4000);
		off += 4000;
		off += (size_t)snprintf(many + off, room - off, "'");
	}
	snprintf(many + off, room - off, "/>");
	size_t peak;
	char *log = feed_all(many, &defaults, &peak);
	assert_null(strstr(log, "error"));
	assert_true(peak < cap / 2);
	free(log);
	free(many);

	/* A stream that keeps sending new element names (expat keeps each one) ends. */
	size_t flood_len = 16 << 20;
	char *flood = xcalloc(flood_len + 1, 1);
	off = (size_t)snprintf(flood, flood_len, "%s", HEADER);
	for (unsigned i = 0; off + 64 < flood_len; i++)
		off += (size_t)snprintf(flood + off, flood_len - off, "<message><n%u/></message>", i);
	log = feed_all(flood, &defaults, &peak);
	assert_non_null(strstr(log, "error policy-violation: the stream needs too much parser memory"));
	assert_true(peak <= cap);
	free(log);
	free(flood);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_same_events),   cmocka_unit_test(test_same_errors),
		cmocka_unit_test(test_same_size_cap), cmocka_unit_test(test_idle),
		cmocka_unit_test(test_memory_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
