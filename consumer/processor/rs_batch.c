#include "rs_batch.h"
#include "rs_pgrows.h"
#include "rs_store_sql.h"
#include "rs_codes.h"
#include "rs_ids.h"
#include "rs_log.h"
#include "rs_split.h"
#include "rs_store.h"

#include <pthread.h>

#include <stdlib.h>
#include <string.h>

#define MAX_ATTEMPTS 5 /* deadlocks / serialization failures retried in place */

void rs_batch_stats_add(rs_batch_stats_t *to, const rs_batch_stats_t *from)
{
        _Static_assert(sizeof(rs_batch_stats_t) % sizeof(uint64_t) == 0, "counts only");
        uint64_t *t = (uint64_t *)to;
        const uint64_t *f = (const uint64_t *)from;
        for (size_t i = 0; i < sizeof(*to) / sizeof(uint64_t); i++)
                t[i] += f[i];
}

void rs_batch_init(rs_batch_t *b)
{
        memset(b, 0, sizeof(*b));
        rs_arena_init(&b->arena, 256 * 1024);
}

void rs_batch_reset(rs_batch_t *b)
{
        rs_arena_reset(&b->arena);
        b->n = 0;
        b->n_out = 0;
        memset(&b->stats, 0, sizeof(b->stats));
}

void rs_batch_free(rs_batch_t *b)
{
        rs_arena_destroy(&b->arena);
        free(b->msgs);
        free(b->out);
        memset(b, 0, sizeof(*b));
}

/* A sign-up's code, trimmed and upper-cased, if it has the shape of a code;
 * *intent: the sign-up carries a code at all (not blank), well formed or not. */
static const char *norm_code(rs_batch_t *b, const rs_event_t *ev, bool *intent)
{
        *intent = false;
        if (ev->type != RS_EV_SIGNUP || !ev->referral_code)
                return NULL;
        char norm[RS_REFERRAL_CODE_INPUT_MAX + 1];
        rs_code_normalize(ev->referral_code, norm, sizeof(norm));
        *intent = norm[0] != '\0';
        return rs_code_valid(norm) ? rs_arena_strdup(&b->arena, norm) : NULL;
}

rs_batch_msg_t *rs_batch_add(rs_batch_t *b, rs_codec_t *codec, rs_event_type_t type,
                             const char *topic, int32_t partition, int64_t offset,
                             const void *key, size_t key_len, const void *value,
                             size_t value_len, void *opaque)
{
        if (b->n == b->cap) {
                b->cap = b->cap ? b->cap * 2 : 256;
                b->msgs = rs_realloc(b->msgs, b->cap * sizeof(*b->msgs));
        }
        rs_batch_msg_t *m = &b->msgs[b->n++];
        memset(m, 0, sizeof(*m));
        m->topic = rs_arena_strdup(&b->arena, topic);
        m->partition = partition;
        m->offset = offset;
        m->key = key;
        m->key_len = key_len;
        m->value = value;
        m->value_len = value_len;
        m->type = type;
        m->opaque = opaque;
        rs_batch_redecode(b, codec, m);
        return m;
}

void rs_batch_redecode(rs_batch_t *b, rs_codec_t *codec, rs_batch_msg_t *m)
{
        memset(&m->err, 0, sizeof(m->err));
        m->code = NULL;
        m->intent = false;
        if (!m->value) {
                m->decoded = false;
                m->err.error_class = RS_ERR_BAD_FRAMING;
                rs_strlcpy(m->err.message, "record has no value", sizeof(m->err.message));
                return;
        }
        m->decoded = rs_codec_decode(codec, m->type, m->value, m->value_len, &b->arena,
                                     &m->ev, &m->err);
        if (m->decoded)
                m->code = norm_code(b, &m->ev, &m->intent);
}

void rs_batch_force_dlq(rs_batch_msg_t *m, const char *error_class, const char *message)
{
        m->decoded = false;
        m->err.error_class = error_class;
        rs_strlcpy(m->err.message, message, sizeof(m->err.message));
}

static rs_outmsg_t *add_out(rs_batch_t *b)
{
        if (b->n_out == b->cap_out) {
                b->cap_out = b->cap_out ? b->cap_out * 2 : 64;
                b->out = rs_realloc(b->out, b->cap_out * sizeof(*b->out));
        }
        rs_outmsg_t *o = &b->out[b->n_out++];
        memset(o, 0, sizeof(*o));
        return o;
}

/* The parts of a split batch (run_split) run in threads of their own, with
 * connections of their own; they share the codec (encoding) and the
 * filter's memory (remember_quiet), each used under this lock. The filter
 * reads its memory (mark_quiet) only before the parts start. */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---------------------------------------------------------------- codes */

/* Owners of the batch's codes, as far as the cache or a lookup knows them.
 * Only a hint of whom to lock first: the transaction locks and reads every
 * well-formed code itself, so a stale or missing entry cannot decide an
 * outcome (a code created after a "no such code" entry is still found). */
typedef struct code_lookup {
        rs_map_t owner_of; /* code -> owner */
        bool resolved;     /* once per batch, whatever its runs */
} code_lookup_t;

static void count_cache(rs_batch_t *b, rs_cache_stats_t before, rs_cache_stats_t after)
{
        b->stats.cache_hits += after.hits - before.hits;
        b->stats.cache_negative += after.negative_hits - before.negative_hits;
        b->stats.cache_misses += after.misses - before.misses;
        b->stats.cache_errors += after.errors - before.errors;
}

static void note_owners(code_lookup_t *cl, const rs_cache_entry_t *e, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (e[i].state == RS_CACHE_HIT)
                        rs_map_put(&cl->owner_of, e[i].code, (void *)e[i].owner);
}

static bool resolve_codes(rs_batch_env_t *env, rs_batch_t *b, code_lookup_t *cl,
                          char *errstr, size_t errstr_size)
{
        rs_strset_t codes;
        rs_strset_init(&codes);
        for (size_t i = 0; i < b->n; i++) {
                if (b->msgs[i].decoded)
                        rs_strset_add(&codes, b->msgs[i].code);
        }
        rs_cache_entry_t *e = rs_calloc(codes.n, sizeof(*e));
        for (size_t i = 0; i < codes.n; i++)
                e[i].code = codes.items[i];
        rs_cache_stats_t before =
            env->cache ? rs_cache_stats(env->cache) : (rs_cache_stats_t){0};
        if (env->cache && codes.n)
                rs_cache_get(env->cache, e, codes.n, &b->arena);
        note_owners(cl, e, codes.n);
        /* Misses are looked up, and only those are written back: re-writing
         * what came from Redis would keep a stale entry alive forever. */
        size_t nmiss = 0;
        for (size_t i = 0; i < codes.n; i++)
                if (e[i].state == RS_CACHE_MISS)
                        e[nmiss++] = e[i];
        bool ok = rs_store_find_codes(env->pg, e, nmiss, &b->arena, errstr, errstr_size);
        if (ok) {
                note_owners(cl, e, nmiss);
                if (nmiss && env->cache)
                        rs_cache_put(env->cache, e, nmiss);
        }
        if (env->cache)
                count_cache(b, before, rs_cache_stats(env->cache));
        free(e);
        rs_strset_free(&codes);
        return ok;
}

/* ---------------------------------------------------------------- inbox */

static const char *inbox_kind(const rs_batch_msg_t *m)
{
        if (!m->decoded)
                return "dlq";
        return m->ev.type == RS_EV_SIGNUP ? "signup" : "payment";
}

