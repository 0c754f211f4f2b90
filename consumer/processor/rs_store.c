#include "rs_store.h"
#include "rs_pgrows.h"
#include "rs_store_sql.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- strset */

void rs_strset_init(rs_strset_t *s)
{
        memset(s, 0, sizeof(*s));
        rs_map_init(&s->map);
}

void rs_strset_free(rs_strset_t *s)
{
        rs_map_free(&s->map);
        free(s->items);
        memset(s, 0, sizeof(*s));
}

bool rs_strset_add(rs_strset_t *s, const char *v)
{
        /* One probe: put keeps the first copy's key and says it was there. */
        if (!v || rs_map_put(&s->map, v, (void *)v))
                return false;
        if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 32;
                s->items = rs_realloc(s->items, s->cap * sizeof(*s->items));
        }
        s->items[s->n++] = v;
        return true;
}

bool rs_strset_has(const rs_strset_t *s, const char *v)
{
        return rs_map_get(&s->map, v) != NULL;
}

const char *rs_strset_literal(const rs_strset_t *s, rs_pgarr_t *arr)
{
        rs_pgarr_reset(arr);
        for (size_t i = 0; i < s->n; i++)
                rs_pgarr_text(arr, s->items[i]);
        return rs_pgarr_get(arr);
}

/* ---------------------------------------------------------------- rounds */

/* The loads go in rounds: the statements of a round do not need each
 * other's results, so they are sent in one pipeline (one round trip) and
 * executed in order; each result is then handed to its taker. */
#define ROUND_MAX 8
typedef void take_fn(rs_state_t *st, const PGresult *res);

typedef struct round {
        rs_pg_t *pg;
        rs_state_t *st;
        take_fn *take[ROUND_MAX];
        int n;
        bool ok, began; /* began: in pipeline mode (at the first statement) */
        char *errstr;
        size_t errstr_size;
} round_t;

static void round_begin(round_t *r, rs_pg_t *pg, rs_state_t *st, char *errstr,
                        size_t errstr_size)
{
        *r = (round_t){
            .pg = pg, .st = st, .ok = true, .errstr = errstr, .errstr_size = errstr_size};
}

/* Whether another statement may be queued (entering pipeline mode). */
static bool round_room(round_t *r)
{
        if (r->ok && r->n == ROUND_MAX) {
                snprintf(r->errstr, r->errstr_size, "too many loads in one round");
                r->ok = false;
        }
        if (r->ok && !r->began)
                r->ok = r->began = rs_pg_pipeline_begin(r->pg, r->errstr, r->errstr_size);
        return r->ok;
}

static void round_sent(round_t *r, int at, take_fn *take)
{
        if (at < 0)
                r->ok = false;
        else
                r->take[r->n++] = take;
}

static void round_params(round_t *r, const char *sql, int n, const char *const *params,
                         take_fn *take)
{
        if (round_room(r))
                round_sent(r,
                           rs_pg_send(r->pg, sql, n, params, r->errstr, r->errstr_size),
                           take);
}

/* sql with one array parameter built from a set. */
static void round_set(round_t *r, const char *sql, const rs_strset_t *set, take_fn *take)
{
        rs_pgarr_t arr;
        rs_pgarr_init(&arr);
        const char *params[] = {rs_strset_literal(set, &arr)};
        round_params(r, sql, 1, params, take);
        rs_pgarr_free(&arr);
}

static void round_rows(round_t *r, const char *sql, rs_pgrows_t *rows,
                       const char *const *extra, int nextra, take_fn *take)
{
        if (round_room(r))
                round_sent(r,
                           rs_pgrows_send(r->pg, sql, rows, extra, nextra, r->errstr,
                                          r->errstr_size),
                           take);
}

/* Sends the round's statements (if any) and hands each result to its
 * taker; the first error is the round's. */
static bool round_end(round_t *r)
{
        if (!r->began)
                return r->ok;
        PGresult *res[ROUND_MAX] = {NULL};
        char ignored[256];
        bool ok = rs_pg_pipeline_end_all(r->pg, res, r->ok ? r->errstr : ignored,
                                         r->ok ? r->errstr_size : sizeof(ignored)) &&
                  r->ok;
        for (int i = 0; i < r->n; i++) {
                if (ok && r->take[i])
                        r->take[i](r->st, res[i]);
                PQclear(res[i]);
        }
        return ok;
}

static const char *dup(rs_state_t *st, const PGresult *res, int r, int c)
{
        return rs_arena_strdup(st->arena, rs_pg_str(res, r, c));
}

/* Runs sql with one array parameter built from a set (outside rounds). */
static PGresult *query_set(rs_pg_t *pg, const char *sql, const rs_strset_t *set,
                           char *errstr, size_t errstr_size)
{
        rs_pgarr_t arr;
        rs_pgarr_init(&arr);
        const char *params[] = {rs_strset_literal(set, &arr)};
        PGresult *res = rs_pg_exec(pg, sql, 1, params, errstr, errstr_size);
        rs_pgarr_free(&arr);
        return res;
}

/* ---------------------------------------------------------------- takers */

