/* Unit tests of the SASL plugin's parsers: OAUTHBEARER and XOAUTH2 client messages, the
 * error challenges, the saslauthd request format, user name mapping and the plugin's
 * options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authd_lines.h"
#include "oauth_parse.h"
#include "plugin_settings.h"
#include "saslauthd_proto.h"
#include "user_map.h"
#include "util.h"

#define TOK "samlgw_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ123456"

static enum oauth_parse_result ob(const char *data, size_t len, struct oauth_message *m)
{
	const char *error = NULL;
	enum oauth_parse_result r = oauthbearer_parse(data, len, m, &error);
	if (r == OAUTH_MALFORMED)
		assert_non_null(error);
	return r;
}

#define OB(lit, m) ob(lit, sizeof(lit) - 1, m)

static void test_oauthbearer_full(void **state)
{
	struct oauth_message m;
	assert_int_equal(OB("n,a=alice@example.org,\x01host=imap.example.org\x01port=143\x01"
			    "auth=Bearer " TOK "\x01\x01", &m),
			 OAUTH_PARSED);
	assert_string_equal(m.user, "alice@example.org");
	assert_string_equal(m.host, "imap.example.org");
	assert_string_equal(m.token, TOK);
	assert_int_equal(m.token_len, strlen(TOK));
	oauth_message_clear(&m);
	assert_null(m.buf);
}

static void test_oauthbearer_minimal_and_case(void **state)
{
	struct oauth_message m;
	/* No authzid, y flag, scheme in any case, several spaces. */
	assert_int_equal(OB("y,,\x01" "auth=bEaReR   " TOK "\x01\x01", &m), OAUTH_PARSED);
	assert_null(m.user);
	assert_null(m.host);
	assert_string_equal(m.token, TOK);
	oauth_message_clear(&m);
}

static void test_oauthbearer_escapes(void **state)
{
	struct oauth_message m;
	assert_int_equal(OB("n,a=a=2Cb=3Dc@x.org,\x01" "auth=Bearer t\x01\x01", &m), OAUTH_PARSED);
	assert_string_equal(m.user, "a,b=c@x.org");
	oauth_message_clear(&m);
	assert_int_equal(OB("n,a=a=2Xb,\x01" "auth=Bearer t\x01\x01", &m), OAUTH_MALFORMED);
	assert_int_equal(OB("n,a=a=,\x01" "auth=Bearer t\x01\x01", &m), OAUTH_MALFORMED);
	assert_int_equal(OB("n,a=,\x01" "auth=Bearer t\x01\x01", &m), OAUTH_MALFORMED);
}

static void test_oauthbearer_rejects(void **state)
{
	struct oauth_message m;
	/* Channel binding is refused. */
	assert_int_equal(OB("p=tls-unique,,\x01" "auth=Bearer t\x01\x01", &m), OAUTH_MALFORMED);
	/* Broken gs2 headers, separators and keys. */
	assert_int_equal(OB("x,,\x01" "auth=Bearer t\x01\x01", &m), OAUTH_MALFORMED);
	assert_int_equal(OB("n,,auth=Bearer t\x01\x01", &m), OAUTH_MALFORMED);
	assert_int_equal(OB("n,,\x01" "auth=Bearer t\x01", &m), OAUTH_MALFORMED);
	assert_int_equal(OB("n,,\x01" "auth=Bearer t\x01\x01x", &m), OAUTH_MALFORMED);
	assert_int_equal(OB("n,,\x01" "auth=Bearer t\x01\x01\x01", &m), OAUTH_MALFORMED);
	assert_int_equal(OB("n,,\x01" "au7h=x\x01" "auth=Bearer t\x01\x01", &m), OAUTH_MALFORMED);
	assert_int_equal(OB("n,,\x01" "=x\x01" "auth=Bearer t\x01\x01", &m), OAUTH_MALFORMED);
	assert_int_equal(OB("n,,\x01\x01", &m), OAUTH_MALFORMED);
	assert_int_equal(OB("n,,\x01" "auth=Bearer t\x01" "auth=Bearer t\x01\x01", &m),
			 OAUTH_MALFORMED);
	assert_int_equal(OB("n,,\x01" "auth=Basic dXNlcjpwYXNz\x01\x01", &m), OAUTH_MALFORMED);
	assert_int_equal(OB("n,,\x01" "auth=Bearer\x01\x01", &m), OAUTH_MALFORMED);
	assert_int_equal(OB("n,,\x01" "auth=Bearer \x01\x01", &m), OAUTH_MALFORMED);
	assert_int_equal(OB("n,,\x01" "auth=Bearer a b\x01\x01", &m), OAUTH_MALFORMED);
	assert_int_equal(OB("n,,\x01" "auth=Bearer a\x02" "b\x01\x01", &m), OAUTH_MALFORMED);
	/* A NUL anywhere. */
	assert_int_equal(ob("n,,\x01" "auth=Bearer a\0b\x01\x01", 19, &m), OAUTH_MALFORMED);
	assert_int_equal(OB("", &m), OAUTH_MALFORMED);
	/* Over the cap. */
	size_t big = OAUTH_MESSAGE_MAX + 1;
	char *huge = malloc(big);
	memset(huge, 'a', big);
	memcpy(huge, "n,,\x01" "x=", 6);
	huge[big - 2] = '\x01';
	huge[big - 1] = '\x01';
	assert_int_equal(ob(huge, big, &m), OAUTH_MALFORMED);
	free(huge);
}

