/* common/base: time parsing, maps and arenas, id sets. */
#include "rs_idset.h"
#include "rs_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void rfc3339(void **state)
{
        int64_t ms;
        assert_true(rs_parse_rfc3339("1970-01-01T00:00:00Z", &ms));
        assert_int_equal(ms, 0);
        assert_true(rs_parse_rfc3339("2026-01-01T00:00:00.5Z", &ms));
        assert_int_equal(ms, INT64_C(1767225600500));
        assert_true(rs_parse_rfc3339("2026-01-01T02:00:00+02:00", &ms));
        assert_int_equal(ms, INT64_C(1767225600000));
        assert_true(rs_parse_rfc3339("2024-02-29T12:00:00.123456Z", &ms));
        assert_false(rs_parse_rfc3339("2023-02-29T12:00:00Z", &ms));
        assert_false(rs_parse_rfc3339("2026-01-01 00:00:00", &ms)); /* no zone */
        assert_false(rs_parse_rfc3339("2026-13-01T00:00:00Z", &ms));
        assert_false(rs_parse_rfc3339("2026-01-01T00:00:00Zjunk", &ms));
        char buf[40];
        assert_string_equal(rs_format_rfc3339(INT64_C(1767225600500), buf, sizeof(buf)),
                            "2026-01-01T00:00:00.500Z");
        assert_string_equal(rs_format_rfc3339(-1, buf, sizeof(buf)),
                            "1969-12-31T23:59:59.999Z");
}

static void map_and_arena(void **state)
{
        rs_map_t m;
        rs_arena_t a;
        rs_map_init(&m);
        rs_arena_init(&a, 128);
        for (int i = 0; i < 1000; i++)
                rs_map_put(&m, rs_arena_printf(&a, "k%d", i), (void *)(intptr_t)(i + 1));
        assert_int_equal(m.count, 1000);
        for (int i = 0; i < 1000; i++) {
                char k[16];
                snprintf(k, sizeof(k), "k%d", i);
                assert_int_equal((intptr_t)rs_map_get(&m, k), i + 1);
        }
        assert_null(rs_map_get(&m, "absent"));
        char *big = rs_arena_alloc(&a, 10000); /* larger than a block */
        memset(big, 1, 10000);
        rs_arena_reset(&a);
        assert_non_null(rs_arena_strdup(&a, "after reset"));
        assert_string_equal(rs_arena_strndup(&a, "abc", 2), "ab");
        assert_null(rs_arena_strndup(&a, NULL, 3));
        assert_null(rs_arena_strdup(&a, NULL));
        rs_map_free(&m);
        rs_arena_destroy(&a);
}

/* Adds, deletes and re-adds many ids (growth and tombstones) against a
 * plain array of truth. */
static void idset(void **state)
{
        enum { N = 20000 };
        static bool truth[N + 1];
        rs_idset_t s = {0};
        assert_false(rs_idset_has(&s, 1));
        rs_idset_del(&s, 1); /* on an empty set */
        uint64_t x = 88172645463325252u;
        for (int round = 0; round < 200000; round++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                int64_t id = (int64_t)(x % N) + 1;
                if (x & (1u << 20)) {
                        rs_idset_add(&s, id);
                        truth[id] = true;
                } else {
                        rs_idset_del(&s, id);
                        truth[id] = false;
                }
        }
        size_t count = 0;
        for (int64_t id = 1; id <= N; id++) {
                assert_int_equal(rs_idset_has(&s, id), truth[id]);
                count += truth[id];
        }
        assert_int_equal(s.count, count);
        assert_true(s.used * 2 <= s.cap);
        rs_idset_free(&s);
        assert_int_equal(s.count, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(rfc3339),
            cmocka_unit_test(map_and_arena),
            cmocka_unit_test(idset),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
