/* anomaly: the periodic sample of a stable series (send_interval, in
 * metric time), an outlier forwarded with the window before it and the
 * points after it, quartiles of the sorted window where snap's unsorted
 * indexing answers otherwise, series identity, expiry, the max_series
 * bound, values that pass unchanged, stats, and every config error. */
#include "pp_harness.h"
#include "testsupport.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const fr_processor_plugin fr_processor_anomaly;

#define NS     "/intel/mock/cpu/load"
#define MAXSEC 400

/* Which seconds of NS came out, over a run. */
typedef struct run_log {
    bool sent[MAXSEC];
    size_t total;
} run_log;

static void log_out(run_log *l, const fr_batch *out)
{
    for (uint32_t i = 0; i < out->nmetrics; i++) {
        const fr_metric *m = &out->metrics[i];
        if (strcmp(m->ns, NS) != 0) {
            continue;
        }
        int64_t sec = (m->ts - PP_T0) / PP_SEC;
        assert_true(sec >= 0 && sec < MAXSEC);
        assert_false(l->sent[sec]); /* never twice */
        l->sent[sec] = true;
        l->total++;
    }
}

/* One point of NS (tag host=h1, unit "percent") at second sec, in a batch
 * of its own; the output is logged and returned. */
static fr_batch *feed(pp_node *n, run_log *l, int64_t sec, fr_value v)
{
    fr_batch *in = pp_batch((uint64_t)sec + 1);
    pp_add(in, NS, PP_T0 + sec * PP_SEC, v, "percent", "host", "h1", NULL);
    fr_batch *out = pp_must_run(n, in);
    fr_batch_destroy(in);
    if (l != NULL) {
        log_out(l, out);
    }
    return out;
}

static void feed_drop(pp_node *n, run_log *l, int64_t sec, double v)
{
    fr_batch_destroy(feed(n, l, sec, fr_val_f64(v)));
}

/* A stable signal: 10.0 .. 10.4 in a fixed cycle. */
static double stable(int64_t i)
{
    static const double cyc[] = {10.0, 10.3, 10.1, 10.4, 10.2};
    return cyc[i % 5];
}

/* With the defaults a stable 1 Hz series comes out every 10 s. */
static void test_defaults_send_interval(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_anomaly, "");
    run_log l = {0};
    for (int64_t s = 0; s < 60; s++) {
        feed_drop(&n, &l, s, stable(s));
    }
    for (int64_t s = 0; s < 60; s++) {
        assert_int_equal(l.sent[s], s % 10 == 0);
    }
    assert_int_equal(pp_stat(&n, "points"), 60);
    assert_int_equal(pp_stat(&n, "forwarded"), 6);
    assert_int_equal(pp_stat(&n, "outliers"), 0);
    assert_int_equal(pp_stat(&n, "series"), 1);
    pp_close(&n);
}

/* The interval is metric time, not points: at 2 s per point and
 * send_interval 5s, seconds 0, 6, 12, ... */
static void test_send_interval_is_metric_time(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_anomaly, "{send_interval: 5s}");
    run_log l = {0};
    for (int64_t s = 0; s < 40; s += 2) {
        feed_drop(&n, &l, s, stable(s));
    }
    for (int64_t s = 0; s < 40; s++) {
        assert_int_equal(l.sent[s], s % 6 == 0);
    }
    pp_close(&n);
    /* 0 forwards everything */
    pp_must_open(&n, &fr_processor_anomaly, "{send_interval: 0s}");
    memset(&l, 0, sizeof(l));
    for (int64_t s = 0; s < 40; s++) {
        feed_drop(&n, &l, s, stable(s));
    }
    assert_int_equal(l.total, 40);
    pp_close(&n);
}

/* A spike: the window's unsent points, the spike and `after` points come
 * out, in time order, with the series' tags, unit and value types. */
