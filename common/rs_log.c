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

static void redact_keyword(char *s, const char *kw)
{
        size_t kwlen = strlen(kw);
        for (char *p = s; (p = strcasestr(p, kw)) != NULL; p += kwlen) {
                if (p != s && p[-1] != ' ' && p[-1] != '&' && p[-1] != '?')
                        continue;
                char *v = p + kwlen;
                while (*v == ' ')
                        v++;
                char *e = v;
                if (*e == '\'') {
                        for (e++; *e && *e != '\''; e++)
                                if (*e == '\\' && e[1])
                                        e++;
                        if (*e)
                                e++;
                } else {
                        while (*e && *e != ' ' && *e != '&')
                                e++;
                }
                memmove(v + 3, e, strlen(e) + 1);
                memcpy(v, "***", 3);
        }
}

char *rs_redact_url(const char *url, char *out, size_t size)
{
        char tmp[4096];
        rs_strlcpy(tmp, url ? url : "", sizeof(tmp));
        /* scheme://user:password@host -> scheme://user:***@host */
        char *scheme = strstr(tmp, "://");
        if (scheme) {
                char *auth = scheme + 3;
                char *at = strchr(auth, '@');
                char *slash = strchr(auth, '/');
                if (at && (!slash || at < slash)) {
                        char *colon = memchr(auth, ':', (size_t)(at - auth));
                        if (colon) {
                                memmove(colon + 4, at, strlen(at) + 1);
                                memcpy(colon + 1, "***", 3);
                        } else if (strncmp(tmp, "redis", 5) == 0) {
                                /* redis://password@host: the userinfo is the secret */
                                memmove(auth + 3, at, strlen(at) + 1);
                                memcpy(auth, "***", 3);
                        }
                }
        }
        redact_keyword(tmp, "password=");
        rs_strlcpy(out, tmp, size);
        return out;
}
