/* fresco-hpc's configuration: the cluster's policy for virtualised jobs
 * (the admin's switches and the users' defaults) and the service's own
 * keys, in one table and one YAML file (default /etc/fresco/hpc.yaml).
 *
 * Both `fresco qsub` (as the user, for early and clear refusals) and the
 * fresco-hpc agent (as root, before it boots anything) check a request
 * against this policy; the agent's check is the one that counts, so a user
 * pointing `fresco qsub` at a policy file of their own gains nothing. */
#ifndef HPC_POLICY_H
#define HPC_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "fresco/config.h"
#include "fresco/service.h"

#define HPC_CONFIG_FILE "/etc/fresco/hpc.yaml"

typedef struct hpc_conf {
    fr_service_conf svc;
    /* table 2: the admin's switches */
    bool disabled;          /* DISABLE_MIKELANGELO_HPCSTACK */
    char *disabled_hosts;   /* DISABLED_HOSTS_LIST: extended regex over node names */
    bool parallel;          /* boot a node's VMs in parallel */
    bool allow_user_images; /* ALLOW_USER_IMAGES */
    char *image_pool;       /* IMAGE_POOL */
    int64_t host_cores;     /* HOST_OS_CORE_COUNT */
    int64_t host_ram;       /* HOST_OS_RAM_MB, bytes */
    int64_t max_vms_per_node;
    int64_t node_cores;      /* cores of a compute node (0: checked only by the agent) */
    int64_t node_ram;        /* RAM of a compute node, bytes (0: likewise) */
    int64_t boot_timeout_ms; /* TIMEOUT */
    char *server_hostname;   /* SERVER_HOSTNAME: regex of hosts where plain qsub is the server's */
    char *real_qsub;         /* REAL_QSUB_ON_SERVER / _ON_NODES */
    bool iocm_enabled;
    int64_t iocm_min_cores;
    int64_t iocm_max_cores;
    bool vrdma_enabled;
    char *vrdma_nodes; /* regex */
    bool monitoring_enabled;
    char *monitoring_tag; /* "snapTask-[username]-[jobid]" */
    char *monitoring_collector;
    fr_strlist monitoring_metrics;
    int64_t monitoring_interval_ms;
    bool allow_generate_files; /* -gf */
    fr_strlist metadata_whitelist;
    fr_strlist shared_mounts; /* "<source> <mount point> [fstype]" */
    fr_strlist env_allow;     /* job environment passed into the guests and recorded */
    /* table 3: the users' defaults */
    char *def_fs_type;
    char *def_img;
    char *def_distro;
    char *def_arch;
    bool def_vcpu_pinning;
    int64_t def_vcpus;
    int64_t def_ram;
    int64_t def_vms_per_node;
    char *def_disk;
    char *def_hypervisor;
    bool def_vrdma;
    bool def_iocm;
    int64_t def_iocm_min_cores;
    int64_t def_iocm_max_cores;
    /* the service */
    char *backend; /* "slurm" or "pbs" */
    char *sbatch, *scontrol, *scancel, *qstat, *qdel;
    char *spool;       /* shared: one folder per submitted job */
    char *run_dir;     /* node-local: image copies, seeds, domain XML */
    char *libvirt_uri; /* where the agent boots guests */
    char *guest_exec;  /* "ssh" or "host": how the job wrapper runs the script */
    char *network;     /* libvirt network the guests' NIC joins */
    int64_t poll_ms;
    char *fresco_bin; /* the `fresco` command the job wrapper calls */
} hpc_conf;

extern const fr_cfg_spec hpc_spec;

/* Loads the policy the way `fresco qsub` does: defaults, then the file
 * ($FRESCO_HPC_CONFIG when set, else HPC_CONFIG_FILE when it exists). No
 * environment overrides and no flags. c must start zeroed; free with
 * fr_config_free(&hpc_spec, c). 0 or a negative code with e filled. */
int hpc_conf_load_file(hpc_conf *c, const char *path, fr_error *e);

/* Checks the relations between keys (iocm min <= max, backend tools set,
 * regexes compile). 0 or FR_ECONFIG naming the key. */
int hpc_conf_check(const hpc_conf *c, fr_error *e);

/* The job's telemetry task name: monitoring.tag with [username] and
 * [jobid] replaced ("snapTask-alice-42"). 0 or FR_ETOOBIG. */
int hpc_task_tag(const hpc_conf *c, const char *user, const char *id, char *out, size_t len);

/* Whether name matches the extended regex re (NULL or "" never matches). */
bool hpc_regex_match(const char *re, const char *name);

#endif
