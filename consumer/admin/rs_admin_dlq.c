/* `refstream admin dlq`: reading the DLQ topic and redriving dead letters
 * (rs_admin_dlq.h; docs/design.md §2, "Redriving dead letters"). */
#include "rs_admin_dlq.h"
#include "rs_admin_int.h"
#include "rs_admin_sql.h"
#include "rs_kafka.h"

#include <stdlib.h>
#include <string.h>

/* Advisory lock key of redrive runs ("rsdlqr" in ASCII). */
#define REDRIVE_LOCK_KEY "126896777507186"

struct rs_admin_dlq {
        const rs_config_t *cfg;
        rs_pg_t *pg;
        const char *actor;
        int64_t timeout_ms;
        rd_kafka_t *reader;   /* read_committed consumer, assign() only */
        rd_kafka_t *probe;    /* read_uncommitted: metadata, true high watermarks */
        rd_kafka_t *producer; /* transactional, initialised (fencing) */
        rs_map_t partitions;  /* topic -> partition count + 1 (as pointer) */
        rs_arena_t arena;
        rs_dlq_letter_t *letters;
        size_t n, cap;
        bool read;
};

rs_admin_dlq_t *rs_admin_dlq_new(const rs_config_t *cfg, rs_pg_t *pg, const char *actor)
{
        rs_admin_dlq_t *d = rs_calloc(1, sizeof(*d));
        d->cfg = cfg;
        d->pg = pg;
        d->actor = actor && *actor ? actor : "unknown";
        d->timeout_ms = 30000;
        rs_map_init(&d->partitions);
        rs_arena_init(&d->arena, 64 * 1024);
        return d;
}

void rs_admin_dlq_destroy(rs_admin_dlq_t *d)
{
        if (!d)
                return;
        if (d->reader) {
                rd_kafka_consumer_close(d->reader);
                rd_kafka_destroy(d->reader);
        }
        if (d->probe) {
                rd_kafka_consumer_close(d->probe);
                rd_kafka_destroy(d->probe);
        }
        if (d->producer)
                rd_kafka_destroy(d->producer);
        rs_map_free(&d->partitions);
        rs_arena_destroy(&d->arena);
        free(d->letters);
        free(d);
}

void rs_admin_dlq_set_timeout(rs_admin_dlq_t *d, int64_t ms)
{
        d->timeout_ms = ms;
}

size_t rs_admin_dlq_count(const rs_admin_dlq_t *d)
{
        return d->n;
}

const rs_dlq_letter_t *rs_admin_dlq_letter(const rs_admin_dlq_t *d, size_t i)
{
        return &d->letters[i];
}

bool rs_admin_dlq_match(const rs_dlq_letter_t *l, const rs_admin_dlq_filter_t *f)
{
        if (f->error_class && (!l->error_class || strcmp(f->error_class, l->error_class)))
                return false;
        if (f->source_topic &&
            (!l->source_topic || strcmp(f->source_topic, l->source_topic)))
                return false;
        return true;
}

/* ---------------------------------------------------------------- clients */

/* A consumer that never joins its group (assign() only) and never commits. */
static rd_kafka_t *consumer(const rs_admin_dlq_t *d, const char *isolation, char *errstr,
                            size_t errstr_size)
{
        const char *defaults[] = {"group.id",
                                  "refstream-dlq-admin",
                                  "enable.auto.commit",
                                  "false",
                                  "enable.auto.offset.store",
                                  "false",
                                  "enable.partition.eof",
                                  "true",
                                  "auto.offset.reset",
                                  "earliest",
                                  "isolation.level",
                                  isolation,
                                  "fetch.wait.max.ms",
                                  "50",
                                  NULL};
        rd_kafka_conf_t *conf = rs_kafka_conf(d->cfg, defaults, errstr, errstr_size);
        rd_kafka_t *rk = rs_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
        if (rk)
                rd_kafka_poll_set_consumer(rk);
        return rk;
}

static bool clients(rs_admin_dlq_t *d, char *errstr, size_t errstr_size)
{
        /* The reader sees committed records only: copies of a run that died
         * before committing its transaction are aborted, never seen. The
         * probe's high watermarks are the logs' ends, open transactions
         * included. */
        if (!d->reader &&
            !(d->reader = consumer(d, "read_committed", errstr, errstr_size)))
                return false;
        if (!d->probe &&
            !(d->probe = consumer(d, "read_uncommitted", errstr, errstr_size)))
                return false;
        return true;
}

/* Aborts the open transaction (best effort: if even that fails, the next
 * run's producer aborts it when it fences this one). */
static void abort_txn(rs_admin_dlq_t *d)
{
        rd_kafka_error_t *a = rd_kafka_abort_transaction(d->producer, (int)d->timeout_ms);
        if (a)
                rd_kafka_error_destroy(a);
}

