/* Generic msgpack documents: decoding, limits and paths, canonical
 * re-packing, typed getters and JSON output. */
#include "testsupport.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "fresco/metric.h"
#include "fresco/mpdoc.h"

typedef struct packed {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} packed;

static void packed_init(packed *p)
{
    msgpack_sbuffer_init(&p->sb);
    msgpack_packer_init(&p->pk, &p->sb, msgpack_sbuffer_write);
}

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

/* Packs n with fr_node_pack and returns the bytes in sb. */
static void repack(const fr_node *n, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    assert_fr_ok(fr_node_pack(n, &pk));
}

/* Decodes data, re-packs it and asserts the bytes are the same. */
static void check_canonical(const void *data, size_t len)
{
    fr_doc doc;
    fr_error err;
    int rv = fr_doc_decode(data, len, &doc, &err);
    if (rv != 0) {
        fail_msg("decode: %d at \"%s\": %s", rv, err.where, err.message);
    }
    msgpack_sbuffer sb;
    repack(doc.root, &sb);
    assert_int_equal(sb.size, len);
    assert_memory_equal(sb.data, data, len);
    msgpack_sbuffer_destroy(&sb);
    fr_doc_free(&doc);
}

static void expect_fail(const void *data, size_t len, int code, const char *where)
{
    fr_doc doc = {.root = (const fr_node *)1};
    fr_error err;
    int rv = fr_doc_decode(data, len, &doc, &err);
    if (rv != code || strcmp(err.where, where) != 0) {
        fail_msg("got %d (%s) at \"%s\", want %d (%s) at \"%s\": %s", rv, fr_strerror(rv),
                 err.where, code, fr_strerror(code), where, err.message);
    }
    assert_int_equal(err.code, code);
    assert_null(doc.root);
    assert_null(doc.mem);
    fr_doc_free(&doc);
}

static void test_every_type(void **state)
{
    packed p;
    packed_init(&p);
    msgpack_packer *pk = &p.pk;
    msgpack_pack_map(pk, 14);
    pk_str(pk, "nil");
    msgpack_pack_nil(pk);
    pk_str(pk, "t");
    msgpack_pack_true(pk);
    pk_str(pk, "f");
    msgpack_pack_false(pk);
    pk_str(pk, "neg");
    msgpack_pack_int64(pk, -200);
    pk_str(pk, "min");
    msgpack_pack_int64(pk, INT64_MIN);
    pk_str(pk, "max");
    msgpack_pack_uint64(pk, UINT64_MAX);
    pk_str(pk, "pi");
    msgpack_pack_double(pk, 3.25);
    pk_str(pk, "s");
    pk_str(pk, "h\xc3\xa9llo");
    pk_str(pk, "bin");
    msgpack_pack_bin(pk, 3);
    msgpack_pack_bin_body(pk, "\x00\x01\xff", 3);
    pk_str(pk, "arr");
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint64(pk, 1);
    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, 2);
    msgpack_pack_array(pk, 0);
    msgpack_pack_map(pk, 0);
    pk_str(pk, "map");
    msgpack_pack_map(pk, 1);
    pk_str(pk, "a");
    msgpack_pack_map(pk, 1);
    pk_str(pk, "b");
    pk_str(pk, "c");
    pk_str(pk, "");
    pk_str(pk, "empty key");
    pk_str(pk, "nan");
    msgpack_pack_double(pk, NAN);
    pk_str(pk, "nul");
    pk_strn(pk, "a\0b", 3);

    fr_doc doc;
    assert_fr_ok(fr_doc_decode(p.sb.data, p.sb.size, &doc, NULL));
    const fr_node *r = doc.root;
    assert_int_equal(r->type, FR_NODE_MAP);
    assert_int_equal(r->len, 14);
    assert_int_equal(fr_node_get(r, "nil")->type, FR_NODE_NIL);
    assert_true(fr_node_get(r, "t")->v.b);
    assert_int_equal(fr_node_get(r, "neg")->type, FR_NODE_INT);
    assert_true(fr_node_get(r, "neg")->v.i == -200);
    assert_true(fr_node_get(r, "min")->v.i == INT64_MIN);
    assert_int_equal(fr_node_get(r, "max")->type, FR_NODE_UINT);
    assert_true(fr_node_get(r, "max")->v.u == UINT64_MAX);
    assert_true(fr_node_get(r, "pi")->v.f == 3.25);
    assert_string_equal(fr_node_get(r, "s")->v.str, "h\xc3\xa9llo");
    const fr_node *bin = fr_node_get(r, "bin");
    assert_int_equal(bin->type, FR_NODE_BIN);
    assert_int_equal(bin->len, 3);
    assert_memory_equal(bin->v.str, "\x00\x01\xff", 3);
    const fr_node *arr = fr_node_get(r, "arr");
    assert_int_equal(arr->len, 3);
    assert_int_equal(arr->v.arr[1].v.arr[1].type, FR_NODE_ARRAY);
    assert_int_equal(arr->v.arr[2].type, FR_NODE_MAP);
    assert_string_equal(fr_node_get(fr_node_get(fr_node_get(r, "map"), "a"), "b")->v.str, "c");
    assert_string_equal(fr_node_get(r, "")->v.str, "empty key");
    assert_true(isnan(fr_node_get(r, "nan")->v.f));
    assert_int_equal(fr_node_get(r, "nul")->len, 3);
    assert_null(fr_node_get(r, "absent"));
    assert_null(fr_node_get(r, "nu"));
    assert_null(fr_node_get(arr, "x"));
    assert_null(fr_node_get(NULL, "x"));
    fr_doc_free(&doc);
    fr_doc_free(&doc);

    check_canonical(p.sb.data, p.sb.size);
    msgpack_sbuffer_destroy(&p.sb);
}

