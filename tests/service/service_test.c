/* The service loop and the command line, on the real binaries: start on
 * given addresses, answer the built-in ops, exit 0 on SIGTERM within a second
 * (under ASan that also means no leak), refuse bad config with the key and
 * where it came from, carry batches processor -> publisher, and
 * `fresco status` reporting up and down services. */
#include "testsupport.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fresco/ctl.h"
#include "fresco/data.h"
#include "fresco/log.h"
#include "fresco/manifest.h"
#include "fresco/metric.h"
#include "fresco/pipectl.h"

static char *tmp;

static int group_setup(void **state)
{
    tmp = tst_tmpdir("fresco-service-test");
    return tmp != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    tst_rmtree(tmp);
    free(tmp);
    return 0;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return strdup("");
    }
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strdup(buf);
}

typedef struct svc_proc {
    pid_t pid;
    char control[64];
    char events[64];
    char data_in[64];
    char log[512];
    fr_ctl_client *cli;
} svc_proc;

static bool answers(void *arg)
{
    svc_proc *p = arg;
    fr_ctl_result res;
    int rv = fr_ctl_call(p->cli, "ping", NULL, 0, 200, &res);
    fr_ctl_result_free(&res);
    return rv == 0;
}

/* Starts fresco-<name> on fresh ports with extra flags; waits until it
 * answers ping. */
static void svc_start(svc_proc *p, const char *name, const char *extra1, const char *extra2)
{
    memset(p, 0, sizeof(*p));
    snprintf(p->control, sizeof(p->control), "tcp://127.0.0.1:%d", tst_free_port());
    snprintf(p->events, sizeof(p->events), "tcp://127.0.0.1:%d", tst_free_port());
    snprintf(p->data_in, sizeof(p->data_in), "tcp://127.0.0.1:%d", tst_free_port());
    snprintf(p->log, sizeof(p->log), "%s/%s-%d.log", tmp, name, tst_free_port());
    char bin[512], rel[128], a1[128], a2[128], a3[128], a4[700];
    snprintf(rel, sizeof(rel), "services/%s/fresco-%s", name, name);
    /* Every publisher keeps its spool in the test's folder. */
    snprintf(a4, sizeof(a4), "--state_dir=%s/%s-%d", tmp, name, tst_free_port());
    snprintf(a1, sizeof(a1), "--control=%s", p->control);
    snprintf(a2, sizeof(a2), "--events=%s", p->events);
    snprintf(a3, sizeof(a3), "--data_in=%s", p->data_in);
    bool has_data = strcmp(name, "collector") != 0;
    char *argv[8] = {(char *)tst_bin(bin, sizeof(bin), rel), a1, a2};
    int n = 3;
    if (has_data) {
        argv[n++] = a3;
    }
    if (strcmp(name, "publisher") == 0) {
        argv[n++] = a4;
    }
    if (extra1 != NULL) {
        argv[n++] = (char *)extra1;
    }
    if (extra2 != NULL) {
        argv[n++] = (char *)extra2;
    }
    argv[n] = NULL;
    p->pid = tst_spawn(argv, p->log);
    assert_true(p->pid > 0);
    assert_fr_ok(fr_ctl_client_open(&p->cli, p->control, NULL));
    if (!tst_wait_until(answers, p, 15000)) {
        char *log = slurp(p->log);
        fail_msg("fresco-%s did not answer on %s; its log:\n%s", name, p->control, log);
    }
}

/* SIGTERM, and it must be gone with status 0 within a second. */
static void svc_stop_clean(svc_proc *p)
{
    fr_ctl_client_close(p->cli);
    p->cli = NULL;
    int64_t t0 = tst_mono_ms();
    int status = tst_stop(p->pid, SIGTERM, 1000);
    int64_t took = tst_mono_ms() - t0;
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char *log = slurp(p->log);
        fail_msg("not a clean exit (status %d after %lld ms); log:\n%s", status, (long long)took,
                 log);
    }
}

