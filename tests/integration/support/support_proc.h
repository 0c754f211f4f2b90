#ifndef RS_IT_SUPPORT_PROC_H
#define RS_IT_SUPPORT_PROC_H
/* Fixture of the processor tests: librdkafka's mock cluster in process (the
 * input and output topics, PARTS partitions each), a fresh database with one
 * program 'p' (fixed 500, referee 100, minimum 1000, USD) and codes ALICE234
 * (alice) and BOB23456 (bob), processors run on threads, and HTTP probes. */
#include "rs_codec.h"
#include "rs_processor.h"
#include "support.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>

#define PARTS 4
#define T0    INT64_C(1767225600000)

typedef struct fx {
        rd_kafka_t *host;            /* the mock cluster's (mock only) */
        rd_kafka_mock_cluster_t *mc; /* NULL with a real broker */
        const char *brokers;
        struct {
                char signups[96], payments[96], credited[96], reversed[96], dlq[96];
        } topics;
        char group[96];
        const char *url;
        rs_pg_t *pg;
        rs_codec_t *codec;
} fx_t;

extern fx_t it_fx;

/* The mock cluster, and (db not NULL) database db with the program. */
void it_fresh(const char *db);
/* Same with the stack's real broker (REFSTREAM_KAFKA_BROKERS) and topics and
 * group named for this run (created on first use). */
void it_fresh_real(const char *db);
/* Inserts the program and its codes into it_fx.pg (a migrated database). */
void it_program(void);
int it_teardown(void **state);
/* Test settings: mock brokers, db_url, short timeouts and intervals. */
void it_config(rs_config_t *cfg, const char *db_url);
void it_publish(const rs_config_t *cfg, const rs_event_t *evs, size_t n);
rs_event_t it_su(const char *id, const char *user, const char *code);
rs_event_t it_ch(const char *id, const char *user, int64_t amount);
/* n referees u<base>..: a sign-up with code and a qualifying charge each. */
void it_referees(const rs_config_t *cfg, int base, int n, const char *code);

typedef struct runner {
        rs_processor_t *p;
        volatile sig_atomic_t stop;
        int rc;
        pthread_t t;
} runner_t;

/* A processor on its own thread; it_finish stops it and returns its exit code. */
runner_t *it_start(const rs_config_t *cfg, const rs_processor_hooks_t *hooks);
int it_finish(runner_t *r);
/* Waits until the SQL count reaches want (or fails after 30 s). */
void it_await_count(long long want, const char *sql);

/* Every record of an output topic, counted by credit_id. */
typedef struct it_out {
        rs_map_t ids; /* credit_id -> count (as pointer) */
        long total;
        char header_event_type[64];
} it_out_t;
void it_read_topic(const char *topic, it_out_t *o);
void it_out_free(it_out_t *o);
long it_max_copies(const it_out_t *o);

long it_http_status(int port, const char *path);
void it_await_http(int port, const char *path, long want);
void it_http_body(int port, const char *path, char *out, size_t size);
/* The value of one series on /metrics, exactly as exposed, e.g.
 * "refstream_batch_retries_total{reason=\"unavailable\"}" (0 if absent). */
double it_metric(int port, const char *series);
/* Waits until that series reaches at least want (or fails after 30 s): proof
 * that something happened, where a sleep would only hope so. */
void it_await_metric(int port, const char *series, double want);

#endif
