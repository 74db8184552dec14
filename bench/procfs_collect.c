/* procfs_collect: what collecting every procfs metric at 100 ms costs.
 *
 * Runs fresco's procfs plugin over the real /proc at a 100 ms interval for
 * N seconds (default 30), asking for everything it offers under both its
 * names (/intel/procfs/... and snap psutil's /intel/psutil/...). Each tick
 * collects into an fr_batch and encodes it with fr_batch_encode, as the
 * collector does before sending. Ticks are paced with clock_nanosleep on
 * absolute CLOCK_MONOTONIC deadlines, in a child process of its own, so
 * that getrusage(RUSAGE_SELF) there counts the plugin and nothing else.
 *
 * Then, in the same run and for the same duration, collectd (Debian
 * package collectd-core) at Interval 0.1 with its cpu, memory, load,
 * interface, disk and vmem (Verbose) read plugins, twice:
 *   - writing with the csv plugin to a temporary directory; its values are
 *     counted from the files (one per column after the time stamp);
 *   - writing with the network plugin to a UDP socket on 127.0.0.1 that
 *     this program reads; its values are counted from the value parts of
 *     the packets. This is the cheap writer: binary encoding and one
 *     datagram per ~1452 bytes, close to what fresco's encode does.
 * collectd's CPU comes from /proc/<pid>/stat (clock ticks: +-0.03% of one
 * core over 30 s), its peak RSS from VmHWM, both over a window that starts
 * after a warm-up.
 *
 *   procfs_collect [--seconds S] [--interval-ms MS] [--query NS]...
 *                  [--collectd PATH | --no-collectd] [--writer csv|network|both]
 *
 * The table gives for each: metrics per tick, metrics/s, CPU as % of one
 * core, metrics/s per 1% of one core, and peak RSS. With --seconds under 2
 * (the ctest smoke run) collectd is skipped. Figures are printed, never
 * asserted. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <dirent.h>

#include "fresco/buf.h"
#include "fresco/log.h"
#include "fresco/metric.h"
#include "fresco/ns.h"
#include "fresco/plugin.h"

extern const fr_collector_plugin fr_collector_procfs;

#define MAX_QUERIES 32

typedef struct opts {
    double seconds;
    int64_t interval_ms;
    const char *queries[MAX_QUERIES];
    size_t nqueries;
    const char *collectd;
    bool csv, network;
} opts;

/* What a measured process did over the window. */
typedef struct figures {
    bool ok;
    bool ran;
    double cpu_s;     /* CPU seconds in the window */
    double window_s;  /* wall seconds of the window */
    long peak_rss_kb; /* VmHWM */
    double values;    /* metrics (values) produced in the window */
    double ticks;     /* ticks in the window */
    double tick_mean_ms, tick_max_ms;
    long missed; /* deadlines passed before the sleep (fresco only) */
    size_t encoded_bytes;
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

static void ts_add_ns(struct timespec *ts, int64_t ns)
{
    int64_t t = (int64_t)ts->tv_nsec + ns;
    ts->tv_sec += (time_t)(t / 1000000000);
    ts->tv_nsec = (long)(t % 1000000000);
}

static bool ts_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void sleep_until_abs(const struct timespec *deadline)
{
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, deadline, NULL) == EINTR) {
    }
}

static void sleep_until(double t)
{
    struct timespec ts = {(time_t)t, (long)((t - (double)(time_t)t) * 1e9)};
    sleep_until_abs(&ts);
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

static void print_loadavg(const char *when)
{
    char buf[128] = "";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f != NULL) {
        if (fgets(buf, sizeof(buf), f) == NULL) {
            buf[0] = '\0';
        }
        fclose(f);
    }
    buf[strcspn(buf, "\n")] = '\0';
    printf("machine load %s: %s (%ld cpus online)\n", when, buf, sysconf(_SC_NPROCESSORS_ONLN));
}

/* ---- fresco ----------------------------------------------------------- */

/* The child: one plugin instance, as a task would run it. Writes its
 * figures to fd. */
