/* A task's processing tree: build, run, report. */
#include "ptask.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "fresco/log.h"
#include "fresco/pipeline.h"

typedef struct pnode pnode;
struct pnode {
    const fr_processor_plugin *p;
    void *config;
    void *state;
    bool inited;
    char *path;      /* below workflow.collect: "process[0].process[1]" */
    bool publishes;  /* has publish children: its output is sent */
    pnode *children; /* its process children */
    size_t nchildren;
    pthread_mutex_t lock; /* one process() at a time; last_error */
    bool lock_init;
    _Atomic uint64_t batches, metrics_in, metrics_out, errors;
    char last_error[448];
};

struct ptask {
    char *id;
    char *name;
    pnode *roots;
    size_t nroots;
    size_t noutputs;
    atomic_int refs;
};

static void pnode_clear(pnode *n)
{
    for (size_t i = 0; i < n->nchildren; i++) {
        pnode_clear(&n->children[i]);
    }
    free(n->children);
    if (n->p != NULL) {
        if (n->inited) {
            n->p->destroy(n->state);
        }
        fr_node_config_free(&n->p->config, n->config);
    }
    if (n->lock_init) {
        pthread_mutex_destroy(&n->lock);
    }
    free(n->path);
}

static void ptask_free(ptask *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->nroots; i++) {
        pnode_clear(&t->roots[i]);
    }
    free(t->roots);
    free(t->id);
    free(t->name);
    free(t);
}

static int pnodes_build(ptask *t, const fr_mf_node *mf, size_t n, const char *parent, pnode **out,
                        fr_error *err);

static const char *processor_name(size_t i)
{
    return fr_builtin_processors[i]->name;
}

static int pnode_build(ptask *t, const fr_mf_node *mf, const char *path, pnode *n, fr_error *err)
{
    char full[544];
    snprintf(full, sizeof(full), "workflow.collect.%s", path);
    if ((n->path = strdup(path)) == NULL) {
        return fr_error_set(err, FR_ENOMEM, full, "out of memory");
    }
    if (pthread_mutex_init(&n->lock, NULL) != 0) {
        return fr_error_set(err, FR_ENOMEM, full, "out of memory");
    }
    n->lock_init = true;
    n->p = fr_processor_find(mf->plugin_name);
    if (n->p == NULL) {
        char names[256];
        fr_names_join(names, sizeof(names), fr_builtin_nprocessors, processor_name);
        return fr_error_set(err, FR_ENOTFOUND, full,
                            "no processor plugin '%s' here (this processor has: %s)",
                            mf->plugin_name, names);
    }
    if (mf->plugin_version != 0 && (uint32_t)mf->plugin_version != n->p->version) {
        return fr_error_set(err, FR_EUNSUPPORTED, full,
                            "processor plugin '%s' is version %u here, the task asks for %lld",
                            n->p->name, n->p->version, (long long)mf->plugin_version);
    }
    int rv = fr_node_config_load(&n->p->config, n->p->name, &mf->config, full, &n->config, err);
    if (rv != 0) {
        return rv;
    }
    fr_error_clear(err);
    rv = n->p->init(&n->state, n->config, err);
    if (rv != 0) {
        if (err->code == 0) {
            err->code = rv;
        }
        fr_node_error_locate(err, n->p->name, full);
        return rv;
    }
    n->inited = true;
    n->publishes = mf->npublish > 0;
    if (n->publishes) {
        t->noutputs++;
    }
    rv = pnodes_build(t, mf->process, mf->nprocess, path, &n->children, err);
    if (rv != 0) {
        return rv;
    }
    n->nchildren = mf->nprocess;
    return 0;
}

static int pnodes_build(ptask *t, const fr_mf_node *mf, size_t n, const char *parent, pnode **out,
                        fr_error *err)
{
    *out = NULL;
    if (n == 0) {
        return 0;
    }
    pnode *v = calloc(n, sizeof(*v));
    if (v == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        char path[512];
        if (parent[0] != '\0') {
            snprintf(path, sizeof(path), "%s.process[%zu]", parent, i);
        } else {
            snprintf(path, sizeof(path), "process[%zu]", i);
        }
        int rv = pnode_build(t, &mf[i], path, &v[i], err);
        if (rv != 0) {
            for (size_t j = 0; j <= i; j++) {
                pnode_clear(&v[j]);
            }
            free(v);
            return rv;
        }
    }
    *out = v;
    return 0;
}

