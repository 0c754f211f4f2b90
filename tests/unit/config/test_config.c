/* Configuration: precedence, validation errors naming the setting, librdkafka
 * pass-through, and the README's reference table matching the code's table. */
#include "rs_cli.h"
#include "rs_config.h"
#include "rs_log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void defaults(void **state)
{
        rs_config_t c;
        rs_config_init(&c);
        assert_string_equal(c.group_id, "refstream");
        assert_string_equal(c.topic_signups, "signups");
        assert_string_equal(c.topic_dlq, "refstream-dlq");
        assert_int_equal(c.batch_size, 2000);
        rs_config_free(&c);
}

static void invalid_values_name_the_setting(void **state)
{
        rs_config_t c;
        char err[256];
        rs_config_init(&c);
        assert_false(rs_config_set(&c, "REFSTREAM_BATCH_SIZE", "abc",
                                   "REFSTREAM_BATCH_SIZE", err, sizeof(err)));
        assert_non_null(strstr(err, "REFSTREAM_BATCH_SIZE"));
        assert_false(rs_config_set(&c, "REFSTREAM_BATCH_SIZE", "0", "--batch-size", err,
                                   sizeof(err)));
        assert_non_null(strstr(err, "--batch-size"));
        assert_false(
            rs_config_set(&c, "REFSTREAM_LOG_FORMAT", "xml", "X", err, sizeof(err)));
        assert_non_null(strstr(err, "text|json"));
        assert_false(rs_config_set(&c, "REFSTREAM_REDIS_URL", "localhost:6379", "R", err,
                                   sizeof(err)));
        assert_false(
            rs_config_set(&c, "REFSTREAM_TOPIC_SIGNUPS", "", "T", err, sizeof(err)));
        assert_int_equal(c.batch_size, 2000); /* unchanged by failures */
        /* Addresses are checked when they are set, not when first used. */
        static const char *const bad_redis[] = {"redis://", "redis://h:0/0",
                                                "redis://h:99999", "redis://h:1/x",
                                                "redis://:pw@/0"};
        for (size_t i = 0; i < RS_ARRAY_SIZE(bad_redis); i++) {
                assert_false(rs_config_set(&c, "REFSTREAM_REDIS_URL", bad_redis[i],
                                           "--redis-url", err, sizeof(err)));
                assert_non_null(strstr(err, "--redis-url"));
        }
        assert_true(rs_config_set(&c, "REFSTREAM_REDIS_URL", "redis://u:p@h:7000/3", "R",
                                  err, sizeof(err)));
        static const char *const bad_http[] = {"8080",   "localhost", ":http", ":70000",
                                               "::1:80", "[::1]80",   "[::1",  "[]:80"};
        for (size_t i = 0; i < RS_ARRAY_SIZE(bad_http); i++) {
                assert_false(rs_config_set(&c, "REFSTREAM_HTTP_ADDR", bad_http[i],
                                           "REFSTREAM_HTTP_ADDR", err, sizeof(err)));
                assert_non_null(strstr(err, "REFSTREAM_HTTP_ADDR"));
        }
        static const char *const good_http[] = {":0", "127.0.0.1:9090", "[::1]:80",
                                                "localhost:1", ""};
        for (size_t i = 0; i < RS_ARRAY_SIZE(good_http); i++)
                assert_true(rs_config_set(&c, "REFSTREAM_HTTP_ADDR", good_http[i], "H",
                                          err, sizeof(err)));
        rs_config_free(&c);
}

