/* libsamlgw.so: the Cyrus SASL server plugin offering OAUTHBEARER (RFC 7628) and
 * XOAUTH2 against the samlgw token store.
 *
 * It lives inside other people's daemons (Postfix, Cyrus IMAP, slapd), so it must never
 * break them: plug_init reads options but never connects and never fails for want of
 * configuration (the mechanisms then report SASL_NOMECH); Redis is reached lazily through
 * a pool of stores, each reconnecting after fork() and failures within redis.timeout_ms,
 * with SIGPIPE kept away (store.c); a store that cannot be reached is a temporary
 * failure (SASL_UNAVAIL), never a success. Memory running out while a user logs in is
 * SASL_NOMEM, never an abort: nothing on that path (the parsers, the user map, the pool,
 * store_verify*, the store's own connect instead of hiredis's) uses an allocator that
 * aborts. Reading the options in plug_init still may (config_load, redis_url_parse and
 * services_normalize in common/), once, when the host initialises libsasl2. Only
 * sasl_server_plug_init is exported (libsamlgw.map). Everything is logged through
 * libsasl's logging callback; no token is ever logged. */
#include <sasl/sasl.h>
#include <sasl/saslplug.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "oauth_parse.h"
#include "plugin_settings.h"
#include "services.h"
#include "store.h"
#include "store_pool.h"
#include "user_map.h"
#include "util.h"

#define PLUGIN_NAME "samlgw"
/* Stores kept connected between authentications; threads beyond this open their own. */
#define POOL_MAX_IDLE 16

#define MECH_COUNT 2

struct plugin_global {
	int refs; /* mechanisms still pointing here; the last mech_free frees it */
	/* This init's own copy of the mechanism table: libsasl2 may load the same file twice
	 * (a folder listed twice in the plugin path, a symlink), and each load must keep
	 * its own context. */
	sasl_server_plug_t plugs[MECH_COUNT];
	enum plugin_settings_result state;
	struct plugin_settings settings;
	struct store_pool *pool;
	char *problem; /* why the mechanisms are disabled (PLUGIN_BROKEN) */
	bool reported; /* problem logged through a connection's log callback */
};

enum step_state {
	STEP_FIRST,
	STEP_ERROR_SENT, /* the error challenge is out; the client's ack ends the exchange */
};

struct mech_conn {
	struct plugin_global *g;
	enum oauth_mech mech;
	enum step_state state;
	char challenge[OAUTH_CHALLENGE_MAX];
};

static const char *mech_name(enum oauth_mech mech)
{
	return mech == OAUTH_MECH_XOAUTH2 ? "XOAUTH2" : "OAUTHBEARER";
}

static int mech_avail(void *glob_context, sasl_server_params_t *sparams, void **conn_context)
{
	struct plugin_global *g = glob_context;
	if (g->state == PLUGIN_CONFIGURED)
		return SASL_OK;
	/* plug_init's log has no connection and goes to libsasl2's default (syslog); say it
	 * once more through the application's own log. */
	if (g->state == PLUGIN_BROKEN && !__atomic_exchange_n(&g->reported, true, __ATOMIC_RELAXED))
		sparams->utils->log(sparams->utils->conn, SASL_LOG_ERR,
				    "samlgw: OAUTHBEARER and XOAUTH2 are disabled: %s", g->problem);
	return SASL_NOMECH;
}

static int mech_new(enum oauth_mech mech, void *glob_context, sasl_server_params_t *sparams,
		    void **conn_context)
{
	struct plugin_global *g = glob_context;
	if (g->state != PLUGIN_CONFIGURED)
		return SASL_NOMECH;
	struct mech_conn *c = sparams->utils->malloc(sizeof(*c));
	if (c == NULL) {
		sparams->utils->seterror(sparams->utils->conn, 0, "out of memory");
		return SASL_NOMEM;
	}
	memset(c, 0, sizeof(*c));
	c->g = g;
	c->mech = mech;
	*conn_context = c;
	return SASL_OK;
}

