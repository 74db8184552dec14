/* Helpers for the collector plugin suites: fixture trees copied into a
 * temporary directory, configs filled from a plugin's policy table, one
 * collect() call, and lookups in the batch it fills. Every helper fails
 * the running test on error. */
#ifndef PLUGIN_FIXTURE_H
#define PLUGIN_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "fresco/plugin.h"

#define PF_SEC 1000000000LL
#define PF_T0  (1800000000LL * PF_SEC) /* a tick time in 2027 */

/* Copies every file under tests/collector/fixtures/<rel> into dir, keeping
 * the relative paths. Existing files are truncated and rewritten in place,
 * so a plugin's open descriptors see the new contents, as with /proc. */
void pf_overlay(const char *dir, const char *rel);

/* A plugin config loaded by fr_plugin_config_load, as a task's
 * workflow.collect.config would give it: kv is key, value, ..., NULL.
 * pf_config fails the test on error; free with pf_config_free. */
int pf_config_load(const fr_collector_plugin *p, const char *const *kv, void **cfg, fr_error *err);
void *pf_config(const fr_collector_plugin *p, const char *const *kv);
void pf_config_free(const fr_collector_plugin *p, void *cfg);

/* Runs one collect() for the NULL-terminated queries at tick time now.
 * Returns its result; *out is a new batch (free it), err filled. */
int pf_collect(const fr_collector_plugin *p, void *state, const char *const *queries, int64_t now,
               fr_batch **out, fr_error *err);

/* The metric named ns, or NULL. */
const fr_metric *pf_find(const fr_batch *b, const char *ns);
/* Its value, failing the test when absent or of another type. */
uint64_t pf_u64(const fr_batch *b, const char *ns);
double pf_f64(const fr_batch *b, const char *ns);
/* The value of tag key on m, or NULL. */
const char *pf_tag(const fr_metric *m, const char *key);
/* Metrics whose namespace matches query. */
size_t pf_count(const fr_batch *b, const char *query);

/* Checks the static description: namespaces under prefixes (NULL-terminated
 * list), one named dynamic element per '*', no namespace twice, every
 * entry described, policy keys unique. */
void pf_check_catalog(const fr_collector_plugin *p, const char *const *prefixes);
/* Checks that every metric in b is offered by a catalog entry of the same
 * type and unit. */
void pf_check_covered(const fr_collector_plugin *p, const fr_batch *b);

#endif
