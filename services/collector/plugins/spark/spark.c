/* spark: Apache Spark's own metrics, from the files of its CSV sink.
 *
 * Spark's CsvSink (metrics.properties: *.sink.csv.class=...CsvSink,
 * *.sink.csv.directory=DIR) appends one row per period to one file per
 * metric, named after the metric's registry name:
 *   master.waitingApps.csv                             t,value
 *   worker.coresFree.csv                               1490000010,4
 *   application.<name>.<start ms>.status.csv          (on the master)
 *   <app id>.<driver id>.BlockManager.memory.maxMem_MB.csv
 *   <app id>.<executor id>.executor.threadpool.activeTasks.csv
 * where the driver's id is "<driver>" before Spark 2.0 and "driver" since.
 * Each tick the directory is listed, every file whose metric is in the
 * catalog (and asked for) is read from where the last tick stopped, and
 * its latest row is emitted with the row's own timestamp under the
 * namespaces of the MIKELANGELO Spark plugin (/gwdg/spark/...). Executor
 * metrics carry the executor id as the tag "executor". */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/plugin.h"
#include "logtail.h"

#define SP_PREFIX      "/gwdg/spark"
#define SP_MAX_ELEMENT 200 /* bytes of an application or driver element */
#define SP_MAX_STRING  64  /* bytes of a string value (an application's state) */

typedef struct sp_config {
    char *csv_dir;
    int64_t max_read;
} sp_config;

static const fr_cfg_field sp_policy[] = {
    {"csv_dir", FR_CFG_STRING, "/tmp", offsetof(sp_config, csv_dir),
     "the CsvSink's directory (*.sink.csv.directory; Spark's default is /tmp)", 0, 0, NULL},
    {"max_read", FR_CFG_SIZE, "1MiB", offsetof(sp_config, max_read),
     "most bytes read from one file per tick; an older backlog is skipped", 4096, (int64_t)1 << 30,
     NULL},
};

typedef enum sp_kind {
    SP_MASTER,      /* master.<name> */
    SP_WORKER,      /* worker.<name> */
    SP_APPLICATION, /* application.<app name>.<start ms>.<name> */
    SP_EXECUTOR,    /* <app id>.<executor id>.executor.<name> */
    SP_DRIVER,      /* <app id>.<driver id>.<name> */
} sp_kind;

static const fr_dyn_info sp_dyn_application[] = {
    {"application", "application name and start time in ms, as the master's source names it "
                    "(MyApp.1490000000000)"},
};
static const fr_dyn_info sp_dyn_app[] = {
    {"app", "application id (app-20170110154010-0000, application_1490000000000_0001, "
            "local-1490000000000)"},
};
static const fr_dyn_info sp_dyn_driver[] = {
    {"app", "application id (app-20170110154010-0000, application_1490000000000_0001, "
            "local-1490000000000)"},
    {"driver", "the driver's executor id: <driver> before Spark 2.0, driver since"},
};

#define SP_DYN_SP_MASTER      NULL, 0
#define SP_DYN_SP_WORKER      NULL, 0
#define SP_DYN_SP_APPLICATION sp_dyn_application, 1
#define SP_DYN_SP_EXECUTOR    sp_dyn_app, 1
#define SP_DYN_SP_DRIVER      sp_dyn_driver, 2

/* kind, Spark's metric name (after the source's prefix), namespace, type,
 * unit, description. The catalog and the name table are built from this one
 * list so they cannot drift apart. */
