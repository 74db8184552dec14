/* pipeline_e2e: the whole pipeline into PostgreSQL, as processes from the
 * build tree: fresco-collector's synthetic series -> fresco-processor (tag)
 * -> fresco-publisher -> the postgresql sink -> a throwaway cluster
 * (scripts/pg-cluster.sh). For each offered load (series per tick, every
 * 100 ms) it prints the metrics/s committed and the latency from
 * collection to commit: the table is created beforehand with one more
 * column, `ingested_at timestamptz DEFAULT clock_timestamp()`, which the
 * sink's COPY leaves to its default, so every row says when it went in;
 * latency = ingested_at - time, over the rows of the measured window
 * (p50, p99, max). Beside it in the same run, the baseline: the same
 * number of rows loaded by `psql \copy` from a file, the machine's ceiling
 * for getting rows into PostgreSQL. Figures are printed, not asserted.
 *
 *   pipeline_e2e [--seconds S] [--loads N,N,...] [--build DIR]
 *
 * Without PostgreSQL on the machine it says so and exits 0. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "fresco/log.h"
#include "stack_util.h"

#ifndef FRESCO_SOURCE_DIR
#define FRESCO_SOURCE_DIR "."
#endif

static bool pg_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) {
        fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    }
    PQclear(r);
    return ok;
}

static double pg_num(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    double v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
        v = strtod(PQgetvalue(r, 0, 0), NULL);
    }
    PQclear(r);
    return v;
}

/* The sink's table, created first with ingested_at as well. */
static bool table_prepare(PGconn *c, const char *table)
{
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "DROP TABLE IF EXISTS %s; CREATE TABLE %s (time timestamptz NOT NULL, namespace "
             "text NOT NULL, value double precision, value_text text, unit text, tags jsonb NOT "
             "NULL DEFAULT '{}', task text NOT NULL, source text NOT NULL, ingested_at "
             "timestamptz NOT NULL DEFAULT clock_timestamp())",
             table, table);
    return pg_exec(c, sql);
}

typedef struct load_result {
    int series;
    double offered, committed; /* metrics/s */
    double p50_ms, p99_ms, max_ms;
    uint64_t rows;
    double cpu[3]; /* cores used by collector, processor, publisher over the window */
} load_result;

static void quiet_notices(void *arg, const char *message)
{
}

static bool run_load(const char *build, bench_pg *p, int series, double seconds, load_result *r)
{
    memset(r, 0, sizeof(*r));
    r->series = series;
    r->offered = series * 10.0;
    char *dir = bench_tmpdir("fresco-bench-e2e");
    PGconn *c = PQconnectdb(p->conninfo);
    PQsetNoticeProcessor(c, quiet_notices, NULL);
    if (dir == NULL || PQstatus(c) != CONNECTION_OK || !table_prepare(c, "e2e_bench")) {
        PQfinish(c);
        free(dir);
        return false;
    }
    bench_svc pub = {0}, proc = {0}, col = {0};
    char sd[600], pubs[128], pubctl[128], procs[128], procctl[128], csd[600];
    snprintf(sd, sizeof(sd), "--state_dir=%s/publisher", dir);
    const char *pe[] = {sd, "--log.level=warn", NULL};
    bool ok = bench_svc_start(&pub, build, dir, "publisher", true, pe);
    snprintf(pubs, sizeof(pubs), "--publishers=%s", pub.data_in);
    snprintf(pubctl, sizeof(pubctl), "--publisher_controls=%s", pub.control);
    const char *pr[] = {pubs, pubctl, "--log.level=warn", NULL};
    ok = ok && bench_svc_start(&proc, build, dir, "processor", true, pr);
    snprintf(procs, sizeof(procs), "--processors=%s", proc.data_in);
    snprintf(procctl, sizeof(procctl), "--processor_controls=%s", proc.control);
    snprintf(csd, sizeof(csd), "--state_dir=%s/collector", dir);
    const char *ce[] = {procs, procctl, pubs, pubctl, csd, "--log.level=warn", NULL};
    ok = ok && bench_svc_start(&col, build, dir, "collector", false, ce);
    char manifest[2048];
    snprintf(manifest, sizeof(manifest),
             "version: 1\n"
             "schedule: {type: simple, interval: 100ms}\n"
             "workflow:\n"
             "  collect:\n"
             "    metrics: {/fresco/synthetic/*/gauge: {}}\n"
             "    config: {/fresco/synthetic: {series: %d}}\n"
             "    process:\n"
             "      - plugin_name: tag\n"
             "        config: {tags: \"bench:e2e\"}\n"
             "        publish:\n"
             "          - plugin_name: postgresql\n"
             "            config: {conninfo: \"%s\", table: e2e_bench}\n",
             series, p->conninfo);
    fr_buf args = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &args, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 8);
    msgpack_pack_str_body(&pk, "manifest", 8);
    msgpack_pack_str(&pk, strlen(manifest));
    msgpack_pack_str_body(&pk, manifest, strlen(manifest));
    ok = ok && bench_call(&col, "task.create", args.data, args.len, 15000);
    fr_buf_free(&args);
    if (ok) {
        /* a second to settle, then the measured window */
        double t0 = bench_now();
        while (bench_now() < t0 + 1.0) {
            usleep(10000);
        }
        char start[64];
        PGresult *res = PQexec(c, "SELECT clock_timestamp()::text");
        snprintf(start, sizeof(start), "%s",
                 PQresultStatus(res) == PGRES_TUPLES_OK ? PQgetvalue(res, 0, 0) : "now()");
        PQclear(res);
        bench_svc *svc[3] = {&col, &proc, &pub};
        double cpu0[3];
        for (int k = 0; k < 3; k++) {
            cpu0[k] = bench_cpu_of(svc[k]->pid);
        }
        double t1 = bench_now();
        while (bench_now() < t1 + seconds) {
            usleep(20000);
        }
        double t2 = bench_now();
        for (int k = 0; k < 3; k++) {
            r->cpu[k] = (bench_cpu_of(svc[k]->pid) - cpu0[k]) / (t2 - t1);
        }
        char sql[1024];
        snprintf(sql, sizeof(sql),
                 "SELECT count(*) FROM e2e_bench WHERE ingested_at >= '%s' AND ingested_at < "
                 "'%s'::timestamptz + interval '%f seconds'",
                 start, start, t2 - t1);
        double rows = pg_num(c, sql);
        r->rows = rows > 0 ? (uint64_t)rows : 0;
        r->committed = rows / (t2 - t1);
        const char *q[3] = {"0.5", "0.99", NULL};
        double *outv[3] = {&r->p50_ms, &r->p99_ms, &r->max_ms};
        for (int k = 0; k < 3; k++) {
            if (q[k] != NULL) {
                snprintf(sql, sizeof(sql),
                         "SELECT 1000 * percentile_cont(%s) WITHIN GROUP (ORDER BY extract(epoch "
                         "FROM ingested_at - time)) FROM e2e_bench WHERE ingested_at >= '%s'",
                         q[k], start);
            } else {
                snprintf(sql, sizeof(sql),
                         "SELECT 1000 * max(extract(epoch FROM ingested_at - time)) FROM "
                         "e2e_bench WHERE ingested_at >= '%s'",
                         start);
            }
            *outv[k] = pg_num(c, sql);
        }
    }
    bench_svc_stop(&col);
    bench_svc_stop(&proc);
    bench_svc_stop(&pub);
    PQfinish(c);
    bench_rmtree(dir);
    free(dir);
    return ok && r->rows > 0;
}

