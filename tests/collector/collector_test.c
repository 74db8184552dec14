/* fresco-collector end to end: tasks from manifests through the control
 * socket, a plugin loaded from a shared object, metrics on the watch
 * stream, snap's states and failure counting, deadlines that cut off a
 * hanging plugin without holding up other tasks, count, persistence across
 * a restart, and a plugin that crashes the daemon. */
#include "testsupport.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fresco/ctl.h"
#include "fresco/event.h"
#include "fresco/log.h"
#include "fresco/metric.h"

static char *tmp;
static char state_dir[600];
static char plugin_path[600];
static tst_service col;

static void collector_up(void)
{
    char sd[700];
    snprintf(sd, sizeof(sd), "--state_dir=%s", state_dir);
    const char *extra[] = {sd, "--processors=", "--publishers=", NULL};
    tst_service_start(&col, "collector", tmp, extra);
}

static int group_setup(void **state)
{
    tmp = tst_tmpdir("fresco-collector-test");
    snprintf(state_dir, sizeof(state_dir), "%s/state", tmp);
    tst_bin(plugin_path, sizeof(plugin_path), "tests/collector/testplugin.so");
    return tmp != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    tst_rmtree(tmp);
    free(tmp);
    return 0;
}

static int setup(void **state)
{
    collector_up();
    return 0;
}

static int teardown(void **state)
{
    tst_service_stop(&col, 5000);
    return 0;
}

/* ---- calls ---- */

static void pack_kv(msgpack_packer *pk, const char *k, const char *v)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
    msgpack_pack_str(pk, strlen(v));
    msgpack_pack_str_body(pk, v, strlen(v));
}

/* Calls op with string args (NULL-terminated key, value pairs). */
static int call(const char *op, fr_ctl_result *res, ...)
{
    fr_buf args = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &args, fr_buf_msgpack_write);
    const char *kv[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, res);
    for (const char *k; n < 16 && (k = va_arg(ap, const char *)) != NULL;) {
        kv[n++] = k;
    }
    va_end(ap);
    msgpack_pack_map(&pk, n / 2);
    for (size_t i = 0; i + 1 < n; i += 2) {
        pack_kv(&pk, kv[i], kv[i + 1]);
    }
    int rv = fr_ctl_call(col.cli, op, args.data, args.len, 10000, res);
    fr_buf_free(&args);
    return rv;
}

static void load_plugin(void)
{
    fr_ctl_result res;
    int rv = call("plugin.load", &res, "path", plugin_path, NULL);
    if (rv != 0 && strstr(res.error_message, "loaded already") == NULL) {
        fail_msg("plugin.load: %d %s %s", rv, res.error_code, res.error_message);
    }
    fr_ctl_result_free(&res);
}

/* Creates a task from manifest text; returns its id (static buffer). */
static const char *create(const char *text, fr_ctl_result *res)
{
    static char id[64];
    int rv = call("task.create", res, "manifest", text, "file", "task.yaml", NULL);
    if (rv != 0) {
        return NULL;
    }
    const char *s = NULL;
    assert_fr_ok(fr_node_get_str(res->result, "id", &s));
    snprintf(id, sizeof(id), "%s", s);
    return id;
}

typedef struct task_view {
    char state[32];
    uint64_t hits, misses, failures;
    char reason[512];
    char last_failure[512];
} task_view;

static void get(const char *id, task_view *v)
{
    fr_ctl_result res;
    int rv = call("task.get", &res, "id", id, NULL);
    if (rv != 0) {
        static char tail[8192];
        char *log = tst_slurp(col.log);
        size_t len = strlen(log);
        snprintf(tail, sizeof(tail), "%s", log + (len > 8000 ? len - 8000 : 0));
        free(log);
        fail_msg("task.get %s: %s %s; collector log:\n%s", id, res.error_code, res.error_message,
                 tail);
    }
    const char *s = "";
    fr_node_get_str(res.result, "state", &s);
    snprintf(v->state, sizeof(v->state), "%s", s);
    fr_node_get_u64(res.result, "hits", &v->hits);
    fr_node_get_u64(res.result, "misses", &v->misses);
    fr_node_get_u64(res.result, "failures", &v->failures);
    s = "";
    fr_node_get_str(res.result, "reason", &s);
    snprintf(v->reason, sizeof(v->reason), "%s", s);
    s = "";
    fr_node_get_str(res.result, "last_failure", &s);
    snprintf(v->last_failure, sizeof(v->last_failure), "%s", s);
    fr_ctl_result_free(&res);
}

