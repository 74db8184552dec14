/* The libvirt collector plugin: snap's /intel/libvirt/<domain>/... metrics
 * for every running domain of one libvirt connection.
 *
 * Per tick it makes one call that lists the running domains, plus only the
 * calls the task's query needs:
 *  - virConnectGetAllDomainStats for every stats group the driver answers
 *    in bulk (QEMU answers all five in one call, with device names), and
 *  - per-domain calls (virDomainGetInfo, GetVcpus, MemoryStats, BlockStats,
 *    InterfaceStats) for the groups it does not (the test driver answers
 *    state.* only). Which groups come in bulk is learnt on the first tick
 *    that has domains, per connection.
 * A domain's XML is read only when the per-domain calls need its disk and
 * interface names, or Nova tags are wanted: when the domain first appears,
 * when it restarts (its id changes), when a device call says a device is
 * gone, and when the cached copy is older than `refresh` (one domain per
 * tick). Domains are cached by UUID; what the query wants of each domain,
 * vCPU and device is worked out once per query, not per metric.
 *
 * No event loop: virEventRegisterDefaultImpl is process-wide and cannot be
 * undone, and a plugin should not own a thread for it. The domain list
 * each tick catches starts and stops; QEMU's bulk stats name the devices
 * every tick, so hot-plugged devices show up on the next tick there; for
 * drivers without bulk stats a hot-plugged device shows up within
 * `refresh`.
 *
 * Differences from snap's plugin, on purpose:
 *  - wrreq is the write request count (snap reported rd_req for it);
 *  - memory/nr is the number of memory statistics the hypervisor reported
 *    (snap read tag 8, which was libvirt's VIR_DOMAIN_MEMORY_STAT_NR
 *    end-of-list marker when it was written, so always 0);
 *  - mem and max are the current and maximum memory (KiB) from
 *    virDomainGetInfo, or balloon.current and balloon.maximum in bulk;
 *  - a statistic the hypervisor does not report is 0, as in snap, unless
 *    `unreported: skip`; a device with no statistic at all is left out. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "domxml.h"
#include "fresco/log.h"
#include "fresco/plugin.h"
#include "libvirt_plugin.h"

#define LV_MOD      "libvirt"
#define LV_PREFIX   "/intel/libvirt/"
#define LV_NAME_MAX 512  /* domain or device names longer than this are left out */
#define LV_NS_MAX   2048 /* > prefix + two names + the longest suffix */
#define LV_DEV_MAX  4096 /* devices or vCPUs taken from one stats record */

/* ---- config ----------------------------------------------------------- */

typedef struct lv_config {
    char *uri;
    bool nova;
    bool readonly;
    int64_t refresh_ms;
    char *bulk;
    char *unreported;
} lv_config;

static const char *const lv_bulk_choices[] = {"auto", "off", NULL};
static const char *const lv_unreported_choices[] = {"zero", "skip", NULL};

static const fr_cfg_field lv_policy[] = {
    {"uri", FR_CFG_STRING, "qemu:///system", offsetof(lv_config, uri),
     "libvirt connection URI; test:///abs/path/node.xml for the test driver", 0, 0, NULL},
    {"nova", FR_CFG_BOOL, "false", offsetof(lv_config, nova),
     "tag metrics of OpenStack instances with the Nova metadata in their domain XML "
     "(nova_uuid, nova_name, nova_flavor, nova_project, ...)",
     0, 0, NULL},
    {"readonly", FR_CFG_BOOL, "true", offsetof(lv_config, readonly),
     "open the connection read-only: the plugin only reads", 0, 0, NULL},
    {"refresh", FR_CFG_DURATION, "60s", offsetof(lv_config, refresh_ms),
     "re-read a domain's device list when older than this, one domain per tick (only "
     "where the driver does not name devices in bulk stats); 0 = only when it starts",
     0, 86400000, NULL},
    {"bulk_stats", FR_CFG_ENUM, "auto", offsetof(lv_config, bulk),
     "virConnectGetAllDomainStats: auto = for the stats groups the driver answers, off = "
     "per-domain calls only",
     0, 0, lv_bulk_choices},
    {"unreported", FR_CFG_ENUM, "zero", offsetof(lv_config, unreported),
     "a memory, disk or network statistic the hypervisor does not report: zero (as snap) "
     "or skip",
     0, 0, lv_unreported_choices},
};

/* ---- catalog ---------------------------------------------------------- */

enum lv_mem {
    MEM_MEM,
    MEM_MAX,
    MEM_SWAP_IN,
    MEM_SWAP_OUT,
    MEM_MAJOR_FAULT,
    MEM_MIN_FAULT,
    MEM_UNUSED,
    MEM_AVAILABLE,
    MEM_ACTUAL_BALLOON,
    MEM_RSS,
    MEM_NR,
    MEM_N,
};

/* Namespace suffixes of the memory leaves, in lv_mem order. */
static const char *const lv_mem_leaves[MEM_N] = {
    "memory/mem",      "memory/max",         "memory/swap_in",
    "memory/swap_out", "memory/major_fault", "memory/min_fault",
    "memory/unused",   "memory/available",   "memory/actual_balloon",
    "memory/rss",      "memory/nr",
};

/* Memory leaves that come from GetInfo rather than MemoryStats. */
#define MEM_INFO_MASK ((1u << MEM_MEM) | (1u << MEM_MAX))

enum lv_disk { DISK_RDREQ, DISK_RDBYTES, DISK_WRREQ, DISK_WRBYTES, DISK_N };
static const char *const lv_disk_names[DISK_N] = {"rdreq", "rdbytes", "wrreq", "wrbytes"};

enum lv_net {
    NET_RXBYTES,
    NET_RXPACKETS,
    NET_RXERRS,
    NET_RXDROP,
    NET_TXBYTES,
    NET_TXPACKETS,
    NET_TXERRS,
    NET_TXDROP,
    NET_N,
};
static const char *const lv_net_names[NET_N] = {"rxbytes", "rxpackets", "rxerrs", "rxdrop",
                                                "txbytes", "txpackets", "txerrs", "txdrop"};

static const fr_dyn_info lv_dyn_domain[] = {{"domain", "libvirt domain name"}};
static const fr_dyn_info lv_dyn_vcpu[] = {{"domain", "libvirt domain name"},
                                          {"vcpu", "virtual CPU number, from 0"}};
static const fr_dyn_info lv_dyn_disk[] = {{"domain", "libvirt domain name"},
                                          {"device", "disk target device (vda, sdb, ...)"}};
static const fr_dyn_info lv_dyn_net[] = {
    {"domain", "libvirt domain name"},
    {"interface", "network interface target device (vnet0, ...)"}};

#define LV_CAT(ns, unit, desc, dyn)                                                                \
    {                                                                                              \
        ns, FR_VAL_UINT64, unit, desc, dyn, sizeof(dyn) / sizeof(dyn[0])                           \
    }

