/* Fuzz target: the configuration parser (inih plus the settings table). */
#include <stdint.h>
#include <stdlib.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 64 * 1024)
		return 0;
	static const unsigned progs[] = {PROG_TOKEN, PROG_ALL};
	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
		struct config *cfg = NULL;
		struct config_problems pr = {0};
		if (config_parse("fuzz.conf", "/nonexistent", (const char *)data, size, progs[i], &cfg,
				 &pr) == 0) {
			if (cfg->n_domains > 0)
				(void)config_domain_find(cfg, cfg->domains[0].name);
			config_free(cfg);
		} else if (pr.n == 0) {
			abort(); /* a refusal always says why */
		}
		config_problems_free(&pr);
	}
	return 0;
}
