/* Node configs (fr_node_config_load): scalars through a policy table, maps
 * through config_map, snap's camelCase keys, errors that name the node's
 * key; errors rewritten to name the node (fr_node_error_locate); which sink
 * codes are worth retrying; pipeline.put's args; a stage's saved tasks;
 * calls to every replica. */
#include "testsupport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>

#include "fresco/ctl.h"
#include "fresco/log.h"
#include "fresco/pipectl.h"
#include "fresco/pipeline.h"

typedef struct demo_conf {
    int64_t buf_length;
    double factor_unused;
    char *mode;
    bool flag;
    int map_entries; /* from config_map */
    char *map_first;
} demo_conf;

static const char *const modes[] = {"fast", "slow", NULL};

static const fr_cfg_field demo_fields[] = {
    {"buf_length", FR_CFG_INT, "30", offsetof(demo_conf, buf_length), "window", 1, 1000, NULL},
    {"mode", FR_CFG_ENUM, "fast", offsetof(demo_conf, mode), "how", 0, 0, modes},
    {"flag", FR_CFG_BOOL, "false", offsetof(demo_conf, flag), "a switch", 0, 0, NULL},
};

static int demo_map(void *config, const char *key, const fr_mf_map *value, fr_error *err)
{
    demo_conf *c = config;
    if (strcmp(key, "tags") != 0) {
        return FR_EUNKNOWN;
    }
    for (size_t i = 0; i < value->n; i++) {
        if (value->v[i].value.type == FR_MF_MAP) {
            return fr_error_set(err, FR_ETYPE, NULL, "tag '%s' must be a string", value->v[i].key);
        }
    }
    c->map_entries = (int)value->n;
    free(c->map_first);
    c->map_first = value->n > 0 ? strdup(value->v[0].key) : NULL;
    return 0;
}

static void demo_free(void *config)
{
    demo_conf *c = config;
    free(c->map_first);
}

static const fr_node_policy demo = {
    .fields = demo_fields,
    .nfields = 3,
    .config_size = sizeof(demo_conf),
    .config_map = demo_map,
    .config_free = demo_free,
};

/* Parses a manifest whose first process node carries the config text. */
static fr_manifest *manifest_with(const char *config)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "version: 1\n"
             "schedule: {type: simple, interval: 1s}\n"
             "workflow:\n"
             "  collect:\n"
             "    metrics: {/a: {}}\n"
             "    process:\n"
             "      - plugin_name: demo\n"
             "        config:\n%s",
             config);
    fr_manifest *m = NULL;
    fr_error err;
    if (fr_manifest_parse(text, strlen(text), "t.yaml", &m, &err) != 0) {
        fail_msg("%s: %s", err.where, err.message);
    }
    return m;
}

static int load(const char *config, demo_conf **out, fr_error *err)
{
    fr_manifest *m = manifest_with(config);
    void *c = NULL;
    int rv = fr_node_config_load(&demo, "demo", &m->collect.process[0].config,
                                 "workflow.collect.process[0]", &c, err);
    fr_manifest_free(m);
    *out = c;
    return rv;
}

static void test_defaults_scalars_and_maps(void **state)
{
    demo_conf *c = NULL;
    fr_error err;
    assert_fr_ok(load("          mode: slow\n", &c, &err));
    assert_int_equal(c->buf_length, 30);
    assert_string_equal(c->mode, "slow");
    assert_false(c->flag);
    fr_node_config_free(&demo, c);

    /* snap's camelCase reads as snake_case; maps go to config_map. */
    assert_fr_ok(load("          BufLength: 12\n"
                      "          flag: yes\n"
                      "          tags: {rack: r1, dc: d1}\n",
                      &c, &err));
    assert_int_equal(c->buf_length, 12);
    assert_true(c->flag);
    assert_int_equal(c->map_entries, 2);
    assert_string_equal(c->map_first, "rack");
    fr_node_config_free(&demo, c);
}

static void test_errors_name_the_key(void **state)
{
    demo_conf *c = NULL;
    fr_error err;
    assert_int_equal(load("          colour: red\n", &c, &err), FR_EUNKNOWN);
    assert_null(c);
    assert_string_equal(err.where, "workflow.collect.process[0].config.colour");
    assert_non_null(strstr(err.message, "colour"));

    assert_int_equal(load("          buf_length: 0\n", &c, &err), FR_ECONFIG);
    assert_string_equal(err.where, "workflow.collect.process[0].config.buf_length");
    assert_non_null(strstr(err.message, "buf_length"));

    assert_int_equal(load("          mode: sideways\n", &c, &err), FR_ECONFIG);
    assert_non_null(strstr(err.message, "fast"));

    /* a map where none is taken */
    assert_int_equal(load("          mode: {a: b}\n", &c, &err), FR_EUNKNOWN);
    assert_string_equal(err.where, "workflow.collect.process[0].config.mode");
    assert_non_null(strstr(err.message, "takes no map"));

    /* config_map's own refusal, with the key named */
    assert_int_equal(load("          tags: {rack: {deep: x}}\n", &c, &err), FR_ETYPE);
    assert_string_equal(err.where, "workflow.collect.process[0].config.tags");
    assert_non_null(strstr(err.message, "demo: key 'tags': tag 'rack' must be a string"));
}

