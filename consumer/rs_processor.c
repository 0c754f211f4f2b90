#include "rs_processor.h"
#include "rs_http.h"
#include "rs_kafka.h"
#include "rs_log.h"
#include "rs_metrics.h"
#include "rs_outbox.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define BACKOFF_START_MS 100
#define MARK_INTERVAL_MS 200
/* Retention passes: how often, and how many rows one statement deletes (a
 * pass repeats it while it keeps filling the limit, up to RETENTION_ROUNDS). */
#define RETENTION_INTERVAL_MS 60000
#define RETENTION_BATCH       10000
#define RETENTION_ROUNDS      10

typedef struct proc_metrics {
        rs_counter_t *events[2][3]; /* [signup|payment][applied|duplicate|dlq] */
        rs_counter_t *referrals, *reversals, *credits[2], *rejections[RS_REJ__COUNT];
        rs_counter_t *cache[3], *cache_errors; /* hit, negative_hit, miss */
        rs_counter_t *batches, *retries_transient, *retries_conflict, *poison;
        rs_counter_t *published[3], *delivery_failures, *republished;
        rs_histogram_t *batch_size, *batch_seconds;
        rs_gauge_t *ready, *pg_up, *outbox_pending, *assigned, *lag;
} proc_metrics_t;

struct rs_processor {
        const rs_config_t *cfg;
        rs_processor_hooks_t hooks;
        rs_codec_t *codec;
        rs_pg_t *pg;
        rs_cache_t *cache;
        rs_outbox_t *outbox;
        rd_kafka_t *rk;
        rs_http_t *http;
        rs_batch_env_t env;
        rs_batch_t batch; /* what is being accumulated / processed */
        bool isolating;   /* splitting a failed batch: keep revoked records */
        bool degraded;    /* Postgres unavailable: partitions paused */
        bool crashed;     /* simulated crash (hooks): skip the clean close */
        bool fatal;
        bool joined; /* a first assignment arrived */
        int assigned;
        int64_t backoff_ms;
        char last_error[1024]; /* of the last failed batch run */
        int64_t last_mark_ms, last_sweep_ms, last_retention_ms, last_input_ms;
        rs_batch_stats_t totals;
        rs_outbox_stats_t outbox_seen;
        proc_metrics_t m;
};

/* ---------------------------------------------------------------- metrics */

