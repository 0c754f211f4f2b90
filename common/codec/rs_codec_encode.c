/* Encoders: C structs -> Confluent-framed Avro (0x00, 4-byte big-endian schema
 * id from the manifest or the registry, Avro binary). Fields are set by name through
 * avro-c's generic values, so a reordered schema cannot silently swap two fields.
 *
 * Each call builds its own value from the shared (immutable, atomically
 * refcounted) class, so encoders may run on several threads with one codec.
 * Errors are sticky in enc_t: the encoders read as a flat list of fields and
 * the first failure is the one reported. */
#include "rs_codec_internal.h"

#include <string.h>

typedef struct enc {
        avro_value_t rec;
        bool ok;
        char *errstr;
        size_t errstr_size;
} enc_t;

static bool enc_fail(enc_t *e, const char *field, const char *why)
{
        if (e->ok)
                snprintf(e->errstr, e->errstr_size, "%s: %s", field, why);
        e->ok = false;
        return false;
}

static bool enc_begin(enc_t *e, const rs_schema_entry_t *s, char *errstr,
                      size_t errstr_size)
{
        e->ok = true;
        e->errstr = errstr;
        e->errstr_size = errstr_size;
        if (avro_generic_value_new(s->iface, &e->rec) != 0) {
                snprintf(errstr, errstr_size, "%s: %s", s->name, avro_strerror());
                return false;
        }
        return true;
}

/* Looks up a field; for a union, selects the branch of type t. */
static bool enc_field(enc_t *e, const char *name, avro_type_t t, avro_value_t *out)
{
        if (!e->ok)
                return false;
        if (avro_value_get_by_name(&e->rec, name, out, NULL) != 0)
                return enc_fail(e, name, "not in the schema");
        if (avro_value_get_type(out) != AVRO_UNION)
                return true;
        avro_schema_t u = avro_value_get_schema(out);
        for (size_t i = 0; u && i < avro_schema_union_size(u); i++) {
                avro_value_t branch;
                if (avro_typeof(avro_schema_union_branch(u, (int)i)) == t) {
                        if (avro_value_set_branch(out, (int)i, &branch) != 0)
                                return enc_fail(e, name, avro_strerror());
                        *out = branch;
                        return true;
                }
        }
        return enc_fail(e, name, "no union branch for this value");
}

static void enc_check(enc_t *e, const char *name, int rc)
{
        if (rc != 0)
                enc_fail(e, name, avro_strerror());
}

/* A NULL string is written as null where the schema allows it (optional
 * fields are ["null","string"]) and is an error where it does not. */
static void enc_str(enc_t *e, const char *name, const char *s)
{
        avro_value_t f;
        if (!enc_field(e, name, s ? AVRO_STRING : AVRO_NULL, &f))
                return;
        if (s)
                enc_check(e, name, avro_value_set_string(&f, s));
        else if (avro_value_get_type(&f) == AVRO_NULL)
                enc_check(e, name, avro_value_set_null(&f));
        else
                enc_fail(e, name, "required, got NULL");
}

static void enc_long(enc_t *e, const char *name, int64_t v)
{
        avro_value_t f;
        if (enc_field(e, name, AVRO_INT64, &f))
                enc_check(e, name, avro_value_set_long(&f, v));
}

static void enc_int(enc_t *e, const char *name, int32_t v)
{
        avro_value_t f;
        if (enc_field(e, name, AVRO_INT32, &f))
                enc_check(e, name, avro_value_set_int(&f, v));
}

static void enc_bool(enc_t *e, const char *name, bool v)
{
        avro_value_t f;
        if (enc_field(e, name, AVRO_BOOLEAN, &f))
                enc_check(e, name, avro_value_set_boolean(&f, v ? 1 : 0));
}

/* Enums by symbol, not ordinal, so the C enum and the schema may differ in order. */
static void enc_enum(enc_t *e, const char *name, const char *symbol)
{
        avro_value_t f;
        if (!enc_field(e, name, AVRO_ENUM, &f))
                return;
        avro_schema_t s = avro_value_get_schema(&f);
        int ord = s ? avro_schema_enum_get_by_name(s, symbol) : -1;
        if (ord < 0)
                enc_fail(e, name, "symbol not in the schema");
        else
                enc_check(e, name, avro_value_set_enum(&f, ord));
}

/* Appends header + body to out, or leaves out as it was. Always releases the
 * value. */
