/* The openfoam plugin: residuals parsed from real solver log lines, read
 * incrementally across ticks, through partial lines, truncation, in-place
 * rewrites, rotation, malformed and overlong lines. */
#include "file_plugin_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern const fr_collector_plugin fr_collector_openfoam;

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
    c->dir = tst_tmpdir("fresco-openfoam");
    assert_non_null(c->dir);
    snprintf(c->log, sizeof(c->log), "%s/run.log", c->dir);
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
    assert_fr_ok(harness_open(&c->h, &fr_collector_openfoam, kv));
}

static void assert_residuals(ctx *c, const char *field, double initial, double final)
{
    char ns[128];
    snprintf(ns, sizeof(ns), "/intel/openfoam/%s/initial", field);
    assert_true(harness_f64(&c->h, ns) == initial);
    snprintf(ns, sizeof(ns), "/intel/openfoam/%s/final", field);
    assert_true(harness_f64(&c->h, ns) == final);
}

static void test_description(void **state)
{
    (void)state;
    harness_check_description(&fr_collector_openfoam);
    harness_check_docs(&fr_collector_openfoam);
    assert_int_equal(fr_collector_openfoam.ncatalog, 12);
    assert_string_equal(fr_collector_openfoam.ns_prefix, "/intel/openfoam");
}

static void test_log_file_required(void **state)
{
    ctx *c = *state;
    assert_int_equal(harness_open(&c->h, &fr_collector_openfoam, NULL), FR_ECONFIG);
    assert_string_equal(c->h.err.where, "log_file");
}

static void test_reads_latest_residuals(void **state)
{
    ctx *c = *state;
    harness_copy_fixture("openfoam/simpleFoam.log", c->log);
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(100)));
    assert_int_equal(c->h.batch->nmetrics, 12);
    /* Time = 2 is the last complete time step. */
    assert_residuals(c, "Ux", 0.438853, 0.0210523);
    assert_residuals(c, "Uy", 0.201567, 0.0114372);
    assert_residuals(c, "Uz", 0.255718, 0.0128954);
    assert_residuals(c, "p", 0.0359265, 0.00313486);
    assert_residuals(c, "omega", 0.00996251, 0.000468239);
    assert_residuals(c, "k", 0.272385, 0.0128751);
    assert_true(harness_get(&c->h, "/intel/openfoam/k/final")->ts == HARNESS_SEC(100));

    /* Nothing new: nothing emitted, and no failure. */
    assert_fr_ok(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(101)));
    assert_int_equal(c->h.batch->nmetrics, 0);
}

static void test_incremental_partial_line(void **state)
{
    ctx *c = *state;
    harness_copy_fixture("openfoam/simpleFoam.log", c->log);
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(1)));

    char src[1024];
    char *step3 = harness_slurp(
        tst_src(src, sizeof(src), "tests/collector/fixtures/openfoam/simpleFoam-step3.log"));
    /* The solver is half-way through the p line. */
    char *cut = strstr(step3, "GAMG:  Solving for p, Initial resid");
    assert_non_null(cut);
    cut += strlen("GAMG:  Solving for p, Initial resid");
    char saved = *cut;
    *cut = '\0';
    harness_append(c->log, step3);
    assert_fr_ok(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(2)));
    assert_int_equal(c->h.batch->nmetrics, 6);
    assert_residuals(c, "Ux", 0.177134, 0.00807521);
    assert_residuals(c, "Uy", 0.270982, 0.0146217);
    assert_residuals(c, "Uz", 0.276413, 0.0129705);
    assert_null(harness_find(&c->h, "/intel/openfoam/p/initial"));

    *cut = saved;
    harness_append(c->log, cut);
    assert_fr_ok(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(3)));
    assert_int_equal(c->h.batch->nmetrics, 6);
    assert_residuals(c, "p", 0.0102345, 0.000872961);
    assert_residuals(c, "omega", 0.00538052, 0.000237584);
    assert_residuals(c, "k", 0.117904, 0.00553712);
    assert_null(harness_find(&c->h, "/intel/openfoam/Ux/initial"));
    free(step3);
}

