#include "rs_metrics.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Concurrency model: the registry structure (families, series lists) only
 * changes under reg_lock, and rendering walks it under the same lock. A series
 * handed out by registration never moves or disappears (until
 * rs_metrics_reset), so updates touch only that series' atomics and never the
 * lock. Updates use relaxed ordering: each value is independent, and a scrape
 * only needs every value to be some value it had recently. */

_Static_assert(sizeof(double) == sizeof(uint64_t), "double must be 64-bit");

typedef enum { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM } kind_t;

static const char *kind_names[] = {"counter", "gauge", "histogram"};

/* Common head of every series, so a family can hold all kinds in one list. */
typedef struct series {
        char *labels; /* "" when the series has none */
} series_t;

struct rs_counter {
        series_t s;
        _Atomic uint64_t value;
};

struct rs_gauge {
        series_t s;
        _Atomic uint64_t bits; /* the double's bit pattern */
};

struct rs_histogram {
        series_t s;
        const double *bounds; /* the family's, immutable */
        size_t nbounds;
        _Atomic uint64_t sum_bits;
        /* Per-bucket (not cumulative) counts, nbounds + 1 with +Inf last, so an
         * observation is one increment; cumulating is the scrape's job. */
        _Atomic uint64_t buckets[];
};

typedef struct family {
        char *name;
        char *help;
        kind_t kind;
        double *bounds; /* histograms: shared by every series of the family */
        size_t nbounds;
        series_t **series;
        size_t nseries;
        size_t cap;
} family_t;

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static family_t **families; /* registration order = exposition order */
static size_t nfamilies;
static size_t families_cap;
static rs_map_t by_name; /* name -> family_t*, keys owned by the family */

