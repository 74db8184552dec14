/* processor_thr: what the processor does per batch, in-process on one
 * thread: decode the wire bytes (fr_batch_decode), run the node's plugins,
 * encode the output (fr_batch_encode). Two pipelines on the same batches
 * in the same run:
 *   passthrough    the baseline: decode, passthrough, encode
 *   tag+anomaly    decode, tag (the report's three tags), anomaly
 *                  (defaults: buf_length 30, factor 3, send_interval 10s,
 *                  after 10), encode
 * The input is --series series (default 10 000: 500 libvirt-like domains
 * of 20 metrics, one tag each) at 1 Hz of metric time, in batches of
 * --batch metrics (default 1000), noise on a baseline with a rare spike
 * (seeded, so every run sees the same data). The first buf_length ticks
 * fill the windows and are not timed. Building and encoding the input is
 * not timed either; each stage is timed on the thread's CPU clock, so the
 * figure is per core even on a busy machine.
 *
 * Results are printed, not asserted; the exit code is non-zero only when
 * a stage failed. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fresco/buf.h"
#include "fresco/metric.h"
#include "fresco/pipeline.h"
#include "procnode.h"

#define BENCH_T0      (1800000000LL * 1000000000LL)
#define BENCH_WARMUP  30 /* ticks: buf_length */
#define BENCH_METRICS 20 /* per domain */

static const char *const bench_paths[BENCH_METRICS] = {
    "cpu/cputime",
    "cpu/vcpu0/cputime",
    "cpu/vcpu1/cputime",
    "memory/actual",
    "memory/rss",
    "memory/available",
    "memory/unused",
    "memory/swap_in",
    "memory/swap_out",
    "memory/major_fault",
    "disk/vda/rd_bytes",
    "disk/vda/wr_bytes",
    "disk/vda/rd_reqs",
    "disk/vda/wr_reqs",
    "network/tap0/rx_bytes",
    "network/tap0/tx_bytes",
    "network/tap0/rx_packets",
    "network/tap0/tx_packets",
    "network/tap0/rx_drop",
    "network/tap0/tx_drop",
};

typedef struct stage_time {
    double decode, tag, anomaly, pass, encode; /* seconds */
    uint64_t in, out;
} stage_time;

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0);
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int run_node(bench_node *n, const fr_batch *in, fr_batch **out)
{
    return bench_node_run(n, "processor_thr", in, out);
}

/* Builds and encodes batch number k of tick t: metrics [first, first+n)
 * of the series. */
static int make_wire(fr_buf *wire, uint64_t seq, int64_t tick, uint32_t first, uint32_t n,
                     const double *base)
{
    fr_batch *b = fr_batch_new("task-1", "node-1", seq);
    if (b == NULL || fr_batch_add_tag(b, "plugin_running_on", "node-1") != 0) {
        fr_batch_destroy(b);
        return FR_ENOMEM;
    }
    int64_t ts = BENCH_T0 + tick * 1000000000LL;
    for (uint32_t i = first; i < first + n; i++) {
        char dom[16], ns[96];
        snprintf(dom, sizeof(dom), "vm-%u", i / BENCH_METRICS);
        snprintf(ns, sizeof(ns), "/intel/libvirt/%s/%s", dom, bench_paths[i % BENCH_METRICS]);
        /* noise of about 1% on the baseline, and one point in 5000 a spike */
        double u = rng_unit() + rng_unit() + rng_unit() - 1.5;
        double v = base[i] * (1 + 0.02 * u);
        if (rng_next() % 5000 == 0) {
            v *= 3;
        }
        fr_metric *m = fr_batch_add(b, ns, ts, fr_val_f64(v), "");
        if (m == NULL || fr_batch_metric_tag(b, m, "domain", dom) != 0) {
            fr_batch_destroy(b);
            return FR_ENOMEM;
        }
    }
    fr_buf_reset(wire);
    int rv = fr_batch_encode(b, wire);
    fr_batch_destroy(b);
    return rv;
}

/* One batch through both pipelines; timed when st is not NULL. */
static int run_batch(const fr_buf *wire, bench_node *pass, bench_node *tag, bench_node *anomaly,
                     fr_buf *outbuf, stage_time *pt, stage_time *st)
{
    fr_error err;
    fr_batch *in = NULL, *mid = NULL, *out = NULL;
    int rv;
    /* passthrough */
    double t0 = cpu_now();
    if ((rv = fr_batch_decode(wire->data, wire->len, &in, &err)) != 0) {
        fprintf(stderr, "processor_thr: decode: %s: %s\n", err.where, err.message);
        return rv;
    }
    double t1 = cpu_now();
    if ((rv = run_node(pass, in, &out)) != 0) {
        goto done;
    }
    double t2 = cpu_now();
    fr_buf_reset(outbuf);
    rv = fr_batch_encode(out, outbuf);
    fr_batch_destroy(out);
    fr_batch_destroy(in);
    out = in = NULL;
    double t3 = cpu_now();
    if (rv != 0) {
        goto done;
    }
    if (pt != NULL) {
        pt->decode += t1 - t0;
        pt->pass += t2 - t1;
        pt->encode += t3 - t2;
        pt->in += wire->len;
        pt->out += outbuf->len;
    }
    /* tag + anomaly */
    t0 = cpu_now();
    if ((rv = fr_batch_decode(wire->data, wire->len, &in, &err)) != 0) {
        goto done;
    }
    t1 = cpu_now();
    if ((rv = run_node(tag, in, &mid)) != 0) {
        goto done;
    }
    t2 = cpu_now();
    if ((rv = run_node(anomaly, mid, &out)) != 0) {
        goto done;
    }
    t3 = cpu_now();
    fr_buf_reset(outbuf);
    rv = fr_batch_encode(out, outbuf);
    fr_batch_destroy(out);
    fr_batch_destroy(mid);
    fr_batch_destroy(in);
    out = mid = in = NULL;
    double t4 = cpu_now();
    if (st != NULL) {
        st->decode += t1 - t0;
        st->tag += t2 - t1;
        st->anomaly += t3 - t2;
        st->encode += t4 - t3;
        st->in += wire->len;
        st->out += outbuf->len;
    }
done:
    fr_batch_destroy(out);
    fr_batch_destroy(mid);
    fr_batch_destroy(in);
    return rv;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: processor_thr [--seconds S] [--series N] [--batch N]\n"
               "  --seconds S  CPU seconds to measure the two pipelines for (default 3)\n"
               "  --series N   series, 20 per domain (default 10000)\n"
               "  --batch N    metrics per batch (default 1000)\n");
}

