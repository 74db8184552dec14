/* The batch model and its codec: round trips, the canonical bytes against
 * msgpack-c's packer, and every class of malformed input with its code and
 * path. Malformed messages are written with msgpack-c, not with the encoder
 * under test. */
#include "testsupport.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "fresco/metric.h"

/* ---- helpers ---- */

static void pk_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pk_strn(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* What fr_batch_encode should write, through msgpack-c's packer. */
static void reference_tags(msgpack_packer *pk, const fr_tag *t, uint32_t n)
{
    msgpack_pack_map(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        pk_str(pk, t[i].key);
        pk_str(pk, t[i].value);
    }
}

static void reference_encode(const fr_batch *b, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    bool routed = b->route[0] != '\0';
    msgpack_pack_map(&pk, routed ? 7 : 6);
    pk_str(&pk, "v");
    msgpack_pack_uint64(&pk, 1);
    pk_str(&pk, "task");
    pk_str(&pk, b->task);
    pk_str(&pk, "src");
    pk_str(&pk, b->source);
    pk_str(&pk, "seq");
    msgpack_pack_uint64(&pk, b->seq);
    if (routed) {
        pk_str(&pk, "route");
        pk_str(&pk, b->route);
    }
    pk_str(&pk, "tags");
    reference_tags(&pk, b->tags, b->ntags);
    pk_str(&pk, "metrics");
    msgpack_pack_array(&pk, b->nmetrics);
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        const fr_metric *m = &b->metrics[i];
        msgpack_pack_array(&pk, 6);
        pk_str(&pk, m->ns);
        msgpack_pack_int64(&pk, m->ts);
        msgpack_pack_uint8(&pk, (uint8_t)m->value.type);
        switch (m->value.type) {
        case FR_VAL_INT64:
            msgpack_pack_int64(&pk, m->value.v.i);
            break;
        case FR_VAL_UINT64:
            msgpack_pack_uint64(&pk, m->value.v.u);
            break;
        case FR_VAL_DOUBLE:
            msgpack_pack_double(&pk, m->value.v.d);
            break;
        case FR_VAL_BOOL:
            if (m->value.v.b) {
                msgpack_pack_true(&pk);
            } else {
                msgpack_pack_false(&pk);
            }
            break;
        case FR_VAL_STRING:
            pk_strn(&pk, m->value.v.s.ptr, m->value.v.s.len);
            break;
        }
        pk_str(&pk, m->unit);
        reference_tags(&pk, m->tags, m->ntags);
    }
}

/* Encodes b, checks the bytes against msgpack-c's, decodes them, checks the
 * model and that re-encoding gives the same bytes again. */
static void check_round_trip(const fr_batch *b)
{
    fr_buf buf = FR_BUF_INIT;
    assert_fr_ok(fr_batch_encode(b, &buf));

    msgpack_sbuffer ref;
    msgpack_sbuffer_init(&ref);
    reference_encode(b, &ref);
    assert_int_equal(buf.len, ref.size);
    assert_memory_equal(buf.data, ref.data, ref.size);
    msgpack_sbuffer_destroy(&ref);

    fr_batch *d = NULL;
    fr_error err;
    int rv = fr_batch_decode(buf.data, buf.len, &d, &err);
    if (rv != 0) {
        fail_msg("decode: %d %s (%s)", rv, err.message, err.where);
    }
    assert_true(fr_batch_equal(b, d));

    fr_buf again = FR_BUF_INIT;
    assert_fr_ok(fr_batch_encode(d, &again));
    assert_int_equal(again.len, buf.len);
    assert_memory_equal(again.data, buf.data, buf.len);

    char src[256];
    uint64_t seq = 0;
    assert_fr_ok(fr_batch_peek(buf.data, buf.len, src, sizeof(src), &seq, &err));
    assert_string_equal(src, b->source);
    assert_true(seq == b->seq);

    fr_buf_free(&again);
    fr_buf_free(&buf);
    fr_batch_destroy(d);
}

/* ---- round trips ---- */

static void test_every_value_type(void **state)
{
    fr_batch *b = fr_batch_new("task-1", "node-a", 7);
    assert_non_null(b);
    assert_fr_ok(fr_batch_add_tag(b, "dc", "eu-west"));
    assert_fr_ok(fr_batch_add_tag(b, "rack", "r12"));

    static const int64_t ints[] = {0,
                                   1,
                                   -1,
                                   31,
                                   -32,
                                   -33,
                                   127,
                                   128,
                                   255,
                                   256,
                                   -128,
                                   -129,
                                   65535,
                                   65536,
                                   -32768,
                                   -32769,
                                   INT32_MAX,
                                   INT32_MIN,
                                   4294967295LL,
                                   4294967296LL,
                                   (int64_t)INT32_MIN - 1,
                                   INT64_MAX,
                                   INT64_MIN};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        assert_non_null(fr_batch_add(b, "/test/int", ints[i], fr_val_i64(ints[i]), "B"));
    }
    static const uint64_t uints[] = {0,
                                     127,
                                     128,
                                     255,
                                     256,
                                     65535,
                                     65536,
                                     UINT32_MAX,
                                     (uint64_t)UINT32_MAX + 1,
                                     INT64_MAX,
                                     (uint64_t)INT64_MAX + 1,
                                     UINT64_MAX};
    for (size_t i = 0; i < sizeof(uints) / sizeof(uints[0]); i++) {
        assert_non_null(fr_batch_add(b, "/test/uint", 1, fr_val_u64(uints[i]), NULL));
    }
    const double dbls[] = {0.0,    -0.0, 1.5,  -2.25,    DBL_MAX,   DBL_MIN,
                           5e-324, NAN,  -NAN, INFINITY, -INFINITY, 0.1};
    for (size_t i = 0; i < sizeof(dbls) / sizeof(dbls[0]); i++) {
        assert_non_null(fr_batch_add(b, "/test/double", 2, fr_val_f64(dbls[i]), "%"));
    }
    assert_non_null(fr_batch_add(b, "/test/bool", 3, fr_val_bool(true), ""));
    assert_non_null(fr_batch_add(b, "/test/bool", 3, fr_val_bool(false), ""));

    assert_non_null(fr_batch_add(b, "/test/str", 4, fr_val_str(""), ""));
    assert_non_null(fr_batch_add(b, "/test/str", 4,
                                 fr_val_str("h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x9a\x80"), ""));
    static const size_t lens[] = {31, 32, 255, 256, 65535, FR_MAX_STRING};
    char *big = malloc(FR_MAX_STRING + 1);
    assert_non_null(big);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        memset(big, 'a' + (int)i, lens[i]);
        big[lens[i]] = '\0';
        fr_metric *m = fr_batch_add(b, "/test/long", 5, fr_val_str(big), big);
        assert_non_null(m);
        assert_fr_ok(fr_batch_metric_tag(b, m, big, big));
    }
    free(big);
    /* A string value keeps its length, NUL bytes included. */
    fr_value nul = {.type = FR_VAL_STRING};
    nul.v.s.ptr = "a\0b";
    nul.v.s.len = 3;
    fr_metric *m = fr_batch_add(b, "/test/nul", 6, nul, "");
    assert_non_null(m);
    assert_int_equal(m->value.v.s.len, 3);
    assert_memory_equal(m->value.v.s.ptr, "a\0b", 4);

    /* 15 and 16 tags straddle the fixmap limit. */
    for (int n = 15; n <= 16; n++) {
        m = fr_batch_add(b, "/test/tags", 7, fr_val_i64(n), "");
        for (int i = 0; i < n; i++) {
            char k[16];
            snprintf(k, sizeof(k), "k%d", i);
            assert_fr_ok(fr_batch_metric_tag(b, m, k, "v"));
        }
    }
    check_round_trip(b);
    fr_batch_destroy(b);
}

