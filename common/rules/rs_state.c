/* In-memory state of one batch: the rows rs_rules_apply() reads and writes. */
#include "rs_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const reason_names[RS_REJ__COUNT] = {
    "UNKNOWN_CODE",          "CODE_INACTIVE",     "CODE_EXPIRED",
    "CODE_EXHAUSTED",        "PROGRAM_INACTIVE",  "SELF_REFERRAL",
    "ALREADY_REFERRED",      "REFERRAL_CYCLE",    "OUTSIDE_WINDOW",
    "BELOW_MINIMUM",         "CURRENCY_MISMATCH", "REFERRER_CAP_REACHED",
    "SHARED_PAYMENT_METHOD", "VELOCITY_LIMIT",
};
static const char *const prog_status_names[] = {"active", "paused", "ended"};
static const char *const code_status_names[] = {"active", "paused", "revoked", "expired",
                                                "exhausted"};
static const char *const ref_status_names[] = {"pending", "held", "credited", "reversed",
                                               "cancelled"};
static const char *const credit_status_names[] = {"held", "issued", "reversed",
                                                  "cancelled"};

const char *rs_reason_name(rs_reason_t r)
{
        return r < RS_REJ__COUNT ? reason_names[r] : "UNKNOWN";
}

const char *rs_prog_status_name(rs_prog_status_t s)
{
        return prog_status_names[s];
}

const char *rs_code_status_name(rs_code_status_t s)
{
        return code_status_names[s];
}

const char *rs_ref_status_name(rs_ref_status_t s)
{
        return ref_status_names[s];
}

const char *rs_credit_status_name(rs_credit_status_t s)
{
        return credit_status_names[s];
}

static bool parse_name(const char *const *names, size_t n, const char *s, int *out)
{
        for (size_t i = 0; i < n; i++) {
                if (strcmp(names[i], s) == 0) {
                        *out = (int)i;
                        return true;
                }
        }
        return false;
}

bool rs_prog_status_parse(const char *s, rs_prog_status_t *out)
{
        int v;
        if (!parse_name(prog_status_names, RS_ARRAY_SIZE(prog_status_names), s, &v))
                return false;
        *out = (rs_prog_status_t)v;
        return true;
}

bool rs_code_status_parse(const char *s, rs_code_status_t *out)
{
        int v;
        if (!parse_name(code_status_names, RS_ARRAY_SIZE(code_status_names), s, &v))
                return false;
        *out = (rs_code_status_t)v;
        return true;
}

bool rs_ref_status_parse(const char *s, rs_ref_status_t *out)
{
        int v;
        if (!parse_name(ref_status_names, RS_ARRAY_SIZE(ref_status_names), s, &v))
                return false;
        *out = (rs_ref_status_t)v;
        return true;
}

bool rs_credit_status_parse(const char *s, rs_credit_status_t *out)
{
        int v;
        if (!parse_name(credit_status_names, RS_ARRAY_SIZE(credit_status_names), s, &v))
                return false;
        *out = (rs_credit_status_t)v;
        return true;
}

void rs_state_init(rs_state_t *st, rs_arena_t *arena, int64_t now_ms)
{
        memset(st, 0, sizeof(*st));
        st->arena = arena;
        st->now_ms = now_ms;
        rs_map_init(&st->programs);
        rs_map_init(&st->codes);
        rs_map_init(&st->users);
        rs_map_init(&st->referrals);
        rs_map_init(&st->refstats);
        rs_map_init(&st->charges);
        rs_map_init(&st->held);
        rs_map_init(&st->fingerprints);
}

void rs_state_free(rs_state_t *st)
{
        rs_map_free(&st->programs);
        rs_map_free(&st->codes);
        rs_map_free(&st->users);
        rs_map_free(&st->referrals);
        rs_map_free(&st->refstats);
        rs_map_free(&st->charges);
        rs_map_free(&st->held);
        rs_map_free(&st->fingerprints);
        free(st->rejections);
        free(st->emissions);
        st->rejections = NULL;
        st->emissions = NULL;
}

static const char *id_key(rs_state_t *st, int64_t id)
{
        return rs_arena_printf(st->arena, "%lld", (long long)id);
}

rs_program_t *rs_state_program(rs_state_t *st, int64_t id)
{
        char key[24];
        snprintf(key, sizeof(key), "%lld", (long long)id);
        return rs_map_get(&st->programs, key);
}

void rs_state_add_program(rs_state_t *st, rs_program_t *p)
{
        rs_map_put(&st->programs, id_key(st, p->id), p);
}

rs_code_t *rs_state_code(rs_state_t *st, const char *code)
{
        return rs_map_get(&st->codes, code);
}

