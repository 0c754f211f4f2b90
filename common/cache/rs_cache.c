#include "rs_cache.h"
#include "rs_addr.h"
#include "rs_log.h"

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#define RECONNECT_INTERVAL_MS 1000

struct rs_cache {
        rs_redis_url_t url;
        int64_t ttl_ms, negative_ttl_ms, timeout_ms;
        redisContext *ctx;
        int64_t next_connect_ms; /* monotonic; no attempt before this */
        bool was_down;
        rs_cache_stats_t stats;
};

rs_cache_t *rs_cache_new(const char *url, int64_t ttl_ms, int64_t negative_ttl_ms,
                         int64_t timeout_ms, char *errstr, size_t errstr_size)
{
        rs_cache_t *c = rs_calloc(1, sizeof(*c));
        char err[256];
        if (!rs_redis_url_parse(url, &c->url, err, sizeof(err))) {
                snprintf(errstr, errstr_size, "REFSTREAM_REDIS_URL: %s", err);
                free(c);
                return NULL;
        }
        c->ttl_ms = ttl_ms;
        c->negative_ttl_ms = negative_ttl_ms;
        c->timeout_ms = timeout_ms;
        return c;
}

static void drop(rs_cache_t *c, const char *why)
{
        if (!c->was_down)
                rs_warn("cache",
                        "Redis %s:%d unavailable (%s); looking codes up in Postgres",
                        c->url.host, c->url.port, why);
        c->was_down = true;
        c->stats.errors++;
        if (c->ctx)
                redisFree(c->ctx);
        c->ctx = NULL;
        c->next_connect_ms = rs_monotonic_ms() + RECONNECT_INTERVAL_MS;
}

void rs_cache_destroy(rs_cache_t *c)
{
        if (!c)
                return;
        if (c->ctx)
                redisFree(c->ctx);
        rs_redis_url_free(&c->url);
        free(c);
}

static bool simple_cmd_ok(rs_cache_t *c, redisReply *r, const char *what)
{
        bool ok = r && r->type != REDIS_REPLY_ERROR;
        if (!ok) {
                char why[300];
                snprintf(why, sizeof(why), "%s: %s", what,
                         r ? r->str : (c->ctx ? c->ctx->errstr : "no reply"));
                drop(c, why);
        }
        if (r)
                freeReplyObject(r);
        return ok;
}

/* Returns a usable context or NULL (Redis down, or waiting to retry). */
static redisContext *conn(rs_cache_t *c)
{
        if (c->ctx)
                return c->ctx;
        if (rs_monotonic_ms() < c->next_connect_ms)
                return NULL;
        struct timeval tv = {.tv_sec = c->timeout_ms / 1000,
                             .tv_usec = (c->timeout_ms % 1000) * 1000};
        c->ctx = redisConnectWithTimeout(c->url.host, c->url.port, tv);
        if (!c->ctx || c->ctx->err) {
                drop(c, c->ctx ? c->ctx->errstr : "cannot allocate context");
                return NULL;
        }
        /* The connect timeout does not cover commands in hiredis 0.14. */
        redisSetTimeout(c->ctx, tv);
        if (c->url.password) {
                redisReply *r =
                    c->url.user
                        ? redisCommand(c->ctx, "AUTH %s %s", c->url.user, c->url.password)
                        : redisCommand(c->ctx, "AUTH %s", c->url.password);
                if (!simple_cmd_ok(c, r, "AUTH"))
                        return NULL;
        }
        if (c->url.db &&
            !simple_cmd_ok(c, redisCommand(c->ctx, "SELECT %d", c->url.db), "SELECT"))
                return NULL;
        if (c->was_down)
                rs_info("cache", "Redis %s:%d available again", c->url.host, c->url.port);
        c->was_down = false;
        return c->ctx;
}

bool rs_cache_connect(rs_cache_t *c)
{
        c->next_connect_ms = 0;
        return conn(c) != NULL;
}

static bool parse_value(rs_cache_entry_t *e, const char *v, size_t len, rs_arena_t *arena)
{
        if (len == 1 && v[0] == '-') {
                e->state = RS_CACHE_NEGATIVE;
                return true;
        }
        const char *tab = memchr(v, '\t', len);
        if (!tab || tab == v)
                return false;
        char id[24];
        if ((size_t)(tab - v) >= sizeof(id))
                return false;
        memcpy(id, v, (size_t)(tab - v));
        id[tab - v] = '\0';
        if (!rs_parse_int64(id, 1, INT64_MAX, &e->program_id))
                return false;
        e->owner = rs_arena_strndup(arena, tab + 1, len - (size_t)(tab - v) - 1);
        e->state = RS_CACHE_HIT;
        return true;
}

