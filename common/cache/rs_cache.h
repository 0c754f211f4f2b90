#ifndef RS_CACHE_H
#define RS_CACHE_H
/* Read-through Redis cache of referral codes (docs/design.md §1).
 *
 * What is cached is only what never changes for a code: that it exists, its
 * program and its owner ("<program_id>\t<owner>"), or that it does not exist
 * ("-", for a short negative TTL). The batch uses it only as a hint of which
 * owners to lock: it locks and reads every code itself (status, uses, expiry,
 * existence), so a stale entry, positive or negative, cannot decide an
 * outcome. Admin commands that change a code still delete its entry (and
 * creating a code deletes a negative entry).
 *
 * Redis being down is not an error for callers: lookups report misses, writes
 * are skipped, and reconnects are attempted at most once a second. hiredis
 * 0.14 contexts are not reusable after an error, so the context is replaced. */
#include "rs_util.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct rs_cache rs_cache_t;

typedef enum {
        RS_CACHE_MISS = 0, /* not cached (or Redis unavailable) */
        RS_CACHE_HIT,      /* exists: program_id and owner filled */
        RS_CACHE_NEGATIVE, /* cached as "no such code" */
} rs_cache_state_t;

typedef struct rs_cache_entry {
        const char *code; /* normalised */
        rs_cache_state_t state;
        int64_t program_id;
        const char *owner;
} rs_cache_entry_t;

/* url: redis://[[user]:password@]host[:port][/db]. NULL + errstr when the URL
 * is malformed; connecting is lazy. */
rs_cache_t *rs_cache_new(const char *url, int64_t ttl_ms, int64_t negative_ttl_ms,
                         int64_t timeout_ms, char *errstr, size_t errstr_size);
void rs_cache_destroy(rs_cache_t *c);
/* Connects now if not connected (start-up: report an outage before the first
 * lookup). False when Redis cannot be reached (logged once). */
bool rs_cache_connect(rs_cache_t *c);

/* Fills entries[i].state (and program_id/owner on hits, strings in arena) for
 * entries[i].code with one MGET. Returns false when Redis was unavailable
 * (every entry is then a miss). */
bool rs_cache_get(rs_cache_t *c, rs_cache_entry_t *entries, size_t n, rs_arena_t *arena);
/* Writes entries back (HIT and NEGATIVE; MISS is skipped) in one pipeline. */
bool rs_cache_put(rs_cache_t *c, const rs_cache_entry_t *entries, size_t n);
/* Deletes the entries of codes. False + errstr if Redis could not be reached. */
bool rs_cache_invalidate(rs_cache_t *c, const char *const *codes, size_t n, char *errstr,
                         size_t errstr_size) RS_WARN_UNUSED;

/* Counters since creation (exported as metrics by the caller). */
typedef struct rs_cache_stats {
        uint64_t hits, misses, negative_hits, errors;
} rs_cache_stats_t;
rs_cache_stats_t rs_cache_stats(const rs_cache_t *c);

/* "refstream:code:v1:<CODE>" */
#define RS_CACHE_KEY_PREFIX "refstream:code:v1:"

#endif
