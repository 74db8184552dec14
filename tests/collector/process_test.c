/* The process plugin: against a copy of a /proc tree (exact values,
 * utilization from CPU-time deltas, name and pid-file selection, restarts,
 * odd command names, kernel threads, unreadable and malformed files), and
 * against a real child process whose I/O counters grow between ticks. */
#include "file_plugin_harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern const fr_collector_plugin fr_collector_process;

#define P "/intel/process/"
#define V "/intel/vrdma/"

typedef struct ctx {
    char *dir;
    char proc[512];
    char kv_proc[600];
    char pid_file[600];
    char kv_pid_file[700];
    pid_t child;
    harness h;
} ctx;

static void copy_tree(const char *rel, const char *dst)
{
    char *full = NULL, src[4096];
    assert_true(asprintf(&full, "tests/collector/fixtures/%s", rel) > 0);
    DIR *d = opendir(tst_src(src, sizeof(src), full));
    free(full);
    assert_non_null(d);
    assert_true(mkdir(dst, 0755) == 0 || errno == EEXIST);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        char *sub_rel = NULL, *sub_dst = NULL, *sub_src = NULL;
        assert_true(asprintf(&sub_rel, "%s/%s", rel, de->d_name) > 0);
        assert_true(asprintf(&sub_dst, "%s/%s", dst, de->d_name) > 0);
        assert_true(asprintf(&sub_src, "%s/%s", src, de->d_name) > 0);
        struct stat st;
        assert_int_equal(stat(sub_src, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            copy_tree(sub_rel, sub_dst);
        } else {
            harness_copy_fixture(sub_rel, sub_dst);
        }
        free(sub_rel);
        free(sub_dst);
        free(sub_src);
    }
    closedir(d);
}

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->dir = tst_tmpdir("fresco-process");
    assert_non_null(c->dir);
    snprintf(c->proc, sizeof(c->proc), "%s/proc", c->dir);
    snprintf(c->kv_proc, sizeof(c->kv_proc), "proc_path=%s", c->proc);
    snprintf(c->pid_file, sizeof(c->pid_file), "%s/vrdma.pid", c->dir);
    snprintf(c->kv_pid_file, sizeof(c->kv_pid_file), "pid_file=%s", c->pid_file);
    copy_tree("process/proc", c->proc);
    harness_copy_fixture("process/vrdma.pid", c->pid_file);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    harness_close(&c->h);
    if (c->child > 0) {
        tst_stop(c->child, SIGKILL, 5000);
    }
    tst_rmtree(c->dir);
    free(c->dir);
    free(c);
    return 0;
}

static void open_with(ctx *c, const char *a, const char *b)
{
    const char *kv[] = {c->kv_proc, a, b, NULL};
    assert_fr_ok(harness_open(&c->h, &fr_collector_process, kv));
}

/* Rewrites utime, stime and starttime in a fixture's stat file. */
static void set_stat(ctx *c, int pid, unsigned utime, unsigned stime, unsigned start)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%d/stat", c->proc, pid);
    char *text = harness_slurp(path);
    char *fields[64];
    int n = 0;
    /* Only for fixtures whose command name has no space. */
    for (char *save = NULL, *t = strtok_r(text, " \n", &save); t != NULL && n < 64;
         t = strtok_r(NULL, " \n", &save)) {
        fields[n++] = t;
    }
    assert_int_equal(n, 52);
    char u[32], s[32], st[32];
    snprintf(u, sizeof(u), "%u", utime);
    snprintf(s, sizeof(s), "%u", stime);
    snprintf(st, sizeof(st), "%u", start);
    fields[13] = u;
    fields[14] = s;
    fields[21] = st;
    char out[2048] = "";
    for (int i = 0; i < n; i++) {
        strcat(out, fields[i]);
        strcat(out, i + 1 < n ? " " : "\n");
    }
    assert_int_equal(tst_write_file(path, out, strlen(out)), 0);
    free(text);
}

static double memory_share(double rss_kb)
{
    return 100.0 * rss_kb / 16318588.0;
}

