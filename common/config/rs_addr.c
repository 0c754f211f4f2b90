#include "rs_addr.h"
#include "rs_util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool rs_hostport_parse(const char *addr, rs_hostport_t *out, char *errstr,
                       size_t errstr_size)
{
        memset(out, 0, sizeof(*out));
        if (!addr || !*addr)
                return rs_fail(errstr, errstr_size, "address is empty");
        const char *host = addr, *host_end, *port;
        out->v6 = addr[0] == '[';
        if (out->v6) {
                host++;
                if (!(host_end = strchr(host, ']')))
                        return rs_fail(errstr, errstr_size, "'%s': missing ']'", addr);
                if (host_end[1] != ':')
                        return rs_fail(errstr, errstr_size,
                                       "'%s': expected ':port' after ']'", addr);
                port = host_end + 2;
        } else {
                if (!(host_end = strrchr(addr, ':')))
                        return rs_fail(errstr, errstr_size, "'%s': missing ':port'",
                                       addr);
                if (memchr(addr, ':', (size_t)(host_end - addr)))
                        return rs_fail(errstr, errstr_size,
                                       "'%s': an IPv6 address needs brackets, e.g. "
                                       "[::1]:9090",
                                       addr);
                port = host_end + 1;
        }
        int64_t p;
        if (!rs_parse_int64(port, 0, 65535, &p))
                return rs_fail(errstr, errstr_size,
                               "'%s': invalid port '%s' (want 0-65535)", addr, port);
        size_t n = (size_t)(host_end - host);
        if (n >= sizeof(out->host) || (out->v6 && n == 0))
                return rs_fail(errstr, errstr_size, "'%s': bad host", addr);
        memcpy(out->host, host, n);
        out->host[n] = '\0';
        out->port = (uint16_t)p;
        return true;
}

void rs_redis_url_free(rs_redis_url_t *u)
{
        free(u->user);
        free(u->password);
        u->user = u->password = NULL;
}

bool rs_redis_url_parse(const char *url, rs_redis_url_t *out, char *errstr,
                        size_t errstr_size)
{
        memset(out, 0, sizeof(*out));
        if (!url || strncmp(url, "redis://", 8) != 0)
                return rs_fail(errstr, errstr_size, "must start with redis://");
        const char *p = url + 8;
        const char *at = strrchr(p, '@');
        if (at) {
                const char *colon = memchr(p, ':', (size_t)(at - p));
                if (colon) {
                        if (colon > p)
                                out->user = rs_strndup(p, (size_t)(colon - p));
                        out->password = rs_strndup(colon + 1, (size_t)(at - colon - 1));
                } else {
                        out->password = rs_strndup(p, (size_t)(at - p));
                }
                p = at + 1;
        }
        const char *slash = strchr(p, '/');
        size_t hostport = slash ? (size_t)(slash - p) : strlen(p);
        const char *colon = memchr(p, ':', hostport);
        size_t hostlen = colon ? (size_t)(colon - p) : hostport;
        int64_t v;
        if (hostlen == 0 || hostlen >= sizeof(out->host)) {
                rs_redis_url_free(out);
                return rs_fail(errstr, errstr_size, "missing host");
        }
        memcpy(out->host, p, hostlen);
        out->port = 6379;
        if (colon) {
                char port[16];
                size_t n = hostport - hostlen - 1;
                rs_strlcpy(port, colon + 1, RS_MIN(n + 1, sizeof(port)));
                if (n >= sizeof(port) || !rs_parse_int64(port, 1, 65535, &v)) {
                        rs_redis_url_free(out);
                        return rs_fail(errstr, errstr_size, "bad port '%.*s'", (int)n,
                                       colon + 1);
                }
                out->port = (int)v;
        }
        if (slash && slash[1]) {
                if (!rs_parse_int64(slash + 1, 0, 1000000, &v)) {
                        rs_redis_url_free(out);
                        return rs_fail(errstr, errstr_size, "bad database '%s'",
                                       slash + 1);
                }
                out->db = (int)v;
        }
        return true;
}
