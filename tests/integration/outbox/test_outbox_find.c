/* The outbox sweep looks for unconfirmed rows on their topics before it
 * republishes them (consumer/outbox/rs_outbox_find.h), and lets the rows of a
 * topic it cannot search wait. This needs a real broker:
 * librdkafka's mock cluster cannot look up offsets by timestamp. Real
 * Postgres, Redis and the stack's Kafka broker. */
#include "rs_log.h"
#include "rs_outbox.h"
#include "rs_outbox_find.h"
#include "support_proc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Records carrying row ids 1..40 in the header (and one without) are found
 * by the ids wanted, and nothing else is. */
static void find_reports_rows_on_the_topic(void **state)
{
        it_fresh_real(NULL);
        char err[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", it_fx.brokers, err, sizeof(err));
        rd_kafka_t *p = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        assert_non_null(p);
        int64_t since = rs_now_ms();
        for (int id = 0; id <= 40; id++) {
                char text[16];
                snprintf(text, sizeof(text), "%d", id);
                rd_kafka_headers_t *h = rd_kafka_headers_new(1);
                if (id > 0)
                        rd_kafka_header_add(h, RS_OUTBOX_ID_HEADER, -1, text, -1);
                assert_int_equal(
                    rd_kafka_producev(p, RD_KAFKA_V_TOPIC(it_fx.topics.dlq),
                                      RD_KAFKA_V_KEY(text, strlen(text)),
                                      RD_KAFKA_V_VALUE("v", 1),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END),
                    0);
        }
        assert_int_equal(rd_kafka_flush(p, 30000), 0);
        rd_kafka_destroy(p);

        rs_config_t cfg;
        it_config(&cfg, "postgresql://unused");
        rd_kafka_t *finder = rs_outbox_finder_new(&cfg, err, sizeof(err));
        assert_non_null(finder);
        rs_idset_t wanted = {0}, found = {0};
        for (int64_t id = 35; id <= 45; id++)
                rs_idset_add(&wanted, id);
        assert_true(rs_outbox_find(finder, it_fx.topics.dlq, &wanted, since, &found,
                                   rs_monotonic_ms() + 30000, err, sizeof(err)));
        assert_int_equal(found.count, 6); /* 35..40 */
        for (int64_t id = 35; id <= 45; id++)
                assert_int_equal(rs_idset_has(&found, id), id <= 40);
        /* Rows written after the last record: nothing to read, nothing found. */
        rs_idset_free(&found);
        assert_true(rs_outbox_find(finder, it_fx.topics.dlq, &wanted,
                                   rs_now_ms() + 120000, &found,
                                   rs_monotonic_ms() + 30000, err, sizeof(err)));
        assert_int_equal(found.count, 0);
        rs_idset_free(&wanted);
        rs_idset_free(&found);
        rd_kafka_consumer_close(finder);
        rd_kafka_destroy(finder);
        rs_config_free(&cfg);
}

/* Records on a topic (the sum of its partitions' high watermarks). */
static long long topic_records(const char *topic)
{
        char err[256];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", it_fx.brokers, err, sizeof(err));
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        long long n = 0;
        for (int p = 0; p < PARTS; p++) {
                int64_t lo, hi;
                if (!rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 5000))
                        n += hi;
        }
        rd_kafka_destroy(rk);
        return n;
}

/* Waits until the batch's records are on the broker, then "crashes" before
 * the delivery reports are served and the rows marked. */
static bool publish_then_crash(void *opaque, const rs_batch_t *b)
{
        (void)opaque;
        if (b->n_out == 0)
                return true; /* a batch of sign-ups only: go on to the credits */
        for (int i = 0;
             i < 300 && topic_records(it_fx.topics.credited) < (long long)b->n_out; i++)
                rs_sleep_ms(100);
        return false;
}

/* The process dies after the broker stored a batch's records, before it
 * learned so and marked the rows: the next instance's sweep finds them on
 * the topic (their row ids are in a header) and marks them instead of
 * publishing them a second time. */
static void crash_after_delivery(void **state)
{
        it_fresh_real("it_find_crash");
        rs_config_t cfg;
        it_config(&cfg, it_fx.url);
        it_referees(&cfg, 0, 30, "ALICE234");
        rs_processor_hooks_t hooks = {.after_publish = publish_then_crash};
        runner_t *r = it_start(&cfg, &hooks);
        pthread_join(r->t, NULL); /* returns by itself: crashed */
        r->stop = 1;
        long long credits = rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_credits");
        assert_true(credits > 0);
        assert_int_equal(rs_it_count(it_fx.pg,
                                     "SELECT count(*) FROM rs_outbox_state WHERE"
                                     " published_at IS NOT NULL"),
                         0);
        rs_processor_destroy(r->p);
        free(r);

        r = it_start(&cfg, NULL);
        it_await_count(
            60, "SELECT count(*) FROM rs_outbox_state WHERE published_at IS NOT NULL");
        assert_int_equal(it_finish(r), 0);
        it_out_t o;
        it_read_topic(it_fx.topics.credited, &o);
        assert_int_equal(o.ids.count, 60);
        assert_int_equal(it_max_copies(&o), 1); /* found, not published again */
        assert_int_equal(o.total, 60);
        it_out_free(&o);
        assert_int_equal(rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_outbox WHERE"
                                               " attempts > 0"),
                         credits); /* the crashed batch's rows went through the sweep */
        rs_config_free(&cfg);
}

