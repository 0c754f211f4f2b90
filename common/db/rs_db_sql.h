#ifndef RS_DB_SQL_H
#define RS_DB_SQL_H
/* The db component's own statements (rs_pg.c, rs_migrate.c). */

/* Every session: UTC, $1 ms for statement_timeout and lock_timeout, no
 * NOTICE chatter. */
extern const char SQL_DB_SESSION[];
extern const char SQL_DB_BEGIN[];
extern const char SQL_DB_COMMIT[];
extern const char SQL_DB_ROLLBACK[];

/* Migrations: the record of what was applied, and the advisory lock ($1)
 * that serialises `refstream migrate` runs. */
extern const char SQL_MIGRATIONS_CREATE[];
extern const char SQL_MIGRATIONS_EXIST[];
enum { APPLIED_VERSION, APPLIED_CHECKSUM };
extern const char SQL_MIGRATIONS_APPLIED[];
/* $1 version, $2 file name, $3 checksum */
extern const char SQL_MIGRATION_RECORD[];
extern const char SQL_MIGRATE_LOCK[];
extern const char SQL_MIGRATE_UNLOCK[];

#endif
