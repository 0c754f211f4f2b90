#include "rs_http.h"
#include "rs_addr.h"
#include "rs_log.h"
#include "rs_metrics.h"
#include "rs_util.h"

#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define METRICS_CTYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT_CTYPE    "text/plain; charset=utf-8"
/* A scraper that connects and goes quiet must not hold a connection forever. */
#define CONN_TIMEOUT_S 30u

typedef struct probe {
        bool ok;
        char *reason; /* owned; NULL when ok or when none was given */
} probe_t;

struct rs_http {
        struct MHD_Daemon *daemon;
        int port;
        pthread_mutex_t lock; /* ready, healthy, start_err */
        probe_t ready;
        probe_t healthy;
        atomic_bool started;
        char start_err[256]; /* MHD's own words for why start-up failed */
};

/* ------------------------------------------------------------- addresses */

/* Names may resolve to both families; one listening socket can serve only one,
 * so prefer IPv4, which every scraper can reach. "[v6]:port" selects IPv6. */
static bool resolve(const char *addr, const char *host, bool v6, uint16_t port,
                    struct sockaddr_storage *ss, char *errstr, size_t size)
{
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                                 .ai_family = v6 ? AF_INET6 : AF_UNSPEC,
                                 .ai_flags = v6 ? AI_NUMERICHOST : 0};
        struct addrinfo *res = NULL;
        int rc = getaddrinfo(host, NULL, &hints, &res);
        if (rc != 0)
                return rs_fail(errstr, size, "http address '%s': cannot resolve '%s': %s",
                               addr, host, gai_strerror(rc));
        const struct addrinfo *pick = NULL;
        for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                if (ai->ai_family == AF_INET) {
                        pick = ai;
                        break;
                }
                if (ai->ai_family == AF_INET6 && !pick)
                        pick = ai;
        }
        if (pick) {
                memcpy(ss, pick->ai_addr, pick->ai_addrlen);
                if (pick->ai_family == AF_INET)
                        ((struct sockaddr_in *)ss)->sin_port = htons(port);
                else
                        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
        }
        freeaddrinfo(res);
        return pick ? true
                    : rs_fail(errstr, size, "http address '%s': no IP address for '%s'",
                              addr, host);
}

/* "host:port", ":port" (all IPv4 interfaces) or "[v6]:port". */
static bool parse_addr(const char *addr, struct sockaddr_storage *ss, char *errstr,
                       size_t size)
{
        rs_hostport_t hp;
        char err[300];
        if (!rs_hostport_parse(addr, &hp, err, sizeof(err)))
                return rs_fail(errstr, size, "http address %s", err);
        memset(ss, 0, sizeof(*ss));
        if (!hp.v6 && !hp.host[0]) {
                struct sockaddr_in *sin = (struct sockaddr_in *)ss;
                sin->sin_family = AF_INET;
                sin->sin_addr.s_addr = htonl(INADDR_ANY);
                sin->sin_port = htons(hp.port);
                return true;
        }
        return resolve(addr, hp.host, hp.v6, hp.port, ss, errstr, size);
}

/* ------------------------------------------------------------- responses */

/* Takes ownership of body (MHD frees it with free() after sending). */
static enum MHD_Result send_body(struct MHD_Connection *conn, unsigned status,
                                 const char *ctype, rs_buf_t *body)
{
        rs_buf_reserve(body, 0); /* never hand MHD a NULL buffer */
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(body->len, body->data, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
                rs_buf_free(body);
                return MHD_NO;
        }
        body->data = NULL; /* now owned by resp */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
        if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
        enum MHD_Result ret = MHD_queue_response(conn, status, resp);
        MHD_destroy_response(resp);
        return ret;
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status,
                                 const char *text)
{
        rs_buf_t b;
        rs_buf_init(&b);
        rs_buf_puts(&b, text);
        return send_body(conn, status, TEXT_CTYPE, &b);
}

static enum MHD_Result send_probe(struct MHD_Connection *conn, rs_http_t *h,
                                  const probe_t *p, const char *good, const char *bad)
{
        rs_buf_t b;
        rs_buf_init(&b);
        pthread_mutex_lock(&h->lock);
        bool ok = p->ok;
        if (ok)
                rs_buf_printf(&b, "%s\n", good);
        else
                rs_buf_printf(&b, "%s: %s\n", bad,
                              p->reason ? p->reason : "no reason given");
        pthread_mutex_unlock(&h->lock);
        return send_body(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                         TEXT_CTYPE, &b);
}

