/* The libvirt plugin through the real libvirt API, on the test driver with
 * fixtures/libvirt/node50.xml (50 running domains, see gen-node50.sh), plus
 * the domain XML scanner on its own. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "fresco/config.h"
#include "fresco/log.h"
#include "fresco/metric.h"
#include "fresco/ns.h"
#include "fresco/plugin.h"
#include "libvirt/domxml.h"
#include "libvirt/libvirt_plugin.h"
#include "testsupport.h"

extern const fr_collector_plugin fr_collector_libvirt;
static const fr_collector_plugin *P = &fr_collector_libvirt;

#define NDOMS 50

/* The shape gen-node50.sh gives domain i. */
static int fx_vcpus(int i)
{
    return 2 + i % 3;
}
static int fx_disks(int i)
{
    return 1 + i % 2;
}
static int fx_nics(int i)
{
    return 1 + (i / 2) % 2;
}
static uint64_t fx_mem(int i)
{
    return 524288ull * (uint64_t)(1 + i % 4);
}
static size_t fx_metrics(int i)
{
    return 1 + (size_t)fx_vcpus(i) + 11 + 4 * (size_t)fx_disks(i) + 8 * (size_t)fx_nics(i);
}

/* The 25 namespaces of the report's libvirt task (section 3.1.3.1). */
static const char *const report_metrics[] = {
    "/intel/libvirt/*/cpu/*/cputime",
    "/intel/libvirt/*/cpu/cputime",
    "/intel/libvirt/*/disk/*/rdbytes",
    "/intel/libvirt/*/disk/*/rdreq",
    "/intel/libvirt/*/disk/*/wrbytes",
    "/intel/libvirt/*/disk/*/wrreq",
    "/intel/libvirt/*/memory/actual_balloon",
    "/intel/libvirt/*/memory/available",
    "/intel/libvirt/*/memory/major_fault",
    "/intel/libvirt/*/memory/max",
    "/intel/libvirt/*/memory/mem",
    "/intel/libvirt/*/memory/min_fault",
    "/intel/libvirt/*/memory/nr",
    "/intel/libvirt/*/memory/rss",
    "/intel/libvirt/*/memory/swap_in",
    "/intel/libvirt/*/memory/swap_out",
    "/intel/libvirt/*/memory/unused",
    "/intel/libvirt/*/network/*/rxbytes",
    "/intel/libvirt/*/network/*/rxdrop",
    "/intel/libvirt/*/network/*/rxerrs",
    "/intel/libvirt/*/network/*/rxpackets",
    "/intel/libvirt/*/network/*/txbytes",
    "/intel/libvirt/*/network/*/txdrop",
    "/intel/libvirt/*/network/*/txerrs",
    "/intel/libvirt/*/network/*/txpackets",
    NULL,
};

static char node_uri[4200];

static const char *fixture_uri(void)
{
    char path[4096];
    tst_src(path, sizeof(path), "tests/collector/fixtures/libvirt/node50.xml");
    snprintf(node_uri, sizeof(node_uri), "test://%s", path);
    return node_uri;
}

/* ---- helpers ---------------------------------------------------------- */

/* Loads the plugin's config from "key=value" strings (NULL-terminated)
 * through its policy table, as the collector does for a task. */
static int config_load(const char *const *kv, void **config, fr_error *err)
{
    size_t n = 0;
    while (kv != NULL && kv[n] != NULL) {
        n++;
    }
    const char *keys[16], *vals[16];
    char buf[16][512];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++) {
        snprintf(buf[i], sizeof(buf[i]), "%s", kv[i]);
        char *eq = strchr(buf[i], '=');
        assert_non_null(eq);
        *eq = '\0';
        keys[i] = buf[i];
        vals[i] = eq + 1;
    }
    return fr_plugin_config_load(P, keys, vals, n, "workflow.collect.config./intel/libvirt", config,
                                 err);
}

typedef struct inst {
    void *config;
    void *state;
} inst;

static void inst_open(inst *in, const char *const *kv)
{
    fr_error err = {0};
    assert_fr_ok(config_load(kv, &in->config, &err));
    int rv = P->init(&in->state, in->config, &err);
    if (rv != 0) {
        fail_msg("init: %s: %s", err.where, err.message);
    }
}

static void inst_close(inst *in)
{
    P->destroy(in->state);
    fr_plugin_config_free(P, in->config);
}

static fr_ns_query *query_of(const char *const *q)
{
    fr_ns_query *nq = fr_ns_query_new();
    assert_non_null(nq);
    for (size_t i = 0; q[i] != NULL; i++) {
        assert_fr_ok(fr_ns_query_add(nq, q[i], NULL));
    }
    return nq;
}

static fr_batch *collect_q(inst *in, const fr_ns_query *q)
{
    fr_batch *b = fr_batch_new("t", "node", 0);
    assert_non_null(b);
    fr_collect_req req = {q, 1700000000000000000, b};
    fr_error err = {0};
    int rv = P->collect(in->state, &req, &err);
    if (rv != 0) {
        fail_msg("collect: %s: %s", err.where, err.message);
    }
    return b;
}

static fr_batch *collect(inst *in, const char *const *queries)
{
    fr_ns_query *q = query_of(queries);
    fr_batch *b = collect_q(in, q);
    fr_ns_query_destroy(q);
    return b;
}

static const fr_metric *find(const fr_batch *b, const char *ns)
{
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        if (strcmp(b->metrics[i].ns, ns) == 0) {
            return &b->metrics[i];
        }
    }
    return NULL;
}