static bool enc_finish(enc_t *e, const rs_schema_entry_t *s, rs_buf_t *out)
{
        size_t size = 0, start = out->len;
        avro_writer_t w = NULL;
        if (e->ok && avro_value_sizeof(&e->rec, &size) != 0)
                enc_fail(e, s->name, avro_strerror());
        if (!e->ok)
                goto out;
        uint32_t id = (uint32_t)s->id;
        const uint8_t hdr[5] = {0, (uint8_t)(id >> 24), (uint8_t)(id >> 16),
                                (uint8_t)(id >> 8), (uint8_t)id};
        rs_buf_append(out, hdr, sizeof(hdr));
        rs_buf_reserve(out, size);
        w = avro_writer_memory(out->data + out->len, (int64_t)size);
        if (!w || avro_value_write(w, &e->rec) != 0) {
                enc_fail(e, s->name, avro_strerror());
                out->len = start;
        } else {
                out->len += size;
        }
        out->data[out->len] = '\0';
out:
        if (w)
                avro_writer_free(w);
        avro_value_decref(&e->rec);
        return e->ok;
}

bool rs_codec_encode_credited(const rs_codec_t *c, const rs_credited_t *ev, rs_buf_t *out,
                              char *errstr, size_t errstr_size)
{
        enc_t e;
        if (!enc_begin(&e, c->credited, errstr, errstr_size))
                return false;
        enc_str(&e, "credit_id", ev->credit_id);
        enc_str(&e, "referral_id", ev->referral_id);
        enc_str(&e, "program_key", ev->program_key);
        enc_str(&e, "code", ev->code);
        enc_str(&e, "referrer_user_id", ev->referrer_user_id);
        enc_str(&e, "referee_user_id", ev->referee_user_id);
        enc_str(&e, "beneficiary_user_id", ev->beneficiary_user_id);
        if (ev->role != RS_ROLE_REFERRER && ev->role != RS_ROLE_REFEREE)
                enc_fail(&e, "role", "not REFERRER or REFEREE");
        else
                enc_enum(&e, "role", rs_role_name(ev->role));
        enc_long(&e, "amount_minor", ev->amount_minor);
        enc_str(&e, "currency", ev->currency);
        enc_str(&e, "source_event_id", ev->source_event_id);
        enc_long(&e, "credited_at", ev->credited_at_ms);
        enc_int(&e, "referrer_rewarded_count", ev->referrer_rewarded_count);
        enc_int(&e, "referral_goal", ev->referral_goal);
        enc_bool(&e, "goal_reached", ev->goal_reached);
        return enc_finish(&e, c->credited, out);
}

bool rs_codec_encode_reversed(const rs_codec_t *c, const rs_reversed_t *ev, rs_buf_t *out,
                              char *errstr, size_t errstr_size)
{
        enc_t e;
        if (!enc_begin(&e, c->reversed, errstr, errstr_size))
                return false;
        enc_str(&e, "credit_id", ev->credit_id);
        enc_str(&e, "referral_id", ev->referral_id);
        enc_str(&e, "beneficiary_user_id", ev->beneficiary_user_id);
        enc_long(&e, "amount_minor", ev->amount_minor);
        enc_str(&e, "currency", ev->currency);
        enc_str(&e, "source_event_id", ev->source_event_id);
        enc_long(&e, "reversed_at", ev->reversed_at_ms);
        enc_str(&e, "reason", ev->reason);
        return enc_finish(&e, c->reversed, out);
}

static void enc_payment(enc_t *e, const rs_event_t *ev)
{
        /* currency is a char[4] that may be filled by hand: at most 3 bytes. */
        char currency[4];
        size_t n = strnlen(ev->currency, 3);
        memcpy(currency, ev->currency, n);
        currency[n] = '\0';
        enc_str(e, "payment_id", ev->payment_id);
        enc_long(e, "amount_minor", ev->amount_minor);
        enc_str(e, "currency", currency);
        if (ev->kind != RS_PAY_CHARGE && ev->kind != RS_PAY_REFUND)
                enc_fail(e, "kind", "not CHARGE or REFUND");
        else
                enc_enum(e, "kind", ev->kind == RS_PAY_REFUND ? "REFUND" : "CHARGE");
        enc_str(e, "refund_of", ev->refund_of);
        enc_str(e, "payment_fingerprint", ev->payment_fingerprint);
}

bool rs_codec_encode_event(const rs_codec_t *c, const rs_event_t *ev, rs_buf_t *out,
                           char *errstr, size_t errstr_size)
{
        if (ev->type != RS_EV_SIGNUP && ev->type != RS_EV_PAYMENT) {
                snprintf(errstr, errstr_size, "unknown event type %d", (int)ev->type);
                return false;
        }
        const rs_schema_entry_t *s = c->input[ev->type];
        enc_t e;
        if (!enc_begin(&e, s, errstr, errstr_size))
                return false;
        enc_str(&e, "event_id", ev->event_id);
        enc_long(&e, "occurred_at", ev->occurred_at_ms);
        enc_str(&e, "user_id", ev->user_id);
        if (ev->type == RS_EV_SIGNUP) {
                enc_str(&e, "referral_code", ev->referral_code);
                enc_str(&e, "email_hash", ev->email_hash);
        } else {
                enc_payment(&e, ev);
        }
        return enc_finish(&e, s, out);
}
