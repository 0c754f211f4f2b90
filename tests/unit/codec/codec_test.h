#ifndef CODEC_TEST_H
#define CODEC_TEST_H
/* Shared by the codec unit tests (test_codec*.c): a codec and an arena per
 * test binary, a decode-and-check helper, and builders for hand-written Avro
 * and mutated JSON, so each test states only what differs from a valid
 * record. Header-only because each test_*.c is its own executable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rs_codec.h"
#include "rs_codec_internal.h"

/* Not every test binary uses every helper. */
#define RS_TEST_HELPER __attribute__((unused))

static rs_codec_t *codec;
static rs_arena_t arena;

RS_TEST_HELPER static int setup(void **state)
{
        (void)state;
        char errstr[256] = "";
        codec = rs_codec_new(errstr, sizeof(errstr));
        if (!codec) {
                fprintf(stderr, "rs_codec_new: %s\n", errstr);
                return -1;
        }
        rs_arena_init(&arena, 0);
        return 0;
}

RS_TEST_HELPER static int teardown(void **state)
{
        (void)state;
        rs_codec_destroy(codec);
        rs_arena_destroy(&arena);
        return 0;
}

/* ---------------------------------------------------------------- helpers */

RS_TEST_HELPER static void assert_contains(const char *hay, const char *needle)
{
        if (!strstr(hay, needle))
                fail_msg("\"%s\" does not contain \"%s\"", hay, needle);
}

/* Decodes and, on failure, checks the error class and that the message names
 * `needle`. cls == NULL means success is expected. */
RS_TEST_HELPER static void check_dec(rs_event_type_t t, const void *buf, size_t len,
                                     const char *cls, const char *needle,
                                     rs_event_t *ev_out)
{
        rs_event_t ev;
        rs_decode_error_t err = {0};
        bool ok = rs_codec_decode(codec, t, buf, len, &arena, &ev, &err);
        if (!cls) {
                if (!ok)
                        fail_msg("decode failed: %s: %s", err.error_class, err.message);
                if (ev_out)
                        *ev_out = ev;
                return;
        }
        if (ok)
                fail_msg("decode succeeded, expected %s (%s)", cls, needle ? needle : "");
        assert_non_null(err.error_class);
        if (strcmp(err.error_class, cls) != 0)
                fail_msg("error class %s (%s), expected %s", err.error_class, err.message,
                         cls);
        if (needle)
                assert_contains(err.message, needle);
}

/* Hand-written Avro, so tests can say things the encoder never would. */
typedef struct item {
        char kind; /* s string, l long, n union-null, u union-string, e enum,
                      i raw union index (then the item's payload), x raw bytes */
        const char *s;
        size_t len;
        int64_t i;
} item_t;

#define STR(x)                                                                           \
        {                                                                                \
                's', x, sizeof(x) - 1, 0                                                 \
        }
#define USTR(x)                                                                          \
        {                                                                                \
                'u', x, sizeof(x) - 1, 0                                                 \
        }
#define LONG(x)                                                                          \
        {                                                                                \
                'l', NULL, 0, x                                                          \
        }
#define UNULL                                                                            \
        {                                                                                \
                'n', NULL, 0, 0                                                          \
        }
#define ENUM(x)                                                                          \
        {                                                                                \
                'e', NULL, 0, x                                                          \
        }

RS_TEST_HELPER static void w_long(rs_buf_t *b, int64_t v)
{
        uint64_t n = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
        while (n & ~(uint64_t)0x7f) {
                rs_buf_putc(b, (char)((n & 0x7f) | 0x80));
                n >>= 7;
        }
        rs_buf_putc(b, (char)n);
}

RS_TEST_HELPER static void w_hdr(rs_buf_t *b, uint32_t id)
{
        const char h[5] = {0, (char)(id >> 24), (char)(id >> 16), (char)(id >> 8),
                           (char)id};
        rs_buf_append(b, h, 5);
}

RS_TEST_HELPER static void w_items(rs_buf_t *b, uint32_t id, const item_t *it, size_t n)
{
        w_hdr(b, id);
        for (size_t k = 0; k < n; k++) {
                switch (it[k].kind) {
                case 'u':
                        w_long(b, 1);
                        /* fallthrough */
                case 's':
                        w_long(b, (int64_t)it[k].len);
                        rs_buf_append(b, it[k].s, it[k].len);
                        break;
                case 'n':
                        w_long(b, 0);
                        break;
                case 'l':
                case 'e':
                case 'i':
                        w_long(b, it[k].i);
                        break;
                case 'x':
                        rs_buf_append(b, it[k].s, it[k].len);
                        break;
                }
        }
}

