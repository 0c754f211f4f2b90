#include "rs_store.h"

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
        if (!v || rs_map_get(&s->map, v))
                return false;
        rs_map_put(&s->map, v, (void *)v);
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

/* ---------------------------------------------------------------- helpers */

/* Runs sql with one array parameter built from a set. */
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

static const char *dup(rs_state_t *st, const PGresult *res, int r, int c)
{
        return rs_arena_strdup(st->arena, rs_pg_str(res, r, c));
}

/* Columns of a set-wise write: one array literal per column. */
#define MAX_COLS 16
typedef struct cols {
        rs_pgarr_t c[MAX_COLS];
        int n;
} cols_t;

static void cols_init(cols_t *k, int n)
{
        k->n = n;
        for (int i = 0; i < n; i++)
                rs_pgarr_init(&k->c[i]);
}

static void cols_free(cols_t *k)
{
        for (int i = 0; i < k->n; i++)
                rs_pgarr_free(&k->c[i]);
}

/* Executes sql with the columns as $1..$n, unless they hold no rows or an
 * earlier statement failed (!run); frees the columns either way. */
static bool cols_exec(rs_pg_t *pg, bool run, const char *sql, cols_t *k, char *errstr,
                      size_t errstr_size)
{
        bool ok = run;
        if (run && k->c[0].count > 0) {
                const char *params[MAX_COLS];
                for (int i = 0; i < k->n; i++)
                        params[i] = rs_pgarr_get(&k->c[i]);
                ok = rs_pg_cmd(pg, sql, k->n, params, errstr, errstr_size);
        }
        cols_free(k);
        return ok;
}

/* ---------------------------------------------------------------- loads */

bool rs_store_lock_users(rs_pg_t *pg, rs_state_t *st, const rs_strset_t *users,
                         char *errstr, size_t errstr_size)
{
        if (users->n == 0)
                return true;
        /* Sorted inserts, then sorted row locks: two instances locking
         * overlapping users always queue instead of deadlocking. */
        PGresult *res =
            query_set(pg,
                      "INSERT INTO rs_users (user_id) SELECT u FROM"
                      " unnest($1::text[]) AS u ORDER BY u ON CONFLICT DO NOTHING",
                      users, errstr, errstr_size);
        if (!res)
                return false;
        PQclear(res);
        res = query_set(
            pg,
            "SELECT user_id, email_hash, signup_event_id, rs_ts_to_ms(signed_up_at)"
            " FROM rs_users WHERE user_id = ANY($1::text[]) ORDER BY user_id"
            " FOR UPDATE",
            users, errstr, errstr_size);
        if (!res)
                return false;
        for (int r = 0; r < PQntuples(res); r++) {
                rs_user_t *u = rs_arena_alloc(st->arena, sizeof(*u));
                *u = (rs_user_t){.user_id = dup(st, res, r, 0),
                                 .email_hash = dup(st, res, r, 1),
                                 .signup_event_id = dup(st, res, r, 2),
                                 .signed_up_at_ms = rs_pg_int(res, r, 3, RS_TS_NONE)};
                u->signed_up = u->signup_event_id != NULL;
                rs_state_add_user(st, u);
        }
        PQclear(res);
        return true;
}

bool rs_store_lock_codes(rs_pg_t *pg, rs_state_t *st, const rs_strset_t *codes,
                         char *errstr, size_t errstr_size)
{
        if (codes->n == 0)
                return true;
        PGresult *res =
            query_set(pg,
                      "SELECT code, program_id, owner_user_id, status, uses_count,"
                      " max_uses, rs_ts_to_ms(expires_at) FROM rs_codes"
                      " WHERE code = ANY($1::text[]) ORDER BY code FOR UPDATE",
                      codes, errstr, errstr_size);
        if (!res)
                return false;
        for (int r = 0; r < PQntuples(res); r++) {
                rs_code_t *c = rs_arena_alloc(st->arena, sizeof(*c));
                *c = (rs_code_t){.code = dup(st, res, r, 0),
                                 .program_id = rs_pg_int(res, r, 1, 0),
                                 .owner = dup(st, res, r, 2),
                                 .uses_count = (int32_t)rs_pg_int(res, r, 4, 0),
                                 .max_uses = (int32_t)rs_pg_int(res, r, 5, RS_INT_NONE),
                                 .expires_at_ms = rs_pg_int(res, r, 6, RS_TS_NONE)};
                if (!rs_code_status_parse(PQgetvalue(res, r, 3), &c->status))
                        c->status = RS_CODE_PAUSED; /* unknown to this binary: be safe */
                rs_state_add_code(st, c);
        }
        PQclear(res);
        return true;
}