static void test_empty_batch(void **state)
{
    fr_batch *b = fr_batch_new(NULL, "", 0);
    assert_string_equal(b->task, "");
    check_round_trip(b);
    fr_buf buf = FR_BUF_INIT;
    assert_fr_ok(fr_batch_encode(b, &buf));
    static const uint8_t want[] = {0x86, 0xa1, 'v',  1,   0xa4, 't',  'a',  's',  'k',
                                   0xa0, 0xa3, 's',  'r', 'c',  0xa0, 0xa3, 's',  'e',
                                   'q',  0,    0xa4, 't', 'a',  'g',  's',  0x80, 0xa7,
                                   'm',  'e',  't',  'r', 'i',  'c',  's',  0x90};
    assert_int_equal(buf.len, sizeof(want));
    assert_memory_equal(buf.data, want, sizeof(want));
    fr_buf_free(&buf);
    fr_batch_destroy(b);
}

static void test_large_batch(void **state)
{
    fr_batch *b = fr_batch_new("big", "node-b", UINT64_MAX);
    for (uint32_t i = 0; i < 100000; i++) {
        char ns[64];
        snprintf(ns, sizeof(ns), "/intel/psutil/cpu/cpu%u/user", i % 64);
        fr_metric *m;
        switch (i % 5) {
        case 0:
            m = fr_batch_add(b, ns, 1700000000000000000LL + i, fr_val_i64(-(int64_t)i), "ns");
            break;
        case 1:
            m = fr_batch_add(b, ns, 1700000000000000000LL + i, fr_val_u64(i * 1000003ull), "B");
            break;
        case 2:
            m = fr_batch_add(b, ns, 1700000000000000000LL + i, fr_val_f64(i / 7.0), "%");
            break;
        case 3:
            m = fr_batch_add(b, ns, 1700000000000000000LL + i, fr_val_bool(i & 8), "");
            break;
        default:
            m = fr_batch_add(b, ns, 1700000000000000000LL + i, fr_val_str(ns), "");
            break;
        }
        assert_non_null(m);
        if (i % 3 == 0) {
            assert_fr_ok(fr_batch_metric_tag(b, m, "host", "node-b"));
            assert_fr_ok(fr_batch_metric_tag(b, m, "cpu", ns + 18));
        }
    }
    assert_int_equal(b->nmetrics, 100000);
    check_round_trip(b);

    /* 65536 metrics need the 32-bit array header. */
    b->nmetrics = 65536;
    check_round_trip(b);
    b->nmetrics = 65535;
    check_round_trip(b);
    fr_batch_destroy(b);
}

static void test_builder(void **state)
{
    fr_batch *b = fr_batch_new("t", "s", 1);
    fr_metric *m1 = fr_batch_add(b, "/a", 1, fr_val_i64(1), NULL);
    assert_string_equal(m1->unit, "");
    fr_metric *m2 = fr_batch_add(b, "/b", 2, fr_val_i64(2), "u");
    /* Only the most recent metric takes tags. */
    assert_int_equal(fr_batch_metric_tag(b, &b->metrics[0], "k", "v"), FR_EINVAL);
    for (unsigned i = 0; i < FR_MAX_TAGS; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%u", i);
        assert_fr_ok(fr_batch_metric_tag(b, m2, k, "v"));
    }
    assert_int_equal(fr_batch_metric_tag(b, m2, "one", "more"), FR_ETOOBIG);
    for (unsigned i = 0; i < FR_MAX_TAGS; i++) {
        assert_fr_ok(fr_batch_add_tag(b, "k", "v"));
    }
    assert_int_equal(fr_batch_add_tag(b, "k", "v"), FR_ETOOBIG);

    /* A reset batch is empty and reusable, and encodes like a new one;
     * its own envelope may be handed back to it. */
    assert_fr_ok(fr_batch_reset(b, "t2", "s2", 9));
    assert_fr_ok(fr_batch_reset(b, b->task, b->source, b->seq));
    assert_string_equal(b->task, "t2");
    assert_string_equal(b->source, "s2");
    assert_int_equal(b->nmetrics, 0);
    assert_int_equal(b->ntags, 0);
    fr_metric *m = fr_batch_add(b, "/c", 3, fr_val_str("x"), "u");
    assert_fr_ok(fr_batch_metric_tag(b, m, "a", "b"));
    fr_batch *fresh = fr_batch_new("t2", "s2", 9);
    m = fr_batch_add(fresh, "/c", 3, fr_val_str("x"), "u");
    assert_fr_ok(fr_batch_metric_tag(fresh, m, "a", "b"));
    assert_true(fr_batch_equal(b, fresh));
    fr_batch_metric_tag(fresh, m, "c", "d");
    assert_false(fr_batch_equal(b, fresh));
    check_round_trip(b);
    fr_batch_destroy(fresh);

    /* Tags can be added to a decoded batch and its last metric. */
    fr_buf buf = FR_BUF_INIT;
    assert_fr_ok(fr_batch_encode(b, &buf));
    fr_batch *d;
    assert_fr_ok(fr_batch_decode(buf.data, buf.len, &d, NULL));
    assert_fr_ok(fr_batch_add_tag(d, "x", "y"));
    assert_fr_ok(fr_batch_metric_tag(d, &d->metrics[0], "e", "f"));
    assert_int_equal(d->metrics[0].ntags, 2);
    assert_string_equal(d->metrics[0].tags[0].key, "a");
    assert_string_equal(d->metrics[0].tags[1].value, "f");
    assert_non_null(fr_batch_add(d, "/d", 4, fr_val_bool(true), NULL));
    check_round_trip(d);
    fr_batch_destroy(d);
    fr_buf_free(&buf);

    assert_string_equal(fr_value_type_name(FR_VAL_INT64), "int64");
    assert_string_equal(fr_value_type_name(FR_VAL_UINT64), "uint64");
    assert_string_equal(fr_value_type_name(FR_VAL_DOUBLE), "double");
    assert_string_equal(fr_value_type_name(FR_VAL_BOOL), "bool");
    assert_string_equal(fr_value_type_name(FR_VAL_STRING), "string");
    assert_string_equal(fr_value_type_name((fr_value_type)9), "unknown");
    fr_batch_destroy(b);
    fr_batch_destroy(NULL);
}

/* Asserts every length of b's model equals its string's. */
static void assert_lengths(const fr_batch *b)
{
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        const fr_metric *m = &b->metrics[i];
        assert_int_equal(m->ns_len, strlen(m->ns));
        assert_int_equal(m->unit_len, strlen(m->unit));
        for (uint32_t j = 0; j < m->ntags; j++) {
            assert_int_equal(m->tags[j].key_len, strlen(m->tags[j].key));
            assert_int_equal(m->tags[j].value_len, strlen(m->tags[j].value));
        }
    }
    for (uint32_t j = 0; j < b->ntags; j++) {
        assert_int_equal(b->tags[j].key_len, strlen(b->tags[j].key));
        assert_int_equal(b->tags[j].value_len, strlen(b->tags[j].value));
    }
}

/* Strings of every length around the encoder's and decoder's word-sized
 * copies, each byte different, so a misplaced byte shows. */
static void test_string_lengths(void **state)
{
    fr_batch *b = fr_batch_new("t", "s", 1);
    char s1[160], s2[160];
    for (size_t n = 0; n < 140; n++) {
        for (size_t i = 0; i < n; i++) {
            s1[i] = (char)('!' + (i * 7 + n) % 90);
            s2[i] = (char)('!' + (i * 13 + n) % 90);
        }
        s1[n] = s2[n] = '\0';
        fr_metric *m = fr_batch_add(b, s1, (int64_t)n, fr_val_str(s2), s2);
        assert_non_null(m);
        assert_fr_ok(fr_batch_metric_tag(b, m, s2, s1));
        char k[16];
        snprintf(k, sizeof(k), "k%zu", n);
        assert_fr_ok(fr_batch_metric_tag(b, m, k, s2));
    }
    assert_fr_ok(fr_batch_add_tag(b, "dc", "eu-west-1"));
    assert_lengths(b);
    check_round_trip(b);

    fr_buf buf = FR_BUF_INIT;
    assert_fr_ok(fr_batch_encode(b, &buf));
    fr_batch *d;
    assert_fr_ok(fr_batch_decode(buf.data, buf.len, &d, NULL));
    assert_lengths(d);
    fr_batch_destroy(d);
    fr_buf_free(&buf);
    fr_batch_destroy(b);
}

