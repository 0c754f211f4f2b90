/* refstream publish signup|payment: one event from flags, or many from JSON
 * lines on stdin (each line is validated exactly as the processor would). */
#include "rs_cli.h"
#include "rs_codec.h"
#include "rs_producer.h"
#include "rs_kafka.h"
#include "rs_log.h"
#include "rs_publisher.h"

#include <stdlib.h>
#include <string.h>

enum {
        O_EVENT_ID,
        O_AT,
        O_USER,
        O_CODE,
        O_EMAIL,
        O_PAYMENT,
        O_AMOUNT,
        O_CURRENCY,
        O_KIND,
        O_REFUND_OF,
        O_FINGERPRINT,
        O_FORMAT,
        O_TOPIC,
};

static const rs_cli_opt_t opts[] = {
    [O_EVENT_ID] = {"event-id", true, "ID", "event id (default: a random one)"},
    [O_AT] = {"occurred-at", true, "T", "RFC 3339 time or epoch ms (default: now)"},
    [O_USER] = {"user", true, "U", "user id; without it, JSON lines are read from stdin"},
    [O_CODE] = {"code", true, "CODE", "signup: referral code"},
    [O_EMAIL] = {"email-hash", true, "H", "signup: e-mail hash"},
    [O_PAYMENT] = {"payment-id", true, "P", "payment: payment id"},
    [O_AMOUNT] = {"amount", true, "MINOR", "payment: amount in minor units"},
    [O_CURRENCY] = {"currency", true, "CUR", "payment: ISO 4217 currency"},
    [O_KIND] = {"kind", true, "KIND", "payment: CHARGE (default) or REFUND"},
    [O_REFUND_OF] = {"refund-of", true, "P", "payment: the refunded payment id"},
    [O_FINGERPRINT] = {"fingerprint", true, "F",
                       "payment: payment-method fingerprint (schema version 2)"},
    [O_FORMAT] = {"format", true, "FMT", "avro (default) or json"},
    [O_TOPIC] = {"topic", true, "TOPIC", "override the configured topic"},
};

typedef struct pub_args {
        const char *v[RS_ARRAY_SIZE(opts)];
} pub_args_t;

static bool on_opt(void *ctx, int idx, const char *arg, char *errstr, size_t errstr_size)
{
        pub_args_t *a = ctx;
        if (idx == O_FORMAT && strcmp(arg, "avro") != 0 && strcmp(arg, "json") != 0) {
                snprintf(errstr, errstr_size, "--format: '%s' is not avro or json", arg);
                return false;
        }
        a->v[idx] = arg;
        return true;
}

static bool parse_time(const char *s, int64_t *out)
{
        return rs_parse_int64(s, 1, INT64_MAX, out) || rs_parse_rfc3339(s, out);
}

/* Builds the event from flags, then validates it by a JSON round trip through
 * the same decoder the processor uses. */
static bool event_from_flags(const pub_args_t *a, rs_event_type_t type, rs_codec_t *codec,
                             rs_arena_t *arena, rs_event_t *ev, char *errstr,
                             size_t errstr_size)
{
        char id[64];
        rs_event_t raw = {.type = type, .user_id = a->v[O_USER]};
        if (!a->v[O_EVENT_ID])
                rs_publisher_event_id(id, sizeof(id));
        raw.event_id = a->v[O_EVENT_ID] ? a->v[O_EVENT_ID] : id;
        raw.occurred_at_ms = rs_now_ms();
        if (a->v[O_AT] && !parse_time(a->v[O_AT], &raw.occurred_at_ms)) {
                snprintf(errstr, errstr_size, "--occurred-at: '%s' is not a time",
                         a->v[O_AT]);
                return false;
        }
        raw.referral_code = a->v[O_CODE];
        raw.email_hash = a->v[O_EMAIL];
        raw.payment_id = a->v[O_PAYMENT];
        raw.refund_of = a->v[O_REFUND_OF];
        raw.payment_fingerprint = a->v[O_FINGERPRINT];
        if (a->v[O_AMOUNT] &&
            !rs_parse_int64(a->v[O_AMOUNT], 0, INT64_MAX, &raw.amount_minor)) {
                snprintf(errstr, errstr_size,
                         "--amount: '%s' is not a non-negative integer", a->v[O_AMOUNT]);
                return false;
        }
        rs_strlcpy(raw.currency, a->v[O_CURRENCY] ? a->v[O_CURRENCY] : "",
                   sizeof(raw.currency));
        raw.kind = a->v[O_KIND] && strcmp(a->v[O_KIND], "REFUND") == 0 ? RS_PAY_REFUND
                                                                       : RS_PAY_CHARGE;
        if (a->v[O_KIND] && strcmp(a->v[O_KIND], "REFUND") &&
            strcmp(a->v[O_KIND], "CHARGE")) {
                snprintf(errstr, errstr_size, "--kind: '%s' is not CHARGE or REFUND",
                         a->v[O_KIND]);
                return false;
        }
        rs_buf_t json;
        rs_buf_init(&json);
        rs_codec_event_to_json(&raw, &json);
        rs_decode_error_t derr;
        bool ok = rs_codec_decode(codec, type, json.data, json.len, arena, ev, &derr);
        if (!ok)
                snprintf(errstr, errstr_size, "%s", derr.message);
        rs_buf_free(&json);
        return ok;
}

