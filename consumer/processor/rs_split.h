#ifndef RS_SPLIT_H
#define RS_SPLIT_H
/* The parts of a batch that can run at once (docs/design.md §1).
 *
 * A batch's transaction locks its users and codes. Two transactions that
 * share none never wait for each other, so a batch whose records form
 * groups that share nothing can run as several transactions at once, one
 * per connection, each on its own core. Records are linked through names:
 * a user, a code; two names linked (a sign-up's user and the code it
 * carries, the code and its owner, a payer and its referrer) end up in the
 * same part, and so, transitively, does everything linked to them. The
 * groups are then dealt out to the parts, largest first, each to the part
 * with the fewest records so far.
 *
 * A link that is missed (a referral created by another instance between the
 * look-up and the locks) costs a wait, never correctness: the transactions
 * lock what they touch, as two instances do.
 *
 * Pure bookkeeping over names, which are not copied. */
#include <stddef.h>

#include "rs_util.h"

typedef struct rs_split {
        rs_map_t ids;  /* name -> 1 + its index */
        size_t *up;    /* union-find: the parent of each index */
        size_t *count; /* records, summed at each group's root */
        int *part;     /* at each root, after rs_split_assign */
        size_t n, cap;
} rs_split_t;

void rs_split_init(rs_split_t *s);
void rs_split_free(rs_split_t *s);
/* One record of name's (it weighs in the balance of the parts). */
void rs_split_record(rs_split_t *s, const char *name);
/* a and b go to the same part. NULL links nothing. */
void rs_split_link(rs_split_t *s, const char *a, const char *b);
/* Deals the groups out to `parts` parts; returns how many parts received
 * records (1 when everything is one group). */
int rs_split_assign(rs_split_t *s, int parts);
/* The part of name (0 for a name never seen). */
int rs_split_part(rs_split_t *s, const char *name);

#endif