static void test_error_locate(void **state)
{
    fr_error err;
    fr_error_set(&err, FR_EINVAL, "tags", "pair 2 'x' has no ':'");
    fr_node_error_locate(&err, "tag", "workflow.collect.process[1]");
    assert_string_equal(err.where, "workflow.collect.process[1].config.tags");
    assert_string_equal(err.message, "tag: pair 2 'x' has no ':'");
    fr_error_set(&err, FR_EIO, NULL, "%s", "");
    fr_node_error_locate(&err, "file", "workflow.collect.publish[0]");
    assert_string_equal(err.where, "workflow.collect.publish[0]");
    assert_non_null(strstr(err.message, "file: "));
}

static void test_retryable(void **state)
{
    assert_true(fr_sink_retryable(FR_EIO));
    assert_true(fr_sink_retryable(FR_EBUSY));
    assert_true(fr_sink_retryable(FR_ETIMEDOUT));
    assert_true(fr_sink_retryable(FR_ECLOSED));
    assert_false(fr_sink_retryable(0));
    assert_false(fr_sink_retryable(FR_EINVAL));
    assert_false(fr_sink_retryable(FR_ETOOBIG));
    assert_false(fr_sink_retryable(FR_ETYPE));
}

static void test_put_args_round_trip(void **state)
{
    fr_manifest *m = manifest_with("          mode: slow\n");
    fr_buf args = FR_BUF_INIT;
    assert_fr_ok(fr_pipeline_put_pack("task-1", "load", m, &args));
    fr_doc doc;
    fr_error err;
    assert_fr_ok(fr_doc_decode(args.data, args.len, &doc, &err));
    const char *task, *name;
    fr_manifest *back = NULL;
    assert_fr_ok(fr_pipeline_put_unpack(doc.root, &task, &name, &back, &err));
    assert_string_equal(task, "task-1");
    assert_string_equal(name, "load");
    assert_int_equal(back->collect.nprocess, 1);
    assert_string_equal(back->collect.process[0].plugin_name, "demo");
    fr_manifest_free(back);
    fr_doc_free(&doc);

    /* ids that would name another file are refused */
    assert_false(fr_task_id_valid("../x"));
    assert_false(fr_task_id_valid(".."));
    assert_false(fr_task_id_valid(""));
    assert_false(fr_task_id_valid("a/b"));
    assert_true(fr_task_id_valid("3f2a-9c_x.y"));
    char long_id[80];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[79] = '\0';
    assert_false(fr_task_id_valid(long_id));
    fr_buf_reset(&args);
    assert_fr_ok(fr_pipeline_put_pack("../etc", "x", m, &args));
    assert_fr_ok(fr_doc_decode(args.data, args.len, &doc, &err));
    assert_int_equal(fr_pipeline_put_unpack(doc.root, &task, &name, &back, &err), FR_EINVAL);
    assert_string_equal(err.where, "task");
    assert_null(back);
    fr_doc_free(&doc);
    fr_buf_free(&args);
    fr_manifest_free(m);
}

typedef struct loaded {
    int n;
    char names[4][64];
} loaded;

static void on_loaded(void *arg, const char *file, const fr_node *args)
{
    loaded *l = arg;
    const char *task = "";
    fr_node_get_str(args, "task", &task);
    if (l->n < 4) {
        snprintf(l->names[l->n++], 64, "%s", task);
    }
}

static void test_store(void **state)
{
    char *dir = tst_tmpdir("fresco-store");
    fr_manifest *m = manifest_with("          mode: slow\n");
    fr_buf args = FR_BUF_INIT;
    assert_fr_ok(fr_pipeline_put_pack("t-a", "a", m, &args));
    fr_error err;
    assert_fr_ok(fr_pipeline_store_save(dir, "t-a", args.data, args.len, &err));
    assert_fr_ok(fr_pipeline_store_save(dir, "t-a", args.data, args.len, &err));
    assert_int_equal(fr_pipeline_store_save(dir, "../t", args.data, args.len, &err), FR_EINVAL);
    /* a damaged file is moved aside, the rest load */
    char bad[600];
    snprintf(bad, sizeof(bad), "%s/pipelines/t-b.mp", dir);
    assert_int_equal(tst_write_file(bad, "\xc1\xc1", 2), 0);
    loaded l = {0};
    fr_pipeline_store_load(dir, on_loaded, &l);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.names[0], "t-a");
    char moved[620];
    snprintf(moved, sizeof(moved), "%s.bad", bad);
    char *kept = tst_slurp(moved);
    assert_int_equal(strlen(kept), 2);
    free(kept);
    assert_fr_ok(fr_pipeline_store_delete(dir, "t-a"));
    assert_fr_ok(fr_pipeline_store_delete(dir, "t-a"));
    l.n = 0;
    fr_pipeline_store_load(dir, on_loaded, &l);
    assert_int_equal(l.n, 0);
    fr_buf_free(&args);
    fr_manifest_free(m);
    tst_rmtree(dir);
    free(dir);
}

