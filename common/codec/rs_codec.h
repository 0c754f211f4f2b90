#ifndef RS_CODEC_H
#define RS_CODEC_H
/* Wire formats (docs/events.md §2): Confluent-framed Avro (0x00, 4-byte big-endian
 * schema id, Avro binary) and JSON objects on input; framed Avro on output.
 * Schema ids come from schemas/manifest.json, compiled into the binary.
 *
 * The decoder treats input as hostile (docs/design.md §4): input size is bounded,
 * avro-c allocations are capped by an allocator installed in rs_codec_new(),
 * enum ordinals and union branches are range-checked, and every field is
 * validated (lengths, ranges, currency shape) before an event is returned. */
#include "rs_event.h"
#include "rs_util.h"

#include <stddef.h>

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
#define RS_ERR_UNKNOWN_SCHEMA "unknown_schema" /* schema id not in manifest */
#define RS_ERR_WRONG_SCHEMA   "wrong_schema"   /* known id, other record type */
#define RS_ERR_AVRO_DECODE    "avro_decode"    /* Avro body does not decode */
#define RS_ERR_JSON_DECODE    "json_decode"    /* starts with { but is not valid JSON */
#define RS_ERR_MISSING_FIELD  "missing_field"  /* required field absent/null */
#define RS_ERR_INVALID_FIELD  "invalid_field"  /* wrong type, length or range */

/* Decodes one input record expected to be of type `expected` (the topic decides
 * the type). On success fills *out (strings allocated in arena) and returns
 * true. On failure fills *err and returns false. Never aborts on bad input.
 * Not thread-safe: decoding reuses scratch state kept in the codec (so the hot
 * path does not rebuild avro-c values per record); use one codec per thread
 * that decodes. The encoders and rs_codec_output_to_json() only read the codec
 * and may be called from any thread. */
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

/* Decodes framed Avro output records back into JSON text (for `refstream demo`,
 * tests and tools). Returns false + errstr if buf is not a known framed record. */
bool rs_codec_output_to_json(const rs_codec_t *c, const void *buf, size_t len,
                             rs_buf_t *out, char *errstr, size_t errstr_size);

#endif
