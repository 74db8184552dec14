/* A sink fed from the spool by its own thread: see delivery.h. */
#include "delivery.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "builtin.h"
#include "fresco/clock.h"
#include "fresco/log.h"
#include "fresco/path.h"

/* Batches in one write, at most (whatever their size). */
#define GROUP_MAX_BATCHES 256

typedef enum delivery_state {
    DELIVERY_IDLE,     /* caught up */
    DELIVERY_WRITING,  /* a group is with the sink */
    DELIVERY_RETRYING, /* the sink failed: waiting to try again */
} delivery_state;

static const char *const state_names[] = {"idle", "writing", "retrying"};

struct delivery {
    const fr_sink_plugin *p;
    void *config;
    void *state;
    bool inited;
    fr_sink_info info;
    char *id, *task, *task_name, *path, *route, *sink_dir;
    char *match; /* "\x1f<task>\x1f<route>": the end of the records' keys */
    size_t match_len;
    char reader_name[224];
    delivery_opts o;
    spool_reader *reader;
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t mu; /* everything below, and the cv */
    pthread_cond_t cv;
    bool stop;
    bool retire, drop;
    uint64_t retire_at; /* spool head when retired */
    bool finished;
    delivery_state st;
    uint64_t confirmed; /* position confirmed in the spool */
    uint64_t batches, metrics, writes, retries, rejected;
    char last_error[448];
    int64_t last_error_ns;
};

/* ---- naming ---- */

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s != '\0'; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* A spool reader name from the sink id: the path made file-safe when it
 * fits, else the task and a hash of the path. */
static void reader_name(char *out, size_t cap, const char *task, const char *path)
{
    char safe[200];
    size_t n = 0;
    for (const char *c = path; *c != '\0' && n + 1 < sizeof(safe); c++) {
        char ch = *c;
        safe[n++] = (ch == '[' || ch == ']') ? '_' : ch;
    }
    safe[n] = '\0';
    if (strlen(task) + 1 + n < 200 && n + 1 < sizeof(safe)) {
        snprintf(out, cap, "%s.%s", task, safe);
    } else {
        snprintf(out, cap, "%s.%016llx", task, (unsigned long long)fnv1a(path));
    }
}

/* ---- build and destroy ---- */

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

void delivery_destroy(delivery *d)
{
    if (d == NULL) {
        return;
    }
    if (d->thread_started) {
        pthread_mutex_lock(&d->mu);
        d->stop = true;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        if (d->reader != NULL) {
            spool_reader_wake(d->reader);
        }
        pthread_join(d->thread, NULL);
    }
    if (d->reader != NULL) {
        spool_reader_close(d->reader);
    }
    if (d->finished && d->retire) {
        spool_reader_remove(d->o.sp, d->reader_name);
    }
    if (d->inited) {
        d->p->destroy(d->state);
    }
    if (d->p != NULL) {
        fr_node_config_free(&d->p->config, d->config);
    }
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d->id);
    free(d->task);
    free(d->task_name);
    free(d->path);
    free(d->route);
    free(d->sink_dir);
    free(d->match);
    free(d);
}

static const char *sink_name(size_t i)
{
    return fr_builtin_sinks[i]->name;
}

