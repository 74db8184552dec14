/* window: mean/min/max/count per series over epoch-aligned periods,
 * emitted when the first point of a later period arrives; boundaries,
 * gaps, late points, the aggregates setting, tags and units, bounds and
 * config errors. */
#include "pp_harness.h"
#include "testsupport.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const fr_processor_plugin fr_processor_window;

#define NS "/intel/psutil/load/load1"

/* One point of NS (tag host=h1, unit "load") at ms after PP_T0. */
static fr_batch *feed(pp_node *n, int64_t ms, fr_value v)
{
    fr_batch *in = pp_batch((uint64_t)(ms < 0 ? -ms : ms));
    pp_add(in, NS, PP_T0 + ms * 1000000, v, "load", "host", "h1", NULL);
    fr_batch *out = pp_must_run(n, in);
    fr_batch_destroy(in);
    return out;
}

static void feed_none(pp_node *n, int64_t ms, double v)
{
    fr_batch *out = feed(n, ms, fr_val_f64(v));
    if (out->nmetrics != 0) {
        fail_msg("at %lld ms: %u metrics out, want none", (long long)ms, out->nmetrics);
    }
    fr_batch_destroy(out);
}

static double agg(const fr_batch *out, const char *name, int64_t start_ms)
{
    char ns[128];
    snprintf(ns, sizeof(ns), "%s/%s", NS, name);
    const fr_metric *m = pp_find(out, ns, PP_T0 + start_ms * 1000000);
    if (m == NULL) {
        fail_msg("no %s at %lld ms", ns, (long long)start_ms);
    }
    assert_string_equal(pp_tag(m, "host"), "h1");
    if (strcmp(name, "count") == 0) {
        assert_int_equal(m->value.type, FR_VAL_UINT64);
        assert_string_equal(m->unit, "");
        return (double)m->value.v.u;
    }
    assert_int_equal(m->value.type, FR_VAL_DOUBLE);
    assert_string_equal(m->unit, "load");
    return m->value.v.d;
}

/* Points at 1 Hz over periods of 10 s: each period's aggregates come out
 * with the first point of the next, at the period's start. */
static void test_periods(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_window, "{period: 10s}");
    for (int64_t s = 0; s < 10; s++) {
        feed_none(&n, s * 1000, (double)s);
    }
    fr_batch *out = feed(&n, 10000, fr_val_f64(100)); /* exactly on the boundary: the next one */
    assert_int_equal(out->nmetrics, 4);
    assert_string_equal(out->metrics[0].ns, NS "/mean");
    assert_string_equal(out->metrics[1].ns, NS "/min");
    assert_string_equal(out->metrics[2].ns, NS "/max");
    assert_string_equal(out->metrics[3].ns, NS "/count");
    assert_true(agg(out, "mean", 0) == 4.5);
    assert_true(agg(out, "min", 0) == 0);
    assert_true(agg(out, "max", 0) == 9);
    assert_true(agg(out, "count", 0) == 10);
    fr_batch_destroy(out);
    /* 10 s .. 19.999 s */
    feed_none(&n, 15000, 50);
    feed_none(&n, 19999, -30);
    out = feed(&n, 20000, fr_val_i64(1));
    assert_true(agg(out, "mean", 10000) == 40);
    assert_true(agg(out, "min", 10000) == -30);
    assert_true(agg(out, "max", 10000) == 100);
    assert_true(agg(out, "count", 10000) == 3);
    fr_batch_destroy(out);
    assert_int_equal(pp_stat(&n, "periods"), 2);
    assert_int_equal(pp_stat(&n, "points"), 14);
    pp_close(&n);
}

/* Periods are aligned to the epoch, not to the first point; a gap emits
 * the last period once, and no empty ones. */