static void take_users(rs_state_t *st, const PGresult *res)
{
        for (int r = 0; r < PQntuples(res); r++) {
                rs_user_t *u = rs_arena_alloc(st->arena, sizeof(*u));
                *u = (rs_user_t){
                    .user_id = dup(st, res, r, USER_ID),
                    .email_hash = dup(st, res, r, USER_EMAIL_HASH),
                    .signup_event_id = dup(st, res, r, USER_SIGNUP_EVENT),
                    .signed_up_at_ms = rs_pg_int(res, r, USER_SIGNED_UP_AT, RS_TS_NONE),
                    .first_charge_at_ms =
                        rs_pg_int(res, r, USER_FIRST_CHARGE_AT, RS_TS_NONE),
                    .pending_referral =
                        strcmp(PQgetvalue(res, r, USER_PENDING_REFERRAL), "t") == 0};
                u->signed_up = u->signup_event_id != NULL;
                rs_state_add_user(st, u);
        }
}

static void take_codes(rs_state_t *st, const PGresult *res)
{
        for (int r = 0; r < PQntuples(res); r++) {
                rs_code_t *c = rs_arena_alloc(st->arena, sizeof(*c));
                *c = (rs_code_t){
                    .code = dup(st, res, r, CODE_CODE),
                    .program_id = rs_pg_int(res, r, CODE_PROGRAM, 0),
                    .owner = dup(st, res, r, CODE_OWNER),
                    .uses_count = (int32_t)rs_pg_int(res, r, CODE_USES, 0),
                    .max_uses = (int32_t)rs_pg_int(res, r, CODE_MAX_USES, RS_INT_NONE),
                    .expires_at_ms = rs_pg_int(res, r, CODE_EXPIRES_AT, RS_TS_NONE)};
                if (!rs_code_status_parse(PQgetvalue(res, r, CODE_STATUS), &c->status))
                        c->status = RS_CODE_PAUSED; /* unknown to this binary: be safe */
                rs_state_add_code(st, c);
        }
}

/* Adds the referrals of a SQL_REFERRALS_OF/_BY_ID result to st. */
static void take_referrals(rs_state_t *st, const PGresult *res)
{
        for (int r = 0; r < PQntuples(res); r++) {
                rs_referral_t *f = rs_arena_alloc(st->arena, sizeof(*f));
                *f = (rs_referral_t){
                    .id = dup(st, res, r, REF_ID),
                    .program_id = rs_pg_int(res, r, REF_PROGRAM, 0),
                    .code = dup(st, res, r, REF_CODE),
                    .referrer = dup(st, res, r, REF_REFERRER),
                    .referee = dup(st, res, r, REF_REFEREE),
                    .signup_event_id = dup(st, res, r, REF_SIGNUP_EVENT),
                    .signup_at_ms = rs_pg_int(res, r, REF_SIGNUP_AT, 0),
                    .payment_id = dup(st, res, r, REF_PAYMENT),
                    .payment_event_id = dup(st, res, r, REF_PAYMENT_EVENT),
                    .qualified_at_ms = rs_pg_int(res, r, REF_QUALIFIED_AT, RS_TS_NONE),
                    .reversed_at_ms = rs_pg_int(res, r, REF_REVERSED_AT, RS_TS_NONE),
                    .reversal_event_id = dup(st, res, r, REF_REVERSAL_EVENT),
                    .release_at_ms = rs_pg_int(res, r, REF_RELEASE_AT, RS_TS_NONE),
                    .released_at_ms = rs_pg_int(res, r, REF_RELEASED_AT, RS_TS_NONE),
                    .cancelled_at_ms = rs_pg_int(res, r, REF_CANCELLED_AT, RS_TS_NONE),
                    .cancel_event_id = dup(st, res, r, REF_CANCEL_EVENT)};
                if (!rs_ref_status_parse(PQgetvalue(res, r, REF_STATUS), &f->status))
                        f->status = RS_REF_REVERSED; /* unknown: never credit it */
                rs_state_add_referral(st, f);
        }
}

static void take_charges(rs_state_t *st, const PGresult *res)
{
        for (int r = 0; r < PQntuples(res); r++) {
                rs_charge_t *c = rs_arena_alloc(st->arena, sizeof(*c));
                *c = (rs_charge_t){.user_id = dup(st, res, r, CHARGE_USER),
                                   .payment_id = dup(st, res, r, CHARGE_PAYMENT),
                                   .event_id = dup(st, res, r, CHARGE_EVENT),
                                   .amount_minor = rs_pg_int(res, r, CHARGE_AMOUNT, 0),
                                   .occurred_at_ms = rs_pg_int(res, r, CHARGE_AT, 0),
                                   .fingerprint = dup(st, res, r, CHARGE_FINGERPRINT)};
                rs_strlcpy(c->currency, PQgetvalue(res, r, CHARGE_CURRENCY),
                           sizeof(c->currency));
                rs_state_add_charge(st, c);
        }
}

static void take_held(rs_state_t *st, const PGresult *res)
{
        for (int r = 0; r < PQntuples(res); r++) {
                rs_held_refund_t *h = rs_arena_alloc(st->arena, sizeof(*h));
                *h = (rs_held_refund_t){.user_id = dup(st, res, r, HELD_USER),
                                        .refund_of = dup(st, res, r, HELD_REFUND_OF),
                                        .event_id = dup(st, res, r, HELD_EVENT),
                                        .occurred_at_ms = rs_pg_int(res, r, HELD_AT, 0)};
                rs_state_add_held(st, h);
        }
}

