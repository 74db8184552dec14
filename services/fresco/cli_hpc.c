/* fresco qsub and fresco hpc ...: virtualised batch jobs.
 *
 *   fresco qsub [-list] [-gf] [-vm k=v,...]... <qsub options> [script]
 *   fresco hpc status ID | cancel ID | list | images
 *   fresco hpc job-run DIR [args]     the VM job wrapper (the batch job runs it)
 *   fresco hpc prologue [ID] | epilogue [ID]   batch-system hooks (root)
 *   fresco hpc metadata collect [-o FILE] | merge -o OUT FILE... | diff A[:NODE] B[:NODE]
 *   fresco hpc workload run FILE [-o DIR] [--timeout DURATION]
 *
 * The policy comes from /etc/fresco/hpc.yaml ($FRESCO_HPC_CONFIG). */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <yaml.h>

#include "backend.h"
#include "cli.h"
#include "fresco/ctl.h"
#include "gen.h"
#include "job.h"
#include "nodemeta.h"
#include "policy.h"

extern char **environ;

static void print_err(const char *verb, const fr_error *e, int rv)
{
    fprintf(stderr, "fresco %s: %s%s%s\n", verb, e->where, e->where[0] ? ": " : "",
            e->message[0] ? e->message : fr_strerror(rv));
}

static int load_policy(hpc_conf *hc, const char *verb)
{
    memset(hc, 0, sizeof *hc);
    fr_error e;
    fr_error_clear(&e);
    int rv = hpc_conf_load_file(hc, NULL, &e);
    if (rv != 0) {
        print_err(verb, &e, rv);
        fr_config_free(&hpc_spec, hc);
        return rv;
    }
    return 0;
}

/* ---- fresco qsub ---- */

static int print_image(void *ctx, const hpc_image *im)
{
    (void)ctx;
    char size[32];
    if (im->size >= 1 << 30) {
        snprintf(size, sizeof size, "%.1fG", im->size / (double)(1 << 30));
    } else {
        snprintf(size, sizeof size, "%.1fM", im->size / (double)(1 << 20));
    }
    printf("%-40s %8s  %-8s %s\n", im->name, size, im->distro, im->description);
    return 0;
}

int cli_cmd_qsub(int argc, char **argv)
{
    hpc_conf hc;
    if (load_policy(&hc, "qsub") != 0) {
        return 2;
    }
    bool fresco_words = false;
    for (int i = 0; i < argc; i++) {
        fresco_words |= strcmp(argv[i], "-vm") == 0 || strcmp(argv[i], "-list") == 0 ||
                        strcmp(argv[i], "-gf") == 0;
    }
    hpc_ident_buf who;
    fr_error e;
    fr_error_clear(&e);
    hpc_submit_result res;
    int rv = hpc_ident_self(&who, &e);
    if (rv == 0) {
        rv = hpc_submit(&hc, argc, argv, &who.id, NULL, &res, &e);
    }
    if (rv != 0 && !fresco_words && e.where[0] != '\0' && strncmp(e.where, "argument", 8) == 0) {
        /* not ours to judge: the real qsub reads its own options */
        res.kind = HPC_SUBMIT_PLAIN;
        rv = 0;
    }
    int rc = 0;
    if (rv != 0) {
        print_err("qsub", &e, rv);
        fprintf(stderr, "fresco qsub: nothing was submitted\n");
        rc = 1;
    } else if (res.kind == HPC_SUBMIT_PLAIN) {
        char **qv = calloc((size_t)argc + 2, sizeof *qv);
        if (qv == NULL) {
            rc = 1;
        } else {
            qv[0] = hc.real_qsub;
            memcpy(qv + 1, argv, (size_t)argc * sizeof *qv);
            fflush(NULL);
            execv(hc.real_qsub, qv);
            fprintf(stderr, "fresco qsub: cannot run %s (real_qsub): %s\n", hc.real_qsub,
                    strerror(errno));
            free(qv);
            rc = 1;
        }
    } else if (res.kind == HPC_SUBMIT_LIST) {
        printf("%-40s %8s  %-8s %s\n", "IMAGE", "SIZE", "DISTRO", "DESCRIPTION");
        rv = hpc_images_list(&hc, print_image, NULL, &e);
        if (rv != 0) {
            print_err("qsub -list", &e, rv);
            rc = 1;
        }
    } else if (res.kind == HPC_SUBMIT_GENERATED) {
        printf("%s\n", res.dir);
        fprintf(stderr, "fresco qsub: %zu files written to %s; nothing submitted (-gf)\n",
                res.files, res.dir);
    } else if (!res.quiet) {
        printf("%s\n", res.id);
    }
    fr_config_free(&hpc_spec, &hc);
    return rc;
}