/* Order matters: lv_query_update maps entries to stats groups by index. */
static const fr_metric_info lv_catalog[] = {
    LV_CAT("/intel/libvirt/*/cpu/cputime", "ns", "CPU time used by the domain, all vCPUs",
           lv_dyn_domain),
    LV_CAT("/intel/libvirt/*/cpu/*/cputime", "ns", "CPU time used by one vCPU", lv_dyn_vcpu),
    LV_CAT("/intel/libvirt/*/memory/mem", "KiB", "current memory of the domain (balloon size)",
           lv_dyn_domain),
    LV_CAT("/intel/libvirt/*/memory/max", "KiB", "maximum memory of the domain", lv_dyn_domain),
    LV_CAT("/intel/libvirt/*/memory/swap_in", "KiB", "data read from swap space by the guest",
           lv_dyn_domain),
    LV_CAT("/intel/libvirt/*/memory/swap_out", "KiB", "data written to swap space by the guest",
           lv_dyn_domain),
    LV_CAT("/intel/libvirt/*/memory/major_fault", "", "page faults that needed disk I/O",
           lv_dyn_domain),
    LV_CAT("/intel/libvirt/*/memory/min_fault", "", "page faults served without disk I/O",
           lv_dyn_domain),
    LV_CAT("/intel/libvirt/*/memory/unused", "KiB", "memory the guest leaves unused",
           lv_dyn_domain),
    LV_CAT("/intel/libvirt/*/memory/available", "KiB", "memory usable by the guest OS",
           lv_dyn_domain),
    LV_CAT("/intel/libvirt/*/memory/actual_balloon", "KiB", "current balloon size", lv_dyn_domain),
    LV_CAT("/intel/libvirt/*/memory/rss", "KiB", "resident set size of the domain's process",
           lv_dyn_domain),
    LV_CAT("/intel/libvirt/*/memory/nr", "", "number of memory statistics the hypervisor reported",
           lv_dyn_domain),
    LV_CAT("/intel/libvirt/*/disk/*/rdreq", "", "read requests", lv_dyn_disk),
    LV_CAT("/intel/libvirt/*/disk/*/rdbytes", "bytes", "bytes read", lv_dyn_disk),
    LV_CAT("/intel/libvirt/*/disk/*/wrreq", "", "write requests", lv_dyn_disk),
    LV_CAT("/intel/libvirt/*/disk/*/wrbytes", "bytes", "bytes written", lv_dyn_disk),
    LV_CAT("/intel/libvirt/*/network/*/rxbytes", "bytes", "bytes received", lv_dyn_net),
    LV_CAT("/intel/libvirt/*/network/*/rxpackets", "", "packets received", lv_dyn_net),
    LV_CAT("/intel/libvirt/*/network/*/rxerrs", "", "receive errors", lv_dyn_net),
    LV_CAT("/intel/libvirt/*/network/*/rxdrop", "", "received packets dropped", lv_dyn_net),
    LV_CAT("/intel/libvirt/*/network/*/txbytes", "bytes", "bytes transmitted", lv_dyn_net),
    LV_CAT("/intel/libvirt/*/network/*/txpackets", "", "packets transmitted", lv_dyn_net),
    LV_CAT("/intel/libvirt/*/network/*/txerrs", "", "transmit errors", lv_dyn_net),
    LV_CAT("/intel/libvirt/*/network/*/txdrop", "", "transmitted packets dropped", lv_dyn_net),
};

#define LV_CAT_MEM  2
#define LV_CAT_DISK (LV_CAT_MEM + MEM_N)
#define LV_CAT_NET  (LV_CAT_DISK + DISK_N)
#define LV_NCATALOG (sizeof(lv_catalog) / sizeof(lv_catalog[0]))
_Static_assert(LV_CAT_NET + NET_N == LV_NCATALOG, "catalog order");

/* ---- stats groups ----------------------------------------------------- */

/* What a tick may read for a domain. MEMINFO (mem, max) comes from
 * GetInfo per domain but from the balloon group in bulk. */
enum lv_group {
    G_CPU = 1u << 0,
    G_VCPU = 1u << 1,
    G_MEMINFO = 1u << 2,
    G_BALLOON = 1u << 3,
    G_BLOCK = 1u << 4,
    G_NET = 1u << 5,
};

/* The five bulk stats groups, and the lv_groups each serves. */
enum { B_CPU, B_VCPU, B_BALLOON, B_BLOCK, B_NET, B_N };
static const struct {
    unsigned vir;
    unsigned groups;
} lv_bulk_map[B_N] = {
    {VIR_DOMAIN_STATS_CPU_TOTAL, G_CPU},
    {VIR_DOMAIN_STATS_VCPU, G_VCPU},
    {VIR_DOMAIN_STATS_BALLOON, G_MEMINFO | G_BALLOON},
    {VIR_DOMAIN_STATS_BLOCK, G_BLOCK},
    {VIR_DOMAIN_STATS_INTERFACE, G_NET},
};

typedef enum lv_support { SUP_UNKNOWN, SUP_YES, SUP_NO } lv_support;

/* ---- the domain cache ------------------------------------------------- */

typedef struct lv_dev {
    char *name;
    char *prefix; /* "/intel/libvirt/<domain>/disk/<name>/" */
    size_t prefix_len;
    uint16_t want; /* bit per leaf (lv_disk or lv_net) */
} lv_dev;

typedef struct lv_devlist {
    lv_dev *v;
    size_t n;
} lv_devlist;

typedef struct lv_dom {
    unsigned char uuid[VIR_UUID_BUFLEN];
    int id;
    virDomainPtr dom; /* a reference we hold */
    char *name;       /* the domain name as a namespace element (for logs too) */
    char *prefix;     /* "/intel/libvirt/<domain>/" */
    size_t prefix_len;
    bool usable; /* the name fits a namespace */
    uint64_t seen_tick;
    /* what the query wants, for query generation want_gen */
    uint64_t want_gen;
    bool want_cpu;
    uint16_t want_mem;
    bool want_vcpu_any;
    uint16_t want_disk_any, want_net_any;
    uint8_t *want_vcpu; /* per vCPU number: 0 unknown, 1 no, 2 yes */
    size_t nwant_vcpu;
    /* devices: from the XML (per-domain calls) or from bulk records */
    lv_devlist disks, nets;
    domxml xml; /* device names and Nova tags, when read */
    bool xml_known, xml_stale;
    int64_t xml_read_ns;
    int last_err; /* libvirt error code last logged for this domain */
} lv_dom;

/* One tick's readings for one domain. Value slots are reused across ticks. */
typedef struct lv_devstat {
    const char *name; /* borrowed from a stats record or an lv_dev */
    uint64_t v[NET_N];
    uint16_t has;
} lv_devstat;

typedef struct lv_vcpustat {
    uint64_t time;
    bool has;
} lv_vcpustat;

typedef struct lv_sample {
    bool has_cpu;
    uint64_t cpu;
    uint64_t mem[MEM_N];
    uint16_t mem_has;
    lv_vcpustat *vcpu;
    size_t nvcpu, cap_vcpu;
    lv_devstat *disk, *net;
    size_t ndisk, nnet, cap_disk, cap_net;
    virVcpuInfo *vinfo;
    size_t cap_vinfo;
} lv_sample;

typedef struct lv_state {
    const lv_config *cfg;
    bool unreported_zero;
    bool bulk_off;
    virConnectPtr conn;
    libvirt_plugin_stats_fn stats_fn;
    lv_support bulk[B_N];
    /* the query the wants were computed for */
    const fr_ns_query *q;
    size_t q_count;
    const char *q_first, *q_last;
    uint64_t q_gen;
    unsigned q_groups; /* lv_groups some domain could want */
    /* domains, in the order the driver listed them last */
    lv_dom **doms;
    size_t ndoms, cap_doms;
    int *ids;
    size_t cap_ids;
    const char **names; /* device names of one record */
    size_t cap_names;
    uint64_t tick;
    lv_sample sample;
    char ns[LV_NS_MAX];
    /* the error of the last failed call: every libvirt call, even
     * virConnectIsAlive, clears the thread's last error */
    int err_code;
    char err_msg[512];
    libvirt_plugin_counters counters;
} lv_state;

/* ---- libvirt plumbing ------------------------------------------------- */

static pthread_once_t lv_once = PTHREAD_ONCE_INIT;
static int lv_once_rv;

/* libvirt prints every error to stderr unless told otherwise; the plugin
 * reads them with virGetLastError and logs them itself. This is
 * process-wide, which is right for a collector that is the only libvirt
 * user in its process. */
static void lv_error_quiet(void *opaque, virErrorPtr e)
{
    (void)opaque;
    (void)e;
}

static void lv_global_init(void)
{
    lv_once_rv = virInitialize();
    virSetErrorFunc(NULL, lv_error_quiet);
}

static const char *lv_errmsg(void)
{
    virErrorPtr e = virGetLastError();
    return e != NULL && e->message != NULL ? e->message : "unknown libvirt error";
}

