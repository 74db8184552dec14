/* The spark plugin against a copy of a CsvSink directory: the report's
 * namespaces, Spark 1 and 2 and YARN file names, rows read incrementally,
 * files coming and going, counters' "count" column, malformed rows. */
#include "file_plugin_harness.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const fr_collector_plugin fr_collector_spark;

#define NS   "/gwdg/spark/"
#define APP1 "app-20170320093300-0000"
#define T0   1489999990
#define T1   1490000000

typedef struct ctx {
    char *dir;
    char kv_dir[600];
    harness h;
} ctx;

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->dir = tst_tmpdir("fresco-spark");
    assert_non_null(c->dir);
    snprintf(c->kv_dir, sizeof(c->kv_dir), "csv_dir=%s", c->dir);
    char src[1024];
    DIR *d = opendir(tst_src(src, sizeof(src), "tests/collector/fixtures/spark/csv"));
    assert_non_null(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }
        char rel[512], dst[1024];
        snprintf(rel, sizeof(rel), "spark/csv/%s", de->d_name);
        snprintf(dst, sizeof(dst), "%s/%s", c->dir, de->d_name);
        harness_copy_fixture(rel, dst);
    }
    closedir(d);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    harness_close(&c->h);
    tst_rmtree(c->dir);
    free(c->dir);
    free(c);
    return 0;
}

static void open_plugin(ctx *c)
{
    const char *kv[] = {c->kv_dir, NULL};
    assert_fr_ok(harness_open(&c->h, &fr_collector_spark, kv));
}

static void path_of(const ctx *c, char *buf, size_t cap, const char *file)
{
    snprintf(buf, cap, "%s/%s", c->dir, file);
}

static const char *tag_of(const fr_metric *m, const char *key)
{
    for (uint32_t i = 0; i < m->ntags; i++) {
        if (strcmp(m->tags[i].key, key) == 0) {
            return m->tags[i].value;
        }
    }
    return NULL;
}

/* Every namespace section 3.1.3.9 of the report lists. */
static const char *const report_names[] = {
    NS "worker/coresfree",
    NS "worker/coresused",
    NS "worker/executors",
    NS "worker/memfreemb",
    NS "worker/memusedmb",
    NS "master/apps",
    NS "master/waitingapps",
    NS "master/workers",
    NS "application/*/cores",
    NS "application/*/runtime_ms",
    NS "application/*/status",
    NS "app/*/executor/filesystem/file/largeRead_ops",
    NS "app/*/executor/filesystem/file/read_bytes",
    NS "app/*/executor/filesystem/file/read_ops",
    NS "app/*/executor/filesystem/file/write_bytes",
    NS "app/*/executor/filesystem/file/write_ops",
    NS "app/*/executor/filesystem/hdfs/largeRead_ops",
    NS "app/*/executor/filesystem/hdfs/read_bytes",
    NS "app/*/executor/filesystem/hdfs/read_ops",
    NS "app/*/executor/filesystem/hdfs/write_bytes",
    NS "app/*/executor/filesystem/hdfs/write_ops",
    NS "app/*/executor/threadpool/activeTasks",
    NS "app/*/executor/threadpool/completeTasks",
    NS "app/*/executor/threadpool/currentPool_size",
    NS "app/*/executor/threadpool/maxPool_size",
    NS "app/*/<driver>/BlockManager/disk/diskSpaceUsed_MB",
    NS "app/*/<driver>/BlockManager/memory/maxMem_MB",
    NS "app/*/<driver>/BlockManager/memory/memUsed_MB",
    NS "app/*/<driver>/BlockManager/memory/remainingMem_MB",
    NS "app/*/<driver>/DAGScheduler/job/activeJobs",
    NS "app/*/<driver>/DAGScheduler/job/allJobs",
    NS "app/*/<driver>/DAGScheduler/stage/failedStages",
    NS "app/*/<driver>/DAGScheduler/stage/runningStages",
    NS "app/*/<driver>/DAGScheduler/stage/waitingStages",
};

