/* Event-time order between the input topics (consumer/processor/rs_order.h). */
#include "rs_order.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define SLACK    50
#define PATIENCE 1000

static int rec[8]; /* records: the order only keeps their pointers */

/* One sign-up partition (0) and two payment partitions (0, 1), at t=0. The
 * sign-up partition has records up to offset 100. */
static rs_order_t *two_topics(void)
{
        rs_order_t *o = rs_order_new(SLACK, PATIENCE);
        rs_order_assign(o, false, 0, 0);
        rs_order_assign(o, true, 0, 0);
        rs_order_assign(o, true, 1, 0);
        rs_order_signup_end(o, 0, 100);
        return o;
}

static void no_free(void *r)
{
        (void)r;
        fail_msg("no record should be left");
}

static int freed;
static void count_free(void *r)
{
        (void)r;
        freed++;
}

/* A payment within the slack of the last sign-up read goes; one beyond it is
 * held, and goes once the sign-ups reach its time. */
static void holds_payments_ahead_until_signups_reach_them(void **state)
{
        rs_order_t *o = two_topics();
        void *r = NULL;
        rs_order_signup(o, 0, 10, 5000);
        assert_false(rs_order_ahead(o, 0, 5000 + SLACK, 1));
        assert_true(rs_order_ahead(o, 0, 5001 + SLACK, 1));
        assert_true(rs_order_hold(o, 0, 5001 + SLACK, &rec[0]));
        assert_int_equal(rs_order_held(o), 1);
        /* One record per partition: a second one is refused. */
        assert_false(rs_order_ahead(o, 0, 9000, 2));
        assert_false(rs_order_hold(o, 0, 9000, &rec[1]));
        assert_int_equal(rs_order_release(o, 2, &r), -1);
        /* The sign-ups move, not yet to its time. */
        rs_order_signup(o, 0, 20, 5000 + SLACK);
        assert_int_equal(rs_order_release(o, 3, &r), -1);
        rs_order_signup(o, 0, 30, 5001 + SLACK);
        assert_int_equal(rs_order_release(o, 4, &r), 0);
        assert_ptr_equal(r, &rec[0]);
        assert_int_equal(rs_order_held(o), 0);
        assert_int_equal(rs_order_release(o, 5, &r), -1);
        rs_order_destroy(o, no_free);
}

/* Sign-ups read to their end no longer count: everything goes. */
static void signups_at_their_end_hold_nothing(void **state)
{
        rs_order_t *o = two_topics();
        void *r = NULL;
        rs_order_signup(o, 0, 10, 5000);
        assert_true(rs_order_ahead(o, 1, 9000, 1));
        assert_true(rs_order_hold(o, 1, 9000, &rec[0]));
        rs_order_signup(o, 0, 99, 5050); /* offset 99 read: next is the end */
        assert_int_equal(rs_order_release(o, 10, &r), 1);
        assert_ptr_equal(r, &rec[0]);
        assert_false(rs_order_ahead(o, 1, 99999, 11));
        /* More sign-ups arrive: holding starts again, with full patience. */
        rs_order_signup_end(o, 0, 150);
        assert_true(rs_order_ahead(o, 1, 99999, 5000));
        assert_false(rs_order_ahead(o, 1, 5050 + SLACK, 5000));
        rs_order_destroy(o, no_free);
}

/* The slowest sign-up partition behind sets the frontier; an empty one does
 * not; one not fetched or not read from yet holds every timed payment. */
