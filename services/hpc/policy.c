/* fresco-hpc's configuration table: tables 2 and 3 of the vTorque
 * reference (admin switches and user defaults) plus the service's keys. */
#include "policy.h"

#include <errno.h>
#include <regex.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const fs_types[] = {"sharedfs", "ramdisk", NULL};
static const char *const distros[] = {"debian", "ubuntu", "redhat", "centos",
                                      "fedora", "osv",    NULL};
static const char *const arches[] = {"x86_64", "x86_i386", "arm", NULL};
static const char *const hypervisors[] = {"kvm", "skvm", NULL};
static const char *const backends[] = {"slurm", "pbs", NULL};
static const char *const guest_execs[] = {"ssh", "host", NULL};

#define F(key, type, def, field, help, min, max, choices)                                          \
    {                                                                                              \
        key, type, def, offsetof(hpc_conf, field), help, min, max, choices                         \
    }

static const fr_cfg_field hpc_fields[] = {
    FR_SERVICE_FIELDS(hpc_conf, svc, "tcp://127.0.0.1:7450", "tcp://127.0.0.1:7452"),
    F("disabled", FR_CFG_BOOL, "false", disabled,
      "refuse every -vm request (DISABLE_MIKELANGELO_HPCSTACK)", 0, 0, NULL),
    F("disabled_hosts", FR_CFG_STRING, NULL, disabled_hosts,
      "extended regex of node names that run no VMs (DISABLED_HOSTS_LIST)", 0, 0, NULL),
    F("parallel", FR_CFG_BOOL, "true", parallel, "boot a node's VMs in parallel (PARALLEL)", 0, 0,
      NULL),
    F("allow_user_images", FR_CFG_BOOL, "false", allow_user_images,
      "let users boot images outside image_pool (ALLOW_USER_IMAGES)", 0, 0, NULL),
    F("image_pool", FR_CFG_STRING, "/var/lib/fresco/images", image_pool,
      "folder of bootable images; relative img= names resolve here (IMAGE_POOL)", 0, 0, NULL),
    F("host.cores", FR_CFG_INT, "1", host_cores,
      "cores kept for the host OS on each node (HOST_OS_CORE_COUNT)", 0, 4096, NULL),
    F("host.ram", FR_CFG_SIZE, "1GiB", host_ram, "RAM kept for the host OS (HOST_OS_RAM_MB)", 0, 0,
      NULL),
    F("max_vms_per_node", FR_CFG_INT, "8", max_vms_per_node,
      "upper bound for vms_per_node (MAX_VMS_PER_NODE)", 1, 1024, NULL),
    F("compute.cores", FR_CFG_INT, "0", node_cores,
      "cores of a compute node, to refuse oversized requests at submission (0: not checked)", 0,
      1 << 20, NULL),
    F("compute.ram", FR_CFG_SIZE, "0", node_ram, "RAM of a compute node, likewise (0: not checked)",
      0, 0, NULL),
    F("boot_timeout", FR_CFG_DURATION, "10m", boot_timeout_ms,
      "how long VMs may take to come up (TIMEOUT; keep it below the prologue's)", 1000, 86400000,
      NULL),
    F("server_hostname", FR_CFG_STRING, NULL, server_hostname,
      "extended regex of the hosts whose fresco-hpc follows every job in the spool and "
      "publishes its queued/done/failed events (SERVER_HOSTNAME; unset: every host)",
      0, 0, NULL),
    F("real_qsub", FR_CFG_STRING, "/usr/bin/qsub", real_qsub,
      "the batch system's own qsub (REAL_QSUB_ON_SERVER, REAL_QSUB_ON_NODES)", 0, 0, NULL),
    F("iocm.enabled", FR_CFG_BOOL, "false", iocm_enabled,
      "allow IOcm for VM jobs; off overrides users (IOCM_ENABLED)", 0, 0, NULL),
    F("iocm.min_cores", FR_CFG_INT, "1", iocm_min_cores, "lowest IOcm core count (IOCM_MIN_CORES)",
      1, 1024, NULL),
    F("iocm.max_cores", FR_CFG_INT, "4", iocm_max_cores, "highest IOcm core count (IOCM_MAX_CORES)",
      1, 1024, NULL),
    F("vrdma.enabled", FR_CFG_BOOL, "false", vrdma_enabled,
      "allow vRDMA for VM jobs; off overrides users (VRDMA_ENABLED)", 0, 0, NULL),
    F("vrdma.nodes", FR_CFG_STRING, NULL, vrdma_nodes,
      "extended regex of nodes with vRDMA hardware (VRDMA_NODES; unset: all)", 0, 0, NULL),
    F("monitoring.enabled", FR_CFG_BOOL, "false", monitoring_enabled,
      "create a tagged collector task for each job's run (SNAP_MONITORING_ENABLED)", 0, 0, NULL),
    F("monitoring.tag", FR_CFG_STRING, "snapTask-[username]-[jobid]", monitoring_tag,
      "the job's task name and tag; [username] and [jobid] are replaced", 0, 0, NULL),
    F("monitoring.collector", FR_CFG_STRING, "tcp://127.0.0.1:7400", monitoring_collector,
      "control address of the node's fresco-collector", 0, 0, NULL),
    F("monitoring.metrics", FR_CFG_LIST,
      "/intel/psutil/load/load1,/intel/procfs/meminfo/MemAvailable,/intel/use/compute/utilization",
      monitoring_metrics, "metrics the job's task collects", 0, 0, NULL),
    F("monitoring.interval", FR_CFG_DURATION, "1s", monitoring_interval_ms,
      "the job's task interval", 10, 3600000, NULL),
    F("allow_generate_files", FR_CFG_BOOL, "true", allow_generate_files,
      "let users run `fresco qsub -gf` to inspect generated files", 0, 0, NULL),
    F("metadata.whitelist", FR_CFG_LIST, "packages,package_update,timezone,locale",
      metadata_whitelist, "cloud-config keys users may set with -vm metadata=FILE (R5.PBS.017)", 0,
      0, NULL),
    F("shared_mounts", FR_CFG_LIST, NULL, shared_mounts,
      "shared storage the guests mount: '<source> <mount point> [fstype]' (NFS by default)", 0, 0,
      NULL),
    F("env_allow", FR_CFG_LIST, "PATH,LANG,PBS_*,SLURM_*,OMPI_*,FRESCO_JOB_*", env_allow,
      "job environment written into guests and node metadata (names; '*' ends a prefix)", 0, 0,
      NULL),
    F("defaults.fs_type", FR_CFG_ENUM, "sharedfs", def_fs_type,
      "where a guest's job data lives (FILESYSTEM_TYPE_DEFAULT)", 0, 0, fs_types),
    F("defaults.img", FR_CFG_STRING, NULL, def_img,
      "image used when -vm gives no img (IMG_DEFAULT)", 0, 0, NULL),
    F("defaults.distro", FR_CFG_ENUM, "debian", def_distro,
      "guest OS when the image name does not say (DISTRO_DEFAULT)", 0, 0, distros),
    F("defaults.arch", FR_CFG_ENUM, "x86_64", def_arch, "guest architecture (ARCH_DEFAULT)", 0, 0,
      arches),
    F("defaults.vcpu_pinning", FR_CFG_BOOL, "false", def_vcpu_pinning,
      "pin vCPUs to host cores (VCPU_PINNING_DEFAULT)", 0, 0, NULL),
    F("defaults.vcpus", FR_CFG_INT, "1", def_vcpus, "vCPUs per VM (VCPUS_DEFAULT)", 1, 1024, NULL),
    F("defaults.ram", FR_CFG_SIZE, "1GiB", def_ram, "RAM per VM (RAM_DEFAULT)", 64 << 20,
      INT64_C(1) << 50, NULL),
    F("defaults.vms_per_node", FR_CFG_INT, "1", def_vms_per_node,
      "VMs on each node (VMS_PER_NODE_DEFAULT)", 1, 1024, NULL),
    F("defaults.disk", FR_CFG_STRING, NULL, def_disk,
      "persistent user disk (*.img|*.qcow2) given to the first VM, none when unset (DISK_DEFAULT)",
      0, 0, NULL),
    F("defaults.hypervisor", FR_CFG_ENUM, "kvm", def_hypervisor,
      "kvm or skvm; IOcm needs skvm (HYPERVISOR_DEFAULT)", 0, 0, hypervisors),
    F("defaults.vrdma", FR_CFG_BOOL, "false", def_vrdma, "vRDMA when -vm does not say", 0, 0, NULL),
    F("defaults.iocm", FR_CFG_BOOL, "false", def_iocm, "IOcm when -vm does not say", 0, 0, NULL),
    F("defaults.iocm_min_cores", FR_CFG_INT, "1", def_iocm_min_cores,
      "IOcm cores at least (IOCM_MIN_CORES_DEFAULT)", 1, 1024, NULL),
    F("defaults.iocm_max_cores", FR_CFG_INT, "1", def_iocm_max_cores,
      "IOcm cores at most (IOCM_MAX_CORES_DEFAULT)", 1, 1024, NULL),
    F("backend", FR_CFG_ENUM, "slurm", backend,
      "batch system VM jobs are submitted to: slurm (sbatch) or pbs (qsub)", 0, 0, backends),
    F("slurm.sbatch", FR_CFG_STRING, "/usr/bin/sbatch", sbatch, "Slurm's sbatch", 0, 0, NULL),
    F("slurm.scontrol", FR_CFG_STRING, "/usr/bin/scontrol", scontrol, "Slurm's scontrol", 0, 0,
      NULL),
    F("slurm.scancel", FR_CFG_STRING, "/usr/bin/scancel", scancel, "Slurm's scancel", 0, 0, NULL),
    F("pbs.qstat", FR_CFG_STRING, "/usr/bin/qstat", qstat, "the batch system's qstat", 0, 0, NULL),
    F("pbs.qdel", FR_CFG_STRING, "/usr/bin/qdel", qdel, "the batch system's qdel", 0, 0, NULL),
    F("spool", FR_CFG_STRING, "/var/spool/fresco/hpc", spool,
      "shared folder with one sub-folder per job fresco submitted (mode 1777)", 0, 0, NULL),
    F("run_dir", FR_CFG_STRING, "/run/fresco/hpc", run_dir,
      "node-local folder for image copies, seeds and domain XML of running jobs", 0, 0, NULL),
    F("libvirt.uri", FR_CFG_STRING, "qemu:///system", libvirt_uri,
      "libvirt connection the agent boots guests on", 0, 0, NULL),
    F("guest_exec", FR_CFG_ENUM, "ssh", guest_exec,
      "how the job wrapper runs the job script: ssh into the first VM (OSv: its REST API), or "
      "host (for drivers without guests)",
      0, 0, guest_execs),
    F("network", FR_CFG_STRING, "default", network, "libvirt network of the guests' NIC", 0, 0,
      NULL),
    F("poll", FR_CFG_DURATION, "2s", poll_ms, "how often job states are read from the batch system",
      100, 600000, NULL),
    F("fresco_bin", FR_CFG_STRING, "fresco", fresco_bin,
      "the fresco command the job wrapper calls (a name on PATH or an absolute path)", 0, 0, NULL),
};

