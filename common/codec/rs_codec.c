/* Codec lifecycle (embedded schemas + manifest), the writer schemas by id
 * (the manifest's, or a registry's as they are fetched), input decoding and
 * the output-to-JSON helper. Encoders live in rs_codec_encode.c, the reading
 * of Avro bodies by writer schema in rs_codec_resolve.c, the checked cursor
 * and the avro-c defences in rs_codec_avro.c, JSON input in rs_codec_json.c
 * and the field rules shared by both input formats in rs_codec_validate.c.
 *
 * Threading: rs_codec_decode() builds plans and the registry calls add
 * writers, so a codec must not decode on two threads at once (use one codec
 * per consumer thread). The encoders only read the codec and allocate their
 * own values: they may run concurrently with decoding, once the framing ids
 * are set. */
#include "rs_codec_internal.h"
#include "rs_embed.h"

/* The schemas and their manifest (generated from schemas/, see CMakeLists.txt) */
extern const rs_embedded_file_t rs_schema_files[];
extern const size_t rs_schema_files_count;

#include <jansson.h>
#include <string.h>

#define MANIFEST_PATH "schemas/manifest.json"

/* ---------------------------------------------------------------- writers */

static size_t bucket(uint32_t id)
{
        return (id * 2654435761u) % RS_CODEC_WRITER_BUCKETS;
}

rs_writer_t *rs_codec_writer(const rs_codec_t *c, uint32_t id)
{
        for (rs_writer_t *w = c->writers[bucket(id)]; w; w = w->next) {
                if (w->id == id)
                        return w;
        }
        return NULL;
}

static void writer_free(rs_writer_t *w)
{
        for (size_t t = 0; t < RS_ARRAY_SIZE(w->plan); t++)
                rs_plan_free(w->plan[t]);
        if (w->iface)
                avro_value_iface_decref(w->iface);
        if (w->schema)
                avro_schema_decref(w->schema);
        free(w->why);
        free(w);
}

/* Unlinks the entry *pp points to from its chain, and frees it. */
static void writer_unlink(rs_codec_t *c, rs_writer_t **pp)
{
        rs_writer_t *w = *pp;
        *pp = w->next;
        c->n_writers--;
        if (w->state == RS_W_UNKNOWN)
                c->n_unknown--;
        writer_free(w);
}

/* Removes the entry of id, if any. */
static void writer_drop(rs_codec_t *c, uint32_t id)
{
        for (rs_writer_t **pp = &c->writers[bucket(id)]; *pp; pp = &(*pp)->next) {
                if ((*pp)->id == id) {
                        writer_unlink(c, pp);
                        return;
                }
        }
}

/* A new entry for id (replacing one there was). */
static rs_writer_t *writer_add(rs_codec_t *c, uint32_t id, rs_writer_state_t state,
                               const char *why)
{
        writer_drop(c, id);
        rs_writer_t *w = rs_calloc(1, sizeof(*w));
        w->id = id;
        w->state = state;
        w->why = why ? rs_strdup(why) : NULL;
        w->next = c->writers[bucket(id)];
        c->writers[bucket(id)] = w;
        c->n_writers++;
        if (state == RS_W_UNKNOWN)
                c->n_unknown++;
        return w;
}

static void writer_add_own(rs_codec_t *c, uint32_t id, const rs_schema_entry_t *e,
                           bool prefix_ok)
{
        rs_writer_t *w = writer_add(c, id, RS_W_OK, NULL);
        w->schema = avro_schema_incref(e->schema);
        w->iface = avro_value_iface_incref(e->iface);
        w->own = e;
        w->prefix_ok = prefix_ok;
}

/* ---------------------------------------------------------------- lifecycle */

static const rs_embedded_file_t *embedded(const char *file, char *errstr,
                                          size_t errstr_size)
{
        char path[256];
        snprintf(path, sizeof(path), "schemas/%s", file);
        const rs_embedded_file_t *f =
            rs_embedded_find(rs_schema_files, rs_schema_files_count, path);
        if (!f)
                snprintf(errstr, errstr_size, "%s: not embedded in the binary", path);
        return f;
}

