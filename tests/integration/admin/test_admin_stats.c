/* `refstream admin stats` and `referrals`: the JSON fields for a dataset
 * seeded directly with SQL, and the text rendering of the same documents. */
#include "support_admin.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define DB "rs_it_admin_stats"

/* Program shop (USD, goal 5). alice refers u1, u2 (credited), u3 (reversed)
 * and u4 (pending) with ALICE1; bob referred alice with BOBCODE, since
 * revoked. Rejections: one without a program (u9), twelve CODE_INACTIVE for
 * bob's code, then SELF_REFERRAL, ALREADY_REFERRED and BELOW_MINIMUM. */
static const char seed_codes_sql[] =
    "INSERT INTO rs_codes (code, program_id, owner_user_id, uses_count, status)"
    " SELECT v.code, p.id, v.owner, v.uses, v.st FROM rs_programs p, (VALUES"
    " ('ALICE1', 'alice', 4, 'active'), ('BOBCODE', 'bob', 1, 'revoked'))"
    " AS v(code, owner, uses, st) WHERE p.key = 'shop'";

static const char seed_referrals_sql[] =
    "INSERT INTO rs_referrals (id, program_id, code, referrer_user_id, referee_user_id,"
    " status, signup_event_id, signup_at, payment_id, payment_event_id, qualified_at,"
    " reversed_at)"
    " SELECT v.id::uuid, p.id, v.code, v.referrer, v.referee, v.status, v.sev,"
    " v.signup::timestamptz, v.pay, v.pev, v.qual::timestamptz, v.rev::timestamptz"
    " FROM rs_programs p, (VALUES"
    " ('00000000-0000-0000-0000-000000000001', 'ALICE1', 'alice', 'u1', 'credited', 's1',"
    "  '2026-01-01T10:00:00Z', 'pay1', 'pe1', '2026-01-02T10:00:00Z', NULL),"
    " ('00000000-0000-0000-0000-000000000002', 'ALICE1', 'alice', 'u2', 'credited', 's2',"
    "  '2026-01-03T10:00:00Z', 'pay2', 'pe2', '2026-01-04T10:00:00Z', NULL),"
    " ('00000000-0000-0000-0000-000000000003', 'ALICE1', 'alice', 'u3', 'reversed', 's3',"
    "  '2026-01-05T10:00:00Z', 'pay3', 'pe3', '2026-01-06T10:00:00Z',"
    "  '2026-01-07T10:00:00Z'),"
    " ('00000000-0000-0000-0000-000000000004', 'BOBCODE', 'bob', 'alice', 'pending', "
    "'s4',"
    "  '2025-12-01T00:00:00Z', NULL, NULL, NULL, NULL),"
    " ('00000000-0000-0000-0000-000000000005', 'ALICE1', 'alice', 'u4', 'pending', 's5',"
    "  '2026-01-08T10:00:00Z', NULL, NULL, NULL, NULL))"
    " AS v(id, code, referrer, referee, status, sev, signup, pay, pev, qual, rev)"
    " WHERE p.key = 'shop'";

static const char seed_credits_sql[] =
    "INSERT INTO rs_credits (id, referral_id, program_id, beneficiary_user_id, role,"
    " amount_minor, currency, status, source_event_id, referrer_rewarded_count,"
    " goal_reached, created_at, reversed_at)"
    " SELECT gen_random_uuid(), v.ref::uuid, p.id, v.who, v.role, v.amount, 'USD',"
    " v.status, v.ev, v.n, false, v.at::timestamptz, v.rev::timestamptz"
    " FROM rs_programs p, (VALUES"
    " ('00000000-0000-0000-0000-000000000001', 'alice', 'referrer', 1000, 'issued', "
    "'pe1',"
    "  1, '2026-01-02T10:00:00Z', NULL),"
    " ('00000000-0000-0000-0000-000000000001', 'u1', 'referee', 500, 'issued', 'pe1', 1,"
    "  '2026-01-02T10:00:00Z', NULL),"
    " ('00000000-0000-0000-0000-000000000002', 'alice', 'referrer', 1000, 'issued', "
    "'pe2',"
    "  2, '2026-01-04T10:00:00Z', NULL),"
    " ('00000000-0000-0000-0000-000000000002', 'u2', 'referee', 500, 'issued', 'pe2', 2,"
    "  '2026-01-04T10:00:00Z', NULL),"
    " ('00000000-0000-0000-0000-000000000003', 'alice', 'referrer', 1000, 'reversed',"
    "  'pe3', 3, '2026-01-06T10:00:00Z', '2026-01-07T10:00:00Z'),"
    " ('00000000-0000-0000-0000-000000000003', 'u3', 'referee', 500, 'reversed', 'pe3', "
    "3,"
    "  '2026-01-06T10:00:00Z', '2026-01-07T10:00:00Z'))"
    " AS v(ref, who, role, amount, status, ev, n, at, rev) WHERE p.key = 'shop'";