int delivery_build(const fr_mf_node *node, const char *task, const char *task_name,
                   const char *path, const char *route, const delivery_opts *o, delivery **out,
                   fr_error *err)
{
    *out = NULL;
    fr_error_clear(err);
    char full[544];
    snprintf(full, sizeof(full), "workflow.collect.%s", path);
    const fr_sink_plugin *p = fr_sink_find(node->plugin_name);
    if (p == NULL) {
        char names[256];
        fr_names_join(names, sizeof(names), fr_builtin_nsinks, sink_name);
        return fr_error_set(err, FR_ENOTFOUND, full,
                            "no publisher plugin '%s' here (this publisher has: %s)",
                            node->plugin_name, names);
    }
    if (node->plugin_version != 0 && (uint32_t)node->plugin_version != p->version) {
        return fr_error_set(err, FR_EUNSUPPORTED, full,
                            "publisher plugin '%s' is version %u here, the task asks for %lld",
                            p->name, p->version, (long long)node->plugin_version);
    }
    delivery *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return fr_error_set(err, FR_ENOMEM, full, "out of memory");
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    d->p = p;
    d->o = *o;
    char id[600], match[600];
    snprintf(id, sizeof(id), "%s/%s", task, path);
    snprintf(match, sizeof(match), "\x1f%s\x1f%s", task, route);
    reader_name(d->reader_name, sizeof(d->reader_name), task, path);
    d->id = strdup(id);
    d->task = strdup(task);
    d->task_name = strdup(task_name != NULL && task_name[0] != '\0' ? task_name : task);
    d->path = strdup(path);
    d->route = strdup(route);
    d->match = strdup(match);
    d->match_len = strlen(match);
    if (o->state_dir != NULL) {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/sinks/%s", o->state_dir, d->reader_name);
        d->sink_dir = dup_or_null(dir);
        if (d->sink_dir != NULL && fr_mkdirs(d->sink_dir) != 0) {
            int e = errno;
            delivery_destroy(d);
            return fr_error_set(err, FR_EIO, full, "cannot create %s: %s", dir, strerror(e));
        }
    }
    if (d->id == NULL || d->task == NULL || d->task_name == NULL || d->path == NULL ||
        d->route == NULL || d->match == NULL || (o->state_dir != NULL && d->sink_dir == NULL)) {
        delivery_destroy(d);
        return fr_error_set(err, FR_ENOMEM, full, "out of memory");
    }
    d->info = (fr_sink_info){
        .id = d->id,
        .task = d->task,
        .task_name = d->task_name,
        .path = d->path,
        .state_dir = d->sink_dir,
    };
    int rv = fr_node_config_load(&p->config, p->name, &node->config, full, &d->config, err);
    if (rv == 0) {
        fr_error_clear(err);
        rv = p->init(&d->state, d->config, &d->info, err);
        if (rv != 0) {
            if (err->code == 0) {
                err->code = rv;
            }
            fr_node_error_locate(err, p->name, full);
        } else {
            d->inited = true;
        }
    }
    if (rv != 0) {
        delivery_destroy(d);
        return rv;
    }
    *out = d;
    return 0;
}

/* ---- the thread ---- */

typedef struct group {
    fr_batch *b[GROUP_MAX_BATCHES];
    uint64_t end[GROUP_MAX_BATCHES]; /* spool position after each batch */
    size_t n;
    uint64_t metrics;
} group;

static void group_clear(group *g)
{
    for (size_t i = 0; i < g->n; i++) {
        fr_batch_destroy(g->b[i]);
    }
    g->n = 0;
    g->metrics = 0;
}

static bool stopping(delivery *d)
{
    pthread_mutex_lock(&d->mu);
    bool s = d->stop || (d->retire && d->drop);
    pthread_mutex_unlock(&d->mu);
    return s;
}

/* Sleeps ms unless told to stop. */
static void nap(delivery *d, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&d->mu);
    while (!d->stop && !(d->retire && d->drop)) {
        if (pthread_cond_timedwait(&d->cv, &d->mu, &until) != 0) {
            break;
        }
    }
    pthread_mutex_unlock(&d->mu);
}

static void confirm(delivery *d, uint64_t pos)
{
    spool_confirm(d->reader, pos);
    pthread_mutex_lock(&d->mu);
    d->confirmed = pos;
    pthread_mutex_unlock(&d->mu);
}

static void set_state(delivery *d, delivery_state st)
{
    pthread_mutex_lock(&d->mu);
    d->st = st;
    pthread_mutex_unlock(&d->mu);
}

static bool key_matches(const delivery *d, const char *key)
{
    size_t kl = strlen(key);
    return kl >= d->match_len && memcmp(key + kl - d->match_len, d->match, d->match_len) == 0;
}

/* Reads what is there for this sink, up to a group: waits for the first
 * record up to wait_ms, takes the rest only if already there. Records of
 * other sinks are stepped over (and confirmed when nothing of ours is
 * pending). Returns 0 or FR_ECLOSED. */
