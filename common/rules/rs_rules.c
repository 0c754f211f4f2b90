/* docs/rules.md: sign-up attribution, payment qualification, rewards, refunds. */
#include "rs_rules.h"
#include "rs_codes.h"
#include "rs_ids.h"

#include <string.h>

/* ---------------------------------------------------------------- outputs */

static void reject(rs_state_t *st, const rs_rejection_t *r)
{
        if (st->n_rejections == st->cap_rejections) {
                st->cap_rejections = st->cap_rejections ? st->cap_rejections * 2 : 16;
                st->rejections = rs_realloc(st->rejections,
                                            st->cap_rejections * sizeof(*st->rejections));
        }
        st->rejections[st->n_rejections++] = *r;
}

static void emit(rs_state_t *st, size_t event_index, rs_credit_t *c, bool reversal)
{
        if (st->n_emissions == st->cap_emissions) {
                st->cap_emissions = st->cap_emissions ? st->cap_emissions * 2 : 16;
                st->emissions =
                    rs_realloc(st->emissions, st->cap_emissions * sizeof(*st->emissions));
        }
        st->emissions[st->n_emissions++] = (rs_emission_t){
            .event_index = event_index, .reversal = reversal, .credit = c};
}

/* ---------------------------------------------------------------- rewards */

int64_t rs_rules_referrer_reward(const rs_program_t *p, int64_t payment_minor)
{
        int64_t amount = p->reward_value;
        if (p->reward_percent) {
                /* 128-bit product: amount_minor may be any non-negative int64. */
                __int128 v = (__int128)payment_minor * p->reward_value / 10000;
                amount = v > INT64_MAX ? INT64_MAX : (int64_t)v;
        }
        if (p->reward_cap != RS_INT_NONE && amount > p->reward_cap)
                amount = p->reward_cap;
        return amount;
}

static rs_credit_t *new_credit(rs_state_t *st, rs_referral_t *r, const rs_program_t *p,
                               rs_role_t role, int64_t amount,
                               const char *source_event_id)
{
        rs_credit_t *c = rs_arena_alloc(st->arena, sizeof(*c));
        char *id = rs_arena_alloc(st->arena, RS_UUID_STR_LEN + 1);
        rs_credit_id(p->key, r->referee, rs_role_name(role), id);
        *c = (rs_credit_t){
            .id = id,
            .referral = r,
            .role = role,
            .beneficiary = role == RS_ROLE_REFERRER ? r->referrer : r->referee,
            .amount_minor = amount,
            .currency = p->currency,
            .status = p->hold_days > 0 ? RS_CREDIT_HELD : RS_CREDIT_ISSUED,
            .source_event_id = source_event_id,
            .created_at_ms = st->now_ms,
            .released_at_ms = RS_TS_NONE,
            .is_new = true,
        };
        rs_state_add_credit(c);
        return c;
}

/* The qualifying charge of a pending referral: issues the referrer credit
 * (unless the referrer is at the program's cap) and the referee credit of a
 * double-sided program; with a hold, the credits are made held and nothing is
 * emitted until their release (docs/rules.md §8). Caps and goals count the
 * referral now either way. */
