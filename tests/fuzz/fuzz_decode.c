/* libFuzzer target for the input decoder (docs/design.md §4: fuzz the decoder).
 *
 * Every input is decoded as both a SignupEvent and a PaymentEvent, by a codec
 * with the manifest's ids and by one in registry mode holding the writer
 * schemas below (ids 101-104: resolution against the reader schemas, with
 * skipped fields of every type, promotions, unions, enums, arrays and maps),
 * and rendered with rs_codec_output_to_json(). Beyond "no crash, no leak, no UB" (the
 * sanitizers), it checks properties that must hold for any accepted record:
 *   - re-encoding it as Avro, and as JSON, decodes back to the same event;
 *   - output_to_json, when it succeeds, produces valid JSON.
 * A violated property traps, so libFuzzer saves the input as a crash. */
#include "rs_codec.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rs_codec_t *codec, *registry_codec;
static rs_arena_t arena;

/* clang-format off */
static const char *const writers[] = {
    /* 101: a team's sign-up, other order, extra fields */
    "{\"type\":\"record\",\"name\":\"SignupEvent\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"user_id\",\"type\":\"bytes\"},"
    "{\"name\":\"src\",\"type\":{\"type\":\"record\",\"name\":\"S\",\"fields\":["
    "{\"name\":\"f\",\"type\":\"float\"},{\"name\":\"d\",\"type\":\"double\"}]}},"
    "{\"name\":\"event_id\",\"type\":[\"null\",\"string\",\"int\"]},"
    "{\"name\":\"occurred_at\",\"type\":[\"int\",\"long\"]},"
    "{\"name\":\"fx\",\"type\":{\"type\":\"fixed\",\"name\":\"X\",\"size\":3}},"
    "{\"name\":\"referral_code\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"b\",\"type\":\"boolean\"}]}",
    /* 102: arrays and maps to skip */
    "{\"type\":\"record\",\"name\":\"SignupEvent\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},"
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"null\"}},"
    "{\"name\":\"occurred_at\",\"type\":\"long\"},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":"
    "{\"type\":\"array\",\"items\":\"string\"}}},"
    "{\"name\":\"user_id\",\"type\":\"string\"}]}",
    /* 103: a payment with promotions, a reordered enum with an extra symbol */
    "{\"type\":\"record\",\"name\":\"PaymentEvent\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},"
    "{\"name\":\"occurred_at\",\"type\":\"long\"},"
    "{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"payment_id\",\"type\":\"bytes\"},"
    "{\"name\":\"amount_minor\",\"type\":\"int\"},"
    "{\"name\":\"currency\",\"type\":[\"string\",\"double\"]},"
    "{\"name\":\"kind\",\"type\":{\"type\":\"enum\",\"name\":\"PaymentKind\","
    "\"symbols\":[\"REFUND\",\"X\",\"CHARGE\"]}},"
    "{\"name\":\"refund_of\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"payment_fingerprint\",\"type\":[\"null\",\"string\"]}]}",
};
/* clang-format on */

static rs_codec_t *new_codec(void)
{
        char errstr[256];
        rs_codec_t *c = rs_codec_new(errstr, sizeof(errstr));
        if (!c) {
                fprintf(stderr, "rs_codec_new: %s\n", errstr);
                abort();
        }
        return c;
}

static void init_once(void)
{
        if (codec)
                return;
        codec = new_codec();
        registry_codec = new_codec();
        rs_codec_use_registry(registry_codec);
        for (size_t i = 0; i < sizeof(writers) / sizeof(writers[0]); i++)
                rs_codec_add_schema(registry_codec, 101 + (uint32_t)i, writers[i],
                                    strlen(writers[i]));
        /* 104: our own PaymentEvent, registered */
        if (!rs_codec_set_schema_id(registry_codec, "PaymentEvent", 104))
                abort();
        rs_arena_init(&arena, 0);
}

static bool str_eq(const char *a, const char *b)
{
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool event_eq(const rs_event_t *a, const rs_event_t *b)
{
        return a->type == b->type && str_eq(a->event_id, b->event_id) &&
               a->occurred_at_ms == b->occurred_at_ms && str_eq(a->user_id, b->user_id) &&
               str_eq(a->referral_code, b->referral_code) &&
               str_eq(a->email_hash, b->email_hash) &&
               str_eq(a->payment_id, b->payment_id) &&
               a->amount_minor == b->amount_minor &&
               strcmp(a->currency, b->currency) == 0 && a->kind == b->kind &&
               str_eq(a->refund_of, b->refund_of) &&
               str_eq(a->payment_fingerprint, b->payment_fingerprint);
}

/* An accepted event must survive both of our own encodings unchanged. */
static void check_roundtrip(const rs_event_t *ev)
{
        char errstr[256];
        rs_event_t again;
        rs_decode_error_t err;
        rs_buf_t b;
        rs_buf_init(&b);
        if (!rs_codec_encode_event(codec, ev, &b, errstr, sizeof(errstr)) ||
            !rs_codec_decode(codec, ev->type, b.data, b.len, &arena, &again, &err) ||
            !event_eq(ev, &again))
                __builtin_trap();
        rs_buf_reset(&b);
        rs_codec_event_to_json(ev, &b);
        if (!rs_codec_decode(codec, ev->type, b.data, b.len, &arena, &again, &err) ||
            !event_eq(ev, &again))
                __builtin_trap();
        rs_buf_free(&b);
}

static void check_output_json(rs_codec_t *c, const uint8_t *data, size_t size)
{
        char errstr[256];
        rs_buf_t b;
        rs_buf_init(&b);
        if (rs_codec_output_to_json(c, data, size, &b, errstr, sizeof(errstr))) {
                json_error_t jerr;
                /* \u0000 is valid JSON: Avro strings may carry NUL bytes. */
                json_t *o = json_loadb(b.data, b.len,
                                       JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
                if (!o)
                        __builtin_trap();
                json_decref(o);
        }
        rs_buf_free(&b);
}

/* Decodes with c as both input types: an accepted event must survive our
 * encodings (with the manifest codec), a refused one must say why. */
static void decode_all(rs_codec_t *c, const uint8_t *data, size_t size)
{
        const rs_event_type_t types[] = {RS_EV_SIGNUP, RS_EV_PAYMENT};
        for (size_t i = 0; i < 2; i++) {
                rs_event_t ev;
                rs_decode_error_t err;
                if (rs_codec_decode(c, types[i], data, size, &arena, &ev, &err)) {
                        check_roundtrip(&ev);
                } else if (!err.error_class || !err.message[0]) {
                        __builtin_trap(); /* every failure must say why */
                }
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        init_once();
        decode_all(codec, data, size);
        decode_all(registry_codec, data, size);
        check_output_json(codec, data, size);
        check_output_json(registry_codec, data, size);
        rs_arena_reset(&arena);
        return 0;
}