static int oauthbearer_new(void *glob_context, sasl_server_params_t *sparams,
			   const char *challenge, unsigned challen, void **conn_context)
{
	return mech_new(OAUTH_MECH_OAUTHBEARER, glob_context, sparams, conn_context);
}

static int xoauth2_new(void *glob_context, sasl_server_params_t *sparams, const char *challenge,
		       unsigned challen, void **conn_context)
{
	return mech_new(OAUTH_MECH_XOAUTH2, glob_context, sparams, conn_context);
}

/* The service the token must grant: samlgw_service, else the application's, lowercased. */
static bool pick_service(const struct plugin_global *g, const sasl_server_params_t *sparams,
			 char out[SERVICE_NAME_MAX + 1])
{
	const char *s = g->settings.service != NULL ? g->settings.service : sparams->service;
	size_t len = s != NULL ? strlen(s) : 0;
	if (len == 0 || len > SERVICE_NAME_MAX)
		return false;
	for (size_t i = 0; i <= len; i++)
		out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
	return service_name_valid(out) && strcmp(out, "*") != 0;
}

/* Refuse with the mechanism's error challenge; the client's ack then ends in BADAUTH. */
static int send_error(struct mech_conn *c, const char *status, const char *scope,
		      const char **serverout, unsigned *serveroutlen)
{
	size_t len = oauth_error_challenge(c->mech, status, scope, c->challenge);
	c->state = STEP_ERROR_SENT;
	*serverout = c->challenge;
	*serveroutlen = (unsigned)len;
	return SASL_CONTINUE;
}

/* Verify a parsed message; fills the out-params on success. */
static int authenticate(struct mech_conn *c, sasl_server_params_t *sparams,
			const struct oauth_message *msg, const char **serverout,
			unsigned *serveroutlen, sasl_out_params_t *oparams)
{
	const sasl_utils_t *u = sparams->utils;
	const char *mech = mech_name(c->mech);
	char service[SERVICE_NAME_MAX + 1];
	if (!pick_service(c->g, sparams, service)) {
		u->log(u->conn, SASL_LOG_ERR,
		       "%s: the service name is not one a token can grant; set samlgw_service",
		       mech);
		u->seterror(u->conn, SASL_NOLOG, "%s: no usable service name", mech);
		return SASL_FAIL;
	}
	struct user_map map = plugin_settings_user_map(&c->g->settings);
	char jid[USER_MAP_BUF], name[USER_MAP_BUF];
	bool named = msg->user != NULL;
	const char *error;
	if (named && user_map_apply(&map, msg->user, strlen(msg->user), jid, name, &error) < 0) {
		u->log(u->conn, SASL_LOG_FAIL, "%s: refused user name: %s", mech, error);
		return send_error(c, "invalid_token", service, serverout, serveroutlen);
	}

	struct token_store *store = store_pool_take(c->g->pool);
	if (store == NULL) {
		u->seterror(u->conn, 0, "%s: out of memory", mech);
		return SASL_NOMEM;
	}
	enum store_result r;
	if (named) {
		r = store_verify(store, msg->token, msg->token_len, jid, service, NULL, &error);
	} else {
		/* OAUTHBEARER without an authzid (RFC 7628 makes it optional): the token names
		 * its owner, who must still map to a user of this application. The store checks
		 * the owner's domain before it counts a use, so that a refused owner's token
		 * loses nothing. */
		char *owner = NULL;
		r = store_verify_owner_in(store, msg->token, msg->token_len, service,
					  user_map_required_domain(&map), &owner, NULL, &error);
		if (r == STORE_OK &&
		    user_map_apply(&map, owner, strlen(owner), jid, name, &error) < 0) {
			u->log(u->conn, SASL_LOG_FAIL, "%s: the token's owner %s is not a user here: %s",
			       mech, owner, error);
			r = STORE_INVALID;
			error = "the token's owner is not a user of this service";
		}
		free(owner);
	}
	int ret;
	switch (r) {
	case STORE_OK:
		ret = sparams->canon_user(u->conn, name, 0, SASL_CU_AUTHID | SASL_CU_AUTHZID |
						  SASL_CU_EXTERNALLY_VERIFIED,
					  oparams);
		if (ret != SASL_OK)
			break;
		oparams->doneflag = 1;
		oparams->mech_ssf = 0;
		oparams->maxoutbuf = 0;
		oparams->encode_context = NULL;
		oparams->encode = NULL;
		oparams->decode_context = NULL;
		oparams->decode = NULL;
		oparams->param_version = 0;
		u->log(u->conn, SASL_LOG_NOTE, "%s: %s authenticated for service %s", mech, jid,
		       service);
		break;
	case STORE_INVALID:
		u->log(u->conn, SASL_LOG_FAIL, "%s: token refused for %s, service %s: %s", mech,
		       named ? jid : "(the token's owner)", service, error);
		ret = send_error(c, "invalid_token", service, serverout, serveroutlen);
		break;
	default:
		if (store_out_of_memory(store)) {
			u->seterror(u->conn, 0, "%s: out of memory", mech);
			ret = SASL_NOMEM;
			break;
		}
		u->log(u->conn, SASL_LOG_ERR, "%s: token store unavailable: %s", mech, error);
		u->seterror(u->conn, SASL_NOLOG, "%s: the token store is unavailable", mech);
		ret = SASL_UNAVAIL;
		break;
	}
	store_pool_give(c->g->pool, store);
	return ret;
}

