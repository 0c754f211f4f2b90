/* Codec unit tests, part 4: schema registry mode. Writer schemas as a
 * registry would return them, resolved against refstream's reader schemas by
 * the Avro rules (docs/events.md §2): extra writer fields skipped (of every
 * type), reader defaults for missing fields, promotions, enums by symbol,
 * unions by branch, and each way a writer can fail to resolve. Bodies are
 * written by hand (codec_test.h), independently of the decoder. */
#include "codec_test.h"

/* The registry's ids in these tests: none is a manifest id. */
enum {
        ID_SIGNUP_TEAM = 101, /* a team's sign-up schema: other order, extra fields */
        ID_SIGNUP_MIN,        /* without the optional fields */
        ID_SIGNUP_NO_USER,    /* without user_id (required by the reader) */
        ID_PAY_V1,            /* PaymentEvent version 1 (schemas/history) */
        ID_PAY_PROMO,         /* int amount, bytes currency, enum reordered + extra */
        ID_PAY_DOUBLE,        /* double amount: cannot be read */
        ID_PAY_UNION,         /* optional event_id, currency as string|double */
        ID_PAY_OTHER_ENUM,    /* kind is an enum of another name */
        ID_OTHER_RECORD,      /* a record of another name */
        ID_NOT_RECORD,        /* a string */
        ID_ARRAYS,            /* a sign-up with an array and a map */
        ID_OURS = 200,        /* our own SignupEvent, registered */
};

/* The writers' schemas, one field per line. */
/* clang-format off */
#define F(name, type) "{\"name\":\"" name "\",\"type\":" type "}"
#define REC(name, fields)                                                         \
        "{\"type\":\"record\",\"name\":\"" name "\",\"namespace\":\"com.team\"," \
        "\"fields\":[" fields "]}"
#define OPT_STR "[\"null\",\"string\"]"
#define KIND(syms) "{\"type\":\"enum\",\"name\":\"PaymentKind\",\"symbols\":[" syms "]}"
#define PAY_HEAD                                                                  \
        F("event_id", "\"string\"") "," F("occurred_at", "\"long\"") ","         \
        F("user_id", "\"string\"") "," F("payment_id", "\"string\"") ","

static const struct {
        uint32_t id;
        const char *schema; /* NULL: schemas/history/PaymentEvent.v1.avsc */
} writers[] = {
    {ID_SIGNUP_TEAM, REC("SignupEvent",
        F("user_id", "\"string\"") ","
        F("source", "{\"type\":\"record\",\"name\":\"Src\",\"fields\":["
                    F("app", "\"string\"") "," F("v", "\"int\"") "]}") ","
        F("event_id", "\"string\"") ","
        F("score", "\"double\"") ","
        F("occurred_at", "\"long\"") ","
        F("flag", "\"boolean\"") ","
        F("ip", "{\"type\":\"fixed\",\"name\":\"Ip\",\"size\":4}") ","
        F("referral_code", OPT_STR) ","
        F("email_hash", OPT_STR) ","
        F("tier", "{\"type\":\"enum\",\"name\":\"Tier\",\"symbols\":[\"A\",\"B\"]}"))},
    {ID_SIGNUP_MIN, REC("SignupEvent",
        F("event_id", "\"string\"") ","
        F("occurred_at", "\"long\"") ","
        F("user_id", "\"string\""))},
    {ID_SIGNUP_NO_USER, REC("SignupEvent",
        F("event_id", "\"string\"") ","
        F("occurred_at", "\"long\""))},
    {ID_PAY_V1, NULL},
    {ID_PAY_PROMO, REC("PaymentEvent",
        F("event_id", "\"string\"") ","
        F("occurred_at", "\"int\"") ","
        F("user_id", "\"bytes\"") ","
        F("payment_id", "\"string\"") ","
        F("amount_minor", "\"int\"") ","
        F("currency", "\"bytes\"") ","
        F("kind", KIND("\"REFUND\",\"CHARGEBACK\",\"CHARGE\"")))},
    {ID_PAY_DOUBLE, REC("PaymentEvent", PAY_HEAD
        F("amount_minor", "\"double\"") ","
        F("currency", "\"string\"") ","
        F("kind", KIND("\"CHARGE\"")))},
    {ID_PAY_UNION, REC("PaymentEvent",
        F("event_id", OPT_STR) ","
        F("occurred_at", "\"long\"") ","
        F("user_id", "\"string\"") ","
        F("payment_id", "\"string\"") ","
        F("amount_minor", "\"long\"") ","
        F("currency", "[\"string\",\"double\"]") ","
        F("kind", KIND("\"CHARGE\",\"REFUND\"")))},
    {ID_PAY_OTHER_ENUM, REC("PaymentEvent", PAY_HEAD
        F("amount_minor", "\"long\"") ","
        F("currency", "\"string\"") ","
        F("kind", "{\"type\":\"enum\",\"name\":\"Kind\",\"symbols\":[\"CHARGE\"]}"))},
    {ID_OTHER_RECORD, REC("Signup", F("event_id", "\"string\""))},
    {ID_NOT_RECORD, "\"string\""},
    {ID_ARRAYS, REC("SignupEvent",
        F("event_id", "\"string\"") ","
        F("tags", "{\"type\":\"array\",\"items\":\"string\"}") ","
        F("occurred_at", "\"long\"") ","
        F("attrs", "{\"type\":\"map\",\"values\":\"long\"}") ","
        F("user_id", "\"string\"") ","
        F("nulls", "{\"type\":\"array\",\"items\":\"null\"}"))},
};
/* clang-format on */

