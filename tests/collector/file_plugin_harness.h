/* Drives one collector plugin the way a task does, for the suites of the
 * plugins that read files (process, iocm, openfoam, spark, cloudsuite):
 * config from "key=value" strings through the plugin's own policy table,
 * init, collect into a batch with a query and a chosen clock, destroy.
 * Every collect also checks that each metric emitted matches a catalog
 * entry of the same type and unit. */
#ifndef FILE_PLUGIN_HARNESS_H
#define FILE_PLUGIN_HARNESS_H

#include "testsupport.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/config.h"
#include "fresco/plugin.h"

typedef struct harness {
    const fr_collector_plugin *p;
    void *config;
    void *state;
    fr_batch *batch;
    fr_error err;
} harness;

/* Loads the config through fr_plugin_config_load, as a task does
 * ("key=value" strings, NULL-terminated; defaults for the rest), and
 * calls init. Returns init's result (err filled); a config the policy
 * refuses fails the test. */
static inline int harness_open(harness *h, const fr_collector_plugin *p, const char *const *kv)
{
    memset(h, 0, sizeof(*h));
    h->p = p;
    const char *keys[16] = {NULL}, *values[16] = {NULL};
    char *copies[16] = {NULL};
    size_t n = 0;
    for (size_t i = 0; kv != NULL && kv[i] != NULL; i++) {
        assert_true(n < 16);
        copies[n] = strdup(kv[i]);
        assert_non_null(copies[n]);
        char *eq = strchr(copies[n], '=');
        assert_non_null(eq);
        *eq = '\0';
        keys[n] = copies[n];
        values[n] = eq + 1;
        n++;
    }
    int rv =
        fr_plugin_config_load(p, keys, values, n, "workflow.collect.config", &h->config, &h->err);
    for (size_t i = 0; i < n; i++) {
        free(copies[i]);
    }
    if (rv != 0) {
        fail_msg("config refused: %s: %s", h->err.where, h->err.message);
    }
    h->batch = fr_batch_new("task", "node", 0);
    assert_non_null(h->batch);
    fr_error_clear(&h->err);
    return p->init(&h->state, h->config, &h->err);
}

static inline void harness_close(harness *h)
{
    if (h->p != NULL && h->state != NULL) {
        h->p->destroy(h->state);
    }
    if (h->config != NULL) {
        fr_plugin_config_free(h->p, h->config);
    }
    fr_batch_destroy(h->batch);
    memset(h, 0, sizeof(*h));
}

static inline const fr_metric_info *harness_catalog_entry(const fr_collector_plugin *p,
                                                          const char *ns)
{
    for (size_t i = 0; i < p->ncatalog; i++) {
        if (fr_ns_match(p->catalog[i].ns, ns)) {
            return &p->catalog[i];
        }
    }
    return NULL;
}

/* Runs one collect for the queries (NULL-terminated) at now_ns, into a
 * fresh batch. Returns collect's result, err filled. */
static inline int harness_collect(harness *h, const char *const *queries, int64_t now_ns)
{
    fr_ns_query *q = fr_ns_query_new();
    assert_non_null(q);
    for (size_t i = 0; queries[i] != NULL; i++) {
        assert_fr_ok(fr_ns_query_add(q, queries[i], &h->err));
    }
    assert_fr_ok(fr_batch_reset(h->batch, "task", "node", 0));
    fr_error_clear(&h->err);
    fr_collect_req req = {.query = q, .now_ns = now_ns, .out = h->batch};
    int rv = h->p->collect(h->state, &req, &h->err);
    fr_ns_query_destroy(q);
    for (uint32_t i = 0; i < h->batch->nmetrics; i++) {
        const fr_metric *m = &h->batch->metrics[i];
        const fr_metric_info *info = harness_catalog_entry(h->p, m->ns);
        if (info == NULL) {
            fail_msg("%s emitted %s, which is not in its catalog", h->p->name, m->ns);
        }
        if (info->type != m->value.type || strcmp(info->unit, m->unit) != 0) {
            fail_msg("%s: %s has type %s unit '%s', the catalog says %s '%s'", h->p->name, m->ns,
                     fr_value_type_name(m->value.type), m->unit, fr_value_type_name(info->type),
                     info->unit);
        }
    }
    return rv;
}

static inline int harness_collect1(harness *h, const char *query, int64_t now_ns)
{
    const char *q[] = {query, NULL};
    return harness_collect(h, q, now_ns);
}

static inline const fr_metric *harness_find(const harness *h, const char *ns)
{
    const fr_metric *found = NULL;
    for (uint32_t i = 0; i < h->batch->nmetrics; i++) {
        if (strcmp(h->batch->metrics[i].ns, ns) == 0) {
            if (found != NULL) {
                fail_msg("%s emitted twice in one collect", ns);
            }
            found = &h->batch->metrics[i];
        }
    }
    return found;
}

