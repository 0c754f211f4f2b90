/* The processor's metrics (README "Operations" lists them). */
#include "rs_processor_int.h"

void rs_proc_register_metrics(proc_metrics_t *m)
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
        m->parts = rs_metrics_counter(
            "refstream_batch_parts_total",
            "Transactions run by batches split into parts that run at once.", NULL);
        m->released = rs_metrics_counter(
            "refstream_referrals_released_total",
            "Held referrals released: their credits issued and published.", NULL);
        m->filtered = rs_metrics_counter(
            "refstream_events_filtered_total",
            "Events applied without locks, loads or rules by the first-level filter "
            "(also counted as applied).",
            NULL);
        m->filtered_remembered = rs_metrics_counter(
            "refstream_events_filtered_remembered_total",
            "Charges the first-level filter set aside from its memory of quiet users, "
            "without reading their rows (also counted as filtered).",
            NULL);
        m->referrers_remembered = rs_metrics_counter(
            "refstream_referrers_remembered_total",
            "Payers whose referrers a batch took from the first-level filter's memory "
            "instead of reading them, to know whom to lock.",
            NULL);
        m->early_charges = rs_metrics_counter(
            "refstream_charges_before_signup_total",
            "Charges processed before their user's sign-up (kept and judged when it "
            "comes).",
            NULL);
        m->retries_transient =
            rs_metrics_counter("refstream_batch_retries_total",
                               "Batch transactions retried.", "reason=\"unavailable\"");
        m->retries_conflict =
            rs_metrics_counter("refstream_batch_retries_total",
                               "Batch transactions retried.", "reason=\"conflict\"");
        m->retries_replay =
            rs_metrics_counter("refstream_batch_retries_total",
                               "Batch transactions retried.", "reason=\"replay\"");
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
        m->found_delivered = rs_metrics_counter("refstream_outbox_found_delivered_total",
                                                "Unconfirmed outbox records the sweep "
                                                "found on their topic (not republished).",
                                                NULL);
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
        m->paused =
            rs_metrics_gauge("refstream_paused_partitions",
                             "Assigned input partitions paused (by an outage).", NULL);
        m->held = rs_metrics_gauge(
            "refstream_held_partitions",
            "Payment partitions paused because their next record is ahead of the "
            "sign-ups still to read (event-time order).",
            NULL);
        m->holds = rs_metrics_counter(
            "refstream_order_holds_total",
            "Payment records held back until the sign-ups reached their time.", NULL);
        for (int st = 0; st < RS_REG__COUNT; st++) {
                char outcome[64];
                snprintf(outcome, sizeof(outcome), "outcome=\"%s\"",
                         rs_reg_status_name((rs_reg_status_t)st));
                m->registry_requests[st] = rs_metrics_counter(
                    "refstream_schema_registry_requests_total",
                    "Schema registry HTTP requests by outcome.", outcome);
        }
        static const double reg_secs[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5,   1,    2.5,   5,    10,  30};
        m->registry_seconds = rs_metrics_histogram(
            "refstream_schema_registry_request_seconds",
            "Time spent waiting for the schema registry, per request.", NULL, reg_secs,
            RS_ARRAY_SIZE(reg_secs));
        m->registry_schemas = rs_metrics_gauge(
            "refstream_schema_registry_cached_schemas",
            "Writer schemas held (fetched from the registry, or the manifest's).", NULL);
        m->stall = rs_metrics_gauge(
            "refstream_stall_seconds",
            "Seconds without progress (no record consumed, no batch committed) while "
            "the assigned partitions have lag; 0 when caught up.",
            NULL);
}

void rs_proc_count_release(rs_processor_t *p, const rs_batch_t *b)
{
        const rs_batch_stats_t *s = &b->stats;
        rs_counter_add(p->m.released, s->released);
        rs_counter_add(p->m.credits[0], s->credits[0]);
        rs_counter_add(p->m.credits[1], s->credits[1]);
        p->totals.released += s->released;
        p->totals.credits[0] += s->credits[0];
        p->totals.credits[1] += s->credits[1];
}

void rs_proc_count_batch(rs_processor_t *p, const rs_batch_t *b, double seconds)
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
        rs_counter_add(m->retries_conflict, s->deadlock_retries);
        rs_counter_add(m->retries_replay, s->inbox_reruns);
        rs_counter_add(m->filtered, s->filtered);
        rs_counter_add(m->filtered_remembered, s->filtered_remembered);
        rs_counter_add(m->referrers_remembered, s->referrers_remembered);
        rs_counter_add(m->early_charges, s->early_charges);
        rs_counter_inc(m->batches);
        rs_counter_add(m->parts, s->parts);
        rs_histogram_observe(m->batch_size, (double)b->n);
        rs_histogram_observe(m->batch_seconds, seconds);

        /* Totals for the demo and tests. */
        rs_batch_stats_add(&p->totals, s);
}

/* Counters kept by the outbox and the cache (which also fail outside
 * batches: a sweep, an invalidation, the start-up probe). */
void rs_proc_count_outside(rs_processor_t *p)
{
        if (p->cache) {
                uint64_t errors = rs_cache_stats(p->cache).errors;
                rs_counter_add(p->m.cache_errors, errors - p->cache_errors_seen);
                p->cache_errors_seen = errors;
        }
        rs_outbox_stats_t now = rs_outbox_stats(p->outbox);
        for (int d = 0; d < 3; d++)
                rs_counter_add(p->m.published[d],
                               now.delivered[d] - p->outbox_seen.delivered[d]);
        rs_counter_add(p->m.delivery_failures, now.failed - p->outbox_seen.failed);
        rs_counter_add(p->m.republished, now.republished - p->outbox_seen.republished);
        rs_counter_add(p->m.found_delivered,
                       now.found_delivered - p->outbox_seen.found_delivered);
        if (now.pending >= 0)
                rs_gauge_set(p->m.outbox_pending, (double)now.pending);
        p->outbox_seen = now;
}