static void take_programs(rs_state_t *st, const PGresult *res)
{
        for (int r = 0; r < PQntuples(res); r++) {
                rs_program_t *p = rs_arena_alloc(st->arena, sizeof(*p));
                *p = (rs_program_t){
                    .id = rs_pg_int(res, r, PROG_ID, 0),
                    .key = dup(st, res, r, PROG_KEY),
                    .reward_percent =
                        strcmp(PQgetvalue(res, r, PROG_REWARD_KIND), "percent") == 0,
                    .reward_value = rs_pg_int(res, r, PROG_REWARD, 0),
                    .reward_cap = rs_pg_int(res, r, PROG_CAP, RS_INT_NONE),
                    .referee_reward = rs_pg_int(res, r, PROG_REFEREE_REWARD, RS_INT_NONE),
                    .min_payment = rs_pg_int(res, r, PROG_MIN_PAYMENT, 0),
                    .window_days = (int32_t)rs_pg_int(res, r, PROG_WINDOW, 30),
                    .goal = (int32_t)rs_pg_int(res, r, PROG_GOAL, 10),
                    .max_rewarded =
                        (int32_t)rs_pg_int(res, r, PROG_MAX_REWARDED, RS_INT_NONE),
                    .starts_at_ms = rs_pg_int(res, r, PROG_STARTS_AT, RS_TS_NONE),
                    .ends_at_ms = rs_pg_int(res, r, PROG_ENDS_AT, RS_TS_NONE),
                    .hold_days = (int32_t)rs_pg_int(res, r, PROG_HOLD_DAYS, 0),
                    .max_per_day =
                        (int32_t)rs_pg_int(res, r, PROG_MAX_PER_DAY, RS_INT_NONE)};
                rs_strlcpy(p->currency, PQgetvalue(res, r, PROG_CURRENCY),
                           sizeof(p->currency));
                if (!rs_prog_status_parse(PQgetvalue(res, r, PROG_STATUS), &p->status))
                        p->status = RS_PROG_PAUSED;
                rs_state_add_program(st, p);
        }
}

static void take_refstats(rs_state_t *st, const PGresult *res)
{
        for (int r = 0; r < PQntuples(res); r++) {
                rs_refstat_t *s = rs_arena_alloc(st->arena, sizeof(*s));
                *s = (rs_refstat_t){.program_id = rs_pg_int(res, r, STAT_PROGRAM, 0),
                                    .referrer = dup(st, res, r, STAT_REFERRER),
                                    .rewarded_count =
                                        (int32_t)rs_pg_int(res, r, STAT_COUNT, 0)};
                rs_state_add_refstat(st, s);
        }
}

static void take_recent(rs_state_t *st, const PGresult *res)
{
        for (int r = 0; r < PQntuples(res); r++) {
                rs_refstat_t *s =
                    rs_state_refstat_get(st, rs_pg_int(res, r, RECENT_PROGRAM, 0),
                                         PQgetvalue(res, r, RECENT_REFERRER));
                rs_refstat_add_recent(st, s, rs_pg_int(res, r, RECENT_SIGNUP_AT, 0));
        }
}

static void take_fingerprints(rs_state_t *st, const PGresult *res)
{
        for (int r = 0; r < PQntuples(res); r++)
                rs_state_add_fingerprint(st, dup(st, res, r, 0), dup(st, res, r, 1), -1);
}

/* Every loaded referral (each referee's list, one after the other), and
 * every credit loaded or made. */
#define FOR_EACH_REFERRAL(st, r)                                                         \
        for (size_t i_ = 0; i_ < (st)->referrals.cap; i_++)                              \
                for (rs_referral_t *r = (st)->referrals.slots[i_].value; r;              \
                     r = r->next_of_referee)
#define FOR_EACH_CREDIT(st, c)                                                           \
        FOR_EACH_REFERRAL (st, r_)                                                       \
                for (rs_credit_t *c = r_->credits; c; c = c->next)

static void take_credits(rs_state_t *st, const PGresult *res)
{
        rs_map_t by_id; /* referral id -> referral */
        rs_map_init(&by_id);
        FOR_EACH_REFERRAL (st, f)
                rs_map_put(&by_id, f->id, f);
        for (int r = 0; r < PQntuples(res); r++) {
                rs_credit_t *c = rs_arena_alloc(st->arena, sizeof(*c));
                *c = (rs_credit_t){
                    .id = dup(st, res, r, CREDIT_ID),
                    .referral = rs_map_get(&by_id, PQgetvalue(res, r, CREDIT_REFERRAL)),
                    .role = strcmp(PQgetvalue(res, r, CREDIT_ROLE), "referrer") == 0
                                ? RS_ROLE_REFERRER
                                : RS_ROLE_REFEREE,
                    .beneficiary = dup(st, res, r, CREDIT_BENEFICIARY),
                    .amount_minor = rs_pg_int(res, r, CREDIT_AMOUNT, 0),
                    .currency = dup(st, res, r, CREDIT_CURRENCY),
                    .source_event_id = dup(st, res, r, CREDIT_SOURCE),
                    .created_at_ms = rs_pg_int(res, r, CREDIT_CREATED_AT, 0),
                    .released_at_ms = rs_pg_int(res, r, CREDIT_RELEASED_AT, RS_TS_NONE),
                    .rewarded_count = (int32_t)rs_pg_int(res, r, CREDIT_COUNT, 0),
                    .goal_reached =
                        strcmp(PQgetvalue(res, r, CREDIT_GOAL_REACHED), "t") == 0};
                if (!rs_credit_status_parse(PQgetvalue(res, r, CREDIT_STATUS),
                                            &c->status))
                        c->status = RS_CREDIT_REVERSED; /* unknown: leave it alone */
                if (c->referral)
                        rs_state_add_credit(c);
        }
        rs_map_free(&by_id);
}

