/* Line protocol encoding (see lineproto.h). */
#include "lineproto.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/err.h"

#define MAX_KEY     65535 /* InfluxDB's limit on measurement + tags + field key + 4 */
#define FIELD_KEY   "value"
#define MAX_NANO    (INT64_MAX - 1) /* and -MAX_NANO the earliest */
#define ESC_MEASURE 1
#define ESC_TAG     2

const char *influx_drop_name(influx_drop d)
{
    switch (d) {
    case INFLUX_DROP_NONFINITE:
        return "nonfinite";
    case INFLUX_DROP_NAME:
        return "name";
    case INFLUX_DROP_TIME:
        return "time";
    case INFLUX_DROP_KEY:
        return "key";
    default:
        return "none";
    }
}

void influx_lp_init(influx_lp *lp, int64_t precision_ns)
{
    lp->precision_ns = precision_ns > 0 ? precision_ns : 1;
}

static uint32_t str_len(const char *s, uint32_t known)
{
    return known != 0 || s[0] == '\0' ? known : (uint32_t)strlen(s);
}

/* A name the parser reads back as written (see lineproto.h). */
static bool name_ok(const char *s, size_t n)
{
    return n > 0 && s[n - 1] != '\\' && memchr(s, '\n', n) == NULL;
}

/* Escaped length of s for kind (ESC_MEASURE or ESC_TAG). */
static size_t esc_len(const char *s, size_t n, int kind)
{
    size_t extra = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        extra += c == ',' || c == ' ' || (kind == ESC_TAG && c == '=');
    }
    return n + extra;
}

/* Writes s escaped at d (room reserved); returns the end. */
static char *esc_put(char *d, const char *s, size_t n, int kind)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ',' || c == ' ' || (kind == ESC_TAG && c == '=')) {
            *d++ = '\\';
        }
        *d++ = c;
    }
    return d;
}

static int tag_cmp(const fr_tag *a, const fr_tag *b)
{
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int c = memcmp(a->key, b->key, n);
    if (c != 0) {
        return c;
    }
    return a->key_len < b->key_len ? -1 : a->key_len > b->key_len;
}

static int tag_qsort_cmp(const void *a, const void *b)
{
    return tag_cmp(a, b);
}

/* Sorts t[0..n), whose keys are unique, by key. */
static void tags_sort(fr_tag *t, size_t n)
{
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++) {
        sorted = tag_cmp(&t[i - 1], &t[i]) < 0;
    }
    if (sorted) {
        return;
    }
    if (n > 16) {
        qsort(t, n, sizeof(*t), tag_qsort_cmp);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        fr_tag x = t[i];
        size_t j = i;
        while (j > 0 && tag_cmp(&t[j - 1], &x) > 0) {
            t[j] = t[j - 1];
            j--;
        }
        t[j] = x;
    }
}

static const fr_tag *tags_find(const fr_tag *t, size_t n, const char *key)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i < n; i++) {
        if (t[i].key_len == kl && memcmp(t[i].key, key, kl) == 0) {
            return &t[i];
        }
    }
    return NULL;
}

/* Inserts tag x into sorted t[0..*n). */
static void tags_insert(fr_tag *t, size_t *n, fr_tag x)
{
    size_t j = *n;
    while (j > 0 && tag_cmp(&t[j - 1], &x) > 0) {
        t[j] = t[j - 1];
        j--;
    }
    t[j] = x;
    (*n)++;
}

static size_t tags_copy(fr_tag *dst, const fr_tag *src, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        dst[i] = src[i];
        dst[i].key_len = str_len(src[i].key, src[i].key_len);
        dst[i].value_len = str_len(src[i].value, src[i].value_len);
    }
    tags_sort(dst, n);
    return n;
}

