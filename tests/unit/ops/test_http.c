#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "rs_http.h"
#include "rs_metrics.h"
#include "rs_util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct reply {
        long status;
        rs_buf_t body;
        rs_buf_t headers;
        char ctype[128];
} reply_t;

static size_t collect(char *p, size_t size, size_t n, void *userdata)
{
        rs_buf_append(userdata, p, size * n);
        return size * n;
}

/* host is "127.0.0.1" or "[::1]"; method NULL means GET. */
static void request(const char *host, int port, const char *method, const char *path,
                    reply_t *r)
{
        memset(r, 0, sizeof(*r));
        rs_buf_init(&r->body);
        rs_buf_init(&r->headers);
        rs_buf_append(&r->body, "", 0);
        rs_buf_append(&r->headers, "", 0);
        char url[256];
        snprintf(url, sizeof(url), "http://%s:%d%s", host, port, path);
        CURL *c = curl_easy_init();
        assert_non_null(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*"); /* an http_proxy in the env */
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
        if (method && strcmp(method, "HEAD") == 0)
                curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        else if (method && strcmp(method, "POST") == 0)
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
        CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK)
                fail_msg("GET %s: %s", url, curl_easy_strerror(rc));
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        char *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
        rs_strlcpy(r->ctype, ct ? ct : "", sizeof(r->ctype));
        curl_easy_cleanup(c);
}

static void reply_free(reply_t *r)
{
        rs_buf_free(&r->body);
        rs_buf_free(&r->headers);
}

static void assert_get(rs_http_t *h, const char *path, long status, const char *body)
{
        reply_t r;
        request("127.0.0.1", rs_http_port(h), NULL, path, &r);
        assert_int_equal(r.status, status);
        assert_string_equal(r.body.data, body);
        reply_free(&r);
}

static int setup(void **state)
{
        char err[256] = "";
        rs_http_t *h = rs_http_start("127.0.0.1:0", err, sizeof(err));
        if (!h)
                fail_msg("start: %s", err);
        *state = h;
        return 0;
}

static int teardown(void **state)
{
        rs_http_stop(*state);
        rs_metrics_reset();
        return 0;
}

static void test_ephemeral_port(void **state)
{
        int port = rs_http_port(*state);
        assert_true(port > 0 && port <= 65535);
}

