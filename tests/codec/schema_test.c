/* The wire contract's examples (schemas/examples/<name>.hex) against the
 * code: each decodes, re-encodes to the same bytes, and has the shape its
 * schema describes. The name's prefix says what kind of message it is. */
#include "testsupport.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "fresco/metric.h"
#include "fresco/mpdoc.h"

#define TOPIC_MAX 128

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = '\0';
    fclose(f);
    return s;
}

/* Hex pairs with whitespace and '#' comments between them. Returns the byte
 * count, or -1 (with a message) on anything else. */
static long parse_hex(const char *text, uint8_t *out, size_t cap, char *why, size_t whylen)
{
    size_t n = 0;
    int half = -1;
    int line = 1;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '#') {
            while (*p != '\0' && *p != '\n') {
                p++;
            }
            if (*p == '\0') {
                break;
            }
        }
        if (*p == '\n') {
            line++;
        }
        if (isspace((unsigned char)*p)) {
            if (half >= 0) {
                snprintf(why, whylen, "line %d: a lone hex digit", line);
                return -1;
            }
            continue;
        }
        if (!isxdigit((unsigned char)*p)) {
            snprintf(why, whylen, "line %d: '%c' is not a hex digit", line, *p);
            return -1;
        }
        int v = isdigit((unsigned char)*p) ? *p - '0' : tolower((unsigned char)*p) - 'a' + 10;
        if (half < 0) {
            half = v;
        } else {
            if (n == cap) {
                snprintf(why, whylen, "over %zu bytes", cap);
                return -1;
            }
            out[n++] = (uint8_t)(half << 4 | v);
            half = -1;
        }
    }
    if (half >= 0) {
        snprintf(why, whylen, "a lone hex digit at the end");
        return -1;
    }
    return (long)n;
}

typedef struct example {
    char name[128];
    uint8_t *data;
    size_t len;
} example;

typedef struct examples {
    example *v;
    size_t n;
    char dir[1024];
} examples;

static int cmp_example(const void *a, const void *b)
{
    return strcmp(((const example *)a)->name, ((const example *)b)->name);
}

static void load_examples(examples *ex)
{
    tst_src(ex->dir, sizeof(ex->dir), "schemas/examples");
    DIR *d = opendir(ex->dir);
    if (d == NULL) {
        fail_msg("cannot open %s (is FRESCO_TEST_SRC set?)", ex->dir);
    }
    ex->v = NULL;
    ex->n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".hex") != 0) {
            continue;
        }
        char path[sizeof(ex->dir) + sizeof(e->d_name) + 1];
        snprintf(path, sizeof(path), "%s/%s", ex->dir, e->d_name);
        char *text = read_text(path);
        assert_non_null(text);
        ex->v = realloc(ex->v, (ex->n + 1) * sizeof(*ex->v));
        example *x = &ex->v[ex->n++];
        snprintf(x->name, sizeof(x->name), "%.*s", (int)(len - 4), e->d_name);
        size_t cap = strlen(text) / 2 + 1;
        x->data = malloc(cap);
        char why[128];
        long n = parse_hex(text, x->data, cap, why, sizeof(why));
        if (n < 0) {
            fail_msg("%s: %s", e->d_name, why);
        }
        x->len = (size_t)n;
        free(text);
    }
    closedir(d);
    qsort(ex->v, ex->n, sizeof(*ex->v), cmp_example);
}

static void free_examples(examples *ex)
{
    for (size_t i = 0; i < ex->n; i++) {
        free(ex->v[i].data);
    }
    free(ex->v);
}

