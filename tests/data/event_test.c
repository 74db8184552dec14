/* Event streams: the codec and its strictness, topic prefixes and per-topic
 * sequence numbers over inproc, ipc and tcp, gaps counted under a slow
 * subscriber, a publisher restart, malformed messages from a raw PUB
 * socket, and several threads publishing at once. */
#include "testsupport.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>

#include "fresco/event.h"
#include "fresco/log.h"
#include "schema_example.h"

/* ---- helpers ---- */

static int url_counter;

static void make_url(const char *scheme, char *buf, size_t len)
{
    int n = ++url_counter;
    if (strcmp(scheme, "inproc") == 0) {
        snprintf(buf, len, "inproc://event-test-%d", n);
    } else if (strcmp(scheme, "ipc") == 0) {
        snprintf(buf, len, "ipc:///tmp/fresco-event-test-%d-%d.sock", (int)getpid(), n);
    } else {
        snprintf(buf, len, "tcp://127.0.0.1:%d", tst_free_port());
    }
}

/* Packs one integer as an event body. */
static void body_int(fr_buf *b, int64_t v)
{
    fr_buf_reset(b);
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, fr_buf_msgpack_write);
    assert_int_equal(msgpack_pack_int64(&pk, v), 0);
}

static int64_t body_value(const fr_event *ev)
{
    assert_non_null(ev->body);
    if (ev->body->type == FR_NODE_UINT) {
        return (int64_t)ev->body->v.u;
    }
    assert_int_equal(ev->body->type, FR_NODE_INT);
    return ev->body->v.i;
}

/* Publishes on `topic` until the subscriber gets one of them, so that the
 * subscription is live before a test starts (pub/sub drops everything sent
 * before the connection is up). Leftover warm-up events are skipped by
 * recv_on. */
static void warm_up(fr_event_pub *p, fr_event_sub *s, const char *topic)
{
    int64_t end = tst_mono_ms() + 10000;
    for (;;) {
        assert_true(tst_mono_ms() < end);
        assert_fr_ok(fr_event_publish(p, topic, NULL, 0));
        fr_event ev;
        int rv = fr_event_recv(s, 20, &ev);
        if (rv == 0) {
            bool hit = strcmp(ev.topic, topic) == 0;
            fr_event_free(&ev);
            if (hit) {
                return;
            }
        } else {
            assert_int_equal(rv, FR_ETIMEDOUT);
        }
    }
}

/* The next event whose topic does not start with "warmup". */
static void recv_on(fr_event_sub *s, fr_event *ev, int timeout_ms)
{
    for (;;) {
        assert_fr_ok(fr_event_recv(s, timeout_ms, ev));
        if (strstr(ev->topic, "warmup") == NULL) {
            return;
        }
        fr_event_free(ev);
    }
}

/* ---- codec ---- */

