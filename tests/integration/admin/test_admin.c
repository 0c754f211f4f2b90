/* `refstream admin`: programs, codes, cache invalidation and the command line
 * (exit codes and output), against a fresh database per test. Backfill and
 * the reports have their own files (test_admin_backfill.c, _stats.c). */
#include "support_admin.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define DB "rs_it_admin"

static int setup(void **state)
{
        *state = rs_it_admin_new(DB);
        return 0;
}

static int teardown(void **state)
{
        rs_it_admin_free(*state);
        return 0;
}

static char *q(rs_it_admin_t *f, const char *sql)
{
        return rs_it_sql(f->pg, sql);
}

static void exec(rs_it_admin_t *f, const char *sql)
{
        free(rs_it_sql(f->pg, sql));
}

static void assert_sql(rs_it_admin_t *f, const char *sql, const char *expected)
{
        char *v = q(f, sql);
        assert_non_null(v);
        assert_string_equal(v, expected);
        free(v);
}

static void assert_contains(const char *haystack, const char *needle)
{
        if (!strstr(haystack, needle))
                fail_msg("expected \"%s\" in \"%s\"", needle, haystack);
}

/* ---------------------------------------------------------------- programs */

static void test_program_create_defaults(void **state)
{
        rs_it_admin_t *f = *state;
        char err[512];
        rs_admin_program_t p = {.name = "Spring",
                                .currency = "EUR",
                                .reward_percent = {RS_ADMIN_SET, 250},
                                .reward_cap = {RS_ADMIN_SET, 3000}};
        assert_true(rs_admin_program_create(&f->a, "spring-2026", &p, err, sizeof(err)));
        json_t *j = rs_admin_program_show(&f->a, "spring-2026", err, sizeof(err));
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "status")), "active");
        assert_string_equal(json_string_value(json_object_get(j, "reward_kind")),
                            "percent");
        assert_int_equal(json_integer_value(json_object_get(j, "reward_value")), 250);
        assert_int_equal(json_integer_value(json_object_get(j, "reward_cap")), 3000);
        assert_int_equal(json_integer_value(json_object_get(j, "window_days")), 30);
        assert_int_equal(json_integer_value(json_object_get(j, "referral_goal")), 10);
        assert_int_equal(json_integer_value(json_object_get(j, "min_payment")), 0);
        assert_true(json_is_null(json_object_get(j, "referee_reward")));
        assert_true(json_is_null(json_object_get(j, "max_rewarded")));
        json_decref(j);
        assert_false(rs_admin_program_create(&f->a, "spring-2026", &p, err, sizeof(err)));
        assert_string_equal(err, "program spring-2026 already exists");
        assert_int_equal(rs_it_count(f->pg, "SELECT count(*) FROM rs_programs"), 1);
}

static void expect_invalid(const rs_admin_program_t *p, bool create, const char *msg)
{
        char err[512];
        assert_false(rs_admin_program_validate(p, create, err, sizeof(err)));
        assert_contains(err, msg);
}

