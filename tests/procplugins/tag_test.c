/* tag: snap's string form (the report's task, from its manifest file) and
 * the map form, tags replacing existing keys, batch tags untouched,
 * strings shared with the input, and every config error with its key. */
#include "pp_harness.h"
#include "testsupport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const fr_processor_plugin fr_processor_tag;

#define WHERE_TAGS PP_NODE ".config.tags"

static fr_batch *sample_batch(void)
{
    fr_batch *b = pp_batch(7);
    assert_fr_ok(fr_batch_add_tag(b, "rack", "batch-rack"));
    assert_fr_ok(fr_batch_add_tag(b, "plugin_running_on", "node-1"));
    pp_add(b, "/intel/psutil/load/load1", PP_T0, fr_val_f64(0.5), "", NULL);
    pp_add(b, "/intel/psutil/vm/free", PP_T0, fr_val_u64(4096), "bytes", "rack", "old", "host",
           "h1", NULL);
    pp_add(b, "/intel/psutil/host/name", PP_T0, fr_val_str("h1"), "", NULL);
    return b;
}

static void check_report_tags(const fr_metric *m)
{
    assert_string_equal(pp_tag(m, "rack1"), "rack");
    assert_string_equal(pp_tag(m, "datacenter"), "dublin");
    assert_string_equal(pp_tag(m, "experiment"), "1");
}

/* The task of the report's section 3.1.4.1, as its JSON manifest. */
static void test_report_manifest(void **state)
{
    (void)state;
    char path[512];
    pp_node n;
    fr_error err;
    int rv = pp_open_file(
        &n, &fr_processor_tag,
        tst_src(path, sizeof(path), "tests/manifest/fixtures/report-psutil-tag.json"), &err);
    if (rv != 0) {
        fail_msg("%s: %s", err.where, err.message);
    }
    fr_batch *in = sample_batch();
    fr_batch *out = pp_must_run(&n, in);
    assert_int_equal(out->nmetrics, 3);
    for (uint32_t i = 0; i < out->nmetrics; i++) {
        check_report_tags(&out->metrics[i]);
        assert_string_equal(out->metrics[i].ns, in->metrics[i].ns);
        assert_int_equal(out->metrics[i].ts, in->metrics[i].ts);
    }
    assert_int_equal(out->metrics[0].ntags, 3);
    /* existing tags are kept, new ones come after them */
    assert_int_equal(out->metrics[1].ntags, 5);
    assert_string_equal(out->metrics[1].tags[0].key, "rack");
    assert_string_equal(out->metrics[1].tags[0].value, "old");
    assert_string_equal(out->metrics[1].tags[1].key, "host");
    assert_string_equal(out->metrics[1].tags[2].key, "rack1");
    /* values, types and units as they came */
    assert_int_equal(out->metrics[1].value.type, FR_VAL_UINT64);
    assert_int_equal(out->metrics[1].value.v.u, 4096);
    assert_string_equal(out->metrics[1].unit, "bytes");
    assert_int_equal(out->metrics[2].value.type, FR_VAL_STRING);
    assert_string_equal(out->metrics[2].value.v.s.ptr, "h1");
    /* the batch's own tags are the input's, untouched */
    assert_int_equal(out->ntags, 2);
    assert_string_equal(out->tags[0].value, "batch-rack");
    assert_int_equal(out->seq, 7);
    fr_batch_destroy(out);
    fr_batch_destroy(in);
    pp_close(&n);
}

static void test_map_form_overwrites(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_tag, "{tags: {rack: r1, experiment: 7, url: 'http://x:80'}}");
    fr_batch *in = sample_batch();
    fr_batch *out = pp_must_run(&n, in);
    const fr_metric *m = &out->metrics[1];
    assert_int_equal(m->ntags, 4);
    assert_string_equal(m->tags[0].key, "rack"); /* replaced in place */
    assert_string_equal(m->tags[0].value, "r1");
    assert_string_equal(pp_tag(m, "host"), "h1");
    assert_string_equal(pp_tag(m, "experiment"), "7");
    assert_string_equal(pp_tag(m, "url"), "http://x:80");
    assert_string_equal(pp_tag(&out->metrics[0], "rack"), "r1");
    /* the batch tag of the same key is not the plugin's to change */
    assert_string_equal(out->tags[0].key, "rack");
    assert_string_equal(out->tags[0].value, "batch-rack");
    /* the input is unchanged */
    assert_string_equal(in->metrics[1].tags[0].value, "old");
    assert_int_equal(in->metrics[1].ntags, 2);
    fr_batch_destroy(out);
    fr_batch_destroy(in);
    pp_close(&n);
}

