/* rate: turns counters into rates per second. Each series (see series.h)
 * remembers its last point; a new point gives
 *   (value - previous value) / (ts - previous ts in seconds)
 * as a double with unit "<unit>/s" ("1/s" for a unitless counter), at the
 * new point's timestamp, under the same namespace and tags. The first point
 * of a series gives nothing.
 *
 * A counter that went down either wrapped (integers only: at 2^32 when the
 * previous value fits in 32 bits, else at 2^64, or as `wrap` says) or was
 * reset. A wrap is taken when the increase it implies is at most half the
 * counter's range, and at most max_rate per second when that is set;
 * otherwise it is a reset: that point gives nothing and the series starts
 * over from it. A point not later than the previous one gives nothing
 * either (and is not remembered). Values that are not numbers pass
 * unchanged. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/pipeline.h"
#include "series.h"

typedef struct rate_config {
    char *wrap;
    char *max_rate;
    int64_t max_series;
    int64_t expire_ms;
} rate_config;

static const char *const rate_wraps[] = {"auto", "32", "64", "none", NULL};

static const fr_cfg_field rate_fields[] = {
    {"wrap", FR_CFG_ENUM, "auto", offsetof(rate_config, wrap),
     "where integer counters wrap: auto (32 bits when the previous value fits, else 64), 32, 64, "
     "or none (every decrease is a reset)",
     0, 0, rate_wraps},
    {"max_rate", FR_CFG_STRING, "0", offsetof(rate_config, max_rate),
     "a wrap implying more than this per second is taken as a reset; 0: no limit", 0, 0, NULL},
    {"max_series", FR_CFG_INT, "100000", offsetof(rate_config, max_series),
     "series kept; a new one beyond evicts the least recently seen", 1, 100000000, NULL},
    {"expire", FR_CFG_DURATION, "10m", offsetof(rate_config, expire_ms),
     "metric time without a point after which a series is forgotten; 0 never", 0,
     366 * 24 * 3600 * 1000LL, NULL},
};

typedef enum rate_wrap { RATE_WRAP_AUTO, RATE_WRAP_32, RATE_WRAP_64, RATE_WRAP_NONE } rate_wrap;

/* A series' state block: its last point. */
typedef struct rate_series {
    int64_t ts;
    fr_value value; /* numeric */
    bool have;
} rate_series;

typedef struct rate_state {
    rate_wrap wrap;
    double max_rate;
    series_table series;
    uint64_t points, emitted, wraps, resets, out_of_order, passed;
} rate_state;

/* The counter as an unsigned integer, when it is one. */
static bool rate_as_u64(const fr_value *v, uint64_t *out)
{
    if (v->type == FR_VAL_UINT64) {
        *out = v->v.u;
        return true;
    }
    if (v->type == FR_VAL_INT64 && v->v.i >= 0) {
        *out = (uint64_t)v->v.i;
        return true;
    }
    return false;
}

/* The increase from prev to cur over dt_s seconds into *delta; false for a
 * reset. Counts wraps. */
static bool rate_delta(rate_state *st, const fr_value *prev, const fr_value *cur, double dt_s,
                       double *delta)
{
    uint64_t p, c;
    if (rate_as_u64(prev, &p) && rate_as_u64(cur, &c)) {
        if (c >= p) {
            *delta = (double)(c - p);
            return true;
        }
        unsigned bits;
        switch (st->wrap) {
        case RATE_WRAP_AUTO:
            bits = p <= UINT32_MAX ? 32 : 64;
            break;
        case RATE_WRAP_32:
            bits = 32;
            break;
        case RATE_WRAP_64:
            bits = 64;
            break;
        default:
            return false;
        }
        if (bits == 32 && p > UINT32_MAX) {
            return false; /* not a 32-bit counter */
        }
        /* the increase across the wrap, modulo 2^bits */
        uint64_t d = bits == 64 ? c - p : ((c - p) & UINT32_MAX);
        uint64_t half = bits == 64 ? (uint64_t)1 << 63 : (uint64_t)1 << 31;
        if (d > half || (st->max_rate > 0 && (double)d / dt_s > st->max_rate)) {
            return false;
        }
        st->wraps++;
        *delta = (double)d;
        return true;
    }
    double pv = series_value_f64(prev), cv = series_value_f64(cur);
    if (cv < pv) {
        return false;
    }
    *delta = cv - pv;
    return true;
}

/* Appends the rate point: m's namespace and unit + "/s" copied, its tags
 * shared (they live in the input batch). */