const fr_cfg_spec hpc_spec = {"hpc", hpc_fields, sizeof(hpc_fields) / sizeof(hpc_fields[0])};

int hpc_conf_load_file(hpc_conf *c, const char *path, fr_error *e)
{
    int rv = fr_config_defaults(&hpc_spec, c, e);
    if (rv != 0) {
        return rv;
    }
    bool must = true;
    if (path == NULL) {
        path = getenv("FRESCO_HPC_CONFIG");
    }
    if (path == NULL || *path == '\0') {
        path = HPC_CONFIG_FILE;
        must = false;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        if (!must && errno == ENOENT) {
            return hpc_conf_check(c, e);
        }
        return fr_error_set(e, FR_ECONFIG, path, "cannot open: %s", strerror(errno));
    }
    char *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (cap - len < 4096) {
            if (cap > (8u << 20)) {
                free(data);
                fclose(f);
                return fr_error_set(e, FR_ECONFIG, path, "larger than 8 MiB");
            }
            char *n = realloc(data, cap ? cap * 2 : 8192);
            if (n == NULL) {
                free(data);
                fclose(f);
                return FR_ENOMEM;
            }
            data = n;
            cap = cap ? cap * 2 : 8192;
        }
        size_t got = fread(data + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            break;
        }
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(data);
        return fr_error_set(e, FR_ECONFIG, path, "read error");
    }
    rv = fr_config_load_yaml_buffer(&hpc_spec, c, path, data, len, e);
    free(data);
    return rv != 0 ? rv : hpc_conf_check(c, e);
}

