/* process: CPU, memory and I/O of one process, chosen by name or by pid
 * file, from /proc/<pid>/stat, status and io (and /proc/meminfo for the
 * memory share). It covers the report's vRDMA collector: the same ten
 * metrics are offered as /intel/vrdma/<metric> (64-bit integers, as the
 * report gives them) and as /intel/process/<name>/<metric> for any process.
 *
 * utilization is measured between two ticks from the process's CPU time
 * (utime + stime), so the first tick after the process is found, or after
 * it restarted, has none. A restart is noticed when the pid changes or the
 * pid is reused by another process (its start time differs); counters then
 * start from the new process's values. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fresco/log.h"
#include "fresco/plugin.h"

#define PR_PREFIX   "/intel/process"
#define PR_VRDMA    "/intel/vrdma"
#define PR_COMM_MAX 15 /* the kernel keeps 15 bytes of a process's name */
#define PR_NAME_MAX 128

typedef struct pr_config {
    char *process_name;
    char *pid_file;
    char *proc_path;
} pr_config;

static const fr_cfg_field pr_policy[] = {
    {"process_name", FR_CFG_STRING, NULL, offsetof(pr_config, process_name),
     "name of the process to watch, matched against /proc/<pid>/comm (its first 15 bytes); "
     "with pid_file, checked against the pid file's process",
     0, 0, NULL},
    {"pid_file", FR_CFG_STRING, NULL, offsetof(pr_config, pid_file),
     "file holding the pid of the process to watch, read every tick", 0, 0, NULL},
    {"proc_path", FR_CFG_STRING, "/proc", offsetof(pr_config, proc_path), "where procfs is mounted",
     0, 0, NULL},
};

enum {
    PR_UTILIZATION,
    PR_MEMORY,
    PR_VSZ,
    PR_RSS,
    PR_RCHAR,
    PR_WCHAR,
    PR_SYSCR,
    PR_SYSCW,
    PR_READ_BYTES,
    PR_WRITE_BYTES,
    PR_NMETRICS
};

static const fr_dyn_info pr_dyn_process[] = {
    {"process", "the watched process: process_name as configured, else its /proc/<pid>/comm"},
};

#define PR_DESC_UTILIZATION "CPU time used since the previous tick, in percent of one CPU"
#define PR_DESC_MEMORY      "resident memory in percent of the host's memory (MemTotal)"
#define PR_DESC_VSZ         "virtual memory size (VmSize)"
#define PR_DESC_RSS         "resident memory (VmRSS)"
#define PR_DESC_RCHAR       "bytes read through read-like syscalls, page cache included"
#define PR_DESC_WCHAR       "bytes written through write-like syscalls, page cache included"
#define PR_DESC_SYSCR       "read-like syscalls made"
#define PR_DESC_SYSCW       "write-like syscalls made"
#define PR_DESC_READ_BYTES  "bytes the process caused to be fetched from storage"
#define PR_DESC_WRITE_BYTES "bytes the process caused to be sent to storage"

/* The /intel/process entries first, then /intel/vrdma, each in the enum's
 * order: pr_collect relies on it. */
static const fr_metric_info pr_catalog[] = {
    {PR_PREFIX "/*/utilization", FR_VAL_DOUBLE, "percent", PR_DESC_UTILIZATION, pr_dyn_process, 1},
    {PR_PREFIX "/*/memory", FR_VAL_DOUBLE, "percent", PR_DESC_MEMORY, pr_dyn_process, 1},
    {PR_PREFIX "/*/vsz", FR_VAL_UINT64, "bytes", PR_DESC_VSZ, pr_dyn_process, 1},
    {PR_PREFIX "/*/rss", FR_VAL_UINT64, "bytes", PR_DESC_RSS, pr_dyn_process, 1},
    {PR_PREFIX "/*/rchar", FR_VAL_UINT64, "bytes", PR_DESC_RCHAR, pr_dyn_process, 1},
    {PR_PREFIX "/*/wchar", FR_VAL_UINT64, "bytes", PR_DESC_WCHAR, pr_dyn_process, 1},
    {PR_PREFIX "/*/syscr", FR_VAL_UINT64, "", PR_DESC_SYSCR, pr_dyn_process, 1},
    {PR_PREFIX "/*/syscw", FR_VAL_UINT64, "", PR_DESC_SYSCW, pr_dyn_process, 1},
    {PR_PREFIX "/*/read_bytes", FR_VAL_UINT64, "bytes", PR_DESC_READ_BYTES, pr_dyn_process, 1},
    {PR_PREFIX "/*/write_bytes", FR_VAL_UINT64, "bytes", PR_DESC_WRITE_BYTES, pr_dyn_process, 1},
    {PR_VRDMA "/utilization", FR_VAL_INT64, "percent", PR_DESC_UTILIZATION " (rounded)", NULL, 0},
    {PR_VRDMA "/memory", FR_VAL_INT64, "percent", PR_DESC_MEMORY " (rounded)", NULL, 0},
    {PR_VRDMA "/vsz", FR_VAL_INT64, "bytes", PR_DESC_VSZ, NULL, 0},
    {PR_VRDMA "/rss", FR_VAL_INT64, "bytes", PR_DESC_RSS, NULL, 0},
    {PR_VRDMA "/rchar", FR_VAL_INT64, "bytes", PR_DESC_RCHAR, NULL, 0},
    {PR_VRDMA "/wchar", FR_VAL_INT64, "bytes", PR_DESC_WCHAR, NULL, 0},
    {PR_VRDMA "/syscr", FR_VAL_INT64, "", PR_DESC_SYSCR, NULL, 0},
    {PR_VRDMA "/syscw", FR_VAL_INT64, "", PR_DESC_SYSCW, NULL, 0},
    {PR_VRDMA "/read_bytes", FR_VAL_INT64, "bytes", PR_DESC_READ_BYTES, NULL, 0},
    {PR_VRDMA "/write_bytes", FR_VAL_INT64, "bytes", PR_DESC_WRITE_BYTES, NULL, 0},
};

