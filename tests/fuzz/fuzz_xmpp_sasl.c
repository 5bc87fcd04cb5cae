/* Fuzz target: xmpp-core's SASL exchange (sasl.c) after a stream header over (pretended)
 * TLS: PLAIN's "authzid NUL authcid NUL token", OAUTHBEARER's GS2 header and key=value
 * pairs, the strict base64 both arrive in, the authzid/authcid-to-JID mapping, the
 * attempt cap, and the outcome of the token check. The server has a Redis client whose
 * socket does not exist, so every check ends without a network: a malformed token as
 * refused (not-authorized, or OAUTHBEARER's error challenge and the dummy response), a
 * well-formed one as temporary-auth-failure.
 *
 * The input is a list of SASL elements separated by 0xFF bytes (never part of UTF-8).
 * The first byte of each picks the element, the rest is its payload:
 *   0 <auth mechanism='PLAIN'>     base64 of the payload (the harness encodes)
 *   1 <auth mechanism='OAUTHBEARER'> base64 of the payload
 *   2 <response>                   base64 of the payload
 *   3 <abort/>
 *   4 <auth mechanism='PLAIN'>     the payload as the element's text (raw base64)
 *   5 <auth mechanism='OAUTHBEARER'> the payload as the element's text
 *   6 <auth mechanism='X-PAYLOAD'> (an unknown or differently spelled mechanism)
 *   7 <auth> without a mechanism
 * Bit 3 of the first element's selector byte addresses the stream to example.net. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/evp.h>

#include "config.h"
#include "log.h"
#include "server.h"
#include "util.h"
#include "xmpp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char config_text[] = "[redis]\nurl = unix:///nonexistent/samlgw-fuzz.sock\n"
				  "[domain example.org]\n[domain example.net]\n";

static struct event_base *base;
static struct server *srv;
static struct config *cfg;
static bool verbose; /* FUZZ_XMPP_VERBOSE=1: the server's answers go to stderr */

static void teardown(void)
{
	server_free(srv);
	event_base_free(base);
	config_free(cfg);
}

static void setup(void)
{
	if (srv != NULL)
		return;
	log_setup("fuzz", LOG_LEVEL_ERROR, 0);
	struct config_problems problems = {0};
	const char *error;
	if (config_parse("fuzz.conf", "/", config_text, strlen(config_text), PROG_TOKEN, &cfg,
			 &problems) < 0)
		abort();
	base = event_base_new();
	srv = server_new(base, cfg);
	verbose = getenv("FUZZ_XMPP_VERBOSE") != NULL;
	srv->redis = xredis_new(srv, &error);
	if (srv->redis == NULL)
		abort();
	atexit(teardown);
}

/* XML-escape the bytes of s into b (a raw payload may hold anything). */
static void add_escaped(struct evbuffer *b, const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '<')
			evbuffer_add(b, "&lt;", 4);
		else if (s[i] == '&')
			evbuffer_add(b, "&amp;", 5);
		else if (s[i] == '>')
			evbuffer_add(b, "&gt;", 4);
		else
			evbuffer_add(b, &s[i], 1);
	}
}

static void add_b64(struct evbuffer *b, const uint8_t *s, size_t n)
{
	if (n == 0) {
		evbuffer_add(b, "=", 1);
		return;
	}
	unsigned char *out = xcalloc(1, 4 * ((n + 2) / 3) + 1);
	int len = EVP_EncodeBlock(out, s, (int)n);
	evbuffer_add(b, out, (size_t)len);
	free(out);
}

/* One element for selector sel and payload p[0..n). */
static void add_element(struct evbuffer *b, unsigned sel, const uint8_t *p, size_t n)
{
	static const char ns[] = " xmlns='urn:ietf:params:xml:ns:xmpp-sasl'";
	switch (sel & 7) {
	case 0:
	case 1:
	case 4:
	case 5:
		evbuffer_add_printf(b, "<auth%s mechanism='%s'>", ns,
				    (sel & 1) ? "OAUTHBEARER" : "PLAIN");
		if (sel & 4)
			add_escaped(b, p, n);
		else
			add_b64(b, p, n);
		evbuffer_add_printf(b, "</auth>");
		break;
	case 2:
		evbuffer_add_printf(b, "<response%s>", ns);
		add_b64(b, p, n);
		evbuffer_add_printf(b, "</response>");
		break;
	case 3:
		evbuffer_add_printf(b, "<abort%s/>", ns);
		break;
	case 6:
		evbuffer_add_printf(b, "<auth%s mechanism='", ns);
		add_escaped(b, p, n > 40 ? 40 : n);
		evbuffer_add_printf(b, "'>=</auth>");
		break;
	default:
		evbuffer_add_printf(b, "<auth%s>", ns);
		add_b64(b, p, n);
		evbuffer_add_printf(b, "</auth>");
		break;
	}
}

static void drain(struct bufferevent *pair[2])
{
	struct evbuffer *out = bufferevent_get_input(pair[1]);
	if (verbose && evbuffer_get_length(out) > 0)
		fprintf(stderr, "%.*s\n", (int)evbuffer_get_length(out),
			(const char *)evbuffer_pullup(out, -1));
	for (int i = 0; i < 2; i++) {
		evbuffer_drain(bufferevent_get_output(pair[i]), (size_t)-1);
		evbuffer_drain(bufferevent_get_input(pair[i]), (size_t)-1);
	}
}

/* Run what is due now: the deferred answers of token checks. */
static void settle(void)
{
	for (int i = 0; i < 3; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	setup();
	/* Failures from earlier inputs must not slow this one down (AUTH_PENALTY_MS). */
	ratelimit_free(srv->rl);
	srv->rl = ratelimit_new(srv->auth_failures);

	struct bufferevent *pair[2];
	if (bufferevent_pair_new(base, 0, pair) < 0)
		abort();
	bufferevent_enable(pair[1], EV_READ); /* what the server writes moves over */
	struct conn *c = conn_new_bev(srv, pair[0], true);
	conn_ref(c);
	struct evbuffer *b = evbuffer_new();
	evbuffer_add_printf(b,
			    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
			    "xmlns:stream='http://etherx.jabber.org/streams' to='%s' "
			    "version='1.0'>",
			    size > 0 && (data[0] & 8) ? "example.net" : "example.org");
	size_t start = 0;
	while (start < size && !c->closed) {
		const uint8_t *end = memchr(data + start, 0xff, size - start);
		size_t stop = end != NULL ? (size_t)(end - data) : size;
		if (stop > start)
			add_element(b, data[start], data + start + 1, stop - start - 1);
		size_t len = evbuffer_get_length(b);
		conn_input(c, (const char *)evbuffer_pullup(b, -1), len);
		evbuffer_drain(b, len);
		settle();
		drain(pair);
		start = stop + 1;
	}
	evbuffer_free(b);
	conn_unref(c);
	while (srv->conns != NULL)
		conn_close_now(srv->conns);
	settle();
	drain(pair);
	bufferevent_free(pair[0]);
	bufferevent_free(pair[1]);
	return 0;
}
