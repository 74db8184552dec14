/* Tasks: binding, scheduling, collecting with a deadline, failure counting,
 * persistence. One scheduler thread and one collect thread per task, so a
 * slow or hanging plugin holds up only its own task. */
#include "task.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fresco/clock.h"
#include "fresco/log.h"
#include "manifest_view.h"

#define TASK_ID_LEN 36

typedef struct binding {
    const fr_collector_plugin *p;
    void *config;
    void *state;
    fr_ns_query *query;
} binding;

typedef struct task task;

/* The collect thread's job slot. */
typedef struct collect_job {
    bool pending;   /* posted, not yet taken */
    bool busy;      /* the collect thread is inside plugins */
    bool done;      /* finished; result below */
    bool abandoned; /* the scheduler gave up waiting (deadline) */
    int64_t now_ns;
    int rv;
    char why[512];
    fr_batch *batch;
} collect_job;

struct task {
    tasks *owner;
    char id[TASK_ID_LEN + 1];
    char *name;
    fr_manifest *m;
    binding *b;
    size_t nb;

    pthread_mutex_t lock;
    pthread_cond_t cv;  /* scheduler waits: stop, job done */
    pthread_cond_t jcv; /* collect thread waits: job posted, exit */
    task_state state;
    bool stop_sched;  /* ask the scheduler thread to return */
    bool exit_worker; /* ask the collect thread to return */
    bool sched_running, worker_running;
    bool sched_joinable;          /* a scheduler thread nobody joined yet */
    pthread_mutex_t persist_lock; /* one writer of the task's file at a time */
    pthread_t sched, worker;
    collect_job job;

    uint64_t hits, misses, failures, consecutive, runs;
    char last_failure[512];
    char disabled_reason[512];
    int64_t created_ns, last_run_ns;
    uint64_t seq;
    fr_batch *tagged; /* the tick's batch with the configured tags */
    bool resume;      /* restored as Running: start once every task is loaded */
    bool orphaned;    /* outlived the table (stuck at shutdown): leave bindings */
    int refs;         /* table + threads: freed at 0 */
};

struct tasks {
    tasks_env env;
    pthread_mutex_t lock;
    task **v;
    size_t n, cap;
    task **removed; /* removed while a collect was stuck in a plugin */
    size_t nremoved;
};

const char *task_state_name(task_state s)
{
    switch (s) {
    case TASK_STOPPED:
        return "Stopped";
    case TASK_RUNNING:
        return "Running";
    case TASK_DISABLED:
        return "Disabled";
    case TASK_ENDED:
        return "Ended";
    }
    return "?";
}

static int state_from_name(const char *s, task_state *out)
{
    static const task_state all[] = {TASK_STOPPED, TASK_RUNNING, TASK_DISABLED, TASK_ENDED};
    for (size_t i = 0; i < 4; i++) {
        if (strcmp(s, task_state_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return FR_EINVAL;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s != NULL ? s : "", n);
}

/* ---- ids ---- */

static void make_id(char out[TASK_ID_LEN + 1])
{
    unsigned char r[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, r, sizeof(r)) : -1;
    if (fd >= 0) {
        close(fd);
    }
    if (got != (ssize_t)sizeof(r)) {
        uint64_t x = (uint64_t)fr_now_ns() ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < sizeof(r); i++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            r[i] = (unsigned char)(x >> 56);
        }
    }
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, TASK_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1],
             r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14],
             r[15]);
}

/* ---- binding plugins to a manifest ---- */

static void bindings_free(tasks *t, binding *b, size_t nb)
{
    for (size_t i = 0; i < nb; i++) {
        if (b[i].state != NULL) {
            b[i].p->destroy(b[i].state);
        }
        if (b[i].config != NULL) {
            fr_plugin_config_free(b[i].p, b[i].config);
        }
        fr_ns_query_destroy(b[i].query);
        registry_release(t->env.reg, b[i].p);
    }
    free(b);
}

typedef struct bind_ctx {
    tasks *t;
    const fr_manifest *m;
    binding *b;
    size_t nb;
    bool *covered; /* per requested metric */
    fr_error *err;
    int rv;
} bind_ctx;

/* True when the config/tag prefix applies to the plugin: it is a prefix of
 * the plugin's namespace prefix, or lies inside it. */
static bool prefix_applies(const char *prefix, const char *ns_prefix)
{
    size_t a = strlen(prefix), b = strlen(ns_prefix);
    while (a > 1 && prefix[a - 1] == '/') {
        a--;
    }
    if (a <= b) {
        return strncmp(prefix, ns_prefix, a) == 0 &&
               (ns_prefix[a] == '/' || ns_prefix[a] == '\0' || a == 1);
    }
    return strncmp(prefix, ns_prefix, b) == 0 && prefix[b] == '/';
}

/* A config or tag prefix applies to a plugin when it applies to its
 * namespace prefix or to the fixed start of any of its catalog patterns
 * (procfs also answers under /intel/psutil). */
static bool prefix_applies_plugin(const char *prefix, const fr_collector_plugin *p)
{
    if (prefix_applies(prefix, p->ns_prefix)) {
        return true;
    }
    for (size_t i = 0; i < p->ncatalog; i++) {
        char fixed[512];
        const char *star = strstr(p->catalog[i].ns, "/*");
        size_t len = star != NULL ? (size_t)(star - p->catalog[i].ns) : strlen(p->catalog[i].ns);
        if (len >= sizeof(fixed)) {
            continue;
        }
        memcpy(fixed, p->catalog[i].ns, len);
        fixed[len] = '\0';
        if (prefix_applies(prefix, fixed)) {
            return true;
        }
    }
    return false;
}

static bool policy_has(const fr_collector_plugin *p, const char *key)
{
    for (size_t i = 0; i < p->npolicy; i++) {
        if (strcmp(p->policy[i].key, key) == 0) {
            return true;
        }
    }
    return false;
}

