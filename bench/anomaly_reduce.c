/* anomaly_reduce: the report's claim for the anomaly detection processor
 * ("a 16-fold decrease in the volume of telemetry ... without losing any
 * monitoring information of statistical importance", from 400 containers)
 * on a seeded synthetic data set:
 *
 *   400 series at 1 Hz for 600 s of metric time, each a baseline (uniform
 *   in [50, 500]) plus Gaussian noise (sigma 1% of the baseline), with
 *   injected spikes (one point off by 10..20 sigma) and level shifts (the
 *   baseline moves by 10..20 sigma for good), at least 90 s apart within a
 *   series and none in the first 60 s (the windows fill first).
 *
 * Each tick is one batch of 400 metrics through the anomaly plugin, called
 * as the processor calls it. Printed: points in / points forwarded (the
 * reduction factor), and the share of injected anomalies delivered with
 * their context: the outlier, the buf_length points before it and the
 * `after` points after it all forwarded. Beside it, in the same run on the
 * same data: the plugin at the default send_interval (10 s), and snap's
 * anomalydetection algorithm (consecutive windows of BufLength, quartiles
 * from the unsorted window, only the outliers forwarded), reimplemented
 * here from its description for comparison.
 *
 * Results are printed, not asserted; the exit code is non-zero only when a
 * run failed. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/metric.h"
#include "fresco/pipeline.h"
#include "procnode.h"

#define NSERIES  400
#define NTICKS   600
#define NSPIKES  100
#define NSHIFTS  50
#define SPACING  90 /* ticks between two events of one series, at least */
#define FIRST    60 /* no event before this tick */
#define BUF      30
#define AFTER    10
#define BENCH_T0 (1800000000LL * 1000000000LL)
#define SEC      1000000000LL

typedef struct event {
    uint32_t series, tick;
    bool shift;
} event;

static uint64_t rng_state;
static int buf = BUF, ctx_after = AFTER;
static uint64_t seed = 42;

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

static double rng_gauss(void)
{
    double u = rng_unit(), v = rng_unit();
    return sqrt(-2 * log(u > 0 ? u : 1e-300)) * cos(2 * M_PI * v);
}

static double values[NSERIES][NTICKS];
static event events[NSPIKES + NSHIFTS];

/* Fills values and events. */
static void make_data(void)
{
    rng_state = seed;
    double base[NSERIES], sigma[NSERIES];
    for (int s = 0; s < NSERIES; s++) {
        base[s] = 50 + 450 * rng_unit();
        sigma[s] = base[s] * 0.01;
    }
    /* where the events go */
    int n = 0;
    while (n < NSPIKES + NSHIFTS) {
        uint32_t s = (uint32_t)(rng_next() % NSERIES);
        uint32_t t = FIRST + (uint32_t)(rng_next() % (NTICKS - AFTER - 1 - FIRST));
        bool clash = false;
        for (int i = 0; i < n && !clash; i++) {
            clash = events[i].series == s && (uint32_t)abs((int)events[i].tick - (int)t) < SPACING;
        }
        if (!clash) {
            events[n] = (event){s, t, n >= NSPIKES};
            n++;
        }
    }
    for (int s = 0; s < NSERIES; s++) {
        double level = base[s];
        for (int t = 0; t < NTICKS; t++) {
            double spike = 0;
            for (int i = 0; i < n; i++) {
                if (events[i].series != (uint32_t)s || events[i].tick != (uint32_t)t) {
                    continue;
                }
                double amp = (10 + 10 * rng_unit()) * sigma[s] * (rng_next() & 1 ? 1 : -1);
                if (events[i].shift) {
                    level += amp;
                } else {
                    spike = amp;
                }
            }
            values[s][t] = level + spike + sigma[s] * rng_gauss();
        }
    }
}

typedef struct result {
    uint64_t forwarded;
    uint32_t outlier_seen; /* events whose outlier point was forwarded */
    uint32_t with_context; /* ... and its context */
    uint64_t flagged;      /* the plugin's outlier count */
} result;

static bool sent[NSERIES][NTICKS];

static void score(result *r)
{
    r->forwarded = 0;
    for (int s = 0; s < NSERIES; s++) {
        for (int t = 0; t < NTICKS; t++) {
            r->forwarded += sent[s][t];
        }
    }
    r->outlier_seen = r->with_context = 0;
    for (int i = 0; i < NSPIKES + NSHIFTS; i++) {
        const event *e = &events[i];
        if (!sent[e->series][e->tick]) {
            continue;
        }
        r->outlier_seen++;
        bool all = true;
        for (uint32_t t = e->tick - (uint32_t)buf; t <= e->tick + (uint32_t)ctx_after && all; t++) {
            all = sent[e->series][t];
        }
        r->with_context += all;
    }
}

