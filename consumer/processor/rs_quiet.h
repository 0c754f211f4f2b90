#ifndef RS_QUIET_H
#define RS_QUIET_H
/* The first-level filter's memory (docs/design.md §2): what this process
 * knows of its users' rows, so that a charge is judged without reading the
 * row: quiet (signed up, charged, no pending referral) with the time of the
 * first charge, or RS_QUIET_NOT (known not quiet: the charge takes the
 * locked path, as the read would have said).
 *
 * Only a user's sign-ups can give the user a pending referral, and they all
 * come to one partition of the sign-up topic (keyed by user id): the users
 * whose sign-up this process has read stay exactly known while its
 * partitions stay. The processor forgets everything at each rebalance
 * (rs_quiet_clear), and a batch started before the rebalance remembers
 * nothing afterwards (rs_quiet_gen). After its COMMIT, each batch updates
 * the users it locked (rs_batch.c remember_quiet).
 *
 * The same entries hold the user's referrers, for the batch's plan of its
 * parts (rs_batch.c find_referrers): the referrer of each referral naming the
 * user as referee, which also only the user's sign-ups create. Kept when
 * the user has none or one (the referrers' ids, interned, at most
 * RS_QUIET_NAMES_MAX); otherwise not known.
 *
 * Bounded: 4-way buckets, an entry replaced when its bucket is full; a user
 * is known by 96 bits of a keyed hash of its id (SipHash-2-4 under a key
 * drawn at rs_quiet_new; no id is kept). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rs_quiet rs_quiet_t;

/* capacity: entries at most (rounded up to a power of two, at least 4).
 * NULL if no random key could be drawn. */
rs_quiet_t *rs_quiet_new(size_t capacity);
void rs_quiet_destroy(rs_quiet_t *q);

#define RS_QUIET_NOT INT64_MAX

#define RS_QUIET_NAMES_MAX 65536

/* The first charge of user if remembered quiet, RS_QUIET_NOT if known not
 * quiet, RS_TS_NONE if not remembered. */
int64_t rs_quiet_get(const rs_quiet_t *q, const char *user);
/* referrer: the user's one referrer, RS_QUIET_NO_REFERRER if the user has
 * none, NULL if not known (several, or not looked at). */
void rs_quiet_put(rs_quiet_t *q, const char *user, int64_t first_charge_ms,
                  const char *referrer);
extern const char RS_QUIET_NO_REFERRER[];
/* Whether the user's referrers are known; if so, *referrer is the one
 * referrer (valid until the next rs_quiet_clear) or NULL for none. */
bool rs_quiet_referrer(const rs_quiet_t *q, const char *user, const char **referrer);

/* Forgets every entry and starts a new generation. */
void rs_quiet_clear(rs_quiet_t *q);
uint64_t rs_quiet_gen(const rs_quiet_t *q);
size_t rs_quiet_count(const rs_quiet_t *q);

#endif
