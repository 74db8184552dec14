/* The schedstat plugin: /proc/schedstat version 15 mapped field by field
 * (fixtures/schedstat/proc), versions 16-17 read alike, 14 and 18 refused,
 * a malformed cpu line, and this machine's /proc when it has the file. */
#include "testsupport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin_fixture.h"

extern const fr_collector_plugin fr_collector_schedstat;
static const fr_collector_plugin *const P = &fr_collector_schedstat;

typedef struct fx {
    char *dir;
    void *cfg;
    void *st;
    fr_batch *b;
    fr_error err;
    int init_rv;
} fx;

/* An instance over a copy of fixtures/schedstat/<set>; init's result in
 * f->init_rv (st NULL when it failed). */
static void fx_open(fx *f, const char *set)
{
    char rel[128];
    memset(f, 0, sizeof(*f));
    f->dir = tst_tmpdir("schedstat");
    snprintf(rel, sizeof(rel), "schedstat/%s", set);
    pf_overlay(f->dir, rel);
    const char *kv[] = {"proc_path", f->dir, NULL};
    f->cfg = pf_config(P, kv);
    f->init_rv = P->init(&f->st, f->cfg, &f->err);
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

static const char *const all[] = {"/intel/proc/schedstat/*", NULL};

static void test_catalog(void **state)
{
    (void)state;
    static const char *const prefixes[] = {"/intel/proc/schedstat", NULL};
    pf_check_catalog(P, prefixes);
    assert_int_equal(P->ncatalog, 16);
    assert_string_equal(P->catalog[0].ns, "/intel/proc/schedstat/cpu/*/schedYield");
    assert_string_equal(P->catalog[0].dyn[0].name, "n");
}

static void test_version15_fields(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "proc");
    assert_fr_ok(f.init_rv);
    assert_fr_ok(fx_collect(&f, all, PF_T0));
    /* cpu0 12 0 984312 412087 601234 301889 523861772931 91352314520 583201
     * Field 2 is the O(1) scheduler's legacy expiry count, always 0: a
     * mapping one field off (as snap's) would give scheduleCalled = 0. */
    assert_int_equal(pf_u64(f.b, "/intel/proc/schedstat/cpu/0/schedYield"), 12);
    assert_int_equal(pf_u64(f.b, "/intel/proc/schedstat/cpu/0/scheduleCalled"), 984312);
    assert_int_equal(pf_u64(f.b, "/intel/proc/schedstat/cpu/0/scheduleLeftIdle"), 412087);
    assert_int_equal(pf_u64(f.b, "/intel/proc/schedstat/cpu/0/tryToWakeUp"), 601234);
    assert_int_equal(pf_u64(f.b, "/intel/proc/schedstat/cpu/0/tryToWakeUpLocalCPU"), 301889);
    assert_int_equal(pf_u64(f.b, "/intel/proc/schedstat/cpu/0/jiffiesRunning"), 523861772931ull);
    assert_int_equal(pf_u64(f.b, "/intel/proc/schedstat/cpu/0/jiffiesWaiting"), 91352314520ull);
    assert_int_equal(pf_u64(f.b, "/intel/proc/schedstat/cpu/0/timeslices"), 583201);
    assert_string_equal(pf_find(f.b, "/intel/proc/schedstat/cpu/0/jiffiesRunning")->unit, "ns");
    /* cpu1 7 0 1023456 398765 650001 322450 540112334455 88123456789 601234 */
    assert_int_equal(pf_u64(f.b, "/intel/proc/schedstat/cpu/1/scheduleCalled"), 1023456);
    assert_int_equal(pf_u64(f.b, "/intel/proc/schedstat/cpu/1/timeslices"), 601234);
    assert_int_equal(pf_u64(f.b, "/intel/proc/schedstat/system/schedYield"), 19);
    assert_int_equal(pf_u64(f.b, "/intel/proc/schedstat/system/scheduleCalled"), 984312 + 1023456);
    assert_int_equal(pf_u64(f.b, "/intel/proc/schedstat/system/jiffiesWaiting"),
                     91352314520ull + 88123456789ull);
    assert_int_equal(f.b->nmetrics, 3 * 8);
    assert_int_equal(f.b->metrics[0].ts, PF_T0);
    pf_check_covered(P, f.b);
    fx_close(&f);
}

static void test_wildcards(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "proc");
    assert_fr_ok(f.init_rv);
    static const char *const slices[] = {"/intel/proc/schedstat/cpu/*/timeslices", NULL};
    assert_fr_ok(fx_collect(&f, slices, PF_T0));
    assert_int_equal(f.b->nmetrics, 2);
    static const char *const one[] = {"/intel/proc/schedstat/cpu/1/*", NULL};
    assert_fr_ok(fx_collect(&f, one, PF_T0));
    assert_int_equal(f.b->nmetrics, 8);
    static const char *const tuple[] = {
        "/intel/proc/schedstat/(cpu;system)/*/(schedYield;timeslices)",
        "/intel/proc/schedstat/system/scheduleLeftIdle", NULL};
    assert_fr_ok(fx_collect(&f, tuple, PF_T0));
    assert_int_equal(f.b->nmetrics, 4 + 1);
    static const char *const none[] = {"/intel/procfs/*", NULL};
    assert_fr_ok(fx_collect(&f, none, PF_T0));
    assert_int_equal(f.b->nmetrics, 0);
    fx_close(&f);
}

