#include "rs_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void oom(size_t n)
{
        fprintf(stderr, "refstream: out of memory allocating %zu bytes\n", n);
        abort();
}

void *rs_malloc(size_t n)
{
        void *p = malloc(n ? n : 1);
        if (!p)
                oom(n);
        return p;
}

void *rs_calloc(size_t n, size_t size)
{
        void *p = calloc(n ? n : 1, size ? size : 1);
        if (!p)
                oom(n * size);
        return p;
}

void *rs_realloc(void *p, size_t n)
{
        void *q = realloc(p, n ? n : 1);
        if (!q)
                oom(n);
        return q;
}

char *rs_strdup(const char *s)
{
        return rs_strndup(s, strlen(s));
}

char *rs_strndup(const char *s, size_t n)
{
        char *p = rs_malloc(n + 1);
        memcpy(p, s, n);
        p[n] = '\0';
        return p;
}

bool rs_fail(char *errstr, size_t errstr_size, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
        return false;
}

char *rs_strlcpy(char *dst, const char *src, size_t size)
{
        if (size == 0)
                return dst;
        size_t n = strlen(src);
        if (n >= size)
                n = size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
        return dst;
}

/* ---------------------------------------------------------------- arena */

struct rs_arena_block {
        rs_arena_block_t *next;
        size_t used;
        size_t cap;
        max_align_t data[];
};

void rs_arena_init(rs_arena_t *a, size_t block_size)
{
        a->head = NULL;
        a->block_size = block_size ? block_size : 64 * 1024;
}

void *rs_arena_alloc(rs_arena_t *a, size_t n)
{
        const size_t align = sizeof(max_align_t);
        n = (n + align - 1) & ~(align - 1);
        rs_arena_block_t *b = a->head;
        if (!b || b->cap - b->used < n) {
                size_t cap = n > a->block_size ? n : a->block_size;
                rs_arena_block_t *nb = rs_malloc(sizeof(*nb) + cap);
                nb->used = 0;
                nb->cap = cap;
                /* An oversized block goes behind the head so the head's spare
                 * room stays usable for the small allocations that follow. */
                if (b && n > a->block_size) {
                        nb->next = b->next;
                        b->next = nb;
                } else {
                        nb->next = b;
                        a->head = nb;
                }
                b = nb;
        }
        void *p = (char *)b->data + b->used;
        b->used += n;
        return p;
}

char *rs_arena_strndup(rs_arena_t *a, const char *s, size_t n)
{
        if (!s)
                return NULL;
        char *p = rs_arena_alloc(a, n + 1);
        memcpy(p, s, n);
        p[n] = '\0';
        return p;
}

char *rs_arena_strdup(rs_arena_t *a, const char *s)
{
        return s ? rs_arena_strndup(a, s, strlen(s)) : NULL;
}

char *rs_arena_printf(rs_arena_t *a, const char *fmt, ...)
{
        va_list ap, ap2;
        va_start(ap, fmt);
        va_copy(ap2, ap);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        char *p = rs_arena_alloc(a, (size_t)n + 1);
        vsnprintf(p, (size_t)n + 1, fmt, ap2);
        va_end(ap2);
        return p;
}

void rs_arena_reset(rs_arena_t *a)
{
        rs_arena_block_t *b = a->head;
        if (!b)
                return;
        /* Keep the most recent regular-sized block. */
        rs_arena_block_t *keep = NULL, *next;
        for (; b; b = next) {
                next = b->next;
                if (!keep && b->cap == a->block_size) {
                        keep = b;
                        continue;
                }
                free(b);
        }
        if (keep) {
                keep->used = 0;
                keep->next = NULL;
        }
        a->head = keep;
}

void rs_arena_destroy(rs_arena_t *a)
{
        rs_arena_block_t *b = a->head, *next;
        for (; b; b = next) {
                next = b->next;
                free(b);
        }
        a->head = NULL;
}

/* ---------------------------------------------------------------- buffer */

