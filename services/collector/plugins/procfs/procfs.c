/* procfs: the host's load, cpu, memory, vmstat, network and disk counters
 * from procfs, under the names of snap's procfs plugins (/intel/procfs/...)
 * and, so that snap psutil tasks run unchanged, under psutil's
 * (/intel/psutil/...). docs/plugins/procfs.md lists every namespace.
 *
 * Cost of a tick: each file some requested namespace needs is read with
 * pread() from offset 0 on a descriptor kept open (procfs regenerates the
 * file on such a read) into a buffer reused between ticks, then parsed in
 * place. Namespaces are built in a stack buffer and matched against the
 * query before anything is copied into the batch; a whole file is skipped
 * when no query could want it.
 *
 * Rates and percentages come from the previous tick's counters, kept per
 * cpu and per disk by name, and the tick times the collector passes in
 * (req->now_ns); nothing sleeps. Devices are listed afresh on every tick, so
 * a new cpu, interface or disk shows up on the next one. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fresco/plugin.h"

#define PROCFS_NS_MAX      512
#define PROCFS_NAME_MAX    48
#define PROCFS_BUF_INITIAL 16384
#define PROCFS_BUF_MAX     (64u << 20) /* far above any /proc file we read */
#define PROCFS_FIELDS_MAX  17          /* /proc/diskstats has the most */
#define PROCFS_MOUNTS_MAX  1024        /* mount points deduplicated per tick */
#define PROCFS_FSTYPES_MAX 128

/* ---- config ----------------------------------------------------------- */

typedef struct procfs_config {
    char *proc_path;
    fr_strlist mount_points;
} procfs_config;

static const fr_cfg_field procfs_policy[] = {
    {.key = "proc_path",
     .type = FR_CFG_STRING,
     .def = "/proc",
     .offset = offsetof(procfs_config, proc_path),
     .help = "where procfs is mounted (the host's /proc inside a container, or test fixtures)"},
    {.key = "mount_points",
     .type = FR_CFG_LIST,
     .def = "physical",
     .offset = offsetof(procfs_config, mount_points),
     .help = "file systems for /intel/psutil/disk: physical (those on block devices), all, "
             "and/or mount point paths"},
};

/* ---- catalog ---------------------------------------------------------- */

static const fr_dyn_info dyn_cpu[] = {
    {"cpu", "CPU number as in /proc/stat (0, 1, ...), or all for the sum over CPUs"}};
static const fr_dyn_info dyn_psutil_cpu[] = {{"cpu", "cpuN, or cpu-total for the sum over CPUs"}};
static const fr_dyn_info dyn_meminfo[] = {
    {"field", "a /proc/meminfo field this catalog does not list yet, as the kernel names it"}};
static const fr_dyn_info dyn_vmstat[] = {
    {"counter", "a /proc/vmstat counter, as the file names it"}};
static const fr_dyn_info dyn_iface[] = {{"interface", "network interface as in /proc/net/dev"}};
static const fr_dyn_info dyn_psutil_iface[] = {
    {"interface", "network interface as in /proc/net/dev, or all for the sum over interfaces"}};
static const fr_dyn_info dyn_disk[] = {
    {"device", "block device as in /proc/diskstats (sda, sda1, nvme0n1, ...)"}};
static const fr_dyn_info dyn_mount[] = {
    {"mount_point", "mount point: root for /, otherwise the path without its leading / and "
                    "with - for the others; the path itself is in the tag mount_point"}};

#define M_(ns_, type_, unit_, desc_)                                                               \
    {                                                                                              \
        .ns = (ns_), .type = (type_), .unit = (unit_), .description = (desc_)                      \
    }
#define MD_(ns_, type_, unit_, desc_, dyn_)                                                        \
    {                                                                                              \
        .ns = (ns_), .type = (type_), .unit = (unit_), .description = (desc_), .dyn = (dyn_),      \
        .ndyn = 1                                                                                  \
    }

#define D_USER       "time in user mode (guest time included)"
#define D_NICE       "time in user mode at low priority (guest_nice included)"
#define D_SYSTEM     "time in system mode"
#define D_IDLE       "time in the idle task"
#define D_IOWAIT     "time idle while waiting for I/O"
#define D_IRQ        "time servicing interrupts"
#define D_SOFTIRQ    "time servicing softirqs"
#define D_STEAL      "stolen time: spent in other guests while running virtualised"
#define D_GUEST      "time running a virtual CPU for guests"
#define D_GUEST_NICE "time running a niced guest"
#define D_ACTIVE     "time not idle (total minus idle)"
#define D_UTIL       "time neither idle nor in iowait (total minus idle minus iowait)"

#define CPU_J(f, d) MD_("/intel/procfs/cpu/*/" f "_jiffies", FR_VAL_UINT64, "jiffies", d, dyn_cpu)
#define CPU_P(f, d)                                                                                \
    MD_("/intel/procfs/cpu/*/" f "_percentage", FR_VAL_DOUBLE, "percent",                          \
        d ", as a share of all cpu time since the previous tick", dyn_cpu)
#define PS_CPU(f, d) MD_("/intel/psutil/cpu/*/" f, FR_VAL_DOUBLE, "s", d, dyn_psutil_cpu)

/* A byte-valued /proc/meminfo field, and the same as a share of MemTotal. */
#define MEM_B(n, d)                                                                                \
    M_("/intel/procfs/meminfo/" n, FR_VAL_UINT64, "bytes", d),                                     \
        M_("/intel/procfs/meminfo/" n "_perc", FR_VAL_DOUBLE, "percent", d ", as % of MemTotal")
#define MEM_N(n, d) M_("/intel/procfs/meminfo/" n, FR_VAL_UINT64, "", d)
#define PS_VM(n, d) M_("/intel/psutil/vm/" n, FR_VAL_UINT64, "bytes", d)

#define IFACE(f, u, d)  MD_("/intel/procfs/iface/*/" f, FR_VAL_UINT64, u, d, dyn_iface)
#define PS_NET(f, u, d) MD_("/intel/psutil/net/*/" f, FR_VAL_UINT64, u, d, dyn_psutil_iface)
#define DISK(f, u, d)   MD_("/intel/procfs/disk/*/" f, FR_VAL_UINT64, u, d, dyn_disk)
#define DISK_R(f, u, d)                                                                            \
    MD_("/intel/procfs/disk/*/" f, FR_VAL_DOUBLE, u, d " since the previous tick", dyn_disk)
#define PS_DISK(f, t, u, d) MD_("/intel/psutil/disk/*/" f, t, u, d, dyn_mount)

