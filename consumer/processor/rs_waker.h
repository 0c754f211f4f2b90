#ifndef RS_WAKER_H
#define RS_WAKER_H
/* Wakes librdkafka's fetcher (docs/design.md §4).
 *
 * librdkafka 2.0.2 stops fetching a partition once its consumer's prefetch
 * queue holds queued.max.messages.kbytes (or queued.min.messages), and
 * decides again only when the thread of the partition's broker next wakes:
 * after up to a second when nothing else comes its way (2.2.0 added
 * fetch.queue.backoff.ms for that wait). Under a backlog the
 * queue (4 MiB, some 76,000 production events) lasted under a second, so
 * the processor waited, each second, for the rest of it: the queue's size,
 * not the batches, capped the rate.
 *
 * A request to a broker wakes its thread. rs_waker_wake asks, from a thread
 * of its own, for the end offsets of the given partitions: one small
 * ListOffsets request to each of their leaders. The caller never waits: the
 * request may queue behind a fetch the broker holds (fetch.wait.max.ms), and
 * a wake asked for while one is under way is dropped (that one suffices). */
#include <librdkafka/rdkafka.h>
#include <stdbool.h>

typedef struct rs_waker rs_waker_t;

rs_waker_t *rs_waker_new(rd_kafka_t *rk);
/* Queues a wake of the leaders of parts (copied); false if one is under way. */
bool rs_waker_wake(rs_waker_t *w, const rd_kafka_topic_partition_list_t *parts);
/* Stops the thread (waiting for a request under way); before rd_kafka_destroy. */
void rs_waker_destroy(rs_waker_t *w);

#endif
