#ifndef RS_COMMANDS_H
#define RS_COMMANDS_H
/* Subcommands of the refstream binary; each returns the process exit code. */

int rs_cmd_consume(int argc, char **argv);
int rs_cmd_migrate(int argc, char **argv);
int rs_cmd_admin(int argc, char **argv);
int rs_cmd_demo(int argc, char **argv);
int rs_cmd_decode(int argc, char **argv);
int rs_cmd_publish(int argc, char **argv); /* producer/ */
int rs_cmd_loadgen(int argc, char **argv); /* producer/ */

#endif
