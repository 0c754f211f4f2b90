/* Processor tests' fixture: see support_proc.h. */
#include "support_proc.h"
#include "rs_metrics.h"
#include "rs_publisher.h"
#include "rs_util.h"

#include <jansson.h>

#include <curl/curl.h>
#include <librdkafka/rdkafka_mock.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

fx_t it_fx;

/* ---------------------------------------------------------------- helpers */

static void names(const char *prefix)
{
        snprintf(it_fx.topics.signups, sizeof(it_fx.topics.signups), "%ssignups", prefix);
        snprintf(it_fx.topics.payments, sizeof(it_fx.topics.payments), "%spayments",
                 prefix);
        snprintf(it_fx.topics.credited, sizeof(it_fx.topics.credited),
                 "%sreferral-credited", prefix);
        snprintf(it_fx.topics.reversed, sizeof(it_fx.topics.reversed),
                 "%sreferral-reversed", prefix);
        snprintf(it_fx.topics.dlq, sizeof(it_fx.topics.dlq), "%srefstream-dlq", prefix);
        snprintf(it_fx.group, sizeof(it_fx.group), "%srefstream", prefix);
}

static void fresh_db(const char *db)
{
        char err[512];
        it_fx.codec = rs_codec_new(err, sizeof(err));
        rs_it_redis_flush();
        rs_it_redis_flush();
        if (!db)
                return;
        it_fx.url = rs_it_fresh_db(db);
        it_fx.pg = rs_it_pg(it_fx.url);
        it_program();
}

