/* passthrough: forwards every metric unchanged (snap's passthru), sharing
 * the input's strings. A pipeline's simplest node, and the baseline the
 * processor's benchmark measures other plugins against. */
#include <stdlib.h>

#include "fresco/pipeline.h"

static int passthrough_init(void **state, const void *config, fr_error *err)
{
    *state = NULL;
    return 0;
}

static int passthrough_process(void *state, const fr_process_req *req, fr_error *err)
{
    for (uint32_t i = 0; i < req->in->nmetrics; i++) {
        if (fr_batch_add_ref(req->out, &req->in->metrics[i]) == NULL) {
            return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
        }
    }
    return 0;
}

static void passthrough_destroy(void *state)
{
}

const fr_processor_plugin fr_processor_passthrough = {
    .abi = FR_PROCESSOR_ABI,
    .name = "passthrough",
    .version = 1,
    .description = "forwards every metric unchanged",
    .config = {.fields = NULL, .nfields = 0, .config_size = 0},
    .init = passthrough_init,
    .process = passthrough_process,
    .destroy = passthrough_destroy,
};
