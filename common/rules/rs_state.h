#ifndef RS_STATE_H
#define RS_STATE_H
/* What the rules read and write (docs/rules.md): programs, codes, users,
 * referrals, credits, referrer counts, remembered first charges and held
 * refunds, as loaded for one batch, plus the batch's rejections and
 * emissions. The batch layer (consumer/processor/rs_store.c) loads the rows a
 * batch touches into an rs_state_t and writes back what the rules changed
 * (objects flagged is_new/dirty, and the two lists). */
#include "rs_event.h"
#include "rs_util.h"

#include <stdbool.h>
#include <stdint.h>

typedef enum { RS_PROG_ACTIVE, RS_PROG_PAUSED, RS_PROG_ENDED } rs_prog_status_t;
typedef enum {
        RS_CODE_ACTIVE,
        RS_CODE_PAUSED,
        RS_CODE_REVOKED,
        RS_CODE_EXPIRED,
        RS_CODE_EXHAUSTED,
} rs_code_status_t;
typedef enum {
        RS_REF_PENDING,
        RS_REF_HELD, /* qualified; credits held until release_at (rules.md §8) */
        RS_REF_CREDITED,
        RS_REF_REVERSED,
        RS_REF_CANCELLED, /* refunded during the hold, or cancelled by an operator */
} rs_ref_status_t;
typedef enum {
        RS_CREDIT_HELD,
        RS_CREDIT_ISSUED,
        RS_CREDIT_REVERSED,
        RS_CREDIT_CANCELLED,
} rs_credit_status_t;

typedef enum {
        RS_REJ_UNKNOWN_CODE,
        RS_REJ_CODE_INACTIVE,
        RS_REJ_CODE_EXPIRED,
        RS_REJ_CODE_EXHAUSTED,
        RS_REJ_PROGRAM_INACTIVE,
        RS_REJ_SELF_REFERRAL,
        RS_REJ_ALREADY_REFERRED,
        RS_REJ_REFERRAL_CYCLE,
        RS_REJ_OUTSIDE_WINDOW,
        RS_REJ_BELOW_MINIMUM,
        RS_REJ_CURRENCY_MISMATCH,
        RS_REJ_REFERRER_CAP_REACHED,
        RS_REJ_SHARED_PAYMENT_METHOD,
        RS_REJ_VELOCITY_LIMIT,
        RS_REJ__COUNT
} rs_reason_t;

const char *rs_reason_name(rs_reason_t r);
const char *rs_prog_status_name(rs_prog_status_t s);
const char *rs_code_status_name(rs_code_status_t s);
const char *rs_ref_status_name(rs_ref_status_t s);
const char *rs_credit_status_name(rs_credit_status_t s);
bool rs_prog_status_parse(const char *s, rs_prog_status_t *out);
bool rs_code_status_parse(const char *s, rs_code_status_t *out);
bool rs_ref_status_parse(const char *s, rs_ref_status_t *out);
bool rs_credit_status_parse(const char *s, rs_credit_status_t *out);

#define RS_DAY_MS INT64_C(86400000)

typedef struct rs_program {
        int64_t id;
        const char *key;
        rs_prog_status_t status;
        char currency[4];
        bool reward_percent;    /* reward_value is basis points if true */
        int64_t reward_value;   /* minor units or basis points */
        int64_t reward_cap;     /* RS_INT_NONE: uncapped */
        int64_t referee_reward; /* RS_INT_NONE: single-sided */
        int64_t min_payment;
        int32_t window_days;
        int32_t goal;
        int32_t max_rewarded; /* RS_INT_NONE: no cap */
        int64_t starts_at_ms; /* RS_TS_NONE: open */
        int64_t ends_at_ms;   /* RS_TS_NONE: open */
        int32_t hold_days;    /* 0: credits issued at once */
        int32_t max_per_day;  /* referrals per referrer in 24 h; RS_INT_NONE: no limit */
} rs_program_t;

typedef struct rs_code {
        const char *code;
        int64_t program_id;
        const char *owner;
        rs_code_status_t status;
        int32_t uses_count;
        int32_t max_uses;      /* RS_INT_NONE: unlimited */
        int64_t expires_at_ms; /* RS_TS_NONE: never */
        bool dirty;            /* uses_count or status changed */
} rs_code_t;

typedef struct rs_user {
        const char *user_id;
        const char *email_hash; /* from the user's own sign-up; NULL unknown */
        bool signed_up;
        const char *signup_event_id;
        int64_t signed_up_at_ms;
        /* Kept for the batch's first-level filter (docs/design.md §2): the
         * time of the earliest charge (rs_first_charges), and whether the
         * user is the referee of a pending referral. */
        int64_t first_charge_at_ms; /* RS_TS_NONE: no charge yet */
        bool pending_referral;
        bool dirty;
} rs_user_t;

typedef struct rs_credit rs_credit_t;

typedef struct rs_referral {
        const char *id;
        int64_t program_id;
        const char *code;
        const char *referrer;
        const char *referee;
        rs_ref_status_t status;
        const char *signup_event_id;
        int64_t signup_at_ms;
        const char *payment_id; /* qualifying payment */
        const char *payment_event_id;
        int64_t qualified_at_ms;
        int64_t reversed_at_ms;
        const char *reversal_event_id;
        int64_t release_at_ms;   /* held: when the credits are due */
        int64_t released_at_ms;  /* RS_TS_NONE: not released (yet) */
        int64_t cancelled_at_ms; /* RS_TS_NONE: not cancelled */
        const char *cancel_event_id;
        bool is_new, dirty;
        struct rs_referral *next_of_referee; /* all referrals of one referee */
        rs_credit_t *credits;                /* loaded for refunds, and new ones */
} rs_referral_t;

