/* `refstream admin dlq list|redrive` (docs/commands.md §4): the command line
 * over rs_admin_dlq.h. */
#include "cmd_admin.h"
#include "rs_admin_dlq.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The error classes of docs/events.md §5. */
static const char *const classes[] = {
    "too_large",   "bad_framing",   "unknown_schema", "wrong_schema",     "avro_decode",
    "json_decode", "missing_field", "invalid_field",  "processing_error",
};

enum { D_CLASS, D_TOPIC, D_LIMIT, D_JSON, D_DRY_RUN };

typedef struct dlq_ctx {
        const int *map; /* the command's option index -> D_* */
        rs_admin_dlq_filter_t f;
        bool json, dry_run;
} dlq_ctx_t;

static bool dlq_opt(void *opaque, int idx, const char *arg, char *errstr,
                    size_t errstr_size)
{
        dlq_ctx_t *c = opaque;
        switch (c->map[idx]) {
        case D_CLASS:
                for (size_t i = 0; i < RS_ARRAY_SIZE(classes); i++)
                        if (strcmp(arg, classes[i]) == 0) {
                                c->f.error_class = arg;
                                return true;
                        }
                snprintf(errstr, errstr_size,
                         "--class: '%s' is not an error class (too_large, bad_framing, "
                         "unknown_schema, wrong_schema, avro_decode, json_decode, "
                         "missing_field, invalid_field, processing_error)",
                         arg);
                return false;
        case D_TOPIC:
                c->f.source_topic = arg;
                return true;
        case D_LIMIT:
                if (!rs_parse_int64(arg, 1, 1000000, &c->f.limit)) {
                        snprintf(errstr, errstr_size,
                                 "--limit must be 1..1000000 (got '%s')", arg);
                        return false;
                }
                return true;
        case D_JSON:
                c->json = true;
                return true;
        default:
                c->dry_run = true;
                return true;
        }
}

static const char *actor(char *buf, size_t size)
{
        const char *user = getenv("USER");
        char host[256] = "";
        if (gethostname(host, sizeof(host)) != 0)
                host[0] = '\0';
        host[sizeof(host) - 1] = '\0';
        snprintf(buf, size, "%s@%s", user && *user ? user : "unknown",
                 *host ? host : "localhost");
        return buf;
}

static int list_work(rs_admin_session_t *s, const char *none, void *ctx)
{
        const dlq_ctx_t *c = ctx;
        char err[1024], who[300];
        rs_admin_dlq_t *d = rs_admin_dlq_new(s->cfg, s->pg, actor(who, sizeof(who)));
        json_t *j = rs_admin_dlq_list(d, &c->f, err, sizeof(err));
        int rc = rs_admin_cli_report(s->cli, j, c->json, err, rs_admin_print_dlq_list);
        rs_admin_dlq_destroy(d);
        return rc;
}

static int redrive_work(rs_admin_session_t *s, const char *none, void *ctx)
{
        const dlq_ctx_t *c = ctx;
        char err[1024], who[300];
        rs_admin_dlq_summary_t sum;
        rs_admin_dlq_t *d = rs_admin_dlq_new(s->cfg, s->pg, actor(who, sizeof(who)));
        bool ok =
            rs_admin_dlq_redrive(d, &c->f, c->dry_run, stdout, &sum, err, sizeof(err));
        rs_admin_dlq_destroy(d);
        if (sum.found || sum.resent || sum.unsolved)
                printf("interrupted redrive: %zu found sent, %zu sent again, %zu left "
                       "claimed\n",
                       sum.found, sum.resent, sum.unsolved);
        if (ok || sum.selected) /* not after a failure to start */
                printf("%zu selected: %zu %s, %zu already redriven, %zu skipped%s\n",
                       sum.selected, sum.sent, c->dry_run ? "would be sent" : "sent",
                       sum.already, sum.skipped,
                       c->dry_run ? " (dry run: nothing changed)" : "");
        if (fflush(stdout) != 0)
                return rs_admin_cli_fail(s->cli, "cannot write to stdout");
        return ok ? RS_EXIT_OK : rs_admin_cli_fail(s->cli, err);
}

