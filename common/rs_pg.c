#include "rs_pg.h"
#include "rs_embed.h"
#include "rs_log.h"

#include <stdlib.h>
#include <string.h>

/* Advisory lock key serialising `refstream migrate` runs ("rsmigr" in ASCII). */
#define MIGRATE_LOCK_KEY "126896813729650"

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
        if (!rs_pg_cmd(pg,
                       "SELECT set_config('TimeZone', 'UTC', false), "
                       "set_config('statement_timeout', $1, false), "
                       "set_config('lock_timeout', $1, false), "
                       "set_config('client_min_messages', 'warning', false)",
                       1, params, errstr, errstr_size)) {
                rs_pg_disconnect(pg);
                return false;
        }
        return true;
}

PGresult *rs_pg_exec(rs_pg_t *pg, const char *sql, int nparams, const char *const *params,
                     char *errstr, size_t errstr_size)
{
        pg->sqlstate[0] = '\0';
        if (!pg->conn) {
                snprintf(errstr, errstr_size, "not connected to Postgres");
                rs_strlcpy(pg->sqlstate, "08003", sizeof(pg->sqlstate));
                pg->broken = true;
                return NULL;
        }
        PGresult *res = PQexecParams(pg->conn, sql, nparams, NULL, params, NULL, NULL, 0);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
                return res;
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        rs_strlcpy(pg->sqlstate, state ? state : "08006", sizeof(pg->sqlstate));
        snprintf(errstr, errstr_size, "%s",
                 res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res)
                                                   : PQerrorMessage(pg->conn));
        trim_newline(errstr);
        if (PQstatus(pg->conn) != CONNECTION_OK)
                pg->broken = true;
        PQclear(res);
        return NULL;
}

bool rs_pg_cmd(rs_pg_t *pg, const char *sql, int nparams, const char *const *params,
               char *errstr, size_t errstr_size)
{
        PGresult *res = rs_pg_exec(pg, sql, nparams, params, errstr, errstr_size);
        PQclear(res);
        return res != NULL;
}

