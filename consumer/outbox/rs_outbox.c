#include "rs_outbox.h"
#include "rs_outbox_sql.h"
#include "rs_idset.h"
#include "rs_outbox_find.h"
#include "rs_kafka.h"
#include "rs_log.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SWEEP_LIMIT 1000
/* Batches whose lease expired taken apart by one sweep; their rows are then
 * claimed SWEEP_LIMIT at a time, by this sweep and the following ones. */
#define DISSOLVE_LIMIT 10
/* How long librdkafka keeps trying to deliver a record (message.timeout.ms
 * default): longer than a broker restart, so that the idempotent producer's
 * own retries, which never duplicate, deliver it. Meanwhile the row's lease
 * is renewed, so no sweep republishes it. */
#define DELIVERY_TIMEOUT_MS "300000"

/* How long a sweep may read the output topics looking for unconfirmed rows
 * (at most half the lease, see find_delivered). */
#define FIND_TIMEOUT_MS 30000
/* A row whose topic could not be searched (the broker is down, say) waits
 * for a later sweep rather than being republished blindly: producing would
 * wait for the broker anyway, and by then the search can run. Only a row
 * older than this, whose topic has stayed unsearchable, is republished
 * unchecked: twice is better than never. */
#define UNCHECKED_AFTER_MS (10 * 60 * 1000)

/* A growing list of ids. */
typedef struct idvec {
        int64_t *v;
        size_t n, cap;
} idvec_t;

static void idvec_push(idvec_t *a, int64_t id)
{
        if (a->n == a->cap) {
                a->cap = a->cap ? a->cap * 2 : 1024;
                a->v = rs_realloc(a->v, a->cap * sizeof(int64_t));
        }
        a->v[a->n++] = id;
}

/* The first n ids are done with: forgotten, and dropped from *held. */
static void idvec_shift(idvec_t *a, size_t n, rs_idset_t *held)
{
        n = RS_MIN(n, a->n);
        if (n == 0)
                return; /* a->v may be NULL */
        for (size_t i = 0; i < n; i++)
                rs_idset_del(held, a->v[i]);
        memmove(a->v, a->v + n, (a->n - n) * sizeof(int64_t));
        a->n -= n;
}

static void idvec_to_array(const idvec_t *a, rs_pgarr_t *arr)
{
        rs_pgarr_init_binary(arr, RS_PG_INT8OID);
        for (size_t i = 0; i < a->n; i++)
                rs_pgarr_int(arr, a->v[i]);
}

/* An outbox batch being published: its rows not acknowledged yet. */
typedef struct batch_track {
        int64_t id;
        size_t unacked;
        bool failed; /* a row's delivery failed: the sweep takes the batch apart */
} batch_track_t;

struct rs_outbox {
        const rs_config_t *cfg;
        rd_kafka_t *rk;
        rd_kafka_t *finder; /* created at the first republish */
        rs_pg_t *pg;
        const char *topics[3];    /* by rs_dest_t; point into the caller's config */
        rd_kafka_topic_t *rkt[3]; /* held from the start (rs_outbox_new) */
        int64_t lease_ms;
        int64_t retention_hours;
        /* Rows standing alone (republished by the sweep) acknowledged and
         * batches whose every row was, not yet marked. */
        idvec_t delivered, done;
        batch_track_t *tracks; /* the batches in flight */
        size_t n_tracks, cap_tracks;
        /* Rows standing alone and batches produced by this process and not
         * yet marked published (in flight, or delivered): their leases are
         * renewed. */
        rs_idset_t held, held_batches;
        int64_t last_renew_ms; /* monotonic */
        /* rs_outbox_mark_start: a connection of its own, and how many of the
         * delivered rows and done batches its statement under way marks
         * (marking: none unless set). */
        rs_pg_t *mark_pg;
        bool marking;
        size_t marking_rows, marking_batches;
        rs_outbox_stats_t stats;
};

static bool mark_collect(rs_outbox_t *o, bool wait, char *errstr, size_t errstr_size);

/* What a message's delivery report needs travels as its opaque:
 * (id << 3) | (in a batch << 2) | dest, id its batch's or, standing alone,
 * its own. */
