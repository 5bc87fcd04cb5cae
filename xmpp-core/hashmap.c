/* String-keyed hash table (see hashmap.h). Keys are hashed with FNV-1a and a per-process
 * random seed, so that chosen JIDs cannot pile up in one chain. The buckets are allocated
 * with the first entry: every session's account has a roster table, most of them small
 * or empty. */
#include "hashmap.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

struct entry {
	struct entry *next;
	uint64_t hash;
	void *value;
	char key[];
};

struct hashmap {
	struct entry **buckets;
	size_t n_buckets, count;
	uint64_t seed;
};

static uint64_t hash_key(const struct hashmap *m, const char *key)
{
	uint64_t h = 1469598103934665603ULL ^ m->seed;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h ^ (h >> 29);
}

struct hashmap *hashmap_new(void)
{
	struct hashmap *m = xcalloc(1, sizeof(*m));
	if (RAND_bytes((unsigned char *)&m->seed, sizeof(m->seed)) != 1)
		m->seed = (uint64_t)(uintptr_t)m;
	return m;
}

void hashmap_free(struct hashmap *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct entry *e = m->buckets[i];
		while (e != NULL) {
			struct entry *next = e->next;
			free(e);
			e = next;
		}
	}
	free(m->buckets);
	free(m);
}

static struct entry **find(const struct hashmap *m, const char *key, uint64_t h)
{
	struct entry **pp = &m->buckets[h & (m->n_buckets - 1)];
	while (*pp != NULL && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
		pp = &(*pp)->next;
	return pp;
}

void *hashmap_get(const struct hashmap *m, const char *key)
{
	if (m->count == 0)
		return NULL;
	struct entry **pp = find(m, key, hash_key(m, key));
	return *pp != NULL ? (*pp)->value : NULL;
}

static void grow(struct hashmap *m)
{
	size_t n = m->n_buckets * 2;
	struct entry **b = xcalloc(n, sizeof(*b));
	for (size_t i = 0; i < m->n_buckets; i++) {
		struct entry *e = m->buckets[i];
		while (e != NULL) {
			struct entry *next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
			e = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->n_buckets = n;
}

void *hashmap_put(struct hashmap *m, const char *key, void *value)
{
	if (m->buckets == NULL) {
		m->n_buckets = 16;
		m->buckets = xcalloc(m->n_buckets, sizeof(*m->buckets));
	}
	uint64_t h = hash_key(m, key);
	struct entry **pp = find(m, key, h);
	if (*pp != NULL) {
		void *old = (*pp)->value;
		(*pp)->value = value;
		return old;
	}
	size_t len = strlen(key);
	struct entry *e = xcalloc(1, sizeof(*e) + len + 1);
	memcpy(e->key, key, len + 1);
	e->hash = h;
	e->value = value;
	*pp = e;
	if (++m->count > m->n_buckets)
		grow(m);
	return NULL;
}

void *hashmap_remove(struct hashmap *m, const char *key)
{
	if (m->count == 0)
		return NULL;
	struct entry **pp = find(m, key, hash_key(m, key));
	struct entry *e = *pp;
	if (e == NULL)
		return NULL;
	void *v = e->value;
	*pp = e->next;
	free(e);
	m->count--;
	return v;
}

size_t hashmap_count(const struct hashmap *m)
{
	return m->count;
}

void hashmap_each(const struct hashmap *m, void (*fn)(const char *key, void *value, void *ctx),
		  void *ctx)
{
	for (size_t i = 0; i < m->n_buckets; i++)
		for (struct entry *e = m->buckets[i]; e != NULL; e = e->next)
			fn(e->key, e->value, ctx);
}
