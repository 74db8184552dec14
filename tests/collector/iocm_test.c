/* The iocm plugin against a copy of IOcm's sysfs directory
 * (/sys/class/vhost): the core count, per-core utilisation from counter
 * deltas, the aggregate, cores coming and going, counter resets and
 * malformed files. */
#include "file_plugin_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

extern const fr_collector_plugin fr_collector_iocm;

#define NS "/ibm/sysfs/iocore/"

typedef struct ctx {
    char *dir;
    char vhost[512];
    char util[600];
    char nr[600];
    char kv_path[700];
    harness h;
} ctx;

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->dir = tst_tmpdir("fresco-iocm");
    assert_non_null(c->dir);
    snprintf(c->vhost, sizeof(c->vhost), "%s/vhost", c->dir);
    assert_int_equal(mkdir(c->vhost, 0755), 0);
    snprintf(c->util, sizeof(c->util), "%s/iocores_utilization", c->vhost);
    snprintf(c->nr, sizeof(c->nr), "%s/nr_iocores", c->vhost);
    snprintf(c->kv_path, sizeof(c->kv_path), "sys_path=%s", c->vhost);
    harness_copy_fixture("iocm/sys/class/vhost/nr_iocores", c->nr);
    harness_copy_fixture("iocm/sys/class/vhost/iocores_utilization", c->util);
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
    const char *kv[] = {c->kv_path, NULL};
    assert_fr_ok(harness_open(&c->h, &fr_collector_iocm, kv));
}

static void test_description(void **state)
{
    (void)state;
    harness_check_description(&fr_collector_iocm);
    harness_check_docs(&fr_collector_iocm);
    assert_int_equal(fr_collector_iocm.ncatalog, 2);
    assert_string_equal(fr_collector_iocm.catalog[0].ns, NS "nr_iocores");
    assert_string_equal(fr_collector_iocm.catalog[1].ns, NS "*/cpu_utilization");
    assert_string_equal(fr_collector_iocm.catalog[1].dyn[0].name, "iocore");
}

static void test_default_path_is_sysfs(void **state)
{
    ctx *c = *state;
    assert_fr_ok(harness_open(&c->h, &fr_collector_iocm, NULL));
    /* Not an IOcm kernel here: the error names the real path. */
    int rv = harness_collect1(&c->h, NS "nr_iocores", HARNESS_SEC(1));
    if (access("/sys/class/vhost/nr_iocores", F_OK) != 0) {
        assert_int_equal(rv, FR_ENOTFOUND);
        assert_string_equal(c->h.err.where, "/sys/class/vhost/nr_iocores");
    }
}

static void test_utilisation_from_deltas(void **state)
{
    ctx *c = *state;
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, NS "*", HARNESS_SEC(1)));
    /* The first tick has nothing to compare with. */
    assert_int_equal(c->h.batch->nmetrics, 1);
    assert_true(harness_f64(&c->h, NS "nr_iocores") == 2.0);

    harness_copy_fixture("iocm/iocores_utilization.tick2", c->util);
    assert_fr_ok(harness_collect1(&c->h, NS "*", HARNESS_SEC(2)));
    assert_int_equal(c->h.batch->nmetrics, 4);
    assert_true(harness_f64(&c->h, NS "cpu1/cpu_utilization") == 75.0);
    assert_true(harness_f64(&c->h, NS "cpu2/cpu_utilization") == 25.0);
    assert_true(harness_f64(&c->h, NS "cpu/cpu_utilization") == 100.0);
    assert_string_equal(harness_get(&c->h, NS "cpu1/cpu_utilization")->unit, "percent");
    assert_true(harness_get(&c->h, NS "cpu1/cpu_utilization")->ts == HARNESS_SEC(2));

    /* cpu1's counters restarted (module reloaded): no value for it this
     * tick; cpu3 is new: none either; cpu2 goes on. */
    harness_copy_fixture("iocm/iocores_utilization.tick3", c->util);
    assert_int_equal(tst_write_file(c->nr, "3\n", 2), 0);
    assert_fr_ok(harness_collect1(&c->h, NS "*", HARNESS_SEC(3)));
    assert_true(harness_f64(&c->h, NS "nr_iocores") == 3.0);
    assert_null(harness_find(&c->h, NS "cpu1/cpu_utilization"));
    assert_null(harness_find(&c->h, NS "cpu3/cpu_utilization"));
    assert_true(harness_f64(&c->h, NS "cpu2/cpu_utilization") == 25.0);
    assert_true(harness_f64(&c->h, NS "cpu/cpu_utilization") == 25.0);
    assert_int_equal(c->h.batch->nmetrics, 3);
}

