/* `refstream admin codes ...`, `admin stats` and `admin referrals`. */
#include "cmd_admin.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- issue */

enum { C_PROGRAM, C_USER, C_CODE, C_MAX_USES, C_EXPIRES };

static const rs_cli_opt_t code_opts[] = {
    [C_PROGRAM] = {"program", true, "K", "program key"},
    [C_USER] = {"user", true, "U", "owner's user id (1-128 bytes)"},
    [C_CODE] =
        {"code", true, "VANITY",
         "vanity code, 4-32 of A-Z 0-9 - _ (case-insensitive; default: generated)"},
    [C_MAX_USES] = {"max-uses", true, "N|none", "uses allowed; none: unlimited, 0: none"},
    [C_EXPIRES] = {"expires-at", true, "T|none", "expiry (RFC 3339); none: never"},
};

typedef struct code_ctx {
        int offset; /* update's table starts at --max-uses */
        const char *program, *user, *vanity;
        rs_admin_code_limits_t limits;
} code_ctx_t;

static bool code_opt(void *opaque, int idx, const char *arg, char *errstr,
                     size_t errstr_size)
{
        code_ctx_t *c = opaque;
        idx += c->offset;
        if (idx == C_PROGRAM)
                c->program = arg;
        else if (idx == C_USER)
                c->user = arg;
        else if (idx == C_CODE)
                c->vanity = arg;
        else if (idx == C_MAX_USES)
                return rs_admin_cli_int("max-uses", arg, &c->limits.max_uses, errstr,
                                        errstr_size);
        else
                return rs_admin_cli_time("expires-at", arg, &c->limits.expires_at, errstr,
                                         errstr_size);
        return true;
}

/* Usage checks of issue, before connecting. */
static int issue_check(const rs_cli_t *cli, const char *none, void *ctx)
{
        const code_ctx_t *c = ctx;
        char err[512], norm[RS_CODE_MAX_LEN + 1];
        const rs_admin_i64_t *m = &c->limits.max_uses;
        if (!c->program)
                return rs_admin_cli_usage(cli, "missing --program");
        if (!c->user)
                return rs_admin_cli_usage(cli, "missing --user");
        if (!rs_admin_user_valid(c->user, err, sizeof(err)))
                return rs_admin_cli_usage(cli, "--user: %s", err);
        if (c->vanity && !rs_admin_vanity_normalize(c->vanity, norm, err, sizeof(err)))
                return rs_admin_cli_usage(cli, "%s", err);
        if (m->state == RS_ADMIN_SET && (m->v < 0 || m->v > INT32_MAX))
                return rs_admin_cli_usage(cli, "--max-uses must be 0..%d", INT32_MAX);
        return -1;
}

static int issue_work(rs_admin_session_t *s, const char *none, void *ctx)
{
        const code_ctx_t *c = ctx;
        char err[1024], code[RS_CODE_MAX_LEN + 1];
        if (!rs_admin_code_issue(&s->admin, c->program, c->user, c->vanity, &c->limits,
                                 code, err, sizeof(err)))
                return rs_admin_cli_fail(s->cli, err);
        printf("%s\n", code);
        return RS_EXIT_OK;
}

static int codes_issue(int argc, char **argv)
{
        code_ctx_t c = {0};
        const rs_cli_t cli = {
            .command = "refstream admin codes issue",
            .usage = "refstream admin codes issue --program K --user U [--code VANITY] "
                     "[--max-uses N] [--expires-at T]\n\nIssues a code and prints it. "
                     "Without --code, an 8-character code is\ngenerated (Crockford "
                     "base32, OS CSPRNG). Issuing into a paused or ended\nprogram works, "
                     "with a warning.",
            .opts = code_opts,
            .nopts = RS_ARRAY_SIZE(code_opts),
            .handler = code_opt,
            .ctx = &c,
            .config_flags = true,
        };
        return rs_admin_cli_run(&cli, argc, argv, NULL, issue_check, issue_work, &c);
}

/* ---------------------------------------------------------------- status */

static int status_work(rs_admin_session_t *s, const char *code, void *ctx)
{
        char err[1024], status[16], norm[RS_CODE_MAX_LEN + 1];
        bool changed = false;
        if (!rs_admin_code_set_status(&s->admin, code, *(const rs_admin_action_t *)ctx,
                                      &changed, status, sizeof(status), err, sizeof(err)))
                return rs_admin_cli_fail(s->cli, err);
        printf("code %s %s %s\n", rs_code_normalize(code, norm, sizeof(norm)),
               changed ? "is now" : "is already", status);
        return RS_EXIT_OK;
}