static void test_description(void **state)
{
    (void)state;
    harness_check_description(&fr_collector_process);
    harness_check_docs(&fr_collector_process);
    assert_int_equal(fr_collector_process.ncatalog, 20);
    /* The report's ten vRDMA metrics, as 64-bit integers. */
    static const char *const names[] = {"utilization", "memory",     "vsz",   "rss",
                                        "rchar",       "wchar",      "syscr", "syscw",
                                        "read_bytes",  "write_bytes"};
    for (size_t i = 0; i < 10; i++) {
        char ns[128];
        snprintf(ns, sizeof(ns), V "%s", names[i]);
        const fr_metric_info *m = &fr_collector_process.catalog[10 + i];
        assert_string_equal(m->ns, ns);
        assert_int_equal(m->type, FR_VAL_INT64);
        snprintf(ns, sizeof(ns), P "*/%s", names[i]);
        assert_string_equal(fr_collector_process.catalog[i].ns, ns);
    }
}

static void test_config_needs_a_process(void **state)
{
    ctx *c = *state;
    const char *kv[] = {c->kv_proc, NULL};
    assert_int_equal(harness_open(&c->h, &fr_collector_process, kv), FR_ECONFIG);
    assert_string_equal(c->h.err.where, "process_name");
}

static void test_by_name_exact_values(void **state)
{
    ctx *c = *state;
    open_with(c, "process_name=vrdma", NULL);
    assert_fr_ok(harness_collect1(&c->h, "/intel/*", HARNESS_SEC(1000)));
    /* The first tick has no utilization: 9 metrics in each namespace. Of
     * the two processes named vrdma the older one (4242) is chosen. */
    assert_int_equal(c->h.batch->nmetrics, 18);
    assert_null(harness_find(&c->h, P "vrdma/utilization"));
    assert_int_equal(harness_u64(&c->h, P "vrdma/vsz"), 403200ull * 1024);
    assert_int_equal(harness_u64(&c->h, P "vrdma/rss"), 9380ull * 1024);
    assert_true(harness_f64(&c->h, P "vrdma/memory") == memory_share(9380));
    assert_int_equal(harness_u64(&c->h, P "vrdma/rchar"), 323934931);
    assert_int_equal(harness_u64(&c->h, P "vrdma/wchar"), 323929600);
    assert_int_equal(harness_u64(&c->h, P "vrdma/syscr"), 632687);
    assert_int_equal(harness_u64(&c->h, P "vrdma/syscw"), 632675);
    assert_int_equal(harness_u64(&c->h, P "vrdma/read_bytes"), 4096);
    assert_int_equal(harness_u64(&c->h, P "vrdma/write_bytes"), 323932160);
    assert_int_equal(harness_i64(&c->h, V "rss"), 9380ll * 1024);
    assert_int_equal(harness_i64(&c->h, V "rchar"), 323934931);
    assert_int_equal(harness_i64(&c->h, V "memory"), 0); /* 0.057 % rounded */

    /* 200 ticks of CPU time in 2 s. */
    set_stat(c, 4242, 400, 180, 98765);
    assert_fr_ok(harness_collect1(&c->h, "/intel/*", HARNESS_SEC(1002)));
    assert_int_equal(c->h.batch->nmetrics, 20);
    double clk = (double)sysconf(_SC_CLK_TCK);
    double want = 100.0 * (200.0 / clk) / 2.0;
    assert_true(harness_f64(&c->h, P "vrdma/utilization") == want);
    assert_int_equal(harness_i64(&c->h, V "utilization"), (int64_t)llround(want));
    assert_string_equal(harness_get(&c->h, V "utilization")->unit, "percent");
}

static void test_queries(void **state)
{
    ctx *c = *state;
    open_with(c, "process_name=vrdma", NULL);
    const char *q[] = {V "(rss;vsz)", P "*/syscr", NULL};
    assert_fr_ok(harness_collect(&c->h, q, HARNESS_SEC(1)));
    assert_int_equal(c->h.batch->nmetrics, 3);
    assert_int_equal(harness_i64(&c->h, V "vsz"), 403200ll * 1024);
    assert_int_equal(harness_u64(&c->h, P "vrdma/syscr"), 632687);

    assert_fr_ok(harness_collect1(&c->h, V "*", HARNESS_SEC(2)));
    assert_int_equal(c->h.batch->nmetrics, 10);
    assert_fr_ok(harness_collect1(&c->h, P "other/*", HARNESS_SEC(3)));
    assert_int_equal(c->h.batch->nmetrics, 0);
}