#define SP_METRICS(X)                                                                              \
    X(SP_MASTER, "workers", "/master/workers", FR_VAL_INT64, "",                                   \
      "workers registered with the master")                                                        \
    X(SP_MASTER, "aliveWorkers", "/master/aliveworkers", FR_VAL_INT64, "",                         \
      "registered workers that are alive (Spark 1.4 and later)")                                   \
    X(SP_MASTER, "apps", "/master/apps", FR_VAL_INT64, "", "applications the master knows")        \
    X(SP_MASTER, "waitingApps", "/master/waitingapps", FR_VAL_INT64, "",                           \
      "applications waiting for resources")                                                        \
    X(SP_WORKER, "coresFree", "/worker/coresfree", FR_VAL_INT64, "", "cores free on the worker")   \
    X(SP_WORKER, "coresUsed", "/worker/coresused", FR_VAL_INT64, "", "cores used on the worker")   \
    X(SP_WORKER, "executors", "/worker/executors", FR_VAL_INT64, "",                               \
      "executors running on the worker")                                                           \
    X(SP_WORKER, "memFree_MB", "/worker/memfreemb", FR_VAL_INT64, "MB",                            \
      "memory free on the worker")                                                                 \
    X(SP_WORKER, "memUsed_MB", "/worker/memusedmb", FR_VAL_INT64, "MB",                            \
      "memory used on the worker")                                                                 \
    X(SP_APPLICATION, "cores", "/application/*/cores", FR_VAL_INT64, "",                           \
      "cores granted to the application")                                                          \
    X(SP_APPLICATION, "runtime_ms", "/application/*/runtime_ms", FR_VAL_INT64, "ms",               \
      "time since the application started")                                                        \
    X(SP_APPLICATION, "status", "/application/*/status", FR_VAL_STRING, "",                        \
      "application state (WAITING, RUNNING, FINISHED, FAILED, KILLED, UNKNOWN)")                   \
    X(SP_EXECUTOR, "filesystem.file.largeRead_ops",                                                \
      "/app/*/executor/filesystem/file/largeRead_ops", FR_VAL_INT64, "",                           \
      "large read operations on the local file system")                                            \
    X(SP_EXECUTOR, "filesystem.file.read_bytes", "/app/*/executor/filesystem/file/read_bytes",     \
      FR_VAL_INT64, "bytes", "bytes read from the local file system")                              \
    X(SP_EXECUTOR, "filesystem.file.read_ops", "/app/*/executor/filesystem/file/read_ops",         \
      FR_VAL_INT64, "", "read operations on the local file system")                                \
    X(SP_EXECUTOR, "filesystem.file.write_bytes", "/app/*/executor/filesystem/file/write_bytes",   \
      FR_VAL_INT64, "bytes", "bytes written to the local file system")                             \
    X(SP_EXECUTOR, "filesystem.file.write_ops", "/app/*/executor/filesystem/file/write_ops",       \
      FR_VAL_INT64, "", "write operations on the local file system")                               \
    X(SP_EXECUTOR, "filesystem.hdfs.largeRead_ops",                                                \
      "/app/*/executor/filesystem/hdfs/largeRead_ops", FR_VAL_INT64, "",                           \
      "large read operations on HDFS")                                                             \
    X(SP_EXECUTOR, "filesystem.hdfs.read_bytes", "/app/*/executor/filesystem/hdfs/read_bytes",     \
      FR_VAL_INT64, "bytes", "bytes read from HDFS")                                               \
    X(SP_EXECUTOR, "filesystem.hdfs.read_ops", "/app/*/executor/filesystem/hdfs/read_ops",         \
      FR_VAL_INT64, "", "read operations on HDFS")                                                 \
    X(SP_EXECUTOR, "filesystem.hdfs.write_bytes", "/app/*/executor/filesystem/hdfs/write_bytes",   \
      FR_VAL_INT64, "bytes", "bytes written to HDFS")                                              \
    X(SP_EXECUTOR, "filesystem.hdfs.write_ops", "/app/*/executor/filesystem/hdfs/write_ops",       \
      FR_VAL_INT64, "", "write operations on HDFS")                                                \
    X(SP_EXECUTOR, "threadpool.activeTasks", "/app/*/executor/threadpool/activeTasks",             \
      FR_VAL_INT64, "", "tasks the executor is running")                                           \
    X(SP_EXECUTOR, "threadpool.completeTasks", "/app/*/executor/threadpool/completeTasks",         \
      FR_VAL_INT64, "", "tasks the executor has completed")                                        \
    X(SP_EXECUTOR, "threadpool.currentPool_size", "/app/*/executor/threadpool/currentPool_size",   \
      FR_VAL_INT64, "", "threads in the executor's task pool")                                     \
    X(SP_EXECUTOR, "threadpool.maxPool_size", "/app/*/executor/threadpool/maxPool_size",           \
      FR_VAL_INT64, "", "most threads the executor's task pool may have")                          \
    X(SP_DRIVER, "BlockManager.disk.diskSpaceUsed_MB",                                             \
      "/app/*/*/BlockManager/disk/diskSpaceUsed_MB", FR_VAL_INT64, "MB",                           \
      "disk used by the block managers")                                                           \
    X(SP_DRIVER, "BlockManager.memory.maxMem_MB", "/app/*/*/BlockManager/memory/maxMem_MB",        \
      FR_VAL_INT64, "MB", "storage memory of the block managers")                                  \
    X(SP_DRIVER, "BlockManager.memory.memUsed_MB", "/app/*/*/BlockManager/memory/memUsed_MB",      \
      FR_VAL_INT64, "MB", "storage memory in use")                                                 \
    X(SP_DRIVER, "BlockManager.memory.remainingMem_MB",                                            \
      "/app/*/*/BlockManager/memory/remainingMem_MB", FR_VAL_INT64, "MB",                          \
      "storage memory still free")                                                                 \
    X(SP_DRIVER, "DAGScheduler.job.activeJobs", "/app/*/*/DAGScheduler/job/activeJobs",            \
      FR_VAL_INT64, "", "jobs running")                                                            \
    X(SP_DRIVER, "DAGScheduler.job.allJobs", "/app/*/*/DAGScheduler/job/allJobs", FR_VAL_INT64,    \
      "", "jobs submitted so far")                                                                 \
    X(SP_DRIVER, "DAGScheduler.stage.failedStages", "/app/*/*/DAGScheduler/stage/failedStages",    \
      FR_VAL_INT64, "", "stages that failed")                                                      \
    X(SP_DRIVER, "DAGScheduler.stage.runningStages", "/app/*/*/DAGScheduler/stage/runningStages",  \
      FR_VAL_INT64, "", "stages running")                                                          \
    X(SP_DRIVER, "DAGScheduler.stage.waitingStages", "/app/*/*/DAGScheduler/stage/waitingStages",  \
      FR_VAL_INT64, "", "stages waiting for their parents")