typedef struct wait_arg {
    const char *id;
    const char *state; /* NULL: any */
    uint64_t min_hits, min_failures, min_misses;
} wait_arg;

static bool task_reached(void *p)
{
    wait_arg *w = p;
    task_view v = {0};
    get(w->id, &v);
    return (w->state == NULL || strcmp(v.state, w->state) == 0) && v.hits >= w->min_hits &&
           v.failures >= w->min_failures && v.misses >= w->min_misses;
}

static void wait_task(const char *id, const char *state, uint64_t hits, uint64_t failures,
                      int deadline_ms)
{
    wait_arg w = {id, state, hits, failures, 0};
    if (!tst_wait_until(task_reached, &w, deadline_ms)) {
        task_view v = {0};
        get(id, &v);
        fail_msg("task %s: state %s hits %llu failures %llu (wanted %s, %llu, %llu); %s %s", id,
                 v.state, (unsigned long long)v.hits, (unsigned long long)v.failures,
                 state ? state : "any", (unsigned long long)hits, (unsigned long long)failures,
                 v.reason, v.last_failure);
    }
}

#define TEST_MANIFEST(extra_schedule, extra_top, config)                                           \
    "version: 1\n"                                                                                 \
    "schedule:\n"                                                                                  \
    "  type: simple\n"                                                                             \
    "  interval: 50ms\n" extra_schedule extra_top "workflow:\n"                                    \
    "  collect:\n"                                                                                 \
    "    metrics:\n"                                                                               \
    "      /fresco/test/counter: {}\n"                                                             \
    "      /fresco/test/*/value: {}\n"                                                             \
    "    config:\n"                                                                                \
    "      /fresco/test:\n" config "    tags:\n"                                                   \
    "      /fresco/test:\n"                                                                        \
    "        rack: r1\n"

/* ---- tests ---- */

static void test_create_watch_and_lifecycle(void **state)
{
    load_plugin();
    fr_ctl_result res;
    const char *id = create(TEST_MANIFEST("", "", "        values: 3\n"), &res);
    if (id == NULL) {
        fail_msg("task.create: %s %s at %s", res.error_code, res.error_message, res.error_where);
    }
    char tid[64];
    snprintf(tid, sizeof(tid), "%s", id);
    fr_ctl_result_free(&res);

    /* The first run fires at once; metrics arrive on the watch stream. */
    fr_event_sub *sub = NULL;
    assert_fr_ok(fr_event_sub_open(&sub, col.events, NULL));
    char topic[128];
    snprintf(topic, sizeof(topic), "metrics/%s", tid);
    assert_fr_ok(fr_event_subscribe(sub, topic));
    fr_event ev;
    assert_fr_ok(fr_event_recv(sub, 10000, &ev));
    fr_buf wire = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &wire, fr_buf_msgpack_write);
    assert_fr_ok(fr_node_pack(ev.body, &pk));
    fr_batch *b = NULL;
    fr_error err;
    assert_fr_ok(fr_batch_decode(wire.data, wire.len, &b, &err));
    assert_string_equal(b->task, tid);
    assert_int_equal(b->nmetrics, 4); /* counter + 3 values */
    bool saw_value2 = false;
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        const fr_metric *m = &b->metrics[i];
        assert_int_equal(m->ntags, 1);
        assert_string_equal(m->tags[0].key, "rack");
        assert_string_equal(m->tags[0].value, "r1");
        if (strcmp(m->ns, "/fresco/test/2/value") == 0) {
            saw_value2 = true;
            assert_true(m->value.v.d == 3.0);
        }
    }
    assert_true(saw_value2);
    fr_batch_destroy(b);
    fr_buf_free(&wire);
    fr_event_free(&ev);
    fr_event_sub_close(sub);

    wait_task(tid, "Running", 3, 0, 10000);

    /* stop, start, and the state machine's refusals */
    assert_fr_ok(call("task.stop", &res, "id", tid, NULL));
    fr_ctl_result_free(&res);
    task_view v;
    get(tid, &v);
    assert_string_equal(v.state, "Stopped");
    assert_int_equal(call("task.stop", &res, "id", tid, NULL), FR_EREMOTE);
    assert_non_null(strstr(res.error_message, "Stopped"));
    fr_ctl_result_free(&res);
    assert_int_equal(call("task.enable", &res, "id", tid, NULL), FR_EREMOTE);
    fr_ctl_result_free(&res);
    assert_fr_ok(call("task.start", &res, "id", tid, NULL));
    fr_ctl_result_free(&res);
    wait_task(tid, "Running", v.hits + 2, 0, 10000);

    assert_fr_ok(call("task.list", &res, NULL));
    assert_int_equal(res.result->type, FR_NODE_ARRAY);
    assert_true(res.result->len >= 1);
    fr_ctl_result_free(&res);

    assert_fr_ok(call("task.remove", &res, "id", tid, NULL));
    fr_ctl_result_free(&res);
    assert_int_equal(call("task.get", &res, "id", tid, NULL), FR_EREMOTE);
    assert_string_equal(res.error_code, "not_found");
    fr_ctl_result_free(&res);
}

