/* schedstat: the Linux scheduler's per-cpu counters from /proc/schedstat,
 * under snap's names (/intel/proc/schedstat/cpu/<n>/... and .../system/...
 * for the sum over CPUs).
 *
 * A version 15 cpu line is "cpu<N> f1 ... f9":
 *   f1 sched_yield() calls          -> schedYield
 *   f2 legacy O(1) expiry count, always 0 (skipped)
 *   f3 schedule() calls             -> scheduleCalled
 *   f4 schedule() left the cpu idle -> scheduleLeftIdle
 *   f5 try_to_wake_up() calls       -> tryToWakeUp
 *   f6 ... to wake the local cpu    -> tryToWakeUpLocalCPU
 *   f7 time tasks ran on the cpu    -> jiffiesRunning (ns despite the name)
 *   f8 time tasks waited to run     -> jiffiesWaiting (ns despite the name)
 *   f9 timeslices run               -> timeslices
 * snap's plugin (v2) did not skip f2, so each of its names from
 * scheduleCalled on carried the field before the one it names;
 * docs/plugins/schedstat.md has the table. Versions 16 and 17 changed only
 * the domain lines, so their cpu lines read the same; other versions are
 * refused, at task creation and on every tick. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fresco/plugin.h"

#define SCHED_NS_MAX      128
#define SCHED_BUF_INITIAL 16384
#define SCHED_BUF_MAX     (64u << 20)
#define SCHED_FIELDS      9 /* on a version 15 cpu line */
#define SCHED_VERSION_MIN 15
#define SCHED_VERSION_MAX 17

typedef struct schedstat_config {
    char *proc_path;
} schedstat_config;

static const fr_cfg_field schedstat_policy[] = {
    {.key = "proc_path",
     .type = FR_CFG_STRING,
     .def = "/proc",
     .offset = offsetof(schedstat_config, proc_path),
     .help = "where procfs is mounted (the host's /proc inside a container, or test fixtures)"},
};

/* The metrics in snap's order, with the cpu line field each one reads
 * (1-based, as sched-stats.rst numbers them). */
typedef struct sched_metric {
    const char *name;
    int field;
    const char *unit;
} sched_metric;

static const sched_metric sched_metrics[] = {
    {"schedYield", 1, ""},       {"scheduleCalled", 3, ""},      {"scheduleLeftIdle", 4, ""},
    {"tryToWakeUp", 5, ""},      {"tryToWakeUpLocalCPU", 6, ""}, {"jiffiesRunning", 7, "ns"},
    {"jiffiesWaiting", 8, "ns"}, {"timeslices", 9, ""},
};
#define SCHED_NMETRICS (sizeof(sched_metrics) / sizeof(sched_metrics[0]))

static const fr_dyn_info dyn_cpu[] = {{"n", "CPU number as in /proc/schedstat (0, 1, ...)"}};

#define D_YIELD      "sched_yield() calls"
#define D_CALLED     "schedule() calls"
#define D_IDLE       "times schedule() left the cpu idle"
#define D_TTWU       "try_to_wake_up() calls"
#define D_TTWU_LOCAL "try_to_wake_up() calls that woke the local cpu"
#define D_RUNNING    "time tasks spent running (nanoseconds on every kernel since 2.6.23)"
#define D_WAITING    "time tasks spent waiting to run (nanoseconds since 2.6.23)"
#define D_SLICES     "timeslices run"
#define CPU_M(n, u, d)                                                                             \
    {                                                                                              \
        .ns = "/intel/proc/schedstat/cpu/*/" n, .type = FR_VAL_UINT64, .unit = u,                  \
        .description = "on this cpu: " d, .dyn = dyn_cpu, .ndyn = 1                                \
    }
#define SYS_M(n, u, d)                                                                             \
    {                                                                                              \
        .ns = "/intel/proc/schedstat/system/" n, .type = FR_VAL_UINT64, .unit = u,                 \
        .description = "summed over CPUs: " d                                                      \
    }

static const fr_metric_info schedstat_catalog[] = {
    CPU_M("schedYield", "", D_YIELD),
    CPU_M("scheduleCalled", "", D_CALLED),
    CPU_M("scheduleLeftIdle", "", D_IDLE),
    CPU_M("tryToWakeUp", "", D_TTWU),
    CPU_M("tryToWakeUpLocalCPU", "", D_TTWU_LOCAL),
    CPU_M("jiffiesRunning", "ns", D_RUNNING),
    CPU_M("jiffiesWaiting", "ns", D_WAITING),
    CPU_M("timeslices", "", D_SLICES),
    SYS_M("schedYield", "", D_YIELD),
    SYS_M("scheduleCalled", "", D_CALLED),
    SYS_M("scheduleLeftIdle", "", D_IDLE),
    SYS_M("tryToWakeUp", "", D_TTWU),
    SYS_M("tryToWakeUpLocalCPU", "", D_TTWU_LOCAL),
    SYS_M("jiffiesRunning", "ns", D_RUNNING),
    SYS_M("jiffiesWaiting", "ns", D_WAITING),
    SYS_M("timeslices", "", D_SLICES),
};

