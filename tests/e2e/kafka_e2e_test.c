/* Collector -> processor -> publisher -> Kafka (librdkafka's mock cluster
 * in its own process, a real Kafka-protocol broker): 25 s of the synthetic
 * counters through a tag processor, while every broker is down for 8 s and
 * the publisher is killed with SIGKILL and started again once. Afterwards
 * the topic holds every metric the collector emitted exactly once: each
 * series 1..n, n being the task's ticks. Volumes stay far below the mock's
 * 5 MiB per partition. */
#include "stack.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <nng/nng.h>

#include "fresco/ctl.h"
#include "fresco/log.h"
#include "fresco/mpdoc.h"

#define SERIES 10
#define TOPIC  "e2e-metrics"

static char *tmp;
static pid_t mock_pid;
static char mock_out[700], mock_log[700], brokers[256];

static bool mock_ready(void *arg)
{
    char *b = tst_slurp(mock_out);
    snprintf(brokers, sizeof(brokers), "%s", b);
    free(b);
    brokers[strcspn(brokers, "\n")] = '\0';
    return brokers[0] != '\0';
}

/* The mock confirms each signal with a line on stderr. */
typedef struct said {
    const char *line;
    int times;
} said;

static bool mock_said(void *arg)
{
    said *s = arg;
    char *log = tst_slurp(mock_log);
    int n = 0;
    for (const char *p = log; (p = strstr(p, s->line)) != NULL; p++) {
        n++;
    }
    free(log);
    return n >= s->times;
}

static int group_setup(void **state)
{
    tmp = tst_tmpdir("fresco-e2e-kafka");
    snprintf(mock_out, sizeof(mock_out), "%s/bootstrap", tmp);
    snprintf(mock_log, sizeof(mock_log), "%s/mock.log", tmp);
    char bin[4096];
    tst_bin(bin, sizeof(bin), "tests/sinks/kafka/kafka_mock");
    char *argv[] = {bin, "--brokers", "1", "--topic", TOPIC, "--out", mock_out, NULL};
    mock_pid = tst_spawn(argv, mock_log);
    return mock_pid > 0 && tst_wait_until(mock_ready, NULL, 10000) ? 0 : -1;
}

static int group_teardown(void **state)
{
    tst_stop(mock_pid, SIGTERM, 10000);
    tst_rmtree(tmp);
    free(tmp);
    return 0;
}

/* ---- reading the topic ---- */

static rd_kafka_t *consumer(void)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *kv[][2] = {{"bootstrap.servers", brokers},
                           {"enable.partition.eof", "true"},
                           {"session.timeout.ms", "6000"},
                           {"max.poll.interval.ms", "7000"},
                           {"log_level", "3"}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
        assert_int_equal(rd_kafka_conf_set(conf, kv[i][0], kv[i][1], errstr, sizeof(errstr)),
                         RD_KAFKA_CONF_OK);
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    return rk;
}

static int partitions(rd_kafka_t *rk, rd_kafka_topic_t *rkt)
{
    const struct rd_kafka_metadata *md = NULL;
    assert_int_equal(rd_kafka_metadata(rk, 0, rkt, &md, 5000), 0);
    int n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
}

/* Messages in the topic, from the partitions' watermarks. */
static int64_t topic_count(void)
{
    rd_kafka_t *rk = consumer();
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, TOPIC, NULL);
    int64_t total = 0;
    int n = partitions(rk, rkt);
    for (int p = 0; p < n; p++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(rk, TOPIC, p, &lo, &hi, 5000) == 0) {
            total += hi - lo;
        }
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return total;
}

static bool topic_reaches(void *arg)
{
    return topic_count() >= *(int64_t *)arg;
}

