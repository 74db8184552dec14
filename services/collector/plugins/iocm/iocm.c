/* iocm: I/O cores of an IOcm-enabled kernel (MIKELANGELO's vhost I/O core
 * manager), from its sysfs class directory (/sys/class/vhost by default):
 *   nr_iocores            one integer: the I/O cores active now
 *   iocores_utilization   one line per I/O core: "<name> <work cycles> <total cycles>",
 *                         both counters growing since boot
 * Utilisation is the share of cycles a core spent working between two
 * ticks: 100 * d(work) / d(total). The aggregate "cpu" is the sum over the
 * cores (0..100 per core), as snap's iocore plugin reported it, unless the
 * kernel lists a "cpu" line of its own. Namespaces are snap's:
 * /ibm/sysfs/iocore/nr_iocores and /ibm/sysfs/iocore/<iocore>/cpu_utilization. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/plugin.h"

#define IO_PREFIX    "/ibm/sysfs/iocore"
#define IO_NAME_MAX  64
#define IO_MAX_CORES 1024

typedef struct io_config {
    char *sys_path;
    char *vhost_path;
} io_config;

static const fr_cfg_field io_policy[] = {
    {"sys_path", FR_CFG_STRING, "/sys/class/vhost", offsetof(io_config, sys_path),
     "IOcm's sysfs directory (holds nr_iocores and iocores_utilization)", 0, 0, NULL},
    {"vhost_path", FR_CFG_STRING, NULL, offsetof(io_config, vhost_path),
     "snap's name for sys_path, accepted so snap manifests load; overrides sys_path", 0, 0, NULL},
};

static const fr_dyn_info io_dyn_core[] = {
    {"iocore", "I/O core: cpu1, cpu2, ... as the kernel names them, or cpu for the aggregate"},
};

static const fr_metric_info io_catalog[] = {
    {IO_PREFIX "/nr_iocores", FR_VAL_DOUBLE, "", "number of active I/O cores", NULL, 0},
    {IO_PREFIX "/*/cpu_utilization", FR_VAL_DOUBLE, "percent",
     "share of cycles the I/O core spent on work since the previous tick; for cpu the sum "
     "over the cores",
     io_dyn_core, 1},
};

typedef struct io_core {
    char name[IO_NAME_MAX];
    uint64_t work, total;
} io_core;

typedef struct io_state {
    char *nr_path;
    char *util_path;
    io_core *prev, *cur;
    size_t nprev, ncur;
    bool have_prev;
} io_state;

static bool io_wants(const fr_ns_query *q, const char *pattern)
{
    for (size_t i = 0; i < fr_ns_query_count(q); i++) {
        if (fr_ns_query_covers_pattern(q, i, pattern)) {
            return true;
        }
    }
    return false;
}

static int io_read_nr(io_state *st, double *out, fr_error *err)
{
    FILE *f = fopen(st->nr_path, "re");
    if (f == NULL) {
        int e = errno;
        return fr_error_set(err, e == ENOENT ? FR_ENOTFOUND : FR_EIO, st->nr_path, "%s: %s",
                            st->nr_path, strerror(e));
    }
    char line[64] = "";
    bool got = fgets(line, sizeof(line), f) != NULL;
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    char *end;
    errno = 0;
    long long n = got ? strtoll(line, &end, 10) : 0;
    if (!got || end == line || errno != 0 || n < 0 || end[strspn(end, " \t")] != '\0') {
        char where[160];
        snprintf(where, sizeof(where), "%s:1", st->nr_path);
        return fr_error_set(err, FR_EINVAL, where, "%s: not a count of I/O cores: '%.32s'", where,
                            line);
    }
    *out = (double)n;
    return 0;
}

/* Parses a decimal counter after optional blanks; advances *p. */
static bool io_parse_u64(const char **p, uint64_t *out)
{
    const char *s = *p + strspn(*p, " \t");
    if (!isdigit((unsigned char)*s)) {
        return false;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || (*end != '\0' && *end != ' ' && *end != '\t')) {
        return false;
    }
    *out = v;
    *p = end;
    return true;
}

/* Copies a core name for use as a namespace element: characters that
 * would split or pattern a namespace become '_'. */
static void io_name_copy(char *dst, const char *src, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        dst[i] = (c == '/' || c == '*' || c == '(' || c == ')' || c == ';') ? '_' : c;
    }
    dst[len] = '\0';
}

static const io_core *io_find(const io_core *v, size_t n, const char *name);

/* Reads iocores_utilization into st->cur. */
static int io_read_cores(io_state *st, fr_error *err)
{
    FILE *f = fopen(st->util_path, "re");
    if (f == NULL) {
        int e = errno;
        return fr_error_set(err, e == ENOENT ? FR_ENOTFOUND : FR_EIO, st->util_path, "%s: %s",
                            st->util_path, strerror(e));
    }
    char line[512];
    unsigned lineno = 0;
    int rv = 0;
    st->ncur = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        char where[160];
        lineno++;
        snprintf(where, sizeof(where), "%s:%u", st->util_path, lineno);
        line[strcspn(line, "\r\n")] = '\0';
        const char *p = line + strspn(line, " \t");
        if (*p == '\0') {
            continue;
        }
        size_t nlen = strcspn(p, " \t");
        const char *name = p;
        p += nlen;
        uint64_t work, total;
        if (nlen >= IO_NAME_MAX || !io_parse_u64(&p, &work) || !io_parse_u64(&p, &total) ||
            p[strspn(p, " \t")] != '\0') {
            rv = fr_error_set(err, FR_EINVAL, where,
                              "%s: expected '<iocore> <work cycles> <total cycles>': '%.60s'",
                              where, line);
            break;
        }
        if (st->ncur == IO_MAX_CORES) {
            rv = fr_error_set(err, FR_ETOOBIG, where, "%s: more than %d I/O cores", where,
                              IO_MAX_CORES);
            break;
        }
        io_core *c = &st->cur[st->ncur];
        io_name_copy(c->name, name, nlen);
        if (io_find(st->cur, st->ncur, c->name) != NULL) {
            rv =
                fr_error_set(err, FR_EINVAL, where, "%s: I/O core %s listed twice", where, c->name);
            break;
        }
        c->work = work;
        c->total = total;
        st->ncur++;
    }
    fclose(f);
    return rv;
}

