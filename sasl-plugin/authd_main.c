/* samlgw-authd: token checks for software that already knows how to ask someone else.
 *
 *   samlgw-authd --config FILE [--socket PATH]          saslauthd protocol (default)
 *   samlgw-authd --config FILE --protocol ejabberd      ejabberd extauth on stdin/stdout
 *   samlgw-authd --config FILE --protocol prosody       Prosody mod_auth_external
 *
 * With systemd socket activation (LISTEN_FDS) it serves the socket it is handed.
 * Exit status: 0 stopped by SIGTERM/SIGINT or end of input, 1 failure, 64 bad usage,
 * 78 bad configuration. */
#include "authd_check.h"
#include "authd_lines.h"
#include "authd_saslauthd.h"
#include "config.h"
#include "log.h"
#include "services.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define EXIT_FAILED 1
#define EXIT_USAGE 64
#define EXIT_CONFIG 78

#define DEFAULT_CONFIG "/etc/samlgw/samlgw.conf"
#define DEFAULT_SOCKET "/run/samlgw-authd/mux"
#define DEFAULT_THREADS 16
#define MAX_THREADS 1024
#define SD_LISTEN_FDS_START 3

static const char usage_text[] =
	"usage: samlgw-authd [--config FILE] [--socket PATH] [OPTIONS]\n"
	"\n"
	"Checks samlgw tokens for other servers: the saslauthd protocol on a unix socket\n"
	"(pwcheck_method: saslauthd), or ejabberd's extauth / Prosody's mod_auth_external\n"
	"protocol on stdin and stdout.\n"
	"\n"
	"  --config FILE         configuration file (default: $SAMLGW_CONFIG or " DEFAULT_CONFIG ")\n"
	"  --socket PATH         saslauthd socket (default " DEFAULT_SOCKET "; systemd socket\n"
	"                        activation takes precedence)\n"
	"  --protocol NAME       saslauthd (default), ejabberd or prosody\n"
	"  --service NAME        the service tokens must grant, whatever the client names\n"
	"                        (default: the client's; xmpp for ejabberd and prosody)\n"
	"  --domain DOMAIN       completes user names given without a domain or realm\n"
	"  --username MODE       jid (default) or localpart: with localpart, users must belong\n"
	"                        to --domain\n"
	"  --threads N           requests served at once (default 16)\n"
	"  --user NAME           run as this user once the socket is open; required when\n"
	"                        started as root (--user root keeps root, not recommended)\n"
	"  --socket-group GROUP  the socket's group: its members (the services that check\n"
	"                        tokens) may connect; the socket is mode 0660\n"
	"  --help, --version\n";

