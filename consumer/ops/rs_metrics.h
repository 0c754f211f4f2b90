#ifndef RS_METRICS_H
#define RS_METRICS_H
/* Process metrics in the Prometheus text exposition format (version 0.0.4).
 * No C Prometheus client is packaged for Debian, so this is a small one:
 * counters, gauges and fixed-bucket histograms, each optionally with one set of
 * constant labels. Registration happens at start-up (mutex-protected); updates
 * are lock-free atomics and safe from any thread. Series are never removed. */
#include "rs_util.h"

#include <stdint.h>

typedef struct rs_counter rs_counter_t;
typedef struct rs_gauge rs_gauge_t;
typedef struct rs_histogram rs_histogram_t;

/* name: metric family name (e.g. "refstream_events_total"); help: HELP text;
 * labels: NULL, or a pre-rendered label set without braces, e.g.
 * "type=\"signup\",outcome=\"referral\"". Registering the same name + labels
 * twice returns the same series. Families with several label sets are printed
 * once with one HELP/TYPE header. */
rs_counter_t *rs_metrics_counter(const char *name, const char *help, const char *labels);
rs_gauge_t *rs_metrics_gauge(const char *name, const char *help, const char *labels);
/* bounds: ascending upper bounds (the +Inf bucket is implicit); copied. */
rs_histogram_t *rs_metrics_histogram(const char *name, const char *help,
                                     const char *labels, const double *bounds,
                                     size_t nbounds);

void rs_counter_add(rs_counter_t *c, uint64_t n);
static inline void rs_counter_inc(rs_counter_t *c)
{
        rs_counter_add(c, 1);
}
uint64_t rs_counter_value(const rs_counter_t *c);
void rs_gauge_set(rs_gauge_t *g, double v);
void rs_gauge_add(rs_gauge_t *g, double delta);
double rs_gauge_value(const rs_gauge_t *g);
void rs_histogram_observe(rs_histogram_t *h, double v);

/* Appends the whole registry in text exposition format. */
void rs_metrics_render(rs_buf_t *out);
/* Frees the registry (tests, and clean exit under LeakSanitizer). */
void rs_metrics_reset(void);

#endif