/* A length of 0 means "measure it": structs filled by hand, or strings
 * pointed elsewhere with their length cleared, encode as before. */
static void test_unknown_lengths(void **state)
{
    fr_batch *b = fr_batch_new("t", "s", 1);
    fr_metric *m = fr_batch_add(b, "/a/b", 1, fr_val_i64(1), "KiB");
    assert_fr_ok(fr_batch_metric_tag(b, m, "host", "node-1"));
    assert_fr_ok(fr_batch_add_tag(b, "rack", "r1"));
    fr_buf want = FR_BUF_INIT, got = FR_BUF_INIT;
    assert_fr_ok(fr_batch_encode(b, &want));

    m->ns_len = 0;
    m->unit_len = 0;
    m->tags[0].key_len = 0;
    m->tags[0].value_len = 0;
    b->tags[0].key_len = 0;
    b->tags[0].value_len = 0;
    assert_fr_ok(fr_batch_encode(b, &got));
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);

    /* Tags filled by hand, lengths left out. */
    fr_tag tags[] = {{.key = "host", .value = "node-1"}};
    m->tags = tags;
    m->ns = "/a/b";
    fr_buf_reset(&got);
    assert_fr_ok(fr_batch_encode(b, &got));
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);

    /* Another namespace, its length cleared; and an empty unit. */
    m->ns = "/a/c";
    m->unit = "";
    fr_buf_reset(&got);
    assert_fr_ok(fr_batch_encode(b, &got));
    fr_batch *d;
    assert_fr_ok(fr_batch_decode(got.data, got.len, &d, NULL));
    assert_string_equal(d->metrics[0].ns, "/a/c");
    assert_int_equal(d->metrics[0].ns_len, 4);
    assert_string_equal(d->metrics[0].unit, "");
    assert_int_equal(d->metrics[0].unit_len, 0);
    fr_batch_destroy(d);

    /* Too long is refused whether the length was stored or measured. */
    char *big = malloc(FR_MAX_NAMESPACE + 2);
    memset(big, 'n', FR_MAX_NAMESPACE + 1);
    big[FR_MAX_NAMESPACE + 1] = '\0';
    m->ns = big;
    assert_int_equal(fr_batch_encode(b, &got), FR_EINVAL);
    m->ns_len = FR_MAX_NAMESPACE + 1;
    assert_int_equal(fr_batch_encode(b, &got), FR_EINVAL);
    m->ns = "/a/b";
    m->ns_len = 4;
    free(big);

    /* Measured lengths are not written back: the batch is const. */
    assert_int_equal(m->unit_len, 0);
    fr_buf_free(&want);
    fr_buf_free(&got);
    fr_batch_destroy(b);
}

/* A decoded batch keeps its metrics in its arena; appending moves them out,
 * and a reset batch starts a fresh array. */
static void test_decoded_batch_grows(void **state)
{
    fr_batch *b = fr_batch_new("t", "s", 1);
    for (int i = 0; i < 40; i++) {
        char ns[32];
        snprintf(ns, sizeof(ns), "/m/%d", i);
        fr_metric *m = fr_batch_add(b, ns, i, fr_val_i64(i), "u");
        assert_fr_ok(fr_batch_metric_tag(b, m, "i", ns + 3));
    }
    fr_buf buf = FR_BUF_INIT;
    assert_fr_ok(fr_batch_encode(b, &buf));
    fr_batch *d;
    assert_fr_ok(fr_batch_decode(buf.data, buf.len, &d, NULL));
    for (int i = 40; i < 100; i++) {
        char ns[32];
        snprintf(ns, sizeof(ns), "/m/%d", i);
        fr_metric *m = fr_batch_add(d, ns, i, fr_val_i64(i), "u");
        assert_non_null(m);
        assert_fr_ok(fr_batch_metric_tag(d, m, "i", ns + 3));
        m = fr_batch_add(b, ns, i, fr_val_i64(i), "u");
        assert_fr_ok(fr_batch_metric_tag(b, m, "i", ns + 3));
    }
    assert_true(fr_batch_equal(b, d));
    check_round_trip(d);
    fr_batch_destroy(d);

    assert_fr_ok(fr_batch_decode(buf.data, buf.len, &d, NULL));
    assert_fr_ok(fr_batch_reset(d, d->task, d->source, 2));
    assert_non_null(fr_batch_add(d, "/x", 1, fr_val_bool(true), NULL));
    assert_int_equal(d->nmetrics, 1);
    assert_string_equal(d->metrics[0].ns, "/x");
    check_round_trip(d);
    fr_batch_destroy(d);
    fr_buf_free(&buf);
    fr_batch_destroy(b);
}

/* Threads decoding batches of different sizes at once, so that chunks go
 * back and forth between the shared pool and arenas of every size. */
typedef struct pool_job {
    const fr_buf *wire;
    size_t nwire;
    const fr_batch *const *want;
    unsigned seed;
    int failures;
} pool_job;

static void *pool_worker(void *arg)
{
    pool_job *j = arg;
    fr_batch *held[4] = {NULL};
    for (int round = 0; round < 400; round++) {
        j->seed = j->seed * 1103515245u + 12345u;
        size_t k = (j->seed >> 16) % j->nwire;
        fr_batch *d = NULL;
        if (fr_batch_decode(j->wire[k].data, j->wire[k].len, &d, NULL) != 0 ||
            !fr_batch_equal(d, j->want[k])) {
            j->failures++;
        }
        /* Keep a few alive a while, so destroys come out of order. */
        size_t h = (j->seed >> 8) % 4;
        fr_batch_destroy(held[h]);
        held[h] = d;
    }
    for (int h = 0; h < 4; h++) {
        fr_batch_destroy(held[h]);
    }
    return NULL;
}