static int check_regex(const char *key, const char *re, fr_error *e)
{
    if (re == NULL || *re == '\0') {
        return 0;
    }
    regex_t r;
    int rc = regcomp(&r, re, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[128];
        regerror(rc, &r, msg, sizeof msg);
        return fr_error_set(e, FR_ECONFIG, key, "key '%s': not an extended regex: '%s' (%s)", key,
                            re, msg);
    }
    regfree(&r);
    return 0;
}

int hpc_conf_check(const hpc_conf *c, fr_error *e)
{
    if (c->iocm_min_cores > c->iocm_max_cores) {
        return fr_error_set(e, FR_ECONFIG, "iocm.min_cores",
                            "key 'iocm.min_cores' (%lld) is above iocm.max_cores (%lld)",
                            (long long)c->iocm_min_cores, (long long)c->iocm_max_cores);
    }
    if (c->def_iocm_min_cores > c->def_iocm_max_cores) {
        return fr_error_set(
            e, FR_ECONFIG, "defaults.iocm_min_cores",
            "key 'defaults.iocm_min_cores' (%lld) is above defaults.iocm_max_cores (%lld)",
            (long long)c->def_iocm_min_cores, (long long)c->def_iocm_max_cores);
    }
    if (c->def_vms_per_node > c->max_vms_per_node) {
        return fr_error_set(e, FR_ECONFIG, "defaults.vms_per_node",
                            "key 'defaults.vms_per_node' (%lld) is above max_vms_per_node (%lld)",
                            (long long)c->def_vms_per_node, (long long)c->max_vms_per_node);
    }
    if (c->image_pool == NULL || c->image_pool[0] != '/') {
        return fr_error_set(e, FR_ECONFIG, "image_pool",
                            "key 'image_pool': must be an absolute path");
    }
    if (c->spool == NULL || c->spool[0] != '/') {
        return fr_error_set(e, FR_ECONFIG, "spool", "key 'spool': must be an absolute path");
    }
    if (c->run_dir == NULL || c->run_dir[0] != '/') {
        return fr_error_set(e, FR_ECONFIG, "run_dir", "key 'run_dir': must be an absolute path");
    }
    if (strlen(c->spool) >= 1024 || strlen(c->run_dir) >= 1024 || strlen(c->image_pool) >= 1024) {
        return fr_error_set(e, FR_ECONFIG, "spool",
                            "spool, run_dir and image_pool must be "
                            "shorter than 1024 bytes");
    }
    int rv;
    if ((rv = check_regex("disabled_hosts", c->disabled_hosts, e)) != 0 ||
        (rv = check_regex("server_hostname", c->server_hostname, e)) != 0 ||
        (rv = check_regex("vrdma.nodes", c->vrdma_nodes, e)) != 0) {
        return rv;
    }
    for (size_t i = 0; i < c->shared_mounts.n; i++) {
        const char *m = c->shared_mounts.v[i];
        const char *sp = strchr(m, ' ');
        if (sp == NULL || sp[1] != '/') {
            return fr_error_set(e, FR_ECONFIG, "shared_mounts",
                                "key 'shared_mounts[%zu]': '%s' is not '<source> <absolute mount "
                                "point> [fstype]'",
                                i, m);
        }
    }
    return 0;
}

bool hpc_regex_match(const char *re, const char *name)
{
    if (re == NULL || *re == '\0' || name == NULL) {
        return false;
    }
    regex_t r;
    if (regcomp(&r, re, REG_EXTENDED | REG_NOSUB) != 0) {
        return false;
    }
    bool m = regexec(&r, name, 0, NULL, 0) == 0;
    regfree(&r);
    return m;
}

int hpc_task_tag(const hpc_conf *c, const char *user, const char *id, char *out, size_t len)
{
    size_t o = 0;
    for (const char *p = c->monitoring_tag; *p != '\0' && o + 1 < len;) {
        const char *rep = NULL;
        size_t skip = 1;
        if (strncmp(p, "[username]", 10) == 0) {
            rep = user;
            skip = 10;
        } else if (strncmp(p, "[jobid]", 7) == 0) {
            rep = id;
            skip = 7;
        }
        if (rep != NULL) {
            int n = snprintf(out + o, len - o, "%s", rep);
            o += n > 0 ? (size_t)n : 0;
        } else {
            out[o++] = *p;
        }
        p += skip;
    }
    if (o >= len) {
        return FR_ETOOBIG;
    }
    out[o] = '\0';
    return 0;
}
