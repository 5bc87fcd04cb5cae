/* Fuzz target: samlgw-authd's PLAIN-style credential checks from request bytes to the
 * token store: ejabberd extauth (u16 length + "auth:USER:SERVER:PASS"), Prosody
 * mod_auth_external (lines), and a parsed saslauthd request (login, password, service,
 * realm), each through authd_check / authd_user_known: service name, user name mapping
 * (user_map.c) and the token shape check. The store's socket does not exist, so nothing
 * can ever be accepted: every answer must be "no" (fail closed).
 *
 * Byte 0: bits 0-1 the protocol (0 ejabberd, 1 Prosody, 2 and 3 saslauthd, 3 with
 * --service imap), bits 2-3 the user map (jid; jid with domain example.org; localpart
 * of example.org; jid restricted to example.org). The rest is what the client sends. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "authd_check.h"
#include "authd_lines.h"
#include "log.h"
#include "saslauthd_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int in_fd = -1, out_fd = -1;

static void setup(void)
{
	if (in_fd >= 0)
		return;
	log_setup("fuzz", LOG_LEVEL_ERROR, 0);
	in_fd = memfd_create("fuzz-authd-in", 0);
	out_fd = memfd_create("fuzz-authd-out", 0);
	if (in_fd < 0 || out_fd < 0)
		abort();
}

static void run_lines(enum line_protocol protocol, const struct authd_settings *settings,
		      const uint8_t *data, size_t size)
{
	if (ftruncate(in_fd, 0) < 0 || ftruncate(out_fd, 0) < 0 ||
	    pwrite(in_fd, data, size, 0) != (ssize_t)size || lseek(in_fd, 0, SEEK_SET) != 0 ||
	    lseek(out_fd, 0, SEEK_SET) != 0)
		abort();
	const char *error = NULL;
	if (line_protocol_run(protocol, in_fd, out_fd, settings, &error) < 0 && error == NULL)
		abort();
	/* Every answer says no. */
	off_t n = lseek(out_fd, 0, SEEK_CUR);
	uint8_t *out = malloc(n > 0 ? (size_t)n : 1);
	if (n < 0 || pread(out_fd, out, (size_t)n, 0) != n)
		abort();
	size_t unit = protocol == LINE_EJABBERD ? 4 : 2;
	if ((size_t)n % unit != 0)
		abort();
	for (off_t i = 0; i < n; i += (off_t)unit) {
		if (protocol == LINE_EJABBERD ? memcmp(out + i, "\0\2\0\0", 4) != 0
					      : memcmp(out + i, "0\n", 2) != 0)
			abort();
	}
	free(out);
}

static void run_saslauthd(const struct authd_settings *settings, const uint8_t *data,
			  size_t size)
{
	struct saslauthd_request req;
	const char *error = NULL;
	if (saslauthd_request_parse(data, size, &req, &error) != SASLAUTHD_COMPLETE)
		return;
	struct token_store *store;
	if (store_open(&settings->store, &store, &error) < 0)
		abort();
	char *jid = NULL;
	enum store_result r = authd_check(store, settings, req.login, req.realm, req.service,
					  req.password, &jid, &error);
	if (r == STORE_OK || error == NULL)
		abort();
	free(jid);
	r = authd_user_known(store, settings, req.login, req.realm, &error);
	if (r == STORE_OK || error == NULL)
		abort();
	store_free(store);
	saslauthd_request_clear(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 128 * 1024)
		return 0;
	setup();
	unsigned mode = data[0];
	struct authd_settings settings = {
		.store = {.url = "unix:///nonexistent/samlgw-fuzz.sock", .prefix = "samlgw:",
			  .timeout_ms = 100},
		.map = {.mode = (mode >> 2 & 3) == 2 ? USER_MODE_LOCALPART : USER_MODE_JID,
			.domain = (mode >> 2 & 3) != 0 ? "example.org" : NULL,
			.restrict_domain = (mode >> 2 & 3) == 3},
		.service = (mode & 3) == 3 ? "imap" : NULL,
		.default_service = (mode & 3) < 2 ? "xmpp" : NULL,
	};
	const char *error;
	if (user_map_check(&settings.map, &error) < 0)
		abort();
	switch (mode & 3) {
	case 0:
		run_lines(LINE_EJABBERD, &settings, data + 1, size - 1);
		break;
	case 1:
		run_lines(LINE_PROSODY, &settings, data + 1, size - 1);
		break;
	default:
		run_saslauthd(&settings, data + 1, size - 1);
		break;
	}
	return 0;
}
