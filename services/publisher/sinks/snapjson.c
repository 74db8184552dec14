/* snapjson: one metric as the JSON object of snap's file publisher
 * (snapjson.h), for the file and kafka sinks. Each object is written with
 * raw pointers into room reserved for it up front: at most SJ_FIXED bytes
 * besides its strings, six bytes for each byte of those (as "\u0001") and
 * the tags' own bound. The date is made once per second, and a double
 * needs printf only where 128-bit integers do not reach. */
#include "snapjson.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/manifest.h"

/* Keys, punctuation, the strings' quotes and the newline (72 bytes), the
 * timestamp (32) and the longest number (25, "-0.0000012345678901234567"):
 * 129, rounded up. */
#define SJ_FIXED 192

typedef struct sj_tag {
    const char *k, *v;
    uint32_t kl, vl;
    uint32_t order; /* place in the input: a later tag replaces an earlier one */
} sj_tag;

/* Tags sorted by key, one per key, and the bytes their JSON may take. */
typedef struct sj_tags {
    sj_tag *v;
    size_t n, cap;
    size_t bound;
} sj_tags;

struct snapjson {
    sj_tags batch, metric;
    int64_t date_sec;
    char date[20]; /* "2016-07-25T09:27:59" for date_sec; "" before the first */
};

/* ---- strings ---------------------------------------------------------- */

static const char hexd[] = "0123456789abcdef";

/* A byte JSON takes as it is: not a control character, '"', '\\' or part
 * of a multi-byte sequence. */
static inline bool json_plain(uint8_t c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 when it is
 * not one; as Go's utf8.DecodeRune. */
static size_t utf8_len(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c >= 0xc2 && c <= 0xdf) {
        return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    }
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (p[2] & 0xc0) != 0x80) {
            return 0;
        }
        uint8_t lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80) {
            return 0;
        }
        uint8_t lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return p[1] >= lo && p[1] <= hi ? 4 : 0;
    }
    return 0;
}

/* Writes s as a quoted JSON string: at most 6 * n + 2 bytes. */
static char *json_str(char *p, const char *s, size_t n)
{
    const uint8_t *u = (const uint8_t *)s;
    *p++ = '"';
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && json_plain(u[run])) {
            run++;
        }
        memcpy(p, u + i, run - i);
        p += run - i;
        i = run;
        if (i == n) {
            break;
        }
        uint8_t c = u[i];
        if (c < 0x80) {
            *p++ = '\\';
            switch (c) {
            case '"':
            case '\\':
                *p++ = (char)c;
                break;
            case '\n':
                *p++ = 'n';
                break;
            case '\r':
                *p++ = 'r';
                break;
            case '\t':
                *p++ = 't';
                break;
            case '\b':
                *p++ = 'b';
                break;
            case '\f':
                *p++ = 'f';
                break;
            default:
                memcpy(p, "u00", 3);
                p[3] = hexd[c >> 4];
                p[4] = hexd[c & 15];
                p += 5;
            }
            i++;
            continue;
        }
        size_t l = utf8_len(u + i, n - i);
        if (l == 0) {
            memcpy(p, "\\ufffd", 6); /* not UTF-8: one replacement per byte */
            p += 6;
            i++;
        } else if (l == 3 && c == 0xe2 && u[i + 1] == 0x80 && (u[i + 2] | 1) == 0xa9) {
            memcpy(p, u[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6); /* as Go, for JavaScript */
            p += 6;
            i += 3;
        } else {
            memcpy(p, u + i, l);
            p += l;
            i += l;
        }
    }
    *p++ = '"';
    return p;
}

/* ---- numbers ---------------------------------------------------------- */

static char *json_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0) {
        *p++ = tmp[--n];
    }
    return p;
}

static char *json_i64(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return json_u64(p, (uint64_t)0 - (uint64_t)v);
    }
    return json_u64(p, (uint64_t)v);
}

/* Writes the n digits dig (no trailing zeros) with the decimal exponent
 * e of the first, as Go's encoding/json writes a float64: plain from 1e-6
 * up to 1e21, else 1.5e-7 / 1e+21. */
