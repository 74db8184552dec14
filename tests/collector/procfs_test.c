/* The procfs plugin against a copy of a real /proc (fixtures/procfs/proc),
 * a second snapshot a second later with a new cpu, interface and disk
 * (proc-next), one with malformed lines (proc-malformed), and a smoke run
 * over this machine's /proc. */
#include "testsupport.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin_fixture.h"

extern const fr_collector_plugin fr_collector_procfs;
static const fr_collector_plugin *const P = &fr_collector_procfs;

#define KB 1024ull

/* A plugin instance reading a scratch copy of the fixture tree. */
typedef struct fx {
    char *dir;
    void *cfg;
    void *st;
    fr_batch *b;
    fr_error err;
} fx;

static void fx_open(fx *f, const char *const *kv_extra)
{
    memset(f, 0, sizeof(*f));
    f->dir = tst_tmpdir("procfs");
    pf_overlay(f->dir, "procfs/proc");
    const char *kv[8] = {"proc_path", f->dir};
    for (size_t i = 0; kv_extra != NULL && kv_extra[i] != NULL && i < 4; i++) {
        kv[2 + i] = kv_extra[i];
    }
    f->cfg = pf_config(P, kv);
    fr_error err;
    int rv = P->init(&f->st, f->cfg, &err);
    if (rv != 0) {
        fail_msg("init: %s: %s", err.where, err.message);
    }
}

/* Collects for the queries at t; the previous batch is freed. */
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

/* Metrics whose namespace starts with prefix and ends with suffix. */
static size_t count_like(const fr_batch *b, const char *prefix, const char *suffix)
{
    size_t n = 0, pl = strlen(prefix), sl = strlen(suffix);
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        const char *ns = b->metrics[i].ns;
        size_t l = strlen(ns);
        n += l >= pl + sl && strncmp(ns, prefix, pl) == 0 && strcmp(ns + l - sl, suffix) == 0;
    }
    return n;
}

static void test_catalog(void **state)
{
    (void)state;
    static const char *const prefixes[] = {"/intel/procfs", "/intel/psutil", NULL};
    pf_check_catalog(P, prefixes);
    assert_string_equal(P->name, "procfs");
    assert_string_equal(P->policy[0].key, "proc_path");
    assert_string_equal(P->policy[0].def, "/proc");
}

static void test_load(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NULL);
    static const char *const q[] = {"/intel/procfs/load/*", "/intel/psutil/load/*", NULL};
    assert_fr_ok(fx_collect(&f, q, PF_T0));
    /* fixtures/procfs/proc/loadavg: 2.36 2.39 2.62 1/96 23976, 2 CPUs */
    assert_near(pf_f64(f.b, "/intel/procfs/load/min1"), 2.36);
    assert_near(pf_f64(f.b, "/intel/procfs/load/min5"), 2.39);
    assert_near(pf_f64(f.b, "/intel/procfs/load/min15"), 2.62);
    assert_near(pf_f64(f.b, "/intel/procfs/load/min1_rel"), 1.18);
    assert_near(pf_f64(f.b, "/intel/procfs/load/min5_rel"), 1.195);
    assert_near(pf_f64(f.b, "/intel/procfs/load/min15_rel"), 1.31);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/load/runnable_scheduling"), 1);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/load/existing_scheduling"), 96);
    assert_near(pf_f64(f.b, "/intel/psutil/load/load1"), 2.36);
    assert_near(pf_f64(f.b, "/intel/psutil/load/load5"), 2.39);
    assert_near(pf_f64(f.b, "/intel/psutil/load/load15"), 2.62);
    assert_int_equal(f.b->nmetrics, 11);
    assert_int_equal(f.b->metrics[0].ts, PF_T0);
    pf_check_covered(P, f.b);

    /* The report's task asks for these by name. */
    static const char *const q1[] = {"/intel/psutil/load/load1", "/intel/psutil/load/load15", NULL};
    assert_fr_ok(fx_collect(&f, q1, PF_T0 + PF_SEC));
    assert_int_equal(f.b->nmetrics, 2);
    fx_close(&f);
}