/* A dead letter's idempotency key: where it was read, plus a digest of the
 * record, so a topic deleted and recreated (offsets from 0 again) cannot make
 * a new malformed record look like an old one. */
static const char *inbox_id(rs_batch_t *b, const rs_batch_msg_t *m)
{
        if (m->decoded)
                return m->ev.event_id;
        rs_sha256_t h;
        unsigned char d[32];
        rs_sha256_init(&h);
        rs_sha256_update(&h, m->key ? m->key : "", m->key ? m->key_len : 0);
        rs_sha256_update(&h, "\x1f", 1);
        rs_sha256_update(&h, m->value ? m->value : "", m->value ? m->value_len : 0);
        rs_sha256_final(&h, d);
        return rs_arena_printf(&b->arena, "%s/%d/%lld/%02x%02x%02x%02x%02x%02x%02x%02x",
                               m->topic, (int)m->partition, (long long)m->offset, d[0],
                               d[1], d[2], d[3], d[4], d[5], d[6], d[7]);
}

/* The inbox key of an event: the first 16 bytes of SHA-256 over the kind, a
 * 0x1f byte and the id, written as a uuid (rs_inbox_key() of
 * sql/005_compact_inbox.sql computes the same). */
const char *rs_batch_inbox_key(rs_arena_t *a, const char *kind, const char *id)
{
        rs_sha256_t h;
        unsigned char d[32];
        rs_sha256_init(&h);
        rs_sha256_update(&h, kind, strlen(kind));
        rs_sha256_update(&h, "\x1f", 1);
        rs_sha256_update(&h, id, strlen(id));
        rs_sha256_final(&h, d);
        char *k = rs_arena_alloc(a, RS_UUID_STR_LEN + 1);
        rs_uuid_format(d, k);
        return k;
}

/* Marks later copies of an event within the batch DUPLICATE, and the first
 * NEW (or DLQ), before the inbox is asked. Copies have the same kind and id,
 * so the same inbox key; the key itself (a hash) is made only for the
 * events that claim one (claim_inbox). */
static void dedupe_batch(rs_batch_t *b)
{
        rs_map_t first[3]; /* by kind (sign-up, payment, dead letter): id seen */
        for (int k = 0; k < 3; k++)
                rs_map_init(&first[k]);
        for (size_t i = 0; i < b->n; i++) {
                rs_batch_msg_t *m = &b->msgs[i];
                rs_map_t *seen = &first[!m->decoded ? 2 : m->ev.type == RS_EV_SIGNUP];
                if (rs_map_put(seen, inbox_id(b, m), m)) {
                        m->outcome = RS_MSG_DUPLICATE;
                        continue;
                }
                m->outcome = m->decoded ? RS_MSG_NEW : RS_MSG_DLQ;
        }
        for (int k = 0; k < 3; k++)
                rs_map_free(&first[k]);
}

/* ---------------------------------------------------------------- rules */

typedef struct txn_sets {
        rs_strset_t users, payers, codes, refunded;
        rs_strset_t referees;     /* users of the sign-ups that carry a code */
        rs_strset_t fingerprints; /* of the charges */
        int64_t first_signup_ms;  /* the earliest sign-up with a code */
} txn_sets_t;

static void sets_init(txn_sets_t *s)
{
        rs_strset_init(&s->users);
        rs_strset_init(&s->payers);
        rs_strset_init(&s->codes);
        rs_strset_init(&s->refunded);
        rs_strset_init(&s->referees);
        rs_strset_init(&s->fingerprints);
        s->first_signup_ms = INT64_MAX;
}

static void sets_free(txn_sets_t *s)
{
        rs_strset_free(&s->users);
        rs_strset_free(&s->payers);
        rs_strset_free(&s->codes);
        rs_strset_free(&s->refunded);
        rs_strset_free(&s->referees);
        rs_strset_free(&s->fingerprints);
}

static void collect(rs_batch_t *b, const code_lookup_t *cl, txn_sets_t *s)
{
        for (size_t i = 0; i < b->n; i++) {
                const rs_batch_msg_t *m = &b->msgs[i];
                if (m->outcome != RS_MSG_NEW || m->quiet)
                        continue;
                rs_strset_add(&s->users, m->ev.user_id);
                if (m->ev.type == RS_EV_PAYMENT) {
                        rs_strset_add(&s->payers, m->ev.user_id);
                        if (m->ev.kind == RS_PAY_REFUND)
                                rs_strset_add(&s->refunded, m->ev.refund_of);
                        else if (m->ev.payment_fingerprint)
                                rs_strset_add(&s->fingerprints,
                                              m->ev.payment_fingerprint);
                        continue;
                }
                if (m->intent) {
                        rs_strset_add(&s->referees, m->ev.user_id);
                        s->first_signup_ms =
                            RS_MIN(s->first_signup_ms, m->ev.occurred_at_ms);
                }
                const char *code = m->code;
                if (code) {
                        rs_strset_add(&s->codes, code);
                        rs_strset_add(&s->users, rs_map_get(&cl->owner_of, code));
                }
        }
}

/* Users the rules may write for but who were not locked up front (a code or
 * referral that appeared between the lookup and the locks): lock them now. */
static bool lock_stragglers(rs_pg_t *pg, rs_state_t *st, txn_sets_t *s, char *errstr,
                            size_t errstr_size)
{
        rs_strset_t extra;
        rs_strset_init(&extra);
        for (size_t i = 0; i < st->codes.cap; i++) {
                rs_code_t *c = st->codes.slots[i].value;
                if (c && !rs_strset_has(&s->users, c->owner))
                        rs_strset_add(&extra, c->owner);
        }
        for (size_t i = 0; i < s->payers.n; i++) {
                for (rs_referral_t *r = rs_state_referrals_of(st, s->payers.items[i]); r;
                     r = r->next_of_referee)
                        if (!rs_strset_has(&s->users, r->referrer))
                                rs_strset_add(&extra, r->referrer);
        }
        bool ok = rs_store_lock_and_load(pg, st, &extra, NULL, errstr, errstr_size);
        for (size_t i = 0; ok && i < extra.n; i++)
                rs_strset_add(&s->users, extra.items[i]);
        rs_strset_free(&extra);
        return ok;
}

static void count_results(rs_batch_t *b, const rs_state_t *st)
{
        for (size_t i = 0; i < b->n; i++) {
                const rs_batch_msg_t *m = &b->msgs[i];
                b->stats.filtered += m->quiet;
                b->stats.filtered_remembered += m->remembered;
                if (m->outcome == RS_MSG_NEW && m->ev.type == RS_EV_SIGNUP)
                        b->stats.signups++;
                else if (m->outcome == RS_MSG_NEW)
                        b->stats.payments++;
                else if (m->outcome == RS_MSG_DUPLICATE)
                        b->stats.duplicates++;
                else if (m->outcome == RS_MSG_DLQ)
                        b->stats.dlq++;
        }
        for (size_t i = 0; i < st->referrals.cap; i++)
                for (rs_referral_t *r = st->referrals.slots[i].value; r;
                     r = r->next_of_referee)
                        b->stats.referrals += r->is_new;
        for (size_t i = 0; i < st->n_rejections; i++)
                b->stats.rejections[st->rejections[i].reason]++;
        for (size_t i = 0; i < st->n_emissions; i++) {
                const rs_emission_t *e = &st->emissions[i];
                if (e->reversal)
                        b->stats.reversals++;
                else
                        b->stats.credits[e->credit->role]++;
        }
}