static const fr_metric_info procfs_catalog[] = {
    /* /proc/loadavg */
    M_("/intel/procfs/load/min1", FR_VAL_DOUBLE, "", "load average over 1 minute"),
    M_("/intel/procfs/load/min5", FR_VAL_DOUBLE, "", "load average over 5 minutes"),
    M_("/intel/procfs/load/min15", FR_VAL_DOUBLE, "", "load average over 15 minutes"),
    M_("/intel/procfs/load/min1_rel", FR_VAL_DOUBLE, "", "load average over 1 minute per CPU"),
    M_("/intel/procfs/load/min5_rel", FR_VAL_DOUBLE, "", "load average over 5 minutes per CPU"),
    M_("/intel/procfs/load/min15_rel", FR_VAL_DOUBLE, "", "load average over 15 minutes per CPU"),
    M_("/intel/procfs/load/runnable_scheduling", FR_VAL_UINT64, "",
       "kernel scheduling entities (processes, threads) currently runnable"),
    M_("/intel/procfs/load/existing_scheduling", FR_VAL_UINT64, "",
       "kernel scheduling entities that currently exist"),
    M_("/intel/psutil/load/load1", FR_VAL_DOUBLE, "", "load average over 1 minute"),
    M_("/intel/psutil/load/load5", FR_VAL_DOUBLE, "", "load average over 5 minutes"),
    M_("/intel/psutil/load/load15", FR_VAL_DOUBLE, "", "load average over 15 minutes"),

    /* /proc/stat: cpu lines */
    CPU_J("user", D_USER),
    CPU_J("nice", D_NICE),
    CPU_J("system", D_SYSTEM),
    CPU_J("idle", D_IDLE),
    CPU_J("iowait", D_IOWAIT),
    CPU_J("irq", D_IRQ),
    CPU_J("softirq", D_SOFTIRQ),
    CPU_J("steal", D_STEAL),
    CPU_J("guest", D_GUEST),
    CPU_J("guest_nice", D_GUEST_NICE),
    CPU_J("active", D_ACTIVE),
    CPU_J("utilization", D_UTIL),
    CPU_P("user", D_USER),
    CPU_P("nice", D_NICE),
    CPU_P("system", D_SYSTEM),
    CPU_P("idle", D_IDLE),
    CPU_P("iowait", D_IOWAIT),
    CPU_P("irq", D_IRQ),
    CPU_P("softirq", D_SOFTIRQ),
    CPU_P("steal", D_STEAL),
    CPU_P("guest", D_GUEST),
    CPU_P("guest_nice", D_GUEST_NICE),
    CPU_P("active", D_ACTIVE),
    CPU_P("utilization", D_UTIL),
    PS_CPU("user", D_USER),
    PS_CPU("nice", D_NICE),
    PS_CPU("system", D_SYSTEM),
    PS_CPU("idle", D_IDLE),
    PS_CPU("iowait", D_IOWAIT),
    PS_CPU("irq", D_IRQ),
    PS_CPU("softirq", D_SOFTIRQ),
    PS_CPU("steal", D_STEAL),
    PS_CPU("stolen", D_STEAL " (psutil's second name for steal)"),
    PS_CPU("guest", D_GUEST),
    PS_CPU("guest_nice", D_GUEST_NICE),

    /* /proc/stat: the other lines */
    M_("/intel/procfs/stat/ctxt", FR_VAL_UINT64, "", "context switches since boot"),
    M_("/intel/procfs/stat/btime", FR_VAL_UINT64, "s", "boot time, seconds since the epoch"),
    M_("/intel/procfs/stat/processes", FR_VAL_UINT64, "", "forks since boot"),
    M_("/intel/procfs/stat/procs_running", FR_VAL_UINT64, "", "runnable threads"),
    M_("/intel/procfs/stat/procs_blocked", FR_VAL_UINT64, "", "threads blocked on I/O"),
    M_("/intel/procfs/stat/intr", FR_VAL_UINT64, "", "interrupts serviced since boot"),
    M_("/intel/procfs/stat/softirq", FR_VAL_UINT64, "", "softirqs serviced since boot"),

    /* /proc/meminfo */
    MEM_B("MemTotal", "usable RAM"),
    MEM_B("MemFree", "RAM left unused"),
    MEM_B("MemAvailable", "estimate of memory available to start applications without swapping"),
    MEM_B("MemUsed", "MemTotal - (MemFree + Buffers + Cached + Slab)"),
    MEM_B("Buffers", "block device buffers"),
    MEM_B("Cached", "page cache, swap cache excluded"),
    MEM_B("SwapCached", "memory swapped out and back in, still in the swap file"),
    MEM_B("Active", "memory used recently, not reclaimed unless needed"),
    MEM_B("Inactive", "memory not used recently, first to be reclaimed"),
    MEM_B("Active_anon", "anonymous memory used recently (Active(anon))"),
    MEM_B("Inactive_anon", "anonymous memory not used recently (Inactive(anon))"),
    MEM_B("Active_file", "page cache used recently (Active(file))"),
    MEM_B("Inactive_file", "page cache not used recently (Inactive(file))"),
    MEM_B("Unevictable", "memory that cannot be reclaimed (mlocked, ramfs, ...)"),
    MEM_B("Mlocked", "memory locked with mlock()"),
    MEM_B("HighTotal", "high memory (32-bit kernels)"),
    MEM_B("HighFree", "free high memory (32-bit kernels)"),
    MEM_B("LowTotal", "low memory (32-bit kernels)"),
    MEM_B("LowFree", "free low memory (32-bit kernels)"),
    MEM_B("MmapCopy", "memory used to map files (no-MMU kernels)"),
    MEM_B("SwapTotal", "swap space"),
    MEM_B("SwapFree", "unused swap space"),
    MEM_B("Zswap", "memory used by the zswap backend"),
    MEM_B("Zswapped", "anonymous memory stored in zswap, uncompressed size"),
    MEM_B("Dirty", "memory waiting to be written back to disk"),
    MEM_B("Writeback", "memory being written back to disk"),
    MEM_B("AnonPages", "anonymous pages mapped into user page tables"),
    MEM_B("Mapped", "files mapped into memory"),
    MEM_B("Shmem", "shared memory and tmpfs"),
    MEM_B("KReclaimable", "kernel allocations reclaimable under pressure"),
    MEM_B("Slab", "kernel slab caches"),
    MEM_B("SReclaimable", "reclaimable part of Slab"),
    MEM_B("SUnreclaim", "unreclaimable part of Slab"),
    MEM_B("KernelStack", "kernel stacks"),
    MEM_B("ShadowCallStack", "shadow call stacks"),
    MEM_B("PageTables", "lowest-level page tables"),
    MEM_B("SecPageTables", "secondary page tables (KVM, IOMMU)"),
    MEM_B("NFS_Unstable", "NFS pages sent to the server but not yet committed"),
    MEM_B("Bounce", "block device bounce buffers"),
    MEM_B("WritebackTmp", "FUSE temporary writeback buffers"),
    MEM_B("CommitLimit", "memory that can be allocated under the overcommit policy"),
    MEM_B("Committed_AS", "memory currently committed to allocations"),
    MEM_B("VmallocTotal", "vmalloc address space"),
    MEM_B("VmallocUsed", "vmalloc space in use"),
    MEM_B("VmallocChunk", "largest free vmalloc block"),
    MEM_B("Percpu", "per-cpu allocator"),
    MEM_B("HardwareCorrupted", "memory the kernel found corrupted (ECC)"),
    MEM_B("AnonHugePages", "anonymous transparent huge pages"),
    MEM_B("ShmemHugePages", "shared memory and tmpfs in huge pages"),
    MEM_B("ShmemPmdMapped", "shared memory mapped into user space with huge pages"),
    MEM_B("FileHugePages", "page cache in huge pages"),
    MEM_B("FilePmdMapped", "page cache mapped into user space with huge pages"),
    MEM_B("CmaTotal", "contiguous memory allocator pages"),
    MEM_B("CmaFree", "free contiguous memory allocator pages"),
    MEM_B("Unaccepted", "memory not yet accepted by a confidential guest"),
    MEM_B("Balloon", "memory returned to the host by the balloon driver"),
    MEM_B("Quicklists", "page table quicklists (old kernels)"),
    MEM_N("HugePages_Total", "huge pages in the pool"),
    MEM_N("HugePages_Free", "huge pages in the pool not yet allocated"),
    MEM_N("HugePages_Rsvd", "huge pages committed to but not yet allocated"),
    MEM_N("HugePages_Surp", "huge pages above /proc/sys/vm/nr_hugepages"),
    MEM_B("Hugepagesize", "default huge page size"),
    MEM_B("Hugetlb", "memory used by huge pages of all sizes"),
    MEM_B("DirectMap4k", "kernel direct map in 4 kB pages"),
    MEM_B("DirectMap4M", "kernel direct map in 4 MB pages"),
    MEM_B("DirectMap2M", "kernel direct map in 2 MB pages"),
    MEM_B("DirectMap1G", "kernel direct map in 1 GB pages"),
    MD_("/intel/procfs/meminfo/*", FR_VAL_UINT64, "bytes",
        "a field newer than this catalog: bytes when the kernel gives kB, else a count",
        dyn_meminfo),
    PS_VM("total", "usable RAM (MemTotal)"),
    PS_VM("available", "MemAvailable; MemFree + Buffers + Cached on kernels without it"),
    PS_VM("used", "MemTotal - MemFree - Buffers - Cached"),
    M_("/intel/psutil/vm/used_percent", FR_VAL_DOUBLE, "percent",
       "(total - available) / total * 100"),
    PS_VM("free", "RAM left unused (MemFree)"),
    PS_VM("active", "memory used recently (Active)"),
    PS_VM("inactive", "memory not used recently (Inactive)"),
    PS_VM("buffers", "block device buffers (Buffers)"),
    PS_VM("cached", "page cache (Cached)"),
    PS_VM("wired", "always 0 on Linux: a BSD/macOS figure, offered so that psutil tasks load"),

    /* /proc/vmstat */
    MD_("/intel/procfs/vmstat/*", FR_VAL_UINT64, "",
        "a /proc/vmstat counter (pages or events, as the kernel counts it)", dyn_vmstat),

    /* /proc/net/dev */
    IFACE("bytes_recv", "bytes", "bytes received"),
    IFACE("packets_recv", "", "packets received"),
    IFACE("errs_recv", "", "receive errors detected by the driver"),
    IFACE("drop_recv", "", "received packets dropped"),
    IFACE("fifo_recv", "", "receive FIFO buffer errors (overruns)"),
    IFACE("frame_recv", "", "receive framing errors"),
    IFACE("compressed_recv", "", "compressed packets received"),
    IFACE("multicast_recv", "", "multicast frames received"),
    IFACE("bytes_sent", "bytes", "bytes transmitted"),
    IFACE("packets_sent", "", "packets transmitted"),
    IFACE("errs_sent", "", "transmit errors detected by the driver"),
    IFACE("drop_sent", "", "transmitted packets dropped"),
    IFACE("fifo_sent", "", "transmit FIFO buffer errors"),
    IFACE("colls_sent", "", "collisions detected while transmitting"),
    IFACE("carrier_sent", "", "carrier losses detected while transmitting"),
    IFACE("compressed_sent", "", "compressed packets transmitted"),
    PS_NET("bytes_sent", "bytes", "bytes transmitted"),
    PS_NET("bytes_recv", "bytes", "bytes received"),
    PS_NET("packets_sent", "", "packets transmitted"),
    PS_NET("packets_recv", "", "packets received"),
    PS_NET("errin", "", "receive errors"),
    PS_NET("errout", "", "transmit errors"),
    PS_NET("dropin", "", "received packets dropped"),
    PS_NET("dropout", "", "transmitted packets dropped"),

    /* /proc/diskstats: every field as the kernel counts it */
    DISK("reads", "", "reads completed"),
    DISK("reads_merged", "", "reads merged with one already queued"),
    DISK("sectors_read", "sectors", "512-byte sectors read"),
    DISK("read_ms", "ms", "time spent reading"),
    DISK("writes", "", "writes completed"),
    DISK("writes_merged", "", "writes merged with one already queued"),
    DISK("sectors_written", "sectors", "512-byte sectors written"),
    DISK("write_ms", "ms", "time spent writing"),
    DISK("pending_ops", "", "I/Os currently in progress"),
    DISK("io_ms", "ms", "time spent doing I/Os"),
    DISK("weighted_io_ms", "ms", "time spent doing I/Os, weighted by the I/Os in progress"),
    DISK("discards", "", "discards completed (kernel 4.18+)"),
    DISK("discards_merged", "", "discards merged (kernel 4.18+)"),
    DISK("sectors_discarded", "sectors", "512-byte sectors discarded (kernel 4.18+)"),
    DISK("discard_ms", "ms", "time spent discarding (kernel 4.18+)"),
    DISK("flushes", "", "flush requests completed (kernel 5.5+)"),
    DISK("flush_ms", "ms", "time spent flushing (kernel 5.5+)"),
    /* ... and snap's disk plugin's rates */
    DISK_R("ops_read", "1/s", "reads completed per second"),
    DISK_R("ops_write", "1/s", "writes completed per second"),
    DISK_R("octets_read", "bytes/s", "bytes read per second"),
    DISK_R("octets_write", "bytes/s", "bytes written per second"),
    DISK_R("merged_read", "1/s", "reads merged per second"),
    DISK_R("merged_write", "1/s", "writes merged per second"),
    DISK_R("time_read", "ms", "average time of a read"),
    DISK_R("time_write", "ms", "average time of a write"),
    DISK_R("io_time", "ms/s", "time spent doing I/Os per second"),
    DISK_R("weighted_io_time", "ms/s", "weighted time spent doing I/Os per second"),

    /* statvfs() of the mount points in /proc/mounts */
    PS_DISK("total", FR_VAL_UINT64, "bytes", "size of the file system"),
    PS_DISK("used", FR_VAL_UINT64, "bytes", "space in use"),
    PS_DISK("free", FR_VAL_UINT64, "bytes", "space free for unprivileged users"),
    PS_DISK("percent", FR_VAL_DOUBLE, "percent", "used / (used + free) * 100"),
};