static void test_cpu_jiffies_and_percentages(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NULL);
    static const char *const q[] = {"/intel/procfs/cpu/*", NULL};
    assert_fr_ok(fx_collect(&f, q, PF_T0));
    /* cpu  220434 0 169235 534480 875 0 18121 803 0 0 */
    assert_int_equal(pf_u64(f.b, "/intel/procfs/cpu/all/user_jiffies"), 220434);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/cpu/all/system_jiffies"), 169235);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/cpu/all/idle_jiffies"), 534480);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/cpu/all/softirq_jiffies"), 18121);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/cpu/all/steal_jiffies"), 803);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/cpu/all/guest_nice_jiffies"), 0);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/cpu/all/active_jiffies"), 943948 - 534480);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/cpu/all/utilization_jiffies"),
                     943948 - 534480 - 875);
    /* cpu1 114742 0 84312 262650 735 0 9197 410 0 0 */
    assert_int_equal(pf_u64(f.b, "/intel/procfs/cpu/1/user_jiffies"), 114742);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/cpu/1/iowait_jiffies"), 735);
    /* 3 lines of 10 fields plus active and utilization; no percentage
     * before there is a previous tick. */
    assert_int_equal(f.b->nmetrics, 36);
    assert_int_equal(pf_count(f.b, "/intel/procfs/cpu/*/user_percentage"), 0);

    /* A second later: +300 user, +100 system, +550 idle, +50 iowait over
     * all CPUs, half of it on each; cpu2 came online. */
    pf_overlay(f.dir, "procfs/proc-next");
    assert_fr_ok(fx_collect(&f, q, PF_T0 + PF_SEC));
    for (int i = 0; i < 3; i++) {
        const char *id = i == 0 ? "all" : i == 1 ? "0" : "1";
        char ns[128];
#define PCT(leaf, want)                                                                            \
    snprintf(ns, sizeof(ns), "/intel/procfs/cpu/%s/" leaf, id);                                    \
    assert_near(pf_f64(f.b, ns), want)
        PCT("user_percentage", 30.0);
        PCT("system_percentage", 10.0);
        PCT("idle_percentage", 55.0);
        PCT("iowait_percentage", 5.0);
        PCT("nice_percentage", 0.0);
        PCT("active_percentage", 45.0);
        PCT("utilization_percentage", 40.0);
#undef PCT
    }
    assert_int_equal(pf_u64(f.b, "/intel/procfs/cpu/2/user_jiffies"), 100);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/cpu/2/idle_jiffies"), 1000);
    assert_null(pf_find(f.b, "/intel/procfs/cpu/2/user_percentage"));
    assert_int_equal(count_like(f.b, "/intel/procfs/cpu/", "_jiffies"), 4 * 12);
    assert_int_equal(count_like(f.b, "/intel/procfs/cpu/", "_percentage"), 3 * 12);
    pf_check_covered(P, f.b);

    /* A tick at the same time gives no percentages (no time passed). */
    assert_fr_ok(fx_collect(&f, q, PF_T0 + PF_SEC));
    assert_int_equal(count_like(f.b, "/intel/procfs/cpu/", "_percentage"), 0);
    fx_close(&f);
}

