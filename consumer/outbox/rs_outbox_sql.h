#ifndef RS_OUTBOX_SQL_H
#define RS_OUTBOX_SQL_H
/* The outbox's statements (rs_outbox.c) over rs_outbox (sql/001_init.sql). */

/* Marks rows published: $1 their ids. */
extern const char SQL_OUTBOX_MARK[];
/* Extends the lease of rows this process holds: $1 ids, $2 lease ms. */
extern const char SQL_OUTBOX_RENEW[];
/* Claims up to $2 unpublished rows whose lease expired, for $1 ms (SKIP
 * LOCKED: sweeps of several instances claim disjoint rows). */
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
/* Retention: up to $2 published rows older than $1 hours. */
extern const char SQL_OUTBOX_RETENTION[];
/* Rows not published yet (a gauge). */
extern const char SQL_OUTBOX_PENDING[];

#endif