static void test_codec_round_trip(void **state)
{
    fr_buf body = FR_BUF_INIT, msg = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "state", 5);
    msgpack_pack_str(&pk, 7);
    msgpack_pack_str_body(&pk, "running", 7);
    assert_fr_ok(fr_event_encode("event/task", "collector@n1", 42, -5, body.data, body.len, &msg));

    /* Topic, NUL, then the map with its keys in schema order. */
    assert_memory_equal(msg.data, "event/task\0", 11);
    assert_int_equal(msg.data[11], 0x84);
    fr_event ev;
    fr_error err;
    assert_fr_ok(fr_event_decode(msg.data, msg.len, &ev, &err));
    assert_string_equal(ev.topic, "event/task");
    assert_string_equal(ev.src, "collector@n1");
    assert_int_equal(ev.seq, 42);
    assert_int_equal(ev.ts, -5);
    const char *st = NULL;
    assert_fr_ok(fr_node_get_str(ev.body, "state", &st));
    assert_string_equal(st, "running");
    const fr_node *root = ev.doc.root;
    const char *order[] = {"src", "seq", "ts", "body"};
    assert_int_equal(root->len, 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(root->v.kv[2 * i].v.str, order[i]);
    }
    fr_event_free(&ev);
    fr_event_free(&ev); /* safe twice */

    /* No body is nil. */
    fr_buf_reset(&msg);
    assert_fr_ok(fr_event_encode("t", "s", 1, 1700000000000000000, NULL, 0, &msg));
    assert_fr_ok(fr_event_decode(msg.data, msg.len, &ev, &err));
    assert_int_equal(ev.body->type, FR_NODE_NIL);
    fr_event_free(&ev);

    /* The longest topic there is. */
    char topic[FR_TOPIC_MAX + 2];
    memset(topic, 'x', FR_TOPIC_MAX);
    topic[FR_TOPIC_MAX] = '\0';
    fr_buf_reset(&msg);
    assert_fr_ok(fr_event_encode(topic, "s", 1, 0, NULL, 0, &msg));
    assert_fr_ok(fr_event_decode(msg.data, msg.len, &ev, &err));
    assert_string_equal(ev.topic, topic);
    fr_event_free(&ev);

    /* Encoding refuses what decoding would. */
    topic[FR_TOPIC_MAX] = 'x';
    topic[FR_TOPIC_MAX + 1] = '\0';
    size_t before = msg.len;
    assert_int_equal(fr_event_encode(topic, "s", 1, 0, NULL, 0, &msg), FR_ETOOBIG);
    assert_int_equal(fr_event_encode("", "s", 1, 0, NULL, 0, &msg), FR_EINVAL);
    assert_int_equal(fr_event_encode("t", "s", 0, 0, NULL, 0, &msg), FR_EINVAL);
    assert_int_equal(msg.len, before);
    fr_buf_free(&body);
    fr_buf_free(&msg);
}

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* The encoder writes exactly the example in schemas/event.md, and the
 * decoder reads it back. */
static void test_codec_matches_schema_example(void **state)
{
    fr_buf body = FR_BUF_INIT, msg = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, 4);
    const char *kv[] = {"task", "7f3c2a",   "from",   "Running",
                        "to",   "Disabled", "reason", "max-failures (10) reached"};
    for (int i = 0; i < 8; i++) {
        pack_cstr(&pk, kv[i]);
    }
    assert_fr_ok(fr_event_encode("event/task", "collector@node-1", 3, 1700000000000005000,
                                 body.data, body.len, &msg));
    example_assert_equal("event-task-state", msg.data, msg.len);

    size_t len;
    uint8_t *ex = example_load("event-task-state", &len);
    fr_event ev;
    fr_error err;
    assert_fr_ok(fr_event_decode(ex, len, &ev, &err));
    assert_string_equal(ev.topic, "event/task");
    assert_string_equal(ev.src, "collector@node-1");
    assert_int_equal(ev.seq, 3);
    assert_int_equal(ev.ts, 1700000000000005000);
    const char *to = NULL;
    assert_fr_ok(fr_node_get_str(ev.body, "to", &to));
    assert_string_equal(to, "Disabled");
    fr_event_free(&ev);
    free(ex);
    fr_buf_free(&body);
    fr_buf_free(&msg);
}

/* Builds "topic\0" + a map from the given pairs; value kinds: 's' string,
 * 'u' uint, 'i' negative int, 'n' nil, 'a' empty array. */
typedef struct kv {
    const char *key;
    char kind;
    const char *s;
    int64_t n;
} kv;

static void craft(fr_buf *b, const char *topic, const kv *pairs, int npairs)
{
    fr_buf_reset(b);
    assert_fr_ok(fr_buf_append(b, topic, strlen(topic) + 1));
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, (size_t)npairs);
    for (int i = 0; i < npairs; i++) {
        msgpack_pack_str(&pk, strlen(pairs[i].key));
        msgpack_pack_str_body(&pk, pairs[i].key, strlen(pairs[i].key));
        switch (pairs[i].kind) {
        case 's':
            msgpack_pack_str(&pk, strlen(pairs[i].s));
            msgpack_pack_str_body(&pk, pairs[i].s, strlen(pairs[i].s));
            break;
        case 'u':
            msgpack_pack_uint64(&pk, (uint64_t)pairs[i].n);
            break;
        case 'i':
            msgpack_pack_int64(&pk, pairs[i].n);
            break;
        case 'a':
            msgpack_pack_array(&pk, 0);
            break;
        default:
            msgpack_pack_nil(&pk);
            break;
        }
    }
}

