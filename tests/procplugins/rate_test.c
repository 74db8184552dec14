/* rate: per-second rates of counters per series from the metrics' own
 * timestamps, units, 32- and 64-bit wraps, resets, points out of order,
 * the wrap and max_rate settings, bounds, and config errors. */
#include "pp_harness.h"
#include "testsupport.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

extern const fr_processor_plugin fr_processor_rate;

#define NS "/intel/procfs/iface/eth0/bytes_recv"

/* Feeds one point of NS at ms milliseconds after PP_T0 and returns the
 * output (one batch per point). */
static fr_batch *feed(pp_node *n, int64_t ms, fr_value v, const char *unit)
{
    fr_batch *in = pp_batch((uint64_t)ms);
    pp_add(in, NS, PP_T0 + ms * 1000000, v, unit, "iface", "eth0", NULL);
    fr_batch *out = pp_must_run(n, in);
    fr_batch_destroy(in);
    return out;
}

/* Feeds and expects no output. */
static void feed_none(pp_node *n, int64_t ms, fr_value v)
{
    fr_batch *out = feed(n, ms, v, "bytes");
    if (out->nmetrics != 0) {
        fail_msg("at %lld ms: %u metrics out, want none", (long long)ms, out->nmetrics);
    }
    fr_batch_destroy(out);
}

/* Feeds and expects one rate. */
static void feed_rate(pp_node *n, int64_t ms, fr_value v, double want)
{
    fr_batch *out = feed(n, ms, v, "bytes");
    if (out->nmetrics != 1) {
        fail_msg("at %lld ms: %u metrics out, want one", (long long)ms, out->nmetrics);
    }
    const fr_metric *m = &out->metrics[0];
    assert_int_equal(m->value.type, FR_VAL_DOUBLE);
    if (fabs(m->value.v.d - want) > 1e-9 * fabs(want) + 1e-12) {
        fail_msg("at %lld ms: rate %.17g, want %.17g", (long long)ms, m->value.v.d, want);
    }
    assert_int_equal(m->ts, PP_T0 + ms * 1000000);
    fr_batch_destroy(out);
}

static void test_basic_rate(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_rate, "");
    fr_batch *out = feed(&n, 0, fr_val_u64(1000), "bytes");
    assert_int_equal(out->nmetrics, 0); /* the first point gives nothing */
    fr_batch_destroy(out);
    out = feed(&n, 10000, fr_val_u64(6000), "bytes");
    assert_int_equal(out->nmetrics, 1);
    const fr_metric *m = &out->metrics[0];
    assert_string_equal(m->ns, NS);
    assert_string_equal(m->unit, "bytes/s");
    assert_string_equal(pp_tag(m, "iface"), "eth0");
    assert_true(m->value.v.d == 500.0);
    fr_batch_destroy(out);
    /* the time between points is the metrics' own: 250 ms here */
    feed_rate(&n, 10250, fr_val_u64(6100), 400.0);
    feed_rate(&n, 11250, fr_val_u64(6100), 0.0);
    assert_int_equal(pp_stat(&n, "emitted"), 3);
    assert_int_equal(pp_stat(&n, "points"), 4);
    pp_close(&n);
}