static void credit_referral(rs_state_t *st, size_t idx, rs_referral_t *r,
                            const rs_program_t *p, const rs_charge_t *ch)
{
        bool hold = p->hold_days > 0;
        r->status = hold ? RS_REF_HELD : RS_REF_CREDITED;
        if (hold)
                r->release_at_ms = ch->occurred_at_ms + (int64_t)p->hold_days * RS_DAY_MS;
        r->payment_id = ch->payment_id;
        r->payment_event_id = ch->event_id;
        r->qualified_at_ms = ch->occurred_at_ms;
        r->dirty = true;

        rs_refstat_t *stat = rs_state_refstat_get(st, p->id, r->referrer);
        rs_credit_t *referrer_credit = NULL;
        if (p->max_rewarded != RS_INT_NONE && stat->rewarded_count >= p->max_rewarded) {
                reject(st, &(rs_rejection_t){
                               .event_index = idx,
                               .event_type = RS_EV_PAYMENT,
                               .event_id = ch->event_id,
                               .user_id = r->referee,
                               .occurred_at_ms = ch->occurred_at_ms,
                               .reason = RS_REJ_REFERRER_CAP_REACHED,
                               .code = r->code,
                               .program_id = p->id,
                               .referrer = r->referrer,
                               .detail = rs_arena_printf(
                                   st->arena,
                                   "referrer already has %d rewarded referrals "
                                   "(program cap %d)",
                                   stat->rewarded_count, p->max_rewarded),
                           });
        } else {
                stat->rewarded_count++;
                stat->dirty = true;
                referrer_credit = new_credit(
                    st, r, p, RS_ROLE_REFERRER,
                    rs_rules_referrer_reward(p, ch->amount_minor), ch->event_id);
                referrer_credit->goal_reached = stat->rewarded_count == p->goal;
        }
        rs_credit_t *referee_credit = NULL;
        if (p->referee_reward != RS_INT_NONE)
                referee_credit = new_credit(st, r, p, RS_ROLE_REFEREE, p->referee_reward,
                                            ch->event_id);
        /* Both credits of one referral carry the same count. */
        if (referrer_credit) {
                referrer_credit->rewarded_count = stat->rewarded_count;
                if (!hold)
                        emit(st, idx, referrer_credit, false);
        }
        if (referee_credit) {
                referee_credit->rewarded_count = stat->rewarded_count;
                if (!hold)
                        emit(st, idx, referee_credit, false);
        }
}

void rs_rules_release(rs_state_t *st, rs_referral_t *r)
{
        if (r->status != RS_REF_HELD)
                return;
        r->status = RS_REF_CREDITED;
        r->released_at_ms = st->now_ms;
        r->dirty = true;
        for (rs_credit_t *c = r->credits; c; c = c->next) {
                if (c->status != RS_CREDIT_HELD)
                        continue;
                c->status = RS_CREDIT_ISSUED;
                c->released_at_ms = st->now_ms;
                c->dirty = true;
                emit(st, RS_RELEASE_INDEX, c, false);
        }
}

/* ---------------------------------------------------------------- refunds */

/* A refund of the qualifying payment: reverses issued credits (published),
 * cancels held ones (nothing was published, nothing is). */
static void reverse_referral(rs_state_t *st, size_t idx, rs_referral_t *r,
                             const char *event_id)
{
        bool held = r->status == RS_REF_HELD;
        if (held) {
                r->status = RS_REF_CANCELLED;
                r->cancelled_at_ms = st->now_ms;
                r->cancel_event_id = event_id;
        } else {
                r->status = RS_REF_REVERSED;
                r->reversed_at_ms = st->now_ms;
                r->reversal_event_id = event_id;
        }
        r->dirty = true;
        for (rs_credit_t *c = r->credits; c; c = c->next) {
                if (c->status != (held ? RS_CREDIT_HELD : RS_CREDIT_ISSUED))
                        continue;
                c->status = held ? RS_CREDIT_CANCELLED : RS_CREDIT_REVERSED;
                c->reversed_at_ms = st->now_ms;
                c->reversal_event_id = event_id;
                c->dirty = true;
                if (!held)
                        emit(st, idx, c, true);
        }
}

/* A referral a refund of its qualifying payment still changes. */
static bool refundable(const rs_referral_t *r)
{
        return r->status == RS_REF_CREDITED || r->status == RS_REF_HELD;
}

/* A refund held because its charge had not qualified: applies it now if the
 * charge just credited a referral of this user. */
