/* The rules of docs/rules.md, one test per rule and rejection reason, on hand-built
 * state (no servers). */
#include "rs_ids.h"
#include "rs_rules.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define T0  INT64_C(1767225600000) /* 2026-01-01T00:00:00Z */
#define DAY RS_DAY_MS

typedef struct fx {
        rs_arena_t arena;
        rs_state_t st;
        rs_program_t *p;
        size_t idx;
} fx_t;

static int setup(void **state)
{
        fx_t *f = calloc(1, sizeof(*f));
        rs_arena_init(&f->arena, 0);
        rs_state_init(&f->st, &f->arena, T0 + 1000 * DAY);
        f->p = rs_arena_alloc(&f->arena, sizeof(*f->p));
        *f->p = (rs_program_t){.id = 1,
                               .key = "default",
                               .status = RS_PROG_ACTIVE,
                               .currency = "USD",
                               .reward_value = 500,
                               .reward_cap = RS_INT_NONE,
                               .referee_reward = RS_INT_NONE,
                               .min_payment = 1000,
                               .window_days = 30,
                               .goal = 3,
                               .max_rewarded = RS_INT_NONE,
                               .starts_at_ms = RS_TS_NONE,
                               .ends_at_ms = RS_TS_NONE,
                               .max_per_day = RS_INT_NONE};
        rs_state_add_program(&f->st, f->p);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        fx_t *f = *state;
        rs_state_free(&f->st);
        rs_arena_destroy(&f->arena);
        free(f);
        return 0;
}

static rs_code_t *code(fx_t *f, const char *c, const char *owner)
{
        rs_code_t *x = rs_arena_alloc(&f->arena, sizeof(*x));
        *x = (rs_code_t){.code = c,
                         .program_id = f->p->id,
                         .owner = owner,
                         .status = RS_CODE_ACTIVE,
                         .max_uses = RS_INT_NONE,
                         .expires_at_ms = RS_TS_NONE};
        rs_state_add_code(&f->st, x);
        return x;
}

static void user(fx_t *f, const char *id, const char *hash)
{
        rs_user_t *u = rs_arena_alloc(&f->arena, sizeof(*u));
        *u = (rs_user_t){.user_id = id, .email_hash = hash, .signed_up = true};
        rs_state_add_user(&f->st, u);
}

static void signup(fx_t *f, const char *user_id, const char *c, int64_t at,
                   const char *hash)
{
        rs_event_t ev = {.type = RS_EV_SIGNUP,
                         .event_id = rs_arena_printf(&f->arena, "s-%zu", f->idx),
                         .occurred_at_ms = at,
                         .user_id = user_id,
                         .referral_code = c,
                         .email_hash = hash};
        rs_rules_apply(&f->st, &ev, f->idx++);
}

static void pay_fp(fx_t *f, const char *user_id, const char *pid, int64_t amount,
                   const char *cur, int64_t at, const char *refund_of, const char *fp)
{
        rs_event_t ev = {.type = RS_EV_PAYMENT,
                         .event_id = rs_arena_printf(&f->arena, "p-%zu", f->idx),
                         .occurred_at_ms = at,
                         .user_id = user_id,
                         .payment_id = pid,
                         .amount_minor = amount,
                         .kind = refund_of ? RS_PAY_REFUND : RS_PAY_CHARGE,
                         .refund_of = refund_of,
                         .payment_fingerprint = fp};
        rs_strlcpy(ev.currency, cur, sizeof(ev.currency));
        rs_rules_apply(&f->st, &ev, f->idx++);
}

static void pay(fx_t *f, const char *user_id, const char *pid, int64_t amount,
                const char *cur, int64_t at, const char *refund_of)
{
        pay_fp(f, user_id, pid, amount, cur, at, refund_of, NULL);
}

static rs_referral_t *ref(fx_t *f, const char *referee)
{
        return rs_state_referrals_of(&f->st, referee);
}

static void expect_rejection(fx_t *f, rs_reason_t why)
{
        assert_int_equal(f->st.n_rejections, 1);
        assert_string_equal(rs_reason_name(f->st.rejections[0].reason),
                            rs_reason_name(why));
}

/* ---------------------------------------------------------------- sign-ups */

