/* The token store pool (see store_pool.h). */
#include "store_pool.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>

struct store_pool {
	pthread_mutex_t lock;
	char *url, *prefix;
	struct store_options options; /* points at url and prefix */
	struct token_store **idle;
	size_t n_idle, max_idle;
};

int store_pool_new(const struct store_options *options, size_t max_idle,
		   struct store_pool **pool_r, const char **error_r)
{
	struct token_store *first;
	if (store_open(options, &first, error_r) < 0)
		return -1;
	struct store_pool *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	p->url = xstrdup(options->url);
	p->prefix = xstrdup(options->prefix);
	p->options.url = p->url;
	p->options.prefix = p->prefix;
	p->options.timeout_ms = options->timeout_ms;
	p->max_idle = max_idle == 0 ? 1 : max_idle;
	p->idle = xcalloc(p->max_idle, sizeof(*p->idle));
	p->idle[p->n_idle++] = first;
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
	if (s != NULL)
		return s;
	const char *error;
	/* The options were checked by store_pool_new, so opening cannot fail. */
	if (store_open(&p->options, &s, &error) < 0)
		abort();
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
	for (size_t i = 0; i < p->n_idle; i++)
		store_free(p->idle[i]);
	free(p->idle);
	free(p->url);
	free(p->prefix);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
