/* Reading Avro bodies written with any compatible writer schema: the Avro
 * specification's schema resolution (docs/events.md §2), done here because
 * avro-c 1.11.1's resolver applies no reader defaults (docs/design.md §4).
 *
 * A plan is made once per (writer schema, input record type): one step per
 * writer field, saying which of the reader's fields it fills and how each
 * writer type (each branch, for a union) is read, or that it is skipped. The
 * reader's fields the writer lacks keep the reader's defaults. The rules:
 *   - records by unqualified name, fields by name; writer-only fields are
 *     skipped, reader-only fields need a default;
 *   - int is read as long; bytes as string;
 *   - enums by unqualified name, symbols by name (a writer symbol the reader
 *     lacks fails the record that carries it);
 *   - a writer union is read through its branch; a branch the reader cannot
 *     read fails the record that takes it, and a field none of whose types
 *     can be read fails the plan.
 * The body is walked with the checked cursor of rs_codec_avro.c: avro-c never
 * sees input bodies, and strings are read in place (validation copies them). */
#include "rs_codec_internal.h"

#include <stdlib.h>
#include <string.h>

typedef enum {
        OP_NULL,   /* null: the field is absent */
        OP_STRING, /* string or bytes */
        OP_INT,    /* int, read as long */
        OP_LONG,
        OP_ENUM, /* ordinal -> symbol by name */
        OP_BAD,  /* the reader cannot read this writer type */
} op_t;

typedef struct read_op {
        op_t op;
        avro_schema_t wenum;  /* OP_ENUM: the writer's enum (messages) */
        const char **symbols; /* OP_ENUM: reader symbol by writer ordinal, or NULL */
        size_t n_symbols;
        char why[96]; /* OP_BAD */
} read_op_t;

typedef struct step {
        int field;            /* rs_field_id_t it fills, or -1: skipped */
        const char *name;     /* writer field name */
        avro_schema_t schema; /* writer field type */
        bool is_union;
        size_t n_ops; /* one per union branch, else 1 */
        read_op_t *ops;
} step_t;

struct rs_plan {
        bool ok;
        char error[320]; /* !ok: why records of this writer cannot be read */
        const rs_schema_entry_t *reader;
        step_t *steps;
        size_t n_steps;
        size_t min_steps; /* the body may end after this many steps */
};

static avro_schema_t deref(avro_schema_t s)
{
        while (s && is_avro_link(s))
                s = avro_schema_link_target(s);
        return s;
}

static const char *type_name(avro_schema_t s)
{
        const char *n = avro_schema_type_name(s);
        return n ? n : "?";
}

static const char *kind_name(rs_field_kind_t k)
{
        switch (k) {
        case RS_FK_STRING:
                return "string";
        case RS_FK_ENUM:
                return "enum";
        default:
                return "long";
        }
}

/* The reader's enum type of field f (its schema, through a union). */
static avro_schema_t reader_enum(const rs_schema_entry_t *r, int f)
{
        avro_schema_t s =
            deref(avro_schema_record_field_get(r->schema, rs_codec_fields[f].name));
        if (s && is_avro_union(s)) {
                for (size_t i = 0; i < avro_schema_union_size(s); i++) {
                        avro_schema_t b = deref(avro_schema_union_branch(s, (int)i));
                        if (is_avro_enum(b))
                                return b;
                }
        }
        return s && is_avro_enum(s) ? s : NULL;
}

static void enum_op(read_op_t *op, avro_schema_t w, avro_schema_t r)
{
        if (!r || strcmp(avro_schema_name(w), avro_schema_name(r)) != 0) {
                op->op = OP_BAD;
                snprintf(op->why, sizeof(op->why), "enum %s is not the reader's enum %s",
                         avro_schema_name(w), r ? avro_schema_name(r) : "?");
                return;
        }
        op->op = OP_ENUM;
        op->wenum = w;
        op->n_symbols = (size_t)avro_schema_enum_number_of_symbols(w);
        op->symbols = rs_calloc(op->n_symbols ? op->n_symbols : 1, sizeof(char *));
        for (size_t i = 0; i < op->n_symbols; i++) {
                int ord =
                    avro_schema_enum_get_by_name(r, avro_schema_enum_get(w, (int)i));
                op->symbols[i] = ord >= 0 ? avro_schema_enum_get(r, ord) : NULL;
        }
}

