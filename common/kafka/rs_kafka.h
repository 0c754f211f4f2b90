#ifndef RS_KAFKA_H
#define RS_KAFKA_H
/* librdkafka configuration shared by the consumer, the outbox producer and the
 * tools: bootstrap servers, pass-through properties (REFSTREAM_RDKAFKA_* and
 * -X), and librdkafka's logs and errors routed to refstream's logger. */
#include "rs_config.h"

#include <librdkafka/rdkafka.h>

/* Base configuration for one client. `defaults` are name/value pairs applied
 * before the user's pass-through properties (so users can override them);
 * NULL-terminated, may be NULL. NULL + errstr naming the offending property. */
rd_kafka_conf_t *rs_kafka_conf(const rs_config_t *cfg, const char *const *defaults,
                               char *errstr, size_t errstr_size);

/* rd_kafka_new that takes conf in every case (destroyed on failure; NULL conf
 * gives NULL and leaves errstr alone, for a failed rs_kafka_conf). */
rd_kafka_t *rs_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
                         size_t errstr_size);

/* Sets one property, with an error naming it. */
bool rs_kafka_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                  char *errstr, size_t errstr_size) RS_WARN_UNUSED;

/* Topic of a record type, from the configuration. */
const char *rs_kafka_input_topic(const rs_config_t *cfg, int event_type);

#endif
