#ifndef RS_IT_SUPPORT_H
#define RS_IT_SUPPORT_H
/* Integration-test support: the local stack's addresses (written by
 * scripts/stack.sh into the env files named by RS_STACK_ENV, ':'-separated)
 * and a fresh, migrated database per test. A missing stack is a test failure,
 * never a skip. */
#include "rs_pg.h"

#include <stdbool.h>

/* Value of KEY from the process environment or the stack env files; aborts
 * the test binary with a clear message if absent. */
const char *rs_it_env(const char *key);
/* Creates (dropping first) database `name`, applies the migrations, and
 * returns its connection URL (static storage until the next call). */
const char *rs_it_fresh_db(const char *name);
/* Same, without the migrations. */
const char *rs_it_empty_db(const char *name);
/* Connects to url or aborts. */
rs_pg_t *rs_it_pg(const char *url);
/* Runs SQL (no parameters) or aborts; returns the first column of the first
 * row as a newly allocated string ("" when no row, NULL for SQL NULL). */
char *rs_it_sql(rs_pg_t *pg, const char *sql);
/* Same, formatted. */
char *rs_it_sqlf(rs_pg_t *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
long long rs_it_count(rs_pg_t *pg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Deletes every key of the Redis cache prefix (between tests). */
void rs_it_redis_flush(void);

/* A TCP proxy to 127.0.0.1:target_port that can be cut and restored. */
typedef struct rs_it_proxy rs_it_proxy_t;
rs_it_proxy_t *rs_it_proxy_start(int target_port);
int rs_it_proxy_port(const rs_it_proxy_t *p);
/* cut: close all connections and refuse new ones; !cut: forward again. */
void rs_it_proxy_cut(rs_it_proxy_t *p, bool cut);
void rs_it_proxy_stop(rs_it_proxy_t *p);

#endif