static void signup_creates_pending_referral(void **state)
{
        fx_t *f = *state;
        rs_code_t *c = code(f, "ABCD2345", "alice");
        signup(f, "bob", "  abcd2345 ", T0, NULL); /* trimmed, case-insensitive */
        rs_referral_t *r = ref(f, "bob");
        assert_non_null(r);
        assert_true(r->is_new);
        assert_int_equal(r->status, RS_REF_PENDING);
        assert_string_equal(r->referrer, "alice");
        assert_string_equal(r->code, "ABCD2345");
        assert_int_equal(c->uses_count, 1);
        assert_true(c->dirty);
        assert_int_equal(f->st.n_rejections, 0);
        char id[RS_UUID_STR_LEN + 1];
        rs_referral_id("default", "bob", id);
        assert_string_equal(r->id, id);
}

static void blank_code_is_no_intent(void **state)
{
        fx_t *f = *state;
        signup(f, "bob", "   ", T0, NULL);
        signup(f, "carol", NULL, T0, NULL);
        assert_null(ref(f, "bob"));
        assert_int_equal(f->st.n_rejections, 0);
        assert_true(rs_state_user(&f->st, "carol")->signed_up);
}

static void unknown_code(void **state)
{
        fx_t *f = *state;
        signup(f, "bob", "NOPE2345", T0, NULL);
        expect_rejection(f, RS_REJ_UNKNOWN_CODE);
        assert_string_equal(f->st.rejections[0].code, "NOPE2345");
}

static void malformed_code_is_unknown(void **state)
{
        fx_t *f = *state;
        code(f, "AB", "alice"); /* cannot be a code: must not be looked at */
        signup(f, "bob", "ab", T0, NULL);
        expect_rejection(f, RS_REJ_UNKNOWN_CODE);
}

static void paused_and_revoked_codes(void **state)
{
        fx_t *f = *state;
        code(f, "PAUSED22", "alice")->status = RS_CODE_PAUSED;
        code(f, "REVOKED2", "alice")->status = RS_CODE_REVOKED;
        signup(f, "bob", "PAUSED22", T0, NULL);
        signup(f, "carol", "REVOKED2", T0, NULL);
        assert_int_equal(f->st.n_rejections, 2);
        assert_int_equal(f->st.rejections[0].reason, RS_REJ_CODE_INACTIVE);
        assert_int_equal(f->st.rejections[1].reason, RS_REJ_CODE_INACTIVE);
        assert_null(ref(f, "bob"));
}

static void expired_code(void **state)
{
        fx_t *f = *state;
        rs_code_t *c = code(f, "EXPIRES2", "alice");
        c->expires_at_ms = T0;
        signup(f, "bob", "EXPIRES2", T0,
               NULL); /* expires_at must be later than occurred_at */
        expect_rejection(f, RS_REJ_CODE_EXPIRED);
        assert_int_equal(c->status, RS_CODE_EXPIRED); /* applied when reached */
        /* A late event from before the expiry still counts. */
        signup(f, "carol", "EXPIRES2", T0 - 1, NULL);
        assert_non_null(ref(f, "carol"));
}

static void exhausted_code(void **state)
{
        fx_t *f = *state;
        rs_code_t *c = code(f, "ONCEONLY", "alice");
        c->max_uses = 1;
        signup(f, "bob", "ONCEONLY", T0, NULL);
        assert_non_null(ref(f, "bob"));
        assert_int_equal(c->status, RS_CODE_EXHAUSTED);
        signup(f, "carol", "ONCEONLY", T0, NULL);
        expect_rejection(f, RS_REJ_CODE_EXHAUSTED);
        assert_int_equal(c->uses_count, 1);
}

static void max_uses_zero_is_not_unlimited(void **state)
{
        fx_t *f = *state;
        code(f, "ZEROUSES", "alice")->max_uses = 0;
        signup(f, "bob", "ZEROUSES", T0, NULL);
        expect_rejection(f, RS_REJ_CODE_EXHAUSTED);
}

static void inactive_program(void **state)
{
        fx_t *f = *state;
        code(f, "ABCD2345", "alice");
        f->p->status = RS_PROG_PAUSED;
        signup(f, "bob", "ABCD2345", T0, NULL);
        f->p->status = RS_PROG_ACTIVE;
        f->p->starts_at_ms = T0;
        f->p->ends_at_ms = T0 + DAY;
        signup(f, "carol", "ABCD2345", T0 - 1, NULL);  /* before start */
        signup(f, "dave", "ABCD2345", T0 + DAY, NULL); /* at end: outside */
        signup(f, "erin", "ABCD2345", T0 + 5, NULL);   /* inside */
        assert_int_equal(f->st.n_rejections, 3);
        for (int i = 0; i < 3; i++)
                assert_int_equal(f->st.rejections[i].reason, RS_REJ_PROGRAM_INACTIVE);
        assert_non_null(ref(f, "erin"));
}