static void test_units_and_types(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_rate, "");
    /* unitless: 1/s; a double counter (cpu seconds): s/s */
    fr_batch *in = pp_batch(1);
    pp_add(in, "/intel/mock/ops", PP_T0, fr_val_i64(10), "", NULL);
    pp_add(in, "/intel/psutil/cpu/cpu0/user", PP_T0, fr_val_f64(100.25), "s", NULL);
    fr_batch_destroy(pp_must_run(&n, in));
    fr_batch_destroy(in);
    in = pp_batch(2);
    pp_add(in, "/intel/mock/ops", PP_T0 + 2 * PP_SEC, fr_val_i64(30), "", NULL);
    pp_add(in, "/intel/psutil/cpu/cpu0/user", PP_T0 + 2 * PP_SEC, fr_val_f64(101.75), "s", NULL);
    fr_batch *out = pp_must_run(&n, in);
    assert_int_equal(out->nmetrics, 2);
    assert_string_equal(out->metrics[0].unit, "1/s");
    assert_true(out->metrics[0].value.v.d == 10.0);
    assert_string_equal(out->metrics[1].unit, "s/s");
    assert_true(out->metrics[1].value.v.d == 0.75);
    fr_batch_destroy(out);
    fr_batch_destroy(in);
    /* a long unit */
    char unit[400];
    memset(unit, 'u', sizeof(unit) - 1);
    unit[sizeof(unit) - 1] = '\0';
    for (int i = 0; i < 2; i++) {
        in = pp_batch(3);
        pp_add(in, "/intel/mock/long", PP_T0 + i * PP_SEC, fr_val_u64(5 * (uint64_t)i), unit, NULL);
        out = pp_must_run(&n, in);
        if (i == 1) {
            assert_int_equal(strlen(out->metrics[0].unit), sizeof(unit) - 1 + 2);
            assert_string_equal(out->metrics[0].unit + sizeof(unit) - 1, "/s");
        }
        fr_batch_destroy(out);
        fr_batch_destroy(in);
    }
    pp_close(&n);
}

static void test_wraps(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_rate, "");
    /* a 32-bit counter: 4294967000 -> 200 is 496 more */
    feed_none(&n, 0, fr_val_u64(4294967000u));
    feed_rate(&n, 10000, fr_val_u64(200), 49.6);
    /* the same as int64 */
    pp_close(&n);
    pp_must_open(&n, &fr_processor_rate, "");
    feed_none(&n, 0, fr_val_i64(4294967000));
    feed_rate(&n, 10000, fr_val_i64(200), 49.6);
    pp_close(&n);
    /* a 64-bit counter: 2^64 - 100 -> 100 is 200 more */
    pp_must_open(&n, &fr_processor_rate, "");
    feed_none(&n, 0, fr_val_u64(UINT64_MAX - 99));
    feed_rate(&n, 1000, fr_val_u64(100), 200.0);
    feed_rate(&n, 2000, fr_val_u64(150), 50.0);
    assert_int_equal(pp_stat(&n, "wraps"), 1);
    assert_int_equal(pp_stat(&n, "resets"), 0);
    pp_close(&n);
}

/* A decrease that is no plausible wrap: nothing for that point, and the
 * series starts over from it. */
static void test_resets(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_rate, "");
    feed_none(&n, 0, fr_val_u64(1000000));
    feed_rate(&n, 1000, fr_val_u64(1000500), 500.0);
    feed_none(&n, 2000, fr_val_u64(10)); /* a 32-bit wrap would be 2^32 - 1000490 */
    feed_rate(&n, 3000, fr_val_u64(110), 100.0);
    assert_int_equal(pp_stat(&n, "resets"), 1);
    pp_close(&n);
    /* 64 bits: 5e18 -> 7 would be a wrap of more than 2^63 */
    pp_must_open(&n, &fr_processor_rate, "");
    feed_none(&n, 4000, fr_val_u64(5000000000000000000u));
    feed_none(&n, 5000, fr_val_u64(7));
    feed_rate(&n, 6000, fr_val_u64(17), 10.0);
    pp_close(&n);
    /* doubles never wrap */
    pp_must_open(&n, &fr_processor_rate, "");
    feed_none(&n, 7000, fr_val_f64(1e30));
    feed_none(&n, 8000, fr_val_f64(5.0));
    feed_rate(&n, 9000, fr_val_f64(6.5), 1.5);
    pp_close(&n);
    /* nor do negative integers */
    pp_must_open(&n, &fr_processor_rate, "");
    feed_none(&n, 10000, fr_val_i64(-5));
    feed_none(&n, 11000, fr_val_i64(-6));
    feed_rate(&n, 12000, fr_val_i64(-2), 4.0);
    assert_int_equal(pp_stat(&n, "resets"), 1);
    assert_int_equal(pp_stat(&n, "wraps"), 0);
    pp_close(&n);
}

