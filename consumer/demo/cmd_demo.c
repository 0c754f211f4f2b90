/* refstream demo: the embedded default. Starts librdkafka's mock cluster in
 * process and a throw-away Postgres and Redis, creates a program and codes,
 * publishes sample traffic (valid, invalid and malformed), runs the processor
 * and prints the credits, reversals, dead letters and stats. */
#include "rs_admin.h"
#include "rs_cli.h"
#include "rs_demo.h"
#include "rs_kafka.h"
#include "rs_localstack.h"
#include "rs_log.h"
#include "rs_processor.h"
#include "rs_publisher.h"
#include "rs_signal.h"

#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* One partition per topic keeps the demo's story in publication order (with
 * several, which of two racing sign-ups gets a code's last use varies). */
#define PARTITIONS 1

enum { O_KEEP, O_VERBOSE };
static const rs_cli_opt_t opts[] = {
    [O_KEEP] = {"keep", false, NULL, "keep the temp directory (Postgres and Redis logs)"},
    [O_VERBOSE] = {"verbose", false, NULL, "show the processor's log"},
};

typedef struct demo {
        bool keep, verbose;
        rs_config_t cfg;
        rs_localstack_t stack;
        rd_kafka_t *mock_rk; /* hosts the mock cluster */
        rd_kafka_mock_cluster_t *mock;
        rs_codec_t *codec;
        rs_pg_t *pg;
        rs_cache_t *cache;
        rs_admin_t admin;
        char alice[RS_CODE_MAX_LEN + 1], carol[RS_CODE_MAX_LEN + 1];
        char victor[RS_CODE_MAX_LEN + 1]; /* in the program with a hold */
        int64_t t0;                       /* sign-ups happen at t0 */
        atomic_long processed;
        long phase1;
        pthread_t traffic;
        bool traffic_ok;
} demo_t;

static bool on_opt(void *ctx, int idx, const char *arg, char *errstr, size_t errstr_size)
{
        demo_t *d = ctx;
        if (idx == O_KEEP)
                d->keep = true;
        else
                d->verbose = true;
        return true;
}

/* ---------------------------------------------------------------- set-up */

static bool start_mock(demo_t *d, char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        char err[512];
        /* The host handle has no brokers of its own; its notice says so. */
        rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err));
        d->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
        if (!d->mock_rk) {
                rd_kafka_conf_destroy(conf);
                snprintf(errstr, errstr_size, "mock cluster: %s", err);
                return false;
        }
        rd_kafka_mock_cluster_t *mc = d->mock = rd_kafka_mock_cluster_new(d->mock_rk, 1);
        if (!mc) {
                snprintf(errstr, errstr_size, "cannot create the mock cluster");
                return false;
        }
        const char *topics[] = {d->cfg.topic_signups, d->cfg.topic_payments,
                                d->cfg.topic_credited, d->cfg.topic_reversed,
                                d->cfg.topic_dlq};
        for (size_t i = 0; i < RS_ARRAY_SIZE(topics); i++)
                rd_kafka_mock_topic_create(mc, topics[i], PARTITIONS, 1);
        return rs_config_set(&d->cfg, "REFSTREAM_KAFKA_BROKERS",
                             rd_kafka_mock_cluster_bootstraps(mc), "demo", errstr,
                             errstr_size);
}

static bool configure(demo_t *d, char *errstr, size_t errstr_size)
{
        static const char *settings[][2] = {
            {"REFSTREAM_HTTP_ADDR", "127.0.0.1:0"},
            {"REFSTREAM_BATCH_LINGER_MS", "20"},
            {"REFSTREAM_GROUP_ID", "refstream-demo"},
            /* The housekeeping (and the release of held credits) often. */
            {"REFSTREAM_OUTBOX_SWEEP_INTERVAL_MS", "500"},
        };
        bool ok = rs_config_set(&d->cfg, "REFSTREAM_DATABASE_URL", d->stack.database_url,
                                "demo", errstr, errstr_size) &&
                  rs_config_set(&d->cfg, "REFSTREAM_REDIS_URL", d->stack.redis_url,
                                "demo", errstr, errstr_size);
        for (size_t i = 0; ok && i < RS_ARRAY_SIZE(settings); i++)
                ok = rs_config_set(&d->cfg, settings[i][0], settings[i][1], "demo",
                                   errstr, errstr_size);
        return ok;
}

