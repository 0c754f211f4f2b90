/* The batch transaction against real Postgres and Redis: idempotency, dead
 * letters, the cache, and rules that must hold across concurrent instances. */
#include "rs_batch.h"
#include "rs_ids.h"
#include "rs_log.h"
#include "support.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define T0 "1767225600000" /* 2026-01-01T00:00:00Z */

typedef struct fx {
        const char *url;
        rs_pg_t *pg; /* for assertions and setup */
        rs_codec_t *codec;
        rs_cache_t *cache;
        rs_batch_env_t env;
} fx_t;

static fx_t fx;

static void seed_program(rs_pg_t *pg, const char *extra_code_sql)
{
        free(rs_it_sql(
            pg, "INSERT INTO rs_programs (key, name, currency, reward_kind,"
                " reward_value, referee_reward, min_payment, referral_goal)"
                " VALUES ('default', 'Default', 'USD', 'fixed', 500, 200, 1000, 2)"));
        free(rs_it_sql(pg, "INSERT INTO rs_codes (code, program_id, owner_user_id)"
                           " VALUES ('ALICE234', 1, 'alice')"));
        if (extra_code_sql)
                free(rs_it_sql(pg, extra_code_sql));
}

static int setup(void **state)
{
        char err[512];
        fx.url = rs_it_fresh_db("it_batch");
        fx.pg = rs_it_pg(fx.url);
        fx.codec = rs_codec_new(err, sizeof(err));
        assert_non_null(fx.codec);
        rs_it_redis_flush();
        fx.cache = rs_cache_new(rs_it_env("REFSTREAM_REDIS_URL"), 60000, 5000, 500, err,
                                sizeof(err));
        assert_non_null(fx.cache);
        fx.env = (rs_batch_env_t){.pg = rs_it_pg(fx.url),
                                  .cache = fx.cache,
                                  .codec = fx.codec,
                                  .outbox_lease_ms = 30000};
        /* One single-use code per race round (see last_use_has_one_winner). */
        seed_program(fx.pg,
                     "INSERT INTO rs_codes (code, program_id, owner_user_id, max_uses)"
                     " SELECT 'LAST' || lpad(g::text, 4, '0'), 1, 'zed', 1"
                     " FROM generate_series(1, 100) g");
        return 0;
}

static int teardown(void **state)
{
        rs_pg_destroy(fx.env.pg);
        rs_pg_destroy(fx.pg);
        rs_cache_destroy(fx.cache);
        rs_codec_destroy(fx.codec);
        return 0;
}

/* Adds a JSON record; strings live in the batch arena. */
static void add_with(rs_batch_t *b, rs_codec_t *codec, rs_event_type_t type,
                     int64_t offset, const char *json)
{
        char *copy = rs_arena_strdup(&b->arena, json);
        rs_batch_add(b, codec, type, type == RS_EV_SIGNUP ? "signups" : "payments", 0,
                     offset, NULL, 0, copy, strlen(copy), NULL);
}

/* The racers below are separate "instances": each has its own codec. */
static __thread rs_codec_t *thread_codec;

static void add(rs_batch_t *b, rs_event_type_t type, int64_t offset, const char *json)
{
        add_with(b, thread_codec ? thread_codec : fx.codec, type, offset, json);
}

static void signup(rs_batch_t *b, int64_t off, const char *id, const char *user,
                   const char *code)
{
        char j[512];
        snprintf(j, sizeof(j),
                 "{\"event_id\":\"%s\",\"occurred_at\":" T0 ",\"user_id\":\"%s\""
                 ",\"referral_code\":\"%s\"}",
                 id, user, code);
        add(b, RS_EV_SIGNUP, off, j);
}

static void charge(rs_batch_t *b, int64_t off, const char *id, const char *user,
                   int amount)
{
        char j[512];
        snprintf(j, sizeof(j),
                 "{\"event_id\":\"%s\",\"occurred_at\":\"2026-01-02T00:00:00Z\",\"user_"
                 "id\":\"%s\""
                 ",\"payment_id\":\"pay-%s\",\"amount_minor\":%d,\"currency\":\"USD\","
                 "\"kind\":\"CHARGE\"}",
                 id, user, id, amount);
        add(b, RS_EV_PAYMENT, off, j);
}

static void plain_signup(rs_batch_t *b, int64_t off, const char *id, const char *user)
{
        char j[512];
        snprintf(j, sizeof(j),
                 "{\"event_id\":\"%s\",\"occurred_at\":" T0 ",\"user_id\":\"%s\"}", id,
                 user);
        add(b, RS_EV_SIGNUP, off, j);
}

static void run_ok(rs_batch_env_t *env, rs_batch_t *b)
{
        char err[1024];
        if (!rs_batch_run(env, b, err, sizeof(err)))
                fail_msg("batch failed: %s", err);
}

