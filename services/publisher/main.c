/* fresco-publisher: writes batches to their tasks' sinks and loses nothing
 * it has acknowledged.
 *
 * Tasks arrive over the control socket (pipeline.put, from the collector
 * and the processors, schemas/pipeline.md): every publish node of the task
 * becomes a delivery (delivery.h), a sink fed from the spool by its own
 * thread.
 *
 * Data path: a batch is checked (it decodes, its task is known, its route
 * is a node with publish children), dropped if seen before (by stream and
 * seq), appended to the spool, and only then acknowledged. When the spool
 * is full (a sink down for long) the answer is busy: the data path pushes
 * back on the processors and the collector. A batch of a task not known
 * here yet is answered busy too (its put is on the way); one of a task
 * removed here is refused. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "builtin.h"
#include "delivery.h"
#include "fresco/data.h"
#include "fresco/log.h"
#include "fresco/metric.h"
#include "fresco/path.h"
#include "fresco/pipectl.h"
#include "fresco/service.h"
#include "spool.h"

typedef struct publisher_conf {
    fr_service_conf svc;
    char *data_in;
    int64_t data_workers;
    char *spool_dir;
    int64_t spool_max;
    int64_t spool_segment;
    bool spool_fsync;
    int64_t group_metrics;
    int64_t backoff_min_ms;
    int64_t backoff_max_ms;
} publisher_conf;

static const fr_cfg_field publisher_fields[] = {
    FR_SERVICE_FIELDS(publisher_conf, svc, "tcp://127.0.0.1:7420", "tcp://127.0.0.1:7422"),
    {"data_in", FR_CFG_STRING, "tcp://127.0.0.1:7421", offsetof(publisher_conf, data_in),
     "address batches arrive on (nng REP, listens)", 0, 0, NULL},
    {"data_workers", FR_CFG_INT, "16", offsetof(publisher_conf, data_workers),
     "batches taken in at once", 1, 1024, NULL},
    {"spool.dir", FR_CFG_STRING, NULL, offsetof(publisher_conf, spool_dir),
     "the spool's directory (default: <state_dir>/spool)", 0, 0, NULL},
    {"spool.max_size", FR_CFG_SIZE, "1GiB", offsetof(publisher_conf, spool_max),
     "spool size past which batches are answered busy", 1 << 20, 1LL << 50, NULL},
    {"spool.segment_size", FR_CFG_SIZE, "64MiB", offsetof(publisher_conf, spool_segment),
     "size of one spool segment file", 4096, 1LL << 30, NULL},
    {"spool.fsync", FR_CFG_BOOL, "false", offsetof(publisher_conf, spool_fsync),
     "fdatasync every append (survives power loss; a kill -9 is survived either way)", 0, 0, NULL},
    {"sink.group_metrics", FR_CFG_INT, "20000", offsetof(publisher_conf, group_metrics),
     "metrics handed to one sink write, at most", 1, 10000000, NULL},
    {"sink.backoff_min", FR_CFG_DURATION, "100ms", offsetof(publisher_conf, backoff_min_ms),
     "first wait before a failed sink write is tried again", 1, 600000, NULL},
    {"sink.backoff_max", FR_CFG_DURATION, "5s", offsetof(publisher_conf, backoff_max_ms),
     "longest wait between tries of a failed sink write (it doubles up to this)", 1, 3600000, NULL},
};

static const fr_cfg_spec publisher_spec = {"publisher", publisher_fields,
                                           sizeof(publisher_fields) / sizeof(publisher_fields[0])};

typedef struct ptask {
    char *id;
    char *name;
    fr_buf args; /* the put's args, canonical */
    delivery **d;
    size_t nd;
} ptask;

typedef struct publisher {
    fr_service *svc;
    const publisher_conf *conf;
    char *state_dir;
    char *spool_dir;
    char *rejected_dir;
    spool *sp;
    fr_data_receiver *rx;
    fr_seqwin *seen;

    pthread_rwlock_t tl; /* tasks, tombstones */
    ptask **tasks;
    size_t ntasks, captasks;
    fr_tombstones removed; /* their late batches are refused, not retried */

    pthread_mutex_t rmu; /* retiring, the reaper's cv, puts one at a time */
    pthread_cond_t rcv;
    delivery **retiring;
    size_t nretiring, capretiring;
    pthread_t reaper;
    bool reaper_started, stop;
    pthread_mutex_t putmu;

    atomic_bool full; /* the spool said busy last time */
    _Atomic uint64_t *batches_in, *metrics_in, *duplicates, *rejected, *spool_full, *unknown_task;
} publisher;

