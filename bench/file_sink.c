/* file_sink: metrics per second through the file sink's write(), beside
 * the disk's ceiling in the same run.
 *
 *   sink      fr_sink_file.write() called with one batch of 1000 metrics at
 *             a time (--per-call to pass more), 10 000 series in all
 *             (10 batches: namespaces /intel/bench/node<k>/cpu<c>/<metric>,
 *             two metric tags and two batch tags; doubles, counters,
 *             gauges and flags), timestamps and values changing every round;
 *             only the time inside write() is counted.
 *   write(2)  the same bytes (one round of the sink's own output, captured
 *             first) written from a prepared buffer with one write(2) per
 *             batch's worth: what the disk and page cache take at most.
 * Both rotate at --max-size (default 256 MiB, one old file kept) so the disk
 * use stays bounded. Each runs --passes times (default 2), alternating; the
 * best pass of each is reported too. Results are printed, not asserted.
 *
 *   file_sink [--seconds S] [--per-call N] [--passes P] [--dir D] [--fsync] */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fresco/clock.h"
#include "fresco/manifest.h"
#include "fresco/pipeline.h"

extern const fr_sink_plugin fr_sink_file;

#define SERIES    10000
#define PER_BATCH 1000
#define NBATCH    (SERIES / PER_BATCH)

typedef struct opts {
    double seconds;
    int per_call;
    int passes;
    const char *dir;
    bool fsync;
    int64_t max_size;
} opts;

typedef struct result {
    double secs;
    uint64_t metrics;
    uint64_t bytes;
} result;

static const char *const metric_names[] = {"usage", "user", "system", "irq",       "iowait",
                                           "idle",  "freq", "temp",   "throttled", "ctx"};

/* The 10 batches; series i is in batch i / 1000. */
static void make_batches(fr_batch **b)
{
    for (int k = 0; k < NBATCH; k++) {
        b[k] = fr_batch_new("bench-task", "bench-node", (uint64_t)k);
        fr_batch_add_tag(b[k], "rack", "r12");
        fr_batch_add_tag(b[k], "task_name", "bench");
        for (int j = 0; j < PER_BATCH; j++) {
            int i = k * PER_BATCH + j;
            char ns[96], node[16], cpu[8];
            int node_n = i / 100, cpu_n = (i / 10) % 10;
            const char *name = metric_names[i % 10];
            snprintf(ns, sizeof(ns), "/intel/bench/node%d/cpu%d/%s", node_n, cpu_n, name);
            snprintf(node, sizeof(node), "node%d", node_n);
            snprintf(cpu, sizeof(cpu), "%d", cpu_n);
            fr_value v;
            const char *unit = "";
            switch (i % 10) {
            case 6:
                v = fr_val_u64(2400000000u);
                unit = "Hz";
                break;
            case 8:
                v = fr_val_bool(false);
                break;
            case 9:
                v = fr_val_i64(123456);
                break;
            default:
                v = fr_val_f64(12.5);
                unit = "percent";
            }
            fr_metric *m = fr_batch_add(b[k], ns, 0, v, unit);
            fr_batch_metric_tag(b[k], m, "host", node);
            fr_batch_metric_tag(b[k], m, "cpu", cpu);
        }
    }
}

/* New timestamps and values for a round, as a collector tick would bring. */
static void next_round(fr_batch **b, uint64_t round)
{
    int64_t t0 = 1767225600000000000ll + (int64_t)round * 1000000000ll;
    uint64_t x = round * 0x9e3779b97f4a7c15ull + 1;
    for (int k = 0; k < NBATCH; k++) {
        for (uint32_t j = 0; j < b[k]->nmetrics; j++) {
            fr_metric *m = &b[k]->metrics[j];
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            m->ts = t0 + (int64_t)(x % 1000000);
            switch (m->value.type) {
            case FR_VAL_DOUBLE:
                /* half with two decimals (as most meters), half full precision */
                m->value.v.d = (j & 1) ? (double)(x % 10000) / 100.0
                                       : (double)(x >> 11) / 9007199254740992.0 * 100.0;
                break;
            case FR_VAL_UINT64:
                m->value.v.u = 800000000u + x % 3000000000u;
                break;
            case FR_VAL_INT64:
                m->value.v.i += (int64_t)(x % 1000);
                break;
            case FR_VAL_BOOL:
                m->value.v.b = (x & 0xff) == 0;
                break;
            default:
                break;
            }
        }
    }
}