static bool txn_error(rs_admin_dlq_t *d, rd_kafka_error_t *e, const char *what,
                      char *errstr, size_t errstr_size)
{
        snprintf(errstr, errstr_size, "%s: %s", what, rd_kafka_error_string(e));
        if (rd_kafka_error_txn_requires_abort(e))
                abort_txn(d);
        rd_kafka_error_destroy(e);
        return false;
}

/* The transactional producer. Initialising it fences every earlier producer
 * of the same transactional.id (a redrive that died) and aborts its open
 * transaction: from then on, what the reader finds is all there will be. */
static bool producer(rs_admin_dlq_t *d, char *errstr, size_t errstr_size)
{
        if (d->producer)
                return true;
        char txn_id[512];
        snprintf(txn_id, sizeof(txn_id), RS_ADMIN_DLQ_TXN_PREFIX "%s", d->cfg->topic_dlq);
        const char *defaults[] = {"transactional.id", txn_id, "acks", "all", "linger.ms",
                                  "5", "compression.type", "lz4",
                                  /* dead letters may be above 1 MB (too_large) */
                                  "message.max.bytes", "67108864", NULL};
        rd_kafka_conf_t *conf = rs_kafka_conf(d->cfg, defaults, errstr, errstr_size);
        if (!(d->producer = rs_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size)))
                return false;
        rd_kafka_error_t *e = rd_kafka_init_transactions(d->producer, (int)d->timeout_ms);
        if (e) {
                snprintf(errstr, errstr_size,
                         "cannot initialise the redrive producer: %s",
                         rd_kafka_error_string(e));
                rd_kafka_error_destroy(e);
                rd_kafka_destroy(d->producer);
                d->producer = NULL;
                return false;
        }
        return true;
}

/* Partitions of topic (0: the topic does not exist), -1 + errstr on failure. */
static int partition_count(rs_admin_dlq_t *d, const char *topic, char *errstr,
                           size_t errstr_size)
{
        intptr_t known = (intptr_t)rs_map_get(&d->partitions, topic);
        if (known)
                return (int)(known - 1);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(d->probe, topic, NULL);
        rd_kafka_resp_err_t err =
            rd_kafka_metadata(d->probe, 0, rkt, &md, (int)d->timeout_ms);
        rd_kafka_topic_destroy(rkt);
        if (err) {
                snprintf(errstr, errstr_size, "no metadata for topic %s: %s", topic,
                         rd_kafka_err2str(err));
                return -1;
        }
        int n =
            md->topic_cnt == 1 && !md->topics[0].err ? md->topics[0].partition_cnt : 0;
        rd_kafka_metadata_destroy(md);
        rs_map_put(&d->partitions, rs_arena_strdup(&d->arena, topic),
                   (void *)(intptr_t)(n + 1));
        return n;
}

static bool high_watermark(rs_admin_dlq_t *d, const char *topic, int32_t partition,
                           int64_t *high, char *errstr, size_t errstr_size)
{
        int64_t low;
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
            d->probe, topic, partition, &low, high, (int)d->timeout_ms);
        if (err)
                return rs_fail(errstr, errstr_size, "high watermark of %s [%d]: %s",
                               topic, (int)partition, rd_kafka_err2str(err));
        return true;
}

/* ---------------------------------------------------------------- reading */

/* What to read of one partition: [start, end). */
typedef struct range {
        int32_t partition;
        int64_t start, end;
        bool done;
} range_t;

typedef void read_fn(void *ctx, const rd_kafka_message_t *m);

/* Reads the ranges of topic (committed records only), calling fn for each
 * record inside them. Fails when no progress is made for the timeout. A
 * partition is done at a record at end - 1 or later, or at its end of
 * partition at end or later (the last offsets may be transaction markers,
 * which are never delivered). */
static bool read_ranges(rs_admin_dlq_t *d, const char *topic, range_t *r, size_t n,
                        read_fn *fn, void *ctx, char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *list =
            rd_kafka_topic_partition_list_new((int)RS_MAX(n, 1));
        size_t left = 0;
        for (size_t i = 0; i < n; i++) {
                r[i].done = r[i].start >= r[i].end;
                if (r[i].done)
                        continue;
                rd_kafka_topic_partition_list_add(list, topic, r[i].partition)->offset =
                    r[i].start;
                left++;
        }
        rd_kafka_resp_err_t err = left ? rd_kafka_assign(d->reader, list) : 0;
        rd_kafka_topic_partition_list_destroy(list);
        if (err)
                return rs_fail(errstr, errstr_size, "cannot read %s: %s", topic,
                               rd_kafka_err2str(err));
        int64_t deadline = rs_monotonic_ms() + d->timeout_ms;
        while (left > 0 && rs_monotonic_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(d->reader, 100);
                if (!m)
                        continue;
                range_t *p = NULL;
                for (size_t i = 0; i < n && !p; i++)
                        if (r[i].partition == m->partition && !r[i].done)
                                p = &r[i];
                if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        /* transient errors are retried by librdkafka */
                        if (m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
                                rs_fail(errstr, errstr_size, "cannot read %s: %s", topic,
                                        rd_kafka_message_errstr(m));
                                rd_kafka_message_destroy(m);
                                break;
                        }
                } else if (p && !m->err) {
                        deadline = rs_monotonic_ms() + d->timeout_ms;
                        if (m->offset < p->end)
                                fn(ctx, m);
                        p->done = m->offset + 1 >= p->end;
                } else if (p) {
                        p->done = m->offset >= p->end;
                }
                if (p && p->done)
                        left--;
                rd_kafka_message_destroy(m);
        }
        rd_kafka_assign(d->reader, NULL);
        if (left > 0 && rs_monotonic_ms() >= deadline)
                snprintf(errstr, errstr_size,
                         "%zu partitions of %s not read to their end within %lld ms (an "
                         "open transaction on them, or the broker unreachable?)",
                         left, topic, (long long)d->timeout_ms);
        return left == 0;
}

