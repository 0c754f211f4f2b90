#include "rs_config.h"
#include "rs_addr.h"
#include "rs_log.h"

#include <ctype.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define OFF(f) offsetof(rs_config_t, f)
#define STR(env, flag, def, field, doc)                                                  \
        {                                                                                \
                env, flag, RS_CT_STRING, def, 0, 0, NULL, RS_SECRET_NONE, OFF(field),    \
                    doc                                                                  \
        }
#define SECRET(env, flag, def, field, how, doc)                                          \
        {                                                                                \
                env, flag, RS_CT_STRING, def, 0, 0, NULL, how, OFF(field), doc           \
        }
#define INT(env, flag, def, min, max, field, doc)                                        \
        {                                                                                \
                env, flag, RS_CT_INT, def, min, max, NULL, RS_SECRET_NONE, OFF(field),   \
                    doc                                                                  \
        }
#define CHOICE(env, flag, def, choices, field, doc)                                      \
        {                                                                                \
                env, flag, RS_CT_CHOICE, def, 0, 0, choices, RS_SECRET_NONE, OFF(field), \
                    doc                                                                  \
        }

const rs_config_def_t rs_config_defs[] = {
    STR("REFSTREAM_KAFKA_BROKERS", "kafka-brokers", "localhost:9092", kafka_brokers,
        "Kafka bootstrap servers (host:port[,host:port...])."),
    STR("REFSTREAM_GROUP_ID", "group-id", "refstream", group_id,
        "Kafka consumer group; instances with the same group share the partitions."),
    SECRET("REFSTREAM_DATABASE_URL", "database-url",
           "postgresql://localhost:5432/refstream", database_url, RS_SECRET_URL,
           "Postgres connection string or URI (libpq syntax)."),
    SECRET("REFSTREAM_REDIS_URL", "redis-url", "redis://localhost:6379/0", redis_url,
           RS_SECRET_URL,
           "Redis for the code cache, redis://[:password@]host:port/db; empty disables "
           "the cache."),
    STR("REFSTREAM_TOPIC_SIGNUPS", "topic-signups", "signups", topic_signups,
        "Input topic of SignupEvent records."),
    STR("REFSTREAM_TOPIC_PAYMENTS", "topic-payments", "payments", topic_payments,
        "Input topic of PaymentEvent records."),
    STR("REFSTREAM_TOPIC_CREDITED", "topic-credited", "referral-credited", topic_credited,
        "Output topic of ReferralCredited records."),
    STR("REFSTREAM_TOPIC_REVERSED", "topic-reversed", "referral-reversed", topic_reversed,
        "Output topic of ReferralCreditReversed records."),
    STR("REFSTREAM_TOPIC_DLQ", "topic-dlq", "refstream-dlq", topic_dlq,
        "Dead-letter topic: malformed input records, unchanged, with error headers."),
    STR("REFSTREAM_HTTP_ADDR", "http-addr", ":8080", http_addr,
        "Address of /metrics, /healthz and /readyz (host:port, :port; port 0 = any free "
        "port); empty disables."),
    CHOICE("REFSTREAM_LOG_LEVEL", "log-level", "info", "debug|info|warn|error", log_level,
           "Log level."),
    CHOICE("REFSTREAM_LOG_FORMAT", "log-format", "text", "text|json", log_format,
           "Log format on stderr: text, or one JSON object per line."),
    INT("REFSTREAM_BATCH_SIZE", "batch-size", "2000", 1, 100000, batch_size,
        "Most input records processed in one batch."),
    INT("REFSTREAM_BATCH_LINGER_MS", "batch-linger-ms", "10", 0, 60000, batch_linger_ms,
        "Longest wait for a batch to fill before it is processed."),
    INT("REFSTREAM_BATCH_PARTS", "batch-parts", "2", 1, 8, batch_parts,
        "Transactions a batch may run as at once, each on a Postgres connection of its "
        "own: a batch with 500 records or more that may make referrals or credits, in "
        "groups that share no user and no code. 1: one transaction per batch."),
    INT("REFSTREAM_CACHE_TTL_MS", "cache-ttl-ms", "600000", 1000, 86400000, cache_ttl_ms,
        "Lifetime of a cached referral code in Redis."),
    INT("REFSTREAM_CACHE_NEGATIVE_TTL_MS", "cache-negative-ttl-ms", "5000", 0, 3600000,
        cache_negative_ttl_ms,
        "Lifetime of a cached 'no such code' answer in Redis; 0 disables negative "
        "caching."),
    INT("REFSTREAM_REDIS_TIMEOUT_MS", "redis-timeout-ms", "250", 10, 60000,
        redis_timeout_ms,
        "Connect and command timeout for Redis; on timeout lookups go to Postgres."),
    INT("REFSTREAM_PG_RETRY_MAX_MS", "pg-retry-max-ms", "30000", 100, 600000,
        pg_retry_max_ms, "Cap of the exponential backoff while Postgres is unavailable."),
    INT("REFSTREAM_PG_STATEMENT_TIMEOUT_MS", "pg-statement-timeout-ms", "30000", 100,
        3600000, pg_statement_timeout_ms,
        "statement_timeout and lock_timeout of refstream's sessions."),
    INT("REFSTREAM_OUTBOX_SWEEP_INTERVAL_MS", "outbox-sweep-interval-ms", "5000", 100,
        3600000, outbox_sweep_interval_ms,
        "How often the housekeeping runs: unpublished outbox rows republished, "
        "codes expired, held credits that are due released."),
    INT("REFSTREAM_OUTBOX_LEASE_MS", "outbox-lease-ms", "30000", 1000, 3600000,
        outbox_lease_ms,
        "An outbox row not confirmed published this long after it was claimed is "
        "republished by the sweep (of any instance)."),
    INT("REFSTREAM_OUTBOX_RETENTION_HOURS", "outbox-retention-hours", "168", 0, 87600,
        outbox_retention_hours,
        "Published outbox rows older than this are deleted; 0 keeps them forever."),
    INT("REFSTREAM_INBOX_RETENTION_HOURS", "inbox-retention-hours", "720", 0, 87600,
        inbox_retention_hours,
        "Inbox rows (processed event ids) and held refunds older than this are "
        "deleted; 0 keeps them forever. Keep it above the input topics' retention."),
    INT("REFSTREAM_SHUTDOWN_TIMEOUT_MS", "shutdown-timeout-ms", "30000", 0, 600000,
        shutdown_timeout_ms,
        "On SIGTERM, longest wait for in-flight output to be delivered before exit."),
    INT("REFSTREAM_STALL_TIMEOUT_MS", "stall-timeout-ms", "60000", 1000, 3600000,
        stall_timeout_ms,
        "With lag and no progress for this long (and no outage to explain it), /readyz "
        "reports a stall."),
    SECRET("REFSTREAM_SCHEMA_REGISTRY_URL", "schema-registry-url", "",
           schema_registry_url, RS_SECRET_URL,
           "Schema Registry base URL (Confluent REST API: Confluent, Karapace, Redpanda, "
           "or Apicurio's .../apis/ccompat/v7); empty: schema ids of "
           "schemas/manifest.json."),
    SECRET("REFSTREAM_SCHEMA_REGISTRY_BASIC_AUTH", "schema-registry-basic-auth", "",
           schema_registry_basic_auth, RS_SECRET_AUTH,
           "user:password for the registry's HTTP basic auth (the password is never "
           "logged)."),
    STR("REFSTREAM_SCHEMA_REGISTRY_CA_FILE", "schema-registry-ca-file", "",
        schema_registry_ca_file,
        "PEM file of the CAs that sign the registry's TLS certificate (default: the "
        "system's)."),
    STR("REFSTREAM_SCHEMA_REGISTRY_CERT_FILE", "schema-registry-cert-file", "",
        schema_registry_cert_file,
        "PEM client certificate for the registry (mutual TLS)."),
    STR("REFSTREAM_SCHEMA_REGISTRY_KEY_FILE", "schema-registry-key-file", "",
        schema_registry_key_file, "PEM private key of that client certificate."),
    INT("REFSTREAM_SCHEMA_REGISTRY_TIMEOUT_MS", "schema-registry-timeout-ms", "10000",
        100, 600000, schema_registry_timeout_ms,
        "Longest wait for one registry request; a request that times out is an outage "
        "(retried), not bad data."),
    STR("REFSTREAM_CONFIG", "config", "", config_file,
        "Optional file of REFSTREAM_*=value lines, read before the environment."),
};
const size_t rs_config_defs_count = RS_ARRAY_SIZE(rs_config_defs);

