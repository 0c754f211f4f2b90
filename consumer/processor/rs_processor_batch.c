/* The processor's handling of one batch (see rs_processor.h): fetch the
 * schemas its records need; run it in one transaction; wait out an
 * unavailable database or registry with capped back-off while the partitions
 * are paused; split a batch that fails because of its records
 * until the record at fault is found and dead-lettered. */
#include "rs_log.h"
#include "rs_processor_int.h"

#include <stdio.h>
#include <string.h>

#define BACKOFF_START_MS 100
#define DEP_POSTGRES     "postgres"
#define DEP_REGISTRY     "schema registry"

/* RUN_SPLIT: the batch should be tried in smaller parts (a record-related
 * error, or a batch that keeps timing out as a whole). */
typedef enum { RUN_OK, RUN_SPLIT, RUN_STOPPED } run_result_t;

#define TIMEOUTS_BEFORE_SPLIT 3
#define FORGET_UNKNOWN_MS     60000

/* Waits out a backoff step while keeping the consumer alive (rebalances are
 * served; paused partitions deliver nothing new). */
static void backoff_wait(rs_processor_t *p, volatile sig_atomic_t *stop)
{
        int64_t until = rs_monotonic_ms() + p->backoff_ms, next_mark = 0;
        while (!*stop && rs_monotonic_ms() < until) {
                /* Records fetched before the pause may still come: they join
                 * p->batch and are processed after the current part. */
                rs_proc_poll_one(p, 100);
                rs_outbox_poll(p->outbox, 0);
                /* Rows delivered before the outage: marked (and their leases
                 * renewed) as soon as Postgres answers, not after the
                 * back-off, so no other instance's sweep republishes them. */
                rs_outbox_mark_due(p->outbox, &next_mark);
        }
        p->backoff_ms = RS_MIN(p->backoff_ms * 2, p->cfg->pg_retry_max_ms);
}

/* A dependency (Postgres, or the schema registry) cannot take the batch right
 * now: pause consumption, report not ready, back off. */
static void degrade(rs_processor_t *p, const char *dep, const char *err,
                    volatile sig_atomic_t *stop)
{
        if (!p->degraded) {
                rs_warn("consumer",
                        "%s unavailable, pausing consumption and retrying with "
                        "backoff: %s",
                        dep, err);
                p->degraded = true;
                rs_proc_pause_all(p, true);
        } else {
                rs_debug("consumer", "retry failed: %s", err);
        }
        p->outage_dep = dep;
        snprintf(p->outage, sizeof(p->outage), "%s unavailable: %s", dep, err);
        if (strcmp(dep, DEP_POSTGRES) == 0)
                rs_gauge_set(p->m.pg_up, 0);
        rs_counter_inc(p->m.retries_transient);
        rs_proc_update_ready(p);
        backoff_wait(p, stop);
}

static void recovered(rs_processor_t *p)
{
        p->backoff_ms = BACKOFF_START_MS;
        rs_gauge_set(p->m.pg_up, 1);
        if (!p->degraded)
                return;
        rs_info("consumer", "%s available again; resuming", p->outage_dep);
        p->degraded = false;
        p->outage[0] = '\0';
        rs_proc_pause_all(p, false);
        rs_proc_update_ready(p);
}

/* Records framed with schema ids not fetched yet are decoded again once their
 * schemas are in; each id is asked for once, and never is a record
 * dead-lettered because the registry did not answer. */
static bool fetch_schemas(rs_processor_t *p, rs_batch_t *b, char *errstr,
                          size_t errstr_size)
{
        for (size_t i = 0; p->registry && i < b->n; i++) {
                rs_batch_msg_t *m = &b->msgs[i];
                uint32_t id;
                if (m->decoded || !rs_decode_pending(&m->err))
                        continue;
                if (rs_codec_needs_schema(p->codec, m->value, m->value_len, &id) &&
                    !rs_proc_fetch_schema(p, id, errstr, errstr_size))
                        return false;
                rs_batch_redecode(b, p->codec, m);
        }
        return true;
}

static run_result_t run_with_retry(rs_processor_t *p, rs_batch_t *b,
                                   volatile sig_atomic_t *stop)
{
        char *err = p->last_error;
        for (int timeouts = 0;;) {
                if (!fetch_schemas(p, b, err, sizeof(p->last_error))) {
                        degrade(p, DEP_REGISTRY, err, stop);
                        if (*stop)
                                return RUN_STOPPED;
                        continue;
                }
                if (rs_batch_run(&p->env, b, err, sizeof(p->last_error))) {
                        recovered(p);
                        return RUN_OK;
                }
                /* Parts of a split batch that committed: their records go out
                 * now; the retry finds their events done. */
                rs_outbox_publish(p->outbox, b->out, b->n_out);
                b->n_out = 0;
                if (!rs_pg_error_transient(p->pg)) {
                        rs_warn("consumer",
                                "batch of %zu records failed (splitting it): %s", b->n,
                                err);
                        return RUN_SPLIT;
                }
                /* A batch too big to finish within the statement/lock timeout
                 * would be retried forever as a whole. */
                if (rs_pg_error_timeout(p->pg) && b->n > 1 &&
                    ++timeouts >= TIMEOUTS_BEFORE_SPLIT)
                        return RUN_SPLIT;
                degrade(p, DEP_POSTGRES, err, stop);
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
        rs_proc_store_offsets(p, b);
        rs_outbox_publish(p->outbox, b->out, b->n_out);
        if (p->hooks.after_publish && !p->hooks.after_publish(p->hooks.opaque, b)) {
                p->crashed = true;
                return false;
        }
        rs_proc_count_batch(p, b, seconds);
        p->last_progress_ms = rs_monotonic_ms();
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
                degrade(p, DEP_POSTGRES, p->last_error, stop);
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

void rs_proc_release(rs_batch_t *b)
{
        for (size_t i = 0; i < b->n; i++)
                if (b->msgs[i].opaque) /* NULL: a copy in the batch (a held record) */
                        rd_kafka_message_destroy(b->msgs[i].opaque);
        rs_batch_reset(b);
}

bool rs_proc_process(rs_processor_t *p, volatile sig_atomic_t *stop)
{
        int64_t t0 = rs_monotonic_ms();
        /* Ids the registry did not know are asked again now and then (one may
         * have been registered since), never within a batch. */
        if (p->registry && t0 - p->last_forget_ms >= FORGET_UNKNOWN_MS) {
                rs_codec_forget_unknown(p->codec);
                p->last_forget_ms = t0;
        }
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
        rs_proc_release(&p->batch);
        return res != RUN_STOPPED;
}
