/* The processor's Kafka consumer: subscription, rebalances, pausing during
 * outages, offsets, and the lag from librdkafka's statistics. */
#include "rs_kafka.h"
#include "rs_log.h"
#include "rs_order.h"
#include "rs_processor_int.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef rd_kafka_topic_partition_list_t tplist_t;

/* Event-time order (rs_order.h): payments may run ORDER_SLACK_MS ahead of
 * the sign-ups in record time; holding stops when the sign-ups have not
 * moved for ORDER_PATIENCE_MS; their ends are refreshed every ORDER_TICK_MS.
 * With no slack, holds cost a consumer that keeps up at 5,000 events/s its
 * latency target (p99 146 ms from payment to credit; 80 ms without holds). */
#define ORDER_SLACK_MS    50
#define ORDER_PATIENCE_MS 1000
#define ORDER_TICK_MS     5

static rs_event_type_t topic_type(const rs_processor_t *p, const char *topic)
{
        return strcmp(topic, p->cfg->topic_signups) == 0 ? RS_EV_SIGNUP : RS_EV_PAYMENT;
}

static bool in_list(const tplist_t *l, const char *topic, int32_t partition)
{
        return l && rd_kafka_topic_partition_list_find(l, topic, partition) != NULL;
}

static void list_add(tplist_t *l, const char *topic, int32_t partition)
{
        if (!in_list(l, topic, partition))
                rd_kafka_topic_partition_list_add(l, topic, partition);
}

/* "t[0] t[1] ..." into s (appended). */
static void describe(rs_buf_t *s, const tplist_t *parts)
{
        for (int i = 0; i < parts->cnt; i++)
                rs_buf_printf(s, "%s%s[%d]", i ? " " : "", parts->elems[i].topic,
                              (int)parts->elems[i].partition);
}

static void log_parts(const char *what, const tplist_t *parts)
{
        rs_buf_t s;
        rs_buf_init(&s);
        describe(&s, parts);
        rs_info("consumer", "%s %d partitions: %s", what, parts->cnt,
                s.data ? s.data : "");
        rs_buf_free(&s);
}

/* ---------------------------------------------------------------- pausing */

/* Pauses or resumes parts and records it in `kept`: p->paused (an outage's
 * pauses) or p->held (the order's). Per-partition errors are logged; a
 * partition that could not be resumed stays in kept (in p->paused,
 * rs_proc_paused_without_outage() finds it). Returns how many changed. */
static int pause_in(rs_processor_t *p, tplist_t *parts, bool pause, tplist_t *kept)
{
        rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(p->rk, parts)
                                        : rd_kafka_resume_partitions(p->rk, parts);
        if (err)
                rs_error("consumer", "cannot %s partitions: %s",
                         pause ? "pause" : "resume", rd_kafka_err2str(err));
        int changed = 0;
        for (int i = 0; i < parts->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &parts->elems[i];
                if (err || tp->err) {
                        rs_error("consumer", "cannot %s %s[%d]: %s",
                                 pause ? "pause" : "resume", tp->topic,
                                 (int)tp->partition,
                                 rd_kafka_err2str(err ? err : tp->err));
                        continue;
                }
                if (pause)
                        list_add(kept, tp->topic, tp->partition);
                else
                        rd_kafka_topic_partition_list_del(kept, tp->topic, tp->partition);
                changed++;
        }
        return changed;
}

static int count_paused(const rs_processor_t *p, rs_buf_t *names);

static void pause_parts(rs_processor_t *p, tplist_t *parts, bool pause)
{
        if (!parts || parts->cnt == 0)
                return;
        pause_in(p, parts, pause, p->paused);
        rs_gauge_set(p->m.paused, count_paused(p, NULL));
}

void rs_proc_pause_all(rs_processor_t *p, bool pause)
{
        if (pause) {
                pause_parts(p, p->assignment, true);
                return;
        }
        /* Everything this instance ever paused, assigned now or not: a
         * partition revoked while paused must not come back paused. Except
         * a partition whose record the order holds (rs_order.h): it stays
         * paused until rs_proc_order_tick releases it. */
        tplist_t *all = rd_kafka_topic_partition_list_copy(p->paused);
        for (int i = 0; i < p->held->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &p->held->elems[i];
                rd_kafka_topic_partition_list_del(all, tp->topic, tp->partition);
                rd_kafka_topic_partition_list_del(p->paused, tp->topic, tp->partition);
        }
        pause_parts(p, all, false);
        rd_kafka_topic_partition_list_destroy(all);
}