/* ---------------------------------------------------------------- loads */

static int cmp_int32(const void *a, const void *b)
{
        int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
        return (x > y) - (x < y);
}

/* Advisory locks on a hash of each user, in key order: two instances
 * locking overlapping users queue instead of deadlocking. They live in
 * memory, so a user who only pays costs no row write; two users with the
 * same key only wait for each other. */
static void queue_user_locks(round_t *r, const rs_strset_t *users)
{
        int32_t *keys = rs_malloc(users->n * sizeof(*keys));
        for (size_t i = 0; i < users->n; i++)
                keys[i] = rs_pg_user_lock_key(users->items[i]);
        qsort(keys, users->n, sizeof(*keys), cmp_int32);
        rs_pgarr_t arr;
        rs_pgarr_init(&arr);
        for (size_t i = 0; i < users->n; i++)
                if (i == 0 || keys[i] != keys[i - 1])
                        rs_pgarr_int(&arr, keys[i]);
        free(keys);
        char class[16];
        snprintf(class, sizeof(class), "%d", RS_PG_USER_LOCK_CLASS);
        const char *params[] = {class, rs_pgarr_get(&arr)};
        round_params(r, SQL_USERS_LOCK, 2, params, NULL);
        rs_pgarr_free(&arr);
}

bool rs_store_lock_and_load(rs_pg_t *pg, rs_state_t *st, const rs_strset_t *users,
                            const rs_strset_t *codes, char *errstr, size_t errstr_size)
{
        if (users->n == 0 && (!codes || codes->n == 0))
                return true;
        round_t r;
        round_begin(&r, pg, st, errstr, errstr_size);
        if (users->n > 0)
                queue_user_locks(&r, users);
        if (codes && codes->n > 0)
                round_set(&r, SQL_CODES_LOCK, codes, take_codes);
        if (users->n > 0) {
                round_set(&r, SQL_USERS_LOAD, users, take_users);
                round_set(&r, SQL_REFERRALS_OF, users, take_referrals);
                round_set(&r, SQL_FIRST_CHARGES, users, take_charges);
                round_set(&r, SQL_HELD_REFUNDS, users, take_held);
        }
        return round_end(&r);
}

bool rs_store_find_referrers(rs_pg_t *pg, const rs_strset_t *payers, rs_map_t *of,
                             rs_arena_t *arena, char *errstr, size_t errstr_size)
{
        if (payers->n == 0)
                return true;
        PGresult *res = query_set(pg, SQL_REFERRERS_OF, payers, errstr, errstr_size);
        if (!res)
                return false;
        for (int r = 0; r < PQntuples(res); r++)
                rs_store_add_referrer(of, arena, PQgetvalue(res, r, 0),
                                      PQgetvalue(res, r, 1));
        PQclear(res);
        return true;
}

void rs_store_add_referrer(rs_map_t *of, rs_arena_t *arena, const char *referee,
                           const char *referrer)
{
        rs_referrer_of_t *e = rs_arena_alloc(arena, sizeof(*e));
        e->next = rs_map_get(of, referee);
        e->referee = e->next ? e->next->referee : rs_arena_strdup(arena, referee);
        e->referrer = rs_arena_strdup(arena, referrer);
        rs_map_put(of, e->referee, e);
}

bool rs_store_find_codes(rs_pg_t *pg, rs_cache_entry_t *e, size_t n, rs_arena_t *arena,
                         char *errstr, size_t errstr_size)
{
        if (n == 0)
                return true;
        rs_strset_t codes;
        rs_strset_init(&codes);
        rs_map_t entry_of; /* code -> e[i] */
        rs_map_init(&entry_of);
        for (size_t i = 0; i < n; i++) {
                rs_strset_add(&codes, e[i].code);
                rs_map_put(&entry_of, e[i].code, &e[i]);
        }
        PGresult *res = query_set(pg, SQL_CODES_FIND, &codes, errstr, errstr_size);
        if (res) {
                for (size_t i = 0; i < n; i++)
                        e[i].state = RS_CACHE_NEGATIVE;
                for (int r = 0; r < PQntuples(res); r++) {
                        rs_cache_entry_t *x =
                            rs_map_get(&entry_of, PQgetvalue(res, r, FOUND_CODE));
                        if (!x)
                                continue;
                        x->state = RS_CACHE_HIT;
                        x->program_id = rs_pg_int(res, r, FOUND_PROGRAM, 0);
                        x->owner =
                            rs_arena_strdup(arena, PQgetvalue(res, r, FOUND_OWNER));
                }
        }
        PQclear(res);
        rs_map_free(&entry_of);
        rs_strset_free(&codes);
        return res != NULL;
}