static int mech_step(void *conn_context, sasl_server_params_t *sparams, const char *clientin,
		     unsigned clientinlen, const char **serverout, unsigned *serveroutlen,
		     sasl_out_params_t *oparams)
{
	struct mech_conn *c = conn_context;
	const sasl_utils_t *u = sparams->utils;
	const char *mech = mech_name(c->mech);
	*serverout = NULL;
	*serveroutlen = 0;
	if (clientin == NULL)
		clientin = "";

	struct oauth_message msg = {0};
	const char *error = NULL;
	enum oauth_parse_result parsed =
		c->mech == OAUTH_MECH_XOAUTH2 ? xoauth2_parse(clientin, clientinlen, &msg, &error)
					      : oauthbearer_parse(clientin, clientinlen, &msg, &error);
	if (c->state == STEP_ERROR_SENT) {
		oauth_message_clear(&msg);
		if (parsed == OAUTH_NOMEM) {
			u->seterror(u->conn, 0, "%s: out of memory", mech);
			return SASL_NOMEM;
		}
		if (parsed != OAUTH_ERROR_ACK) {
			u->seterror(u->conn, 0, "%s: expected the client's reply to the error", mech);
			return SASL_BADPROT;
		}
		u->seterror(u->conn, SASL_NOLOG, "%s: authentication failed", mech);
		return SASL_BADAUTH;
	}
	if (parsed == OAUTH_ERROR_ACK) {
		u->seterror(u->conn, 0, "%s: an error reply before any error", mech);
		return SASL_BADPROT;
	}
	if (parsed == OAUTH_NOMEM) {
		u->seterror(u->conn, 0, "%s: out of memory", mech);
		return SASL_NOMEM;
	}
	if (parsed == OAUTH_MALFORMED) {
		u->seterror(u->conn, 0, "%s: %s", mech, error);
		return SASL_BADPROT;
	}
	int ret = authenticate(c, sparams, &msg, serverout, serveroutlen, oparams);
	oauth_message_clear(&msg);
	return ret;
}

static void mech_dispose(void *conn_context, const sasl_utils_t *utils)
{
	if (conn_context == NULL)
		return;
	secret_wipe(conn_context, sizeof(struct mech_conn));
	utils->free(conn_context);
}

static void global_free(struct plugin_global *g)
{
	if (g == NULL)
		return;
	store_pool_free(g->pool);
	plugin_settings_clear(&g->settings);
	free(g->problem);
	free(g);
}

static void mech_free(void *glob_context, const sasl_utils_t *utils)
{
	struct plugin_global *g = glob_context;
	if (g != NULL && --g->refs == 0)
		global_free(g);
}