bool rs_cache_get(rs_cache_t *c, rs_cache_entry_t *entries, size_t n, rs_arena_t *arena)
{
        for (size_t i = 0; i < n; i++)
                entries[i].state = RS_CACHE_MISS;
        if (n == 0)
                return true;
        redisContext *ctx = conn(c);
        if (!ctx) {
                c->stats.misses += n;
                return false;
        }
        const char **argv = rs_malloc((n + 1) * sizeof(char *));
        size_t *argl = rs_malloc((n + 1) * sizeof(size_t));
        argv[0] = "MGET";
        argl[0] = 4;
        for (size_t i = 0; i < n; i++) {
                argv[i + 1] =
                    rs_arena_printf(arena, RS_CACHE_KEY_PREFIX "%s", entries[i].code);
                argl[i + 1] = strlen(argv[i + 1]);
        }
        redisReply *r = redisCommandArgv(ctx, (int)n + 1, argv, argl);
        free(argv);
        free(argl);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != n) {
                if (r && r->type == REDIS_REPLY_ARRAY) {
                        freeReplyObject(r); /* a reply we cannot use */
                        r = NULL;
                }
                simple_cmd_ok(c, r, "MGET");
                c->stats.misses += n;
                return false;
        }
        for (size_t i = 0; i < n; i++) {
                redisReply *e = r->element[i];
                if (e->type == REDIS_REPLY_STRING &&
                    parse_value(&entries[i], e->str, e->len, arena)) {
                        if (entries[i].state == RS_CACHE_HIT)
                                c->stats.hits++;
                        else
                                c->stats.negative_hits++;
                } else {
                        c->stats.misses++;
                }
        }
        freeReplyObject(r);
        return true;
}

/* Reads the replies of n pipelined commands; the first failure (a lost
 * connection included) is handled by simple_cmd_ok: counted, logged, and the
 * context dropped. */
static bool drain(rs_cache_t *c, redisContext *ctx, size_t n, const char *what)
{
        for (size_t i = 0; i < n; i++) {
                redisReply *r = NULL;
                if (redisGetReply(ctx, (void **)&r) != REDIS_OK)
                        r = NULL;
                if (!simple_cmd_ok(c, r, what))
                        return false;
        }
        return true;
}

/* redisAppendCommand failed (out of memory): the pipeline is in an unknown
 * state, so the context goes. */
static bool append_failed(rs_cache_t *c, const char *what)
{
        char why[64];
        snprintf(why, sizeof(why), "%s: cannot queue the command", what);
        drop(c, why);
        return false;
}

bool rs_cache_put(rs_cache_t *c, const rs_cache_entry_t *entries, size_t n)
{
        redisContext *ctx = conn(c);
        if (!ctx)
                return false;
        size_t sent = 0;
        char val[300];
        for (size_t i = 0; i < n; i++) {
                const rs_cache_entry_t *e = &entries[i];
                if (e->state == RS_CACHE_MISS ||
                    (e->state == RS_CACHE_NEGATIVE && c->negative_ttl_ms == 0))
                        continue;
                if (e->state == RS_CACHE_HIT)
                        snprintf(val, sizeof(val), "%lld\t%s", (long long)e->program_id,
                                 e->owner);
                else
                        rs_strlcpy(val, "-", sizeof(val));
                long long ttl = e->state == RS_CACHE_HIT ? c->ttl_ms : c->negative_ttl_ms;
                if (redisAppendCommand(ctx, "SET " RS_CACHE_KEY_PREFIX "%s %s PX %lld",
                                       e->code, val, ttl) != REDIS_OK)
                        return append_failed(c, "SET");
                sent++;
        }
        return drain(c, ctx, sent, "SET");
}

bool rs_cache_invalidate(rs_cache_t *c, const char *const *codes, size_t n, char *errstr,
                         size_t errstr_size)
{
        /* An explicit invalidation must not wait for the reconnect interval. */
        c->next_connect_ms = 0;
        redisContext *ctx = conn(c);
        if (!ctx) {
                snprintf(errstr, errstr_size, "Redis %s:%d unavailable", c->url.host,
                         c->url.port);
                return false;
        }
        bool ok = true;
        for (size_t i = 0; i < n && ok; i++)
                ok = redisAppendCommand(ctx, "DEL " RS_CACHE_KEY_PREFIX "%s", codes[i]) ==
                         REDIS_OK ||
                     append_failed(c, "DEL");
        if (!ok || !drain(c, ctx, n, "DEL")) {
                snprintf(errstr, errstr_size, "Redis %s:%d: DEL failed", c->url.host,
                         c->url.port);
                return false;
        }
        return true;
}

rs_cache_stats_t rs_cache_stats(const rs_cache_t *c)
{
        return c->stats;
}
