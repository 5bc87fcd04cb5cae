/* The SASL plugin out of memory: it runs inside Postfix, Cyrus IMAP and slapd, so a failed
 * allocation anywhere on an authentication's path (the plugin, the token store, hiredis,
 * libc) must come back as SASL_NOMEM (or a refusal), never abort the host, never log a
 * user in who should not be, and leak nothing.
 *
 * This program replaces malloc, calloc, realloc and free (glibc routes its own internal
 * allocations, strdup's and vasprintf's included, through them) and makes exactly one
 * chosen allocation fail: the first, then the second, and so on until an exchange runs
 * through without reaching the chosen one. It then does the same with every allocation
 * from the chosen one on failing. The plugin is loaded from the build folder with dlopen
 * and driven through its own entry points with a minimal sasl_utils_t, so that only the
 * plugin's path, not libsasl2's, is under test.
 *
 * The replacement also counts the blocks it hands out, so that every exchange, failed
 * allocations and all, is checked to give back all it took (once caches that fill on first
 * use are warm). It cannot coexist with a sanitizer's allocator or valgrind's (which
 * takes over malloc before it can): those setups skip the test (exit 77). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sasl/sasl.h>
#include <sasl/saslplug.h>

#include "redis_fixture.h"
#include "store.h"
#include "token.h"

#ifndef SAMLGW_OOM_SHIM
#define SAMLGW_OOM_SHIM 1
#endif

#if SAMLGW_OOM_SHIM

/* ------------------------------------------------------------------ failing allocator */

void *__libc_malloc(size_t size);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *p, size_t size);
void __libc_free(void *p);

enum fail_mode { FAIL_NONE, FAIL_ONE, FAIL_FROM };

static _Atomic int mode = FAIL_NONE;
static atomic_long countdown; /* allocations left before the chosen one */
static atomic_long failed;    /* allocations made to fail since armed */
static atomic_long live;      /* blocks handed out and not yet freed */

static bool fail_now(void)
{
	if (atomic_load(&mode) == FAIL_NONE)
		return false;
	long left = atomic_fetch_sub(&countdown, 1);
	if (left == 0 || (left < 0 && atomic_load(&mode) == FAIL_FROM)) {
		atomic_fetch_add(&failed, 1);
		return true;
	}
	return false;
}

static void *counted(void *p)
{
	if (p != NULL)
		atomic_fetch_add(&live, 1);
	return p;
}

void *malloc(size_t size)
{
	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return counted(__libc_malloc(size));
}

void *calloc(size_t n, size_t size)
{
	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return counted(__libc_calloc(n, size));
}