#define SP_CATALOG_ENTRY(kind, spark, ns, type, unit, desc)                                        \
    {SP_PREFIX ns, type, unit, desc, SP_DYN_##kind},
#define SP_NAME_ENTRY(kind, spark, ns, type, unit, desc) {kind, spark},

static const fr_metric_info sp_catalog[] = {SP_METRICS(SP_CATALOG_ENTRY)};

typedef struct sp_name {
    sp_kind kind;
    const char *spark;
} sp_name;

static const sp_name sp_names[] = {SP_METRICS(SP_NAME_ENTRY)};

#define SP_NCATALOG (sizeof(sp_catalog) / sizeof(sp_catalog[0]))

/* One metric file being followed. */
typedef struct sp_file {
    char *name; /* file name in csv_dir */
    char *path;
    char *ns;
    char *executor; /* executor id tag, or NULL */
    size_t cat;     /* index into sp_catalog */
    logtail tail;
    size_t value_col; /* column of the value: from the header, 1 until one is seen */
    bool fresh;       /* a row arrived since the last tick */
    bool seen;        /* listed by this tick's scan */
    int64_t ts_ns;
    fr_value value;
    char str[SP_MAX_STRING];
} sp_file;

typedef struct sp_state {
    const sp_config *cfg;
    char *scratch;
    sp_file **files; /* sorted by name */
    size_t nfiles, capfiles;
} sp_state;

/* A metric file's identity, from its name. */
typedef struct sp_ident {
    size_t cat;
    char ns[FR_MAX_NAMESPACE];
    char executor[SP_MAX_ELEMENT];
    bool has_executor;
} sp_ident;

static const sp_name *sp_lookup(sp_kind kind, const char *spark, size_t len, size_t *cat)
{
    for (size_t i = 0; i < SP_NCATALOG; i++) {
        if (sp_names[i].kind == kind && strlen(sp_names[i].spark) == len &&
            memcmp(sp_names[i].spark, spark, len) == 0) {
            *cat = i;
            return &sp_names[i];
        }
    }
    return NULL;
}

/* Copies len bytes of a name part as one namespace element: characters
 * that would split or pattern a namespace become '_'. False when empty or
 * too long. */
static bool sp_element(char *dst, size_t cap, const char *src, size_t len)
{
    if (len == 0 || len >= cap) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        bool bad =
            c == '/' || c == '*' || c == '(' || c == ')' || c == ';' || isspace(c) || iscntrl(c);
        dst[i] = bad ? '_' : (char)c;
    }
    dst[len] = '\0';
    return true;
}

