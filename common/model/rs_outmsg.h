#ifndef RS_OUTMSG_H
#define RS_OUTMSG_H
/* A row of the outbox (sql/001_init.sql and sql/010_outbox_batches.sql
 * rs_outbox): one record to publish. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { RS_DEST_CREDITED = 0, RS_DEST_REVERSED = 1, RS_DEST_DLQ = 2 } rs_dest_t;
const char *rs_dest_name(rs_dest_t d); /* "credited" | "reversed" | "dlq" */
bool rs_dest_parse(const char *s, rs_dest_t *out);

typedef struct rs_outmsg {
        int64_t outbox_id;
        int64_t outbox_batch; /* its rs_outbox_batches row; 0: the row stands alone */
        rs_dest_t dest;
        const void *key; /* may be NULL */
        size_t key_len;
        const void *payload; /* may be NULL (a dead-lettered tombstone) */
        size_t payload_len;
        const char *event_type;
        const char *source_topic;
        int32_t source_partition;
        int64_t source_offset;
        const char *error_class; /* dead letters only */
        const char *error_message;
} rs_outmsg_t;

#endif
