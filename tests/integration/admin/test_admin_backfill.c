/* `refstream admin codes backfill`: output contract, idempotence, existing
 * codes, input validation, and two concurrent backfills of one program.
 * Speed is measured by hand (see the commit notes), never asserted here. */
#include "support_admin.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define DB "rs_it_admin_backfill"

static int setup(void **state)
{
        rs_it_admin_t *f = rs_it_admin_new(DB);
        rs_it_admin_program(f, "p");
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        rs_it_admin_free(*state);
        return 0;
}

static void exec(rs_it_admin_t *f, const char *sql)
{
        free(rs_it_sql(f->pg, sql));
}

static bool generated_shape(const char *code)
{
        return strlen(code) == RS_CODE_GENERATED_LEN &&
               strspn(code, rs_crockford_alphabet) == RS_CODE_GENERATED_LEN;
}

/* user-1 .. user-n (strings owned by the returned arena). */
static const char **make_users(rs_arena_t *arena, size_t n)
{
        const char **users = rs_arena_alloc(arena, n * sizeof(char *));
        for (size_t i = 0; i < n; i++)
                users[i] = rs_arena_printf(arena, "user-%zu", i + 1);
        return users;
}

static void test_backfill_cli_idempotent(void **state)
{
        rs_it_admin_t *f = *state;
        rs_buf_t in;
        rs_buf_init(&in);
        for (int i = 1; i <= 1000; i++)
                rs_buf_printf(&in, "%s u%d %s\n", i % 7 ? "" : "  ", i,
                              i % 5 ? "" : "\r");
        rs_buf_puts(&in, "\n   \nu1\nu500\n"); /* blanks skipped, duplicates kept */
        char *out1, *err1, *out2, *err2;
        assert_int_equal(rs_it_admin_cli(in.data, &out1, &err1, "codes", "backfill",
                                         "--program", "p", NULL),
                         0);
        assert_int_equal(rs_it_count(f->pg, "SELECT count(*) FROM rs_codes"), 1000);
        assert_int_equal(rs_it_admin_cli(in.data, &out2, &err2, "codes", "backfill",
                                         "--program", "p", NULL),
                         0);
        assert_string_equal(out1, out2);
        assert_non_null(strstr(err1, "1000 new codes"));
        assert_non_null(strstr(err2, "0 new codes, 1000 existing"));
        assert_int_equal(rs_it_count(f->pg, "SELECT count(*) FROM rs_codes"), 1000);
        /* One line per input line, in input order, USER<TAB>CODE. */
        char *save = NULL, *line = strtok_r(out1, "\n", &save);
        char first_code[16] = "", u500[16] = "";
        for (int i = 1; i <= 1002; i++, line = strtok_r(NULL, "\n", &save)) {
                char want[16];
                snprintf(want, sizeof(want), "u%d\t",
                         i <= 1000 ? i : (i == 1001 ? 1 : 500));
                assert_non_null(line);
                assert_memory_equal(line, want, strlen(want));
                const char *code = line + strlen(want);
                assert_true(generated_shape(code));
                if (i == 1)
                        rs_strlcpy(first_code, code, sizeof(first_code));
                if (i == 500)
                        rs_strlcpy(u500, code, sizeof(u500));
                if (i == 1001)
                        assert_string_equal(code, first_code);
                if (i == 1002)
                        assert_string_equal(code, u500);
        }
        assert_null(strtok_r(NULL, "\n", &save));
        char *owner = rs_it_sqlf(
            f->pg, "SELECT owner_user_id FROM rs_codes WHERE code = '%s'", first_code);
        assert_string_equal(owner, "u1");
        free(owner);
        free(out1);
        free(err1);
        free(out2);
        free(err2);
        rs_buf_free(&in);
}

static void test_backfill_existing_codes(void **state)
{
        rs_it_admin_t *f = *state;
        const size_t n = 20000;
        /* i%10==0: PRE-i (oldest) and, i%100==0, a newer NEW-i; i%10==5: an
         * old revoked REV-i and a newer ACT-i; user-7: only a revoked code. */
        exec(f,
             "INSERT INTO rs_codes (code, program_id, owner_user_id, status, created_at)"
             " SELECT v.code, (SELECT id FROM rs_programs WHERE key = 'p'), 'user-' || g,"
             " v.status, now() - v.age"
             " FROM generate_series(1, 20000) g, LATERAL (VALUES"
             " ('PRE-' || g, 'active', interval '2 days', g % 10 = 0),"
             " ('NEW-' || g, 'active', interval '1 day', g % 100 = 0),"
             " ('REV-' || g, 'revoked', interval '2 days', g % 10 = 5),"
             " ('ACT-' || g, 'paused', interval '1 day', g % 10 = 5),"
             " ('ONLYREV-' || g, 'revoked', interval '1 day', g = 7))"
             " AS v(code, status, age, wanted) WHERE v.wanted");
        long long before = rs_it_count(f->pg, "SELECT count(*) FROM rs_codes");
        rs_arena_t arena;
        rs_arena_init(&arena, 1 << 16);
        const char **users = make_users(&arena, n);
        char(*codes)[RS_CODE_MAX_LEN + 1] = rs_calloc(n, sizeof(*codes));
        rs_admin_backfill_stats_t st;
        char err[512];
        assert_true(
            rs_admin_backfill(&f->a, "p", users, n, codes, &st, err, sizeof(err)));
        assert_int_equal(st.users, n);
        assert_int_equal(st.existing, 2000 + 2000 + 1);
        assert_int_equal(st.created, n - st.existing);
        assert_int_equal(st.revoked_only, 1);
        for (size_t i = 1; i <= n; i++) {
                char want[32] = "";
                if (i % 10 == 0)
                        snprintf(want, sizeof(want), "PRE-%zu", i);
                else if (i % 10 == 5)
                        snprintf(want, sizeof(want), "ACT-%zu", i);
                else if (i == 7)
                        snprintf(want, sizeof(want), "ONLYREV-%zu", i);
                if (want[0])
                        assert_string_equal(codes[i - 1], want);
                else if (!generated_shape(codes[i - 1]))
                        fail_msg("user-%zu got '%s'", i, codes[i - 1]);
        }
        assert_int_equal(rs_it_count(f->pg, "SELECT count(*) FROM rs_codes"),
                         before + (long long)st.created);
        /* Every user without a code got exactly one. */
        assert_int_equal(rs_it_count(f->pg,
                                     "SELECT count(*) FROM (SELECT owner_user_id FROM"
                                     " rs_codes GROUP BY 1 HAVING count(*) > 1) x"),
                         200 + 2000);
        /* Second run: nothing new, same answer. */
        char(*again)[RS_CODE_MAX_LEN + 1] = rs_calloc(n, sizeof(*again));
        assert_true(
            rs_admin_backfill(&f->a, "p", users, n, again, &st, err, sizeof(err)));
        assert_int_equal(st.created, 0);
        assert_memory_equal(codes, again, n * sizeof(*codes));
        free(again);
        free(codes);
        rs_arena_destroy(&arena);
}