/* One statement per group, so that the ids (the "recent" order) follow. */
static const char *const seed_rejections_sql[] = {
    "INSERT INTO rs_rejections (event_id, event_type, reason, user_id, code, detail,"
    " occurred_at) VALUES ('u9-signup', 'signup', 'UNKNOWN_CODE', 'u9', 'NOPE',"
    " 'no such referral code', '2026-01-01T00:00:00Z')",
    "INSERT INTO rs_rejections (event_id, event_type, reason, user_id, code, program_id,"
    " referrer_user_id, detail, occurred_at)"
    " SELECT 'x' || g, 'signup', 'CODE_INACTIVE', 'x' || g, 'BOBCODE', p.id, 'bob',"
    " 'code is revoked', '2026-01-02T00:00:00Z'::timestamptz + g * interval '1 s'"
    " FROM rs_programs p, generate_series(1, 12) g WHERE p.key = 'shop' ORDER BY g",
    "INSERT INTO rs_rejections (event_id, event_type, reason, user_id, code, program_id,"
    " referrer_user_id, detail, occurred_at) SELECT 'e2', 'signup', 'SELF_REFERRAL',"
    " 'alice', 'ALICE1', id, 'alice', 'same e-mail hash', '2026-01-02T00:00:00Z'"
    " FROM rs_programs WHERE key = 'shop'",
    "INSERT INTO rs_rejections (event_id, event_type, reason, user_id, code, program_id,"
    " referrer_user_id, detail, occurred_at) SELECT 'e3', 'signup', 'ALREADY_REFERRED',"
    " 'u1', 'ALICE1', id, 'alice', 'already referred', '2026-01-03T00:00:00Z'"
    " FROM rs_programs WHERE key = 'shop'",
    "INSERT INTO rs_rejections (event_id, event_type, reason, user_id, code, program_id,"
    " referrer_user_id, detail, occurred_at) SELECT 'e4', 'payment', 'BELOW_MINIMUM',"
    " 'u4', NULL, id, 'alice', 'payment 100 below minimum 500', '2026-01-09T00:00:00Z'"
    " FROM rs_programs WHERE key = 'shop'",
};

static void exec(rs_it_admin_t *f, const char *sql)
{
        free(rs_it_sql(f->pg, sql));
}

static int setup(void **state)
{
        rs_it_admin_t *f = rs_it_admin_new(DB);
        rs_it_admin_program(f, "shop");
        rs_it_admin_program(f, "empty");
        exec(f, seed_codes_sql);
        exec(f, seed_referrals_sql);
        exec(f, seed_credits_sql);
        exec(
            f,
            "INSERT INTO rs_referrer_stats (program_id, referrer_user_id, rewarded_count)"
            " SELECT id, 'alice', 3 FROM rs_programs WHERE key = 'shop'");
        for (size_t i = 0; i < RS_ARRAY_SIZE(seed_rejections_sql); i++)
                exec(f, seed_rejections_sql[i]);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        rs_it_admin_free(*state);
        return 0;
}

