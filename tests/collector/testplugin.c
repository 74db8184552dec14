/* A collector plugin loaded from a shared object by the collector tests.
 * Its `mode` config makes it behave well or badly on purpose:
 *   ok     emits /fresco/test/counter and /fresco/test/<n>/value (n < values)
 *   fail   returns an error from every collect
 *   hang   sleeps hang_ms inside collect (a plugin stuck in I/O)
 *   abort  aborts the process inside its second collect (a plugin that crashes) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fresco/plugin.h"

typedef struct tp_conf {
    char *mode;
    int64_t values;
    int64_t hang_ms;
} tp_conf;

typedef struct tp_state {
    const tp_conf *conf;
    uint64_t counter;
} tp_state;

static const char *const tp_modes[] = {"ok", "fail", "hang", "abort", NULL};

static const fr_cfg_field tp_policy[] = {
    {"mode", FR_CFG_ENUM, "ok", offsetof(tp_conf, mode), "how to behave", 0, 0, tp_modes},
    {"values", FR_CFG_INT, "3", offsetof(tp_conf, values), "dynamic values", 0, 1000, NULL},
    {"hang_ms", FR_CFG_INT, "10000", offsetof(tp_conf, hang_ms), "hang time", 0, 600000, NULL},
};

static const fr_dyn_info tp_dyn[] = {{"n", "value number"}};

static const fr_metric_info tp_catalog[] = {
    {"/fresco/test/counter", FR_VAL_UINT64, "", "collect calls so far", NULL, 0},
    {"/fresco/test/*/value", FR_VAL_DOUBLE, "", "n * 1.5", tp_dyn, 1},
};

static int tp_init(void **state, const void *config, fr_error *err)
{
    tp_state *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return FR_ENOMEM;
    }
    s->conf = config;
    *state = s;
    return 0;
}

static int tp_collect(void *state, const fr_collect_req *req, fr_error *err)
{
    tp_state *s = state;
    const char *mode = s->conf->mode;
    if (strcmp(mode, "fail") == 0) {
        return fr_error_set(err, FR_EIO, "/fresco/test", "the test source is unreadable");
    }
    if (strcmp(mode, "abort") == 0 && s->counter > 0) {
        abort(); /* from the second tick on: the task has been created by then */
    }
    if (strcmp(mode, "hang") == 0) {
        struct timespec d = {s->conf->hang_ms / 1000, (s->conf->hang_ms % 1000) * 1000000};
        nanosleep(&d, NULL);
    }
    s->counter++;
    if (fr_ns_query_match(req->query, "/fresco/test/counter")) {
        fr_batch_add(req->out, "/fresco/test/counter", req->now_ns, fr_val_u64(s->counter), "");
    }
    for (int64_t i = 0; i < s->conf->values; i++) {
        char ns[64];
        snprintf(ns, sizeof(ns), "/fresco/test/%lld/value", (long long)i);
        if (fr_ns_query_match(req->query, ns)) {
            fr_batch_add(req->out, ns, req->now_ns, fr_val_f64((double)i * 1.5), "");
        }
    }
    return 0;
}

static void tp_destroy(void *state)
{
    free(state);
}

const fr_collector_plugin fresco_collector_plugin = {
    .abi = FR_PLUGIN_ABI,
    .name = "testplugin",
    .version = 1,
    .description = "behaves well or badly on purpose, for tests",
    .ns_prefix = "/fresco/test",
    .catalog = tp_catalog,
    .ncatalog = sizeof(tp_catalog) / sizeof(tp_catalog[0]),
    .policy = tp_policy,
    .npolicy = sizeof(tp_policy) / sizeof(tp_policy[0]),
    .config_size = sizeof(tp_conf),
    .init = tp_init,
    .collect = tp_collect,
    .destroy = tp_destroy,
};