static void queue_programs(round_t *r)
{
        rs_state_t *st = r->st;
        rs_pgarr_t ids;
        rs_pgarr_init(&ids);
        for (size_t i = 0; i < st->codes.cap; i++) {
                rs_code_t *c = st->codes.slots[i].value;
                if (c)
                        rs_pgarr_int(&ids, c->program_id);
        }
        FOR_EACH_REFERRAL (st, f)
                rs_pgarr_int(&ids, f->program_id);
        const char *params[] = {rs_pgarr_get(&ids)};
        if (ids.count > 0)
                round_params(r, SQL_PROGRAMS, 1, params, take_programs);
        rs_pgarr_free(&ids);
}

/* A (program, referrer) pair whose referrer stats are wanted. */
typedef struct stat_key {
        int64_t program_id;
        const char *referrer;
} stat_key_t;

static const rs_pgcol_t stat_key_cols[] = {
    RS_PGCOL(stat_key_t, program_id, "bigint", RS_PGCOL_I64),
    RS_PGCOL(stat_key_t, referrer, "text", RS_PGCOL_TEXT),
};

static void queue_refstats(round_t *r)
{
        rs_state_t *st = r->st;
        rs_pgrows_t keys;
        rs_pgrows_init(&keys, stat_key_cols, RS_ARRAY_SIZE(stat_key_cols));
        for (size_t i = 0; i < st->codes.cap; i++) {
                rs_code_t *c = st->codes.slots[i].value;
                if (c)
                        rs_pgrows_add(&keys, &(stat_key_t){c->program_id, c->owner});
        }
        FOR_EACH_REFERRAL (st, f)
                rs_pgrows_add(&keys, &(stat_key_t){f->program_id, f->referrer});
        if (keys.n > 0)
                round_rows(r, SQL_REFSTATS, &keys, NULL, 0, take_refstats);
        rs_pgrows_free(&keys);
}

/* Credits exist only for referrals that qualified; only those a refund of
 * this batch may reverse or cancel are needed (refunded NULL: those of every
 * held referral, for their release). */
static void queue_credits(round_t *r, const rs_strset_t *refunded)
{
        rs_strset_t ids;
        rs_strset_init(&ids);
        FOR_EACH_REFERRAL (r->st, f) {
                bool want =
                    refunded
                        ? (f->status == RS_REF_CREDITED || f->status == RS_REF_HELD) &&
                              f->payment_id && rs_strset_has(refunded, f->payment_id)
                        : f->status == RS_REF_HELD;
                if (want)
                        rs_strset_add(&ids, f->id);
        }
        if (ids.n > 0)
                round_set(r, SQL_CREDITS_OF, &ids, take_credits);
        rs_strset_free(&ids);
}

/* Shared payment method: who paid with the fingerprints of the batch's
 * charges and of the remembered first charges. */
static void queue_fingerprints(round_t *r, const rs_strset_t *batch_fps)
{
        rs_strset_t fps;
        rs_strset_init(&fps);
        for (size_t i = 0; i < batch_fps->n; i++)
                rs_strset_add(&fps, batch_fps->items[i]);
        for (size_t i = 0; i < r->st->charges.cap; i++) {
                rs_charge_t *c = r->st->charges.slots[i].value;
                if (c && c->fingerprint)
                        rs_strset_add(&fps, c->fingerprint);
        }
        if (fps.n > 0)
                round_set(r, SQL_FINGERPRINTS_OF, &fps, take_fingerprints);
        rs_strset_free(&fps);
}

/* Velocity: the sign-up times of the referrals, since since_ms, of the
 * owners of the batch's codes in programs with a daily limit (the programs
 * are loaded). */
static bool load_recent(rs_pg_t *pg, rs_state_t *st, int64_t since_ms, char *errstr,
                        size_t errstr_size)
{
        rs_pgrows_t keys;
        rs_pgrows_init(&keys, stat_key_cols, RS_ARRAY_SIZE(stat_key_cols));
        for (size_t i = 0; i < st->codes.cap; i++) {
                rs_code_t *c = st->codes.slots[i].value;
                const rs_program_t *p = c ? rs_state_program(st, c->program_id) : NULL;
                if (p && p->max_per_day != RS_INT_NONE)
                        rs_pgrows_add(&keys, &(stat_key_t){c->program_id, c->owner});
        }
        if (keys.n == 0) {
                rs_pgrows_free(&keys);
                return true;
        }
        char since[24];
        snprintf(since, sizeof(since), "%lld", (long long)since_ms);
        const char *extra[] = {since};
        PGresult *res = rs_pgrows_query(pg, SQL_RECENT_REFERRALS, &keys, extra, 1, errstr,
                                        errstr_size);
        rs_pgrows_free(&keys);
        if (res)
                take_recent(st, res);
        PQclear(res);
        return res != NULL;
}

bool rs_store_load_rest(rs_pg_t *pg, rs_state_t *st, const rs_store_wants_t *w,
                        char *errstr, size_t errstr_size)
{
        round_t r;
        round_begin(&r, pg, st, errstr, errstr_size);
        queue_programs(&r);
        queue_refstats(&r);
        queue_fingerprints(&r, w->fingerprints);
        queue_credits(&r, w->refunded);
        return round_end(&r) &&
               load_recent(pg, st, w->signups_since_ms, errstr, errstr_size);
}

