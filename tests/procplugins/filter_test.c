/* filter: include and exclude namespace patterns in snap's query syntax
 * (exact, *, (a;b)), comma-separated, alone and together, and the errors
 * naming the pattern. */
#include "pp_harness.h"
#include "testsupport.h"

#include <string.h>

extern const fr_processor_plugin fr_processor_filter;

static const char *const all_ns[] = {
    "/intel/psutil/load/load1",        "/intel/psutil/load/load5",
    "/intel/psutil/load/load15",       "/intel/psutil/vm/free",
    "/intel/psutil/vm/used",           "/intel/psutil/vm/total",
    "/intel/procfs/meminfo/MemFree",   "/intel/procfs/meminfo/MemFree/x",
    "/intel/libvirt/vm-1/cpu/cputime",
};
#define NALL (sizeof(all_ns) / sizeof(all_ns[0]))

static fr_batch *all_batch(void)
{
    fr_batch *b = pp_batch(3);
    assert_fr_ok(fr_batch_add_tag(b, "dc", "eu"));
    for (size_t i = 0; i < NALL; i++) {
        pp_add(b, all_ns[i], PP_T0 + (int64_t)i, fr_val_i64((int64_t)i), "", "k", "v", NULL);
    }
    return b;
}

/* Runs config over all_ns and checks the kept ones are exactly those whose
 * bit is set in want (bit i = all_ns[i]), in input order. */
static void expect_kept(const char *config, unsigned want)
{
    pp_node n;
    pp_must_open(&n, &fr_processor_filter, config);
    fr_batch *in = all_batch();
    fr_batch *out = pp_must_run(&n, in);
    uint32_t k = 0;
    for (size_t i = 0; i < NALL; i++) {
        if (!(want & (1u << i))) {
            continue;
        }
        if (k >= out->nmetrics || strcmp(out->metrics[k].ns, all_ns[i]) != 0) {
            fail_msg("%s: metric %u should be %s", config, k, all_ns[i]);
        }
        assert_int_equal(out->metrics[k].value.v.i, (int64_t)i);
        assert_string_equal(pp_tag(&out->metrics[k], "k"), "v");
        k++;
    }
    if (k != out->nmetrics) {
        fail_msg("%s: kept %u metrics, want %u", config, out->nmetrics, k);
    }
    assert_int_equal(out->ntags, 1);
    assert_string_equal(out->tags[0].value, "eu");
    assert_int_equal(pp_stat(&n, "kept"), k);
    assert_int_equal(pp_stat(&n, "dropped"), NALL - k);
    fr_batch_destroy(out);
    fr_batch_destroy(in);
    pp_close(&n);
}

static void test_include(void **state)
{
    (void)state;
    expect_kept("{include: '/intel/psutil/load/*'}", 0x7);
    expect_kept("{include: '/intel/psutil/load/load1'}", 0x1);
    expect_kept("{include: '/intel/psutil/*/free'}", 0x8);
    /* a last '*' is everything below, at any depth */
    expect_kept("{include: '/intel/*'}", 0x1ff);
    /* exact: a longer namespace is not the same one */
    expect_kept("{include: /intel/procfs/meminfo/MemFree}", 0x40);
    /* a list of patterns, and alternatives inside one */
    expect_kept("{include: '/intel/psutil/load/(load1;load15), /intel/libvirt/*/cpu/cputime'}",
                0x105);
    expect_kept("{Include: '/intel/none'}", 0x0);
}

static void test_exclude(void **state)
{
    (void)state;
    expect_kept("{exclude: '/intel/psutil/vm/*'}", 0x1ff & ~0x38u);
    expect_kept("{exclude: '/intel/psutil/vm/(free;used),/intel/libvirt/*'}", 0x1ff & ~0x118u);
}

static void test_include_and_exclude(void **state)
{
    (void)state;
    /* exclude applies to what include kept */
    expect_kept("{include: '/intel/psutil/*', exclude: '/intel/psutil/vm/(free;used)'}", 0x27);
    expect_kept("{include: '/intel/psutil/load/*', exclude: '/intel/psutil/load/*'}", 0x0);
    /* with neither, everything passes */
    expect_kept("", 0x1ff);
    expect_kept("{include: '', exclude: ' , '}", 0x1ff);
}

/* Kept metrics share the input's strings. */
static void test_shares_strings(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_filter, "{exclude: '/intel/psutil/vm/*'}");
    fr_batch *in = all_batch();
    fr_batch *out = fr_batch_new(in->task, in->source, in->seq);
    fr_process_req req = {.in = in, .out = out};
    fr_error err;
    assert_fr_ok(n.plugin->process(n.state, &req, &err));
    assert_int_equal(out->nmetrics, NALL - 3);
    assert_ptr_equal(out->metrics[0].ns, in->metrics[0].ns);
    assert_ptr_equal(out->metrics[3].tags, in->metrics[6].tags);
    fr_batch_destroy(out);
    fr_batch_destroy(in);
    pp_close(&n);
}

static void expect_error(const char *config, const char *where, const char *message)
{
    pp_node n;
    fr_error err;
    int rv = pp_open(&n, &fr_processor_filter, config, &err);
    if (rv == 0) {
        pp_close(&n);
        fail_msg("%s: accepted", config);
    }
    if (strcmp(err.where, where) != 0 || strstr(err.message, message) == NULL) {
        fail_msg("%s: got %d '%s' '%s', want '%s' '...%s...'", config, rv, err.where, err.message,
                 where, message);
    }
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("{include: 'intel/psutil/*'}", PP_NODE ".config.include",
                 "filter: key 'include': pattern 1 'intel/psutil/*': ");
    expect_error("{include: '/intel/a, /intel/(b;c'}", PP_NODE ".config.include",
                 "filter: key 'include': pattern 2 '/intel/(b;c': ");
    expect_error("{include: /intel/a, exclude: '/intel//b'}", PP_NODE ".config.exclude",
                 "filter: key 'exclude': pattern 1 '/intel//b': ");
    expect_error("{exclude: '/intel/x*'}", PP_NODE ".config.exclude", "pattern 1 '/intel/x*'");
    expect_error("{includes: /intel}", PP_NODE ".config.includes", "did you mean 'include'?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_exclude),
        cmocka_unit_test(test_include_and_exclude),
        cmocka_unit_test(test_shares_strings),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
