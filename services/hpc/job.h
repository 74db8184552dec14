/* Submitting a job the way `fresco qsub` does: read the command line and
 * the script, and either hand a plain job to the real qsub unchanged, or
 * check the VM request against the policy, write the job's folder in the
 * spool and submit the VM job's wrapper to the batch system.
 *
 * The job folder (spool/job-XXXXXX, owned by the user, mode 0700) holds:
 *   request     the checked request, one key=value per line (vmspec.h)
 *   script      the user's job script, as given
 *   job.sh      the wrapper the batch system runs: `fresco hpc job-run DIR`
 *   submit      the submission command, one argument per line
 *   gen/        every file the VMs get, for each node the job asked for
 *   batch-id    the batch system's id, once submitted */
#ifndef HPC_JOB_H
#define HPC_JOB_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "fresco/err.h"
#include "policy.h"
#include "vmspec.h"

typedef struct hpc_ident {
    uid_t uid;
    gid_t gid;
    const char *user;
    const char *group;
} hpc_ident;

/* Fills id from the calling process's real uid/gid (strings point into
 * static storage of getpwuid/getgrgid copies kept in id's buffers). */
typedef struct hpc_ident_buf {
    hpc_ident id;
    char user[64];
    char group[64];
} hpc_ident_buf;
int hpc_ident_self(hpc_ident_buf *b, fr_error *e);

typedef enum hpc_submit_kind {
    HPC_SUBMIT_PLAIN = 1, /* no -vm anywhere: the caller hands argv to the real qsub */
    HPC_SUBMIT_VM,        /* submitted: res->id, res->dir */
    HPC_SUBMIT_GENERATED, /* -gf: files in res->dir, nothing submitted */
    HPC_SUBMIT_LIST,      /* -list: the caller lists the pool */
} hpc_submit_kind;

typedef struct hpc_submit_result {
    hpc_submit_kind kind;
    char id[72];
    char dir[HPC_PATH_MAX];
    size_t files;
    bool quiet; /* -z */
    hpc_vmspec spec;
} hpc_submit_result;

/* argv[0] is the first argument after "qsub". gf_dir: where -gf writes
 * (NULL: a fresco-gf-XXXXXX folder in the current directory). Returns 0
 * with res->kind set, or a negative code with e filled; on error nothing
 * is submitted and no job folder is left behind. */
int hpc_submit(const hpc_conf *c, int argc, char *const *argv, const hpc_ident *who,
               const char *gf_dir, hpc_submit_result *res, fr_error *e);

/* One image of the pool. */
typedef struct hpc_image {
    char name[256];
    long long size;
    char distro[16];
    char description[256]; /* from "<image>.info" ("description: ...", "distro: ...") */
} hpc_image;

/* Calls cb for each image of the pool (*.img and *.qcow2 regular files,
 * symlinks leaving the pool skipped), sorted by name. */
int hpc_images_list(const hpc_conf *c, int (*cb)(void *ctx, const hpc_image *img), void *ctx,
                    fr_error *e);

/* Removes a folder tree without following symlinks. */
int hpc_rmtree(const char *path);

#endif
