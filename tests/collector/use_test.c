/* The use plugin: utilisation, saturation and errors from a copy of a real
 * /proc (fixtures/use/proc) and a second snapshot with known deltas
 * (proc-next), sysfs link speeds and an ioerr_cnt (fixtures/use/sys), and
 * a smoke run over this machine's /proc and /sys. */
#include "testsupport.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin_fixture.h"

extern const fr_collector_plugin fr_collector_use;
static const fr_collector_plugin *const P = &fr_collector_use;

typedef struct fx {
    char *dir;
    char proc[1024], sys[1024];
    void *cfg;
    void *st;
    fr_batch *b;
    fr_error err;
} fx;

static void fx_open(fx *f)
{
    memset(f, 0, sizeof(*f));
    f->dir = tst_tmpdir("use");
    snprintf(f->proc, sizeof(f->proc), "%s/proc", f->dir);
    snprintf(f->sys, sizeof(f->sys), "%s/sys", f->dir);
    pf_overlay(f->proc, "use/proc");
    pf_overlay(f->sys, "use/sys");
    const char *kv[] = {"proc_path", f->proc, "sys_path", f->sys, NULL};
    f->cfg = pf_config(P, kv);
    fr_error err;
    if (P->init(&f->st, f->cfg, &err) != 0) {
        fail_msg("init: %s: %s", err.where, err.message);
    }
}

static int fx_collect(fx *f, const char *const *queries, int64_t t)
{
    fr_batch_destroy(f->b);
    return pf_collect(P, f->st, queries, t, &f->b, &f->err);
}

static void fx_close(fx *f)
{
    fr_batch_destroy(f->b);
    P->destroy(f->st);
    pf_config_free(P, f->cfg);
    tst_rmtree(f->dir);
    free(f->dir);
}

static void assert_near(double got, double want)
{
    if (fabs(got - want) > 1e-9 * (fabs(want) > 1 ? fabs(want) : 1)) {
        fail_msg("got %.12g, want %.12g", got, want);
    }
}

static const char *const all[] = {"/intel/use/*", NULL};

/* fixtures/use/proc/meminfo */
#define MEM_TOTAL     24684096.0
#define MEM_AVAILABLE 24256484.0

static void test_catalog(void **state)
{
    (void)state;
    static const char *const prefixes[] = {"/intel/use", NULL};
    pf_check_catalog(P, prefixes);
    for (size_t i = 0; i < P->ncatalog; i++) {
        assert_int_equal(P->catalog[i].type, FR_VAL_DOUBLE); /* as the report says */
    }
    assert_string_equal(P->policy[0].key, "proc_path");
    assert_string_equal(P->policy[1].key, "sys_path");
    assert_string_equal(P->policy[1].def, "/sys");
}

static void test_first_tick(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    assert_fr_ok(fx_collect(&f, all, PF_T0));
    /* Only what needs no previous reading. */
    assert_near(pf_f64(f.b, "/intel/use/compute/saturation"), 2.36 / 2);
    assert_near(pf_f64(f.b, "/intel/use/memory/utilization"),
                100.0 * (MEM_TOTAL - MEM_AVAILABLE) / MEM_TOTAL);
    assert_near(pf_f64(f.b, "/intel/use/storage/vda/errors"), 31); /* ioerr_cnt 0x1f */
    assert_near(pf_f64(f.b, "/intel/use/network/eth0/errors"), 0);
    assert_int_equal(pf_count(f.b, "/intel/use/network/*/errors"), 4);
    assert_null(pf_find(f.b, "/intel/use/compute/utilization"));
    assert_null(pf_find(f.b, "/intel/use/memory/saturation"));
    assert_int_equal(pf_count(f.b, "/intel/use/storage/*/utilization"), 0);
    assert_int_equal(pf_count(f.b, "/intel/use/network/*/utilization"), 0);
    assert_int_equal(f.b->nmetrics, 7);
    pf_check_covered(P, f.b);
    fx_close(&f);
}