static void test_psutil_cpu_and_stat(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NULL);
    static const char *const q[] = {"/intel/psutil/cpu/*", "/intel/procfs/stat/*", NULL};
    assert_fr_ok(fx_collect(&f, q, PF_T0));
    /* psutil gives seconds: jiffies / USER_HZ (100 on Linux). */
    assert_near(pf_f64(f.b, "/intel/psutil/cpu/cpu-total/user"), 2204.34);
    assert_near(pf_f64(f.b, "/intel/psutil/cpu/cpu-total/idle"), 5344.80);
    assert_near(pf_f64(f.b, "/intel/psutil/cpu/cpu0/system"), 849.23);
    assert_near(pf_f64(f.b, "/intel/psutil/cpu/cpu1/steal"), 4.10);
    assert_near(pf_f64(f.b, "/intel/psutil/cpu/cpu1/stolen"), 4.10);
    assert_near(pf_f64(f.b, "/intel/psutil/cpu/cpu0/guest_nice"), 0.0);
    assert_int_equal(pf_count(f.b, "/intel/psutil/cpu/*"), 3 * 11);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/stat/ctxt"), 181570465);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/stat/btime"), 1795629160);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/stat/processes"), 88883);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/stat/procs_running"), 1);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/stat/procs_blocked"), 0);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/stat/intr"), 16580635);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/stat/softirq"), 67912453);
    assert_int_equal(pf_count(f.b, "/intel/procfs/*"), 7);
    pf_check_covered(P, f.b);
    fx_close(&f);
}

static void test_meminfo_and_vm(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NULL);
    static const char *const q[] = {"/intel/procfs/meminfo/*", "/intel/psutil/vm/*", NULL};
    assert_fr_ok(fx_collect(&f, q, PF_T0));
    const uint64_t total = 24684096, free_ = 23971180, avail = 24256484, buffers = 8480,
                   cached = 427240, slab = 164764;
    assert_int_equal(pf_u64(f.b, "/intel/procfs/meminfo/MemTotal"), total * KB);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/meminfo/MemFree"), free_ * KB);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/meminfo/Active_anon"), 1552 * KB);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/meminfo/Slab"), slab * KB);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/meminfo/VmallocTotal"), 34359738367ull * KB);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/meminfo/Hugepagesize"), 2048 * KB);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/meminfo/HugePages_Total"), 0);
    assert_string_equal(pf_find(f.b, "/intel/procfs/meminfo/HugePages_Total")->unit, "");
    assert_string_equal(pf_find(f.b, "/intel/procfs/meminfo/MemTotal")->unit, "bytes");
    assert_int_equal(pf_u64(f.b, "/intel/procfs/meminfo/MemUsed"),
                     (total - (free_ + buffers + cached + slab)) * KB);
    assert_near(pf_f64(f.b, "/intel/procfs/meminfo/MemTotal_perc"), 100.0);
    assert_near(pf_f64(f.b, "/intel/procfs/meminfo/MemFree_perc"),
                100.0 * (double)free_ / (double)total);
    assert_null(pf_find(f.b, "/intel/procfs/meminfo/HugePages_Total_perc"));
    assert_null(pf_find(f.b, "/intel/procfs/meminfo/Active(anon)"));
    /* 54 fields + MemUsed, and a share of MemTotal for the 50 in bytes */
    assert_int_equal(pf_count(f.b, "/intel/procfs/meminfo/*"), 55 + 51);

    assert_int_equal(pf_u64(f.b, "/intel/psutil/vm/total"), total * KB);
    assert_int_equal(pf_u64(f.b, "/intel/psutil/vm/available"), avail * KB);
    assert_int_equal(pf_u64(f.b, "/intel/psutil/vm/free"), free_ * KB);
    assert_int_equal(pf_u64(f.b, "/intel/psutil/vm/used"), (total - free_ - buffers - cached) * KB);
    assert_int_equal(pf_u64(f.b, "/intel/psutil/vm/buffers"), buffers * KB);
    assert_int_equal(pf_u64(f.b, "/intel/psutil/vm/cached"), cached * KB);
    assert_int_equal(pf_u64(f.b, "/intel/psutil/vm/active"), 317884 * KB);
    assert_int_equal(pf_u64(f.b, "/intel/psutil/vm/inactive"), 134204 * KB);
    assert_int_equal(pf_u64(f.b, "/intel/psutil/vm/wired"), 0);
    assert_near(pf_f64(f.b, "/intel/psutil/vm/used_percent"),
                100.0 * (double)(total - avail) / (double)total);
    assert_int_equal(pf_count(f.b, "/intel/psutil/vm/*"), 10);
    pf_check_covered(P, f.b);
    fx_close(&f);
}

