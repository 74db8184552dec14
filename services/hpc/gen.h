/* What a VM job's nodes get, generated from its request (vmspec.h), the
 * policy and the job as the batch system sees it:
 *
 *   per node and VM <vm> = v<node>-<n>, in the node's job folder:
 *     <vm>.xml          libvirt domain: vCPUs (pinned when asked), RAM, the
 *                       image copy, the seed, the user disk on the first VM,
 *                       a virtio NIC, console to <vm>.console.log, the vRDMA
 *                       shared-memory device and IOcm I/O threads when on
 *     <vm>.user-data    cloud-config: hostname, the job user with the uid and
 *                       gid the batch system gives (never the user's
 *                       choice), the shared mounts, the job environment in
 *                       /etc/profile.d/fresco-job.sh, and the user's
 *                       whitelisted metadata keys
 *     <vm>.meta-data    instance-id and local-hostname
 *     <vm>.seed.iso     NoCloud seed (ISO9660, label "cidata"); for OSv a
 *     <vm>.seed.raw     raw seed image instead (seed.h)
 *
 * Every user value is checked before (vmspec.h) and escaped here again:
 * XML attributes and text through one escaper, cloud-config through
 * libyaml's emitter with double-quoted scalars, shell words in single
 * quotes. */
#ifndef HPC_GEN_H
#define HPC_GEN_H

#include <stddef.h>
#include <sys/types.h>

#include "fresco/buf.h"
#include "fresco/err.h"
#include "policy.h"
#include "vmspec.h"

typedef struct hpc_job {
    const char *id;   /* batch job id ("123", "123.server"), or "gf" before submission */
    const char *user; /* the job's user name, from the batch system */
    uid_t uid;
    gid_t gid;
    const char *group;       /* the primary group's name */
    const char *node;        /* this node's short host name */
    const char *img_dir;     /* where the agent puts the image copies */
    char *const *env;        /* NAME=value, the job environment (filtered by env_allow) */
    const char *domain_type; /* libvirt domain type, "kvm" unless the driver wants another */
} hpc_job;

typedef struct hpc_gen_stats {
    size_t files;       /* files written */
    size_t env_skipped; /* variables left out: bad name or value not UTF-8 */
} hpc_gen_stats;

/* Writes every file of this node's VMs into dir (which must exist).
 * Files are written whole (tmp + rename). Errors name the file or key. */
int hpc_gen_node(const hpc_conf *c, const hpc_vmspec *s, const hpc_job *j, const char *dir,
                 hpc_gen_stats *st, fr_error *e);

/* The VM's name on its node: "v<node>-<n>" into buf. Node names must be
 * [A-Za-z0-9-] (FR_EINVAL otherwise). */
int hpc_vm_hostname(const char *node, int n, char *buf, size_t len);

/* The libvirt domain name: "fresco-<jobid>-v<node>-<n>". */
int hpc_vm_domain_name(const char *jobid, const char *node, int n, char *buf, size_t len);

/* Appends s to b with &, <, >, ' and " escaped; refuses bytes below 0x20
 * other than tab and newline, and invalid UTF-8 (FR_EINVAL). */
int hpc_xml_escape(fr_buf *b, const char *s);

/* Appends s to b as one single-quoted shell word. */
int hpc_shell_quote(fr_buf *b, const char *s);

/* The one command line ssh hands the guest's shell to run a job step: the
 * script comes on stdin and is run as a file (so its #! line counts), with
 * env ("NAME=value" entries, NULL-terminated) exported, the job
 * environment fresco wrote (/etc/profile.d/fresco-job.sh) read first, and
 * args as its arguments. Every value is one single-quoted word. Names must
 * be [A-Za-z_][A-Za-z0-9_]* (FR_EINVAL otherwise). Appends to out. */
int hpc_guest_command(fr_buf *out, const char *const *env, char *const *args, size_t nargs);

/* Whether s (n bytes) is valid UTF-8 without NUL. */
int hpc_utf8_valid(const char *s, size_t n);

/* Whether a job environment entry passes the policy's env_allow list. */
int hpc_env_allowed(const hpc_conf *c, const char *name, size_t len);

/* Builds the cloud-config (user-data) for one VM into out. */
int hpc_gen_user_data(const hpc_conf *c, const hpc_vmspec *s, const hpc_job *j, int n, fr_buf *out,
                      hpc_gen_stats *st, fr_error *e);

/* Builds the domain XML for one VM into out. */
int hpc_gen_domain(const hpc_conf *c, const hpc_vmspec *s, const hpc_job *j, int n, const char *dir,
                   fr_buf *out, fr_error *e);

/* Writes len bytes to path whole (path.tmp, then rename; not fsynced: these
 * files live as long as the job), with mode. Never follows a symlink at
 * path.tmp. */
int hpc_write_file(const char *path, const void *data, size_t len, mode_t mode, fr_error *e);

#endif
