#ifndef RS_UTIL_H
#define RS_UTIL_H
/* Small building blocks shared by every component: an arena for per-batch
 * allocations, a growable byte buffer, a string-keyed hash map, time helpers. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define RS_MIN(a, b)     ((a) < (b) ? (a) : (b))
#define RS_MAX(a, b)     ((a) > (b) ? (a) : (b))
#define RS_WARN_UNUSED   __attribute__((warn_unused_result))
#define RS_PRINTF(f, a)  __attribute__((format(printf, f, a)))

/* "No value" for optional timestamps and limits. */
#define RS_TS_NONE  INT64_MIN
#define RS_INT_NONE (-1)

/* Allocation failure is not recoverable in this program: abort loudly. */
void *rs_malloc(size_t n);
void *rs_calloc(size_t n, size_t size);
void *rs_realloc(void *p, size_t n);
char *rs_strdup(const char *s);
char *rs_strndup(const char *s, size_t n);

/* snprintf into a fixed buffer that always terminates; returns dst. */
char *rs_strlcpy(char *dst, const char *src, size_t size);
/* Formats into errstr and returns false: `return rs_fail(errstr, n, ...)`. */
bool rs_fail(char *errstr, size_t errstr_size, const char *fmt, ...) RS_PRINTF(3, 4);

/* ---- arena: many small allocations freed together (one per batch) ---- */
typedef struct rs_arena_block rs_arena_block_t;
typedef struct rs_arena {
        rs_arena_block_t *head;
        size_t block_size;
} rs_arena_t;

void rs_arena_init(rs_arena_t *a, size_t block_size);
void *rs_arena_alloc(rs_arena_t *a, size_t n);
/* Copies, NUL-terminated; NULL for NULL. */
char *rs_arena_strdup(rs_arena_t *a, const char *s);
char *rs_arena_strndup(rs_arena_t *a, const char *s, size_t n);
char *rs_arena_printf(rs_arena_t *a, const char *fmt, ...) RS_PRINTF(2, 3);
/* Frees every block but the first, which is kept for reuse. */
void rs_arena_reset(rs_arena_t *a);
void rs_arena_destroy(rs_arena_t *a);

/* ---- growable byte buffer, always NUL-terminated past len ---- */
typedef struct rs_buf {
        char *data;
        size_t len;
        size_t cap;
} rs_buf_t;

void rs_buf_init(rs_buf_t *b);
void rs_buf_reserve(rs_buf_t *b, size_t extra);
void rs_buf_append(rs_buf_t *b, const void *p, size_t n);
void rs_buf_puts(rs_buf_t *b, const char *s);
void rs_buf_putc(rs_buf_t *b, char c);
void rs_buf_printf(rs_buf_t *b, const char *fmt, ...) RS_PRINTF(2, 3);
void rs_buf_reset(rs_buf_t *b);
void rs_buf_free(rs_buf_t *b);
/* Appends s as a JSON string literal (with quotes). */
void rs_buf_json_str(rs_buf_t *b, const char *s);

/* ---- string-keyed open-addressing hash map; keys are not copied ---- */
typedef struct rs_map_entry {
        const char *key;
        void *value;
        uint64_t hash; /* rs_hash_str(key): probes compare it before the keys */
} rs_map_entry_t;

typedef struct rs_map {
        rs_map_entry_t *slots;
        size_t cap; /* power of two */
        size_t count;
} rs_map_t;

void rs_map_init(rs_map_t *m);
void *rs_map_get(const rs_map_t *m, const char *key);
/* Inserts or replaces; returns the previous value or NULL. */
void *rs_map_put(rs_map_t *m, const char *key, void *value);
void rs_map_free(rs_map_t *m);
/* Iterate: for (size_t i = 0; i < m->cap; i++) if (m->slots[i].key) ... */

uint64_t rs_hash_str(const char *s);

/* ---- time ---- */
int64_t rs_now_ms(void);       /* wall clock, epoch milliseconds */
int64_t rs_monotonic_ms(void); /* for intervals and timeouts */
void rs_sleep_ms(int64_t ms);
/* Parses RFC 3339 ("2026-01-02T03:04:05Z", fraction and offset optional) into
 * epoch milliseconds. Returns false if s is not a valid timestamp. */
bool rs_parse_rfc3339(const char *s, int64_t *out_ms) RS_WARN_UNUSED;
/* Formats epoch ms as "2026-01-02T03:04:05.678Z" into buf (>= 32 bytes). */
char *rs_format_rfc3339(int64_t ms, char *buf, size_t size);

/* ---- parsing ---- */
/* Whole-string base-10 integer parse with range check. */
bool rs_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out) RS_WARN_UNUSED;
/* True if s is 3 upper-case ASCII letters (ISO 4217 shape). */
bool rs_valid_currency(const char *s);

/* The length of the longest prefix of s of at most max bytes that does not
 * end inside a UTF-8 character (s is assumed valid UTF-8). */
size_t rs_utf8_prefix(const char *s, size_t max);

/* Reads a whole stream into a NUL-terminated buffer; NULL on error. */
char *rs_read_stream(FILE *f, size_t *len_out);

#endif
