#include "support.h"
#include "rs_util.h"

#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *lookup_file(const char *path, const char *key)
{
        FILE *f = fopen(path, "r");
        if (!f)
                return NULL;
        char line[4096], *found = NULL;
        size_t klen = strlen(key);
        while (!found && fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\r\n")] = '\0';
                if (strncmp(line, key, klen) == 0 && line[klen] == '=')
                        found = rs_strdup(line + klen + 1);
        }
        fclose(f);
        return found;
}

const char *rs_it_env(const char *key)
{
        const char *v = getenv(key);
        if (v && *v)
                return v;
        const char *files = getenv("RS_STACK_ENV");
        if (files) {
                char *copy = rs_strdup(files), *save = NULL;
                for (char *p = strtok_r(copy, ":", &save); p;
                     p = strtok_r(NULL, ":", &save)) {
                        char *found = lookup_file(p, key);
                        if (found) {
                                /* Kept in the environment: later lookups are
                                 * plain getenv(), and child processes see it. */
                                setenv(key, found, 1);
                                free(found);
                                free(copy);
                                return getenv(key);
                        }
                }
                free(copy);
        }
        fprintf(stderr,
                "integration test: %s is not set and not in RS_STACK_ENV (%s); "
                "start the stack with scripts/stack.sh or run via ctest\n",
                key, files ? files : "unset");
        exit(1);
}

rs_pg_t *rs_it_pg(const char *url)
{
        char err[1024];
        rs_pg_t *pg = rs_pg_new(url, 60000);
        if (!rs_pg_connect(pg, err, sizeof(err))) {
                fprintf(stderr, "integration test: %s\n", err);
                exit(1);
        }
        return pg;
}

char *rs_it_sql(rs_pg_t *pg, const char *sql)
{
        char err[1024];
        PGresult *res = rs_pg_exec(pg, sql, 0, NULL, err, sizeof(err));
        if (!res) {
                fprintf(stderr, "integration test: SQL failed: %s\n  %s\n", err, sql);
                exit(1);
        }
        char *v = PQntuples(res) == 0      ? rs_strdup("")
                  : PQgetisnull(res, 0, 0) ? NULL
                                           : rs_strdup(PQgetvalue(res, 0, 0));
        PQclear(res);
        return v;
}

char *rs_it_sqlf(rs_pg_t *pg, const char *fmt, ...)
{
        char sql[8192];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sql, sizeof(sql), fmt, ap);
        va_end(ap);
        return rs_it_sql(pg, sql);
}

long long rs_it_count(rs_pg_t *pg, const char *fmt, ...)
{
        char sql[8192];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sql, sizeof(sql), fmt, ap);
        va_end(ap);
        char *v = rs_it_sql(pg, sql);
        long long n = v ? atoll(v) : 0;
        free(v);
        return n;
}

const char *rs_it_empty_db(const char *name)
{
        static char url[1024];
        const char *admin_url = rs_it_env("RS_PG_SUPERUSER_URL");
        rs_pg_t *admin = rs_it_pg(admin_url);
        free(rs_it_sqlf(admin, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", name));
        free(rs_it_sqlf(admin, "CREATE DATABASE \"%s\"", name));
        rs_pg_destroy(admin);
        /* Same server and credentials, other database. */
        const char *slash = strrchr(admin_url, '/');
        snprintf(url, sizeof(url), "%.*s/%s", (int)(slash - admin_url), admin_url, name);
        return url;
}

const char *rs_it_fresh_db(const char *name)
{
        const char *url = rs_it_empty_db(name);
        rs_pg_t *pg = rs_it_pg(url);
        char err[1024];
        if (!rs_pg_migrate(pg, NULL, err, sizeof(err))) {
                fprintf(stderr, "integration test: migrate: %s\n", err);
                exit(1);
        }
        rs_pg_destroy(pg);
        return url;
}

void rs_it_redis_flush(void)
{
        const char *port = rs_it_env("RS_REDIS_PORT");
        redisContext *c = redisConnect("127.0.0.1", atoi(port));
        if (!c || c->err) {
                fprintf(stderr, "integration test: cannot reach Redis on %s\n", port);
                exit(1);
        }
        redisReply *r = redisCommand(c, "FLUSHDB");
        if (r)
                freeReplyObject(r);
        redisFree(c);
}