static void test_versions(void **state)
{
    (void)state;
    /* 16 and 17 changed the domain lines only. */
    fx f;
    fx_open(&f, "proc-v17");
    assert_fr_ok(f.init_rv);
    assert_fr_ok(fx_collect(&f, all, PF_T0));
    assert_int_equal(pf_u64(f.b, "/intel/proc/schedstat/cpu/0/scheduleCalled"), 984312);
    assert_int_equal(pf_u64(f.b, "/intel/proc/schedstat/cpu/2/timeslices"), 8);
    assert_int_equal(pf_count(f.b, "/intel/proc/schedstat/cpu/*/schedYield"), 3);
    fx_close(&f);

    /* 14 has 12 fields per cpu line in another order: refused when the
     * task is created, saying why. */
    fx_open(&f, "proc-v14");
    assert_int_equal(f.init_rv, FR_EUNSUPPORTED);
    assert_null(f.st);
    assert_string_equal(f.err.where, "proc_path");
    assert_non_null(strstr(f.err.message, "version 14"));
    assert_non_null(strstr(f.err.message, "15 to 17"));
    fx_close(&f);

    fx_open(&f, "proc-v18");
    assert_int_equal(f.init_rv, FR_EUNSUPPORTED);
    assert_non_null(strstr(f.err.message, "version 18"));
    fx_close(&f);

    /* A file that changes version under a running task fails the tick. */
    fx_open(&f, "proc");
    assert_fr_ok(f.init_rv);
    pf_overlay(f.dir, "schedstat/proc-v14");
    assert_int_equal(fx_collect(&f, all, PF_T0), FR_EUNSUPPORTED);
    assert_int_equal(f.b->nmetrics, 0);
    pf_overlay(f.dir, "schedstat/proc");
    assert_fr_ok(fx_collect(&f, all, PF_T0 + PF_SEC));
    assert_int_equal(f.b->nmetrics, 24);
    fx_close(&f);
}

static void test_malformed(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, "proc");
    assert_fr_ok(f.init_rv);
    pf_overlay(f.dir, "schedstat/proc-malformed");
    assert_int_equal(fx_collect(&f, all, PF_T0), FR_EPROTO);
    assert_non_null(strstr(f.err.where, "/schedstat:4"));
    assert_non_null(strstr(f.err.message, "cpu1 7 0 1023456"));
    /* cpu0 still delivers; a sum missing cpu1 would mislead, so none. */
    assert_int_equal(pf_u64(f.b, "/intel/proc/schedstat/cpu/0/timeslices"), 583201);
    assert_int_equal(pf_count(f.b, "/intel/proc/schedstat/cpu/1/*"), 0);
    assert_int_equal(pf_count(f.b, "/intel/proc/schedstat/system/*"), 0);

    /* A first line that is not "version N". */
    char path[1100];
    snprintf(path, sizeof(path), "%s/schedstat", f.dir);
    assert_int_equal(tst_write_file(path, "cpu0 1 2 3\n", 11), 0);
    assert_int_equal(fx_collect(&f, all, PF_T0), FR_EPROTO);
    assert_non_null(strstr(f.err.message, "version N"));
    fx_close(&f);
}

static void test_missing_file(void **state)
{
    (void)state;
    char *dir = tst_tmpdir("schedstat-none");
    const char *kv[] = {"proc_path", dir, NULL};
    void *cfg = pf_config(P, kv);
    void *st = (void *)1;
    fr_error err;
    assert_int_equal(P->init(&st, cfg, &err), FR_ENOTFOUND);
    assert_null(st);
    assert_string_equal(err.where, "proc_path");
    assert_non_null(strstr(err.message, "CONFIG_SCHEDSTATS"));
    pf_config_free(P, cfg);
    const char *empty[] = {"proc_path", "", NULL};
    cfg = pf_config(P, empty);
    assert_int_equal(P->init(&st, cfg, &err), FR_ECONFIG);
    pf_config_free(P, cfg);
    P->destroy(NULL);

    /* snap's schedstat called the key procPath; config keys are lower
     * case here, and an unknown key is refused. */
    const char *snap[] = {"procPath", "/proc", NULL};
    cfg = (void *)1;
    assert_int_equal(pf_config_load(P, snap, &cfg, &err), FR_EUNKNOWN);
    assert_null(cfg);
    assert_non_null(strstr(err.message, "procPath"));
    tst_rmtree(dir);
    free(dir);
}

static void test_real_proc(void **state)
{
    (void)state;
    void *cfg = pf_config(P, NULL);
    void *st;
    fr_error err;
    int rv = P->init(&st, cfg, &err);
    if (access("/proc/schedstat", R_OK) != 0) {
        /* This kernel has no schedstats: the task would be refused. */
        assert_int_equal(rv, FR_ENOTFOUND);
        pf_config_free(P, cfg);
        skip();
    }
    if (rv == FR_EUNSUPPORTED) {
        pf_config_free(P, cfg);
        skip(); /* a schedstat version newer than this plugin knows */
    }
    assert_fr_ok(rv);
    fr_batch *b;
    assert_fr_ok(pf_collect(P, st, all, PF_T0, &b, &err));
    pf_check_covered(P, b);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(pf_count(b, "/intel/proc/schedstat/cpu/*/timeslices"), ncpu);
    fr_batch_destroy(b);
    P->destroy(st);
    pf_config_free(P, cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalog),   cmocka_unit_test(test_version15_fields),
        cmocka_unit_test(test_wildcards), cmocka_unit_test(test_versions),
        cmocka_unit_test(test_malformed), cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_real_proc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