static publisher pub;

/* ---- tasks (under pub.tl) ---- */

static ptask *task_find_locked(const char *id)
{
    for (size_t i = 0; i < pub.ntasks; i++) {
        if (strcmp(pub.tasks[i]->id, id) == 0) {
            return pub.tasks[i];
        }
    }
    return NULL;
}

static void ptask_free(ptask *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; i < t->nd; i++) {
        delivery_destroy(t->d[i]);
    }
    free(t->d);
    fr_buf_free(&t->args);
    free(t->id);
    free(t->name);
    free(t);
}

static bool task_has_route(const ptask *t, const char *route)
{
    for (size_t i = 0; i < t->nd; i++) {
        if (strcmp(delivery_route(t->d[i]), route) == 0) {
            return true;
        }
    }
    return false;
}

/* ---- data path ---- */

static int publisher_on_batch(void *ctx, const void *data, size_t len, fr_error *err)
{
    fr_batch *b = NULL;
    int rv = fr_batch_decode(data, len, &b, err);
    if (rv != 0) {
        atomic_fetch_add(pub.rejected, 1);
        fr_warn("data", "rejected a batch: %s: %s", err->where, err->message);
        return rv;
    }
    pthread_rwlock_rdlock(&pub.tl);
    ptask *t = task_find_locked(b->task);
    bool known = t != NULL;
    bool routed = known && task_has_route(t, b->route);
    bool removed = !known && fr_tombstones_has(&pub.removed, b->task);
    pthread_rwlock_unlock(&pub.tl);
    if (!known) {
        if (removed) {
            rv = fr_error_set(err, FR_ENOTFOUND, "task", "task %s was removed", b->task);
        } else {
            atomic_fetch_add(pub.unknown_task, 1);
            rv = fr_error_set(err, FR_EBUSY, "task",
                              "task %s is not known here yet (waiting for its pipeline.put)",
                              b->task);
        }
        fr_batch_destroy(b);
        return rv;
    }
    if (!routed) {
        atomic_fetch_add(pub.rejected, 1);
        rv = fr_error_set(err, FR_ENOTFOUND, "route", "task %s has no publish nodes under '%s'",
                          b->task, b->route[0] ? b->route : "workflow.collect");
        fr_batch_destroy(b);
        return rv;
    }
    char key[1024];
    fr_batch_stream(b, key, sizeof(key));
    uint64_t seq = b->seq;
    uint32_t n = b->nmetrics;
    fr_batch_destroy(b);
    if (fr_seqwin_seen(pub.seen, key, seq)) {
        atomic_fetch_add(pub.duplicates, 1);
        return 0;
    }
    rv = spool_append(pub.sp, key, data, len);
    if (rv == FR_EBUSY) {
        atomic_fetch_add(pub.spool_full, 1);
        if (!atomic_exchange(&pub.full, true)) {
            fr_error("spool", "spool full (%lld MiB in %s): answering busy until sinks catch up",
                     (long long)(pub.conf->spool_max >> 20), pub.spool_dir);
        }
        return fr_error_set(err, FR_EBUSY, NULL, "spool full (%lld MiB)",
                            (long long)(pub.conf->spool_max >> 20));
    }
    if (rv != 0) {
        return fr_error_set(err, FR_EBUSY, NULL, "spool write failed: %s", fr_strerror(rv));
    }
    if (atomic_exchange(&pub.full, false)) {
        fr_info("spool", "spool has room again: taking batches");
    }
    fr_seqwin_check(pub.seen, key, seq);
    atomic_fetch_add(pub.batches_in, 1);
    atomic_fetch_add(pub.metrics_in, n);
    return 0;
}

/* ---- building a task's deliveries ---- */

typedef struct dlist {
    delivery **v;
    size_t n, cap;
} dlist;

static void dlist_destroy(dlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        delivery_destroy(l->v[i]);
    }
    free(l->v);
    *l = (dlist){0};
}

