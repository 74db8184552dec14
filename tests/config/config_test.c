/* The config loader: defaults < YAML file < environment < flags, and the
 * errors that name key, file, line and column. */
#include "testsupport.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fresco/config.h"
#include "fresco/err.h"

extern char **environ;

typedef struct tcfg {
    char *name;
    int64_t workers;
    bool debug;
    int64_t interval_ms;
    int64_t spool_max;
    fr_strlist peers;
    char *level;
    char *tls_cert;
    char *tls_key;
    bool tls_verify;
    int64_t offset;
    int64_t skew_ms;
} tcfg;

static const char *const levels[] = {"debug", "info", "warn", "warning", "error", "off", NULL};

static const fr_cfg_field fields[] = {
    {"name", FR_CFG_STRING, "node-a", offsetof(tcfg, name), "node name", 0, 0, NULL},
    {"workers", FR_CFG_INT, "4", offsetof(tcfg, workers), "worker threads", 1, 256, NULL},
    {"debug", FR_CFG_BOOL, "false", offsetof(tcfg, debug), "log everything", 0, 0, NULL},
    {"interval", FR_CFG_DURATION, "10s", offsetof(tcfg, interval_ms), "collection interval", 1,
     86400000, NULL},
    {"spool.max-size", FR_CFG_SIZE, "64MiB", offsetof(tcfg, spool_max), "spool bound", 4096,
     1ll << 40, NULL},
    {"peers", FR_CFG_LIST, "tcp://127.0.0.1:7410", offsetof(tcfg, peers), "processors to dial", 0,
     0, NULL},
    {"log.level", FR_CFG_ENUM, "info", offsetof(tcfg, level), "least level logged", 0, 0, levels},
    {"tls.cert", FR_CFG_STRING, NULL, offsetof(tcfg, tls_cert), "certificate (PEM)", 0, 0, NULL},
    {"tls.key", FR_CFG_STRING, NULL, offsetof(tcfg, tls_key), "private key (PEM)", 0, 0, NULL},
    {"tls.verify", FR_CFG_BOOL, "true", offsetof(tcfg, tls_verify), "verify peers", 0, 0, NULL},
    {"offset", FR_CFG_INT, NULL, offsetof(tcfg, offset), "any int64", 0, 0, NULL},
    {"skew", FR_CFG_DURATION, "0s", offsetof(tcfg, skew_ms), "clock skew allowed", -60000, 60000,
     NULL},
};

static const fr_cfg_spec spec = {"testsvc", fields, sizeof(fields) / sizeof(fields[0])};

typedef struct fixture {
    char *dir;
    tcfg cfg;
    fr_error err;
    char path[512];
} fixture;

/* Removes every FRESCO_TESTSVC_* variable so no test sees another's. */
static void env_clear(void)
{
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e != NULL; e++) {
            if (strncmp(*e, "FRESCO_TESTSVC_", 15) == 0) {
                const char *eq = strchr(*e, '=');
                size_t n = eq != NULL ? (size_t)(eq - *e) : strlen(*e);
                snprintf(name, sizeof(name), "%.*s", (int)n, *e);
                break;
            }
        }
        if (name[0] == '\0') {
            return;
        }
        unsetenv(name);
    }
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof(*fx));
    if (fx == NULL) {
        return -1;
    }
    fx->dir = tst_tmpdir("fresco-config");
    if (fx->dir == NULL) {
        free(fx);
        return -1;
    }
    env_clear();
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    fr_config_free(&spec, &fx->cfg);
    env_clear();
    tst_rmtree(fx->dir);
    free(fx->dir);
    free(fx);
    return 0;
}

/* Writes text to <dir>/<name>; the path is left in fx->path and returned. */
static const char *yaml_file(fixture *fx, const char *name, const char *text)
{
    snprintf(fx->path, sizeof(fx->path), "%s/%s", fx->dir, name);
    assert_int_equal(tst_write_file(fx->path, text, strlen(text)), 0);
    return fx->path;
}

/* A fresh load: frees what the previous one left in fx->cfg first. */
static int load(fixture *fx, const char *file, char **argv)
{
    int argc = 0;
    while (argv != NULL && argv[argc] != NULL) {
        argc++;
    }
    fr_config_free(&spec, &fx->cfg);
    memset(&fx->cfg, 0, sizeof(fx->cfg));
    return fr_config_load(&spec, &fx->cfg, file, argc, argv, &fx->err);
}

/* Loads text as the config file with no flags. */
static int load_text(fixture *fx, const char *text)
{
    return load(fx, yaml_file(fx, "t.yaml", text), NULL);
}

static void assert_where_file(fixture *fx, int line, int col)
{
    char want[600];
    snprintf(want, sizeof(want), "%s:%d:%d", fx->path, line, col);
    assert_string_equal(fx->err.where, want);
}

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (strstr((hay), (needle)) == NULL) {                                                     \
            fail_msg("'%s' does not contain '%s'", (hay), (needle));                               \
        }                                                                                          \
    } while (0)

/* ---- loading ---------------------------------------------------------- */

static void test_defaults(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"fresco-testsvc", NULL};
    assert_fr_ok(load(fx, NULL, argv));
    assert_string_equal(fx->cfg.name, "node-a");
    assert_int_equal(fx->cfg.workers, 4);
    assert_false(fx->cfg.debug);
    assert_int_equal(fx->cfg.interval_ms, 10000);
    assert_int_equal(fx->cfg.spool_max, 64 << 20);
    assert_int_equal(fx->cfg.peers.n, 1);
    assert_string_equal(fx->cfg.peers.v[0], "tcp://127.0.0.1:7410");
    assert_string_equal(fx->cfg.level, "info");
    assert_null(fx->cfg.tls_cert);
    assert_true(fx->cfg.tls_verify);
    assert_int_equal(fx->cfg.offset, 0);
    assert_int_equal(fx->cfg.skew_ms, 0);
    assert_int_equal(fx->err.code, 0);
}

