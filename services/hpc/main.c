/* fresco-hpc: virtualised batch jobs.
 *
 * On every compute node it is the agent that boots and destroys a VM job's
 * guests for the batch system's prologue/epilogue and the job wrapper
 * (agent.h). Anywhere it keeps the registry of the jobs fresco submitted
 * (the spool's job folders), follows their state in the batch system and
 * publishes "hpc/job" events {job, dir, state, exit_code, node} when a job
 * is queued, running, done or failed. Control ops: hpc.submit,
 * hpc.status, hpc.cancel, hpc.list, hpc.images, hpc.jobstart, hpc.jobend. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "backend.h"
#include "fresco/event.h"
#include "fresco/log.h"
#include "fresco/service.h"
#include "job.h"
#include "policy.h"

#define MAX_TRACKED 4096

typedef struct tracked {
    char id[72];
    char dir[HPC_PATH_MAX];
    hpc_state state;
    int exit_code;
} tracked;

static struct {
    fr_service *svc;
    hpc_conf *c;
    hpc_agent *agent;
    pthread_mutex_t mu;
    tracked *jobs;
    size_t njobs;
    pthread_t poller;
    bool poller_started;
    atomic_bool stopping;
    pthread_mutex_t wake_mu;
    pthread_cond_t wake;
    time_t started;
    _Atomic uint64_t *c_events, *c_boots, *c_teardowns, *c_submits;
} hpc;

static void publish(const tracked *t, const char *node)
{
    fr_buf b = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, 5);
    msgpack_pack_str_with_body(&pk, "job", 3);
    msgpack_pack_str_with_body(&pk, t->id, strlen(t->id));
    msgpack_pack_str_with_body(&pk, "dir", 3);
    msgpack_pack_str_with_body(&pk, t->dir, strlen(t->dir));
    msgpack_pack_str_with_body(&pk, "state", 5);
    const char *s = hpc_state_name(t->state);
    msgpack_pack_str_with_body(&pk, s, strlen(s));
    msgpack_pack_str_with_body(&pk, "exit_code", 9);
    if (t->exit_code >= 0) {
        msgpack_pack_int(&pk, t->exit_code);
    } else {
        msgpack_pack_nil(&pk);
    }
    msgpack_pack_str_with_body(&pk, "node", 4);
    msgpack_pack_str_with_body(&pk, node, strlen(node));
    fr_event_publish(fr_service_events(hpc.svc), "hpc/job", b.data, b.len);
    fr_buf_free(&b);
    atomic_fetch_add(hpc.c_events, 1);
    if (t->exit_code >= 0) {
        fr_info("hpc", "job %s: %s (exit %d)", t->id, s, t->exit_code);
    } else {
        fr_info("hpc", "job %s: %s", t->id, s);
    }
}

static bool final(hpc_state s)
{
    return s == HPC_DONE || s == HPC_FAILED;
}

/* Records a state; publishes when it changed. A final state is final. */
static void transition(const char *id, const char *dir, hpc_state st, int exit_code,
                       const char *node, bool announce)
{
    pthread_mutex_lock(&hpc.mu);
    tracked *t = NULL;
    for (size_t i = 0; i < hpc.njobs; i++) {
        if (strcmp(hpc.jobs[i].id, id) == 0) {
            t = &hpc.jobs[i];
        }
    }
    if (t == NULL) {
        if (hpc.njobs == MAX_TRACKED) {
            /* forget the oldest finished job */
            size_t k = 0;
            while (k < hpc.njobs && !final(hpc.jobs[k].state)) {
                k++;
            }
            if (k == hpc.njobs) {
                pthread_mutex_unlock(&hpc.mu);
                return;
            }
            memmove(&hpc.jobs[k], &hpc.jobs[k + 1], (hpc.njobs - k - 1) * sizeof *hpc.jobs);
            hpc.njobs--;
        }
        t = &hpc.jobs[hpc.njobs++];
        memset(t, 0, sizeof *t);
        snprintf(t->id, sizeof t->id, "%s", id);
        t->exit_code = -1;
    }
    if (dir != NULL && dir[0] != '\0') {
        snprintf(t->dir, sizeof t->dir, "%s", dir);
    }
    bool changed = t->state != st && !final(t->state) && st != HPC_UNKNOWN;
    if (changed) {
        /* a job seen running already was queued: say so, in order */
        if (t->state == HPC_UNKNOWN && st != HPC_QUEUED && announce) {
            t->state = HPC_QUEUED;
            publish(t, node);
        }
        t->state = st;
        if (exit_code >= 0) {
            t->exit_code = exit_code;
        }
        if (announce) {
            publish(t, node);
        }
    }
    pthread_mutex_unlock(&hpc.mu);
}