bool rs_store_find_referrers(rs_pg_t *pg, const rs_strset_t *payers, rs_strset_t *out,
                             rs_arena_t *arena, char *errstr, size_t errstr_size)
{
        if (payers->n == 0)
                return true;
        PGresult *res = query_set(pg,
                                  "SELECT DISTINCT referrer_user_id FROM rs_referrals"
                                  " WHERE referee_user_id = ANY($1::text[])",
                                  payers, errstr, errstr_size);
        if (!res)
                return false;
        for (int r = 0; r < PQntuples(res); r++)
                rs_strset_add(out, rs_arena_strdup(arena, PQgetvalue(res, r, 0)));
        PQclear(res);
        return true;
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
        PGresult *res = query_set(pg,
                                  "SELECT code, program_id, owner_user_id FROM rs_codes"
                                  " WHERE code = ANY($1::text[])",
                                  &codes, errstr, errstr_size);
        if (res) {
                for (size_t i = 0; i < n; i++)
                        e[i].state = RS_CACHE_NEGATIVE;
                for (int r = 0; r < PQntuples(res); r++) {
                        rs_cache_entry_t *x =
                            rs_map_get(&entry_of, PQgetvalue(res, r, 0));
                        if (!x)
                                continue;
                        x->state = RS_CACHE_HIT;
                        x->program_id = rs_pg_int(res, r, 1, 0);
                        x->owner = rs_arena_strdup(arena, PQgetvalue(res, r, 2));
                }
        }
        PQclear(res);
        rs_map_free(&entry_of);
        rs_strset_free(&codes);
        return res != NULL;
}

bool rs_store_load_referrals(rs_pg_t *pg, rs_state_t *st, const rs_strset_t *users,
                             char *errstr, size_t errstr_size)
{
        if (users->n == 0)
                return true;
        PGresult *res = query_set(
            pg,
            "SELECT id, program_id, code, referrer_user_id, referee_user_id, status,"
            " signup_event_id, rs_ts_to_ms(signup_at), payment_id, payment_event_id,"
            " rs_ts_to_ms(qualified_at), rs_ts_to_ms(reversed_at), reversal_event_id"
            " FROM rs_referrals WHERE referee_user_id = ANY($1::text[])",
            users, errstr, errstr_size);
        if (!res)
                return false;
        for (int r = 0; r < PQntuples(res); r++) {
                rs_referral_t *f = rs_arena_alloc(st->arena, sizeof(*f));
                *f = (rs_referral_t){.id = dup(st, res, r, 0),
                                     .program_id = rs_pg_int(res, r, 1, 0),
                                     .code = dup(st, res, r, 2),
                                     .referrer = dup(st, res, r, 3),
                                     .referee = dup(st, res, r, 4),
                                     .signup_event_id = dup(st, res, r, 6),
                                     .signup_at_ms = rs_pg_int(res, r, 7, 0),
                                     .payment_id = dup(st, res, r, 8),
                                     .payment_event_id = dup(st, res, r, 9),
                                     .qualified_at_ms = rs_pg_int(res, r, 10, RS_TS_NONE),
                                     .reversed_at_ms = rs_pg_int(res, r, 11, RS_TS_NONE),
                                     .reversal_event_id = dup(st, res, r, 12)};
                if (!rs_ref_status_parse(PQgetvalue(res, r, 5), &f->status))
                        f->status = RS_REF_REVERSED; /* unknown: never credit it */
                rs_state_add_referral(st, f);
        }
        PQclear(res);
        return true;
}