static void test_queries(void **state)
{
    ctx *c = *state;
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, NS "*/cpu_utilization", HARNESS_SEC(1)));
    assert_int_equal(c->h.batch->nmetrics, 0);
    harness_copy_fixture("iocm/iocores_utilization.tick2", c->util);
    const char *q[] = {NS "(cpu1;cpu)/cpu_utilization", NULL};
    assert_fr_ok(harness_collect(&c->h, q, HARNESS_SEC(2)));
    assert_int_equal(c->h.batch->nmetrics, 2);
    assert_true(harness_f64(&c->h, NS "cpu1/cpu_utilization") == 75.0);
    assert_true(harness_f64(&c->h, NS "cpu/cpu_utilization") == 100.0);
}

static void test_only_count_asked(void **state)
{
    ctx *c = *state;
    open_plugin(c);
    /* The utilisation file is not read when nobody asks for it. */
    assert_int_equal(unlink(c->util), 0);
    assert_fr_ok(harness_collect1(&c->h, NS "nr_iocores", HARNESS_SEC(1)));
    assert_int_equal(c->h.batch->nmetrics, 1);
    assert_int_equal(harness_collect1(&c->h, NS "*", HARNESS_SEC(2)), FR_ENOTFOUND);
    assert_string_equal(c->h.err.where, c->util);
    /* The count is still there. */
    assert_int_equal(c->h.batch->nmetrics, 1);
}

static void test_kernel_aggregate_kept(void **state)
{
    ctx *c = *state;
    harness_copy_fixture("iocm/iocores_utilization.kernel-total", c->util);
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, NS "*/cpu_utilization", HARNESS_SEC(1)));
    harness_copy_fixture("iocm/iocores_utilization.kernel-total.tick2", c->util);
    assert_fr_ok(harness_collect1(&c->h, NS "*/cpu_utilization", HARNESS_SEC(2)));
    assert_int_equal(c->h.batch->nmetrics, 3);
    assert_true(harness_f64(&c->h, NS "cpu1/cpu_utilization") == 50.0);
    assert_true(harness_f64(&c->h, NS "cpu2/cpu_utilization") == 50.0);
    /* The kernel's own line, not the sum of the cores. */
    assert_true(harness_f64(&c->h, NS "cpu/cpu_utilization") == 50.0);
}

static void test_snap_vhost_path_key(void **state)
{
    ctx *c = *state;
    char kv_vhost[700];
    snprintf(kv_vhost, sizeof(kv_vhost), "vhost_path=%s", c->vhost);
    const char *kv[] = {"sys_path=/nonexistent", kv_vhost, NULL};
    assert_fr_ok(harness_open(&c->h, &fr_collector_iocm, kv));
    assert_fr_ok(harness_collect1(&c->h, NS "nr_iocores", HARNESS_SEC(1)));
    assert_true(harness_f64(&c->h, NS "nr_iocores") == 2.0);
}

static void test_malformed_files_named(void **state)
{
    ctx *c = *state;
    open_plugin(c);
    harness_copy_fixture("iocm/iocores_utilization.malformed", c->util);
    assert_int_equal(harness_collect1(&c->h, NS "*", HARNESS_SEC(1)), FR_EINVAL);
    char where[700];
    snprintf(where, sizeof(where), "%s:2", c->util);
    assert_string_equal(c->h.err.where, where);
    assert_non_null(strstr(c->h.err.message, "cpu2 523311000"));

    assert_int_equal(tst_write_file(c->nr, "two\n", 4), 0);
    assert_int_equal(harness_collect1(&c->h, NS "nr_iocores", HARNESS_SEC(2)), FR_EINVAL);
    snprintf(where, sizeof(where), "%s:1", c->nr);
    assert_string_equal(c->h.err.where, where);
    assert_non_null(strstr(c->h.err.message, "'two'"));
    assert_int_equal(c->h.batch->nmetrics, 0);

    /* A negative counter is malformed too. */
    assert_int_equal(tst_write_file(c->util, "cpu3 -5 100\n", 12), 0);
    assert_int_equal(harness_collect1(&c->h, NS "*/cpu_utilization", HARNESS_SEC(3)), FR_EINVAL);
    snprintf(where, sizeof(where), "%s:1", c->util);
    assert_string_equal(c->h.err.where, where);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_description),
        T(test_default_path_is_sysfs),
        T(test_utilisation_from_deltas),
        T(test_queries),
        T(test_only_count_asked),
        T(test_kernel_aggregate_kept),
        T(test_snap_vhost_path_key),
        T(test_malformed_files_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