/* ---------------------------------------------------------------- outbox */

/* Error texts go into a text column and a Kafka header: keep them valid UTF-8. */
static const char *clean_text(rs_arena_t *a, const char *s)
{
        char *o = rs_arena_strdup(a, s);
        for (unsigned char *p = (unsigned char *)o; *p; p++) {
                if (*p == '\n' || *p == '\t')
                        *p = ' ';
                else if (*p < 0x20 || *p >= 0x80)
                        *p = '?';
        }
        return o;
}

static bool emission_out(rs_batch_env_t *env, rs_batch_t *b, rs_state_t *st,
                         const rs_emission_t *e, char *errstr, size_t errstr_size)
{
        const rs_credit_t *c = e->credit;
        const rs_referral_t *r = c->referral;
        const rs_program_t *p = rs_state_program(st, r->program_id);
        /* A release has no input record behind it (docs/events.md §4). */
        bool release = e->event_index == RS_RELEASE_INDEX;
        const rs_batch_msg_t *src = release ? NULL : &b->msgs[e->event_index];
        rs_buf_t buf;
        rs_buf_init(&buf);
        bool ok;
        if (e->reversal) {
                rs_reversed_t ev = {.credit_id = c->id,
                                    .referral_id = r->id,
                                    .beneficiary_user_id = c->beneficiary,
                                    .amount_minor = c->amount_minor,
                                    .currency = c->currency,
                                    .source_event_id = c->reversal_event_id,
                                    .reversed_at_ms = c->reversed_at_ms,
                                    .reason = "REFUND"};
                pthread_mutex_lock(&shared_lock);
                ok = rs_codec_encode_reversed(env->codec, &ev, &buf, errstr, errstr_size);
                pthread_mutex_unlock(&shared_lock);
        } else {
                rs_credited_t ev = {.credit_id = c->id,
                                    .referral_id = r->id,
                                    .program_key = p->key,
                                    .code = r->code,
                                    .referrer_user_id = r->referrer,
                                    .referee_user_id = r->referee,
                                    .beneficiary_user_id = c->beneficiary,
                                    .role = c->role,
                                    .amount_minor = c->amount_minor,
                                    .currency = c->currency,
                                    .source_event_id = c->source_event_id,
                                    .credited_at_ms = c->released_at_ms != RS_TS_NONE
                                                          ? c->released_at_ms
                                                          : c->created_at_ms,
                                    .referrer_rewarded_count = c->rewarded_count,
                                    .referral_goal = p->goal,
                                    .goal_reached = c->goal_reached};
                pthread_mutex_lock(&shared_lock);
                ok = rs_codec_encode_credited(env->codec, &ev, &buf, errstr, errstr_size);
                pthread_mutex_unlock(&shared_lock);
        }
        if (ok) {
                rs_outmsg_t *o = add_out(b);
                o->dest = e->reversal ? RS_DEST_REVERSED : RS_DEST_CREDITED;
                o->key = c->beneficiary;
                o->key_len = strlen(c->beneficiary);
                o->payload = rs_arena_strndup(&b->arena, buf.data, buf.len);
                o->payload_len = buf.len;
                o->event_type =
                    e->reversal ? "ReferralCreditReversed" : "ReferralCredited";
                o->source_topic = src ? src->topic : RS_RELEASE_SOURCE;
                o->source_partition = src ? src->partition : -1;
                o->source_offset = src ? src->offset : -1;
        }
        rs_buf_free(&buf);
        return ok;
}

static void dlq_out(rs_batch_t *b, const rs_batch_msg_t *m)
{
        rs_outmsg_t *o = add_out(b);
        o->dest = RS_DEST_DLQ;
        o->key = m->key;
        o->key_len = m->key_len;
        o->payload = m->value;
        o->payload_len = m->value_len;
        o->event_type = rs_event_type_name(m->type);
        o->source_topic = m->topic;
        o->source_partition = m->partition;
        o->source_offset = m->offset;
        o->error_class = m->err.error_class;
        o->error_message = clean_text(&b->arena, m->err.message);
}

static void outbox_destination(rs_pgarr_t *a, const void *row)
{
        rs_pgarr_text(a, rs_dest_name(((const rs_outmsg_t *)row)->dest));
}
static void outbox_key(rs_pgarr_t *a, const void *row)
{
        const rs_outmsg_t *o = row;
        rs_pgarr_bytea(a, o->key, o->key_len);
}
static void outbox_payload(rs_pgarr_t *a, const void *row)
{
        const rs_outmsg_t *o = row;
        rs_pgarr_bytea(a, o->payload, o->payload_len);
}

static const rs_pgcol_t outbox_cols[] = {
    RS_PGCOL_FN("destination", "text", outbox_destination),
    RS_PGCOL_FN("msg_key", "bytea", outbox_key),
    RS_PGCOL_FN("payload", "bytea", outbox_payload),
    RS_PGCOL(rs_outmsg_t, event_type, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_outmsg_t, source_topic, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_outmsg_t, source_partition, "int", RS_PGCOL_I32),
    RS_PGCOL(rs_outmsg_t, source_offset, "bigint", RS_PGCOL_I64),
    RS_PGCOL(rs_outmsg_t, error_class, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_outmsg_t, error_message, "text", RS_PGCOL_TEXT),
};

static int cmp_int64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return (x > y) - (x < y);
}

/* Queues the insert of b->out as outbox rows of one outbox batch (*at: its
 * number in the pipeline, -1 when there is nothing to insert). The batch is
 * claimed by this process (claimed_until = now + lease) so the sweep of
 * other instances leaves it alone while this one publishes it. */
static bool queue_outbox(rs_pg_t *pg, rs_batch_t *b, int64_t lease_ms, int *at,
                         char *errstr, size_t errstr_size)
{
        *at = -1;
        if (b->n_out == 0)
                return true;
        rs_pgrows_t rows;
        rs_pgrows_init(&rows, outbox_cols, RS_ARRAY_SIZE(outbox_cols));
        for (size_t i = 0; i < b->n_out; i++)
                rs_pgrows_add(&rows, &b->out[i]);
        char lease[24];
        snprintf(lease, sizeof(lease), "%lld", (long long)lease_ms);
        const char *extra[] = {lease};
        *at = rs_pgrows_send(pg, SQL_OUTBOX_INSERT, &rows, extra, 1, errstr, errstr_size);
        rs_pgrows_free(&rows);
        return *at >= 0;
}

/* The outbox rows' ids and their batch's, from the insert's RETURNING. The
 * sequence hands out increasing ids in insertion order, so the sorted ids
 * match b->out whatever order RETURNING uses. */
static bool take_outbox_ids(rs_batch_t *b, PGresult *res)
{
        size_t n = (size_t)PQntuples(res);
        int64_t *ids = rs_malloc((n ? n : 1) * sizeof(*ids));
        for (size_t r = 0; r < n; r++)
                ids[r] = rs_pg_int(res, (int)r, 0, 0);
        qsort(ids, n, sizeof(*ids), cmp_int64);
        int64_t batch = n ? rs_pg_int(res, 0, 1, 0) : 0;
        for (size_t r = 0; r < n && r < b->n_out; r++) {
                b->out[r].outbox_id = ids[r];
                b->out[r].outbox_batch = batch;
        }
        free(ids);
        return n == b->n_out;
}

/* ---------------------------------------------------------------- txn */

