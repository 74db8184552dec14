/* fresco hpc workload run FILE: a workload YAML end to end (the format of
 * vTorque's experiment descriptions):
 *
 *   workload:
 *     name: my-experiment
 *     params:
 *       job_script_name: job.sh
 *       experiment_dir: /home/me/exp
 *       qsub_number_of_nodes: 1
 *       qsub_number_of_processes_per_node: 2
 *     vTorque:                      optional: without it the job is plain
 *       IMG: debian.qcow2
 *       DISTRO: debian | RAM: 1024 | VCPUS: 1 | VMS_PER_NODE: 1 | METADATA: /path
 *       DISK | ARCH | HYPERVISOR | VCPU_PINNING | VM_PROLOGUE | VM_EPILOGUE
 *       VRDMA | IOCM | IOCM_MIN | IOCM_MAX | FS_TYPE
 *
 * Submits from experiment_dir, waits for the job to end, and gathers into
 * one result folder (-o DIR, default <experiment_dir>/<name>-<job id>):
 *   job.out          the job's output (stdout and stderr)
 *   job              id, state, exit code, job folder, telemetry tag
 *   metadata.json    the nodes' metadata (VM jobs)
 *   request, submit  what was asked and how it was submitted (VM jobs) */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <yaml.h>

#include "backend.h"
#include "gen.h"
#include "job.h"
#include "policy.h"

static const struct {
    const char *yaml;
    const char *vm;
} vt_keys[] = {
    {"IMG", "img"},
    {"DISTRO", "distro"},
    {"RAM", "ram"},
    {"VCPUS", "vcpus"},
    {"VMS_PER_NODE", "vms_per_node"},
    {"METADATA", "metadata"},
    {"DISK", "disk"},
    {"ARCH", "arch"},
    {"HYPERVISOR", "hypervisor"},
    {"VCPU_PINNING", "vcpu_pinning"},
    {"VM_PROLOGUE", "vm_prologue"},
    {"VM_EPILOGUE", "vm_epilogue"},
    {"VRDMA", "vrdma"},
    {"IOCM", "iocm"},
    {"IOCM_MIN", "iocm_min_cores"},
    {"IOCM_MAX", "iocm_max_cores"},
    {"FS_TYPE", "fs_type"},
};

typedef struct workload {
    char name[128];
    char script[256];
    char dir[PATH_MAX];
    long nodes, ppn;
    char vm[4096];
} workload;

static int where_err(const char *file, const yaml_node_t *n, const char *fmt, const char *a)
{
    fprintf(stderr, "fresco hpc workload: %s:%zu:%zu: ", file, n->start_mark.line + 1,
            n->start_mark.column + 1);
    fprintf(stderr, fmt, a);
    fprintf(stderr, "\n");
    return -1;
}

static int scalar(yaml_document_t *d, yaml_node_t *n, const char *file, const char *key,
                  const char **out)
{
    if (n->type != YAML_SCALAR_NODE) {
        return where_err(file, n, "'%s' must be a single value", key);
    }
    *out = (const char *)n->data.scalar.value;
    (void)d;
    return 0;
}

static int name_ok(const char *s)
{
    if (*s == '\0' || strlen(s) > 100) {
        return 0;
    }
    for (; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.')) {
            return 0;
        }
    }
    return 1;
}

int cli_workload_parse(const char *file, const char *text, size_t len, workload *w);

