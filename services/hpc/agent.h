/* The fresco-hpc agent on a compute node: boots and destroys a VM job's
 * guests on the user's behalf (it runs as root; users never touch
 * libvirt), when the batch system's prologue or the job wrapper asks.
 *
 * Job start (hpc.jobstart) checks, before anything is booted, that the
 * batch system runs that job now, that its job folder lies in the spool and
 * belongs to the job's user, that this node may run VMs, and the request
 * again against this node's policy with the uid/gid the batch system gives.
 * Then: node metadata, the tagged collector task (monitoring.enabled), the
 * guests' files in run_dir/<job>/, image copies, and the guests through
 * hpc_vm_boot(). Job end (hpc.jobend, also from the epilogue) destroys
 * and undefines the guests and removes copies, seeds and the task; it
 * reads what to remove from run_dir/<job>/, so it works after a restart
 * and when called twice. */
#ifndef HPC_AGENT_H
#define HPC_AGENT_H

#include <msgpack.h>

#include "backend.h"
#include "fresco/err.h"
#include "policy.h"

typedef struct hpc_agent hpc_agent;

/* Called on every job state change the agent sees (thread-safe use). */
typedef void (*hpc_agent_emit)(void *ctx, const char *batch_id, const char *dir, hpc_state st,
                               int exit_code, const char *detail);

int hpc_agent_new(hpc_agent **out, const hpc_conf *c, const char *node, hpc_agent_emit emit,
                  void *ctx, fr_error *e);
void hpc_agent_destroy(hpc_agent *a);

/* The boot path, in one function: defines the domain from xml on conn
 * (a virConnectPtr) and starts it, then waits until libvirt reports it
 * running, up to timeout_ms. On failure nothing is left defined. name gets
 * the domain's name. */
int hpc_vm_boot(void *conn, const char *xml, int timeout_ms, char *name, size_t len, fr_error *e);

/* Destroys (when running) and undefines the named domain; a domain that is
 * not there is not an error. */
int hpc_vm_destroy(void *conn, const char *name, fr_error *e);

/* Starts the job on this node. dir may be NULL (the prologue knows only the
 * id): then the batch system's script path names it. env: the job's
 * environment (NAME=value; filtered by env_allow), may be NULL. caller: the
 * uid that asked (fr_ctl_reply_peer_uid), -1 when unknown; a known caller
 * other than root must be the job's user (FR_EINVAL, where "caller").
 * Packs the reply map {job, vm_job, node, dir, vms: [names], metadata:
 * text} with pk ({job, vm_job: false} for a plain job). */
int hpc_agent_jobstart(hpc_agent *a, const char *batch_id, const char *dir, char *const *env,
                       int64_t caller, msgpack_packer *pk, fr_error *e);

/* Ends the job on this node: tears everything down. exit_code -1 when
 * unknown (the epilogue). caller as for hpc_agent_jobstart; a job the batch
 * system no longer knows may be ended by root or an unknown caller only.
 * Packs {job, torn_down: bool, vms: n}. */
int hpc_agent_jobend(hpc_agent *a, const char *batch_id, int exit_code, int64_t caller,
                     msgpack_packer *pk, fr_error *e);

/* Whether id is a batch job id fresco acts on: 1..64 bytes of
 * [A-Za-z0-9._-[]], not starting with '.' (so never "." or ".."). */
bool hpc_job_id_ok(const char *id);

/* Domains the agent has running now (for status). */
size_t hpc_agent_active(hpc_agent *a);

#endif
