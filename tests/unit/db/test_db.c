/* common/db without a server: array literals, the embedded migrations. */
#include "rs_embed.h"
#include "rs_pg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

extern const rs_embedded_file_t rs_migration_files[];
extern const size_t rs_migration_files_count;

static void pg_array_literals(void **state)
{
        rs_pgarr_t a;
        rs_pgarr_init(&a);
        assert_string_equal(rs_pgarr_get(&a), "{}");
        rs_pgarr_text(&a, "plain");
        rs_pgarr_text(&a, "q\"uo\\te,{x}");
        rs_pgarr_text(&a, NULL);
        rs_pgarr_text(&a, "NULL");
        assert_string_equal(rs_pgarr_get(&a),
                            "{\"plain\",\"q\\\"uo\\\\te,{x}\",NULL,\"NULL\"}");
        rs_pgarr_reset(&a);
        rs_pgarr_bytea(&a, "\x00\xff", 2);
        rs_pgarr_int_or_null(&a, -1, -1);
        rs_pgarr_int(&a, -5);
        assert_string_equal(rs_pgarr_get(&a), "{\"\\\\x00ff\",NULL,-5}");
        rs_pgarr_free(&a);
}

/* Every migration of sql/ is compiled in (the list in common/db/CMakeLists.txt
 * is written by hand), and nothing else. */
static void migrations_embedded(void **state)
{
        const char *src = getenv("RS_SOURCE_DIR");
        assert_non_null(src);
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "cd '%s' && ls sql/*.sql", src);
        FILE *ls = popen(cmd, "r");
        assert_non_null(ls);
        char line[256];
        int n = 0;
        while (fgets(line, sizeof(line), ls)) {
                line[strcspn(line, "\n")] = '\0';
                if (!rs_embedded_find(rs_migration_files, rs_migration_files_count, line))
                        fail_msg("%s is not embedded: add it to common/db/CMakeLists.txt",
                                 line);
                n++;
        }
        pclose(ls);
        assert_int_equal((size_t)n, rs_migration_files_count);
        assert_int_equal(rs_pg_schema_expected(), n);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(pg_array_literals),
            cmocka_unit_test(migrations_embedded),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
