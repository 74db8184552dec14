/* fresco-processor: runs each task's processing tree over its batches and
 * hands the outputs to the publishers.
 *
 * Tasks arrive over the control socket (pipeline.put from the collector,
 * schemas/pipeline.md); the processor checks its nodes, passes the task on
 * to its publishers (which check theirs), keeps it (and a copy in
 * state_dir) until pipeline.remove.
 *
 * Data path: a batch is acknowledged only once every output it produced
 * has been acknowledged by a publisher (which acks once the output is in
 * its spool), so a processor that dies loses nothing: its sender resends
 * what was not acknowledged, to this or another replica. A batch of a task
 * not known here yet is answered "busy" (the collector's next put brings
 * it); one of a task removed here is refused. A batch seen before is
 * acknowledged without running it again; one whose first copy is still in
 * flight is answered busy. Processed outputs are also published as events
 * on "metrics/<task>/<route>" for `fresco task watch --processed`. */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builtin.h"
#include "fresco/data.h"
#include "fresco/event.h"
#include "fresco/log.h"
#include "fresco/metric.h"
#include "fresco/pipectl.h"
#include "fresco/service.h"
#include "ptask.h"

typedef struct processor_conf {
    fr_service_conf svc;
    char *data_in;
    fr_strlist publishers;
    fr_strlist publisher_controls;
    int64_t data_workers;
    int64_t window;
    int64_t resend_ms;
    int64_t control_timeout_ms;
} processor_conf;

static const fr_cfg_field processor_fields[] = {
    FR_SERVICE_FIELDS(processor_conf, svc, "tcp://127.0.0.1:7410", "tcp://127.0.0.1:7412"),
    {"data_in", FR_CFG_STRING, "tcp://127.0.0.1:7411", offsetof(processor_conf, data_in),
     "address batches arrive on (nng REP, listens)", 0, 0, NULL},
    {"publishers", FR_CFG_LIST, "tcp://127.0.0.1:7421", offsetof(processor_conf, publishers),
     "publisher data-in addresses to dial (outputs are spread over them)", 0, 0, NULL},
    {"publisher_controls", FR_CFG_LIST, "tcp://127.0.0.1:7420",
     offsetof(processor_conf, publisher_controls),
     "publisher control addresses: every task is passed on to each", 0, 0, NULL},
    {"data_workers", FR_CFG_INT, "32", offsetof(processor_conf, data_workers),
     "batches held at once (each until its outputs are acknowledged)", 1, 1024, NULL},
    {"window", FR_CFG_INT, "32", offsetof(processor_conf, window),
     "outputs in flight to the publishers", 1, 4096, NULL},
    {"resend", FR_CFG_DURATION, "2s", offsetof(processor_conf, resend_ms),
     "resend an output not acknowledged within this", 10, 3600000, NULL},
    {"control_timeout", FR_CFG_DURATION, "2s", offsetof(processor_conf, control_timeout_ms),
     "how long a publisher may take to answer pipeline.put", 10, 60000, NULL},
};

static const fr_cfg_spec processor_spec = {"processor", processor_fields,
                                           sizeof(processor_fields) / sizeof(processor_fields[0])};

/* A batch held until its outputs are acknowledged. */
typedef struct held {
    fr_data_call *call;
    atomic_int remaining; /* outputs not yet done, +1 while being sent */
    atomic_bool retry;    /* an output was abandoned: answer busy */
    char *key;            /* stream, for the in-flight table */
    uint64_t seq;
    size_t slot; /* index in the in-flight table */
} held;

typedef struct ptable_entry {
    ptask *t;
    fr_buf args;    /* the put's args, canonical: a repeat put is a no-op */
    bool publishes; /* some process node has publish children */
} ptable_entry;

typedef struct processor {
    fr_service *svc;
    const processor_conf *conf;
    const char *state_dir;
    fr_data_receiver *rx;
    fr_data_sender *tx;
    fr_ctl_fanout *pubctl;
    fr_event_pub *events;
    fr_seqwin *seen;
    atomic_bool stopping;

    pthread_mutex_t mu; /* tasks, tombstones, inflight */
    ptable_entry *tasks;
    size_t ntasks, captasks;
    fr_tombstones removed; /* their late batches are refused, not retried */
    held **inflight;       /* [data_workers] */
    size_t ninflight_cap;

    _Atomic uint64_t *batches_in, *metrics_in, *metrics_out, *outputs, *duplicates, *rejected,
        *busy, *unknown_task, *outputs_refused;
} processor;