static void test_oauthbearer_error_ack(void **state)
{
	struct oauth_message m;
	assert_int_equal(OB("\x01", &m), OAUTH_ERROR_ACK);
}

static void test_xoauth2(void **state)
{
	struct oauth_message m;
	const char *error;
	static const char msg[] = "user=alice@example.org\x01" "auth=Bearer " TOK "\x01\x01";
	assert_int_equal(xoauth2_parse(msg, sizeof(msg) - 1, &m, &error), OAUTH_PARSED);
	assert_string_equal(m.user, "alice@example.org");
	assert_string_equal(m.token, TOK);
	oauth_message_clear(&m);
	assert_int_equal(xoauth2_parse("", 0, &m, &error), OAUTH_ERROR_ACK);
	static const char nouser[] = "auth=Bearer " TOK "\x01\x01";
	assert_int_equal(xoauth2_parse(nouser, sizeof(nouser) - 1, &m, &error), OAUTH_MALFORMED);
	static const char empty_user[] = "user=\x01" "auth=Bearer " TOK "\x01\x01";
	assert_int_equal(xoauth2_parse(empty_user, sizeof(empty_user) - 1, &m, &error),
			 OAUTH_MALFORMED);
	static const char twice[] = "user=a@b.c\x01user=a@b.c\x01" "auth=Bearer t\x01\x01";
	assert_int_equal(xoauth2_parse(twice, sizeof(twice) - 1, &m, &error), OAUTH_MALFORMED);
	static const char noend[] = "user=a@b.c\x01" "auth=Bearer t\x01";
	assert_int_equal(xoauth2_parse(noend, sizeof(noend) - 1, &m, &error), OAUTH_MALFORMED);
}

static void test_error_challenge(void **state)
{
	char out[OAUTH_CHALLENGE_MAX];
	size_t n = oauth_error_challenge(OAUTH_MECH_OAUTHBEARER, "invalid_token", "imap", out);
	assert_string_equal(out,
			    "{\"status\":\"invalid_token\",\"schemes\":\"bearer\",\"scope\":\"imap\"}");
	assert_int_equal(n, strlen(out));
	oauth_error_challenge(OAUTH_MECH_XOAUTH2, "invalid_token", "smtp", out);
	assert_string_equal(out, "{\"status\":\"401\",\"schemes\":\"bearer\",\"scope\":\"smtp\"}");
}

/* Builds a saslauthd request from fields. */
static size_t build(uint8_t *buf, int n, const char **fields)
{
	size_t len = 0;
	for (int i = 0; i < n; i++) {
		size_t l = strlen(fields[i]);
		buf[len++] = (uint8_t)(l >> 8);
		buf[len++] = (uint8_t)l;
		memcpy(buf + len, fields[i], l);
		len += l;
	}
	return len;
}