static void test_sizes_round_trip(void **state)
{
    static const size_t strs[] = {0, 31, 32, 255, 256, 65535, FR_MAX_STRING};
    static const uint32_t counts[] = {0, 15, 16, 65535, 65536};
    char *big = calloc(1, FR_MAX_STRING);
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        packed p;
        packed_init(&p);
        msgpack_pack_array(&p.pk, 2);
        pk_strn(&p.pk, big, strs[i]);
        msgpack_pack_bin(&p.pk, strs[i]);
        msgpack_pack_bin_body(&p.pk, big, strs[i]);
        check_canonical(p.sb.data, p.sb.size);
        msgpack_sbuffer_destroy(&p.sb);
    }
    free(big);
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        packed p;
        packed_init(&p);
        msgpack_pack_array(&p.pk, 2);
        msgpack_pack_array(&p.pk, counts[i]);
        for (uint32_t j = 0; j < counts[i]; j++) {
            msgpack_pack_uint64(&p.pk, j);
        }
        msgpack_pack_map(&p.pk, counts[i]);
        for (uint32_t j = 0; j < counts[i]; j++) {
            char k[16];
            snprintf(k, sizeof(k), "%u", j);
            pk_str(&p.pk, k);
            msgpack_pack_int64(&p.pk, -(int64_t)j - 1);
        }
        check_canonical(p.sb.data, p.sb.size);
        msgpack_sbuffer_destroy(&p.sb);
    }
    static const int64_t ints[] = {
        -1, -32, -33, -128, -129, -32768, -32769, INT32_MIN, (int64_t)INT32_MIN - 1, INT64_MIN};
    static const uint64_t uints[] = {
        0, 127, 128, 255, 256, 65535, 65536, UINT32_MAX, (uint64_t)UINT32_MAX + 1, UINT64_MAX};
    packed p;
    packed_init(&p);
    msgpack_pack_array(&p.pk, 20);
    for (size_t i = 0; i < 10; i++) {
        msgpack_pack_int64(&p.pk, ints[i]);
        msgpack_pack_uint64(&p.pk, uints[i]);
    }
    check_canonical(p.sb.data, p.sb.size);
    msgpack_sbuffer_destroy(&p.sb);
}

