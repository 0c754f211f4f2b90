/* Reward hold and fraud signals against real Postgres (docs/rules.md §8, §9):
 * the release is exactly once with two instances and a crash between claim
 * and commit; a refund during the hold cancels; the shared payment method
 * and velocity checks hold across batches and instances. */
#include "rs_batch.h"
#include "rs_pg.h"
#include "rs_store_sql.h"
#include "support.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Sign-ups on 2026-01-01, charges the next day: with a one-day hold they are
 * due on 2026-01-03, long past. */
#define SIGNUP_AT "\"2026-01-01T00:00:00Z\""
#define CHARGE_AT "\"2026-01-02T00:00:00Z\""

static struct {
        const char *url;
        rs_pg_t *pg;
        rs_codec_t *codec;
        rs_batch_env_t env;
} fx;

static int setup(void **state)
{
        char err[512];
        fx.url = rs_it_fresh_db("it_hold");
        fx.pg = rs_it_pg(fx.url);
        fx.codec = rs_codec_new(err, sizeof(err));
        assert_non_null(fx.codec);
        fx.env = (rs_batch_env_t){
            .pg = rs_it_pg(fx.url), .codec = fx.codec, .outbox_lease_ms = 30000};
        /* 1 "held": double-sided, one day's hold. 2 "capped": one referral
         * per referrer a day. */
        free(rs_it_sql(fx.pg, "INSERT INTO rs_programs (key, name, currency, reward_kind,"
                              " reward_value, referee_reward, hold_days)"
                              " VALUES ('held', 'Held', 'USD', 'fixed', 500, 200, 1)"));
        free(rs_it_sql(fx.pg, "INSERT INTO rs_programs (key, name, currency, reward_kind,"
                              " reward_value, max_referrals_per_day)"
                              " VALUES ('capped', 'Capped', 'USD', 'fixed', 500, 1)"));
        free(rs_it_sql(fx.pg,
                       "INSERT INTO rs_codes (code, program_id, owner_user_id)"
                       " VALUES ('HOLD2345', 1, 'alice'), ('CARD2345', 1, 'carl')"));
        /* Two codes per referrer in the capped program. */
        free(rs_it_sql(fx.pg,
                       "INSERT INTO rs_codes (code, program_id, owner_user_id)"
                       " SELECT 'V' || lpad(g::text, 3, '0') || s, 2, 'vref-' || g"
                       " FROM generate_series(1, 30) g, unnest(ARRAY['A', 'B']) s"));
        return 0;
}

static int teardown(void **state)
{
        rs_pg_destroy(fx.env.pg);
        rs_pg_destroy(fx.pg);
        rs_codec_destroy(fx.codec);
        return 0;
}

