#ifndef RS_PUBLISHER_H
#define RS_PUBLISHER_H
/* Publishing input events (SignupEvent / PaymentEvent) to Kafka, for
 * `refstream publish`, `refstream loadgen` and `refstream demo`: keyed by
 * user_id, idempotent producer, encoded as Confluent-framed Avro (default) or
 * JSON. With a schema registry configured, Avro records are framed with the
 * registry's id of their schema under "<topic>-value" (registered if the
 * subject does not have it), and the codec is switched to registry ids. */
#include "rs_codec.h"
#include "rs_config.h"

#include <librdkafka/rdkafka.h>

typedef struct rs_publisher rs_publisher_t;

/* json: encode as JSON instead of Avro. */
rs_publisher_t *rs_publisher_new(const rs_config_t *cfg, rs_codec_t *codec, bool json,
                                 char *errstr, size_t errstr_size);
/* Queues one event to `topic` (NULL: the configured topic of its type). False
 * + errstr if it cannot be encoded or queued. */
bool rs_publisher_send(rs_publisher_t *p, const rs_event_t *ev, const char *topic,
                       char *errstr, size_t errstr_size) RS_WARN_UNUSED;
/* Waits for every queued event to be acknowledged; returns the number of
 * events whose delivery failed (after librdkafka's retries). */
long rs_publisher_finish(rs_publisher_t *p, int timeout_ms);
long rs_publisher_delivered(const rs_publisher_t *p);
void rs_publisher_destroy(rs_publisher_t *p);

/* A random event id ("evt-" + 20 Crockford characters from the CSPRNG). */
void rs_publisher_event_id(char *out, size_t size);

#endif
