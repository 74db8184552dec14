/* fresco-collector: runs tasks that collect metrics on a schedule and hands
 * the batches down the pipeline (to the processors) and to `task watch`
 * (events "metrics/<task id>"). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fresco/data.h"
#include "fresco/log.h"
#include "fresco/manifest.h"
#include "fresco/pipectl.h"
#include "fresco/service.h"
#include "fresco/self.h"
#include "registry.h"
#include "task.h"

typedef struct collector_conf {
    fr_service_conf svc;
    fr_strlist processors;
    fr_strlist processor_controls;
    fr_strlist publishers;
    fr_strlist publisher_controls;
    int64_t window;
    int64_t resend_ms;
    int64_t send_timeout_ms;
    int64_t pipeline_sync_ms;
    int64_t control_timeout_ms;
} collector_conf;

static const fr_cfg_field collector_fields[] = {
    FR_SERVICE_FIELDS(collector_conf, svc, "tcp://127.0.0.1:7400", "tcp://127.0.0.1:7402"),
    {"processors", FR_CFG_LIST, "tcp://127.0.0.1:7411", offsetof(collector_conf, processors),
     "processor data-in addresses to dial (batches are spread over them; empty: none)", 0, 0, NULL},
    {"processor_controls", FR_CFG_LIST, "tcp://127.0.0.1:7410",
     offsetof(collector_conf, processor_controls),
     "processor control addresses: each task's process nodes are handed to every one", 0, 0, NULL},
    {"publishers", FR_CFG_LIST, "tcp://127.0.0.1:7421", offsetof(collector_conf, publishers),
     "publisher data-in addresses, for tasks with publish nodes of their own (empty: none)", 0, 0,
     NULL},
    {"publisher_controls", FR_CFG_LIST, "tcp://127.0.0.1:7420",
     offsetof(collector_conf, publisher_controls),
     "publisher control addresses: each task's own publish nodes are handed to every one", 0, 0,
     NULL},
    {"pipeline_sync", FR_CFG_DURATION, "10s", offsetof(collector_conf, pipeline_sync_ms),
     "how often every task is handed to the processors and publishers again (a restarted or new "
     "replica learns them)",
     100, 3600000, NULL},
    {"control_timeout", FR_CFG_DURATION, "2s", offsetof(collector_conf, control_timeout_ms),
     "how long a processor or publisher may take to answer pipeline.put", 10, 60000, NULL},
    {"window", FR_CFG_INT, "16", offsetof(collector_conf, window),
     "batches in flight to the processors", 1, 4096, NULL},
    {"resend", FR_CFG_DURATION, "2s", offsetof(collector_conf, resend_ms),
     "resend a batch not acknowledged within this", 10, 3600000, NULL},
    {"send_timeout", FR_CFG_DURATION, "1s", offsetof(collector_conf, send_timeout_ms),
     "how long a tick may wait for room downstream before its batch is dropped and counted", 0,
     60000, NULL},
};

static const fr_cfg_spec collector_spec = {"collector", collector_fields,
                                           sizeof(collector_fields) / sizeof(collector_fields[0])};

typedef struct collector {
    registry *reg;
    tasks *tasks;
    const collector_conf *conf;
    fr_data_sender *down;   /* to the processors */
    fr_data_sender *direct; /* to the publishers */
    fr_ctl_fanout *procctl, *pubctl;
    pthread_t sync;
    bool sync_started;
    atomic_bool sync_stop;
    pthread_mutex_t sync_mu;
    pthread_cond_t sync_cv;
    bool proc_down, pub_down; /* the last sync found nobody: said once */
} collector;

static collector col;
static const char *state_dir;

static int plugin_write_path(void *arg, const fr_collector_plugin *p, bool builtin,
                             const char *path)
{
    if (!builtin && path != NULL) {
        fprintf(arg, "%s\n", path);
    }
    return 0;
}

/* Loaded plugins are remembered in <state_dir>/plugins, one path a line,
 * so tasks that use them come back after a restart. */
static void plugins_persist(void)
{
    if (state_dir == NULL || state_dir[0] == '\0') {
        return;
    }
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/plugins", state_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        fr_error("plugins", "cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    registry_each(col.reg, plugin_write_path, f);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fr_error("plugins", "cannot write %s: %s", path, strerror(errno));
    }
}

