/* Codec unit tests, part 2: JSON input, and every validation rule of
 * docs/events.md §3, checked in both input formats where the format can express the case
 * (same error class, and the message names the field). */
#include "codec_test.h"

/* ---------------------------------------------------------------- JSON input */

static void test_json_timestamps(void **state)
{
        (void)state;
        static const struct {
                const char *ts;
                int64_t ms;
        } cases[] = {
            {"\"2026-01-01T00:00:00Z\"", 1767225600000},
            {"\"2026-01-01T00:00:00.123Z\"", 1767225600123},
            {"\"2026-01-01T00:00:00.1Z\"", 1767225600100},
            {"\"2026-01-01T00:00:00.123456789Z\"", 1767225600123},
            {"\"2026-01-01T02:30:00+02:30\"", 1767225600000},
            {"\"2025-12-31T19:00:00.5-05:00\"", 1767225600500},
            {"1767225600042", 1767225600042},
        };
        for (size_t i = 0; i < RS_ARRAY_SIZE(cases); i++) {
                char buf[256];
                snprintf(buf, sizeof(buf),
                         " \n{\"event_id\":\"e\",\"occurred_at\":%s,\"user_id\":\"u\"}",
                         cases[i].ts);
                rs_event_t ev;
                check_dec(RS_EV_SIGNUP, buf, strlen(buf), NULL, NULL, &ev);
                if (ev.occurred_at_ms != cases[i].ms)
                        fail_msg("%s -> %lld", cases[i].ts, (long long)ev.occurred_at_ms);
                assert_null(ev.referral_code);
                assert_null(ev.email_hash);
        }
}

static void test_json_bad_timestamps(void **state)
{
        (void)state;
        const char *bad[] = {"2026-13-01T00:00:00Z", "2026-01-01",           "yesterday",
                             "2026-01-01T00:00:00",  "2026-02-30T00:00:00Z", ""};
        for (size_t i = 0; i < RS_ARRAY_SIZE(bad); i++)
                expect_json(RS_EV_SIGNUP, "occurred_at", json_string(bad[i]),
                            RS_ERR_INVALID_FIELD, "occurred_at");
        expect_json(RS_EV_SIGNUP, "occurred_at", json_real(1767225600000.0),
                    RS_ERR_INVALID_FIELD, "occurred_at");
        expect_json(RS_EV_SIGNUP, "occurred_at", json_true(), RS_ERR_INVALID_FIELD,
                    "occurred_at");
        expect_json(RS_EV_PAYMENT, "occurred_at", json_object(), RS_ERR_INVALID_FIELD,
                    "occurred_at");
}

static void test_json_syntax(void **state)
{
        (void)state;
        static const struct {
                const char *in;
                const char *cls;
                const char *needle;
        } cases[] = {
            {"[1,2]", RS_ERR_BAD_FRAMING, NULL},
            {"\"str\"", RS_ERR_BAD_FRAMING, NULL},
            {"hello", RS_ERR_BAD_FRAMING, NULL},
            {"\xef\xbb\xbf{}", RS_ERR_BAD_FRAMING, NULL}, /* BOM */
            {"   ", RS_ERR_BAD_FRAMING, NULL},
            {"{", RS_ERR_JSON_DECODE, "line 1"},
            {"{\"event_id\":\"e\"} trailing", RS_ERR_JSON_DECODE, "column"},
            {"{\"event_id\":\"a\",\"event_id\":\"b\"}", RS_ERR_JSON_DECODE, "duplicate"},
            {"{\"event_id\":\"a\\u0000b\",\"occurred_at\":1,\"user_id\":\"u\"}",
             RS_ERR_JSON_DECODE, "\\u0000"},
            {"{\"event_id\":\"a\xff\",\"occurred_at\":1,\"user_id\":\"u\"}",
             RS_ERR_JSON_DECODE, "byte 0xff"},
            {"{\"event_id\":\"\\ud800\",\"occurred_at\":1,\"user_id\":\"u\"}",
             RS_ERR_JSON_DECODE, NULL},
            {"{\"amount_minor\":99999999999999999999999}", RS_ERR_JSON_DECODE, NULL},
        };
        for (size_t i = 0; i < RS_ARRAY_SIZE(cases); i++)
                check_dec(RS_EV_PAYMENT, cases[i].in, strlen(cases[i].in), cases[i].cls,
                          cases[i].needle, NULL);
}

static void test_json_deep_nesting(void **state)
{
        (void)state;
        rs_buf_t b;
        rs_buf_init(&b);
        rs_buf_puts(&b, "{\"x\":");
        for (int i = 0; i < 200000; i++)
                rs_buf_putc(&b, '[');
        check_dec(RS_EV_SIGNUP, b.data, b.len, RS_ERR_JSON_DECODE, NULL, NULL);
        rs_buf_free(&b);
}

