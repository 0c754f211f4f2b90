#include "rs_pgrows.h"

#include <stdlib.h>
#include <string.h>

void rs_pgrows_init(rs_pgrows_t *r, const rs_pgcol_t *cols, size_t ncols)
{
        /* A column table longer than the limit is a programming error:
         * dropping columns would send a statement rows it does not expect. */
        if (ncols > RS_PGROWS_MAX_COLS)
                abort();
        memset(r, 0, sizeof(*r));
        r->cols = cols;
        r->ncols = ncols;
        for (size_t i = 0; i < r->ncols; i++) {
                /* So is a type the binary arrays do not know. */
                Oid elem = rs_pg_type_oid(cols[i].pgtype);
                if (!elem)
                        abort();
                rs_pgarr_init_binary(&r->arr[i], elem);
        }
}

void rs_pgrows_free(rs_pgrows_t *r)
{
        for (size_t i = 0; i < r->ncols; i++)
                rs_pgarr_free(&r->arr[i]);
        r->n = 0;
}

static void put(rs_pgarr_t *a, const rs_pgcol_t *c, const void *row)
{
        const char *f = (const char *)row + c->offset;
        int64_t v;
        switch (c->kind) {
        case RS_PGCOL_TEXT:
                rs_pgarr_text(a, *(const char *const *)f);
                return;
        case RS_PGCOL_I64:
                memcpy(&v, f, sizeof(v));
                rs_pgarr_int(a, v);
                return;
        case RS_PGCOL_I32: {
                int32_t i;
                memcpy(&i, f, sizeof(i));
                rs_pgarr_int(a, i);
                return;
        }
        case RS_PGCOL_TIME:
                memcpy(&v, f, sizeof(v));
                rs_pgarr_int_or_null(a, v, RS_TS_NONE);
                return;
        case RS_PGCOL_ID:
                memcpy(&v, f, sizeof(v));
                rs_pgarr_int_or_null(a, v, 0);
                return;
        case RS_PGCOL_BOOL:
                rs_pgarr_bool(a, *(const bool *)f);
                return;
        case RS_PGCOL_FN:
                c->put(a, row);
                return;
        }
}

void rs_pgrows_add(rs_pgrows_t *r, const void *row)
{
        for (size_t i = 0; i < r->ncols; i++)
                put(&r->arr[i], &r->cols[i], row);
        r->n++;
}

static void put_unnest(rs_buf_t *b, const rs_pgcol_t *cols, size_t ncols, bool numbered)
{
        rs_buf_puts(b, "unnest(");
        for (size_t i = 0; i < ncols; i++)
                rs_buf_printf(b, "%s$%zu::%s[]", i ? ", " : "", i + 1, cols[i].pgtype);
        rs_buf_puts(b, numbered ? ") WITH ORDINALITY AS v(" : ") AS v(");
        for (size_t i = 0; i < ncols; i++)
                rs_buf_printf(b, "%s%s", i ? ", " : "", cols[i].name);
        rs_buf_puts(b, numbered ? ", ord)" : ")");
}

char *rs_pgrows_sql(const char *sql, const rs_pgcol_t *cols, size_t ncols)
{
        rs_buf_t b;
        rs_buf_init(&b);
        for (const char *p = sql; *p;) {
                const char *open = strchr(p, '{'),
                           *close = open ? strchr(open, '}') : NULL;
                if (!close) {
                        rs_buf_puts(&b, p);
                        break;
                }
                rs_buf_append(&b, p, (size_t)(open - p));
                size_t n = (size_t)(close - open + 1);
                unsigned extra;
                if (n == 6 && strncmp(open, "{rows}", n) == 0)
                        put_unnest(&b, cols, ncols, false);
                else if (n == 15 && strncmp(open, "{rows_numbered}", n) == 0)
                        put_unnest(&b, cols, ncols, true);
                else if (sscanf(open, "{p%u}", &extra) == 1 && extra > 0)
                        rs_buf_printf(&b, "$%zu", ncols + extra);
                else
                        rs_buf_append(&b, open, n); /* not ours: as written */
                p = close + 1;
        }
        rs_buf_reserve(&b, 0);
        return b.data;
}

/* The statement's parameters: the columns' arrays (binary), then the extra
 * ones (text). */
typedef struct params {
        const char *values[RS_PGROWS_MAX_COLS + 4];
        int lengths[RS_PGROWS_MAX_COLS + 4];
        int formats[RS_PGROWS_MAX_COLS + 4];
        rs_pgparams_t p;
} params_t;

static const rs_pgparams_t *params_of(rs_pgrows_t *r, const char *const *extra,
                                      int nextra, params_t *ps)
{
        int n = 0;
        for (size_t i = 0; i < r->ncols; i++, n++) {
                ps->values[n] = rs_pgarr_get(&r->arr[i]);
                ps->lengths[n] = rs_pgarr_len(&r->arr[i]);
                ps->formats[n] = 1;
        }
        for (int i = 0; i < nextra && i < 4; i++, n++) {
                ps->values[n] = extra[i];
                ps->lengths[n] = 0;
                ps->formats[n] = 0;
        }
        ps->p = (rs_pgparams_t){n, ps->values, ps->lengths, ps->formats};
        return &ps->p;
}

PGresult *rs_pgrows_query(rs_pg_t *pg, const char *sql, rs_pgrows_t *r,
                          const char *const *extra, int nextra, char *errstr,
                          size_t errstr_size)
{
        params_t ps;
        const rs_pgparams_t *p = params_of(r, extra, nextra, &ps);
        char *text = rs_pgrows_sql(sql, r->cols, r->ncols);
        PGresult *res = rs_pg_exec_params(pg, text, p, errstr, errstr_size);
        free(text);
        return res;
}

int rs_pgrows_send(rs_pg_t *pg, const char *sql, rs_pgrows_t *r, const char *const *extra,
                   int nextra, char *errstr, size_t errstr_size)
{
        params_t ps;
        const rs_pgparams_t *p = params_of(r, extra, nextra, &ps);
        char *text = rs_pgrows_sql(sql, r->cols, r->ncols);
        int at = rs_pg_send_params(pg, text, p, errstr, errstr_size);
        free(text);
        return at;
}

bool rs_pgrows_exec(rs_pg_t *pg, bool run, const char *sql, rs_pgrows_t *r, char *errstr,
                    size_t errstr_size)
{
        bool ok = run;
        if (run && r->n > 0 && pg->pipeline) {
                ok = rs_pgrows_send(pg, sql, r, NULL, 0, errstr, errstr_size) >= 0;
        } else if (run && r->n > 0) {
                PGresult *res = rs_pgrows_query(pg, sql, r, NULL, 0, errstr, errstr_size);
                ok = res != NULL;
                PQclear(res);
        }
        rs_pgrows_free(r);
        return ok;
}
