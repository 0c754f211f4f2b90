#ifndef RS_OUTBOX_FIND_H
#define RS_OUTBOX_FIND_H
/* Before the sweep republishes an outbox row whose delivery was never
 * confirmed, it looks for the row on its topic: a process that died right
 * after the broker acknowledged the record, before marking it, leaves such a
 * row, and a delivery reported failed may have reached the broker anyway.
 * Every record refstream publishes carries its row id in the header
 * RS_OUTBOX_ID_HEADER, so reading the topic from a little before the rows
 * were written to its end tells which of them are there. */
#include "rs_config.h"
#include "rs_idset.h"

#include <librdkafka/rdkafka.h>

#define RS_OUTBOX_ID_HEADER "refstream_outbox_id"

/* A consumer for rs_outbox_find (assigns partitions; never joins a group,
 * never commits). NULL + errstr on a configuration error. */
rd_kafka_t *rs_outbox_finder_new(const rs_config_t *cfg, char *errstr,
                                 size_t errstr_size);

/* Reads every partition of topic from the records timestamped since_ms (less
 * a margin for clock skew) to its end, adding to *found each id of *wanted
 * seen in a record's RS_OUTBOX_ID_HEADER. False + errstr when the topic could
 * not be read to its end by deadline (monotonic ms; *found then holds what
 * was seen). */
bool rs_outbox_find(rd_kafka_t *reader, const char *topic, const rs_idset_t *wanted,
                    int64_t since_ms, rs_idset_t *found, int64_t deadline, char *errstr,
                    size_t errstr_size);

#endif
