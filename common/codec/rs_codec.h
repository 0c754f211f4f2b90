#ifndef RS_CODEC_H
#define RS_CODEC_H
/* Wire formats (docs/events.md §2): Confluent-framed Avro (0x00, 4-byte big-endian
 * schema id, Avro binary) and JSON objects on input; framed Avro on output.
 * Schema ids come from schemas/manifest.json, compiled into the binary, or
 * from a schema registry: then writer schemas are added as they are fetched
 * (rs_codec_needs_schema() / rs_codec_add_schema()), and records are read by
 * the Avro resolution rules (rs_codec_resolve.c).
 *
 * The decoder treats input as hostile (docs/design.md §4): input size is bounded,
 * avro-c allocations are capped by an allocator installed in rs_codec_new(),
 * enum ordinals and union branches are range-checked, and every field is
 * validated (lengths, ranges, currency shape) before an event is returned. */
#include "rs_event.h"
#include "rs_util.h"

#include <stddef.h>
#include <string.h>

/* Largest input record accepted; larger ones go to the DLQ as too_large. */
#define RS_CODEC_MAX_INPUT (1024 * 1024)

typedef struct rs_codec rs_codec_t;

/* Loads and parses the embedded schemas and manifest. NULL + errstr on error. */
rs_codec_t *rs_codec_new(char *errstr, size_t errstr_size);
void rs_codec_destroy(rs_codec_t *c);

/* Schema id of a record name in the manifest ("SignupEvent" -> 1), or -1. */
int rs_codec_schema_id(const rs_codec_t *c, const char *record_name);

/* Why a record could not be decoded: error_class is one of the constant strings
 * below (used as the DLQ error_class header), message is human readable and
 * names the offending field where there is one. */
typedef struct rs_decode_error {
        const char *error_class;
        char message[256];
} rs_decode_error_t;

#define RS_ERR_TOO_LARGE      "too_large"   /* > RS_CODEC_MAX_INPUT */
#define RS_ERR_BAD_FRAMING    "bad_framing" /* neither 0x00-framed nor starting with { */
#define RS_ERR_UNKNOWN_SCHEMA "unknown_schema" /* schema id not in manifest/registry */
#define RS_ERR_WRONG_SCHEMA   "wrong_schema"   /* other record, or unresolvable */
#define RS_ERR_AVRO_DECODE    "avro_decode"    /* Avro body does not decode */
#define RS_ERR_JSON_DECODE    "json_decode"    /* starts with { but is not valid JSON */
#define RS_ERR_MISSING_FIELD  "missing_field"  /* required field absent/null */
#define RS_ERR_INVALID_FIELD  "invalid_field"  /* wrong type, length or range */
/* Not a dead letter: the record's schema id has not been fetched from the
 * registry yet. The caller fetches it (rs_codec_add_schema() or
 * rs_codec_add_unknown()) and decodes the record again. */
#define RS_ERR_SCHEMA_PENDING "schema_pending"

static inline bool rs_decode_pending(const rs_decode_error_t *err)
{
        return err->error_class && strcmp(err->error_class, RS_ERR_SCHEMA_PENDING) == 0;
}

/* Decodes one input record expected to be of type `expected` (the topic decides
 * the type). On success fills *out (strings allocated in arena) and returns
 * true. On failure fills *err and returns false. Never aborts on bad input.
 * Not thread-safe: decoding builds and caches state in the codec (the plan
 * of each writer schema); use one codec per thread that decodes. The
 * encoders and rs_codec_output_to_json() only read the codec and may be
 * called from any thread (but not while a registry schema is being added). */
bool rs_codec_decode(rs_codec_t *c, rs_event_type_t expected, const void *buf, size_t len,
                     rs_arena_t *arena, rs_event_t *out,
                     rs_decode_error_t *err) RS_WARN_UNUSED;

/* Encoders append Confluent-framed Avro to out. Return false + errstr only on
 * an internal error (a value the schema cannot hold). */
bool rs_codec_encode_credited(const rs_codec_t *c, const rs_credited_t *ev, rs_buf_t *out,
                              char *errstr, size_t errstr_size) RS_WARN_UNUSED;
bool rs_codec_encode_reversed(const rs_codec_t *c, const rs_reversed_t *ev, rs_buf_t *out,
                              char *errstr, size_t errstr_size) RS_WARN_UNUSED;
/* Input events, for `refstream publish` and `refstream loadgen`. */
bool rs_codec_encode_event(const rs_codec_t *c, const rs_event_t *ev, rs_buf_t *out,
                           char *errstr, size_t errstr_size) RS_WARN_UNUSED;
/* The same event as one JSON object (no trailing newline), timestamps as epoch
 * milliseconds, optional fields omitted when absent. */
void rs_codec_event_to_json(const rs_event_t *ev, rs_buf_t *out);

/* ---------------------------------------------------------------- registry
 * Only the decoding thread may add or forget schemas; the framing ids are set
 * before encoders run on other threads. */

/* From now on schema ids mean what the registry says: the manifest's ids are
 * forgotten, and an id not yet added decodes as RS_ERR_SCHEMA_PENDING. */
void rs_codec_use_registry(rs_codec_t *c);
/* The embedded schema text of one of refstream's records (to register it),
 * or NULL. */
const char *rs_codec_schema_json(const rs_codec_t *c, const char *record_name,
                                 size_t *len);
/* Frames record_name with id (the one the registry gave it) from now on, and
 * reads id as that schema. false if there is no such record. */
bool rs_codec_set_schema_id(rs_codec_t *c, const char *record_name, uint32_t id);
/* True, with *id, if buf is framed with an id the codec must fetch first. */
bool rs_codec_needs_schema(const rs_codec_t *c, const void *buf, size_t len,
                           uint32_t *id);
/* The writer schema of id, as fetched (Avro schema text). One that does not
 * parse is kept as unusable: its records are wrong_schema. */
void rs_codec_add_schema(rs_codec_t *c, uint32_t id, const char *json, size_t len);
/* Records framed with id are wrong_schema, with why (e.g. not Avro). */
void rs_codec_add_unusable(rs_codec_t *c, uint32_t id, const char *why);
/* The registry does not know id: its records are unknown_schema, with why,
 * until rs_codec_forget_unknown() (an id may be registered later). At most
 * RS_CODEC_MAX_UNKNOWN are kept. */
#define RS_CODEC_MAX_UNKNOWN 4096
void rs_codec_add_unknown(rs_codec_t *c, uint32_t id, const char *why);
void rs_codec_forget_unknown(rs_codec_t *c);
/* Writer schemas held (the manifest's or fetched; not the unknown ids). */
size_t rs_codec_cached_schemas(const rs_codec_t *c);

/* Decodes framed Avro output records back into JSON text (for `refstream demo`,
 * tests and tools). Returns false + errstr if buf is not a known framed record. */
bool rs_codec_output_to_json(const rs_codec_t *c, const void *buf, size_t len,
                             rs_buf_t *out, char *errstr, size_t errstr_size);

#endif
