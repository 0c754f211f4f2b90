/* Backfill (docs/rules.md §1): codes in bulk for users who exist before the program,
 * set-wise (arrays + unnest), idempotent, and safe to run concurrently. */
#include "rs_admin.h"
#include "rs_admin_int.h"
#include "rs_admin_sql.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Rounds of redrawing collided codes within one chunk. One collision in a
 * chunk is already unlikely (5000 draws from 32^8); sixteen rounds in a row
 * mean something else is wrong. */
#define BACKFILL_ROUNDS 16

/* One chunk: distinct users, their codes (filled as found or created), and
 * user -> index to match returned rows back. */
typedef struct chunk {
        const char *const *users;
        size_t n;
        char (*codes)[RS_CODE_MAX_LEN + 1];
        bool *fresh;     /* created by this run */
        rs_map_t index;  /* user -> (void *)(i + 1) */
        size_t *missing; /* indices still without a code */
        size_t nmissing;
} chunk_t;

static void chunk_init(chunk_t *c, const char *const *users, size_t n,
                       char (*codes)[RS_CODE_MAX_LEN + 1], bool *fresh)
{
        c->users = users;
        c->n = n;
        c->codes = codes;
        c->fresh = fresh;
        rs_map_init(&c->index);
        for (size_t i = 0; i < n; i++)
                rs_map_put(&c->index, users[i], (void *)(uintptr_t)(i + 1));
        c->missing = rs_malloc((n ? n : 1) * sizeof(size_t));
        c->nmissing = 0;
}

static void chunk_free(chunk_t *c)
{
        rs_map_free(&c->index);
        free(c->missing);
}

static size_t chunk_find(const chunk_t *c, const char *user)
{
        return (size_t)(uintptr_t)rs_map_get(&c->index, user) -
               1; /* SIZE_MAX if absent */
}

static bool cmd(rs_admin_t *a, const char *sql, int n, const char *const *params,
                const char *what, char *errstr, size_t errstr_size)
{
        char err[1024];
        if (rs_pg_cmd(a->pg, sql, n, params, err, sizeof(err)))
                return true;
        rs_admin_db_error(a->pg, what, err, errstr, errstr_size);
        return false;
}

/* Each user's existing code: any code counts (a user whose code was revoked
 * is not silently given a new one), preferring one that is not revoked,
 * then the oldest. */
static bool load_existing(rs_admin_t *a, const char *program_id, chunk_t *c,
                          rs_admin_backfill_stats_t *st, char *errstr, size_t errstr_size)
{
        char err[1024];
        rs_pgarr_t arr;
        rs_pgarr_init(&arr);
        for (size_t i = 0; i < c->n; i++)
                rs_pgarr_text(&arr, c->users[i]);
        const char *params[] = {program_id, rs_pgarr_get(&arr)};
        PGresult *res =
            rs_pg_exec(a->pg, SQL_ADMIN_BACKFILL_EXISTING, 2, params, err, sizeof(err));
        rs_pgarr_free(&arr);
        if (!res) {
                rs_admin_db_error(a->pg, "cannot read existing codes", err, errstr,
                                  errstr_size);
                return false;
        }
        for (int r = 0; r < PQntuples(res); r++) {
                size_t i = chunk_find(c, PQgetvalue(res, r, BACKFILL_EXISTING_USER));
                if (i < c->n)
                        rs_strlcpy(c->codes[i],
                                   PQgetvalue(res, r, BACKFILL_EXISTING_CODE),
                                   RS_CODE_MAX_LEN + 1);
        }
        st->existing += (size_t)PQntuples(res);
        for (int r = 0; r < PQntuples(res); r++)
                st->revoked_only +=
                    PQgetvalue(res, r, BACKFILL_EXISTING_REVOKED)[0] == 't';
        PQclear(res);
        for (size_t i = 0; i < c->n; i++) {
                if (!c->codes[i][0])
                        c->missing[c->nmissing++] = i;
        }
        return true;
}

/* Marks the users whose rows were inserted; the others collided and stay
 * missing, their drawn code cleared. */
static void mark_inserted(chunk_t *c, const PGresult *res, rs_admin_backfill_stats_t *st)
{
        for (int r = 0; r < PQntuples(res); r++) {
                size_t i = chunk_find(c, PQgetvalue(res, r, BACKFILL_INSERT_USER));
                if (i < c->n)
                        c->fresh[i] = true;
        }
        st->created += (size_t)PQntuples(res);
        size_t left = 0;
        for (size_t k = 0; k < c->nmissing; k++) {
                size_t i = c->missing[k];
                if (!c->fresh[i]) {
                        c->codes[i][0] = '\0';
                        c->missing[left++] = i;
                }
        }
        st->retries += left;
        c->nmissing = left;
}

/* Draws codes for every missing user and inserts them in one statement. */
static bool insert_round(rs_admin_t *a, const char *program_id, chunk_t *c,
                         rs_admin_backfill_stats_t *st, char *errstr, size_t errstr_size)
{
        char err[1024];
        rs_pgarr_t users, codes;
        rs_pgarr_init(&users);
        rs_pgarr_init(&codes);
        bool ok = true;
        for (size_t k = 0; ok && k < c->nmissing; k++) {
                size_t i = c->missing[k];
                ok = rs_code_generate(c->codes[i], RS_CODE_MAX_LEN + 1);
                rs_pgarr_text(&users, c->users[i]);
                rs_pgarr_text(&codes, c->codes[i]);
        }
        PGresult *res = NULL;
        if (!ok) {
                snprintf(errstr, errstr_size, "the OS random generator failed");
                goto out;
        }
        const char *params[] = {program_id, rs_pgarr_get(&users), rs_pgarr_get(&codes)};
        res = rs_pg_exec(a->pg, SQL_ADMIN_BACKFILL_INSERT, 3, params, err, sizeof(err));
        if (res)
                mark_inserted(c, res, st);
        else
                rs_admin_db_error(a->pg, "cannot insert codes", err, errstr, errstr_size);
        ok = res != NULL;
out:
        PQclear(res);
        rs_pgarr_free(&users);
        rs_pgarr_free(&codes);
        return ok;
}

