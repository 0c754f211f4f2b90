#ifndef RS_OUTBOX_H
#define RS_OUTBOX_H
/* The outbox publisher: everything refstream emits (credits, reversals, dead
 * letters) is first a row of rs_outbox, written in the batch transaction; this
 * module produces the rows with librdkafka's idempotent producer and marks
 * them published when the broker acknowledged them (delivery reports).
 *
 * A batch transaction's rows form one outbox batch (rs_outbox_batches,
 * sql/010_outbox_batches.sql), claimed by the process that wrote it for a
 * lease (claimed_until), which that process renews while rows of the batch
 * are in flight or the batch is delivered but not yet marked; it is marked
 * published, one row update, once every row of it was acknowledged. A batch
 * whose delivery was never wholly confirmed (the process died, or a row's
 * delivery failed after message.timeout.ms, 5 minutes by default: longer than
 * a broker restart, which the idempotent producer rides out without
 * duplicates) is no longer renewed; when its lease has expired, the sweep of
 * any instance takes it apart: its unpublished rows then stand alone, each
 * with a lease and published_at of its own. The sweep claims such rows, looks
 * for them on their topics (every record carries its row id in a header, see
 * rs_outbox_find.h), marks those it finds and republishes the others, each
 * marked on its own delivery. So every row is published at least once, and
 * twice only when its topic could not be read in time or a frozen process
 * delivers it after its lease. */
#include "rs_outmsg.h"
#include "rs_config.h"
#include "rs_pg.h"

#include <librdkafka/rdkafka.h>

typedef struct rs_outbox rs_outbox_t;

typedef struct rs_outbox_stats {
        uint64_t delivered[3];    /* by rs_dest_t */
        uint64_t failed;          /* delivery reports with an error */
        uint64_t republished;     /* rows produced by the sweep */
        uint64_t found_delivered; /* unconfirmed rows the sweep found on their topic */
        int64_t pending;          /* unpublished rows at the last sweep, -1 unknown */
} rs_outbox_stats_t;

/* pg: the connection used to renew leases and sweep (the caller's; this
 * module is used from one thread). Rows are marked published on a connection
 * of the module's own, to the same database. */
rs_outbox_t *rs_outbox_new(const rs_config_t *cfg, rs_pg_t *pg, char *errstr,
                           size_t errstr_size);
void rs_outbox_destroy(rs_outbox_t *o);
rd_kafka_t *rs_outbox_handle(rs_outbox_t *o);

/* Produces rows (asynchronously; copies the bytes). */
void rs_outbox_publish(rs_outbox_t *o, const rs_outmsg_t *msgs, size_t n);
/* Serves delivery reports for up to timeout_ms. */
void rs_outbox_poll(rs_outbox_t *o, int timeout_ms);
/* Marks delivered batches and rows published (one statement, waited for),
 * and renews the leases of the batches and rows this process holds (every
 * third of a lease). Keeps them for later when Postgres is unavailable. */
bool rs_outbox_mark(rs_outbox_t *o, char *errstr, size_t errstr_size);
/* rs_outbox_mark once the monotonic time *next_ms has come, then *next_ms a
 * second later; a failure is logged (debug) and left for the next time. For
 * loops that wait on something else (a back-off, a full producer queue). */
void rs_outbox_mark_due(rs_outbox_t *o, int64_t *next_ms);
/* The same marking without waiting: starts one UPDATE of the rows delivered so far,
 * unless one is under way, and takes the result of a finished one. Called between
 * batches, it runs beside the next batch's transaction, on another core, instead of
 * inside it (docs/design.md §2). A failure leaves the rows for the next mark. */
void rs_outbox_mark_start(rs_outbox_t *o);
/* The lease renewal of rs_outbox_mark alone (a call within a third of a
 * lease of the last renewal does nothing). */
bool rs_outbox_renew(rs_outbox_t *o, char *errstr, size_t errstr_size);
/* Takes apart unpublished batches whose lease expired, claims unpublished
 * rows whose lease expired, republishes them, and deletes published batches
 * and rows past retention. Returns the number republished, -1 on error. */
int rs_outbox_sweep(rs_outbox_t *o, char *errstr, size_t errstr_size);
/* Waits up to timeout_ms for everything in flight, then marks. True if
 * nothing is left in flight. */
bool rs_outbox_flush(rs_outbox_t *o, int timeout_ms);
/* Messages produced and not yet acknowledged. */
int rs_outbox_in_flight(rs_outbox_t *o);
/* A fatal producer error (idempotence broken): the process must restart. */
bool rs_outbox_fatal(rs_outbox_t *o, char *errstr, size_t errstr_size);
rs_outbox_stats_t rs_outbox_stats(const rs_outbox_t *o);

#endif