static void self_referral_by_id_and_email(void **state)
{
        fx_t *f = *state;
        code(f, "ABCD2345", "alice");
        user(f, "alice", "h-alice");
        signup(f, "alice", "ABCD2345", T0, NULL);
        signup(f, "alice2", "ABCD2345", T0, "h-alice");
        assert_int_equal(f->st.n_rejections, 2);
        assert_int_equal(f->st.rejections[0].reason, RS_REJ_SELF_REFERRAL);
        assert_int_equal(f->st.rejections[1].reason, RS_REJ_SELF_REFERRAL);
        signup(f, "bob", "ABCD2345", T0, "h-bob"); /* different hashes: fine */
        assert_non_null(ref(f, "bob"));
}

static void already_referred(void **state)
{
        fx_t *f = *state;
        code(f, "ABCD2345", "alice");
        code(f, "EFGH2345", "zed");
        signup(f, "bob", "ABCD2345", T0, NULL);
        signup(f, "bob", "EFGH2345", T0 + 1, NULL); /* first valid sign-up wins */
        expect_rejection(f, RS_REJ_ALREADY_REFERRED);
        assert_string_equal(ref(f, "bob")->referrer, "alice");
        assert_null(ref(f, "bob")->next_of_referee);
}

static void two_cycle(void **state)
{
        fx_t *f = *state;
        code(f, "ALICE234", "alice");
        code(f, "BOB23456", "bob");
        signup(f, "bob", "ALICE234", T0, NULL);   /* alice referred bob */
        signup(f, "alice", "BOB23456", T0, NULL); /* bob cannot refer alice back */
        expect_rejection(f, RS_REJ_REFERRAL_CYCLE);
}

/* ---------------------------------------------------------------- payments */

static void qualifying_charge_credits_referrer(void **state)
{
        fx_t *f = *state;
        code(f, "ABCD2345", "alice");
        signup(f, "bob", "ABCD2345", T0, NULL);
        pay(f, "bob", "pay-1", 1000, "USD", T0 + DAY, NULL);
        rs_referral_t *r = ref(f, "bob");
        assert_int_equal(r->status, RS_REF_CREDITED);
        assert_string_equal(r->payment_id, "pay-1");
        assert_int_equal(f->st.n_emissions, 1);
        rs_credit_t *c = f->st.emissions[0].credit;
        assert_false(f->st.emissions[0].reversal);
        assert_int_equal(c->role, RS_ROLE_REFERRER);
        assert_string_equal(c->beneficiary, "alice");
        assert_int_equal(c->amount_minor, 500);
        assert_int_equal(c->rewarded_count, 1);
        assert_false(c->goal_reached);
        char id[RS_UUID_STR_LEN + 1];
        rs_credit_id("default", "bob", "REFERRER", id);
        assert_string_equal(c->id, id);
        /* A second charge has no further effect. */
        pay(f, "bob", "pay-2", 5000, "USD", T0 + 2 * DAY, NULL);
        assert_int_equal(f->st.n_emissions, 1);
        assert_int_equal(f->st.n_rejections, 0);
}

static void window_minimum_currency(void **state)
{
        fx_t *f = *state;
        code(f, "ABCD2345", "alice");
        signup(f, "bob", "ABCD2345", T0, NULL);
        pay(f, "bob", "p1", 1000, "USD", T0 - 1, NULL);            /* before sign-up */
        pay(f, "bob", "p2", 1000, "USD", T0 + 30 * DAY + 1, NULL); /* after window */
        pay(f, "bob", "p3", 999, "USD", T0 + DAY, NULL);
        pay(f, "bob", "p4", 1000, "EUR", T0 + DAY, NULL);
        assert_int_equal(f->st.n_rejections, 4);
        assert_int_equal(f->st.rejections[0].reason, RS_REJ_OUTSIDE_WINDOW);
        assert_int_equal(f->st.rejections[1].reason, RS_REJ_OUTSIDE_WINDOW);
        assert_int_equal(f->st.rejections[2].reason, RS_REJ_BELOW_MINIMUM);
        assert_int_equal(f->st.rejections[3].reason, RS_REJ_CURRENCY_MISMATCH);
        assert_string_equal(f->st.rejections[2].referrer, "alice");
        assert_int_equal(ref(f, "bob")->status, RS_REF_PENDING);
        pay(f, "bob", "p5", 1000, "USD", T0 + 30 * DAY,
            NULL); /* window end is inclusive */
        assert_int_equal(ref(f, "bob")->status, RS_REF_CREDITED);
}

