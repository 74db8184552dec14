/* A processor plugin instance made as the processor makes one (a node's
 * config map from a manifest, fr_node_config_load, init), and the empty
 * output batch the engine hands to process(): shared by the processor
 * benchmarks. Header-only. */
#ifndef BENCH_PROCNODE_H
#define BENCH_PROCNODE_H

#include <stdio.h>
#include <string.h>

#include "builtin.h"
#include "fresco/pipeline.h"

typedef struct bench_node {
    const fr_processor_plugin *p;
    fr_manifest *m;
    void *config, *state;
} bench_node;

/* Makes the plugin called name from config (a YAML flow map, "{}" for
 * none). 0, or -1 with the reason on stderr (prefixed by prog). */
static inline int bench_node_open(bench_node *n, const char *prog, const char *name,
                                  const char *config)
{
    memset(n, 0, sizeof(*n));
    n->p = fr_processor_find(name);
    if (n->p == NULL) {
        fprintf(stderr, "%s: no plugin '%s' built in\n", prog, name);
        return -1;
    }
    char text[1024];
    snprintf(text, sizeof(text),
             "version: 1\nschedule: {type: simple, interval: 1s}\nworkflow:\n  collect:\n"
             "    metrics: {/intel/*: {}}\n    process:\n      - plugin_name: %s\n"
             "        config: %s\n",
             name, config);
    fr_error err;
    int rv = fr_manifest_parse(text, strlen(text), prog, &n->m, &err);
    if (rv == 0) {
        const fr_mf_node *node = &n->m->collect.process[0];
        rv = fr_node_config_load(&n->p->config, name, &node->config, node->path, &n->config, &err);
        if (rv == 0 && (rv = n->p->init(&n->state, n->config, &err)) != 0) {
            fr_node_error_locate(&err, name, node->path);
        }
    }
    if (rv != 0) {
        fprintf(stderr, "%s: %s: %s: %s\n", prog, name, err.where, err.message);
        return -1;
    }
    return 0;
}

static inline void bench_node_close(bench_node *n)
{
    if (n->p != NULL && n->state != NULL) {
        n->p->destroy(n->state);
    }
    if (n->p != NULL) {
        fr_node_config_free(&n->p->config, n->config);
    }
    fr_manifest_free(n->m);
    memset(n, 0, sizeof(*n));
}

/* Runs in through n into *out, a new batch with in's envelope and batch
 * tags, as the engine does. 0 or a negative code (reason on stderr). */
static inline int bench_node_run(bench_node *n, const char *prog, const fr_batch *in,
                                 fr_batch **out)
{
    fr_batch *o = fr_batch_new(in->task, in->source, in->seq);
    for (uint32_t i = 0; o != NULL && i < in->ntags; i++) {
        if (fr_batch_add_tag(o, in->tags[i].key, in->tags[i].value) != 0) {
            fr_batch_destroy(o);
            o = NULL;
        }
    }
    *out = o;
    if (o == NULL) {
        return FR_ENOMEM;
    }
    fr_process_req req = {.in = in, .out = o};
    fr_error err;
    int rv = n->p->process(n->state, &req, &err);
    if (rv != 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, n->p->name, err.message);
    }
    return rv;
}

#endif
