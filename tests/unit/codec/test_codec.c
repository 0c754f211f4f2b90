/* Codec unit tests, part 1: round trips of all four records (Avro and JSON),
 * output_to_json, encoder errors, schema ids, and the fuzzer's seed corpus.
 * Parts 2 and 3: test_codec_input.c (JSON input and every validation rule)
 * and test_codec_hostile.c (hostile framing and Avro).
 *
 * `unit_test_codec --write-corpus DIR` writes the fuzzer's seed corpus. */
#include "codec_test.h"
#include <dirent.h>

/* ---------------------------------------------------------------- round trips */

static rs_event_t sample_signup(void)
{
        rs_event_t ev = {.type = RS_EV_SIGNUP,
                         .event_id = "ev-s1",
                         .occurred_at_ms = 1767225600123,
                         .user_id = "user-ü-1",
                         .referral_code = " abcd-1234 ",
                         .email_hash = "e3b0c44298fc1c149afb"};
        return ev;
}

static rs_event_t sample_payment(rs_pay_kind_t kind)
{
        rs_event_t ev = {.type = RS_EV_PAYMENT,
                         .event_id = "ev-p1",
                         .occurred_at_ms = 1767225600456,
                         .user_id = "user-2",
                         .payment_id = "pay-9",
                         .amount_minor = 123456789012,
                         .currency = "EUR",
                         .kind = kind,
                         .refund_of = kind == RS_PAY_REFUND ? "pay-1" : NULL};
        return ev;
}

static void assert_str_eq_or_null(const char *a, const char *b)
{
        if (!a || !b)
                assert_ptr_equal(a, b);
        else
                assert_string_equal(a, b);
}

static void assert_event_equal(const rs_event_t *a, const rs_event_t *b)
{
        assert_int_equal(a->type, b->type);
        assert_string_equal(a->event_id, b->event_id);
        assert_true(a->occurred_at_ms == b->occurred_at_ms);
        assert_string_equal(a->user_id, b->user_id);
        assert_str_eq_or_null(a->referral_code, b->referral_code);
        assert_str_eq_or_null(a->email_hash, b->email_hash);
        assert_str_eq_or_null(a->payment_id, b->payment_id);
        if (a->type == RS_EV_PAYMENT) {
                assert_true(a->amount_minor == b->amount_minor);
                assert_string_equal(a->currency, b->currency);
                assert_int_equal(a->kind, b->kind);
        }
        assert_str_eq_or_null(a->refund_of, b->refund_of);
}

/* Encode to Avro, decode; render as JSON, decode; both give the event back. */
static void roundtrip(const rs_event_t *in)
{
        char errstr[256] = "";
        rs_buf_t b;
        rs_buf_init(&b);
        assert_true(rs_codec_encode_event(codec, in, &b, errstr, sizeof(errstr)));
        assert_int_equal(b.data[0], 0);
        assert_int_equal(b.data[4],
                         rs_codec_schema_id(codec, rs_event_type_name(in->type)));
        rs_event_t out;
        check_dec(in->type, b.data, b.len, NULL, NULL, &out);
        assert_event_equal(in, &out);
        /* Nothing returned may point into the input or avro-c's scratch. */
        assert_true(out.event_id < b.data || out.event_id >= b.data + b.len);

        rs_buf_reset(&b);
        rs_codec_event_to_json(in, &b);
        check_dec(in->type, b.data, b.len, NULL, NULL, &out);
        assert_event_equal(in, &out);
        rs_buf_free(&b);
}

static void test_roundtrip_signup(void **state)
{
        (void)state;
        rs_event_t ev = sample_signup();
        roundtrip(&ev);
        ev.referral_code = NULL;
        ev.email_hash = NULL;
        roundtrip(&ev);
        ev.referral_code = ""; /* kept as "", not turned into NULL */
        roundtrip(&ev);
}

static void test_roundtrip_payment(void **state)
{
        (void)state;
        rs_event_t ev = sample_payment(RS_PAY_CHARGE);
        roundtrip(&ev);
        ev = sample_payment(RS_PAY_REFUND);
        roundtrip(&ev);
        ev.amount_minor = 0;
        roundtrip(&ev);
}

static json_t *output_json(const rs_buf_t *b)
{
        char errstr[256] = "";
        rs_buf_t j;
        rs_buf_init(&j);
        if (!rs_codec_output_to_json(codec, b->data, b->len, &j, errstr, sizeof(errstr)))
                fail_msg("output_to_json: %s", errstr);
        json_error_t jerr;
        json_t *o = json_loads(j.data, JSON_REJECT_DUPLICATES, &jerr);
        if (!o)
                fail_msg("output is not JSON: %s: %s", jerr.text, j.data);
        rs_buf_free(&j);
        return o;
}