static const char *signup_fields[] = {"event_id", "occurred_at", "user_id",
                                      "referral_code", "email_hash"};
static const char *payment_fields[] = {
    "event_id", "occurred_at", "user_id",   "payment_id",         "amount_minor",
    "currency", "kind",        "refund_of", "payment_fingerprint"};
#define RS_TEST_MAX_ITEMS 12
/* PaymentEvent version 1 (schemas/history): the fields before payment_fingerprint. */
#define RS_TEST_PAYMENT_V1_FIELDS 8

RS_TEST_HELPER static size_t base_items(rs_event_type_t t, item_t *it)
{
        static const item_t signup[] = {STR("ev-1"), LONG(1767225600000), STR("user-1"),
                                        USTR("abcd1234"), USTR("hash-1")};
        static const item_t payment[] = {
            STR("ev-2"), LONG(1767225600000), STR("user-1"), STR("pay-1"),
            LONG(1999),  STR("USD"),          ENUM(0),       UNULL,
            USTR("fp-1")};
        const item_t *src = t == RS_EV_SIGNUP ? signup : payment;
        size_t n = t == RS_EV_SIGNUP ? RS_ARRAY_SIZE(signup) : RS_ARRAY_SIZE(payment);
        memcpy(it, src, n * sizeof(*it));
        return n;
}

RS_TEST_HELPER static int field_index(rs_event_type_t t, const char *field)
{
        const char **names = t == RS_EV_SIGNUP ? signup_fields : payment_fields;
        size_t n = t == RS_EV_SIGNUP ? RS_ARRAY_SIZE(signup_fields)
                                     : RS_ARRAY_SIZE(payment_fields);
        for (size_t i = 0; i < n; i++) {
                if (strcmp(names[i], field) == 0)
                        return (int)i;
        }
        fail_msg("no field %s", field);
        return -1;
}

/* The base record of type t with one field replaced, as framed Avro. */
RS_TEST_HELPER static void avro_mut(rs_buf_t *b, rs_event_type_t t, const char *field,
                                    item_t v)
{
        item_t it[RS_TEST_MAX_ITEMS];
        size_t n = base_items(t, it);
        if (field)
                it[field_index(t, field)] = v;
        w_items(b, (uint32_t)t, it, n);
}

RS_TEST_HELPER static json_t *base_json(rs_event_type_t t)
{
        if (t == RS_EV_SIGNUP)
                return json_pack("{s:s, s:I, s:s, s:s, s:s}", "event_id", "ev-1",
                                 "occurred_at", (json_int_t)1767225600000, "user_id",
                                 "user-1", "referral_code", "abcd1234", "email_hash",
                                 "hash-1");
        return json_pack("{s:s, s:I, s:s, s:s, s:I, s:s, s:s}", "event_id", "ev-2",
                         "occurred_at", (json_int_t)1767225600000, "user_id", "user-1",
                         "payment_id", "pay-1", "amount_minor", (json_int_t)1999,
                         "currency", "USD", "kind", "CHARGE");
}

/* The base record of type t with field set to v (stolen; NULL deletes it). */
RS_TEST_HELPER static char *json_mut(rs_event_type_t t, const char *field, json_t *v)
{
        json_t *o = base_json(t);
        if (field && v)
                json_object_set_new(o, field, v);
        else if (field)
                json_object_del(o, field);
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return s;
}

RS_TEST_HELPER static void expect_json(rs_event_type_t t, const char *field, json_t *v,
                                       const char *cls, const char *needle)
{
        char *s = json_mut(t, field, v);
        check_dec(t, s, strlen(s), cls, needle, NULL);
        free(s);
}

RS_TEST_HELPER static void expect_avro(rs_event_type_t t, const char *field, item_t v,
                                       const char *cls, const char *needle)
{
        rs_buf_t b;
        rs_buf_init(&b);
        avro_mut(&b, t, field, v);
        check_dec(t, b.data, b.len, cls, needle, NULL);
        rs_buf_free(&b);
}

/* One rule, both formats: the same class and field name either way. */
RS_TEST_HELPER static void expect_both(rs_event_type_t t, const char *field, json_t *jv,
                                       item_t av, const char *cls)
{
        expect_json(t, field, jv, cls, field);
        expect_avro(t, field, av, cls, field);
}

RS_TEST_HELPER static char *repeat(char c, size_t n)
{
        char *s = rs_arena_alloc(&arena, n + 1);
        memset(s, c, n);
        s[n] = '\0';
        return s;
}

#endif
