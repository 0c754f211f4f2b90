#include "rs_kafka.h"
#include "rs_event.h"
#include "rs_log.h"

#include <string.h>

bool rs_kafka_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                  char *errstr, size_t errstr_size)
{
        char err[512];
        if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
                snprintf(errstr, errstr_size, "librdkafka property %s: %s", name, err);
                return false;
        }
        return true;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
        /* syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug */
        rs_log_level_t lvl = level <= 3   ? RS_LOG_ERROR
                             : level == 4 ? RS_LOG_WARN
                             : level <= 6 ? RS_LOG_INFO
                                          : RS_LOG_DEBUG;
        RS_LOG(lvl, "rdkafka", "%s: %s: %s", rd_kafka_name(rk), fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
        (void)opaque;
        /* Most errors are transient and retried by librdkafka itself; the fatal
         * ones are acted upon by the owner (rd_kafka_fatal_error()). */
        if (err == RD_KAFKA_RESP_ERR__FATAL)
                rs_error("rdkafka", "%s: fatal error: %s", rd_kafka_name(rk), reason);
        else if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
                 err == RD_KAFKA_RESP_ERR__TRANSPORT)
                rs_warn("rdkafka", "%s: %s", rd_kafka_name(rk), reason);
        else
                rs_warn("rdkafka", "%s: %s: %s", rd_kafka_name(rk),
                        rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

rd_kafka_conf_t *rs_kafka_conf(const rs_config_t *cfg, const char *const *defaults,
                               char *errstr, size_t errstr_size)
{
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set_log_cb(conf, log_cb);
        rd_kafka_conf_set_error_cb(conf, error_cb);
        bool ok = rs_kafka_set(conf, "bootstrap.servers", cfg->kafka_brokers, errstr,
                               errstr_size) &&
                  rs_kafka_set(conf, "client.id", "refstream", errstr, errstr_size);
        for (size_t i = 0; ok && defaults && defaults[i]; i += 2)
                ok =
                    rs_kafka_set(conf, defaults[i], defaults[i + 1], errstr, errstr_size);
        for (size_t i = 0; ok && i < cfg->rdkafka_count; i++)
                ok = rs_kafka_set(conf, cfg->rdkafka[i].key, cfg->rdkafka[i].value,
                                  errstr, errstr_size);
        if (!ok) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        return conf;
}

const char *rs_kafka_input_topic(const rs_config_t *cfg, int event_type)
{
        return event_type == RS_EV_SIGNUP ? cfg->topic_signups : cfg->topic_payments;
}

rd_kafka_t *rs_kafka_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
                         size_t errstr_size)
{
        if (!conf)
                return NULL;
        char err[512];
        rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
        if (!rk) {
                rd_kafka_conf_destroy(conf);
                snprintf(errstr, errstr_size, "cannot create Kafka %s: %s",
                         type == RD_KAFKA_PRODUCER ? "producer" : "consumer", err);
        }
        return rk;
}
