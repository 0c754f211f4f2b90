/* A thread that wakes librdkafka's fetcher (rs_waker.h). */
#include "rs_waker.h"

#include <pthread.h>
#include <stdlib.h>

#include "rs_util.h"

struct rs_waker {
        rd_kafka_t *rk;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        rd_kafka_topic_partition_list_t *parts; /* the wake asked for, or NULL */
        bool busy;                              /* a wake asked for or under way */
        bool stop;
};

static void *run(void *arg)
{
        rs_waker_t *w = arg;
        pthread_mutex_lock(&w->lock);
        for (;;) {
                while (!w->parts && !w->stop)
                        pthread_cond_wait(&w->cond, &w->lock);
                if (w->stop)
                        break;
                rd_kafka_topic_partition_list_t *parts = w->parts;
                w->parts = NULL;
                pthread_mutex_unlock(&w->lock);
                /* The answer does not matter: the request woke the brokers. */
                rd_kafka_offsets_for_times(w->rk, parts, 1000);
                rd_kafka_topic_partition_list_destroy(parts);
                pthread_mutex_lock(&w->lock);
                w->busy = false;
        }
        pthread_mutex_unlock(&w->lock);
        return NULL;
}

rs_waker_t *rs_waker_new(rd_kafka_t *rk)
{
        rs_waker_t *w = rs_calloc(1, sizeof(*w));
        w->rk = rk;
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->cond, NULL);
        if (pthread_create(&w->thread, NULL, run, w) != 0) {
                pthread_cond_destroy(&w->cond);
                pthread_mutex_destroy(&w->lock);
                free(w);
                return NULL;
        }
        return w;
}

bool rs_waker_wake(rs_waker_t *w, const rd_kafka_topic_partition_list_t *parts)
{
        if (!w || parts->cnt == 0)
                return false;
        pthread_mutex_lock(&w->lock);
        bool queued = !w->busy;
        if (queued) {
                w->parts = rd_kafka_topic_partition_list_copy(parts);
                /* offsets_for_times: a timestamp of -1 asks for the end. */
                for (int i = 0; i < w->parts->cnt; i++)
                        w->parts->elems[i].offset = RD_KAFKA_OFFSET_END;
                w->busy = true;
                pthread_cond_signal(&w->cond);
        }
        pthread_mutex_unlock(&w->lock);
        return queued;
}

void rs_waker_destroy(rs_waker_t *w)
{
        if (!w)
                return;
        pthread_mutex_lock(&w->lock);
        w->stop = true;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
        pthread_join(w->thread, NULL);
        if (w->parts)
                rd_kafka_topic_partition_list_destroy(w->parts);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
        free(w);
}
