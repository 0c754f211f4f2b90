/* The first-level filter's memory (see rs_quiet.h). */
#include "rs_quiet.h"
#include "rs_ids.h"
#include "rs_util.h"

#include <stdlib.h>
#include <string.h>

#define WAYS 4

/* A slot's referrer: REF_UNKNOWN, REF_NONE, or REF_NAME + its index in
 * names. */
enum { REF_UNKNOWN, REF_NONE, REF_NAME };

typedef struct slot {
        uint64_t k1; /* 0: empty (a key's k1 is never 0) */
        uint32_t k2, ref;
        int64_t first_ms;
} slot_t;

struct rs_quiet {
        slot_t *slots;
        size_t mask; /* buckets - 1 */
        size_t count;
        uint64_t gen;
        unsigned victim;
        char **names; /* the referrers' ids, interned */
        size_t n_names;
        rs_map_t name_index; /* id -> (void *)(index + 1) */
        unsigned char key[16];
};

const char RS_QUIET_NO_REFERRER[] = "";

/* 96 bits of the id's SipHash under this process's random key: ids chosen
 * to collide would have to know the key. */
static void key_of(const rs_quiet_t *q, const char *user, uint64_t *k1, uint32_t *k2)
{
        unsigned char d[16];
        rs_siphash128(q->key, user, strlen(user), d);
        memcpy(k1, d, 8);
        memcpy(k2, d + 8, 4);
        *k1 |= 1;
}

rs_quiet_t *rs_quiet_new(size_t capacity)
{
        size_t buckets = 1;
        while (buckets * WAYS < capacity)
                buckets *= 2;
        rs_quiet_t *q = rs_calloc(1, sizeof(*q));
        if (!rs_random_bytes(q->key, sizeof(q->key))) {
                free(q);
                return NULL;
        }
        q->slots = rs_calloc(buckets * WAYS, sizeof(*q->slots));
        q->mask = buckets - 1;
        rs_map_init(&q->name_index);
        return q;
}

static void forget_names(rs_quiet_t *q)
{
        for (size_t i = 0; i < q->n_names; i++)
                free(q->names[i]);
        q->n_names = 0;
        rs_map_free(&q->name_index);
        rs_map_init(&q->name_index);
}

void rs_quiet_destroy(rs_quiet_t *q)
{
        if (!q)
                return;
        forget_names(q);
        rs_map_free(&q->name_index);
        free(q->names);
        free(q->slots);
        free(q);
}

static slot_t *find(const rs_quiet_t *q, uint64_t k1, uint32_t k2)
{
        slot_t *b = &q->slots[(k1 >> 1 & q->mask) * WAYS];
        for (int i = 0; i < WAYS; i++)
                if (b[i].k1 == k1 && b[i].k2 == k2)
                        return &b[i];
        return NULL;
}

int64_t rs_quiet_get(const rs_quiet_t *q, const char *user)
{
        uint64_t k1;
        uint32_t k2;
        key_of(q, user, &k1, &k2);
        const slot_t *s = find(q, k1, k2);
        return s ? s->first_ms : RS_TS_NONE;
}

bool rs_quiet_referrer(const rs_quiet_t *q, const char *user, const char **referrer)
{
        uint64_t k1;
        uint32_t k2;
        key_of(q, user, &k1, &k2);
        const slot_t *s = find(q, k1, k2);
        if (!s || s->ref == REF_UNKNOWN)
                return false;
        *referrer = s->ref == REF_NONE ? NULL : q->names[s->ref - REF_NAME];
        return true;
}

static uint32_t ref_of(rs_quiet_t *q, const char *referrer)
{
        if (!referrer)
                return REF_UNKNOWN;
        if (referrer == RS_QUIET_NO_REFERRER)
                return REF_NONE;
        uintptr_t v = (uintptr_t)rs_map_get(&q->name_index, referrer);
        if (v)
                return (uint32_t)(v - 1) + REF_NAME;
        if (q->n_names == RS_QUIET_NAMES_MAX)
                return REF_UNKNOWN;
        if (!q->names)
                q->names = rs_malloc(RS_QUIET_NAMES_MAX * sizeof(*q->names));
        char *name = rs_strdup(referrer);
        q->names[q->n_names++] = name;
        rs_map_put(&q->name_index, name, (void *)(uintptr_t)q->n_names);
        return (uint32_t)(q->n_names - 1) + REF_NAME;
}

void rs_quiet_put(rs_quiet_t *q, const char *user, int64_t first_charge_ms,
                  const char *referrer)
{
        uint64_t k1;
        uint32_t k2;
        key_of(q, user, &k1, &k2);
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
        *s = (slot_t){k1, k2, ref_of(q, referrer), first_charge_ms};
}

void rs_quiet_clear(rs_quiet_t *q)
{
        memset(q->slots, 0, (q->mask + 1) * WAYS * sizeof(*q->slots));
        forget_names(q);
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