void it_fresh(const char *db)
{
        char err[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
        it_fx.host = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        it_fx.mc = rd_kafka_mock_cluster_new(it_fx.host, 1);
        it_fx.brokers = rd_kafka_mock_cluster_bootstraps(it_fx.mc);
        names("");
        const char *topics[] = {it_fx.topics.signups, it_fx.topics.payments,
                                it_fx.topics.credited, it_fx.topics.reversed,
                                it_fx.topics.dlq};
        for (size_t i = 0; i < RS_ARRAY_SIZE(topics); i++)
                rd_kafka_mock_topic_create(it_fx.mc, topics[i], PARTS, 1);
        fresh_db(db);
}

void it_fresh_real(const char *db)
{
        char prefix[64];
        it_fx.brokers = rs_it_env("REFSTREAM_KAFKA_BROKERS");
        snprintf(prefix, sizeof(prefix), "it-%s-%lld-", db ? db : "x",
                 (long long)rs_now_ms());
        names(prefix);
        fresh_db(db);
}

void it_program(void)
{
        free(rs_it_sql(it_fx.pg,
                       "INSERT INTO rs_programs (key, name, currency, reward_kind,"
                       " reward_value, referee_reward, min_payment)"
                       " VALUES ('p', 'P', 'USD', 'fixed', 500, 100, 1000)"));
        free(rs_it_sql(it_fx.pg,
                       "INSERT INTO rs_codes (code, program_id, owner_user_id)"
                       " VALUES ('ALICE234', 1, 'alice'), ('BOB23456', 1, 'bob')"));
}

int it_teardown(void **state)
{
        rs_metrics_reset(); /* each test counts from zero */
        rs_codec_destroy(it_fx.codec);
        rs_pg_destroy(it_fx.pg);
        if (it_fx.mc) {
                rd_kafka_mock_cluster_destroy(it_fx.mc);
                rd_kafka_destroy(it_fx.host);
        }
        memset(&it_fx, 0, sizeof(it_fx));
        return 0;
}

void it_config(rs_config_t *cfg, const char *db_url)
{
        char err[512];
        rs_config_init(cfg);
        const char *kv[][2] = {
            {"REFSTREAM_KAFKA_BROKERS", it_fx.brokers},
            {"REFSTREAM_TOPIC_SIGNUPS", it_fx.topics.signups},
            {"REFSTREAM_TOPIC_PAYMENTS", it_fx.topics.payments},
            {"REFSTREAM_TOPIC_CREDITED", it_fx.topics.credited},
            {"REFSTREAM_TOPIC_REVERSED", it_fx.topics.reversed},
            {"REFSTREAM_TOPIC_DLQ", it_fx.topics.dlq},
            {"REFSTREAM_GROUP_ID", it_fx.group},
            {"REFSTREAM_DATABASE_URL", db_url},
            {"REFSTREAM_REDIS_URL", rs_it_env("REFSTREAM_REDIS_URL")},
            {"REFSTREAM_HTTP_ADDR", "127.0.0.1:0"},
            {"REFSTREAM_BATCH_LINGER_MS", "10"},
            {"REFSTREAM_OUTBOX_LEASE_MS", "1500"},
            {"REFSTREAM_OUTBOX_SWEEP_INTERVAL_MS", "300"},
            {"REFSTREAM_PG_RETRY_MAX_MS", "400"},
            {"REFSTREAM_PG_STATEMENT_TIMEOUT_MS", "2000"},
            /* A real broker allows 6 s at least (group.min.session.timeout.ms). */
            {"REFSTREAM_RDKAFKA_SESSION_TIMEOUT_MS", it_fx.mc ? "3000" : "6000"},
            {"REFSTREAM_RDKAFKA_HEARTBEAT_INTERVAL_MS", "300"},
        };
        for (size_t i = 0; i < RS_ARRAY_SIZE(kv); i++)
                if (!rs_config_set(cfg, kv[i][0], kv[i][1], "test", err, sizeof(err)))
                        fail_msg("%s", err);
}

void it_publish(const rs_config_t *cfg, const rs_event_t *evs, size_t n)
{
        char err[512];
        rs_publisher_t *p = rs_publisher_new(cfg, it_fx.codec, false, err, sizeof(err));
        assert_non_null(p);
        for (size_t i = 0; i < n; i++)
                assert_true(rs_publisher_send(p, &evs[i], NULL, err, sizeof(err)));
        assert_int_equal(rs_publisher_finish(p, 10000), 0);
        rs_publisher_destroy(p);
}

rs_event_t it_su(const char *id, const char *user, const char *code)
{
        return (rs_event_t){.type = RS_EV_SIGNUP,
                            .event_id = id,
                            .occurred_at_ms = T0,
                            .user_id = user,
                            .referral_code = code};
}

rs_event_t it_ch(const char *id, const char *user, int64_t amount)
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
void it_referees(const rs_config_t *cfg, int base, int n, const char *code)
{
        rs_arena_t a;
        rs_arena_init(&a, 0);
        rs_event_t *evs = rs_calloc((size_t)n * 2, sizeof(*evs));
        for (int i = 0; i < n; i++) {
                const char *u = rs_arena_printf(&a, "u%d", base + i);
                evs[2 * i] = it_su(rs_arena_printf(&a, "s%d", base + i), u, code);
                evs[2 * i + 1] = it_ch(rs_arena_printf(&a, "c%d", base + i), u, 2000);
        }
        it_publish(cfg, evs, (size_t)n * 2);
        free(evs);
        rs_arena_destroy(&a);
}

static void *run_thread(void *arg)
{
        runner_t *r = arg;
        r->rc = rs_processor_run(r->p, &r->stop, 0);
        return NULL;
}

runner_t *it_start(const rs_config_t *cfg, const rs_processor_hooks_t *hooks)
{
        char err[1024];
        runner_t *r = rs_calloc(1, sizeof(*r));
        r->p = rs_processor_new(cfg, hooks, err, sizeof(err));
        if (!r->p)
                fail_msg("processor: %s", err);
        pthread_create(&r->t, NULL, run_thread, r);
        return r;
}

int it_finish(runner_t *r)
{
        r->stop = 1;
        pthread_join(r->t, NULL);
        rs_processor_destroy(r->p);
        int rc = r->rc;
        free(r);
        return rc;
}

/* Waits until the SQL count reaches want (or fails after 30 s). */
void it_await_count(long long want, const char *sql)
{
        long long got = -1;
        for (int i = 0; i < 300; i++) {
                got = rs_it_count(it_fx.pg, "%s", sql);
                if (got == want)
                        return;
                rs_sleep_ms(100);
        }
        fail_msg("waited 30 s for %lld from %s, have %lld", want, sql, got);
}

long it_http_status(int port, const char *path)
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

void it_await_http(int port, const char *path, long want)
{
        for (int i = 0; i < 200; i++) {
                if (it_http_status(port, path) == want)
                        return;
                rs_sleep_ms(100);
        }
        fail_msg("%s never answered %ld", path, want);
}

/* Reads a whole output topic; counts records per credit_id. Done after
 * 1.5 s without a record, once records came; the first may take up to 10 s
 * (a reader joining a busy mock cluster). */
void it_read_topic(const char *topic, it_out_t *o)
{
        char err[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", it_fx.brokers, err, sizeof(err));
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
        for (int idle = 0; idle < (o->total ? 15 : 100);) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                if (!m || m->err) {
                        idle++;
                } else {
                        idle = 0;
                        rs_buf_t j;
                        rs_buf_init(&j);
                        assert_true(rs_codec_output_to_json(
                            it_fx.codec, m->payload, m->len, &j, err, sizeof(err)));
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

void it_out_free(it_out_t *o)
{
        for (size_t i = 0; i < o->ids.cap; i++)
                if (o->ids.slots[i].key)
                        free((void *)o->ids.slots[i].key);
        rs_map_free(&o->ids);
}

long it_max_copies(const it_out_t *o)
{
        long max = 0;
        for (size_t i = 0; i < o->ids.cap; i++)
                if (o->ids.slots[i].key && (intptr_t)o->ids.slots[i].value > max)
                        max = (long)(intptr_t)o->ids.slots[i].value;
        return max;
}

/* The body of a GET (at most size-1 bytes), "" on failure. */
static size_t keep_body(char *data, size_t size, size_t n, void *out)
{
        rs_buf_append(out, data, size * n);
        return size * n;
}

void it_http_body(int port, const char *path, char *out, size_t size)
{
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
        rs_buf_t b;
        rs_buf_init(&b);
        CURL *c = curl_easy_init();
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 5L);
        bool ok = curl_easy_perform(c) == CURLE_OK;
        curl_easy_cleanup(c);
        rs_strlcpy(out, ok && b.data ? b.data : "", size);
        rs_buf_free(&b);
}

double it_metric(int port, const char *series)
{
        static char body[1 << 17];
        it_http_body(port, "/metrics", body, sizeof(body));
        size_t n = strlen(series);
        for (const char *l = body; l && *l;
             l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (strncmp(l, series, n) == 0 && l[n] == ' ')
                        return strtod(l + n + 1, NULL);
        return 0;
}

void it_await_metric(int port, const char *series, double want)
{
        double got = 0;
        for (int i = 0; i < 300; i++) {
                if ((got = it_metric(port, series)) >= want)
                        return;
                rs_sleep_ms(100);
        }
        fail_msg("waited 30 s for %s >= %g, have %g", series, want, got);
}
