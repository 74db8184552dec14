/* fresco-publisher as a daemon: tasks checked at pipeline.put; batches
 * spooled and acknowledged; a full spool answering busy until a sink
 * drains it; a batch a sink can never take kept aside while the rest go
 * on; a removed task's sink finishing what the spool holds and the spool
 * emptying; batches seen before a restart dropped after it. The sinks are
 * real: files, and Kafka (librdkafka's mock cluster in its own process, or
 * an address where no broker listens). */
#include "testsupport.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>

#include "fresco/ctl.h"
#include "fresco/data.h"
#include "fresco/log.h"
#include "fresco/manifest.h"
#include "fresco/metric.h"
#include "fresco/pipectl.h"

static char *tmp;
static tst_service pub;
static char pub_data[64], pub_ctl[64], state[600];
static fr_data_sender *tx;

static void publisher_up(const char *max_size)
{
    char a1[128], a2[700], a3[128];
    snprintf(a1, sizeof(a1), "--data_in=%s", pub_data);
    snprintf(a2, sizeof(a2), "--state_dir=%s", state);
    snprintf(a3, sizeof(a3), "--spool.max_size=%s", max_size);
    const char *extra[] = {a1,  a2, a3, "--spool.segment_size=64KiB", "--sink.backoff_max=200ms",
                           NULL};
    tst_service_start_at(&pub, "publisher", tmp, pub_ctl, NULL, extra);
}

static int setup(void **st)
{
    tmp = tst_tmpdir("fresco-publisher-test");
    snprintf(pub_data, sizeof(pub_data), "tcp://127.0.0.1:%d", tst_free_port());
    snprintf(pub_ctl, sizeof(pub_ctl), "tcp://127.0.0.1:%d", tst_free_port());
    snprintf(state, sizeof(state), "%s/state", tmp);
    publisher_up("1MiB");
    const char *urls[] = {pub_data};
    fr_data_sender_opts o = {.window = 8, .resend_ms = 2000, .busy_retry_ms = 50};
    assert_fr_ok(fr_data_sender_open(&tx, urls, 1, NULL, &o));
    return 0;
}

static int teardown(void **st)
{
    fr_data_sender_close(tx);
    tst_service_stop(&pub, 10000);
    tst_rmtree(tmp);
    free(tmp);
    return 0;
}

static int put(const char *task, const char *publish_yaml, fr_ctl_result *res)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "version: 1\n"
             "schedule: {type: simple, interval: 1s}\n"
             "workflow:\n"
             "  collect:\n"
             "    metrics: {/a/b: {}}\n"
             "    publish:\n%s",
             publish_yaml);
    fr_manifest *m = NULL;
    fr_error err;
    if (fr_manifest_parse(text, strlen(text), "t.yaml", &m, &err) != 0) {
        fail_msg("%s: %s\n%s", err.where, err.message, text);
    }
    fr_buf args = FR_BUF_INIT;
    assert_fr_ok(fr_pipeline_put_pack(task, task, m, &args));
    int rv = fr_ctl_call(pub.cli, "pipeline.put", args.data, args.len, 10000, res);
    fr_buf_free(&args);
    fr_manifest_free(m);
    return rv;
}

static void put_ok(const char *task, const char *publish_yaml)
{
    fr_ctl_result res;
    if (put(task, publish_yaml, &res) != 0) {
        fail_msg("pipeline.put: %s at %s", res.error_message, res.error_where);
    }
    fr_ctl_result_free(&res);
}

/* A batch of n metrics, each with a string of vlen bytes, queued within
 * timeout_ms. Returns fr_data_send's answer. */
