/* The Schema Registry client of rs_registry.h over one libcurl easy handle. */
#include "rs_registry.h"
#include "rs_log.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A schema is kilobytes: an answer this large is not the registry talking. */
#define MAX_ANSWER         ((size_t)4 << 20)
#define MAX_ANSWER_TEXT    "4 MiB"
#define CONNECT_TIMEOUT_MS 5000L
#define BODY_IN_ERROR      200 /* bytes of a non-JSON error answer quoted */

#define ACCEPT                                                                           \
        "Accept: application/vnd.schemaregistry.v1+json, "                               \
        "application/vnd.schemaregistry+json; q=0.9, application/json; q=0.5"
#define CONTENT_TYPE "Content-Type: application/vnd.schemaregistry.v1+json"

struct rs_registry {
        CURL *curl;
        char *base; /* the URL without trailing slashes */
        struct curl_slist *get_headers, *post_headers;
        rs_buf_t answer;                /* the body of the answer being read */
        bool too_large;                 /* it passed MAX_ANSWER: the read was cut */
        char curl_err[CURL_ERROR_SIZE]; /* CURLOPT_ERRORBUFFER */
        /* Counted by the owner, read by the metrics thread. */
        _Atomic uint64_t requests[RS_REG__COUNT];
        _Atomic uint64_t wait_us;
};

/* One request: what its log line and errstr say. */
typedef struct call {
        const char *method;
        char *path; /* malloc'd; a path never holds credentials */
        char err[1024];
        bool err_names_call; /* err already names method and path */
} call_t;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc;

/* curl_global_init is not thread-safe in every libcurl build, and clients are
 * created by several threads. It is never undone: the process ends first. */
static void global_init(void)
{
        global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Allocation failure aborts in this program (rs_util.h), libcurl's too. */
static void *need(void *p)
{
        if (!p) {
                fputs("refstream: out of memory in libcurl\n", stderr);
                abort();
        }
        return p;
}

static int64_t now_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *rs_reg_status_name(rs_reg_status_t st)
{
        switch (st) {
        case RS_REG_OK:
                return "ok";
        case RS_REG_NOT_FOUND:
                return "not_found";
        case RS_REG_REJECTED:
                return "rejected";
        case RS_REG_UNAVAILABLE:
                return "unavailable";
        default:
                return "unknown";
        }
}

/* ---------------------------------------------------------------- setup */

/* The URL is never quoted back: it may carry user:password. A query or
 * fragment is refused because request paths are appended to the URL. */
static bool check_url(const char *url, char *errstr, size_t errstr_size)
{
        if (!url || !*url)
                return rs_fail(errstr, errstr_size, "no registry URL");
        if (strncasecmp(url, "http://", 7) != 0 && strncasecmp(url, "https://", 8) != 0)
                return rs_fail(errstr, errstr_size,
                               "the registry URL is not http:// or https://");
        CURLU *u = need(curl_url());
        char *query = NULL, *fragment = NULL;
        CURLUcode rc = curl_url_set(u, CURLUPART_URL, url, 0);
        if (rc == CURLUE_OK) {
                curl_url_get(u, CURLUPART_QUERY, &query, 0);
                curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0);
        }
        bool tail = query || fragment;
        curl_free(query);
        curl_free(fragment);
        curl_url_cleanup(u);
        if (rc != CURLUE_OK)
                return rs_fail(errstr, errstr_size, "the registry URL does not parse: %s",
                               curl_url_strerror(rc));
        if (tail)
                return rs_fail(errstr, errstr_size,
                               "the registry URL has a query or fragment");
        return true;
}

/* Accept on every request; Content-Type on POSTs, and an empty Expect:
 * libcurl sends "Expect: 100-continue" before large bodies (over 1 MiB in
 * 7.88, over 1 KiB in older releases) and then waits a second for a 100 that
 * a registry or proxy may never send. */
static struct curl_slist *header_list(bool post)
{
        const char *lines[] = {ACCEPT, CONTENT_TYPE, "Expect:"};
        struct curl_slist *l = NULL;
        for (size_t i = 0; i < (post ? RS_ARRAY_SIZE(lines) : 1); i++)
                l = need(curl_slist_append(l, lines[i]));
        return l;
}

static size_t collect(char *p, size_t size, size_t n, void *userdata)
{
        rs_registry_t *r = userdata;
        size_t len = size * n;
        if (len > MAX_ANSWER - r->answer.len) {
                r->too_large = true;
                return 0; /* fails the transfer with CURLE_WRITE_ERROR */
        }
        rs_buf_append(&r->answer, p, len);
        return len;
}

