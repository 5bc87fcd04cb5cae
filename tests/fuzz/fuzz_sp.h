/* The fixed SP of the SAML fuzz targets (fuzz_acs.c, fuzz_slo.c): tests/fuzz/acs/'s
 * samlgw.conf, keys and IdP metadata, loaded once per process (fuzz_sp()) and freed at
 * exit. Included by one target's .c file each. */
#ifndef SAMLGW_FUZZ_SP_H
#define SAMLGW_FUZZ_SP_H

#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "sp.h"

#ifndef FUZZ_ACS_DATA
#error "FUZZ_ACS_DATA (the folder with samlgw.conf) must be defined"
#endif

#define FUZZ_NOW ((time_t)1893456060) /* 2030-01-01T00:01:00Z */

static struct config *fuzz_cfg;
static struct sp *fuzz_the_sp;

static void fuzz_sp_teardown(void)
{
	sp_unref(fuzz_the_sp);
	config_free(fuzz_cfg);
	sp_library_deinit();
}

static struct sp *fuzz_sp(void)
{
	if (fuzz_the_sp != NULL)
		return fuzz_the_sp;
	const char *error, *setting;
	struct config_problems pr = {0};
	if (config_load(FUZZ_ACS_DATA "/samlgw.conf", PROG_SAMLGW, &fuzz_cfg, &pr) < 0) {
		for (size_t i = 0; i < pr.n; i++)
			fprintf(stderr, "%s\n", pr.v[i]);
		abort();
	}
	if (sp_library_init(&error) < 0 || sp_load(fuzz_cfg, &fuzz_the_sp, &setting, &error) < 0) {
		fprintf(stderr, "fuzz: cannot set up the SP: %s\n", error);
		abort();
	}
	atexit(fuzz_sp_teardown);
	return fuzz_the_sp;
}

#endif