static void on_agent(void *ctx, const char *id, const char *dir, hpc_state st, int exit_code,
                     const char *detail)
{
    (void)ctx;
    transition(id, dir, st, exit_code, detail, true);
}

static int read_id(const char *dir, char *id, size_t len)
{
    char path[HPC_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/batch-id", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    int ok = fgets(id, (int)len, f) != NULL;
    fclose(f);
    if (!ok) {
        return -1;
    }
    id[strcspn(id, "\r\n")] = '\0';
    return id[0] != '\0' ? 0 : -1;
}

/* Every job folder of the spool with a batch id, newest state from the
 * batch system. */
static void poll_once(void)
{
    DIR *d = opendir(hpc.c->spool);
    if (d == NULL) {
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL && !atomic_load(&hpc.stopping)) {
        if (strncmp(de->d_name, "job-", 4) != 0) {
            continue;
        }
        char dir[HPC_PATH_MAX], id[72];
        snprintf(dir, sizeof dir, "%s/%s", hpc.c->spool, de->d_name);
        if (read_id(dir, id, sizeof id) != 0) {
            continue;
        }
        pthread_mutex_lock(&hpc.mu);
        bool done = false, known = false;
        for (size_t i = 0; i < hpc.njobs; i++) {
            if (strcmp(hpc.jobs[i].id, id) == 0) {
                known = true;
                done = final(hpc.jobs[i].state);
            }
        }
        pthread_mutex_unlock(&hpc.mu);
        if (done) {
            continue;
        }
        hpc_jobinfo ji;
        fr_error e;
        fr_error_clear(&e);
        int rv = hpc_backend_info(hpc.c, id, &ji, &e);
        if (rv == FR_ENOTFOUND) {
            ji.state = HPC_FAILED; /* purged before we saw it end */
            ji.exit_code = -1;
        } else if (rv != 0) {
            continue;
        }
        /* jobs that ended before this service started are history, not news */
        struct stat st;
        char idf[HPC_PATH_MAX + 16];
        snprintf(idf, sizeof idf, "%s/batch-id", dir);
        bool news =
            known || !final(ji.state) || (stat(idf, &st) == 0 && st.st_mtime >= hpc.started - 1);
        transition(id, dir, ji.state, ji.exit_code, ji.nnodes > 0 ? ji.nodes[0] : "", news);
    }
    closedir(d);
}

static void *poll_run(void *arg)
{
    (void)arg;
    /* One host follows the shared spool (server_hostname), or every host
     * when the key is unset (one machine, or one spool per node). */
    const char *srv = hpc.c->server_hostname;
    bool follow = srv == NULL || srv[0] == '\0' || hpc_regex_match(srv, fr_service_node(hpc.svc));
    if (!follow) {
        fr_info("hpc", "node %s is not server_hostname: job events come from the server",
                fr_service_node(hpc.svc));
    }
    while (!atomic_load(&hpc.stopping)) {
        if (follow) {
            poll_once();
        }
        pthread_mutex_lock(&hpc.wake_mu);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += hpc.c->poll_ms / 1000;
        ts.tv_nsec += (hpc.c->poll_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (!atomic_load(&hpc.stopping)) {
            pthread_cond_timedwait(&hpc.wake, &hpc.wake_mu, &ts);
        }
        pthread_mutex_unlock(&hpc.wake_mu);
    }
    return NULL;
}

/* ---- ops ---- */

static int reply_err(fr_ctl_reply *r, int rv, const fr_error *e)
{
    return fr_ctl_reply_error(r, rv, NULL, e->where[0] ? e->where : NULL, "%s",
                              e->message[0] ? e->message : fr_strerror(rv));
}

/* Refuses keys of args not in keys (NULL-terminated): a misspelt key is an
 * error, not a silent default. */
static int only_keys(const fr_node *args, const char *const *keys, fr_ctl_reply *r)
{
    if (args == NULL || args->type != FR_NODE_MAP) {
        return 0;
    }
    for (uint32_t i = 0; i < args->len; i++) {
        const fr_node *k = &args->v.kv[2 * i];
        bool known = false;
        for (size_t j = 0; keys[j] != NULL && k->type == FR_NODE_STR; j++) {
            known |= strlen(keys[j]) == k->len && memcmp(keys[j], k->v.str, k->len) == 0;
        }
        if (!known) {
            return fr_ctl_reply_error(r, FR_EUNKNOWN, "bad_request", "args", "unknown key \"%.*s\"",
                                      k->type == FR_NODE_STR ? (int)k->len : 1,
                                      k->type == FR_NODE_STR ? k->v.str : "?");
        }
    }
    return 0;
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

static void pack_s(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* args.<key>: an array of strings, as a NULL-terminated vector (malloc'd
 * vector, strings pointing into the request). */
static int str_array(const fr_node *args, const char *key, char ***out, size_t *n, fr_ctl_reply *r)
{
    const fr_node *a = fr_node_get(args, key);
    *out = NULL;
    *n = 0;
    if (a == NULL) {
        return 0;
    }
    if (a->type != FR_NODE_ARRAY || a->len > 4096) {
        return fr_ctl_reply_error(r, FR_ETYPE, "bad_request", key,
                                  "\"%s\" must be an array of at most 4096 strings", key);
    }
    char **v = calloc(a->len + 1, sizeof *v);
    if (v == NULL) {
        return FR_ENOMEM;
    }
    for (uint32_t i = 0; i < a->len; i++) {
        if (a->v.arr[i].type != FR_NODE_STR) {
            free(v);
            return fr_ctl_reply_error(r, FR_ETYPE, "bad_request", key, "\"%s[%u]\" is not a string",
                                      key, i);
        }
        v[i] = (char *)a->v.arr[i].v.str;
    }
    *out = v;
    *n = a->len;
    return 0;
}

static int op_submit(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    (void)ctx;
    static const char *const keys[] = {"args", "uid", "user", NULL};
    if (only_keys(args, keys, r) != 0) {
        return FR_EUNKNOWN;
    }
    char **argv;
    size_t argc;
    int rv = str_array(args, "args", &argv, &argc, r);
    if (rv != 0) {
        return rv;
    }
    if (fr_node_get(args, "uid") != NULL || fr_node_get(args, "user") != NULL) {
        free(argv);
        return fr_ctl_reply_error(r, FR_EINVAL, "bad_request", "uid",
                                  "jobs run as the service's own user; uid/user cannot be chosen");
    }
    /* The job runs as this service's user. A root service takes that from
     * root only, over ipc:// where the kernel names the caller: anyone
     * else submits with `fresco qsub`, as themselves. */
    int64_t caller = fr_ctl_reply_peer_uid(r);
    if (geteuid() == 0 ? caller != 0 : (caller >= 0 && caller != (int64_t)geteuid())) {
        free(argv);
        return fr_ctl_reply_error(
            r, FR_EINVAL, "forbidden", "caller",
            "hpc.submit submits as uid %u: only that user may ask, over an ipc:// control "
            "socket%s; users submit with `fresco qsub`",
            (unsigned)geteuid(), caller < 0 ? " (this request came over tcp)" : "");
    }
    hpc_ident_buf who;
    fr_error e;
    fr_error_clear(&e);
    hpc_submit_result res;
    if ((rv = hpc_ident_self(&who, &e)) == 0) {
        rv = hpc_submit(hpc.c, (int)argc, argv, &who.id, NULL, &res, &e);
    }
    if (rv == 0 && res.kind == HPC_SUBMIT_PLAIN) {
        /* the real qsub, with the arguments unchanged */
        char **qv = calloc(argc + 2, sizeof *qv);
        if (qv == NULL) {
            free(argv);
            return FR_ENOMEM;
        }
        qv[0] = hpc.c->real_qsub;
        memcpy(qv + 1, argv, argc * sizeof *qv);
        rv = hpc_backend_submit(hpc.c, qv, res.id, sizeof res.id, &e);
        free(qv);
    }
    free(argv);
    if (rv != 0) {
        return reply_err(r, rv, &e);
    }
    if (res.kind == HPC_SUBMIT_LIST || res.kind == HPC_SUBMIT_GENERATED) {
        if (res.kind == HPC_SUBMIT_GENERATED) {
            hpc_rmtree(res.dir);
        }
        return fr_ctl_reply_error(r, FR_EINVAL, "bad_request", "args",
                                  "-list and -gf belong to `fresco qsub`; use hpc.images");
    }
    atomic_fetch_add(hpc.c_submits, 1);
    if (res.kind == HPC_SUBMIT_VM) {
        transition(res.id, res.dir, HPC_QUEUED, -1, "", true);
    }
    msgpack_packer *pk = fr_ctl_reply_packer(r);
    msgpack_pack_map(pk, 4);
    pack_s(pk, "id");
    pack_s(pk, res.id);
    pack_s(pk, "vm_job");
    if (res.kind == HPC_SUBMIT_VM) {
        msgpack_pack_true(pk);
    } else {
        msgpack_pack_false(pk);
    }
    pack_s(pk, "dir");
    pack_s(pk, res.dir);
    pack_s(pk, "files");
    msgpack_pack_uint64(pk, res.files);
    return 0;
}

static int op_status(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    (void)ctx;
    static const char *const keys[] = {"id", NULL};
    if (only_keys(args, keys, r) != 0) {
        return FR_EUNKNOWN;
    }
    const char *id;
    int rv = need_str(args, "id", &id, r);
    if (rv != 0) {
        return rv;
    }
    hpc_jobinfo ji;
    fr_error e;
    fr_error_clear(&e);
    if ((rv = hpc_backend_info(hpc.c, id, &ji, &e)) != 0) {
        return reply_err(r, rv, &e);
    }
    char dir[HPC_PATH_MAX] = "";
    pthread_mutex_lock(&hpc.mu);
    for (size_t i = 0; i < hpc.njobs; i++) {
        if (strcmp(hpc.jobs[i].id, id) == 0) {
            snprintf(dir, sizeof dir, "%s", hpc.jobs[i].dir);
        }
    }
    pthread_mutex_unlock(&hpc.mu);
    msgpack_packer *pk = fr_ctl_reply_packer(r);
    msgpack_pack_map(pk, 8);
    pack_s(pk, "id");
    pack_s(pk, id);
    pack_s(pk, "state");
    pack_s(pk, hpc_state_name(ji.state));
    pack_s(pk, "batch_state");
    pack_s(pk, ji.raw_state);
    pack_s(pk, "exit_code");
    if (ji.exit_code >= 0) {
        msgpack_pack_int(pk, ji.exit_code);
    } else {
        msgpack_pack_nil(pk);
    }
    pack_s(pk, "user");
    pack_s(pk, ji.user);
    pack_s(pk, "name");
    pack_s(pk, ji.name);
    pack_s(pk, "dir");
    pack_s(pk, dir);
    pack_s(pk, "nodes");
    msgpack_pack_array(pk, (uint32_t)ji.nnodes);
    for (size_t i = 0; i < ji.nnodes; i++) {
        pack_s(pk, ji.nodes[i]);
    }
    return 0;
}

static int op_cancel(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    (void)ctx;
    static const char *const keys[] = {"id", NULL};
    if (only_keys(args, keys, r) != 0) {
        return FR_EUNKNOWN;
    }
    const char *id;
    int rv = need_str(args, "id", &id, r);
    if (rv != 0) {
        return rv;
    }
    fr_error e;
    fr_error_clear(&e);
    /* over ipc:// a user may cancel their own jobs only */
    int64_t caller = fr_ctl_reply_peer_uid(r);
    if (caller > 0) {
        hpc_jobinfo ji;
        if ((rv = hpc_backend_info(hpc.c, id, &ji, &e)) != 0) {
            return reply_err(r, rv, &e);
        }
        if (!ji.have_ids || (int64_t)ji.uid != caller) {
            return fr_ctl_reply_error(r, FR_EINVAL, "forbidden", "caller",
                                      "uid %lld may not cancel job %s: it is another user's",
                                      (long long)caller, id);
        }
    }
    if ((rv = hpc_backend_cancel(hpc.c, id, &e)) != 0) {
        return reply_err(r, rv, &e);
    }
    msgpack_packer *pk = fr_ctl_reply_packer(r);
    msgpack_pack_map(pk, 2);
    pack_s(pk, "id");
    pack_s(pk, id);
    pack_s(pk, "cancelled");
    msgpack_pack_true(pk);
    return 0;
}

static int op_list(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    (void)ctx;
    (void)args;
    pthread_mutex_lock(&hpc.mu);
    msgpack_packer *pk = fr_ctl_reply_packer(r);
    msgpack_pack_array(pk, (uint32_t)hpc.njobs);
    for (size_t i = 0; i < hpc.njobs; i++) {
        const tracked *t = &hpc.jobs[i];
        msgpack_pack_map(pk, 4);
        pack_s(pk, "id");
        pack_s(pk, t->id);
        pack_s(pk, "dir");
        pack_s(pk, t->dir);
        pack_s(pk, "state");
        pack_s(pk, hpc_state_name(t->state));
        pack_s(pk, "exit_code");
        if (t->exit_code >= 0) {
            msgpack_pack_int(pk, t->exit_code);
        } else {
            msgpack_pack_nil(pk);
        }
    }
    pthread_mutex_unlock(&hpc.mu);
    return 0;
}

typedef struct img_ctx {
    hpc_image *v;
    size_t n;
} img_ctx;

static int img_cb(void *ctx, const hpc_image *im)
{
    img_ctx *ic = ctx;
    hpc_image *nv = realloc(ic->v, (ic->n + 1) * sizeof *nv);
    if (nv == NULL) {
        return FR_ENOMEM;
    }
    ic->v = nv;
    ic->v[ic->n++] = *im;
    return 0;
}

static int op_images(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    (void)ctx;
    (void)args;
    img_ctx ic = {0};
    fr_error e;
    fr_error_clear(&e);
    int rv = hpc_images_list(hpc.c, img_cb, &ic, &e);
    if (rv != 0) {
        free(ic.v);
        return reply_err(r, rv, &e);
    }
    msgpack_packer *pk = fr_ctl_reply_packer(r);
    msgpack_pack_array(pk, (uint32_t)ic.n);
    for (size_t i = 0; i < ic.n; i++) {
        msgpack_pack_map(pk, 4);
        pack_s(pk, "name");
        pack_s(pk, ic.v[i].name);
        pack_s(pk, "size");
        msgpack_pack_int64(pk, ic.v[i].size);
        pack_s(pk, "distro");
        pack_s(pk, ic.v[i].distro);
        pack_s(pk, "description");
        pack_s(pk, ic.v[i].description);
    }
    free(ic.v);
    return 0;
}

static int op_jobstart(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    (void)ctx;
    static const char *const keys[] = {"id", "dir", "env", NULL};
    if (only_keys(args, keys, r) != 0) {
        return FR_EUNKNOWN;
    }
    const char *id, *dir = NULL;
    int rv = need_str(args, "id", &id, r);
    if (rv != 0) {
        return rv;
    }
    if (fr_node_get(args, "dir") != NULL && (rv = need_str(args, "dir", &dir, r)) != 0) {
        return rv;
    }
    char **env;
    size_t nenv;
    if ((rv = str_array(args, "env", &env, &nenv, r)) != 0) {
        return rv;
    }
    fr_error e;
    fr_error_clear(&e);
    rv = hpc_agent_jobstart(hpc.agent, id, dir, env, fr_ctl_reply_peer_uid(r),
                            fr_ctl_reply_packer(r), &e);
    free(env);
    if (rv != 0) {
        fr_warn("hpc", "job %s: start refused: %s%s%s", id, e.where, e.where[0] ? ": " : "",
                e.message);
        return reply_err(r, rv, &e);
    }
    atomic_fetch_add(hpc.c_boots, 1);
    return 0;
}

static int op_jobend(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    (void)ctx;
    static const char *const keys[] = {"id", "exit_code", NULL};
    if (only_keys(args, keys, r) != 0) {
        return FR_EUNKNOWN;
    }
    const char *id;
    int rv = need_str(args, "id", &id, r);
    if (rv != 0) {
        return rv;
    }
    int64_t code = -1;
    if (fr_node_get(args, "exit_code") != NULL &&
        (fr_node_get_i64(args, "exit_code", &code) != 0 || code < 0 || code > 255)) {
        return fr_ctl_reply_error(r, FR_EINVAL, "bad_request", "exit_code",
                                  "\"exit_code\" must be a whole number 0..255");
    }
    fr_error e;
    fr_error_clear(&e);
    rv = hpc_agent_jobend(hpc.agent, id, (int)code, fr_ctl_reply_peer_uid(r),
                          fr_ctl_reply_packer(r), &e);
    if (rv != 0) {
        return reply_err(r, rv, &e);
    }
    atomic_fetch_add(hpc.c_teardowns, 1);
    return 0;
}

static int hpc_start(fr_service *svc, void *confp)
{
    hpc_conf *c = confp;
    fr_error e;
    fr_error_clear(&e);
    if (hpc_conf_check(c, &e) != 0) {
        fr_error("hpc", "%s: %s", e.where, e.message);
        return FR_ECONFIG;
    }
    hpc.svc = svc;
    hpc.c = c;
    hpc.started = time(NULL);
    pthread_mutex_init(&hpc.mu, NULL);
    pthread_mutex_init(&hpc.wake_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&hpc.wake, &ca);
    pthread_condattr_destroy(&ca);
    hpc.jobs = calloc(MAX_TRACKED, sizeof *hpc.jobs);
    if (hpc.jobs == NULL) {
        return FR_ENOMEM;
    }
    hpc.c_events = fr_service_counter(svc, "hpc.events");
    hpc.c_boots = fr_service_counter(svc, "hpc.jobstarts");
    hpc.c_teardowns = fr_service_counter(svc, "hpc.jobends");
    hpc.c_submits = fr_service_counter(svc, "hpc.submits");
    int rv = hpc_agent_new(&hpc.agent, c, fr_service_node(svc), on_agent, NULL, &e);
    if (rv != 0) {
        fr_error("hpc", "%s: %s", e.where, e.message);
        return rv;
    }
    /* every user makes job folders in it: sticky and world-writable, as
     * /tmp (chmod, since mkdir's mode passes through the umask) */
    if (mkdir(c->spool, 01777) == 0) {
        chmod(c->spool, 01777);
    } else if (errno != EEXIST) {
        fr_warn("hpc", "spool %s: %s", c->spool, strerror(errno));
    }
    if (pthread_create(&hpc.poller, NULL, poll_run, NULL) != 0) {
        return FR_ENOMEM;
    }
    hpc.poller_started = true;
    static const fr_ctl_op ops[] = {
        {"hpc.submit", op_submit, NULL,
         "{args: [qsub arguments]}: submit as `fresco qsub` would, as the service's user"},
        {"hpc.status", op_status, NULL, "{id}: the job as the batch system sees it"},
        {"hpc.cancel", op_cancel, NULL, "{id}: cancel the job (its epilogue tears the VMs down)"},
        {"hpc.list", op_list, NULL, "the jobs fresco submitted, with their last state"},
        {"hpc.images", op_images, NULL, "the image pool: name, size, distro, description"},
        {"hpc.jobstart", op_jobstart, NULL,
         "{id, dir?, env?}: boot the job's VMs on this node (prologue, job wrapper)"},
        {"hpc.jobend", op_jobend, NULL,
         "{id, exit_code?}: tear the job's VMs down on this node (epilogue, job wrapper)"},
    };
    return fr_service_add_ops(svc, ops, sizeof(ops) / sizeof(ops[0]));
}

static void hpc_stop(fr_service *svc, void *confp)
{
    (void)svc;
    (void)confp;
    atomic_store(&hpc.stopping, true);
    if (hpc.poller_started) {
        pthread_mutex_lock(&hpc.wake_mu);
        pthread_cond_broadcast(&hpc.wake);
        pthread_mutex_unlock(&hpc.wake_mu);
        pthread_join(hpc.poller, NULL);
        hpc.poller_started = false;
    }
    hpc_agent_destroy(hpc.agent);
    hpc.agent = NULL;
    free(hpc.jobs);
    hpc.jobs = NULL;
    hpc.njobs = 0;
}

static const fr_service_def hpc_def = {
    .name = "hpc",
    .spec = &hpc_spec,
    .conf_size = sizeof(hpc_conf),
    .start = hpc_start,
    .stop = hpc_stop,
};

int main(int argc, char **argv)
{
    return fr_service_main(&hpc_def, argc, argv);
}
