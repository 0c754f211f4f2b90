#include "rs_cli.h"
#include "rs_log.h"
#include "rs_pg.h"
#include "rs_processor.h"
#include "rs_signal.h"

int rs_cmd_consume(int argc, char **argv)
{
        const rs_cli_t cli = {
            .command = "refstream consume",
            .usage =
                "refstream consume [SETTINGS]\n\n"
                "Runs the processor: consumes sign-ups and payments, applies the "
                "referral rules in\nPostgres, publishes credits. SIGTERM/SIGINT finish "
                "the current batch, commit and exit 0.",
            .config_flags = true,
        };
        rs_config_t cfg;
        int rc = rs_cli_config_only(&cli, argc, argv, &cfg);
        if (rc >= 0) {
                rs_config_free(&cfg);
                return rc;
        }
        rs_config_log(&cfg);
        rs_signal_install();
        char err[1024];
        rs_processor_t *p = rs_processor_new(&cfg, NULL, err, sizeof(err));
        if (!p) {
                rs_error("consumer", "%s", err);
                rs_config_free(&cfg);
                return RS_EXIT_FAILURE;
        }
        rc = rs_processor_run(p, &rs_stop, 0);
        rs_processor_destroy(p);
        rs_info("consumer", "stopped");
        rs_config_free(&cfg);
        return rc;
}

int rs_cmd_migrate(int argc, char **argv)
{
        const rs_cli_t cli = {
            .command = "refstream migrate",
            .usage = "refstream migrate [--database-url URL]\n\n"
                     "Applies the SQL migrations this binary carries (sql/), in order, "
                     "each once.\nSafe to run concurrently and repeatedly.",
            .config_flags = true,
        };
        rs_config_t cfg;
        int rc = rs_cli_config_only(&cli, argc, argv, &cfg);
        if (rc >= 0) {
                rs_config_free(&cfg);
                return rc;
        }
        char err[1024];
        rs_pg_t *pg = rs_pg_new(cfg.database_url, cfg.pg_statement_timeout_ms);
        rc = RS_EXIT_OK;
        if (!rs_pg_connect(pg, err, sizeof(err)) ||
            !rs_pg_migrate(pg, stdout, err, sizeof(err))) {
                fprintf(stderr, "refstream migrate: %s\n", err);
                rc = RS_EXIT_FAILURE;
        }
        rs_pg_destroy(pg);
        rs_config_free(&cfg);
        return rc;
}
