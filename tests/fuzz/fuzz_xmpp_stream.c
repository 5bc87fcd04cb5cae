/* Fuzz target: xmpp-core's stream parser and stanza handling without a network.
 *
 * Byte 0 picks the connection's state: bit 0 pretends TLS is in place, bit 1 pretends
 * SASL succeeded for alice@example.org, bit 2 adds a second bound, available user
 * (bob@example.org/r) for routing to reach, bit 3 frees the parser after every chunk
 * that leaves it idle (as the server's tick does for an idle stream), so that the next
 * chunk runs on a rebuilt one. Without bits 4 and 5 the server has no storage at all
 * and every path that needs it takes its "no store" branch. Bit 4 gives the server a
 * Redis client whose socket does not exist, so every storage call is made and fails
 * asynchronously (binding then fails too, as the roster cannot load). Bit 5 does the
 * same once alice's session is bound (bound without storage): roster sets and removals,
 * subscription steps and offline storage are then parsed and sent, and their failure is
 * answered. Byte 1 sets the chunk size the rest is fed in. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "server.h"
#include "util.h"
#include "xmpp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char config_text[] = "[redis]\nurl = unix:///nonexistent/samlgw-fuzz.sock\n"
				  "[domain example.org]\n[domain example.net]\n";
static const char bob_script[] =
	"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
	"xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>"
	"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
	"<resource>r</resource></bind></iq><presence/>";

static struct event_base *base;
static struct server *srv;
static struct config *cfg;
static struct xredis *dead_redis; /* a client of a Redis that is not there (bit 4) */

static void setup(void)
{
	if (srv != NULL)
		return;
	log_setup("fuzz", LOG_LEVEL_ERROR, 0);
	struct config_problems problems = {0};
	if (config_parse("fuzz.conf", "/", config_text, strlen(config_text), PROG_TOKEN, &cfg,
			 &problems) < 0)
		abort();
	base = event_base_new();
	srv = server_new(base, cfg);
	const char *error;
	dead_redis = xredis_new(srv, &error);
	if (dead_redis == NULL)
		abort();
}

struct pair {
	struct bufferevent *bev[2];
};

static struct conn *test_conn(struct pair *p, bool tls, const char *user)
{
	if (bufferevent_pair_new(base, 0, p->bev) < 0)
		abort();
	/* The client end reads, so what the server writes moves over and is drained
	 * (a pair's output cannot be drained directly): the output never backs up and
	 * reading never pauses for it. */
	bufferevent_enable(p->bev[1], EV_READ);
	struct conn *c = conn_new_bev(srv, p->bev[0], tls);
	if (user != NULL) {
		c->authed = true;
		c->bare = xstrdup(user);
		c->domain = &srv->domains[0];
		memset(c->token_hash, 'a', TOKEN_HASH_HEX_LEN);
	}
	return c;
}

static void drain(struct pair *p)
{
	for (int i = 0; i < 2; i++) {
		evbuffer_drain(bufferevent_get_output(p->bev[i]), (size_t)-1);
		evbuffer_drain(bufferevent_get_input(p->bev[i]), (size_t)-1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > 1024 * 1024)
		return 0;
	setup();
	unsigned mode = data[0];
	size_t chunk = 1 + (size_t)data[1] * 17;
	data += 2;
	size -= 2;
	srv->redis = (mode & 16) ? dead_redis : NULL;
	bool dead_after_bind = (mode & 48) == 32;

	struct pair bob_pair = {{NULL, NULL}}, pair;
	if (mode & 4) {
		struct conn *bob = test_conn(&bob_pair, true, "bob@example.org");
		conn_input(bob, bob_script, strlen(bob_script));
		if (mode & 16)
			event_base_loop(base, EVLOOP_NONBLOCK);
		drain(&bob_pair);
	}
	struct conn *c = test_conn(&pair, (mode & 1) != 0, (mode & 2) ? "alice@example.org" : NULL);
	conn_ref(c);
	for (size_t off = 0; off < size && !c->closed; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		conn_input(c, (const char *)data + off, n);
		if ((mode & 8) && !c->closed && xmlstream_idle(c->xs))
			xmlstream_release(c->xs);
		if (dead_after_bind && srv->redis == NULL && c->session != NULL)
			srv->redis = dead_redis;
		if (srv->redis != NULL)
			event_base_loop(base, EVLOOP_NONBLOCK);
		if (mode & 4)
			drain(&bob_pair);
		drain(&pair);
	}
	conn_unref(c);
	while (srv->conns != NULL)
		conn_close_now(srv->conns);
	/* Answers of failed storage calls may start others (bit 4). */
	for (int i = 0; i < 3; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	drain(&pair);
	bufferevent_free(pair.bev[0]);
	bufferevent_free(pair.bev[1]);
	if (mode & 4) {
		drain(&bob_pair);
		bufferevent_free(bob_pair.bev[0]);
		bufferevent_free(bob_pair.bev[1]);
	}
	return 0;
}