static void test_program_validation(void **state)
{
        rs_it_admin_t *f = *state;
        char err[512];
        const rs_admin_program_t ok = {
            .name = "N", .currency = "USD", .reward_fixed = {RS_ADMIN_SET, 100}};
        rs_admin_program_t p = ok;
        assert_true(rs_admin_program_validate(&p, true, err, sizeof(err)));
        p.currency = "usd";
        expect_invalid(&p, true, "--currency");
        p = ok;
        p.currency = "USDT";
        expect_invalid(&p, true, "--currency");
        p = ok;
        p.reward_percent = (rs_admin_i64_t){RS_ADMIN_SET, 5};
        expect_invalid(&p, true, "only one of --reward-fixed and --reward-percent");
        p = ok;
        p.reward_fixed.state = RS_ADMIN_UNSET;
        expect_invalid(&p, true, "missing --reward-fixed or --reward-percent");
        p.reward_percent = (rs_admin_i64_t){RS_ADMIN_SET, 10001};
        expect_invalid(&p, true, "--reward-percent must be 0..10000");
        p = ok;
        p.reward_fixed.v = -1;
        expect_invalid(&p, true, "--reward-fixed must be >= 0");
        p = ok;
        p.window_days = (rs_admin_i64_t){RS_ADMIN_SET, 3651};
        expect_invalid(&p, true, "--window-days must be 1..3650");
        p.window_days.v = 0;
        expect_invalid(&p, true, "--window-days");
        p = ok;
        p.goal = (rs_admin_i64_t){RS_ADMIN_SET, 0};
        expect_invalid(&p, true, "--goal must be 1..");
        p.goal.state = RS_ADMIN_CLEAR;
        expect_invalid(&p, false, "--goal cannot be cleared");
        p = ok;
        p.starts_at = (rs_admin_i64_t){RS_ADMIN_SET, 2000};
        p.ends_at = (rs_admin_i64_t){RS_ADMIN_SET, 2000};
        expect_invalid(&p, true, "--ends-at must be after --starts-at");
        p = ok;
        p.name = NULL;
        expect_invalid(&p, true, "missing --name");
        p = (rs_admin_program_t){0};
        expect_invalid(&p, false, "nothing to update");
        assert_false(rs_admin_program_key_valid("-lead"));
        assert_false(rs_admin_program_key_valid("has space"));
        assert_true(rs_admin_program_key_valid("a.b_c-9"));
        /* The library refuses what the validator refuses, before the DB. */
        p = ok;
        p.currency = "usd";
        assert_false(rs_admin_program_create(&f->a, "k", &p, err, sizeof(err)));
        assert_int_equal(rs_it_count(f->pg, "SELECT count(*) FROM rs_programs"), 0);
}

static void test_program_update(void **state)
{
        rs_it_admin_t *f = *state;
        char err[512];
        rs_admin_program_t p = {.name = "Shop",
                                .currency = "USD",
                                .reward_fixed = {RS_ADMIN_SET, 1000},
                                .reward_cap = {RS_ADMIN_SET, 10},
                                .max_rewarded = {RS_ADMIN_SET, 3},
                                .starts_at = {RS_ADMIN_SET, INT64_C(1767225600000)}};
        assert_true(rs_admin_program_create(&f->a, "shop", &p, err, sizeof(err)));
        /* Only what is given changes; `none` clears. */
        rs_admin_program_t u = {.name = "Shop 2",
                                .reward_percent = {RS_ADMIN_SET, 500},
                                .reward_cap = {RS_ADMIN_CLEAR, 0},
                                .max_rewarded = {RS_ADMIN_CLEAR, 0}};
        assert_true(rs_admin_program_update(&f->a, "shop", &u, err, sizeof(err)));
        assert_sql(
            f,
            "SELECT concat_ws(',', name, currency, reward_kind, reward_value,"
            " coalesce(reward_cap::text, 'null'), coalesce(max_rewarded::text, 'null'),"
            " rs_ts_to_ms(starts_at), window_days) FROM rs_programs",
            "Shop 2,USD,percent,500,null,null,1767225600000,30");
        /* Cross-field with the stored start: a readable error, no change. */
        u = (rs_admin_program_t){.ends_at = {RS_ADMIN_SET, INT64_C(1767225600000) - 1}};
        assert_false(rs_admin_program_update(&f->a, "shop", &u, err, sizeof(err)));
        assert_string_equal(err, "program shop: --ends-at must be after --starts-at");
        assert_sql(f, "SELECT ends_at IS NULL FROM rs_programs", "t");
        u.ends_at.v = INT64_C(1767225600000) + 1;
        assert_true(rs_admin_program_update(&f->a, "shop", &u, err, sizeof(err)));
        u = (rs_admin_program_t){.name = "x"};
        assert_false(rs_admin_program_update(&f->a, "nope", &u, err, sizeof(err)));
        assert_string_equal(err, "program nope not found");
        /* Through the CLI: `none` clears starts-at. */
        char *out, *e;
        assert_int_equal(rs_it_admin_cli(NULL, &out, &e, "program", "update", "shop",
                                         "--starts-at", "none", "--goal", "7", NULL),
                         0);
        assert_string_equal(out, "program shop updated\n");
        free(out);
        free(e);
        assert_sql(f,
                   "SELECT (starts_at IS NULL)::text || referral_goal FROM rs_programs",
                   "true7");
}