static void register_metrics(proc_metrics_t *m)
{
        static const char *types[] = {"signup", "payment"};
        static const char *outcomes[] = {"applied", "duplicate", "dlq"};
        char labels[128];
        for (int t = 0; t < 2; t++) {
                for (int o = 0; o < 3; o++) {
                        snprintf(labels, sizeof(labels), "type=\"%s\",outcome=\"%s\"",
                                 types[t], outcomes[o]);
                        m->events[t][o] = rs_metrics_counter(
                            "refstream_events_total",
                            "Input records by type and outcome.", labels);
                }
        }
        m->referrals = rs_metrics_counter("refstream_referrals_created_total",
                                          "Referrals created (pending).", NULL);
        for (int r = 0; r < 2; r++) {
                snprintf(labels, sizeof(labels), "role=\"%s\"",
                         r ? "referee" : "referrer");
                m->credits[r] = rs_metrics_counter("refstream_credits_issued_total",
                                                   "Credits issued by role.", labels);
        }
        m->reversals = rs_metrics_counter("refstream_credits_reversed_total",
                                          "Credits reversed by refunds.", NULL);
        for (int r = 0; r < RS_REJ__COUNT; r++) {
                snprintf(labels, sizeof(labels), "reason=\"%s\"", rs_reason_name(r));
                m->rejections[r] =
                    rs_metrics_counter("refstream_rejections_total",
                                       "Referral intents without effect.", labels);
        }
        static const char *cache_results[] = {"hit", "negative_hit", "miss"};
        for (int i = 0; i < 3; i++) {
                snprintf(labels, sizeof(labels), "result=\"%s\"", cache_results[i]);
                m->cache[i] =
                    rs_metrics_counter("refstream_cache_lookups_total",
                                       "Referral code lookups in Redis.", labels);
        }
        m->cache_errors =
            rs_metrics_counter("refstream_cache_errors_total",
                               "Redis failures (lookups then go to Postgres).", NULL);
        m->batches =
            rs_metrics_counter("refstream_batches_total", "Batches committed.", NULL);
        m->retries_transient =
            rs_metrics_counter("refstream_batch_retries_total",
                               "Batch transactions retried.", "reason=\"unavailable\"");
        m->retries_conflict =
            rs_metrics_counter("refstream_batch_retries_total",
                               "Batch transactions retried.", "reason=\"conflict\"");
        m->poison = rs_metrics_counter(
            "refstream_poison_records_total",
            "Records the database refused even alone (sent to the DLQ).", NULL);
        for (int d = 0; d < 3; d++) {
                snprintf(labels, sizeof(labels), "destination=\"%s\"", rs_dest_name(d));
                m->published[d] =
                    rs_metrics_counter("refstream_outbox_delivered_total",
                                       "Outbox records acknowledged by Kafka.", labels);
        }
        m->delivery_failures = rs_metrics_counter(
            "refstream_outbox_delivery_failures_total",
            "Outbox records whose delivery failed (republished by the sweep).", NULL);
        m->republished =
            rs_metrics_counter("refstream_outbox_republished_total",
                               "Outbox records republished by the sweep.", NULL);
        static const double sizes[] = {1, 10, 50, 100, 250, 500, 1000, 2500, 5000};
        static const double secs[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                      0.1,   0.25,   0.5,   1,    2.5,   5};
        m->batch_size = rs_metrics_histogram("refstream_batch_size", "Records per batch.",
                                             NULL, sizes, RS_ARRAY_SIZE(sizes));
        m->batch_seconds =
            rs_metrics_histogram("refstream_batch_duration_seconds",
                                 "Batch transaction time, resolve to COMMIT.", NULL, secs,
                                 RS_ARRAY_SIZE(secs));
        m->ready =
            rs_metrics_gauge("refstream_ready", "1 when ready (see /readyz).", NULL);
        m->pg_up =
            rs_metrics_gauge("refstream_postgres_up", "1 when Postgres is usable.", NULL);
        m->outbox_pending =
            rs_metrics_gauge("refstream_outbox_pending",
                             "Unpublished outbox rows at the last sweep.", NULL);
        m->assigned =
            rs_metrics_gauge("refstream_assigned_partitions",
                             "Input partitions assigned to this instance.", NULL);
        m->lag =
            rs_metrics_gauge("refstream_consumer_lag",
                             "Records behind the end of the assigned input partitions "
                             "(librdkafka statistics).",
                             NULL);
}

static void count_batch(rs_processor_t *p, const rs_batch_t *b, double seconds)
{
        proc_metrics_t *m = &p->m;
        const rs_batch_stats_t *s = &b->stats;
        uint64_t by_type[2][3] = {{0}};
        for (size_t i = 0; i < b->n; i++) {
                const rs_batch_msg_t *msg = &b->msgs[i];
                int o = msg->outcome == RS_MSG_NEW         ? 0
                        : msg->outcome == RS_MSG_DUPLICATE ? 1
                                                           : 2;
                by_type[msg->type == RS_EV_SIGNUP ? 0 : 1][o]++;
        }
        for (int t = 0; t < 2; t++)
                for (int o = 0; o < 3; o++)
                        rs_counter_add(m->events[t][o], by_type[t][o]);
        rs_counter_add(m->referrals, s->referrals);
        rs_counter_add(m->credits[0], s->credits[0]);
        rs_counter_add(m->credits[1], s->credits[1]);
        rs_counter_add(m->reversals, s->reversals);
        for (int r = 0; r < RS_REJ__COUNT; r++)
                rs_counter_add(m->rejections[r], s->rejections[r]);
        rs_counter_add(m->cache[0], s->cache_hits);
        rs_counter_add(m->cache[1], s->cache_negative);
        rs_counter_add(m->cache[2], s->cache_misses);
        rs_counter_add(m->cache_errors, s->cache_errors);
        rs_counter_add(m->retries_conflict, s->deadlock_retries);
        rs_counter_inc(m->batches);
        rs_histogram_observe(m->batch_size, (double)b->n);
        rs_histogram_observe(m->batch_seconds, seconds);

        /* Totals for the demo and tests. */
        rs_batch_stats_t *t = &p->totals;
        const uint64_t *src = (const uint64_t *)s;
        uint64_t *dst = (uint64_t *)t;
        for (size_t i = 0; i < sizeof(*s) / sizeof(uint64_t); i++)
                dst[i] += src[i];
}