static void test_alignment_and_gaps(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_window, "{period: 10s}");
    feed_none(&n, 7000, 1);
    feed_none(&n, 9500, 2);
    fr_batch *out = feed(&n, 45000, fr_val_f64(3));
    assert_int_equal(out->nmetrics, 4);
    assert_true(agg(out, "count", 0) == 2);
    assert_true(agg(out, "mean", 0) == 1.5);
    fr_batch_destroy(out);
    out = feed(&n, 50000, fr_val_f64(4));
    assert_true(agg(out, "count", 40000) == 1);
    assert_true(agg(out, "mean", 40000) == 3);
    fr_batch_destroy(out);
    pp_close(&n);
    /* a period that does not divide a minute: 7 s, from the epoch */
    pp_must_open(&n, &fr_processor_window, "{period: 7s, aggregates: count}");
    int64_t t0_s = PP_T0 / PP_SEC;
    int64_t off = t0_s % 7; /* PP_T0 is that far into its period */
    feed_none(&n, 0, 1);
    feed_none(&n, (6 - off) * 1000, 1); /* the last second of it */
    out = feed(&n, (7 - off) * 1000, fr_val_f64(1));
    assert_int_equal(out->nmetrics, 1);
    assert_int_equal(out->metrics[0].ts, (t0_s - off) * PP_SEC);
    assert_int_equal(out->metrics[0].value.v.u, 2);
    fr_batch_destroy(out);
    pp_close(&n);
}

/* Before the epoch, periods still start at multiples of the period. */
static void test_negative_time(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_window, "{period: 10s, aggregates: 'min, count'}");
    fr_batch *in = pp_batch(1);
    pp_add(in, NS, -5 * PP_SEC, fr_val_f64(2), "load", NULL);
    pp_add(in, NS, -1, fr_val_f64(1), "load", NULL);
    pp_add(in, NS, 0, fr_val_f64(7), "load", NULL);
    fr_batch *out = pp_must_run(&n, in);
    assert_int_equal(out->nmetrics, 2);
    assert_string_equal(out->metrics[0].ns, NS "/min");
    assert_int_equal(out->metrics[0].ts, -10 * PP_SEC);
    assert_true(out->metrics[0].value.v.d == 1);
    assert_int_equal(out->metrics[1].value.v.u, 2);
    fr_batch_destroy(out);
    fr_batch_destroy(in);
    pp_close(&n);
}

/* A point older than the open period is dropped and counted. */
static void test_late_points(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_window, "{period: 10s}");
    feed_none(&n, 1000, 1);
    fr_batch_destroy(feed(&n, 12000, fr_val_f64(2)));
    feed_none(&n, 9000, 1000); /* late */
    feed_none(&n, 13000, 4);
    fr_batch *out = feed(&n, 20000, fr_val_f64(0));
    assert_true(agg(out, "max", 10000) == 4);
    assert_true(agg(out, "count", 10000) == 2);
    fr_batch_destroy(out);
    assert_int_equal(pp_stat(&n, "late"), 1);
    pp_close(&n);
}

/* The aggregates setting: which and in which order; series apart by tags;
 * other values pass; raw numbers do not. */
static void test_aggregates_series_and_passing(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_window, "{period: 1m, aggregates: 'COUNT,max'}");
    for (int64_t s = 0; s <= 60; s += 30) {
        fr_batch *in = pp_batch((uint64_t)s);
        pp_add(in, NS, PP_T0 + s * PP_SEC, fr_val_u64(10 + (uint64_t)s), "", "cpu", "0", NULL);
        pp_add(in, NS, PP_T0 + s * PP_SEC, fr_val_i64(-(int64_t)s), "", "cpu", "1", NULL);
        pp_add(in, "/intel/mock/name", PP_T0 + s * PP_SEC, fr_val_str("vm"), "", NULL);
        fr_batch *out = pp_must_run(&n, in);
        if (s < 60) {
            assert_int_equal(out->nmetrics, 1);
            assert_string_equal(out->metrics[0].value.v.s.ptr, "vm");
        } else {
            assert_int_equal(out->nmetrics, 5);
            assert_string_equal(out->metrics[0].ns, NS "/count");
            assert_string_equal(pp_tag(&out->metrics[0], "cpu"), "0");
            assert_int_equal(out->metrics[0].value.v.u, 2);
            assert_string_equal(out->metrics[1].ns, NS "/max");
            assert_true(out->metrics[1].value.v.d == 40);
            assert_string_equal(pp_tag(&out->metrics[2], "cpu"), "1");
            assert_string_equal(out->metrics[2].ns, NS "/count");
            assert_true(out->metrics[3].value.v.d == 0);
            assert_string_equal(out->metrics[4].ns, "/intel/mock/name");
        }
        fr_batch_destroy(out);
        fr_batch_destroy(in);
    }
    assert_int_equal(pp_stat(&n, "series"), 2);
    assert_int_equal(pp_stat(&n, "passed"), 3);
    pp_close(&n);
}