static int dlist_add(dlist *l, delivery *d)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        delivery **nv = realloc(l->v, cap * sizeof(*nv));
        if (nv == NULL) {
            return FR_ENOMEM;
        }
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = d;
    return 0;
}

static delivery_opts delivery_options(void)
{
    return (delivery_opts){
        .sp = pub.sp,
        .rejected_dir = pub.rejected_dir,
        .state_dir = pub.state_dir,
        .group_metrics = pub.conf->group_metrics,
        .backoff_min_ms = pub.conf->backoff_min_ms,
        .backoff_max_ms = pub.conf->backoff_max_ms,
    };
}

/* Every publish node below the node list v (of the node at route). */
static int build_publishes(const fr_mf_node *pubs, size_t npubs, const char *route, const char *id,
                           const char *name, dlist *out, fr_error *err)
{
    delivery_opts o = delivery_options();
    for (size_t i = 0; i < npubs; i++) {
        char path[512];
        if (route[0] != '\0') {
            snprintf(path, sizeof(path), "%s.publish[%zu]", route, i);
        } else {
            snprintf(path, sizeof(path), "publish[%zu]", i);
        }
        delivery *d = NULL;
        int rv = delivery_build(&pubs[i], id, name, path, route, &o, &d, err);
        if (rv != 0) {
            return rv;
        }
        if (dlist_add(out, d) != 0) {
            delivery_destroy(d);
            return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
        }
    }
    return 0;
}

