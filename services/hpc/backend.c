/* Slurm and Torque/PBS commands, spawned without a shell. */
#include "backend.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define RUN_MAX_OUT (4u << 20)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void hpc_run_out_free(hpc_run_out *o)
{
    fr_buf_free(&o->out);
    fr_buf_free(&o->err);
}

int hpc_run(char *const argv[], char *const envp[], int timeout_ms, hpc_run_out *o, fr_error *e)
{
    memset(o, 0, sizeof *o);
    int po[2] = {-1, -1}, pe[2] = {-1, -1};
    if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
        int err = errno;
        for (int i = 0; i < 2; i++) {
            if (po[i] >= 0) {
                close(po[i]);
            }
        }
        return fr_error_set(e, FR_EIO, argv[0], "pipe: %s", strerror(err));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, envp != NULL ? envp : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(po[1]);
    close(pe[1]);
    if (rc != 0) {
        close(po[0]);
        close(pe[0]);
        return fr_error_set(e, FR_EIO, argv[0], "cannot run %s: %s", argv[0], strerror(rc));
    }
    int64_t deadline = now_ms() + timeout_ms;
    struct pollfd fds[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
    int open_fds = 2, rv = 0;
    while (open_fds > 0) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            rv = FR_ETIMEDOUT;
            break;
        }
        int n = poll(fds, 2, (int)left);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || fds[i].revents == 0) {
                continue;
            }
            char buf[8192];
            ssize_t got = read(fds[i].fd, buf, sizeof buf);
            if (got <= 0) {
                close(fds[i].fd);
                fds[i].fd = -1;
                open_fds--;
                continue;
            }
            fr_buf *b = i == 0 ? &o->out : &o->err;
            if (b->len + (size_t)got <= RUN_MAX_OUT && fr_buf_append(b, buf, (size_t)got) != 0) {
                rv = FR_ENOMEM;
            }
        }
    }
    for (int i = 0; i < 2; i++) {
        if (fds[i].fd >= 0) {
            close(fds[i].fd);
        }
    }
    if (rv == FR_ETIMEDOUT) {
        kill(pid, SIGKILL);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (fr_buf_append(&o->out, "", 1) != 0 || fr_buf_append(&o->err, "", 1) != 0) {
        rv = FR_ENOMEM;
    }
    o->out.len--;
    o->err.len--;
    o->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (rv == FR_ETIMEDOUT) {
        return fr_error_set(e, rv, argv[0], "%s did not finish within %d ms", argv[0], timeout_ms);
    }
    return rv;
}

const char *hpc_state_name(hpc_state s)
{
    switch (s) {
    case HPC_QUEUED:
        return "queued";
    case HPC_RUNNING:
        return "running";
    case HPC_DONE:
        return "done";
    case HPC_FAILED:
        return "failed";
    default:
        return "unknown";
    }
}

/* "Key=value" in a one-line scontrol record: value up to the next space. */
static int field(const char *rec, const char *key, char *out, size_t len)
{
    size_t kl = strlen(key);
    for (const char *p = rec; (p = strstr(p, key)) != NULL; p += kl) {
        if ((p == rec || p[-1] == ' ') && p[kl] == '=') {
            const char *v = p + kl + 1;
            size_t n = strcspn(v, " \n");
            if (n >= len) {
                n = len - 1;
            }
            memcpy(out, v, n);
            out[n] = '\0';
            return 0;
        }
    }
    out[0] = '\0';
    return FR_ENOTFOUND;
}

/* "name(123)" -> name, 123 */
static int name_id(const char *s, char *name, size_t len, unsigned *id)
{
    const char *paren = strchr(s, '(');
    if (paren == NULL) {
        return FR_EPROTO;
    }
    size_t n = (size_t)(paren - s);
    if (n >= len) {
        n = len - 1;
    }
    memcpy(name, s, n);
    name[n] = '\0';
    char *end;
    unsigned long v = strtoul(paren + 1, &end, 10);
    if (*end != ')') {
        return FR_EPROTO;
    }
    *id = (unsigned)v;
    return 0;
}

static hpc_state slurm_state(const char *s, int exit_code)
{
    if (strcmp(s, "PENDING") == 0 || strcmp(s, "CONFIGURING") == 0 || strcmp(s, "REQUEUED") == 0 ||
        strcmp(s, "SUSPENDED") == 0) {
        return HPC_QUEUED;
    }
    if (strcmp(s, "RUNNING") == 0 || strcmp(s, "COMPLETING") == 0) {
        return HPC_RUNNING;
    }
    if (strcmp(s, "COMPLETED") == 0) {
        return exit_code == 0 ? HPC_DONE : HPC_FAILED;
    }
    return HPC_FAILED; /* FAILED, CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY... */
}

