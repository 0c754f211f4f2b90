/* `refstream admin`: dispatch, shared command-line plumbing, and the
 * `program` commands. */
#include "cmd_admin.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static const char admin_synopsis[] =
    "refstream admin program create --key K --name N --currency USD\n"
    "        (--reward-fixed MINOR | --reward-percent BPS) [--reward-cap MINOR]\n"
    "        [--referee-reward MINOR] [--min-payment MINOR] [--window-days N]\n"
    "        [--goal N] [--max-rewarded N] [--starts-at T] [--ends-at T]\n"
    "        [--hold-days N] [--max-referrals-per-day N]\n"
    "refstream admin program update K [same options; 'none' clears reward-cap,\n"
    "        referee-reward, max-rewarded, starts-at, ends-at, max-referrals-per-day]\n"
    "refstream admin program pause K | resume K | end K\n"
    "refstream admin program list [--json] | show K [--json]\n"
    "refstream admin codes issue --program K --user U [--code VANITY] [--max-uses N]\n"
    "        [--expires-at T]\n"
    "refstream admin codes pause CODE | resume CODE | revoke CODE\n"
    "refstream admin codes update CODE [--max-uses N|none] [--expires-at T|none]\n"
    "refstream admin codes show CODE [--json]\n"
    "refstream admin codes backfill --program K  < user ids, one per line\n"
    "refstream admin stats (--user U | --program K) [--json]\n"
    "refstream admin referrals --user U [--limit N] [--json]\n"
    "refstream admin referrals release|cancel REFERRAL_ID [--reason TEXT] [--actor A]\n"
    "refstream admin dlq list [--class C] [--topic T] [--limit N] [--json]\n"
    "refstream admin dlq redrive [--class C] [--topic T] [--dry-run]\n"
    "\n"
    "Money is in minor units, times are RFC 3339. Every command takes --help and the\n"
    "settings flags (--database-url, --redis-url, ...; see 'refstream consume --help').\n"
    "Exit codes: 0 ok, 1 runtime failure, 2 usage error.\n";

/* ---------------------------------------------------------------- plumbing */

int rs_admin_cli_usage(const rs_cli_t *cli, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s: ", cli->command);
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\nTry '%s --help'.\n", cli->command);
        va_end(ap);
        return RS_EXIT_USAGE;
}

int rs_admin_cli_fail(const rs_cli_t *cli, const char *msg)
{
        fprintf(stderr, "%s: %s\n", cli->command, msg);
        return RS_EXIT_FAILURE;
}

static void group_usage(FILE *out, const char *group, const rs_admin_cli_cmd_t *cmds,
                        size_t n)
{
        fprintf(out, "Usage: %s COMMAND ...\n\nCommands:\n", group);
        for (size_t i = 0; i < n; i++)
                fprintf(out, "  %-10s %s\n", cmds[i].name, cmds[i].synopsis);
        fprintf(out, "\n'%s COMMAND --help' describes a command.\n", group);
}

int rs_admin_cli_dispatch(const char *group, const rs_admin_cli_cmd_t *cmds, size_t n,
                          int argc, char **argv)
{
        if (argc < 2) {
                fprintf(stderr, "%s: missing command\n", group);
                group_usage(stderr, group, cmds, n);
                return RS_EXIT_USAGE;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
            strcmp(argv[1], "help") == 0) {
                group_usage(stdout, group, cmds, n);
                return RS_EXIT_OK;
        }
        for (size_t i = 0; i < n; i++) {
                if (strcmp(argv[1], cmds[i].name) == 0)
                        return cmds[i].fn(argc - 1, argv + 1);
        }
        fprintf(stderr, "%s: unknown command '%s'\n", group, argv[1]);
        group_usage(stderr, group, cmds, n);
        return RS_EXIT_USAGE;
}

int rs_admin_cli_parse(const rs_cli_t *cli, int argc, char **argv, rs_config_t *cfg,
                       const char **pos, const char *pos_name)
{
        /* getopt stops at the first non-option, so a leading positional
         * (`update K --name N`) is taken out before parsing. */
        char **args = rs_malloc((size_t)(argc + 1) * sizeof(char *));
        int n = 0, first = 0;
        *pos = NULL;
        for (int i = 0; i < argc; i++) {
                if (i == 1 && pos_name && argv[i][0] != '-')
                        *pos = argv[i];
                else
                        args[n++] = argv[i];
        }
        args[n] = NULL;
        int rc = rs_cli_parse(cli, n, args, cfg, &first);
        if (rc < 0 && pos_name && !*pos && first < n)
                *pos = args[first++];
        if (rc < 0 && first < n)
                rc = rs_admin_cli_usage(cli, "unexpected argument '%s'", args[first]);
        else if (rc < 0 && pos_name && !*pos)
                rc = rs_admin_cli_usage(cli, "missing %s", pos_name);
        free(args);
        return rc;
}

