#ifndef RS_ADMIN_H
#define RS_ADMIN_H
/* Operator actions on programs and codes, and the stats/history reports
 * (docs/commands.md `refstream admin`), as a library: `refstream admin` is a thin
 * command line over it, and `refstream demo` and the tests call it directly.
 *
 * Every statement is parameterised and static (optional changes are "is set"
 * flags inside the SQL, never SQL assembled from the options given). Fallible
 * calls return false (or NULL) with a readable message in errstr; a message
 * never contains SQL, only what the operator has to know.
 *
 * Code changes delete the code's Redis entry when a cache is configured. Redis
 * being unreachable does not fail the change: Postgres is the source of truth
 * and the processor re-reads status, uses and expiry under a row lock, so the
 * warning only says the cached program/owner may be stale until its TTL. */
#include "rs_cache.h"
#include "rs_codes.h"
#include "rs_pg.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* Receives warnings (non-fatal: issuing into a paused program, a stale cache
 * entry, a clamped max-uses). */
typedef void (*rs_admin_warn_fn)(void *opaque, const char *msg);

/* Set up by the caller; nothing here is owned. */
typedef struct rs_admin {
        rs_pg_t *pg;           /* connected */
        rs_cache_t *cache;     /* NULL: no cache configured, nothing to invalidate */
        int64_t cache_ttl_ms;  /* for the stale-entry warning */
        rs_admin_warn_fn warn; /* NULL: logged with rs_warn() */
        void *warn_opaque;
} rs_admin_t;

/* An option of a create/update: not given, given, or cleared (`none`). */
typedef enum { RS_ADMIN_UNSET = 0, RS_ADMIN_SET, RS_ADMIN_CLEAR } rs_admin_opt_state_t;

typedef struct rs_admin_i64 {
        rs_admin_opt_state_t state;
        int64_t v; /* when SET; timestamps are epoch milliseconds */
} rs_admin_i64_t;

/* The settable fields of a program. On create, UNSET takes the default of
 * docs/rules.md §1 (min payment 0, window 30 days, goal 10, everything
 * optional absent). */
typedef struct rs_admin_program {
        const char *name;              /* NULL: not given */
        const char *currency;          /* NULL: not given */
        rs_admin_i64_t reward_fixed;   /* minor units; at most one of the two */
        rs_admin_i64_t reward_percent; /* basis points 0..10000 */
        rs_admin_i64_t reward_cap;     /* clearable */
        rs_admin_i64_t referee_reward; /* clearable */
        rs_admin_i64_t min_payment;
        rs_admin_i64_t window_days;
        rs_admin_i64_t goal;
        rs_admin_i64_t max_rewarded; /* clearable */
        rs_admin_i64_t starts_at;    /* clearable */
        rs_admin_i64_t ends_at;      /* clearable */
        rs_admin_i64_t hold_days;    /* 0..3650 */
        rs_admin_i64_t max_per_day;  /* clearable */
} rs_admin_program_t;

typedef enum {
        RS_ADMIN_PAUSE,
        RS_ADMIN_RESUME,
        RS_ADMIN_END,    /* programs: final */
        RS_ADMIN_REVOKE, /* codes: final */
} rs_admin_action_t;

/* ---- pure checks (no I/O), shared with the command line ---- */
bool rs_admin_program_key_valid(const char *key);
/* Checks every given field, and on create that the required ones are there.
 * Cross-field checks against stored values happen in the update itself. */
bool rs_admin_program_validate(const rs_admin_program_t *p, bool create, char *errstr,
                               size_t errstr_size) RS_WARN_UNUSED;
/* 1..128 bytes, no control characters (a tab would break backfill output). */
bool rs_admin_user_valid(const char *user, char *errstr,
                         size_t errstr_size) RS_WARN_UNUSED;
/* Normalises (trim, upper-case) into out and checks the vanity-code shape. */
bool rs_admin_vanity_normalize(const char *in, char out[RS_CODE_MAX_LEN + 1],
                               char *errstr, size_t errstr_size) RS_WARN_UNUSED;

/* ---- programs ---- */
bool rs_admin_program_create(rs_admin_t *a, const char *key, const rs_admin_program_t *p,
                             char *errstr, size_t errstr_size) RS_WARN_UNUSED;
bool rs_admin_program_update(rs_admin_t *a, const char *key, const rs_admin_program_t *p,
                             char *errstr, size_t errstr_size) RS_WARN_UNUSED;
/* PAUSE (active->paused), RESUME (paused->active), END (->ended, final).
 * Asking for the state a program is already in succeeds with *changed false. */
bool rs_admin_program_set_status(rs_admin_t *a, const char *key, rs_admin_action_t action,
                                 bool *changed, char *errstr,
                                 size_t errstr_size) RS_WARN_UNUSED;
/* A program as JSON (RS_ADMIN_PROGRAM_JSON in rs_admin_sql.c; fields documented in
 * `refstream admin program show --help`); NULL + errstr if absent. */
json_t *rs_admin_program_show(rs_admin_t *a, const char *key, char *errstr,
                              size_t errstr_size) RS_WARN_UNUSED;
json_t *rs_admin_program_list(rs_admin_t *a, char *errstr,
                              size_t errstr_size) RS_WARN_UNUSED;