typedef struct run_ctx {
        rs_batch_env_t *env;
        rs_batch_t *b;
        rs_state_t st;
        txn_sets_t sets;
        code_lookup_t *cl;
        /* The referrers of the batch's payers (rs_store_find_referrers),
         * found before the run, after the filter set its records aside
         * (run_split); or NULL: the run does both. */
        const rs_map_t *referrers_of;
        uint64_t quiet_gen; /* of env->quiet when the run began */
        /* After COMMIT, what each locked user is: quiet (the first charge's
         * time) or RS_QUIET_NOT, and their referrer (remember_quiet). */
        const char **remember, **remember_referrer;
        int64_t *remember_first;
        size_t n_remember;
        /* The inbox claimed optimistically (claim_inbox): the keys the
         * write pipeline inserts, those of the batch's events (claimed) and
         * those of earlier events judged now (added). */
        bool optimistic;
        rs_pgarr_t claimed, added;
        /* Counted into the batch's stats if the run commits. */
        uint64_t early_charges;
} run_ctx_t;

static const rs_pgcol_t fingerprint_cols[] = {
    RS_PGCOL(rs_event_t, user_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_event_t, payment_fingerprint, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_event_t, event_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_event_t, occurred_at_ms, "bigint", RS_PGCOL_TIME),
};

/* Remembers the payment methods of the batch's new charges (docs/rules.md §3). */
static bool write_fingerprints(rs_pg_t *pg, rs_batch_t *b, char *errstr,
                               size_t errstr_size)
{
        rs_pgrows_t rows;
        rs_pgrows_init(&rows, fingerprint_cols, RS_ARRAY_SIZE(fingerprint_cols));
        for (size_t i = 0; i < b->n; i++) {
                const rs_batch_msg_t *m = &b->msgs[i];
                if (m->outcome == RS_MSG_NEW && m->ev.type == RS_EV_PAYMENT &&
                    m->ev.kind == RS_PAY_CHARGE && m->ev.payment_fingerprint)
                        rs_pgrows_add(&rows, &m->ev);
        }
        return rs_pgrows_exec(pg, true, SQL_FINGERPRINTS_INSERT, &rows, errstr,
                              errstr_size);
}

/* ---------------------------------------------------------------- filter */

/* The first-level filter (docs/design.md §2) sets aside ("quiet") the events
 * that need no locks, loads or rules:
 *   - a sign-up without a code of a user with no other part in the batch: it
 *     only sets the user's sign-up fields where they are unset, which one
 *     statement does (write_quiet_signups);
 *   - a charge of a user who signed up, is the referee of no pending
 *     referral and was charged before, no later than this charge: it
 *     changes nothing but the payment fingerprints. The users' rows are read
 *     without a lock: a referral created meanwhile by another instance is
 *     ordered after the charge, which that referral would not judge either
 *     (it judges the first charge).
 * Users who appear in the batch otherwise (a sign-up with a code, a refund,
 * a code's owner, both a sign-up and a charge) are never quiet. */
static bool mark_quiet(run_ctx_t *x, char *errstr, size_t errstr_size)
{
        rs_batch_env_t *env = x->env;
        rs_batch_t *b = x->b;
        const code_lookup_t *cl = x->cl;
        rs_map_t earliest; /* user -> the batch message of their earliest charge */
        rs_strset_t plain; /* users with a sign-up without a code */
        rs_strset_t other; /* users with any other part in the batch */
        rs_map_init(&earliest);
        rs_strset_init(&plain);
        rs_strset_init(&other);
        for (size_t i = 0; i < b->n; i++) {
                rs_batch_msg_t *m = &b->msgs[i];
                m->quiet = m->remembered = false;
                if (m->outcome != RS_MSG_NEW)
                        continue;
                const rs_event_t *ev = &m->ev;
                if (ev->type == RS_EV_PAYMENT && ev->kind == RS_PAY_CHARGE) {
                        const rs_batch_msg_t *e = rs_map_get(&earliest, ev->user_id);
                        if (!e || ev->occurred_at_ms < e->ev.occurred_at_ms)
                                rs_map_put(&earliest, ev->user_id, m);
                        continue;
                }
                if (ev->type == RS_EV_SIGNUP && !m->intent) {
                        rs_strset_add(&plain, ev->user_id);
                        continue;
                }
                rs_strset_add(&other, ev->user_id);
                if (m->code)
                        rs_strset_add(&other, rs_map_get(&cl->owner_of, m->code));
        }
        rs_strset_t candidates, quiet;
        rs_strset_init(&candidates);
        rs_strset_init(&quiet);
        for (size_t i = 0; i < earliest.cap; i++) {
                const char *u = earliest.slots[i].key;
                if (!u || rs_strset_has(&other, u) || rs_strset_has(&plain, u))
                        continue;
                /* A user the memory knows needs no read: it has the row's
                 * answer (rs_quiet.h). */
                const rs_batch_msg_t *e = earliest.slots[i].value;
                int64_t first = env->quiet ? rs_quiet_get(env->quiet, u) : RS_TS_NONE;
                if (first == RS_TS_NONE)
                        rs_strset_add(&candidates, u);
                else if (first <= e->ev.occurred_at_ms)
                        rs_strset_add(&quiet, u);
        }
        bool ok = true;
        if (candidates.n > 0) {
                rs_pgarr_t arr;
                rs_pgarr_init(&arr);
                const char *params[] = {rs_strset_literal(&candidates, &arr)};
                PGresult *res =
                    rs_pg_exec(env->pg, SQL_USERS_QUIET, 1, params, errstr, errstr_size);
                rs_pgarr_free(&arr);
                ok = res != NULL;
                for (int r = 0; res && r < PQntuples(res); r++) {
                        const rs_batch_msg_t *e =
                            rs_map_get(&earliest, PQgetvalue(res, r, 0));
                        if (e && rs_pg_int(res, r, 1, INT64_MAX) <= e->ev.occurred_at_ms)
                                rs_strset_add(&quiet, e->ev.user_id);
                }
                PQclear(res);
        }
        for (size_t i = 0; ok && i < b->n; i++) {
                rs_batch_msg_t *m = &b->msgs[i];
                if (m->outcome != RS_MSG_NEW)
                        continue;
                const char *u = m->ev.user_id;
                if (m->ev.type == RS_EV_PAYMENT)
                        m->quiet = rs_strset_has(&quiet, u);
                else
                        m->quiet = !m->intent && !rs_strset_has(&other, u) &&
                                   !rs_map_get(&earliest, u);
                m->remembered = m->quiet && m->ev.type == RS_EV_PAYMENT &&
                                !rs_strset_has(&candidates, u);
        }
        rs_strset_free(&quiet);
        rs_strset_free(&candidates);
        rs_strset_free(&other);
        rs_strset_free(&plain);
        rs_map_free(&earliest);
        return ok;
}

static const rs_pgcol_t quiet_signup_cols[] = {
    RS_PGCOL(rs_user_t, user_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_user_t, email_hash, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_user_t, signup_event_id, "text", RS_PGCOL_TEXT),
    RS_PGCOL(rs_user_t, signed_up_at_ms, "bigint", RS_PGCOL_TIME),
};

/* The quiet sign-ups: one row per user (the first sign-up of the batch, and
 * the first e-mail hash), merged into rs_users where unset. */
