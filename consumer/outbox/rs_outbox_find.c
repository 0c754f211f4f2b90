#include "rs_outbox_find.h"
#include "rs_kafka.h"
#include "rs_log.h"
#include "rs_util.h"

#include <stdlib.h>
#include <string.h>

/* A record's timestamp (librdkafka's clock, after COMMIT) is later than its
 * row's created_at (Postgres' clock, when the transaction began) unless the
 * clocks disagree: read from this much earlier. Every second more is a
 * second of output read in vain. */
#define CLOCK_SLACK_MS 10000

rd_kafka_t *rs_outbox_finder_new(const rs_config_t *cfg, char *errstr, size_t errstr_size)
{
        /* A group id is needed by assign(); without subscribe() and commits
         * the group is never joined. */
        const char *defaults[] = {"group.id",
                                  "refstream-outbox-finder",
                                  "enable.auto.commit",
                                  "false",
                                  "enable.auto.offset.store",
                                  "false",
                                  "enable.partition.eof",
                                  "true",
                                  "fetch.wait.max.ms",
                                  "50",
                                  NULL};
        rd_kafka_conf_t *conf = rs_kafka_conf(cfg, defaults, errstr, errstr_size);
        rd_kafka_t *rk = rs_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
        if (rk)
                rd_kafka_poll_set_consumer(rk);
        return rk;
}

/* The partitions of topic, each with the first offset at or after since_ms;
 * those without such a record are left out. NULL + errstr on failure. */
/* What is left of the time until deadline (monotonic ms), at least 1 ms. */
static int left_ms(int64_t deadline)
{
        return (int)RS_MAX(deadline - rs_monotonic_ms(), 1);
}

static rd_kafka_topic_partition_list_t *start_offsets(rd_kafka_t *rk, const char *topic,
                                                      int64_t since_ms, int64_t deadline,
                                                      char *errstr, size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, left_ms(deadline));
        rd_kafka_topic_destroy(rkt);
        if (!err && (md->topic_cnt != 1 || md->topics[0].err))
                err = md->topic_cnt == 1 ? md->topics[0].err
                                         : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
        if (err) {
                snprintf(errstr, errstr_size, "no metadata for %s: %s", topic,
                         rd_kafka_err2str(err));
                if (md)
                        rd_kafka_metadata_destroy(md);
                return NULL;
        }
        int n = md->topics[0].partition_cnt;
        rd_kafka_metadata_destroy(md);
        rd_kafka_topic_partition_list_t *all = rd_kafka_topic_partition_list_new(n);
        for (int p = 0; p < n; p++)
                rd_kafka_topic_partition_list_add(all, topic, p)->offset = since_ms;
        err = rd_kafka_offsets_for_times(rk, all, left_ms(deadline));
        if (err) {
                snprintf(errstr, errstr_size, "offsets of %s at %lld: %s", topic,
                         (long long)since_ms, rd_kafka_err2str(err));
                rd_kafka_topic_partition_list_destroy(all);
                return NULL;
        }
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
        for (int i = 0; i < all->cnt; i++)
                if (!all->elems[i].err && all->elems[i].offset >= 0)
                        rd_kafka_topic_partition_list_add(list, topic,
                                                          all->elems[i].partition)
                            ->offset = all->elems[i].offset;
        rd_kafka_topic_partition_list_destroy(all);
        return list;
}

static void note(const rd_kafka_message_t *m, const rs_idset_t *wanted, rs_idset_t *found)
{
        rd_kafka_headers_t *h;
        const void *v;
        size_t len;
        char text[24];
        int64_t id;
        if (rd_kafka_message_headers(m, &h) ||
            rd_kafka_header_get_last(h, RS_OUTBOX_ID_HEADER, &v, &len) || !v ||
            len >= sizeof(text))
                return;
        memcpy(text, v, len);
        text[len] = '\0';
        if (rs_parse_int64(text, 1, INT64_MAX, &id) && rs_idset_has(wanted, id))
                rs_idset_add(found, id);
}

bool rs_outbox_find(rd_kafka_t *rk, const char *topic, const rs_idset_t *wanted,
                    int64_t since_ms, rs_idset_t *found, int64_t deadline, char *errstr,
                    size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *list = start_offsets(
            rk, topic, since_ms - CLOCK_SLACK_MS, deadline, errstr, errstr_size);
        if (!list)
                return false;
        int left = list->cnt;
        bool *done = rs_calloc((size_t)RS_MAX(left, 1), sizeof(bool));
        rd_kafka_resp_err_t err = left ? rd_kafka_assign(rk, list) : 0;
        if (err)
                snprintf(errstr, errstr_size, "assign %s: %s", topic,
                         rd_kafka_err2str(err));
        while (!err && left > 0 && rs_monotonic_ms() < deadline) {
                rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
                if (!m)
                        continue;
                if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                        for (int i = 0; i < list->cnt; i++)
                                if (list->elems[i].partition == m->partition &&
                                    !done[i]) {
                                        done[i] = true;
                                        left--;
                                }
                } else if (!m->err) {
                        note(m, wanted, found);
                }
                rd_kafka_message_destroy(m);
        }
        if (!err && left > 0)
                snprintf(errstr, errstr_size,
                         "%d partitions of %s not read to their end in time", left,
                         topic);
        if (list->cnt)
                rd_kafka_assign(rk, NULL);
        free(done);
        rd_kafka_topic_partition_list_destroy(list);
        return !err && left == 0;
}
