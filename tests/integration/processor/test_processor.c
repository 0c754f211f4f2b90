/* The processor (refstream consume) against real Postgres and Redis and
 * librdkafka's mock cluster in process: end to end, crash after COMMIT,
 * Postgres outage, output-topic failure with republish, two instances. */
#include "rs_log.h"
#include "rs_processor.h"
#include "rs_publisher.h"
#include "support_proc.h"

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

/* ---------------------------------------------------------------- tests */

static void end_to_end(void **state)
{
        it_fresh("it_proc_e2e");
        rs_config_t cfg;
        it_config(&cfg, it_fx.url);
        it_referees(&cfg, 0, 20, "alice234");
        runner_t *r = it_start(&cfg, NULL);
        it_await_count(
            40, "SELECT count(*) FROM rs_outbox_state WHERE published_at IS NOT NULL");
        assert_int_equal(it_finish(r), 0);
        /* Marked by batch (sql/010_outbox_batches.sql): no row on its own. */
        assert_int_equal(rs_it_count(it_fx.pg,
                                     "SELECT count(*) FROM rs_outbox WHERE"
                                     " batch_id IS NULL OR published_at IS NOT NULL"),
                         0);
        assert_true(rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_outbox_batches") >= 1);
        it_out_t o;
        it_read_topic(it_fx.topics.credited, &o);
        assert_int_equal(o.total, 40); /* 20 referrer + 20 referee credits */
        assert_int_equal(o.ids.count, 40);
        assert_string_equal(o.header_event_type, "ReferralCredited");
        it_out_free(&o);
        assert_int_equal(
            rs_it_count(it_fx.pg, "SELECT rewarded_count FROM rs_referrer_stats"), 20);
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
        it_fresh("it_proc_crash");
        rs_config_t cfg;
        it_config(&cfg, it_fx.url);
        it_referees(&cfg, 0, 30, "ALICE234");
        crash_after = 0;
        rs_processor_hooks_t hooks = {.after_commit = crash_hook};
        runner_t *r = it_start(&cfg, &hooks);
        pthread_join(r->t, NULL); /* returns by itself: crashed */
        r->stop = 1;
        long long committed = rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_inbox");
        assert_true(committed > 0);
        assert_int_equal(
            rs_it_count(it_fx.pg,
                        "SELECT count(*) FROM rs_outbox_state WHERE published_at"
                        " IS NOT NULL"),
            0);
        rs_processor_destroy(r->p); /* no consumer close: a real crash */
        free(r);

        r = it_start(&cfg, NULL);
        it_await_count(
            60, "SELECT count(*) FROM rs_outbox_state WHERE published_at IS NOT NULL");
        assert_int_equal(it_finish(r), 0);
        assert_int_equal(rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_credits"), 60);
        assert_int_equal(rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_inbox"), 60);
        it_out_t o;
        it_read_topic(it_fx.topics.credited, &o);
        assert_int_equal(o.ids.count, 60);
        assert_int_equal(it_max_copies(&o), 1); /* the crashed batch was never produced */
        it_out_free(&o);
        rs_config_free(&cfg);
}

/* Postgres goes away mid-stream: the processor stops advancing, reports not
 * ready, keeps its batch, and when Postgres is back finishes with nothing
 * lost. */
static void postgres_outage(void **state)
{
        it_fresh("it_proc_pgdown");
        rs_it_proxy_t *px = rs_it_proxy_start(atoi(rs_it_env("RS_PG_PORT")));
        char via[256];
        snprintf(via, sizeof(via), "postgresql://refstream@127.0.0.1:%d/it_proc_pgdown",
                 rs_it_proxy_port(px));
        rs_config_t cfg;
        it_config(&cfg, via);
        it_referees(&cfg, 0, 10, "ALICE234");
        runner_t *r = it_start(&cfg, NULL);
        int port = rs_processor_http_port(r->p);
        it_await_count(20, "SELECT count(*) FROM rs_credits");
        it_await_http(port, "/readyz", 200);

        rs_it_proxy_cut(px, true);
        it_referees(&cfg, 100, 10, "BOB23456");
        it_await_http(port, "/readyz", 503);
        assert_int_equal(it_http_status(port, "/healthz"), 200); /* alive, just waiting */
        /* Two more failed attempts with the batch: it was tried, not applied. */
        const char *retries = "refstream_batch_retries_total{reason=\"unavailable\"}";
        it_await_metric(port, retries, it_metric(port, retries) + 2);
        assert_int_equal(rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_credits"), 20);

        rs_it_proxy_cut(px, false);
        it_await_count(40, "SELECT count(*) FROM rs_credits");
        it_await_http(port, "/readyz", 200);
        assert_int_equal(it_finish(r), 0);
        assert_int_equal(rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_inbox"), 40);
        rs_it_proxy_stop(px);
        rs_config_free(&cfg);
}

/* The output topic refuses writes for longer than message.timeout.ms:
 * deliveries fail, rows stay unpublished, and the sweep republishes them once
 * the topic accepts again. */
static void output_topic_failure_is_republished(void **state)
{
        it_fresh("it_proc_outfail");
        rs_config_t cfg;
        it_config(&cfg, it_fx.url);
        rd_kafka_mock_topic_set_error(it_fx.mc, "referral-credited",
                                      RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
        it_referees(&cfg, 0, 5, "ALICE234");
        /* The processor's deliveries give up after 1 s (not the publisher's). */
        char err[256];
        assert_true(rs_config_add_rdkafka(&cfg, "message.timeout.ms=1000", "test", err,
                                          sizeof(err)));
        runner_t *r = it_start(&cfg, NULL);
        int port = rs_processor_http_port(r->p);
        it_await_count(10, "SELECT count(*) FROM rs_credits");
        /* Every row's delivery failed, and a sweep has tried again. */
        it_await_metric(port, "refstream_outbox_delivery_failures_total", 10);
        it_await_count(1, "SELECT (max(attempts) >= 1)::int FROM rs_outbox");
        assert_int_equal(
            rs_it_count(it_fx.pg,
                        "SELECT count(*) FROM rs_outbox_state WHERE published_at"
                        " IS NOT NULL"),
            0);
        rd_kafka_mock_topic_set_error(it_fx.mc, "referral-credited",
                                      RD_KAFKA_RESP_ERR_NO_ERROR);
        it_await_count(
            10, "SELECT count(*) FROM rs_outbox_state WHERE published_at IS NOT NULL");
        assert_true(rs_it_count(it_fx.pg, "SELECT max(attempts) FROM rs_outbox") >= 1);
        assert_int_equal(it_finish(r), 0);
        it_out_t o;
        it_read_topic(it_fx.topics.credited, &o);
        assert_int_equal(o.ids.count, 10);
        it_out_free(&o);
        rs_config_free(&cfg);
}

/* Two instances in one group share the partitions; every event has its effect
 * once, and when one stops the other takes its partitions over. */
static void two_instances_share_the_work(void **state)
{
        it_fresh("it_proc_group");
        rs_config_t cfg;
        it_config(&cfg, it_fx.url);
        runner_t *a = it_start(&cfg, NULL);
        runner_t *b = it_start(&cfg, NULL);
        it_referees(&cfg, 0, 100, "ALICE234");
        it_await_count(200, "SELECT count(*) FROM rs_credits");
        assert_int_equal(it_finish(a), 0);
        it_referees(&cfg, 1000, 50, "BOB23456");
        it_await_count(300, "SELECT count(*) FROM rs_credits");
        assert_int_equal(it_finish(b), 0);
        assert_int_equal(rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_inbox"), 300);
        assert_int_equal(rs_it_count(it_fx.pg,
                                     "SELECT rewarded_count FROM rs_referrer_stats"
                                     " WHERE referrer_user_id = 'alice'"),
                         100);
        rs_config_free(&cfg);
}

/* A record the database refuses even alone (here: triggers rejecting one
 * user's row and first charge) must not block its partition: the batch is
 * retried record by record, that record goes to the DLQ as processing_error,
 * the others are applied. */
static void poison_record_is_dead_lettered(void **state)
{
        it_fresh("it_proc_poison");
        free(rs_it_sql(it_fx.pg,
                       "CREATE FUNCTION no_poison() RETURNS trigger LANGUAGE plpgsql AS"
                       " $$BEGIN IF NEW.user_id = 'u3' THEN RAISE EXCEPTION 'refused';"
                       " END IF; RETURN NEW; END$$"));
        free(rs_it_sql(it_fx.pg,
                       "CREATE TRIGGER no_poison BEFORE INSERT ON rs_users FOR EACH ROW"
                       " EXECUTE FUNCTION no_poison()"));
        free(rs_it_sql(it_fx.pg,
                       "CREATE TRIGGER no_poison BEFORE INSERT ON rs_first_charges"
                       " FOR EACH ROW EXECUTE FUNCTION no_poison()"));
        rs_config_t cfg;
        it_config(&cfg, it_fx.url);
        it_referees(&cfg, 0, 6, "ALICE234"); /* u3's sign-up and charge are refused */
        runner_t *r = it_start(&cfg, NULL);
        it_await_count(10, "SELECT count(*) FROM rs_credits");
        it_await_count(
            2, "SELECT count(*) FROM rs_outbox_state WHERE destination = 'dlq' AND"
               " error_class = 'processing_error' AND published_at IS NOT NULL");
        assert_int_equal(it_finish(r), 0);
        assert_int_equal(rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_referrals WHERE"
                                               " referee_user_id = 'u3'"),
                         0);
        assert_int_equal(
            rs_it_count(it_fx.pg,
                        "SELECT count(*) FROM rs_outbox WHERE destination = 'dlq'"),
            2);
        rs_config_free(&cfg);
}

/* An error about the database, not the records (here: every write refused as
 * on a read-only replica after a failover), is waited out: nothing is
 * dead-lettered, /readyz says why, and processing resumes when it clears. */
static void read_only_database_is_waited_out(void **state)
{
        it_fresh("it_proc_readonly");
        free(rs_it_sql(it_fx.pg,
                       "CREATE FUNCTION read_only() RETURNS trigger LANGUAGE plpgsql AS"
                       " $$BEGIN RAISE EXCEPTION 'read-only' USING ERRCODE ="
                       " 'read_only_sql_transaction'; END$$"));
        free(rs_it_sql(it_fx.pg, "CREATE TRIGGER read_only BEFORE INSERT ON rs_inbox"
                                 " FOR EACH ROW EXECUTE FUNCTION read_only()"));
        rs_config_t cfg;
        it_config(&cfg, it_fx.url);
        it_referees(&cfg, 0, 5, "ALICE234");
        runner_t *r = it_start(&cfg, NULL);
        int port = rs_processor_http_port(r->p);
        it_await_http(port, "/readyz", 503);
        /* Tried three times, never split or dead-lettered. */
        it_await_metric(port, "refstream_batch_retries_total{reason=\"unavailable\"}", 3);
        assert_int_equal(rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_outbox"), 0);
        free(rs_it_sql(it_fx.pg, "DROP TRIGGER read_only ON rs_inbox"));
        it_await_count(10, "SELECT count(*) FROM rs_credits");
        it_await_http(port, "/readyz", 200);
        assert_int_equal(it_finish(r), 0);
        assert_int_equal(rs_it_count(it_fx.pg, "SELECT count(*) FROM rs_outbox WHERE"
                                               " destination = 'dlq'"),
                         0);
        rs_config_free(&cfg);
}

int main(void)
{
        rs_log_set_level(getenv("RS_IT_LOG") ? RS_LOG_INFO : RS_LOG_ERROR);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_teardown(end_to_end, it_teardown),
            cmocka_unit_test_teardown(crash_after_commit, it_teardown),
            cmocka_unit_test_teardown(postgres_outage, it_teardown),
            cmocka_unit_test_teardown(output_topic_failure_is_republished, it_teardown),
            cmocka_unit_test_teardown(two_instances_share_the_work, it_teardown),
            cmocka_unit_test_teardown(poison_record_is_dead_lettered, it_teardown),
            cmocka_unit_test_teardown(read_only_database_is_waited_out, it_teardown),
        };
        int rc = cmocka_run_group_tests(tests, NULL, NULL);
        curl_global_cleanup();
        return rc;
}