/* A topic that cannot be searched (here: no broker answers) is not a reason
 * to publish blindly: its recent rows wait for a later sweep, and only rows
 * older than ten minutes are republished unchecked. */
static void unsearchable_rows_wait(void **state)
{
        (void)state;
        it_fresh("it_outbox_unsearchable");
        char err[512];
        free(rs_it_sql(it_fx.pg,
                       "INSERT INTO rs_outbox (destination, msg_key, payload, event_type,"
                       "  source_topic, source_partition, source_offset, created_at)"
                       " SELECT 'credited', 'k', 'v', 'ReferralCredited', 't', 0, i,"
                       "        CASE WHEN i <= 2 THEN now() - interval '11 minutes'"
                       "             ELSE now() END"
                       "   FROM generate_series(1, 5) i"));
        rs_config_t cfg;
        it_config(&cfg, it_fx.url);
        assert_true(rs_config_set(&cfg, "REFSTREAM_KAFKA_BROKERS", "127.0.0.1:1", "test",
                                  err, sizeof(err)));
        assert_true(rs_config_add_rdkafka(&cfg, "socket.connection.setup.timeout.ms=1000",
                                          "test", err, sizeof(err)));
        rs_pg_t *pg = rs_pg_new(it_fx.url, 30000);
        rs_outbox_t *o = rs_outbox_new(&cfg, pg, err, sizeof(err));
        assert_non_null(o);
        assert_int_equal(rs_outbox_sweep(o, err, sizeof(err)), 2);
        assert_int_equal(rs_outbox_stats(o).republished, 2);
        /* The recent rows stay claimed by the lease, unpublished and not
         * produced; the sweep of any instance takes them up when it ends. */
        assert_int_equal(rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_outbox"
                                               " WHERE claimed_until > now()"
                                               "   AND published_at IS NULL"),
                         5);
        rs_outbox_destroy(o);
        rs_pg_destroy(pg);
        rs_config_free(&cfg);
}

/* Rows an older version left (schema version 9: each row published on its
 * own) are taken up after the upgrade: the unpublished ones are published by
 * the sweep, once each, the published ones stay published. */
static void upgrade_publishes_older_rows(void **state)
{
        (void)state;
        it_fresh_real(NULL);
        const char *url = rs_it_empty_db("it_outbox_upgrade");
        rs_pg_t *pg = rs_it_pg(url);
        char err[512];
        if (!rs_pg_migrate_to(pg, 9, NULL, err, sizeof(err)))
                fail_msg("migrate to 9: %s", err);
        /* Old enough that a topic that cannot be searched does not hold them back. */
        free(rs_it_sql(pg, "INSERT INTO rs_outbox (destination, msg_key, payload,"
                           "  event_type, source_topic, source_partition, source_offset,"
                           "  created_at, claimed_until, published_at)"
                           " SELECT 'credited', 'k', 'v', 'ReferralCredited', 't', 0, i,"
                           "        now() - interval '11 minutes',"
                           "        now() - interval '1 minute',"
                           "        CASE WHEN i > 3 THEN now() END"
                           "   FROM generate_series(1, 5) i"));
        if (!rs_pg_migrate(pg, NULL, err, sizeof(err)))
                fail_msg("migrate: %s", err);
        assert_int_equal(rs_it_count(pg, "SELECT count(*) FROM rs_outbox_state"
                                         " WHERE published_at IS NULL"),
                         3);
        rs_config_t cfg;
        it_config(&cfg, url);
        rs_outbox_t *o = rs_outbox_new(&cfg, pg, err, sizeof(err));
        assert_non_null(o);
        assert_int_equal(rs_outbox_sweep(o, err, sizeof(err)), 3);
        assert_true(rs_outbox_flush(o, 30000));
        assert_int_equal(rs_it_count(pg, "SELECT count(*) FROM rs_outbox_state"
                                         " WHERE published_at IS NULL"),
                         0);
        assert_int_equal(rs_outbox_sweep(o, err, sizeof(err)), 0);
        rs_outbox_destroy(o);
        assert_int_equal(topic_records(it_fx.topics.credited), 3);
        rs_pg_destroy(pg);
        rs_config_free(&cfg);
}

int main(void)
{
        rs_log_set_level(getenv("RS_IT_LOG") ? RS_LOG_INFO : RS_LOG_ERROR);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_teardown(find_reports_rows_on_the_topic, it_teardown),
            cmocka_unit_test_teardown(crash_after_delivery, it_teardown),
            cmocka_unit_test_teardown(unsearchable_rows_wait, it_teardown),
            cmocka_unit_test_teardown(upgrade_publishes_older_rows, it_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