static void test_json_extra_fields_ignored(void **state)
{
        (void)state;
        const char *in = "{\"event_id\":\"e\",\"occurred_at\":1767225600000,\"user_id\":"
                         "\"u\",\"future\":{\"nested\":[1,2.5,null]},\"payment_id\":7,"
                         "\"referral_code\":null}";
        rs_event_t ev;
        check_dec(RS_EV_SIGNUP, in, strlen(in), NULL, NULL, &ev);
        assert_null(ev.referral_code);
        assert_null(ev.payment_id); /* a payment field on a signup is just extra */
}

static void test_json_wrong_types(void **state)
{
        (void)state;
        expect_json(RS_EV_SIGNUP, "event_id", json_integer(123), RS_ERR_INVALID_FIELD,
                    "event_id");
        expect_json(RS_EV_SIGNUP, "user_id", json_true(), RS_ERR_INVALID_FIELD,
                    "user_id");
        expect_json(RS_EV_SIGNUP, "referral_code", json_integer(5), RS_ERR_INVALID_FIELD,
                    "referral_code");
        expect_json(RS_EV_SIGNUP, "email_hash", json_array(), RS_ERR_INVALID_FIELD,
                    "email_hash");
        expect_json(RS_EV_PAYMENT, "payment_id", json_integer(1), RS_ERR_INVALID_FIELD,
                    "payment_id");
        expect_json(RS_EV_PAYMENT, "amount_minor", json_real(1.5), RS_ERR_INVALID_FIELD,
                    "amount_minor");
        expect_json(RS_EV_PAYMENT, "amount_minor", json_real(100.0), RS_ERR_INVALID_FIELD,
                    "amount_minor");
        expect_json(RS_EV_PAYMENT, "amount_minor", json_string("100"),
                    RS_ERR_INVALID_FIELD, "amount_minor");
        expect_json(RS_EV_PAYMENT, "currency", json_integer(840), RS_ERR_INVALID_FIELD,
                    "currency");
        expect_json(RS_EV_PAYMENT, "kind", json_integer(1), RS_ERR_INVALID_FIELD, "kind");
        expect_json(RS_EV_PAYMENT, "refund_of", json_false(), RS_ERR_INVALID_FIELD,
                    "refund_of");
        /* 1e3 is a real in JSON: money is never a float. */
        const char *in =
            "{\"event_id\":\"e\",\"occurred_at\":1767225600000,\"user_id\":\"u\","
            "\"payment_id\":\"p\",\"amount_minor\":1e3,\"currency\":\"USD\","
            "\"kind\":\"CHARGE\"}";
        check_dec(RS_EV_PAYMENT, in, strlen(in), RS_ERR_INVALID_FIELD, "amount_minor",
                  NULL);
}

/* ---------------------------------------------------------------- validation */

static void test_missing_required(void **state)
{
        (void)state;
        const char *sf[] = {"event_id", "occurred_at", "user_id"};
        for (size_t i = 0; i < RS_ARRAY_SIZE(sf); i++) {
                expect_json(RS_EV_SIGNUP, sf[i], NULL, RS_ERR_MISSING_FIELD, sf[i]);
                expect_json(RS_EV_SIGNUP, sf[i], json_null(), RS_ERR_MISSING_FIELD,
                            sf[i]);
        }
        const char *pf[] = {"event_id",     "occurred_at", "user_id", "payment_id",
                            "amount_minor", "currency",    "kind"};
        for (size_t i = 0; i < RS_ARRAY_SIZE(pf); i++) {
                expect_json(RS_EV_PAYMENT, pf[i], NULL, RS_ERR_MISSING_FIELD, pf[i]);
                expect_json(RS_EV_PAYMENT, pf[i], json_null(), RS_ERR_MISSING_FIELD,
                            pf[i]);
        }
        check_dec(RS_EV_PAYMENT, "{}", 2, RS_ERR_MISSING_FIELD, "event_id", NULL);
}

