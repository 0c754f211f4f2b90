/* `refstream admin dlq list|redrive` against librdkafka's mock cluster and a
 * fresh database: listing with filters, a redrive sends each dead letter
 * back once (to its source partition, with its key, bytes and the
 * refstream_redriven_from header), a second run sends nothing, a run that
 * stopped between claiming and marking is resolved both ways (the copy is
 * there: not sent again; it is not: sent once), a dry run changes nothing,
 * one run at a time, and the command line's output and usage errors. The
 * dead letters are written to the DLQ topic as the outbox writes them. */
#include "cmd_admin.h"
#include "rs_admin_dlq.h"
#include "support_admin.h"
#include "support_proc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define DB "rs_it_admin_dlq"
/* The redrive lock's key (rs_admin_dlq.c). */
#define LOCK_KEY "126896777507186"

typedef struct dlq_fx {
        rs_config_t cfg;
} dlq_fx_t;

/* A dead letter as the outbox produces it (consumer/outbox/rs_outbox.c):
 * to DLQ partition dlq_part, with the source headers (src NULL: none). */
static void dead_letter(int32_t dlq_part, const char *src, int src_part, long src_off,
                        const char *cls, const char *key, const void *value, size_t len)
{
        char err[512], part[16], off[24];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        assert_int_equal(
            rd_kafka_conf_set(conf, "bootstrap.servers", it_fx.brokers, err, sizeof(err)),
            RD_KAFKA_CONF_OK);
        rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        assert_non_null(p);
        rd_kafka_headers_t *h = rd_kafka_headers_new(8);
        if (src) {
                snprintf(part, sizeof(part), "%d", src_part);
                snprintf(off, sizeof(off), "%ld", src_off);
                rd_kafka_header_add(h, "event_type", -1, "signup", -1);
                rd_kafka_header_add(h, "source_topic", -1, src, -1);
                rd_kafka_header_add(h, "source_partition", -1, part, -1);
                rd_kafka_header_add(h, "source_offset", -1, off, -1);
                rd_kafka_header_add(h, "refstream_outbox_id", -1, "1", -1);
                rd_kafka_header_add(h, "error_class", -1, cls, -1);
                rd_kafka_header_add(h, "error_message", -1, "it went wrong", -1);
        }
        assert_int_equal(rd_kafka_producev(p, RD_KAFKA_V_TOPIC(it_fx.topics.dlq),
                                           RD_KAFKA_V_PARTITION(dlq_part),
                                           RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
                                           RD_KAFKA_V_VALUE((void *)value, len),
                                           RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                           RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END),
                         0);
        assert_int_equal(rd_kafka_flush(p, 10000), 0);
        rd_kafka_destroy(p);
}

/* The dead letters of every test:
 *   dlq 0/0  signups [1] @5   unknown_schema  key k1   framed Avro, id 99 (11 bytes)
 *   dlq 0/1  signups [3] @9   bad_framing     no key   "garbage"
 *   dlq 1/0  payments [2] @7  json_decode     key k2   {"event_id":
 *   dlq 2/0  no source headers (not a dead letter of refstream's)
 *   dlq 3/0  other-topic [0] @1 bad_framing   key k3   (not an input topic) */
static const char avro99[] = "\x00\x00\x00\x00\x63\x02\x04"
                             "abcd";

