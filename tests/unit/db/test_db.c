/* common/db without a server: array literals and binary arrays, the embedded
 * migrations. */
#include "rs_embed.h"
#include "rs_pg.h"
#include "rs_pgrows.h"

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

/* A binary array holds exactly: ndim 1, flags 0, the element type, the
 * count, lower bound 1, then per element its length (-1: NULL) and bytes
 * (array_recv's format). `elems` is the expected element part. */
static void assert_binary(rs_pgarr_t *a, Oid elem, uint32_t count, const void *elems,
                          size_t elems_len)
{
        const unsigned char header[20] = {0,
                                          0,
                                          0,
                                          1,
                                          0,
                                          0,
                                          0,
                                          0,
                                          (unsigned char)(elem >> 24),
                                          (unsigned char)(elem >> 16),
                                          (unsigned char)(elem >> 8),
                                          (unsigned char)elem,
                                          (unsigned char)(count >> 24),
                                          (unsigned char)(count >> 16),
                                          (unsigned char)(count >> 8),
                                          (unsigned char)count,
                                          0,
                                          0,
                                          0,
                                          1};
        const char *got = rs_pgarr_get(a);
        assert_int_equal(rs_pgarr_len(a), sizeof(header) + elems_len);
        assert_memory_equal(got, header, sizeof(header));
        assert_memory_equal(got + sizeof(header), elems, elems_len);
}

#define NUL4 "\xff\xff\xff\xff" /* a NULL element */

static void pg_binary_arrays(void **state)
{
        rs_pgarr_t a;
        rs_pgarr_init_binary(&a, RS_PG_UUIDOID);
        assert_binary(&a, RS_PG_UUIDOID, 0, "", 0);
        rs_pgarr_text(&a, "00112233-4455-6677-8899-AABBCCDDEEFF");
        rs_pgarr_text(&a, NULL);
        assert_binary(&a, RS_PG_UUIDOID, 2,
                      "\0\0\0\x10\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd"
                      "\xee\xff" NUL4,
                      4 + 16 + 4);
        rs_pgarr_free(&a);
        rs_pgarr_init_binary(&a, RS_PG_INT4OID);
        rs_pgarr_int(&a, -3);
        rs_pgarr_int(&a, 258);
        assert_binary(&a, RS_PG_INT4OID, 2, "\0\0\0\4\xff\xff\xff\xfd\0\0\0\4\0\0\1\2",
                      16);
        rs_pgarr_free(&a);
        rs_pgarr_init_binary(&a, RS_PG_BYTEAOID);
        rs_pgarr_bytea(&a, "\x00\xff", 2);
        rs_pgarr_bytea(&a, NULL, 0);
        assert_binary(&a, RS_PG_BYTEAOID, 2, "\0\0\0\2\x00\xff" NUL4, 10);
        rs_pgarr_reset(&a);
        rs_pgarr_bytea(&a, "", 0);
        assert_binary(&a, RS_PG_BYTEAOID, 1, "\0\0\0\0", 4);
        rs_pgarr_free(&a);
        assert_int_equal(rs_pg_type_oid("bigint"), RS_PG_INT8OID);
        assert_int_equal(rs_pg_type_oid("timestamptz"), 0);
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

typedef struct row {
        int64_t id;
        const char *name;
        int64_t at_ms;
        int32_t n;
        bool flag;
} row_t;

static void upper_name(rs_pgarr_t *a, const void *r)
{
        const char *name = ((const row_t *)r)->name;
        rs_pgarr_text(a, name ? (name[0] == 'a' ? "A" : "B") : NULL);
}

/* The column table makes the unnest, the aliases and the parameters; a row
 * becomes one element of each column's array. */
static void rows_from_a_column_table(void **state)
{
        static const rs_pgcol_t cols[] = {
            RS_PGCOL(row_t, id, "bigint", RS_PGCOL_ID),
            RS_PGCOL(row_t, name, "text", RS_PGCOL_TEXT),
            RS_PGCOL(row_t, at_ms, "bigint", RS_PGCOL_TIME),
            RS_PGCOL(row_t, n, "int", RS_PGCOL_I32),
            RS_PGCOL(row_t, flag, "bool", RS_PGCOL_BOOL),
            RS_PGCOL_FN("initial", "text", upper_name),
        };
        char *sql = rs_pgrows_sql("SELECT * FROM {rows} WHERE x = {p1} {q}", cols, 6);
        assert_string_equal(sql, "SELECT * FROM unnest($1::bigint[], $2::text[], "
                                 "$3::bigint[], $4::int[], $5::bool[], $6::text[]) AS "
                                 "v(id, name, at_ms, n, flag, initial) WHERE x = $7 {q}");
        free(sql);
        sql = rs_pgrows_sql("{rows_numbered}", cols, 2);
        assert_string_equal(sql, "unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS "
                                 "v(id, name, ord)");
        free(sql);
        rs_pgrows_t r;
        rs_pgrows_init(&r, cols, RS_ARRAY_SIZE(cols));
        rs_pgrows_add(&r, &(row_t){7, "alice", 1000, -3, true});
        rs_pgrows_add(&r, &(row_t){0, NULL, RS_TS_NONE, 5, false});
        assert_int_equal(r.n, 2);
        assert_binary(&r.arr[0], RS_PG_INT8OID, 2, "\0\0\0\x08\0\0\0\0\0\0\0\x07" NUL4,
                      16);
        assert_binary(&r.arr[1], RS_PG_TEXTOID, 2,
                      "\0\0\0\x05"
                      "alice" NUL4,
                      13);
        assert_binary(&r.arr[2], RS_PG_INT8OID, 2, "\0\0\0\x08\0\0\0\0\0\0\x03\xe8" NUL4,
                      16);
        assert_binary(&r.arr[3], RS_PG_INT4OID, 2,
                      "\0\0\0\4\xff\xff\xff\xfd\0\0\0\4\0\0\0\5", 16);
        assert_binary(&r.arr[4], RS_PG_BOOLOID, 2, "\0\0\0\1\1\0\0\0\1\0", 10);
        assert_binary(&r.arr[5], RS_PG_TEXTOID, 2, "\0\0\0\1A" NUL4, 9);
        rs_pgrows_free(&r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(pg_array_literals),
            cmocka_unit_test(pg_binary_arrays),
            cmocka_unit_test(migrations_embedded),
            cmocka_unit_test(rows_from_a_column_table),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