/* ---- calls to fresco-hpc ---- */

static int hpc_call(const cli *c, const hpc_conf *hc, const char *op, const fr_buf *args,
                    int timeout_ms, fr_ctl_result *res)
{
    memset(res, 0, sizeof *res);
    const char *addr =
        c != NULL && c->conf.hpc != NULL && c->conf.hpc[0] != '\0' ? c->conf.hpc : hc->svc.control;
    fr_ctl_client *cl = NULL;
    int rv = fr_ctl_client_open(&cl, addr, c != NULL ? &c->tls : NULL);
    if (rv == 0) {
        rv = fr_ctl_call(cl, op, args ? args->data : NULL, args ? args->len : 0, timeout_ms, res);
        fr_ctl_client_close(cl);
    }
    if (rv == FR_EREMOTE) {
        fprintf(stderr, "fresco: hpc: %s%s%s: %s\n", res->error_code,
                res->error_where[0] ? " at " : "", res->error_where, res->error_message);
    } else if (rv != 0) {
        fprintf(stderr, "fresco: hpc: %s: %s%s%s\n", addr, fr_strerror(rv),
                res->error_message[0] ? ": " : "", res->error_message);
    }
    return rv;
}

static void pk_s(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

static void args_id(fr_buf *b, const char *id)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, 1);
    pk_s(&pk, "id");
    pk_s(&pk, id);
}

static const char *batch_id_env(void)
{
    const char *id = getenv("SLURM_JOB_ID");
    if (id == NULL || *id == '\0') {
        id = getenv("PBS_JOBID");
    }
    return id != NULL && *id != '\0' ? id : NULL;
}

/* The environment as an msgpack array member "env". */
static void pack_env(msgpack_packer *pk)
{
    size_t n = 0;
    while (environ[n] != NULL) {
        n++;
    }
    pk_s(pk, "env");
    msgpack_pack_array(pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        pk_s(pk, environ[i]);
    }
}

static int start_call(const cli *c, const hpc_conf *hc, const char *id, const char *dir,
                      fr_ctl_result *res)
{
    fr_buf a = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &a, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, dir != NULL ? 3 : 2);
    pk_s(&pk, "id");
    pk_s(&pk, id);
    if (dir != NULL) {
        pk_s(&pk, "dir");
        pk_s(&pk, dir);
    }
    pack_env(&pk);
    int rv = hpc_call(c, hc, "hpc.jobstart", &a, (int)hc->boot_timeout_ms + 30000, res);
    fr_buf_free(&a);
    return rv;
}

static int end_call(const cli *c, const hpc_conf *hc, const char *id, int exit_code,
                    fr_ctl_result *res)
{
    fr_buf a = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &a, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, exit_code >= 0 ? 2 : 1);
    pk_s(&pk, "id");
    pk_s(&pk, id);
    if (exit_code >= 0) {
        pk_s(&pk, "exit_code");
        msgpack_pack_int(&pk, exit_code);
    }
    int rv = hpc_call(c, hc, "hpc.jobend", &a, 120000, res);
    fr_buf_free(&a);
    return rv;
}

/* Runs argv with the job's environment plus FRESCO_* and waits. stdin from
 * in_path when not NULL. Returns the exit status (128+signal). */