static void test_restart_and_pid_reuse(void **state)
{
    ctx *c = *state;
    open_with(c, "process_name=vrdma", NULL);
    assert_fr_ok(harness_collect1(&c->h, P "*", HARNESS_SEC(10)));
    set_stat(c, 4242, 300, 150, 98765);
    assert_fr_ok(harness_collect1(&c->h, P "*", HARNESS_SEC(11)));
    assert_non_null(harness_find(&c->h, P "vrdma/utilization"));

    /* 4242 exits: the other vrdma takes over, without a utilization for
     * this tick (its CPU time is not comparable with 4242's). */
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/4242", c->proc);
    tst_rmtree(dir);
    assert_fr_ok(harness_collect1(&c->h, P "*", HARNESS_SEC(12)));
    assert_null(harness_find(&c->h, P "vrdma/utilization"));
    assert_int_equal(harness_u64(&c->h, P "vrdma/rchar"), 1048576);
    assert_int_equal(harness_u64(&c->h, P "vrdma/rss"), 8404ull * 1024);
    set_stat(c, 4300, 112, 7, 1234567);
    assert_fr_ok(harness_collect1(&c->h, P "*", HARNESS_SEC(13)));
    double clk = (double)sysconf(_SC_CLK_TCK);
    assert_true(harness_f64(&c->h, P "vrdma/utilization") == 100.0 * (100.0 / clk) / 1.0);

    /* The same pid, but a process started later: a new process. */
    set_stat(c, 4300, 5, 1, 2000000);
    assert_fr_ok(harness_collect1(&c->h, P "*", HARNESS_SEC(14)));
    assert_null(harness_find(&c->h, P "vrdma/utilization"));
    assert_int_equal(c->h.batch->nmetrics, 9);
}

static void test_pid_file(void **state)
{
    ctx *c = *state;
    open_with(c, c->kv_pid_file, NULL);
    assert_fr_ok(harness_collect1(&c->h, P "*", HARNESS_SEC(1)));
    /* Named after the pid file's process. */
    assert_int_equal(harness_u64(&c->h, P "vrdma/syscw"), 632675);

    /* The service restarts and rewrites its pid file. */
    assert_int_equal(tst_write_file(c->pid_file, "4300\n", 5), 0);
    assert_fr_ok(harness_collect1(&c->h, P "*", HARNESS_SEC(2)));
    assert_int_equal(harness_u64(&c->h, P "vrdma/syscw"), 1024);

    /* A pid file naming a process that is gone. */
    assert_int_equal(tst_write_file(c->pid_file, "999999\n", 7), 0);
    assert_int_equal(harness_collect1(&c->h, P "*", HARNESS_SEC(3)), FR_ENOTFOUND);
    assert_non_null(strstr(c->h.err.message, "999999"));

    assert_int_equal(tst_write_file(c->pid_file, "pid=4300\n", 9), 0);
    assert_int_equal(harness_collect1(&c->h, P "*", HARNESS_SEC(4)), FR_EINVAL);
    char where[800];
    snprintf(where, sizeof(where), "%s:1", c->pid_file);
    assert_string_equal(c->h.err.where, where);
}

static void test_stale_pid_file(void **state)
{
    ctx *c = *state;
    assert_int_equal(tst_write_file(c->pid_file, "1\n", 2), 0);
    open_with(c, c->kv_pid_file, "process_name=vrdma");
    assert_int_equal(harness_collect1(&c->h, P "*", HARNESS_SEC(1)), FR_ENOTFOUND);
    assert_non_null(strstr(c->h.err.message, "'systemd', not 'vrdma'"));
    assert_int_equal(c->h.batch->nmetrics, 0);
}

