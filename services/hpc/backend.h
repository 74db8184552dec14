/* The batch system: Slurm (sbatch, scontrol, scancel) or Torque/PBS (qsub,
 * qstat, qdel), always run with posix_spawn and an argument vector - never
 * through a shell - with a deadline and their output captured. */
#ifndef HPC_BACKEND_H
#define HPC_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fresco/buf.h"
#include "fresco/err.h"
#include "policy.h"
#include "qsub.h"

typedef struct hpc_run_out {
    int status; /* exit code, or 128+signal */
    fr_buf out; /* stdout, NUL-terminated */
    fr_buf err; /* stderr, NUL-terminated */
} hpc_run_out;

/* Runs argv[0] (a path, or a name looked up on PATH) with argv and envp
 * (NULL: this process's), stdin from /dev/null, for at most timeout_ms
 * (then SIGKILL and FR_ETIMEDOUT). Output is kept up to 4 MiB each.
 * Returns 0 when the program ran (whatever its exit code: see o->status),
 * or FR_EIO/FR_ETIMEDOUT with e filled. Free o with hpc_run_out_free. */
int hpc_run(char *const argv[], char *const envp[], int timeout_ms, hpc_run_out *o, fr_error *e);
void hpc_run_out_free(hpc_run_out *o);

typedef enum hpc_state {
    HPC_UNKNOWN = 0,
    HPC_QUEUED,
    HPC_RUNNING,
    HPC_DONE,   /* ended with exit code 0 */
    HPC_FAILED, /* ended otherwise: non-zero exit, cancelled, timed out, node failure */
} hpc_state;

const char *hpc_state_name(hpc_state s);

#define HPC_MAX_NODES 64
typedef struct hpc_jobinfo {
    hpc_state state;
    char raw_state[32]; /* the batch system's word: RUNNING, COMPLETED, R, C... */
    int exit_code;      /* when ended; -1 unknown */
    char user[64];
    uid_t uid;
    gid_t gid;
    bool have_ids;
    char command[1024]; /* the submitted script's path, when the system says */
    char workdir[1024];
    char name[256];
    size_t nnodes;
    char nodes[HPC_MAX_NODES][64];
} hpc_jobinfo;

/* The batch system's view of job id. FR_ENOTFOUND when it does not know it
 * (any more). */
int hpc_backend_info(const hpc_conf *c, const char *id, hpc_jobinfo *ji, fr_error *e);

/* Cancels job id. */
int hpc_backend_cancel(const hpc_conf *c, const char *id, fr_error *e);

/* Builds the submission command for a VM job: the wrapper script, the
 * options of q (Torque's for pbs, translated for slurm; refusing what has
 * no equivalent, naming the option), and the resources r as raised for the
 * VMs. script_args are passed to the wrapper (from -F). argv is
 * NULL-terminated, malloc'd strings; free with hpc_argv_free. */
int hpc_backend_command(const hpc_conf *c, const hpc_qsub *q, const hpc_resources *r,
                        const char *wrapper, char ***argv, fr_error *e);
void hpc_argv_free(char **argv);

/* Submits (runs argv) and reads the job id the system prints. */
int hpc_backend_submit(const hpc_conf *c, char *const *argv, char *id, size_t idlen, fr_error *e);

#endif
