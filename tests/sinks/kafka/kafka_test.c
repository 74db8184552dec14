/* The kafka sink against a Kafka-protocol broker: librdkafka's mock
 * cluster in a process of its own (kafka_mock), which the suite takes down
 * (SIGUSR1) and brings back (SIGUSR2). Every test writes to a topic of its
 * own and reads it back with a consumer of its own, checking every
 * message: values (every value type, JSON and msgpack), keys, the topic
 * template, headers, batch tags merged; then brokers down, a full queue,
 * batches written twice, a restart (a new instance with the same id, also
 * after a crash that left half a batch in the topic), a message too large,
 * and bad config. Volumes stay far below the mock's 5 MiB per partition. */
#include "testsupport.h"

#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <msgpack.h>

#include "fresco/err.h"
#include "fresco/log.h"
#include "fresco/manifest.h"
#include "fresco/metric.h"
#include "fresco/pipeline.h"

extern const fr_sink_plugin fr_sink_kafka;

#define TS0 INT64_C(1496318400123456789) /* 2017-06-01T12:00:00.123456789Z */

/* ---- the broker ---- */

static struct {
    char *dir;
    char log[4096];
    char out[4096];
    char brokers[512];
    pid_t pid;
    bool down;
} mock;

static bool mock_ready(void *arg)
{
    (void)arg;
    char *s = tst_slurp(mock.out);
    bool ok = s[0] != '\0' && strchr(s, '\n') != NULL;
    if (ok) {
        *strchr(s, '\n') = '\0';
        snprintf(mock.brokers, sizeof(mock.brokers), "%s", s);
    }
    free(s);
    return ok;
}

static size_t count_of(const char *text, const char *what)
{
    size_t n = 0;
    for (const char *p = strstr(text, what); p != NULL; p = strstr(p + 1, what)) {
        n++;
    }
    return n;
}

typedef struct mock_wait {
    const char *line;
    size_t want;
} mock_wait;

static bool mock_said(void *arg)
{
    mock_wait *w = arg;
    char *s = tst_slurp(mock.log);
    bool ok = count_of(s, w->line) >= w->want;
    free(s);
    return ok;
}

/* Takes the brokers down (SIGUSR1) or up (SIGUSR2) and waits until the
 * mock says it did. */
static void mock_brokers(bool up)
{
    const char *line = up ? "broker(s) up" : "broker(s) down";
    char *s = tst_slurp(mock.log);
    mock_wait w = {line, count_of(s, line) + 1};
    free(s);
    assert_int_equal(kill(mock.pid, up ? SIGUSR2 : SIGUSR1), 0);
    assert_true(tst_wait_until(mock_said, &w, 5000));
    mock.down = !up;
}

/* After a test that takes the brokers down, even one that failed. */
static int brokers_back_up(void **state)
{
    (void)state;
    if (mock.down) {
        mock_brokers(true);
    }
    return 0;
}

static int suite_setup(void **state)
{
    (void)state;
    fr_log_set_level(FR_LOG_WARN);
    mock.dir = tst_tmpdir("kafka_test");
    assert_non_null(mock.dir);
    char bin[4096];
    snprintf(mock.log, sizeof(mock.log), "%s/mock.log", mock.dir);
    snprintf(mock.out, sizeof(mock.out), "%s/bootstrap", mock.dir);
    tst_bin(bin, sizeof(bin), "tests/sinks/kafka/kafka_mock");
    char *argv[] = {bin, "--brokers", "1", "--out", mock.out, NULL};
    mock.pid = tst_spawn(argv, mock.log);
    assert_true(mock.pid > 0);
    assert_true(tst_wait_until(mock_ready, NULL, 10000));
    return 0;
}

static int suite_teardown(void **state)
{
    (void)state;
    int status = tst_stop(mock.pid, SIGTERM, 10000);
    tst_rmtree(mock.dir);
    free(mock.dir);
    assert_int_equal(status, 0);
    return 0;
}

/* ---- reading a topic back ---- */

typedef struct got_msg {
    int32_t partition;
    char *key; /* NULL when none */
    size_t key_len;
    char *value;
    size_t value_len;
    char stream[256], sink[256];
    uint64_t seq, index, count;
} got_msg;

typedef struct got {
    got_msg *v;
    size_t n, cap;
} got;

static void got_free(got *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->v[i].key);
        free(g->v[i].value);
    }
    free(g->v);
    g->v = NULL;
    g->n = g->cap = 0;
}

static void header_text(rd_kafka_headers_t *h, const char *name, char *buf, size_t cap)
{
    const void *v = NULL;
    size_t n = 0;
    buf[0] = '\0';
    if (h != NULL && rd_kafka_header_get_last(h, name, &v, &n) == 0 && v != NULL && n < cap) {
        memcpy(buf, v, n);
        buf[n] = '\0';
    }
}

static uint64_t header_u64(rd_kafka_headers_t *h, const char *name)
{
    char buf[32];
    header_text(h, name, buf, sizeof(buf));
    assert_true(buf[0] >= '0' && buf[0] <= '9');
    return strtoull(buf, NULL, 10);
}