typedef struct bad_case {
    const char *name;
    kv pairs[5];
    int npairs;
    int code;
    const char *where;
} bad_case;

static const bad_case bad_maps[] = {
    {"no src",
     {{"seq", 'u', NULL, 1}, {"ts", 'u', NULL, 1}, {"body", 'n', NULL, 0}},
     3,
     FR_EMISSING,
     "src"},
    {"src not a string",
     {{"src", 'u', NULL, 1}, {"seq", 'u', NULL, 1}, {"ts", 'u', NULL, 1}, {"body", 'n', NULL, 0}},
     4,
     FR_ETYPE,
     "src"},
    {"no seq",
     {{"src", 's', "a", 0}, {"ts", 'u', NULL, 1}, {"body", 'n', NULL, 0}},
     3,
     FR_EMISSING,
     "seq"},
    {"seq a string",
     {{"src", 's', "a", 0}, {"seq", 's', "1", 0}, {"ts", 'u', NULL, 1}, {"body", 'n', NULL, 0}},
     4,
     FR_ETYPE,
     "seq"},
    {"seq negative",
     {{"src", 's', "a", 0}, {"seq", 'i', NULL, -1}, {"ts", 'u', NULL, 1}, {"body", 'n', NULL, 0}},
     4,
     FR_ETYPE,
     "seq"},
    {"seq zero",
     {{"src", 's', "a", 0}, {"seq", 'u', NULL, 0}, {"ts", 'u', NULL, 1}, {"body", 'n', NULL, 0}},
     4,
     FR_EINVAL,
     "seq"},
    {"ts an array",
     {{"src", 's', "a", 0}, {"seq", 'u', NULL, 1}, {"ts", 'a', NULL, 0}, {"body", 'n', NULL, 0}},
     4,
     FR_ETYPE,
     "ts"},
    {"no body",
     {{"src", 's', "a", 0}, {"seq", 'u', NULL, 1}, {"ts", 'u', NULL, 1}},
     3,
     FR_EMISSING,
     "body"},
};

static void test_codec_refuses(void **state)
{
    fr_event ev;
    fr_error err;
    fr_buf b = FR_BUF_INIT;

    assert_int_equal(fr_event_decode("", 0, &ev, &err), FR_ETRUNC);
    assert_int_equal(fr_event_decode("event/task", 10, &ev, &err), FR_ETRUNC);
    assert_string_equal(err.where, "topic");
    char longtopic[FR_TOPIC_MAX + 40];
    memset(longtopic, 'x', sizeof(longtopic));
    assert_int_equal(fr_event_decode(longtopic, sizeof(longtopic), &ev, &err), FR_ETOOBIG);
    /* The NUL one byte too far. */
    longtopic[FR_TOPIC_MAX + 1] = '\0';
    assert_int_equal(fr_event_decode(longtopic, sizeof(longtopic), &ev, &err), FR_ETOOBIG);
    assert_int_equal(fr_event_decode("\0\x80", 2, &ev, &err), FR_EINVAL);

    /* Not msgpack, not a map, trailing bytes. */
    assert_int_not_equal(fr_event_decode("t\0\xc1", 3, &ev, &err), 0);
    assert_null(ev.doc.root);
    assert_int_equal(fr_event_decode("t\0\x90", 3, &ev, &err), FR_ETYPE);
    assert_int_not_equal(fr_event_decode("t\0", 2, &ev, &err), 0);
    assert_fr_ok(fr_event_encode("t", "s", 1, 0, NULL, 0, &b));
    assert_fr_ok(fr_buf_append(&b, "\xc0", 1));
    assert_int_equal(fr_event_decode(b.data, b.len, &ev, &err), FR_ETRAILING);

    for (size_t i = 0; i < sizeof(bad_maps) / sizeof(bad_maps[0]); i++) {
        const bad_case *c = &bad_maps[i];
        craft(&b, "t", c->pairs, c->npairs);
        int rv = fr_event_decode(b.data, b.len, &ev, &err);
        if (rv != c->code || strcmp(err.where, c->where) != 0) {
            fail_msg("%s: got %d at \"%s\" (%s), want %d at \"%s\"", c->name, rv, err.where,
                     err.message, c->code, c->where);
        }
        assert_null(ev.doc.root);
        assert_null(ev.src);
    }

    /* Unknown keys are let through for newer publishers. */
    kv extra[] = {{"src", 's', "a", 0},
                  {"seq", 'u', NULL, 3},
                  {"ts", 'u', NULL, 1},
                  {"body", 'n', NULL, 0},
                  {"trace", 's', "x", 0}};
    craft(&b, "t", extra, 5);
    assert_fr_ok(fr_event_decode(b.data, b.len, &ev, &err));
    assert_int_equal(ev.seq, 3);
    fr_event_free(&ev);
    fr_buf_free(&b);
}