static void test_deltas(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    assert_fr_ok(fx_collect(&f, all, PF_T0));
    /* One second later (fixtures/use/proc-next): the CPUs spent 400 of
     * 1000 jiffies busy, 50 in iowait; 30 pages swapped in, 10 out; vda
     * was busy 250 ms with 1500 ms of weighted I/O time; eth0 (1000 Mbit/s
     * full duplex) received 12.5 MB and sent 2.5 MB, dropped 3, overran 2
     * and saw an error each way; ifb1 (10 Mbit/s half duplex) moved
     * 750 kB; cpu2, vdb and veth1 are new. */
    pf_overlay(f.proc, "use/proc-next");
    assert_fr_ok(fx_collect(&f, all, PF_T0 + PF_SEC));
    assert_near(pf_f64(f.b, "/intel/use/compute/utilization"), 40.0);
    assert_near(pf_f64(f.b, "/intel/use/compute/0/utilization"), 40.0);
    assert_near(pf_f64(f.b, "/intel/use/compute/1/utilization"), 40.0);
    assert_null(pf_find(f.b, "/intel/use/compute/2/utilization"));
    assert_near(pf_f64(f.b, "/intel/use/compute/saturation"), 2.36 / 3); /* 3 CPUs now */
    assert_near(pf_f64(f.b, "/intel/use/memory/saturation"), 40.0);
    assert_near(pf_f64(f.b, "/intel/use/storage/vda/utilization"), 25.0);
    assert_near(pf_f64(f.b, "/intel/use/storage/vda/saturation"), 1.5);
    assert_near(pf_f64(f.b, "/intel/use/storage/loop0/utilization"), 0.0);
    assert_null(pf_find(f.b, "/intel/use/storage/vdb/utilization"));
    assert_near(pf_f64(f.b, "/intel/use/network/eth0/utilization"), 10.0);
    assert_near(pf_f64(f.b, "/intel/use/network/eth0/saturation"), 5.0);
    assert_near(pf_f64(f.b, "/intel/use/network/eth0/errors"), 2.0);
    assert_near(pf_f64(f.b, "/intel/use/network/ifb1/utilization"), 60.0);
    assert_near(pf_f64(f.b, "/intel/use/network/ifb0/saturation"), 0.0);
    assert_null(pf_find(f.b, "/intel/use/network/ifb0/utilization")); /* speed -1 */
    assert_null(pf_find(f.b, "/intel/use/network/lo/utilization"));   /* no speed */
    assert_near(pf_f64(f.b, "/intel/use/network/veth1/errors"), 0.0);
    assert_null(pf_find(f.b, "/intel/use/network/veth1/saturation"));
    assert_int_equal(f.b->nmetrics, 4 + 2 + 21 + 11);
    pf_check_covered(P, f.b);

    /* Back to the first snapshot: every counter went back, so no rate. */
    pf_overlay(f.proc, "use/proc");
    assert_fr_ok(fx_collect(&f, all, PF_T0 + 2 * PF_SEC));
    assert_null(pf_find(f.b, "/intel/use/compute/utilization"));
    assert_null(pf_find(f.b, "/intel/use/memory/saturation"));
    assert_null(pf_find(f.b, "/intel/use/storage/vda/utilization"));
    assert_null(pf_find(f.b, "/intel/use/network/eth0/saturation"));
    assert_non_null(pf_find(f.b, "/intel/use/storage/loop0/utilization"));

    /* No time passed: no rates either. */
    assert_fr_ok(fx_collect(&f, all, PF_T0 + 2 * PF_SEC));
    assert_null(pf_find(f.b, "/intel/use/storage/loop0/utilization"));
    assert_non_null(pf_find(f.b, "/intel/use/compute/saturation"));
    fx_close(&f);
}

