/* refstream decode: one Confluent-framed Avro record on stdin (any schema of
 * the manifest) printed as JSON, e.g.
 *   kcat -b BROKER -C -t referral-credited -c 1 -f '%s' | refstream decode */
#include "rs_cli.h"
#include "rs_codec.h"
#include "rs_producer.h"

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
        rs_config_free(&cfg);
        if (rc >= 0)
                return rc;
        char err[512];
        size_t len = 0;
        char *data = rs_read_stream(stdin, &len);
        rs_codec_t *codec = rs_codec_new(err, sizeof(err));
        rs_buf_t out;
        rs_buf_init(&out);
        rc = RS_EXIT_OK;
        if (!data || !codec ||
            !rs_codec_output_to_json(codec, data, len, &out, err, sizeof(err))) {
                fprintf(stderr, "refstream decode: %s\n",
                        data ? err : "cannot read stdin");
                rc = RS_EXIT_FAILURE;
        } else {
                printf("%s\n", out.data);
        }
        rs_buf_free(&out);
        rs_codec_destroy(codec);
        free(data);
        return rc;
}
