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
#include "fuzz_sp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sp *sp;
static bool verbose;

static void setup(void)
{
	sp = fuzz_sp();
	verbose = getenv("FUZZ_ACS_VERBOSE") != NULL;
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