/* Every message of topic, from the start of each partition to its end. */
static void read_topic(const char *topic, got *g)
{
    memset(g, 0, sizeof(*g));
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(
        rd_kafka_conf_set(conf, "bootstrap.servers", mock.brokers, errstr, sizeof(errstr)),
        RD_KAFKA_CONF_OK);
    assert_int_equal(
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr)),
        RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "session.timeout.ms", "6000", errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(
        rd_kafka_conf_set(conf, "max.poll.interval.ms", "7000", errstr, sizeof(errstr)),
        RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    const struct rd_kafka_metadata *md = NULL;
    assert_int_equal(rd_kafka_metadata(rk, 0, rkt, &md, 5000), 0);
    assert_int_equal(md->topic_cnt, 1);
    assert_int_equal(md->topics[0].err, 0);
    int nparts = md->topics[0].partition_cnt;
    int pending = 0;
    for (int p = 0; p < nparts; p++) {
        int64_t lo, hi;
        assert_int_equal(rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 5000), 0);
        assert_int_equal(rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_BEGINNING, q), 0);
        pending++;
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
            if (g->n == g->cap) {
                g->cap = g->cap ? g->cap * 2 : 64;
                g->v = realloc(g->v, g->cap * sizeof(*g->v));
                assert_non_null(g->v);
            }
            got_msg *o = &g->v[g->n++];
            memset(o, 0, sizeof(*o));
            o->partition = m->partition;
            if (m->key != NULL) {
                o->key = calloc(1, m->key_len + 1);
                memcpy(o->key, m->key, m->key_len);
                o->key_len = m->key_len;
            }
            o->value = calloc(1, m->len + 1);
            memcpy(o->value, m->payload, m->len);
            o->value_len = m->len;
            rd_kafka_headers_t *h = NULL;
            assert_int_equal(rd_kafka_message_headers(m, &h), 0);
            header_text(h, "fresco-stream", o->stream, sizeof(o->stream));
            header_text(h, "fresco-sink", o->sink, sizeof(o->sink));
            o->seq = header_u64(h, "fresco-seq");
            o->index = header_u64(h, "fresco-index");
            o->count = header_u64(h, "fresco-count");
        }
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(pending, 0);
    for (int p = 0; p < nparts; p++) {
        rd_kafka_consume_stop(rkt, p);
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
}

/* How many messages of g carry (sink, stream, seq, index). */
static size_t got_count(const got *g, const char *sink, const char *stream, uint64_t seq,
                        uint64_t index)
{
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++) {
        const got_msg *m = &g->v[i];
        n += strcmp(m->sink, sink) == 0 && strcmp(m->stream, stream) == 0 && m->seq == seq &&
             m->index == index;
    }
    return n;
}

/* Asserts g holds each metric of batches exactly once, written by sink,
 * and nothing else. */
static void assert_once(const got *g, const char *sink, fr_batch *const *batches, size_t n)
{
    size_t total = 0;
    for (size_t b = 0; b < n; b++) {
        char stream[256];
        fr_batch_stream(batches[b], stream, sizeof(stream));
        for (uint32_t i = 0; i < batches[b]->nmetrics; i++) {
            size_t c = got_count(g, sink, stream, batches[b]->seq, i);
            if (c != 1) {
                fail_msg("batch %" PRIu64 " metric %u is in the topic %zu times", batches[b]->seq,
                         i, c);
            }
        }
        total += batches[b]->nmetrics;
    }
    size_t mine = 0;
    for (size_t i = 0; i < g->n; i++) {
        mine += strcmp(g->v[i].sink, sink) == 0;
    }
    assert_int_equal(mine, total);
}

/* ---- sinks ---- */

typedef struct sink {
    void *config;
    void *state;
    fr_sink_info info;
    char id[128], task[64], task_name[64];
} sink;

/* Loads config (a YAML flow map's insides, "brokers" prepended) as a
 * publish node's config. Returns 0 or the loader's code with err filled. */
static int sink_config(const char *config, void **out, fr_error *err)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "version: 1\nschedule: {type: simple, interval: 1s}\nworkflow:\n  collect:\n"
             "    metrics: {/t/a: {}}\n    publish:\n      - plugin_name: kafka\n"
             "        config: {brokers: \"%s\", %s}\n",
             mock.brokers, config);
    fr_manifest *m = NULL;
    int rv = fr_manifest_parse(text, strlen(text), "task.yaml", &m, err);
    if (rv != 0) {
        fail_msg("manifest: %s: %s", err->where, err->message);
    }
    rv = fr_node_config_load(&fr_sink_kafka.config, "kafka", &m->collect.publish[0].config,
                             m->collect.publish[0].path, out, err);
    fr_manifest_free(m);
    return rv;
}

static int sink_try_open(sink *s, const char *task, const char *task_name, const char *config,
                         fr_error *err)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->task, sizeof(s->task), "%s", task);
    snprintf(s->task_name, sizeof(s->task_name), "%s", task_name);
    snprintf(s->id, sizeof(s->id), "%s/publish[0]", task);
    s->info = (fr_sink_info){s->id, s->task, s->task_name, "publish[0]", NULL};
    int rv = sink_config(config, &s->config, err);
    if (rv == 0) {
        rv = fr_sink_kafka.init(&s->state, s->config, &s->info, err);
    }
    if (rv != 0) {
        fr_node_config_free(&fr_sink_kafka.config, s->config);
        s->config = NULL;
    }
    return rv;
}

static void sink_open(sink *s, const char *task, const char *config)
{
    fr_error err;
    int rv = sink_try_open(s, task, task, config, &err);
    if (rv != 0) {
        fail_msg("open: %d %s: %s", rv, err.where, err.message);
    }
}

static void sink_close(sink *s)
{
    fr_sink_kafka.destroy(s->state);
    fr_node_config_free(&fr_sink_kafka.config, s->config);
    s->state = NULL;
    s->config = NULL;
}

static int sink_write(sink *s, fr_batch *const *b, size_t n, fr_error *err)
{
    return fr_sink_kafka.write(s->state, b, n, err);
}

static void assert_write_ok(sink *s, fr_batch *const *b, size_t n)
{
    fr_error err;
    int rv = sink_write(s, b, n, &err);
    if (rv != 0) {
        fail_msg("write: %d (%s): %s", rv, fr_strerror(rv), err.message);
    }
}

