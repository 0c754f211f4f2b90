#ifndef RS_OUTBOX_SQL_H
#define RS_OUTBOX_SQL_H
/* The outbox's statements (rs_outbox.c) over rs_outbox and rs_outbox_batches
 * (sql/001_init.sql, sql/010_outbox_batches.sql). Ids travel as bigint
 * arrays. */

/* Marks published the rows standing alone $1 and the batches $2. */
extern const char SQL_OUTBOX_MARK[];
/* Extends the lease of the rows $1 and batches $2 this process holds by $3 ms. */
extern const char SQL_OUTBOX_RENEW[];
/* Takes up to $1 unpublished batches whose lease expired, other than the
 * caller's own $2, apart: their rows then stand alone, and the batches are
 * deleted (SKIP LOCKED: sweeps of several instances take disjoint batches). */
extern const char SQL_OUTBOX_DISSOLVE[];
/* Claims up to $2 unpublished rows standing alone whose lease expired, for
 * $1 ms (SKIP LOCKED: sweeps of several instances claim disjoint rows). */
enum {
        CLAIM_ID,
        CLAIM_DESTINATION,
        CLAIM_KEY,
        CLAIM_PAYLOAD,
        CLAIM_EVENT_TYPE,
        CLAIM_SOURCE_TOPIC,
        CLAIM_SOURCE_PARTITION,
        CLAIM_SOURCE_OFFSET,
        CLAIM_ERROR_CLASS,
        CLAIM_ERROR_MESSAGE,
        CLAIM_CREATED_AT
};
extern const char SQL_OUTBOX_CLAIM[];
/* Retention: up to $2 rows standing alone published over $1 hours ago. */
extern const char SQL_OUTBOX_RETENTION[];
/* Retention: up to $2 batches published over $1 hours ago, with their rows. */
extern const char SQL_OUTBOX_BATCH_RETENTION[];
/* Rows not published yet (a gauge). */
extern const char SQL_OUTBOX_PENDING[];

#endif