static void test_query_selects(void **state)
{
    ctx *c = *state;
    harness_copy_fixture("openfoam/simpleFoam.log", c->log);
    open_plugin(c);
    const char *q[] = {"/intel/openfoam/(p;k)/final", "/intel/openfoam/Uz/initial", NULL};
    assert_fr_ok(harness_collect(&c->h, q, HARNESS_SEC(1)));
    assert_int_equal(c->h.batch->nmetrics, 3);
    assert_true(harness_f64(&c->h, "/intel/openfoam/p/final") == 0.00313486);
    assert_true(harness_f64(&c->h, "/intel/openfoam/k/final") == 0.0128751);
    assert_true(harness_f64(&c->h, "/intel/openfoam/Uz/initial") == 0.255718);
}

static void test_truncation_and_rewrite(void **state)
{
    ctx *c = *state;
    harness_copy_fixture("openfoam/simpleFoam.log", c->log);
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(1)));

    /* A new run redirected into the same file: shorter than what was read. */
    harness_copy_fixture("openfoam/pisoFoam.log", c->log);
    assert_fr_ok(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(2)));
    assert_residuals(c, "Ux", 1, 2.96338e-06);
    assert_residuals(c, "Uy", 0, 0);
    assert_residuals(c, "p", 0.590864, 2.65225e-07); /* the second corrector's */
    assert_residuals(c, "k", 1, 4.00089e-06);
    assert_null(harness_find(&c->h, "/intel/openfoam/omega/initial"));
    assert_int_equal(c->h.batch->nmetrics, 8);

    /* Rewritten in place with a longer log: its start differs, so it is
     * read from the beginning although it is longer than the offset. */
    harness_copy_fixture("openfoam/simpleFoam.log", c->log);
    assert_fr_ok(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(3)));
    assert_int_equal(c->h.batch->nmetrics, 12);
    assert_residuals(c, "Ux", 0.438853, 0.0210523);
}

static void test_rotation_drains_old_file(void **state)
{
    ctx *c = *state;
    harness_copy_fixture("openfoam/simpleFoam.log", c->log);
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(1)));

    /* The writer finishes a line in the old file (without its newline),
     * then logrotate renames it and the solver starts a new file. */
    harness_append(c->log, "smoothSolver:  Solving for omega, Initial residual = 0.00411, "
                           "Final residual = 0.000199, No Iterations 3");
    char old[600];
    snprintf(old, sizeof(old), "%s.1", c->log);
    assert_int_equal(rename(c->log, old), 0);
    const char *fresh =
        "Time = 4\n\nsmoothSolver:  Solving for Ux, Initial residual = 0.0912, Final residual = "
        "0.00433, No Iterations 2\n";
    assert_int_equal(tst_write_file(c->log, fresh, strlen(fresh)), 0);

    assert_fr_ok(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(2)));
    assert_int_equal(c->h.batch->nmetrics, 4);
    assert_residuals(c, "omega", 0.00411, 0.000199);
    assert_residuals(c, "Ux", 0.0912, 0.00433);

    /* The new file is followed from where it was left. */
    harness_append(c->log, "GAMG:  Solving for p, Initial residual = 0.0051, Final residual = "
                           "0.00047, No Iterations 4\n");
    assert_fr_ok(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(3)));
    assert_int_equal(c->h.batch->nmetrics, 2);
    assert_residuals(c, "p", 0.0051, 0.00047);
}

static void test_malformed_lines_named(void **state)
{
    ctx *c = *state;
    harness_copy_fixture("openfoam/malformed.log", c->log);
    open_plugin(c);
    int rv = harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(1));
    assert_int_equal(rv, FR_EINVAL);
    char where[600];
    snprintf(where, sizeof(where), "%s:4", c->log);
    assert_string_equal(c->h.err.where, where);
    assert_non_null(strstr(c->h.err.message, "Uy"));
    assert_non_null(strstr(c->h.err.message, "and 1 more malformed line"));
    /* The good lines around the bad ones still count. */
    assert_int_equal(c->h.batch->nmetrics, 4);
    assert_residuals(c, "Ux", 0.00174, 8.6e-05);
    assert_residuals(c, "p", 0.0152, 0.00014);

    /* The bad lines are not read again. */
    assert_fr_ok(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(2)));
    assert_int_equal(c->h.batch->nmetrics, 0);
}

