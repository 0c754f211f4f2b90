#ifndef RS_ADMIN_INT_H
#define RS_ADMIN_INT_H
/* Internals shared by the rs_admin*.c files: warnings, cache invalidation,
 * error wording and statement parameters. The statements themselves are in
 * rs_admin_sql.h. */
#include "rs_admin.h"

/* Sends a warning to a->warn (or the log). */
void rs_admin_warnf(rs_admin_t *a, const char *fmt, ...) RS_PRINTF(2, 3);
/* Deletes the cache entries of codes; warns (does not fail) if Redis is down. */
void rs_admin_invalidate(rs_admin_t *a, const char *const *codes, size_t n);
/* Runs sql whose single row and column is JSON text; NULL + errstr on error or
 * when the value is SQL NULL (not_found is then the message). */
json_t *rs_admin_query_json(rs_admin_t *a, const char *sql, int nparams,
                            const char *const *params, const char *not_found,
                            char *errstr, size_t errstr_size) RS_WARN_UNUSED;
/* Rewrites a database error into an operator's message (adds the migrate
 * hint when the schema is missing). */
void rs_admin_db_error(const rs_pg_t *pg, const char *what, const char *err, char *errstr,
                       size_t errstr_size);

#define RS_ADMIN_MAX_PARAMS 32

/* Text parameters for rs_pg_exec, numbers formatted into owned buffers. */
typedef struct rs_admin_params {
        const char *v[RS_ADMIN_MAX_PARAMS];
        char num[RS_ADMIN_MAX_PARAMS][24];
        int n;
} rs_admin_params_t;

void rs_admin_param_text(rs_admin_params_t *ps, const char *s); /* NULL: SQL NULL */
void rs_admin_param_int(rs_admin_params_t *ps, int64_t v);
/* The value when SET, SQL NULL otherwise. */
void rs_admin_param_opt(rs_admin_params_t *ps, const rs_admin_i64_t *o);
/* "is set" flag of an update: true when SET or CLEAR. */
void rs_admin_param_flag(rs_admin_params_t *ps, bool set);

/* Looks a program up by key: id (as text, for parameters) and status. */
bool rs_admin_find_program(rs_admin_t *a, const char *key, char id[24], char status[16],
                           char *errstr, size_t errstr_size) RS_WARN_UNUSED;

/* A status change done as one conditional UPDATE (sql: $1 = key/code,
 * RETURNING status); when no row changed, lookup_sql ($1, returning status)
 * tells "not found", "already there" (noop) and "not allowed" apart. Both
 * return the status as column TRANSITION_STATUS (rs_admin_sql.h). */
typedef struct rs_admin_transition {
        const char *what; /* "program", "code" */
        const char *verb; /* "pause" */
        const char *sql;
        const char *lookup_sql;
        const char *noop;  /* status in which the action is a no-op */
        const char *final; /* status nothing leaves ("ended", "revoked") */
        const char *hint;  /* appended to other "not allowed" errors, or NULL */
} rs_admin_transition_t;

bool rs_admin_transition(rs_admin_t *a, const rs_admin_transition_t *t, const char *id,
                         bool *changed, char *status_out, size_t status_size,
                         char *errstr, size_t errstr_size) RS_WARN_UNUSED;
/* Why a transition changed nothing: absent (error), already in t->noop (true,
 * *changed false), or not allowed from the current status (error). */
bool rs_admin_transition_unchanged(rs_admin_t *a, const rs_admin_transition_t *t,
                                   const char *id, bool *changed, char *status_out,
                                   size_t status_size, char *errstr,
                                   size_t errstr_size) RS_WARN_UNUSED;

#endif