/* psql \copy of n rows of the same shape into a like table. */
static double copy_ceiling(bench_pg *p, uint64_t n)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/rows.tsv", p->dir);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    for (uint64_t i = 0; i < n; i++) {
        fprintf(f,
                "2026-12-06 10:00:%02llu.%06llu+00\t/fresco/synthetic/s%llu/gauge\t%.6f\t\\N\t\\N\t"
                "{\"bench\": \"e2e\"}\ttask-1\tnode-1\n",
                (unsigned long long)(i / 1000000 % 60), (unsigned long long)(i % 1000000),
                (unsigned long long)(i % 20000), 100.0 + (double)(i % 97) * 0.25);
    }
    fclose(f);
    PGconn *c = PQconnectdb(p->conninfo);
    PQsetNoticeProcessor(c, quiet_notices, NULL);
    bool ok = PQstatus(c) == CONNECTION_OK && table_prepare(c, "e2e_ceiling");
    PQfinish(c);
    if (!ok) {
        return -1;
    }
    char cmd[1200];
    snprintf(cmd, sizeof(cmd),
             "psql -q \"%s\" -c \"\\copy e2e_ceiling (time, namespace, value, value_text, unit, "
             "tags, task, source) from '%s'\" >/dev/null",
             p->conninfo, path);
    double t0 = bench_now();
    int rc = system(cmd);
    double t1 = bench_now();
    unlink(path);
    return rc == 0 ? (double)n / (t1 - t0) : -1;
}

int main(int argc, char **argv)
{
    double seconds = 5;
    const char *build = ".";
    int loads[8] = {2000, 20000};
    int nloads = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "--build") == 0 && i + 1 < argc) {
            build = argv[++i];
        } else if (strcmp(argv[i], "--loads") == 0 && i + 1 < argc) {
            nloads = 0;
            for (char *t = strtok(argv[++i], ","); t != NULL && nloads < 8; t = strtok(NULL, ",")) {
                loads[nloads++] = atoi(t);
            }
        } else {
            fprintf(stderr, "usage: pipeline_e2e [--seconds S] [--loads N,N,...] [--build DIR]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    fr_log_init("pipeline_e2e", FR_LOG_ERROR, false);
    bench_pg p;
    if (!bench_pg_start(&p, FRESCO_SOURCE_DIR)) {
        printf("pipeline_e2e: no PostgreSQL could be started here (scripts/pg-cluster.sh): "
               "skipped\n");
        return 0;
    }
    printf("pipeline_e2e: collector (synthetic, every 100 ms) -> processor (tag) -> publisher -> "
           "PostgreSQL, %.1f s measured per load\n",
           seconds);
    int rc = 0;
    uint64_t most = 0;
    for (int i = 0; i < nloads; i++) {
        load_result r;
        if (!run_load(build, &p, loads[i], seconds, &r)) {
            printf("%6d series: FAILED\n", loads[i]);
            rc = 1;
            continue;
        }
        most = r.rows > most ? r.rows : most;
        printf("%6d series: offered %9.0f metrics/s, committed %9.0f metrics/s; collection to "
               "commit p50 %.1f ms, p99 %.1f ms, max %.1f ms; cores: collector %.2f, processor "
               "%.2f, publisher %.2f\n",
               r.series, r.offered, r.committed, r.p50_ms, r.p99_ms, r.max_ms, r.cpu[0], r.cpu[1],
               r.cpu[2]);
    }
    if (most > 0) {
        double ceiling = copy_ceiling(&p, most);
        printf("baseline: psql \\copy of %llu rows of the same shape: %.0f rows/s\n",
               (unsigned long long)most, ceiling);
    }
    bench_pg_destroy(&p);
    return rc;
}