static char *read_file(const char *rel, size_t *len)
{
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", getenv("RS_SOURCE_DIR"), rel);
        FILE *f = fopen(path, "rb");
        if (!f)
                fail_msg("cannot open %s (is RS_SOURCE_DIR set?)", path);
        static char buf[8192];
        *len = fread(buf, 1, sizeof(buf) - 1, f);
        buf[*len] = '\0';
        fclose(f);
        return buf;
}

static int setup_registry(void **state)
{
        if (setup(state) != 0)
                return -1;
        rs_codec_use_registry(codec);
        for (size_t i = 0; i < RS_ARRAY_SIZE(writers); i++) {
                size_t len;
                const char *s = writers[i].schema;
                if (!s)
                        s = read_file("schemas/history/PaymentEvent.v1.avsc", &len);
                rs_codec_add_schema(codec, writers[i].id, s, strlen(s));
        }
        return 0;
}

/* Records framed with manifest ids mean nothing in registry mode: they wait
 * for their schema, as do ids not yet fetched. An id the registry does not
 * know is unknown_schema until forgotten; a registered schema of ours reads
 * and frames with the registry's id. */
static void test_ids(void **state)
{
        (void)state;
        rs_buf_t b;
        rs_buf_init(&b);
        item_t it[RS_TEST_MAX_ITEMS];
        size_t n = base_items(RS_EV_SIGNUP, it);
        w_items(&b, 1, it, n);
        uint32_t id = 0;
        assert_true(rs_codec_needs_schema(codec, b.data, b.len, &id));
        assert_int_equal(id, 1);
        check_dec(RS_EV_SIGNUP, b.data, b.len, RS_ERR_SCHEMA_PENDING, "schema id 1",
                  NULL);
        rs_codec_add_unknown(codec, 1, "HTTP 404 (40403): Schema 1 not found");
        assert_false(rs_codec_needs_schema(codec, b.data, b.len, &id));
        check_dec(RS_EV_SIGNUP, b.data, b.len, RS_ERR_UNKNOWN_SCHEMA, "40403", NULL);
        size_t cached = rs_codec_cached_schemas(codec);
        rs_codec_forget_unknown(codec);
        assert_int_equal(rs_codec_cached_schemas(codec), cached);
        assert_true(rs_codec_needs_schema(codec, b.data, b.len, &id));

        assert_true(rs_codec_set_schema_id(codec, "SignupEvent", ID_OURS));
        assert_int_equal(rs_codec_schema_id(codec, "SignupEvent"), ID_OURS);
        rs_event_t ev = {.type = RS_EV_SIGNUP,
                         .event_id = "e1",
                         .occurred_at_ms = 1767225600000,
                         .user_id = "u1"};
        char errstr[256];
        rs_buf_reset(&b);
        assert_true(rs_codec_encode_event(codec, &ev, &b, errstr, sizeof(errstr)));
        assert_int_equal((uint8_t)b.data[4], ID_OURS);
        rs_event_t out;
        check_dec(RS_EV_SIGNUP, b.data, b.len, NULL, NULL, &out);
        assert_string_equal(out.user_id, "u1");
        rs_buf_t j;
        rs_buf_init(&j);
        assert_true(
            rs_codec_output_to_json(codec, b.data, b.len, &j, errstr, sizeof(errstr)));
        assert_contains(j.data, "\"user_id\":\"u1\"");
        /* A fetched schema of a team: printed by its own fields. */
        rs_buf_reset(&b);
        const item_t min[] = {STR("e2"), LONG(1767225600000), STR("u2")};
        w_items(&b, ID_SIGNUP_MIN, min, 3);
        rs_buf_reset(&j);
        assert_true(
            rs_codec_output_to_json(codec, b.data, b.len, &j, errstr, sizeof(errstr)));
        assert_string_equal(j.data, "{\"event_id\":\"e2\",\"occurred_at\":1767225600000,"
                                    "\"user_id\":\"u2\"}");
        rs_buf_free(&j);
        rs_buf_free(&b);
}