/* Value at a path like "credits[1].issued_minor" (NULL if absent). */
static json_t *at(json_t *j, const char *path)
{
        char key[128];
        while (j && *path) {
                size_t n = strcspn(path, ".[");
                if (n > 0) {
                        snprintf(key, sizeof(key), "%.*s", (int)n, path);
                        j = json_object_get(j, key);
                        path += n;
                } else if (*path == '[') {
                        j = json_array_get(j, strtoul(path + 1, NULL, 10));
                        path = strchr(path, ']') + 1;
                }
                if (*path == '.')
                        path++;
        }
        return j;
}

static void expect_int(json_t *j, const char *path, long long want)
{
        json_t *v = at(j, path);
        if (!json_is_integer(v))
                fail_msg("%s: not an integer", path);
        if (json_integer_value(v) != want)
                fail_msg("%s: %lld, want %lld", path, (long long)json_integer_value(v),
                         want);
}

static void expect_str(json_t *j, const char *path, const char *want)
{
        json_t *v = at(j, path);
        if (!want) {
                if (!json_is_null(v))
                        fail_msg("%s: want null", path);
                return;
        }
        if (!json_is_string(v))
                fail_msg("%s: not a string", path);
        if (strcmp(json_string_value(v), want) != 0)
                fail_msg("%s: \"%s\", want \"%s\"", path, json_string_value(v), want);
}

static void expect_size(json_t *j, const char *path, size_t want)
{
        json_t *v = at(j, path);
        if (!json_is_array(v) || json_array_size(v) != want)
                fail_msg("%s: size %zu, want %zu", path, json_array_size(v), want);
}

/* Renders j with print() and checks that the text contains want. */
static void expect_text(void (*print)(FILE *, const json_t *), json_t *j,
                        const char *want)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        print(m, j);
        fclose(m);
        if (!strstr(buf, want))
                fail_msg("expected \"%s\" in:\n%s", want, buf);
        free(buf);
}

static void test_stats_program(void **state)
{
        rs_it_admin_t *f = *state;
        char err[512];
        json_t *s = rs_admin_stats_program(&f->a, "shop", err, sizeof(err));
        if (!s)
                fail_msg("%s", err);
        expect_str(s, "program.key", "shop");
        expect_int(s, "program.referral_goal", 5);
        expect_int(s, "codes.total", 2);
        expect_int(s, "codes.active", 1);
        expect_int(s, "codes.revoked", 1);
        expect_int(s, "codes.uses", 5);
        expect_int(s, "referrals.total", 5);
        expect_int(s, "referrals.pending", 2);
        expect_int(s, "referrals.credited", 2);
        expect_int(s, "referrals.reversed", 1);
        expect_size(s, "credits", 2);
        expect_str(s, "credits[0].role", "referrer");
        expect_str(s, "credits[0].currency", "USD");
        expect_int(s, "credits[0].issued_count", 2);
        expect_int(s, "credits[0].issued_minor", 2000);
        expect_int(s, "credits[0].reversed_count", 1);
        expect_int(s, "credits[0].reversed_minor", 1000);
        expect_str(s, "credits[1].role", "referee");
        expect_int(s, "credits[1].issued_minor", 1000);
        expect_int(s, "credits[1].reversed_minor", 500);
        /* The program's rejections only (u9's has no program). */
        expect_int(s, "rejections.total", 15);
        expect_int(s, "rejections.by_reason.CODE_INACTIVE", 12);
        expect_int(s, "rejections.by_reason.SELF_REFERRAL", 1);
        expect_int(s, "rejections.by_reason.BELOW_MINIMUM", 1);
        assert_null(at(s, "rejections.by_reason.UNKNOWN_CODE"));
        expect_size(s, "rejections.recent", RS_ADMIN_RECENT);
        expect_str(s, "rejections.recent[0].reason", "BELOW_MINIMUM");
        expect_str(s, "rejections.recent[0].event_type", "payment");
        expect_str(s, "rejections.recent[0].user_id", "u4");
        expect_str(s, "rejections.recent[0].referrer_user_id", "alice");
        expect_str(s, "rejections.recent[0].code", NULL);
        expect_str(s, "rejections.recent[0].at", "2026-01-09T00:00:00.000Z");
        expect_str(s, "rejections.recent[0].detail", "payment 100 below minimum 500");
        expect_str(s, "rejections.recent[2].reason", "SELF_REFERRAL");
        expect_str(s, "rejections.recent[3].reason", "CODE_INACTIVE");
        expect_size(s, "top_referrers", 2);
        expect_str(s, "top_referrers[0].user_id", "alice");
        expect_int(s, "top_referrers[0].referrals", 4);
        expect_int(s, "top_referrers[0].credited", 2);
        expect_int(s, "top_referrers[0].rewarded_count", 3);
        expect_str(s, "top_referrers[0].goal_progress", "3 of 5");
        assert_true(json_is_false(at(s, "top_referrers[0].goal_reached")));
        expect_str(s, "top_referrers[1].user_id", "bob");
        expect_str(s, "top_referrers[1].goal_progress", "0 of 5");
        expect_text(rs_admin_print_stats_program, s, "3 of 5");
        expect_text(rs_admin_print_stats_program, s, "CODE_INACTIVE");
        expect_text(rs_admin_print_stats_program, s,
                    "issued 2 (2000)  reversed 1 (1000)");
        json_decref(s);
        /* A program with nothing: zeros and empty lists, not nulls. */
        s = rs_admin_stats_program(&f->a, "empty", err, sizeof(err));
        assert_non_null(s);
        expect_int(s, "referrals.total", 0);
        expect_int(s, "codes.uses", 0);
        expect_size(s, "credits", 0);
        expect_size(s, "top_referrers", 0);
        expect_size(s, "rejections.recent", 0);
        assert_int_equal(json_object_size(at(s, "rejections.by_reason")), 0);
        json_decref(s);
        assert_null(rs_admin_stats_program(&f->a, "nope", err, sizeof(err)));
        assert_string_equal(err, "program nope not found");
}

