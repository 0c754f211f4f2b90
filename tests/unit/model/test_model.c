/* common/model: referral codes, SHA-256 and the deterministic ids. */
#include "rs_codes.h"
#include "rs_ids.h"
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

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(code_normalize_and_validate),
            cmocka_unit_test(generated_codes),
            cmocka_unit_test(sha256_vectors),
            cmocka_unit_test(stable_ids),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