static void test_wrap_settings(void **state)
{
    (void)state;
    pp_node n;
    /* none: every decrease is a reset */
    pp_must_open(&n, &fr_processor_rate, "{wrap: none}");
    feed_none(&n, 0, fr_val_u64(4294967000u));
    feed_none(&n, 1000, fr_val_u64(200));
    feed_rate(&n, 2000, fr_val_u64(300), 100.0);
    pp_close(&n);
    /* 64: a small counter dropping is a reset, not a 32-bit wrap */
    pp_must_open(&n, &fr_processor_rate, "{wrap: 64}");
    feed_none(&n, 0, fr_val_u64(4294967000u));
    feed_none(&n, 1000, fr_val_u64(200));
    assert_int_equal(pp_stat(&n, "resets"), 1);
    pp_close(&n);
    pp_must_open(&n, &fr_processor_rate, "{wrap: 64}");
    feed_none(&n, 2000, fr_val_u64(UINT64_MAX - 9));
    feed_rate(&n, 3000, fr_val_u64(10), 20.0);
    pp_close(&n);
    /* 32: a value past 32 bits dropping is a reset */
    pp_must_open(&n, &fr_processor_rate, "{wrap: 32}");
    feed_none(&n, 0, fr_val_u64(UINT64_MAX - 9));
    feed_none(&n, 1000, fr_val_u64(10));
    assert_int_equal(pp_stat(&n, "resets"), 1);
    pp_close(&n);
    pp_must_open(&n, &fr_processor_rate, "{wrap: 32}");
    feed_none(&n, 2000, fr_val_u64(4294967295u));
    feed_rate(&n, 3000, fr_val_u64(4), 5.0);
    assert_int_equal(pp_stat(&n, "wraps"), 1);
    pp_close(&n);
    /* max_rate: a wrap implying more is a reset */
    pp_must_open(&n, &fr_processor_rate, "{max_rate: 40}");
    feed_none(&n, 0, fr_val_u64(4294967000u));
    feed_none(&n, 10000, fr_val_u64(200)); /* 49.6/s */
    feed_rate(&n, 20000, fr_val_u64(500), 30.0);
    /* ordinary increases are not limited */
    feed_rate(&n, 30000, fr_val_u64(4294967000u), 429496650.0);
    feed_rate(&n, 40000, fr_val_u64(4294967295u), 29.5);
    assert_int_equal(pp_stat(&n, "resets"), 1);
    pp_close(&n);
    pp_must_open(&n, &fr_processor_rate, "{max_rate: 50.5}");
    feed_none(&n, 0, fr_val_u64(4294967000u));
    feed_rate(&n, 10000, fr_val_u64(200), 49.6);
    pp_close(&n);
}

/* A point not later than the last gives nothing and is not remembered. */
static void test_out_of_order(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_rate, "");
    feed_none(&n, 5000, fr_val_u64(100));
    feed_none(&n, 5000, fr_val_u64(150)); /* the same time */
    feed_none(&n, 4000, fr_val_u64(50));  /* earlier */
    feed_rate(&n, 6000, fr_val_u64(200), 100.0);
    assert_int_equal(pp_stat(&n, "out_of_order"), 2);
    pp_close(&n);
}