static bool write_quiet_signups(rs_pg_t *pg, rs_batch_t *b, char *errstr,
                                size_t errstr_size)
{
        rs_map_t by_user; /* user -> rs_user_t */
        rs_map_init(&by_user);
        rs_pgrows_t rows;
        rs_pgrows_init(&rows, quiet_signup_cols, RS_ARRAY_SIZE(quiet_signup_cols));
        rs_user_t **order = rs_malloc((b->n ? b->n : 1) * sizeof(*order));
        size_t n = 0;
        for (size_t i = 0; i < b->n; i++) {
                const rs_batch_msg_t *m = &b->msgs[i];
                if (!m->quiet || m->ev.type != RS_EV_SIGNUP)
                        continue;
                const rs_event_t *ev = &m->ev;
                const char *hash =
                    ev->email_hash && *ev->email_hash ? ev->email_hash : NULL;
                rs_user_t *u = rs_map_get(&by_user, ev->user_id);
                if (u) {
                        u->email_hash = u->email_hash ? u->email_hash : hash;
                        continue;
                }
                u = rs_arena_alloc(&b->arena, sizeof(*u));
                *u = (rs_user_t){.user_id = ev->user_id,
                                 .email_hash = hash,
                                 .signup_event_id = ev->event_id,
                                 .signed_up_at_ms = ev->occurred_at_ms};
                rs_map_put(&by_user, u->user_id, u);
                order[n++] = u;
        }
        for (size_t i = 0; i < n; i++)
                rs_pgrows_add(&rows, order[i]);
        free(order);
        rs_map_free(&by_user);
        return rs_pgrows_exec(pg, true, SQL_USERS_SIGNUP_MERGE, &rows, errstr,
                              errstr_size);
}

/* Keeps each locked user's row current for the filter: the first charge's
 * time, and whether a referral of theirs is pending. A user who only paid
 * gets a row at the first charge. */
static void update_user_flags(run_ctx_t *x)
{
        rs_state_t *st = &x->st;
        size_t n = x->sets.users.n;
        x->remember = rs_arena_alloc(st->arena, (n ? n : 1) * sizeof(*x->remember));
        x->remember_first =
            rs_arena_alloc(st->arena, (n ? n : 1) * sizeof(*x->remember_first));
        x->remember_referrer =
            rs_arena_alloc(st->arena, (n ? n : 1) * sizeof(*x->remember_referrer));
        for (size_t i = 0; i < x->sets.users.n; i++) {
                const char *id = x->sets.users.items[i];
                bool pending = false;
                /* One referrer (or none) is remembered; several are not. */
                const char *referrer = RS_QUIET_NO_REFERRER;
                for (const rs_referral_t *r = rs_state_referrals_of(st, id); r;
                     r = r->next_of_referee) {
                        pending = pending || r->status == RS_REF_PENDING;
                        if (referrer == RS_QUIET_NO_REFERRER)
                                referrer = r->referrer;
                        else if (referrer && strcmp(referrer, r->referrer) != 0)
                                referrer = NULL;
                }
                const rs_charge_t *ch = rs_state_charge(st, id);
                int64_t first = ch ? ch->occurred_at_ms : RS_TS_NONE;
                rs_user_t *u = rs_state_user(st, id);
                x->remember_referrer[x->n_remember] = referrer;
                x->remember[x->n_remember] = id;
                x->remember_first[x->n_remember++] =
                    u && u->signed_up && !pending && first != RS_TS_NONE ? first
                                                                         : RS_QUIET_NOT;
                if (!u && !pending && first == RS_TS_NONE)
                        continue;
                if (!u) {
                        u = rs_arena_alloc(st->arena, sizeof(*u));
                        *u = (rs_user_t){.user_id = id,
                                         .signed_up_at_ms = RS_TS_NONE,
                                         .first_charge_at_ms = RS_TS_NONE,
                                         .dirty = true};
                        rs_state_add_user(st, u);
                }
                if (u->pending_referral != pending || u->first_charge_at_ms != first) {
                        u->pending_referral = pending;
                        u->first_charge_at_ms = first;
                        u->dirty = true;
                }
        }
}

/* Whether the inbox records m (docs/design.md §2). A replayed event must find
 * the state that makes it a no-op. A sign-up without a code finds its user
 * row; a charge of a user who signed up and has no pending referral finds
 * the first charge it wrote or one before it; neither is recorded. Every
 * other event is: a dead letter, a sign-up with a code, a refund, and a
 * charge that a referral may judge (the user has a pending referral, signs
 * up with a code in this batch, or has not signed up yet). */
static bool needs_claim(run_ctx_t *x, const rs_batch_msg_t *m)
{
        if (m->outcome == RS_MSG_DLQ)
                return true;
        if (m->outcome != RS_MSG_NEW || m->quiet)
                return false;
        const rs_event_t *ev = &m->ev;
        if (ev->type == RS_EV_SIGNUP)
                return m->intent;
        if (ev->kind != RS_PAY_CHARGE)
                return true;
        const rs_user_t *u = rs_state_user(&x->st, ev->user_id);
        if (!u || !u->signed_up || rs_strset_has(&x->sets.referees, ev->user_id))
                return true;
        for (const rs_referral_t *r = rs_state_referrals_of(&x->st, ev->user_id); r;
             r = r->next_of_referee)
                if (r->status == RS_REF_PENDING)
                        return true;
        return false;
}

/* Records the batch's events that need it in the inbox; those already there
 * become DUPLICATE. A sign-up with a code may judge its user's first charge,
 * processed earlier without a record: that charge is recorded too, so that a
 * replay of it finds it judged.
 *
 * Optimistically (docs/design.md §2), nothing is sent here: the keys go
 * into the write pipeline, the events stay NEW, and a key already there
 * fails the batch, which then runs again the pessimistic way, with this
 * round trip (rs_batch_run). Replays are rare: a restart's first batches. */
static bool claim_inbox(run_ctx_t *x, char *errstr, size_t errstr_size)
{
        rs_batch_t *b = x->b;
        rs_map_t by_key; /* inbox key -> msg */
        rs_pgarr_t *keys = &x->claimed;
        rs_map_init(&by_key);
        for (size_t i = 0; i < b->n; i++) {
                rs_batch_msg_t *m = &b->msgs[i];
                if (!needs_claim(x, m))
                        continue;
                const char *k =
                    rs_batch_inbox_key(&b->arena, inbox_kind(m), inbox_id(b, m));
                rs_map_put(&by_key, k, m);
                rs_pgarr_text(keys, k);
                if (!x->optimistic)
                        m->outcome = RS_MSG_DUPLICATE; /* until the insert says not */
        }
        for (size_t i = 0; i < x->sets.referees.n; i++) {
                const rs_charge_t *ch =
                    rs_state_charge(&x->st, x->sets.referees.items[i]);
                if (!ch)
                        continue;
                const char *k = rs_batch_inbox_key(&b->arena, "payment", ch->event_id);
                if (!rs_map_get(&by_key, k))
                        rs_pgarr_text(x->optimistic ? &x->added : keys, k);
        }
        PGresult *res = NULL;
        bool ok = true;
        if (!x->optimistic && keys->count > 0) {
                const char *value;
                int len;
                const rs_pgparams_t p = rs_pgarr_param(keys, &value, &len);
                res = rs_pg_exec_params(x->env->pg, SQL_INBOX_CLAIM, &p, errstr,
                                        errstr_size);
                ok = res != NULL;
        }
        for (int r = 0; res && r < PQntuples(res); r++) {
                rs_batch_msg_t *m = rs_map_get(&by_key, PQgetvalue(res, r, 0));
                if (m)
                        m->outcome = m->decoded ? RS_MSG_NEW : RS_MSG_DLQ;
        }
        PQclear(res);
        rs_map_free(&by_key);
        return ok;
}

