/* Codec lifecycle (embedded schemas + manifest), input decoding and the
 * output-to-JSON helper. Encoders live in rs_codec_encode.c, the Avro
 * defences in rs_codec_avro.c, JSON input in rs_codec_json.c and the field
 * rules shared by both input formats in rs_codec_validate.c.
 *
 * Threading: rs_codec_decode() reuses per-codec scratch values and one memory
 * reader, so a codec must not decode on two threads at once (use one codec
 * per consumer thread). The encoders and rs_codec_output_to_json() only read
 * the codec and allocate their own values: they may run concurrently. */
#include "rs_codec_internal.h"
#include "rs_embed.h"

/* The schemas and their manifest (generated from schemas/, see CMakeLists.txt) */
extern const rs_embedded_file_t rs_schema_files[];
extern const size_t rs_schema_files_count;

#include <jansson.h>
#include <string.h>

#define MANIFEST_PATH "schemas/manifest.json"

/* ---------------------------------------------------------------- lifecycle */

static void map_fields(rs_schema_entry_t *e)
{
        for (int f = 0; f < RS_F__COUNT; f++)
                e->field_idx[f] = is_avro_record(e->schema)
                                      ? avro_schema_record_field_get_index(
                                            e->schema, rs_codec_fields[f].name)
                                      : -1;
}

/* Parses one schema file and builds its generic class and scratch value. */
static bool load_schema(rs_schema_entry_t *e, const char *name, const char *file,
                        char *errstr, size_t errstr_size)
{
        char path[256];
        snprintf(path, sizeof(path), "schemas/%s", file);
        const rs_embedded_file_t *f =
            rs_embedded_find(rs_schema_files, rs_schema_files_count, path);
        if (!f) {
                snprintf(errstr, errstr_size, "%s: not embedded in the binary", path);
                return false;
        }
        if (avro_schema_from_json_length(f->data, f->len, &e->schema) != 0) {
                e->schema = NULL;
                snprintf(errstr, errstr_size, "%s: %s", path, avro_strerror());
                return false;
        }
        if (!is_avro_record(e->schema) ||
            strcmp(avro_schema_name(e->schema), name) != 0) {
                snprintf(errstr, errstr_size, "%s: does not define record %s", path,
                         name);
                return false;
        }
        if (!rs_avro_schema_supported(e->schema, errstr, errstr_size))
                return false;
        e->name = avro_schema_name(e->schema); /* lives as long as the schema */
        e->iface = avro_generic_class_from_schema(e->schema);
        if (!e->iface || avro_generic_value_new(e->iface, &e->scratch) != 0) {
                snprintf(errstr, errstr_size, "%s: %s", path, avro_strerror());
                return false;
        }
        e->has_scratch = true;
        map_fields(e);
        return true;
}

static bool load_entry(rs_codec_t *c, json_t *item, char *errstr, size_t errstr_size)
{
        json_int_t id;
        const char *name, *file;
        if (json_unpack(item, "{s:I, s:s, s:s}", "id", &id, "name", &name, "file",
                        &file) != 0 ||
            id < 0 || id > INT32_MAX || strchr(file, '/')) {
                snprintf(errstr, errstr_size, "%s: entry %zu needs id, name and file",
                         MANIFEST_PATH, c->n);
                return false;
        }
        if (rs_codec_entry_by_id(c, (uint32_t)id) || rs_codec_schema_id(c, name) >= 0) {
                snprintf(errstr, errstr_size, "%s: duplicate id %lld or name %s",
                         MANIFEST_PATH, (long long)id, name);
                return false;
        }
        if (c->n == RS_CODEC_MAX_SCHEMAS) {
                snprintf(errstr, errstr_size, "%s: more than %d schemas", MANIFEST_PATH,
                         RS_CODEC_MAX_SCHEMAS);
                return false;
        }
        /* Counted before loading so rs_codec_destroy() frees a partial entry. */
        rs_schema_entry_t *e = &c->schemas[c->n++];
        e->id = (int)id;
        return load_schema(e, name, file, errstr, errstr_size);
}

