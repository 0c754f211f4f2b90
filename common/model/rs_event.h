#ifndef RS_EVENT_H
#define RS_EVENT_H
/* The records refstream reads and writes (docs/events.md §3-2.3), as plain C structs.
 * Strings of decoded input events live in the batch arena. */
#include <stdbool.h>
#include <stdint.h>

typedef enum {
        RS_EV_SIGNUP = 1,  /* SignupEvent, schema id 1 */
        RS_EV_PAYMENT = 2, /* PaymentEvent, schema id 2 */
} rs_event_type_t;

typedef enum {
        RS_PAY_CHARGE = 0,
        RS_PAY_REFUND = 1,
} rs_pay_kind_t;

/* Field limits (docs/events.md §3). */
#define RS_EVENT_ID_MAX    64
#define RS_USER_ID_MAX     128
#define RS_PAYMENT_ID_MAX  128
#define RS_EMAIL_HASH_MAX  128
#define RS_FINGERPRINT_MAX 128
/* A referral code longer than this is not a code; it is kept (truncated) in
 * the rejection record only. */
#define RS_REFERRAL_CODE_INPUT_MAX 256

typedef struct rs_event {
        rs_event_type_t type;
        const char *event_id;
        int64_t occurred_at_ms;
        const char *user_id;
        /* SignupEvent */
        const char *referral_code; /* as received, NULL when absent */
        const char *email_hash;    /* NULL when absent */
        /* PaymentEvent */
        const char *payment_id;
        int64_t amount_minor;
        char currency[4];
        rs_pay_kind_t kind;
        const char *refund_of;           /* NULL when absent; required for REFUND */
        const char *payment_fingerprint; /* NULL when absent (schema version 2) */
} rs_event_t;

typedef enum {
        RS_ROLE_REFERRER = 0,
        RS_ROLE_REFEREE = 1,
} rs_role_t;

/* ReferralCredited */
typedef struct rs_credited {
        const char *credit_id;
        const char *referral_id;
        const char *program_key;
        const char *code;
        const char *referrer_user_id;
        const char *referee_user_id;
        const char *beneficiary_user_id;
        rs_role_t role;
        int64_t amount_minor;
        const char *currency;
        const char *source_event_id;
        int64_t credited_at_ms;
        int32_t referrer_rewarded_count;
        int32_t referral_goal;
        bool goal_reached;
} rs_credited_t;

/* ReferralCreditReversed */
typedef struct rs_reversed {
        const char *credit_id;
        const char *referral_id;
        const char *beneficiary_user_id;
        int64_t amount_minor;
        const char *currency;
        const char *source_event_id;
        int64_t reversed_at_ms;
        const char *reason;
} rs_reversed_t;

const char *rs_event_type_name(rs_event_type_t t); /* "SignupEvent", ... */
const char *rs_role_name(rs_role_t r);             /* "REFERRER" / "REFEREE" */

#endif
