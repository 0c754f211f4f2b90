/* refstream decode: one Confluent-framed Avro record on stdin (any schema of
 * the manifest, or of the schema registry when one is configured) printed as
 * JSON, e.g.
 *   kcat -b BROKER -C -t referral-credited -c 1 -f '%s' | refstream decode */
#include "rs_cli.h"
#include "rs_codec.h"
#include "rs_producer.h"
#include "rs_registry_codec.h"

#include <stdlib.h>

int rs_cmd_decode(int argc, char **argv)
{
        const rs_cli_t cli = {
            .command = "refstream decode",
            .usage =
                "refstream decode < RECORD\n\n"
                "Prints one Confluent-framed Avro record (0x00, schema id, Avro body) "
                "read from stdin\nas a JSON object. Exit 1 if it is not a record of a "
                "known schema.",
        };
        rs_config_t cfg;
        int rc = rs_cli_config_only(&cli, argc, argv, &cfg);
        if (rc >= 0) {
                rs_config_free(&cfg);
                return rc;
        }
        char err[1024] = "cannot read stdin";
        size_t len = 0;
        uint32_t id;
        char *data = rs_read_stream(stdin, &len);
        rs_codec_t *codec = data ? rs_codec_new(err, sizeof(err)) : NULL;
        rs_registry_t *reg = NULL;
        bool ok = codec != NULL;
        if (ok && *cfg.schema_registry_url) {
                ok = (reg = rs_registry_from_config(&cfg, err, sizeof(err))) != NULL;
                if (ok)
                        rs_codec_use_registry(codec);
                if (ok && rs_codec_needs_schema(codec, data, len, &id))
                        ok = rs_registry_fetch(reg, codec, id, err, sizeof(err)) ==
                             RS_REG_OK;
        }
        rs_buf_t out;
        rs_buf_init(&out);
        if (ok && rs_codec_output_to_json(codec, data, len, &out, err, sizeof(err))) {
                printf("%s\n", out.data);
                rc = RS_EXIT_OK;
        } else {
                fprintf(stderr, "refstream decode: %s\n", err);
                rc = RS_EXIT_FAILURE;
        }
        rs_buf_free(&out);
        rs_registry_destroy(reg);
        rs_codec_destroy(codec);
        rs_config_free(&cfg);
        free(data);
        return rc;
}