static uint64_t value_of(const fr_batch *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static uint64_t value_of(const fr_batch *b, const char *fmt, ...)
{
    char ns[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ns, sizeof(ns), fmt, ap);
    va_end(ap);
    const fr_metric *m = find(b, ns);
    if (m == NULL) {
        fail_msg("no metric %s", ns);
    }
    assert_int_equal(m->value.type, FR_VAL_UINT64);
    return m->value.v.u;
}

static size_t count_prefix(const fr_batch *b, const char *prefix)
{
    size_t n = 0, len = strlen(prefix);
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        n += strncmp(b->metrics[i].ns, prefix, len) == 0;
    }
    return n;
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

static libvirt_plugin_counters counters(inst *in)
{
    libvirt_plugin_counters c;
    libvirt_plugin_get_counters(in->state, &c);
    return c;
}

/* ---- catalog and config ----------------------------------------------- */

static void test_catalog(void **st)
{
    (void)st;
    assert_int_equal(P->abi, FR_PLUGIN_ABI);
    assert_string_equal(P->name, "libvirt");
    assert_string_equal(P->ns_prefix, "/intel/libvirt");
    assert_int_equal(P->ncatalog, 25);
    for (size_t i = 0; i < P->ncatalog; i++) {
        const fr_metric_info *mi = &P->catalog[i];
        size_t stars = 0;
        for (const char *c = mi->ns; *c != '\0'; c++) {
            stars += *c == '*';
        }
        assert_int_equal(stars, mi->ndyn);
        assert_string_equal(mi->dyn[0].name, "domain");
        assert_non_null(mi->unit);
        assert_true(strlen(mi->description) > 0);
        assert_int_equal(mi->type, FR_VAL_UINT64);
    }
    /* every namespace of the report's task is offered */
    fr_ns_query *q = query_of(report_metrics);
    for (size_t i = 0; i < fr_ns_query_count(q); i++) {
        bool covered = false;
        for (size_t c = 0; c < P->ncatalog && !covered; c++) {
            covered = fr_ns_query_covers_pattern(q, i, P->catalog[c].ns);
        }
        assert_true(covered);
    }
    fr_ns_query_destroy(q);
}

static void test_config(void **st)
{
    (void)st;
    fr_error err = {0};
    void *cfg = NULL;
    const char *const bad_key[] = {"uri=test:///default", "url=qemu:///system", NULL};
    assert_int_equal(config_load(bad_key, &cfg, &err), FR_EUNKNOWN);
    assert_non_null(strstr(err.message, "url"));
    assert_null(cfg);

    const char *const bad_val[] = {"bulk_stats=sometimes", NULL};
    assert_true(config_load(bad_val, &cfg, &err) < 0);
    assert_null(cfg);

    const char *const none[] = {NULL};
    assert_fr_ok(config_load(none, &cfg, &err));
    fr_plugin_config_free(P, cfg);

    /* the defaults: snap's qemu:///system, no Nova, read-only */
    static const struct {
        const char *key, *def;
    } defaults[] = {{"uri", "qemu:///system"}, {"nova", "false"},      {"readonly", "true"},
                    {"refresh", "60s"},        {"bulk_stats", "auto"}, {"unreported", "zero"}};
    assert_int_equal(P->npolicy, sizeof(defaults) / sizeof(defaults[0]));
    for (size_t i = 0; i < P->npolicy; i++) {
        assert_string_equal(P->policy[i].key, defaults[i].key);
        assert_string_equal(P->policy[i].def, defaults[i].def);
        assert_true(strlen(P->policy[i].help) > 0);
    }
}

static void test_bad_uri(void **st)
{
    (void)st;
    const char *const uris[] = {
        "test:///nonexistent/dir/node.xml",
        "test+unix:///default?socket=/nonexistent/libvirt-sock",
        "",
    };
    for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
        char kv[256];
        snprintf(kv, sizeof(kv), "uri=%s", uris[i]);
        const char *const cfgkv[] = {kv, NULL};
        void *cfg = NULL, *state = NULL;
        fr_error err = {0};
        assert_fr_ok(config_load(cfgkv, &cfg, &err));
        int rv = P->init(&state, cfg, &err);
        assert_true(rv < 0);
        assert_null(state);
        assert_string_equal(err.where, "uri");
        if (uris[i][0] != '\0') {
            assert_non_null(strstr(err.message, uris[i]));
        }
        fr_plugin_config_free(P, cfg);
    }
}

/* ---- collecting ------------------------------------------------------- */