/* Fills ns from the catalog pattern, putting elements in for its '*'s. */
static bool sp_fill(char *ns, size_t cap, const char *pattern, const char *const *els, size_t nels)
{
    size_t n = 0, k = 0;
    for (const char *p = pattern; *p != '\0'; p++) {
        const char *add = p;
        size_t len = 1;
        if (*p == '*' && p[-1] == '/' && (p[1] == '/' || p[1] == '\0')) {
            if (k == nels) {
                return false;
            }
            add = els[k++];
            len = strlen(add);
        }
        if (n + len >= cap) {
            return false;
        }
        memcpy(ns + n, add, len);
        n += len;
    }
    ns[n] = '\0';
    return k == nels;
}

/* Finds the last occurrence of the '.'-separated word w in s[0, len). */
static const char *sp_find_word(const char *s, size_t len, const char *w)
{
    size_t wl = strlen(w);
    const char *found = NULL;
    for (const char *p = s; p + wl + 2 <= s + len; p++) {
        if (p[0] == '.' && memcmp(p + 1, w, wl) == 0 && p[wl + 1] == '.') {
            found = p;
        }
    }
    return found;
}

/* Parses "<app>.<id>.<rest>" where sep points at ".<word>." right after
 * <id>, or at the '.' after <id> when word is empty. */
static bool sp_split_app_id(const char *base, const char *dot_after_id, char *app, char *id)
{
    const char *id_start = dot_after_id;
    while (id_start > base && id_start[-1] != '.') {
        id_start--;
    }
    if (id_start <= base + 1) {
        return false;
    }
    return sp_element(app, SP_MAX_ELEMENT, base, (size_t)(id_start - 1 - base)) &&
           sp_element(id, SP_MAX_ELEMENT, id_start, (size_t)(dot_after_id - id_start));
}