static int rate_emit(fr_batch *out, const fr_metric *m, double rate)
{
    char unit[256];
    uint32_t ulen = series_len(m->unit, m->unit_len);
    if (ulen == 0) {
        memcpy(unit, "1/s", 4);
    } else if (ulen + 3 <= sizeof(unit)) {
        memcpy(unit, m->unit, ulen);
        memcpy(unit + ulen, "/s", 3);
    }
    char *big = NULL;
    const char *u = unit;
    if (ulen + 3 > sizeof(unit)) {
        if ((big = malloc(ulen + 3)) == NULL) {
            return FR_ENOMEM;
        }
        memcpy(big, m->unit, ulen);
        memcpy(big + ulen, "/s", 3);
        u = big;
    }
    fr_metric *r = fr_batch_add(out, m->ns, m->ts, fr_val_f64(rate), u);
    free(big);
    if (r == NULL) {
        return FR_ENOMEM;
    }
    return fr_batch_metric_merge_tags(out, r, m->tags, m->ntags);
}

static int rate_process(void *state, const fr_process_req *req, fr_error *err)
{
    rate_state *st = state;
    const fr_batch *in = req->in;
    uint64_t ctx = series_ctx(in);
    int64_t newest = INT64_MIN;
    for (uint32_t i = 0; i < in->nmetrics; i++) {
        const fr_metric *m = &in->metrics[i];
        newest = m->ts > newest ? m->ts : newest;
        if (!series_numeric(&m->value) || !isfinite(series_value_f64(&m->value))) {
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
        rate_series *r = series_state(s);
        st->points++;
        if (r->have && m->ts <= r->ts) {
            st->out_of_order++;
            continue;
        }
        if (r->have) {
            double dt_s = (double)(m->ts - r->ts) / 1e9;
            double delta;
            if (rate_delta(st, &r->value, &m->value, dt_s, &delta)) {
                int rv = rate_emit(req->out, m, delta / dt_s);
                if (rv != 0) {
                    return fr_error_set(err, rv, NULL, "metric %u (%.200s): %s", i, m->ns,
                                        fr_strerror(rv));
                }
                st->emitted++;
            } else {
                st->resets++;
            }
        }
        r->ts = m->ts;
        r->value = m->value;
        r->have = true;
    }
    if (in->nmetrics > 0) {
        series_table_expire(&st->series, newest);
    }
    return 0;
}

static void rate_destroy(void *state)
{
    rate_state *st = state;
    if (st == NULL) {
        return;
    }
    series_table_free(&st->series);
    free(st);
}

static int rate_init(void **state, const void *config, fr_error *err)
{
    const rate_config *c = config;
    *state = NULL;
    const char *text = c->max_rate != NULL ? c->max_rate : "0";
    char *end = NULL;
    double max_rate = strtod(text, &end);
    if (end == text || *end != '\0') {
        return fr_error_set(err, FR_ECONFIG, "max_rate", "key 'max_rate': not a number: '%.64s'",
                            text);
    }
    if (!(max_rate >= 0) || !isfinite(max_rate)) {
        return fr_error_set(err, FR_ECONFIG, "max_rate",
                            "key 'max_rate': must be a finite number >= 0, got '%.64s'", text);
    }
    rate_state *st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    const char *w = c->wrap != NULL ? c->wrap : "auto";
    st->wrap = strcmp(w, "32") == 0     ? RATE_WRAP_32
               : strcmp(w, "64") == 0   ? RATE_WRAP_64
               : strcmp(w, "none") == 0 ? RATE_WRAP_NONE
                                        : RATE_WRAP_AUTO;
    st->max_rate = max_rate;
    series_table_init(&st->series, (uint32_t)c->max_series, sizeof(rate_series),
                      c->expire_ms * 1000000);
    *state = st;
    return 0;
}

static void rate_stats(void *state, msgpack_packer *pk)
{
    const rate_state *st = state;
    msgpack_pack_map(pk, 9);
    series_pack_u64(pk, "series", st->series.n);
    series_pack_u64(pk, "points", st->points);
    series_pack_u64(pk, "emitted", st->emitted);
    series_pack_u64(pk, "wraps", st->wraps);
    series_pack_u64(pk, "resets", st->resets);
    series_pack_u64(pk, "out_of_order", st->out_of_order);
    series_pack_u64(pk, "passed", st->passed);
    series_pack_u64(pk, "evicted", st->series.evicted);
    series_pack_u64(pk, "expired", st->series.expired);
}

const fr_processor_plugin fr_processor_rate = {
    .abi = FR_PROCESSOR_ABI,
    .name = "rate",
    .version = 1,
    .description = "turns counters into rates per second",
    .config =
        {
            .fields = rate_fields,
            .nfields = sizeof(rate_fields) / sizeof(rate_fields[0]),
            .config_size = sizeof(rate_config),
        },
    .init = rate_init,
    .process = rate_process,
    .destroy = rate_destroy,
    .stats = rate_stats,
};