static void *pack(const rs_outmsg_t *m)
{
        int64_t batched = m->outbox_batch != 0;
        return (void *)(intptr_t)((batched ? m->outbox_batch : m->outbox_id) << 3 |
                                  batched << 2 | (int64_t)m->dest);
}

static batch_track_t *track_of(rs_outbox_t *o, int64_t batch)
{
        for (size_t i = o->n_tracks; i-- > 0;)
                if (o->tracks[i].id == batch)
                        return &o->tracks[i];
        return NULL;
}

/* A row of batch is about to be produced. */
static void track_add(rs_outbox_t *o, int64_t batch)
{
        batch_track_t *t = track_of(o, batch);
        if (!t) {
                if (o->n_tracks == o->cap_tracks) {
                        o->cap_tracks = o->cap_tracks ? o->cap_tracks * 2 : 16;
                        o->tracks = rs_realloc(o->tracks, o->cap_tracks * sizeof(*t));
                }
                t = &o->tracks[o->n_tracks++];
                *t = (batch_track_t){.id = batch};
                rs_idset_add(&o->held_batches, batch);
        }
        t->unacked++;
}

/* A row of batch was acknowledged (ok) or will not be. Once every row was,
 * the batch is marked published at the next mark; if one was not, the batch
 * is left: its lease is no longer renewed, and when it has expired the sweep
 * takes the batch apart and publishes its rows one by one (the delivered
 * ones it finds on their topics). */
static void track_report(rs_outbox_t *o, int64_t batch, bool ok)
{
        batch_track_t *t = track_of(o, batch);
        if (!t)
                return;
        t->failed |= !ok;
        if (--t->unacked > 0)
                return;
        if (t->failed) {
                rs_idset_del(&o->held_batches, batch);
                rs_warn("outbox",
                        "outbox batch %lld was not wholly delivered: the sweep "
                        "publishes its rows once its lease expires",
                        (long long)batch);
        } else {
                idvec_push(&o->done, batch);
        }
        *t = o->tracks[--o->n_tracks];
}

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        rs_outbox_t *o = opaque;
        int64_t packed = (int64_t)(intptr_t)m->_private;
        int64_t id = packed >> 3;
        bool batched = packed & 4;
        rs_dest_t dest = (rs_dest_t)(packed & 3);
        if (m->err) {
                /* Left unpublished, lease no longer renewed: the sweep
                 * republishes it when the lease expires. */
                o->stats.failed++;
                rs_warn("outbox", "delivery of an outbox row (%s %lld) to %s failed: %s",
                        batched ? "batch" : "row", (long long)id,
                        rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
                if (batched)
                        track_report(o, id, false);
                else
                        rs_idset_del(&o->held, id);
                return;
        }
        o->stats.delivered[dest]++;
        if (batched)
                track_report(o, id, true);
        else
                idvec_push(&o->delivered, id);
}

rs_outbox_t *rs_outbox_new(const rs_config_t *cfg, rs_pg_t *pg, char *errstr,
                           size_t errstr_size)
{
        const char *defaults[] = {"enable.idempotence", "true", "acks", "all",
                                  "linger.ms", "5", "message.timeout.ms",
                                  DELIVERY_TIMEOUT_MS, "compression.type", "lz4",
                                  /* A dead letter is the input record unchanged,
                                   * and input topics may hold records above
                                   * librdkafka's 1 MB default. */
                                  "message.max.bytes", "67108864",
                                  /* Records in flight at most (librdkafka: 100,000):
                                   * beyond, publishing waits for deliveries, so a
                                   * broker slower than the batches bounds memory
                                   * instead of queueing every credit. */
                                  "queue.buffering.max.messages", "10000", NULL};
        rd_kafka_conf_t *conf = rs_kafka_conf(cfg, defaults, errstr, errstr_size);
        if (!conf)
                return NULL;
        rs_outbox_t *o = rs_calloc(1, sizeof(*o));
        o->cfg = cfg;
        o->pg = pg;
        o->topics[RS_DEST_CREDITED] = cfg->topic_credited;
        o->topics[RS_DEST_REVERSED] = cfg->topic_reversed;
        o->topics[RS_DEST_DLQ] = cfg->topic_dlq;
        o->mark_pg = rs_pg_new(pg->url, pg->statement_timeout_ms);
        o->lease_ms = cfg->outbox_lease_ms;
        o->retention_hours = cfg->outbox_retention_hours;
        o->stats.pending = -1;
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rd_kafka_conf_set_opaque(conf, o);
        o->rk = rs_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
        if (!o->rk) {
                rs_pg_destroy(o->mark_pg);
                free(o);
                return NULL;
        }
        /* Known from the start, the output topics have their metadata before
         * the first record: a topic first named by a record waited for
         * librdkafka's next metadata round, about 0.6 s, and the records
         * behind it filled the producer's queue. */
        for (size_t i = 0; i < RS_ARRAY_SIZE(o->rkt); i++)
                o->rkt[i] = rd_kafka_topic_new(o->rk, o->topics[i], NULL);
        return o;
}