static void test_optional_absent(void **state)
{
        (void)state;
        const char *f[] = {"referral_code", "email_hash"};
        for (size_t i = 0; i < RS_ARRAY_SIZE(f); i++) {
                expect_json(RS_EV_SIGNUP, f[i], NULL, NULL, NULL);
                expect_json(RS_EV_SIGNUP, f[i], json_null(), NULL, NULL);
                expect_avro(RS_EV_SIGNUP, f[i], (item_t)UNULL, NULL, NULL);
        }
        expect_json(RS_EV_PAYMENT, "refund_of", json_null(), NULL, NULL);
        expect_avro(RS_EV_PAYMENT, "refund_of", (item_t)UNULL, NULL, NULL);
        expect_json(RS_EV_PAYMENT, "payment_fingerprint", NULL, NULL, NULL);
        expect_avro(RS_EV_PAYMENT, "payment_fingerprint", (item_t)UNULL, NULL, NULL);
        /* refund_of on a CHARGE is allowed and kept */
        rs_buf_t b;
        rs_buf_init(&b);
        avro_mut(&b, RS_EV_PAYMENT, "refund_of", (item_t)USTR("pay-0"));
        rs_event_t ev;
        check_dec(RS_EV_PAYMENT, b.data, b.len, NULL, NULL, &ev);
        assert_string_equal(ev.refund_of, "pay-0");
        rs_buf_free(&b);
}

/* Length bounds in bytes: min-1 and max+1 fail, min and max pass. */
static void check_lengths(rs_event_type_t t, const char *field, char kind, size_t min,
                          size_t max)
{
        size_t lens[] = {min, max, max + 1, min ? min - 1 : SIZE_MAX};
        for (size_t i = 0; i < RS_ARRAY_SIZE(lens); i++) {
                if (lens[i] == SIZE_MAX)
                        continue;
                const char *cls = i < 2 ? NULL : RS_ERR_INVALID_FIELD;
                char *s = repeat('a', lens[i]);
                expect_json(t, field, json_stringn(s, lens[i]), cls, field);
                expect_avro(t, field, (item_t){kind, s, lens[i], 0}, cls, field);
        }
}

static void test_string_lengths(void **state)
{
        (void)state;
        check_lengths(RS_EV_SIGNUP, "event_id", 's', 1, RS_EVENT_ID_MAX);
        check_lengths(RS_EV_PAYMENT, "event_id", 's', 1, RS_EVENT_ID_MAX);
        check_lengths(RS_EV_SIGNUP, "user_id", 's', 1, RS_USER_ID_MAX);
        check_lengths(RS_EV_PAYMENT, "user_id", 's', 1, RS_USER_ID_MAX);
        check_lengths(RS_EV_SIGNUP, "referral_code", 'u', 0, RS_REFERRAL_CODE_INPUT_MAX);
        check_lengths(RS_EV_SIGNUP, "email_hash", 'u', 1, RS_EMAIL_HASH_MAX);
        check_lengths(RS_EV_PAYMENT, "payment_id", 's', 1, RS_PAYMENT_ID_MAX);
        check_lengths(RS_EV_PAYMENT, "refund_of", 'u', 1, RS_PAYMENT_ID_MAX);
        check_lengths(RS_EV_PAYMENT, "payment_fingerprint", 'u', 1, RS_FINGERPRINT_MAX);
}

/* Multi-byte characters count as bytes, not characters. */
static void test_length_in_bytes(void **state)
{
        (void)state;
        rs_buf_t s;
        rs_buf_init(&s);
        for (int i = 0; i < 22; i++)
                rs_buf_puts(&s, "€"); /* 3 bytes each: 66 > 64 */
        expect_both(RS_EV_SIGNUP, "event_id", json_string(s.data),
                    (item_t){'s', s.data, s.len, 0}, RS_ERR_INVALID_FIELD);
        rs_buf_free(&s);
}

static void test_referral_code_kept_verbatim(void **state)
{
        (void)state;
        const char *codes[] = {"", "  abcd-1234\t", "ünïcode"};
        for (size_t i = 0; i < RS_ARRAY_SIZE(codes); i++) {
                char *j = json_mut(RS_EV_SIGNUP, "referral_code", json_string(codes[i]));
                rs_event_t ev;
                check_dec(RS_EV_SIGNUP, j, strlen(j), NULL, NULL, &ev);
                assert_non_null(ev.referral_code);
                assert_string_equal(ev.referral_code, codes[i]);
                free(j);
                rs_buf_t b;
                rs_buf_init(&b);
                avro_mut(&b, RS_EV_SIGNUP, "referral_code",
                         (item_t){'u', codes[i], strlen(codes[i]), 0});
                check_dec(RS_EV_SIGNUP, b.data, b.len, NULL, NULL, &ev);
                assert_string_equal(ev.referral_code, codes[i]);
                rs_buf_free(&b);
        }
}

/* NUL and invalid UTF-8 can only arrive through Avro (jansson refuses them
 * in JSON; see test_json_syntax). Every string field of both records. */
