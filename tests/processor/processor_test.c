/* fresco-processor as a daemon, between a test sender (standing in for the
 * collector) and a stand-in publisher run in this process (a control
 * socket taking pipeline.put/remove and a data receiver that can hold its
 * answers): tasks checked and passed on, batches of unknown tasks held
 * back, acknowledgements only once the publisher has the outputs, outputs
 * per route, duplicates not run twice, removed tasks refused, tasks kept
 * across a restart. */
#include "testsupport.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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

/* ---- the stand-in publisher ---- */

#define MAX_SEEN 4096

typedef struct fake_pub {
    fr_ctl_server *ctl;
    fr_data_receiver *rx;
    char control[64], data[64];
    pthread_mutex_t mu;
    int puts, removes;
    bool refuse_put; /* answer pipeline.put with a refusal */
    bool hold;       /* answer batches busy */
    int busy_answers;
    /* outputs taken: route and seq, and how often each (stream, seq) came */
    struct {
        char route[64];
        uint64_t seq;
        uint32_t nmetrics;
        int times;
    } seen[MAX_SEEN];
    int nseen;
} fake_pub;

static fake_pub fp;

static int fake_put(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    pthread_mutex_lock(&fp.mu);
    fp.puts++;
    bool refuse = fp.refuse_put;
    pthread_mutex_unlock(&fp.mu);
    if (refuse) {
        return fr_ctl_reply_error(r, FR_EUNKNOWN, "bad_manifest",
                                  "workflow.collect.process[0].publish[0].config.colour",
                                  "file: key 'colour': unknown key");
    }
    msgpack_pack_nil(fr_ctl_reply_packer(r));
    return 0;
}

static int fake_remove(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    pthread_mutex_lock(&fp.mu);
    fp.removes++;
    pthread_mutex_unlock(&fp.mu);
    msgpack_pack_nil(fr_ctl_reply_packer(r));
    return 0;
}

static int fake_batch(void *ctx, const void *data, size_t len, fr_error *err)
{
    fr_batch *b = NULL;
    int rv = fr_batch_decode(data, len, &b, err);
    if (rv != 0) {
        return rv;
    }
    pthread_mutex_lock(&fp.mu);
    if (fp.hold) {
        fp.busy_answers++;
        pthread_mutex_unlock(&fp.mu);
        fr_batch_destroy(b);
        return fr_error_set(err, FR_EBUSY, NULL, "held by the test");
    }
    int i = 0;
    while (i < fp.nseen && !(fp.seen[i].seq == b->seq && strcmp(fp.seen[i].route, b->route) == 0)) {
        i++;
    }
    if (i == fp.nseen && fp.nseen < MAX_SEEN) {
        snprintf(fp.seen[i].route, sizeof(fp.seen[i].route), "%s", b->route);
        fp.seen[i].seq = b->seq;
        fp.seen[i].nmetrics = b->nmetrics;
        fp.nseen++;
    }
    if (i < MAX_SEEN) {
        fp.seen[i].times++;
    }
    pthread_mutex_unlock(&fp.mu);
    fr_batch_destroy(b);
    return 0;
}

static void fake_start(void)
{
    memset(&fp, 0, sizeof(fp));
    pthread_mutex_init(&fp.mu, NULL);
    snprintf(fp.control, sizeof(fp.control), "tcp://127.0.0.1:%d", tst_free_port());
    snprintf(fp.data, sizeof(fp.data), "tcp://127.0.0.1:%d", tst_free_port());
    static const fr_ctl_op ops[] = {
        {"pipeline.put", fake_put, NULL, ""},
        {"pipeline.remove", fake_remove, NULL, ""},
    };
    assert_fr_ok(fr_ctl_server_start(&fp.ctl, fp.control, NULL, ops, 2, 2));
    assert_fr_ok(fr_data_receiver_start(&fp.rx, fp.data, true, NULL, 8, fake_batch, NULL));
}

static void fake_stop(void)
{
    fr_data_receiver_stop(fp.rx);
    fr_ctl_server_destroy(fp.ctl);
    pthread_mutex_destroy(&fp.mu);
}

/* How often the publisher got (route, seq); -1 when never. */
static int fake_times(const char *route, uint64_t seq)
{
    pthread_mutex_lock(&fp.mu);
    int t = -1;
    for (int i = 0; i < fp.nseen; i++) {
        if (fp.seen[i].seq == seq && strcmp(fp.seen[i].route, route) == 0) {
            t = fp.seen[i].times;
        }
    }
    pthread_mutex_unlock(&fp.mu);
    return t;
}