static int bind_plugin(void *arg, const fr_collector_plugin *p, bool builtin, const char *path)
{
    bind_ctx *bc = arg;
    size_t nmetrics = mv_metric_count(bc->m);
    fr_ns_query *q = NULL;
    for (size_t i = 0; i < nmetrics; i++) {
        const char *want = mv_metric(bc->m, i);
        fr_ns_query *one = fr_ns_query_new();
        if (one == NULL) {
            fr_ns_query_destroy(q);
            return bc->rv = FR_ENOMEM;
        }
        int rv = fr_ns_query_add(one, want, bc->err);
        if (rv != 0) {
            char where[160];
            mv_metric_where(bc->m, i, where, sizeof(where));
            fr_error_set(bc->err, rv, where, "workflow.collect.metrics: %s: %s", want,
                         bc->err->message);
            fr_ns_query_destroy(one);
            fr_ns_query_destroy(q);
            return bc->rv = rv;
        }
        bool hit = false;
        for (size_t j = 0; j < p->ncatalog && !hit; j++) {
            hit = fr_ns_query_covers_pattern(one, 0, p->catalog[j].ns);
        }
        fr_ns_query_destroy(one);
        if (!hit) {
            continue;
        }
        bc->covered[i] = true;
        if (q == NULL && (q = fr_ns_query_new()) == NULL) {
            return bc->rv = FR_ENOMEM;
        }
        fr_ns_query_add(q, want, NULL);
    }
    if (q == NULL) {
        return 0;
    }
    binding *nb = realloc(bc->b, (bc->nb + 1) * sizeof(*nb));
    if (nb == NULL) {
        fr_ns_query_destroy(q);
        return bc->rv = FR_ENOMEM;
    }
    bc->b = nb;
    binding *b = &bc->b[bc->nb];
    memset(b, 0, sizeof(*b));
    b->p = p; /* referenced once registry_each has let go of its lock */
    b->query = q;
    bc->nb++;
    return 0;
}

/* A plugin config error names the key ("key 'mode': ..."): point where at
 * that key's line and column in the manifest. */
static void config_error_position(const fr_manifest *m, const fr_collector_plugin *p, fr_error *err)
{
    for (size_t s = 0; s < mv_config_count(m); s++) {
        if (!prefix_applies_plugin(mv_config_prefix(m, s), p)) {
            continue;
        }
        for (size_t k = 0; k < mv_config_nkeys(m, s); k++) {
            char quoted[160];
            snprintf(quoted, sizeof(quoted), "'%s'", mv_config_key(m, s, k));
            if (strstr(err->message, quoted) != NULL) {
                char where[160];
                mv_config_where(m, s, k, where, sizeof(where));
                snprintf(err->where, sizeof(err->where), "%s", where);
                return;
            }
        }
    }
}

/* Gathers the config keys that apply to plugin p (shorter prefixes first,
 * longer ones override) and creates its instance. */
static int binding_init(const fr_manifest *m, binding *b, fr_error *err)
{
    size_t nsec = mv_config_count(m);
    const char **keys = NULL, **vals = NULL;
    size_t n = 0, cap = 0;
    int rv = 0;
    /* Apply in order of prefix length so the most specific wins. */
    for (size_t len = 0; len <= 4096 && rv == 0; len++) {
        for (size_t s = 0; s < nsec; s++) {
            const char *prefix = mv_config_prefix(m, s);
            if (strlen(prefix) != len || !prefix_applies_plugin(prefix, b->p)) {
                continue;
            }
            for (size_t k = 0; k < mv_config_nkeys(m, s); k++) {
                const char *key = mv_config_key(m, s, k);
                if (!policy_has(b->p, key)) {
                    continue; /* meant for another plugin under this prefix */
                }
                if (n == cap) {
                    cap = cap ? cap * 2 : 8;
                    const char **nk = realloc(keys, cap * sizeof(*nk));
                    const char **nv = nk != NULL ? realloc(vals, cap * sizeof(*nv)) : NULL;
                    if (nk != NULL) {
                        keys = nk;
                    }
                    if (nv == NULL) {
                        rv = FR_ENOMEM;
                        break;
                    }
                    vals = nv;
                }
                keys[n] = key;
                vals[n] = mv_config_value(m, s, k);
                n++;
            }
        }
    }
    if (rv == 0) {
        char where[256];
        snprintf(where, sizeof(where), "workflow.collect.config.%s", b->p->ns_prefix);
        rv = fr_plugin_config_load(b->p, keys, vals, n, where, &b->config, err);
        if (rv != 0 && err != NULL) {
            config_error_position(m, b->p, err);
        }
    }
    free(keys);
    free(vals);
    if (rv == 0) {
        rv = b->p->init(&b->state, b->config, err);
        if (rv != 0 && err != NULL && err->message[0] == '\0') {
            fr_error_set(err, rv, b->p->name, "plugin %s: %s", b->p->name, fr_strerror(rv));
        }
    }
    return rv;
}

/* Every config key must be known to at least one plugin it applies to. */
static int config_keys_known(tasks *t, const fr_manifest *m, const binding *b, size_t nb,
                             fr_error *err)
{
    for (size_t s = 0; s < mv_config_count(m); s++) {
        const char *prefix = mv_config_prefix(m, s);
        for (size_t k = 0; k < mv_config_nkeys(m, s); k++) {
            const char *key = mv_config_key(m, s, k);
            bool known = false;
            for (size_t i = 0; i < nb && !known; i++) {
                known = prefix_applies_plugin(prefix, b[i].p) && policy_has(b[i].p, key);
            }
            if (!known) {
                char where[160];
                mv_config_where(m, s, k, where, sizeof(where));
                return fr_error_set(err, FR_EUNKNOWN, where,
                                    "workflow.collect.config.%s.%s: no plugin of this task "
                                    "under %s takes a key '%s'",
                                    prefix, key, prefix, key);
            }
        }
    }
    return 0;
}

static int bind_all(tasks *t, const fr_manifest *m, binding **out, size_t *nout, fr_error *err)
{
    size_t nmetrics = mv_metric_count(m);
    if (nmetrics == 0) {
        return fr_error_set(err, FR_EMISSING, "workflow.collect.metrics",
                            "workflow.collect.metrics: the task asks for no metric");
    }
    bind_ctx bc = {.t = t, .m = m, .err = err};
    bc.covered = calloc(nmetrics, sizeof(bool));
    if (bc.covered == NULL) {
        return FR_ENOMEM;
    }
    registry_each(t->env.reg, bind_plugin, &bc);
    int rv = bc.rv;
    for (size_t i = 0; i < bc.nb; i++) {
        const char *name = bc.b[i].p->name;
        bc.b[i].p = registry_acquire_by_name(t->env.reg, name);
        if (bc.b[i].p == NULL) {
            /* unloaded meanwhile: drop it from the list */
            fr_ns_query_destroy(bc.b[i].query);
            bc.b[i--] = bc.b[--bc.nb];
            if (rv == 0) {
                rv = fr_error_set(err, FR_ENOTFOUND, "", "a plugin was unloaded meanwhile");
            }
        }
    }
    for (size_t i = 0; rv == 0 && i < nmetrics; i++) {
        if (!bc.covered[i]) {
            char where[160];
            mv_metric_where(m, i, where, sizeof(where));
            rv = fr_error_set(err, FR_ENOTFOUND, where,
                              "workflow.collect.metrics: no plugin offers %s "
                              "(fresco metric list shows what is offered)",
                              mv_metric(m, i));
        }
    }
    if (rv == 0) {
        rv = config_keys_known(t, m, bc.b, bc.nb, err);
    }
    for (size_t i = 0; rv == 0 && i < bc.nb; i++) {
        rv = binding_init(m, &bc.b[i], err);
    }
    free(bc.covered);
    if (rv != 0) {
        bindings_free(t, bc.b, bc.nb);
        return rv;
    }
    *out = bc.b;
    *nout = bc.nb;
    return 0;
}

