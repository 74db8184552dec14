/* The VM request reader on any bytes. The input is split at its first NUL
 * or newline: the part before is one -vm argument (hpc_vmspec_apply), the
 * rest request lines (hpc_vmspec_parse_lines, the job folder's "request"
 * file the agent reads back). Both are read alone, then the lines on top
 * of the argument, as the agent's re-check would; each request read is
 * resolved against both policies of hpc_fuzz_policy.h. Nothing may crash,
 * leak or hang, a failure must name what failed, and a resolved request
 * must read back from its own request lines unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hpc_fuzz_policy.h"
#include "vmspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void resolve_both(const hpc_vmspec *s)
{
    const hpc_conf *confs[] = {&hpc_fuzz_defaults, &hpc_fuzz_open};
    for (size_t i = 0; i < sizeof confs / sizeof confs[0]; i++) {
        hpc_vmspec r = *s;
        fr_error e;
        fr_error_clear(&e);
        int rv = hpc_vmspec_resolve(&r, confs[i], HPC_FUZZ_UID, HPC_FUZZ_GID, &e);
        hpc_fuzz_check_error(rv, &e);
        if (rv == 0) {
            hpc_fuzz_check_request(&r);
        }
    }
}

/* What a successful read leaves is always within the readers' checks. */
static void check_spec(const hpc_vmspec *s)
{
    if (s->given >= (1u << HPC_VM_NKEYS)) {
        abort();
    }
    const char *paths[] = {s->img, s->disk, s->vm_prologue, s->vm_epilogue, s->metadata};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        if (paths[i][0] != '\0' && !hpc_safe_path(paths[i], false)) {
            abort();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hpc_fuzz_policies();
    size_t cut = 0;
    while (cut < size && data[cut] != '\0' && data[cut] != '\n') {
        cut++;
    }
    char *arg = malloc(cut + 1);
    if (arg == NULL) {
        return 0;
    }
    memcpy(arg, data, cut);
    arg[cut] = '\0';
    const char *lines = (const char *)data + (cut < size ? cut + 1 : size);
    size_t nlines = cut < size ? size - cut - 1 : 0;

    hpc_vmspec a = {0};
    fr_error e;
    fr_error_clear(&e);
    int rv_arg = hpc_vmspec_apply(&a, arg, "-vm", &e);
    hpc_fuzz_check_error(rv_arg, &e);
    if (rv_arg == 0) {
        check_spec(&a);
        resolve_both(&a);
    }

    hpc_vmspec b = {0};
    fr_error_clear(&e);
    int rv = hpc_vmspec_parse_lines(&b, lines, nlines, "request", &e);
    hpc_fuzz_check_error(rv, &e);
    if (rv == 0) {
        check_spec(&b);
        resolve_both(&b);
    } else if (rv != FR_ENOMEM && strncmp(e.where, "request:", 8) != 0) {
        abort();
    }

    if (rv_arg == 0) {
        fr_error_clear(&e);
        rv = hpc_vmspec_parse_lines(&a, lines, nlines, "request", &e);
        hpc_fuzz_check_error(rv, &e);
        if (rv == 0) {
            check_spec(&a);
            resolve_both(&a);
        }
    }
    (void)hpc_safe_path(arg, true);
    free(arg);
    return 0;
}