/* ---- over every transport: prefixes and per-topic seq ---- */

static void in_order_over(const char *scheme)
{
    char url[256];
    make_url(scheme, url, sizeof(url));
    fr_event_pub *p = NULL;
    fr_event_sub *metrics = NULL, *all = NULL;
    assert_fr_ok(fr_event_pub_open(&p, url, NULL, "pub-1"));
    assert_fr_ok(fr_event_sub_open(&metrics, url, NULL));
    assert_fr_ok(fr_event_subscribe(metrics, "metrics/"));
    assert_fr_ok(fr_event_sub_open(&all, url, NULL));
    assert_fr_ok(fr_event_subscribe(all, ""));
    warm_up(p, metrics, "metrics/warmup");
    warm_up(p, all, "event/warmup");

    /* Rounds of 5 per topic: well inside nng's per-pipe queue (16), and
     * each round is read before the next, so nothing is dropped. */
    const int n = 400;
    fr_buf body = FR_BUF_INIT;
    for (int round = 0; round < n / 5; round++) {
        for (int k = 0; k < 5; k++) {
            int i = round * 5 + k;
            body_int(&body, i);
            assert_fr_ok(fr_event_publish(p, "metrics/a", body.data, body.len));
            body_int(&body, -i);
            assert_fr_ok(fr_event_publish(p, "event/b", body.data, body.len));
        }
        for (int k = 0; k < 5; k++) {
            int i = round * 5 + k;
            fr_event ev;
            recv_on(metrics, &ev, 5000);
            assert_string_equal(ev.topic, "metrics/a");
            assert_string_equal(ev.src, "pub-1");
            assert_int_equal(ev.seq, (uint64_t)i + 1);
            assert_int_equal(body_value(&ev), i);
            assert_true(ev.ts > 1600000000000000000);
            fr_event_free(&ev);
            /* The catch-all subscriber sees both topics, each in order. */
            for (int t = 0; t < 2; t++) {
                recv_on(all, &ev, 5000);
                assert_string_equal(ev.topic, t == 0 ? "metrics/a" : "event/b");
                assert_int_equal(ev.seq, (uint64_t)i + 1);
                assert_int_equal(body_value(&ev), t == 0 ? i : -i);
                fr_event_free(&ev);
            }
        }
    }
    fr_event ev;
    assert_int_equal(fr_event_recv(metrics, 50, &ev), FR_ETIMEDOUT);
    fr_event_sub_stats st;
    fr_event_sub_stats_get(metrics, &st);
    assert_int_equal(st.missed, 0);
    assert_int_equal(st.malformed, 0);
    assert_true(st.received >= (uint64_t)n + 1);
    fr_event_sub_stats_get(all, &st);
    assert_int_equal(st.missed, 0);
    assert_true(st.received >= 2u * n + 1);
    assert_true(fr_event_pub_count(p) >= 2u * n + 2);

    fr_buf_free(&body);
    fr_event_sub_close(metrics);
    fr_event_sub_close(all);
    fr_event_pub_close(p);
}