static bool is_set(const char *s)
{
        return s && *s;
}

/* The options that hold for every request; the first failure is reported. */
static bool configure(rs_registry_t *r, const rs_registry_opts_t *o, char *errstr,
                      size_t errstr_size)
{
        CURL *c = r->curl;
        long timeout = (long)o->timeout_ms;
        CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                    \
        do {                                                                             \
                if (rc == CURLE_OK)                                                      \
                        rc = curl_easy_setopt(c, opt, val);                              \
        } while (0)
        SET(CURLOPT_NOSIGNAL, 1L); /* no SIGALRM for timeouts in a threaded program */
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is an answer we cannot use */
        SET(CURLOPT_TIMEOUT_MS, timeout);
        SET(CURLOPT_CONNECTTIMEOUT_MS, RS_MIN(timeout, CONNECT_TIMEOUT_MS));
        SET(CURLOPT_ERRORBUFFER, r->curl_err);
        SET(CURLOPT_WRITEFUNCTION, collect);
        SET(CURLOPT_WRITEDATA, r);
        if (is_set(o->ca_file))
                SET(CURLOPT_CAINFO, o->ca_file);
        if (is_set(o->cert_file))
                SET(CURLOPT_SSLCERT, o->cert_file);
        if (is_set(o->key_file))
                SET(CURLOPT_SSLKEY, o->key_file);
        if (is_set(o->basic_auth)) {
                SET(CURLOPT_USERPWD, o->basic_auth);
                SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        }
#undef SET
        if (rc != CURLE_OK)
                return rs_fail(errstr, errstr_size, "cannot configure libcurl: %s",
                               curl_easy_strerror(rc));
        return true;
}

static char *trimmed_base(const char *url)
{
        size_t n = strlen(url);
        while (n > 0 && url[n - 1] == '/')
                n--;
        return rs_strndup(url, n);
}

rs_registry_t *rs_registry_new(const rs_registry_opts_t *opts, char *errstr,
                               size_t errstr_size)
{
        pthread_once(&global_once, global_init);
        if (global_rc != CURLE_OK) {
                rs_fail(errstr, errstr_size, "cannot initialise libcurl: %s",
                        curl_easy_strerror(global_rc));
                return NULL;
        }
        if (!check_url(opts->url, errstr, errstr_size))
                return NULL;
        if (opts->timeout_ms <= 0) { /* libcurl's 0 would mean: wait forever */
                rs_fail(errstr, errstr_size, "the registry timeout must be positive");
                return NULL;
        }
        rs_registry_t *r = rs_calloc(1, sizeof(*r));
        r->base = trimmed_base(opts->url);
        rs_buf_init(&r->answer);
        r->get_headers = header_list(false);
        r->post_headers = header_list(true);
        r->curl = need(curl_easy_init());
        if (!configure(r, opts, errstr, errstr_size)) {
                rs_registry_destroy(r);
                return NULL;
        }
        return r;
}

void rs_registry_destroy(rs_registry_t *r)
{
        if (!r)
                return;
        curl_easy_cleanup(r->curl);
        curl_slist_free_all(r->get_headers);
        curl_slist_free_all(r->post_headers);
        rs_buf_free(&r->answer);
        free(r->base);
        free(r);
}

rs_registry_stats_t rs_registry_stats(const rs_registry_t *r)
{
        rs_registry_stats_t s;
        for (size_t i = 0; i < RS_REG__COUNT; i++)
                s.requests[i] =
                    atomic_load_explicit(&r->requests[i], memory_order_relaxed);
        s.wait_us = atomic_load_explicit(&r->wait_us, memory_order_relaxed);
        return s;
}

/* ---------------------------------------------------------------- one request */

/* At most max bytes of s, fit for one log line: control bytes become spaces
 * and the cut never splits a UTF-8 character. */
static char *printable(const char *s, size_t max)
{
        char *out = rs_strndup(s, rs_utf8_prefix(s, max));
        for (char *p = out; *p; p++)
                if ((unsigned char)*p < 0x20 || *p == 0x7f)
                        *p = ' ';
        return out;
}

static rs_reg_status_t transport_error(rs_registry_t *r, CURLcode rc, call_t *c)
{
        const char *why = r->too_large     ? "answer larger than " MAX_ANSWER_TEXT
                          : r->curl_err[0] ? r->curl_err
                                           : curl_easy_strerror(rc);
        snprintf(c->err, sizeof(c->err), "%s %s: %s", c->method, c->path, why);
        c->err_names_call = true;
        return RS_REG_UNAVAILABLE;
}

