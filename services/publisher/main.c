/* fresco-publisher: receives batches on its data-in socket and writes them
 * to the task's sinks. Until sinks are configured it validates, counts and
 * drops duplicates by (source, seq), acknowledging each batch. */
#include <stdatomic.h>
#include <stddef.h>

#include "fresco/data.h"
#include "fresco/log.h"
#include "fresco/metric.h"
#include "fresco/service.h"

typedef struct publisher_conf {
    fr_service_conf svc;
    char *data_in;
    int64_t data_workers;
} publisher_conf;

static const fr_cfg_field publisher_fields[] = {
    FR_SERVICE_FIELDS(publisher_conf, svc, "tcp://127.0.0.1:7420", "tcp://127.0.0.1:7422"),
    {"data_in", FR_CFG_STRING, "tcp://127.0.0.1:7421", offsetof(publisher_conf, data_in),
     "address batches arrive on (nng REP, listens)", 0, 0, NULL},
    {"data_workers", FR_CFG_INT, "8", offsetof(publisher_conf, data_workers),
     "batches handled at once", 1, 1024, NULL},
};

static const fr_cfg_spec publisher_spec = {"publisher", publisher_fields,
                                           sizeof(publisher_fields) / sizeof(publisher_fields[0])};

typedef struct publisher {
    fr_data_receiver *rx;
    fr_seqwin *seen;
    _Atomic uint64_t *batches_in, *metrics_in, *duplicates, *rejected;
} publisher;

static publisher pub;

static int publisher_on_batch(void *ctx, const void *data, size_t len, fr_error *err)
{
    publisher *p = ctx;
    fr_batch *b = NULL;
    int rv = fr_batch_decode(data, len, &b, err);
    if (rv != 0) {
        atomic_fetch_add(p->rejected, 1);
        fr_warn("data", "rejected a batch: %s: %s", err->where, err->message);
        return rv;
    }
    rv = fr_seqwin_check(p->seen, b->source, b->seq);
    if (rv == 0) {
        atomic_fetch_add(p->duplicates, 1);
    } else if (rv == 1) {
        atomic_fetch_add(p->batches_in, 1);
        atomic_fetch_add(p->metrics_in, b->nmetrics);
    }
    fr_batch_destroy(b);
    return rv < 0 ? FR_EBUSY : 0;
}

static int publisher_start(fr_service *svc, void *confp)
{
    publisher_conf *conf = confp;
    pub.batches_in = fr_service_counter(svc, "batches_in");
    pub.metrics_in = fr_service_counter(svc, "metrics_in");
    pub.duplicates = fr_service_counter(svc, "batches_duplicate");
    pub.rejected = fr_service_counter(svc, "batches_rejected");
    pub.seen = fr_seqwin_new();
    if (pub.seen == NULL) {
        return FR_ENOMEM;
    }
    int rv = fr_data_receiver_start(&pub.rx, conf->data_in, true, fr_service_tls(svc),
                                    (int)conf->data_workers, publisher_on_batch, &pub);
    if (rv != 0) {
        return rv;
    }
    fr_service_add_address(svc, "data_in", conf->data_in);
    return 0;
}

static void publisher_stop(fr_service *svc, void *confp)
{
    fr_data_receiver_stop(pub.rx);
    pub.rx = NULL;
    fr_seqwin_destroy(pub.seen);
    pub.seen = NULL;
}

static const fr_service_def publisher_def = {
    .name = "publisher",
    .spec = &publisher_spec,
    .conf_size = sizeof(publisher_conf),
    .start = publisher_start,
    .stop = publisher_stop,
};

int main(int argc, char **argv)
{
    return fr_service_main(&publisher_def, argc, argv);
}