static void same_batch_twice_has_one_effect(void **state)
{
        rs_batch_t b;
        rs_batch_init(&b);
        for (int round = 0; round < 2; round++) {
                rs_batch_reset(&b);
                signup(&b, 0, "e-s1", "bob", "alice234");
                charge(&b, 1, "e-p1", "bob", 1500);
                add(&b, RS_EV_SIGNUP, 2, "not json at all");
                run_ok(&fx.env, &b);
                if (round == 0) {
                        assert_int_equal(b.stats.signups, 1);
                        assert_int_equal(b.stats.credits[RS_ROLE_REFERRER], 1);
                        assert_int_equal(b.stats.credits[RS_ROLE_REFEREE], 1);
                        assert_int_equal(b.stats.dlq, 1);
                        assert_int_equal(b.n_out, 3); /* two credits + one dead letter */
                        for (size_t i = 0; i < b.n_out; i++)
                                assert_true(b.out[i].outbox_id > 0);
                } else {
                        assert_int_equal(b.stats.duplicates, 3);
                        assert_int_equal(b.n_out, 0);
                }
        }
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_referrals"), 1);
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_credits"), 2);
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_outbox"), 3);
        assert_int_equal(rs_it_count(fx.pg, "SELECT uses_count FROM rs_codes"
                                            " WHERE code = 'ALICE234'"),
                         1);
        assert_int_equal(rs_it_count(fx.pg,
                                     "SELECT count(*) FROM rs_outbox WHERE destination"
                                     " = 'dlq' AND error_class = 'bad_framing'"),
                         1);
        rs_batch_free(&b);
}

static void duplicate_inside_one_batch(void **state)
{
        rs_batch_t b;
        rs_batch_init(&b);
        signup(&b, 10, "e-dup", "carol", "ALICE234");
        signup(&b, 11, "e-dup", "carol", "ALICE234");
        run_ok(&fx.env, &b);
        assert_int_equal(b.stats.signups, 1);
        assert_int_equal(b.stats.duplicates, 1);
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_referrals WHERE"
                                            " referee_user_id = 'carol'"),
                         1);
        rs_batch_free(&b);
}

static void cache_is_filled_and_used(void **state)
{
        rs_batch_t b;
        rs_batch_init(&b);
        signup(&b, 20, "e-c1", "dan", "ALICE234");
        signup(&b, 21, "e-c2", "eve", "UNKNOWN9");
        run_ok(&fx.env, &b);
        rs_batch_reset(&b);
        signup(&b, 22, "e-c3", "fay", "ALICE234");
        signup(&b, 23, "e-c4", "gus", "UNKNOWN9");
        run_ok(&fx.env, &b);
        assert_int_equal(b.stats.cache_hits, 1);     /* ALICE234 */
        assert_int_equal(b.stats.cache_negative, 1); /* UNKNOWN9 */
        assert_int_equal(b.stats.rejections[RS_REJ_UNKNOWN_CODE], 1);
        rs_batch_free(&b);
}

static void redis_down_falls_back_to_postgres(void **state)
{
        char err[256];
        rs_batch_env_t env = fx.env;
        env.cache =
            rs_cache_new("redis://127.0.0.1:1/0", 60000, 5000, 100, err, sizeof(err));
        rs_batch_t b;
        rs_batch_init(&b);
        signup(&b, 30, "e-r1", "hal", "ALICE234");
        run_ok(&env, &b);
        assert_int_equal(b.stats.referrals, 1);
        assert_true(b.stats.cache_errors > 0);
        rs_cache_destroy(env.cache);
        rs_batch_free(&b);
}

/* A "no such code" entry left in Redis (e.g. written just before the code was
 * created) must not decide the outcome: the transaction reads the code. */
static void stale_negative_cache_entry_is_not_trusted(void **state)
{
        free(rs_it_sql(fx.pg, "INSERT INTO rs_codes (code, program_id, owner_user_id)"
                              " VALUES ('LATECODE', 1, 'alice')"));
        rs_cache_entry_t neg = {.code = "LATECODE", .state = RS_CACHE_NEGATIVE};
        assert_true(rs_cache_put(fx.cache, &neg, 1));
        rs_batch_t b;
        rs_batch_init(&b);
        signup(&b, 40, "e-late", "ivy", "LATECODE");
        run_ok(&fx.env, &b);
        assert_int_equal(b.stats.referrals, 1);
        assert_int_equal(b.stats.rejections[RS_REJ_UNKNOWN_CODE], 0);
        rs_batch_free(&b);
}

/* An unknown code of long non-ASCII text is kept (truncated) in the rejection
 * without splitting a UTF-8 character, which Postgres would refuse. */