static void test_shared_chunk_pool(void **state)
{
    enum { SIZES = 5, THREADS = 4 };
    static const uint32_t counts[SIZES] = {0, 3, 300, 3000, 30000};
    fr_batch *want[SIZES];
    fr_buf wire[SIZES];
    for (int s = 0; s < SIZES; s++) {
        want[s] = fr_batch_new("pool", "node", (uint64_t)s);
        for (uint32_t i = 0; i < counts[s]; i++) {
            char ns[48];
            snprintf(ns, sizeof(ns), "/intel/pool/%u/%u", s, i);
            fr_metric *m = fr_batch_add(want[s], ns, i, fr_val_u64(i), "B");
            assert_fr_ok(fr_batch_metric_tag(want[s], m, "domain", ns + 12));
        }
        wire[s] = (fr_buf)FR_BUF_INIT;
        assert_fr_ok(fr_batch_encode(want[s], &wire[s]));
    }
    pthread_t th[THREADS];
    pool_job jobs[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (pool_job){.wire = wire,
                             .nwire = SIZES,
                             .want = (const fr_batch *const *)want,
                             .seed = (unsigned)t + 1};
        assert_int_equal(pthread_create(&th[t], NULL, pool_worker, &jobs[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(jobs[t].failures, 0);
    }
    for (int s = 0; s < SIZES; s++) {
        fr_buf_free(&wire[s]);
        fr_batch_destroy(want[s]);
    }
}

static void test_encode_refuses(void **state)
{
    fr_buf buf = FR_BUF_INIT;
    fr_batch *b = fr_batch_new("t", "s", 1);
    char *big = malloc(FR_MAX_STRING + 2);
    memset(big, 'x', FR_MAX_STRING + 1);
    big[FR_MAX_STRING + 1] = '\0';

    /* Whatever the decoder would refuse, the encoder refuses first, and
     * leaves the buffer as it was. */
    assert_fr_ok(fr_buf_append(&buf, "keep", 4));
    big[FR_MAX_NAMESPACE + 1] = '\0';
    assert_non_null(fr_batch_add(b, big, 1, fr_val_i64(1), NULL));
    assert_int_equal(fr_batch_encode(b, &buf), FR_EINVAL);
    assert_int_equal(buf.len, 4);
    big[FR_MAX_NAMESPACE + 1] = 'x';

    assert_fr_ok(fr_batch_reset(b, "t", "s", 1));
    assert_non_null(fr_batch_add(b, "/a", 1, fr_val_str(big), NULL));
    assert_int_equal(fr_batch_encode(b, &buf), FR_EINVAL);

    assert_fr_ok(fr_batch_reset(b, "t", "s", 1));
    fr_metric *m = fr_batch_add(b, "/a", 1, fr_val_i64(1), NULL);
    assert_fr_ok(fr_batch_metric_tag(b, m, "k", big));
    assert_int_equal(fr_batch_encode(b, &buf), FR_EINVAL);

    assert_fr_ok(fr_batch_reset(b, big, "s", 1));
    assert_int_equal(fr_batch_encode(b, &buf), FR_EINVAL);

    assert_fr_ok(fr_batch_reset(b, "t", "s", 1));
    fr_value bad = {.type = (fr_value_type)5};
    assert_non_null(fr_batch_add(b, "/a", 1, bad, NULL));
    assert_int_equal(fr_batch_encode(b, &buf), FR_EINVAL);

    assert_fr_ok(fr_batch_reset(b, "t", "s", 1));
    b->version = 2;
    assert_int_equal(fr_batch_encode(b, &buf), FR_EINVAL);
    assert_int_equal(buf.len, 4);
    free(big);
    fr_buf_free(&buf);
    fr_batch_destroy(b);
}

/* ---- hand-written messages ----
 * A standard batch, written element by element; an override replaces (or,
 * with omit, leaves out) the element at one path, and the offset where each
 * element starts is recorded with its path. */

typedef void (*pack_fn)(msgpack_packer *pk);

typedef struct span {
    size_t off;
    char path[48];
} span;

typedef struct msg {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    const char *path; /* element to override, or NULL */
    pack_fn fn;       /* writes the replacement; NULL = omit the element */
    span spans[128];
    int nspans;
} msg;

static bool at(msg *w, const char *path)
{
    assert_true(w->nspans < 128);
    span *s = &w->spans[w->nspans++];
    s->off = w->sb.size;
    snprintf(s->path, sizeof(s->path), "%s", path);
    if (w->path != NULL && strcmp(w->path, path) == 0) {
        if (w->fn != NULL) {
            w->fn(&w->pk);
        }
        return true;
    }
    return false;
}

/* A map entry whose value lives at path: omitting it drops the key too. */
static bool entry(msg *w, const char *map_path, const char *key, const char *path)
{
    if (w->path != NULL && w->fn == NULL && strcmp(w->path, path) == 0) {
        return true;
    }
    if (!at(w, map_path)) {
        pk_str(&w->pk, key);
    }
    return at(w, path);
}

static void write_tags(msg *w, const char *path, const char *value)
{
    char p[48];
    snprintf(p, sizeof(p), "%s.host", path);
    bool omit = w->path != NULL && w->fn == NULL && strcmp(w->path, p) == 0;
    if (at(w, path)) {
        return;
    }
    msgpack_pack_map(&w->pk, omit ? 0 : 1);
    if (!entry(w, path, "host", p)) {
        pk_str(&w->pk, value);
    }
}

static void write_metric(msg *w, int i)
{
    char p[48];
    snprintf(p, sizeof(p), "metrics[%d]", i);
    if (at(w, p)) {
        return;
    }
    msgpack_pack_array(&w->pk, 6);
    snprintf(p, sizeof(p), "metrics[%d][0]", i);
    if (!at(w, p)) {
        pk_str(&w->pk, i == 0 ? "/intel/psutil/load/load1" : "/intel/procfs/meminfo/free");
    }
    snprintf(p, sizeof(p), "metrics[%d][1]", i);
    if (!at(w, p)) {
        msgpack_pack_int64(&w->pk, 1700000000123456789LL + i);
    }
    snprintf(p, sizeof(p), "metrics[%d][2]", i);
    if (!at(w, p)) {
        msgpack_pack_uint8(&w->pk, i == 0 ? FR_VAL_DOUBLE : FR_VAL_INT64);
    }
    snprintf(p, sizeof(p), "metrics[%d][3]", i);
    if (!at(w, p)) {
        if (i == 0) {
            msgpack_pack_double(&w->pk, 0.25);
        } else {
            msgpack_pack_int64(&w->pk, -123456);
        }
    }
    snprintf(p, sizeof(p), "metrics[%d][4]", i);
    if (!at(w, p)) {
        pk_str(&w->pk, i == 0 ? "" : "KiB");
    }
    snprintf(p, sizeof(p), "metrics[%d][5]", i);
    write_tags(w, p, i == 0 ? "node-1" : "node-2");
}

static size_t count_present(const msg *w, const char *const *paths, size_t n)
{
    size_t c = n;
    for (size_t i = 0; i < n; i++) {
        if (w->path != NULL && w->fn == NULL && strcmp(w->path, paths[i]) == 0) {
            c--;
        }
    }
    return c;
}

static void write_batch(msg *w, const char *path, pack_fn fn)
{
    static const char *const keys[] = {"v", "task", "src", "seq", "tags", "metrics"};
    msgpack_sbuffer_init(&w->sb);
    msgpack_packer_init(&w->pk, &w->sb, msgpack_sbuffer_write);
    w->path = path;
    w->fn = fn;
    w->nspans = 0;
    if (at(w, "")) {
        return;
    }
    msgpack_pack_map(&w->pk, count_present(w, keys, 6));
    if (!entry(w, "", "v", "v")) {
        msgpack_pack_uint8(&w->pk, 1);
    }
    if (!entry(w, "", "task", "task")) {
        pk_str(&w->pk, "task-7");
    }
    if (!entry(w, "", "src", "src")) {
        pk_str(&w->pk, "node-1");
    }
    if (!entry(w, "", "seq", "seq")) {
        msgpack_pack_uint64(&w->pk, 300);
    }
    if (!entry(w, "", "tags", "tags")) {
        write_tags(w, "tags", "rack-3");
    }
    if (!entry(w, "", "metrics", "metrics")) {
        msgpack_pack_array(&w->pk, 2);
        write_metric(w, 0);
        write_metric(w, 1);
    }
}

static void msg_free(msg *w)
{
    msgpack_sbuffer_destroy(&w->sb);
}

/* Decodes w and asserts the failure code and path. */
static void expect_fail(const void *data, size_t len, int code, const char *where)
{
    fr_batch *b = (fr_batch *)1;
    fr_error err;
    int rv = fr_batch_decode(data, len, &b, &err);
    if (rv != code || strcmp(err.where, where) != 0) {
        fail_msg("got %d (%s) at \"%s\", want %d (%s) at \"%s\": %s", rv, fr_strerror(rv),
                 err.where, code, fr_strerror(code), where, err.message);
    }
    assert_int_equal(err.code, code);
    assert_true(err.message[0] != '\0');
    assert_null(b);
}

static void test_standard_message_decodes(void **state)
{
    msg w;
    write_batch(&w, NULL, NULL);
    fr_batch *b;
    fr_error err;
    assert_fr_ok(fr_batch_decode(w.sb.data, w.sb.size, &b, &err));
    assert_int_equal(b->version, 1);
    assert_string_equal(b->task, "task-7");
    assert_string_equal(b->source, "node-1");
    assert_true(b->seq == 300);
    assert_int_equal(b->ntags, 1);
    assert_string_equal(b->tags[0].key, "host");
    assert_string_equal(b->tags[0].value, "rack-3");
    assert_int_equal(b->nmetrics, 2);
    assert_string_equal(b->metrics[0].ns, "/intel/psutil/load/load1");
    assert_true(b->metrics[0].ts == 1700000000123456789LL);
    assert_int_equal(b->metrics[0].value.type, FR_VAL_DOUBLE);
    assert_true(b->metrics[0].value.v.d == 0.25);
    assert_string_equal(b->metrics[0].unit, "");
    assert_int_equal(b->metrics[1].value.type, FR_VAL_INT64);
    assert_true(b->metrics[1].value.v.i == -123456);
    assert_string_equal(b->metrics[1].unit, "KiB");
    assert_string_equal(b->metrics[1].tags[0].value, "node-2");

    /* The standard message is canonical: encoding gives it back. */
    fr_buf buf = FR_BUF_INIT;
    assert_fr_ok(fr_batch_encode(b, &buf));
    assert_int_equal(buf.len, w.sb.size);
    assert_memory_equal(buf.data, w.sb.data, buf.len);
    fr_buf_free(&buf);
    fr_batch_destroy(b);
    msg_free(&w);
}

/* The string some tests write in place of one element. */
static char g_str[160];
static size_t g_len;

static void pk_g_str(msgpack_packer *pk)
{
    pk_strn(pk, g_str, g_len);
}

/* A NUL byte anywhere in a namespace, unit, tag or envelope string is
 * refused, whatever the string's length; without one, the string comes
 * through intact. */
static void test_nul_anywhere(void **state)
{
    static const char *const paths[] = {"metrics[0][0]", "metrics[1][4]", "metrics[0][5].host",
                                        "tags.host", "src"};
    for (size_t n = 1; n < 100; n++) {
        for (size_t i = 0; i < n; i++) {
            g_str[i] = (char)('a' + (i + n) % 26);
        }
        g_len = n;
        for (size_t k = 0; k < sizeof(paths) / sizeof(paths[0]); k++) {
            msg w;
            write_batch(&w, paths[k], pk_g_str);
            fr_batch *b;
            fr_error err;
            assert_fr_ok(fr_batch_decode(w.sb.data, w.sb.size, &b, &err));
            const char *got = k == 0   ? b->metrics[0].ns
                              : k == 1 ? b->metrics[1].unit
                              : k == 2 ? b->metrics[0].tags[0].value
                              : k == 3 ? b->tags[0].value
                                       : b->source;
            assert_int_equal(strlen(got), n);
            assert_memory_equal(got, g_str, n);
            fr_batch_destroy(b);
            msg_free(&w);
            for (size_t at_ = 0; at_ < n; at_++) {
                char keep = g_str[at_];
                g_str[at_] = '\0';
                write_batch(&w, paths[k], pk_g_str);
                expect_fail(w.sb.data, w.sb.size, FR_EINVAL, paths[k]);
                msg_free(&w);
                g_str[at_] = keep;
            }
        }
    }
}

/* Whether where names the element at path or one of its containers. */
static bool is_ancestor_or_self(const char *where, const char *path)
{
    size_t n = strlen(where);
    return strncmp(where, path, n) == 0 &&
           (n == 0 || path[n] == '\0' || path[n] == '[' || path[n] == '.');
}

static void test_truncated_everywhere(void **state)
{
    msg w;
    write_batch(&w, NULL, NULL);
    assert_true(w.sb.size > 100);
    for (size_t len = 0; len < w.sb.size; len++) {
        /* The element holding the first missing byte. */
        const char *path = "";
        for (int i = 0; i < w.nspans && w.spans[i].off <= len; i++) {
            path = w.spans[i].path;
        }
        uint8_t *copy = malloc(len + 1);
        memcpy(copy, w.sb.data, len);
        fr_batch *b = NULL;
        fr_error err;
        int rv = fr_batch_decode(copy, len, &b, &err);
        if (rv != FR_ETRUNC) {
            fail_msg("prefix of %zu bytes: %d (%s)", len, rv, err.message);
        }
        /* A container that claims more than the rest could hold is refused
         * at its own path; otherwise the path is exact. */
        bool ok = strstr(err.message, "claimed") != NULL ? is_ancestor_or_self(err.where, path)
                                                         : strcmp(err.where, path) == 0;
        if (!ok) {
            fail_msg("prefix of %zu bytes: at \"%s\", want \"%s\": %s", len, err.where, path,
                     err.message);
        }
        assert_null(b);

        /* Peek reads up to the end of seq, where the key "tags" (5 bytes)
         * starts, and no further. */
        size_t seq_end = 0;
        for (int i = 0; i < w.nspans; i++) {
            if (strcmp(w.spans[i].path, "tags") == 0) {
                seq_end = w.spans[i].off - 5;
                break;
            }
        }
        char src[32];
        uint64_t seq = 0;
        rv = fr_batch_peek(copy, len, src, sizeof(src), &seq, &err);
        if (len < seq_end) {
            assert_int_equal(rv, FR_ETRUNC);
        } else {
            assert_fr_ok(rv);
            assert_string_equal(src, "node-1");
            assert_true(seq == 300);
        }
        free(copy);
    }
    msg_free(&w);
}

static void pk_nil(msgpack_packer *pk)
{
    msgpack_pack_nil(pk);
}
static void pk_int_minus1(msgpack_packer *pk)
{
    msgpack_pack_int64(pk, -1);
}
static void pk_uint_2(msgpack_packer *pk)
{
    msgpack_pack_uint64(pk, 2);
}
static void pk_uint_0(msgpack_packer *pk)
{
    msgpack_pack_uint64(pk, 0);
}
static void pk_uint_5(msgpack_packer *pk)
{
    msgpack_pack_uint64(pk, 5);
}
static void pk_uint_42(msgpack_packer *pk)
{
    msgpack_pack_uint64(pk, 42);
}
static void pk_uint_big(msgpack_packer *pk)
{
    msgpack_pack_uint64(pk, (uint64_t)INT64_MAX + 1);
}
static void pk_str_x(msgpack_packer *pk)
{
    pk_str(pk, "x");
}
static void pk_bin(msgpack_packer *pk)
{
    msgpack_pack_bin(pk, 1);
    msgpack_pack_bin_body(pk, "x", 1);
}
static void pk_true(msgpack_packer *pk)
{
    msgpack_pack_true(pk);
}
static void pk_double(msgpack_packer *pk)
{
    msgpack_pack_double(pk, 1.5);
}
static void pk_float(msgpack_packer *pk)
{
    msgpack_pack_float(pk, 2.5f);
}
static void pk_empty_map(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 0);
}
static void pk_empty_array(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 0);
}
static void pk_ext(msgpack_packer *pk)
{
    msgpack_pack_ext(pk, 1, 5);
    msgpack_pack_ext_body(pk, "x", 1);
}
static void pk_str_nul(msgpack_packer *pk)
{
    pk_strn(pk, "/a\0b", 4);
}
static void pk_tags_intval(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_str(pk, "host");
    msgpack_pack_int64(pk, 3);
}
static void pk_tags_intkey(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    msgpack_pack_int64(pk, 3);
    pk_str(pk, "x");
}
static void pk_tags_dup(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_str(pk, "host");
    pk_str(pk, "a");
    pk_str(pk, "rack");
    pk_str(pk, "b");
    pk_str(pk, "host");
    pk_str(pk, "c");
}
/* Past the size where duplicates are found with a hash table. */
static void pk_tags_dup_many(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 200);
    for (int i = 0; i < 200; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%d", i == 150 ? 17 : i);
        pk_str(pk, k);
        pk_str(pk, "v");
    }
}
static void pk_tags_too_many(msgpack_packer *pk)
{
    msgpack_pack_map(pk, FR_MAX_TAGS + 1);
    for (unsigned i = 0; i <= FR_MAX_TAGS; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%u", i);
        pk_str(pk, k);
        pk_str(pk, "v");
    }
}
static void pk_tags_max(msgpack_packer *pk)
{
    msgpack_pack_map(pk, FR_MAX_TAGS);
    for (unsigned i = 0; i < FR_MAX_TAGS; i++) {
        char k[16];
        snprintf(k, sizeof(k), "k%u", i);
        pk_str(pk, k);
        pk_str(pk, "v");
    }
}
static void pk_metric_5(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 5);
    pk_str(pk, "/a");
    msgpack_pack_int64(pk, 1);
    msgpack_pack_uint8(pk, 0);
    msgpack_pack_int64(pk, 1);
    pk_str(pk, "");
}
static void pk_metric_7(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 7);
    pk_str(pk, "/a");
    msgpack_pack_int64(pk, 1);
    msgpack_pack_uint8(pk, 0);
    msgpack_pack_int64(pk, 1);
    pk_str(pk, "");
    msgpack_pack_map(pk, 0);
    msgpack_pack_nil(pk);
}
static void pk_ns_too_long(msgpack_packer *pk)
{
    char s[FR_MAX_NAMESPACE + 1];
    memset(s, 'n', sizeof(s));
    pk_strn(pk, s, sizeof(s));
}
static void pk_ns_max(msgpack_packer *pk)
{
    char s[FR_MAX_NAMESPACE];
    memset(s, 'n', sizeof(s));
    pk_strn(pk, s, sizeof(s));
}
static void pk_str_too_long(msgpack_packer *pk)
{
    char *s = calloc(1, FR_MAX_STRING + 1);
    pk_strn(pk, s, FR_MAX_STRING + 1);
    free(s);
}