static bool sp_identify(const char *fname, sp_ident *id)
{
    size_t len = strlen(fname);
    if (len <= 4 || strcmp(fname + len - 4, ".csv") != 0) {
        return false;
    }
    len -= 4;
    char a[SP_MAX_ELEMENT], b[SP_MAX_ELEMENT];
    const char *els[2] = {a, b};
    size_t nels = 0;
    id->has_executor = false;

    if (len > 7 && strncmp(fname, "master.", 7) == 0) {
        if (sp_lookup(SP_MASTER, fname + 7, len - 7, &id->cat) == NULL) {
            return false;
        }
    } else if (len > 7 && strncmp(fname, "worker.", 7) == 0) {
        if (sp_lookup(SP_WORKER, fname + 7, len - 7, &id->cat) == NULL) {
            return false;
        }
    } else if (len > 12 && strncmp(fname, "application.", 12) == 0) {
        /* application.<name>.<start ms>.<metric>; the name may hold dots. */
        const char *end = fname + len;
        const char *m = end;
        while (m > fname && m[-1] != '.') {
            m--;
        }
        const char *t = m - 1;
        while (t > fname && t[-1] != '.') {
            t--;
        }
        const char *name = fname + 12;
        if (t <= name + 1 || m - 1 == t || strspn(t, "0123456789") != (size_t)(m - 1 - t) ||
            sp_lookup(SP_APPLICATION, m, (size_t)(end - m), &id->cat) == NULL ||
            !sp_element(a, sizeof(a), name, (size_t)(m - 1 - name))) {
            return false;
        }
        nels = 1;
    } else {
        const char *ex = sp_find_word(fname, len, "executor");
        const char *bm = sp_find_word(fname, len, "BlockManager");
        const char *dag = sp_find_word(fname, len, "DAGScheduler");
        const char *drv = bm != NULL ? bm : dag;
        if (ex != NULL) {
            const char *rest = ex + 10;
            if (sp_lookup(SP_EXECUTOR, rest, (size_t)(fname + len - rest), &id->cat) == NULL ||
                !sp_split_app_id(fname, ex, a, id->executor)) {
                return false;
            }
            id->has_executor = true;
            nels = 1;
        } else if (drv != NULL) {
            const char *rest = drv + 1;
            if (sp_lookup(SP_DRIVER, rest, (size_t)(fname + len - rest), &id->cat) == NULL ||
                !sp_split_app_id(fname, drv, a, b)) {
                return false;
            }
            nels = 2;
        } else {
            return false;
        }
    }
    return sp_fill(id->ns, sizeof(id->ns), sp_catalog[id->cat].ns, els, nels);
}

static void sp_file_free(sp_file *f)
{
    if (f == NULL) {
        return;
    }
    logtail_close(&f->tail);
    free(f->name);
    free(f->path);
    free(f->ns);
    free(f->executor);
    free(f);
}

static sp_file *sp_file_new(const sp_state *st, const char *name, const sp_ident *id)
{
    sp_file *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return NULL;
    }
    size_t plen = strlen(st->cfg->csv_dir) + strlen(name) + 2;
    f->name = strdup(name);
    f->path = malloc(plen);
    f->ns = strdup(id->ns);
    f->executor = id->has_executor ? strdup(id->executor) : NULL;
    if (f->name == NULL || f->path == NULL || f->ns == NULL ||
        (id->has_executor && f->executor == NULL)) {
        sp_file_free(f);
        return NULL;
    }
    snprintf(f->path, plen, "%s/%s", st->cfg->csv_dir, name);
    f->cat = id->cat;
    f->value_col = 1;
    /* Closed between ticks: a busy cluster leaves thousands of files. */
    logtail_init(&f->tail, f->path, (uint64_t)st->cfg->max_read, false);
    return f;
}

static char *sp_trim(char *s)
{
    while (isspace((unsigned char)*s)) {
        s++;
    }
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) {
        *--e = '\0';
    }
    return s;
}

/* Splits line at commas into at most cap fields (trimmed). */
static size_t sp_split(char *line, char **fields, size_t cap)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma != NULL) {
            *comma = '\0';
        }
        if (n < cap) {
            fields[n] = sp_trim(p);
        }
        n++;
        if (comma == NULL) {
            return n;
        }
        p = comma + 1;
    }
}

static bool sp_parse_int(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end != s && *end == '\0' && errno == 0) {
        *out = v;
        return true;
    }
    /* Dropwizard prints a Double gauge as "3.0". */
    double d = strtod(s, &end);
    if (end != s && *end == '\0' && d == (double)(int64_t)d && d > -9.2e18 && d < 9.2e18) {
        *out = (int64_t)d;
        return true;
    }
    return false;
}

