#ifndef RS_ORDER_H
#define RS_ORDER_H
/* Event-time order between the two input topics (docs/design.md §1).
 *
 * A payment read before its user's sign-up is correct but costly: it is
 * recorded in the inbox and judged again when the sign-up comes. Under a
 * backlog, librdkafka may serve a payment partition far ahead of the sign-up
 * partitions (nothing in Kafka orders two topics), and then most payments
 * come first. This keeps the payments read within `slack` ms of record
 * time of the slowest sign-up partition that still has records to read (its
 * frontier): a payment further ahead is held back, one record per
 * partition, while the caller pauses its partition, and released once the
 * sign-ups have reached its time. The slack leaves a consumer that keeps up
 * alone (its payments and sign-ups arrive together, a few milliseconds
 * apart), and makes each pause cover at least that much record time:
 * pausing drops what was prefetched of the partition.
 *
 * Holding never waits for sign-ups that do not come: a sign-up partition
 * with nothing left to read does not count, and when the frontier has not
 * moved forward for `patience` ms (a partition that cannot be fetched),
 * every record is released and nothing is held until it moves again.
 *
 * Pure bookkeeping: the caller reads the records, knows the end offsets and
 * pauses, resumes and frees; records are opaque pointers here. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rs_order rs_order_t;

/* Record time unknown (a record without a timestamp is never held). */
#define RS_ORDER_NO_TIME INT64_MIN

rs_order_t *rs_order_new(int64_t slack_ms, int64_t patience_ms);
/* Frees the order; each record still held goes to free_rec first. */
void rs_order_destroy(rs_order_t *o, void (*free_rec)(void *rec));

/* A partition assigned: a sign-up partition counts from now on (behind
 * until rs_order_signup_end says otherwise); now_ms starts the patience. */
void rs_order_assign(rs_order_t *o, bool payment, int32_t partition, int64_t now_ms);
/* A partition revoked or lost: forgotten. Returns its held record, if any,
 * for the caller to free (its next owner reads it again). */
void *rs_order_revoke(rs_order_t *o, bool payment, int32_t partition);

/* A sign-up record read: its offset and record time. */
void rs_order_signup(rs_order_t *o, int32_t partition, int64_t offset, int64_t ts_ms);
/* A sign-up partition's end offset (high watermark), -1 if unknown. */
void rs_order_signup_end(rs_order_t *o, int32_t partition, int64_t end);

/* A payment record read: whether it is too far ahead of the sign-ups. If
 * so, the caller pauses its partition and hands the record to
 * rs_order_hold, which keeps it (false: it did not; process it now). */
bool rs_order_ahead(rs_order_t *o, int32_t partition, int64_t ts_ms, int64_t now_ms);
bool rs_order_hold(rs_order_t *o, int32_t partition, int64_t ts_ms, void *rec);
/* The next payment partition whose record may go now (the sign-ups reached
 * it, or holding stopped): its partition, and its record into *rec; -1 when
 * none. The caller takes the record and resumes the partition. */
int32_t rs_order_release(rs_order_t *o, int64_t now_ms, void **rec);

/* Records held now. */
size_t rs_order_held(const rs_order_t *o);

#endif
