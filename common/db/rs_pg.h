#ifndef RS_PG_H
#define RS_PG_H
/* Postgres access: one connection, parameterised statements only (never SQL
 * built from data), array parameters for set-wise statements, error
 * classification for the retry policy, and the embedded migrations. */
#include "rs_util.h"

#include <libpq-fe.h>
#include <stdbool.h>

typedef struct rs_pg {
        PGconn *conn;
        char *url;
        int64_t statement_timeout_ms;
        char sqlstate[6];    /* of the last failed statement, "" if none */
        char constraint[64]; /* the constraint it violated, "" if none */
        bool broken;         /* connection lost: reconnect before next use */
        bool pipeline;       /* statements are queued (rs_pg_pipeline_begin) */
        int queued;          /* statements queued in the pipeline */
} rs_pg_t;

rs_pg_t *rs_pg_new(const char *url, int64_t statement_timeout_ms);
void rs_pg_destroy(rs_pg_t *pg);
/* Connects if not connected (or the connection broke). Sets application_name,
 * TimeZone=UTC, statement_timeout and lock_timeout for the session. */
bool rs_pg_connect(rs_pg_t *pg, char *errstr, size_t errstr_size) RS_WARN_UNUSED;
void rs_pg_disconnect(rs_pg_t *pg);

/* Runs a statement with text parameters (NULL entries are SQL NULL). Returns
 * the result (TUPLES_OK or COMMAND_OK; caller PQclear()s) or NULL + errstr.
 * On failure pg->sqlstate is set and a lost connection marks pg->broken. */
PGresult *rs_pg_exec(rs_pg_t *pg, const char *sql, int nparams, const char *const *params,
                     char *errstr, size_t errstr_size) RS_WARN_UNUSED;
/* Parameters some of which are binary: lengths[i] and formats[i] (1: binary)
 * as PQexecParams takes them. */
typedef struct rs_pgparams {
        int n;
        const char *const *values;
        const int *lengths;
        const int *formats;
} rs_pgparams_t;
PGresult *rs_pg_exec_params(rs_pg_t *pg, const char *sql, const rs_pgparams_t *p,
                            char *errstr, size_t errstr_size) RS_WARN_UNUSED;
/* Same, for statements whose rows are not needed. */
/* Pipeline mode (libpq's): statements are sent without waiting for each
 * result, and the results are read at the end, one round trip for all
 * (docs/design.md §1). Between begin and end only rs_pg_send may be used;
 * rs_pgrows_exec queues by itself. The first failed statement makes the
 * rest fail (their transaction is aborted): rs_pg_pipeline_end reports it,
 * as rs_pg_exec would (errstr, sqlstate), and leaves pipeline mode. */
bool rs_pg_pipeline_begin(rs_pg_t *pg, char *errstr, size_t errstr_size) RS_WARN_UNUSED;
/* Queues a statement; its number in the pipeline (from 0), or -1. */
int rs_pg_send(rs_pg_t *pg, const char *sql, int nparams, const char *const *params,
               char *errstr, size_t errstr_size);
int rs_pg_send_params(rs_pg_t *pg, const char *sql, const rs_pgparams_t *p, char *errstr,
                      size_t errstr_size);
/* Waits for every queued statement. *kept (if kept) gets the result of
 * statement number `keep` when everything succeeded (the caller clears it). */
bool rs_pg_pipeline_end(rs_pg_t *pg, int keep, PGresult **kept, char *errstr,
                        size_t errstr_size) RS_WARN_UNUSED;

/* The same, keeping every result: all[i] (room for every queued statement)
 * gets statement i's when everything succeeded (the caller clears them),
 * else every all[i] is NULL. */
bool rs_pg_pipeline_end_all(rs_pg_t *pg, PGresult **all, char *errstr,
                            size_t errstr_size) RS_WARN_UNUSED;

bool rs_pg_cmd(rs_pg_t *pg, const char *sql, int nparams, const char *const *params,
               char *errstr, size_t errstr_size) RS_WARN_UNUSED;
/* Runs a script of several statements (the simple query protocol: no
 * parameters; only for SQL this binary carries, the migrations). */
bool rs_pg_script(rs_pg_t *pg, const char *sql, char *errstr,
                  size_t errstr_size) RS_WARN_UNUSED;
/* Best-effort ROLLBACK after a failed statement inside a transaction. */
void rs_pg_rollback(rs_pg_t *pg);

/* True when the last failure is the database's or its environment's (lost
 * connection, timeouts, deadlocks, shutdown, resources, privileges, a
 * read-only replica): retrying the same work can succeed. False for errors
 * the records cause (bad data, constraints), which retrying cannot cure. */
bool rs_pg_error_transient(const rs_pg_t *pg);
/* What the last failure was, by SQLSTATE (the classes used elsewhere live
 * here, not as literals scattered over the callers): */
bool rs_pg_error_timeout(const rs_pg_t *pg);  /* statement or lock timeout */
bool rs_pg_error_conflict(const rs_pg_t *pg); /* deadlock or serialization failure */
bool rs_pg_error_check(const rs_pg_t *pg);    /* a CHECK constraint refused a row */
bool rs_pg_error_no_table(const rs_pg_t *pg); /* a table is missing: no migrations */
/* A unique violation of the named constraint (index). */
bool rs_pg_error_unique(const rs_pg_t *pg, const char *constraint);
/* dst reports the last error of src (another connection doing part of its
 * work), so that the checks above answer for it; a lost connection is
 * reported as class 08. */