static void charge_without_referral_has_no_intent(void **state)
{
        fx_t *f = *state;
        user(f, "bob", NULL);
        pay(f, "bob", "p1", 5, "EUR", T0, NULL);
        assert_int_equal(f->st.n_rejections, 0);
        assert_int_equal(f->st.n_emissions, 0);
}

static void percent_reward_rounds_down_and_caps(void **state)
{
        fx_t *f = *state;
        rs_program_t p = *f->p;
        p.reward_percent = true;
        p.reward_value = 250; /* 2.5 % */
        assert_int_equal(rs_rules_referrer_reward(&p, 1999), 49);
        p.reward_cap = 40;
        assert_int_equal(rs_rules_referrer_reward(&p, 1999), 40);
        p.reward_cap = RS_INT_NONE;
        p.reward_value = 10000;
        assert_int_equal(rs_rules_referrer_reward(&p, INT64_MAX),
                         INT64_MAX); /* no overflow */
        p.reward_percent = false;
        p.reward_value = 700;
        p.reward_cap = 600;
        assert_int_equal(rs_rules_referrer_reward(&p, 1), 600); /* caps fixed too */
}

static void double_sided_same_count(void **state)
{
        fx_t *f = *state;
        f->p->referee_reward = 300;
        code(f, "ABCD2345", "alice");
        signup(f, "bob", "ABCD2345", T0, NULL);
        pay(f, "bob", "p1", 1000, "USD", T0 + 1, NULL);
        assert_int_equal(f->st.n_emissions, 2);
        rs_credit_t *a = f->st.emissions[0].credit, *b = f->st.emissions[1].credit;
        assert_int_equal(a->role, RS_ROLE_REFERRER);
        assert_int_equal(b->role, RS_ROLE_REFEREE);
        assert_string_equal(b->beneficiary, "bob");
        assert_int_equal(b->amount_minor, 300);
        assert_int_equal(a->rewarded_count, b->rewarded_count);
        assert_string_not_equal(a->id, b->id);
}

static void credit_referee(fx_t *f, const char *referee)
{
        signup(f, referee, "ABCD2345", T0, NULL);
        pay(f, referee, rs_arena_printf(&f->arena, "pay-%s", referee), 1000, "USD",
            T0 + 1, NULL);
}

static void goal_reached_once_at_the_goal(void **state)
{
        fx_t *f = *state;
        code(f, "ABCD2345", "alice");
        const char *who[] = {"u1", "u2", "u3", "u4"};
        for (int i = 0; i < 4; i++)
                credit_referee(f, who[i]);
        assert_int_equal(f->st.n_emissions, 4);
        for (int i = 0; i < 4; i++) {
                assert_int_equal(f->st.emissions[i].credit->rewarded_count, i + 1);
                assert_int_equal(f->st.emissions[i].credit->goal_reached, i + 1 == 3);
        }
        assert_true(rs_state_refstat(&f->st, 1, "alice")->dirty);
}

static void referrer_cap(void **state)
{
        fx_t *f = *state;
        f->p->max_rewarded = 1;
        f->p->referee_reward = 100;
        code(f, "ABCD2345", "alice");
        credit_referee(f, "u1");
        credit_referee(f, "u2");
        expect_rejection(f, RS_REJ_REFERRER_CAP_REACHED);
        /* u2's referral is credited, with the referee's credit only. */
        assert_int_equal(ref(f, "u2")->status, RS_REF_CREDITED);
        assert_int_equal(f->st.n_emissions, 3);
        rs_credit_t *last = f->st.emissions[2].credit;
        assert_int_equal(last->role, RS_ROLE_REFEREE);
        assert_int_equal(last->rewarded_count, 1);
        assert_int_equal(rs_state_refstat(&f->st, 1, "alice")->rewarded_count, 1);
}