static void test_vmstat(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NULL);
    static const char *const q[] = {"/intel/procfs/vmstat/*", NULL};
    assert_fr_ok(fx_collect(&f, q, PF_T0));
    assert_int_equal(f.b->nmetrics, 192); /* every line of the file */
    assert_int_equal(pf_u64(f.b, "/intel/procfs/vmstat/nr_free_pages"), 1188366);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/vmstat/pgfault"), 111434145);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/vmstat/pswpin"), 0);
    static const char *const q1[] = {"/intel/procfs/vmstat/(pgfault;pswpout)", NULL};
    assert_fr_ok(fx_collect(&f, q1, PF_T0));
    assert_int_equal(f.b->nmetrics, 2);
    fx_close(&f);
}

static void test_network(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NULL);
    static const char *const q[] = {"/intel/procfs/iface/*", "/intel/psutil/net/*", NULL};
    assert_fr_ok(fx_collect(&f, q, PF_T0));
    /* eth0: 93834977 2103 0 0 0 0 0 0 93709 1241 0 0 0 0 0 0 */
    assert_int_equal(pf_u64(f.b, "/intel/procfs/iface/eth0/bytes_recv"), 93834977);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/iface/eth0/packets_recv"), 2103);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/iface/eth0/bytes_sent"), 93709);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/iface/eth0/packets_sent"), 1241);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/iface/lo/bytes_recv"), 353845009081ull);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/iface/ifb1/carrier_sent"), 0);
    assert_int_equal(pf_count(f.b, "/intel/procfs/iface/*"), 4 * 16);
    assert_int_equal(pf_u64(f.b, "/intel/psutil/net/eth0/bytes_recv"), 93834977);
    assert_int_equal(pf_u64(f.b, "/intel/psutil/net/eth0/packets_sent"), 1241);
    assert_int_equal(pf_u64(f.b, "/intel/psutil/net/all/bytes_recv"), 353845009081ull + 93834977);
    assert_int_equal(pf_u64(f.b, "/intel/psutil/net/all/bytes_sent"), 353845009081ull + 93709);
    assert_int_equal(pf_count(f.b, "/intel/psutil/net/*"), 5 * 8);
    /* psutil's "all" is not an interface of the procfs names. */
    assert_null(pf_find(f.b, "/intel/procfs/iface/all/bytes_recv"));
    pf_check_covered(P, f.b);

    /* veth1 appears on the next tick, without a restart. */
    pf_overlay(f.dir, "procfs/proc-next");
    assert_fr_ok(fx_collect(&f, q, PF_T0 + PF_SEC));
    assert_int_equal(pf_u64(f.b, "/intel/procfs/iface/veth1/bytes_sent"), 700);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/iface/eth0/drop_recv"), 3);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/iface/eth0/fifo_sent"), 2);
    assert_int_equal(pf_u64(f.b, "/intel/psutil/net/eth0/dropin"), 3);
    assert_int_equal(pf_u64(f.b, "/intel/psutil/net/eth0/errout"), 1);
    assert_int_equal(pf_count(f.b, "/intel/procfs/iface/*"), 5 * 16);

    static const char *const q1[] = {"/intel/procfs/iface/(eth0;lo)/bytes_recv", NULL};
    assert_fr_ok(fx_collect(&f, q1, PF_T0 + 2 * PF_SEC));
    assert_int_equal(f.b->nmetrics, 2);
    fx_close(&f);
}