static void test_rates_follow_the_interval(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    assert_fr_ok(fx_collect(&f, all, PF_T0));
    pf_overlay(f.proc, "use/proc-next");
    assert_fr_ok(fx_collect(&f, all, PF_T0 + 2 * PF_SEC));
    assert_near(pf_f64(f.b, "/intel/use/compute/utilization"), 40.0); /* a share of jiffies */
    assert_near(pf_f64(f.b, "/intel/use/memory/saturation"), 20.0);
    assert_near(pf_f64(f.b, "/intel/use/storage/vda/utilization"), 12.5);
    assert_near(pf_f64(f.b, "/intel/use/storage/vda/saturation"), 0.75);
    assert_near(pf_f64(f.b, "/intel/use/network/eth0/utilization"), 5.0);
    assert_near(pf_f64(f.b, "/intel/use/network/eth0/saturation"), 2.5);

    /* Busier than the clock says (a late tick): capped at 100%. */
    pf_overlay(f.proc, "use/proc");
    assert_fr_ok(fx_collect(&f, all, PF_T0 + 3 * PF_SEC));
    pf_overlay(f.proc, "use/proc-next");
    assert_fr_ok(fx_collect(&f, all, PF_T0 + 3 * PF_SEC + PF_SEC / 10));
    assert_near(pf_f64(f.b, "/intel/use/storage/vda/utilization"), 100.0);
    fx_close(&f);
}

static void test_sysfs_is_read_again_later(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    static const char *const errs[] = {"/intel/use/storage/*/errors", NULL};
    assert_fr_ok(fx_collect(&f, errs, PF_T0));
    assert_int_equal(f.b->nmetrics, 1);
    /* loop0 becomes a SCSI device (as far as sysfs says): found at the
     * next refresh, not on every tick. */
    char path[2048];
    snprintf(path, sizeof(path), "%s/block/loop0", f.sys);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/block/loop0/device", f.sys);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/block/loop0/device/ioerr_cnt", f.sys);
    assert_int_equal(tst_write_file(path, "0x2\n", 4), 0);
    assert_fr_ok(fx_collect(&f, errs, PF_T0 + PF_SEC));
    assert_null(pf_find(f.b, "/intel/use/storage/loop0/errors"));
    assert_fr_ok(fx_collect(&f, errs, PF_T0 + 11 * PF_SEC));
    assert_near(pf_f64(f.b, "/intel/use/storage/loop0/errors"), 2);
    /* vda's count is read on every tick. */
    snprintf(path, sizeof(path), "%s/block/vda/device/ioerr_cnt", f.sys);
    assert_int_equal(tst_write_file(path, "0x20\n", 5), 0);
    assert_fr_ok(fx_collect(&f, errs, PF_T0 + 12 * PF_SEC));
    assert_near(pf_f64(f.b, "/intel/use/storage/vda/errors"), 32);
    fx_close(&f);
}

static void test_wildcards(void **state)
{
    (void)state;
    fx f;
    fx_open(&f);
    static const char *const q[] = {"/intel/use/network/eth0/*",
                                    "/intel/use/storage/(vda;vdb)/utilization",
                                    "/intel/use/compute/*/utilization", NULL};
    assert_fr_ok(fx_collect(&f, q, PF_T0));
    assert_int_equal(f.b->nmetrics, 1); /* eth0 errors */
    pf_overlay(f.proc, "use/proc-next");
    assert_fr_ok(fx_collect(&f, q, PF_T0 + PF_SEC));
    assert_int_equal(pf_count(f.b, "/intel/use/network/eth0/*"), 3);
    assert_int_equal(pf_count(f.b, "/intel/use/storage/*/*"), 1);
    assert_int_equal(pf_count(f.b, "/intel/use/compute/*/utilization"), 2);
    assert_null(pf_find(f.b, "/intel/use/compute/utilization"));
    assert_int_equal(f.b->nmetrics, 6);
    fx_close(&f);
}