void rs_outbox_destroy(rs_outbox_t *o)
{
        if (!o)
                return;
        char err[512];
        if (!mark_collect(o, true, err, sizeof(err)))
                rs_debug("outbox", "marking later: %s", err);
        rs_pg_destroy(o->mark_pg);
        for (size_t i = 0; i < RS_ARRAY_SIZE(o->rkt); i++)
                if (o->rkt[i])
                        rd_kafka_topic_destroy(o->rkt[i]);
        rd_kafka_destroy(o->rk);
        if (o->finder) {
                rd_kafka_consumer_close(o->finder);
                rd_kafka_destroy(o->finder);
        }
        free(o->delivered.v);
        free(o->done.v);
        free(o->tracks);
        rs_idset_free(&o->held);
        rs_idset_free(&o->held_batches);
        free(o);
}

rd_kafka_t *rs_outbox_handle(rs_outbox_t *o)
{
        return o->rk;
}

static rd_kafka_headers_t *headers_of(const rs_outmsg_t *m)
{
        char part[16], off[24], id[24];
        snprintf(part, sizeof(part), "%d", (int)m->source_partition);
        snprintf(off, sizeof(off), "%lld", (long long)m->source_offset);
        snprintf(id, sizeof(id), "%lld", (long long)m->outbox_id);
        rd_kafka_headers_t *h = rd_kafka_headers_new(m->error_class ? 7 : 5);
        rd_kafka_header_add(h, "event_type", -1, m->event_type, -1);
        rd_kafka_header_add(h, "source_topic", -1, m->source_topic, -1);
        rd_kafka_header_add(h, "source_partition", -1, part, -1);
        rd_kafka_header_add(h, "source_offset", -1, off, -1);
        rd_kafka_header_add(h, RS_OUTBOX_ID_HEADER, -1, id, -1);
        if (m->error_class) {
                rd_kafka_header_add(h, "error_class", -1, m->error_class, -1);
                rd_kafka_header_add(h, "error_message", -1,
                                    m->error_message ? m->error_message : "", -1);
        }
        return h;
}

static void produce_one(rs_outbox_t *o, const rs_outmsg_t *m)
{
        int64_t next_mark = rs_monotonic_ms() + 1000;
        for (;;) {
                rd_kafka_headers_t *h = headers_of(m);
                rd_kafka_resp_err_t err = rd_kafka_producev(
                    o->rk, RD_KAFKA_V_TOPIC(o->topics[m->dest]),
                    RD_KAFKA_V_KEY(m->key, m->key ? m->key_len : 0),
                    RD_KAFKA_V_VALUE((void *)m->payload, m->payload ? m->payload_len : 0),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(h),
                    RD_KAFKA_V_OPAQUE(pack(m)), RD_KAFKA_V_END);
                if (!err) {
                        if (!m->outbox_batch)
                                rs_idset_add(&o->held, m->outbox_id);
                        return; /* h is now owned by the message */
                }
                rd_kafka_headers_destroy(h);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        /* Left unpublished, lease not renewed: the sweep
                         * retries after the lease. */
                        if (m->outbox_batch)
                                track_report(o, m->outbox_batch, false);
                        else
                                rs_idset_del(&o->held, m->outbox_id);
                        o->stats.failed++;
                        rs_warn("outbox", "cannot produce outbox row %lld: %s",
                                (long long)m->outbox_id, rd_kafka_err2str(err));
                        return;
                }
                rd_kafka_poll(o->rk, 100); /* local queue full: let deliveries drain */
                /* A broker that does not answer keeps us here: the rows
                 * delivered meanwhile are marked and the leases of those in
                 * flight renewed, as the processor's upkeep would. */
                rs_outbox_mark_due(o, &next_mark);
        }
}

