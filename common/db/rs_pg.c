#include "rs_pg.h"
#include "rs_db_sql.h"
#include "rs_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

rs_pg_t *rs_pg_new(const char *url, int64_t statement_timeout_ms)
{
        rs_pg_t *pg = rs_calloc(1, sizeof(*pg));
        pg->url = rs_strdup(url);
        pg->statement_timeout_ms = statement_timeout_ms;
        return pg;
}

void rs_pg_disconnect(rs_pg_t *pg)
{
        if (pg->conn)
                PQfinish(pg->conn);
        pg->conn = NULL;
}

void rs_pg_destroy(rs_pg_t *pg)
{
        if (!pg)
                return;
        rs_pg_disconnect(pg);
        free(pg->url);
        free(pg);
}

static void trim_newline(char *s)
{
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
                s[--n] = '\0';
}

bool rs_pg_connect(rs_pg_t *pg, char *errstr, size_t errstr_size)
{
        if (pg->conn && !pg->broken && PQstatus(pg->conn) == CONNECTION_OK)
                return true;
        rs_pg_disconnect(pg);
        pg->broken = false;
        /* connect_timeout bounds a hung connect; the URL may set its own. */
        const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
        const char *vals[] = {pg->url, "refstream", "10", NULL};
        pg->conn = PQconnectdbParams(keys, vals, 1 /* expand dbname as conninfo/URI */);
        if (PQstatus(pg->conn) != CONNECTION_OK) {
                snprintf(errstr, errstr_size, "cannot connect to Postgres: %s",
                         PQerrorMessage(pg->conn));
                trim_newline(errstr);
                rs_pg_disconnect(pg);
                rs_strlcpy(pg->sqlstate, "08006", sizeof(pg->sqlstate));
                return false;
        }
        char timeout[32];
        snprintf(timeout, sizeof(timeout), "%lld", (long long)pg->statement_timeout_ms);
        const char *params[] = {timeout};
        if (!rs_pg_cmd(pg, SQL_DB_SESSION, 1, params, errstr, errstr_size)) {
                rs_pg_disconnect(pg);
                return false;
        }
        return true;
}

/* Records why a statement failed (res may be NULL: the connection's error). */
static void record_error(rs_pg_t *pg, const PGresult *res, char *errstr,
                         size_t errstr_size)
{
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *constraint =
            res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
        rs_strlcpy(pg->sqlstate, state ? state : "08006", sizeof(pg->sqlstate));
        rs_strlcpy(pg->constraint, constraint ? constraint : "", sizeof(pg->constraint));
        snprintf(errstr, errstr_size, "%s",
                 res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
                                                   : PQerrorMessage(pg->conn));
        trim_newline(errstr);
        if (PQstatus(pg->conn) != CONNECTION_OK)
                pg->broken = true;
}

static bool not_connected(rs_pg_t *pg, char *errstr, size_t errstr_size)
{
        if (pg->conn)
                return false;
        snprintf(errstr, errstr_size, "not connected to Postgres");
        rs_strlcpy(pg->sqlstate, "08003", sizeof(pg->sqlstate));
        pg->broken = true;
        return true;
}

PGresult *rs_pg_exec(rs_pg_t *pg, const char *sql, int nparams, const char *const *params,
                     char *errstr, size_t errstr_size)
{
        const rs_pgparams_t p = {nparams, params, NULL, NULL};
        return rs_pg_exec_params(pg, sql, &p, errstr, errstr_size);
}

PGresult *rs_pg_exec_params(rs_pg_t *pg, const char *sql, const rs_pgparams_t *p,
                            char *errstr, size_t errstr_size)
{
        pg->sqlstate[0] = '\0';
        if (not_connected(pg, errstr, errstr_size))
                return NULL;
        PGresult *res =
            PQexecParams(pg->conn, sql, p->n, NULL, p->values, p->lengths, p->formats, 0);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
                return res;
        record_error(pg, res, errstr, errstr_size);
        PQclear(res);
        return NULL;
}