static int ok_op(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    msgpack_pack_nil(fr_ctl_reply_packer(r));
    return 0;
}

static int refuse_op(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    return fr_ctl_reply_error(r, FR_EINVAL, "bad_manifest", "workflow.collect.publish[0]",
                              "no such sink");
}

static void test_fanout(void **state)
{
    char a[64], b[64], dead[64];
    snprintf(a, sizeof(a), "tcp://127.0.0.1:%d", tst_free_port());
    snprintf(b, sizeof(b), "tcp://127.0.0.1:%d", tst_free_port());
    snprintf(dead, sizeof(dead), "tcp://127.0.0.1:%d", tst_free_port());
    fr_ctl_op oks[] = {{"pipeline.put", ok_op, NULL, ""}};
    fr_ctl_op refuses[] = {{"pipeline.put", refuse_op, NULL, ""}};
    fr_ctl_server *sa = NULL, *sb = NULL;
    assert_fr_ok(fr_ctl_server_start(&sa, a, NULL, oks, 1, 1));
    assert_fr_ok(fr_ctl_server_start(&sb, b, NULL, refuses, 1, 1));

    fr_ctl_fanout *f = NULL;
    const char *one_up[] = {a, dead};
    assert_fr_ok(fr_ctl_fanout_open(&f, one_up, 2, NULL));
    size_t accepted = 0;
    char code[48];
    fr_error err;
    assert_fr_ok(fr_ctl_fanout_call(f, "pipeline.put", NULL, 0, 300, &accepted, code, &err));
    assert_int_equal(accepted, 1);
    fr_ctl_fanout_close(f);

    const char *refusing[] = {a, b};
    assert_fr_ok(fr_ctl_fanout_open(&f, refusing, 2, NULL));
    assert_int_equal(fr_ctl_fanout_call(f, "pipeline.put", NULL, 0, 2000, &accepted, code, &err),
                     FR_EREMOTE);
    assert_string_equal(code, "bad_manifest");
    assert_string_equal(err.where, "workflow.collect.publish[0]");
    assert_string_equal(err.message, "no such sink");
    fr_ctl_fanout_close(f);

    const char *nobody[] = {dead};
    assert_fr_ok(fr_ctl_fanout_open(&f, nobody, 1, NULL));
    assert_int_equal(fr_ctl_fanout_call(f, "pipeline.put", NULL, 0, 200, &accepted, code, &err),
                     FR_ETIMEDOUT);
    assert_string_equal(code, "unavailable");
    assert_non_null(strstr(err.message, dead));
    fr_ctl_fanout_close(f);

    assert_fr_ok(fr_ctl_fanout_open(&f, NULL, 0, NULL));
    assert_int_equal(fr_ctl_fanout_call(f, "pipeline.put", NULL, 0, 200, NULL, NULL, &err),
                     FR_ETIMEDOUT);
    assert_non_null(strstr(err.message, "no address configured"));
    fr_ctl_fanout_close(f);
    fr_ctl_server_destroy(sa);
    fr_ctl_server_destroy(sb);
}

static void test_tombstones(void **state)
{
    fr_tombstones t = {.n = 0};
    assert_false(fr_tombstones_has(&t, "a"));
    fr_tombstones_set(&t, "a", true);
    fr_tombstones_set(&t, "a", true);
    assert_true(fr_tombstones_has(&t, "a"));
    assert_int_equal(t.n, 1);
    fr_tombstones_set(&t, "a", false);
    assert_false(fr_tombstones_has(&t, "a"));
    /* past the limit the oldest go first */
    char id[16];
    for (int i = 0; i < FR_TOMBSTONES + 10; i++) {
        snprintf(id, sizeof(id), "t%d", i);
        fr_tombstones_set(&t, id, true);
    }
    assert_false(fr_tombstones_has(&t, "t0"));
    assert_false(fr_tombstones_has(&t, "t9"));
    assert_true(fr_tombstones_has(&t, "t10"));
    snprintf(id, sizeof(id), "t%d", FR_TOMBSTONES + 9);
    assert_true(fr_tombstones_has(&t, id));
    fr_tombstones_free(&t);
    assert_int_equal(t.n, 0);
}

int main(void)
{
    fr_log_init("nodeconf_test", FR_LOG_OFF, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_scalars_and_maps),
        cmocka_unit_test(test_errors_name_the_key),
        cmocka_unit_test(test_error_locate),
        cmocka_unit_test(test_retryable),
        cmocka_unit_test(test_put_args_round_trip),
        cmocka_unit_test(test_store),
        cmocka_unit_test(test_fanout),
        cmocka_unit_test(test_tombstones),
    };
    int failed = cmocka_run_group_tests_name("nodeconf", tests, NULL, NULL);
    nng_fini();
    return failed;
}