void rs_outbox_publish(rs_outbox_t *o, const rs_outmsg_t *msgs, size_t n)
{
        /* Every row counted before any is produced: a full queue serves
         * delivery reports while the batch is produced, and a batch is done
         * only when its last row was acknowledged. */
        for (size_t i = 0; i < n; i++)
                if (msgs[i].outbox_batch)
                        track_add(o, msgs[i].outbox_batch);
        for (size_t i = 0; i < n; i++)
                produce_one(o, &msgs[i]);
        rd_kafka_poll(o->rk, 0);
}

void rs_outbox_poll(rs_outbox_t *o, int timeout_ms)
{
        rd_kafka_poll(o->rk, timeout_ms);
}

static void idset_to_array(const rs_idset_t *s, rs_pgarr_t *arr)
{
        rs_pgarr_init(arr);
        for (size_t i = 0; i < s->cap; i++)
                if (s->slots[i] > 0)
                        rs_pgarr_int(arr, s->slots[i]);
}

/* Extends the lease of every row and batch this process holds (in flight or
 * delivered and not yet marked) so that no sweep republishes it while its
 * delivery can still succeed; a lease third at most apart. */
static bool renew(rs_outbox_t *o, char *errstr, size_t errstr_size)
{
        int64_t now = rs_monotonic_ms();
        if ((o->held.count == 0 && o->held_batches.count == 0) ||
            now - o->last_renew_ms < o->lease_ms / 3)
                return true;
        rs_pgarr_t ids, batches;
        idset_to_array(&o->held, &ids);
        idset_to_array(&o->held_batches, &batches);
        char lease[24];
        snprintf(lease, sizeof(lease), "%lld", (long long)o->lease_ms);
        const char *params[] = {rs_pgarr_get(&ids), rs_pgarr_get(&batches), lease};
        bool ok = rs_pg_cmd(o->pg, SQL_OUTBOX_RENEW, 3, params, errstr, errstr_size);
        rs_pgarr_free(&ids);
        rs_pgarr_free(&batches);
        if (ok)
                o->last_renew_ms = now;
        return ok;
}

/* The result of the mark under way, if any: waiting for it, or only if it is
 * there (true while it runs). false + errstr if it failed: its rows stay for
 * the next mark. */
static bool mark_collect(rs_outbox_t *o, bool wait, char *errstr, size_t errstr_size)
{
        if (!o->marking)
                return true;
        PGconn *c = o->mark_pg->conn;
        if (!wait && (!PQconsumeInput(c) || PQisBusy(c)) && PQstatus(c) == CONNECTION_OK)
                return true; /* still running */
        bool ok = PQstatus(c) == CONNECTION_OK;
        if (!ok)
                snprintf(errstr, errstr_size, "%s", PQerrorMessage(c));
        PGresult *res;
        while (ok && (res = PQgetResult(c)) != NULL) {
                ok = PQresultStatus(res) == PGRES_COMMAND_OK;
                if (!ok)
                        snprintf(errstr, errstr_size, "%s", PQresultErrorMessage(res));
                PQclear(res);
        }
        if (ok) {
                idvec_shift(&o->delivered, o->marking_rows, &o->held);
                idvec_shift(&o->done, o->marking_batches, &o->held_batches);
        } else {
                while ((res = PQgetResult(c)) != NULL)
                        PQclear(res);
                rs_pg_disconnect(o->mark_pg);
        }
        o->marking = false;
        return ok;
}

/* Sends the UPDATE of the rows and batches delivered so far on the marking
 * connection (none under way). */
