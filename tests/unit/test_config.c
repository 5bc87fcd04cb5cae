/* Unit tests of the configuration table, loader and its FILE:LINE messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_table.h"
#include "util.h"

/* Parse text; returns the problems joined by newlines (caller frees), "" when none. */
static char *parse(const char *text, unsigned prog, struct config **cfg_r)
{
	struct config_problems pr = {0};
	struct config *cfg = NULL;
	int ret = config_parse("t.conf", "/etc/samlgw", text, strlen(text), prog, &cfg, &pr);
	size_t total = 1;
	for (size_t i = 0; i < pr.n; i++)
		total += strlen(pr.v[i]) + 1;
	char *out = xcalloc(1, total);
	for (size_t i = 0; i < pr.n; i++) {
		strcat(out, pr.v[i]);
		strcat(out, "\n");
	}
	assert_int_equal(ret == 0, pr.n == 0);
	config_problems_free(&pr);
	if (cfg_r != NULL)
		*cfg_r = cfg;
	else
		config_free(cfg);
	return out;
}

static void expect_problems(const char *text, unsigned prog, const char *expected)
{
	char *got = parse(text, prog, NULL);
	assert_string_equal(got, expected);
	free(got);
}

static void test_defaults(void **state)
{
	struct config *cfg;
	char *p = parse("", PROG_TOKEN, &cfg);
	assert_string_equal(p, "");
	assert_string_equal(cfg->redis.url, "redis://127.0.0.1:6379");
	assert_string_equal(cfg->redis.prefix, "samlgw:");
	assert_int_equal(cfg->redis.timeout_ms, 500);
	assert_int_equal(cfg->token.default_ttl, 3600);
	assert_int_equal(cfg->token.max_ttl, 7776000);
	assert_string_equal(cfg->token.services, "xmpp");
	assert_int_equal(cfg->xmpp.listen.n, 1);
	assert_string_equal(cfg->xmpp.listen.v[0], "0.0.0.0:5222");
	assert_false(cfg->log.syslog);
	free(p);
	config_free(cfg);
}

static void test_full_file(void **state)
{
	static const char text[] =
		"; a comment\n"
		"# another\n"
		"[redis]\n"
		"url = unix:///run/redis/redis.sock?db=2\n"
		"prefix = uni:          ; inline comment\n"
		"timeout_ms = 250\n"
		"\n"
		"[token]\n"
		"default_ttl = 2h\n"
		"max_ttl = 90d\n"
		"services = xmpp, imap\n"
		"[log]\n"
		"syslog = yes\n"
		"[http]\n"
		"public_url = https://chat.example.org\n"
		"[saml]\n"
		"entity_id = https://chat.example.org/saml/metadata\n"
		"key = sp-key.pem\n"
		"cert = /abs/sp-cert.pem\n"
		"idp_metadata = idp.xml\n"
		"[xmpp]\n"
		"listen = 0.0.0.0:5222, [::]:5222\n"
		"[domain example.org]\n"
		"  cert = example.org.pem\n"
		"  key = example.org.key\n"
		"  idp = https://idp.example.org/idp/shibboleth\n"
		"  idp = https://idp2.example.org/idp\n"
		"[domain uni-b.example]\n"
		"idp = https://idp.uni-b.example/idp\n"
		"scope = uni-b.example, staff.uni-b.example\n";
	struct config *cfg;
	char *p = parse(text, PROG_TOKEN, &cfg);
	assert_string_equal(p, "");
	free(p);
	assert_string_equal(cfg->redis.prefix, "uni:");
	assert_int_equal(cfg->redis.timeout_ms, 250);
	assert_int_equal(cfg->token.default_ttl, 7200);
	assert_int_equal(cfg->token.max_ttl, 90 * 86400);
	/* Kept in canonical form, as services_allow() and the token records expect. */
	assert_string_equal(cfg->token.services, "xmpp,imap");
	assert_true(cfg->log.syslog);
	/* Relative paths resolve against the file's folder, absolute ones stay. */
	assert_string_equal(cfg->saml.key, "/etc/samlgw/sp-key.pem");
	assert_string_equal(cfg->saml.cert, "/abs/sp-cert.pem");
	assert_int_equal(cfg->xmpp.listen.n, 2);
	assert_string_equal(cfg->xmpp.listen.v[1], "[::]:5222");
	assert_int_equal(cfg->n_domains, 2);
	const struct config_domain *d = config_domain_find(cfg, "example.org");
	assert_non_null(d);
	assert_int_equal(d->line, 23);
	assert_string_equal(d->cert, "/etc/samlgw/example.org.pem");
	/* Indented keys are keys, never continuations; a list key may repeat. */
	assert_int_equal(d->idp.n, 2);
	assert_string_equal(d->idp.v[1], "https://idp2.example.org/idp");
	/* scope defaults to the domain's name. */
	assert_int_equal(d->scope.n, 1);
	assert_string_equal(d->scope.v[0], "example.org");
	d = config_domain_find(cfg, "uni-b.example");
	assert_int_equal(d->scope.n, 2);
	assert_null(config_domain_find(cfg, "other.org"));
	config_free(cfg);
}

