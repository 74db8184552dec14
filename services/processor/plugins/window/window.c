/* window: replaces each series' points with aggregates over periods of
 * metric time (mean, min, max, count), the periods aligned to the epoch
 * ([k * period, (k + 1) * period)). A period's aggregates are emitted when
 * the first point of a later period of the same series arrives, as
 * <namespace>/<aggregate> at the period's start, with the series' tags; a
 * series that stops sending keeps its last period until it expires, and
 * then drops it. A point older than its series' open period is late: it is
 * dropped and counted. Values that are not numbers pass unchanged. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fresco/pipeline.h"
#include "series.h"

typedef struct window_config {
    int64_t period_ms;
    fr_strlist aggregates;
    int64_t max_series;
    int64_t expire_ms;
} window_config;

#define WINDOW_DAY_MS (24 * 3600 * 1000LL)

static const fr_cfg_field window_fields[] = {
    {"period", FR_CFG_DURATION, "1m", offsetof(window_config, period_ms),
     "length of a period, aligned to the epoch", 1, 366 * WINDOW_DAY_MS, NULL},
    {"aggregates", FR_CFG_LIST, "mean,min,max,count", offsetof(window_config, aggregates),
     "what to emit per period, in this order: any of mean, min, max, count", 0, 0, NULL},
    {"max_series", FR_CFG_INT, "100000", offsetof(window_config, max_series),
     "series kept; a new one beyond evicts the least recently seen (its open period is lost)", 1,
     100000000, NULL},
    {"expire", FR_CFG_DURATION, "10m", offsetof(window_config, expire_ms),
     "metric time without a point after which a series and its open period are dropped; longer "
     "than period",
     1, 2 * 366 * WINDOW_DAY_MS, NULL},
};

typedef enum window_agg { WINDOW_MEAN, WINDOW_MIN, WINDOW_MAX, WINDOW_COUNT } window_agg;

static const char *const window_agg_names[] = {"mean", "min", "max", "count"};

#define WINDOW_NAGG 4

/* A series' state block: its open period. */
typedef struct window_series {
    int64_t start; /* of the open period */
    uint64_t count;
    double sum, min, max;
    bool open;
} window_series;

typedef struct window_state {
    int64_t period_ns;
    window_agg aggs[WINDOW_NAGG];
    uint32_t naggs;
    series_table series;
    uint64_t points, periods, late, too_long, passed;
} window_state;

/* floor(ts / period) * period, also for times before the epoch. */
static int64_t window_start(int64_t ts, int64_t period)
{
    int64_t q = ts / period;
    if (ts % period < 0) {
        q--;
    }
    return q * period;
}

/* Appends the aggregates of w, for the series of m (whose tags, in the
 * input batch, are shared). */
static int window_emit(window_state *st, fr_batch *out, const fr_metric *m, const window_series *w)
{
    char ns[FR_MAX_NAMESPACE + 1];
    uint32_t ns_len = series_len(m->ns, m->ns_len);
    for (uint32_t i = 0; i < st->naggs; i++) {
        const char *name = window_agg_names[st->aggs[i]];
        size_t nlen = strlen(name);
        if (ns_len + 1 + nlen > FR_MAX_NAMESPACE) {
            st->too_long++;
            continue;
        }
        memcpy(ns, m->ns, ns_len);
        ns[ns_len] = '/';
        memcpy(ns + ns_len + 1, name, nlen + 1);
        fr_value v;
        switch (st->aggs[i]) {
        case WINDOW_MEAN:
            v = fr_val_f64(w->sum / (double)w->count);
            break;
        case WINDOW_MIN:
            v = fr_val_f64(w->min);
            break;
        case WINDOW_MAX:
            v = fr_val_f64(w->max);
            break;
        default:
            v = fr_val_u64(w->count);
            break;
        }
        fr_metric *a =
            fr_batch_add(out, ns, w->start, v, st->aggs[i] == WINDOW_COUNT ? "" : m->unit);
        if (a == NULL) {
            return FR_ENOMEM;
        }
        int rv = fr_batch_metric_merge_tags(out, a, m->tags, m->ntags);
        if (rv != 0) {
            return rv;
        }
    }
    st->periods++;
    return 0;
}

