/* refstream: one binary, several subcommands (docs/commands.md). */
#include "rs_cli.h"
#include "cmd_admin.h"
#include "rs_demo.h"
#include "rs_processor.h"
#include "rs_producer.h"

#include <stdio.h>
#include <string.h>

#ifndef RS_VERSION
#define RS_VERSION "dev"
#endif

static const struct {
        const char *name;
        int (*fn)(int, char **);
        const char *doc;
} commands[] = {
    {"consume", rs_cmd_consume, "run the processor daemon"},
    {"migrate", rs_cmd_migrate, "apply the database migrations"},
    {"publish", rs_cmd_publish, "publish sign-up or payment events"},
    {"admin", rs_cmd_admin, "programs, codes, stats, referral history"},
    {"demo", rs_cmd_demo, "run everything on a throw-away local stack"},
    {"loadgen", rs_cmd_loadgen, "publish a seeded synthetic event stream"},
    {"decode", rs_cmd_decode, "print a framed Avro record from stdin as JSON"},
};

static void usage(FILE *out)
{
        fprintf(out, "Usage: refstream COMMAND [OPTIONS]\n\nCommands:\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].doc);
        fprintf(out,
                "\n'refstream COMMAND --help' describes a command and its settings.\n"
                "Exit codes: 0 ok, 1 runtime failure, 2 usage or configuration error.\n");
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                usage(stderr);
                return RS_EXIT_USAGE;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
            strcmp(argv[1], "help") == 0) {
                usage(stdout);
                return RS_EXIT_OK;
        }
        if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
                printf("refstream %s\n", RS_VERSION);
                return RS_EXIT_OK;
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
                if (strcmp(argv[1], commands[i].name) == 0)
                        return commands[i].fn(argc - 1, argv + 1);
        }
        fprintf(stderr, "refstream: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return RS_EXIT_USAGE;
}
