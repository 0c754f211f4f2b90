#ifndef RS_STORE_H
#define RS_STORE_H
/* Set-wise reads and writes of the batch transaction: statements over array
 * parameters, whatever the batch size, the loads in a few round trips. Used by
 * rs_batch.c between BEGIN and COMMIT. Every loader adds arena-allocated rows
 * to the rs_state_t; writers persist the objects the rules flagged. */
#include "rs_cache.h"
#include "rs_pg.h"
#include "rs_rules.h"

/* A set of strings with insertion order (for array parameters). */
typedef struct rs_strset {
        rs_map_t map;
        const char **items;
        size_t n, cap;
} rs_strset_t;

void rs_strset_init(rs_strset_t *s);
void rs_strset_free(rs_strset_t *s);
bool rs_strset_add(rs_strset_t *s, const char *v); /* true if newly added */
bool rs_strset_has(const rs_strset_t *s, const char *v);
/* Array literal of the items, in arr (reset first). */
const char *rs_strset_literal(const rs_strset_t *s, rs_pgarr_t *arr);

/* One round trip (the statements in one pipeline, in this order): locks
 * `users` for the transaction (advisory locks, sorted), locks `codes` (row
 * locks, sorted; codes may be NULL), and loads what the rules read of the
 * users: their rows (users who signed up or paid), the referrals whose
 * referee they are (all programs), their first charges and held refunds.
 * Reads that follow a lock in the pipeline run once it is granted. */
bool rs_store_lock_and_load(rs_pg_t *pg, rs_state_t *st, const rs_strset_t *users,
                            const rs_strset_t *codes, char *errstr,
                            size_t errstr_size) RS_WARN_UNUSED;
/* Looks the distinct codes of e[0..n) up (outside the transaction, a hint of
 * whom to lock): each becomes RS_CACHE_HIT with its program and owner, or
 * RS_CACHE_NEGATIVE. */
bool rs_store_find_codes(rs_pg_t *pg, rs_cache_entry_t *e, size_t n, rs_arena_t *arena,
                         char *errstr, size_t errstr_size) RS_WARN_UNUSED;
/* A referee's referrers (rs_store_find_referrers): one per program. */
typedef struct rs_referrer_of {
        const char *referee, *referrer;
        struct rs_referrer_of *next;
} rs_referrer_of_t;
/* The referrers of the referrals of `payers`, read before locking to know
 * which users to lock: *of maps each payer who has any to their list
 * (allocated in arena). */
bool rs_store_find_referrers(rs_pg_t *pg, const rs_strset_t *payers, rs_map_t *of,
                             rs_arena_t *arena, char *errstr,
                             size_t errstr_size) RS_WARN_UNUSED;
/* Adds referrer to referee's list in *of (copies in arena). */
void rs_store_add_referrer(rs_map_t *of, rs_arena_t *arena, const char *referee,
                           const char *referrer);
/* What the rest of the batch's state is loaded for. */
typedef struct rs_store_wants {
        const rs_strset_t *refunded;     /* payments refunded in the batch */
        const rs_strset_t *fingerprints; /* of the batch's charges */
        int64_t signups_since_ms;        /* velocity: 24 h before the earliest sign-up */
} rs_store_wants_t;

/* In one round trip: programs of the loaded codes and referrals, referrer
 * stats of their (program, referrer) pairs, who paid with the batch's and
 * the first charges' fingerprints, and the credits of referrals whose
 * qualifying payment is in w->refunded; then, in programs with a daily
 * limit, the recent sign-ups of the codes' owners (a second round trip). */
bool rs_store_load_rest(rs_pg_t *pg, rs_state_t *st, const rs_store_wants_t *w,
                        char *errstr, size_t errstr_size) RS_WARN_UNUSED;

/* The release of held referrals (docs/rules.md §8), inside the caller's
 * transaction: locks up to `limit` due ones (skipping those another session
 * holds, and those whose referee's lock is taken) and loads them with their
 * credits and programs. Returns how many, -1 on error. */
int rs_store_claim_due(rs_pg_t *pg, rs_state_t *st, int limit, char *errstr,
                       size_t errstr_size) RS_WARN_UNUSED;

/* Persists every new/dirty object of st, and st->rejections: queued in pg's
 * pipeline (rs_pg_pipeline_begin). */
bool rs_store_write(rs_pg_t *pg, rs_state_t *st, char *errstr,
                    size_t errstr_size) RS_WARN_UNUSED;

#endif