static void apply_held_refund(rs_state_t *st, size_t idx, const char *user_id,
                              const char *payment_id)
{
        rs_held_refund_t *h = rs_state_held(st, user_id, payment_id);
        if (!h || h->applied)
                return;
        bool used = false;
        for (rs_referral_t *r = rs_state_referrals_of(st, user_id); r;
             r = r->next_of_referee) {
                if (refundable(r) && strcmp(r->payment_id, payment_id) == 0) {
                        reverse_referral(st, idx, r, h->event_id);
                        used = true;
                }
        }
        if (used)
                h->applied = true;
}

static void refund(rs_state_t *st, const rs_event_t *ev, size_t idx)
{
        bool matched = false;
        for (rs_referral_t *r = rs_state_referrals_of(st, ev->user_id); r;
             r = r->next_of_referee) {
                if (!r->payment_id || strcmp(r->payment_id, ev->refund_of) != 0)
                        continue;
                matched = true;
                if (refundable(r))
                        reverse_referral(st, idx, r, ev->event_id);
                /* already reversed or cancelled: a duplicate or partial
                 * refund, no effect */
        }
        if (matched || rs_state_held(st, ev->user_id, ev->refund_of))
                return;
        /* The charge may not have been processed yet (or never qualifies, in
         * which case holding it has no effect): keep the refund. */
        rs_held_refund_t *h = rs_arena_alloc(st->arena, sizeof(*h));
        *h = (rs_held_refund_t){.user_id = ev->user_id,
                                .refund_of = ev->refund_of,
                                .event_id = ev->event_id,
                                .occurred_at_ms = ev->occurred_at_ms,
                                .is_new = true};
        rs_state_add_held(st, h);
}

/* ---------------------------------------------------------------- charges */

/* Why a charge does not qualify a pending referral, or -1 if it does. */
static int charge_verdict(const rs_referral_t *r, const rs_program_t *p,
                          const rs_charge_t *ch, const char **detail, rs_arena_t *a)
{
        int64_t window_ms = (int64_t)p->window_days * RS_DAY_MS;
        if (ch->occurred_at_ms < r->signup_at_ms ||
            ch->occurred_at_ms - r->signup_at_ms > window_ms) {
                *detail = rs_arena_printf(
                    a, "payment %s is not within %d days after the sign-up",
                    ch->payment_id, p->window_days);
                return RS_REJ_OUTSIDE_WINDOW;
        }
        if (strcmp(ch->currency, p->currency) != 0) {
                *detail = rs_arena_printf(a, "payment currency %s, program currency %s",
                                          ch->currency, p->currency);
                return RS_REJ_CURRENCY_MISMATCH;
        }
        if (ch->amount_minor < p->min_payment) {
                *detail = rs_arena_printf(a, "payment %lld below the minimum %lld",
                                          (long long)ch->amount_minor,
                                          (long long)p->min_payment);
                return RS_REJ_BELOW_MINIMUM;
        }
        return -1;
}

/* Evaluates one charge against one pending referral: credits it, or records
 * why not. A charge paid with a payment method the referrer used before this
 * event would qualify it but is rejected (docs/rules.md §9). */
static void try_qualify(rs_state_t *st, size_t idx, rs_referral_t *r,
                        const rs_charge_t *ch)
{
        const rs_program_t *p = rs_state_program(st, r->program_id);
        if (!p || r->status != RS_REF_PENDING)
                return;
        const char *detail = NULL;
        int why = charge_verdict(r, p, ch, &detail, st->arena);
        if (why < 0 && ch->fingerprint &&
            rs_state_fingerprint_before(st, r->referrer, ch->fingerprint, (int64_t)idx)) {
                why = RS_REJ_SHARED_PAYMENT_METHOD;
                detail = rs_arena_printf(st->arena,
                                         "payment %s uses a payment method the referrer "
                                         "%s has paid with",
                                         ch->payment_id, r->referrer);
        }
        if (why < 0) {
                credit_referral(st, idx, r, p, ch);
                apply_held_refund(st, idx, r->referee, ch->payment_id);
                return;
        }
        reject(st, &(rs_rejection_t){.event_index = idx,
                                     .event_type = RS_EV_PAYMENT,
                                     .event_id = ch->event_id,
                                     .user_id = r->referee,
                                     .occurred_at_ms = ch->occurred_at_ms,
                                     .reason = (rs_reason_t)why,
                                     .code = r->code,
                                     .program_id = p->id,
                                     .referrer = r->referrer,
                                     .detail = detail});
}

