/* Decoder throughput: encodes a sign-up and a payment once (Avro and JSON),
 * then decodes each N times and prints nanoseconds per record; and the
 * sign-up as a team's writer with three more fields would send it through a
 * schema registry (resolved against the reader schema, the extra fields
 * skipped).
 *   build/rs-bench-decode [N]        (default 1000000) */
#include "rs_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* SignupEvent with three fields refstream does not know, after its own. */
static const char team_signup[] =
    "{\"type\":\"record\",\"name\":\"SignupEvent\",\"namespace\":\"com.team\","
    "\"fields\":[{\"name\":\"event_id\",\"type\":\"string\"},"
    "{\"name\":\"occurred_at\",\"type\":\"long\"},"
    "{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"referral_code\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"email_hash\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"utm_source\",\"type\":\"string\"},"
    "{\"name\":\"score\",\"type\":\"double\"},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}}]}";
/* Their Avro encoding: "newsletter", 0.5, ["a", "bc"]. */
static const char team_extra[] = "\x14newsletter"
                                 "\x00\x00\x00\x00\x00\x00\xe0\x3f"
                                 "\x04\x02"
                                 "a"
                                 "\x04"
                                 "bc"
                                 "\x00";

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void run(rs_codec_t *c, const char *what, rs_event_type_t type,
                const rs_buf_t *rec, long n)
{
        rs_arena_t a;
        rs_arena_init(&a, 0);
        rs_event_t ev;
        rs_decode_error_t err;
        double t0 = now_s();
        for (long i = 0; i < n; i++) {
                if (!rs_codec_decode(c, type, rec->data, rec->len, &a, &ev, &err)) {
                        fprintf(stderr, "decode failed: %s\n", err.message);
                        exit(1);
                }
                if ((i & 1023) == 1023)
                        rs_arena_reset(&a);
        }
        double dt = now_s() - t0;
        printf("%-16s %8.0f ns/record %10.0f records/s\n", what, dt * 1e9 / (double)n,
               (double)n / dt);
        rs_arena_destroy(&a);
}

int main(int argc, char **argv)
{
        long n = argc > 1 ? atol(argv[1]) : 1000000;
        char err[256];
        rs_codec_t *c = rs_codec_new(err, sizeof(err));
        if (!c) {
                fprintf(stderr, "%s\n", err);
                return 1;
        }
        rs_event_t su = {.type = RS_EV_SIGNUP,
                         .event_id = "evt-0123456789abcdef",
                         .occurred_at_ms = 1767225600000,
                         .user_id = "user-000123456",
                         .referral_code = "7K3QX9ZD",
                         .email_hash = "h-5d41402abc4b2a76"};
        rs_event_t pay = {.type = RS_EV_PAYMENT,
                          .event_id = "evt-0123456789abcdeg",
                          .occurred_at_ms = 1767225660000,
                          .user_id = "user-000123456",
                          .payment_id = "pay-000987654",
                          .amount_minor = 1999,
                          .currency = "USD",
                          .kind = RS_PAY_CHARGE};
        rs_buf_t b[4];
        for (int i = 0; i < 4; i++)
                rs_buf_init(&b[i]);
        if (!rs_codec_encode_event(c, &su, &b[0], err, sizeof(err)) ||
            !rs_codec_encode_event(c, &pay, &b[1], err, sizeof(err))) {
                fprintf(stderr, "%s\n", err);
                return 1;
        }
        rs_codec_event_to_json(&su, &b[2]);
        rs_codec_event_to_json(&pay, &b[3]);
        run(c, "signup avro", RS_EV_SIGNUP, &b[0], n);
        run(c, "payment avro", RS_EV_PAYMENT, &b[1], n);
        run(c, "signup json", RS_EV_SIGNUP, &b[2], n);
        run(c, "payment json", RS_EV_PAYMENT, &b[3], n);
        /* The same sign-up body, framed with a registry id of the team's
         * schema, with the extra fields appended. */
        rs_codec_t *reg = rs_codec_new(err, sizeof(err));
        rs_codec_use_registry(reg);
        rs_codec_add_schema(reg, 100, team_signup, strlen(team_signup));
        rs_buf_t team;
        rs_buf_init(&team);
        rs_buf_append(&team, "\0\0\0\0\x64", 5);
        rs_buf_append(&team, b[0].data + 5, b[0].len - 5);
        rs_buf_append(&team, team_extra, sizeof(team_extra) - 1);
        run(reg, "signup resolved", RS_EV_SIGNUP, &team, n);
        rs_buf_free(&team);
        rs_codec_destroy(reg);
        for (int i = 0; i < 4; i++)
                rs_buf_free(&b[i]);
        rs_codec_destroy(c);
        return 0;
}