static int setup(void **state)
{
        dlq_fx_t *f = rs_calloc(1, sizeof(*f));
        it_fresh(DB);
        it_config(&f->cfg, it_fx.url);
        dead_letter(0, it_fx.topics.signups, 1, 5, "unknown_schema", "k1", avro99,
                    sizeof(avro99) - 1);
        dead_letter(0, it_fx.topics.signups, 3, 9, "bad_framing", NULL, "garbage", 7);
        dead_letter(1, it_fx.topics.payments, 2, 7, "json_decode", "k2",
                    "{\"event_id\":", 12);
        dead_letter(2, NULL, 0, 0, NULL, "x", "foreign", 7);
        dead_letter(3, "other-topic", 0, 1, "bad_framing", "k3", "other", 5);
        /* The command line reads the same settings from the environment. */
        const char *env[][2] = {{"REFSTREAM_KAFKA_BROKERS", it_fx.brokers},
                                {"REFSTREAM_TOPIC_SIGNUPS", it_fx.topics.signups},
                                {"REFSTREAM_TOPIC_PAYMENTS", it_fx.topics.payments},
                                {"REFSTREAM_TOPIC_DLQ", it_fx.topics.dlq},
                                {"REFSTREAM_DATABASE_URL", it_fx.url},
                                {"REFSTREAM_REDIS_URL", ""}};
        for (size_t i = 0; i < RS_ARRAY_SIZE(env); i++)
                setenv(env[i][0], env[i][1], 1);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        dlq_fx_t *f = *state;
        rs_config_free(&f->cfg);
        free(f);
        return it_teardown(state);
}

static rs_admin_dlq_t *handle(dlq_fx_t *f)
{
        rs_admin_dlq_t *d = rs_admin_dlq_new(&f->cfg, it_fx.pg, "it");
        rs_admin_dlq_set_timeout(d, 10000);
        return d;
}

/* One record of a partition, as read back. */
typedef struct copy {
        char from[128]; /* its refstream_redriven_from header, "" if none */
        char key[64];   /* "(null)" without a key */
        char value[64];
        size_t value_len;
} copy_t;

/* Every record of topic [partition] (at most max), in offset order. */
static size_t read_partition(const char *topic, int32_t partition, copy_t *out,
                             size_t max)
{
        char err[512];
        int64_t low, high;
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", it_fx.brokers, err, sizeof(err));
        rd_kafka_conf_set(conf, "group.id", "it-reader", err, sizeof(err));
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err));
        rd_kafka_t *c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        assert_non_null(c);
        assert_int_equal(
            rd_kafka_query_watermark_offsets(c, topic, partition, &low, &high, 10000), 0);
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, partition)->offset = low;
        assert_int_equal(rd_kafka_assign(c, l), 0);
        rd_kafka_topic_partition_list_destroy(l);
        size_t n = 0;
        int64_t deadline = rs_monotonic_ms() + 10000, next = low;
        while (next < high && rs_monotonic_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
                if (!m)
                        continue;
                if (!m->err && n < max) {
                        copy_t *o = &out[n++];
                        rd_kafka_headers_t *h;
                        const void *v;
                        size_t len;
                        memset(o, 0, sizeof(*o));
                        if (!rd_kafka_message_headers(m, &h) &&
                            !rd_kafka_header_get_last(h, RS_ADMIN_DLQ_REDRIVEN_HEADER, &v,
                                                      &len))
                                snprintf(o->from, sizeof(o->from), "%.*s", (int)len,
                                         (const char *)v);
                        snprintf(o->key, sizeof(o->key), "%.*s",
                                 m->key ? (int)m->key_len : 6,
                                 m->key ? (const char *)m->key : "(null)");
                        memcpy(o->value, m->payload, RS_MIN(m->len, sizeof(o->value)));
                        o->value_len = m->len;
                }
                if (!m->err)
                        next = m->offset + 1;
                rd_kafka_message_destroy(m);
        }
        assert_true(next >= high);
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
        return n;
}

/* Copies of DLQ position "P/O" on topic [partition]. */
static int copies(const char *topic, int32_t partition, const char *pos)
{
        copy_t c[16];
        char from[160];
        snprintf(from, sizeof(from), "%s/%s", it_fx.topics.dlq, pos);
        size_t n = read_partition(topic, partition, c, 16);
        int k = 0;
        for (size_t i = 0; i < n; i++)
                k += strcmp(c[i].from, from) == 0;
        return k;
}

static size_t records(const char *topic)
{
        copy_t c[16];
        size_t n = 0;
        for (int32_t p = 0; p < PARTS; p++)
                n += read_partition(topic, p, c, 16);
        return n;
}

static void assert_contains(const char *haystack, const char *needle)
{
        if (!strstr(haystack, needle))
                fail_msg("expected \"%s\" in \"%s\"", needle, haystack);
}

