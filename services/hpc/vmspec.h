/* A VM job's request: the -vm keys of table 4, checked and completed
 * against the policy (policy.h).
 *
 * Every value is checked where it is read: numbers are whole and within
 * bounds, switches are true|false|1|0|yes|no, choices come from their list,
 * and paths hold only [A-Za-z0-9._/+@-] (no "..", no "//"), so no user value
 * can reach a shell, a libvirt domain or a cloud-config unquoted. Errors
 * name the key, the value and what is allowed. */
#ifndef HPC_VMSPEC_H
#define HPC_VMSPEC_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fresco/err.h"
#include "policy.h"

enum hpc_vmkey {
    HPC_VM_IMG,
    HPC_VM_DISTRO,
    HPC_VM_RAM,
    HPC_VM_VCPUS,
    HPC_VM_VMS_PER_NODE,
    HPC_VM_DISK,
    HPC_VM_ARCH,
    HPC_VM_HYPERVISOR,
    HPC_VM_VCPU_PINNING,
    HPC_VM_VM_PROLOGUE,
    HPC_VM_VM_EPILOGUE,
    HPC_VM_VRDMA,
    HPC_VM_IOCM,
    HPC_VM_IOCM_MIN_CORES,
    HPC_VM_IOCM_MAX_CORES,
    HPC_VM_FS_TYPE,
    HPC_VM_METADATA,
    HPC_VM_NKEYS
};

#define HPC_PATH_MAX 1024

typedef struct hpc_vmspec {
    uint32_t given;         /* 1u << enum hpc_vmkey for each key the user set */
    char img[HPC_PATH_MAX]; /* after resolve: the image's real absolute path */
    char img_name[256];     /* after resolve: its file name */
    char distro[16];
    char arch[16];
    char hypervisor[8];
    char fs_type[16];
    int64_t ram_mb;
    int64_t vcpus;
    int64_t vms_per_node;
    char disk[HPC_PATH_MAX];
    bool vcpu_pinning, vrdma, iocm;
    int64_t iocm_min_cores, iocm_max_cores;
    char vm_prologue[HPC_PATH_MAX];
    char vm_epilogue[HPC_PATH_MAX];
    char metadata[HPC_PATH_MAX];
} hpc_vmspec;

/* The key's name ("img"), or NULL. */
const char *hpc_vmkey_name(int key);

/* Reads "k=v[,k=v...]" into s (later keys replace earlier ones, so several
 * -vm options add up). where names the source ("-vm", "job.sh:3"). */
int hpc_vmspec_apply(hpc_vmspec *s, const char *text, const char *where, fr_error *e);

/* Completes s from the policy's defaults and checks it against the policy:
 * disabled stack, image inside the pool (symlinks resolved) unless user
 * images are allowed, vRDMA/IOcm only when the admin enables them (IOcm on
 * sKVM only), vms_per_node and IOcm cores within the admin's bounds, cores
 * and RAM within compute.cores/compute.ram less the host's reserve when those are
 * set. Files the user names (user images, disk, prologue, epilogue,
 * metadata) must be regular files that uid/gid may read, through every
 * folder on the way: the agent reads them as root on the user's behalf, so
 * this is what keeps a user from copying a file they cannot read into a
 * guest they control. */
int hpc_vmspec_resolve(hpc_vmspec *s, const hpc_conf *c, uid_t uid, gid_t gid, fr_error *e);

/* Whether uid/gid may read the regular file at path (each parent folder
 * searchable, the file readable, by owner, group or other bits; uid 0 may). */
bool hpc_readable_by(const char *path, uid_t uid, gid_t gid);

/* Writes the resolved request as "key=value" lines (the canonical request
 * file the agent re-reads and re-checks). Returns the length or a negative
 * code when buf is too small. */
int hpc_vmspec_format(const hpc_vmspec *s, char *buf, size_t len);

/* Reads hpc_vmspec_format's output (one key per line) into s, with the same
 * checks as hpc_vmspec_apply. */
int hpc_vmspec_parse_lines(hpc_vmspec *s, const char *text, size_t len, const char *where,
                           fr_error *e);

/* Whether p is a path fresco accepts from users: absolute when want_abs,
 * 1..HPC_PATH_MAX-1 bytes of [A-Za-z0-9._/+@-], no "..", no empty
 * components. */
bool hpc_safe_path(const char *p, bool want_abs);

/* Resolves an image name against the pool: relative names live in the pool;
 * the real path (symlinks followed) must be a regular file inside the pool's
 * real path unless the admin allows user images (then uid/gid must be able
 * to read it). Writes the real path to out (HPC_PATH_MAX bytes). */
int hpc_image_resolve(const char *name, const hpc_conf *c, const char *key, uid_t uid, gid_t gid,
                      char *out, fr_error *e);

#endif