struct rs_credit {
        const char *id;
        rs_referral_t *referral;
        rs_role_t role;
        const char *beneficiary;
        int64_t amount_minor;
        const char *currency;
        rs_credit_status_t status;
        const char *source_event_id;
        int64_t created_at_ms;
        int64_t released_at_ms; /* a held credit's release; RS_TS_NONE: none */
        int32_t rewarded_count;
        bool goal_reached;
        int64_t reversed_at_ms;
        const char *reversal_event_id;
        bool is_new, dirty;
        rs_credit_t *next;
};

typedef struct rs_refstat {
        int64_t program_id;
        const char *referrer;
        int32_t rewarded_count;
        bool dirty;
        /* Velocity (rules.md §9): sign-up times of the referrer's referrals in
         * the program, loaded from 24 hours before the batch's earliest
         * sign-up, plus those the batch creates. */
        int64_t *recent;
        size_t n_recent, cap_recent;
} rs_refstat_t;

typedef struct rs_charge {
        const char *user_id;
        const char *payment_id;
        const char *event_id;
        int64_t amount_minor;
        char currency[4];
        int64_t occurred_at_ms;
        const char *fingerprint; /* NULL: none */
        bool dirty;
} rs_charge_t;

typedef struct rs_held_refund {
        const char *user_id;
        const char *refund_of;
        const char *event_id;
        int64_t occurred_at_ms;
        bool is_new;  /* insert */
        bool applied; /* delete */
} rs_held_refund_t;

typedef struct rs_fpseen {
        int64_t first_index; /* batch event that first used it; -1: before the batch */
} rs_fpseen_t;

typedef struct rs_rejection {
        size_t event_index; /* which event of the batch */
        rs_event_type_t event_type;
        const char *event_id; /* may differ from the batch event (remembered charge) */
        const char *user_id;
        int64_t occurred_at_ms;
        rs_reason_t reason;
        const char *code;     /* normalised, NULL if none */
        int64_t program_id;   /* 0 if unknown */
        const char *referrer; /* NULL if unknown */
        const char *detail;
} rs_rejection_t;

/* A credit issued or reversed: becomes an outbox row. */
typedef struct rs_emission {
        size_t event_index;
        bool reversal;
        rs_credit_t *credit;
} rs_emission_t;

typedef struct rs_state {
        rs_arena_t *arena;
        int64_t now_ms;     /* credited_at / reversed_at of this batch */
        rs_map_t programs;  /* decimal id -> rs_program_t */
        rs_map_t codes;     /* code -> rs_code_t */
        rs_map_t users;     /* user_id -> rs_user_t */
        rs_map_t referrals; /* referee -> first rs_referral_t of the referee */
        rs_map_t refstats;  /* "<program_id>/<referrer>" -> rs_refstat_t */
        rs_map_t charges;   /* user_id -> rs_charge_t (first charge) */
        rs_map_t held;      /* "<user>\x1f<refund_of>" -> rs_held_refund_t */
        /* "<user>\x1f<fingerprint>" -> rs_fpseen_t: payment methods seen on
         * users' charges, before the batch or at a batch event. */
        rs_map_t fingerprints;
        rs_rejection_t *rejections;
        size_t n_rejections, cap_rejections;
        rs_emission_t *emissions;
        size_t n_emissions, cap_emissions;
} rs_state_t;

void rs_state_init(rs_state_t *st, rs_arena_t *arena, int64_t now_ms);
void rs_state_free(rs_state_t *st); /* maps and lists; objects live in the arena */

/* Accessors used by the loader and the engine. The add functions copy nothing:
 * pass arena-allocated objects. Lookups return NULL when absent. */
rs_program_t *rs_state_program(rs_state_t *st, int64_t id);
void rs_state_add_program(rs_state_t *st, rs_program_t *p);
rs_code_t *rs_state_code(rs_state_t *st, const char *code);
void rs_state_add_code(rs_state_t *st, rs_code_t *c);
rs_user_t *rs_state_user(rs_state_t *st, const char *user_id);
void rs_state_add_user(rs_state_t *st, rs_user_t *u);
rs_referral_t *rs_state_referrals_of(rs_state_t *st, const char *referee);
void rs_state_add_referral(rs_state_t *st, rs_referral_t *r);
void rs_state_add_credit(rs_credit_t *c); /* onto c->referral's list */
rs_refstat_t *rs_state_refstat(rs_state_t *st, int64_t program_id, const char *referrer);
void rs_state_add_refstat(rs_state_t *st, rs_refstat_t *s);
/* The pair's stats, created with a zero count (and a copy of referrer) when
 * absent. */
rs_refstat_t *rs_state_refstat_get(rs_state_t *st, int64_t program_id,
                                   const char *referrer);
rs_charge_t *rs_state_charge(rs_state_t *st, const char *user_id);
void rs_state_add_charge(rs_state_t *st, rs_charge_t *c);
rs_held_refund_t *rs_state_held(rs_state_t *st, const char *user_id,
                                const char *refund_of);
void rs_state_add_held(rs_state_t *st, rs_held_refund_t *h);
/* Records that user paid with fingerprint at batch event index (-1: before
 * the batch); keeps the earliest. */
void rs_state_add_fingerprint(rs_state_t *st, const char *user_id,
                              const char *fingerprint, int64_t index);
/* Whether user paid with fingerprint before batch event index. */
bool rs_state_fingerprint_before(rs_state_t *st, const char *user_id,
                                 const char *fingerprint, int64_t index);
/* Appends a sign-up time to s->recent (grown in the state's arena). */
void rs_refstat_add_recent(rs_state_t *st, rs_refstat_t *s, int64_t at_ms);

#endif