/* Writes until the sink says stored, as the engine would after retryable
 * codes; fails past deadline_ms. */
static void write_until_ok(sink *s, fr_batch *const *b, size_t n, int deadline_ms)
{
    int64_t end = tst_mono_ms() + deadline_ms;
    fr_error err;
    int rv;
    while ((rv = sink_write(s, b, n, &err)) != 0) {
        if (!fr_sink_retryable(rv) || tst_mono_ms() > end) {
            fail_msg("write: %d (%s): %s", rv, fr_strerror(rv), err.message);
        }
    }
}

/* One of the sink's figures (its stats map). */
static uint64_t sink_stat(sink *s, const char *name)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    fr_sink_kafka.stats(s->state, &pk);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
    uint64_t v = UINT64_MAX;
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        const msgpack_object_kv *kv = &u.data.via.map.ptr[i];
        if (kv->key.via.str.size == strlen(name) &&
            memcmp(kv->key.via.str.ptr, name, strlen(name)) == 0) {
            v = kv->val.via.u64;
        }
    }
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    if (v == UINT64_MAX) {
        fail_msg("no figure %s", name);
    }
    return v;
}

/* A batch of n int64 metrics /t/m<i> valued i. */
static fr_batch *int_batch(const char *source, const char *task, uint64_t seq, uint32_t n)
{
    fr_batch *b = fr_batch_new(task, source, seq);
    assert_non_null(b);
    for (uint32_t i = 0; i < n; i++) {
        char ns[32];
        snprintf(ns, sizeof(ns), "/t/m%u", i);
        assert_non_null(fr_batch_add(b, ns, TS0 + i, fr_val_i64(i), "B"));
    }
    return b;
}

static void batches_free(fr_batch **b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fr_batch_destroy(b[i]);
    }
}

/* ---- values, keys, headers, topic ---- */

/* Every value type, a metric tag that overrides a batch tag, strings that
 * need escaping. */
static fr_batch *typed_batch(void)
{
    fr_batch *b = fr_batch_new("task-v", "node-1", 7);
    assert_non_null(b);
    assert_fr_ok(fr_batch_add_tag(b, "dc", "x"));
    assert_fr_ok(fr_batch_add_tag(b, "rack", "r1"));
    fr_metric *m = fr_batch_add(b, "/t/int", TS0, fr_val_i64(-42), "B");
    assert_fr_ok(fr_batch_metric_tag(b, m, "rack", "r2"));
    assert_non_null(
        fr_batch_add(b, "/t/uint", INT64_C(1496318401000000000), fr_val_u64(UINT64_MAX), NULL));
    assert_non_null(
        fr_batch_add(b, "/t/double", INT64_C(1496318400500000000), fr_val_f64(0.1), "s"));
    assert_non_null(fr_batch_add(b, "/t/big", TS0, fr_val_f64(-1e300), ""));
    assert_non_null(fr_batch_add(b, "/t/nan", TS0, fr_val_f64(NAN), ""));
    assert_non_null(fr_batch_add(b, "/t/yes", TS0, fr_val_bool(true), ""));
    assert_non_null(fr_batch_add(b, "/t/no", TS0, fr_val_bool(false), ""));
    m = fr_batch_add(b, "/t/str", TS0, fr_val_str("say \"hi\"\n\t\xc3\xbc\x01\\"), "");
    assert_fr_ok(fr_batch_metric_tag(b, m, "q\"k", "v\n"));
    return b;
}

/* As the file sink writes them (snapjson.h): nine fraction digits, tags
 * sorted with the metric's own over the batch's, NaN as a string. */
static const char *const typed_json[] = {
    "{\"timestamp\":\"2017-06-01T12:00:00.123456789Z\",\"namespace\":\"/t/int\",\"data\":-42,"
    "\"unit\":\"B\",\"tags\":{\"dc\":\"x\",\"rack\":\"r2\"},\"version\":0}",
    "{\"timestamp\":\"2017-06-01T12:00:01.000000000Z\",\"namespace\":\"/t/uint\",\"data\":"
    "18446744073709551615,\"unit\":\"\",\"tags\":{\"dc\":\"x\",\"rack\":\"r1\"},\"version\":0}",
    "{\"timestamp\":\"2017-06-01T12:00:00.500000000Z\",\"namespace\":\"/t/double\",\"data\":0.1,"
    "\"unit\":\"s\",\"tags\":{\"dc\":\"x\",\"rack\":\"r1\"},\"version\":0}",
    "{\"timestamp\":\"2017-06-01T12:00:00.123456789Z\",\"namespace\":\"/t/big\",\"data\":"
    "-1e+300,\"unit\":\"\",\"tags\":{\"dc\":\"x\",\"rack\":\"r1\"},\"version\":0}",
    "{\"timestamp\":\"2017-06-01T12:00:00.123456789Z\",\"namespace\":\"/t/nan\",\"data\":"
    "\"NaN\",\"unit\":\"\",\"tags\":{\"dc\":\"x\",\"rack\":\"r1\"},\"version\":0}",
    "{\"timestamp\":\"2017-06-01T12:00:00.123456789Z\",\"namespace\":\"/t/yes\",\"data\":true,"
    "\"unit\":\"\",\"tags\":{\"dc\":\"x\",\"rack\":\"r1\"},\"version\":0}",
    "{\"timestamp\":\"2017-06-01T12:00:00.123456789Z\",\"namespace\":\"/t/no\",\"data\":false,"
    "\"unit\":\"\",\"tags\":{\"dc\":\"x\",\"rack\":\"r1\"},\"version\":0}",
    "{\"timestamp\":\"2017-06-01T12:00:00.123456789Z\",\"namespace\":\"/t/str\",\"data\":"
    "\"say \\\"hi\\\"\\n\\t\xc3\xbc\\u0001\\\\\",\"unit\":\"\",\"tags\":{\"dc\":\"x\","
    "\"q\\\"k\":\"v\\n\",\"rack\":\"r1\"},\"version\":0}",
};

