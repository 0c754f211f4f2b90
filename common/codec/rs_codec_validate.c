/* Field validation shared by the Avro and JSON decoders (docs/events.md §3), plus the
 * UTF-8 helpers both need. Everything here is pure code over rs_raw_event_t. */
#include "rs_codec_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SIGNUP  (1u << RS_EV_SIGNUP)
#define PAYMENT (1u << RS_EV_PAYMENT)

/* Upper bound (exclusive) for timestamps: 3000-01-01T00:00:00Z. Anything later
 * is a unit mix-up (microseconds, nanoseconds), not a real event time. */
#define RS_TS_MAX_MS INT64_C(32503680000000)

const rs_field_def_t rs_codec_fields[RS_F__COUNT] = {
    [RS_F_EVENT_ID] = {"event_id", RS_FK_STRING, SIGNUP | PAYMENT},
    [RS_F_OCCURRED_AT] = {"occurred_at", RS_FK_TIMESTAMP, SIGNUP | PAYMENT},
    [RS_F_USER_ID] = {"user_id", RS_FK_STRING, SIGNUP | PAYMENT},
    [RS_F_REFERRAL_CODE] = {"referral_code", RS_FK_STRING, SIGNUP},
    [RS_F_EMAIL_HASH] = {"email_hash", RS_FK_STRING, SIGNUP},
    [RS_F_PAYMENT_ID] = {"payment_id", RS_FK_STRING, PAYMENT},
    [RS_F_AMOUNT_MINOR] = {"amount_minor", RS_FK_LONG, PAYMENT},
    [RS_F_CURRENCY] = {"currency", RS_FK_STRING, PAYMENT},
    [RS_F_KIND] = {"kind", RS_FK_ENUM, PAYMENT},
    [RS_F_REFUND_OF] = {"refund_of", RS_FK_STRING, PAYMENT},
    [RS_F_PAYMENT_FINGERPRINT] = {"payment_fingerprint", RS_FK_STRING, PAYMENT},
};

int rs_codec_field_id(rs_event_type_t t, const char *name)
{
        for (int f = 0; f < RS_F__COUNT; f++) {
                if (rs_field_in((rs_field_id_t)f, t) &&
                    strcmp(rs_codec_fields[f].name, name) == 0)
                        return f;
        }
        return -1;
}

void rs_codec_err(rs_decode_error_t *err, const char *error_class, const char *fmt, ...)
{
        if (!err)
                return;
        err->error_class = error_class;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
}

/* ---------------------------------------------------------------- UTF-8 */

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF), or 0 if it is not one. Postgres
 * rejects exactly these, so a string that passes here can be stored. */
static size_t utf8_seq_len(const unsigned char *p, size_t avail)
{
        unsigned char c = p[0];
        size_t n;
        unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the 2nd byte */
        if (c < 0x80)
                return 1;
        if (c >= 0xC2 && c <= 0xDF) {
                n = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
                n = 3;
                if (c == 0xE0)
                        lo = 0xA0; /* overlong */
                else if (c == 0xED)
                        hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
                n = 4;
                if (c == 0xF0)
                        lo = 0x90; /* overlong */
                else if (c == 0xF4)
                        hi = 0x8F; /* > U+10FFFF */
        } else {
                return 0;
        }
        if (avail < n || p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++) {
                if (p[i] < 0x80 || p[i] > 0xBF)
                        return 0;
        }
        return n;
}

bool rs_utf8_valid(const char *s, size_t len)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t i = 0;
        while (i < len) {
                if (p[i] < 0x80) { /* ASCII fast path: ids are mostly ASCII */
                        i++;
                        continue;
                }
                size_t n = utf8_seq_len(p + i, len - i);
                if (n == 0)
                        return false;
                i += n;
        }
        return true;
}

void rs_json_put_str(rs_buf_t *out, const char *s, size_t len)
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *p = (const unsigned char *)s;
        rs_buf_reserve(out, len + 2);
        rs_buf_putc(out, '"');
        size_t i = 0;
        while (i < len) {
                unsigned char c = p[i];
                if (c == '"' || c == '\\') {
                        char esc[2] = {'\\', (char)c};
                        rs_buf_append(out, esc, 2);
                        i++;
                } else if (c < 0x20) {
                        char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
                        rs_buf_append(out, esc, sizeof(esc));
                        i++;
                } else {
                        size_t n = utf8_seq_len(p + i, len - i);
                        if (n == 0) {
                                rs_buf_puts(out, "\\ufffd");
                                n = 1;
                        } else {
                                rs_buf_append(out, p + i, n);
                        }
                        i += n;
                }
        }
        rs_buf_putc(out, '"');
}

/* ---------------------------------------------------------------- fields */

static const char *fname(rs_field_id_t id)
{
        return rs_codec_fields[id].name;
}

/* Content rules every string obeys, then the length bounds (in bytes). */
static bool check_str(const rs_raw_field_t *f, rs_field_id_t id, size_t min, size_t max,
                      rs_decode_error_t *err)
{
        if (memchr(f->s, '\0', f->len)) {
                rs_codec_err(err, RS_ERR_INVALID_FIELD, "%s contains a NUL byte",
                             fname(id));
                return false;
        }
        if (!rs_utf8_valid(f->s, f->len)) {
                rs_codec_err(err, RS_ERR_INVALID_FIELD, "%s is not valid UTF-8",
                             fname(id));
                return false;
        }
        if (f->len < min || f->len > max) {
                rs_codec_err(err, RS_ERR_INVALID_FIELD,
                             "%s must be %zu-%zu bytes, got %zu", fname(id), min, max,
                             f->len);
                return false;
        }
        return true;
}