static int codes_status(int argc, char **argv, rs_admin_action_t action)
{
        static const char *const commands[] = {
            [RS_ADMIN_PAUSE] = "refstream admin codes pause",
            [RS_ADMIN_RESUME] = "refstream admin codes resume",
            [RS_ADMIN_REVOKE] = "refstream admin codes revoke",
        };
        static const char *const usages[] = {
            [RS_ADMIN_PAUSE] = "refstream admin codes pause CODE\n\nSign-ups with the "
                               "code are rejected (CODE_INACTIVE) until resumed.",
            [RS_ADMIN_RESUME] =
                "refstream admin codes resume CODE\n\nReactivates a "
                "paused code (expired or exhausted if its limits passed).",
            [RS_ADMIN_REVOKE] = "refstream admin codes revoke CODE\n\nRevokes the code "
                                "for good; referral history is kept.",
        };
        const rs_cli_t cli = {
            .command = commands[action], .usage = usages[action], .config_flags = true};
        return rs_admin_cli_run(&cli, argc, argv, "CODE", NULL, status_work, &action);
}

static int codes_pause(int argc, char **argv)
{
        return codes_status(argc, argv, RS_ADMIN_PAUSE);
}

static int codes_resume(int argc, char **argv)
{
        return codes_status(argc, argv, RS_ADMIN_RESUME);
}

static int codes_revoke(int argc, char **argv)
{
        return codes_status(argc, argv, RS_ADMIN_REVOKE);
}

/* ---------------------------------------------------------------- update */

static int update_check(const rs_cli_t *cli, const char *code, void *ctx)
{
        const code_ctx_t *c = ctx;
        const rs_admin_i64_t *m = &c->limits.max_uses;
        if (m->state == RS_ADMIN_UNSET && c->limits.expires_at.state == RS_ADMIN_UNSET)
                return rs_admin_cli_usage(cli, "nothing to update: give --max-uses or "
                                               "--expires-at");
        if (m->state == RS_ADMIN_SET && (m->v < 0 || m->v > INT32_MAX))
                return rs_admin_cli_usage(cli, "--max-uses must be 0..%d", INT32_MAX);
        return -1;
}

static int update_work(rs_admin_session_t *s, const char *code, void *ctx)
{
        const code_ctx_t *c = ctx;
        char err[1024], status[16], norm[RS_CODE_MAX_LEN + 1];
        if (!rs_admin_code_update(&s->admin, code, &c->limits, status, sizeof(status),
                                  err, sizeof(err)))
                return rs_admin_cli_fail(s->cli, err);
        printf("code %s updated, status %s\n",
               rs_code_normalize(code, norm, sizeof(norm)), status);
        return RS_EXIT_OK;
}

static int codes_update(int argc, char **argv)
{
        code_ctx_t c = {.offset = C_MAX_USES};
        const rs_cli_t cli = {
            .command = "refstream admin codes update",
            .usage =
                "refstream admin codes update CODE [--max-uses N|none] "
                "[--expires-at T|none]\n\nChanges the limits and re-derives the "
                "status: active, expired (expiry passed) or\nexhausted (uses reached "
                "max-uses). Paused stays paused; revoked cannot change.",
            .opts = code_opts + C_MAX_USES,
            .nopts = RS_ARRAY_SIZE(code_opts) - C_MAX_USES,
            .handler = code_opt,
            .ctx = &c,
            .config_flags = true,
        };
        return rs_admin_cli_run(&cli, argc, argv, "CODE", update_check, update_work, &c);
}

/* ---------------------------------------------------------------- show */

static int show_work(rs_admin_session_t *s, const char *code, void *ctx)
{
        char err[1024];
        json_t *j = rs_admin_code_show(&s->admin, code, err, sizeof(err));
        return rs_admin_cli_report(s->cli, j, *(bool *)ctx, err, rs_admin_print_code);
}

static int codes_show(int argc, char **argv)
{
        bool json = false;
        const rs_cli_t cli = {
            .command = "refstream admin codes show",
            .usage =
                "refstream admin codes show CODE [--json]\n\nJSON fields: code, "
                "program, program_status, owner_user_id, status, vanity,\nuses_count, "
                "max_uses (null: unlimited), expires_at, created_at, updated_at,\n"
                "referrals {total, pending, credited, reversed}.",
            .opts = rs_admin_json_opt,
            .nopts = 1,
            .handler = rs_admin_set_json,
            .ctx = &json,
            .config_flags = true,
        };
        return rs_admin_cli_run(&cli, argc, argv, "CODE", NULL, show_work, &json);
}