static void test_description_covers_report(void **state)
{
    (void)state;
    harness_check_description(&fr_collector_spark);
    harness_check_docs(&fr_collector_spark);
    assert_int_equal(sizeof(report_names) / sizeof(report_names[0]), 34);
    for (size_t i = 0; i < 34; i++) {
        fr_ns_query *q = fr_ns_query_new();
        fr_error err;
        assert_fr_ok(fr_ns_query_add(q, report_names[i], &err));
        bool covered = false;
        for (size_t k = 0; k < fr_collector_spark.ncatalog; k++) {
            covered = covered || fr_ns_query_covers_pattern(q, 0, fr_collector_spark.catalog[k].ns);
        }
        fr_ns_query_destroy(q);
        if (!covered) {
            fail_msg("%s is not in the catalog", report_names[i]);
        }
    }
}

static void test_first_tick_reads_every_file(void **state)
{
    ctx *c = *state;
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, NS "*", HARNESS_SEC(T1 + 5)));
    /* 37 metric files in the catalog; jvm gauges and README.txt ignored. */
    assert_int_equal(c->h.batch->nmetrics, 37);

    const fr_metric *m = harness_get(&c->h, NS "master/workers");
    assert_int_equal(m->value.v.i, 2);
    assert_true(m->ts == HARNESS_SEC(T1)); /* the row's own time */
    assert_int_equal(harness_i64(&c->h, NS "master/aliveworkers"), 2);
    assert_int_equal(harness_i64(&c->h, NS "master/apps"), 1);
    assert_int_equal(harness_i64(&c->h, NS "master/waitingapps"), 0);
    assert_int_equal(harness_i64(&c->h, NS "worker/coresfree"), 2);
    assert_int_equal(harness_i64(&c->h, NS "worker/coresused"), 6);
    assert_int_equal(harness_i64(&c->h, NS "worker/executors"), 1);
    assert_int_equal(harness_i64(&c->h, NS "worker/memfreemb"), 18432);
    assert_int_equal(harness_i64(&c->h, NS "worker/memusedmb"), 6144);
    assert_string_equal(harness_get(&c->h, NS "worker/memusedmb")->unit, "MB");

    m = harness_get(&c->h, NS "application/PageRank.1489999980123/status");
    assert_int_equal(m->value.type, FR_VAL_STRING);
    assert_string_equal(m->value.v.s.ptr, "RUNNING");
    assert_int_equal(harness_i64(&c->h, NS "application/PageRank.1489999980123/cores"), 6);
    assert_int_equal(harness_i64(&c->h, NS "application/PageRank.1489999980123/runtime_ms"), 19877);

    assert_int_equal(harness_i64(&c->h, NS "app/" APP1 "/<driver>/BlockManager/memory/memUsed_MB"),
                     12);
    assert_int_equal(
        harness_i64(&c->h, NS "app/" APP1 "/<driver>/BlockManager/memory/remainingMem_MB"), 518);
    assert_int_equal(
        harness_i64(&c->h, NS "app/" APP1 "/<driver>/DAGScheduler/stage/waitingStages"), 1);
    assert_int_equal(
        harness_i64(&c->h, NS "app/app-20170320100000-0001/driver/DAGScheduler/job/allJobs"), 5);

    m = harness_get(&c->h, NS "app/" APP1 "/executor/threadpool/completeTasks");
    assert_int_equal(m->value.v.i, 37);
    assert_string_equal(tag_of(m, "executor"), "1");
    m = harness_get(&c->h, NS "app/" APP1 "/executor/filesystem/hdfs/read_bytes");
    assert_int_equal(m->value.v.i, 268435456);
    assert_string_equal(m->unit, "bytes");
    assert_int_equal(harness_i64(&c->h, NS "app/" APP1 "/executor/threadpool/maxPool_size"),
                     2147483647);
    m = harness_get(&c->h, NS "app/application_1490000000000_0001/executor/threadpool/activeTasks");
    assert_int_equal(m->value.v.i, 3);
    assert_string_equal(tag_of(m, "executor"), "2");

    /* Nothing new. */
    assert_fr_ok(harness_collect1(&c->h, NS "*", HARNESS_SEC(T1 + 6)));
    assert_int_equal(c->h.batch->nmetrics, 0);
}