static void check_builtins(svc_proc *p, const char *name)
{
    fr_ctl_result res;
    assert_fr_ok(fr_ctl_call(p->cli, "ping", NULL, 0, 2000, &res));
    assert_int_equal(res.result->type, FR_NODE_STR);
    assert_string_equal(res.result->v.str, "pong");
    fr_ctl_result_free(&res);

    assert_fr_ok(fr_ctl_call(p->cli, "status", NULL, 0, 2000, &res));
    const char *s = NULL;
    int64_t pid = 0, up = -1;
    assert_fr_ok(fr_node_get_str(res.result, "name", &s));
    assert_string_equal(s, name);
    assert_fr_ok(fr_node_get_str(res.result, "version", &s));
    assert_true(strlen(s) > 0);
    assert_fr_ok(fr_node_get_i64(res.result, "pid", &pid));
    assert_int_equal(pid, p->pid);
    assert_fr_ok(fr_node_get_i64(res.result, "uptime_ms", &up));
    assert_true(up >= 0);
    const fr_node *addr = fr_node_get(res.result, "addresses");
    assert_fr_ok(fr_node_get_str(addr, "control", &s));
    assert_string_equal(s, p->control);
    assert_fr_ok(fr_node_get_str(addr, "events", &s));
    assert_string_equal(s, p->events);
    fr_ctl_result_free(&res);

    assert_fr_ok(fr_ctl_call(p->cli, "stats", NULL, 0, 2000, &res));
    uint64_t requests = 0;
    assert_fr_ok(fr_node_get_u64(fr_node_get(res.result, "control"), "requests", &requests));
    assert_true(requests >= 2);
    assert_non_null(fr_node_get(res.result, "counters"));
    fr_ctl_result_free(&res);

    assert_fr_ok(fr_ctl_call(p->cli, "help", NULL, 0, 2000, &res));
    assert_int_equal(res.result->type, FR_NODE_ARRAY);
    assert_true(res.result->len >= 4);
    fr_ctl_result_free(&res);
}

static void test_each_service_starts_answers_and_stops(void **state)
{
    const char *names[] = {"collector", "processor", "publisher"};
    for (size_t i = 0; i < 3; i++) {
        svc_proc p;
        svc_start(&p, names[i], NULL, NULL);
        check_builtins(&p, names[i]);
        svc_stop_clean(&p);
    }
}

