#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "rs_metrics.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *render(void)
{
        rs_buf_t b;
        rs_buf_init(&b);
        rs_buf_append(&b, "", 0); /* data non-NULL and NUL-terminated */
        rs_metrics_render(&b);
        return b.data;
}

static void assert_render(const char *expected)
{
        char *got = render();
        assert_string_equal(got, expected);
        free(got);
}

static int teardown(void **state)
{
        rs_metrics_reset();
        return 0;
}

static void test_empty_registry(void **state)
{
        assert_render("");
}

static void test_exposition_exact(void **state)
{
        rs_counter_t *all = rs_metrics_counter("t_events_total", "Events seen.", NULL);
        rs_counter_t *signup =
            rs_metrics_counter("t_events_total", "Events seen.", "type=\"signup\"");
        rs_gauge_t *depth = rs_metrics_gauge("t_queue_depth", "Queue depth.", NULL);
        static const double bounds[] = {0.25, 0.5, 1};
        rs_histogram_t *lat =
            rs_metrics_histogram("t_latency_seconds", "Latency.", NULL, bounds, 3);
        rs_histogram_t *db = rs_metrics_histogram("t_latency_seconds", "Latency.",
                                                  "stage=\"db\"", bounds, 3);
        rs_counter_add(all, 3);
        rs_counter_inc(signup);
        rs_counter_inc(signup);
        rs_gauge_set(depth, 4);
        rs_gauge_add(depth, -1.5);
        /* dyadic values keep the sum exact; 0.25 sits exactly on a bound */
        const double obs[] = {0.125, 0.25, 0.375, 0.75, 4};
        for (size_t i = 0; i < 5; i++)
                rs_histogram_observe(lat, obs[i]);
        rs_histogram_observe(db, 0.5);

        assert_int_equal(rs_counter_value(all), 3);
        assert_true(rs_gauge_value(depth) == 2.5);
        assert_render("# HELP t_events_total Events seen.\n"
                      "# TYPE t_events_total counter\n"
                      "t_events_total 3\n"
                      "t_events_total{type=\"signup\"} 2\n"
                      "# HELP t_queue_depth Queue depth.\n"
                      "# TYPE t_queue_depth gauge\n"
                      "t_queue_depth 2.5\n"
                      "# HELP t_latency_seconds Latency.\n"
                      "# TYPE t_latency_seconds histogram\n"
                      "t_latency_seconds_bucket{le=\"0.25\"} 2\n"
                      "t_latency_seconds_bucket{le=\"0.5\"} 3\n"
                      "t_latency_seconds_bucket{le=\"1\"} 4\n"
                      "t_latency_seconds_bucket{le=\"+Inf\"} 5\n"
                      "t_latency_seconds_sum 5.5\n"
                      "t_latency_seconds_count 5\n"
                      "t_latency_seconds_bucket{stage=\"db\",le=\"0.25\"} 0\n"
                      "t_latency_seconds_bucket{stage=\"db\",le=\"0.5\"} 1\n"
                      "t_latency_seconds_bucket{stage=\"db\",le=\"1\"} 1\n"
                      "t_latency_seconds_bucket{stage=\"db\",le=\"+Inf\"} 1\n"
                      "t_latency_seconds_sum{stage=\"db\"} 0.5\n"
                      "t_latency_seconds_count{stage=\"db\"} 1\n");
}

static void test_families_grouped_when_interleaved(void **state)
{
        rs_counter_inc(rs_metrics_counter("t_a_total", "A.", "x=\"1\""));
        rs_gauge_set(rs_metrics_gauge("t_b", "B.", NULL), 7);
        rs_counter_add(rs_metrics_counter("t_a_total", "A.", "x=\"2\""), 2);
        rs_gauge_set(rs_metrics_gauge("t_b", "B.", "y=\"z\""), 8);
        rs_counter_add(rs_metrics_counter("t_a_total", "A.", "x=\"3\",w=\"q\\\"\""), 3);
        assert_render("# HELP t_a_total A.\n"
                      "# TYPE t_a_total counter\n"
                      "t_a_total{x=\"1\"} 1\n"
                      "t_a_total{x=\"2\"} 2\n"
                      "t_a_total{x=\"3\",w=\"q\\\"\"} 3\n"
                      "# HELP t_b B.\n"
                      "# TYPE t_b gauge\n"
                      "t_b 7\n"
                      "t_b{y=\"z\"} 8\n");
}

static void test_help_escaping(void **state)
{
        rs_metrics_gauge("t_esc", "two\nlines with a back\\slash and \"quotes\"", NULL);
        assert_render("# HELP t_esc two\\nlines with a back\\\\slash and \"quotes\"\n"
                      "# TYPE t_esc gauge\n"
                      "t_esc 0\n");
}