/* The point's tag set, sorted by key, in lp->tags. */
static size_t tags_merge(influx_lp *lp, const fr_batch *b, const fr_metric *m)
{
    fr_tag *t = lp->tags;
    size_t n;
    if (b->ntags == 0 || m->ntags == 0) {
        n = b->ntags == 0 ? tags_copy(t, m->tags, m->ntags) : tags_copy(t, b->tags, b->ntags);
    } else {
        /* Both sorted, then merged; a metric's tag replaces the batch's. */
        fr_tag *bt = lp->scratch, *mt = lp->scratch + b->ntags;
        size_t nb = tags_copy(bt, b->tags, b->ntags), nm = tags_copy(mt, m->tags, m->ntags);
        size_t i = 0, j = 0;
        n = 0;
        while (i < nb || j < nm) {
            int c = i == nb ? 1 : j == nm ? -1 : tag_cmp(&bt[i], &mt[j]);
            if (c < 0) {
                t[n++] = bt[i++];
            } else {
                t[n++] = mt[j++];
                i += c == 0;
            }
        }
    }

    /* What snap's publisher adds. */
    if (tags_find(t, n, "source") == NULL) {
        const fr_tag *pro = tags_find(t, n, "plugin_running_on");
        fr_tag src = {.key = "source", .key_len = 6};
        if (pro != NULL) {
            src.value = pro->value;
            src.value_len = pro->value_len;
            size_t at = (size_t)(pro - t);
            memmove(&t[at], &t[at + 1], (n - at - 1) * sizeof(*t));
            n--;
        } else {
            src.value = b->source;
            src.value_len = (uint32_t)strlen(b->source);
        }
        tags_insert(t, &n, src);
    }
    if (tags_find(t, n, "unit") == NULL) {
        fr_tag unit = {.key = "unit", .key_len = 4, .value = m->unit};
        unit.value_len = str_len(m->unit, m->unit_len);
        tags_insert(t, &n, unit);
    }
    /* No empty keys or values: InfluxDB stores neither. */
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i].key_len > 0 && t[i].value_len > 0) {
            t[o++] = t[i];
        }
    }
    return o;
}

/* Decimal digits of v at d; returns their count. */
static size_t put_u64(char *d, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++) {
        d[i] = tmp[n - 1 - i];
    }
    return n;
}

static size_t put_i64(char *d, int64_t v)
{
    if (v >= 0) {
        return put_u64(d, (uint64_t)v);
    }
    d[0] = '-';
    return 1 + put_u64(d + 1, -(uint64_t)v);
}

/* Shortest "%.*g" that reads back as d; a whole number below 2^53 as its
 * digits (what %g would print, without the tries). */