static int run_wait(char *const *argv, const char *in_path, char *const *envp)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (in_path != NULL) {
        posix_spawn_file_actions_addopen(&fa, 0, in_path, O_RDONLY, 0);
    }
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        fprintf(stderr, "fresco hpc job-run: cannot run %s: %s\n", argv[0], strerror(rc));
        return 127;
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            return 127;
        }
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char **env_with(const char *const *extra)
{
    size_t n = 0, m = 0;
    while (environ[n] != NULL) {
        n++;
    }
    while (extra[m] != NULL) {
        m++;
    }
    char **v = calloc(n + m + 1, sizeof *v);
    if (v == NULL) {
        return NULL;
    }
    memcpy(v, extra, m * sizeof *v);
    memcpy(v + m, environ, n * sizeof *v);
    return v;
}

static volatile sig_atomic_t got_signal;
static void on_signal(int sig)
{
    got_signal = sig;
}

/* Merges every <node>.json of mdir into dir/metadata.json. */
static void merge_metadata(const char *mdir, const char *dir)
{
    DIR *d = opendir(mdir);
    if (d == NULL) {
        return;
    }
    char *paths[256];
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < 256) {
        size_t l = strlen(de->d_name);
        if (de->d_name[0] == '.' || l < 6 || strcmp(de->d_name + l - 5, ".json") != 0) {
            continue;
        }
        char p[PATH_MAX + 300];
        snprintf(p, sizeof p, "%s/%s", mdir, de->d_name);
        paths[n] = strdup(p);
        if (paths[n] != NULL) {
            n++;
        }
    }
    closedir(d);
    if (n > 0) {
        char merged[PATH_MAX + 32];
        snprintf(merged, sizeof merged, "%s/metadata.json", dir);
        fr_error e;
        fr_error_clear(&e);
        if (hpc_nodemeta_merge((const char *const *)paths, n, merged, &e) != 0) {
            fprintf(stderr, "fresco hpc job-run: metadata: %s%s%s\n", e.where,
                    e.where[0] ? ": " : "", e.message);
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(paths[i]);
    }
}