/* How a value of writer type w is read into reader field f. */
static void make_op(read_op_t *op, const rs_schema_entry_t *r, int f, avro_schema_t w)
{
        rs_field_kind_t k = rs_codec_fields[f].kind;
        bool number = k == RS_FK_LONG || k == RS_FK_TIMESTAMP;
        memset(op, 0, sizeof(*op));
        w = deref(w);
        switch (avro_typeof(w)) {
        case AVRO_NULL:
                op->op = OP_NULL;
                return;
        case AVRO_STRING:
        case AVRO_BYTES:
                op->op = k == RS_FK_STRING ? OP_STRING : OP_BAD;
                break;
        case AVRO_INT32:
                op->op = number ? OP_INT : OP_BAD;
                break;
        case AVRO_INT64:
                op->op = number ? OP_LONG : OP_BAD;
                break;
        case AVRO_ENUM:
                if (k == RS_FK_ENUM) {
                        enum_op(op, w, reader_enum(r, f));
                        return;
                }
                op->op = OP_BAD;
                break;
        default:
                op->op = OP_BAD;
                break;
        }
        if (op->op == OP_BAD)
                snprintf(op->why, sizeof(op->why), "%s cannot be read as %s",
                         type_name(w), kind_name(k));
}

/* True if some writer type of the step gives the reader a value it accepts. */
static bool step_readable(const step_t *st, const rs_schema_entry_t *r)
{
        for (size_t i = 0; i < st->n_ops; i++) {
                op_t op = st->ops[i].op;
                if (op != OP_BAD && (op != OP_NULL || r->nullable[st->field]))
                        return true;
        }
        return false;
}

static bool plan_fail(rs_plan_t *p, const char *fmt, ...) RS_PRINTF(2, 3);

static bool plan_fail(rs_plan_t *p, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->error, sizeof(p->error), fmt, ap);
        va_end(ap);
        p->ok = false;
        return false;
}

static bool plan_step(rs_plan_t *p, step_t *st, avro_schema_t wrec, size_t i,
                      rs_event_type_t t)
{
        st->name = avro_schema_record_field_name(wrec, (int)i);
        st->schema = avro_schema_record_field_get_by_index(wrec, (int)i);
        st->field = rs_codec_field_id(t, st->name);
        if (st->field < 0)
                return true; /* the reader has no such field: skipped */
        avro_schema_t w = deref(st->schema);
        st->is_union = is_avro_union(w);
        st->n_ops = st->is_union ? avro_schema_union_size(w) : 1;
        st->ops = rs_calloc(st->n_ops ? st->n_ops : 1, sizeof(*st->ops));
        for (size_t b = 0; b < st->n_ops; b++)
                make_op(&st->ops[b], p->reader, st->field,
                        st->is_union ? avro_schema_union_branch(w, (int)b) : w);
        if (step_readable(st, p->reader))
                return true;
        return plan_fail(p, "field %s: %s", st->name,
                         st->n_ops == 1 && st->ops[0].op == OP_BAD
                             ? st->ops[0].why
                             : "none of the writer's types can be read");
}

/* Every reader field the writer lacks needs a default. */
static bool plan_defaults(rs_plan_t *p, rs_event_type_t t)
{
        bool seen[RS_F__COUNT] = {false};
        for (size_t i = 0; i < p->n_steps; i++) {
                if (p->steps[i].field >= 0)
                        seen[p->steps[i].field] = true;
        }
        for (int f = 0; f < RS_F__COUNT; f++) {
                if (rs_field_in((rs_field_id_t)f, t) && !seen[f] &&
                    !p->reader->has_default[f])
                        return plan_fail(p,
                                         "the writer has no field %s, which the "
                                         "reader requires (no default)",
                                         rs_codec_fields[f].name);
        }
        return true;
}