static void test_outlier_with_context(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_anomaly,
                 "{BufLength: 10, Factor: 3.0, send_interval: 1m, after: 3}");
    run_log l = {0};
    for (int64_t s = 0; s < 30; s++) {
        feed_drop(&n, &l, s, stable(s));
    }
    assert_int_equal(l.total, 1); /* the first point only */
    fr_batch *out = feed(&n, &l, 30, fr_val_f64(50.0));
    /* seconds 20..29 (the window) then 30, in one batch */
    assert_int_equal(out->nmetrics, 11);
    for (uint32_t i = 0; i < 11; i++) {
        const fr_metric *m = &out->metrics[i];
        assert_int_equal(m->ts, PP_T0 + (20 + (int64_t)i) * PP_SEC);
        assert_string_equal(m->unit, "percent");
        assert_string_equal(pp_tag(m, "host"), "h1");
        assert_int_equal(m->ntags, 1);
        assert_int_equal(m->value.type, FR_VAL_DOUBLE);
        assert_true(m->value.v.d == (i < 10 ? stable(20 + i) : 50.0));
    }
    fr_batch_destroy(out);
    for (int64_t s = 31; s < 100; s++) {
        feed_drop(&n, &l, s, stable(s));
    }
    for (int64_t s = 0; s < 100; s++) {
        bool want = s == 0 || (s >= 20 && s <= 33) || s == 93;
        if (l.sent[s] != want) {
            fail_msg("second %lld: sent %d, want %d", (long long)s, l.sent[s], want);
        }
    }
    assert_int_equal(pp_stat(&n, "outliers"), 1);
    assert_int_equal(pp_stat(&n, "forwarded"), l.total);
    pp_close(&n);
}

/* Context already sent (the periodic sample) is not sent again, and a
 * second outlier inside `after` extends it. Integer values keep their
 * type in the context copies. */
static void test_context_not_repeated(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_anomaly, "{buf_length: 6, send_interval: 4s, after: 2}");
    run_log l = {0};
    for (int64_t s = 0; s < 20; s++) {
        fr_batch_destroy(feed(&n, &l, s, fr_val_i64(100 + s % 3)));
    }
    /* sent so far: 0, 4, 8, 12, 16; window = 14..19 */
    fr_batch *out = feed(&n, &l, 20, fr_val_i64(1000));
    assert_int_equal(out->nmetrics, 6); /* 14, 15, 17, 18, 19, then 20 */
    static const int64_t want[] = {14, 15, 17, 18, 19, 20};
    for (uint32_t i = 0; i < 6; i++) {
        assert_int_equal(out->metrics[i].ts, PP_T0 + want[i] * PP_SEC);
        assert_int_equal(out->metrics[i].value.type, FR_VAL_INT64);
    }
    assert_int_equal(out->metrics[0].value.v.i, 100 + 14 % 3);
    fr_batch_destroy(out);
    fr_batch_destroy(feed(&n, &l, 21, fr_val_i64(101)));  /* after 1 */
    fr_batch_destroy(feed(&n, &l, 22, fr_val_i64(-900))); /* a second outlier */
    for (int64_t s = 23; s < 30; s++) {
        fr_batch_destroy(feed(&n, &l, s, fr_val_i64(100 + s % 3)));
    }
    for (int64_t s = 20; s < 30; s++) {
        /* 20..22, then two after the second outlier, then 24 + 4 = 28 */
        bool w = s <= 24 || s == 28;
        if (l.sent[s] != w) {
            fail_msg("second %lld: sent %d, want %d", (long long)s, l.sent[s], w);
        }
    }
    assert_int_equal(pp_stat(&n, "outliers"), 2);
    pp_close(&n);
}

/* snap's plugin took values[l/4] and values[3l/4] of the window in arrival
 * order as Q1 and Q3 (for an even length l). */
static void snap_unsorted_fences(const double *w, size_t l, double k, double *lo, double *hi)
{
    double q1 = w[l / 4], q3 = w[3 * l / 4];
    *lo = q1 - k * (q3 - q1);
    *hi = q3 + k * (q3 - q1);
}

static size_t run_window(const double *w, size_t l, double probe, run_log *log)
{
    pp_node n;
    pp_must_open(&n, &fr_processor_anomaly,
                 "{BufLength: 8, Factor: 1.5, send_interval: 1h, after: 0}");
    memset(log, 0, sizeof(*log));
    for (size_t i = 0; i < l; i++) {
        feed_drop(&n, log, (int64_t)i, w[i]);
    }
    feed_drop(&n, log, (int64_t)l, probe);
    size_t outliers = (size_t)pp_stat(&n, "outliers");
    pp_close(&n);
    return outliers;
}

/* Two windows holding the same values, sorted 9 10 11 12 12 13 14 15:
 * Q1 = 10.75, Q3 = 13.25, fences [7, 17] at factor 1.5. */