/* The VM job's wrapper: the batch system runs this on the job's first node. */
static int cmd_job_run(const cli *c, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "usage: fresco hpc job-run DIR [args...]\n");
        return 2;
    }
    const char *dir = argv[0];
    const char *id = batch_id_env();
    if (id == NULL) {
        fprintf(stderr, "fresco hpc job-run: neither SLURM_JOB_ID nor PBS_JOBID is set: run by "
                        "the batch system only\n");
        return 2;
    }
    hpc_conf hc;
    if (load_policy(&hc, "hpc job-run") != 0) {
        return 2;
    }
    /* a cancel sends SIGTERM: the VMs still go (and the epilogue makes sure) */
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    fr_ctl_result res;
    int rv = start_call(c, &hc, id, dir, &res);
    if (rv != 0) {
        fprintf(stderr,
                "fresco hpc job-run: job %s: the VMs did not start; the job script did "
                "not run\n",
                id);
        fr_ctl_result_free(&res);
        fr_ctl_result r2;
        end_call(c, &hc, id, 1, &r2);
        fr_ctl_result_free(&r2);
        fr_config_free(&hpc_spec, &hc);
        return 1;
    }
    /* node metadata: each node's agent writes metadata/<node>.json into the
     * job folder at its prologue; this node's also comes in the reply (kept
     * when the agent could not write it). All of them merge into
     * metadata.json, the job's artefact. */
    const char *meta = cli_str(res.result, "metadata");
    const char *node = cli_str(res.result, "node");
    char mdir[PATH_MAX], mpath[PATH_MAX + 80];
    snprintf(mdir, sizeof mdir, "%s/metadata", dir);
    mkdir(mdir, 0755);
    snprintf(mpath, sizeof mpath, "%s/%s.json", mdir, node);
    fr_error me;
    fr_error_clear(&me);
    struct stat mst;
    if (lstat(mdir, &mst) != 0 || !S_ISDIR(mst.st_mode)) {
        fprintf(stderr, "fresco hpc job-run: %s is not a folder: no node metadata\n", mdir);
    } else {
        if (meta[0] != '\0' && node[0] != '\0' && access(mpath, F_OK) != 0) {
            hpc_write_file(mpath, meta, strlen(meta), 0644, &me);
        }
        merge_metadata(mdir, dir);
    }
    fr_buf vms = FR_BUF_INIT;
    const fr_node *v = fr_node_get(res.result, "vms");
    const char *first = NULL;
    for (uint32_t i = 0; v != NULL && v->type == FR_NODE_ARRAY && i < v->len; i++) {
        if (v->v.arr[i].type == FR_NODE_STR) {
            if (vms.len > 0) {
                fr_buf_puts(&vms, " ");
            }
            fr_buf_append(&vms, v->v.arr[i].v.str, v->v.arr[i].len);
            first = first ? first : v->v.arr[i].v.str;
        }
    }
    fr_buf_append(&vms, "", 1);
    char e_vms[4200], e_dir[PATH_MAX + 32];
    snprintf(e_vms, sizeof e_vms, "FRESCO_VMS=%s", (const char *)vms.data);
    snprintf(e_dir, sizeof e_dir, "FRESCO_JOB_DIR=%s", dir);
    const char *extra[] = {e_vms, e_dir, NULL};
    char **envp = env_with(extra);
    char script[PATH_MAX + 16];
    snprintf(script, sizeof script, "%s/script", dir);
    /* the request's vm_prologue / vm_epilogue, around the script */
    char req_path[PATH_MAX + 16], req[16384] = "";
    snprintf(req_path, sizeof req_path, "%s/request", dir);
    FILE *rf = fopen(req_path, "r");
    if (rf != NULL) {
        size_t n = fread(req, 1, sizeof req - 1, rf);
        req[n] = '\0';
        fclose(rf);
    }
    hpc_vmspec s = {0};
    fr_error se;
    fr_error_clear(&se);
    hpc_vmspec_parse_lines(&s, req, strlen(req), req_path, &se);
    bool host = strcmp(hc.guest_exec, "host") == 0;
    int status = 0;
    const char *steps[3] = {s.vm_prologue[0] ? s.vm_prologue : NULL, script,
                            s.vm_epilogue[0] ? s.vm_epilogue : NULL};
    for (int k = 0; k < 3 && envp != NULL && !got_signal; k++) {
        if (steps[k] == NULL || (k == 1 && status != 0)) {
            continue;
        }
        int st;
        if (host) {
            char *av[HPC_MAX_ARG] = {(char *)steps[k]};
            int na = 1;
            for (int i = 1; k == 1 && i < argc && na < HPC_MAX_ARG - 1; i++) {
                av[na++] = argv[i];
            }
            av[na] = NULL;
            st = run_wait(av, NULL, envp);
        } else if (strcmp(s.distro, "osv") == 0) {
            fprintf(stderr, "fresco hpc job-run: OSv guests take commands through their REST "
                            "API; this build runs Linux guests over ssh only\n");
            st = 1;
        } else {
            /* the script on stdin, run as a file by a shell in the first
             * guest, with the wrapper's variables and the job's arguments
             * as single-quoted words (hpc_guest_command) */
            const char *genv[] = {e_vms, e_dir, NULL};
            fr_buf line = FR_BUF_INIT;
            int grv = hpc_guest_command(&line, genv, k == 1 ? argv + 1 : NULL,
                                        k == 1 && argc > 1 ? (size_t)(argc - 1) : 0);
            grv = grv ? grv : fr_buf_append(&line, "", 1);
            if (grv != 0) {
                fprintf(stderr, "fresco hpc job-run: cannot build the guest command: %s\n",
                        fr_strerror(grv));
                st = 1;
            } else {
                char *av[] = {"ssh",
                              "-o",
                              "BatchMode=yes",
                              "-o",
                              "StrictHostKeyChecking=accept-new",
                              (char *)(first ? first : "localhost"),
                              "--",
                              (char *)line.data,
                              NULL};
                st = run_wait(av, steps[k], envp);
            }
            fr_buf_free(&line);
        }
        if (k == 1) {
            status = st;
        } else if (k == 0 && st != 0) {
            fprintf(stderr, "fresco hpc job-run: vm_prologue failed (exit %d)\n", st);
            status = st;
        }
    }
    if (got_signal) {
        status = 128 + got_signal;
    }
    free(envp);
    fr_buf_free(&vms);
    fr_ctl_result_free(&res);
    fr_ctl_result r2;
    end_call(c, &hc, id, status, &r2);
    fr_ctl_result_free(&r2);
    fr_config_free(&hpc_spec, &hc);
    return status;
}