static void test_unknown_names(void **state)
{
	expect_problems("[tokn]\nttl = 3\n[token]\ndefault_tl = 60\nzzzzzz = 1\n", PROG_TOKEN,
			"t.conf:1: unknown section [tokn] (did you mean [token]?)\n"
			"t.conf:4: unknown key 'default_tl' in [token] (did you mean "
			"'default_ttl'?)\n"
			"t.conf:5: unknown key 'zzzzzz' in [token]\n");
	expect_problems("[nothing-like-it]\n", PROG_TOKEN,
			"t.conf:1: unknown section [nothing-like-it]\n");
	expect_problems("[domain example.org]\ncertificate = x\n", PROG_TOKEN,
			"t.conf:2: unknown key 'certificate' in [domain example.org]\n");
}

static void test_values(void **state)
{
	expect_problems("[redis]\ntimeout_ms = fast\n", PROG_TOKEN,
			"t.conf:2: [redis] timeout_ms: must be a whole number\n");
	expect_problems("[redis]\ntimeout_ms = 5\n", PROG_TOKEN,
			"t.conf:2: [redis] timeout_ms: must be from 10 to 60000\n");
	expect_problems("[redis]\ntimeout_ms = +50\n", PROG_TOKEN,
			"t.conf:2: [redis] timeout_ms: must be a whole number\n");
	expect_problems("[log]\nsyslog = maybe\n", PROG_TOKEN,
			"t.conf:2: [log] syslog: must be yes or no\n");
	expect_problems("[log]\nlevel = loud\n", PROG_TOKEN,
			"t.conf:2: [log] level: must be one of debug, info, warn, error\n");
	expect_problems("[token]\nmax_ttl = 3y\n", PROG_TOKEN,
			"t.conf:2: [token] max_ttl: must be a number of seconds, or a number "
			"with s, m, h, d or w\n");
	expect_problems("[token]\nservices =\n", PROG_TOKEN,
			"t.conf:2: [token] services: has no value (remove the line to use the "
			"default)\n");
	expect_problems("[redis]\nurl = rediss://h:1\n", PROG_TOKEN,
			"t.conf:2: [redis] url: rediss:// (TLS) is not supported by hiredis "
			"0.14; use a unix socket or a local tunnel\n");
	expect_problems("[http]\npublic_url = https://chat.example.org/\n", PROG_TOKEN,
			"t.conf:2: [http] public_url: must not end with '/'\n");
	expect_problems("[http]\npublic_url = https://Chat.example.org/chat\n", PROG_TOKEN,
			"t.conf:2: [http] public_url: must have its host in lower case, as "
			"browsers send it\n");
	expect_problems("[http]\npublic_url = https://chat.example.org:443\n", PROG_TOKEN,
			"t.conf:2: [http] public_url: must leave out the scheme's default port "
			"(:443 for https, :80 for http)\n");
	expect_problems("[http]\npublic_url = http://chat.example.org:80/x\n", PROG_TOKEN,
			"t.conf:2: [http] public_url: must leave out the scheme's default port "
			"(:443 for https, :80 for http)\n");
	/* Other ports stay, upper case after the host is the path's business. */
	expect_problems("[http]\npublic_url = https://chat.example.org:8443/Chat\n", PROG_TOKEN,
			"");
	expect_problems("[xmpp]\nlisten = 5222\n", PROG_TOKEN,
			"t.conf:2: [xmpp] listen: must be HOST:PORT, with an IPv6 host in "
			"brackets ([::1]:5222)\n");
	expect_problems("[token]\ndefault_ttl = 2d\nmax_ttl = 1d\n", PROG_TOKEN,
			"t.conf:2: [token] default_ttl (172800) is longer than max_ttl (86400)\n");
	/* A refused value does not cause follow-on complaints. */
	expect_problems("[token]\ndefault_ttl = x\nmax_ttl = 100\n", PROG_TOKEN,
			"t.conf:2: [token] default_ttl: must be a number of seconds, or a number "
			"with s, m, h, d or w\n");
}