static void check_domain(const fr_batch *b, int i)
{
    char dom[16];
    snprintf(dom, sizeof(dom), "vm-%02d", i);
    assert_true(value_of(b, "/intel/libvirt/%s/cpu/cputime", dom) > 0);
    for (int v = 0; v < fx_vcpus(i); v++) {
        assert_true(value_of(b, "/intel/libvirt/%s/cpu/%d/cputime", dom, v) > 0);
    }
    char pfx[64];
    snprintf(pfx, sizeof(pfx), "/intel/libvirt/%s/cpu/%d/", dom, fx_vcpus(i));
    assert_int_equal(count_prefix(b, pfx), 0);

    assert_int_equal(value_of(b, "/intel/libvirt/%s/memory/mem", dom), fx_mem(i));
    assert_int_equal(value_of(b, "/intel/libvirt/%s/memory/max", dom), 2 * fx_mem(i));
    /* the test driver reports no balloon statistics: nr says so, the rest read 0 */
    assert_int_equal(value_of(b, "/intel/libvirt/%s/memory/nr", dom), 0);
    static const char *const zero[] = {"swap_in", "swap_out",  "major_fault",    "min_fault",
                                       "unused",  "available", "actual_balloon", "rss"};
    for (size_t k = 0; k < sizeof(zero) / sizeof(zero[0]); k++) {
        assert_int_equal(value_of(b, "/intel/libvirt/%s/memory/%s", dom, zero[k]), 0);
    }

    static const char *const disks[] = {"vda", "vdb"};
    for (int d = 0; d < fx_disks(i); d++) {
        uint64_t rdreq = value_of(b, "/intel/libvirt/%s/disk/%s/rdreq", dom, disks[d]);
        uint64_t rdbytes = value_of(b, "/intel/libvirt/%s/disk/%s/rdbytes", dom, disks[d]);
        uint64_t wrreq = value_of(b, "/intel/libvirt/%s/disk/%s/wrreq", dom, disks[d]);
        uint64_t wrbytes = value_of(b, "/intel/libvirt/%s/disk/%s/wrbytes", dom, disks[d]);
        assert_true(rdreq > 0 && rdbytes > 0 && wrreq > 0 && wrbytes > 0);
        /* the test driver's synthetic counters: reads > writes; snap gave rdreq as wrreq */
        assert_true(wrreq != rdreq);
    }
    snprintf(pfx, sizeof(pfx), "/intel/libvirt/%s/disk/hdc/", dom);
    assert_int_equal(count_prefix(b, pfx), 0); /* the cdrom is left out */

    static const char *const netleaf[] = {"rxbytes", "rxpackets", "rxerrs", "rxdrop",
                                          "txbytes", "txpackets", "txerrs", "txdrop"};
    for (int n = 0; n < fx_nics(i); n++) {
        for (size_t k = 0; k < 8; k++) {
            /* the test driver names interfaces testnet<N> */
            (void)value_of(b, "/intel/libvirt/%s/network/testnet%d/%s", dom, n, netleaf[k]);
        }
        assert_true(value_of(b, "/intel/libvirt/%s/network/testnet%d/rxbytes", dom, n) > 0);
    }
    snprintf(pfx, sizeof(pfx), "/intel/libvirt/%s/", dom);
    assert_int_equal(count_prefix(b, pfx), fx_metrics(i));
}

static void test_report_task(void **st)
{
    (void)st;
    char uri[4300];
    snprintf(uri, sizeof(uri), "uri=%s", fixture_uri());
    const char *const kv[] = {uri, NULL};
    inst in = {0};
    inst_open(&in, kv);

    fr_ns_query *q = query_of(report_metrics);
    fr_batch *b = collect_q(&in, q);
    size_t total = 0;
    for (int i = 0; i < NDOMS; i++) {
        check_domain(b, i);
        total += fx_metrics(i);
    }
    assert_int_equal(b->nmetrics, total);
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        assert_int_equal(b->metrics[i].ts, 1700000000000000000);
        assert_int_equal(b->metrics[i].ntags, 0);
    }
    libvirt_plugin_counters c1 = counters(&in);
    assert_int_equal(c1.xml_reads, NDOMS); /* each domain's devices read once */
    assert_int_equal(c1.bulk_groups, 0);   /* the test driver has state.* only */
    fr_batch_destroy(b);

    /* Later ticks read no XML and make only the stats calls. */
    b = collect_q(&in, q);
    assert_int_equal(b->nmetrics, total);
    libvirt_plugin_counters c2 = counters(&in);
    assert_int_equal(c2.xml_reads, NDOMS);
    size_t calls = 1; /* the domain list */
    for (int i = 0; i < NDOMS; i++) {
        calls += 3 + (size_t)fx_disks(i) + (size_t)fx_nics(i); /* info, vcpus, memstats */
    }
    assert_int_equal(c2.calls - c1.calls, calls);
    fr_batch_destroy(b);
    fr_ns_query_destroy(q);
    inst_close(&in);
}

static void test_queries(void **st)
{
    (void)st;
    char uri[4300];
    snprintf(uri, sizeof(uri), "uri=%s", fixture_uri());
    const char *const kv[] = {uri, NULL};
    inst in = {0};
    inst_open(&in, kv);

    const char *const exact[] = {"/intel/libvirt/vm-07/memory/max", NULL};
    fr_batch *b = collect(&in, exact);
    assert_int_equal(b->nmetrics, 1);
    assert_int_equal(value_of(b, "/intel/libvirt/vm-07/memory/max"), 2 * fx_mem(7));
    assert_string_equal(b->metrics[0].unit, "KiB");
    fr_batch_destroy(b);
    /* nothing but the list and one GetInfo, and no XML for it */
    libvirt_plugin_counters c0 = counters(&in);
    assert_int_equal(c0.xml_reads, 0);
    b = collect(&in, exact);
    libvirt_plugin_counters c1 = counters(&in);
    assert_int_equal(c1.calls - c0.calls, 2);
    fr_batch_destroy(b);

    const char *const one_disk[] = {"/intel/libvirt/vm-01/disk/vdb/wrbytes", NULL};
    b = collect(&in, one_disk);
    assert_int_equal(b->nmetrics, 1);
    assert_string_equal(b->metrics[0].unit, "bytes");
    assert_int_equal(counters(&in).xml_reads, 1); /* only vm-01's devices */
    fr_batch_destroy(b);

    const char *const tuple[] = {"/intel/libvirt/(vm-01;vm-02;vm-99)/cpu/cputime", NULL};
    b = collect(&in, tuple);
    assert_int_equal(b->nmetrics, 2);
    assert_non_null(find(b, "/intel/libvirt/vm-01/cpu/cputime"));
    assert_non_null(find(b, "/intel/libvirt/vm-02/cpu/cputime"));
    fr_batch_destroy(b);

    const char *const vcpu1[] = {"/intel/libvirt/*/cpu/1/cputime", NULL};
    b = collect(&in, vcpu1);
    assert_int_equal(b->nmetrics, NDOMS);
    fr_batch_destroy(b);

    const char *const nics[] = {"/intel/libvirt/vm-03/network/*/rxbytes", NULL};
    b = collect(&in, nics);
    assert_int_equal(b->nmetrics, fx_nics(3));
    fr_batch_destroy(b);

    const char *const tail[] = {"/intel/libvirt/*", NULL};
    b = collect(&in, tail);
    size_t total = 0;
    for (int i = 0; i < NDOMS; i++) {
        total += fx_metrics(i);
    }
    assert_int_equal(b->nmetrics, total);
    fr_batch_destroy(b);

    const char *const domtail[] = {"/intel/libvirt/vm-04/*", NULL};
    b = collect(&in, domtail);
    assert_int_equal(b->nmetrics, fx_metrics(4));
    fr_batch_destroy(b);

    const char *const other[] = {"/intel/procfs/*", "/intel/libvirt/nosuchvm/*", NULL};
    b = collect(&in, other);
    assert_int_equal(b->nmetrics, 0);
    fr_batch_destroy(b);
    inst_close(&in);
}

