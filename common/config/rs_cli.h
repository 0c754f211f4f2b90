#ifndef RS_CLI_H
#define RS_CLI_H
/* Command-line handling shared by the subcommands: every configuration
 * setting is also a flag (--kafka-brokers ...), -X passes librdkafka
 * properties, and each command adds its own options. Exit codes: 0 ok,
 * 1 runtime failure, 2 usage or configuration error. */
#include "rs_config.h"

#define RS_EXIT_OK      0
#define RS_EXIT_FAILURE 1
#define RS_EXIT_USAGE   2

typedef struct rs_cli_opt {
        const char *name; /* long option, without dashes */
        bool has_arg;
        const char *arg_name; /* for --help, e.g. "MINOR" */
        const char *doc;
} rs_cli_opt_t;

/* Called for each command option: idx into opts, arg (NULL without argument).
 * Return false with errstr set for a bad value (reported as usage error). */
typedef bool (*rs_cli_handler_t)(void *ctx, int idx, const char *arg, char *errstr,
                                 size_t errstr_size);

typedef struct rs_cli {
        const char *command; /* "refstream consume" */
        const char *usage;   /* synopsis and description for --help */
        const rs_cli_opt_t *opts;
        size_t nopts;
        rs_cli_handler_t handler;
        void *ctx;
        bool config_flags; /* accept the configuration settings as flags */
} rs_cli_t;

/* Loads the configuration (defaults, file, environment) into cfg, then parses
 * argv[1..] (argv[0] is the command name). Positional arguments are left in
 * argv[*first_arg .. argc-1]. Returns -1 to continue, or an exit code: 0 after
 * --help, 2 after printing a usage/configuration error. */
int rs_cli_parse(const rs_cli_t *cli, int argc, char **argv, rs_config_t *cfg,
                 int *first_arg);

/* Loads configuration and logging, for commands that take no flags. */
int rs_cli_config_only(const rs_cli_t *cli, int argc, char **argv, rs_config_t *cfg);

void rs_cli_print_help(const rs_cli_t *cli, FILE *out);

#endif