bool rs_admin_cli_int(const char *opt, const char *arg, rs_admin_i64_t *out, char *errstr,
                      size_t errstr_size)
{
        if (strcmp(arg, "none") == 0) {
                out->state = RS_ADMIN_CLEAR;
                return true;
        }
        if (!rs_parse_int64(arg, INT64_MIN, INT64_MAX, &out->v)) {
                snprintf(errstr, errstr_size, "--%s: '%s' is not an integer", opt, arg);
                return false;
        }
        out->state = RS_ADMIN_SET;
        return true;
}

bool rs_admin_cli_time(const char *opt, const char *arg, rs_admin_i64_t *out,
                       char *errstr, size_t errstr_size)
{
        if (strcmp(arg, "none") == 0) {
                out->state = RS_ADMIN_CLEAR;
                return true;
        }
        if (!rs_parse_rfc3339(arg, &out->v)) {
                snprintf(errstr, errstr_size,
                         "--%s: '%s' is not an RFC 3339 time (e.g. 2026-01-02T03:04:05Z)",
                         opt, arg);
                return false;
        }
        out->state = RS_ADMIN_SET;
        return true;
}

static void warn_stderr(void *opaque, const char *msg)
{
        fprintf(stderr, "%s: warning: %s\n", (const char *)opaque, msg);
}

int rs_admin_session_open(rs_admin_session_t *s, const rs_cli_t *cli,
                          const rs_config_t *cfg)
{
        char err[1024];
        memset(s, 0, sizeof(*s));
        s->cli = cli;
        s->cfg = cfg;
        s->pg = rs_pg_new(cfg->database_url, cfg->pg_statement_timeout_ms);
        if (!rs_pg_connect(s->pg, err, sizeof(err)))
                return rs_admin_cli_fail(cli, err);
        int have = 0;
        switch (rs_pg_schema_check(s->pg, &have, err, sizeof(err))) {
        case RS_SCHEMA_OK:
                break;
        case RS_SCHEMA_BEHIND:
                snprintf(err, sizeof(err),
                         "the database schema is at version %d, this refstream needs %d: "
                         "run `refstream migrate` first",
                         have, rs_pg_schema_expected());
                return rs_admin_cli_fail(cli, err);
        case RS_SCHEMA_MODIFIED:
        case RS_SCHEMA_ERROR:
                return rs_admin_cli_fail(cli, err);
        }
        /* An empty URL disables the cache: nothing to invalidate. */
        if (cfg->redis_url && *cfg->redis_url) {
                s->cache = rs_cache_new(cfg->redis_url, cfg->cache_ttl_ms,
                                        cfg->cache_negative_ttl_ms, cfg->redis_timeout_ms,
                                        err, sizeof(err));
                if (!s->cache)
                        return rs_admin_cli_usage(cli, "%s", err);
        }
        s->admin = (rs_admin_t){.pg = s->pg,
                                .cache = s->cache,
                                .cache_ttl_ms = cfg->cache_ttl_ms,
                                .warn = warn_stderr,
                                .warn_opaque = (void *)cli->command};
        return -1;
}

void rs_admin_session_close(rs_admin_session_t *s)
{
        rs_cache_destroy(s->cache);
        rs_pg_destroy(s->pg);
        memset(s, 0, sizeof(*s));
}

int rs_admin_cli_run(const rs_cli_t *cli, int argc, char **argv, const char *pos_name,
                     rs_admin_cli_check_fn *check, rs_admin_cli_work_fn *work, void *ctx)
{
        rs_config_t cfg;
        rs_admin_session_t s = {0};
        const char *pos;
        int rc = rs_admin_cli_parse(cli, argc, argv, &cfg, &pos, pos_name);
        if (rc < 0 && check)
                rc = check(cli, pos, ctx);
        if (rc < 0 && (rc = rs_admin_session_open(&s, cli, &cfg)) < 0)
                rc = work(&s, pos, ctx);
        rs_admin_session_close(&s);
        rs_config_free(&cfg);
        return rc;
}

