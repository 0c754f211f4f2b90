/* The processor (refstream consume) against real Postgres and Redis and
 * librdkafka's mock cluster in process: end to end, crash after COMMIT,
 * Postgres outage, output-topic failure with republish, two instances. */
#include "rs_log.h"
#include "rs_processor.h"
#include "rs_publisher.h"
#include "support.h"

#include <curl/curl.h>
#include <jansson.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define PARTS 4

typedef struct fx {
        rd_kafka_t *host;
        rd_kafka_mock_cluster_t *mc;
        const char *url;
        rs_pg_t *pg;
        rs_codec_t *codec;
        int db_seq;
} fx_t;

static fx_t fx;

/* ---------------------------------------------------------------- helpers */

static void fresh(const char *db)
{
        char err[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
        fx.host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        fx.mc = rd_kafka_mock_cluster_new(fx.host, 1);
        const char *topics[] = {"signups", "payments", "referral-credited",
                                "referral-reversed", "refstream-dlq"};
        for (size_t i = 0; i < RS_ARRAY_SIZE(topics); i++)
                rd_kafka_mock_topic_create(fx.mc, topics[i], PARTS, 1);
        fx.url = rs_it_fresh_db(db);
        fx.pg = rs_it_pg(fx.url);
        fx.codec = rs_codec_new(err, sizeof(err));
        rs_it_redis_flush();
        free(rs_it_sql(fx.pg, "INSERT INTO rs_programs (key, name, currency, reward_kind,"
                              " reward_value, referee_reward, min_payment)"
                              " VALUES ('p', 'P', 'USD', 'fixed', 500, 100, 1000)"));
        free(rs_it_sql(fx.pg,
                       "INSERT INTO rs_codes (code, program_id, owner_user_id)"
                       " VALUES ('ALICE234', 1, 'alice'), ('BOB23456', 1, 'bob')"));
}

static int teardown(void **state)
{
        rs_codec_destroy(fx.codec);
        rs_pg_destroy(fx.pg);
        rd_kafka_mock_cluster_destroy(fx.mc);
        rd_kafka_destroy(fx.host);
        memset(&fx, 0, sizeof(fx));
        return 0;
}

static void config(rs_config_t *cfg, const char *db_url)
{
        char err[512];
        rs_config_init(cfg);
        const char *kv[][2] = {
            {"REFSTREAM_KAFKA_BROKERS", rd_kafka_mock_cluster_bootstraps(fx.mc)},
            {"REFSTREAM_DATABASE_URL", db_url},
            {"REFSTREAM_REDIS_URL", rs_it_env("REFSTREAM_REDIS_URL")},
            {"REFSTREAM_HTTP_ADDR", "127.0.0.1:0"},
            {"REFSTREAM_BATCH_LINGER_MS", "10"},
            {"REFSTREAM_OUTBOX_LEASE_MS", "1500"},
            {"REFSTREAM_OUTBOX_SWEEP_INTERVAL_MS", "300"},
            {"REFSTREAM_PG_RETRY_MAX_MS", "400"},
            {"REFSTREAM_PG_STATEMENT_TIMEOUT_MS", "2000"},
            {"REFSTREAM_RDKAFKA_SESSION_TIMEOUT_MS", "3000"},
            {"REFSTREAM_RDKAFKA_HEARTBEAT_INTERVAL_MS", "300"},
        };
        for (size_t i = 0; i < RS_ARRAY_SIZE(kv); i++)
                if (!rs_config_set(cfg, kv[i][0], kv[i][1], "test", err, sizeof(err)))
                        fail_msg("%s", err);
}

static void publish(const rs_config_t *cfg, const rs_event_t *evs, size_t n)
{
        char err[512];
        rs_publisher_t *p = rs_publisher_new(cfg, fx.codec, false, err, sizeof(err));
        assert_non_null(p);
        for (size_t i = 0; i < n; i++)
                assert_true(rs_publisher_send(p, &evs[i], NULL, err, sizeof(err)));
        assert_int_equal(rs_publisher_finish(p, 10000), 0);
        rs_publisher_destroy(p);
}

#define T0 INT64_C(1767225600000)

static rs_event_t su(const char *id, const char *user, const char *code)
{
        return (rs_event_t){.type = RS_EV_SIGNUP,
                            .event_id = id,
                            .occurred_at_ms = T0,
                            .user_id = user,
                            .referral_code = code};
}

static rs_event_t ch(const char *id, const char *user, int64_t amount)
{
        rs_event_t e = {.type = RS_EV_PAYMENT,
                        .event_id = id,
                        .occurred_at_ms = T0 + 3600000,
                        .user_id = user,
                        .payment_id = id,
                        .amount_minor = amount,
                        .currency = "USD"};
        return e;
}

/* n referees u<base>..: a sign-up with a code and a qualifying charge each. */
static void referees(const rs_config_t *cfg, int base, int n, const char *code)
{
        rs_arena_t a;
        rs_arena_init(&a, 0);
        rs_event_t *evs = rs_calloc((size_t)n * 2, sizeof(*evs));
        for (int i = 0; i < n; i++) {
                const char *u = rs_arena_printf(&a, "u%d", base + i);
                evs[2 * i] = su(rs_arena_printf(&a, "s%d", base + i), u, code);
                evs[2 * i + 1] = ch(rs_arena_printf(&a, "c%d", base + i), u, 2000);
        }
        publish(cfg, evs, (size_t)n * 2);
        free(evs);
        rs_arena_destroy(&a);
}

typedef struct runner {
        rs_processor_t *p;
        volatile sig_atomic_t stop;
        int rc;
        pthread_t t;
} runner_t;

static void *run_thread(void *arg)
{
        runner_t *r = arg;
        r->rc = rs_processor_run(r->p, &r->stop, 0);
        return NULL;
}

static runner_t *start(const rs_config_t *cfg, const rs_processor_hooks_t *hooks)
{
        char err[1024];
        runner_t *r = rs_calloc(1, sizeof(*r));
        r->p = rs_processor_new(cfg, hooks, err, sizeof(err));
        if (!r->p)
                fail_msg("processor: %s", err);
        pthread_create(&r->t, NULL, run_thread, r);
        return r;
}

static int finish(runner_t *r)
{
        r->stop = 1;
        pthread_join(r->t, NULL);
        rs_processor_destroy(r->p);
        int rc = r->rc;
        free(r);
        return rc;
}

/* Waits until the SQL count reaches want (or fails after 30 s). */
static void await_count(long long want, const char *sql)
{
        long long got = -1;
        for (int i = 0; i < 300; i++) {
                got = rs_it_count(fx.pg, "%s", sql);
                if (got == want)
                        return;
                rs_sleep_ms(100);
        }
        fail_msg("waited 30 s for %lld from %s, have %lld", want, sql, got);
}

typedef struct out {
        rs_map_t ids; /* credit_id -> count (as pointer) */
        long total;
        char header_event_type[64];
} out_t;

/* Reads a whole output topic; counts records per credit_id. */
static void read_topic(const char *topic, out_t *o)
{
        char err[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers",
                          rd_kafka_mock_cluster_bootstraps(fx.mc), err, sizeof(err));
        rd_kafka_conf_set(conf, "group.id", "test-reader", err, sizeof(err));
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(PARTS);
        for (int p = 0; p < PARTS; p++)
                rd_kafka_topic_partition_list_add(l, topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        rs_map_init(&o->ids);
        o->total = 0;
        for (int idle = 0; idle < 15;) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                if (!m || m->err) {
                        idle++;
                } else {
                        idle = 0;
                        rs_buf_t j;
                        rs_buf_init(&j);
                        assert_true(rs_codec_output_to_json(fx.codec, m->payload, m->len,
                                                            &j, err, sizeof(err)));
                        json_t *doc = json_loads(j.data, 0, NULL);
                        const char *id =
                            json_string_value(json_object_get(doc, "credit_id"));
                        char *key = rs_strdup(id);
                        intptr_t n = (intptr_t)rs_map_get(&o->ids, key);
                        if (n)
                                free(key);
                        rs_map_put(&o->ids, n ? id : key, (void *)(n + 1));
                        o->total++;
                        rd_kafka_headers_t *h;
                        const void *v;
                        size_t len;
                        if (!rd_kafka_message_headers(m, &h) &&
                            !rd_kafka_header_get_last(h, "event_type", &v, &len))
                                snprintf(o->header_event_type,
                                         sizeof(o->header_event_type), "%.*s", (int)len,
                                         (const char *)v);
                        json_decref(doc);
                        rs_buf_free(&j);
                }
                if (m)
                        rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
}

static void out_free(out_t *o)
{
        for (size_t i = 0; i < o->ids.cap; i++)
                if (o->ids.slots[i].key)
                        free((void *)o->ids.slots[i].key);
        rs_map_free(&o->ids);
}

static long max_copies(const out_t *o)
{
        long max = 0;
        for (size_t i = 0; i < o->ids.cap; i++)
                if (o->ids.slots[i].key && (intptr_t)o->ids.slots[i].value > max)
                        max = (long)(intptr_t)o->ids.slots[i].value;
        return max;
}

/* ---------------------------------------------------------------- tests */

static void end_to_end(void **state)
{
        fresh("it_proc_e2e");
        rs_config_t cfg;
        config(&cfg, fx.url);
        referees(&cfg, 0, 20, "alice234");
        runner_t *r = start(&cfg, NULL);
        await_count(40, "SELECT count(*) FROM rs_outbox WHERE published_at IS NOT NULL");
        assert_int_equal(finish(r), 0);
        out_t o;
        read_topic("referral-credited", &o);
        assert_int_equal(o.total, 40); /* 20 referrer + 20 referee credits */
        assert_int_equal(o.ids.count, 40);
        assert_string_equal(o.header_event_type, "ReferralCredited");
        out_free(&o);
        assert_int_equal(
            rs_it_count(fx.pg, "SELECT rewarded_count FROM rs_referrer_stats"), 20);
        rs_config_free(&cfg);
}

static int crash_after = -1;
static bool crash_hook(void *opaque, const rs_batch_t *b)
{
        (void)opaque;
        (void)b;
        return crash_after-- != 0;
}

/* The process dies after a batch's COMMIT, before its offsets are stored and
 * before its credits are published: the next instance replays the batch (no
 * second effect) and the sweep publishes the committed credits once. */
static void crash_after_commit(void **state)
{
        fresh("it_proc_crash");
        rs_config_t cfg;
        config(&cfg, fx.url);
        referees(&cfg, 0, 30, "ALICE234");
        crash_after = 0;
        rs_processor_hooks_t hooks = {.after_commit = crash_hook};
        runner_t *r = start(&cfg, &hooks);
        pthread_join(r->t, NULL); /* returns by itself: crashed */
        r->stop = 1;
        long long committed = rs_it_count(fx.pg, "SELECT count(*) FROM rs_inbox");
        assert_true(committed > 0);
        assert_int_equal(rs_it_count(fx.pg,
                                     "SELECT count(*) FROM rs_outbox WHERE published_at"
                                     " IS NOT NULL"),
                         0);
        rs_processor_destroy(r->p); /* no consumer close: a real crash */
        free(r);

        r = start(&cfg, NULL);
        await_count(60, "SELECT count(*) FROM rs_outbox WHERE published_at IS NOT NULL");
        assert_int_equal(finish(r), 0);
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_credits"), 60);
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_inbox"), 60);
        out_t o;
        read_topic("referral-credited", &o);
        assert_int_equal(o.ids.count, 60);
        assert_int_equal(max_copies(&o), 1); /* the crashed batch was never produced */
        out_free(&o);
        rs_config_free(&cfg);
}

static long http_status(int port, const char *path)
{
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        CURL *c = curl_easy_init();
        FILE *sink = fopen("/dev/null", "w");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
        long code = 0;
        if (curl_easy_perform(c) == CURLE_OK)
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        curl_easy_cleanup(c);
        fclose(sink);
        return code;
}

static void await_http(int port, const char *path, long want)
{
        for (int i = 0; i < 200; i++) {
                if (http_status(port, path) == want)
                        return;
                rs_sleep_ms(100);
        }
        fail_msg("%s never answered %ld", path, want);
}

/* Postgres goes away mid-stream: the processor stops advancing, reports not
 * ready, keeps its batch, and when Postgres is back finishes with nothing
 * lost. */
static void postgres_outage(void **state)
{
        fresh("it_proc_pgdown");
        rs_it_proxy_t *px = rs_it_proxy_start(atoi(rs_it_env("RS_PG_PORT")));
        char via[256];
        snprintf(via, sizeof(via), "postgresql://refstream@127.0.0.1:%d/it_proc_pgdown",
                 rs_it_proxy_port(px));
        rs_config_t cfg;
        config(&cfg, via);
        referees(&cfg, 0, 10, "ALICE234");
        runner_t *r = start(&cfg, NULL);
        int port = rs_processor_http_port(r->p);
        await_count(20, "SELECT count(*) FROM rs_credits");
        await_http(port, "/readyz", 200);

        rs_it_proxy_cut(px, true);
        referees(&cfg, 100, 10, "BOB23456");
        await_http(port, "/readyz", 503);
        assert_int_equal(http_status(port, "/healthz"), 200); /* alive, just waiting */
        rs_sleep_ms(1500);
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_credits"), 20);

        rs_it_proxy_cut(px, false);
        await_count(40, "SELECT count(*) FROM rs_credits");
        await_http(port, "/readyz", 200);
        assert_int_equal(finish(r), 0);
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_inbox"), 40);
        rs_it_proxy_stop(px);
        rs_config_free(&cfg);
}

/* The output topic refuses writes for a while: deliveries fail, rows stay
 * unpublished, and the sweep republishes them once the topic accepts again. */
static void output_topic_failure_is_republished(void **state)
{
        fresh("it_proc_outfail");
        rs_config_t cfg;
        config(&cfg, fx.url);
        rd_kafka_mock_topic_set_error(fx.mc, "referral-credited",
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
        referees(&cfg, 0, 5, "ALICE234");
        runner_t *r = start(&cfg, NULL);
        await_count(10, "SELECT count(*) FROM rs_credits");
        rs_sleep_ms(2500); /* deliveries fail meanwhile */
        assert_int_equal(rs_it_count(fx.pg,
                                     "SELECT count(*) FROM rs_outbox WHERE published_at"
                                     " IS NOT NULL"),
                         0);
        rd_kafka_mock_topic_set_error(fx.mc, "referral-credited",
                                      RD_KAFKA_RESP_ERR_NO_ERROR);
        await_count(10, "SELECT count(*) FROM rs_outbox WHERE published_at IS NOT NULL");
        assert_true(rs_it_count(fx.pg, "SELECT max(attempts) FROM rs_outbox") >= 1);
        assert_int_equal(finish(r), 0);
        out_t o;
        read_topic("referral-credited", &o);
        assert_int_equal(o.ids.count, 10);
        out_free(&o);
        rs_config_free(&cfg);
}

/* Two instances in one group share the partitions; every event has its effect
 * once, and when one stops the other takes its partitions over. */
static void two_instances_share_the_work(void **state)
{
        fresh("it_proc_group");
        rs_config_t cfg;
        config(&cfg, fx.url);
        runner_t *a = start(&cfg, NULL);
        runner_t *b = start(&cfg, NULL);
        referees(&cfg, 0, 100, "ALICE234");
        await_count(200, "SELECT count(*) FROM rs_credits");
        assert_int_equal(finish(a), 0);
        referees(&cfg, 1000, 50, "BOB23456");
        await_count(300, "SELECT count(*) FROM rs_credits");
        assert_int_equal(finish(b), 0);
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_inbox"), 300);
        assert_int_equal(rs_it_count(fx.pg, "SELECT rewarded_count FROM rs_referrer_stats"
                                            " WHERE referrer_user_id = 'alice'"),
                         100);
        rs_config_free(&cfg);
}

/* A record the database refuses even alone (here: a trigger rejecting one
 * user) must not block its partition: the batch is retried record by record,
 * that record goes to the DLQ as processing_error, the others are applied. */
static void poison_record_is_dead_lettered(void **state)
{
        fresh("it_proc_poison");
        free(rs_it_sql(fx.pg,
                       "CREATE FUNCTION no_poison() RETURNS trigger LANGUAGE plpgsql AS"
                       " $$BEGIN IF NEW.user_id = 'u3' THEN RAISE EXCEPTION 'refused';"
                       " END IF; RETURN NEW; END$$"));
        free(rs_it_sql(fx.pg,
                       "CREATE TRIGGER no_poison BEFORE INSERT ON rs_users FOR EACH ROW"
                       " EXECUTE FUNCTION no_poison()"));
        rs_config_t cfg;
        config(&cfg, fx.url);
        referees(&cfg, 0, 6, "ALICE234"); /* u3's sign-up and charge are refused */
        runner_t *r = start(&cfg, NULL);
        await_count(10, "SELECT count(*) FROM rs_credits");
        await_count(2, "SELECT count(*) FROM rs_outbox WHERE destination = 'dlq' AND"
                       " error_class = 'processing_error' AND published_at IS NOT NULL");
        assert_int_equal(finish(r), 0);
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_referrals WHERE"
                                            " referee_user_id = 'u3'"),
                         0);
        assert_int_equal(
            rs_it_count(fx.pg, "SELECT count(*) FROM rs_inbox WHERE kind = 'dlq'"), 2);
        rs_config_free(&cfg);
}

/* An error about the database, not the records (here: every write refused as
 * on a read-only replica after a failover), is waited out: nothing is
 * dead-lettered, /readyz says why, and processing resumes when it clears. */
static void read_only_database_is_waited_out(void **state)
{
        fresh("it_proc_readonly");
        free(rs_it_sql(fx.pg,
                       "CREATE FUNCTION read_only() RETURNS trigger LANGUAGE plpgsql AS"
                       " $$BEGIN RAISE EXCEPTION 'read-only' USING ERRCODE ="
                       " 'read_only_sql_transaction'; END$$"));
        free(rs_it_sql(fx.pg, "CREATE TRIGGER read_only BEFORE INSERT ON rs_inbox"
                              " FOR EACH ROW EXECUTE FUNCTION read_only()"));
        rs_config_t cfg;
        config(&cfg, fx.url);
        referees(&cfg, 0, 5, "ALICE234");
        runner_t *r = start(&cfg, NULL);
        int port = rs_processor_http_port(r->p);
        await_http(port, "/readyz", 503);
        rs_sleep_ms(1000);
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_outbox"), 0);
        free(rs_it_sql(fx.pg, "DROP TRIGGER read_only ON rs_inbox"));
        await_count(10, "SELECT count(*) FROM rs_credits");
        await_http(port, "/readyz", 200);
        assert_int_equal(finish(r), 0);
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_outbox WHERE"
                                            " destination = 'dlq'"),
                         0);
        rs_config_free(&cfg);
}

int main(void)
{
        rs_log_set_level(RS_LOG_ERROR);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_teardown(end_to_end, teardown),
            cmocka_unit_test_teardown(crash_after_commit, teardown),
            cmocka_unit_test_teardown(postgres_outage, teardown),
            cmocka_unit_test_teardown(output_topic_failure_is_republished, teardown),
            cmocka_unit_test_teardown(two_instances_share_the_work, teardown),
            cmocka_unit_test_teardown(poison_record_is_dead_lettered, teardown),
            cmocka_unit_test_teardown(read_only_database_is_waited_out, teardown),
        };
        int rc = cmocka_run_group_tests(tests, NULL, NULL);
        curl_global_cleanup();
        return rc;
}