int rs_store_claim_due(rs_pg_t *pg, rs_state_t *st, int limit, char *errstr,
                       size_t errstr_size)
{
        char lim[16], class[16];
        snprintf(lim, sizeof(lim), "%d", limit);
        snprintf(class, sizeof(class), "%d", RS_PG_USER_LOCK_CLASS);
        const char *params[] = {lim};
        PGresult *res = rs_pg_exec(pg, SQL_RELEASE_DUE, 1, params, errstr, errstr_size);
        if (!res)
                return -1;
        /* The referees' locks, in one statement and without waiting: a batch
         * holding one may be refunding that referral; it is left to a later
         * pass. */
        int rows = PQntuples(res);
        rs_pgarr_t keys;
        rs_pgarr_init(&keys);
        for (int r = 0; r < rows; r++)
                rs_pgarr_int(&keys, rs_pg_user_lock_key(PQgetvalue(res, r, DUE_REFEREE)));
        const char *lp[] = {class, rs_pgarr_get(&keys)};
        PGresult *got =
            rows ? rs_pg_exec(pg, SQL_USERS_TRY_LOCK, 2, lp, errstr, errstr_size) : NULL;
        rs_pgarr_free(&keys);
        bool ok = rows == 0 || got != NULL;
        rs_strset_t ids;
        rs_strset_init(&ids);
        for (int r = 0; got && r < rows; r++)
                if (strcmp(PQgetvalue(got, r, 0), "t") == 0)
                        rs_strset_add(
                            &ids, rs_arena_strdup(st->arena, PQgetvalue(res, r, DUE_ID)));
        PQclear(got);
        PQclear(res);
        int n = (int)ids.n;
        if (ok && n > 0) {
                /* Read again now that the referee is locked. */
                res = query_set(pg, SQL_REFERRALS_BY_ID, &ids, errstr, errstr_size);
                ok = res != NULL;
                if (ok)
                        take_referrals(st, res);
                PQclear(res);
                if (ok) {
                        round_t rd;
                        round_begin(&rd, pg, st, errstr, errstr_size);
                        queue_programs(&rd);
                        queue_credits(&rd, NULL);
                        ok = round_end(&rd);
                }
        }
        rs_strset_free(&ids);
        return ok ? n : -1;
}

/* ---------------------------------------------------------------- writes */

/* Each writer: a column table (names as the statement uses them), the rows
 * the rules flagged, one statement of rs_store_sql.h. */

static const rs_pgcol_t user_cols[] = {
    RS_PGCOL(rs_user_t, user_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_user_t, email_hash, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_user_t, signup_event_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_user_t, signed_up_at_ms, "bigint", RS_PGCOL_TIME),
    RS_PGCOL(rs_user_t, first_charge_at_ms, "bigint", RS_PGCOL_TIME),
    RS_PGCOL(rs_user_t, pending_referral, "bool", RS_PGCOL_BOOL),
};

static bool write_users(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        rs_pgrows_t rows;
        rs_pgrows_init(&rows, user_cols, RS_ARRAY_SIZE(user_cols));
        for (size_t i = 0; i < st->users.cap; i++) {
                rs_user_t *u = st->users.slots[i].value;
                if (u && u->dirty)
                        rs_pgrows_add(&rows, u);
        }
        return rs_pgrows_exec(pg, true, SQL_USERS_UPSERT, &rows, errstr, errstr_size);
}

static void code_status(rs_pgarr_t *a, const void *row)
{
        rs_pgarr_text(a, rs_code_status_name(((const rs_code_t *)row)->status));
}

static const rs_pgcol_t code_cols[] = {
    RS_PGCOL(rs_code_t, code, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_code_t, uses_count, "int", RS_PGCOL_I32),
    RS_PGCOL_FN("status", "text", code_status),
};

static bool write_codes(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        rs_pgrows_t rows;
        rs_pgrows_init(&rows, code_cols, RS_ARRAY_SIZE(code_cols));
        for (size_t i = 0; i < st->codes.cap; i++) {
                rs_code_t *c = st->codes.slots[i].value;
                if (c && c->dirty)
                        rs_pgrows_add(&rows, c);
        }
        return rs_pgrows_exec(pg, true, SQL_CODES_UPDATE, &rows, errstr, errstr_size);
}

static void referral_status(rs_pgarr_t *a, const void *row)
{
        rs_pgarr_text(a, rs_ref_status_name(((const rs_referral_t *)row)->status));
}

/* What changes on an existing referral; a new one adds the rest. */
#define REFERRAL_CHANGES                                                                 \
        RS_PGCOL(rs_referral_t, id, "uuid", RS_PGCOL_TEXT),                              \
            RS_PGCOL_FN("status", "text", referral_status),                              \
            RS_PGCOL(rs_referral_t, payment_id, "text", RS_PGCOL_TEXT),                  \
            RS_PGCOL(rs_referral_t, payment_event_id, "text", RS_PGCOL_TEXT),            \
            RS_PGCOL(rs_referral_t, qualified_at_ms, "bigint", RS_PGCOL_TIME),           \
            RS_PGCOL(rs_referral_t, reversed_at_ms, "bigint", RS_PGCOL_TIME),            \
            RS_PGCOL(rs_referral_t, reversal_event_id, "text", RS_PGCOL_TEXT),           \
            RS_PGCOL(rs_referral_t, release_at_ms, "bigint", RS_PGCOL_TIME),             \
            RS_PGCOL(rs_referral_t, released_at_ms, "bigint", RS_PGCOL_TIME),            \
            RS_PGCOL(rs_referral_t, cancelled_at_ms, "bigint", RS_PGCOL_TIME),           \
            RS_PGCOL(rs_referral_t, cancel_event_id, "text", RS_PGCOL_TEXT)