static int expand_nodes(const hpc_conf *c, const char *list, hpc_jobinfo *ji, fr_error *e)
{
    ji->nnodes = 0;
    if (list[0] == '\0' || strcmp(list, "(null)") == 0) {
        return 0;
    }
    fr_buf names = FR_BUF_INIT;
    int rv = 0;
    if (strchr(list, '[') != NULL) {
        char *argv[] = {c->scontrol, "show", "hostnames", (char *)list, NULL};
        hpc_run_out o;
        rv = hpc_run(argv, NULL, 10000, &o, e);
        if (rv == 0) {
            rv = fr_buf_append(&names, o.out.data, o.out.len + 1);
        }
        hpc_run_out_free(&o);
    } else {
        rv = fr_buf_append(&names, list, strlen(list) + 1);
    }
    if (rv != 0) {
        fr_buf_free(&names);
        return rv;
    }
    char *save = NULL;
    for (char *t = strtok_r((char *)names.data, ",\n ", &save);
         t != NULL && ji->nnodes < HPC_MAX_NODES; t = strtok_r(NULL, ",\n ", &save)) {
        snprintf(ji->nodes[ji->nnodes++], sizeof ji->nodes[0], "%.63s", t);
    }
    fr_buf_free(&names);
    return 0;
}

static int slurm_info(const hpc_conf *c, const char *id, hpc_jobinfo *ji, fr_error *e)
{
    char *argv[] = {c->scontrol, "show", "job", "-o", (char *)id, NULL};
    hpc_run_out o;
    int rv = hpc_run(argv, NULL, 10000, &o, e);
    if (rv != 0) {
        hpc_run_out_free(&o);
        return rv;
    }
    if (o.status != 0) {
        int nf = strstr(o.err.data ? (char *)o.err.data : "", "Invalid job id") != NULL;
        rv = fr_error_set(e, nf ? FR_ENOTFOUND : FR_EIO, id, "scontrol show job %s: %s", id,
                          o.err.data ? (char *)o.err.data : "failed");
        hpc_run_out_free(&o);
        return rv;
    }
    const char *rec = (const char *)o.out.data;
    char buf[1024];
    field(rec, "JobState", ji->raw_state, sizeof ji->raw_state);
    ji->exit_code = -1;
    if (field(rec, "ExitCode", buf, sizeof buf) == 0) {
        int code = 0, sig = 0;
        if (sscanf(buf, "%d:%d", &code, &sig) == 2) {
            ji->exit_code = sig != 0 ? 128 + sig : code;
        }
    }
    unsigned uid = 0, gid = 0;
    char gname[64];
    if (field(rec, "UserId", buf, sizeof buf) == 0 &&
        name_id(buf, ji->user, sizeof ji->user, &uid) == 0 &&
        field(rec, "GroupId", buf, sizeof buf) == 0 &&
        name_id(buf, gname, sizeof gname, &gid) == 0) {
        ji->uid = uid;
        ji->gid = gid;
        ji->have_ids = true;
    }
    field(rec, "Command", ji->command, sizeof ji->command);
    field(rec, "WorkDir", ji->workdir, sizeof ji->workdir);
    field(rec, "JobName", ji->name, sizeof ji->name);
    ji->state = slurm_state(ji->raw_state, ji->exit_code);
    if (ji->state != HPC_DONE && ji->state != HPC_FAILED) {
        ji->exit_code = -1; /* Slurm shows 0:0 until the job ends */
    }
    if (field(rec, "NodeList", buf, sizeof buf) == 0) {
        rv = expand_nodes(c, buf, ji, e);
    }
    hpc_run_out_free(&o);
    return rv;
}

/* qstat -f: "    key = value" lines */
static int pbs_field(const char *rec, const char *key, char *out, size_t len)
{
    size_t kl = strlen(key);
    for (const char *p = rec; (p = strstr(p, key)) != NULL; p += kl) {
        if ((p == rec || p[-1] == ' ' || p[-1] == '\t') && strncmp(p + kl, " = ", 3) == 0) {
            const char *v = p + kl + 3;
            size_t n = strcspn(v, "\n");
            if (n >= len) {
                n = len - 1;
            }
            memcpy(out, v, n);
            out[n] = '\0';
            return 0;
        }
    }
    out[0] = '\0';
    return FR_ENOTFOUND;
}