static int64_t lv_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void dev_list_free(lv_devlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].name);
        free(l->v[i].prefix);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void dom_free(lv_dom *d)
{
    if (d == NULL) {
        return;
    }
    if (d->dom != NULL) {
        virDomainFree(d->dom);
    }
    dev_list_free(&d->disks);
    dev_list_free(&d->nets);
    domxml_free(&d->xml);
    free(d->want_vcpu);
    free(d->name);
    free(d->prefix);
    free(d);
}

static void cache_clear(lv_state *s)
{
    for (size_t i = 0; i < s->ndoms; i++) {
        dom_free(s->doms[i]);
    }
    s->ndoms = 0;
}

/* Forgets which stats groups the driver answers in bulk: learnt again. */
static void bulk_reset(lv_state *s)
{
    s->counters.bulk_groups = 0;
    for (int b = 0; b < B_N; b++) {
        s->bulk[b] = s->bulk_off ? SUP_NO : SUP_UNKNOWN;
    }
}

static void lv_disconnect(lv_state *s)
{
    cache_clear(s);
    if (s->conn != NULL) {
        virConnectClose(s->conn);
        s->conn = NULL;
    }
    bulk_reset(s);
}

static int lv_connect(lv_state *s, fr_error *err)
{
    if (lv_once_rv != 0) {
        return fr_error_set(err, FR_EIO, "uri", "libvirt failed to initialise: %s", lv_errmsg());
    }
    s->conn = s->cfg->readonly ? virConnectOpenReadOnly(s->cfg->uri) : virConnectOpen(s->cfg->uri);
    if (s->conn == NULL) {
        return fr_error_set(err, FR_EIO, "uri", "cannot connect to libvirt at '%s': %s",
                            s->cfg->uri, lv_errmsg());
    }
    return 0;
}

/* After a failed call: keeps its error in s->err_code and s->err_msg,
 * then asks whether the connection itself is gone. Then it is closed and
 * the caller fails the tick; the next tick reconnects. */
static bool lv_conn_lost(lv_state *s, const char *call, fr_error *err)
{
    virErrorPtr e = virGetLastError();
    s->err_code = e != NULL ? e->code : VIR_ERR_INTERNAL_ERROR;
    snprintf(s->err_msg, sizeof(s->err_msg), "%s",
             e != NULL && e->message != NULL ? e->message : "unknown libvirt error");
    if (virConnectIsAlive(s->conn) == 1) {
        return false;
    }
    fr_error_set(err, FR_EIO, "uri", "lost the libvirt connection to '%s' (%s: %s)", s->cfg->uri,
                 call, s->err_msg);
    fr_warn(LV_MOD, "lost the connection to '%s' (%s: %s); reconnecting on the next tick",
            s->cfg->uri, call, s->err_msg);
    lv_disconnect(s);
    return true;
}

/* ---- query -> wants --------------------------------------------------- */

/* Recomputes what is wanted when the task's query is not the one seen
 * last. A query does not change under an instance in practice; the check
 * is a few pointer compares. */
static void lv_query_update(lv_state *s, const fr_ns_query *q)
{
    size_t n = fr_ns_query_count(q);
    const char *first = n > 0 ? fr_ns_query_get(q, 0) : NULL;
    const char *last = n > 0 ? fr_ns_query_get(q, n - 1) : NULL;
    if (s->q_gen != 0 && q == s->q && n == s->q_count && first == s->q_first && last == s->q_last) {
        return;
    }
    s->q = q;
    s->q_count = n;
    s->q_first = first;
    s->q_last = last;
    s->q_gen++;
    s->q_groups = 0;
    for (size_t c = 0; c < LV_NCATALOG; c++) {
        bool covered = false;
        for (size_t i = 0; i < n && !covered; i++) {
            covered = fr_ns_query_covers_pattern(q, i, lv_catalog[c].ns);
        }
        if (!covered) {
            continue;
        }
        if (c == 0) {
            s->q_groups |= G_CPU;
        } else if (c == 1) {
            s->q_groups |= G_VCPU;
        } else if (c < LV_CAT_DISK) {
            s->q_groups |= (MEM_INFO_MASK & (1u << (c - LV_CAT_MEM))) ? G_MEMINFO : G_BALLOON;
        } else if (c < LV_CAT_NET) {
            s->q_groups |= G_BLOCK;
        } else {
            s->q_groups |= G_NET;
        }
    }
}

static const char *ns_build(lv_state *s, const char *prefix, size_t plen, const char *suffix)
{
    size_t slen = strlen(suffix);
    if (plen + slen + 1 > sizeof(s->ns)) {
        return NULL; /* cannot happen: names are capped at LV_NAME_MAX */
    }
    memcpy(s->ns, prefix, plen);
    memcpy(s->ns + plen, suffix, slen + 1);
    return s->ns;
}

static bool ns_wanted(lv_state *s, const char *prefix, size_t plen, const char *suffix)
{
    const char *ns = ns_build(s, prefix, plen, suffix);
    return ns != NULL && fr_ns_query_match(s->q, ns);
}

/* Could the query want leaf `leaf` of some device of this domain? */
static bool dev_leaf_any(lv_state *s, lv_dom *d, const char *kind, const char *leaf)
{
    char pattern[LV_NS_MAX];
    int n = snprintf(pattern, sizeof(pattern), "%s%s/*/%s", d->prefix, kind, leaf);
    if (n < 0 || (size_t)n >= sizeof(pattern)) {
        return false;
    }
    for (size_t i = 0; i < s->q_count; i++) {
        if (fr_ns_query_covers_pattern(s->q, i, pattern)) {
            return true;
        }
    }
    return false;
}

static void dev_wants(lv_state *s, lv_dev *dev, const char *const *leaves, size_t nleaves)
{
    dev->want = 0;
    if (dev->prefix == NULL) {
        return;
    }
    for (size_t k = 0; k < nleaves; k++) {
        if (ns_wanted(s, dev->prefix, dev->prefix_len, leaves[k])) {
            dev->want |= (uint16_t)(1u << k);
        }
    }
}

static void dom_wants(lv_state *s, lv_dom *d)
{
    if (d->want_gen == s->q_gen) {
        return;
    }
    d->want_gen = s->q_gen;
    d->want_cpu = d->want_vcpu_any = false;
    d->want_mem = d->want_disk_any = d->want_net_any = 0;
    free(d->want_vcpu);
    d->want_vcpu = NULL;
    d->nwant_vcpu = 0;
    if (!d->usable) {
        return;
    }
    d->want_cpu = ns_wanted(s, d->prefix, d->prefix_len, "cpu/cputime");
    char pattern[LV_NS_MAX];
    snprintf(pattern, sizeof(pattern), "%scpu/*/cputime", d->prefix);
    for (size_t i = 0; i < s->q_count && !d->want_vcpu_any; i++) {
        d->want_vcpu_any = fr_ns_query_covers_pattern(s->q, i, pattern);
    }
    for (int k = 0; k < MEM_N; k++) {
        if (ns_wanted(s, d->prefix, d->prefix_len, lv_mem_leaves[k])) {
            d->want_mem |= (uint16_t)(1u << k);
        }
    }
    for (int k = 0; k < DISK_N; k++) {
        if (dev_leaf_any(s, d, "disk", lv_disk_names[k])) {
            d->want_disk_any |= (uint16_t)(1u << k);
        }
    }
    for (int k = 0; k < NET_N; k++) {
        if (dev_leaf_any(s, d, "network", lv_net_names[k])) {
            d->want_net_any |= (uint16_t)(1u << k);
        }
    }
    for (size_t i = 0; i < d->disks.n; i++) {
        dev_wants(s, &d->disks.v[i], lv_disk_names, DISK_N);
    }
    for (size_t i = 0; i < d->nets.n; i++) {
        dev_wants(s, &d->nets.v[i], lv_net_names, NET_N);
    }
}

static unsigned dom_groups(const lv_dom *d)
{
    unsigned g = 0;
    g |= d->want_cpu ? G_CPU : 0;
    g |= d->want_vcpu_any ? G_VCPU : 0;
    g |= (d->want_mem & MEM_INFO_MASK) ? G_MEMINFO : 0;
    g |= (d->want_mem & ~MEM_INFO_MASK) ? G_BALLOON : 0;
    g |= d->want_disk_any ? G_BLOCK : 0;
    g |= d->want_net_any ? G_NET : 0;
    return g;
}