int cli_workload_parse(const char *file, const char *text, size_t len, workload *w)
{
    memset(w, 0, sizeof *w);
    yaml_parser_t p;
    yaml_document_t d;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &d)) {
        fprintf(stderr, "fresco hpc workload: %s:%zu:%zu: %s\n", file, p.problem_mark.line + 1,
                p.problem_mark.column + 1, p.problem ? p.problem : "bad YAML");
        yaml_parser_delete(&p);
        return -1;
    }
    yaml_parser_delete(&p);
    int rv = 0;
    yaml_node_t *root = yaml_document_get_root_node(&d);
    yaml_node_t *wl = NULL;
    if (root == NULL || root->type != YAML_MAPPING_NODE) {
        fprintf(stderr, "fresco hpc workload: %s: must hold a 'workload:' mapping\n", file);
        rv = -1;
        goto out;
    }
    for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
         pr < root->data.mapping.pairs.top && rv == 0; pr++) {
        yaml_node_t *k = yaml_document_get_node(&d, pr->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, "workload") == 0) {
            wl = yaml_document_get_node(&d, pr->value);
        } else {
            rv = where_err(file, k, "unknown key '%s' (the file holds 'workload:')",
                           k->type == YAML_SCALAR_NODE ? (char *)k->data.scalar.value : "?");
        }
    }
    if (rv == 0 && (wl == NULL || wl->type != YAML_MAPPING_NODE)) {
        fprintf(stderr, "fresco hpc workload: %s: 'workload' must be a mapping\n", file);
        rv = -1;
    }
    size_t vlen = 0;
    for (yaml_node_pair_t *pr = rv == 0 ? wl->data.mapping.pairs.start : NULL;
         pr != NULL && pr < wl->data.mapping.pairs.top && rv == 0; pr++) {
        yaml_node_t *k = yaml_document_get_node(&d, pr->key);
        yaml_node_t *v = yaml_document_get_node(&d, pr->value);
        const char *key = k->type == YAML_SCALAR_NODE ? (char *)k->data.scalar.value : "?";
        const char *s;
        if (strcmp(key, "name") == 0) {
            if ((rv = scalar(&d, v, file, key, &s)) == 0 && !name_ok(s)) {
                rv = where_err(file, v, "workload.name '%s' must be 1-100 of [A-Za-z0-9._-]", s);
            }
            if (rv == 0) {
                snprintf(w->name, sizeof w->name, "%s", s);
            }
        } else if (strcmp(key, "params") == 0 || strcmp(key, "vTorque") == 0) {
            bool vt = key[0] == 'v';
            if (v->type != YAML_MAPPING_NODE) {
                rv = where_err(file, v, "'%s' must be a mapping", key);
                break;
            }
            for (yaml_node_pair_t *q = v->data.mapping.pairs.start;
                 q < v->data.mapping.pairs.top && rv == 0; q++) {
                yaml_node_t *kk = yaml_document_get_node(&d, q->key);
                yaml_node_t *vv = yaml_document_get_node(&d, q->value);
                const char *k2 = kk->type == YAML_SCALAR_NODE ? (char *)kk->data.scalar.value : "?";
                if ((rv = scalar(&d, vv, file, k2, &s)) != 0) {
                    break;
                }
                if (vt) {
                    size_t i = 0;
                    for (; i < sizeof vt_keys / sizeof vt_keys[0]; i++) {
                        if (strcmp(vt_keys[i].yaml, k2) == 0) {
                            break;
                        }
                    }
                    if (i == sizeof vt_keys / sizeof vt_keys[0]) {
                        rv = where_err(file, kk,
                                       "unknown vTorque key '%s' (IMG, DISTRO, RAM, VCPUS, "
                                       "VMS_PER_NODE, METADATA, DISK, ARCH, HYPERVISOR, "
                                       "VCPU_PINNING, VM_PROLOGUE, VM_EPILOGUE, VRDMA, IOCM, "
                                       "IOCM_MIN, IOCM_MAX, FS_TYPE)",
                                       k2);
                        break;
                    }
                    if (strchr(s, ',') != NULL) {
                        rv = where_err(file, vv, "vTorque.%s: a value cannot hold ','", k2);
                        break;
                    }
                    int n = snprintf(w->vm + vlen, sizeof w->vm - vlen, "%s%s=%s", vlen ? "," : "",
                                     vt_keys[i].vm, s);
                    if (n < 0 || (size_t)n >= sizeof w->vm - vlen) {
                        rv = where_err(file, vv, "vTorque.%s: too long", k2);
                        break;
                    }
                    vlen += (size_t)n;
                } else if (strcmp(k2, "job_script_name") == 0) {
                    if (strchr(s, '/') != NULL || !name_ok(s)) {
                        rv = where_err(file, vv,
                                       "params.job_script_name '%s' must be a file name in "
                                       "experiment_dir",
                                       s);
                    } else {
                        snprintf(w->script, sizeof w->script, "%s", s);
                    }
                } else if (strcmp(k2, "experiment_dir") == 0) {
                    if (s[0] != '/' || strlen(s) >= sizeof w->dir) {
                        rv = where_err(file, vv, "params.experiment_dir '%s' must be absolute", s);
                    } else {
                        snprintf(w->dir, sizeof w->dir, "%s", s);
                    }
                } else if (strcmp(k2, "qsub_number_of_nodes") == 0 ||
                           strcmp(k2, "qsub_number_of_processes_per_node") == 0) {
                    char *end;
                    long n = strtol(s, &end, 10);
                    if (*end != '\0' || n < 1 || n > 100000) {
                        rv = where_err(file, vv, "'%s' must be a whole number from 1", s);
                    } else if (k2[18] == 'n') {
                        w->nodes = n;
                    } else {
                        w->ppn = n;
                    }
                } else {
                    rv = where_err(file, kk,
                                   "unknown params key '%s' (job_script_name, experiment_dir, "
                                   "qsub_number_of_nodes, qsub_number_of_processes_per_node)",
                                   k2);
                }
            }
        } else {
            rv = where_err(file, k, "unknown key 'workload.%s' (name, params, vTorque)", key);
        }
    }
    if (rv == 0 && (w->name[0] == '\0' || w->script[0] == '\0' || w->dir[0] == '\0')) {
        fprintf(stderr,
                "fresco hpc workload: %s: workload.name, params.job_script_name and "
                "params.experiment_dir are required\n",
                file);
        rv = -1;
    }