static bool load_programs(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        rs_pgarr_t ids;
        rs_pgarr_init(&ids);
        for (size_t i = 0; i < st->codes.cap; i++) {
                rs_code_t *c = st->codes.slots[i].value;
                if (c)
                        rs_pgarr_int(&ids, c->program_id);
        }
        for (size_t i = 0; i < st->referrals.cap; i++) {
                for (rs_referral_t *r = st->referrals.slots[i].value; r;
                     r = r->next_of_referee)
                        rs_pgarr_int(&ids, r->program_id);
        }
        const char *params[] = {rs_pgarr_get(&ids)};
        PGresult *res =
            ids.count == 0
                ? NULL
                : rs_pg_exec(
                      pg,
                      "SELECT id, key, status, currency, reward_kind, reward_value,"
                      " reward_cap, referee_reward, min_payment, window_days,"
                      " referral_goal, max_rewarded, rs_ts_to_ms(starts_at),"
                      " rs_ts_to_ms(ends_at) FROM rs_programs"
                      " WHERE id = ANY($1::bigint[])",
                      1, params, errstr, errstr_size);
        bool none = ids.count == 0;
        rs_pgarr_free(&ids);
        if (none)
                return true;
        if (!res)
                return false;
        for (int r = 0; r < PQntuples(res); r++) {
                rs_program_t *p = rs_arena_alloc(st->arena, sizeof(*p));
                *p = (rs_program_t){
                    .id = rs_pg_int(res, r, 0, 0),
                    .key = dup(st, res, r, 1),
                    .reward_percent = strcmp(PQgetvalue(res, r, 4), "percent") == 0,
                    .reward_value = rs_pg_int(res, r, 5, 0),
                    .reward_cap = rs_pg_int(res, r, 6, RS_INT_NONE),
                    .referee_reward = rs_pg_int(res, r, 7, RS_INT_NONE),
                    .min_payment = rs_pg_int(res, r, 8, 0),
                    .window_days = (int32_t)rs_pg_int(res, r, 9, 30),
                    .goal = (int32_t)rs_pg_int(res, r, 10, 10),
                    .max_rewarded = (int32_t)rs_pg_int(res, r, 11, RS_INT_NONE),
                    .starts_at_ms = rs_pg_int(res, r, 12, RS_TS_NONE),
                    .ends_at_ms = rs_pg_int(res, r, 13, RS_TS_NONE)};
                rs_strlcpy(p->currency, PQgetvalue(res, r, 3), sizeof(p->currency));
                if (!rs_prog_status_parse(PQgetvalue(res, r, 2), &p->status))
                        p->status = RS_PROG_PAUSED;
                rs_state_add_program(st, p);
        }
        PQclear(res);
        return true;
}

static bool load_refstats(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        cols_t k;
        cols_init(&k, 2);
        for (size_t i = 0; i < st->codes.cap; i++) {
                rs_code_t *c = st->codes.slots[i].value;
                if (c) {
                        rs_pgarr_int(&k.c[0], c->program_id);
                        rs_pgarr_text(&k.c[1], c->owner);
                }
        }
        for (size_t i = 0; i < st->referrals.cap; i++) {
                for (rs_referral_t *r = st->referrals.slots[i].value; r;
                     r = r->next_of_referee) {
                        rs_pgarr_int(&k.c[0], r->program_id);
                        rs_pgarr_text(&k.c[1], r->referrer);
                }
        }
        PGresult *res = NULL;
        if (k.c[0].count > 0) {
                const char *params[] = {rs_pgarr_get(&k.c[0]), rs_pgarr_get(&k.c[1])};
                res =
                    rs_pg_exec(pg,
                               "SELECT s.program_id, s.referrer_user_id, s.rewarded_count"
                               " FROM rs_referrer_stats s JOIN (SELECT DISTINCT * FROM"
                               " unnest($1::bigint[], $2::text[])) AS k(p, r)"
                               " ON s.program_id = k.p AND s.referrer_user_id = k.r",
                               2, params, errstr, errstr_size);
                if (!res) {
                        cols_free(&k);
                        return false;
                }
        }
        cols_free(&k);
        for (int r = 0; res && r < PQntuples(res); r++) {
                rs_refstat_t *s = rs_arena_alloc(st->arena, sizeof(*s));
                *s = (rs_refstat_t){.program_id = rs_pg_int(res, r, 0, 0),
                                    .referrer = dup(st, res, r, 1),
                                    .rewarded_count = (int32_t)rs_pg_int(res, r, 2, 0)};
                rs_state_add_refstat(st, s);
        }
        PQclear(res);
        return true;
}

