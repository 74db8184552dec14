/* fresco-processor: receives batches on its data-in socket, runs each task's
 * processing chain over them and passes the results to the publishers.
 * Until a task brings a chain, batches pass through unchanged: each is
 * validated (a batch that does not decode is rejected back to its sender)
 * and forwarded; a full downstream window answers "busy" upstream, so
 * back-pressure reaches the collector. Handlers run on nng's shared task
 * threads, which also deliver the downstream acks that free the window:
 * so by default a handler does not wait for room (forward_wait 0s). */
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

#include "fresco/data.h"
#include "fresco/log.h"
#include "fresco/metric.h"
#include "fresco/service.h"

typedef struct processor_conf {
    fr_service_conf svc;
    char *data_in;
    fr_strlist publishers;
    int64_t data_workers;
    int64_t window;
    int64_t resend_ms;
    int64_t forward_wait_ms;
} processor_conf;

static const fr_cfg_field processor_fields[] = {
    FR_SERVICE_FIELDS(processor_conf, svc, "tcp://127.0.0.1:7410", "tcp://127.0.0.1:7412"),
    {"data_in", FR_CFG_STRING, "tcp://127.0.0.1:7411", offsetof(processor_conf, data_in),
     "address batches arrive on (nng REP, listens)", 0, 0, NULL},
    {"publishers", FR_CFG_LIST, "tcp://127.0.0.1:7421", offsetof(processor_conf, publishers),
     "publisher data-in addresses to dial (batches are spread over them)", 0, 0, NULL},
    {"data_workers", FR_CFG_INT, "8", offsetof(processor_conf, data_workers),
     "batches processed at once", 1, 1024, NULL},
    {"window", FR_CFG_INT, "16", offsetof(processor_conf, window),
     "batches in flight to the publishers", 1, 4096, NULL},
    {"resend", FR_CFG_DURATION, "2s", offsetof(processor_conf, resend_ms),
     "resend a batch not acknowledged within this", 10, 3600000, NULL},
    {"forward_wait", FR_CFG_DURATION, "0s", offsetof(processor_conf, forward_wait_ms),
     "how long a batch may wait for room downstream before the answer is busy", 0, 60000, NULL},
};

static const fr_cfg_spec processor_spec = {"processor", processor_fields,
                                           sizeof(processor_fields) / sizeof(processor_fields[0])};

typedef struct processor {
    fr_service *svc;
    const processor_conf *conf;
    fr_data_receiver *rx;
    fr_data_sender *tx;
    _Atomic uint64_t *batches_in, *metrics_in, *rejected, *busy;
} processor;

static processor proc;

static int processor_on_batch(void *ctx, const void *data, size_t len, fr_error *err)
{
    processor *p = ctx;
    fr_batch *b = NULL;
    int rv = fr_batch_decode(data, len, &b, err);
    if (rv != 0) {
        atomic_fetch_add(p->rejected, 1);
        fr_warn("data", "rejected a batch: %s: %s", err->where, err->message);
        return rv;
    }
    uint32_t n = b->nmetrics;
    fr_batch_destroy(b);
    rv = fr_data_send(p->tx, data, len, (int)p->conf->forward_wait_ms);
    if (rv == FR_EBUSY) {
        atomic_fetch_add(p->busy, 1);
        return FR_EBUSY;
    }
    if (rv != 0) {
        fr_error_set(err, rv, NULL, "cannot forward: %s", fr_strerror(rv));
        return FR_EBUSY;
    }
    atomic_fetch_add(p->batches_in, 1);
    atomic_fetch_add(p->metrics_in, n);
    return 0;
}

static int processor_start(fr_service *svc, void *confp)
{
    processor_conf *conf = confp;
    proc.svc = svc;
    proc.conf = conf;
    proc.batches_in = fr_service_counter(svc, "batches_in");
    proc.metrics_in = fr_service_counter(svc, "metrics_in");
    proc.rejected = fr_service_counter(svc, "batches_rejected");
    proc.busy = fr_service_counter(svc, "busy_answers");
    fr_data_sender_opts o = {
        .window = (int)conf->window,
        .resend_ms = (int)conf->resend_ms,
    };
    int rv = fr_data_sender_open(&proc.tx, (const char *const *)conf->publishers.v,
                                 conf->publishers.n, fr_service_tls(svc), &o);
    if (rv != 0) {
        return rv;
    }
    rv = fr_data_receiver_start(&proc.rx, conf->data_in, true, fr_service_tls(svc),
                                (int)conf->data_workers, processor_on_batch, &proc);
    if (rv != 0) {
        return rv;
    }
    fr_service_add_address(svc, "data_in", conf->data_in);
    return 0;
}

static void processor_stop(fr_service *svc, void *confp)
{
    /* Stop taking batches first, then give the ones in flight a moment. */
    fr_data_receiver_stop(proc.rx);
    proc.rx = NULL;
    if (proc.tx != NULL && fr_data_flush(proc.tx, 2000) != 0) {
        fr_warn("data", "batches still unacknowledged downstream at shutdown");
    }
    fr_data_sender_close(proc.tx);
    proc.tx = NULL;
}

static const fr_service_def processor_def = {
    .name = "processor",
    .spec = &processor_spec,
    .conf_size = sizeof(processor_conf),
    .start = processor_start,
    .stop = processor_stop,
};

int main(int argc, char **argv)
{
    return fr_service_main(&processor_def, argc, argv);
}
