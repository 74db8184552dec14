/* The collector's plugin registry: the built-in plugins plus those loaded
 * from shared objects with plugin.load. Thread-safe. */
#ifndef COLLECTOR_REGISTRY_H
#define COLLECTOR_REGISTRY_H

#include <msgpack.h>

#include "fresco/plugin.h"

typedef struct registry registry;

/* Creates the registry with every built-in plugin. NULL on out of memory. */
registry *registry_new(void);

/* Unloads what was loaded and frees. Safe on NULL. */
void registry_destroy(registry *r);

/* Loads a plugin from a shared object exporting `fresco_collector_plugin`.
 * Refuses (with err filled) a file that does not open, lacks the symbol,
 * has another ABI, a malformed catalog or a name already loaded. On success
 * *name points to the plugin's name (valid until unloaded). */
int registry_load(registry *r, const char *path, const char **name, fr_error *err);

/* Unloads a loaded plugin by name. FR_ENOTFOUND; FR_EBUSY when a task uses
 * it; FR_EINVAL for a built-in one. */
int registry_unload(registry *r, const char *name, fr_error *err);

/* Takes a reference on the plugin that offers namespace prefix or name;
 * NULL when none. Every reference is returned with registry_release. */
const fr_collector_plugin *registry_acquire_by_name(registry *r, const char *name);
void registry_release(registry *r, const fr_collector_plugin *p);

/* Calls fn for every plugin whose catalog has a pattern that query string q
 * could match (q NULL: every plugin). Stops early when fn returns non-zero
 * and returns that. */
int registry_each(registry *r,
                  int (*fn)(void *arg, const fr_collector_plugin *p, bool builtin,
                            const char *path),
                  void *arg);

/* Packs plugin.list's result: [{name, version, description, ns_prefix,
 * builtin, path, metrics}]. */
void registry_pack_list(registry *r, msgpack_packer *pk);

/* Packs metric.list's result for an optional namespace prefix/query:
 * [{namespace, pattern, plugin, type, unit, description, dynamic:[{name,
 * description}]}], where namespace shows dynamic elements as [name]. */
int registry_pack_catalog(registry *r, const char *query, msgpack_packer *pk, fr_error *err);

/* Checks that a plugin's static description is sound: name, abi, a
 * catalog whose '*' count matches ndyn, policy with unique keys, callbacks
 * present. Used for built-ins in tests and for every loaded object. */
int registry_check_plugin(const fr_collector_plugin *p, fr_error *err);

#endif