static void test_stats_user(void **state)
{
        rs_it_admin_t *f = *state;
        char err[512];
        json_t *s = rs_admin_stats_user(&f->a, "alice", err, sizeof(err));
        if (!s)
                fail_msg("%s", err);
        expect_str(s, "user_id", "alice");
        expect_size(s, "codes", 1);
        expect_str(s, "codes[0].code", "ALICE1");
        expect_int(s, "codes[0].uses_count", 4);
        expect_str(s, "codes[0].max_uses", NULL);
        expect_size(s, "as_referrer", 1);
        expect_str(s, "as_referrer[0].program", "shop");
        expect_int(s, "as_referrer[0].referrals.total", 4);
        expect_int(s, "as_referrer[0].referrals.pending", 1);
        expect_int(s, "as_referrer[0].rewarded_count", 3);
        expect_str(s, "as_referrer[0].goal_progress", "3 of 5");
        expect_size(s, "credits", 1);
        expect_str(s, "credits[0].role", "referrer");
        expect_int(s, "credits[0].issued_minor", 2000);
        expect_int(s, "credits[0].reversed_count", 1);
        expect_size(s, "referred_by", 1);
        expect_str(s, "referred_by[0].referrer_user_id", "bob");
        expect_str(s, "referred_by[0].code", "BOBCODE");
        expect_str(s, "referred_by[0].status", "pending");
        expect_str(s, "referred_by[0].signup_at", "2025-12-01T00:00:00.000Z");
        /* As the referee (e2) and as the referrer (e3, e4), newest first. */
        expect_int(s, "rejections.total", 3);
        expect_str(s, "rejections.recent[0].reason", "BELOW_MINIMUM");
        expect_str(s, "rejections.recent[0].as", "referrer");
        expect_str(s, "rejections.recent[2].reason", "SELF_REFERRAL");
        expect_str(s, "rejections.recent[2].as", "referee");
        expect_str(s, "rejections.recent[2].program", "shop");
        expect_text(
            rs_admin_print_stats_user, s,
            "program shop: referrals 4 (pending 1, credited 2, reversed 1); goal 3 of 5");
        expect_text(rs_admin_print_stats_user, s, "bob with code BOBCODE");
        json_decref(s);
        /* u1: a referee with a credit; bob: revoked code, twelve rejections. */
        s = rs_admin_stats_user(&f->a, "u1", err, sizeof(err));
        expect_str(s, "credits[0].role", "referee");
        expect_int(s, "credits[0].issued_minor", 500);
        expect_size(s, "as_referrer", 0);
        expect_int(s, "rejections.total", 1);
        json_decref(s);
        s = rs_admin_stats_user(&f->a, "bob", err, sizeof(err));
        expect_str(s, "codes[0].status", "revoked");
        expect_str(s, "as_referrer[0].goal_progress", "0 of 5");
        expect_int(s, "rejections.total", 12);
        expect_size(s, "rejections.recent", RS_ADMIN_RECENT);
        json_decref(s);
        s = rs_admin_stats_user(&f->a, "u9", err, sizeof(err));
        expect_str(s, "rejections.recent[0].reason", "UNKNOWN_CODE");
        expect_str(s, "rejections.recent[0].program", NULL);
        expect_size(s, "codes", 0);
        json_decref(s);
}

