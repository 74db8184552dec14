/* `fresco qsub`'s job script reader on any script, the way hpc_submit
 * takes it: the input is the job script "job.sh" read with two command
 * lines, each against one policy (hpc_fuzz_policy.h):
 *
 *   -N fuzz job.sh                                      the defaults only
 *   -vm vcpus=2 -l walltime=1:00:00 -z job.sh           the open policy
 *
 * The -vm values found (script and command line) are applied to a request,
 * which is resolved; the -l resources are merged and rendered, and the
 * submission command built for the policy's backend and for the other one.
 * Nothing may crash, leak or hang; a failure must name what failed, and a
 * resolved request must read back from its request lines unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "hpc_fuzz_policy.h"
#include "qsub.h"
#include "vmspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The -vm values of q into s, named as hpc_submit names them. */
static int apply_vm(const hpc_qsub *q, hpc_vmspec *s, fr_error *e)
{
    for (size_t i = 0; i < q->nvm; i++) {
        char where[200];
        if (q->vm_line[i] > 0) {
            snprintf(where, sizeof where, "job.sh:%d: -vm", q->vm_line[i]);
        } else {
            snprintf(where, sizeof where, "-vm");
        }
        int rv = hpc_vmspec_apply(s, q->vm[i], where, e);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* Every option kept is one of Torque's, with a value exactly when it takes
 * one; script directives come before the command line. */
static void check_options(const hpc_qsub *q)
{
    bool cmdline = false;
    for (size_t i = 0; i < q->nopts; i++) {
        const hpc_opt *o = &q->opts[i];
        int kind = hpc_qsub_optkind(o->letter);
        if (kind < 0 || (kind == 1) != (o->value != NULL)) {
            abort();
        }
        if (o->value != NULL && strlen(o->value) > HPC_MAX_ARG) {
            abort();
        }
        if (!o->from_script) {
            cmdline = true;
        } else if (cmdline || o->line < 1) {
            abort();
        }
    }
    for (size_t i = 0; i < q->nvm; i++) {
        if (q->vm[i] == NULL || strlen(q->vm[i]) > HPC_MAX_ARG || q->vm_line[i] < 0) {
            abort();
        }
    }
}

static void command_for(const hpc_conf *c, const char *backend, const hpc_qsub *q,
                        const hpc_resources *r)
{
    hpc_conf b = *c;
    b.backend = (char *)backend;
    char **argv = NULL;
    fr_error e;
    fr_error_clear(&e);
    int rv = hpc_backend_command(&b, q, r, "/spool/job-fuzz/job.sh", &argv, &e);
    hpc_fuzz_check_error(rv, &e);
    if ((rv == 0) != (argv != NULL)) {
        abort();
    }
    hpc_argv_free(argv);
}

static void submit_once(const uint8_t *data, size_t size, const hpc_conf *c, int argc,
                        char *const *argv)
{
    hpc_qsub q = {0};
    hpc_resources r = {0};
    hpc_vmspec s = {0};
    fr_error e;
    fr_error_clear(&e);
    if (hpc_qsub_parse_args(&q, argc, argv, &e) != 0) {
        abort(); /* the fixed command lines are good */
    }
    char *text = malloc(size + 1);
    if (text == NULL) {
        hpc_qsub_free(&q);
        return;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    int rv = hpc_qsub_parse_script(&q, text, size, &e); /* q owns text now */
    hpc_fuzz_check_error(rv, &e);
    if (rv != 0) {
        if (rv != FR_ENOMEM && strncmp(e.where, "job.sh:", 7) != 0) {
            abort();
        }
        goto out;
    }
    check_options(&q);
    (void)hpc_qsub_last(&q, 'N');
    (void)hpc_qsub_has(&q, 'z');

    fr_error_clear(&e);
    rv = apply_vm(&q, &s, &e);
    hpc_fuzz_check_error(rv, &e);
    if (rv == 0 && q.nvm > 0) {
        rv = hpc_vmspec_resolve(&s, c, HPC_FUZZ_UID, HPC_FUZZ_GID, &e);
        hpc_fuzz_check_error(rv, &e);
        if (rv == 0) {
            hpc_fuzz_check_request(&s);
        }
    }

    fr_error_clear(&e);
    rv = hpc_resources_parse(&q, &r, &e);
    hpc_fuzz_check_error(rv, &e);
    if (rv == 0) {
        char *line = hpc_resources_render(&r);
        free(line);
        command_for(c, "slurm", &q, &r);
        command_for(c, "pbs", &q, &r);
    }
out:
    hpc_resources_free(&r);
    hpc_qsub_free(&q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > HPC_MAX_SCRIPT) {
        return 0;
    }
    hpc_fuzz_policies();
    char *plain[] = {"-N", "fuzz", "job.sh"};
    char *vm[] = {"-vm", "vcpus=2", "-l", "walltime=1:00:00", "-z", "job.sh"};
    submit_once(data, size, &hpc_fuzz_defaults, 3, plain);
    submit_once(data, size, &hpc_fuzz_open, 6, vm);
    return 0;
}