static bool load_charges(rs_pg_t *pg, rs_state_t *st, const rs_strset_t *users,
                         char *errstr, size_t errstr_size)
{
        PGresult *res =
            query_set(pg,
                      "SELECT user_id, payment_id, event_id, amount_minor, currency,"
                      " rs_ts_to_ms(occurred_at) FROM rs_first_charges"
                      " WHERE user_id = ANY($1::text[])",
                      users, errstr, errstr_size);
        if (!res)
                return false;
        for (int r = 0; r < PQntuples(res); r++) {
                rs_charge_t *c = rs_arena_alloc(st->arena, sizeof(*c));
                *c = (rs_charge_t){.user_id = dup(st, res, r, 0),
                                   .payment_id = dup(st, res, r, 1),
                                   .event_id = dup(st, res, r, 2),
                                   .amount_minor = rs_pg_int(res, r, 3, 0),
                                   .occurred_at_ms = rs_pg_int(res, r, 5, 0)};
                rs_strlcpy(c->currency, PQgetvalue(res, r, 4), sizeof(c->currency));
                rs_state_add_charge(st, c);
        }
        PQclear(res);
        return true;
}

static bool load_held(rs_pg_t *pg, rs_state_t *st, const rs_strset_t *users, char *errstr,
                      size_t errstr_size)
{
        PGresult *res =
            query_set(pg,
                      "SELECT user_id, refund_of, event_id, rs_ts_to_ms(occurred_at)"
                      " FROM rs_held_refunds WHERE user_id = ANY($1::text[])",
                      users, errstr, errstr_size);
        if (!res)
                return false;
        for (int r = 0; r < PQntuples(res); r++) {
                rs_held_refund_t *h = rs_arena_alloc(st->arena, sizeof(*h));
                *h = (rs_held_refund_t){.user_id = dup(st, res, r, 0),
                                        .refund_of = dup(st, res, r, 1),
                                        .event_id = dup(st, res, r, 2),
                                        .occurred_at_ms = rs_pg_int(res, r, 3, 0)};
                rs_state_add_held(st, h);
        }
        PQclear(res);
        return true;
}

/* Credits exist only for credited/reversed referrals; only those a refund of
 * this batch may reverse are needed. */
