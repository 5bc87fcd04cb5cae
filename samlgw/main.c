/* samlgw: SAML 2.0 web SSO to short-lived tokens for XMPP and SASL services.
 * Loads and checks the configuration, the SP (keys, metadata, lasso) and the templates,
 * then serves HTTP until SIGTERM/SIGINT; SIGHUP re-reads certificates and metadata.
 *
 * --print-metadata prints this SP's metadata instead, as GET /saml/metadata serves it.
 *
 * Exit status: 0 stopped cleanly (or --check found no problem, or the metadata was
 * printed), 1 --check found problems, 64 bad usage, 78 bad configuration, 69 cannot serve
 * (listen failed), 74 the metadata could not be written. */
#include "app.h"
#include "config.h"
#include "config_table.h"
#include "http.h"
#include "log.h"
#include "metadata_refresh.h"
#include "sp.h"
#include "sp_metadata.h"
#include "template.h"
#include "util.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_CONFIG "/etc/samlgw/samlgw.conf"
#define EXIT_USAGE 64
#define EXIT_CONFIG 78
#define EXIT_UNAVAILABLE 69
#define EXIT_IOERR 74

static const char usage_text[] =
	"usage: samlgw [--config FILE] [--check | --print-metadata]\n"
	"\n"
	"  --config FILE  configuration file (default: $SAMLGW_CONFIG or " DEFAULT_CONFIG ")\n"
	"  --check        validate the configuration, the SP key and certificate, the IdP\n"
	"                 metadata and the templates; print every problem, exit 1 on any\n"
	"  --print-metadata  print this SP's metadata (what GET /saml/metadata serves, for\n"
	"                 registering with a federation) and exit; needs no Redis\n"
	"  --help, --version\n";

/* The line a setting was given on, for FILE:LINE messages (the section's default: 1). */
static unsigned setting_line(const struct config *cfg, const char *dotted)
{
	for (size_t i = 0; i < config_settings_count; i++) {
		const struct setting *s = &config_settings[i];
		size_t sl = strlen(s->section);
		if (strncmp(dotted, s->section, sl) == 0 && dotted[sl] == '.' &&
		    strcmp(dotted + sl + 1, s->key) == 0)
			return cfg->set_line[i] != 0 ? cfg->set_line[i] : 1;
	}
	return 1;
}

/* --print-metadata: the document GET /saml/metadata serves, built as sp_load builds it
 * (sp_metadata_build over the configuration and the certificate file), on stdout. Needs
 * neither Redis nor lasso nor the IdP metadata's contents. */