static const got_msg *got_find(const got *g, uint64_t seq, uint64_t index)
{
    for (size_t i = 0; i < g->n; i++) {
        if (g->v[i].seq == seq && g->v[i].index == index) {
            return &g->v[i];
        }
    }
    fail_msg("no message for batch %" PRIu64 " metric %" PRIu64, seq, index);
    return NULL;
}

static void test_json_values_headers(void **state)
{
    (void)state;
    sink s;
    sink_open(&s, "tv", "topic: \"json-{task}\", format: json");
    fr_batch *b[2] = {typed_batch(), int_batch("node-2", "task-v", 7, 3)};
    assert_write_ok(&s, b, 2);
    got g;
    read_topic("json-tv", &g);
    assert_once(&g, "tv/publish[0]", b, 2);
    assert_int_equal(g.n, 8 + 3);
    for (uint32_t i = 0; i < 8; i++) {
        const got_msg *m = NULL;
        for (size_t k = 0; k < g.n; k++) {
            if (strcmp(g.v[k].stream, "node-1\x1ftask-v\x1f") == 0 && g.v[k].index == i) {
                m = &g.v[k];
            }
        }
        assert_non_null(m);
        assert_string_equal(m->value, typed_json[i]);
        assert_int_equal(m->value_len, strlen(typed_json[i]));
        assert_int_equal(m->seq, 7);
        assert_int_equal(m->count, 8);
        assert_string_equal(m->sink, "tv/publish[0]");
        assert_non_null(m->key);
        assert_string_equal(m->key, b[0]->metrics[i].ns);
    }
    /* The same seq from another source is another stream: both stored,
     * told apart by fresco-stream. */
    size_t other = 0;
    for (size_t k = 0; k < g.n; k++) {
        other += strcmp(g.v[k].stream, "node-2\x1ftask-v\x1f") == 0;
    }
    assert_int_equal(other, 3);
    got_free(&g);
    batches_free(b, 2);
    sink_close(&s);
}

static const msgpack_object *mp_get(const msgpack_object *map, const char *key, int pos)
{
    assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
    const msgpack_object_kv *kv = &map->via.map.ptr[pos];
    assert_int_equal(kv->key.type, MSGPACK_OBJECT_STR);
    assert_int_equal(kv->key.via.str.size, strlen(key));
    assert_memory_equal(kv->key.via.str.ptr, key, strlen(key));
    return &kv->val;
}

static void assert_mp_str(const msgpack_object *o, const char *want)
{
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    assert_int_equal(o->via.str.size, strlen(want));
    assert_memory_equal(o->via.str.ptr, want, strlen(want));
}