static void test_file_values(void **state)
{
    fixture *fx = *state;
    assert_fr_ok(load_text(fx, "# a comment\n"
                               "name: \"node b\"\n"
                               "workers: 16\n"
                               "debug: yes\n"
                               "interval: 1m30s\n"
                               "spool.max-size: 8MiB\n"
                               "peers:\n"
                               "  - tcp://10.0.0.1:7410\n"
                               "  - tls+tcp://10.0.0.2:7410\n"
                               "log.level: debug\n"
                               "tls.verify: off\n"
                               "offset: -9223372036854775808\n"
                               "skew: -1.5s\n"));
    assert_string_equal(fx->cfg.name, "node b");
    assert_int_equal(fx->cfg.workers, 16);
    assert_true(fx->cfg.debug);
    assert_int_equal(fx->cfg.interval_ms, 90000);
    assert_int_equal(fx->cfg.spool_max, 8 << 20);
    assert_int_equal(fx->cfg.peers.n, 2);
    assert_string_equal(fx->cfg.peers.v[0], "tcp://10.0.0.1:7410");
    assert_string_equal(fx->cfg.peers.v[1], "tls+tcp://10.0.0.2:7410");
    assert_string_equal(fx->cfg.level, "debug");
    assert_false(fx->cfg.tls_verify);
    assert_true(fx->cfg.offset == INT64_MIN);
    assert_int_equal(fx->cfg.skew_ms, -1500);
}

static void test_nested_and_dotted_keys(void **state)
{
    fixture *fx = *state;
    assert_fr_ok(load_text(fx, "tls:\n"
                               "  cert: /etc/fresco/cert.pem\n"
                               "  verify: false\n"
                               "tls.key: /etc/fresco/key.pem\n"
                               "spool: {max-size: 1GiB}\n"
                               "log:\n"
                               "  level: warn\n"));
    assert_string_equal(fx->cfg.tls_cert, "/etc/fresco/cert.pem");
    assert_string_equal(fx->cfg.tls_key, "/etc/fresco/key.pem");
    assert_false(fx->cfg.tls_verify);
    assert_int_equal(fx->cfg.spool_max, 1ll << 30);
    assert_string_equal(fx->cfg.level, "warn");
}

static void test_empty_and_comment_only_files(void **state)
{
    fixture *fx = *state;
    static const char *const texts[] = {"", "# nothing\n  # but comments\n", "---\n", "\n\n"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        assert_fr_ok(load_text(fx, texts[i]));
        assert_string_equal(fx->cfg.name, "node-a");
        assert_int_equal(fx->cfg.workers, 4);
    }
}

static void test_null_resets_to_unset(void **state)
{
    fixture *fx = *state;
    assert_fr_ok(load_text(fx, "name: ~\n"
                               "workers:\n"
                               "peers: null\n"
                               "tls.verify: ~\n"
                               "log.level: ~\n"
                               "log:\n" /* an empty group is harmless */
                               "tls:\n"
                               "  cert: '~'\n"));
    assert_null(fx->cfg.name);
    assert_int_equal(fx->cfg.workers, 0);
    assert_int_equal(fx->cfg.peers.n, 0);
    assert_null(fx->cfg.peers.v);
    assert_false(fx->cfg.tls_verify);
    assert_null(fx->cfg.level);
    /* Quoted, it is the string "~". */
    assert_string_equal(fx->cfg.tls_cert, "~");
}

static void test_enum_any_case_stored_canonical(void **state)
{
    fixture *fx = *state;
    assert_fr_ok(load_text(fx, "log.level: WARNING\n"));
    assert_string_equal(fx->cfg.level, "warning");
}

/* ---- errors in the file ----------------------------------------------- */

static void test_error_unknown_key_position(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load_text(fx, "workers: 4\n"
                                   "tls:\n"
                                   "  cetr: /etc/fresco/cert.pem\n"),
                     FR_EUNKNOWN);
    assert_int_equal(fx->err.code, FR_EUNKNOWN);
    assert_where_file(fx, 3, 3);
    assert_string_equal(fx->err.message, "key 'tls.cetr': unknown key (did you mean 'tls.cert'?)");

    assert_int_equal(load_text(fx, "workers: 4\n"
                                   "    # comment\n"
                                   "bogus: 1\n"),
                     FR_EUNKNOWN);
    assert_where_file(fx, 3, 1);
    assert_string_equal(fx->err.message, "key 'bogus': unknown key");

    /* A key under an unknown group is reported at the group. */
    assert_int_equal(load_text(fx, "name: x\nmetrics:\n  interval: 1s\n"), FR_EUNKNOWN);
    assert_where_file(fx, 2, 1);
    assert_string_equal(fx->err.message, "key 'metrics': unknown key");
}

static void test_error_bad_int(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load_text(fx, "name: x\nworkers: abc\n"), FR_ECONFIG);
    assert_where_file(fx, 2, 10);
    assert_string_equal(fx->err.message, "key 'workers': not an integer: 'abc'");

    assert_int_equal(load_text(fx, "offset: 9223372036854775808\n"), FR_ECONFIG);
    assert_where_file(fx, 1, 9);
    assert_string_equal(fx->err.message,
                        "key 'offset': '9223372036854775808' does not fit in a 64-bit integer");

    assert_int_equal(load_text(fx, "workers: 4.5\n"), FR_ECONFIG);
    assert_string_equal(fx->err.message, "key 'workers': not an integer: '4.5'");
}

