/* Failed-login counting per key (a client address, an IPv6 address by its /64) in
 * one-minute windows. The
 * table is swept when it grows past RATELIMIT_KEYS_MAX, so that a flood of distinct keys
 * cannot grow it without bound. */
#include "xmpp.h"
#include "hashmap.h"
#include "util.h"

#include <stdlib.h>

#define RATELIMIT_WINDOW 60
#define RATELIMIT_KEYS_MAX 100000

struct counter {
	time_t window;
	unsigned failures;
};

struct ratelimit {
	struct hashmap *map;
	unsigned per_minute;
};

struct ratelimit *ratelimit_new(unsigned per_minute)
{
	struct ratelimit *rl = xcalloc(1, sizeof(*rl));
	rl->map = hashmap_new();
	rl->per_minute = per_minute;
	return rl;
}

static void free_value(const char *key, void *value, void *ctx)
{
	(void)key;
	(void)ctx;
	free(value);
}

void ratelimit_free(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	hashmap_each(rl->map, free_value, NULL);
	hashmap_free(rl->map);
	free(rl);
}

bool ratelimit_blocked(struct ratelimit *rl, const char *key, time_t now)
{
	struct counter *c = hashmap_get(rl->map, key);
	return c != NULL && now - c->window < RATELIMIT_WINDOW && c->failures >= rl->per_minute;
}

struct sweep {
	char **keys;
	size_t n;
	time_t now;
};

static void collect_stale(const char *key, void *value, void *ctx)
{
	struct sweep *sw = ctx;
	struct counter *c = value;
	if (sw->now - c->window >= RATELIMIT_WINDOW) {
		sw->keys = xrealloc(sw->keys, (sw->n + 1) * sizeof(*sw->keys));
		sw->keys[sw->n++] = xstrdup(key);
	}
}

void ratelimit_fail(struct ratelimit *rl, const char *key, time_t now)
{
	if (hashmap_count(rl->map) >= RATELIMIT_KEYS_MAX) {
		struct sweep sw = {NULL, 0, now};
		hashmap_each(rl->map, collect_stale, &sw);
		for (size_t i = 0; i < sw.n; i++) {
			free(hashmap_remove(rl->map, sw.keys[i]));
			free(sw.keys[i]);
		}
		free(sw.keys);
		if (hashmap_count(rl->map) >= RATELIMIT_KEYS_MAX)
			return; /* still full of live keys: count no new ones */
	}
	struct counter *c = hashmap_get(rl->map, key);
	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		hashmap_put(rl->map, key, c);
	}
	if (now - c->window >= RATELIMIT_WINDOW) {
		c->window = now;
		c->failures = 0;
	}
	c->failures++;
}
