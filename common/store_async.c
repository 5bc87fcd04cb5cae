/* The token store's scripts over asynchronous hiredis (see store_async.h). */
#include "store_async.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define SCRIPT_ARGS_MAX 16

/* One script run in flight: enough to resend it as EVAL after NOSCRIPT. */
struct script_call {
	const char *source;
	int argc;
	char **argv;
	size_t *lens;
	bool retried;
	store_async_script_cb *cb;
	void *data;
};

static void script_call_free(struct script_call *sc)
{
	for (int i = 0; i < sc->argc; i++)
		free(sc->argv[i]);
	free(sc->argv);
	free(sc->lens);
	free(sc);
}

static void script_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct script_call *sc = privdata;
	redisReply *reply = r;
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR && !sc->retried &&
	    strncmp(reply->str, "NOSCRIPT", 8) == 0 && !(ac->c.flags & REDIS_DISCONNECTING)) {
		sc->retried = true;
		free(sc->argv[0]);
		free(sc->argv[1]);
		sc->argv[0] = xstrdup("EVAL");
		sc->lens[0] = 4;
		sc->argv[1] = xstrdup(sc->source);
		sc->lens[1] = strlen(sc->source);
		if (redisAsyncCommandArgv(ac, script_reply, sc, sc->argc, (const char **)sc->argv,
					  sc->lens) == REDIS_OK)
			return;
		reply = NULL;
	}
	if (reply != NULL && (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
			      reply->element[0]->type != REDIS_REPLY_INTEGER))
		reply = NULL; /* error replies and odd shapes: unavailable, never success */
	sc->cb(reply, sc->data);
	script_call_free(sc);
}

int store_async_script(redisAsyncContext *ac, const char *source, int nkeys, int nargs,
		       const char *const *args, const size_t *arg_lens, store_async_script_cb *cb,
		       void *data)
{
	if (ac == NULL || nargs < 0 || nargs > SCRIPT_ARGS_MAX)
		return -1;
	struct script_call *sc = xcalloc(1, sizeof(*sc));
	sc->source = source;
	sc->cb = cb;
	sc->data = data;
	sc->argc = nargs + 3;
	sc->argv = xcalloc((size_t)sc->argc, sizeof(*sc->argv));
	sc->lens = xcalloc((size_t)sc->argc, sizeof(*sc->lens));
	char sha[41];
	store_script_sha1(source, sha);
	sc->argv[0] = xstrdup("EVALSHA");
	sc->lens[0] = 7;
	sc->argv[1] = xstrdup(sha);
	sc->lens[1] = 40;
	sc->argv[2] = xasprintf("%d", nkeys);
	sc->lens[2] = strlen(sc->argv[2]);
	for (int i = 0; i < nargs; i++) {
		size_t len = arg_lens != NULL ? arg_lens[i] : strlen(args[i]);
		sc->argv[3 + i] = xcalloc(1, len + 1);
		memcpy(sc->argv[3 + i], args[i], len);
		sc->lens[3 + i] = len;
	}
	if (redisAsyncCommandArgv(ac, script_reply, sc, sc->argc, (const char **)sc->argv,
				  sc->lens) != REDIS_OK) {
		script_call_free(sc);
		return -1;
	}
	return 0;
}

struct verify_call {
	char hash[TOKEN_HASH_HEX_LEN + 1];
	store_async_verify_cb *cb;       /* for a named JID */
	store_async_owner_cb *owner_cb;  /* for whoever owns the token */
	void *data;
};

/* Answer a call through its callback and free it. */
static void deliver(struct verify_call *vc, enum store_result result, const char *hash,
		    const char *why, const char *owner)
{
	if (vc->owner_cb != NULL)
		vc->owner_cb(result, hash, why, owner, vc->data);
	else
		vc->cb(result, hash, why, vc->data);
	free(vc);
}