typedef struct pr_state {
    const pr_config *cfg;
    char name[PR_NAME_MAX]; /* namespace element; empty until known (pid_file only) */
    long clk_tck;
    /* The process being watched. */
    long pid; /* 0: none yet */
    uint64_t start_ticks;
    /* The previous reading, for utilization. */
    bool have_prev;
    uint64_t prev_cpu_ticks;
    int64_t prev_ns;
    /* This tick's values: percentages in pct, counts and sizes in num. */
    double pct[PR_NMETRICS];
    uint64_t num[PR_NMETRICS];
    bool have[PR_NMETRICS];
} pr_state;

static bool pr_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

/* Reads a small file whole into buf (NUL-terminated). 0, or a negative
 * code with err naming the file. */
static int pr_slurp(const char *path, char *buf, size_t cap, fr_error *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        int e = errno;
        return fr_error_set(err, e == ENOENT || e == ESRCH ? FR_ENOTFOUND : FR_EIO, path, "%s: %s",
                            path, strerror(e));
    }
    size_t n = fread(buf, 1, cap - 1, f);
    int e = ferror(f) ? errno : 0;
    fclose(f);
    if (e != 0) {
        return fr_error_set(err, e == ESRCH ? FR_ENOTFOUND : FR_EIO, path, "%s: %s", path,
                            strerror(e));
    }
    buf[n] = '\0';
    return 0;
}

static void pr_path(char *buf, size_t cap, const pr_state *st, long pid, const char *file)
{
    snprintf(buf, cap, "%s/%ld/%s", st->cfg->proc_path, pid, file);
}

/* The numbers of /proc/<pid>/stat this plugin uses, parsed after the
 * command name, which may itself hold spaces and parentheses. */
typedef struct pr_stat {
    char comm[PR_COMM_MAX + 1];
    uint64_t utime, stime, start_ticks;
} pr_stat;

static int pr_read_stat(const pr_state *st, long pid, pr_stat *out, fr_error *err)
{
    char path[4200], buf[1024];
    pr_path(path, sizeof(path), st, pid, "stat");
    int rv = pr_slurp(path, buf, sizeof(buf), err);
    if (rv != 0) {
        return rv;
    }
    char *open = strchr(buf, '(');
    char *close = strrchr(buf, ')');
    if (open == NULL || close == NULL || close < open) {
        return fr_error_set(err, FR_EINVAL, path, "%s:1: no (command) field", path);
    }
    size_t clen = (size_t)(close - open - 1);
    if (clen > PR_COMM_MAX) {
        clen = PR_COMM_MAX;
    }
    memcpy(out->comm, open + 1, clen);
    out->comm[clen] = '\0';
    /* Fields from 3 (state) on; utime is 14, stime 15, starttime 22. */
    char *p = close + 1;
    uint64_t v[20];
    int field = 3;
    char *save = NULL;
    for (char *tok = strtok_r(p, " \n", &save); tok != NULL && field <= 22;
         tok = strtok_r(NULL, " \n", &save), field++) {
        if (field >= 4) {
            char *end;
            errno = 0;
            long long x = strtoll(tok, &end, 10);
            if (*end != '\0' || errno != 0) {
                return fr_error_set(err, FR_EINVAL, path, "%s:1: field %d is not a number: '%.20s'",
                                    path, field, tok);
            }
            v[field - 3] = (uint64_t)x;
        }
    }
    if (field <= 22) {
        return fr_error_set(err, FR_EINVAL, path, "%s:1: %d fields, 22 expected", path, field - 1);
    }
    out->utime = v[14 - 3];
    out->stime = v[15 - 3];
    out->start_ticks = v[22 - 3];
    return 0;
}