static void test_program_status(void **state)
{
        rs_it_admin_t *f = *state;
        char err[512];
        bool changed;
        rs_it_admin_program(f, "p");
        assert_true(rs_admin_program_set_status(&f->a, "p", RS_ADMIN_PAUSE, &changed, err,
                                                sizeof(err)));
        assert_true(changed);
        assert_sql(f, "SELECT status FROM rs_programs", "paused");
        assert_true(rs_admin_program_set_status(&f->a, "p", RS_ADMIN_PAUSE, &changed, err,
                                                sizeof(err)));
        assert_false(changed);
        assert_true(rs_admin_program_set_status(&f->a, "p", RS_ADMIN_RESUME, &changed,
                                                err, sizeof(err)));
        assert_sql(f, "SELECT status FROM rs_programs", "active");
        assert_true(rs_admin_program_set_status(&f->a, "p", RS_ADMIN_END, &changed, err,
                                                sizeof(err)));
        assert_sql(f, "SELECT status FROM rs_programs", "ended");
        assert_false(rs_admin_program_set_status(&f->a, "p", RS_ADMIN_RESUME, &changed,
                                                 err, sizeof(err)));
        assert_string_equal(err, "cannot resume program p: it is ended, which is final");
        assert_false(rs_admin_program_set_status(&f->a, "p", RS_ADMIN_PAUSE, &changed,
                                                 err, sizeof(err)));
        assert_sql(f, "SELECT status FROM rs_programs", "ended");
        assert_false(rs_admin_program_set_status(&f->a, "nope", RS_ADMIN_PAUSE, &changed,
                                                 err, sizeof(err)));
        assert_string_equal(err, "program nope not found");
}

/* ---------------------------------------------------------------- codes */

static void test_code_issue_generated(void **state)
{
        rs_it_admin_t *f = *state;
        char code[RS_CODE_MAX_LEN + 1], err[512];
        rs_it_admin_program(f, "p");
        for (int i = 0; i < 20; i++) {
                rs_it_admin_issue(f, "p", "alice", NULL, code);
                assert_int_equal(strlen(code), RS_CODE_GENERATED_LEN);
                assert_int_equal(strspn(code, rs_crockford_alphabet),
                                 RS_CODE_GENERATED_LEN);
        }
        assert_int_equal(rs_it_count(f->pg,
                                     "SELECT count(DISTINCT code) FROM rs_codes WHERE"
                                     " owner_user_id = 'alice' AND status = 'active'"
                                     " AND NOT vanity AND max_uses IS NULL"),
                         20);
        /* Limits decide the initial status; 0 uses means none, not unlimited. */
        rs_admin_code_limits_t l = {.max_uses = {RS_ADMIN_SET, 0}};
        assert_true(
            rs_admin_code_issue(&f->a, "p", "bob", NULL, &l, code, err, sizeof(err)));
        char *st = rs_it_sqlf(
            f->pg, "SELECT status || max_uses FROM rs_codes WHERE code = '%s'", code);
        assert_string_equal(st, "exhausted0");
        free(st);
        l = (rs_admin_code_limits_t){.expires_at = {RS_ADMIN_SET, 1000}};
        assert_true(
            rs_admin_code_issue(&f->a, "p", "bob", NULL, &l, code, err, sizeof(err)));
        st = rs_it_sqlf(f->pg, "SELECT status FROM rs_codes WHERE code = '%s'", code);
        assert_string_equal(st, "expired");
        free(st);
        /* Unknown program: error; paused program: issued with a warning. */
        assert_false(
            rs_admin_code_issue(&f->a, "nope", "bob", NULL, &l, code, err, sizeof(err)));
        assert_string_equal(err, "program nope not found");
        bool changed;
        assert_true(rs_admin_program_set_status(&f->a, "p", RS_ADMIN_PAUSE, &changed, err,
                                                sizeof(err)));
        rs_buf_reset(&f->warnings);
        rs_it_admin_issue(f, "p", "carol", NULL, code);
        assert_contains(f->warnings.data, "program p is paused");
}