static void test_same_series_identity(void **state)
{
        rs_counter_t *a = rs_metrics_counter("t_id_total", "Id.", NULL);
        rs_counter_t *b = rs_metrics_counter("t_id_total", "Id.", "");
        rs_counter_t *c = rs_metrics_counter("t_id_total", "Id.", "k=\"v\"");
        rs_counter_t *d = rs_metrics_counter("t_id_total", "Id.", "k=\"v\"");
        assert_ptr_equal(a, b); /* NULL and "" both mean "no labels" */
        assert_ptr_equal(c, d);
        assert_ptr_not_equal(a, c);
        rs_counter_inc(a);
        rs_counter_inc(b);
        rs_counter_inc(d);
        assert_int_equal(rs_counter_value(a), 2);
        assert_int_equal(rs_counter_value(c), 1);

        static const double bounds[] = {1, 2};
        rs_histogram_t *h1 = rs_metrics_histogram("t_id_h", "H.", NULL, bounds, 2);
        rs_histogram_t *h2 = rs_metrics_histogram("t_id_h", "H.", NULL, bounds, 2);
        assert_ptr_equal(h1, h2);
        rs_gauge_t *g1 = rs_metrics_gauge("t_id_g", "G.", NULL);
        assert_ptr_equal(g1, rs_metrics_gauge("t_id_g", "G.", NULL));
}

#define THREADS    4
#define PER_THREAD 100000

typedef struct {
        rs_counter_t *c;
        rs_gauge_t *g;
        rs_histogram_t *h;
} hot_t;

static void *hammer(void *arg)
{
        hot_t *m = arg;
        for (int i = 0; i < PER_THREAD; i++) {
                rs_counter_inc(m->c);
                rs_gauge_add(m->g, 1.0);
                rs_histogram_observe(m->h, (double)(i % 3)); /* 0, 1, 2 */
        }
        return NULL;
}

/* Scrapes while the updaters run: under ASan/TSan this exercises render
 * against lock-free updates; the values are checked after the join. */
static void *scraper(void *arg)
{
        atomic_bool *stop = arg;
        while (!atomic_load(stop))
                free(render());
        return NULL;
}

static void test_concurrent_updates(void **state)
{
        static const double bounds[] = {0.5, 1.5};
        hot_t m = {
            rs_metrics_counter("t_hot_total", "Hot.", NULL),
            rs_metrics_gauge("t_hot_g", "Hot.", NULL),
            rs_metrics_histogram("t_hot_h", "Hot.", NULL, bounds, 2),
        };
        pthread_t t[THREADS], s;
        atomic_bool stop = false;
        assert_int_equal(pthread_create(&s, NULL, scraper, &stop), 0);
        for (int i = 0; i < THREADS; i++)
                assert_int_equal(pthread_create(&t[i], NULL, hammer, &m), 0);
        for (int i = 0; i < THREADS; i++)
                pthread_join(t[i], NULL);
        atomic_store(&stop, true);
        pthread_join(s, NULL);

        const uint64_t total = (uint64_t)THREADS * PER_THREAD;
        assert_int_equal(rs_counter_value(m.c), total);
        assert_true(rs_gauge_value(m.g) == (double)total);
        /* i % 3 over 100000: 33334 zeros, 33333 ones, 33333 twos per thread */
        char *got = render();
        assert_non_null(strstr(got, "t_hot_h_bucket{le=\"0.5\"} 133336\n"));
        assert_non_null(strstr(got, "t_hot_h_bucket{le=\"1.5\"} 266668\n"));
        assert_non_null(strstr(got, "t_hot_h_bucket{le=\"+Inf\"} 400000\n"));
        assert_non_null(strstr(got, "t_hot_h_sum 399996\n"));
        assert_non_null(strstr(got, "t_hot_h_count 400000\n"));
        assert_non_null(strstr(got, "t_hot_total 400000\n"));
        free(got);
}

static void assert_gauge_text(double v, const char *expected)
{
        rs_gauge_set(rs_metrics_gauge("t_fmt", "F.", NULL), v);
        char *got = render();
        const char *line = strstr(got, "\nt_fmt ");
        assert_non_null(line);
        char want[80];
        snprintf(want, sizeof(want), "\nt_fmt %s\n", expected);
        assert_string_equal(line, want);
        free(got);
}

static void test_double_formatting(void **state)
{
        assert_gauge_text(0, "0");
        assert_gauge_text(-0.0, "-0");
        assert_gauge_text(42, "42");
        assert_gauge_text(123456789, "123456789");
        assert_gauge_text(0.1, "0.1");
        assert_gauge_text(1.0 / 3, "0.3333333333333333");
        assert_gauge_text(0.1 + 0.2, "0.30000000000000004");
        assert_gauge_text(-2.5e-7, "-2.5e-07");
        assert_gauge_text(1e21, "1e+21");
        assert_gauge_text(DBL_MAX, "1.7976931348623157e+308");
        assert_gauge_text(INFINITY, "+Inf");
        assert_gauge_text(-INFINITY, "-Inf");
        assert_gauge_text(NAN, "NaN");
        /* counters are integers, never in exponent form */
        rs_counter_add(rs_metrics_counter("t_big_total", "B.", NULL), UINT64_MAX);
        char *got = render();
        assert_non_null(strstr(got, "\nt_big_total 18446744073709551615\n"));
        free(got);
}