static void test_new_rows_only(void **state)
{
    ctx *c = *state;
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, NS "*", HARNESS_SEC(T1)));
    char path[1024];
    path_of(c, path, sizeof(path), "worker.coresFree.csv");
    harness_append(path, "1490000010,0\n1490000020,");
    assert_fr_ok(harness_collect1(&c->h, NS "*", HARNESS_SEC(T1 + 21)));
    assert_int_equal(c->h.batch->nmetrics, 1);
    const fr_metric *m = harness_get(&c->h, NS "worker/coresfree");
    assert_int_equal(m->value.v.i, 0);
    assert_true(m->ts == HARNESS_SEC(1490000010));
    /* The half-written row completes. */
    harness_append(path, "8\n");
    assert_fr_ok(harness_collect1(&c->h, NS "*", HARNESS_SEC(T1 + 22)));
    assert_int_equal(c->h.batch->nmetrics, 1);
    m = harness_get(&c->h, NS "worker/coresfree");
    assert_int_equal(m->value.v.i, 8);
    assert_true(m->ts == HARNESS_SEC(1490000020));

    /* Replaced by a longer file (written aside, renamed over): it is read
     * from its start, not from the old offset: its bad second line shows. */
    char aside[1100], where[1200];
    snprintf(aside, sizeof(aside), "%s.new", path);
    const char *rows = "t,value\n1490000100,one\n1490000110,2\n1490000120,3\n1490000130,5\n"
                       "1490000140,6\n";
    assert_int_equal(tst_write_file(aside, rows, strlen(rows)), 0);
    assert_int_equal(rename(aside, path), 0);
    assert_int_equal(harness_collect1(&c->h, NS "worker/coresfree", HARNESS_SEC(T1 + 150)),
                     FR_EINVAL);
    snprintf(where, sizeof(where), "%s:2", path);
    assert_string_equal(c->h.err.where, where);
    assert_int_equal(c->h.batch->nmetrics, 1);
    assert_int_equal(harness_i64(&c->h, NS "worker/coresfree"), 6);
}

static void test_files_come_and_go(void **state)
{
    ctx *c = *state;
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, NS "application/*/*", HARNESS_SEC(T1)));
    assert_int_equal(c->h.batch->nmetrics, 3);

    /* A second application starts; the first one's files are cleaned up. */
    char path[1024];
    path_of(c, path, sizeof(path), "application.Word Count.1490000004321.status.csv");
    const char *rows = "t,value\n1490000010,WAITING\n";
    assert_int_equal(tst_write_file(path, rows, strlen(rows)), 0);
    path_of(c, path, sizeof(path), "application.PageRank.1489999980123.status.csv");
    assert_int_equal(unlink(path), 0);
    assert_fr_ok(harness_collect1(&c->h, NS "application/*/*", HARNESS_SEC(T1 + 10)));
    assert_int_equal(c->h.batch->nmetrics, 1);
    const fr_metric *m = harness_get(&c->h, NS "application/Word_Count.1490000004321/status");
    assert_string_equal(m->value.v.s.ptr, "WAITING");

    /* Recreated under the same name: read from its start again. */
    rows = "t,value\n1490000030,FINISHED\n";
    assert_int_equal(tst_write_file(path, rows, strlen(rows)), 0);
    assert_fr_ok(harness_collect1(&c->h, NS "application/*/status", HARNESS_SEC(T1 + 30)));
    assert_int_equal(c->h.batch->nmetrics, 1);
    m = harness_get(&c->h, NS "application/PageRank.1489999980123/status");
    assert_string_equal(m->value.v.s.ptr, "FINISHED");
}