struct args {
	const char *config, *socket, *protocol, *service, *domain, *username, *user;
	const char *socket_group;
	long long threads;
};

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "samlgw-authd: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n(samlgw-authd --help shows the usage)\n");
	va_end(ap);
	return EXIT_USAGE;
}

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option options[] = {
		{"config", required_argument, NULL, 'c'}, {"socket", required_argument, NULL, 's'},
		{"protocol", required_argument, NULL, 'p'}, {"service", required_argument, NULL, 'S'},
		{"domain", required_argument, NULL, 'd'}, {"username", required_argument, NULL, 'n'},
		{"threads", required_argument, NULL, 't'}, {"user", required_argument, NULL, 'u'},
		{"socket-group", required_argument, NULL, 'g'},
		{"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	a->threads = DEFAULT_THREADS;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 'c': a->config = optarg; break;
		case 's': a->socket = optarg; break;
		case 'p': a->protocol = optarg; break;
		case 'S': a->service = optarg; break;
		case 'd': a->domain = optarg; break;
		case 'n': a->username = optarg; break;
		case 'u': a->user = optarg; break;
		case 'g': a->socket_group = optarg; break;
		case 't':
			if (!parse_ll(optarg, 1, MAX_THREADS, &a->threads))
				return usage_error("--threads wants 1 to 1024, got '%s'", optarg);
			break;
		case 'h': fputs(usage_text, stdout); exit(0);
		case 'V': printf("samlgw-authd %s\n", SAMLGW_VERSION); exit(0);
		default:
			return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (a->config == NULL)
		a->config = getenv("SAMLGW_CONFIG") != NULL ? getenv("SAMLGW_CONFIG") : DEFAULT_CONFIG;
	return 0;
}

/* The socket systemd handed over, or -1. */
static int activated_socket(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	long long p, n;
	if (pid == NULL || fds == NULL || !parse_ll(pid, 1, 1LL << 31, &p) || p != getpid() ||
	    !parse_ll(fds, 1, 64, &n))
		return -1;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return SD_LISTEN_FDS_START;
}

/* Bind path, replacing a stale socket nobody listens on. */
static int bind_socket(const char *path, gid_t gid, const char **error_r)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		*error_r = "the socket path is too long";
		return -1;
	}
	strcpy(sa.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*error_r = "the path exists and is not a socket";
			goto fail;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
			*error_r = "another process is listening on the socket";
			goto fail;
		}
		/* Only a refused connection means nobody listens; any other failure (no
		 * permission, a full queue) may hide a live socket, which must not be taken. */
		if (errno != ECONNREFUSED) {
			*error_r = "cannot tell whether another process listens on the socket";
			goto fail;
		}
		close(fd);
		unlink(path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			*error_r = strerror(errno);
			return -1;
		}
	}
	/* 0660: only the socket's group (the services that check tokens) may connect. The
	 * mode is set through the umask so the socket never exists with a wider one. */
	mode_t old_mask = umask(0117);
	int bound = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old_mask);
	/* The group is set before listen(), so no client can connect before it applies. */
	if (bound < 0 || (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) < 0) ||
	    listen(fd, SOMAXCONN) < 0) {
		*error_r = strerror(errno);
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/* Who samlgw-authd runs as once its socket is open (--user). */
struct run_as {
	bool root;       /* started as root (real or effective uid 0) */
	bool change;     /* drop to uid/gid below */
	char name[256];
	uid_t uid;
	gid_t gid;
};

/* Decide before anything is opened. Started as root, --user is required: a daemon that
 * answers other programs over a socket must not keep root by accident. --user root is an
 * explicit choice to keep it. Without root, --user may only name the current user. */
static int plan_user(const char *user, struct run_as *r)
{
	memset(r, 0, sizeof(*r));
	r->root = getuid() == 0 || geteuid() == 0;
	if (user == NULL) {
		if (r->root) {
			fprintf(stderr,
				"samlgw-authd: refusing to run as root: give --user NAME (the socket "
				"is opened as root, then samlgw-authd runs as NAME), or start it as "
				"that user\n");
			return EXIT_USAGE;
		}
		return 0;
	}
	errno = 0;
	struct passwd *pw = getpwnam(user);
	if (pw == NULL || strlen(pw->pw_name) >= sizeof(r->name)) {
		fprintf(stderr, "samlgw-authd: --user %s: %s\n", user,
			errno != 0 ? strerror(errno) : "no such user");
		return EXIT_FAILED;
	}
	if (!r->root) {
		if (pw->pw_uid != getuid() || pw->pw_uid != geteuid()) {
			fprintf(stderr, "samlgw-authd: --user %s: only root can become another user\n",
				user);
			return EXIT_USAGE;
		}
		return 0;
	}
	strcpy(r->name, pw->pw_name);
	r->uid = pw->pw_uid;
	r->gid = pw->pw_gid;
	r->change = pw->pw_uid != 0;
	return 0;
}

/* Become the planned user: its groups, its group, then its uid, and check that none of
 * root's ids is left and that root cannot be regained. */
static int drop_privileges(const struct run_as *r, const char **error_r)
{
	if (!r->change) {
		if (r->root)
			log_event(LOG_LEVEL_WARN, "running_as_root", "note",
				  "--user root keeps every privilege; prefer an unprivileged user", NULL);
		return 0;
	}
	if (initgroups(r->name, r->gid) < 0 || setgid(r->gid) < 0 || setuid(r->uid) < 0) {
		*error_r = strerror(errno);
		return -1;
	}
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0 || ru != r->uid ||
	    eu != r->uid || su != r->uid || rg != r->gid || eg != r->gid || sg != r->gid) {
		*error_r = "the user and group ids did not all change";
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0) {
		*error_r = "root could be regained after dropping it";
		return -1;
	}
	return 0;
}