static int fmt_double(char *buf, size_t cap, double d)
{
    if (d > -9007199254740992.0 && d < 9007199254740992.0 && d == (double)(int64_t)d &&
        (d != 0 || !signbit(d))) {
        return (int)put_i64(buf, (int64_t)d);
    }
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, cap, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) {
            break;
        }
    }
    return n;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int influx_lp_line(influx_lp *lp, const fr_batch *b, const fr_metric *m, fr_buf *out,
                   const char **why)
{
    *why = NULL;
    /* The value first: the cheapest reason to drop. */
    char num[40];
    size_t num_len = 0;
    const char *str = NULL;
    size_t str_n = 0, str_extra = 0;
    switch (m->value.type) {
    case FR_VAL_INT64:
        num_len = put_i64(num, m->value.v.i);
        num[num_len++] = 'i';
        break;
    case FR_VAL_UINT64:
        if (m->value.v.u <= (uint64_t)INT64_MAX) {
            num_len = put_u64(num, m->value.v.u);
            num[num_len++] = 'i';
        } else {
            num_len = (size_t)fmt_double(num, sizeof(num), (double)m->value.v.u);
        }
        break;
    case FR_VAL_DOUBLE:
        if (!isfinite(m->value.v.d)) {
            *why = "a NaN or infinite double cannot be stored";
            return INFLUX_DROP_NONFINITE;
        }
        num_len = (size_t)fmt_double(num, sizeof(num), m->value.v.d);
        break;
    case FR_VAL_BOOL:
        num_len = m->value.v.b ? 4 : 5;
        memcpy(num, m->value.v.b ? "true" : "false", num_len);
        break;
    case FR_VAL_STRING:
        str = m->value.v.s.ptr;
        str_n = m->value.v.s.len;
        for (size_t i = 0; i < str_n; i++) {
            str_extra += str[i] == '"' || str[i] == '\\';
        }
        break;
    default:
        *why = "unknown value type";
        return INFLUX_DROP_NAME;
    }

    /* ts * precision must be within +-MAX_NANO. */
    int64_t ts = lp->precision_ns == 1 ? m->ts : floor_div(m->ts, lp->precision_ns);
    int64_t bound = MAX_NANO / lp->precision_ns;
    if (ts < -bound || ts > bound) {
        *why = "the timestamp is outside InfluxDB's range";
        return INFLUX_DROP_TIME;
    }

    const char *meas = m->ns;
    size_t meas_n = str_len(m->ns, m->ns_len);
    if (meas_n > 0 && meas[0] == '/') {
        meas++;
        meas_n--;
    }
    if (!name_ok(meas, meas_n) || meas[0] == '#' || meas[0] == '\t') {
        *why = meas_n == 0 ? "the measurement (namespace) is empty"
                           : "the measurement (namespace) has a newline, ends in a backslash "
                             "or starts with '#' or a tab";
        return INFLUX_DROP_NAME;
    }
    size_t ntags = tags_merge(lp, b, m);
    const fr_tag *t = lp->tags;
    size_t key_len = esc_len(meas, meas_n, ESC_MEASURE);
    for (size_t i = 0; i < ntags; i++) {
        if (!name_ok(t[i].key, t[i].key_len) || !name_ok(t[i].value, t[i].value_len)) {
            *why = "a tag key or value has a newline or ends in a backslash";
            return INFLUX_DROP_NAME;
        }
        if (t[i].key_len == 4 && memcmp(t[i].key, "time", 4) == 0) {
            *why = "a tag key 'time' is refused by InfluxDB";
            return INFLUX_DROP_NAME;
        }
        key_len += 2 + esc_len(t[i].key, t[i].key_len, ESC_TAG) +
                   esc_len(t[i].value, t[i].value_len, ESC_TAG);
    }
    if (key_len + 4 + strlen(FIELD_KEY) > MAX_KEY) {
        *why = "the series key (measurement and tags) is over 65535 bytes";
        return INFLUX_DROP_KEY;
    }

    /* key, " value=", the value, " ", the timestamp, "\n" */
    size_t need =
        key_len + 1 + strlen(FIELD_KEY) + 1 + num_len + str_n + str_extra + 2 + 1 + 21 + 1;
    if (fr_buf_reserve(out, need) != 0) {
        return FR_ENOMEM;
    }
    char *d = (char *)out->data + out->len;
    d = esc_put(d, meas, meas_n, ESC_MEASURE);
    for (size_t i = 0; i < ntags; i++) {
        *d++ = ',';
        d = esc_put(d, t[i].key, t[i].key_len, ESC_TAG);
        *d++ = '=';
        d = esc_put(d, t[i].value, t[i].value_len, ESC_TAG);
    }
    memcpy(d, " " FIELD_KEY "=", strlen(FIELD_KEY) + 2);
    d += strlen(FIELD_KEY) + 2;
    if (m->value.type == FR_VAL_STRING) {
        *d++ = '"';
        for (size_t i = 0; i < str_n; i++) {
            if (str[i] == '"' || str[i] == '\\') {
                *d++ = '\\';
            }
            *d++ = str[i];
        }
        *d++ = '"';
    } else {
        memcpy(d, num, num_len);
        d += num_len;
    }
    *d++ = ' ';
    d += put_i64(d, ts);
    *d++ = '\n';
    out->len = (size_t)((uint8_t *)d - out->data);
    return 0;
}