/* Batch-system hooks: Slurm's Prolog/Epilog (SLURM_JOB_ID) or Torque's
 * mom_priv/prologue and epilogue (the id is the first argument). They never
 * fail: a refusal or an unreachable agent only leaves a log line, and the
 * job wrapper's own call is the one that stops a VM job. */
static int cmd_hook(const cli *c, int argc, char **argv, bool start)
{
    const char *id = argc > 0 ? argv[0] : batch_id_env();
    if (id == NULL) {
        fprintf(stderr, "fresco hpc %s: no job id (argument, SLURM_JOB_ID or PBS_JOBID)\n",
                start ? "prologue" : "epilogue");
        return 2;
    }
    hpc_conf hc;
    if (load_policy(&hc, start ? "hpc prologue" : "hpc epilogue") != 0) {
        return 0;
    }
    fr_ctl_result res;
    int rv = start ? start_call(c, &hc, id, NULL, &res) : end_call(c, &hc, id, -1, &res);
    /* A refusal is logged (stderr goes to the batch system's log) but does
     * not fail the hook: Slurm and Torque take a failed prologue as a
     * broken node and drain it, so one bad request would stop the node for
     * everyone. The job wrapper asks again, gets the same refusal, and the
     * job fails on its own. */
    (void)rv;
    int rc = 0;
    fr_ctl_result_free(&res);
    fr_config_free(&hpc_spec, &hc);
    return rc;
}

/* ---- status, cancel, list, images ---- */

static void print_node(const fr_node *n, int depth);

static void print_scalar(const fr_node *n)
{
    switch (n->type) {
    case FR_NODE_STR:
        printf("%s", n->v.str);
        break;
    case FR_NODE_UINT:
        printf("%llu", (unsigned long long)n->v.u);
        break;
    case FR_NODE_INT:
        printf("%lld", (long long)n->v.i);
        break;
    case FR_NODE_BOOL:
        printf("%s", n->v.b ? "true" : "false");
        break;
    case FR_NODE_NIL:
        printf("-");
        break;
    case FR_NODE_FLOAT:
        printf("%g", n->v.f);
        break;
    default:
        print_node(n, 1);
    }
}

static void print_node(const fr_node *n, int depth)
{
    if (n->type == FR_NODE_MAP) {
        for (uint32_t i = 0; i < n->len; i++) {
            printf("%*s%-12s ", depth * 2, "", n->v.kv[2 * i].v.str);
            const fr_node *v = &n->v.kv[2 * i + 1];
            if (v->type == FR_NODE_ARRAY) {
                for (uint32_t k = 0; k < v->len; k++) {
                    printf("%s", k ? " " : "");
                    print_scalar(&v->v.arr[k]);
                }
            } else {
                print_scalar(v);
            }
            printf("\n");
        }
    } else if (n->type == FR_NODE_ARRAY) {
        for (uint32_t i = 0; i < n->len; i++) {
            const fr_node *row = &n->v.arr[i];
            if (row->type == FR_NODE_MAP) {
                for (uint32_t k = 0; k < row->len; k++) {
                    printf("%s", k ? "  " : "");
                    print_scalar(&row->v.kv[2 * k + 1]);
                }
                printf("\n");
            } else {
                print_scalar(row);
                printf("\n");
            }
        }
    } else {
        print_scalar(n);
        printf("\n");
    }
}

