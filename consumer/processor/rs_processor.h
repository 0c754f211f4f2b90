#ifndef RS_PROCESSOR_H
#define RS_PROCESSOR_H
/* `refstream consume`: the processor daemon (docs/design.md §1).
 *
 *   poll records into a batch (batch size or linger, single consumer_poll calls)
 *   run the batch transaction (rs_batch_run)
 *     Postgres unavailable -> pause the partitions, back off (capped
 *       exponential), not ready, retry the same batch; resume when it works
 *     an error the records cause (or a batch that keeps timing out) -> split
 *       the batch in halves, recursively, each part committed in order; a
 *       record that fails alone goes to the DLQ as processing_error (never
 *       blocks); if even that is refused, back off and retry
 *   store offsets (last + 1) of the batch; auto-commit ships them
 *   publish the batch's outbox rows; delivery reports mark them published
 *   every sweep interval: republish unconfirmed outbox rows, expire codes
 *
 * Rebalances (eager "range" by default, cooperative also handled): on revoke, records of
 * the revoked partitions that are still only in memory are dropped (their next owner
 * replays them; the inbox makes that safe) and stored offsets are committed
 * before the partitions are given up. */
#include "rs_batch.h"
#include "rs_config.h"

#include <signal.h>

typedef struct rs_processor rs_processor_t;

typedef struct rs_processor_hooks {
        void *opaque;
        /* After a batch's COMMIT, before its offsets are stored. Returning false
         * simulates a crash at that point (tests): the processor stops at once,
         * stores nothing and does not leave the group. */
        bool (*after_commit)(void *opaque, const rs_batch_t *b);
        /* After a batch's output is handed to Kafka, before its delivery is
         * confirmed and marked. Returning false simulates a crash there. */
        bool (*after_publish)(void *opaque, const rs_batch_t *b);
        /* After each batch is done (offsets stored, output handed to Kafka). */
        void (*after_batch)(void *opaque, const rs_batch_t *b);
} rs_processor_hooks_t;

/* cfg must outlive the processor. hooks may be NULL. */
rs_processor_t *rs_processor_new(const rs_config_t *cfg,
                                 const rs_processor_hooks_t *hooks, char *errstr,
                                 size_t errstr_size);
/* Runs until *stop is set (SIGTERM/SIGINT), or — when idle_exit_ms > 0 — until
 * no record arrived for that long and all output is delivered. Returns the
 * process exit code: 0 clean, 1 runtime failure. */
int rs_processor_run(rs_processor_t *p, volatile sig_atomic_t *stop,
                     int64_t idle_exit_ms);
/* Closes the consumer (leaving the group, committing) unless it crashed. */
void rs_processor_destroy(rs_processor_t *p);

/* `refstream consume` and `refstream migrate` (cmd_consume.c): the exit code. */
int rs_cmd_consume(int argc, char **argv);
int rs_cmd_migrate(int argc, char **argv);

/* Totals since start (demo and tests). */
const rs_batch_stats_t *rs_processor_totals(const rs_processor_t *p);
int rs_processor_http_port(const rs_processor_t *p);

#endif
