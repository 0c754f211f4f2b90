#include "rs_publisher.h"
#include "rs_codes.h"
#include "rs_kafka.h"
#include "rs_log.h"
#include "rs_registry_codec.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

struct rs_publisher {
        rd_kafka_t *rk;
        rs_codec_t *codec;
        const rs_config_t *cfg;
        bool json;
        long delivered, failed;
        rs_buf_t buf;
        rs_registry_t *registry;                /* NULL: the manifest's schema ids */
        char *subject_topic[RS_EV_PAYMENT + 1]; /* registered for this topic */
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        (void)rk;
        rs_publisher_t *p = opaque;
        if (m->err) {
                p->failed++;
                rs_error("publish", "delivery to %s failed: %s",
                         rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err));
        } else {
                p->delivered++;
        }
}

rs_publisher_t *rs_publisher_new(const rs_config_t *cfg, rs_codec_t *codec, bool json,
                                 char *errstr, size_t errstr_size)
{
        const char *defaults[] = {"enable.idempotence", "true", "linger.ms", "5", NULL};
        rd_kafka_conf_t *conf = rs_kafka_conf(cfg, defaults, errstr, errstr_size);
        if (!conf)
                return NULL;
        rs_publisher_t *p = rs_calloc(1, sizeof(*p));
        p->codec = codec;
        p->cfg = cfg;
        p->json = json;
        rs_buf_init(&p->buf);
        rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
        rd_kafka_conf_set_opaque(conf, p);
        p->rk = rs_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
        if (!p->rk) {
                free(p);
                return NULL;
        }
        if (!json && *cfg->schema_registry_url) {
                if (!(p->registry = rs_registry_from_config(cfg, errstr, errstr_size))) {
                        rs_publisher_destroy(p);
                        return NULL;
                }
                rs_codec_use_registry(codec);
        }
        return p;
}

/* With a registry, the event's schema is registered under "<topic>-value"
 * (looked up first) before its first record to that topic: the framing id is
 * the registry's. */
static bool ensure_subject(rs_publisher_t *p, rs_event_type_t type, const char *topic,
                           char *errstr, size_t errstr_size)
{
        if (!p->registry ||
            (p->subject_topic[type] && strcmp(p->subject_topic[type], topic) == 0))
                return true;
        if (rs_registry_register_own(p->registry, p->codec, rs_event_type_name(type),
                                     topic, true, errstr, errstr_size) != RS_REG_OK)
                return false;
        free(p->subject_topic[type]);
        p->subject_topic[type] = rs_strdup(topic);
        return true;
}

bool rs_publisher_send(rs_publisher_t *p, const rs_event_t *ev, const char *topic,
                       char *errstr, size_t errstr_size)
{
        rs_buf_reset(&p->buf);
        if (!topic)
                topic = rs_kafka_input_topic(p->cfg, ev->type);
        if (p->json)
                rs_codec_event_to_json(ev, &p->buf);
        else if (!ensure_subject(p, ev->type, topic, errstr, errstr_size) ||
                 !rs_codec_encode_event(p->codec, ev, &p->buf, errstr, errstr_size))
                return false;
        for (;;) {
                rd_kafka_resp_err_t err = rd_kafka_producev(
                    p->rk, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_KEY(ev->user_id, strlen(ev->user_id)),
                    RD_KAFKA_V_VALUE(p->buf.data, p->buf.len),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
                if (!err)
                        break;
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                        snprintf(errstr, errstr_size, "cannot produce to %s: %s", topic,
                                 rd_kafka_err2str(err));
                        return false;
                }
                rd_kafka_poll(p->rk, 100);
        }
        rd_kafka_poll(p->rk, 0);
        return true;
}

long rs_publisher_finish(rs_publisher_t *p, int timeout_ms)
{
        rd_kafka_flush(p->rk, timeout_ms);
        long stuck = rd_kafka_outq_len(p->rk);
        if (stuck)
                rs_error("publish", "%ld events not acknowledged within %d ms", stuck,
                         timeout_ms);
        return p->failed + stuck;
}

long rs_publisher_delivered(const rs_publisher_t *p)
{
        return p->delivered;
}

void rs_publisher_destroy(rs_publisher_t *p)
{
        if (!p)
                return;
        rd_kafka_destroy(p->rk);
        rs_registry_destroy(p->registry);
        for (size_t i = 0; i < RS_ARRAY_SIZE(p->subject_topic); i++)
                free(p->subject_topic[i]);
        rs_buf_free(&p->buf);
        free(p);
}

void rs_publisher_event_id(char *out, size_t size)
{
        unsigned char rnd[20];
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
                /* Uniqueness only (not secrecy): the clock and pid will do. */
                snprintf(out, size, "evt-%lld-%d", (long long)rs_now_ms(), (int)getpid());
                return;
        }
        size_t n = 0;
        n += (size_t)snprintf(out, size, "evt-");
        for (size_t i = 0; i < sizeof(rnd) && n + 1 < size; i++)
                out[n++] = rs_crockford_alphabet[rnd[i] & 31];
        out[n] = '\0';
}