static processor proc;

/* ---- the task table (under proc.mu) ---- */

static ptable_entry *task_find_locked(const char *id)
{
    for (size_t i = 0; i < proc.ntasks; i++) {
        if (strcmp(ptask_id(proc.tasks[i].t), id) == 0) {
            return &proc.tasks[i];
        }
    }
    return NULL;
}

/* ---- data path ---- */

static void held_finish(held *h)
{
    bool retry = atomic_load(&h->retry);
    pthread_mutex_lock(&proc.mu);
    proc.inflight[h->slot] = NULL;
    pthread_mutex_unlock(&proc.mu);
    if (retry) {
        fr_error err;
        fr_error_set(&err, FR_EBUSY, NULL, "an output could not be handed on: send it again");
        fr_data_answer(h->call, FR_EBUSY, &err);
    } else {
        fr_seqwin_check(proc.seen, h->key, h->seq);
        fr_data_answer(h->call, 0, NULL);
    }
    free(h->key);
    free(h);
}

static void held_release(held *h)
{
    if (atomic_fetch_sub(&h->remaining, 1) == 1) {
        held_finish(h);
    }
}

static void output_done(void *arg, int rv, const fr_error *err)
{
    held *h = arg;
    if (rv == FR_EREMOTE) {
        /* The publisher will never take it: sending it again changes
         * nothing, so the input is acknowledged and the loss counted. */
        atomic_fetch_add(proc.outputs_refused, 1);
        fr_warn("data", "an output of %s was refused by a publisher: %s", h->key,
                err != NULL ? err->message : "");
    } else if (rv != 0) {
        atomic_store(&h->retry, true);
    }
    held_release(h);
}

/* Claims a slot of the in-flight table for key/seq; FR_EBUSY when that
 * batch is in flight already. */
static int inflight_claim(held *h)
{
    pthread_mutex_lock(&proc.mu);
    size_t free_slot = proc.ninflight_cap;
    for (size_t i = 0; i < proc.ninflight_cap; i++) {
        held *o = proc.inflight[i];
        if (o == NULL) {
            free_slot = free_slot == proc.ninflight_cap ? i : free_slot;
        } else if (o->seq == h->seq && strcmp(o->key, h->key) == 0) {
            pthread_mutex_unlock(&proc.mu);
            return FR_EBUSY;
        }
    }
    if (free_slot == proc.ninflight_cap) {
        /* Cannot happen (a slot per receiver context), but never overrun. */
        pthread_mutex_unlock(&proc.mu);
        return FR_EBUSY;
    }
    h->slot = free_slot;
    proc.inflight[free_slot] = h;
    pthread_mutex_unlock(&proc.mu);
    return 0;
}

static void publish_event(const fr_batch *b, const ptask_output *o)
{
    if (proc.events == NULL) {
        return;
    }
    char topic[FR_TOPIC_MAX + 1];
    snprintf(topic, sizeof(topic), "metrics/%s/%s", b->task, o->route);
    fr_event_publish(proc.events, topic, o->wire.data, o->wire.len);
}