static void fatal(const char *fmt, ...) RS_PRINTF(1, 2);
static void fatal(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("refstream: metrics: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        abort();
}

/* ------------------------------------------------------------ validation */

static bool valid_name(const char *s, bool colon_ok)
{
        if (!s || !*s)
                return false;
        for (const char *p = s; *p; p++) {
                bool alpha = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z');
                bool digit = *p >= '0' && *p <= '9';
                if (!alpha && *p != '_' && !(colon_ok && *p == ':') && !(digit && p != s))
                        return false;
        }
        return true;
}

/* Returns the end of one name="value" pair starting at p, or NULL. */
static const char *scan_label(const char *p, bool *is_le)
{
        const char *eq = strchr(p, '=');
        if (!eq || eq[1] != '"')
                return NULL;
        char *name = rs_strndup(p, (size_t)(eq - p));
        bool ok = valid_name(name, false);
        *is_le = strcmp(name, "le") == 0;
        free(name);
        if (!ok)
                return NULL;
        for (p = eq + 2; *p != '"'; p++) {
                if (*p == '\0' || *p == '\n')
                        return NULL;
                if (*p == '\\' && p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                        return NULL;
                if (*p == '\\')
                        p++;
        }
        return p + 1;
}

/* One malformed label set makes Prometheus reject the whole scrape, so the
 * pre-rendered labels are checked once here rather than trusted. */
static void check_labels(const char *name, const char *labels, kind_t kind)
{
        for (const char *p = labels; *p;) {
                bool is_le = false;
                p = scan_label(p, &is_le);
                if (!p)
                        fatal("%s: malformed labels '%s' (want name=\"value\",...)", name,
                              labels);
                if (is_le && kind == KIND_HISTOGRAM)
                        fatal("%s: label 'le' is reserved for histogram buckets", name);
                if (*p == ',' && p[1] != '\0')
                        p++;
                else if (*p != '\0')
                        fatal("%s: malformed labels '%s'", name, labels);
        }
}

static void check_bounds(const char *name, const double *bounds, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (!isfinite(bounds[i]))
                        fatal("%s: bucket bound %zu is not finite (+Inf is implicit)",
                              name, i);
                if (i > 0 && !(bounds[i] > bounds[i - 1]))
                        fatal("%s: bucket bounds must be strictly ascending", name);
        }
}

/* -------------------------------------------------------------- registry */

static family_t *family_new(const char *name, const char *help, kind_t kind,
                            const double *bounds, size_t nbounds)
{
        family_t *f = rs_calloc(1, sizeof(*f));
        f->name = rs_strdup(name);
        f->help = rs_strdup(help);
        f->kind = kind;
        if (kind == KIND_HISTOGRAM) {
                f->bounds = rs_calloc(nbounds, sizeof(double));
                if (nbounds)
                        memcpy(f->bounds, bounds, nbounds * sizeof(double));
                f->nbounds = nbounds;
        }
        if (nfamilies == families_cap) {
                families_cap = families_cap ? families_cap * 2 : 16;
                families = rs_realloc(families, families_cap * sizeof(*families));
        }
        families[nfamilies++] = f;
        rs_map_put(&by_name, f->name, f);
        return f;
}

/* Registering a name twice must describe the same family; anything else is a
 * programming error that would produce a scrape Prometheus rejects. */
static void family_check(const family_t *f, const char *help, kind_t kind,
                         const double *bounds, size_t nbounds)
{
        if (f->kind != kind)
                fatal("%s: registered as %s and as %s", f->name, kind_names[f->kind],
                      kind_names[kind]);
        if (strcmp(f->help, help) != 0)
                fatal("%s: registered with two different HELP texts", f->name);
        if (kind == KIND_HISTOGRAM &&
            (f->nbounds != nbounds ||
             (nbounds && memcmp(f->bounds, bounds, nbounds * sizeof(double)) != 0)))
                fatal("%s: registered with two different bucket layouts", f->name);
}

static series_t *series_new(family_t *f, const char *labels)
{
        series_t *s;
        if (f->kind == KIND_HISTOGRAM) {
                rs_histogram_t *h =
                    rs_calloc(1, sizeof(*h) + (f->nbounds + 1) * sizeof(h->buckets[0]));
                h->bounds = f->bounds;
                h->nbounds = f->nbounds;
                s = &h->s;
        } else if (f->kind == KIND_GAUGE) {
                s = &((rs_gauge_t *)rs_calloc(1, sizeof(rs_gauge_t)))->s;
        } else {
                s = &((rs_counter_t *)rs_calloc(1, sizeof(rs_counter_t)))->s;
        }
        /* calloc'd atomics are 0, and 0 is also the bit pattern of 0.0 */
        s->labels = rs_strdup(labels);
        if (f->nseries == f->cap) {
                f->cap = f->cap ? f->cap * 2 : 4;
                f->series = rs_realloc(f->series, f->cap * sizeof(*f->series));
        }
        f->series[f->nseries++] = s;
        return s;
}

static series_t *series_get(kind_t kind, const char *name, const char *help,
                            const char *labels, const double *bounds, size_t nbounds)
{
        if (!valid_name(name, true))
                fatal("invalid metric name '%s' (want [a-zA-Z_:][a-zA-Z0-9_:]*)",
                      name ? name : "(null)");
        help = help ? help : "";
        labels = labels ? labels : "";
        check_labels(name, labels, kind);
        if (kind == KIND_HISTOGRAM)
                check_bounds(name, bounds, nbounds);

        pthread_mutex_lock(&reg_lock);
        family_t *f = rs_map_get(&by_name, name);
        if (f)
                family_check(f, help, kind, bounds, nbounds);
        else
                f = family_new(name, help, kind, bounds, nbounds);
        series_t *s = NULL;
        /* Linear: registration is start-up only, and families are small. */
        for (size_t i = 0; i < f->nseries && !s; i++)
                if (strcmp(f->series[i]->labels, labels) == 0)
                        s = f->series[i];
        if (!s)
                s = series_new(f, labels);
        pthread_mutex_unlock(&reg_lock);
        return s;
}

rs_counter_t *rs_metrics_counter(const char *name, const char *help, const char *labels)
{
        /* series_t is the first member of every series struct */
        return (rs_counter_t *)series_get(KIND_COUNTER, name, help, labels, NULL, 0);
}

rs_gauge_t *rs_metrics_gauge(const char *name, const char *help, const char *labels)
{
        return (rs_gauge_t *)series_get(KIND_GAUGE, name, help, labels, NULL, 0);
}

rs_histogram_t *rs_metrics_histogram(const char *name, const char *help,
                                     const char *labels, const double *bounds,
                                     size_t nbounds)
{
        return (rs_histogram_t *)series_get(KIND_HISTOGRAM, name, help, labels, bounds,
                                            nbounds);
}

/* --------------------------------------------------------------- updates */

static double from_bits(uint64_t b)
{
        double d;
        memcpy(&d, &b, sizeof(d));
        return d;
}

static uint64_t to_bits(double d)
{
        uint64_t b;
        memcpy(&b, &d, sizeof(b));
        return b;
}

/* C11 has no atomic double add; a CAS loop on the bit pattern is lock-free. */
static void atomic_add_double(_Atomic uint64_t *p, double delta)
{
        uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(
            p, &old, to_bits(from_bits(old) + delta), memory_order_relaxed,
            memory_order_relaxed))
                ;
}

