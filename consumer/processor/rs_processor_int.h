#ifndef RS_PROCESSOR_INT_H
#define RS_PROCESSOR_INT_H
/* Inside the processor, shared by its files:
 *   rs_processor.c          lifecycle: start-up wait, main loop, upkeep, readiness
 *   rs_processor_batch.c    one batch: retry, outage back-off, split, dead letter
 *   rs_processor_kafka.c    the consumer: rebalances, pausing, offsets, lag
 *   rs_processor_metrics.c  the metrics it exports */
#include "rs_http.h"
#include "rs_metrics.h"
#include "rs_order.h"
#include "rs_outbox.h"
#include "rs_processor.h"
#include "rs_registry.h"
#include "rs_waker.h"

#include <librdkafka/rdkafka.h>

typedef struct proc_metrics {
        rs_counter_t *events[2][3]; /* [signup|payment][applied|duplicate|dlq] */
        rs_counter_t *referrals, *reversals, *credits[2], *rejections[RS_REJ__COUNT];
        rs_counter_t *cache[3], *cache_errors; /* hit, negative_hit, miss */
        rs_counter_t *batches, *retries_transient, *retries_conflict, *retries_replay,
            *poison;
        rs_counter_t *filtered, *filtered_remembered, *referrers_remembered, *released,
            *holds, *early_charges;
        rs_counter_t *parts;
        rs_counter_t *published[3], *delivery_failures, *republished, *found_delivered;
        rs_histogram_t *batch_size, *batch_seconds;
        rs_gauge_t *ready, *pg_up, *outbox_pending, *assigned, *paused, *held, *lag,
            *stall;
        rs_counter_t *registry_requests[RS_REG__COUNT];
        rs_histogram_t *registry_seconds;
        rs_gauge_t *registry_schemas;
} proc_metrics_t;

struct rs_processor {
        const rs_config_t *cfg;
        rs_processor_hooks_t hooks;
        rs_codec_t *codec;
        rs_pg_t *pg;
        rs_pg_t **more_pg; /* the batch's parts' connections (rs_batch_env_t) */
        rs_cache_t *cache;
        rs_quiet_t *quiet;       /* the filter's memory, forgotten at each rebalance */
        rs_registry_t *registry; /* NULL: the manifest's schema ids */
        rs_outbox_t *outbox;
        rd_kafka_t *rk;
        rs_waker_t *waker; /* of rk's fetcher */
        rs_http_t *http;
        rs_batch_env_t env;
        rs_batch_t batch; /* what is being accumulated / processed */
        bool isolating;   /* splitting a failed batch: keep revoked records */
        bool degraded;    /* Postgres or the registry unavailable: paused */
        bool crashed;     /* simulated crash (hooks): skip the clean close */
        bool fatal;
        int exit_code;   /* when fatal: RS_EXIT_FAILURE, or RS_EXIT_USAGE */
        bool subscribed; /* start-up wait over, consumer subscribed */
        bool registered; /* output schemas registered (with a registry) */
        bool joined;     /* a first assignment arrived */
        bool stalled;    /* lag and no progress for stall_timeout_ms */
        /* What this instance owns and what it has paused. librdkafka keeps a
         * paused partition paused through revoke and re-assignment, so the
         * paused set outlives the assignment and every assignment is told
         * explicitly whether to fetch. */
        rd_kafka_topic_partition_list_t *assignment, *paused;
        /* Payment partitions paused because the order holds a record of
         * theirs back (rs_order.h); never in paused. */
        rd_kafka_topic_partition_list_t *held;
        rs_order_t *order;
        int64_t last_order_ms; /* sign-up ends last refreshed */
        int64_t lag;           /* records behind, assigned partitions, -1 unknown */
        int64_t backoff_ms;
        char last_error[1024];  /* of the last failed batch run */
        char outage[1200];      /* why Postgres or the registry is unavailable */
        const char *outage_dep; /* which of them ("postgres", "schema registry") */
        int64_t last_sweep_ms, last_retention_ms, last_input_ms;
        int64_t last_forget_ms;   /* unknown schema ids forgotten (asked again) */
        int64_t last_progress_ms; /* a record consumed or a batch committed */
        int64_t last_wake_ms;     /* rs_proc_wake_fetcher */
        rs_batch_stats_t totals;
        rs_outbox_stats_t outbox_seen;
        uint64_t cache_errors_seen;
        rs_registry_stats_t registry_seen; /* counted into the metrics already */
        proc_metrics_t m;
};

/* rs_processor.c */
void rs_proc_update_ready(rs_processor_t *p);
/* Fetches the writer schema of id into the codec (found, or known to be
 * unknown); false + errstr when the registry is unavailable. */
bool rs_proc_fetch_schema(rs_processor_t *p, uint32_t id, char *errstr,
                          size_t errstr_size);

/* rs_processor_batch.c: processes p->batch; false when the processor must stop
 * (stop requested mid-retry, or a simulated crash). */
bool rs_proc_process(rs_processor_t *p, volatile sig_atomic_t *stop);
void rs_proc_release(rs_batch_t *b);

/* rs_processor_kafka.c */
rd_kafka_t *rs_proc_consumer_new(rs_processor_t *p, char *errstr, size_t errstr_size);
bool rs_proc_subscribe(rs_processor_t *p, char *errstr, size_t errstr_size);
/* Brokers reachable (a metadata request answered within timeout_ms). */
bool rs_proc_kafka_reachable(rs_processor_t *p, int timeout_ms, char *errstr,
                             size_t errstr_size);
/* Pauses (or resumes) the whole assignment, and remembers it: partitions
 * assigned later are paused too while p->degraded. */
void rs_proc_pause_all(rs_processor_t *p, bool pause);
/* Partitions assigned and paused although Postgres is available (a bug): how
 * many, and their names into out. */
int rs_proc_paused_without_outage(const rs_processor_t *p, char *out, size_t size);
/* One poll: adds a record to the batch or handles a consumer error. Returns
 * true if a record was added. */
bool rs_proc_poll_one(rs_processor_t *p, int timeout_ms);
void rs_proc_store_offsets(rs_processor_t *p, const rs_batch_t *b);
/* Releases the held records whose sign-ups have come (rs_order.h) into the
 * batch, resuming their partitions; true if it added any. */
bool rs_proc_order_tick(rs_processor_t *p);
/* After a full batch, with few records left prefetched: makes librdkafka
 * decide again whether to fetch (rs_waker.h). */
void rs_proc_wake_fetcher(rs_processor_t *p);
/* Commits stored offsets and leaves the group (errors logged). */
void rs_proc_consumer_close(rs_processor_t *p);

/* rs_processor_metrics.c */
void rs_proc_register_metrics(proc_metrics_t *m);
void rs_proc_count_batch(rs_processor_t *p, const rs_batch_t *b, double seconds);
void rs_proc_count_outside(rs_processor_t *p);
/* The counts of a release (rs_batch_release). */
void rs_proc_count_release(rs_processor_t *p, const rs_batch_t *b);

#endif