static int cmd_simple(const cli *c, const char *op, const char *id)
{
    hpc_conf hc;
    if (load_policy(&hc, "hpc") != 0) {
        return 2;
    }
    fr_buf a = FR_BUF_INIT;
    if (id != NULL) {
        args_id(&a, id);
    }
    fr_ctl_result res;
    int rv = hpc_call(c, &hc, op, id ? &a : NULL, (int)c->conf.timeout_ms + 10000, &res);
    if (rv == 0) {
        print_node(res.result, 0);
    }
    fr_buf_free(&a);
    fr_ctl_result_free(&res);
    fr_config_free(&hpc_spec, &hc);
    return rv == 0 ? 0 : 1;
}

/* ---- metadata ---- */

static int read_all(const char *path, char **out, size_t *len, fr_error *e)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return fr_error_set(e, FR_EIO, path, "cannot open: %s", strerror(errno));
    }
    size_t cap = 65536, n = 0;
    char *b = malloc(cap);
    while (b != NULL) {
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (n < cap) {
            break;
        }
        if (cap >= (64u << 20)) {
            free(b);
            fclose(f);
            return fr_error_set(e, FR_ETOOBIG, path, "larger than 64 MiB");
        }
        char *nb = realloc(b, cap * 2);
        if (nb == NULL) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    fclose(f);
    if (b == NULL) {
        return FR_ENOMEM;
    }
    *out = b;
    *len = n;
    return 0;
}

static int load_doc(const char *spec, hpc_json **j, char *node, size_t nlen, fr_error *e)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s", spec);
    node[0] = '\0';
    struct stat st;
    char *colon = strrchr(path, ':');
    if (colon != NULL && stat(path, &st) != 0) {
        *colon = '\0';
        snprintf(node, nlen, "%s", colon + 1);
    }
    char *text = NULL;
    size_t len = 0;
    int rv = read_all(path, &text, &len, e);
    if (rv != 0) {
        return rv;
    }
    rv = hpc_json_parse(text, len, j, e);
    free(text);
    if (rv != 0 && e != NULL) {
        char w[sizeof e->where];
        snprintf(w, sizeof w, "%.100s:%.50s", path, e->where);
        memcpy(e->where, w, sizeof w);
    }
    return rv;
}

static int cmd_metadata(int argc, char **argv)
{
    fr_error e;
    fr_error_clear(&e);
    if (argc >= 1 && strcmp(argv[0], "collect") == 0) {
        const char *out = argc >= 3 && strcmp(argv[1], "-o") == 0 ? argv[2] : NULL;
        hpc_conf hc;
        if (load_policy(&hc, "hpc metadata") != 0) {
            return 2;
        }
        const char *allow[65];
        size_t na = 0;
        for (; na < hc.env_allow.n && na < 64; na++) {
            allow[na] = hc.env_allow.v[na];
        }
        allow[na] = NULL;
        hpc_nodemeta_opts o = {.fresco_version = FRESCO_VERSION, .env_allow = allow};
        fr_buf b = FR_BUF_INIT;
        int rv = hpc_nodemeta_collect(&o, &b, &e);
        if (rv == 0) {
            rv = out != NULL ? hpc_write_file(out, b.data, b.len, 0644, &e)
                             : (fwrite(b.data, 1, b.len, stdout) == b.len ? 0 : FR_EIO);
        }
        fr_buf_free(&b);
        fr_config_free(&hpc_spec, &hc);
        if (rv != 0) {
            print_err("hpc metadata collect", &e, rv);
            return 1;
        }
        return 0;
    }
    if (argc >= 4 && strcmp(argv[0], "merge") == 0 && strcmp(argv[1], "-o") == 0) {
        int rv = hpc_nodemeta_merge((const char *const *)argv + 3, (size_t)argc - 3, argv[2], &e);
        if (rv != 0) {
            print_err("hpc metadata merge", &e, rv);
            return 1;
        }
        return 0;
    }
    if (argc == 3 && strcmp(argv[0], "diff") == 0) {
        hpc_json *a = NULL, *b = NULL;
        char na[128], nb[128];
        int rv = load_doc(argv[1], &a, na, sizeof na, &e);
        if (rv == 0) {
            rv = load_doc(argv[2], &b, nb, sizeof nb, &e);
        }
        fr_buf out = FR_BUF_INIT;
        if (rv == 0) {
            rv = hpc_nodemeta_diff(a, na[0] ? na : NULL, b, nb[0] ? nb : NULL, &out, &e);
        }
        hpc_json_free(a);
        hpc_json_free(b);
        if (rv < 0) {
            fr_buf_free(&out);
            print_err("hpc metadata diff", &e, rv);
            return 2;
        }
        fwrite(out.data, 1, out.len, stdout);
        printf("%d difference%s\n", rv, rv == 1 ? "" : "s");
        fr_buf_free(&out);
        return rv == 0 ? 0 : 1;
    }
    fprintf(stderr, "usage: fresco hpc metadata collect [-o FILE] | merge -o OUT FILE... | "
                    "diff A[:NODE] B[:NODE]\n");
    return 2;
}