static void add(rs_batch_t *b, rs_codec_t *codec, rs_event_type_t type, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));
static void add(rs_batch_t *b, rs_codec_t *codec, rs_event_type_t type, const char *fmt,
                ...)
{
        char j[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(j, sizeof(j), fmt, ap);
        va_end(ap);
        char *copy = rs_arena_strdup(&b->arena, j);
        rs_batch_add(b, codec, type, type == RS_EV_SIGNUP ? "signups" : "payments", 0,
                     (int64_t)b->n, NULL, 0, copy, strlen(copy), NULL);
}

static void signup(rs_batch_t *b, rs_codec_t *codec, const char *user, const char *code,
                   const char *at)
{
        add(b, codec, RS_EV_SIGNUP,
            "{\"event_id\":\"s-%s\",\"occurred_at\":%s,\"user_id\":\"%s\","
            "\"referral_code\":\"%s\"}",
            user, at, user, code);
}

/* A charge (refund_of NULL) or refund; fp NULL: no fingerprint. */
static void pay(rs_batch_t *b, const char *id, const char *user, const char *refund_of,
                const char *fp)
{
        char extra[256] = "";
        if (refund_of)
                snprintf(extra, sizeof(extra), ",\"refund_of\":\"pay-%s\"", refund_of);
        else if (fp)
                snprintf(extra, sizeof(extra), ",\"payment_fingerprint\":\"%s\"", fp);
        add(b, fx.codec, RS_EV_PAYMENT,
            "{\"event_id\":\"%s\",\"occurred_at\":" CHARGE_AT ",\"user_id\":\"%s\","
            "\"payment_id\":\"pay-%s\",\"amount_minor\":5000,\"currency\":\"USD\","
            "\"kind\":\"%s\"%s}",
            id, user, id, refund_of ? "REFUND" : "CHARGE", extra);
}

static void run(rs_batch_t *b)
{
        char err[1024];
        if (!rs_batch_run(&fx.env, b, err, sizeof(err)))
                fail_msg("batch failed: %s", err);
        rs_batch_reset(b);
}

static int release(rs_batch_env_t *env, int limit)
{
        char err[1024];
        rs_batch_t b;
        rs_batch_init(&b);
        int n = rs_batch_release(env, &b, limit, err, sizeof(err));
        if (n < 0)
                fail_msg("release failed: %s", err);
        assert_int_equal(b.n_out, (size_t)(b.stats.credits[0] + b.stats.credits[1]));
        rs_batch_free(&b);
        return n;
}

/* N referees of alice in the held program, each signed up and charged. */
static void held_referrals(const char *prefix, int n)
{
        rs_batch_t b;
        rs_batch_init(&b);
        char user[64];
        for (int i = 0; i < n; i++) {
                snprintf(user, sizeof(user), "%s-%d", prefix, i);
                signup(&b, fx.codec, user, "HOLD2345", SIGNUP_AT);
                pay(&b, user, user, NULL, NULL);
        }
        run(&b);
        rs_batch_free(&b);
}

#define COUNT(...) rs_it_count(fx.pg, __VA_ARGS__)

static void *releaser(void *arg)
{
        rs_batch_env_t *env = arg;
        /* Small claims, until nothing is due: the two interleave. */
        while (release(env, 7) > 0)
                ;
        return NULL;
}

/* Held credits are stored and not published; two instances releasing at
 * once issue each exactly once. */
static void release_is_exactly_once_with_two_instances(void **state)
{
        held_referrals("two", 60);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_referrals WHERE status = 'held'"
                               " AND release_at = '2026-01-03T00:00:00Z'"),
                         60);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_credits WHERE status = 'held'"),
                         120);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_outbox"), 0);
        assert_int_equal(COUNT("SELECT rewarded_count FROM rs_referrer_stats"
                               " WHERE referrer_user_id = 'alice'"),
                         60);

        pthread_t t[2];
        rs_batch_env_t env[2];
        for (int i = 0; i < 2; i++) {
                env[i] = fx.env;
                env[i].pg = rs_it_pg(fx.url);
                pthread_create(&t[i], NULL, releaser, &env[i]);
        }
        for (int i = 0; i < 2; i++) {
                pthread_join(t[i], NULL);
                rs_pg_destroy(env[i].pg);
        }
        assert_int_equal(COUNT("SELECT count(*) FROM rs_referrals WHERE status ="
                               " 'credited' AND released_at IS NOT NULL"),
                         60);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_credits WHERE status = 'issued'"
                               " AND released_at IS NOT NULL"),
                         120);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_outbox WHERE destination ="
                               " 'credited' AND source_topic = '" RS_RELEASE_SOURCE "'"),
                         120);
        assert_int_equal(release(&fx.env, 100), 0);
}

/* An instance that claimed due referrals and died before COMMIT released
 * nothing; the next release gets them, once. */