/* seen[series][value]: how often each counter value of each series came. */
static void read_counters(uint8_t seen[SERIES][4096], int64_t *tagged)
{
    rd_kafka_t *rk = consumer();
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, TOPIC, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    int n = partitions(rk, rkt), pending = n;
    for (int p = 0; p < n; p++) {
        assert_int_equal(rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_BEGINNING, q), 0);
    }
    int64_t end = tst_mono_ms() + 60000;
    while (pending > 0 && tst_mono_ms() < end) {
        rd_kafka_message_t *m = rd_kafka_consume_queue(q, 100);
        if (m == NULL) {
            continue;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            pending--;
        } else if (m->err == 0) {
            fr_doc doc;
            fr_error err;
            assert_fr_ok(fr_doc_decode(m->payload, m->len, &doc, &err));
            const char *ns = NULL;
            uint64_t v = 0;
            assert_fr_ok(fr_node_get_str(doc.root, "namespace", &ns));
            assert_fr_ok(fr_node_get_u64(doc.root, "data", &v));
            int s = -1;
            assert_int_equal(sscanf(ns, "/fresco/synthetic/s%d/counter", &s), 1);
            assert_true(s >= 0 && s < SERIES && v < 4096);
            if (seen[s][v] < 255) {
                seen[s][v]++;
            }
            const char *run = NULL;
            if (fr_node_get_str(fr_node_get(doc.root, "tags"), "run", &run) == 0 &&
                strcmp(run, "e2e") == 0) {
                (*tagged)++;
            }
            fr_doc_free(&doc);
        }
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(pending, 0);
    for (int p = 0; p < n; p++) {
        rd_kafka_consume_stop(rkt, p);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
}

static void test_outage_and_kill(void **state)
{
    stack s;
    stack_start(&s, tmp, 1, 1);
    char text[2048];
    snprintf(text, sizeof(text),
             "version: 1\n"
             "schedule: {type: simple, interval: 50ms}\n"
             "workflow:\n"
             "  collect:\n"
             "    metrics: {/fresco/synthetic/*/counter: {}}\n"
             "    config: {/fresco/synthetic: {series: %d}}\n"
             "    process:\n"
             "      - plugin_name: tag\n"
             "        config: {tags: \"run:e2e\"}\n"
             "        publish:\n"
             "          - plugin_name: kafka\n"
             "            config: {brokers: \"%s\", topic: %s, format: msgpack, timeout: 2s}\n",
             SERIES, brokers, TOPIC);
    const char *id = stack_create(&s, text);
    char task[64];
    snprintf(task, sizeof(task), "%s", id);
    int64_t t0 = tst_mono_ms();
    int64_t want = SERIES * 20;
    assert_true(tst_wait_until(topic_reaches, &want, 20000));

    /* Every broker goes away for 8 s. */
    kill(mock_pid, SIGUSR1);
    said down = {"down", 1};
    assert_true(tst_wait_until(mock_said, &down, 5000));
    scenario_pause(8000);
    kill(mock_pid, SIGUSR2);
    said up = {" up", 1};
    assert_true(tst_wait_until(mock_said, &up, 5000));
    want = topic_count() + SERIES * 20;
    assert_true(tst_wait_until(topic_reaches, &want, 30000));

    /* The publisher is killed and started again where it was. */
    scenario_pause(1000);
    stack_publisher_kill(&s, 0);
    scenario_pause(500);
    stack_publisher_start(&s, 0);
    want = topic_count() + SERIES * 20;
    assert_true(tst_wait_until(topic_reaches, &want, 30000));

    int64_t left = 25000 - (tst_mono_ms() - t0);
    if (left > 0) {
        scenario_pause((int)left);
    }
    stack_task_stop(&s, task);
    uint64_t n = stack_task_hits(&s, task);
    assert_true(n > 100 && n < 4096);
    assert_int_equal(stack_counter(&s.col, "batches_not_taken"), 0);
    want = (int64_t)(n * SERIES);
    assert_true(tst_wait_until(topic_reaches, &want, 60000));

    static uint8_t seen[SERIES][4096];
    memset(seen, 0, sizeof(seen));
    int64_t tagged = 0;
    read_counters(seen, &tagged);
    for (int sr = 0; sr < SERIES; sr++) {
        assert_int_equal(seen[sr][0], 0);
        for (uint64_t v = 1; v <= n; v++) {
            if (seen[sr][v] != 1) {
                fail_msg("series s%d value %llu is in the topic %d times (n = %llu)", sr,
                         (unsigned long long)v, seen[sr][v], (unsigned long long)n);
            }
        }
        for (uint64_t v = n + 1; v < 4096; v++) {
            assert_int_equal(seen[sr][v], 0);
        }
    }
    assert_int_equal(tagged, (int64_t)(n * SERIES));
    assert_int_equal(topic_count(), (int64_t)(n * SERIES));
    fprintf(stderr, "e2e kafka: %llu ticks x %d series, %.1f s\n", (unsigned long long)n, SERIES,
            (double)(tst_mono_ms() - t0) / 1000.0);
    stack_stop(&s);
}

int main(void)
{
    fr_log_init("kafka_e2e_test", FR_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outage_and_kill),
    };
    int failed = cmocka_run_group_tests_name("kafka_e2e", tests, group_setup, group_teardown);
    nng_fini();
    return failed;
}