static int pbs_info(const hpc_conf *c, const char *id, hpc_jobinfo *ji, fr_error *e)
{
    char *argv[] = {c->qstat, "-f", (char *)id, NULL};
    hpc_run_out o;
    int rv = hpc_run(argv, NULL, 10000, &o, e);
    if (rv != 0) {
        hpc_run_out_free(&o);
        return rv;
    }
    const char *rec = (const char *)o.out.data;
    if (o.status != 0 || strstr(rec, "job_state") == NULL) {
        rv = fr_error_set(e, FR_ENOTFOUND, id, "qstat -f %s: %s", id,
                          o.err.len ? (char *)o.err.data : "unknown job");
        hpc_run_out_free(&o);
        return rv;
    }
    char buf[1024];
    pbs_field(rec, "job_state", ji->raw_state, sizeof ji->raw_state);
    ji->exit_code = -1;
    if (pbs_field(rec, "exit_status", buf, sizeof buf) == 0) {
        ji->exit_code = atoi(buf);
    }
    unsigned uid = 0, gid = 0;
    char gname[64];
    if (pbs_field(rec, "euser", buf, sizeof buf) == 0 &&
        name_id(buf, ji->user, sizeof ji->user, &uid) == 0 &&
        pbs_field(rec, "egroup", buf, sizeof buf) == 0 &&
        name_id(buf, gname, sizeof gname, &gid) == 0) {
        ji->uid = uid;
        ji->gid = gid;
        ji->have_ids = true;
    } else if (pbs_field(rec, "Job_Owner", buf, sizeof buf) == 0) {
        buf[strcspn(buf, "@")] = '\0';
        snprintf(ji->user, sizeof ji->user, "%.63s", buf);
    }
    pbs_field(rec, "Job_Name", ji->name, sizeof ji->name);
    pbs_field(rec, "init_work_dir", ji->workdir, sizeof ji->workdir);
    char s = ji->raw_state[0];
    ji->state = s == 'Q' || s == 'H' || s == 'W' || s == 'T' ? HPC_QUEUED
                : s == 'R' || s == 'E'                       ? HPC_RUNNING
                : s == 'C' ? (ji->exit_code <= 0 ? HPC_DONE : HPC_FAILED)
                           : HPC_UNKNOWN;
    ji->nnodes = 0;
    if (pbs_field(rec, "exec_host", buf, sizeof buf) == 0) {
        char *save = NULL;
        for (char *t = strtok_r(buf, "+", &save); t != NULL && ji->nnodes < HPC_MAX_NODES;
             t = strtok_r(NULL, "+", &save)) {
            t[strcspn(t, "/")] = '\0';
            bool seen = false;
            for (size_t i = 0; i < ji->nnodes; i++) {
                seen |= strcmp(ji->nodes[i], t) == 0;
            }
            if (!seen) {
                snprintf(ji->nodes[ji->nnodes++], sizeof ji->nodes[0], "%.63s", t);
            }
        }
    }
    hpc_run_out_free(&o);
    return 0;
}

static int id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64 || id[0] == '.') {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isalnum((unsigned char)id[i]) && strchr(".-_[]", id[i]) == NULL) {
            return 0;
        }
    }
    return 1;
}

int hpc_backend_info(const hpc_conf *c, const char *id, hpc_jobinfo *ji, fr_error *e)
{
    memset(ji, 0, sizeof *ji);
    if (!id_ok(id)) {
        return fr_error_set(e, FR_EINVAL, "id", "'%.64s' is not a job id", id);
    }
    return strcmp(c->backend, "pbs") == 0 ? pbs_info(c, id, ji, e) : slurm_info(c, id, ji, e);
}

int hpc_backend_cancel(const hpc_conf *c, const char *id, fr_error *e)
{
    if (!id_ok(id)) {
        return fr_error_set(e, FR_EINVAL, "id", "'%.64s' is not a job id", id);
    }
    int pbs = strcmp(c->backend, "pbs") == 0;
    char *argv[] = {pbs ? c->qdel : c->scancel, (char *)id, NULL};
    hpc_run_out o;
    int rv = hpc_run(argv, NULL, 10000, &o, e);
    if (rv == 0 && o.status != 0) {
        rv = fr_error_set(e, FR_EIO, id, "%s %s: %s", argv[0], id,
                          o.err.len ? (char *)o.err.data : "failed");
    }
    hpc_run_out_free(&o);
    return rv;
}

/* ---- the submission command ---- */

typedef struct argvb {
    char **v;
    size_t n, cap;
    int failed;
} argvb;

static void push(argvb *a, const char *s)
{
    if (a->failed) {
        return;
    }
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        char **nv = realloc(a->v, cap * sizeof *nv);
        if (nv == NULL) {
            a->failed = 1;
            return;
        }
        a->v = nv;
        a->cap = cap;
    }
    if ((a->v[a->n] = strdup(s)) == NULL) {
        a->failed = 1;
        return;
    }
    a->v[++a->n] = NULL;
}