static void test_structure(void **state)
{
	expect_problems("url = x\n", PROG_TOKEN, "t.conf:1: 'url' is outside any [section]\n");
	expect_problems("[redis\n", PROG_TOKEN, "t.conf:1: section header without closing ']'\n");
	expect_problems("[redis]\njust words\n", PROG_TOKEN,
			"t.conf:2: expected 'key = value' or '[section]'\n");
	expect_problems("[redis]\nprefix = a:\nprefix = b:\n", PROG_TOKEN,
			"t.conf:3: [redis] prefix is already set on line 2\n");
	expect_problems("[domain]\n", PROG_TOKEN,
			"t.conf:1: [domain] needs a name: [domain example.org]\n");
	expect_problems("[domain a.org]\n[domain a.org]\n", PROG_TOKEN,
			"t.conf:2: [domain a.org] is already defined on line 1\n");
	expect_problems("[domain Not_A_Domain]\nidp = x\n", PROG_TOKEN,
			"t.conf:1: [domain Not_A_Domain]: the domain may hold only lowercase "
			"letters, digits, '-' and '.' (write internationalised names as xn-- "
			"A-labels)\n");
	/* Sections may repeat; keys may not. CRLF and a BOM are fine. */
	expect_problems("\xef\xbb\xbf[redis]\r\nprefix = a:\r\n[token]\r\n[redis]\r\n"
			"timeout_ms = 100\r\n",
			PROG_TOKEN, "");
	char longline[400];
	snprintf(longline, sizeof(longline), "[redis]\nprefix = %0300d\n", 1);
	char *got = parse(longline, PROG_TOKEN, NULL);
	assert_non_null(strstr(got, "t.conf:2: line is longer than"));
	free(got);
	static const char nul[] = "[redis]\nprefix = a\0b\n";
	struct config_problems pr = {0};
	struct config *cfg;
	assert_int_equal(config_parse("t.conf", NULL, nul, sizeof(nul) - 1, PROG_TOKEN, &cfg, &pr),
			 -1);
	assert_int_equal(pr.n, 1);
	assert_string_equal(pr.v[0], "t.conf:2: line holds a NUL byte");
	config_problems_free(&pr);
}

static void test_every_problem_in_order(void **state)
{
	expect_problems("[redis]\n"
			"url = http://x\n"
			"timeout_ms = 5\n"
			"[tokn]\n"
			"x = 1\n"
			"[token]\n"
			"bogus\n"
			"services = xm pp!\n",
			PROG_TOKEN,
			"t.conf:2: [redis] url: the URL must start with unix:// or redis://\n"
			"t.conf:3: [redis] timeout_ms: must be from 10 to 60000\n"
			"t.conf:4: unknown section [tokn] (did you mean [token]?)\n"
			"t.conf:7: expected 'key = value' or '[section]'\n"
			"t.conf:8: [token] services: a service name must be 1 to 32 of a-z 0-9 _ "
			". - (or *)\n");
}