#define RDKAFKA_ENV_PREFIX "REFSTREAM_RDKAFKA_"

static char **field_str(rs_config_t *cfg, const rs_config_def_t *d)
{
        return (char **)((char *)cfg + d->offset);
}

static int64_t *field_int(rs_config_t *cfg, const rs_config_def_t *d)
{
        return (int64_t *)((char *)cfg + d->offset);
}

void rs_config_init(rs_config_t *cfg)
{
        memset(cfg, 0, sizeof(*cfg));
        char err[256];
        for (size_t i = 0; i < rs_config_defs_count; i++) {
                const rs_config_def_t *d = &rs_config_defs[i];
                if (!rs_config_set(cfg, d->env, d->def, "default", err, sizeof(err))) {
                        fprintf(stderr, "refstream: bad built-in default: %s\n", err);
                        abort();
                }
        }
}

void rs_config_free(rs_config_t *cfg)
{
        for (size_t i = 0; i < rs_config_defs_count; i++) {
                const rs_config_def_t *d = &rs_config_defs[i];
                if (d->type != RS_CT_INT)
                        free(*field_str(cfg, d));
        }
        for (size_t i = 0; i < cfg->rdkafka_count; i++) {
                free(cfg->rdkafka[i].key);
                free(cfg->rdkafka[i].value);
        }
        free(cfg->rdkafka);
        rs_buf_free(&cfg->unknown_env);
        memset(cfg, 0, sizeof(*cfg));
}