typedef struct schedstat {
    char *path;
    int fd; /* kept open between ticks; -1 when closed */
    char *buf;
    size_t cap;
} schedstat;

/* ---- reading ---------------------------------------------------------- */

/* Reads the whole file from offset 0 on a descriptor kept open (procfs
 * regenerates it on such a read) into st->buf. 0 or a negative code with
 * err filled. */
static int sched_read(schedstat *st, fr_error *err)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (st->fd < 0) {
            st->fd = open(st->path, O_RDONLY | O_CLOEXEC);
            if (st->fd < 0) {
                int e = errno;
                return fr_error_set(err, e == ENOENT ? FR_ENOTFOUND : FR_EIO, st->path,
                                    "schedstat: cannot open %s: %s%s", st->path, strerror(e),
                                    e == ENOENT ? " (kernel built without CONFIG_SCHEDSTATS?)"
                                                : "");
            }
        }
        size_t n = 0;
        int e = 0;
        for (;;) {
            if (st->cap - n < 2) {
                size_t cap = st->cap != 0 ? st->cap * 2 : SCHED_BUF_INITIAL;
                char *p = cap <= SCHED_BUF_MAX ? realloc(st->buf, cap) : NULL;
                if (p == NULL) {
                    return fr_error_set(err, FR_ENOMEM, st->path, "schedstat: out of memory");
                }
                st->buf = p;
                st->cap = cap;
            }
            ssize_t r = pread(st->fd, st->buf + n, st->cap - 1 - n, (off_t)n);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                e = r < 0 ? errno : 0;
                break;
            }
            n += (size_t)r;
        }
        if (e == 0) {
            st->buf[n] = '\0';
            return 0;
        }
        close(st->fd);
        st->fd = -1;
        if (attempt == 1) {
            return fr_error_set(err, FR_EIO, st->path, "schedstat: cannot read %s: %s", st->path,
                                strerror(e));
        }
    }
    return FR_EIO;
}

static char *line_next(char **cur)
{
    char *s = *cur;
    if (*s == '\0') {
        return NULL;
    }
    char *nl = strchr(s, '\n');
    if (nl != NULL) {
        *nl = '\0';
        *cur = nl + 1;
    } else {
        *cur = s + strlen(s);
    }
    return s;
}

/* An unsigned decimal after optional blanks, ending at a blank or the end
 * of the line; false when absent, malformed or over 64 bits. */
static bool take_u64(const char **pp, uint64_t *out)
{
    const char *p = *pp;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (*p < '0' || *p > '9') {
        return false;
    }
    uint64_t v = 0;
    do {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
        p++;
    } while (*p >= '0' && *p <= '9');
    if (*p != '\0' && *p != ' ' && *p != '\t') {
        return false;
    }
    *pp = p;
    *out = v;
    return true;
}

/* Checks the first line, "version N", and returns the text after it. */
static char *sched_version(schedstat *st, fr_error *err, int *rv)
{
    char *cur = st->buf;
    char *line = line_next(&cur);
    const char *p = line != NULL && strncmp(line, "version ", 8) == 0 ? line + 8 : NULL;
    uint64_t version;
    if (p == NULL || !take_u64(&p, &version) || *p != '\0') {
        char where[160];
        snprintf(where, sizeof(where), "%s:1", st->path);
        *rv = fr_error_set(err, FR_EPROTO, where,
                           "schedstat: %s does not start with 'version N': '%.40s'", st->path,
                           line != NULL ? line : "");
        return NULL;
    }
    if (version < SCHED_VERSION_MIN || version > SCHED_VERSION_MAX) {
        *rv = fr_error_set(err, FR_EUNSUPPORTED, st->path,
                           "schedstat: %s is version %llu; this plugin reads versions %d to %d "
                           "(their cpu lines share one layout)",
                           st->path, (unsigned long long)version, SCHED_VERSION_MIN,
                           SCHED_VERSION_MAX);
        return NULL;
    }
    *rv = 0;
    return cur;
}

/* ---- emitting --------------------------------------------------------- */

typedef struct emit {
    const fr_collect_req *req;
    fr_error *err;
    int rv;
    char ns[SCHED_NS_MAX];
    size_t len;
} emit;

static void put(emit *e, const sched_metric *m, uint64_t v)
{
    size_t n = strlen(m->name);
    if (e->rv != 0 || e->len + 1 + n >= sizeof(e->ns)) {
        return;
    }
    e->ns[e->len] = '/';
    memcpy(e->ns + e->len + 1, m->name, n + 1);
    if (fr_ns_query_match(e->req->query, e->ns) &&
        fr_batch_add(e->req->out, e->ns, e->req->now_ns, fr_val_u64(v), m->unit) == NULL) {
        e->rv = fr_error_set(e->err, FR_ENOMEM, NULL, "schedstat: out of memory");
    }
    e->ns[e->len] = '\0';
}