static void test_non_canonical_input(void **state)
{
    /* Wider forms than needed decode and come back in the smallest form. */
    static const struct {
        uint8_t in[12];
        size_t inlen;
        uint8_t out[12];
        size_t outlen;
    } cases[] = {
        {{0xd0, 0x05}, 2, {0x05}, 1},
        {{0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 9, {0xff}, 1},
        {{0xcf, 0, 0, 0, 0, 0, 0, 0x01, 0x00}, 9, {0xcd, 0x01, 0x00}, 3},
        {{0xd9, 0x01, 'a'}, 3, {0xa1, 'a'}, 2},
        {{0xdc, 0x00, 0x01, 0xc0}, 4, {0x91, 0xc0}, 2},
        {{0xdf, 0, 0, 0, 1, 0xa1, 'k', 0xc3}, 8, {0x81, 0xa1, 'k', 0xc3}, 4},
        {{0xca, 0x40, 0x20, 0x00, 0x00}, 5, {0xcb, 0x40, 0x04, 0, 0, 0, 0, 0, 0}, 9},
        {{0xc5, 0x00, 0x01, 0x7f}, 4, {0xc4, 0x01, 0x7f}, 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        fr_doc doc;
        assert_fr_ok(fr_doc_decode(cases[i].in, cases[i].inlen, &doc, NULL));
        msgpack_sbuffer sb;
        repack(doc.root, &sb);
        if (sb.size != cases[i].outlen || memcmp(sb.data, cases[i].out, sb.size) != 0) {
            fail_msg("case %zu: repacked to %zu bytes, want %zu", i, sb.size, cases[i].outlen);
        }
        msgpack_sbuffer_destroy(&sb);
        fr_doc_free(&doc);
    }
}

/* count nested arrays (or maps with key "a") around a nil. */
static void nest(packed *p, int count, bool maps)
{
    packed_init(p);
    for (int i = 0; i < count; i++) {
        if (maps) {
            msgpack_pack_map(&p->pk, 1);
            pk_str(&p->pk, "a");
        } else {
            msgpack_pack_array(&p->pk, 1);
        }
    }
    msgpack_pack_nil(&p->pk);
}

static void test_depth(void **state)
{
    char where[200] = "";
    packed p;
    nest(&p, FR_DOC_MAX_DEPTH, false);
    check_canonical(p.sb.data, p.sb.size);
    msgpack_sbuffer_destroy(&p.sb);

    nest(&p, FR_DOC_MAX_DEPTH + 1, false);
    for (int i = 0; i < FR_DOC_MAX_DEPTH; i++) {
        strcat(where, "[0]");
    }
    expect_fail(p.sb.data, p.sb.size, FR_EDEPTH, where);
    msgpack_sbuffer_destroy(&p.sb);

    nest(&p, FR_DOC_MAX_DEPTH, true);
    check_canonical(p.sb.data, p.sb.size);
    msgpack_sbuffer_destroy(&p.sb);

    /* Far deeper than allowed must fail the same way, not overflow a stack. */
    nest(&p, 100000, true);
    where[0] = '\0';
    for (int i = 0; i < FR_DOC_MAX_DEPTH; i++) {
        strcat(where, i ? ".a" : "a");
    }
    expect_fail(p.sb.data, p.sb.size, FR_EDEPTH, where);
    msgpack_sbuffer_destroy(&p.sb);
}

static void pk_request_with(packed *p, void (*last)(msgpack_packer *pk))
{
    packed_init(p);
    msgpack_pack_map(&p->pk, 2);
    pk_str(&p->pk, "op");
    pk_str(&p->pk, "task.create");
    pk_str(&p->pk, "args");
    msgpack_pack_map(&p->pk, 2);
    pk_str(&p->pk, "name");
    pk_str(&p->pk, "t1");
    pk_str(&p->pk, "metrics");
    msgpack_pack_array(&p->pk, 3);
    msgpack_pack_uint64(&p->pk, 1);
    msgpack_pack_uint64(&p->pk, 2);
    last(&p->pk);
}

static void last_ext(msgpack_packer *pk)
{
    msgpack_pack_ext(pk, 1, 7);
    msgpack_pack_ext_body(pk, "x", 1);
}
static void last_fixext(msgpack_packer *pk)
{
    msgpack_pack_ext(pk, 4, 7);
    msgpack_pack_ext_body(pk, "abcd", 4);
}
static void last_c1(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 0);
    /* its byte is replaced by 0xc1 afterwards */
}
static void last_long_str(msgpack_packer *pk)
{
    char *s = calloc(1, FR_MAX_STRING + 1);
    pk_strn(pk, s, FR_MAX_STRING + 1);
    free(s);
}
static void last_long_bin(msgpack_packer *pk)
{
    char *s = calloc(1, FR_MAX_STRING + 1);
    msgpack_pack_bin(pk, FR_MAX_STRING + 1);
    msgpack_pack_bin_body(pk, s, FR_MAX_STRING + 1);
    free(s);
}
static void last_int_key(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pk_str(pk, "ok");
    msgpack_pack_nil(pk);
    msgpack_pack_uint64(pk, 3);
    msgpack_pack_nil(pk);
}
static void last_dup(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_str(pk, "x");
    msgpack_pack_nil(pk);
    pk_str(pk, "y");
    msgpack_pack_nil(pk);
    pk_str(pk, "x");
    msgpack_pack_true(pk);
}
static void last_dup_many(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 100);
    for (int i = 0; i < 100; i++) {
        char k[16];
        snprintf(k, sizeof(k), "key%d", i == 99 ? 42 : i);
        pk_str(pk, k);
        msgpack_pack_uint64(pk, (uint64_t)i);
    }
}