static void test_saslauthd_request(void **state)
{
	uint8_t buf[SASLAUTHD_REQUEST_MAX + 16];
	struct saslauthd_request req;
	const char *error;
	const char *four[] = {"alice", TOK, "imap", "example.org"};
	size_t len = build(buf, 4, four);
	/* Every prefix needs more; the whole is complete. */
	for (size_t i = 0; i < len; i++)
		assert_int_equal(saslauthd_request_parse(buf, i, &req, &error), SASLAUTHD_NEED_MORE);
	assert_int_equal(saslauthd_request_parse(buf, len, &req, &error), SASLAUTHD_COMPLETE);
	assert_string_equal(req.login, "alice");
	assert_string_equal(req.password, TOK);
	assert_string_equal(req.service, "imap");
	assert_string_equal(req.realm, "example.org");
	assert_string_equal(req.client_addr, "");
	saslauthd_request_clear(&req);

	const char *five[] = {"alice", TOK, "imap", "", "127.0.0.1;143"};
	len = build(buf, 5, five);
	assert_int_equal(saslauthd_request_parse(buf, len - 1, &req, &error), SASLAUTHD_NEED_MORE);
	assert_int_equal(saslauthd_request_parse(buf, len, &req, &error), SASLAUTHD_COMPLETE);
	assert_string_equal(req.realm, "");
	assert_string_equal(req.client_addr, "127.0.0.1;143");

	buf[len] = 0;
	assert_int_equal(saslauthd_request_parse(buf, len + 1, &req, &error), SASLAUTHD_BAD);

	/* Too long, NUL inside. */
	buf[0] = 0x04;
	buf[1] = 0x01;
	assert_int_equal(saslauthd_request_parse(buf, 2, &req, &error), SASLAUTHD_BAD);
	const char *nul[] = {"al", TOK, "imap", ""};
	len = build(buf, 4, nul);
	buf[3] = '\0';
	assert_int_equal(saslauthd_request_parse(buf, len, &req, &error), SASLAUTHD_BAD);
}

static void test_saslauthd_response(void **state)
{
	uint8_t out[SASLAUTHD_RESPONSE_MAX];
	size_t n = saslauthd_response(1, NULL, out);
	assert_int_equal(n, 4);
	assert_memory_equal(out, "\0\x02OK", 4);
	n = saslauthd_response(0, "authentication failed", out);
	assert_int_equal(n, 2 + strlen("NO authentication failed"));
	assert_memory_equal(out + 2, "NO authentication failed", n - 2);
	char longer[600];
	memset(longer, 'x', sizeof(longer) - 1);
	longer[sizeof(longer) - 1] = '\0';
	n = saslauthd_response(0, longer, out);
	assert_true(n <= SASLAUTHD_RESPONSE_MAX);
	assert_int_equal(((size_t)out[0] << 8 | out[1]), n - 2);
}