static void test_error_out_of_range(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load_text(fx, "workers: 500\n"), FR_ECONFIG);
    assert_where_file(fx, 1, 10);
    assert_string_equal(fx->err.message, "key 'workers': 500 is above the maximum 256");

    assert_int_equal(load_text(fx, "workers: 0\n"), FR_ECONFIG);
    assert_string_equal(fx->err.message, "key 'workers': 0 is below the minimum 1");

    assert_int_equal(load_text(fx, "\ninterval: 25h\n"), FR_ECONFIG);
    assert_where_file(fx, 2, 11);
    assert_string_equal(fx->err.message, "key 'interval': 25h is above the maximum 24h");

    assert_int_equal(load_text(fx, "spool:\n  max-size: 1KiB\n"), FR_ECONFIG);
    assert_where_file(fx, 2, 13);
    assert_string_equal(fx->err.message, "key 'spool.max-size': 1KiB is below the minimum 4KiB");

    assert_int_equal(load_text(fx, "skew: -2m\n"), FR_ECONFIG);
    assert_string_equal(fx->err.message, "key 'skew': -2m is below the minimum -1m");

    /* The bounds are inclusive. */
    assert_fr_ok(load_text(fx, "workers: 256\ninterval: 1ms\nskew: -1m\n"));
    assert_int_equal(fx->cfg.workers, 256);
    assert_int_equal(fx->cfg.interval_ms, 1);
    assert_int_equal(fx->cfg.skew_ms, -60000);
}

static void test_error_bad_duration(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load_text(fx, "interval: 10\n"), FR_ECONFIG);
    assert_where_file(fx, 1, 11);
    assert_contains(fx->err.message, "key 'interval': not a duration: '10'");
    assert_contains(fx->err.message, "missing unit");

    assert_int_equal(load_text(fx, "interval: 10 seconds\n"), FR_ECONFIG);
    assert_contains(fx->err.message, "key 'interval': not a duration: '10 seconds'");
    assert_contains(fx->err.message, "unknown unit");
}

static void test_error_bad_bool(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load_text(fx, "debug: maybe\n"), FR_ECONFIG);
    assert_where_file(fx, 1, 8);
    assert_string_equal(fx->err.message,
                        "key 'debug': not a boolean (true/false, yes/no, on/off, 1/0): 'maybe'");
}

static void test_error_bad_enum(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load_text(fx, "log:\n  level: loud\n"), FR_ECONFIG);
    assert_where_file(fx, 2, 10);
    assert_string_equal(fx->err.message,
                        "key 'log.level': 'loud' is not one of debug, info, warn, warning, error, "
                        "off");
}

static void test_error_collection_where_scalar_expected(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load_text(fx, "workers:\n  count: 4\n"), FR_ECONFIG);
    assert_where_file(fx, 2, 3);
    assert_string_equal(fx->err.message, "key 'workers': expected an integer, found a mapping");

    assert_int_equal(load_text(fx, "name: [a, b]\n"), FR_ECONFIG);
    assert_where_file(fx, 1, 7);
    assert_string_equal(fx->err.message, "key 'name': expected a string, found a sequence");

    assert_int_equal(load_text(fx, "log: {level: {x: 1}}\n"), FR_ECONFIG);
    assert_where_file(fx, 1, 14);
    assert_string_equal(fx->err.message,
                        "key 'log.level': expected one of debug, info, warn, warning, error, off, "
                        "found a mapping");

    assert_int_equal(load_text(fx, "peers:\n  - a\n  - {host: b}\n"), FR_ECONFIG);
    assert_where_file(fx, 3, 5);
    assert_string_equal(fx->err.message,
                        "key 'peers': expected a list of strings, item 2 is a mapping");

    /* A group given a value of its own. */
    assert_int_equal(load_text(fx, "tls: yes\n"), FR_ECONFIG);
    assert_where_file(fx, 1, 6);
    assert_string_equal(fx->err.message, "key 'tls': expected a mapping of tls.* keys, found a "
                                         "scalar");
}

static void test_error_duplicate_key(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load_text(fx, "workers: 1\nname: x\nworkers: 2\n"), FR_ECONFIG);
    assert_where_file(fx, 3, 1);
    assert_string_equal(fx->err.message, "key 'workers': given twice (first on line 1, column 1)");

    /* Nested and dotted spellings of one key. */
    assert_int_equal(load_text(fx, "tls:\n  cert: a\ntls.cert: b\n"), FR_ECONFIG);
    assert_where_file(fx, 3, 1);
    assert_string_equal(fx->err.message, "key 'tls.cert': given twice (first on line 2, column 3)");

    /* The same group twice in one mapping, even with different keys. */
    assert_int_equal(load_text(fx, "tls:\n  cert: a\ntls:\n  key: b\n"), FR_ECONFIG);
    assert_where_file(fx, 3, 1);
    assert_string_equal(fx->err.message, "key 'tls': given twice (first on line 1, column 1)");
}

static void test_error_yaml_syntax(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load_text(fx, "workers: 4\nname: a: b\n"), FR_ECONFIG);
    assert_where_file(fx, 2, 8);
    assert_string_equal(fx->err.message,
                        "invalid YAML: mapping values are not allowed in this context");

    assert_int_equal(load_text(fx, "workers: 4\npeers: [a, b\n"), FR_ECONFIG);
    assert_where_file(fx, 3, 1);
    assert_string_equal(fx->err.message, "invalid YAML: did not find expected ',' or ']' (while "
                                         "parsing a flow sequence at 2:8)");

    assert_int_equal(load_text(fx, "name: x\n\tworkers: 4\n"), FR_ECONFIG);
    assert_where_file(fx, 2, 1);
    assert_contains(fx->err.message, "invalid YAML: found a tab character");

    /* Not UTF-8: the reader's byte offset becomes a line and column. */
    assert_int_equal(load_text(fx, "workers: 4\nname: \xff\n"), FR_ECONFIG);
    assert_contains(fx->err.message, "invalid YAML: invalid leading UTF-8 octet");
    assert_where_file(fx, 2, 7);
}