static bool parse_schema(const rs_embedded_file_t *f, const char *name,
                         avro_schema_t *out, char *errstr, size_t errstr_size)
{
        if (avro_schema_from_json_length(f->data, f->len, out) != 0) {
                *out = NULL;
                snprintf(errstr, errstr_size, "%s: %s", f->name, avro_strerror());
                return false;
        }
        if (!is_avro_record(*out) || strcmp(avro_schema_name(*out), name) != 0) {
                snprintf(errstr, errstr_size, "%s: does not define record %s", f->name,
                         name);
                return false;
        }
        return rs_avro_schema_supported(*out, true, errstr, errstr_size);
}

static bool is_nullable(avro_schema_t s)
{
        if (!is_avro_union(s))
                return is_avro_null(s);
        for (size_t i = 0; i < avro_schema_union_size(s); i++) {
                if (is_avro_null(avro_schema_union_branch(s, (int)i)))
                        return true;
        }
        return false;
}

/* The reader's side of an input schema: which fields may be null, and the
 * default of each field that has one (avro-c keeps no defaults: they are
 * read from the schema text). Every field must be one the decoder knows. */
static bool load_reader(rs_schema_entry_t *e, char *errstr, size_t errstr_size)
{
        json_t *root = json_loadb(e->json, e->json_len, 0, NULL);
        json_t *fields = json_object_get(root, "fields");
        size_t i;
        json_t *fd;
        bool ok = json_is_array(fields);
        json_array_foreach (fields, i, fd) {
                const char *name = json_string_value(json_object_get(fd, "name"));
                json_t *def = json_object_get(fd, "default");
                int f = name ? rs_codec_field_id(e->input, name) : -1;
                if (f < 0) {
                        snprintf(errstr, errstr_size,
                                 "schemas: %s.%s is not a field the decoder knows",
                                 e->name, name ? name : "?");
                        ok = false;
                        break;
                }
                e->nullable[f] =
                    is_nullable(avro_schema_record_field_get(e->schema, name));
                if (!def)
                        continue;
                e->has_default[f] = true;
                rs_raw_field_t *d = &e->def[f];
                if (json_is_string(def)) {
                        d->s = rs_strdup(json_string_value(def));
                        d->len = strlen(d->s);
                        d->set = true;
                } else if (json_is_integer(def)) {
                        d->i = json_integer_value(def);
                        d->set = true;
                } else if (!json_is_null(def)) {
                        snprintf(errstr, errstr_size,
                                 "schemas: %s.%s has a default the decoder cannot use",
                                 e->name, name);
                        ok = false;
                        break;
                }
        }
        if (!json_is_array(fields))
                snprintf(errstr, errstr_size, "schemas: %s has no fields", e->name);
        json_decref(root);
        return ok;
}

/* An earlier version must be a prefix of the current schema's fields (same
 * names and types): then a body written with it is a body of the current
 * schema that ends early, and the missing fields take their defaults. */
static bool load_older(rs_schema_entry_t *e, const char *file, char *errstr,
                       size_t errstr_size)
{
        avro_schema_t old = NULL;
        const rs_embedded_file_t *f = embedded(file, errstr, errstr_size);
        bool ok = f && parse_schema(f, e->name, &old, errstr, errstr_size);
        size_t n = ok ? avro_schema_record_size(old) : 0;
        for (size_t i = 0; ok && i < n; i++) {
                const char *fn = avro_schema_record_field_name(old, (int)i);
                ok = i < avro_schema_record_size(e->schema) &&
                     strcmp(fn, avro_schema_record_field_name(e->schema, (int)i)) == 0 &&
                     avro_schema_equal(
                         avro_schema_record_field_get_by_index(old, (int)i),
                         avro_schema_record_field_get_by_index(e->schema, (int)i));
                if (!ok)
                        snprintf(errstr, errstr_size,
                                 "%s: field %s is not field %zu of the current schema",
                                 f->name, fn, i);
        }
        for (size_t i = n; ok && i < avro_schema_record_size(e->schema); i++) {
                const char *fn = avro_schema_record_field_name(e->schema, (int)i);
                int k = rs_codec_field_id(e->input, fn);
                ok = k >= 0 && e->has_default[k];
                if (!ok)
                        snprintf(errstr, errstr_size,
                                 "%s: field %s, added after it, has no default", f->name,
                                 fn);
        }
        if (old)
                avro_schema_decref(old);
        if (ok)
                e->min_fields = RS_MIN(e->min_fields, n);
        return ok;
}