static void long_non_ascii_code_is_rejected_not_refused(void **state)
{
        char code[128] = "x";
        for (int i = 0; i < 40; i++)
                strcat(code, "\xc3\xa9"); /* é */
        rs_batch_t b;
        rs_batch_init(&b);
        signup(&b, 41, "e-utf8", "jon", code);
        run_ok(&fx.env, &b);
        assert_int_equal(b.stats.rejections[RS_REJ_UNKNOWN_CODE], 1);
        assert_int_equal(rs_it_count(fx.pg, "SELECT octet_length(code) FROM rs_rejections"
                                            " WHERE event_id = 'e-utf8'"),
                         63); /* "X" + 31 two-byte characters, not 64 bytes */
        rs_batch_free(&b);
}

/* A topic deleted and recreated starts again at offset 0: a new malformed
 * record at an old offset is a new dead letter, not a duplicate. */
static void dead_letters_of_a_recreated_topic(void **state)
{
        rs_batch_t b;
        rs_batch_init(&b);
        add(&b, RS_EV_SIGNUP, 7, "garbage one");
        run_ok(&fx.env, &b);
        assert_int_equal(b.stats.dlq, 1);
        rs_batch_reset(&b);
        add(&b, RS_EV_SIGNUP, 7, "garbage two"); /* same topic, partition, offset */
        add(&b, RS_EV_SIGNUP, 7, "garbage two"); /* and its replay */
        run_ok(&fx.env, &b);
        assert_int_equal(b.stats.dlq, 1);
        assert_int_equal(b.stats.duplicates, 1);
        rs_batch_free(&b);
}

/* ---------------------------------------------------------------- races */

static pthread_barrier_t round_start;

typedef struct racer {
        rs_batch_env_t env;
        int id;
        int rounds;
        const char *kind; /* "lastuse" | "signup-vs-pay" */
} racer_t;

static void *race(void *arg)
{
        racer_t *r = arg;
        rs_batch_t b;
        rs_batch_init(&b);
        thread_codec = r->env.codec;
        char id[64], user[64];
        for (int k = 0; k < r->rounds; k++) {
                rs_batch_reset(&b);
                if (strcmp(r->kind, "lastuse") == 0) {
                        /* Different referees, same code with one use left. */
                        char code[16];
                        snprintf(code, sizeof(code), "LAST%04d", k + 1);
                        snprintf(id, sizeof(id), "race-%d-%d", r->id, k);
                        snprintf(user, sizeof(user), "racer-%d-%d", r->id, k);
                        signup(&b, k, id, user, code);
                } else if (r->id == 0) {
                        snprintf(id, sizeof(id), "svp-s-%d", k);
                        snprintf(user, sizeof(user), "svp-%d", k);
                        signup(&b, k, id, user, "ALICE234");
                } else {
                        snprintf(id, sizeof(id), "svp-p-%d", k);
                        snprintf(user, sizeof(user), "svp-%d", k);
                        charge(&b, k, id, user, 2000);
                }
                char err[1024];
                pthread_barrier_wait(&round_start); /* both instances at once */
                if (!rs_batch_run(&r->env, &b, err, sizeof(err)))
                        fail_msg("racer %d: %s", r->id, err);
        }
        rs_batch_free(&b);
        return NULL;
}

static void run_racers(const char *kind, int rounds)
{
        pthread_t t[2];
        racer_t r[2];
        char err[256];
        pthread_barrier_init(&round_start, NULL, 2);
        for (int i = 0; i < 2; i++) {
                r[i] = (racer_t){.env = fx.env, .id = i, .rounds = rounds, .kind = kind};
                /* One connection, cache client and codec per "instance". */
                r[i].env.pg = rs_it_pg(fx.url);
                r[i].env.cache = rs_cache_new(rs_it_env("REFSTREAM_REDIS_URL"), 60000,
                                              5000, 500, err, sizeof(err));
                r[i].env.codec = rs_codec_new(err, sizeof(err));
                pthread_create(&t[i], NULL, race, &r[i]);
        }
        for (int i = 0; i < 2; i++) {
                pthread_join(t[i], NULL);
                rs_pg_destroy(r[i].env.pg);
                rs_cache_destroy(r[i].env.cache);
                rs_codec_destroy(r[i].env.codec);
        }
        pthread_barrier_destroy(&round_start);
}

/* Two instances race for the last use of a code, 100 times (a fresh code
 * each round): every round has exactly one winner. */
static void last_use_has_one_winner(void **state)
{
        run_racers("lastuse", 100);
        assert_int_equal(rs_it_count(fx.pg,
                                     "SELECT count(*) FROM (SELECT code FROM rs_referrals"
                                     " WHERE code LIKE 'LAST%%' GROUP BY code"
                                     " HAVING count(*) <> 1) x"),
                         0);
        assert_int_equal(rs_it_count(fx.pg,
                                     "SELECT count(*) FROM rs_referrals WHERE code LIKE"
                                     " 'LAST%%'"),
                         100);
        assert_int_equal(rs_it_count(fx.pg,
                                     "SELECT count(*) FROM rs_codes WHERE code LIKE"
                                     " 'LAST%%' AND uses_count = 1 AND status ="
                                     " 'exhausted'"),
                         100);
        assert_int_equal(rs_it_count(fx.pg,
                                     "SELECT count(*) FROM rs_rejections WHERE code LIKE"
                                     " 'LAST%%' AND reason = 'CODE_EXHAUSTED'"),
                         100);
}