static char *json_decimal(char *p, bool neg, const char *dig, int n, int e)
{
    if (neg) {
        *p++ = '-';
    }
    if (e >= -6 && e < 21) {
        if (e < 0) {
            *p++ = '0';
            *p++ = '.';
            for (int i = 0; i < -e - 1; i++) {
                *p++ = '0';
            }
            memcpy(p, dig, (size_t)n);
            return p + n;
        }
        for (int i = 0; i <= e; i++) {
            *p++ = i < n ? dig[i] : '0';
        }
        if (n > e + 1) {
            *p++ = '.';
            memcpy(p, dig + e + 1, (size_t)(n - e - 1));
            p += n - e - 1;
        }
        return p;
    }
    *p++ = dig[0];
    if (n > 1) {
        *p++ = '.';
        memcpy(p, dig + 1, (size_t)(n - 1));
        p += n - 1;
    }
    *p++ = 'e';
    *p++ = e < 0 ? '-' : '+';
    return json_u64(p, (uint64_t)(e < 0 ? -e : e));
}

/* d's first prec significant digits, correctly rounded (the C library
 * prints exactly), into dig; returns the decimal exponent of the first. */
static int sci_digits(double d, int prec, char *dig)
{
    char s[48];
    snprintf(s, sizeof(s), "%.*e", prec - 1, d); /* "-1.2345e+05" */
    const char *q = s + (s[0] == '-');
    dig[0] = q[0];
    if (prec > 1) {
        memcpy(dig + 1, q + 2, (size_t)prec - 1);
    }
    return atoi(q + (prec > 1 ? prec + 2 : 2));
}

#ifdef __SIZEOF_INT128__
typedef unsigned __int128 sj_u128;

/* The shortest decimal that reads back as d and, of those, the nearest,
 * found exactly with 128-bit integers for 2^-16 <= |d| < 2^52 (the bits
 * say which: biased exponent 1007 to 1074). Scaled by 10^K (S below),
 * every decimal of 17 digits or fewer near d is an integer. |d| is
 * m·2^-q and the doubles beside it (m ± 1)·2^-q: what reads back as d
 * lies between the midpoints, the ends included when m is even (strtod
 * rounds half to even), and those ends times 10^K stay below 2^125. The
 * integer there with the most trailing zeros has the fewest digits.
 * Returns the digit count, 0 when d is out of range. */
static int digits_exact(uint64_t bits, char *dig, int *e)
{
    int be = (int)(bits >> 52 & 0x7ff);
    if (be < 1007 || be > 1074) {
        return 0;
    }
    uint64_t m = (bits & 0xfffffffffffffu) | (1ull << 52);
    int e2 = be - 1023; /* 2^e2 <= |d| < 2^(e2 + 1) */
    int q = 52 - e2;    /* |d| = m·2^-q, 1 <= q <= 68 */
    /* floor(e2·log10 2), so that S = |d|·10^K is in [10^16, 2·10^17) */
    int e10 = e2 >= 0 ? (e2 * 78913) >> 18 : -((-e2 * 78913 + (1 << 18) - 1) >> 18);
    int K = 16 - e10; /* 1 <= K <= 21 */
    sj_u128 p10 = 1;
    for (int i = 0; i < K; i++) {
        p10 *= 10;
    }
    /* ends and middle over 2^(q + 2); at a power of two the double below
     * is half as far as the one above */
    int sh = q + 2;
    sj_u128 mask = ((sj_u128)1 << sh) - 1;
    uint64_t m4 = m << 2;
    bool pow2 = m == 1ull << 52;
    sj_u128 nlo = (sj_u128)(m4 - (pow2 ? 1 : 2)) * p10, nhi = (sj_u128)(m4 + 2) * p10,
            nmid = (sj_u128)m4 * p10;
    bool incl = (m & 1) == 0;
    uint64_t lo = (uint64_t)(nlo >> sh) + ((nlo & mask) != 0 || !incl);
    uint64_t hi = (uint64_t)(nhi >> sh) - ((nhi & mask) == 0 && !incl);
    /* the most trailing zeros: the integers in [lo, hi] are t·10^j for t
     * in [lo_j, hi_j] */
    int j = 0;
    uint64_t u = 1; /* 10^j */
    for (;;) {
        uint64_t l = (lo + 9) / 10, h = hi / 10;
        if (l > h) {
            break;
        }
        lo = l;
        hi = h;
        j++;
        u *= 10;
    }
    /* of those t, the nearest S / 10^j (half to even) */
    uint64_t mid = (uint64_t)(nmid >> sh), f = mid / u, r = mid % u;
    sj_u128 mrem = nmid & mask, half = (sj_u128)1 << (sh - 1);
    int cmp; /* S / 10^j - f against 1/2 */
    if (2 * r + 2 <= u) {
        cmp = -1;
    } else if (2 * r > u) {
        cmp = 1;
    } else if (2 * r == u) {
        cmp = mrem != 0;
    } else {
        cmp = mrem < half ? -1 : mrem > half;
    }
    uint64_t t = cmp < 0 || (cmp == 0 && (f & 1) == 0) ? f : f + 1;
    t = t < lo ? lo : t > hi ? hi : t;
    int n = (int)(json_u64(dig, t) - dig);
    *e = n - 1 + j - K;
    return n;
}
#endif