int ptask_build(const fr_manifest *m, const char *id, const char *name, ptask **out, fr_error *err)
{
    *out = NULL;
    fr_error_clear(err);
    ptask *t = calloc(1, sizeof(*t));
    if (t == NULL || (t->id = strdup(id)) == NULL ||
        (t->name = strdup(name != NULL && name[0] != '\0' ? name : id)) == NULL) {
        ptask_free(t);
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    atomic_init(&t->refs, 1);
    int rv = pnodes_build(t, m->collect.process, m->collect.nprocess, "", &t->roots, err);
    if (rv != 0) {
        ptask_free(t);
        return rv;
    }
    t->nroots = m->collect.nprocess;
    *out = t;
    return 0;
}

void ptask_ref(ptask *t)
{
    atomic_fetch_add(&t->refs, 1);
}

void ptask_unref(ptask *t)
{
    if (t != NULL && atomic_fetch_sub(&t->refs, 1) == 1) {
        ptask_free(t);
    }
}

const char *ptask_id(const ptask *t)
{
    return t->id;
}

const char *ptask_name(const ptask *t)
{
    return t->name;
}

size_t ptask_noutputs(const ptask *t)
{
    return t->noutputs;
}

/* ---- running a batch ---- */

/* The batches a run makes, freed together at its end: outputs share
 * strings with their inputs, so none may go before the last encode. */
typedef struct run_batches {
    fr_batch *v[64];
    size_t n;
    fr_batch **more;
    size_t nmore, capmore;
} run_batches;

static int run_keep(run_batches *rb, fr_batch *b)
{
    if (rb->n < sizeof(rb->v) / sizeof(rb->v[0])) {
        rb->v[rb->n++] = b;
        return 0;
    }
    if (rb->nmore == rb->capmore) {
        size_t cap = rb->capmore ? rb->capmore * 2 : 64;
        fr_batch **nv = realloc(rb->more, cap * sizeof(*nv));
        if (nv == NULL) {
            return FR_ENOMEM;
        }
        rb->more = nv;
        rb->capmore = cap;
    }
    rb->more[rb->nmore++] = b;
    return 0;
}

static void run_free(run_batches *rb)
{
    for (size_t i = 0; i < rb->n; i++) {
        fr_batch_destroy(rb->v[i]);
    }
    for (size_t i = 0; i < rb->nmore; i++) {
        fr_batch_destroy(rb->more[i]);
    }
    free(rb->more);
}

static int outputs_add(ptask_outputs *outs, const char *route, const fr_batch *b, fr_error *err)
{
    if (outs->n == outs->cap) {
        size_t cap = outs->cap ? outs->cap * 2 : 4;
        ptask_output *nv = realloc(outs->v, cap * sizeof(*nv));
        if (nv == NULL) {
            return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
        }
        memset(nv + outs->cap, 0, (cap - outs->cap) * sizeof(*nv));
        outs->v = nv;
        outs->cap = cap;
    }
    ptask_output *o = &outs->v[outs->n];
    fr_buf_reset(&o->wire);
    int rv = fr_batch_encode(b, &o->wire);
    if (rv != 0) {
        return fr_error_set(err, rv, route, "cannot encode the output of %s: %s", route,
                            fr_strerror(rv));
    }
    o->route = route;
    o->nmetrics = b->nmetrics;
    outs->n++;
    return 0;
}

/* A fresh output batch with in's envelope and batch-level tags. */
static fr_batch *output_new(const fr_batch *in)
{
    fr_batch *out = fr_batch_new(in->task, in->source, in->seq);
    for (uint32_t i = 0; out != NULL && i < in->ntags; i++) {
        if (fr_batch_add_tag(out, in->tags[i].key, in->tags[i].value) != 0) {
            fr_batch_destroy(out);
            out = NULL;
        }
    }
    return out;
}

/* Copies every metric of in into out by reference (a failed plugin's
 * input passed on as it was). */
static int pass_unprocessed(const fr_batch *in, fr_batch *out)
{
    out->nmetrics = 0;
    for (uint32_t i = 0; i < in->nmetrics; i++) {
        if (fr_batch_add_ref(out, &in->metrics[i]) == NULL) {
            return FR_ENOMEM;
        }
    }
    return 0;
}

static int node_run(pnode *n, const fr_batch *in, run_batches *rb, ptask_outputs *outs,
                    fr_error *err)
{
    fr_batch *out = output_new(in);
    if (out == NULL || run_keep(rb, out) != 0) {
        fr_batch_destroy(out);
        return fr_error_set(err, FR_ENOMEM, n->path, "out of memory");
    }
    fr_process_req req = {.in = in, .out = out};
    fr_error perr;
    fr_error_clear(&perr);
    pthread_mutex_lock(&n->lock);
    int prv = n->p->process(n->state, &req, &perr);
    if (prv != 0) {
        snprintf(n->last_error, sizeof(n->last_error), "%s%s%s", perr.where,
                 perr.where[0] ? ": " : "", perr.message[0] ? perr.message : fr_strerror(prv));
    }
    pthread_mutex_unlock(&n->lock);
    atomic_fetch_add(&n->batches, 1);
    atomic_fetch_add(&n->metrics_in, in->nmetrics);
    if (prv != 0) {
        if (atomic_fetch_add(&n->errors, 1) == 0) {
            fr_warn("process", "%s (%s) failed, passing its batch on unprocessed: %s", n->path,
                    n->p->name, n->last_error);
        }
        if (pass_unprocessed(in, out) != 0) {
            return fr_error_set(err, FR_ENOMEM, n->path, "out of memory");
        }
    }
    atomic_fetch_add(&n->metrics_out, out->nmetrics);
    if (n->publishes && out->nmetrics > 0) {
        int rv = fr_batch_set_route(out, n->path);
        if (rv == 0) {
            rv = outputs_add(outs, n->path, out, err);
        } else {
            fr_error_set(err, rv, n->path, "out of memory");
        }
        if (rv != 0) {
            return rv;
        }
    }
    for (size_t i = 0; i < n->nchildren; i++) {
        int rv = node_run(&n->children[i], out, rb, outs, err);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

int ptask_run(ptask *t, const fr_batch *in, ptask_outputs *outs, fr_error *err)
{
    fr_error_clear(err);
    run_batches rb = {.n = 0};
    int rv = 0;
    for (size_t i = 0; rv == 0 && i < t->nroots; i++) {
        rv = node_run(&t->roots[i], in, &rb, outs, err);
    }
    run_free(&rb);
    return rv;
}

void ptask_outputs_reset(ptask_outputs *outs)
{
    for (size_t i = 0; i < outs->n; i++) {
        fr_buf_reset(&outs->v[i].wire);
    }
    outs->n = 0;
}

void ptask_outputs_free(ptask_outputs *outs)
{
    for (size_t i = 0; i < outs->cap; i++) {
        fr_buf_free(&outs->v[i].wire);
    }
    free(outs->v);
    *outs = (ptask_outputs){0};
}

/* ---- reporting ---- */

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static size_t nodes_count(const pnode *v, size_t n)
{
    size_t c = n;
    for (size_t i = 0; i < n; i++) {
        c += nodes_count(v[i].children, v[i].nchildren);
    }
    return c;
}

static void nodes_pack(pnode *v, size_t n, msgpack_packer *pk)
{
    for (size_t i = 0; i < n; i++) {
        pnode *x = &v[i];
        pthread_mutex_lock(&x->lock);
        bool stats = x->p->stats != NULL;
        msgpack_pack_map(pk, stats ? 9 : 8);
        pack_str(pk, "path");
        pack_str(pk, x->path);
        pack_str(pk, "plugin");
        pack_str(pk, x->p->name);
        pack_str(pk, "publishes");
        if (x->publishes) {
            msgpack_pack_true(pk);
        } else {
            msgpack_pack_false(pk);
        }
        pack_str(pk, "batches");
        msgpack_pack_uint64(pk, atomic_load(&x->batches));
        pack_str(pk, "metrics_in");
        msgpack_pack_uint64(pk, atomic_load(&x->metrics_in));
        pack_str(pk, "metrics_out");
        msgpack_pack_uint64(pk, atomic_load(&x->metrics_out));
        pack_str(pk, "errors");
        msgpack_pack_uint64(pk, atomic_load(&x->errors));
        pack_str(pk, "last_error");
        pack_str(pk, x->last_error);
        if (stats) {
            pack_str(pk, "stats");
            x->p->stats(x->state, pk);
        }
        pthread_mutex_unlock(&x->lock);
        nodes_pack(x->children, x->nchildren, pk);
    }
}

void ptask_pack(ptask *t, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pack_str(pk, "task");
    pack_str(pk, t->id);
    pack_str(pk, "name");
    pack_str(pk, t->name);
    pack_str(pk, "nodes");
    msgpack_pack_array(pk, nodes_count(t->roots, t->nroots));
    nodes_pack(t->roots, t->nroots, pk);
}