/* ---- codes ---- */
typedef struct rs_admin_code_limits {
        rs_admin_i64_t max_uses;   /* NULL (UNSET/CLEAR) = unlimited; 0 = no use */
        rs_admin_i64_t expires_at; /* epoch ms */
} rs_admin_code_limits_t;

/* Issues a code to user in program_key: vanity (normalised and validated) or,
 * when vanity is NULL, a generated 8-character Crockford code (retried on
 * collision). The initial status follows the limits (max-uses 0: exhausted;
 * expiry in the past: expired). Writes the code to out. */
bool rs_admin_code_issue(rs_admin_t *a, const char *program_key, const char *user,
                         const char *vanity, const rs_admin_code_limits_t *limits,
                         char out[RS_CODE_MAX_LEN + 1], char *errstr,
                         size_t errstr_size) RS_WARN_UNUSED;
/* PAUSE (active->paused), RESUME (paused->active, or expired/exhausted if the
 * limits passed meanwhile), REVOKE (any->revoked, final). The code is
 * normalised first. status_out (>= 16 bytes) gets the resulting status. */
bool rs_admin_code_set_status(rs_admin_t *a, const char *code, rs_admin_action_t action,
                              bool *changed, char *status_out, size_t status_size,
                              char *errstr, size_t errstr_size) RS_WARN_UNUSED;
/* Changes max_uses/expires_at and re-derives the status of an active,
 * expired or exhausted code (paused stays paused; revoked cannot change). A
 * max-uses below the uses already made is raised to uses_count (same effect:
 * no further use) with a warning, because the schema keeps uses <= max. */
bool rs_admin_code_update(rs_admin_t *a, const char *code,
                          const rs_admin_code_limits_t *limits, char *status_out,
                          size_t status_size, char *errstr,
                          size_t errstr_size) RS_WARN_UNUSED;
json_t *rs_admin_code_show(rs_admin_t *a, const char *code, char *errstr,
                           size_t errstr_size) RS_WARN_UNUSED;

/* ---- backfill ---- */
#define RS_ADMIN_BACKFILL_CHUNK 5000

typedef struct rs_admin_backfill_stats {
        size_t users;        /* distinct users */
        size_t created;      /* codes created by this run */
        size_t existing;     /* users that already had a code */
        size_t retries;      /* generated codes that collided and were redrawn */
        size_t revoked_only; /* of existing: users whose only codes are revoked */
} rs_admin_backfill_stats_t;

/* Gives each of users[0..n) a code in program_key unless they have one, and
 * writes every user's code to codes[i] (duplicates get the same code).
 * "Has one" means any code of theirs in the program, preferring a
 * non-revoked one, then the oldest: a revoked user is not silently given a
 * new code. Chunks of RS_ADMIN_BACKFILL_CHUNK distinct users, one transaction
 * each, serialised per program with an advisory lock, so concurrent backfills
 * never give one user two codes. Idempotent. Users must be valid
 * (rs_admin_user_valid); an invalid one fails the call before any write. */
bool rs_admin_backfill(rs_admin_t *a, const char *program_key, const char *const *users,
                       size_t n, char (*codes)[RS_CODE_MAX_LEN + 1],
                       rs_admin_backfill_stats_t *stats, char *errstr,
                       size_t errstr_size) RS_WARN_UNUSED;

/* ---- reports (JSON built by Postgres; shapes in rs_admin_stats.c) ---- */
#define RS_ADMIN_RECENT 10 /* recent rejections, top referrers */

json_t *rs_admin_stats_program(rs_admin_t *a, const char *key, char *errstr,
                               size_t errstr_size) RS_WARN_UNUSED;
json_t *rs_admin_stats_user(rs_admin_t *a, const char *user, char *errstr,
                            size_t errstr_size) RS_WARN_UNUSED;
/* Referrals where user is referrer or referee, newest first, at most limit
 * (> 0); "total" tells how many there are. */
json_t *rs_admin_referrals(rs_admin_t *a, const char *user, int64_t limit, char *errstr,
                           size_t errstr_size) RS_WARN_UNUSED;

/* ---- the review of held referrals (rs_admin_hold.c) ---- */
/* Releases (the referral becomes due now: the housekeeping of a running
 * processor issues its credits and publishes them) or cancels (its credits
 * are cancelled, nothing is published) the held referral id, and records
 * who did it and why (reason may be NULL). Fails, changing nothing, unless
 * the referral is held. */
bool rs_admin_referral_review(rs_admin_t *a, const char *id, bool cancel,
                              const char *actor, const char *reason, char *errstr,
                              size_t errstr_size) RS_WARN_UNUSED;

/* ---- text rendering of the JSON above (rs_admin_text.c) ---- */
void rs_admin_print_program(FILE *out, const json_t *program);
void rs_admin_print_program_list(FILE *out, const json_t *programs);
void rs_admin_print_code(FILE *out, const json_t *code);
void rs_admin_print_stats_program(FILE *out, const json_t *stats);
void rs_admin_print_stats_user(FILE *out, const json_t *stats);
void rs_admin_print_referrals(FILE *out, const json_t *history);

#endif
