/* samlgw-token: the admin command line over the token store (see docs/samlgw-token.md).
 *
 * Exit status: 0 done (or: the token is valid), 1 refused (or: the token is invalid),
 * 2 the store is unreachable, 64 bad usage, 78 bad configuration. */
#include "config.h"
#include "jid.h"
#include "log.h"
#include "services.h"
#include "store.h"
#include "token.h"
#include "util.h"

#include <getopt.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define EXIT_REFUSED 1
#define EXIT_UNAVAILABLE 2
#define EXIT_USAGE 64
#define EXIT_CONFIG 78

#define DEFAULT_CONFIG "/etc/samlgw/samlgw.conf"
/* Standard input holds one token; anything longer than this is not one. */
#define STDIN_MAX 4096

static const char usage_text[] =
	"usage: samlgw-token [--config FILE] COMMAND [OPTIONS]\n"
	"\n"
	"  issue  --jid JID [--ttl SECONDS] [--label TEXT] [--service LIST] [--uses N]\n"
	"         make a token; prints it, and nothing else, on stdout\n"
	"  verify --jid JID [--service NAME] < token\n"
	"         exit 0 valid, 1 invalid (reason on stderr), 2 store unreachable\n"
	"  list   --jid JID\n"
	"         one line per live token: id, label, services, issued, expires (tab-separated)\n"
	"  revoke --jid JID (--id ID | --all)\n"
	"  check  validate the configuration file, print every problem, exit 1 on any\n"
	"\n"
	"  --config FILE  configuration file (default: $SAMLGW_CONFIG or " DEFAULT_CONFIG ")\n"
	"  --check        same as the check command\n"
	"  --help, --version\n";

struct args {
	const char *config;
	const char *command;
	const char *jid;
	const char *ttl;
	const char *label;
	const char *service;
	const char *uses;
	const char *id;
	bool all;
	unsigned given; /* bits of options given, to refuse ones a command does not take */
};

enum opt_bit {
	OPT_JID = 1 << 0,
	OPT_TTL = 1 << 1,
	OPT_LABEL = 1 << 2,
	OPT_SERVICE = 1 << 3,
	OPT_USES = 1 << 4,
	OPT_ID = 1 << 5,
	OPT_ALL = 1 << 6,
};

static const char *const opt_names[] = {"--jid", "--ttl", "--label", "--service",
					"--uses", "--id", "--all"};

static void fail_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail_msg(const char *fmt, ...)
{
	va_list ap;
	fputs("samlgw-token: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("samlgw-token: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(samlgw-token --help shows the usage)\n", stderr);
	return EXIT_USAGE;
}

static void format_time(long long t, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'C'},
		{"jid", required_argument, NULL, 'j'},    {"ttl", required_argument, NULL, 't'},
		{"label", required_argument, NULL, 'l'},  {"service", required_argument, NULL, 's'},
		{"uses", required_argument, NULL, 'u'},   {"id", required_argument, NULL, 'i'},
		{"all", no_argument, NULL, 'a'},          {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},      {NULL, 0, NULL, 0},
	};
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			a->config = optarg;
			break;
		case 'C':
			a->command = "check";
			break;
		case 'j':
			a->jid = optarg;
			a->given |= OPT_JID;
			break;
		case 't':
			a->ttl = optarg;
			a->given |= OPT_TTL;
			break;
		case 'l':
			a->label = optarg;
			a->given |= OPT_LABEL;
			break;
		case 's':
			a->service = optarg;
			a->given |= OPT_SERVICE;
			break;
		case 'u':
			a->uses = optarg;
			a->given |= OPT_USES;
			break;
		case 'i':
			a->id = optarg;
			a->given |= OPT_ID;
			break;
		case 'a':
			a->all = true;
			a->given |= OPT_ALL;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		case 'V':
			printf("samlgw-token %s\n", SAMLGW_VERSION);
			exit(0);
		case ':':
			return usage_error("%s needs a value", argv[optind - 1]);
		default:
			return usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc) {
		if (a->command != NULL && strcmp(a->command, "check") == 0)
			return usage_error("--check takes no command, got '%s'", argv[optind]);
		a->command = argv[optind++];
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (a->command == NULL)
		return usage_error("%s", "no command given (issue, verify, list, revoke, check)");
	if (a->config == NULL)
		a->config = getenv("SAMLGW_CONFIG") != NULL ? getenv("SAMLGW_CONFIG")
							    : DEFAULT_CONFIG;
	return 0;
}