static void remember_charge(rs_state_t *st, const rs_event_t *ev, const rs_charge_t *ch)
{
        rs_charge_t *first = rs_state_charge(st, ev->user_id);
        if (first && first->occurred_at_ms <= ev->occurred_at_ms)
                return;
        bool added = first == NULL;
        if (added)
                first = rs_arena_alloc(st->arena, sizeof(*first));
        *first = *ch;
        first->dirty = true;
        if (added)
                rs_state_add_charge(st, first);
}

static void charge(rs_state_t *st, const rs_event_t *ev, size_t idx)
{
        rs_charge_t ch = {.user_id = ev->user_id,
                          .payment_id = ev->payment_id,
                          .event_id = ev->event_id,
                          .amount_minor = ev->amount_minor,
                          .occurred_at_ms = ev->occurred_at_ms,
                          .fingerprint = ev->payment_fingerprint};
        memcpy(ch.currency, ev->currency, sizeof(ch.currency));
        remember_charge(st, ev, &ch);
        for (rs_referral_t *r = rs_state_referrals_of(st, ev->user_id); r;
             r = r->next_of_referee)
                try_qualify(st, idx, r, &ch);
        if (ch.fingerprint)
                rs_state_add_fingerprint(st, ev->user_id, ch.fingerprint, (int64_t)idx);
}

/* ---------------------------------------------------------------- sign-ups */

typedef struct signup_ctx {
        rs_state_t *st;
        const rs_event_t *ev;
        size_t idx;
        const char *code; /* normalised */
        rs_code_t *c;
        rs_program_t *p;
} signup_ctx_t;

static bool signup_reject(signup_ctx_t *x, rs_reason_t why, const char *detail)
{
        reject(x->st, &(rs_rejection_t){.event_index = x->idx,
                                        .event_type = RS_EV_SIGNUP,
                                        .event_id = x->ev->event_id,
                                        .user_id = x->ev->user_id,
                                        .occurred_at_ms = x->ev->occurred_at_ms,
                                        .reason = why,
                                        .code = x->code,
                                        .program_id = x->p ? x->p->id : 0,
                                        .referrer = x->c ? x->c->owner : NULL,
                                        .detail = detail});
        return false;
}

/* The code itself: exists, active, not expired, not used up. */
static bool check_code(signup_ctx_t *x)
{
        rs_code_t *c = x->c;
        int64_t at = x->ev->occurred_at_ms;
        if (!c)
                return signup_reject(x, RS_REJ_UNKNOWN_CODE, "no such referral code");
        if (c->status == RS_CODE_PAUSED || c->status == RS_CODE_REVOKED)
                return signup_reject(x, RS_REJ_CODE_INACTIVE,
                                     rs_arena_printf(x->st->arena, "code is %s",
                                                     rs_code_status_name(c->status)));
        /* Expiry is judged at the event's time, so a late event from before the
         * expiry still counts even after the status became 'expired'. */
        if (c->status == RS_CODE_EXPIRED && c->expires_at_ms == RS_TS_NONE)
                return signup_reject(x, RS_REJ_CODE_EXPIRED, "code is expired");
        if (c->expires_at_ms != RS_TS_NONE && c->expires_at_ms <= at) {
                if (c->status == RS_CODE_ACTIVE && c->expires_at_ms <= x->st->now_ms) {
                        c->status = RS_CODE_EXPIRED;
                        c->dirty = true;
                }
                return signup_reject(x, RS_REJ_CODE_EXPIRED,
                                     "code expired before the sign-up");
        }
        if (c->status == RS_CODE_EXHAUSTED ||
            (c->max_uses != RS_INT_NONE && c->uses_count >= c->max_uses))
                return signup_reject(x, RS_REJ_CODE_EXHAUSTED,
                                     rs_arena_printf(x->st->arena,
                                                     "code used %d of %d times",
                                                     c->uses_count, c->max_uses));
        return true;
}