/* The fresco plugin over the data set, one batch per tick. */
static int run_plugin(const char *config, result *r)
{
    bench_node n;
    if (bench_node_open(&n, "anomaly_reduce", "anomaly", config) != 0) {
        return -1;
    }
    memset(sent, 0, sizeof(sent));
    int rv = 0;
    for (int t = 0; t < NTICKS && rv == 0; t++) {
        fr_batch *in = fr_batch_new("task-1", "node-1", (uint64_t)t + 1);
        for (int s = 0; s < NSERIES && in != NULL; s++) {
            char ns[96], c[16];
            snprintf(c, sizeof(c), "c%03d", s);
            snprintf(ns, sizeof(ns), "/intel/docker/%s/grpc/requests_per_second", c);
            fr_metric *m = fr_batch_add(in, ns, BENCH_T0 + t * SEC, fr_val_f64(values[s][t]), "");
            if (m == NULL || fr_batch_metric_tag(in, m, "container", c) != 0) {
                rv = FR_ENOMEM;
            }
        }
        fr_batch *out = NULL;
        if (in == NULL || rv != 0 || (rv = bench_node_run(&n, "anomaly_reduce", in, &out)) != 0) {
            rv = rv != 0 ? rv : FR_ENOMEM;
        }
        for (uint32_t i = 0; rv == 0 && i < out->nmetrics; i++) {
            const fr_metric *m = &out->metrics[i];
            unsigned s;
            int64_t tick = (m->ts - BENCH_T0) / SEC;
            if (sscanf(m->ns, "/intel/docker/c%u/", &s) != 1 || s >= NSERIES || tick < 0 ||
                tick >= NTICKS || sent[s][tick] || m->value.v.d != values[s][tick]) {
                fprintf(stderr, "anomaly_reduce: unexpected output %s at %lld\n", m->ns,
                        (long long)tick);
                rv = FR_EINVAL;
                break;
            }
            sent[s][tick] = true;
        }
        fr_batch_destroy(out);
        fr_batch_destroy(in);
    }
    if (rv == 0) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        n.p->stats(n.state, &pk);
        fr_doc doc;
        fr_error err;
        if (fr_doc_decode(sb.data, sb.size, &doc, &err) == 0) {
            fr_node_get_u64(doc.root, "outliers", &r->flagged);
            fr_doc_free(&doc);
        }
        msgpack_sbuffer_destroy(&sb);
        score(r);
    }
    bench_node_close(&n);
    return rv;
}

/* snap's quartiles: from the window as it came, unsorted. */
static void snap_fences(const double *v, int l, double k, double *lo, double *hi)
{
    double q1, q3;
    if (l % 2 == 0) {
        q1 = v[l / 4];
        q3 = v[3 * l / 4];
    } else {
        q1 = v[l / 4] + (v[l / 4 + 1] - v[l / 4]) * 0.25;
        q3 = v[3 * l / 4 - 1] + (v[3 * l / 4] - v[3 * l / 4 - 1]) * 0.75;
    }
    *lo = q1 - k * (q3 - q1);
    *hi = q3 + k * (q3 - q1);
}

/* snap's anomalydetection: a series' points gather until BufLength - 1 are
 * held; the next point triggers the test (and is itself dropped), the
 * outliers among those held are forwarded, the rest discarded. */
static void run_snap(double factor, result *r)
{
    memset(sent, 0, sizeof(sent));
    r->flagged = 0;
    for (int s = 0; s < NSERIES; s++) {
        int held[BUF], nheld = 0;
        double v[BUF];
        for (int t = 0; t < NTICKS; t++) {
            if (nheld < BUF - 1) {
                held[nheld] = t;
                v[nheld++] = values[s][t];
                continue;
            }
            double lo, hi;
            snap_fences(v, nheld, factor, &lo, &hi);
            for (int i = 0; i < nheld; i++) {
                if (v[i] < lo || v[i] > hi) {
                    sent[s][held[i]] = true;
                    r->flagged++;
                }
            }
            nheld = 0;
        }
    }
    score(r);
}

static void print_row(const char *name, const result *r)
{
    int nev = NSPIKES + NSHIFTS;
    printf("%-52s %9llu %8.1fx %8llu %9.1f%% %9.1f%%\n", name, (unsigned long long)r->forwarded,
           (double)NSERIES * NTICKS / (double)(r->forwarded ? r->forwarded : 1),
           (unsigned long long)r->flagged, 100.0 * r->outlier_seen / nev,
           100.0 * r->with_context / nev);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: anomaly_reduce [--factor K] [--send-interval D] [--after N] [--seed N]\n"
               "  the first three change the chosen config (defaults: 3.5, 60s, 10);\n"
               "  --seed another data set of the same kind (default 42)\n");
}

