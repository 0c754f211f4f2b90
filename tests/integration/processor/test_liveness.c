/* The processor never stalls silently and never gives up on a dependency
 * that is only late: start-up before Postgres or its schema, an outage that
 * meets rebalances, and a stall reported by /readyz. Real Postgres and Redis,
 * librdkafka's mock cluster in process. */
#include "rs_log.h"
#include "support_proc.h"

#include <curl/curl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define CREDITS "SELECT count(*) FROM rs_credits"

static void assert_ready_says(int port, const char *words)
{
        char body[2048] = "";
        for (int i = 0; i < 200 && !strstr(body, words); i++) {
                it_http_body(port, "/readyz", body, sizeof(body));
                if (!strstr(body, words))
                        rs_sleep_ms(100);
        }
        if (!strstr(body, words)) {
                char m[65536];
                it_http_body(port, "/metrics", m, sizeof(m));
                for (char *l = strtok(m, "\n"); l; l = strtok(NULL, "\n"))
                        if (strncmp(l, "refstream_", 10) == 0 && !strstr(l, "bucket"))
                                fprintf(stderr, "  %s\n", l);
                fail_msg("/readyz never said '%s'; last: %s", words, body);
        }
        assert_int_equal(it_http_status(port, "/readyz"), 503);
        assert_int_equal(it_http_status(port, "/healthz"), 200); /* alive: no restart */
}

/* Started while Postgres is unreachable: waits (healthy, not ready, saying
 * why) instead of exiting, and works once Postgres answers. */
static void starts_before_postgres(void **state)
{
        it_fresh("it_live_pgfirst");
        rs_it_proxy_t *px = rs_it_proxy_start(atoi(rs_it_env("RS_PG_PORT")));
        rs_it_proxy_cut(px, true);
        char via[256];
        snprintf(via, sizeof(via), "postgresql://refstream@127.0.0.1:%d/it_live_pgfirst",
                 rs_it_proxy_port(px));
        rs_config_t cfg;
        it_config(&cfg, via);
        it_referees(&cfg, 0, 5, "ALICE234");
        runner_t *r = it_start(&cfg, NULL);
        int port = rs_processor_http_port(r->p);
        assert_ready_says(port, "waiting for Postgres");
        rs_it_proxy_cut(px, false);
        it_await_count(10, CREDITS);
        it_await_http(port, "/readyz", 200);
        assert_int_equal(it_finish(r), 0);
        rs_it_proxy_stop(px);
        rs_config_free(&cfg);
}

/* Started on a database without the migrations (the migration job still
 * running): waits with a clear reason, and starts when they are applied. */
static void waits_for_migrations(void **state)
{
        it_fresh(NULL);
        it_fx.url = rs_it_empty_db("it_live_nomigr");
        it_fx.pg = rs_it_pg(it_fx.url);
        rs_config_t cfg;
        it_config(&cfg, it_fx.url);
        runner_t *r = it_start(&cfg, NULL);
        int port = rs_processor_http_port(r->p);
        assert_ready_says(port, "run `refstream migrate`");
        char err[512];
        assert_true(rs_pg_migrate(it_fx.pg, NULL, err, sizeof(err)));
        it_program();
        it_referees(&cfg, 0, 3, "ALICE234");
        it_await_count(6, CREDITS);
        assert_int_equal(it_finish(r), 0);
        rs_config_free(&cfg);
}

/* A migration edited after it was applied: `migrate` and the processor refuse,
 * naming the file, instead of running on a schema nobody wrote down. */
static void edited_migration_is_refused(void **state)
{
        it_fresh("it_live_edited");
        free(rs_it_sql(it_fx.pg, "UPDATE rs_schema_migrations SET checksum = 'edited'"
                                 " WHERE version = 1"));
        char err[1024];
        assert_false(rs_pg_migrate(it_fx.pg, NULL, err, sizeof(err)));
        assert_non_null(strstr(err, "sql/001_init.sql was changed"));
        rs_config_t cfg;
        it_config(&cfg, it_fx.url);
        runner_t *r = it_start(&cfg, NULL);
        pthread_join(r->t, NULL); /* returns by itself */
        assert_int_equal(r->rc, 1);
        rs_processor_destroy(r->p);
        free(r);
        rs_config_free(&cfg);
}

/* Partitions paused during a Postgres outage, revoked by a rebalance and
 * assigned again after the outage must be consumed: librdkafka keeps a
 * partition paused through revoke and re-assignment. */
