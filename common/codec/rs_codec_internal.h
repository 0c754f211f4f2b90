#ifndef RS_CODEC_INTERNAL_H
#define RS_CODEC_INTERNAL_H
/* Shared between the rs_codec*.c files only; not part of the public interface.
 *
 * Both input formats (Avro and JSON) are first reduced to an rs_raw_event_t:
 * one slot per known field, holding what the wire carried, still pointing into
 * the record's bytes or jansson memory. One function, rs_codec_validate(), then checks it
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
        RS_F_PAYMENT_FINGERPRINT,
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

/* The field of records of type t named name, or -1. */
int rs_codec_field_id(rs_event_type_t t, const char *name);

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

/* One of refstream's own schemas (schemas/): the reader of its input records
 * and the writer of its output records. */
typedef struct rs_schema_entry {
        int id;           /* framing id: the manifest's, or the registry's */
        const char *name; /* record name */
        const char *json; /* the schema text as embedded (for registering) */
        size_t json_len;
        avro_schema_t schema;
        avro_value_iface_t *iface; /* encoders and rs_codec_output_to_json() */
        rs_event_type_t input;     /* the input record it reads, or 0 */
        /* As a reader (input records only): the default of each field
         * (.set false: null or none; has_default says which), and whether
         * the field may be null. */
        rs_raw_field_t def[RS_F__COUNT];
        bool has_default[RS_F__COUNT];
        bool nullable[RS_F__COUNT];
        /* Earlier versions (manifest "older"): each is a prefix of this
         * schema's fields, so a body may end after min_fields fields. */
        size_t min_fields;
} rs_schema_entry_t;

/* How the body written with a writer schema is read into an input record
 * (rs_codec_resolve.c). Built once per (writer, input type). */
typedef struct rs_plan rs_plan_t;

typedef enum {
        RS_W_OK,       /* schema known: decode with a plan */
        RS_W_UNKNOWN,  /* the registry does not know the id (unknown_schema) */
        RS_W_UNUSABLE, /* the registry's schema cannot be used (wrong_schema) */
} rs_writer_state_t;

/* Where a schema id on the wire leads: a writer schema, cached for the life
 * of the codec (ids are immutable), or why there is none. */
typedef struct rs_writer {
        uint32_t id;
        rs_writer_state_t state;
        avro_schema_t schema;               /* RS_W_OK (a reference held) */
        avro_value_iface_t *iface;          /* RS_W_OK: for rs_codec_output_to_json() */
        const rs_schema_entry_t *own;       /* one of ours, or NULL */
        bool prefix_ok;                     /* own + manifest: older versions accepted */
        rs_plan_t *plan[RS_EV_PAYMENT + 1]; /* by input type, built on first use */
        char *why;                          /* RS_W_UNKNOWN / RS_W_UNUSABLE */
        struct rs_writer *next;             /* hash chain */
} rs_writer_t;

#define RS_CODEC_WRITER_BUCKETS 64

struct rs_codec {
        rs_schema_entry_t schemas[RS_CODEC_MAX_SCHEMAS];
        size_t n;
        rs_schema_entry_t *input[RS_EV_PAYMENT + 1]; /* by rs_event_type_t */
        const rs_schema_entry_t *credited;
        const rs_schema_entry_t *reversed;
        bool registry; /* ids come from a schema registry, not the manifest */
        rs_writer_t *writers[RS_CODEC_WRITER_BUCKETS];
        size_t n_writers, n_unknown;
};

rs_writer_t *rs_codec_writer(const rs_codec_t *c, uint32_t id);

/* rs_codec_resolve.c */
/* The plan for reading records written with w as records of type t, built
 * and kept in w on first use. Never NULL. */
const rs_plan_t *rs_plan_get(rs_codec_t *c, rs_writer_t *w, rs_event_type_t t);
void rs_plan_free(rs_plan_t *p);
/* Reads an Avro body with plan p into raw (fields the writer lacks get the
 * reader's defaults). false + err (wrong_schema when the plan or this
 * record's values cannot be resolved, avro_decode when the body is bad). */
bool rs_plan_read(const rs_plan_t *p, const uint8_t *body, size_t len,
                  rs_raw_event_t *raw, rs_decode_error_t *err) RS_WARN_UNUSED;

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
/* Schemas the codec can walk: nesting <= RS_AVRO_MAX_DEPTH, every Avro type;
 * without containers, no arrays or maps either (what the printer of
 * rs_codec_output_to_json() hands to avro-c). */
#define RS_AVRO_MAX_DEPTH 8
bool rs_avro_schema_supported(avro_schema_t s, bool containers, char *errstr,
                              size_t errstr_size);
bool rs_avro_wire_check(avro_schema_t s, const void *buf, size_t len, char *errstr,
                        size_t errstr_size) RS_WARN_UNUSED;
/* The walk behind rs_avro_wire_check(), for rs_codec_resolve.c: a cursor over
 * a body that checks every length, index and varint it reads. */
typedef struct rs_wire {
        const uint8_t *p, *end;
        const char *field; /* innermost record field, for messages */
        size_t items;      /* array and map items walked (bounded) */
        char *errstr;
        size_t errstr_size;
} rs_wire_t;
bool rs_wire_fail(rs_wire_t *w, const char *fmt, ...) RS_PRINTF(2, 3);
/* Zig-zag varint of at most max_bytes (5 for int, 10 for long). */
bool rs_wire_varint(rs_wire_t *w, int max_bytes, int64_t *out);
/* An Avro int (a varint within 32 bits). */
bool rs_wire_int(rs_wire_t *w, int64_t *out);
/* A length-prefixed string or bytes: *s points into the body. */
bool rs_wire_bytes(rs_wire_t *w, const char **s, size_t *len);
/* A long that must be in [0, count): enum ordinal or union branch. */
bool rs_wire_index(rs_wire_t *w, size_t count, const char *what, int64_t *out);
/* Checks and skips one value of schema s. */
bool rs_wire_value(rs_wire_t *w, avro_schema_t s, int depth);
/* Range-checked access to what avro-c trusts from the payload: the current
 * branch of a union (false if the discriminant is out of range; *d gets it)
 * and the symbol of an enum (false if the ordinal is out of range; *ord). */
bool rs_avro_branch(avro_value_t *v, avro_value_t *branch, int *d);
const char *rs_avro_enum_symbol(avro_value_t *v, int *ord);
bool rs_avro_value_to_json(avro_value_t *v, rs_buf_t *out, char *errstr,
                           size_t errstr_size) RS_WARN_UNUSED;

#endif