static int fresco_child(const opts *o, int fd)
{
    const fr_collector_plugin *p = &fr_collector_procfs;
    fr_error err = {0};
    void *cfg = NULL, *state = NULL;
    if (fr_plugin_config_load(p, NULL, NULL, 0, "procfs_collect", &cfg, &err) != 0 ||
        p->init(&state, cfg, &err) != 0) {
        fprintf(stderr, "fresco: %s: %s\n", err.where, err.message);
        fr_plugin_config_free(p, cfg);
        return 1;
    }
    fr_ns_query *q = fr_ns_query_new();
    for (size_t i = 0; q != NULL && i < o->nqueries; i++) {
        if (fr_ns_query_add(q, o->queries[i], &err) != 0) {
            fprintf(stderr, "fresco: query '%s': %s\n", o->queries[i], err.message);
            return 1;
        }
    }
    fr_batch *b = fr_batch_new("bench", "node", 0);
    fr_buf out = FR_BUF_INIT;
    if (q == NULL || b == NULL) {
        fprintf(stderr, "fresco: out of memory\n");
        return 1;
    }

    const int64_t interval_ns = o->interval_ms * 1000000;
    const long warm = 2; /* the first tick has no previous counters for rates */
    long ticks = warm + (long)(o->seconds * 1000.0 / (double)o->interval_ms + 0.5);
    figures f = {.ran = true};
    double tick_sum = 0;
    struct rusage r0 = {0}, r1;
    double t0 = 0;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    int rc = 0;
    for (long t = 0; t < ticks; t++) {
        if (t == warm) {
            getrusage(RUSAGE_SELF, &r0);
            t0 = mono_s();
        }
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        fr_batch_reset(b, "bench", "node", (uint64_t)t);
        /* now_ns: the tick's scheduled time, as the collector passes it */
        fr_collect_req req = {q, (int64_t)deadline.tv_sec * 1000000000 + deadline.tv_nsec, b};
        if (p->collect(state, &req, &err) != 0) {
            fprintf(stderr, "fresco: collect: %s: %s\n", err.where, err.message);
            rc = 1;
            break;
        }
        fr_buf_reset(&out);
        if (fr_batch_encode(b, &out) != 0) {
            fprintf(stderr, "fresco: encode failed\n");
            rc = 1;
            break;
        }
        struct timespec end;
        clock_gettime(CLOCK_MONOTONIC, &end);
        double took =
            (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
        if (t >= warm) {
            f.values += b->nmetrics;
            f.ticks += 1;
            f.encoded_bytes = out.len;
            tick_sum += took;
            f.tick_max_ms = took * 1e3 > f.tick_max_ms ? took * 1e3 : f.tick_max_ms;
        }
        ts_add_ns(&deadline, interval_ns);
        while (ts_before(&deadline, &end)) { /* overran: skip, as a task counts a miss */
            ts_add_ns(&deadline, interval_ns);
            f.missed += t >= warm;
        }
        sleep_until_abs(&deadline);
    }
    getrusage(RUSAGE_SELF, &r1);
    f.ok = rc == 0;
    f.cpu_s = rusage_cpu_s(&r1) - rusage_cpu_s(&r0);
    f.window_s = mono_s() - t0;
    f.peak_rss_kb = proc_status_kb(getpid(), "VmHWM");
    f.tick_mean_ms = f.ticks > 0 ? tick_sum / f.ticks * 1e3 : 0;
    if (write(fd, &f, sizeof(f)) != (ssize_t)sizeof(f)) {
        rc = 1;
    }
    fr_buf_free(&out);
    fr_batch_destroy(b);
    fr_ns_query_destroy(q);
    p->destroy(state);
    fr_plugin_config_free(p, cfg);
    return rc;
}

static figures run_fresco(const opts *o)
{
    figures f = {.ran = true};
    int pfd[2];
    if (pipe(pfd) != 0) {
        return f;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        _exit(fresco_child(o, pfd[1]));
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
    f.ok = f.ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return f;
}

/* ---- collectd --------------------------------------------------------- */

static int write_collectd_conf(const char *dir, const opts *o, bool csv, int port)
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
            "LoadPlugin cpu\n"
            "LoadPlugin memory\n"
            "LoadPlugin load\n"
            "LoadPlugin interface\n"
            "LoadPlugin disk\n"
            "LoadPlugin vmem\n"
            "<Plugin vmem>\n  Verbose true\n</Plugin>\n",
            (double)o->interval_ms / 1000.0, dir, dir, dir);
    if (csv) {
        fprintf(
            f,
            "LoadPlugin csv\n<Plugin csv>\n  DataDir \"%s/csv\"\n  StoreRates false\n</Plugin>\n",
            dir);
    } else {
        fprintf(f,
                "LoadPlugin network\n<Plugin network>\n  Server \"127.0.0.1\" \"%d\"\n</Plugin>\n",
                port);
    }
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
    if (f == NULL) {
        return 0;
    }
    double n = 0;
    char buf[65536];
    size_t got;
    bool header = true;
    while ((got = fread(buf, 1, sizeof(buf), f)) > 0) {
        for (size_t i = 0; i < got; i++) {
            if (buf[i] == '\n') {
                header = false;
            } else if (buf[i] == ',' && !header) {
                n++;
            }
        }
    }
    fclose(f);
    return n;
}

