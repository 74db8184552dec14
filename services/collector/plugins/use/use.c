/* use: Brendan Gregg's USE method (utilisation, saturation, errors) for
 * cpu, memory, storage and network, under snap's /intel/use/... names, as
 * section 3.1.3.7 of the MIKELANGELO D5.2 report lists them.
 *
 * Every figure is computed from counters read on this tick and the last
 * one, over the tick times the collector passes in (req->now_ns): nothing
 * sleeps inside collect. On the first tick only the figures that need no
 * previous reading are given. A device whose counters went back (reset or
 * replaced) gives no rate on that tick.
 *
 * metric                          formula                                       1st tick
 * ------------------------------  --------------------------------------------  --------
 * compute/utilization             100 * (dT - dIdle - dIowait) / dT over the    no
 *                                 "cpu" line of /proc/stat, where T = user +
 *                                 nice + system + idle + iowait + irq +
 *                                 softirq + steal (guest is inside user/nice)
 * compute/<cpu>/utilization       the same over the "cpu<N>" line               no
 * compute/saturation              load1 / online CPUs (cpu<N> lines)            yes
 * memory/utilization              100 * (MemTotal - MemAvailable) / MemTotal;   yes
 *                                 MemFree + Buffers + Cached stands in for
 *                                 MemAvailable on kernels without it
 * memory/saturation               (dpswpin + dpswpout) / dt_s: pages swapped    no
 *                                 in and out per second (vmstat si + so)
 * storage/<dev>/utilization       100 * dio_ms / dt_ms, at most 100             no
 *                                 (iostat %util)
 * storage/<dev>/saturation        dweighted_io_ms / dt_ms: mean queue length    no
 *                                 (iostat aqu-sz)
 * storage/<dev>/errors            sys_path/block/<dev>/device/ioerr_cnt: I/O    yes
 *                                 errors since boot (SCSI devices only)
 * network/<if>/utilization        100 * 8 * max(drx_bytes, dtx_bytes) /         no
 *                                 (speed_Mbit/s * 1e6 * dt_s) on a full-duplex
 *                                 link, the sum instead of the max on half
 *                                 duplex; only when sysfs knows the speed
 * network/<if>/saturation         (drx_drop + drx_fifo + dtx_drop + dtx_fifo)   no
 *                                 / dt_s: packets dropped or overrun per second
 * network/<if>/errors             rx_errs + tx_errs: errors since boot          yes
 *
 * d = this tick's counter minus the last one's, dt = the time between the
 * two ticks. docs/plugins/use.md says why each formula is the one it is. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fresco/plugin.h"

#define USE_NS_MAX      256
#define USE_NAME_MAX    48
#define USE_PATH_MAX    512
#define USE_BUF_INITIAL 16384
#define USE_BUF_MAX     (64u << 20)
#define USE_FIELDS_MAX  16
/* Link speed, duplex and whether ioerr_cnt exists change rarely: read
 * them again after this long rather than on every tick. */
#define USE_SYSFS_REFRESH_NS (10 * 1000000000LL)

/* ---- config ----------------------------------------------------------- */

typedef struct use_config {
    char *proc_path;
    char *sys_path;
} use_config;

static const fr_cfg_field use_policy[] = {
    {.key = "proc_path",
     .type = FR_CFG_STRING,
     .def = "/proc",
     .offset = offsetof(use_config, proc_path),
     .help = "where procfs is mounted (the host's /proc inside a container, or test fixtures)"},
    {.key = "sys_path",
     .type = FR_CFG_STRING,
     .def = "/sys",
     .offset = offsetof(use_config, sys_path),
     .help = "where sysfs is mounted: link speeds and SCSI error counts are read there"},
};

/* ---- catalog ---------------------------------------------------------- */

static const fr_dyn_info dyn_cpu[] = {{"cpu", "CPU number as in /proc/stat (0, 1, ...)"}};
static const fr_dyn_info dyn_disk[] = {
    {"device", "block device as in /proc/diskstats (sda, sda1, nvme0n1, ...)"}};
static const fr_dyn_info dyn_iface[] = {{"interface", "network interface as in /proc/net/dev"}};