/* ---------------------------------------------------------------- backfill */

/* Splits text into trimmed, non-blank lines (in place). Returns the count,
 * or -1 after reporting the first invalid user id (nothing written yet). */
static long split_users(const rs_cli_t *cli, char *text, const char ***out)
{
        size_t cap = 1024, n = 0, line = 0;
        const char **users = rs_malloc(cap * sizeof(char *));
        char err[512];
        for (char *p = text, *next; p; p = next) {
                char *nl = strchr(p, '\n');
                next = nl ? nl + 1 : NULL;
                if (nl)
                        *nl = '\0';
                line++;
                while (isspace((unsigned char)*p))
                        p++;
                size_t len = strlen(p);
                while (len > 0 && isspace((unsigned char)p[len - 1]))
                        p[--len] = '\0';
                if (len == 0)
                        continue;
                if (!rs_admin_user_valid(p, err, sizeof(err))) {
                        rs_admin_cli_usage(cli, "stdin line %zu: %s", line, err);
                        free(users);
                        return -1;
                }
                if (n == cap)
                        users = rs_realloc(users, (cap *= 2) * sizeof(char *));
                users[n++] = p;
        }
        *out = users;
        return (long)n;
}

typedef struct backfill_ctx {
        code_ctx_t opts;
        char *text; /* stdin, split in place into users */
        const char **users;
        size_t n;
} backfill_ctx_t;

/* Reads and checks the user ids, before connecting. */
static int backfill_check(const rs_cli_t *cli, const char *none, void *ctx)
{
        backfill_ctx_t *b = ctx;
        if (!b->opts.program)
                return rs_admin_cli_usage(cli, "missing --program");
        if (!(b->text = rs_read_stream(stdin, NULL)))
                return rs_admin_cli_fail(cli, "cannot read user ids from stdin");
        long n = split_users(cli, b->text, &b->users);
        if (n < 0)
                return RS_EXIT_USAGE;
        b->n = (size_t)n;
        return -1;
}

static int backfill_work(rs_admin_session_t *s, const char *none, void *ctx)
{
        const backfill_ctx_t *b = ctx;
        char err[1024];
        rs_admin_backfill_stats_t st;
        char(*codes)[RS_CODE_MAX_LEN + 1] = rs_malloc((b->n ? b->n : 1) * sizeof(*codes));
        int rc = RS_EXIT_OK;
        if (!rs_admin_backfill(&s->admin, b->opts.program, b->users, b->n, codes, &st,
                               err, sizeof(err))) {
                rc = rs_admin_cli_fail(s->cli, err);
                goto out;
        }
        for (size_t i = 0; i < b->n; i++)
                printf("%s\t%s\n", b->users[i], codes[i]);
        if (fflush(stdout) != 0) {
                rc = rs_admin_cli_fail(s->cli, "cannot write to stdout");
                goto out;
        }
        fprintf(stderr, "%s: %zu lines, %zu users: %zu new codes, %zu existing\n",
                s->cli->command, b->n, st.users, st.created, st.existing);
        if (st.revoked_only)
                fprintf(stderr,
                        "%s: warning: %zu users have only revoked codes (printed, "
                        "not replaced)\n",
                        s->cli->command, st.revoked_only);
out:
        free(codes);
        return rc;
}

static int codes_backfill(int argc, char **argv)
{
        backfill_ctx_t b = {0};
        const rs_cli_t cli = {
            .command = "refstream admin codes backfill",
            .usage = "refstream admin codes backfill --program K < users.txt\n\nReads "
                     "user ids (one per line) and prints USER<TAB>CODE for each line,\n"
                     "creating codes only for users without one in the program (any code "
                     "of theirs,\nnot revoked preferred, then the oldest). Idempotent: a "
                     "second run prints the same.",
            .opts = code_opts,
            .nopts = 1, /* --program */
            .handler = code_opt,
            .ctx = &b.opts,
            .config_flags = true,
        };
        int rc =
            rs_admin_cli_run(&cli, argc, argv, NULL, backfill_check, backfill_work, &b);
        free(b.users);
        free(b.text);
        return rc;
}