static const char *jstr(const json_t *a, size_t i, const char *k)
{
        return json_string_value(json_object_get(json_array_get(a, i), k));
}

static long long jint(const json_t *a, size_t i, const char *k)
{
        return json_integer_value(json_object_get(json_array_get(a, i), k));
}

/* ---------------------------------------------------------------- list */

static void test_list_and_filters(void **state)
{
        dlq_fx_t *f = *state;
        char err[512];
        rs_admin_dlq_t *d = handle(f);
        rs_admin_dlq_filter_t all = {0};
        json_t *a = rs_admin_dlq_list(d, &all, err, sizeof(err));
        if (!a)
                fail_msg("%s", err);
        /* In DLQ partition and offset order, every field there is. */
        assert_int_equal(json_array_size(a), 5);
        assert_string_equal(jstr(a, 0, "dlq_topic"), it_fx.topics.dlq);
        assert_int_equal(jint(a, 0, "dlq_partition"), 0);
        assert_int_equal(jint(a, 0, "dlq_offset"), 0);
        assert_string_equal(jstr(a, 0, "source_topic"), it_fx.topics.signups);
        assert_int_equal(jint(a, 0, "source_partition"), 1);
        assert_int_equal(jint(a, 0, "source_offset"), 5);
        assert_string_equal(jstr(a, 0, "error_class"), "unknown_schema");
        assert_string_equal(jstr(a, 0, "error_message"), "it went wrong");
        assert_string_equal(jstr(a, 0, "event_type"), "signup");
        assert_string_equal(jstr(a, 0, "key"), "k1");
        assert_string_equal(jstr(a, 0, "key_hex"), "6b31");
        assert_int_equal(jint(a, 0, "value_bytes"), 11);
        assert_string_equal(jstr(a, 0, "preview"), "\\x00\\x00\\x00\\x00c\\x02\\x04abcd");
        assert_string_equal(jstr(a, 0, "value_hex"), "0000000063020461626364");
        assert_true(json_is_null(json_object_get(json_array_get(a, 0), "redriven")));
        assert_int_equal(jint(a, 1, "dlq_offset"), 1);
        assert_true(json_is_null(json_object_get(json_array_get(a, 1), "key")));
        assert_string_equal(jstr(a, 2, "preview"), "{\\\"event_id\\\":");
        assert_true(json_is_null(json_object_get(json_array_get(a, 3), "source_topic")));
        assert_true(json_is_null(json_object_get(json_array_get(a, 3), "source_offset")));
        json_decref(a);

        rs_admin_dlq_filter_t by_class = {.error_class = "bad_framing"};
        a = rs_admin_dlq_list(d, &by_class, err, sizeof(err));
        assert_non_null(a);
        assert_int_equal(json_array_size(a), 2);
        assert_int_equal(jint(a, 0, "source_offset"), 9);
        assert_string_equal(jstr(a, 1, "source_topic"), "other-topic");
        json_decref(a);

        rs_admin_dlq_filter_t by_topic = {.source_topic = it_fx.topics.payments};
        a = rs_admin_dlq_list(d, &by_topic, err, sizeof(err));
        assert_non_null(a);
        assert_int_equal(json_array_size(a), 1);
        assert_string_equal(jstr(a, 0, "error_class"), "json_decode");
        json_decref(a);

        rs_admin_dlq_filter_t both = {.source_topic = it_fx.topics.signups,
                                      .error_class = "json_decode"};
        a = rs_admin_dlq_list(d, &both, err, sizeof(err));
        assert_non_null(a);
        assert_int_equal(json_array_size(a), 0);
        json_decref(a);

        rs_admin_dlq_filter_t limited = {.limit = 2};
        a = rs_admin_dlq_list(d, &limited, err, sizeof(err));
        assert_non_null(a);
        assert_int_equal(json_array_size(a), 2);
        json_decref(a);
        rs_admin_dlq_destroy(d);
}