static void test_error_document_shape(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load_text(fx, "- a\n- b\n"), FR_ECONFIG);
    assert_where_file(fx, 1, 1);
    assert_contains(fx->err.message, "top level must be a mapping");

    assert_int_equal(load_text(fx, "just words\n"), FR_ECONFIG);
    assert_contains(fx->err.message, "top level must be a mapping");

    assert_int_equal(load_text(fx, "workers: 2\n---\nworkers: 3\n"), FR_ECONFIG);
    assert_where_file(fx, 2, 1);
    assert_contains(fx->err.message, "one YAML document");

    assert_int_equal(load_text(fx, "name: &n foo\ntls:\n  cert: *n\n"), FR_ECONFIG);
    assert_where_file(fx, 3, 9);
    assert_contains(fx->err.message, "key 'tls.cert': aliases");

    assert_int_equal(load_text(fx, "? [a]\n: 1\n"), FR_ECONFIG);
    assert_where_file(fx, 1, 3);
    assert_contains(fx->err.message, "keys must be plain strings");
}

/* ---- layers ----------------------------------------------------------- */

static void test_layers_file_env_flags(void **state)
{
    fixture *fx = *state;
    const char *file = yaml_file(fx, "layers.yaml",
                                 "workers: 2\n"
                                 "interval: 2s\n"
                                 "name: from-file\n");
    char *flags[] = {"fresco-testsvc", "--name=from-flag", NULL};
    assert_int_equal(setenv("FRESCO_TESTSVC_INTERVAL", "3s", 1), 0);
    assert_int_equal(setenv("FRESCO_TESTSVC_NAME", "from-env", 1), 0);

    /* Each key shows the highest layer that set it. */
    assert_fr_ok(load(fx, file, flags));
    assert_int_equal(fx->cfg.workers, 2);        /* file over default */
    assert_int_equal(fx->cfg.interval_ms, 3000); /* env over file */
    assert_string_equal(fx->cfg.name, "from-flag");
    assert_int_equal(fx->cfg.spool_max, 64 << 20); /* default alone */

    assert_fr_ok(load(fx, file, NULL));
    assert_string_equal(fx->cfg.name, "from-env");

    unsetenv("FRESCO_TESTSVC_NAME");
    unsetenv("FRESCO_TESTSVC_INTERVAL");
    assert_fr_ok(load(fx, file, NULL));
    assert_string_equal(fx->cfg.name, "from-file");
    assert_int_equal(fx->cfg.interval_ms, 2000);

    /* A flag beats the environment even when the file did not set the key. */
    char *debug_off[] = {"fresco-testsvc", "--debug=false", NULL};
    assert_int_equal(setenv("FRESCO_TESTSVC_DEBUG", "true", 1), 0);
    assert_fr_ok(load(fx, file, debug_off));
    assert_false(fx->cfg.debug);
    assert_fr_ok(load(fx, file, NULL));
    assert_true(fx->cfg.debug);
}

static void test_env_names(void **state)
{
    fixture *fx = *state;
    assert_int_equal(setenv("FRESCO_TESTSVC_SPOOL_MAX_SIZE", "1MiB", 1), 0);
    assert_int_equal(setenv("FRESCO_TESTSVC_TLS_CERT", "/run/cert.pem", 1), 0);
    assert_int_equal(setenv("FRESCO_TESTSVC_LOG_LEVEL", "ERROR", 1), 0);
    assert_int_equal(setenv("FRESCO_TESTSVC_NAME", "", 1), 0);
    assert_fr_ok(load(fx, NULL, NULL));
    assert_int_equal(fx->cfg.spool_max, 1 << 20);
    assert_string_equal(fx->cfg.tls_cert, "/run/cert.pem");
    assert_string_equal(fx->cfg.level, "error");
    assert_string_equal(fx->cfg.name, "");
}

static void test_env_unknown_refused(void **state)
{
    fixture *fx = *state;
    assert_int_equal(setenv("FRESCO_TESTSVC_WORKRS", "3", 1), 0);
    assert_int_equal(load(fx, NULL, NULL), FR_EUNKNOWN);
    assert_string_equal(fx->err.where, "environment FRESCO_TESTSVC_WORKRS");
    assert_string_equal(fx->err.message, "unknown variable: fresco-testsvc has no such key (did "
                                         "you mean FRESCO_TESTSVC_WORKERS?)");
    unsetenv("FRESCO_TESTSVC_WORKRS");

    assert_int_equal(setenv("FRESCO_TESTSVC_ZZZZZZZZ", "3", 1), 0);
    assert_int_equal(load(fx, NULL, NULL), FR_EUNKNOWN);
    assert_string_equal(fx->err.message, "unknown variable: fresco-testsvc has no such key");
    unsetenv("FRESCO_TESTSVC_ZZZZZZZZ");

    /* The file variable and other services' variables are not ours to refuse. */
    assert_int_equal(setenv("FRESCO_TESTSVC_CONFIG", yaml_file(fx, "c.yaml", "workers: 9\n"), 1),
                     0);
    assert_int_equal(setenv("FRESCO_OTHERSVC_WORKRS", "3", 1), 0);
    assert_fr_ok(load(fx, NULL, NULL));
    unsetenv("FRESCO_OTHERSVC_WORKRS");
    assert_int_equal(fx->cfg.workers, 9);
}

