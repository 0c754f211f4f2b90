#include "support_admin.h"
#include "cmd_admin.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void capture_warning(void *opaque, const char *msg)
{
        rs_it_admin_t *f = opaque;
        rs_buf_puts(&f->warnings, msg);
        rs_buf_putc(&f->warnings, '\n');
}

rs_it_admin_t *rs_it_admin_new(const char *dbname)
{
        char err[256];
        rs_it_admin_t *f = rs_calloc(1, sizeof(*f));
        rs_strlcpy(f->url, rs_it_fresh_db(dbname), sizeof(f->url));
        const char *redis = rs_it_env("REFSTREAM_REDIS_URL");
        setenv("REFSTREAM_DATABASE_URL", f->url, 1);
        rs_it_redis_flush();
        f->pg = rs_it_pg(f->url);
        f->cache = rs_cache_new(redis, 600000, 5000, 1000, err, sizeof(err));
        if (!f->cache) {
                fprintf(stderr, "integration test: %s\n", err);
                exit(1);
        }
        rs_buf_init(&f->warnings);
        f->a = (rs_admin_t){.pg = f->pg,
                            .cache = f->cache,
                            .cache_ttl_ms = 600000,
                            .warn = capture_warning,
                            .warn_opaque = f};
        return f;
}

void rs_it_admin_free(rs_it_admin_t *f)
{
        rs_cache_destroy(f->cache);
        rs_pg_destroy(f->pg);
        rs_buf_free(&f->warnings);
        free(f);
}

/* A temporary file holding s (may be NULL), rewound; caller closes. */
static int temp_fd(const char *s)
{
        FILE *t = tmpfile();
        if (!t) {
                perror("tmpfile");
                exit(1);
        }
        if (s)
                fputs(s, t);
        fflush(t);
        int fd = dup(fileno(t));
        fclose(t);
        lseek(fd, 0, SEEK_SET);
        return fd;
}

static char *slurp_fd(int fd)
{
        rs_buf_t b;
        char chunk[4096];
        ssize_t n;
        rs_buf_init(&b);
        rs_buf_puts(&b, "");
        lseek(fd, 0, SEEK_SET);
        while ((n = read(fd, chunk, sizeof(chunk))) > 0)
                rs_buf_append(&b, chunk, (size_t)n);
        close(fd);
        return b.data;
}

int rs_it_admin_cli(const char *input, char **out, char **err, ...)
{
        char *argv[64];
        int argc = 0;
        va_list ap;
        va_start(ap, err);
        argv[argc++] = "admin";
        for (char *a; argc < 63 && (a = va_arg(ap, char *));)
                argv[argc++] = a;
        va_end(ap);
        argv[argc] = NULL;
        int in = temp_fd(input), o = temp_fd(NULL), e = temp_fd(NULL);
        int saved[3] = {dup(0), dup(1), dup(2)};
        fflush(stdout);
        fflush(stderr);
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        clearerr(stdin);
        int rc = rs_cmd_admin(argc, argv);
        fflush(stdout);
        fflush(stderr);
        for (int i = 0; i < 3; i++) {
                dup2(saved[i], i);
                close(saved[i]);
        }
        clearerr(stdin);
        close(in);
        *out = slurp_fd(o);
        *err = slurp_fd(e);
        return rc;
}

void rs_it_admin_program(rs_it_admin_t *f, const char *key)
{
        char err[512];
        rs_admin_program_t p = {.name = "Test program",
                                .currency = "USD",
                                .reward_fixed = {RS_ADMIN_SET, 1000},
                                .goal = {RS_ADMIN_SET, 5}};
        if (!rs_admin_program_create(&f->a, key, &p, err, sizeof(err))) {
                fprintf(stderr, "integration test: program create: %s\n", err);
                exit(1);
        }
}

void rs_it_admin_issue(rs_it_admin_t *f, const char *program, const char *user,
                       const char *vanity, char code[RS_CODE_MAX_LEN + 1])
{
        char err[512];
        rs_admin_code_limits_t none = {{0}, {0}};
        if (!rs_admin_code_issue(&f->a, program, user, vanity, &none, code, err,
                                 sizeof(err))) {
                fprintf(stderr, "integration test: code issue: %s\n", err);
                exit(1);
        }
}

static redisContext *redis(void)
{
        redisContext *c = redisConnect("127.0.0.1", atoi(rs_it_env("RS_REDIS_PORT")));
        if (!c || c->err) {
                fprintf(stderr, "integration test: cannot reach Redis\n");
                exit(1);
        }
        return c;
}

void rs_it_redis_set(const char *key, const char *value)
{
        redisContext *c = redis();
        redisReply *r = redisCommand(c, "SET %s %s", key, value);
        if (!r || r->type == REDIS_REPLY_ERROR) {
                fprintf(stderr, "integration test: Redis SET failed\n");
                exit(1);
        }
        freeReplyObject(r);
        redisFree(c);
}

bool rs_it_redis_exists(const char *key)
{
        redisContext *c = redis();
        redisReply *r = redisCommand(c, "EXISTS %s", key);
        if (!r || r->type != REDIS_REPLY_INTEGER) {
                fprintf(stderr, "integration test: Redis EXISTS failed\n");
                exit(1);
        }
        bool exists = r->integer == 1;
        freeReplyObject(r);
        redisFree(c);
        return exists;
}