static bool load_credits(rs_pg_t *pg, rs_state_t *st, const rs_strset_t *refunded,
                         char *errstr, size_t errstr_size)
{
        rs_strset_t ids;
        rs_map_t by_id;
        rs_strset_init(&ids);
        rs_map_init(&by_id);
        for (size_t i = 0; i < st->referrals.cap; i++) {
                for (rs_referral_t *r = st->referrals.slots[i].value; r;
                     r = r->next_of_referee) {
                        if (r->status == RS_REF_CREDITED && r->payment_id &&
                            rs_strset_has(refunded, r->payment_id)) {
                                rs_strset_add(&ids, r->id);
                                rs_map_put(&by_id, r->id, r);
                        }
                }
        }
        PGresult *res = NULL;
        bool ok = true;
        if (ids.n > 0) {
                res = query_set(
                    pg,
                    "SELECT id, referral_id, role, beneficiary_user_id, amount_minor,"
                    " currency, status, source_event_id, rs_ts_to_ms(created_at),"
                    " referrer_rewarded_count, goal_reached FROM rs_credits"
                    " WHERE referral_id = ANY($1::uuid[])",
                    &ids, errstr, errstr_size);
                ok = res != NULL;
        }
        for (int r = 0; res && r < PQntuples(res); r++) {
                rs_credit_t *c = rs_arena_alloc(st->arena, sizeof(*c));
                *c = (rs_credit_t){
                    .id = dup(st, res, r, 0),
                    .referral = rs_map_get(&by_id, PQgetvalue(res, r, 1)),
                    .role = strcmp(PQgetvalue(res, r, 2), "referrer") == 0
                                ? RS_ROLE_REFERRER
                                : RS_ROLE_REFEREE,
                    .beneficiary = dup(st, res, r, 3),
                    .amount_minor = rs_pg_int(res, r, 4, 0),
                    .currency = dup(st, res, r, 5),
                    .reversed = strcmp(PQgetvalue(res, r, 6), "reversed") == 0,
                    .source_event_id = dup(st, res, r, 7),
                    .created_at_ms = rs_pg_int(res, r, 8, 0),
                    .rewarded_count = (int32_t)rs_pg_int(res, r, 9, 0),
                    .goal_reached = strcmp(PQgetvalue(res, r, 10), "t") == 0};
                if (c->referral)
                        rs_state_add_credit(c);
        }
        PQclear(res);
        rs_map_free(&by_id);
        rs_strset_free(&ids);
        return ok;
}

bool rs_store_load_rest(rs_pg_t *pg, rs_state_t *st, const rs_strset_t *users,
                        const rs_strset_t *refunded, char *errstr, size_t errstr_size)
{
        return load_programs(pg, st, errstr, errstr_size) &&
               load_refstats(pg, st, errstr, errstr_size) &&
               (users->n == 0 || (load_charges(pg, st, users, errstr, errstr_size) &&
                                  load_held(pg, st, users, errstr, errstr_size))) &&
               load_credits(pg, st, refunded, errstr, errstr_size);
}

/* ---------------------------------------------------------------- writes */

static bool write_users(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        cols_t k;
        cols_init(&k, 4);
        for (size_t i = 0; i < st->users.cap; i++) {
                rs_user_t *u = st->users.slots[i].value;
                if (!u || !u->dirty)
                        continue;
                rs_pgarr_text(&k.c[0], u->user_id);
                rs_pgarr_text(&k.c[1], u->email_hash);
                rs_pgarr_text(&k.c[2], u->signup_event_id);
                rs_pgarr_int_or_null(&k.c[3], u->signed_up_at_ms, RS_TS_NONE);
        }
        return cols_exec(
            pg, true,
            "UPDATE rs_users u SET email_hash = v.h, signup_event_id = v.e,"
            " signed_up_at = rs_ms_to_ts(v.t) FROM unnest($1::text[], $2::text[],"
            " $3::text[], $4::bigint[]) AS v(u, h, e, t) WHERE u.user_id = v.u",
            &k, errstr, errstr_size);
}

static bool write_codes(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        cols_t k;
        cols_init(&k, 3);
        for (size_t i = 0; i < st->codes.cap; i++) {
                rs_code_t *c = st->codes.slots[i].value;
                if (!c || !c->dirty)
                        continue;
                rs_pgarr_text(&k.c[0], c->code);
                rs_pgarr_int(&k.c[1], c->uses_count);
                rs_pgarr_text(&k.c[2], rs_code_status_name(c->status));
        }
        return cols_exec(
            pg, true,
            "UPDATE rs_codes c SET uses_count = v.n, status = v.s, updated_at = now()"
            " FROM unnest($1::text[], $2::int[], $3::text[]) AS v(c, n, s)"
            " WHERE c.code = v.c",
            &k, errstr, errstr_size);
}

