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

/* n bytes as lower-case hex into out (2n + 1 bytes). */
static void hex(const unsigned char *h, size_t n, char *out)
{
        for (size_t j = 0; j < n; j++)
                sprintf(out + 2 * j, "%02x", h[j]);
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
                char hexs[65];
                rs_sha256_init(&s);
                /* Feed byte by byte to exercise block boundaries. */
                for (const char *p = v[i].in; *p; p++)
                        rs_sha256_update(&s, p, 1);
                rs_sha256_final(&s, h);
                hex(h, 32, hexs);
                assert_string_equal(hexs, v[i].hex);
        }
}

/* The reference implementation's vectors (SipHash-2-4, 128-bit output; key
 * 00 01 .. 0f, message 00 01 .. of n bytes): one word and less, the word's
 * edges, and the longest. */
static void siphash_vectors(void **state)
{
        static const struct {
                size_t n;
                const char *hex;
        } v[] = {
            {0, "a3817f04ba25a8e66df67214c7550293"},
            {1, "da87c1d86b99af44347659119b22fc45"},
            {7, "a1f1ebbed8dbc153c0b84aa61ff08239"},
            {8, "3b62a9ba6258f5610f83e264f31497b4"},
            {15, "5493e99933b0a8117e08ec0f97cfc3d9"},
            {16, "6ee2a4ca67b054bbfd3315bf85230577"},
            {63, "5150d1772f50834a503e069a973fbd7c"},
        };
        unsigned char key[16], in[64], out[16];
        char hexs[33];
        for (int i = 0; i < 16; i++)
                key[i] = (unsigned char)i;
        for (int i = 0; i < 64; i++)
                in[i] = (unsigned char)i;
        for (size_t i = 0; i < RS_ARRAY_SIZE(v); i++) {
                rs_siphash128(key, in, v[i].n, out);
                hex(out, 16, hexs);
                assert_string_equal(hexs, v[i].hex);
        }
        /* Another key, another answer. */
        key[0] ^= 1;
        rs_siphash128(key, in, 63, out);
        hex(out, 16, hexs);
        assert_string_not_equal(hexs, v[RS_ARRAY_SIZE(v) - 1].hex);
}

/* Lengths around the padding's edges (55 bytes fit one block, 56 need a
 * second), whole and in two updates that split a block; and a million
 * bytes in uneven pieces (FIPS 180-4's long vector). Expected values from
 * Python's hashlib. */
static void sha256_lengths(void **state)
{
        static const struct {
                size_t n;
                const char *hex;
        } v[] = {
            {55, "576a1bf8d4478657e6dc4af9398544765c2a92cde28478b019235cfed315fc09"},
            {56, "9b20501dfd1d99161c257950f3444f3e49230c351c5c8e0943ef369f85f5205d"},
            {63, "30b345906b493f06f69444b6521113511c242f30e29840462950035043682f1e"},
            {64, "d8bc63b4fc1156e5e7d95a418b9bf54cd3174bedbc2db40f74895349b229b3c0"},
            {65, "1ee23b0fbcaecc1aff4a9e8f1645f35ab2c8e13609cd73b68df8b5e3f63ce073"},
            {119, "7a6589821178918ca8d9edaba5abfc1e9b2669564f4469b66885379c1530b2c8"},
            {120, "655250427d56b1b0eeb8497d21428704273458a01772d6881b65c0abac0f8a98"},
            {128, "54c9eb041badfd7064645067b107661fed6113197ce2dd066ba69618abd3732f"},
        };
        unsigned char in[128], h[32];
        char hexs[65];
        for (size_t i = 0; i < sizeof(in); i++)
                in[i] = (unsigned char)(i * 7);
        for (size_t i = 0; i < RS_ARRAY_SIZE(v); i++) {
                for (size_t split = 0; split <= v[i].n; split += 37) {
                        rs_sha256_t s;
                        rs_sha256_init(&s);
                        rs_sha256_update(&s, in, split);
                        rs_sha256_update(&s, in + split, v[i].n - split);
                        rs_sha256_final(&s, h);
                        hex(h, 32, hexs);
                        assert_string_equal(hexs, v[i].hex);
                }
        }
        static char a[1000];
        memset(a, 'a', sizeof(a));
        rs_sha256_t s;
        rs_sha256_init(&s);
        for (size_t done = 0, piece = 1; done < 1000000;
             done += piece, piece = piece % 997 + 1)
                rs_sha256_update(&s, a, RS_MIN(piece, 1000000 - done));
        rs_sha256_final(&s, h);
        hex(h, 32, hexs);
        assert_string_equal(
            hexs, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
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
        /* The values themselves (docs/events.md), from Python's hashlib. */
        assert_string_equal(b, "cc705735-efc3-81d6-8c95-e41063b66745");
        assert_string_equal(c, "f86ff695-8e7d-8056-8a22-4946e4fe2242");
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
            cmocka_unit_test(sha256_lengths),
            cmocka_unit_test(siphash_vectors),
            cmocka_unit_test(stable_ids),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