static void test_sorted_quartiles(void **state)
{
    (void)state;
    double lo, hi;
    run_log log;
    /* Arrival order puts 12 at both of snap's positions: IQR 0, fences
     * [12, 12], so snap would flag 16; the sorted window does not. */
    const double a[8] = {9, 15, 12, 10, 14, 11, 12, 13};
    snap_unsorted_fences(a, 8, 1.5, &lo, &hi);
    assert_true(lo == 12 && hi == 12 && 16 > hi);
    assert_int_equal(run_window(a, 8, 16, &log), 0);
    assert_false(log.sent[8]);
    assert_int_equal(log.total, 1);
    /* Arrival order puts the minimum and the maximum there: fences [0, 24],
     * so snap would let 20 through; the sorted window flags it. */
    const double b[8] = {12, 13, 9, 11, 10, 14, 15, 12};
    snap_unsorted_fences(b, 8, 1.5, &lo, &hi);
    assert_true(lo == 0 && hi == 24 && 20 < hi);
    assert_int_equal(run_window(b, 8, 20, &log), 1);
    assert_int_equal(log.total, 9); /* all of it: 0 (first), 1..7 (context), 8 */
    /* and the fences are where the sorted quartiles put them */
    assert_int_equal(run_window(b, 8, 17, &log), 0);
    assert_int_equal(run_window(b, 8, 17.01, &log), 1);
    assert_int_equal(run_window(b, 8, 7, &log), 0);
    assert_int_equal(run_window(b, 8, 6.99, &log), 1);
}

/* Nothing is tested before the window is full. */
static void test_window_must_fill(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_anomaly, "{buf_length: 5, send_interval: 1h}");
    run_log l = {0};
    for (int64_t s = 0; s < 4; s++) {
        feed_drop(&n, &l, s, stable(s));
    }
    feed_drop(&n, &l, 4, 1e6); /* the 5th point: 4 before it */
    assert_int_equal(pp_stat(&n, "outliers"), 0);
    for (int64_t s = 5; s < 10; s++) {
        feed_drop(&n, &l, s, stable(s));
    }
    /* window 5..9 is stable again */
    feed_drop(&n, &l, 10, 1e6);
    assert_int_equal(pp_stat(&n, "outliers"), 1);
    pp_close(&n);
}

/* A series is namespace, unit and tags (any order) in one source with
 * the same batch tags. */
static void test_series_identity(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_anomaly, "{send_interval: 1h}");
    fr_batch *in = pp_batch(1);
    pp_add(in, NS, PP_T0, fr_val_f64(1), "", "a", "1", "b", "2", NULL);
    pp_add(in, NS, PP_T0 + 1, fr_val_f64(1), "", "b", "2", "a", "1", NULL); /* same */
    pp_add(in, NS, PP_T0 + 2, fr_val_f64(1), "", "a", "1", NULL);
    pp_add(in, NS, PP_T0 + 3, fr_val_f64(1), "", "a", "1", "b", "3", NULL);
    pp_add(in, NS, PP_T0 + 4, fr_val_f64(1), "s", "a", "1", "b", "2", NULL);
    pp_add(in, NS "2", PP_T0 + 5, fr_val_f64(1), "", "a", "1", "b", "2", NULL);
    fr_batch *out = pp_must_run(&n, in);
    assert_int_equal(pp_stat(&n, "series"), 5);
    assert_int_equal(out->nmetrics, 5); /* each new series' first point */
    assert_null(pp_find(out, NS, PP_T0 + 1));
    fr_batch_destroy(out);
    /* another source, and other batch tags, are other series */
    fr_batch *other = fr_batch_new("task-1", "node-2", 2);
    pp_add(other, NS, PP_T0 + 10, fr_val_f64(1), "", "a", "1", NULL);
    out = pp_must_run(&n, other);
    assert_int_equal(out->nmetrics, 1);
    fr_batch_destroy(out);
    fr_batch_destroy(other);
    other = pp_batch(3);
    assert_fr_ok(fr_batch_add_tag(other, "job", "7"));
    pp_add(other, NS, PP_T0 + 11, fr_val_f64(1), "", "a", "1", NULL);
    out = pp_must_run(&n, other);
    assert_int_equal(out->nmetrics, 1);
    fr_batch_destroy(out);
    fr_batch_destroy(other);
    assert_int_equal(pp_stat(&n, "series"), 7);
    /* and the same again is not new */
    other = pp_batch(4);
    pp_add(other, NS, PP_T0 + 12, fr_val_f64(1), "", "a", "1", NULL);
    out = pp_must_run(&n, other);
    assert_int_equal(out->nmetrics, 0);
    fr_batch_destroy(out);
    fr_batch_destroy(other);
    fr_batch_destroy(in);
    pp_close(&n);
}

