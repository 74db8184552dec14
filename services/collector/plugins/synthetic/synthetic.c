/* synthetic: series of numbers made up on each tick, for trying a pipeline
 * out and for testing and benchmarking it end to end.
 *
 *   /fresco/synthetic/[series]/counter   uint64: 1 on the series' first tick,
 *                                        then +1 each tick (so a store can
 *                                        check it got every point exactly
 *                                        once: count, sum and max of 1..n)
 *   /fresco/synthetic/[series]/gauge     double: a sine over `period` plus
 *                                        seeded noise
 * Series are named s0 ... s<series-1>. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/plugin.h"

typedef struct synth_conf {
    int64_t series;
    int64_t period_ms;
    int64_t seed;
} synth_conf;

static const fr_cfg_field synth_policy[] = {
    {"series", FR_CFG_INT, "10", offsetof(synth_conf, series), "series emitted on each tick", 1,
     1000000, NULL},
    {"period", FR_CFG_DURATION, "60s", offsetof(synth_conf, period_ms),
     "period of the gauge's sine", 1, 86400000, NULL},
    {"seed", FR_CFG_INT, "1", offsetof(synth_conf, seed), "seed of the gauge's noise", 0, 0, NULL},
};

static const fr_dyn_info synth_dyn[] = {{"series", "series name, s0 ... s<series-1>"}};

static const fr_metric_info synth_catalog[] = {
    {"/fresco/synthetic/*/counter", FR_VAL_UINT64, "", "the series' ticks so far, 1 on its first",
     synth_dyn, 1},
    {"/fresco/synthetic/*/gauge", FR_VAL_DOUBLE, "", "a sine plus seeded noise", synth_dyn, 1},
};

typedef struct synth_state {
    const synth_conf *conf;
    uint64_t ticks;
    uint64_t rng;
    char (*ns)[2][48]; /* per series: counter and gauge namespaces */
} synth_state;

static int synth_init(void **state, const void *config, fr_error *err)
{
    const synth_conf *c = config;
    synth_state *s = calloc(1, sizeof(*s));
    if (s == NULL || (s->ns = calloc((size_t)c->series, sizeof(*s->ns))) == NULL) {
        free(s);
        return fr_error_set(err, FR_ENOMEM, "series", "out of memory for %lld series",
                            (long long)c->series);
    }
    s->conf = c;
    s->rng = (uint64_t)c->seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < c->series; i++) {
        snprintf(s->ns[i][0], sizeof(s->ns[i][0]), "/fresco/synthetic/s%lld/counter", (long long)i);
        snprintf(s->ns[i][1], sizeof(s->ns[i][1]), "/fresco/synthetic/s%lld/gauge", (long long)i);
    }
    *state = s;
    return 0;
}

/* xorshift64*: quick, seeded, the same sequence everywhere. */
static double synth_noise(synth_state *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return (double)((s->rng * 2685821657736338717ull) >> 11) / 9007199254740992.0 - 0.5;
}

static int synth_collect(void *state, const fr_collect_req *req, fr_error *err)
{
    synth_state *s = state;
    s->ticks++;
    double phase = 2.0 * M_PI * (double)(req->now_ns / 1000000 % s->conf->period_ms) /
                   (double)s->conf->period_ms;
    for (int64_t i = 0; i < s->conf->series; i++) {
        for (int k = 0; k < 2; k++) {
            if (!fr_ns_query_match(req->query, s->ns[i][k])) {
                continue;
            }
            fr_value v = k == 0
                             ? fr_val_u64(s->ticks)
                             : fr_val_f64(100.0 + 10.0 * sin(phase + (double)i) + synth_noise(s));
            if (fr_batch_add(req->out, s->ns[i][k], req->now_ns, v, "") == NULL) {
                return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
            }
        }
    }
    return 0;
}

static void synth_destroy(void *state)
{
    synth_state *s = state;
    if (s != NULL) {
        free(s->ns);
        free(s);
    }
}

const fr_collector_plugin fr_collector_synthetic = {
    .abi = FR_PLUGIN_ABI,
    .name = "synthetic",
    .version = 1,
    .description = "made-up series for trying, testing and benchmarking pipelines",
    .ns_prefix = "/fresco/synthetic",
    .catalog = synth_catalog,
    .ncatalog = sizeof(synth_catalog) / sizeof(synth_catalog[0]),
    .policy = synth_policy,
    .npolicy = sizeof(synth_policy) / sizeof(synth_policy[0]),
    .config_size = sizeof(synth_conf),
    .init = synth_init,
    .collect = synth_collect,
    .destroy = synth_destroy,
};
