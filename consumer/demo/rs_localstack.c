#include "rs_localstack.h"
#include "rs_log.h"
#include "rs_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* A free loopback port: bind port 0, read it back, release it. */
static int free_port(void)
{
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        int port = -1;
        if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
            getsockname(fd, (struct sockaddr *)&a, &len) == 0)
                port = ntohs(a.sin_port);
        if (fd >= 0)
                close(fd);
        return port;
}

static bool find_pg_bindir(rs_localstack_t *ls, char *errstr, size_t errstr_size)
{
        const char *env = getenv("RS_PG_BINDIR");
        if (env && *env) {
                rs_strlcpy(ls->pg_bindir, env, sizeof(ls->pg_bindir));
                return true;
        }
        glob_t g;
        /* Sorted by glob: the last match is the newest major version (two digits). */
        if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0 ||
            g.gl_pathc == 0) {
                snprintf(errstr, errstr_size,
                         "Postgres server binaries not found in "
                         "/usr/lib/postgresql/*/bin (install the postgresql "
                         "package, see scripts/install-deps.sh, or set "
                         "RS_PG_BINDIR)");
                return false;
        }
        rs_strlcpy(ls->pg_bindir, g.gl_pathv[g.gl_pathc - 1], sizeof(ls->pg_bindir));
        *strrchr(ls->pg_bindir, '/') = '\0';
        globfree(&g);
        return true;
}

/* Runs argv (as the stack's user), output appended to log. Foreground: waits
 * and returns 0 on success. Background: returns the pid; the process gets
 * `death_sig` when the demo dies, however it dies, so no server outlives it. */