static int sp_parse_line(void *arg, char *line, size_t len, const char *where, fr_error *err)
{
    sp_file *f = arg;
    char *fields[16];
    size_t n = sp_split(line, fields, 16);
    if (n == 1 && fields[0][0] == '\0') {
        return 0;
    }
    if (strcmp(fields[0], "t") == 0) {
        /* Header: gauges write "t,value", counters "t,count", meters more. */
        for (size_t i = 1; i < n && i < 16; i++) {
            if (strcmp(fields[i], "value") == 0 || strcmp(fields[i], "count") == 0) {
                f->value_col = i;
                return 0;
            }
        }
        return fr_error_set(err, FR_EINVAL, where, "%s: header has no value or count column",
                            where);
    }
    if (n <= f->value_col || n > 16) {
        return fr_error_set(err, FR_EINVAL, where, "%s: row has %zu columns, the value is in %zu",
                            where, n, f->value_col + 1);
    }
    int64_t t;
    char *end;
    errno = 0;
    t = strtoll(fields[0], &end, 10);
    if (end == fields[0] || *end != '\0' || errno != 0 || t < 0 || t > INT64_MAX / 1000000000) {
        return fr_error_set(err, FR_EINVAL, where,
                            "%s: time '%.32s' is not seconds since the epoch", where, fields[0]);
    }
    const char *val = fields[f->value_col];
    const fr_metric_info *m = &sp_catalog[f->cat];
    if (m->type == FR_VAL_STRING) {
        if (val[0] == '\0' || strlen(val) >= sizeof(f->str)) {
            return fr_error_set(err, FR_EINVAL, where, "%s: value '%.32s' is empty or too long",
                                where, val);
        }
        memcpy(f->str, val, strlen(val) + 1);
        f->value = fr_val_str(f->str);
    } else {
        int64_t v;
        if (!sp_parse_int(val, &v)) {
            return fr_error_set(err, FR_EINVAL, where, "%s: value '%.32s' is not an integer", where,
                                val);
        }
        f->value = fr_val_i64(v);
    }
    f->ts_ns = t * 1000000000;
    f->fresh = true;
    return 0;
}

static int sp_cmp_name(const void *a, const void *b)
{
    return strcmp((*(sp_file *const *)a)->name, (*(sp_file *const *)b)->name);
}

