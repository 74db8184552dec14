/* pg_publish: sustained rows/s through the postgresql sink's write() into a
 * throwaway cluster (scripts/pg-cluster.sh), beside the baseline in the
 * same run: the same rows as text loaded by `psql \copy` into an identical
 * table, the machine's ceiling for getting rows into PostgreSQL. Batches of
 * 1000 metrics (a libvirt-like namespace, two tags each, doubles), handed
 * 10 to a write as the publisher's deliveries do. Figures are printed, not
 * asserted.
 *
 *   pg_publish [--seconds S]
 *
 * Without PostgreSQL on the machine it says so and exits 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "builtin.h"
#include "fresco/log.h"
#include "fresco/manifest.h"
#include "fresco/pipeline.h"
#include "stack_util.h"

#ifndef FRESCO_SOURCE_DIR
#define FRESCO_SOURCE_DIR "."
#endif

#define BATCH     1000
#define PER_WRITE 10
#define SERIES    10000

static bench_pg pg;

static void quiet(void *arg, const char *message)
{
}

static bool sql(const char *q)
{
    PGconn *c = PQconnectdb(pg.conninfo);
    PQsetNoticeProcessor(c, quiet, NULL);
    PGresult *r = PQexec(c, q);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) {
        fprintf(stderr, "%s: %s", q, PQerrorMessage(c));
    }
    PQclear(r);
    PQfinish(c);
    return ok;
}

/* Batch k of the run: 1000 metrics of series (k*1000 .. ) mod SERIES. */
static fr_batch *batch_make(uint64_t k)
{
    fr_batch *b = fr_batch_new("bench", "node-1", k + 1);
    int64_t ts = 1700000000000000000LL + (int64_t)(k * BATCH / SERIES) * 1000000000LL;
    for (uint32_t i = 0; i < BATCH; i++) {
        uint64_t s = (k * BATCH + i) % SERIES;
        char ns[96], dom[24];
        snprintf(dom, sizeof(dom), "vm-%llu", (unsigned long long)(s / 10));
        snprintf(ns, sizeof(ns), "/intel/libvirt/%s/cpu/%llu/cputime", dom,
                 (unsigned long long)(s % 10));
        fr_metric *m =
            fr_batch_add(b, ns, ts + (int64_t)i * 1000, fr_val_f64((double)s * 0.5), "ns");
        fr_batch_metric_tag(b, m, "domain", dom);
        fr_batch_metric_tag(b, m, "host", "node-1");
    }
    return b;
}

/* The sink: rows/s over seconds, each write PER_WRITE fresh batches. */
static double sink_rate(double seconds, uint64_t *rows_out)
{
    const fr_sink_plugin *p = fr_sink_find("postgresql");
    char text[512];
    snprintf(text, sizeof(text),
             "version: 1\nschedule: {type: simple, interval: 1s}\nworkflow:\n  collect:\n"
             "    metrics: {/a: {}}\n    publish:\n      - plugin_name: postgresql\n"
             "        config: {conninfo: \"%s\", table: bench_sink}\n",
             pg.conninfo);
    fr_manifest *m = NULL;
    fr_error err;
    void *cfg = NULL, *st = NULL;
    if (p == NULL || fr_manifest_parse(text, strlen(text), "bench", &m, &err) != 0 ||
        fr_node_config_load(&p->config, p->name, &m->collect.publish[0].config,
                            "workflow.collect.publish[0]", &cfg, &err) != 0) {
        fprintf(stderr, "pg_publish: %s %s\n", err.where, err.message);
        fr_manifest_free(m);
        return -1;
    }
    fr_sink_info info = {"bench/publish[0]", "bench", "bench", "publish[0]", NULL};
    if (p->init(&st, cfg, &info, &err) != 0) {
        fprintf(stderr, "pg_publish: init: %s\n", err.message);
        return -1;
    }
    /* Batches made beforehand, so the clock measures the sink alone. */
    enum { POOL = 400 };
    fr_batch **pool = calloc(POOL, sizeof(*pool));
    for (uint64_t k = 0; k < POOL; k++) {
        pool[k] = batch_make(k);
    }
    /* one write first: connection and schema out of the measurement */
    if (p->write(st, pool, 1, &err) != 0) {
        fprintf(stderr, "pg_publish: write: %s\n", err.message);
        return -1;
    }
    uint64_t next = 1, rows = 0, seq = POOL + 1;
    double t0 = bench_now();
    while (bench_now() < t0 + seconds) {
        fr_batch *grp[PER_WRITE];
        for (int i = 0; i < PER_WRITE; i++) {
            fr_batch *b = pool[next++ % POOL];
            b->seq = seq++; /* a new batch each time, as the spool gives them */
            grp[i] = b;
        }
        if (p->write(st, grp, PER_WRITE, &err) != 0) {
            fprintf(stderr, "pg_publish: write: %s\n", err.message);
            break;
        }
        rows += (uint64_t)PER_WRITE * BATCH;
    }
    double t1 = bench_now();
    p->destroy(st);
    fr_node_config_free(&p->config, cfg);
    fr_manifest_free(m);
    for (uint64_t k = 0; k < POOL; k++) {
        fr_batch_destroy(pool[k]);
    }
    free(pool);
    *rows_out = rows;
    return (double)rows / (t1 - t0);
}