static int print_metadata(const struct config *cfg, const char *config_path)
{
	char *cert = NULL, *xml = NULL;
	size_t len;
	const char *error;
	if (read_file_capped(cfg->saml.cert, 1024 * 1024, &cert, &len, &error) < 0) {
		fprintf(stderr, "%s:%u: [saml.cert] cannot read %s: %s\n", config_path,
			setting_line(cfg, "saml.cert"), cfg->saml.cert, error);
		return EXIT_CONFIG;
	}
	if (sp_metadata_build(cfg, cert, &xml, &error) < 0) {
		fprintf(stderr, "%s:%u: [saml.cert] %s: %s\n", config_path,
			setting_line(cfg, "saml.cert"), cfg->saml.cert, error);
		free(cert);
		return EXIT_CONFIG;
	}
	free(cert);
	size_t n = strlen(xml);
	bool ok = fwrite(xml, 1, n, stdout) == n && fflush(stdout) == 0;
	free(xml);
	if (!ok) {
		fprintf(stderr, "samlgw: cannot write the metadata to stdout\n");
		return EXIT_IOERR;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
		{"print-metadata", no_argument, NULL, 'M'}, {NULL, 0, NULL, 0},
	};
	const char *config_path = getenv("SAMLGW_CONFIG") ? getenv("SAMLGW_CONFIG") : DEFAULT_CONFIG;
	bool check = false, metadata = false;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'M':
			metadata = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("samlgw %s\n", SAMLGW_VERSION);
			return 0;
		case ':':
			fprintf(stderr, "samlgw: %s needs a value\n", argv[optind - 1]);
			return EXIT_USAGE;
		default:
			fprintf(stderr, "samlgw: unknown option %s\n(samlgw --help shows the usage)\n",
				argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "samlgw: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (check && metadata) {
		fprintf(stderr, "samlgw: --check and --print-metadata do not go together\n");
		return EXIT_USAGE;
	}
	/* Before anything else, --check included: lasso must never run with its checks off. */
	const char *env_problem = sp_environment_problem();
	if (env_problem != NULL) {
		fprintf(stderr, "samlgw: %s; refusing to start\n", env_problem);
		return check ? 1 : EXIT_CONFIG;
	}

	struct config *cfg;
	struct config_problems problems = {0};
	if (config_load(config_path, PROG_SAMLGW, &cfg, &problems) < 0) {
		for (size_t i = 0; i < problems.n; i++)
			fprintf(stderr, "%s\n", problems.v[i]);
		fprintf(stderr, "samlgw: %zu problem%s in %s\n", problems.n,
			problems.n == 1 ? "" : "s", config_path);
		config_problems_free(&problems);
		return check ? 1 : EXIT_CONFIG;
	}
	enum log_level level = LOG_LEVEL_INFO;
	log_level_parse(cfg->log.level, &level);
	log_setup("samlgw", level, LOG_TO_STDERR | (cfg->log.syslog ? LOG_TO_SYSLOG : 0));
	if (metadata) {
		int status = print_metadata(cfg, config_path);
		config_free(cfg);
		return status;
	}

	int ret = EXIT_CONFIG;
	const char *error, *setting;
	struct sp *sp = NULL;
	struct templates *templates = NULL;
	struct http_server *server = NULL;
	struct metadata_refresh *refresh = NULL;
	struct app app;
	bool app_ready = false;
	unsigned problems_n = 0;
	if (sp_library_init(&error) < 0) {
		fprintf(stderr, "samlgw: %s\n", error);
		goto out;
	}
	if (metadata_refresh_new(cfg, &refresh, &error) < 0) {
		fprintf(stderr, "samlgw: %s\n", error);
		goto out;
	}
	/* saml.metadata_url: a missing or stale idp_metadata is fetched first (not by --check) */
	if (!check)
		sp = metadata_refresh_at_start(refresh);
	if (sp == NULL && sp_load(cfg, &sp, &setting, &error) < 0) {
		fprintf(stderr, "%s:%u: [%s] %s\n", config_path, setting_line(cfg, setting), setting,
			error);
		problems_n++;
	}
	if (templates_load_pages(cfg->web.templates, app_pages, app_pages_count, &templates,
				 &error) < 0) {
		fprintf(stderr, "%s:%u: [web] templates: %s\n", config_path,
			setting_line(cfg, "web.templates"), error);
		problems_n++;
	}
	if (check) {
		if (problems_n == 0)
			printf("%s: no problems\n", config_path);
		else
			fprintf(stderr, "samlgw: %u problem%s in %s\n", problems_n,
				problems_n == 1 ? "" : "s", config_path);
		ret = problems_n == 0 ? 0 : 1;
		goto out;
	}
	if (problems_n > 0)
		goto out;

	/* Signals are taken by sigwait() in this thread only; the server's threads inherit
	 * the mask. */
	sigset_t sigs;
	block_stop_signals(&sigs);
	signal(SIGPIPE, SIG_IGN);

	if (app_init(&app, cfg, sp, templates, &error) < 0) {
		fprintf(stderr, "samlgw: %s\n", error);
		goto out;
	}
	sp = NULL; /* the app owns it */
	app_ready = true;
	const char *path = strstr(cfg->http.public_url, "://") + 3;
	path = strchr(path, '/') != NULL ? strchr(path, '/') : "";
	if (http_start(cfg->http.listen, (unsigned)cfg->http.threads, (unsigned)cfg->http.workers,
		       path, web_handle, web_done, &app, &server, &error) < 0) {
		fprintf(stderr, "samlgw: %s: %s\n", cfg->http.listen, error);
		log_event(LOG_LEVEL_ERROR, "start_failed", "listen", cfg->http.listen, "reason",
			  error, NULL);
		ret = EXIT_UNAVAILABLE;
		goto out;
	}
	char nidps[24], nexpired[24];
	snprintf(nidps, sizeof(nidps), "%zu", app.sp->idps->n);
	snprintf(nexpired, sizeof(nexpired), "%zu", app.sp->idps->n_expired);
	log_event(LOG_LEVEL_INFO, "started", "version", SAMLGW_VERSION, "listen", cfg->http.listen,
		  "public_url", cfg->http.public_url, "idps", nidps, "expired_entries", nexpired,
		  NULL);
	if (metadata_refresh_start(refresh, &app, &error) < 0) {
		log_event(LOG_LEVEL_ERROR, "start_failed", "reason", error, NULL);
		ret = EXIT_UNAVAILABLE;
		goto out;
	}
	for (;;) {
		int sig;
		if (sigwait(&sigs, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			struct sp *fresh;
			metadata_refresh_lock(refresh); /* no fetched copy swapped in meanwhile */
			if (sp_load(cfg, &fresh, &setting, &error) < 0) {
				metadata_refresh_unlock(refresh);
				log_event(LOG_LEVEL_ERROR, "reload_failed", "setting", setting,
					  "reason", error, NULL);
				metadata_refresh_wake(refresh); /* fetch now (saml.metadata_url) */
				continue;
			}
			snprintf(nidps, sizeof(nidps), "%zu", fresh->idps->n);
			snprintf(nexpired, sizeof(nexpired), "%zu", fresh->idps->n_expired);
			app_swap_sp(&app, fresh);
			metadata_refresh_unlock(refresh);
			metadata_refresh_wake(refresh); /* fetch now (saml.metadata_url) */
			log_event(LOG_LEVEL_INFO, "reloaded", "idps", nidps, "expired_entries",
				  nexpired, NULL);
			continue;
		}
		log_event(LOG_LEVEL_INFO, "stopping", "signal", sig == SIGTERM ? "TERM" : "INT",
			  NULL);
		break;
	}
	ret = 0;
out:
	http_stop(server);
	metadata_refresh_free(refresh); /* before the app it swaps into */
	if (app_ready)
		app_deinit(&app);
	sp_unref(sp);
	templates_free(templates);
	sp_library_deinit();
	config_free(cfg);
	return ret;
}