static int group_fill(delivery *d, group *g, int wait_ms)
{
    int timeout = wait_ms;
    while (g->n < GROUP_MAX_BATCHES && g->metrics < (uint64_t)d->o.group_metrics) {
        spool_record rec;
        int rv = spool_read(d->reader, &rec, timeout);
        if (rv == FR_ETIMEDOUT) {
            return 0;
        }
        if (rv != 0) {
            return rv == FR_ECLOSED ? FR_ECLOSED : 0;
        }
        timeout = 0;
        if (!key_matches(d, rec.key)) {
            if (g->n == 0) {
                confirm(d, rec.end);
            }
            continue;
        }
        fr_batch *b = NULL;
        fr_error err;
        if (fr_batch_decode(rec.data, rec.len, &b, &err) != 0) {
            /* The spool's checksums passed, so this is not damage on the
             * disk: a batch that was accepted should always decode. */
            fr_error("deliver", "%s: spool record at %llu does not decode (%s: %s), skipped", d->id,
                     (unsigned long long)rec.pos, err.where, err.message);
            pthread_mutex_lock(&d->mu);
            d->rejected++;
            pthread_mutex_unlock(&d->mu);
            if (g->n == 0) {
                confirm(d, rec.end);
            }
            continue;
        }
        g->b[g->n] = b;
        g->end[g->n] = rec.end;
        g->n++;
        g->metrics += b->nmetrics;
    }
    return 0;
}

/* Keeps a batch no sink can take, as the batch's own bytes, in
 * rejected/<sink reader name>.<stream hash>.<seq>.batch. */
static void reject_batch(delivery *d, const fr_batch *b, const fr_error *why)
{
    char key[1024];
    fr_batch_stream(b, key, sizeof(key));
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.%016llx.%llu.batch", d->o.rejected_dir, d->reader_name,
             (unsigned long long)fnv1a(key), (unsigned long long)b->seq);
    fr_buf wire = FR_BUF_INIT;
    int fd = -1;
    bool saved = fr_batch_encode(b, &wire) == 0 &&
                 (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) >= 0 &&
                 write(fd, wire.data, wire.len) == (ssize_t)wire.len;
    if (fd >= 0) {
        saved = close(fd) == 0 && saved;
    }
    fr_buf_free(&wire);
    fr_error("deliver", "%s: the sink refuses batch %llu of %s for good (%s%s%s); %s %s", d->id,
             (unsigned long long)b->seq, b->source, why->where, why->where[0] ? ": " : "",
             why->message, saved ? "kept in" : "and it could not be kept in", path);
    pthread_mutex_lock(&d->mu);
    d->rejected++;
    pthread_mutex_unlock(&d->mu);
}

static void note_error(delivery *d, int rv, const fr_error *err, bool first)
{
    pthread_mutex_lock(&d->mu);
    snprintf(d->last_error, sizeof(d->last_error), "%s%s%s", err->where, err->where[0] ? ": " : "",
             err->message[0] ? err->message : fr_strerror(rv));
    d->last_error_ns = fr_now_ns();
    d->retries++;
    pthread_mutex_unlock(&d->mu);
    if (first) {
        fr_warn("deliver", "%s (%s): cannot write, will retry: %s", d->id, d->p->name,
                d->last_error);
    }
}

/* Writes batches [from, from+n) of g until the sink takes them, refuses
 * them for good, or the delivery stops. Returns 0 (taken), FR_EINVAL-ish
 * (refused: the caller isolates), FR_ECLOSED (stopping). */
static int write_until_done(delivery *d, group *g, size_t from, size_t n)
{
    int64_t backoff = d->o.backoff_min_ms;
    bool failed = false;
    for (;;) {
        if (stopping(d)) {
            return FR_ECLOSED;
        }
        fr_error err;
        fr_error_clear(&err);
        set_state(d, DELIVERY_WRITING);
        int rv = d->p->write(d->state, &g->b[from], n, &err);
        pthread_mutex_lock(&d->mu);
        d->writes++;
        pthread_mutex_unlock(&d->mu);
        if (rv == 0) {
            if (failed) {
                fr_info("deliver", "%s (%s): writing again", d->id, d->p->name);
            }
            return 0;
        }
        if (!fr_sink_retryable(rv)) {
            if (n == 1) {
                reject_batch(d, g->b[from], &err);
            }
            return rv;
        }
        note_error(d, rv, &err, !failed);
        failed = true;
        set_state(d, DELIVERY_RETRYING);
        nap(d, backoff);
        backoff = backoff * 2 > d->o.backoff_max_ms ? d->o.backoff_max_ms : backoff * 2;
    }
}

static void delivered(delivery *d, group *g, size_t from, size_t n)
{
    uint64_t metrics = 0;
    for (size_t i = from; i < from + n; i++) {
        metrics += g->b[i]->nmetrics;
    }
    confirm(d, g->end[from + n - 1]);
    pthread_mutex_lock(&d->mu);
    d->batches += n;
    d->metrics += metrics;
    pthread_mutex_unlock(&d->mu);
}

