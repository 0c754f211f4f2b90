/* Codes, deterministic ids, time parsing, Postgres array literals, maps. */
#include "rs_codes.h"
#include "rs_idset.h"
#include "rs_ids.h"
#include "rs_pg.h"
#include "rs_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void code_normalize_and_validate(void **state)
{
        char out[64];
        assert_string_equal(rs_code_normalize("  ab-c_d9\t\n", out, sizeof(out)),
                            "AB-C_D9");
        assert_true(rs_code_valid("AB-C_D9"));
        assert_false(rs_code_valid("ABC"));                               /* < 4 */
        assert_false(rs_code_valid("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456")); /* 33 */
        assert_true(rs_code_valid("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"));   /* 32 */
        assert_false(rs_code_valid("AB CD"));
        assert_false(rs_code_valid("ABÇD"));
        assert_string_equal(rs_code_normalize("   ", out, sizeof(out)), "");
}

static void generated_codes(void **state)
{
        char a[16], b[16];
        assert_true(rs_code_generate(a, sizeof(a)));
        assert_true(rs_code_generate(b, sizeof(b)));
        assert_int_equal(strlen(a), 8);
        assert_string_not_equal(a, b);
        int seen[256] = {0};
        for (int i = 0; i < 2000; i++) {
                assert_true(rs_code_generate(a, sizeof(a)));
                assert_true(rs_code_valid(a));
                for (int j = 0; j < 8; j++) {
                        assert_non_null(strchr(rs_crockford_alphabet, a[j]));
                        seen[(unsigned char)a[j]]++;
                }
        }
        /* No ambiguous letters, and every symbol of the alphabet shows up. */
        assert_int_equal(seen['I'] + seen['L'] + seen['O'] + seen['U'], 0);
        for (int k = 0; k < 32; k++)
                assert_true(seen[(unsigned char)rs_crockford_alphabet[k]] > 0);
        assert_false(rs_code_generate(a, 8)); /* no room for the terminator */
}

static void sha256_vectors(void **state)
{
        static const struct {
                const char *in, *hex;
        } v[] = {
            {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
            {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
            {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        };
        for (size_t i = 0; i < RS_ARRAY_SIZE(v); i++) {
                rs_sha256_t s;
                unsigned char h[32];
                char hex[65];
                rs_sha256_init(&s);
                /* Feed byte by byte to exercise block boundaries. */
                for (const char *p = v[i].in; *p; p++)
                        rs_sha256_update(&s, p, 1);
                rs_sha256_final(&s, h);
                for (int j = 0; j < 32; j++)
                        sprintf(hex + 2 * j, "%02x", h[j]);
                assert_string_equal(hex, v[i].hex);
        }
}

static void stable_ids(void **state)
{
        char a[RS_UUID_STR_LEN + 1], b[RS_UUID_STR_LEN + 1], c[RS_UUID_STR_LEN + 1];
        rs_credit_id("default", "bob", "REFERRER", a);
        rs_credit_id("default", "bob", "REFERRER", b);
        rs_credit_id("default", "bob", "REFEREE", c);
        assert_string_equal(a, b);
        assert_string_not_equal(a, c);
        assert_int_equal(strlen(a), 36);
        assert_int_equal(a[14], '8'); /* version 8 */
        assert_non_null(strchr("89ab", a[19]));
        rs_referral_id("default", "bob", c);
        assert_string_not_equal(a, c);
        /* Parts are separated: ("ab","c") and ("a","bc") differ. */
        rs_referral_id("ab", "c", a);
        rs_referral_id("a", "bc", b);
        assert_string_not_equal(a, b);
}

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

static void pg_array_literals(void **state)
{
        rs_pgarr_t a;
        rs_pgarr_init(&a);
        assert_string_equal(rs_pgarr_get(&a), "{}");
        rs_pgarr_text(&a, "plain");
        rs_pgarr_text(&a, "q\"uo\\te,{x}");
        rs_pgarr_text(&a, NULL);
        rs_pgarr_text(&a, "NULL");
        assert_string_equal(rs_pgarr_get(&a),
                            "{\"plain\",\"q\\\"uo\\\\te,{x}\",NULL,\"NULL\"}");
        rs_pgarr_reset(&a);
        rs_pgarr_bytea(&a, "\x00\xff", 2);
        rs_pgarr_int_or_null(&a, -1, -1);
        rs_pgarr_int(&a, -5);
        assert_string_equal(rs_pgarr_get(&a), "{\"\\\\x00ff\",NULL,-5}");
        rs_pgarr_free(&a);
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
            cmocka_unit_test(idset),
            cmocka_unit_test(code_normalize_and_validate),
            cmocka_unit_test(generated_codes),
            cmocka_unit_test(sha256_vectors),
            cmocka_unit_test(stable_ids),
            cmocka_unit_test(rfc3339),
            cmocka_unit_test(pg_array_literals),
            cmocka_unit_test(map_and_arena),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