static void test_missing_file_then_created(void **state)
{
    ctx *c = *state;
    open_plugin(c);
    assert_int_equal(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(1)), FR_ENOTFOUND);
    assert_non_null(strstr(c->h.err.message, c->log));
    harness_copy_fixture("openfoam/pisoFoam.log", c->log);
    assert_fr_ok(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(2)));
    assert_residuals(c, "k", 1, 4.00089e-06);
}

static void test_backlog_skipped(void **state)
{
    ctx *c = *state;
    char kv_max[] = "max_read=4KiB";
    const char *kv[] = {c->kv_log, kv_max, NULL};
    /* 64 KiB of history, then the last time step. */
    FILE *f = fopen(c->log, "we");
    assert_non_null(f);
    for (int i = 0; i < 1000; i++) {
        fprintf(f,
                "smoothSolver:  Solving for k, Initial residual = 0.5, Final residual = 0.01, "
                "No Iterations %d\n",
                i);
    }
    fprintf(f, "smoothSolver:  Solving for k, Initial residual = 0.25, Final residual = x, No "
               "Iterations 3\n");
    fprintf(f, "GAMG:  Solving for p, Initial residual = 0.125, Final residual = 0.0625, No "
               "Iterations 3\n");
    fclose(f);
    assert_fr_ok(harness_open(&c->h, &fr_collector_openfoam, kv));
    assert_int_equal(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(1)), FR_EINVAL);
    /* Line numbers are unknown after a skip: the byte offset is given. */
    assert_non_null(strstr(c->h.err.where, "@byte "));
    assert_residuals(c, "p", 0.125, 0.0625);
    assert_residuals(c, "k", 0.5, 0.01);

    /* Reading goes on from the end of what was read. */
    harness_append(c->log, "smoothSolver:  Solving for Uz, Initial residual = 0.75, Final "
                           "residual = 0.375, No Iterations 1\n");
    assert_fr_ok(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(2)));
    assert_int_equal(c->h.batch->nmetrics, 2);
    assert_residuals(c, "Uz", 0.75, 0.375);
}

static void test_overlong_line_refused(void **state)
{
    ctx *c = *state;
    harness_copy_fixture("openfoam/pisoFoam.log", c->log);
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(1)));

    /* A line longer than 64 KiB is refused without stopping the reader. */
    char *big = malloc(70 * 1024 + 2);
    assert_non_null(big);
    memset(big, 'x', 70 * 1024);
    big[70 * 1024] = '\n';
    big[70 * 1024 + 1] = '\0';
    harness_append(c->log, big);
    harness_append(c->log, "smoothSolver:  Solving for Uz, Initial residual = 0.75, Final "
                           "residual = 0.375, No Iterations 1\n");
    assert_int_equal(harness_collect1(&c->h, "/intel/openfoam/*", HARNESS_SEC(2)), FR_ETOOBIG);
    char where[600];
    snprintf(where, sizeof(where), "%s:16", c->log);
    assert_string_equal(c->h.err.where, where);
    assert_int_equal(c->h.batch->nmetrics, 2);
    assert_residuals(c, "Uz", 0.75, 0.375);
    free(big);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_description),
        T(test_log_file_required),
        T(test_reads_latest_residuals),
        T(test_incremental_partial_line),
        T(test_query_selects),
        T(test_truncation_and_rewrite),
        T(test_rotation_drains_old_file),
        T(test_malformed_lines_named),
        T(test_missing_file_then_created),
        T(test_backlog_skipped),
        T(test_overlong_line_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