/* The registry's "message", else the start of the body. */
static char *error_text(json_t *j, const char *body)
{
        const char *msg = json_string_value(json_object_get(j, "message"));
        char *text = msg ? printable(msg, SIZE_MAX) : printable(body, BODY_IN_ERROR);
        if (*text)
                return text;
        free(text);
        return rs_strdup("(no message)");
}

/* "HTTP 404 (40403): Schema 7 not found". On a 404 the registry's error code
 * tells a missing subject (40401) from a missing schema (40403). */
static rs_reg_status_t http_error(rs_registry_t *r, long code, call_t *c)
{
        const char *body = r->answer.data ? r->answer.data : "";
        json_t *j = json_loadb(body, r->answer.len, 0, NULL);
        json_t *ec = json_object_get(j, "error_code");
        char *text = error_text(j, body);
        if (code == 404 && json_is_integer(ec))
                snprintf(c->err, sizeof(c->err),
                         "HTTP %ld (%" JSON_INTEGER_FORMAT "): %s", code,
                         json_integer_value(ec), text);
        else
                snprintf(c->err, sizeof(c->err), "HTTP %ld: %s", code, text);
        /* A 404 is the registry saying "no such id, subject or schema" only
         * with one of its 404xx error codes; without one, the URL does not
         * lead to a registry's API (a wrong base URL, a proxy's page): that
         * is an outage to fix, not bad data. */
        bool registry_404 = json_is_integer(ec) && json_integer_value(ec) >= 40400 &&
                            json_integer_value(ec) <= 40499;
        if (code == 404 && !registry_404) {
                size_t n = strlen(c->err);
                snprintf(c->err + n, sizeof(c->err) - n,
                         " (no registry error code: is the URL the registry's API?)");
        }
        free(text);
        json_decref(j);
        if (code == 404)
                return registry_404 ? RS_REG_NOT_FOUND : RS_REG_UNAVAILABLE;
        return code == 409 || code == 422 ? RS_REG_REJECTED : RS_REG_UNAVAILABLE;
}

static rs_reg_status_t unreadable(call_t *c, const char *what)
{
        snprintf(c->err, sizeof(c->err), "HTTP 200 but %s", what);
        return RS_REG_UNAVAILABLE;
}

static rs_reg_status_t parse_answer(rs_registry_t *r, call_t *c, json_t **json)
{
        json_t *j =
            json_loadb(r->answer.data ? r->answer.data : "", r->answer.len, 0, NULL);
        if (!json_is_object(j)) {
                json_decref(j);
                return unreadable(c, j ? "the answer is not a JSON object"
                                       : "the answer is not JSON");
        }
        *json = j;
        return RS_REG_OK;
}

static void set_request(rs_registry_t *r, const char *url, const char *body)
{
        curl_easy_setopt(r->curl, CURLOPT_URL, url);
        if (body) {
                curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
                curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->post_headers);
        } else {
                curl_easy_setopt(r->curl, CURLOPT_HTTPGET, 1L);
                curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, r->get_headers);
        }
}

/* GET when body is NULL, else a POST of body. RS_REG_OK: a 200 with a JSON
 * object, *json, for the caller to read. */
static rs_reg_status_t perform(rs_registry_t *r, call_t *c, const char *body,
                               json_t **json)
{
        *json = NULL;
        rs_buf_reset(&r->answer);
        r->too_large = false;
        r->curl_err[0] = '\0';
        char *url = rs_malloc(strlen(r->base) + strlen(c->path) + 1);
        strcpy(stpcpy(url, r->base), c->path);
        set_request(r, url, body);
        int64_t t0 = now_us();
        CURLcode rc = curl_easy_perform(r->curl);
        atomic_fetch_add_explicit(&r->wait_us, (uint64_t)(now_us() - t0),
                                  memory_order_relaxed);
        free(url);
        if (rc != CURLE_OK)
                return transport_error(r, rc, c);
        long code = 0;
        curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &code);
        if (code != 200)
                return http_error(r, code, c);
        return parse_answer(r, c, json);
}

/* Counts and logs the outcome, hands errstr over, frees the call. */
static rs_reg_status_t finish(rs_registry_t *r, call_t *c, rs_reg_status_t st,
                              char *errstr, size_t errstr_size)
{
        atomic_fetch_add_explicit(&r->requests[st], 1, memory_order_relaxed);
        if (st != RS_REG_OK && c->err_names_call)
                rs_debug("registry", "%s (%s)", c->err, rs_reg_status_name(st));
        else if (st != RS_REG_OK)
                rs_debug("registry", "%s %s: %s (%s)", c->method, c->path, c->err,
                         rs_reg_status_name(st));
        if (errstr)
                rs_strlcpy(errstr, st == RS_REG_OK ? "" : c->err, errstr_size);
        free(c->path);
        return st;
}

