#ifndef RS_REGISTRY_CODEC_H
#define RS_REGISTRY_CODEC_H
/* The registry and the codec together (docs/events.md §2): writer schemas
 * fetched into the codec's cache, and refstream's own schemas registered
 * under the TopicNameStrategy subject of their topic ("<topic>-value"). */
#include "rs_codec.h"
#include "rs_config.h"
#include "rs_registry.h"

/* A client for the configured registry (cfg->schema_registry_*), or NULL +
 * errstr. */
rs_registry_t *rs_registry_from_config(const rs_config_t *cfg, char *errstr,
                                       size_t errstr_size);

/* Fetches the writer schema of id into the codec: as a schema, as unusable
 * (not Avro, or with references, which refstream does not follow), or as
 * unknown (the registry said 404). RS_REG_UNAVAILABLE: nothing was added;
 * errstr says why. */
rs_reg_status_t rs_registry_fetch(rs_registry_t *r, rs_codec_t *c, uint32_t id,
                                  char *errstr, size_t errstr_size);

/* Registers refstream's schema of record under "<topic>-value" (after a
 * lookup when lookup_first, so a subject that already has it needs no write
 * permission) and frames the record with the id from then on. Errors name
 * the subject; RS_REG_REJECTED carries the registry's message. */
rs_reg_status_t rs_registry_register_own(rs_registry_t *r, rs_codec_t *c,
                                         const char *record, const char *topic,
                                         bool lookup_first, char *errstr,
                                         size_t errstr_size);

#endif