/* A domain defined and started on the plugin's connection while a task
 * runs is there on the next tick; one destroyed is gone; one restarted
 * has its devices read again. */
static void test_domains_come_and_go(void **st)
{
    (void)st;
    char uri[4300];
    snprintf(uri, sizeof(uri), "uri=%s", fixture_uri());
    const char *const kv[] = {uri, "readonly=false", NULL};
    inst in = {0};
    inst_open(&in, kv);
    fr_ns_query *q = query_of(report_metrics);

    fr_batch *b = collect_q(&in, q);
    assert_null(find(b, "/intel/libvirt/vm-new/cpu/cputime"));
    fr_batch_destroy(b);

    virConnectPtr conn = libvirt_plugin_connection(in.state);
    assert_non_null(conn);
    virDomainPtr nd = virDomainDefineXML(
        conn, "<domain type='test'><name>vm-new</name>"
              "<uuid>6f1e0c2a-5b7d-4e8f-9a01-0000000000ff</uuid>"
              "<memory unit='KiB'>262144</memory><vcpu>1</vcpu><os><type>hvm</type></os>"
              "<devices><disk type='file' device='disk'><source file='/x.img'/>"
              "<target dev='sda' bus='scsi'/></disk>"
              "<interface type='network'><source network='default'/></interface>"
              "</devices></domain>");
    assert_non_null(nd);
    assert_int_equal(virDomainCreate(nd), 0);

    b = collect_q(&in, q);
    assert_int_equal(value_of(b, "/intel/libvirt/vm-new/memory/max"), 262144);
    assert_true(value_of(b, "/intel/libvirt/vm-new/cpu/0/cputime") > 0);
    assert_true(value_of(b, "/intel/libvirt/vm-new/disk/sda/rdbytes") > 0);
    (void)value_of(b, "/intel/libvirt/vm-new/network/testnet0/txpackets");
    assert_int_equal(count_prefix(b, "/intel/libvirt/vm-new/"), 1 + 1 + 11 + 4 + 8);
    assert_int_equal(counters(&in).xml_reads, NDOMS + 1); /* only the new one read */
    fr_batch_destroy(b);

    virDomainPtr gone = virDomainLookupByName(conn, "vm-03");
    assert_non_null(gone);
    assert_int_equal(virDomainDestroy(gone), 0);
    b = collect_q(&in, q);
    assert_int_equal(count_prefix(b, "/intel/libvirt/vm-03/"), 0);
    assert_int_equal(count_prefix(b, "/intel/libvirt/vm-04/"), fx_metrics(4));
    fr_batch_destroy(b);

    /* restarted: a new id, the same UUID; its devices are read again */
    assert_int_equal(virDomainCreate(gone), 0);
    virDomainFree(gone);
    b = collect_q(&in, q);
    assert_int_equal(count_prefix(b, "/intel/libvirt/vm-03/"), fx_metrics(3));
    assert_int_equal(counters(&in).xml_reads, NDOMS + 2);
    fr_batch_destroy(b);

    assert_int_equal(virDomainDestroy(nd), 0);
    assert_int_equal(virDomainUndefine(nd), 0);
    virDomainFree(nd);
    b = collect_q(&in, q);
    assert_int_equal(count_prefix(b, "/intel/libvirt/vm-new/"), 0);
    fr_batch_destroy(b);

    fr_ns_query_destroy(q);
    inst_close(&in);
}

static void test_unreported_skip(void **st)
{
    (void)st;
    char uri[4300];
    snprintf(uri, sizeof(uri), "uri=%s", fixture_uri());
    const char *const kv[] = {uri, "unreported=skip", NULL};
    inst in = {0};
    inst_open(&in, kv);
    const char *const mem[] = {"/intel/libvirt/vm-00/memory/*", NULL};
    fr_batch *b = collect(&in, mem);
    /* mem and max from GetInfo, and nr = 0 statistics reported */
    assert_int_equal(b->nmetrics, 3);
    assert_non_null(find(b, "/intel/libvirt/vm-00/memory/mem"));
    assert_non_null(find(b, "/intel/libvirt/vm-00/memory/max"));
    assert_int_equal(value_of(b, "/intel/libvirt/vm-00/memory/nr"), 0);
    fr_batch_destroy(b);
    inst_close(&in);
}

