/* Collector plugin configs: a policy table's defaults, then the task's
 * key/value texts, with errors naming the key and where; and
 * fr_config_defaults / fr_config_set on their own. */
#include "testsupport.h"

#include <stdlib.h>
#include <string.h>

#include "fresco/config.h"
#include "fresco/manifest.h"
#include "fresco/plugin.h"

typedef struct fake_cfg {
    char *uri;
    int64_t workers;
    bool nova;
    int64_t timeout_ms;
    int64_t buf;
    fr_strlist disks;
    char *mode;
} fake_cfg;

static const char *const fake_modes[] = {"fast", "exact", NULL};

static const fr_cfg_field fake_policy[] = {
    {"uri", FR_CFG_STRING, "qemu:///system", offsetof(fake_cfg, uri), "libvirt URI", 0, 0, NULL},
    {"workers", FR_CFG_INT, "2", offsetof(fake_cfg, workers), "threads", 1, 64, NULL},
    {"nova", FR_CFG_BOOL, "false", offsetof(fake_cfg, nova), "Nova tags", 0, 0, NULL},
    {"timeout", FR_CFG_DURATION, "5s", offsetof(fake_cfg, timeout_ms), "per call", 1, 60000, NULL},
    {"buffer", FR_CFG_SIZE, NULL, offsetof(fake_cfg, buf), "read buffer", 0, 0, NULL},
    {"disks", FR_CFG_LIST, "vda,vdb", offsetof(fake_cfg, disks), "disks", 0, 0, NULL},
    {"mode", FR_CFG_ENUM, "fast", offsetof(fake_cfg, mode), "mode", 0, 0, fake_modes},
};

static const fr_collector_plugin fake = {
    .abi = FR_PLUGIN_ABI,
    .name = "fake",
    .ns_prefix = "/intel/fake",
    .policy = fake_policy,
    .npolicy = sizeof(fake_policy) / sizeof(fake_policy[0]),
    .config_size = sizeof(fake_cfg),
};

#define WHERE "workflow.collect.config./intel/fake"

static void test_defaults(void **state)
{
    (void)state;
    void *c = NULL;
    fr_error err;
    assert_fr_ok(fr_plugin_config_load(&fake, NULL, NULL, 0, WHERE, &c, &err));
    fake_cfg *f = c;
    assert_string_equal(f->uri, "qemu:///system");
    assert_int_equal(f->workers, 2);
    assert_false(f->nova);
    assert_int_equal(f->timeout_ms, 5000);
    assert_int_equal(f->buf, 0);
    assert_int_equal(f->disks.n, 2);
    assert_string_equal(f->disks.v[1], "vdb");
    assert_string_equal(f->mode, "fast");
    fr_plugin_config_free(&fake, c);
}

static void test_values(void **state)
{
    (void)state;
    static const char *const keys[] = {"uri",    "workers", "nova", "timeout",
                                       "buffer", "disks",   "mode", "uri"};
    static const char *const vals[] = {"test:///default", "7",     "yes",          "250ms", "64KiB",
                                       "sda, sdb ,sdc",   "EXACT", "test:///later"};
    void *c = NULL;
    fr_error err;
    assert_fr_ok(fr_plugin_config_load(&fake, keys, vals, 8, WHERE, &c, &err));
    fake_cfg *f = c;
    assert_string_equal(f->uri, "test:///later"); /* a later pair wins */
    assert_int_equal(f->workers, 7);
    assert_true(f->nova);
    assert_int_equal(f->timeout_ms, 250);
    assert_int_equal(f->buf, 65536);
    assert_int_equal(f->disks.n, 3);
    assert_string_equal(f->disks.v[2], "sdc");
    assert_string_equal(f->mode, "exact");
    fr_plugin_config_free(&fake, c);
}

/* Loads one key=value and expects an error. */
static void load_err(const char *key, const char *value, int code, const char *msg)
{
    void *c = (void *)0x1;
    fr_error err;
    const char *k[] = {"uri", key};
    const char *v[] = {"test:///x", value}; /* a string set first, to be freed */
    int rv = fr_plugin_config_load(&fake, k, v, 2, WHERE, &c, &err);
    assert_null(c);
    if (rv != code) {
        fail_msg("%s=%s: rv %d want %d: %s", key, value, rv, code, err.message);
    }
    assert_string_equal(err.where, WHERE);
    if (strstr(err.message, msg) == NULL) {
        fail_msg("message '%s' lacks '%s'", err.message, msg);
    }
}

static void test_errors(void **state)
{
    (void)state;
    load_err("wokers", "3", FR_EUNKNOWN, "key 'wokers': unknown key (did you mean 'workers'?)");
    load_err("color", "red", FR_EUNKNOWN, "key 'color': unknown key");
    load_err("workers", "many", FR_ECONFIG, "key 'workers': not an integer: 'many'");
    load_err("workers", "0", FR_ECONFIG, "key 'workers': 0 is below the minimum 1");
    load_err("workers", "65", FR_ECONFIG, "key 'workers': 65 is above the maximum 64");
    load_err("nova", "perhaps", FR_ECONFIG, "key 'nova': not a boolean");
    load_err("timeout", "10", FR_ECONFIG, "key 'timeout': not a duration: '10'");
    load_err("timeout", "2m", FR_ECONFIG, "key 'timeout': 2m is above the maximum 1m");
    load_err("buffer", "lots", FR_ECONFIG, "key 'buffer': not a size");
    load_err("mode", "slow", FR_ECONFIG, "key 'mode': 'slow' is not one of fast, exact");

    void *c = NULL;
    fr_error err;
    assert_int_equal(fr_plugin_config_load(NULL, NULL, NULL, 0, WHERE, &c, &err), FR_EINVAL);
    assert_int_equal(fr_plugin_config_load(&fake, NULL, NULL, 1, WHERE, &c, &err), FR_EINVAL);
    assert_int_equal(fr_plugin_config_load(&fake, NULL, NULL, 0, WHERE, NULL, &err), FR_EINVAL);

    /* A broken table is the plugin's bug, said as such. */
    static const fr_cfg_field bad_policy[] = {
        {"Bad Key", FR_CFG_INT, "1", 0, "", 0, 0, NULL},
    };
    fr_collector_plugin bad = fake;
    bad.policy = bad_policy;
    bad.npolicy = 1;
    assert_int_equal(fr_plugin_config_load(&bad, NULL, NULL, 0, WHERE, &c, &err), FR_EINVAL);
    assert_null(c);
    assert_non_null(strstr(err.message, "Bad Key"));
    fr_plugin_config_free(&fake, NULL);
}