out:
    yaml_document_delete(&d);
    return rv;
}

static int copy_into(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb");
    if (in == NULL) {
        return -1;
    }
    FILE *out = fopen(dst, "wb");
    if (out == NULL) {
        fclose(in);
        return -1;
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        fwrite(buf, 1, n, out);
    }
    fclose(in);
    return fclose(out) == 0 ? 0 : -1;
}

int cli_workload_run(const char *file, const char *out_dir, int64_t timeout_ms)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        fprintf(stderr, "fresco hpc workload: %s: %s\n", file, strerror(errno));
        return 2;
    }
    static char text[1 << 20];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    workload w;
    if (cli_workload_parse(file, text, len, &w) != 0) {
        return 2;
    }
    hpc_conf hc;
    memset(&hc, 0, sizeof hc);
    fr_error e;
    fr_error_clear(&e);
    if (hpc_conf_load_file(&hc, NULL, &e) != 0) {
        fprintf(stderr, "fresco hpc workload: %s: %s\n", e.where, e.message);
        fr_config_free(&hpc_spec, &hc);
        return 2;
    }
    if (chdir(w.dir) != 0) {
        fprintf(stderr, "fresco hpc workload: experiment_dir %s: %s\n", w.dir, strerror(errno));
        fr_config_free(&hpc_spec, &hc);
        return 2;
    }
    char result[PATH_MAX + 160];
    snprintf(result, sizeof result, "%s", out_dir != NULL ? out_dir : "");
    char tmpl[PATH_MAX + 160];
    if (out_dir == NULL) {
        snprintf(tmpl, sizeof tmpl, "%s/%s-XXXXXX", w.dir, w.name);
        if (mkdtemp(tmpl) == NULL) {
            fprintf(stderr, "fresco hpc workload: %s: %s\n", tmpl, strerror(errno));
            fr_config_free(&hpc_spec, &hc);
            return 2;
        }
        snprintf(result, sizeof result, "%s", tmpl);
    } else if (mkdir(result, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "fresco hpc workload: %s: %s\n", result, strerror(errno));
        fr_config_free(&hpc_spec, &hc);
        return 2;
    }
    char abs_result[PATH_MAX + 160];
    if (realpath(result, abs_result) == NULL) {
        snprintf(abs_result, sizeof abs_result, "%s", result);
    }
    char out_file[PATH_MAX + 200], res_spec[64];
    snprintf(out_file, sizeof out_file, "%s/job.out", abs_result);
    if (w.nodes == 0) {
        w.nodes = 1;
    }
    if (w.ppn > 0) {
        snprintf(res_spec, sizeof res_spec, "nodes=%ld:ppn=%ld", w.nodes, w.ppn);
    } else {
        snprintf(res_spec, sizeof res_spec, "nodes=%ld", w.nodes);
    }
    char *argv[16];
    int argc = 0;
    argv[argc++] = "-N";
    argv[argc++] = w.name;
    argv[argc++] = "-j";
    argv[argc++] = "oe";
    argv[argc++] = "-o";
    argv[argc++] = out_file;
    argv[argc++] = "-l";
    argv[argc++] = res_spec;
    if (w.vm[0] != '\0') {
        argv[argc++] = "-vm";
        argv[argc++] = w.vm;
    }
    argv[argc++] = w.script;
    argv[argc] = NULL;
    hpc_ident_buf who;
    hpc_submit_result res;
    int rv = hpc_ident_self(&who, &e);
    rv = rv ? rv : hpc_submit(&hc, argc, argv, &who.id, NULL, &res, &e);
    if (rv == 0 && res.kind == HPC_SUBMIT_PLAIN) {
        char *qv[18] = {hc.real_qsub};
        memcpy(qv + 1, argv, (size_t)(argc + 1) * sizeof *qv);
        rv = hpc_backend_submit(&hc, qv, res.id, sizeof res.id, &e);
    }
    if (rv != 0) {
        fprintf(stderr, "fresco hpc workload: %s%s%s\nfresco hpc workload: nothing submitted\n",
                e.where, e.where[0] ? ": " : "", e.message);
        fr_config_free(&hpc_spec, &hc);
        return 1;
    }
    printf("submitted %s (%s)\n", res.id, res.kind == HPC_SUBMIT_VM ? "VM job" : "plain job");
    fflush(stdout);
    /* wait for the end: the batch system is polled at the policy's pace */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    hpc_jobinfo ji = {0};
    for (;;) {
        rv = hpc_backend_info(&hc, res.id, &ji, &e);
        if (rv == 0 && (ji.state == HPC_DONE || ji.state == HPC_FAILED)) {
            break;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t el = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (el > timeout_ms) {
            fprintf(stderr,
                    "fresco hpc workload: job %s not finished after %lld ms; left "
                    "running\n",
                    res.id, (long long)timeout_ms);
            fr_config_free(&hpc_spec, &hc);
            return 1;
        }
        struct timespec ts = {0, 200 * 1000000};
        if (hc.poll_ms < 200) {
            ts.tv_nsec = hc.poll_ms * 1000000;
        }
        nanosleep(&ts, NULL);
    }
    /* gather */
    char path[PATH_MAX + 300], src[PATH_MAX + 300];
    if (res.kind == HPC_SUBMIT_VM) {
        const char *names[] = {"request", "submit", "metadata.json"};
        for (size_t i = 0; i < 3; i++) {
            snprintf(src, sizeof src, "%s/%s", res.dir, names[i]);
            snprintf(path, sizeof path, "%s/%s", abs_result, names[i]);
            copy_into(src, path);
        }
    }
    char tag[256] = "";
    if (hc.monitoring_enabled && hpc_task_tag(&hc, who.user, res.id, tag, sizeof tag) != 0) {
        tag[0] = '\0';
    }
    snprintf(path, sizeof path, "%s/job", abs_result);
    FILE *jf = fopen(path, "w");
    if (jf != NULL) {
        fprintf(jf,
                "id: %s\nstate: %s\nbatch_state: %s\nexit_code: %d\njob_dir: %s\n"
                "telemetry_tag: %s\n",
                res.id, hpc_state_name(ji.state), ji.raw_state, ji.exit_code, res.dir,
                tag[0] ? tag : "-");
        fclose(jf);
    }
    printf("%s %s (exit %d): results in %s\n", res.id, hpc_state_name(ji.state), ji.exit_code,
           abs_result);
    fr_config_free(&hpc_spec, &hc);
    return ji.state == HPC_DONE ? 0 : 1;
}