/* A header's value as a NUL-terminated string in the arena; NULL if absent. */
static const char *header(rs_admin_dlq_t *d, rd_kafka_headers_t *h, const char *name)
{
        const void *v;
        size_t len;
        if (!h || rd_kafka_header_get_last(h, name, &v, &len) || !v)
                return NULL;
        return rs_arena_strndup(&d->arena, v, len);
}

static int64_t header_int(rs_admin_dlq_t *d, rd_kafka_headers_t *h, const char *name,
                          int64_t max)
{
        const char *s = header(d, h, name);
        int64_t v;
        return s && rs_parse_int64(s, 0, max, &v) ? v : -1;
}

static void *copy(rs_admin_dlq_t *d, const void *p, size_t len)
{
        void *c = rs_arena_alloc(&d->arena, RS_MAX(len, 1));
        if (len)
                memcpy(c, p, len);
        return c;
}

static void add_letter(void *ctx, const rd_kafka_message_t *m)
{
        rs_admin_dlq_t *d = ctx;
        rd_kafka_headers_t *h = NULL;
        if (rd_kafka_message_headers(m, &h))
                h = NULL;
        if (d->n == d->cap) {
                d->cap = d->cap ? d->cap * 2 : 256;
                d->letters = rs_realloc(d->letters, d->cap * sizeof(*d->letters));
        }
        d->letters[d->n++] = (rs_dlq_letter_t){
            .partition = m->partition,
            .offset = m->offset,
            .source_topic = header(d, h, "source_topic"),
            .source_partition = (int32_t)header_int(d, h, "source_partition", INT32_MAX),
            .source_offset = header_int(d, h, "source_offset", INT64_MAX),
            .error_class = header(d, h, "error_class"),
            .error_message = header(d, h, "error_message"),
            .event_type = header(d, h, "event_type"),
            .key = m->key ? copy(d, m->key, m->key_len) : NULL,
            .key_len = m->key ? m->key_len : 0,
            .value = copy(d, m->payload, m->payload ? m->len : 0),
            .value_len = m->payload ? m->len : 0,
        };
}