/* Values in one packet of collectd's binary protocol: parts of
 * {type u16, length u16 (header included)}; a values part (type 6) holds
 * a u16 count, then that many type bytes and 8-byte values. */
static double count_packet_values(const unsigned char *p, size_t n)
{
    double values = 0;
    while (n >= 4) {
        unsigned type = (unsigned)p[0] << 8 | p[1];
        size_t len = (size_t)p[2] << 8 | p[3];
        if (len < 4 || len > n) {
            break;
        }
        if (type == 6 && len >= 6) {
            values += (double)((unsigned)p[4] << 8 | p[5]);
        }
        p += len;
        n -= len;
    }
    return values;
}

/* Reads datagrams until `until`, counting values in those that arrive at
 * or after `from`. */
static void drain_udp(int fd, double from, double until, double *values)
{
    unsigned char buf[65536];
    for (double now = mono_s(); now < until; now = mono_s()) {
        struct pollfd pf = {fd, POLLIN, 0};
        int ms = (int)((until - now) * 1000.0) + 1;
        if (poll(&pf, 1, ms) <= 0) {
            continue;
        }
        ssize_t got;
        while ((got = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
            if (mono_s() >= from) {
                *values += count_packet_values(buf, (size_t)got);
            }
        }
    }
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

static int udp_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -1;
    }
    int rcvbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static figures run_collectd(const opts *o, bool csv)
{
    figures f = {.ran = true};
    char dir[] = "/tmp/fresco-bench-collectd-XXXXXX";
    int port = 0, ufd = -1;
    if (!csv && (ufd = udp_listen(&port)) < 0) {
        fprintf(stderr, "collectd: no UDP socket: %s\n", strerror(errno));
        return f;
    }
    if (mkdtemp(dir) == NULL || write_collectd_conf(dir, o, csv, port) != 0) {
        if (ufd >= 0) {
            close(ufd);
        }
        return f;
    }
    char conf[512], csvdir[512];
    snprintf(conf, sizeof(conf), "%s/collectd.conf", dir);
    snprintf(csvdir, sizeof(csvdir), "%s/csv", dir);
    fflush(stdout);
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
        if (ufd >= 0) {
            close(ufd);
        }
        return f;
    }
    /* Warm-up: a second plus a few intervals, so that start-up (reading
     * types.db, loading plugins) is outside the window. */
    double interval = (double)o->interval_ms / 1000.0;
    double warm_end = mono_s() + 1.0 + 3 * interval;
    double c0 = 0, c1 = 0, v0 = 0, v1 = 0, t0 = 0;
    if (csv) {
        sleep_until(warm_end);
        c0 = proc_cpu_s(pid);
        v0 = count_csv_values(csvdir);
        t0 = mono_s();
        sleep_until(t0 + o->seconds);
        c1 = proc_cpu_s(pid);
        v1 = count_csv_values(csvdir);
    } else {
        double ignored = 0;
        drain_udp(ufd, warm_end + 1, warm_end, &ignored);
        c0 = proc_cpu_s(pid);
        t0 = mono_s();
        drain_udp(ufd, t0, t0 + o->seconds, &v1);
        c1 = proc_cpu_s(pid);
    }
    f.window_s = mono_s() - t0;
    f.peak_rss_kb = proc_status_kb(pid, "VmHWM");
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    if (ufd >= 0) {
        close(ufd);
    }
    f.cpu_s = c1 - c0;
    f.values = v1 - v0;
    f.ticks = f.window_s / interval;
    f.ok = c0 >= 0 && c1 >= 0 && f.values > 0;
    if (!f.ok) {
        fprintf(stderr, "collectd: no values; its config and log are in %s (kept)\n", dir);
        return f;
    }
    rmtree(dir);
    return f;
}

/* ---- main ------------------------------------------------------------- */

static void print_header(void)
{
    printf("%-26s %8s %7s %9s %10s %9s %12s %9s\n", "tool", "interval", "seconds", "metrics/",
           "metrics/s", "CPU % of", "metrics/s", "peak RSS");
    printf("%-26s %8s %7s %9s %10s %9s %12s %9s\n", "", "", "", "tick", "", "one core",
           "per 1% CPU", "MiB");
}

