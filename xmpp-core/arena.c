/* Memory arenas on pages kept apart from the malloc heap (see arena.h).
 *
 * The pool: regions of REGION_PAGES pages, one mapping each (never unmapped, so the
 * number of mappings stays small whatever the number of arenas), managed as a buddy
 * system of power-of-two page blocks. Its bookkeeping lives in side tables, never in the
 * free pages themselves: a block given back is returned to the kernel at once
 * (MADV_DONTNEED) and stays untouched, so free pages are never resident. A block larger
 * than a region is a mapping of its own.
 *
 * An arena: the first block holds the arena itself and small allocations (bump
 * allocation in size classes at most 1/8 apart, one free list per class); more blocks of
 * the same size are added as needed; an allocation of more than SMALL_MAX bytes (header
 * included) gets a block of its own, given back when it is freed. Each allocation has a
 * 16-byte header with its arena, its size and class, and a tag that catches a double free
 * or a foreign pointer (both abort: they are bugs).
 *
 * Under AddressSanitizer, everything in an arena that is not a live allocation is
 * poisoned; under Valgrind, allocations are announced as heap blocks. Overruns, reads of
 * uninitialised bytes and uses after free inside an arena are then reported as with
 * malloc. */
#include "arena.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#if !defined(ARENA_ASAN) && defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#define ARENA_VALGRIND 1
#endif
#endif

/* POISON: nobody but this file may touch these bytes; UNPOISON: they are in use. */
#if defined(ARENA_ASAN)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#elif defined(ARENA_VALGRIND)
#include <valgrind/memcheck.h>
#define POISON(p, n) VALGRIND_MAKE_MEM_NOACCESS((p), (n))
#define UNPOISON(p, n) VALGRIND_MAKE_MEM_DEFINED((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif
#ifndef ARENA_VALGRIND
#define VALGRIND_MALLOCLIKE_BLOCK(p, n, rz, z) ((void)0)
#define VALGRIND_FREELIKE_BLOCK(p, rz) ((void)0)
#define VALGRIND_RESIZEINPLACE_BLOCK(p, o, n, rz) ((void)0)
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n) ((void)0)
#endif

#define REGION_ORDER 10 /* a region: 1024 pages */
#define REGION_PAGES (1u << REGION_ORDER)
#define MAX_REGIONS ((UINT32_MAX >> REGION_ORDER) - 1)
#define NO_PAGE UINT32_MAX
#define ST_FREE 0x80  /* state of a free block's first page: ST_FREE | order */
#define ST_INNER 0x7f /* a page inside a block */

#define BLOCK_BYTES 16384 /* the first block and every further block of small allocations */
#define SMALL_MAX 4096    /* largest small allocation, header included */
#define N_CLASSES 48
#define CLS_BIG 0xffff
#define TAG_LIVE 0xa11c
#define TAG_FREE 0xf4ee

struct region {
	char *base;
	uint8_t *state;        /* per page */
	uint32_t *next, *prev; /* free-list links, valid on a free block's first page */
};

static struct {
	size_t page;
	struct region *regions;
	size_t n_regions;
	uint32_t free_head[REGION_ORDER + 1]; /* pool page numbers */
	size_t used, mapped;
} pool;

/* At the start of every block an arena holds. */
struct block {
	struct block *next, *prev; /* the arena's blocks */
	size_t bytes;
	uint32_t gpage; /* first pool page, or NO_PAGE for a mapping of its own */
	uint32_t unused;
};

struct hdr {
	union {
		struct arena *arena; /* live */
		struct hdr *next;    /* on a free list */
	} u;
	uint32_t size; /* bytes asked for */
	uint16_t cls;  /* size class, or CLS_BIG */
	uint16_t tag;  /* TAG_LIVE or TAG_FREE */
};

struct arena {
	struct block *blocks; /* all of them, the first (holding this) included */
	struct block *first;
	char *bump, *end; /* free space of the newest block of small allocations */
	struct hdr *free[N_CLASSES];
	size_t held, cap;
	bool refused; /* an allocation failed for the cap */
};

#define BIG_OFF (sizeof(struct block) + sizeof(struct hdr))

_Static_assert(sizeof(struct hdr) == 16, "allocations stay 16-byte aligned");
_Static_assert(sizeof(struct block) % 16 == 0, "allocations stay 16-byte aligned");

/* ---- size classes: 16..256 in steps of 16, then 8 steps per doubling up to 4096 */

static size_t class_size(unsigned c)
{
	if (c < 16)
		return (size_t)(c + 1) * 16;
	unsigned g = (c - 16) / 8, k = (c - 16) % 8;
	size_t base = (size_t)256 << g;
	return base + (k + 1) * (base / 8);
}