/* ---- task objects ---- */

static void task_free(task *k);

static void task_unref(task *k)
{
    pthread_mutex_lock(&k->lock);
    int refs = --k->refs;
    pthread_mutex_unlock(&k->lock);
    if (refs == 0) {
        task_free(k);
    }
}

static void task_free(task *k)
{
    if (!k->orphaned) {
        bindings_free(k->owner, k->b, k->nb);
    }
    fr_batch_destroy(k->job.batch);
    fr_batch_destroy(k->tagged);
    fr_manifest_free(k->m);
    free(k->name);
    pthread_mutex_destroy(&k->lock);
    pthread_mutex_destroy(&k->persist_lock);
    pthread_cond_destroy(&k->cv);
    pthread_cond_destroy(&k->jcv);
    free(k);
}

static void task_publish_state(task *k, const char *reason)
{
    fr_event_pub *ev = k->owner->env.events;
    if (ev == NULL) {
        return;
    }
    fr_buf body = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, 4);
    pack_str(&pk, "id");
    pack_str(&pk, k->id);
    pack_str(&pk, "name");
    pack_str(&pk, k->name);
    pack_str(&pk, "state");
    pack_str(&pk, task_state_name(k->state));
    pack_str(&pk, "reason");
    pack_str(&pk, reason != NULL ? reason : "");
    fr_event_publish(ev, "event/task", body.data, body.len);
    fr_buf_free(&body);
}

/* ---- persistence ---- */

static int task_persist(task *k)
{
    const char *dir = k->owner->env.state_dir;
    if (dir == NULL || dir[0] == '\0') {
        return 0;
    }
    fr_buf b = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, fr_buf_msgpack_write);
    pthread_mutex_lock(&k->lock);
    msgpack_pack_map(&pk, 6);
    pack_str(&pk, "id");
    pack_str(&pk, k->id);
    pack_str(&pk, "name");
    pack_str(&pk, k->name);
    pack_str(&pk, "state");
    pack_str(&pk, task_state_name(k->state));
    pack_str(&pk, "reason");
    pack_str(&pk, k->disabled_reason);
    pack_str(&pk, "created_ns");
    msgpack_pack_int64(&pk, k->created_ns);
    pack_str(&pk, "manifest");
    int rv = fr_manifest_pack(k->m, &pk);
    pthread_mutex_unlock(&k->lock);
    char tmp[4096], final[4096];
    snprintf(tmp, sizeof(tmp), "%s/tasks/.%s.tmp", dir, k->id);
    snprintf(final, sizeof(final), "%s/tasks/%s.task", dir, k->id);
    pthread_mutex_lock(&k->persist_lock);
    int fd = rv == 0 ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    bool ok = fd >= 0 && write(fd, b.data, b.len) == (ssize_t)b.len && fsync(fd) == 0;
    if (fd >= 0) {
        ok = close(fd) == 0 && ok;
    }
    ok = ok && rename(tmp, final) == 0;
    pthread_mutex_unlock(&k->persist_lock);
    fr_buf_free(&b);
    if (!ok) {
        fr_error("tasks", "cannot persist task %s to %s: %s", k->id, final, strerror(errno));
        unlink(tmp);
        return FR_EIO;
    }
    return 0;
}

