#ifndef RS_CODEC_INTERNAL_H
#define RS_CODEC_INTERNAL_H
/* Shared between the rs_codec*.c files only; not part of the public interface.
 *
 * Both input formats (Avro and JSON) are first reduced to an rs_raw_event_t:
 * one slot per known field, holding what the wire carried, still pointing into
 * avro-c or jansson memory. One function, rs_codec_validate(), then checks it
 * and copies it into the caller's arena, so both formats obey the same rules
 * with the same messages. */
#include "rs_codec.h"

#include <avro.h>
#include <stdarg.h>

typedef enum {
        RS_F_EVENT_ID = 0,
        RS_F_OCCURRED_AT,
        RS_F_USER_ID,
        RS_F_REFERRAL_CODE,
        RS_F_EMAIL_HASH,
        RS_F_PAYMENT_ID,
        RS_F_AMOUNT_MINOR,
        RS_F_CURRENCY,
        RS_F_KIND,
        RS_F_REFUND_OF,
        RS_F__COUNT
} rs_field_id_t;

typedef enum {
        RS_FK_STRING,    /* s/len */
        RS_FK_TIMESTAMP, /* i: epoch ms */
        RS_FK_LONG,      /* i */
        RS_FK_ENUM,      /* s/len: the symbol */
} rs_field_kind_t;

typedef struct rs_field_def {
        const char *name;
        rs_field_kind_t kind;
        unsigned types; /* bit (1 << rs_event_type_t): records that have it */
} rs_field_def_t;

extern const rs_field_def_t rs_codec_fields[RS_F__COUNT];

/* True if field f belongs to records of type t. */
static inline bool rs_field_in(rs_field_id_t f, rs_event_type_t t)
{
        return (rs_codec_fields[f].types & (1u << t)) != 0;
}

typedef struct rs_raw_field {
        bool set; /* false: absent or null */
        const char *s;
        size_t len;
        int64_t i;
} rs_raw_field_t;

typedef struct rs_raw_event {
        rs_event_type_t type;
        rs_raw_field_t f[RS_F__COUNT];
} rs_raw_event_t;

/* rs_codec.c: the codec itself. */
#define RS_CODEC_MAX_SCHEMAS 16

typedef struct rs_schema_entry {
        int id; /* Confluent schema id from the manifest */
        const char *name;
        avro_schema_t schema;
        avro_value_iface_t *iface;
        /* Decode scratch for input records, reset and refilled per record so
         * the hot path allocates only what avro-c needs for the strings. */
        avro_value_t scratch;
        bool has_scratch;
        int field_idx[RS_F__COUNT]; /* -1: this schema has no such field */
} rs_schema_entry_t;

struct rs_codec {
        rs_schema_entry_t schemas[RS_CODEC_MAX_SCHEMAS];
        size_t n;
        avro_reader_t reader; /* memory reader re-pointed at each record */
        rs_schema_entry_t *input[RS_EV_PAYMENT + 1]; /* by rs_event_type_t */
        const rs_schema_entry_t *credited;
        const rs_schema_entry_t *reversed;
};

const rs_schema_entry_t *rs_codec_entry_by_id(const rs_codec_t *c, uint32_t id);

/* rs_codec_validate.c */
void rs_codec_err(rs_decode_error_t *err, const char *error_class, const char *fmt, ...)
    RS_PRINTF(3, 4);
bool rs_codec_validate(const rs_raw_event_t *raw, rs_arena_t *arena, rs_event_t *out,
                       rs_decode_error_t *err) RS_WARN_UNUSED;
bool rs_utf8_valid(const char *p, size_t len);
/* Appends p[0..len) as a JSON string literal; invalid UTF-8 becomes U+FFFD so
 * the output is always valid JSON. */
void rs_json_put_str(rs_buf_t *out, const char *p, size_t len);

/* rs_codec_json.c */
bool rs_codec_json_decode(rs_event_type_t expected, const char *buf, size_t len,
                          rs_arena_t *arena, rs_event_t *out,
                          rs_decode_error_t *err) RS_WARN_UNUSED;

/* rs_codec_avro.c */
/* Largest single allocation avro-c may make (see the allocator). */
#define RS_AVRO_ALLOC_MAX ((size_t)2 * RS_CODEC_MAX_INPUT)
void rs_avro_install_allocator(void);
/* How many allocations the allocator has refused since start (tests, metrics). */
unsigned long rs_avro_refused_allocs(void);
/* Schemas the codec can walk: records (nesting <= RS_AVRO_MAX_DEPTH) of
 * primitives, enums, fixed and unions. Arrays and maps are refused at load. */
#define RS_AVRO_MAX_DEPTH 8
bool rs_avro_schema_supported(avro_schema_t s, char *errstr, size_t errstr_size);
bool rs_avro_wire_check(avro_schema_t s, const void *buf, size_t len, char *errstr,
                        size_t errstr_size) RS_WARN_UNUSED;
/* Range-checked access to what avro-c trusts from the payload: the current
 * branch of a union (false if the discriminant is out of range; *d gets it)
 * and the symbol of an enum (false if the ordinal is out of range; *ord). */
bool rs_avro_branch(avro_value_t *v, avro_value_t *branch, int *d);
const char *rs_avro_enum_symbol(avro_value_t *v, int *ord);
bool rs_avro_value_to_json(avro_value_t *v, rs_buf_t *out, char *errstr,
                           size_t errstr_size) RS_WARN_UNUSED;

#endif
