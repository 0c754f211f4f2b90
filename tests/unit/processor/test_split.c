/* The parts of a batch that can run at once (consumer/processor/rs_split.h). */
#include "rs_split.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Two referrers' worlds: each code's sign-ups, its owner and the owner's
 * referees' payments stay together, and the two worlds go to two parts. */
static void linked_records_share_a_part(void **state)
{
        (void)state;
        rs_split_t s;
        rs_split_init(&s);
        const char *a[] = {"a1", "a2", "a3"}, *b[] = {"b1", "b2"};
        for (int i = 0; i < 3; i++) {
                rs_split_record(&s, a[i]); /* sign-up with CODEA */
                rs_split_link(&s, a[i], "CODEA");
                rs_split_link(&s, "CODEA", "alice");
        }
        for (int i = 0; i < 2; i++) {
                rs_split_record(&s, b[i]); /* payment; referrer bob */
                rs_split_link(&s, b[i], "bob");
        }
        rs_split_record(&s, "bob"); /* bob's own charge */
        assert_int_equal(rs_split_assign(&s, 2), 2);
        int pa = rs_split_part(&s, "a1");
        for (int i = 0; i < 3; i++)
                assert_int_equal(rs_split_part(&s, a[i]), pa);
        assert_int_equal(rs_split_part(&s, "CODEA"), pa);
        assert_int_equal(rs_split_part(&s, "alice"), pa);
        int pb = rs_split_part(&s, "bob");
        assert_int_not_equal(pa, pb);
        for (int i = 0; i < 2; i++)
                assert_int_equal(rs_split_part(&s, b[i]), pb);
        rs_split_free(&s);
}

/* A link made late joins two groups that were apart. */
static void a_late_link_joins_groups(void **state)
{
        (void)state;
        rs_split_t s;
        rs_split_init(&s);
        rs_split_record(&s, "u1");
        rs_split_record(&s, "u2");
        rs_split_link(&s, "u1", "r");
        rs_split_link(&s, "u2", "r");
        rs_split_link(&s, "u2", NULL); /* a code without a known owner */
        assert_int_equal(rs_split_assign(&s, 4), 1);
        assert_int_equal(rs_split_part(&s, "u1"), rs_split_part(&s, "u2"));
        rs_split_free(&s);
}

/* Groups are dealt largest first to the part with the fewest records. */
static void parts_are_balanced_by_records(void **state)
{
        (void)state;
        rs_split_t s;
        rs_split_init(&s);
        /* Groups of 5, 4, 3 and 2 records: 5+2 and 4+3. */
        const char *names[] = {"g5", "g4", "g3", "g2"};
        for (int g = 0; g < 4; g++)
                for (int i = 0; i < 5 - g; i++)
                        rs_split_record(&s, names[g]);
        rs_split_link(&s, "g2", "g2-referrer"); /* a name without records */
        assert_int_equal(rs_split_assign(&s, 2), 2);
        assert_int_equal(rs_split_part(&s, "g5"), rs_split_part(&s, "g2"));
        assert_int_equal(rs_split_part(&s, "g4"), rs_split_part(&s, "g3"));
        assert_int_not_equal(rs_split_part(&s, "g5"), rs_split_part(&s, "g4"));
        assert_int_equal(rs_split_part(&s, "never seen"), 0);
        /* More parts than groups: each group alone. */
        assert_int_equal(rs_split_assign(&s, 8), 4);
        rs_split_free(&s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(linked_records_share_a_part),
            cmocka_unit_test(a_late_link_joins_groups),
            cmocka_unit_test(parts_are_balanced_by_records),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
