/* libvirt_collect: what collecting the report's libvirt task costs.
 *
 * The report's anchor: snap's libvirt collector used 1% of total CPU to
 * collect 1250 metrics/s from 50 domains. This runs fresco's libvirt plugin
 * over the 50-domain test-driver node (tests/collector/fixtures/libvirt/
 * node50.xml) with the report's 25 namespaces at a 1 s interval, in a child
 * process of its own, and then, in the same run and on the same file,
 * collectd's virt plugin (ExtraStats for vCPU, memory, pcpu, cpu_util and
 * domain state, so it reads about as many values; csv output to a
 * temporary directory). It prints for each: CPU time as % of one core over
 * the measured window (after a warm-up tick or two), peak RSS, values/s.
 *
 *   libvirt_collect [--seconds S] [--interval-ms MS] [--uri URI]
 *                   [--collectd PATH | --no-collectd] [--daemon-pid PID]
 *
 * Both connect in-process (test:///path.xml) by default. Through a daemon:
 * start libvirtd on a private socket, pass --uri
 * 'test+unix:///abs/node50.xml?socket=/tmp/x/libvirt-sock' and
 * --daemon-pid so that the daemon's CPU is counted too (the steps are in
 * the comment above daemon_usage()).
 *
 * fresco's CPU comes from getrusage in the child (microseconds); collectd's
 * from /proc/<pid>/stat (clock ticks: +-0.02% over 60 s). Figures are
 * printed, never asserted. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include "fresco/buf.h"
#include "fresco/log.h"
#include "fresco/metric.h"
#include "fresco/ns.h"
#include "fresco/plugin.h"

extern const fr_collector_plugin fr_collector_libvirt;

#ifndef FRESCO_SOURCE_DIR
#define FRESCO_SOURCE_DIR "."
#endif
#define NODE50 FRESCO_SOURCE_DIR "/tests/collector/fixtures/libvirt/node50.xml"

/* The report's libvirt task (section 3.1.3.1). */
static const char *const task_metrics[] = {
    "/intel/libvirt/*/cpu/*/cputime",
    "/intel/libvirt/*/cpu/cputime",
    "/intel/libvirt/*/disk/*/rdbytes",
    "/intel/libvirt/*/disk/*/rdreq",
    "/intel/libvirt/*/disk/*/wrbytes",
    "/intel/libvirt/*/disk/*/wrreq",
    "/intel/libvirt/*/memory/actual_balloon",
    "/intel/libvirt/*/memory/available",
    "/intel/libvirt/*/memory/major_fault",
    "/intel/libvirt/*/memory/max",
    "/intel/libvirt/*/memory/mem",
    "/intel/libvirt/*/memory/min_fault",
    "/intel/libvirt/*/memory/nr",
    "/intel/libvirt/*/memory/rss",
    "/intel/libvirt/*/memory/swap_in",
    "/intel/libvirt/*/memory/swap_out",
    "/intel/libvirt/*/memory/unused",
    "/intel/libvirt/*/network/*/rxbytes",
    "/intel/libvirt/*/network/*/rxdrop",
    "/intel/libvirt/*/network/*/rxerrs",
    "/intel/libvirt/*/network/*/rxpackets",
    "/intel/libvirt/*/network/*/txbytes",
    "/intel/libvirt/*/network/*/txdrop",
    "/intel/libvirt/*/network/*/txerrs",
    "/intel/libvirt/*/network/*/txpackets",
};
#define NTASK (sizeof(task_metrics) / sizeof(task_metrics[0]))

typedef struct opts {
    double seconds;
    int64_t interval_ms;
    char uri[4200];
    const char *collectd;
    pid_t daemon_pid;
} opts;