static void test_wrong_types(void **state)
{
    static const struct {
        const char *path;
        pack_fn fn;
        int code;
        const char *where;
    } cases[] = {
        {"", pk_empty_array, FR_ETYPE, ""},
        {"", pk_str_x, FR_ETYPE, ""},
        {"v", pk_str_x, FR_ETYPE, "v"},
        {"v", pk_int_minus1, FR_ETYPE, "v"},
        {"v", pk_double, FR_ETYPE, "v"},
        {"task", pk_uint_42, FR_ETYPE, "task"},
        {"task", pk_bin, FR_ETYPE, "task"},
        {"src", pk_nil, FR_ETYPE, "src"},
        {"src", pk_str_nul, FR_EINVAL, "src"},
        {"seq", pk_int_minus1, FR_ETYPE, "seq"},
        {"seq", pk_str_x, FR_ETYPE, "seq"},
        {"seq", pk_ext, FR_ETYPE, "seq"},
        {"tags", pk_empty_array, FR_ETYPE, "tags"},
        {"tags", pk_tags_intval, FR_ETYPE, "tags.host"},
        {"tags", pk_tags_intkey, FR_ETYPE, "tags"},
        {"tags.host", pk_true, FR_ETYPE, "tags.host"},
        {"metrics", pk_empty_map, FR_ETYPE, "metrics"},
        {"metrics", pk_str_x, FR_ETYPE, "metrics"},
        {"metrics[1]", pk_empty_map, FR_ETYPE, "metrics[1]"},
        {"metrics[0]", pk_nil, FR_ETYPE, "metrics[0]"},
        {"metrics[0][0]", pk_uint_42, FR_ETYPE, "metrics[0][0]"},
        {"metrics[1][0]", pk_str_nul, FR_EINVAL, "metrics[1][0]"},
        {"metrics[0][1]", pk_str_x, FR_ETYPE, "metrics[0][1]"},
        {"metrics[0][1]", pk_double, FR_ETYPE, "metrics[0][1]"},
        {"metrics[0][1]", pk_uint_big, FR_ETYPE, "metrics[0][1]"},
        {"metrics[0][2]", pk_uint_5, FR_EINVAL, "metrics[0][2]"},
        {"metrics[0][2]", pk_int_minus1, FR_ETYPE, "metrics[0][2]"},
        {"metrics[0][2]", pk_str_x, FR_ETYPE, "metrics[0][2]"},
        /* metric 0 is a double */
        {"metrics[0][3]", pk_uint_42, FR_ETYPE, "metrics[0][3]"},
        {"metrics[0][3]", pk_str_x, FR_ETYPE, "metrics[0][3]"},
        {"metrics[0][3]", pk_nil, FR_ETYPE, "metrics[0][3]"},
        /* metric 1 is an int64 */
        {"metrics[1][3]", pk_uint_big, FR_ETYPE, "metrics[1][3]"},
        {"metrics[1][3]", pk_double, FR_ETYPE, "metrics[1][3]"},
        {"metrics[1][3]", pk_true, FR_ETYPE, "metrics[1][3]"},
        {"metrics[1][3]", pk_str_x, FR_ETYPE, "metrics[1][3]"},
        {"metrics[1][4]", pk_uint_0, FR_ETYPE, "metrics[1][4]"},
        {"metrics[1][4]", pk_str_nul, FR_EINVAL, "metrics[1][4]"},
        {"metrics[1][5]", pk_empty_array, FR_ETYPE, "metrics[1][5]"},
        {"metrics[1][5]", pk_nil, FR_ETYPE, "metrics[1][5]"},
        {"metrics[1][5]", pk_tags_intval, FR_ETYPE, "metrics[1][5].host"},
        {"metrics[1][5]", pk_tags_intkey, FR_ETYPE, "metrics[1][5]"},
        {"metrics[0][5].host", pk_str_nul, FR_EINVAL, "metrics[0][5].host"},
        {"metrics[0][5].host", pk_empty_map, FR_ETYPE, "metrics[0][5].host"},
        /* structure */
        {"metrics[1]", pk_metric_5, FR_EMISSING, "metrics[1][5]"},
        {"metrics[0]", pk_metric_7, FR_EUNKNOWN, "metrics[0][6]"},
        {"metrics[0]", pk_empty_array, FR_EMISSING, "metrics[0][0]"},
        {"v", pk_uint_2, FR_EUNSUPPORTED, "v"},
        {"v", pk_uint_0, FR_EUNSUPPORTED, "v"},
        /* duplicates */
        {"tags", pk_tags_dup, FR_EDUP, "tags.host"},
        {"metrics[1][5]", pk_tags_dup, FR_EDUP, "metrics[1][5].host"},
        {"metrics[1][5]", pk_tags_dup_many, FR_EDUP, "metrics[1][5].k17"},
        /* limits */
        {"tags", pk_tags_too_many, FR_ETOOBIG, "tags"},
        {"metrics[0][5]", pk_tags_too_many, FR_ETOOBIG, "metrics[0][5]"},
        {"metrics[0][0]", pk_ns_too_long, FR_ETOOBIG, "metrics[0][0]"},
        {"task", pk_str_too_long, FR_ETOOBIG, "task"},
        {"metrics[0][4]", pk_str_too_long, FR_ETOOBIG, "metrics[0][4]"},
        {"metrics[0][5].host", pk_str_too_long, FR_ETOOBIG, "metrics[0][5].host"},
        /* missing keys */
        {"v", NULL, FR_EMISSING, "v"},
        {"task", NULL, FR_EMISSING, "task"},
        {"src", NULL, FR_EMISSING, "src"},
        {"seq", NULL, FR_EMISSING, "seq"},
        {"tags", NULL, FR_EMISSING, "tags"},
        {"metrics", NULL, FR_EMISSING, "metrics"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msg w;
        write_batch(&w, cases[i].path, cases[i].fn);
        fr_batch *b = (fr_batch *)1;
        fr_error err;
        int rv = fr_batch_decode(w.sb.data, w.sb.size, &b, &err);
        if (rv != cases[i].code || strcmp(err.where, cases[i].where) != 0) {
            fail_msg("case %zu (%s): got %d at \"%s\", want %d at \"%s\": %s", i, cases[i].path, rv,
                     err.where, cases[i].code, cases[i].where, err.message);
        }
        assert_null(b);
        msg_free(&w);
    }
}

/* Values at their limits and the lenient forms the decoder takes. */
static void test_accepted_variants(void **state)
{
    static const struct {
        const char *path;
        pack_fn fn;
    } cases[] = {
        {"metrics[0][0]", pk_ns_max},      /* namespace at its limit */
        {"metrics[0][4]", pk_ns_too_long}, /* a unit may exceed the namespace limit */
        {"metrics[0][5]", pk_tags_max},    /* tags at their limit */
        {"tags", pk_tags_max},
        {"metrics[0][3]", pk_float},   /* float32 for a double */
        {"metrics[1][3]", pk_uint_42}, /* a non-negative uint for an int64 */
        {"metrics[0][5]", pk_empty_map},
        {"tags", pk_empty_map},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        msg w;
        write_batch(&w, cases[i].path, cases[i].fn);
        fr_batch *b;
        fr_error err;
        int rv = fr_batch_decode(w.sb.data, w.sb.size, &b, &err);
        if (rv != 0) {
            fail_msg("case %zu (%s): %d at \"%s\": %s", i, cases[i].path, rv, err.where,
                     err.message);
        }
        if (strcmp(cases[i].path, "metrics[0][3]") == 0) {
            assert_true(b->metrics[0].value.v.d == 2.5);
        }
        if (strcmp(cases[i].path, "metrics[1][3]") == 0) {
            assert_true(b->metrics[1].value.v.i == 42);
        }
        fr_batch_destroy(b);
        msg_free(&w);
    }
}

static void test_unknown_and_duplicate_keys(void **state)
{
    /* Keys in any order decode to the same batch. */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 6);
    pk_str(&pk, "metrics");
    msgpack_pack_array(&pk, 0);
    pk_str(&pk, "tags");
    msgpack_pack_map(&pk, 0);
    pk_str(&pk, "seq");
    msgpack_pack_uint64(&pk, 5);
    pk_str(&pk, "src");
    pk_str(&pk, "n");
    pk_str(&pk, "task");
    pk_str(&pk, "t");
    pk_str(&pk, "v");
    msgpack_pack_uint64(&pk, 1);
    fr_batch *b;
    assert_fr_ok(fr_batch_decode(sb.data, sb.size, &b, NULL));
    fr_batch *want = fr_batch_new("t", "n", 5);
    assert_true(fr_batch_equal(b, want));
    char src[8];
    uint64_t seq;
    assert_fr_ok(fr_batch_peek(sb.data, sb.size, src, sizeof(src), &seq, NULL));
    assert_string_equal(src, "n");
    assert_true(seq == 5);
    /* Trailing bytes after a complete batch. */
    msgpack_pack_nil(&pk);
    expect_fail(sb.data, sb.size, FR_ETRAILING, "");
    fr_batch_destroy(b);
    fr_batch_destroy(want);
    msgpack_sbuffer_destroy(&sb);

    /* An unknown key, named in where. */
    msgpack_sbuffer_init(&sb);
    msgpack_pack_map(&pk, 7);
    pk_str(&pk, "v");
    msgpack_pack_uint64(&pk, 1);
    pk_str(&pk, "colour");
    pk_str(&pk, "blue");
    expect_fail(sb.data, sb.size, FR_EUNKNOWN, "colour");
    msgpack_sbuffer_destroy(&sb);

    /* A key given twice fails at the second one, before its value. */
    msgpack_sbuffer_init(&sb);
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "seq");
    msgpack_pack_uint64(&pk, 1);
    pk_str(&pk, "seq");
    msgpack_pack_uint64(&pk, 2);
    pk_str(&pk, "v");
    msgpack_pack_uint64(&pk, 1);
    expect_fail(sb.data, sb.size, FR_EDUP, "seq");
    src[0] = 'z';
    assert_int_equal(fr_batch_peek(sb.data, sb.size, src, sizeof(src), &seq, NULL), FR_EDUP);
    msgpack_sbuffer_destroy(&sb);

    /* A non-string key at the top. */
    msgpack_sbuffer_init(&sb);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 1);
    expect_fail(sb.data, sb.size, FR_ETYPE, "");
    msgpack_sbuffer_destroy(&sb);

    /* Trailing bytes after the standard message. */
    msg w;
    write_batch(&w, NULL, NULL);
    msgpack_pack_uint64(&w.pk, 0);
    expect_fail(w.sb.data, w.sb.size, FR_ETRAILING, "");
    msg_free(&w);
}