static void test_user_map(void **state)
{
	char jid[USER_MAP_BUF], name[USER_MAP_BUF];
	const char *error;
	struct user_map jidmode = {USER_MODE_JID, NULL, false};
	assert_int_equal(user_map_apply(&jidmode, "Alice@Example.ORG", 17, jid, name, &error), 0);
	assert_string_equal(jid, "alice@example.org");
	assert_string_equal(name, "alice@example.org");
	assert_int_equal(user_map_apply(&jidmode, "alice", 5, jid, name, &error), -1);
	assert_null(user_map_required_domain(&jidmode));

	/* A domain that only completes names (samlgw-authd's --domain in jid mode). */
	struct user_map completed = {USER_MODE_JID, "example.org", false};
	assert_int_equal(user_map_check(&completed, &error), 0);
	assert_int_equal(user_map_apply(&completed, "alice", 5, jid, name, &error), 0);
	assert_string_equal(jid, "alice@example.org");
	assert_string_equal(name, "alice@example.org");
	assert_int_equal(user_map_apply(&completed, "bob@other.org", 13, jid, name, &error), 0);
	assert_string_equal(jid, "bob@other.org");
	assert_null(user_map_required_domain(&completed));

	/* A domain that also restricts (the plugin's samlgw_domain in jid mode). */
	struct user_map restricted = {USER_MODE_JID, "example.org", true};
	assert_int_equal(user_map_check(&restricted, &error), 0);
	assert_string_equal(user_map_required_domain(&restricted), "example.org");
	assert_int_equal(user_map_apply(&restricted, "alice", 5, jid, name, &error), 0);
	assert_string_equal(name, "alice@example.org");
	assert_int_equal(user_map_apply(&restricted, "Alice@Example.org.", 18, jid, name, &error),
			 0);
	assert_string_equal(jid, "alice@example.org");
	strcpy(jid, "untouched");
	assert_int_equal(user_map_apply(&restricted, "bob@other.org", 13, jid, name, &error), -1);
	assert_string_equal(error, "the user belongs to another domain than the configured one");
	assert_string_equal(jid, "untouched");
	/* A subdomain or a suffix is another domain. */
	assert_int_equal(user_map_apply(&restricted, "bob@sub.example.org", 19, jid, name, &error),
			 -1);
	assert_int_equal(user_map_apply(&restricted, "bob@xexample.org", 16, jid, name, &error),
			 -1);
	struct user_map restricted_nodomain = {USER_MODE_JID, NULL, true};
	assert_int_equal(user_map_check(&restricted_nodomain, &error), -1);

	struct user_map local = {USER_MODE_LOCALPART, "example.org", false};
	assert_string_equal(user_map_required_domain(&local), "example.org");
	assert_int_equal(user_map_apply(&local, "alice", 5, jid, name, &error), 0);
	assert_string_equal(jid, "alice@example.org");
	assert_string_equal(name, "alice");
	assert_int_equal(user_map_apply(&local, "alice@example.org", 17, jid, name, &error), 0);
	assert_string_equal(name, "alice");
	/* Another domain must not become the local user. */
	assert_int_equal(user_map_apply(&local, "alice@evil.org", 14, jid, name, &error), -1);
	assert_int_equal(user_map_apply(&local, "a/b", 3, jid, name, &error), -1);
	assert_int_equal(user_map_apply(&local, "", 0, jid, name, &error), -1);
	assert_int_equal(user_map_apply(&local, "a\0b", 3, jid, name, &error), -1);

	/* The longest names fit the buffers; one byte more is refused. */
	static char longest[JID_BARE_MAX + 2];
	memset(longest, 'a', JID_LOCAL_MAX);
	longest[JID_LOCAL_MAX] = '@';
	memset(longest + JID_LOCAL_MAX + 1, 'b', 63);
	for (size_t i = 0; i < 3; i++) {
		longest[JID_LOCAL_MAX + 1 + 63 + i * 64] = '.';
		memset(longest + JID_LOCAL_MAX + 1 + 64 + i * 64, 'c', 63);
	}
	longest[JID_LOCAL_MAX + 1 + 253] = '\0';
	assert_int_equal(strlen(longest), JID_BARE_MAX);
	assert_int_equal(user_map_apply(&jidmode, longest, JID_BARE_MAX, jid, name, &error), 0);
	assert_string_equal(jid, longest);
	assert_int_equal(user_map_apply(&jidmode, longest, JID_BARE_MAX + 1, jid, name, &error), -1);
	/* Completing a long localpart with the domain must not overflow either. */
	longest[JID_LOCAL_MAX + 1] = '\0';
	assert_int_equal(user_map_apply(&completed, longest, JID_LOCAL_MAX + 1, jid, name, &error),
			 -1);

	struct user_map bad = {USER_MODE_LOCALPART, NULL, false};
	assert_int_equal(user_map_check(&bad, &error), -1);
	struct user_map bad_domain = {USER_MODE_JID, "Not A Domain", false};
	assert_int_equal(user_map_check(&bad_domain, &error), -1);

	enum user_mode mode;
	assert_true(user_mode_parse("localpart", &mode));
	assert_int_equal(mode, USER_MODE_LOCALPART);
	assert_false(user_mode_parse("JID", &mode));
}