/* A sign-up and its payment processed at the same moment by two instances
 * (two topics, two consumers): the referral must be credited exactly once. */
static void signup_and_payment_race(void **state)
{
        /* Users seen before (so no insert conflict serialises the two
         * transactions; only the users' locks do). */
        free(rs_it_sql(fx.pg, "INSERT INTO rs_users (user_id) SELECT 'svp-' || g"
                              " FROM generate_series(0, 99) g"));
        run_racers("signup-vs-pay", 100);
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_referrals WHERE"
                                            " referee_user_id LIKE 'svp-%%'"),
                         100);
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_referrals WHERE"
                                            " referee_user_id LIKE 'svp-%%' AND status = "
                                            "'credited'"),
                         100);
        assert_int_equal(rs_it_count(fx.pg,
                                     "SELECT count(*) FROM rs_credits c JOIN"
                                     " rs_referrals r ON r.id = c.referral_id WHERE"
                                     " r.referee_user_id LIKE 'svp-%%'"),
                         200);
}

/* The processor and migration 005 compute the same inbox key. */
static void inbox_key_matches_sql(void **state)
{
        rs_arena_t a;
        rs_arena_init(&a, 4096);
        const char *ids[] = {"e-1", "signups/3/17/00ff00ff00ff00ff",
                             "\xc3\xa9v\xc3\xa9nement", ""};
        const char *kinds[] = {"signup", "dlq", "payment", "payment"};
        for (size_t i = 0; i < RS_ARRAY_SIZE(ids); i++) {
                char *sql = rs_it_sqlf(fx.pg, "SELECT rs_inbox_key('%s', '%s')", kinds[i],
                                       ids[i]);
                assert_string_equal(sql, rs_batch_inbox_key(&a, kinds[i], ids[i]));
                free(sql);
        }
        rs_arena_destroy(&a);
}

/* A sign-up without a code, and charges of a user who signed up and has no
 * pending referral, write no inbox row; replayed, they change nothing. */
static void events_without_effect_write_nothing(void **state)
{
        rs_batch_t b;
        rs_batch_init(&b);
        plain_signup(&b, 300, "e-g1", "nofx-gus");
        run_ok(&fx.env, &b);
        assert_int_equal(b.stats.filtered, 1);
        assert_int_equal(b.stats.signups, 1);
        long long inbox = rs_it_count(fx.pg, "SELECT count(*) FROM rs_inbox");
        for (int round = 0; round < 2; round++) {
                rs_batch_reset(&b);
                plain_signup(&b, 300, "e-g1", "nofx-gus");
                charge(&b, 301, "e-g2", "nofx-gus", 1500);
                charge(&b, 302, "e-g3", "nofx-gus", 2500);
                run_ok(&fx.env, &b);
                assert_int_equal(b.stats.duplicates, 0);
                assert_int_equal(b.n_out, 0);
        }
        /* Charges alone: the filter finds they change nothing. */
        rs_batch_reset(&b);
        charge(&b, 303, "e-g4", "nofx-gus", 3500);
        charge(&b, 301, "e-g2", "nofx-gus", 1500);
        run_ok(&fx.env, &b);
        assert_int_equal(b.stats.filtered, 2);
        assert_int_equal(b.stats.payments, 2);
        /* A second sign-up sets only what the first left unset. */
        rs_batch_reset(&b);
        add(&b, RS_EV_SIGNUP, 304,
            "{\"event_id\":\"e-g5\",\"occurred_at\":1767229200000,"
            "\"user_id\":\"nofx-gus\",\"email_hash\":\"h-gus\"}");
        run_ok(&fx.env, &b);
        assert_int_equal(b.stats.filtered, 1);
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_users WHERE"
                                            " user_id = 'nofx-gus' AND signup_event_id ="
                                            " 'e-g1' AND email_hash = 'h-gus' AND"
                                            " signed_up_at = '2026-01-01Z'"),
                         1);
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_inbox"), inbox);
        assert_int_equal(
            rs_it_count(fx.pg, "SELECT count(*) FROM rs_users WHERE"
                               " user_id = 'nofx-gus' AND signup_event_id = 'e-g1'"),
            1);
        assert_int_equal(rs_it_count(fx.pg,
                                     "SELECT amount_minor FROM rs_first_charges"
                                     " WHERE user_id = 'nofx-gus' AND event_id = 'e-g2'"),
                         1500);
        rs_batch_free(&b);
}