static void referral_row(cols_t *k, const rs_referral_t *r)
{
        rs_pgarr_text(&k->c[0], r->id);
        rs_pgarr_text(&k->c[1], rs_ref_status_name(r->status));
        rs_pgarr_text(&k->c[2], r->payment_id);
        rs_pgarr_text(&k->c[3], r->payment_event_id);
        rs_pgarr_int_or_null(&k->c[4], r->qualified_at_ms, RS_TS_NONE);
        rs_pgarr_int_or_null(&k->c[5], r->reversed_at_ms, RS_TS_NONE);
        rs_pgarr_text(&k->c[6], r->reversal_event_id);
        if (k->n > 7) {
                rs_pgarr_int(&k->c[7], r->program_id);
                rs_pgarr_text(&k->c[8], r->code);
                rs_pgarr_text(&k->c[9], r->referrer);
                rs_pgarr_text(&k->c[10], r->referee);
                rs_pgarr_text(&k->c[11], r->signup_event_id);
                rs_pgarr_int(&k->c[12], r->signup_at_ms);
        }
}

static bool write_referrals(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        cols_t ins, upd;
        cols_init(&ins, 13);
        cols_init(&upd, 7);
        for (size_t i = 0; i < st->referrals.cap; i++) {
                for (rs_referral_t *r = st->referrals.slots[i].value; r;
                     r = r->next_of_referee) {
                        if (r->is_new)
                                referral_row(&ins, r);
                        else if (r->dirty)
                                referral_row(&upd, r);
                }
        }
        /* A plain INSERT: a conflict would mean the rules saw stale state, which
         * must fail loudly rather than overwrite. */
        bool ok = cols_exec(
            pg, true,
            "INSERT INTO rs_referrals (id, status, payment_id, payment_event_id,"
            " qualified_at, reversed_at, reversal_event_id, program_id, code,"
            " referrer_user_id, referee_user_id, signup_event_id, signup_at)"
            " SELECT id, st, pay, pe, rs_ms_to_ts(qa), rs_ms_to_ts(ra), rev, pid,"
            " code, rr, re, se, rs_ms_to_ts(sa) FROM unnest($1::uuid[], "
            "$2::text[],"
            " $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[],"
            " $8::bigint[], $9::text[], $10::text[], $11::text[], $12::text[],"
            " $13::bigint[]) AS v(id, st, pay, pe, qa, ra, rev, pid, code, rr, re,"
            " se, sa)",
            &ins, errstr, errstr_size);
        return cols_exec(
            pg, ok,
            "UPDATE rs_referrals f SET status = v.st, payment_id = v.pay,"
            " payment_event_id = v.pe, qualified_at = rs_ms_to_ts(v.qa),"
            " reversed_at = rs_ms_to_ts(v.ra), reversal_event_id = v.rev,"
            " updated_at = now() FROM unnest($1::uuid[], $2::text[], $3::text[],"
            " $4::text[], $5::bigint[], $6::bigint[], $7::text[])"
            " AS v(id, st, pay, pe, qa, ra, rev) WHERE f.id = v.id",
            &upd, errstr, errstr_size);
}

static bool write_refstats(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        cols_t k;
        cols_init(&k, 3);
        for (size_t i = 0; i < st->refstats.cap; i++) {
                rs_refstat_t *s = st->refstats.slots[i].value;
                if (!s || !s->dirty)
                        continue;
                rs_pgarr_int(&k.c[0], s->program_id);
                rs_pgarr_text(&k.c[1], s->referrer);
                rs_pgarr_int(&k.c[2], s->rewarded_count);
        }
        return cols_exec(
            pg, true,
            "INSERT INTO rs_referrer_stats (program_id, referrer_user_id,"
            " rewarded_count) SELECT * FROM unnest($1::bigint[], $2::text[],"
            " $3::int[]) ON CONFLICT (program_id, referrer_user_id) DO UPDATE"
            " SET rewarded_count = EXCLUDED.rewarded_count, updated_at = now()",
            &k, errstr, errstr_size);
}

