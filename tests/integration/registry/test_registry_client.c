/* The Schema Registry client (rs_registry.h) against the test registry of
 * tests/tools/schema_registry.py: Confluent's API, a prefix, basic auth, TLS
 * with client certificates, and faults switched on its control listener.
 * Three instances (plain, prefixed, with auth) run for the whole file, a
 * fourth (HTTPS) for the TLS test; each test uses its own subjects. */
#include "rs_log.h"
#include "rs_registry.h"
#include "rs_util.h"

#include <jansson.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define PREFIX    "/apis/ccompat/v7"
#define AUTH_USER "reg-user"
#define AUTH_PASS "s3cret-Pa55"
#define BAD_PASS  "wr0ng-Pa55"

#define REC_A                                                                            \
        "{\"type\":\"record\",\"name\":\"A\",\"fields\":"                                \
        "[{\"name\":\"a\",\"type\":\"string\"}]}"
/* REC_A plus a required field without default: not BACKWARD compatible. */
#define REC_A_B                                                                          \
        "{\"type\":\"record\",\"name\":\"A\",\"fields\":"                                \
        "[{\"name\":\"a\",\"type\":\"string\"},{\"name\":\"b\",\"type\":\"int\"}]}"
#define REC_OTHER                                                                        \
        "{\"type\":\"record\",\"name\":\"Other\",\"fields\":"                            \
        "[{\"name\":\"x\",\"type\":\"long\"}]}"

typedef struct registry_proc {
        pid_t pid;
        int port, ctl_port;
        char dir[PATH_MAX];
        char url[128]; /* the API's base URL, prefix included */
} registry_proc_t;

static registry_proc_t plain, prefixed, authed, secure;

/* The TLS test's certificates (openssl, see setup_tls). */
static char cert_dir[PATH_MAX];
static const char *const cert_files[] = {"ca", "server", "client"};

/* ---------------------------------------------------------------- the fixture */

static void file_in(const registry_proc_t *p, const char *name, char *out, size_t size)
{
        snprintf(out, size, "%s/%s", p->dir, name);
}

/* The port the fixture wrote (by rename: whole or absent), 0 while none. */
static int read_port(const char *file)
{
        FILE *f = fopen(file, "r");
        if (!f)
                return 0;
        char *text = rs_read_stream(f, NULL);
        fclose(f);
        int64_t port = 0;
        if (text)
                text[strcspn(text, "\r\n")] = '\0';
        if (!text || !rs_parse_int64(text, 1, 65535, &port))
                port = 0;
        free(text);
        return (int)port;
}

static int wait_port(const registry_proc_t *p, const char *name)
{
        char file[PATH_MAX + 32];
        file_in(p, name, file, sizeof(file));
        for (int64_t end = rs_monotonic_ms() + 15000; rs_monotonic_ms() < end;) {
                int port = read_port(file);
                if (port)
                        return port;
                int status;
                if (waitpid(p->pid, &status, WNOHANG) == p->pid)
                        fail_msg("tests/tools/schema_registry.py exited (status %d)",
                                 status);
                rs_sleep_ms(50);
        }
        fail_msg("tests/tools/schema_registry.py wrote no %s in 15 s", name);
        return 0;
}

/* dir/name.ext into out (PATH_MAX + 32 bytes). */
static char *cert_file(const char *name, const char *ext, char *out)
{
        snprintf(out, PATH_MAX + 32, "%s/%s.%s", cert_dir, name, ext);
        return out;
}

/* With tls: HTTPS with the certificates of cert_dir, client ones required. */
static void exec_registry(const registry_proc_t *p, const char *prefix, const char *auth,
                          bool tls)
{
        char script[PATH_MAX], ports[PATH_MAX + 32], ctl[PATH_MAX + 32];
        char ca[PATH_MAX + 32], cert[PATH_MAX + 32], key[PATH_MAX + 32];
        snprintf(script, sizeof(script), "%s/tests/tools/schema_registry.py",
                 getenv("RS_SOURCE_DIR"));
        file_in(p, "port", ports, sizeof(ports));
        file_in(p, "control-port", ctl, sizeof(ctl));
        const char *argv[20] = {
            "python3", script, "--port-file", ports, "--control-port-file", ctl};
        size_t n = 6;
        if (prefix) {
                argv[n++] = "--prefix";
                argv[n++] = prefix;
        }
        if (auth) {
                argv[n++] = "--basic-auth";
                argv[n++] = auth;
        }
        if (tls) {
                argv[n++] = "--tls-cert";
                argv[n++] = cert_file("server", "pem", cert);
                argv[n++] = "--tls-key";
                argv[n++] = cert_file("server", "key", key);
                argv[n++] = "--tls-client-ca";
                argv[n++] = cert_file("ca", "pem", ca);
        }
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* no orphan if this test crashes */
        execvp("python3", (char *const *)argv);
        perror("python3");
        _exit(127);
}

/* A new directory under TMPDIR (or /tmp) into dir (PATH_MAX bytes). */
static void make_temp_dir(char *dir)
{
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, PATH_MAX, "%s/rs-registry-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        assert_non_null(mkdtemp(dir));
}