static void test_string_content(void **state)
{
        (void)state;
        static const struct {
                const char *s;
                size_t len;
                const char *needle;
        } bad[] = {
            {"a\0b", 3, "NUL"},
            {"a\xff", 2, "UTF-8"},
            {"\xc0\x80", 2, "UTF-8"},         /* overlong NUL */
            {"\xed\xa0\x80", 3, "UTF-8"},     /* surrogate */
            {"\xf4\x90\x80\x80", 4, "UTF-8"}, /* > U+10FFFF */
            {"\xe2\x82", 2, "UTF-8"},         /* truncated sequence */
            {"\x80", 1, "UTF-8"},             /* lone continuation */
        };
        for (int t = RS_EV_SIGNUP; t <= RS_EV_PAYMENT; t++) {
                const char **names = t == RS_EV_SIGNUP ? signup_fields : payment_fields;
                size_t n = t == RS_EV_SIGNUP ? RS_ARRAY_SIZE(signup_fields)
                                             : RS_ARRAY_SIZE(payment_fields);
                for (size_t f = 0; f < n; f++) {
                        item_t it[RS_TEST_MAX_ITEMS];
                        base_items((rs_event_type_t)t, it);
                        char kind = it[f].kind == 'n' ? 'u' : it[f].kind;
                        if (kind != 's' && kind != 'u')
                                continue;
                        for (size_t i = 0; i < RS_ARRAY_SIZE(bad); i++) {
                                rs_buf_t b;
                                rs_buf_init(&b);
                                avro_mut(&b, (rs_event_type_t)t, names[f],
                                         (item_t){kind, bad[i].s, bad[i].len, 0});
                                check_dec((rs_event_type_t)t, b.data, b.len,
                                          RS_ERR_INVALID_FIELD, names[f], NULL);
                                check_dec((rs_event_type_t)t, b.data, b.len,
                                          RS_ERR_INVALID_FIELD, bad[i].needle, NULL);
                                rs_buf_free(&b);
                        }
                }
        }
        /* Well-formed multi-byte UTF-8 (2, 3 and 4 bytes) is fine. */
        expect_avro(RS_EV_SIGNUP, "user_id", (item_t)STR("ü€\xf0\x9f\x98\x80"), NULL,
                    NULL);
}

static void test_occurred_at_range(void **state)
{
        (void)state;
        const int64_t bad[] = {0, -1, INT64_MIN, INT64_C(32503680000000), INT64_MAX};
        for (size_t i = 0; i < RS_ARRAY_SIZE(bad); i++)
                expect_both(RS_EV_PAYMENT, "occurred_at", json_integer(bad[i]),
                            (item_t)LONG(bad[i]), RS_ERR_INVALID_FIELD);
        expect_both(RS_EV_SIGNUP, "occurred_at", json_integer(1), (item_t)LONG(1), NULL);
        expect_both(RS_EV_SIGNUP, "occurred_at", json_integer(INT64_C(32503679999999)),
                    (item_t)LONG(INT64_C(32503679999999)), NULL);
        expect_json(RS_EV_SIGNUP, "occurred_at", json_string("3000-01-01T00:00:00Z"),
                    RS_ERR_INVALID_FIELD, "occurred_at");
        expect_json(RS_EV_SIGNUP, "occurred_at", json_string("1969-12-31T23:59:59Z"),
                    RS_ERR_INVALID_FIELD, "occurred_at");
}

static void test_amount(void **state)
{
        (void)state;
        expect_both(RS_EV_PAYMENT, "amount_minor", json_integer(-1), (item_t)LONG(-1),
                    RS_ERR_INVALID_FIELD);
        expect_both(RS_EV_PAYMENT, "amount_minor", json_integer(INT64_MIN),
                    (item_t)LONG(INT64_MIN), RS_ERR_INVALID_FIELD);
        expect_both(RS_EV_PAYMENT, "amount_minor", json_integer(0), (item_t)LONG(0),
                    NULL);
        expect_both(RS_EV_PAYMENT, "amount_minor", json_integer(INT64_MAX),
                    (item_t)LONG(INT64_MAX), NULL);
}

static void test_currency(void **state)
{
        (void)state;
        const char *bad[] = {"usd", "US", "USDX", "U1D", "", "US ", "ÜSD"};
        for (size_t i = 0; i < RS_ARRAY_SIZE(bad); i++)
                expect_both(RS_EV_PAYMENT, "currency", json_string(bad[i]),
                            (item_t){'s', bad[i], strlen(bad[i]), 0},
                            RS_ERR_INVALID_FIELD);
        expect_both(RS_EV_PAYMENT, "currency", json_string("JPY"), (item_t)STR("JPY"),
                    NULL);
}

