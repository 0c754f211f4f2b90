#include "rs_log.h"
#include "rs_util.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

rs_log_level_t rs_log_level = RS_LOG_INFO;
static bool log_json;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *level_names[] = {"debug", "info", "warn", "error"};

bool rs_log_parse_level(const char *name, rs_log_level_t *out)
{
        for (size_t i = 0; i < RS_ARRAY_SIZE(level_names); i++) {
                if (strcasecmp(name, level_names[i]) == 0) {
                        *out = (rs_log_level_t)i;
                        return true;
                }
        }
        if (strcasecmp(name, "warning") == 0) {
                *out = RS_LOG_WARN;
                return true;
        }
        return false;
}

void rs_log_set_level(rs_log_level_t lvl)
{
        rs_log_level = lvl;
}

void rs_log_set_json(bool json)
{
        log_json = json;
}

void rs_log_write(rs_log_level_t lvl, const char *component, const char *fmt, ...)
{
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        char ts[40];
        rs_format_rfc3339(rs_now_ms(), ts, sizeof(ts));
        rs_buf_t b;
        rs_buf_init(&b);
        if (log_json) {
                rs_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":", ts,
                              level_names[lvl]);
                rs_buf_json_str(&b, component);
                rs_buf_puts(&b, ",\"msg\":");
                rs_buf_json_str(&b, msg);
                rs_buf_puts(&b, "}\n");
        } else {
                rs_buf_printf(&b, "%s %-5s [%s] %s\n", ts, level_names[lvl], component,
                              msg);
        }
        pthread_mutex_lock(&log_lock);
        fwrite(b.data, 1, b.len, stderr);
        fflush(stderr);
        pthread_mutex_unlock(&log_lock);
        rs_buf_free(&b);
}

/* The end of a libpq keyword value: 'quoted' (backslash escapes) or up to
 * a space or '&'. */
static const char *value_end(const char *v)
{
        if (*v != '\'') {
                while (*v && *v != ' ' && *v != '&')
                        v++;
                return v;
        }
        for (v++; *v && *v != '\''; v++)
                if (*v == '\\' && v[1])
                        v++;
        return *v ? v + 1 : v;
}

static bool keyword_start(const char *s, const char *at)
{
        return at == s || at[-1] == ' ' || at[-1] == '&' || at[-1] == '?';
}

/* Appends s to b with the value of every "password" or "sslpassword"
 * keyword (at the start, after a space, '&' or '?'; blanks allowed around
 * its '=') replaced by "***". */
static void put_redacting_keywords(rs_buf_t *b, const char *s)
{
        static const char kw[] = "password";
        const char *p = s, *hit;
        while ((hit = strcasestr(p, kw)) != NULL) {
                const char *start = hit, *v = hit + sizeof(kw) - 1;
                if (hit - s >= 3 && strncasecmp(hit - 3, "ssl", 3) == 0)
                        start = hit - 3;
                while (*v == ' ')
                        v++;
                if (!keyword_start(s, start) || *v != '=') {
                        rs_buf_append(b, p, (size_t)(hit + 1 - p));
                        p = hit + 1;
                        continue;
                }
                for (v++; *v == ' ';)
                        v++;
                rs_buf_append(b, p, (size_t)(v - p));
                rs_buf_puts(b, "***");
                p = value_end(v);
        }
        rs_buf_puts(b, p);
}

char *rs_redact_url(const char *url, char *out, size_t size)
{
        rs_buf_t uri, red;
        rs_buf_init(&uri);
        rs_buf_init(&red);
        url = url ? url : "";
        /* scheme://user:password@host -> scheme://user:***@host. The userinfo
         * ends at the last '@' before the path (a Redis URL: the last '@' of
         * all, as rs_redis_url_parse reads it), so a password holding '?',
         * '#' or another '@' is covered whole. */
        const char *scheme = strstr(url, "://");
        const char *auth = scheme ? scheme + 3 : NULL;
        bool redis = strncmp(url, "redis", 5) == 0;
        const char *at = NULL;
        for (const char *c = auth; c && *c && (redis || *c != '/'); c++)
                if (*c == '@')
                        at = c;
        if (at) {
                const char *colon = memchr(auth, ':', (size_t)(at - auth));
                if (colon || redis) {
                        /* redis://password@host: the whole userinfo is the secret */
                        const char *keep = colon ? colon + 1 : auth;
                        rs_buf_append(&uri, url, (size_t)(keep - url));
                        rs_buf_puts(&uri, "***");
                        url = at;
                }
        }
        rs_buf_puts(&uri, url);
        put_redacting_keywords(&red, uri.data ? uri.data : "");
        /* Cutting the redacted text to size can only drop characters. */
        rs_strlcpy(out, red.data ? red.data : "", size);
        rs_buf_free(&uri);
        rs_buf_free(&red);
        return out;
}