static void put_all(emit *e, const char *prefix, const uint64_t *f)
{
    e->len = (size_t)snprintf(e->ns, sizeof(e->ns), "%s", prefix);
    if (e->len >= sizeof(e->ns) || !fr_ns_query_wants_prefix(e->req->query, e->ns)) {
        return;
    }
    for (size_t i = 0; i < SCHED_NMETRICS; i++) {
        put(e, &sched_metrics[i], f[sched_metrics[i].field - 1]);
    }
}

/* ---- the plugin ------------------------------------------------------- */

static void schedstat_destroy(void *state)
{
    schedstat *st = state;
    if (st == NULL) {
        return;
    }
    if (st->fd >= 0) {
        close(st->fd);
    }
    free(st->path);
    free(st->buf);
    free(st);
}

static int schedstat_init(void **state, const void *config, fr_error *err)
{
    const schedstat_config *cfg = config;
    *state = NULL;
    if (cfg == NULL || cfg->proc_path == NULL || cfg->proc_path[0] == '\0') {
        return fr_error_set(err, FR_ECONFIG, "proc_path", "schedstat: proc_path is empty");
    }
    schedstat *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "schedstat: out of memory");
    }
    st->fd = -1;
    size_t n = strlen(cfg->proc_path) + sizeof("/schedstat");
    st->path = malloc(n);
    if (st->path == NULL) {
        schedstat_destroy(st);
        return fr_error_set(err, FR_ENOMEM, NULL, "schedstat: out of memory");
    }
    snprintf(st->path, n, "%s/schedstat", cfg->proc_path);
    /* A missing file or a version we cannot read refuses the task when it
     * is created rather than failing every tick. */
    int rv = sched_read(st, err);
    if (rv == 0) {
        sched_version(st, err, &rv);
    }
    if (rv != 0) {
        if (err != NULL) {
            snprintf(err->where, sizeof(err->where), "proc_path");
        }
        schedstat_destroy(st);
        return rv;
    }
    *state = st;
    return 0;
}

static int schedstat_collect(void *state, const fr_collect_req *req, fr_error *err)
{
    schedstat *st = state;
    fr_error_clear(err);
    if (!fr_ns_query_wants_prefix(req->query, "/intel/proc/schedstat")) {
        return 0;
    }
    int rv = sched_read(st, err);
    if (rv != 0) {
        return rv;
    }
    char *cur = sched_version(st, err, &rv);
    if (cur == NULL) {
        return rv;
    }
    emit e = {.req = req, .err = err};
    uint64_t sum[SCHED_FIELDS] = {0};
    unsigned lineno = 1, ncpu = 0;
    int bad = 0;
    char *line;
    while ((line = line_next(&cur)) != NULL && e.rv == 0) {
        lineno++;
        if (strncmp(line, "cpu", 3) != 0) {
            continue; /* timestamp and domain lines */
        }
        const char *p = line + 3;
        const char *id = p;
        while (*p >= '0' && *p <= '9') {
            p++;
        }
        size_t idlen = (size_t)(p - id);
        uint64_t f[SCHED_FIELDS];
        int nf = 0;
        while (nf < SCHED_FIELDS && take_u64(&p, &f[nf])) {
            nf++;
        }
        if (idlen == 0 || (*p != ' ' && *p != '\t' && *p != '\0') || nf < SCHED_FIELDS) {
            if (bad == 0) {
                char where[160];
                snprintf(where, sizeof(where), "%s:%u", st->path, lineno);
                bad = fr_error_set(err, FR_EPROTO, where,
                                   "schedstat: %s line %u is not a version 15 cpu line: '%.60s'",
                                   st->path, lineno, line);
            }
            continue;
        }
        for (int i = 0; i < SCHED_FIELDS; i++) {
            sum[i] += f[i];
        }
        ncpu++;
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "/intel/proc/schedstat/cpu/%.*s", (int)idlen, id);
        put_all(&e, prefix, f);
    }
    /* A sum that silently left out a cpu would mislead: none then. */
    if (ncpu > 0 && e.rv == 0 && bad == 0) {
        put_all(&e, "/intel/proc/schedstat/system", sum);
    }
    return e.rv != 0 ? e.rv : bad;
}

const fr_collector_plugin fr_collector_schedstat = {
    .abi = FR_PLUGIN_ABI,
    .name = "schedstat",
    .version = 1,
    .description = "the scheduler's per-cpu counters from /proc/schedstat (versions 15 to 17)",
    .ns_prefix = "/intel/proc/schedstat",
    .catalog = schedstat_catalog,
    .ncatalog = sizeof(schedstat_catalog) / sizeof(schedstat_catalog[0]),
    .policy = schedstat_policy,
    .npolicy = sizeof(schedstat_policy) / sizeof(schedstat_policy[0]),
    .config_size = sizeof(schedstat_config),
    .init = schedstat_init,
    .collect = schedstat_collect,
    .destroy = schedstat_destroy,
};