/* Every request is answered on its first callback: no endpoint reads a body,
 * and MHD closes the connection if a client sent one anyway. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version,
                              const char *upload_data, size_t *upload_data_size,
                              void **con_cls)
{
        rs_http_t *h = cls;
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
            strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
                return send_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
                                 "method not allowed\n");
        if (strcmp(url, "/metrics") == 0) {
                rs_buf_t b;
                rs_buf_init(&b);
                rs_metrics_render(&b);
                return send_body(conn, MHD_HTTP_OK, METRICS_CTYPE, &b);
        }
        if (strcmp(url, "/healthz") == 0)
                return send_probe(conn, h, &h->healthy, "ok", "unhealthy");
        if (strcmp(url, "/readyz") == 0)
                return send_probe(conn, h, &h->ready, "ready", "not ready");
        return send_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* ---------------------------------------------------------------- daemon */

/* During start-up MHD's messages explain a failure to the caller (errstr);
 * afterwards they are runtime trouble worth a warning. */
static void mhd_log(void *cls, const char *fmt, va_list ap) RS_PRINTF(2, 0);
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
        rs_http_t *h = cls;
        char msg[256];
        vsnprintf(msg, sizeof(msg), fmt, ap);
        size_t n = strlen(msg);
        while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
                msg[--n] = '\0';
        if (atomic_load(&h->started)) {
                rs_warn("http", "%s", msg);
                return;
        }
        pthread_mutex_lock(&h->lock);
        if (!h->start_err[0]) /* the first message names the root cause */
                rs_strlcpy(h->start_err, msg, sizeof(h->start_err));
        pthread_mutex_unlock(&h->lock);
}

static void http_free(rs_http_t *h)
{
        pthread_mutex_destroy(&h->lock);
        free(h->ready.reason);
        free(h->healthy.reason);
        free(h);
}

rs_http_t *rs_http_start(const char *addr, char *errstr, size_t errstr_size)
{
        struct sockaddr_storage ss;
        if (!parse_addr(addr, &ss, errstr, errstr_size))
                return NULL;
        rs_http_t *h = rs_calloc(1, sizeof(*h));
        pthread_mutex_init(&h->lock, NULL);
        h->healthy.ok = true;
        h->ready.reason = rs_strdup("starting");
        /* MHD_USE_AUTO picks epoll/poll over select, which breaks on fds >= 1024. */
        unsigned flags =
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
        bool v6 = ss.ss_family == AF_INET6;
        if (v6)
                flags |= MHD_USE_DUAL_STACK;
        uint16_t port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                 : ((struct sockaddr_in *)&ss)->sin_port);
        /* port only labels MHD's error messages; SOCK_ADDR is what it binds */
        h->daemon = MHD_start_daemon(
            flags, port, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
            MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)&ss,
            MHD_OPTION_CONNECTION_TIMEOUT, CONN_TIMEOUT_S, MHD_OPTION_END);
        if (!h->daemon) {
                snprintf(errstr, errstr_size, "http: cannot listen on %s: %s", addr,
                         h->start_err[0] ? h->start_err : "MHD_start_daemon failed");
                http_free(h);
                return NULL;
        }
        atomic_store(&h->started, true);
        const union MHD_DaemonInfo *info =
            MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
        h->port = info ? info->port : 0;
        return h;
}

int rs_http_port(const rs_http_t *h)
{
        return h->port;
}

void rs_http_stop(rs_http_t *h)
{
        if (!h)
                return;
        MHD_stop_daemon(h->daemon); /* joins the thread: no handler runs after */
        http_free(h);
}

static void set_probe(rs_http_t *h, probe_t *p, bool ok, const char *reason)
{
        char *copy = !ok && reason ? rs_strdup(reason) : NULL;
        pthread_mutex_lock(&h->lock);
        char *old = p->reason;
        p->ok = ok;
        p->reason = copy;
        pthread_mutex_unlock(&h->lock);
        free(old); /* outside the lock: nothing else can see it any more */
}

void rs_http_set_ready(rs_http_t *h, bool ready, const char *reason)
{
        set_probe(h, &h->ready, ready, reason);
}

void rs_http_set_healthy(rs_http_t *h, bool healthy, const char *reason)
{
        set_probe(h, &h->healthy, healthy, reason);
}
