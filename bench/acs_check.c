/* acs-check: acs_check_xml alone in a loop (no HTTP, no Redis), for profiling the ACS's
 * checks with perf. Every FILE (a decoded SAMLResponse) must be accepted at --now.
 *
 * usage: acs-check --config FILE [--now UNIX] [--seconds S] FILE...
 * Prints, per file, the calls made and the CPU time per call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acs.h"
#include "config.h"
#include "sp.h"
#include "util.h"

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
	fprintf(stderr, "usage: acs-check --config FILE [--now UNIX] [--seconds S] FILE...\n");
	return 64;
}

int main(int argc, char **argv)
{
	const char *conf = NULL;
	long long now = (long long)time(NULL);
	double seconds = 3;
	int i = 1;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		if (i + 1 >= argc)
			return usage();
		if (strcmp(argv[i], "--config") == 0)
			conf = argv[i + 1];
		else if (strcmp(argv[i], "--now") == 0)
			now = atoll(argv[i + 1]);
		else if (strcmp(argv[i], "--seconds") == 0)
			seconds = atof(argv[i + 1]);
		else
			return usage();
	}
	if (conf == NULL || i == argc || seconds <= 0)
		return usage();
	struct config *cfg;
	struct config_problems pr = {0};
	if (config_load(conf, PROG_SAMLGW, &cfg, &pr) < 0) {
		for (size_t p = 0; p < pr.n; p++)
			fprintf(stderr, "%s\n", pr.v[p]);
		return 2;
	}
	struct sp *sp;
	const char *error, *setting;
	if (sp_library_init(&error) < 0 || sp_load(cfg, &sp, &setting, &error) < 0) {
		fprintf(stderr, "acs-check: %s\n", error);
		return 2;
	}
	int ret = 0;
	for (; i < argc; i++) {
		char *xml;
		size_t len;
		if (read_file_capped(argv[i], ACS_RESPONSE_MAX, &xml, &len, &error) < 0) {
			fprintf(stderr, "acs-check: %s: %s\n", argv[i], error);
			ret = 2;
			break;
		}
		long calls = 0;
		double start = cpu_now(), used = 0;
		while (used < seconds) {
			struct acs_checked ch = {0};
			enum refusal reason;
			char *issuer = NULL;
			if (acs_check_xml(sp, xml, len, (time_t)now, &ch, &reason, &error, &issuer) < 0) {
				fprintf(stderr, "acs-check: %s refused: %s: %s\n", argv[i],
					refusal_name(reason), error);
				free(issuer);
				ret = 1;
				break;
			}
			acs_checked_clear(&ch);
			calls++;
			if (calls % 64 == 0)
				used = cpu_now() - start;
		}
		used = cpu_now() - start;
		free(xml);
		if (ret != 0)
			break;
		printf("%s: %ld calls, %.1f us CPU each\n", argv[i], calls, used * 1e6 / (double)calls);
	}
	sp_unref(sp);
	config_free(cfg);
	sp_library_deinit();
	return ret;
}