static const fr_metric_info use_catalog[] = {
    {.ns = "/intel/use/compute/utilization",
     .type = FR_VAL_DOUBLE,
     .unit = "percent",
     .description = "CPU time not idle and not in iowait since the previous tick, over all CPUs"},
    {.ns = "/intel/use/compute/*/utilization",
     .type = FR_VAL_DOUBLE,
     .unit = "percent",
     .description = "one CPU's time not idle and not in iowait since the previous tick",
     .dyn = dyn_cpu,
     .ndyn = 1},
    {.ns = "/intel/use/compute/saturation",
     .type = FR_VAL_DOUBLE,
     .unit = "",
     .description = "1-minute load average per online CPU; above 1 means threads wait to run"},
    {.ns = "/intel/use/memory/utilization",
     .type = FR_VAL_DOUBLE,
     .unit = "percent",
     .description = "memory not available to new work: 100 * (MemTotal - MemAvailable) / MemTotal"},
    {.ns = "/intel/use/memory/saturation",
     .type = FR_VAL_DOUBLE,
     .unit = "pages/s",
     .description = "pages swapped in plus pages swapped out per second since the previous tick"},
    {.ns = "/intel/use/storage/*/utilization",
     .type = FR_VAL_DOUBLE,
     .unit = "percent",
     .description = "share of time the device was busy since the previous tick (iostat %util)",
     .dyn = dyn_disk,
     .ndyn = 1},
    {.ns = "/intel/use/storage/*/saturation",
     .type = FR_VAL_DOUBLE,
     .unit = "",
     .description = "mean number of I/Os queued or in service since the previous tick "
                    "(iostat aqu-sz)",
     .dyn = dyn_disk,
     .ndyn = 1},
    {.ns = "/intel/use/storage/*/errors",
     .type = FR_VAL_DOUBLE,
     .unit = "",
     .description = "I/O errors since boot, from sysfs ioerr_cnt (SCSI devices only)",
     .dyn = dyn_disk,
     .ndyn = 1},
    {.ns = "/intel/use/network/*/utilization",
     .type = FR_VAL_DOUBLE,
     .unit = "percent",
     .description = "traffic since the previous tick as a share of the link speed (busier "
                    "direction on full duplex, both on half duplex)",
     .dyn = dyn_iface,
     .ndyn = 1},
    {.ns = "/intel/use/network/*/saturation",
     .type = FR_VAL_DOUBLE,
     .unit = "1/s",
     .description = "packets dropped or overrun (FIFO) per second since the previous tick, "
                    "both directions",
     .dyn = dyn_iface,
     .ndyn = 1},
    {.ns = "/intel/use/network/*/errors",
     .type = FR_VAL_DOUBLE,
     .unit = "",
     .description = "receive plus transmit errors since boot",
     .dyn = dyn_iface,
     .ndyn = 1},
};

/* ---- file fields ------------------------------------------------------ */

enum { CPU_IDLE = 3, CPU_IOWAIT = 4, CPU_GUEST = 8, CPU_NFIELDS = 10, CPU_NREQUIRED = 5 };
enum {
    NET_RX_BYTES = 0,
    NET_RX_ERRS = 2,
    NET_RX_DROP = 3,
    NET_RX_FIFO = 4,
    NET_TX_BYTES = 8,
    NET_TX_ERRS = 10,
    NET_TX_DROP = 11,
    NET_TX_FIFO = 12,
    NET_NFIELDS = 16
};
enum { DISK_IO_MS = 9, DISK_WEIGHTED_IO_MS = 10, DISK_NREQUIRED = 11 };

enum { SRC_STAT, SRC_LOADAVG, SRC_MEMINFO, SRC_VMSTAT, SRC_DISKSTATS, SRC_NETDEV, SRC_COUNT };
static const char *const src_name[SRC_COUNT] = {"stat",   "loadavg",   "meminfo",
                                                "vmstat", "diskstats", "net/dev"};

/* ---- state ------------------------------------------------------------ */

typedef struct text_buf {
    char *p;
    size_t cap;
} text_buf;

typedef struct src_file {
    char *path;
    int fd; /* kept open between ticks; -1 when closed */
} src_file;

/* What one device needs from the previous tick, plus what sysfs said about
 * it (carried from tick to tick, read again every USE_SYSFS_REFRESH_NS). */
typedef struct counters {
    char name[USE_NAME_MAX];
    uint64_t v[USE_FIELDS_MAX];
    int64_t sys_ts;     /* when sysfs was last read; 0: never */
    int64_t speed_mbit; /* link speed; <= 0: unknown */
    bool full_duplex;
    bool has_ioerr; /* ioerr_cnt exists */
} counters;

/* This tick's counters and the last tick's, swapped at the end of a tick:
 * no allocation once the device count settles, and devices that vanish
 * are not carried over. */
typedef struct counter_set {
    counters *cur, *prev;
    size_t ncur, nprev, capcur, capprev;
    int64_t prev_ts; /* tick time of prev; 0 before the first */
} counter_set;