static long publish_stdin(rs_publisher_t *pub, rs_codec_t *codec, rs_event_type_t type,
                          const char *topic, long *bad)
{
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        long lineno = 0, sent = 0;
        rs_arena_t arena;
        rs_arena_init(&arena, 64 * 1024);
        while ((n = getline(&line, &cap, stdin)) > 0) {
                lineno++;
                while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                        line[--n] = '\0';
                if (n == 0)
                        continue;
                rs_event_t ev;
                rs_decode_error_t derr;
                char err[512];
                if (!rs_codec_decode(codec, type, line, (size_t)n, &arena, &ev, &derr)) {
                        fprintf(stderr, "refstream publish: line %ld: %s: %s\n", lineno,
                                derr.error_class, derr.message);
                        (*bad)++;
                } else if (!rs_publisher_send(pub, &ev, topic, err, sizeof(err))) {
                        fprintf(stderr, "refstream publish: line %ld: %s\n", lineno, err);
                        (*bad)++;
                } else {
                        sent++;
                }
                rs_arena_reset(&arena);
        }
        free(line);
        rs_arena_destroy(&arena);
        return sent;
}

static int run(const rs_config_t *cfg, const pub_args_t *a, rs_event_type_t type)
{
        char err[1024];
        int rc = RS_EXIT_OK;
        rs_arena_t arena;
        rs_arena_init(&arena, 4096);
        rs_codec_t *codec = rs_codec_new(err, sizeof(err));
        bool json = a->v[O_FORMAT] && strcmp(a->v[O_FORMAT], "json") == 0;
        rs_publisher_t *pub =
            codec ? rs_publisher_new(cfg, codec, json, err, sizeof(err)) : NULL;
        long bad = 0, sent = 0;
        rs_event_t ev;
        if (!pub) {
                fprintf(stderr, "refstream publish: %s\n", err);
                rc = RS_EXIT_FAILURE;
        } else if (!a->v[O_USER]) {
                sent = publish_stdin(pub, codec, type, a->v[O_TOPIC], &bad);
        } else if (!event_from_flags(a, type, codec, &arena, &ev, err, sizeof(err))) {
                fprintf(stderr, "refstream publish: %s\n", err);
                rc = RS_EXIT_USAGE;
        } else if (!rs_publisher_send(pub, &ev, a->v[O_TOPIC], err, sizeof(err))) {
                fprintf(stderr, "refstream publish: %s\n", err);
                rc = RS_EXIT_FAILURE;
        } else {
                sent = 1;
                printf("%s\n", ev.event_id);
        }
        if (pub) {
                long failed = rs_publisher_finish(pub, 30000);
                fprintf(stderr, "refstream publish: %ld %s events delivered to %s%s\n",
                        rs_publisher_delivered(pub),
                        type == RS_EV_SIGNUP ? "signup" : "payment",
                        a->v[O_TOPIC] ? a->v[O_TOPIC] : rs_kafka_input_topic(cfg, type),
                        bad ? "; some input lines were invalid (see above)" : "");
                if ((failed || bad || rs_publisher_delivered(pub) != sent) &&
                    rc == RS_EXIT_OK)
                        rc = RS_EXIT_FAILURE;
        }
        rs_publisher_destroy(pub);
        rs_codec_destroy(codec);
        rs_arena_destroy(&arena);
        return rc;
}

int rs_cmd_publish(int argc, char **argv)
{
        pub_args_t a = {0};
        const rs_cli_t cli = {
            .command = "refstream publish",
            .usage =
                "refstream publish signup|payment [OPTIONS] [SETTINGS]\n\n"
                "Publishes one event built from the options, or, without --user, one "
                "event per JSON line\non stdin (the fields of docs/events.md §3). Events "
                "are "
                "validated first; the key is the user id.\nPrints the event id of a "
                "single event. Exit 1 if any line was invalid or undelivered.",
            .opts = opts,
            .nopts = RS_ARRAY_SIZE(opts),
            .handler = on_opt,
            .ctx = &a,
            .config_flags = true,
        };
        rs_config_t cfg;
        int first = 0;
        int rc = rs_cli_parse(&cli, argc, argv, &cfg, &first);
        if (rc < 0) {
                rs_event_type_t type = RS_EV_SIGNUP;
                if (first != argc - 1 || (strcmp(argv[first], "signup") != 0 &&
                                          strcmp(argv[first], "payment") != 0)) {
                        fprintf(stderr,
                                "refstream publish: expected signup or payment\nTry "
                                "'refstream publish --help'.\n");
                        rc = RS_EXIT_USAGE;
                } else {
                        type = strcmp(argv[first], "signup") == 0 ? RS_EV_SIGNUP
                                                                  : RS_EV_PAYMENT;
                        rc = run(&cfg, &a, type);
                }
        }
        rs_config_free(&cfg);
        return rc;
}