static int processor_on_batch(void *ctx, fr_data_call *call, const void *data, size_t len,
                              fr_error *err)
{
    if (atomic_load(&proc.stopping)) {
        return fr_error_set(err, FR_EBUSY, NULL, "processor stopping");
    }
    fr_batch *b = NULL;
    int rv = fr_batch_decode(data, len, &b, err);
    if (rv != 0) {
        atomic_fetch_add(proc.rejected, 1);
        fr_warn("data", "rejected a batch: %s: %s", err->where, err->message);
        return rv;
    }
    if (b->route[0] != '\0') {
        atomic_fetch_add(proc.rejected, 1);
        rv = fr_error_set(err, FR_EINVAL, "route",
                          "a processor takes a collector's batches; this one is an output of %s",
                          b->route);
        fr_batch_destroy(b);
        return rv;
    }
    pthread_mutex_lock(&proc.mu);
    ptable_entry *e = task_find_locked(b->task);
    ptask *t = e != NULL ? e->t : NULL;
    bool removed = t == NULL && fr_tombstones_has(&proc.removed, b->task);
    if (t != NULL) {
        ptask_ref(t);
    }
    pthread_mutex_unlock(&proc.mu);
    if (t == NULL) {
        if (removed) {
            rv = fr_error_set(err, FR_ENOTFOUND, "task", "task %s was removed", b->task);
        } else {
            atomic_fetch_add(proc.unknown_task, 1);
            rv = fr_error_set(err, FR_EBUSY, "task",
                              "task %s is not known here yet (waiting for its pipeline.put)",
                              b->task);
        }
        fr_batch_destroy(b);
        return rv;
    }

    char key[1024];
    fr_batch_stream(b, key, sizeof(key));
    held *h = calloc(1, sizeof(*h));
    if (h == NULL || (h->key = strdup(key)) == NULL) {
        free(h);
        ptask_unref(t);
        fr_batch_destroy(b);
        return fr_error_set(err, FR_EBUSY, NULL, "out of memory");
    }
    h->call = call;
    h->seq = b->seq;
    if (inflight_claim(h) != 0) {
        atomic_fetch_add(proc.busy, 1);
        free(h->key);
        free(h);
        ptask_unref(t);
        fr_batch_destroy(b);
        return fr_error_set(err, FR_EBUSY, NULL, "this batch is in flight already");
    }
    if (fr_seqwin_seen(proc.seen, key, b->seq)) {
        atomic_fetch_add(proc.duplicates, 1);
        atomic_store(&h->remaining, 1);
        held_release(h); /* acknowledges it */
        ptask_unref(t);
        fr_batch_destroy(b);
        return FR_DATA_LATER;
    }

    ptask_outputs outs = {0};
    fr_error perr;
    rv = ptask_run(t, b, &outs, &perr);
    atomic_fetch_add(proc.batches_in, 1);
    atomic_fetch_add(proc.metrics_in, b->nmetrics);
    if (rv != 0) {
        fr_warn("data", "task %s: %s: %s", b->task, perr.where, perr.message);
        atomic_store(&h->retry, true);
        outs.n = 0;
    }
    atomic_store(&h->remaining, (int)outs.n + 1);
    for (size_t i = 0; i < outs.n; i++) {
        ptask_output *o = &outs.v[i];
        publish_event(b, o);
        uint32_t n = o->nmetrics;
        if (fr_data_send_notify(proc.tx, &o->wire, 0, output_done, h) != 0) {
            atomic_store(&h->retry, true);
            held_release(h);
            continue;
        }
        atomic_fetch_add(proc.outputs, 1);
        atomic_fetch_add(proc.metrics_out, n);
    }
    ptask_outputs_free(&outs);
    ptask_unref(t);
    fr_batch_destroy(b);
    held_release(h);
    return FR_DATA_LATER;
}

/* ---- control ops ---- */

static int reply_err(fr_ctl_reply *r, int rv, const char *code, const fr_error *err)
{
    return fr_ctl_reply_error(r, rv, code, err->where, "%s",
                              err->message[0] ? err->message : fr_strerror(rv));
}

static bool has_publish(const fr_mf_node *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i].npublish > 0 || has_publish(v[i].process, v[i].nprocess)) {
            return true;
        }
    }
    return false;
}