static void credit_insert_row(cols_t *k, const rs_credit_t *c)
{
        rs_pgarr_text(&k->c[0], c->id);
        rs_pgarr_text(&k->c[1], c->referral->id);
        rs_pgarr_int(&k->c[2], c->referral->program_id);
        rs_pgarr_text(&k->c[3], c->beneficiary);
        rs_pgarr_text(&k->c[4], c->role == RS_ROLE_REFERRER ? "referrer" : "referee");
        rs_pgarr_int(&k->c[5], c->amount_minor);
        rs_pgarr_text(&k->c[6], c->currency);
        rs_pgarr_text(&k->c[7], c->reversed ? "reversed" : "issued");
        rs_pgarr_text(&k->c[8], c->source_event_id);
        rs_pgarr_int(&k->c[9], c->rewarded_count);
        rs_pgarr_bool(&k->c[10], c->goal_reached);
        rs_pgarr_int(&k->c[11], c->created_at_ms);
        rs_pgarr_int_or_null(&k->c[12], c->reversed ? c->reversed_at_ms : RS_TS_NONE,
                             RS_TS_NONE);
        rs_pgarr_text(&k->c[13], c->reversal_event_id);
}

static bool write_credits(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        cols_t ins, upd;
        cols_init(&ins, 14);
        cols_init(&upd, 3);
        for (size_t i = 0; i < st->referrals.cap; i++) {
                for (rs_referral_t *r = st->referrals.slots[i].value; r;
                     r = r->next_of_referee) {
                        for (rs_credit_t *c = r->credits; c; c = c->next) {
                                if (c->is_new) {
                                        credit_insert_row(&ins, c);
                                } else if (c->dirty) {
                                        rs_pgarr_text(&upd.c[0], c->id);
                                        rs_pgarr_int(&upd.c[1], c->reversed_at_ms);
                                        rs_pgarr_text(&upd.c[2], c->reversal_event_id);
                                }
                        }
                }
        }
        bool ok = cols_exec(
            pg, true,
            "INSERT INTO rs_credits (id, referral_id, program_id,"
            " beneficiary_user_id, role, amount_minor, currency, status,"
            " source_event_id, referrer_rewarded_count, goal_reached, created_at,"
            " reversed_at, reversal_event_id) SELECT id, rid, pid, b, role, amt,"
            " cur, st, src, cnt, goal, rs_ms_to_ts(ca), rs_ms_to_ts(ra), rev"
            " FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[],"
            " $5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[],"
            " $10::int[], $11::bool[], $12::bigint[], $13::bigint[], $14::text[])"
            " AS v(id, rid, pid, b, role, amt, cur, st, src, cnt, goal, ca, ra, "
            "rev)",
            &ins, errstr, errstr_size);
        return cols_exec(
            pg, ok,
            "UPDATE rs_credits c SET status = 'reversed',"
            " reversed_at = rs_ms_to_ts(v.ra), reversal_event_id = v.rev"
            " FROM unnest($1::uuid[], $2::bigint[], $3::text[]) AS v(id, ra, rev)"
            " WHERE c.id = v.id",
            &upd, errstr, errstr_size);
}

static bool write_rejections(rs_pg_t *pg, rs_state_t *st, char *errstr,
                             size_t errstr_size)
{
        cols_t k;
        cols_init(&k, 9);
        for (size_t i = 0; i < st->n_rejections; i++) {
                const rs_rejection_t *r = &st->rejections[i];
                rs_pgarr_text(&k.c[0], r->event_id);
                rs_pgarr_text(&k.c[1],
                              r->event_type == RS_EV_SIGNUP ? "signup" : "payment");
                rs_pgarr_text(&k.c[2], rs_reason_name(r->reason));
                rs_pgarr_text(&k.c[3], r->user_id);
                rs_pgarr_text(&k.c[4], r->code);
                rs_pgarr_int_or_null(&k.c[5], r->program_id, 0);
                rs_pgarr_text(&k.c[6], r->referrer);
                rs_pgarr_text(&k.c[7], r->detail);
                rs_pgarr_int(&k.c[8], r->occurred_at_ms);
        }
        return cols_exec(
            pg, true,
            "INSERT INTO rs_rejections (event_id, event_type, reason, user_id, code,"
            " program_id, referrer_user_id, detail, occurred_at)"
            " SELECT e, t, r, u, c, p, rr, d, rs_ms_to_ts(o) FROM unnest($1::text[],"
            " $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],"
            " $7::text[], $8::text[], $9::bigint[]) AS v(e, t, r, u, c, p, rr, d, o)",
            &k, errstr, errstr_size);
}