/* ---- file fields ------------------------------------------------------ */

enum {
    CPU_USER,
    CPU_NICE,
    CPU_SYSTEM,
    CPU_IDLE,
    CPU_IOWAIT,
    CPU_IRQ,
    CPU_SOFTIRQ,
    CPU_STEAL,
    CPU_GUEST,
    CPU_GUEST_NICE,
    CPU_NFIELDS
};
static const char *const cpu_field[CPU_NFIELDS] = {
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice"};
static const char *const cpu_jiffies_leaf[CPU_NFIELDS] = {
    "user_jiffies", "nice_jiffies",    "system_jiffies", "idle_jiffies",  "iowait_jiffies",
    "irq_jiffies",  "softirq_jiffies", "steal_jiffies",  "guest_jiffies", "guest_nice_jiffies"};
static const char *const cpu_pct_leaf[CPU_NFIELDS] = {
    "user_percentage",   "nice_percentage",      "system_percentage",  "idle_percentage",
    "iowait_percentage", "irq_percentage",       "softirq_percentage", "steal_percentage",
    "guest_percentage",  "guest_nice_percentage"};

static const char *const stat_key[] = {"ctxt",          "btime", "processes", "procs_running",
                                       "procs_blocked", "intr",  "softirq"};

enum {
    NET_RX_BYTES,
    NET_RX_PACKETS,
    NET_RX_ERRS,
    NET_RX_DROP,
    NET_TX_BYTES = 8,
    NET_TX_PACKETS,
    NET_TX_ERRS,
    NET_TX_DROP,
    NET_NFIELDS = 16
};
static const char *const net_field[NET_NFIELDS] = {
    "bytes_recv", "packets_recv", "errs_recv",       "drop_recv",
    "fifo_recv",  "frame_recv",   "compressed_recv", "multicast_recv",
    "bytes_sent", "packets_sent", "errs_sent",       "drop_sent",
    "fifo_sent",  "colls_sent",   "carrier_sent",    "compressed_sent"};
static const char *const net_unit[NET_NFIELDS] = {"bytes", "", "", "", "", "", "", "",
                                                  "bytes", "", "", "", "", "", "", ""};

enum {
    DISK_READS,
    DISK_READS_MERGED,
    DISK_SECTORS_READ,
    DISK_READ_MS,
    DISK_WRITES,
    DISK_WRITES_MERGED,
    DISK_SECTORS_WRITTEN,
    DISK_WRITE_MS,
    DISK_PENDING,
    DISK_IO_MS,
    DISK_WEIGHTED_IO_MS,
    DISK_NFIELDS = 17,
    DISK_NREQUIRED = 11 /* fields every 2.6+ kernel gives */
};
static const char *const disk_field[DISK_NFIELDS] = {
    "reads",          "reads_merged",    "sectors_read",    "read_ms",           "writes",
    "writes_merged",  "sectors_written", "write_ms",        "pending_ops",       "io_ms",
    "weighted_io_ms", "discards",        "discards_merged", "sectors_discarded", "discard_ms",
    "flushes",        "flush_ms"};
static const char *const disk_unit[DISK_NFIELDS] = {"",        "",        "sectors", "ms", "",   "",
                                                    "sectors", "ms",      "",        "ms", "ms", "",
                                                    "",        "sectors", "ms",      "",   "ms"};

enum {
    SRC_LOADAVG,
    SRC_STAT,
    SRC_MEMINFO,
    SRC_VMSTAT,
    SRC_NETDEV,
    SRC_DISKSTATS,
    SRC_MOUNTS,
    SRC_FILESYSTEMS,
    SRC_COUNT
};
static const char *const src_name[SRC_COUNT] = {"loadavg", "stat",      "meminfo", "vmstat",
                                                "net/dev", "diskstats", "mounts",  "filesystems"};

/* ---- state ------------------------------------------------------------ */

typedef struct text_buf {
    char *p;
    size_t cap;
} text_buf;

typedef struct src_file {
    char *path;
    int fd; /* kept open between ticks; -1 when closed */
} src_file;

/* One device's counters as read on a tick. */
typedef struct counters {
    char name[PROCFS_NAME_MAX];
    uint32_t nf;
    uint64_t v[PROCFS_FIELDS_MAX];
} counters;

/* The counters of this tick and of the previous one, swapped at the end of
 * a tick, so that rates need no allocation once the device count settles
 * and devices that vanish are simply not carried over. */
typedef struct counter_set {
    counters *cur, *prev;
    size_t ncur, nprev, capcur, capprev;
    int64_t prev_ts; /* tick time of prev; 0 before the first */
} counter_set;

typedef struct procfs {
    const procfs_config *cfg;
    src_file src[SRC_COUNT];
    text_buf buf;   /* the file being parsed */
    text_buf fsbuf; /* /proc/filesystems, kept while /proc/mounts is parsed */
    counter_set cpus, disks;
    double hz; /* USER_HZ: jiffies per second */
    bool mounts_all, mounts_physical;
} procfs;

/* What the query wants, worked out once per tick. */
typedef struct wants {
    bool load, psutil_load, load_rel;
    bool cpu, psutil_cpu, stat;
    bool meminfo, psutil_vm, vmstat;
    bool iface, psutil_net;
    bool disk, psutil_disk;
} wants;

/* One collect() call. */
typedef struct tick {
    procfs *st;
    const fr_ns_query *q;
    fr_batch *out;
    int64_t now;
    fr_error *err;
    int rv; /* first failure; FR_ENOMEM stops the tick */
    wants want;
    unsigned ncpu; /* cpuN lines in /proc/stat this tick */
    char ns[PROCFS_NS_MAX];
    size_t len;
} tick;

/* ---- failures --------------------------------------------------------- */

static void tick_fail(tick *t, int code, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Records a failure; the first one is what the task reports, and the tick
 * goes on so that the other files still deliver. */
static void tick_fail(tick *t, int code, const char *where, const char *fmt, ...)
{
    if (t->rv != 0) {
        return;
    }
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    t->rv = fr_error_set(t->err, code, where, "procfs: %s", msg);
}

static void tick_oom(tick *t)
{
    t->rv = fr_error_set(t->err, FR_ENOMEM, NULL, "procfs: out of memory");
}

static void line_fail(tick *t, int src, unsigned lineno, const char *line)
{
    char where[160];
    snprintf(where, sizeof(where), "%s:%u", t->st->src[src].path, lineno);
    tick_fail(t, FR_EPROTO, where, "%s line %u is malformed: '%.60s'", t->st->src[src].path, lineno,
              line);
}

/* ---- reading ---------------------------------------------------------- */

static bool buf_grow(text_buf *b)
{
    size_t cap = b->cap != 0 ? b->cap * 2 : PROCFS_BUF_INITIAL;
    if (cap > PROCFS_BUF_MAX) {
        return false;
    }
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

/* Reads the whole file into b (NUL-terminated) and returns its text, or
 * NULL with the failure recorded. Multi-record proc files (net/dev,
 * diskstats) come a page or so per read, hence the loop to end of file. */
static char *src_read(tick *t, int which, text_buf *b)
{
    src_file *f = &t->st->src[which];
    for (int attempt = 0; attempt < 2; attempt++) {
        if (f->fd < 0) {
            f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
            if (f->fd < 0) {
                int e = errno;
                tick_fail(t, e == ENOENT ? FR_ENOTFOUND : FR_EIO, f->path, "cannot open %s: %s",
                          f->path, strerror(e));
                return NULL;
            }
        }
        size_t n = 0;
        int e = 0;
        for (;;) {
            if (b->cap - n < 2 && !buf_grow(b)) {
                tick_fail(t, FR_ETOOBIG, f->path, "%s is larger than %u bytes", f->path,
                          PROCFS_BUF_MAX);
                return NULL;
            }
            ssize_t r = pread(f->fd, b->p + n, b->cap - 1 - n, (off_t)n);
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                e = r < 0 ? errno : 0;
                break;
            }
            n += (size_t)r;
        }
        if (e == 0) {
            b->p[n] = '\0';
            return b->p;
        }
        /* A descriptor can go stale (a device file that was removed and
         * recreated): open the path again once. */
        close(f->fd);
        f->fd = -1;
        if (attempt == 1) {
            tick_fail(t, FR_EIO, f->path, "cannot read %s: %s", f->path, strerror(e));
        }
    }
    return NULL;
}

/* The next line of text at *cur, NUL-terminated in place; NULL at the end. */
static char *line_next(char **cur)
{
    char *s = *cur;
    if (*s == '\0') {
        return NULL;
    }
    char *nl = strchr(s, '\n');
    if (nl != NULL) {
        *nl = '\0';
        *cur = nl + 1;
    } else {
        *cur = s + strlen(s);
    }
    return s;
}

static const char *skip_blank(const char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return p;
}

static bool is_end(char c)
{
    return c == '\0' || c == ' ' || c == '\t' || c == '\n';
}

/* An unsigned decimal after optional blanks, ending at a blank, the end of
 * the line or `stop` (0 for none). False when absent, malformed or over
 * 64 bits. */
static bool take_u64(const char **pp, uint64_t *out, char stop)
{
    const char *p = skip_blank(*pp);
    if (*p < '0' || *p > '9') {
        return false;
    }
    uint64_t v = 0;
    do {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
        p++;
    } while (*p >= '0' && *p <= '9');
    if (!is_end(*p) && (stop == 0 || *p != stop)) {
        return false;
    }
    *pp = p;
    *out = v;
    return true;
}

/* A non-negative decimal with an optional fraction ("2.58"), without
 * strtod(), whose decimal point would follow the locale. */
static bool take_fixed(const char **pp, double *out)
{
    const char *p = skip_blank(*pp);
    uint64_t ip;
    if (*p < '0' || *p > '9') {
        return false;
    }
    const char *q = p;
    while (*q >= '0' && *q <= '9') {
        q++;
    }
    if (*q != '.') {
        if (!take_u64(&p, &ip, 0)) {
            return false;
        }
        *pp = p;
        *out = (double)ip;
        return true;
    }
    ip = 0;
    for (; *p != '.'; p++) {
        if (ip > UINT64_MAX / 10 - 9) {
            return false;
        }
        ip = ip * 10 + (uint64_t)(*p - '0');
    }
    p++;
    double frac = 0, scale = 1;
    while (*p >= '0' && *p <= '9') {
        if (scale < 1e18) {
            frac = frac * 10 + (*p - '0');
            scale *= 10;
        }
        p++;
    }
    if (!is_end(*p)) {
        return false;
    }
    *pp = p;
    *out = (double)ip + frac / scale;
    return true;
}

/* The next blank-separated word; its length in *len. NULL at the end. */
static const char *take_word(const char **pp, size_t *len)
{
    const char *p = skip_blank(*pp);
    const char *s = p;
    while (!is_end(*p)) {
        p++;
    }
    *len = (size_t)(p - s);
    *pp = p;
    return *len != 0 ? s : NULL;
}

/* Reads up to max unsigned fields; returns how many, or -1 when a field
 * is not a number. */
static int take_fields(const char *p, uint64_t *v, int max)
{
    int n = 0;
    for (;;) {
        p = skip_blank(p);
        if (*p == '\0') {
            return n;
        }
        if (n == max) {
            return n; /* columns a newer kernel added */
        }
        if (!take_u64(&p, &v[n], 0)) {
            return -1;
        }
        n++;
    }
}

/* ---- counter sets ----------------------------------------------------- */

static counters *cset_slot(counter_set *s)
{
    if (s->ncur == s->capcur) {
        size_t cap = s->capcur != 0 ? s->capcur * 2 : 16;
        counters *v = realloc(s->cur, cap * sizeof(*v));
        if (v == NULL) {
            return NULL;
        }
        s->cur = v;
        s->capcur = cap;
    }
    return &s->cur[s->ncur++];
}

/* The previous tick's counters for name. Files list devices in a stable
 * order, so position pos is tried first. */
static const counters *cset_prev(const counter_set *s, const char *name, size_t pos)
{
    if (pos < s->nprev && strcmp(s->prev[pos].name, name) == 0) {
        return &s->prev[pos];
    }
    for (size_t i = 0; i < s->nprev; i++) {
        if (strcmp(s->prev[i].name, name) == 0) {
            return &s->prev[i];
        }
    }
    return NULL;
}

static void cset_commit(counter_set *s, int64_t now)
{
    counters *v = s->prev;
    size_t cap = s->capprev;
    s->prev = s->cur;
    s->capprev = s->capcur;
    s->nprev = s->ncur;
    s->cur = v;
    s->capcur = cap;
    s->ncur = 0;
    s->prev_ts = now;
}

static void cset_free(counter_set *s)
{
    free(s->cur);
    free(s->prev);
}

/* Stores a device's counters for the next tick and finds its previous
 * ones. A name too long to keep just gets no rates. */
static counters *cset_record(tick *t, counter_set *s, const char *name, size_t nlen,
                             const uint64_t *v, int nf, const counters **prev)
{
    *prev = NULL;
    if (nlen >= PROCFS_NAME_MAX) {
        return NULL;
    }
    counters *c = cset_slot(s);
    if (c == NULL) {
        tick_oom(t);
        return NULL;
    }
    memcpy(c->name, name, nlen);
    c->name[nlen] = '\0';
    c->nf = (uint32_t)nf;
    memcpy(c->v, v, (size_t)nf * sizeof(*v));
    const counters *p = cset_prev(s, c->name, s->ncur - 1);
    if (p != NULL && p->nf == c->nf) {
        *prev = p;
    }
    return c;
}

/* Differences cur - prev; false when a counter went back (the device was
 * reset or replaced), which leaves no meaningful rate this tick. */
static bool deltas(const uint64_t *cur, const uint64_t *prev, int n, uint64_t *d)
{
    for (int i = 0; i < n; i++) {
        if (cur[i] < prev[i]) {
            return false;
        }
        d[i] = cur[i] - prev[i];
    }
    return true;
}

/* ---- namespaces and emitting ------------------------------------------ */

static void ns_set(tick *t, const char *prefix)
{
    size_t n = strlen(prefix);
    memcpy(t->ns, prefix, n + 1);
    t->len = n;
}

/* Appends "/el"; false when it would not fit (then nothing changes). */
static bool ns_push(tick *t, const char *el, size_t n)
{
    if (n == 0 || t->len + 1 + n >= sizeof(t->ns)) {
        return false;
    }
    t->ns[t->len] = '/';
    memcpy(t->ns + t->len + 1, el, n);
    t->len += 1 + n;
    t->ns[t->len] = '\0';
    return true;
}

static void ns_pop(tick *t, size_t len)
{
    t->len = len;
    t->ns[len] = '\0';
}

static bool ns_wanted(const tick *t)
{
    return fr_ns_query_wants_prefix(t->q, t->ns);
}

static fr_metric *put(tick *t, const char *leaf, fr_value v, const char *unit)
{
    if (t->rv == FR_ENOMEM) {
        return NULL;
    }
    size_t keep = t->len;
    fr_metric *m = NULL;
    if (ns_push(t, leaf, strlen(leaf)) && fr_ns_query_match(t->q, t->ns)) {
        m = fr_batch_add(t->out, t->ns, t->now, v, unit);
        if (m == NULL) {
            tick_oom(t);
        }
    }
    ns_pop(t, keep);
    return m;
}

static void put_u64(tick *t, const char *leaf, uint64_t v, const char *unit)
{
    put(t, leaf, fr_val_u64(v), unit);
}

static void put_f64(tick *t, const char *leaf, double v, const char *unit)
{
    put(t, leaf, fr_val_f64(v), unit);
}

/* ---- /proc/stat ------------------------------------------------------- */

static void cpu_emit(tick *t, const char *name, size_t nlen, const counters *c,
                     const counters *prev, int64_t dt_ns)
{
    procfs *st = t->st;
    const uint64_t *v = c->v;
    int nf = (int)c->nf;
    bool total = nlen == 3; /* "cpu" */
    uint64_t all = 0;
    for (int i = 0; i < nf && i < CPU_GUEST; i++) {
        all += v[i]; /* guest time is already inside user and nice */
    }
    uint64_t idle = v[CPU_IDLE];
    uint64_t iowait = nf > CPU_IOWAIT ? v[CPU_IOWAIT] : 0;

    if (t->want.cpu) {
        ns_set(t, "/intel/procfs/cpu");
        const char *id = total ? "all" : name + 3;
        if (ns_push(t, id, total ? 3 : nlen - 3) && ns_wanted(t)) {
            for (int i = 0; i < nf; i++) {
                put_u64(t, cpu_jiffies_leaf[i], v[i], "jiffies");
            }
            put_u64(t, "active_jiffies", all - idle, "jiffies");
            put_u64(t, "utilization_jiffies", all - idle - iowait, "jiffies");
            uint64_t d[CPU_NFIELDS];
            if (prev != NULL && dt_ns > 0 && deltas(v, prev->v, nf, d)) {
                uint64_t dall = 0;
                for (int i = 0; i < nf && i < CPU_GUEST; i++) {
                    dall += d[i];
                }
                if (dall > 0) {
                    double k = 100.0 / (double)dall;
                    uint64_t dio = nf > CPU_IOWAIT ? d[CPU_IOWAIT] : 0;
                    for (int i = 0; i < nf; i++) {
                        put_f64(t, cpu_pct_leaf[i], (double)d[i] * k, "percent");
                    }
                    put_f64(t, "active_percentage", (double)(dall - d[CPU_IDLE]) * k, "percent");
                    put_f64(t, "utilization_percentage", (double)(dall - d[CPU_IDLE] - dio) * k,
                            "percent");
                }
            }
        }
    }
    if (t->want.psutil_cpu) {
        ns_set(t, "/intel/psutil/cpu");
        if (ns_push(t, total ? "cpu-total" : name, total ? 9 : nlen) && ns_wanted(t)) {
            for (int i = 0; i < nf; i++) {
                put_f64(t, cpu_field[i], (double)v[i] / st->hz, "s");
            }
            if (nf > CPU_STEAL) {
                put_f64(t, "stolen", (double)v[CPU_STEAL] / st->hz, "s");
            }
        }
    }
}

static void stat_read(tick *t)
{
    procfs *st = t->st;
    char *cur = src_read(t, SRC_STAT, &st->buf);
    if (cur == NULL) {
        return;
    }
    int64_t dt = st->cpus.prev_ts != 0 ? t->now - st->cpus.prev_ts : 0;
    st->cpus.ncur = 0;
    unsigned lineno = 0;
    char *line;
    while ((line = line_next(&cur)) != NULL && t->rv != FR_ENOMEM) {
        lineno++;
        const char *p = line;
        size_t wlen;
        const char *w = take_word(&p, &wlen);
        if (w == NULL) {
            continue;
        }
        if (wlen >= 3 && memcmp(w, "cpu", 3) == 0) {
            bool digits = wlen > 3;
            for (size_t i = 3; i < wlen; i++) {
                digits = digits && w[i] >= '0' && w[i] <= '9';
            }
            uint64_t v[CPU_NFIELDS];
            int nf = take_fields(p, v, CPU_NFIELDS);
            if ((wlen > 3 && !digits) || nf < CPU_IOWAIT) {
                line_fail(t, SRC_STAT, lineno, line);
                continue;
            }
            if (wlen > 3) {
                t->ncpu++;
            }
            if (!t->want.cpu && !t->want.psutil_cpu) {
                continue;
            }
            const counters *prev;
            counters *c = cset_record(t, &st->cpus, w, wlen, v, nf, &prev);
            if (c != NULL) {
                cpu_emit(t, w, wlen, c, prev, dt);
            }
            continue;
        }
        if (!t->want.stat) {
            continue;
        }
        for (size_t i = 0; i < sizeof(stat_key) / sizeof(stat_key[0]); i++) {
            if (strlen(stat_key[i]) == wlen && memcmp(stat_key[i], w, wlen) == 0) {
                uint64_t v;
                /* intr and softirq go on with per-source counts: the
                 * first number is their total */
                if (!take_u64(&p, &v, 0)) {
                    line_fail(t, SRC_STAT, lineno, line);
                    break;
                }
                ns_set(t, "/intel/procfs/stat");
                put_u64(t, stat_key[i], v, strcmp(stat_key[i], "btime") == 0 ? "s" : "");
                break;
            }
        }
    }
    if (t->want.cpu || t->want.psutil_cpu) {
        cset_commit(&st->cpus, t->now);
    }
}

/* ---- /proc/loadavg ---------------------------------------------------- */

static void load_read(tick *t)
{
    char *cur = src_read(t, SRC_LOADAVG, &t->st->buf);
    if (cur == NULL) {
        return;
    }
    char *line = line_next(&cur);
    const char *p = line != NULL ? line : "";
    double l1, l5, l15;
    uint64_t runnable, existing;
    if (!take_fixed(&p, &l1) || !take_fixed(&p, &l5) || !take_fixed(&p, &l15) ||
        !take_u64(&p, &runnable, '/') || *p++ != '/' || !take_u64(&p, &existing, 0)) {
        line_fail(t, SRC_LOADAVG, 1, line != NULL ? line : "");
        return;
    }
    if (t->want.load) {
        ns_set(t, "/intel/procfs/load");
        put_f64(t, "min1", l1, "");
        put_f64(t, "min5", l5, "");
        put_f64(t, "min15", l15, "");
        if (t->ncpu > 0) {
            put_f64(t, "min1_rel", l1 / t->ncpu, "");
            put_f64(t, "min5_rel", l5 / t->ncpu, "");
            put_f64(t, "min15_rel", l15 / t->ncpu, "");
        }
        put_u64(t, "runnable_scheduling", runnable, "");
        put_u64(t, "existing_scheduling", existing, "");
    }
    if (t->want.psutil_load) {
        ns_set(t, "/intel/psutil/load");
        put_f64(t, "load1", l1, "");
        put_f64(t, "load5", l5, "");
        put_f64(t, "load15", l15, "");
    }
}

/* ---- /proc/meminfo ---------------------------------------------------- */

typedef struct meminfo_sum {
    uint64_t total, free, available, buffers, cached, slab, active, inactive;
    bool has_total, has_available;
} meminfo_sum;

static void meminfo_note(meminfo_sum *m, const char *name, uint64_t v)
{
    switch (name[0]) {
    case 'M':
        if (strcmp(name, "MemTotal") == 0) {
            m->total = v;
            m->has_total = true;
        } else if (strcmp(name, "MemFree") == 0) {
            m->free = v;
        } else if (strcmp(name, "MemAvailable") == 0) {
            m->available = v;
            m->has_available = true;
        }
        break;
    case 'B':
        if (strcmp(name, "Buffers") == 0) {
            m->buffers = v;
        }
        break;
    case 'C':
        if (strcmp(name, "Cached") == 0) {
            m->cached = v;
        }
        break;
    case 'S':
        if (strcmp(name, "Slab") == 0) {
            m->slab = v;
        }
        break;
    case 'A':
        if (strcmp(name, "Active") == 0) {
            m->active = v;
        }
        break;
    case 'I':
        if (strcmp(name, "Inactive") == 0) {
            m->inactive = v;
        }
        break;
    default:
        break;
    }
}

static void meminfo_put(tick *t, const meminfo_sum *m, const char *name, uint64_t v, bool bytes)
{
    put_u64(t, name, v, bytes ? "bytes" : "");
    if (bytes && m->has_total && m->total > 0) {
        char leaf[PROCFS_NAME_MAX + 8];
        snprintf(leaf, sizeof(leaf), "%s_perc", name);
        put_f64(t, leaf, 100.0 * (double)v / (double)m->total, "percent");
    }
}

static void meminfo_read(tick *t)
{
    char *cur = src_read(t, SRC_MEMINFO, &t->st->buf);
    if (cur == NULL) {
        return;
    }
    meminfo_sum m = {0};
    unsigned lineno = 0;
    char *line;
    ns_set(t, "/intel/procfs/meminfo");
    while ((line = line_next(&cur)) != NULL && t->rv != FR_ENOMEM) {
        lineno++;
        if (*skip_blank(line) == '\0') {
            continue;
        }
        /* "Active(anon):  1556 kB": snap's names turn "(x)" into "_x",
         * since parentheses are query syntax. */
        char name[PROCFS_NAME_MAX];
        size_t n = 0;
        const char *p = line;
        for (; *p != ':' && *p != '\0' && n < sizeof(name) - 1; p++) {
            if (*p == '(') {
                name[n++] = '_';
            } else if (*p != ')') {
                name[n++] = *p;
            }
        }
        name[n] = '\0';
        uint64_t v;
        if (*p != ':' || n == 0) {
            line_fail(t, SRC_MEMINFO, lineno, line);
            continue;
        }
        p++;
        if (!take_u64(&p, &v, 0)) {
            line_fail(t, SRC_MEMINFO, lineno, line);
            continue;
        }
        p = skip_blank(p);
        bool bytes = false;
        if (p[0] == 'k' && p[1] == 'B' && is_end(p[2])) {
            if (v > UINT64_MAX / 1024) {
                line_fail(t, SRC_MEMINFO, lineno, line);
                continue;
            }
            v *= 1024;
            bytes = true;
        } else if (*p != '\0') {
            line_fail(t, SRC_MEMINFO, lineno, line);
            continue;
        }
        meminfo_note(&m, name, v);
        if (t->want.meminfo) {
            meminfo_put(t, &m, name, v, bytes);
        }
    }
    if (!m.has_total) {
        return;
    }
    uint64_t cache = m.free + m.buffers + m.cached;
    if (t->want.meminfo) {
        uint64_t held = cache + m.slab;
        meminfo_put(t, &m, "MemUsed", m.total > held ? m.total - held : 0, true);
    }
    if (t->want.psutil_vm) {
        uint64_t avail = m.has_available ? m.available : cache;
        ns_set(t, "/intel/psutil/vm");
        put_u64(t, "total", m.total, "bytes");
        put_u64(t, "available", avail, "bytes");
        put_u64(t, "used", m.total > cache ? m.total - cache : 0, "bytes");
        put_f64(t, "used_percent",
                m.total > 0 && m.total > avail ? 100.0 * (double)(m.total - avail) / (double)m.total
                                               : 0.0,
                "percent");
        put_u64(t, "free", m.free, "bytes");
        put_u64(t, "active", m.active, "bytes");
        put_u64(t, "inactive", m.inactive, "bytes");
        put_u64(t, "buffers", m.buffers, "bytes");
        put_u64(t, "cached", m.cached, "bytes");
        put_u64(t, "wired", 0, "bytes");
    }
}

/* ---- /proc/vmstat ----------------------------------------------------- */

static void vmstat_read(tick *t)
{
    char *cur = src_read(t, SRC_VMSTAT, &t->st->buf);
    if (cur == NULL) {
        return;
    }
    unsigned lineno = 0;
    char *line;
    ns_set(t, "/intel/procfs/vmstat");
    while ((line = line_next(&cur)) != NULL && t->rv != FR_ENOMEM) {
        lineno++;
        const char *p = line;
        size_t wlen;
        const char *w = take_word(&p, &wlen);
        uint64_t v;
        if (w == NULL) {
            continue;
        }
        if (wlen >= PROCFS_NAME_MAX || !take_u64(&p, &v, 0) || *skip_blank(p) != '\0') {
            line_fail(t, SRC_VMSTAT, lineno, line);
            continue;
        }
        char name[PROCFS_NAME_MAX];
        memcpy(name, w, wlen);
        name[wlen] = '\0';
        put_u64(t, name, v, "");
    }
}

/* ---- /proc/net/dev ---------------------------------------------------- */

static void net_emit_psutil(tick *t, const char *name, size_t nlen, const uint64_t *v)
{
    ns_set(t, "/intel/psutil/net");
    if (!ns_push(t, name, nlen) || !ns_wanted(t)) {
        return;
    }
    put_u64(t, "bytes_sent", v[NET_TX_BYTES], "bytes");
    put_u64(t, "bytes_recv", v[NET_RX_BYTES], "bytes");
    put_u64(t, "packets_sent", v[NET_TX_PACKETS], "");
    put_u64(t, "packets_recv", v[NET_RX_PACKETS], "");
    put_u64(t, "errin", v[NET_RX_ERRS], "");
    put_u64(t, "errout", v[NET_TX_ERRS], "");
    put_u64(t, "dropin", v[NET_RX_DROP], "");
    put_u64(t, "dropout", v[NET_TX_DROP], "");
}

static void net_emit(tick *t, const char *name, size_t nlen, const uint64_t *v)
{
    if (t->want.iface) {
        ns_set(t, "/intel/procfs/iface");
        if (ns_push(t, name, nlen) && ns_wanted(t)) {
            for (int i = 0; i < NET_NFIELDS; i++) {
                put_u64(t, net_field[i], v[i], net_unit[i]);
            }
        }
    }
    if (t->want.psutil_net) {
        net_emit_psutil(t, name, nlen, v);
    }
}

static void netdev_read(tick *t)
{
    char *cur = src_read(t, SRC_NETDEV, &t->st->buf);
    if (cur == NULL) {
        return;
    }
    uint64_t sum[NET_NFIELDS] = {0};
    unsigned lineno = 0, nifaces = 0;
    char *line;
    while ((line = line_next(&cur)) != NULL && t->rv != FR_ENOMEM) {
        lineno++;
        char *colon = strchr(line, ':');
        if (colon == NULL) {
            if (lineno > 2 && *skip_blank(line) != '\0') {
                line_fail(t, SRC_NETDEV, lineno, line);
            }
            continue; /* the two header lines */
        }
        const char *name = skip_blank(line);
        const char *end = colon;
        while (end > name && (end[-1] == ' ' || end[-1] == '\t')) {
            end--;
        }
        uint64_t v[NET_NFIELDS];
        if (end == name || take_fields(colon + 1, v, NET_NFIELDS) != NET_NFIELDS) {
            line_fail(t, SRC_NETDEV, lineno, line);
            continue;
        }
        for (int i = 0; i < NET_NFIELDS; i++) {
            sum[i] += v[i];
        }
        nifaces++;
        net_emit(t, name, (size_t)(end - name), v);
    }
    if (t->want.psutil_net && nifaces > 0) {
        net_emit_psutil(t, "all", 3, sum);
    }
}

/* ---- /proc/diskstats -------------------------------------------------- */

static void disk_rates(tick *t, const uint64_t *v, const uint64_t *pv, int64_t dt_ns)
{
    uint64_t d[DISK_NREQUIRED];
    if (!deltas(v, pv, DISK_NREQUIRED, d)) {
        return;
    }
    double s = (double)dt_ns / 1e9;
    put_f64(t, "ops_read", (double)d[DISK_READS] / s, "1/s");
    put_f64(t, "ops_write", (double)d[DISK_WRITES] / s, "1/s");
    put_f64(t, "octets_read", (double)d[DISK_SECTORS_READ] * 512.0 / s, "bytes/s");
    put_f64(t, "octets_write", (double)d[DISK_SECTORS_WRITTEN] * 512.0 / s, "bytes/s");
    put_f64(t, "merged_read", (double)d[DISK_READS_MERGED] / s, "1/s");
    put_f64(t, "merged_write", (double)d[DISK_WRITES_MERGED] / s, "1/s");
    put_f64(t, "time_read",
            d[DISK_READS] > 0 ? (double)d[DISK_READ_MS] / (double)d[DISK_READS] : 0.0, "ms");
    put_f64(t, "time_write",
            d[DISK_WRITES] > 0 ? (double)d[DISK_WRITE_MS] / (double)d[DISK_WRITES] : 0.0, "ms");
    put_f64(t, "io_time", (double)d[DISK_IO_MS] / s, "ms/s");
    put_f64(t, "weighted_io_time", (double)d[DISK_WEIGHTED_IO_MS] / s, "ms/s");
}

static void diskstats_read(tick *t)
{
    procfs *st = t->st;
    char *cur = src_read(t, SRC_DISKSTATS, &st->buf);
    if (cur == NULL) {
        return;
    }
    int64_t dt = st->disks.prev_ts != 0 ? t->now - st->disks.prev_ts : 0;
    st->disks.ncur = 0;
    unsigned lineno = 0;
    char *line;
    while ((line = line_next(&cur)) != NULL && t->rv != FR_ENOMEM) {
        lineno++;
        const char *p = line;
        uint64_t major, minor;
        size_t nlen;
        const char *name;
        uint64_t v[DISK_NFIELDS];
        int nf;
        if (*skip_blank(p) == '\0') {
            continue;
        }
        if (!take_u64(&p, &major, 0) || !take_u64(&p, &minor, 0) ||
            (name = take_word(&p, &nlen)) == NULL ||
            (nf = take_fields(p, v, DISK_NFIELDS)) < DISK_NREQUIRED) {
            line_fail(t, SRC_DISKSTATS, lineno, line);
            continue;
        }
        const counters *prev;
        cset_record(t, &st->disks, name, nlen, v, nf, &prev);
        if (t->rv == FR_ENOMEM) {
            break;
        }
        ns_set(t, "/intel/procfs/disk");
        if (!ns_push(t, name, nlen) || !ns_wanted(t)) {
            continue;
        }
        for (int i = 0; i < nf; i++) {
            put_u64(t, disk_field[i], v[i], disk_unit[i]);
        }
        if (prev != NULL && dt > 0) {
            disk_rates(t, v, prev->v, dt);
        }
    }
    cset_commit(&st->disks, t->now);
}

/* ---- statvfs of mount points ------------------------------------------ */

/* /proc/mounts writes space, tab, newline and backslash as \ooo. */
static void mount_unescape(char *dst, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o < cap - 1; i++) {
        if (s[i] == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
            s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            dst[o++] = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
            i += 3;
        } else {
            dst[o++] = s[i];
        }
    }
    dst[o] = '\0';
}

/* The namespace element for a mount point, as collectd's df names it:
 * "/" is root, "/var/lib" is var-lib. */
static size_t mount_element(char *dst, size_t cap, const char *path)
{
    if (strcmp(path, "/") == 0) {
        return (size_t)snprintf(dst, cap, "root");
    }
    size_t o = 0;
    for (const char *p = path[0] == '/' ? path + 1 : path; *p != '\0' && o < cap - 1; p++) {
        dst[o++] = *p == '/' ? '-' : *p;
    }
    dst[o] = '\0';
    return o;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return h;
}

/* Block-device file system types: /proc/filesystems lines without nodev. */
static size_t fstypes_read(tick *t, const char **types, size_t max)
{
    char *cur = src_read(t, SRC_FILESYSTEMS, &t->st->fsbuf);
    size_t n = 0;
    char *line;
    if (cur == NULL) {
        return 0;
    }
    while ((line = line_next(&cur)) != NULL && n < max) {
        const char *p = line;
        size_t wlen;
        const char *w = take_word(&p, &wlen);
        if (w == NULL || (wlen == 5 && memcmp(w, "nodev", 5) == 0)) {
            continue;
        }
        line[(size_t)(w - line) + wlen] = '\0';
        types[n++] = w;
    }
    return n;
}

static bool mount_selected(const procfs *st, const char *path, const char *fstype,
                           const char *const *types, size_t ntypes)
{
    if (st->mounts_all) {
        return true;
    }
    if (st->mounts_physical) {
        for (size_t i = 0; i < ntypes; i++) {
            if (strcmp(types[i], fstype) == 0) {
                return true;
            }
        }
    }
    const fr_strlist *l = &st->cfg->mount_points;
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i][0] == '/' && strcmp(l->v[i], path) == 0) {
            return true;
        }
    }
    return false;
}