static void test_env_bad_value(void **state)
{
    fixture *fx = *state;
    assert_int_equal(setenv("FRESCO_TESTSVC_WORKERS", "many", 1), 0);
    assert_int_equal(load(fx, NULL, NULL), FR_ECONFIG);
    assert_string_equal(fx->err.where, "environment FRESCO_TESTSVC_WORKERS");
    assert_string_equal(fx->err.message, "key 'workers': not an integer: 'many'");
}

static void test_config_file_choice(void **state)
{
    fixture *fx = *state;
    char a[600], b[600], c[600], flag[700];
    snprintf(a, sizeof(a), "%s", yaml_file(fx, "a.yaml", "name: a\n"));
    snprintf(b, sizeof(b), "%s", yaml_file(fx, "b.yaml", "name: b\n"));
    snprintf(c, sizeof(c), "%s", yaml_file(fx, "c.yaml", "name: c\n"));
    snprintf(flag, sizeof(flag), "--config=%s", c);
    char *eq_form[] = {"fresco-testsvc", flag, NULL};
    char *space_form[] = {"fresco-testsvc", "--config", c, NULL};

    assert_fr_ok(load(fx, a, NULL));
    assert_string_equal(fx->cfg.name, "a");

    assert_int_equal(setenv("FRESCO_TESTSVC_CONFIG", b, 1), 0);
    assert_fr_ok(load(fx, a, NULL));
    assert_string_equal(fx->cfg.name, "b");

    assert_fr_ok(load(fx, a, eq_form));
    assert_string_equal(fx->cfg.name, "c");
    assert_fr_ok(load(fx, a, space_form));
    assert_string_equal(fx->cfg.name, "c");

    /* An empty name means no file, not the default one. */
    assert_int_equal(setenv("FRESCO_TESTSVC_CONFIG", "", 1), 0);
    assert_fr_ok(load(fx, a, NULL));
    assert_string_equal(fx->cfg.name, "node-a");
}

static void test_config_file_missing(void **state)
{
    fixture *fx = *state;
    char missing[600], flag[700];
    snprintf(missing, sizeof(missing), "%s/nope.yaml", fx->dir);
    snprintf(flag, sizeof(flag), "--config=%s", missing);
    char *argv[] = {"fresco-testsvc", flag, NULL};

    assert_int_equal(load(fx, NULL, argv), FR_ECONFIG);
    assert_string_equal(fx->err.where, missing);
    assert_string_equal(
        fx->err.message,
        "cannot read the config file (named by --config): No such file or directory");

    assert_int_equal(setenv("FRESCO_TESTSVC_CONFIG", missing, 1), 0);
    assert_int_equal(load(fx, NULL, NULL), FR_ECONFIG);
    assert_string_equal(fx->err.where, missing);
    assert_contains(fx->err.message, "(named by FRESCO_TESTSVC_CONFIG)");
    unsetenv("FRESCO_TESTSVC_CONFIG");

    /* The service's default path may be absent. */
    assert_fr_ok(load(fx, missing, NULL));
    assert_string_equal(fx->cfg.name, "node-a");

    /* But not unreadable. */
    assert_int_equal(load(fx, fx->dir, NULL), FR_ECONFIG);
    assert_contains(fx->err.message, "Is a directory");

    char *no_name[] = {"fresco-testsvc", "--config", NULL};
    assert_int_equal(load(fx, NULL, no_name), FR_ECONFIG);
    assert_string_equal(fx->err.where, "flag --config");
    assert_contains(fx->err.message, "missing value");
}