static double now_s(void)
{
    return (double)fr_mono_ns() / 1e9;
}

static void *sink_start(const opts *o, const char *path)
{
    char size[32];
    snprintf(size, sizeof(size), "%lld", (long long)o->max_size);
    fr_mf_entry e[4];
    memset(e, 0, sizeof(e));
    const char *kv[] = {"file",      path, "max_size", size,
                        "max_files", "1",  "fsync",    o->fsync ? "true" : "false"};
    for (int i = 0; i < 4; i++) {
        e[i].key = (char *)kv[2 * i];
        e[i].value.type = FR_MF_STRING;
        e[i].value.text = (char *)kv[2 * i + 1];
    }
    fr_mf_map map = {e, 4};
    void *cfg, *st;
    fr_error err;
    if (fr_node_config_load(&fr_sink_file.config, "file", &map, "bench", &cfg, &err) != 0) {
        fprintf(stderr, "file_sink: config: %s\n", err.message);
        exit(1);
    }
    fr_sink_info info = {"bench/publish[0]", "bench", "bench", "publish[0]", NULL};
    if (fr_sink_file.init(&st, cfg, &info, &err) != 0) {
        fprintf(stderr, "file_sink: init: %s\n", err.message);
        exit(1);
    }
    void **pair = malloc(2 * sizeof(void *));
    pair[0] = cfg;
    pair[1] = st;
    return pair;
}

static void sink_stop(void *p)
{
    void **pair = p;
    fr_sink_file.destroy(pair[1]);
    fr_node_config_free(&fr_sink_file.config, pair[0]);
    free(pair);
}

static void remove_files(const char *path)
{
    char old[700];
    snprintf(old, sizeof(old), "%s.1", path);
    unlink(path);
    unlink(old);
}

static result run_sink(const opts *o, fr_batch **b, const char *path)
{
    remove_files(path);
    void *s = sink_start(o, path);
    void *st = ((void **)s)[1];
    result r = {0};
    double end = now_s() + o->seconds;
    uint64_t round = 0;
    while (now_s() < end) {
        next_round(b, round++);
        for (int k = 0; k < NBATCH; k += o->per_call) {
            int n = NBATCH - k < o->per_call ? NBATCH - k : o->per_call;
            fr_error err;
            double t = now_s();
            int rv = fr_sink_file.write(st, b + k, (size_t)n, &err);
            r.secs += now_s() - t;
            if (rv != 0) {
                fprintf(stderr, "file_sink: write: %s\n", err.message);
                exit(1);
            }
            r.metrics += (uint64_t)n * PER_BATCH;
        }
    }
    sink_stop(s);
    remove_files(path);
    return r; /* bytes: from the line size, in main */
}

/* One round of the sink's output, to replay with write(2). */
static char *capture_round(const opts *o, fr_batch **b, const char *path, size_t *len)
{
    remove_files(path);
    opts one = *o;
    one.max_size = 0;
    void *s = sink_start(&one, path);
    next_round(b, 0);
    fr_error err;
    if (fr_sink_file.write(((void **)s)[1], b, NBATCH, &err) != 0) {
        fprintf(stderr, "file_sink: write: %s\n", err.message);
        exit(1);
    }
    sink_stop(s);
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        perror("file_sink: capture");
        exit(1);
    }
    char *buf = malloc((size_t)sb.st_size);
    if (buf == NULL || read(fd, buf, (size_t)sb.st_size) != sb.st_size) {
        perror("file_sink: capture");
        exit(1);
    }
    close(fd);
    remove_files(path);
    *len = (size_t)sb.st_size;
    return buf;
}