static void task_unpersist(tasks *t, const char *id)
{
    if (t->env.state_dir == NULL || t->env.state_dir[0] == '\0') {
        return;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/tasks/%s.task", t->env.state_dir, id);
    unlink(path);
}

/* ---- crashes inside plugins ----
 *
 * Plugins run in the collector's process (a loaded .so too): a plugin that
 * crashes takes the collector down. It does not do so silently: the signal
 * handler names the plugin and task on stderr and leaves a marker in the
 * state directory; at the next start the task that ran the plugin comes
 * back Disabled with that reason instead of crashing the collector again.
 * Only async-signal-safe calls are made in the handler. */

static const int crash_sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
static struct sigaction crash_prev[sizeof(crash_sigs) / sizeof(crash_sigs[0])];
static _Thread_local const char *crash_plugin;
static _Thread_local const char *crash_task;
static char crash_marker[4096];

static size_t cat_str(char *buf, size_t pos, size_t cap, const char *s)
{
    while (s != NULL && *s != '\0' && pos + 1 < cap) {
        buf[pos++] = *s++;
    }
    return pos;
}

static void crash_handler(int sig)
{
    char num[4] = {(char)('0' + (sig / 10) % 10), (char)('0' + sig % 10), '\0', '\0'};
    char line[512];
    size_t n = 0;
    if (crash_plugin != NULL) {
        n = cat_str(line, n, sizeof(line), "fresco-collector: fatal signal ");
        n = cat_str(line, n, sizeof(line), num);
        n = cat_str(line, n, sizeof(line), " in plugin ");
        n = cat_str(line, n, sizeof(line), crash_plugin);
        n = cat_str(line, n, sizeof(line), " (task ");
        n = cat_str(line, n, sizeof(line), crash_task);
        n = cat_str(line, n, sizeof(line), "); its task will be Disabled at restart\n");
        ssize_t w = write(STDERR_FILENO, line, n);
        (void)w;
        if (crash_marker[0] != '\0') {
            int fd = open(crash_marker, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (fd >= 0) {
                n = 0;
                n = cat_str(line, n, sizeof(line), crash_task);
                n = cat_str(line, n, sizeof(line), "\t");
                n = cat_str(line, n, sizeof(line), crash_plugin);
                n = cat_str(line, n, sizeof(line), "\t");
                n = cat_str(line, n, sizeof(line), num);
                n = cat_str(line, n, sizeof(line), "\n");
                w = write(fd, line, n);
                (void)w;
                fsync(fd);
                close(fd);
            }
        }
    }
    /* Hand the signal to whoever handled it before (a sanitizer's report),
     * or to the default action. */
    for (size_t i = 0; i < sizeof(crash_sigs) / sizeof(crash_sigs[0]); i++) {
        if (crash_sigs[i] == sig) {
            sigaction(sig, &crash_prev[i], NULL);
        }
    }
    raise(sig);
}

static void crash_handler_install(const char *state_dir)
{
    if (state_dir != NULL && state_dir[0] != '\0') {
        snprintf(crash_marker, sizeof(crash_marker), "%s/crashed", state_dir);
    }
    for (size_t i = 0; i < sizeof(crash_sigs) / sizeof(crash_sigs[0]); i++) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = crash_handler;
        sa.sa_flags = SA_RESETHAND | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(crash_sigs[i], &sa, &crash_prev[i]);
    }
}

/* ---- collecting ---- */

/* The task's workflow.collect.tags, applied by namespace prefix: copies
 * `in` into `out` with the tags added (a metric's own tags come first;
 * a configured tag with the same key replaces it). */
static int retag(const fr_manifest *m, const fr_batch *in, fr_batch *out)
{
    int rv = fr_batch_reset(out, in->task, in->source, in->seq);
    for (uint32_t i = 0; rv == 0 && i < in->nmetrics; i++) {
        const fr_metric *src = &in->metrics[i];
        fr_metric *dst = fr_batch_add(out, src->ns, src->ts, src->value, src->unit);
        if (dst == NULL) {
            return FR_ENOMEM;
        }
        for (uint32_t t = 0; rv == 0 && t < src->ntags; t++) {
            bool replaced = false;
            for (size_t s = 0; s < mv_tags_count(m) && !replaced; s++) {
                const char *prefix = mv_tags_prefix(m, s);
                if (strncmp(src->ns, prefix, strlen(prefix)) != 0) {
                    continue;
                }
                for (size_t j = 0; j < mv_tags_nkeys(m, s) && !replaced; j++) {
                    replaced = strcmp(mv_tags_key(m, s, j), src->tags[t].key) == 0;
                }
            }
            if (!replaced) {
                rv = fr_batch_metric_tag(out, dst, src->tags[t].key, src->tags[t].value);
            }
        }
        for (size_t s = 0; rv == 0 && s < mv_tags_count(m); s++) {
            const char *prefix = mv_tags_prefix(m, s);
            if (strncmp(src->ns, prefix, strlen(prefix)) != 0) {
                continue;
            }
            for (size_t j = 0; rv == 0 && j < mv_tags_nkeys(m, s); j++) {
                rv = fr_batch_metric_tag(out, dst, mv_tags_key(m, s, j), mv_tags_value(m, s, j));
            }
        }
    }
    return rv;
}

static void *collect_thread(void *arg)
{
    task *k = arg;
    pthread_mutex_lock(&k->lock);
    for (;;) {
        while (!k->job.pending && !k->exit_worker) {
            pthread_cond_wait(&k->jcv, &k->lock);
        }
        if (k->exit_worker && !k->job.pending) {
            break;
        }
        k->job.pending = false;
        k->job.busy = true;
        fr_batch *b = k->job.batch;
        int64_t now = k->job.now_ns;
        pthread_mutex_unlock(&k->lock);

        int rv = 0;
        char why[512] = "";
        for (size_t i = 0; i < k->nb; i++) {
            fr_collect_req req = {.query = k->b[i].query, .now_ns = now, .out = b};
            fr_error err;
            fr_error_clear(&err);
            crash_plugin = k->b[i].p->name;
            crash_task = k->id;
            int prv = k->b[i].p->collect(k->b[i].state, &req, &err);
            crash_plugin = NULL;
            if (prv != 0 && rv == 0) {
                rv = prv;
                snprintf(why, sizeof(why), "plugin %s: %s%s%s", k->b[i].p->name,
                         err.where[0] ? err.where : "", err.where[0] ? ": " : "",
                         err.message[0] ? err.message : fr_strerror(prv));
            }
        }

        pthread_mutex_lock(&k->lock);
        k->job.busy = false;
        k->job.rv = rv;
        snprintf(k->job.why, sizeof(k->job.why), "%s", why);
        k->job.done = true;
        pthread_cond_broadcast(&k->cv);
    }
    /* Drop this thread's reference in the same step that says it is gone:
     * whoever waits for worker_running then holds the last one. */
    k->worker_running = false;
    int refs = --k->refs;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->lock);
    if (refs == 0) {
        task_free(k);
    }
    return NULL;
}

/* Sends the batch down the pipeline and to watchers. */
static void task_emit(task *k, fr_batch *b)
{
    tasks_env *env = &k->owner->env;
    fr_buf wire = FR_BUF_INIT;
    if (fr_batch_encode(b, &wire) != 0) {
        fr_error("tasks", "task %s: cannot encode a batch", k->id);
        return;
    }
    if (env->events != NULL) {
        char topic[FR_TOPIC_MAX];
        snprintf(topic, sizeof(topic), "metrics/%s", k->id);
        fr_event_publish(env->events, topic, wire.data, wire.len);
    }
    /* Processing goes to the processors; the task's own publish nodes
     * straight to the publishers. */
    fr_data_sender *to[2] = {k->m->collect.nprocess > 0 ? env->down : NULL,
                             k->m->collect.npublish > 0 ? env->direct : NULL};
    uint64_t resends = 0;
    for (int i = 0; i < 2; i++) {
        if (to[i] == NULL) {
            continue;
        }
        int rv = fr_data_send(to[i], wire.data, wire.len, env->send_timeout_ms);
        fr_data_sender_stats st;
        fr_data_sender_stats_get(to[i], &st);
        resends += st.resends;
        if (rv == 0) {
            atomic_fetch_add(env->batches_sent, 1);
        } else {
            atomic_fetch_add(env->send_busy, 1);
            fr_warn("tasks", "task %s: batch %llu not taken by the %s: %s", k->id,
                    (unsigned long long)b->seq, i == 0 ? "processors" : "publishers",
                    fr_strerror(rv));
        }
    }
    if (to[0] != NULL || to[1] != NULL) {
        atomic_store(env->resends, resends);
    }
    fr_buf_free(&wire);
}

/* Called with k->lock held after a failed tick. */
static void task_count_failure(task *k, const char *why)
{
    k->failures++;
    k->consecutive++;
    atomic_fetch_add(k->owner->env.failures, 1);
    snprintf(k->last_failure, sizeof(k->last_failure), "%s", why);
    int64_t maxf = mv_max_failures(k->m);
    if (maxf >= 0 && k->consecutive > (uint64_t)maxf) {
        k->state = TASK_DISABLED;
        snprintf(k->disabled_reason, sizeof(k->disabled_reason),
                 "disabled after %llu consecutive failures (max-failures %lld); last: %s",
                 (unsigned long long)k->consecutive, (long long)maxf, why);
        k->stop_sched = true;
        fr_warn("tasks", "task %s (%s) %s", k->id, k->name, k->disabled_reason);
    }
}

