/* Clock and latency statistics shared by the benchmark programs. */
#ifndef SAMLGW_BENCH_LATENCY_H
#define SAMLGW_BENCH_LATENCY_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Sort samples ascending, for bench_percentile. */
void bench_sort(uint64_t *v, size_t n);

/* Nearest-rank percentile (p in (0, 100]) of sorted samples; 0 when there are none. */
uint64_t bench_percentile(const uint64_t *sorted, size_t n, double p);

#endif