/* Installs (or replaces) a task from put args. Takes ownership of t. */
static void task_install(ptask *t, const fr_buf *args, bool publishes)
{
    fr_buf copy = FR_BUF_INIT;
    if (fr_buf_append(&copy, args->data, args->len) != 0) {
        ptask_unref(t);
        return;
    }
    pthread_mutex_lock(&proc.mu);
    ptable_entry *e = task_find_locked(ptask_id(t));
    if (e == NULL && proc.ntasks == proc.captasks) {
        size_t cap = proc.captasks ? proc.captasks * 2 : 8;
        ptable_entry *nv = realloc(proc.tasks, cap * sizeof(*nv));
        if (nv == NULL) {
            pthread_mutex_unlock(&proc.mu);
            fr_buf_free(&copy);
            ptask_unref(t);
            return;
        }
        proc.tasks = nv;
        proc.captasks = cap;
    }
    ptask *old = NULL;
    if (e == NULL) {
        e = &proc.tasks[proc.ntasks++];
    } else {
        old = e->t;
        fr_buf_free(&e->args);
    }
    e->t = t;
    e->args = copy;
    e->publishes = publishes;
    fr_tombstones_set(&proc.removed, ptask_id(t), false);
    pthread_mutex_unlock(&proc.mu);
    ptask_unref(old);
}

/* Builds a task from put args: checks the nodes here. */
static int task_from_args(const fr_node *args, ptask **out, bool *publishes, fr_error *err)
{
    const char *id = NULL, *name = NULL;
    fr_manifest *m = NULL;
    int rv = fr_pipeline_put_unpack(args, &id, &name, &m, err);
    if (rv != 0) {
        return rv;
    }
    rv = ptask_build(m, id, name, out, err);
    *publishes = has_publish(m->collect.process, m->collect.nprocess);
    fr_manifest_free(m);
    return rv;
}

static int op_pipeline_put(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    fr_error err;
    fr_error_clear(&err);
    fr_buf canon = FR_BUF_INIT;
    msgpack_packer cpk;
    msgpack_packer_init(&cpk, &canon, fr_buf_msgpack_write);
    if (fr_node_pack(args, &cpk) != 0) {
        return FR_ENOMEM;
    }
    const char *id = NULL;
    bool publishes = false;
    (void)fr_node_get_str(args, "task", &id);
    /* The same put again (the collector's periodic one): keep the task and
     * its state, but pass it on, so a publisher that restarted has it. */
    bool same = false;
    if (id != NULL) {
        pthread_mutex_lock(&proc.mu);
        ptable_entry *e = task_find_locked(id);
        same = e != NULL && e->args.len == canon.len &&
               memcmp(e->args.data, canon.data, canon.len) == 0;
        publishes = same && e->publishes;
        pthread_mutex_unlock(&proc.mu);
    }
    ptask *t = NULL;
    int rv = 0;
    if (!same) {
        rv = task_from_args(args, &t, &publishes, &err);
        if (rv != 0) {
            fr_buf_free(&canon);
            return reply_err(r, rv, "bad_manifest", &err);
        }
    }
    if (publishes) {
        char code[48] = "";
        size_t accepted = 0;
        rv = fr_ctl_fanout_call(proc.pubctl, "pipeline.put", canon.data, canon.len,
                                (int)proc.conf->control_timeout_ms, &accepted, code, &err);
        if (rv != 0) {
            ptask_unref(t);
            fr_buf_free(&canon);
            return reply_err(r, rv, rv == FR_EREMOTE ? code : "unavailable", &err);
        }
    }
    if (!same) {
        if (proc.state_dir != NULL &&
            fr_pipeline_store_save(proc.state_dir, id, canon.data, canon.len, &err) != 0) {
            fr_warn("pipelines", "task %s is not saved: %s", id, err.message);
        }
        fr_info("pipelines", "task %s (%s): %zu output node(s)", ptask_id(t), ptask_name(t),
                ptask_noutputs(t));
        task_install(t, &canon, publishes);
    }
    fr_buf_free(&canon);
    msgpack_packer *pk = fr_ctl_reply_packer(r);
    msgpack_pack_map(pk, 2);
    msgpack_pack_str(pk, 4);
    msgpack_pack_str_body(pk, "task", 4);
    msgpack_pack_str(pk, strlen(id));
    msgpack_pack_str_body(pk, id, strlen(id));
    msgpack_pack_str(pk, 7);
    msgpack_pack_str_body(pk, "changed", 7);
    if (same) {
        msgpack_pack_false(pk);
    } else {
        msgpack_pack_true(pk);
    }
    return 0;
}