static void window_open(window_series *w, int64_t start, double x)
{
    w->open = true;
    w->start = start;
    w->count = 1;
    w->sum = w->min = w->max = x;
}

static int window_process(void *state, const fr_process_req *req, fr_error *err)
{
    window_state *st = state;
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
        window_series *w = series_state(s);
        st->points++;
        int64_t start = window_start(m->ts, st->period_ns);
        if (!w->open) {
            window_open(w, start, x);
        } else if (start == w->start) {
            w->count++;
            w->sum += x;
            w->min = x < w->min ? x : w->min;
            w->max = x > w->max ? x : w->max;
        } else if (start > w->start) {
            int rv = window_emit(st, req->out, m, w);
            if (rv != 0) {
                return fr_error_set(err, rv, NULL, "metric %u (%.200s): %s", i, m->ns,
                                    fr_strerror(rv));
            }
            window_open(w, start, x);
        } else {
            st->late++;
        }
    }
    if (in->nmetrics > 0) {
        series_table_expire(&st->series, newest);
    }
    return 0;
}

static void window_destroy(void *state)
{
    window_state *st = state;
    if (st == NULL) {
        return;
    }
    series_table_free(&st->series);
    free(st);
}

static int window_init(void **state, const void *config, fr_error *err)
{
    const window_config *c = config;
    *state = NULL;
    if (c->expire_ms <= c->period_ms) {
        return fr_error_set(err, FR_ECONFIG, "expire",
                            "key 'expire': must be longer than period (%lld ms), got %lld ms",
                            (long long)c->period_ms, (long long)c->expire_ms);
    }
    if (c->aggregates.n == 0) {
        return fr_error_set(err, FR_ECONFIG, "aggregates",
                            "key 'aggregates': none given (any of mean, min, max, count)");
    }
    window_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    for (size_t i = 0; i < c->aggregates.n; i++) {
        const char *a = c->aggregates.v[i];
        uint32_t k = 0;
        while (k < WINDOW_NAGG && strcasecmp(a, window_agg_names[k]) != 0) {
            k++;
        }
        int rv = 0;
        if (k == WINDOW_NAGG) {
            rv = fr_error_set(err, FR_ECONFIG, "aggregates",
                              "key 'aggregates': '%.64s' is not one of mean, min, max, count", a);
        }
        for (uint32_t j = 0; rv == 0 && j < st->naggs; j++) {
            if (st->aggs[j] == (window_agg)k) {
                rv = fr_error_set(err, FR_ECONFIG, "aggregates",
                                  "key 'aggregates': '%s' is given twice", a);
            }
        }
        if (rv != 0) {
            free(st);
            return rv;
        }
        st->aggs[st->naggs++] = (window_agg)k;
    }
    st->period_ns = c->period_ms * 1000000;
    series_table_init(&st->series, (uint32_t)c->max_series, sizeof(window_series),
                      c->expire_ms * 1000000);
    *state = st;
    return 0;
}

static void window_stats(void *state, msgpack_packer *pk)
{
    const window_state *st = state;
    msgpack_pack_map(pk, 8);
    series_pack_u64(pk, "series", st->series.n);
    series_pack_u64(pk, "points", st->points);
    series_pack_u64(pk, "periods", st->periods);
    series_pack_u64(pk, "late", st->late);
    series_pack_u64(pk, "too_long", st->too_long);
    series_pack_u64(pk, "passed", st->passed);
    series_pack_u64(pk, "evicted", st->series.evicted);
    series_pack_u64(pk, "expired", st->series.expired);
}

const fr_processor_plugin fr_processor_window = {
    .abi = FR_PROCESSOR_ABI,
    .name = "window",
    .version = 1,
    .description = "mean, min, max and count of each series over periods of metric time",
    .config =
        {
            .fields = window_fields,
            .nfields = sizeof(window_fields) / sizeof(window_fields[0]),
            .config_size = sizeof(window_config),
        },
    .init = window_init,
    .process = window_process,
    .destroy = window_destroy,
    .stats = window_stats,
};