typedef struct use {
    const use_config *cfg;
    src_file src[SRC_COUNT];
    text_buf buf;
    counter_set cpus, disks, nets;
    uint64_t swap_prev[2]; /* pswpin, pswpout */
    int64_t swap_ts;       /* 0: no previous reading */
} use;

typedef struct tick {
    use *st;
    const fr_ns_query *q;
    fr_batch *out;
    int64_t now;
    fr_error *err;
    int rv; /* first failure; FR_ENOMEM stops the tick */
    unsigned ncpu;
    char ns[USE_NS_MAX];
    size_t len;
} tick;

/* ---- failures --------------------------------------------------------- */

static void tick_fail(tick *t, int code, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records a failure; the first one is what the task reports, and the tick
 * goes on so that the other resources still deliver. */
static void tick_fail(tick *t, int code, const char *where, const char *fmt, ...)
{
    if (t->rv != 0) {
        return;
    }
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    t->rv = fr_error_set(t->err, code, where, "use: %s", msg);
}

static void tick_oom(tick *t)
{
    t->rv = fr_error_set(t->err, FR_ENOMEM, NULL, "use: out of memory");
}

static void line_fail(tick *t, int src, unsigned lineno, const char *line)
{
    char where[160];
    snprintf(where, sizeof(where), "%s:%u", t->st->src[src].path, lineno);
    tick_fail(t, FR_EPROTO, where, "%s line %u is malformed: '%.60s'", t->st->src[src].path, lineno,
              line);
}

/* ---- reading ---------------------------------------------------------- */

static bool buf_grow(text_buf *b)
{
    size_t cap = b->cap != 0 ? b->cap * 2 : USE_BUF_INITIAL;
    if (cap > USE_BUF_MAX) {
        return false;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

/* Reads the whole file from offset 0 on a descriptor kept open (procfs
 * regenerates it on such a read); multi-record files come a page or so per
 * read, hence the loop to end of file. NULL with the failure recorded. */
static char *src_read(tick *t, int which)
{
    src_file *f = &t->st->src[which];
    text_buf *b = &t->st->buf;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (f->fd < 0) {
            f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
            if (f->fd < 0) {
                int e = errno;
                tick_fail(t, e == ENOENT ? FR_ENOTFOUND : FR_EIO, f->path, "cannot open %s: %s",
                          f->path, strerror(e));
                return NULL;
            }
        }
        size_t n = 0;
        int e = 0;
        for (;;) {
            if (b->cap - n < 2 && !buf_grow(b)) {
                tick_fail(t, FR_ETOOBIG, f->path, "%s is larger than %u bytes", f->path,
                          USE_BUF_MAX);
                return NULL;
            }
            ssize_t r = pread(f->fd, b->p + n, b->cap - 1 - n, (off_t)n);
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
            b->p[n] = '\0';
            return b->p;
        }
        /* A stale descriptor: open the path again once. */
        close(f->fd);
        f->fd = -1;
        if (attempt == 1) {
            tick_fail(t, FR_EIO, f->path, "cannot read %s: %s", f->path, strerror(e));
        }
    }
    return NULL;
}

/* A small sysfs file's first line into buf; false when it cannot be read
 * (sysfs answers EINVAL for the speed of a link that is down). */
static bool sysfs_read(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return false;
    }
    ssize_t n;
    do {
        n = read(fd, buf, cap - 1);
    } while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0) {
        return false;
    }
    buf[n] = '\0';
    char *nl = strchr(buf, '\n');
    if (nl != NULL) {
        *nl = '\0';
    }
    return true;
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

static const char *skip_blank(const char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return p;
}

static bool is_end(char c)
{
    return c == '\0' || c == ' ' || c == '\t' || c == '\n';
}

/* An unsigned decimal ending at a blank or the end of the line; false
 * when absent, malformed or over 64 bits. */
static bool take_u64(const char **pp, uint64_t *out)
{
    const char *p = skip_blank(*pp);
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
    if (!is_end(*p)) {
        return false;
    }
    *pp = p;
    *out = v;
    return true;
}

/* "2.58" without strtod(), whose decimal point would follow the locale. */
static bool take_fixed(const char **pp, double *out)
{
    const char *p = skip_blank(*pp);
    if (*p < '0' || *p > '9') {
        return false;
    }
    double v = 0, scale = 1;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            scale /= 10;
            v += (*p++ - '0') * scale;
        }
    }
    if (!is_end(*p)) {
        return false;
    }
    *pp = p;
    *out = v;
    return true;
}

static const char *take_word(const char **pp, size_t *len)
{
    const char *p = skip_blank(*pp);
    const char *s = p;
    while (!is_end(*p)) {
        p++;
    }
    *len = (size_t)(p - s);
    *pp = p;
    return *len != 0 ? s : NULL;
}