static void test_nova(void **st)
{
    (void)st;
    char uri[4300];
    snprintf(uri, sizeof(uri), "uri=%s", fixture_uri());
    const char *const kv[] = {uri, "nova=true", NULL};
    inst in = {0};
    inst_open(&in, kv);
    const char *const q[] = {"/intel/libvirt/(vm-05;vm-06)/memory/max", NULL};
    fr_batch *b = collect(&in, q);
    assert_int_equal(b->nmetrics, 2);
    const fr_metric *m = find(b, "/intel/libvirt/vm-05/memory/max");
    assert_non_null(m);
    assert_string_equal(tag_of(m, "nova_uuid"), "6f1e0c2a-5b7d-4e8f-9a01-000000000005");
    assert_string_equal(tag_of(m, "nova_name"), "web-5");
    assert_string_equal(tag_of(m, "nova_flavor"), "m1.small");
    assert_string_equal(tag_of(m, "nova_vcpus"), "4");
    assert_string_equal(tag_of(m, "nova_memory_mb"), "2048");
    assert_string_equal(tag_of(m, "nova_disk_gb"), "20");
    assert_string_equal(tag_of(m, "nova_user"), "alice");
    assert_string_equal(tag_of(m, "nova_project"), "demo & test");
    assert_string_equal(tag_of(m, "nova_project_id"), "0b1c2d3e4f5a46b7a8c9d0e1f2a3b4c5");
    assert_string_equal(tag_of(m, "nova_package"), "27.1.0");
    m = find(b, "/intel/libvirt/vm-06/memory/max");
    assert_non_null(m);
    assert_int_equal(m->ntags, 0); /* not a Nova instance */
    fr_batch_destroy(b);
    inst_close(&in);
}

/* ---- the bulk path, with records shaped like QEMU's ---------------------- */

static unsigned fake_answers; /* VIR_DOMAIN_STATS_* the fake driver answers */
static int fake_tick;
static int fake_calls;
static const char *fake_stop; /* a domain to stop once its record is made */

static void add_u64(virTypedParameterPtr *p, int *n, int *max, const char *f, uint64_t v)
{
    assert_int_equal(virTypedParamsAddULLong(p, n, max, f, v), 0);
}