/* Spaces around keys and values go; snap's camelCase key spelling works. */
static void test_string_form_spaces_and_key_case(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_tag, "{Tags: ' rack : r2 ,dc:eu-west '}");
    fr_batch *in = sample_batch();
    fr_batch *out = pp_must_run(&n, in);
    assert_string_equal(pp_tag(&out->metrics[0], "rack"), "r2");
    assert_string_equal(pp_tag(&out->metrics[0], "dc"), "eu-west");
    assert_int_equal(out->metrics[0].ntags, 2);
    fr_batch_destroy(out);
    fr_batch_destroy(in);
    pp_close(&n);
}

/* The output shares the input's strings; only the tag array is new. */
static void test_shares_input_strings(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_tag, "{tags: 'a:b'}");
    fr_batch *in = sample_batch();
    fr_batch *out = fr_batch_new(in->task, in->source, in->seq);
    fr_process_req req = {.in = in, .out = out};
    fr_error err;
    assert_fr_ok(n.plugin->process(n.state, &req, &err));
    for (uint32_t i = 0; i < in->nmetrics; i++) {
        assert_ptr_equal(out->metrics[i].ns, in->metrics[i].ns);
        assert_ptr_equal(out->metrics[i].unit, in->metrics[i].unit);
        assert_ptr_not_equal(out->metrics[i].tags, in->metrics[i].tags);
        for (uint32_t j = 0; j < in->metrics[i].ntags; j++) {
            assert_ptr_equal(out->metrics[i].tags[j].value, in->metrics[i].tags[j].value);
        }
        const fr_tag *t = &out->metrics[i].tags[out->metrics[i].ntags - 1];
        assert_int_equal(t->key_len, 1);
        assert_int_equal(t->value_len, 1);
    }
    /* a second instance's strings are its own */
    pp_node n2;
    pp_must_open(&n2, &fr_processor_tag, "{tags: 'a:b'}");
    fr_batch *out2 = fr_batch_new(in->task, in->source, in->seq);
    req.out = out2;
    assert_fr_ok(n2.plugin->process(n2.state, &req, &err));
    assert_ptr_not_equal(out2->metrics[0].tags[0].value, out->metrics[0].tags[0].value);
    fr_batch_destroy(out2);
    fr_batch_destroy(out);
    fr_batch_destroy(in);
    pp_close(&n2);
    pp_close(&n);
}

static void expect_error(const char *config, int code, const char *where, const char *message)
{
    pp_node n;
    fr_error err;
    int rv = pp_open(&n, &fr_processor_tag, config, &err);
    if (rv == 0) {
        pp_close(&n);
        fail_msg("%s: accepted", config);
    }
    if (rv != code || strcmp(err.where, where) != 0 || strstr(err.message, message) == NULL) {
        fail_msg("%s: got %d '%s' '%s', want %d '%s' '...%s...'", config, rv, err.where,
                 err.message, code, where, message);
    }
}

static void test_string_form_errors(void **state)
{
    (void)state;
    expect_error("", FR_EMISSING, WHERE_TAGS, "tag: no tags");
    expect_error("{tags: ~}", FR_EMISSING, WHERE_TAGS, "tag: no tags");
    expect_error("{tags: ''}", FR_ECONFIG, WHERE_TAGS, "tag: pair 1 is empty");
    expect_error("{tags: 'rack1:rack,,experiment:1'}", FR_ECONFIG, WHERE_TAGS,
                 "tag: pair 2 is empty");
    expect_error("{tags: 'rack1:rack,'}", FR_ECONFIG, WHERE_TAGS, "pair 2 is empty");
    expect_error("{tags: 'rack1:rack,datacenter,experiment:1'}", FR_ECONFIG, WHERE_TAGS,
                 "tag: pair 2 'datacenter' has no ':'");
    expect_error("{tags: 'rack1:rack:datacenter:dublin'}", FR_ECONFIG, WHERE_TAGS,
                 "pair 1 'rack1:rack:datacenter:dublin' has more than one ':'");
    expect_error("{tags: 'a:b, :x'}", FR_ECONFIG, WHERE_TAGS, "pair 2 ':x' has an empty key");
    expect_error("{tags: 'a:b,c:d,x: '}", FR_ECONFIG, WHERE_TAGS, "pair 3 'x:' has an empty value");
    expect_error("{tags: 'a:1,b:2,a:3'}", FR_ECONFIG, WHERE_TAGS,
                 "pair 3 'a:3': key 'a' is given in pair 1 already");
    char many[257 * 8 + 16];
    size_t off = (size_t)snprintf(many, sizeof(many), "{tags: '");
    for (int i = 0; i < 257; i++) {
        off += (size_t)snprintf(many + off, sizeof(many) - off, "%sk%d:v", i ? "," : "", i);
    }
    snprintf(many + off, sizeof(many) - off, "'}");
    expect_error(many, FR_ECONFIG, WHERE_TAGS, "257 pairs, more than the 256");
}