static void test_in_order_inproc(void **state)
{
    in_order_over("inproc");
}
static void test_in_order_ipc(void **state)
{
    in_order_over("ipc");
}
static void test_in_order_tcp(void **state)
{
    in_order_over("tcp");
}

/* ---- a slow subscriber misses events, and says how many ---- */

static void test_gaps_counted(void **state)
{
    char url[64];
    make_url("tcp", url, sizeof(url));
    fr_event_pub *p = NULL;
    fr_event_sub *s = NULL;
    assert_fr_ok(fr_event_pub_open(&p, url, NULL, "pub-burst"));
    assert_fr_ok(fr_event_sub_open(&s, url, NULL));
    assert_fr_ok(fr_event_subscribe(s, "metrics/"));
    warm_up(p, s, "metrics/warmup");

    fr_buf body = FR_BUF_INIT;
    char filler[200];
    memset(filler, 'f', sizeof(filler));
    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, fr_buf_msgpack_write);
    msgpack_pack_str(&pk, sizeof(filler));
    msgpack_pack_str_body(&pk, filler, sizeof(filler));

    /* seq 1 in step, then a burst nobody reads while it is sent. Both ends
     * drop their oldest messages when full, so the last one arrives. */
    assert_fr_ok(fr_event_publish(p, "metrics/burst", body.data, body.len));
    fr_event ev;
    recv_on(s, &ev, 5000);
    assert_int_equal(ev.seq, 1);
    fr_event_free(&ev);
    fr_event_sub_stats before;
    fr_event_sub_stats_get(s, &before);
    const uint64_t last = 20001;
    for (uint64_t q = 2; q <= last; q++) {
        assert_fr_ok(fr_event_publish(p, "metrics/burst", body.data, body.len));
    }
    uint64_t got = 0, prev = 1;
    for (;;) {
        recv_on(s, &ev, 10000);
        assert_string_equal(ev.topic, "metrics/burst");
        assert_true(ev.seq > prev);
        prev = ev.seq;
        got++;
        fr_event_free(&ev);
        if (prev == last) {
            break;
        }
    }
    fr_event_sub_stats st;
    fr_event_sub_stats_get(s, &st);
    uint64_t missed = st.missed - before.missed;
    print_message("slow subscriber: %llu of %llu received, %llu missed\n", (unsigned long long)got,
                  (unsigned long long)(last - 1), (unsigned long long)missed);
    assert_true(missed > 0);
    assert_int_equal(got + missed, last - 1);
    assert_int_equal(st.malformed, 0);
    fr_buf_free(&body);
    fr_event_sub_close(s);
    fr_event_pub_close(p);
}

/* A publisher that restarts numbers from 1 again: followed, not a gap. */
static void test_publisher_restart(void **state)
{
    char url[64];
    make_url("tcp", url, sizeof(url));
    fr_event_pub *p = NULL;
    fr_event_sub *s = NULL;
    assert_fr_ok(fr_event_pub_open(&p, url, NULL, "pub-r"));
    assert_fr_ok(fr_event_sub_open(&s, url, NULL));
    assert_fr_ok(fr_event_subscribe(s, "metrics/"));
    warm_up(p, s, "metrics/warmup");
    fr_event ev;
    for (uint64_t q = 1; q <= 300; q++) {
        assert_fr_ok(fr_event_publish(p, "metrics/r", NULL, 0));
        recv_on(s, &ev, 5000);
        assert_int_equal(ev.seq, q);
        fr_event_free(&ev);
    }
    fr_event_pub_close(p);
    p = NULL;
    assert_fr_ok(fr_event_pub_open(&p, url, NULL, "pub-r"));
    /* Until the subscriber is back, events go nowhere; each takes a seq. */
    int64_t end = tst_mono_ms() + 10000;
    uint64_t first = 0;
    while (first == 0) {
        assert_true(tst_mono_ms() < end);
        assert_fr_ok(fr_event_publish(p, "metrics/r", NULL, 0));
        if (fr_event_recv(s, 20, &ev) == 0) {
            if (strcmp(ev.topic, "metrics/r") == 0) {
                first = ev.seq;
            }
            fr_event_free(&ev);
        }
    }
    assert_true(first < 300);
    for (uint64_t q = first + 1; q <= first + 20; q++) {
        assert_fr_ok(fr_event_publish(p, "metrics/r", NULL, 0));
        recv_on(s, &ev, 5000);
        assert_int_equal(ev.seq, q);
        fr_event_free(&ev);
    }
    fr_event_sub_stats st;
    fr_event_sub_stats_get(s, &st);
    assert_int_equal(st.missed, 0);
    fr_event_sub_close(s);
    fr_event_pub_close(p);
}