static void test_odd_names_and_kernel_threads(void **state)
{
    ctx *c = *state;
    assert_int_equal(tst_write_file(c->pid_file, "777\n", 4), 0);
    open_with(c, c->kv_pid_file, NULL);
    assert_fr_ok(harness_collect1(&c->h, P "*", HARNESS_SEC(1)));
    /* "my (odd) proc": parentheses and spaces cannot be in an element. */
    assert_int_equal(harness_u64(&c->h, P "my__odd__proc/rss"), 2048ull * 1024);
    assert_int_equal(harness_u64(&c->h, P "my__odd__proc/syscw"), 4);
    harness_close(&c->h);

    /* A kernel thread has no memory of its own: only its I/O counters. */
    assert_int_equal(tst_write_file(c->pid_file, "1234\n", 5), 0);
    open_with(c, c->kv_pid_file, NULL);
    assert_fr_ok(harness_collect1(&c->h, "/intel/process/*", HARNESS_SEC(1)));
    assert_int_equal(c->h.batch->nmetrics, 6);
    assert_int_equal(harness_u64(&c->h, P "kworker_0:1/rchar"), 0);
    assert_null(harness_find(&c->h, P "kworker_0:1/rss"));
}

static void test_unreadable_and_malformed_files(void **state)
{
    ctx *c = *state;
    open_with(c, c->kv_pid_file, NULL);
    /* io is root's only for another user's process: what else can be read
     * is still emitted, and the failure names the file. */
    char path[1024];
    snprintf(path, sizeof(path), "%s/4242/io", c->proc);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(harness_collect1(&c->h, P "*", HARNESS_SEC(1)), FR_ENOTFOUND);
    assert_string_equal(c->h.err.where, path);
    assert_int_equal(c->h.batch->nmetrics, 3); /* memory, vsz, rss */

    snprintf(path, sizeof(path), "%s/4242/stat", c->proc);
    const char *bad = "4242 (vrdma) S 1 4242 4242 0 -1 4194560 2915 0 3 0 2x0 130\n";
    assert_int_equal(tst_write_file(path, bad, strlen(bad)), 0);
    assert_int_equal(harness_collect1(&c->h, P "*", HARNESS_SEC(2)), FR_EINVAL);
    assert_string_equal(c->h.err.where, path);
    assert_non_null(strstr(c->h.err.message, "field 14"));

    bad = "4242 (vrdma) S 1 4242\n";
    assert_int_equal(tst_write_file(path, bad, strlen(bad)), 0);
    assert_int_equal(harness_collect1(&c->h, P "*", HARNESS_SEC(3)), FR_EINVAL);
    assert_non_null(strstr(c->h.err.message, "22 expected"));
}

static void test_no_such_process(void **state)
{
    ctx *c = *state;
    open_with(c, "process_name=nosuchdaemon", NULL);
    assert_int_equal(harness_collect1(&c->h, P "*", HARNESS_SEC(1)), FR_ENOTFOUND);
    assert_non_null(strstr(c->h.err.message, "'nosuchdaemon'"));
    assert_non_null(strstr(c->h.err.message, c->proc));
}

/* A child that reads, writes and burns CPU until killed. */
static pid_t start_busy_child(const char *name)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_NAME, name, 0, 0, 0);
        int in = open("/proc/self/stat", O_RDONLY);
        int out = open("/dev/null", O_WRONLY);
        char buf[512];
        for (;;) {
            ssize_t n = pread(in, buf, sizeof(buf), 0);
            if (n > 0 && write(out, buf, (size_t)n) < 0) {
                _exit(1);
            }
            for (volatile int spin = 0; spin < 20000; spin++) {
            }
        }
    }
    return pid;
}

static bool child_named(void *arg)
{
    const char *const *a = arg;
    char path[64], buf[64] = "";
    snprintf(path, sizeof(path), "/proc/%s/comm", a[0]);
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return false;
    }
    bool ok = fgets(buf, sizeof(buf), f) != NULL && strncmp(buf, a[1], strlen(a[1])) == 0;
    fclose(f);
    return ok;
}