static void test_huge_claims(void **state)
{
    /* Headers claiming far more than the input holds fail on the
     * remaining length, before any allocation. */
    static const struct {
        uint8_t bytes[24];
        size_t len;
        int code;
        const char *where;
    } cases[] = {
        {{0xdf, 0xff, 0xff, 0xff, 0xff}, 5, FR_ETRUNC, ""},
        {{0xde, 0xff, 0xff, 0xa1, 'v', 1}, 6, FR_ETRUNC, ""},
        {{0x81, 0xa7, 'm', 'e', 't', 'r', 'i', 'c', 's', 0xdd, 0xff, 0xff, 0xff, 0xff},
         14,
         FR_ETOOBIG,
         "metrics"},
        /* within FR_MAX_METRICS, but not within the bytes */
        {{0x81, 0xa7, 'm', 'e', 't', 'r', 'i', 'c', 's', 0xdd, 0x00, 0x01, 0x00, 0x00, 0x96},
         15,
         FR_ETRUNC,
         "metrics"},
        {{0x81, 0xa4, 't', 'a', 'g', 's', 0xdf, 0xff, 0xff, 0xff, 0xff}, 11, FR_ETOOBIG, "tags"},
        {{0x81, 0xa4, 't', 'a', 'g', 's', 0xde, 0x00, 0xff, 0xa1}, 10, FR_ETRUNC, "tags"},
        {{0x81, 0xa4, 't', 'a', 's', 'k', 0xdb, 0xff, 0xff, 0xff, 0xff}, 11, FR_ETOOBIG, "task"},
        {{0x81, 0xa4, 't', 'a', 's', 'k', 0xdb, 0x00, 0x00, 0x10, 0x00, 'x'},
         12,
         FR_ETRUNC,
         "task"},
        {{0x81, 0xa3, 's', 'r', 'c', 0xda, 0x01}, 7, FR_ETRUNC, "src"},
        {{0xc1}, 1, FR_ETYPE, ""},
        {{0}, 0, FR_ETRUNC, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *copy = malloc(cases[i].len + 1);
        memcpy(copy, cases[i].bytes, cases[i].len);
        fr_batch *b;
        fr_error err;
        int rv = fr_batch_decode(copy, cases[i].len, &b, &err);
        if (rv != cases[i].code || strcmp(err.where, cases[i].where) != 0) {
            fail_msg("case %zu: got %d at \"%s\", want %d at \"%s\": %s", i, rv, err.where,
                     cases[i].code, cases[i].where, err.message);
        }
        free(copy);
    }

    /* A message over FR_MAX_MESSAGE is refused on its length alone. */
    uint8_t *huge = calloc(1, (size_t)FR_MAX_MESSAGE + 1);
    assert_non_null(huge);
    expect_fail(huge, (size_t)FR_MAX_MESSAGE + 1, FR_ETOOBIG, "");
    free(huge);
}

/* A processor's output names the process node it came from; the stream
 * key tells apart batches of one source, task and seq on different routes. */
static void test_route(void **state)
{
    fr_batch *b = fr_batch_new("task-9", "node-a", 12);
    assert_non_null(b);
    assert_string_equal(b->route, "");
    fr_metric *m = fr_batch_add(b, "/a/b", 5, fr_val_i64(-3), "ns");
    assert_non_null(m);
    check_round_trip(b);

    char key[128];
    size_t n = fr_batch_stream(b, key, sizeof(key));
    assert_int_equal(n, strlen("node-a\x1ftask-9\x1f"));
    assert_string_equal(key, "node-a\x1ftask-9\x1f");

    assert_fr_ok(fr_batch_set_route(b, "process[0].process[1]"));
    check_round_trip(b);
    n = fr_batch_stream(b, key, sizeof(key));
    assert_string_equal(key, "node-a\x1ftask-9\x1fprocess[0].process[1]");
    assert_true(fr_batch_stream(b, key, 4) == n);
    assert_string_equal(key, "nod");

    /* The route takes part in equality. */
    fr_buf buf = FR_BUF_INIT;
    assert_fr_ok(fr_batch_encode(b, &buf));
    fr_batch *d = NULL;
    fr_error err;
    assert_fr_ok(fr_batch_decode(buf.data, buf.len, &d, &err));
    assert_string_equal(d->route, "process[0].process[1]");
    assert_fr_ok(fr_batch_set_route(d, NULL));
    assert_false(fr_batch_equal(b, d));

    /* Reset clears it; an empty route is not written at all. */
    assert_fr_ok(fr_batch_reset(b, "t", "s", 1));
    assert_string_equal(b->route, "");
    fr_buf_reset(&buf);
    assert_fr_ok(fr_batch_encode(b, &buf));
    assert_int_equal(buf.data[0], 0x86);

    /* A route that is not a string is refused, naming it. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    pk_str(&pk, "v");
    msgpack_pack_uint64(&pk, 1);
    pk_str(&pk, "task");
    pk_str(&pk, "t");
    pk_str(&pk, "src");
    pk_str(&pk, "s");
    pk_str(&pk, "seq");
    msgpack_pack_uint64(&pk, 1);
    pk_str(&pk, "route");
    msgpack_pack_uint64(&pk, 3);
    pk_str(&pk, "tags");
    msgpack_pack_map(&pk, 0);
    pk_str(&pk, "metrics");
    msgpack_pack_array(&pk, 0);
    fr_batch *bad = NULL;
    assert_int_equal(fr_batch_decode(sb.data, sb.size, &bad, &err), FR_ETYPE);
    assert_string_equal(err.where, "route");
    assert_null(bad);
    msgpack_sbuffer_destroy(&sb);

    fr_buf_free(&buf);
    fr_batch_destroy(d);
    fr_batch_destroy(b);
}

/* Metrics appended by reference share strings with their source; merged
 * tags replace same-key tags and append new ones, leaving the source alone. */
static void test_add_ref_and_merge_tags(void **state)
{
    fr_batch *in = fr_batch_new("t", "s", 3);
    assert_non_null(in);
    for (int i = 0; i < 40; i++) {
        char ns[32];
        snprintf(ns, sizeof(ns), "/x/%d", i);
        fr_metric *m = fr_batch_add(in, ns, i, fr_val_f64(i * 0.5), "B");
        assert_non_null(m);
        assert_fr_ok(fr_batch_metric_tag(in, m, "host", "h1"));
        assert_fr_ok(fr_batch_metric_tag(in, m, "rack", "r1"));
    }
    fr_batch *out = fr_batch_new(in->task, in->source, in->seq);
    assert_non_null(out);
    static const fr_tag add[] = {{"rack", "r9", 4, 2}, {"dc", "dublin", 2, 6}};
    for (uint32_t i = 0; i < in->nmetrics; i++) {
        fr_metric *m = fr_batch_add_ref(out, &in->metrics[i]);
        assert_non_null(m);
        assert_ptr_equal(m->ns, in->metrics[i].ns);
        assert_fr_ok(fr_batch_metric_merge_tags(out, m, add, 2));
    }
    /* The last metric can still take a copied tag after a merge. */
    assert_fr_ok(fr_batch_metric_tag(out, &out->metrics[out->nmetrics - 1], "extra", "1"));
    for (uint32_t i = 0; i < out->nmetrics; i++) {
        const fr_metric *m = &out->metrics[i];
        assert_int_equal(m->ntags, i + 1 == out->nmetrics ? 4 : 3);
        assert_string_equal(m->tags[0].key, "host");
        assert_string_equal(m->tags[1].key, "rack");
        assert_string_equal(m->tags[1].value, "r9");
        assert_string_equal(m->tags[2].key, "dc");
        /* the input is untouched */
        assert_int_equal(in->metrics[i].ntags, 2);
        assert_string_equal(in->metrics[i].tags[1].value, "r1");
    }
    check_round_trip(out);

    /* Over the tag limit: refused, the metric unchanged. */
    fr_tag *many = calloc(FR_MAX_TAGS, sizeof(*many));
    char(*keys)[8] = calloc(FR_MAX_TAGS, 8);
    assert_non_null(many);
    assert_non_null(keys);
    for (uint32_t i = 0; i < FR_MAX_TAGS; i++) {
        snprintf(keys[i], 8, "k%u", i);
        many[i].key = keys[i];
        many[i].value = "v";
    }
    fr_metric *m0 = &out->metrics[0];
    assert_int_equal(fr_batch_metric_merge_tags(out, m0, many, FR_MAX_TAGS), FR_ETOOBIG);
    assert_int_equal(m0->ntags, 3);
    free(keys);
    free(many);
    fr_batch_destroy(out);
    fr_batch_destroy(in);
}

static void test_peek(void **state)
{
    fr_batch *b = fr_batch_new("t", "a-rather-long-source-name", 99);
    fr_buf buf = FR_BUF_INIT;
    assert_fr_ok(fr_batch_encode(b, &buf));
    char src[8];
    uint64_t seq = 0;
    fr_error err;
    assert_fr_ok(fr_batch_peek(buf.data, buf.len, src, sizeof(src), &seq, &err));
    assert_string_equal(src, "a-rathe");
    assert_true(seq == 99);
    assert_fr_ok(fr_batch_peek(buf.data, buf.len, NULL, 0, &seq, &err));

    /* Peek stops once it has src and seq: what follows is not its business. */
    buf.data[buf.len - 1] = 0xc1;
    assert_fr_ok(fr_batch_peek(buf.data, buf.len, src, sizeof(src), &seq, &err));

    msg w;
    write_batch(&w, "src", NULL);
    assert_int_equal(fr_batch_peek(w.sb.data, w.sb.size, src, sizeof(src), &seq, &err),
                     FR_EMISSING);
    assert_string_equal(err.where, "src");
    msg_free(&w);
    write_batch(&w, "v", pk_uint_2);
    assert_int_equal(fr_batch_peek(w.sb.data, w.sb.size, src, sizeof(src), &seq, &err),
                     FR_EUNSUPPORTED);
    msg_free(&w);
    write_batch(&w, "seq", pk_str_x);
    assert_int_equal(fr_batch_peek(w.sb.data, w.sb.size, src, sizeof(src), &seq, &err), FR_ETYPE);
    assert_string_equal(err.where, "seq");
    msg_free(&w);
    fr_buf_free(&buf);
    fr_batch_destroy(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_value_type),
        cmocka_unit_test(test_empty_batch),
        cmocka_unit_test(test_large_batch),
        cmocka_unit_test(test_builder),
        cmocka_unit_test(test_string_lengths),
        cmocka_unit_test(test_unknown_lengths),
        cmocka_unit_test(test_decoded_batch_grows),
        cmocka_unit_test(test_shared_chunk_pool),
        cmocka_unit_test(test_encode_refuses),
        cmocka_unit_test(test_standard_message_decodes),
        cmocka_unit_test(test_nul_anywhere),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_accepted_variants),
        cmocka_unit_test(test_unknown_and_duplicate_keys),
        cmocka_unit_test(test_huge_claims),
        cmocka_unit_test(test_peek),
        cmocka_unit_test(test_route),
        cmocka_unit_test(test_add_ref_and_merge_tags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