/* Keys of every short length, differing in one byte anywhere, are
 * different series; the same again is the same one. */
static void test_series_keys_by_length(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_anomaly, "{send_interval: 1h}");
    for (int round = 0; round < 2; round++) {
        fr_batch *in = pp_batch((uint64_t)round);
        for (size_t len = 1; len <= 24; len++) {
            for (size_t pos = 0; pos < len; pos++) {
                char ns[32], val[32];
                memset(ns, 'a', len);
                ns[0] = '/';
                ns[len] = '\0';
                memset(val, 'v', len);
                val[len] = '\0';
                if (pos > 0) {
                    ns[pos] = 'b';
                }
                val[pos] = 'w';
                pp_add(in, ns, PP_T0 + round, fr_val_f64(1), "", NULL);
                pp_add(in, "/intel/mock/t", PP_T0 + round, fr_val_f64(1), "", "k", val, NULL);
            }
            /* the tag value untouched, and empty */
            char val[32];
            memset(val, 'v', len);
            val[len] = '\0';
            pp_add(in, "/intel/mock/t", PP_T0 + round, fr_val_f64(1), "", "k", val, NULL);
        }
        pp_add(in, "/intel/mock/t", PP_T0 + round, fr_val_f64(1), "", "k", "", NULL);
        fr_batch *out = pp_must_run(&n, in);
        /* every series is new in the first round, none in the second */
        assert_int_equal(out->nmetrics, round == 0 ? pp_stat(&n, "series") : 0);
        fr_batch_destroy(out);
        fr_batch_destroy(in);
    }
    /* namespaces: "/" once per length plus len - 1 variants; tag values:
     * len variants plus the plain one per length, plus the empty one */
    size_t series = 0;
    for (size_t len = 1; len <= 24; len++) {
        series += len + len + 1;
    }
    series += 1;
    assert_int_equal(pp_stat(&n, "series"), series);
    pp_close(&n);
}

/* Values that are not numbers, NaN and infinities pass unchanged. */
static void test_non_numeric_pass(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_anomaly, "{send_interval: 1h}");
    for (int64_t s = 0; s < 3; s++) {
        fr_batch *in = pp_batch(1);
        pp_add(in, "/intel/mock/name", PP_T0 + s * PP_SEC, fr_val_str("vm-1"), "", NULL);
        pp_add(in, "/intel/mock/up", PP_T0 + s * PP_SEC, fr_val_bool(true), "", NULL);
        pp_add(in, "/intel/mock/nan", PP_T0 + s * PP_SEC, fr_val_f64(NAN), "", NULL);
        pp_add(in, "/intel/mock/inf", PP_T0 + s * PP_SEC, fr_val_f64(-INFINITY), "", NULL);
        pp_add(in, NS, PP_T0 + s * PP_SEC, fr_val_f64(1.0), "", NULL);
        fr_batch *out = pp_must_run(&n, in);
        assert_int_equal(out->nmetrics, s == 0 ? 5 : 4);
        assert_string_equal(out->metrics[0].value.v.s.ptr, "vm-1");
        assert_true(out->metrics[1].value.v.b);
        assert_true(isnan(out->metrics[2].value.v.d));
        assert_true(isinf(out->metrics[3].value.v.d));
        fr_batch_destroy(out);
        fr_batch_destroy(in);
    }
    assert_int_equal(pp_stat(&n, "passed"), 12);
    assert_int_equal(pp_stat(&n, "series"), 1);
    pp_close(&n);
}

/* A series silent for `expire` of metric time is dropped: when the other
 * series' batches move time on, or when it comes back. */