/* ---------------------------------------------------------------- the calls */

static rs_reg_status_t read_schema(call_t *c, json_t *j, char **schema_json,
                                   char *schema_type, size_t schema_type_size,
                                   bool *has_references)
{
        const char *schema = json_string_value(json_object_get(j, "schema"));
        json_t *type = json_object_get(j, "schemaType");
        if (!schema)
                return unreadable(c, "the answer has no \"schema\" string");
        if (type && !json_is_string(type) && !json_is_null(type))
                return unreadable(c, "the answer's \"schemaType\" is not a string");
        json_t *refs = json_object_get(j, "references");
        *schema_json = rs_strdup(schema);
        if (schema_type)
                rs_strlcpy(schema_type,
                           json_is_string(type) ? json_string_value(type) : "AVRO",
                           schema_type_size);
        if (has_references)
                *has_references = json_is_array(refs) && json_array_size(refs) > 0;
        return RS_REG_OK;
}

rs_reg_status_t rs_registry_get_schema(rs_registry_t *r, uint32_t id, char **schema_json,
                                       char *schema_type, size_t schema_type_size,
                                       bool *has_references, char *errstr,
                                       size_t errstr_size)
{
        *schema_json = NULL;
        if (schema_type)
                rs_strlcpy(schema_type, "", schema_type_size);
        if (has_references)
                *has_references = false;
        call_t c = {.method = "GET", .path = rs_malloc(32)};
        snprintf(c.path, 32, "/schemas/ids/%" PRIu32, id);
        json_t *j;
        rs_reg_status_t st = perform(r, &c, NULL, &j);
        if (st == RS_REG_OK)
                st = read_schema(&c, j, schema_json, schema_type, schema_type_size,
                                 has_references);
        json_decref(j);
        return finish(r, &c, st, errstr, errstr_size);
}

static rs_reg_status_t read_id(call_t *c, json_t *j, uint32_t *id)
{
        json_t *v = json_object_get(j, "id");
        json_int_t n = json_integer_value(v);
        if (!json_is_integer(v) || n < 0 || n > INT32_MAX)
                return unreadable(c, "the answer has no \"id\" in 0..2147483647");
        *id = (uint32_t)n;
        return RS_REG_OK;
}

static char *subject_path(rs_registry_t *r, const char *subject, const char *tail)
{
        char *esc = need(curl_easy_escape(r->curl, subject, 0));
        char *path = rs_malloc(strlen("/subjects/") + strlen(esc) + strlen(tail) + 1);
        strcpy(stpcpy(stpcpy(path, "/subjects/"), esc), tail);
        curl_free(esc);
        return path;
}

/* POST {"schema": schema_json} to /subjects/{subject}{tail}; *id from the
 * answer. Text jansson cannot carry (not UTF-8) is refused without a request. */
static rs_reg_status_t post_schema(rs_registry_t *r, const char *subject,
                                   const char *tail, const char *schema_json,
                                   uint32_t *id, char *errstr, size_t errstr_size)
{
        json_t *doc = json_pack("{s:s}", "schema", schema_json);
        if (!doc) {
                if (errstr)
                        rs_strlcpy(errstr, "the schema text is not UTF-8", errstr_size);
                return RS_REG_REJECTED;
        }
        char *body = need(json_dumps(doc, JSON_COMPACT));
        json_decref(doc);
        call_t c = {.method = "POST", .path = subject_path(r, subject, tail)};
        json_t *j;
        rs_reg_status_t st = perform(r, &c, body, &j);
        if (st == RS_REG_OK)
                st = read_id(&c, j, id);
        json_decref(j);
        free(body);
        return finish(r, &c, st, errstr, errstr_size);
}

rs_reg_status_t rs_registry_register(rs_registry_t *r, const char *subject,
                                     const char *schema_json, uint32_t *id, char *errstr,
                                     size_t errstr_size)
{
        return post_schema(r, subject, "/versions", schema_json, id, errstr, errstr_size);
}

rs_reg_status_t rs_registry_lookup(rs_registry_t *r, const char *subject,
                                   const char *schema_json, uint32_t *id, char *errstr,
                                   size_t errstr_size)
{
        return post_schema(r, subject, "", schema_json, id, errstr, errstr_size);
}