/* One tick: post the job, wait up to the deadline. Called with lock held. */
static void task_tick(task *k, int64_t now_ns)
{
    tasks_env *env = &k->owner->env;
    atomic_fetch_add(env->ticks, 1);
    if (k->job.busy || k->job.pending) {
        /* the previous collect is still stuck in a plugin */
        k->misses++;
        atomic_fetch_add(env->misses, 1);
        return;
    }
    if (k->job.batch == NULL) {
        k->job.batch = fr_batch_new(k->id, env->node, 0);
        if (k->job.batch == NULL) {
            task_count_failure(k, "out of memory");
            return;
        }
    }
    fr_batch_reset(k->job.batch, k->id, env->node, ++k->seq);
    k->job.now_ns = now_ns;
    k->job.done = false;
    k->job.abandoned = false;
    k->job.pending = true;
    pthread_cond_signal(&k->jcv);

    int64_t t0 = fr_mono_ns();
    int64_t deadline = t0 + mv_deadline_ms(k->m) * 1000000;
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    int64_t wait_ns = deadline - t0;
    abs.tv_sec += wait_ns / 1000000000;
    abs.tv_nsec += wait_ns % 1000000000;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_sec++;
        abs.tv_nsec -= 1000000000;
    }
    while (!k->job.done && !k->stop_sched) {
        if (pthread_cond_timedwait(&k->cv, &k->lock, &abs) == ETIMEDOUT) {
            break;
        }
    }
    k->runs++;
    k->last_run_ns = now_ns;
    if (!k->job.done) {
        if (k->stop_sched && fr_mono_ns() < deadline) {
            return; /* stopping: not the plugin's fault */
        }
        k->job.abandoned = true;
        char why[512];
        snprintf(why, sizeof(why), "collect did not finish within the %lld ms deadline",
                 (long long)mv_deadline_ms(k->m));
        task_count_failure(k, why);
        return;
    }
    atomic_fetch_add(env->collect_ns_total, (uint64_t)(fr_mono_ns() - t0));
    fr_batch *b = k->job.batch;
    atomic_fetch_add(env->metrics_collected, b->nmetrics);
    if (k->job.rv != 0) {
        task_count_failure(k, k->job.why);
    } else {
        k->hits++;
        k->consecutive = 0;
    }
    if (b->nmetrics > 0 && mv_tags_count(k->m) > 0) {
        if (k->tagged == NULL) {
            k->tagged = fr_batch_new(b->task, b->source, b->seq);
        }
        if (k->tagged == NULL || retag(k->m, b, k->tagged) != 0) {
            task_count_failure(k, "out of memory while tagging");
            return;
        }
        fr_batch *swap = k->tagged;
        k->tagged = b;
        k->job.batch = swap;
        b = swap;
    }
    if (b->nmetrics > 0) {
        /* Emit outside the lock: sending may wait for room downstream. */
        k->job.batch = NULL;
        pthread_mutex_unlock(&k->lock);
        task_emit(k, b);
        pthread_mutex_lock(&k->lock);
        if (k->job.batch == NULL) {
            k->job.batch = b;
        } else {
            fr_batch_destroy(b);
        }
    }
}

/* Waits until abs_ns (CLOCK_REALTIME ns) or a stop. Lock held. */
static void wait_until(task *k, int64_t abs_ns)
{
    while (!k->stop_sched) {
        int64_t now = fr_now_ns();
        if (now >= abs_ns) {
            return;
        }
        int64_t left = abs_ns - now;
        if (left > 1000000000) {
            left = 1000000000; /* re-check the wall clock every second */
        }
        struct timespec abs;
        clock_gettime(CLOCK_MONOTONIC, &abs);
        abs.tv_sec += left / 1000000000;
        abs.tv_nsec += left % 1000000000;
        if (abs.tv_nsec >= 1000000000) {
            abs.tv_sec++;
            abs.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&k->cv, &k->lock, &abs);
    }
}

static void task_end(task *k, const char *why)
{
    k->state = TASK_ENDED;
    snprintf(k->disabled_reason, sizeof(k->disabled_reason), "%s", why);
    k->stop_sched = true;
}

static void *sched_thread(void *arg)
{
    task *k = arg;
    pthread_mutex_lock(&k->lock);
    int64_t interval = mv_interval_ms(k->m) * 1000000;
    int64_t next = fr_now_ns();
    if (mv_has_start(k->m) && mv_start_ns(k->m) > next) {
        next = mv_start_ns(k->m);
    }
    if (mv_is_cron(k->m)) {
        next = mv_cron_next(k->m, fr_now_ns() - 1);
    }
    while (!k->stop_sched) {
        wait_until(k, next);
        if (k->stop_sched) {
            break;
        }
        int64_t now = fr_now_ns();
        if (mv_has_stop(k->m) && now >= mv_stop_ns(k->m)) {
            task_end(k, "stop_timestamp reached");
            break;
        }
        task_tick(k, now);
        uint64_t count = mv_count(k->m);
        if (!k->stop_sched && count > 0 && k->runs >= count) {
            task_end(k, "count reached");
            break;
        }
        if (mv_is_cron(k->m)) {
            next = mv_cron_next(k->m, fr_now_ns());
            continue;
        }
        next += interval;
        int64_t after = fr_now_ns();
        while (next <= after) {
            /* a tick whose time passed while collecting: missed */
            k->misses++;
            atomic_fetch_add(k->owner->env.misses, 1);
            next += interval;
        }
    }
    task_state st = k->state;
    pthread_mutex_unlock(&k->lock);
    if (st == TASK_DISABLED || st == TASK_ENDED) {
        task_publish_state(k, k->disabled_reason);
        task_persist(k);
    }
    /* Only now: task_halt joins this thread while sched_joinable, so the
     * table outlives what is done above. */
    pthread_mutex_lock(&k->lock);
    k->sched_running = false;
    pthread_mutex_unlock(&k->lock);
    task_unref(k);
    return NULL;
}