/* A charge processed without an inbox row (its user had signed up, with no
 * referral) is judged when a later sign-up gives the user a referral; it is
 * recorded then, so a replay of it is a duplicate, not a second verdict. */
static void charge_judged_at_signup_is_recorded(void **state)
{
        rs_batch_t b;
        rs_batch_init(&b);
        plain_signup(&b, 400, "e-h0", "judged-hal");
        run_ok(&fx.env, &b);
        rs_batch_reset(&b);
        charge(&b, 401, "e-h1", "judged-hal", 500); /* below the minimum of 1000 */
        run_ok(&fx.env, &b);
        rs_batch_reset(&b);
        signup(&b, 402, "e-h2", "judged-hal", "ALICE234");
        run_ok(&fx.env, &b);
        assert_int_equal(b.stats.rejections[RS_REJ_BELOW_MINIMUM], 1);
        rs_batch_reset(&b);
        charge(&b, 401, "e-h1", "judged-hal", 500);
        run_ok(&fx.env, &b);
        assert_int_equal(b.stats.duplicates, 1);
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_rejections WHERE"
                                            " user_id = 'judged-hal'"),
                         1);
        assert_int_equal(
            rs_it_count(fx.pg, "SELECT count(*) FROM rs_referrals WHERE"
                               " referee_user_id = 'judged-hal' AND status = 'pending'"),
            1);
        rs_batch_free(&b);
}

/* A database the previous release (schema version 4) wrote: migrated, then
 * the events it had processed are replayed with new ones. Nothing is applied
 * twice and nothing is lost. */
static void upgrade_from_version_4(void **state)
{
        char err[1024], ref_id[RS_UUID_STR_LEN + 1];
        const char *url = rs_it_empty_db("it_batch_upgrade");
        rs_pg_t *pg = rs_it_pg(url);
        if (!rs_pg_migrate_to(pg, 4, NULL, err, sizeof(err)))
                fail_msg("migrate to 4: %s", err);
        seed_program(pg, NULL);
        /* As version 4 left them: dave signed up with alice's code (pending),
         * erin paid without a sign-up, each user of a batch has a row, and
         * the inbox holds (kind, event_id). */
        rs_referral_id("default", "dave", ref_id);
        free(rs_it_sql(pg,
                       "INSERT INTO rs_users (user_id, signup_event_id, signed_up_at)"
                       " VALUES ('dave', 'e-u1', '2026-01-01Z'), ('alice', NULL, NULL),"
                       " ('erin', NULL, NULL)"));
        free(
            rs_it_sqlf(pg,
                       "INSERT INTO rs_referrals (id, program_id, code, referrer_user_id,"
                       " referee_user_id, signup_event_id, signup_at) VALUES ('%s', 1,"
                       " 'ALICE234', 'alice', 'dave', 'e-u1', '2026-01-01Z')",
                       ref_id));
        free(rs_it_sql(pg, "UPDATE rs_codes SET uses_count = 1"));
        free(rs_it_sql(pg, "INSERT INTO rs_first_charges VALUES ('erin', 'pay-e-u2',"
                           " 'e-u2', 1500, 'USD', '2026-01-02Z')"));
        free(rs_it_sql(pg, "INSERT INTO rs_inbox (kind, event_id) VALUES"
                           " ('signup', 'e-u1'), ('payment', 'e-u2')"));
        if (!rs_pg_migrate(pg, NULL, err, sizeof(err)))
                fail_msg("migrate: %s", err);
        /* dave (pending), erin (her first charge); alice's bare row is gone. */
        assert_int_equal(rs_it_count(pg, "SELECT count(*) FROM rs_users WHERE user_id ="
                                         " 'dave' AND pending_referral"),
                         1);
        assert_int_equal(rs_it_count(pg, "SELECT count(*) FROM rs_users WHERE user_id ="
                                         " 'erin' AND first_charge_at = '2026-01-02Z'"),
                         1);
        assert_int_equal(rs_it_count(pg, "SELECT count(*) FROM rs_users"), 2);

        rs_batch_env_t env = {
            .pg = rs_it_pg(url), .codec = fx.codec, .outbox_lease_ms = 30000};
        rs_batch_t b;
        rs_batch_init(&b);
        for (int round = 0; round < 2; round++) {
                rs_batch_reset(&b);
                signup(&b, 0, "e-u1", "dave", "ALICE234"); /* processed by version 4 */
                charge(&b, 1, "e-u2", "erin", 1500);       /* processed by version 4 */
                charge(&b, 2, "e-u3", "dave", 1500); /* new: credits dave's referral */
                plain_signup(&b, 3, "e-u4", "fay");  /* new */
                run_ok(&env, &b);
                assert_int_equal(b.stats.duplicates, round == 0 ? 2 : 3);
                assert_int_equal(b.n_out, round == 0 ? 2 : 0);
        }
        assert_int_equal(rs_it_count(pg, "SELECT count(*) FROM rs_referrals WHERE"
                                         " status = 'credited'"),
                         1);
        assert_int_equal(rs_it_count(pg, "SELECT count(*) FROM rs_credits"), 2);
        assert_int_equal(rs_it_count(pg, "SELECT uses_count FROM rs_codes"), 1);
        assert_int_equal(rs_it_count(pg, "SELECT count(*) FROM rs_rejections"), 0);
        assert_int_equal(rs_it_count(pg, "SELECT count(*) FROM rs_users"), 3); /* + fay */
        assert_int_equal(rs_it_count(pg, "SELECT count(*) FROM rs_users WHERE"
                                         " pending_referral"),
                         0);
        assert_int_equal(rs_it_count(pg, "SELECT count(*) FROM rs_first_charges"), 2);
        /* The program's foreign keys went (sql/011_lighter_inserts.sql); its
         * trigger still refuses to delete it, or change its id, while
         * referrals name it. The program's rename goes through. */
        const char *const refused[] = {"DELETE FROM rs_programs",
                                       "UPDATE rs_programs SET id = id + 100"};
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
                assert_false(rs_pg_cmd(env.pg, refused[i], 0, NULL, err, sizeof(err)));
                assert_non_null(strstr(err, "still referenced from table rs_referrals"));
        }
        assert_true(rs_pg_cmd(env.pg, "UPDATE rs_programs SET name = 'renamed'", 0, NULL,
                              err, sizeof(err)));
        assert_int_equal(rs_it_count(pg, "SELECT count(*) FROM rs_programs"), 1);
        rs_batch_free(&b);
        rs_pg_destroy(env.pg);
        rs_pg_destroy(pg);
}

