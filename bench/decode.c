/* Decoder throughput: encodes a sign-up and a payment once (Avro and JSON),
 * then decodes each N times and prints nanoseconds per record.
 *   build/rs-bench-decode [N]        (default 1000000) */
#include "rs_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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
        for (int i = 0; i < 4; i++)
                rs_buf_free(&b[i]);
        rs_codec_destroy(c);
        return 0;
}