static void env_file_and_precedence(void **state)
{
        char path[] = "/tmp/rs-config-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        const char *text =
            "# comment\nREFSTREAM_GROUP_ID=from-file\n"
            "export REFSTREAM_BATCH_SIZE='42'\nREFSTREAM_TOPIC_DLQ=\"dead\"\n";
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
        rs_config_t c;
        char err[256];
        rs_config_init(&c);
        assert_true(
            rs_config_set(&c, "REFSTREAM_CONFIG", path, "--config", err, sizeof(err)));
        char *env[] = {"REFSTREAM_GROUP_ID=from-env",
                       "REFSTREAM_RDKAFKA_SECURITY_PROTOCOL=SSL",
                       "REFSTREAM_PORT=tcp://10.0.0.1:80", "OTHER=1", NULL};
        assert_true(rs_config_load_env(&c, env, err, sizeof(err)));
        assert_string_equal(c.group_id, "from-env"); /* env beats file */
        assert_int_equal(c.batch_size, 42);
        assert_string_equal(c.topic_dlq, "dead");
        assert_int_equal(c.rdkafka_count, 1);
        assert_string_equal(c.rdkafka[0].key, "security.protocol");
        assert_string_equal(c.rdkafka[0].value, "SSL");
        /* Kubernetes service links are ignored with a warning, not fatal. */
        assert_non_null(strstr(c.unknown_env.data, "REFSTREAM_PORT"));
        rs_config_free(&c);
        unlink(path);
}

static void bad_file_line(void **state)
{
        char path[] = "/tmp/rs-config-XXXXXX";
        int fd = mkstemp(path);
        assert_int_equal(write(fd, "REFSTREAM_BATCH_SIZE=-1\n", 24), 24);
        close(fd);
        rs_config_t c;
        char err[256];
        rs_config_init(&c);
        assert_true(
            rs_config_set(&c, "REFSTREAM_CONFIG", path, "--config", err, sizeof(err)));
        char *env[] = {NULL};
        assert_false(rs_config_load_env(&c, env, err, sizeof(err)));
        assert_non_null(strstr(err, "REFSTREAM_BATCH_SIZE"));
        assert_non_null(strstr(err, ":1"));
        rs_config_free(&c);
        unlink(path);
}

static void rdkafka_override_replaces(void **state)
{
        rs_config_t c;
        char err[256];
        rs_config_init(&c);
        assert_true(rs_config_add_rdkafka(&c, "linger.ms=1", "-X", err, sizeof(err)));
        assert_true(rs_config_add_rdkafka(&c, "linger.ms=7", "-X", err, sizeof(err)));
        assert_false(rs_config_add_rdkafka(&c, "nonsense", "-X", err, sizeof(err)));
        /* Unknown properties and bad values are refused up front, naming them. */
        assert_false(
            rs_config_add_rdkafka(&c, "bogus.property=1", "-X", err, sizeof(err)));
        assert_non_null(strstr(err, "bogus.property"));
        assert_false(rs_config_add_rdkafka(&c, "linger.ms=soon", "-X", err, sizeof(err)));
        assert_non_null(strstr(err, "linger.ms"));
        assert_int_equal(c.rdkafka_count, 1);
        assert_string_equal(c.rdkafka[0].value, "7");
        rs_config_free(&c);
}

static void cli_flags_exit_codes(void **state)
{
        const rs_cli_t cli = {.command = "test", .usage = "test", .config_flags = true};
        rs_config_t c;
        char *ok[] = {"test", "--batch-size", "7", "-X", "acks=1", NULL};
        int first = 0;
        assert_int_equal(rs_cli_parse(&cli, 5, ok, &c, &first), -1);
        assert_int_equal(c.batch_size, 7);
        assert_int_equal(c.rdkafka_count, 1);
        rs_config_free(&c);
        char *bad[] = {"test", "--batch-size", "x", NULL};
        assert_int_equal(rs_cli_parse(&cli, 3, bad, &c, &first), RS_EXIT_USAGE);
        rs_config_free(&c);
        char *unknown[] = {"test", "--no-such-flag", NULL};
        assert_int_equal(rs_cli_parse(&cli, 2, unknown, &c, &first), RS_EXIT_USAGE);
        rs_config_free(&c);
}

