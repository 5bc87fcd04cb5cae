/* The token store over an asynchronous hiredis context (xmpp-core's event loop): the same
 * Lua scripts (store_scripts.c) with the same keys and reasons as the synchronous store.
 *
 * The caller owns the redisAsyncContext, its event-loop adapter, reconnection and command
 * timeouts; when it frees the context, hiredis calls every pending callback with a NULL
 * reply, which these functions report as STORE_UNAVAILABLE. Callbacks run exactly once. */
#ifndef SAMLGW_STORE_ASYNC_H
#define SAMLGW_STORE_ASYNC_H

#include <stddef.h>

#include <hiredis/async.h>

#include "store.h"
#include "store_keys.h"
#include "store_scripts.h"
#include "token.h"

/* Result of one script run: reply is the script's array (first element 1 or 0), or NULL
 * when the store is unavailable (no connection, connection lost, error reply, odd shape).
 * The reply is freed by hiredis after the callback returns. */
typedef void store_async_script_cb(redisReply *reply, void *data);

/* EVALSHA source's script, falling back to EVAL on NOSCRIPT. args[0..nkeys) are keys.
 * Returns 0, or -1 when the command could not be queued (cb is then not called). */
int store_async_script(redisAsyncContext *ac, const char *source, int nkeys, int nargs,
		       const char *const *args, const size_t *arg_lens, store_async_script_cb *cb,
		       void *data);

/* hash is the token's SHA-256 (hex); why is a sentence for logs (never the token). */
typedef void store_async_verify_cb(enum store_result result, const char *hash, const char *why,
				   void *data);

/* Verify token for jid (normalised bare JID) and service, as store_verify() does.
 * A malformed token is refused without a round trip (cb runs before this returns).
 * Returns 0, or -1 when the command could not be queued (cb is then not called). */
int store_async_verify(redisAsyncContext *ac, const char *prefix, const char *token,
		       size_t token_len, const char *jid, const char *service,
		       store_async_verify_cb *cb, void *data);

/* As store_async_verify() for whoever owns the token (clients that name no user, such as
 * OAUTHBEARER without an authzid), who must be a user of domain. On STORE_OK, owner is
 * the token's bare JID (valid during the callback); else NULL. */
typedef void store_async_owner_cb(enum store_result result, const char *hash, const char *why,
				  const char *owner, void *data);
int store_async_verify_owner(redisAsyncContext *ac, const char *prefix, const char *token,
			     size_t token_len, const char *domain, const char *service,
			     store_async_owner_cb *cb, void *data);

#endif
