/* xmpp-core's objects without a network or Redis: a revocation that arrives while a
 * login's token check is in flight marks that login so its completion refuses it (the
 * check's answer and the revocation come on different Redis connections, so the
 * revocation may come first), and sessions that logged in with the token end; the text
 * of an element (SASL credentials) is wiped, also the pieces merged while parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "server.h"
#include "util.h"
#include "xmpp.h"

static const char config_text[] = "[domain example.org]\n";

struct fixture {
	struct config *cfg;
	struct event_base *base;
	struct server *srv;
	struct bufferevent *pairs[3][2];
};

static struct conn *make_conn(struct fixture *f, int i, char hash_digit)
{
	assert_int_equal(bufferevent_pair_new(f->base, 0, f->pairs[i]), 0);
	struct conn *c = conn_new_bev(f->srv, f->pairs[i][0], true);
	memset(c->token_hash, hash_digit, TOKEN_HASH_HEX_LEN);
	c->domain = &f->srv->domains[0];
	return c;
}

static void test_revoked_while_checking(void **state)
{
	(void)state;
	struct fixture f = {0};
	struct config_problems problems = {0};
	log_setup("test", LOG_LEVEL_ERROR, 0);
	assert_int_equal(config_parse("t.conf", "/", config_text, strlen(config_text), PROG_TOKEN,
				      &f.cfg, &problems),
			 0);
	f.base = event_base_new();
	f.srv = server_new(f.base, f.cfg);

	struct conn *pending = make_conn(&f, 0, 'a'); /* checking token a */
	pending->auth_pending = true;
	struct conn *other = make_conn(&f, 1, 'b'); /* checking token b */
	other->auth_pending = true;
	struct conn *authed = make_conn(&f, 2, 'a'); /* logged in with token a */
	authed->authed = true;
	authed->bare = xstrdup("alice@example.org");
	conn_ref(pending);
	conn_ref(other);
	conn_ref(authed);

	char hash[TOKEN_HASH_HEX_LEN + 1];
	memset(hash, 'a', TOKEN_HASH_HEX_LEN);
	hash[TOKEN_HASH_HEX_LEN] = '\0';
	session_revoked(f.srv, hash);
	assert_true(pending->auth_revoked);
	assert_false(pending->closing);
	assert_false(other->auth_revoked);
	assert_true(authed->closing);

	conn_unref(pending);
	conn_unref(other);
	conn_unref(authed);
	while (f.srv->conns != NULL)
		conn_close_now(f.srv->conns);
	for (int i = 0; i < 3; i++) {
		bufferevent_free(f.pairs[i][0]);
		bufferevent_free(f.pairs[i][1]);
	}
	server_free(f.srv);
	event_base_free(f.base);
	config_free(f.cfg);
}

static void test_wipe_text(void **state)
{
	(void)state;
	struct xnode *auth = xnode_new("urn:ietf:params:xml:ns:xmpp-sasl", "auth");
	xnode_add_text(auth, "c2VjcmV0", 8);
	xnode_add_text(auth, "dG9rZW4=", 8); /* merged into one text node */
	assert_int_equal(auth->n_children, 1);
	struct xnode *t = auth->children[0];
	assert_int_equal(t->text_len, 16);
	assert_memory_equal(t->text, "c2VjcmV0dG9rZW4=", 16);
	xnode_wipe_text(auth);
	static const char zeros[16];
	assert_memory_equal(t->text, zeros, 16);
	xnode_free(auth);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_revoked_while_checking),
		cmocka_unit_test(test_wipe_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