static void mount_put(tick *t, const char *leaf, fr_value v, const char *unit, const char *path,
                      const char *device)
{
    fr_metric *m = put(t, leaf, v, unit);
    if (m != NULL && (fr_batch_metric_tag(t->out, m, "mount_point", path) != 0 ||
                      fr_batch_metric_tag(t->out, m, "device", device) != 0)) {
        tick_oom(t);
    }
}

static void mounts_read(tick *t)
{
    procfs *st = t->st;
    const char *types[PROCFS_FSTYPES_MAX];
    size_t ntypes = st->mounts_physical ? fstypes_read(t, types, PROCFS_FSTYPES_MAX) : 0;
    char *cur = src_read(t, SRC_MOUNTS, &st->buf);
    if (cur == NULL) {
        return;
    }
    uint64_t seen[PROCFS_MOUNTS_MAX];
    size_t nseen = 0;
    unsigned lineno = 0;
    char *line;
    while ((line = line_next(&cur)) != NULL && t->rv != FR_ENOMEM) {
        lineno++;
        const char *p = line;
        size_t dlen, mlen, flen;
        const char *dev = take_word(&p, &dlen);
        const char *mnt = dev != NULL ? take_word(&p, &mlen) : NULL;
        const char *fs = mnt != NULL ? take_word(&p, &flen) : NULL;
        if (fs == NULL) {
            if (dev != NULL) {
                line_fail(t, SRC_MOUNTS, lineno, line);
            }
            continue;
        }
        char path[1024], device[256], fstype[64], el[256];
        mount_unescape(path, sizeof(path), mnt, mlen);
        mount_unescape(device, sizeof(device), dev, dlen);
        snprintf(fstype, sizeof(fstype), "%.*s", (int)flen, fs);
        if (!mount_selected(st, path, fstype, types, ntypes)) {
            continue;
        }
        size_t elen = mount_element(el, sizeof(el), path);
        ns_set(t, "/intel/psutil/disk");
        if (!ns_push(t, el, elen) || !ns_wanted(t)) {
            continue;
        }
        /* A path mounted over twice is listed twice; statvfs() sees the
         * top one, so report it once. */
        uint64_t h = hash_str(path);
        bool dup = false;
        for (size_t i = 0; i < nseen && !dup; i++) {
            dup = seen[i] == h;
        }
        if (dup) {
            continue;
        }
        if (nseen < PROCFS_MOUNTS_MAX) {
            seen[nseen++] = h;
        }
        struct statvfs vfs;
        if (statvfs(path, &vfs) != 0) {
            continue; /* unmounted since /proc/mounts was read, or not ours to see */
        }
        uint64_t bs = vfs.f_frsize != 0 ? vfs.f_frsize : vfs.f_bsize;
        uint64_t total = (uint64_t)vfs.f_blocks * bs;
        uint64_t free_ = (uint64_t)vfs.f_bavail * bs;
        uint64_t used = (uint64_t)(vfs.f_blocks - vfs.f_bfree) * bs;
        double pct = used + free_ > 0 ? 100.0 * (double)used / (double)(used + free_) : 0.0;
        mount_put(t, "total", fr_val_u64(total), "bytes", path, device);
        mount_put(t, "used", fr_val_u64(used), "bytes", path, device);
        mount_put(t, "free", fr_val_u64(free_), "bytes", path, device);
        mount_put(t, "percent", fr_val_f64(pct), "percent", path, device);
    }
}