static void payment_before_signup(void **state)
{
        fx_t *f = *state;
        code(f, "ABCD2345", "alice");
        pay(f, "bob", "late", 2000, "USD", T0 + 2 * DAY, NULL);
        pay(f, "bob", "early", 1500, "USD", T0 + DAY,
            NULL); /* the earliest is remembered */
        assert_int_equal(f->st.n_emissions, 0);
        assert_string_equal(rs_state_charge(&f->st, "bob")->payment_id, "early");
        signup(f, "bob", "ABCD2345", T0, NULL);
        assert_int_equal(f->st.n_emissions, 1);
        assert_string_equal(ref(f, "bob")->payment_id, "early");
}

static void payment_before_signup_not_qualifying(void **state)
{
        fx_t *f = *state;
        code(f, "ABCD2345", "alice");
        pay(f, "bob", "small", 10, "USD", T0 + DAY, NULL);
        signup(f, "bob", "ABCD2345", T0, NULL);
        expect_rejection(f, RS_REJ_BELOW_MINIMUM);
        assert_string_equal(f->st.rejections[0].event_id, "p-0");
        assert_int_equal(ref(f, "bob")->status, RS_REF_PENDING);
}

/* ---------------------------------------------------------------- refunds */

static void refund_reverses_credits(void **state)
{
        fx_t *f = *state;
        f->p->referee_reward = 100;
        code(f, "ABCD2345", "alice");
        credit_referee(f, "bob");
        pay(f, "bob", "r1", 1000, "USD", T0 + 2, "pay-bob");
        assert_int_equal(ref(f, "bob")->status, RS_REF_REVERSED);
        assert_int_equal(f->st.n_emissions, 4);
        assert_true(f->st.emissions[2].reversal);
        assert_true(f->st.emissions[3].reversal);
        assert_int_equal(f->st.emissions[2].credit->status, RS_CREDIT_REVERSED);
        assert_string_equal(f->st.emissions[2].credit->reversal_event_id, "p-2");
        /* A duplicate refund has no effect; the count stays (monotonic). */
        pay(f, "bob", "r2", 1000, "USD", T0 + 3, "pay-bob");
        assert_int_equal(f->st.n_emissions, 4);
        assert_int_equal(rs_state_refstat(&f->st, 1, "alice")->rewarded_count, 1);
}

static void refund_of_non_qualifying_payment(void **state)
{
        fx_t *f = *state;
        code(f, "ABCD2345", "alice");
        signup(f, "bob", "ABCD2345", T0, NULL);
        pay(f, "bob", "small", 10, "USD", T0 + 1, NULL);
        pay(f, "bob", "r1", 10, "USD", T0 + 2, "small");
        assert_int_equal(f->st.n_emissions, 0);
        assert_int_equal(ref(f, "bob")->status, RS_REF_PENDING);
        assert_true(rs_state_held(&f->st, "bob", "small")->is_new);
}

static void refund_before_charge(void **state)
{
        fx_t *f = *state;
        code(f, "ABCD2345", "alice");
        signup(f, "bob", "ABCD2345", T0, NULL);
        pay(f, "bob", "r1", 1000, "USD", T0 + 2, "pay-1"); /* held */
        assert_int_equal(f->st.n_emissions, 0);
        pay(f, "bob", "pay-1", 1000, "USD", T0 + 1, NULL); /* credited, then reversed */
        assert_int_equal(f->st.n_emissions, 2);
        assert_false(f->st.emissions[0].reversal);
        assert_true(f->st.emissions[1].reversal);
        assert_int_equal(ref(f, "bob")->status, RS_REF_REVERSED);
        assert_true(rs_state_held(&f->st, "bob", "pay-1")->applied);
}

/* ---------------------------------------------------------------- hold */