bool rs_pg_pipeline_begin(rs_pg_t *pg, char *errstr, size_t errstr_size)
{
        pg->sqlstate[0] = '\0';
        if (not_connected(pg, errstr, errstr_size))
                return false;
        if (PQenterPipelineMode(pg->conn) != 1) {
                record_error(pg, NULL, errstr, errstr_size);
                return false;
        }
        pg->pipeline = true;
        pg->queued = 0;
        return true;
}

int rs_pg_send(rs_pg_t *pg, const char *sql, int nparams, const char *const *params,
               char *errstr, size_t errstr_size)
{
        const rs_pgparams_t p = {nparams, params, NULL, NULL};
        return rs_pg_send_params(pg, sql, &p, errstr, errstr_size);
}

int rs_pg_send_params(rs_pg_t *pg, const char *sql, const rs_pgparams_t *p, char *errstr,
                      size_t errstr_size)
{
        if (PQsendQueryParams(pg->conn, sql, p->n, NULL, p->values, p->lengths,
                              p->formats, 0) != 1) {
                record_error(pg, NULL, errstr, errstr_size);
                return -1;
        }
        return pg->queued++;
}

/* Reads the results of the queued statements; all[i] (all: NULL, or
 * pg->queued entries) gets statement i's result when everything succeeded
 * (the caller clears them), else NULL. */
static bool pipeline_collect(rs_pg_t *pg, PGresult **all, char *errstr,
                             size_t errstr_size)
{
        int queued = pg->queued;
        for (int i = 0; all && i < queued; i++)
                all[i] = NULL;
        bool ok = PQpipelineSync(pg->conn) == 1;
        if (!ok)
                record_error(pg, NULL, errstr, errstr_size);
        /* Each statement: its result, then NULL. A statement after a failed
         * one comes back PGRES_PIPELINE_ABORTED. */
        for (int i = 0; ok && i < queued; i++) {
                PGresult *res = PQgetResult(pg->conn);
                ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
                if (st == PGRES_FATAL_ERROR && !res) {
                        record_error(pg, NULL, errstr, errstr_size);
                        ok = false;
                        break;
                }
                if (st == PGRES_FATAL_ERROR && !pg->sqlstate[0])
                        record_error(pg, res, errstr, errstr_size);
                if (all && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK))
                        all[i] = res;
                else
                        PQclear(res);
                while ((res = PQgetResult(pg->conn)))
                        PQclear(res);
        }
        if (ok) { /* the sync point */
                PGresult *res = PQgetResult(pg->conn);
                if (!res || PQresultStatus(res) != PGRES_PIPELINE_SYNC) {
                        if (!pg->sqlstate[0])
                                record_error(pg, NULL, errstr, errstr_size);
                        pg->broken = true;
                }
                PQclear(res);
        }
        if (!pg->broken && PQexitPipelineMode(pg->conn) != 1) {
                if (!pg->sqlstate[0])
                        record_error(pg, NULL, errstr, errstr_size);
                pg->broken = true;
        }
        pg->pipeline = false;
        pg->queued = 0;
        ok = ok && !pg->sqlstate[0];
        for (int i = 0; !ok && all && i < queued; i++) {
                PQclear(all[i]);
                all[i] = NULL;
        }
        return ok;
}

bool rs_pg_pipeline_end(rs_pg_t *pg, int keep, PGresult **kept, char *errstr,
                        size_t errstr_size)
{
        int queued = pg->queued;
        PGresult **all = rs_calloc((size_t)(queued ? queued : 1), sizeof(*all));
        bool ok = pipeline_collect(pg, all, errstr, errstr_size);
        for (int i = 0; i < queued; i++) {
                if (ok && kept && i == keep)
                        *kept = all[i];
                else
                        PQclear(all[i]);
        }
        free(all);
        return ok;
}

bool rs_pg_pipeline_end_all(rs_pg_t *pg, PGresult **all, char *errstr, size_t errstr_size)
{
        return pipeline_collect(pg, all, errstr, errstr_size);
}

bool rs_pg_script(rs_pg_t *pg, const char *sql, char *errstr, size_t errstr_size)
{
        /* Several statements: the simple query protocol, no parameters. */
        PGresult *res = PQexec(pg->conn, sql);
        ExecStatusType st = PQresultStatus(res);
        bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        if (!ok) {
                snprintf(errstr, errstr_size, "%s", PQresultErrorMessage(res));
                trim_newline(errstr);
        }
        PQclear(res);
        return ok;
}