/* The optimistic claim's inserts, first in the write pipeline. */
static bool queue_claim(run_ctx_t *x, char *errstr, size_t errstr_size)
{
        const char *value;
        int len;
        if (!x->optimistic)
                return true;
        if (x->claimed.count > 0) {
                const rs_pgparams_t p = rs_pgarr_param(&x->claimed, &value, &len);
                if (rs_pg_send_params(x->env->pg, SQL_INBOX_INSERT, &p, errstr,
                                      errstr_size) < 0)
                        return false;
        }
        if (x->added.count > 0) {
                const rs_pgparams_t p = rs_pgarr_param(&x->added, &value, &len);
                if (rs_pg_send_params(x->env->pg, SQL_INBOX_ADD, &p, errstr,
                                      errstr_size) < 0)
                        return false;
        }
        return true;
}

/* The referrers of the payers, for the locks (rs_store_find_referrers): from
 * the filter's memory where it knows them (rs_quiet.h), from the database
 * for the rest. */
static bool find_referrers(rs_batch_env_t *env, rs_batch_t *b, const rs_strset_t *payers,
                           rs_map_t *of, char *errstr, size_t errstr_size)
{
        rs_strset_t unknown;
        rs_strset_init(&unknown);
        pthread_mutex_lock(&shared_lock);
        for (size_t i = 0; i < payers->n; i++) {
                const char *p = payers->items[i], *referrer;
                if (!env->quiet || !rs_quiet_referrer(env->quiet, p, &referrer)) {
                        rs_strset_add(&unknown, p);
                        continue;
                }
                b->stats.referrers_remembered++;
                if (referrer)
                        rs_store_add_referrer(of, &b->arena, p, referrer);
        }
        pthread_mutex_unlock(&shared_lock);
        bool ok = rs_store_find_referrers(env->pg, &unknown, of, &b->arena, errstr,
                                          errstr_size);
        rs_strset_free(&unknown);
        return ok;
}

static bool load_state(run_ctx_t *x, char *errstr, size_t errstr_size)
{
        rs_pg_t *pg = x->env->pg;
        rs_batch_t *b = x->b;
        if (x->sets.users.n == 0)
                return true;
        rs_map_t found;
        rs_map_init(&found);
        const rs_map_t *of = x->referrers_of ? x->referrers_of : &found;
        bool ok = x->referrers_of ||
                  find_referrers(x->env, b, &x->sets.payers, &found, errstr, errstr_size);
        for (size_t i = 0; ok && i < x->sets.payers.n; i++)
                for (const rs_referrer_of_t *e = rs_map_get(of, x->sets.payers.items[i]);
                     e; e = e->next)
                        rs_strset_add(&x->sets.users, e->referrer);
        rs_map_free(&found);
        return ok &&
               rs_store_lock_and_load(pg, &x->st, &x->sets.users, &x->sets.codes, errstr,
                                      errstr_size) &&
               lock_stragglers(pg, &x->st, &x->sets, errstr, errstr_size) &&
               rs_store_load_rest(
                   pg, &x->st,
                   &(rs_store_wants_t){.refunded = &x->sets.refunded,
                                       .fingerprints = &x->sets.fingerprints,
                                       .signups_since_ms =
                                           x->sets.first_signup_ms == INT64_MAX
                                               ? INT64_MAX
                                               : x->sets.first_signup_ms - RS_DAY_MS},
                   errstr, errstr_size);
}

/* The payment methods of the batch's charges (quiet ones too), each at its
 * event: a referrer's charge earlier in the batch counts for the shared
 * payment method check, a later one does not. */
static void note_fingerprints(run_ctx_t *x)
{
        for (size_t i = 0; i < x->b->n; i++) {
                const rs_batch_msg_t *m = &x->b->msgs[i];
                if (m->outcome == RS_MSG_NEW && m->ev.type == RS_EV_PAYMENT &&
                    m->ev.kind == RS_PAY_CHARGE && m->ev.payment_fingerprint)
                        rs_state_add_fingerprint(&x->st, m->ev.user_id,
                                                 m->ev.payment_fingerprint, (int64_t)i);
        }
}

static bool apply_rules(run_ctx_t *x, char *errstr, size_t errstr_size)
{
        rs_batch_t *b = x->b;
        if (!x->referrers_of && !mark_quiet(x, errstr, errstr_size))
                return false;
        collect(b, x->cl, &x->sets);
        if (!load_state(x, errstr, errstr_size) || !claim_inbox(x, errstr, errstr_size))
                return false;
        note_fingerprints(x);
        for (size_t i = 0; i < b->n; i++) {
                const rs_event_t *ev = &b->msgs[i].ev;
                if (b->msgs[i].outcome != RS_MSG_NEW || b->msgs[i].quiet)
                        continue;
                if (ev->type == RS_EV_PAYMENT && ev->kind == RS_PAY_CHARGE) {
                        const rs_user_t *u = rs_state_user(&x->st, ev->user_id);
                        if (!u || !u->signed_up)
                                x->early_charges++;
                }
                rs_rules_apply(&x->st, ev, i);
        }
        update_user_flags(x);
        return true;
}

static bool build_outbox(run_ctx_t *x, char *errstr, size_t errstr_size)
{
        rs_batch_t *b = x->b;
        b->n_out = 0;
        for (size_t i = 0; i < x->st.n_emissions; i++) {
                if (!emission_out(x->env, b, &x->st, &x->st.emissions[i], errstr,
                                  errstr_size))
                        return false;
        }
        for (size_t i = 0; i < b->n; i++) {
                if (b->msgs[i].outcome == RS_MSG_DLQ)
                        dlq_out(b, &b->msgs[i]);
        }
        return true;
}

/* Every write, the outbox rows and COMMIT in one pipeline: one round trip,
 * one commit. */
static bool write_and_commit(run_ctx_t *x, char *errstr, size_t errstr_size)
{
        rs_pg_t *pg = x->env->pg;
        if (!build_outbox(x, errstr, errstr_size) ||
            !rs_pg_pipeline_begin(pg, errstr, errstr_size))
                return false;
        int outbox_at = -1;
        bool queued = queue_claim(x, errstr, errstr_size) &&
                      rs_store_write(pg, &x->st, errstr, errstr_size) &&
                      write_quiet_signups(pg, x->b, errstr, errstr_size) &&
                      write_fingerprints(pg, x->b, errstr, errstr_size) &&
                      queue_outbox(pg, x->b, x->env->outbox_lease_ms, &outbox_at, errstr,
                                   errstr_size) &&
                      rs_pg_send(pg, SQL_COMMIT, 0, NULL, errstr, errstr_size) >= 0;
        char ignored[256];
        PGresult *ids = NULL;
        bool ok = rs_pg_pipeline_end(pg, outbox_at, &ids, queued ? errstr : ignored,
                                     queued ? errstr_size : sizeof(ignored)) &&
                  queued;
        if (ok && outbox_at >= 0 && !take_outbox_ids(x->b, ids)) {
                snprintf(errstr, errstr_size, "outbox insert returned too few ids");
                ok = false;
        }
        PQclear(ids);
        return ok;
}

/* After COMMIT: what the batch now knows of its users (rs_quiet.h). Only
 * users whose sign-up this process has read since the last rebalance are
 * remembered, from sign-up records keyed by the user's id: their later
 * sign-ups, the only events that can give them a pending referral, come to
 * the same partition, so to this process. The
 * users locked are remembered as they now are; a user whose keyed sign-up
 * was merged quietly is remembered not quiet (the row may hold an earlier
 * charge: the next charge takes the locked path, which then knows). An
 * entry stands for a keyed sign-up read here: the locked path updates the
 * users who have one. */