/* What a measured process did over the window. */
typedef struct figures {
    bool ok;
    double cpu_s;     /* CPU seconds in the window */
    double window_s;  /* wall seconds of the window */
    long peak_rss_kb; /* VmHWM */
    long anon_kb;     /* RssAnon at the end: the process's own memory, no shared libraries */
    double values;    /* values delivered in the window */
    double daemon_cpu_s;
    double tick_mean_ms, tick_max_ms;
} figures;

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double rusage_cpu_s(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
           (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

/* utime + stime of a process from /proc (all its threads), in seconds. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command may hold spaces */
    if (p == NULL) {
        return -1;
    }
    unsigned long long ut = 0, st = 0;
    /* fields after ')': state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) {
        return -1;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* A "Name: N kB" line of /proc/<pid>/status. */
static long proc_status_kb(pid_t pid, const char *name)
{
    char path[64], line[256], fmt[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    snprintf(fmt, sizeof(fmt), "%s: %%ld kB", name);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, fmt, &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return kb;
}

static void sleep_until(double t)
{
    double now = mono_s();
    if (t > now) {
        struct timespec ts = {(time_t)(t - now),
                              (long)((t - now - (double)(time_t)(t - now)) * 1e9)};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
    }
}

/* ---- fresco ----------------------------------------------------------- */

/* The child: one plugin instance, as a task would run it; each tick's
 * batch is encoded as the collector does before sending it. Writes its
 * figures to fd. With idle, it only connects (the baseline: libvirt and
 * its in-process test driver holding 50 domains, nothing collected). */
static int fresco_child(const opts *o, bool idle, int fd)
{
    const fr_collector_plugin *p = &fr_collector_libvirt;
    const char *keys[] = {"uri"};
    const char *vals[] = {o->uri};
    fr_error err = {0};
    void *cfg = NULL, *state = NULL;
    if (fr_plugin_config_load(p, keys, vals, 1, "libvirt_collect", &cfg, &err) != 0 ||
        p->init(&state, cfg, &err) != 0) {
        fprintf(stderr, "fresco: %s: %s\n", err.where, err.message);
        return 1;
    }
    fr_ns_query *q = fr_ns_query_new();
    for (size_t i = 0; i < NTASK; i++) {
        fr_ns_query_add(q, task_metrics[i], NULL);
    }
    fr_batch *b = fr_batch_new("bench", "node", 0);
    fr_buf out = FR_BUF_INIT;

    double interval = (double)o->interval_ms / 1000.0;
    int warm = 2; /* ticks before the window: the first reads every domain's XML */
    long ticks = idle ? 0 : warm + (long)(o->seconds / interval + 0.5);
    double values = 0, tick_sum = 0, tick_max = 0;
    struct rusage r0 = {0}, r1;
    double t0 = 0, next = mono_s();
    for (long t = 0; t < ticks; t++) {
        if (t == warm) {
            getrusage(RUSAGE_SELF, &r0);
            t0 = mono_s();
        }
        double start = mono_s();
        fr_batch_reset(b, "bench", "node", (uint64_t)t);
        fr_collect_req req = {q, (int64_t)(start * 1e9), b};
        if (p->collect(state, &req, &err) != 0) {
            fprintf(stderr, "fresco: collect: %s: %s\n", err.where, err.message);
            return 1;
        }
        fr_buf_reset(&out);
        if (fr_batch_encode(b, &out) != 0) {
            fprintf(stderr, "fresco: encode failed\n");
            return 1;
        }
        double took = mono_s() - start;
        if (t >= warm) {
            values += b->nmetrics;
            tick_sum += took;
            tick_max = took > tick_max ? took : tick_max;
        }
        next += interval;
        sleep_until(next);
    }
    getrusage(RUSAGE_SELF, &r1);
    figures f = {.ok = true,
                 .cpu_s = rusage_cpu_s(&r1) - rusage_cpu_s(&r0),
                 .window_s = mono_s() - t0,
                 .peak_rss_kb = proc_status_kb(getpid(), "VmHWM"),
                 .anon_kb = proc_status_kb(getpid(), "RssAnon"),
                 .values = values,
                 .tick_mean_ms = ticks > warm ? tick_sum / (double)(ticks - warm) * 1e3 : 0,
                 .tick_max_ms = tick_max * 1e3};
    if (write(fd, &f, sizeof(f)) != (ssize_t)sizeof(f)) {
        return 1;
    }
    fr_buf_free(&out);
    fr_batch_destroy(b);
    fr_ns_query_destroy(q);
    p->destroy(state);
    fr_plugin_config_free(p, cfg);
    return 0;
}

static figures run_fresco(const opts *o, bool idle)
{
    figures f = {0};
    int pfd[2];
    if (pipe(pfd) != 0) {
        return f;
    }
    double d0 = o->daemon_pid > 0 ? proc_cpu_s(o->daemon_pid) : 0;
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        _exit(fresco_child(o, idle, pfd[1]));
    }
    close(pfd[1]);
    if (pid < 0 || read(pfd[0], &f, sizeof(f)) != (ssize_t)sizeof(f)) {
        f.ok = false;
    }
    close(pfd[0]);
    int status = 0;
    if (pid > 0) {
        waitpid(pid, &status, 0);
    }
    if (o->daemon_pid > 0) {
        f.daemon_cpu_s = proc_cpu_s(o->daemon_pid) - d0;
    }
    f.ok = f.ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return f;
}

/* ---- collectd --------------------------------------------------------- */

static int write_collectd_conf(const char *dir, const opts *o)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/collectd.conf", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    fprintf(f,
            "Hostname \"bench\"\n"
            "FQDNLookup false\n"
            "Interval %.3f\n"
            "BaseDir \"%s\"\n"
            "PIDFile \"%s/collectd.pid\"\n"
            "PluginDir \"/usr/lib/collectd\"\n"
            "TypesDB \"/usr/share/collectd/types.db\"\n"
            "AutoLoadPlugin false\n"
            "LoadPlugin logfile\n"
            "<Plugin logfile>\n  LogLevel \"warning\"\n  File \"%s/collectd.log\"\n</Plugin>\n"
            "LoadPlugin virt\n"
            "<Plugin virt>\n"
            "  Connection \"%s\"\n"
            "  RefreshInterval 60\n"
            "  HostnameFormat \"name\"\n"
            "  ExtraStats \"cpu_util domain_state memory pcpu vcpu\"\n"
            "</Plugin>\n"
            "LoadPlugin csv\n"
            "<Plugin csv>\n  DataDir \"%s/csv\"\n  StoreRates false\n</Plugin>\n",
            (double)o->interval_ms / 1000.0, dir, dir, dir, o->uri, dir);
    return fclose(f);
}