static void test_disks(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NULL);
    static const char *const q[] = {"/intel/procfs/disk/*", NULL};
    assert_fr_ok(fx_collect(&f, q, PF_T0));
    /* vda 167196 17745 8088402 194784 41881 40756 3715208 19466 0 19900
     *     216912 18019 39 1307784 2576 1937 84 */
    static const uint64_t vda[17] = {167196,  17745,   8088402, 194784, 41881,  40756,
                                     3715208, 19466,   0,       19900,  216912, 18019,
                                     39,      1307784, 2576,    1937,   84};
    static const char *const fields[17] = {
        "reads",          "reads_merged",    "sectors_read",    "read_ms",           "writes",
        "writes_merged",  "sectors_written", "write_ms",        "pending_ops",       "io_ms",
        "weighted_io_ms", "discards",        "discards_merged", "sectors_discarded", "discard_ms",
        "flushes",        "flush_ms"};
    for (int i = 0; i < 17; i++) {
        char ns[128];
        snprintf(ns, sizeof(ns), "/intel/procfs/disk/vda/%s", fields[i]);
        assert_int_equal(pf_u64(f.b, ns), vda[i]);
    }
    assert_string_equal(pf_find(f.b, "/intel/procfs/disk/vda/read_ms")->unit, "ms");
    assert_int_equal(pf_count(f.b, "/intel/procfs/disk/*"), 10 * 17);
    assert_int_equal(pf_count(f.b, "/intel/procfs/disk/*/ops_read"), 0);

    /* A second later vda read 100 times (2048 sectors, 300 ms), wrote 50
     * times (1024 sectors, 200 ms), was busy 250 ms; vdb appeared with
     * the 11 fields of older kernels. */
    pf_overlay(f.dir, "procfs/proc-next");
    assert_fr_ok(fx_collect(&f, q, PF_T0 + PF_SEC));
    assert_near(pf_f64(f.b, "/intel/procfs/disk/vda/ops_read"), 100);
    assert_near(pf_f64(f.b, "/intel/procfs/disk/vda/ops_write"), 50);
    assert_near(pf_f64(f.b, "/intel/procfs/disk/vda/octets_read"), 2048 * 512);
    assert_near(pf_f64(f.b, "/intel/procfs/disk/vda/octets_write"), 1024 * 512);
    assert_near(pf_f64(f.b, "/intel/procfs/disk/vda/merged_read"), 10);
    assert_near(pf_f64(f.b, "/intel/procfs/disk/vda/merged_write"), 5);
    assert_near(pf_f64(f.b, "/intel/procfs/disk/vda/time_read"), 3.0);
    assert_near(pf_f64(f.b, "/intel/procfs/disk/vda/time_write"), 4.0);
    assert_near(pf_f64(f.b, "/intel/procfs/disk/vda/io_time"), 250);
    assert_near(pf_f64(f.b, "/intel/procfs/disk/vda/weighted_io_time"), 1500);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/disk/vda/pending_ops"), 2);
    assert_near(pf_f64(f.b, "/intel/procfs/disk/loop0/time_read"), 0.0);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/disk/vdb/weighted_io_ms"), 1);
    assert_null(pf_find(f.b, "/intel/procfs/disk/vdb/discards"));
    assert_null(pf_find(f.b, "/intel/procfs/disk/vdb/ops_read"));
    assert_int_equal(pf_count(f.b, "/intel/procfs/disk/vdb/*"), 11);
    pf_check_covered(P, f.b);

    /* Two seconds later with the same counters: rates over 2 s, from the
     * counters of the tick before. */
    assert_fr_ok(fx_collect(&f, q, PF_T0 + 3 * PF_SEC));
    assert_near(pf_f64(f.b, "/intel/procfs/disk/vda/ops_read"), 0);
    assert_near(pf_f64(f.b, "/intel/procfs/disk/vdb/ops_read"), 0);

    /* Counters that went back (the device was replaced) give no rate. */
    pf_overlay(f.dir, "procfs/proc");
    assert_fr_ok(fx_collect(&f, q, PF_T0 + 4 * PF_SEC));
    assert_null(pf_find(f.b, "/intel/procfs/disk/vda/ops_read"));
    assert_non_null(pf_find(f.b, "/intel/procfs/disk/loop0/ops_read"));
    fx_close(&f);
}