static void test_reads_only_what_it_needs(void **state)
{
    (void)state;
    /* proc holds meminfo alone; memory utilisation needs nothing else. */
    char *dir = tst_tmpdir("use-min");
    char proc[1024], src[1100];
    snprintf(proc, sizeof(proc), "%s/proc", dir);
    pf_overlay(proc, "use/proc");
    const char *drop[] = {"stat", "loadavg", "vmstat", "diskstats", "net/dev"};
    for (size_t i = 0; i < 5; i++) {
        snprintf(src, sizeof(src), "%s/%s", proc, drop[i]);
        assert_int_equal(unlink(src), 0);
    }
    const char *kv[] = {"proc_path", proc, "sys_path", dir, NULL};
    void *cfg = pf_config(P, kv);
    void *st;
    fr_error err;
    fr_batch *b;
    assert_fr_ok(P->init(&st, cfg, &err));
    static const char *const q[] = {"/intel/use/memory/utilization", NULL};
    assert_fr_ok(pf_collect(P, st, q, PF_T0, &b, &err));
    assert_int_equal(b->nmetrics, 1);
    fr_batch_destroy(b);
    static const char *const q2[] = {"/intel/use/memory/*", NULL};
    assert_int_equal(pf_collect(P, st, q2, PF_T0, &b, &err), FR_ENOTFOUND);
    assert_non_null(strstr(err.where, "/vmstat"));
    assert_int_equal(b->nmetrics, 1); /* what was collected is kept */
    fr_batch_destroy(b);
    P->destroy(st);
    pf_config_free(P, cfg);
    tst_rmtree(dir);
    free(dir);
}

static void test_config_errors(void **state)
{
    (void)state;
    void *st;
    fr_error err;
    const char *kv[] = {"sys_path", "/no/such/sys", NULL};
    void *cfg = pf_config(P, kv);
    assert_int_equal(P->init(&st, cfg, &err), FR_ECONFIG);
    assert_string_equal(err.where, "sys_path");
    assert_non_null(strstr(err.message, "/no/such/sys"));
    pf_config_free(P, cfg);
    const char *kv2[] = {"proc_path", "", NULL};
    cfg = pf_config(P, kv2);
    assert_int_equal(P->init(&st, cfg, &err), FR_ECONFIG);
    assert_string_equal(err.where, "proc_path");
    pf_config_free(P, cfg);
    P->destroy(NULL);

    /* Unknown keys are refused when the task is created. */
    const char *typo[] = {"sysfs_path", "/sys", NULL};
    cfg = (void *)1;
    assert_int_equal(pf_config_load(P, typo, &cfg, &err), FR_EUNKNOWN);
    assert_null(cfg);
    assert_non_null(strstr(err.message, "sysfs_path"));
    cfg = pf_config(P, NULL);
    assert_string_equal(*(char **)((char *)cfg + P->policy[0].offset), "/proc");
    assert_string_equal(*(char **)((char *)cfg + P->policy[1].offset), "/sys");
    pf_config_free(P, cfg);
}

static void test_real_proc(void **state)
{
    (void)state;
    void *cfg = pf_config(P, NULL);
    void *st;
    fr_error err;
    fr_batch *b;
    assert_fr_ok(P->init(&st, cfg, &err));
    assert_fr_ok(pf_collect(P, st, all, PF_T0, &b, &err));
    pf_check_covered(P, b);
    fr_batch_destroy(b);
    usleep(100 * 1000);
    assert_fr_ok(pf_collect(P, st, all, PF_T0 + PF_SEC / 10, &b, &err));
    pf_check_covered(P, b);
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        const fr_metric *m = &b->metrics[i];
        assert_true(m->value.v.d >= 0);
        if (strcmp(m->unit, "percent") == 0 && strstr(m->ns, "/network/") == NULL) {
            assert_true(m->value.v.d <= 100.0);
        }
    }
    assert_non_null(pf_find(b, "/intel/use/compute/utilization"));
    assert_non_null(pf_find(b, "/intel/use/memory/saturation"));
    assert_non_null(pf_find(b, "/intel/use/network/lo/saturation"));
    fr_batch_destroy(b);
    P->destroy(st);
    pf_config_free(P, cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalog),
        cmocka_unit_test(test_first_tick),
        cmocka_unit_test(test_deltas),
        cmocka_unit_test(test_rates_follow_the_interval),
        cmocka_unit_test(test_sysfs_is_read_again_later),
        cmocka_unit_test(test_wildcards),
        cmocka_unit_test(test_reads_only_what_it_needs),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_real_proc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