bool rs_pg_cmd(rs_pg_t *pg, const char *sql, int nparams, const char *const *params,
               char *errstr, size_t errstr_size)
{
        PGresult *res = rs_pg_exec(pg, sql, nparams, params, errstr, errstr_size);
        PQclear(res);
        return res != NULL;
}

int64_t rs_pg_delete_older(rs_pg_t *pg, const char *sql, int64_t hours, int limit,
                           int rounds, char *errstr, size_t errstr_size)
{
        char hours_text[24], limit_text[24];
        snprintf(hours_text, sizeof(hours_text), "%lld", (long long)hours);
        snprintf(limit_text, sizeof(limit_text), "%d", limit);
        const char *params[] = {hours_text, limit_text};
        int64_t total = 0;
        for (int round = 0; round < rounds; round++) {
                PGresult *res = rs_pg_exec(pg, sql, 2, params, errstr, errstr_size);
                if (!res)
                        return -1;
                int64_t n = strtoll(PQcmdTuples(res), NULL, 10);
                PQclear(res);
                total += n;
                if (n < limit)
                        break;
        }
        return total;
}

void rs_pg_rollback(rs_pg_t *pg)
{
        if (!pg->conn || pg->broken)
                return;
        PGresult *res = PQexec(pg->conn, SQL_DB_ROLLBACK);
        PQclear(res);
        if (PQstatus(pg->conn) != CONNECTION_OK)
                pg->broken = true;
}

bool rs_pg_error_transient(const rs_pg_t *pg)
{
        /* Errors about the database or its environment, which no record
         * causes and waiting may cure: retry. Everything else (data
         * exceptions 22, integrity 23, raised exceptions P0, ...) is about
         * the records: the batch is split to find the one at fault. */
        static const char *const classes[] = {
            "08", /* connection */
            "28", /* authorization */
            "3D", /* no such database */
            "3F", /* no such schema */
            "42", /* privileges, missing tables: a deployment problem */
            "53", /* insufficient resources */
            "58", /* system error */
            "XX", /* internal error */
        };
        static const char *const states[] = {
            "40001",                            /* serialization failure */
            "40P01",                            /* deadlock */
            "55P03",                            /* lock timeout */
            "57014",                            /* statement timeout / cancelled */
            "57P01", "57P02", "57P03", "57P04", /* shutdown, crash, starting */
            "25P03",                            /* idle-in-transaction timeout */
            "25006", /* read-only transaction: a replica after failover */
        };
        const char *s = pg->sqlstate;
        if (pg->broken || !pg->conn)
                return true;
        for (size_t i = 0; i < RS_ARRAY_SIZE(classes); i++)
                if (strncmp(s, classes[i], 2) == 0)
                        return true;
        for (size_t i = 0; i < RS_ARRAY_SIZE(states); i++)
                if (strcmp(s, states[i]) == 0)
                        return true;
        return false;
}

bool rs_pg_error_timeout(const rs_pg_t *pg)
{
        return strcmp(pg->sqlstate, "57014") == 0 || strcmp(pg->sqlstate, "55P03") == 0;
}

bool rs_pg_error_conflict(const rs_pg_t *pg)
{
        return strcmp(pg->sqlstate, "40P01") == 0 || strcmp(pg->sqlstate, "40001") == 0;
}

bool rs_pg_error_check(const rs_pg_t *pg)
{
        return strcmp(pg->sqlstate, "23514") == 0;
}

bool rs_pg_error_no_table(const rs_pg_t *pg)
{
        return strcmp(pg->sqlstate, "42P01") == 0;
}

bool rs_pg_error_unique(const rs_pg_t *pg, const char *constraint)
{
        return strcmp(pg->sqlstate, "23505") == 0 &&
               strcmp(pg->constraint, constraint) == 0;
}

void rs_pg_take_error(rs_pg_t *dst, const rs_pg_t *src)
{
        if (dst == src)
                return;
        memcpy(dst->sqlstate, src->sqlstate, sizeof(dst->sqlstate));
        memcpy(dst->constraint, src->constraint, sizeof(dst->constraint));
        if ((src->broken || !src->conn) && !dst->sqlstate[0])
                snprintf(dst->sqlstate, sizeof(dst->sqlstate), "08006");
}