/* The filter's memory (rs_quiet.h): a user whose sign-up and charge a
 * batch applied is remembered quiet after its COMMIT, a later charge is then
 * set aside without a read, and a batch that gives the user a pending
 * referral remembers them not quiet, so the next charge qualifies it. Were
 * the entry left, that charge would be set aside and nothing credited. A
 * user who signed up quietly is remembered not quiet: the first charge takes
 * the locked path unread. Users whose keyed sign-up this memory did not read
 * are never remembered. */
/* A sign-up record keyed by its user id (code NULL: none), as upstream
 * services publish them (docs/events.md §1). */
static void keyed_signup(rs_batch_t *b, int64_t off, const char *id, const char *user,
                         const char *code)
{
        char j[512];
        snprintf(j, sizeof(j),
                 "{\"event_id\":\"%s\",\"occurred_at\":" T0 ",\"user_id\":\"%s\"%s%s%s}",
                 id, user, code ? ",\"referral_code\":\"" : "", code ? code : "",
                 code ? "\"" : "");
        char *copy = rs_arena_strdup(&b->arena, j);
        const char *key = rs_arena_strdup(&b->arena, user);
        rs_batch_add(b, fx.codec, RS_EV_SIGNUP, "signups", 0, off, key, strlen(key), copy,
                     strlen(copy), NULL);
}