static void wait_named(pid_t pid, const char *name)
{
    char spid[32];
    snprintf(spid, sizeof(spid), "%d", (int)pid);
    const char *arg[] = {spid, name};
    assert_true(tst_wait_until(child_named, (void *)arg, 5000));
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void test_real_child_process(void **state)
{
    ctx *c = *state;
    char name[16], kv_name[64];
    snprintf(name, sizeof(name), "frpt%d", (int)(getpid() % 10000000));
    snprintf(kv_name, sizeof(kv_name), "process_name=%s", name);
    c->child = start_busy_child(name);
    wait_named(c->child, name);

    const char *kv[] = {kv_name, NULL};
    assert_fr_ok(harness_open(&c->h, &fr_collector_process, kv));
    char ns[128];
    assert_fr_ok(harness_collect1(&c->h, "/intel/*", now_ns()));
    snprintf(ns, sizeof(ns), P "%s/rchar", name);
    uint64_t rchar1 = harness_u64(&c->h, ns);
    snprintf(ns, sizeof(ns), P "%s/syscr", name);
    uint64_t syscr1 = harness_u64(&c->h, ns);
    snprintf(ns, sizeof(ns), P "%s/wchar", name);
    uint64_t wchar1 = harness_u64(&c->h, ns);
    snprintf(ns, sizeof(ns), P "%s/rss", name);
    assert_true(harness_u64(&c->h, ns) > 0);
    snprintf(ns, sizeof(ns), P "%s/vsz", name);
    assert_true(harness_u64(&c->h, ns) > 0);

    struct timespec d = {0, 300 * 1000000};
    nanosleep(&d, NULL);
    assert_fr_ok(harness_collect1(&c->h, "/intel/*", now_ns()));
    snprintf(ns, sizeof(ns), P "%s/rchar", name);
    assert_true(harness_u64(&c->h, ns) > rchar1);
    snprintf(ns, sizeof(ns), P "%s/syscr", name);
    assert_true(harness_u64(&c->h, ns) > syscr1);
    snprintf(ns, sizeof(ns), P "%s/wchar", name);
    assert_true(harness_u64(&c->h, ns) > wchar1);
    assert_true(harness_i64(&c->h, V "rchar") > (int64_t)rchar1);
    /* It spins: busy, but on one thread. */
    snprintf(ns, sizeof(ns), P "%s/utilization", name);
    double u = harness_f64(&c->h, ns);
    assert_true(u > 5.0 && u < 150.0);

    /* Restarted: the new process is found on the next tick. */
    tst_stop(c->child, SIGKILL, 5000);
    pid_t old = c->child;
    c->child = start_busy_child(name);
    wait_named(c->child, name);
    assert_true(c->child != old);
    assert_fr_ok(harness_collect1(&c->h, "/intel/*", now_ns()));
    snprintf(ns, sizeof(ns), P "%s/utilization", name);
    assert_null(harness_find(&c->h, ns));
    snprintf(ns, sizeof(ns), P "%s/rchar", name);
    assert_non_null(harness_find(&c->h, ns));
    nanosleep(&d, NULL);
    assert_fr_ok(harness_collect1(&c->h, "/intel/*", now_ns()));
    snprintf(ns, sizeof(ns), P "%s/utilization", name);
    assert_true(harness_f64(&c->h, ns) > 5.0);

    /* Chosen by pid file instead. */
    harness_close(&c->h);
    char pid_text[32];
    snprintf(pid_text, sizeof(pid_text), "%d\n", (int)c->child);
    assert_int_equal(tst_write_file(c->pid_file, pid_text, strlen(pid_text)), 0);
    const char *kv2[] = {c->kv_pid_file, NULL};
    assert_fr_ok(harness_open(&c->h, &fr_collector_process, kv2));
    assert_fr_ok(harness_collect1(&c->h, V "*", now_ns()));
    assert_int_equal(c->h.batch->nmetrics, 9);
    assert_true(harness_i64(&c->h, V "syscr") > 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_description),
        T(test_config_needs_a_process),
        T(test_by_name_exact_values),
        T(test_queries),
        T(test_restart_and_pid_reuse),
        T(test_pid_file),
        T(test_stale_pid_file),
        T(test_odd_names_and_kernel_threads),
        T(test_unreadable_and_malformed_files),
        T(test_no_such_process),
        T(test_real_child_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