static void slowest_signup_partition_sets_the_frontier(void **state)
{
        rs_order_t *o = two_topics();
        rs_order_assign(o, false, 1, 0);
        rs_order_assign(o, false, 2, 0);
        rs_order_signup(o, 0, 10, 8000);
        /* Partitions 1 and 2 not fetched yet: their ends are unknown. */
        assert_true(rs_order_ahead(o, 0, 1, 10));
        rs_order_signup_end(o, 2, 0); /* empty: never behind */
        rs_order_signup_end(o, 1, 50);
        /* Partition 1 holds records, none read yet. */
        assert_true(rs_order_ahead(o, 0, 1, 10));
        rs_order_signup(o, 1, 5, 3000);
        assert_false(rs_order_ahead(o, 0, 3000 + SLACK, 11));
        assert_true(rs_order_ahead(o, 0, 3001 + SLACK, 11));
        /* A payment without a record time is never held. */
        assert_false(rs_order_ahead(o, 0, RS_ORDER_NO_TIME, 11));
        rs_order_destroy(o, no_free);
}

/* A frontier that does not move for the patience releases everything and
 * holds nothing more until it moves. */
static void stuck_signups_stop_holding(void **state)
{
        rs_order_t *o = two_topics();
        void *r = NULL;
        rs_order_signup(o, 0, 10, 5000);
        assert_true(rs_order_ahead(o, 0, 9000, 0));
        assert_true(rs_order_hold(o, 0, 9000, &rec[0]));
        assert_true(rs_order_ahead(o, 1, 9500, 1));
        assert_true(rs_order_hold(o, 1, 9500, &rec[1]));
        assert_int_equal(rs_order_release(o, PATIENCE - 1, &r), -1);
        int32_t a = rs_order_release(o, PATIENCE, &r);
        void *ra = r;
        int32_t b = rs_order_release(o, PATIENCE, &r);
        assert_true((a == 0 && ra == &rec[0] && b == 1 && r == &rec[1]) ||
                    (a == 1 && ra == &rec[1] && b == 0 && r == &rec[0]));
        assert_int_equal(rs_order_release(o, PATIENCE, &r), -1);
        assert_false(rs_order_ahead(o, 0, 9000, PATIENCE + 1));
        /* A new end alone is no progress. */
        rs_order_signup_end(o, 0, 120);
        assert_false(rs_order_ahead(o, 0, 9000, PATIENCE + 2));
        /* Progress: holding again. */
        rs_order_signup(o, 0, 11, 5001);
        assert_true(rs_order_ahead(o, 0, 9000, PATIENCE + 3));
        rs_order_destroy(o, no_free);
}

/* A revoked partition gives its held record back; destroy frees the rest. */
static void revoke_and_destroy_give_records_back(void **state)
{
        rs_order_t *o = two_topics();
        void *r = NULL;
        rs_order_signup(o, 0, 10, 5000);
        assert_true(rs_order_ahead(o, 0, 9000, 0));
        assert_true(rs_order_hold(o, 0, 9000, &rec[0]));
        assert_true(rs_order_hold(o, 1, 9000, &rec[1]));
        assert_ptr_equal(rs_order_revoke(o, true, 0), &rec[0]);
        assert_null(rs_order_revoke(o, true, 0));
        assert_int_equal(rs_order_held(o), 1);
        /* Not assigned: never held. */
        assert_false(rs_order_ahead(o, 0, 9000, 1));
        assert_false(rs_order_hold(o, 0, 9000, &rec[2]));
        /* Revoking the sign-up partition leaves none behind: all goes. */
        assert_null(rs_order_revoke(o, false, 0));
        assert_int_equal(rs_order_release(o, 2, &r), 1);
        assert_ptr_equal(r, &rec[1]);
        assert_false(rs_order_ahead(o, 1, 9000, 2));
        freed = 0;
        rs_order_assign(o, false, 0, 3);
        assert_true(rs_order_ahead(o, 1, 9000, 4));
        assert_true(rs_order_hold(o, 1, 9000, &rec[3]));
        rs_order_destroy(o, count_free);
        assert_int_equal(freed, 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(holds_payments_ahead_until_signups_reach_them),
            cmocka_unit_test(signups_at_their_end_hold_nothing),
            cmocka_unit_test(slowest_signup_partition_sets_the_frontier),
            cmocka_unit_test(stuck_signups_stop_holding),
            cmocka_unit_test(revoke_and_destroy_give_records_back),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