static void remember_quiet(run_ctx_t *x)
{
        rs_quiet_t *q = x->env->quiet;
        if (!q || rs_quiet_gen(q) != x->quiet_gen)
                return;
        rs_strset_t signed_up; /* users with a sign-up record keyed by their id */
        rs_strset_init(&signed_up);
        pthread_mutex_lock(&shared_lock);
        for (size_t i = 0; i < x->b->n; i++) {
                const rs_batch_msg_t *m = &x->b->msgs[i];
                if (!m->decoded || m->ev.type != RS_EV_SIGNUP || !m->key ||
                    m->key_len != strlen(m->ev.user_id) ||
                    memcmp(m->key, m->ev.user_id, m->key_len) != 0)
                        continue;
                rs_strset_add(&signed_up, m->ev.user_id);
                /* Quiet: no other part in the batch, so not among the locked. */
                if (m->quiet && rs_quiet_get(q, m->ev.user_id) == RS_TS_NONE)
                        rs_quiet_put(q, m->ev.user_id, RS_QUIET_NOT, NULL);
        }
        for (size_t i = 0; i < x->n_remember; i++) {
                const char *u = x->remember[i];
                if (rs_strset_has(&signed_up, u) || rs_quiet_get(q, u) != RS_TS_NONE)
                        rs_quiet_put(q, u, x->remember_first[i], x->remember_referrer[i]);
        }
        pthread_mutex_unlock(&shared_lock);
        rs_strset_free(&signed_up);
}

static bool run_once(rs_batch_env_t *env, rs_batch_t *b, code_lookup_t *cl,
                     const rs_map_t *referrers_of, bool optimistic, char *errstr,
                     size_t errstr_size)
{
        run_ctx_t x = {.env = env,
                       .b = b,
                       .quiet_gen = env->quiet ? rs_quiet_gen(env->quiet) : 0,
                       .cl = cl,
                       .referrers_of = referrers_of,
                       .optimistic = optimistic};
        rs_pgarr_init_binary(&x.claimed, RS_PG_UUIDOID);
        rs_pgarr_init_binary(&x.added, RS_PG_UUIDOID);
        rs_state_init(&x.st, &b->arena, b->now_ms ? b->now_ms : rs_now_ms());
        sets_init(&x.sets);
        rs_pg_t *pg = env->pg;
        bool ok = rs_pg_connect(pg, errstr, errstr_size) &&
                  (cl->resolved ||
                   (cl->resolved = resolve_codes(env, b, cl, errstr, errstr_size))) &&
                  /* Lock-then-read needs a fresh snapshot per statement,
                   * whatever the database's default isolation is. */
                  rs_pg_cmd(pg, SQL_BEGIN, 0, NULL, errstr, errstr_size);
        if (ok) {
                ok = apply_rules(&x, errstr, errstr_size) &&
                     write_and_commit(&x, errstr, errstr_size);
                if (!ok)
                        rs_pg_rollback(pg);
        }
        if (ok) {
                count_results(b, &x.st);
                b->stats.early_charges += x.early_charges;
                remember_quiet(&x);
        }
        sets_free(&x.sets);
        rs_state_free(&x.st);
        rs_pgarr_free(&x.claimed);
        rs_pgarr_free(&x.added);
        return ok;
}

/* The release transaction (docs/rules.md §8): claim due held referrals,
 * issue their credits, write the outbox rows, COMMIT. */
static int release_once(rs_batch_env_t *env, rs_batch_t *b, int limit, char *errstr,
                        size_t errstr_size)
{
        run_ctx_t x = {.env = env, .b = b};
        rs_state_init(&x.st, &b->arena, b->now_ms ? b->now_ms : rs_now_ms());
        sets_init(&x.sets);
        rs_pg_t *pg = env->pg;
        int n = -1;
        if (rs_pg_connect(pg, errstr, errstr_size) &&
            rs_pg_cmd(pg, SQL_BEGIN, 0, NULL, errstr, errstr_size)) {
                n = rs_store_claim_due(pg, &x.st, limit, errstr, errstr_size);
                for (size_t i = 0; n > 0 && i < x.st.referrals.cap; i++)
                        for (rs_referral_t *r = x.st.referrals.slots[i].value; r;
                             r = r->next_of_referee)
                                rs_rules_release(&x.st, r);
                if (n < 0 || !write_and_commit(&x, errstr, errstr_size)) {
                        rs_pg_rollback(pg);
                        n = -1;
                }
        }
        if (n > 0) {
                count_results(b, &x.st);
                b->stats.released = (uint64_t)n;
        }
        sets_free(&x.sets);
        rs_state_free(&x.st);
        return n;
}

int rs_batch_release(rs_batch_env_t *env, rs_batch_t *b, int limit, char *errstr,
                     size_t errstr_size)
{
        for (int attempt = 1;; attempt++) {
                int n = release_once(env, b, limit, errstr, errstr_size);
                if (n >= 0 || !rs_pg_error_conflict(env->pg) || attempt >= MAX_ATTEMPTS)
                        return n;
        }
}

/* Runs b (a batch, or a part of one) until it commits: again the pessimistic
 * way after a replay, again after a conflict (a few times). On failure
 * nothing of b committed, and b has no output. */
static bool run_attempts(rs_batch_env_t *env, rs_batch_t *b, code_lookup_t *cl,
                         const rs_map_t *referrers_of, char *errstr, size_t errstr_size)
{
        bool optimistic = true, ok = false;
        for (int attempt = 1;; attempt++) {
                /* A planned run (run_split) starts from the plan's outcomes;
                 * a rerun from fresh ones (a pessimistic claim changes them). */
                if (!referrers_of || attempt > 1)
                        dedupe_batch(b);
                if ((ok = run_once(env, b, cl, referrers_of, optimistic, errstr,
                                   errstr_size)))
                        break;
                if (optimistic && rs_pg_error_unique(env->pg, RS_INBOX_PKEY)) {
                        /* An event of the batch is in the inbox: a replay. */
                        b->stats.inbox_reruns++;
                        optimistic = false;
                        continue;
                }
                bool conflict = rs_pg_error_conflict(env->pg);
                if (!conflict || attempt >= MAX_ATTEMPTS)
                        break;
                b->stats.deadlock_retries++;
                rs_warn("batch", "transaction conflict (%s), retrying: %s",
                        env->pg->sqlstate, errstr);
        }
        if (!ok)
                b->n_out = 0;
        return ok;
}

/* ---------------------------------------------------------------- split */

/* One part of a split batch: its records (copies of the batch's, which keep
 * pointing into its arena) and where each came from. */
typedef struct part {
        rs_batch_env_t env; /* the batch's, with a connection of its own */
        rs_batch_t b;
        size_t *from; /* b.msgs[i] is the batch's msgs[from[i]] */
        code_lookup_t *cl;
        const rs_map_t *referrers_of;
        bool ok;
        char err[1024];
} part_t;

static void *part_main(void *arg)
{
        part_t *pt = arg;
        pt->ok = run_attempts(&pt->env, &pt->b, pt->cl, pt->referrers_of, pt->err,
                              sizeof(pt->err));
        return NULL;
}

