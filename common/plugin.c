/* Collector plugin configs: a plugin's policy table applied as a config
 * spec, so task config gets the same parsing and messages as a service's
 * config file. */
#include "fresco/plugin.h"

#include <stdlib.h>

static fr_cfg_spec plugin_spec(const fr_collector_plugin *p)
{
    return (fr_cfg_spec){p->name, p->policy, p->npolicy};
}

int fr_plugin_config_load(const fr_collector_plugin *p, const char *const *keys,
                          const char *const *values, size_t n, const char *where, void **config,
                          fr_error *err)
{
    fr_error_clear(err);
    if (config != NULL) {
        *config = NULL;
    }
    if (p == NULL || config == NULL || (n > 0 && (keys == NULL || values == NULL))) {
        return fr_error_set(err, FR_EINVAL, where, "no plugin, no config or no keys");
    }
    fr_cfg_spec spec = plugin_spec(p);
    /* A plugin without config still gets an object, so every plugin's init
     * sees a non-NULL config. */
    void *obj = calloc(1, p->config_size != 0 ? p->config_size : 1);
    if (obj == NULL) {
        return fr_error_set(err, FR_ENOMEM, where, "out of memory");
    }
    int rv = fr_config_defaults(&spec, obj, err);
    for (size_t i = 0; rv == 0 && i < n; i++) {
        rv = fr_config_set(&spec, obj, keys[i], values[i], where, err);
    }
    if (rv != 0) {
        fr_config_free(&spec, obj);
        free(obj);
        return rv;
    }
    *config = obj;
    return 0;
}

void fr_plugin_config_free(const fr_collector_plugin *p, void *config)
{
    if (p == NULL || config == NULL) {
        free(config);
        return;
    }
    fr_cfg_spec spec = plugin_spec(p);
    fr_config_free(&spec, config);
    free(config);
}