static unsigned floor_log2(size_t n)
{
	unsigned l = 0;
	while (n >>= 1)
		l++;
	return l;
}

/* The smallest class holding need bytes (16 <= need <= SMALL_MAX). */
static unsigned class_of(size_t need)
{
	if (need <= 256)
		return (unsigned)((need + 15) / 16 - 1);
	unsigned g = floor_log2(need - 1) - 8;
	size_t base = (size_t)256 << g, step = base / 8;
	return 16 + g * 8 + (unsigned)((need - base + step - 1) / step - 1);
}

/* ---- the page pool */

static struct region *region_of(uint32_t g)
{
	return &pool.regions[g >> REGION_ORDER];
}

static uint32_t local(uint32_t g)
{
	return g & (REGION_PAGES - 1);
}

static char *page_addr(uint32_t g)
{
	return region_of(g)->base + (size_t)local(g) * pool.page;
}

static void list_push(unsigned order, uint32_t g)
{
	struct region *r = region_of(g);
	uint32_t head = pool.free_head[order];
	r->state[local(g)] = (uint8_t)(ST_FREE | order);
	r->prev[local(g)] = NO_PAGE;
	r->next[local(g)] = head;
	if (head != NO_PAGE)
		region_of(head)->prev[local(head)] = g;
	pool.free_head[order] = g;
}

static void list_unlink(unsigned order, uint32_t g)
{
	struct region *r = region_of(g);
	uint32_t next = r->next[local(g)], prev = r->prev[local(g)];
	if (prev != NO_PAGE)
		region_of(prev)->next[local(prev)] = next;
	else
		pool.free_head[order] = next;
	if (next != NO_PAGE)
		region_of(next)->prev[local(next)] = prev;
	r->state[local(g)] = ST_INNER;
}

static bool pool_init(void)
{
	if (pool.page != 0)
		return true;
	long ps = sysconf(_SC_PAGESIZE);
	if (ps <= 0 || (ps & (ps - 1)) != 0)
		return false;
	pool.page = (size_t)ps;
	for (unsigned o = 0; o <= REGION_ORDER; o++)
		pool.free_head[o] = NO_PAGE;
	return true;
}

static bool pool_grow(void)
{
	if (pool.n_regions >= MAX_REGIONS)
		return false;
	size_t bytes = (size_t)REGION_PAGES * pool.page;
	struct region r = {0};
	r.state = malloc(REGION_PAGES);
	r.next = malloc(REGION_PAGES * sizeof(*r.next));
	r.prev = malloc(REGION_PAGES * sizeof(*r.prev));
	struct region *regions = realloc(pool.regions, (pool.n_regions + 1) * sizeof(*regions));
	if (regions != NULL)
		pool.regions = regions;
	void *base = MAP_FAILED;
	if (r.state != NULL && r.next != NULL && r.prev != NULL && regions != NULL)
		base = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) {
		free(r.state);
		free(r.next);
		free(r.prev);
		return false;
	}
#ifdef MADV_NOHUGEPAGE
	/* A huge page would make a whole 2 MiB resident for one arena. */
	(void)madvise(base, bytes, MADV_NOHUGEPAGE);
#endif
	r.base = base;
	memset(r.state, ST_INNER, REGION_PAGES);
	pool.regions[pool.n_regions] = r;
	list_push(REGION_ORDER, (uint32_t)(pool.n_regions << REGION_ORDER));
	pool.n_regions++;
	pool.mapped += bytes;
	return true;
}

static unsigned order_for(size_t pages)
{
	unsigned o = 0;
	while (((size_t)1 << o) < pages)
		o++;
	return o;
}

/* A block of 2^order pages; its first page number in *g_r. */
static char *pool_get(unsigned order, uint32_t *g_r)
{
	unsigned o = order;
	while (o <= REGION_ORDER && pool.free_head[o] == NO_PAGE)
		o++;
	if (o > REGION_ORDER) {
		if (!pool_grow())
			return NULL;
		o = REGION_ORDER;
	}
	uint32_t g = pool.free_head[o];
	list_unlink(o, g);
	while (o > order) {
		o--;
		list_push(o, g + (1u << o)); /* the upper half stays free */
	}
	region_of(g)->state[local(g)] = (uint8_t)order;
	*g_r = g;
	return page_addr(g);
}

