#ifndef RS_SIGNAL_H
#define RS_SIGNAL_H
/* SIGTERM/SIGINT: the handler only sets rs_stop; the loops finish their batch
 * and shut down. A second signal exits at once (Redis habit). */
#include <signal.h>

extern volatile sig_atomic_t rs_stop;
void rs_signal_install(void);

#endif