static int cmp_position(const void *a, const void *b)
{
        const rs_dlq_letter_t *x = a, *y = b;
        if (x->partition != y->partition)
                return x->partition < y->partition ? -1 : 1;
        return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static rs_dlq_letter_t *find_letter(rs_admin_dlq_t *d, int32_t partition, int64_t offset)
{
        rs_dlq_letter_t key = {.partition = partition, .offset = offset};
        return d->n ? bsearch(&key, d->letters, d->n, sizeof(key), cmp_position) : NULL;
}

static bool read_dlq(rs_admin_dlq_t *d, char *errstr, size_t errstr_size)
{
        const char *topic = d->cfg->topic_dlq;
        int n = partition_count(d, topic, errstr, errstr_size);
        if (n < 0)
                return false;
        if (n == 0)
                return rs_fail(errstr, errstr_size, "the DLQ topic %s does not exist",
                               topic);
        range_t *r = rs_calloc((size_t)n, sizeof(*r));
        bool ok = true;
        for (int p = 0; p < n && ok; p++) {
                r[p] = (range_t){.partition = p, .start = RD_KAFKA_OFFSET_BEGINNING};
                ok = high_watermark(d, topic, p, &r[p].end, errstr, errstr_size);
                if (ok && r[p].end <= 0)
                        r[p].start = 0; /* empty: nothing to read */
        }
        ok =
            ok && read_ranges(d, topic, r, (size_t)n, add_letter, d, errstr, errstr_size);
        free(r);
        if (ok && d->n)
                qsort(d->letters, d->n, sizeof(*d->letters), cmp_position);
        return ok;
}

static bool read_states(rs_admin_dlq_t *d, char *errstr, size_t errstr_size)
{
        char err[1024];
        const char *params[] = {d->cfg->topic_dlq};
        PGresult *res =
            rs_pg_exec(d->pg, SQL_ADMIN_DLQ_STATES, 1, params, err, sizeof(err));
        if (!res) {
                rs_admin_db_error(d->pg, "cannot read the redrive state", err, errstr,
                                  errstr_size);
                return false;
        }
        for (size_t i = 0; i < d->n; i++)
                d->letters[i].state = NULL;
        for (int r = 0; r < PQntuples(res); r++) {
                rs_dlq_letter_t *l =
                    find_letter(d, (int32_t)rs_pg_int(res, r, DLQ_STATE_PARTITION, -1),
                                rs_pg_int(res, r, DLQ_STATE_OFFSET, -1));
                if (l)
                        l->state =
                            strcmp(PQgetvalue(res, r, DLQ_STATE_STATE), "sent") == 0
                                ? "sent"
                                : "claimed";
        }
        PQclear(res);
        return true;
}

bool rs_admin_dlq_read(rs_admin_dlq_t *d, char *errstr, size_t errstr_size)
{
        if (!clients(d, errstr, errstr_size))
                return false;
        if (!d->read && !read_dlq(d, errstr, errstr_size))
                return false;
        d->read = true;
        return read_states(d, errstr, errstr_size);
}

/* ---------------------------------------------------------------- list */

void rs_admin_dlq_escape(const void *p, size_t len, size_t max, rs_buf_t *out)
{
        const unsigned char *s = p;
        for (size_t i = 0; i < len && i < max; i++) {
                if (s[i] == '\\' || s[i] == '"')
                        rs_buf_printf(out, "\\%c", s[i]);
                else if (s[i] >= 0x20 && s[i] < 0x7f)
                        rs_buf_putc(out, (char)s[i]);
                else
                        rs_buf_printf(out, "\\x%02x", s[i]);
        }
        if (len > max)
                rs_buf_puts(out, "...");
}

static json_t *hex(const void *p, size_t len)
{
        const unsigned char *s = p;
        char *h = rs_malloc(2 * len + 1);
        for (size_t i = 0; i < len; i++)
                snprintf(h + 2 * i, 3, "%02x", s[i]);
        h[2 * len] = '\0';
        json_t *j = json_string(h);
        free(h);
        return j;
}

static json_t *escaped(const void *p, size_t len, size_t max)
{
        rs_buf_t b;
        rs_buf_init(&b);
        rs_buf_puts(&b, "");
        rs_admin_dlq_escape(p, len, max, &b);
        json_t *j = json_string(b.data);
        rs_buf_free(&b);
        return j;
}

static json_t *str_or_null(const char *s)
{
        /* Headers are bytes: one that is not UTF-8 is shown escaped. */
        json_t *j = s ? json_string(s) : json_null();
        return j ? j : escaped(s, strlen(s), SIZE_MAX);
}

static json_t *int_or_null(int64_t v)
{
        return v < 0 ? json_null() : json_integer(v);
}

static json_t *letter_json(const rs_admin_dlq_t *d, const rs_dlq_letter_t *l)
{
        json_t *o = json_object();
        json_object_set_new(o, "dlq_topic", json_string(d->cfg->topic_dlq));
        json_object_set_new(o, "dlq_partition", json_integer(l->partition));
        json_object_set_new(o, "dlq_offset", json_integer(l->offset));
        json_object_set_new(o, "source_topic", str_or_null(l->source_topic));
        json_object_set_new(o, "source_partition", int_or_null(l->source_partition));
        json_object_set_new(o, "source_offset", int_or_null(l->source_offset));
        json_object_set_new(o, "error_class", str_or_null(l->error_class));
        json_object_set_new(o, "error_message", str_or_null(l->error_message));
        json_object_set_new(o, "event_type", str_or_null(l->event_type));
        json_object_set_new(o, "key",
                            l->key ? escaped(l->key, l->key_len, SIZE_MAX) : json_null());
        json_object_set_new(o, "key_hex", l->key ? hex(l->key, l->key_len) : json_null());
        json_object_set_new(o, "value_bytes", json_integer((json_int_t)l->value_len));
        json_object_set_new(o, "preview",
                            escaped(l->value, l->value_len, RS_ADMIN_DLQ_PREVIEW));
        json_object_set_new(o, "value_hex", hex(l->value, l->value_len));
        json_object_set_new(o, "redriven", str_or_null(l->state));
        return o;
}

json_t *rs_admin_dlq_list(rs_admin_dlq_t *d, const rs_admin_dlq_filter_t *f, char *errstr,
                          size_t errstr_size)
{
        if (!rs_admin_dlq_read(d, errstr, errstr_size))
                return NULL;
        json_t *a = json_array();
        for (size_t i = 0; i < d->n; i++) {
                if (f->limit > 0 && json_array_size(a) >= (size_t)f->limit)
                        break;
                if (rs_admin_dlq_match(&d->letters[i], f))
                        json_array_append_new(a, letter_json(d, &d->letters[i]));
        }
        return a;
}

static const char *field(const json_t *o, const char *k)
{
        const char *s = json_string_value(json_object_get(o, k));
        return s ? s : "-";
}

static void position(const json_t *o, const char *topic, const char *partition,
                     const char *offset, char *buf, size_t size)
{
        const json_t *p = json_object_get(o, partition);
        if (!json_is_integer(p)) {
                snprintf(buf, size, "%s", field(o, topic));
                return;
        }
        snprintf(buf, size, "%s/%lld/%lld", field(o, topic),
                 (long long)json_integer_value(p),
                 (long long)json_integer_value(json_object_get(o, offset)));
}

void rs_admin_print_dlq_list(FILE *out, const json_t *letters)
{
        size_t i;
        const json_t *o;
        char dlq[512], src[512];
        json_array_foreach (letters, i, o) {
                const json_t *r = json_object_get(o, "redriven");
                position(o, "dlq_topic", "dlq_partition", "dlq_offset", dlq, sizeof(dlq));
                position(o, "source_topic", "source_partition", "source_offset", src,
                         sizeof(src));
                fprintf(out, "%s  from %s  %s%s%s\n", dlq, src, field(o, "error_class"),
                        json_is_string(r) ? "  redriven: " : "",
                        json_is_string(r) ? json_string_value(r) : "");
                fprintf(out, "    message: %s\n", field(o, "error_message"));
                fprintf(out, "    key: %s%s%s  %lld bytes: \"%s\"\n",
                        json_is_string(json_object_get(o, "key")) ? "\"" : "(none)",
                        json_is_string(json_object_get(o, "key")) ? field(o, "key") : "",
                        json_is_string(json_object_get(o, "key")) ? "\"" : "",
                        (long long)json_integer_value(json_object_get(o, "value_bytes")),
                        field(o, "preview"));
        }
        fprintf(out, "%zu dead letter%s\n", json_array_size(letters),
                json_array_size(letters) == 1 ? "" : "s");
}

/* ---------------------------------------------------------------- redrive */

static char *position_text(rs_admin_dlq_t *d, const rs_dlq_letter_t *l)
{
        return rs_arena_printf(&d->arena, "%s/%d/%lld", d->cfg->topic_dlq,
                               (int)l->partition, (long long)l->offset);
}

/* Claims, sends, marks: the positions of letters[0..n) as parameters. */
typedef struct positions {
        rs_pgarr_t partitions, offsets;
} positions_t;

static void positions_init(positions_t *p)
{
        rs_pgarr_init(&p->partitions);
        rs_pgarr_init(&p->offsets);
}

static void positions_add(positions_t *p, int32_t partition, int64_t offset)
{
        rs_pgarr_int(&p->partitions, partition);
        rs_pgarr_int(&p->offsets, offset);
}

static void positions_of(positions_t *p, const rs_dlq_letter_t *const *letters, size_t n)
{
        positions_init(p);
        for (size_t i = 0; i < n; i++)
                positions_add(p, letters[i]->partition, letters[i]->offset);
}

static void positions_free(positions_t *p)
{
        rs_pgarr_free(&p->partitions);
        rs_pgarr_free(&p->offsets);
}

bool rs_admin_dlq_claim(rs_admin_dlq_t *d, const rs_dlq_letter_t *const *letters,
                        size_t n, size_t *claimed, char *errstr, size_t errstr_size)
{
        char err[1024];
        rs_pgarr_t topics, parts, marks, classes;
        positions_t pos;
        bool ok = clients(d, errstr, errstr_size);
        *claimed = 0;
        if (!ok || n == 0)
                return ok;
        rs_pgarr_init(&topics);
        rs_pgarr_init(&parts);
        rs_pgarr_init(&marks);
        rs_pgarr_init(&classes);
        positions_of(&pos, letters, n);
        /* The watermark of each target partition is queried before the claim
         * commits, so every copy produced after it is at or beyond it. */
        rs_map_t highs; /* "partition/topic" -> int64_t in the arena */
        rs_map_init(&highs);
        for (size_t i = 0; i < n && ok; i++) {
                const rs_dlq_letter_t *l = letters[i];
                if (!l->source_topic || l->source_partition < 0) {
                        ok = rs_fail(errstr, errstr_size,
                                     "dead letter %d/%lld has no source",
                                     (int)l->partition, (long long)l->offset);
                        break;
                }
                char *tp = rs_arena_printf(&d->arena, "%d/%s", (int)l->source_partition,
                                           l->source_topic);
                int64_t *high = rs_map_get(&highs, tp);
                if (!high) {
                        high = rs_arena_alloc(&d->arena, sizeof(*high));
                        rs_map_put(&highs, tp, high);
                        ok = high_watermark(d, l->source_topic, l->source_partition, high,
                                            errstr, errstr_size);
                }
                rs_pgarr_text(&topics, l->source_topic);
                rs_pgarr_int(&parts, l->source_partition);
                rs_pgarr_int(&marks, *high);
                rs_pgarr_text(&classes, l->error_class);
        }
        rs_map_free(&highs);
        PGresult *res = NULL;
        if (ok) {
                const char *params[] = {
                    d->cfg->topic_dlq,          rs_pgarr_get(&pos.partitions),
                    rs_pgarr_get(&pos.offsets), rs_pgarr_get(&topics),
                    rs_pgarr_get(&parts),       rs_pgarr_get(&marks),
                    rs_pgarr_get(&classes),     d->actor};
                res = rs_pg_exec(d->pg, SQL_ADMIN_DLQ_CLAIM, 8, params, err, sizeof(err));
                if (!res) {
                        rs_admin_db_error(d->pg, "cannot claim the dead letters", err,
                                          errstr, errstr_size);
                        ok = false;
                }
        }
        if (ok)
                *claimed = (size_t)PQntuples(res);
        PQclear(res);
        rs_pgarr_free(&topics);
        rs_pgarr_free(&parts);
        rs_pgarr_free(&marks);
        rs_pgarr_free(&classes);
        positions_free(&pos);
        return ok;
}

bool rs_admin_dlq_send(rs_admin_dlq_t *d, const rs_dlq_letter_t *const *letters, size_t n,
                       char *errstr, size_t errstr_size)
{
        if (!clients(d, errstr, errstr_size) || !producer(d, errstr, errstr_size))
                return false;
        rd_kafka_error_t *e = rd_kafka_begin_transaction(d->producer);
        if (e)
                return txn_error(d, e, "cannot begin a transaction", errstr, errstr_size);
        for (size_t i = 0; i < n; i++) {
                const rs_dlq_letter_t *l = letters[i];
                rd_kafka_headers_t *h = rd_kafka_headers_new(1);
                rd_kafka_header_add(h, RS_ADMIN_DLQ_REDRIVEN_HEADER, -1,
                                    position_text(d, l), -1);
                rd_kafka_resp_err_t err;
                while ((err = rd_kafka_producev(
                            d->producer, RD_KAFKA_V_TOPIC(l->source_topic),
                            RD_KAFKA_V_PARTITION(l->source_partition),
                            RD_KAFKA_V_KEY(l->key, l->key_len),
                            RD_KAFKA_V_VALUE((void *)l->value, l->value_len),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END)) ==
                       RD_KAFKA_RESP_ERR__QUEUE_FULL)
                        rd_kafka_poll(d->producer, 100);
                if (err) {
                        rd_kafka_headers_destroy(h);
                        abort_txn(d);
                        return rs_fail(errstr, errstr_size,
                                       "cannot produce to %s [%d]: %s", l->source_topic,
                                       (int)l->source_partition, rd_kafka_err2str(err));
                }
        }
        /* Commits only when every record is acknowledged; a failure leaves
         * the transaction aborted, its records never visible. */
        e = rd_kafka_commit_transaction(d->producer, (int)d->timeout_ms);
        if (e)
                return txn_error(d, e, "cannot commit the redriven records", errstr,
                                 errstr_size);
        return true;
}

static bool mark_positions(rs_admin_dlq_t *d, positions_t *pos, char *errstr,
                           size_t errstr_size)
{
        char err[1024];
        const char *params[] = {d->cfg->topic_dlq, rs_pgarr_get(&pos->partitions),
                                rs_pgarr_get(&pos->offsets)};
        bool ok = rs_pg_cmd(d->pg, SQL_ADMIN_DLQ_MARK_SENT, 3, params, err, sizeof(err));
        if (!ok)
                rs_admin_db_error(d->pg,
                                  "the records are sent, but cannot be marked (the next "
                                  "redrive finds them)",
                                  err, errstr, errstr_size);
        return ok;
}

static bool mark_sent(rs_admin_dlq_t *d, const rs_dlq_letter_t *const *letters, size_t n,
                      char *errstr, size_t errstr_size)
{
        positions_t pos;
        positions_of(&pos, letters, n);
        bool ok = mark_positions(d, &pos, errstr, errstr_size);
        positions_free(&pos);
        return ok;
}

/* Why l cannot be sent back, or NULL. */
static const char *unsendable(rs_admin_dlq_t *d, const rs_dlq_letter_t *l, char *errstr,
                              size_t errstr_size, bool *failed)
{
        const rs_config_t *c = d->cfg;
        if (!l->source_topic || l->source_partition < 0)
                return "no source_topic/source_partition headers (not a refstream dead "
                       "letter)";
        if (strcmp(l->source_topic, c->topic_signups) &&
            strcmp(l->source_topic, c->topic_payments))
                return rs_arena_printf(&d->arena,
                                       "source topic %s is not an input topic of this "
                                       "configuration",
                                       l->source_topic);
        int parts = partition_count(d, l->source_topic, errstr, errstr_size);
        if (parts < 0)
                *failed = true;
        else if (l->source_partition >= parts)
                return rs_arena_printf(&d->arena, "topic %s has no partition %d",
                                       l->source_topic, (int)l->source_partition);
        return NULL;
}

/* Position text -> a bool (in the arena) set when its copy is seen. */
static void note_copy(void *ctx, const rd_kafka_message_t *m)
{
        rs_map_t *wanted = ctx;
        rd_kafka_headers_t *h;
        const void *v;
        size_t len;
        char text[600];
        if (rd_kafka_message_headers(m, &h) ||
            rd_kafka_header_get_last(h, RS_ADMIN_DLQ_REDRIVEN_HEADER, &v, &len) || !v ||
            len >= sizeof(text))
                return;
        memcpy(text, v, len);
        text[len] = '\0';
        bool *seen = rs_map_get(wanted, text);
        if (seen)
                *seen = true;
}

typedef struct list {
        const rs_dlq_letter_t **v;
        size_t n, cap;
} list_t;

static void list_add(list_t *l, const rs_dlq_letter_t *x)
{
        if (l->n == l->cap) {
                l->cap = l->cap ? l->cap * 2 : 64;
                l->v = rs_realloc(l->v, l->cap * sizeof(*l->v));
        }
        l->v[l->n++] = x;
}

/* Resolves the positions an interrupted run left claimed, target partition
 * by partition: a copy found from the claim's watermark to the partition's
 * end → marked sent; none → added to resend (to be claimed again and sent);
 * gone from the DLQ → left claimed, reported. The producer is initialised
 * first: the interrupted run can add nothing any more. */
static bool resolve(rs_admin_dlq_t *d, list_t *resend, FILE *out,
                    rs_admin_dlq_summary_t *sum, char *errstr, size_t errstr_size)
{
        char err[1024];
        const char *params[] = {d->cfg->topic_dlq};
        PGresult *res =
            rs_pg_exec(d->pg, SQL_ADMIN_DLQ_CLAIMED, 1, params, err, sizeof(err));
        if (!res) {
                rs_admin_db_error(d->pg, "cannot read the claimed positions", err, errstr,
                                  errstr_size);
                return false;
        }
        int rows = PQntuples(res);
        bool ok = rows == 0 || producer(d, errstr, errstr_size);
        bool *seen = rs_calloc((size_t)RS_MAX(rows, 1), sizeof(bool));
        positions_t found;
        positions_init(&found);
        /* Rows come ordered by target topic and partition: one read each. */
        for (int r = 0, first = 0; r < rows && ok; first = r) {
                const char *topic = PQgetvalue(res, r, DLQ_CLAIMED_TARGET_TOPIC);
                int32_t part =
                    (int32_t)rs_pg_int(res, r, DLQ_CLAIMED_TARGET_PARTITION, 0);
                range_t range = {.partition = part, .start = INT64_MAX};
                rs_map_t wanted;
                rs_map_init(&wanted);
                for (; r < rows &&
                       !strcmp(PQgetvalue(res, r, DLQ_CLAIMED_TARGET_TOPIC), topic) &&
                       rs_pg_int(res, r, DLQ_CLAIMED_TARGET_PARTITION, 0) == part;
                     r++) {
                        range.start = RS_MIN(range.start,
                                             rs_pg_int(res, r, DLQ_CLAIMED_WATERMARK, 0));
                        rs_map_put(
                            &wanted,
                            rs_arena_printf(&d->arena, "%s/%s/%s", d->cfg->topic_dlq,
                                            PQgetvalue(res, r, DLQ_CLAIMED_PARTITION),
                                            PQgetvalue(res, r, DLQ_CLAIMED_OFFSET)),
                            &seen[r]);
                }
                ok = high_watermark(d, topic, part, &range.end, errstr, errstr_size) &&
                     read_ranges(d, topic, &range, 1, note_copy, &wanted, errstr,
                                 errstr_size);
                rs_map_free(&wanted);
                for (int i = first; i < r && ok; i++) {
                        int32_t dp =
                            (int32_t)rs_pg_int(res, i, DLQ_CLAIMED_PARTITION, -1);
                        int64_t doff = rs_pg_int(res, i, DLQ_CLAIMED_OFFSET, -1);
                        rs_dlq_letter_t *l = find_letter(d, dp, doff);
                        if (seen[i]) {
                                positions_add(&found, dp, doff);
                                sum->found++;
                        } else if (l) {
                                list_add(resend, l);
                        } else {
                                sum->unsolved++;
                                if (out)
                                        fprintf(
                                            out,
                                            "left claimed %s/%d/%lld: its copy is not "
                                            "on %s [%d] and it is gone from the DLQ "
                                            "topic\n",
                                            d->cfg->topic_dlq, (int)dp, (long long)doff,
                                            topic, (int)part);
                        }
                }
        }
        PQclear(res);
        if (ok && found.partitions.count)
                ok = mark_positions(d, &found, errstr, errstr_size);
        positions_free(&found);
        free(seen);
        return ok;
}

static bool lock(rs_admin_dlq_t *d, bool take, char *errstr, size_t errstr_size)
{
        char err[1024];
        const char *params[] = {REDRIVE_LOCK_KEY};
        PGresult *res =
            rs_pg_exec(d->pg, take ? SQL_ADMIN_DLQ_LOCK : SQL_ADMIN_DLQ_UNLOCK, 1, params,
                       err, sizeof(err));
        if (!res) {
                rs_admin_db_error(d->pg, "advisory lock", err, errstr, errstr_size);
                return false;
        }
        bool got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        if (take && !got)
                return rs_fail(errstr, errstr_size,
                               "another `refstream admin dlq redrive` is running (it "
                               "holds the redrive lock); try again when it is done");
        return true;
}

/* Claims, sends and marks letters in rounds. */
static bool send_all(rs_admin_dlq_t *d, const list_t *todo, rs_admin_dlq_summary_t *sum,
                     size_t resent, char *errstr, size_t errstr_size)
{
        for (size_t i = 0; i < todo->n; i += RS_ADMIN_DLQ_CHUNK) {
                size_t n = RS_MIN(todo->n - i, (size_t)RS_ADMIN_DLQ_CHUNK), claimed;
                const rs_dlq_letter_t *const *chunk = todo->v + i;
                if (!rs_admin_dlq_claim(d, chunk, n, &claimed, errstr, errstr_size))
                        return false;
                if (claimed != n)
                        return rs_fail(errstr, errstr_size,
                                       "%zu of %zu dead letters were redriven meanwhile "
                                       "(another redrive without the lock?)",
                                       n - claimed, n);
                if (!rs_admin_dlq_send(d, chunk, n, errstr, errstr_size) ||
                    !mark_sent(d, chunk, n, errstr, errstr_size))
                        return false;
                for (size_t k = i; k < i + n; k++) {
                        if (k < resent)
                                sum->resent++;
                        else
                                sum->sent++;
                }
        }
        return true;
}

bool rs_admin_dlq_redrive(rs_admin_dlq_t *d, const rs_admin_dlq_filter_t *f, bool dry_run,
                          FILE *out, rs_admin_dlq_summary_t *sum, char *errstr,
                          size_t errstr_size)
{
        memset(sum, 0, sizeof(*sum));
        if (!dry_run &&
            (!clients(d, errstr, errstr_size) || !lock(d, true, errstr, errstr_size)))
                return false;
        list_t todo = {0};
        bool ok = rs_admin_dlq_read(d, errstr, errstr_size) &&
                  (dry_run || resolve(d, &todo, out, sum, errstr, errstr_size)) &&
                  read_states(d, errstr, errstr_size);
        size_t resent = todo.n;
        for (size_t i = 0; i < d->n && ok; i++) {
                const rs_dlq_letter_t *l = &d->letters[i];
                bool failed = false;
                if (!rs_admin_dlq_match(l, f))
                        continue;
                sum->selected++;
                const char *why = unsendable(d, l, errstr, errstr_size, &failed);
                if (failed) {
                        ok = false;
                } else if (l->state && !strcmp(l->state, "sent")) {
                        sum->already++;
                } else if (l->state) { /* claimed: resent by resolve, or (dry run) */
                        if (dry_run && out)
                                fprintf(
                                    out,
                                    "%s was claimed by an interrupted redrive: the "
                                    "next redrive sends it unless its copy is there\n",
                                    position_text(d, l));
                } else if (why) {
                        sum->skipped++;
                        if (out)
                                fprintf(out, "skipped %s: %s\n", position_text(d, l),
                                        why);
                } else {
                        list_add(&todo, l);
                }
        }
        for (size_t i = 0; i < todo.n && ok && out; i++)
                fprintf(out, "%s%s -> %s [%d] (%s, %zu bytes)\n",
                        dry_run ? "would send " : "sending ", position_text(d, todo.v[i]),
                        todo.v[i]->source_topic, (int)todo.v[i]->source_partition,
                        todo.v[i]->error_class ? todo.v[i]->error_class : "no class",
                        todo.v[i]->value_len);
        if (ok && dry_run)
                sum->sent = todo.n;
        else if (ok)
                ok = send_all(d, &todo, sum, resent, errstr, errstr_size);
        free(todo.v);
        if (!dry_run) {
                char ignore[256];
                if (!lock(d, false, ignore, sizeof(ignore)))
                        rs_pg_disconnect(d->pg); /* ends the session, and the lock */
        }
        return ok;
}