static void expect_refused(const char *text, const char *code, const char *in_message,
                           const char *in_where)
{
    fr_ctl_result res;
    assert_null(create(text, &res));
    if (strcmp(res.error_code, code) != 0 || strstr(res.error_message, in_message) == NULL ||
        strstr(res.error_where, in_where) == NULL) {
        fail_msg("wanted %s / '%s' / '%s'; got %s / '%s' / '%s'", code, in_message, in_where,
                 res.error_code, res.error_message, res.error_where);
    }
    fr_ctl_result_free(&res);
}

static void test_bad_manifests_are_refused_whole(void **state)
{
    load_plugin();
    fr_ctl_result res;
    assert_fr_ok(call("task.list", &res, NULL));
    uint32_t before = res.result->len;
    fr_ctl_result_free(&res);

    /* a metric no plugin offers: named, with its line */
    expect_refused("version: 1\nschedule:\n  type: simple\n  interval: 1s\nworkflow:\n"
                   "  collect:\n    metrics:\n      /fresco/test/counter: {}\n"
                   "      /nobody/offers/this: {}\n",
                   "bad_manifest", "/nobody/offers/this", "task.yaml:9:");
    /* a config key no plugin takes */
    expect_refused(TEST_MANIFEST("", "", "        bogus: 1\n"), "bad_manifest", "bogus",
                   "task.yaml:");
    /* a value the plugin's policy refuses */
    expect_refused(TEST_MANIFEST("", "", "        mode: explode\n"), "bad_manifest", "mode",
                   "task.yaml:12:9");
    /* no interval, and an interval <= 0 */
    expect_refused("version: 1\nschedule:\n  type: simple\nworkflow:\n  collect:\n"
                   "    metrics:\n      /fresco/test/counter: {}\n",
                   "bad_manifest", "interval", "task.yaml:");
    expect_refused(TEST_MANIFEST("", "", "        values: 1\n") "x: 1\n", "bad_manifest", "x",
                   "task.yaml:");
    /* a stop time in the past */
    expect_refused(
        TEST_MANIFEST("  stop_timestamp: 2001-01-01T00:00:00Z\n", "", "        values: 1\n"),
        "bad_manifest", "stop", "");

    assert_fr_ok(call("task.list", &res, NULL));
    assert_int_equal(res.result->len, before);
    fr_ctl_result_free(&res);
}

static void test_failures_disable_then_enable(void **state)
{
    load_plugin();
    fr_ctl_result res;
    const char *id = create(TEST_MANIFEST("", "max-failures: 2\n", "        mode: fail\n"), &res);
    assert_non_null(id);
    char tid[64];
    snprintf(tid, sizeof(tid), "%s", id);
    fr_ctl_result_free(&res);
    wait_task(tid, "Disabled", 0, 3, 10000);
    task_view v;
    get(tid, &v);
    assert_int_equal(v.failures, 3); /* the third consecutive one is past max-failures 2 */
    assert_non_null(strstr(v.reason, "3 consecutive failures"));
    assert_non_null(strstr(v.last_failure, "unreadable"));
    assert_int_equal(call("task.start", &res, "id", tid, NULL), FR_EREMOTE);
    assert_non_null(strstr(res.error_message, "enable"));
    fr_ctl_result_free(&res);
    assert_fr_ok(call("task.enable", &res, "id", tid, NULL));
    fr_ctl_result_free(&res);
    get(tid, &v);
    assert_string_equal(v.state, "Stopped");
    assert_fr_ok(call("task.remove", &res, "id", tid, NULL));
    fr_ctl_result_free(&res);
}

