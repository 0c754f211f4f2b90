#ifndef RS_PRODUCER_H
#define RS_PRODUCER_H
/* The input side's commands, each returning the exit code: `refstream
 * publish` (cmd_publish.c), `refstream loadgen` (cmd_loadgen.c) and
 * `refstream decode` (cmd_decode.c). */
int rs_cmd_publish(int argc, char **argv);
int rs_cmd_loadgen(int argc, char **argv);
int rs_cmd_decode(int argc, char **argv);

#endif
