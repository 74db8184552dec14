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

/* How far ahead a batch's lookups are fetched (metrics), and at most how
 * much of a series. */
#define AN_AHEAD_SLOT   8
#define AN_AHEAD_SERIES 4
#define AN_PREFETCH_MAX 1024
#define AN_KEY_BYTES    256

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

/* A series' state block: then its window's values sorted, then the ring
 * of its buf points (oldest at head). The sorted values come first, near
 * the header, as every point reads them. */
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
    size_t prefetch;  /* bytes of a series every point reads */
    uint64_t *hashes; /* series_hash of each metric of the batch */
    uint32_t cap_hashes;
    uint64_t points, forwarded, outliers, passed;
} an_state;

static double *an_sorted(an_series *a)
{
    return (double *)(void *)(a + 1);
}

static an_point *an_ring(const an_state *st, an_series *a)
{
    return (an_point *)(void *)(an_sorted(a) + st->buf);
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

/* How many of x[0..n) are <= v (where v goes in), or < v (where the
 * first v is). Branch-free: the window is small and the comparisons
 * unpredictable. */
static uint32_t an_count_le(const double *x, uint32_t n, double v)
{
    uint32_t c = 0;
    for (uint32_t i = 0; i < n; i++) {
        c += x[i] <= v;
    }
    return c;
}

static uint32_t an_count_lt(const double *x, uint32_t n, double v)
{
    uint32_t c = 0;
    for (uint32_t i = 0; i < n; i++) {
        c += x[i] < v;
    }
    return c;
}

/* Adds a point to the window, dropping the oldest when it is full. */
static void an_window_push(const an_state *st, an_series *a, const fr_metric *m, double x,
                           bool sent)
{
    an_point *ring = an_ring(st, a);
    double *sorted = an_sorted(a);
    uint32_t n = a->n;
    an_point *slot;
    if (n == st->buf) {
        slot = &ring[a->head];
        a->head = a->head + 1 == st->buf ? 0 : a->head + 1;
        fr_value old = an_point_value(slot);
        double ox = series_value_f64(&old);
        /* the old value leaves at r, the new one comes in at p: shift what
         * lies between by one */
        uint32_t r = an_count_lt(sorted, n, ox);
        uint32_t p = an_count_le(sorted, n, x);
        if (p > r) {
            memmove(&sorted[r], &sorted[r + 1], (p - 1 - r) * sizeof(*sorted));
            sorted[p - 1] = x;
        } else {
            memmove(&sorted[p + 1], &sorted[p], (r - p) * sizeof(*sorted));
            sorted[p] = x;
        }
    } else {
        uint32_t k = a->head + n;
        slot = &ring[k >= st->buf ? k - st->buf : k];
        a->n++;
        uint32_t p = an_count_le(sorted, n, x);
        memmove(&sorted[p + 1], &sorted[p], (n - p) * sizeof(*sorted));
        sorted[p] = x;
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
}

/* Forwards the window's points not yet forwarded, oldest first: copies,
 * since a series' strings may be gone before out is. */
static int an_emit_context(an_state *st, const series *s, an_series *a, fr_batch *out)
{
    an_point *ring = an_ring(st, a);
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
    /* Hash every series first, so that each lookup can be fetched from
     * memory a few metrics ahead of its turn. */
    if (in->nmetrics > st->cap_hashes) {
        uint64_t *h = realloc(st->hashes, in->nmetrics * sizeof(*h));
        if (h == NULL) {
            return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
        }
        st->hashes = h;
        st->cap_hashes = in->nmetrics;
    }
    for (uint32_t i = 0; i < in->nmetrics; i++) {
        st->hashes[i] = series_hash(&in->metrics[i]);
    }
    for (uint32_t i = 0; i < in->nmetrics; i++) {
        const fr_metric *m = &in->metrics[i];
        if (i + AN_AHEAD_SLOT < in->nmetrics) {
            series_table_prefetch_slot(&st->series, st->hashes[i + AN_AHEAD_SLOT]);
        }
        if (i + AN_AHEAD_SERIES < in->nmetrics) {
            series_table_prefetch_series(&st->series, st->hashes[i + AN_AHEAD_SERIES],
                                         st->prefetch);
        }
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
        series *s = series_table_get_hashed(&st->series, st->hashes[i], ctx, m, &fresh);
        if (s == NULL) {
            return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
        }
        an_series *a = series_state(s);
        st->points++;
        bool fwd = false;
        if (a->n == st->buf) {
            const double *sorted = an_sorted(a);
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
    free(st->hashes);
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
    /* the header, a typical namespace and tags, the window's sorted values */
    st->prefetch = sizeof(series) + AN_KEY_BYTES + sizeof(an_series) + st->buf * sizeof(double);
    if (st->prefetch > AN_PREFETCH_MAX) {
        st->prefetch = AN_PREFETCH_MAX;
    }
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
