/* Fuzzes the config loader's YAML layer with a table holding every field
 * type, then the value parsers on the same bytes. Nothing may crash, leak
 * or hang, whatever the file holds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/config.h"

typedef struct fuzz_cfg {
    char *name;
    int64_t workers;
    bool debug;
    int64_t interval_ms;
    int64_t spool_max;
    fr_strlist peers;
    char *level;
    char *tls_cert;
    bool tls_verify;
    int64_t offset;
} fuzz_cfg;

static const char *const fuzz_levels[] = {"debug", "info", "warn", "error", "off", NULL};

static const fr_cfg_field fuzz_fields[] = {
    {"name", FR_CFG_STRING, "n", offsetof(fuzz_cfg, name), "", 0, 0, NULL},
    {"workers", FR_CFG_INT, "4", offsetof(fuzz_cfg, workers), "", 1, 256, NULL},
    {"debug", FR_CFG_BOOL, NULL, offsetof(fuzz_cfg, debug), "", 0, 0, NULL},
    {"interval", FR_CFG_DURATION, "1s", offsetof(fuzz_cfg, interval_ms), "", -1000, 86400000, NULL},
    {"spool.max-size", FR_CFG_SIZE, NULL, offsetof(fuzz_cfg, spool_max), "", 0, 0, NULL},
    {"peers", FR_CFG_LIST, "a,b", offsetof(fuzz_cfg, peers), "", 0, 0, NULL},
    {"log.level", FR_CFG_ENUM, "info", offsetof(fuzz_cfg, level), "", 0, 0, fuzz_levels},
    {"tls.cert", FR_CFG_STRING, NULL, offsetof(fuzz_cfg, tls_cert), "", 0, 0, NULL},
    {"tls.verify", FR_CFG_BOOL, "true", offsetof(fuzz_cfg, tls_verify), "", 0, 0, NULL},
    {"a.b.c.d.offset", FR_CFG_INT, NULL, offsetof(fuzz_cfg, offset), "", 0, 0, NULL},
};

static const fr_cfg_spec fuzz_spec = {"fuzz", fuzz_fields,
                                      sizeof(fuzz_fields) / sizeof(fuzz_fields[0])};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_cfg cfg;
    fr_error err;

    memset(&cfg, 0, sizeof(cfg));
    /* Values already set, so overriding and freeing old ones is exercised. */
    cfg.name = strdup("old");
    (void)fr_config_load_yaml_buffer(&fuzz_spec, &cfg, "fuzz.yaml", data, size, &err);
    fr_config_free(&fuzz_spec, &cfg);

    char *s = malloc(size + 1);
    if (s == NULL) {
        return 0;
    }
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t v;
    bool b;
    (void)fr_parse_duration_ms(s, &v);
    (void)fr_parse_size(s, &v);
    (void)fr_parse_int(s, &v);
    (void)fr_parse_bool(s, &b);
    free(s);
    return 0;
}