/* ---- the processor under test ---- */

static char *tmp;
static tst_service proc;
static char proc_data[64];
static fr_data_sender *tx;

static void processor_up(void)
{
    char a1[128], a2[128], a3[128], a4[700];
    snprintf(a1, sizeof(a1), "--data_in=%s", proc_data);
    snprintf(a2, sizeof(a2), "--publishers=%s", fp.data);
    snprintf(a3, sizeof(a3), "--publisher_controls=%s", fp.control);
    snprintf(a4, sizeof(a4), "--state_dir=%s/state", tmp);
    const char *extra[] = {a1, a2, a3, a4, "--resend=300ms", NULL};
    tst_service_start(&proc, "processor", tmp, extra);
}

static int setup(void **state)
{
    tmp = tst_tmpdir("fresco-processor-test");
    fake_start();
    snprintf(proc_data, sizeof(proc_data), "tcp://127.0.0.1:%d", tst_free_port());
    processor_up();
    const char *urls[] = {proc_data};
    fr_data_sender_opts o = {.window = 8, .resend_ms = 1000, .busy_retry_ms = 50};
    assert_fr_ok(fr_data_sender_open(&tx, urls, 1, NULL, &o));
    return 0;
}

static int teardown(void **state)
{
    fr_data_sender_close(tx);
    tst_service_stop(&proc, 5000);
    fake_stop();
    tst_rmtree(tmp);
    free(tmp);
    return 0;
}

#define MANIFEST_HEAD                                                                              \
    "version: 1\n"                                                                                 \
    "schedule: {type: simple, interval: 1s}\n"                                                     \
    "workflow:\n"                                                                                  \
    "  collect:\n"                                                                                 \
    "    metrics: {/a/b: {}}\n"

static const char tree[] = MANIFEST_HEAD "    process:\n"
                                         "      - plugin_name: passthrough\n"
                                         "        publish:\n"
                                         "          - plugin_name: file\n"
                                         "        process:\n"
                                         "          - plugin_name: passthrough\n"
                                         "            publish:\n"
                                         "              - plugin_name: file\n"
                                         "      - plugin_name: passthrough\n";

/* pipeline.put of a manifest's text; returns the call's code, res filled. */
static int put(const char *task, const char *text, fr_ctl_result *res)
{
    fr_manifest *m = NULL;
    fr_error err;
    if (fr_manifest_parse(text, strlen(text), "t.yaml", &m, &err) != 0) {
        fail_msg("manifest: %s: %s", err.where, err.message);
    }
    fr_buf args = FR_BUF_INIT;
    assert_fr_ok(fr_pipeline_put_pack(task, "test-task", m, &args));
    int rv = fr_ctl_call(proc.cli, "pipeline.put", args.data, args.len, 5000, res);
    fr_buf_free(&args);
    fr_manifest_free(m);
    return rv;
}

static void put_ok(const char *task, const char *text)
{
    fr_ctl_result res;
    int rv = put(task, text, &res);
    if (rv != 0) {
        fail_msg("pipeline.put: %s: %s at %s", fr_strerror(rv), res.error_message, res.error_where);
    }
    fr_ctl_result_free(&res);
}

static void send_batch(const char *task, uint64_t seq, uint32_t n)
{
    fr_batch *b = fr_batch_new(task, "node-1", seq);
    assert_non_null(b);
    for (uint32_t i = 0; i < n; i++) {
        char ns[32];
        snprintf(ns, sizeof(ns), "/a/b/%u", i);
        assert_non_null(fr_batch_add(b, ns, 1000 + (int64_t)i, fr_val_u64(i), ""));
    }
    fr_buf wire = FR_BUF_INIT;
    assert_fr_ok(fr_batch_encode(b, &wire));
    assert_fr_ok(fr_data_send(tx, wire.data, wire.len, 5000));
    fr_buf_free(&wire);
    fr_batch_destroy(b);
}

static uint64_t counter(const char *name)
{
    fr_ctl_result res;
    assert_fr_ok(fr_ctl_call(proc.cli, "stats", NULL, 0, 5000, &res));
    uint64_t v = 0;
    fr_node_get_u64(fr_node_get(res.result, "counters"), name, &v);
    fr_ctl_result_free(&res);
    return v;
}