/* Writer-only fields of every type are skipped, in any order; the reader's
 * fields are found by name. */
static void test_extra_fields_skipped(void **state)
{
        (void)state;
        rs_buf_t b;
        rs_buf_init(&b);
        const item_t it[] = {STR("user-9"),
                             STR("web"),
                             LONG(-3),
                             STR("ev-9"),
                             {'x', "\x00\x00\x00\x00\x00\x00\xf0\x3f", 8, 0},
                             LONG(1767225600000),
                             {'x', "\x01", 1, 0},
                             {'x', "\x0a\x00\x00\x01", 4, 0},
                             USTR("abcd1234"),
                             UNULL,
                             ENUM(1)};
        w_items(&b, ID_SIGNUP_TEAM, it, RS_ARRAY_SIZE(it));
        rs_event_t ev;
        check_dec(RS_EV_SIGNUP, b.data, b.len, NULL, NULL, &ev);
        assert_string_equal(ev.event_id, "ev-9");
        assert_string_equal(ev.user_id, "user-9");
        assert_int_equal(ev.occurred_at_ms, 1767225600000);
        assert_string_equal(ev.referral_code, "abcd1234");
        assert_null(ev.email_hash);
        /* One byte short, one byte more: the body must match the writer. */
        check_dec(RS_EV_SIGNUP, b.data, b.len - 1, RS_ERR_AVRO_DECODE, "tier", NULL);
        rs_buf_putc(&b, 0);
        check_dec(RS_EV_SIGNUP, b.data, b.len, RS_ERR_AVRO_DECODE, "trailing", NULL);
        rs_buf_free(&b);
}

static void test_arrays_and_maps_skipped(void **state)
{
        (void)state;
        rs_buf_t b;
        rs_buf_init(&b);
        /* tags: one block of 2, then a block of -1 with its byte size;
         * attrs: {"a": 5}; nulls: 3 items. */
        const item_t it[] = {
            STR("ev-a"), LONG(2),  STR("x"), STR("yz"),           LONG(-1),
            LONG(2),     STR("w"), LONG(0),  LONG(1767225600000), LONG(1),
            STR("a"),    LONG(5),  LONG(0),  STR("user-a"),       LONG(3),
            LONG(0)};
        w_items(&b, ID_ARRAYS, it, RS_ARRAY_SIZE(it));
        rs_event_t ev;
        check_dec(RS_EV_SIGNUP, b.data, b.len, NULL, NULL, &ev);
        assert_string_equal(ev.user_id, "user-a");
        /* Not printed: avro-c would read the arrays (see rs_codec.c). */
        char errstr[256];
        rs_buf_t j;
        rs_buf_init(&j);
        assert_false(
            rs_codec_output_to_json(codec, b.data, b.len, &j, errstr, sizeof(errstr)));
        assert_contains(errstr, "arrays or maps");
        rs_buf_free(&j);
        /* Items that take no bytes cannot make the walk unbounded. */
        rs_buf_reset(&b);
        const item_t many[] = {STR("ev-b"), LONG(0),       LONG(1767225600000),
                               LONG(0),     STR("user-b"), LONG(INT64_C(1) << 40)};
        w_items(&b, ID_ARRAYS, many, RS_ARRAY_SIZE(many));
        check_dec(RS_EV_SIGNUP, b.data, b.len, RS_ERR_AVRO_DECODE, "items", NULL);
        rs_buf_reset(&b);
        const item_t neg[] = {STR("ev-c"), LONG(INT64_MIN)};
        w_items(&b, ID_ARRAYS, neg, RS_ARRAY_SIZE(neg));
        check_dec(RS_EV_SIGNUP, b.data, b.len, RS_ERR_AVRO_DECODE, "tags", NULL);
        rs_buf_free(&b);
}

