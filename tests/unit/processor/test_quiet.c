/* The first-level filter's memory (consumer/processor/rs_quiet.h). */
#include "rs_quiet.h"
#include "rs_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>

static void remembers_and_replaces(void **state)
{
        rs_quiet_t *q = rs_quiet_new(16);
        assert_int_equal(rs_quiet_get(q, "ann"), RS_TS_NONE);
        rs_quiet_put(q, "ann", 100, NULL);
        rs_quiet_put(q, "bob", 200, NULL);
        assert_int_equal(rs_quiet_get(q, "ann"), 100);
        assert_int_equal(rs_quiet_get(q, "bob"), 200);
        assert_int_equal(rs_quiet_get(q, "an"), RS_TS_NONE);
        rs_quiet_put(q, "ann", RS_QUIET_NOT, NULL); /* replaced, not added */
        assert_int_equal(rs_quiet_get(q, "ann"), RS_QUIET_NOT);
        assert_int_equal(rs_quiet_count(q), 2);
        rs_quiet_destroy(q);
}

static void clear_starts_a_generation(void **state)
{
        rs_quiet_t *q = rs_quiet_new(16);
        rs_quiet_put(q, "ann", 100, "rita");
        uint64_t gen = rs_quiet_gen(q);
        rs_quiet_clear(q);
        assert_int_not_equal(rs_quiet_gen(q), gen);
        assert_int_equal(rs_quiet_get(q, "ann"), RS_TS_NONE);
        const char *referrer;
        assert_false(rs_quiet_referrer(q, "ann", &referrer));
        assert_int_equal(rs_quiet_count(q), 0);
        rs_quiet_put(q, "bob", 100, "sam"); /* names interned again */
        assert_true(rs_quiet_referrer(q, "bob", &referrer));
        assert_string_equal(referrer, "sam");
        rs_quiet_destroy(q);
}

/* A user's referrer: one is kept (the ids interned), none is known as none,
 * NULL (several, or not looked at) is not known; a new entry replaces it. */
static void referrers(void **state)
{
        rs_quiet_t *q = rs_quiet_new(16);
        const char *referrer = "unset";
        rs_quiet_put(q, "ann", RS_QUIET_NOT, "rita");
        rs_quiet_put(q, "bob", RS_QUIET_NOT, "rita");
        rs_quiet_put(q, "cid", 100, RS_QUIET_NO_REFERRER);
        rs_quiet_put(q, "dan", RS_QUIET_NOT, NULL);
        assert_true(rs_quiet_referrer(q, "ann", &referrer));
        assert_string_equal(referrer, "rita");
        const char *again = NULL;
        assert_true(rs_quiet_referrer(q, "bob", &again));
        assert_ptr_equal(again, referrer); /* one copy of each id */
        assert_true(rs_quiet_referrer(q, "cid", &referrer));
        assert_null(referrer);
        assert_false(rs_quiet_referrer(q, "dan", &referrer));
        assert_false(rs_quiet_referrer(q, "eve", &referrer)); /* not remembered */
        rs_quiet_put(q, "ann", RS_QUIET_NOT, NULL);
        assert_false(rs_quiet_referrer(q, "ann", &referrer));
        assert_int_equal(rs_quiet_get(q, "cid"), 100);
        /* At most RS_QUIET_NAMES_MAX ids: beyond, a referrer is not known. */
        char id[32];
        for (int i = 1; i < RS_QUIET_NAMES_MAX; i++) { /* "rita" is the first */
                snprintf(id, sizeof(id), "referrer-%d", i);
                rs_quiet_put(q, "fay", RS_QUIET_NOT, id);
        }
        assert_true(rs_quiet_referrer(q, "fay", &referrer));
        rs_quiet_put(q, "fay", RS_QUIET_NOT, "one-too-many");
        assert_false(rs_quiet_referrer(q, "fay", &referrer));
        rs_quiet_put(q, "fay", RS_QUIET_NOT, "rita"); /* already there */
        assert_true(rs_quiet_referrer(q, "fay", &referrer));
        rs_quiet_destroy(q);
}

/* Full: new users replace old ones, never beyond the capacity, and what is
 * kept is right. */
static void bounded(void **state)
{
        rs_quiet_t *q = rs_quiet_new(64);
        char id[32];
        for (int i = 0; i < 10000; i++) {
                snprintf(id, sizeof(id), "user-%d", i);
                rs_quiet_put(q, id, i, NULL);
        }
        assert_true(rs_quiet_count(q) <= 64);
        assert_true(rs_quiet_count(q) >= 32);
        size_t kept = 0;
        for (int i = 0; i < 10000; i++) {
                snprintf(id, sizeof(id), "user-%d", i);
                int64_t v = rs_quiet_get(q, id);
                if (v != RS_TS_NONE) {
                        assert_int_equal(v, i);
                        kept++;
                }
        }
        assert_int_equal(kept, rs_quiet_count(q));
        snprintf(id, sizeof(id), "user-%d", 9999); /* the last one is always in */
        assert_int_equal(rs_quiet_get(q, id), 9999);
        rs_quiet_destroy(q);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(remembers_and_replaces),
            cmocka_unit_test(clear_starts_a_generation),
            cmocka_unit_test(referrers),
            cmocka_unit_test(bounded),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