static int op_pipeline_remove(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    const char *id = NULL;
    if (fr_node_get_str(args, "task", &id) != 0) {
        return fr_ctl_reply_error(r, FR_EMISSING, "bad_request", "task",
                                  "\"task\" (a string) is missing");
    }
    pthread_mutex_lock(&proc.mu);
    ptable_entry *e = task_find_locked(id);
    ptask *t = NULL;
    if (e != NULL) {
        t = e->t;
        fr_buf_free(&e->args);
        *e = proc.tasks[--proc.ntasks];
    }
    fr_tombstones_set(&proc.removed, id, true);
    pthread_mutex_unlock(&proc.mu);
    if (proc.state_dir != NULL) {
        fr_pipeline_store_delete(proc.state_dir, id);
    }
    /* Publishers hear of it whether or not this replica had the task. */
    fr_buf args_mp = FR_BUF_INIT;
    fr_error err;
    fr_error_clear(&err);
    if (fr_pipeline_remove_pack(id, &args_mp) == 0) {
        fr_ctl_fanout_call(proc.pubctl, "pipeline.remove", args_mp.data, args_mp.len,
                           (int)proc.conf->control_timeout_ms, NULL, NULL, &err);
    }
    fr_buf_free(&args_mp);
    if (t == NULL) {
        return fr_ctl_reply_error(r, FR_ENOTFOUND, "not_found", "task", "no task %s here", id);
    }
    fr_info("pipelines", "task %s removed", id);
    ptask_unref(t);
    msgpack_packer *pk = fr_ctl_reply_packer(r);
    msgpack_pack_str(pk, strlen(id));
    msgpack_pack_str_body(pk, id, strlen(id));
    return 0;
}

static int op_pipeline_list(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    const char *only = NULL;
    (void)fr_node_get_str(args, "task", &only);
    pthread_mutex_lock(&proc.mu);
    size_t n = 0;
    ptask **v = calloc(proc.ntasks + 1, sizeof(*v));
    for (size_t i = 0; v != NULL && i < proc.ntasks; i++) {
        ptask *t = proc.tasks[i].t;
        if (only == NULL || strcmp(ptask_id(t), only) == 0 || strcmp(ptask_name(t), only) == 0) {
            v[n] = proc.tasks[i].t;
            ptask_ref(v[n++]);
        }
    }
    pthread_mutex_unlock(&proc.mu);
    if (v == NULL) {
        return FR_ENOMEM;
    }
    msgpack_packer *pk = fr_ctl_reply_packer(r);
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        ptask_pack(v[i], pk);
        ptask_unref(v[i]);
    }
    free(v);
    return 0;
}

static int op_plugin_list(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    msgpack_packer *pk = fr_ctl_reply_packer(r);
    msgpack_pack_array(pk, fr_builtin_nprocessors);
    for (size_t i = 0; i < fr_builtin_nprocessors; i++) {
        const fr_processor_plugin *p = fr_builtin_processors[i];
        fr_plugin_entry_pack(pk, p->name, p->version, p->description, &p->config);
    }
    return 0;
}

/* ---- start and stop ---- */

static void task_restore(void *arg, const char *file, const fr_node *args)
{
    fr_error err;
    fr_error_clear(&err);
    ptask *t = NULL;
    bool publishes = false;
    if (task_from_args(args, &t, &publishes, &err) != 0) {
        fr_error("pipelines", "%s: cannot load: %s%s%s", file, err.where, err.where[0] ? ": " : "",
                 err.message);
        return;
    }
    fr_buf canon = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &canon, fr_buf_msgpack_write);
    if (fr_node_pack(args, &pk) == 0) {
        task_install(t, &canon, publishes);
    } else {
        ptask_unref(t);
    }
    fr_buf_free(&canon);
}