/* Starts the threads of a task. Lock not held. */
static int task_run(task *k)
{
    pthread_mutex_lock(&k->lock);
    if (k->sched_running) {
        pthread_mutex_unlock(&k->lock);
        return 0;
    }
    if (k->sched_joinable) {
        /* the previous scheduler ended by itself (Disabled, Ended) */
        k->sched_joinable = false;
        pthread_mutex_unlock(&k->lock);
        pthread_join(k->sched, NULL);
        pthread_mutex_lock(&k->lock);
    }
    k->stop_sched = false;
    k->exit_worker = false;
    k->state = TASK_RUNNING;
    k->consecutive = 0;
    k->runs = 0;
    if (!k->worker_running) {
        k->refs++;
        if (pthread_create(&k->worker, NULL, collect_thread, k) != 0) {
            k->refs--;
            pthread_mutex_unlock(&k->lock);
            return FR_ENOMEM;
        }
        pthread_detach(k->worker);
        k->worker_running = true;
    }
    k->refs++;
    if (pthread_create(&k->sched, NULL, sched_thread, k) != 0) {
        k->refs--;
        k->state = TASK_STOPPED;
        pthread_mutex_unlock(&k->lock);
        return FR_ENOMEM;
    }
    k->sched_running = true;
    k->sched_joinable = true;
    pthread_mutex_unlock(&k->lock);
    return 0;
}

/* Stops the scheduler (joins it) and lets the collect thread go; a collect
 * stuck in a plugin is abandoned, its thread exits when the plugin returns. */
static void task_halt(task *k, task_state to)
{
    pthread_mutex_lock(&k->lock);
    bool joinable = k->sched_joinable;
    k->sched_joinable = false;
    k->stop_sched = true;
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->lock);
    if (joinable) {
        pthread_join(k->sched, NULL);
    }
    pthread_mutex_lock(&k->lock);
    if (k->state == TASK_RUNNING) {
        k->state = to;
    }
    pthread_mutex_unlock(&k->lock);
}

static void task_retire_worker(task *k)
{
    pthread_mutex_lock(&k->lock);
    k->exit_worker = true;
    pthread_cond_broadcast(&k->jcv);
    pthread_mutex_unlock(&k->lock);
}

/* ---- the table ---- */

static task *find_locked(tasks *t, const char *id)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i]->id, id) == 0 || strcmp(t->v[i]->name, id) == 0) {
            return t->v[i];
        }
    }
    return NULL;
}

static task *acquire(tasks *t, const char *id, fr_error *err)
{
    pthread_mutex_lock(&t->lock);
    task *k = find_locked(t, id);
    if (k != NULL) {
        pthread_mutex_lock(&k->lock);
        k->refs++;
        pthread_mutex_unlock(&k->lock);
    }
    pthread_mutex_unlock(&t->lock);
    if (k == NULL) {
        fr_error_set(err, FR_ENOTFOUND, "id", "no task %s (fresco task list shows them)", id);
    }
    return k;
}

static task *task_new(tasks *t, fr_manifest *m, binding *b, size_t nb, const char *id,
                      int64_t created)
{
    task *k = calloc(1, sizeof(*k));
    if (k == NULL) {
        return NULL;
    }
    k->owner = t;
    snprintf(k->id, sizeof(k->id), "%s", id);
    /* Batches are numbered from the clock (us), so a task loaded again
     * after a restart keeps numbering above what receivers have seen and
     * its new batches are not taken for resends (schemas/batch.md). */
    k->seq = (uint64_t)(fr_now_ns() / 1000);
    const char *name = mv_name(m);
    k->name = strdup(name != NULL && name[0] != '\0' ? name : id);
    if (k->name == NULL) {
        free(k);
        return NULL;
    }
    pthread_mutex_init(&k->lock, NULL);
    pthread_mutex_init(&k->persist_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&k->cv, &ca);
    pthread_cond_init(&k->jcv, &ca);
    pthread_condattr_destroy(&ca);
    k->m = m;
    k->b = b;
    k->nb = nb;
    k->state = TASK_STOPPED;
    k->created_ns = created;
    k->refs = 1;
    return k;
}

static int table_add(tasks *t, task *k)
{
    pthread_mutex_lock(&t->lock);
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        task **v = realloc(t->v, cap * sizeof(*v));
        if (v == NULL) {
            pthread_mutex_unlock(&t->lock);
            return FR_ENOMEM;
        }
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = k;
    pthread_mutex_unlock(&t->lock);
    return 0;
}

int tasks_create(tasks *t, fr_manifest *m, bool no_start, char id[37], fr_error *err)
{
    int rv = mv_validate_now(m, fr_now_ns(), err);
    if (rv != 0) {
        return rv;
    }
    const char *name = mv_name(m);
    if (name != NULL && name[0] != '\0') {
        pthread_mutex_lock(&t->lock);
        bool taken = find_locked(t, name) != NULL;
        pthread_mutex_unlock(&t->lock);
        if (taken) {
            return fr_error_set(err, FR_EEXIST, "name", "a task named %s exists already", name);
        }
    }
    binding *b = NULL;
    size_t nb = 0;
    if ((rv = bind_all(t, m, &b, &nb, err)) != 0) {
        return rv;
    }
    make_id(id);
    if (t->env.pipeline_put != NULL && mv_has_downstream(m) &&
        (rv = t->env.pipeline_put(t->env.pipeline_arg, id,
                                  name != NULL && name[0] != '\0' ? name : id, m, err)) != 0) {
        bindings_free(t, b, nb);
        return rv;
    }
    task *k = task_new(t, m, b, nb, id, fr_now_ns());
    if (k == NULL) {
        bindings_free(t, b, nb);
        return FR_ENOMEM;
    }
    if ((rv = table_add(t, k)) != 0) {
        k->m = NULL; /* stays the caller's */
        task_unref(k);
        return rv;
    }
    task_persist(k);
    fr_info("tasks", "created task %s (%s): %zu plugin(s)", k->id, k->name, nb);
    task_publish_state(k, "created");
    if (!no_start) {
        rv = task_run(k);
        task_persist(k);
        task_publish_state(k, "started");
    }
    return rv;
}

int tasks_start(tasks *t, const char *id, fr_error *err)
{
    task *k = acquire(t, id, err);
    if (k == NULL) {
        return FR_ENOTFOUND;
    }
    pthread_mutex_lock(&k->lock);
    task_state s = k->state;
    pthread_mutex_unlock(&k->lock);
    int rv = 0;
    if (s == TASK_DISABLED) {
        rv = fr_error_set(err, FR_EINVAL, "state", "task %s is Disabled (%s): enable it first",
                          k->id, k->disabled_reason);
    } else if (s == TASK_RUNNING) {
        rv = fr_error_set(err, FR_EINVAL, "state", "task %s is already Running", k->id);
    } else {
        if (s == TASK_ENDED) {
            k->disabled_reason[0] = '\0';
        }
        rv = task_run(k);
        task_persist(k);
        task_publish_state(k, "started");
    }
    task_unref(k);
    return rv;
}

