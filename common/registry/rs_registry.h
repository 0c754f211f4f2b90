#ifndef RS_REGISTRY_H
#define RS_REGISTRY_H
/* A client of the Confluent Schema Registry REST API (docs/events.md §2):
 * the three calls refstream makes, over libcurl.
 *
 *   GET  {base}/schemas/ids/{id}             a writer schema by its global id
 *   POST {base}/subjects/{subject}/versions  register (same schema, same id)
 *   POST {base}/subjects/{subject}           look up without registering
 *
 * {base} is the URL as configured (Confluent's root, Apicurio's
 * /apis/ccompat/v7, ...). Requests carry the registry media type in Accept and
 * Content-Type, basic auth when configured, and the TLS files as given. The
 * client keeps one connection (keep-alive) and is not thread-safe: use one per
 * thread. It caches nothing: callers keep what they fetched (ids are
 * immutable). */
#include "rs_util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rs_registry_opts {
        const char *url;        /* base URL, required */
        const char *basic_auth; /* "user:password", NULL or "" for none */
        const char *ca_file;    /* TLS: CA bundle, NULL = system default */
        const char *cert_file;  /* TLS client certificate (PEM), NULL = none */
        const char *key_file;   /* its private key (PEM), NULL = none */
        int64_t timeout_ms;     /* whole request; connect gets min(this, 5000) */
} rs_registry_opts_t;

typedef enum {
        RS_REG_OK = 0,
        RS_REG_NOT_FOUND, /* 404: unknown id, subject or schema */
        RS_REG_REJECTED,  /* 409 incompatible, 422 invalid schema: the message says why */
        /* Connection, timeout, TLS, 401/403, 429, 5xx, any other status, an
         * unreadable answer: an outage, retry later. */
        RS_REG_UNAVAILABLE,
        RS_REG__COUNT
} rs_reg_status_t;

/* "ok", "not_found", "rejected", "unavailable" (metric label values). */
const char *rs_reg_status_name(rs_reg_status_t st);

typedef struct rs_registry rs_registry_t;

/* NULL + errstr if the options are unusable (no URL, not http(s), a query or
 * fragment in it, timeout_ms <= 0). Makes no request. */
rs_registry_t *rs_registry_new(const rs_registry_opts_t *opts, char *errstr,
                               size_t errstr_size);
void rs_registry_destroy(rs_registry_t *r);

/* The schema text (the "schema" member, itself JSON) of id into *schema_json
 * (malloc'd, caller frees; NULL unless RS_REG_OK). A schemaType other than
 * AVRO, or references, are returned as RS_REG_OK with the schemaType copied
 * into schema_type ("AVRO" when absent; cut to schema_type_size) and
 * *has_references set; the caller decides. schema_type and has_references
 * may be NULL. errstr: the registry's message or the transport error, never
 * the credentials; "" on RS_REG_OK. */
rs_reg_status_t rs_registry_get_schema(rs_registry_t *r, uint32_t id, char **schema_json,
                                       char *schema_type, size_t schema_type_size,
                                       bool *has_references, char *errstr,
                                       size_t errstr_size);

/* Registers schema_json (Avro schema text) under subject; *id = the id the
 * registry assigned (the existing one if already registered). Schema text
 * that is not UTF-8 is RS_REG_REJECTED without a request. */
rs_reg_status_t rs_registry_register(rs_registry_t *r, const char *subject,
                                     const char *schema_json, uint32_t *id, char *errstr,
                                     size_t errstr_size);

/* Looks schema_json up under subject without registering: RS_REG_NOT_FOUND if
 * the subject or the schema is not there. */
rs_reg_status_t rs_registry_lookup(rs_registry_t *r, const char *subject,
                                   const char *schema_json, uint32_t *id, char *errstr,
                                   size_t errstr_size);

/* Counters since creation, for metrics: requests by outcome, and the total
 * time spent waiting for answers. Callable from any thread (the metrics
 * endpoint's) while the owner makes requests. */
typedef struct rs_registry_stats {
        uint64_t requests[RS_REG__COUNT];
        uint64_t wait_us;
} rs_registry_stats_t;
rs_registry_stats_t rs_registry_stats(const rs_registry_t *r);

#endif