static void test_expiry(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_anomaly, "{buf_length: 4, send_interval: 1h, expire: 1m}");
    run_log l = {0};
    for (int64_t s = 0; s < 10; s++) {
        feed_drop(&n, &l, s, stable(s));
    }
    /* another series runs on; NS's last point was at 9 s */
    for (int64_t s = 10; s <= 69; s++) {
        fr_batch *in = pp_batch(100);
        pp_add(in, "/intel/mock/other", PP_T0 + s * PP_SEC, fr_val_f64(1), "", NULL);
        fr_batch_destroy(pp_must_run(&n, in));
        fr_batch_destroy(in);
        assert_int_equal(pp_stat(&n, "series"), 2);
    }
    fr_batch *in = pp_batch(100);
    pp_add(in, "/intel/mock/other", PP_T0 + 70 * PP_SEC, fr_val_f64(1), "", NULL);
    fr_batch_destroy(pp_must_run(&n, in));
    fr_batch_destroy(in);
    assert_int_equal(pp_stat(&n, "series"), 1);
    assert_int_equal(pp_stat(&n, "expired"), 1);
    /* back: a new series, whose first point is sent and whose window is
     * empty (a spike is not an outlier yet) */
    feed_drop(&n, &l, 71, 1e6);
    assert_true(l.sent[71]);
    assert_int_equal(pp_stat(&n, "outliers"), 0);
    pp_close(&n);

    /* alone: the gap is seen on the point that ends it */
    pp_must_open(&n, &fr_processor_anomaly, "{buf_length: 4, send_interval: 1h, expire: 1m}");
    memset(&l, 0, sizeof(l));
    for (int64_t s = 0; s < 10; s++) {
        feed_drop(&n, &l, s, stable(s));
    }
    feed_drop(&n, &l, 69, 1e6); /* 60 s later: not yet expired, an outlier */
    assert_int_equal(pp_stat(&n, "outliers"), 1);
    feed_drop(&n, &l, 130, 1e6); /* 61 s later: expired, starts afresh */
    assert_int_equal(pp_stat(&n, "expired"), 1);
    assert_int_equal(pp_stat(&n, "outliers"), 1);
    assert_true(l.sent[130]);
    pp_close(&n);
}

/* At max_series, a new series evicts the least recently seen one. */
static void test_max_series(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_anomaly, "{max_series: 2, send_interval: 1h}");
    const char *order[] = {"/intel/mock/a", "/intel/mock/b", "/intel/mock/b",
                           "/intel/mock/c", "/intel/mock/b", "/intel/mock/a"};
    const size_t want_out[] = {1, 1, 0, 1, 0, 1};
    const uint64_t want_evicted[] = {0, 0, 0, 1, 1, 2};
    for (size_t i = 0; i < 6; i++) {
        fr_batch *in = pp_batch(i);
        pp_add(in, order[i], PP_T0 + (int64_t)i * PP_SEC, fr_val_f64(1), "", NULL);
        fr_batch *out = pp_must_run(&n, in);
        assert_int_equal(out->nmetrics, want_out[i]);
        assert_int_equal(pp_stat(&n, "evicted"), want_evicted[i]);
        assert_true(pp_stat(&n, "series") <= 2);
        fr_batch_destroy(out);
        fr_batch_destroy(in);
    }
    /* b survived both evictions: still within its interval */
    fr_batch *in = pp_batch(9);
    pp_add(in, "/intel/mock/b", PP_T0 + 9 * PP_SEC, fr_val_f64(1), "", NULL);
    fr_batch *out = pp_must_run(&n, in);
    assert_int_equal(out->nmetrics, 0);
    fr_batch_destroy(out);
    fr_batch_destroy(in);
    pp_close(&n);
}

/* Many series through one table: growth and removal keep every series
 * findable. */
