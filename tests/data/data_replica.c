/* A receiving replica for the data path tests, in its own process so that a
 * test can SIGKILL it with batches in flight.
 *
 *   data_replica URL RECORDS [WORKERS]
 *
 * Listens on URL, decodes every batch and appends one fixed-size record
 * (source, seq) to RECORDS before acknowledging it: whatever the sender saw
 * acked is on file, even after SIGKILL (the bytes are in the kernel once
 * write(2) returns). SIGTERM or SIGINT stops it cleanly. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fresco/data.h"
#include "fresco/log.h"
#include "fresco/metric.h"
#include "replica_record.h"

static int records_fd = -1;

static int replica_handle(void *ctx, const void *data, size_t len, fr_error *err)
{
    fr_batch *b = NULL;
    int rv = fr_batch_decode(data, len, &b, err);
    if (rv != 0) {
        return rv;
    }
    replica_record rec;
    memset(&rec, 0, sizeof(rec));
    snprintf(rec.source, sizeof(rec.source), "%s", b->source);
    rec.seq = b->seq;
    fr_batch_destroy(b);
    /* O_APPEND: one write is one whole record, whichever worker wrote it. */
    ssize_t n = write(records_fd, &rec, sizeof(rec));
    if (n != (ssize_t)sizeof(rec)) {
        fr_error("replica", "cannot record a batch: %s", n < 0 ? strerror(errno) : "short write");
        return FR_EBUSY; /* not recorded: let the sender try again */
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s URL RECORDS [WORKERS]\n", argv[0]);
        return 2;
    }
    fr_log_init("data_replica", FR_LOG_INFO, false);
    int workers = argc > 3 ? atoi(argv[3]) : 8;
    records_fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (records_fd < 0) {
        fr_error("replica", "cannot open %s: %s", argv[2], strerror(errno));
        return 1;
    }
    /* Signals are taken by sigwait below, never by nng's threads. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    fr_data_receiver *r = NULL;
    int rv = fr_data_receiver_start(&r, argv[1], true, NULL, workers, replica_handle, NULL);
    if (rv != 0) {
        fr_error("replica", "cannot start on %s: %s", argv[1], fr_strerror(rv));
        return 1;
    }
    fr_info("replica", "listening on %s (pid %d)", argv[1], (int)getpid());
    int sig = 0;
    sigwait(&stop, &sig);
    fr_data_receiver_stats st;
    fr_data_receiver_stats_get(r, &st);
    fr_data_receiver_stop(r);
    close(records_fd);
    fr_info("replica", "stopped by signal %d: %llu received, %llu acked, %llu rejected", sig,
            (unsigned long long)st.received, (unsigned long long)st.acked,
            (unsigned long long)st.rejected);
    return 0;
}
