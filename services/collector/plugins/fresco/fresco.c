/* The collector's own metrics: /fresco/collector/<counter>. Internal
 * statistics are metrics like any other, so a task can collect and publish
 * them next to what it watches. */
#include <stdlib.h>
#include <string.h>

#include "fresco/plugin.h"
#include "self.h"

#define SELF_ENTRY(n, u, d)                                                                        \
    {                                                                                              \
        "/fresco/collector/" n, FR_VAL_UINT64, u, d, NULL, 0                                       \
    }

static const fr_metric_info self_catalog[] = {
    SELF_ENTRY("ticks", "", "schedule ticks of every task"),
    SELF_ENTRY("misses", "", "ticks missed because a collect was still running"),
    SELF_ENTRY("failures", "", "ticks in which a plugin failed or overran its deadline"),
    SELF_ENTRY("metrics_collected", "", "metrics collected by every task"),
    SELF_ENTRY("batches_sent", "", "batches handed to the processors"),
    SELF_ENTRY("batches_not_taken", "",
               "batches the processors had no room for within send_timeout"),
    SELF_ENTRY("collect_ns_total", "ns", "time spent collecting, summed over ticks"),
    SELF_ENTRY("resends", "", "batches sent again to the processors after no acknowledgement"),
};

#define NSELF       (sizeof(self_catalog) / sizeof(self_catalog[0]))
#define SELF_PREFIX "/fresco/collector/"

static _Atomic(_Atomic uint64_t *) self_values[NSELF];

void collector_self_register(const char *name, _Atomic uint64_t *value)
{
    for (size_t i = 0; i < NSELF; i++) {
        if (strcmp(self_catalog[i].ns + strlen(SELF_PREFIX), name) == 0) {
            atomic_store(&self_values[i], value);
        }
    }
}

static int self_init(void **state, const void *config, fr_error *err)
{
    *state = NULL;
    return 0;
}

static int self_collect(void *state, const fr_collect_req *req, fr_error *err)
{
    for (size_t i = 0; i < NSELF; i++) {
        _Atomic uint64_t *v = atomic_load(&self_values[i]);
        if (v == NULL || !fr_ns_query_match(req->query, self_catalog[i].ns)) {
            continue;
        }
        if (fr_batch_add(req->out, self_catalog[i].ns, req->now_ns, fr_val_u64(atomic_load(v)),
                         self_catalog[i].unit) == NULL) {
            return FR_ENOMEM;
        }
    }
    return 0;
}

static void self_destroy(void *state)
{
    (void)state;
}

const fr_collector_plugin fr_collector_fresco = {
    .abi = FR_PLUGIN_ABI,
    .name = "fresco",
    .version = 1,
    .description = "the collector's own counters",
    .ns_prefix = "/fresco/collector",
    .catalog = self_catalog,
    .ncatalog = NSELF,
    .policy = NULL,
    .npolicy = 0,
    .config_size = 0,
    .init = self_init,
    .collect = self_collect,
    .destroy = self_destroy,
};