/* Runs a load with stdout sent to a file; returns what was printed. */
static char *load_capturing_stdout(fixture *fx, char **argv, int *rv)
{
    char out[600];
    snprintf(out, sizeof(out), "%s/stdout.txt", fx->dir);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    assert_true(dup2(fd, STDOUT_FILENO) >= 0);
    close(fd);
    *rv = load(fx, NULL, argv);
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);

    FILE *f = fopen(out, "r");
    assert_non_null(f);
    char *text = calloc(1, 65536);
    assert_non_null(text);
    size_t n = fread(text, 1, 65535, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void test_help_and_version(void **state)
{
    fixture *fx = *state;
    int rv;
    char *help[] = {"fresco-testsvc", "--workers=3", "--help", "--bogus", NULL};
    char *text = load_capturing_stdout(fx, help, &rv);
    assert_int_equal(rv, 1);
    assert_contains(text, "Usage: fresco-testsvc [--config FILE]");
    assert_contains(text, "  --workers=N\n      worker threads (1..256)\n"
                          "      default 4, env FRESCO_TESTSVC_WORKERS\n");
    assert_contains(text, "--debug[=BOOL]");
    assert_contains(text, "--log.level=debug|info|warn|warning|error|off");
    assert_contains(text, "env FRESCO_TESTSVC_SPOOL_MAX_SIZE");
    free(text);
    /* Nothing was loaded. */
    assert_null(fx->cfg.name);
    assert_int_equal(fx->cfg.workers, 0);

    char *short_help[] = {"fresco-testsvc", "-h", NULL};
    text = load_capturing_stdout(fx, short_help, &rv);
    assert_int_equal(rv, 1);
    assert_contains(text, "Usage: fresco-testsvc");
    free(text);

    char *version[] = {"fresco-testsvc", "--version", NULL};
    text = load_capturing_stdout(fx, version, &rv);
    assert_int_equal(rv, 1);
    assert_string_equal(text, "fresco-testsvc " FRESCO_VERSION "\n");
    free(text);
}

static void test_flag_forms(void **state)
{
    fixture *fx = *state;
    char *argv[] = {"fresco-testsvc",
                    "--workers",
                    "7",
                    "--debug",
                    "--tls.verify=false",
                    "--interval=1m30s",
                    "--spool.max-size",
                    "1GiB",
                    "--skew",
                    "-250ms",
                    "--name=a=b",
                    NULL};
    assert_fr_ok(load(fx, NULL, argv));
    assert_int_equal(fx->cfg.workers, 7);
    assert_true(fx->cfg.debug);
    assert_false(fx->cfg.tls_verify);
    assert_int_equal(fx->cfg.interval_ms, 90000);
    assert_int_equal(fx->cfg.spool_max, 1ll << 30);
    assert_int_equal(fx->cfg.skew_ms, -250);
    assert_string_equal(fx->cfg.name, "a=b");

    char *twice[] = {"fresco-testsvc", "--workers=3", "--workers=9", NULL};
    assert_fr_ok(load(fx, NULL, twice));
    assert_int_equal(fx->cfg.workers, 9);
}

static void test_flag_errors(void **state)
{
    fixture *fx = *state;
    char *unknown[] = {"fresco-testsvc", "--wrkers=3", NULL};
    assert_int_equal(load(fx, NULL, unknown), FR_EUNKNOWN);
    assert_string_equal(fx->err.where, "flag --wrkers");
    assert_string_equal(fx->err.message, "key 'wrkers': unknown key (did you mean 'workers'?)");

    char *bad[] = {"fresco-testsvc", "--workers=lots", NULL};
    assert_int_equal(load(fx, NULL, bad), FR_ECONFIG);
    assert_string_equal(fx->err.where, "flag --workers");
    assert_string_equal(fx->err.message, "key 'workers': not an integer: 'lots'");

    char *novalue[] = {"fresco-testsvc", "--workers", "--debug", NULL};
    assert_int_equal(load(fx, NULL, novalue), FR_ECONFIG);
    assert_string_equal(fx->err.where, "flag --workers");
    assert_string_equal(fx->err.message, "key 'workers': missing value (write --workers=VALUE)");

    char *stray[] = {"fresco-testsvc", "--debug", "false", NULL};
    assert_int_equal(load(fx, NULL, stray), FR_ECONFIG);
    assert_string_equal(fx->err.where, "argument 2");
    assert_contains(fx->err.message, "unexpected argument 'false'");

    char *single_dash[] = {"fresco-testsvc", "-w", "3", NULL};
    assert_int_equal(load(fx, NULL, single_dash), FR_ECONFIG);
    assert_string_equal(fx->err.where, "argument 1");

    /* Flags are checked before the file is read: its errors come second. */
    char *both[] = {"fresco-testsvc", "--nope", NULL};
    assert_int_equal(load(fx, yaml_file(fx, "bad.yaml", "workers: x\n"), both), FR_EUNKNOWN);
    assert_string_equal(fx->err.where, "flag --nope");
}

static void test_lists(void **state)
{
    fixture *fx = *state;
    assert_fr_ok(load_text(fx, "peers: [a, 'b,c', \"\"]\n"));
    assert_int_equal(fx->cfg.peers.n, 3);
    assert_string_equal(fx->cfg.peers.v[0], "a");
    assert_string_equal(fx->cfg.peers.v[1], "b,c"); /* a sequence item is never split */
    assert_string_equal(fx->cfg.peers.v[2], "");

    assert_fr_ok(load_text(fx, "peers: tcp://h1:1, tcp://h2:2 ,tcp://h3:3,\n"));
    assert_int_equal(fx->cfg.peers.n, 3);
    assert_string_equal(fx->cfg.peers.v[0], "tcp://h1:1");
    assert_string_equal(fx->cfg.peers.v[1], "tcp://h2:2");
    assert_string_equal(fx->cfg.peers.v[2], "tcp://h3:3");

    assert_fr_ok(load_text(fx, "peers: []\n"));
    assert_int_equal(fx->cfg.peers.n, 0);

    /* A later layer replaces the list whole. */
    const char *file = yaml_file(fx, "l.yaml", "peers:\n  - f1\n  - f2\n  - f3\n");
    assert_int_equal(setenv("FRESCO_TESTSVC_PEERS", "e1,e2", 1), 0);
    assert_fr_ok(load(fx, file, NULL));
    assert_int_equal(fx->cfg.peers.n, 2);
    assert_string_equal(fx->cfg.peers.v[0], "e1");
    assert_string_equal(fx->cfg.peers.v[1], "e2");

    char *argv[] = {"fresco-testsvc", "--peers=x", NULL};
    assert_fr_ok(load(fx, file, argv));
    assert_int_equal(fx->cfg.peers.n, 1);
    assert_string_equal(fx->cfg.peers.v[0], "x");

    assert_int_equal(setenv("FRESCO_TESTSVC_PEERS", "", 1), 0);
    assert_fr_ok(load(fx, file, NULL));
    assert_int_equal(fx->cfg.peers.n, 0);

    assert_int_equal(load_text(fx, "peers:\n  - a\n  -\n"), FR_ECONFIG);
    assert_where_file(fx, 3, 4);
    assert_string_equal(fx->err.message, "key 'peers': item 2 is empty");
}

static void test_free_after_partial_load(void **state)
{
    fixture *fx = *state;
    assert_int_equal(load_text(fx, "name: x\n"
                                   "peers: [a, b]\n"
                                   "tls.cert: c\n"
                                   "peers2: 1\n"),
                     FR_EUNKNOWN);
    /* What was loaded before the error is there, and freed below. */
    assert_string_equal(fx->cfg.name, "x");
    assert_int_equal(fx->cfg.peers.n, 2);
    fr_config_free(&spec, &fx->cfg);
    assert_null(fx->cfg.name);
    assert_null(fx->cfg.tls_cert);
    assert_null(fx->cfg.level);
    assert_null(fx->cfg.peers.v);
    assert_int_equal(fx->cfg.peers.n, 0);
    fr_config_free(&spec, &fx->cfg);

    /* An error inside a list leaves the old list alone. */
    assert_int_equal(load_text(fx, "peers: [a, [b]]\n"), FR_ECONFIG);
    assert_int_equal(fx->cfg.peers.n, 1);
    assert_string_equal(fx->cfg.peers.v[0], "tcp://127.0.0.1:7410");
}

static void test_yaml_buffer(void **state)
{
    fixture *fx = *state;
    static const char text[] = "workers: 3\nnmae: x\n";
    assert_int_equal(
        fr_config_load_yaml_buffer(&spec, &fx->cfg, "mem.yaml", text, strlen(text), &fx->err),
        FR_EUNKNOWN);
    assert_string_equal(fx->err.where, "mem.yaml:2:1");
    assert_string_equal(fx->err.message, "key 'nmae': unknown key (did you mean 'name'?)");
    assert_int_equal(fx->cfg.workers, 3);
    assert_null(fx->cfg.name); /* no defaults in this layer */

    assert_int_equal(fr_config_load_yaml_buffer(&spec, &fx->cfg, NULL, "peers: [", 8, &fx->err),
                     FR_ECONFIG);
    assert_contains(fx->err.where, "<memory>:");
    assert_fr_ok(fr_config_load_yaml_buffer(&spec, &fx->cfg, NULL, NULL, 0, &fx->err));
}

static void test_bad_table(void **state)
{
    fixture *fx = *state;
    const fr_cfg_field clash[] = {
        {"a.b", FR_CFG_STRING, NULL, 0, "", 0, 0, NULL},
        {"a-b", FR_CFG_STRING, NULL, sizeof(char *), "", 0, 0, NULL},
    };
    fr_cfg_spec s = {"testsvc", clash, 2};
    char *obj[2] = {NULL, NULL};
    assert_int_equal(fr_config_load(&s, obj, NULL, 0, NULL, &fx->err), FR_EINVAL);
    assert_contains(fx->err.message, "FRESCO_TESTSVC_A_B");

    const fr_cfg_field baddef[] = {{"n", FR_CFG_INT, "four", 0, "", 0, 0, NULL}};
    int64_t n = 0;
    s = (fr_cfg_spec){"testsvc", baddef, 1};
    assert_int_equal(fr_config_load(&s, &n, NULL, 0, NULL, &fx->err), FR_EINVAL);
    assert_string_equal(fx->err.message, "key 'n': not an integer: 'four'");

    const fr_cfg_field group[] = {
        {"tls", FR_CFG_STRING, NULL, 0, "", 0, 0, NULL},
        {"tls.cert", FR_CFG_STRING, NULL, sizeof(char *), "", 0, 0, NULL},
    };
    s = (fr_cfg_spec){"testsvc", group, 2};
    assert_int_equal(fr_config_load(&s, obj, NULL, 0, NULL, &fx->err), FR_EINVAL);
}

static void test_markdown(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    fr_config_markdown(&spec, f);
    fclose(f);
    assert_true(strncmp(text,
                        "| key | type | default | environment | description |\n"
                        "|---|---|---|---|---|\n",
                        strlen("| key | type | default | environment | description |\n"
                               "|---|---|---|---|---|\n")) == 0);
    assert_contains(text, "| `workers` | integer (1..256) | `4` | `FRESCO_TESTSVC_WORKERS` | "
                          "worker threads |\n");
    assert_contains(text, "| `tls.cert` | string |  | `FRESCO_TESTSVC_TLS_CERT` | certificate "
                          "(PEM) |\n");
    assert_contains(text, "| `log.level` | one of `debug`, `info`, `warn`, `warning`, `error`, "
                          "`off` | `info` |");
    assert_contains(text, "| `spool.max-size` | size (4KiB..1TiB) | `64MiB` |");
    free(text);
}

/* ---- parsers ---------------------------------------------------------- */

static void test_parse_int(void **state)
{
    (void)state;
    int64_t v = 77;
    assert_fr_ok(fr_parse_int("9223372036854775807", &v));
    assert_true(v == INT64_MAX);
    assert_fr_ok(fr_parse_int("-9223372036854775808", &v));
    assert_true(v == INT64_MIN);
    assert_fr_ok(fr_parse_int("+12", &v));
    assert_int_equal(v, 12);
    assert_fr_ok(fr_parse_int("-0", &v));
    assert_int_equal(v, 0);
    assert_fr_ok(fr_parse_int("007", &v));
    assert_int_equal(v, 7);

    v = 77;
    assert_int_equal(fr_parse_int("9223372036854775808", &v), FR_ETOOBIG);
    assert_int_equal(fr_parse_int("-9223372036854775809", &v), FR_ETOOBIG);
    assert_int_equal(fr_parse_int("99999999999999999999999", &v), FR_ETOOBIG);
    assert_int_equal(fr_parse_int("99999999999999999999999x", &v), FR_EINVAL);
    static const char *const bad[] = {"",   "-",    "+",   " 1",    "1 ",
                                      "1x", "0x10", "1e3", "1_000", "--1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (fr_parse_int(bad[i], &v) != FR_EINVAL) {
            fail_msg("'%s' parsed as an integer", bad[i]);
        }
    }
    assert_int_equal(v, 77); /* untouched on error */
}