static rs_admin_i64_t set(int64_t v)
{
        return (rs_admin_i64_t){.state = RS_ADMIN_SET, .v = v};
}

static bool create_program(demo_t *d, char *errstr, size_t errstr_size)
{
        rs_admin_program_t p = {.name = "Demo: give 5, get 2.50",
                                .currency = "USD",
                                .reward_fixed = set(500),
                                .referee_reward = set(250),
                                .min_payment = set(1000),
                                .window_days = set(30),
                                .goal = set(2)};
        char bob[RS_CODE_MAX_LEN + 1];
        rs_admin_code_limits_t none = {0}, twice = {.max_uses = set(2)};
        bool changed;
        char status[16];
        bool ok = rs_pg_migrate(d->pg, NULL, errstr, errstr_size) &&
                  rs_admin_program_create(&d->admin, "demo", &p, errstr, errstr_size) &&
                  rs_admin_code_issue(&d->admin, "demo", "alice", NULL, &none, d->alice,
                                      errstr, errstr_size) &&
                  rs_admin_code_issue(&d->admin, "demo", "bob", "bobfriends", &twice, bob,
                                      errstr, errstr_size) &&
                  rs_admin_code_issue(&d->admin, "demo", "carol", NULL, &none, d->carol,
                                      errstr, errstr_size) &&
                  rs_admin_code_set_status(&d->admin, d->carol, RS_ADMIN_REVOKE, &changed,
                                           status, sizeof(status), errstr, errstr_size);
        rs_admin_program_t h = {.name = "Demo: 10 after a 2-day refund window",
                                .currency = "USD",
                                .reward_fixed = set(1000),
                                .hold_days = set(2)};
        ok = ok && rs_admin_program_create(&d->admin, "held", &h, errstr, errstr_size) &&
             rs_admin_code_issue(&d->admin, "held", "victor", NULL, &none, d->victor,
                                 errstr, errstr_size);
        if (ok)
                printf(
                    "program demo: USD, 500 to the referrer and 250 to the referee per "
                    "referral,\n  minimum payment 1000, window 30 days, goal 2 "
                    "referrals\n"
                    "codes: alice %s, bob %s (at most 2 uses), carol %s (revoked)\n"
                    "program held: USD, 1000 to the referrer, held 2 days after the "
                    "qualifying charge;\n  code: victor %s\n\n",
                    d->alice, bob, d->carol, d->victor);
        return ok;
}

/* ---------------------------------------------------------------- traffic */

typedef struct sender {
        demo_t *d;
        rs_publisher_t *avro, *json;
        long sent;
        bool ok;
} sender_t;

static void signup(sender_t *s, bool json, const char *id, const char *user,
                   const char *code, const char *hash)
{
        char err[512];
        rs_event_t ev = {.type = RS_EV_SIGNUP,
                         .event_id = id,
                         .occurred_at_ms = s->d->t0,
                         .user_id = user,
                         .referral_code = code,
                         .email_hash = hash};
        s->ok = s->ok &&
                rs_publisher_send(json ? s->json : s->avro, &ev, NULL, err, sizeof(err));
        s->sent++;
}

/* A charge of 2000 USD at `at`, paid with the card fp. */
static void card_charge(sender_t *s, const char *id, const char *user, const char *fp,
                        int64_t at)
{
        char err[512];
        rs_event_t ev = {.type = RS_EV_PAYMENT,
                         .event_id = id,
                         .occurred_at_ms = at,
                         .user_id = user,
                         .payment_id = id,
                         .amount_minor = 2000,
                         .currency = "USD",
                         .kind = RS_PAY_CHARGE,
                         .payment_fingerprint = fp};
        s->ok = s->ok && rs_publisher_send(s->avro, &ev, NULL, err, sizeof(err));
        s->sent++;
}