static void test_list_cli(void **state)
{
        char *out, *err;
        assert_int_equal(rs_it_admin_cli(NULL, &out, &err, "dlq", "list", "--class",
                                         "json_decode", "--json", NULL),
                         0);
        json_t *a = json_loads(out, 0, NULL);
        assert_non_null(a);
        assert_int_equal(json_array_size(a), 1);
        assert_string_equal(jstr(a, 0, "key"), "k2");
        json_decref(a);
        free(out);
        free(err);

        assert_int_equal(rs_it_admin_cli(NULL, &out, &err, "dlq", "list", "--topic",
                                         it_fx.topics.signups, NULL),
                         0);
        char line[256];
        snprintf(line, sizeof(line), "%s/0/0  from %s/1/5  unknown_schema\n",
                 it_fx.topics.dlq, it_fx.topics.signups);
        assert_contains(out, line);
        assert_contains(out,
                        "key: \"k1\"  11 bytes: \"\\x00\\x00\\x00\\x00c\\x02\\x04abcd\"");
        assert_contains(out, "key: (none)  7 bytes: \"garbage\"");
        assert_contains(out, "2 dead letters\n");
        free(out);
        free(err);

        /* Usage errors name the option and exit 2, before connecting. */
        assert_int_equal(
            rs_it_admin_cli(NULL, &out, &err, "dlq", "list", "--class", "nope", NULL), 2);
        assert_contains(err, "--class: 'nope' is not an error class");
        free(out);
        free(err);
        assert_int_equal(
            rs_it_admin_cli(NULL, &out, &err, "dlq", "list", "--limit", "0", NULL), 2);
        assert_contains(err, "--limit");
        free(out);
        free(err);
        assert_int_equal(
            rs_it_admin_cli(NULL, &out, &err, "dlq", "redrive", "--json", NULL), 2);
        assert_contains(err, "json");
        free(out);
        free(err);
        assert_int_equal(
            rs_it_admin_cli(NULL, &out, &err, "dlq", "redrive", "--help", NULL), 0);
        assert_contains(out, "refstream_redriven_from");
        free(out);
        free(err);
}

/* ---------------------------------------------------------------- redrive */

static rs_admin_dlq_summary_t redrive(dlq_fx_t *f, const rs_admin_dlq_filter_t *filter,
                                      bool dry_run)
{
        char err[512];
        rs_admin_dlq_summary_t sum;
        rs_admin_dlq_t *d = handle(f);
        if (!rs_admin_dlq_redrive(d, filter, dry_run, NULL, &sum, err, sizeof(err)))
                fail_msg("redrive: %s", err);
        rs_admin_dlq_destroy(d);
        return sum;
}

static void test_redrive_once(void **state)
{
        dlq_fx_t *f = *state;
        rs_admin_dlq_filter_t all = {0};
        rs_admin_dlq_summary_t s = redrive(f, &all, false);
        assert_int_equal(s.selected, 5);
        assert_int_equal(s.sent, 3);
        assert_int_equal(s.skipped, 2);
        assert_int_equal(s.already, 0);
        /* Each to its source partition, with its key and bytes. */
        copy_t c[4];
        char from[160];
        assert_int_equal(read_partition(it_fx.topics.signups, 1, c, 4), 1);
        snprintf(from, sizeof(from), "%s/0/0", it_fx.topics.dlq);
        assert_string_equal(c[0].from, from);
        assert_string_equal(c[0].key, "k1");
        assert_int_equal(c[0].value_len, sizeof(avro99) - 1);
        assert_memory_equal(c[0].value, avro99, sizeof(avro99) - 1);
        assert_int_equal(read_partition(it_fx.topics.signups, 3, c, 4), 1);
        assert_string_equal(c[0].key, "(null)");
        assert_memory_equal(c[0].value, "garbage", 7);
        assert_int_equal(copies(it_fx.topics.payments, 2, "1/0"), 1);
        assert_int_equal(records(it_fx.topics.signups), 2);
        assert_int_equal(records(it_fx.topics.payments), 1);
        assert_int_equal(rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_dlq_redrives"
                                               " WHERE state = 'sent' AND actor = 'it'"),
                         3);

        /* Again: nothing is sent. */
        s = redrive(f, &all, false);
        assert_int_equal(s.sent, 0);
        assert_int_equal(s.already, 3);
        assert_int_equal(s.skipped, 2);
        assert_int_equal(records(it_fx.topics.signups), 2);
        assert_int_equal(records(it_fx.topics.payments), 1);

        /* list says which were redriven. */
        char *out, *err;
        assert_int_equal(rs_it_admin_cli(NULL, &out, &err, "dlq", "list", "--json", NULL),
                         0);
        json_t *a = json_loads(out, 0, NULL);
        assert_non_null(a);
        assert_string_equal(jstr(a, 0, "redriven"), "sent");
        assert_true(json_is_null(json_object_get(json_array_get(a, 3), "redriven")));
        json_decref(a);
        free(out);
        free(err);
}