static int count_paused(const rs_processor_t *p, rs_buf_t *names)
{
        int n = 0;
        for (int i = 0; i < p->assignment->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &p->assignment->elems[i];
                if (!in_list(p->paused, tp->topic, tp->partition))
                        continue;
                if (names)
                        rs_buf_printf(names, "%s%s[%d]", n ? " " : "", tp->topic,
                                      (int)tp->partition);
                n++;
        }
        return n;
}

int rs_proc_paused_without_outage(const rs_processor_t *p, char *out, size_t size)
{
        if (p->degraded)
                return 0;
        rs_buf_t names;
        rs_buf_init(&names);
        int n = count_paused(p, &names);
        rs_strlcpy(out, names.data ? names.data : "", size);
        rs_buf_free(&names);
        return n;
}

/* ---------------------------------------------------------------- rebalances */

/* Drops in-memory records of revoked partitions: their next owner replays
 * them from the committed offset (the inbox makes any overlap harmless). */
static void drop_revoked(rs_processor_t *p, const tplist_t *parts)
{
        rs_batch_t *b = &p->batch;
        size_t kept = 0;
        for (size_t i = 0; i < b->n; i++) {
                rs_batch_msg_t *m = &b->msgs[i];
                if (in_list(parts, m->topic, m->partition)) {
                        if (m->opaque)
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

/* Logs and frees the error of an incremental (un)assign, if any. */
static void log_error(const char *what, rd_kafka_error_t *e)
{
        if (e) {
                rs_error("consumer", "%s failed: %s", what, rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
        }
}

static void assign_parts(rs_processor_t *p, rd_kafka_t *rk, tplist_t *parts,
                         bool cooperative)
{
        log_parts("assigned", parts);
        if (cooperative) {
                log_error("incremental assign", rd_kafka_incremental_assign(rk, parts));
        } else {
                rd_kafka_resp_err_t err = rd_kafka_assign(rk, parts);
                if (err)
                        rs_error("consumer", "assign failed: %s", rd_kafka_err2str(err));
                rd_kafka_topic_partition_list_destroy(p->assignment);
                p->assignment = rd_kafka_topic_partition_list_new(parts->cnt);
        }
        int64_t now = rs_monotonic_ms();
        for (int i = 0; i < parts->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &parts->elems[i];
                list_add(p->assignment, tp->topic, tp->partition);
                rs_order_assign(p->order, topic_type(p, tp->topic) == RS_EV_PAYMENT,
                                tp->partition, now);
        }
        /* Explicitly, either way: a partition paused during an outage and
         * revoked is still paused in librdkafka when it comes back. */
        pause_parts(p, parts, p->degraded);
        p->last_input_ms = rs_monotonic_ms();
}

static void commit_stored(rd_kafka_t *rk, const char *when)
{
        rd_kafka_resp_err_t err = rd_kafka_commit(rk, NULL, 0 /* sync */);
        /* _NO_OFFSET: nothing stored since the last commit. */
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
                rs_warn("consumer",
                        "offset commit %s failed (the next owner replays from the last "
                        "committed offset; the inbox makes that harmless): %s",
                        when, rd_kafka_err2str(err));
}

static void revoke_parts(rs_processor_t *p, rd_kafka_t *rk, rd_kafka_resp_err_t why,
                         tplist_t *parts, bool cooperative)
{
        log_parts(why == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS ? "revoked" : "lost",
                  parts);
        if (!p->isolating)
                drop_revoked(p, parts);
        for (int i = 0; i < parts->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &parts->elems[i];
                free(rs_order_revoke(p->order, topic_type(p, tp->topic) == RS_EV_PAYMENT,
                                     tp->partition));
                rd_kafka_topic_partition_list_del(p->held, tp->topic, tp->partition);
        }
        rs_gauge_set(p->m.held, p->held->cnt);
        if (!rd_kafka_assignment_lost(rk))
                commit_stored(rk, "on revoke");
        if (cooperative) {
                log_error("incremental unassign",
                          rd_kafka_incremental_unassign(rk, parts));
                for (int i = 0; i < parts->cnt; i++)
                        rd_kafka_topic_partition_list_del(p->assignment,
                                                          parts->elems[i].topic,
                                                          parts->elems[i].partition);
        } else {
                rd_kafka_resp_err_t err = rd_kafka_assign(rk, NULL);
                if (err)
                        rs_error("consumer", "unassign failed: %s",
                                 rd_kafka_err2str(err));
                rd_kafka_topic_partition_list_destroy(p->assignment);
                p->assignment = rd_kafka_topic_partition_list_new(0);
        }
}

/* Every librdkafka call here may meet a consumer that is closing or has lost
 * its group membership (a member frozen past its session timeout, "Unknown
 * member"): rd_kafka_rebalance_protocol() is then NULL, and the eager calls
 * are the ones that still apply. */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, tplist_t *parts,
                         void *opaque)
{
        rs_processor_t *p = opaque;
        const char *protocol = rd_kafka_rebalance_protocol(rk);
        bool cooperative = protocol && strcmp(protocol, "COOPERATIVE") == 0;
        /* Another process may have changed our users meanwhile, or may from
         * now on (rs_quiet.h). */
        rs_quiet_clear(p->quiet);
        if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
                assign_parts(p, rk, parts, cooperative);
        else
                revoke_parts(p, rk, err, parts, cooperative);
        p->joined = true;
        rs_gauge_set(p->m.assigned, p->assignment->cnt);
        rs_gauge_set(p->m.paused, count_paused(p, NULL)); /* revokes change it too */
        rs_proc_update_ready(p);
}

/* ---------------------------------------------------------------- lag */

/* Records behind in one partition of the statistics. librdkafka reports -1
 * while the group has no committed offset for it yet (nothing committed
 * since the topic was created): everything from the log start is then
 * behind. */
static json_int_t partition_lag(json_t *part)
{
        json_int_t lag = json_integer_value(json_object_get(part, "consumer_lag"));
        json_int_t hi = json_integer_value(json_object_get(part, "hi_offset"));
        json_int_t lo = json_integer_value(json_object_get(part, "lo_offset"));
        json_int_t committed =
            json_integer_value(json_object_get(part, "committed_offset"));
        if (lag >= 0 || hi <= 0 || committed >= 0)
                return RS_MAX(lag, 0);
        return hi - RS_MAX(lo, 0);
}

/* librdkafka statistics (every statistics.interval.ms, from the poll call):
 * the lag summed over the partitions assigned now. librdkafka keeps
 * reporting partitions it no longer fetches, with stale offsets. */
static int stats_cb(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
        (void)rk;
        rs_processor_t *p = opaque;
        json_t *root = json_loadb(json, len, 0, NULL);
        json_t *topics = json_object_get(root, "topics"), *t, *parts, *part;
        const char *name, *id;
        json_int_t lag = 0;
        json_object_foreach (topics, name, t) {
                parts = json_object_get(t, "partitions");
                json_object_foreach (parts, id, part) {
                        if (in_list(p->assignment, name, (int32_t)atoi(id)))
                                lag += partition_lag(part);
                }
        }
        if (root) {
                p->lag = lag;
                rs_gauge_set(p->m.lag, (double)lag);
        }
        json_decref(root);
        return 0; /* librdkafka frees json */
}

/* ---------------------------------------------------------------- set-up */

rd_kafka_t *rs_proc_consumer_new(rs_processor_t *p, char *errstr, size_t errstr_size)
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
            "session.timeout.ms", "10000", "heartbeat.interval.ms", "3000",
            /* Prefetch: librdkafka's defaults (64 MiB queued, 50 MiB per
             * fetch) held most of the process's memory under a backlog.
             * Fetches of 4 MiB, 512 KiB per partition, serve all partitions
             * of both input topics at once (with 1 MiB each, one topic could
             * run far ahead of the other in a backlog, and payments processed
             * before their sign-ups all need the inbox); much smaller ones
             * cost the broker more CPU than Postgres's share could spare.
             * 4 MiB queued instead of 8: the same rate on the million-event
             * production stream, 60 MiB of peak RSS instead of 66-73 (the
             * queued records live in librdkafka's threads' heap). A full
             * queue stops the fetcher until rs_waker wakes it (rs_waker.h);
             * with it, 2 MiB ran at 97,500 events/s (48 MiB RSS), 4 MiB at
             * 101,700 (60 MiB). README "Measured numbers" has the runs. */
            "queued.max.messages.kbytes", "4096", "fetch.max.bytes", "4194304",
            "max.partition.fetch.bytes", "524288", NULL};
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
        p->assignment = rd_kafka_topic_partition_list_new(0);
        p->paused = rd_kafka_topic_partition_list_new(0);
        p->held = rd_kafka_topic_partition_list_new(0);
        p->order = rs_order_new(ORDER_SLACK_MS, ORDER_PATIENCE_MS);
        p->lag = -1;
        return rk;
}

bool rs_proc_subscribe(rs_processor_t *p, char *errstr, size_t errstr_size)
{
        tplist_t *topics = rd_kafka_topic_partition_list_new(2);
        rd_kafka_topic_partition_list_add(topics, p->cfg->topic_signups,
                                          RD_KAFKA_PARTITION_UA);
        rd_kafka_topic_partition_list_add(topics, p->cfg->topic_payments,
                                          RD_KAFKA_PARTITION_UA);
        rd_kafka_resp_err_t err = rd_kafka_subscribe(p->rk, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (err) {
                snprintf(errstr, errstr_size, "cannot subscribe: %s",
                         rd_kafka_err2str(err));
                return false;
        }
        p->subscribed = true;
        return true;
}

bool rs_proc_kafka_reachable(rs_processor_t *p, int timeout_ms, char *errstr,
                             size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t err = rd_kafka_metadata(p->rk, 0, NULL, &md, timeout_ms);
        if (md)
                rd_kafka_metadata_destroy(md);
        if (err)
                snprintf(errstr, errstr_size, "Kafka (%s) unreachable: %s",
                         p->cfg->kafka_brokers, rd_kafka_err2str(err));
        return err == RD_KAFKA_RESP_ERR_NO_ERROR;
}

void rs_proc_consumer_close(rs_processor_t *p)
{
        commit_stored(p->rk, "at shutdown");
        rd_kafka_resp_err_t err = rd_kafka_consumer_close(p->rk);
        if (err)
                rs_warn("consumer", "closing the consumer: %s", rd_kafka_err2str(err));
}

/* ---------------------------------------------------------------- records */

static void add(rs_processor_t *p, rd_kafka_message_t *msg)
{
        const char *topic = rd_kafka_topic_name(msg->rkt);
        rs_batch_add(&p->batch, p->codec, topic_type(p, topic), topic, msg->partition,
                     msg->offset, msg->key, msg->key_len, msg->payload, msg->len, msg);
}

/* Refreshes the sign-up partitions' ends at most every ORDER_TICK_MS. */
static void refresh_ends(rs_processor_t *p, int64_t now)
{
        if (now - p->last_order_ms < ORDER_TICK_MS)
                return;
        p->last_order_ms = now;
        for (int i = 0; i < p->assignment->cnt; i++) {
                const rd_kafka_topic_partition_t *tp = &p->assignment->elems[i];
                int64_t lo = -1, hi = -1;
                if (topic_type(p, tp->topic) != RS_EV_SIGNUP)
                        continue;
                /* Cached from the last fetch response: no request. */
                if (rd_kafka_get_watermark_offsets(p->rk, tp->topic, tp->partition, &lo,
                                                   &hi) != RD_KAFKA_RESP_ERR_NO_ERROR)
                        hi = -1;
                rs_order_signup_end(p->order, tp->partition, hi < 0 ? -1 : hi);
        }
}

/* Holds (pauses) or releases (resumes) one payment partition for the order,
 * recorded in p->held; false if librdkafka refused. */
static bool hold_partition(rs_processor_t *p, const char *topic, int32_t partition,
                           bool hold)
{
        tplist_t *one = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(one, topic, partition);
        bool ok = pause_in(p, one, hold, p->held) == 1;
        rd_kafka_topic_partition_list_destroy(one);
        rs_gauge_set(p->m.held, p->held->cnt);
        return ok;
}

/* A payment record held back: a copy of its bytes, so that it does not keep
 * librdkafka's whole fetch response alive. */
typedef struct held_rec {
        int64_t offset;
        size_t key_len, value_len;
        bool keyed, valued;    /* a key, a value (NULL and empty differ) */
        unsigned char bytes[]; /* key, then value */
} held_rec_t;

/* Event-time order (rs_order.h): notes a sign-up; holds back a payment too
 * far ahead of the sign-ups, pausing its partition (which drops what
 * librdkafka prefetched of it: the partition fetches again from the next
 * record when resumed). Not during an outage: everything is paused then.
 * true: msg is held (as a copy) and destroyed. */
static bool hold(rs_processor_t *p, rd_kafka_message_t *msg, int64_t now)
{
        const char *topic = rd_kafka_topic_name(msg->rkt);
        int64_t ts = rd_kafka_message_timestamp(msg, NULL);
        if (ts < 0)
                ts = RS_ORDER_NO_TIME;
        if (topic_type(p, topic) == RS_EV_SIGNUP) {
                rs_order_signup(p->order, msg->partition, msg->offset, ts);
                return false;
        }
        refresh_ends(p, now);
        if (p->degraded || !rs_order_ahead(p->order, msg->partition, ts, now) ||
            !hold_partition(p, topic, msg->partition, true))
                return false;
        held_rec_t *h = rs_malloc(sizeof(*h) + msg->key_len + msg->len);
        *h = (held_rec_t){.offset = msg->offset,
                          .key_len = msg->key_len,
                          .value_len = msg->len,
                          .keyed = msg->key != NULL,
                          .valued = msg->payload != NULL};
        if (msg->key_len)
                memcpy(h->bytes, msg->key, msg->key_len);
        if (msg->len)
                memcpy(h->bytes + msg->key_len, msg->payload, msg->len);
        if (!rs_order_hold(p->order, msg->partition, ts, h)) { /* cannot happen */
                free(h);
                hold_partition(p, topic, msg->partition, false);
                return false;
        }
        rs_counter_inc(p->m.holds);
        rd_kafka_message_destroy(msg);
        return true;
}

bool rs_proc_poll_one(rs_processor_t *p, int timeout_ms)
{
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(p->rk, timeout_ms);
        if (!msg)
                return false;
        if (msg->err) {
                if (msg->err == RD_KAFKA_RESP_ERR__FATAL)
                        p->fatal = true;
                const char *topic = msg->rkt ? rd_kafka_topic_name(msg->rkt) : NULL;
                rs_warn("consumer", "%s%s%s", topic ? topic : "", topic ? ": " : "",
                        rd_kafka_message_errstr(msg));
                rd_kafka_message_destroy(msg);
                return false;
        }
        int64_t now = rs_monotonic_ms();
        p->last_input_ms = p->last_progress_ms = now;
        if (hold(p, msg, now))
                return false;
        add(p, msg);
        return true;
}

bool rs_proc_order_tick(rs_processor_t *p)
{
        if (rs_order_held(p->order) == 0 || p->degraded)
                return false;
        int64_t now = rs_monotonic_ms();
        refresh_ends(p, now);
        const char *topic = p->cfg->topic_payments;
        bool added = false;
        void *rec;
        for (int32_t part; (part = rs_order_release(p->order, now, &rec)) >= 0;) {
                held_rec_t *h = rec;
                /* Its record first: the partition fetches from the next. The
                 * batch owns the copy (no message to destroy). */
                unsigned char *bytes =
                    rs_arena_alloc(&p->batch.arena, h->key_len + h->value_len + 1);
                memcpy(bytes, h->bytes, h->key_len + h->value_len);
                rs_batch_add(&p->batch, p->codec, RS_EV_PAYMENT, topic, part, h->offset,
                             h->keyed ? bytes : NULL, h->key_len,
                             h->valued ? bytes + h->key_len : NULL, h->value_len, NULL);
                free(h);
                added = true;
                hold_partition(p, topic, part, false);
        }
        return added;
}

/* Two batches or fewer left queued after a full batch: the fetcher may have
 * stopped at the queue's limit (rs_waker.h); at most one wake per 20 ms. */
void rs_proc_wake_fetcher(rs_processor_t *p)
{
        int64_t now = rs_monotonic_ms();
        if (!p->waker || !p->assignment || now - p->last_wake_ms < 20)
                return;
        rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(p->rk);
        size_t queued = q ? rd_kafka_queue_length(q) : 0;
        if (q)
                rd_kafka_queue_destroy(q);
        if (queued < 2 * (size_t)p->cfg->batch_size &&
            rs_waker_wake(p->waker, p->assignment))
                p->last_wake_ms = now;
}

void rs_proc_store_offsets(rs_processor_t *p, const rs_batch_t *b)
{
        tplist_t *list = rd_kafka_topic_partition_list_new((int)b->n);
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
        rd_kafka_resp_err_t err = rd_kafka_offsets_store(p->rk, list);
        for (int i = 0; i < list->cnt; i++) {
                if (list->elems[i].err)
                        rs_debug("consumer", "offset not stored for %s[%d]: %s",
                                 list->elems[i].topic, (int)list->elems[i].partition,
                                 rd_kafka_err2str(list->elems[i].err));
        }
        if (err && list->cnt > 0)
                rs_debug("consumer", "offsets store: %s", rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(list);
}