static void start(registry_proc_t *p, const char *prefix, const char *auth, bool tls)
{
        if (!getenv("RS_SOURCE_DIR"))
                fail_msg("RS_SOURCE_DIR is not set (ctest sets it)");
        make_temp_dir(p->dir);
        p->pid = fork();
        assert_true(p->pid >= 0);
        if (p->pid == 0)
                exec_registry(p, prefix, auth, tls);
        p->port = wait_port(p, "port");
        p->ctl_port = wait_port(p, "control-port");
        snprintf(p->url, sizeof(p->url), "%s://127.0.0.1:%d%s", tls ? "https" : "http",
                 p->port, prefix ? prefix : "");
}

/* SIGTERM first to all (each takes up to half a second to stop serving), then
 * the wait. */
static void signal_stop(const registry_proc_t *p)
{
        if (p->pid > 0)
                kill(p->pid, SIGTERM);
}

static void reap(registry_proc_t *p)
{
        if (p->pid <= 0)
                return;
        int status;
        int64_t end = rs_monotonic_ms() + 3000;
        while (waitpid(p->pid, &status, WNOHANG) == 0) {
                if (rs_monotonic_ms() > end) {
                        kill(p->pid, SIGKILL);
                        waitpid(p->pid, &status, 0);
                        break;
                }
                rs_sleep_ms(20);
        }
        p->pid = 0;
        char file[PATH_MAX + 32];
        file_in(p, "port", file, sizeof(file));
        unlink(file);
        file_in(p, "control-port", file, sizeof(file));
        unlink(file);
        rmdir(p->dir);
}

static int setup_all(void **state)
{
        /* A proxy in the environment must not see loopback requests (libcurl
         * honours http_proxy, and so does the client). */
        setenv("no_proxy", "*", 1);
        setenv("NO_PROXY", "*", 1);
        start(&plain, NULL, NULL, false);
        start(&prefixed, PREFIX, NULL, false);
        start(&authed, NULL, AUTH_USER ":" AUTH_PASS, false);
        return 0;
}

static int teardown_all(void **state)
{
        registry_proc_t *all[] = {&plain, &prefixed, &authed};
        for (size_t i = 0; i < RS_ARRAY_SIZE(all); i++)
                signal_stop(all[i]);
        for (size_t i = 0; i < RS_ARRAY_SIZE(all); i++)
                reap(all[i]);
        return 0;
}

/* ---------------------------------------------------------------- plain HTTP */

static size_t collect(char *p, size_t size, size_t n, void *userdata)
{
        rs_buf_append(userdata, p, size * n);
        return size * n;
}

/* A request of the test's own (no rs_registry); body NULL = GET. The answer
 * body, malloc'd; *code its status. */
static char *http(const char *url, const char *body, long *code)
{
        rs_buf_t b;
        rs_buf_init(&b);
        rs_buf_append(&b, "", 0);
        struct curl_slist *h = curl_slist_append(
            NULL, "Content-Type: application/vnd.schemaregistry.v1+json");
        CURL *c = curl_easy_init();
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        if (body)
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK)
                fail_msg("%s: %s", url, curl_easy_strerror(rc));
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, code);
        curl_easy_cleanup(c);
        curl_slist_free_all(h);
        return b.data;
}