static bool load_manifest(rs_codec_t *c, char *errstr, size_t errstr_size)
{
        bool ok = false;
        json_error_t jerr;
        json_t *root = NULL;
        const rs_embedded_file_t *mf =
            rs_embedded_find(rs_schema_files, rs_schema_files_count, MANIFEST_PATH);
        if (!mf) {
                snprintf(errstr, errstr_size, "%s: not embedded in the binary",
                         MANIFEST_PATH);
                goto out;
        }
        root = json_loadb(mf->data, mf->len, JSON_REJECT_DUPLICATES, &jerr);
        json_t *list = root ? json_object_get(root, "schemas") : NULL;
        if (!json_is_array(list)) {
                snprintf(errstr, errstr_size, "%s: no \"schemas\" array (%s)",
                         MANIFEST_PATH, root ? "wrong shape" : jerr.text);
                goto out;
        }
        size_t i;
        json_t *item;
        json_array_foreach (list, i, item) {
                if (!load_entry(c, item, errstr, errstr_size))
                        goto out;
        }
        ok = true;
out:
        json_decref(root);
        return ok;
}

static rs_schema_entry_t *entry_by_name(rs_codec_t *c, const char *name, char *errstr,
                                        size_t errstr_size)
{
        for (size_t i = 0; i < c->n; i++) {
                if (strcmp(c->schemas[i].name, name) == 0)
                        return &c->schemas[i];
        }
        snprintf(errstr, errstr_size, "%s: no schema for record %s", MANIFEST_PATH, name);
        return NULL;
}

rs_codec_t *rs_codec_new(char *errstr, size_t errstr_size)
{
        rs_avro_install_allocator();
        rs_codec_t *c = rs_calloc(1, sizeof(*c));
        c->reader = avro_reader_memory("", 0);
        if (!c->reader) {
                snprintf(errstr, errstr_size, "avro reader: %s", avro_strerror());
                goto fail;
        }
        if (!load_manifest(c, errstr, errstr_size))
                goto fail;
        c->input[RS_EV_SIGNUP] = entry_by_name(c, "SignupEvent", errstr, errstr_size);
        c->input[RS_EV_PAYMENT] = entry_by_name(c, "PaymentEvent", errstr, errstr_size);
        c->credited = entry_by_name(c, "ReferralCredited", errstr, errstr_size);
        c->reversed = entry_by_name(c, "ReferralCreditReversed", errstr, errstr_size);
        if (!c->input[RS_EV_SIGNUP] || !c->input[RS_EV_PAYMENT] || !c->credited ||
            !c->reversed)
                goto fail;
        return c;
fail:
        rs_codec_destroy(c);
        return NULL;
}

void rs_codec_destroy(rs_codec_t *c)
{
        if (!c)
                return;
        for (size_t i = 0; i < c->n; i++) {
                rs_schema_entry_t *e = &c->schemas[i];
                if (e->has_scratch)
                        avro_value_decref(&e->scratch);
                if (e->iface)
                        avro_value_iface_decref(e->iface);
                if (e->schema)
                        avro_schema_decref(e->schema);
        }
        if (c->reader)
                avro_reader_free(c->reader);
        free(c);
}

int rs_codec_schema_id(const rs_codec_t *c, const char *record_name)
{
        for (size_t i = 0; i < c->n; i++) {
                if (c->schemas[i].name && strcmp(c->schemas[i].name, record_name) == 0)
                        return c->schemas[i].id;
        }
        return -1;
}

const rs_schema_entry_t *rs_codec_entry_by_id(const rs_codec_t *c, uint32_t id)
{
        for (size_t i = 0; i < c->n; i++) {
                if ((uint32_t)c->schemas[i].id == id)
                        return &c->schemas[i];
        }
        return NULL;
}

/* ---------------------------------------------------------------- Avro input */