/* user_map_normalize must agree with common/jid.c's jid_bare_normalize on every input. */
static void test_user_map_normalize_agrees(void **state)
{
	static const char *const cases[] = {
		"alice@example.org", "Alice@EXAMPLE.org", "alice@example.org.", "alice@example.org..",
		"a@b", "a@b.", "@example.org", "alice@", "alice", "alice@exa mple.org",
		"al ice@example.org", "alice@example.org/res", "a@b@c", "ä@example.org",
		"\xff@example.org", "alice@-x.org", "alice@x-.org", "alice@xn--bcher-kva.example",
		"a\"b@example.org", "a:b@example.org", "alice@EXAMPLE.ORG.", "alice@.", ".@a",
		"alice@a..b", "ALICE@A.B.C.D.E", "x@1.2.3.4", "x@[::1]", "x@example.org\x7f",
		"x\x01@example.org", "",
	};
	char out[USER_MAP_BUF];
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char *ref = NULL;
		const char *e1 = NULL, *e2 = NULL;
		int r1 = jid_bare_normalize(cases[i], &ref, &e1);
		int r2 = user_map_normalize(cases[i], strlen(cases[i]), out, &e2);
		if (r1 != r2)
			fail_msg("'%s': jid_bare_normalize %d, user_map_normalize %d", cases[i], r1, r2);
		if (r1 == 0)
			assert_string_equal(out, ref);
		else
			assert_string_equal(e1, e2);
		free(ref);
	}
	/* Generated inputs: every mix of a few interesting characters, up to 5 long. */
	static const char alphabet[] = "aA@./-. \xc3";
	const size_t k = sizeof(alphabet) - 1;
	char text[8];
	for (size_t len = 1; len <= 5; len++) {
		size_t total = 1;
		for (size_t i = 0; i < len; i++)
			total *= k;
		for (size_t n = 0; n < total; n++) {
			size_t v = n;
			for (size_t i = 0; i < len; i++, v /= k)
				text[i] = alphabet[v % k];
			text[len] = '\0';
			char *ref = NULL;
			const char *e1 = NULL, *e2 = NULL;
			int r1 = jid_bare_normalize(text, &ref, &e1);
			int r2 = user_map_normalize(text, len, out, &e2);
			if (r1 != r2 || (r1 == 0 && strcmp(out, ref) != 0))
				fail_msg("'%s' normalised differently", text);
			free(ref);
		}
	}
}

/* Options from a NULL-terminated array of name, value pairs. */
static const char *opts_get(void *ctx, const char *name)
{
	const char *const *kv = ctx;
	for (; kv[0] != NULL; kv += 2) {
		if (strcmp(kv[0], name) == 0)
			return kv[1];
	}
	return NULL;
}

static enum plugin_settings_result load(const char *const *kv, struct plugin_settings *s)
{
	char *error = NULL;
	enum plugin_settings_result r = plugin_settings_load(opts_get, (void *)kv, s, &error);
	if (r == PLUGIN_BROKEN)
		assert_non_null(error);
	else
		assert_null(error);
	free(error);
	return r;
}