/* ---- the plugin ------------------------------------------------------- */

static void procfs_destroy(void *state)
{
    procfs *st = state;
    if (st == NULL) {
        return;
    }
    for (int i = 0; i < SRC_COUNT; i++) {
        if (st->src[i].fd >= 0) {
            close(st->src[i].fd);
        }
        free(st->src[i].path);
    }
    free(st->buf.p);
    free(st->fsbuf.p);
    cset_free(&st->cpus);
    cset_free(&st->disks);
    free(st);
}

static int procfs_init(void **state, const void *config, fr_error *err)
{
    const procfs_config *cfg = config;
    *state = NULL;
    if (cfg == NULL || cfg->proc_path == NULL || cfg->proc_path[0] == '\0') {
        return fr_error_set(err, FR_ECONFIG, "proc_path", "procfs: proc_path is empty");
    }
    struct stat sb;
    if (stat(cfg->proc_path, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        return fr_error_set(err, FR_ECONFIG, "proc_path",
                            "procfs: proc_path '%s' is not a directory", cfg->proc_path);
    }
    procfs *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "procfs: out of memory");
    }
    for (int i = 0; i < SRC_COUNT; i++) {
        st->src[i].fd = -1;
    }
    st->cfg = cfg;
    for (size_t i = 0; i < cfg->mount_points.n; i++) {
        const char *m = cfg->mount_points.v[i];
        if (strcmp(m, "all") == 0) {
            st->mounts_all = true;
        } else if (strcmp(m, "physical") == 0) {
            st->mounts_physical = true;
        } else if (m[0] != '/') {
            procfs_destroy(st);
            return fr_error_set(err, FR_ECONFIG, "mount_points",
                                "procfs: mount_points takes physical, all or absolute paths, "
                                "not '%s'",
                                m);
        }
    }
    size_t plen = strlen(cfg->proc_path);
    while (plen > 1 && cfg->proc_path[plen - 1] == '/') {
        plen--; /* "/proc/" names the same files as "/proc" */
    }
    for (int i = 0; i < SRC_COUNT; i++) {
        size_t n = plen + 1 + strlen(src_name[i]) + 1;
        st->src[i].path = malloc(n);
        if (st->src[i].path == NULL) {
            procfs_destroy(st);
            return fr_error_set(err, FR_ENOMEM, NULL, "procfs: out of memory");
        }
        snprintf(st->src[i].path, n, "%.*s/%s", (int)plen, cfg->proc_path, src_name[i]);
    }
    if (!buf_grow(&st->buf)) {
        procfs_destroy(st);
        return fr_error_set(err, FR_ENOMEM, NULL, "procfs: out of memory");
    }
    long hz = sysconf(_SC_CLK_TCK);
    st->hz = hz > 0 ? (double)hz : 100.0;
    *state = st;
    return 0;
}