/* Values in the csv files: one per column after the epoch, per line. */
static double count_csv_values(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        return 0;
    }
    if (S_ISDIR(st.st_mode)) {
        double n = 0;
        DIR *d = opendir(path);
        if (d == NULL) {
            return 0;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue;
            }
            char sub[1024];
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            n += count_csv_values(sub);
        }
        closedir(d);
        return n;
    }
    FILE *f = fopen(path, "r");
    double n = 0;
    char line[512];
    bool first = true;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
        if (first) {
            first = false; /* the header */
            continue;
        }
        for (const char *c = line; *c != '\0'; c++) {
            n += *c == ',';
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return n;
}

static void rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                char sub[1024];
                snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
                rmtree(sub);
            }
        }
        if (d != NULL) {
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static figures run_collectd(const opts *o)
{
    figures f = {0};
    char dir[] = "/tmp/fresco-bench-collectd-XXXXXX";
    if (mkdtemp(dir) == NULL || write_collectd_conf(dir, o) != 0) {
        return f;
    }
    char conf[512], csv[512];
    snprintf(conf, sizeof(conf), "%s/collectd.conf", dir);
    snprintf(csv, sizeof(csv), "%s/csv", dir);
    double d0 = o->daemon_pid > 0 ? proc_cpu_s(o->daemon_pid) : 0;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        execl(o->collectd, o->collectd, "-f", "-C", conf, (char *)NULL);
        _exit(127);
    }
    if (pid < 0) {
        rmtree(dir);
        return f;
    }
    /* Warm-up: two intervals, so that start-up is outside the window. */
    double interval = (double)o->interval_ms / 1000.0;
    sleep_until(mono_s() + 2 * interval + 0.2);
    double c0 = proc_cpu_s(pid);
    double v0 = count_csv_values(csv);
    double t0 = mono_s();
    sleep_until(t0 + o->seconds);
    double c1 = proc_cpu_s(pid);
    double v1 = count_csv_values(csv);
    f.window_s = mono_s() - t0;
    f.peak_rss_kb = proc_status_kb(pid, "VmHWM");
    f.anon_kb = proc_status_kb(pid, "RssAnon");
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    if (o->daemon_pid > 0) {
        f.daemon_cpu_s = proc_cpu_s(o->daemon_pid) - d0;
    }
    f.cpu_s = c1 - c0;
    f.values = v1 - v0;
    f.ok = c0 >= 0 && c1 >= 0 && f.values > 0;
    if (!f.ok) {
        fprintf(stderr, "collectd: no values; its log is %s/collectd.log (kept)\n", dir);
        return f;
    }
    rmtree(dir);
    return f;
}

/* ---- main ------------------------------------------------------------- */

