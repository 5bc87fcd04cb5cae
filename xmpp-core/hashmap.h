/* A string-keyed hash table of pointers (chained, grows by doubling). The table owns its
 * copies of the keys, never the values. */
#ifndef XMPP_HASHMAP_H
#define XMPP_HASHMAP_H

#include <stddef.h>

struct hashmap;

struct hashmap *hashmap_new(void);
/* Frees the table and its keys; values are the caller's. Accepts NULL. */
void hashmap_free(struct hashmap *map);
void *hashmap_get(const struct hashmap *map, const char *key);
/* Set key to value (not NULL); returns the value it replaces, or NULL. */
void *hashmap_put(struct hashmap *map, const char *key, void *value);
/* Remove key; returns its value, or NULL. */
void *hashmap_remove(struct hashmap *map, const char *key);
size_t hashmap_count(const struct hashmap *map);

/* Visit every entry; fn must not change the table. */
void hashmap_each(const struct hashmap *map, void (*fn)(const char *key, void *value, void *ctx),
		  void *ctx);

#endif