static void plugins_restore(void)
{
    if (state_dir == NULL || state_dir[0] == '\0') {
        return;
    }
    char path[4096], line[4096];
    snprintf(path, sizeof(path), "%s/plugins", state_dir);
    FILE *f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (line[0] == '\0') {
            continue;
        }
        fr_error err;
        fr_error_clear(&err);
        const char *name = NULL;
        if (registry_load(col.reg, line, &name, &err) != 0) {
            fr_error("plugins", "cannot reload %s: %s", line, err.message);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static int reply_err(fr_ctl_reply *r, int rv, const char *code, const fr_error *err)
{
    return fr_ctl_reply_error(r, rv, code, err->where, "%s",
                              err->message[0] ? err->message : fr_strerror(rv));
}

static int need_str(const fr_node *args, const char *key, const char **out, fr_ctl_reply *r)
{
    int rv = fr_node_get_str(args, key, out);
    if (rv != 0) {
        return fr_ctl_reply_error(r, rv, "bad_request", key, "\"%s\" (a string) is %s", key,
                                  rv == FR_EMISSING ? "missing" : "not a string");
    }
    return 0;
}

/* ---- handing tasks to the processors and publishers ---- */

/* Puts the task on one stage. A refusal is turned into the manifest's
 * line; a stage nobody answers for refuses the task at creation (the
 * sync keeps trying for tasks that exist). */
static int stage_put(fr_ctl_fanout *f, const char *stage, const fr_mf_node *first,
                     const char *first_path, const fr_buf *args, const fr_manifest *m,
                     fr_error *err)
{
    if (fr_ctl_fanout_count(f) == 0) {
        return fr_manifest_error(m, err, FR_ECONFIG, first->pos, first_path,
                                 "this collector has no %s configured (%s_controls)", stage,
                                 stage[1] == 'r' ? "processor" : "publisher");
    }
    char code[48];
    int rv = fr_ctl_fanout_call(f, "pipeline.put", args->data, args->len,
                                (int)col.conf->control_timeout_ms, NULL, code, err);
    if (rv == FR_EREMOTE) {
        return fr_manifest_locate(m, err);
    }
    if (rv != 0) {
        char msg[sizeof(err->message)];
        snprintf(msg, sizeof(msg), "%s", err->message);
        return fr_manifest_error(m, err, rv, first->pos, first_path, "no %s took the task: %s",
                                 stage, msg);
    }
    return 0;
}

static int pipeline_put(void *arg, const char *id, const char *name, const fr_manifest *m,
                        fr_error *err)
{
    fr_buf args = FR_BUF_INIT;
    int rv = fr_pipeline_put_pack(id, name, m, &args);
    if (rv != 0) {
        return fr_error_set(err, rv, NULL, "out of memory");
    }
    if (m->collect.nprocess > 0) {
        rv = stage_put(col.procctl, "processors", &m->collect.process[0],
                       "workflow.collect.process[0]", &args, m, err);
    }
    if (rv == 0 && m->collect.npublish > 0) {
        rv = stage_put(col.pubctl, "publishers", &m->collect.publish[0],
                       "workflow.collect.publish[0]", &args, m, err);
    }
    fr_buf_free(&args);
    return rv;
}

static void pipeline_remove(void *arg, const char *id, const fr_manifest *m)
{
    fr_buf args = FR_BUF_INIT;
    if (fr_pipeline_remove_pack(id, &args) != 0) {
        return;
    }
    fr_ctl_fanout *to[2] = {m->collect.nprocess > 0 ? col.procctl : NULL,
                            m->collect.npublish > 0 ? col.pubctl : NULL};
    for (int i = 0; i < 2; i++) {
        fr_error err;
        fr_error_clear(&err);
        if (to[i] != NULL && fr_ctl_fanout_call(to[i], "pipeline.remove", args.data, args.len,
                                                (int)col.conf->control_timeout_ms, NULL, NULL,
                                                &err) == FR_ETIMEDOUT) {
            fr_warn("pipelines", "task %s: the %s did not hear of its removal: %s", id,
                    i == 0 ? "processors" : "publishers", err.message);
        }
    }
    fr_buf_free(&args);
}

/* One task put again on each stage it uses: quietly, but a stage that
 * stops (or starts again) answering is said once. */
static void sync_one(void *arg, const char *id, const char *name, const fr_manifest *m)
{
    if (atomic_load(&col.sync_stop)) {
        return; /* stopping: the rest of the pass can wait for the next start */
    }
    fr_buf args = FR_BUF_INIT;
    if (fr_pipeline_put_pack(id, name, m, &args) != 0) {
        return;
    }
    fr_ctl_fanout *to[2] = {m->collect.nprocess > 0 ? col.procctl : NULL,
                            m->collect.npublish > 0 ? col.pubctl : NULL};
    bool *down[2] = {&col.proc_down, &col.pub_down};
    for (int i = 0; i < 2; i++) {
        if (to[i] == NULL || fr_ctl_fanout_count(to[i]) == 0) {
            continue;
        }
        fr_error err;
        fr_error_clear(&err);
        int rv = fr_ctl_fanout_call(to[i], "pipeline.put", args.data, args.len,
                                    (int)col.conf->control_timeout_ms, NULL, NULL, &err);
        const char *stage = i == 0 ? "processors" : "publishers";
        if (rv == FR_ETIMEDOUT && !*down[i]) {
            *down[i] = true;
            fr_warn("pipelines", "the %s do not answer: %s", stage, err.message);
        } else if (rv == 0 && *down[i]) {
            *down[i] = false;
            fr_info("pipelines", "the %s answer again", stage);
        } else if (rv == FR_EREMOTE) {
            fr_warn("pipelines", "task %s refused by the %s: %s%s%s", id, stage, err.where,
                    err.where[0] ? ": " : "", err.message);
        }
    }
    fr_buf_free(&args);
}

static void *sync_run(void *arg)
{
    pthread_mutex_lock(&col.sync_mu);
    while (!atomic_load(&col.sync_stop)) {
        pthread_mutex_unlock(&col.sync_mu);
        tasks_each(col.tasks, sync_one, NULL);
        pthread_mutex_lock(&col.sync_mu);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        int64_t ms = col.conf->pipeline_sync_ms;
        until.tv_sec += ms / 1000;
        until.tv_nsec += (ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!atomic_load(&col.sync_stop) &&
               pthread_cond_timedwait(&col.sync_cv, &col.sync_mu, &until) == 0) {
        }
    }
    pthread_mutex_unlock(&col.sync_mu);
    return NULL;
}

static int op_task_create(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    const char *text = NULL, *file = "manifest";
    bool no_start = false;
    int rv = need_str(args, "manifest", &text, r);
    if (rv != 0) {
        return rv;
    }
    fr_node_get_str(args, "file", &file);
    fr_node_get_bool(args, "no_start", &no_start);
    const fr_node *text_node = fr_node_get(args, "manifest");
    fr_error err;
    fr_error_clear(&err);
    fr_manifest *m = NULL;
    rv = fr_manifest_parse(text, text_node->len, file, &m, &err);
    if (rv != 0) {
        return reply_err(r, rv, "bad_manifest", &err);
    }
    char id[37];
    rv = tasks_create(col.tasks, m, no_start, id, &err);
    if (rv != 0) {
        fr_manifest_free(m);
        return reply_err(r, rv, rv == FR_ETIMEDOUT ? "unavailable" : "bad_manifest", &err);
    }
    return tasks_pack_get(col.tasks, id, fr_ctl_reply_packer(r), &err);
}

typedef int (*task_fn)(tasks *t, const char *id, fr_error *err);

static int task_op(const fr_node *args, fr_ctl_reply *r, task_fn fn)
{
    const char *id = NULL;
    int rv = need_str(args, "id", &id, r);
    if (rv != 0) {
        return rv;
    }
    fr_error err;
    fr_error_clear(&err);
    if ((rv = fn(col.tasks, id, &err)) != 0) {
        return reply_err(r, rv, rv == FR_ENOTFOUND ? "not_found" : "bad_state", &err);
    }
    if (fn == tasks_remove) {
        pack_str(fr_ctl_reply_packer(r), id);
        return 0;
    }
    return tasks_pack_get(col.tasks, id, fr_ctl_reply_packer(r), &err);
}

static int op_task_start(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    return task_op(args, r, tasks_start);
}
static int op_task_stop(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    return task_op(args, r, tasks_stop);
}
static int op_task_enable(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    return task_op(args, r, tasks_enable);
}
static int op_task_remove(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    return task_op(args, r, tasks_remove);
}

static int op_task_get(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    const char *id = NULL;
    int rv = need_str(args, "id", &id, r);
    if (rv != 0) {
        return rv;
    }
    fr_error err;
    fr_error_clear(&err);
    if ((rv = tasks_pack_get(col.tasks, id, fr_ctl_reply_packer(r), &err)) != 0) {
        return reply_err(r, rv, "not_found", &err);
    }
    return 0;
}

static int op_task_list(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    tasks_pack_list(col.tasks, fr_ctl_reply_packer(r));
    return 0;
}

static int op_metric_list(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    const char *ns = NULL;
    fr_node_get_str(args, "ns", &ns);
    fr_error err;
    fr_error_clear(&err);
    fr_buf out = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &out, fr_buf_msgpack_write);
    int rv = registry_pack_catalog(col.reg, ns, &pk, &err);
    if (rv != 0) {
        fr_buf_free(&out);
        return reply_err(r, rv, "bad_request", &err);
    }
    /* metric.get insists on a match; list may be empty. */
    bool get = ctx != NULL;
    if (get && out.len > 0 && out.data[0] == 0x90) {
        fr_buf_free(&out);
        return fr_ctl_reply_error(r, FR_ENOTFOUND, "not_found", "ns", "no plugin offers %s",
                                  ns != NULL ? ns : "");
    }
    fr_doc doc = {0};
    rv = fr_doc_decode(out.data, out.len, &doc, &err);
    if (rv == 0) {
        rv = fr_node_pack(doc.root, fr_ctl_reply_packer(r));
    }
    fr_doc_free(&doc);
    fr_buf_free(&out);
    return rv;
}

static int op_plugin_list(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    registry_pack_list(col.reg, fr_ctl_reply_packer(r));
    return 0;
}

static int op_plugin_load(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    const char *path = NULL, *name = NULL;
    int rv = need_str(args, "path", &path, r);
    if (rv != 0) {
        return rv;
    }
    fr_error err;
    fr_error_clear(&err);
    if (path[0] != '/') {
        return fr_ctl_reply_error(r, FR_EINVAL, "bad_request", "path",
                                  "plugin path must be absolute: %s", path);
    }
    if ((rv = registry_load(col.reg, path, &name, &err)) != 0) {
        return reply_err(r, rv, "bad_plugin", &err);
    }
    plugins_persist();
    pack_str(fr_ctl_reply_packer(r), name);
    return 0;
}

static int op_plugin_unload(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    const char *name = NULL;
    int rv = need_str(args, "name", &name, r);
    if (rv != 0) {
        return rv;
    }
    fr_error err;
    fr_error_clear(&err);
    if ((rv = registry_unload(col.reg, name, &err)) != 0) {
        return reply_err(r, rv, rv == FR_ENOTFOUND ? "not_found" : "bad_state", &err);
    }
    plugins_persist();
    pack_str(fr_ctl_reply_packer(r), name);
    return 0;
}

static int collector_start(fr_service *svc, void *confp)
{
    collector_conf *conf = confp;
    col.reg = registry_new();
    if (col.reg == NULL) {
        return FR_ENOMEM;
    }
    state_dir = fr_service_conf_get(svc)->state_dir;
    if (state_dir != NULL && state_dir[0] != '\0' && mkdir(state_dir, 0700) != 0 &&
        errno != EEXIST) {
        fr_error("collector", "cannot create state_dir %s: %s", state_dir, strerror(errno));
        return FR_EIO;
    }
    plugins_restore();
    col.conf = conf;
    fr_data_sender_opts o = {.window = (int)conf->window, .resend_ms = (int)conf->resend_ms};
    if (conf->processors.n > 0) {
        int rv = fr_data_sender_open(&col.down, (const char *const *)conf->processors.v,
                                     conf->processors.n, fr_service_tls(svc), &o);
        if (rv != 0) {
            return rv;
        }
    }
    if (conf->publishers.n > 0) {
        int rv = fr_data_sender_open(&col.direct, (const char *const *)conf->publishers.v,
                                     conf->publishers.n, fr_service_tls(svc), &o);
        if (rv != 0) {
            return rv;
        }
    }
    /* No data address for a stage: nothing can reach it, whatever its
     * control addresses say. */
    int crv = fr_ctl_fanout_open(&col.procctl, (const char *const *)conf->processor_controls.v,
                                 conf->processors.n > 0 ? conf->processor_controls.n : 0,
                                 fr_service_tls(svc));
    if (crv == 0) {
        crv = fr_ctl_fanout_open(&col.pubctl, (const char *const *)conf->publisher_controls.v,
                                 conf->publishers.n > 0 ? conf->publisher_controls.n : 0,
                                 fr_service_tls(svc));
    }
    if (crv != 0) {
        return crv;
    }
    tasks_env env = {
        .reg = col.reg,
        .events = fr_service_events(svc),
        .down = col.down,
        .direct = col.direct,
        .pipeline_put = pipeline_put,
        .pipeline_remove = pipeline_remove,
        .node = fr_service_node(svc),
        .state_dir = fr_service_conf_get(svc)->state_dir,
        .send_timeout_ms = (int)conf->send_timeout_ms,
        .ticks = fr_service_counter(svc, "ticks"),
        .misses = fr_service_counter(svc, "misses"),
        .failures = fr_service_counter(svc, "failures"),
        .batches_sent = fr_service_counter(svc, "batches_sent"),
        .metrics_collected = fr_service_counter(svc, "metrics_collected"),
        .collect_ns_total = fr_service_counter(svc, "collect_ns_total"),
        .send_busy = fr_service_counter(svc, "batches_not_taken"),
        .resends = fr_service_counter(svc, "resends"),
    };
    collector_self_register("ticks", env.ticks);
    collector_self_register("misses", env.misses);
    collector_self_register("failures", env.failures);
    collector_self_register("metrics_collected", env.metrics_collected);
    collector_self_register("batches_sent", env.batches_sent);
    collector_self_register("batches_not_taken", env.send_busy);
    collector_self_register("collect_ns_total", env.collect_ns_total);
    collector_self_register("resends", env.resends);
    int rv = tasks_open(&col.tasks, &env);
    if (rv != 0) {
        return rv;
    }
    pthread_mutex_init(&col.sync_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&col.sync_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&col.sync, NULL, sync_run, NULL) != 0) {
        return FR_ENOMEM;
    }
    col.sync_started = true;
    static const fr_ctl_op ops[] = {
        {"task.create", op_task_create, NULL,
         "{manifest: text, file?, no_start?}: create (and start) a task"},
        {"task.list", op_task_list, NULL, "every task with its state and counts"},
        {"task.get", op_task_get, NULL, "{id}: one task"},
        {"task.start", op_task_start, NULL, "{id}: start a Stopped or Ended task"},
        {"task.stop", op_task_stop, NULL, "{id}: stop a Running task"},
        {"task.enable", op_task_enable, NULL, "{id}: take a Disabled task back to Stopped"},
        {"task.remove", op_task_remove, NULL, "{id}: stop and forget a task"},
        {"metric.list", op_metric_list, NULL, "{ns?}: the catalog, optionally under a prefix"},
        {"metric.get", op_metric_list, (void *)1, "{ns}: catalog entries matching ns"},
        {"plugin.list", op_plugin_list, NULL, "built-in and loaded plugins"},
        {"plugin.load", op_plugin_load, NULL, "{path}: load a plugin shared object"},
        {"plugin.unload", op_plugin_unload, NULL, "{name}: unload a loaded plugin"},
    };
    return fr_service_add_ops(svc, ops, sizeof(ops) / sizeof(ops[0]));
}