static void test_map_form_errors(void **state)
{
    (void)state;
    expect_error("{tags: {}}", FR_EMISSING, WHERE_TAGS, "no tags");
    expect_error("{tags: {rack: {row: 3}}}", FR_ECONFIG, WHERE_TAGS,
                 "tag: key 'tags': tag 'rack': a tag value is a string, not a map");
    expect_error("{tags: {rack: r1, dc: ~}}", FR_ECONFIG, WHERE_TAGS,
                 "tag: key 'tags': tag 'dc' has an empty value");
    expect_error("{tags: {rack: r1}, Tags: 'a:b'}", FR_ECONFIG, WHERE_TAGS,
                 "tag: tags given both as a string and as a map");
    expect_error("{tags: {rack: r1}, Tags: {a: b}}", FR_ECONFIG, PP_NODE ".config.Tags",
                 "tags given twice");
    expect_error("{tagz: 'a:b'}", FR_EUNKNOWN, PP_NODE ".config.tagz", "tagz");
    char many[257 * 12 + 32];
    size_t off = (size_t)snprintf(many, sizeof(many), "{tags: {");
    for (int i = 0; i < 257; i++) {
        off += (size_t)snprintf(many + off, sizeof(many) - off, "%sk%d: v", i ? ", " : "", i);
    }
    snprintf(many + off, sizeof(many) - off, "}}");
    expect_error(many, FR_ECONFIG, WHERE_TAGS, "257 tags, more than the 256 a metric may carry");
    expect_error("{other: {a: b}}", FR_EUNKNOWN, PP_NODE ".config.other",
                 "tag: key 'other' takes no map");
}

/* A metric that would go past FR_MAX_TAGS fails the batch (the engine
 * then passes it on unprocessed) with the metric named. */
static void test_too_many_tags_fails_the_batch(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_tag, "{tags: 'extra:1'}");
    fr_batch *in = pp_batch(1);
    pp_add(in, "/intel/mock/ok", PP_T0, fr_val_i64(1), "", NULL);
    fr_metric *m = pp_add(in, "/intel/mock/full", PP_T0, fr_val_i64(1), "", NULL);
    for (int i = 0; i < (int)FR_MAX_TAGS; i++) {
        char k[16];
        snprintf(k, sizeof(k), "t%d", i);
        assert_fr_ok(fr_batch_metric_tag(in, m, k, "v"));
    }
    fr_batch *out = NULL;
    fr_error err;
    assert_int_equal(pp_run(&n, in, &out, &err), FR_ETOOBIG);
    assert_null(out);
    assert_non_null(strstr(err.message, "metric 1 (/intel/mock/full) would carry more than 256"));
    /* replacing a key of a full metric is fine */
    pp_close(&n);
    pp_must_open(&n, &fr_processor_tag, "{tags: 't0:new'}");
    out = pp_must_run(&n, in);
    assert_string_equal(pp_tag(&out->metrics[1], "t0"), "new");
    assert_int_equal(out->metrics[1].ntags, FR_MAX_TAGS);
    fr_batch_destroy(out);
    fr_batch_destroy(in);
    pp_close(&n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_manifest),
        cmocka_unit_test(test_map_form_overwrites),
        cmocka_unit_test(test_string_form_spaces_and_key_case),
        cmocka_unit_test(test_shares_input_strings),
        cmocka_unit_test(test_string_form_errors),
        cmocka_unit_test(test_map_form_errors),
        cmocka_unit_test(test_too_many_tags_fails_the_batch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