static int fake_all_stats(virConnectPtr conn, unsigned int stats, virDomainStatsRecordPtr **records,
                          unsigned int flags)
{
    (void)flags;
    fake_calls++;
    virDomainPtr *doms = NULL;
    int nd = virConnectListAllDomains(conn, &doms, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    if (nd < 0) {
        return -1;
    }
    virDomainStatsRecordPtr *recs = calloc((size_t)nd + 1, sizeof(*recs));
    assert_non_null(recs);
    for (int i = 0; i < nd; i++) {
        virDomainStatsRecordPtr r = calloc(1, sizeof(*r));
        assert_non_null(r);
        r->dom = doms[i];
        int max = 0;
        uint64_t id = (uint64_t)virDomainGetID(doms[i]);
        uint64_t base = id * 1000 + (uint64_t)fake_tick;
        assert_int_equal(virTypedParamsAddInt(&r->params, &r->nparams, &max, "state.state", 1), 0);
        unsigned ans = stats & fake_answers;
        if (ans & VIR_DOMAIN_STATS_CPU_TOTAL) {
            add_u64(&r->params, &r->nparams, &max, "cpu.time", base * 7);
        }
        if (ans & VIR_DOMAIN_STATS_BALLOON) {
            add_u64(&r->params, &r->nparams, &max, "balloon.current", 400000 + id);
            add_u64(&r->params, &r->nparams, &max, "balloon.maximum", 800000 + id);
            add_u64(&r->params, &r->nparams, &max, "balloon.swap_in", 11);
            add_u64(&r->params, &r->nparams, &max, "balloon.swap_out", 12);
            add_u64(&r->params, &r->nparams, &max, "balloon.major_fault", 13);
            add_u64(&r->params, &r->nparams, &max, "balloon.minor_fault", 14);
            add_u64(&r->params, &r->nparams, &max, "balloon.unused", 15);
            add_u64(&r->params, &r->nparams, &max, "balloon.available", 16);
            add_u64(&r->params, &r->nparams, &max, "balloon.usable", 17);
            add_u64(&r->params, &r->nparams, &max, "balloon.last-update", 18);
            add_u64(&r->params, &r->nparams, &max, "balloon.disk_caches", 19);
            add_u64(&r->params, &r->nparams, &max, "balloon.rss", 20);
        }
        if (ans & VIR_DOMAIN_STATS_VCPU) {
            assert_int_equal(
                virTypedParamsAddUInt(&r->params, &r->nparams, &max, "vcpu.current", 2), 0);
            assert_int_equal(
                virTypedParamsAddUInt(&r->params, &r->nparams, &max, "vcpu.maximum", 2), 0);
            for (int v = 0; v < 2; v++) {
                char f[VIR_TYPED_PARAM_FIELD_LENGTH];
                snprintf(f, sizeof(f), "vcpu.%d.state", v);
                assert_int_equal(virTypedParamsAddInt(&r->params, &r->nparams, &max, f, 1), 0);
                snprintf(f, sizeof(f), "vcpu.%d.time", v);
                add_u64(&r->params, &r->nparams, &max, f, base + (uint64_t)v);
            }
        }
        if (ans & VIR_DOMAIN_STATS_INTERFACE) {
            int nn = fake_tick >= 2 ? 2 : 1; /* a NIC hot-plugged on tick 2 */
            assert_int_equal(
                virTypedParamsAddUInt(&r->params, &r->nparams, &max, "net.count", (unsigned)nn), 0);
            static const char *const nf[] = {"rx.bytes", "rx.pkts", "rx.errs", "rx.drop",
                                             "tx.bytes", "tx.pkts", "tx.errs", "tx.drop"};
            for (int k = 0; k < nn; k++) {
                char f[VIR_TYPED_PARAM_FIELD_LENGTH], v[32];
                snprintf(f, sizeof(f), "net.%d.name", k);
                snprintf(v, sizeof(v), "vnet%d", (int)id * 10 + k);
                assert_int_equal(virTypedParamsAddString(&r->params, &r->nparams, &max, f, v), 0);
                for (size_t j = 0; j < 8; j++) {
                    snprintf(f, sizeof(f), "net.%d.%s", k, nf[j]);
                    add_u64(&r->params, &r->nparams, &max, f, 100 * (uint64_t)j + base);
                }
            }
        }
        if (ans & VIR_DOMAIN_STATS_BLOCK) {
            assert_int_equal(virTypedParamsAddUInt(&r->params, &r->nparams, &max, "block.count", 2),
                             0);
            assert_int_equal(
                virTypedParamsAddString(&r->params, &r->nparams, &max, "block.0.name", "vda"), 0);
            assert_int_equal(virTypedParamsAddString(&r->params, &r->nparams, &max, "block.0.path",
                                                     "/images/x.qcow2"),
                             0);
            add_u64(&r->params, &r->nparams, &max, "block.0.rd.reqs", base + 1);
            add_u64(&r->params, &r->nparams, &max, "block.0.rd.bytes", base + 2);
            add_u64(&r->params, &r->nparams, &max, "block.0.rd.times", 99);
            add_u64(&r->params, &r->nparams, &max, "block.0.wr.reqs", base + 3);
            add_u64(&r->params, &r->nparams, &max, "block.0.wr.bytes", base + 4);
            add_u64(&r->params, &r->nparams, &max, "block.0.allocation", 5);
            /* an empty cdrom: named, no counters */
            assert_int_equal(
                virTypedParamsAddString(&r->params, &r->nparams, &max, "block.1.name", "hdc"), 0);
        }
        recs[i] = r;
    }
    free(doms);
    if (fake_stop != NULL) {
        virDomainPtr d = virDomainLookupByName(conn, fake_stop);
        assert_non_null(d);
        assert_int_equal(virDomainDestroy(d), 0);
        virDomainFree(d);
        fake_stop = NULL;
    }
    *records = recs;
    return nd;
}

static void test_bulk_qemu_shaped(void **st)
{
    (void)st;
    char uri[4300];
    snprintf(uri, sizeof(uri), "uri=%s", fixture_uri());
    const char *const kv[] = {uri, NULL};
    inst in = {0};
    inst_open(&in, kv);
    fake_answers = VIR_DOMAIN_STATS_CPU_TOTAL | VIR_DOMAIN_STATS_BALLOON | VIR_DOMAIN_STATS_VCPU |
                   VIR_DOMAIN_STATS_INTERFACE | VIR_DOMAIN_STATS_BLOCK;
    fake_tick = 1;
    fake_calls = 0;
    libvirt_plugin_set_stats_fn(in.state, fake_all_stats);
    fr_ns_query *q = query_of(report_metrics);

    libvirt_plugin_counters c0 = counters(&in);
    fr_batch *b = collect_q(&in, q);
    libvirt_plugin_counters c1 = counters(&in);
    assert_int_equal(c1.bulk_groups, 5);
    assert_int_equal(c1.calls - c0.calls, 1); /* one call for everything */
    assert_int_equal(c1.xml_reads, 0);        /* devices named by the records */
    /* per domain: cputime, 2 vCPUs, 11 memory, 1 disk x 4 (the cdrom left out), 1 NIC x 8 */
    assert_int_equal(b->nmetrics, NDOMS * (1 + 2 + 11 + 4 + 8));
    uint64_t id = 8; /* vm-07 is the eighth domain started */
    uint64_t base = id * 1000 + 1;
    assert_int_equal(value_of(b, "/intel/libvirt/vm-07/cpu/cputime"), base * 7);
    assert_int_equal(value_of(b, "/intel/libvirt/vm-07/cpu/1/cputime"), base + 1);
    assert_int_equal(value_of(b, "/intel/libvirt/vm-07/memory/mem"), 400000 + id);
    assert_int_equal(value_of(b, "/intel/libvirt/vm-07/memory/actual_balloon"), 400000 + id);
    assert_int_equal(value_of(b, "/intel/libvirt/vm-07/memory/max"), 800000 + id);
    assert_int_equal(value_of(b, "/intel/libvirt/vm-07/memory/min_fault"), 14);
    assert_int_equal(value_of(b, "/intel/libvirt/vm-07/memory/rss"), 20);
    assert_int_equal(value_of(b, "/intel/libvirt/vm-07/memory/nr"), 11);
    assert_int_equal(value_of(b, "/intel/libvirt/vm-07/disk/vda/rdreq"), base + 1);
    assert_int_equal(value_of(b, "/intel/libvirt/vm-07/disk/vda/wrreq"), base + 3);
    assert_int_equal(value_of(b, "/intel/libvirt/vm-07/disk/vda/wrbytes"), base + 4);
    assert_int_equal(count_prefix(b, "/intel/libvirt/vm-07/disk/hdc/"), 0);
    assert_int_equal(value_of(b, "/intel/libvirt/vm-07/network/vnet80/txdrop"), 700 + base);
    fr_batch_destroy(b);

    /* a NIC appears in the records: it is there on the same tick */
    fake_tick = 2;
    b = collect_q(&in, q);
    assert_int_equal(b->nmetrics, NDOMS * (1 + 2 + 11 + 4 + 8 + 8));
    assert_int_equal(value_of(b, "/intel/libvirt/vm-07/network/vnet81/rxbytes"), 8002);
    assert_int_equal(counters(&in).xml_reads, 0);
    fr_batch_destroy(b);

    /* a driver that answers only some groups: the rest per domain */
    fake_answers = VIR_DOMAIN_STATS_CPU_TOTAL | VIR_DOMAIN_STATS_BLOCK;
    libvirt_plugin_set_stats_fn(in.state, fake_all_stats);
    b = collect_q(&in, q);
    libvirt_plugin_counters c2 = counters(&in);
    assert_int_equal(c2.bulk_groups, 2);
    assert_int_equal(value_of(b, "/intel/libvirt/vm-07/cpu/cputime"), (id * 1000 + 2) * 7);
    assert_int_equal(value_of(b, "/intel/libvirt/vm-07/memory/mem"), fx_mem(7));
    assert_int_equal(value_of(b, "/intel/libvirt/vm-07/disk/vda/rdreq"), id * 1000 + 3);
    assert_true(value_of(b, "/intel/libvirt/vm-07/network/testnet1/rxbytes") > 0);
    assert_true(value_of(b, "/intel/libvirt/vm-07/cpu/2/cputime") > 0);
    /* disks from the records (one usable), NICs from the XML */
    size_t total = 0;
    for (int i = 0; i < NDOMS; i++) {
        total += 1 + (size_t)fx_vcpus(i) + 11 + 4 + 8 * (size_t)fx_nics(i);
    }
    assert_int_equal(b->nmetrics, total);
    fr_batch_destroy(b);

    /* a driver without the call: everything per domain */
    fake_answers = 0;
    libvirt_plugin_set_stats_fn(in.state, fake_all_stats);
    fake_calls = 0;
    b = collect_q(&in, q);
    assert_int_equal(counters(&in).bulk_groups, 0);
    check_domain(b, 7);
    fr_batch_destroy(b);
    b = collect_q(&in, q);
    assert_int_equal(fake_calls, 1); /* learnt once, not asked again */
    check_domain(b, 8);
    fr_batch_destroy(b);

    fr_ns_query_destroy(q);
    inst_close(&in);
}

/* A domain that stops between the listing and its per-domain calls is
 * left out of that tick quietly, without more calls to it; the tick
 * succeeds. */
static void test_domain_stops_mid_tick(void **st)
{
    (void)st;
    char uri[4300];
    snprintf(uri, sizeof(uri), "uri=%s", fixture_uri());
    const char *const kv[] = {uri, "readonly=false", NULL};
    inst in = {0};
    inst_open(&in, kv);
    fake_answers = VIR_DOMAIN_STATS_CPU_TOTAL; /* the rest per domain */
    fake_tick = 1;
    libvirt_plugin_set_stats_fn(in.state, fake_all_stats);
    fr_ns_query *q = query_of(report_metrics);
    fr_batch *b = collect_q(&in, q);
    assert_int_equal(count_prefix(b, "/intel/libvirt/vm-10/"), fx_metrics(10));
    fr_batch_destroy(b);
    libvirt_plugin_counters c0 = counters(&in);
    b = collect_q(&in, q);
    libvirt_plugin_counters c1 = counters(&in);
    fr_batch_destroy(b);

    fake_stop = "vm-10";
    b = collect_q(&in, q);
    libvirt_plugin_counters c2 = counters(&in);
    assert_int_equal(count_prefix(b, "/intel/libvirt/vm-10/"), 0);
    assert_int_equal(count_prefix(b, "/intel/libvirt/vm-11/"), fx_metrics(11));
    /* vm-10: GetInfo answers for a stopped domain, GetVcpus does not;
     * its memory, disk and interface calls are not made */
    assert_int_equal((c1.calls - c0.calls) - (c2.calls - c1.calls),
                     1 + (uint64_t)fx_disks(10) + (uint64_t)fx_nics(10));
    fr_batch_destroy(b);

    b = collect_q(&in, q);
    assert_int_equal(count_prefix(b, "/intel/libvirt/vm-10/"), 0);
    fr_batch_destroy(b);
    fr_ns_query_destroy(q);
    inst_close(&in);
}

/* ---- the XML scanner -------------------------------------------------- */

static const char nova_doc[] =
    "<?xml version='1.0'?>\n"
    "<!DOCTYPE domain [ <!ENTITY x 'y'> ]>\n"
    "<domain type='kvm' id='3'>\n"
    "  <name>instance-0000002a</name>\n"
    "  <uuid> 0b7c1e3a-1111-2222-3333-444455556666 </uuid>\n"
    "  <metadata>\n"
    "    <other:thing "
    "xmlns:other='http://example.com/x'><other:name>no</other:name></other:thing>\n"
    "    <n:instance xmlns:n=\"http://openstack.org/xmlns/libvirt/nova/1.0\">\n"
    "      <!-- a comment with <tags> & such -->\n"
    "      <n:package version=\"27.1.0\"/>\n"
    "      <n:name>web &lt;1&gt; &#233;&#x4E2D;</n:name>\n"
    "      <n:flavor name='m1.&apos;big&apos;'><n:memory>4096</n:memory><n:disk>40</n:disk>"
    "<n:swap>0</n:swap><n:ephemeral>0</n:ephemeral><n:vcpus>4</n:vcpus></n:flavor>\n"
    "      <n:owner><n:user uuid='u-1'><![CDATA[bob & <co>]]></n:user>"
    "<n:project uuid='p-1'>proj</n:project></n:owner>\n"
    "    </n:instance>\n"
    "  </metadata>\n"
    "  <devices>\n"
    "    <disk type='file' device='disk'><driver name='qemu'/><target dev='vda' "
    "bus='virtio'/></disk>\n"
    "    <disk type='file' device=\"cdrom\"><target dev='hda' bus='ide'/></disk>\n"
    "    <disk type='block'><target dev=\"sd&#97;\"/></disk>\n"
    "    <interface type='bridge'><target dev='tap0'/><model type='virtio'/></interface>\n"
    "    <interface type='user'><mac address='52:54:00:00:00:01'/></interface>\n"
    "    <controller type='usb'><target dev='nope'/></controller>\n"
    "  </devices>\n"
    "  <seclabel><target dev='neither'/></seclabel>\n"
    "</domain>\n";

static const char *nova_get(const domxml *x, const char *key)
{
    for (size_t i = 0; i < x->nnova; i++) {
        if (strcmp(x->nova[i].key, key) == 0) {
            return x->nova[i].value;
        }
    }
    return NULL;
}

static void test_domxml(void **st)
{
    (void)st;
    domxml x = {0};
    assert_fr_ok(domxml_parse(nova_doc, strlen(nova_doc), true, &x));
    assert_int_equal(x.ndisks, 2);
    assert_string_equal(x.disks[0], "vda");
    assert_string_equal(x.disks[1], "sda");
    assert_int_equal(x.nifaces, 1);
    assert_string_equal(x.ifaces[0], "tap0");
    assert_string_equal(nova_get(&x, "nova_uuid"), "0b7c1e3a-1111-2222-3333-444455556666");
    assert_string_equal(nova_get(&x, "nova_name"), "web <1> \xC3\xA9\xE4\xB8\xAD");
    assert_string_equal(nova_get(&x, "nova_flavor"), "m1.'big'");
    assert_string_equal(nova_get(&x, "nova_memory_mb"), "4096");
    assert_string_equal(nova_get(&x, "nova_disk_gb"), "40");
    assert_string_equal(nova_get(&x, "nova_vcpus"), "4");
    assert_string_equal(nova_get(&x, "nova_user"), "bob & <co>");
    assert_string_equal(nova_get(&x, "nova_user_id"), "u-1");
    assert_string_equal(nova_get(&x, "nova_project"), "proj");
    assert_string_equal(nova_get(&x, "nova_project_id"), "p-1");
    assert_string_equal(nova_get(&x, "nova_package"), "27.1.0");
    domxml_free(&x);

    /* no Nova tags unless asked, and none for a domain without them */
    assert_fr_ok(domxml_parse(nova_doc, strlen(nova_doc), false, &x));
    assert_int_equal(x.nnova, 0);
    assert_int_equal(x.ndisks, 2);
    domxml_free(&x);
    static const char plain[] = "<domain><uuid>u</uuid><devices/></domain>";
    assert_fr_ok(domxml_parse(plain, strlen(plain), true, &x));
    assert_int_equal(x.nnova, 0);
    assert_int_equal(x.ndisks + x.nifaces, 0);
    domxml_free(&x);

    /* a default namespace works too */
    static const char dflt[] =
        "<domain><metadata><instance xmlns='http://openstack.org/xmlns/libvirt/nova/1.0'>"
        "<name>d</name></instance></metadata></domain>";
    assert_fr_ok(domxml_parse(dflt, strlen(dflt), true, &x));
    assert_string_equal(nova_get(&x, "nova_name"), "d");
    domxml_free(&x);

    static const char *const bad[] = {
        "",
        "<node/>",
        "<domain>",
        "<domain></devices>",
        "<domain><devices></domain>",
        "<domain a='1></domain>",
        "<domain a=1></domain>",
        "<domain/><domain/>",
        "<domain><!-- </domain>",
        "<domain><![CDATA[ </domain>",
        "<domain><?pi </domain>",
        "<domain></ domain>",
        "<domain>< devices/></domain>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(domxml_parse(bad[i], strlen(bad[i]), true, &x), FR_EINVAL);
        assert_int_equal(x.ndisks + x.nifaces + x.nnova, 0);
    }

    /* every truncation of a real document: an error, never a read past the end */
    size_t len = strlen(nova_doc);
    for (size_t n = 0; n < len; n++) {
        char *copy = malloc(n != 0 ? n : 1); /* exact size: ASan sees any overread */
        assert_non_null(copy);
        memcpy(copy, nova_doc, n);
        int rv = domxml_parse(copy, n, true, &x);
        assert_true(rv == FR_EINVAL || (rv == 0 && n >= len - 1));
        domxml_free(&x);
        free(copy);
    }
}

int main(void)
{
    fr_log_set_level(FR_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catalog),          cmocka_unit_test(test_domxml),
        cmocka_unit_test(test_bad_uri),          cmocka_unit_test(test_report_task),
        cmocka_unit_test(test_queries),          cmocka_unit_test(test_domains_come_and_go),
        cmocka_unit_test(test_unreported_skip),  cmocka_unit_test(test_nova),
        cmocka_unit_test(test_bulk_qemu_shaped), cmocka_unit_test(test_domain_stops_mid_tick),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