static void print_row(const char *name, const figures *f, const opts *o)
{
    if (!f->ok) {
        printf("%-30s failed\n", name);
        return;
    }
    double pct = f->window_s > 0 ? 100.0 * f->cpu_s / f->window_s : 0;
    printf("%-30s %8.3f %%  %8.1f MiB  %8.1f MiB  %9.0f", name, pct,
           (double)f->peak_rss_kb / 1024.0, (double)f->anon_kb / 1024.0,
           f->window_s > 0 ? f->values / f->window_s : 0);
    if (o->daemon_pid > 0) {
        printf("  daemon %.3f %%", 100.0 * f->daemon_cpu_s / f->window_s);
    }
    if (f->tick_mean_ms > 0) {
        printf("  collect+encode %.3f ms mean, %.3f ms max", f->tick_mean_ms, f->tick_max_ms);
    }
    printf("\n");
}

/* Through a daemon (Debian package libvirt-daemon; the test driver is
 * built into libvirtd). An empty LIBVIRT_DRIVER_DIR keeps libvirtd from
 * loading the QEMU driver, whose start-up fails without libvirt's system
 * user and directories; a private socket directory keeps it off the
 * system's:
 *   d=$(mktemp -d); mkdir $d/drivers
 *   printf 'unix_sock_dir = "%s"\nauth_unix_rw = "none"\nauth_unix_ro = "none"\n' $d \
 *       > $d/libvirtd.conf
 *   LIBVIRT_DRIVER_DIR=$d/drivers libvirtd -f $d/libvirtd.conf -p $d/pid &
 *   libvirt_collect --uri "test+unix://$PWD/node50.xml?socket=$d/libvirt-sock" \
 *                   --daemon-pid $(cat $d/pid)
 * The daemon's CPU over each run is printed beside the row. */
static void daemon_usage(void)
{
    fprintf(stderr, "through a daemon: see the comment at daemon_usage() in libvirt_collect.c\n");
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--seconds S] [--interval-ms MS] [--uri URI] [--collectd PATH | "
            "--no-collectd] [--daemon-pid PID]\n",
            argv0);
    daemon_usage();
    return 2;
}

int main(int argc, char **argv)
{
    opts o = {.seconds = 60, .interval_ms = 1000, .collectd = "/usr/sbin/collectd"};
    snprintf(o.uri, sizeof(o.uri), "test://%s", NODE50);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--seconds") == 0 && v != NULL) {
            o.seconds = atof(v);
            i++;
        } else if (strcmp(a, "--interval-ms") == 0 && v != NULL) {
            o.interval_ms = atoll(v);
            i++;
        } else if (strcmp(a, "--uri") == 0 && v != NULL) {
            snprintf(o.uri, sizeof(o.uri), "%s", v);
            i++;
        } else if (strcmp(a, "--collectd") == 0 && v != NULL) {
            o.collectd = v;
            i++;
        } else if (strcmp(a, "--no-collectd") == 0) {
            o.collectd = NULL;
        } else if (strcmp(a, "--daemon-pid") == 0 && v != NULL) {
            o.daemon_pid = (pid_t)atoi(v);
            i++;
        } else {
            return usage(argv[0]);
        }
    }
    if (o.seconds <= 0 || o.interval_ms <= 0) {
        return usage(argv[0]);
    }
    fr_log_set_level(FR_LOG_WARN);
    /* a daemon that goes away must fail a call, not kill the benchmark */
    signal(SIGPIPE, SIG_IGN);

    printf("libvirt_collect: %s, the report's 25 namespaces, %" PRId64
           " ms interval, %.0f s measured after a warm-up\n",
           o.uri, o.interval_ms, o.seconds);
    printf("%-30s %10s  %12s  %12s  %9s\n", "", "CPU/core", "peak RSS", "anon RSS", "values/s");
    figures idle = run_fresco(&o, true);
    printf("%-30s %10s  %8.1f MiB  %8.1f MiB\n", "  baseline: libvirt connected", "",
           (double)idle.peak_rss_kb / 1024.0, (double)idle.anon_kb / 1024.0);
    figures fr = run_fresco(&o, false);
    print_row("fresco libvirt plugin", &fr, &o);
    if (o.collectd != NULL && access(o.collectd, X_OK) == 0) {
        figures cd = run_collectd(&o);
        print_row("collectd virt (ExtraStats)", &cd, &o);
    } else {
        printf("%-30s not run (%s not installed: apt-get install collectd-core)\n", "collectd virt",
               o.collectd != NULL ? o.collectd : "collectd");
    }
    printf("report's anchor: snap, 1%% of total CPU for 1250 metrics/s from 50 domains\n");
    return fr.ok ? 0 : 1;
}