static bool check_program(signup_ctx_t *x)
{
        const rs_program_t *p = x->p;
        int64_t at = x->ev->occurred_at_ms;
        if (!p || p->status != RS_PROG_ACTIVE)
                return signup_reject(x, RS_REJ_PROGRAM_INACTIVE,
                                     p ? rs_arena_printf(x->st->arena, "program %s is %s",
                                                         p->key,
                                                         rs_prog_status_name(p->status))
                                       : "program not found");
        if ((p->starts_at_ms != RS_TS_NONE && at < p->starts_at_ms) ||
            (p->ends_at_ms != RS_TS_NONE && at >= p->ends_at_ms))
                return signup_reject(x, RS_REJ_PROGRAM_INACTIVE,
                                     rs_arena_printf(x->st->arena,
                                                     "sign-up outside program %s's dates",
                                                     p->key));
        return true;
}

/* The people: not oneself, not referred before, not a 2-cycle. */
static bool check_people(signup_ctx_t *x, const char *referee_hash)
{
        const rs_event_t *ev = x->ev;
        const char *owner = x->c->owner;
        if (strcmp(owner, ev->user_id) == 0)
                return signup_reject(x, RS_REJ_SELF_REFERRAL,
                                     "the code belongs to the referee");
        rs_user_t *ou = rs_state_user(x->st, owner);
        if (referee_hash && ou && ou->email_hash &&
            strcmp(ou->email_hash, referee_hash) == 0)
                return signup_reject(x, RS_REJ_SELF_REFERRAL,
                                     "referrer and referee have the same email_hash");
        for (rs_referral_t *r = rs_state_referrals_of(x->st, ev->user_id); r;
             r = r->next_of_referee) {
                if (r->program_id == x->p->id)
                        return signup_reject(
                            x, RS_REJ_ALREADY_REFERRED,
                            rs_arena_printf(x->st->arena, "already referred by code %s",
                                            r->code));
        }
        for (rs_referral_t *r = rs_state_referrals_of(x->st, owner); r;
             r = r->next_of_referee) {
                if (r->program_id == x->p->id && strcmp(r->referrer, ev->user_id) == 0)
                        return signup_reject(x, RS_REJ_REFERRAL_CYCLE,
                                             "the referrer was referred by the referee");
        }
        return true;
}

/* Velocity (docs/rules.md §9): the referrer's referrals in the program in the
 * 24 hours before this sign-up, (at - 24 h, at], against the program's limit. */
static bool check_velocity(signup_ctx_t *x)
{
        const rs_program_t *p = x->p;
        if (p->max_per_day == RS_INT_NONE)
                return true;
        int64_t at = x->ev->occurred_at_ms;
        const rs_refstat_t *s = rs_state_refstat(x->st, p->id, x->c->owner);
        int32_t n = 0;
        for (size_t i = 0; s && i < s->n_recent; i++)
                n += s->recent[i] > at - RS_DAY_MS && s->recent[i] <= at;
        if (n < p->max_per_day)
                return true;
        return signup_reject(x, RS_REJ_VELOCITY_LIMIT,
                             rs_arena_printf(x->st->arena,
                                             "referrer %s has %d referrals in program %s "
                                             "in the 24 hours before this sign-up "
                                             "(limit %d)",
                                             x->c->owner, n, p->key, p->max_per_day));
}