static void test_parse_duration(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t ms;
    } good[] = {
        {"250ms", 250},
        {"1s", 1000},
        {"1m30s", 90000},
        {"1h30m", 5400000},
        {"1.5h", 5400000},
        {"2h45m", 9900000},
        {"1.5s", 1500},
        {".5s", 500},
        {"1.s", 1000},
        {"0s", 0},
        {"0", 0},
        {"-0", 0},
        {"-1s", -1000},
        {"+2s", 2000},
        {"1us", 1},
        {"1\xc2\xb5s", 1},
        {"1\xce\xbcs", 1},
        {"1ns", 1},
        {"1000000ns", 1},
        {"1000001ns", 2},
        {"1500us", 2},
        {"-1ns", -1},
        {"1h1m1s1ms", 3661001},
        {"0.001s", 1},
        {"2562047h", 2562047ll * 3600000},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t ms = -12345;
        int rv = fr_parse_duration_ms(good[i].s, &ms);
        if (rv != 0 || ms != good[i].ms) {
            fail_msg("'%s' -> %d, %" PRId64 " ms; want %" PRId64, good[i].s, rv, ms, good[i].ms);
        }
    }
    static const char *const bad[] = {"",    "10", "1.5",   "s",    "-",     "1x",  "1sec",
                                      "1 s", "h1", "1h-1m", "--1s", "1.5.s", " 1s", "1S"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 0;
        if (fr_parse_duration_ms(bad[i], &ms) != FR_EINVAL) {
            fail_msg("'%s' parsed as a duration", bad[i]);
        }
    }
    int64_t ms = 0;
    assert_int_equal(fr_parse_duration_ms("2562048h", &ms), FR_ETOOBIG);
    assert_int_equal(fr_parse_duration_ms("99999999999999999999s", &ms), FR_ETOOBIG);
    assert_int_equal(fr_parse_duration_ms("9223372036854775807ns1ns", &ms), FR_ETOOBIG);
}

