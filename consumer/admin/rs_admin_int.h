#ifndef RS_ADMIN_INT_H
#define RS_ADMIN_INT_H
/* Internals shared by the rs_admin*.c files: warnings, cache invalidation,
 * error wording, statement parameters and SQL fragments. The fragments are
 * string literals pasted at compile time, so every statement stays static
 * text with $n parameters. */
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
 * tells "not found", "already there" (noop) and "not allowed" apart. */
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

/* The SQL fragments below are kept as written: clang-format would break
 * the string literals apart at the macro arguments. */
/* clang-format off */

/* timestamptz -> "2026-01-02T03:04:05.678Z" (NULL stays NULL): the same
 * format as rs_format_rfc3339, independent of the session time zone. */
#define RS_ADMIN_TS(x) \
        "to_char((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/* The status an active/expired/exhausted code has under its limits. Expiry
 * first, in the order the processor checks them (common/rules/rs_rules.c). */
#define RS_ADMIN_LIMIT_STATUS(uses, max, exp) \
        "(CASE WHEN (" exp ") IS NOT NULL AND (" exp ") <= now() THEN 'expired'" \
        " WHEN (" max ") IS NOT NULL AND (" uses ") >= (" max ") THEN 'exhausted'" \
        " ELSE 'active' END)"

/* A program row (alias p) as a JSON object. */
#define RS_ADMIN_PROGRAM_JSON(p) \
        "json_build_object('key', " p ".key, 'name', " p ".name," \
        " 'status', " p ".status, 'currency', " p ".currency," \
        " 'reward_kind', " p ".reward_kind, 'reward_value', " p ".reward_value," \
        " 'reward_cap', " p ".reward_cap, 'referee_reward', " p ".referee_reward," \
        " 'min_payment', " p ".min_payment, 'window_days', " p ".window_days," \
        " 'referral_goal', " p ".referral_goal, 'max_rewarded', " p ".max_rewarded," \
        " 'starts_at', " RS_ADMIN_TS(p ".starts_at") "," \
        " 'ends_at', " RS_ADMIN_TS(p ".ends_at") "," \
        " 'created_at', " RS_ADMIN_TS(p ".created_at") "," \
        " 'updated_at', " RS_ADMIN_TS(p ".updated_at") ")"

/* Counts of referral rows (alias r, may be NULL-extended) by status. */
#define RS_ADMIN_REFERRAL_COUNTS(r) \
        "json_build_object('total', count(" r ".id)," \
        " 'pending', count(*) FILTER (WHERE " r ".status = 'pending')," \
        " 'credited', count(*) FILTER (WHERE " r ".status = 'credited')," \
        " 'reversed', count(*) FILTER (WHERE " r ".status = 'reversed'))"

/* clang-format on */

#endif
