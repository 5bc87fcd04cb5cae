/* Prometheus text exposition of samlgw's counters (see metrics.h). */
#include "metrics.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double bucket_le[METRICS_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
						   0.1,   0.25,   0.5,   1,    2.5};

void metrics_count(unsigned long long *counter, unsigned long long n)
{
	__atomic_add_fetch(counter, n, __ATOMIC_RELAXED);
}

void metrics_acs_latency(struct metrics *m, double seconds)
{
	for (size_t i = 0; i < METRICS_BUCKETS; i++) {
		if (seconds <= bucket_le[i])
			metrics_count(&m->acs_bucket[i], 1);
	}
	metrics_count(&m->acs_count, 1);
	metrics_count(&m->acs_sum_us, (unsigned long long)(seconds * 1e6));
}

void metrics_http(struct metrics *m, unsigned status)
{
	unsigned cls = status / 100;
	metrics_count(&m->http[cls >= 1 && cls <= 5 ? cls : 0], 1);
}

struct out {
	char *buf;
	size_t len;
};

static void add(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct out *o, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
	o->buf = xrealloc(o->buf, o->len + len + 1);
	memcpy(o->buf + o->len, line, len + 1);
	o->len += len;
}

static unsigned long long get(const unsigned long long *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

char *metrics_render(const struct metrics *m)
{
	struct out o = {0};
	add(&o, "# HELP samlgw_logins_total SAML logins by result and refusal reason.\n"
		"# TYPE samlgw_logins_total counter\n");
	add(&o, "samlgw_logins_total{result=\"ok\",reason=\"\"} %llu\n", get(&m->logins_ok));
	for (int r = 0; r < REFUSE_COUNT; r++)
		add(&o, "samlgw_logins_total{result=\"refused\",reason=\"%s\"} %llu\n",
		    refusal_name((enum refusal)r), get(&m->logins_refused[r]));
	add(&o, "# HELP samlgw_tokens_issued_total Tokens issued through the web.\n"
		"# TYPE samlgw_tokens_issued_total counter\n"
		"samlgw_tokens_issued_total %llu\n", get(&m->tokens_issued));
	add(&o, "# HELP samlgw_tokens_revoked_total Tokens revoked through the web.\n"
		"# TYPE samlgw_tokens_revoked_total counter\n"
		"samlgw_tokens_revoked_total %llu\n", get(&m->tokens_revoked));
	add(&o, "# HELP samlgw_acs_duration_seconds Time to process a POST to the ACS.\n"
		"# TYPE samlgw_acs_duration_seconds histogram\n");
	for (size_t i = 0; i < METRICS_BUCKETS; i++)
		add(&o, "samlgw_acs_duration_seconds_bucket{le=\"%g\"} %llu\n", bucket_le[i],
		    get(&m->acs_bucket[i]));
	add(&o, "samlgw_acs_duration_seconds_bucket{le=\"+Inf\"} %llu\n", get(&m->acs_count));
	add(&o, "samlgw_acs_duration_seconds_sum %.6f\n", (double)get(&m->acs_sum_us) / 1e6);
	add(&o, "samlgw_acs_duration_seconds_count %llu\n", get(&m->acs_count));
	add(&o, "# HELP samlgw_http_responses_total HTTP responses by status class.\n"
		"# TYPE samlgw_http_responses_total counter\n");
	static const char *const cls[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
	for (size_t i = 0; i < 6; i++)
		add(&o, "samlgw_http_responses_total{code=\"%s\"} %llu\n", cls[i], get(&m->http[i]));
	return o.buf;
}