static void set_mode(const registry_proc_t *p, const char *mode)
{
        char url[128], body[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/mode", p->ctl_port);
        snprintf(body, sizeof(body), "{\"mode\":\"%s\"}", mode);
        long code;
        free(http(url, body, &code));
        assert_int_equal(code, 200);
}

static json_t *fixture_stats(const registry_proc_t *p)
{
        char url[128];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/stats", p->ctl_port);
        long code;
        char *text = http(url, NULL, &code);
        assert_int_equal(code, 200);
        json_t *j = json_loads(text, 0, NULL);
        free(text);
        assert_non_null(j);
        return j;
}

/* A counter of GET /stats: stats[group][key], 0 when absent. */
static json_int_t stat_of(json_t *stats, const char *group, const char *key)
{
        return json_integer_value(json_object_get(json_object_get(stats, group), key));
}

/* The "message" the registry answers to a POST of schema to path. */
static char *registry_message(const registry_proc_t *p, const char *path,
                              const char *schema, long *code)
{
        char url[512];
        snprintf(url, sizeof(url), "%s%s", p->url, path);
        json_t *doc = json_pack("{s:s}", "schema", schema);
        char *body = json_dumps(doc, JSON_COMPACT);
        char *text = http(url, body, code);
        json_t *j = json_loads(text, 0, NULL);
        const char *msg = json_string_value(json_object_get(j, "message"));
        assert_non_null(msg);
        char *out = rs_strdup(msg);
        json_decref(j);
        json_decref(doc);
        free(body);
        free(text);
        return out;
}

/* ---------------------------------------------------------------- helpers */

static rs_registry_t *client(const char *url, const char *auth, int64_t timeout_ms)
{
        rs_registry_opts_t o = {.url = url, .basic_auth = auth, .timeout_ms = timeout_ms};
        char err[256];
        rs_registry_t *r = rs_registry_new(&o, err, sizeof(err));
        if (!r)
                fail_msg("rs_registry_new(%s): %s", url, err);
        return r;
}

static uint32_t must_register(rs_registry_t *r, const char *subject, const char *schema)
{
        char err[512];
        uint32_t id = UINT32_MAX;
        rs_reg_status_t st =
            rs_registry_register(r, subject, schema, &id, err, sizeof(err));
        if (st != RS_REG_OK)
                fail_msg("register %s: %s: %s", subject, rs_reg_status_name(st), err);
        assert_true(id <= INT32_MAX);
        return id;
}

static void assert_same_json(const char *a, const char *b)
{
        json_t *ja = json_loads(a, 0, NULL), *jb = json_loads(b, 0, NULL);
        assert_non_null(ja);
        assert_non_null(jb);
        if (!json_equal(ja, jb))
                fail_msg("%s\n  is not\n%s", a, b);
        json_decref(ja);
        json_decref(jb);
}

static bool starts_with(const char *s, const char *prefix)
{
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void assert_prefix(const char *s, const char *prefix)
{
        if (!starts_with(s, prefix))
                fail_msg("\"%s\" does not start with \"%s\"", s, prefix);
}

/* The stderr of fn(arg), the client's debug log included. */
static char *captured_stderr(void (*fn)(void *), void *arg)
{
        FILE *tmp = tmpfile();
        assert_non_null(tmp);
        fflush(stderr);
        int saved = dup(2);
        dup2(fileno(tmp), 2);
        rs_log_level_t level = rs_log_level;
        rs_log_set_level(RS_LOG_DEBUG);
        fn(arg);
        rs_log_set_level(level);
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        rewind(tmp);
        char *text = rs_read_stream(tmp, NULL);
        fclose(tmp);
        return text;
}

/* ---------------------------------------------------------------- tests */

static void test_new_validates_options(void **state)
{
        const char *bad[] = {NULL,
                             "",
                             "ftp://127.0.0.1/",
                             "127.0.0.1:8081",
                             "localhost",
                             "http://",
                             "http://a b/",
                             "http://127.0.0.1:1/x?y=1",
                             "http://127.0.0.1:1/#top",
                             "file:///etc/passwd",
                             "ftp://user:" AUTH_PASS "@127.0.0.1/"};
        char err[256];
        for (size_t i = 0; i < RS_ARRAY_SIZE(bad); i++) {
                rs_registry_opts_t o = {.url = bad[i], .timeout_ms = 1000};
                err[0] = '\0';
                rs_registry_t *r = rs_registry_new(&o, err, sizeof(err));
                if (r)
                        fail_msg("accepted %s", bad[i] ? bad[i] : "(null)");
                assert_true(strlen(err) > 0);
                assert_null(strstr(err, AUTH_PASS));
        }
        rs_registry_opts_t o = {.url = "http://127.0.0.1:1", .timeout_ms = 0};
        assert_null(rs_registry_new(&o, err, sizeof(err)));
        assert_non_null(strstr(err, "timeout"));

        const char *good[] = {"http://127.0.0.1:1", "HTTPS://registry.invalid/",
                              "http://[::1]:8081/apis/ccompat/v7//"};
        for (size_t i = 0; i < RS_ARRAY_SIZE(good); i++) {
                rs_registry_t *r = client(good[i], AUTH_USER ":" AUTH_PASS, 1000);
                rs_registry_stats_t s = rs_registry_stats(r); /* no request made */
                for (size_t k = 0; k < RS_REG__COUNT; k++)
                        assert_int_equal(s.requests[k], 0);
                assert_int_equal(s.wait_us, 0);
                rs_registry_destroy(r);
        }
}

static void test_status_names(void **state)
{
        assert_string_equal(rs_reg_status_name(RS_REG_OK), "ok");
        assert_string_equal(rs_reg_status_name(RS_REG_NOT_FOUND), "not_found");
        assert_string_equal(rs_reg_status_name(RS_REG_REJECTED), "rejected");
        assert_string_equal(rs_reg_status_name(RS_REG_UNAVAILABLE), "unavailable");
}

static void test_register_is_idempotent(void **state)
{
        rs_registry_t *r = client(plain.url, NULL, 5000);
        uint32_t id = must_register(r, "idem-value", REC_A);
        assert_int_equal(must_register(r, "idem-value", REC_A), id);
        /* The id belongs to the schema, not the subject. */
        assert_int_equal(must_register(r, "idem-other-value", REC_A), id);
        assert_int_not_equal(must_register(r, "idem-third-value", REC_OTHER), id);

        char *schema = NULL, type[16], err[256];
        bool refs = true;
        assert_int_equal(rs_registry_get_schema(r, id, &schema, type, sizeof(type), &refs,
                                                err, sizeof(err)),
                         RS_REG_OK);
        assert_same_json(schema, REC_A);
        assert_string_equal(type, "AVRO");
        assert_false(refs);
        assert_string_equal(err, "");
        free(schema);
        rs_registry_destroy(r);
}

static void test_unknown_id(void **state)
{
        rs_registry_t *r = client(plain.url, NULL, 5000);
        char *schema = (char *)"x", type[16], err[256];
        bool refs;
        assert_int_equal(rs_registry_get_schema(r, 987654, &schema, type, sizeof(type),
                                                &refs, err, sizeof(err)),
                         RS_REG_NOT_FOUND);
        assert_null(schema);
        assert_prefix(err, "HTTP 404 (40403): ");
        assert_true(strlen(err) > strlen("HTTP 404 (40403): "));
        rs_registry_destroy(r);
}

static void test_lookup(void **state)
{
        rs_registry_t *r = client(plain.url, NULL, 5000);
        uint32_t id = must_register(r, "look-value", REC_A), found = UINT32_MAX;
        char err[256];
        assert_int_equal(
            rs_registry_lookup(r, "look-value", REC_A, &found, err, sizeof(err)),
            RS_REG_OK);
        assert_int_equal(found, id);
        assert_int_equal(
            rs_registry_lookup(r, "look-missing-value", REC_A, &found, err, sizeof(err)),
            RS_REG_NOT_FOUND);
        assert_prefix(err, "HTTP 404 (40401): ");
        assert_int_equal(
            rs_registry_lookup(r, "look-value", REC_OTHER, &found, err, sizeof(err)),
            RS_REG_NOT_FOUND);
        assert_prefix(err, "HTTP 404 (40403): ");
        rs_registry_destroy(r);
}

static void test_subject_is_escaped(void **state)
{
        const char *subject = "odd subject/with?chars#&%-value";
        rs_registry_t *r = client(plain.url, NULL, 5000);
        uint32_t id = must_register(r, subject, REC_OTHER), found = UINT32_MAX;
        char err[256];
        assert_int_equal(
            rs_registry_lookup(r, subject, REC_OTHER, &found, err, sizeof(err)),
            RS_REG_OK);
        assert_int_equal(found, id);
        /* Not the same subject as its unescaped pieces. */
        assert_int_equal(
            rs_registry_lookup(r, "odd subject", REC_OTHER, &found, err, sizeof(err)),
            RS_REG_NOT_FOUND);
        rs_registry_destroy(r);
}

static void test_incompatible_is_rejected(void **state)
{
        rs_registry_t *r = client(plain.url, NULL, 5000);
        must_register(r, "compat-value", REC_A);
        long code;
        char *msg =
            registry_message(&plain, "/subjects/compat-value/versions", REC_A_B, &code);
        assert_int_equal(code, 409);
        char want[1024], err[1024];
        snprintf(want, sizeof(want), "HTTP 409: %s", msg);
        uint32_t id = UINT32_MAX;
        assert_int_equal(
            rs_registry_register(r, "compat-value", REC_A_B, &id, err, sizeof(err)),
            RS_REG_REJECTED);
        assert_string_equal(err, want);
        assert_int_equal(id, UINT32_MAX);
        free(msg);
        rs_registry_destroy(r);
}

static void test_invalid_schema_is_rejected(void **state)
{
        rs_registry_t *r = client(plain.url, NULL, 5000);
        const char *bad[] = {"{\"type\":\"nonsense\"}", "not JSON at all",
                             "{\"type\":\"record\",\"name\":\"R\"}"};
        char err[512];
        uint32_t id;
        for (size_t i = 0; i < RS_ARRAY_SIZE(bad); i++) {
                assert_int_equal(rs_registry_register(r, "invalid-value", bad[i], &id,
                                                      err, sizeof(err)),
                                 RS_REG_REJECTED);
                assert_prefix(err, "HTTP 422: ");
        }
        /* Not UTF-8: refused before any request. */
        assert_int_equal(rs_registry_register(r, "invalid-value", "{\"type\":\"\xff\"}",
                                              &id, err, sizeof(err)),
                         RS_REG_REJECTED);
        assert_non_null(strstr(err, "UTF-8"));
        rs_registry_stats_t s = rs_registry_stats(r);
        assert_int_equal(s.requests[RS_REG_REJECTED], RS_ARRAY_SIZE(bad));
        rs_registry_destroy(r);
}

static void test_prefix(void **state)
{
        char url[192];
        const char *tails[] = {"", "/", "//"};
        uint32_t first = UINT32_MAX;
        for (size_t i = 0; i < RS_ARRAY_SIZE(tails); i++) {
                snprintf(url, sizeof(url), "%s%s", prefixed.url, tails[i]);
                rs_registry_t *r = client(url, NULL, 5000);
                uint32_t id = must_register(r, "prefixed-value", REC_A);
                if (i == 0)
                        first = id;
                assert_int_equal(id, first);
                char *schema, err[256];
                assert_int_equal(rs_registry_get_schema(r, id, &schema, NULL, 0, NULL,
                                                        err, sizeof(err)),
                                 RS_REG_OK);
                assert_same_json(schema, REC_A);
                free(schema);
                rs_registry_destroy(r);
        }
        /* The root of that server is not the API. */
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", prefixed.port);
        rs_registry_t *r = client(url, NULL, 5000);
        char err[256];
        uint32_t id;
        assert_int_not_equal(
            rs_registry_register(r, "prefixed-value", REC_A, &id, err, sizeof(err)),
            RS_REG_OK);
        rs_registry_destroy(r);
}

typedef struct auth_case {
        const char *auth;
        rs_reg_status_t st;
        char err[512];
} auth_case_t;

static void register_with(void *arg)
{
        auth_case_t *c = arg;
        rs_registry_t *r = client(authed.url, c->auth, 5000);
        uint32_t id;
        c->st = rs_registry_register(r, "auth-value", REC_A, &id, c->err, sizeof(c->err));
        rs_registry_destroy(r);
}

static void test_basic_auth(void **state)
{
        auth_case_t ok = {.auth = AUTH_USER ":" AUTH_PASS};
        free(captured_stderr(register_with, &ok));
        assert_int_equal(ok.st, RS_REG_OK);

        auth_case_t refused[] = {{.auth = NULL},
                                 {.auth = ""},
                                 {.auth = AUTH_USER ":" BAD_PASS},
                                 {.auth = "nobody:" AUTH_PASS}};
        for (size_t i = 0; i < RS_ARRAY_SIZE(refused); i++) {
                char *log = captured_stderr(register_with, &refused[i]);
                assert_int_equal(refused[i].st, RS_REG_UNAVAILABLE);
                assert_prefix(refused[i].err, "HTTP 401");
                assert_non_null(strstr(log, "HTTP 401")); /* logged at debug */
                const char *secrets[] = {AUTH_PASS, BAD_PASS};
                for (size_t k = 0; k < RS_ARRAY_SIZE(secrets); k++) {
                        assert_null(strstr(refused[i].err, secrets[k]));
                        assert_null(strstr(log, secrets[k]));
                }
                free(log);
        }
}

static void get_known(rs_registry_t *r, uint32_t id, rs_reg_status_t want,
                      const char *err_prefix)
{
        char *schema, err[512];
        rs_reg_status_t st =
            rs_registry_get_schema(r, id, &schema, NULL, 0, NULL, err, sizeof(err));
        if (st != want)
                fail_msg("get_schema %u: %s (%s), not %s", id, rs_reg_status_name(st),
                         err, rs_reg_status_name(want));
        if (err_prefix)
                assert_prefix(err, err_prefix);
        free(schema);
}

static void test_faults(void **state)
{
        rs_registry_t *r = client(plain.url, NULL, 300);
        uint32_t id = must_register(r, "faults-value", REC_A);

        set_mode(&plain, "refuse");
        get_known(r, id, RS_REG_UNAVAILABLE, "GET /schemas/ids/");
        set_mode(&plain, "error500");
        get_known(r, id, RS_REG_UNAVAILABLE, "HTTP 500");
        set_mode(&plain, "hang");
        int64_t t0 = rs_monotonic_ms();
        get_known(r, id, RS_REG_UNAVAILABLE, "GET /schemas/ids/");
        int64_t took = rs_monotonic_ms() - t0;
        if (took < 250 || took > 1000)
                fail_msg("a hung request took %lld ms with a 300 ms timeout",
                         (long long)took);
        set_mode(&plain, "ok");
        get_known(r, id, RS_REG_OK, NULL);

        rs_registry_stats_t s = rs_registry_stats(r);
        assert_int_equal(s.requests[RS_REG_OK], 2); /* the register, the last get */
        assert_int_equal(s.requests[RS_REG_UNAVAILABLE], 3);
        rs_registry_destroy(r);
}

/* The registry in a mode the test changed: back to ok whatever happened. */
static int mode_ok(void **state)
{
        set_mode(&plain, "ok");
        return 0;
}

static void test_stats(void **state)
{
        rs_registry_t *r = client(plain.url, NULL, 5000);
        uint32_t id = must_register(r, "stats-value", REC_OTHER);
        must_register(r, "stats-compat-value", REC_A);
        char key[16];
        snprintf(key, sizeof(key), "%u", id);
        json_t *before = fixture_stats(&plain);

        get_known(r, id, RS_REG_OK, NULL);
        get_known(r, id, RS_REG_OK, NULL);
        get_known(r, 987655, RS_REG_NOT_FOUND, NULL);
        uint32_t ignored;
        char err[512];
        assert_int_equal(rs_registry_register(r, "stats-compat-value", REC_A_B, &ignored,
                                              err, sizeof(err)),
                         RS_REG_REJECTED);
        set_mode(&plain, "error500");
        get_known(r, id, RS_REG_UNAVAILABLE, NULL);
        set_mode(&plain, "ok");

        rs_registry_stats_t s = rs_registry_stats(r);
        assert_int_equal(s.requests[RS_REG_OK], 4);
        assert_int_equal(s.requests[RS_REG_NOT_FOUND], 1);
        assert_int_equal(s.requests[RS_REG_REJECTED], 1);
        assert_int_equal(s.requests[RS_REG_UNAVAILABLE], 1);
        assert_true(s.wait_us > 0);

        json_t *after = fixture_stats(&plain);
        const char *get = "GET /schemas/ids/{id}";
        assert_int_equal(
            stat_of(after, "requests", get) - stat_of(before, "requests", get), 4);
        assert_int_equal(
            stat_of(after, "schema_ids", key) - stat_of(before, "schema_ids", key), 3);
        json_decref(before);
        json_decref(after);
        rs_registry_destroy(r);
}

/* ---------------------------------------------------------------- TLS */

/* openssl req -x509 quietly: cert_dir/name.pem for CN=cn and its key
 * cert_dir/name.key (EC P-256), with the extra arguments (NULL-terminated). */
static void openssl_req(const char *name, const char *cn, const char *const *extra)
{
        char key[PATH_MAX + 32], pem[PATH_MAX + 32], subj[64];
        snprintf(subj, sizeof(subj), "/CN=%s", cn);
        const char *argv[32] = {"openssl",
                                "req",
                                "-x509",
                                "-newkey",
                                "ec",
                                "-pkeyopt",
                                "ec_paramgen_curve:prime256v1",
                                "-nodes",
                                "-days",
                                "2",
                                "-keyout",
                                cert_file(name, "key", key),
                                "-out",
                                cert_file(name, "pem", pem),
                                "-subj",
                                subj};
        size_t n = 16;
        while (*extra)
                argv[n++] = *extra++;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY);
                dup2(null, 1);
                dup2(null, 2);
                execvp("openssl", (char *const *)argv);
                _exit(127);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("openssl req for %s failed (status %d)", name, status);
}

/* A CA, a server certificate for 127.0.0.1 and a client certificate signed by
 * it, in a new cert_dir; then the registry with them (secure). */
static int setup_tls(void **state)
{
        make_temp_dir(cert_dir);
        char ca[PATH_MAX + 32], ca_key[PATH_MAX + 32];
        const char *ca_ext[] = {"-addext", "basicConstraints=critical,CA:TRUE", "-addext",
                                "keyUsage=critical,keyCertSign", NULL};
        openssl_req("ca", "refstream test CA", ca_ext);
        const char *server_ext[] = {"-CA",     cert_file("ca", "pem", ca),
                                    "-CAkey",  cert_file("ca", "key", ca_key),
                                    "-addext", "basicConstraints=CA:FALSE",
                                    "-addext", "subjectAltName=IP:127.0.0.1",
                                    NULL};
        openssl_req("server", "127.0.0.1", server_ext);
        server_ext[6] = NULL; /* the client's: the same without the subjectAltName */
        openssl_req("client", "refstream test client", server_ext);
        start(&secure, NULL, NULL, true);
        return 0;
}

static int teardown_tls(void **state)
{
        signal_stop(&secure);
        reap(&secure);
        char file[PATH_MAX + 32];
        for (size_t i = 0; i < RS_ARRAY_SIZE(cert_files); i++) {
                unlink(cert_file(cert_files[i], "pem", file));
                unlink(cert_file(cert_files[i], "key", file));
        }
        rmdir(cert_dir);
        return 0;
}

static rs_registry_t *tls_client(const char *ca_file, const char *cert_name)
{
        char cert[PATH_MAX + 32], key[PATH_MAX + 32], err[256];
        rs_registry_opts_t o = {
            .url = secure.url,
            .ca_file = ca_file,
            .cert_file = cert_name ? cert_file(cert_name, "pem", cert) : NULL,
            .key_file = cert_name ? cert_file(cert_name, "key", key) : NULL,
            .timeout_ms = 2000};
        rs_registry_t *r = rs_registry_new(&o, err, sizeof(err));
        if (!r)
                fail_msg("rs_registry_new(%s): %s", secure.url, err);
        return r;
}

static void test_tls(void **state)
{
        char ca[PATH_MAX + 32], *schema, err[512];
        cert_file("ca", "pem", ca);
        assert_prefix(secure.url, "https://127.0.0.1:");

        rs_registry_t *r = tls_client(ca, "client");
        uint32_t id = must_register(r, "tls-value", REC_A);
        assert_int_equal(
            rs_registry_get_schema(r, id, &schema, NULL, 0, NULL, err, sizeof(err)),
            RS_REG_OK);
        assert_same_json(schema, REC_A);
        free(schema);
        rs_registry_destroy(r);

        /* The system's CAs do not know the test CA. */
        r = tls_client(NULL, "client");
        assert_int_equal(
            rs_registry_get_schema(r, id, &schema, NULL, 0, NULL, err, sizeof(err)),
            RS_REG_UNAVAILABLE);
        assert_null(schema);
        assert_prefix(err, "GET /schemas/ids/");
        if (!strstr(err, "certificate"))
                fail_msg("no word of the certificate in \"%s\"", err);
        rs_registry_destroy(r);

        /* No client certificate: refused by the registry. */
        r = tls_client(ca, NULL);
        assert_int_equal(
            rs_registry_get_schema(r, id, &schema, NULL, 0, NULL, err, sizeof(err)),
            RS_REG_UNAVAILABLE);
        assert_null(schema);
        rs_registry_destroy(r);

        /* Only the first client's requests reached the API. */
        json_t *stats = fixture_stats(&secure);
        assert_int_equal(stat_of(stats, "requests", "GET /schemas/ids/{id}"), 1);
        json_decref(stats);
}

/* ------------------------------------------------- answers no registry gives */

/* A one-shot HTTP server on a thread: reads one request, sends one answer
 * (head: status line and headers, without Content-Length), closes. */
typedef struct canned {
        int listener, port;
        const char *head, *body;
        size_t len;
        pthread_t thread;
} canned_t;

static void send_all(int fd, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL); /* the client may hang up */
                if (k <= 0)
                        return;
                p += k;
                n -= (size_t)k;
        }
}