static void verify_reply(redisReply *reply, void *data)
{
	struct verify_call *vc = data;
	enum store_result result = STORE_OK;
	const char *why = "valid", *owner = NULL;
	if (reply == NULL) {
		result = STORE_UNAVAILABLE;
		why = "the token store is unavailable";
	} else if (reply->element[0]->integer != 1) {
		result = STORE_INVALID;
		why = store_reason_text(reply->elements > 1 &&
						reply->element[1]->type == REDIS_REPLY_STRING
					    ? reply->element[1]->str
					    : "");
	} else if (vc->owner_cb != NULL) {
		/* {1, services, issued, expires, uses, max_uses, label, idp, jid} */
		if (reply->elements < 9 || reply->element[8]->type != REDIS_REPLY_STRING) {
			result = STORE_UNAVAILABLE;
			why = "the token store answered in an unexpected shape";
		} else {
			owner = reply->element[8]->str;
		}
	}
	deliver(vc, result, vc->hash, why, owner);
}

/* A call for token, or NULL when it is answered already (a malformed token, or SHA-256
 * failing): only a call returned here goes to Redis. */
static struct verify_call *verify_call_new(const char *token, size_t token_len,
					   store_async_verify_cb *cb,
					   store_async_owner_cb *owner_cb, void *data)
{
	struct verify_call *vc = xcalloc(1, sizeof(*vc));
	vc->cb = cb;
	vc->owner_cb = owner_cb;
	vc->data = data;
	if (!token_well_formed(token, token_len)) {
		deliver(vc, STORE_INVALID, "", "not a samlgw token (wrong length, alphabet or check)",
			NULL);
		return NULL;
	}
	if (token_hash_hex(token, token_len, vc->hash) < 0) {
		deliver(vc, STORE_UNAVAILABLE, "", "SHA-256 failed", NULL);
		return NULL;
	}
	return vc;
}

/* Send vc's script (5 arguments, the first nkeys of them keys); verify_reply answers it.
 * Returns 0, or -1 when it could not be sent (vc is then freed, its callback not called). */
static int send_call(redisAsyncContext *ac, enum store_script script, int nkeys,
		     const char **args, struct verify_call *vc)
{
	int ret = store_async_script(ac, store_script_source[script], nkeys, 5, args, NULL,
				     verify_reply, vc);
	if (ret < 0)
		free(vc);
	return ret;
}

int store_async_verify(redisAsyncContext *ac, const char *prefix, const char *token,
		       size_t token_len, const char *jid, const char *service,
		       store_async_verify_cb *cb, void *data)
{
	struct verify_call *vc = verify_call_new(token, token_len, cb, NULL, data);
	if (vc == NULL)
		return 0;
	char *tkey = store_token_key(prefix, vc->hash);
	char *ukey = store_user_tokens_key(prefix, jid);
	/* KEYS: token, index. ARGV: jid, service, hash (as store_verify). */
	const char *args[] = {tkey, ukey, jid, service, vc->hash};
	int ret = send_call(ac, SCRIPT_VERIFY, 2, args, vc);
	free(tkey);
	free(ukey);
	return ret;
}

int store_async_verify_owner(redisAsyncContext *ac, const char *prefix, const char *token,
			     size_t token_len, const char *domain, const char *service,
			     store_async_owner_cb *cb, void *data)
{
	struct verify_call *vc = verify_call_new(token, token_len, NULL, cb, data);
	if (vc == NULL)
		return 0;
	char *tkey = store_token_key(prefix, vc->hash);
	/* The script appends "JID:tokens" to the index prefix. */
	char *ukey = store_user_tokens_key(prefix, "");
	ukey[strlen(ukey) - strlen(":tokens")] = '\0';
	/* KEYS: token. ARGV: service, hash, index prefix, domain. */
	const char *args[] = {tkey, service, vc->hash, ukey, domain};
	int ret = send_call(ac, SCRIPT_VERIFY_ANY, 1, args, vc);
	free(tkey);
	free(ukey);
	return ret;
}