static void test_psutil_disk(void **state)
{
    (void)state;
    static const char *const q[] = {"/intel/psutil/disk/*", NULL};
    /* physical (the default): ext4 is a block-device file system in
     * fixtures' filesystems, proc and tmpfs are nodev; / is mounted twice;
     * "/no/such mount" cannot be statvfs()ed. */
    fx f;
    fx_open(&f, NULL);
    assert_fr_ok(fx_collect(&f, q, PF_T0));
    assert_int_equal(f.b->nmetrics, 4);
    uint64_t total = pf_u64(f.b, "/intel/psutil/disk/root/total");
    uint64_t used = pf_u64(f.b, "/intel/psutil/disk/root/used");
    uint64_t free_ = pf_u64(f.b, "/intel/psutil/disk/root/free");
    double pct = pf_f64(f.b, "/intel/psutil/disk/root/percent");
    assert_true(total > 0 && used <= total && free_ <= total);
    assert_true(pct >= 0 && pct <= 100);
    const fr_metric *m = pf_find(f.b, "/intel/psutil/disk/root/total");
    assert_string_equal(pf_tag(m, "mount_point"), "/");
    assert_string_equal(pf_tag(m, "device"), "/dev/vda");
    pf_check_covered(P, f.b);
    fx_close(&f);

    static const char *const all[] = {"mount_points", "all", NULL};
    fx_open(&f, all);
    assert_fr_ok(fx_collect(&f, q, PF_T0));
    assert_int_equal(pf_count(f.b, "/intel/psutil/disk/*/total"), 3);
    assert_non_null(pf_find(f.b, "/intel/psutil/disk/proc/total"));
    m = pf_find(f.b, "/intel/psutil/disk/dev-shm/free");
    assert_non_null(m);
    assert_string_equal(pf_tag(m, "mount_point"), "/dev/shm");
    fx_close(&f);

    static const char *const one[] = {"mount_points", "/dev/shm", NULL};
    fx_open(&f, one);
    assert_fr_ok(fx_collect(&f, q, PF_T0));
    assert_int_equal(f.b->nmetrics, 4);
    assert_non_null(pf_find(f.b, "/intel/psutil/disk/dev-shm/used"));
    fx_close(&f);
}

static void test_query_reads_only_what_it_needs(void **state)
{
    (void)state;
    /* An empty directory: nothing asked for means nothing read, and a
     * failure names the one file a query needed. */
    char *dir = tst_tmpdir("procfs-empty");
    const char *kv[] = {"proc_path", dir, NULL};
    void *cfg = pf_config(P, kv);
    void *st;
    fr_error err;
    fr_batch *b;
    assert_fr_ok(P->init(&st, cfg, &err));
    static const char *const none[] = {"/intel/use/*", "/intel/procfs/nothing/here", NULL};
    assert_fr_ok(pf_collect(P, st, none, PF_T0, &b, &err));
    assert_int_equal(b->nmetrics, 0);
    fr_batch_destroy(b);

    static const char *const vm[] = {"/intel/psutil/vm/free", NULL};
    assert_int_equal(pf_collect(P, st, vm, PF_T0, &b, &err), FR_ENOTFOUND);
    assert_non_null(strstr(err.where, "/meminfo"));
    fr_batch_destroy(b);

    static const char *const load[] = {"/intel/procfs/load/min1", NULL};
    assert_int_equal(pf_collect(P, st, load, PF_T0, &b, &err), FR_ENOTFOUND);
    assert_non_null(strstr(err.where, "/loadavg"));
    fr_batch_destroy(b);

    /* The per-CPU load needs the CPU count from stat. */
    static const char *const rel[] = {"/intel/procfs/load/min1_rel", NULL};
    assert_int_equal(pf_collect(P, st, rel, PF_T0, &b, &err), FR_ENOTFOUND);
    assert_non_null(strstr(err.where, "/stat"));
    fr_batch_destroy(b);

    P->destroy(st);
    pf_config_free(P, cfg);
    tst_rmtree(dir);
    free(dir);
}

