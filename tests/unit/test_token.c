/* Unit tests of the token contract, JIDs, service lists and redis.url parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "jid.h"
#include "redis_url.h"
#include "services.h"
#include "token.h"
#include "util.h"

static void test_generate_shape(void **state)
{
	char a[TOKEN_LEN + 1], b[TOKEN_LEN + 1];
	const char *error;
	assert_int_equal(token_generate(a, &error), 0);
	assert_int_equal(token_generate(b, &error), 0);
	assert_int_equal(strlen(a), TOKEN_LEN);
	assert_true(TOKEN_LEN >= 24 && TOKEN_LEN <= TOKEN_TEXT_MAX);
	assert_memory_equal(a, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
	assert_string_not_equal(a, b);
	for (size_t i = 0; i < TOKEN_LEN; i++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				       "0123456789_-",
				       a[i]));
	assert_true(token_well_formed(a, strlen(a)));
}

static void test_well_formed_rejects(void **state)
{
	char t[TOKEN_LEN + 1];
	const char *error;
	assert_int_equal(token_generate(t, &error), 0);
	/* Any changed character breaks the check. */
	for (size_t i = TOKEN_PREFIX_LEN; i < TOKEN_LEN; i++) {
		char c = t[i];
		t[i] = c == 'A' ? 'B' : 'A';
		assert_false(token_well_formed(t, TOKEN_LEN));
		t[i] = c;
	}
	assert_true(token_well_formed(t, TOKEN_LEN));
	assert_false(token_well_formed(t, TOKEN_LEN - 1));
	assert_false(token_well_formed("", 0));
	char longer[TOKEN_LEN + 2];
	memcpy(longer, t, TOKEN_LEN);
	longer[TOKEN_LEN] = 'A';
	assert_false(token_well_formed(longer, TOKEN_LEN + 1));
	t[0] = 'S';
	assert_false(token_well_formed(t, TOKEN_LEN));
	t[0] = 's';
	t[20] = '+';
	assert_false(token_well_formed(t, TOKEN_LEN));
}

