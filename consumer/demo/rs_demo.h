#ifndef RS_DEMO_H
#define RS_DEMO_H
/* `refstream demo` (cmd_demo.c): the embedded default, everything on a
 * throw-away local stack (rs_localstack.h). Returns the exit code. */
int rs_cmd_demo(int argc, char **argv);

#endif
