/* anomaly: forwards a stable series only now and then, and everything
 * around a change in full (the report's anomaly detection processor).
 *
 * Each series (namespace plus tags, see series.h) keeps a window of its
 * last buf_length values. A new value outside Tukey's fences,
 *   [Q1 - factor * IQR, Q3 + factor * IQR],
 * with the quartiles of the window's values in sorted order, is an
 * outlier: the window's points not yet forwarded (the context before it),
 * the outlier and the next `after` points are forwarded. Otherwise a point
 * is forwarded only when send_interval of metric time has passed since the
 * series' last forwarded point. The test needs a full window, so a new
 * series is only sampled for its first buf_length points.
 *
 * Differences from snap's anomalydetection plugin, which cut each series
 * into consecutive windows and forwarded only the outliers of each: the
 * window slides, each new value is tested against the values before it,
 * quartiles come from the sorted window (snap indexed the unsorted one),
 * the context and a periodic sample are forwarded, values keep their type,
 * and a series is a namespace plus its tags, not a namespace alone.
 *
 * Only int64, uint64 and double values are analysed; other values, NaN and
 * infinities pass unchanged. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/pipeline.h"
#include "series.h"

typedef struct an_config {
    int64_t buf_length;
    char *factor;
    int64_t send_interval_ms;
    int64_t after;
    int64_t max_series;
    int64_t expire_ms;
} an_config;

#define AN_DAY_MS (24 * 3600 * 1000LL)

static const fr_cfg_field an_fields[] = {
    {"buf_length", FR_CFG_INT, "30", offsetof(an_config, buf_length),
     "values in each series' window (snap's BufLength)", 4, 10000, NULL},
    {"factor", FR_CFG_STRING, "3.0", offsetof(an_config, factor),
     "Tukey's k, a number > 0: fences at Q1 - k*IQR and Q3 + k*IQR (snap's Factor; 1.5 also "
     "flags mild outliers)",
     0, 0, NULL},
    {"send_interval", FR_CFG_DURATION, "10s", offsetof(an_config, send_interval_ms),
     "metric time between two forwarded points of a stable series; 0 forwards every point", 0,
     366 * AN_DAY_MS, NULL},
    {"after", FR_CFG_INT, "10", offsetof(an_config, after), "points forwarded after an outlier", 0,
     1000000, NULL},
    {"max_series", FR_CFG_INT, "50000", offsetof(an_config, max_series),
     "series kept; a new one beyond evicts the least recently seen", 1, 100000000, NULL},
    {"expire", FR_CFG_DURATION, "10m", offsetof(an_config, expire_ms),
     "metric time without a point after which a series' window is dropped; 0 never", 0,
     366 * AN_DAY_MS, NULL},
};

/* One remembered point. */
typedef struct an_point {
    int64_t ts;
    union {
        int64_t i;
        uint64_t u;
        double d;
    } v;
    uint8_t type; /* fr_value_type: INT64, UINT64 or DOUBLE */
    bool sent;
} an_point;

/* A series' state block: then the ring of buf points (oldest at head) and
 * their values sorted. */
typedef struct an_series {
    int64_t last_sent; /* ts of the last point forwarded, when has_sent */
    uint32_t head, n;
    uint32_t after; /* points still to forward after an outlier */
    bool has_sent;
} an_series;

typedef struct an_state {
    uint32_t buf;
    double factor;
    int64_t send_interval_ns;
    uint32_t after;
    /* quartile positions in the sorted window: index and fraction */
    uint32_t q1_i, q3_i;
    double q1_f, q3_f;
    series_table series;
    uint64_t points, forwarded, outliers, passed;
} an_state;

static an_point *an_ring(an_series *a)
{
    return (an_point *)(void *)(a + 1);
}

static double *an_sorted(const an_state *st, an_series *a)
{
    return (double *)(void *)(an_ring(a) + st->buf);
}