static void crash_between_claim_and_commit(void **state)
{
        held_referrals("crash", 5);
        long long outbox = COUNT("SELECT count(*) FROM rs_outbox");
        rs_pg_t *dying = rs_it_pg(fx.url);
        char err[512];
        const char *lim[] = {"100"};
        assert_true(rs_pg_cmd(dying, SQL_BEGIN, 0, NULL, err, sizeof(err)));
        PGresult *res = rs_pg_exec(dying, SQL_RELEASE_DUE, 1, lim, err, sizeof(err));
        assert_non_null(res);
        assert_int_equal(PQntuples(res), 5);
        PQclear(res);
        free(rs_it_sql(dying, "UPDATE rs_referrals SET status = 'credited'"
                              " WHERE status = 'held'"));
        /* While it holds them, another instance skips them. */
        assert_int_equal(release(&fx.env, 100), 0);
        long long pid = rs_it_count(dying, "SELECT pg_backend_pid()");
        rs_pg_destroy(dying); /* the crash: the transaction is rolled back */
        /* The server ends the backend (and frees its locks) on its own time. */
        for (int i = 0; i < 200 && rs_it_count(fx.pg,
                                               "SELECT count(*) FROM pg_stat_activity"
                                               " WHERE pid = %lld",
                                               pid) > 0;
             i++)
                usleep(50 * 1000);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_referrals WHERE status = 'held'"),
                         5);
        assert_int_equal(release(&fx.env, 100), 5);
        assert_int_equal(release(&fx.env, 100), 0);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_outbox") - outbox, 10);
}

/* A batch holding the referee (refunding, say) keeps the release off the
 * referral until it commits. */
static void release_skips_a_referee_a_batch_holds(void **state)
{
        held_referrals("busy", 1);
        rs_pg_t *batch = rs_it_pg(fx.url);
        char err[512], class[16], keys[24];
        snprintf(class, sizeof(class), "%d", RS_PG_USER_LOCK_CLASS);
        snprintf(keys, sizeof(keys), "{%d}", rs_pg_user_lock_key("busy-0"));
        const char *p[] = {class, keys};
        assert_true(rs_pg_cmd(batch, SQL_BEGIN, 0, NULL, err, sizeof(err)));
        assert_true(rs_pg_cmd(batch, SQL_USERS_LOCK, 2, p, err, sizeof(err)));
        assert_int_equal(release(&fx.env, 100), 0);
        assert_true(rs_pg_cmd(batch, SQL_COMMIT, 0, NULL, err, sizeof(err)));
        assert_int_equal(release(&fx.env, 100), 1);
        rs_pg_destroy(batch);
}

/* A refund of the qualifying payment during the hold cancels: nothing is
 * published, then or at the release. */
static void refund_during_hold_cancels(void **state)
{
        held_referrals("refund", 1);
        rs_batch_t b;
        rs_batch_init(&b);
        pay(&b, "refund-0-r", "refund-0", "refund-0", NULL);
        run(&b);
        rs_batch_free(&b);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_referrals WHERE referee_user_id"
                               " = 'refund-0' AND status = 'cancelled'"),
                         1);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_credits c JOIN rs_referrals r"
                               " ON r.id = c.referral_id WHERE r.referee_user_id ="
                               " 'refund-0' AND c.status = 'cancelled'"),
                         2);
        assert_int_equal(release(&fx.env, 100), 0);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_outbox WHERE destination ="
                               " 'reversed'"),
                         0);
}

/* The referrer's card on the referee's charge: rejected, the referral stays
 * pending; a charge of the referee before the referrer used the card, or
 * with another card, qualifies. The remembered first charge keeps its card. */
