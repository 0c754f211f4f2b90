#ifndef RS_LOCALSTACK_H
#define RS_LOCALSTACK_H
/* A throw-away Postgres and Redis for `refstream demo`, in a temp directory on
 * free loopback ports (docs/design.md §5). Postgres comes from Debian's
 * postgresql package (/usr/lib/postgresql/<v>/bin, or $RS_PG_BINDIR); when
 * running as root, initdb and the server run as the `postgres` user. Only the
 * processes started here are stopped, by PID; they also receive a signal when
 * the demo dies abnormally (PR_SET_PDEATHSIG), so none outlives it. */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct rs_localstack {
        char dir[256];
        char pg_bindir[256];
        int pg_port, redis_port;
        pid_t pg_pid, redis_pid;
        uid_t run_uid;
        gid_t run_gid;
        bool drop_privileges;
        char database_url[512];
        char redis_url[128];
} rs_localstack_t;

bool rs_localstack_start(rs_localstack_t *ls, char *errstr, size_t errstr_size);
/* Stops what was started; removes the directory unless keep. */
void rs_localstack_stop(rs_localstack_t *ls, bool keep);

#endif
