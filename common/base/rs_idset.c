#include "rs_idset.h"
#include "rs_util.h"

#include <stdlib.h>

static size_t slot_of(const rs_idset_t *s, int64_t id)
{
        return (size_t)((uint64_t)id * UINT64_C(0x9E3779B97F4A7C15) >> 7) & (s->cap - 1);
}

/* Rehashes into a table with room (doubling when more than a quarter is
 * taken by ids, else only dropping the deleted slots). */
static void grow(rs_idset_t *s)
{
        rs_idset_t old = *s;
        s->cap = old.cap ? (old.count * 4 > old.cap ? old.cap * 2 : old.cap) : 1024;
        s->slots = rs_calloc(s->cap, sizeof(int64_t));
        s->count = s->used = 0;
        for (size_t i = 0; i < old.cap; i++)
                if (old.slots[i] > 0)
                        rs_idset_add(s, old.slots[i]);
        free(old.slots);
}

void rs_idset_add(rs_idset_t *s, int64_t id)
{
        if ((s->used + 1) * 2 > s->cap)
                grow(s);
        size_t i = slot_of(s, id);
        while (s->slots[i] != 0 && s->slots[i] != id)
                i = (i + 1) & (s->cap - 1);
        if (s->slots[i] == id)
                return;
        s->slots[i] = id;
        s->count++;
        s->used++;
}

static int64_t *find(const rs_idset_t *s, int64_t id)
{
        if (!s->cap)
                return NULL;
        for (size_t i = slot_of(s, id); s->slots[i] != 0; i = (i + 1) & (s->cap - 1))
                if (s->slots[i] == id)
                        return &s->slots[i];
        return NULL;
}

void rs_idset_del(rs_idset_t *s, int64_t id)
{
        int64_t *slot = find(s, id);
        if (slot) {
                *slot = -1;
                s->count--;
        }
}

bool rs_idset_has(const rs_idset_t *s, int64_t id)
{
        return find(s, id) != NULL;
}

void rs_idset_free(rs_idset_t *s)
{
        free(s->slots);
        s->slots = NULL;
        s->cap = s->count = s->used = 0;
}