/* Refuse options the command does not take; returns 0 or EXIT_USAGE. */
static int allow_only(const struct args *a, unsigned allowed)
{
	unsigned extra = a->given & ~allowed;
	for (size_t i = 0; i < ARRAY_SIZE(opt_names); i++) {
		if (extra & (1u << i)) {
			fail_msg("%s does not take %s", a->command, opt_names[i]);
			return EXIT_USAGE;
		}
	}
	return 0;
}

static int exit_for(enum store_result r)
{
	return r == STORE_OK ? 0 : r == STORE_INVALID ? EXIT_REFUSED : EXIT_UNAVAILABLE;
}

static int need_jid(const struct args *a, char **jid_r)
{
	const char *error;
	if (a->jid == NULL) {
		fail_msg("%s needs --jid JID", a->command);
		return EXIT_USAGE;
	}
	if (jid_bare_normalize(a->jid, jid_r, &error) < 0) {
		fail_msg("--jid %s: %s", a->jid, error);
		return EXIT_USAGE;
	}
	return 0;
}

static int cmd_issue(const struct args *a, const struct config *cfg, struct token_store *store,
		     const char *jid)
{
	struct store_issue_request req = {
		.jid = jid,
		.ttl = cfg->token.default_ttl,
		.label = a->label,
		.max_per_user = cfg->token.max_per_user,
	};
	const char *error;
	long long v;
	if (a->ttl != NULL) {
		if (!parse_duration(a->ttl, &v) || v < 1 || v > cfg->token.max_ttl) {
			fail_msg("--ttl must be from 1 second to %lld (token.max_ttl); a number of "
				 "seconds, or with s, m, h, d or w",
				 cfg->token.max_ttl);
			return EXIT_USAGE;
		}
		req.ttl = v;
	}
	if (a->uses != NULL) {
		if (!parse_ll(a->uses, 1, TOKEN_MAX_USES, &v)) {
			fail_msg("--uses must be a number from 1 to %d", TOKEN_MAX_USES);
			return EXIT_USAGE;
		}
		req.max_uses = v;
	}
	if (a->label != NULL &&
	    (strlen(a->label) > TOKEN_LABEL_MAX || !utf8_printable(a->label, strlen(a->label)))) {
		fail_msg("--label must be at most %d bytes of printable text", TOKEN_LABEL_MAX);
		return EXIT_USAGE;
	}
	char *services;
	if (services_normalize(a->service != NULL ? a->service : cfg->token.services, &services,
			       &error) < 0) {
		fail_msg("--service: %s", error);
		return EXIT_USAGE;
	}
	req.services = services;
	char token[TOKEN_LEN + 1];
	struct token_info info;
	enum store_result r = store_issue(store, &req, token, &info, &error);
	free(services);
	if (r != STORE_OK) {
		fail_msg("cannot issue a token for %s: %s", jid, error);
		log_event(LOG_LEVEL_WARN, "token_issue_failed", "jid", jid, "reason", error, NULL);
		return exit_for(r);
	}
	int ok = printf("%s\n", token) > 0 && fflush(stdout) == 0;
	secret_wipe(token, sizeof(token));
	char ttl[24];
	snprintf(ttl, sizeof(ttl), "%lld", req.ttl);
	log_event(LOG_LEVEL_INFO, "token_issued", "jid", jid, "id", info.id, "services",
		  info.services, "ttl", ttl, "label", info.label, "via", "samlgw-token", NULL);
	token_info_clear(&info);
	if (!ok) {
		fail_msg("cannot write the token to standard output");
		return EXIT_REFUSED;
	}
	return 0;
}

/* Read the first line of standard input into buf. On a terminal, prompt and do not echo.
 * Returns -1 when the line does not fit. */