int rs_admin_cli_json(json_t *j)
{
        int rc =
            json_dumpf(j, stdout, JSON_INDENT(2)) == 0 ? RS_EXIT_OK : RS_EXIT_FAILURE;
        fputc('\n', stdout);
        json_decref(j);
        return fflush(stdout) == 0 ? rc : RS_EXIT_FAILURE;
}

int rs_admin_cli_report(const rs_cli_t *cli, json_t *j, bool json, const char *err,
                        void (*print)(FILE *, const json_t *))
{
        if (!j)
                return rs_admin_cli_fail(cli, err);
        if (json)
                return rs_admin_cli_json(j);
        print(stdout, j);
        json_decref(j);
        return RS_EXIT_OK;
}

/* ---------------------------------------------------------------- program */

enum {
        O_KEY,
        O_NAME,
        O_CURRENCY,
        O_FIXED,
        O_PERCENT,
        O_CAP,
        O_REFEREE,
        O_MIN,
        O_WINDOW,
        O_GOAL,
        O_MAXREW,
        O_STARTS,
        O_ENDS,
        O_HOLD,
        O_VELOCITY,
};

static const rs_cli_opt_t program_opts[] = {
    [O_KEY] = {"key", true, "K", "program key: 1-64 of A-Z a-z 0-9 _ . - (create only)"},
    [O_NAME] = {"name", true, "NAME", "display name, 1-200 characters"},
    [O_CURRENCY] = {"currency", true, "CUR", "ISO 4217 code, 3 upper-case letters"},
    [O_FIXED] = {"reward-fixed", true, "MINOR", "referrer reward: fixed, minor units"},
    [O_PERCENT] = {"reward-percent", true, "BPS",
                   "referrer reward: basis points of the payment, 0..10000"},
    [O_CAP] = {"reward-cap", true, "MINOR|none", "cap of one referrer reward"},
    [O_REFEREE] = {"referee-reward", true, "MINOR|none",
                   "referee reward (double-sided); none: single-sided"},
    [O_MIN] = {"min-payment", true, "MINOR", "minimum qualifying payment (default 0)"},
    [O_WINDOW] = {"window-days", true, "N", "attribution window, 1..3650 (default 30)"},
    [O_GOAL] = {"goal", true, "N", "referral goal per referrer, >= 1 (default 10)"},
    [O_MAXREW] = {"max-rewarded", true, "N|none",
                  "cap of rewarded referrals per referrer"},
    [O_STARTS] = {"starts-at", true, "T|none", "start (RFC 3339)"},
    [O_ENDS] = {"ends-at", true, "T|none", "end (RFC 3339), after the start"},
    [O_HOLD] = {"hold-days", true, "N",
                "days credits are held before they are issued, 0..3650 (default 0)"},
    [O_VELOCITY] = {"max-referrals-per-day", true, "N|none",
                    "referrals per referrer in 24 hours (default none)"},
};

#define PF(f) offsetof(rs_admin_program_t, f)
static const size_t program_fields[] = {
    [O_FIXED] = PF(reward_fixed), [O_PERCENT] = PF(reward_percent),
    [O_CAP] = PF(reward_cap),     [O_REFEREE] = PF(referee_reward),
    [O_MIN] = PF(min_payment),    [O_WINDOW] = PF(window_days),
    [O_GOAL] = PF(goal),          [O_MAXREW] = PF(max_rewarded),
    [O_STARTS] = PF(starts_at),   [O_ENDS] = PF(ends_at),
    [O_HOLD] = PF(hold_days),     [O_VELOCITY] = PF(max_per_day),
};

typedef struct program_ctx {
        int offset; /* 1 for update: its option table starts after --key */
        const char *key;
        rs_admin_program_t p;
} program_ctx_t;

static bool program_opt(void *opaque, int idx, const char *arg, char *errstr,
                        size_t errstr_size)
{
        program_ctx_t *c = opaque;
        idx += c->offset;
        if (idx == O_KEY)
                c->key = arg;
        else if (idx == O_NAME)
                c->p.name = arg;
        else if (idx == O_CURRENCY)
                c->p.currency = arg;
        else {
                rs_admin_i64_t *f =
                    (rs_admin_i64_t *)((char *)&c->p + program_fields[idx]);
                return idx == O_STARTS || idx == O_ENDS
                           ? rs_admin_cli_time(program_opts[idx].name, arg, f, errstr,
                                               errstr_size)
                           : rs_admin_cli_int(program_opts[idx].name, arg, f, errstr,
                                              errstr_size);
        }
        return true;
}

