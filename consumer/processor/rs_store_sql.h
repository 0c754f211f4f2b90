#ifndef RS_STORE_SQL_H
#define RS_STORE_SQL_H
/* The statements of the batch transaction (rs_store.c, rs_batch.c) and of the
 * processor's housekeeping (rs_processor.c), named and laid out for reading.
 * "{rows}" is expanded by rs_pgrows.h from the writer's column table; the
 * result columns of a load are listed by the enum beside it, in order. The
 * tables are those of sql/. */

/* ---- the batch transaction: lock, then read a fresh snapshot per statement */

extern const char SQL_BEGIN[];
extern const char SQL_COMMIT[];

/* ---- the inbox: which records of the batch are new */

/* $1 the inbox keys (uuid[]); returns the keys inserted. */
extern const char SQL_INBOX_CLAIM[];
/* The optimistic claim, in the write pipeline (docs/design.md §2): a key
 * already there fails the batch (unique violation of rs_inbox_pkey), which
 * then runs again with SQL_INBOX_CLAIM. */
extern const char SQL_INBOX_INSERT[];
/* Keys that may be there already (they record an earlier event judged now). */
extern const char SQL_INBOX_ADD[];
#define RS_INBOX_PKEY "rs_inbox_pkey"

/* ---- locks and loads ($1: an array of keys) */

/* $1 the lock class, $2 the users' lock keys, sorted: instances locking
 * overlapping users queue instead of deadlocking. */
extern const char SQL_USERS_LOCK[];

enum {
        USER_ID,
        USER_EMAIL_HASH,
        USER_SIGNUP_EVENT,
        USER_SIGNED_UP_AT,
        USER_FIRST_CHARGE_AT,
        USER_PENDING_REFERRAL
};
extern const char SQL_USERS_LOAD[];

/* Outside the locks: of the given users, those who signed up, have no
 * pending referral and were charged (user id, time of the first charge). */
extern const char SQL_USERS_QUIET[];

enum {
        CODE_CODE,
        CODE_PROGRAM,
        CODE_OWNER,
        CODE_STATUS,
        CODE_USES,
        CODE_MAX_USES,
        CODE_EXPIRES_AT
};
extern const char SQL_CODES_LOCK[];

/* Outside the transaction: a hint of whom to lock. */
extern const char SQL_REFERRERS_OF[];

enum { FOUND_CODE, FOUND_PROGRAM, FOUND_OWNER };
extern const char SQL_CODES_FIND[];

enum {
        REF_ID,
        REF_PROGRAM,
        REF_CODE,
        REF_REFERRER,
        REF_REFEREE,
        REF_STATUS,
        REF_SIGNUP_EVENT,
        REF_SIGNUP_AT,
        REF_PAYMENT,
        REF_PAYMENT_EVENT,
        REF_QUALIFIED_AT,
        REF_REVERSED_AT,
        REF_REVERSAL_EVENT,
        REF_RELEASE_AT,
        REF_RELEASED_AT,
        REF_CANCELLED_AT,
        REF_CANCEL_EVENT
};
extern const char SQL_REFERRALS_OF[];
/* The same columns, by referral id. */
extern const char SQL_REFERRALS_BY_ID[];
/* Velocity: {rows} the (program_id, referrer) pairs, {p1} epoch ms; the
 * sign-up times of their referrals after {p1}. */
enum { RECENT_PROGRAM, RECENT_REFERRER, RECENT_SIGNUP_AT };
extern const char SQL_RECENT_REFERRALS[];
/* $1 fingerprints: who paid with them (user_id, fingerprint). */
extern const char SQL_FINGERPRINTS_OF[];

enum {
        PROG_ID,
        PROG_KEY,
        PROG_STATUS,
        PROG_CURRENCY,
        PROG_REWARD_KIND,
        PROG_REWARD,
        PROG_CAP,
        PROG_REFEREE_REWARD,
        PROG_MIN_PAYMENT,
        PROG_WINDOW,
        PROG_GOAL,
        PROG_MAX_REWARDED,
        PROG_STARTS_AT,
        PROG_ENDS_AT,
        PROG_HOLD_DAYS,
        PROG_MAX_PER_DAY
};
extern const char SQL_PROGRAMS[];

/* {rows}: the (program_id, referrer) pairs wanted. */
enum { STAT_PROGRAM, STAT_REFERRER, STAT_COUNT };
extern const char SQL_REFSTATS[];

enum {
        CHARGE_USER,
        CHARGE_PAYMENT,
        CHARGE_EVENT,
        CHARGE_AMOUNT,
        CHARGE_CURRENCY,
        CHARGE_AT,
        CHARGE_FINGERPRINT
};
extern const char SQL_FIRST_CHARGES[];

enum { HELD_USER, HELD_REFUND_OF, HELD_EVENT, HELD_AT };
extern const char SQL_HELD_REFUNDS[];

enum {
        CREDIT_ID,
        CREDIT_REFERRAL,
        CREDIT_ROLE,
        CREDIT_BENEFICIARY,
        CREDIT_AMOUNT,
        CREDIT_CURRENCY,
        CREDIT_STATUS,
        CREDIT_SOURCE,
        CREDIT_CREATED_AT,
        CREDIT_COUNT,
        CREDIT_GOAL_REACHED,
        CREDIT_RELEASED_AT
};
extern const char SQL_CREDITS_OF[];

/* ---- writes ({rows}: the writer's column table in rs_store.c) */

/* A user's row: the sign-up fields (set once), the first charge's time and
 * whether a referral is pending. */
extern const char SQL_USERS_UPSERT[];
/* The quiet sign-ups (no lock held): only the sign-up fields, where unset. */
extern const char SQL_USERS_SIGNUP_MERGE[];

extern const char SQL_WRITE_PLANS[];
extern const char SQL_CODES_UPDATE[];

/* A plain INSERT: a conflict would mean the rules saw stale state, which must
 * fail loudly rather than overwrite. */
extern const char SQL_REFERRALS_INSERT[];

extern const char SQL_REFERRALS_UPDATE[];

extern const char SQL_REFSTATS_UPSERT[];

extern const char SQL_CREDITS_INSERT[];

/* Status changes: reversed, cancelled, or released (issued). */
extern const char SQL_CREDITS_UPDATE[];

extern const char SQL_REJECTIONS_INSERT[];

/* Keeps each user's earliest charge. */
extern const char SQL_FIRST_CHARGES_UPSERT[];
/* The payment-method fingerprints of new charges; the earliest sighting wins. */
extern const char SQL_FINGERPRINTS_INSERT[];

extern const char SQL_HELD_INSERT[];

extern const char SQL_HELD_DELETE[];

/* The batch's output, in its order (ids increase with it), as one outbox
 * batch (sql/010_outbox_batches.sql) claimed by this process for {p1} ms so
 * no sweep republishes it while it is published. Returns id, batch_id. */
extern const char SQL_OUTBOX_INSERT[];

/* ---- housekeeping */

/* Retention: up to $2 rows older than $1 hours (rows another session has
 * locked are skipped: instances share the work). */
extern const char SQL_INBOX_RETENTION[];
extern const char SQL_HELD_RETENTION[];

extern const char SQL_CODES_EXPIRE[];
/* The release of held referrals (docs/rules.md §8): up to $1 due ones, locked
 * (SKIP LOCKED: instances share them) -> (id, referee). */
enum { DUE_ID, DUE_REFEREE };
extern const char SQL_RELEASE_DUE[];
/* $1 lock class, $2 keys: per key, in order, true if its lock was free (or
 * already held by this transaction) and is now held. */
extern const char SQL_USERS_TRY_LOCK[];

#endif
