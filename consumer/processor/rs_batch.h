#ifndef RS_BATCH_H
#define RS_BATCH_H
/* One batch of input records, processed in ONE Postgres transaction
 * (docs/design.md §1):
 *
 *   decode + validate each record              (rs_batch_add; bad -> DLQ)
 *   resolve the batch's codes                  (one Redis MGET, misses: one SQL)
 *   BEGIN
 *     lock the users, then the codes involved  (sorted: no deadlocks between
 *                                               instances; a deadlock that
 *                                               still happens is retried)
 *     load the rows the rules read             (set-wise, a probe per key)
 *     inbox insert ON CONFLICT DO NOTHING      (the events whose replay needs
 *                                               it: duplicates have no effect)
 *     rs_rules_apply() per new event           (pure, in batch order)
 *     write what changed                       (set-wise, unnest())
 *     outbox rows for credits, reversals, DLQ
 *   COMMIT
 *
 * After rs_batch_run() returns true the effects are durable: the caller may
 * store the offsets, then publish b->out (outbox rows) and mark them published.
 */
#include "rs_cache.h"
#include "rs_codec.h"
#include "rs_outbox.h"
#include "rs_outmsg.h"
#include "rs_pg.h"
#include "rs_quiet.h"
#include "rs_rules.h"

typedef enum {
        RS_MSG_PENDING = 0,
        RS_MSG_NEW,       /* first delivery: rules applied */
        RS_MSG_DUPLICATE, /* event_id seen before: no effect */
        RS_MSG_DLQ,       /* malformed: dead-lettered */
} rs_msg_outcome_t;

typedef struct rs_batch_msg {
        const char *topic;
        int32_t partition;
        int64_t offset;
        const void *key;
        size_t key_len;
        const void *value;
        size_t value_len;
        rs_event_type_t type;
        bool decoded;
        rs_event_t ev;
        const char *code; /* sign-ups: the normalised code if well formed, else NULL */
        bool intent;      /* sign-ups: a code, well formed or not (not blank) */
        bool quiet;       /* set aside by the first-level filter (rs_batch.c) */
        bool remembered;  /* quiet: a charge judged from the filter's memory */
        rs_decode_error_t err;
        rs_msg_outcome_t outcome;
        void *opaque; /* the caller's (e.g. the rd_kafka_message_t) */
} rs_batch_msg_t;

typedef struct rs_batch_stats {
        uint64_t signups, payments; /* new events applied */
        uint64_t duplicates, dlq;
        uint64_t referrals;  /* created */
        uint64_t credits[2]; /* by rs_role_t */
        uint64_t reversals;
        uint64_t rejections[RS_REJ__COUNT];
        uint64_t cache_hits, cache_negative, cache_misses, cache_errors;
        uint64_t deadlock_retries;
        uint64_t filtered;             /* quiet events (also in signups and payments) */
        uint64_t filtered_remembered;  /* quiet charges known from rs_quiet */
        uint64_t referrers_remembered; /* payers whose referrers rs_quiet knew */
        uint64_t released;             /* held referrals released (rs_batch_release) */
        uint64_t early_charges;        /* charges of users not signed up (yet) */
        uint64_t inbox_reruns;         /* run again: the optimistic claim met a replay */
        uint64_t parts;                /* transactions of batches run as parts */
} rs_batch_stats_t;

/* to += from (every field is a count). */
void rs_batch_stats_add(rs_batch_stats_t *to, const rs_batch_stats_t *from);

typedef struct rs_batch {
        rs_arena_t arena;
        rs_batch_msg_t *msgs;
        size_t n, cap;
        rs_outmsg_t *out;
        size_t n_out, cap_out;
        rs_batch_stats_t stats;
        int64_t now_ms; /* 0: the wall clock when run */
} rs_batch_t;

void rs_batch_init(rs_batch_t *b);
void rs_batch_reset(rs_batch_t *b);
void rs_batch_free(rs_batch_t *b);

/* Adds a record read from `topic` (whose records are of `type`) and decodes
 * it. The key/value bytes are not copied: keep them alive until reset. */
rs_batch_msg_t *rs_batch_add(rs_batch_t *b, rs_codec_t *codec, rs_event_type_t type,
                             const char *topic, int32_t partition, int64_t offset,
                             const void *key, size_t key_len, const void *value,
                             size_t value_len, void *opaque);
/* Decodes m again (its schema has been fetched since: RS_ERR_SCHEMA_PENDING). */
void rs_batch_redecode(rs_batch_t *b, rs_codec_t *codec, rs_batch_msg_t *m);
/* Turns a decoded record into a dead letter (a record the database refuses
 * even alone: see the processor's poison handling). */
void rs_batch_force_dlq(rs_batch_msg_t *m, const char *error_class, const char *message);

/* The inbox key of an event of `kind` ("signup", "payment" or "dlq") and id:
 * a uuid made of the first 16 bytes of SHA-256(kind 0x1f id). */
const char *rs_batch_inbox_key(rs_arena_t *a, const char *kind, const char *id);

typedef struct rs_batch_env {
        rs_pg_t *pg;
        rs_cache_t *cache; /* NULL: no cache */
        rs_codec_t *codec;
        int64_t outbox_lease_ms; /* claimed_until of the batch's outbox rows */
        rs_quiet_t *quiet;       /* NULL: none; the filter's memory of quiet
                                    users, kept current by each batch */
        /* Connections besides pg (n_more_pg of them, at most
         * RS_BATCH_PARTS_MAX - 1): a batch with RS_BATCH_SPLIT_MIN records
         * or more that may make referrals or credits, in groups that share no
         * user and no code, runs as that many more transactions at once
         * (rs_split.h). */
        rs_pg_t **more_pg;
        int n_more_pg;
} rs_batch_env_t;

#define RS_BATCH_PARTS_MAX 8
#define RS_BATCH_SPLIT_MIN 500

/* Runs the batch transaction (retrying deadlocks and serialization failures a
 * few times), or its parts' (see rs_batch_env_t). false + errstr on failure;
 * rs_pg_error_transient(env->pg) then tells whether retrying the same batch
 * can succeed. b->out holds the records to publish, also on failure: those
 * of the parts that committed. */
bool rs_batch_run(rs_batch_env_t *env, rs_batch_t *b, char *errstr,
                  size_t errstr_size) RS_WARN_UNUSED;

/* The source_topic header of the credits a release publishes (partition and
 * offset -1): no input record is behind them (docs/events.md §4). */
#define RS_RELEASE_SOURCE "refstream.hold-release"

/* Releases up to `limit` held referrals whose hold is over (docs/rules.md §8)
 * in one transaction with a fresh (reset) b: their credits are issued and
 * b->out holds the outbox rows to publish, as after rs_batch_run(). Due
 * referrals another instance is releasing, or whose referee a batch holds,
 * are left for a later call. Returns how many were released, -1 on error. */
int rs_batch_release(rs_batch_env_t *env, rs_batch_t *b, int limit, char *errstr,
                     size_t errstr_size) RS_WARN_UNUSED;

#endif
