#ifndef RS_ADDR_H
#define RS_ADDR_H
/* Pure parsers of the addresses in the configuration, shared by the
 * configuration checks (a bad value exits 2 naming the setting) and the
 * components that use them (rs_http, rs_cache). No I/O, no name lookup. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "host:port", ":port" (all interfaces) or "[v6]:port"; port 0..65535. */
typedef struct rs_hostport {
        char host[256]; /* "" for ":port" */
        uint16_t port;
        bool v6; /* bracketed */
} rs_hostport_t;

bool rs_hostport_parse(const char *addr, rs_hostport_t *out, char *errstr,
                       size_t errstr_size);

/* redis://[[user]:password@]host[:port][/db] */
typedef struct rs_redis_url {
        char host[256];
        int port;              /* default 6379 */
        int db;                /* default 0 */
        char *user, *password; /* NULL when absent; free with rs_redis_url_free */
} rs_redis_url_t;

bool rs_redis_url_parse(const char *url, rs_redis_url_t *out, char *errstr,
                        size_t errstr_size);
void rs_redis_url_free(rs_redis_url_t *u);

#endif