static void assert_jstr(json_t *o, const char *k, const char *v)
{
        assert_true(json_is_string(json_object_get(o, k)));
        assert_string_equal(json_string_value(json_object_get(o, k)), v);
}

static void assert_jint(json_t *o, const char *k, json_int_t v)
{
        assert_true(json_is_integer(json_object_get(o, k)));
        assert_true(json_integer_value(json_object_get(o, k)) == v);
}

static void test_roundtrip_credited(void **state)
{
        (void)state;
        rs_credited_t ev = {"cr-1", "ref-1", "default", "ABCD1234",
                            "u-rr", "u-re",  "u-re",    RS_ROLE_REFEREE,
                            500,    "USD",   "ev-p1",   1767225600999,
                            10,     10,      true};
        char errstr[256] = "";
        rs_buf_t b;
        rs_buf_init(&b);
        assert_true(rs_codec_encode_credited(codec, &ev, &b, errstr, sizeof(errstr)));
        assert_int_equal(b.data[4], 3);
        json_t *o = output_json(&b);
        assert_jstr(o, "credit_id", "cr-1");
        assert_jstr(o, "referral_id", "ref-1");
        assert_jstr(o, "program_key", "default");
        assert_jstr(o, "code", "ABCD1234");
        assert_jstr(o, "referrer_user_id", "u-rr");
        assert_jstr(o, "referee_user_id", "u-re");
        assert_jstr(o, "beneficiary_user_id", "u-re");
        assert_jstr(o, "role", "REFEREE");
        assert_jint(o, "amount_minor", 500);
        assert_jstr(o, "currency", "USD");
        assert_jstr(o, "source_event_id", "ev-p1");
        assert_jint(o, "credited_at", 1767225600999);
        assert_jint(o, "referrer_rewarded_count", 10);
        assert_jint(o, "referral_goal", 10);
        assert_true(json_is_true(json_object_get(o, "goal_reached")));
        assert_int_equal(json_object_size(o), 15);
        json_decref(o);

        ev.role = RS_ROLE_REFERRER;
        ev.goal_reached = false;
        rs_buf_reset(&b);
        assert_true(rs_codec_encode_credited(codec, &ev, &b, errstr, sizeof(errstr)));
        o = output_json(&b);
        assert_jstr(o, "role", "REFERRER");
        assert_true(json_is_false(json_object_get(o, "goal_reached")));
        json_decref(o);
        rs_buf_free(&b);
}

static void test_roundtrip_reversed(void **state)
{
        (void)state;
        rs_reversed_t ev = {"cr-1", "ref-1", "u-rr",        250,
                            "GBP",  "ev-r1", 1767225601000, "refund \"quoted\"\n"};
        char errstr[256] = "";
        rs_buf_t b;
        rs_buf_init(&b);
        assert_true(rs_codec_encode_reversed(codec, &ev, &b, errstr, sizeof(errstr)));
        assert_int_equal(b.data[4], 4);
        json_t *o = output_json(&b);
        assert_jstr(o, "credit_id", "cr-1");
        assert_jstr(o, "referral_id", "ref-1");
        assert_jstr(o, "beneficiary_user_id", "u-rr");
        assert_jint(o, "amount_minor", 250);
        assert_jstr(o, "currency", "GBP");
        assert_jstr(o, "source_event_id", "ev-r1");
        assert_jint(o, "reversed_at", 1767225601000);
        assert_jstr(o, "reason", "refund \"quoted\"\n");
        assert_int_equal(json_object_size(o), 8);
        json_decref(o);
        rs_buf_free(&b);
}

/* Input records through output_to_json: unions as plain value or null. */
static void test_output_to_json_inputs(void **state)
{
        (void)state;
        char errstr[256] = "";
        rs_buf_t b;
        rs_buf_init(&b);
        rs_event_t ev = sample_signup();
        ev.email_hash = NULL;
        assert_true(rs_codec_encode_event(codec, &ev, &b, errstr, sizeof(errstr)));
        json_t *o = output_json(&b);
        assert_jstr(o, "referral_code", " abcd-1234 ");
        assert_true(json_is_null(json_object_get(o, "email_hash")));
        assert_jstr(o, "user_id", "user-ü-1");
        json_decref(o);

        rs_buf_reset(&b);
        ev = sample_payment(RS_PAY_REFUND);
        assert_true(rs_codec_encode_event(codec, &ev, &b, errstr, sizeof(errstr)));
        o = output_json(&b);
        assert_jstr(o, "kind", "REFUND");
        assert_jstr(o, "refund_of", "pay-1");
        assert_jint(o, "amount_minor", 123456789012);
        json_decref(o);
        rs_buf_free(&b);
}