static bool all_acked(void *arg)
{
    fr_data_sender_stats st;
    fr_data_sender_stats_get(tx, &st);
    return st.inflight == 0;
}

static bool unknown_task_answered(void *arg)
{
    return counter("batches_unknown_task") >= 2;
}

/* The stand-in publisher has said busy at least *arg times. */
static bool publisher_held(void *arg)
{
    pthread_mutex_lock(&fp.mu);
    int busy = fp.busy_answers;
    pthread_mutex_unlock(&fp.mu);
    return busy >= *(int *)arg;
}

typedef struct want {
    const char *route;
    uint64_t seq;
} want;

static bool output_arrived(void *arg)
{
    want *w = arg;
    return fake_times(w->route, w->seq) >= 1;
}

/* ---- tests ---- */

static void test_put_checks_nodes(void **state)
{
    fr_ctl_result res;
    assert_int_equal(put("t-bad",
                         MANIFEST_HEAD "    process:\n"
                                       "      - plugin_name: nosuch\n",
                         &res),
                     FR_EREMOTE);
    assert_string_equal(res.error_code, "bad_manifest");
    assert_string_equal(res.error_where, "workflow.collect.process[0]");
    assert_non_null(strstr(res.error_message, "no processor plugin 'nosuch'"));
    assert_non_null(strstr(res.error_message, "passthrough"));
    fr_ctl_result_free(&res);

    assert_int_equal(put("t-bad",
                         MANIFEST_HEAD "    process:\n"
                                       "      - plugin_name: passthrough\n"
                                       "        config: {colour: red}\n",
                         &res),
                     FR_EREMOTE);
    assert_string_equal(res.error_where, "workflow.collect.process[0].config.colour");
    assert_non_null(strstr(res.error_message, "colour"));
    fr_ctl_result_free(&res);

    /* A publisher's refusal comes back as it said it. */
    fp.refuse_put = true;
    assert_int_equal(put("t-bad", tree, &res), FR_EREMOTE);
    assert_string_equal(res.error_where, "workflow.collect.process[0].publish[0].config.colour");
    fr_ctl_result_free(&res);
    fp.refuse_put = false;

    /* A hostile task id is refused before it names any file. */
    assert_int_equal(put("../etc", tree, &res), FR_EREMOTE);
    assert_string_equal(res.error_where, "task");
    fr_ctl_result_free(&res);

    /* Nothing was kept: a batch of the task is held back. */
    assert_fr_ok(fr_ctl_call(proc.cli, "pipeline.list", NULL, 0, 5000, &res));
    assert_int_equal(res.result->len, 0);
    fr_ctl_result_free(&res);
}

static void test_outputs_per_route_after_put(void **state)
{
    /* Before the put: held back as busy, not lost. */
    send_batch("t1", 10, 3);
    assert_true(tst_wait_until(unknown_task_answered, NULL, 10000));
    fr_data_sender_stats st;
    fr_data_sender_stats_get(tx, &st);
    assert_int_equal(st.acked, 0);
    assert_int_equal(st.inflight, 1);

    put_ok("t1", tree);
    assert_int_equal(fp.puts, 1); /* passed on to the publisher */
    assert_true(tst_wait_until(all_acked, NULL, 10000));
    assert_int_equal(fake_times("process[0]", 10), 1);
    assert_int_equal(fake_times("process[0].process[0]", 10), 1);
    /* process[1] has no publish children: nothing sent for it */
    assert_int_equal(fake_times("process[1]", 10), -1);

    /* The same put again changes nothing but is passed on again. */
    fr_ctl_result res;
    assert_fr_ok(put("t1", tree, &res));
    bool changed = true;
    fr_node_get_bool(res.result, "changed", &changed);
    assert_false(changed);
    fr_ctl_result_free(&res);
    assert_int_equal(fp.puts, 2);

    /* Counts per node. */
    assert_fr_ok(fr_ctl_call(proc.cli, "pipeline.list", NULL, 0, 5000, &res));
    const fr_node *t = &res.result->v.arr[0];
    const fr_node *nodes = fr_node_get(t, "nodes");
    assert_int_equal(nodes->len, 3);
    uint64_t in = 0;
    fr_node_get_u64(&nodes->v.arr[0], "metrics_in", &in);
    assert_int_equal(in, 3);
    fr_ctl_result_free(&res);
}

