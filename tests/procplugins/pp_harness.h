/* Helpers for the processor plugin suites: a plugin instance made as the
 * processor makes one (the node's config map from a parsed manifest,
 * fr_node_config_load, then init), batches built by hand, and one
 * process() call whose output is checked to encode and decode back
 * unchanged. Helpers named pp_must_* fail the running test on error. */
#ifndef PP_HARNESS_H
#define PP_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fresco/pipeline.h"

#define PP_SEC 1000000000LL
#define PP_T0  (1800000000LL * PP_SEC) /* a time in 2027, on a whole minute */

#define PP_NODE "workflow.collect.process[0]"

typedef struct pp_node {
    const fr_processor_plugin *plugin;
    fr_manifest *manifest;
    void *config;
    void *state;
} pp_node;

/* Makes an instance of plugin from config, the YAML text of the node's
 * config map ("{tags: 'a:b'}", or "" for none), placed in a manifest as
 * the first process node. Returns 0, or the first error (manifest parse,
 * fr_node_config_load, or init; init's error located on the node with
 * fr_node_error_locate, as the processor reports it) with n freed. */
int pp_open(pp_node *n, const fr_processor_plugin *plugin, const char *config, fr_error *err);
void pp_must_open(pp_node *n, const fr_processor_plugin *plugin, const char *config);
/* The same from a manifest file's first process node. */
int pp_open_file(pp_node *n, const fr_processor_plugin *plugin, const char *path, fr_error *err);
void pp_close(pp_node *n);

/* Runs process() on in into a fresh batch with in's envelope and batch
 * tags. On success *out is that batch after an encode/decode round trip
 * (checked equal to it; free it). */
int pp_run(pp_node *n, const fr_batch *in, fr_batch **out, fr_error *err);
fr_batch *pp_must_run(pp_node *n, const fr_batch *in);

/* The instance's stats() map, decoded: the unsigned value of key. */
uint64_t pp_stat(pp_node *n, const char *key);

/* A new batch from source "node-1", task "task-1". */
fr_batch *pp_batch(uint64_t seq);
/* Appends a metric with tags given as "k", "v", ..., NULL. */
fr_metric *pp_add(fr_batch *b, const char *ns, int64_t ts, fr_value v, const char *unit, ...);

/* The value of tag key on m, or NULL. */
const char *pp_tag(const fr_metric *m, const char *key);
/* How many metrics of b are named ns. */
size_t pp_count(const fr_batch *b, const char *ns);
/* The first metric of b named ns with timestamp ts, or NULL. */
const fr_metric *pp_find(const fr_batch *b, const char *ns, int64_t ts);

#endif
