/* The statements of common/db (see rs_db_sql.h). */
#include "rs_db_sql.h"

/* jit off: Postgres compiles a statement whose estimated cost passes
 * jit_above_cost, 4-5 ms of compiling for loads that run in 1 ms; the
 * estimates of the batch's loads pass it as the tables grow and their
 * statistics lag (docs/design.md §1). */
const char SQL_DB_SESSION[] =
    "SELECT set_config('TimeZone', 'UTC', false),\n"
    "       set_config('jit', 'off', false),\n"
    "       set_config('statement_timeout', $1, false),\n"
    "       set_config('lock_timeout', $1, false),\n"
    "       set_config('client_min_messages', 'warning', false)";
const char SQL_DB_BEGIN[] = "BEGIN";
const char SQL_DB_COMMIT[] = "COMMIT";
const char SQL_DB_ROLLBACK[] = "ROLLBACK";

const char SQL_MIGRATIONS_CREATE[] = "CREATE TABLE IF NOT EXISTS rs_schema_migrations (\n"
                                     "    version    integer PRIMARY KEY,\n"
                                     "    name       text NOT NULL,\n"
                                     "    checksum   text NOT NULL,\n"
                                     "    applied_at timestamptz NOT NULL DEFAULT now())";

/* Apart from the next query: a missing table cannot appear in a query, even
 * in a CASE. */
const char SQL_MIGRATIONS_EXIST[] =
    "SELECT to_regclass('rs_schema_migrations') IS NOT NULL";

const char SQL_MIGRATIONS_APPLIED[] =
    "SELECT version, checksum FROM rs_schema_migrations";

const char SQL_MIGRATION_RECORD[] =
    "INSERT INTO rs_schema_migrations (version, name, checksum)\n"
    "VALUES ($1::int, $2, $3)";

const char SQL_MIGRATE_LOCK[] = "SELECT pg_advisory_lock($1::bigint)";
const char SQL_MIGRATE_UNLOCK[] = "SELECT pg_advisory_unlock($1::bigint)";
