/* The fetcher's waker (consumer/processor/rs_waker.h), against librdkafka's
 * mock cluster (in process). */
#include "rs_util.h"
#include "rs_waker.h"

#include <librdkafka/rdkafka_mock.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#define RECORDS 400

static void set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
        char err[256];
        assert_int_equal(rd_kafka_conf_set(conf, name, value, err, sizeof(err)),
                         RD_KAFKA_CONF_OK);
}

static size_t queued(rd_kafka_t *rk)
{
        rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
        size_t n = rd_kafka_queue_length(q);
        rd_kafka_queue_destroy(q);
        return n;
}

/* A consumer whose prefetch queue reached its limit (16 KiB: 16 records of
 * 1 KiB) stops fetching; once the application has taken every queued record,
 * librdkafka 2.0.2 fetches again only when its broker thread next wakes,
 * after up to a second. Woken, it fetches at once: the next record comes
 * within the 500 ms poll. */
static void a_wake_resumes_a_full_fetcher(void **state)
{
        char err[256];
        rd_kafka_conf_t *pconf = rd_kafka_conf_new();
        set(pconf, "log_level", "3");
        rd_kafka_t *host = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof(err));
        assert_non_null(host);
        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(host, 1);
        const char *brokers = rd_kafka_mock_cluster_bootstraps(mc);
        assert_int_equal(rd_kafka_mock_topic_create(mc, "waker", 1, 1), 0);
        rd_kafka_conf_t *prodconf = rd_kafka_conf_new();
        set(prodconf, "bootstrap.servers", brokers);
        set(prodconf, "log_level", "3");
        set(prodconf, "batch.num.messages", "4"); /* fetched 4 KiB at a time */
        rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, prodconf, err, sizeof(err));
        assert_non_null(prod);
        static char payload[1024];
        memset(payload, 'x', sizeof(payload));
        for (int i = 0; i < RECORDS; i++)
                assert_int_equal(
                    rd_kafka_producev(prod, RD_KAFKA_V_TOPIC("waker"),
                                      RD_KAFKA_V_VALUE(payload, sizeof(payload)),
                                      RD_KAFKA_V_END),
                    0);
        assert_int_equal(rd_kafka_flush(prod, 10000), 0);
        rd_kafka_destroy(prod);

        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        set(conf, "bootstrap.servers", brokers);
        set(conf, "group.id", "waker");
        set(conf, "auto.offset.reset", "earliest");
        set(conf, "log_level", "3");
        set(conf, "queued.max.messages.kbytes", "16");
        set(conf, "message.max.bytes", "8192");
        set(conf, "fetch.max.bytes", "8192");
        set(conf, "max.partition.fetch.bytes", "8192");
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
        if (!rk)
                fail_msg("%s", err);
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(parts, "waker", 0)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
        assert_int_equal(rd_kafka_assign(rk, parts), 0);
        rs_waker_t *w = rs_waker_new(rk);
        assert_non_null(w);

        int consumed = 0;
        for (int round = 0; round < 3; round++) {
                /* Fill: wait for the first record, then for the queue to reach
                 * its limit, then take everything queued. */
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 10000);
                assert_non_null(m);
                assert_int_equal(m->err, 0);
                rd_kafka_message_destroy(m);
                consumed++;
                for (int i = 0; i < 200 && queued(rk) < 15; i++)
                        rs_sleep_ms(10);
                assert_true(queued(rk) >= 15);
                rs_sleep_ms(200); /* the responses under way arrive */
                while ((m = rd_kafka_consumer_poll(rk, 0)) != NULL) {
                        rd_kafka_message_destroy(m);
                        consumed++;
                }
                /* The previous round's request may still be under way. */
                bool woken = false;
                for (int i = 0; i < 300 && !(woken = rs_waker_wake(w, parts)); i++)
                        rs_sleep_ms(10);
                assert_true(woken);
                m = rd_kafka_consumer_poll(rk, 500);
                assert_non_null(m);
                rd_kafka_message_destroy(m);
                consumed++;
        }
        assert_true(consumed < RECORDS);

        rs_waker_destroy(w);
        rs_waker_destroy(NULL);
        rd_kafka_topic_partition_list_destroy(parts);
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(host);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(a_wake_resumes_a_full_fetcher),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