static const rs_cli_opt_t dlq_opts[] = {
    [D_CLASS] = {"class", true, "C", "only dead letters of this error class"},
    [D_TOPIC] = {"topic", true, "T", "only dead letters from this source topic"},
    [D_LIMIT] = {"limit", true, "N", "list at most N (1..1000000)"},
    [D_JSON] = {"json", false, NULL, "print JSON"},
    [D_DRY_RUN] = {"dry-run", false, NULL, "say what would be sent; change nothing"},
};

static int dlq_list(int argc, char **argv)
{
        static const int map[] = {D_CLASS, D_TOPIC, D_LIMIT, D_JSON};
        dlq_ctx_t c = {.map = map};
        const rs_cli_t cli = {
            .command = "refstream admin dlq list",
            .usage =
                "refstream admin dlq list [--class C] [--topic T] [--limit N] "
                "[--json]\n\n"
                "The dead letters on the DLQ topic (REFSTREAM_TOPIC_DLQ), every "
                "partition "
                "from its\nbeginning to its end when the command starts, in partition "
                "and "
                "offset order,\neach with its source topic/partition/offset, error class "
                "and message, key, size,\na preview of its first 48 bytes (escaped) and "
                "whether it was redriven. Reads\nwithout a consumer group; commits "
                "nothing.\nJSON: an array of objects with dlq_topic, dlq_partition, "
                "dlq_offset,\nsource_topic, source_partition, source_offset, "
                "error_class, "
                "error_message,\nevent_type, key (escaped text), key_hex, value_bytes, "
                "preview, value_hex (every\nbyte of the value, hexadecimal), redriven "
                "(null, \"claimed\" or \"sent\").",
            .opts = dlq_opts,
            .nopts = RS_ARRAY_SIZE(map),
            .handler = dlq_opt,
            .ctx = &c,
            .config_flags = true,
        };
        return rs_admin_cli_run(&cli, argc, argv, NULL, NULL, list_work, &c);
}

static int dlq_redrive(int argc, char **argv)
{
        static const int map[] = {D_CLASS, D_TOPIC, D_DRY_RUN};
        /* Automatic: copies of static elements are not constant initializers. */
        const rs_cli_opt_t opts[] = {dlq_opts[D_CLASS], dlq_opts[D_TOPIC],
                                     dlq_opts[D_DRY_RUN]};
        dlq_ctx_t c = {.map = map};
        const rs_cli_t cli = {
            .command = "refstream admin dlq redrive",
            .usage =
                "refstream admin dlq redrive [--class C] [--topic T] [--dry-run]\n\n"
                "Sends the selected dead letters back to their source topic and "
                "partition: the\noriginal key and bytes, with the header "
                "refstream_redriven_from=DLQTOPIC/PARTITION/OFFSET.\nEach dead letter is "
                "sent back once, however often this runs or wherever a run\nstopped "
                "(Postgres records the positions sent). One run at a time: a second "
                "one\nexits 1. Dead letters without source headers, or from a topic that "
                "is not an\ninput topic of the configuration, are skipped with the "
                "reason. Fix the cause\nfirst: a record that still fails is "
                "dead-lettered again, as a new dead letter.",
            .opts = opts,
            .nopts = RS_ARRAY_SIZE(opts),
            .handler = dlq_opt,
            .ctx = &c,
            .config_flags = true,
        };
        return rs_admin_cli_run(&cli, argc, argv, NULL, NULL, redrive_work, &c);
}

int rs_admin_cli_dlq(int argc, char **argv)
{
        static const rs_admin_cli_cmd_t cmds[] = {
            {"list", dlq_list, "show the dead letters"},
            {"redrive", dlq_redrive, "send dead letters back to their source topics"},
        };
        return rs_admin_cli_dispatch("refstream admin dlq", cmds, RS_ARRAY_SIZE(cmds),
                                     argc, argv);
}
