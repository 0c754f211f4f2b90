#ifndef RS_RULES_H
#define RS_RULES_H
/* The referral rules (docs/rules.md) as a pure function of events and the
 * rows they read: no I/O, no clock. The batch layer loads the rows a batch
 * touches into an rs_state_t (rs_state.h) under row locks, runs every new
 * event through rs_rules_apply() in order, and writes back what changed.
 * Because events of one batch update the same in-memory state, a batch behaves
 * exactly as if its events were processed one at a time. */
#include "rs_state.h"

#include <stdint.h>

/* Applies one (new, validated) event. */
void rs_rules_apply(rs_state_t *st, const rs_event_t *ev, size_t event_index);

/* The emissions of a release have no batch event: their event_index. */
#define RS_RELEASE_INDEX SIZE_MAX

/* Releases a held referral whose hold is over (or that an operator released):
 * status credited, its held credits issued with released_at = st->now_ms,
 * and emitted (event_index RS_RELEASE_INDEX). No-op unless r is held. */
void rs_rules_release(rs_state_t *st, rs_referral_t *r);

/* Reward arithmetic, exposed for tests: fixed, or floor(amount * bps / 10000),
 * then capped; never overflows. */
int64_t rs_rules_referrer_reward(const rs_program_t *p, int64_t payment_minor);

#endif