static void test_metrics_endpoint(void **state)
{
        rs_http_t *h = *state;
        rs_counter_add(rs_metrics_counter("t_http_total", "Requests.", "code=\"200\""),
                       5);
        reply_t r;
        request("127.0.0.1", rs_http_port(h), NULL, "/metrics", &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
        assert_string_equal(r.body.data, "# HELP t_http_total Requests.\n"
                                         "# TYPE t_http_total counter\n"
                                         "t_http_total{code=\"200\"} 5\n");
        reply_free(&r);
}

static void test_healthz(void **state)
{
        rs_http_t *h = *state;
        assert_get(h, "/healthz", 200, "ok\n");
        rs_http_set_healthy(h, false, "postgres connection lost");
        assert_get(h, "/healthz", 503, "unhealthy: postgres connection lost\n");
        rs_http_set_healthy(h, false, NULL);
        assert_get(h, "/healthz", 503, "unhealthy: no reason given\n");
        rs_http_set_healthy(h, true, NULL);
        assert_get(h, "/healthz", 200, "ok\n");
}

static void test_readyz(void **state)
{
        rs_http_t *h = *state;
        assert_get(h, "/readyz", 503, "not ready: starting\n");
        rs_http_set_ready(h, true, NULL);
        assert_get(h, "/readyz", 200, "ready\n");
        char reason[32];
        rs_strlcpy(reason, "partitions revoked", sizeof(reason));
        rs_http_set_ready(h, false, reason);
        rs_strlcpy(reason, "overwritten", sizeof(reason)); /* must have been copied */
        assert_get(h, "/readyz", 503, "not ready: partitions revoked\n");
        /* readiness and health are independent */
        assert_get(h, "/healthz", 200, "ok\n");
}

static void test_unknown_path_404(void **state)
{
        rs_http_t *h = *state;
        assert_get(h, "/", 404, "not found\n");
        assert_get(h, "/metricsx", 404, "not found\n");
        assert_get(h, "/healthz/extra", 404, "not found\n");
}

static void test_query_string_ignored(void **state)
{
        assert_get(*state, "/healthz?verbose=1", 200, "ok\n");
}

static void test_post_405(void **state)
{
        reply_t r;
        request("127.0.0.1", rs_http_port(*state), "POST", "/metrics", &r);
        assert_int_equal(r.status, 405);
        assert_non_null(strstr(r.headers.data, "Allow: GET, HEAD\r\n"));
        reply_free(&r);
}

/* Sends raw bytes on a new connection and returns the status of the reply
 * (0: the server closed the connection without one). */
static int raw_status(int port, const char *bytes, size_t len)
{
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        struct timeval tv = {.tv_sec = 5};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        for (size_t off = 0; off < len;) {
                ssize_t n = send(fd, bytes + off, len - off, MSG_NOSIGNAL);
                if (n <= 0)
                        break; /* the server may close early on garbage */
                off += (size_t)n;
        }
        char buf[256] = "";
        ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
        close(fd);
        int status = 0;
        if (n > 0)
                sscanf(buf, "HTTP/1.%*d %d", &status);
        return status;
}

/* Whatever a client sends, the server answers or closes that connection,
 * and keeps serving everybody else. */
static void test_malformed_requests(void **state)
{
        int port = rs_http_port(*state);
        static const char *const methods[] = {"PUT", "DELETE", "OPTIONS", "PATCH"};
        for (size_t i = 0; i < RS_ARRAY_SIZE(methods); i++) {
                char req[128];
                int n = snprintf(req, sizeof(req),
                                 "%s /metrics HTTP/1.1\r\nHost: x\r\n"
                                 "Content-Length: 3\r\n\r\nabc",
                                 methods[i]);
                assert_int_equal(raw_status(port, req, (size_t)n), 405);
        }
        static const char garbage[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
        int st = raw_status(port, garbage, sizeof(garbage) - 1); /* a TLS hello */
        assert_true(st == 0 || st == 400);
        st = raw_status(port, "GET\r\n\r\n", 7);
        assert_true(st == 0 || st == 400);
        /* A 64 KiB header. */
        rs_buf_t big;
        rs_buf_init(&big);
        rs_buf_puts(&big, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
        for (int i = 0; i < 65536; i++)
                rs_buf_putc(&big, 'a');
        rs_buf_puts(&big, "\r\n\r\n");
        st = raw_status(port, big.data, big.len);
        assert_true(st == 0 || st == 413 || st == 431 || st == 400);
        rs_buf_free(&big);
        /* A client that connects and says half a request holds only its
         * own connection. */
        int slow = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(slow, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(send(slow, "GET /metr", 9, 0), 9);
        assert_get(*state, "/healthz", 200, "ok\n");
        close(slow);
        assert_get(*state, "/healthz", 200, "ok\n");
}

static void test_head(void **state)
{
        reply_t r;
        request("127.0.0.1", rs_http_port(*state), "HEAD", "/healthz", &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body.len, 0);
        reply_free(&r);
}

static void assert_rejected(const char *addr, const char *needle)
{
        char err[256] = "";
        rs_http_t *h = rs_http_start(addr, err, sizeof(err));
        if (h) {
                rs_http_stop(h);
                fail_msg("'%s' was accepted", addr);
        }
        if (!strstr(err, needle))
                fail_msg("'%s': errstr '%s' lacks '%s'", addr, err, needle);
}

static void test_bad_addresses(void **state)
{
        assert_rejected("nonsense", "missing ':port'");
        assert_rejected("127.0.0.1:99999", "invalid port '99999'");
        assert_rejected("127.0.0.1:", "invalid port ''");
        assert_rejected("127.0.0.1:80x", "invalid port '80x'");
        assert_rejected("[::1", "missing ']'");
        assert_rejected("[::1]8080", "expected ':port' after ']'");
        assert_rejected("::1:8080", "needs brackets");
        assert_rejected("[not-v6]:0", "cannot resolve 'not-v6'");
        assert_rejected("", "empty");
}

static void test_port_in_use(void **state)
{
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        struct sockaddr_in sin = {.sin_family = AF_INET};
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
        assert_int_equal(listen(fd, 1), 0);
        socklen_t len = sizeof(sin);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
        char addr[64];
        snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sin.sin_port));
        assert_rejected(addr, "in use");
        close(fd);
}

static void test_all_interfaces(void **state)
{
        char err[256] = "";
        rs_http_t *h = rs_http_start(":0", err, sizeof(err));
        if (!h)
                fail_msg("start: %s", err);
        assert_get(h, "/healthz", 200, "ok\n");
        rs_http_stop(h);
}

static bool ipv6_loopback_usable(void)
{
        int fd = socket(AF_INET6, SOCK_STREAM, 0);
        struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6,
                                    .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sin6, sizeof(sin6)) == 0;
        if (fd >= 0)
                close(fd);
        return ok;
}

static void test_ipv6_loopback(void **state)
{
        if (!ipv6_loopback_usable())
                skip(); /* the kernel has no ::1 (IPv6 disabled in some containers) */
        char err[256] = "";
        rs_http_t *h = rs_http_start("[::1]:0", err, sizeof(err));
        if (!h)
                fail_msg("start: %s", err);
        reply_t r;
        request("[::1]", rs_http_port(h), NULL, "/readyz", &r);
        assert_int_equal(r.status, 503);
        assert_string_equal(r.body.data, "not ready: starting\n");
        reply_free(&r);
        rs_http_stop(h);
}

/* "[::]" is served dual-stack, so IPv4 scrapers reach it too. */
static void test_ipv6_any_is_dual_stack(void **state)
{
        if (!ipv6_loopback_usable())
                skip();
        char err[256] = "";
        rs_http_t *h = rs_http_start("[::]:0", err, sizeof(err));
        if (!h)
                fail_msg("start: %s", err);
        reply_t r;
        request("[::1]", rs_http_port(h), NULL, "/healthz", &r);
        assert_int_equal(r.status, 200);
        reply_free(&r);
        assert_get(h, "/healthz", 200, "ok\n"); /* via 127.0.0.1 */
        rs_http_stop(h);
}

int main(void)
{
        curl_global_init(CURL_GLOBAL_DEFAULT);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_ephemeral_port, setup, teardown),
            cmocka_unit_test_setup_teardown(test_metrics_endpoint, setup, teardown),
            cmocka_unit_test_setup_teardown(test_healthz, setup, teardown),
            cmocka_unit_test_setup_teardown(test_readyz, setup, teardown),
            cmocka_unit_test_setup_teardown(test_unknown_path_404, setup, teardown),
            cmocka_unit_test_setup_teardown(test_query_string_ignored, setup, teardown),
            cmocka_unit_test_setup_teardown(test_post_405, setup, teardown),
            cmocka_unit_test_setup_teardown(test_head, setup, teardown),
            cmocka_unit_test_setup_teardown(test_malformed_requests, setup, teardown),
            cmocka_unit_test(test_bad_addresses),
            cmocka_unit_test(test_port_in_use),
            cmocka_unit_test(test_all_interfaces),
            cmocka_unit_test(test_ipv6_loopback),
            cmocka_unit_test(test_ipv6_any_is_dual_stack),
        };
        int rc = cmocka_run_group_tests(tests, NULL, NULL);
        curl_global_cleanup();
        return rc;
}