static bool write_charges(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        cols_t k;
        cols_init(&k, 6);
        for (size_t i = 0; i < st->charges.cap; i++) {
                rs_charge_t *c = st->charges.slots[i].value;
                if (!c || !c->dirty)
                        continue;
                rs_pgarr_text(&k.c[0], c->user_id);
                rs_pgarr_text(&k.c[1], c->payment_id);
                rs_pgarr_text(&k.c[2], c->event_id);
                rs_pgarr_int(&k.c[3], c->amount_minor);
                rs_pgarr_text(&k.c[4], c->currency);
                rs_pgarr_int(&k.c[5], c->occurred_at_ms);
        }
        return cols_exec(
            pg, true,
            "INSERT INTO rs_first_charges (user_id, payment_id, event_id,"
            " amount_minor, currency, occurred_at) SELECT u, p, e, a, c,"
            " rs_ms_to_ts(o) FROM unnest($1::text[], $2::text[], $3::text[],"
            " $4::bigint[], $5::text[], $6::bigint[]) AS v(u, p, e, a, c, o)"
            " ON CONFLICT (user_id) DO UPDATE SET payment_id = EXCLUDED.payment_id,"
            " event_id = EXCLUDED.event_id, amount_minor = EXCLUDED.amount_minor,"
            " currency = EXCLUDED.currency, occurred_at = EXCLUDED.occurred_at"
            " WHERE EXCLUDED.occurred_at < rs_first_charges.occurred_at",
            &k, errstr, errstr_size);
}

static bool write_held(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        cols_t ins, del;
        cols_init(&ins, 4);
        cols_init(&del, 2);
        for (size_t i = 0; i < st->held.cap; i++) {
                rs_held_refund_t *h = st->held.slots[i].value;
                if (!h || (h->is_new && h->applied))
                        continue; /* held and applied within the batch */
                if (h->is_new) {
                        rs_pgarr_text(&ins.c[0], h->user_id);
                        rs_pgarr_text(&ins.c[1], h->refund_of);
                        rs_pgarr_text(&ins.c[2], h->event_id);
                        rs_pgarr_int(&ins.c[3], h->occurred_at_ms);
                } else if (h->applied) {
                        rs_pgarr_text(&del.c[0], h->user_id);
                        rs_pgarr_text(&del.c[1], h->refund_of);
                }
        }
        bool ok = cols_exec(
            pg, true,
            "INSERT INTO rs_held_refunds (user_id, refund_of, event_id, "
            "occurred_at)"
            " SELECT u, r, e, rs_ms_to_ts(o) FROM unnest($1::text[], $2::text[],"
            " $3::text[], $4::bigint[]) AS v(u, r, e, o) ON CONFLICT DO NOTHING",
            &ins, errstr, errstr_size);
        return cols_exec(
            pg, ok,
            "DELETE FROM rs_held_refunds h USING unnest($1::text[], $2::text[])"
            " AS v(u, r) WHERE h.user_id = v.u AND h.refund_of = v.r",
            &del, errstr, errstr_size);
}

bool rs_store_write(rs_pg_t *pg, rs_state_t *st, char *errstr, size_t errstr_size)
{
        /* Referrals before credits (foreign key). */
        return write_users(pg, st, errstr, errstr_size) &&
               write_codes(pg, st, errstr, errstr_size) &&
               write_referrals(pg, st, errstr, errstr_size) &&
               write_refstats(pg, st, errstr, errstr_size) &&
               write_credits(pg, st, errstr, errstr_size) &&
               write_rejections(pg, st, errstr, errstr_size) &&
               write_charges(pg, st, errstr, errstr_size) &&
               write_held(pg, st, errstr, errstr_size);
}
