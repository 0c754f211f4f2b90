/* Event-time order between the input topics (rs_order.h). */
#include "rs_order.h"

#include "rs_util.h"

#include <stdlib.h>

typedef struct part {
        int32_t partition;
        bool payment;
        /* Sign-up partitions: the last record read (time, offset + 1) and the
         * end; -1 / RS_ORDER_NO_TIME while unknown. */
        int64_t ts, next, end;
        /* Payment partitions: the record held back and its time. */
        void *held;
        int64_t held_ts;
} part_t;

struct rs_order {
        int64_t slack_ms, patience_ms;
        part_t *parts;
        size_t n, cap, held;
        /* The frontier (INT64_MAX: no sign-up partition behind), when it last
         * moved forward, and whether the parts changed since it was found. */
        int64_t frontier, moved_ms;
        bool stale;
};

rs_order_t *rs_order_new(int64_t slack_ms, int64_t patience_ms)
{
        rs_order_t *o = rs_calloc(1, sizeof(*o));
        o->slack_ms = slack_ms;
        o->patience_ms = patience_ms;
        o->frontier = INT64_MAX;
        return o;
}

void rs_order_destroy(rs_order_t *o, void (*free_rec)(void *rec))
{
        if (!o)
                return;
        for (size_t i = 0; i < o->n; i++)
                if (o->parts[i].held)
                        free_rec(o->parts[i].held);
        free(o->parts);
        free(o);
}

static part_t *find(rs_order_t *o, bool payment, int32_t partition)
{
        for (size_t i = 0; i < o->n; i++)
                if (o->parts[i].partition == partition && o->parts[i].payment == payment)
                        return &o->parts[i];
        return NULL;
}

void rs_order_assign(rs_order_t *o, bool payment, int32_t partition, int64_t now_ms)
{
        if (find(o, payment, partition))
                return;
        if (o->n == o->cap) {
                o->cap = o->cap ? 2 * o->cap : 16;
                o->parts = rs_realloc(o->parts, o->cap * sizeof(*o->parts));
        }
        o->parts[o->n++] = (part_t){.partition = partition,
                                    .payment = payment,
                                    .ts = RS_ORDER_NO_TIME,
                                    .next = -1,
                                    .end = -1};
        o->moved_ms = now_ms; /* a new partition gets the whole patience */
        o->stale = true;
}

void *rs_order_revoke(rs_order_t *o, bool payment, int32_t partition)
{
        part_t *p = find(o, payment, partition);
        if (!p)
                return NULL;
        void *rec = p->held;
        if (rec)
                o->held--;
        *p = o->parts[--o->n];
        o->stale = true;
        return rec;
}

void rs_order_signup(rs_order_t *o, int32_t partition, int64_t offset, int64_t ts_ms)
{
        part_t *p = find(o, false, partition);
        if (!p)
                return;
        p->next = offset + 1;
        if (ts_ms != RS_ORDER_NO_TIME)
                p->ts = ts_ms;
        o->stale = true;
}

void rs_order_signup_end(rs_order_t *o, int32_t partition, int64_t end)
{
        part_t *p = find(o, false, partition);
        if (p && p->end != end) {
                p->end = end;
                o->stale = true;
        }
}

/* Whether a sign-up partition has records left to read. One whose end is
 * not known yet (not fetched yet), or not read from yet while it holds
 * records, counts as behind: where the group's offset is, only the fetcher
 * knows; patience bounds the wait if it is at the end. */
static bool behind(const part_t *p)
{
        if (p->end < 0)
                return true;
        return p->next < 0 ? p->end > 0 : p->end > p->next;
}

static void find_frontier(rs_order_t *o, int64_t now_ms)
{
        if (!o->stale)
                return;
        int64_t f = INT64_MAX;
        for (size_t i = 0; i < o->n; i++) {
                const part_t *p = &o->parts[i];
                if (!p->payment && behind(p) && p->ts < f)
                        f = p->ts;
        }
        /* Moving forward, or starting again after nothing was behind. */
        if (f == INT64_MAX || o->frontier == INT64_MAX || f > o->frontier)
                o->moved_ms = now_ms;
        o->frontier = f;
        o->stale = false;
}

/* Holding is on while some sign-up partition is behind and the frontier
 * moved within the patience. */
static bool holding(rs_order_t *o, int64_t now_ms)
{
        find_frontier(o, now_ms);
        return o->frontier != INT64_MAX && now_ms - o->moved_ms < o->patience_ms;
}

bool rs_order_ahead(rs_order_t *o, int32_t partition, int64_t ts_ms, int64_t now_ms)
{
        const part_t *p = find(o, true, partition);
        return p && !p->held && ts_ms != RS_ORDER_NO_TIME && holding(o, now_ms) &&
               ts_ms - o->slack_ms > o->frontier;
}

bool rs_order_hold(rs_order_t *o, int32_t partition, int64_t ts_ms, void *rec)
{
        part_t *p = find(o, true, partition);
        if (!p || p->held)
                return false;
        p->held = rec;
        p->held_ts = ts_ms;
        o->held++;
        return true;
}

int32_t rs_order_release(rs_order_t *o, int64_t now_ms, void **rec)
{
        if (o->held == 0)
                return -1;
        bool on = holding(o, now_ms);
        for (size_t i = 0; i < o->n; i++) {
                part_t *p = &o->parts[i];
                if (!p->held || (on && p->held_ts > o->frontier))
                        continue;
                *rec = p->held;
                p->held = NULL;
                o->held--;
                return p->partition;
        }
        return -1;
}

size_t rs_order_held(const rs_order_t *o)
{
        return o->held;
}