static bool mark_send(rs_outbox_t *o, char *errstr, size_t errstr_size)
{
        if (o->delivered.n == 0 && o->done.n == 0)
                return true;
        if (!rs_pg_connect(o->mark_pg, errstr, errstr_size))
                return false;
        rs_pgarr_t ids, batches; /* binary: thousands of ids are copied, not parsed */
        idvec_to_array(&o->delivered, &ids);
        idvec_to_array(&o->done, &batches);
        const char *values[] = {rs_pgarr_get(&ids), rs_pgarr_get(&batches)};
        const int lengths[] = {rs_pgarr_len(&ids), rs_pgarr_len(&batches)},
                  formats[] = {1, 1};
        bool ok = PQsendQueryParams(o->mark_pg->conn, SQL_OUTBOX_MARK, 2, NULL, values,
                                    lengths, formats, 0);
        rs_pgarr_free(&ids);
        rs_pgarr_free(&batches);
        if (ok) {
                o->marking = true;
                o->marking_rows = o->delivered.n;
                o->marking_batches = o->done.n;
        } else {
                snprintf(errstr, errstr_size, "%s", PQerrorMessage(o->mark_pg->conn));
                rs_pg_disconnect(o->mark_pg);
        }
        return ok;
}

void rs_outbox_mark_start(rs_outbox_t *o)
{
        char err[512];
        if (!mark_collect(o, false, err, sizeof(err)))
                rs_debug("outbox", "marking later: %s", err);
        if (!o->marking && !mark_send(o, err, sizeof(err)))
                rs_debug("outbox", "marking later: %s", err);
}

bool rs_outbox_renew(rs_outbox_t *o, char *errstr, size_t errstr_size)
{
        return renew(o, errstr, errstr_size);
}

/* The same UPDATE as rs_outbox_mark_start, waited for. A failed mark under
 * way leaves its rows to this one. */
bool rs_outbox_mark(rs_outbox_t *o, char *errstr, size_t errstr_size)
{
        mark_collect(o, true, errstr, errstr_size);
        return mark_send(o, errstr, errstr_size) &&
               mark_collect(o, true, errstr, errstr_size) &&
               renew(o, errstr, errstr_size);
}

void rs_outbox_mark_due(rs_outbox_t *o, int64_t *next_ms)
{
        if (rs_monotonic_ms() < *next_ms)
                return;
        *next_ms = rs_monotonic_ms() + 1000;
        char err[256];
        if (!rs_outbox_mark(o, err, sizeof(err)))
                rs_debug("outbox", "marking later: %s", err);
}

static bool unescape(rs_arena_t *a, const char *hex, const void **out, size_t *len)
{
        if (!hex) {
                *out = NULL;
                *len = 0;
                return true;
        }
        size_t n = 0;
        unsigned char *raw = PQunescapeBytea((const unsigned char *)hex, &n);
        if (!raw)
                return false;
        *out = rs_arena_strndup(a, (const char *)raw, n);
        *len = n;
        PQfreemem(raw);
        return true;
}

static bool row_to_msg(const PGresult *res, int r, rs_arena_t *a, rs_outmsg_t *m)
{
        memset(m, 0, sizeof(*m));
        m->outbox_id = rs_pg_int(res, r, CLAIM_ID, 0);
        if (!rs_dest_parse(PQgetvalue(res, r, CLAIM_DESTINATION), &m->dest))
                return false;
        m->event_type = rs_arena_strdup(a, PQgetvalue(res, r, CLAIM_EVENT_TYPE));
        m->source_topic = rs_arena_strdup(a, PQgetvalue(res, r, CLAIM_SOURCE_TOPIC));
        m->source_partition = (int32_t)rs_pg_int(res, r, CLAIM_SOURCE_PARTITION, -1);
        m->source_offset = rs_pg_int(res, r, CLAIM_SOURCE_OFFSET, -1);
        m->error_class = rs_arena_strdup(a, rs_pg_str(res, r, CLAIM_ERROR_CLASS));
        m->error_message = rs_arena_strdup(a, rs_pg_str(res, r, CLAIM_ERROR_MESSAGE));
        return unescape(a, rs_pg_str(res, r, CLAIM_KEY), &m->key, &m->key_len) &&
               unescape(a, rs_pg_str(res, r, CLAIM_PAYLOAD), &m->payload,
                        &m->payload_len);
}