static void test_output_to_json_rejects(void **state)
{
        (void)state;
        char errstr[256] = "";
        rs_buf_t b, j;
        rs_buf_init(&b);
        rs_buf_init(&j);
        rs_buf_puts(&j, "keep");
        assert_false(rs_codec_output_to_json(codec, "{}", 2, &j, errstr, sizeof(errstr)));
        w_hdr(&b, 77);
        assert_false(
            rs_codec_output_to_json(codec, b.data, b.len, &j, errstr, sizeof(errstr)));
        assert_contains(errstr, "77");
        rs_buf_reset(&b);
        avro_mut(&b, RS_EV_PAYMENT, "kind", (item_t)ENUM(9));
        assert_false(
            rs_codec_output_to_json(codec, b.data, b.len, &j, errstr, sizeof(errstr)));
        assert_contains(errstr, "kind");
        rs_buf_reset(&b);
        avro_mut(&b, RS_EV_SIGNUP, NULL, (item_t)UNULL);
        b.len -= 3; /* truncated */
        assert_false(
            rs_codec_output_to_json(codec, b.data, b.len, &j, errstr, sizeof(errstr)));
        assert_string_equal(j.data, "keep"); /* failures leave out untouched */
        rs_buf_free(&b);
        rs_buf_free(&j);
}

static void test_event_to_json_omits_absent(void **state)
{
        (void)state;
        rs_buf_t b;
        rs_buf_init(&b);
        rs_event_t ev = sample_signup();
        ev.referral_code = NULL;
        ev.email_hash = NULL;
        rs_codec_event_to_json(&ev, &b);
        assert_string_equal(
            b.data, "{\"event_id\":\"ev-s1\",\"occurred_at\":1767225600123,\"user_id\":"
                    "\"user-ü-1\"}");
        rs_buf_reset(&b);
        ev = sample_payment(RS_PAY_CHARGE);
        rs_codec_event_to_json(&ev, &b);
        assert_null(strstr(b.data, "refund_of"));
        assert_contains(b.data, "\"kind\":\"CHARGE\"");
        assert_contains(b.data, "\"currency\":\"EUR\"");
        rs_buf_free(&b);
}

static void test_encode_errors(void **state)
{
        (void)state;
        char errstr[256] = "";
        rs_buf_t b;
        rs_buf_init(&b);
        rs_buf_puts(&b, "x");
        rs_event_t ev = sample_signup();
        ev.user_id = NULL;
        assert_false(rs_codec_encode_event(codec, &ev, &b, errstr, sizeof(errstr)));
        assert_contains(errstr, "user_id");
        assert_int_equal(b.len, 1);
        ev = sample_payment(RS_PAY_CHARGE);
        ev.kind = (rs_pay_kind_t)7;
        assert_false(rs_codec_encode_event(codec, &ev, &b, errstr, sizeof(errstr)));
        assert_contains(errstr, "kind");
        rs_reversed_t rv = {"cr-1", "ref-1", "u", 1, "USD", "ev", 1, NULL};
        assert_false(rs_codec_encode_reversed(codec, &rv, &b, errstr, sizeof(errstr)));
        assert_contains(errstr, "reason");
        rs_credited_t cr = {"c", "r",   "p", "C", "a", "b", "b",  (rs_role_t)5,
                            1,   "USD", "e", 1,   1,   1,   false};
        assert_false(rs_codec_encode_credited(codec, &cr, &b, errstr, sizeof(errstr)));
        assert_contains(errstr, "role");
        assert_string_equal(b.data, "x");
        rs_buf_free(&b);
}

static void test_schema_ids(void **state)
{
        (void)state;
        assert_int_equal(rs_codec_schema_id(codec, "SignupEvent"), 1);
        assert_int_equal(rs_codec_schema_id(codec, "PaymentEvent"), 2);
        assert_int_equal(rs_codec_schema_id(codec, "ReferralCredited"), 3);
        assert_int_equal(rs_codec_schema_id(codec, "ReferralCreditReversed"), 4);
        assert_int_equal(rs_codec_schema_id(codec, "Nope"), -1);
}

/* ---------------------------------------------------------------- corpus */

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
                perror(path);
                exit(1);
        }
}

/* Seeds: valid records of both types in both formats. The fuzzer finds the
 * invalid ones by itself. */