static void test_no_config(void **state)
{
    (void)state;
    fr_collector_plugin bare = {.abi = FR_PLUGIN_ABI, .name = "bare"};
    void *c = NULL;
    fr_error err;
    assert_fr_ok(fr_plugin_config_load(&bare, NULL, NULL, 0, NULL, &c, &err));
    assert_non_null(c);
    fr_plugin_config_free(&bare, c);
    const char *k[] = {"x"};
    const char *v[] = {"1"};
    assert_int_equal(fr_plugin_config_load(&bare, k, v, 1, "w", &c, &err), FR_EUNKNOWN);
    assert_string_equal(err.message, "key 'x': unknown key");
}

/* The layers one at a time, as the collector's engine might use them. */
static void test_config_set(void **state)
{
    (void)state;
    fr_cfg_spec spec = {"fake", fake_policy, sizeof(fake_policy) / sizeof(fake_policy[0])};
    fake_cfg f;
    fr_error err;
    memset(&f, 0, sizeof(f));
    assert_fr_ok(fr_config_defaults(&spec, &f, &err));
    assert_int_equal(f.workers, 2);
    assert_fr_ok(fr_config_set(&spec, &f, "uri", "a", NULL, &err));
    assert_fr_ok(fr_config_set(&spec, &f, "uri", "b", NULL, &err)); /* replaces, no leak */
    assert_string_equal(f.uri, "b");
    /* A bad value leaves the field as it was. */
    assert_int_equal(fr_config_set(&spec, &f, "workers", "x", "here", &err), FR_ECONFIG);
    assert_string_equal(err.where, "here");
    assert_int_equal(f.workers, 2);
    /* NULL resets to unset. */
    assert_fr_ok(fr_config_set(&spec, &f, "disks", NULL, NULL, &err));
    assert_int_equal(f.disks.n, 0);
    assert_fr_ok(fr_config_set(&spec, &f, "uri", NULL, NULL, &err));
    assert_null(f.uri);
    assert_int_equal(fr_config_set(&spec, &f, NULL, "1", NULL, &err), FR_EINVAL);
    assert_int_equal(fr_config_set(&spec, NULL, "uri", "1", NULL, &err), FR_EINVAL);
    assert_int_equal(fr_config_defaults(&spec, NULL, &err), FR_EINVAL);
    /* Defaults again over set values: strings replaced, not leaked. */
    assert_fr_ok(fr_config_set(&spec, &f, "mode", "exact", NULL, &err));
    assert_fr_ok(fr_config_defaults(&spec, &f, &err));
    assert_string_equal(f.mode, "fast");
    fr_config_free(&spec, &f);
}

/* From a manifest's config map to a plugin's struct. */
static void test_from_manifest(void **state)
{
    (void)state;
    const char *text = "version: 1\n"
                       "schedule: {type: simple, interval: 1s}\n"
                       "workflow:\n"
                       "  collect:\n"
                       "    metrics: {/intel/fake/*: {}}\n"
                       "    config:\n"
                       "      /intel/fake:\n"
                       "        workers: 007\n"
                       "        nova: true\n"
                       "        timeout: 1.5s\n"
                       "        buffer: 1.5KiB\n";
    fr_manifest *m = NULL;
    fr_error err;
    assert_fr_ok(fr_manifest_parse(text, strlen(text), "t.yaml", &m, &err));
    const fr_mf_map *cm = &m->collect.config.v[0].value.map;
    const char *keys[8], *vals[8];
    for (size_t i = 0; i < cm->n; i++) {
        keys[i] = cm->v[i].key;
        vals[i] = cm->v[i].value.text;
    }
    void *c = NULL;
    assert_fr_ok(fr_plugin_config_load(&fake, keys, vals, cm->n, WHERE, &c, &err));
    fake_cfg *f = c;
    assert_int_equal(f->workers, 7);
    assert_true(f->nova);
    assert_int_equal(f->timeout_ms, 1500);
    assert_int_equal(f->buf, 1536);
    fr_plugin_config_free(&fake, c);

    /* A refused value is reported at its line and column in the file. */
    vals[0] = "0";
    assert_int_equal(fr_plugin_config_load(&fake, keys, vals, cm->n, WHERE, &c, &err), FR_ECONFIG);
    fr_error at;
    fr_manifest_error(m, &at, err.code, cm->v[0].value.pos, WHERE, "%s", err.message);
    assert_string_equal(at.where, "t.yaml:8:18");
    assert_string_equal(at.message, WHERE ": key 'workers': 0 is below the minimum 1");
    fr_manifest_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),   cmocka_unit_test(test_values),
        cmocka_unit_test(test_errors),     cmocka_unit_test(test_no_config),
        cmocka_unit_test(test_config_set), cmocka_unit_test(test_from_manifest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