/* Of the claimed rows, those already on their topics (see rs_outbox_find.h),
 * into *found; searched[dest] says whether the search of that destination's
 * topic finished. The rows this process holds (the claimed ones among them)
 * have their leases renewed just before the search, which takes half a lease
 * at most, and again after it. */
static void find_delivered(rs_outbox_t *o, const rs_outmsg_t *rows,
                           const int64_t *created_ms, int n, rs_idset_t *found,
                           bool searched[3])
{
        char err[512];
        o->last_renew_ms = 0;
        if (!renew(o, err, sizeof(err)))
                rs_warn("outbox", "cannot renew the leases before the search: %s", err);
        int64_t deadline = rs_monotonic_ms() + RS_MIN(FIND_TIMEOUT_MS, o->lease_ms / 2);
        if (!o->finder && !(o->finder = rs_outbox_finder_new(o->cfg, err, sizeof(err)))) {
                rs_warn("outbox", "cannot look for unconfirmed rows on the topics: %s",
                        err);
                return;
        }
        for (int d = 0; d < 3; d++) {
                rs_idset_t wanted = {0};
                int64_t since = INT64_MAX;
                for (int i = 0; i < n; i++) {
                        if (rows[i].dest == (rs_dest_t)d) {
                                rs_idset_add(&wanted, rows[i].outbox_id);
                                since = RS_MIN(since, created_ms[i]);
                        }
                }
                searched[d] = !wanted.count ||
                              rs_outbox_find(o->finder, o->topics[d], &wanted, since,
                                             found, deadline, err, sizeof(err));
                if (!searched[d])
                        rs_warn("outbox", "cannot search %s for unconfirmed rows: %s",
                                o->topics[d], err);
                rs_idset_free(&wanted);
        }
}

static int republish(rs_outbox_t *o, char *errstr, size_t errstr_size)
{
        char lease[24], limit[16];
        snprintf(lease, sizeof(lease), "%lld", (long long)o->lease_ms);
        snprintf(limit, sizeof(limit), "%d", SWEEP_LIMIT);
        const char *params[] = {lease, limit};
        /* SKIP LOCKED + the new lease: concurrent sweeps of several instances
         * claim disjoint rows. */
        PGresult *res =
            rs_pg_exec(o->pg, SQL_OUTBOX_CLAIM, 2, params, errstr, errstr_size);
        if (!res)
                return -1;
        int rows = PQntuples(res), n = 0, found_n = 0;
        rs_arena_t a;
        rs_arena_init(&a, 64 * 1024);
        rs_outmsg_t *msgs = rs_calloc((size_t)RS_MAX(rows, 1), sizeof(*msgs));
        int64_t *created = rs_calloc((size_t)RS_MAX(rows, 1), sizeof(*created));
        for (int r = 0; r < rows; r++) {
                if (!row_to_msg(res, r, &a, &msgs[n])) {
                        rs_error("outbox", "outbox row %s is unreadable; skipped",
                                 PQgetvalue(res, r, CLAIM_ID));
                        continue;
                }
                /* Still in flight from this process (its renewal was late):
                 * its delivery report will mark it. */
                if (rs_idset_has(&o->held, msgs[n].outbox_id))
                        continue;
                created[n++] = rs_pg_int(res, r, CLAIM_CREATED_AT, 0);
        }
        PQclear(res);
        rs_idset_t found = {0};
        bool searched[3] = {false, false, false};
        if (n) {
                for (int i = 0; i < n; i++)
                        rs_idset_add(&o->held, msgs[i].outbox_id);
                find_delivered(o, msgs, created, n, &found, searched);
                o->last_renew_ms = 0; /* the search took time: renew now */
                if (!renew(o, errstr, errstr_size))
                        rs_warn("outbox", "cannot renew the leases after the search: %s",
                                errstr);
        }
        int later = 0, unchecked = 0;
        int64_t now = rs_now_ms();
        for (int i = 0; i < n; i++) {
                if (rs_idset_has(&found, msgs[i].outbox_id)) {
                        idvec_push(&o->delivered, msgs[i].outbox_id);
                        found_n++;
                } else if (searched[msgs[i].dest]) {
                        produce_one(o, &msgs[i]);
                } else if (now - created[i] < UNCHECKED_AFTER_MS) {
                        /* Left to a later sweep when its lease ends. */
                        rs_idset_del(&o->held, msgs[i].outbox_id);
                        later++;
                } else {
                        produce_one(o, &msgs[i]);
                        unchecked++;
                }
        }
        if (unchecked)
                rs_warn("outbox",
                        "republished %d rows unchecked: their topics could not be "
                        "searched for %d minutes",
                        unchecked, UNCHECKED_AFTER_MS / 60000);
        rs_idset_free(&found);
        free(msgs);
        free(created);
        rs_arena_destroy(&a);
        int sent = n - found_n - later;
        o->stats.republished += (uint64_t)sent;
        o->stats.found_delivered += (uint64_t)found_n;
        if (n)
                rs_info("outbox",
                        "%d outbox rows whose delivery was not confirmed: %d found on "
                        "their topics, %d republished, %d left for a later sweep",
                        n, found_n, sent, later);
        return sent;
}

