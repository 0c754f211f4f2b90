/* The first-level filter's memory (see rs_quiet.h). */
#include "rs_quiet.h"
#include "rs_ids.h"
#include "rs_util.h"

#include <stdlib.h>
#include <string.h>

#define WAYS 4

typedef struct slot {
        uint64_t k1, k2; /* k1 == 0: empty (a key's k1 is never 0) */
        int64_t first_ms;
} slot_t;

struct rs_quiet {
        slot_t *slots;
        size_t mask; /* buckets - 1 */
        size_t count;
        uint64_t gen;
        unsigned victim;
};

static void key_of(const char *user, uint64_t *k1, uint64_t *k2)
{
        rs_sha256_t h;
        unsigned char d[32];
        rs_sha256_init(&h);
        rs_sha256_update(&h, user, strlen(user));
        rs_sha256_final(&h, d);
        memcpy(k1, d, 8);
        memcpy(k2, d + 8, 8);
        *k1 |= 1;
}

rs_quiet_t *rs_quiet_new(size_t capacity)
{
        size_t buckets = 1;
        while (buckets * WAYS < capacity)
                buckets *= 2;
        rs_quiet_t *q = rs_calloc(1, sizeof(*q));
        q->slots = rs_calloc(buckets * WAYS, sizeof(*q->slots));
        q->mask = buckets - 1;
        return q;
}

void rs_quiet_destroy(rs_quiet_t *q)
{
        if (!q)
                return;
        free(q->slots);
        free(q);
}

static slot_t *find(const rs_quiet_t *q, uint64_t k1, uint64_t k2)
{
        slot_t *b = &q->slots[(k1 >> 1 & q->mask) * WAYS];
        for (int i = 0; i < WAYS; i++)
                if (b[i].k1 == k1 && b[i].k2 == k2)
                        return &b[i];
        return NULL;
}

int64_t rs_quiet_get(const rs_quiet_t *q, const char *user)
{
        uint64_t k1, k2;
        key_of(user, &k1, &k2);
        const slot_t *s = find(q, k1, k2);
        return s ? s->first_ms : RS_TS_NONE;
}

void rs_quiet_put(rs_quiet_t *q, const char *user, int64_t first_charge_ms)
{
        uint64_t k1, k2;
        key_of(user, &k1, &k2);
        slot_t *s = find(q, k1, k2);
        if (!s) {
                slot_t *b = &q->slots[(k1 >> 1 & q->mask) * WAYS];
                for (int i = 0; i < WAYS && !s; i++)
                        if (b[i].k1 == 0)
                                s = &b[i];
                if (s)
                        q->count++;
                else
                        s = &b[q->victim++ % WAYS];
        }
        *s = (slot_t){k1, k2, first_charge_ms};
}

void rs_quiet_clear(rs_quiet_t *q)
{
        memset(q->slots, 0, (q->mask + 1) * WAYS * sizeof(*q->slots));
        q->count = 0;
        q->gen++;
}

uint64_t rs_quiet_gen(const rs_quiet_t *q)
{
        return q->gen;
}

size_t rs_quiet_count(const rs_quiet_t *q)
{
        return q->count;
}