/* ---- malformed messages from a raw PUB socket ---- */

static void raw_send(nng_socket raw, const void *data, size_t len)
{
    assert_int_equal(nng_send(raw, (void *)data, len, 0), 0);
}

static void test_malformed_skipped(void **state)
{
    char url[64];
    make_url("tcp", url, sizeof(url));
    nng_socket raw;
    assert_int_equal(nng_pub0_open(&raw), 0);
    assert_int_equal(nng_listen(raw, url, NULL, 0), 0);
    fr_event_sub *s = NULL;
    assert_fr_ok(fr_event_sub_open(&s, url, NULL));
    assert_fr_ok(fr_event_subscribe(s, ""));

    fr_buf good = FR_BUF_INIT;
    fr_event ev;
    int64_t end = tst_mono_ms() + 10000;
    for (uint64_t q = 1;; q++) {
        assert_true(tst_mono_ms() < end);
        fr_buf_reset(&good);
        assert_fr_ok(fr_event_encode("ok/warmup", "raw", q, 0, NULL, 0, &good));
        raw_send(raw, good.data, good.len);
        if (fr_event_recv(s, 20, &ev) == 0) {
            fr_event_free(&ev);
            break;
        }
    }
    fr_event_sub_stats before;
    fr_event_sub_stats_get(s, &before);

    fr_buf b = FR_BUF_INIT;
    int bad = 0;
    raw_send(raw, "no-nul-at-all", 13), bad++;
    char longtopic[300];
    memset(longtopic, 't', sizeof(longtopic));
    raw_send(raw, longtopic, sizeof(longtopic)), bad++;
    raw_send(raw, "\0\x80", 2), bad++;
    raw_send(raw, "t\0\xc1\xc1", 4), bad++;
    raw_send(raw, "t\0\x93\x01\x02\x03", 6), bad++;
    raw_send(raw, "t\0\x84", 3), bad++; /* a map that ends at once */
    for (size_t i = 0; i < sizeof(bad_maps) / sizeof(bad_maps[0]); i++) {
        craft(&b, "t", bad_maps[i].pairs, bad_maps[i].npairs);
        raw_send(raw, b.data, b.len), bad++;
    }
    assert_true(bad < 16); /* inside the PUB pipe queue: none dropped */
    fr_buf_reset(&good);
    assert_fr_ok(fr_event_encode("ok/after", "raw", 7, 99, NULL, 0, &good));
    raw_send(raw, good.data, good.len);

    recv_on(s, &ev, 5000);
    assert_string_equal(ev.topic, "ok/after");
    assert_int_equal(ev.seq, 7);
    assert_int_equal(ev.ts, 99);
    fr_event_free(&ev);
    fr_event_sub_stats st;
    fr_event_sub_stats_get(s, &st);
    assert_int_equal(st.malformed - before.malformed, (uint64_t)bad);
    fr_buf_free(&b);
    fr_buf_free(&good);
    fr_event_sub_close(s);
    nng_close(raw);
}

/* ---- several threads publishing on one topic ---- */

#define MT_THREADS 4
#define MT_EACH    2000