static void payment(sender_t *s, const char *id, const char *user, const char *pid,
                    int64_t amount, const char *cur, const char *refund_of)
{
        char err[512];
        rs_event_t ev = {.type = RS_EV_PAYMENT,
                         .event_id = id,
                         .occurred_at_ms = s->d->t0 + RS_DAY_MS,
                         .user_id = user,
                         .payment_id = pid,
                         .amount_minor = amount,
                         .kind = refund_of ? RS_PAY_REFUND : RS_PAY_CHARGE,
                         .refund_of = refund_of};
        if (refund_of)
                ev.occurred_at_ms += RS_DAY_MS;
        rs_strlcpy(ev.currency, cur, sizeof(ev.currency));
        s->ok = s->ok && rs_publisher_send(s->avro, &ev, NULL, err, sizeof(err));
        s->sent++;
}

/* Records no decoder accepts, sent raw. */
static void malformed(sender_t *s)
{
        char err[512];
        rd_kafka_t *rk = rs_kafka_new(RD_KAFKA_PRODUCER,
                                      rs_kafka_conf(&s->d->cfg, NULL, err, sizeof(err)),
                                      err, sizeof(err));
        if (!rk) {
                s->ok = false;
                return;
        }
        static const char avro_unknown_id[] = "\x00\x00\x00\x00\x63\x02\x61";
        const struct {
                const char *topic, *key, *value;
                size_t len;
        } bad[] = {
            {s->d->cfg.topic_signups, "zoe", "\xde\xad\xbe\xef garbage", 13},
            {s->d->cfg.topic_payments, "zoe", "{\"event_id\":\"x1\",\"amount_minor\":5}",
             34},
            {s->d->cfg.topic_signups, "zoe", avro_unknown_id,
             sizeof(avro_unknown_id) - 1},
        };
        for (size_t i = 0; i < RS_ARRAY_SIZE(bad); i++) {
                rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(bad[i].topic),
                                  RD_KAFKA_V_KEY(bad[i].key, strlen(bad[i].key)),
                                  RD_KAFKA_V_VALUE((void *)bad[i].value, bad[i].len),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_END);
                s->sent++;
        }
        s->ok = s->ok && rd_kafka_flush(rk, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR;
        rd_kafka_destroy(rk);
}

static void phase1(sender_t *s)
{
        const char *a = s->d->alice;
        signup(s, false, "su-alice", "alice", NULL, "h-alice");
        signup(s, false, "su-dave", "dave", a, "h-dave");
        signup(s, true, "su-erin", "erin", "  ",
               "h-erin"); /* blank: no referral intent */
        signup(s, true, "su-erin-2", "erin", NULL, NULL);
        signup(s, false, "su-frank", "frank", "BobFriends", NULL); /* case-insensitive */
        signup(s, false, "su-grace", "grace", "bobfriends", NULL);
        signup(s, false, "su-heidi", "heidi", "BOBFRIENDS", NULL); /* used up */
        signup(s, true, "su-ivan", "ivan", "NOPE2345", NULL);
        signup(s, false, "su-judy", "judy", s->d->carol, NULL);  /* revoked */
        signup(s, false, "su-mallory", "mallory", a, "h-alice"); /* alice's e-mail */
        signup(s, false, "su-dave", "dave", a, "h-dave"); /* a duplicate delivery */
        signup(s, false, "su-peggy", "peggy", a, "h-peggy");
        payment(s, "pay-oscar-1", "oscar", "p-oscar", 2500, "USD",
                NULL); /* before sign-up */
        /* The program with a hold: victor pays with his card; three referees. */
        const char *v = s->d->victor;
        card_charge(s, "pay-victor-1", "victor", "card-victor", s->d->t0);
        signup(s, false, "su-wendy", "wendy", v, NULL);
        signup(s, false, "su-xena", "xena", v, NULL);
        signup(s, false, "su-yann", "yann", v, NULL);
        malformed(s);
}

