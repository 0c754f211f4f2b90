#ifndef CMD_ADMIN_H
#define CMD_ADMIN_H
/* `refstream admin`: the command line over rs_admin.h, shared between
 * cmd_admin.c (dispatch, programs) and cmd_admin_codes.c (codes, reports).
 * Usage errors exit 2 naming the option; runtime failures exit 1. */
#include "rs_admin.h"
#include "rs_cli.h"

/* `refstream admin ...`: the exit code. */
int rs_cmd_admin(int argc, char **argv);

typedef struct rs_admin_cli_cmd {
        const char *name;
        int (*fn)(int argc, char **argv);
        const char *synopsis;
} rs_admin_cli_cmd_t;

/* Runs the subcommand argv[1] of group (e.g. "refstream admin codes"). */
int rs_admin_cli_dispatch(const char *group, const rs_admin_cli_cmd_t *cmds, size_t n,
                          int argc, char **argv);

/* rs_cli_parse, plus at most one positional argument (pos_name, e.g. "KEY";
 * NULL for none) accepted before or after the options. */
int rs_admin_cli_parse(const rs_cli_t *cli, int argc, char **argv, rs_config_t *cfg,
                       const char **pos, const char *pos_name);
/* Prints "COMMAND: message" and the --help hint; returns RS_EXIT_USAGE. */
int rs_admin_cli_usage(const rs_cli_t *cli, const char *fmt, ...) RS_PRINTF(2, 3);
/* Prints "COMMAND: message"; returns RS_EXIT_FAILURE. */
int rs_admin_cli_fail(const rs_cli_t *cli, const char *msg);

/* Option values: an integer, an RFC 3339 time, or `none` (CLEAR). */
bool rs_admin_cli_int(const char *opt, const char *arg, rs_admin_i64_t *out, char *errstr,
                      size_t errstr_size);
bool rs_admin_cli_time(const char *opt, const char *arg, rs_admin_i64_t *out,
                       char *errstr, size_t errstr_size);

/* A database (and cache, when configured) session for one command. */
typedef struct rs_admin_session {
        const rs_cli_t *cli;
        rs_pg_t *pg;
        rs_cache_t *cache;
        rs_admin_t admin;
        const rs_config_t *cfg; /* the command's settings, while it runs */
} rs_admin_session_t;

/* Returns -1 when connected, else the exit code (after printing why). */
int rs_admin_session_open(rs_admin_session_t *s, const rs_cli_t *cli,
                          const rs_config_t *cfg);
void rs_admin_session_close(rs_admin_session_t *s);

/* One command: rs_admin_cli_parse (positional pos_name, NULL for none), then
 * check (NULL for none; checks made before connecting, returning -1 to go on
 * or the exit code), then work in a session; returns the exit code. */
typedef int rs_admin_cli_check_fn(const rs_cli_t *cli, const char *pos, void *ctx);
typedef int rs_admin_cli_work_fn(rs_admin_session_t *s, const char *pos, void *ctx);
int rs_admin_cli_run(const rs_cli_t *cli, int argc, char **argv, const char *pos_name,
                     rs_admin_cli_check_fn *check, rs_admin_cli_work_fn *work, void *ctx);

/* The --json option alone, and its handler (ctx: a bool set to true). */
extern const rs_cli_opt_t rs_admin_json_opt[1];
bool rs_admin_set_json(void *opaque, int idx, const char *arg, char *errstr,
                       size_t errstr_size);

/* Prints j as indented JSON on stdout and releases it; 1 if stdout failed. */
int rs_admin_cli_json(json_t *j);
/* Prints j (NULL: fails with err) with print, or as JSON; returns the exit code. */
int rs_admin_cli_report(const rs_cli_t *cli, json_t *j, bool json, const char *err,
                        void (*print)(FILE *, const json_t *));

int rs_admin_cli_codes(int argc, char **argv);
int rs_admin_cli_stats(int argc, char **argv);
int rs_admin_cli_referrals(int argc, char **argv);
int rs_admin_cli_dlq(int argc, char **argv);

#endif