static void test_sigint_also_stops_cleanly(void **state)
{
    svc_proc p;
    svc_start(&p, "publisher", NULL, NULL);
    fr_ctl_client_close(p.cli);
    int status = tst_stop(p.pid, SIGINT, 1000);
    assert_true(status != -1 && WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Runs a binary to completion; returns its exit code, output in *out. */
static int run_capture(char *const argv[], char **out)
{
    char log[512];
    snprintf(log, sizeof(log), "%s/run-%d.log", tmp, tst_free_port());
    pid_t pid = tst_spawn(argv, log);
    int status = tst_stop(pid, 0, 30000);
    *out = slurp(log);
    return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_bad_config_is_refused_with_where(void **state)
{
    char bin[512], *out = NULL;
    tst_bin(bin, sizeof(bin), "services/collector/fresco-collector");

    char *a1[] = {bin, "--wokers=3", NULL};
    assert_int_equal(run_capture(a1, &out), 2);
    assert_non_null(strstr(out, "--wokers"));
    free(out);

    char *a2[] = {bin, "--workers=lots", NULL};
    assert_int_equal(run_capture(a2, &out), 2);
    assert_non_null(strstr(out, "workers"));
    assert_non_null(strstr(out, "lots"));
    free(out);

    char yaml[600], flag[700];
    snprintf(yaml, sizeof(yaml), "%s/collector.yaml", tmp);
    const char *text = "control: tcp://127.0.0.1:1\nlog:\n  level: info\n  colour: red\n";
    assert_int_equal(tst_write_file(yaml, text, strlen(text)), 0);
    snprintf(flag, sizeof(flag), "--config=%s", yaml);
    char *a3[] = {bin, flag, NULL};
    assert_int_equal(run_capture(a3, &out), 2);
    char want[700];
    snprintf(want, sizeof(want), "%s:4:3", yaml);
    if (strstr(out, want) == NULL || strstr(out, "log.colour") == NULL) {
        fail_msg("expected %s and log.colour in: %s", want, out);
    }
    free(out);

    /* An address nobody can listen on: start fails, exit 1, says which. */
    char *a4[] = {bin, "--control=tcp://256.1.1.1:7400", NULL};
    assert_int_equal(run_capture(a4, &out), 1);
    assert_non_null(strstr(out, "256.1.1.1"));
    free(out);

    char *a5[] = {bin, "--help", NULL};
    assert_int_equal(run_capture(a5, &out), 0);
    assert_non_null(strstr(out, "FRESCO_COLLECTOR_CONTROL"));
    free(out);
}

static void test_env_overrides_default(void **state)
{
    char control[64];
    snprintf(control, sizeof(control), "tcp://127.0.0.1:%d", tst_free_port());
    setenv("FRESCO_PUBLISHER_CONTROL", control, 1);
    svc_proc p;
    svc_start(&p, "publisher", NULL, NULL); /* --control flag wins over env */
    unsetenv("FRESCO_PUBLISHER_CONTROL");
    fr_ctl_client *cli = NULL;
    assert_fr_ok(fr_ctl_client_open(&cli, control, NULL));
    fr_ctl_result res;
    /* Nothing listens on the env address: the flag won. */
    assert_int_equal(fr_ctl_call(cli, "ping", NULL, 0, 300, &res), FR_ETIMEDOUT);
    fr_ctl_client_close(cli);
    svc_stop_clean(&p);

    /* Without the flag, the env address is used. */
    char bin[512], log[512], events[64];
    snprintf(events, sizeof(events), "tcp://127.0.0.1:%d", tst_free_port());
    setenv("FRESCO_COLLECTOR_CONTROL", control, 1);
    setenv("FRESCO_COLLECTOR_EVENTS", events, 1);
    snprintf(log, sizeof(log), "%s/env.log", tmp);
    char *argv[] = {(char *)tst_bin(bin, sizeof(bin), "services/collector/fresco-collector"), NULL};
    svc_proc q;
    memset(&q, 0, sizeof(q));
    q.pid = tst_spawn(argv, log);
    unsetenv("FRESCO_COLLECTOR_CONTROL");
    unsetenv("FRESCO_COLLECTOR_EVENTS");
    snprintf(q.control, sizeof(q.control), "%s", control);
    snprintf(q.log, sizeof(q.log), "%s", log);
    assert_fr_ok(fr_ctl_client_open(&q.cli, control, NULL));
    assert_true(tst_wait_until(answers, &q, 15000));
    svc_stop_clean(&q);
}

/* ---- batches through processor -> publisher ---- */

typedef struct pipe_state {
    svc_proc *pub;
    uint64_t want_metrics;
} pipe_state;

static uint64_t counter(svc_proc *p, const char *name)
{
    fr_ctl_result res;
    uint64_t v = 0;
    if (fr_ctl_call(p->cli, "stats", NULL, 0, 1000, &res) == 0) {
        fr_node_get_u64(fr_node_get(res.result, "counters"), name, &v);
    }
    fr_ctl_result_free(&res);
    return v;
}

static bool publisher_has_all(void *arg)
{
    pipe_state *s = arg;
    return counter(s->pub, "metrics_in") >= s->want_metrics;
}

static void test_batches_flow_processor_to_publisher(void **state)
{
    svc_proc pub, proc;
    svc_start(&pub, "publisher", NULL, NULL);
    char pubs[128], pubctl[128];
    snprintf(pubs, sizeof(pubs), "--publishers=%s", pub.data_in);
    snprintf(pubctl, sizeof(pubctl), "--publisher_controls=%s", pub.control);
    svc_start(&proc, "processor", pubs, pubctl);

    /* The task's processing reaches the processor, and from it the
     * publisher, before its batches. */
    static const char text[] = "version: 1\n"
                               "schedule: {type: simple, interval: 1s}\n"
                               "workflow:\n"
                               "  collect:\n"
                               "    metrics: {/intel/procfs/cpu/*/user: {}}\n"
                               "    process:\n"
                               "      - plugin_name: passthrough\n"
                               "        publish:\n"
                               "          - plugin_name: file\n"
                               "            config: {file: /dev/null}\n";
    fr_manifest *m = NULL;
    fr_error err;
    assert_fr_ok(fr_manifest_parse(text, strlen(text), "t.yaml", &m, &err));
    fr_buf put = FR_BUF_INIT;
    assert_fr_ok(fr_pipeline_put_pack("task-1", "flow", m, &put));
    fr_ctl_result res;
    if (fr_ctl_call(proc.cli, "pipeline.put", put.data, put.len, 10000, &res) != 0) {
        fail_msg("pipeline.put: %s at %s", res.error_message, res.error_where);
    }
    fr_ctl_result_free(&res);
    fr_buf_free(&put);
    fr_manifest_free(m);

    const char *urls[] = {proc.data_in};
    fr_data_sender *tx = NULL;
    assert_fr_ok(fr_data_sender_open(&tx, urls, 1, NULL, NULL));
    fr_buf wire = FR_BUF_INIT;
    uint64_t metrics = 0;
    for (uint64_t seq = 1; seq <= 500; seq++) {
        fr_batch *b = fr_batch_new("task-1", "node-a", seq);
        for (int i = 0; i < 20; i++) {
            char ns[64];
            snprintf(ns, sizeof(ns), "/intel/procfs/cpu/%d/user", i);
            assert_non_null(
                fr_batch_add(b, ns, (int64_t)seq * 1000000000, fr_val_u64(seq), "jiffies"));
            metrics++;
        }
        fr_buf_reset(&wire);
        assert_fr_ok(fr_batch_encode(b, &wire));
        assert_fr_ok(fr_data_send(tx, wire.data, wire.len, 10000));
        fr_batch_destroy(b);
    }
    /* And one that is not a batch: rejected, nothing else disturbed. */
    assert_fr_ok(fr_data_send(tx, "\x93\x01\x02\x03", 4, 10000));
    assert_fr_ok(fr_data_flush(tx, 20000));
    fr_data_sender_stats st;
    fr_data_sender_stats_get(tx, &st);
    assert_int_equal(st.acked, 500);
    assert_int_equal(st.rejected, 1);

    pipe_state ps = {&pub, metrics};
    assert_true(tst_wait_until(publisher_has_all, &ps, 20000));
    assert_int_equal(counter(&pub, "metrics_in"), metrics);
    assert_int_equal(counter(&pub, "batches_in"), 500);
    assert_int_equal(counter(&proc, "batches_rejected"), 1);
    fr_data_sender_close(tx);
    fr_buf_free(&wire);
    svc_stop_clean(&proc);
    svc_stop_clean(&pub);
}

/* ---- fresco status ---- */

static void test_cli_status(void **state)
{
    svc_proc col, proc, pub;
    svc_start(&col, "collector", NULL, NULL);
    svc_start(&proc, "processor", NULL, NULL);
    svc_start(&pub, "publisher", NULL, NULL);
    char bin[512], c1[128], c2[128], c3[128], *out = NULL;
    tst_bin(bin, sizeof(bin), "services/fresco/fresco");
    snprintf(c1, sizeof(c1), "--collector=%s", col.control);
    snprintf(c2, sizeof(c2), "--processor=%s", proc.control);
    snprintf(c3, sizeof(c3), "--publisher=%s", pub.control);

    char *table[] = {bin, "status", c1, c2, c3, NULL};
    int rc = run_capture(table, &out);
    if (rc != 0) {
        fail_msg("fresco status exited %d:\n%s", rc, out);
    }
    assert_non_null(strstr(out, "SERVICE"));
    assert_non_null(strstr(out, col.control));
    assert_null(strstr(out, "down"));
    free(out);

    char *json[] = {bin, c1, c2, c3, "status", "--json", NULL};
    assert_int_equal(run_capture(json, &out), 0);
    assert_non_null(strstr(out, "\"service\":\"collector\""));
    assert_non_null(strstr(out, "\"name\":\"publisher\""));
    assert_null(strstr(out, "\"up\":false"));
    free(out);

    /* One down: exit 1 and it says which. */
    svc_stop_clean(&proc);
    char *down[] = {bin, "status", c1, c2, c3, "--timeout=300ms", NULL};
    assert_int_equal(run_capture(down, &out), 1);
    assert_non_null(strstr(out, "down"));
    assert_non_null(strstr(out, "processor"));
    free(out);

    char *only[] = {bin, "status", c1, c2, c3, "--only=collector,publisher", NULL};
    assert_int_equal(run_capture(only, &out), 0);
    assert_null(strstr(out, "processor"));
    free(out);

    char *stats[] = {bin, c3, "stats", "publisher", NULL};
    assert_int_equal(run_capture(stats, &out), 0);
    assert_non_null(strstr(out, "metrics_in"));
    free(out);

    char *bad[] = {bin, "status", "--colector=x", NULL};
    assert_int_equal(run_capture(bad, &out), 2);
    assert_non_null(strstr(out, "--colector"));
    free(out);

    svc_stop_clean(&col);
    svc_stop_clean(&pub);
}

static void test_json_log_lines(void **state)
{
    svc_proc p;
    svc_start(&p, "processor", "--log.format=json", "--log.level=debug");
    svc_stop_clean(&p);
    char *log = slurp(p.log);
    /* Every line is one JSON object naming service and module. */
    int lines = 0;
    for (char *line = strtok(log, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (line[0] != '{' || line[strlen(line) - 1] != '}' ||
            strstr(line, "\"service\":\"processor\"") == NULL ||
            strstr(line, "\"module\":\"") == NULL || strstr(line, "\"level\":\"") == NULL) {
            fail_msg("not a JSON log line: %s", line);
        }
        lines++;
    }
    assert_true(lines >= 2); /* up, and stopping */
    free(log);
}

int main(void)
{
    fr_log_init("service_test", FR_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_service_starts_answers_and_stops),
        cmocka_unit_test(test_sigint_also_stops_cleanly),
        cmocka_unit_test(test_bad_config_is_refused_with_where),
        cmocka_unit_test(test_env_overrides_default),
        cmocka_unit_test(test_batches_flow_processor_to_publisher),
        cmocka_unit_test(test_cli_status),
        cmocka_unit_test(test_json_log_lines),
    };
    return cmocka_run_group_tests_name("service", tests, group_setup, group_teardown);
}