static void outage_meets_rebalances(void **state)
{
        it_fresh("it_live_rebalance");
        rs_it_proxy_t *px = rs_it_proxy_start(atoi(rs_it_env("RS_PG_PORT")));
        char via[256];
        snprintf(via, sizeof(via),
                 "postgresql://refstream@127.0.0.1:%d/it_live_rebalance",
                 rs_it_proxy_port(px));
        rs_config_t cfg_a, cfg_b;
        it_config(&cfg_a, via);
        it_config(&cfg_b, it_fx.url);
        runner_t *a = it_start(&cfg_a, NULL);
        int port_a = rs_processor_http_port(a->p);
        it_await_http(port_a, "/readyz", 200); /* A owns every partition */

        rs_it_proxy_cut(px, true);
        it_referees(&cfg_a, 0, 40, "ALICE234");            /* all partitions */
        assert_ready_says(port_a, "postgres unavailable"); /* A pauses them all */

        runner_t *b = it_start(&cfg_b, NULL); /* takes half of them */
        it_await_http(rs_processor_http_port(b->p), "/readyz", 200);
        rs_it_proxy_cut(px, false); /* A resumes; A and B finish the 40 */
        it_await_count(80, CREDITS);
        assert_int_equal(it_finish(b), 0); /* A gets B's half back */

        it_referees(&cfg_a, 100, 40, "BOB23456");
        it_await_count(160, CREDITS);
        it_await_http(port_a, "/readyz", 200);
        assert_int_equal(it_finish(a), 0);
        rs_it_proxy_stop(px);
        rs_config_free(&cfg_a);
        rs_config_free(&cfg_b);
}

/* Offsets that stop being committed (here the group coordinator refuses
 * every commit) while nothing else moves: after the stall timeout /readyz
 * says so and refstream_stall_seconds grows; when commits work again the
 * stall clears. */
static void stall_is_reported(void **state)
{
        it_fresh("it_live_stall");
        rs_config_t cfg;
        it_config(&cfg, it_fx.url);
        char err[256];
        assert_true(rs_config_set(&cfg, "REFSTREAM_STALL_TIMEOUT_MS", "1000", "test", err,
                                  sizeof(err)));
        assert_true(rs_config_add_rdkafka(&cfg, "statistics.interval.ms=200", "test", err,
                                          sizeof(err)));
        assert_true(rs_config_add_rdkafka(&cfg, "auto.commit.interval.ms=200", "test",
                                          err, sizeof(err)));
        runner_t *r = it_start(&cfg, NULL);
        int port = rs_processor_http_port(r->p);
        it_referees(&cfg, 0, 5, "ALICE234");
        it_await_count(10, CREDITS);
        it_await_http(port, "/readyz", 200);

        /* OffsetCommit (API key 8) fails from now on. */
        rd_kafka_resp_err_t errs[1000];
        for (size_t i = 0; i < RS_ARRAY_SIZE(errs); i++)
                errs[i] = RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE;
        rd_kafka_mock_push_request_errors_array(it_fx.mc, 8, RS_ARRAY_SIZE(errs), errs);
        it_referees(&cfg, 100, 5, "ALICE234");
        it_await_count(20, CREDITS);
        assert_ready_says(port, "stalled: no progress");
        char metrics[65536];
        it_http_body(port, "/metrics", metrics, sizeof(metrics));
        const char *g = strstr(metrics, "\nrefstream_stall_seconds ");
        assert_non_null(g);
        assert_true(strtod(g + strlen("\nrefstream_stall_seconds "), NULL) >= 1.0);

        rd_kafka_mock_clear_request_errors(it_fx.mc, 8);
        it_await_http(port, "/readyz", 200);
        assert_int_equal(it_finish(r), 0);
        rs_config_free(&cfg);
}

int main(void)
{
        rs_log_set_level(getenv("RS_IT_LOG") ? RS_LOG_INFO : RS_LOG_ERROR);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_teardown(starts_before_postgres, it_teardown),
            cmocka_unit_test_teardown(waits_for_migrations, it_teardown),
            cmocka_unit_test_teardown(edited_migration_is_refused, it_teardown),
            cmocka_unit_test_teardown(outage_meets_rebalances, it_teardown),
            cmocka_unit_test_teardown(stall_is_reported, it_teardown),
        };
        int rc = cmocka_run_group_tests(tests, NULL, NULL);
        curl_global_cleanup();
        return rc;
}