static void pool_put(uint32_t g, unsigned order)
{
	region_of(g)->state[local(g)] = ST_INNER;
	while (order < REGION_ORDER) {
		uint32_t buddy = g ^ (1u << order);
		if (region_of(buddy)->state[local(buddy)] != (ST_FREE | order))
			break;
		list_unlink(order, buddy);
		if (buddy < g)
			g = buddy;
		order++;
	}
	list_push(order, g);
}

/* ---- blocks of an arena */

static void link_block(struct arena *a, struct block *b)
{
	b->prev = NULL;
	b->next = a->blocks;
	if (a->blocks != NULL)
		a->blocks->prev = b;
	a->blocks = b;
	a->held += b->bytes;
}

/* A block of at least min bytes (not linked to any arena), or NULL. */
static struct block *block_get(size_t min)
{
	if (!pool_init())
		return NULL;
	size_t pages = (min + pool.page - 1) / pool.page;
	unsigned order = order_for(pages);
	struct block *b;
	uint32_t g = NO_PAGE;
	size_t bytes;
	if (order <= REGION_ORDER) {
		bytes = pool.page << order;
		b = (struct block *)pool_get(order, &g);
		if (b == NULL)
			return NULL;
	} else {
		bytes = pages * pool.page;
		void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			       -1, 0);
		if (m == MAP_FAILED)
			return NULL;
		b = m;
		pool.mapped += bytes;
	}
	VALGRIND_MAKE_MEM_UNDEFINED(b, bytes);
	pool.used += bytes;
	b->bytes = bytes;
	b->gpage = g;
	b->next = b->prev = NULL;
	return b;
}

/* Give a block back: its pages leave the resident set. */
static void block_put(struct block *b)
{
	size_t bytes = b->bytes;
	uint32_t g = b->gpage;
	UNPOISON(b, bytes);
	pool.used -= bytes;
	if (g == NO_PAGE) {
		munmap(b, bytes);
		pool.mapped -= bytes;
		return;
	}
	(void)madvise(b, bytes, MADV_DONTNEED);
	pool_put(g, order_for(bytes / pool.page));
}

static void unlink_block(struct arena *a, struct block *b)
{
	if (b->prev != NULL)
		b->prev->next = b->next;
	else
		a->blocks = b->next;
	if (b->next != NULL)
		b->next->prev = b->prev;
	a->held -= b->bytes;
}

static bool within_cap(const struct arena *a, size_t min)
{
	size_t pages = (min + pool.page - 1) / pool.page;
	size_t bytes = pages * pool.page;
	if (order_for(pages) <= REGION_ORDER)
		bytes = pool.page << order_for(pages);
	return a->held <= a->cap && bytes <= a->cap - a->held;
}

static char *align16(char *p)
{
	return (char *)(((uintptr_t)p + 15) & ~(uintptr_t)15);
}

/* ---- arenas */

struct arena *arena_new(size_t cap)
{
	struct block *b = block_get(BLOCK_BYTES);
	if (b == NULL)
		return NULL;
	struct arena *a = (struct arena *)(b + 1);
	memset(a, 0, sizeof(*a));
	a->cap = cap;
	a->first = b;
	link_block(a, b);
	a->bump = align16((char *)(a + 1));
	a->end = (char *)b + b->bytes;
	POISON(a->bump, (size_t)(a->end - a->bump));
	return a;
}

void arena_free(struct arena *a)
{
	if (a == NULL)
		return;
	struct block *first = a->first;
	for (struct block *b = a->blocks, *next; b != NULL; b = next) {
		next = b->next;
		if (b != first)
			block_put(b);
	}
	block_put(first); /* a lives in it */
}

void arena_reset(struct arena *a)
{
	for (struct block *b = a->blocks, *next; b != NULL; b = next) {
		next = b->next;
		if (b != a->first) {
			unlink_block(a, b);
			block_put(b);
		}
	}
	char *start = align16((char *)(a + 1));
	char *end = (char *)a->first + a->first->bytes;
	if (a->end == end) { /* else a later block took over and was given back */
		size_t used = (size_t)(a->bump - start);
		UNPOISON(start, used);
		VALGRIND_MAKE_MEM_UNDEFINED(start, used);
		memset(start, 0, used);
	} else {
		UNPOISON(start, (size_t)(end - start));
		VALGRIND_MAKE_MEM_UNDEFINED(start, (size_t)(end - start));
		memset(start, 0, (size_t)(end - start));
	}
	memset(a->free, 0, sizeof(a->free));
	a->refused = false;
	a->bump = start;
	a->end = end;
	POISON(start, (size_t)(end - start));
}

void arena_set_cap(struct arena *a, size_t cap)
{
	a->cap = cap;
}