/* Validates a create (update: key positional), so that every usage error is
 * reported before connecting. */
static int program_check(const rs_cli_t *cli, const char *pos, void *ctx)
{
        program_ctx_t *c = ctx;
        bool create = !c->offset;
        char err[512];
        if (!create)
                c->key = pos;
        if (create && !c->key)
                return rs_admin_cli_usage(cli, "missing --key");
        if (create && !rs_admin_program_key_valid(c->key))
                return rs_admin_cli_usage(cli,
                                          "--key must be 1-64 characters of A-Z a-z 0-9 "
                                          "_ . - starting with a letter or digit");
        if (!rs_admin_program_validate(&c->p, create, err, sizeof(err)))
                return rs_admin_cli_usage(cli, "%s", err);
        return -1;
}

static int program_save(rs_admin_session_t *s, const char *pos, void *ctx)
{
        const program_ctx_t *c = ctx;
        bool create = !c->offset;
        char err[1024];
        bool ok =
            create ? rs_admin_program_create(&s->admin, c->key, &c->p, err, sizeof(err))
                   : rs_admin_program_update(&s->admin, c->key, &c->p, err, sizeof(err));
        if (!ok)
                return rs_admin_cli_fail(s->cli, err);
        printf(create ? "%s\n" : "program %s updated\n", c->key);
        return RS_EXIT_OK;
}

static int program_write(int argc, char **argv, bool create)
{
        program_ctx_t c = {.offset = create ? 0 : 1};
        const rs_cli_t cli = {
            .command = create ? "refstream admin program create"
                              : "refstream admin program update",
            .usage = create
                         ? "refstream admin program create --key K --name N --currency "
                           "CUR (--reward-fixed MINOR | --reward-percent BPS) "
                           "[OPTIONS]\n\nCreates an active program and prints its key."
                         : "refstream admin program update K [OPTIONS]\n\nChanges the "
                           "given fields only; 'none' clears an optional one.",
            .opts = program_opts + c.offset,
            .nopts = RS_ARRAY_SIZE(program_opts) - (size_t)c.offset,
            .handler = program_opt,
            .ctx = &c,
            .config_flags = true,
        };
        return rs_admin_cli_run(&cli, argc, argv, create ? NULL : "KEY", program_check,
                                program_save, &c);
}

static int program_create(int argc, char **argv)
{
        return program_write(argc, argv, true);
}

static int program_update(int argc, char **argv)
{
        return program_write(argc, argv, false);
}

static int program_set_status(rs_admin_session_t *s, const char *key, void *ctx)
{
        static const char *const done[] = {[RS_ADMIN_PAUSE] = "paused",
                                           [RS_ADMIN_RESUME] = "active",
                                           [RS_ADMIN_END] = "ended"};
        rs_admin_action_t action = *(const rs_admin_action_t *)ctx;
        char err[1024];
        bool changed = false;
        if (!rs_admin_program_set_status(&s->admin, key, action, &changed, err,
                                         sizeof(err)))
                return rs_admin_cli_fail(s->cli, err);
        printf("program %s %s %s\n", key, changed ? "is now" : "is already",
               done[action]);
        return RS_EXIT_OK;
}

static int program_status(int argc, char **argv, rs_admin_action_t action)
{
        static const char *const commands[] = {
            [RS_ADMIN_PAUSE] = "refstream admin program pause",
            [RS_ADMIN_RESUME] = "refstream admin program resume",
            [RS_ADMIN_END] = "refstream admin program end",
        };
        static const char *const usages[] = {
            [RS_ADMIN_PAUSE] = "refstream admin program pause K\n\nStops accepting "
                               "sign-ups and crediting payments until resumed.",
            [RS_ADMIN_RESUME] = "refstream admin program resume K\n\nMakes a paused "
                                "program active again (an ended one cannot be).",
            [RS_ADMIN_END] = "refstream admin program end K\n\nEnds the program for "
                             "good; ended is final.",
        };
        const rs_cli_t cli = {
            .command = commands[action], .usage = usages[action], .config_flags = true};
        return rs_admin_cli_run(&cli, argc, argv, "KEY", NULL, program_set_status,
                                &action);
}