static pid_t run(const rs_localstack_t *ls, char *const argv[], const char *log, bool bg,
                 int death_sig)
{
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid == 0) {
                /* Drop privileges first: files the servers reopen must be theirs,
                 * and a credential change would clear the death signal. */
                if (ls->drop_privileges &&
                    (setgid(ls->run_gid) != 0 || setuid(ls->run_uid) != 0))
                        _exit(126);
                if (bg &&
                    (prctl(PR_SET_PDEATHSIG, death_sig) != 0 || getppid() != parent))
                        _exit(125);
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
                if (fd >= 0) {
                        dup2(fd, STDOUT_FILENO);
                        dup2(fd, STDERR_FILENO);
                        close(fd);
                }
                setpgid(0, 0); /* a Ctrl-C on the demo must not hit the servers first */
                execv(argv[0], argv);
                _exit(127);
        }
        if (pid < 0 || bg)
                return pid;
        int status = 0;
        pid_t got;
        while ((got = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
                ;
        return got == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void log_tail(const char *path, char *errstr, size_t errstr_size)
{
        FILE *f = fopen(path, "r");
        if (!f)
                return;
        char *text = rs_read_stream(f, NULL);
        fclose(f);
        size_t n = strlen(errstr), len = text ? strlen(text) : 0;
        const char *tail = len > 400 ? text + len - 400 : text;
        if (tail)
                snprintf(errstr + n, errstr_size - n, "; %s says: %s", path, tail);
        free(text);
}

static void stop_child(pid_t *pid, int sig)
{
        if (*pid <= 0)
                return;
        kill(*pid, sig);
        while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
                ;
        *pid = 0;
}

static bool start_pg(rs_localstack_t *ls, char *errstr, size_t errstr_size)
{
        char initdb[300], postgres[300], data[300], log[300], port[16];
        snprintf(initdb, sizeof(initdb), "%s/initdb", ls->pg_bindir);
        snprintf(postgres, sizeof(postgres), "%s/postgres", ls->pg_bindir);
        snprintf(data, sizeof(data), "%s/pg", ls->dir);
        snprintf(log, sizeof(log), "%s/postgres.log", ls->dir);
        char *init_argv[] = {initdb,      "-D", data,   "-A",         "trust",     "-U",
                             "refstream", "-E", "UTF8", "--locale=C", "--no-sync", NULL};
        if (run(ls, init_argv, log, false, 0) != 0) {
                snprintf(errstr, errstr_size, "initdb failed");
                log_tail(log, errstr, errstr_size);
                return false;
        }
        ls->pg_port = free_port();
        snprintf(port, sizeof(port), "%d", ls->pg_port);
        /* The postmaster itself is our child (no pg_ctl), so SIGINT (fast
         * shutdown) reaches it if the demo dies. Durability is not needed. */
        char *pg_argv[] = {postgres,
                           "-D",
                           data,
                           "-p",
                           port,
                           "-k",
                           ls->dir,
                           "-c",
                           "listen_addresses=127.0.0.1",
                           "-c",
                           "fsync=off",
                           "-c",
                           "synchronous_commit=off",
                           "-c",
                           "full_page_writes=off",
                           NULL};
        ls->pg_pid = run(ls, pg_argv, log, true, SIGINT);
        char admin[256];
        snprintf(admin, sizeof(admin), "postgresql://refstream@127.0.0.1:%d/postgres",
                 ls->pg_port);
        for (int i = 0; i < 600 && PQping(admin) != PQPING_OK; i++) {
                if (ls->pg_pid <= 0 || waitpid(ls->pg_pid, NULL, WNOHANG) != 0) {
                        ls->pg_pid = 0;
                        snprintf(errstr, errstr_size, "postgres did not start");
                        log_tail(log, errstr, errstr_size);
                        return false;
                }
                rs_sleep_ms(100);
        }
        PGconn *c = PQconnectdb(admin);
        PGresult *r = PQexec(c, "CREATE DATABASE refstream");
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
                snprintf(errstr, errstr_size, "CREATE DATABASE: %s", PQerrorMessage(c));
        PQclear(r);
        PQfinish(c);
        snprintf(ls->database_url, sizeof(ls->database_url),
                 "postgresql://refstream@127.0.0.1:%d/refstream", ls->pg_port);
        return ok;
}

static bool start_redis(rs_localstack_t *ls, char *errstr, size_t errstr_size)
{
        char port[16], dir[300], log[300];
        ls->redis_port = free_port();
        snprintf(port, sizeof(port), "%d", ls->redis_port);
        snprintf(dir, sizeof(dir), "%s", ls->dir);
        snprintf(log, sizeof(log), "%s/redis.log", ls->dir);
        char *argv[] = {"/usr/bin/redis-server",
                        "--port",
                        port,
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        dir,
                        NULL};
        ls->redis_pid = run(ls, argv, log, true, SIGTERM);
        for (int i = 0; i < 100 && ls->redis_pid > 0; i++) {
                struct timeval tv = {0, 200000};
                redisContext *c =
                    redisConnectWithTimeout("127.0.0.1", ls->redis_port, tv);
                bool up = c && !c->err;
                redisFree(c);
                if (up) {
                        snprintf(ls->redis_url, sizeof(ls->redis_url),
                                 "redis://127.0.0.1:%d/0", ls->redis_port);
                        return true;
                }
                rs_sleep_ms(50);
        }
        snprintf(errstr, errstr_size,
                 "redis-server did not start (is the redis-server package "
                 "installed? see scripts/install-deps.sh)");
        log_tail(log, errstr, errstr_size);
        return false;
}

bool rs_localstack_start(rs_localstack_t *ls, char *errstr, size_t errstr_size)
{
        memset(ls, 0, sizeof(*ls));
        const char *tmp = getenv("TMPDIR");
        snprintf(ls->dir, sizeof(ls->dir), "%s/refstream-demo-XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(ls->dir)) {
                snprintf(errstr, errstr_size, "mkdtemp: %s", strerror(errno));
                return false;
        }
        if (!find_pg_bindir(ls, errstr, errstr_size))
                return false;
        if (geteuid() == 0) {
                /* initdb refuses to run as root. */
                struct passwd *pw = getpwnam("postgres");
                if (!pw) {
                        snprintf(errstr, errstr_size,
                                 "running as root needs the postgres user");
                        return false;
                }
                ls->run_uid = pw->pw_uid;
                ls->run_gid = pw->pw_gid;
                ls->drop_privileges = true;
                if (chown(ls->dir, pw->pw_uid, pw->pw_gid) != 0) {
                        snprintf(errstr, errstr_size, "chown %s: %s", ls->dir,
                                 strerror(errno));
                        return false;
                }
        }
        return start_pg(ls, errstr, errstr_size) && start_redis(ls, errstr, errstr_size);
}

void rs_localstack_stop(rs_localstack_t *ls, bool keep)
{
        stop_child(&ls->pg_pid, SIGINT); /* fast shutdown */
        stop_child(&ls->redis_pid, SIGTERM);
        if (!keep && ls->dir[0]) {
                char *argv[] = {"/bin/rm", "-rf", ls->dir, NULL};
                rs_localstack_t self = {0}; /* rm runs as ourselves */
                run(&self, argv, "/dev/null", false, 0);
        }
}