/* True when comm (at most 15 bytes) names the process `want`. */
static bool pr_comm_is(const char *comm, const char *want)
{
    size_t n = strlen(want);
    if (n > PR_COMM_MAX) {
        n = PR_COMM_MAX;
    }
    return strlen(comm) == n && memcmp(comm, want, n) == 0;
}

static int pr_read_comm(const pr_state *st, long pid, char *comm, size_t cap)
{
    char path[4200], buf[64];
    pr_path(path, sizeof(path), st, pid, "comm");
    fr_error ignored;
    if (pr_slurp(path, buf, sizeof(buf), &ignored) != 0) {
        return -1;
    }
    buf[strcspn(buf, "\n")] = '\0';
    snprintf(comm, cap, "%s", buf);
    return 0;
}

/* Finds the process named process_name: the one started first when there
 * are several, so that the choice is stable from tick to tick. */
static int pr_find_by_name(const pr_state *st, long *pid, fr_error *err)
{
    DIR *d = opendir(st->cfg->proc_path);
    if (d == NULL) {
        int e = errno;
        return fr_error_set(err, FR_EIO, st->cfg->proc_path, "%s: %s", st->cfg->proc_path,
                            strerror(e));
    }
    long best = 0;
    uint64_t best_start = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long p = strtol(de->d_name, &end, 10);
        char comm[64];
        pr_stat s;
        fr_error ignored;
        if (*end != '\0' || p <= 0 || pr_read_comm(st, p, comm, sizeof(comm)) != 0 ||
            !pr_comm_is(comm, st->cfg->process_name) || pr_read_stat(st, p, &s, &ignored) != 0) {
            continue;
        }
        if (best == 0 || s.start_ticks < best_start || (s.start_ticks == best_start && p < best)) {
            best = p;
            best_start = s.start_ticks;
        }
    }
    closedir(d);
    if (best == 0) {
        return fr_error_set(err, FR_ENOTFOUND, st->cfg->process_name,
                            "process: no process named '%s' in %s", st->cfg->process_name,
                            st->cfg->proc_path);
    }
    *pid = best;
    return 0;
}

static int pr_read_pid_file(const pr_state *st, long *pid, fr_error *err)
{
    char buf[64];
    int rv = pr_slurp(st->cfg->pid_file, buf, sizeof(buf), err);
    if (rv != 0) {
        return rv;
    }
    char *p = buf + strspn(buf, " \t");
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (end == p || errno != 0 || v <= 0 || end[strspn(end, " \t\r\n")] != '\0') {
        char where[160];
        snprintf(where, sizeof(where), "%s:1", st->cfg->pid_file);
        buf[strcspn(buf, "\n")] = '\0';
        return fr_error_set(err, FR_EINVAL, where, "%s: not a pid: '%.20s'", where, buf);
    }
    *pid = v;
    return 0;
}

/* Makes a namespace element of name: characters that would split or
 * pattern a namespace become '_'. */
static void pr_set_name(pr_state *st, const char *name)
{
    size_t n = strlen(name);
    if (n >= sizeof(st->name)) {
        n = sizeof(st->name) - 1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        bool bad =
            c == '/' || c == '*' || c == '(' || c == ')' || c == ';' || isspace(c) || iscntrl(c);
        st->name[i] = bad ? '_' : (char)c;
    }
    st->name[n] = '\0';
    if (n == 0) {
        snprintf(st->name, sizeof(st->name), "_");
    }
}

/* Finds the process for this tick and reads its stat. A new process
 * (first found, restarted, or its pid reused) drops the utilization
 * baseline. */