static void *publish_many(void *arg)
{
    fr_event_pub *p = arg;
    for (int i = 0; i < MT_EACH; i++) {
        if (fr_event_publish(p, "metrics/mt", NULL, 0) != 0) {
            return (void *)1;
        }
    }
    return NULL;
}

static void test_threads_publish(void **state)
{
    char url[64];
    make_url("tcp", url, sizeof(url));
    fr_event_pub *p = NULL;
    fr_event_sub *s = NULL;
    assert_fr_ok(fr_event_pub_open(&p, url, NULL, "pub-mt"));
    assert_fr_ok(fr_event_sub_open(&s, url, NULL));
    assert_fr_ok(fr_event_subscribe(s, "metrics/"));
    warm_up(p, s, "metrics/warmup");
    fr_event_sub_stats before;
    fr_event_sub_stats_get(s, &before);

    pthread_t th[MT_THREADS];
    for (int i = 0; i < MT_THREADS; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, publish_many, p), 0);
    }
    /* Whatever arrives must be in seq order: numbers are taken and sent
     * under one lock. The last one always arrives (oldest dropped first). */
    const uint64_t last = (uint64_t)MT_THREADS * MT_EACH;
    uint64_t prev = 0, first = 0, got = 0;
    fr_event ev;
    while (prev < last) {
        recv_on(s, &ev, 10000);
        assert_true(ev.seq > prev);
        if (first == 0) {
            first = ev.seq;
        }
        prev = ev.seq;
        got++;
        fr_event_free(&ev);
    }
    for (int i = 0; i < MT_THREADS; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        assert_null(ret);
    }
    fr_event_sub_stats st;
    fr_event_sub_stats_get(s, &st);
    assert_int_equal(got + (st.missed - before.missed), last - first + 1);
    assert_true(fr_event_pub_count(p) >= last);
    fr_event_sub_close(s);
    fr_event_pub_close(p);
}

static void test_bad_arguments(void **state)
{
    fr_event_pub *p = (fr_event_pub *)1;
    assert_int_not_equal(fr_event_pub_open(&p, "nosuch://x", NULL, "s"), 0);
    assert_null(p);
    assert_fr_ok(fr_event_pub_open(&p, "inproc://event-args", NULL, "s"));
    assert_int_equal(fr_event_publish(p, "", NULL, 0), FR_EINVAL);
    char topic[FR_TOPIC_MAX + 2];
    memset(topic, 'x', sizeof(topic) - 1);
    topic[sizeof(topic) - 1] = '\0';
    assert_int_equal(fr_event_publish(p, topic, NULL, 0), FR_ETOOBIG);
    assert_int_equal(fr_event_pub_count(p), 0);
    fr_event_sub *s = NULL;
    assert_fr_ok(fr_event_sub_open(&s, "inproc://event-args", NULL));
    fr_event ev;
    assert_fr_ok(fr_event_subscribe(s, ""));
    int64_t t0 = tst_mono_ms();
    assert_int_equal(fr_event_recv(s, 100, &ev), FR_ETIMEDOUT);
    assert_true(tst_mono_ms() - t0 >= 90);
    assert_int_equal(fr_event_recv(s, 0, &ev), FR_ETIMEDOUT);
    fr_event_sub_close(s);
    fr_event_pub_close(p);
    fr_event_pub_close(NULL);
    fr_event_sub_close(NULL);
}

int main(void)
{
    fr_log_init("event_test", FR_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_round_trip),
        cmocka_unit_test(test_codec_refuses),
        cmocka_unit_test(test_codec_matches_schema_example),
        cmocka_unit_test(test_in_order_inproc),
        cmocka_unit_test(test_in_order_ipc),
        cmocka_unit_test(test_in_order_tcp),
        cmocka_unit_test(test_gaps_counted),
        cmocka_unit_test(test_publisher_restart),
        cmocka_unit_test(test_malformed_skipped),
        cmocka_unit_test(test_threads_publish),
        cmocka_unit_test(test_bad_arguments),
    };
    int failed = cmocka_run_group_tests_name("event", tests, NULL, NULL);
    nng_fini();
    return failed;
}