static bool require(const rs_raw_event_t *raw, rs_field_id_t id, rs_decode_error_t *err)
{
        if (raw->f[id].set)
                return true;
        rs_codec_err(err, RS_ERR_MISSING_FIELD, "%s is required", fname(id));
        return false;
}

/* Required string: *dst is an arena copy. */
static bool req_str(const rs_raw_event_t *raw, rs_field_id_t id, size_t max,
                    rs_arena_t *arena, const char **dst, rs_decode_error_t *err)
{
        const rs_raw_field_t *f = &raw->f[id];
        if (!require(raw, id, err) || !check_str(f, id, 1, max, err))
                return false;
        *dst = rs_arena_strndup(arena, f->s, f->len);
        return true;
}

/* Optional string: *dst stays NULL when absent or null. */
static bool opt_str(const rs_raw_event_t *raw, rs_field_id_t id, size_t min, size_t max,
                    rs_arena_t *arena, const char **dst, rs_decode_error_t *err)
{
        const rs_raw_field_t *f = &raw->f[id];
        *dst = NULL;
        if (!f->set)
                return true;
        if (!check_str(f, id, min, max, err))
                return false;
        *dst = rs_arena_strndup(arena, f->s, f->len);
        return true;
}

static bool check_common(const rs_raw_event_t *raw, rs_arena_t *arena, rs_event_t *out,
                         rs_decode_error_t *err)
{
        if (!req_str(raw, RS_F_EVENT_ID, RS_EVENT_ID_MAX, arena, &out->event_id, err) ||
            !require(raw, RS_F_OCCURRED_AT, err))
                return false;
        int64_t ts = raw->f[RS_F_OCCURRED_AT].i;
        if (ts <= 0 || ts >= RS_TS_MAX_MS) {
                rs_codec_err(err, RS_ERR_INVALID_FIELD,
                             "occurred_at %lld ms is out of range (after 1970, before "
                             "year 3000)",
                             (long long)ts);
                return false;
        }
        out->occurred_at_ms = ts;
        return req_str(raw, RS_F_USER_ID, RS_USER_ID_MAX, arena, &out->user_id, err);
}

static bool check_signup(const rs_raw_event_t *raw, rs_arena_t *arena, rs_event_t *out,
                         rs_decode_error_t *err)
{
        /* The code is kept exactly as received (an empty one included): the
         * rules engine trims and upper-cases it, and a rejection record should
         * show what the user typed. */
        return opt_str(raw, RS_F_REFERRAL_CODE, 0, RS_REFERRAL_CODE_INPUT_MAX, arena,
                       &out->referral_code, err) &&
               opt_str(raw, RS_F_EMAIL_HASH, 1, RS_EMAIL_HASH_MAX, arena,
                       &out->email_hash, err);
}

static bool check_kind(const rs_raw_event_t *raw, rs_event_t *out, rs_decode_error_t *err)
{
        const rs_raw_field_t *f = &raw->f[RS_F_KIND];
        if (!require(raw, RS_F_KIND, err))
                return false;
        if (f->len == 6 && memcmp(f->s, "CHARGE", 6) == 0) {
                out->kind = RS_PAY_CHARGE;
        } else if (f->len == 6 && memcmp(f->s, "REFUND", 6) == 0) {
                out->kind = RS_PAY_REFUND;
        } else {
                rs_codec_err(err, RS_ERR_INVALID_FIELD, "kind must be CHARGE or REFUND");
                return false;
        }
        return true;
}

static bool check_payment(const rs_raw_event_t *raw, rs_arena_t *arena, rs_event_t *out,
                          rs_decode_error_t *err)
{
        if (!req_str(raw, RS_F_PAYMENT_ID, RS_PAYMENT_ID_MAX, arena, &out->payment_id,
                     err) ||
            !require(raw, RS_F_AMOUNT_MINOR, err))
                return false;
        out->amount_minor = raw->f[RS_F_AMOUNT_MINOR].i;
        if (out->amount_minor < 0) {
                rs_codec_err(err, RS_ERR_INVALID_FIELD, "amount_minor must be >= 0");
                return false;
        }
        const rs_raw_field_t *cur = &raw->f[RS_F_CURRENCY];
        if (!require(raw, RS_F_CURRENCY, err) ||
            !check_str(cur, RS_F_CURRENCY, 0, SIZE_MAX, err))
                return false;
        if (cur->len == 3) {
                memcpy(out->currency, cur->s, 3);
                out->currency[3] = '\0';
        }
        if (cur->len != 3 || !rs_valid_currency(out->currency)) {
                rs_codec_err(err, RS_ERR_INVALID_FIELD,
                             "currency must be 3 upper-case ASCII letters (ISO 4217)");
                return false;
        }
        if (!check_kind(raw, out, err) ||
            !opt_str(raw, RS_F_REFUND_OF, 1, RS_PAYMENT_ID_MAX, arena, &out->refund_of,
                     err) ||
            !opt_str(raw, RS_F_PAYMENT_FINGERPRINT, 1, RS_FINGERPRINT_MAX, arena,
                     &out->payment_fingerprint, err))
                return false;
        if (out->kind == RS_PAY_REFUND && !out->refund_of) {
                rs_codec_err(err, RS_ERR_MISSING_FIELD,
                             "refund_of is required when kind is REFUND");
                return false;
        }
        return true;
}

bool rs_codec_validate(const rs_raw_event_t *raw, rs_arena_t *arena, rs_event_t *out,
                       rs_decode_error_t *err)
{
        memset(out, 0, sizeof(*out));
        out->type = raw->type;
        if (!check_common(raw, arena, out, err))
                return false;
        if (raw->type == RS_EV_SIGNUP)
                return check_signup(raw, arena, out, err);
        return check_payment(raw, arena, out, err);
}