/* Fields the writer lacks take the reader's defaults; a required one it
 * lacks makes the writer unreadable. */
static void test_defaults(void **state)
{
        (void)state;
        rs_buf_t b;
        rs_buf_init(&b);
        const item_t it[] = {STR("ev-m"), LONG(1767225600000), STR("user-m")};
        w_items(&b, ID_SIGNUP_MIN, it, 3);
        rs_event_t ev;
        check_dec(RS_EV_SIGNUP, b.data, b.len, NULL, NULL, &ev);
        assert_null(ev.referral_code);
        assert_null(ev.email_hash);
        rs_buf_reset(&b);
        w_items(&b, ID_SIGNUP_NO_USER, it, 2);
        check_dec(RS_EV_SIGNUP, b.data, b.len, RS_ERR_WRONG_SCHEMA, "user_id", NULL);
        /* PaymentEvent version 1: no payment_fingerprint. */
        rs_buf_reset(&b);
        item_t p[RS_TEST_MAX_ITEMS];
        base_items(RS_EV_PAYMENT, p);
        w_items(&b, ID_PAY_V1, p, RS_TEST_PAYMENT_V1_FIELDS);
        check_dec(RS_EV_PAYMENT, b.data, b.len, NULL, NULL, &ev);
        assert_null(ev.payment_fingerprint);
        assert_string_equal(ev.payment_id, "pay-1");
        /* In registry mode a body is exactly its writer's: a version 2 id
         * does not take a version 1 body. */
        assert_true(rs_codec_set_schema_id(codec, "PaymentEvent", ID_OURS + 1));
        rs_buf_reset(&b);
        w_items(&b, ID_OURS + 1, p, RS_TEST_PAYMENT_V1_FIELDS);
        check_dec(RS_EV_PAYMENT, b.data, b.len, RS_ERR_AVRO_DECODE, "payment_fingerprint",
                  NULL);
        rs_buf_reset(&b);
        w_items(&b, ID_OURS + 1, p, RS_TEST_PAYMENT_V1_FIELDS + 1);
        check_dec(RS_EV_PAYMENT, b.data, b.len, NULL, NULL, &ev);
        assert_string_equal(ev.payment_fingerprint, "fp-1");
        rs_buf_free(&b);
}

/* int -> long, bytes -> string, enum symbols by name whatever their order. */
static void test_promotions_and_enums(void **state)
{
        (void)state;
        rs_buf_t b;
        rs_buf_init(&b);
        item_t it[] = {STR("ev-p"), LONG(1000), STR("user-p"), STR("pay-p"),
                       LONG(2500),  STR("EUR"), ENUM(2)};
        w_items(&b, ID_PAY_PROMO, it, RS_ARRAY_SIZE(it));
        rs_event_t ev;
        check_dec(RS_EV_PAYMENT, b.data, b.len, NULL, NULL, &ev);
        assert_int_equal(ev.occurred_at_ms, 1000);
        assert_int_equal(ev.amount_minor, 2500);
        assert_string_equal(ev.currency, "EUR");
        assert_string_equal(ev.user_id, "user-p");
        assert_int_equal(ev.kind, RS_PAY_CHARGE);
        /* Ordinal 0 of the writer is REFUND (refund_of is then required). */
        rs_buf_reset(&b);
        it[6] = (item_t)ENUM(0);
        w_items(&b, ID_PAY_PROMO, it, RS_ARRAY_SIZE(it));
        check_dec(RS_EV_PAYMENT, b.data, b.len, RS_ERR_MISSING_FIELD, "refund_of", NULL);
        /* A symbol the reader does not have fails the record that has it. */
        rs_buf_reset(&b);
        it[6] = (item_t)ENUM(1);
        w_items(&b, ID_PAY_PROMO, it, RS_ARRAY_SIZE(it));
        check_dec(RS_EV_PAYMENT, b.data, b.len, RS_ERR_WRONG_SCHEMA, "CHARGEBACK", NULL);
        /* An int above 32 bits is a broken body, not a long. */
        rs_buf_reset(&b);
        it[6] = (item_t)ENUM(2);
        it[4] = (item_t)LONG(INT64_C(1) << 33);
        w_items(&b, ID_PAY_PROMO, it, RS_ARRAY_SIZE(it));
        check_dec(RS_EV_PAYMENT, b.data, b.len, RS_ERR_AVRO_DECODE, "amount_minor", NULL);
        rs_buf_free(&b);
}