static void test_malformed_lines(void **state)
{
    (void)state;
    fx f;
    fx_open(&f, NULL);
    pf_overlay(f.dir, "procfs/proc-malformed");
    static const char *const q[] = {"/intel/procfs/*", "/intel/psutil/*", NULL};
    /* Each bad line is skipped and the first one reported; everything
     * else in that file and the others is still delivered. */
    assert_int_equal(fx_collect(&f, q, PF_T0), FR_EPROTO);
    assert_non_null(strstr(f.err.where, "/meminfo:4"));
    assert_non_null(strstr(f.err.message, "Broken line"));
    assert_int_equal(pf_u64(f.b, "/intel/procfs/meminfo/Buffers"), 8480 * KB);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/iface/eth0/bytes_recv"), 93834977);
    assert_int_equal(pf_u64(f.b, "/intel/procfs/disk/vda/reads"), 167196);
    assert_int_equal(pf_count(f.b, "/intel/procfs/iface/bad0/*"), 0);
    assert_int_equal(pf_count(f.b, "/intel/procfs/disk/sdz/*"), 0);
    assert_near(pf_f64(f.b, "/intel/psutil/load/load1"), 2.36);

    /* Only net/dev and diskstats asked for: their lines are reported. */
    static const char *const qn[] = {"/intel/procfs/iface/*", NULL};
    assert_int_equal(fx_collect(&f, qn, PF_T0 + PF_SEC), FR_EPROTO);
    assert_non_null(strstr(f.err.where, "/net/dev:5"));
    static const char *const qd[] = {"/intel/procfs/disk/*", NULL};
    assert_int_equal(fx_collect(&f, qd, PF_T0 + PF_SEC), FR_EPROTO);
    assert_non_null(strstr(f.err.where, "/diskstats:3"));
    assert_int_equal(pf_count(f.b, "/intel/procfs/disk/*/reads"), 10);

    /* Fixed on disk: the next tick is clean. */
    pf_overlay(f.dir, "procfs/proc");
    assert_fr_ok(fx_collect(&f, q, PF_T0 + 2 * PF_SEC));
    fx_close(&f);
}

static void test_config_errors(void **state)
{
    (void)state;
    void *st = (void *)1;
    fr_error err;
    const char *kv[] = {"proc_path", "/no/such/proc", NULL};
    void *cfg = pf_config(P, kv);
    assert_int_equal(P->init(&st, cfg, &err), FR_ECONFIG);
    assert_null(st);
    assert_string_equal(err.where, "proc_path");
    assert_non_null(strstr(err.message, "/no/such/proc"));
    pf_config_free(P, cfg);

    const char *bad[] = {"mount_points", "physical,relative/path", NULL};
    cfg = pf_config(P, bad);
    assert_int_equal(P->init(&st, cfg, &err), FR_ECONFIG);
    assert_string_equal(err.where, "mount_points");
    pf_config_free(P, cfg);

    /* A trailing slash names the same files. */
    char path[1024];
    fx f;
    fx_open(&f, NULL);
    snprintf(path, sizeof(path), "%s/", f.dir);
    const char *slash[] = {"proc_path", path, NULL};
    cfg = pf_config(P, slash);
    assert_fr_ok(P->init(&st, cfg, &err));
    fr_batch *b;
    static const char *const q[] = {"/intel/psutil/load/load1", NULL};
    assert_fr_ok(pf_collect(P, st, q, PF_T0, &b, &err));
    assert_int_equal(b->nmetrics, 1);
    fr_batch_destroy(b);
    P->destroy(st);
    pf_config_free(P, cfg);
    fx_close(&f);

    P->destroy(NULL); /* safe on nothing */
}

