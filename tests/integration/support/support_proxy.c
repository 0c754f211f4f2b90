/* A TCP proxy on 127.0.0.1 that a test can cut (close every connection and
 * refuse new ones) and restore: a dependency "going down" without stopping
 * the shared server. */
#include "support.h"
#include "rs_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PAIRS 64

struct rs_it_proxy {
        int listen_fd;
        int port, target_port;
        atomic_bool cut, stop;
        pthread_t thread;
        pthread_mutex_t lock;
        int pairs[MAX_PAIRS][2]; /* client fd, server fd; -1 if free */
};

static int connect_target(int port)
{
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
                close(fd);
                return -1;
        }
        return fd;
}

static void close_pair(rs_it_proxy_t *p, int i)
{
        shutdown(p->pairs[i][0], SHUT_RDWR);
        shutdown(p->pairs[i][1], SHUT_RDWR);
        close(p->pairs[i][0]);
        close(p->pairs[i][1]);
        p->pairs[i][0] = p->pairs[i][1] = -1;
}

static void accept_one(rs_it_proxy_t *p)
{
        int c = accept(p->listen_fd, NULL, NULL);
        if (c < 0)
                return;
        int s = atomic_load(&p->cut) ? -1 : connect_target(p->target_port);
        if (s < 0) {
                close(c); /* down: the client sees the connection drop */
                return;
        }
        pthread_mutex_lock(&p->lock);
        for (int i = 0; i < MAX_PAIRS; i++) {
                if (p->pairs[i][0] < 0) {
                        p->pairs[i][0] = c;
                        p->pairs[i][1] = s;
                        c = -1;
                        break;
                }
        }
        pthread_mutex_unlock(&p->lock);
        if (c >= 0) {
                close(c);
                close(s);
        }
}

/* Copies what is readable on fd `from` of pair i to its peer. */
static void pump(rs_it_proxy_t *p, int i, int side)
{
        char buf[65536];
        ssize_t n = read(p->pairs[i][side], buf, sizeof(buf));
        if (n <= 0 || write(p->pairs[i][1 - side], buf, (size_t)n) != n)
                close_pair(p, i);
}

static void *run(void *arg)
{
        rs_it_proxy_t *p = arg;
        while (!atomic_load(&p->stop)) {
                struct pollfd fds[1 + 2 * MAX_PAIRS];
                int idx[1 + 2 * MAX_PAIRS][2];
                int n = 0;
                fds[n++] = (struct pollfd){.fd = p->listen_fd, .events = POLLIN};
                pthread_mutex_lock(&p->lock);
                if (atomic_load(&p->cut)) {
                        for (int i = 0; i < MAX_PAIRS; i++)
                                if (p->pairs[i][0] >= 0)
                                        close_pair(p, i);
                }
                for (int i = 0; i < MAX_PAIRS; i++) {
                        for (int side = 0; side < 2 && p->pairs[i][0] >= 0; side++) {
                                idx[n][0] = i;
                                idx[n][1] = side;
                                fds[n++] = (struct pollfd){.fd = p->pairs[i][side],
                                                           .events = POLLIN};
                        }
                }
                pthread_mutex_unlock(&p->lock);
                if (poll(fds, (nfds_t)n, 50) <= 0)
                        continue;
                if (fds[0].revents)
                        accept_one(p);
                pthread_mutex_lock(&p->lock);
                for (int k = 1; k < n; k++) {
                        int i = idx[k][0];
                        if (fds[k].revents && p->pairs[i][0] >= 0 &&
                            fds[k].fd == p->pairs[i][idx[k][1]])
                                pump(p, i, idx[k][1]);
                }
                pthread_mutex_unlock(&p->lock);
        }
        return NULL;
}

rs_it_proxy_t *rs_it_proxy_start(int target_port)
{
        rs_it_proxy_t *p = rs_calloc(1, sizeof(*p));
        p->target_port = target_port;
        pthread_mutex_init(&p->lock, NULL);
        for (int i = 0; i < MAX_PAIRS; i++)
                p->pairs[i][0] = p->pairs[i][1] = -1;
        p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(p->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof(a);
        if (bind(p->listen_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
            listen(p->listen_fd, 64) != 0 ||
            getsockname(p->listen_fd, (struct sockaddr *)&a, &len) != 0) {
                fprintf(stderr, "integration test: proxy cannot listen\n");
                exit(1);
        }
        p->port = ntohs(a.sin_port);
        pthread_create(&p->thread, NULL, run, p);
        return p;
}

int rs_it_proxy_port(const rs_it_proxy_t *p)
{
        return p->port;
}

void rs_it_proxy_cut(rs_it_proxy_t *p, bool cut)
{
        atomic_store(&p->cut, cut);
}

void rs_it_proxy_stop(rs_it_proxy_t *p)
{
        atomic_store(&p->stop, true);
        pthread_join(p->thread, NULL);
        for (int i = 0; i < MAX_PAIRS; i++)
                if (p->pairs[i][0] >= 0)
                        close_pair(p, i);
        close(p->listen_fd);
        pthread_mutex_destroy(&p->lock);
        free(p);
}