const rs_config_def_t *rs_config_find_env(const char *env)
{
        for (size_t i = 0; i < rs_config_defs_count; i++) {
                if (strcmp(rs_config_defs[i].env, env) == 0)
                        return &rs_config_defs[i];
        }
        return NULL;
}

static bool choice_ok(const char *choices, const char *v)
{
        size_t n = strlen(v);
        for (const char *p = choices; p && *p;) {
                const char *bar = strchr(p, '|');
                size_t len = bar ? (size_t)(bar - p) : strlen(p);
                if (len == n && strncmp(p, v, n) == 0)
                        return true;
                p = bar ? bar + 1 : NULL;
        }
        return false;
}

static bool check_value(const rs_config_def_t *d, const char *value, const char *source,
                        char *errstr, size_t errstr_size)
{
        int64_t v;
        if (d->type == RS_CT_INT && !rs_parse_int64(value, d->min, d->max, &v)) {
                snprintf(errstr, errstr_size, "%s: '%s' is not an integer in %lld..%lld",
                         source, value, (long long)d->min, (long long)d->max);
                return false;
        }
        if (d->type == RS_CT_CHOICE && !choice_ok(d->choices, value)) {
                snprintf(errstr, errstr_size, "%s: '%s' is not one of %s", source, value,
                         d->choices);
                return false;
        }
        char err[300];
        rs_redis_url_t url;
        if (strcmp(d->env, "REFSTREAM_REDIS_URL") == 0 && *value) {
                if (!rs_redis_url_parse(value, &url, err, sizeof(err))) {
                        snprintf(errstr, errstr_size, "%s: %s (or empty: no cache)",
                                 source, err);
                        return false;
                }
                rs_redis_url_free(&url);
        }
        if (strcmp(d->env, "REFSTREAM_SCHEMA_REGISTRY_URL") == 0 && *value &&
            ((strncmp(value, "http://", 7) != 0 && strncmp(value, "https://", 8) != 0) ||
             strpbrk(value, "?# "))) {
                snprintf(errstr, errstr_size,
                         "%s: must be an http:// or https:// base URL without query "
                         "(or empty: no registry)",
                         source);
                return false;
        }
        if (strcmp(d->env, "REFSTREAM_SCHEMA_REGISTRY_BASIC_AUTH") == 0 && *value &&
            !strchr(value, ':')) {
                snprintf(errstr, errstr_size, "%s: must be user:password", source);
                return false;
        }
        rs_hostport_t hp;
        if (strcmp(d->env, "REFSTREAM_HTTP_ADDR") == 0 && *value &&
            !rs_hostport_parse(value, &hp, err, sizeof(err))) {
                snprintf(errstr, errstr_size, "%s: %s (or empty: no HTTP endpoint)",
                         source, err);
                return false;
        }
        if (strncmp(d->env, "REFSTREAM_TOPIC_", 16) == 0 ||
            strcmp(d->env, "REFSTREAM_GROUP_ID") == 0 ||
            strcmp(d->env, "REFSTREAM_KAFKA_BROKERS") == 0) {
                if (!*value) {
                        snprintf(errstr, errstr_size, "%s: must not be empty", source);
                        return false;
                }
        }
        return true;
}