static int read_token_line(char *buf, size_t size)
{
	struct termios saved, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved) == 0;
	if (tty) {
		fputs("token: ", stderr);
		quiet = saved;
		quiet.c_lflag &= (tcflag_t)~ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	}
	bool ok = true;
	if (fgets(buf, (int)size, stdin) == NULL)
		buf[0] = '\0';
	else if (strchr(buf, '\n') == NULL && strlen(buf) == size - 1)
		ok = false;
	if (tty) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
		fputc('\n', stderr);
	}
	return ok ? 0 : -1;
}

static int cmd_verify(const struct args *a, const struct config *cfg, struct token_store *store,
		      const char *jid)
{
	char service[SERVICE_NAME_MAX + 1];
	if (a->service != NULL) {
		if (!service_name_valid(a->service) || strcmp(a->service, "*") == 0) {
			fail_msg("--service must be one service name (a-z 0-9 _ . -)");
			return EXIT_USAGE;
		}
		snprintf(service, sizeof(service), "%s", a->service);
	} else {
		/* The first of token.services: the service this deployment is mostly for. With
		 * "*" (all services, canonical form of any list that holds it) there is none. */
		size_t n = strcspn(cfg->token.services, ",");
		if (n == 1 && cfg->token.services[0] == '*') {
			fail_msg("--service is needed: token.services is * (every service), so "
				 "there is no default one to check");
			return EXIT_USAGE;
		}
		snprintf(service, sizeof(service), "%.*s", (int)n, cfg->token.services);
	}
	char *buf = xcalloc(1, STDIN_MAX + 2);
	int ret;
	if (read_token_line(buf, STDIN_MAX + 2) < 0) {
		fail_msg("invalid token: the input line is longer than any token");
		ret = EXIT_REFUSED;
		goto out;
	}
	str_trim(buf);
	if (buf[0] == '\0') {
		fail_msg("no token on standard input");
		ret = EXIT_USAGE;
		goto out;
	}
	const char *error;
	struct token_info info;
	enum store_result r = store_verify(store, buf, strlen(buf), jid, service, &info, &error);
	if (r != STORE_OK) {
		fail_msg("%s: %s", r == STORE_INVALID ? "invalid token" : "store unreachable",
			 error);
		ret = exit_for(r);
		goto out;
	}
	char expires[32];
	format_time(info.expires, expires, sizeof(expires));
	printf("valid id=%s services=%s expires=%s\n", info.id, info.services, expires);
	token_info_clear(&info);
	ret = 0;
out:
	secret_wipe(buf, STDIN_MAX + 2);
	free(buf);
	return ret;
}

static int cmd_list(struct token_store *store, const char *jid)
{
	struct token_list list;
	const char *error;
	enum store_result r = store_list(store, jid, &list, &error);
	if (r != STORE_OK) {
		fail_msg("cannot list the tokens of %s: %s", jid, error);
		return exit_for(r);
	}
	for (size_t i = 0; i < list.n; i++) {
		const struct token_info *t = &list.v[i];
		char issued[32], expires[32];
		format_time(t->issued, issued, sizeof(issued));
		format_time(t->expires, expires, sizeof(expires));
		printf("%s\t%s\t%s\t%s\t%s\n", t->id, t->label[0] ? t->label : "-", t->services,
		       issued, expires);
	}
	token_list_free(&list);
	return fflush(stdout) == 0 ? 0 : EXIT_REFUSED;
}