static const io_core *io_find(const io_core *v, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, name) == 0) {
            return &v[i];
        }
    }
    return NULL;
}

/* Utilisation of c since p; false when there is no meaningful delta (no
 * cycles passed, or the counters went back: the module was reloaded). */
static bool io_util(const io_core *p, const io_core *c, double *out)
{
    if (c->total <= p->total || c->work < p->work) {
        return false;
    }
    double u = 100.0 * (double)(c->work - p->work) / (double)(c->total - p->total);
    *out = u < 0 ? 0 : (u > 100 ? 100 : u);
    return true;
}

static int io_emit(const fr_collect_req *req, const char *core, double v, fr_error *err)
{
    char ns[IO_NAME_MAX + 64];
    snprintf(ns, sizeof(ns), IO_PREFIX "/%s/cpu_utilization", core);
    if (!fr_ns_query_match(req->query, ns)) {
        return 0;
    }
    if (fr_batch_add(req->out, ns, req->now_ns, fr_val_f64(v), "percent") == NULL) {
        return fr_error_set(err, FR_ENOMEM, ns, "iocm: out of memory");
    }
    return 0;
}

static char *io_join(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *s = malloc(n);
    if (s != NULL) {
        snprintf(s, n, "%s/%s", dir, file);
    }
    return s;
}

static void io_destroy(void *state)
{
    io_state *st = state;
    if (st == NULL) {
        return;
    }
    free(st->nr_path);
    free(st->util_path);
    free(st->prev);
    free(st->cur);
    free(st);
}

static int io_init(void **state, const void *config, fr_error *err)
{
    const io_config *cfg = config;
    *state = NULL;
    const char *dir =
        cfg->vhost_path != NULL && cfg->vhost_path[0] != '\0' ? cfg->vhost_path : cfg->sys_path;
    if (dir == NULL || dir[0] == '\0') {
        return fr_error_set(err, FR_ECONFIG, "sys_path", "iocm: sys_path is empty");
    }
    io_state *st = calloc(1, sizeof(*st));
    if (st == NULL || (st->prev = calloc(IO_MAX_CORES, sizeof(io_core))) == NULL ||
        (st->cur = calloc(IO_MAX_CORES, sizeof(io_core))) == NULL ||
        (st->nr_path = io_join(dir, "nr_iocores")) == NULL ||
        (st->util_path = io_join(dir, "iocores_utilization")) == NULL) {
        io_destroy(st);
        return fr_error_set(err, FR_ENOMEM, "", "iocm: out of memory");
    }
    *state = st;
    return 0;
}

static int io_collect(void *state, const fr_collect_req *req, fr_error *err)
{
    io_state *st = state;
    int rv = 0;
    if (fr_ns_query_match(req->query, io_catalog[0].ns)) {
        double nr = 0;
        rv = io_read_nr(st, &nr, err);
        if (rv == 0 && fr_batch_add(req->out, io_catalog[0].ns, req->now_ns, fr_val_f64(nr),
                                    io_catalog[0].unit) == NULL) {
            return fr_error_set(err, FR_ENOMEM, io_catalog[0].ns, "iocm: out of memory");
        }
    }
    if (!io_wants(req->query, io_catalog[1].ns)) {
        return rv;
    }
    fr_error uerr;
    fr_error_clear(&uerr);
    int urv = io_read_cores(st, &uerr);
    if (urv != 0) {
        /* Start over: a half-read file is no baseline. */
        st->have_prev = false;
        if (rv == 0) {
            *err = uerr;
            rv = urv;
        }
        return rv;
    }
    if (st->have_prev) {
        double sum = 0;
        bool any = false, kernel_total = false;
        for (size_t i = 0; i < st->ncur; i++) {
            const io_core *c = &st->cur[i];
            const io_core *p = io_find(st->prev, st->nprev, c->name);
            double u;
            if (strcmp(c->name, "cpu") == 0) {
                kernel_total = true;
            }
            if (p == NULL || !io_util(p, c, &u)) {
                continue;
            }
            if (strcmp(c->name, "cpu") != 0) {
                sum += u;
                any = true;
            }
            if (io_emit(req, c->name, u, err) != 0) {
                return FR_ENOMEM;
            }
        }
        if (any && !kernel_total && io_emit(req, "cpu", sum, err) != 0) {
            return FR_ENOMEM;
        }
    }
    io_core *t = st->prev;
    st->prev = st->cur;
    st->cur = t;
    st->nprev = st->ncur;
    st->have_prev = true;
    return rv;
}

const fr_collector_plugin fr_collector_iocm = {
    .abi = FR_PLUGIN_ABI,
    .name = "iocm",
    .version = 1,
    .description = "IOcm I/O cores: how many are active and how busy each is, from sysfs",
    .ns_prefix = IO_PREFIX,
    .catalog = io_catalog,
    .ncatalog = sizeof(io_catalog) / sizeof(io_catalog[0]),
    .policy = io_policy,
    .npolicy = sizeof(io_policy) / sizeof(io_policy[0]),
    .config_size = sizeof(io_config),
    .init = io_init,
    .collect = io_collect,
    .destroy = io_destroy,
};