bool rs_config_set(rs_config_t *cfg, const char *env_name, const char *value,
                   const char *source, char *errstr, size_t errstr_size)
{
        if (strncmp(env_name, RDKAFKA_ENV_PREFIX, strlen(RDKAFKA_ENV_PREFIX)) == 0) {
                const char *prop = env_name + strlen(RDKAFKA_ENV_PREFIX);
                char kv[1024];
                size_t n = 0;
                for (; prop[n] && n < sizeof(kv) - 2; n++)
                        kv[n] =
                            prop[n] == '_' ? '.' : (char)tolower((unsigned char)prop[n]);
                snprintf(kv + n, sizeof(kv) - n, "=%s", value);
                return rs_config_add_rdkafka(cfg, kv, source, errstr, errstr_size);
        }
        const rs_config_def_t *d = rs_config_find_env(env_name);
        if (!d) {
                snprintf(errstr, errstr_size, "%s: unknown setting", source);
                return false;
        }
        if (!check_value(d, value, source, errstr, errstr_size))
                return false;
        if (d->type == RS_CT_INT) {
                /* check_value() already proved the parse succeeds. */
                if (!rs_parse_int64(value, d->min, d->max, field_int(cfg, d)))
                        abort();
        } else {
                char **f = field_str(cfg, d);
                free(*f);
                *f = rs_strdup(value);
        }
        return true;
}

bool rs_config_add_rdkafka(rs_config_t *cfg, const char *prop_eq_value,
                           const char *source, char *errstr, size_t errstr_size)
{
        const char *eq = strchr(prop_eq_value, '=');
        if (!eq || eq == prop_eq_value) {
                snprintf(errstr, errstr_size,
                         "%s: expected librdkafka property=value, got '%s'", source,
                         prop_eq_value);
                return false;
        }
        /* Validate now, against a scratch configuration, so that an unknown
         * property or a bad value is a configuration error (exit 2, naming the
         * property) rather than a runtime failure when the client is created. */
        size_t klen = (size_t)(eq - prop_eq_value);
        char *key = rs_strndup(prop_eq_value, klen), rderr[512];
        rd_kafka_conf_t *scratch = rd_kafka_conf_new();
        rd_kafka_conf_res_t res =
            rd_kafka_conf_set(scratch, key, eq + 1, rderr, sizeof(rderr));
        rd_kafka_conf_destroy(scratch);
        if (res != RD_KAFKA_CONF_OK) {
                snprintf(errstr, errstr_size, "%s: librdkafka property %s: %s", source,
                         key, rderr);
                free(key);
                return false;
        }
        free(key);
        /* Replace an earlier value of the same property (later source wins). */
        for (size_t i = 0; i < cfg->rdkafka_count; i++) {
                if (strlen(cfg->rdkafka[i].key) == klen &&
                    strncmp(cfg->rdkafka[i].key, prop_eq_value, klen) == 0) {
                        free(cfg->rdkafka[i].value);
                        cfg->rdkafka[i].value = rs_strdup(eq + 1);
                        return true;
                }
        }
        cfg->rdkafka =
            rs_realloc(cfg->rdkafka, (cfg->rdkafka_count + 1) * sizeof(rs_kv_t));
        cfg->rdkafka[cfg->rdkafka_count].key = rs_strndup(prop_eq_value, klen);
        cfg->rdkafka[cfg->rdkafka_count].value = rs_strdup(eq + 1);
        cfg->rdkafka_count++;
        return true;
}

static char *trim(char *s)
{
        while (isspace((unsigned char)*s))
                s++;
        char *e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
                *--e = '\0';
        return s;
}

bool rs_config_load_file(rs_config_t *cfg, const char *path, char *errstr,
                         size_t errstr_size)
{
        FILE *f = fopen(path, "r");
        if (!f) {
                snprintf(errstr, errstr_size, "REFSTREAM_CONFIG: cannot open %s: %s",
                         path, strerror(errno));
                return false;
        }
        char line[4096];
        int lineno = 0;
        bool ok = true;
        while (ok && fgets(line, sizeof(line), f)) {
                lineno++;
                char *s = trim(line);
                if (!*s || *s == '#')
                        continue;
                if (strncmp(s, "export ", 7) == 0)
                        s = trim(s + 7);
                char *eq = strchr(s, '=');
                char source[512];
                if (!eq) {
                        snprintf(errstr, errstr_size, "%s:%d: expected KEY=VALUE", path,
                                 lineno);
                        ok = false;
                        break;
                }
                *eq = '\0';
                char *key = trim(s), *val = trim(eq + 1);
                size_t vl = strlen(val);
                if (vl >= 2 && (val[0] == '"' || val[0] == '\'') &&
                    val[vl - 1] == val[0]) {
                        val[vl - 1] = '\0';
                        val++;
                }
                snprintf(source, sizeof(source), "%s (%s:%d)", key, path, lineno);
                if (strcmp(key, "REFSTREAM_CONFIG") == 0)
                        continue; /* no nesting */
                ok = rs_config_set(cfg, key, val, source, errstr, errstr_size);
        }
        fclose(f);
        return ok;
}