static void count_outbox(rs_processor_t *p)
{
        rs_outbox_stats_t now = rs_outbox_stats(p->outbox);
        for (int d = 0; d < 3; d++)
                rs_counter_add(p->m.published[d],
                               now.delivered[d] - p->outbox_seen.delivered[d]);
        rs_counter_add(p->m.delivery_failures, now.failed - p->outbox_seen.failed);
        rs_counter_add(p->m.republished, now.republished - p->outbox_seen.republished);
        if (now.pending >= 0)
                rs_gauge_set(p->m.outbox_pending, (double)now.pending);
        p->outbox_seen = now;
}

static void set_ready(rs_processor_t *p, bool ready, const char *reason)
{
        if (p->http)
                rs_http_set_ready(p->http, ready, reason);
        rs_gauge_set(p->m.ready, ready ? 1 : 0);
}

/* ---------------------------------------------------------------- kafka */

static rs_event_type_t topic_type(const rs_processor_t *p, const char *topic)
{
        return strcmp(topic, p->cfg->topic_signups) == 0 ? RS_EV_SIGNUP : RS_EV_PAYMENT;
}

/* Drops in-memory records of revoked partitions: their next owner replays
 * them from the committed offset (the inbox makes any overlap harmless). */
static void drop_revoked(rs_processor_t *p, const rd_kafka_topic_partition_list_t *parts)
{
        rs_batch_t *b = &p->batch;
        size_t kept = 0;
        for (size_t i = 0; i < b->n; i++) {
                rs_batch_msg_t *m = &b->msgs[i];
                if (rd_kafka_topic_partition_list_find(parts, m->topic, m->partition)) {
                        rd_kafka_message_destroy(m->opaque);
                        continue;
                }
                b->msgs[kept++] = *m;
        }
        if (kept != b->n)
                rs_info("consumer", "dropped %zu in-flight records of revoked partitions",
                        b->n - kept);
        b->n = kept;
}

static void log_parts(const char *what, const rd_kafka_topic_partition_list_t *parts)
{
        rs_buf_t s;
        rs_buf_init(&s);
        for (int i = 0; i < parts->cnt; i++)
                rs_buf_printf(&s, "%s%s[%d]", i ? " " : "", parts->elems[i].topic,
                              (int)parts->elems[i].partition);
        rs_info("consumer", "%s %d partitions: %s", what, parts->cnt,
                s.data ? s.data : "");
        rs_buf_free(&s);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
        rs_processor_t *p = opaque;
        bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
        rd_kafka_error_t *error = NULL;
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
                log_parts("assigned", parts);
                if (cooperative)
                        error = rd_kafka_incremental_assign(rk, parts);
                else
                        rd_kafka_assign(rk, parts);
                if (p->degraded) /* keep new partitions quiet while Postgres is down */
                        rd_kafka_pause_partitions(rk, parts);
                p->assigned += parts->cnt;
                p->last_input_ms = rs_monotonic_ms();
        } else {
                log_parts(err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS ? "revoked"
                                                                      : "lost",
                          parts);
                if (!p->isolating)
                        drop_revoked(p, parts);
                if (!rd_kafka_assignment_lost(rk))
                        rd_kafka_commit(rk, NULL, 0 /* sync */);
                if (cooperative)
                        error = rd_kafka_incremental_unassign(rk, parts);
                else
                        rd_kafka_assign(rk, NULL);
                p->assigned = cooperative ? p->assigned - parts->cnt : 0;
        }
        if (error) {
                rs_error("consumer", "rebalance: %s", rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        }
        p->joined = true;
        rs_gauge_set(p->m.assigned, p->assigned);
}

/* librdkafka statistics (every statistics.interval.ms, from the poll call):
 * the sum of consumer_lag over the partitions this instance consumes. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
        (void)rk;
        rs_processor_t *p = opaque;
        json_t *root = json_loadb(json, len, 0, NULL);
        json_t *topics = json_object_get(root, "topics"), *t, *parts, *part;
        const char *name, *id;
        json_int_t lag = 0;
        json_object_foreach(topics, name, t)
        {
                parts = json_object_get(t, "partitions");
                json_object_foreach(parts, id, part)
                {
                        json_int_t l =
                            json_integer_value(json_object_get(part, "consumer_lag"));
                        if (strcmp(id, "-1") != 0 && l > 0)
                                lag += l;
                }
        }
        if (root)
                rs_gauge_set(p->m.lag, (double)lag);
        json_decref(root);
        return 0; /* librdkafka frees json */
}