/* A namespace too long to take the suffix: that aggregate is skipped. */
static void test_namespace_too_long(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_window, "{period: 1s, aggregates: 'mean,max'}");
    char *ns = malloc(FR_MAX_NAMESPACE - 4 + 1);
    ns[0] = '/';
    memset(ns + 1, 'x', FR_MAX_NAMESPACE - 5);
    ns[FR_MAX_NAMESPACE - 4] = '\0';
    for (int64_t s = 0; s < 2; s++) {
        fr_batch *in = pp_batch(1);
        pp_add(in, ns, PP_T0 + s * PP_SEC, fr_val_f64(1), "", NULL);
        fr_batch *out = pp_must_run(&n, in);
        assert_int_equal(out->nmetrics, (uint32_t)s);
        if (s == 1) {
            assert_int_equal(strlen(out->metrics[0].ns), FR_MAX_NAMESPACE);
        }
        fr_batch_destroy(out);
        fr_batch_destroy(in);
    }
    assert_int_equal(pp_stat(&n, "too_long"), 1);
    free(ns);
    pp_close(&n);
}

static void test_bounds(void **state)
{
    (void)state;
    pp_node n;
    /* expire: a series silent that long loses its open period */
    pp_must_open(&n, &fr_processor_window, "{period: 10s, expire: 30s}");
    feed_none(&n, 0, 1);
    feed_none(&n, 30001, 2);
    assert_int_equal(pp_stat(&n, "expired"), 1);
    fr_batch *out = feed(&n, 40000, fr_val_f64(3));
    assert_true(agg(out, "count", 30000) == 1);
    assert_true(agg(out, "mean", 30000) == 2);
    fr_batch_destroy(out);
    pp_close(&n);
    /* max_series */
    pp_must_open(&n, &fr_processor_window, "{period: 10s, max_series: 2}");
    for (int i = 0; i < 3; i++) {
        fr_batch *in = pp_batch(1);
        char name[32];
        snprintf(name, sizeof(name), "/intel/mock/s%d", i);
        pp_add(in, name, PP_T0, fr_val_f64(1), "", NULL);
        fr_batch_destroy(pp_must_run(&n, in));
        fr_batch_destroy(in);
    }
    assert_int_equal(pp_stat(&n, "evicted"), 1);
    assert_int_equal(pp_stat(&n, "series"), 2);
    /* s0 was evicted: its next period's point gives nothing */
    fr_batch *in = pp_batch(2);
    pp_add(in, "/intel/mock/s0", PP_T0 + 10 * PP_SEC, fr_val_f64(1), "", NULL);
    pp_add(in, "/intel/mock/s2", PP_T0 + 10 * PP_SEC, fr_val_f64(1), "", NULL);
    out = pp_must_run(&n, in);
    assert_int_equal(out->nmetrics, 4); /* s2's */
    assert_string_equal(out->metrics[0].ns, "/intel/mock/s2/mean");
    fr_batch_destroy(out);
    fr_batch_destroy(in);
    pp_close(&n);
}

static void expect_error(const char *config, const char *where, const char *message)
{
    pp_node n;
    fr_error err;
    int rv = pp_open(&n, &fr_processor_window, config, &err);
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
    expect_error("{period: 0s}", PP_NODE ".config.period", "key 'period': 0s is below the minimum");
    expect_error("{period: often}", PP_NODE ".config.period", "not a duration: 'often'");
    expect_error("{period: 1h}", PP_NODE ".config.expire",
                 "window: key 'expire': must be longer than period (3600000 ms), got 600000 ms");
    expect_error("{period: 1m, expire: 1m}", PP_NODE ".config.expire",
                 "must be longer than period");
    expect_error("{aggregates: 'mean,median'}", PP_NODE ".config.aggregates",
                 "window: key 'aggregates': 'median' is not one of mean, min, max, count");
    expect_error("{aggregates: 'mean,min,Mean'}", PP_NODE ".config.aggregates",
                 "'Mean' is given twice");
    expect_error("{aggregates: ' , '}", PP_NODE ".config.aggregates", "none given");
    expect_error("{max_series: -3}", PP_NODE ".config.max_series", "below the minimum 1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_periods),
        cmocka_unit_test(test_alignment_and_gaps),
        cmocka_unit_test(test_negative_time),
        cmocka_unit_test(test_late_points),
        cmocka_unit_test(test_aggregates_series_and_passing),
        cmocka_unit_test(test_namespace_too_long),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