static int processor_start(fr_service *svc, void *confp)
{
    processor_conf *conf = confp;
    proc.svc = svc;
    proc.conf = conf;
    const char *sd = fr_service_conf_get(svc)->state_dir;
    proc.state_dir = sd != NULL && sd[0] != '\0' ? sd : NULL;
    proc.events = fr_service_events(svc);
    proc.batches_in = fr_service_counter(svc, "batches_in");
    proc.metrics_in = fr_service_counter(svc, "metrics_in");
    proc.metrics_out = fr_service_counter(svc, "metrics_out");
    proc.outputs = fr_service_counter(svc, "outputs_sent");
    proc.duplicates = fr_service_counter(svc, "batches_duplicate");
    proc.rejected = fr_service_counter(svc, "batches_rejected");
    proc.busy = fr_service_counter(svc, "busy_answers");
    proc.unknown_task = fr_service_counter(svc, "batches_unknown_task");
    proc.outputs_refused = fr_service_counter(svc, "outputs_refused");
    if (pthread_mutex_init(&proc.mu, NULL) != 0 || (proc.seen = fr_seqwin_new()) == NULL) {
        return FR_ENOMEM;
    }
    proc.ninflight_cap = (size_t)conf->data_workers;
    proc.inflight = calloc(proc.ninflight_cap, sizeof(*proc.inflight));
    if (proc.inflight == NULL) {
        return FR_ENOMEM;
    }
    int rv = fr_ctl_fanout_open(&proc.pubctl, (const char *const *)conf->publisher_controls.v,
                                conf->publisher_controls.n, fr_service_tls(svc));
    if (rv != 0) {
        return rv;
    }
    fr_pipeline_store_load(proc.state_dir, task_restore, NULL);
    if (conf->publishers.n == 0) {
        fr_error("processor", "no publishers configured (publishers: []): nothing to send to");
        return FR_ECONFIG;
    }
    /* Every held batch may have all its outputs queued at once. */
    fr_data_sender_opts o = {
        .window = (int)conf->window,
        .resend_ms = (int)conf->resend_ms,
        .queue = 4096,
    };
    rv = fr_data_sender_open(&proc.tx, (const char *const *)conf->publishers.v, conf->publishers.n,
                             fr_service_tls(svc), &o);
    if (rv != 0) {
        return rv;
    }
    rv = fr_data_receiver_start_deferring(&proc.rx, conf->data_in, true, fr_service_tls(svc),
                                          (int)conf->data_workers, processor_on_batch, &proc);
    if (rv != 0) {
        return rv;
    }
    fr_service_add_address(svc, "data_in", conf->data_in);
    static const fr_ctl_op ops[] = {
        {"pipeline.put", op_pipeline_put, NULL,
         "{task, name, manifest}: run the task's process nodes here (and pass it on to the "
         "publishers)"},
        {"pipeline.remove", op_pipeline_remove, NULL, "{task}: forget a task"},
        {"pipeline.list", op_pipeline_list, NULL, "{task?}: tasks with their nodes and counts"},
        {"plugin.list", op_plugin_list, NULL, "the processor plugins built in"},
    };
    return fr_service_add_ops(svc, ops, sizeof(ops) / sizeof(ops[0]));
}

static void processor_stop(fr_service *svc, void *confp)
{
    /* New batches are answered busy; outputs in flight get a moment; then
     * closing the sender releases every held batch (answered busy: its
     * sender resends it elsewhere or later) and the receiver can stop. */
    atomic_store(&proc.stopping, true);
    if (proc.tx != NULL && fr_data_flush(proc.tx, 2000) != 0) {
        fr_warn("data", "outputs still unacknowledged by the publishers at shutdown");
    }
    fr_data_sender_close(proc.tx);
    proc.tx = NULL;
    fr_data_receiver_stop(proc.rx);
    proc.rx = NULL;
    fr_ctl_fanout_close(proc.pubctl);
    proc.pubctl = NULL;
    for (size_t i = 0; i < proc.ntasks; i++) {
        ptask_unref(proc.tasks[i].t);
        fr_buf_free(&proc.tasks[i].args);
    }
    free(proc.tasks);
    proc.tasks = NULL;
    proc.ntasks = proc.captasks = 0;
    fr_tombstones_free(&proc.removed);
    free(proc.inflight);
    proc.inflight = NULL;
    fr_seqwin_destroy(proc.seen);
    proc.seen = NULL;
}

static const fr_service_def processor_def = {
    .name = "processor",
    .spec = &processor_spec,
    .conf_size = sizeof(processor_conf),
    .start = processor_start,
    .stop = processor_stop,
};

int main(int argc, char **argv)
{
    return fr_service_main(&processor_def, argc, argv);
}
