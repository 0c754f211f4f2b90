#include "rs_cli.h"
#include "rs_log.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

#define OPT_X      1000
#define OPT_HELP   1001
#define OPT_CONFIG 2000 /* + index into rs_config_defs */
#define OPT_CMD    4000 /* + index into cli->opts */

void rs_cli_print_help(const rs_cli_t *cli, FILE *out)
{
        fprintf(out, "Usage: %s\n", cli->usage);
        if (cli->nopts) {
                fprintf(out, "\nOptions:\n");
                for (size_t i = 0; i < cli->nopts; i++) {
                        const rs_cli_opt_t *o = &cli->opts[i];
                        char left[64];
                        snprintf(left, sizeof(left), "--%s%s%s", o->name,
                                 o->has_arg ? " " : "", o->has_arg ? o->arg_name : "");
                        fprintf(out, "  %-28s %s\n", left, o->doc);
                }
        }
        fprintf(out, "  %-28s %s\n", "--help", "show this help");
        if (cli->config_flags) {
                fprintf(out, "\n");
                rs_config_print_help(out);
        }
}

static int usage_error(const rs_cli_t *cli, const char *msg)
{
        fprintf(stderr, "%s: %s\nTry '%s --help'.\n", cli->command, msg, cli->command);
        return RS_EXIT_USAGE;
}

/* Defaults < config file < environment; flags come later. */
static int load_base(const rs_cli_t *cli, int argc, char **argv, rs_config_t *cfg)
{
        char err[1024];
        rs_config_init(cfg);
        const char *file = getenv("REFSTREAM_CONFIG");
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
                        file = argv[i + 1];
                else if (strncmp(argv[i], "--config=", 9) == 0)
                        file = argv[i] + 9;
        }
        if (file &&
            !rs_config_set(cfg, "REFSTREAM_CONFIG", file, "--config", err, sizeof(err)))
                return usage_error(cli, err);
        if (!rs_config_load_env(cfg, environ, err, sizeof(err))) {
                fprintf(stderr, "%s: configuration error: %s\n", cli->command, err);
                return RS_EXIT_USAGE;
        }
        return -1;
}

static struct option *build_options(const rs_cli_t *cli)
{
        size_t n = cli->nopts + rs_config_defs_count + 3;
        struct option *lo = rs_calloc(n, sizeof(*lo));
        size_t k = 0;
        for (size_t i = 0; i < cli->nopts; i++)
                lo[k++] = (struct option){cli->opts[i].name,
                                          cli->opts[i].has_arg ? required_argument
                                                               : no_argument,
                                          NULL, OPT_CMD + (int)i};
        for (size_t i = 0; cli->config_flags && i < rs_config_defs_count; i++)
                lo[k++] = (struct option){rs_config_defs[i].flag, required_argument, NULL,
                                          OPT_CONFIG + (int)i};
        lo[k++] = (struct option){"help", no_argument, NULL, OPT_HELP};
        return lo;
}

static int handle(const rs_cli_t *cli, int c, rs_config_t *cfg)
{
        char err[1024], source[128];
        if (c == OPT_HELP) {
                rs_cli_print_help(cli, stdout);
                return RS_EXIT_OK;
        }
        if (c == OPT_X) {
                if (!rs_config_add_rdkafka(cfg, optarg, "-X", err, sizeof(err)))
                        return usage_error(cli, err);
                return -1;
        }
        if (c >= OPT_CMD) {
                if (!cli->handler(cli->ctx, c - OPT_CMD, optarg, err, sizeof(err)))
                        return usage_error(cli, err);
                return -1;
        }
        if (c >= OPT_CONFIG) {
                const rs_config_def_t *d = &rs_config_defs[c - OPT_CONFIG];
                snprintf(source, sizeof(source), "--%s", d->flag);
                if (!rs_config_set(cfg, d->env, optarg, source, err, sizeof(err)))
                        return usage_error(cli, err);
                return -1;
        }
        return usage_error(cli, "invalid option");
}

int rs_cli_parse(const rs_cli_t *cli, int argc, char **argv, rs_config_t *cfg,
                 int *first_arg)
{
        int rc = load_base(cli, argc, argv, cfg);
        if (rc >= 0)
                return rc;
        struct option *lo = build_options(cli);
        optind = 1;
        opterr = 0;
        int c;
        while (rc < 0 && (c = getopt_long(argc, argv, cli->config_flags ? "X:" : "", lo,
                                          NULL)) != -1) {
                if (c == '?' || c == ':') {
                        char msg[256];
                        snprintf(msg, sizeof(msg),
                                 "unrecognized or incomplete option '%s'",
                                 argv[optind - 1]);
                        rc = usage_error(cli, msg);
                        break;
                }
                rc = handle(cli, c == 'X' ? OPT_X : c, cfg);
        }
        free(lo);
        if (rc >= 0)
                return rc;
        char err[256];
        if (!rs_config_apply_logging(cfg, err, sizeof(err)))
                return usage_error(cli, err);
        *first_arg = optind;
        return -1;
}

int rs_cli_config_only(const rs_cli_t *cli, int argc, char **argv, rs_config_t *cfg)
{
        int first = 0;
        int rc = rs_cli_parse(cli, argc, argv, cfg, &first);
        if (rc < 0 && first < argc) {
                char msg[256];
                snprintf(msg, sizeof(msg), "unexpected argument '%s'", argv[first]);
                return usage_error(cli, msg);
        }
        return rc;
}