static void test_redrive_filters_and_cli(void **state)
{
        char *out, *err;
        assert_int_equal(rs_it_admin_cli(NULL, &out, &err, "dlq", "redrive", "--class",
                                         "unknown_schema", NULL),
                         0);
        assert_contains(out, "1 selected: 1 sent, 0 already redriven, 0 skipped");
        free(out);
        free(err);
        assert_int_equal(records(it_fx.topics.signups), 1);
        assert_int_equal(copies(it_fx.topics.signups, 1, "0/0"), 1);
        assert_int_equal(rs_it_admin_cli(NULL, &out, &err, "dlq", "redrive", "--topic",
                                         it_fx.topics.signups, NULL),
                         0);
        assert_contains(out, "2 selected: 1 sent, 1 already redriven, 0 skipped");
        free(out);
        free(err);
        assert_int_equal(rs_it_admin_cli(NULL, &out, &err, "dlq", "redrive", NULL), 0);
        assert_contains(out, "skipped ");
        assert_contains(out, "no source_topic/source_partition headers");
        assert_contains(out, "source topic other-topic is not an input topic");
        assert_contains(out, "5 selected: 1 sent, 2 already redriven, 2 skipped");
        free(out);
        free(err);
        assert_int_equal(records(it_fx.topics.signups), 2);
        assert_int_equal(records(it_fx.topics.payments), 1);
}

static void test_dry_run_changes_nothing(void **state)
{
        dlq_fx_t *f = *state;
        rs_admin_dlq_filter_t all = {0};
        rs_admin_dlq_summary_t s = redrive(f, &all, true);
        assert_int_equal(s.selected, 5);
        assert_int_equal(s.sent, 3); /* would be */
        assert_int_equal(s.skipped, 2);
        assert_int_equal(records(it_fx.topics.signups), 0);
        assert_int_equal(records(it_fx.topics.payments), 0);
        assert_int_equal(rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_dlq_redrives"),
                         0);
        char *out, *err;
        assert_int_equal(
            rs_it_admin_cli(NULL, &out, &err, "dlq", "redrive", "--dry-run", NULL), 0);
        char line[256];
        snprintf(line, sizeof(line),
                 "would send %s/0/0 -> %s [1] (unknown_schema, 11 bytes)",
                 it_fx.topics.dlq, it_fx.topics.signups);
        assert_contains(out, line);
        assert_contains(out, "3 would be sent");
        assert_contains(out, "dry run: nothing changed");
        free(out);
        free(err);
        assert_int_equal(records(it_fx.topics.signups), 0);
        assert_int_equal(rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_dlq_redrives"),
                         0);
}

/* The first dead letter (DLQ 0/0, to signups [1]) claimed by a run that then
 * stopped; with_copy: after its copy was committed, before the marking. */
