/* A control server in its own process, for tests that need one to die:
 *   ctl_peer URL
 * ops: ping, echo (returns args), die (exits at once without replying). */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fresco/ctl.h"
#include "fresco/log.h"

static int op_ping(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    msgpack_pack_str(fr_ctl_reply_packer(r), 4);
    msgpack_pack_str_body(fr_ctl_reply_packer(r), "pong", 4);
    return 0;
}

static int op_echo(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    return fr_node_pack(args, fr_ctl_reply_packer(r));
}

static int op_die(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    _exit(3);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: ctl_peer URL\n");
        return 2;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    const fr_ctl_op ops[] = {
        {"ping", op_ping, NULL, "pong"},
        {"echo", op_echo, NULL, "returns its args"},
        {"die", op_die, NULL, "exits without replying"},
    };
    fr_ctl_server *srv = NULL;
    int rv = fr_ctl_server_start(&srv, argv[1], NULL, ops, 3, 2);
    if (rv != 0) {
        fprintf(stderr, "ctl_peer: %s\n", fr_strerror(rv));
        return 1;
    }
    int sig;
    sigwait(&sigs, &sig);
    fr_ctl_server_destroy(srv);
    return 0;
}