static void phase2(sender_t *s)
{
        signup(s, false, "su-oscar", "oscar", s->d->alice, "h-oscar");
        payment(s, "pay-dave-1", "dave", "p-dave", 2000, "USD", NULL);
        payment(s, "pay-peggy-1", "peggy", "p-peggy-small", 500, "USD",
                NULL);                                                    /* below min */
        payment(s, "pay-frank-1", "frank", "p-frank", 3000, "EUR", NULL); /* currency */
        payment(s, "pay-grace-1", "grace", "p-grace", 1200, "USD", NULL);
        payment(s, "pay-dave-2", "dave", "r-dave", 2000, "USD", "p-dave"); /* refund */
        /* wendy paid 2 days ago: her hold is over, the housekeeping releases
         * it; xena paid today: held 2 more days; yann paid with victor's
         * card: rejected. */
        card_charge(s, "pay-wendy-1", "wendy", "card-wendy", s->d->t0 + RS_DAY_MS);
        card_charge(s, "pay-xena-1", "xena", "card-xena", s->d->t0 + 3 * RS_DAY_MS);
        card_charge(s, "pay-yann-1", "yann", "card-victor", s->d->t0 + RS_DAY_MS);
}

static bool flush(sender_t *s)
{
        return rs_publisher_finish(s->avro, 30000) == 0 &&
               rs_publisher_finish(s->json, 30000) == 0;
}

/* Publishes phase 1, waits until the processor has seen all of it, then
 * publishes phase 2 (so sign-ups precede their payments, except oscar's). */
static void *traffic(void *arg)
{
        demo_t *d = arg;
        char err[512];
        sender_t s = {.d = d, .ok = true};
        s.avro = rs_publisher_new(&d->cfg, d->codec, false, err, sizeof(err));
        s.json = rs_publisher_new(&d->cfg, d->codec, true, err, sizeof(err));
        if (s.avro && s.json) {
                phase1(&s);
                s.ok = s.ok && flush(&s);
                long want = s.sent;
                for (int i = 0; i < 600 && atomic_load(&d->processed) < want && !rs_stop;
                     i++)
                        rs_sleep_ms(50);
                phase2(&s);
                s.ok = s.ok && flush(&s);
                printf("published %ld records: sign-ups and payments as Avro and JSON, 3 "
                       "malformed\n\n",
                       s.sent);
        }
        rs_publisher_destroy(s.avro);
        rs_publisher_destroy(s.json);
        d->traffic_ok = s.ok && s.avro && s.json;
        return NULL;
}

static void after_batch(void *opaque, const rs_batch_t *b)
{
        demo_t *d = opaque;
        atomic_fetch_add(&d->processed, (long)b->n);
}

/* ---------------------------------------------------------------- output */

static const char *header(const rd_kafka_message_t *m, const char *name, char *buf,
                          size_t size)
{
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t len;
        if (rd_kafka_message_headers(m, &h) ||
            rd_kafka_header_get_last(h, name, &v, &len))
                return "";
        snprintf(buf, size, "%.*s", (int)len, (const char *)v);
        return buf;
}

/* One readable line per output record (the full record is Avro; `kcat` with
 * the schemas shows all fields). */
static void show_event(const char *json)
{
        json_t *e = json_loads(json, 0, NULL);
        if (!e)
                return;
        const char *credit = json_string_value(json_object_get(e, "credit_id"));
        const char *who = json_string_value(json_object_get(e, "beneficiary_user_id"));
        long long amount = json_integer_value(json_object_get(e, "amount_minor"));
        const char *cur = json_string_value(json_object_get(e, "currency"));
        json_t *role = json_object_get(e, "role");
        if (role) {
                printf("  %.8s  %-6s +%-5lld %s  %-8s referee %-6s code %-10s  %lld of "
                       "%lld%s\n",
                       credit, who, amount, cur, json_string_value(role),
                       json_string_value(json_object_get(e, "referee_user_id")),
                       json_string_value(json_object_get(e, "code")),
                       json_integer_value(json_object_get(e, "referrer_rewarded_count")),
                       json_integer_value(json_object_get(e, "referral_goal")),
                       json_is_true(json_object_get(e, "goal_reached"))
                           ? "  goal reached!"
                           : "");
        } else {
                printf("  %.8s  %-6s -%-5lld %s  %s by %s\n", credit, who, amount, cur,
                       json_string_value(json_object_get(e, "reason")),
                       json_string_value(json_object_get(e, "source_event_id")));
        }
        json_decref(e);
}