static void hold_makes_credits_held_and_emits_nothing(void **state)
{
        fx_t *f = *state;
        f->p->hold_days = 14;
        f->p->referee_reward = 200;
        code(f, "ABCD2345", "alice");
        signup(f, "bob", "ABCD2345", T0, NULL);
        pay(f, "bob", "pay-1", 5000, "USD", T0 + DAY, NULL);
        rs_referral_t *r = ref(f, "bob");
        assert_int_equal(r->status, RS_REF_HELD);
        assert_int_equal(r->release_at_ms, T0 + DAY + 14 * DAY);
        assert_int_equal(f->st.n_emissions, 0);
        int n = 0;
        for (rs_credit_t *c = r->credits; c; c = c->next, n++)
                assert_int_equal(c->status, RS_CREDIT_HELD);
        assert_int_equal(n, 2);
        /* Counted at qualification: the cap and the goal see it now. */
        assert_int_equal(rs_state_refstat(&f->st, 1, "alice")->rewarded_count, 1);

        rs_rules_release(&f->st, r);
        assert_int_equal(r->status, RS_REF_CREDITED);
        assert_int_equal(r->released_at_ms, f->st.now_ms);
        assert_int_equal(f->st.n_emissions, 2);
        for (size_t i = 0; i < f->st.n_emissions; i++) {
                assert_true(f->st.emissions[i].event_index == RS_RELEASE_INDEX);
                assert_int_equal(f->st.emissions[i].credit->status, RS_CREDIT_ISSUED);
                assert_int_equal(f->st.emissions[i].credit->released_at_ms, f->st.now_ms);
        }
        rs_rules_release(&f->st, r); /* a second release does nothing */
        assert_int_equal(f->st.n_emissions, 2);
        /* After the release a refund reverses, as without a hold. */
        pay(f, "bob", "ref-1", 5000, "USD", T0 + 20 * DAY, "pay-1");
        assert_int_equal(r->status, RS_REF_REVERSED);
        assert_int_equal(f->st.n_emissions, 4);
        assert_true(f->st.emissions[2].reversal && f->st.emissions[3].reversal);
}

static void refund_during_hold_cancels(void **state)
{
        fx_t *f = *state;
        f->p->hold_days = 14;
        f->p->max_rewarded = 1;
        code(f, "ABCD2345", "alice");
        signup(f, "bob", "ABCD2345", T0, NULL);
        pay(f, "bob", "pay-1", 5000, "USD", T0 + DAY, NULL);
        pay(f, "bob", "ref-1", 5000, "USD", T0 + 2 * DAY, "pay-1");
        rs_referral_t *r = ref(f, "bob");
        assert_int_equal(r->status, RS_REF_CANCELLED);
        assert_int_equal(r->cancelled_at_ms, f->st.now_ms);
        assert_int_equal(r->credits->status, RS_CREDIT_CANCELLED);
        assert_int_equal(f->st.n_emissions, 0);
        rs_rules_release(&f->st, r); /* cancelled: never released */
        assert_int_equal(f->st.n_emissions, 0);
        /* A cancelled referral frees nothing: alice stays at the cap. */
        signup(f, "carol", "ABCD2345", T0, NULL);
        pay(f, "carol", "pay-2", 5000, "USD", T0 + DAY, NULL);
        expect_rejection(f, RS_REJ_REFERRER_CAP_REACHED);
}

static void refund_before_charge_cancels_held(void **state)
{
        fx_t *f = *state;
        f->p->hold_days = 7;
        code(f, "ABCD2345", "alice");
        signup(f, "bob", "ABCD2345", T0, NULL);
        pay(f, "bob", "ref-1", 5000, "USD", T0 + 2 * DAY, "pay-1");
        pay(f, "bob", "pay-1", 5000, "USD", T0 + DAY, NULL);
        assert_int_equal(ref(f, "bob")->status, RS_REF_CANCELLED);
        assert_int_equal(f->st.n_emissions, 0);
}

/* ---------------------------------------------------------------- fraud */

static void shared_payment_method(void **state)
{
        fx_t *f = *state;
        code(f, "ABCD2345", "alice");
        pay_fp(f, "alice", "a-1", 900, "USD", T0, NULL, "card-A");
        signup(f, "bob", "ABCD2345", T0, NULL);
        pay_fp(f, "bob", "pay-1", 5000, "USD", T0 + DAY, NULL, "card-A");
        expect_rejection(f, RS_REJ_SHARED_PAYMENT_METHOD);
        assert_int_equal(ref(f, "bob")->status, RS_REF_PENDING);
        /* Another card, within the window, still qualifies it. */
        pay_fp(f, "bob", "pay-2", 5000, "USD", T0 + 2 * DAY, NULL, "card-B");
        assert_int_equal(ref(f, "bob")->status, RS_REF_CREDITED);
        assert_string_equal(ref(f, "bob")->payment_id, "pay-2");
}