static int pr_locate(pr_state *st, pr_stat *s, fr_error *err)
{
    const pr_config *cfg = st->cfg;
    long pid = 0;
    int rv;
    if (pr_set(cfg->pid_file)) {
        if ((rv = pr_read_pid_file(st, &pid, err)) != 0) {
            return rv;
        }
        if ((rv = pr_read_stat(st, pid, s, err)) != 0) {
            if (rv == FR_ENOTFOUND) {
                return fr_error_set(err, FR_ENOTFOUND, cfg->pid_file,
                                    "process: pid %ld from %s is not running", pid, cfg->pid_file);
            }
            return rv;
        }
        char comm[64];
        if (pr_read_comm(st, pid, comm, sizeof(comm)) != 0) {
            snprintf(comm, sizeof(comm), "%s", s->comm);
        }
        if (pr_set(cfg->process_name) && !pr_comm_is(comm, cfg->process_name)) {
            return fr_error_set(err, FR_ENOTFOUND, cfg->pid_file,
                                "process: pid %ld from %s is '%s', not '%s' (stale pid file?)", pid,
                                cfg->pid_file, comm, cfg->process_name);
        }
        if (!pr_set(cfg->process_name)) {
            pr_set_name(st, comm);
        }
    } else {
        /* Keep the process found before while it lives. */
        char comm[64];
        pid = st->pid;
        if (pid == 0 || pr_read_comm(st, pid, comm, sizeof(comm)) != 0 ||
            !pr_comm_is(comm, cfg->process_name) || pr_read_stat(st, pid, s, err) != 0 ||
            s->start_ticks != st->start_ticks) {
            fr_error_clear(err);
            if ((rv = pr_find_by_name(st, &pid, err)) != 0) {
                return rv;
            }
            if ((rv = pr_read_stat(st, pid, s, err)) != 0) {
                return rv;
            }
        }
    }
    if (pid != st->pid || s->start_ticks != st->start_ticks) {
        if (st->pid != 0) {
            if (pid == st->pid) {
                fr_info("process", "%s: pid %ld is a new process (pid reused)", st->name, pid);
            } else {
                fr_info("process", "%s: pid %ld replaced by pid %ld", st->name, st->pid, pid);
            }
        }
        st->pid = pid;
        st->start_ticks = s->start_ticks;
        st->have_prev = false;
    }
    return 0;
}

/* Looks up "Key:  <number> kB" lines of status or meminfo. */
static bool pr_kv(const char *text, const char *key, uint64_t *out)
{
    size_t klen = strlen(key);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
            char *end;
            errno = 0;
            unsigned long long v = strtoull(p + klen + 1, &end, 10);
            if (end == p + klen + 1 || errno != 0) {
                return false;
            }
            *out = v;
            return true;
        }
        p = strchr(p, '\n');
        if (p != NULL) {
            p++;
        }
    }
    return false;
}

static int pr_read_status(pr_state *st, fr_error *err)
{
    char path[4200], buf[8192];
    pr_path(path, sizeof(path), st, st->pid, "status");
    int rv = pr_slurp(path, buf, sizeof(buf), err);
    if (rv != 0) {
        return rv;
    }
    uint64_t vsz_kb, rss_kb;
    /* Kernel threads have neither; a zombie has lost them. */
    if (!pr_kv(buf, "VmSize", &vsz_kb) || !pr_kv(buf, "VmRSS", &rss_kb)) {
        return 0;
    }
    st->num[PR_VSZ] = vsz_kb * 1024;
    st->num[PR_RSS] = rss_kb * 1024;
    st->have[PR_VSZ] = st->have[PR_RSS] = true;

    char mpath[4200], mbuf[4096];
    snprintf(mpath, sizeof(mpath), "%s/meminfo", st->cfg->proc_path);
    uint64_t total_kb;
    if ((rv = pr_slurp(mpath, mbuf, sizeof(mbuf), err)) != 0) {
        return rv;
    }
    if (!pr_kv(mbuf, "MemTotal", &total_kb) || total_kb == 0) {
        return fr_error_set(err, FR_EINVAL, mpath, "%s: no MemTotal line", mpath);
    }
    st->pct[PR_MEMORY] = 100.0 * (double)rss_kb / (double)total_kb;
    st->have[PR_MEMORY] = true;
    return 0;
}

static int pr_read_io(pr_state *st, fr_error *err)
{
    static const struct {
        const char *key;
        int metric;
    } keys[] = {
        {"rchar", PR_RCHAR}, {"wchar", PR_WCHAR},           {"syscr", PR_SYSCR},
        {"syscw", PR_SYSCW}, {"read_bytes", PR_READ_BYTES}, {"write_bytes", PR_WRITE_BYTES},
    };
    char path[4200], buf[1024];
    pr_path(path, sizeof(path), st, st->pid, "io");
    int rv = pr_slurp(path, buf, sizeof(buf), err);
    if (rv != 0) {
        return rv;
    }
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        uint64_t v;
        if (!pr_kv(buf, keys[i].key, &v)) {
            return fr_error_set(err, FR_EINVAL, path, "%s: no %s line", path, keys[i].key);
        }
        st->num[keys[i].metric] = v;
        st->have[keys[i].metric] = true;
    }
    return 0;
}