static void test_many_series(void **state)
{
    (void)state;
    pp_node n;
    pp_must_open(&n, &fr_processor_anomaly, "{max_series: 3000, send_interval: 1h, expire: 5s}");
    for (int round = 0; round < 3; round++) {
        fr_batch *in = pp_batch((uint64_t)round);
        for (int i = 0; i < 5000; i++) {
            char ns[64];
            snprintf(ns, sizeof(ns), "/intel/mock/s%d", i);
            pp_add(in, ns, PP_T0 + round * PP_SEC, fr_val_f64(1), "", NULL);
        }
        fr_batch *out = pp_must_run(&n, in);
        /* 3000 kept at a time: every series is new every round */
        assert_int_equal(out->nmetrics, 5000);
        fr_batch_destroy(out);
        fr_batch_destroy(in);
    }
    assert_int_equal(pp_stat(&n, "series"), 3000);
    assert_int_equal(pp_stat(&n, "evicted"), 15000 - 3000);
    pp_close(&n);
    pp_must_open(&n, &fr_processor_anomaly, "{max_series: 6000, send_interval: 1h, expire: 5s}");
    for (int round = 0; round < 3; round++) {
        fr_batch *in = pp_batch((uint64_t)round);
        for (int i = 0; i < 5000; i++) {
            char ns[64];
            snprintf(ns, sizeof(ns), "/intel/mock/s%d", (i * 7919) % 5000);
            pp_add(in, ns, PP_T0 + round * PP_SEC, fr_val_f64(1), "", NULL);
        }
        fr_batch *out = pp_must_run(&n, in);
        assert_int_equal(out->nmetrics, round == 0 ? 5000 : 0);
        fr_batch_destroy(out);
        fr_batch_destroy(in);
    }
    /* time moves on: all expire */
    fr_batch *in = pp_batch(9);
    pp_add(in, "/intel/mock/late", PP_T0 + 100 * PP_SEC, fr_val_f64(1), "", NULL);
    fr_batch_destroy(pp_must_run(&n, in));
    fr_batch_destroy(in);
    assert_int_equal(pp_stat(&n, "series"), 1);
    assert_int_equal(pp_stat(&n, "expired"), 5000);
    pp_close(&n);
}

static void expect_error(const char *config, int code, const char *where, const char *message)
{
    pp_node n;
    fr_error err;
    int rv = pp_open(&n, &fr_processor_anomaly, config, &err);
    if (rv == 0) {
        pp_close(&n);
        fail_msg("%s: accepted", config);
    }
    if (rv != code || strcmp(err.where, where) != 0 || strstr(err.message, message) == NULL) {
        fail_msg("%s: got %d '%s' '%s', want %d '%s' '...%s...'", config, rv, err.where,
                 err.message, code, where, message);
    }
}

static void test_config_errors(void **state)
{
    (void)state;
    expect_error("{Factor: abc}", FR_ECONFIG, PP_NODE ".config.factor",
                 "anomaly: key 'factor': not a number: 'abc'");
    expect_error("{factor: 0}", FR_ECONFIG, PP_NODE ".config.factor",
                 "anomaly: key 'factor': must be a finite number > 0, got '0'");
    expect_error("{factor: -1.5}", FR_ECONFIG, PP_NODE ".config.factor", "> 0, got '-1.5'");
    expect_error("{factor: 'inf'}", FR_ECONFIG, PP_NODE ".config.factor", "finite");
    expect_error("{BufLength: 3}", FR_ECONFIG, PP_NODE ".config.BufLength",
                 "key 'buf_length': 3 is below the minimum 4");
    expect_error("{buf_length: many}", FR_ECONFIG, PP_NODE ".config.buf_length",
                 "key 'buf_length': not an integer: 'many'");
    expect_error("{send_interval: 10}", FR_ECONFIG, PP_NODE ".config.send_interval",
                 "key 'send_interval': not a duration: '10'");
    expect_error("{after: -1}", FR_ECONFIG, PP_NODE ".config.after",
                 "key 'after': -1 is below the minimum 0");
    expect_error("{max_series: 0}", FR_ECONFIG, PP_NODE ".config.max_series",
                 "key 'max_series': 0 is below the minimum 1");
    expect_error("{expire: soon}", FR_ECONFIG, PP_NODE ".config.expire",
                 "key 'expire': not a duration: 'soon'");
    expect_error("{buf_lenght: 10}", FR_EUNKNOWN, PP_NODE ".config.buf_lenght",
                 "did you mean 'buf_length'?");
    expect_error("{factor: {x: 1}}", FR_EUNKNOWN, PP_NODE ".config.factor",
                 "anomaly: key 'factor' takes no map");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_send_interval),
        cmocka_unit_test(test_send_interval_is_metric_time),
        cmocka_unit_test(test_outlier_with_context),
        cmocka_unit_test(test_context_not_repeated),
        cmocka_unit_test(test_sorted_quartiles),
        cmocka_unit_test(test_window_must_fill),
        cmocka_unit_test(test_series_identity),
        cmocka_unit_test(test_series_keys_by_length),
        cmocka_unit_test(test_non_numeric_pass),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_max_series),
        cmocka_unit_test(test_many_series),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