static void print_row(const char *name, const figures *f, const opts *o)
{
    if (!f->ok) {
        printf("%-26s failed\n", name);
        return;
    }
    double pct = f->window_s > 0 ? 100.0 * f->cpu_s / f->window_s : 0;
    double rate = f->window_s > 0 ? f->values / f->window_s : 0;
    double per_tick = f->ticks > 0 ? f->values / f->ticks : 0;
    printf("%-26s %5" PRId64 " ms %7.1f %9.0f %10.0f %9.3f ", name, o->interval_ms, f->window_s,
           per_tick, rate, pct);
    if (pct > 0) {
        printf("%12.0f", rate / pct);
    } else {
        printf("%12s", "(no CPU)");
    }
    printf(" %9.1f\n", (double)f->peak_rss_kb / 1024.0);
}

static int usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--seconds S] [--interval-ms MS] [--query NS]... "
            "[--collectd PATH | --no-collectd] [--writer csv|network|both]\n",
            argv0);
    return 2;
}

int main(int argc, char **argv)
{
    opts o = {.seconds = 30,
              .interval_ms = 100,
              .collectd = "/usr/sbin/collectd",
              .csv = true,
              .network = true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--seconds") == 0 && v != NULL) {
            o.seconds = atof(v);
            i++;
        } else if (strcmp(a, "--interval-ms") == 0 && v != NULL) {
            o.interval_ms = atoll(v);
            i++;
        } else if (strcmp(a, "--query") == 0 && v != NULL && o.nqueries < MAX_QUERIES) {
            o.queries[o.nqueries++] = v;
            i++;
        } else if (strcmp(a, "--collectd") == 0 && v != NULL) {
            o.collectd = v;
            i++;
        } else if (strcmp(a, "--no-collectd") == 0) {
            o.collectd = NULL;
        } else if (strcmp(a, "--writer") == 0 && v != NULL) {
            o.csv = strcmp(v, "csv") == 0 || strcmp(v, "both") == 0;
            o.network = strcmp(v, "network") == 0 || strcmp(v, "both") == 0;
            if (!o.csv && !o.network) {
                return usage(argv[0]);
            }
            i++;
        } else {
            return usage(argv[0]);
        }
    }
    if (o.seconds <= 0 || o.interval_ms <= 0) {
        return usage(argv[0]);
    }
    if (o.nqueries == 0) {
        o.queries[o.nqueries++] = "/intel/procfs/*";
        o.queries[o.nqueries++] = "/intel/psutil/*";
    }
    fr_log_set_level(FR_LOG_WARN);

    printf("procfs_collect: every metric of the procfs plugin (");
    for (size_t i = 0; i < o.nqueries; i++) {
        printf("%s%s", i > 0 ? " " : "", o.queries[i]);
    }
    printf(") from /proc, %" PRId64 " ms interval, %.0f s measured after a warm-up\n",
           o.interval_ms, o.seconds);
    print_loadavg("before");
    figures fr = run_fresco(&o);
    figures cd_csv = {0}, cd_net = {0};
    const char *skipped = NULL;
    if (o.collectd == NULL) {
        skipped = "baseline: collectd not run (--no-collectd)";
    } else if (access(o.collectd, X_OK) != 0) {
        skipped = "baseline: collectd not installed";
    } else if (o.seconds < 2) {
        skipped = "baseline: collectd skipped (--seconds < 2)";
    } else {
        if (o.csv) {
            cd_csv = run_collectd(&o, true);
        }
        if (o.network) {
            cd_net = run_collectd(&o, false);
        }
    }
    print_loadavg("after");
    printf("\n");
    print_header();
    print_row("fresco procfs", &fr, &o);
    if (cd_csv.ran) {
        print_row("collectd 6 plugins + csv", &cd_csv, &o);
    }
    if (cd_net.ran) {
        print_row("collectd 6 plugins + net", &cd_net, &o);
    }
    if (fr.ok) {
        printf("\nfresco: collect+encode %.3f ms mean, %.3f ms max per tick; %zu bytes encoded per "
               "tick; %ld deadlines missed\n",
               fr.tick_mean_ms, fr.tick_max_ms, fr.encoded_bytes, fr.missed);
    }
    if (skipped != NULL) {
        printf("%s\n", skipped);
    } else {
        printf("collectd: cpu memory load interface disk vmem(Verbose); csv = files in a "
               "temporary directory, net = network plugin to 127.0.0.1 (binary, read here)\n");
    }
    return fr.ok ? 0 : 1;
}