/* "cpu/<n>/cputime" into buf (>= 48 bytes), without printf: it runs per
 * vCPU per tick. */
static const char *vcpu_leaf(char *buf, size_t n)
{
    char digits[24];
    size_t nd = 0;
    do {
        digits[nd++] = (char)('0' + n % 10);
        n /= 10;
    } while (n != 0);
    char *p = buf;
    memcpy(p, "cpu/", 4);
    p += 4;
    while (nd > 0) {
        *p++ = digits[--nd];
    }
    memcpy(p, "/cputime", sizeof("/cputime"));
    return buf;
}

static bool vcpu_wanted(lv_state *s, lv_dom *d, size_t n)
{
    if (!d->want_vcpu_any || n >= LV_DEV_MAX) {
        return false;
    }
    if (n >= d->nwant_vcpu) {
        size_t cap = n + 1 > 2 * d->nwant_vcpu ? n + 1 : 2 * d->nwant_vcpu;
        uint8_t *v = realloc(d->want_vcpu, cap);
        if (v == NULL) {
            return false;
        }
        memset(v + d->nwant_vcpu, 0, cap - d->nwant_vcpu);
        d->want_vcpu = v;
        d->nwant_vcpu = cap;
    }
    if (d->want_vcpu[n] == 0) {
        char leaf[48];
        d->want_vcpu[n] = ns_wanted(s, d->prefix, d->prefix_len, vcpu_leaf(leaf, n)) ? 2 : 1;
    }
    return d->want_vcpu[n] == 2;
}

/* ---- names and devices ------------------------------------------------ */

/* Copies a libvirt name for use as one namespace element: '/' would split
 * it, so it becomes '_'. NULL when too long or empty. */
static char *name_element(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    if (n == 0 || n > LV_NAME_MAX) {
        return NULL;
    }
    char *s = malloc(n + 1);
    if (s == NULL) {
        return NULL;
    }
    for (size_t i = 0; i <= n; i++) {
        s[i] = name[i] == '/' ? '_' : name[i];
    }
    return s;
}

static char *join3(const char *a, const char *b, const char *c, size_t *len)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);
    char *s = malloc(la + lb + lc + 1);
    if (s == NULL) {
        return NULL;
    }
    memcpy(s, a, la);
    memcpy(s + la, b, lb);
    memcpy(s + la + lb, c, lc + 1);
    *len = la + lb + lc;
    return s;
}

/* Makes d's device list of one kind equal to names[0..n), keeping it as
 * it is when nothing changed (the common case: one strcmp per device). */
static int devs_sync(lv_state *s, lv_dom *d, lv_devlist *l, const char *kind,
                     const char *const *names, size_t n)
{
    bool same = l->n == n;
    for (size_t i = 0; same && i < n; i++) {
        same = names[i] != NULL && strcmp(l->v[i].name, names[i]) == 0;
    }
    if (same) {
        return 0;
    }
    dev_list_free(l);
    if (n == 0) {
        return 0;
    }
    l->v = calloc(n, sizeof(lv_dev));
    if (l->v == NULL) {
        return FR_ENOMEM;
    }
    bool disk = kind[0] == 'd';
    char mid[16];
    snprintf(mid, sizeof(mid), "%s/", kind);
    /* Slot i is device i of the readings: an unusable name keeps its slot
     * with no prefix, and is never wanted. */
    for (size_t i = 0; i < n; i++) {
        lv_dev *dev = &l->v[l->n++];
        dev->name = strdup(names[i] != NULL ? names[i] : "");
        if (dev->name == NULL) {
            return FR_ENOMEM;
        }
        char *el = name_element(names[i]);
        if (el == NULL) {
            continue;
        }
        char *mid_el = join3(mid, el, "/", &(size_t){0});
        free(el);
        dev->prefix = mid_el != NULL ? join3(d->prefix, mid_el, "", &dev->prefix_len) : NULL;
        free(mid_el);
        if (dev->prefix == NULL) {
            return FR_ENOMEM;
        }
        if (disk) {
            dev_wants(s, dev, lv_disk_names, DISK_N);
        } else {
            dev_wants(s, dev, lv_net_names, NET_N);
        }
    }
    return 0;
}

/* Reads the domain's XML: device names (used when per-domain calls read
 * the devices) and Nova tags. On failure the old copy stays. */
static int dom_read_xml(lv_state *s, lv_dom *d, fr_error *err)
{
    s->counters.calls++;
    s->counters.xml_reads++;
    d->xml_stale = false;
    d->xml_read_ns = lv_mono_ns();
    char *xml = virDomainGetXMLDesc(d->dom, 0);
    if (xml == NULL) {
        if (lv_conn_lost(s, "virDomainGetXMLDesc", err)) {
            return FR_EIO;
        }
        fr_debug(LV_MOD, "domain %s: cannot read its XML: %s", d->name, s->err_msg);
        return 0;
    }
    domxml x = {0};
    int rv = domxml_parse(xml, strlen(xml), s->cfg->nova, &x);
    free(xml);
    if (rv == FR_ENOMEM) {
        return rv;
    }
    if (rv != 0) {
        fr_warn(LV_MOD, "domain %s: its XML description is not well-formed; devices unknown",
                d->name);
        return 0;
    }
    d->xml_known = true;
    domxml_free(&d->xml);
    d->xml = x;
    return 0;
}

/* ---- finding domains -------------------------------------------------- */

static lv_dom *dom_find_uuid(lv_state *s, const unsigned char *uuid, size_t hint)
{
    if (hint < s->ndoms && memcmp(s->doms[hint]->uuid, uuid, VIR_UUID_BUFLEN) == 0) {
        return s->doms[hint];
    }
    for (size_t i = 0; i < s->ndoms; i++) {
        if (memcmp(s->doms[i]->uuid, uuid, VIR_UUID_BUFLEN) == 0) {
            return s->doms[i];
        }
    }
    return NULL;
}

static lv_dom *dom_find_id(lv_state *s, int id, size_t hint)
{
    if (hint < s->ndoms && s->doms[hint]->id == id) {
        return s->doms[hint];
    }
    for (size_t i = 0; i < s->ndoms; i++) {
        if (s->doms[i]->id == id) {
            return s->doms[i];
        }
    }
    return NULL;
}

/* Adds a domain to the cache; takes the reference `dom`. */
static lv_dom *dom_add(lv_state *s, virDomainPtr dom, const unsigned char *uuid)
{
    if (s->ndoms == s->cap_doms) {
        size_t cap = s->cap_doms != 0 ? s->cap_doms * 2 : 64;
        lv_dom **v = realloc(s->doms, cap * sizeof(*v));
        if (v == NULL) {
            virDomainFree(dom);
            return NULL;
        }
        s->doms = v;
        s->cap_doms = cap;
    }
    lv_dom *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        virDomainFree(dom);
        return NULL;
    }
    d->dom = dom;
    d->id = virDomainGetID(dom);
    memcpy(d->uuid, uuid, VIR_UUID_BUFLEN);
    d->name = name_element(virDomainGetName(dom));
    d->usable = d->name != NULL;
    if (!d->usable) {
        d->name = strdup("");
    }
    d->prefix = d->name != NULL ? join3(LV_PREFIX, d->name, "/", &d->prefix_len) : NULL;
    if (d->prefix == NULL) {
        dom_free(d);
        return NULL;
    }
    if (!d->usable) {
        fr_warn(LV_MOD, "domain id %d: its name is empty or over %d bytes; left out", d->id,
                LV_NAME_MAX);
    }
    s->doms[s->ndoms++] = d;
    fr_debug(LV_MOD, "domain %s (id %d) appeared", d->name, d->id);
    return d;
}

/* The cache entry for a running domain, created when new; dom is
 * borrowed. A new id means the domain restarted: its devices are read
 * again. */