void rs_counter_add(rs_counter_t *c, uint64_t n)
{
        atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

uint64_t rs_counter_value(const rs_counter_t *c)
{
        return atomic_load_explicit(&((rs_counter_t *)c)->value, memory_order_relaxed);
}

void rs_gauge_set(rs_gauge_t *g, double v)
{
        atomic_store_explicit(&g->bits, to_bits(v), memory_order_relaxed);
}

void rs_gauge_add(rs_gauge_t *g, double delta)
{
        atomic_add_double(&g->bits, delta);
}

double rs_gauge_value(const rs_gauge_t *g)
{
        return from_bits(
            atomic_load_explicit(&((rs_gauge_t *)g)->bits, memory_order_relaxed));
}

void rs_histogram_observe(rs_histogram_t *h, double v)
{
        /* le is inclusive; NaN compares false everywhere and lands in +Inf. */
        size_t i = 0;
        while (i < h->nbounds && !(v <= h->bounds[i]))
                i++;
        atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
        atomic_add_double(&h->sum_bits, v);
}

/* ------------------------------------------------------------- rendering */

/* Shortest of %.15g/%.16g/%.17g that reads back as the same double; the
 * non-finite spellings are the ones Prometheus' parser expects. */
static const char *fmt_double(double v, char *buf, size_t size)
{
        if (isnan(v))
                return "NaN";
        if (isinf(v))
                return v > 0 ? "+Inf" : "-Inf";
        for (int prec = 15; prec <= 17; prec++) {
                snprintf(buf, size, "%.*g", prec, v);
                if (strtod(buf, NULL) == v)
                        break;
        }
        return buf;
}

static void put_help(rs_buf_t *out, const family_t *f)
{
        rs_buf_printf(out, "# HELP %s ", f->name);
        for (const char *p = f->help; *p; p++) {
                if (*p == '\\')
                        rs_buf_puts(out, "\\\\");
                else if (*p == '\n')
                        rs_buf_puts(out, "\\n");
                else
                        rs_buf_putc(out, *p);
        }
        rs_buf_printf(out, "\n# TYPE %s %s\n", f->name, kind_names[f->kind]);
}

/* name{labels} or just name; suffix "_sum" etc. is appended to the name. */
static void put_series_name(rs_buf_t *out, const family_t *f, const char *suffix,
                            const char *labels)
{
        if (*labels)
                rs_buf_printf(out, "%s%s{%s} ", f->name, suffix, labels);
        else
                rs_buf_printf(out, "%s%s ", f->name, suffix);
}

static void put_bucket(rs_buf_t *out, const family_t *f, const char *labels,
                       const char *le, uint64_t cumulative)
{
        rs_buf_printf(out, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", f->name, labels,
                      *labels ? "," : "", le, cumulative);
}

/* Buckets are read one by one while observations may continue, so _count is
 * the cumulative total actually printed: it always equals the +Inf bucket,
 * which Prometheus relies on. _sum may include an observation or two more or
 * less than the buckets; official clients accept the same skew. */
static void render_histogram(rs_buf_t *out, const family_t *f, rs_histogram_t *h)
{
        char num[40];
        uint64_t total = 0;
        for (size_t i = 0; i <= h->nbounds; i++) {
                total += atomic_load_explicit(&h->buckets[i], memory_order_relaxed);
                const char *le =
                    i < h->nbounds ? fmt_double(h->bounds[i], num, sizeof(num)) : "+Inf";
                put_bucket(out, f, h->s.labels, le, total);
        }
        double sum = from_bits(atomic_load_explicit(&h->sum_bits, memory_order_relaxed));
        put_series_name(out, f, "_sum", h->s.labels);
        rs_buf_printf(out, "%s\n", fmt_double(sum, num, sizeof(num)));
        put_series_name(out, f, "_count", h->s.labels);
        rs_buf_printf(out, "%" PRIu64 "\n", total);
}

static void render_family(rs_buf_t *out, const family_t *f)
{
        char num[40];
        put_help(out, f);
        for (size_t i = 0; i < f->nseries; i++) {
                series_t *s = f->series[i];
                if (f->kind == KIND_HISTOGRAM) {
                        render_histogram(out, f, (rs_histogram_t *)s);
                } else if (f->kind == KIND_GAUGE) {
                        put_series_name(out, f, "", s->labels);
                        rs_buf_printf(out, "%s\n",
                                      fmt_double(rs_gauge_value((rs_gauge_t *)s), num,
                                                 sizeof(num)));
                } else {
                        put_series_name(out, f, "", s->labels);
                        rs_buf_printf(out, "%" PRIu64 "\n",
                                      rs_counter_value((rs_counter_t *)s));
                }
        }
}

void rs_metrics_render(rs_buf_t *out)
{
        pthread_mutex_lock(&reg_lock);
        for (size_t i = 0; i < nfamilies; i++)
                render_family(out, families[i]);
        pthread_mutex_unlock(&reg_lock);
}

void rs_metrics_reset(void)
{
        pthread_mutex_lock(&reg_lock);
        for (size_t i = 0; i < nfamilies; i++) {
                family_t *f = families[i];
                for (size_t j = 0; j < f->nseries; j++) {
                        free(f->series[j]->labels);
                        free(f->series[j]); /* the series is the allocation's head */
                }
                free(f->series);
                free(f->bounds);
                free(f->help);
                free(f->name);
                free(f);
        }
        free(families);
        families = NULL;
        nfamilies = families_cap = 0;
        rs_map_free(&by_name);
        pthread_mutex_unlock(&reg_lock);
}
