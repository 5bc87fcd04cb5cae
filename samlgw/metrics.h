/* Counters for GET /metrics (Prometheus text format): logins accepted and refused by
 * reason, tokens issued and revoked, the ACS latency histogram and HTTP requests by
 * status class. Lock-free; any thread may count. */
#ifndef SAMLGW_METRICS_H
#define SAMLGW_METRICS_H

#include "refusal.h"

#define METRICS_BUCKETS 11

struct metrics {
	unsigned long long logins_ok;
	unsigned long long logins_refused[REFUSE_COUNT];
	unsigned long long tokens_issued;
	unsigned long long tokens_revoked;
	unsigned long long acs_bucket[METRICS_BUCKETS]; /* cumulative counts per bucket */
	unsigned long long acs_count;
	unsigned long long acs_sum_us;
	unsigned long long http[6]; /* by status class: 1xx..5xx, [0] other */
};

void metrics_count(unsigned long long *counter, unsigned long long n);
void metrics_acs_latency(struct metrics *m, double seconds);
void metrics_http(struct metrics *m, unsigned status);

/* The whole exposition as a new string (caller frees). */
char *metrics_render(const struct metrics *m);

#endif
