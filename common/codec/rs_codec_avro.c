/* Defences around avro-c 1.11.1 (docs/design.md §4) and a generic value printer.
 *
 * avro-c 1.11.1 trusts the payload: a string length is passed to malloc as is
 * (2^60 asks for an exabyte; a negative one wraps to a huge size_t), enum
 * ordinals are stored unchecked, and when a string's length is larger than the
 * bytes left, read_string() fails *after* allocating the buffer and never frees
 * it (one leak per hostile record, measured with LeakSanitizer). So:
 *   1. a process-wide allocator refuses any single request above
 *      RS_AVRO_ALLOC_MAX; avro-c reports ENOMEM ("Cannot allocate buffer ...")
 *      and returns an error, which the tests check;
 *   2. rs_avro_wire_check() walks the binary body against the schema before
 *      avro-c sees it and rejects anything avro-c would mishandle: truncation,
 *      negative or oversized lengths, out-of-range enum ordinals and union
 *      branches, over-long varints, trailing bytes. Only a body that passes is
 *      handed to avro_value_read(), so its failure paths (and their leaks) are
 *      never reached. */
#include "rs_codec_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- allocator */

static atomic_ulong refused_allocs;

/* Same contract as avro-c's default allocator (realloc/free), so memory that
 * avro-c allocated before this was installed is still freed correctly. */
static void *bounded_alloc(void *user_data, void *ptr, size_t osize, size_t nsize)
{
        (void)user_data;
        (void)osize;
        if (nsize == 0) {
                free(ptr);
                return NULL;
        }
        if (nsize > RS_AVRO_ALLOC_MAX) {
                /* realloc semantics: ptr stays valid and owned by the caller. */
                atomic_fetch_add(&refused_allocs, 1);
                return NULL;
        }
        return realloc(ptr, nsize);
}

static pthread_once_t allocator_once = PTHREAD_ONCE_INIT;

static void install_allocator(void)
{
        avro_set_allocator(bounded_alloc, NULL);
}

void rs_avro_install_allocator(void)
{
        pthread_once(&allocator_once, install_allocator);
}

unsigned long rs_avro_refused_allocs(void)
{
        return atomic_load(&refused_allocs);
}

/* ---------------------------------------------------------------- schemas */

static bool supported(avro_schema_t s, int depth, bool containers, char *errstr,
                      size_t errstr_size)
{
        if (depth > RS_AVRO_MAX_DEPTH) {
                snprintf(errstr, errstr_size, "schema nests deeper than %d levels",
                         RS_AVRO_MAX_DEPTH);
                return false;
        }
        switch (avro_typeof(s)) {
        case AVRO_STRING:
        case AVRO_BYTES:
        case AVRO_INT32:
        case AVRO_INT64:
        case AVRO_FLOAT:
        case AVRO_DOUBLE:
        case AVRO_BOOLEAN:
        case AVRO_NULL:
        case AVRO_ENUM:
        case AVRO_FIXED:
                return true;
        case AVRO_RECORD:
                for (size_t i = 0; i < avro_schema_record_size(s); i++) {
                        avro_schema_t f =
                            avro_schema_record_field_get_by_index(s, (int)i);
                        if (!supported(f, depth + 1, containers, errstr, errstr_size))
                                return false;
                }
                return true;
        case AVRO_UNION:
                for (size_t i = 0; i < avro_schema_union_size(s); i++) {
                        avro_schema_t b = avro_schema_union_branch(s, (int)i);
                        if (!supported(b, depth + 1, containers, errstr, errstr_size))
                                return false;
                }
                return true;
        case AVRO_ARRAY:
        case AVRO_MAP:
                if (!containers) {
                        snprintf(errstr, errstr_size, "has arrays or maps");
                        return false;
                }
                return supported(is_avro_array(s) ? avro_schema_array_items(s)
                                                  : avro_schema_map_values(s),
                                 depth + 1, containers, errstr, errstr_size);
        case AVRO_LINK:
                /* A named type used again: checked where it was defined (a
                 * recursive type would otherwise be walked forever). */
                return true;
        default:
                snprintf(errstr, errstr_size, "unsupported Avro type %d",
                         (int)avro_typeof(s));
                return false;
        }
}

bool rs_avro_schema_supported(avro_schema_t s, bool containers, char *errstr,
                              size_t errstr_size)
{
        return supported(s, 0, containers, errstr, errstr_size);
}