static void plan_build(rs_plan_t *p, const rs_writer_t *wr, rs_event_type_t t)
{
        avro_schema_t w = deref(wr->schema);
        const char *want = p->reader->name;
        p->ok = true;
        if (!is_avro_record(w)) {
                plan_fail(p, "schema id %u is a %s, expected record %s", wr->id,
                          type_name(w), want);
                return;
        }
        if (strcmp(avro_schema_name(w), want) != 0) {
                plan_fail(p, "schema id %u is %s, expected %s", wr->id,
                          avro_schema_name(w), want);
                return;
        }
        p->n_steps = avro_schema_record_size(w);
        p->steps = rs_calloc(p->n_steps ? p->n_steps : 1, sizeof(*p->steps));
        p->min_steps = wr->prefix_ok ? p->reader->min_fields : p->n_steps;
        for (size_t i = 0; i < p->n_steps; i++) {
                if (!plan_step(p, &p->steps[i], w, i, t))
                        break;
        }
        if (p->ok)
                plan_defaults(p, t);
        if (!p->ok) {
                char why[200];
                rs_strlcpy(why, p->error, sizeof(why));
                snprintf(p->error, sizeof(p->error),
                         "schema id %u cannot be read as %s: %s", wr->id, want, why);
        }
}

const rs_plan_t *rs_plan_get(rs_codec_t *c, rs_writer_t *w, rs_event_type_t t)
{
        if (w->plan[t])
                return w->plan[t];
        rs_plan_t *p = rs_calloc(1, sizeof(*p));
        p->reader = c->input[t];
        plan_build(p, w, t);
        w->plan[t] = p;
        return p;
}

void rs_plan_free(rs_plan_t *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n_steps; i++) {
                for (size_t b = 0; b < p->steps[i].n_ops; b++)
                        free(p->steps[i].ops[b].symbols);
                free(p->steps[i].ops);
        }
        free(p->steps);
        free(p);
}

/* ---------------------------------------------------------------- reading */

static bool read_field(const step_t *st, rs_wire_t *w, rs_raw_field_t *f,
                       rs_decode_error_t *err)
{
        int64_t b = 0, v;
        if (st->is_union && !rs_wire_index(w, st->n_ops, "union branch", &b))
                return false;
        const read_op_t *op = &st->ops[b];
        f->set = op->op != OP_NULL;
        switch (op->op) {
        case OP_NULL:
                return true;
        case OP_STRING:
                return rs_wire_bytes(w, &f->s, &f->len);
        case OP_INT:
                return rs_wire_int(w, &f->i);
        case OP_LONG:
                return rs_wire_varint(w, 10, &f->i);
        case OP_ENUM:
                if (!rs_wire_index(w, op->n_symbols, "enum ordinal", &v))
                        return false;
                f->s = op->symbols[v];
                if (!f->s) {
                        rs_codec_err(err, RS_ERR_WRONG_SCHEMA,
                                     "%s: symbol %s of the writer's enum is not in the "
                                     "reader's",
                                     st->name, avro_schema_enum_get(op->wenum, (int)v));
                        return false;
                }
                f->len = strlen(f->s);
                return true;
        case OP_BAD:
        default:
                rs_codec_err(err, RS_ERR_WRONG_SCHEMA, "%s: the writer's %s", st->name,
                             op->why);
                return false;
        }
}

bool rs_plan_read(const rs_plan_t *p, const uint8_t *body, size_t len,
                  rs_raw_event_t *raw, rs_decode_error_t *err)
{
        char msg[200];
        if (!p->ok) {
                rs_codec_err(err, RS_ERR_WRONG_SCHEMA, "%s", p->error);
                return false;
        }
        rs_wire_t w = {
            .p = body, .end = body + len, .errstr = msg, .errstr_size = sizeof(msg)};
        memcpy(raw->f, p->reader->def, sizeof(raw->f));
        raw->type = p->reader->input;
        msg[0] = '\0';
        for (size_t i = 0; i < p->n_steps; i++) {
                const step_t *st = &p->steps[i];
                if (w.p == w.end && i >= p->min_steps)
                        break; /* an earlier version of the schema: defaults */
                w.field = st->name;
                bool ok = st->field < 0 ? rs_wire_value(&w, st->schema, 1)
                                        : read_field(st, &w, &raw->f[st->field], err);
                if (!ok) {
                        if (msg[0]) /* the cursor's error, else err is set */
                                rs_codec_err(err, RS_ERR_AVRO_DECODE, "%s", msg);
                        return false;
                }
        }
        if (w.p != w.end) {
                rs_codec_err(err, RS_ERR_AVRO_DECODE,
                             "%zu trailing bytes after the record",
                             (size_t)(w.end - w.p));
                return false;
        }
        return true;
}