static lv_dom *dom_sync_ptr(lv_state *s, virDomainPtr dom, size_t pos)
{
    unsigned char uuid[VIR_UUID_BUFLEN];
    if (virDomainGetUUID(dom, uuid) != 0) {
        return NULL;
    }
    lv_dom *d = dom_find_uuid(s, uuid, pos);
    int id = virDomainGetID(dom);
    if (d == NULL) {
        if (virDomainRef(dom) != 0) {
            return NULL;
        }
        d = dom_add(s, dom, uuid);
    } else if (d->id != id) {
        if (virDomainRef(dom) != 0) {
            return NULL;
        }
        virDomainFree(d->dom);
        d->dom = dom;
        d->id = id;
        d->xml_stale = true;
    }
    if (d != NULL) {
        d->seen_tick = s->tick;
    }
    return d;
}

/* The same from a domain id (the list-only path). */
static lv_dom *dom_sync_id(lv_state *s, int id, size_t pos)
{
    lv_dom *d = dom_find_id(s, id, pos);
    if (d != NULL) {
        d->seen_tick = s->tick;
        return d;
    }
    s->counters.calls++;
    virDomainPtr dom = virDomainLookupByID(s->conn, id);
    if (dom == NULL) {
        return NULL; /* gone since it was listed */
    }
    d = dom_sync_ptr(s, dom, pos);
    virDomainFree(dom);
    return d;
}

static void cache_prune(lv_state *s)
{
    size_t j = 0;
    for (size_t i = 0; i < s->ndoms; i++) {
        lv_dom *d = s->doms[i];
        if (d->seen_tick == s->tick) {
            s->doms[j++] = d;
        } else {
            fr_debug(LV_MOD, "domain %s gone", d->name);
            dom_free(d);
        }
    }
    s->ndoms = j;
}

/* Marks the domain with the oldest XML for re-reading once it is older
 * than `refresh`: one per tick spreads the reads over time. */
static void xml_age_check(lv_state *s, unsigned pd_groups)
{
    if (s->cfg->refresh_ms <= 0) {
        return;
    }
    bool need_devs = (pd_groups & (G_BLOCK | G_NET)) != 0;
    if (!need_devs && !s->cfg->nova) {
        return;
    }
    int64_t now = lv_mono_ns();
    lv_dom *oldest = NULL;
    for (size_t i = 0; i < s->ndoms; i++) {
        lv_dom *d = s->doms[i];
        if (d->xml_known && (oldest == NULL || d->xml_read_ns < oldest->xml_read_ns)) {
            oldest = d;
        }
    }
    if (oldest != NULL && now - oldest->xml_read_ns >= s->cfg->refresh_ms * 1000000) {
        oldest->xml_stale = true;
    }
}

/* ---- readings --------------------------------------------------------- */

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) {
        return 0;
    }
    size_t cap2 = *cap != 0 ? *cap : 8;
    while (cap2 < need) {
        cap2 *= 2;
    }
    void *v = realloc(*p, cap2 * size);
    if (v == NULL) {
        return FR_ENOMEM;
    }
    *p = v;
    *cap = cap2;
    return 0;
}

static void sample_reset(lv_sample *m)
{
    m->has_cpu = false;
    m->mem_has = 0;
    m->nvcpu = m->ndisk = m->nnet = 0;
}

static int sample_vcpu(lv_sample *m, size_t n, uint64_t v)
{
    if (n >= LV_DEV_MAX) {
        return 0;
    }
    if (n >= m->nvcpu) {
        if (grow((void **)&m->vcpu, &m->cap_vcpu, n + 1, sizeof(lv_vcpustat)) != 0) {
            return FR_ENOMEM;
        }
        memset(m->vcpu + m->nvcpu, 0, (n + 1 - m->nvcpu) * sizeof(lv_vcpustat));
        m->nvcpu = n + 1;
    }
    m->vcpu[n] = (lv_vcpustat){v, true};
    return 0;
}

/* The devstat slot n, zeroed when new. */
static lv_devstat *sample_dev(lv_devstat **v, size_t *count, size_t *cap, size_t n)
{
    if (n >= LV_DEV_MAX) {
        return NULL;
    }
    if (n >= *count) {
        if (grow((void **)v, cap, n + 1, sizeof(lv_devstat)) != 0) {
            return NULL;
        }
        memset(*v + *count, 0, (n + 1 - *count) * sizeof(lv_devstat));
        *count = n + 1;
    }
    return &(*v)[n];
}

/* ---- bulk records ----------------------------------------------------- */

static bool param_u64(const virTypedParameter *p, uint64_t *out)
{
    switch (p->type) {
    case VIR_TYPED_PARAM_INT:
        if (p->value.i < 0) {
            return false;
        }
        *out = (uint64_t)p->value.i;
        return true;
    case VIR_TYPED_PARAM_UINT:
        *out = p->value.ui;
        return true;
    case VIR_TYPED_PARAM_LLONG:
        if (p->value.l < 0) {
            return false;
        }
        *out = (uint64_t)p->value.l;
        return true;
    case VIR_TYPED_PARAM_ULLONG:
        *out = p->value.ul;
        return true;
    default:
        return false;
    }
}

/* "<n>.<rest>" at s: the index and the rest. */
static bool field_index(const char *s, size_t *n, const char **rest)
{
    char *end;
    if (*s < '0' || *s > '9') {
        return false;
    }
    unsigned long v = strtoul(s, &end, 10);
    if (*end != '.' || v >= LV_DEV_MAX) {
        return false;
    }
    *n = v;
    *rest = end + 1;
    return true;
}

/* balloon.<name> fields and the memory leaf each fills; counted marks
 * those that are a virDomainMemoryStat tag (for memory/nr). */
static const struct {
    const char *name;
    int leaf; /* -1: counted for nr only */
    bool counted;
} lv_balloon_fields[] = {
    {"current", MEM_ACTUAL_BALLOON, true},
    {"maximum", MEM_MAX, false},
    {"swap_in", MEM_SWAP_IN, true},
    {"swap_out", MEM_SWAP_OUT, true},
    {"major_fault", MEM_MAJOR_FAULT, true},
    {"minor_fault", MEM_MIN_FAULT, true},
    {"unused", MEM_UNUSED, true},
    {"available", MEM_AVAILABLE, true},
    {"rss", MEM_RSS, true},
    {"usable", -1, true},
    {"last-update", -1, true},
    {"disk_caches", -1, true},
    {"hugetlb_pgalloc", -1, true},
    {"hugetlb_pgfail", -1, true},
};

static const char *const lv_block_fields[DISK_N] = {"rd.reqs", "rd.bytes", "wr.reqs", "wr.bytes"};
static const char *const lv_net_fields[NET_N] = {"rx.bytes", "rx.pkts", "rx.errs", "rx.drop",
                                                 "tx.bytes", "tx.pkts", "tx.errs", "tx.drop"};

static int bulk_dev_field(lv_devstat **v, size_t *count, size_t *cap, const char *rest,
                          const virTypedParameter *p, const char *const *fields, size_t nfields)
{
    size_t n;
    const char *leaf;
    if (!field_index(rest, &n, &leaf)) {
        return 0;
    }
    if (strcmp(leaf, "name") == 0) {
        if (p->type != VIR_TYPED_PARAM_STRING) {
            return 0;
        }
        lv_devstat *ds = sample_dev(v, count, cap, n);
        if (ds == NULL) {
            return FR_ENOMEM;
        }
        ds->name = p->value.s;
        return 0;
    }
    for (size_t k = 0; k < nfields; k++) {
        uint64_t x;
        if (strcmp(leaf, fields[k]) == 0 && param_u64(p, &x)) {
            lv_devstat *ds = sample_dev(v, count, cap, n);
            if (ds == NULL) {
                return FR_ENOMEM;
            }
            ds->v[k] = x;
            ds->has |= (uint16_t)(1u << k);
            return 0;
        }
    }
    return 0;
}

/* Fills m from a stats record; *present gets the bulk groups (B_*) the
 * record carries, which is how a driver that ignores a group is told
 * apart from one that answers it. */