static bool housekeeping(rs_outbox_t *o, char *errstr, size_t errstr_size)
{
        PGresult *res =
            rs_pg_exec(o->pg, SQL_OUTBOX_PENDING, 0, NULL, errstr, errstr_size);
        if (!res)
                return false;
        o->stats.pending = rs_pg_int(res, 0, 0, 0);
        PQclear(res);
        /* One bounded delete a sweep keeps each sweep short: up to 10,000
         * rows standing alone, and 20 batches (of up to the batch size). */
        return o->retention_hours == 0 ||
               (rs_pg_delete_older(o->pg, SQL_OUTBOX_RETENTION, o->retention_hours, 10000,
                                   1, errstr, errstr_size) >= 0 &&
                rs_pg_delete_older(o->pg, SQL_OUTBOX_BATCH_RETENTION, o->retention_hours,
                                   20, 1, errstr, errstr_size) >= 0);
}

/* Batches whose lease expired (their process died, or could not deliver
 * them) are taken apart: their rows stand alone, for republish. This
 * process's own are left alone even if their lease was renewed late. */
static bool dissolve(rs_outbox_t *o, char *errstr, size_t errstr_size)
{
        rs_pgarr_t own;
        idset_to_array(&o->held_batches, &own);
        char limit[16];
        snprintf(limit, sizeof(limit), "%d", DISSOLVE_LIMIT);
        const char *params[] = {limit, rs_pgarr_get(&own)};
        bool ok = rs_pg_cmd(o->pg, SQL_OUTBOX_DISSOLVE, 2, params, errstr, errstr_size);
        rs_pgarr_free(&own);
        return ok;
}

int rs_outbox_sweep(rs_outbox_t *o, char *errstr, size_t errstr_size)
{
        if (!rs_pg_connect(o->pg, errstr, errstr_size) ||
            !rs_outbox_mark(o, errstr, errstr_size) || !dissolve(o, errstr, errstr_size))
                return -1;
        int n = republish(o, errstr, errstr_size);
        if (n < 0 || !housekeeping(o, errstr, errstr_size))
                return -1;
        return n;
}

bool rs_outbox_flush(rs_outbox_t *o, int timeout_ms)
{
        rd_kafka_resp_err_t err = rd_kafka_flush(o->rk, timeout_ms);
        char errstr[512];
        if (!rs_outbox_mark(o, errstr, sizeof(errstr)))
                rs_warn("outbox",
                        "cannot mark delivered rows published (they will be "
                        "republished): %s",
                        errstr);
        return err == RD_KAFKA_RESP_ERR_NO_ERROR;
}

int rs_outbox_in_flight(rs_outbox_t *o)
{
        return rd_kafka_outq_len(o->rk);
}

bool rs_outbox_fatal(rs_outbox_t *o, char *errstr, size_t errstr_size)
{
        return rd_kafka_fatal_error(o->rk, errstr, errstr_size) !=
               RD_KAFKA_RESP_ERR_NO_ERROR;
}

rs_outbox_stats_t rs_outbox_stats(const rs_outbox_t *o)
{
        return o->stats;
}