static void collector_stop(fr_service *svc, void *confp)
{
    if (col.sync_started) {
        pthread_mutex_lock(&col.sync_mu);
        atomic_store(&col.sync_stop, true);
        pthread_cond_broadcast(&col.sync_cv);
        pthread_mutex_unlock(&col.sync_mu);
        pthread_join(col.sync, NULL);
        col.sync_started = false;
    }
    tasks_close(col.tasks);
    col.tasks = NULL;
    if (col.down != NULL && fr_data_flush(col.down, 2000) != 0) {
        fr_warn("data", "batches still unacknowledged by the processors at shutdown");
    }
    if (col.direct != NULL && fr_data_flush(col.direct, 2000) != 0) {
        fr_warn("data", "batches still unacknowledged by the publishers at shutdown");
    }
    fr_data_sender_close(col.down);
    col.down = NULL;
    fr_data_sender_close(col.direct);
    col.direct = NULL;
    fr_ctl_fanout_close(col.procctl);
    fr_ctl_fanout_close(col.pubctl);
    col.procctl = col.pubctl = NULL;
    registry_destroy(col.reg);
    col.reg = NULL;
}

static const fr_service_def collector_def = {
    .name = "collector",
    .spec = &collector_spec,
    .conf_size = sizeof(collector_conf),
    .start = collector_start,
    .stop = collector_stop,
};

int main(int argc, char **argv)
{
    return fr_service_main(&collector_def, argc, argv);
}