static int try_send_batch(const char *task, uint64_t seq, uint32_t n, size_t vlen, int timeout_ms)
{
    fr_batch *b = fr_batch_new(task, "node-1", seq);
    char *v = malloc(vlen + 1);
    memset(v, 'x', vlen);
    v[vlen] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        char ns[32];
        snprintf(ns, sizeof(ns), "/a/b/%u", i);
        assert_non_null(fr_batch_add(b, ns, 1000 + (int64_t)seq, fr_val_str(v), ""));
    }
    fr_buf wire = FR_BUF_INIT;
    assert_fr_ok(fr_batch_encode(b, &wire));
    int rv = fr_data_send(tx, wire.data, wire.len, timeout_ms);
    fr_buf_free(&wire);
    fr_batch_destroy(b);
    free(v);
    return rv;
}

static void send_batch(const char *task, uint64_t seq, uint32_t n, size_t vlen)
{
    assert_fr_ok(try_send_batch(task, seq, n, vlen, 20000));
}

static uint64_t counter(const char *name)
{
    fr_ctl_result res;
    uint64_t v = 0;
    if (fr_ctl_call(pub.cli, "stats", NULL, 0, 5000, &res) == 0) {
        fr_node_get_u64(fr_node_get(res.result, "counters"), name, &v);
    }
    fr_ctl_result_free(&res);
    return v;
}

static uint64_t spool_u64(const char *key)
{
    fr_ctl_result res;
    uint64_t v = 0;
    if (fr_ctl_call(pub.cli, "spool.stats", NULL, 0, 5000, &res) == 0) {
        fr_node_get_u64(res.result, key, &v);
    }
    fr_ctl_result_free(&res);
    return v;
}

typedef struct counter_want {
    const char *name;
    uint64_t at_least;
} counter_want;

static bool counter_reaches(void *arg)
{
    counter_want *w = arg;
    return counter(w->name) >= w->at_least;
}

static bool all_acked(void *arg)
{
    fr_data_sender_stats st;
    fr_data_sender_stats_get(tx, &st);
    return st.inflight == 0;
}

static size_t lines_of(const char *path)
{
    char *t = tst_slurp(path);
    size_t n = 0;
    for (const char *p = t; *p != '\0'; p++) {
        n += *p == '\n';
    }
    free(t);
    return n;
}

typedef struct lines_want {
    const char *path;
    size_t n;
} lines_want;

static bool file_has_lines(void *arg)
{
    lines_want *w = arg;
    return lines_of(w->path) >= w->n;
}

static void test_put_checks_nodes(void **st)
{
    fr_ctl_result res;
    assert_int_equal(put("t-bad", "      - plugin_name: nosuch\n", &res), FR_EREMOTE);
    assert_string_equal(res.error_code, "bad_manifest");
    assert_string_equal(res.error_where, "workflow.collect.publish[0]");
    assert_non_null(strstr(res.error_message, "no publisher plugin 'nosuch'"));
    fr_ctl_result_free(&res);
    assert_int_equal(put("t-bad",
                         "      - plugin_name: file\n"
                         "        config: {file: /tmp/x, colour: red}\n",
                         &res),
                     FR_EREMOTE);
    assert_string_equal(res.error_where, "workflow.collect.publish[0].config.colour");
    fr_ctl_result_free(&res);
    /* The sink's own check (a file it cannot open) comes back too. */
    assert_int_equal(put("t-bad",
                         "      - plugin_name: file\n"
                         "        config: {file: /no/such/dir/x.json}\n",
                         &res),
                     FR_EREMOTE);
    assert_string_equal(res.error_where, "workflow.collect.publish[0].config.file");
    fr_ctl_result_free(&res);
    /* A batch of a task not known here is held back, not taken. */
    send_batch("t-bad", 1, 1, 4);
    counter_want held = {"batches_unknown_task", 2};
    assert_true(tst_wait_until(counter_reaches, &held, 10000));
    fr_data_sender_stats s;
    fr_data_sender_stats_get(tx, &s);
    assert_int_equal(s.acked, 0);
}