/* Up to max unsigned fields; how many, or -1 when one is not a number. */
static int take_fields(const char *p, uint64_t *v, int max)
{
    int n = 0;
    for (;;) {
        p = skip_blank(p);
        if (*p == '\0' || n == max) {
            return n;
        }
        if (!take_u64(&p, &v[n])) {
            return -1;
        }
        n++;
    }
}

/* ---- counter sets ----------------------------------------------------- */

/* Stores a device's counters for the next tick and returns its slot, with
 * the previous tick's entry (or NULL) in *prev. The entry inherits what
 * sysfs said about the device last time. NULL for a name too long to keep
 * (it gets no rates) or out of memory (recorded). */
static counters *cset_record(tick *t, counter_set *s, const char *name, size_t nlen,
                             const uint64_t *v, int nf, const counters **prev)
{
    *prev = NULL;
    if (nlen >= USE_NAME_MAX) {
        return NULL;
    }
    if (s->ncur == s->capcur) {
        size_t cap = s->capcur != 0 ? s->capcur * 2 : 16;
        counters *nv = realloc(s->cur, cap * sizeof(*nv));
        if (nv == NULL) {
            tick_oom(t);
            return NULL;
        }
        s->cur = nv;
        s->capcur = cap;
    }
    size_t pos = s->ncur++;
    counters *c = &s->cur[pos];
    memset(c, 0, sizeof(*c));
    memcpy(c->name, name, nlen);
    memcpy(c->v, v, (size_t)nf * sizeof(*v));
    /* Files list devices in a stable order: try the same position first. */
    const counters *p = NULL;
    if (pos < s->nprev && strcmp(s->prev[pos].name, c->name) == 0) {
        p = &s->prev[pos];
    }
    for (size_t i = 0; p == NULL && i < s->nprev; i++) {
        if (strcmp(s->prev[i].name, c->name) == 0) {
            p = &s->prev[i];
        }
    }
    if (p != NULL) {
        c->sys_ts = p->sys_ts;
        c->speed_mbit = p->speed_mbit;
        c->full_duplex = p->full_duplex;
        c->has_ioerr = p->has_ioerr;
        *prev = p;
    }
    return c;
}

static void cset_commit(counter_set *s, int64_t now)
{
    counters *v = s->prev;
    size_t cap = s->capprev;
    s->prev = s->cur;
    s->capprev = s->capcur;
    s->nprev = s->ncur;
    s->cur = v;
    s->capcur = cap;
    s->ncur = 0;
    s->prev_ts = now;
}

/* d = cur - prev at the given indices; false when one went back. */
static bool delta_at(const uint64_t *cur, const uint64_t *prev, const int *idx, int n, uint64_t *d)
{
    for (int i = 0; i < n; i++) {
        if (cur[idx[i]] < prev[idx[i]]) {
            return false;
        }
        d[i] = cur[idx[i]] - prev[idx[i]];
    }
    return true;
}

/* ---- namespaces and emitting ------------------------------------------ */

static void ns_set(tick *t, const char *prefix)
{
    size_t n = strlen(prefix);
    memcpy(t->ns, prefix, n + 1);
    t->len = n;
}

static bool ns_push(tick *t, const char *el, size_t n)
{
    if (n == 0 || t->len + 1 + n >= sizeof(t->ns)) {
        return false;
    }
    t->ns[t->len] = '/';
    memcpy(t->ns + t->len + 1, el, n);
    t->len += 1 + n;
    t->ns[t->len] = '\0';
    return true;
}

static bool ns_wanted(const tick *t)
{
    return fr_ns_query_wants_prefix(t->q, t->ns);
}

/* Would leaf under the current namespace be asked for? */
static bool leaf_wanted(tick *t, const char *leaf)
{
    size_t keep = t->len;
    bool yes = ns_push(t, leaf, strlen(leaf)) && fr_ns_query_match(t->q, t->ns);
    t->len = keep;
    t->ns[keep] = '\0';
    return yes;
}

static void put(tick *t, const char *leaf, double v, const char *unit)
{
    if (t->rv == FR_ENOMEM) {
        return;
    }
    size_t keep = t->len;
    if (ns_push(t, leaf, strlen(leaf)) && fr_ns_query_match(t->q, t->ns) &&
        fr_batch_add(t->out, t->ns, t->now, fr_val_f64(v), unit) == NULL) {
        tick_oom(t);
    }
    t->len = keep;
    t->ns[keep] = '\0';
}

/* ---- compute ---------------------------------------------------------- */

