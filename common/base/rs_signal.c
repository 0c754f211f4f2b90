#include "rs_signal.h"

#include <string.h>
#include <unistd.h>

volatile sig_atomic_t rs_stop;

static void on_signal(int sig)
{
        (void)sig;
        if (rs_stop) {
                static const char msg[] = "refstream: second signal, exiting now\n";
                (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
                _exit(1);
        }
        rs_stop = 1;
}

void rs_signal_install(void)
{
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}