static void part_add(part_t *pt, const rs_batch_msg_t *m, size_t from)
{
        rs_batch_t *b = &pt->b;
        if (b->n == b->cap) {
                b->cap = b->cap ? b->cap * 2 : 256;
                b->msgs = rs_realloc(b->msgs, b->cap * sizeof(*b->msgs));
                pt->from = rs_realloc(pt->from, b->cap * sizeof(*pt->from));
        }
        pt->from[b->n] = from;
        b->msgs[b->n++] = *m;
}

/* What a part did, into the batch: its counts, and if it committed its
 * records' outcomes and its output (copied: the part's arena goes). */
static void part_merge(rs_batch_t *b, const part_t *pt)
{
        rs_batch_stats_add(&b->stats, &pt->b.stats);
        if (!pt->ok)
                return;
        for (size_t i = 0; i < pt->b.n; i++) {
                b->msgs[pt->from[i]].outcome = pt->b.msgs[i].outcome;
                b->msgs[pt->from[i]].quiet = pt->b.msgs[i].quiet;
        }
        for (size_t i = 0; i < pt->b.n_out; i++) {
                const rs_outmsg_t *o = &pt->b.out[i];
                rs_outmsg_t *c = add_out(b);
                *c = *o;
                c->key = rs_arena_strndup(&b->arena, o->key, o->key_len);
                c->payload = rs_arena_strndup(&b->arena, o->payload, o->payload_len);
                c->event_type = rs_arena_strdup(&b->arena, o->event_type);
                c->source_topic = rs_arena_strdup(&b->arena, o->source_topic);
                c->error_class = rs_arena_strdup(&b->arena, o->error_class);
                c->error_message = rs_arena_strdup(&b->arena, o->error_message);
        }
}

/* The records that may make referrals or credits: sign-ups with a code,
 * payments of referred users. They write the most rows; only where they are
 * many do parts pay (docs/design.md §1). */
static size_t count_effects(const rs_batch_t *b, const rs_map_t *referrers_of)
{
        size_t n = 0;
        for (size_t i = 0; i < b->n; i++) {
                const rs_batch_msg_t *m = &b->msgs[i];
                if (m->decoded && (m->ev.type == RS_EV_SIGNUP
                                       ? m->intent
                                       : rs_map_get(referrers_of, m->ev.user_id) != NULL))
                        n++;
        }
        return n;
}

/* Deals the batch's records, the filter's already set aside, out to parts
 * that share no user and no code (rs_split.h): a record goes with its user;
 * a sign-up's code links the user to the code and the code to its owner; a
 * payment links the payer to their referrers, which are looked up for that
 * (and handed to the runs, which would look them up otherwise). Dead
 * letters go to part 0.
 * Returns how many parts have records (1: run the batch whole), -1 on
 * error; *referrers_of is filled either way. */
static int plan_parts(rs_batch_env_t *env, rs_batch_t *b, code_lookup_t *cl,
                      rs_map_t *referrers_of, rs_split_t *s, int parts, char *errstr,
                      size_t errstr_size)
{
        txn_sets_t sets;
        sets_init(&sets);
        collect(b, cl, &sets);
        bool ok = find_referrers(env, b, &sets.payers, referrers_of, errstr, errstr_size);
        sets_free(&sets);
        if (!ok)
                return -1;
        if (count_effects(b, referrers_of) < RS_BATCH_SPLIT_MIN)
                return 1;
        for (size_t i = 0; i < b->n; i++) {
                const rs_batch_msg_t *m = &b->msgs[i];
                if (!m->decoded)
                        continue;
                const char *u = m->ev.user_id;
                rs_split_record(s, u);
                if (m->code) {
                        rs_split_link(s, u, m->code);
                        rs_split_link(s, m->code, rs_map_get(&cl->owner_of, m->code));
                }
                if (m->ev.type == RS_EV_PAYMENT)
                        for (const rs_referrer_of_t *e = rs_map_get(referrers_of, u); e;
                             e = e->next)
                                rs_split_link(s, u, e->referrer);
        }
        return rs_split_assign(s, parts);
}

/* The batch as parts that run at once, each a transaction on its own
 * connection (docs/design.md §1), the batch's offsets stored only once
 * every part committed. If one part fails, the others may have committed:
 * their output stays in b->out, to be published, and the retry of the
 * batch finds their events done (the inbox, or their effects). */
static bool run_split(rs_batch_env_t *env, rs_batch_t *b, code_lookup_t *cl, int parts,
                      char *errstr, size_t errstr_size)
{
        rs_map_t referrers_of;
        rs_map_init(&referrers_of);
        rs_split_t s;
        rs_split_init(&s);
        int used = -1;
        run_ctx_t filter = {.env = env, .b = b, .cl = cl};
        if (rs_pg_connect(env->pg, errstr, errstr_size) &&
            (cl->resolved = resolve_codes(env, b, cl, errstr, errstr_size)) &&
            (dedupe_batch(b), mark_quiet(&filter, errstr, errstr_size)))
                used =
                    plan_parts(env, b, cl, &referrers_of, &s, parts, errstr, errstr_size);
        bool ok = used > 0;
        if (used == 1)
                ok = run_attempts(env, b, cl, &referrers_of, errstr, errstr_size);
        if (used > 1) {
                part_t pt[RS_BATCH_PARTS_MAX];
                pthread_t th[RS_BATCH_PARTS_MAX];
                bool started[RS_BATCH_PARTS_MAX] = {false};
                for (int k = 0; k < used; k++) {
                        pt[k] = (part_t){
                            .env = *env, .cl = cl, .referrers_of = &referrers_of};
                        pt[k].env.pg = k ? env->more_pg[k - 1] : env->pg;
                        rs_batch_init(&pt[k].b);
                        pt[k].b.now_ms = b->now_ms;
                }
                for (size_t i = 0; i < b->n; i++) {
                        const rs_batch_msg_t *m = &b->msgs[i];
                        part_add(&pt[m->decoded ? rs_split_part(&s, m->ev.user_id) : 0],
                                 m, i);
                }
                for (int k = 1; k < used; k++)
                        started[k] = pthread_create(&th[k], NULL, part_main, &pt[k]) == 0;
                part_main(&pt[0]);
                for (int k = 1; k < used; k++) {
                        if (started[k])
                                pthread_join(th[k], NULL);
                        else
                                part_main(&pt[k]); /* no thread: after part 0 */
                }
                b->n_out = 0;
                b->stats.parts += (uint64_t)used;
                for (int k = 0; k < used; k++) {
                        part_merge(b, &pt[k]);
                        if (ok && !pt[k].ok) {
                                ok = false;
                                snprintf(errstr, errstr_size, "%s", pt[k].err);
                                rs_pg_take_error(env->pg, pt[k].env.pg);
                        }
                }
                for (int k = 0; k < used; k++) {
                        free(pt[k].from);
                        rs_batch_free(&pt[k].b);
                }
        }
        rs_split_free(&s);
        rs_map_free(&referrers_of);
        return ok;
}

bool rs_batch_run(rs_batch_env_t *env, rs_batch_t *b, char *errstr, size_t errstr_size)
{
        code_lookup_t cl = {.resolved = false};
        rs_map_init(&cl.owner_of);
        b->n_out = 0;
        int parts = RS_MIN(env->n_more_pg + 1, RS_BATCH_PARTS_MAX);
        bool ok = parts > 1 && b->n >= RS_BATCH_SPLIT_MIN
                      ? run_split(env, b, &cl, parts, errstr, errstr_size)
                      : run_attempts(env, b, &cl, NULL, errstr, errstr_size);
        rs_map_free(&cl.owner_of);
        return ok;
}