static void shared_payment_method(void **state)
{
        rs_batch_t b;
        rs_batch_init(&b);
        pay(&b, "carl-1", "carl", NULL, "card-carl");
        run(&b);
        signup(&b, fx.codec, "dora", "CARD2345", SIGNUP_AT);
        pay(&b, "dora-1", "dora", NULL, "card-carl");
        run(&b);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_rejections WHERE user_id ="
                               " 'dora' AND reason = 'SHARED_PAYMENT_METHOD'"),
                         1);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_referrals WHERE referee_user_id"
                               " = 'dora' AND status = 'pending'"),
                         1);
        pay(&b, "dora-2", "dora", NULL, "card-dora");
        run(&b);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_referrals WHERE referee_user_id"
                               " = 'dora' AND status = 'held' AND payment_id ="
                               " 'pay-dora-2'"),
                         1);
        /* In one batch: the referee pays before the referrer uses the card. */
        signup(&b, fx.codec, "ed", "CARD2345", SIGNUP_AT);
        pay(&b, "ed-1", "ed", NULL, "card-new");
        pay(&b, "carl-2", "carl", NULL, "card-new");
        run(&b);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_referrals WHERE referee_user_id"
                               " = 'ed' AND status = 'held'"),
                         1);
        /* Paid with carl's card before signing up: judged at the sign-up. */
        pay(&b, "flo-1", "flo", NULL, "card-carl");
        run(&b);
        signup(&b, fx.codec, "flo", "CARD2345", SIGNUP_AT);
        run(&b);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_rejections WHERE user_id ="
                               " 'flo' AND reason = 'SHARED_PAYMENT_METHOD'"),
                         1);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_referrals WHERE referee_user_id"
                               " = 'flo' AND status = 'pending'"),
                         1);
        rs_batch_free(&b);
}

static pthread_barrier_t round_start;

typedef struct racer {
        rs_batch_env_t env;
        int id;
} racer_t;

static void *race(void *arg)
{
        racer_t *r = arg;
        rs_batch_t b;
        rs_batch_init(&b);
        char user[64], code[16], err[1024];
        for (int k = 1; k <= 30; k++) {
                /* The same referrer, a different code per instance. */
                snprintf(user, sizeof(user), "vee-%d-%d", r->id, k);
                snprintf(code, sizeof(code), "V%03d%c", k, r->id ? 'B' : 'A');
                signup(&b, r->env.codec, user, code, SIGNUP_AT);
                pthread_barrier_wait(&round_start);
                if (!rs_batch_run(&r->env, &b, err, sizeof(err)))
                        fail_msg("racer %d: %s", r->id, err);
                rs_batch_reset(&b);
        }
        rs_batch_free(&b);
        return NULL;
}

/* One referral a day: two instances signing up referees of one referrer
 * with two of the referrer's codes at once give exactly one referral. */
static void velocity_is_atomic_across_instances(void **state)
{
        char err[256];
        pthread_t t[2];
        racer_t r[2];
        pthread_barrier_init(&round_start, NULL, 2);
        for (int i = 0; i < 2; i++) {
                r[i] = (racer_t){.env = fx.env, .id = i};
                r[i].env.pg = rs_it_pg(fx.url);
                r[i].env.codec = rs_codec_new(err, sizeof(err));
                pthread_create(&t[i], NULL, race, &r[i]);
        }
        for (int i = 0; i < 2; i++) {
                pthread_join(t[i], NULL);
                rs_pg_destroy(r[i].env.pg);
                rs_codec_destroy(r[i].env.codec);
        }
        pthread_barrier_destroy(&round_start);
        assert_int_equal(COUNT("SELECT count(*) FROM (SELECT referrer_user_id FROM"
                               " rs_referrals WHERE program_id = 2 GROUP BY 1"
                               " HAVING count(*) = 1) x"),
                         30);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_rejections WHERE reason ="
                               " 'VELOCITY_LIMIT' AND program_id = 2"),
                         30);
        assert_int_equal(
            COUNT("SELECT sum(uses_count) FROM rs_codes WHERE program_id = 2"), 30);
        /* The next day the limit allows one more. */
        rs_batch_t b;
        rs_batch_init(&b);
        signup(&b, fx.codec, "vee-next", "V001A", "\"2026-01-02T00:00:00.001Z\"");
        run(&b);
        rs_batch_free(&b);
        assert_int_equal(COUNT("SELECT count(*) FROM rs_referrals WHERE"
                               " referee_user_id = 'vee-next'"),
                         1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(release_is_exactly_once_with_two_instances),
            cmocka_unit_test(crash_between_claim_and_commit),
            cmocka_unit_test(release_skips_a_referee_a_batch_holds),
            cmocka_unit_test(refund_during_hold_cancels),
            cmocka_unit_test(shared_payment_method),
            cmocka_unit_test(velocity_is_atomic_across_instances),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
