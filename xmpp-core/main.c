/* xmpp-core: the built-in XMPP server. Wires configuration, logging, TLS, Redis, the
 * listeners and signals together; protocol work happens in the other files.
 *
 * Exit status: 0 after a clean stop, 1 on --check problems or when it cannot start,
 * 64 on bad usage. */
#include "xmpp.h"
#include "server.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#define DEFAULT_CONFIG "/etc/samlgw/samlgw.conf"
#define EXIT_USAGE 64

static const char usage_text[] =
	"usage: xmpp-core [--config FILE] [--check]\n"
	"\n"
	"  --config FILE  configuration file (default: $SAMLGW_CONFIG or " DEFAULT_CONFIG ")\n"
	"  --check        validate the configuration file, print every problem, exit 1 on any\n"
	"  --help, --version\n"
	"\n"
	"Signals: SIGTERM and SIGINT stop cleanly (system-shutdown); SIGHUP re-reads the\n"
	"certificates.\n";

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	log_event(LOG_LEVEL_INFO, "stopping", "signal", sig == SIGINT ? "INT" : "TERM", NULL);
	server_stop(arg);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	const char *error;
	if (tls_load(arg, &error) < 0)
		log_event(LOG_LEVEL_ERROR, "tls_reload_failed", "why", error, NULL);
	else
		log_event(LOG_LEVEL_INFO, "tls_reloaded", NULL);
}

static int drop_privileges(const char *user, const char **error_r)
{
	static char msg[200];
	if (user == NULL || geteuid() != 0)
		return 0;
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		snprintf(msg, sizeof(msg), "no such user: %s", user);
		*error_r = msg;
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		snprintf(msg, sizeof(msg), "cannot switch to user %s: %s", user, strerror(errno));
		*error_r = msg;
		return -1;
	}
	if (setuid(0) == 0) {
		*error_r = "could regain root after dropping privileges";
		return -1;
	}
	return 0;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int main(int argc, char **argv)
{
	const char *config_path = getenv("SAMLGW_CONFIG");
	bool check = false;
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'c': config_path = optarg; break;
		case 'C': check = true; break;
		case 'h': fputs(usage_text, stdout); return 0;
		case 'V': printf("xmpp-core %s\n", SAMLGW_VERSION); return 0;
		default: fputs(usage_text, stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "xmpp-core: unexpected argument '%s'\n%s", argv[optind], usage_text);
		return EXIT_USAGE;
	}
	if (config_path == NULL)
		config_path = DEFAULT_CONFIG;

	struct config *cfg;
	struct config_problems problems = {0};
	if (config_load(config_path, PROG_XMPP, &cfg, &problems) < 0) {
		for (size_t i = 0; i < problems.n; i++)
			fprintf(stderr, "%s\n", problems.v[i]);
		if (!check)
			fprintf(stderr, "xmpp-core: %zu problem%s in %s\n", problems.n,
				problems.n == 1 ? "" : "s", config_path);
		config_problems_free(&problems);
		return 1;
	}
	if (check) {
		printf("%s: no problems\n", config_path);
		config_free(cfg);
		return 0;
	}
	enum log_level level = LOG_LEVEL_INFO;
	log_level_parse(cfg->log.level, &level);
	log_setup("xmpp-core", level, LOG_TO_STDERR | (cfg->log.syslog ? LOG_TO_SYSLOG : 0));
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();

	int ret = 1;
	const char *error = NULL;
	struct event *sigs[3] = {NULL, NULL, NULL};
	struct event_base *base = event_base_new();
	if (base == NULL) {
		log_event(LOG_LEVEL_ERROR, "start_failed", "why", "cannot create the event loop", NULL);
		config_free(cfg);
		return 1;
	}
	struct server *srv = server_new(base, cfg);
	/* Taken before the ports listen: a SIGTERM sent as soon as clients can connect stops
	 * the server cleanly once the loop runs, instead of killing it. */
	sigs[0] = evsignal_new(base, SIGTERM, on_stop, srv);
	sigs[1] = evsignal_new(base, SIGINT, on_stop, srv);
	sigs[2] = evsignal_new(base, SIGHUP, on_hup, srv);
	for (int i = 0; i < 3; i++)
		event_add(sigs[i], NULL);
	if (tls_load(srv, &error) < 0 || server_listen(srv, &error) < 0 ||
	    drop_privileges(cfg->xmpp.user, &error) < 0)
		goto out;
	srv->redis = xredis_new(srv, &error);
	if (srv->redis == NULL)
		goto out;
	log_event(LOG_LEVEL_INFO, "started", "version", SAMLGW_VERSION, NULL);
	event_base_dispatch(base);
	log_event(LOG_LEVEL_INFO, "stopped", NULL);
	ret = 0;
out:
	if (error != NULL)
		log_event(LOG_LEVEL_ERROR, "start_failed", "why", error, NULL);
	for (int i = 0; i < 3; i++)
		if (sigs[i] != NULL)
			event_free(sigs[i]);
	server_free(srv);
	event_base_free(base);
	config_free(cfg);
	return ret;
}
