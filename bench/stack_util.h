/* Helpers for the benchmarks that run fresco's services as processes from
 * the build tree: start one, wait until it answers, read its counters,
 * stop it. */
#ifndef BENCH_STACK_UTIL_H
#define BENCH_STACK_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fresco/ctl.h"

typedef struct bench_svc {
    pid_t pid;
    char control[64];
    char data_in[64];
    char log[600];
    fr_ctl_client *cli;
} bench_svc;

/* A free TCP port on 127.0.0.1. */
int bench_free_port(void);

/* A fresh directory under /tmp (malloc'd), and its removal. */
char *bench_tmpdir(const char *prefix);
void bench_rmtree(const char *path);

/* Starts <build>/services/<name>/fresco-<name> with --control and (when
 * data_in is true) --data_in on fresh ports, the extra flags
 * (NULL-terminated), its output to <dir>/<name>-<port>.log; waits up to
 * 15 s for it to answer ping. false when it does not (its log printed). */
bool bench_svc_start(bench_svc *s, const char *build, const char *dir, const char *name,
                     bool data_in, const char *const *extra);

/* SIGTERM, waits up to 10 s (then SIGKILL). */
void bench_svc_stop(bench_svc *s);

/* A counter of the service's stats; 0 when absent or unanswered. */
uint64_t bench_counter(bench_svc *s, const char *name);

/* Calls op with args (packed map or NULL); prints the refusal and returns
 * false when it fails. res is freed. */
bool bench_call(bench_svc *s, const char *op, const void *args, size_t len, int timeout_ms);

/* Runs a shell command; the first line of its output into out (may be
 * NULL). Returns its exit status as pclose gives it. */
int bench_run_out(const char *cmd, char *out, size_t cap);

/* A throwaway PostgreSQL cluster (scripts/pg-cluster.sh under source):
 * started in a fresh folder on a free port, its conninfo filled. false
 * when none can be started here. */
typedef struct bench_pg {
    char dir[256];
    char conninfo[256];
    const char *source;
} bench_pg;
bool bench_pg_start(bench_pg *p, const char *source);
void bench_pg_destroy(bench_pg *p);

/* Seconds on a monotonic clock. */
double bench_now(void);

/* CPU seconds (user + system) a child used, from /proc/<pid>/stat. */
double bench_cpu_of(pid_t pid);

#endif
