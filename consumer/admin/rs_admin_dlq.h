#ifndef RS_ADMIN_DLQ_H
#define RS_ADMIN_DLQ_H
/* `refstream admin dlq list|redrive` as a library (docs/commands.md §4):
 * reads the DLQ topic, and sends chosen dead letters back to their source
 * topic and partition, each once (docs/design.md §2, "Redriving dead
 * letters"; table rs_dlq_redrives of sql/006_dlq_redrive.sql).
 *
 * The DLQ topic is read without a consumer group: every partition is
 * assigned from its beginning up to its high watermark at the start, and no
 * offset is ever committed. Copies are produced by a transactional producer
 * (transactional.id RS_ADMIN_DLQ_TXN_PREFIX + the DLQ topic), so a run that
 * died mid-way is fenced by the next one and its uncommitted copies never
 * become visible; the positions a run claims and sends are recorded in
 * Postgres. Fallible calls return false (or NULL) with errstr. */
#include "rs_config.h"
#include "rs_pg.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Header of a redriven record naming the dead letter: "TOPIC/PARTITION/OFFSET"
 * of the DLQ record it copies. */
#define RS_ADMIN_DLQ_REDRIVEN_HEADER "refstream_redriven_from"
#define RS_ADMIN_DLQ_TXN_PREFIX      "refstream-dlq-redrive-"
/* Bytes of a record shown by the preview (escaped). */
#define RS_ADMIN_DLQ_PREVIEW 48
/* Dead letters claimed, produced and marked per round. */
#define RS_ADMIN_DLQ_CHUNK 500

/* One dead letter. Strings are NULL when the header is missing; source
 * partition and offset are -1 then. */
typedef struct rs_dlq_letter {
        int32_t partition; /* on the DLQ topic */
        int64_t offset;
        const char *source_topic;
        int32_t source_partition;
        int64_t source_offset;
        const char *error_class, *error_message, *event_type;
        const void *key; /* NULL: the record has no key */
        size_t key_len;
        const void *value;
        size_t value_len;
        const char *state; /* NULL: never redriven; "claimed" or "sent" */
} rs_dlq_letter_t;

/* Which dead letters a command takes: NULL fields match any. */
typedef struct rs_admin_dlq_filter {
        const char *error_class;
        const char *source_topic; /* the dead letter's source topic */
        int64_t limit;            /* list only; 0: no limit */
} rs_admin_dlq_filter_t;

typedef struct rs_admin_dlq rs_admin_dlq_t;

/* cfg (brokers, topics, librdkafka pass-through properties) and pg
 * (connected, migrated) must outlive the handle; actor is recorded with each
 * redriven position. Kafka clients are created on first use. */
rs_admin_dlq_t *rs_admin_dlq_new(const rs_config_t *cfg, rs_pg_t *pg, const char *actor);
void rs_admin_dlq_destroy(rs_admin_dlq_t *d);
/* How long a Kafka step may go without progress (default 30 s). */
void rs_admin_dlq_set_timeout(rs_admin_dlq_t *d, int64_t ms);

/* Reads the DLQ topic (once per handle; later calls re-read the states
 * only) and the redrive state of each position. The letters, by partition
 * and offset, stay valid until the handle is destroyed. */
bool rs_admin_dlq_read(rs_admin_dlq_t *d, char *errstr,
                       size_t errstr_size) RS_WARN_UNUSED;
size_t rs_admin_dlq_count(const rs_admin_dlq_t *d);
const rs_dlq_letter_t *rs_admin_dlq_letter(const rs_admin_dlq_t *d, size_t i);
bool rs_admin_dlq_match(const rs_dlq_letter_t *l, const rs_admin_dlq_filter_t *f);

/* The dead letters that match f, in DLQ order, at most f->limit, as a JSON
 * array of objects: dlq_topic, dlq_partition, dlq_offset, source_topic,
 * source_partition, source_offset, error_class, error_message, event_type
 * (null when the header is missing), key (escaped text, null without a
 * key), key_hex, value_bytes, preview (the first RS_ADMIN_DLQ_PREVIEW bytes,
 * escaped), value_hex (every byte), redriven (null, "claimed" or "sent"). */
json_t *rs_admin_dlq_list(rs_admin_dlq_t *d, const rs_admin_dlq_filter_t *f, char *errstr,
                          size_t errstr_size) RS_WARN_UNUSED;
void rs_admin_print_dlq_list(FILE *out, const json_t *letters);

/* Printable text of bytes: ASCII 0x20-0x7e as is (backslash and quote
 * escaped), others as \xNN; at most max bytes, then "...". */
void rs_admin_dlq_escape(const void *p, size_t len, size_t max, rs_buf_t *out);

typedef struct rs_admin_dlq_summary {
        size_t selected; /* matched the filter */
        size_t sent;     /* sent by this run (or would be: dry run) */
        size_t already;  /* sent by an earlier run */
        size_t skipped;  /* not sendable; a line on `out` each says why */
        /* Positions an interrupted run had claimed: */
        size_t found;    /* their copy was there: marked sent */
        size_t resent;   /* no copy: sent by this run */
        size_t unsolved; /* left claimed (gone from the DLQ): a line each */
} rs_admin_dlq_summary_t;

/* Sends the dead letters that match f (f->limit ignored) back to their
 * source topic and partition, with their key and bytes and the header
 * RS_ADMIN_DLQ_REDRIVEN_HEADER, each at most once however often it runs.
 * First resolves the positions an interrupted run left claimed. One run at a
 * time (an advisory lock: a second one fails at once). Writes a line per
 * dead letter sent or skipped to out (may be NULL). dry_run: reads only,
 * takes no lock, and says what would be sent. False + errstr on a failure;
 * what was claimed and not confirmed is resolved by the next run. */
bool rs_admin_dlq_redrive(rs_admin_dlq_t *d, const rs_admin_dlq_filter_t *f, bool dry_run,
                          FILE *out, rs_admin_dlq_summary_t *sum, char *errstr,
                          size_t errstr_size) RS_WARN_UNUSED;

/* The steps of a redrive, for tests and tools that must stop between them
 * (a crash): claim records the positions of letters[0..n) as claimed, with
 * their target partitions' high watermarks (*claimed: how many were, sent
 * ones are not); send produces their copies in one committed transaction.
 * rs_admin_dlq_redrive runs claim, send and the marking, in rounds of
 * RS_ADMIN_DLQ_CHUNK. */
bool rs_admin_dlq_claim(rs_admin_dlq_t *d, const rs_dlq_letter_t *const *letters,
                        size_t n, size_t *claimed, char *errstr,
                        size_t errstr_size) RS_WARN_UNUSED;
bool rs_admin_dlq_send(rs_admin_dlq_t *d, const rs_dlq_letter_t *const *letters, size_t n,
                       char *errstr, size_t errstr_size) RS_WARN_UNUSED;

#endif
