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

/* ---- the review of held referrals (rs_admin_hold.c), in one transaction ---- */
/* $1 referral id -> (referee, status). */
extern const char SQL_ADMIN_REFERRAL_FIND[];
/* $1 lock class, $2 the referee's lock key (rs_pg_user_lock_key). */
extern const char SQL_ADMIN_USER_LOCK[];
/* $1 referral id -> status, the row locked. */
extern const char SQL_ADMIN_REFERRAL_LOCK[];
/* $1 referral id: due now / cancelled with its held credits. */
extern const char SQL_ADMIN_REFERRAL_RELEASE[];
extern const char SQL_ADMIN_REFERRAL_CANCEL[];
/* $1 referral id, $2 action, $3 actor, $4 reason. */
extern const char SQL_ADMIN_REFERRAL_AUDIT[];

/* ---- dlq redrive (rs_admin_dlq.c; table rs_dlq_redrives, sql/006) ---- */

/* One redrive at a time: pg_try_advisory_lock / unlock. $1 key (bigint).
 * The lock statement returns one boolean. */
extern const char SQL_ADMIN_DLQ_LOCK[];
extern const char SQL_ADMIN_DLQ_UNLOCK[];

/* The redrive state of every position of a DLQ topic. $1 DLQ topic. */
extern const char SQL_ADMIN_DLQ_STATES[];
enum { DLQ_STATE_PARTITION, DLQ_STATE_OFFSET, DLQ_STATE_STATE };

/* The positions claimed and not marked sent (left by a run that stopped
 * between the two), with where their copies went. $1 DLQ topic. */
extern const char SQL_ADMIN_DLQ_CLAIMED[];
enum {
        DLQ_CLAIMED_PARTITION,
        DLQ_CLAIMED_OFFSET,
        DLQ_CLAIMED_TARGET_TOPIC,
        DLQ_CLAIMED_TARGET_PARTITION,
        DLQ_CLAIMED_WATERMARK
};

/* Claims positions before their copies are produced: new rows, or rows
 * still claimed (a copy not found: claimed again with the new watermark);
 * a sent row is left alone and not returned. $1 DLQ topic, $2 partitions
 * (int[]), $3 offsets (bigint[]), $4 target topics (text[]), $5 target
 * partitions (int[]), $6 watermarks (bigint[]), $7 error classes (text[]),
 * $8 actor. Returns the positions claimed. */
extern const char SQL_ADMIN_DLQ_CLAIM[];
enum { DLQ_CLAIM_PARTITION, DLQ_CLAIM_OFFSET };

/* Marks claimed positions sent. $1 DLQ topic, $2 partitions (int[]), $3
 * offsets (bigint[]). */
extern const char SQL_ADMIN_DLQ_MARK_SENT[];

#endif