static int write_corpus(const char *dir)
{
        char errstr[256];
        rs_codec_t *c = rs_codec_new(errstr, sizeof(errstr));
        if (!c) {
                fprintf(stderr, "%s\n", errstr);
                return 1;
        }
        rs_event_t evs[] = {sample_signup(), sample_payment(RS_PAY_CHARGE),
                            sample_payment(RS_PAY_REFUND), sample_signup()};
        evs[3].referral_code = NULL;
        const char *names[] = {"signup", "charge", "refund", "signup-nocode"};
        for (size_t i = 0; i < RS_ARRAY_SIZE(evs); i++) {
                rs_buf_t b;
                rs_buf_init(&b);
                char name[64];
                if (!rs_codec_encode_event(c, &evs[i], &b, errstr, sizeof(errstr)))
                        return 1;
                snprintf(name, sizeof(name), "valid-%s.avro", names[i]);
                write_file(dir, name, b.data, b.len);
                rs_buf_reset(&b);
                rs_codec_event_to_json(&evs[i], &b);
                snprintf(name, sizeof(name), "valid-%s.json", names[i]);
                write_file(dir, name, b.data, b.len);
                rs_buf_free(&b);
        }
        /* Output records exercise rs_codec_output_to_json() in the fuzzer. */
        rs_credited_t cr = {"cr-1", "ref-1", "default", "ABCD1234",
                            "u-rr", "u-re",  "u-rr",    RS_ROLE_REFERRER,
                            500,    "USD",   "ev-p1",   1767225600999,
                            3,      10,      false};
        rs_reversed_t rv = {"cr-1", "ref-1", "u-rr",        500,
                            "USD",  "ev-r1", 1767225601000, "REFUND"};
        rs_buf_t b;
        rs_buf_init(&b);
        if (!rs_codec_encode_credited(c, &cr, &b, errstr, sizeof(errstr)))
                return 1;
        write_file(dir, "output-credited.avro", b.data, b.len);
        rs_buf_reset(&b);
        if (!rs_codec_encode_reversed(c, &rv, &b, errstr, sizeof(errstr)))
                return 1;
        write_file(dir, "output-reversed.avro", b.data, b.len);
        rs_buf_free(&b);
        const char *rfc =
            "{\"event_id\":\"e\",\"occurred_at\":\"2026-01-01T02:30:00.5+02:30\","
            "\"user_id\":\"u\",\"referral_code\":null}";
        write_file(dir, "valid-signup-rfc3339.json", rfc, strlen(rfc));
        rs_codec_destroy(c);
        return 0;
}

static bool read_file(const char *path, rs_buf_t *b)
{
        FILE *f = fopen(path, "rb");
        if (!f)
                return false;
        size_t n;
        char *data = rs_read_stream(f, &n);
        fclose(f);
        if (!data)
                return false;
        rs_buf_append(b, data, n);
        free(data);
        return true;
}

/* The committed seeds still decode: a schema change that breaks them fails
 * here instead of silently weakening the fuzzer. */
static void test_corpus_seeds_decode(void **state)
{
        (void)state;
        const char *src = getenv("RS_SOURCE_DIR");
        if (!src)
                skip();
        char dir[1024];
        snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus", src);
        DIR *d = opendir(dir);
        assert_non_null(d);
        int seen = 0;
        for (struct dirent *de; (de = readdir(d));) {
                if (strncmp(de->d_name, "valid-", 6) != 0)
                        continue;
                char path[2048];
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                rs_buf_t b;
                rs_buf_init(&b);
                assert_true(read_file(path, &b));
                rs_event_type_t t =
                    strstr(de->d_name, "signup") ? RS_EV_SIGNUP : RS_EV_PAYMENT;
                check_dec(t, b.data, b.len, NULL, NULL, NULL);
                rs_buf_free(&b);
                seen++;
        }
        closedir(d);
        assert_true(seen >= 8);
}

int main(int argc, char **argv)
{
        if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0)
                return write_corpus(argv[2]);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_roundtrip_signup),
            cmocka_unit_test(test_roundtrip_payment),
            cmocka_unit_test(test_roundtrip_credited),
            cmocka_unit_test(test_roundtrip_reversed),
            cmocka_unit_test(test_output_to_json_inputs),
            cmocka_unit_test(test_output_to_json_rejects),
            cmocka_unit_test(test_event_to_json_omits_absent),
            cmocka_unit_test(test_encode_errors),
            cmocka_unit_test(test_schema_ids),
            cmocka_unit_test(test_corpus_seeds_decode),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