static fr_value an_point_value(const an_point *p)
{
    fr_value v = {.type = (fr_value_type)p->type};
    if (v.type == FR_VAL_INT64) {
        v.v.i = p->v.i;
    } else if (v.type == FR_VAL_UINT64) {
        v.v.u = p->v.u;
    } else {
        v.v.d = p->v.d;
    }
    return v;
}

/* The quartile at index i plus fraction f of a sorted window (linear
 * interpolation between order statistics, as R's and numpy's default). */
static double an_quantile(const double *x, uint32_t i, double f)
{
    return f == 0 ? x[i] : x[i] + f * (x[i + 1] - x[i]);
}

/* Index of the first element > x (insert position) in x[0..n). */
static uint32_t an_upper_bound(const double *x, uint32_t n, double v)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (x[mid] <= v) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Adds a point to the window, dropping the oldest when it is full. */
static void an_window_push(const an_state *st, an_series *a, const fr_metric *m, double x,
                           bool sent)
{
    an_point *ring = an_ring(a);
    double *sorted = an_sorted(st, a);
    uint32_t n = a->n;
    an_point *slot;
    if (n == st->buf) {
        slot = &ring[a->head];
        a->head = a->head + 1 == st->buf ? 0 : a->head + 1;
        fr_value old = an_point_value(slot);
        double ox = series_value_f64(&old);
        uint32_t j = an_upper_bound(sorted, n, ox) - 1; /* sorted[j] == ox */
        memmove(&sorted[j], &sorted[j + 1], (n - j - 1) * sizeof(*sorted));
        n--;
    } else {
        uint32_t k = a->head + n;
        slot = &ring[k >= st->buf ? k - st->buf : k];
        a->n++;
    }
    slot->ts = m->ts;
    slot->type = (uint8_t)m->value.type;
    slot->sent = sent;
    if (m->value.type == FR_VAL_INT64) {
        slot->v.i = m->value.v.i;
    } else if (m->value.type == FR_VAL_UINT64) {
        slot->v.u = m->value.v.u;
    } else {
        slot->v.d = m->value.v.d;
    }
    uint32_t j = an_upper_bound(sorted, n, x);
    memmove(&sorted[j + 1], &sorted[j], (n - j) * sizeof(*sorted));
    sorted[j] = x;
}

/* Forwards the window's points not yet forwarded, oldest first: copies,
 * since a series' strings may be gone before out is. */
static int an_emit_context(an_state *st, const series *s, an_series *a, fr_batch *out)
{
    an_point *ring = an_ring(a);
    uint32_t first = UINT32_MAX;
    for (uint32_t k = 0; k < a->n; k++) {
        uint32_t idx = a->head + k;
        an_point *p = &ring[idx >= st->buf ? idx - st->buf : idx];
        if (p->sent) {
            continue;
        }
        fr_value v = an_point_value(p);
        if (first == UINT32_MAX) {
            if (series_emit_copy(out, s->ns, s->unit, s->tags, s->ntags, p->ts, v) == NULL) {
                return FR_ENOMEM;
            }
            first = out->nmetrics - 1;
        } else {
            /* the first copy's strings are out's own */
            fr_metric m = out->metrics[first];
            m.ts = p->ts;
            m.value = v;
            if (fr_batch_add_ref(out, &m) == NULL) {
                return FR_ENOMEM;
            }
        }
        p->sent = true;
        st->forwarded++;
    }
    return 0;
}