static void test_full_spool_pushes_back(void **st)
{
    /* A sink that cannot write: Kafka where no broker listens. */
    char bad[256];
    snprintf(bad, sizeof(bad),
             "      - plugin_name: kafka\n"
             "        config: {brokers: \"127.0.0.1:%d\", topic: t, timeout: 300ms}\n",
             tst_free_port());
    put_ok("t-full", bad);
    /* 1 MiB of spool: about 120 batches of 8 KiB go in, then the answers
     * are busy and the sender's window fills up. */
    uint64_t sent = 0;
    while (sent < 1000 && try_send_batch("t-full", sent + 1, 8, 1000, 2000) == 0) {
        sent++;
    }
    assert_true(sent < 1000);
    assert_true(counter("batches_spool_full") > 0);
    fr_data_sender_stats s;
    fr_data_sender_stats_get(tx, &s);
    assert_true(s.busy > 0);
    assert_true(s.acked < sent);
    fr_ctl_result res;
    assert_fr_ok(fr_ctl_call(pub.cli, "spool.stats", NULL, 0, 5000, &res));
    bool accepting = true;
    fr_node_get_bool(res.result, "accepting", &accepting);
    assert_false(accepting);
    fr_ctl_result_free(&res);

    /* The sink is replaced by one that writes: the spool drains in order,
     * takes the rest, and every batch is in the file once. */
    char path[700], good[900];
    snprintf(path, sizeof(path), "%s/full.json", tmp);
    snprintf(good, sizeof(good),
             "      - plugin_name: file\n"
             "        config: {file: %s}\n",
             path);
    put_ok("t-full", good);
    for (int i = 0; i < 20; i++, sent++) {
        send_batch("t-full", sent + 1, 8, 1000);
    }
    assert_true(tst_wait_until(all_acked, NULL, 30000));
    fr_data_sender_stats_get(tx, &s);
    assert_int_equal(s.acked, sent);
    lines_want w = {path, sent * 8};
    assert_true(tst_wait_until(file_has_lines, &w, 20000));
    assert_int_equal(lines_of(path), sent * 8);
}

/* Kafka refuses a message over its limit for good: that batch is kept in
 * rejected/, the others are delivered. */
static pid_t mock_pid;
static char mock_out[700];

static bool mock_ready(void *arg)
{
    char *b = tst_slurp(mock_out);
    bool ok = b[0] != '\0';
    free(b);
    return ok;
}

static size_t files_in(const char *dir)
{
    DIR *d = opendir(dir);
    size_t n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        n += e->d_name[0] != '.';
    }
    if (d != NULL) {
        closedir(d);
    }
    return n;
}

static bool delivered(void *arg)
{
    fr_ctl_result res;
    uint64_t batches = 0, rejected = 0;
    if (fr_ctl_call(pub.cli, "pipeline.list", NULL, 0, 5000, &res) == 0 && res.result->len > 0) {
        const fr_node *sinks = fr_node_get(&res.result->v.arr[0], "sinks");
        fr_node_get_u64(&sinks->v.arr[0], "batches", &batches);
        fr_node_get_u64(&sinks->v.arr[0], "rejected", &rejected);
    }
    fr_ctl_result_free(&res);
    return batches == 9 && rejected == 1;
}

static void test_refused_batch_kept_aside(void **st)
{
    char log[700], bin[600];
    snprintf(mock_out, sizeof(mock_out), "%s/bootstrap", tmp);
    snprintf(log, sizeof(log), "%s/mock.log", tmp);
    char *argv[] = {(char *)tst_bin(bin, sizeof(bin), "tests/sinks/kafka/kafka_mock"), "--out",
                    mock_out, NULL};
    mock_pid = tst_spawn(argv, log);
    assert_true(tst_wait_until(mock_ready, NULL, 10000));
    char *brokers = tst_slurp(mock_out);
    brokers[strcspn(brokers, "\n")] = '\0';
    char yaml[1024];
    snprintf(yaml, sizeof(yaml),
             "      - plugin_name: kafka\n"
             "        config:\n"
             "          brokers: \"%s\"\n"
             "          topic: refused\n"
             "          rdkafka: {message.max.bytes: 20000}\n",
             brokers);
    free(brokers);
    put_ok("t-refuse", yaml);
    for (uint64_t seq = 1; seq <= 10; seq++) {
        send_batch("t-refuse", seq, 2, seq == 4 ? 40000 : 100);
    }
    assert_true(tst_wait_until(all_acked, NULL, 20000));
    assert_true(tst_wait_until(delivered, NULL, 30000));
    char rejected[700];
    snprintf(rejected, sizeof(rejected), "%s/spool/rejected", state);
    assert_int_equal(files_in(rejected), 1);
    tst_stop(mock_pid, SIGTERM, 10000);
}