/* ---------------------------------------------------------------- reports */

enum { R_USER, R_PROGRAM, R_JSON, R_LIMIT };

typedef struct report_ctx {
        const int *map;      /* the command's option index -> R_* */
        const char *missing; /* usage error unless exactly one --user/--program */
        const char *user, *program;
        bool json;
        int64_t limit;
} report_ctx_t;

static const rs_cli_opt_t report_opts[] = {
    [R_USER] = {"user", true, "U", "user id"},
    [R_PROGRAM] = {"program", true, "K", "program key"},
    [R_JSON] = {"json", false, NULL, "print JSON"},
    [R_LIMIT] = {"limit", true, "N", "most referrals listed (default 100)"},
};

static bool report_opt(void *opaque, int idx, const char *arg, char *errstr,
                       size_t errstr_size)
{
        report_ctx_t *c = opaque;
        idx = c->map[idx];
        if (idx == R_USER)
                c->user = arg;
        else if (idx == R_PROGRAM)
                c->program = arg;
        else if (idx == R_JSON)
                c->json = true;
        else if (!rs_parse_int64(arg, 1, 1000000, &c->limit)) {
                snprintf(errstr, errstr_size, "--limit must be 1..1000000 (got '%s')",
                         arg);
                return false;
        }
        return true;
}

/* Exactly one of --user and --program (referrals has no --program); a
 * malformed --user is a usage error, not "no such user". */
static int report_check(const rs_cli_t *cli, const char *none, void *ctx)
{
        const report_ctx_t *c = ctx;
        char err[256];
        if ((c->user != NULL) == (c->program != NULL))
                return rs_admin_cli_usage(cli, "%s", c->missing);
        if (c->user && !rs_admin_user_valid(c->user, err, sizeof(err)))
                return rs_admin_cli_usage(cli, "--user: %s", err);
        return -1;
}

static int stats_work(rs_admin_session_t *s, const char *none, void *ctx)
{
        const report_ctx_t *c = ctx;
        char err[1024];
        json_t *j = c->user
                        ? rs_admin_stats_user(&s->admin, c->user, err, sizeof(err))
                        : rs_admin_stats_program(&s->admin, c->program, err, sizeof(err));
        return rs_admin_cli_report(s->cli, j, c->json, err,
                                   c->user ? rs_admin_print_stats_user
                                           : rs_admin_print_stats_program);
}

int rs_admin_cli_stats(int argc, char **argv)
{
        static const int map[] = {R_USER, R_PROGRAM, R_JSON};
        report_ctx_t c = {.map = map,
                          .missing = "give exactly one of --user and --program"};
        const rs_cli_t cli = {
            .command = "refstream admin stats",
            .usage = "refstream admin stats (--user U | --program K) [--json]\n\n"
                     "--program: codes, referrals by status, credits by role, rejections "
                     "by reason\nand the 10 most recent, top referrers with goal "
                     "progress.\n--user: codes, referrals and goal progress as referrer, "
                     "credits received,\nwho referred the user, recent rejections. JSON "
                     "field names are documented in\nrs_admin_stats.c and stable.",
            .opts = report_opts,
            .nopts = 3,
            .handler = report_opt,
            .ctx = &c,
            .config_flags = true,
        };
        return rs_admin_cli_run(&cli, argc, argv, NULL, report_check, stats_work, &c);
}

static int referrals_work(rs_admin_session_t *s, const char *none, void *ctx)
{
        const report_ctx_t *c = ctx;
        char err[1024];
        json_t *j = rs_admin_referrals(&s->admin, c->user, c->limit, err, sizeof(err));
        return rs_admin_cli_report(s->cli, j, c->json, err, rs_admin_print_referrals);
}

/* ---------------------------------------------------------------- review */

typedef struct review_ctx {
        bool cancel;
        const char *reason, *actor;
} review_ctx_t;

static bool review_opt(void *opaque, int idx, const char *arg, char *errstr,
                       size_t errstr_size)
{
        review_ctx_t *c = opaque;
        if (idx == 0)
                c->reason = arg;
        else
                c->actor = arg;
        return true;
}

static int review_check(const rs_cli_t *cli, const char *id, void *ctx)
{
        review_ctx_t *c = ctx;
        if (!id)
                return rs_admin_cli_usage(cli, "missing REFERRAL_ID");
        if (!c->actor || !*c->actor)
                c->actor = getenv("USER");
        if (!c->actor || !*c->actor)
                return rs_admin_cli_usage(cli, "--actor is required when $USER is unset");
        return -1;
}

