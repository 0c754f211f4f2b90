#ifndef RS_HTTP_H
#define RS_HTTP_H
/* The operations endpoint (REFSTREAM_HTTP_ADDR), served by libmicrohttpd on its
 * own thread:
 *   GET /metrics  Prometheus text format (rs_metrics_render)
 *   GET /healthz  200 "ok" while the process is alive and not fatally broken
 *   GET /readyz   200 "ready" when rs_http_set_ready(true), else 503 with the
 *                 reason last given to rs_http_set_ready
 * Anything else is 404; methods other than GET/HEAD are 405. */
#include <stdbool.h>
#include <stddef.h>

typedef struct rs_http rs_http_t;

/* addr: "host:port", ":port" (all interfaces) or "[v6]:port"; port 0 picks a
 * free port (see rs_http_port). NULL + errstr on a bad address or bind error. */
rs_http_t *rs_http_start(const char *addr, char *errstr, size_t errstr_size);
int rs_http_port(const rs_http_t *h);
void rs_http_stop(rs_http_t *h);

/* Thread-safe; reason is copied (may be NULL when ready). */
void rs_http_set_ready(rs_http_t *h, bool ready, const char *reason);
void rs_http_set_healthy(rs_http_t *h, bool healthy, const char *reason);

#endif