/* A writer union is read through the branch each record takes. */
static void test_unions(void **state)
{
        (void)state;
        rs_buf_t b;
        rs_buf_init(&b);
        item_t it[] = {USTR("ev-u"), LONG(1767225600000), STR("user-u"), STR("pay-u"),
                       LONG(100),    {'i', NULL, 0, 0},   STR("USD"),    ENUM(0)};
        w_items(&b, ID_PAY_UNION, it, RS_ARRAY_SIZE(it));
        rs_event_t ev;
        check_dec(RS_EV_PAYMENT, b.data, b.len, NULL, NULL, &ev);
        assert_string_equal(ev.event_id, "ev-u");
        assert_string_equal(ev.currency, "USD");
        /* null where the reader requires a value: the field is missing */
        rs_buf_reset(&b);
        it[0] = (item_t)UNULL;
        w_items(&b, ID_PAY_UNION, it, RS_ARRAY_SIZE(it));
        check_dec(RS_EV_PAYMENT, b.data, b.len, RS_ERR_MISSING_FIELD, "event_id", NULL);
        /* the double branch of currency cannot be read as a string */
        rs_buf_reset(&b);
        it[0] = (item_t)USTR("ev-u");
        it[5] = (item_t){'i', NULL, 0, 1};
        it[6] = (item_t){'x', "\x00\x00\x00\x00\x00\x00\xf0\x3f", 8, 0};
        w_items(&b, ID_PAY_UNION, it, RS_ARRAY_SIZE(it));
        check_dec(RS_EV_PAYMENT, b.data, b.len, RS_ERR_WRONG_SCHEMA, "currency", NULL);
        check_dec(RS_EV_PAYMENT, b.data, b.len, RS_ERR_WRONG_SCHEMA, "double", NULL);
        rs_buf_free(&b);
}

/* Writers that cannot be read at all: wrong_schema with the reason, for every
 * record framed with them, whatever the body. */
static void test_unresolvable(void **state)
{
        (void)state;
        const struct {
                uint32_t id;
                rs_event_type_t t;
                const char *needle;
        } cases[] = {
            {ID_PAY_DOUBLE, RS_EV_PAYMENT, "amount_minor: double cannot be read as long"},
            {ID_PAY_OTHER_ENUM, RS_EV_PAYMENT,
             "Kind is not the reader's enum PaymentKind"},
            {ID_OTHER_RECORD, RS_EV_SIGNUP, "is Signup, expected SignupEvent"},
            {ID_NOT_RECORD, RS_EV_SIGNUP, "is a string, expected record SignupEvent"},
            {ID_SIGNUP_MIN, RS_EV_PAYMENT, "is SignupEvent, expected PaymentEvent"},
        };
        rs_codec_add_schema(codec, 300, "{\"type\": \"recor", 15);
        rs_codec_add_unusable(codec, 301, "a PROTOBUF schema");
        for (size_t i = 0; i < RS_ARRAY_SIZE(cases); i++) {
                rs_buf_t b;
                rs_buf_init(&b);
                w_hdr(&b, cases[i].id);
                check_dec(cases[i].t, b.data, b.len, RS_ERR_WRONG_SCHEMA, cases[i].needle,
                          NULL);
                rs_buf_free(&b);
        }
        check_dec(RS_EV_SIGNUP, "\0\0\0\x01\x2c", 5, RS_ERR_WRONG_SCHEMA,
                  "does not parse", NULL);
        check_dec(RS_EV_SIGNUP, "\0\0\0\x01\x2d", 5, RS_ERR_WRONG_SCHEMA, "PROTOBUF",
                  NULL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_ids),
            cmocka_unit_test(test_extra_fields_skipped),
            cmocka_unit_test(test_arrays_and_maps_skipped),
            cmocka_unit_test(test_defaults),
            cmocka_unit_test(test_promotions_and_enums),
            cmocka_unit_test(test_unions),
            cmocka_unit_test(test_unresolvable),
        };
        return cmocka_run_group_tests(tests, setup_registry, teardown);
}