static const struct {
        const char *name;
        rs_event_type_t input;
} record_inputs[] = {{"SignupEvent", RS_EV_SIGNUP}, {"PaymentEvent", RS_EV_PAYMENT}};

/* Parses one schema file, builds its generic class and, for an input
 * record, its reader side and earlier versions. */
static bool load_schema(rs_schema_entry_t *e, const char *name, const char *file,
                        json_t *older, char *errstr, size_t errstr_size)
{
        const rs_embedded_file_t *f = embedded(file, errstr, errstr_size);
        if (!f || !parse_schema(f, name, &e->schema, errstr, errstr_size))
                return false;
        e->name = avro_schema_name(e->schema); /* lives as long as the schema */
        e->json = f->data;
        e->json_len = f->len;
        e->min_fields = avro_schema_record_size(e->schema);
        e->iface = avro_generic_class_from_schema(e->schema);
        if (!e->iface) {
                snprintf(errstr, errstr_size, "%s: %s", f->name, avro_strerror());
                return false;
        }
        for (size_t i = 0; i < RS_ARRAY_SIZE(record_inputs); i++) {
                if (strcmp(record_inputs[i].name, name) == 0)
                        e->input = record_inputs[i].input;
        }
        if (e->input && !load_reader(e, errstr, errstr_size))
                return false;
        size_t i;
        json_t *o;
        json_array_foreach (older, i, o) {
                if (!e->input || !json_is_string(o)) {
                        snprintf(errstr, errstr_size,
                                 "%s: \"older\" of %s must list files of an input "
                                 "record",
                                 MANIFEST_PATH, name);
                        return false;
                }
                if (!load_older(e, json_string_value(o), errstr, errstr_size))
                        return false;
        }
        return true;
}

