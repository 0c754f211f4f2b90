#ifndef RS_ADMIN_SQL_H
#define RS_ADMIN_SQL_H
/* Every statement of the admin component (definitions in rs_admin_sql.c).
 * All are static text; values are passed as $n parameters (text; numbers in
 * decimal, booleans "t"/"f", times in epoch milliseconds, NULL as SQL NULL).
 * Where the caller reads result columns by position, the enum beside the
 * statement names them. */

/* ---- shared ---- */

/* The report and show statements return one row whose only column is the
 * JSON document (SQL NULL when the subject is absent). */
enum { ADMIN_JSON_DOC };

/* The status changes (UPDATE ... RETURNING status, no row when nothing
 * changed) and their lookups (SELECT status) return the status alone. */
enum { TRANSITION_STATUS };

/* ---- programs ---- */

/* A program's id and status. $1 key. */
extern const char SQL_ADMIN_PROGRAM_LOOKUP[];
enum { PROG_LOOKUP_ID, PROG_LOOKUP_STATUS };

/* A program's status (TRANSITION_STATUS). $1 key. */
extern const char SQL_ADMIN_PROGRAM_STATUS[];

/* Creates a program; no row if the key exists. Unset values take the
 * schema's defaults. $1 key, $2 name, $3 currency, $4 reward kind, $5 reward
 * value, $6 reward cap, $7 referee reward, $8 min payment (NULL: 0), $9
 * window days (NULL: 30), $10 referral goal (NULL: 10), $11 max rewarded,
 * $12 starts at (ms), $13 ends at (ms). Returns id. */
extern const char SQL_ADMIN_PROGRAM_INSERT[];

/* Updates the given fields of a program: each "is set" flag (bool) is
 * followed by its value. $1 key, $2/$3 name, $4/$5 currency, $6 reward flag
 * with $7 kind and $8 value, $9/$10 reward cap, $11/$12 referee reward,
 * $13/$14 min payment, $15/$16 window days, $17/$18 referral goal, $19/$20
 * max rewarded, $21/$22 starts at (ms), $23/$24 ends at (ms). Returns id (no
 * row: no such program). */
extern const char SQL_ADMIN_PROGRAM_UPDATE[];

/* Status changes (TRANSITION_STATUS). $1 key. */
extern const char SQL_ADMIN_PROGRAM_PAUSE[];  /* active -> paused */
extern const char SQL_ADMIN_PROGRAM_RESUME[]; /* paused -> active */
extern const char SQL_ADMIN_PROGRAM_END[];    /* any but ended -> ended */

/* One program as JSON (ADMIN_JSON_DOC; no row if absent). $1 key. */
extern const char SQL_ADMIN_PROGRAM_SHOW[];
/* Every program as a JSON array, by key (ADMIN_JSON_DOC). No parameters. */
extern const char SQL_ADMIN_PROGRAM_LIST[];

/* ---- codes ---- */

/* Issues a code, its status derived from the limits; no row if the code
 * exists. $1 code, $2 program id, $3 owner user id, $4 vanity (bool), $5
 * max uses (NULL: unlimited), $6 expires at (ms, NULL: never). Returns the
 * status. */
extern const char SQL_ADMIN_CODE_INSERT[];
enum { CODE_INSERT_STATUS };

/* A code's status (TRANSITION_STATUS). $1 code. */
extern const char SQL_ADMIN_CODE_STATUS[];

/* Status changes (TRANSITION_STATUS). $1 code. */
extern const char SQL_ADMIN_CODE_PAUSE[];  /* active -> paused */
extern const char SQL_ADMIN_CODE_RESUME[]; /* paused -> status of its limits */
extern const char SQL_ADMIN_CODE_REVOKE[]; /* any but revoked -> revoked */

/* Sets the limits of a code that is not revoked and re-derives its status
 * (paused stays paused); a max below the uses made becomes the uses. $1 code,
 * $2 max uses given (bool), $3 max uses (NULL: unlimited), $4 expiry given
 * (bool), $5 expires at (ms, NULL: never). No row: absent or revoked. */
extern const char SQL_ADMIN_CODE_UPDATE[];
enum {
        CODE_UPDATE_OLD_STATUS,
        CODE_UPDATE_STATUS,
        CODE_UPDATE_USES,
        CODE_UPDATE_MAX_USES
};

/* One code with its program and referral counts as JSON (ADMIN_JSON_DOC; no
 * row if absent). $1 code. */
extern const char SQL_ADMIN_CODE_SHOW[];

/* ---- backfill ---- */

extern const char SQL_ADMIN_BEGIN[];
extern const char SQL_ADMIN_COMMIT[];

/* Serialises the backfills of a program until the transaction ends. $1
 * program id. */
extern const char SQL_ADMIN_BACKFILL_LOCK[];

/* Each user's code in a program: not revoked preferred, then the oldest.
 * $1 program id, $2 user ids (text[]). */
extern const char SQL_ADMIN_BACKFILL_EXISTING[];
enum { BACKFILL_EXISTING_USER, BACKFILL_EXISTING_CODE, BACKFILL_EXISTING_REVOKED };

/* Inserts codes[i] for users[i], skipping codes that exist. $1 program id,
 * $2 user ids (text[]), $3 codes (text[]). Returns the users inserted. */
extern const char SQL_ADMIN_BACKFILL_INSERT[];
enum { BACKFILL_INSERT_USER };

/* ---- reports (JSON shapes documented in rs_admin_stats.c) ---- */

/* Program stats (ADMIN_JSON_DOC; no row if absent). $1 program key. */
extern const char SQL_ADMIN_STATS_PROGRAM[];
/* User stats (ADMIN_JSON_DOC). $1 user id. */
extern const char SQL_ADMIN_STATS_USER[];
/* Referral history, newest first (ADMIN_JSON_DOC). $1 user id, $2 limit. */
extern const char SQL_ADMIN_REFERRALS[];

#endif