__attribute__((format(printf, 2, 3))) static void pushf(argvb *a, const char *fmt, ...)
{
    char buf[HPC_MAX_ARG + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    push(a, buf);
}

void hpc_argv_free(char **argv)
{
    if (argv == NULL) {
        return;
    }
    for (size_t i = 0; argv[i] != NULL; i++) {
        free(argv[i]);
    }
    free(argv);
}

static const char *strip_host(const char *path)
{
    const char *colon = strchr(path, ':');
    return colon != NULL && strchr(path, '/') > colon ? colon + 1 : path;
}

/* Splits -F's value into words (blanks separate, no quoting: Torque's). */
static void push_words(argvb *a, const char *s)
{
    char *copy = strdup(s);
    if (copy == NULL) {
        a->failed = 1;
        return;
    }
    char *save = NULL;
    for (char *t = strtok_r(copy, " \t", &save); t != NULL; t = strtok_r(NULL, " \t", &save)) {
        push(a, t);
    }
    free(copy);
}

static int slurm_opt(argvb *a, const hpc_opt *o, bool *joined, fr_error *e)
{
    const char *v = o->value;
    switch (o->letter) {
    case 'N':
        pushf(a, "--job-name=%s", v);
        break;
    case 'o':
        pushf(a, "--output=%s", strip_host(v));
        break;
    case 'e':
        pushf(a, "--error=%s", strip_host(v));
        break;
    case 'j':
        *joined = strcmp(v, "oe") == 0 || strcmp(v, "eo") == 0;
        break;
    case 'q':
        pushf(a, "--partition=%s", v);
        break;
    case 'A':
        pushf(a, "--account=%s", v);
        break;
    case 'M':
        pushf(a, "--mail-user=%s", v);
        break;
    case 'm': {
        char types[64] = "";
        for (const char *p = v; *p != '\0'; p++) {
            const char *t = *p == 'a' ? "FAIL" : *p == 'b' ? "BEGIN" : *p == 'e' ? "END" : NULL;
            if (*p == 'n') {
                snprintf(types, sizeof types, "NONE");
                break;
            }
            if (t == NULL) {
                return fr_error_set(e, FR_EINVAL, "-m", "option -m: '%s' is not of a, b, e, n", v);
            }
            size_t l = strlen(types);
            snprintf(types + l, sizeof types - l, "%s%s", l ? "," : "", t);
        }
        pushf(a, "--mail-type=%s", types);
        break;
    }
    case 'd':
    case 'w':
        pushf(a, "--chdir=%s", v);
        break;
    case 'h':
        push(a, "--hold");
        break;
    case 'V':
        push(a, "--export=ALL");
        break;
    case 'v':
        pushf(a, "--export=ALL,%s", v);
        break;
    case 'n':
        push(a, "--exclusive");
        break;
    case 't':
        pushf(a, "--array=%s", v);
        break;
    case 'r':
        push(a, v[0] == 'n' ? "--no-requeue" : "--requeue");
        break;
    case 'W':
        if (strncmp(v, "depend=", 7) == 0) {
            pushf(a, "--dependency=%s", v + 7);
            break;
        }
        return fr_error_set(e, FR_EUNSUPPORTED, "-W",
                            "option -W %s has no sbatch equivalent (only depend=... does)", v);
    case 'z':
    case 'C':
    case 'F':
    case 'l':
    case 'k':
    case 'S':
        break; /* handled by fresco, or only about the output files */
    default:
        return fr_error_set(e, FR_EUNSUPPORTED, "qsub",
                            "option -%c has no sbatch equivalent for VM jobs (set backend: pbs "
                            "to keep Torque's qsub)",
                            o->letter);
    }
    return 0;
}

int hpc_backend_command(const hpc_conf *c, const hpc_qsub *q, const hpc_resources *r,
                        const char *wrapper, char ***argv, fr_error *e)
{
    *argv = NULL;
    for (size_t i = 0; i < q->nopts; i++) {
        char l = q->opts[i].letter;
        if (l == 'u' || l == 'P') {
            return fr_error_set(e, FR_EINVAL, l == 'u' ? "-u" : "-P",
                                "option -%c is not allowed for VM jobs: guests run as the "
                                "submitting user only",
                                l);
        }
        if (l == 'I' || l == 'X') {
            return fr_error_set(e, FR_EUNSUPPORTED, l == 'I' ? "-I" : "-X",
                                "interactive jobs (-%c) cannot run in VMs; submit a job script", l);
        }
    }
    argvb a = {0};
    int rv = 0;
    if (strcmp(c->backend, "pbs") == 0) {
        push(&a, c->real_qsub);
        for (size_t i = 0; i < q->nopts; i++) {
            const hpc_opt *o = &q->opts[i];
            if (o->letter == 'l' || o->letter == 'C' || o->letter == 'F') {
                continue;
            }
            char flag[3] = {'-', o->letter, '\0'};
            push(&a, flag);
            if (o->value != NULL) {
                push(&a, o->value);
            }
        }
        char *res = hpc_resources_render(r);
        if (res == NULL) {
            a.failed = 1;
        } else if (res[0] != '\0') {
            push(&a, "-l");
            push(&a, res);
        }
        free(res);
        const char *fargs = hpc_qsub_last(q, 'F');
        if (fargs != NULL) {
            push(&a, "-F");
            push(&a, fargs);
        }
        push(&a, wrapper);
    } else {
        push(&a, c->sbatch);
        push(&a, "--parsable");
        bool joined = false;
        for (size_t i = 0; i < q->nopts && rv == 0; i++) {
            rv = slurm_opt(&a, &q->opts[i], &joined, e);
        }
        if (rv == 0) {
            if (joined) {
                /* stderr with stdout: drop any --error */
                for (size_t i = 0; i < a.n; i++) {
                    if (strncmp(a.v[i], "--error=", 8) == 0) {
                        free(a.v[i]);
                        memmove(&a.v[i], &a.v[i + 1], (a.n - i) * sizeof *a.v);
                        a.n--;
                        i--;
                    }
                }
            }
            if (r->nodes > 0) {
                pushf(&a, "--nodes=%" PRId64, r->nodes);
            }
            if (r->ppn > 0) {
                pushf(&a, "--ntasks-per-node=%" PRId64, r->ppn);
            }
            if (r->mem > 0) {
                /* MB rounded up; mem may be up to INT64_MAX, so no r->mem + (1 MiB - 1) */
                pushf(&a, "--mem=%" PRId64 "M", r->mem / (1 << 20) + (r->mem % (1 << 20) != 0));
            }
            for (size_t i = 0; i < r->n && rv == 0; i++) {
                if (strcmp(r->name[i], "walltime") == 0) {
                    pushf(&a, "--time=%s", r->value[i]);
                } else if (strcmp(r->name[i], "ncpus") == 0) {
                    pushf(&a, "--cpus-per-task=%s", r->value[i]);
                } else {
                    rv = fr_error_set(e, FR_EUNSUPPORTED, "-l",
                                      "resource '%s' has no sbatch equivalent (nodes, ppn, mem, "
                                      "walltime and ncpus do)",
                                      r->name[i]);
                }
            }
            push(&a, wrapper);
            const char *fargs = hpc_qsub_last(q, 'F');
            if (fargs != NULL) {
                push_words(&a, fargs);
            }
        }
    }
    if (a.failed && rv == 0) {
        rv = FR_ENOMEM;
    }
    if (rv != 0) {
        hpc_argv_free(a.v);
        return rv;
    }
    *argv = a.v;
    return 0;
}

int hpc_backend_submit(const hpc_conf *c, char *const *argv, char *id, size_t idlen, fr_error *e)
{
    (void)c;
    hpc_run_out o;
    int rv = hpc_run(argv, NULL, 60000, &o, e);
    if (rv == 0 && o.status != 0) {
        rv = fr_error_set(e, FR_EREMOTE, argv[0], "%s refused the job (exit %d): %s", argv[0],
                          o.status, o.err.len ? (char *)o.err.data : (char *)o.out.data);
    }
    if (rv == 0) {
        /* sbatch --parsable: "123" or "123;cluster"; qsub: "123.server" */
        const char *s = (const char *)o.out.data;
        const char *line = s;
        /* the last non-empty line holds the id */
        for (const char *p = s; *p != '\0'; p++) {
            if (*p == '\n' && p[1] != '\0' && p[1] != '\n') {
                line = p + 1;
            }
        }
        size_t n = strcspn(line, ";\n \t");
        if (n == 0 || n >= idlen) {
            rv = fr_error_set(e, FR_EPROTO, argv[0], "%s printed no job id: '%.200s'", argv[0], s);
        } else {
            memcpy(id, line, n);
            id[n] = '\0';
            if (!id_ok(id)) {
                rv = fr_error_set(e, FR_EPROTO, argv[0], "%s printed '%.64s', not a job id",
                                  argv[0], id);
            }
        }
    }
    hpc_run_out_free(&o);
    return rv;
}