static const rs_pgcol_t referral_update_cols[] = {REFERRAL_CHANGES};
static const rs_pgcol_t referral_insert_cols[] = {
    REFERRAL_CHANGES,
    RS_PGCOL(rs_referral_t, program_id, "bigint", RS_PGCOL_I64),
    RS_PGCOL(rs_referral_t, code, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_referral_t, referrer, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_referral_t, referee, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_referral_t, signup_event_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_referral_t, signup_at_ms, "bigint", RS_PGCOL_TIME),
};

static bool write_referrals(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        rs_pgrows_t ins, upd;
        rs_pgrows_init(&ins, referral_insert_cols, RS_ARRAY_SIZE(referral_insert_cols));
        rs_pgrows_init(&upd, referral_update_cols, RS_ARRAY_SIZE(referral_update_cols));
        FOR_EACH_REFERRAL (st, r) {
                if (r->is_new)
                        rs_pgrows_add(&ins, r);
                else if (r->dirty)
                        rs_pgrows_add(&upd, r);
        }
        bool ok =
            rs_pgrows_exec(pg, true, SQL_REFERRALS_INSERT, &ins, errstr, errstr_size);
        return rs_pgrows_exec(pg, ok, SQL_REFERRALS_UPDATE, &upd, errstr, errstr_size);
}

static const rs_pgcol_t refstat_cols[] = {
    RS_PGCOL(rs_refstat_t, program_id, "bigint", RS_PGCOL_I64),
    RS_PGCOL(rs_refstat_t, referrer, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_refstat_t, rewarded_count, "int", RS_PGCOL_I32),
};

static bool write_refstats(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        rs_pgrows_t rows;
        rs_pgrows_init(&rows, refstat_cols, RS_ARRAY_SIZE(refstat_cols));
        for (size_t i = 0; i < st->refstats.cap; i++) {
                rs_refstat_t *s = st->refstats.slots[i].value;
                if (s && s->dirty)
                        rs_pgrows_add(&rows, s);
        }
        return rs_pgrows_exec(pg, true, SQL_REFSTATS_UPSERT, &rows, errstr, errstr_size);
}

static void credit_referral(rs_pgarr_t *a, const void *row)
{
        rs_pgarr_text(a, ((const rs_credit_t *)row)->referral->id);
}
static void credit_program(rs_pgarr_t *a, const void *row)
{
        rs_pgarr_int(a, ((const rs_credit_t *)row)->referral->program_id);
}
static void credit_role(rs_pgarr_t *a, const void *row)
{
        bool referrer = ((const rs_credit_t *)row)->role == RS_ROLE_REFERRER;
        rs_pgarr_text(a, referrer ? "referrer" : "referee");
}
static void credit_status(rs_pgarr_t *a, const void *row)
{
        rs_pgarr_text(a, rs_credit_status_name(((const rs_credit_t *)row)->status));
}
/* Reversed or cancelled: when. */
static void credit_reversed_at(rs_pgarr_t *a, const void *row)
{
        const rs_credit_t *c = row;
        bool ended = c->status == RS_CREDIT_REVERSED || c->status == RS_CREDIT_CANCELLED;
        rs_pgarr_int_or_null(a, ended ? c->reversed_at_ms : RS_TS_NONE, RS_TS_NONE);
}

static const rs_pgcol_t credit_insert_cols[] = {
    RS_PGCOL(rs_credit_t, id, "uuid", RS_PGCOL_TEXT),
    RS_PGCOL_FN("referral_id", "uuid", credit_referral),
    RS_PGCOL_FN("program_id", "bigint", credit_program),
    RS_PGCOL(rs_credit_t, beneficiary, "text", RS_PGCOL_TEXT),
    RS_PGCOL_FN("role", "text", credit_role),
    RS_PGCOL(rs_credit_t, amount_minor, "bigint", RS_PGCOL_I64),
    RS_PGCOL(rs_credit_t, currency, "text", RS_PGCOL_TEXT),
    RS_PGCOL_FN("status", "text", credit_status),
    RS_PGCOL(rs_credit_t, source_event_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_credit_t, rewarded_count, "int", RS_PGCOL_I32),
    RS_PGCOL(rs_credit_t, goal_reached, "bool", RS_PGCOL_BOOL),
    RS_PGCOL(rs_credit_t, created_at_ms, "bigint", RS_PGCOL_TIME),
    RS_PGCOL_FN("reversed_at_ms", "bigint", credit_reversed_at),
    RS_PGCOL(rs_credit_t, reversal_event_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_credit_t, released_at_ms, "bigint", RS_PGCOL_TIME),
};

static const rs_pgcol_t credit_update_cols[] = {
    RS_PGCOL(rs_credit_t, id, "uuid", RS_PGCOL_TEXT),
    RS_PGCOL_FN("status", "text", credit_status),
    RS_PGCOL_FN("reversed_at_ms", "bigint", credit_reversed_at),
    RS_PGCOL(rs_credit_t, reversal_event_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_credit_t, released_at_ms, "bigint", RS_PGCOL_TIME),
};