/* Reads the request head and its Content-Length of body: closing a socket
 * with unread data resets the connection, answer included. */
static void read_request(int fd)
{
        char buf[16384];
        size_t n = 0;
        char *end = NULL;
        while (!end && n < sizeof(buf) - 1) {
                ssize_t k = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
                if (k <= 0)
                        return;
                n += (size_t)k;
                buf[n] = '\0';
                end = strstr(buf, "\r\n\r\n");
        }
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        size_t want = cl ? strtoul(cl + 17, NULL, 10) : 0;
        for (size_t have = n - (size_t)(end + 4 - buf); have < want;) {
                ssize_t k = recv(fd, buf, sizeof(buf), 0);
                if (k <= 0)
                        return;
                have += (size_t)k;
        }
}

static void *serve_one(void *arg)
{
        canned_t *c = arg;
        int fd = accept(c->listener, NULL, NULL);
        if (fd < 0)
                return NULL;
        read_request(fd);
        char head[512];
        int n = snprintf(head, sizeof(head),
                         "%s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                         c->head, c->len);
        send_all(fd, head, (size_t)n);
        send_all(fd, c->body, c->len);
        close(fd);
        return NULL;
}

static void canned_open(canned_t *c)
{
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        c->listener = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(c->listener >= 0);
        assert_int_equal(bind(c->listener, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(listen(c->listener, 4), 0);
        assert_int_equal(getsockname(c->listener, (struct sockaddr *)&a, &len), 0);
        c->port = ntohs(a.sin_port);
}

static void canned_serve(canned_t *c, const char *head, const char *body, size_t len)
{
        c->head = head;
        c->body = body;
        c->len = len;
        assert_int_equal(pthread_create(&c->thread, NULL, serve_one, c), 0);
}

static const struct {
        const char *head, *body;
        bool post; /* register, else get_schema */
        rs_reg_status_t st;
        const char *err; /* its start */
} answers[] = {
    {"HTTP/1.1 200 OK", "not JSON", false, RS_REG_UNAVAILABLE,
     "HTTP 200 but the answer is not JSON"},
    {"HTTP/1.1 200 OK", "[1]", false, RS_REG_UNAVAILABLE,
     "HTTP 200 but the answer is not a JSON object"},
    {"HTTP/1.1 200 OK", "", false, RS_REG_UNAVAILABLE, "HTTP 200 but"},
    {"HTTP/1.1 200 OK", "{\"schema\":5}", false, RS_REG_UNAVAILABLE,
     "HTTP 200 but the answer has no \"schema\""},
    {"HTTP/1.1 200 OK", "{\"schema\":\"{}\",\"schemaType\":7}", false, RS_REG_UNAVAILABLE,
     "HTTP 200 but"},
    {"HTTP/1.1 200 OK", "{\"id\":2147483648}", true, RS_REG_UNAVAILABLE,
     "HTTP 200 but the answer has no \"id\""},
    {"HTTP/1.1 200 OK", "{\"id\":-1}", true, RS_REG_UNAVAILABLE, "HTTP 200 but"},
    {"HTTP/1.1 200 OK", "{\"id\":\"7\"}", true, RS_REG_UNAVAILABLE, "HTTP 200 but"},
    {"HTTP/1.1 200 OK", "{\"id\":2147483647}", true, RS_REG_OK, ""},
    {"HTTP/1.1 200 OK", "{\"id\":0}", true, RS_REG_OK, ""},
    {"HTTP/1.1 401 Unauthorized", "", false, RS_REG_UNAVAILABLE,
     "HTTP 401: (no message)"},
    {"HTTP/1.1 403 Forbidden", "{\"error_code\":40301,\"message\":\"No access\"}", true,
     RS_REG_UNAVAILABLE, "HTTP 403: No access"},
    {"HTTP/1.1 429 Too Many Requests", "{}", false, RS_REG_UNAVAILABLE, "HTTP 429: {}"},
    {"HTTP/1.1 502 Bad Gateway", "<html>\r\n<body>proxy</body>", false,
     RS_REG_UNAVAILABLE, "HTTP 502: <html>  <body>proxy</body>"},
    /* Not followed: a redirect is not the registry's answer. */
    {"HTTP/1.1 301 Moved Permanently\r\nLocation: http://127.0.0.1:1/", "", false,
     RS_REG_UNAVAILABLE, "HTTP 301"},
    /* A 404 without a registry error code: not a registry's answer. */
    {"HTTP/1.1 404 Not Found", "no such page", false, RS_REG_UNAVAILABLE,
     "HTTP 404: no such page (no registry error code"},
    {"HTTP/1.1 404 Not Found", "{\"error_code\":404,\"message\":\"HTTP 404 Not Found\"}",
     false, RS_REG_UNAVAILABLE,
     "HTTP 404 (404): HTTP 404 Not Found (no registry error code"},
    {"HTTP/1.1 422 Unprocessable Entity", "{\"error_code\":42201,\"message\":\"Bad\"}",
     true, RS_REG_REJECTED, "HTTP 422: Bad"},
};

static rs_reg_status_t call_canned(rs_registry_t *r, canned_t *c, const char *head,
                                   const char *body, size_t len, bool post, char *err,
                                   size_t err_size)
{
        canned_serve(c, head, body, len);
        rs_reg_status_t st;
        if (post) {
                uint32_t id;
                st = rs_registry_register(r, "canned-value", REC_A, &id, err, err_size);
        } else {
                char *schema;
                st = rs_registry_get_schema(r, 7, &schema, NULL, 0, NULL, err, err_size);
                free(schema);
        }
        pthread_join(c->thread, NULL);
        return st;
}

static void test_unusable_answers(void **state)
{
        canned_t c;
        canned_open(&c);
        char url[64], err[512];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d", c.port);
        rs_registry_t *r = client(url, NULL, 5000);
        for (size_t i = 0; i < RS_ARRAY_SIZE(answers); i++) {
                rs_reg_status_t st = call_canned(r, &c, answers[i].head, answers[i].body,
                                                 strlen(answers[i].body), answers[i].post,
                                                 err, sizeof(err));
                if (st != answers[i].st || !starts_with(err, answers[i].err))
                        fail_msg("%s %s: %s \"%s\"", answers[i].head, answers[i].body,
                                 rs_reg_status_name(st), err);
        }

        /* An error body is quoted up to 200 bytes, not cutting a character. */
        char body[400];
        memset(body, 'x', 199);
        strcpy(body + 199, "\xc3\xa9 and more");
        assert_int_equal(call_canned(r, &c, "HTTP/1.1 500 Oops", body, strlen(body),
                                     false, err, sizeof(err)),
                         RS_REG_UNAVAILABLE);
        assert_int_equal(strlen(err), strlen("HTTP 500: ") + 199);

        /* More than 4 MiB: cut off. */
        size_t big = ((size_t)4 << 20) + 1;
        char *huge = rs_malloc(big);
        memset(huge, ' ', big);
        huge[0] = '{';
        huge[big - 1] = '}';
        assert_int_equal(
            call_canned(r, &c, "HTTP/1.1 200 OK", huge, big, false, err, sizeof(err)),
            RS_REG_UNAVAILABLE);
        assert_string_equal(err, "GET /schemas/ids/7: answer larger than 4 MiB");
        /* Exactly 4 MiB is an answer. */
        memcpy(huge, "{\"schema\":\"{}\"", 14);
        huge[big - 2] = '}';
        assert_int_equal(
            call_canned(r, &c, "HTTP/1.1 200 OK", huge, big - 1, false, err, sizeof(err)),
            RS_REG_OK);
        free(huge);

        rs_registry_stats_t s = rs_registry_stats(r);
        uint64_t total = 0;
        for (size_t k = 0; k < RS_REG__COUNT; k++)
                total += s.requests[k];
        assert_int_equal(total, RS_ARRAY_SIZE(answers) + 3);
        rs_registry_destroy(r);
        close(c.listener);
}

static void test_other_schema_types(void **state)
{
        canned_t c;
        canned_open(&c);
        char url[64], err[256], type[8];
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/", c.port);
        rs_registry_t *r = client(url, NULL, 5000);
        const char *body = "{\"schema\":\"syntax = \\\"proto3\\\";\","
                           "\"schemaType\":\"PROTOBUF\","
                           "\"references\":[{\"name\":\"a.proto\",\"subject\":\"a\","
                           "\"version\":1}]}";
        canned_serve(&c, "HTTP/1.1 200 OK", body, strlen(body));
        char *schema;
        bool refs = false;
        assert_int_equal(rs_registry_get_schema(r, 9, &schema, type, sizeof(type), &refs,
                                                err, sizeof(err)),
                         RS_REG_OK);
        pthread_join(c.thread, NULL);
        assert_string_equal(schema, "syntax = \"proto3\";");
        assert_string_equal(type, "PROTOBU"); /* cut to the buffer */
        assert_true(refs);
        free(schema);
        rs_registry_destroy(r);
        close(c.listener);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_new_validates_options),
            cmocka_unit_test(test_status_names),
            cmocka_unit_test(test_register_is_idempotent),
            cmocka_unit_test(test_unknown_id),
            cmocka_unit_test(test_lookup),
            cmocka_unit_test(test_subject_is_escaped),
            cmocka_unit_test(test_incompatible_is_rejected),
            cmocka_unit_test(test_invalid_schema_is_rejected),
            cmocka_unit_test(test_prefix),
            cmocka_unit_test(test_basic_auth),
            cmocka_unit_test_teardown(test_faults, mode_ok),
            cmocka_unit_test_teardown(test_stats, mode_ok),
            cmocka_unit_test_setup_teardown(test_tls, setup_tls, teardown_tls),
            cmocka_unit_test(test_unusable_answers),
            cmocka_unit_test(test_other_schema_types),
        };
        return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