size_t arena_held(const struct arena *a)
{
	return a->held;
}

bool arena_refused(const struct arena *a)
{
	return a != NULL && a->refused;
}

static void hdr_open(struct hdr *h)
{
	UNPOISON(h, sizeof(*h));
}

static void hdr_close(struct hdr *h)
{
	POISON(h, sizeof(*h));
}

static void *finish_alloc(struct arena *a, struct hdr *h, size_t n, unsigned cls)
{
	h->u.arena = a;
	h->size = (uint32_t)n;
	h->cls = (uint16_t)cls;
	h->tag = TAG_LIVE;
	hdr_close(h);
	void *p = h + 1;
	UNPOISON(p, n);
	VALGRIND_MALLOCLIKE_BLOCK(p, n, 0, 0);
	return p;
}

void *arena_alloc(struct arena *a, size_t n)
{
	if (n == 0)
		n = 1;
	if (n > UINT32_MAX - BIG_OFF - pool.page || n > a->cap) {
		a->refused = true;
		return NULL;
	}
	size_t need = n + sizeof(struct hdr);
	if (need <= SMALL_MAX) {
		unsigned c = class_of(need);
		size_t csz = class_size(c);
		struct hdr *h = a->free[c];
		if (h != NULL) {
			hdr_open(h);
			if (h->tag != TAG_FREE || h->cls != c)
				abort(); /* the arena was overwritten */
			a->free[c] = h->u.next;
		} else {
			if ((size_t)(a->end - a->bump) < csz) {
				if (!within_cap(a, BLOCK_BYTES)) {
					a->refused = true;
					return NULL;
				}
				struct block *b = block_get(BLOCK_BYTES);
				if (b == NULL)
					return NULL;
				link_block(a, b);
				a->bump = (char *)(b + 1);
				a->end = (char *)b + b->bytes;
				POISON(a->bump, (size_t)(a->end - a->bump));
			}
			h = (struct hdr *)a->bump;
			a->bump += csz;
			hdr_open(h);
		}
		return finish_alloc(a, h, n, c);
	}
	if (!within_cap(a, BIG_OFF + n)) {
		a->refused = true;
		return NULL;
	}
	struct block *b = block_get(BIG_OFF + n);
	if (b == NULL)
		return NULL;
	link_block(a, b);
	POISON((char *)b + BIG_OFF, b->bytes - BIG_OFF);
	return finish_alloc(a, (struct hdr *)(b + 1), n, CLS_BIG);
}

/* The header of a live allocation (left open: the caller closes it). */
static struct hdr *live_hdr(void *p)
{
	struct hdr *h = (struct hdr *)p - 1;
	hdr_open(h);
	if (h->tag != TAG_LIVE)
		abort(); /* a double free, or not an arena's block */
	return h;
}

static size_t capacity(const struct hdr *h)
{
	if (h->cls == CLS_BIG) {
		const struct block *b = (const struct block *)h - 1;
		return b->bytes - BIG_OFF;
	}
	return class_size(h->cls) - sizeof(struct hdr);
}

void *arena_realloc(void *p, size_t n)
{
	if (p == NULL)
		abort(); /* see arena.h */
	if (n == 0)
		n = 1;
	struct hdr *h = live_hdr(p);
	struct arena *a = h->u.arena;
	size_t old = h->size, cap = capacity(h);
	if (n <= cap) {
		h->size = (uint32_t)n;
		hdr_close(h);
#ifdef ARENA_VALGRIND
		VALGRIND_RESIZEINPLACE_BLOCK(p, old, n, 0);
#else
		POISON(p, cap);
		UNPOISON(p, n);
#endif
		return p;
	}
	hdr_close(h);
	void *q = arena_alloc(a, n);
	if (q == NULL)
		return NULL;
	memcpy(q, p, old);
	arena_release(p);
	return q;
}

void arena_release(void *p)
{
	if (p == NULL)
		return;
	struct hdr *h = live_hdr(p);
	struct arena *a = h->u.arena;
	VALGRIND_FREELIKE_BLOCK(p, 0);
	if (h->cls == CLS_BIG) {
		struct block *b = (struct block *)h - 1;
		h->tag = TAG_FREE;
		unlink_block(a, b);
		block_put(b);
		return;
	}
	POISON(p, capacity(h));
	unsigned c = h->cls;
	h->tag = TAG_FREE;
	h->u.next = a->free[c];
	a->free[c] = h;
	hdr_close(h);
}

size_t arena_pool_used(void)
{
	return pool.used;
}

size_t arena_pool_mapped(void)
{
	return pool.mapped;
}