bool rs_config_load_env(rs_config_t *cfg, char **envp, char *errstr, size_t errstr_size)
{
        if (cfg->config_file && *cfg->config_file &&
            !rs_config_load_file(cfg, cfg->config_file, errstr, errstr_size))
                return false;
        for (char **e = envp; e && *e; e++) {
                if (strncmp(*e, "REFSTREAM_", 10) != 0)
                        continue;
                const char *eq = strchr(*e, '=');
                if (!eq)
                        continue;
                char name[256];
                size_t n = RS_MIN((size_t)(eq - *e), sizeof(name) - 1);
                memcpy(name, *e, n);
                name[n] = '\0';
                if (strcmp(name, "REFSTREAM_CONFIG") == 0)
                        continue;
                /* Unknown names only warn: Kubernetes injects REFSTREAM_PORT,
                 * REFSTREAM_SERVICE_HOST, ... for a Service called refstream. */
                if (!rs_config_find_env(name) &&
                    strncmp(name, RDKAFKA_ENV_PREFIX, strlen(RDKAFKA_ENV_PREFIX)) != 0) {
                        rs_buf_printf(&cfg->unknown_env, "%s%s",
                                      cfg->unknown_env.len ? ", " : "", name);
                        continue;
                }
                if (!rs_config_set(cfg, name, eq + 1, name, errstr, errstr_size))
                        return false;
        }
        return true;
}

bool rs_config_apply_logging(const rs_config_t *cfg, char *errstr, size_t errstr_size)
{
        rs_log_level_t lvl;
        if (!rs_log_parse_level(cfg->log_level, &lvl)) {
                snprintf(errstr, errstr_size, "REFSTREAM_LOG_LEVEL: bad level '%s'",
                         cfg->log_level);
                return false;
        }
        rs_log_set_level(lvl);
        rs_log_set_json(strcmp(cfg->log_format, "json") == 0);
        return true;
}

void rs_config_print_help(FILE *out)
{
        fprintf(out, "Settings (flag, or environment variable; flags win):\n");
        for (size_t i = 0; i < rs_config_defs_count; i++) {
                const rs_config_def_t *d = &rs_config_defs[i];
                fprintf(out, "  --%-26s %s\n  %-28s (%s, default \"%s\")\n", d->flag,
                        d->doc, "", d->env, d->def);
        }
        fprintf(out,
                "  -X PROP=VALUE                librdkafka property, e.g. -X "
                "security.protocol=SSL\n  %-28s (or REFSTREAM_RDKAFKA_<PROP>, dots as "
                "underscores)\n",
                "");
}

static bool secret_property(const char *key)
{
        return strstr(key, "password") || strstr(key, "secret") || strstr(key, "token") ||
               strstr(key, "key.pem") || strstr(key, "jaas");
}

static const char *redacted(const rs_config_def_t *d, const char *v, char *out,
                            size_t size)
{
        const char *colon = strchr(v, ':');
        switch (d->secret) {
        case RS_SECRET_URL:
                return rs_redact_url(v, out, size);
        case RS_SECRET_AUTH:
                if (!*v)
                        return v;
                snprintf(out, size, "%.*s:***", colon ? (int)(colon - v) : 0, v);
                return out;
        default:
                return v;
        }
}

void rs_config_log(const rs_config_t *cfg)
{
        if (RS_LOG_INFO < rs_log_level)
                return;
        rs_buf_t b;
        rs_buf_init(&b);
        for (size_t i = 0; i < rs_config_defs_count; i++) {
                const rs_config_def_t *d = &rs_config_defs[i];
                if (d->type == RS_CT_INT) {
                        rs_buf_printf(&b, " %s=%lld", d->flag,
                                      (long long)*field_int((rs_config_t *)cfg, d));
                } else {
                        char red[1024];
                        const char *v = *field_str((rs_config_t *)cfg, d);
                        rs_buf_printf(&b, " %s=%s", d->flag,
                                      redacted(d, v, red, sizeof(red)));
                }
        }
        for (size_t i = 0; i < cfg->rdkafka_count; i++)
                rs_buf_printf(
                    &b, " rdkafka.%s=%s", cfg->rdkafka[i].key,
                    secret_property(cfg->rdkafka[i].key) ? "***" : cfg->rdkafka[i].value);
        rs_info("config", "effective configuration:%s", b.data);
        if (cfg->unknown_env.len)
                rs_warn("config", "ignoring unknown environment variables: %s",
                        cfg->unknown_env.data);
        rs_buf_free(&b);
}