static void test_code_vanity(void **state)
{
        rs_it_admin_t *f = *state;
        char code[RS_CODE_MAX_LEN + 1], err[512];
        rs_admin_code_limits_t none = {{0}, {0}};
        rs_it_admin_program(f, "p");
        rs_it_admin_issue(f, "p", "alice", "  summer-Sale_1 \t", code);
        assert_string_equal(code, "SUMMER-SALE_1");
        assert_sql(f, "SELECT code || vanity::text FROM rs_codes", "SUMMER-SALE_1true");
        /* Unique case-insensitively: stored upper-case. */
        assert_false(rs_admin_code_issue(&f->a, "p", "bob", "summer-sale_1", &none, code,
                                         err, sizeof(err)));
        assert_string_equal(err, "code SUMMER-SALE_1 is already taken");
        const char *bad[] = {"abc", "a b c d", "ABCD!", "ÄBCDE",
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456"}; /* 33 */
        for (size_t i = 0; i < RS_ARRAY_SIZE(bad); i++) {
                assert_false(rs_admin_code_issue(&f->a, "p", "bob", bad[i], &none, code,
                                                 err, sizeof(err)));
                assert_contains(err, "4-32 characters");
        }
        rs_it_admin_issue(f, "p", "bob", "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
                          code); /* 32 */
        assert_int_equal(rs_it_count(f->pg, "SELECT count(*) FROM rs_codes"), 2);
        /* CLI: invalid shape is a usage error, taken is a runtime failure. */
        char *out, *e;
        assert_int_equal(rs_it_admin_cli(NULL, &out, &e, "codes", "issue", "--program",
                                         "p", "--user", "u", "--code", "x!", NULL),
                         2);
        assert_contains(e, "--code");
        free(out);
        free(e);
        assert_int_equal(rs_it_admin_cli(NULL, &out, &e, "codes", "issue", "--program",
                                         "p", "--user", "u", "--code", "Summer-sale_1",
                                         NULL),
                         1);
        assert_contains(e, "already taken");
        assert_string_equal(out, "");
        free(out);
        free(e);
}

static void set_status(rs_it_admin_t *f, const char *code, rs_admin_action_t action,
                       bool expect_ok, bool expect_changed, const char *expect_status)
{
        char err[512], status[16] = "";
        bool changed = false;
        bool ok = rs_admin_code_set_status(&f->a, code, action, &changed, status,
                                           sizeof(status), err, sizeof(err));
        if (ok != expect_ok)
                fail_msg("action %d on %s: ok=%d (%s)", action, code, ok,
                         ok ? status : err);
        if (ok)
                assert_int_equal(changed, expect_changed);
        char *st = rs_it_sqlf(
            f->pg, "SELECT status FROM rs_codes WHERE code = upper(trim('%s'))", code);
        assert_string_equal(st, expect_status);
        free(st);
}

static void test_code_transitions(void **state)
{
        rs_it_admin_t *f = *state;
        char code[RS_CODE_MAX_LEN + 1], err[512], status[16];
        bool changed;
        rs_it_admin_program(f, "p");
        rs_it_admin_issue(f, "p", "alice", "ALICE", code);
        set_status(f, "alice", RS_ADMIN_PAUSE, true, true, "paused");
        set_status(f, "ALICE", RS_ADMIN_PAUSE, true, false, "paused");
        set_status(f, " alice ", RS_ADMIN_RESUME, true, true, "active");
        set_status(f, "alice", RS_ADMIN_RESUME, true, false, "active");
        set_status(f, "alice", RS_ADMIN_REVOKE, true, true, "revoked");
        set_status(f, "alice", RS_ADMIN_REVOKE, true, false, "revoked");
        set_status(f, "alice", RS_ADMIN_RESUME, false, false, "revoked");
        set_status(f, "alice", RS_ADMIN_PAUSE, false, false, "revoked");
        /* expired/exhausted: not pausable, not resumable (use update). */
        rs_it_admin_issue(f, "p", "bob", "BOBB", code);
        exec(
            f,
            "UPDATE rs_codes SET status = 'exhausted', max_uses = 0 WHERE code = 'BOBB'");
        set_status(f, "bobb", RS_ADMIN_RESUME, false, false, "exhausted");
        set_status(f, "bobb", RS_ADMIN_PAUSE, false, false, "exhausted");
        set_status(f, "bobb", RS_ADMIN_REVOKE, true, true, "revoked");
        /* Resuming a code whose limits passed while paused derives them. */
        rs_it_admin_issue(f, "p", "carol", "CARO", code);
        set_status(f, "caro", RS_ADMIN_PAUSE, true, true, "paused");
        exec(f, "UPDATE rs_codes SET expires_at = now() - interval '1 hour'"
                " WHERE code = 'CARO'");
        set_status(f, "caro", RS_ADMIN_RESUME, true, true, "expired");
        assert_false(rs_admin_code_set_status(&f->a, "NOPE", RS_ADMIN_PAUSE, &changed,
                                              status, sizeof(status), err, sizeof(err)));
        assert_string_equal(err, "code NOPE not found");
        assert_false(rs_admin_code_set_status(&f->a, "ALICE", RS_ADMIN_END, &changed,
                                              status, sizeof(status), err, sizeof(err)));
}

static void update(rs_it_admin_t *f, const char *code, rs_admin_i64_t max,
                   rs_admin_i64_t exp, const char *expect_status)
{
        char err[512], status[16];
        rs_admin_code_limits_t l = {.max_uses = max, .expires_at = exp};
        if (!rs_admin_code_update(&f->a, code, &l, status, sizeof(status), err,
                                  sizeof(err)))
                fail_msg("update %s: %s", code, err);
        assert_string_equal(status, expect_status);
        char *st = rs_it_sqlf(
            f->pg, "SELECT status FROM rs_codes WHERE code = upper('%s')", code);
        assert_string_equal(st, expect_status);
        free(st);
}

static void test_code_update_derives_status(void **state)
{
        rs_it_admin_t *f = *state;
        char code[RS_CODE_MAX_LEN + 1], err[512], status[16];
        const rs_admin_i64_t unset = {RS_ADMIN_UNSET, 0}, clear = {RS_ADMIN_CLEAR, 0};
        const int64_t past = rs_now_ms() - 3600000, future = rs_now_ms() + 3600000;
        rs_it_admin_program(f, "p");
        rs_it_admin_issue(f, "p", "alice", "CODE", code);
        exec(f, "UPDATE rs_codes SET uses_count = 5, max_uses = 5, status = 'exhausted'"
                " WHERE code = 'CODE'");
        update(f, "code", (rs_admin_i64_t){RS_ADMIN_SET, 6}, unset, "active");
        update(f, "CODE", (rs_admin_i64_t){RS_ADMIN_SET, 5}, unset, "exhausted");
        update(f, "CODE", clear, unset, "active");
        assert_sql(f, "SELECT max_uses IS NULL FROM rs_codes", "t");
        /* Below the uses made: clamped to uses_count (the schema's check),
         * with a warning, and exhausted. */
        rs_buf_reset(&f->warnings);
        update(f, "CODE", (rs_admin_i64_t){RS_ADMIN_SET, 2}, unset, "exhausted");
        assert_sql(f, "SELECT max_uses FROM rs_codes", "5");
        assert_contains(f->warnings.data, "used 5 times");
        update(f, "CODE", clear, (rs_admin_i64_t){RS_ADMIN_SET, past}, "expired");
        update(f, "CODE", unset, (rs_admin_i64_t){RS_ADMIN_SET, future}, "active");
        update(f, "CODE", unset, clear, "active");
        assert_sql(f, "SELECT expires_at IS NULL FROM rs_codes", "t");
        /* Paused stays paused whatever the limits; revoked cannot change. */
        set_status(f, "CODE", RS_ADMIN_PAUSE, true, true, "paused");
        update(f, "CODE", (rs_admin_i64_t){RS_ADMIN_SET, 5}, unset, "paused");
        set_status(f, "CODE", RS_ADMIN_REVOKE, true, true, "revoked");
        rs_admin_code_limits_t l = {.max_uses = {RS_ADMIN_SET, 100}};
        assert_false(rs_admin_code_update(&f->a, "CODE", &l, status, sizeof(status), err,
                                          sizeof(err)));
        assert_string_equal(err,
                            "cannot update code CODE: it is revoked, which is final");
        assert_sql(f, "SELECT max_uses FROM rs_codes", "5");
        assert_false(rs_admin_code_update(&f->a, "NOPE", &l, status, sizeof(status), err,
                                          sizeof(err)));
        assert_string_equal(err, "code NOPE not found");
}

/* ---------------------------------------------------------------- cache */

static void test_cache_invalidation(void **state)
{
        rs_it_admin_t *f = *state;
        char code[RS_CODE_MAX_LEN + 1], err[512], status[16];
        bool changed;
        rs_it_admin_program(f, "p");
        /* Creation deletes a negative entry left by an earlier lookup. */
        rs_it_redis_set(RS_CACHE_KEY_PREFIX "VIPCODE", "-");
        rs_it_admin_issue(f, "p", "alice", "vipcode", code);
        assert_false(rs_it_redis_exists(RS_CACHE_KEY_PREFIX "VIPCODE"));
        const rs_admin_action_t actions[] = {RS_ADMIN_PAUSE, RS_ADMIN_RESUME,
                                             RS_ADMIN_REVOKE};
        for (size_t i = 0; i < RS_ARRAY_SIZE(actions); i++) {
                rs_it_redis_set(RS_CACHE_KEY_PREFIX "VIPCODE", "1\talice");
                assert_true(rs_admin_code_set_status(&f->a, "VIPCODE", actions[i],
                                                     &changed, status, sizeof(status),
                                                     err, sizeof(err)));
                assert_false(rs_it_redis_exists(RS_CACHE_KEY_PREFIX "VIPCODE"));
        }
        rs_it_admin_issue(f, "p", "bob", "BOBCODE", code);
        rs_it_redis_set(RS_CACHE_KEY_PREFIX "BOBCODE", "1\tbob");
        rs_admin_code_limits_t l = {.max_uses = {RS_ADMIN_SET, 3}};
        assert_true(rs_admin_code_update(&f->a, "bobcode", &l, status, sizeof(status),
                                         err, sizeof(err)));
        assert_false(rs_it_redis_exists(RS_CACHE_KEY_PREFIX "BOBCODE"));
        /* Through the CLI too (its own cache connection). */
        rs_it_redis_set(RS_CACHE_KEY_PREFIX "BOBCODE", "1\tbob");
        char *out, *e;
        assert_int_equal(
            rs_it_admin_cli(NULL, &out, &e, "codes", "pause", "bobcode", NULL), 0);
        assert_string_equal(out, "code BOBCODE is now paused\n");
        assert_false(rs_it_redis_exists(RS_CACHE_KEY_PREFIX "BOBCODE"));
        free(out);
        free(e);
}

static void test_cache_unreachable_warns(void **state)
{
        rs_it_admin_t *f = *state;
        char code[RS_CODE_MAX_LEN + 1], err[512], status[16];
        bool changed;
        rs_it_admin_program(f, "p");
        /* Nothing listens on port 1: the change is saved, with a warning. */
        rs_cache_t *down =
            rs_cache_new("redis://127.0.0.1:1/0", 600000, 5000, 200, err, sizeof(err));
        assert_non_null(down);
        f->a.cache = down;
        rs_it_admin_issue(f, "p", "alice", "DOWNCODE", code);
        assert_contains(f->warnings.data, "may be stale for up to 600 s");
        rs_buf_reset(&f->warnings);
        assert_true(rs_admin_code_set_status(&f->a, "DOWNCODE", RS_ADMIN_REVOKE, &changed,
                                             status, sizeof(status), err, sizeof(err)));
        assert_contains(f->warnings.data, "code DOWNCODE may be stale");
        assert_sql(f, "SELECT status FROM rs_codes", "revoked");
        f->a.cache = f->cache;
        rs_cache_destroy(down);
        /* The CLI exits 0 and says so on stderr. */
        char *out, *e;
        int rc =
            rs_it_admin_cli(NULL, &out, &e, "codes", "issue", "--program", "p", "--user",
                            "bob", "--redis-url", "redis://127.0.0.1:1/0", NULL);
        assert_int_equal(rc, 0);
        assert_int_equal(strlen(out), RS_CODE_GENERATED_LEN + 1);
        assert_contains(e, "warning:");
        assert_contains(e, "stale");
        free(out);
        free(e);
}

/* ---------------------------------------------------------------- CLI */

/* Checks a CLI run: exit code, and substrings of stdout/stderr (NULL: any). */
static void expect_cli(int rc, const char *want_out, const char *want_err, int got_rc,
                       char *out, char *err)
{
        if (got_rc != rc)
                fail_msg("exit %d, want %d; stdout: %s; stderr: %s", got_rc, rc, out,
                         err);
        if (want_out)
                assert_contains(out, want_out);
        if (want_err)
                assert_contains(err, want_err);
        free(out);
        free(err);
}

#define CLI(rc, want_out, want_err, ...)                                                 \
        do {                                                                             \
                char *o_, *e_;                                                           \
                int r_ = rs_it_admin_cli(NULL, &o_, &e_, __VA_ARGS__, NULL);             \
                expect_cli(rc, want_out, want_err, r_, o_, e_);                          \
        } while (0)

static void test_cli_programs(void **state)
{
        rs_it_admin_t *f = *state;
        CLI(0, "default\n", NULL, "program", "create", "--key", "default", "--name",
            "Default", "--currency", "USD", "--reward-fixed", "1000", "--referee-reward",
            "500", "--goal", "3");
        CLI(1, NULL, "program default already exists", "program", "create", "--key",
            "default", "--name", "D", "--currency", "USD", "--reward-fixed", "1");
        CLI(2, NULL, "--currency", "program", "create", "--key", "x", "--name", "X",
            "--currency", "eur", "--reward-fixed", "1");
        CLI(2, NULL, "--reward-percent must be 0..10000", "program", "create", "--key",
            "x", "--name", "X", "--currency", "EUR", "--reward-percent", "20000");
        CLI(2, NULL, "--window-days: 'ten' is not an integer", "program", "create",
            "--key", "x", "--name", "X", "--currency", "EUR", "--reward-fixed", "1",
            "--window-days", "ten");
        CLI(2, NULL, "--starts-at: 'yesterday' is not an RFC 3339 time", "program",
            "create", "--key", "x", "--name", "X", "--currency", "EUR", "--reward-fixed",
            "1", "--starts-at", "yesterday");
        CLI(2, NULL, "missing --key", "program", "create", "--name", "X");
        CLI(2, NULL, "unrecognized", "program", "create", "--bogus", "1");
        CLI(2, NULL, "missing KEY", "program", "pause");
        CLI(2, NULL, "unexpected argument 'extra'", "program", "pause", "default",
            "extra");
        CLI(0, "program default is now paused", NULL, "program", "pause", "default");
        CLI(0, "program default is already paused", NULL, "program", "pause", "default");
        CLI(0, "program default is now ended", NULL, "program", "end", "default");
        CLI(1, NULL, "which is final", "program", "resume", "default");
        CLI(1, NULL, "program nope not found", "program", "show", "nope");
        CLI(0, "\"referee_reward\": 500", NULL, "program", "show", "default", "--json");
        CLI(0, "goal             3 rewarded referrals", NULL, "program", "show",
            "default");
        CLI(0, "default", NULL, "program", "list");
        CLI(0, "\"key\": \"default\"", NULL, "program", "list", "--json");
        CLI(0, "Usage: refstream admin program create", NULL, "program", "create",
            "--help");
        CLI(0, "refstream admin codes backfill", NULL, "--help");
        CLI(2, NULL, "unknown command 'frobnicate'", "frobnicate");
        CLI(2, NULL, "missing command", "codes");
        assert_sql(f, "SELECT status FROM rs_programs", "ended");
}

static void test_cli_codes_and_reports(void **state)
{
        rs_it_admin_t *f = *state;
        rs_it_admin_program(f, "p");
        CLI(0, "VANITY1\n", NULL, "codes", "issue", "--program", "p", "--user", "alice",
            "--code", "vanity1", "--max-uses", "2", "--expires-at",
            "2099-01-01T00:00:00Z");
        CLI(0, "code VANITY1 updated, status exhausted", NULL, "codes", "update",
            "vanity1", "--max-uses", "0");
        CLI(0, "code VANITY1 updated, status active", NULL, "codes", "update", "VANITY1",
            "--max-uses", "none", "--expires-at", "none");
        CLI(2, NULL, "nothing to update", "codes", "update", "VANITY1");
        CLI(2, NULL, "--max-uses: 'many' is not an integer", "codes", "update", "VANITY1",
            "--max-uses", "many");
        CLI(2, NULL, "--max-uses must be 0..2147483647", "codes", "issue", "--program",
            "p", "--user", "u", "--max-uses", "-1");
        CLI(2, NULL, "--expires-at: 'tomorrow' is not an RFC 3339 time", "codes", "issue",
            "--program", "p", "--user", "u", "--expires-at", "tomorrow");
        CLI(2, NULL, "--ends-at: 'soon' is not an RFC 3339 time", "program", "update",
            "p", "--ends-at", "soon");
        CLI(1, NULL, "code NOPE1 not found", "codes", "revoke", "nope1");
        CLI(0, "\"owner_user_id\": \"alice\"", NULL, "codes", "show", "vanity1",
            "--json");
        CLI(0, "uses         0 (unlimited)", NULL, "codes", "show", "vanity1");
        CLI(2, NULL, "missing --program", "codes", "issue", "--user", "u");
        CLI(2, NULL, "give exactly one of --user and --program", "stats", "--user", "u",
            "--program", "p");
        CLI(2, NULL, "give exactly one of --user and --program", "stats");
        CLI(1, NULL, "program nope not found", "stats", "--program", "nope");
        CLI(0, "\"user_id\": \"alice\"", NULL, "stats", "--user", "alice", "--json");
        CLI(0, "VANITY1", NULL, "stats", "--user", "alice");
        CLI(0, "goal 0 of 5", NULL, "stats", "--user", "alice");
        CLI(0, "\"total\": 0", NULL, "referrals", "--user", "alice", "--json");
        CLI(2, NULL, "--limit must be", "referrals", "--user", "alice", "--limit", "0");
        CLI(2, NULL, "missing --user", "referrals");
        CLI(2, NULL, "--user: a user id is 1-128 bytes", "stats", "--user", "");
        /* A database that cannot be reached is a runtime failure. */
        CLI(1, NULL, "cannot connect to Postgres", "program", "list", "--database-url",
            "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2");
        assert_sql(f, "SELECT status FROM rs_codes", "active");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_program_create_defaults, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_program_validation, setup, teardown),
            cmocka_unit_test_setup_teardown(test_program_update, setup, teardown),
            cmocka_unit_test_setup_teardown(test_program_status, setup, teardown),
            cmocka_unit_test_setup_teardown(test_code_issue_generated, setup, teardown),
            cmocka_unit_test_setup_teardown(test_code_vanity, setup, teardown),
            cmocka_unit_test_setup_teardown(test_code_transitions, setup, teardown),
            cmocka_unit_test_setup_teardown(test_code_update_derives_status, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_cache_invalidation, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cache_unreachable_warns, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_cli_programs, setup, teardown),
            cmocka_unit_test_setup_teardown(test_cli_codes_and_reports, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
