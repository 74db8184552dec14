/* pipeline_scale: metrics/s through fresco-processor and fresco-publisher
 * with one and with two replicas of each, beside the bare data path (a
 * receiver that only acknowledges) in the same run.
 *
 * This process stands in for the collector: it sends batches of --batch
 * metrics (over --series series, 2 tags each) as fast as the pipeline
 * acknowledges them, for --seconds per layout. The task tags every metric
 * (tag processor) and publishes it to /dev/null through the file sink, so
 * every metric is decoded, processed, encoded, spooled, read back, turned
 * into a JSON line and written. A batch counts when the processor
 * acknowledged it, which it does only after the publisher has spooled its
 * output. Figures are printed, not asserted.
 *
 *   pipeline_scale [--seconds S] [--batch N] [--series N] [--build DIR] */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "fresco/data.h"
#include "fresco/log.h"
#include "fresco/manifest.h"
#include "fresco/metric.h"
#include "fresco/pipectl.h"
#include "stack_util.h"

typedef struct opts {
    double seconds;
    uint32_t batch;
    uint32_t series;
    const char *build;
} opts;

static const char task_yaml[] = "version: 1\n"
                                "schedule: {type: simple, interval: 1s}\n"
                                "workflow:\n"
                                "  collect:\n"
                                "    metrics: {/bench/*: {}}\n"
                                "    process:\n"
                                "      - plugin_name: tag\n"
                                "        config: {tags: \"bench:scale,stage:processed\"}\n"
                                "        publish:\n"
                                "          - plugin_name: file\n"
                                "            config: {file: /dev/null}\n";

/* Fills b with n metrics of the series after *next. */
static void batch_fill(fr_batch *b, uint32_t n, uint32_t series, uint32_t *next, int64_t ts)
{
    for (uint32_t i = 0; i < n; i++) {
        char ns[64];
        uint32_t s = (*next)++ % series;
        snprintf(ns, sizeof(ns), "/bench/host-%u/cpu/%u", s / 16, s % 16);
        fr_metric *m = fr_batch_add(b, ns, ts, fr_val_f64((double)(s % 100) * 0.5), "percent");
        fr_batch_metric_tag(b, m, "dc", "eu-west");
        fr_batch_metric_tag(b, m, "rack", "r12");
    }
}

typedef struct result {
    double metrics_per_s;
    double seconds;
    uint64_t batches;
    double share[2]; /* of each processor replica */
    double cpu[4];   /* processes' CPU seconds per second: proc0, proc1, pub0, pub1 */
} result;

/* Sends batches to urls for o->seconds; counts what is acknowledged. */
static bool drive(const opts *o, const char *const *urls, size_t nurls, double *rate,
                  uint64_t *batches, double *took)
{
    fr_data_sender *tx = NULL;
    fr_data_sender_opts so = {.window = 64, .queue = 64, .resend_ms = 5000};
    if (fr_data_sender_open(&tx, urls, nurls, NULL, &so) != 0) {
        return false;
    }
    fr_batch *b = fr_batch_new("bench-scale", "bench", 1);
    fr_buf wire = FR_BUF_INIT;
    uint32_t next = 0;
    uint64_t seq = 1;
    double t0 = bench_now(), until = t0 + o->seconds;
    bool ok = true;
    while (bench_now() < until) {
        fr_batch_reset(b, "bench-scale", "bench", seq++);
        batch_fill(b, o->batch, o->series, &next, (int64_t)(bench_now() * 1e9));
        fr_buf_reset(&wire);
        if (fr_batch_encode(b, &wire) != 0 || fr_data_send_buf(tx, &wire, 30000) != 0) {
            ok = false;
            break;
        }
    }
    if (fr_data_flush(tx, 60000) != 0) {
        ok = false;
    }
    double t1 = bench_now();
    fr_data_sender_stats st;
    fr_data_sender_stats_get(tx, &st);
    *batches = st.acked;
    *took = t1 - t0;
    *rate = (double)st.acked * o->batch / (t1 - t0);
    fr_buf_free(&wire);
    fr_batch_destroy(b);
    fr_data_sender_close(tx);
    return ok && st.rejected == 0;
}

static int ack_all(void *ctx, const void *data, size_t len, fr_error *err)
{
    return 0;
}

/* The data path alone: the same batches to a receiver that only acks. */
static bool bus_alone(const opts *o, result *r)
{
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", bench_free_port());
    fr_data_receiver *rx = NULL;
    if (fr_data_receiver_start(&rx, url, true, NULL, 32, ack_all, NULL) != 0) {
        return false;
    }
    const char *urls[] = {url};
    bool ok = drive(o, urls, 1, &r->metrics_per_s, &r->batches, &r->seconds);
    fr_data_receiver_stop(rx);
    return ok;
}