static rd_kafka_t *new_consumer(rs_processor_t *p, char *errstr, size_t errstr_size)
{
        const char *defaults[] = {
            "enable.auto.offset.store", "false", "enable.auto.commit", "true",
            "auto.offset.reset", "earliest",
            /* Eager "range", not cooperative-sticky: librdkafka
             * 2.0.x can abort destroying a cooperative-sticky
             * consumer (librdkafka#4312, fixed in 2.3.0). Range
             * also gives one instance the same partition numbers
             * of both input topics: a user's sign-up and payments
             * usually meet in one process. Overridable with -X;
             * rebalance_cb handles both protocols. */
            "partition.assignment.strategy", "range", "enable.partition.eof", "false",
            "statistics.interval.ms", "5000",
            /* A crashed instance's partitions move after
             * 10 s, not librdkafka's default 45 s. */
            "session.timeout.ms", "10000", "heartbeat.interval.ms", "3000", NULL};
        rd_kafka_conf_t *conf = rs_kafka_conf(p->cfg, defaults, errstr, errstr_size);
        if (!conf ||
            !rs_kafka_set(conf, "group.id", p->cfg->group_id, errstr, errstr_size)) {
                if (conf)
                        rd_kafka_conf_destroy(conf);
                return NULL;
        }
        rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
        rd_kafka_conf_set_stats_cb(conf, stats_cb);
        rd_kafka_conf_set_opaque(conf, p);
        rd_kafka_t *rk = rs_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
        if (!rk)
                return NULL;
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(2);
        rd_kafka_topic_partition_list_add(topics, p->cfg->topic_signups,
                                          RD_KAFKA_PARTITION_UA);
        rd_kafka_topic_partition_list_add(topics, p->cfg->topic_payments,
                                          RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t serr = rd_kafka_subscribe(rk, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (serr) {
                snprintf(errstr, errstr_size, "cannot subscribe: %s",
                         rd_kafka_err2str(serr));
                rd_kafka_destroy(rk);
                return NULL;
        }
        return rk;
}

static void pause_all(rs_processor_t *p, bool pause)
{
        rd_kafka_topic_partition_list_t *parts = NULL;
        if (rd_kafka_assignment(p->rk, &parts) || !parts)
                return;
        if (pause)
                rd_kafka_pause_partitions(p->rk, parts);
        else
                rd_kafka_resume_partitions(p->rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
}

/* One poll: adds a record to the batch or handles a consumer error.
 * Returns true if a record was added. */
static bool poll_one(rs_processor_t *p, int timeout_ms)
{
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(p->rk, timeout_ms);
        if (!msg)
                return false;
        if (msg->err) {
                if (msg->err == RD_KAFKA_RESP_ERR__FATAL)
                        p->fatal = true;
                rs_warn("consumer", "%s%s%s",
                        msg->rkt ? rd_kafka_topic_name(msg->rkt) : "",
                        msg->rkt ? ": " : "", rd_kafka_message_errstr(msg));
                rd_kafka_message_destroy(msg);
                return false;
        }
        const char *topic = rd_kafka_topic_name(msg->rkt);
        rs_batch_add(&p->batch, p->codec, topic_type(p, topic), topic, msg->partition,
                     msg->offset, msg->key, msg->key_len, msg->payload, msg->len, msg);
        p->last_input_ms = rs_monotonic_ms();
        return true;
}

static void store_offsets(rs_processor_t *p, const rs_batch_t *b)
{
        rd_kafka_topic_partition_list_t *list =
            rd_kafka_topic_partition_list_new((int)b->n);
        for (size_t i = 0; i < b->n; i++) {
                const rs_batch_msg_t *m = &b->msgs[i];
                rd_kafka_topic_partition_t *tp =
                    rd_kafka_topic_partition_list_find(list, m->topic, m->partition);
                if (!tp)
                        tp = rd_kafka_topic_partition_list_add(list, m->topic,
                                                               m->partition);
                if (tp->offset < m->offset + 1)
                        tp->offset = m->offset + 1; /* the next record to read */
        }
        /* Fails per partition for partitions no longer assigned: harmless, the
         * new owner replays them and the inbox skips what is done. */
        rd_kafka_offsets_store(p->rk, list);
        for (int i = 0; i < list->cnt; i++) {
                if (list->elems[i].err)
                        rs_debug("consumer", "offset not stored for %s[%d]: %s",
                                 list->elems[i].topic, (int)list->elems[i].partition,
                                 rd_kafka_err2str(list->elems[i].err));
        }
        rd_kafka_topic_partition_list_destroy(list);
}

/* ---------------------------------------------------------------- batches */

/* RUN_SPLIT: the batch should be tried in smaller parts (a record-related
 * error, or a batch that keeps timing out as a whole). */
typedef enum { RUN_OK, RUN_SPLIT, RUN_STOPPED } run_result_t;

#define TIMEOUTS_BEFORE_SPLIT 3

/* Waits out a backoff step while keeping the consumer alive (rebalances are
 * served; paused partitions deliver nothing new). */
static void backoff_wait(rs_processor_t *p, volatile sig_atomic_t *stop)
{
        int64_t until = rs_monotonic_ms() + p->backoff_ms;
        while (!*stop && rs_monotonic_ms() < until) {
                /* Records fetched before the pause may still come: they join
                 * p->batch and are processed after the current part. */
                poll_one(p, 100);
                rs_outbox_poll(p->outbox, 0);
        }
        p->backoff_ms = RS_MIN(p->backoff_ms * 2, p->cfg->pg_retry_max_ms);
}

/* Postgres (or the database environment) cannot take the batch right now:
 * pause consumption, report not ready, back off. */
static void degrade(rs_processor_t *p, const char *err, volatile sig_atomic_t *stop)
{
        if (!p->degraded) {
                rs_warn("consumer",
                        "Postgres unavailable, pausing consumption and retrying with "
                        "backoff: %s",
                        err);
                pause_all(p, true);
                p->degraded = true;
        } else {
                rs_debug("consumer", "retry failed: %s", err);
        }
        char reason[1200];
        snprintf(reason, sizeof(reason), "postgres unavailable: %s", err);
        set_ready(p, false, reason);
        rs_gauge_set(p->m.pg_up, 0);
        rs_counter_inc(p->m.retries_transient);
        backoff_wait(p, stop);
}

static bool timed_out(const rs_pg_t *pg)
{
        return strcmp(pg->sqlstate, "57014") == 0 || strcmp(pg->sqlstate, "55P03") == 0;
}

static run_result_t run_with_retry(rs_processor_t *p, rs_batch_t *b,
                                   volatile sig_atomic_t *stop)
{
        char *err = p->last_error;
        for (int timeouts = 0;;) {
                if (rs_batch_run(&p->env, b, err, sizeof(p->last_error))) {
                        if (p->degraded) {
                                rs_info("consumer", "Postgres available again; resuming");
                                pause_all(p, false);
                                p->degraded = false;
                        }
                        p->backoff_ms = BACKOFF_START_MS;
                        rs_gauge_set(p->m.pg_up, 1);
                        set_ready(p, true, NULL);
                        return RUN_OK;
                }
                if (!rs_pg_error_transient(p->pg)) {
                        rs_warn("consumer",
                                "batch of %zu records failed (splitting it): %s", b->n,
                                err);
                        return RUN_SPLIT;
                }
                /* A batch too big to finish within the statement/lock timeout
                 * would be retried forever as a whole. */
                if (timed_out(p->pg) && b->n > 1 && ++timeouts >= TIMEOUTS_BEFORE_SPLIT)
                        return RUN_SPLIT;
                degrade(p, err, stop);
                if (*stop)
                        return RUN_STOPPED;
        }
}

/* The batch is durable: store its offsets, then hand its output to Kafka. */
static bool finish(rs_processor_t *p, rs_batch_t *b, double seconds)
{
        if (p->hooks.after_commit && !p->hooks.after_commit(p->hooks.opaque, b)) {
                p->crashed = true;
                return false;
        }
        store_offsets(p, b);
        rs_outbox_publish(p->outbox, b->out, b->n_out);
        count_batch(p, b, seconds);
        if (p->hooks.after_batch)
                p->hooks.after_batch(p->hooks.opaque, b);
        return true;
}

/* A single record the database refuses even alone (a data error): it becomes
 * a dead letter (processing_error) so its partition keeps moving. If even the
 * dead letter is refused, the problem is the database, not the record: back
 * off and retry, never skip it. */
static run_result_t dead_letter(rs_processor_t *p, rs_batch_t *one,
                                volatile sig_atomic_t *stop)
{
        char err[1024];
        rs_batch_msg_t *m = &one->msgs[0];
        snprintf(err, sizeof(err), "the database refused this record (%s): %.900s",
                 p->pg->sqlstate, p->last_error);
        rs_error("consumer", "%s[%d]@%lld: dead-lettering a record the database refuses",
                 m->topic, (int)m->partition, (long long)m->offset);
        rs_batch_force_dlq(m, "processing_error", err);
        rs_counter_inc(p->m.poison);
        run_result_t res;
        while ((res = run_with_retry(p, one, stop)) == RUN_SPLIT) {
                degrade(p, p->last_error, stop);
                if (*stop)
                        return RUN_STOPPED;
        }
        return res;
}

/* Runs records [lo, hi) of p->batch as their own batch, splitting it in
 * halves (each finished, offsets stored, in order) while it fails; a single
 * failing record is dead-lettered. split: skip the attempt as a whole. */
static run_result_t run_range(rs_processor_t *p, size_t lo, size_t hi, bool split,
                              volatile sig_atomic_t *stop)
{
        run_result_t res = RUN_SPLIT;
        rs_batch_t part;
        rs_batch_init(&part);
        if (!split || hi - lo == 1) {
                for (size_t i = lo; i < hi; i++) {
                        /* A copy: p->batch may grow (and move) while we back off. */
                        const rs_batch_msg_t m = p->batch.msgs[i];
                        rs_batch_add(&part, p->codec, m.type, m.topic, m.partition,
                                     m.offset, m.key, m.key_len, m.value, m.value_len,
                                     m.opaque);
                }
                int64_t t0 = rs_monotonic_ms();
                res = run_with_retry(p, &part, stop);
                if (res == RUN_SPLIT && hi - lo == 1)
                        res = dead_letter(p, &part, stop);
                if (res == RUN_OK &&
                    !finish(p, &part, (double)(rs_monotonic_ms() - t0) / 1000.0))
                        res = RUN_STOPPED;
        }
        rs_batch_free(&part);
        if (res == RUN_SPLIT) {
                size_t mid = lo + (hi - lo) / 2;
                res = run_range(p, lo, mid, false, stop);
                if (res == RUN_OK)
                        res = run_range(p, mid, hi, false, stop);
        }
        return res;
}

static void release(rs_batch_t *b)
{
        for (size_t i = 0; i < b->n; i++)
                rd_kafka_message_destroy(b->msgs[i].opaque);
        rs_batch_reset(b);
}

/* Returns false when the processor must stop (stop requested mid-retry or a
 * simulated crash). */
static bool process(rs_processor_t *p, volatile sig_atomic_t *stop)
{
        int64_t t0 = rs_monotonic_ms();
        run_result_t res = run_with_retry(p, &p->batch, stop);
        if (res == RUN_OK) {
                if (!finish(p, &p->batch, (double)(rs_monotonic_ms() - t0) / 1000.0))
                        res = RUN_STOPPED;
        } else if (res == RUN_SPLIT) {
                /* Records polled during backoffs extend p->batch: cover them too. */
                p->isolating = true;
                for (size_t done = 0; res != RUN_STOPPED && done < p->batch.n;) {
                        size_t n = p->batch.n;
                        res = run_range(p, done, n, done == 0, stop);
                        done = n;
                }
                p->isolating = false;
        }
        if (p->crashed)
                return false; /* the simulated crash leaves everything as is */
        if (res == RUN_STOPPED && p->batch.n)
                rs_warn("consumer",
                        "stopping with unprocessed records; they will be replayed");
        release(&p->batch);
        return res != RUN_STOPPED;
}

/* ---------------------------------------------------------------- upkeep */

static void expire_codes(rs_processor_t *p)
{
        char err[512];
        PGresult *res =
            rs_pg_exec(p->pg,
                       "UPDATE rs_codes SET status = 'expired', updated_at = now()"
                       " WHERE status = 'active' AND expires_at <= now()"
                       " RETURNING code",
                       0, NULL, err, sizeof(err));
        if (!res) {
                rs_warn("consumer", "cannot expire codes: %s", err);
                return;
        }
        int n = PQntuples(res);
        if (n > 0 && p->cache) {
                const char **codes = rs_malloc((size_t)n * sizeof(char *));
                for (int i = 0; i < n; i++)
                        codes[i] = PQgetvalue(res, i, 0);
                if (!rs_cache_invalidate(p->cache, codes, (size_t)n, err, sizeof(err)))
                        rs_warn("consumer", "expired %d codes; cache not invalidated: %s",
                                n, err);
                free(codes);
        }
        if (n > 0)
                rs_info("consumer", "%d codes reached their expiry", n);
        PQclear(res);
}

/* Deletes rows of table older than the inbox retention; -1 on error (logged). */
static int64_t expire_rows(rs_processor_t *p, const char *table, const char *key,
                           const char *at)
{
        char err[512];
        int64_t n =
            rs_pg_delete_older(p->pg, table, key, at, p->cfg->inbox_retention_hours,
                               RETENTION_BATCH, RETENTION_ROUNDS, err, sizeof(err));
        if (n < 0)
                rs_warn("consumer", "retention of %s: %s", table, err);
        return n;
}

static void retention(rs_processor_t *p)
{
        if (p->cfg->inbox_retention_hours == 0)
                return;
        int64_t inbox = expire_rows(p, "rs_inbox", "kind, event_id", "processed_at");
        int64_t held =
            expire_rows(p, "rs_held_refunds", "user_id, refund_of", "created_at");
        if (inbox > 0 || held > 0)
                rs_info("consumer",
                        "retention: deleted %lld inbox rows and %lld held refunds older "
                        "than %lld hours",
                        (long long)RS_MAX(inbox, 0), (long long)RS_MAX(held, 0),
                        (long long)p->cfg->inbox_retention_hours);
}

static void upkeep(rs_processor_t *p)
{
        char err[1024];
        int64_t now = rs_monotonic_ms();
        rs_outbox_poll(p->outbox, 0);
        if (now - p->last_mark_ms >= MARK_INTERVAL_MS && !p->degraded) {
                p->last_mark_ms = now;
                if (!rs_outbox_mark(p->outbox, err, sizeof(err)))
                        rs_debug("outbox", "marking later: %s", err);
        }
        if (now - p->last_sweep_ms >= p->cfg->outbox_sweep_interval_ms && !p->degraded) {
                p->last_sweep_ms = now;
                if (rs_outbox_sweep(p->outbox, err, sizeof(err)) < 0)
                        rs_warn("outbox", "sweep failed: %s", err);
                else
                        expire_codes(p);
        }
        if ((p->last_retention_ms == 0 ||
             now - p->last_retention_ms >= RETENTION_INTERVAL_MS) &&
            !p->degraded) {
                p->last_retention_ms = now;
                retention(p);
        }
        count_outbox(p);
        if (rs_outbox_fatal(p->outbox, err, sizeof(err)) && !p->fatal) {
                rs_error("outbox", "fatal producer error, exiting: %s", err);
                p->fatal = true;
        }
        if (p->fatal && p->http)
                rs_http_set_healthy(p->http, false, "fatal Kafka client error");
}

/* ---------------------------------------------------------------- lifecycle */

static bool check_schema(rs_processor_t *p, char *errstr, size_t errstr_size)
{
        int have = 0, want = rs_pg_schema_expected();
        if (!rs_pg_connect(p->pg, errstr, errstr_size) ||
            !rs_pg_schema_current(p->pg, &have, errstr, errstr_size))
                return false;
        if (have < want) {
                snprintf(errstr, errstr_size,
                         "database schema is at version %d, this refstream needs %d: run "
                         "`refstream migrate` first",
                         have, want);
                return false;
        }
        return true;
}

rs_processor_t *rs_processor_new(const rs_config_t *cfg,
                                 const rs_processor_hooks_t *hooks, char *errstr,
                                 size_t errstr_size)
{
        rs_processor_t *p = rs_calloc(1, sizeof(*p));
        p->cfg = cfg;
        if (hooks)
                p->hooks = *hooks;
        p->backoff_ms = BACKOFF_START_MS;
        rs_batch_init(&p->batch);
        register_metrics(&p->m);
        set_ready(p, false, "starting");
        p->pg = rs_pg_new(cfg->database_url, cfg->pg_statement_timeout_ms);
        p->codec = rs_codec_new(errstr, errstr_size);
        if (!p->codec || !check_schema(p, errstr, errstr_size))
                goto fail;
        if (*cfg->redis_url &&
            !(p->cache = rs_cache_new(cfg->redis_url, cfg->cache_ttl_ms,
                                      cfg->cache_negative_ttl_ms, cfg->redis_timeout_ms,
                                      errstr, errstr_size)))
                goto fail;
        if (!(p->outbox = rs_outbox_new(cfg, p->pg, errstr, errstr_size)) ||
            !(p->rk = new_consumer(p, errstr, errstr_size)))
                goto fail;
        if (*cfg->http_addr) {
                if (!(p->http = rs_http_start(cfg->http_addr, errstr, errstr_size)))
                        goto fail;
                rs_info("http", "serving /metrics, /healthz and /readyz on %s (port %d)",
                        cfg->http_addr, rs_http_port(p->http));
        }
        set_ready(p, false, "joining the consumer group");
        p->env = (rs_batch_env_t){.pg = p->pg,
                                  .cache = p->cache,
                                  .codec = p->codec,
                                  .outbox_lease_ms = cfg->outbox_lease_ms};
        rs_gauge_set(p->m.pg_up, 1);
        return p;
fail:
        rs_processor_destroy(p);
        return NULL;
}

static bool idle_done(rs_processor_t *p, int64_t idle_exit_ms)
{
        /* Idle counts from the first assignment: joining a group takes seconds. */
        return idle_exit_ms > 0 && p->joined && p->batch.n == 0 &&
               rs_monotonic_ms() - p->last_input_ms >= idle_exit_ms &&
               rs_outbox_in_flight(p->outbox) == 0;
}

int rs_processor_run(rs_processor_t *p, volatile sig_atomic_t *stop, int64_t idle_exit_ms)
{
        const rs_config_t *cfg = p->cfg;
        p->last_input_ms = rs_monotonic_ms();
        p->last_sweep_ms = 0; /* sweep once at start: recover a previous crash */
        rs_info("consumer", "consuming %s and %s as group %s", cfg->topic_signups,
                cfg->topic_payments, cfg->group_id);
        while (!*stop && !p->fatal && !idle_done(p, idle_exit_ms)) {
                int64_t first = 0;
                while (!*stop && p->batch.n < (size_t)cfg->batch_size) {
                        int64_t left =
                            first ? cfg->batch_linger_ms - (rs_monotonic_ms() - first)
                                  : 100;
                        if (first && left <= 0)
                                break;
                        if (poll_one(p, (int)RS_MAX(left, 0)) && !first)
                                first = rs_monotonic_ms();
                        if (!first)
                                break; /* nothing yet: do upkeep, check stop */
                }
                if (p->joined && !p->degraded && p->batch.n == 0)
                        set_ready(p, true, NULL);
                if (p->batch.n > 0 && !process(p, stop))
                        break;
                upkeep(p);
        }
        return p->fatal ? 1 : 0;
}

void rs_processor_destroy(rs_processor_t *p)
{
        if (!p)
                return;
        release(&p->batch); /* messages must go before their consumer */
        if (p->rk) {
                if (p->crashed) {
                        rd_kafka_destroy_flags(p->rk,
                                               RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
                } else {
                        rd_kafka_commit(p->rk, NULL, 0);
                        rd_kafka_consumer_close(p->rk);
                        rd_kafka_destroy(p->rk);
                }
        }
        if (p->outbox) {
                if (p->crashed) {
                        rd_kafka_purge(rs_outbox_handle(p->outbox),
                                       RD_KAFKA_PURGE_F_QUEUE |
                                           RD_KAFKA_PURGE_F_INFLIGHT);
                } else if (!rs_outbox_flush(p->outbox,
                                            (int)p->cfg->shutdown_timeout_ms)) {
                        rs_warn("outbox",
                                "%d records still in flight at exit; the sweep "
                                "republishes them",
                                rs_outbox_in_flight(p->outbox));
                }
                rs_outbox_destroy(p->outbox);
        }
        rs_http_stop(p->http);
        rs_cache_destroy(p->cache);
        rs_codec_destroy(p->codec);
        rs_pg_destroy(p->pg);
        rs_batch_free(&p->batch);
        free(p);
}

const rs_batch_stats_t *rs_processor_totals(const rs_processor_t *p)
{
        return &p->totals;
}

int rs_processor_http_port(const rs_processor_t *p)
{
        return p->http ? rs_http_port(p->http) : 0;
}
