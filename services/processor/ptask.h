/* A task's processing tree as the processor runs it: one plugin instance
 * per process node, each batch run through the tree, and an output for
 * every node that has publish children (its route is the node's path).
 *
 * Ownership: a ptask owns its plugin instances and everything below; it is
 * shared by reference count between the task table and the batches being
 * processed (ptask_ref / ptask_unref). */
#ifndef PROCESSOR_PTASK_H
#define PROCESSOR_PTASK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "fresco/buf.h"
#include "fresco/manifest.h"
#include "fresco/metric.h"

typedef struct ptask ptask;

/* Builds the tree of m's process nodes for task id (name: its name). Each
 * node's plugin must be built in and its config must load and init;
 * otherwise nothing is built and err names the node or key by its path
 * ("workflow.collect.process[0].config.tags"). */
int ptask_build(const fr_manifest *m, const char *id, const char *name, ptask **out, fr_error *err);

void ptask_ref(ptask *t);
void ptask_unref(ptask *t);

const char *ptask_id(const ptask *t);
const char *ptask_name(const ptask *t);
/* Nodes whose output goes to publishers. */
size_t ptask_noutputs(const ptask *t);

/* What one batch turned into: an encoded batch per publishing node. */
typedef struct ptask_output {
    const char *route; /* the node's path below workflow.collect; owned by the ptask */
    fr_buf wire;
    uint32_t nmetrics;
} ptask_output;

typedef struct ptask_outputs {
    ptask_output *v;
    size_t n;
    size_t cap;
} ptask_outputs;

/* Runs in through the tree. Appends one output per publishing node that
 * produced at least one metric (an empty output is not sent). A plugin
 * that fails passes its input on unprocessed (counted on the node). Returns
 * 0, or FR_ENOMEM / FR_EINVAL (an output that cannot be encoded) with err
 * filled; outs may then hold some outputs: free them. */
int ptask_run(ptask *t, const fr_batch *in, ptask_outputs *outs, fr_error *err);

/* Empties outs (keeps the memory for the next batch) / frees it. */
void ptask_outputs_reset(ptask_outputs *outs);
void ptask_outputs_free(ptask_outputs *outs);

/* Packs {task, name, nodes: [{path, plugin, batches, metrics_in, metrics_out,
 * errors, last_error, stats?}]} for pipeline.list. */
void ptask_pack(ptask *t, msgpack_packer *pk);

#endif