static void redaction(void **state)
{
        char out[256];
        rs_redact_url("postgresql://u:s3cret@h:5432/db", out, sizeof(out));
        assert_null(strstr(out, "s3cret"));
        assert_non_null(strstr(out, "u:***@h"));
        rs_redact_url("host=h password=s3cret dbname=x", out, sizeof(out));
        assert_null(strstr(out, "s3cret"));
        rs_redact_url("redis://:pw@h:6379/0", out, sizeof(out));
        assert_null(strstr(out, "pw@"));
        rs_redact_url("redis://h:6379/0", out, sizeof(out));
        assert_string_equal(out, "redis://h:6379/0");
        rs_redact_url("postgresql://u:p@h/db?password=x&sslmode=require", out,
                      sizeof(out));
        assert_string_equal(out, "postgresql://u:***@h/db?password=***&sslmode=require");
        rs_redact_url("host=h password=a", out, sizeof(out)); /* value shorter than *** */
        assert_string_equal(out, "host=h password=***");
        rs_redact_url("password='a \\' secret' host=h", out, sizeof(out));
        assert_string_equal(out, "password=*** host=h");
        /* What libpq and our Redis parser read as the password, whole. */
        rs_redact_url("postgresql://app:s3cr?t#x@db/x", out, sizeof(out));
        assert_string_equal(out, "postgresql://app:***@db/x");
        rs_redact_url("redis://:p/w?d@h:1/0", out, sizeof(out));
        assert_string_equal(out, "redis://:***@h:1/0");
        rs_redact_url("host=h password = s3cret sslpassword=k3y passwordx=keep", out,
                      sizeof(out));
        assert_string_equal(out, "host=h password = *** sslpassword=*** passwordx=keep");
}

/* A URL longer than any buffer: the password must not show in what fits, and
 * many short passwords (each growing the text) must not overflow it. */
static void redaction_of_long_values(void **state)
{
        rs_buf_t in;
        rs_buf_init(&in);
        rs_buf_puts(&in, "postgresql://user:");
        for (int i = 0; i < 6000; i++)
                rs_buf_putc(&in, 'S');
        rs_buf_puts(&in, "@host/db");
        char out[5000];
        rs_redact_url(in.data, out, sizeof(out));
        assert_string_equal(out, "postgresql://user:***@host/db");
        rs_buf_reset(&in);
        for (int i = 0; i < 2000; i++)
                rs_buf_puts(&in, "password=a ");
        char small[64];
        rs_redact_url(in.data, small, sizeof(small));
        assert_null(strstr(small, "=a"));
        assert_int_equal(strlen(small), sizeof(small) - 1);
        rs_buf_free(&in);
}

/* The README's configuration reference must list every setting (and only
 * settings that exist), so docs and code cannot drift apart. */
static void readme_documents_every_setting(void **state)
{
        const char *src = getenv("RS_SOURCE_DIR");
        assert_non_null(src);
        char path[1024];
        snprintf(path, sizeof(path), "%s/README.md", src);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        size_t len = 0;
        char *readme = rs_read_stream(f, &len);
        fclose(f);
        for (size_t i = 0; i < rs_config_defs_count; i++) {
                char row[160];
                snprintf(row, sizeof(row), "| `%s` |", rs_config_defs[i].env);
                if (!strstr(readme, row))
                        fail_msg("README.md has no table row for %s",
                                 rs_config_defs[i].env);
        }
        for (const char *p = readme; (p = strstr(p, "| `REFSTREAM_")) != NULL; p++) {
                char name[128];
                if (sscanf(p, "| `%127[A-Z_]`", name) == 1 && !rs_config_find_env(name) &&
                    strcmp(name, "REFSTREAM_RDKAFKA_") != 0)
                        fail_msg("README.md documents %s, which is not a setting", name);
        }
        free(readme);
}

int main(void)
{
        rs_log_set_level(RS_LOG_ERROR);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(defaults),
            cmocka_unit_test(invalid_values_name_the_setting),
            cmocka_unit_test(env_file_and_precedence),
            cmocka_unit_test(bad_file_line),
            cmocka_unit_test(rdkafka_override_replaces),
            cmocka_unit_test(cli_flags_exit_codes),
            cmocka_unit_test(redaction),
            cmocka_unit_test(redaction_of_long_values),
            cmocka_unit_test(readme_documents_every_setting),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
