/* xmpp-core's parser arenas (arena.c): allocations of every size keep their bytes across
 * realloc and never overlap; the cap is kept and reported; reset zeroes what the first
 * block held; and the pages of a freed arena leave the resident set (mincore). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef VALGRIND_MAKE_MEM_DEFINED
#define VALGRIND_MAKE_MEM_DEFINED(p, n) ((void)0)
#endif

#include "arena.h"

/* xorshift: a reproducible sequence without libc's rand() state. */
static uint64_t rng = 88172645463325252ULL;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

struct live {
	unsigned char *p;
	size_t n;
	unsigned char fill;
};

static void check(const struct live *l)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->p[i] != l->fill)
			fail_msg("block %p changed at byte %zu of %zu", (void *)l->p, i, l->n);
}

static size_t random_size(void)
{
	switch (next_rand() % 4) {
	case 0: return next_rand() % 64;
	case 1: return next_rand() % 600;
	case 2: return next_rand() % 4200; /* across the small/big boundary */
	default: return next_rand() % 40000;
	}
}

static void test_alloc_realloc_free(void **state)
{
	(void)state;
	size_t base_used = arena_pool_used();
	enum { N_ARENAS = 3, SLOTS = 64, STEPS = 20000 };
	struct arena *arenas[N_ARENAS];
	struct live live[N_ARENAS][SLOTS];
	memset(live, 0, sizeof(live));
	for (int a = 0; a < N_ARENAS; a++) {
		arenas[a] = arena_new(64 << 20);
		assert_non_null(arenas[a]);
	}
	for (int step = 0; step < STEPS; step++) {
		int a = (int)(next_rand() % N_ARENAS);
		struct live *l = &live[a][next_rand() % SLOTS];
		unsigned char fill = (unsigned char)(next_rand() | 1);
		if (l->p == NULL) {
			size_t n = random_size();
			l->p = arena_alloc(arenas[a], n);
			assert_non_null(l->p);
			assert_int_equal((uintptr_t)l->p % 16, 0);
			l->n = n;
		} else if (next_rand() % 2) {
			check(l);
			size_t n = random_size();
			unsigned char *q = arena_realloc(l->p, n > 0 ? n : 1);
			assert_non_null(q);
			assert_int_equal((uintptr_t)q % 16, 0);
			l->p = q;
			l->n = n < l->n ? n : l->n;
			check(l);
			l->n = n;
		} else {
			check(l);
			arena_release(l->p);
			l->p = NULL;
			continue;
		}
		memset(l->p, fill, l->n);
		l->fill = fill;
	}
	for (int a = 0; a < N_ARENAS; a++) {
		for (int i = 0; i < SLOTS; i++) {
			if (live[a][i].p != NULL) {
				check(&live[a][i]);
				arena_release(live[a][i].p);
			}
		}
		arena_free(arenas[a]);
	}
	assert_int_equal(arena_pool_used(), base_used);
}

static void test_cap(void **state)
{
	(void)state;
	struct arena *a = arena_new(64 * 1024);
	assert_non_null(a);
	assert_false(arena_refused(a));
	char *p = arena_alloc(a, 100);
	assert_non_null(p);
	memcpy(p, "kept", 5);
	/* Beyond the cap: NULL, the old block intact, and the refusal recorded. */
	assert_null(arena_realloc(p, 200 * 1024));
	assert_string_equal(p, "kept");
	assert_true(arena_refused(a));
	assert_null(arena_alloc(a, 1 << 20));
	/* Small allocations stop once the pages held reach the cap. */
	void *blocks[64];
	size_t n = 0;
	while (n < 64 && (blocks[n] = arena_alloc(a, 3000)) != NULL)
		n++;
	assert_true(n > 10 && n < 64);
	assert_true(arena_held(a) <= 64 * 1024);
	arena_set_cap(a, 1 << 20);
	assert_non_null(blocks[n] = arena_alloc(a, 3000));
	for (size_t i = 0; i <= n; i++)
		arena_release(blocks[i]);
	arena_release(p);
	arena_free(a);
}

static void test_reset(void **state)
{
	(void)state;
	struct arena *a = arena_new(1 << 20);
	assert_non_null(a);
	size_t first = arena_held(a);
	char *secret = arena_alloc(a, 32);
	memcpy(secret, "a token that must not linger!!!", 32);
	void *big = arena_alloc(a, 100000);
	assert_non_null(big);
	void *more[50];
	for (int i = 0; i < 50; i++)
		assert_non_null(more[i] = arena_alloc(a, 1000));
	assert_true(arena_held(a) > first);
	arena_release(secret);
	arena_release(big);
	for (int i = 0; i < 50; i++)
		arena_release(more[i]);
	arena_reset(a);
	assert_int_equal(arena_held(a), first);
	assert_false(arena_refused(a));
	/* The first allocation after a reset starts where the old one did: zeroed. */
	char *again = arena_alloc(a, 32);
	assert_ptr_equal(again, secret);
	VALGRIND_MAKE_MEM_DEFINED(again, 32); /* a new block is "undefined" to Valgrind */
	static const char zeros[32];
	assert_memory_equal(again, zeros, 32);
	arena_release(again);
	arena_free(a);
}

static size_t resident_pages(const void *p, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	uintptr_t start = (uintptr_t)p & ~(uintptr_t)(page - 1);
	size_t n = ((uintptr_t)p + len - start + (size_t)page - 1) / (size_t)page;
	unsigned char vec[64];
	assert_true(n <= sizeof(vec));
	assert_int_equal(mincore((void *)start, n * (size_t)page, vec), 0);
	size_t r = 0;
	for (size_t i = 0; i < n; i++)
		r += vec[i] & 1;
	return r;
}

static void test_pages_returned(void **state)
{
	(void)state;
	struct arena *a = arena_new(1 << 20);
	assert_non_null(a);
	char *small = arena_alloc(a, 2000);
	char *big = arena_alloc(a, 60000);
	assert_non_null(small);
	assert_non_null(big);
	memset(small, 1, 2000);
	memset(big, 1, 60000);
	assert_true(resident_pages(small, 2000) >= 1);
	assert_true(resident_pages(big, 60000) >= 14);
	arena_release(big);
	assert_int_equal(resident_pages(big, 60000), 0); /* a big block goes back at once */
	arena_release(small);
	arena_free(a);
	assert_int_equal(resident_pages(small, 2000), 0);
}

static void test_own_mapping(void **state)
{
	(void)state;
	size_t mapped = arena_pool_mapped();
	struct arena *a = arena_new(64 << 20);
	assert_non_null(a);
	mapped = arena_pool_mapped();
	char *huge = arena_alloc(a, 9 << 20); /* more than a pool region */
	assert_non_null(huge);
	huge[0] = 1;
	huge[(9 << 20) - 1] = 2;
	assert_true(arena_pool_mapped() >= mapped + (9 << 20));
	char *moved = arena_realloc(huge, 12 << 20);
	assert_non_null(moved);
	assert_int_equal(moved[0], 1);
	assert_int_equal(moved[(9 << 20) - 1], 2);
	arena_release(moved);
	assert_int_equal(arena_pool_mapped(), mapped);
	arena_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc_realloc_free), cmocka_unit_test(test_cap),
		cmocka_unit_test(test_reset),		   cmocka_unit_test(test_pages_returned),
		cmocka_unit_test(test_own_mapping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