static void quiet_memory_follows_the_batches(void **state)
{
        rs_batch_env_t env = fx.env;
        env.quiet = rs_quiet_new(64);
        rs_batch_t b;
        rs_batch_init(&b);
        keyed_signup(&b, 600, "e-qm1", "qm-una", NULL);
        charge(&b, 601, "e-qm2", "qm-una", 500); /* below the minimum */
        run_ok(&env, &b);
        assert_int_equal(b.stats.filtered, 0);
        assert_int_equal(rs_quiet_get(env.quiet, "qm-una"),
                         INT64_C(1767312000000)); /* 2026-01-02 */
        const char *referrer = "unset";
        assert_true(rs_quiet_referrer(env.quiet, "qm-una", &referrer));
        assert_null(referrer); /* known: no referrer */

        rs_batch_reset(&b);
        charge(&b, 602, "e-qm3", "qm-una", 600);
        run_ok(&env, &b);
        assert_int_equal(b.stats.filtered, 1);
        assert_int_equal(b.stats.filtered_remembered, 1);
        assert_int_equal(b.n_out, 0);

        /* A second sign-up, with a code: a pending referral (the first
         * charge is below the minimum). */
        rs_batch_reset(&b);
        keyed_signup(&b, 603, "e-qm4", "qm-una", "ALICE234");
        run_ok(&env, &b);
        assert_int_equal(b.stats.referrals, 1);
        assert_int_equal(rs_quiet_get(env.quiet, "qm-una"), RS_QUIET_NOT);
        assert_true(rs_quiet_referrer(env.quiet, "qm-una", &referrer));
        assert_string_equal(referrer, "alice");

        /* The referrer to lock comes from the memory, not from a read. */
        rs_batch_reset(&b);
        charge(&b, 604, "e-qm5", "qm-una", 1500);
        run_ok(&env, &b);
        assert_int_equal(b.stats.referrers_remembered, 1);
        assert_int_equal(b.stats.filtered, 0);
        assert_int_equal(b.stats.credits[RS_ROLE_REFERRER], 1);
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_referrals WHERE"
                                            " referee_user_id = 'qm-una' AND status ="
                                            " 'credited' AND payment_event_id = 'e-qm5'"),
                         1);
        /* Credited: quiet again. */
        assert_int_equal(rs_quiet_get(env.quiet, "qm-una"), INT64_C(1767312000000));

        rs_batch_reset(&b);
        keyed_signup(&b, 605, "e-qm6", "qm-vic", NULL);
        run_ok(&env, &b);
        assert_int_equal(b.stats.filtered, 1);
        assert_int_equal(rs_quiet_get(env.quiet, "qm-vic"), RS_QUIET_NOT);
        rs_batch_reset(&b);
        charge(&b, 606, "e-qm7", "qm-vic", 700);
        run_ok(&env, &b);
        assert_int_equal(b.stats.filtered, 0);
        assert_int_equal(rs_quiet_get(env.quiet, "qm-vic"), INT64_C(1767312000000));
        assert_int_equal(rs_it_count(fx.pg, "SELECT count(*) FROM rs_users WHERE"
                                            " user_id = 'qm-vic' AND first_charge_at ="
                                            " '2026-01-02Z'"),
                         1);

        /* A user whose sign-up this memory never saw (another process read
         * it): read, never remembered quiet, whatever the batches learn. */
        rs_batch_env_t other = fx.env;
        other.quiet = rs_quiet_new(64);
        rs_batch_reset(&b);
        keyed_signup(&b, 607, "e-qm8", "qm-wes", NULL);
        charge(&b, 608, "e-qm9", "qm-wes", 700);
        run_ok(&other, &b);
        assert_int_not_equal(rs_quiet_get(other.quiet, "qm-wes"), RS_TS_NONE);
        rs_batch_reset(&b);
        charge(&b, 609, "e-qm10", "qm-wes", 800);
        run_ok(&env, &b);
        assert_int_equal(b.stats.filtered, 1);
        assert_int_equal(b.stats.filtered_remembered, 0);
        assert_int_equal(rs_quiet_get(env.quiet, "qm-wes"), RS_TS_NONE);
        rs_batch_reset(&b); /* a refund: the locked path */
        add(&b, RS_EV_PAYMENT, 610,
            "{\"event_id\":\"e-qm11\",\"occurred_at\":\"2026-01-03T00:00:00Z\","
            "\"user_id\":\"qm-wes\",\"payment_id\":\"pay-e-qm11\",\"amount_minor\":800,"
            "\"currency\":\"USD\",\"kind\":\"REFUND\",\"refund_of\":\"pay-e-qm10\"}");
        run_ok(&env, &b);
        assert_int_equal(b.stats.filtered, 0);
        assert_int_equal(b.stats.payments, 1);
        assert_int_equal(rs_quiet_get(env.quiet, "qm-wes"), RS_TS_NONE);
        rs_quiet_destroy(other.quiet);

        /* A sign-up record not keyed by its user: its user's next sign-up
         * may go to another partition, so the user is not remembered. */
        rs_batch_reset(&b);
        plain_signup(&b, 611, "e-qm12", "qm-xia");
        charge(&b, 612, "e-qm13", "qm-xia", 700);
        run_ok(&env, &b);
        assert_int_equal(rs_quiet_get(env.quiet, "qm-xia"), RS_TS_NONE);
        rs_batch_reset(&b); /* the same, its sign-up merged quietly */
        plain_signup(&b, 613, "e-qm14", "qm-yan");
        run_ok(&env, &b);
        assert_int_equal(b.stats.filtered, 1);
        assert_int_equal(rs_quiet_get(env.quiet, "qm-yan"), RS_TS_NONE);
        rs_batch_reset(&b);
        charge(&b, 614, "e-qm15", "qm-yan", 700);
        run_ok(&env, &b);
        assert_int_equal(b.stats.filtered, 0);
        assert_int_equal(rs_quiet_get(env.quiet, "qm-yan"), RS_TS_NONE);
        rs_batch_free(&b);
        rs_quiet_destroy(env.quiet);
}

/* Credits of the referrals made with code. */
static long long credits_of_code(const char *code)
{
        return rs_it_count(fx.pg,
                           "SELECT count(*) FROM rs_credits c JOIN rs_referrals r"
                           " ON r.id = c.referral_id WHERE r.code = '%s'",
                           code);
}

