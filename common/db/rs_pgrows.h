#ifndef RS_PGROWS_H
#define RS_PGROWS_H
/* Set-wise writes built from one column table. A table names each column,
 * its Postgres element type and where its value comes from in a C row; rows
 * are collected into one binary array per column, and the statement's
 * "{rows}" becomes unnest($1::type[], $2::type[], ...) AS v(name, ...), so
 * the statement refers to columns by name (v.name) and no parameter number
 * is written by hand:
 *
 *     static const rs_pgcol_t cols[] = {
 *         RS_PGCOL(rs_user_t, user_id, "text", RS_PGCOL_TEXT),
 *         RS_PGCOL(rs_user_t, signed_up_at_ms, "bigint", RS_PGCOL_TIME),
 *     };
 *     "UPDATE rs_users u SET signed_up_at = rs_ms_to_ts(v.signed_up_at_ms)\n"
 *     "  FROM {rows} WHERE u.user_id = v.user_id"
 */
#include "rs_pg.h"

#include <stddef.h>

typedef enum {
        RS_PGCOL_TEXT, /* const char * (NULL: SQL NULL) */
        RS_PGCOL_I64,  /* int64_t */
        RS_PGCOL_I32,  /* int32_t */
        RS_PGCOL_TIME, /* int64_t epoch ms, RS_TS_NONE: SQL NULL */
        RS_PGCOL_ID,   /* int64_t, 0: SQL NULL */
        RS_PGCOL_BOOL, /* bool */
        RS_PGCOL_FN,   /* computed by put() */
} rs_pgcol_kind_t;

typedef struct rs_pgcol {
        const char *name;   /* in the statement: v.name */
        const char *pgtype; /* element type, one rs_pg_type_oid knows: "text", ... */
        rs_pgcol_kind_t kind;
        size_t offset;                               /* of the field in the row */
        void (*put)(rs_pgarr_t *a, const void *row); /* RS_PGCOL_FN */
} rs_pgcol_t;

/* A column read from a field of the row struct. */
#define RS_PGCOL(type, field, pgtype, kind)                                              \
        {                                                                                \
#field, pgtype, kind, offsetof(type, field), NULL                        \
        }
/* A computed column. */
#define RS_PGCOL_FN(name, pgtype, fn)                                                    \
        {                                                                                \
                name, pgtype, RS_PGCOL_FN, 0, fn                                         \
        }

#define RS_PGROWS_MAX_COLS 24 /* rs_pgrows_init aborts on more */

typedef struct rs_pgrows {
        const rs_pgcol_t *cols;
        size_t ncols;
        rs_pgarr_t arr[RS_PGROWS_MAX_COLS];
        size_t n; /* rows */
} rs_pgrows_t;

void rs_pgrows_init(rs_pgrows_t *r, const rs_pgcol_t *cols, size_t ncols);
void rs_pgrows_add(rs_pgrows_t *r, const void *row);
void rs_pgrows_free(rs_pgrows_t *r);

/* The statement as it is sent: "{rows}" becomes unnest($1::type[], ...) AS
 * v(name, ...), "{rows_numbered}" the same WITH ORDINALITY AS v(name, ...,
 * ord), and "{p1}", "{p2}", ... the extra parameters after the columns'. */
char *rs_pgrows_sql(const char *sql, const rs_pgcol_t *cols, size_t ncols);
/* Runs sql with the rows (and nextra extra parameters); the rows are kept. */
PGresult *rs_pgrows_query(rs_pg_t *pg, const char *sql, rs_pgrows_t *r,
                          const char *const *extra, int nextra, char *errstr,
                          size_t errstr_size) RS_WARN_UNUSED;
/* The same, queued in the pipeline (rs_pg_send): its number, or -1. */
int rs_pgrows_send(rs_pg_t *pg, const char *sql, rs_pgrows_t *r, const char *const *extra,
                   int nextra, char *errstr, size_t errstr_size);
/* Runs sql (queues it, in pipeline mode) unless there are no rows or !run
 * (an earlier statement failed); frees the rows either way. */
bool rs_pgrows_exec(rs_pg_t *pg, bool run, const char *sql, rs_pgrows_t *r, char *errstr,
                    size_t errstr_size) RS_WARN_UNUSED;

#endif