static void test_count_ends_the_task(void **state)
{
    load_plugin();
    fr_ctl_result res;
    const char *id = create(TEST_MANIFEST("  count: 3\n", "", "        values: 1\n"), &res);
    assert_non_null(id);
    char tid[64];
    snprintf(tid, sizeof(tid), "%s", id);
    fr_ctl_result_free(&res);
    wait_task(tid, "Ended", 3, 0, 10000);
    task_view v;
    get(tid, &v);
    assert_int_equal(v.hits, 3);
    assert_fr_ok(call("task.remove", &res, "id", tid, NULL));
    fr_ctl_result_free(&res);
}

static void test_hanging_plugin_is_cut_off_alone(void **state)
{
    load_plugin();
    fr_ctl_result res;
    const char *id = create(TEST_MANIFEST("", "deadline: 100ms\nmax-failures: -1\n",
                                          "        mode: hang\n        hang_ms: 5000\n"),
                            &res);
    assert_non_null(id);
    char hang[64];
    snprintf(hang, sizeof(hang), "%s", id);
    fr_ctl_result_free(&res);
    id = create(TEST_MANIFEST("", "", "        values: 1\n"), &res);
    assert_non_null(id);
    char ok[64];
    snprintf(ok, sizeof(ok), "%s", id);
    fr_ctl_result_free(&res);

    /* The hanging task fails on its deadline and misses ticks while its
     * plugin is stuck; the other task keeps collecting meanwhile. */
    wait_task(hang, "Running", 0, 1, 10000);
    task_view h, o1;
    get(ok, &o1);
    wait_task(ok, "Running", o1.hits + 5, 0, 10000);
    wait_arg w = {hang, NULL, 0, 0, 1};
    assert_true(tst_wait_until(task_reached, &w, 10000));
    get(hang, &h);
    assert_int_equal(h.hits, 0); /* every collect overran the deadline */
    assert_non_null(strstr(h.last_failure, "deadline"));
    assert_fr_ok(call("task.remove", &res, "id", hang, NULL));
    fr_ctl_result_free(&res);
    assert_fr_ok(call("task.remove", &res, "id", ok, NULL));
    fr_ctl_result_free(&res);
}

static void test_tasks_persist_across_restart(void **state)
{
    load_plugin();
    fr_ctl_result res;
    const char *id = create(TEST_MANIFEST("", "", "        values: 1\n"), &res);
    assert_non_null(id);
    char run[64];
    snprintf(run, sizeof(run), "%s", id);
    fr_ctl_result_free(&res);
    id = create(TEST_MANIFEST("", "max-failures: 0\n", "        mode: fail\n"), &res);
    assert_non_null(id);
    char dis[64];
    snprintf(dis, sizeof(dis), "%s", id);
    fr_ctl_result_free(&res);
    wait_task(dis, "Disabled", 0, 1, 10000);
    wait_task(run, "Running", 2, 0, 10000);

    tst_service_stop(&col, 5000);
    collector_up(); /* same state_dir; the plugin is reloaded from it */

    task_view v;
    get(dis, &v);
    assert_string_equal(v.state, "Disabled");
    assert_non_null(strstr(v.reason, "consecutive failures"));
    wait_task(run, "Running", 2, 0, 10000); /* counting again since the restart */
    assert_fr_ok(call("task.remove", &res, "id", run, NULL));
    fr_ctl_result_free(&res);
    assert_fr_ok(call("task.remove", &res, "id", dis, NULL));
    fr_ctl_result_free(&res);
}

static void test_crashing_plugin_is_named_and_disabled(void **state)
{
    load_plugin();
    fr_ctl_result res;
    const char *id = create(TEST_MANIFEST("", "", "        mode: abort\n"), &res);
    assert_non_null(id);
    char tid[64];
    snprintf(tid, sizeof(tid), "%s", id);
    fr_ctl_result_free(&res);
    /* The collector dies of the plugin's abort, saying which plugin. */
    fr_ctl_client_close(col.cli);
    col.cli = NULL;
    int status = tst_stop(col.pid, 0, 15000);
    assert_true(status != -1 && WIFSIGNALED(status));
    char *log = tst_slurp(col.log);
    if (strstr(log, "in plugin testplugin") == NULL) {
        fail_msg("no plugin named in the log:\n%s", log);
    }
    free(log);
    /* Restarted, the task is Disabled with the reason instead of crashing it again. */
    collector_up();
    task_view v;
    get(tid, &v);
    assert_string_equal(v.state, "Disabled");
    assert_non_null(strstr(v.reason, "crashed"));
    assert_fr_ok(call("task.remove", &res, "id", tid, NULL));
    fr_ctl_result_free(&res);
}