static int sample_from_record(lv_sample *m, const virDomainStatsRecord *rec, unsigned *present)
{
    unsigned nr = 0;
    *present = 0;
    for (int i = 0; i < rec->nparams; i++) {
        const virTypedParameter *p = &rec->params[i];
        const char *f = p->field;
        uint64_t x;
        int rv = 0;
        if (strncmp(f, "cpu.", 4) == 0) {
            if (strcmp(f + 4, "time") == 0 && param_u64(p, &x)) {
                m->cpu = x;
                m->has_cpu = true;
                *present |= 1u << B_CPU;
            }
        } else if (strncmp(f, "vcpu.", 5) == 0) {
            size_t n;
            const char *leaf;
            if (strcmp(f + 5, "current") == 0) {
                *present |= 1u << B_VCPU;
            } else if (field_index(f + 5, &n, &leaf) && strcmp(leaf, "time") == 0 &&
                       param_u64(p, &x)) {
                rv = sample_vcpu(m, n, x);
                *present |= 1u << B_VCPU;
            }
        } else if (strncmp(f, "balloon.", 8) == 0) {
            for (size_t k = 0; k < sizeof(lv_balloon_fields) / sizeof(lv_balloon_fields[0]); k++) {
                if (strcmp(f + 8, lv_balloon_fields[k].name) != 0 || !param_u64(p, &x)) {
                    continue;
                }
                *present |= 1u << B_BALLOON;
                nr += lv_balloon_fields[k].counted;
                int leaf = lv_balloon_fields[k].leaf;
                if (leaf >= 0) {
                    m->mem[leaf] = x;
                    m->mem_has |= (uint16_t)(1u << leaf);
                }
                if (leaf == MEM_ACTUAL_BALLOON) {
                    m->mem[MEM_MEM] = x;
                    m->mem_has |= 1u << MEM_MEM;
                }
                break;
            }
        } else if (strncmp(f, "block.", 6) == 0) {
            if (strcmp(f + 6, "count") == 0) {
                *present |= 1u << B_BLOCK;
            } else {
                rv = bulk_dev_field(&m->disk, &m->ndisk, &m->cap_disk, f + 6, p, lv_block_fields,
                                    DISK_N);
            }
        } else if (strncmp(f, "net.", 4) == 0) {
            if (strcmp(f + 4, "count") == 0) {
                *present |= 1u << B_NET;
            } else {
                rv = bulk_dev_field(&m->net, &m->nnet, &m->cap_net, f + 4, p, lv_net_fields, NET_N);
            }
        }
        if (rv != 0) {
            return rv;
        }
    }
    if (*present & (1u << B_BALLOON)) {
        m->mem[MEM_NR] = nr;
        m->mem_has |= 1u << MEM_NR;
    }
    return 0;
}

/* ---- per-domain calls ------------------------------------------------- */

/* After a failed per-domain call. Returns FR_EIO when the connection is
 * gone (the tick fails), 1 when the domain stopped (skip it), 0 to go on
 * without that reading. */
static int dom_call_failed(lv_state *s, lv_dom *d, const char *call, const char *dev, fr_error *err)
{
    if (lv_conn_lost(s, call, err)) {
        return FR_EIO;
    }
    int code = s->err_code;
    if (code == VIR_ERR_NO_DOMAIN || code == VIR_ERR_OPERATION_INVALID) {
        d->seen_tick = 0; /* stopped since it was listed: dropped at the end of the tick */
        return 1;
    }
    if (dev != NULL && code == VIR_ERR_INVALID_ARG) {
        d->xml_stale = true; /* the device went away: read the devices again */
        return 0;
    }
    if (code != d->last_err) {
        d->last_err = code;
        fr_warn(LV_MOD, "domain %s: %s%s%s: %s", d->name, call, dev != NULL ? " " : "",
                dev != NULL ? dev : "", s->err_msg);
    }
    return 0;
}