static void test_malformed_paths(void **state)
{
    static const struct {
        void (*last)(msgpack_packer *pk);
        int code;
        const char *where;
    } cases[] = {
        {last_ext, FR_EUNSUPPORTED, "args.metrics[2]"},
        {last_fixext, FR_EUNSUPPORTED, "args.metrics[2]"},
        {last_long_str, FR_ETOOBIG, "args.metrics[2]"},
        {last_long_bin, FR_ETOOBIG, "args.metrics[2]"},
        {last_int_key, FR_ETYPE, "args.metrics[2]"},
        {last_dup, FR_EDUP, "args.metrics[2].x"},
        {last_dup_many, FR_EDUP, "args.metrics[2].key42"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        packed p;
        pk_request_with(&p, cases[i].last);
        expect_fail(p.sb.data, p.sb.size, cases[i].code, cases[i].where);
        msgpack_sbuffer_destroy(&p.sb);
    }
    /* 0xc1 is never valid msgpack. */
    packed p;
    pk_request_with(&p, last_c1);
    p.sb.data[p.sb.size - 1] = (char)0xc1;
    expect_fail(p.sb.data, p.sb.size, FR_EINVAL, "args.metrics[2]");
    /* Trailing bytes. */
    p.sb.data[p.sb.size - 1] = (char)0xc0;
    msgpack_pack_nil(&p.pk);
    expect_fail(p.sb.data, p.sb.size, FR_ETRAILING, "");
    msgpack_sbuffer_destroy(&p.sb);

    /* A duplicate at the top level is named by its key. */
    static const uint8_t dup[] = {0x82, 0xa2, 'o', 'p', 0xc0, 0xa2, 'o', 'p', 0xc0};
    expect_fail(dup, sizeof(dup), FR_EDUP, "op");
    static const uint8_t intkey[] = {0x81, 0x01, 0xc0};
    expect_fail(intkey, sizeof(intkey), FR_ETYPE, "");
    /* Keys with unprintable bytes appear in the path as '?'. */
    static const uint8_t oddkey[] = {0x81, 0xa2, 'a', '\n', 0x91, 0xc1};
    expect_fail(oddkey, sizeof(oddkey), FR_EINVAL, "a?[0]");
}

static void test_truncated_everywhere(void **state)
{
    packed p;
    pk_request_with(&p, last_dup_many);
    /* The duplicate sits at the very end: every strict prefix is only
     * truncated. */
    for (size_t len = 0; len < p.sb.size; len++) {
        uint8_t *copy = malloc(len + 1);
        memcpy(copy, p.sb.data, len);
        fr_doc doc;
        fr_error err;
        int rv = fr_doc_decode(copy, len, &doc, &err);
        if (rv != FR_ETRUNC) {
            fail_msg("prefix of %zu bytes: %d (%s)", len, rv, err.message);
        }
        assert_null(doc.root);
        free(copy);
    }
    fr_doc doc;
    fr_error err;
    /* The last byte belongs to the value of key99 (written as key42). */
    assert_int_equal(fr_doc_decode(p.sb.data, p.sb.size - 1, &doc, &err), FR_ETRUNC);
    assert_string_equal(err.where, "args.metrics[2].key42");
    /* Inside the key "metrics" the path is the map holding it. */
    assert_int_equal(fr_doc_decode(p.sb.data, 30, &doc, &err), FR_ETRUNC);
    assert_string_equal(err.where, "args");
    msgpack_sbuffer_destroy(&p.sb);
}

static void test_huge_claims(void **state)
{
    static const struct {
        uint8_t bytes[12];
        size_t len;
        int code;
        const char *where;
    } cases[] = {
        {{0xdd, 0xff, 0xff, 0xff, 0xff}, 5, FR_ETRUNC, ""},
        {{0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0}, 7, FR_ETRUNC, ""},
        {{0x91, 0xde, 0xff, 0xff, 0xa1, 'a', 0xc0}, 7, FR_ETRUNC, "[0]"},
        {{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, 6, FR_ETOOBIG, ""},
        {{0xc6, 0x00, 0x00, 0x00, 0x09, 'a'}, 6, FR_ETRUNC, ""},
        {{0x92, 0xc0, 0xda, 0x00}, 4, FR_ETRUNC, "[1]"},
        {{0x00}, 0, FR_ETRUNC, ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *copy = malloc(cases[i].len + 1);
        memcpy(copy, cases[i].bytes, cases[i].len);
        expect_fail(copy, cases[i].len, cases[i].code, cases[i].where);
        free(copy);
    }

    /* FR_DOC_MAX_NODES values in all are fine, one more is not. */
    size_t n = FR_DOC_MAX_NODES - 1;
    uint8_t *buf = malloc(n + 6);
    buf[0] = 0xdd;
    buf[1] = (uint8_t)(n >> 24);
    buf[2] = (uint8_t)(n >> 16);
    buf[3] = (uint8_t)(n >> 8);
    buf[4] = (uint8_t)n;
    memset(buf + 5, 0xc0, n + 1);
    fr_doc doc;
    assert_fr_ok(fr_doc_decode(buf, n + 5, &doc, NULL));
    assert_int_equal(doc.root->len, n);
    fr_doc_free(&doc);
    n++;
    buf[1] = (uint8_t)(n >> 24);
    buf[2] = (uint8_t)(n >> 16);
    buf[3] = (uint8_t)(n >> 8);
    buf[4] = (uint8_t)n;
    char where[32];
    snprintf(where, sizeof(where), "[%zu]", n - 1);
    expect_fail(buf, n + 5, FR_ETOOBIG, where);
    free(buf);

    uint8_t *huge = calloc(1, (size_t)FR_MAX_MESSAGE + 1);
    expect_fail(huge, (size_t)FR_MAX_MESSAGE + 1, FR_ETOOBIG, "");
    free(huge);
}

static void test_getters(void **state)
{
    packed p;
    packed_init(&p);
    msgpack_pack_map(&p.pk, 8);
    pk_str(&p.pk, "s");
    pk_str(&p.pk, "text");
    pk_str(&p.pk, "neg");
    msgpack_pack_int64(&p.pk, -5);
    pk_str(&p.pk, "pos");
    msgpack_pack_uint64(&p.pk, 7);
    pk_str(&p.pk, "huge");
    msgpack_pack_uint64(&p.pk, (uint64_t)INT64_MAX + 1);
    pk_str(&p.pk, "b");
    msgpack_pack_false(&p.pk);
    pk_str(&p.pk, "d");
    msgpack_pack_double(&p.pk, -0.5);
    pk_str(&p.pk, "n");
    msgpack_pack_nil(&p.pk);
    pk_str(&p.pk, "m");
    msgpack_pack_map(&p.pk, 0);
    fr_doc doc;
    assert_fr_ok(fr_doc_decode(p.sb.data, p.sb.size, &doc, NULL));
    const fr_node *r = doc.root;

    const char *s = NULL;
    int64_t i = 0;
    uint64_t u = 0;
    bool b = true;
    double d = 0;
    assert_fr_ok(fr_node_get_str(r, "s", &s));
    assert_string_equal(s, "text");
    assert_int_equal(fr_node_get_str(r, "neg", &s), FR_ETYPE);
    assert_int_equal(fr_node_get_str(r, "zz", &s), FR_EMISSING);
    assert_string_equal(s, "text");

    assert_fr_ok(fr_node_get_i64(r, "neg", &i));
    assert_true(i == -5);
    assert_fr_ok(fr_node_get_i64(r, "pos", &i));
    assert_true(i == 7);
    assert_int_equal(fr_node_get_i64(r, "huge", &i), FR_ETYPE);
    assert_int_equal(fr_node_get_i64(r, "d", &i), FR_ETYPE);
    assert_int_equal(fr_node_get_i64(r, "zz", &i), FR_EMISSING);
    assert_true(i == 7);

    assert_fr_ok(fr_node_get_u64(r, "huge", &u));
    assert_true(u == (uint64_t)INT64_MAX + 1);
    assert_int_equal(fr_node_get_u64(r, "neg", &u), FR_ETYPE);
    assert_int_equal(fr_node_get_u64(r, "s", &u), FR_ETYPE);
    assert_int_equal(fr_node_get_u64(r, "zz", &u), FR_EMISSING);

    assert_fr_ok(fr_node_get_bool(r, "b", &b));
    assert_false(b);
    assert_int_equal(fr_node_get_bool(r, "n", &b), FR_ETYPE);
    assert_int_equal(fr_node_get_bool(r, "zz", &b), FR_EMISSING);

    assert_fr_ok(fr_node_get_double(r, "d", &d));
    assert_true(d == -0.5);
    /* An integer is read as a double (JSON/YAML write 3, not 3.0). */
    assert_fr_ok(fr_node_get_double(r, "neg", &d));
    assert_true(d == -5.0);
    assert_fr_ok(fr_node_get_double(r, "pos", &d));
    assert_true(d == 7.0);
    assert_int_equal(fr_node_get_double(r, "s", &d), FR_ETYPE);
    assert_int_equal(fr_node_get_double(r, "m", &d), FR_ETYPE);
    assert_int_equal(fr_node_get_double(r, "zz", &d), FR_EMISSING);

    /* A non-map has no members. */
    assert_int_equal(fr_node_get_str(fr_node_get(r, "s"), "s", &s), FR_EMISSING);
    fr_doc_free(&doc);
    msgpack_sbuffer_destroy(&p.sb);
}

static int failing_write(void *data, const char *buf, size_t len)
{
    int *budget = data;
    if ((size_t)*budget < len) {
        return -1;
    }
    *budget -= (int)len;
    return 0;
}

static void test_pack_failure(void **state)
{
    packed p;
    pk_request_with(&p, last_dup);
    p.sb.data[p.sb.size - 2] = 'z'; /* the second "x" becomes "z": valid */
    fr_doc doc;
    assert_fr_ok(fr_doc_decode(p.sb.data, p.sb.size, &doc, NULL));
    for (int budget0 = 0; budget0 < (int)p.sb.size; budget0++) {
        int budget = budget0;
        msgpack_packer pk;
        msgpack_packer_init(&pk, &budget, failing_write);
        assert_int_equal(fr_node_pack(doc.root, &pk), FR_ENOMEM);
    }
    check_canonical(p.sb.data, p.sb.size);
    fr_doc_free(&doc);
    msgpack_sbuffer_destroy(&p.sb);
}

/* ---- JSON ---- */

static char *to_json(const void *data, size_t len)
{
    fr_doc doc;
    fr_error err;
    int rv = fr_doc_decode(data, len, &doc, &err);
    if (rv != 0) {
        fail_msg("decode: %s", err.message);
    }
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_fr_ok(fr_node_write_json(doc.root, f));
    fclose(f);
    fr_doc_free(&doc);
    return text;
}

static void expect_json(const packed *p, const char *want)
{
    char *got = to_json(p->sb.data, p->sb.size);
    assert_string_equal(got, want);
    free(got);
}

static void test_json(void **state)
{
    packed p;
    packed_init(&p);
    msgpack_packer *pk = &p.pk;
    msgpack_pack_map(pk, 9);
    pk_str(pk, "ok");
    msgpack_pack_true(pk);
    pk_str(pk, "n");
    msgpack_pack_nil(pk);
    pk_str(pk, "ints");
    msgpack_pack_array(pk, 4);
    msgpack_pack_int64(pk, INT64_MIN);
    msgpack_pack_uint64(pk, UINT64_MAX);
    msgpack_pack_uint64(pk, 0);
    msgpack_pack_false(pk);
    pk_str(pk, "floats");
    msgpack_pack_array(pk, 8);
    msgpack_pack_double(pk, 1.0);
    msgpack_pack_double(pk, 0.1);
    msgpack_pack_double(pk, -2.5e-300);
    msgpack_pack_double(pk, 1e300);
    msgpack_pack_double(pk, NAN);
    msgpack_pack_double(pk, INFINITY);
    msgpack_pack_double(pk, -INFINITY);
    msgpack_pack_float(pk, 0.5f);
    pk_str(pk, "esc");
    pk_strn(pk, "q\"b\\s/\n\r\t\b\f\x01\x1f\x7f\0!", 16);
    pk_str(pk, "utf8");
    pk_str(pk, "\xc3\xa9\xe2\x9c\x93\xf0\x9f\x9a\x80");
    pk_str(pk, "bad");
    pk_str(pk, "a\xff"
               "b\xc3"
               "c\xe2\x9c"
               "d\xed\xa0\x80"
               "e\xc0\xaf"
               "f");
    pk_str(pk, "bin");
    msgpack_pack_array(pk, 5);
    msgpack_pack_bin(pk, 0);
    msgpack_pack_bin(pk, 1);
    msgpack_pack_bin_body(pk, "f", 1);
    msgpack_pack_bin(pk, 2);
    msgpack_pack_bin_body(pk, "fo", 2);
    msgpack_pack_bin(pk, 3);
    msgpack_pack_bin_body(pk, "foo", 3);
    msgpack_pack_bin(pk, 4);
    msgpack_pack_bin_body(pk, "\xfb\xff\xbf\x00", 4);
    pk_str(pk, "k\"ey");
    msgpack_pack_map(pk, 1);
    pk_str(pk, "");
    msgpack_pack_array(pk, 0);
    expect_json(&p,
                "{\"ok\":true,\"n\":null,"
                "\"ints\":[-9223372036854775808,18446744073709551615,0,false],"
                "\"floats\":[1.0,0.1,-2.5e-300,1e+300,null,null,null,0.5],"
                "\"esc\":\"q\\\"b\\\\s/\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\\u0000!\","
                "\"utf8\":\"\xc3\xa9\xe2\x9c\x93\xf0\x9f\x9a\x80\","
                "\"bad\":\"a\\ufffdb\\ufffdc\\ufffd\\ufffdd\\ufffd\\ufffd\\ufffde\\ufffd\\ufffdf\","
                "\"bin\":[\"\",\"Zg==\",\"Zm8=\",\"Zm9v\",\"+/+/AA==\"],"
                "\"k\\\"ey\":{\"\":[]}}");
    msgpack_sbuffer_destroy(&p.sb);

    /* Output longer than the internal buffer comes out whole. */
    packed_init(&p);
    msgpack_pack_array(&p.pk, 3000);
    for (int i = 0; i < 3000; i++) {
        msgpack_pack_uint64(&p.pk, 1000);
    }
    char *got = to_json(p.sb.data, p.sb.size);
    assert_int_equal(strlen(got), 2 + 3000 * 4 + 2999);
    assert_memory_equal(got, "[1000,1000,", 11);
    assert_string_equal(got + strlen(got) - 6, ",1000]");
    free(got);

    /* A failing stream is reported. */
    fr_doc doc;
    assert_fr_ok(fr_doc_decode(p.sb.data, p.sb.size, &doc, NULL));
    FILE *full = fopen("/dev/full", "w");
    if (full != NULL) {
        setvbuf(full, NULL, _IONBF, 0);
        assert_int_equal(fr_node_write_json(doc.root, full), FR_EIO);
        fclose(full);
    }
    fr_doc_free(&doc);
    msgpack_sbuffer_destroy(&p.sb);

    /* Hand-built maps may have keys that are not strings. */
    fr_node kv[4] = {{.type = FR_NODE_UINT, .v.u = 7},
                     {.type = FR_NODE_NIL},
                     {.type = FR_NODE_ARRAY, .len = 0},
                     {.type = FR_NODE_BOOL, .v.b = true}};
    fr_node map = {.type = FR_NODE_MAP, .len = 2, .v.kv = kv};
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_fr_ok(fr_node_write_json(&map, f));
    fclose(f);
    assert_string_equal(text, "{\"7\":null,\"\":true}");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type),          cmocka_unit_test(test_sizes_round_trip),
        cmocka_unit_test(test_non_canonical_input), cmocka_unit_test(test_depth),
        cmocka_unit_test(test_malformed_paths),     cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_huge_claims),         cmocka_unit_test(test_getters),
        cmocka_unit_test(test_pack_failure),        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