static bool load_entry(rs_codec_t *c, json_t *item, char *errstr, size_t errstr_size)
{
        json_int_t id;
        const char *name, *file;
        json_t *older = NULL;
        if (json_unpack(item, "{s:I, s:s, s:s, s?o}", "id", &id, "name", &name, "file",
                        &file, "older", &older) != 0 ||
            id < 0 || id > INT32_MAX || strchr(file, '/')) {
                snprintf(errstr, errstr_size, "%s: entry %zu needs id, name and file",
                         MANIFEST_PATH, c->n);
                return false;
        }
        if (rs_codec_writer(c, (uint32_t)id) || rs_codec_schema_id(c, name) >= 0) {
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
        if (!load_schema(e, name, file, older, errstr, errstr_size))
                return false;
        writer_add_own(c, (uint32_t)id, e, true);
        return true;
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

static rs_schema_entry_t *entry_by_name(const rs_codec_t *c, const char *name)
{
        for (size_t i = 0; i < c->n; i++) {
                if (c->schemas[i].name && strcmp(c->schemas[i].name, name) == 0)
                        return (rs_schema_entry_t *)&c->schemas[i];
        }
        return NULL;
}

static rs_schema_entry_t *required(rs_codec_t *c, const char *name, char *errstr,
                                   size_t errstr_size)
{
        rs_schema_entry_t *e = entry_by_name(c, name);
        if (!e)
                snprintf(errstr, errstr_size, "%s: no schema for record %s",
                         MANIFEST_PATH, name);
        return e;
}

rs_codec_t *rs_codec_new(char *errstr, size_t errstr_size)
{
        rs_avro_install_allocator();
        rs_codec_t *c = rs_calloc(1, sizeof(*c));
        if (!load_manifest(c, errstr, errstr_size))
                goto fail;
        c->input[RS_EV_SIGNUP] = required(c, "SignupEvent", errstr, errstr_size);
        c->input[RS_EV_PAYMENT] = required(c, "PaymentEvent", errstr, errstr_size);
        c->credited = required(c, "ReferralCredited", errstr, errstr_size);
        c->reversed = required(c, "ReferralCreditReversed", errstr, errstr_size);
        if (!c->input[RS_EV_SIGNUP] || !c->input[RS_EV_PAYMENT] || !c->credited ||
            !c->reversed)
                goto fail;
        return c;
fail:
        rs_codec_destroy(c);
        return NULL;
}

static void clear_writers(rs_codec_t *c, bool unknown_only)
{
        for (size_t b = 0; b < RS_CODEC_WRITER_BUCKETS; b++) {
                for (rs_writer_t **pp = &c->writers[b]; *pp;) {
                        if (unknown_only && (*pp)->state != RS_W_UNKNOWN)
                                pp = &(*pp)->next;
                        else
                                writer_unlink(c, pp);
                }
        }
}

void rs_codec_destroy(rs_codec_t *c)
{
        if (!c)
                return;
        clear_writers(c, false);
        for (size_t i = 0; i < c->n; i++) {
                rs_schema_entry_t *e = &c->schemas[i];
                for (int f = 0; f < RS_F__COUNT; f++)
                        free((char *)e->def[f].s);
                if (e->iface)
                        avro_value_iface_decref(e->iface);
                if (e->schema)
                        avro_schema_decref(e->schema);
        }
        free(c);
}

int rs_codec_schema_id(const rs_codec_t *c, const char *record_name)
{
        const rs_schema_entry_t *e = entry_by_name(c, record_name);
        return e ? e->id : -1;
}

/* ---------------------------------------------------------------- registry */

void rs_codec_use_registry(rs_codec_t *c)
{
        clear_writers(c, false);
        c->registry = true;
}

const char *rs_codec_schema_json(const rs_codec_t *c, const char *record_name,
                                 size_t *len)
{
        const rs_schema_entry_t *e = entry_by_name(c, record_name);
        if (!e)
                return NULL;
        *len = e->json_len;
        return e->json;
}

bool rs_codec_set_schema_id(rs_codec_t *c, const char *record_name, uint32_t id)
{
        rs_schema_entry_t *e = entry_by_name(c, record_name);
        if (!e || id > INT32_MAX)
                return false;
        e->id = (int)id;
        writer_add_own(c, id, e, false);
        return true;
}

static bool frame_id(const void *buf, size_t len, uint32_t *id)
{
        const uint8_t *p = buf;
        if (!p || len < 5 || p[0] != 0x00)
                return false;
        *id = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
        return true;
}

bool rs_codec_needs_schema(const rs_codec_t *c, const void *buf, size_t len, uint32_t *id)
{
        return c->registry && len <= RS_CODEC_MAX_INPUT && frame_id(buf, len, id) &&
               !rs_codec_writer(c, *id);
}

void rs_codec_add_schema(rs_codec_t *c, uint32_t id, const char *json, size_t len)
{
        char why[256];
        avro_schema_t s = NULL;
        avro_value_iface_t *iface = NULL;
        if (avro_schema_from_json_length(json, len, &s) != 0) {
                s = NULL;
                snprintf(why, sizeof(why), "the registry's schema does not parse: %s",
                         avro_strerror());
        } else if (rs_avro_schema_supported(s, true, why, sizeof(why)) &&
                   !(iface = avro_generic_class_from_schema(s))) {
                snprintf(why, sizeof(why), "%s", avro_strerror());
        }
        if (!iface) {
                if (s)
                        avro_schema_decref(s);
                rs_codec_add_unusable(c, id, why);
                return;
        }
        rs_writer_t *w = writer_add(c, id, RS_W_OK, NULL);
        w->schema = s;
        w->iface = iface;
}

void rs_codec_add_unusable(rs_codec_t *c, uint32_t id, const char *why)
{
        writer_add(c, id, RS_W_UNUSABLE, why);
}

void rs_codec_add_unknown(rs_codec_t *c, uint32_t id, const char *why)
{
        if (c->n_unknown >= RS_CODEC_MAX_UNKNOWN)
                clear_writers(c, true);
        writer_add(c, id, RS_W_UNKNOWN, why);
}

void rs_codec_forget_unknown(rs_codec_t *c)
{
        clear_writers(c, true);
}

size_t rs_codec_cached_schemas(const rs_codec_t *c)
{
        return c->n_writers - c->n_unknown;
}

/* ---------------------------------------------------------------- Avro input */

static bool decode_avro(rs_codec_t *c, rs_event_type_t expected, const uint8_t *p,
                        size_t len, rs_arena_t *arena, rs_event_t *out,
                        rs_decode_error_t *err)
{
        uint32_t id = 0;
        (void)frame_id(p, len, &id);
        rs_writer_t *w = rs_codec_writer(c, id);
        if (!w) {
                if (c->registry)
                        rs_codec_err(err, RS_ERR_SCHEMA_PENDING,
                                     "schema id %u has not been fetched", id);
                else
                        rs_codec_err(err, RS_ERR_UNKNOWN_SCHEMA,
                                     "schema id %u is not in the manifest", id);
                return false;
        }
        if (w->state != RS_W_OK) {
                rs_codec_err(err,
                             w->state == RS_W_UNKNOWN ? RS_ERR_UNKNOWN_SCHEMA
                                                      : RS_ERR_WRONG_SCHEMA,
                             "schema id %u: %s", id, w->why);
                return false;
        }
        rs_raw_event_t raw;
        if (!rs_plan_read(rs_plan_get(c, w, expected), p + 5, len - 5, &raw, err))
                return false;
        /* Copies the strings out of the record into the arena. */
        return rs_codec_validate(&raw, arena, out, err);
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

static bool output_read(avro_value_iface_t *iface, const char *name, const uint8_t *body,
                        size_t len, rs_buf_t *out, char *errstr, size_t errstr_size)
{
        bool ok = false;
        avro_value_t v;
        avro_reader_t r = NULL;
        if (avro_generic_value_new(iface, &v) != 0) {
                snprintf(errstr, errstr_size, "%s", avro_strerror());
                return false;
        }
        r = avro_reader_memory((const char *)body, (int64_t)len);
        if (!r || avro_value_read(r, &v) != 0) {
                snprintf(errstr, errstr_size, "%s: %s", name, avro_strerror());
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
        uint32_t id;
        if (!frame_id(buf, len, &id) || len > RS_CODEC_MAX_INPUT) {
                snprintf(errstr, errstr_size, "not a Confluent-framed Avro record");
                return false;
        }
        const rs_writer_t *w = rs_codec_writer(c, id);
        if (!w || w->state != RS_W_OK) {
                snprintf(errstr, errstr_size, "schema id %u: %s", id,
                         w             ? w->why
                         : c->registry ? "not fetched from the registry"
                                       : "not in the manifest");
                return false;
        }
        const char *name = avro_schema_type_name(w->schema);
        const uint8_t *p = buf;
        char msg[200];
        /* The printer shows records, enums, unions and scalars, which is what
         * refstream's own records hold; a writer with arrays or maps is
         * refused before avro-c reads it (its generic arrays allocate what
         * the payload's block counts ask for). */
        if (!rs_avro_schema_supported(w->schema, false, msg, sizeof(msg))) {
                snprintf(errstr, errstr_size, "%s: %s, not printed", name, msg);
                return false;
        }
        if (!rs_avro_wire_check(w->schema, p + 5, len - 5, msg, sizeof(msg))) {
                snprintf(errstr, errstr_size, "%s: %s", name, msg);
                return false;
        }
        size_t start = out->len;
        if (output_read(w->iface, name, p + 5, len - 5, out, errstr, errstr_size))
                return true;
        out->len = start; /* drop a half-written object */
        if (out->data)
                out->data[start] = '\0';
        return false;
}