/* One transaction per chunk. The advisory lock (keyed by the program)
 * serialises concurrent backfills of a program: the second reads the codes
 * the first committed instead of drawing a second code for the same user. */
static bool run_chunk(rs_admin_t *a, const char *program_id, chunk_t *c,
                      rs_admin_backfill_stats_t *st, char *errstr, size_t errstr_size)
{
        const char *params[] = {program_id};
        bool ok = cmd(a, SQL_ADMIN_BEGIN, 0, NULL, "cannot begin", errstr, errstr_size) &&
                  cmd(a, SQL_ADMIN_BACKFILL_LOCK, 1, params, "cannot lock the program",
                      errstr, errstr_size) &&
                  load_existing(a, program_id, c, st, errstr, errstr_size);
        for (int round = 0; ok && c->nmissing > 0 && round < BACKFILL_ROUNDS; round++)
                ok = insert_round(a, program_id, c, st, errstr, errstr_size);
        if (ok && c->nmissing > 0) {
                snprintf(errstr, errstr_size,
                         "no free codes found for %zu users in %d rounds", c->nmissing,
                         BACKFILL_ROUNDS);
                ok = false;
        }
        ok =
            ok && cmd(a, SQL_ADMIN_COMMIT, 0, NULL, "cannot commit", errstr, errstr_size);
        if (!ok)
                rs_pg_rollback(a->pg);
        return ok;
}

/* Distinct users in first-seen order; of[i] is the distinct index of users[i]. */
static size_t dedupe(const char *const *users, size_t n, const char **distinct,
                     size_t *of)
{
        rs_map_t seen;
        rs_map_init(&seen);
        size_t nd = 0;
        for (size_t i = 0; i < n; i++) {
                uintptr_t v = (uintptr_t)rs_map_get(&seen, users[i]);
                if (!v) {
                        distinct[nd] = users[i];
                        v = ++nd;
                        rs_map_put(&seen, users[i], (void *)v);
                }
                of[i] = v - 1;
        }
        rs_map_free(&seen);
        return nd;
}

static bool backfill_all(rs_admin_t *a, const char *program_id, const char **distinct,
                         size_t nd, char (*dcodes)[RS_CODE_MAX_LEN + 1],
                         rs_admin_backfill_stats_t *st, char *errstr, size_t errstr_size)
{
        bool ok = true;
        size_t committed = 0;
        bool *fresh = rs_calloc(nd ? nd : 1, sizeof(bool));
        for (size_t off = 0; ok && off < nd; off += RS_ADMIN_BACKFILL_CHUNK) {
                size_t n = RS_MIN(RS_ADMIN_BACKFILL_CHUNK, nd - off);
                chunk_t c;
                chunk_init(&c, distinct + off, n, dcodes + off, fresh + off);
                ok = run_chunk(a, program_id, &c, st, errstr, errstr_size);
                chunk_free(&c);
                committed += ok ? n : 0;
        }
        /* Created codes may have a negative cache entry; invalidate those of
         * every committed chunk, also when a later chunk failed. */
        const char **codes = rs_malloc((nd ? nd : 1) * sizeof(char *));
        size_t k = 0;
        for (size_t i = 0; i < committed; i++) {
                if (fresh[i])
                        codes[k++] = dcodes[i];
        }
        rs_admin_invalidate(a, codes, k);
        free(codes);
        free(fresh);
        return ok;
}

bool rs_admin_backfill(rs_admin_t *a, const char *program_key, const char *const *users,
                       size_t n, char (*codes)[RS_CODE_MAX_LEN + 1],
                       rs_admin_backfill_stats_t *stats, char *errstr, size_t errstr_size)
{
        char program_id[24], pstatus[16], err[256];
        memset(stats, 0, sizeof(*stats));
        for (size_t i = 0; i < n; i++) {
                if (!rs_admin_user_valid(users[i], err, sizeof(err))) {
                        snprintf(errstr, errstr_size, "user %zu of %zu: %s", i + 1, n,
                                 err);
                        return false;
                }
        }
        if (!rs_admin_find_program(a, program_key, program_id, pstatus, errstr,
                                   errstr_size))
                return false;
        if (strcmp(pstatus, "ended") == 0)
                rs_admin_warnf(a, "program %s has ended: its codes will not be accepted",
                               program_key);
        const char **distinct = rs_malloc((n ? n : 1) * sizeof(char *));
        size_t *of = rs_malloc((n ? n : 1) * sizeof(size_t));
        size_t nd = dedupe(users, n, distinct, of);
        char(*dcodes)[RS_CODE_MAX_LEN + 1] = rs_calloc(nd ? nd : 1, sizeof(*dcodes));
        stats->users = nd;
        bool ok =
            backfill_all(a, program_id, distinct, nd, dcodes, stats, errstr, errstr_size);
        for (size_t i = 0; ok && i < n; i++)
                memcpy(codes[i], dcodes[of[i]], sizeof(*dcodes));
        free(dcodes);
        free(of);
        free(distinct);
        return ok;
}