int main(int argc, char **argv)
{
    double seconds = 3;
    long nseries = 10000, batch = 1000;
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = strtod(argv[++i], &end);
            if (*end != '\0' || !(seconds > 0 && seconds <= 3600)) {
                fprintf(stderr, "processor_thr: --seconds: not in (0, 3600]: '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--series") == 0 && i + 1 < argc) {
            nseries = strtol(argv[++i], &end, 10);
            if (*end != '\0' || nseries < 1 || nseries > 10000000) {
                fprintf(stderr, "processor_thr: --series: not in 1..10000000: '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
            batch = strtol(argv[++i], &end, 10);
            if (*end != '\0' || batch < 1 || batch > 1000000) {
                fprintf(stderr, "processor_thr: --batch: not in 1..1000000: '%s'\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "processor_thr: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    const char *tag_cfg = "{tags: 'rack1:rack,datacenter:dublin,experiment:1'}";
    const char *an_cfg = "{}";
    bench_node pass, tag, anomaly;
    if (bench_node_open(&pass, "processor_thr", "passthrough", "{}") != 0 ||
        bench_node_open(&tag, "processor_thr", "tag", tag_cfg) != 0 ||
        bench_node_open(&anomaly, "processor_thr", "anomaly", an_cfg) != 0) {
        return 1;
    }
    double *base = malloc((size_t)nseries * sizeof(*base));
    for (long i = 0; i < nseries; i++) {
        base[i] = 10 + 1000 * rng_unit();
    }
    printf("processor_thr: decode + plugins + encode per batch, in-process, one thread\n"
           "input: %ld series (/intel/libvirt/vm-N/..., 1 tag, 1 batch tag, double values) at "
           "1 Hz of metric time, %ld metrics per batch\n"
           "tag: %s; anomaly: defaults (buf_length 30, factor 3.0, send_interval 10s, after 10)\n"
           "time: the thread's CPU clock; the first %d ticks (filling the windows) not timed\n\n",
           nseries, batch, tag_cfg, BENCH_WARMUP);
    fr_buf wire = {0}, outbuf = {0};
    stage_time pt = {0}, st = {0};
    uint64_t seq = 0, metrics = 0;
    int rv = 0;
    for (int64_t tick = 0; rv == 0; tick++) {
        bool timed = tick >= BENCH_WARMUP;
        for (long first = 0; rv == 0 && first < nseries; first += batch) {
            uint32_t n = (uint32_t)(first + batch <= nseries ? batch : nseries - first);
            if ((rv = make_wire(&wire, ++seq, tick, (uint32_t)first, n, base)) != 0) {
                break;
            }
            rv = run_batch(&wire, &pass, &tag, &anomaly, &outbuf, timed ? &pt : NULL,
                           timed ? &st : NULL);
            metrics += timed ? n : 0;
        }
        double spent =
            pt.decode + pt.pass + pt.encode + st.decode + st.tag + st.anomaly + st.encode;
        if (spent >= seconds) {
            break;
        }
    }
    if (rv != 0) {
        fprintf(stderr, "processor_thr: failed: %s\n", fr_strerror(rv));
        return 1;
    }
    double ptot = pt.decode + pt.pass + pt.encode;
    double stot = st.decode + st.tag + st.anomaly + st.encode;
    double m = (double)metrics;
    printf("%-13s %12s %9s  %-45s %s\n", "pipeline", "metrics/s", "ns/metric",
           "ns/metric: decode / plugins / encode", "out/in bytes");
    printf("%-13s %12.0f %9.1f  %5.1f / %5.1f (passthrough) / %5.1f %16s %.3f\n", "passthrough",
           m / ptot, ptot * 1e9 / m, pt.decode * 1e9 / m, pt.pass * 1e9 / m, pt.encode * 1e9 / m,
           "", (double)pt.out / (double)pt.in);
    printf("%-13s %12.0f %9.1f  %5.1f / %5.1f (tag) + %5.1f (anomaly) / %5.1f %4s %.3f\n",
           "tag+anomaly", m / stot, stot * 1e9 / m, st.decode * 1e9 / m, st.tag * 1e9 / m,
           st.anomaly * 1e9 / m, st.encode * 1e9 / m, "", (double)st.out / (double)st.in);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    anomaly.p->stats(anomaly.state, &pk);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS) {
        printf("\n%.0f metrics timed per pipeline; anomaly stats: ", m);
        msgpack_object_print(stdout, u.data);
        printf("\n");
    }
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    printf("goal: tag+anomaly >= 1000000 metrics/s on one core: %s\n",
           m / stot >= 1e6 ? "met" : "NOT met");
    fr_buf_free(&wire);
    fr_buf_free(&outbuf);
    free(base);
    bench_node_close(&anomaly);
    bench_node_close(&tag);
    bench_node_close(&pass);
    return 0;
}