static const example *find(const examples *ex, const char *name)
{
    for (size_t i = 0; i < ex->n; i++) {
        if (strcmp(ex->v[i].name, name) == 0) {
            return &ex->v[i];
        }
    }
    fail_msg("schemas/examples/%s.hex is missing", name);
    return NULL;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- per kind ---- */

static void check_batch(const example *x)
{
    fr_batch *b = NULL;
    fr_error err;
    int rv = fr_batch_decode(x->data, x->len, &b, &err);
    if (rv != 0) {
        fail_msg("%s: %s (at \"%s\")", x->name, err.message, err.where);
    }
    fr_buf buf = FR_BUF_INIT;
    assert_fr_ok(fr_batch_encode(b, &buf));
    if (buf.len != x->len || memcmp(buf.data, x->data, x->len) != 0) {
        fail_msg("%s: re-encoding gives other bytes (%zu, want %zu)", x->name, buf.len, x->len);
    }
    fr_buf_free(&buf);
    fr_batch_destroy(b);
}

/* Decodes a document and checks that packing it gives the same bytes. */
static void check_doc(const example *x, const uint8_t *data, size_t len, fr_doc *doc)
{
    fr_error err;
    int rv = fr_doc_decode(data, len, doc, &err);
    if (rv != 0) {
        fail_msg("%s: %s (at \"%s\")", x->name, err.message, err.where);
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_fr_ok(fr_node_pack(doc->root, &pk));
    if (sb.size != len || memcmp(sb.data, data, len) != 0) {
        fail_msg("%s: re-packing gives other bytes (%zu, want %zu)", x->name, sb.size, len);
    }
    msgpack_sbuffer_destroy(&sb);
    assert_int_equal(doc->root->type, FR_NODE_MAP);
}

/* Every key of map is one of the NULL-terminated names. */
static void check_keys(const example *x, const fr_node *map, const char *const *names)
{
    for (uint32_t i = 0; i < map->len; i++) {
        const char *k = map->v.kv[2 * i].v.str;
        bool known = false;
        for (const char *const *n = names; *n != NULL; n++) {
            known = known || strcmp(k, *n) == 0;
        }
        if (!known) {
            fail_msg("%s: unexpected key \"%s\"", x->name, k);
        }
    }
}

static void check_request(const example *x)
{
    static const char *const keys[] = {"op", "args", NULL};
    fr_doc doc;
    check_doc(x, x->data, x->len, &doc);
    const char *op;
    assert_fr_ok(fr_node_get_str(doc.root, "op", &op));
    assert_true(op[0] != '\0');
    const fr_node *args = fr_node_get(doc.root, "args");
    assert_true(args == NULL || args->type == FR_NODE_MAP);
    check_keys(x, doc.root, keys);
    fr_doc_free(&doc);
}

/* A control reply or a data ack: {"ok": true, ...} or
 * {"ok": false, "error": {"code", "message", "where"}}. */
static void check_reply(const example *x, bool is_ack)
{
    static const char *const ok_keys[] = {"ok", "result", NULL};
    static const char *const ack_keys[] = {"ok", NULL};
    static const char *const err_keys[] = {"ok", "error", NULL};
    static const char *const error_keys[] = {"code", "message", "where", NULL};
    fr_doc doc;
    check_doc(x, x->data, x->len, &doc);
    bool ok;
    assert_fr_ok(fr_node_get_bool(doc.root, "ok", &ok));
    if (ok) {
        check_keys(x, doc.root, is_ack ? ack_keys : ok_keys);
        if (!is_ack) {
            assert_non_null(fr_node_get(doc.root, "result"));
        }
    } else {
        check_keys(x, doc.root, err_keys);
        const fr_node *e = fr_node_get(doc.root, "error");
        assert_non_null(e);
        assert_int_equal(e->type, FR_NODE_MAP);
        assert_int_equal(e->len, 3);
        check_keys(x, e, error_keys);
        const char *s;
        assert_fr_ok(fr_node_get_str(e, "code", &s));
        assert_true(s[0] != '\0');
        assert_fr_ok(fr_node_get_str(e, "message", &s));
        assert_fr_ok(fr_node_get_str(e, "where", &s));
    }
    fr_doc_free(&doc);
}

static void check_event(const example *x)
{
    static const char *const keys[] = {"src", "seq", "ts", "body", NULL};
    const uint8_t *nul = memchr(x->data, 0, x->len);
    if (nul == NULL) {
        fail_msg("%s: no NUL after the topic", x->name);
    }
    size_t tlen = (size_t)(nul - x->data);
    assert_true(tlen > 0 && tlen <= TOPIC_MAX);
    fr_doc doc;
    check_doc(x, nul + 1, x->len - tlen - 1, &doc);
    const char *src;
    uint64_t seq;
    int64_t ts;
    assert_fr_ok(fr_node_get_str(doc.root, "src", &src));
    assert_fr_ok(fr_node_get_u64(doc.root, "seq", &seq));
    assert_true(seq >= 1);
    assert_fr_ok(fr_node_get_i64(doc.root, "ts", &ts));
    assert_non_null(fr_node_get(doc.root, "body"));
    assert_int_equal(doc.root->len, 4);
    check_keys(x, doc.root, keys);
    fr_doc_free(&doc);
}

/* ---- tests ---- */

static void test_every_example_round_trips(void **state)
{
    examples ex;
    load_examples(&ex);
    assert_true(ex.n > 0);
    for (size_t i = 0; i < ex.n; i++) {
        const example *x = &ex.v[i];
        if (has_prefix(x->name, "batch-")) {
            check_batch(x);
        } else if (has_prefix(x->name, "ctl-") && strstr(x->name, "-request") != NULL) {
            check_request(x);
        } else if (has_prefix(x->name, "ctl-") && strstr(x->name, "-reply") != NULL) {
            check_reply(x, false);
        } else if (has_prefix(x->name, "pipeline-") && strstr(x->name, "-request") != NULL) {
            check_request(x);
        } else if (has_prefix(x->name, "pipeline-") && strstr(x->name, "-reply") != NULL) {
            check_reply(x, false);
        } else if (has_prefix(x->name, "data-")) {
            check_reply(x, true);
        } else if (has_prefix(x->name, "event-")) {
            check_event(x);
        } else {
            fail_msg("%s.hex: no rule for this name (batch-*, ctl-*-request, ctl-*-reply, "
                     "pipeline-*-request, pipeline-*-reply, data-*, event-*)",
                     x->name);
        }
    }
    free_examples(&ex);
}

/* Each example is shown in the schema it belongs to. */
static void test_every_example_is_documented(void **state)
{
    examples ex;
    load_examples(&ex);
    static const struct {
        const char *prefix;
        const char *doc;
    } owners[] = {
        {"batch-", "schemas/batch.md"},
        {"ctl-", "schemas/control.md"},
        {"pipeline-", "schemas/pipeline.md"},
        {"data-", "schemas/data.md"},
        {"event-", "schemas/event.md"},
    };
    for (size_t i = 0; i < ex.n; i++) {
        const char *doc = NULL;
        for (size_t j = 0; j < sizeof(owners) / sizeof(owners[0]); j++) {
            if (has_prefix(ex.v[i].name, owners[j].prefix)) {
                doc = owners[j].doc;
            }
        }
        assert_non_null(doc);
        char path[1024];
        char *text = read_text(tst_src(path, sizeof(path), doc));
        if (text == NULL) {
            fail_msg("%s is missing", doc);
        }
        char ref[160];
        snprintf(ref, sizeof(ref), "examples/%s.hex", ex.v[i].name);
        if (strstr(text, ref) == NULL) {
            fail_msg("%s does not mention %s", doc, ref);
        }
        free(text);
    }
    free_examples(&ex);
}

static void test_required_examples(void **state)
{
    static const char *const required[] = {
        "batch-every-type",        "batch-empty",    "ctl-ping-request",
        "ctl-task-create-request", "ctl-ping-reply", "ctl-error-reply",
        "event-task-state",        "data-ack",       "data-busy",
        "batch-routed",            "pipeline-remove-request", "pipeline-put-reply",
    };
    examples ex;
    load_examples(&ex);
    for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
        find(&ex, required[i]);
    }
    free_examples(&ex);
}

static void test_batch_example_values(void **state)
{
    examples ex;
    load_examples(&ex);
    const example *x = find(&ex, "batch-every-type");
    fr_batch *b;
    assert_fr_ok(fr_batch_decode(x->data, x->len, &b, NULL));
    assert_string_equal(b->task, "load-monitor");
    assert_string_equal(b->source, "node-1");
    assert_true(b->seq == 42);
    assert_int_equal(b->ntags, 2);
    assert_string_equal(b->tags[1].key, "rack");
    assert_string_equal(b->tags[1].value, "r12");
    assert_int_equal(b->nmetrics, 6);
    bool seen[5] = {false};
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        seen[b->metrics[i].value.type] = true;
    }
    for (int t = 0; t < 5; t++) {
        assert_true(seen[t]);
    }
    const fr_metric *m = &b->metrics[0];
    assert_string_equal(m->ns, "/intel/psutil/load/load1");
    assert_true(m->ts == 1700000000000000000LL);
    assert_int_equal(m->value.type, FR_VAL_DOUBLE);
    assert_true(m->value.v.d == 0.75);
    m = &b->metrics[1];
    assert_int_equal(m->value.type, FR_VAL_UINT64);
    assert_true(m->value.v.u == 8388608000ull);
    assert_string_equal(m->unit, "B");
    assert_string_equal(m->tags[0].value, "node-1");
    m = &b->metrics[2];
    assert_int_equal(m->value.type, FR_VAL_INT64);
    assert_true(m->value.v.i == -12);
    m = &b->metrics[3];
    assert_int_equal(m->value.type, FR_VAL_INT64);
    assert_true(m->value.v.i == 300);
    m = &b->metrics[4];
    assert_true(m->value.v.b);
    m = &b->metrics[5];
    assert_int_equal(m->value.v.s.len, 7);
    assert_string_equal(m->value.v.s.ptr, "running");
    assert_string_equal(m->tags[1].value, "n\xc3\xb6"
                                          "de-1");
    fr_batch_destroy(b);

    x = find(&ex, "batch-empty");
    assert_fr_ok(fr_batch_decode(x->data, x->len, &b, NULL));
    assert_int_equal(b->nmetrics, 0);
    assert_int_equal(b->ntags, 0);
    assert_string_equal(b->task, "");
    fr_batch_destroy(b);

    /* The data-path answers say what the sender must do. */
    fr_doc doc;
    const char *code;
    x = find(&ex, "data-busy");
    assert_fr_ok(fr_doc_decode(x->data, x->len, &doc, NULL));
    assert_fr_ok(fr_node_get_str(fr_node_get(doc.root, "error"), "code", &code));
    assert_string_equal(code, fr_errcode(FR_EBUSY));
    fr_doc_free(&doc);
    x = find(&ex, "ctl-ping-request");
    assert_fr_ok(fr_doc_decode(x->data, x->len, &doc, NULL));
    assert_fr_ok(fr_node_get_str(doc.root, "op", &code));
    assert_string_equal(code, "ping");
    fr_doc_free(&doc);
    free_examples(&ex);
}

static void test_hex_format(void **state)
{
    uint8_t out[8];
    char why[128];
    assert_int_equal(parse_hex("# c\n0a FF\t7b # x\n", out, sizeof(out), why, sizeof(why)), 3);
    assert_memory_equal(out, "\x0a\xff\x7b", 3);
    assert_int_equal(parse_hex("0a0b", out, sizeof(out), why, sizeof(why)), 2);
    assert_int_equal(parse_hex("0a b", out, sizeof(out), why, sizeof(why)), -1);
    assert_int_equal(parse_hex("0 a", out, sizeof(out), why, sizeof(why)), -1);
    assert_int_equal(parse_hex("zz", out, sizeof(out), why, sizeof(why)), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_format),
        cmocka_unit_test(test_required_examples),
        cmocka_unit_test(test_every_example_round_trips),
        cmocka_unit_test(test_every_example_is_documented),
        cmocka_unit_test(test_batch_example_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