#define SJ_WIDE 20 /* digits printed once for every count tried */

/* Adds one to the last of the n digits t, whose first has exponent *e. */
static void digits_inc(char *t, int n, int *e)
{
    int i = n - 1;
    while (i >= 0 && t[i] == '9') {
        t[i--] = '0';
    }
    if (i >= 0) {
        t[i]++;
    } else {
        t[0] = '1';
        (*e)++;
    }
}

/* n less the trailing zeros of t (the first digit stays). */
static int digits_trim(const char *t, int n)
{
    while (n > 1 && t[n - 1] == '0') {
        n--;
    }
    return n;
}

/* What strtod makes of the n digits t with exponent e. */
static double digits_value(bool neg, const char *t, int n, int e)
{
    char s[40];
    *json_decimal(s, neg, t, n, e) = '\0';
    return strtod(s, NULL);
}

/* The shortest decimal that reads back as d and, of those, the nearest,
 * as Go and Python write it: digits_exact's where it can, else found with
 * the C library's printf and strtod. The candidate for n digits is d correctly
 * rounded to n digits: d's first SJ_WIDE digits are printed once, and
 * rounding them is rounding d unless the digits dropped are exactly
 * 5000... (d may lie on either side; the C library, which prints exactly,
 * rounds d itself then). When n digits do not read back, fewer do not
 * either, except at a power of two, whose neighbour below is twice as
 * near as the one above: there the next decimal up is tried too. One
 * strtod per count tried. */
static char *json_double_digits(char *p, double d)
{
    bool neg = signbit(d);
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
#ifdef __SIZEOF_INT128__
    char exact[20]; /* 17 digits at most: json_u64 writes up to 20 */
    int exact_e, exact_n = digits_exact(bits, exact, &exact_e);
    if (exact_n > 0) {
        return json_decimal(p, neg, exact, exact_n, exact_e);
    }
#endif
    bool pow2 = (bits & 0xfffffffffffffu) == 0 && (bits >> 52 & 0x7ff) > 1;
    char wide[SJ_WIDE];
    int e = sci_digits(d, SJ_WIDE, wide);
    char best[17];
    int best_n = 0, best_e = e;
    for (int n = 17; n >= 1; n--) {
        char t[17];
        int te = e;
        memcpy(t, wide, (size_t)n);
        bool tie = wide[n] == '5';
        for (int i = n + 1; i < SJ_WIDE && tie; i++) {
            tie = wide[i] == '0';
        }
        if (tie) {
            te = sci_digits(d, n, t);
        } else if (wide[n] >= '5') {
            digits_inc(t, n, &te);
        }
        int m = digits_trim(t, n);
        if (best_n != 0) { /* 17 digits always read back */
            double v = digits_value(neg, t, m, te);
            if (v != d && pow2 && fabs(v) < fabs(d)) {
                digits_inc(t, n, &te);
                m = digits_trim(t, n);
                v = digits_value(neg, t, m, te);
            }
            if (v != d) {
                break;
            }
        }
        memcpy(best, t, (size_t)m);
        best_n = m;
        best_e = te;
    }
    return json_decimal(p, neg, best, best_n, best_e);
}