static void test_required_by_program(void **state)
{
	/* samlgw-token needs nothing beyond defaults; samlgw needs its SP settings. */
	expect_problems("[http]\nlisten = 127.0.0.1:8080\n", PROG_TOKEN, "");
	expect_problems("[http]\nlisten = 127.0.0.1:8080\n[domain a.org]\nidp = urn:x\n",
			PROG_SAMLGW,
			"t.conf:1: [http] needs 'public_url'\n"
			"t.conf:4: [saml] needs 'entity_id'\n"
			"t.conf:4: [saml] needs 'key'\n"
			"t.conf:4: [saml] needs 'cert'\n"
			"t.conf:4: [saml] needs 'idp_metadata'\n");
	expect_problems("[domain a.org]\n", PROG_XMPP,
			"t.conf:1: [domain a.org] needs 'cert'\n"
			"t.conf:1: [domain a.org] needs 'key'\n");
	expect_problems("[domain a.org]\nidp = urn:x, urn:y\nlocalpart = uid\n", PROG_TOKEN,
			"t.conf:3: [domain a.org] localpart = uid needs exactly one idp: a uid "
			"carries no scope, so any of several IdPs could name any user\n");
	expect_problems("[domain a.org]\nidp = urn:x\nlocalpart = uid\n", PROG_TOKEN, "");
	expect_problems("[xmpp]\n", PROG_XMPP,
			"t.conf:1: no [domain NAME] section: at least one hosted domain is "
			"needed\n");
}

static void test_load_files(void **state)
{
	char dir[] = "/tmp/samlgw-cfg-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *conf = xasprintf("%s/samlgw.conf", dir);
	char *cert = xasprintf("%s/a.pem", dir);
	FILE *f = fopen(cert, "w");
	assert_non_null(f);
	fclose(f);
	f = fopen(conf, "w");
	assert_non_null(f);
	fputs("[domain a.org]\ncert = a.pem\nkey = missing.key\n", f);
	fclose(f);
	struct config *cfg;
	struct config_problems pr = {0};
	assert_int_equal(config_load(conf, PROG_XMPP, &cfg, &pr), -1);
	assert_int_equal(pr.n, 1);
	char *expected = xasprintf("%s:3: [domain a.org] key: cannot read %s/missing.key: No such "
				   "file or directory",
				   conf, dir);
	assert_string_equal(pr.v[0], expected);
	free(expected);
	config_problems_free(&pr);
	/* samlgw-token does not read those files, so it does not care. */
	assert_int_equal(config_load(conf, PROG_TOKEN, &cfg, &pr), 0);
	char *abs = xasprintf("%s/a.pem", dir);
	assert_string_equal(cfg->domains[0].cert, abs);
	free(abs);
	config_free(cfg);

	assert_int_equal(config_load("/nonexistent/samlgw.conf", PROG_TOKEN, &cfg, &pr), -1);
	assert_string_equal(pr.v[0], "/nonexistent/samlgw.conf: cannot read the file: No such "
				     "file or directory");
	config_problems_free(&pr);
	unlink(conf);
	unlink(cert);
	rmdir(dir);
	free(conf);
	free(cert);
}

static void test_reference(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	config_write_reference(f);
	fclose(f);
	for (size_t i = 0; i < config_settings_count; i++) {
		char *row = xasprintf("| `%s` |", config_settings[i].key);
		assert_non_null(strstr(buf, row));
		free(row);
		assert_non_null(strstr(buf, config_settings[i].doc));
	}
	assert_non_null(strstr(buf, "## [domain NAME]"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_unknown_names),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_every_problem_in_order),
		cmocka_unit_test(test_required_by_program),
		cmocka_unit_test(test_load_files),
		cmocka_unit_test(test_reference),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