void rs_pg_take_error(rs_pg_t *dst, const rs_pg_t *src);

/* Retention: runs sql, a DELETE of up to $2 rows older than $1 hours
 * (skipping rows another session has locked), repeating while a statement
 * fills its limit, `rounds` statements at most. Returns the number deleted,
 * -1 + errstr on error. */
int64_t rs_pg_delete_older(rs_pg_t *pg, const char *sql, int64_t hours, int limit,
                           int rounds, char *errstr, size_t errstr_size) RS_WARN_UNUSED;

/* Column value helpers (row r, column c). */
const char *rs_pg_str(const PGresult *res, int r, int c); /* NULL if SQL NULL */
int64_t rs_pg_int(const PGresult *res, int r, int c, int64_t if_null);

/* ---- user locks ----
 * Everything that changes a user's referrals (the batch, the release of held
 * credits, the operators' cancel) holds the user's transaction-scoped
 * advisory lock, pg_advisory_xact_lock(RS_PG_USER_LOCK_CLASS, key): class
 * "rs" and 1, out of the way of other applications' locks; key a 32-bit hash
 * of the user id. */
#define RS_PG_USER_LOCK_CLASS 0x72730001
int32_t rs_pg_user_lock_key(const char *user_id);

/* ---- arrays for "= ANY($1)" and "unnest($1::text[], ...)" ----
 * A text literal by default. rs_pgarr_init_binary makes the array's binary
 * form instead (array_recv's: a header, then each element as its length and
 * its bytes), sent as a binary parameter of type elem[]: the server copies
 * elements instead of parsing a literal and each element's text
 * (docs/design.md §1). The same calls add elements to either form; a binary
 * array's element type decides how an int or a text is encoded (a uuid's
 * text becomes its 16 bytes; an int array takes ints only). */
typedef struct rs_pgarr {
        rs_buf_t buf;
        size_t count;
        Oid elem; /* binary: the element type; 0: a text literal */
} rs_pgarr_t;

/* The element types a binary array may have. */
#define RS_PG_BOOLOID  16
#define RS_PG_BYTEAOID 17
#define RS_PG_INT8OID  20
#define RS_PG_INT4OID  23
#define RS_PG_TEXTOID  25
#define RS_PG_UUIDOID  2950
/* The element type of a type name as statements spell it ("text", "uuid",
 * "bigint", "int", "bool", "bytea"), 0 for any other. */
Oid rs_pg_type_oid(const char *name);

void rs_pgarr_init(rs_pgarr_t *a);
void rs_pgarr_init_binary(rs_pgarr_t *a, Oid elem);
void rs_pgarr_reset(rs_pgarr_t *a);
void rs_pgarr_free(rs_pgarr_t *a);
void rs_pgarr_text(rs_pgarr_t *a, const char *s); /* NULL -> SQL NULL */
void rs_pgarr_int(rs_pgarr_t *a, int64_t v);
void rs_pgarr_int_or_null(rs_pgarr_t *a, int64_t v, int64_t null_value);
void rs_pgarr_bool(rs_pgarr_t *a, bool v);
void rs_pgarr_bytea(rs_pgarr_t *a, const void *data, size_t len); /* data NULL -> NULL */
/* The literal, e.g. {"a","b",NULL}, or the binary array; valid until the
 * next change. */
const char *rs_pgarr_get(rs_pgarr_t *a);
/* Its length in bytes (binary arrays; a literal ends with a NUL). */
int rs_pgarr_len(const rs_pgarr_t *a);
/* A binary array as a statement's only parameter, $1; *value and *len are
 * the caller's storage for it, and must outlive the result. */
rs_pgparams_t rs_pgarr_param(rs_pgarr_t *a, const char **value, int *len);

/* ---- migrations (sql/NNN_name.sql, compiled in; rs_migrate.c) ---- */
/* Applies every migration not yet recorded, in order, each in its own
 * transaction, under an advisory lock so concurrent runs are safe. Prints one
 * line per applied migration to `out` (may be NULL). Refuses (errstr names
 * the file) when an applied migration differs from the one this binary
 * carries: an edited migration would never be applied to that database. */
bool rs_pg_migrate(rs_pg_t *pg, FILE *out, char *errstr,
                   size_t errstr_size) RS_WARN_UNUSED;
/* The same, up to version `target` only (0: all): a database as an older
 * release left it, for the upgrade tests. */
bool rs_pg_migrate_to(rs_pg_t *pg, int target, FILE *out, char *errstr,
                      size_t errstr_size) RS_WARN_UNUSED;
/* The newest migration this binary carries. */
int rs_pg_schema_expected(void);

typedef enum {
        RS_SCHEMA_OK,       /* every migration of this binary applied, unchanged */
        RS_SCHEMA_BEHIND,   /* some not applied yet (`refstream migrate`) */
        RS_SCHEMA_MODIFIED, /* an applied migration was edited since: errstr */
        RS_SCHEMA_ERROR,    /* the query failed: errstr, pg->sqlstate */
} rs_schema_state_t;
/* Compares the database's applied migrations with this binary's; *version
 * is the newest applied (0 if none). Migrations newer than this binary (a
 * later release's, during a rolling upgrade) are fine. */
rs_schema_state_t rs_pg_schema_check(rs_pg_t *pg, int *version, char *errstr,
                                     size_t errstr_size);

#endif
