/* JSON input (docs/events.md §2, format 2) and the JSON rendering of input events.
 * jansson does the parsing: it rejects invalid UTF-8, lone surrogates and
 * "\u0000" (we never pass JSON_ALLOW_NUL), and with JSON_REJECT_DUPLICATES an
 * object that names a field twice, so an attacker cannot make the validator
 * and a later reader see different values. */
#include "rs_codec_internal.h"

#include <jansson.h>
#include <string.h>

static bool json_timestamp(json_t *v, rs_field_id_t id, rs_raw_field_t *f,
                           rs_decode_error_t *err)
{
        const char *name = rs_codec_fields[id].name;
        if (json_is_integer(v)) {
                f->i = json_integer_value(v);
                return true;
        }
        if (!json_is_string(v)) {
                rs_codec_err(
                    err, RS_ERR_INVALID_FIELD,
                    "%s must be epoch milliseconds (integer) or an RFC 3339 string",
                    name);
                return false;
        }
        if (!rs_parse_rfc3339(json_string_value(v), &f->i)) {
                rs_codec_err(err, RS_ERR_INVALID_FIELD,
                             "%s is not a valid RFC 3339 timestamp", name);
                return false;
        }
        return true;
}

/* Fills *f from obj[name]. Absent and null both leave f->set false; whether
 * that is allowed is rs_codec_validate()'s call. Values keep pointing into obj. */
static bool json_field(json_t *obj, rs_field_id_t id, rs_raw_field_t *f,
                       rs_decode_error_t *err)
{
        const rs_field_def_t *def = &rs_codec_fields[id];
        json_t *v = json_object_get(obj, def->name);
        if (!v || json_is_null(v))
                return true;
        switch (def->kind) {
        case RS_FK_STRING:
        case RS_FK_ENUM:
                if (!json_is_string(v)) {
                        rs_codec_err(err, RS_ERR_INVALID_FIELD, "%s must be a string",
                                     def->name);
                        return false;
                }
                f->s = json_string_value(v);
                f->len = json_string_length(v);
                break;
        case RS_FK_LONG:
                /* Money is never a float: 10.0 and 1e3 are refused too. */
                if (!json_is_integer(v)) {
                        rs_codec_err(err, RS_ERR_INVALID_FIELD, "%s must be an integer",
                                     def->name);
                        return false;
                }
                f->i = json_integer_value(v);
                break;
        case RS_FK_TIMESTAMP:
                if (!json_timestamp(v, id, f, err))
                        return false;
                break;
        }
        f->set = true;
        return true;
}

bool rs_codec_json_decode(rs_event_type_t expected, const char *buf, size_t len,
                          rs_arena_t *arena, rs_event_t *out, rs_decode_error_t *err)
{
        bool ok = false;
        json_error_t jerr;
        json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root) {
                rs_codec_err(err, RS_ERR_JSON_DECODE, "line %d column %d: %s", jerr.line,
                             jerr.column, jerr.text);
                return false;
        }
        if (!json_is_object(root)) {
                rs_codec_err(err, RS_ERR_JSON_DECODE, "not a JSON object");
                goto out;
        }
        rs_raw_event_t raw;
        memset(&raw, 0, sizeof(raw));
        raw.type = expected;
        for (int id = 0; id < RS_F__COUNT; id++) {
                if (rs_field_in((rs_field_id_t)id, expected) &&
                    !json_field(root, (rs_field_id_t)id, &raw.f[id], err))
                        goto out;
        }
        /* Copies into the arena happen here, before root is released. */
        ok = rs_codec_validate(&raw, arena, out, err);
out:
        json_decref(root);
        return ok;
}

/* ---------------------------------------------------------------- output */

static void put_key(rs_buf_t *out, const char *key, bool *first)
{
        if (!*first)
                rs_buf_putc(out, ',');
        *first = false;
        rs_buf_putc(out, '"');
        rs_buf_puts(out, key);
        rs_buf_puts(out, "\":");
}

static void put_str(rs_buf_t *out, const char *key, const char *val, bool *first)
{
        if (!val)
                return;
        put_key(out, key, first);
        rs_json_put_str(out, val, strlen(val));
}

static void put_int(rs_buf_t *out, const char *key, int64_t val, bool *first)
{
        put_key(out, key, first);
        rs_buf_printf(out, "%lld", (long long)val);
}

void rs_codec_event_to_json(const rs_event_t *ev, rs_buf_t *out)
{
        bool first = true;
        rs_buf_putc(out, '{');
        put_str(out, "event_id", ev->event_id, &first);
        put_int(out, "occurred_at", ev->occurred_at_ms, &first);
        put_str(out, "user_id", ev->user_id, &first);
        if (ev->type == RS_EV_SIGNUP) {
                put_str(out, "referral_code", ev->referral_code, &first);
                put_str(out, "email_hash", ev->email_hash, &first);
        } else {
                /* The struct field may be unterminated or partly uninitialised
                 * when filled by hand: read at most 3 bytes, up to a NUL. */
                char currency[4];
                size_t n = strnlen(ev->currency, 3);
                memcpy(currency, ev->currency, n);
                currency[n] = '\0';
                put_str(out, "payment_id", ev->payment_id, &first);
                put_int(out, "amount_minor", ev->amount_minor, &first);
                put_str(out, "currency", currency, &first);
                put_str(out, "kind", ev->kind == RS_PAY_REFUND ? "REFUND" : "CHARGE",
                        &first);
                put_str(out, "refund_of", ev->refund_of, &first);
                put_str(out, "payment_fingerprint", ev->payment_fingerprint, &first);
        }
        rs_buf_putc(out, '}');
}
