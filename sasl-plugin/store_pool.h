/* A mutex-guarded pool of token stores for code that runs on any thread of a host
 * process (the SASL plugin). A store belongs to one thread at a time (store.h): a caller
 * takes one, verifies, and gives it back. Stores keep their own connection, so the pool
 * holds connected stores between calls; each store reconnects by itself after failures.
 * At most max_idle stores stay pooled; extra ones are freed when given back.
 *
 * Safe across fork() from any thread of the host, even while other threads use the pool:
 * the child starts with an unlocked pool and none of its parent's connections. */
#ifndef SAMLGW_STORE_POOL_H
#define SAMLGW_STORE_POOL_H

#include <stddef.h>

#include "store.h"

struct store_pool;

/* Copies the options and checks them by opening one store (no connection yet).
 * Returns 0, or -1 with *error_r (static). */
int store_pool_new(const struct store_options *options, size_t max_idle,
		   struct store_pool **pool_r, const char **error_r);

/* A store for the calling thread's exclusive use until store_pool_give; NULL when memory
 * runs out (nothing here aborts). */
struct token_store *store_pool_take(struct store_pool *pool);
void store_pool_give(struct store_pool *pool, struct token_store *store);

/* Frees the pool and every pooled store; none may be taken out. Accepts NULL. */
void store_pool_free(struct store_pool *pool);

#endif