int main(int argc, char **argv)
{
    const char *factor = "3.5", *interval = "60s";
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--factor") == 0 && i + 1 < argc) {
            factor = argv[++i];
        } else if (strcmp(argv[i], "--send-interval") == 0 && i + 1 < argc) {
            interval = argv[++i];
        } else if (strcmp(argv[i], "--after") == 0 && i + 1 < argc) {
            long a = strtol(argv[++i], &end, 10);
            if (*end != '\0' || a < 0 || a > AFTER) {
                fprintf(stderr, "anomaly_reduce: --after: not in 0..%d: '%s'\n", AFTER, argv[i]);
                return 2;
            }
            ctx_after = (int)a;
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            seed = strtoull(argv[++i], &end, 10);
            if (*end != '\0') {
                fprintf(stderr, "anomaly_reduce: --seed: not a number: '%s'\n", argv[i]);
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
    }
    make_data();
    char chosen[128];
    snprintf(chosen, sizeof(chosen), "{buf_length: %d, factor: %s, send_interval: %s, after: %d}",
             buf, factor, interval, ctx_after);
    printf("anomaly_reduce: %d series at 1 Hz for %d s of metric time (%d points), seed %llu\n"
           "data: baseline uniform in [50, 500] per series, Gaussian noise sigma = 1%% of it;\n"
           "      injected %d spikes (one point, 10..20 sigma) and %d level shifts (10..20 sigma,\n"
           "      lasting), >= %d s apart within a series, none before %d s\n"
           "context: an anomaly counts as delivered with its context when its first anomalous\n"
           "      point, the %d points before it and the %d after it were all forwarded\n\n",
           NSERIES, NTICKS, NSERIES * NTICKS, (unsigned long long)seed, NSPIKES, NSHIFTS, SPACING,
           FIRST, buf, ctx_after);
    printf("config: anomaly %s\n", chosen);
    printf("why send_interval 60s: a stable series forwards one point per send_interval, so at\n"
           "      1 Hz the reduction cannot exceed send_interval / 1 s: 10x at the default 10s,\n"
           "      short of the report's 16x however quiet the data. 60s still shows a stable\n"
           "      series' level once a minute, and every change still comes with all its points\n"
           "      (send_interval only thins what the test found unremarkable).\n"
           "why factor 3.5: quartiles of a 30-point window are noisy, so on Gaussian noise a\n"
           "      point falls outside 3.0 IQR fences about 7 times in 10 000 (outside 3.5: 2.5),\n"
           "      and each such false alarm forwards its whole window; the injected changes\n"
           "      (>= 10 sigma) stay far outside either. The rows below show both.\n\n");

    typedef struct row {
        const char *name;
        char config[128];
        result r;
    } row;
    row rows[] = {
        {"fresco anomaly, the config above", "", {0}},
        {"fresco anomaly, factor 3.0, send_interval 60s", "", {0}},
        {"fresco anomaly, factor 3.5, send_interval 30s", "", {0}},
        {"fresco anomaly, defaults (3.0, 10s)", "", {0}},
    };
    snprintf(rows[0].config, sizeof(rows[0].config), "%s", chosen);
    snprintf(rows[1].config, sizeof(rows[1].config),
             "{buf_length: %d, factor: 3.0, send_interval: 60s, after: %d}", buf, ctx_after);
    snprintf(rows[2].config, sizeof(rows[2].config),
             "{buf_length: %d, factor: 3.5, send_interval: 30s, after: %d}", buf, ctx_after);
    snprintf(rows[3].config, sizeof(rows[3].config),
             "{buf_length: %d, factor: 3.0, send_interval: 10s, after: %d}", buf, ctx_after);
    size_t nrows = sizeof(rows) / sizeof(rows[0]);
    for (size_t i = 0; i < nrows; i++) {
        if (run_plugin(rows[i].config, &rows[i].r) != 0) {
            return 1;
        }
    }
    result snap = {0};
    run_snap(3.0, &snap);
    printf("%-52s %9s %9s %8s %10s %10s\n", "method", "forwarded", "reduction", "flagged",
           "outlier", "w/ context");
    for (size_t i = 0; i < nrows; i++) {
        print_row(rows[i].name, &rows[i].r);
    }
    print_row("snap anomalydetection (BufLength 30, Factor 3.0)", &snap);
    printf("(flagged: points found outside the fences, injected or not, of %d injected anomalies;\n"
           " a level shift flags several points until the window adapts. snap's quartiles come\n"
           " from the unsorted window: when its Q3 sample is below its Q1 sample the fences\n"
           " cross and every point of that window is an \"outlier\".)\n\n",
           NSPIKES + NSHIFTS);
    const result *c = &rows[0].r;
    double red = (double)NSERIES * NTICKS / (double)c->forwarded;
    int nev = NSPIKES + NSHIFTS;
    printf("goal: reduction >= 16x: %.1fx, %s; anomalies delivered with context = 100%%: "
           "%.1f%%, %s\n",
           red, red >= 16 ? "met" : "NOT met", 100.0 * c->with_context / nev,
           c->with_context == (uint32_t)nev ? "met" : "NOT met");
    return 0;
}