static int program_pause(int argc, char **argv)
{
        return program_status(argc, argv, RS_ADMIN_PAUSE);
}

static int program_resume(int argc, char **argv)
{
        return program_status(argc, argv, RS_ADMIN_RESUME);
}

static int program_end(int argc, char **argv)
{
        return program_status(argc, argv, RS_ADMIN_END);
}

const rs_cli_opt_t rs_admin_json_opt[1] = {{"json", false, NULL, "print JSON"}};

bool rs_admin_set_json(void *opaque, int idx, const char *arg, char *errstr,
                       size_t errstr_size)
{
        *(bool *)opaque = true;
        return true;
}

#define PROGRAM_FIELDS_DOC                                                               \
        "JSON fields: key, name, status (active|paused|ended), currency, reward_kind\n"  \
        "(fixed|percent), reward_value (minor units or bps), reward_cap, "               \
        "referee_reward,\n"                                                              \
        "min_payment, window_days, referral_goal, max_rewarded, starts_at, ends_at,\n"   \
        "hold_days, max_referrals_per_day,\n"                                            \
        "created_at, updated_at (null when absent; times RFC 3339 UTC)."

typedef struct program_read_ctx {
        bool list, json;
} program_read_ctx_t;

static int program_print(rs_admin_session_t *s, const char *key, void *ctx)
{
        const program_read_ctx_t *c = ctx;
        char err[1024];
        json_t *j = c->list ? rs_admin_program_list(&s->admin, err, sizeof(err))
                            : rs_admin_program_show(&s->admin, key, err, sizeof(err));
        return rs_admin_cli_report(s->cli, j, c->json, err,
                                   c->list ? rs_admin_print_program_list
                                           : rs_admin_print_program);
}

static int program_read(int argc, char **argv, bool list)
{
        program_read_ctx_t c = {.list = list};
        const rs_cli_t cli = {
            .command =
                list ? "refstream admin program list" : "refstream admin program show",
            .usage =
                list ? "refstream admin program list [--json]\n\nAll programs, by key "
                       "(--json: an array).\n" PROGRAM_FIELDS_DOC
                     : "refstream admin program show K [--json]\n\n" PROGRAM_FIELDS_DOC,
            .opts = rs_admin_json_opt,
            .nopts = 1,
            .handler = rs_admin_set_json,
            .ctx = &c.json,
            .config_flags = true,
        };
        return rs_admin_cli_run(&cli, argc, argv, list ? NULL : "KEY", NULL,
                                program_print, &c);
}

static int program_show(int argc, char **argv)
{
        return program_read(argc, argv, false);
}

static int program_list(int argc, char **argv)
{
        return program_read(argc, argv, true);
}

static int program_group(int argc, char **argv)
{
        static const rs_admin_cli_cmd_t cmds[] = {
            {"create", program_create, "create a program (prints its key)"},
            {"update", program_update, "change a program's settings"},
            {"pause", program_pause, "pause a program"},
            {"resume", program_resume, "resume a paused program"},
            {"end", program_end, "end a program (final)"},
            {"list", program_list, "list the programs"},
            {"show", program_show, "show one program"},
        };
        return rs_admin_cli_dispatch("refstream admin program", cmds, RS_ARRAY_SIZE(cmds),
                                     argc, argv);
}

int rs_cmd_admin(int argc, char **argv)
{
        static const rs_admin_cli_cmd_t groups[] = {
            {"program", program_group, "create, update, pause, resume, end, list, show"},
            {"codes", rs_admin_cli_codes,
             "issue, pause, resume, revoke, update, show, backfill"},
            {"stats", rs_admin_cli_stats, "referrals, credits, goals, rejections"},
            {"referrals", rs_admin_cli_referrals,
             "referral history of a user; release or cancel a held referral"},
            {"dlq", rs_admin_cli_dlq, "list and redrive dead letters"},
        };
        if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
                          strcmp(argv[1], "help") == 0)) {
                printf("Usage:\n%s", admin_synopsis);
                return RS_EXIT_OK;
        }
        return rs_admin_cli_dispatch("refstream admin", groups, RS_ARRAY_SIZE(groups),
                                     argc, argv);
}