static bool write_credits(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        rs_pgrows_t ins, upd;
        rs_pgrows_init(&ins, credit_insert_cols, RS_ARRAY_SIZE(credit_insert_cols));
        rs_pgrows_init(&upd, credit_update_cols, RS_ARRAY_SIZE(credit_update_cols));
        FOR_EACH_CREDIT (st, c) {
                if (c->is_new)
                        rs_pgrows_add(&ins, c);
                else if (c->dirty)
                        rs_pgrows_add(&upd, c);
        }
        bool ok = rs_pgrows_exec(pg, true, SQL_CREDITS_INSERT, &ins, errstr, errstr_size);
        return rs_pgrows_exec(pg, ok, SQL_CREDITS_UPDATE, &upd, errstr, errstr_size);
}

static void rejection_type(rs_pgarr_t *a, const void *row)
{
        bool signup = ((const rs_rejection_t *)row)->event_type == RS_EV_SIGNUP;
        rs_pgarr_text(a, signup ? "signup" : "payment");
}
static void rejection_reason(rs_pgarr_t *a, const void *row)
{
        rs_pgarr_text(a, rs_reason_name(((const rs_rejection_t *)row)->reason));
}

static const rs_pgcol_t rejection_cols[] = {
    RS_PGCOL(rs_rejection_t, event_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL_FN("event_type", "text", rejection_type),
    RS_PGCOL_FN("reason", "text", rejection_reason),
    RS_PGCOL(rs_rejection_t, user_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_rejection_t, code, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_rejection_t, program_id, "bigint", RS_PGCOL_ID),
    RS_PGCOL(rs_rejection_t, referrer, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_rejection_t, detail, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_rejection_t, occurred_at_ms, "bigint", RS_PGCOL_TIME),
};

static bool write_rejections(rs_pg_t *pg, rs_state_t *st, char *errstr,
                             size_t errstr_size)
{
        rs_pgrows_t rows;
        rs_pgrows_init(&rows, rejection_cols, RS_ARRAY_SIZE(rejection_cols));
        for (size_t i = 0; i < st->n_rejections; i++)
                rs_pgrows_add(&rows, &st->rejections[i]);
        return rs_pgrows_exec(pg, true, SQL_REJECTIONS_INSERT, &rows, errstr,
                              errstr_size);
}

static void charge_currency(rs_pgarr_t *a, const void *row)
{
        rs_pgarr_text(a,
                      ((const rs_charge_t *)row)->currency); /* an array, not a pointer */
}

static const rs_pgcol_t charge_cols[] = {
    RS_PGCOL(rs_charge_t, user_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_charge_t, payment_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_charge_t, event_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_charge_t, amount_minor, "bigint", RS_PGCOL_I64),
    RS_PGCOL_FN("currency", "text", charge_currency),
    RS_PGCOL(rs_charge_t, occurred_at_ms, "bigint", RS_PGCOL_TIME),
    RS_PGCOL(rs_charge_t, fingerprint, "text", RS_PGCOL_TEXT),
};

static bool write_charges(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        rs_pgrows_t rows;
        rs_pgrows_init(&rows, charge_cols, RS_ARRAY_SIZE(charge_cols));
        for (size_t i = 0; i < st->charges.cap; i++) {
                rs_charge_t *c = st->charges.slots[i].value;
                if (c && c->dirty)
                        rs_pgrows_add(&rows, c);
        }
        return rs_pgrows_exec(pg, true, SQL_FIRST_CHARGES_UPSERT, &rows, errstr,
                              errstr_size);
}

static const rs_pgcol_t held_insert_cols[] = {
    RS_PGCOL(rs_held_refund_t, user_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_held_refund_t, refund_of, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_held_refund_t, event_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_held_refund_t, occurred_at_ms, "bigint", RS_PGCOL_TIME),
};

static const rs_pgcol_t held_delete_cols[] = {
    RS_PGCOL(rs_held_refund_t, user_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_held_refund_t, refund_of, "text", RS_PGCOL_TEXT),
};

static bool write_held(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        rs_pgrows_t ins, del;
        rs_pgrows_init(&ins, held_insert_cols, RS_ARRAY_SIZE(held_insert_cols));
        rs_pgrows_init(&del, held_delete_cols, RS_ARRAY_SIZE(held_delete_cols));
        for (size_t i = 0; i < st->held.cap; i++) {
                rs_held_refund_t *h = st->held.slots[i].value;
                if (!h || (h->is_new && h->applied))
                        continue; /* held and applied within the batch */
                if (h->is_new)
                        rs_pgrows_add(&ins, h);
                else if (h->applied)
                        rs_pgrows_add(&del, h);
        }
        bool ok = rs_pgrows_exec(pg, true, SQL_HELD_INSERT, &ins, errstr, errstr_size);
        return rs_pgrows_exec(pg, ok, SQL_HELD_DELETE, &del, errstr, errstr_size);
}

bool rs_store_write(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        /* Referrals before credits (the batch's order: see sql/004_hot_path.sql). */
        return rs_pg_send(pg, SQL_WRITE_PLANS, 0, NULL, errstr, errstr_size) >= 0 &&
               write_users(pg, st, errstr, errstr_size) &&
               write_codes(pg, st, errstr, errstr_size) &&
               write_referrals(pg, st, errstr, errstr_size) &&
               write_refstats(pg, st, errstr, errstr_size) &&
               write_credits(pg, st, errstr, errstr_size) &&
               write_rejections(pg, st, errstr, errstr_size) &&
               write_charges(pg, st, errstr, errstr_size) &&
               write_held(pg, st, errstr, errstr_size);
}