const char *rs_pg_str(const PGresult *res, int r, int c)
{
        return PQgetisnull(res, r, c) ? NULL : PQgetvalue(res, r, c);
}

int64_t rs_pg_int(const PGresult *res, int r, int c, int64_t if_null)
{
        if (PQgetisnull(res, r, c))
                return if_null;
        return strtoll(PQgetvalue(res, r, c), NULL, 10);
}

int32_t rs_pg_user_lock_key(const char *user_id)
{
        uint64_t h = rs_hash_str(user_id);
        return (int32_t)(uint32_t)(h ^ (h >> 32));
}

/* ---------------------------------------------------------------- arrays */

Oid rs_pg_type_oid(const char *name)
{
        static const struct {
                const char *name;
                Oid oid;
        } types[] = {{"text", RS_PG_TEXTOID},   {"uuid", RS_PG_UUIDOID},
                     {"bigint", RS_PG_INT8OID}, {"int", RS_PG_INT4OID},
                     {"bool", RS_PG_BOOLOID},   {"bytea", RS_PG_BYTEAOID}};
        for (size_t i = 0; i < RS_ARRAY_SIZE(types); i++)
                if (strcmp(name, types[i].name) == 0)
                        return types[i].oid;
        return 0;
}

/* The binary header (rs_pgarr_reset): ndim, has-null flag (array_recv
 * works it out itself), element type, then the dimension's length (at byte
 * 12, written by rs_pgarr_get) and lower bound. */
enum { BIN_COUNT_AT = 12 };

static void put_be32(unsigned char *p, uint32_t v)
{
        p[0] = (unsigned char)(v >> 24);
        p[1] = (unsigned char)(v >> 16);
        p[2] = (unsigned char)(v >> 8);
        p[3] = (unsigned char)v;
}

static void bin_u32(rs_buf_t *b, uint32_t v)
{
        unsigned char p[4];
        put_be32(p, v);
        rs_buf_append(b, p, 4);
}

void rs_pgarr_init(rs_pgarr_t *a)
{
        rs_buf_init(&a->buf);
        a->elem = 0;
        rs_pgarr_reset(a);
}

void rs_pgarr_init_binary(rs_pgarr_t *a, Oid elem)
{
        rs_buf_init(&a->buf);
        a->elem = elem;
        rs_pgarr_reset(a);
}

void rs_pgarr_reset(rs_pgarr_t *a)
{
        rs_buf_reset(&a->buf);
        a->count = 0;
        if (!a->elem) {
                rs_buf_putc(&a->buf, '{');
                return;
        }
        const uint32_t header[] = {1, 0, a->elem, 0, 1};
        for (size_t i = 0; i < RS_ARRAY_SIZE(header); i++)
                bin_u32(&a->buf, header[i]);
}

void rs_pgarr_free(rs_pgarr_t *a)
{
        rs_buf_free(&a->buf);
}

static void sep(rs_pgarr_t *a)
{
        if (a->count++)
                rs_buf_putc(&a->buf, ',');
}

/* A binary element: its length (-1: NULL) and bytes. */
static void bin_elem(rs_pgarr_t *a, const void *p, int32_t len)
{
        a->count++;
        bin_u32(&a->buf, (uint32_t)len);
        if (len > 0)
                rs_buf_append(&a->buf, p, (size_t)len);
}

/* A hex digit's value plus one; 0 for any other byte. */
static const unsigned char HEX1[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,
    ['6'] = 7,  ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12,
    ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16, ['A'] = 11, ['B'] = 12,
    ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16};

/* A uuid's text (hex digits, dashes anywhere, as uuid_in takes them in
 * their usual places) as its 16 bytes; false if it is not one. */
static bool uuid_bytes(const char *s, unsigned char out[16])
{
        int n = 0;
        for (; *s && n < 32; s++) {
                if (*s == '-')
                        continue;
                int v = HEX1[(unsigned char)*s] - 1;
                if (v < 0)
                        return false;
                if (n % 2 == 0)
                        out[n / 2] = (unsigned char)(v << 4);
                else
                        out[n / 2] |= (unsigned char)v;
                n++;
        }
        return n == 32 && *s == '\0';
}