static void shared_payment_method_needs_a_fingerprint_seen_before(void **state)
{
        fx_t *f = *state;
        code(f, "ABCD2345", "alice");
        signup(f, "bob", "ABCD2345", T0, NULL);
        signup(f, "carol", "ABCD2345", T0, NULL);
        /* No fingerprint: no check. */
        pay_fp(f, "bob", "pay-1", 5000, "USD", T0 + DAY, NULL, NULL);
        assert_int_equal(ref(f, "bob")->status, RS_REF_CREDITED);
        /* The referrer uses the card only after carol's charge. */
        pay_fp(f, "carol", "pay-2", 5000, "USD", T0 + DAY, NULL, "card-C");
        pay_fp(f, "alice", "a-1", 900, "USD", T0 + 2 * DAY, NULL, "card-C");
        assert_int_equal(ref(f, "carol")->status, RS_REF_CREDITED);
        /* Before the batch counts as before (-1). */
        signup(f, "dave", "ABCD2345", T0, NULL);
        rs_state_add_fingerprint(&f->st, "alice", "card-D", -1);
        pay_fp(f, "dave", "pay-3", 5000, "USD", T0 + DAY, NULL, "card-D");
        expect_rejection(f, RS_REJ_SHARED_PAYMENT_METHOD);
}

static void velocity_boundaries(void **state)
{
        fx_t *f = *state;
        f->p->max_per_day = 2;
        rs_code_t *c = code(f, "ABCD2345", "alice");
        signup(f, "u1", "ABCD2345", T0, NULL);
        signup(f, "u2", "ABCD2345", T0 + 3600000, NULL);
        assert_non_null(ref(f, "u2")); /* exactly 2 in 24 h: accepted */
        signup(f, "u3", "ABCD2345", T0 + DAY - 1, NULL);
        expect_rejection(f, RS_REJ_VELOCITY_LIMIT); /* the third: rejected */
        assert_null(ref(f, "u3"));
        assert_int_equal(c->uses_count, 2); /* the code's use is not counted */
        /* 24 hours after the first, it is out of the window: (at - 24 h, at]. */
        signup(f, "u4", "ABCD2345", T0 + DAY, NULL);
        assert_non_null(ref(f, "u4"));
        assert_int_equal(f->st.n_rejections, 1);
        /* Referrals after the sign-up's time do not count against it. */
        signup(f, "u5", "ABCD2345", T0 - 3600000, NULL);
        assert_non_null(ref(f, "u5"));
        /* none: no limit */
        f->p->max_per_day = RS_INT_NONE;
        signup(f, "u6", "ABCD2345", T0 + DAY, NULL);
        assert_non_null(ref(f, "u6"));
}

static void velocity_limit_zero_rejects_all(void **state)
{
        fx_t *f = *state;
        f->p->max_per_day = 0;
        code(f, "ABCD2345", "alice");
        signup(f, "bob", "ABCD2345", T0, NULL);
        expect_rejection(f, RS_REJ_VELOCITY_LIMIT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
            T(signup_creates_pending_referral),
            T(blank_code_is_no_intent),
            T(unknown_code),
            T(malformed_code_is_unknown),
            T(paused_and_revoked_codes),
            T(expired_code),
            T(exhausted_code),
            T(max_uses_zero_is_not_unlimited),
            T(inactive_program),
            T(self_referral_by_id_and_email),
            T(already_referred),
            T(two_cycle),
            T(qualifying_charge_credits_referrer),
            T(window_minimum_currency),
            T(charge_without_referral_has_no_intent),
            T(percent_reward_rounds_down_and_caps),
            T(double_sided_same_count),
            T(goal_reached_once_at_the_goal),
            T(referrer_cap),
            T(payment_before_signup),
            T(payment_before_signup_not_qualifying),
            T(refund_reverses_credits),
            T(refund_of_non_qualifying_payment),
            T(refund_before_charge),
            T(hold_makes_credits_held_and_emits_nothing),
            T(refund_during_hold_cancels),
            T(refund_before_charge_cancels_held),
            T(shared_payment_method),
            T(shared_payment_method_needs_a_fingerprint_seen_before),
            T(velocity_boundaries),
            T(velocity_limit_zero_rejects_all),
#undef T
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
