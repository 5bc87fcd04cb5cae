/* Memory arenas on pages kept apart from the malloc heap (the stream parser's memory).
 *
 * An arena holds whole page blocks taken from a process-wide page pool; freeing the arena
 * gives every page back to the kernel at once, so the resident set really shrinks (with
 * malloc, a freed parser leaves holes smaller than a page between long-lived objects).
 * Each arena has a cap on the bytes of pages it holds: an allocation beyond it fails.
 *
 * Allocations carry a header naming their arena, so arena_realloc() and arena_release()
 * need no arena argument (expat's memory functions have no context). Not thread-safe:
 * xmpp-core runs one event loop. */
#ifndef XMPP_ARENA_H
#define XMPP_ARENA_H

#include <stdbool.h>
#include <stddef.h>

struct arena;

/* A new arena holding at most cap bytes of pages (at least its first block, 16 KiB).
 * NULL when no pages can be had. */
struct arena *arena_new(size_t cap);
/* Give every page back to the pool. Accepts NULL. Every allocation should have been
 * released first (expat frees all of its own when its parser is freed); under Valgrind
 * one that was not would be reported. */
void arena_free(struct arena *a);
/* Start over, allocations released as for arena_free(): pages beyond the first block go
 * back to the pool, the first block is zeroed (what it held may have been a secret) and
 * reused. */
void arena_reset(struct arena *a);
/* Change the cap; what is already held stays. */
void arena_set_cap(struct arena *a, size_t cap);
/* Bytes of pages the arena holds now. */
size_t arena_held(const struct arena *a);
/* True once an allocation failed for the cap (not for want of pages). */
bool arena_refused(const struct arena *a);

/* n bytes (n == 0 counts as 1), aligned for any type; NULL beyond the cap or when no
 * pages can be had. */
void *arena_alloc(struct arena *a, size_t n);
/* realloc() for a block of an arena; p must not be NULL (the arena to allocate from would
 * not be known). On failure p stays valid and NULL is returned. */
void *arena_realloc(void *p, size_t n);
/* Free a block of an arena. Accepts NULL. */
void arena_release(void *p);

/* The pool: bytes of pages handed out to arenas, and bytes mapped (regions and blocks
 * of their own). For tests and statistics. */
size_t arena_pool_used(void);
size_t arena_pool_mapped(void);

#endif