static void test_histogram_edge_values(void **state)
{
        static const double bounds[] = {-1, 1e-3, 1e6};
        rs_histogram_t *h = rs_metrics_histogram("t_edge", "E.", NULL, bounds, 3);
        rs_histogram_observe(h, -1);        /* on the lowest bound */
        rs_histogram_observe(h, -INFINITY); /* below everything */
        rs_histogram_observe(h, NAN);       /* compares false: +Inf only */
        assert_render("# HELP t_edge E.\n"
                      "# TYPE t_edge histogram\n"
                      "t_edge_bucket{le=\"-1\"} 2\n"
                      "t_edge_bucket{le=\"0.001\"} 2\n"
                      "t_edge_bucket{le=\"1000000\"} 2\n"
                      "t_edge_bucket{le=\"+Inf\"} 3\n"
                      "t_edge_sum NaN\n"
                      "t_edge_count 3\n");

        rs_histogram_t *none = rs_metrics_histogram("t_nobounds", "N.", NULL, NULL, 0);
        rs_histogram_observe(none, 2);
        char *got = render();
        assert_non_null(strstr(got, "t_nobounds_bucket{le=\"+Inf\"} 1\n"
                                    "t_nobounds_sum 2\n"
                                    "t_nobounds_count 1\n"));
        free(got);
}

/* ---- programming errors abort; checked in a child process ---- */

typedef void (*misuse_fn)(void);

static void bad_name_digit(void)
{
        rs_metrics_counter("1st_total", "x", NULL);
}
static void bad_name_dash(void)
{
        rs_metrics_gauge("refstream-lag", "x", NULL);
}
static void type_conflict(void)
{
        rs_metrics_counter("t_dup", "x", NULL);
        rs_metrics_gauge("t_dup", "x", NULL);
}
static void help_conflict(void)
{
        rs_metrics_counter("t_help_total", "one", NULL);
        rs_metrics_counter("t_help_total", "two", "a=\"b\"");
}
static void bad_labels_unquoted(void)
{
        rs_metrics_counter("t_l_total", "x", "type=signup");
}
static void bad_labels_trailing_comma(void)
{
        rs_metrics_counter("t_l_total", "x", "a=\"b\",");
}
static void bad_labels_raw_newline(void)
{
        rs_metrics_counter("t_l_total", "x", "a=\"b\nc\"");
}
static void histogram_le_label(void)
{
        static const double b[] = {1};
        rs_metrics_histogram("t_h", "x", "le=\"1\"", b, 1);
}
static void histogram_unsorted(void)
{
        static const double b[] = {1, 1};
        rs_metrics_histogram("t_h", "x", NULL, b, 2);
}
static void histogram_explicit_inf(void)
{
        static const double b[] = {1, INFINITY};
        rs_metrics_histogram("t_h", "x", NULL, b, 2);
}
static void histogram_other_buckets(void)
{
        static const double b1[] = {1, 2}, b2[] = {1, 3};
        rs_metrics_histogram("t_h", "x", NULL, b1, 2);
        rs_metrics_histogram("t_h", "x", "a=\"b\"", b2, 2);
}

static void assert_aborts(misuse_fn fn, const char *needle)
{
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                dup2(fds[1], STDERR_FILENO);
                fn();
                _exit(0); /* reaching here means no abort: the parent fails */
        }
        close(fds[1]);
        char msg[512] = "";
        size_t n = 0;
        ssize_t r;
        while ((r = read(fds[0], msg + n, sizeof(msg) - 1 - n)) > 0)
                n += (size_t)r;
        msg[n] = '\0';
        close(fds[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGABRT);
        if (!strstr(msg, needle))
                fail_msg("abort message '%s' lacks '%s'", msg, needle);
}

static void test_programming_errors_abort(void **state)
{
        assert_aborts(bad_name_digit, "invalid metric name '1st_total'");
        assert_aborts(bad_name_dash, "invalid metric name 'refstream-lag'");
        assert_aborts(type_conflict, "t_dup: registered as counter and as gauge");
        assert_aborts(help_conflict, "two different HELP texts");
        assert_aborts(bad_labels_unquoted, "malformed labels 'type=signup'");
        assert_aborts(bad_labels_trailing_comma, "malformed labels");
        assert_aborts(bad_labels_raw_newline, "malformed labels");
        assert_aborts(histogram_le_label, "'le' is reserved");
        assert_aborts(histogram_unsorted, "strictly ascending");
        assert_aborts(histogram_explicit_inf, "not finite");
        assert_aborts(histogram_other_buckets, "two different bucket layouts");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_teardown(test_empty_registry, teardown),
            cmocka_unit_test_teardown(test_exposition_exact, teardown),
            cmocka_unit_test_teardown(test_families_grouped_when_interleaved, teardown),
            cmocka_unit_test_teardown(test_help_escaping, teardown),
            cmocka_unit_test_teardown(test_same_series_identity, teardown),
            cmocka_unit_test_teardown(test_concurrent_updates, teardown),
            cmocka_unit_test_teardown(test_double_formatting, teardown),
            cmocka_unit_test_teardown(test_histogram_edge_values, teardown),
            cmocka_unit_test_teardown(test_programming_errors_abort, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