static int cmd_revoke(const struct args *a, struct token_store *store, const char *jid)
{
	const char *error;
	enum store_result r;
	if ((a->id != NULL) == a->all) {
		fail_msg("revoke needs exactly one of --id ID and --all");
		return EXIT_USAGE;
	}
	if (a->all) {
		size_t n;
		r = store_revoke_all(store, jid, &n, &error);
		if (r != STORE_OK) {
			fail_msg("cannot revoke the tokens of %s: %s", jid, error);
			return exit_for(r);
		}
		char count[24];
		snprintf(count, sizeof(count), "%zu", n);
		log_event(LOG_LEVEL_INFO, "tokens_revoked", "jid", jid, "count", count, "via",
			  "samlgw-token", NULL);
		printf("revoked %zu token%s of %s\n", n, n == 1 ? "" : "s", jid);
		return 0;
	}
	if (!token_id_valid(a->id)) {
		fail_msg("--id must be %d to 64 lowercase hex digits (as `list` shows them)",
			 TOKEN_ID_LEN);
		return EXIT_USAGE;
	}
	char hash[TOKEN_HASH_HEX_LEN + 1], id[TOKEN_ID_LEN + 1];
	r = store_revoke(store, jid, a->id, hash, &error);
	if (r != STORE_OK) {
		fail_msg("cannot revoke %s of %s: %s", a->id, jid, error);
		return exit_for(r);
	}
	token_id_from_hash(hash, id);
	log_event(LOG_LEVEL_INFO, "token_revoked", "jid", jid, "id", id, "via", "samlgw-token",
		  NULL);
	printf("revoked %s of %s\n", id, jid);
	return 0;
}

int main(int argc, char **argv)
{
	struct args a = {0};
	int ret = parse_args(argc, argv, &a);
	if (ret != 0)
		return ret;
	signal(SIGPIPE, SIG_IGN);

	static const struct {
		const char *name;
		unsigned allowed;
	} commands[] = {
		{"issue", OPT_JID | OPT_TTL | OPT_LABEL | OPT_SERVICE | OPT_USES},
		{"verify", OPT_JID | OPT_SERVICE},
		{"list", OPT_JID},
		{"revoke", OPT_JID | OPT_ID | OPT_ALL},
		{"check", 0},
	};
	size_t ci = 0;
	while (ci < ARRAY_SIZE(commands) && strcmp(commands[ci].name, a.command) != 0)
		ci++;
	if (ci == ARRAY_SIZE(commands))
		return usage_error("unknown command '%s' (issue, verify, list, revoke, check)",
				   a.command);
	if ((ret = allow_only(&a, commands[ci].allowed)) != 0)
		return ret;

	struct config *cfg;
	struct config_problems problems = {0};
	bool check = strcmp(a.command, "check") == 0;
	if (config_load(a.config, PROG_TOKEN, &cfg, &problems) < 0) {
		for (size_t i = 0; i < problems.n; i++)
			fprintf(stderr, "%s\n", problems.v[i]);
		fprintf(stderr, "samlgw-token: %zu problem%s in %s\n", problems.n,
			problems.n == 1 ? "" : "s", a.config);
		config_problems_free(&problems);
		return check ? 1 : EXIT_CONFIG;
	}
	if (check) {
		printf("%s: no problems\n", a.config);
		config_free(cfg);
		return 0;
	}
	enum log_level level = LOG_LEVEL_INFO;
	log_level_parse(cfg->log.level, &level);
	/* Standard error belongs to the command's own messages; the audit trail of issued
	 * and revoked tokens goes to syslog when the configuration asks for it. */
	log_setup("samlgw-token", level, cfg->log.syslog ? LOG_TO_SYSLOG : 0);

	char *jid = NULL;
	struct token_store *store = NULL;
	const char *error;
	if ((ret = need_jid(&a, &jid)) != 0)
		goto out;
	struct store_options so = {
		.url = cfg->redis.url,
		.prefix = cfg->redis.prefix,
		.timeout_ms = (int)cfg->redis.timeout_ms,
	};
	if (store_open(&so, &store, &error) < 0) {
		fail_msg("redis.url: %s", error);
		ret = EXIT_CONFIG;
		goto out;
	}
	if (strcmp(a.command, "issue") == 0)
		ret = cmd_issue(&a, cfg, store, jid);
	else if (strcmp(a.command, "verify") == 0)
		ret = cmd_verify(&a, cfg, store, jid);
	else if (strcmp(a.command, "list") == 0)
		ret = cmd_list(store, jid);
	else
		ret = cmd_revoke(&a, store, jid);
out:
	store_free(store);
	free(jid);
	config_free(cfg);
	return ret;
}
