/* Collector plugins.
 *
 * A plugin is a static table of named callbacks plus its catalog and its
 * config policy, registered at build time from the CMake list
 * FRESCO_COLLECTOR_PLUGINS (services/collector/plugins/<name>/), or loaded
 * from a shared object that exports the same struct under the symbol
 * `fresco_collector_plugin` (fresco plugin load FILE).
 *
 * Life of a plugin instance: one per task that asks for its metrics.
 *   init(config)  -> state           at task creation (bad config: refused)
 *   collect(state, req) ...           once per tick, on the task's thread
 *   destroy(state)                    when the task is removed
 * Instances never share state, so a plugin needs no locking of its own
 * unless it keeps process-wide caches. collect() must not sleep to measure
 * rates: keep the previous reading in state and compute from deltas.
 *
 * Every file path or URL a plugin reads is a config key (with the real
 * system's path as default), so tests point it at fixtures. */
#ifndef FRESCO_PLUGIN_H
#define FRESCO_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fresco/config.h"
#include "fresco/err.h"
#include "fresco/metric.h"
#include "fresco/ns.h"

#define FR_PLUGIN_ABI 1

/* A named dynamic element of a catalog pattern. */
typedef struct fr_dyn_info {
    const char *name;        /* "domain" */
    const char *description; /* "libvirt domain name" */
} fr_dyn_info;

/* One catalog entry: a namespace pattern the plugin offers. */
typedef struct fr_metric_info {
    const char *ns; /* "/intel/libvirt/ * /cpu/cputime" (no spaces): '*' = dynamic */
    fr_value_type type;
    const char *unit; /* "ns", "bytes", "jiffies", "percent", "" */
    const char *description;
    const fr_dyn_info *dyn; /* one per '*' in ns, in order; NULL when none */
    size_t ndyn;
} fr_metric_info;

/* What one collect() call is asked for. The plugin appends metrics whose
 * concrete namespace matches `query` (fr_ns_query_match), with timestamp
 * `now_ns` unless the source gives its own. Tags configured for the task
 * are added by the collector afterwards; a plugin adds only its own (e.g.
 * a Nova instance id). */
typedef struct fr_collect_req {
    const fr_ns_query *query;
    int64_t now_ns;
    fr_batch *out;
} fr_collect_req;

typedef struct fr_collector_plugin {
    uint32_t abi;     /* FR_PLUGIN_ABI */
    const char *name; /* "libvirt": one word, [a-z0-9_] */
    uint32_t version;
    const char *description;
    const char *ns_prefix; /* "/intel/libvirt": the namespaces it owns */

    const fr_metric_info *catalog;
    size_t ncatalog;

    /* Config policy: the keys a task may set under workflow.collect.config
     * for this plugin's namespace prefix, parsed into a struct of
     * config_size bytes (zeroed, then defaults, then the task's values);
     * unknown keys and bad values are refused at task creation. */
    const fr_cfg_field *policy;
    size_t npolicy;
    size_t config_size;

    /* Creates an instance from its parsed config (which stays valid and
     * unchanged until destroy). On failure fill err (where = the config
     * key) and return a negative code: the task is refused. */
    int (*init)(void **state, const void *config, fr_error *err);

    /* Appends the requested metrics to req->out. Returns 0, or a negative
     * code with err filled: counted against the task's max-failures.
     * Metrics appended before a failure are kept. */
    int (*collect)(void *state, const fr_collect_req *req, fr_error *err);

    /* Frees the instance. Safe on a half-initialised state. */
    void (*destroy)(void *state);
} fr_collector_plugin;

/* The plugins built in (generated from FRESCO_COLLECTOR_PLUGINS). */
extern const fr_collector_plugin *const fr_builtin_collectors[];
extern const size_t fr_builtin_ncollectors;

/* Loads a plugin's config: applies `kv` (n pairs of key and value text,
 * as written in the manifest) over the policy's defaults into a new
 * config_size struct. Errors name the key and `where` (the manifest path
 * prefix, e.g. "workflow.collect.config./intel/procfs"). Free with
 * fr_plugin_config_free. */
int fr_plugin_config_load(const fr_collector_plugin *p, const char *const *keys,
                          const char *const *values, size_t n, const char *where, void **config,
                          fr_error *err);
void fr_plugin_config_free(const fr_collector_plugin *p, void *config);

#endif