static double cpu_busy_percent(const uint64_t *v, const uint64_t *pv)
{
    uint64_t total = 0, ptotal = 0;
    for (int i = 0; i < CPU_GUEST; i++) {
        total += v[i]; /* guest time is already inside user and nice */
        ptotal += pv[i];
    }
    uint64_t idle = v[CPU_IDLE] + v[CPU_IOWAIT];
    uint64_t pidle = pv[CPU_IDLE] + pv[CPU_IOWAIT];
    if (total <= ptotal || idle < pidle) {
        return -1; /* no time passed, or counters went back */
    }
    uint64_t dt = total - ptotal, didle = idle - pidle;
    return didle >= dt ? 0.0 : 100.0 * (double)(dt - didle) / (double)dt;
}

static void compute_read(tick *t, bool want_util)
{
    use *st = t->st;
    char *cur = src_read(t, SRC_STAT);
    if (cur == NULL) {
        return;
    }
    unsigned lineno = 0;
    char *line;
    st->cpus.ncur = 0;
    while ((line = line_next(&cur)) != NULL && t->rv != FR_ENOMEM) {
        lineno++;
        const char *p = line;
        size_t wlen;
        const char *w = take_word(&p, &wlen);
        if (w == NULL || wlen < 3 || memcmp(w, "cpu", 3) != 0) {
            continue;
        }
        uint64_t v[CPU_NFIELDS] = {0};
        int nf = take_fields(p, v, CPU_NFIELDS);
        bool digits = true;
        for (size_t i = 3; i < wlen; i++) {
            digits = digits && w[i] >= '0' && w[i] <= '9';
        }
        if (nf < CPU_NREQUIRED || !digits) {
            line_fail(t, SRC_STAT, lineno, line);
            continue;
        }
        if (wlen > 3) {
            t->ncpu++;
        }
        if (!want_util) {
            continue;
        }
        const counters *prev;
        if (cset_record(t, &st->cpus, w, wlen, v, CPU_NFIELDS, &prev) == NULL || prev == NULL) {
            continue;
        }
        double pct = cpu_busy_percent(v, prev->v);
        if (pct < 0) {
            continue;
        }
        ns_set(t, "/intel/use/compute");
        if (wlen == 3 || ns_push(t, w + 3, wlen - 3)) {
            put(t, "utilization", pct, "percent");
        }
    }
    if (want_util) {
        cset_commit(&st->cpus, t->now);
    }
}

static void saturation_read(tick *t)
{
    char *cur = src_read(t, SRC_LOADAVG);
    if (cur == NULL) {
        return;
    }
    const char *p = cur;
    double load1;
    if (!take_fixed(&p, &load1)) {
        char *line = line_next(&cur);
        line_fail(t, SRC_LOADAVG, 1, line != NULL ? line : "");
        return;
    }
    if (t->ncpu > 0) {
        ns_set(t, "/intel/use/compute");
        put(t, "saturation", load1 / t->ncpu, "");
    }
}

/* ---- memory ----------------------------------------------------------- */

static void meminfo_read(tick *t)
{
    char *cur = src_read(t, SRC_MEMINFO);
    if (cur == NULL) {
        return;
    }
    uint64_t total = 0, free_ = 0, avail = 0, buffers = 0, cached = 0;
    bool has_total = false, has_avail = false;
    unsigned lineno = 0;
    char *line;
    while ((line = line_next(&cur)) != NULL) {
        lineno++;
        const char *colon = strchr(line, ':');
        if (colon == NULL) {
            if (*skip_blank(line) != '\0') {
                line_fail(t, SRC_MEMINFO, lineno, line);
            }
            continue;
        }
        size_t n = (size_t)(colon - line);
        uint64_t *dst = NULL;
        if (n == 8 && memcmp(line, "MemTotal", 8) == 0) {
            dst = &total;
            has_total = true;
        } else if (n == 7 && memcmp(line, "MemFree", 7) == 0) {
            dst = &free_;
        } else if (n == 12 && memcmp(line, "MemAvailable", 12) == 0) {
            dst = &avail;
            has_avail = true;
        } else if (n == 7 && memcmp(line, "Buffers", 7) == 0) {
            dst = &buffers;
        } else if (n == 6 && memcmp(line, "Cached", 6) == 0) {
            dst = &cached;
        }
        const char *p = colon + 1;
        if (dst != NULL && !take_u64(&p, dst)) {
            line_fail(t, SRC_MEMINFO, lineno, line);
        }
    }
    if (!has_total || total == 0) {
        tick_fail(t, FR_EPROTO, t->st->src[SRC_MEMINFO].path, "%s has no MemTotal",
                  t->st->src[SRC_MEMINFO].path);
        return;
    }
    if (!has_avail) {
        avail = free_ + buffers + cached;
    }
    ns_set(t, "/intel/use/memory");
    put(t, "utilization", avail >= total ? 0.0 : 100.0 * (double)(total - avail) / (double)total,
        "percent");
}