static void show(const rd_kafka_message_t *m, demo_t *d, bool dlq)
{
        char err[256], topic[128], part[16], off[24], cls[64], msg[256];
        rs_buf_t j;
        rs_buf_init(&j);
        if (dlq)
                printf("  %s[%s]@%s  %s: %s\n",
                       header(m, "source_topic", topic, sizeof(topic)),
                       header(m, "source_partition", part, sizeof(part)),
                       header(m, "source_offset", off, sizeof(off)),
                       header(m, "error_class", cls, sizeof(cls)),
                       header(m, "error_message", msg, sizeof(msg)));
        else if (rs_codec_output_to_json(d->codec, m->payload, m->len, &j, err,
                                         sizeof(err)))
                show_event(j.data);
        rs_buf_free(&j);
}

/* Reads every record of a topic from the beginning. */
static int dump_topic(demo_t *d, const char *topic, bool dlq)
{
        char err[512];
        const char *reader[] = {"group.id", "refstream-demo-reader", "enable.auto.commit",
                                "false", NULL};
        rd_kafka_t *rk = rs_kafka_new(RD_KAFKA_CONSUMER,
                                      rs_kafka_conf(&d->cfg, reader, err, sizeof(err)),
                                      err, sizeof(err));
        if (!rk)
                return 0;
        rd_kafka_poll_set_consumer(rk);
        rd_kafka_topic_partition_list_t *parts =
            rd_kafka_topic_partition_list_new(PARTITIONS);
        for (int p = 0; p < PARTITIONS; p++)
                rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
                    RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(rk, parts);
        rd_kafka_topic_partition_list_destroy(parts);
        int n = 0, idle = 0;
        while (idle < 10) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                if (!m || m->err) {
                        idle++;
                } else {
                        idle = 0;
                        n++;
                        show(m, d, dlq);
                }
                if (m)
                        rd_kafka_message_destroy(m);
        }
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
        return n;
}

static void report(demo_t *d, const rs_batch_stats_t *t)
{
        char err[512];
        printf("ReferralCredited on %s:\n", d->cfg.topic_credited);
        dump_topic(d, d->cfg.topic_credited, false);
        printf("\nReferralCreditReversed on %s:\n", d->cfg.topic_reversed);
        dump_topic(d, d->cfg.topic_reversed, false);
        printf("\nDead letters on %s (original bytes, reason in headers):\n",
               d->cfg.topic_dlq);
        dump_topic(d, d->cfg.topic_dlq, true);
        printf("\nprocessed: %llu sign-ups, %llu payments, %llu duplicates, %llu dead "
               "letters; "
               "%llu referrals, %llu + %llu credits, %llu reversals\n",
               (unsigned long long)t->signups, (unsigned long long)t->payments,
               (unsigned long long)t->duplicates, (unsigned long long)t->dlq,
               (unsigned long long)t->referrals,
               (unsigned long long)t->credits[RS_ROLE_REFERRER],
               (unsigned long long)t->credits[RS_ROLE_REFEREE],
               (unsigned long long)t->reversals);
        printf("rejections by reason:");
        for (int r = 0; r < RS_REJ__COUNT; r++)
                if (t->rejections[r])
                        printf(" %s %llu", rs_reason_name(r),
                               (unsigned long long)t->rejections[r]);
        printf("\n\n");
        json_t *stats = rs_admin_stats_program(&d->admin, "demo", err, sizeof(err));
        if (stats) {
                rs_admin_print_stats_program(stdout, stats);
                json_decref(stats);
        }
        json_t *user = rs_admin_stats_user(&d->admin, "alice", err, sizeof(err));
        if (user) {
                printf("\n");
                rs_admin_print_stats_user(stdout, user);
                json_decref(user);
        }
        printf("\nThe program with a hold (%llu held referral released and published "
               "above;\n'refstream admin referrals release|cancel ID' acts on one at "
               "once):\n",
               (unsigned long long)t->released);
        if ((stats = rs_admin_stats_program(&d->admin, "held", err, sizeof(err)))) {
                rs_admin_print_stats_program(stdout, stats);
                json_decref(stats);
        }
}