static bool layout(const opts *o, int nproc, int npub, result *r)
{
    memset(r, 0, sizeof(*r));
    char *dir = bench_tmpdir("fresco-bench-scale");
    bench_svc pub[2], proc[2];
    memset(pub, 0, sizeof(pub));
    memset(proc, 0, sizeof(proc));
    bool ok = dir != NULL;
    char pubs[256] = "--publishers=", pubctls[256] = "--publisher_controls=";
    for (int i = 0; ok && i < npub; i++) {
        char sd[600];
        snprintf(sd, sizeof(sd), "--state_dir=%s/publisher-%d", dir, i);
        const char *extra[] = {sd, "--log.level=warn", NULL};
        ok = bench_svc_start(&pub[i], o->build, dir, "publisher", true, extra);
        strcat(pubs, i ? "," : "");
        strcat(pubs, pub[i].data_in);
        strcat(pubctls, i ? "," : "");
        strcat(pubctls, pub[i].control);
    }
    const char *urls[2];
    for (int i = 0; ok && i < nproc; i++) {
        const char *extra[] = {pubs, pubctls, "--log.level=warn", NULL};
        ok = bench_svc_start(&proc[i], o->build, dir, "processor", true, extra);
        urls[i] = proc[i].data_in;
    }
    fr_manifest *m = NULL;
    fr_error err;
    fr_buf args = FR_BUF_INIT;
    if (ok && fr_manifest_parse(task_yaml, strlen(task_yaml), "bench.yaml", &m, &err) == 0 &&
        fr_pipeline_put_pack("bench-scale", "bench-scale", m, &args) == 0) {
        for (int i = 0; ok && i < nproc; i++) {
            ok = bench_call(&proc[i], "pipeline.put", args.data, args.len, 10000);
        }
    } else {
        ok = false;
    }
    fr_manifest_free(m);
    fr_buf_free(&args);
    double cpu0[4] = {0};
    for (int i = 0; i < 2; i++) {
        cpu0[i] = proc[i].pid > 0 ? bench_cpu_of(proc[i].pid) : 0;
        cpu0[2 + i] = pub[i].pid > 0 ? bench_cpu_of(pub[i].pid) : 0;
    }
    if (ok) {
        ok = drive(o, urls, (size_t)nproc, &r->metrics_per_s, &r->batches, &r->seconds);
    }
    for (int i = 0; i < 2; i++) {
        if (proc[i].pid > 0) {
            r->cpu[i] = (bench_cpu_of(proc[i].pid) - cpu0[i]) / r->seconds;
        }
        if (pub[i].pid > 0) {
            r->cpu[2 + i] = (bench_cpu_of(pub[i].pid) - cpu0[2 + i]) / r->seconds;
        }
    }
    uint64_t in[2] = {0, 0};
    for (int i = 0; ok && i < nproc; i++) {
        in[i] = bench_counter(&proc[i], "batches_in");
    }
    if (ok && in[0] + in[1] > 0) {
        r->share[0] = (double)in[0] / (double)(in[0] + in[1]);
        r->share[1] = (double)in[1] / (double)(in[0] + in[1]);
    }
    for (int i = 0; i < 2; i++) {
        bench_svc_stop(&proc[i]);
    }
    for (int i = 0; i < 2; i++) {
        bench_svc_stop(&pub[i]);
    }
    bench_rmtree(dir);
    free(dir);
    return ok;
}

int main(int argc, char **argv)
{
    opts o = {.seconds = 5, .batch = 1000, .series = 10000, .build = "."};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            o.seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc) {
            o.batch = (uint32_t)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--series") == 0 && i + 1 < argc) {
            o.series = (uint32_t)atoi(argv[++i]);
        } else if (strcmp(argv[i], "--build") == 0 && i + 1 < argc) {
            o.build = argv[++i];
        } else {
            fprintf(stderr, "usage: pipeline_scale [--seconds S] [--batch N] [--series N] "
                            "[--build DIR]\n");
            return 2;
        }
    }
    if (o.batch == 0 || o.series == 0 || o.seconds <= 0) {
        fprintf(stderr, "pipeline_scale: --batch, --series and --seconds must be positive\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    fr_log_init("pipeline_scale", FR_LOG_ERROR, false);
    printf("pipeline_scale: batches of %u metrics over %u series, %.1f s per layout; task: tag -> "
           "file sink (/dev/null); %ld cores\n",
           o.batch, o.series, o.seconds, sysconf(_SC_NPROCESSORS_ONLN));
    result bus;
    if (!bus_alone(&o, &bus)) {
        fprintf(stderr, "pipeline_scale: the bare data path failed\n");
        return 1;
    }
    printf("%-36s %12.0f metrics/s  (baseline: the data path alone, acks only)\n",
           "data path alone", bus.metrics_per_s);
    static const int layouts[][2] = {{1, 1}, {2, 1}, {1, 2}, {2, 2}};
    double first = 0;
    int rc = 0;
    for (size_t k = 0; k < sizeof(layouts) / sizeof(layouts[0]); k++) {
        result r;
        int np = layouts[k][0], nb = layouts[k][1];
        char name[64];
        snprintf(name, sizeof(name), "%d processor(s), %d publisher(s)", np, nb);
        if (!layout(&o, np, nb, &r)) {
            printf("%-36s FAILED\n", name);
            rc = 1;
            continue;
        }
        if (k == 0) {
            first = r.metrics_per_s;
        }
        printf("%-36s %12.0f metrics/s  x%.2f of 1+1, %.0f%% of the data path; processors "
               "%.0f%%/%.0f%% of batches; CPU proc %.2f+%.2f pub %.2f+%.2f cores\n",
               name, r.metrics_per_s, first > 0 ? r.metrics_per_s / first : 0,
               100.0 * r.metrics_per_s / bus.metrics_per_s, 100 * r.share[0], 100 * r.share[1],
               r.cpu[0], r.cpu[1], r.cpu[2], r.cpu[3]);
    }
    return rc;
}