static inline const fr_metric *harness_get(const harness *h, const char *ns)
{
    const fr_metric *m = harness_find(h, ns);
    if (m == NULL) {
        fail_msg("%s not emitted (%u metrics)", ns, h->batch->nmetrics);
    }
    return m;
}

static inline double harness_f64(const harness *h, const char *ns)
{
    const fr_metric *m = harness_get(h, ns);
    assert_int_equal(m->value.type, FR_VAL_DOUBLE);
    return m->value.v.d;
}

static inline int64_t harness_i64(const harness *h, const char *ns)
{
    const fr_metric *m = harness_get(h, ns);
    assert_int_equal(m->value.type, FR_VAL_INT64);
    return m->value.v.i;
}

static inline uint64_t harness_u64(const harness *h, const char *ns)
{
    const fr_metric *m = harness_get(h, ns);
    assert_int_equal(m->value.type, FR_VAL_UINT64);
    return m->value.v.u;
}

/* The plugin's static description is sound: names, units, descriptions,
 * one named dynamic element per '*', policy keys unique and documented. */
static inline void harness_check_description(const fr_collector_plugin *p)
{
    assert_int_equal(p->abi, FR_PLUGIN_ABI);
    assert_non_null(p->description);
    assert_true(p->ncatalog > 0);
    for (size_t i = 0; i < p->ncatalog; i++) {
        const fr_metric_info *m = &p->catalog[i];
        size_t stars = 0;
        for (const char *s = m->ns; (s = strstr(s, "/*")) != NULL; s += 2) {
            stars++;
        }
        if (stars != m->ndyn) {
            fail_msg("%s: %zu '*' but %zu dynamic elements", m->ns, stars, m->ndyn);
        }
        for (size_t k = 0; k < m->ndyn; k++) {
            assert_non_null(m->dyn[k].name);
            assert_true(strlen(m->dyn[k].description) > 0);
        }
        assert_non_null(m->unit);
        assert_true(strlen(m->description) > 0);
        for (size_t j = i + 1; j < p->ncatalog; j++) {
            if (strcmp(m->ns, p->catalog[j].ns) == 0) {
                fail_msg("%s listed twice", m->ns);
            }
        }
    }
    for (size_t i = 0; i < p->npolicy; i++) {
        assert_true(strlen(p->policy[i].help) > 0);
        for (size_t j = i + 1; j < p->npolicy; j++) {
            assert_string_not_equal(p->policy[i].key, p->policy[j].key);
        }
    }
}

/* Appends text to a file (the writer of a log growing between ticks). */
static inline void harness_append(const char *path, const char *text)
{
    FILE *f = fopen(path, "ae");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

/* Reads a whole file into a malloc'd string. */
static inline char *harness_slurp(const char *path)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        fail_msg("cannot open %s", path);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* Copies fixture `rel` (under tests/collector/fixtures) to path. */
static inline void harness_copy_fixture(const char *rel, const char *path)
{
    char *full = NULL, src[4096];
    assert_true(asprintf(&full, "tests/collector/fixtures/%s", rel) > 0);
    char *text = harness_slurp(tst_src(src, sizeof(src), full));
    assert_int_equal(tst_write_file(path, text, strlen(text)), 0);
    free(text);
    free(full);
}

/* docs/plugins/<name>.md names every catalog namespace, in its display
 * form (/intel/process/[process]/rss), and every config key (`key`). */
static inline void harness_check_docs(const fr_collector_plugin *p)
{
    char rel[256], path[4096];
    snprintf(rel, sizeof(rel), "docs/plugins/%s.md", p->name);
    char *doc = harness_slurp(tst_src(path, sizeof(path), rel));
    for (size_t i = 0; i < p->ncatalog; i++) {
        const fr_metric_info *m = &p->catalog[i];
        char shown[512] = "";
        size_t k = 0;
        for (const char *c = m->ns; *c != '\0'; c++) {
            size_t n = strlen(shown);
            if (*c == '*' && k < m->ndyn) {
                snprintf(shown + n, sizeof(shown) - n, "[%s]", m->dyn[k++].name);
            } else if (n + 1 < sizeof(shown)) {
                shown[n] = *c;
                shown[n + 1] = '\0';
            }
        }
        if (strstr(doc, shown) == NULL) {
            fail_msg("%s does not document %s", rel, shown);
        }
    }
    for (size_t i = 0; i < p->npolicy; i++) {
        char key[128];
        snprintf(key, sizeof(key), "`%s`", p->policy[i].key);
        if (strstr(doc, key) == NULL) {
            fail_msg("%s does not document config key %s", rel, key);
        }
    }
    free(doc);
}

#define HARNESS_SEC(s) ((int64_t)(s)*1000000000)

#endif
