/* The processor's life (see rs_processor.h): start-up wait for its
 * dependencies, the main loop, upkeep, readiness. */
#include "rs_cli.h"
#include "rs_log.h"
#include "rs_processor_int.h"
#include "rs_registry_codec.h"
#include "rs_store_sql.h"

#include <stdlib.h>
#include <string.h>

#define BACKOFF_START_MS 100
/* Users the first-level filter remembers quiet (rs_quiet.h): 24 bytes each. */
#define QUIET_USERS 131072
/* Retention passes: how often, and how many rows one statement deletes (a
 * pass repeats it while it keeps filling the limit, up to RETENTION_ROUNDS). */
#define RETENTION_INTERVAL_MS 60000
#define RETENTION_BATCH       10000
#define RETENTION_ROUNDS      10

/* ---------------------------------------------------------------- upkeep */

static void expire_codes(rs_processor_t *p)
{
        char err[512];
        PGresult *res = rs_pg_exec(p->pg, SQL_CODES_EXPIRE, 0, NULL, err, sizeof(err));
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

/* Releases the held referrals that are due (docs/rules.md §8), a bounded
 * number per pass, and publishes their credits. */
#define RELEASE_LIMIT 500
static void release_due(rs_processor_t *p)
{
        char err[512];
        rs_batch_t b;
        rs_batch_init(&b);
        int n = rs_batch_release(&p->env, &b, RELEASE_LIMIT, err, sizeof(err));
        if (n < 0) {
                rs_warn("consumer", "cannot release held credits: %s", err);
        } else if (n > 0) {
                rs_outbox_publish(p->outbox, b.out, b.n_out);
                rs_proc_count_release(p, &b);
                rs_info("consumer", "released %d held referrals (%zu credits)", n,
                        b.n_out);
        }
        rs_batch_free(&b);
}

/* Deletes rows older than the inbox retention with sql; -1 on error (logged). */
static int64_t expire_rows(rs_processor_t *p, const char *what, const char *sql)
{
        char err[512];
        int64_t n =
            rs_pg_delete_older(p->pg, sql, p->cfg->inbox_retention_hours, RETENTION_BATCH,
                               RETENTION_ROUNDS, err, sizeof(err));
        if (n < 0)
                rs_warn("consumer", "retention of %s: %s", what, err);
        return n;
}

static void retention(rs_processor_t *p)
{
        if (p->cfg->inbox_retention_hours == 0)
                return;
        int64_t inbox = expire_rows(p, "the inbox", SQL_INBOX_RETENTION);
        int64_t held = expire_rows(p, "held refunds", SQL_HELD_RETENTION);
        if (inbox > 0 || held > 0)
                rs_info("consumer",
                        "retention: deleted %lld inbox rows and %lld held refunds older "
                        "than %lld hours",
                        (long long)RS_MAX(inbox, 0), (long long)RS_MAX(held, 0),
                        (long long)p->cfg->inbox_retention_hours);
}

/* ---------------------------------------------------------------- readiness */

static void set_ready(rs_processor_t *p, bool ready, const char *reason)
{
        if (p->http)
                rs_http_set_ready(p->http, ready, reason);
        rs_gauge_set(p->m.ready, ready ? 1 : 0);
}

/* Ready means: consuming, and able to make progress. The first reason that
 * holds is the one reported. */
void rs_proc_update_ready(rs_processor_t *p)
{
        char reason[1400], names[512];
        int paused;
        if (!p->subscribed)
                snprintf(reason, sizeof(reason), "%s",
                         p->outage[0] ? p->outage : "starting");
        else if (p->degraded)
                snprintf(reason, sizeof(reason), "%s", p->outage);
        else if (!p->joined)
                snprintf(reason, sizeof(reason), "joining the consumer group");
        else if ((paused = rs_proc_paused_without_outage(p, names, sizeof(names))) > 0)
                snprintf(reason, sizeof(reason),
                         "%d assigned partitions are paused without an outage: %s",
                         paused, names);
        else if (p->stalled)
                snprintf(reason, sizeof(reason),
                         "stalled: no progress for %lld s with %lld records of lag",
                         (long long)((rs_monotonic_ms() - p->last_progress_ms) / 1000),
                         (long long)p->lag);
        else
                reason[0] = '\0';
        set_ready(p, reason[0] == '\0', reason);
}

/* A stall: lag, and for stall_timeout_ms no record consumed and no batch
 * committed, outside an outage (which has its own reason). */
static void check_progress(rs_processor_t *p, int64_t now)
{
        if (p->lag <= 0 || !p->joined)
                p->last_progress_ms = now; /* caught up: nothing to wait for */
        int64_t idle = now - p->last_progress_ms;
        rs_gauge_set(p->m.stall, (double)idle / 1000.0);
        bool stalled = !p->degraded && idle >= p->cfg->stall_timeout_ms;
        if (stalled && !p->stalled)
                rs_error("consumer",
                         "stalled: no progress for %lld s with %lld records of lag "
                         "(%d partitions assigned, %d paused)",
                         (long long)(idle / 1000), (long long)p->lag, p->assignment->cnt,
                         (int)rs_gauge_value(p->m.paused));
        else if (!stalled && p->stalled)
                rs_info("consumer", "progressing again");
        p->stalled = stalled;
        char names[512];
        if (rs_proc_paused_without_outage(p, names, sizeof(names)) > 0) {
                rs_error("consumer", "partitions paused without an outage: %s; resuming",
                         names);
                rs_proc_pause_all(p, false);
        }
        rs_proc_update_ready(p);
}

/* ---------------------------------------------------------------- upkeep */

static void upkeep(rs_processor_t *p)
{
        char err[1024];
        int64_t now = rs_monotonic_ms();
        rs_outbox_poll(p->outbox, 0);
        if (!p->degraded) {
                rs_outbox_mark_start(p->outbox);
                /* Every third of a lease (rs_outbox.h). */
                if (!rs_outbox_renew(p->outbox, err, sizeof(err)))
                        rs_debug("outbox", "renewing later: %s", err);
        }
        if (now - p->last_sweep_ms >= p->cfg->outbox_sweep_interval_ms && !p->degraded) {
                p->last_sweep_ms = now;
                if (rs_outbox_sweep(p->outbox, err, sizeof(err)) < 0) {
                        rs_warn("outbox", "sweep failed: %s", err);
                } else {
                        expire_codes(p);
                        release_due(p);
                }
        }
        if ((p->last_retention_ms == 0 ||
             now - p->last_retention_ms >= RETENTION_INTERVAL_MS) &&
            !p->degraded) {
                p->last_retention_ms = now;
                retention(p);
        }
        rs_proc_count_outside(p);
        if (rs_outbox_fatal(p->outbox, err, sizeof(err)) && !p->fatal) {
                rs_error("outbox", "fatal producer error, exiting: %s", err);
                p->fatal = true;
        }
        if (p->fatal && p->http)
                rs_http_set_healthy(p->http, false, "fatal Kafka client error");
        check_progress(p, now);
}

/* ---------------------------------------------------------------- start-up */

/* Postgres reachable and its schema what this binary needs. false + errstr
 * to wait and retry; p->fatal when waiting cannot help (a migration that was
 * applied has been edited since). */
static bool database_ready(rs_processor_t *p, char *errstr, size_t errstr_size)
{
        int have = 0, want = rs_pg_schema_expected();
        char err[1024];
        if (!rs_pg_connect(p->pg, err, sizeof(err))) {
                snprintf(errstr, errstr_size, "waiting for Postgres: %s", err);
                return false;
        }
        switch (rs_pg_schema_check(p->pg, &have, err, sizeof(err))) {
        case RS_SCHEMA_OK:
                rs_gauge_set(p->m.pg_up, 1);
                return true;
        case RS_SCHEMA_BEHIND:
                snprintf(errstr, errstr_size,
                         "waiting for the database schema: it is at version %d, this "
                         "refstream needs %d (run `refstream migrate`; a migration job "
                         "may still be running)",
                         have, want);
                return false;
        case RS_SCHEMA_MODIFIED:
                snprintf(errstr, errstr_size, "%s", err);
                p->fatal = true;
                return false;
        case RS_SCHEMA_ERROR:
                break;
        }
        snprintf(errstr, errstr_size, "waiting for Postgres: %s", err);
        return false;
}

/* ---------------------------------------------------------------- registry */

/* After a call that started at t0: its time, the schemas held, and the
 * requests the client counted by outcome (a call may make two, and the
 * client sees a 404 that the call turns into a cached "unknown"). */
static void count_registry(rs_processor_t *p, int64_t t0)
{
        rs_registry_stats_t now = rs_registry_stats(p->registry);
        for (int st = 0; st < RS_REG__COUNT; st++)
                rs_counter_add(p->m.registry_requests[st],
                               now.requests[st] - p->registry_seen.requests[st]);
        p->registry_seen = now;
        rs_histogram_observe(p->m.registry_seconds,
                             (double)(rs_monotonic_ms() - t0) / 1000.0);
        rs_gauge_set(p->m.registry_schemas, (double)rs_codec_cached_schemas(p->codec));
}

bool rs_proc_fetch_schema(rs_processor_t *p, uint32_t id, char *errstr,
                          size_t errstr_size)
{
        int64_t t0 = rs_monotonic_ms();
        rs_reg_status_t st =
            rs_registry_fetch(p->registry, p->codec, id, errstr, errstr_size);
        count_registry(p, t0);
        return st == RS_REG_OK;
}

/* Registers the output schemas, so that their records are framed with the
 * registry's ids. A registry that refuses them (incompatible, invalid) is a
 * configuration error: waiting cannot help. */
static bool registry_ready(rs_processor_t *p, char *errstr, size_t errstr_size)
{
        const char *records[] = {"ReferralCredited", "ReferralCreditReversed"};
        const char *topics[] = {p->cfg->topic_credited, p->cfg->topic_reversed};
        char err[1024];
        for (size_t i = 0; p->registry && !p->registered && i < 2; i++) {
                int64_t t0 = rs_monotonic_ms();
                rs_reg_status_t st =
                    rs_registry_register_own(p->registry, p->codec, records[i], topics[i],
                                             false, err, sizeof(err));
                count_registry(p, t0);
                if (st == RS_REG_UNAVAILABLE) {
                        snprintf(errstr, errstr_size,
                                 "waiting for the schema registry: %s", err);
                        return false;
                }
                if (st != RS_REG_OK) {
                        snprintf(errstr, errstr_size,
                                 "the schema registry does not take %s "
                                 "(REFSTREAM_SCHEMA_REGISTRY_URL)",
                                 err);
                        p->fatal = true;
                        p->exit_code = RS_EXIT_USAGE;
                        return false;
                }
        }
        p->registered = true;
        return true;
}

static void sleep_unless_stopped(int64_t ms, volatile sig_atomic_t *stop)
{
        for (int64_t until = rs_monotonic_ms() + ms; !*stop && rs_monotonic_ms() < until;)
                rs_sleep_ms(RS_MIN(100, until - rs_monotonic_ms()));
}

/* Waits, with the capped back-off of a run-time outage, until Postgres (with
 * the right schema), the schema registry (when configured: it has taken the
 * output schemas) and Kafka answer; meanwhile /healthz is 200 and /readyz
 * 503 with what is awaited. Redis is optional: without it lookups go to
 * Postgres, as at run time. False when stopped or when waiting cannot help. */
static bool wait_for_dependencies(rs_processor_t *p, volatile sig_atomic_t *stop)
{
        char why[1200] = "", logged[1200] = "";
        int64_t backoff = BACKOFF_START_MS;
        if (p->cache && !rs_cache_connect(p->cache))
                rs_warn("consumer", "starting without Redis: codes are looked up in "
                                    "Postgres until it answers");
        while (!*stop) {
                if (database_ready(p, why, sizeof(why)) &&
                    registry_ready(p, why, sizeof(why)) &&
                    rs_proc_kafka_reachable(p, 5000, why, sizeof(why))) {
                        if (logged[0])
                                rs_info("consumer", "dependencies available; starting");
                        p->outage[0] = '\0';
                        return true;
                }
                if (p->fatal) {
                        rs_error("consumer", "%s", why);
                        return false;
                }
                if (strcmp(why, logged) != 0) {
                        rs_warn("consumer", "%s (retrying with backoff)", why);
                        rs_strlcpy(logged, why, sizeof(logged));
                }
                rs_strlcpy(p->outage, why, sizeof(p->outage));
                rs_proc_update_ready(p);
                sleep_unless_stopped(backoff, stop);
                backoff = RS_MIN(backoff * 2, p->cfg->pg_retry_max_ms);
        }
        return false;
}

/* ---------------------------------------------------------------- lifecycle */

rs_processor_t *rs_processor_new(const rs_config_t *cfg,
                                 const rs_processor_hooks_t *hooks, char *errstr,
                                 size_t errstr_size)
{
        rs_processor_t *p = rs_calloc(1, sizeof(*p));
        p->cfg = cfg;
        if (hooks)
                p->hooks = *hooks;
        p->backoff_ms = BACKOFF_START_MS;
        p->exit_code = RS_EXIT_FAILURE;
        rs_batch_init(&p->batch);
        rs_proc_register_metrics(&p->m);
        p->pg = rs_pg_new(cfg->database_url, cfg->pg_statement_timeout_ms);
        int more = (int)cfg->batch_parts - 1;
        p->more_pg = rs_calloc((size_t)RS_MAX(more, 1), sizeof(*p->more_pg));
        for (int i = 0; i < more; i++)
                p->more_pg[i] =
                    rs_pg_new(cfg->database_url, cfg->pg_statement_timeout_ms);
        if (!(p->quiet = rs_quiet_new(QUIET_USERS)))
                rs_warn("consumer", "the kernel gave no random bytes: the first-level "
                                    "filter runs without its memory (rs_quiet.h)");
        if (!(p->codec = rs_codec_new(errstr, errstr_size)))
                goto fail;
        if (*cfg->schema_registry_url) {
                if (!(p->registry = rs_registry_from_config(cfg, errstr, errstr_size)))
                        goto fail;
                rs_codec_use_registry(p->codec);
        }
        if (*cfg->redis_url &&
            !(p->cache = rs_cache_new(cfg->redis_url, cfg->cache_ttl_ms,
                                      cfg->cache_negative_ttl_ms, cfg->redis_timeout_ms,
                                      errstr, errstr_size)))
                goto fail;
        if (!(p->outbox = rs_outbox_new(cfg, p->pg, errstr, errstr_size)) ||
            !(p->rk = rs_proc_consumer_new(p, errstr, errstr_size)))
                goto fail;
        if (!(p->waker = rs_waker_new(p->rk))) {
                rs_fail(errstr, errstr_size, "cannot start a thread");
                goto fail;
        }
        if (*cfg->http_addr) {
                if (!(p->http = rs_http_start(cfg->http_addr, errstr, errstr_size)))
                        goto fail;
                rs_info("http", "serving /metrics, /healthz and /readyz on %s (port %d)",
                        cfg->http_addr, rs_http_port(p->http));
        }
        rs_proc_update_ready(p);
        p->env = (rs_batch_env_t){.pg = p->pg,
                                  .cache = p->cache,
                                  .codec = p->codec,
                                  .outbox_lease_ms = cfg->outbox_lease_ms,
                                  .quiet = p->quiet,
                                  .more_pg = p->more_pg,
                                  .n_more_pg = more};
        return p;
fail:
        rs_processor_destroy(p);
        return NULL;
}

static bool idle_done(rs_processor_t *p, int64_t idle_exit_ms)
{
        /* Idle counts from the first assignment: joining a group takes seconds. */
        return idle_exit_ms > 0 && p->joined && p->batch.n == 0 &&
               rs_order_held(p->order) == 0 &&
               rs_monotonic_ms() - p->last_input_ms >= idle_exit_ms &&
               rs_outbox_in_flight(p->outbox) == 0;
}

int rs_processor_run(rs_processor_t *p, volatile sig_atomic_t *stop, int64_t idle_exit_ms)
{
        const rs_config_t *cfg = p->cfg;
        char err[512];
        if (!wait_for_dependencies(p, stop))
                return p->fatal ? p->exit_code : 0;
        if (!rs_proc_subscribe(p, err, sizeof(err))) {
                rs_error("consumer", "%s", err);
                return 1;
        }
        rs_proc_update_ready(p);
        p->last_input_ms = p->last_progress_ms = rs_monotonic_ms();
        p->last_sweep_ms = 0; /* sweep once at start: recover a previous crash */
        rs_info("consumer", "consuming %s and %s as group %s", cfg->topic_signups,
                cfg->topic_payments, cfg->group_id);
        while (!*stop && !p->fatal && !idle_done(p, idle_exit_ms)) {
                int64_t first = 0;
                while (!*stop && p->batch.n < (size_t)cfg->batch_size) {
                        if (rs_proc_order_tick(p) && !first)
                                first = rs_monotonic_ms();
                        int64_t left =
                            first ? cfg->batch_linger_ms - (rs_monotonic_ms() - first)
                                  : 100;
                        if (first && left <= 0)
                                break;
                        /* Records held back are looked at again soon. */
                        if (rs_order_held(p->order) > 0)
                                left = RS_MIN(left, 10);
                        if (rs_proc_poll_one(p, (int)RS_MAX(left, 0)) && !first)
                                first = rs_monotonic_ms();
                        if (!first)
                                break; /* nothing yet: do upkeep, check stop */
                }
                bool full = p->batch.n >= (size_t)cfg->batch_size;
                if (p->batch.n > 0 && !rs_proc_process(p, stop))
                        break;
                if (full)
                        rs_proc_wake_fetcher(p);
                upkeep(p);
        }
        return p->fatal ? 1 : 0;
}

void rs_processor_destroy(rs_processor_t *p)
{
        if (!p)
                return;
        rs_proc_release(&p->batch); /* messages must go before their consumer */
        rs_waker_destroy(p->waker);
        if (p->rk) {
                if (p->crashed) {
                        rd_kafka_destroy_flags(p->rk,
                                               RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
                } else {
                        rs_proc_consumer_close(p);
                        rd_kafka_destroy(p->rk);
                }
        }
        rs_order_destroy(p->order, free); /* after the consumer's last revoke */
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
        if (p->assignment)
                rd_kafka_topic_partition_list_destroy(p->assignment);
        if (p->paused)
                rd_kafka_topic_partition_list_destroy(p->paused);
        if (p->held)
                rd_kafka_topic_partition_list_destroy(p->held);
        rs_http_stop(p->http);
        rs_cache_destroy(p->cache);
        rs_quiet_destroy(p->quiet);
        rs_registry_destroy(p->registry);
        rs_codec_destroy(p->codec);
        rs_pg_destroy(p->pg);
        for (int i = 0; p->more_pg && i < p->cfg->batch_parts - 1; i++)
                rs_pg_destroy(p->more_pg[i]);
        free(p->more_pg);
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