static void test_kind(void **state)
{
        (void)state;
        const char *bad[] = {"REFUNDED", "charge", "", "CHARGE "};
        for (size_t i = 0; i < RS_ARRAY_SIZE(bad); i++)
                expect_json(RS_EV_PAYMENT, "kind", json_string(bad[i]),
                            RS_ERR_INVALID_FIELD, "kind");
        /* Avro enum ordinals outside the schema never decode. */
        expect_avro(RS_EV_PAYMENT, "kind", (item_t)ENUM(2), RS_ERR_AVRO_DECODE, "kind");
        expect_avro(RS_EV_PAYMENT, "kind", (item_t)ENUM(-1), RS_ERR_AVRO_DECODE, "kind");
        expect_avro(RS_EV_PAYMENT, "kind", (item_t)ENUM(INT64_C(1) << 32),
                    RS_ERR_AVRO_DECODE, "enum");
}

static void test_refund_requires_refund_of(void **state)
{
        (void)state;
        const char *msg = "refund_of is required when kind is REFUND";
        json_t *o = base_json(RS_EV_PAYMENT);
        json_object_set_new(o, "kind", json_string("REFUND"));
        char *s = json_dumps(o, JSON_COMPACT);
        check_dec(RS_EV_PAYMENT, s, strlen(s), RS_ERR_MISSING_FIELD, msg, NULL);
        free(s);
        json_object_set_new(o, "refund_of", json_null());
        s = json_dumps(o, JSON_COMPACT);
        check_dec(RS_EV_PAYMENT, s, strlen(s), RS_ERR_MISSING_FIELD, msg, NULL);
        free(s);
        json_object_set_new(o, "refund_of", json_string("pay-0"));
        s = json_dumps(o, JSON_COMPACT);
        rs_event_t ev;
        check_dec(RS_EV_PAYMENT, s, strlen(s), NULL, NULL, &ev);
        assert_int_equal(ev.kind, RS_PAY_REFUND);
        assert_string_equal(ev.refund_of, "pay-0");
        free(s);
        json_decref(o);

        rs_buf_t b;
        rs_buf_init(&b);
        avro_mut(&b, RS_EV_PAYMENT, "kind", (item_t)ENUM(1));
        check_dec(RS_EV_PAYMENT, b.data, b.len, RS_ERR_MISSING_FIELD, msg, NULL);
        rs_buf_free(&b);
}

/* Decoded strings are arena copies: they outlive the input buffer and the
 * next decode (which reuses avro-c's scratch value). */
static void test_strings_outlive_input(void **state)
{
        (void)state;
        rs_buf_t b;
        rs_buf_init(&b);
        avro_mut(&b, RS_EV_SIGNUP, NULL, (item_t)UNULL);
        rs_event_t first, second;
        check_dec(RS_EV_SIGNUP, b.data, b.len, NULL, NULL, &first);
        rs_buf_free(&b);
        avro_mut(&b, RS_EV_SIGNUP, "user_id", (item_t)STR("someone-else"));
        check_dec(RS_EV_SIGNUP, b.data, b.len, NULL, NULL, &second);
        memset(b.data, 'Z', b.len);
        rs_buf_free(&b);
        assert_string_equal(first.user_id, "user-1");
        assert_string_equal(first.referral_code, "abcd1234");
        assert_string_equal(second.user_id, "someone-else");
        char *j = json_mut(RS_EV_PAYMENT, NULL, NULL);
        check_dec(RS_EV_PAYMENT, j, strlen(j), NULL, NULL, &first);
        memset(j, 'Z', strlen(j));
        free(j);
        assert_string_equal(first.payment_id, "pay-1");
        assert_string_equal(first.currency, "USD");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_json_timestamps),
            cmocka_unit_test(test_json_bad_timestamps),
            cmocka_unit_test(test_json_syntax),
            cmocka_unit_test(test_json_deep_nesting),
            cmocka_unit_test(test_json_extra_fields_ignored),
            cmocka_unit_test(test_json_wrong_types),
            cmocka_unit_test(test_missing_required),
            cmocka_unit_test(test_optional_absent),
            cmocka_unit_test(test_string_lengths),
            cmocka_unit_test(test_length_in_bytes),
            cmocka_unit_test(test_referral_code_kept_verbatim),
            cmocka_unit_test(test_string_content),
            cmocka_unit_test(test_occurred_at_range),
            cmocka_unit_test(test_amount),
            cmocka_unit_test(test_currency),
            cmocka_unit_test(test_kind),
            cmocka_unit_test(test_refund_requires_refund_of),
            cmocka_unit_test(test_strings_outlive_input),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