static int sample_info(lv_state *s, lv_dom *d, unsigned groups, lv_sample *m, fr_error *err)
{
    virDomainInfo info;
    s->counters.calls++;
    if (virDomainGetInfo(d->dom, &info) != 0) {
        return dom_call_failed(s, d, "virDomainGetInfo", NULL, err);
    }
    if (groups & G_CPU) {
        m->cpu = info.cpuTime;
        m->has_cpu = true;
    }
    if (groups & G_MEMINFO) {
        m->mem[MEM_MEM] = info.memory;
        m->mem[MEM_MAX] = info.maxMem;
        m->mem_has |= MEM_INFO_MASK;
    }
    if (!(groups & G_VCPU) || info.nrVirtCpu == 0) {
        return 0;
    }
    size_t nv = info.nrVirtCpu < LV_DEV_MAX ? info.nrVirtCpu : LV_DEV_MAX;
    if (grow((void **)&m->vinfo, &m->cap_vinfo, nv, sizeof(virVcpuInfo)) != 0) {
        return FR_ENOMEM;
    }
    s->counters.calls++;
    int got = virDomainGetVcpus(d->dom, m->vinfo, (int)nv, NULL, 0);
    if (got < 0) {
        return dom_call_failed(s, d, "virDomainGetVcpus", NULL, err);
    }
    for (int i = 0; i < got; i++) {
        int rv = sample_vcpu(m, m->vinfo[i].number, m->vinfo[i].cpuTime);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

static int sample_memstats(lv_state *s, lv_dom *d, lv_sample *m, fr_error *err)
{
    /* libvirt's tags 0..7, in the order of the leaves they fill */
    static const int tag_leaf[] = {MEM_SWAP_IN, MEM_SWAP_OUT,  MEM_MAJOR_FAULT,    MEM_MIN_FAULT,
                                   MEM_UNUSED,  MEM_AVAILABLE, MEM_ACTUAL_BALLOON, MEM_RSS};
    virDomainMemoryStatStruct st[VIR_DOMAIN_MEMORY_STAT_NR];
    s->counters.calls++;
    int n = virDomainMemoryStats(d->dom, st, VIR_DOMAIN_MEMORY_STAT_NR, 0);
    if (n < 0) {
        return dom_call_failed(s, d, "virDomainMemoryStats", NULL, err);
    }
    for (int i = 0; i < n; i++) {
        if (st[i].tag >= 0 && (size_t)st[i].tag < sizeof(tag_leaf) / sizeof(tag_leaf[0])) {
            m->mem[tag_leaf[st[i].tag]] = st[i].val;
            m->mem_has |= (uint16_t)(1u << tag_leaf[st[i].tag]);
        }
    }
    m->mem[MEM_NR] = (uint64_t)n;
    m->mem_has |= 1u << MEM_NR;
    return 0;
}

static void put_ll(lv_devstat *ds, int k, long long v)
{
    if (v >= 0) { /* -1: the hypervisor does not report it */
        ds->v[k] = (uint64_t)v;
        ds->has |= (uint16_t)(1u << k);
    }
}

static int sample_blocks(lv_state *s, lv_dom *d, lv_sample *m, fr_error *err)
{
    for (size_t i = 0; i < d->disks.n; i++) {
        lv_dev *dev = &d->disks.v[i];
        lv_devstat *ds = sample_dev(&m->disk, &m->ndisk, &m->cap_disk, i);
        if (ds == NULL) {
            return FR_ENOMEM;
        }
        ds->name = dev->name;
        ds->has = 0;
        if (dev->want == 0) {
            continue;
        }
        virDomainBlockStatsStruct bs;
        s->counters.calls++;
        if (virDomainBlockStats(d->dom, dev->name, &bs, sizeof(bs)) != 0) {
            int rv = dom_call_failed(s, d, "virDomainBlockStats", dev->name, err);
            if (rv != 0) {
                return rv;
            }
            continue;
        }
        put_ll(ds, DISK_RDREQ, bs.rd_req);
        put_ll(ds, DISK_RDBYTES, bs.rd_bytes);
        put_ll(ds, DISK_WRREQ, bs.wr_req);
        put_ll(ds, DISK_WRBYTES, bs.wr_bytes);
    }
    return 0;
}

static int sample_nets(lv_state *s, lv_dom *d, lv_sample *m, fr_error *err)
{
    for (size_t i = 0; i < d->nets.n; i++) {
        lv_dev *dev = &d->nets.v[i];
        lv_devstat *ds = sample_dev(&m->net, &m->nnet, &m->cap_net, i);
        if (ds == NULL) {
            return FR_ENOMEM;
        }
        ds->name = dev->name;
        ds->has = 0;
        if (dev->want == 0) {
            continue;
        }
        virDomainInterfaceStatsStruct is;
        s->counters.calls++;
        if (virDomainInterfaceStats(d->dom, dev->name, &is, sizeof(is)) != 0) {
            int rv = dom_call_failed(s, d, "virDomainInterfaceStats", dev->name, err);
            if (rv != 0) {
                return rv;
            }
            continue;
        }
        put_ll(ds, NET_RXBYTES, is.rx_bytes);
        put_ll(ds, NET_RXPACKETS, is.rx_packets);
        put_ll(ds, NET_RXERRS, is.rx_errs);
        put_ll(ds, NET_RXDROP, is.rx_drop);
        put_ll(ds, NET_TXBYTES, is.tx_bytes);
        put_ll(ds, NET_TXPACKETS, is.tx_packets);
        put_ll(ds, NET_TXERRS, is.tx_errs);
        put_ll(ds, NET_TXDROP, is.tx_drop);
    }
    return 0;
}

/* Reads the groups `groups` of d with per-domain calls. */
static int sample_per_domain(lv_state *s, lv_dom *d, unsigned groups, lv_sample *m, fr_error *err)
{
    int rv = 0;
    if (groups & (G_CPU | G_VCPU | G_MEMINFO)) {
        rv = sample_info(s, d, groups, m, err);
    }
    if (rv == 0 && (groups & G_BALLOON)) {
        rv = sample_memstats(s, d, m, err);
    }
    if (rv == 0 && (groups & G_BLOCK)) {
        rv = sample_blocks(s, d, m, err);
    }
    if (rv == 0 && (groups & G_NET)) {
        rv = sample_nets(s, d, m, err);
    }
    return rv;
}

/* ---- output ----------------------------------------------------------- */

static int put_metric(lv_state *s, lv_dom *d, const fr_collect_req *req, const char *ns, uint64_t v,
                      const char *unit)
{
    fr_metric *m = fr_batch_add(req->out, ns, req->now_ns, fr_val_u64(v), unit);
    if (m == NULL) {
        return FR_ENOMEM;
    }
    for (size_t i = 0; i < d->xml.nnova; i++) {
        int rv = fr_batch_metric_tag(req->out, m, d->xml.nova[i].key, d->xml.nova[i].value);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

static int put_devs(lv_state *s, lv_dom *d, const fr_collect_req *req, const lv_devlist *devs,
                    const lv_devstat *st, size_t nst, const char *const *leaves, size_t nleaves,
                    size_t unit_base)
{
    for (size_t i = 0; i < nst && i < devs->n; i++) {
        const lv_dev *dev = &devs->v[i];
        if (st[i].has == 0 || dev->want == 0) {
            continue; /* nothing reported: not a device we can read (an empty cdrom) */
        }
        for (size_t k = 0; k < nleaves; k++) {
            if (!(dev->want & (1u << k))) {
                continue;
            }
            bool has = (st[i].has & (1u << k)) != 0;
            if (!has && !s->unreported_zero) {
                continue;
            }
            const char *ns = ns_build(s, dev->prefix, dev->prefix_len, leaves[k]);
            int rv = ns != NULL ? put_metric(s, d, req, ns, has ? st[i].v[k] : 0,
                                             lv_catalog[unit_base + k].unit)
                                : 0;
            if (rv != 0) {
                return rv;
            }
        }
    }
    return 0;
}

static int put_domain(lv_state *s, lv_dom *d, const lv_sample *m, const fr_collect_req *req)
{
    int rv = 0;
    if (d->want_cpu && m->has_cpu) {
        const char *ns = ns_build(s, d->prefix, d->prefix_len, "cpu/cputime");
        rv = put_metric(s, d, req, ns, m->cpu, "ns");
    }
    for (size_t n = 0; rv == 0 && n < m->nvcpu; n++) {
        if (m->vcpu[n].has && vcpu_wanted(s, d, n)) {
            char leaf[48];
            rv = put_metric(s, d, req, ns_build(s, d->prefix, d->prefix_len, vcpu_leaf(leaf, n)),
                            m->vcpu[n].time, "ns");
        }
    }
    for (int k = 0; rv == 0 && k < MEM_N; k++) {
        if (!(d->want_mem & (1u << k))) {
            continue;
        }
        bool has = (m->mem_has & (1u << k)) != 0;
        bool known = has || (m->mem_has & (1u << MEM_NR)); /* the stats call answered */
        if (!has && (!s->unreported_zero || !known)) {
            continue;
        }
        rv = put_metric(s, d, req, ns_build(s, d->prefix, d->prefix_len, lv_mem_leaves[k]),
                        has ? m->mem[k] : 0, lv_catalog[LV_CAT_MEM + k].unit);
    }
    if (rv == 0) {
        rv = put_devs(s, d, req, &d->disks, m->disk, m->ndisk, lv_disk_names, DISK_N, LV_CAT_DISK);
    }
    if (rv == 0) {
        rv = put_devs(s, d, req, &d->nets, m->net, m->nnet, lv_net_names, NET_N, LV_CAT_NET);
    }
    return rv;
}

/* ---- one tick --------------------------------------------------------- */

/* Groups read per domain this tick: those wanted that bulk does not serve. */
static unsigned per_domain_groups(const lv_state *s, unsigned bulk_served)
{
    return s->q_groups & ~bulk_served;
}

static int devs_from_record(lv_state *s, lv_dom *d, lv_devlist *l, const char *kind,
                            const lv_devstat *st, size_t n)
{
    if (grow((void **)&s->names, &s->cap_names, n, sizeof(char *)) != 0) {
        return FR_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        s->names[i] = st[i].name != NULL ? st[i].name : "";
    }
    return devs_sync(s, d, l, kind, s->names, n);
}

/* Samples and emits one listed domain. rec is its bulk record or NULL. */
static int collect_domain(lv_state *s, lv_dom *d, const virDomainStatsRecord *rec,
                          unsigned per_domain, const fr_collect_req *req, fr_error *err)
{
    dom_wants(s, d);
    unsigned want = dom_groups(d);
    if (want == 0) {
        return 0;
    }
    unsigned pd = want & per_domain;
    bool need_xml = (pd & (G_BLOCK | G_NET)) != 0 || s->cfg->nova;
    if (need_xml && (!d->xml_known || d->xml_stale)) {
        int rv = dom_read_xml(s, d, err);
        if (rv != 0) {
            return rv;
        }
    }
    lv_sample *m = &s->sample;
    sample_reset(m);
    if (rec != NULL) {
        unsigned present;
        int rv = sample_from_record(m, rec, &present);
        if (rv != 0) {
            return rv;
        }
        /* Devices named by the record replace the XML's list. */
        if (want & ~pd & G_BLOCK) {
            rv = devs_from_record(s, d, &d->disks, "disk", m->disk, m->ndisk);
        }
        if (rv == 0 && (want & ~pd & G_NET)) {
            rv = devs_from_record(s, d, &d->nets, "network", m->net, m->nnet);
        }
        if (rv != 0) {
            return rv;
        }
    }
    /* Devices read per domain are the XML's (a no-op when unchanged). */
    if (pd & G_BLOCK) {
        int rv =
            devs_sync(s, d, &d->disks, "disk", (const char *const *)d->xml.disks, d->xml.ndisks);
        if (rv != 0) {
            return rv;
        }
    }
    if (pd & G_NET) {
        int rv = devs_sync(s, d, &d->nets, "network", (const char *const *)d->xml.ifaces,
                           d->xml.nifaces);
        if (rv != 0) {
            return rv;
        }
    }
    if (pd != 0) {
        int rv = sample_per_domain(s, d, pd, m, err);
        if (rv < 0) {
            return rv;
        }
        if (rv == 1) {
            return 0; /* stopped meanwhile */
        }
    }
    return put_domain(s, d, m, req);
}

static unsigned bulk_served(const lv_state *s)
{
    unsigned g = 0;
    for (int b = 0; b < B_N; b++) {
        if (s->bulk[b] == SUP_YES) {
            g |= lv_bulk_map[b].groups;
        }
    }
    return g;
}

/* The tick through virConnectGetAllDomainStats. Returns 1 when the driver
 * does not offer the call at all (the caller goes per domain). */
static int collect_bulk(lv_state *s, unsigned vir_stats, const fr_collect_req *req, fr_error *err)
{
    virDomainStatsRecordPtr *recs = NULL;
    s->counters.calls++;
    libvirt_plugin_stats_fn fn = s->stats_fn != NULL ? s->stats_fn : virConnectGetAllDomainStats;
    int n = fn(s->conn, vir_stats, &recs, VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE);
    if (n < 0) {
        if (lv_conn_lost(s, "virConnectGetAllDomainStats", err)) {
            return FR_EIO;
        }
        int code = s->err_code;
        if (code == VIR_ERR_NO_SUPPORT || code == VIR_ERR_ARGUMENT_UNSUPPORTED) {
            fr_info(LV_MOD, "'%s' has no bulk domain stats: reading per domain", s->cfg->uri);
            for (int b = 0; b < B_N; b++) {
                s->bulk[b] = SUP_NO;
            }
            return 1;
        }
        return fr_error_set(err, FR_EIO, "uri", "virConnectGetAllDomainStats on '%s': %s",
                            s->cfg->uri, s->err_msg);
    }
    /* Learn which groups the driver answers, from the first records. */
    bool probing = false;
    for (int b = 0; b < B_N; b++) {
        probing = probing || (s->bulk[b] == SUP_UNKNOWN && (vir_stats & lv_bulk_map[b].vir));
    }
    if (n > 0 && probing) {
        unsigned present = 0;
        for (int i = 0; i < n; i++) {
            unsigned p;
            sample_reset(&s->sample);
            if (sample_from_record(&s->sample, recs[i], &p) != 0) {
                virDomainStatsRecordListFree(recs);
                return FR_ENOMEM;
            }
            present |= p;
        }
        for (int b = 0; b < B_N; b++) {
            if (s->bulk[b] == SUP_UNKNOWN && (vir_stats & lv_bulk_map[b].vir)) {
                s->bulk[b] = (present & (1u << b)) ? SUP_YES : SUP_NO;
                if (s->bulk[b] == SUP_YES) {
                    s->counters.bulk_groups++;
                }
            }
        }
    }
    unsigned pd = per_domain_groups(s, bulk_served(s));
    xml_age_check(s, pd);
    int rv = 0;
    for (int i = 0; i < n && rv == 0; i++) {
        lv_dom *d = dom_sync_ptr(s, recs[i]->dom, (size_t)i);
        if (d == NULL) {
            continue;
        }
        /* per-domain calls use the record's handle: it is this tick's */
        rv = collect_domain(s, d, recs[i], pd, req, err);
    }
    virDomainStatsRecordListFree(recs);
    return rv;
}

/* The tick from the list of running domain ids, all groups per domain. */
static int collect_listed(lv_state *s, const fr_collect_req *req, fr_error *err)
{
    int n;
    for (;;) {
        if (grow((void **)&s->ids, &s->cap_ids, s->ndoms + 64, sizeof(int)) != 0) {
            return FR_ENOMEM;
        }
        s->counters.calls++;
        n = virConnectListDomains(s->conn, s->ids, (int)s->cap_ids);
        if (n < 0) {
            if (lv_conn_lost(s, "virConnectListDomains", err)) {
                return FR_EIO;
            }
            return fr_error_set(err, FR_EIO, "uri", "virConnectListDomains on '%s': %s",
                                s->cfg->uri, s->err_msg);
        }
        if ((size_t)n < s->cap_ids) {
            break;
        }
        /* the array was full: there may be more */
        if (grow((void **)&s->ids, &s->cap_ids, s->cap_ids * 2, sizeof(int)) != 0) {
            return FR_ENOMEM;
        }
    }
    unsigned pd = per_domain_groups(s, 0);
    xml_age_check(s, pd);
    int rv = 0;
    for (int i = 0; i < n && rv == 0; i++) {
        lv_dom *d = dom_sync_id(s, s->ids[i], (size_t)i);
        if (d != NULL) {
            rv = collect_domain(s, d, NULL, pd, req, err);
        }
    }
    return rv;
}

/* ---- the plugin ------------------------------------------------------- */

static void lv_destroy(void *state)
{
    lv_state *s = state;
    if (s == NULL) {
        return;
    }
    lv_disconnect(s);
    free(s->doms);
    free(s->ids);
    free(s->sample.vcpu);
    free(s->names);
    free(s->sample.disk);
    free(s->sample.net);
    free(s->sample.vinfo);
    free(s);
}

static int lv_init(void **state, const void *config, fr_error *err)
{
    const lv_config *cfg = config;
    *state = NULL;
    if (cfg->uri == NULL || cfg->uri[0] == '\0') {
        return fr_error_set(err, FR_ECONFIG, "uri", "uri must not be empty");
    }
    pthread_once(&lv_once, lv_global_init);
    lv_state *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    s->cfg = cfg;
    s->unreported_zero = cfg->unreported == NULL || strcmp(cfg->unreported, "zero") == 0;
    s->bulk_off = cfg->bulk != NULL && strcmp(cfg->bulk, "off") == 0;
    bulk_reset(s);
    int rv = lv_connect(s, err);
    if (rv != 0) {
        lv_destroy(s);
        return rv;
    }
    fr_info(LV_MOD, "connected to '%s'%s", cfg->uri, cfg->readonly ? " (read-only)" : "");
    *state = s;
    return 0;
}

static int lv_collect(void *state, const fr_collect_req *req, fr_error *err)
{
    lv_state *s = state;
    if (s->conn == NULL) {
        int rv = lv_connect(s, err);
        if (rv != 0) {
            return rv;
        }
        s->counters.reconnects++;
        fr_info(LV_MOD, "reconnected to '%s'", s->cfg->uri);
    }
    lv_query_update(s, req->query);
    if (s->q_groups == 0) {
        return 0;
    }
    s->tick++;
    unsigned vir_stats = 0;
    for (int b = 0; b < B_N; b++) {
        if ((s->q_groups & lv_bulk_map[b].groups) && s->bulk[b] != SUP_NO) {
            vir_stats |= lv_bulk_map[b].vir;
        }
    }
    int rv = 1;
    if (vir_stats != 0) {
        rv = collect_bulk(s, vir_stats, req, err);
    }
    if (rv == 1) {
        rv = collect_listed(s, req, err);
    }
    if (rv == 0) {
        cache_prune(s);
    }
    return rv;
}

const fr_collector_plugin fr_collector_libvirt = {
    .abi = FR_PLUGIN_ABI,
    .name = "libvirt",
    .version = 1,
    .description = "libvirt domains: CPU, vCPU, memory, disk and network statistics",
    .ns_prefix = "/intel/libvirt",
    .catalog = lv_catalog,
    .ncatalog = LV_NCATALOG,
    .policy = lv_policy,
    .npolicy = sizeof(lv_policy) / sizeof(lv_policy[0]),
    .config_size = sizeof(lv_config),
    .init = lv_init,
    .collect = lv_collect,
    .destroy = lv_destroy,
};

/* ---- test hooks (libvirt_plugin.h) ------------------------------------ */

virConnectPtr libvirt_plugin_connection(void *state)
{
    return state != NULL ? ((lv_state *)state)->conn : NULL;
}

void libvirt_plugin_set_stats_fn(void *state, libvirt_plugin_stats_fn fn)
{
    lv_state *s = state;
    s->stats_fn = fn;
    bulk_reset(s);
}

void libvirt_plugin_get_counters(void *state, libvirt_plugin_counters *out)
{
    *out = ((lv_state *)state)->counters;
}
