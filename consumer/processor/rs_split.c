/* The parts of a batch that can run at once (see rs_split.h). */
#include "rs_split.h"

#include <stdint.h>
#include <stdlib.h>

void rs_split_init(rs_split_t *s)
{
        *s = (rs_split_t){0};
        rs_map_init(&s->ids);
}

void rs_split_free(rs_split_t *s)
{
        rs_map_free(&s->ids);
        free(s->up);
        free(s->count);
        free(s->part);
        *s = (rs_split_t){0};
}

static size_t id_of(rs_split_t *s, const char *name)
{
        uintptr_t v = (uintptr_t)rs_map_get(&s->ids, name);
        if (v)
                return (size_t)v - 1;
        if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 256;
                s->up = rs_realloc(s->up, s->cap * sizeof(*s->up));
                s->count = rs_realloc(s->count, s->cap * sizeof(*s->count));
                s->part = rs_realloc(s->part, s->cap * sizeof(*s->part));
        }
        size_t i = s->n++;
        s->up[i] = i;
        s->count[i] = 0;
        s->part[i] = 0;
        rs_map_put(&s->ids, name, (void *)(uintptr_t)(i + 1));
        return i;
}

static size_t root(rs_split_t *s, size_t i)
{
        while (s->up[i] != i) {
                s->up[i] = s->up[s->up[i]]; /* path halving */
                i = s->up[i];
        }
        return i;
}

void rs_split_record(rs_split_t *s, const char *name)
{
        size_t i = root(s, id_of(s, name)); /* before s->count: it may move */
        s->count[i]++;
}

void rs_split_link(rs_split_t *s, const char *a, const char *b)
{
        if (!a || !b)
                return;
        size_t x = root(s, id_of(s, a)), y = root(s, id_of(s, b));
        if (x == y)
                return;
        if (s->count[x] < s->count[y]) { /* the bigger group stays the root */
                size_t t = x;
                x = y;
                y = t;
        }
        s->up[y] = x;
        s->count[x] += s->count[y];
}

typedef struct group {
        size_t count, root;
} group_t;

static int by_count_desc(const void *a, const void *b)
{
        size_t x = ((const group_t *)a)->count, y = ((const group_t *)b)->count;
        return (x < y) - (x > y);
}

int rs_split_assign(rs_split_t *s, int parts)
{
        group_t *g = rs_malloc((s->n ? s->n : 1) * sizeof(*g));
        size_t ng = 0;
        for (size_t i = 0; i < s->n; i++)
                if (s->up[i] == i && s->count[i] > 0)
                        g[ng++] = (group_t){s->count[i], i};
        qsort(g, ng, sizeof(*g), by_count_desc);
        size_t load[parts > 0 ? parts : 1];
        for (int p = 0; p < parts; p++)
                load[p] = 0;
        int used = 0;
        for (size_t i = 0; i < ng; i++) {
                int lightest = 0;
                for (int p = 1; p < parts; p++)
                        if (load[p] < load[lightest])
                                lightest = p;
                if (load[lightest] == 0)
                        used++;
                load[lightest] += g[i].count;
                s->part[g[i].root] = lightest;
        }
        free(g);
        return used ? used : 1;
}

int rs_split_part(rs_split_t *s, const char *name)
{
        uintptr_t v = (uintptr_t)rs_map_get(&s->ids, name);
        return v ? s->part[root(s, (size_t)v - 1)] : 0;
}