void *realloc(void *p, size_t size)
{
	if (p == NULL)
		return malloc(size);
	if (size == 0) {
		free(p);
		return NULL;
	}
	if (fail_now()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(p, size);
}

void free(void *p)
{
	if (p != NULL)
		atomic_fetch_sub(&live, 1);
	__libc_free(p);
}

static void arm(enum fail_mode m, long n)
{
	atomic_store(&failed, 0);
	atomic_store(&countdown, n);
	atomic_store(&mode, m);
}

static long disarm(void)
{
	atomic_store(&mode, FAIL_NONE);
	return atomic_load(&failed);
}

/* ------------------------------------------------------------------ a minimal host */

static struct test_redis redis;
static char valid[TOKEN_LEN + 1], limited[TOKEN_LEN + 1], bobs[TOKEN_LEN + 1];
static char canon_name[1300];
static char last_error[512];

static int host_getopt(void *context, const char *plugin_name, const char *option,
		       const char **result, unsigned *len)
{
	if (strcmp(option, "samlgw_redis") == 0)
		*result = redis.url;
	else if (strcmp(option, "samlgw_domain") == 0)
		*result = "example.org";
	else
		return SASL_FAIL;
	if (len != NULL)
		*len = (unsigned)strlen(*result);
	return SASL_OK;
}

static void host_log(sasl_conn_t *conn, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
}

static void host_seterror(sasl_conn_t *conn, unsigned flags, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
}

static void *host_malloc(size_t n)
{
	return malloc(n);
}

static void host_free(void *p)
{
	free(p);
}

static int host_canon_user(sasl_conn_t *conn, const char *user, unsigned ulen, unsigned flags,
			   sasl_out_params_t *oparams)
{
	if (ulen == 0)
		ulen = (unsigned)strlen(user);
	if (ulen >= sizeof(canon_name))
		return SASL_BADPARAM;
	memcpy(canon_name, user, ulen);
	canon_name[ulen] = '\0';
	return SASL_OK;
}

static sasl_utils_t utils;
static sasl_server_params_t sparams;
static void *plugin;
static sasl_server_plug_init_t *plug_init;

static int setup(void **state)
{
	const char *dir = getenv("SAMLGW_SASL_PLUGIN_DIR");
	if (dir == NULL) {
		fprintf(stderr, "set SAMLGW_SASL_PLUGIN_DIR\n");
		return -1;
	}
	char path[1024];
	snprintf(path, sizeof(path), "%s/libsamlgw.so", dir);
	plugin = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (plugin == NULL) {
		fprintf(stderr, "%s\n", dlerror());
		return -1;
	}
	plug_init = (sasl_server_plug_init_t *)dlsym(plugin, "sasl_server_plug_init");
	if (plug_init == NULL || test_redis_start(&redis) < 0)
		return -1;
	struct store_options so = {.url = redis.url, .prefix = "samlgw:", .timeout_ms = 2000};
	struct token_store *store;
	const char *error;
	if (store_open(&so, &store, &error) < 0)
		return -1;
	struct store_issue_request req = {.jid = "alice@example.org", .services = "imap",
					  .ttl = 3600, .max_per_user = 10};
	int ok = store_issue(store, &req, valid, NULL, &error) == STORE_OK;
	req.max_uses = 1000000;
	ok = ok && store_issue(store, &req, limited, NULL, &error) == STORE_OK;
	req.jid = "bob@example.org";
	req.max_uses = 0;
	ok = ok && store_issue(store, &req, bobs, NULL, &error) == STORE_OK;
	store_free(store);
	if (!ok)
		return -1;
	utils.getopt = host_getopt;
	utils.malloc = host_malloc;
	utils.free = host_free;
	utils.log = host_log;
	utils.seterror = host_seterror;
	sparams.service = "imap";
	sparams.servicelen = 4;
	sparams.utils = &utils;
	sparams.canon_user = host_canon_user;
	return 0;
}

static int teardown(void **state)
{
	test_redis_cleanup(&redis);
	if (plugin != NULL)
		dlclose(plugin);
	return 0;
}

/* One exchange through the plugin's own entry points; returns the final status. */
static int exchange(const sasl_server_plug_t *mech, const char *msg, size_t len)
{
	void *ctx = NULL;
	canon_name[0] = '\0';
	last_error[0] = '\0';
	int r = mech->mech_new(mech->glob_context, &sparams, NULL, 0, &ctx);
	if (r != SASL_OK)
		return r;
	sasl_out_params_t oparams;
	memset(&oparams, 0, sizeof(oparams));
	const char *out;
	unsigned outlen;
	r = mech->mech_step(ctx, &sparams, msg, (unsigned)len, &out, &outlen, &oparams);
	if (r == SASL_CONTINUE) {
		/* The client's answer to the error challenge: \x01, or nothing for XOAUTH2. */
		bool xoauth2 = strcmp(mech->mech_name, "XOAUTH2") == 0;
		r = mech->mech_step(ctx, &sparams, "\x01", xoauth2 ? 0 : 1, &out, &outlen, &oparams);
	}
	mech->mech_dispose(ctx, &utils);
	return r;
}

struct scenario {
	const char *name;
	int mech; /* 0 OAUTHBEARER, 1 XOAUTH2 */
	const char *user; /* NULL: no authzid */
	const char *token;
	bool good; /* a valid login when memory suffices */
};

/* Every allocation of one scenario in turn fails (FAIL_ONE), or fails with all that come
 * after it (FAIL_FROM). A fresh plugin context each time, so that the pool opens and
 * connects a store under the failing allocator too. */
static int message(const struct scenario *sc, char msg[512])
{
	return sc->mech == 0
		       ? snprintf(msg, 512, "n,%s%s,\x01" "auth=Bearer %s\x01\x01",
				  sc->user != NULL ? "a=" : "", sc->user != NULL ? sc->user : "",
				  sc->token)
		       : snprintf(msg, 512, "user=%s\x01" "auth=Bearer %s\x01\x01", sc->user,
				  sc->token);
}

static void run_plain(const struct scenario *sc)
{
	char msg[512];
	int len = message(sc, msg);
	int out_version, count;
	sasl_server_plug_t *mechs;
	assert_int_equal(plug_init(&utils, SASL_SERVER_PLUG_VERSION, &out_version, &mechs, &count),
			 SASL_OK);
	assert_int_equal(exchange(&mechs[sc->mech], msg, (size_t)len),
			 sc->good ? SASL_OK : SASL_BADAUTH);
	for (int i = 0; i < count; i++)
		mechs[i].mech_free(mechs[i].glob_context, &utils);
}

static void run(const struct scenario *sc, enum fail_mode m)
{
	char msg[512];
	int len = message(sc, msg);
	long n;
	int nomem = 0;
	long baseline = atomic_load(&live);
	for (n = 0;; n++) {
		int out_version, count;
		sasl_server_plug_t *mechs;
		assert_int_equal(plug_init(&utils, SASL_SERVER_PLUG_VERSION, &out_version, &mechs,
					   &count),
				 SASL_OK);
		arm(m, n);
		int r = exchange(&mechs[sc->mech], msg, (size_t)len);
		long hit = disarm();
		for (int i = 0; i < count; i++)
			mechs[i].mech_free(mechs[i].glob_context, &utils);
		if (atomic_load(&live) != baseline)
			fail_msg("%s: with allocation %ld failing, %ld blocks were not given back",
				 sc->name, n, atomic_load(&live) - baseline);
		if (hit == 0) {
			/* Past the last allocation: the exchange ran with enough memory. */
			assert_int_equal(r, sc->good ? SASL_OK : SASL_BADAUTH);
			break;
		}
		if (r == SASL_NOMEM) {
			nomem++;
			continue;
		}
		/* A failed allocation may also end as a refusal or a temporary failure, but
		 * never as a login that should not happen, and a valid one only with the right
		 * user. */
		if (r == SASL_OK) {
			if (!sc->good)
				fail_msg("%s: allocation %ld failed and a bad login succeeded", sc->name,
					 n);
			assert_string_equal(canon_name, "alice@example.org");
		} else if (r != SASL_BADAUTH && r != SASL_UNAVAIL) {
			fail_msg("%s: allocation %ld failed and the plugin returned %d (%s)",
				 sc->name, n, r, last_error);
		}
	}
	print_message("%s, %s: %ld allocations, %d ended in SASL_NOMEM\n", sc->name,
		      m == FAIL_ONE ? "one failing" : "all failing from there", n, nomem);
	/* The replacement allocator really sat under the plugin. */
	assert_true(n > 10);
}

static const struct scenario scenarios[] = {
	{"OAUTHBEARER with authzid", 0, "alice@example.org", valid, true},
	{"OAUTHBEARER without authzid", 0, NULL, valid, true},
	{"OAUTHBEARER limited token", 0, NULL, limited, true},
	{"XOAUTH2 short name", 1, "alice", valid, true},
	{"XOAUTH2 other user", 1, "bob@example.org", valid, false},
	/* Right after alice's logins: a hash left over from hers must never be looked up. */
	{"OAUTHBEARER alice with bob's token", 0, "alice@example.org", bobs, false},
};

/* One exchange of each scenario with memory enough, so that what fills on first use
 * (OpenSSL's method cache, libc's) is there before blocks are counted. */
static void warm_up(void)
{
	static bool warm;
	if (warm)
		return;
	warm = true;
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		run_plain(&scenarios[i]);
}

static void test_one_allocation_fails(void **state)
{
	warm_up();
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		run(&scenarios[i], FAIL_ONE);
}

static void test_all_allocations_fail_from_one_on(void **state)
{
	warm_up();
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		run(&scenarios[i], FAIL_FROM);
}

int main(void)
{
	const char *setup_name = getenv("SAMLGW_TEST_SETUP");
	if (setup_name != NULL && strcmp(setup_name, "valgrind") == 0) {
		fprintf(stderr, "skipped: valgrind's allocator cannot be replaced\n");
		return 77;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_allocation_fails),
		cmocka_unit_test(test_all_allocations_fail_from_one_on),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}

#else

int main(void)
{
	fprintf(stderr, "skipped: a sanitizer's allocator cannot be replaced\n");
	return 77;
}

#endif