static rs_referral_t *create_referral(signup_ctx_t *x)
{
        rs_state_t *st = x->st;
        rs_referral_t *r = rs_arena_alloc(st->arena, sizeof(*r));
        char *id = rs_arena_alloc(st->arena, RS_UUID_STR_LEN + 1);
        rs_referral_id(x->p->key, x->ev->user_id, id);
        *r = (rs_referral_t){.id = id,
                             .program_id = x->p->id,
                             .code = x->c->code,
                             .referrer = x->c->owner,
                             .referee = x->ev->user_id,
                             .status = RS_REF_PENDING,
                             .signup_event_id = x->ev->event_id,
                             .signup_at_ms = x->ev->occurred_at_ms,
                             .qualified_at_ms = RS_TS_NONE,
                             .reversed_at_ms = RS_TS_NONE,
                             .release_at_ms = RS_TS_NONE,
                             .released_at_ms = RS_TS_NONE,
                             .cancelled_at_ms = RS_TS_NONE,
                             .is_new = true};
        rs_state_add_referral(st, r);
        if (x->p->max_per_day != RS_INT_NONE)
                rs_refstat_add_recent(st, rs_state_refstat_get(st, x->p->id, r->referrer),
                                      r->signup_at_ms);
        x->c->uses_count++;
        if (x->c->max_uses != RS_INT_NONE && x->c->uses_count >= x->c->max_uses)
                x->c->status = RS_CODE_EXHAUSTED;
        x->c->dirty = true;
        return r;
}

static rs_user_t *remember_user(rs_state_t *st, const rs_event_t *ev)
{
        rs_user_t *u = rs_state_user(st, ev->user_id);
        if (!u) {
                u = rs_arena_alloc(st->arena, sizeof(*u));
                *u =
                    (rs_user_t){.user_id = ev->user_id, .first_charge_at_ms = RS_TS_NONE};
                rs_state_add_user(st, u);
        }
        if (!u->signed_up) {
                u->signed_up = true;
                u->signup_event_id = ev->event_id;
                u->signed_up_at_ms = ev->occurred_at_ms;
                u->dirty = true;
        }
        if (!u->email_hash && ev->email_hash && *ev->email_hash) {
                u->email_hash = ev->email_hash;
                u->dirty = true;
        }
        return u;
}

static void signup(rs_state_t *st, const rs_event_t *ev, size_t idx)
{
        rs_user_t *u = remember_user(st, ev);
        if (!ev->referral_code)
                return;
        char norm[RS_REFERRAL_CODE_INPUT_MAX + 1];
        rs_code_normalize(ev->referral_code, norm, sizeof(norm));
        if (!*norm)
                return; /* a blank code is no referral intent */
        signup_ctx_t x = {.st = st, .ev = ev, .idx = idx};
        /* Rejections keep at most 64 bytes of a code that cannot exist, cut at a
         * character boundary (Postgres refuses a split UTF-8 sequence). */
        bool valid = rs_code_valid(norm);
        x.code = rs_arena_strndup(st->arena, norm,
                                  valid ? strlen(norm) : rs_utf8_prefix(norm, 64));
        x.c = valid ? rs_state_code(st, norm) : NULL;
        x.p = x.c ? rs_state_program(st, x.c->program_id) : NULL;
        const char *hash =
            ev->email_hash && *ev->email_hash ? ev->email_hash : u->email_hash;
        if (!check_code(&x) || !check_program(&x) || !check_people(&x, hash) ||
            !check_velocity(&x))
                return;
        rs_referral_t *r = create_referral(&x);
        /* The referee may have paid before this sign-up was processed. */
        rs_charge_t *ch = rs_state_charge(st, ev->user_id);
        if (ch)
                try_qualify(st, idx, r, ch);
}

void rs_rules_apply(rs_state_t *st, const rs_event_t *ev, size_t event_index)
{
        if (ev->type == RS_EV_SIGNUP)
                signup(st, ev, event_index);
        else if (ev->kind == RS_PAY_CHARGE)
                charge(st, ev, event_index);
        else
                refund(st, ev, event_index);
}
