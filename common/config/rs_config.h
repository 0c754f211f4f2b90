#ifndef RS_CONFIG_H
#define RS_CONFIG_H
/* Configuration (docs/operations.md §1), table-driven like PgBouncer's: every setting has
 * an environment name (REFSTREAM_*), a flag (--name), a type, a default and a doc line;
 * the README's reference table is checked against this table in CI
 * (tests/unit/config/test_config.c).
 *
 * Precedence, lowest first: defaults, config file (REFSTREAM_CONFIG or
 * --config; KEY=VALUE lines with the environment names), environment, flags.
 * librdkafka properties pass through as REFSTREAM_RDKAFKA_<PROP> (underscores
 * become dots: REFSTREAM_RDKAFKA_SECURITY_PROTOCOL=SSL) or -X prop=value. */
#include "rs_util.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct rs_kv {
        char *key;
        char *value;
} rs_kv_t;

typedef struct rs_config {
        char *kafka_brokers;
        char *group_id;
        char *database_url;
        char *redis_url;
        char *topic_signups;
        char *topic_payments;
        char *topic_credited;
        char *topic_reversed;
        char *topic_dlq;
        char *http_addr;
        char *log_level;
        char *log_format;
        int64_t batch_size;
        int64_t batch_linger_ms;
        int64_t batch_parts;
        int64_t cache_ttl_ms;
        int64_t cache_negative_ttl_ms;
        int64_t redis_timeout_ms;
        int64_t pg_retry_max_ms;
        int64_t pg_statement_timeout_ms;
        int64_t outbox_sweep_interval_ms;
        int64_t outbox_lease_ms;
        int64_t outbox_retention_hours;
        int64_t inbox_retention_hours;
        int64_t shutdown_timeout_ms;
        int64_t stall_timeout_ms;
        char *schema_registry_url; /* empty: the manifest's schema ids */
        char *schema_registry_basic_auth;
        char *schema_registry_ca_file;
        char *schema_registry_cert_file;
        char *schema_registry_key_file;
        int64_t schema_registry_timeout_ms;
        char *config_file;
        /* librdkafka pass-through properties, in the order given. */
        rs_kv_t *rdkafka;
        size_t rdkafka_count;
        /* REFSTREAM_* environment names that are not settings (warned about). */
        rs_buf_t unknown_env;
} rs_config_t;

typedef enum { RS_CT_STRING, RS_CT_INT, RS_CT_CHOICE } rs_config_type_t;

typedef enum {
        RS_SECRET_NONE = 0,
        RS_SECRET_URL,  /* a URL or conninfo: its password is hidden */
        RS_SECRET_AUTH, /* user:password: only the user is shown */
} rs_secret_t;

typedef struct rs_config_def {
        const char *env;  /* REFSTREAM_KAFKA_BROKERS */
        const char *flag; /* kafka-brokers (used as --kafka-brokers) */
        rs_config_type_t type;
        const char *def;     /* default, as text */
        int64_t min, max;    /* RS_CT_INT */
        const char *choices; /* RS_CT_CHOICE: "a|b|c" */
        rs_secret_t secret;  /* how it is printed */
        size_t offset;       /* into rs_config_t */
        const char *doc;
} rs_config_def_t;

extern const rs_config_def_t rs_config_defs[];
extern const size_t rs_config_defs_count;

void rs_config_init(rs_config_t *cfg); /* defaults */
void rs_config_free(rs_config_t *cfg);

/* Sets one setting by environment name from text; false + errstr naming the
 * setting (as `source`, e.g. "REFSTREAM_BATCH_SIZE" or "--batch-size") when
 * the value is invalid or the name unknown. */
bool rs_config_set(rs_config_t *cfg, const char *env_name, const char *value,
                   const char *source, char *errstr, size_t errstr_size) RS_WARN_UNUSED;
bool rs_config_add_rdkafka(rs_config_t *cfg, const char *prop_eq_value,
                           const char *source, char *errstr,
                           size_t errstr_size) RS_WARN_UNUSED;

/* Applies the config file (if REFSTREAM_CONFIG or an explicit path names one)
 * then the process environment. */
bool rs_config_load_env(rs_config_t *cfg, char **envp, char *errstr,
                        size_t errstr_size) RS_WARN_UNUSED;
bool rs_config_load_file(rs_config_t *cfg, const char *path, char *errstr,
                         size_t errstr_size) RS_WARN_UNUSED;

/* The definition of an environment name, or NULL. */
const rs_config_def_t *rs_config_find_env(const char *env);

/* Applies logging settings (level, format) to the logger. */
bool rs_config_apply_logging(const rs_config_t *cfg, char *errstr, size_t errstr_size);

/* Prints "  --flag VALUE   doc (env REFSTREAM_..., default ...)" for every setting. */
void rs_config_print_help(FILE *out);
/* Logs the effective configuration at info level, secrets redacted. */
void rs_config_log(const rs_config_t *cfg);

#endif
