/* The cloudsuite plugin: the data-caching client's statistics rows, read
 * incrementally from its output (and from its stats CSV variant), with
 * malformed rows named by file and line. */
#include "file_plugin_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const fr_collector_plugin fr_collector_cloudsuite;

#define NS "/gwdg/cloudsuite/datacaching/"

typedef struct ctx {
    char *dir;
    char log[512];
    char kv_log[600];
    harness h;
} ctx;

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->dir = tst_tmpdir("fresco-cloudsuite");
    assert_non_null(c->dir);
    snprintf(c->log, sizeof(c->log), "%s/client.out", c->dir);
    snprintf(c->kv_log, sizeof(c->kv_log), "log_file=%s", c->log);
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
    const char *kv[] = {c->kv_log, NULL};
    assert_fr_ok(harness_open(&c->h, &fr_collector_cloudsuite, kv));
}

static void test_description(void **state)
{
    (void)state;
    harness_check_description(&fr_collector_cloudsuite);
    harness_check_docs(&fr_collector_cloudsuite);
    /* The fifteen names of the report, in the client's column order. */
    static const char *const names[] = {"timeDiff", "rps",    "requests", "gets", "sets",
                                        "hits",     "misses", "avg_lat",  "90th", "95th",
                                        "99th",     "std",    "min",      "max",  "avgGetSize"};
    assert_int_equal(fr_collector_cloudsuite.ncatalog, 15);
    for (size_t i = 0; i < 15; i++) {
        char ns[128];
        snprintf(ns, sizeof(ns), NS "%s", names[i]);
        assert_string_equal(fr_collector_cloudsuite.catalog[i].ns, ns);
    }
}

static void test_log_file_required(void **state)
{
    ctx *c = *state;
    assert_int_equal(harness_open(&c->h, &fr_collector_cloudsuite, NULL), FR_ECONFIG);
    assert_string_equal(c->h.err.where, "log_file");
}

static void test_latest_row_then_incremental(void **state)
{
    ctx *c = *state;
    harness_copy_fixture("cloudsuite/client.out", c->log);
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, NS "*", HARNESS_SEC(10)));
    assert_int_equal(c->h.batch->nmetrics, 15);
    /* The second of the two rows. */
    assert_true(harness_f64(&c->h, NS "timeDiff") == 1.000009);
    assert_true(harness_f64(&c->h, NS "rps") == 80544.3);
    assert_int_equal(harness_u64(&c->h, NS "requests"), 80545);
    assert_int_equal(harness_u64(&c->h, NS "gets"), 64430);
    assert_int_equal(harness_u64(&c->h, NS "sets"), 16115);
    assert_int_equal(harness_u64(&c->h, NS "hits"), 51611);
    assert_int_equal(harness_u64(&c->h, NS "misses"), 12819);
    assert_true(harness_f64(&c->h, NS "avg_lat") == 0.473915);
    assert_true(harness_f64(&c->h, NS "90th") == 0.7);
    assert_true(harness_f64(&c->h, NS "95th") == 0.8);
    assert_true(harness_f64(&c->h, NS "99th") == 1.0);
    assert_true(harness_f64(&c->h, NS "std") == 0.201764);
    assert_true(harness_f64(&c->h, NS "min") == 0.058);
    assert_true(harness_f64(&c->h, NS "max") == 4.377);
    assert_true(harness_f64(&c->h, NS "avgGetSize") == 1023.904102);
    assert_string_equal(harness_get(&c->h, NS "avg_lat")->unit, "ms");

    assert_fr_ok(harness_collect1(&c->h, NS "*", HARNESS_SEC(11)));
    assert_int_equal(c->h.batch->nmetrics, 0);

    /* The next interval arrives in two writes: the header alone first. */
    char src[1024];
    char *more = harness_slurp(
        tst_src(src, sizeof(src), "tests/collector/fixtures/cloudsuite/client-more.out"));
    char *row = strchr(more, '\n') + 1;
    char *half = row + 40;
    char saved = *half;
    *half = '\0';
    harness_append(c->log, more);
    assert_fr_ok(harness_collect1(&c->h, NS "*", HARNESS_SEC(12)));
    assert_int_equal(c->h.batch->nmetrics, 0);
    *half = saved;
    harness_append(c->log, half);
    assert_fr_ok(harness_collect1(&c->h, NS "*", HARNESS_SEC(13)));
    assert_int_equal(c->h.batch->nmetrics, 15);
    assert_int_equal(harness_u64(&c->h, NS "requests"), 81125);
    assert_true(harness_f64(&c->h, NS "max") == 3.918);
    free(more);
}