static void test_plugin_settings(void **state)
{
	struct plugin_settings s;
	const char *none[] = {"samlgw_service", "imap", NULL};
	assert_int_equal(load(none, &s), PLUGIN_UNCONFIGURED);

	const char *url[] = {"samlgw_redis", "unix:///run/redis.sock", "samlgw_service", "IMAP",
			     "samlgw_username", "localpart", "samlgw_domain", "example.org", NULL};
	assert_int_equal(load(url, &s), PLUGIN_CONFIGURED);
	assert_string_equal(s.store.url, "unix:///run/redis.sock");
	assert_string_equal(s.store.prefix, "samlgw:");
	assert_int_equal(s.store.timeout_ms, 500);
	assert_string_equal(s.service, "imap");
	assert_int_equal(s.user_mode, USER_MODE_LOCALPART);
	assert_string_equal(s.domain, "example.org");
	plugin_settings_clear(&s);

	const char *tuned[] = {"samlgw_redis", "redis://127.0.0.1:6379", "samlgw_prefix", "x:",
			       "samlgw_timeout_ms", "50", NULL};
	assert_int_equal(load(tuned, &s), PLUGIN_CONFIGURED);
	assert_string_equal(s.store.prefix, "x:");
	assert_int_equal(s.store.timeout_ms, 50);
	assert_null(s.service);
	plugin_settings_clear(&s);

	const char *bad_url[] = {"samlgw_redis", "rediss://x", NULL};
	assert_int_equal(load(bad_url, &s), PLUGIN_BROKEN);
	const char *bad_service[] = {"samlgw_redis", "unix:///x", "samlgw_service", "imap,smtp",
				     NULL};
	assert_int_equal(load(bad_service, &s), PLUGIN_BROKEN);
	const char *bad_mode[] = {"samlgw_redis", "unix:///x", "samlgw_username", "local", NULL};
	assert_int_equal(load(bad_mode, &s), PLUGIN_BROKEN);
	const char *no_domain[] = {"samlgw_redis", "unix:///x", "samlgw_username", "localpart",
				   NULL};
	assert_int_equal(load(no_domain, &s), PLUGIN_BROKEN);
	const char *bad_timeout[] = {"samlgw_redis", "unix:///x", "samlgw_timeout_ms", "0", NULL};
	assert_int_equal(load(bad_timeout, &s), PLUGIN_BROKEN);
	const char *missing_file[] = {"samlgw_config", "/nonexistent/samlgw.conf", NULL};
	assert_int_equal(load(missing_file, &s), PLUGIN_BROKEN);
}

static void test_plugin_settings_file(void **state)
{
	char path[] = "/tmp/samlgw-sasl-test-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	static const char text[] = "[redis]\nurl = unix:///run/r.sock\nprefix = p:\ntimeout_ms = 77\n";
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	struct plugin_settings s;
	const char *file[] = {"samlgw_config", path, NULL};
	assert_int_equal(load(file, &s), PLUGIN_CONFIGURED);
	assert_string_equal(s.store.url, "unix:///run/r.sock");
	assert_string_equal(s.store.prefix, "p:");
	assert_int_equal(s.store.timeout_ms, 77);
	plugin_settings_clear(&s);
	const char *both[] = {"samlgw_config", path, "samlgw_redis", "unix:///other.sock", NULL};
	assert_int_equal(load(both, &s), PLUGIN_CONFIGURED);
	assert_string_equal(s.store.url, "unix:///other.sock");
	plugin_settings_clear(&s);
	const char *mixed[] = {"samlgw_config", path, "samlgw_prefix", "x:", NULL};
	assert_int_equal(load(mixed, &s), PLUGIN_BROKEN);
	unlink(path);
}

static void test_line_request(void **state)
{
	struct line_request req;
	char a[] = "auth:alice:example.org:pa:ss";
	assert_int_equal(line_request_parse(a, &req), 0);
	assert_string_equal(req.command, "auth");
	assert_string_equal(req.user, "alice");
	assert_string_equal(req.server, "example.org");
	assert_string_equal(req.password, "pa:ss");
	char b[] = "isuser:alice:example.org";
	assert_int_equal(line_request_parse(b, &req), 0);
	assert_null(req.password);
	char c[] = "auth::example.org:x";
	assert_int_equal(line_request_parse(c, &req), -1);
	char d[] = "auth";
	assert_int_equal(line_request_parse(d, &req), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_oauthbearer_full),
		cmocka_unit_test(test_oauthbearer_minimal_and_case),
		cmocka_unit_test(test_oauthbearer_escapes),
		cmocka_unit_test(test_oauthbearer_rejects),
		cmocka_unit_test(test_oauthbearer_error_ack),
		cmocka_unit_test(test_xoauth2),
		cmocka_unit_test(test_error_challenge),
		cmocka_unit_test(test_saslauthd_request),
		cmocka_unit_test(test_saslauthd_response),
		cmocka_unit_test(test_user_map),
		cmocka_unit_test(test_user_map_normalize_agrees),
		cmocka_unit_test(test_plugin_settings),
		cmocka_unit_test(test_plugin_settings_file),
		cmocka_unit_test(test_line_request),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