static void bin_int(rs_pgarr_t *a, int64_t v)
{
        unsigned char p[8];
        if (a->elem == RS_PG_INT4OID) {
                put_be32(p, (uint32_t)(int32_t)v);
                bin_elem(a, p, 4);
                return;
        }
        put_be32(p, (uint32_t)((uint64_t)v >> 32));
        put_be32(p + 4, (uint32_t)v);
        bin_elem(a, p, 8);
}

void rs_pgarr_text(rs_pgarr_t *a, const char *s)
{
        if (a->elem) {
                unsigned char u[16];
                if (!s)
                        bin_elem(a, NULL, -1);
                else if (a->elem == RS_PG_UUIDOID && uuid_bytes(s, u))
                        bin_elem(a, u, 16);
                else if (a->elem == RS_PG_TEXTOID || a->elem == RS_PG_BYTEAOID)
                        bin_elem(a, s, (int32_t)strlen(s));
                else /* a caller's bug: uuid columns take ids this program made
                      * or read from uuid columns, ints go in by rs_pgarr_int,
                      * and no other type takes text */
                        abort();
                return;
        }
        sep(a);
        if (!s) {
                rs_buf_puts(&a->buf, "NULL");
                return;
        }
        rs_buf_putc(&a->buf, '"');
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        rs_buf_putc(&a->buf, '\\');
                rs_buf_putc(&a->buf, *s);
        }
        rs_buf_putc(&a->buf, '"');
}

void rs_pgarr_int(rs_pgarr_t *a, int64_t v)
{
        if (a->elem) {
                bin_int(a, v);
                return;
        }
        sep(a);
        rs_buf_printf(&a->buf, "%lld", (long long)v);
}

void rs_pgarr_int_or_null(rs_pgarr_t *a, int64_t v, int64_t null_value)
{
        if (v != null_value)
                rs_pgarr_int(a, v);
        else if (a->elem)
                bin_elem(a, NULL, -1);
        else {
                sep(a);
                rs_buf_puts(&a->buf, "NULL");
        }
}

void rs_pgarr_bool(rs_pgarr_t *a, bool v)
{
        if (a->elem) {
                unsigned char b = v;
                bin_elem(a, &b, 1);
                return;
        }
        sep(a);
        rs_buf_putc(&a->buf, v ? 't' : 'f');
}

void rs_pgarr_bytea(rs_pgarr_t *a, const void *data, size_t len)
{
        static const char hex[] = "0123456789abcdef";
        if (a->elem) {
                bin_elem(a, data, data ? (int32_t)len : -1);
                return;
        }
        sep(a);
        if (!data) {
                rs_buf_puts(&a->buf, "NULL");
                return;
        }
        /* bytea hex format; the backslash is escaped for the array syntax. */
        rs_buf_reserve(&a->buf, len * 2 + 6);
        rs_buf_puts(&a->buf, "\"\\\\x");
        const unsigned char *p = data;
        for (size_t i = 0; i < len; i++) {
                char h[2] = {hex[p[i] >> 4], hex[p[i] & 15]};
                rs_buf_append(&a->buf, h, 2);
        }
        rs_buf_putc(&a->buf, '"');
}

const char *rs_pgarr_get(rs_pgarr_t *a)
{
        if (a->elem) {
                put_be32((unsigned char *)a->buf.data + BIN_COUNT_AT, (uint32_t)a->count);
                return a->buf.data;
        }
        rs_buf_putc(&a->buf, '}');
        a->buf.len--; /* keep it open for more elements */
        return a->buf.data;
}

int rs_pgarr_len(const rs_pgarr_t *a)
{
        return (int)a->buf.len;
}

rs_pgparams_t rs_pgarr_param(rs_pgarr_t *a, const char **value, int *len)
{
        static const int binary[] = {1};
        *value = rs_pgarr_get(a);
        *len = rs_pgarr_len(a);
        return (rs_pgparams_t){1, value, len, binary};
}