static void test_query_selects(void **state)
{
    ctx *c = *state;
    harness_copy_fixture("cloudsuite/client.out", c->log);
    open_plugin(c);
    const char *q[] = {NS "(hits;misses)", NS "99th", NULL};
    assert_fr_ok(harness_collect(&c->h, q, HARNESS_SEC(1)));
    assert_int_equal(c->h.batch->nmetrics, 3);
    assert_int_equal(harness_u64(&c->h, NS "hits"), 51611);
    assert_int_equal(harness_u64(&c->h, NS "misses"), 12819);
    assert_true(harness_f64(&c->h, NS "99th") == 1.0);
}

static void test_stats_csv_with_ts_column(void **state)
{
    ctx *c = *state;
    harness_copy_fixture("cloudsuite/stats.csv", c->log);
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, "/gwdg/cloudsuite/*", HARNESS_SEC(1)));
    assert_int_equal(c->h.batch->nmetrics, 15);
    assert_int_equal(harness_u64(&c->h, NS "requests"), 81125);
    assert_true(harness_f64(&c->h, NS "timeDiff") == 1.000021);
    assert_true(harness_f64(&c->h, NS "avgGetSize") == 1021.77561);
}

static void test_malformed_rows_named(void **state)
{
    ctx *c = *state;
    harness_copy_fixture("cloudsuite/malformed.out", c->log);
    open_plugin(c);
    assert_int_equal(harness_collect1(&c->h, NS "*", HARNESS_SEC(1)), FR_EINVAL);
    char where[600];
    snprintf(where, sizeof(where), "%s:4", c->log);
    assert_string_equal(c->h.err.where, where);
    assert_non_null(strstr(c->h.err.message, "4 values"));
    assert_non_null(strstr(c->h.err.message, "and 1 more malformed line"));
    /* The last, good row is still published. */
    assert_int_equal(c->h.batch->nmetrics, 15);
    assert_int_equal(harness_u64(&c->h, NS "requests"), 81125);

    /* The bad row alone: the column is named. */
    const char *hdr = "  timeDiff,     rps,        requests,     gets,       sets,      hits,    "
                      "   misses,   avg_lat,      90th,      95th,        99th,       std,      "
                      " min,        max,    avgGetSize\n";
    harness_append(c->log, hdr);
    harness_append(c->log,
                   "  1.0, 10.0, 10, 8, 2, -1, 1, 0.5, 0.6, 0.7, 0.8, 0.1, 0.2, 0.9, 100\n");
    assert_int_equal(harness_collect1(&c->h, NS "*", HARNESS_SEC(2)), FR_EINVAL);
    snprintf(where, sizeof(where), "%s:12", c->log);
    assert_string_equal(c->h.err.where, where);
    assert_non_null(strstr(c->h.err.message, "hits"));
    assert_int_equal(c->h.batch->nmetrics, 0);
}

static void test_truncated_by_a_new_run(void **state)
{
    ctx *c = *state;
    harness_copy_fixture("cloudsuite/client.out", c->log);
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, NS "requests", HARNESS_SEC(1)));
    assert_int_equal(harness_u64(&c->h, NS "requests"), 80545);
    /* The client restarted with > client.out: only its first interval so far. */
    char src[1024];
    char *more = harness_slurp(
        tst_src(src, sizeof(src), "tests/collector/fixtures/cloudsuite/client-more.out"));
    assert_int_equal(tst_write_file(c->log, more, strlen(more)), 0);
    assert_fr_ok(harness_collect1(&c->h, NS "requests", HARNESS_SEC(2)));
    assert_int_equal(harness_u64(&c->h, NS "requests"), 81125);
    free(more);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_description),
        T(test_log_file_required),
        T(test_latest_row_then_incremental),
        T(test_query_selects),
        T(test_stats_csv_with_ts_column),
        T(test_malformed_rows_named),
        T(test_truncated_by_a_new_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