static void test_parse_size(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int64_t bytes;
    } good[] = {
        {"4096", 4096},        {"0", 0},
        {"64KiB", 65536},      {"64K", 65536},
        {"64k", 65536},        {"64KB", 64000},
        {"64kb", 64000},       {"8MiB", 8 << 20},
        {"8M", 8 << 20},       {"10MB", 10000000},
        {"1GiB", 1ll << 30},   {"1G", 1ll << 30},
        {"2GB", 2000000000ll}, {"1TiB", 1ll << 40},
        {"1PiB", 1ll << 50},   {"1.5KiB", 1536},
        {"0.5M", 1 << 19},     {"64 KiB", 65536},
        {"12B", 12},           {"9223372036854775807", INT64_MAX},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t b = -1;
        int rv = fr_parse_size(good[i].s, &b);
        if (rv != 0 || b != good[i].bytes) {
            fail_msg("'%s' -> %d, %" PRId64 "; want %" PRId64, good[i].s, rv, b, good[i].bytes);
        }
    }
    static const char *const bad[] = {"",     "-1",     "-1KiB", "KiB", "1XB", "1.5",
                                      "1.5B", "1 K iB", "0x10",  "1e3", " 1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t b = 0;
        if (fr_parse_size(bad[i], &b) != FR_EINVAL) {
            fail_msg("'%s' parsed as a size", bad[i]);
        }
    }
    int64_t b = 0;
    assert_int_equal(fr_parse_size("9223372036854775808", &b), FR_ETOOBIG);
    assert_int_equal(fr_parse_size("8388608TiB", &b), FR_ETOOBIG);
    assert_int_equal(fr_parse_size("8192PiB", &b), FR_ETOOBIG);
    assert_fr_ok(fr_parse_size("8191PiB", &b));
    assert_true(b == 8191ll << 50);
}

static void test_parse_bool(void **state)
{
    (void)state;
    static const char *const yes[] = {"true", "TRUE", "True", "yes", "on", "1"};
    static const char *const no[] = {"false", "FALSE", "no", "No", "off", "0"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        bool b = false;
        assert_fr_ok(fr_parse_bool(yes[i], &b));
        assert_true(b);
        b = true;
        assert_fr_ok(fr_parse_bool(no[i], &b));
        assert_false(b);
    }
    static const char *const bad[] = {"", "y", "n", "2", "truee", " true", "enable"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        bool b = false;
        if (fr_parse_bool(bad[i], &b) != FR_EINVAL) {
            fail_msg("'%s' parsed as a bool", bad[i]);
        }
    }
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_file_values),
        T(test_nested_and_dotted_keys),
        T(test_empty_and_comment_only_files),
        T(test_null_resets_to_unset),
        T(test_enum_any_case_stored_canonical),
        T(test_error_unknown_key_position),
        T(test_error_bad_int),
        T(test_error_out_of_range),
        T(test_error_bad_duration),
        T(test_error_bad_bool),
        T(test_error_bad_enum),
        T(test_error_collection_where_scalar_expected),
        T(test_error_duplicate_key),
        T(test_error_yaml_syntax),
        T(test_error_document_shape),
        T(test_layers_file_env_flags),
        T(test_env_names),
        T(test_env_unknown_refused),
        T(test_env_bad_value),
        T(test_config_file_choice),
        T(test_config_file_missing),
        T(test_help_and_version),
        T(test_flag_forms),
        T(test_flag_errors),
        T(test_lists),
        T(test_free_after_partial_load),
        T(test_yaml_buffer),
        T(test_bad_table),
        T(test_markdown),
        T(test_parse_int),
        T(test_parse_duration),
        T(test_parse_size),
        T(test_parse_bool),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