void rs_buf_init(rs_buf_t *b)
{
        b->data = NULL;
        b->len = 0;
        b->cap = 0;
}

void rs_buf_reserve(rs_buf_t *b, size_t extra)
{
        if (b->len + extra + 1 <= b->cap)
                return;
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + extra + 1)
                cap *= 2;
        b->data = rs_realloc(b->data, cap);
        b->cap = cap;
        b->data[b->len] = '\0';
}

void rs_buf_append(rs_buf_t *b, const void *p, size_t n)
{
        rs_buf_reserve(b, n);
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
}

void rs_buf_puts(rs_buf_t *b, const char *s)
{
        rs_buf_append(b, s, strlen(s));
}

void rs_buf_putc(rs_buf_t *b, char c)
{
        rs_buf_append(b, &c, 1);
}

void rs_buf_printf(rs_buf_t *b, const char *fmt, ...)
{
        va_list ap, ap2;
        va_start(ap, fmt);
        va_copy(ap2, ap);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n > 0) {
                rs_buf_reserve(b, (size_t)n);
                vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
                b->len += (size_t)n;
        }
        va_end(ap2);
}

void rs_buf_reset(rs_buf_t *b)
{
        b->len = 0;
        if (b->data)
                b->data[0] = '\0';
}

void rs_buf_free(rs_buf_t *b)
{
        free(b->data);
        rs_buf_init(b);
}

void rs_buf_json_str(rs_buf_t *b, const char *s)
{
        static const char hex[] = "0123456789abcdef";
        rs_buf_putc(b, '"');
        for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
                switch (*p) {
                case '"':
                        rs_buf_puts(b, "\\\"");
                        break;
                case '\\':
                        rs_buf_puts(b, "\\\\");
                        break;
                case '\n':
                        rs_buf_puts(b, "\\n");
                        break;
                case '\r':
                        rs_buf_puts(b, "\\r");
                        break;
                case '\t':
                        rs_buf_puts(b, "\\t");
                        break;
                default:
                        if (*p < 0x20) {
                                char esc[7] = {'\\',         'u',          '0', '0',
                                               hex[*p >> 4], hex[*p & 15], 0};
                                rs_buf_puts(b, esc);
                        } else {
                                rs_buf_putc(b, (char)*p);
                        }
                }
        }
        rs_buf_putc(b, '"');
}

/* ---------------------------------------------------------------- map */

uint64_t rs_hash_str(const char *s)
{
        /* FNV-1a, 64 bit. */
        uint64_t h = 1469598103934665603ULL;
        for (; *s; s++) {
                h ^= (unsigned char)*s;
                h *= 1099511628211ULL;
        }
        return h;
}

void rs_map_init(rs_map_t *m)
{
        m->slots = NULL;
        m->cap = 0;
        m->count = 0;
}

/* The slot for key (hash h): its entry, or the empty slot where it would go.
 * FNV-1a's high bits mix more input than its low ones: the index takes the
 * high half of h times a large odd constant. Keys are compared only where
 * the hashes are equal. */
static rs_map_entry_t *map_find(rs_map_entry_t *slots, size_t cap, const char *key,
                                uint64_t h)
{
        size_t i = (size_t)((h * 0x9e3779b97f4a7c15ULL) >> 32) & (cap - 1);
        while (slots[i].key && (slots[i].hash != h || strcmp(slots[i].key, key) != 0))
                i = (i + 1) & (cap - 1);
        return &slots[i];
}

static void map_grow(rs_map_t *m)
{
        size_t cap = m->cap ? m->cap * 2 : 16;
        rs_map_entry_t *slots = rs_calloc(cap, sizeof(*slots));
        for (size_t i = 0; i < m->cap; i++) {
                const rs_map_entry_t *e = &m->slots[i];
                if (e->key)
                        *map_find(slots, cap, e->key, e->hash) = *e;
        }
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
}

void *rs_map_get(const rs_map_t *m, const char *key)
{
        if (!m->cap)
                return NULL;
        return map_find(m->slots, m->cap, key, rs_hash_str(key))->value;
}