static void test_hash_and_id(void **state)
{
	char hash[TOKEN_HASH_HEX_LEN + 1], id[TOKEN_ID_LEN + 1];
	/* SHA-256("abc") */
	token_hash_hex("abc", 3, hash);
	assert_string_equal(hash,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	token_id_from_hash(hash, id);
	assert_string_equal(id, "ba7816bf8f01cfea");
	assert_true(token_id_valid(id));
	assert_true(token_id_valid(hash));
	assert_false(token_id_valid("ba7816bf8f01cfe"));
	assert_false(token_id_valid("BA7816BF8F01CFEA"));
	assert_false(token_id_valid("ba7816bf8f01cfeg"));
}

static void test_ct_and_wipe(void **state)
{
	assert_true(ct_equal("abcdef", "abcdef", 6));
	assert_false(ct_equal("abcdef", "abcdeg", 6));
	char buf[8] = "secret";
	secret_wipe(buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
}

static void test_jid(void **state)
{
	char *jid;
	const char *error;
	assert_int_equal(jid_bare_normalize("Alice@Example.ORG", &jid, &error), 0);
	assert_string_equal(jid, "alice@example.org");
	free(jid);
	assert_int_equal(jid_bare_normalize("alice@example.org.", &jid, &error), 0);
	assert_string_equal(jid, "alice@example.org");
	free(jid);
	assert_int_equal(jid_bare_normalize("j\xc3\xbcrgen@uni.example", &jid, &error), 0);
	free(jid);
	static const char *const bad[] = {
		"alice", "@example.org", "alice@", "alice@example.org/phone", "a b@example.org",
		"a'b@example.org", "a@b@example.org", "alice@exa_mple.org", "alice@-x.org",
		"alice@x..org", "\xff@example.org", "a\x01@example.org",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(jid_bare_normalize(bad[i], &jid, &error), -1);
	char *big = xcalloc(1, 1100);
	memset(big, 'a', 1024);
	strcat(big, "@example.org");
	assert_int_equal(jid_bare_normalize(big, &jid, &error), -1);
	free(big);
}

static void test_services(void **state)
{
	char *c;
	const char *error;
	assert_int_equal(services_normalize("XMPP, imap imap,smtp", &c, &error), 0);
	assert_string_equal(c, "xmpp,imap,smtp");
	assert_true(services_allow(c, "imap"));
	assert_true(services_allow(c, "smtp"));
	assert_false(services_allow(c, "ima"));
	assert_false(services_allow(c, "ldap"));
	free(c);
	assert_int_equal(services_normalize("xmpp,*", &c, &error), 0);
	assert_string_equal(c, "*");
	assert_true(services_allow(c, "anything"));
	free(c);
	assert_int_equal(services_normalize(" , ", &c, &error), -1);
	assert_int_equal(services_normalize("x!y", &c, &error), -1);
	assert_int_equal(services_normalize("a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", &c, &error), -1);
}

static void test_redis_url(void **state)
{
	struct redis_url *u;
	const char *error;
	assert_int_equal(redis_url_parse("unix:///run/redis/redis.sock", &u, &error), 0);
	assert_int_equal(u->kind, REDIS_URL_UNIX);
	assert_string_equal(u->path, "/run/redis/redis.sock");
	assert_null(u->password);
	assert_int_equal(u->db, 0);
	redis_url_free(u);
	assert_int_equal(redis_url_parse("unix://:s%40cret@/tmp/r.sock?db=3", &u, &error), 0);
	assert_string_equal(u->password, "s@cret");
	assert_null(u->username);
	assert_int_equal(u->db, 3);
	redis_url_free(u);
	assert_int_equal(redis_url_parse("redis://app:pw@10.0.0.5:6380/2", &u, &error), 0);
	assert_int_equal(u->kind, REDIS_URL_TCP);
	assert_string_equal(u->host, "10.0.0.5");
	assert_int_equal(u->port, 6380);
	assert_string_equal(u->username, "app");
	assert_string_equal(u->password, "pw");
	assert_int_equal(u->db, 2);
	redis_url_free(u);
	assert_int_equal(redis_url_parse("redis://[::1]", &u, &error), 0);
	assert_string_equal(u->host, "::1");
	assert_int_equal(u->port, 6379);
	redis_url_free(u);
	assert_int_equal(redis_url_parse("redis://localhost/", &u, &error), 0);
	redis_url_free(u);
	static const char *const bad[] = {
		"", "http://x", "rediss://x", "unix://", "unix://relative.sock", "unix:///x?db=a",
		"unix:///x?foo=1", "redis://", "redis://h:0", "redis://h:65536", "redis://h:x",
		"redis://h/abc", "redis://[::1", "redis://[::1]x", "redis://user@h", "redis://:@h",
		"redis://:%zz@h", "redis://:%00@h", "redis://h h", "redis://h%41",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (redis_url_parse(bad[i], &u, &error) == 0)
			fail_msg("accepted %s", bad[i]);
	}
	char *r = redis_url_redact("redis://app:secret@h:1/2");
	assert_string_equal(r, "redis://app:***@h:1/2");
	free(r);
	r = redis_url_redact("unix://:secret@/tmp/s");
	assert_string_equal(r, "unix://:***@/tmp/s");
	free(r);
	r = redis_url_redact("unix:///tmp/a@b/s");
	assert_string_equal(r, "unix:///tmp/a@b/s");
	free(r);
}

static void test_utf8(void **state)
{
	static const char ok[] = "laptop \xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
	assert_true(utf8_printable(ok, strlen(ok)));
	assert_false(utf8_printable(ok, strlen(ok) - 1)); /* cut inside the last character */
	assert_false(utf8_printable("a\nb", 3));
	assert_false(utf8_printable("\xc3", 1));
	assert_false(utf8_printable("\xc0\xaf", 2));        /* overlong */
	assert_false(utf8_printable("\xed\xa0\x80", 3));    /* surrogate */
	assert_false(utf8_printable("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(utf8_printable("\xc2\x85", 2));        /* C1 control */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate_shape), cmocka_unit_test(test_well_formed_rejects),
		cmocka_unit_test(test_hash_and_id),    cmocka_unit_test(test_ct_and_wipe),
		cmocka_unit_test(test_jid),            cmocka_unit_test(test_services),
		cmocka_unit_test(test_redis_url),      cmocka_unit_test(test_utf8),
	};
	return cmocka_run_group_tests_name("token", tests, NULL, NULL);
}