/* The client speaks first (the initial response carries the token). No proxy
 * authorization: the authzid an OAUTHBEARER client sends is the identity the token is
 * checked for, and it becomes both authid and user. */
static const sasl_server_plug_t mechanisms[MECH_COUNT] = {
	{
		.mech_name = "OAUTHBEARER",
		.max_ssf = 0,
		.security_flags = SASL_SEC_NOANONYMOUS,
		.features = SASL_FEAT_WANT_CLIENT_FIRST,
		.mech_new = oauthbearer_new,
		.mech_step = mech_step,
		.mech_dispose = mech_dispose,
		.mech_free = mech_free,
		.mech_avail = mech_avail,
	},
	{
		.mech_name = "XOAUTH2",
		.max_ssf = 0,
		.security_flags = SASL_SEC_NOANONYMOUS,
		.features = SASL_FEAT_WANT_CLIENT_FIRST,
		.mech_new = xoauth2_new,
		.mech_step = mech_step,
		.mech_dispose = mech_dispose,
		.mech_free = mech_free,
		.mech_avail = mech_avail,
	},
};

struct option_source {
	const sasl_utils_t *utils;
};

static const char *get_option(void *context, const char *name)
{
	const struct option_source *src = context;
	const char *value = NULL;
	unsigned len = 0;
	if (src->utils->getopt == NULL ||
	    src->utils->getopt(src->utils->getopt_context, PLUGIN_NAME, name, &value, &len) !=
		    SASL_OK)
		return NULL;
	return value;
}

__attribute__((visibility("default"))) int sasl_server_plug_init(const sasl_utils_t *utils,
								  int max_version,
								  int *out_version,
								  sasl_server_plug_t **pluglist,
								  int *plugcount);

int sasl_server_plug_init(const sasl_utils_t *utils, int max_version, int *out_version,
			  sasl_server_plug_t **pluglist, int *plugcount)
{
	if (max_version < SASL_SERVER_PLUG_VERSION) {
		utils->seterror(utils->conn, 0, "samlgw: libsasl2 is too old for this plugin");
		return SASL_BADVERS;
	}
	struct plugin_global *g = calloc(1, sizeof(*g));
	if (g == NULL)
		return SASL_NOMEM;
	struct option_source src = {utils};
	char *error = NULL;
	g->state = plugin_settings_load(get_option, &src, &g->settings, &error);
	if (g->state == PLUGIN_CONFIGURED) {
		const char *pool_error;
		if (store_pool_new(&g->settings.store, POOL_MAX_IDLE, &g->pool, &pool_error) < 0) {
			error = strdup(pool_error);
			plugin_settings_clear(&g->settings);
			g->state = error != NULL ? PLUGIN_BROKEN : PLUGIN_NOMEM;
		}
	}
	if (g->state == PLUGIN_NOMEM) {
		utils->seterror(utils->conn, 0, "samlgw: out of memory");
		free(g);
		return SASL_NOMEM;
	}
	if (g->state == PLUGIN_BROKEN) {
		/* Logged once here; the mechanisms then stay unavailable in this process. */
		utils->log(NULL, SASL_LOG_ERR,
			   "samlgw: OAUTHBEARER and XOAUTH2 are disabled: %s", error);
		g->problem = error;
		error = NULL;
	} else if (g->state == PLUGIN_UNCONFIGURED) {
		utils->log(NULL, SASL_LOG_DEBUG,
			   "samlgw: neither samlgw_config nor samlgw_redis is set; "
			   "OAUTHBEARER and XOAUTH2 are not offered");
	}
	free(error);
	g->refs = MECH_COUNT;
	for (int i = 0; i < MECH_COUNT; i++) {
		g->plugs[i] = mechanisms[i];
		g->plugs[i].glob_context = g;
	}
	*out_version = SASL_SERVER_PLUG_VERSION;
	*pluglist = g->plugs;
	*plugcount = MECH_COUNT;
	return SASL_OK;
}
