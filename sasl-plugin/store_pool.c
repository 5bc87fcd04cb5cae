/* The token store pool (see store_pool.h).
 *
 * fork(): a host may fork while another thread holds a pool's lock; the child would then
 * wait forever on a lock whose owner does not exist there. Fork handlers take every
 * pool's lock before fork() (pool locks are only ever held for a few instructions, never
 * across I/O), so that both sides inherit a pool that nobody is in the middle of
 * changing; the parent releases them, and the child also closes the pooled connections
 * it inherited (nothing is sent on them) before it releases them, so it never shares a
 * Redis connection with its parent. glibc drops the handlers when the plugin is
 * unloaded. */
#include "store_pool.h"

#include <pthread.h>
#include <stdlib.h>

struct store_pool {
	pthread_mutex_t lock;
	struct token_store *model; /* never connected; new stores are its clones */
	struct token_store **idle;
	size_t n_idle, max_idle;
	struct store_pool *next; /* in the list the fork handlers walk */
};

/* Every live pool, for the fork handlers. Lock order: pools_lock, then a pool's lock. */
static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store_pool *pools;
static pthread_once_t handlers_once = PTHREAD_ONCE_INIT;
static int handlers_error;

static void before_fork(void)
{
	pthread_mutex_lock(&pools_lock);
	for (struct store_pool *p = pools; p != NULL; p = p->next)
		pthread_mutex_lock(&p->lock);
}

static void after_fork_parent(void)
{
	for (struct store_pool *p = pools; p != NULL; p = p->next)
		pthread_mutex_unlock(&p->lock);
	pthread_mutex_unlock(&pools_lock);
}

static void after_fork_child(void)
{
	for (struct store_pool *p = pools; p != NULL; p = p->next) {
		/* The parent's connections: closed here, never used. */
		for (size_t i = 0; i < p->n_idle; i++)
			store_free(p->idle[i]);
		p->n_idle = 0;
		pthread_mutex_unlock(&p->lock);
	}
	pthread_mutex_unlock(&pools_lock);
}

static void register_handlers(void)
{
	handlers_error = pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

int store_pool_new(const struct store_options *options, size_t max_idle,
		   struct store_pool **pool_r, const char **error_r)
{
	pthread_once(&handlers_once, register_handlers);
	if (handlers_error != 0) {
		*error_r = "cannot register the store pool's fork handlers";
		return -1;
	}
	struct store_pool *p = calloc(1, sizeof(*p));
	if (p == NULL) {
		*error_r = "out of memory";
		return -1;
	}
	p->max_idle = max_idle == 0 ? 1 : max_idle;
	p->idle = calloc(p->max_idle, sizeof(*p->idle));
	if (p->idle == NULL) {
		free(p);
		*error_r = "out of memory";
		return -1;
	}
	if (store_open(options, &p->model, error_r) < 0) {
		free(p->idle);
		free(p);
		return -1;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_mutex_lock(&pools_lock);
	p->next = pools;
	pools = p;
	pthread_mutex_unlock(&pools_lock);
	*pool_r = p;
	return 0;
}

struct token_store *store_pool_take(struct store_pool *p)
{
	struct token_store *s = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->n_idle > 0)
		s = p->idle[--p->n_idle];
	pthread_mutex_unlock(&p->lock);
	const char *error;
	if (s == NULL && store_clone(p->model, &s, &error) < 0)
		return NULL;
	return s;
}

void store_pool_give(struct store_pool *p, struct token_store *s)
{
	pthread_mutex_lock(&p->lock);
	if (p->n_idle < p->max_idle) {
		p->idle[p->n_idle++] = s;
		s = NULL;
	}
	pthread_mutex_unlock(&p->lock);
	store_free(s);
}

void store_pool_free(struct store_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&pools_lock);
	for (struct store_pool **at = &pools; *at != NULL; at = &(*at)->next) {
		if (*at == p) {
			*at = p->next;
			break;
		}
	}
	pthread_mutex_unlock(&pools_lock);
	for (size_t i = 0; i < p->n_idle; i++)
		store_free(p->idle[i]);
	free(p->idle);
	store_free(p->model);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