/* psql \copy of the same rows into an identical table. */
static double copy_rate(uint64_t rows)
{
    if (!sql("CREATE TABLE bench_copy (LIKE bench_sink INCLUDING ALL)")) {
        return -1;
    }
    char path[300];
    snprintf(path, sizeof(path), "%s/rows.tsv", pg.dir);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    for (uint64_t k = 0; k * BATCH < rows; k++) {
        for (uint32_t i = 0; i < BATCH; i++) {
            uint64_t s = (k * BATCH + i) % SERIES;
            fprintf(f,
                    "2023-11-14 22:13:%02llu.%06u+00\t/intel/libvirt/vm-%llu/cpu/%llu/cputime\t%.1f"
                    "\t\\N\tns\t{\"domain\": \"vm-%llu\", \"host\": \"node-1\"}\tbench\tnode-1\n",
                    (unsigned long long)(k * BATCH / SERIES % 60), i, (unsigned long long)(s / 10),
                    (unsigned long long)(s % 10), (double)s * 0.5, (unsigned long long)(s / 10));
        }
    }
    fclose(f);
    char cmd[1200];
    snprintf(cmd, sizeof(cmd),
             "psql -q \"%s\" -c \"\\copy bench_copy (time, namespace, value, value_text, unit, "
             "tags, task, source) from '%s'\" >/dev/null",
             pg.conninfo, path);
    double t0 = bench_now();
    int rc = system(cmd);
    double t1 = bench_now();
    unlink(path);
    return rc == 0 ? (double)rows / (t1 - t0) : -1;
}

int main(int argc, char **argv)
{
    double seconds = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else {
            fprintf(stderr, "usage: pg_publish [--seconds S]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    fr_log_init("pg_publish", FR_LOG_WARN, false);
    if (!bench_pg_start(&pg, FRESCO_SOURCE_DIR)) {
        printf("pg_publish: no PostgreSQL could be started here (scripts/pg-cluster.sh): "
               "skipped\n");
        return 0;
    }
    uint64_t rows = 0;
    double sink = sink_rate(seconds, &rows);
    double ceiling = rows > 0 ? copy_rate(rows) : -1;
    printf("pg_publish: batches of %d metrics (2 tags, doubles) over %d series, %d batches per "
           "write, %.1f s\n",
           BATCH, SERIES, PER_WRITE, seconds);
    printf("postgresql sink        %10.0f rows/s (%llu rows, each batch's key checked and "
           "recorded in fresco_batches)\n",
           sink, (unsigned long long)rows);
    printf("psql \\copy (baseline) %10.0f rows/s (the same rows as text, an identical table)\n",
           ceiling);
    if (sink > 0 && ceiling > 0) {
        printf("sink / ceiling: %.0f%% (goal >= 60%%)\n", 100.0 * sink / ceiling);
    }
    bench_pg_destroy(&pg);
    return sink > 0 && ceiling > 0 ? 0 : 1;
}