static void test_msgpack_values(void **state)
{
    (void)state;
    sink s;
    sink_open(&s, "tm", "topic: \"mp-{task}\", format: msgpack, key: none");
    fr_batch *b = typed_batch();
    assert_write_ok(&s, &b, 1);
    got g;
    read_topic("mp-tm", &g);
    assert_once(&g, "tm/publish[0]", &b, 1);
    static const char *const ts[] = {
        "2017-06-01T12:00:00.123456789Z", "2017-06-01T12:00:01Z",
        "2017-06-01T12:00:00.5Z",         "2017-06-01T12:00:00.123456789Z",
        "2017-06-01T12:00:00.123456789Z", "2017-06-01T12:00:00.123456789Z",
        "2017-06-01T12:00:00.123456789Z", "2017-06-01T12:00:00.123456789Z",
    };
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        const got_msg *m = got_find(&g, 7, i);
        assert_null(m->key);
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        assert_int_equal(msgpack_unpack_next(&u, m->value, m->value_len, &off),
                         MSGPACK_UNPACK_SUCCESS);
        assert_int_equal(off, m->value_len);
        const msgpack_object *o = &u.data;
        assert_int_equal(o->via.map.size, 6);
        assert_mp_str(mp_get(o, "timestamp", 0), ts[i]);
        assert_mp_str(mp_get(o, "namespace", 1), b->metrics[i].ns);
        const msgpack_object *d = mp_get(o, "data", 2);
        const fr_value *v = &b->metrics[i].value;
        switch (v->type) {
        case FR_VAL_INT64:
            assert_int_equal(d->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
            assert_int_equal(d->via.i64, v->v.i);
            break;
        case FR_VAL_UINT64:
            assert_int_equal(d->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
            assert_true(d->via.u64 == v->v.u);
            break;
        case FR_VAL_DOUBLE:
            assert_int_equal(d->type, MSGPACK_OBJECT_FLOAT64);
            if (isnan(v->v.d)) {
                assert_true(isnan(d->via.f64));
            } else {
                assert_true(d->via.f64 == v->v.d);
            }
            break;
        case FR_VAL_BOOL:
            assert_int_equal(d->type, MSGPACK_OBJECT_BOOLEAN);
            assert_int_equal(d->via.boolean, v->v.b);
            break;
        case FR_VAL_STRING:
            assert_mp_str(d, v->v.s.ptr);
            break;
        }
        assert_mp_str(mp_get(o, "unit", 3), b->metrics[i].unit);
        const msgpack_object *tags = mp_get(o, "tags", 4);
        assert_int_equal(tags->type, MSGPACK_OBJECT_MAP);
        /* The metric's own tags, then the batch's it does not override. */
        if (i == 0) {
            assert_int_equal(tags->via.map.size, 2);
            assert_mp_str(mp_get(tags, "rack", 0), "r2");
            assert_mp_str(mp_get(tags, "dc", 1), "x");
        } else if (i == 7) {
            assert_int_equal(tags->via.map.size, 3);
            assert_mp_str(mp_get(tags, "q\"k", 0), "v\n");
            assert_mp_str(mp_get(tags, "dc", 1), "x");
            assert_mp_str(mp_get(tags, "rack", 2), "r1");
        } else {
            assert_int_equal(tags->via.map.size, 2);
            assert_mp_str(mp_get(tags, "dc", 0), "x");
            assert_mp_str(mp_get(tags, "rack", 1), "r1");
        }
        const msgpack_object *ver = mp_get(o, "version", 5);
        assert_int_equal(ver->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
        assert_int_equal(ver->via.u64, 1);
        msgpack_unpacked_destroy(&u);
    }
    got_free(&g);
    fr_batch_destroy(b);
    sink_close(&s);
}

/* key: task (the batch's task, or the sink's when the batch has none) and
 * a topic from both placeholders. */
static void test_key_task_topic_template(void **state)
{
    (void)state;
    sink s;
    fr_error err;
    assert_int_equal(
        sink_try_open(&s, "t7", "name7", "topic: \"k.{task}_{task_name}\", key: task", &err), 0);
    fr_batch *b[2] = {int_batch("n", "task-a", 1, 4), int_batch("n", "", 2, 4)};
    assert_write_ok(&s, b, 2);
    got g;
    read_topic("k.t7_name7", &g);
    assert_once(&g, "t7/publish[0]", b, 2);
    for (size_t i = 0; i < g.n; i++) {
        assert_non_null(g.v[i].key);
        assert_string_equal(g.v[i].key, g.v[i].seq == 1 ? "task-a" : "t7");
    }
    /* One key, one partition. */
    for (size_t i = 1; i < g.n; i++) {
        if (g.v[i].seq == g.v[0].seq) {
            assert_int_equal(g.v[i].partition, g.v[0].partition);
        }
    }
    got_free(&g);
    batches_free(b, 2);
    sink_close(&s);
}

/* ---- delivery and its failures ---- */

static void test_brokers_down_then_up(void **state)
{
    (void)state;
    sink s;
    sink_open(&s, "down", "topic: down, timeout: 1s, rdkafka: {reconnect.backoff.max.ms: 200}");
    fr_batch *b[3] = {int_batch("n", "down", 1, 20), int_batch("n", "down", 2, 20),
                      int_batch("n", "down", 3, 20)};
    assert_write_ok(&s, b, 1);

    mock_brokers(false);
    fr_error err;
    int64_t t0 = tst_mono_ms();
    int rv = sink_write(&s, b + 1, 2, &err);
    int64_t took = tst_mono_ms() - t0;
    print_message("brokers down: write -> %s in %" PRId64 " ms: %s\n", fr_errcode(rv), took,
                  err.message);
    assert_true(fr_sink_retryable(rv));
    assert_true(rv == FR_ETIMEDOUT || rv == FR_EIO);
    assert_true(took >= 900 && took < 3000);
    assert_true(strstr(err.message, "topic down") != NULL);
    /* Again while down: still within the timeout, nothing sent twice. */
    rv = sink_write(&s, b + 1, 2, &err);
    assert_true(fr_sink_retryable(rv));

    mock_brokers(true);
    write_until_ok(&s, b + 1, 2, 20000);
    got g;
    read_topic("down", &g);
    assert_once(&g, "down/publish[0]", b, 3);
    got_free(&g);
    batches_free(b, 3);
    sink_close(&s);
}

static void test_queue_full(void **state)
{
    (void)state;
    sink s;
    /* A queue of 8 messages: a batch of 60 fills it at once. */
    sink_open(&s, "qf",
              "topic: qf, timeout: 1s, rdkafka: {queue.buffering.max.messages: 8, "
              "reconnect.backoff.max.ms: 200}");
    fr_batch *b[2] = {int_batch("n", "qf", 1, 60), int_batch("n", "qf", 2, 60)};
    /* Brokers up: the queue drains while the write polls. */
    assert_write_ok(&s, b, 1);
    assert_true(sink_stat(&s, "queue_full") > 0);

    mock_brokers(false);
    fr_error err;
    int64_t t0 = tst_mono_ms();
    int rv = sink_write(&s, b + 1, 1, &err);
    int64_t took = tst_mono_ms() - t0;
    print_message("full queue, brokers down: write -> %s in %" PRId64 " ms: %s\n", fr_errcode(rv),
                  took, err.message);
    assert_int_equal(rv, FR_EBUSY);
    assert_true(took < 3000);
    mock_brokers(true);
    write_until_ok(&s, b + 1, 1, 20000);
    got g;
    read_topic("qf", &g);
    assert_once(&g, "qf/publish[0]", b, 2);
    got_free(&g);
    batches_free(b, 2);
    sink_close(&s);
}

/* A produce answered late, after the message timed out: the sink cannot
 * tell whether it is stored, so before sending anything again it reads the
 * topic back, finds the messages there and does not send them twice. */
/* Makes the mock answer its next produce request late (SIGHUP). */
static void mock_slow_produce(void)
{
    char *log = tst_slurp(mock.log);
    mock_wait w = {"answer the next produce", count_of(log, "answer the next produce") + 1};
    free(log);
    assert_int_equal(kill(mock.pid, SIGHUP), 0);
    assert_true(tst_wait_until(mock_said, &w, 5000));
}

/* The late answer's rdkafka settings: the message times out before the
 * answer comes. */
#define LATE_RDKAFKA "rdkafka: {message.timeout.ms: 1000, request.timeout.ms: 1000}"

/* A produce answered late, after the message timed out: the sink cannot
 * tell whether it is stored, so before sending anything again it reads the
 * topic back, finds the messages there and does not send them twice. */
static void test_fate_unknown(void **state)
{
    (void)state;
    sink s;
    sink_open(&s, "unk", "topic: unk, timeout: 5s, " LATE_RDKAFKA);
    fr_batch *b[2] = {int_batch("n", "unk", 1, 10), int_batch("n", "unk", 2, 10)};
    assert_write_ok(&s, b, 1);
    mock_slow_produce();
    fr_error err;
    int rv = sink_write(&s, b + 1, 1, &err);
    print_message("late answer: write -> %s: %s\n", fr_errcode(rv), err.message);
    assert_int_equal(rv, FR_EIO);
    assert_true(sink_stat(&s, "unknown") > 0);
    uint64_t produced = sink_stat(&s, "produced");
    write_until_ok(&s, b + 1, 1, 20000);
    assert_int_equal(sink_stat(&s, "readbacks"), 2);
    print_message("after the read back: %" PRIu64 " found, %" PRIu64 " sent again\n",
                  sink_stat(&s, "readback_found"), sink_stat(&s, "produced") - produced);
    got g;
    read_topic("unk", &g);
    assert_once(&g, "unk/publish[0]", b, 2);
    got_free(&g);
    batches_free(b, 2);
    sink_close(&s);
}

/* The same with no read back: what may be stored is sent again (at least
 * once), and the sink does not stall on it. */
static void test_fate_unknown_without_lookback(void **state)
{
    (void)state;
    sink s;
    sink_open(&s, "unk0", "topic: unk0, timeout: 5s, dedup_lookback: 0, " LATE_RDKAFKA);
    fr_batch *b[2] = {int_batch("n", "unk0", 1, 10), int_batch("n", "unk0", 2, 10)};
    assert_write_ok(&s, b, 1);
    mock_slow_produce();
    fr_error err;
    assert_int_equal(sink_write(&s, b + 1, 1, &err), FR_EIO);
    uint64_t unknown = sink_stat(&s, "unknown");
    assert_true(unknown > 0);
    write_until_ok(&s, b + 1, 1, 20000);
    assert_int_equal(sink_stat(&s, "readbacks"), 0);
    got g;
    read_topic("unk0", &g);
    const char *stream = "n\x1funk0\x1f";
    for (uint32_t i = 0; i < 10; i++) {
        assert_int_equal(got_count(&g, "unk0/publish[0]", stream, 1, i), 1);
        size_t c = got_count(&g, "unk0/publish[0]", stream, 2, i);
        assert_true(c == 1 || c == 2);
    }
    /* The mock stored what it answered late: each of those is there twice. */
    assert_int_equal(g.n, 20 + unknown);
    got_free(&g);
    batches_free(b, 2);
    sink_close(&s);
}

static void test_too_big(void **state)
{
    (void)state;
    sink s;
    sink_open(&s, "big", "topic: big, rdkafka: {message.max.bytes: 1000}");
    fr_batch *ok = int_batch("n", "big", 1, 2);
    fr_batch *b = int_batch("n", "big", 2, 2);
    char text[2001];
    memset(text, 'x', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    assert_non_null(fr_batch_add(b, "/t/huge", TS0, fr_val_str(text), ""));
    fr_error err;
    fr_batch *both[2] = {ok, b};
    int rv = sink_write(&s, both, 2, &err);
    assert_int_equal(rv, FR_ETOOBIG);
    assert_false(fr_sink_retryable(rv));
    assert_non_null(strstr(err.message, "/t/huge"));
    /* The engine writes them one at a time: the good one goes in, the bad
     * one fails alone, and none of its metrics reached the topic. */
    assert_write_ok(&s, &ok, 1);
    assert_int_equal(sink_write(&s, &b, 1, &err), FR_ETOOBIG);
    got g;
    read_topic("big", &g);
    assert_once(&g, "big/publish[0]", &ok, 1);
    assert_int_equal(g.n, 2);
    got_free(&g);
    fr_batch_destroy(ok);
    fr_batch_destroy(b);
    sink_close(&s);
}

/* ---- exactly once ---- */

static void test_written_twice(void **state)
{
    (void)state;
    sink s;
    sink_open(&s, "twice", "topic: twice");
    fr_batch *b[3] = {int_batch("n", "twice", 1, 10), int_batch("n", "twice", 2, 10),
                      int_batch("m", "twice", 1, 10)};
    assert_write_ok(&s, b, 2);
    assert_write_ok(&s, b, 3);
    assert_write_ok(&s, b + 1, 1);
    assert_int_equal(sink_stat(&s, "batches_skipped"), 3);
    got g;
    read_topic("twice", &g);
    assert_once(&g, "twice/publish[0]", b, 3);
    got_free(&g);
    batches_free(b, 3);
    sink_close(&s);
}

static void test_restart(void **state)
{
    (void)state;
    sink s;
    sink_open(&s, "rs", "topic: rs");
    fr_batch *b[3] = {int_batch("n", "rs", 100, 30), int_batch("n", "rs", 101, 30),
                      int_batch("n", "rs", 102, 30)};
    assert_write_ok(&s, b, 2);
    sink_close(&s);

    /* A new instance, the same id: the spool replays what it had. */
    sink_open(&s, "rs", "topic: rs");
    assert_write_ok(&s, b, 3);
    assert_int_equal(sink_stat(&s, "readback_found"), 60);
    assert_int_equal(sink_stat(&s, "produced"), 30);
    sink_close(&s);

    /* Another sink (another id) writing the same batches stores its own. */
    sink other;
    sink_open(&other, "rs2", "topic: rs");
    assert_write_ok(&other, b, 1);
    sink_close(&other);

    got g;
    read_topic("rs", &g);
    assert_once(&g, "rs/publish[0]", b, 3);
    assert_once(&g, "rs2/publish[0]", b, 1);
    got_free(&g);
    batches_free(b, 3);
}

/* A publisher that died with half a batch in the topic: its next instance
 * sends only the other half. The first half is put there by hand, with
 * the sink's headers, as the dead one would have. */
static void test_restart_half_batch(void **state)
{
    (void)state;
    fr_batch *b = int_batch("n", "half", 5, 20);
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(
        rd_kafka_conf_set(conf, "bootstrap.servers", mock.brokers, errstr, sizeof(errstr)),
        RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    char stream[128];
    fr_batch_stream(b, stream, sizeof(stream));
    for (uint32_t i = 0; i < 8; i++) {
        char idx[8];
        snprintf(idx, sizeof(idx), "%u", i);
        assert_int_equal(
            rd_kafka_producev(rk, RD_KAFKA_V_TOPIC("half"),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_VALUE("old", 3),
                              RD_KAFKA_V_HEADER("fresco-stream", stream, -1),
                              RD_KAFKA_V_HEADER("fresco-seq", "5", -1),
                              RD_KAFKA_V_HEADER("fresco-sink", "half/publish[0]", -1),
                              RD_KAFKA_V_HEADER("fresco-index", idx, -1),
                              RD_KAFKA_V_HEADER("fresco-count", "20", -1), RD_KAFKA_V_END),
            0);
    }
    assert_int_equal(rd_kafka_flush(rk, 10000), 0);
    rd_kafka_destroy(rk);

    sink s;
    sink_open(&s, "half", "topic: half");
    assert_write_ok(&s, &b, 1);
    assert_int_equal(sink_stat(&s, "readback_found"), 8);
    assert_int_equal(sink_stat(&s, "produced"), 12);
    sink_close(&s);
    got g;
    read_topic("half", &g);
    assert_once(&g, "half/publish[0]", &b, 1);
    for (size_t i = 0; i < g.n; i++) {
        bool old = strcmp(g.v[i].value, "old") == 0;
        assert_int_equal(old, g.v[i].index < 8);
    }
    got_free(&g);
    fr_batch_destroy(b);
}

/* The control: with no read back, a restart stores the batches again
 * (at least once). */
static void test_restart_without_lookback(void **state)
{
    (void)state;
    fr_batch *b = int_batch("n", "nolb", 1, 10);
    sink s;
    sink_open(&s, "nolb", "topic: nolb, dedup_lookback: 0");
    assert_write_ok(&s, &b, 1);
    sink_close(&s);
    sink_open(&s, "nolb", "topic: nolb, dedup_lookback: 0");
    assert_write_ok(&s, &b, 1);
    sink_close(&s);
    got g;
    read_topic("nolb", &g);
    assert_int_equal(g.n, 20);
    for (uint32_t i = 0; i < 10; i++) {
        assert_int_equal(got_count(&g, "nolb/publish[0]", "n\x1fnolb\x1f", 1, i), 2);
    }
    got_free(&g);
    fr_batch_destroy(b);
}

/* ---- config ---- */

static void assert_config_error(const char *config, int code, const char *where, const char *needle)
{
    void *cfg = NULL;
    fr_error err;
    int rv = sink_config(config, &cfg, &err);
    print_message("%s -> %s: %s\n", config, err.where, err.message);
    assert_int_equal(rv, code);
    assert_null(cfg);
    assert_string_equal(err.where, where);
    assert_non_null(strstr(err.message, needle));
}

static void assert_init_error(const char *task_name, const char *config, const char *where,
                              const char *needle)
{
    sink s;
    fr_error err;
    int rv = sink_try_open(&s, "tb", task_name, config, &err);
    print_message("%s -> %s: %s\n", config, err.where, err.message);
    assert_int_equal(rv, FR_ECONFIG);
    assert_string_equal(err.where, where);
    assert_non_null(strstr(err.message, needle));
}

static void test_bad_config(void **state)
{
    (void)state;
    const char *node = "workflow.collect.publish[0].config.";
    char where[128];
    snprintf(where, sizeof(where), "%stopik", node);
    assert_config_error("topik: x", FR_EUNKNOWN, where, "topik");
    snprintf(where, sizeof(where), "%skey", node);
    assert_config_error("key: metric", FR_ECONFIG, where, "key");
    snprintf(where, sizeof(where), "%sformat", node);
    assert_config_error("format: xml", FR_ECONFIG, where, "format");
    snprintf(where, sizeof(where), "%stimeout", node);
    assert_config_error("timeout: soon", FR_ECONFIG, where, "timeout");
    snprintf(where, sizeof(where), "%srdkafka", node);
    assert_config_error("rdkafka: {linger.mss: 5}", FR_ECONFIG, where, "'linger.mss'");
    assert_config_error("rdkafka: {linger.ms: soon}", FR_ECONFIG, where, "'linger.ms'");
    assert_config_error("rdkafka: {bootstrap.servers: x}", FR_ECONFIG, where, "brokers");
    assert_config_error("rdkafka: {enable.idempotence: false}", FR_ECONFIG, where,
                        "enable.idempotence");
    assert_config_error("rdkafka: {compression.codec: gzip}", FR_ECONFIG, where, "compression");
    assert_config_error("rdkafka: {linger.ms: {a: 1}}", FR_ECONFIG, where, "'linger.ms'");
    snprintf(where, sizeof(where), "%stags", node);
    assert_config_error("tags: {a: b}", FR_EUNKNOWN, where, "takes no map");

    /* Found at init: the topic and what librdkafka refuses as a whole. */
    assert_init_error("tb", "topic: \"x-{tusk}\"", "topic", "{tusk}");
    assert_init_error("my task", "topic: \"x-{task_name}\"", "topic", "'x-my task'");
    assert_init_error("tb", "rdkafka: {acks: 1}", "rdkafka", "acks");

    /* And a good one with every key. */
    sink s;
    sink_open(&s, "tgood",
              "topic: \"g-{task}\", key: none, format: msgpack, timeout: 2s, compression: "
              "lz4, dedup_lookback: 100, dedup_batches: 64, rdkafka: {linger.ms: 1, "
              "enable.idempotence: true}");
    fr_batch *b = int_batch("n", "tgood", 1, 5);
    assert_write_ok(&s, &b, 1);
    got g;
    read_topic("g-tgood", &g);
    assert_once(&g, "tgood/publish[0]", &b, 1);
    got_free(&g);
    fr_batch_destroy(b);
    sink_close(&s);
}

/* A bounded record: past dedup_batches the oldest batches are forgotten
 * and counted. */
static void test_remembered_bounded(void **state)
{
    (void)state;
    sink s;
    sink_open(&s, "bound", "topic: bound, dedup_batches: 16");
    fr_batch *b[40];
    for (size_t i = 0; i < 40; i++) {
        b[i] = int_batch("n", "bound", i + 1, 1);
    }
    assert_write_ok(&s, b, 40);
    assert_true(sink_stat(&s, "remembered") <= 16);
    assert_int_equal(sink_stat(&s, "forgotten"), 24);
    /* The newest are still known. */
    assert_write_ok(&s, b + 30, 10);
    assert_int_equal(sink_stat(&s, "batches_skipped"), 10);
    batches_free(b, 40);
    sink_close(&s);
}

/* ---- a figure ---- */

/* The baseline: librdkafka alone, an idempotent producer sending messages
 * of the same size with the same key and headers, then flushing. */
static double raw_producer_rate(const char *topic, int nmsgs, size_t value_len)
{
    char errstr[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    assert_int_equal(
        rd_kafka_conf_set(conf, "bootstrap.servers", mock.brokers, errstr, sizeof(errstr)),
        RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    char *value = malloc(value_len);
    assert_non_null(value);
    memset(value, 'v', value_len);
    int64_t t0 = tst_mono_ms();
    for (int i = 0; i < nmsgs; i++) {
        char key[32], idx[12];
        snprintf(key, sizeof(key), "/t/m%d", i % 500);
        snprintf(idx, sizeof(idx), "%d", i % 500);
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                    RD_KAFKA_V_VALUE(value, value_len), RD_KAFKA_V_KEY(key, strlen(key)),
                    RD_KAFKA_V_HEADER("fresco-stream", "n\x1fthr\x1f", -1),
                    RD_KAFKA_V_HEADER("fresco-seq", "1", -1),
                    RD_KAFKA_V_HEADER("fresco-sink", "raw/publish[0]", -1),
                    RD_KAFKA_V_HEADER("fresco-index", idx, -1),
                    RD_KAFKA_V_HEADER("fresco-count", "500", -1), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 10);
        }
        assert_int_equal(e, 0);
    }
    assert_int_equal(rd_kafka_flush(rk, 60000), 0);
    int64_t ms = tst_mono_ms() - t0;
    free(value);
    rd_kafka_destroy(rk);
    return ms > 0 ? nmsgs * 1000.0 / (double)ms : 0.0;
}

static void test_throughput(void **state)
{
    (void)state;
    sink s;
    sink_open(&s, "thr", "topic: thr");
    enum { NB = 40, PER = 500 };
    fr_batch *b[NB + 1];
    for (size_t i = 0; i < NB; i++) {
        b[i] = int_batch("n", "thr", i + 1, PER);
    }
    /* The first write reads the (empty) topic back: not part of the rate. */
    b[NB] = int_batch("n", "thr", 1000, 1);
    assert_write_ok(&s, b + NB, 1);
    int64_t t0 = tst_mono_ms();
    for (size_t i = 0; i < NB; i += 4) {
        assert_write_ok(&s, b + i, 4);
    }
    int64_t ms = tst_mono_ms() - t0;
    double rate = ms > 0 ? NB * PER * 1000.0 / (double)ms : 0.0;
    got g;
    read_topic("thr", &g);
    assert_once(&g, "thr/publish[0]", b, NB + 1);
    size_t bytes = 0;
    for (size_t i = 0; i < g.n; i++) {
        bytes += g.v[i].value_len;
    }
    size_t mean = g.n > 0 ? bytes / g.n : 0;
    double raw = raw_producer_rate("thr-raw", NB * PER, mean);
    print_message("kafka sink: %d messages (json, ~%zu bytes, %d per batch, 4 batches a write, "
                  "each write waiting for its reports) in %" PRId64 " ms: %.0f messages/s; "
                  "baseline, librdkafka alone (idempotent, same sizes, key and headers, one "
                  "flush at the end): %.0f messages/s\n",
                  NB * PER, mean, PER, ms, rate, raw);
    got_free(&g);
    batches_free(b, NB + 1);
    sink_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_values_headers),
        cmocka_unit_test(test_msgpack_values),
        cmocka_unit_test(test_key_task_topic_template),
        cmocka_unit_test_teardown(test_brokers_down_then_up, brokers_back_up),
        cmocka_unit_test_teardown(test_queue_full, brokers_back_up),
        cmocka_unit_test(test_fate_unknown),
        cmocka_unit_test(test_fate_unknown_without_lookback),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_written_twice),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_restart_half_batch),
        cmocka_unit_test(test_restart_without_lookback),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_remembered_bounded),
        cmocka_unit_test(test_throughput),
    };
    return cmocka_run_group_tests(tests, suite_setup, suite_teardown);
}
