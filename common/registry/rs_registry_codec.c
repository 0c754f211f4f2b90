#include "rs_registry_codec.h"
#include "rs_log.h"

#include <stdlib.h>
#include <string.h>

rs_registry_t *rs_registry_from_config(const rs_config_t *cfg, char *errstr,
                                       size_t errstr_size)
{
        const rs_registry_opts_t opts = {
            .url = cfg->schema_registry_url,
            .basic_auth = cfg->schema_registry_basic_auth,
            .ca_file = cfg->schema_registry_ca_file,
            .cert_file = cfg->schema_registry_cert_file,
            .key_file = cfg->schema_registry_key_file,
            .timeout_ms = cfg->schema_registry_timeout_ms,
        };
        return rs_registry_new(&opts, errstr, errstr_size);
}

rs_reg_status_t rs_registry_fetch(rs_registry_t *r, rs_codec_t *c, uint32_t id,
                                  char *errstr, size_t errstr_size)
{
        char *schema = NULL, type[32], why[512];
        bool refs = false;
        rs_reg_status_t st = rs_registry_get_schema(r, id, &schema, type, sizeof(type),
                                                    &refs, errstr, errstr_size);
        switch (st) {
        case RS_REG_OK:
                if (strcmp(type, "AVRO") != 0) {
                        snprintf(why, sizeof(why),
                                 "the registry's schema is %s, not Avro", type);
                        rs_codec_add_unusable(c, id, why);
                } else if (refs) {
                        rs_codec_add_unusable(c, id,
                                              "the registry's schema has references, "
                                              "which refstream does not follow");
                } else {
                        rs_codec_add_schema(c, id, schema, strlen(schema));
                }
                rs_info("registry", "schema id %u fetched", id);
                break;
        case RS_REG_NOT_FOUND:
        case RS_REG_REJECTED: /* not an answer to a GET; as good as unknown */
                snprintf(why, sizeof(why), "not in the schema registry (%s)", errstr);
                rs_codec_add_unknown(c, id, why);
                rs_warn("registry", "schema id %u: %s; its records are dead letters", id,
                        why);
                st = RS_REG_OK;
                break;
        default:
                break;
        }
        free(schema);
        return st;
}

rs_reg_status_t rs_registry_register_own(rs_registry_t *r, rs_codec_t *c,
                                         const char *record, const char *topic,
                                         bool lookup_first, char *errstr,
                                         size_t errstr_size)
{
        char subject[512], err[1024];
        size_t len;
        uint32_t id = 0;
        const char *json = rs_codec_schema_json(c, record, &len);
        snprintf(subject, sizeof(subject), "%s-value", topic);
        if (!json) {
                snprintf(errstr, errstr_size, "no schema for record %s", record);
                return RS_REG_REJECTED;
        }
        rs_reg_status_t st = RS_REG_NOT_FOUND;
        if (lookup_first)
                st = rs_registry_lookup(r, subject, json, &id, err, sizeof(err));
        if (st == RS_REG_NOT_FOUND)
                st = rs_registry_register(r, subject, json, &id, err, sizeof(err));
        if (st == RS_REG_OK && !rs_codec_set_schema_id(c, record, id)) {
                snprintf(err, sizeof(err), "id %u out of range", id);
                st = RS_REG_REJECTED;
        }
        if (st == RS_REG_OK)
                rs_info("registry", "%s is schema id %u (subject %s)", record, id,
                        subject);
        else
                snprintf(errstr, errstr_size, "%s under subject %s: %s", record, subject,
                         err);
        return st;
}