/* ---- workload ---- */

int cli_workload_run(const char *file, const char *out_dir, int64_t timeout_ms);

int cli_cmd_hpc(cli *c)
{
    if (c->argc < 1) {
        fprintf(stderr, "usage: fresco hpc status ID | cancel ID | list | images | metadata ... | "
                        "workload run FILE | job-run DIR | prologue | epilogue\n");
        return 2;
    }
    const char *sub = c->argv[0];
    int argc = c->argc - 1;
    char **argv = c->argv + 1;
    if ((strcmp(sub, "status") == 0 || strcmp(sub, "cancel") == 0) && argc == 1) {
        return cmd_simple(c, sub[0] == 's' ? "hpc.status" : "hpc.cancel", argv[0]);
    }
    if (strcmp(sub, "list") == 0 && argc == 0) {
        return cmd_simple(c, "hpc.list", NULL);
    }
    if (strcmp(sub, "images") == 0 && argc == 0) {
        return cmd_simple(c, "hpc.images", NULL);
    }
    if (strcmp(sub, "job-run") == 0) {
        return cmd_job_run(c, argc, argv);
    }
    if (strcmp(sub, "prologue") == 0 || strcmp(sub, "epilogue") == 0) {
        return cmd_hook(c, argc, argv, sub[0] == 'p');
    }
    if (strcmp(sub, "metadata") == 0) {
        return cmd_metadata(argc, argv);
    }
    if (strcmp(sub, "workload") == 0 && argc >= 2 && strcmp(argv[0], "run") == 0) {
        /* workload run [-o DIR] [--timeout D] FILE, options in any order */
        const char *out = NULL, *file = NULL;
        int64_t timeout = 3600000;
        for (int i = 1; i < argc; i++) {
            if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
                out = argv[++i];
            } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
                if (fr_parse_duration_ms(argv[i + 1], &timeout) != 0) {
                    fprintf(stderr, "fresco hpc workload run: --timeout '%s' is not a duration\n",
                            argv[i + 1]);
                    return 2;
                }
                i++;
            } else if (argv[i][0] != '-' && file == NULL) {
                file = argv[i];
            } else {
                fprintf(stderr, "fresco hpc workload run: unknown argument '%s'\n", argv[i]);
                return 2;
            }
        }
        if (file == NULL) {
            fprintf(stderr, "usage: fresco hpc workload run [-o DIR] [--timeout D] FILE\n");
            return 2;
        }
        return cli_workload_run(file, out, timeout);
    }
    fprintf(stderr, "fresco hpc: unknown or incomplete command '%s' (fresco --help)\n", sub);
    return 2;
}