static bool spool_empty(void *arg)
{
    return spool_u64("bytes") < 64 * 1024;
}

/* A removed task's sink delivers what the spool holds for it, then goes,
 * and its segments with it; a batch for it after that is refused. */
static void test_remove_drains(void **st)
{
    char path[700], yaml[900];
    snprintf(path, sizeof(path), "%s/drain.json", tmp);
    snprintf(yaml, sizeof(yaml), "      - plugin_name: file\n        config: {file: %s}\n", path);
    put_ok("t-drain", yaml);
    for (uint64_t seq = 1; seq <= 100; seq++) {
        send_batch("t-drain", seq, 4, 1000);
    }
    assert_true(tst_wait_until(all_acked, NULL, 20000));
    fr_buf args = FR_BUF_INIT;
    assert_fr_ok(fr_pipeline_remove_pack("t-drain", &args));
    fr_ctl_result res;
    assert_fr_ok(fr_ctl_call(pub.cli, "pipeline.remove", args.data, args.len, 5000, &res));
    fr_ctl_result_free(&res);
    fr_buf_free(&args);
    lines_want w = {path, 400};
    assert_true(tst_wait_until(file_has_lines, &w, 20000));
    assert_int_equal(lines_of(path), 400);
    assert_true(tst_wait_until(spool_empty, NULL, 20000));
    send_batch("t-drain", 101, 1, 10);
    assert_true(tst_wait_until(all_acked, NULL, 20000));
    fr_data_sender_stats s;
    fr_data_sender_stats_get(tx, &s);
    assert_int_equal(s.rejected, 1);
}

/* What was spooled before a restart is known after it: the same batch
 * again is a duplicate; the sink goes on from its cursor. */
static void test_restart_knows_what_it_has(void **st)
{
    char path[700], yaml[900];
    snprintf(path, sizeof(path), "%s/restart.json", tmp);
    snprintf(yaml, sizeof(yaml), "      - plugin_name: file\n        config: {file: %s}\n", path);
    put_ok("t-restart", yaml);
    for (uint64_t seq = 1; seq <= 20; seq++) {
        send_batch("t-restart", seq, 3, 10);
    }
    assert_true(tst_wait_until(all_acked, NULL, 20000));
    assert_int_not_equal(tst_stop(pub.pid, SIGKILL, 5000), -1);
    fr_ctl_client_close(pub.cli);
    pub.cli = NULL;
    publisher_up("1MiB");
    for (uint64_t seq = 15; seq <= 25; seq++) {
        send_batch("t-restart", seq, 3, 10);
    }
    assert_true(tst_wait_until(all_acked, NULL, 20000));
    assert_int_equal(counter("batches_duplicate"), 6);
    lines_want w = {path, 25 * 3};
    assert_true(tst_wait_until(file_has_lines, &w, 20000));
    /* At least once after a kill: lines from the first run may come twice,
     * never fewer. */
    assert_true(lines_of(path) >= 25 * 3);
}

int main(void)
{
    fr_log_init("publisher_test", FR_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_checks_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_spool_pushes_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_batch_kept_aside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_knows_what_it_has, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("publisher", tests, NULL, NULL);
    nng_fini();
    return failed;
}