int tasks_stop(tasks *t, const char *id, fr_error *err)
{
    task *k = acquire(t, id, err);
    if (k == NULL) {
        return FR_ENOTFOUND;
    }
    pthread_mutex_lock(&k->lock);
    task_state s = k->state;
    pthread_mutex_unlock(&k->lock);
    int rv = 0;
    if (s != TASK_RUNNING) {
        rv = fr_error_set(err, FR_EINVAL, "state", "task %s is %s, not Running", k->id,
                          task_state_name(s));
    } else {
        task_halt(k, TASK_STOPPED);
        task_persist(k);
        task_publish_state(k, "stopped");
    }
    task_unref(k);
    return rv;
}

int tasks_enable(tasks *t, const char *id, fr_error *err)
{
    task *k = acquire(t, id, err);
    if (k == NULL) {
        return FR_ENOTFOUND;
    }
    int rv = 0;
    pthread_mutex_lock(&k->lock);
    if (k->state != TASK_DISABLED) {
        rv = fr_error_set(err, FR_EINVAL, "state", "task %s is %s, not Disabled", k->id,
                          task_state_name(k->state));
    } else {
        k->state = TASK_STOPPED;
        k->consecutive = 0;
        k->disabled_reason[0] = '\0';
    }
    pthread_mutex_unlock(&k->lock);
    if (rv == 0) {
        task_persist(k);
        task_publish_state(k, "enabled");
    }
    task_unref(k);
    return rv;
}

