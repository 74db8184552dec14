#include "pp_harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/buf.h"
#include "fresco/mpdoc.h"
#include "testsupport.h"

static int pp_open_manifest(pp_node *n, const fr_processor_plugin *plugin, fr_manifest *m,
                            fr_error *err)
{
    n->plugin = plugin;
    n->manifest = m;
    if (m->collect.nprocess == 0) {
        pp_close(n);
        return fr_error_set(err, FR_EINVAL, NULL, "the manifest has no process node");
    }
    const fr_mf_node *node = &m->collect.process[0];
    int rv = fr_node_config_load(&plugin->config, plugin->name, &node->config, node->path,
                                 &n->config, err);
    if (rv == 0) {
        rv = plugin->init(&n->state, n->config, err);
        if (rv != 0) {
            fr_node_error_locate(err, plugin->name, node->path);
        }
    }
    if (rv != 0) {
        pp_close(n);
    }
    return rv;
}

int pp_open(pp_node *n, const fr_processor_plugin *plugin, const char *config, fr_error *err)
{
    memset(n, 0, sizeof(*n));
    char text[4096];
    snprintf(text, sizeof(text),
             "version: 1\n"
             "schedule: {type: simple, interval: 1s}\n"
             "workflow:\n"
             "  collect:\n"
             "    metrics: {/intel/mock/*: {}}\n"
             "    process:\n"
             "      - plugin_name: %s\n"
             "%s%s\n",
             plugin->name, config[0] != '\0' ? "        config: " : "", config);
    fr_manifest *m = NULL;
    int rv = fr_manifest_parse(text, strlen(text), "task.yaml", &m, err);
    if (rv != 0) {
        return rv;
    }
    return pp_open_manifest(n, plugin, m, err);
}

void pp_must_open(pp_node *n, const fr_processor_plugin *plugin, const char *config)
{
    fr_error err;
    int rv = pp_open(n, plugin, config, &err);
    if (rv != 0) {
        fail_msg("%s %s: %s: %s", plugin->name, config, err.where, err.message);
    }
}

int pp_open_file(pp_node *n, const fr_processor_plugin *plugin, const char *path, fr_error *err)
{
    memset(n, 0, sizeof(*n));
    fr_manifest *m = NULL;
    int rv = fr_manifest_load_file(path, &m, err);
    if (rv != 0) {
        return rv;
    }
    return pp_open_manifest(n, plugin, m, err);
}

void pp_close(pp_node *n)
{
    if (n->plugin != NULL && n->state != NULL) {
        n->plugin->destroy(n->state);
    }
    if (n->plugin != NULL) {
        fr_node_config_free(&n->plugin->config, n->config);
    }
    fr_manifest_free(n->manifest);
    memset(n, 0, sizeof(*n));
}

int pp_run(pp_node *n, const fr_batch *in, fr_batch **out, fr_error *err)
{
    *out = NULL;
    fr_error_clear(err);
    fr_batch *o = fr_batch_new(in->task, in->source, in->seq);
    assert_non_null(o);
    for (uint32_t i = 0; i < in->ntags; i++) {
        assert_fr_ok(fr_batch_add_tag(o, in->tags[i].key, in->tags[i].value));
    }
    fr_process_req req = {.in = in, .out = o};
    int rv = n->plugin->process(n->state, &req, err);
    if (rv != 0) {
        fr_batch_destroy(o);
        return rv;
    }
    /* What the plugin built must be what a publisher decodes. */
    fr_buf buf = {0};
    assert_fr_ok(fr_batch_encode(o, &buf));
    fr_batch *back = NULL;
    fr_error derr;
    int drv = fr_batch_decode(buf.data, buf.len, &back, &derr);
    if (drv != 0) {
        fail_msg("output does not decode: %s: %s", derr.where, derr.message);
    }
    assert_true(fr_batch_equal(o, back));
    fr_buf_free(&buf);
    fr_batch_destroy(o);
    *out = back;
    return 0;
}

fr_batch *pp_must_run(pp_node *n, const fr_batch *in)
{
    fr_batch *out = NULL;
    fr_error err;
    int rv = pp_run(n, in, &out, &err);
    if (rv != 0) {
        fail_msg("%s process: %d %s: %s", n->plugin->name, rv, err.where, err.message);
    }
    return out;
}

uint64_t pp_stat(pp_node *n, const char *key)
{
    assert_non_null(n->plugin->stats);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    n->plugin->stats(n->state, &pk);
    fr_doc doc;
    fr_error err;
    assert_fr_ok(fr_doc_decode(sb.data, sb.size, &doc, &err));
    uint64_t u = 0;
    if (fr_node_get_u64(doc.root, key, &u) != 0) {
        fail_msg("stats of %s have no unsigned '%s'", n->plugin->name, key);
    }
    fr_doc_free(&doc);
    msgpack_sbuffer_destroy(&sb);
    return u;
}

fr_batch *pp_batch(uint64_t seq)
{
    fr_batch *b = fr_batch_new("task-1", "node-1", seq);
    assert_non_null(b);
    return b;
}

fr_metric *pp_add(fr_batch *b, const char *ns, int64_t ts, fr_value v, const char *unit, ...)
{
    fr_metric *m = fr_batch_add(b, ns, ts, v, unit);
    assert_non_null(m);
    va_list ap;
    va_start(ap, unit);
    const char *k;
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *val = va_arg(ap, const char *);
        assert_fr_ok(fr_batch_metric_tag(b, m, k, val));
    }
    va_end(ap);
    return m;
}

const char *pp_tag(const fr_metric *m, const char *key)
{
    for (uint32_t i = 0; i < m->ntags; i++) {
        if (strcmp(m->tags[i].key, key) == 0) {
            return m->tags[i].value;
        }
    }
    return NULL;
}

size_t pp_count(const fr_batch *b, const char *ns)
{
    size_t n = 0;
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        n += strcmp(b->metrics[i].ns, ns) == 0;
    }
    return n;
}

const fr_metric *pp_find(const fr_batch *b, const char *ns, int64_t ts)
{
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        if (b->metrics[i].ts == ts && strcmp(b->metrics[i].ns, ns) == 0) {
            return &b->metrics[i];
        }
    }
    return NULL;
}