static int an_process(void *state, const fr_process_req *req, fr_error *err)
{
    an_state *st = state;
    const fr_batch *in = req->in;
    uint64_t ctx = series_ctx(in);
    int64_t newest = INT64_MIN;
    for (uint32_t i = 0; i < in->nmetrics; i++) {
        const fr_metric *m = &in->metrics[i];
        newest = m->ts > newest ? m->ts : newest;
        double x = series_numeric(&m->value) ? series_value_f64(&m->value) : NAN;
        if (!isfinite(x)) {
            if (fr_batch_add_ref(req->out, m) == NULL) {
                return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
            }
            st->passed++;
            continue;
        }
        bool fresh;
        series *s = series_table_get(&st->series, ctx, m, &fresh);
        if (s == NULL) {
            return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
        }
        an_series *a = series_state(s);
        st->points++;
        bool fwd = false;
        if (a->n == st->buf) {
            const double *sorted = an_sorted(st, a);
            double q1 = an_quantile(sorted, st->q1_i, st->q1_f);
            double q3 = an_quantile(sorted, st->q3_i, st->q3_f);
            double iqr = q3 - q1;
            if (x < q1 - st->factor * iqr || x > q3 + st->factor * iqr) {
                st->outliers++;
                if (an_emit_context(st, s, a, req->out) != 0) {
                    return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
                }
                a->after = st->after;
                fwd = true;
            }
        }
        if (!fwd && a->after > 0) {
            a->after--;
            fwd = true;
        }
        if (!fwd) {
            fwd = !a->has_sent || m->ts - a->last_sent >= st->send_interval_ns ||
                  m->ts < a->last_sent;
        }
        if (fwd) {
            if (fr_batch_add_ref(req->out, m) == NULL) {
                return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
            }
            st->forwarded++;
            a->has_sent = true;
            a->last_sent = m->ts;
        }
        an_window_push(st, a, m, x, fwd);
    }
    if (in->nmetrics > 0) {
        series_table_expire(&st->series, newest);
    }
    return 0;
}

static void an_destroy(void *state)
{
    an_state *st = state;
    if (st == NULL) {
        return;
    }
    series_table_free(&st->series);
    free(st);
}

static int an_init(void **state, const void *config, fr_error *err)
{
    const an_config *c = config;
    *state = NULL;
    const char *text = c->factor != NULL ? c->factor : "";
    char *end = NULL;
    double factor = strtod(text, &end);
    if (end == text || *end != '\0') {
        return fr_error_set(err, FR_ECONFIG, "factor", "key 'factor': not a number: '%.64s'", text);
    }
    if (!(factor > 0) || !isfinite(factor)) {
        return fr_error_set(err, FR_ECONFIG, "factor",
                            "key 'factor': must be a finite number > 0, got '%.64s'", text);
    }
    an_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    st->buf = (uint32_t)c->buf_length;
    st->factor = factor;
    st->send_interval_ns = c->send_interval_ms * 1000000;
    st->after = (uint32_t)c->after;
    double h1 = (st->buf - 1) * 0.25, h3 = (st->buf - 1) * 0.75;
    st->q1_i = (uint32_t)h1;
    st->q1_f = h1 - st->q1_i;
    st->q3_i = (uint32_t)h3;
    st->q3_f = h3 - st->q3_i;
    size_t block = sizeof(an_series) + st->buf * (sizeof(an_point) + sizeof(double));
    series_table_init(&st->series, (uint32_t)c->max_series, block, c->expire_ms * 1000000);
    *state = st;
    return 0;
}

static void an_stats(void *state, msgpack_packer *pk)
{
    const an_state *st = state;
    msgpack_pack_map(pk, 7);
    series_pack_u64(pk, "series", st->series.n);
    series_pack_u64(pk, "points", st->points);
    series_pack_u64(pk, "forwarded", st->forwarded);
    series_pack_u64(pk, "outliers", st->outliers);
    series_pack_u64(pk, "passed", st->passed);
    series_pack_u64(pk, "evicted", st->series.evicted);
    series_pack_u64(pk, "expired", st->series.expired);
}

const fr_processor_plugin fr_processor_anomaly = {
    .abi = FR_PROCESSOR_ABI,
    .name = "anomaly",
    .version = 1,
    .description = "forwards stable series now and then, and all points around an outlier "
                   "(Tukey's fences)",
    .config =
        {
            .fields = an_fields,
            .nfields = sizeof(an_fields) / sizeof(an_fields[0]),
            .config_size = sizeof(an_config),
        },
    .init = an_init,
    .process = an_process,
    .destroy = an_destroy,
    .stats = an_stats,
};