/* True (and finished set) when a retiring delivery has caught up: called
 * between groups, when everything read is confirmed. */
static bool retire_done(delivery *d)
{
    uint64_t read = spool_reader_position(d->reader);
    pthread_mutex_lock(&d->mu);
    bool done = d->retire && (d->drop || read >= d->retire_at);
    if (done) {
        d->finished = true;
    }
    pthread_mutex_unlock(&d->mu);
    return done;
}

static void *delivery_run(void *arg)
{
    delivery *d = arg;
    group g = {.n = 0};
    while (!stopping(d) && !retire_done(d)) {
        set_state(d, DELIVERY_IDLE);
        if (group_fill(d, &g, 500) == FR_ECLOSED && g.n == 0) {
            continue;
        }
        if (g.n == 0) {
            continue;
        }
        int rv = write_until_done(d, &g, 0, g.n);
        if (rv == 0) {
            delivered(d, &g, 0, g.n);
        } else if (rv != FR_ECLOSED) {
            /* One of them can never go: one at a time finds it. */
            for (size_t i = 0; i < g.n; i++) {
                int one = write_until_done(d, &g, i, 1);
                if (one == FR_ECLOSED) {
                    break;
                }
                /* taken, or refused and kept aside: done with either way */
                if (one == 0) {
                    delivered(d, &g, i, 1);
                } else {
                    confirm(d, g.end[i]);
                }
            }
        }
        group_clear(&g);
        if (rv == FR_ECLOSED) {
            /* Not confirmed: read again after a restart. */
            spool_reader_rewind(d->reader);
        }
    }
    group_clear(&g);
    set_state(d, DELIVERY_IDLE);
    return NULL;
}

int delivery_start(delivery *d, fr_error *err)
{
    int rv = spool_reader_open(d->o.sp, d->reader_name, &d->reader, err);
    if (rv != 0) {
        return rv;
    }
    d->confirmed = spool_reader_position(d->reader);
    if (pthread_create(&d->thread, NULL, delivery_run, d) != 0) {
        spool_reader_close(d->reader);
        d->reader = NULL;
        return fr_error_set(err, FR_ENOMEM, d->id, "cannot start a delivery thread");
    }
    d->thread_started = true;
    return 0;
}

void delivery_retire(delivery *d, bool drop)
{
    spool_stats st;
    spool_stats_get(d->o.sp, &st);
    pthread_mutex_lock(&d->mu);
    d->retire = true;
    d->drop = drop;
    d->retire_at = st.head;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    if (drop && d->reader != NULL) {
        spool_reader_wake(d->reader);
    }
}

bool delivery_finished(delivery *d)
{
    pthread_mutex_lock(&d->mu);
    bool f = d->finished;
    pthread_mutex_unlock(&d->mu);
    return f;
}

const char *delivery_id(const delivery *d)
{
    return d->id;
}

const char *delivery_route(const delivery *d)
{
    return d->route;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void delivery_pack(delivery *d, msgpack_packer *pk)
{
    spool_stats st;
    spool_stats_get(d->o.sp, &st);
    pthread_mutex_lock(&d->mu);
    bool stats = d->p->stats != NULL && d->st != DELIVERY_WRITING;
    msgpack_pack_map(pk, stats ? 12 : 11);
    pack_str(pk, "id");
    pack_str(pk, d->id);
    pack_str(pk, "plugin");
    pack_str(pk, d->p->name);
    pack_str(pk, "path");
    pack_str(pk, d->path);
    pack_str(pk, "state");
    pack_str(pk, d->retire ? "retiring" : state_names[d->st]);
    pack_str(pk, "batches");
    msgpack_pack_uint64(pk, d->batches);
    pack_str(pk, "metrics");
    msgpack_pack_uint64(pk, d->metrics);
    pack_str(pk, "writes");
    msgpack_pack_uint64(pk, d->writes);
    pack_str(pk, "retries");
    msgpack_pack_uint64(pk, d->retries);
    pack_str(pk, "rejected");
    msgpack_pack_uint64(pk, d->rejected);
    pack_str(pk, "backlog_bytes");
    msgpack_pack_uint64(pk, st.head > d->confirmed ? st.head - d->confirmed : 0);
    pack_str(pk, "last_error");
    pack_str(pk, d->last_error);
    if (stats) {
        pack_str(pk, "stats");
        d->p->stats(d->state, pk);
    }
    pthread_mutex_unlock(&d->mu);
}