static int run_socket(const struct args *a, const struct run_as *run_as,
		      const struct authd_settings *settings)
{
	const char *error;
	bool ours = false;
	/* Blocked before the socket listens: a SIGTERM sent as soon as clients can connect
	 * waits for sigwait below (a clean stop that removes the socket) instead of killing
	 * the process. Workers inherit this mask; only the main thread takes the signals. */
	sigset_t set;
	block_stop_signals(&set);
	int fd = activated_socket();
	const char *path = a->socket != NULL ? a->socket : DEFAULT_SOCKET;
	if (fd < 0) {
		gid_t gid = (gid_t)-1;
		if (a->socket_group != NULL) {
			struct group *gr = getgrnam(a->socket_group);
			if (gr == NULL) {
				fprintf(stderr, "samlgw-authd: --socket-group %s: no such group\n",
					a->socket_group);
				return EXIT_FAILED;
			}
			gid = gr->gr_gid;
		}
		fd = bind_socket(path, gid, &error);
		if (fd < 0) {
			fprintf(stderr, "samlgw-authd: cannot listen on %s: %s\n", path, error);
			return EXIT_FAILED;
		}
		ours = true;
	}
	if (drop_privileges(run_as, &error) < 0) {
		fprintf(stderr, "samlgw-authd: cannot become user %s: %s\n", a->user, error);
		if (ours)
			unlink(path);
		close(fd);
		return EXIT_FAILED;
	}
	struct saslauthd_server *server;
	if (saslauthd_server_start(fd, settings, (unsigned)a->threads, &server, &error) < 0) {
		fprintf(stderr, "samlgw-authd: %s\n", error);
		if (ours)
			unlink(path);
		close(fd);
		return EXIT_FAILED;
	}
	log_event(LOG_LEVEL_INFO, "started", "protocol", "saslauthd", "socket",
		  ours ? path : "(systemd)", NULL);
	for (;;) {
		int sig;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_event(LOG_LEVEL_INFO, "sighup", "note",
				  "nothing to reload: restart to apply configuration changes", NULL);
			continue;
		}
		break;
	}
	saslauthd_server_stop(server);
	if (ours)
		unlink(path);
	close(fd);
	log_event(LOG_LEVEL_INFO, "stopped", NULL);
	return 0;
}

int main(int argc, char **argv)
{
	struct args a = {0};
	int ret = parse_args(argc, argv, &a);
	if (ret != 0)
		return ret;
	enum line_protocol line = LINE_EJABBERD;
	bool socket_mode = a.protocol == NULL || strcmp(a.protocol, "saslauthd") == 0;
	if (!socket_mode) {
		if (strcmp(a.protocol, "ejabberd") == 0)
			line = LINE_EJABBERD;
		else if (strcmp(a.protocol, "prosody") == 0)
			line = LINE_PROSODY;
		else
			return usage_error("--protocol wants saslauthd, ejabberd or prosody, got '%s'",
					   a.protocol);
	}
	struct authd_settings settings = {
		.service = a.service,
		.default_service = socket_mode ? NULL : "xmpp",
		.map = {.mode = USER_MODE_JID, .domain = a.domain},
	};
	const char *error;
	struct run_as run_as;
	ret = plan_user(a.user, &run_as);
	if (ret != 0)
		return ret;
	if (a.username != NULL && !user_mode_parse(a.username, &settings.map.mode))
		return usage_error("--username wants jid or localpart, got '%s'", a.username);
	if (user_map_check(&settings.map, &error) < 0)
		return usage_error("--domain: %s", error);
	if (a.service != NULL && (!service_name_valid(a.service) || strcmp(a.service, "*") == 0))
		return usage_error("--service wants one service name ([a-z0-9_.-]), got '%s'",
				   a.service);

	struct config *config;
	struct config_problems problems = {0};
	if (config_load(a.config, PROG_AUTHD, &config, &problems) < 0) {
		for (size_t i = 0; i < problems.n; i++)
			fprintf(stderr, "%s\n", problems.v[i]);
		config_problems_free(&problems);
		return EXIT_CONFIG;
	}
	enum log_level level = LOG_LEVEL_INFO;
	log_level_parse(config->log.level, &level);
	log_setup("samlgw-authd", level, LOG_TO_STDERR | (config->log.syslog ? LOG_TO_SYSLOG : 0));
	settings.store.url = config->redis.url;
	settings.store.prefix = config->redis.prefix;
	settings.store.timeout_ms = (int)config->redis.timeout_ms;
	/* A client that goes away must not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);

	if (socket_mode) {
		ret = run_socket(&a, &run_as, &settings);
	} else if (drop_privileges(&run_as, &error) < 0) {
		fprintf(stderr, "samlgw-authd: cannot become user %s: %s\n", a.user, error);
		ret = EXIT_FAILED;
	} else {
		ret = line_protocol_run(line, STDIN_FILENO, STDOUT_FILENO, &settings, &error) < 0
			      ? EXIT_FAILED
			      : 0;
		if (ret != 0)
			log_event(LOG_LEVEL_ERROR, "stopped", "protocol", a.protocol, "reason", error,
				  NULL);
	}
	config_free(config);
	return ret;
}