static uint64_t stat_counter(tst_service *s, const char *name)
{
    fr_ctl_result res;
    uint64_t v = 0;
    if (fr_ctl_call(s->cli, "stats", NULL, 0, 2000, &res) == 0) {
        fr_node_get_u64(fr_node_get(res.result, "counters"), name, &v);
    }
    fr_ctl_result_free(&res);
    return v;
}

typedef struct flow {
    tst_service *pub;
    tst_service *col;
} flow;

static bool publisher_caught_up(void *arg)
{
    flow *f = arg;
    uint64_t sent = stat_counter(f->col, "metrics_collected");
    return sent >= 40 && stat_counter(f->pub, "metrics_in") >= 40;
}

/* A task with a process node and one publish node of its own: the batches
 * go collector -> processor -> publisher and collector -> publisher, the
 * task's nodes reach both stages over their control sockets. */
static void test_batches_flow_down_the_pipeline(void **state)
{
    tst_service pub, proc;
    char pub_in[64], proc_in[64], a1[128], a2[128], a3[128], a4[128], a5[128], a6[128], a7[128],
        sd[700], psd[700];
    snprintf(pub_in, sizeof(pub_in), "tcp://127.0.0.1:%d", tst_free_port());
    snprintf(proc_in, sizeof(proc_in), "tcp://127.0.0.1:%d", tst_free_port());
    snprintf(a1, sizeof(a1), "--data_in=%s", pub_in);
    snprintf(psd, sizeof(psd), "--state_dir=%s/pipeline-publisher", tmp);
    const char *pe[] = {a1, psd, NULL};
    tst_service_start(&pub, "publisher", tmp, pe);
    snprintf(a2, sizeof(a2), "--data_in=%s", proc_in);
    snprintf(a3, sizeof(a3), "--publishers=%s", pub_in);
    snprintf(a4, sizeof(a4), "--publisher_controls=%s", pub.control);
    const char *pr[] = {a2, a3, a4, NULL};
    tst_service_start(&proc, "processor", tmp, pr);
    snprintf(a5, sizeof(a5), "--processors=%s", proc_in);
    snprintf(a6, sizeof(a6), "--processor_controls=%s", proc.control);
    snprintf(a7, sizeof(a7), "--publisher_controls=%s", pub.control);
    snprintf(sd, sizeof(sd), "--state_dir=%s/pipeline-state", tmp);
    const char *ce[] = {a3, a5, a6, a7, sd, NULL};
    tst_service_start(&col, "collector", tmp, ce);
    load_plugin();

    fr_ctl_result res;
    const char *id =
        create(TEST_MANIFEST("", "", "        values: 1\n") "    process:\n"
                                                            "      - plugin_name: passthrough\n"
                                                            "        publish:\n"
                                                            "          - plugin_name: file\n"
                                                            "            config:\n"
                                                            "              file: /dev/null\n"
                                                            "    publish:\n"
                                                            "      - plugin_name: file\n"
                                                            "        config:\n"
                                                            "          file: /dev/null\n",
               &res);
    if (id == NULL) {
        fail_msg("task.create: %s %s at %s", res.error_code, res.error_message, res.error_where);
    }
    fr_ctl_result_free(&res);
    flow f = {&pub, &col};
    assert_true(tst_wait_until(publisher_caught_up, &f, 20000));
    assert_true(stat_counter(&col, "batches_sent") >= 20);
    assert_true(stat_counter(&proc, "batches_in") >= 10);
    assert_true(stat_counter(&proc, "outputs_sent") >= 10);
    tst_service_stop(&col, 5000);
    tst_service_stop(&proc, 5000);
    tst_service_stop(&pub, 5000);
}

/* Runs the fresco command line against the test collector; returns its
 * exit code with its output in *out (malloc'd). */
