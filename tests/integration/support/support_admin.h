#ifndef RS_IT_SUPPORT_ADMIN_H
#define RS_IT_SUPPORT_ADMIN_H
/* Helpers for the `refstream admin` integration tests: a fresh database with
 * an rs_admin_t over it (warnings captured), the real command-line entry
 * point run with captured stdin/stdout/stderr, and direct Redis access to
 * check cache invalidation. */
#include "rs_admin.h"
#include "support.h"

typedef struct rs_it_admin {
        char url[1024];
        rs_pg_t *pg;
        rs_cache_t *cache;
        rs_admin_t a;
        rs_buf_t warnings; /* every warning, one per line */
} rs_it_admin_t;

/* Fresh database `dbname`, connections, flushed Redis; REFSTREAM_DATABASE_URL
 * and REFSTREAM_REDIS_URL are exported so CLI runs use the same stack. */
rs_it_admin_t *rs_it_admin_new(const char *dbname);
void rs_it_admin_free(rs_it_admin_t *f);

/* Runs rs_cmd_admin("admin", args..., NULL) with stdin from `input` (NULL:
 * empty); returns the exit code, stdout and stderr (caller frees). */
int rs_it_admin_cli(const char *input, char **out, char **err, ...)
    __attribute__((sentinel));

/* Creates program `key` (USD, fixed 1000, goal 5) or aborts. */
void rs_it_admin_program(rs_it_admin_t *f, const char *key);
/* Issues a code (vanity may be NULL) with no limits, or aborts. */
void rs_it_admin_issue(rs_it_admin_t *f, const char *program, const char *user,
                       const char *vanity, char code[RS_CODE_MAX_LEN + 1]);

/* Redis: SET key value / EXISTS key, on the stack's Redis. */
void rs_it_redis_set(const char *key, const char *value);
bool rs_it_redis_exists(const char *key);

#endif