static int build_tree(const fr_mf_node *procs, size_t nprocs, const char *parent, const char *id,
                      const char *name, dlist *out, fr_error *err)
{
    for (size_t i = 0; i < nprocs; i++) {
        char route[512];
        if (parent[0] != '\0') {
            snprintf(route, sizeof(route), "%s.process[%zu]", parent, i);
        } else {
            snprintf(route, sizeof(route), "process[%zu]", i);
        }
        int rv = build_publishes(procs[i].publish, procs[i].npublish, route, id, name, out, err);
        if (rv == 0) {
            rv = build_tree(procs[i].process, procs[i].nprocess, route, id, name, out, err);
        }
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* Checks and builds a task from put args (deliveries not started). */
static int task_build(const fr_node *args, const fr_buf *canon, ptask **out, fr_error *err)
{
    *out = NULL;
    const char *id = NULL, *name = NULL;
    fr_manifest *m = NULL;
    int rv = fr_pipeline_put_unpack(args, &id, &name, &m, err);
    if (rv != 0) {
        return rv;
    }
    dlist l = {0};
    rv = build_publishes(m->collect.publish, m->collect.npublish, "", id, name, &l, err);
    if (rv == 0) {
        rv = build_tree(m->collect.process, m->collect.nprocess, "", id, name, &l, err);
    }
    fr_manifest_free(m);
    ptask *t = rv == 0 ? calloc(1, sizeof(*t)) : NULL;
    if (rv == 0 && (t == NULL || (t->id = strdup(id)) == NULL ||
                    (t->name = strdup(name[0] ? name : id)) == NULL ||
                    fr_buf_append(&t->args, canon->data, canon->len) != 0)) {
        rv = fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    if (rv != 0) {
        dlist_destroy(&l);
        ptask_free(t);
        return rv;
    }
    t->d = l.v;
    t->nd = l.n;
    *out = t;
    return 0;
}

/* Destroys (without retiring) the deliveries of task id still draining:
 * a task put again takes their readers over. */
static void retiring_cancel(const char *id)
{
    size_t idlen = strlen(id);
    pthread_mutex_lock(&pub.rmu);
    for (size_t i = 0; i < pub.nretiring;) {
        const char *did = delivery_id(pub.retiring[i]);
        if (strncmp(did, id, idlen) == 0 && did[idlen] == '/') {
            delivery *d = pub.retiring[i];
            pub.retiring[i] = pub.retiring[--pub.nretiring];
            pthread_mutex_unlock(&pub.rmu);
            delivery_destroy(d);
            pthread_mutex_lock(&pub.rmu);
            i = 0;
            continue;
        }
        i++;
    }
    pthread_mutex_unlock(&pub.rmu);
}

/* Installs t in place of the task with its id (whose deliveries are
 * stopped first, so the new ones take over their spool readers) and
 * starts its deliveries. */
static int task_install(ptask *t, fr_error *err)
{
    retiring_cancel(t->id);
    pthread_rwlock_wrlock(&pub.tl);
    ptask *old = NULL;
    for (size_t i = 0; i < pub.ntasks; i++) {
        if (strcmp(pub.tasks[i]->id, t->id) == 0) {
            old = pub.tasks[i];
            pub.tasks[i] = pub.tasks[--pub.ntasks];
            break;
        }
    }
    pthread_rwlock_unlock(&pub.tl);
    ptask_free(old);
    for (size_t i = 0; i < t->nd; i++) {
        int rv = delivery_start(t->d[i], err);
        if (rv != 0) {
            ptask_free(t);
            return rv;
        }
    }
    pthread_rwlock_wrlock(&pub.tl);
    if (pub.ntasks == pub.captasks) {
        size_t cap = pub.captasks ? pub.captasks * 2 : 8;
        ptask **nv = realloc(pub.tasks, cap * sizeof(*nv));
        if (nv == NULL) {
            pthread_rwlock_unlock(&pub.tl);
            ptask_free(t);
            return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
        }
        pub.tasks = nv;
        pub.captasks = cap;
    }
    pub.tasks[pub.ntasks++] = t;
    fr_tombstones_set(&pub.removed, t->id, false);
    pthread_rwlock_unlock(&pub.tl);
    return 0;
}

/* ---- control ops ---- */

static int reply_err(fr_ctl_reply *r, int rv, const char *code, const fr_error *err)
{
    return fr_ctl_reply_error(r, rv, code, err->where, "%s",
                              err->message[0] ? err->message : fr_strerror(rv));
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
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
    (void)fr_node_get_str(args, "task", &id);
    /* One put at a time: two for the same task (the collector's and a
     * processor's) must not both start its deliveries. */
    pthread_mutex_lock(&pub.putmu);
    bool same = false;
    if (id != NULL) {
        pthread_rwlock_rdlock(&pub.tl);
        ptask *e = task_find_locked(id);
        same = e != NULL && e->args.len == canon.len &&
               memcmp(e->args.data, canon.data, canon.len) == 0;
        pthread_rwlock_unlock(&pub.tl);
    }
    int rv = 0;
    size_t nsinks = 0;
    if (!same) {
        ptask *t = NULL;
        rv = task_build(args, &canon, &t, &err);
        if (rv == 0) {
            nsinks = t->nd;
            if (pub.state_dir != NULL &&
                fr_pipeline_store_save(pub.state_dir, t->id, canon.data, canon.len, &err) != 0) {
                fr_warn("pipelines", "task %s is not saved: %s", t->id, err.message);
                fr_error_clear(&err);
            }
            rv = task_install(t, &err);
            if (rv == 0) {
                fr_info("pipelines", "task %s: %zu sink(s)", id, nsinks);
            }
        }
    }
    pthread_mutex_unlock(&pub.putmu);
    fr_buf_free(&canon);
    if (rv != 0) {
        return reply_err(r, rv, "bad_manifest", &err);
    }
    msgpack_packer *pk = fr_ctl_reply_packer(r);
    msgpack_pack_map(pk, 2);
    pack_str(pk, "task");
    pack_str(pk, id);
    pack_str(pk, "changed");
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
    bool drop = false;
    if (fr_node_get_str(args, "task", &id) != 0) {
        return fr_ctl_reply_error(r, FR_EMISSING, "bad_request", "task",
                                  "\"task\" (a string) is missing");
    }
    (void)fr_node_get_bool(args, "drop", &drop);
    pthread_mutex_lock(&pub.putmu);
    pthread_rwlock_wrlock(&pub.tl);
    ptask *t = NULL;
    for (size_t i = 0; i < pub.ntasks; i++) {
        if (strcmp(pub.tasks[i]->id, id) == 0) {
            t = pub.tasks[i];
            pub.tasks[i] = pub.tasks[--pub.ntasks];
            break;
        }
    }
    fr_tombstones_set(&pub.removed, id, true);
    pthread_rwlock_unlock(&pub.tl);
    if (pub.state_dir != NULL) {
        fr_pipeline_store_delete(pub.state_dir, id);
    }
    if (t != NULL) {
        /* Its sinks finish what the spool holds for them, then go. */
        pthread_mutex_lock(&pub.rmu);
        for (size_t i = 0; i < t->nd; i++) {
            delivery_retire(t->d[i], drop);
            if (pub.nretiring == pub.capretiring) {
                size_t cap = pub.capretiring ? pub.capretiring * 2 : 8;
                delivery **nv = realloc(pub.retiring, cap * sizeof(*nv));
                if (nv == NULL) {
                    break;
                }
                pub.retiring = nv;
                pub.capretiring = cap;
            }
            pub.retiring[pub.nretiring++] = t->d[i];
            t->d[i] = NULL;
        }
        pthread_cond_broadcast(&pub.rcv);
        pthread_mutex_unlock(&pub.rmu);
        size_t kept = 0;
        for (size_t i = 0; i < t->nd; i++) {
            if (t->d[i] != NULL) {
                t->d[kept++] = t->d[i];
            }
        }
        t->nd = kept;
        ptask_free(t);
    }
    pthread_mutex_unlock(&pub.putmu);
    if (t == NULL) {
        return fr_ctl_reply_error(r, FR_ENOTFOUND, "not_found", "task", "no task %s here", id);
    }
    fr_info("pipelines", "task %s removed%s", id, drop ? " (its spooled batches given up)" : "");
    pack_str(fr_ctl_reply_packer(r), id);
    return 0;
}

/* pipeline.list's filter: a task's id or name. */
static bool task_listed(const ptask *t, const char *only)
{
    return only == NULL || strcmp(t->id, only) == 0 || strcmp(t->name, only) == 0;
}

static int op_pipeline_list(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    const char *only = NULL;
    (void)fr_node_get_str(args, "task", &only);
    msgpack_packer *pk = fr_ctl_reply_packer(r);
    pthread_rwlock_rdlock(&pub.tl);
    size_t n = 0;
    for (size_t i = 0; i < pub.ntasks; i++) {
        n += task_listed(pub.tasks[i], only);
    }
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < pub.ntasks; i++) {
        ptask *t = pub.tasks[i];
        if (!task_listed(t, only)) {
            continue;
        }
        msgpack_pack_map(pk, 3);
        pack_str(pk, "task");
        pack_str(pk, t->id);
        pack_str(pk, "name");
        pack_str(pk, t->name);
        pack_str(pk, "sinks");
        msgpack_pack_array(pk, t->nd);
        for (size_t k = 0; k < t->nd; k++) {
            delivery_pack(t->d[k], pk);
        }
    }
    pthread_rwlock_unlock(&pub.tl);
    return 0;
}

static int op_spool_stats(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    spool_stats st;
    spool_stats_get(pub.sp, &st);
    msgpack_packer *pk = fr_ctl_reply_packer(r);
    msgpack_pack_map(pk, 13);
    pack_str(pk, "dir");
    pack_str(pk, pub.spool_dir);
    pack_str(pk, "max_bytes");
    msgpack_pack_int64(pk, pub.conf->spool_max);
    pack_str(pk, "bytes");
    msgpack_pack_uint64(pk, st.bytes);
    pack_str(pk, "segments");
    msgpack_pack_uint64(pk, st.segments);
    pack_str(pk, "records");
    msgpack_pack_uint64(pk, st.records);
    pack_str(pk, "appended_bytes");
    msgpack_pack_uint64(pk, st.appended_bytes);
    pack_str(pk, "full");
    msgpack_pack_uint64(pk, st.full);
    pack_str(pk, "corrupt_records");
    msgpack_pack_uint64(pk, st.corrupt_records);
    pack_str(pk, "corrupt_bytes");
    msgpack_pack_uint64(pk, st.corrupt_bytes);
    pack_str(pk, "torn_bytes");
    msgpack_pack_uint64(pk, st.torn_bytes);
    pack_str(pk, "head");
    msgpack_pack_uint64(pk, st.head);
    pack_str(pk, "tail");
    msgpack_pack_uint64(pk, st.tail);
    pack_str(pk, "accepting");
    if (atomic_load(&pub.full)) {
        msgpack_pack_false(pk);
    } else {
        msgpack_pack_true(pk);
    }
    return 0;
}

static int op_plugin_list(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    msgpack_packer *pk = fr_ctl_reply_packer(r);
    msgpack_pack_array(pk, fr_builtin_nsinks);
    for (size_t i = 0; i < fr_builtin_nsinks; i++) {
        const fr_sink_plugin *p = fr_builtin_sinks[i];
        fr_plugin_entry_pack(pk, p->name, p->version, p->description, &p->config);
    }
    return 0;
}

/* ---- the reaper: retired deliveries that are done ---- */

static void *reaper_run(void *arg)
{
    pthread_mutex_lock(&pub.rmu);
    while (!pub.stop) {
        for (size_t i = 0; i < pub.nretiring;) {
            delivery *d = pub.retiring[i];
            if (!delivery_finished(d)) {
                i++;
                continue;
            }
            pub.retiring[i] = pub.retiring[--pub.nretiring];
            pthread_mutex_unlock(&pub.rmu);
            fr_info("deliver", "%s delivered everything it had: gone", delivery_id(d));
            delivery_destroy(d);
            pthread_mutex_lock(&pub.rmu);
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 200000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&pub.rcv, &pub.rmu, &until);
    }
    pthread_mutex_unlock(&pub.rmu);
    return NULL;
}

/* ---- start and stop ---- */

static void task_restore(void *arg, const char *file, const fr_node *args)
{
    fr_error err;
    fr_error_clear(&err);
    fr_buf canon = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &canon, fr_buf_msgpack_write);
    ptask *t = NULL;
    if (fr_node_pack(args, &pk) != 0 || task_build(args, &canon, &t, &err) != 0 ||
        task_install(t, &err) != 0) {
        fr_error("pipelines", "%s: cannot load: %s%s%s", file, err.where, err.where[0] ? ": " : "",
                 err.message);
    }
    fr_buf_free(&canon);
}

static int seen_again(void *arg, const char *key, const void *data, size_t len)
{
    char src[8];
    uint64_t seq;
    fr_error err;
    if (fr_batch_peek(data, len, src, sizeof(src), &seq, &err) == 0) {
        fr_seqwin_check(pub.seen, key, seq);
    }
    return 0;
}

/* The default state directory when none is configured: the publisher
 * must keep its spool somewhere. */
static char *default_state_dir(void)
{
    char buf[4096];
    const char *home = getenv("HOME");
    if (geteuid() == 0 || home == NULL || home[0] == '\0') {
        snprintf(buf, sizeof(buf), "/var/lib/fresco/publisher");
    } else {
        snprintf(buf, sizeof(buf), "%s/.local/state/fresco/publisher", home);
    }
    return strdup(buf);
}

static int publisher_start(fr_service *svc, void *confp)
{
    publisher_conf *conf = confp;
    pub.svc = svc;
    pub.conf = conf;
    pub.batches_in = fr_service_counter(svc, "batches_in");
    pub.metrics_in = fr_service_counter(svc, "metrics_in");
    pub.duplicates = fr_service_counter(svc, "batches_duplicate");
    pub.rejected = fr_service_counter(svc, "batches_rejected");
    pub.spool_full = fr_service_counter(svc, "batches_spool_full");
    pub.unknown_task = fr_service_counter(svc, "batches_unknown_task");
    pthread_rwlock_init(&pub.tl, NULL);
    pthread_mutex_init(&pub.rmu, NULL);
    pthread_mutex_init(&pub.putmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pub.rcv, &ca);
    pthread_condattr_destroy(&ca);

    const char *sd = fr_service_conf_get(svc)->state_dir;
    pub.state_dir = sd != NULL && sd[0] != '\0' ? strdup(sd) : default_state_dir();
    if (pub.state_dir == NULL) {
        return FR_ENOMEM;
    }
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s/spool", pub.state_dir);
    pub.spool_dir = strdup(conf->spool_dir != NULL && conf->spool_dir[0] ? conf->spool_dir : buf);
    if (pub.spool_dir == NULL) {
        return FR_ENOMEM;
    }
    if (fr_mkdirs(pub.state_dir) != 0) {
        fr_error("publisher", "cannot create the state directory %s: %s", pub.state_dir,
                 strerror(errno));
        return FR_EIO;
    }
    spool_conf sc = {
        .dir = pub.spool_dir,
        .max_bytes = conf->spool_max,
        .segment_bytes = conf->spool_segment,
        .fsync = conf->spool_fsync,
    };
    fr_error err;
    fr_error_clear(&err);
    int rv = spool_open(&pub.sp, &sc, &err);
    if (rv != 0) {
        fr_error("spool", "cannot open the spool: %s%s%s", err.where, err.where[0] ? ": " : "",
                 err.message);
        return rv;
    }
    snprintf(buf, sizeof(buf), "%s/rejected", pub.spool_dir);
    if ((pub.rejected_dir = strdup(buf)) == NULL) {
        return FR_ENOMEM;
    }
    mkdir(pub.rejected_dir, 0700);
    if ((pub.seen = fr_seqwin_new()) == NULL) {
        return FR_ENOMEM;
    }
    /* What the spool holds was acknowledged: resends of it are duplicates. */
    spool_scan(pub.sp, seen_again, NULL);
    spool_stats st;
    spool_stats_get(pub.sp, &st);
    if (st.bytes > 0) {
        fr_info("spool", "%s: %llu bytes kept from before (%llu damaged records skipped)",
                pub.spool_dir, (unsigned long long)st.bytes,
                (unsigned long long)st.corrupt_records);
    }
    fr_pipeline_store_load(pub.state_dir, task_restore, NULL);
    if (pthread_create(&pub.reaper, NULL, reaper_run, NULL) != 0) {
        return FR_ENOMEM;
    }
    pub.reaper_started = true;
    rv = fr_data_receiver_start(&pub.rx, conf->data_in, true, fr_service_tls(svc),
                                (int)conf->data_workers, publisher_on_batch, &pub);
    if (rv != 0) {
        return rv;
    }
    fr_service_add_address(svc, "data_in", conf->data_in);
    static const fr_ctl_op ops[] = {
        {"pipeline.put", op_pipeline_put, NULL,
         "{task, name, manifest}: run the task's publish nodes here"},
        {"pipeline.remove", op_pipeline_remove, NULL,
         "{task, drop?}: forget a task once its sinks have what the spool holds (drop: at once)"},
        {"pipeline.list", op_pipeline_list, NULL, "{task?}: tasks with their sinks and counts"},
        {"spool.stats", op_spool_stats, NULL, "the spool's size, damage found, head and tail"},
        {"plugin.list", op_plugin_list, NULL, "the sinks built in"},
    };
    return fr_service_add_ops(svc, ops, sizeof(ops) / sizeof(ops[0]));
}

static void publisher_stop(fr_service *svc, void *confp)
{
    fr_data_receiver_stop(pub.rx);
    pub.rx = NULL;
    if (pub.reaper_started) {
        pthread_mutex_lock(&pub.rmu);
        pub.stop = true;
        pthread_cond_broadcast(&pub.rcv);
        pthread_mutex_unlock(&pub.rmu);
        pthread_join(pub.reaper, NULL);
        pub.reaper_started = false;
    }
    for (size_t i = 0; i < pub.nretiring; i++) {
        delivery_destroy(pub.retiring[i]);
    }
    free(pub.retiring);
    pub.retiring = NULL;
    pub.nretiring = 0;
    for (size_t i = 0; i < pub.ntasks; i++) {
        ptask_free(pub.tasks[i]);
    }
    free(pub.tasks);
    pub.tasks = NULL;
    pub.ntasks = 0;
    fr_tombstones_free(&pub.removed);
    spool_close(pub.sp);
    pub.sp = NULL;
    fr_seqwin_destroy(pub.seen);
    pub.seen = NULL;
    free(pub.rejected_dir);
    free(pub.spool_dir);
    free(pub.state_dir);
    pub.rejected_dir = pub.spool_dir = pub.state_dir = NULL;
}

static const fr_service_def publisher_def = {
    .name = "publisher",
    .spec = &publisher_spec,
    .conf_size = sizeof(publisher_conf),
    .start = publisher_start,
    .stop = publisher_stop,
};

int main(int argc, char **argv)
{
    return fr_service_main(&publisher_def, argc, argv);
}