static int cli(char **out, const char *a1, const char *a2, const char *a3, const char *a4)
{
    char bin[512], addr[128], log[700];
    snprintf(addr, sizeof(addr), "--collector=%s", col.control);
    snprintf(log, sizeof(log), "%s/cli-%d.log", tmp, tst_free_port());
    char *argv[] = {(char *)tst_bin(bin, sizeof(bin), "services/fresco/fresco"),
                    addr,
                    (char *)a1,
                    (char *)a2,
                    (char *)a3,
                    (char *)a4,
                    NULL};
    pid_t pid = tst_spawn(argv, log);
    int status = tst_stop(pid, 0, 20000);
    *out = tst_slurp(log);
    return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool log_has_metric(void *arg)
{
    char *text = tst_slurp(arg);
    bool yes = strstr(text, "/fresco/test/counter") != NULL;
    free(text);
    return yes;
}

static void test_command_line_verbs(void **state)
{
    char *out = NULL;
    char so[700], file[700];
    snprintf(so, sizeof(so), "%s", plugin_path);
    if (cli(&out, "plugin", "load", so, NULL) != 0 && strstr(out, "loaded already") == NULL) {
        fail_msg("plugin load: %s", out);
    }
    free(out);
    assert_int_equal(cli(&out, "plugin", "list", NULL, NULL), 0);
    assert_non_null(strstr(out, "testplugin"));
    assert_non_null(strstr(out, "procfs"));
    free(out);
    assert_int_equal(cli(&out, "metric", "list", "--ns", "/fresco/test"), 0);
    assert_non_null(strstr(out, "/fresco/test/[n]/value"));
    free(out);
    assert_int_equal(cli(&out, "metric", "get", "/nothing/here", NULL), 1);
    free(out);

    snprintf(file, sizeof(file), "%s/cli-task.yaml", tmp);
    const char *text = "version: 1\nname: from-cli\nschedule:\n  type: simple\n"
                       "  interval: 100ms\nworkflow:\n  collect:\n    metrics:\n"
                       "      /fresco/test/counter: {}\n";
    assert_int_equal(tst_write_file(file, text, strlen(text)), 0);
    assert_int_equal(cli(&out, "task", "create", "-t", file), 0);
    assert_non_null(strstr(out, "Task created"));
    assert_non_null(strstr(out, "Running"));
    free(out);
    assert_int_equal(cli(&out, "task", "list", NULL, NULL), 0);
    assert_non_null(strstr(out, "from-cli"));
    free(out);
    assert_int_equal(cli(&out, "task", "get", "from-cli", "--json"), 0);
    assert_non_null(strstr(out, "\"name\":\"from-cli\""));
    free(out);

    /* watch prints metrics until interrupted */
    char bin[512], addr[128], log[700];
    snprintf(addr, sizeof(addr), "--collector=%s", col.control);
    snprintf(log, sizeof(log), "%s/watch.log", tmp);
    char *argv[] = {(char *)tst_bin(bin, sizeof(bin), "services/fresco/fresco"),
                    addr,
                    "task",
                    "watch",
                    "from-cli",
                    NULL};
    pid_t pid = tst_spawn(argv, log);
    assert_true(tst_wait_until(log_has_metric, log, 10000));
    int status = tst_stop(pid, SIGINT, 5000);
    assert_true(status != -1 && WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    /* an error names the file and line */
    const char *bad = "version: 1\nschedule:\n  type: simple\n  interval: 0s\n";
    assert_int_equal(tst_write_file(file, bad, strlen(bad)), 0);
    assert_int_equal(cli(&out, "task", "create", "-t", file), 1);
    char want[800];
    snprintf(want, sizeof(want), "%s:4:", file);
    if (strstr(out, want) == NULL || strstr(out, "interval") == NULL) {
        fail_msg("wanted %s and interval in: %s", want, out);
    }
    free(out);
    assert_int_equal(cli(&out, "task", "remove", "from-cli", NULL), 0);
    free(out);
}

int main(void)
{
    fr_log_init("collector_test", FR_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_watch_and_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_manifests_are_refused_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_disable_then_enable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count_ends_the_task, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hanging_plugin_is_cut_off_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tasks_persist_across_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crashing_plugin_is_named_and_disabled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_command_line_verbs, setup, teardown),
        cmocka_unit_test(test_batches_flow_down_the_pipeline),
    };
    return cmocka_run_group_tests_name("collector", tests, group_setup, group_teardown);
}