static void pr_destroy(void *state)
{
    free(state);
}

static int pr_init(void **state, const void *config, fr_error *err)
{
    const pr_config *cfg = config;
    *state = NULL;
    bool by_name = pr_set(cfg->process_name);
    bool by_file = pr_set(cfg->pid_file);
    if (!by_name && !by_file) {
        return fr_error_set(err, FR_ECONFIG, "process_name",
                            "process: set process_name or pid_file to choose the process");
    }
    if (!pr_set(cfg->proc_path)) {
        return fr_error_set(err, FR_ECONFIG, "proc_path", "process: proc_path is empty");
    }
    pr_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return fr_error_set(err, FR_ENOMEM, "", "process: out of memory");
    }
    st->cfg = cfg;
    st->clk_tck = sysconf(_SC_CLK_TCK);
    if (st->clk_tck <= 0) {
        st->clk_tck = 100;
    }
    if (by_name) {
        pr_set_name(st, cfg->process_name);
    }
    *state = st;
    return 0;
}

/* Metric k of this tick, typed as catalog entry m wants it: /intel/vrdma
 * gives whole numbers, percentages rounded. */
static fr_value pr_value(const pr_state *st, const fr_metric_info *m, size_t k)
{
    bool is_pct = k == PR_UTILIZATION || k == PR_MEMORY;
    switch (m->type) {
    case FR_VAL_DOUBLE:
        return fr_val_f64(st->pct[k]);
    case FR_VAL_UINT64:
        return fr_val_u64(st->num[k]);
    default:
        return fr_val_i64(is_pct ? (int64_t)llround(st->pct[k]) : (int64_t)st->num[k]);
    }
}

static int pr_collect(void *state, const fr_collect_req *req, fr_error *err)
{
    pr_state *st = state;
    pr_stat s;
    int rv = pr_locate(st, &s, err);
    if (rv != 0) {
        st->have_prev = false;
        return rv;
    }
    memset(st->have, 0, sizeof(st->have));

    uint64_t cpu = s.utime + s.stime;
    if (st->have_prev && req->now_ns > st->prev_ns && cpu >= st->prev_cpu_ticks) {
        double secs = (double)(req->now_ns - st->prev_ns) / 1e9;
        st->pct[PR_UTILIZATION] =
            100.0 * ((double)(cpu - st->prev_cpu_ticks) / (double)st->clk_tck) / secs;
        st->have[PR_UTILIZATION] = true;
    }
    st->have_prev = true;
    st->prev_cpu_ticks = cpu;
    st->prev_ns = req->now_ns;

    /* Read the rest even when one file fails: report the first failure. */
    fr_error ioerr;
    fr_error_clear(&ioerr);
    rv = pr_read_status(st, err);
    int iorv = pr_read_io(st, rv == 0 ? err : &ioerr);
    if (rv == 0) {
        rv = iorv;
    }

    char ns[PR_NAME_MAX + 64];
    for (size_t i = 0; i < sizeof(pr_catalog) / sizeof(pr_catalog[0]); i++) {
        const fr_metric_info *m = &pr_catalog[i];
        size_t k = i % PR_NMETRICS;
        if (!st->have[k]) {
            continue;
        }
        if (i < PR_NMETRICS) {
            snprintf(ns, sizeof(ns), PR_PREFIX "/%s/%s", st->name, strrchr(m->ns, '/') + 1);
        } else {
            snprintf(ns, sizeof(ns), "%s", m->ns);
        }
        if (!fr_ns_query_match(req->query, ns)) {
            continue;
        }
        if (fr_batch_add(req->out, ns, req->now_ns, pr_value(st, m, k), m->unit) == NULL) {
            return fr_error_set(err, FR_ENOMEM, ns, "process: out of memory");
        }
    }
    return rv;
}

const fr_collector_plugin fr_collector_process = {
    .abi = FR_PLUGIN_ABI,
    .name = "process",
    .version = 1,
    .description = "CPU, memory and I/O of one process chosen by name or pid file (the vRDMA "
                   "collector's metrics)",
    .ns_prefix = PR_PREFIX,
    .catalog = pr_catalog,
    .ncatalog = sizeof(pr_catalog) / sizeof(pr_catalog[0]),
    .policy = pr_policy,
    .npolicy = sizeof(pr_policy) / sizeof(pr_policy[0]),
    .config_size = sizeof(pr_config),
    .init = pr_init,
    .collect = pr_collect,
    .destroy = pr_destroy,
};