void *rs_map_put(rs_map_t *m, const char *key, void *value)
{
        if ((m->count + 1) * 4 > m->cap * 3)
                map_grow(m);
        uint64_t h = rs_hash_str(key);
        rs_map_entry_t *e = map_find(m->slots, m->cap, key, h);
        void *old = e->value;
        if (!e->key) {
                e->key = key;
                e->hash = h;
                m->count++;
        }
        e->value = value;
        return old;
}

void rs_map_free(rs_map_t *m)
{
        free(m->slots);
        rs_map_init(m);
}

/* ---------------------------------------------------------------- time */

int64_t rs_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rs_monotonic_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rs_sleep_ms(int64_t ms)
{
        if (ms <= 0)
                return;
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
                ;
}

/* Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's
 * algorithm); avoids timegm's dependence on the TZ environment. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
        y -= m <= 2;
        const int64_t era = (y >= 0 ? y : y - 399) / 400;
        const int64_t yoe = y - era * 400;
        const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static bool digits(const char *s, int n, int *out)
{
        int v = 0;
        for (int i = 0; i < n; i++) {
                if (!isdigit((unsigned char)s[i]))
                        return false;
                v = v * 10 + (s[i] - '0');
        }
        *out = v;
        return true;
}

static int days_in_month(int y, int m)
{
        static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        return m == 2 && leap ? 29 : dm[m - 1];
}

bool rs_parse_rfc3339(const char *s, int64_t *out_ms)
{
        int y, mo, d, h, mi, sec;
        if (strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' ||
            !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d) ||
            (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !digits(s + 11, 2, &h) ||
            s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
            !digits(s + 17, 2, &sec))
                return false;
        if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
            sec > 60)
                return false;
        const char *p = s + 19;
        int64_t frac_ms = 0;
        if (*p == '.') {
                p++;
                int n = 0;
                while (isdigit((unsigned char)*p)) {
                        if (n < 3)
                                frac_ms = frac_ms * 10 + (*p - '0');
                        n++;
                        p++;
                }
                if (n == 0)
                        return false;
                for (; n < 3; n++)
                        frac_ms *= 10;
        }
        int64_t offset_s = 0;
        if (*p == 'Z' || *p == 'z') {
                p++;
        } else if (*p == '+' || *p == '-') {
                int oh, om;
                if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) ||
                    oh > 23 || om > 59)
                        return false;
                offset_s = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
                p += 6;
        } else {
                return false;
        }
        if (*p)
                return false;
        if (sec == 60)
                sec = 59; /* leap second: clamp */
        int64_t secs =
            days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
        *out_ms = secs * 1000 + frac_ms;
        return true;
}

char *rs_format_rfc3339(int64_t ms, char *buf, size_t size)
{
        time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        int frac = (int)(ms - (int64_t)secs * 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
        return buf;
}

/* ---------------------------------------------------------------- parsing */

bool rs_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
        if (!s || !*s || isspace((unsigned char)*s))
                return false;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return false;
        *out = v;
        return true;
}

bool rs_valid_currency(const char *s)
{
        if (!s || strlen(s) != 3)
                return false;
        for (int i = 0; i < 3; i++) {
                if (s[i] < 'A' || s[i] > 'Z')
                        return false;
        }
        return true;
}

size_t rs_utf8_prefix(const char *s, size_t max)
{
        size_t n = strnlen(s, max);
        /* s[n] is a continuation byte: the character before it was cut. */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
                n--;
        return n;
}

char *rs_read_stream(FILE *f, size_t *len_out)
{
        rs_buf_t b;
        rs_buf_init(&b);
        char chunk[8192];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                rs_buf_append(&b, chunk, n);
        if (ferror(f)) {
                rs_buf_free(&b);
                return NULL;
        }
        rs_buf_reserve(&b, 0);
        b.data[b.len] = '\0';
        if (len_out)
                *len_out = b.len;
        return b.data;
}