static void vmstat_read(tick *t)
{
    use *st = t->st;
    char *cur = src_read(t, SRC_VMSTAT);
    if (cur == NULL) {
        return;
    }
    uint64_t swap[2] = {0};
    int found = 0;
    unsigned lineno = 0;
    char *line;
    while ((line = line_next(&cur)) != NULL && found < 2) {
        lineno++;
        const char *p = line;
        size_t wlen;
        const char *w = take_word(&p, &wlen);
        int i = -1;
        if (w != NULL && wlen == 6 && memcmp(w, "pswpin", 6) == 0) {
            i = 0;
        } else if (w != NULL && wlen == 7 && memcmp(w, "pswpout", 7) == 0) {
            i = 1;
        }
        if (i < 0) {
            continue;
        }
        if (!take_u64(&p, &swap[i])) {
            line_fail(t, SRC_VMSTAT, lineno, line);
            return;
        }
        found++;
    }
    if (found < 2) {
        /* Kernels without swap support have no such lines: nothing swaps. */
        swap[0] = swap[1] = 0;
    }
    int64_t dt = st->swap_ts != 0 ? t->now - st->swap_ts : 0;
    if (dt > 0 && swap[0] >= st->swap_prev[0] && swap[1] >= st->swap_prev[1]) {
        double pages = (double)(swap[0] - st->swap_prev[0] + swap[1] - st->swap_prev[1]);
        ns_set(t, "/intel/use/memory");
        put(t, "saturation", pages * 1e9 / (double)dt, "pages/s");
    }
    st->swap_prev[0] = swap[0];
    st->swap_prev[1] = swap[1];
    st->swap_ts = t->now;
}

/* ---- storage ---------------------------------------------------------- */

/* ioerr_cnt is hexadecimal ("0x1f"). */
static bool parse_ioerr(const char *s, uint64_t *out)
{
    s = skip_blank(s);
    if (s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) {
        return false;
    }
    s += 2;
    uint64_t v = 0;
    int n = 0;
    for (; *s != '\0' && !is_end(*s); s++, n++) {
        int d = (*s >= '0' && *s <= '9')   ? *s - '0'
                : (*s >= 'a' && *s <= 'f') ? *s - 'a' + 10
                : (*s >= 'A' && *s <= 'F') ? *s - 'A' + 10
                                           : -1;
        if (d < 0 || v > (UINT64_MAX >> 4)) {
            return false;
        }
        v = v * 16 + (uint64_t)d;
    }
    *out = v;
    return n > 0;
}

static void storage_errors(tick *t, counters *c)
{
    char path[USE_PATH_MAX], text[64];
    snprintf(path, sizeof(path), "%s/block/%s/device/ioerr_cnt", t->st->cfg->sys_path, c->name);
    bool stale = c->sys_ts == 0 || t->now - c->sys_ts >= USE_SYSFS_REFRESH_NS;
    if (!c->has_ioerr && !stale) {
        return; /* not a SCSI device: no need to look again every tick */
    }
    uint64_t v;
    c->has_ioerr = sysfs_read(path, text, sizeof(text)) && parse_ioerr(text, &v);
    if (stale) {
        c->sys_ts = t->now;
    }
    if (c->has_ioerr) {
        put(t, "errors", (double)v, "");
    }
}