static void test_referrals_history(void **state)
{
        rs_it_admin_t *f = *state;
        char err[512];
        json_t *h = rs_admin_referrals(&f->a, "alice", 100, err, sizeof(err));
        if (!h)
                fail_msg("%s", err);
        expect_int(h, "total", 5);
        expect_size(h, "referrals", 5);
        /* Newest first; the oldest is alice's own sign-up through bob's
         * code, which has been revoked since. */
        expect_str(h, "referrals[0].referee_user_id", "u4");
        expect_str(h, "referrals[0].status", "pending");
        expect_size(h, "referrals[0].credits", 0);
        expect_str(h, "referrals[1].referee_user_id", "u3");
        expect_str(h, "referrals[1].status", "reversed");
        expect_str(h, "referrals[1].reversed_at", "2026-01-07T10:00:00.000Z");
        expect_size(h, "referrals[1].credits", 2);
        expect_str(h, "referrals[1].credits[0].role", "referrer");
        expect_str(h, "referrals[1].credits[0].status", "reversed");
        expect_int(h, "referrals[1].credits[1].amount_minor", 500);
        expect_str(h, "referrals[3].payment_id", "pay1");
        expect_str(h, "referrals[3].qualified_at", "2026-01-02T10:00:00.000Z");
        expect_str(h, "referrals[4].role", "referee");
        expect_str(h, "referrals[4].referrer_user_id", "bob");
        expect_str(h, "referrals[4].code", "BOBCODE");
        expect_str(h, "referrals[4].code_status", "revoked");
        expect_str(h, "referrals[0].role", "referrer");
        expect_str(h, "referrals[0].program", "shop");
        expect_text(rs_admin_print_referrals, h, "code BOBCODE (revoked)  bob -> alice");
        json_decref(h);
        h = rs_admin_referrals(&f->a, "alice", 2, err, sizeof(err));
        expect_int(h, "total", 5);
        expect_int(h, "limit", 2);
        expect_size(h, "referrals", 2);
        expect_str(h, "referrals[1].referee_user_id", "u3");
        json_decref(h);
        h = rs_admin_referrals(&f->a, "nobody", 10, err, sizeof(err));
        expect_int(h, "total", 0);
        expect_size(h, "referrals", 0);
        json_decref(h);
        /* Through the CLI as JSON. */
        char *out, *e;
        assert_int_equal(
            rs_it_admin_cli(NULL, &out, &e, "referrals", "--user", "bob", "--json", NULL),
            0);
        json_error_t jerr;
        h = json_loads(out, 0, &jerr);
        assert_non_null(h);
        expect_str(h, "referrals[0].referee_user_id", "alice");
        json_decref(h);
        free(out);
        free(e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_stats_program, setup, teardown),
            cmocka_unit_test_setup_teardown(test_stats_user, setup, teardown),
            cmocka_unit_test_setup_teardown(test_referrals_history, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