static void test_backfill_rejects_bad_input(void **state)
{
        rs_it_admin_t *f = *state;
        char long_id[200], input[512], *out, *err;
        memset(long_id, 'x', 129);
        long_id[129] = '\0';
        snprintf(input, sizeof(input), "a\nb\n%s\nc\n", long_id);
        assert_int_equal(rs_it_admin_cli(input, &out, &err, "codes", "backfill",
                                         "--program", "p", NULL),
                         2);
        assert_string_equal(out, "");
        assert_non_null(strstr(err, "stdin line 3: a user id is 1-128 bytes (got 129)"));
        free(out);
        free(err);
        assert_int_equal(rs_it_admin_cli("a\tb\n", &out, &err, "codes", "backfill",
                                         "--program", "p", NULL),
                         2);
        assert_non_null(strstr(err, "control character"));
        free(out);
        free(err);
        assert_int_equal(rs_it_count(f->pg, "SELECT count(*) FROM rs_codes"), 0);
        /* 128 bytes is fine; an unknown program is a runtime failure. */
        long_id[128] = '\0';
        assert_int_equal(rs_it_admin_cli(long_id, &out, &err, "codes", "backfill",
                                         "--program", "nope", NULL),
                         1);
        assert_non_null(strstr(err, "program nope not found"));
        assert_string_equal(out, "");
        free(out);
        free(err);
        assert_int_equal(rs_it_admin_cli(long_id, &out, &err, "codes", "backfill",
                                         "--program", "p", NULL),
                         0);
        assert_int_equal(strlen(out), 128 + 1 + RS_CODE_GENERATED_LEN + 1);
        free(out);
        free(err);
        assert_int_equal(rs_it_admin_cli("", &out, &err, "codes", "backfill", NULL), 2);
        assert_non_null(strstr(err, "missing --program"));
        free(out);
        free(err);
}

typedef struct worker {
        const char *url;
        const char **users;
        size_t n;
        char (*codes)[RS_CODE_MAX_LEN + 1];
        bool ok;
        char err[512];
} worker_t;

static void *backfill_thread(void *arg)
{
        worker_t *w = arg;
        rs_pg_t *pg = rs_it_pg(w->url); /* a connection per thread */
        rs_admin_t a = {.pg = pg};
        rs_admin_backfill_stats_t st;
        w->ok = rs_admin_backfill(&a, "p", w->users, w->n, w->codes, &st, w->err,
                                  sizeof(w->err));
        rs_pg_destroy(pg);
        return NULL;
}

static void test_backfill_concurrent(void **state)
{
        rs_it_admin_t *f = *state;
        const size_t n = 20000;
        rs_arena_t arena;
        rs_arena_init(&arena, 1 << 16);
        const char **users = make_users(&arena, n);
        /* The second worker goes backwards, so their chunks overlap in
         * different orders. */
        const char **reversed = rs_malloc(n * sizeof(char *));
        for (size_t i = 0; i < n; i++)
                reversed[i] = users[n - 1 - i];
        worker_t w[2] = {{.url = f->url, .users = users, .n = n},
                         {.url = f->url, .users = reversed, .n = n}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++) {
                w[i].codes = rs_calloc(n, sizeof(*w[i].codes));
                assert_int_equal(pthread_create(&t[i], NULL, backfill_thread, &w[i]), 0);
        }
        for (int i = 0; i < 2; i++) {
                pthread_join(t[i], NULL);
                if (!w[i].ok)
                        fail_msg("worker %d: %s", i, w[i].err);
        }
        assert_int_equal(rs_it_count(f->pg, "SELECT count(*) FROM rs_codes"),
                         (long long)n);
        assert_int_equal(
            rs_it_count(f->pg, "SELECT count(DISTINCT owner_user_id) FROM rs_codes"),
            (long long)n);
        for (size_t i = 0; i < n; i++)
                assert_string_equal(w[0].codes[i], w[1].codes[n - 1 - i]);
        for (int i = 0; i < 2; i++)
                free(w[i].codes);
        free(reversed);
        rs_arena_destroy(&arena);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_backfill_cli_idempotent, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_backfill_existing_codes, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_backfill_rejects_bad_input, setup,
                                            teardown),
            cmocka_unit_test_setup_teardown(test_backfill_concurrent, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
