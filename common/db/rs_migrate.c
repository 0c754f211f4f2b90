/* The migrations of sql/, compiled in (see rs_pg.h): applied in order, each
 * once and in its own transaction, under an advisory lock; checked against
 * what the database recorded, checksums included. */
#include "rs_db_sql.h"
#include "rs_embed.h"
#include "rs_log.h"
#include "rs_pg.h"

#include <stdlib.h>
#include <string.h>

/* sql/NNN_name.sql (generated, see CMakeLists.txt) */
extern const rs_embedded_file_t rs_migration_files[];
extern const size_t rs_migration_files_count;

/* Advisory lock key serialising `refstream migrate` runs ("rsmigr" in ASCII). */
#define MIGRATE_LOCK_KEY "126896813729650"

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
        for (size_t i = 0; i < rs_migration_files_count; i++)
                max = RS_MAX(max, migration_version(rs_migration_files[i].name));
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
        for (size_t i = 0; i < rs_migration_files_count && n < max; i++) {
                if (migration_version(rs_migration_files[i].name) > 0)
                        files[n++] = &rs_migration_files[i];
        }
        qsort(files, n, sizeof(files[0]), cmp_names);
        return n;
}

/* The applied row of version v in res (columns version, checksum), or -1. */
static int applied_row(const PGresult *res, int v)
{
        for (int r = 0; res && r < PQntuples(res); r++)
                if (rs_pg_int(res, r, APPLIED_VERSION, 0) == v)
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
                *newest = RS_MAX(*newest, (int)rs_pg_int(res, r, APPLIED_VERSION, 0));
        bool behind = false;
        for (size_t i = 0; i < n; i++) {
                int r = applied_row(res, migration_version(files[i]->name));
                if (r < 0) {
                        behind = true;
                        continue;
                }
                char sum[32];
                checksum_of(files[i], sum, sizeof(sum));
                if (strcmp(sum, PQgetvalue(res, r, APPLIED_CHECKSUM)) != 0) {
                        snprintf(errstr, errstr_size,
                                 "migration %s was changed after it was applied to this "
                                 "database (checksum %s there, %s in this binary): "
                                 "restore it and put the change in a new migration",
                                 files[i]->name, PQgetvalue(res, r, APPLIED_CHECKSUM),
                                 sum);
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
        if (!rs_pg_cmd(pg, SQL_DB_BEGIN, 0, NULL, errstr, errstr_size))
                return false;
        if (!rs_pg_script(pg, f->data, err, sizeof(err))) {
                rs_pg_rollback(pg);
                snprintf(errstr, errstr_size, "migration %s failed: %s", f->name, err);
                return false;
        }
        if (!rs_pg_cmd(pg, SQL_MIGRATION_RECORD, 3, params, errstr, errstr_size) ||
            !rs_pg_cmd(pg, SQL_DB_COMMIT, 0, NULL, errstr, errstr_size)) {
                rs_pg_rollback(pg);
                return false;
        }
        if (out)
                fprintf(out, "applied %s\n", f->name);
        return true;
}

static bool migrate_locked(rs_pg_t *pg, int target, FILE *out, char *errstr,
                           size_t errstr_size)
{
        PGresult *res =
            rs_pg_exec(pg, SQL_MIGRATIONS_APPLIED, 0, NULL, errstr, errstr_size);
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
                if (target > 0 && v > target)
                        break;
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
        return rs_pg_migrate_to(pg, 0, out, errstr, errstr_size);
}

bool rs_pg_migrate_to(rs_pg_t *pg, int target, FILE *out, char *errstr,
                      size_t errstr_size)
{
        const char *lock_params[] = {MIGRATE_LOCK_KEY};
        /* The lock first: two sessions creating the table at once can fail. */
        if (!rs_pg_cmd(pg, SQL_MIGRATE_LOCK, 1, lock_params, errstr, errstr_size))
                return false;
        bool ok = rs_pg_cmd(pg, SQL_MIGRATIONS_CREATE, 0, NULL, errstr, errstr_size) &&
                  migrate_locked(pg, target, out, errstr, errstr_size);
        char ignore[256];
        if (!rs_pg_cmd(pg, SQL_MIGRATE_UNLOCK, 1, lock_params, ignore, sizeof(ignore)))
                rs_warn("pg", "cannot release the migration lock: %s", ignore);
        return ok;
}

rs_schema_state_t rs_pg_schema_check(rs_pg_t *pg, int *version, char *errstr,
                                     size_t errstr_size)
{
        *version = 0;
        PGresult *res =
            rs_pg_exec(pg, SQL_MIGRATIONS_EXIST, 0, NULL, errstr, errstr_size);
        if (!res)
                return RS_SCHEMA_ERROR;
        bool exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
        if (exists &&
            !(res = rs_pg_exec(pg, SQL_MIGRATIONS_APPLIED, 0, NULL, errstr, errstr_size)))
                return RS_SCHEMA_ERROR;
        rs_schema_state_t st =
            compare_applied(exists ? res : NULL, version, errstr, errstr_size);
        if (exists)
                PQclear(res);
        return st;
}