static void diskstats_read(tick *t)
{
    use *st = t->st;
    char *cur = src_read(t, SRC_DISKSTATS);
    if (cur == NULL) {
        return;
    }
    static const int idx[] = {DISK_IO_MS, DISK_WEIGHTED_IO_MS};
    int64_t dt = st->disks.prev_ts != 0 ? t->now - st->disks.prev_ts : 0;
    double dt_ms = (double)dt / 1e6;
    unsigned lineno = 0;
    char *line;
    st->disks.ncur = 0;
    while ((line = line_next(&cur)) != NULL && t->rv != FR_ENOMEM) {
        lineno++;
        const char *p = line;
        uint64_t major, minor, v[USE_FIELDS_MAX] = {0};
        size_t nlen;
        const char *name;
        if (*skip_blank(p) == '\0') {
            continue;
        }
        if (!take_u64(&p, &major) || !take_u64(&p, &minor) ||
            (name = take_word(&p, &nlen)) == NULL ||
            take_fields(p, v, USE_FIELDS_MAX) < DISK_NREQUIRED) {
            line_fail(t, SRC_DISKSTATS, lineno, line);
            continue;
        }
        const counters *prev;
        counters *c = cset_record(t, &st->disks, name, nlen, v, DISK_NREQUIRED, &prev);
        if (c == NULL) {
            continue;
        }
        ns_set(t, "/intel/use/storage");
        if (!ns_push(t, name, nlen) || !ns_wanted(t)) {
            continue;
        }
        uint64_t d[2];
        if (prev != NULL && dt > 0 && delta_at(v, prev->v, idx, 2, d)) {
            double util = 100.0 * (double)d[0] / dt_ms;
            put(t, "utilization", util > 100.0 ? 100.0 : util, "percent");
            put(t, "saturation", (double)d[1] / dt_ms, "");
        }
        if (leaf_wanted(t, "errors")) {
            storage_errors(t, c);
        }
    }
    cset_commit(&st->disks, t->now);
}

/* ---- network ---------------------------------------------------------- */

static void link_refresh(tick *t, counters *c)
{
    char path[USE_PATH_MAX], text[64];
    c->sys_ts = t->now;
    c->speed_mbit = 0;
    c->full_duplex = false;
    snprintf(path, sizeof(path), "%s/class/net/%s/speed", t->st->cfg->sys_path, c->name);
    const char *p = text;
    uint64_t speed;
    if (sysfs_read(path, text, sizeof(text)) && take_u64(&p, &speed) && speed < INT64_MAX) {
        c->speed_mbit = (int64_t)speed; /* "-1" (unknown) fails to parse: no utilisation */
    }
    snprintf(path, sizeof(path), "%s/class/net/%s/duplex", t->st->cfg->sys_path, c->name);
    c->full_duplex = sysfs_read(path, text, sizeof(text)) && strcmp(text, "full") == 0;
}

static void netdev_read(tick *t)
{
    use *st = t->st;
    char *cur = src_read(t, SRC_NETDEV);
    if (cur == NULL) {
        return;
    }
    static const int idx[] = {NET_RX_BYTES, NET_TX_BYTES, NET_RX_DROP,
                              NET_RX_FIFO,  NET_TX_DROP,  NET_TX_FIFO};
    int64_t dt = st->nets.prev_ts != 0 ? t->now - st->nets.prev_ts : 0;
    double dt_s = (double)dt / 1e9;
    unsigned lineno = 0;
    char *line;
    st->nets.ncur = 0;
    while ((line = line_next(&cur)) != NULL && t->rv != FR_ENOMEM) {
        lineno++;
        char *colon = strchr(line, ':');
        if (colon == NULL) {
            if (lineno > 2 && *skip_blank(line) != '\0') {
                line_fail(t, SRC_NETDEV, lineno, line);
            }
            continue; /* the two header lines */
        }
        const char *name = skip_blank(line);
        const char *end = colon;
        while (end > name && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }
        uint64_t v[USE_FIELDS_MAX];
        if (end == name || take_fields(colon + 1, v, NET_NFIELDS) != NET_NFIELDS) {
            line_fail(t, SRC_NETDEV, lineno, line);
            continue;
        }
        size_t nlen = (size_t)(end - name);
        const counters *prev;
        counters *c = cset_record(t, &st->nets, name, nlen, v, NET_NFIELDS, &prev);
        if (c == NULL) {
            continue;
        }
        ns_set(t, "/intel/use/network");
        if (!ns_push(t, name, nlen) || !ns_wanted(t)) {
            continue;
        }
        put(t, "errors", (double)(v[NET_RX_ERRS] + v[NET_TX_ERRS]), "");
        uint64_t d[6];
        if (prev == NULL || dt <= 0 || !delta_at(v, prev->v, idx, 6, d)) {
            continue;
        }
        put(t, "saturation", (double)(d[2] + d[3] + d[4] + d[5]) / dt_s, "1/s");
        if (!leaf_wanted(t, "utilization")) {
            continue;
        }
        if (c->sys_ts == 0 || t->now - c->sys_ts >= USE_SYSFS_REFRESH_NS) {
            link_refresh(t, c);
        }
        if (c->speed_mbit > 0) {
            uint64_t bytes = c->full_duplex ? (d[0] > d[1] ? d[0] : d[1]) : d[0] + d[1];
            double capacity = (double)c->speed_mbit * 1e6 * dt_s; /* bits in dt */
            put(t, "utilization", 100.0 * 8.0 * (double)bytes / capacity, "percent");
        }
    }
    cset_commit(&st->nets, t->now);
}