/* Series are separate, also within one batch; other values pass. */
static void test_series_and_passing(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_rate, "");
    for (int64_t s = 0; s < 3; s++) {
        fr_batch *in = pp_batch((uint64_t)s);
        pp_add(in, NS, PP_T0 + s * PP_SEC, fr_val_u64(100 * (uint64_t)s), "", "iface", "eth0",
               NULL);
        pp_add(in, NS, PP_T0 + s * PP_SEC, fr_val_u64(7 * (uint64_t)s), "", "iface", "eth1", NULL);
        pp_add(in, "/intel/mock/state", PP_T0 + s * PP_SEC, fr_val_str("up"), "", NULL);
        pp_add(in, "/intel/mock/nan", PP_T0 + s * PP_SEC, fr_val_f64(NAN), "", NULL);
        fr_batch *out = pp_must_run(&n, in);
        if (s == 0) {
            assert_int_equal(out->nmetrics, 2);
            assert_string_equal(out->metrics[0].value.v.s.ptr, "up");
            assert_true(isnan(out->metrics[1].value.v.d));
        } else {
            assert_int_equal(out->nmetrics, 4);
            assert_true(out->metrics[0].value.v.d == 100.0);
            assert_string_equal(pp_tag(&out->metrics[0], "iface"), "eth0");
            assert_true(out->metrics[1].value.v.d == 7.0);
            assert_string_equal(pp_tag(&out->metrics[1], "iface"), "eth1");
            assert_int_equal(out->metrics[2].value.type, FR_VAL_STRING);
        }
        fr_batch_destroy(out);
        fr_batch_destroy(in);
    }
    assert_int_equal(pp_stat(&n, "series"), 2);
    assert_int_equal(pp_stat(&n, "passed"), 6);
    pp_close(&n);
}

static void test_bounds(void **state)
{
    (void)state;
    pp_node n;
    /* expire: a point after a longer gap starts over */
    pp_must_open(&n, &fr_processor_rate, "{expire: 30s}");
    feed_none(&n, 0, fr_val_u64(100));
    feed_rate(&n, 30000, fr_val_u64(400), 10.0);
    feed_none(&n, 60001, fr_val_u64(500));
    feed_rate(&n, 61001, fr_val_u64(600), 100.0);
    assert_int_equal(pp_stat(&n, "expired"), 1);
    pp_close(&n);
    /* max_series: two series alternating through a table of one */
    pp_must_open(&n, &fr_processor_rate, "{max_series: 1}");
    for (int64_t s = 0; s < 4; s++) {
        fr_batch *in = pp_batch((uint64_t)s);
        pp_add(in, s % 2 ? "/intel/mock/a" : "/intel/mock/b", PP_T0 + s * PP_SEC,
               fr_val_u64((uint64_t)s), "", NULL);
        fr_batch *out = pp_must_run(&n, in);
        assert_int_equal(out->nmetrics, 0);
        fr_batch_destroy(out);
        fr_batch_destroy(in);
    }
    assert_int_equal(pp_stat(&n, "evicted"), 3);
    assert_int_equal(pp_stat(&n, "series"), 1);
    pp_close(&n);
}

static void expect_error(const char *config, const char *where, const char *message)
{
    pp_node n;
    fr_error err;
    int rv = pp_open(&n, &fr_processor_rate, config, &err);
    if (rv == 0) {
        pp_close(&n);
        fail_msg("%s: accepted", config);
    }
    if (rv != FR_ECONFIG || strcmp(err.where, where) != 0 || strstr(err.message, message) == NULL) {
        fail_msg("%s: got %d '%s' '%s', want '%s' '...%s...'", config, rv, err.where, err.message,
                 where, message);
    }
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_error("{wrap: 16}", PP_NODE ".config.wrap",
                 "key 'wrap': '16' is not one of auto, 32, 64, none");
    expect_error("{max_rate: fast}", PP_NODE ".config.max_rate",
                 "rate: key 'max_rate': not a number: 'fast'");
    expect_error("{max_rate: -1}", PP_NODE ".config.max_rate",
                 "rate: key 'max_rate': must be a finite number >= 0, got '-1'");
    expect_error("{max_series: 0}", PP_NODE ".config.max_series", "below the minimum 1");
    expect_error("{expire: -1s}", PP_NODE ".config.expire", "key 'expire': ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_rate),
        cmocka_unit_test(test_units_and_types),
        cmocka_unit_test(test_wraps),
        cmocka_unit_test(test_resets),
        cmocka_unit_test(test_wrap_settings),
        cmocka_unit_test(test_out_of_order),
        cmocka_unit_test(test_series_and_passing),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