int64_t rs_pg_delete_older(rs_pg_t *pg, const char *table, const char *key,
                           const char *at, int64_t hours, int limit, int rounds,
                           char *errstr, size_t errstr_size)
{
        char sql[512], hours_text[24], limit_text[24];
        snprintf(sql, sizeof(sql),
                 "DELETE FROM %s WHERE (%s) IN (SELECT %s FROM %s WHERE %s < now() -"
                 " $1::bigint * interval '1 hour' LIMIT $2::int FOR UPDATE SKIP LOCKED)",
                 table, key, key, table, at);
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
        PGresult *res = PQexec(pg->conn, "ROLLBACK");
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

/* ---------------------------------------------------------------- arrays */

void rs_pgarr_init(rs_pgarr_t *a)
{
        rs_buf_init(&a->buf);
        rs_pgarr_reset(a);
}

void rs_pgarr_reset(rs_pgarr_t *a)
{
        rs_buf_reset(&a->buf);
        rs_buf_putc(&a->buf, '{');
        a->count = 0;
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

void rs_pgarr_text(rs_pgarr_t *a, const char *s)
{
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
        sep(a);
        rs_buf_printf(&a->buf, "%lld", (long long)v);
}

void rs_pgarr_int_or_null(rs_pgarr_t *a, int64_t v, int64_t null_value)
{
        if (v == null_value) {
                sep(a);
                rs_buf_puts(&a->buf, "NULL");
        } else {
                rs_pgarr_int(a, v);
        }
}

void rs_pgarr_bool(rs_pgarr_t *a, bool v)
{
        sep(a);
        rs_buf_putc(&a->buf, v ? 't' : 'f');
}

void rs_pgarr_bytea(rs_pgarr_t *a, const void *data, size_t len)
{
        static const char hex[] = "0123456789abcdef";
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
        rs_buf_putc(&a->buf, '}');
        a->buf.len--; /* keep it open for more elements */
        return a->buf.data;
}

/* ---------------------------------------------------------------- migrations */

static int migration_version(const char *name)
{
        /* "sql/001_init.sql" -> 1; 0 if not a migration file name. */
        if (strncmp(name, "sql/", 4) != 0)
                return 0;
        int v = 0;
        const char *p = name + 4;
        for (; *p >= '0' && *p <= '9'; p++)
                v = v * 10 + (*p - '0');
        return (*p == '_' && p > name + 4) ? v : 0;
}

int rs_pg_schema_expected(void)
{
        int max = 0;
        for (size_t i = 0; i < rs_embedded_files_count; i++)
                max = RS_MAX(max, migration_version(rs_embedded_files[i].name));
        return max;
}

static void checksum_of(const rs_embedded_file_t *f, char *out, size_t size)
{
        snprintf(out, size, "%016llx", (unsigned long long)rs_hash_str(f->data));
}

static int cmp_names(const void *a, const void *b)
{
        return strcmp((*(const rs_embedded_file_t *const *)a)->name,
                      (*(const rs_embedded_file_t *const *)b)->name);
}

/* The migrations this binary carries, in order. */
static size_t embedded_migrations(const rs_embedded_file_t **files, size_t max)
{
        size_t n = 0;
        for (size_t i = 0; i < rs_embedded_files_count && n < max; i++) {
                if (migration_version(rs_embedded_files[i].name) > 0)
                        files[n++] = &rs_embedded_files[i];
        }
        qsort(files, n, sizeof(files[0]), cmp_names);
        return n;
}

/* The applied row of version v in res (columns version, checksum), or -1. */
static int applied_row(const PGresult *res, int v)
{
        for (int r = 0; res && r < PQntuples(res); r++)
                if (rs_pg_int(res, r, 0, 0) == v)
                        return r;
        return -1;
}

/* res: the applied migrations (version, checksum), NULL when none. */
static rs_schema_state_t compare_applied(const PGresult *res, int *newest, char *errstr,
                                         size_t errstr_size)
{
        const rs_embedded_file_t *files[256];
        size_t n = embedded_migrations(files, RS_ARRAY_SIZE(files));
        *newest = 0;
        for (int r = 0; res && r < PQntuples(res); r++)
                *newest = RS_MAX(*newest, (int)rs_pg_int(res, r, 0, 0));
        bool behind = false;
        for (size_t i = 0; i < n; i++) {
                int r = applied_row(res, migration_version(files[i]->name));
                if (r < 0) {
                        behind = true;
                        continue;
                }
                char sum[32];
                checksum_of(files[i], sum, sizeof(sum));
                if (strcmp(sum, PQgetvalue(res, r, 1)) != 0) {
                        snprintf(errstr, errstr_size,
                                 "migration %s was changed after it was applied to this "
                                 "database (checksum %s there, %s in this binary): "
                                 "restore it and put the change in a new migration",
                                 files[i]->name, PQgetvalue(res, r, 1), sum);
                        return RS_SCHEMA_MODIFIED;
                }
        }
        return behind ? RS_SCHEMA_BEHIND : RS_SCHEMA_OK;
}

static bool apply_one(rs_pg_t *pg, const rs_embedded_file_t *f, int version, FILE *out,
                      char *errstr, size_t errstr_size)
{
        char vbuf[16], sum[32];
        snprintf(vbuf, sizeof(vbuf), "%d", version);
        checksum_of(f, sum, sizeof(sum));
        const char *params[] = {vbuf, f->name + 4, sum};
        char err[1024];
        if (!rs_pg_cmd(pg, "BEGIN", 0, NULL, errstr, errstr_size))
                return false;
        /* The migration file may hold several statements: simple protocol. */
        PGresult *res = PQexec(pg->conn, f->data);
        if (PQresultStatus(res) != PGRES_COMMAND_OK &&
            PQresultStatus(res) != PGRES_TUPLES_OK) {
                snprintf(err, sizeof(err), "%s", PQresultErrorMessage(res));
                trim_newline(err);
                PQclear(res);
                rs_pg_rollback(pg);
                snprintf(errstr, errstr_size, "migration %s failed: %s", f->name, err);
                return false;
        }
        PQclear(res);
        if (!rs_pg_cmd(pg,
                       "INSERT INTO rs_schema_migrations (version, name, checksum) "
                       "VALUES ($1::int, $2, $3)",
                       3, params, errstr, errstr_size) ||
            !rs_pg_cmd(pg, "COMMIT", 0, NULL, errstr, errstr_size)) {
                rs_pg_rollback(pg);
                return false;
        }
        if (out)
                fprintf(out, "applied %s\n", f->name);
        return true;
}

#define APPLIED_SQL "SELECT version, checksum FROM rs_schema_migrations"

static bool migrate_locked(rs_pg_t *pg, FILE *out, char *errstr, size_t errstr_size)
{
        PGresult *res = rs_pg_exec(pg, APPLIED_SQL, 0, NULL, errstr, errstr_size);
        if (!res)
                return false;
        int newest;
        rs_schema_state_t st = compare_applied(res, &newest, errstr, errstr_size);
        const rs_embedded_file_t *files[256];
        size_t n = embedded_migrations(files, RS_ARRAY_SIZE(files));
        bool ok = st != RS_SCHEMA_MODIFIED;
        size_t applied = 0;
        for (size_t i = 0; i < n && ok; i++) {
                int v = migration_version(files[i]->name);
                if (applied_row(res, v) < 0) {
                        ok = apply_one(pg, files[i], v, out, errstr, errstr_size);
                        applied++;
                }
        }
        PQclear(res);
        if (ok && out && applied == 0)
                fprintf(out, "database schema is up to date (version %d)\n",
                        rs_pg_schema_expected());
        return ok;
}

bool rs_pg_migrate(rs_pg_t *pg, FILE *out, char *errstr, size_t errstr_size)
{
        const char *lock_params[] = {MIGRATE_LOCK_KEY};
        if (!rs_pg_cmd(
                pg,
                "CREATE TABLE IF NOT EXISTS rs_schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
                0, NULL, errstr, errstr_size) ||
            !rs_pg_cmd(pg, "SELECT pg_advisory_lock($1::bigint)", 1, lock_params, errstr,
                       errstr_size))
                return false;
        bool ok = migrate_locked(pg, out, errstr, errstr_size);
        char ignore[256];
        if (!rs_pg_cmd(pg, "SELECT pg_advisory_unlock($1::bigint)", 1, lock_params,
                       ignore, sizeof(ignore)))
                rs_warn("pg", "cannot release the migration lock: %s", ignore);
        return ok;
}

rs_schema_state_t rs_pg_schema_check(rs_pg_t *pg, int *version, char *errstr,
                                     size_t errstr_size)
{
        /* Two steps: a missing table cannot appear in a query, even in a CASE. */
        *version = 0;
        PGresult *res =
            rs_pg_exec(pg, "SELECT to_regclass('rs_schema_migrations') IS NOT NULL", 0,
                       NULL, errstr, errstr_size);
        if (!res)
                return RS_SCHEMA_ERROR;
        bool exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        if (exists && !(res = rs_pg_exec(pg, APPLIED_SQL, 0, NULL, errstr, errstr_size)))
                return RS_SCHEMA_ERROR;
        rs_schema_state_t st =
            compare_applied(exists ? res : NULL, version, errstr, errstr_size);
        if (exists)
                PQclear(res);
        return st;
}