/* ---- the plugin ------------------------------------------------------- */

static void use_destroy(void *state)
{
    use *st = state;
    if (st == NULL) {
        return;
    }
    for (int i = 0; i < SRC_COUNT; i++) {
        if (st->src[i].fd >= 0) {
            close(st->src[i].fd);
        }
        free(st->src[i].path);
    }
    free(st->buf.p);
    counter_set *sets[] = {&st->cpus, &st->disks, &st->nets};
    for (size_t i = 0; i < 3; i++) {
        free(sets[i]->cur);
        free(sets[i]->prev);
    }
    free(st);
}

static int check_dir(const char *key, const char *path, fr_error *err)
{
    struct stat sb;
    if (path == NULL || path[0] == '\0') {
        return fr_error_set(err, FR_ECONFIG, key, "use: %s is empty", key);
    }
    if (strlen(path) > USE_PATH_MAX - 128) {
        return fr_error_set(err, FR_ECONFIG, key, "use: %s is too long", key);
    }
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        return fr_error_set(err, FR_ECONFIG, key, "use: %s '%s' is not a directory", key, path);
    }
    return 0;
}

static int use_init(void **state, const void *config, fr_error *err)
{
    const use_config *cfg = config;
    int rv;
    *state = NULL;
    if (cfg == NULL) {
        return fr_error_set(err, FR_ECONFIG, NULL, "use: no config");
    }
    if ((rv = check_dir("proc_path", cfg->proc_path, err)) != 0 ||
        (rv = check_dir("sys_path", cfg->sys_path, err)) != 0) {
        return rv;
    }
    use *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "use: out of memory");
    }
    st->cfg = cfg;
    for (int i = 0; i < SRC_COUNT; i++) {
        st->src[i].fd = -1;
    }
    for (int i = 0; i < SRC_COUNT; i++) {
        size_t n = strlen(cfg->proc_path) + 1 + strlen(src_name[i]) + 1;
        st->src[i].path = malloc(n);
        if (st->src[i].path == NULL) {
            use_destroy(st);
            return fr_error_set(err, FR_ENOMEM, NULL, "use: out of memory");
        }
        snprintf(st->src[i].path, n, "%s/%s", cfg->proc_path, src_name[i]);
    }
    if (!buf_grow(&st->buf)) {
        use_destroy(st);
        return fr_error_set(err, FR_ENOMEM, NULL, "use: out of memory");
    }
    *state = st;
    return 0;
}

static int use_collect(void *state, const fr_collect_req *req, fr_error *err)
{
    tick t = {.st = state, .q = req->query, .out = req->out, .now = req->now_ns, .err = err};
    const fr_ns_query *q = req->query;
    fr_error_clear(err);

    /* Per-CPU names are only known once /proc/stat is read: ask whether any
     * query could select one. */
    bool util = fr_ns_query_match(q, "/intel/use/compute/utilization");
    for (size_t i = 0; !util && i < fr_ns_query_count(q); i++) {
        util = fr_ns_query_covers_pattern(q, i, "/intel/use/compute/*/utilization");
    }
    bool sat = fr_ns_query_match(q, "/intel/use/compute/saturation");
    if (util || sat) {
        compute_read(&t, util);
    }
    if (sat && t.rv != FR_ENOMEM) {
        saturation_read(&t);
    }
    if (fr_ns_query_match(q, "/intel/use/memory/utilization") && t.rv != FR_ENOMEM) {
        meminfo_read(&t);
    }
    if (fr_ns_query_match(q, "/intel/use/memory/saturation") && t.rv != FR_ENOMEM) {
        vmstat_read(&t);
    }
    if (fr_ns_query_wants_prefix(q, "/intel/use/storage") && t.rv != FR_ENOMEM) {
        diskstats_read(&t);
    }
    if (fr_ns_query_wants_prefix(q, "/intel/use/network") && t.rv != FR_ENOMEM) {
        netdev_read(&t);
    }
    return t.rv;
}

const fr_collector_plugin fr_collector_use = {
    .abi = FR_PLUGIN_ABI,
    .name = "use",
    .version = 1,
    .description = "utilisation, saturation and errors of cpu, memory, storage and network "
                   "(the USE method), from deltas between ticks",
    .ns_prefix = "/intel/use",
    .catalog = use_catalog,
    .ncatalog = sizeof(use_catalog) / sizeof(use_catalog[0]),
    .policy = use_policy,
    .npolicy = sizeof(use_policy) / sizeof(use_policy[0]),
    .config_size = sizeof(use_config),
    .init = use_init,
    .collect = use_collect,
    .destroy = use_destroy,
};
