/* fresco-collector: runs tasks that collect metrics on a schedule and hands
 * the batches down the pipeline. This is the daemon shell: control socket
 * with the built-in ops and the event socket; tasks and plugins plug in
 * here. */
#include <stddef.h>

#include "fresco/service.h"

typedef struct collector_conf {
    fr_service_conf svc;
} collector_conf;

static const fr_cfg_field collector_fields[] = {
    FR_SERVICE_FIELDS(collector_conf, svc, "tcp://127.0.0.1:7400", "tcp://127.0.0.1:7402"),
};

static const fr_cfg_spec collector_spec = {"collector", collector_fields,
                                           sizeof(collector_fields) / sizeof(collector_fields[0])};

static const fr_service_def collector_def = {
    .name = "collector",
    .spec = &collector_spec,
    .conf_size = sizeof(collector_conf),
};

int main(int argc, char **argv)
{
    return fr_service_main(&collector_def, argc, argv);
}