/* ---------------------------------------------------------------- main */

static int run_demo(demo_t *d)
{
        char err[1024];
        int64_t started = rs_monotonic_ms();
        printf("refstream demo: starting Postgres, Redis and an in-process Kafka mock "
               "cluster...\n");
        fflush(stdout);
        if (!rs_localstack_start(&d->stack, err, sizeof(err)) ||
            !configure(d, err, sizeof(err)) || !start_mock(d, err, sizeof(err)))
                goto fail;
        d->t0 = rs_now_ms() - 3 * RS_DAY_MS;
        d->pg = rs_pg_new(d->cfg.database_url, d->cfg.pg_statement_timeout_ms);
        d->cache =
            rs_cache_new(d->cfg.redis_url, d->cfg.cache_ttl_ms, 0, 500, err, sizeof(err));
        d->codec = rs_codec_new(err, sizeof(err));
        d->admin = (rs_admin_t){
            .pg = d->pg, .cache = d->cache, .cache_ttl_ms = d->cfg.cache_ttl_ms};
        if (!d->cache || !d->codec || !rs_pg_connect(d->pg, err, sizeof(err)) ||
            !create_program(d, err, sizeof(err)))
                goto fail;
        rs_processor_hooks_t hooks = {.opaque = d, .after_batch = after_batch};
        rs_processor_t *p = rs_processor_new(&d->cfg, &hooks, err, sizeof(err));
        if (!p)
                goto fail;
        pthread_create(&d->traffic, NULL, traffic, d);
        int rc = rs_processor_run(p, &rs_stop, 3000);
        pthread_join(d->traffic, NULL);
        rs_batch_stats_t totals = *rs_processor_totals(p);
        rs_processor_destroy(p);
        if (rc != 0 || !d->traffic_ok) {
                snprintf(err, sizeof(err),
                         "the processor or the traffic generator failed");
                goto fail;
        }
        report(d, &totals);
        printf("\ndone in %.1f s\n", (double)(rs_monotonic_ms() - started) / 1000.0);
        return RS_EXIT_OK;
fail:
        fprintf(stderr, "refstream demo: %s\n", err);
        return RS_EXIT_FAILURE;
}

int rs_cmd_demo(int argc, char **argv)
{
        demo_t *d = rs_calloc(1, sizeof(*d));
        const rs_cli_t cli = {
            .command = "refstream demo",
            .usage =
                "refstream demo [--keep] [--verbose]\n\n"
                "Runs everything on a throw-away local stack: librdkafka's mock "
                "cluster in process,\nPostgres and Redis in a temp directory (Debian "
                "packages postgresql and redis-server).\nCreates a program and codes, "
                "publishes sample traffic, runs the processor, prints the\ncredits, "
                "reversals, dead letters and stats, and cleans up.",
            .opts = opts,
            .nopts = RS_ARRAY_SIZE(opts),
            .handler = on_opt,
            .ctx = d,
        };
        int rc = rs_cli_config_only(&cli, argc, argv, &d->cfg);
        if (rc < 0) {
                rs_log_set_level(d->verbose ? RS_LOG_INFO : RS_LOG_ERROR);
                rs_signal_install();
                rc = run_demo(d);
        }
        rs_pg_destroy(d->pg);
        rs_cache_destroy(d->cache);
        rs_codec_destroy(d->codec);
        if (d->mock)
                rd_kafka_mock_cluster_destroy(d->mock);
        if (d->mock_rk)
                rd_kafka_destroy(d->mock_rk);
        rs_localstack_stop(&d->stack, d->keep);
        if (d->keep && d->stack.dir[0])
                printf("kept %s\n", d->stack.dir);
        rs_config_free(&d->cfg);
        free(d);
        return rc;
}