int tasks_remove(tasks *t, const char *id, fr_error *err)
{
    pthread_mutex_lock(&t->lock);
    task *k = find_locked(t, id);
    if (k == NULL) {
        pthread_mutex_unlock(&t->lock);
        return fr_error_set(err, FR_ENOTFOUND, "id", "no task %s (fresco task list shows them)",
                            id);
    }
    for (size_t i = 0; i < t->n; i++) {
        if (t->v[i] == k) {
            t->v[i] = t->v[--t->n];
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    task_halt(k, TASK_STOPPED);
    task_retire_worker(k);
    pthread_mutex_lock(&k->lock);
    bool stuck = k->worker_running && k->job.busy;
    if (stuck) {
        k->refs++; /* kept so that shutdown can orphan it */
    }
    pthread_mutex_unlock(&k->lock);
    if (stuck) {
        pthread_mutex_lock(&t->lock);
        task **v = realloc(t->removed, (t->nremoved + 1) * sizeof(*v));
        if (v != NULL) {
            t->removed = v;
            t->removed[t->nremoved++] = k;
        } else {
            k->refs--; /* cannot track it: the process keeps the table */
        }
        pthread_mutex_unlock(&t->lock);
    }
    task_unpersist(t, k->id);
    if (t->env.pipeline_remove != NULL && mv_has_downstream(k->m)) {
        t->env.pipeline_remove(t->env.pipeline_arg, k->id, k->m);
    }
    fr_info("tasks", "removed task %s (%s)", k->id, k->name);
    task_publish_state(k, "removed");
    task_unref(k);
    return 0;
}

static void pack_task(task *k, msgpack_packer *pk)
{
    pthread_mutex_lock(&k->lock);
    msgpack_pack_map(pk, 12);
    pack_str(pk, "id");
    pack_str(pk, k->id);
    pack_str(pk, "name");
    pack_str(pk, k->name);
    pack_str(pk, "state");
    pack_str(pk, task_state_name(k->state));
    pack_str(pk, "hits");
    msgpack_pack_uint64(pk, k->hits);
    pack_str(pk, "misses");
    msgpack_pack_uint64(pk, k->misses);
    pack_str(pk, "failures");
    msgpack_pack_uint64(pk, k->failures);
    pack_str(pk, "consecutive_failures");
    msgpack_pack_uint64(pk, k->consecutive);
    pack_str(pk, "last_failure");
    pack_str(pk, k->last_failure);
    pack_str(pk, "reason");
    pack_str(pk, k->disabled_reason);
    pack_str(pk, "last_run_ns");
    msgpack_pack_int64(pk, k->last_run_ns);
    pack_str(pk, "created_ns");
    msgpack_pack_int64(pk, k->created_ns);
    pack_str(pk, "plugins");
    msgpack_pack_array(pk, k->nb);
    for (size_t i = 0; i < k->nb; i++) {
        pack_str(pk, k->b[i].p->name);
    }
    pthread_mutex_unlock(&k->lock);
}

void tasks_each(tasks *t,
                void (*fn)(void *arg, const char *id, const char *name, const fr_manifest *m),
                void *arg)
{
    pthread_mutex_lock(&t->lock);
    size_t n = t->n;
    task **v = n > 0 ? malloc(n * sizeof(*v)) : NULL;
    for (size_t i = 0; v != NULL && i < n; i++) {
        v[i] = t->v[i];
        pthread_mutex_lock(&v[i]->lock);
        v[i]->refs++;
        pthread_mutex_unlock(&v[i]->lock);
    }
    pthread_mutex_unlock(&t->lock);
    for (size_t i = 0; v != NULL && i < n; i++) {
        fn(arg, v[i]->id, v[i]->name, v[i]->m);
        task_unref(v[i]);
    }
    free(v);
}

int tasks_pack_get(tasks *t, const char *id, msgpack_packer *pk, fr_error *err)
{
    task *k = acquire(t, id, err);
    if (k == NULL) {
        return FR_ENOTFOUND;
    }
    pack_task(k, pk);
    task_unref(k);
    return 0;
}

void tasks_pack_list(tasks *t, msgpack_packer *pk)
{
    pthread_mutex_lock(&t->lock);
    msgpack_pack_array(pk, t->n);
    for (size_t i = 0; i < t->n; i++) {
        pack_task(t->v[i], pk);
    }
    pthread_mutex_unlock(&t->lock);
}

/* ---- open / close ---- */

static void load_one(tasks *t, const char *dir, const char *file)
{
    char path[4400];
    snprintf(path, sizeof(path), "%.4000s/%.255s", dir, file);
    FILE *f = fopen(path, "rb");
    fr_buf b = FR_BUF_INIT;
    char chunk[8192];
    size_t n;
    while (f != NULL && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        fr_buf_append(&b, chunk, n);
    }
    if (f != NULL) {
        fclose(f);
    }
    fr_doc doc = {0};
    fr_error err;
    fr_error_clear(&err);
    fr_manifest *m = NULL;
    const char *id = NULL, *state = NULL, *reason = "";
    int64_t created = 0;
    task_state st = TASK_STOPPED;
    int rv = fr_doc_decode(b.data, b.len, &doc, &err);
    if (rv == 0 && ((rv = fr_node_get_str(doc.root, "id", &id)) != 0 ||
                    (rv = fr_node_get_str(doc.root, "state", &state)) != 0 ||
                    (rv = state_from_name(state, &st)) != 0 || strlen(id) != TASK_ID_LEN)) {
        fr_error_set(&err, rv != 0 ? rv : FR_EINVAL, "", "bad task record");
        rv = rv != 0 ? rv : FR_EINVAL;
    }
    if (rv == 0) {
        fr_node_get_str(doc.root, "reason", &reason);
        fr_node_get_i64(doc.root, "created_ns", &created);
        rv = fr_manifest_unpack(fr_node_get(doc.root, "manifest"), &m, &err);
    }
    binding *bd = NULL;
    size_t nb = 0;
    if (rv == 0) {
        rv = bind_all(t, m, &bd, &nb, &err);
    }
    task *k = NULL;
    if (rv == 0 && (k = task_new(t, m, bd, nb, id, created)) == NULL) {
        bindings_free(t, bd, nb);
        rv = FR_ENOMEM;
    }
    if (rv != 0) {
        fr_manifest_free(m);
        fr_error("tasks", "cannot restore %s: %s %s; moved aside to %s.bad", path, err.where,
                 err.message[0] ? err.message : fr_strerror(rv), path);
        char bad[4500];
        snprintf(bad, sizeof(bad), "%.4400s.bad", path);
        rename(path, bad);
    } else {
        k->state = st == TASK_RUNNING ? TASK_STOPPED : st;
        snprintf(k->disabled_reason, sizeof(k->disabled_reason), "%s", reason);
        k->resume = st == TASK_RUNNING;
        if (table_add(t, k) != 0) {
            task_unref(k);
        }
        fr_info("tasks", "restored task %s (%s) as %s", k->id, k->name, task_state_name(st));
    }
    fr_doc_free(&doc);
    fr_buf_free(&b);
}

/* A crash marker from the last run: disable the task whose plugin crashed. */
static void tasks_apply_crash_marker(tasks *t)
{
    char path[4096], line[512];
    snprintf(path, sizeof(path), "%s/crashed", t->env.state_dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return;
    }
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    unlink(path);
    if (!got) {
        return;
    }
    line[strcspn(line, "\n")] = '\0';
    char *plugin = strchr(line, '\t');
    char *sig = plugin != NULL ? strchr(plugin + 1, '\t') : NULL;
    if (sig == NULL) {
        return;
    }
    *plugin++ = '\0';
    *sig++ = '\0';
    pthread_mutex_lock(&t->lock);
    task *k = find_locked(t, line);
    pthread_mutex_unlock(&t->lock);
    if (k == NULL) {
        return;
    }
    task_halt(k, TASK_DISABLED);
    pthread_mutex_lock(&k->lock);
    k->state = TASK_DISABLED;
    snprintf(k->disabled_reason, sizeof(k->disabled_reason),
             "plugin %s crashed the collector (signal %s) while this task ran it", plugin, sig);
    fr_error("tasks", "task %s disabled: %s", k->id, k->disabled_reason);
    pthread_mutex_unlock(&k->lock);
    task_persist(k);
}

int tasks_open(tasks **out, const tasks_env *env)
{
    tasks *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return FR_ENOMEM;
    }
    t->env = *env;
    pthread_mutex_init(&t->lock, NULL);
    if (env->state_dir != NULL && env->state_dir[0] != '\0') {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/tasks", env->state_dir);
        if ((mkdir(env->state_dir, 0700) != 0 && errno != EEXIST) ||
            (mkdir(dir, 0700) != 0 && errno != EEXIST)) {
            fr_error("tasks", "cannot create state directory %s: %s", dir, strerror(errno));
            pthread_mutex_destroy(&t->lock);
            free(t);
            return FR_EIO;
        }
        DIR *d = opendir(dir);
        struct dirent *de;
        while (d != NULL && (de = readdir(d)) != NULL) {
            size_t len = strlen(de->d_name);
            if (len > 5 && strcmp(de->d_name + len - 5, ".task") == 0) {
                load_one(t, dir, de->d_name);
            }
        }
        if (d != NULL) {
            closedir(d);
        }
        tasks_apply_crash_marker(t);
        for (size_t i = 0; i < t->n; i++) {
            if (t->v[i]->resume && t->v[i]->state != TASK_DISABLED) {
                task_run(t->v[i]);
            }
            t->v[i]->resume = false;
        }
    }
    crash_handler_install(env->state_dir);
    *out = t;
    return 0;
}

void tasks_close(tasks *t)
{
    if (t == NULL) {
        return;
    }
    pthread_mutex_lock(&t->lock);
    size_t n = t->n;
    task **v = t->v;
    t->v = NULL;
    t->n = 0;
    pthread_mutex_unlock(&t->lock);
    for (size_t i = 0; i < n; i++) {
        task_state keep;
        pthread_mutex_lock(&v[i]->lock);
        keep = v[i]->state;
        pthread_mutex_unlock(&v[i]->lock);
        task_halt(v[i], TASK_STOPPED);
        /* A shutdown is not a user's stop: a Running task comes back Running. */
        pthread_mutex_lock(&v[i]->lock);
        v[i]->state = keep;
        pthread_mutex_unlock(&v[i]->lock);
        task_persist(v[i]);
        task_retire_worker(v[i]);
        /* Give the collect thread a moment to leave; one stuck in a plugin
         * is abandoned (it frees the task when the plugin returns). */
        pthread_mutex_lock(&v[i]->lock);
        int64_t until = fr_mono_ns() + 500000000;
        /* A collect thread that is not inside a plugin leaves at once (wait
         * as long as that takes); one stuck in a plugin gets half a second. */
        while (v[i]->worker_running && (!v[i]->job.busy || fr_mono_ns() < until)) {
            struct timespec abs;
            clock_gettime(CLOCK_MONOTONIC, &abs);
            abs.tv_nsec += 20000000;
            if (abs.tv_nsec >= 1000000000) {
                abs.tv_sec++;
                abs.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&v[i]->cv, &v[i]->lock, &abs);
        }
        if (v[i]->worker_running) {
            /* Stuck in a plugin: the table and the registry go away before
             * it returns, so its last reference must not touch them. */
            v[i]->orphaned = true;
            fr_warn("tasks", "task %s: a collect is still stuck in a plugin at shutdown", v[i]->id);
        }
        pthread_mutex_unlock(&v[i]->lock);
        task_unref(v[i]);
    }
    free(v);
    for (size_t i = 0; i < t->nremoved; i++) {
        task *k = t->removed[i];
        pthread_mutex_lock(&k->lock);
        if (k->worker_running) {
            k->orphaned = true;
        }
        pthread_mutex_unlock(&k->lock);
        task_unref(k);
    }
    free(t->removed);
    pthread_mutex_destroy(&t->lock);
    free(t);
}