static sp_file *sp_find(sp_state *st, const char *name)
{
    size_t lo = 0, hi = st->nfiles;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->files[mid]->name, name);
        if (c == 0) {
            return st->files[mid];
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

static int sp_add(sp_state *st, sp_file *f)
{
    if (st->nfiles == st->capfiles) {
        size_t cap = st->capfiles ? st->capfiles * 2 : 32;
        sp_file **v = realloc(st->files, cap * sizeof(*v));
        if (v == NULL) {
            return FR_ENOMEM;
        }
        st->files = v;
        st->capfiles = cap;
    }
    st->files[st->nfiles++] = f;
    return 0;
}

/* Lists csv_dir: follows new metric files the query wants, forgets those
 * that are gone. */
static int sp_scan(sp_state *st, const fr_ns_query *q, fr_error *err)
{
    DIR *d = opendir(st->cfg->csv_dir);
    if (d == NULL) {
        int e = errno;
        return fr_error_set(err, e == ENOENT ? FR_ENOTFOUND : FR_EIO, st->cfg->csv_dir, "%s: %s",
                            st->cfg->csv_dir, strerror(e));
    }
    for (size_t i = 0; i < st->nfiles; i++) {
        st->files[i]->seen = false;
    }
    size_t old = st->nfiles;
    sp_ident *id = malloc(sizeof(*id));
    int rv = id == NULL ? FR_ENOMEM : 0;
    struct dirent *de;
    while (rv == 0 && (de = readdir(d)) != NULL) {
        sp_file *f = NULL;
        if (de->d_name[0] == '.' || !sp_identify(de->d_name, id) || !fr_ns_query_match(q, id->ns)) {
            continue;
        }
        /* Files added this scan are unsorted past `old`; they are new names. */
        size_t keep = st->nfiles;
        st->nfiles = old;
        f = sp_find(st, de->d_name);
        st->nfiles = keep;
        if (f != NULL) {
            f->seen = true;
            continue;
        }
        f = sp_file_new(st, de->d_name, id);
        if (f == NULL || sp_add(st, f) != 0) {
            sp_file_free(f);
            rv = FR_ENOMEM;
            break;
        }
        f->seen = true;
    }
    closedir(d);
    free(id);
    size_t n = 0;
    for (size_t i = 0; i < st->nfiles; i++) {
        if (st->files[i]->seen) {
            st->files[n++] = st->files[i];
        } else {
            sp_file_free(st->files[i]);
        }
    }
    st->nfiles = n;
    if (n > 1) {
        qsort(st->files, n, sizeof(*st->files), sp_cmp_name);
    }
    if (rv != 0) {
        return fr_error_set(err, rv, st->cfg->csv_dir, "spark: out of memory");
    }
    return 0;
}

static void sp_destroy(void *state)
{
    sp_state *st = state;
    if (st == NULL) {
        return;
    }
    for (size_t i = 0; i < st->nfiles; i++) {
        sp_file_free(st->files[i]);
    }
    free(st->files);
    free(st->scratch);
    free(st);
}

static int sp_init(void **state, const void *config, fr_error *err)
{
    const sp_config *cfg = config;
    *state = NULL;
    if (cfg->csv_dir == NULL || cfg->csv_dir[0] == '\0') {
        return fr_error_set(err, FR_ECONFIG, "csv_dir", "spark: csv_dir is empty");
    }
    sp_state *st = calloc(1, sizeof(*st));
    if (st == NULL || (st->scratch = malloc(LOGTAIL_CHUNK)) == NULL) {
        sp_destroy(st);
        return fr_error_set(err, FR_ENOMEM, "", "spark: out of memory");
    }
    st->cfg = cfg;
    *state = st;
    return 0;
}

static int sp_collect(void *state, const fr_collect_req *req, fr_error *err)
{
    sp_state *st = state;
    int rv = sp_scan(st, req->query, err);
    if (rv != 0) {
        return rv;
    }
    for (size_t i = 0; i < st->nfiles; i++) {
        sp_file *f = st->files[i];
        fr_error ferr;
        fr_error_clear(&ferr);
        int frv = logtail_poll(&f->tail, st->scratch, LOGTAIL_CHUNK, sp_parse_line, f, &ferr);
        /* A file that vanished since the scan is not a failure. */
        if (frv != 0 && frv != FR_ENOTFOUND && rv == 0) {
            rv = frv;
            *err = ferr;
        }
        if (!f->fresh) {
            continue;
        }
        f->fresh = false;
        const fr_metric_info *m = &sp_catalog[f->cat];
        fr_metric *out = fr_batch_add(req->out, f->ns, f->ts_ns, f->value, m->unit);
        if (out == NULL ||
            (f->executor != NULL && fr_batch_metric_tag(req->out, out, "executor", f->executor))) {
            return fr_error_set(err, FR_ENOMEM, f->ns, "spark: out of memory");
        }
    }
    return rv;
}

const fr_collector_plugin fr_collector_spark = {
    .abi = FR_PLUGIN_ABI,
    .name = "spark",
    .version = 1,
    .description = "Apache Spark master, worker, application, driver and executor metrics from "
                   "the files of Spark's CSV sink, read incrementally",
    .ns_prefix = SP_PREFIX,
    .catalog = sp_catalog,
    .ncatalog = SP_NCATALOG,
    .policy = sp_policy,
    .npolicy = sizeof(sp_policy) / sizeof(sp_policy[0]),
    .config_size = sizeof(sp_config),
    .init = sp_init,
    .collect = sp_collect,
    .destroy = sp_destroy,
};