static result run_write(const opts *o, const char *buf, size_t len, const char *path)
{
    remove_files(path);
    char old[700];
    snprintf(old, sizeof(old), "%s.1", path);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) {
        perror("file_sink: open");
        exit(1);
    }
    size_t chunk = len / NBATCH * (size_t)o->per_call; /* a write() call's worth */
    if (chunk > len) {
        chunk = len;
    }
    result r = {0};
    uint64_t file = 0;
    double end = now_s() + o->seconds;
    while (now_s() < end) {
        for (size_t off = 0; off < len; off += chunk) {
            size_t n = len - off < chunk ? len - off : chunk;
            double t = now_s();
            if (o->max_size > 0 && file + n > (uint64_t)o->max_size) {
                close(fd);
                rename(path, old);
                fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
                file = 0;
            }
            if (write(fd, buf + off, n) != (ssize_t)n || (o->fsync && fdatasync(fd) != 0)) {
                perror("file_sink: write");
                exit(1);
            }
            r.secs += now_s() - t;
            file += n;
            r.bytes += n;
        }
        r.metrics += SERIES;
    }
    close(fd);
    remove_files(path);
    return r;
}

int main(int argc, char **argv)
{
    opts o = {.seconds = 3, .per_call = 1, .passes = 2, .max_size = 256ll << 20};
    o.dir = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            o.seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "--per-call") == 0 && i + 1 < argc) {
            o.per_call = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--passes") == 0 && i + 1 < argc) {
            o.passes = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
            o.dir = argv[++i];
        } else if (strcmp(argv[i], "--fsync") == 0) {
            o.fsync = true;
        } else {
            fprintf(stderr, "usage: file_sink [--seconds S] [--per-call N] [--passes P] "
                            "[--dir D] [--fsync]\n");
            return 2;
        }
    }
    if (o.per_call < 1 || o.per_call > NBATCH || o.passes < 1 || o.seconds <= 0) {
        fprintf(stderr, "file_sink: --per-call is 1..%d, --passes and --seconds > 0\n", NBATCH);
        return 2;
    }
    char tmpl[512];
    snprintf(tmpl, sizeof(tmpl), "%s/file_sink.XXXXXX", o.dir);
    if (mkdtemp(tmpl) == NULL) {
        perror("file_sink: mkdtemp");
        return 1;
    }
    char path[600];
    snprintf(path, sizeof(path), "%s/metrics.json", tmpl);

    fr_batch *b[NBATCH];
    make_batches(b);
    size_t round_len;
    char *round_buf = capture_round(&o, b, path, &round_len);
    double line = (double)round_len / SERIES;
    printf("file_sink: %d series, batches of %d metrics, %d per write() call, %.0f bytes a "
           "line, %s%s\n",
           SERIES, PER_BATCH, o.per_call, line, o.dir, o.fsync ? ", fsync" : "");
    printf("%-10s %5s %14s %10s %10s\n", "run", "pass", "metrics/s", "MB/s", "ns/metric");
    double best_sink = 0, best_write = 0;
    for (int p = 0; p < o.passes; p++) {
        result w = run_write(&o, round_buf, round_len, path);
        result s = run_sink(&o, b, path);
        s.bytes = (uint64_t)((double)s.metrics * line);
        double ws = (double)w.metrics / w.secs, ss = (double)s.metrics / s.secs;
        printf("%-10s %5d %14.0f %10.1f %10.1f\n", "write(2)", p + 1, ws,
               (double)w.bytes / w.secs / 1e6, w.secs * 1e9 / (double)w.metrics);
        printf("%-10s %5d %14.0f %10.1f %10.1f\n", "sink", p + 1, ss,
               (double)s.bytes / s.secs / 1e6, s.secs * 1e9 / (double)s.metrics);
        if (ws > best_write) {
            best_write = ws;
        }
        if (ss > best_sink) {
            best_sink = ss;
        }
        if (s.metrics == 0 || w.metrics == 0) {
            fprintf(stderr, "file_sink: nothing written\n");
            return 1;
        }
    }
    printf("best: sink %.0f metrics/s, write(2) of the same bytes %.0f metrics/s (sink at "
           "%.0f%% of the ceiling)\n",
           best_sink, best_write, 100.0 * best_sink / best_write);
    free(round_buf);
    for (int k = 0; k < NBATCH; k++) {
        fr_batch_destroy(b[k]);
    }
    rmdir(tmpl);
    return 0;
}