static uint32_t frame_id(const uint8_t *p)
{
        return (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
}

/* Resolves a union to its current branch, range-checking the discriminant. */
static bool avro_unwrap(avro_value_t *v, rs_field_id_t id, rs_decode_error_t *err)
{
        int d = -1;
        avro_value_t branch;
        if (!rs_avro_branch(v, &branch, &d)) {
                rs_codec_err(err, RS_ERR_AVRO_DECODE, "%s: union branch %d out of range",
                             rs_codec_fields[id].name, d);
                return false;
        }
        *v = branch;
        return true;
}

static bool avro_enum_symbol(avro_value_t *v, rs_field_id_t id, rs_raw_field_t *f,
                             rs_decode_error_t *err)
{
        int ord = -1;
        f->s = rs_avro_enum_symbol(v, &ord);
        if (!f->s) {
                rs_codec_err(err, RS_ERR_AVRO_DECODE, "%s: enum ordinal %d out of range",
                             rs_codec_fields[id].name, ord);
                return false;
        }
        f->len = strlen(f->s);
        return true;
}

/* Reads one decoded field into *f according to its expected kind. */
static bool avro_scalar(avro_value_t *v, rs_field_id_t id, rs_raw_field_t *f,
                        rs_decode_error_t *err)
{
        avro_type_t t = avro_value_get_type(v);
        int32_t i32 = 0;
        size_t size = 0;
        int rc = -1;
        switch (rs_codec_fields[id].kind) {
        case RS_FK_STRING:
                if (t == AVRO_STRING)
                        rc = avro_value_get_string(v, &f->s, &size);
                f->len = size ? size - 1 : 0; /* size counts the terminator */
                break;
        case RS_FK_TIMESTAMP:
        case RS_FK_LONG:
                if (t == AVRO_INT64) {
                        rc = avro_value_get_long(v, &f->i);
                } else if (t == AVRO_INT32) {
                        rc = avro_value_get_int(v, &i32);
                        f->i = i32;
                }
                break;
        case RS_FK_ENUM:
                if (t == AVRO_ENUM)
                        return avro_enum_symbol(v, id, f, err);
                break;
        }
        if (rc != 0) {
                rs_codec_err(err, RS_ERR_INVALID_FIELD,
                             "%s has an unexpected Avro type %d",
                             rs_codec_fields[id].name, (int)t);
                return false;
        }
        return true;
}

static bool avro_field(rs_schema_entry_t *e, rs_field_id_t id, rs_raw_field_t *f,
                       rs_decode_error_t *err)
{
        avro_value_t v;
        if (e->field_idx[id] < 0)
                return true; /* not in this schema: absent */
        if (avro_value_get_by_index(&e->scratch, (size_t)e->field_idx[id], &v, NULL) !=
            0) {
                rs_codec_err(err, RS_ERR_AVRO_DECODE, "%s: %s", rs_codec_fields[id].name,
                             avro_strerror());
                return false;
        }
        if (avro_value_get_type(&v) == AVRO_UNION && !avro_unwrap(&v, id, err))
                return false;
        if (avro_value_get_type(&v) == AVRO_NULL)
                return true;
        if (!avro_scalar(&v, id, f, err))
                return false;
        f->set = true;
        return true;
}

static bool avro_read_body(rs_codec_t *c, rs_schema_entry_t *e, const uint8_t *body,
                           size_t len, rs_decode_error_t *err)
{
        char msg[200];
        /* Structural check first: avro-c must never see a body it mishandles
         * (see rs_codec_avro.c). */
        if (!rs_avro_wire_check(e->schema, body, len, msg, sizeof(msg))) {
                rs_codec_err(err, RS_ERR_AVRO_DECODE, "%s", msg);
                return false;
        }
        avro_reader_memory_set_source(c->reader, (const char *)body, (int64_t)len);
        if (avro_value_read(c->reader, &e->scratch) != 0) {
                rs_codec_err(err, RS_ERR_AVRO_DECODE, "%s", avro_strerror());
                return false;
        }
        /* The body must be consumed exactly; ask avro-c too, not only our walk. */
        char extra;
        if (avro_read(c->reader, &extra, 1) == 0) {
                rs_codec_err(err, RS_ERR_AVRO_DECODE, "trailing bytes after the record");
                return false;
        }
        return true;
}

static bool decode_avro(rs_codec_t *c, rs_event_type_t expected, const uint8_t *p,
                        size_t len, rs_arena_t *arena, rs_event_t *out,
                        rs_decode_error_t *err)
{
        uint32_t id = frame_id(p);
        const rs_schema_entry_t *found = rs_codec_entry_by_id(c, id);
        rs_schema_entry_t *e = c->input[expected];
        if (!found) {
                rs_codec_err(err, RS_ERR_UNKNOWN_SCHEMA,
                             "schema id %u is not in the manifest", id);
                return false;
        }
        if (found != e) {
                rs_codec_err(err, RS_ERR_WRONG_SCHEMA, "schema id %u is %s, expected %s",
                             id, found->name, e->name);
                return false;
        }
        bool ok = false;
        if (!avro_read_body(c, e, p + 5, len - 5, err))
                goto out;
        rs_raw_event_t raw;
        memset(&raw, 0, sizeof(raw));
        raw.type = expected;
        for (int f = 0; f < RS_F__COUNT; f++) {
                if (rs_field_in((rs_field_id_t)f, expected) &&
                    !avro_field(e, (rs_field_id_t)f, &raw.f[f], err))
                        goto out;
        }
        /* Copies the strings out of the scratch value into the arena. */
        ok = rs_codec_validate(&raw, arena, out, err);
out:
        /* Release the record's strings now rather than at the next decode:
         * nothing of a (possibly hostile) record stays around, and memory
         * held only by avro-c's generic values is not misreported by
         * LeakSanitizer, which cannot see the pointers avro-c stores at
         * unaligned offsets inside them. */
        avro_value_reset(&e->scratch);
        return ok;
}

/* ---------------------------------------------------------------- decode */

static bool is_json_space(uint8_t b)
{
        return b == ' ' || b == '\t' || b == '\n' || b == '\r';
}

bool rs_codec_decode(rs_codec_t *c, rs_event_type_t expected, const void *buf, size_t len,
                     rs_arena_t *arena, rs_event_t *out, rs_decode_error_t *err)
{
        const uint8_t *p = buf;
        if (expected != RS_EV_SIGNUP && expected != RS_EV_PAYMENT) {
                rs_codec_err(err, RS_ERR_WRONG_SCHEMA, "no input record type %d",
                             (int)expected);
                return false;
        }
        if (len > RS_CODEC_MAX_INPUT) {
                rs_codec_err(err, RS_ERR_TOO_LARGE,
                             "record of %zu bytes exceeds the %d "
                             "byte limit",
                             len, RS_CODEC_MAX_INPUT);
                return false;
        }
        if (len == 0 || !p) {
                rs_codec_err(err, RS_ERR_BAD_FRAMING, "empty record");
                return false;
        }
        if (p[0] == 0x00) {
                if (len < 5) {
                        rs_codec_err(
                            err, RS_ERR_BAD_FRAMING,
                            "%zu bytes: too short for the 5-byte Confluent header", len);
                        return false;
                }
                return decode_avro(c, expected, p, len, arena, out, err);
        }
        size_t i = 0;
        while (i < len && is_json_space(p[i]))
                i++;
        if (i < len && p[i] == '{')
                return rs_codec_json_decode(expected, buf, len, arena, out, err);
        rs_codec_err(
            err, RS_ERR_BAD_FRAMING,
            "neither Confluent-framed Avro (0x00 + schema id) nor a JSON object");
        return false;
}

/* ---------------------------------------------------------------- output */

static bool output_read(const rs_schema_entry_t *e, const uint8_t *body, size_t len,
                        rs_buf_t *out, char *errstr, size_t errstr_size)
{
        bool ok = false;
        avro_value_t v;
        avro_reader_t r = NULL;
        if (avro_generic_value_new(e->iface, &v) != 0) {
                snprintf(errstr, errstr_size, "%s", avro_strerror());
                return false;
        }
        r = avro_reader_memory((const char *)body, (int64_t)len);
        if (!r || avro_value_read(r, &v) != 0) {
                snprintf(errstr, errstr_size, "%s: %s", e->name, avro_strerror());
                goto out;
        }
        ok = rs_avro_value_to_json(&v, out, errstr, errstr_size);
out:
        if (r)
                avro_reader_free(r);
        avro_value_decref(&v);
        return ok;
}

bool rs_codec_output_to_json(const rs_codec_t *c, const void *buf, size_t len,
                             rs_buf_t *out, char *errstr, size_t errstr_size)
{
        const uint8_t *p = buf;
        if (!p || len < 5 || p[0] != 0x00 || len > RS_CODEC_MAX_INPUT) {
                snprintf(errstr, errstr_size, "not a Confluent-framed Avro record");
                return false;
        }
        const rs_schema_entry_t *e = rs_codec_entry_by_id(c, frame_id(p));
        if (!e) {
                snprintf(errstr, errstr_size, "schema id %u is not in the manifest",
                         frame_id(p));
                return false;
        }
        char msg[200];
        if (!rs_avro_wire_check(e->schema, p + 5, len - 5, msg, sizeof(msg))) {
                snprintf(errstr, errstr_size, "%s: %s", e->name, msg);
                return false;
        }
        size_t start = out->len;
        if (output_read(e, p + 5, len - 5, out, errstr, errstr_size))
                return true;
        out->len = start; /* drop a half-written object */
        if (out->data)
                out->data[start] = '\0';
        return false;
}