static bool wants_any(const fr_ns_query *q, const char *const *names)
{
    for (; *names != NULL; names++) {
        if (fr_ns_query_match(q, *names)) {
            return true;
        }
    }
    return false;
}

static int procfs_collect(void *state, const fr_collect_req *req, fr_error *err)
{
    tick t = {.st = state, .q = req->query, .out = req->out, .now = req->now_ns, .err = err};
    const fr_ns_query *q = req->query;
    static const char *const rel[] = {"/intel/procfs/load/min1_rel", "/intel/procfs/load/min5_rel",
                                      "/intel/procfs/load/min15_rel", NULL};
    wants *w = &t.want;
    w->load = fr_ns_query_wants_prefix(q, "/intel/procfs/load");
    w->load_rel = w->load && wants_any(q, rel);
    w->psutil_load = fr_ns_query_wants_prefix(q, "/intel/psutil/load");
    w->cpu = fr_ns_query_wants_prefix(q, "/intel/procfs/cpu");
    w->psutil_cpu = fr_ns_query_wants_prefix(q, "/intel/psutil/cpu");
    w->stat = fr_ns_query_wants_prefix(q, "/intel/procfs/stat");
    w->meminfo = fr_ns_query_wants_prefix(q, "/intel/procfs/meminfo");
    w->psutil_vm = fr_ns_query_wants_prefix(q, "/intel/psutil/vm");
    w->vmstat = fr_ns_query_wants_prefix(q, "/intel/procfs/vmstat");
    w->iface = fr_ns_query_wants_prefix(q, "/intel/procfs/iface");
    w->psutil_net = fr_ns_query_wants_prefix(q, "/intel/psutil/net");
    w->disk = fr_ns_query_wants_prefix(q, "/intel/procfs/disk");
    w->psutil_disk = fr_ns_query_wants_prefix(q, "/intel/psutil/disk");
    fr_error_clear(err);

    /* /proc/stat first: the per-CPU load figures need its CPU count. */
    if (w->cpu || w->psutil_cpu || w->stat || w->load_rel) {
        stat_read(&t);
    }
    if ((w->load || w->psutil_load) && t.rv != FR_ENOMEM) {
        load_read(&t);
    }
    if ((w->meminfo || w->psutil_vm) && t.rv != FR_ENOMEM) {
        meminfo_read(&t);
    }
    if (w->vmstat && t.rv != FR_ENOMEM) {
        vmstat_read(&t);
    }
    if ((w->iface || w->psutil_net) && t.rv != FR_ENOMEM) {
        netdev_read(&t);
    }
    if (w->disk && t.rv != FR_ENOMEM) {
        diskstats_read(&t);
    }
    if (w->psutil_disk && t.rv != FR_ENOMEM) {
        mounts_read(&t);
    }
    return t.rv;
}

const fr_collector_plugin fr_collector_procfs = {
    .abi = FR_PLUGIN_ABI,
    .name = "procfs",
    .version = 1,
    .description = "load, cpu, memory, vmstat, network and disk counters from procfs, under "
                   "snap's procfs and psutil names",
    .ns_prefix = "/intel/procfs",
    .catalog = procfs_catalog,
    .ncatalog = sizeof(procfs_catalog) / sizeof(procfs_catalog[0]),
    .policy = procfs_policy,
    .npolicy = sizeof(procfs_policy) / sizeof(procfs_policy[0]),
    .config_size = sizeof(procfs_config),
    .init = procfs_init,
    .collect = procfs_collect,
    .destroy = procfs_destroy,
};