static const double pow10d[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
static const uint64_t pow10u[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

/* The shortest decimal that reads back as d, the nearest of those; a
 * short one (8 decimals at most) found with a few multiplications. NaN
 * and infinities, which JSON has no number for, are the strings "NaN",
 * "+Inf" and "-Inf" (Go's strconv spelling). */
static char *json_double(char *p, double d)
{
    if (isnan(d)) {
        memcpy(p, "\"NaN\"", 5);
        return p + 5;
    }
    if (isinf(d)) {
        memcpy(p, d > 0 ? "\"+Inf\"" : "\"-Inf\"", 6);
        return p + 6;
    }
    if (d == 0) {
        if (signbit(d)) {
            *p++ = '-';
        }
        *p++ = '0';
        return p;
    }
    double a = fabs(d);
    if (a >= 1e-6 && a < 1e15) {
        /* n / 10^k with n < 2^53 divides exactly as strtod rounds the
         * decimal n·10^-k, so the check below is a true round trip. Below
         * 2^50 the doubles next to d are less than a quarter of a unit
         * of n away, so only the n nearest d can read back, and v (off
         * by 1/16 at most) rounds to it. */
        for (int k = 0; k <= 8; k++) {
            double v = a * pow10d[k];
            if (v >= 1125899906842624.0) {
                break;
            }
            uint64_t n = (uint64_t)(v + 0.5);
            if ((double)n / pow10d[k] != a) {
                continue;
            }
            if (d < 0) {
                *p++ = '-';
            }
            p = json_u64(p, n / pow10u[k]);
            if (k > 0) {
                uint64_t frac = n % pow10u[k];
                *p++ = '.';
                for (int j = k - 1; j >= 0; j--) {
                    p[j] = (char)('0' + frac % 10);
                    frac /= 10;
                }
                p += k;
            }
            return p;
        }
    }
    return json_double_digits(p, d);
}

/* ---- time ------------------------------------------------------------- */

/* RFC 3339 in UTC with nine fraction digits, quoted: 32 bytes. The date
 * and time of day come from fr_format_rfc3339, once per second. */
static char *json_time(snapjson *w, char *p, int64_t ns)
{
    int64_t sec = ns / 1000000000, frac = ns % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        sec--;
    }
    if (sec != w->date_sec || w->date[0] == '\0') {
        char full[48]; /* years 1677 to 2262: "YYYY-MM-DDTHH:MM:SS" first */
        fr_format_rfc3339(ns, full, sizeof(full));
        memcpy(w->date, full, 19);
        w->date[19] = '\0';
        w->date_sec = sec;
    }
    *p++ = '"';
    memcpy(p, w->date, 19);
    p += 19;
    *p++ = '.';
    for (int j = 8; j >= 0; j--) {
        p[j] = (char)('0' + frac % 10);
        frac /= 10;
    }
    p += 9;
    *p++ = 'Z';
    *p++ = '"';
    return p;
}

/* ---- tags ------------------------------------------------------------- */

static int tag_cmp(const sj_tag *a, const sj_tag *b)
{
    uint32_t n = a->kl < b->kl ? a->kl : b->kl;
    int c = memcmp(a->k, b->k, n);
    if (c != 0) {
        return c;
    }
    return a->kl < b->kl ? -1 : a->kl > b->kl;
}

static int tag_order_cmp(const void *x, const void *y)
{
    const sj_tag *a = x, *b = y;
    int c = tag_cmp(a, b);
    return c != 0 ? c : a->order < b->order ? -1 : a->order > b->order;
}

/* tv = tags sorted by key, one per key (the last given wins). */
static int tags_prepare(sj_tags *tv, const fr_tag *tags, uint32_t n)
{
    tv->n = 0;
    tv->bound = 0;
    if (n == 0) {
        return 0;
    }
    if (tv->cap < n) {
        sj_tag *nv = realloc(tv->v, n * sizeof(*nv));
        if (nv == NULL) {
            return FR_ENOMEM;
        }
        tv->v = nv;
        tv->cap = n;
    }
    bool sorted = true;
    for (uint32_t i = 0; i < n; i++) {
        const fr_tag *t = &tags[i];
        sj_tag *f = &tv->v[i];
        f->k = t->key;
        f->v = t->value;
        f->kl = t->key_len != 0 ? t->key_len : (uint32_t)strlen(t->key);
        f->vl = t->value_len != 0 ? t->value_len : (uint32_t)strlen(t->value);
        f->order = i;
        tv->bound += 6 * ((size_t)f->kl + f->vl) + 6;
        sorted = sorted && (i == 0 || tag_cmp(&tv->v[i - 1], f) < 0);
    }
    tv->n = n;
    if (sorted) {
        return 0;
    }
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) { /* stable */
            sj_tag x = tv->v[i];
            size_t j = i;
            while (j > 0 && tag_cmp(&tv->v[j - 1], &x) > 0) {
                tv->v[j] = tv->v[j - 1];
                j--;
            }
            tv->v[j] = x;
        }
    } else {
        qsort(tv->v, n, sizeof(tv->v[0]), tag_order_cmp);
    }
    size_t k = 0; /* keep the last of equal keys */
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && tag_cmp(&tv->v[k - 1], &tv->v[i]) == 0) {
            tv->v[k - 1] = tv->v[i];
        } else {
            tv->v[k++] = tv->v[i];
        }
    }
    tv->n = k;
    return 0;
}