static int review_work(rs_admin_session_t *s, const char *id, void *ctx)
{
        const review_ctx_t *c = ctx;
        char err[1024];
        if (!rs_admin_referral_review(&s->admin, id, c->cancel, c->actor, c->reason, err,
                                      sizeof(err)))
                return rs_admin_cli_fail(s->cli, err);
        if (c->cancel)
                printf("referral %s cancelled by %s: its held credits are cancelled, "
                       "nothing is published\n",
                       id, c->actor);
        else
                printf("referral %s released by %s: the housekeeping of a running "
                       "processor issues and publishes its credits\n",
                       id, c->actor);
        return RS_EXIT_OK;
}

static int referrals_review(int argc, char **argv, bool cancel)
{
        static const rs_cli_opt_t opts[] = {
            {"reason", true, "TEXT", "why (recorded in the audit trail)"},
            {"actor", true, "NAME", "who (default: $USER)"},
        };
        review_ctx_t c = {.cancel = cancel};
        const rs_cli_t cli = {
            .command = cancel ? "refstream admin referrals cancel"
                              : "refstream admin referrals release",
            .usage = cancel
                         ? "refstream admin referrals cancel REFERRAL_ID [--reason TEXT] "
                           "[--actor NAME]\n\n"
                           "Cancels a held referral: its credits become cancelled and "
                           "are never published.\nRecorded with who and why; shown by "
                           "'admin referrals --user'."
                         : "refstream admin referrals release REFERRAL_ID [--reason "
                           "TEXT] [--actor NAME]\n\n"
                           "Releases a held referral now, before its hold ends: the "
                           "housekeeping of a\nrunning processor (every "
                           "REFSTREAM_OUTBOX_SWEEP_INTERVAL_MS) issues its credits\n"
                           "and publishes ReferralCredited. Recorded with who and why.",
            .opts = opts,
            .nopts = RS_ARRAY_SIZE(opts),
            .handler = review_opt,
            .ctx = &c,
            .config_flags = true,
        };
        return rs_admin_cli_run(&cli, argc, argv, "REFERRAL_ID", review_check,
                                review_work, &c);
}

int rs_admin_cli_referrals(int argc, char **argv)
{
        if (argc >= 2 && strcmp(argv[1], "release") == 0)
                return referrals_review(argc - 1, argv + 1, false);
        if (argc >= 2 && strcmp(argv[1], "cancel") == 0)
                return referrals_review(argc - 1, argv + 1, true);
        static const int map[] = {R_USER, R_JSON, R_LIMIT};
        static const rs_cli_opt_t opts[] = {
            {"user", true, "U", "user id"},
            {"json", false, NULL, "print JSON"},
            {"limit", true, "N", "most referrals listed (default 100)"},
        };
        report_ctx_t c = {.map = map, .missing = "missing --user", .limit = 100};
        const rs_cli_t cli = {
            .command = "refstream admin referrals",
            .usage = "refstream admin referrals --user U [--limit N] [--json]\n"
                     "refstream admin referrals release|cancel REFERRAL_ID [--reason "
                     "TEXT] [--actor NAME]\n\n"
                     "Referrals where U is referrer or referee, newest first, with their "
                     "credits;\nreferrals through codes revoked since are included "
                     "(code_status says so).",
            .opts = opts,
            .nopts = RS_ARRAY_SIZE(opts),
            .handler = report_opt,
            .ctx = &c,
            .config_flags = true,
        };
        return rs_admin_cli_run(&cli, argc, argv, NULL, report_check, referrals_work, &c);
}

int rs_admin_cli_codes(int argc, char **argv)
{
        static const rs_admin_cli_cmd_t cmds[] = {
            {"issue", codes_issue, "issue a code to a user (prints it)"},
            {"pause", codes_pause, "pause an active code"},
            {"resume", codes_resume, "resume a paused code"},
            {"revoke", codes_revoke, "revoke a code (final)"},
            {"update", codes_update, "change max-uses / expires-at"},
            {"show", codes_show, "show one code"},
            {"backfill", codes_backfill, "codes for many users (ids on stdin)"},
        };
        return rs_admin_cli_dispatch("refstream admin codes", cmds, RS_ARRAY_SIZE(cmds),
                                     argc, argv);
}
