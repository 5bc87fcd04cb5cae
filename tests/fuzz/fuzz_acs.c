/* Fuzz target: the ACS's checks (acs_check_xml) on a decoded SAMLResponse, and, when the
 * input holds no '<', on it as the base64 form value (acs_check). The SP and its one IdP
 * come from tests/fuzz/acs/ (keys, IdP metadata, samlgw.conf), loaded once; the clock is
 * fixed at 2030-01-01T00:01:00Z, when the seed corpus's valid Responses are valid. No
 * network, no Redis. FUZZ_ACS_VERBOSE=1 prints each input's outcome on stderr. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acs.h"
#include "config.h"
#include "sp.h"

#ifndef FUZZ_ACS_DATA
#error "FUZZ_ACS_DATA (the folder with samlgw.conf) must be defined"
#endif

#define FUZZ_NOW ((time_t)1893456060) /* 2030-01-01T00:01:00Z */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct config *cfg;
static struct sp *sp;
static bool verbose;

static void teardown(void)
{
	sp_unref(sp);
	config_free(cfg);
	sp_library_deinit();
}

static void setup(void)
{
	const char *error, *setting;
	struct config_problems pr = {0};
	if (config_load(FUZZ_ACS_DATA "/samlgw.conf", PROG_SAMLGW, &cfg, &pr) < 0) {
		for (size_t i = 0; i < pr.n; i++)
			fprintf(stderr, "%s\n", pr.v[i]);
		abort();
	}
	if (sp_library_init(&error) < 0 || sp_load(cfg, &sp, &setting, &error) < 0) {
		fprintf(stderr, "fuzz_acs: cannot set up the SP: %s\n", error);
		abort();
	}
	verbose = getenv("FUZZ_ACS_VERBOSE") != NULL;
	atexit(teardown);
}

static void run(bool b64, const uint8_t *data, size_t size)
{
	struct acs_checked ch = {0};
	enum refusal reason = REFUSE_COUNT;
	const char *error = NULL;
	char *issuer = NULL;
	int r = b64 ? acs_check(sp, (const char *)data, size, FUZZ_NOW, &ch, &reason, &error,
				&issuer)
		    : acs_check_xml(sp, (const char *)data, size, FUZZ_NOW, &ch, &reason, &error,
				    &issuer);
	if (r == 0) {
		/* Accepted: everything the ACS goes on with must be there. */
		if (ch.id.jid == NULL || ch.id.domain == NULL || ch.issuer == NULL ||
		    ch.assertion_id == NULL || ch.replay_until <= FUZZ_NOW)
			abort();
		if (verbose)
			fprintf(stderr, "accepted jid=%s\n", ch.id.jid);
		acs_checked_clear(&ch);
	} else {
		/* A refusal always says why. */
		if (error == NULL || reason >= REFUSE_COUNT)
			abort();
		if (verbose)
			fprintf(stderr, "refused reason=%s detail=%s\n", refusal_name(reason), error);
	}
	free(issuer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (sp == NULL)
		setup();
	run(false, data, size);
	if (memchr(data, '<', size) == NULL)
		run(true, data, size);
	return 0;
}
