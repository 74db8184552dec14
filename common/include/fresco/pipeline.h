/* Processor and publisher plugins: what runs a task's `process` and
 * `publish` nodes.
 *
 * As collector plugins (fresco/plugin.h), a plugin is a static table of
 * named callbacks plus its config policy, built in from a CMake list
 * (services/processor/plugins/<name>/, services/publisher/sinks/<name>/)
 * and found by the node's plugin_name. One instance per node of each task:
 *   config   the node's `config` map, parsed by fr_node_config_load
 *   init     -> state, at pipeline.put (bad config: the task is refused,
 *            naming the key)
 *   process / write   for each batch, on the engine's threads
 *   destroy  when the task is removed
 *
 * Errors name the key: a plugin fills err->where with the config key at
 * fault ("tags") or leaves it empty, and err->message with what is wrong;
 * the engine turns where into the node's path
 * ("workflow.collect.process[0].config.tags"), which the collector turns
 * into the manifest's file:line:col. */
#ifndef FRESCO_PIPELINE_H
#define FRESCO_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "fresco/config.h"
#include "fresco/err.h"
#include "fresco/manifest.h"
#include "fresco/metric.h"

/* ---- node config ---- */

/* How a plugin reads its node's config: scalars through the policy table
 * (the same types, parsing and messages as a service's config file), and
 * optionally maps through config_map, for what a table cannot say (the tag
 * processor's `tags: {rack: r1}`). */
typedef struct fr_node_policy {
    const fr_cfg_field *fields;
    size_t nfields;
    size_t config_size;
    /* Optional. Called for each config entry whose value is a map, after
     * the scalars. Returns 0, FR_EUNKNOWN when key takes no map (the loader
     * then says so), or another code with err->message filled. */
    int (*config_map)(void *config, const char *key, const fr_mf_map *value, fr_error *err);
    /* Optional: frees what config_map stored in config. */
    void (*config_free)(void *config);
} fr_node_policy;

/* Parses a node's config map into a new zeroed config_size struct:
 * defaults, then each entry (a scalar through fr_config_set; a map through
 * config_map). A key with capitals is read as its snake_case form, so
 * snap's "BufLength" sets buf_length. plugin names the plugin in
 * messages; node_path is the node's manifest path ("workflow.collect.process[0]"). Unknown keys and
 * bad values fail with err->where "<node_path>.config.<key>" and
 * err->message naming the key. Free with fr_node_config_free. */
int fr_node_config_load(const fr_node_policy *p, const char *plugin, const fr_mf_map *config,
                        const char *node_path, void **out, fr_error *err);
void fr_node_config_free(const fr_node_policy *p, void *config);

/* Rewrites an error a plugin's init or config_map filled (where = a config
 * key or "") to name the node: where becomes "<node_path>.config.<key>"
 * (or node_path) and the message is prefixed with the plugin's name. */
void fr_node_error_locate(fr_error *err, const char *plugin, const char *node_path);

/* ---- processors ---- */

#define FR_PROCESSOR_ABI 1

typedef struct fr_process_req {
    const fr_batch *in; /* the batch to process; read only */
    fr_batch *out;      /* empty, with in's envelope and batch-level tags:
                           append what passes on. Strings of in may be
                           shared into out (fr_batch_add_ref): in outlives
                           out's use. */
} fr_process_req;

typedef struct fr_processor_plugin {
    uint32_t abi;     /* FR_PROCESSOR_ABI */
    const char *name; /* "tag": the node's plugin_name */
    uint32_t version;
    const char *description;
    fr_node_policy config;

    /* Creates an instance from its parsed config (valid and unchanged until
     * destroy). On failure fill err (where = the config key) and return a
     * negative code: the task is refused. */
    int (*init)(void **state, const void *config, fr_error *err);

    /* Processes one batch. Calls on one instance never overlap (the engine
     * holds the node's lock), and come in the order batches arrived. Time
     * in a processor is the metrics' own timestamps, never the clock: a
     * replayed or simulated stream behaves as the live one did. Returns 0,
     * or a negative code with err filled: the engine counts the failure and
     * passes the batch on unprocessed. */
    int (*process)(void *state, const fr_process_req *req, fr_error *err);

    /* Frees the instance. Safe on a half-initialised state. */
    void (*destroy)(void *state);

    /* Optional: packs one msgpack map of the instance's own figures (series
     * kept, outliers seen...) for pipeline.list. Called under the node's
     * lock. */
    void (*stats)(void *state, msgpack_packer *pk);
} fr_processor_plugin;

/* ---- sinks (publisher plugins) ---- */

#define FR_SINK_ABI 1

typedef struct fr_sink_info {
    const char *id;        /* "<task id>/<node path>": unique per sink instance
                              and stable across restarts (dedup keys use it) */
    const char *task;      /* task id */
    const char *task_name; /* the task's name (its id when it has none) */
    const char *path;      /* the publish node's path below workflow.collect:
                              "publish[0]", "process[0].publish[1]" */
    const char *state_dir; /* a directory of the sink's own (exists), or NULL
                              when the publisher persists nothing */
} fr_sink_info;

typedef struct fr_sink_plugin {
    uint32_t abi;     /* FR_SINK_ABI */
    const char *name; /* "postgresql": the node's plugin_name */
    uint32_t version;
    const char *description;
    fr_node_policy config;

    /* Creates an instance. Must not wait long for a remote side that is
     * down: connect lazily in write, so a sink that is down at start only
     * delays delivery (the spool holds the batches). info's strings stay
     * valid until destroy. */
    int (*init)(void **state, const void *config, const fr_sink_info *info, fr_error *err);

    /* Writes n batches, in spool order. One call at a time per instance, on
     * the sink's own delivery thread (it may block, up to the sink's own
     * timeouts). Returns:
     *   0          every batch is stored for good in the sink; the engine
     *              confirms them and the spool may drop them;
     *   a code for which fr_sink_retryable() is true (FR_EBUSY, FR_EIO,
     *              FR_ETIMEDOUT, FR_ECLOSED, ...): not stored, or not all;
     *              the engine backs off and calls again with the same
     *              batches; fill err (the log line says why);
     *   any other code: one of the batches can never be stored (too big for
     *              the sink, refused by its schema...): the engine writes
     *              them one at a time to find it, moves it to the spool's
     *              rejected folder and counts it.
     * The same batch may come again after a crash or a resend: a sink
     * drops what it already stored where its store lets it tell
     * (fr_batch_stream and seq identify a batch; info->id the sink). */
    int (*write)(void *state, fr_batch *const *batches, size_t n, fr_error *err);

    /* Frees the instance (closes connections). Safe on a half-initialised
     * state. */
    void (*destroy)(void *state);

    /* Optional, as fr_processor_plugin.stats; never called while a write
     * of the same instance runs. */
    void (*stats)(void *state, msgpack_packer *pk);
} fr_sink_plugin;

/* True for the codes a sink returns when it may take the batches later. */
bool fr_sink_retryable(int rv);

/* ---- listing plugins ---- */

/* Packs one entry of a stage's plugin.list: {name, version, description,
 * config: [{key, default, help}...]}. */
void fr_plugin_entry_pack(msgpack_packer *pk, const char *name, uint32_t version,
                          const char *description, const fr_node_policy *config);

/* Writes "a, b, c" into out (cut short to cap): the names of n plugins,
 * name(i) giving the i-th; for "no such plugin (here: ...)" messages. */
void fr_names_join(char *out, size_t cap, size_t n, const char *(*name)(size_t i));

#endif
