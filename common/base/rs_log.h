#ifndef RS_LOG_H
#define RS_LOG_H
/* Leveled logging to stderr, as text or one JSON object per line. The macros
 * check the level before any argument is formatted (Redis habit). Never pass
 * secrets: callers redact with rs_redact_url() first. */
#include <stdbool.h>
#include <stddef.h>

typedef enum {
        RS_LOG_DEBUG = 0,
        RS_LOG_INFO = 1,
        RS_LOG_WARN = 2,
        RS_LOG_ERROR = 3,
} rs_log_level_t;

extern rs_log_level_t rs_log_level;

/* name: "debug"|"info"|"warn"|"error"; fmt: "text"|"json". */
bool rs_log_parse_level(const char *name, rs_log_level_t *out);
void rs_log_set_level(rs_log_level_t lvl);
void rs_log_set_json(bool json);

void rs_log_write(rs_log_level_t lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define RS_LOG(lvl, comp, ...)                                                           \
        do {                                                                             \
                if ((lvl) >= rs_log_level)                                               \
                        rs_log_write((lvl), (comp), __VA_ARGS__);                        \
        } while (0)
#define rs_debug(comp, ...) RS_LOG(RS_LOG_DEBUG, comp, __VA_ARGS__)
#define rs_info(comp, ...)  RS_LOG(RS_LOG_INFO, comp, __VA_ARGS__)
#define rs_warn(comp, ...)  RS_LOG(RS_LOG_WARN, comp, __VA_ARGS__)
#define rs_error(comp, ...) RS_LOG(RS_LOG_ERROR, comp, __VA_ARGS__)

/* Copies a connection string or URL into out with any password replaced by
 * "***" (URI userinfo, and libpq "password=" keywords). */
char *rs_redact_url(const char *url, char *out, size_t size);

#endif