void rs_state_add_code(rs_state_t *st, rs_code_t *c)
{
        rs_map_put(&st->codes, c->code, c);
}

rs_user_t *rs_state_user(rs_state_t *st, const char *user_id)
{
        return rs_map_get(&st->users, user_id);
}

void rs_state_add_user(rs_state_t *st, rs_user_t *u)
{
        rs_map_put(&st->users, u->user_id, u);
}

rs_referral_t *rs_state_referrals_of(rs_state_t *st, const char *referee)
{
        return rs_map_get(&st->referrals, referee);
}

void rs_state_add_referral(rs_state_t *st, rs_referral_t *r)
{
        r->next_of_referee = rs_map_get(&st->referrals, r->referee);
        rs_map_put(&st->referrals, r->referee, r);
}

void rs_state_add_credit(rs_credit_t *c)
{
        c->next = c->referral->credits;
        c->referral->credits = c;
}

static const char *refstat_key(int64_t program_id, const char *referrer, char *buf,
                               size_t size)
{
        snprintf(buf, size, "%lld/%s", (long long)program_id, referrer);
        return buf;
}

rs_refstat_t *rs_state_refstat(rs_state_t *st, int64_t program_id, const char *referrer)
{
        char key[256];
        return rs_map_get(&st->refstats,
                          refstat_key(program_id, referrer, key, sizeof(key)));
}

void rs_state_add_refstat(rs_state_t *st, rs_refstat_t *s)
{
        char key[256];
        refstat_key(s->program_id, s->referrer, key, sizeof(key));
        rs_map_put(&st->refstats, rs_arena_strdup(st->arena, key), s);
}

rs_refstat_t *rs_state_refstat_get(rs_state_t *st, int64_t program_id,
                                   const char *referrer)
{
        rs_refstat_t *s = rs_state_refstat(st, program_id, referrer);
        if (!s) {
                s = rs_arena_alloc(st->arena, sizeof(*s));
                *s = (rs_refstat_t){.program_id = program_id,
                                    .referrer = rs_arena_strdup(st->arena, referrer)};
                rs_state_add_refstat(st, s);
        }
        return s;
}

rs_charge_t *rs_state_charge(rs_state_t *st, const char *user_id)
{
        return rs_map_get(&st->charges, user_id);
}

void rs_state_add_charge(rs_state_t *st, rs_charge_t *c)
{
        rs_map_put(&st->charges, c->user_id, c);
}

static const char *held_key(const char *user_id, const char *refund_of, char *buf,
                            size_t size)
{
        snprintf(buf, size, "%s\x1f%s", user_id, refund_of);
        return buf;
}

rs_held_refund_t *rs_state_held(rs_state_t *st, const char *user_id,
                                const char *refund_of)
{
        char key[300];
        return rs_map_get(&st->held, held_key(user_id, refund_of, key, sizeof(key)));
}

void rs_state_add_held(rs_state_t *st, rs_held_refund_t *h)
{
        char key[300];
        held_key(h->user_id, h->refund_of, key, sizeof(key));
        rs_map_put(&st->held, rs_arena_strdup(st->arena, key), h);
}

void rs_state_add_fingerprint(rs_state_t *st, const char *user_id,
                              const char *fingerprint, int64_t index)
{
        char key[300];
        held_key(user_id, fingerprint, key, sizeof(key));
        rs_fpseen_t *f = rs_map_get(&st->fingerprints, key);
        if (f) {
                f->first_index = RS_MIN(f->first_index, index);
                return;
        }
        f = rs_arena_alloc(st->arena, sizeof(*f));
        f->first_index = index;
        rs_map_put(&st->fingerprints, rs_arena_strdup(st->arena, key), f);
}

bool rs_state_fingerprint_before(rs_state_t *st, const char *user_id,
                                 const char *fingerprint, int64_t index)
{
        char key[300];
        const rs_fpseen_t *f = rs_map_get(
            &st->fingerprints, held_key(user_id, fingerprint, key, sizeof(key)));
        return f && f->first_index < index;
}

void rs_refstat_add_recent(rs_state_t *st, rs_refstat_t *s, int64_t at_ms)
{
        if (s->n_recent == s->cap_recent) {
                size_t cap = s->cap_recent ? s->cap_recent * 2 : 8;
                int64_t *grown = rs_arena_alloc(st->arena, cap * sizeof(*grown));
                if (s->n_recent)
                        memcpy(grown, s->recent, s->n_recent * sizeof(*grown));
                s->recent = grown;
                s->cap_recent = cap;
        }
        s->recent[s->n_recent++] = at_ms;
}