static void test_ack_waits_for_the_publisher(void **state)
{
    put_ok("t2", tree);
    pthread_mutex_lock(&fp.mu);
    fp.hold = true;
    pthread_mutex_unlock(&fp.mu);
    send_batch("t2", 5, 2);
    /* The publisher keeps saying busy: the batch stays unacknowledged. */
    int times = 4;
    assert_true(tst_wait_until(publisher_held, &times, 10000));
    fr_data_sender_stats st;
    fr_data_sender_stats_get(tx, &st);
    assert_int_equal(st.acked, 0);
    assert_int_equal(st.inflight, 1);
    pthread_mutex_lock(&fp.mu);
    fp.hold = false;
    pthread_mutex_unlock(&fp.mu);
    assert_true(tst_wait_until(all_acked, NULL, 10000));
    fr_data_sender_stats_get(tx, &st);
    assert_int_equal(st.acked, 1);
    assert_int_equal(fake_times("process[0]", 5), 1);
}

static void test_duplicates_run_once(void **state)
{
    put_ok("t3", tree);
    send_batch("t3", 7, 4);
    assert_true(tst_wait_until(all_acked, NULL, 10000));
    send_batch("t3", 7, 4);
    assert_true(tst_wait_until(all_acked, NULL, 10000));
    assert_int_equal(counter("batches_duplicate"), 1);
    assert_int_equal(counter("batches_in"), 1);
    assert_int_equal(fake_times("process[0]", 7), 1);
}

static void test_removed_task_refused(void **state)
{
    put_ok("t4", tree);
    fr_buf args = FR_BUF_INIT;
    assert_fr_ok(fr_pipeline_remove_pack("t4", &args));
    fr_ctl_result res;
    assert_fr_ok(fr_ctl_call(proc.cli, "pipeline.remove", args.data, args.len, 5000, &res));
    fr_ctl_result_free(&res);
    assert_int_equal(fp.removes, 1);
    assert_int_equal(fr_ctl_call(proc.cli, "pipeline.remove", args.data, args.len, 5000, &res),
                     FR_EREMOTE);
    assert_string_equal(res.error_code, "not_found");
    fr_ctl_result_free(&res);
    fr_buf_free(&args);
    send_batch("t4", 1, 1);
    assert_true(tst_wait_until(all_acked, NULL, 10000));
    fr_data_sender_stats st;
    fr_data_sender_stats_get(tx, &st);
    assert_int_equal(st.rejected, 1);
}

static void test_tasks_survive_a_restart(void **state)
{
    put_ok("t5", tree);
    tst_service_stop(&proc, 5000);
    processor_up();
    send_batch("t5", 3, 2);
    assert_true(tst_wait_until(all_acked, NULL, 10000));
    want w = {"process[0].process[0]", 3};
    assert_true(tst_wait_until(output_arrived, &w, 5000));
    assert_int_equal(fp.puts, 1);
}

/* The processor dies with a batch held (its outputs unacknowledged): the
 * sender resends it to the processor started again, and the outputs
 * arrive. */
static void test_batch_survives_processor_death(void **state)
{
    put_ok("t6", tree);
    pthread_mutex_lock(&fp.mu);
    fp.hold = true;
    pthread_mutex_unlock(&fp.mu);
    send_batch("t6", 9, 2);
    int times = 1;
    assert_true(tst_wait_until(publisher_held, &times, 10000));
    assert_int_not_equal(tst_stop(proc.pid, SIGKILL, 5000), -1);
    fr_ctl_client_close(proc.cli);
    proc.cli = NULL;
    pthread_mutex_lock(&fp.mu);
    fp.hold = false;
    pthread_mutex_unlock(&fp.mu);
    processor_up();
    assert_true(tst_wait_until(all_acked, NULL, 15000));
    assert_int_equal(fake_times("process[0]", 9), 1);
    assert_int_equal(fake_times("process[0].process[0]", 9), 1);
}

int main(void)
{
    fr_log_init("processor_test", FR_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_checks_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outputs_per_route_after_put, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_waits_for_the_publisher, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_run_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removed_task_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tasks_survive_a_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_survives_processor_death, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("processor", tests, NULL, NULL);
    nng_fini();
    return failed;
}