static void crash_after_claim(dlq_fx_t *f, bool with_copy)
{
        char err[512];
        size_t claimed;
        rs_admin_dlq_t *d = handle(f);
        assert_true(rs_admin_dlq_read(d, err, sizeof(err)));
        const rs_dlq_letter_t *l = rs_admin_dlq_letter(d, 0);
        assert_int_equal(l->offset, 0);
        assert_true(rs_admin_dlq_claim(d, &l, 1, &claimed, err, sizeof(err)));
        assert_int_equal(claimed, 1);
        if (with_copy && !rs_admin_dlq_send(d, &l, 1, err, sizeof(err)))
                fail_msg("send: %s", err);
        rs_admin_dlq_destroy(d); /* no marking: as if the process died */
        assert_int_equal(rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_dlq_redrives"
                                               " WHERE state = 'claimed'"),
                         1);
        assert_int_equal(copies(it_fx.topics.signups, 1, "0/0"), with_copy ? 1 : 0);
}

static void test_crash_copy_absent(void **state)
{
        dlq_fx_t *f = *state;
        crash_after_claim(f, false);
        rs_admin_dlq_filter_t cls = {.error_class = "json_decode"};
        rs_admin_dlq_summary_t s = redrive(f, &cls, false);
        /* The claimed one is resolved first, whatever the filter: sent once. */
        assert_int_equal(s.found, 0);
        assert_int_equal(s.resent, 1);
        assert_int_equal(s.sent, 1);
        assert_int_equal(copies(it_fx.topics.signups, 1, "0/0"), 1);
        assert_int_equal(records(it_fx.topics.signups), 1);
        assert_int_equal(rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_dlq_redrives"
                                               " WHERE state = 'sent' AND attempts = 2"),
                         1);
        rs_admin_dlq_filter_t all = {0};
        s = redrive(f, &all, false);
        assert_int_equal(s.resent + s.found, 0);
        assert_int_equal(s.sent, 1);
        assert_int_equal(s.already, 2);
        assert_int_equal(copies(it_fx.topics.signups, 1, "0/0"), 1);
}

static void test_crash_copy_present(void **state)
{
        dlq_fx_t *f = *state;
        crash_after_claim(f, true);
        rs_admin_dlq_filter_t all = {0};
        rs_admin_dlq_summary_t s = redrive(f, &all, false);
        assert_int_equal(s.found, 1);
        assert_int_equal(s.resent, 0);
        assert_int_equal(s.already, 1);
        assert_int_equal(s.sent, 2);
        assert_int_equal(copies(it_fx.topics.signups, 1, "0/0"), 1);
        assert_int_equal(records(it_fx.topics.signups), 2);
        assert_int_equal(rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_dlq_redrives"
                                               " WHERE state = 'claimed'"),
                         0);
}

static void test_one_run_at_a_time(void **state)
{
        dlq_fx_t *f = *state;
        char err[512];
        rs_admin_dlq_summary_t s;
        rs_pg_t *other = rs_it_pg(it_fx.url);
        free(rs_it_sql(other, "SELECT pg_advisory_lock(" LOCK_KEY ")"));
        rs_admin_dlq_filter_t all = {0};
        rs_admin_dlq_t *d = handle(f);
        assert_false(rs_admin_dlq_redrive(d, &all, false, NULL, &s, err, sizeof(err)));
        assert_contains(err, "another `refstream admin dlq redrive` is running");
        rs_admin_dlq_destroy(d);
        char *out, *cerr;
        assert_int_equal(rs_it_admin_cli(NULL, &out, &cerr, "dlq", "redrive", NULL), 1);
        assert_contains(cerr, "another `refstream admin dlq redrive` is running");
        free(out);
        free(cerr);
        assert_int_equal(records(it_fx.topics.signups), 0);
        rs_pg_destroy(other); /* the lock goes with the session */
        s = redrive(f, &all, false);
        assert_int_equal(s.sent, 3);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_list_and_filters, setup, teardown),
            cmocka_unit_test_setup_teardown(test_list_cli, setup, teardown),
            cmocka_unit_test_setup_teardown(test_redrive_once, setup, teardown),
            cmocka_unit_test_setup_teardown(test_redrive_filters_and_cli, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_dry_run_changes_nothing, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_crash_copy_absent, setup, teardown),
            cmocka_unit_test_setup_teardown(test_crash_copy_present, setup, teardown),
            cmocka_unit_test_setup_teardown(test_one_run_at_a_time, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