/* ---------------------------------------------------------------- wire check */

/* Array and map items one body may hold: an item of null (or of an empty
 * record) takes no bytes, so the byte count alone does not bound the walk. */
#define WIRE_MAX_ITEMS ((size_t)RS_CODEC_MAX_INPUT)

bool rs_wire_fail(rs_wire_t *w, const char *fmt, ...)
{
        char msg[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(w->errstr, w->errstr_size, "%s%s%s", w->field ? w->field : "",
                 w->field ? ": " : "", msg);
        return false;
}

static size_t wire_left(const rs_wire_t *w)
{
        return (size_t)(w->end - w->p);
}

/* Refuses bits beyond 64, which avro-c would silently drop. */
bool rs_wire_varint(rs_wire_t *w, int max_bytes, int64_t *out)
{
        uint64_t v = 0;
        for (int i = 0;; i++) {
                if (i == max_bytes)
                        return rs_wire_fail(w, "varint longer than %d bytes", max_bytes);
                if (w->p == w->end)
                        return rs_wire_fail(w, "truncated varint");
                uint8_t b = *w->p++;
                if (i == 9 && b > 1)
                        return rs_wire_fail(w, "varint overflows 64 bits");
                v |= (uint64_t)(b & 0x7f) << (7 * i);
                if (!(b & 0x80))
                        break;
        }
        *out = (int64_t)((v >> 1) ^ (0 - (v & 1)));
        return true;
}

bool rs_wire_int(rs_wire_t *w, int64_t *out)
{
        if (!rs_wire_varint(w, 5, out))
                return false;
        if (*out < INT32_MIN || *out > INT32_MAX)
                return rs_wire_fail(w, "int %lld out of 32-bit range", (long long)*out);
        return true;
}

static bool wire_skip(rs_wire_t *w, int64_t n)
{
        if (n < 0)
                return rs_wire_fail(w, "negative length %lld", (long long)n);
        if ((uint64_t)n > wire_left(w))
                return rs_wire_fail(w, "length %lld exceeds the %zu bytes left",
                                    (long long)n, wire_left(w));
        w->p += n;
        return true;
}

bool rs_wire_bytes(rs_wire_t *w, const char **s, size_t *len)
{
        int64_t n;
        const uint8_t *start;
        if (!rs_wire_varint(w, 10, &n))
                return false;
        start = w->p;
        if (!wire_skip(w, n))
                return false;
        *s = (const char *)start;
        *len = (size_t)n;
        return true;
}

/* avro-c would store an enum ordinal or a union branch unchecked (or
 * truncate it to int). */
bool rs_wire_index(rs_wire_t *w, size_t count, const char *what, int64_t *out)
{
        if (!rs_wire_varint(w, 10, out))
                return false;
        if (*out < 0 || (uint64_t)*out >= count)
                return rs_wire_fail(w, "%s %lld out of range (%zu choices)", what,
                                    (long long)*out, count);
        return true;
}

static bool wire_record(rs_wire_t *w, avro_schema_t s, int depth)
{
        for (size_t i = 0; i < avro_schema_record_size(s); i++) {
                w->field = avro_schema_record_field_name(s, (int)i);
                if (!rs_wire_value(w, avro_schema_record_field_get_by_index(s, (int)i),
                                   depth + 1))
                        return false;
        }
        return true;
}

/* Arrays and maps: blocks of items, each block a count (negative: followed
 * by its size in bytes), ending with a count of 0. */
static bool wire_blocks(rs_wire_t *w, avro_schema_t items, bool map, int depth)
{
        const char *s;
        size_t len;
        for (;;) {
                int64_t count, size;
                if (!rs_wire_varint(w, 10, &count))
                        return false;
                if (count == 0)
                        return true;
                if (count < 0) {
                        if (count == INT64_MIN)
                                return rs_wire_fail(w, "block count out of range");
                        count = -count;
                        if (!rs_wire_varint(w, 10, &size))
                                return false;
                }
                if ((uint64_t)count > WIRE_MAX_ITEMS - w->items)
                        return rs_wire_fail(w, "more than %zu array or map items",
                                            WIRE_MAX_ITEMS);
                w->items += (size_t)count;
                for (int64_t i = 0; i < count; i++) {
                        if ((map && !rs_wire_bytes(w, &s, &len)) ||
                            !rs_wire_value(w, items, depth + 1))
                                return false;
                }
        }
}

bool rs_wire_value(rs_wire_t *w, avro_schema_t s, int depth)
{
        int64_t v;
        const char *str;
        size_t len;
        if (depth > RS_AVRO_MAX_DEPTH)
                return rs_wire_fail(w, "schema nests deeper than %d levels",
                                    RS_AVRO_MAX_DEPTH);
        switch (avro_typeof(s)) {
        case AVRO_NULL:
                return true;
        case AVRO_BOOLEAN:
                if (w->p == w->end || *w->p > 1)
                        return rs_wire_fail(w, "boolean is not 0 or 1");
                w->p++;
                return true;
        case AVRO_INT32:
                return rs_wire_int(w, &v);
        case AVRO_INT64:
                return rs_wire_varint(w, 10, &v);
        case AVRO_FLOAT:
                return wire_skip(w, 4);
        case AVRO_DOUBLE:
                return wire_skip(w, 8);
        case AVRO_STRING:
        case AVRO_BYTES:
                return rs_wire_bytes(w, &str, &len);
        case AVRO_FIXED:
                return wire_skip(w, avro_schema_fixed_size(s));
        case AVRO_ENUM:
                return rs_wire_index(w, (size_t)avro_schema_enum_number_of_symbols(s),
                                     "enum ordinal", &v);
        case AVRO_UNION:
                return rs_wire_index(w, avro_schema_union_size(s), "union branch", &v) &&
                       rs_wire_value(w, avro_schema_union_branch(s, (int)v), depth + 1);
        case AVRO_RECORD:
                return wire_record(w, s, depth);
        case AVRO_ARRAY:
                return wire_blocks(w, avro_schema_array_items(s), false, depth);
        case AVRO_MAP:
                return wire_blocks(w, avro_schema_map_values(s), true, depth);
        case AVRO_LINK:
                return rs_wire_value(w, avro_schema_link_target(s), depth + 1);
        default:
                return rs_wire_fail(w, "unsupported Avro type %d", (int)avro_typeof(s));
        }
}

bool rs_avro_wire_check(avro_schema_t s, const void *buf, size_t len, char *errstr,
                        size_t errstr_size)
{
        rs_wire_t w = {.p = buf,
                       .end = (const uint8_t *)buf + len,
                       .errstr = errstr,
                       .errstr_size = errstr_size};
        if (!rs_wire_value(&w, s, 0))
                return false;
        if (w.p != w.end) {
                w.field = NULL;
                return rs_wire_fail(&w, "%zu trailing bytes after the record",
                                    wire_left(&w));
        }
        return true;
}

/* ---------------------------------------------------------------- to JSON */

static bool vjson(avro_value_t *v, rs_buf_t *out, int depth, char *errstr,
                  size_t errstr_size);

static bool vjson_record(avro_value_t *v, rs_buf_t *out, int depth, char *errstr,
                         size_t errstr_size)
{
        size_t n = 0;
        if (avro_value_get_size(v, &n) != 0)
                goto fail;
        rs_buf_putc(out, '{');
        for (size_t i = 0; i < n; i++) {
                avro_value_t field;
                const char *name = NULL;
                if (avro_value_get_by_index(v, i, &field, &name) != 0 || !name)
                        goto fail;
                if (i > 0)
                        rs_buf_putc(out, ',');
                rs_json_put_str(out, name, strlen(name));
                rs_buf_putc(out, ':');
                if (!vjson(&field, out, depth + 1, errstr, errstr_size))
                        return false;
        }
        rs_buf_putc(out, '}');
        return true;
fail:
        snprintf(errstr, errstr_size, "cannot read record: %s", avro_strerror());
        return false;
}

/* Enum as its symbol; the ordinal is range-checked because avro-c stores
 * whatever the payload said and avro_schema_enum_get() would return NULL. */
static bool vjson_enum(avro_value_t *v, rs_buf_t *out, char *errstr, size_t errstr_size)
{
        int ord = -1;
        const char *sym = rs_avro_enum_symbol(v, &ord);
        if (!sym) {
                snprintf(errstr, errstr_size, "enum ordinal %d out of range", ord);
                return false;
        }
        rs_json_put_str(out, sym, strlen(sym));
        return true;
}

bool rs_avro_branch(avro_value_t *v, avro_value_t *branch, int *d)
{
        avro_schema_t s = avro_value_get_schema(v);
        *d = -1;
        return avro_value_get_discriminant(v, d) == 0 && s && *d >= 0 &&
               (size_t)*d < avro_schema_union_size(s) &&
               avro_value_get_current_branch(v, branch) == 0;
}

const char *rs_avro_enum_symbol(avro_value_t *v, int *ord)
{
        avro_schema_t s = avro_value_get_schema(v);
        *ord = -1;
        if (avro_value_get_enum(v, ord) != 0 || !s || *ord < 0 ||
            *ord >= avro_schema_enum_number_of_symbols(s))
                return NULL;
        return avro_schema_enum_get(s, *ord);
}

/* A union prints as its current branch (null or the plain value). */
static bool vjson_union(avro_value_t *v, rs_buf_t *out, int depth, char *errstr,
                        size_t errstr_size)
{
        int d = -1;
        avro_value_t branch;
        if (!rs_avro_branch(v, &branch, &d)) {
                snprintf(errstr, errstr_size, "union branch %d out of range", d);
                return false;
        }
        return vjson(&branch, out, depth + 1, errstr, errstr_size);
}

static void vjson_double(rs_buf_t *out, double d)
{
        if (isfinite(d))
                rs_buf_printf(out, "%.17g", d);
        else
                rs_buf_puts(out, "null"); /* JSON has no NaN or infinity */
}

/* Strings; bytes and fixed are shown as strings too (invalid UTF-8 replaced).
 * refstream's schemas have neither, this only keeps the printer total. */
static bool vjson_text(avro_value_t *v, avro_type_t t, rs_buf_t *out)
{
        const char *s = NULL;
        const void *p = NULL;
        size_t size = 0;
        int rc;
        if (t == AVRO_STRING) {
                rc = avro_value_get_string(v, &s, &size);
                size = size ? size - 1 : 0; /* avro-c counts the terminator */
        } else {
                rc = t == AVRO_BYTES ? avro_value_get_bytes(v, &p, &size)
                                     : avro_value_get_fixed(v, &p, &size);
                s = p;
        }
        if (rc != 0)
                return false;
        rs_json_put_str(out, s ? s : "", s ? size : 0);
        return true;
}

static bool vjson_scalar(avro_value_t *v, avro_type_t t, rs_buf_t *out)
{
        int32_t i32 = 0;
        int64_t i64 = 0;
        int b = 0;
        float f = 0;
        double d = 0;
        switch (t) {
        case AVRO_STRING:
        case AVRO_BYTES:
        case AVRO_FIXED:
                return vjson_text(v, t, out);
        case AVRO_INT32:
                if (avro_value_get_int(v, &i32) != 0)
                        return false;
                rs_buf_printf(out, "%d", (int)i32);
                return true;
        case AVRO_INT64:
                if (avro_value_get_long(v, &i64) != 0)
                        return false;
                rs_buf_printf(out, "%lld", (long long)i64);
                return true;
        case AVRO_FLOAT:
        case AVRO_DOUBLE:
                if ((t == AVRO_FLOAT ? avro_value_get_float(v, &f)
                                     : avro_value_get_double(v, &d)) != 0)
                        return false;
                vjson_double(out, t == AVRO_FLOAT ? f : d);
                return true;
        case AVRO_BOOLEAN:
                if (avro_value_get_boolean(v, &b) != 0)
                        return false;
                rs_buf_puts(out, b ? "true" : "false");
                return true;
        case AVRO_NULL:
                rs_buf_puts(out, "null");
                return true;
        default:
                return false;
        }
}

static bool vjson(avro_value_t *v, rs_buf_t *out, int depth, char *errstr,
                  size_t errstr_size)
{
        if (depth > RS_AVRO_MAX_DEPTH) {
                snprintf(errstr, errstr_size, "value nests too deep");
                return false;
        }
        avro_type_t t = avro_value_get_type(v);
        switch (t) {
        case AVRO_RECORD:
                return vjson_record(v, out, depth, errstr, errstr_size);
        case AVRO_ENUM:
                return vjson_enum(v, out, errstr, errstr_size);
        case AVRO_UNION:
                return vjson_union(v, out, depth, errstr, errstr_size);
        default:
                if (vjson_scalar(v, t, out))
                        return true;
                snprintf(errstr, errstr_size, "cannot render Avro type %d", (int)t);
                return false;
        }
}

bool rs_avro_value_to_json(avro_value_t *v, rs_buf_t *out, char *errstr,
                           size_t errstr_size)
{
        return vjson(v, out, 0, errstr, errstr_size);
}