/* 300 referees of each of two referrers: sign-ups (first) or charges. */
static void two_referrers(rs_batch_t *b, bool charges)
{
        char id[32], user[32];
        for (int i = 0; i < 600; i++) {
                const char *who = i % 2 ? "b" : "a";
                snprintf(id, sizeof(id), "e-sp%s-%s%d", charges ? "c" : "s", who, i);
                snprintf(user, sizeof(user), "sp-%s%d", who, i);
                if (charges)
                        charge(b, 700 + i, id, user, 1500);
                else
                        signup(b, 700 + i, id, user, i % 2 ? "SPLITBOB" : "SPLITAMY");
        }
}

/* A batch whose records form two groups that share no user and no code runs
 * as two transactions, one per connection; a part that fails leaves the
 * other's effects committed and its output to publish, and the batch run
 * again completes the rest, once. */
static void independent_groups_run_as_parts(void **state)
{
        free(rs_it_sql(fx.pg,
                       "INSERT INTO rs_codes (code, program_id, owner_user_id)"
                       " VALUES ('SPLITAMY', 1, 'sp-amy'), ('SPLITBOB', 1, 'sp-bob')"));
        rs_pg_t *more = rs_it_pg(fx.url);
        rs_batch_env_t env = fx.env;
        env.more_pg = &more;
        env.n_more_pg = 1;
        rs_batch_t b;
        rs_batch_init(&b);
        two_referrers(&b, false);
        run_ok(&env, &b);
        assert_int_equal(b.stats.parts, 2);
        assert_int_equal(b.stats.referrals, 600);
        assert_int_equal(rs_it_count(fx.pg, "SELECT sum(uses_count) FROM rs_codes"
                                            " WHERE code LIKE 'SPLIT%%'"),
                         600);
        /* The charges; bob's referees' first charges are refused. */
        free(rs_it_sql(fx.pg,
                       "CREATE FUNCTION refuse_bob() RETURNS trigger LANGUAGE plpgsql"
                       " AS $$BEGIN IF NEW.user_id LIKE 'sp-b%%' THEN"
                       " RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END$$"));
        free(rs_it_sql(fx.pg,
                       "CREATE TRIGGER refuse_bob BEFORE INSERT ON rs_first_charges"
                       " FOR EACH ROW EXECUTE FUNCTION refuse_bob()"));
        rs_batch_reset(&b);
        two_referrers(&b, true);
        char err[1024];
        assert_false(rs_batch_run(&env, &b, err, sizeof(err)));
        assert_false(rs_pg_error_transient(env.pg)); /* the records' fault: split it */
        assert_non_null(strstr(err, "refused"));
        assert_int_equal(b.n_out, 600); /* amy's part committed: 300 x 2 credits */
        for (size_t i = 0; i < b.n_out; i++) {
                assert_true(b.out[i].outbox_id > 0);
                assert_int_equal(strncmp((const char *)b.out[i].key, "sp-a", 4) == 0 ||
                                     strncmp((const char *)b.out[i].key, "sp-amy", 6) ==
                                         0,
                                 1);
        }
        assert_int_equal(credits_of_code("SPLITAMY"), 600);
        assert_int_equal(credits_of_code("SPLITBOB"), 0);
        free(rs_it_sql(fx.pg, "DROP TRIGGER refuse_bob ON rs_first_charges"));
        rs_batch_reset(&b);
        two_referrers(&b, true);
        run_ok(&env, &b);
        assert_int_equal(b.stats.credits[RS_ROLE_REFERRER], 300);
        assert_int_equal(b.n_out, 600);
        assert_int_equal(credits_of_code("SPLITAMY") + credits_of_code("SPLITBOB"), 1200);
        assert_int_equal(rs_it_count(fx.pg,
                                     "SELECT count(*) FROM rs_referrer_stats"
                                     " WHERE referrer_user_id IN ('sp-amy', 'sp-bob')"
                                     " AND rewarded_count = 300"),
                         2);
        rs_batch_free(&b);
        rs_pg_destroy(more);
}

int main(void)
{
        rs_log_set_level(RS_LOG_ERROR);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(same_batch_twice_has_one_effect),
            cmocka_unit_test(duplicate_inside_one_batch),
            cmocka_unit_test(cache_is_filled_and_used),
            cmocka_unit_test(redis_down_falls_back_to_postgres),
            cmocka_unit_test(stale_negative_cache_entry_is_not_trusted),
            cmocka_unit_test(long_non_ascii_code_is_rejected_not_refused),
            cmocka_unit_test(dead_letters_of_a_recreated_topic),
            cmocka_unit_test(last_use_has_one_winner),
            cmocka_unit_test(signup_and_payment_race),
            cmocka_unit_test(inbox_key_matches_sql),
            cmocka_unit_test(events_without_effect_write_nothing),
            cmocka_unit_test(charge_judged_at_signup_is_recorded),
            cmocka_unit_test(quiet_memory_follows_the_batches),
            cmocka_unit_test(independent_groups_run_as_parts),
            cmocka_unit_test(upgrade_from_version_4),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