static void test_queries(void **state)
{
    ctx *c = *state;
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, NS "worker/*", HARNESS_SEC(T1)));
    assert_int_equal(c->h.batch->nmetrics, 5);
    harness_close(&c->h);

    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, NS "app/*/executor/threadpool/*", HARNESS_SEC(T1)));
    assert_int_equal(c->h.batch->nmetrics, 5);
    harness_close(&c->h);

    open_plugin(c);
    assert_fr_ok(
        harness_collect1(&c->h, NS "app/*/<driver>/DAGScheduler/job/allJobs", HARNESS_SEC(T1)));
    assert_int_equal(c->h.batch->nmetrics, 1);
    harness_close(&c->h);

    open_plugin(c);
    const char *q[] = {NS "app/*/*/DAGScheduler/job/allJobs", NS "master/(apps;workers)", NULL};
    assert_fr_ok(harness_collect(&c->h, q, HARNESS_SEC(T1)));
    assert_int_equal(c->h.batch->nmetrics, 4);
    assert_int_equal(harness_i64(&c->h, NS "app/" APP1 "/<driver>/DAGScheduler/job/allJobs"), 3);
}

static void test_count_column_and_decimal_gauge(void **state)
{
    ctx *c = *state;
    char path[1024];
    path_of(c, path, sizeof(path), "master.apps.csv");
    const char *meter = "t,count,mean_rate,m1_rate,m5_rate,m15_rate,rate_unit\n"
                        "1490000020,7,0.1,0.2,0.3,0.4,events/second\n";
    assert_int_equal(tst_write_file(path, meter, strlen(meter)), 0);
    path_of(c, path, sizeof(path), "master.workers.csv");
    const char *dbl = "t,value\n1490000020,3.0\n";
    assert_int_equal(tst_write_file(path, dbl, strlen(dbl)), 0);
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, NS "master/*", HARNESS_SEC(T1)));
    assert_int_equal(harness_i64(&c->h, NS "master/apps"), 7);
    assert_int_equal(harness_i64(&c->h, NS "master/workers"), 3);
}

static void test_malformed_rows_named(void **state)
{
    ctx *c = *state;
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, NS "*", HARNESS_SEC(T1)));
    char path[1024], where[1100];
    path_of(c, path, sizeof(path), "worker.coresFree.csv");
    harness_append(path, "1490000010,four\n1490000020,4\n");
    char other[1024];
    path_of(c, other, sizeof(other), "worker.coresUsed.csv");
    harness_append(other, "1490000010,4\n");
    assert_int_equal(harness_collect1(&c->h, NS "*", HARNESS_SEC(T1 + 21)), FR_EINVAL);
    snprintf(where, sizeof(where), "%s:4", path);
    assert_string_equal(c->h.err.where, where);
    assert_non_null(strstr(c->h.err.message, "'four'"));
    /* The good row of the same file and the other file are kept. */
    assert_int_equal(c->h.batch->nmetrics, 2);
    assert_int_equal(harness_i64(&c->h, NS "worker/coresfree"), 4);
    assert_int_equal(harness_i64(&c->h, NS "worker/coresused"), 4);

    harness_append(path, "yesterday,4\n");
    assert_int_equal(harness_collect1(&c->h, NS "worker/*", HARNESS_SEC(T1 + 30)), FR_EINVAL);
    snprintf(where, sizeof(where), "%s:6", path);
    assert_string_equal(c->h.err.where, where);
    assert_non_null(strstr(c->h.err.message, "seconds since the epoch"));
}

static void test_missing_directory(void **state)
{
    ctx *c = *state;
    const char *kv[] = {"csv_dir=/nonexistent/spark-metrics", NULL};
    assert_fr_ok(harness_open(&c->h, &fr_collector_spark, kv));
    assert_int_equal(harness_collect1(&c->h, NS "*", HARNESS_SEC(1)), FR_ENOTFOUND);
    assert_string_equal(c->h.err.where, "/nonexistent/spark-metrics");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_description_covers_report),
        T(test_first_tick_reads_every_file),
        T(test_new_rows_only),
        T(test_files_come_and_go),
        T(test_queries),
        T(test_count_column_and_decimal_gauge),
        T(test_malformed_rows_named),
        T(test_missing_directory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