static void test_config_loader(void **state)
{
    (void)state;
    void *cfg = (void *)1;
    fr_error err;
    /* Keys are checked against the policy when the task is created. */
    const char *typo[] = {"proc_pth", "/proc", NULL};
    assert_int_equal(pf_config_load(P, typo, &cfg, &err), FR_EUNKNOWN);
    assert_null(cfg);
    assert_non_null(strstr(err.message, "proc_pth"));
    assert_non_null(strstr(err.where, "workflow.collect.config./intel/procfs"));

    /* Defaults: /proc, physical file systems. */
    cfg = pf_config(P, NULL);
    const char *const *v = *(const char *const **)((char *)cfg + P->policy[1].offset);
    assert_string_equal(*(char **)((char *)cfg + P->policy[0].offset), "/proc");
    assert_string_equal(v[0], "physical");
    pf_config_free(P, cfg);

    /* A list as a manifest writes it. */
    fx f;
    static const char *const both[] = {"mount_points", "physical,/dev/shm", NULL};
    fx_open(&f, both);
    static const char *const q[] = {"/intel/psutil/disk/*/total", NULL};
    assert_fr_ok(fx_collect(&f, q, PF_T0));
    assert_int_equal(f.b->nmetrics, 2);
    assert_non_null(pf_find(f.b, "/intel/psutil/disk/root/total"));
    assert_non_null(pf_find(f.b, "/intel/psutil/disk/dev-shm/total"));
    fx_close(&f);
}

static void test_real_proc(void **state)
{
    (void)state;
    void *cfg = pf_config(P, NULL);
    void *st;
    fr_error err;
    fr_batch *b;
    assert_fr_ok(P->init(&st, cfg, &err));
    static const char *const q[] = {"/intel/procfs/*", "/intel/psutil/*", NULL};
    int64_t t0 = PF_T0;
    assert_fr_ok(pf_collect(P, st, q, t0, &b, &err));
    pf_check_covered(P, b);
    assert_true(pf_u64(b, "/intel/procfs/meminfo/MemTotal") > 0);
    assert_true(pf_u64(b, "/intel/psutil/vm/total") > 0);
    assert_true(pf_f64(b, "/intel/psutil/load/load1") >= 0);
    assert_true(pf_u64(b, "/intel/procfs/cpu/all/idle_jiffies") > 0);
    assert_true(pf_count(b, "/intel/procfs/iface/lo/*") == 16);
    assert_true(pf_count(b, "/intel/procfs/vmstat/*") > 50);
    size_t first = b->nmetrics;
    fr_batch_destroy(b);
    /* The second tick adds the rates and percentages; let some jiffies
     * pass so that there is cpu time to share out. */
    usleep(150 * 1000);
    assert_fr_ok(pf_collect(P, st, q, t0 + PF_SEC / 10, &b, &err));
    pf_check_covered(P, b);
    assert_true(b->nmetrics > first);
    double idle = pf_f64(b, "/intel/procfs/cpu/all/idle_percentage");
    assert_true(idle >= 0 && idle <= 100);
    fr_batch_destroy(b);
    P->destroy(st);
    pf_config_free(P, cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalog),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_cpu_jiffies_and_percentages),
        cmocka_unit_test(test_psutil_cpu_and_stat),
        cmocka_unit_test(test_meminfo_and_vm),
        cmocka_unit_test(test_vmstat),
        cmocka_unit_test(test_network),
        cmocka_unit_test(test_disks),
        cmocka_unit_test(test_psutil_disk),
        cmocka_unit_test(test_query_reads_only_what_it_needs),
        cmocka_unit_test(test_malformed_lines),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_config_loader),
        cmocka_unit_test(test_real_proc),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