static char *json_tag(char *p, const sj_tag *t, bool *first)
{
    if (!*first) {
        *p++ = ',';
    }
    *first = false;
    p = json_str(p, t->k, t->kl);
    *p++ = ':';
    return json_str(p, t->v, t->vl);
}

/* The batch's tags merged with the metric's (which win), as a JSON object. */
static char *json_tags(char *p, const sj_tags *b, const sj_tags *m)
{
    *p++ = '{';
    bool first = true;
    size_t i = 0, j = 0;
    while (i < b->n || j < m->n) {
        int c = i == b->n ? 1 : j == m->n ? -1 : tag_cmp(&b->v[i], &m->v[j]);
        if (c < 0) {
            p = json_tag(p, &b->v[i++], &first);
        } else {
            p = json_tag(p, &m->v[j++], &first);
            i += c == 0;
        }
    }
    *p++ = '}';
    return p;
}

/* ---- the object ------------------------------------------------------- */

snapjson *snapjson_new(void)
{
    return calloc(1, sizeof(snapjson));
}

void snapjson_destroy(snapjson *w)
{
    if (w == NULL) {
        return;
    }
    free(w->batch.v);
    free(w->metric.v);
    free(w);
}

int snapjson_batch(snapjson *w, const fr_batch *b)
{
    return tags_prepare(&w->batch, b->tags, b->ntags);
}

static int snapjson_put(snapjson *w, const fr_metric *m, bool newline, fr_buf *out)
{
    int rv = tags_prepare(&w->metric, m->tags, m->ntags);
    if (rv != 0) {
        return rv;
    }
    size_t nsl = m->ns_len != 0 ? m->ns_len : strlen(m->ns);
    size_t ul = m->unit_len != 0 ? m->unit_len : strlen(m->unit);
    size_t sl = 0;
    if (m->value.type == FR_VAL_STRING) {
        sl = m->value.v.s.len != 0 ? m->value.v.s.len : strlen(m->value.v.s.ptr);
    }
    if (fr_buf_reserve(out, SJ_FIXED + 6 * (nsl + ul + sl) + w->batch.bound + w->metric.bound) !=
        0) {
        return FR_ENOMEM;
    }
    char *p = (char *)out->data + out->len;
    memcpy(p, "{\"timestamp\":", 13);
    p = json_time(w, p + 13, m->ts);
    memcpy(p, ",\"namespace\":", 13);
    p = json_str(p + 13, m->ns, nsl);
    memcpy(p, ",\"data\":", 8);
    p += 8;
    switch (m->value.type) {
    case FR_VAL_INT64:
        p = json_i64(p, m->value.v.i);
        break;
    case FR_VAL_UINT64:
        p = json_u64(p, m->value.v.u);
        break;
    case FR_VAL_DOUBLE:
        p = json_double(p, m->value.v.d);
        break;
    case FR_VAL_BOOL:
        memcpy(p, m->value.v.b ? "true" : "false", m->value.v.b ? 4 : 5);
        p += m->value.v.b ? 4 : 5;
        break;
    case FR_VAL_STRING:
        p = json_str(p, m->value.v.s.ptr, sl);
        break;
    default:
        memcpy(p, "null", 4);
        p += 4;
    }
    memcpy(p, ",\"unit\":", 8);
    p = json_str(p + 8, m->unit, ul);
    memcpy(p, ",\"tags\":", 8);
    p = json_tags(p + 8, &w->batch, &w->metric);
    memcpy(p, ",\"version\":0}\n", 14);
    p += newline ? 14 : 13;
    out->len = (size_t)(p - (char *)out->data);
    return 0;
}

int snapjson_metric(snapjson *w, const fr_metric *m, fr_buf *out)
{
    return snapjson_put(w, m, false, out);
}

int snapjson_line(snapjson *w, const fr_metric *m, fr_buf *out)
{
    return snapjson_put(w, m, true, out);
}
