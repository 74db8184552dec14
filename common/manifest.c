/* Task manifests: YAML or JSON text (or a decoded msgpack map) is first
 * read into a small tree that keeps every position, then one builder turns
 * the tree into an fr_manifest, so text and msgpack get the same checks. */
#include "fresco/manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "fresco/config.h"
#include "fresco/metric.h"
#include "fresco/ns.h"

#define NS_PER_SEC   1000000000ll
#define SEC_PER_DAY  86400ll
#define MF_PATH_MAX  384
#define MF_SHOW_MAX  64
#define MF_WHERE_MAX sizeof(((fr_error *)0)->where)
#define MF_TEXT_MAX  FR_MAX_STRING

/* ---- small helpers ---------------------------------------------------- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A user's text made fit for a one-line message: cut at a character
 * boundary, control bytes shown as '?'. */
static const char *show(char *buf, size_t cap, const char *s)
{
    size_t n = strlen(s);
    bool cut = n > cap - 4;
    if (cut) {
        n = cap - 4;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) {
            n--;
        }
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (cut) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

static char *memdup0(const char *s, size_t n)
{
    char *c = malloc(n + 1);
    if (c != NULL) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---- calendar (proleptic Gregorian, UTC) ------------------------------ */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* 0 = Sunday; 1970-01-01 was a Thursday. */
static unsigned weekday(int64_t days)
{
    return (unsigned)(((days % 7) + 11) % 7);
}

/* ---- RFC 3339 --------------------------------------------------------- */

/* Exactly n digits at *p. */
static bool take_digits(const char **p, int n, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit((*p)[i])) {
            return false;
        }
        v = v * 10 + (unsigned)((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool take_char(const char **p, const char *any)
{
    if (**p != '\0' && strchr(any, **p) != NULL) {
        (*p)++;
        return true;
    }
    return false;
}

int fr_parse_rfc3339(const char *s, int64_t *ns)
{
    unsigned y, mo, d, h, mi, sec, oh = 0, om = 0;
    const char *p = s;
    if (s == NULL || ns == NULL) {
        return FR_EINVAL;
    }
    if (!take_digits(&p, 4, &y) || !take_char(&p, "-") || !take_digits(&p, 2, &mo) ||
        !take_char(&p, "-") || !take_digits(&p, 2, &d) || !take_char(&p, "Tt") ||
        !take_digits(&p, 2, &h) || !take_char(&p, ":") || !take_digits(&p, 2, &mi) ||
        !take_char(&p, ":") || !take_digits(&p, 2, &sec)) {
        return FR_EINVAL;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60) {
        return FR_EINVAL;
    }
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        for (; is_digit(*p); p++, n++) {
            if (n < 9) {
                frac = frac * 10 + (*p - '0');
            }
        }
        if (n == 0) {
            return FR_EINVAL;
        }
        for (; n < 9; n++) {
            frac *= 10;
        }
    }
    int sign = 0;
    if (take_char(&p, "Zz")) {
        sign = 0;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
        if (!take_digits(&p, 2, &oh) || !take_char(&p, ":") || !take_digits(&p, 2, &om) ||
            oh > 23 || om > 59) {
            return FR_EINVAL;
        }
    } else {
        return FR_EINVAL;
    }
    if (*p != '\0') {
        return FR_EINVAL;
    }
    int64_t secs = days_from_civil(y, mo, d) * SEC_PER_DAY + h * 3600 + mi * 60 + sec -
                   sign * (int64_t)(oh * 3600 + om * 60);
    if (secs < 0 && frac > 0) {
        /* Keeps the product in range for the earliest instants of int64. */
        secs++;
        frac -= NS_PER_SEC;
    }
    int64_t v;
    if (__builtin_mul_overflow(secs, NS_PER_SEC, &v) || __builtin_add_overflow(v, frac, &v)) {
        return FR_ETOOBIG;
    }
    *ns = v;
    return 0;
}

int fr_format_rfc3339(int64_t ns, char *buf, size_t cap)
{
    int64_t secs = ns / NS_PER_SEC, r = ns % NS_PER_SEC;
    if (r < 0) {
        r += NS_PER_SEC;
        secs--;
    }
    unsigned frac = (unsigned)r;
    int64_t days = floor_div(secs, SEC_PER_DAY);
    unsigned rem = (unsigned)(secs - days * SEC_PER_DAY);
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    char f[16] = "";
    if (frac != 0) {
        snprintf(f, sizeof(f), ".%09u", frac);
        size_t n = strlen(f);
        while (f[n - 1] == '0') {
            f[--n] = '\0';
        }
    }
    int n = snprintf(buf, cap, "%04" PRId64 "-%02u-%02uT%02u:%02u:%02u%sZ", y, m, d, rem / 3600,
                     rem / 60 % 60, rem % 60, f);
    return n < 0 || (size_t)n >= cap ? FR_ETOOBIG : 0;
}

/* ---- cron ------------------------------------------------------------- */

typedef struct cron_field {
    const char *name;
    unsigned lo, hi;
    const char *const *names; /* value lo + i is names[i] */
} cron_field;

static const char *const cron_months[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
                                          "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const cron_days[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

static const cron_field cron_fields[6] = {
    {"second", 0, 59, NULL},       {"minute", 0, 59, NULL},       {"hour", 0, 23, NULL},
    {"day-of-month", 1, 31, NULL}, {"month", 1, 12, cron_months}, {"day-of-week", 0, 7, cron_days},
};

static int cron_fail(fr_error *err, size_t fi, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int cron_fail(fr_error *err, size_t fi, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return fr_error_set(err, FR_EINVAL, NULL, "field %zu (%s): %s", fi + 1, cron_fields[fi].name,
                        msg);
}

/* One value of field fi, a number or (month, day of week) a name. */
static int cron_value(const char *s, size_t len, size_t fi, unsigned *out, fr_error *err)
{
    const cron_field *f = &cron_fields[fi];
    char shown[MF_SHOW_MAX], tmp[MF_SHOW_MAX];
    snprintf(tmp, sizeof(tmp), "%.*s", (int)(len < sizeof(tmp) - 1 ? len : sizeof(tmp) - 1), s);
    show(shown, sizeof(shown), tmp);
    if (len == 0) {
        return cron_fail(err, fi, "a value is missing");
    }
    if (is_digit(s[0])) {
        unsigned v = 0;
        for (size_t i = 0; i < len; i++) {
            if (!is_digit(s[i]) || v > 1000) {
                return cron_fail(err, fi, "'%s' is not a number", shown);
            }
            v = v * 10 + (unsigned)(s[i] - '0');
        }
        if (v < f->lo || v > f->hi) {
            return cron_fail(err, fi, "%u is out of range %u-%u", v, f->lo, f->hi);
        }
        *out = v;
        return 0;
    }
    for (size_t i = 0; f->names != NULL && f->names[i] != NULL; i++) {
        if (len == 3 && strncasecmp(s, f->names[i], 3) == 0) {
            *out = f->lo + (unsigned)i;
            return 0;
        }
    }
    if (f->names != NULL) {
        return cron_fail(err, fi, "'%s' is not a number or a name (%s-%s)", shown, f->names[0],
                         fi == 4 ? "DEC" : "SAT");
    }
    return cron_fail(err, fi, "'%s' is not a number", shown);
}

/* One comma-separated item of field fi into *bits; *star when it is '*'
 * or '?' with no step but 1. */
static int cron_item(const char *s, size_t len, size_t fi, uint64_t *bits, bool *star,
                     fr_error *err)
{
    const cron_field *f = &cron_fields[fi];
    const char *slash = memchr(s, '/', len);
    size_t rlen = slash != NULL ? (size_t)(slash - s) : len;
    unsigned lo, hi, step = 1;
    bool any = false;
    int rv;
    if (slash != NULL) {
        const char *st = slash + 1;
        size_t slen = len - rlen - 1;
        if (slen == 0 || memchr(st, '/', slen) != NULL) {
            return cron_fail(err, fi, "a step is written a/n, */n or a-b/n");
        }
        step = 0;
        for (size_t i = 0; i < slen; i++) {
            if (!is_digit(st[i]) || step > 1000) {
                return cron_fail(err, fi, "the step after '/' must be a number");
            }
            step = step * 10 + (unsigned)(st[i] - '0');
        }
        if (step == 0) {
            return cron_fail(err, fi, "a step of 0 never advances");
        }
    }
    if (rlen == 1 && (s[0] == '*' || s[0] == '?')) {
        lo = f->lo;
        hi = fi == 5 ? 6 : f->hi; /* 7 is only another name for Sunday */
        any = step == 1;
    } else {
        const char *dash = memchr(s, '-', rlen);
        size_t alen = dash != NULL ? (size_t)(dash - s) : rlen;
        if ((rv = cron_value(s, alen, fi, &lo, err)) != 0) {
            return rv;
        }
        if (dash != NULL) {
            if ((rv = cron_value(dash + 1, rlen - alen - 1, fi, &hi, err)) != 0) {
                return rv;
            }
            if (hi < lo) {
                return cron_fail(err, fi, "the range %u-%u goes backwards", lo, hi);
            }
        } else {
            hi = slash != NULL ? f->hi : lo; /* "a/n" runs from a to the end */
        }
    }
    for (unsigned v = lo; v <= hi; v += step) {
        *bits |= 1ull << (fi == 5 && v == 7 ? 0 : v);
    }
    *star = *star || any;
    return 0;
}

static int cron_descriptor(const char *expr, fr_cron *out, fr_error *err)
{
    static const struct {
        const char *name, *expr;
    } desc[] = {
        {"@yearly", "0 0 0 1 1 *"}, {"@annually", "0 0 0 1 1 *"}, {"@monthly", "0 0 0 1 * *"},
        {"@weekly", "0 0 0 * * 0"}, {"@daily", "0 0 0 * * *"},    {"@midnight", "0 0 0 * * *"},
        {"@hourly", "0 0 * * * *"},
    };
    for (size_t i = 0; i < sizeof(desc) / sizeof(desc[0]); i++) {
        if (strcmp(expr, desc[i].name) == 0) {
            return fr_cron_parse(desc[i].expr, out, err);
        }
    }
    if (strncmp(expr, "@every", 6) == 0 && (expr[6] == ' ' || expr[6] == '\t')) {
        const char *d = expr + 7;
        while (*d == ' ' || *d == '\t') {
            d++;
        }
        int64_t ms;
        if (fr_parse_duration_ms(d, &ms) != 0 || ms <= 0) {
            return fr_error_set(err, FR_EINVAL, NULL,
                                "@every takes a positive duration such as 90s or 1h");
        }
        *out = (fr_cron){0};
        out->every_s = ms < 1000 ? 1 : ms / 1000;
        return 0;
    }
    char shown[MF_SHOW_MAX];
    return fr_error_set(err, FR_EINVAL, NULL,
                        "unknown descriptor '%s' (@yearly, @monthly, @weekly, @daily, @hourly or "
                        "@every <duration>)",
                        show(shown, sizeof(shown), expr));
}

/* True when some selected month has some selected day of the month: with
 * the day of the week left open, "30 2" would never fire. */
static bool cron_can_fire(const fr_cron *c)
{
    if (c->dom_any || !c->dow_any) {
        return true;
    }
    for (unsigned m = 1; m <= 12; m++) {
        if (!(c->mon >> m & 1)) {
            continue;
        }
        unsigned maxd = m == 2 ? 29 : days_in_month(2001, m);
        for (unsigned d = 1; d <= maxd; d++) {
            if (c->dom >> d & 1) {
                return true;
            }
        }
    }
    return false;
}

int fr_cron_parse(const char *expr, fr_cron *out, fr_error *err)
{
    if (expr == NULL || out == NULL) {
        return fr_error_set(err, FR_EINVAL, NULL, "no expression");
    }
    const char *p = expr;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (*p == '@') {
        return cron_descriptor(p, out, err);
    }
    const char *start[7];
    size_t len[7], n = 0;
    while (*p != '\0') {
        const char *b = p;
        while (*p != '\0' && *p != ' ' && *p != '\t') {
            p++;
        }
        if (n < 7) {
            start[n] = b;
            len[n] = (size_t)(p - b);
        }
        n++;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
    }
    if (n != 6) {
        return fr_error_set(err, FR_EINVAL, NULL,
                            "expected 6 fields (second minute hour day-of-month month "
                            "day-of-week), found %zu%s",
                            n, n == 5 ? ": put the seconds first, e.g. '0 */5 * * * *'" : "");
    }
    fr_cron c = {0};
    uint64_t bits[6] = {0};
    bool star[6] = {false};
    for (size_t fi = 0; fi < 6; fi++) {
        const char *s = start[fi], *end = s + len[fi];
        while (s <= end) {
            const char *comma = memchr(s, ',', (size_t)(end - s));
            const char *ie = comma != NULL ? comma : end;
            int rv = cron_item(s, (size_t)(ie - s), fi, &bits[fi], &star[fi], err);
            if (rv != 0) {
                return rv;
            }
            s = ie + 1;
        }
    }
    c.sec = bits[0];
    c.min = bits[1];
    c.hour = (uint32_t)bits[2];
    c.dom = (uint32_t)bits[3];
    c.mon = (uint16_t)bits[4];
    c.dow = (uint8_t)bits[5];
    c.dom_any = star[3];
    c.dow_any = star[5];
    if (!cron_can_fire(&c)) {
        return fr_error_set(err, FR_EINVAL, NULL,
                            "never fires: no selected month has the selected days");
    }
    *out = c;
    return 0;
}

static bool cron_day_ok(const fr_cron *c, int64_t y, unsigned m, unsigned d)
{
    bool dom = c->dom >> d & 1;
    bool dow = c->dow >> weekday(days_from_civil(y, m, d)) & 1;
    if (c->dom_any || c->dow_any) {
        return dom && dow;
    }
    return dom || dow;
}

/* The lowest bit of bits at or above from, or -1. */
static int bit_from(uint64_t bits, unsigned from)
{
    if (from >= 64) {
        return -1;
    }
    uint64_t b = bits >> from;
    return b == 0 ? -1 : (int)from + __builtin_ctzll(b);
}

int64_t fr_cron_next(const fr_cron *c, int64_t after_ns)
{
    if (c == NULL) {
        return -1;
    }
    int64_t t = floor_div(after_ns, NS_PER_SEC);
    if (c->every_s > 0) {
        int64_t v;
        if (__builtin_add_overflow(t, c->every_s, &t) ||
            __builtin_mul_overflow(t, NS_PER_SEC, &v)) {
            return -1;
        }
        return v;
    }
    if (c->sec == 0 || c->min == 0 || c->hour == 0 || c->mon == 0) {
        return -1;
    }
    t++;
    int64_t days = floor_div(t, SEC_PER_DAY);
    unsigned rem = (unsigned)(t - days * SEC_PER_DAY);
    int64_t y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    unsigned h = rem / 3600, mi = rem / 60 % 60, s = rem % 60;
    /* Any schedule that can fire does so within 8 years (29 February). */
    int64_t ylimit = y + 9;
    for (;;) {
        if (y > ylimit || y > 2262) {
            return -1;
        }
        if (!(c->mon >> mo & 1)) {
            d = 1, h = mi = s = 0;
            if (++mo > 12) {
                mo = 1, y++;
            }
            continue;
        }
        if (!cron_day_ok(c, y, mo, d)) {
            h = mi = s = 0;
            if (++d > days_in_month(y, mo)) {
                d = 1;
                if (++mo > 12) {
                    mo = 1, y++;
                }
            }
            continue;
        }
        int nh = bit_from(c->hour, h);
        if (nh < 0) {
            h = 24; /* past the last hour: the next day */
        } else if ((unsigned)nh != h) {
            h = (unsigned)nh, mi = s = 0;
        }
        if (h < 24) {
            int nm = bit_from(c->min, mi);
            if (nm < 0) {
                mi = 60;
            } else if ((unsigned)nm != mi) {
                mi = (unsigned)nm, s = 0;
            }
        }
        if (h < 24 && mi < 60) {
            int ns = bit_from(c->sec, s);
            if (ns >= 0) {
                s = (unsigned)ns;
                int64_t secs = days_from_civil(y, mo, d) * SEC_PER_DAY + h * 3600 + mi * 60 + s;
                int64_t v;
                if (__builtin_mul_overflow(secs, NS_PER_SEC, &v)) {
                    return -1;
                }
                return v;
            }
            /* No second left in this minute: the next minute. */
            s = 0;
            if (++mi < 60) {
                continue;
            }
        }
        if (mi >= 60) {
            mi = 0, s = 0;
            if (++h < 24) {
                continue;
            }
        }
        /* No hour left today. */
        h = mi = s = 0;
        if (++d > days_in_month(y, mo)) {
            d = 1;
            if (++mo > 12) {
                mo = 1, y++;
            }
        }
    }
}

/* ---- errors and key paths --------------------------------------------- */

typedef struct mf_path {
    char buf[MF_PATH_MAX];
    size_t len;
} mf_path;

static size_t path_add(mf_path *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static size_t path_add(mf_path *p, const char *fmt, ...)
{
    size_t old = p->len, room = sizeof(p->buf) - p->len;
    if (room > 1) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(p->buf + p->len, room, fmt, ap);
        va_end(ap);
        if (n > 0) {
            p->len += (size_t)n < room ? (size_t)n : room - 1;
        }
    }
    return old;
}

static size_t path_key(mf_path *p, const char *key)
{
    char shown[MF_SHOW_MAX];
    return path_add(p, "%s%s", p->len > 0 ? "." : "", show(shown, sizeof(shown), key));
}

static size_t path_index(mf_path *p, size_t i)
{
    return path_add(p, "[%zu]", i);
}

static void path_pop(mf_path *p, size_t old)
{
    p->len = old;
    p->buf[old] = '\0';
}

/* "source:line:col", or the path when the position is unknown; a long
 * source loses its head, not the position. */
static void where_format(char *buf, size_t cap, const char *source, fr_mf_pos pos, const char *path)
{
    if (source == NULL || pos.line == 0) {
        size_t n = strlen(path);
        snprintf(buf, cap, "%s", n < cap ? path : path + n - (cap - 1));
        return;
    }
    char at[32];
    snprintf(at, sizeof(at), ":%" PRIu32 ":%" PRIu32, pos.line, pos.col);
    size_t alen = strlen(at), slen = strlen(source), o = 0;
    if (slen + alen >= cap) {
        size_t keep = cap - 1 - alen - 3;
        memcpy(buf, "...", 3);
        o = 3;
        source += slen - keep;
        slen = keep;
    }
    memcpy(buf + o, source, slen);
    memcpy(buf + o + slen, at, alen + 1);
}

static int mf_verr(fr_error *err, int code, const char *source, fr_mf_pos pos, const char *path,
                   const char *fmt, va_list ap)
{
    char where[MF_WHERE_MAX], msg[256];
    if (err == NULL) {
        return code;
    }
    where_format(where, sizeof(where), source, pos, path != NULL ? path : "");
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (path != NULL && path[0] != '\0') {
        return fr_error_set(err, code, where, "%s: %s", path, msg);
    }
    return fr_error_set(err, code, where, "%s", msg);
}

int fr_manifest_error(const fr_manifest *m, fr_error *err, int code, fr_mf_pos pos,
                      const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rv = mf_verr(err, code, m != NULL ? m->source : NULL, pos, path, fmt, ap);
    va_end(ap);
    return rv;
}

/* Reads "<name>[<n>]" at the start of *p (then an optional '.'), for the
 * node segments of a path. */
static bool path_take_index(const char **p, const char *name, size_t *idx)
{
    size_t n = strlen(name);
    const char *s = *p;
    if (strncmp(s, name, n) != 0 || s[n] != '[') {
        return false;
    }
    char *end;
    unsigned long long v = strtoull(s + n + 1, &end, 10);
    if (end == s + n + 1 || *end != ']') {
        return false;
    }
    *idx = (size_t)v;
    s = end + 1;
    if (*s == '.') {
        s++;
    }
    *p = s;
    return true;
}

/* The deepest entry of map that the dotted rest of a path names: a key may
 * itself hold dots ("linger.ms"), so the longest key that matches wins. */
static void config_pos_of(const fr_mf_map *map, const char *rest, fr_mf_pos *pos)
{
    while (rest[0] != '\0') {
        const fr_mf_entry *best = NULL;
        size_t best_len = 0;
        for (size_t i = 0; i < map->n; i++) {
            size_t kl = strlen(map->v[i].key);
            if (kl > best_len && strncmp(rest, map->v[i].key, kl) == 0 &&
                (rest[kl] == '\0' || rest[kl] == '.')) {
                best = &map->v[i];
                best_len = kl;
            }
        }
        if (best == NULL) {
            return;
        }
        *pos = best->pos;
        rest += best_len;
        if (*rest == '.') {
            rest++;
        }
        if (best->value.type != FR_MF_MAP) {
            return;
        }
        map = &best->value.map;
    }
}

int fr_manifest_pos_of(const fr_manifest *m, const char *path, fr_mf_pos *pos)
{
    static const char prefix[] = "workflow.collect.";
    if (m == NULL || path == NULL || strncmp(path, prefix, sizeof(prefix) - 1) != 0) {
        return FR_ENOTFOUND;
    }
    const char *p = path + sizeof(prefix) - 1;
    const fr_mf_node *procs = m->collect.process, *pubs = m->collect.publish;
    size_t nprocs = m->collect.nprocess, npubs = m->collect.npublish;
    const fr_mf_node *node = NULL;
    size_t i;
    for (;;) {
        if (path_take_index(&p, "process", &i)) {
            if (i >= nprocs) {
                return FR_ENOTFOUND;
            }
            node = &procs[i];
            procs = node->process;
            nprocs = node->nprocess;
            pubs = node->publish;
            npubs = node->npublish;
        } else if (path_take_index(&p, "publish", &i)) {
            if (i >= npubs) {
                return FR_ENOTFOUND;
            }
            node = &pubs[i];
            procs = NULL;
            nprocs = npubs = 0;
        } else {
            break;
        }
    }
    if (node == NULL) {
        return FR_ENOTFOUND;
    }
    *pos = node->pos;
    if (strncmp(p, "config.", 7) == 0) {
        config_pos_of(&node->config, p + 7, pos);
    }
    return 0;
}

int fr_manifest_locate(const fr_manifest *m, fr_error *err)
{
    fr_mf_pos pos;
    if (err == NULL || fr_manifest_pos_of(m, err->where, &pos) != 0) {
        return err != NULL ? err->code : 0;
    }
    char path[sizeof(err->where)], msg[sizeof(err->message)];
    memcpy(path, err->where, sizeof(path));
    memcpy(msg, err->message, sizeof(msg));
    return fr_manifest_error(m, err, err->code, pos, path, "%s", msg);
}

/* ---- the tree --------------------------------------------------------- */

typedef enum mf_kind {
    MF_SCALAR,
    MF_MAP,
    MF_SEQ,
} mf_kind;

/* How a scalar's type is decided. */
typedef enum mf_style {
    MF_PLAIN,  /* unquoted text: resolved after $VAR expansion */
    MF_QUOTED, /* quoted or block text: a string */
    MF_TYPED,  /* from msgpack: `type` says, no expansion */
} mf_style;

typedef enum mf_tag {
    MF_TAG_NONE,
    MF_TAG_STR,
    MF_TAG_INT,
    MF_TAG_FLOAT,
    MF_TAG_BOOL,
    MF_TAG_NULL,
} mf_tag;

typedef struct mf_t mf_t;
struct mf_t {
    mf_kind kind;
    mf_style style;
    mf_tag tag;
    fr_mf_type type; /* MF_TYPED scalars */
    fr_mf_pos pos;
    char *text; /* scalars and map keys, NUL-terminated */
    size_t len;
    mf_t *kids; /* MAP: key, value, key, value...; SEQ: the items */
    size_t n;   /* MAP: pairs; SEQ: items */
};

typedef struct mf_ctx {
    const char *source; /* NULL: no positions (msgpack) */
    fr_error *err;
    mf_path path;
    size_t nodes, max_nodes;
    fr_ns_query *scratch; /* checks metric queries */
} mf_ctx;

static int mf_fail(mf_ctx *c, fr_mf_pos pos, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int mf_fail(mf_ctx *c, fr_mf_pos pos, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rv = mf_verr(c->err, code, c->source, pos, c->path.buf, fmt, ap);
    va_end(ap);
    return rv;
}

static void tree_free(mf_t *t)
{
    if (t == NULL) {
        return;
    }
    size_t nkids = t->kind == MF_MAP ? 2 * t->n : t->n;
    for (size_t i = 0; t->kids != NULL && i < nkids; i++) {
        tree_free(&t->kids[i]);
    }
    free(t->kids);
    free(t->text);
    *t = (mf_t){0};
}

typedef struct key_ref {
    const mf_t *k;
    size_t i;
} key_ref;

static int key_cmp(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    int c = strcmp(x->k->text, y->k->text);
    return c != 0 ? c : (x->i > y->i) - (x->i < y->i);
}

/* A key given twice in one map: the tree keeps both, this finds them. */
static int map_check_dups(mf_ctx *c, const mf_t *t)
{
    if (t->n < 2) {
        return 0;
    }
    key_ref *r = malloc(t->n * sizeof(*r));
    if (r == NULL) {
        return mf_fail(c, t->pos, FR_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < t->n; i++) {
        r[i] = (key_ref){&t->kids[2 * i], i};
    }
    qsort(r, t->n, sizeof(*r), key_cmp);
    size_t dup = SIZE_MAX, first = 0;
    for (size_t i = 1; i < t->n; i++) {
        if (strcmp(r[i - 1].k->text, r[i].k->text) == 0 && r[i].i < dup) {
            dup = r[i].i;
            first = r[i - 1].i;
        }
    }
    free(r);
    if (dup == SIZE_MAX) {
        return 0;
    }
    const mf_t *k = &t->kids[2 * dup], *f = &t->kids[2 * first];
    size_t mark = path_key(&c->path, k->text);
    int rv;
    if (f->pos.line != 0) {
        rv = mf_fail(c, k->pos, FR_EDUP,
                     "given twice (first at line %" PRIu32 ", column %" PRIu32 ")", f->pos.line,
                     f->pos.col);
    } else {
        rv = mf_fail(c, k->pos, FR_EDUP, "given twice");
    }
    path_pop(&c->path, mark);
    return rv;
}

static int tree_count(mf_ctx *c, fr_mf_pos pos)
{
    if (++c->nodes > c->max_nodes) {
        return mf_fail(c, pos, FR_ETOOBIG, "more than %u values in one manifest",
                       FR_MANIFEST_MAX_NODES);
    }
    return 0;
}

/* Grows t's children so that `need` more fit. */
static int kids_reserve(mf_ctx *c, mf_t *t, size_t *cap, size_t need)
{
    size_t used = t->kind == MF_MAP ? 2 * t->n : t->n;
    if (used + need <= *cap) {
        return 0;
    }
    size_t ncap = *cap != 0 ? *cap * 2 : 8;
    mf_t *k = realloc(t->kids, ncap * sizeof(*k));
    if (k == NULL) {
        return mf_fail(c, t->pos, FR_ENOMEM, "out of memory");
    }
    t->kids = k;
    *cap = ncap;
    return 0;
}

/* ---- YAML and JSON text into the tree --------------------------------- */

typedef struct mf_yaml {
    mf_ctx *c;
    yaml_parser_t parser;
    yaml_event_t ev;
    bool have_ev;
    const unsigned char *data;
    size_t len;
} mf_yaml;

static fr_mf_pos mark_pos(yaml_mark_t m)
{
    return (fr_mf_pos){(uint32_t)(m.line + 1), (uint32_t)(m.column + 1)};
}

static int yaml_syntax_error(mf_yaml *y)
{
    yaml_parser_t *p = &y->parser;
    const char *problem = p->problem != NULL ? p->problem : "syntax error";
    fr_mf_pos pos;
    if (p->error == YAML_MEMORY_ERROR) {
        return mf_fail(y->c, (fr_mf_pos){0, 0}, FR_ENOMEM, "out of memory while reading YAML");
    }
    if (p->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset, not a mark. */
        size_t line = 0, col = 0;
        for (size_t i = 0; i < p->problem_offset && i < y->len; i++) {
            if (y->data[i] == '\n') {
                line++;
                col = 0;
            } else {
                col++;
            }
        }
        pos = (fr_mf_pos){(uint32_t)line + 1, (uint32_t)col + 1};
        return mf_fail(y->c, pos, FR_ECONFIG, "invalid YAML: %s", problem);
    }
    pos = mark_pos(p->problem_mark);
    if (p->context != NULL) {
        return mf_fail(y->c, pos, FR_ECONFIG, "invalid YAML: %s (%s at %zu:%zu)", problem,
                       p->context, p->context_mark.line + 1, p->context_mark.column + 1);
    }
    return mf_fail(y->c, pos, FR_ECONFIG, "invalid YAML: %s", problem);
}

static int yaml_next(mf_yaml *y)
{
    if (y->have_ev) {
        yaml_event_delete(&y->ev);
        y->have_ev = false;
    }
    if (!yaml_parser_parse(&y->parser, &y->ev)) {
        return yaml_syntax_error(y);
    }
    y->have_ev = true;
    return 0;
}

#define YAML_TAG(x) "tag:yaml.org,2002:" x

static int yaml_tag(mf_yaml *y, const yaml_char_t *tag, const char *want, mf_tag *out)
{
    static const struct {
        const char *name;
        mf_tag tag;
    } scalar_tags[] = {
        {"!", MF_TAG_STR},
        {YAML_TAG("str"), MF_TAG_STR},
        {YAML_TAG("int"), MF_TAG_INT},
        {YAML_TAG("float"), MF_TAG_FLOAT},
        {YAML_TAG("bool"), MF_TAG_BOOL},
        {YAML_TAG("null"), MF_TAG_NULL},
    };
    char shown[MF_SHOW_MAX];
    *out = MF_TAG_NONE;
    if (tag == NULL) {
        return 0;
    }
    const char *t = (const char *)tag;
    if (want != NULL) {
        if (strcmp(t, want) == 0 || strcmp(t, "!") == 0) {
            return 0;
        }
    } else {
        for (size_t i = 0; i < sizeof(scalar_tags) / sizeof(scalar_tags[0]); i++) {
            if (strcmp(t, scalar_tags[i].name) == 0) {
                *out = scalar_tags[i].tag;
                return 0;
            }
        }
    }
    return mf_fail(y->c, mark_pos(y->ev.start_mark), FR_ETYPE, "unsupported tag '%s'",
                   show(shown, sizeof(shown), t));
}

static int yaml_node(mf_yaml *y, mf_t *out, int depth);

static int yaml_scalar(mf_yaml *y, mf_t *out, bool key)
{
    yaml_event_t *ev = &y->ev;
    fr_mf_pos pos = mark_pos(ev->start_mark);
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    int rv;
    if (strlen(v) != len) {
        return mf_fail(y->c, pos, FR_EINVAL, "%s contains a NUL character",
                       key ? "a key" : "the value");
    }
    if (len > MF_TEXT_MAX) {
        return mf_fail(y->c, pos, FR_ETOOBIG, "%s is longer than %u bytes",
                       key ? "a key" : "the value", MF_TEXT_MAX);
    }
    mf_tag tag;
    if ((rv = yaml_tag(y, ev->data.scalar.tag, NULL, &tag)) != 0) {
        return rv;
    }
    char *text = memdup0(v, len);
    if (text == NULL) {
        return mf_fail(y->c, pos, FR_ENOMEM, "out of memory");
    }
    *out = (mf_t){
        .kind = MF_SCALAR,
        .style = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? MF_PLAIN : MF_QUOTED,
        .tag = tag,
        .pos = pos,
        .text = text,
        .len = len,
    };
    return 0;
}

static int yaml_map(mf_yaml *y, mf_t *out, int depth)
{
    mf_ctx *c = y->c;
    size_t cap = 0;
    int rv;
    for (;;) {
        if ((rv = yaml_next(y)) != 0) {
            return rv;
        }
        yaml_event_t *ev = &y->ev;
        if (ev->type == YAML_MAPPING_END_EVENT) {
            return map_check_dups(c, out);
        }
        fr_mf_pos kpos = mark_pos(ev->start_mark);
        if (ev->type != YAML_SCALAR_EVENT) {
            return mf_fail(c, kpos, FR_ETYPE, "keys must be strings, found %s",
                           ev->type == YAML_ALIAS_EVENT ? "an alias" : "a mapping or list");
        }
        if ((rv = tree_count(c, kpos)) != 0 || (rv = kids_reserve(c, out, &cap, 2)) != 0) {
            return rv;
        }
        mf_t *k = &out->kids[2 * out->n];
        mf_t *v = k + 1;
        *k = (mf_t){0};
        *v = (mf_t){0};
        if ((rv = yaml_scalar(y, k, true)) != 0) {
            return rv;
        }
        out->n++; /* owned by out from here, freed with it on error */
        size_t mark = path_key(&c->path, k->text);
        if ((rv = yaml_next(y)) != 0 || (rv = yaml_node(y, v, depth)) != 0) {
            return rv;
        }
        path_pop(&c->path, mark);
    }
}

static int yaml_seq(mf_yaml *y, mf_t *out, int depth)
{
    mf_ctx *c = y->c;
    size_t cap = 0;
    int rv;
    for (;;) {
        if ((rv = yaml_next(y)) != 0) {
            return rv;
        }
        if (y->ev.type == YAML_SEQUENCE_END_EVENT) {
            return 0;
        }
        if ((rv = kids_reserve(c, out, &cap, 1)) != 0) {
            return rv;
        }
        mf_t *v = &out->kids[out->n];
        *v = (mf_t){0};
        out->n++;
        size_t mark = path_index(&c->path, out->n - 1);
        if ((rv = yaml_node(y, v, depth)) != 0) {
            return rv;
        }
        path_pop(&c->path, mark);
    }
}

/* Reads the node starting at the current event into out. */
static int yaml_node(mf_yaml *y, mf_t *out, int depth)
{
    mf_ctx *c = y->c;
    yaml_event_t *ev = &y->ev;
    fr_mf_pos pos = mark_pos(ev->start_mark);
    mf_tag tag;
    int rv;
    if ((rv = tree_count(c, pos)) != 0) {
        return rv;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return yaml_scalar(y, out, false);
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: {
        bool map = ev->type == YAML_MAPPING_START_EVENT;
        const yaml_char_t *t = map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
        if ((rv = yaml_tag(y, t, map ? YAML_TAG("map") : YAML_TAG("seq"), &tag)) != 0) {
            return rv;
        }
        if (depth >= FR_MANIFEST_MAX_DEPTH) {
            return mf_fail(c, pos, FR_EDEPTH, "nested deeper than %d levels",
                           FR_MANIFEST_MAX_DEPTH);
        }
        *out = (mf_t){.kind = map ? MF_MAP : MF_SEQ, .pos = pos};
        return map ? yaml_map(y, out, depth + 1) : yaml_seq(y, out, depth + 1);
    }
    case YAML_ALIAS_EVENT:
        /* Aliases would let a small manifest expand into a huge one. */
        return mf_fail(c, pos, FR_EINVAL, "aliases (*name) are not supported; write the value out");
    default:
        return mf_fail(c, pos, FR_ECONFIG, "invalid YAML: unexpected event");
    }
}

static int yaml_document(mf_yaml *y, mf_t *root)
{
    int rv;
    if ((rv = yaml_next(y)) != 0 || (rv = yaml_next(y)) != 0) { /* stream start, then */
        return rv;
    }
    if (y->ev.type == YAML_STREAM_END_EVENT) {
        return mf_fail(y->c, mark_pos(y->ev.start_mark), FR_EMISSING,
                       "the manifest is empty: it needs version, schedule and workflow");
    }
    if ((rv = yaml_next(y)) != 0 || (rv = yaml_node(y, root, 0)) != 0) {
        return rv;
    }
    if ((rv = yaml_next(y)) != 0 || (rv = yaml_next(y)) != 0) { /* document end, then */
        return rv;
    }
    if (y->ev.type != YAML_STREAM_END_EVENT) {
        return mf_fail(y->c, mark_pos(y->ev.start_mark), FR_EINVAL,
                       "a manifest holds one YAML document; found a second one");
    }
    return 0;
}

static int tree_from_text(mf_ctx *c, const void *data, size_t len, mf_t *root)
{
    mf_yaml y = {.c = c, .data = data, .len = len};
    if (!yaml_parser_initialize(&y.parser)) {
        return mf_fail(c, (fr_mf_pos){0, 0}, FR_ENOMEM, "out of memory");
    }
    yaml_parser_set_input_string(&y.parser, y.data, y.len);
    int rv = yaml_document(&y, root);
    if (y.have_ev) {
        yaml_event_delete(&y.ev);
    }
    yaml_parser_delete(&y.parser);
    return rv;
}

/* ---- scalars: types, canonical text, $VAR ----------------------------- */

static bool text_is_null(const char *s)
{
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

static int text_bool(const char *s)
{
    if (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 || strcmp(s, "TRUE") == 0) {
        return 1;
    }
    if (strcmp(s, "false") == 0 || strcmp(s, "False") == 0 || strcmp(s, "FALSE") == 0) {
        return 0;
    }
    return -1;
}

/* [-+]?[0-9]+ */
static bool text_is_int(const char *s)
{
    if (*s == '-' || *s == '+') {
        s++;
    }
    if (!is_digit(*s)) {
        return false;
    }
    while (is_digit(*s)) {
        s++;
    }
    return *s == '\0';
}

static bool text_is_special_float(const char *s, double *d)
{
    const char *p = s;
    double sign = 1;
    if (*p == '-' || *p == '+') {
        sign = *p == '-' ? -1 : 1;
        p++;
    }
    if (strcmp(p, ".inf") == 0 || strcmp(p, ".Inf") == 0 || strcmp(p, ".INF") == 0) {
        *d = sign * INFINITY;
        return true;
    }
    if (p == s && (strcmp(p, ".nan") == 0 || strcmp(p, ".NaN") == 0 || strcmp(p, ".NAN") == 0)) {
        *d = NAN;
        return true;
    }
    return false;
}

/* YAML 1.2 core: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool text_is_float(const char *s, double *d)
{
    if (text_is_special_float(s, d)) {
        return true;
    }
    const char *p = s;
    if (*p == '-' || *p == '+') {
        p++;
    }
    bool digits = false;
    while (is_digit(*p)) {
        p++, digits = true;
    }
    if (*p == '.') {
        p++;
        bool frac = false;
        while (is_digit(*p)) {
            p++, frac = true;
        }
        if (!digits && !frac) {
            return false;
        }
    } else if (!digits) {
        return false;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '-' || *p == '+') {
            p++;
        }
        if (!is_digit(*p)) {
            return false;
        }
        while (is_digit(*p)) {
            p++;
        }
    }
    if (*p != '\0') {
        return false;
    }
    *d = strtod(s, NULL);
    return true;
}

/* The shortest text that reads back as d, always looking like a float. */
static void float_text(double d, char *buf, size_t cap)
{
    if (isnan(d)) {
        snprintf(buf, cap, ".nan");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, cap, d > 0 ? ".inf" : "-.inf");
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, d);
        if (strtod(buf, NULL) == d) {
            break;
        }
    }
    if (strpbrk(buf, ".e") == NULL) {
        size_t n = strlen(buf);
        snprintf(buf + n, cap - n, ".0");
    }
}

/* Canonical text for an integer that fits int64 or uint64; false when it
 * does not fit (then it is a float). */
static bool int_text(const char *s, char *buf, size_t cap)
{
    int64_t v;
    int rv = fr_parse_int(s, &v);
    if (rv == 0) {
        snprintf(buf, cap, "%" PRId64, v);
        return true;
    }
    if (s[0] == '-') {
        return false;
    }
    errno = 0;
    unsigned long long u = strtoull(s[0] == '+' ? s + 1 : s, NULL, 10);
    if (errno != 0) {
        return false;
    }
    snprintf(buf, cap, "%llu", u);
    return true;
}

static bool name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static bool name_char(char c)
{
    return name_start(c) || is_digit(c);
}

typedef struct mf_buf {
    char *p;
    size_t len, cap;
} mf_buf;

static bool buf_put(mf_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap != 0 ? b->cap : 64;
        while (ncap < b->len + n + 1) {
            ncap *= 2;
        }
        char *p = realloc(b->p, ncap);
        if (p == NULL) {
            return false;
        }
        b->p = p;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return true;
}

/* t's text with $VAR, ${VAR} and $$ replaced, into *out (malloc'd). */
static int expand(mf_ctx *c, const mf_t *t, char **out)
{
    const char *s = t->text;
    if (strchr(s, '$') == NULL) {
        *out = memdup0(s, t->len);
        return *out != NULL ? 0 : mf_fail(c, t->pos, FR_ENOMEM, "out of memory");
    }
    mf_buf b = {0};
    char name[MF_SHOW_MAX], shown[MF_SHOW_MAX];
    int rv = 0;
    bool ok = buf_put(&b, "", 0);
    while (ok && *s != '\0') {
        const char *dollar = strchr(s, '$');
        if (dollar == NULL) {
            ok = buf_put(&b, s, strlen(s));
            break;
        }
        ok = buf_put(&b, s, (size_t)(dollar - s));
        const char *p = dollar + 1;
        const char *nb = NULL;
        size_t nlen = 0;
        if (*p == '$') {
            ok = ok && buf_put(&b, "$", 1);
            s = p + 1;
            continue;
        }
        if (*p == '{') {
            const char *close = strchr(p + 1, '}');
            if (close == NULL) {
                rv = mf_fail(c, t->pos, FR_EINVAL, "'${' has no closing '}' (write $$ for a $)");
                goto fail;
            }
            nb = p + 1;
            nlen = (size_t)(close - nb);
            bool good = nlen > 0 && name_start(nb[0]);
            for (size_t i = 1; good && i < nlen; i++) {
                good = name_char(nb[i]);
            }
            if (!good) {
                snprintf(name, sizeof(name), "%.*s", (int)(nlen < 40 ? nlen : 40), nb);
                rv = mf_fail(c, t->pos, FR_EINVAL, "'${%s}' is not a variable name",
                             show(shown, sizeof(shown), name));
                goto fail;
            }
            s = close + 1;
        } else if (name_start(*p)) {
            nb = p;
            while (name_char(p[nlen])) {
                nlen++;
            }
            s = p + nlen;
        } else {
            /* A lone '$' ("5$", "$ 1") is just a character. */
            ok = ok && buf_put(&b, "$", 1);
            s = p;
            continue;
        }
        char *var = memdup0(nb, nlen);
        if (var == NULL) {
            ok = false;
            break;
        }
        const char *val = getenv(var);
        if (val == NULL) {
            rv = mf_fail(c, t->pos, FR_EINVAL, "variable '%s' is not set",
                         show(shown, sizeof(shown), var));
            free(var);
            goto fail;
        }
        free(var);
        ok = ok && buf_put(&b, val, strlen(val));
        if (ok && b.len > MF_TEXT_MAX) {
            rv = mf_fail(c, t->pos, FR_ETOOBIG, "longer than %u bytes once variables are replaced",
                         MF_TEXT_MAX);
            goto fail;
        }
    }
    if (!ok) {
        rv = mf_fail(c, t->pos, FR_ENOMEM, "out of memory");
        goto fail;
    }
    *out = b.p;
    return 0;
fail:
    free(b.p);
    return rv;
}

static const char *type_name(fr_mf_type t)
{
    switch (t) {
    case FR_MF_NULL:
        return "null";
    case FR_MF_BOOL:
        return "a boolean";
    case FR_MF_INT:
        return "an integer";
    case FR_MF_FLOAT:
        return "a number";
    case FR_MF_STRING:
        return "a string";
    case FR_MF_MAP:
        return "a mapping";
    }
    return "a value";
}

static const char *node_name(const mf_t *t)
{
    return t->kind == MF_MAP ? "a mapping" : t->kind == MF_SEQ ? "a list" : "a scalar";
}

/* A scalar's text (expanded when it came from text) and type; text is
 * as written, not canonical. */
static int scalar_get(mf_ctx *c, const mf_t *t, char **text, fr_mf_type *type)
{
    char shown[MF_SHOW_MAX];
    double d;
    int rv;
    if (t->style == MF_TYPED) {
        *type = t->type;
        *text = memdup0(t->text, t->len);
        return *text != NULL ? 0 : mf_fail(c, t->pos, FR_ENOMEM, "out of memory");
    }
    if ((rv = expand(c, t, text)) != 0) {
        return rv;
    }
    const char *s = *text;
    const char *want = NULL;
    switch (t->tag) {
    case MF_TAG_STR:
        *type = FR_MF_STRING;
        return 0;
    case MF_TAG_INT:
        *type = FR_MF_INT;
        want = text_is_int(s) ? NULL : "an integer";
        break;
    case MF_TAG_FLOAT:
        *type = FR_MF_FLOAT;
        want = text_is_float(s, &d) ? NULL : "a number";
        break;
    case MF_TAG_BOOL:
        *type = FR_MF_BOOL;
        want = text_bool(s) >= 0 ? NULL : "true or false";
        break;
    case MF_TAG_NULL:
        *type = FR_MF_NULL;
        want = text_is_null(s) ? NULL : "null";
        break;
    case MF_TAG_NONE:
        if (t->style == MF_QUOTED) {
            *type = FR_MF_STRING;
        } else if (text_is_null(s)) {
            *type = FR_MF_NULL;
        } else if (text_bool(s) >= 0) {
            *type = FR_MF_BOOL;
        } else if (text_is_int(s)) {
            char buf[32];
            *type = int_text(s, buf, sizeof(buf)) ? FR_MF_INT : FR_MF_FLOAT;
        } else if (text_is_float(s, &d)) {
            *type = FR_MF_FLOAT;
        } else {
            *type = FR_MF_STRING;
        }
        return 0;
    }
    if (want != NULL) {
        rv = mf_fail(c, t->pos, FR_ETYPE, "tagged as %s but '%s' is not", want,
                     show(shown, sizeof(shown), s));
        free(*text);
        *text = NULL;
        return rv;
    }
    return 0;
}

/* A scalar as a config value: its type, and canonical text for a
 * non-string, so that a msgpack round trip gives the same text. */
static int scalar_value(mf_ctx *c, const mf_t *t, fr_mf_value *out)
{
    char *text;
    fr_mf_type type;
    int rv = scalar_get(c, t, &text, &type);
    if (rv != 0) {
        return rv;
    }
    char buf[40];
    const char *canon = NULL;
    double d = 0;
    switch (type) {
    case FR_MF_NULL:
        canon = "";
        break;
    case FR_MF_BOOL:
        canon = text_bool(text) == 1 ? "true" : "false";
        break;
    case FR_MF_INT:
    case FR_MF_FLOAT:
        if (type == FR_MF_INT && int_text(text, buf, sizeof(buf))) {
            canon = buf;
            break;
        }
        type = FR_MF_FLOAT; /* an integer too big for 64 bits is a float */
        if (!text_is_float(text, &d)) {
            d = strtod(text, NULL);
        }
        float_text(d, buf, sizeof(buf));
        canon = buf;
        break;
    default:
        break;
    }
    if (canon != NULL && strcmp(canon, text) != 0) {
        char *c2 = strdup(canon);
        free(text);
        if (c2 == NULL) {
            return mf_fail(c, t->pos, FR_ENOMEM, "out of memory");
        }
        text = c2;
    }
    *out = (fr_mf_value){.type = type, .text = text, .pos = t->pos};
    return 0;
}

/* ---- msgpack into the tree -------------------------------------------- */

static int node_tree(mf_ctx *c, const fr_node *n, mf_t *out, int depth);

static int node_scalar(mf_ctx *c, mf_t *out, fr_mf_type type, const char *s, size_t len)
{
    char *text = memdup0(s, len);
    if (text == NULL) {
        return mf_fail(c, (fr_mf_pos){0, 0}, FR_ENOMEM, "out of memory");
    }
    *out = (mf_t){.kind = MF_SCALAR, .style = MF_TYPED, .type = type, .text = text, .len = len};
    return 0;
}

static int node_tree(mf_ctx *c, const fr_node *n, mf_t *out, int depth)
{
    const fr_mf_pos none = {0, 0};
    char buf[40];
    int rv;
    if ((rv = tree_count(c, none)) != 0) {
        return rv;
    }
    switch (n->type) {
    case FR_NODE_NIL:
        return node_scalar(c, out, FR_MF_NULL, "", 0);
    case FR_NODE_BOOL:
        return node_scalar(c, out, FR_MF_BOOL, n->v.b ? "true" : "false", n->v.b ? 4 : 5);
    case FR_NODE_INT:
        snprintf(buf, sizeof(buf), "%" PRId64, n->v.i);
        return node_scalar(c, out, FR_MF_INT, buf, strlen(buf));
    case FR_NODE_UINT:
        snprintf(buf, sizeof(buf), "%" PRIu64, n->v.u);
        return node_scalar(c, out, FR_MF_INT, buf, strlen(buf));
    case FR_NODE_FLOAT:
        float_text(n->v.f, buf, sizeof(buf));
        return node_scalar(c, out, FR_MF_FLOAT, buf, strlen(buf));
    case FR_NODE_STR:
        if (memchr(n->v.str, '\0', n->len) != NULL) {
            return mf_fail(c, none, FR_EINVAL, "the value contains a NUL character");
        }
        return node_scalar(c, out, FR_MF_STRING, n->v.str, n->len);
    case FR_NODE_BIN:
        return mf_fail(c, none, FR_ETYPE, "binary data has no place in a manifest");
    case FR_NODE_ARRAY:
    case FR_NODE_MAP:
        break;
    }
    if (depth >= FR_MANIFEST_MAX_DEPTH) {
        return mf_fail(c, none, FR_EDEPTH, "nested deeper than %d levels", FR_MANIFEST_MAX_DEPTH);
    }
    bool map = n->type == FR_NODE_MAP;
    size_t nkids = map ? 2 * (size_t)n->len : n->len;
    *out = (mf_t){.kind = map ? MF_MAP : MF_SEQ};
    if (nkids == 0) {
        return 0;
    }
    out->kids = calloc(nkids, sizeof(mf_t));
    if (out->kids == NULL) {
        return mf_fail(c, none, FR_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < n->len; i++) {
        size_t mark;
        out->n++; /* zeroed children are safe to free */
        if (map) {
            const fr_node *k = &n->v.kv[2 * i];
            if ((rv = tree_count(c, none)) != 0) {
                return rv;
            }
            if (k->type != FR_NODE_STR || memchr(k->v.str, '\0', k->len) != NULL) {
                return mf_fail(c, none, FR_ETYPE, "keys must be strings without NUL characters");
            }
            if ((rv = node_scalar(c, &out->kids[2 * i], FR_MF_STRING, k->v.str, k->len)) != 0) {
                return rv;
            }
            mark = path_key(&c->path, out->kids[2 * i].text);
            rv = node_tree(c, &n->v.kv[2 * i + 1], &out->kids[2 * i + 1], depth + 1);
        } else {
            mark = path_index(&c->path, i);
            rv = node_tree(c, &n->v.arr[i], &out->kids[i], depth + 1);
        }
        if (rv != 0) {
            return rv;
        }
        path_pop(&c->path, mark);
    }
    return 0;
}

/* ---- the builder: tree -> fr_manifest --------------------------------- */

static bool tree_is_null(const mf_t *t)
{
    if (t->kind != MF_SCALAR) {
        return false;
    }
    if (t->style == MF_TYPED) {
        return t->type == FR_MF_NULL;
    }
    return t->style == MF_PLAIN && (t->tag == MF_TAG_NONE || t->tag == MF_TAG_NULL) &&
           text_is_null(t->text);
}

/* Edits between a and b (both short), a swap of neighbours counting one. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t rows[3][MF_SHOW_MAX + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    if (la > MF_SHOW_MAX || lb > MF_SHOW_MAX) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= lb; j++) {
        prev[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t best = prev[j - 1] + (a[i - 1] != b[j - 1]);
            if (prev[j] + 1 < best) {
                best = prev[j] + 1;
            }
            if (cur[j - 1] + 1 < best) {
                best = cur[j - 1] + 1;
            }
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < best) {
                best = prev2[j - 2] + 1;
            }
            cur[j] = best;
        }
        size_t *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

/* One known key of a mapping and what it was given. */
typedef struct mf_key {
    const char *name;
    const mf_t *val;
    const mf_t *key;
} mf_key;

/* Matches t's keys against the known ones; an unknown key is an error
 * that suggests the nearest known one. */
static int map_keys(mf_ctx *c, const mf_t *t, mf_key *ks, size_t nks)
{
    for (size_t i = 0; i < t->n; i++) {
        const mf_t *k = &t->kids[2 * i];
        size_t j = 0;
        while (j < nks && strcmp(ks[j].name, k->text) != 0) {
            j++;
        }
        if (j < nks) {
            ks[j].key = k;
            ks[j].val = &t->kids[2 * i + 1];
            continue;
        }
        const char *near = NULL;
        size_t best = 3;
        char list[256];
        size_t pos = 0;
        list[0] = '\0';
        for (j = 0; j < nks; j++) {
            size_t d = edit_distance(k->text, ks[j].name);
            if (d < best && 3 * d <= strlen(ks[j].name)) {
                best = d;
                near = ks[j].name;
            }
            pos += (size_t)snprintf(list + pos, sizeof(list) - pos, "%s%s", j > 0 ? ", " : "",
                                    ks[j].name);
            if (pos >= sizeof(list)) {
                pos = sizeof(list) - 1;
            }
        }
        size_t mark = path_key(&c->path, k->text);
        int rv;
        if (near != NULL) {
            rv = mf_fail(c, k->pos, FR_EUNKNOWN, "unknown key (did you mean '%s'?)", near);
        } else {
            rv = mf_fail(c, k->pos, FR_EUNKNOWN, "unknown key; expected one of %s", list);
        }
        path_pop(&c->path, mark);
        return rv;
    }
    return 0;
}

static int fail_missing(mf_ctx *c, const mf_t *map, const char *key, const char *hint)
{
    size_t mark = path_key(&c->path, key);
    int rv = mf_fail(c, map->pos, FR_EMISSING, "missing%s%s", hint[0] != '\0' ? "; " : "", hint);
    path_pop(&c->path, mark);
    return rv;
}

static int want_map(mf_ctx *c, const mf_t *t, const char *what)
{
    if (t->kind == MF_MAP) {
        return 0;
    }
    return mf_fail(c, t->pos, FR_ETYPE, "expected %s, found %s", what, node_name(t));
}

/* Any scalar's text, as written. */
static int b_text(mf_ctx *c, const mf_t *t, char **out)
{
    fr_mf_type type;
    if (t->kind != MF_SCALAR) {
        return mf_fail(c, t->pos, FR_ETYPE, "expected a string, found %s", node_name(t));
    }
    return scalar_get(c, t, out, &type);
}

static int b_int(mf_ctx *c, const mf_t *t, int64_t *out)
{
    char shown[MF_SHOW_MAX];
    char *text = NULL;
    fr_mf_type type;
    int rv;
    if (t->kind != MF_SCALAR) {
        return mf_fail(c, t->pos, FR_ETYPE, "expected an integer, found %s", node_name(t));
    }
    if ((rv = scalar_get(c, t, &text, &type)) != 0) {
        return rv;
    }
    if (type == FR_MF_NULL) {
        rv = mf_fail(c, t->pos, FR_ETYPE, "expected an integer, found null");
    } else if (type != FR_MF_INT) {
        rv = mf_fail(c, t->pos, FR_ETYPE, "expected an integer, found %s '%s'", type_name(type),
                     show(shown, sizeof(shown), text));
    } else if (fr_parse_int(text, out) != 0) {
        rv = mf_fail(c, t->pos, FR_ETOOBIG, "'%s' does not fit in 64 bits",
                     show(shown, sizeof(shown), text));
    }
    free(text);
    return rv;
}

static int b_duration(mf_ctx *c, const mf_t *t, int64_t *ms, char **keep)
{
    char shown[MF_SHOW_MAX];
    char *text = NULL;
    int rv = b_text(c, t, &text);
    if (rv != 0) {
        return rv;
    }
    if (fr_parse_duration_ms(text, ms) != 0) {
        rv = mf_fail(c, t->pos, FR_EINVAL,
                     "not a duration: '%s' (write a number and a unit: 250ms, 1s, 1m30s, 2h)",
                     show(shown, sizeof(shown), text));
    } else if (*ms <= 0) {
        rv = mf_fail(c, t->pos, FR_EINVAL, "must be > 0, got '%s'",
                     show(shown, sizeof(shown), text));
    }
    if (rv == 0 && keep != NULL) {
        *keep = text;
    } else {
        free(text);
    }
    return rv;
}

static int b_time(mf_ctx *c, const mf_t *t, int64_t *ns)
{
    char shown[MF_SHOW_MAX];
    char *text = NULL;
    int rv = b_text(c, t, &text);
    if (rv != 0) {
        return rv;
    }
    int prv = fr_parse_rfc3339(text, ns);
    if (prv == FR_ETOOBIG) {
        rv = mf_fail(c, t->pos, FR_EINVAL, "'%s' is outside the years 1678 to 2262",
                     show(shown, sizeof(shown), text));
    } else if (prv != 0) {
        rv = mf_fail(c, t->pos, FR_EINVAL,
                     "not an RFC 3339 time: '%s' (e.g. 2017-06-01T12:00:00Z or "
                     "2017-06-01T14:00:00.5+02:00)",
                     show(shown, sizeof(shown), text));
    }
    free(text);
    return rv;
}

typedef enum map_mode {
    MAP_NESTED,  /* scalars or nested maps (plugin config) */
    MAP_SCALARS, /* scalars only (collect config) */
    MAP_STRINGS, /* scalars taken as text (tags) */
} map_mode;

static int b_map(mf_ctx *c, const mf_t *t, fr_mf_map *out, map_mode mode);

static int b_entry_value(mf_ctx *c, const mf_t *v, fr_mf_value *out, map_mode mode)
{
    if (v->kind == MF_MAP) {
        if (mode != MAP_NESTED) {
            return mf_fail(c, v->pos, FR_ETYPE, "expected %s, found a mapping",
                           mode == MAP_STRINGS ? "a string" : "a scalar");
        }
        out->type = FR_MF_MAP;
        out->pos = v->pos;
        return b_map(c, v, &out->map, mode);
    }
    if (v->kind == MF_SEQ) {
        return mf_fail(c, v->pos, FR_ETYPE, "expected %s, found a list (lists are not supported)",
                       mode == MAP_STRINGS  ? "a string"
                       : mode == MAP_NESTED ? "a scalar or a mapping"
                                            : "a scalar");
    }
    if (mode != MAP_STRINGS) {
        return scalar_value(c, v, out);
    }
    if (tree_is_null(v)) {
        return mf_fail(c, v->pos, FR_ETYPE, "expected a string, found null");
    }
    *out = (fr_mf_value){.type = FR_MF_STRING, .pos = v->pos};
    return b_text(c, v, &out->text);
}

static int b_map(mf_ctx *c, const mf_t *t, fr_mf_map *out, map_mode mode)
{
    if (t->n == 0) {
        return 0;
    }
    out->v = calloc(t->n, sizeof(*out->v));
    if (out->v == NULL) {
        return mf_fail(c, t->pos, FR_ENOMEM, "out of memory");
    }
    out->n = t->n;
    for (size_t i = 0; i < t->n; i++) {
        const mf_t *k = &t->kids[2 * i];
        fr_mf_entry *e = &out->v[i];
        size_t mark = path_key(&c->path, k->text);
        int rv;
        if (k->len == 0) {
            rv = mf_fail(c, k->pos, FR_EINVAL, "an empty key");
        } else if ((e->key = strdup(k->text)) == NULL) {
            rv = mf_fail(c, k->pos, FR_ENOMEM, "out of memory");
        } else {
            e->pos = k->pos;
            rv = b_entry_value(c, &t->kids[2 * i + 1], &e->value, mode);
        }
        if (rv != 0) {
            return rv;
        }
        path_pop(&c->path, mark);
    }
    return 0;
}

static void map_free(fr_mf_map *m);

static void value_free(fr_mf_value *v)
{
    free(v->text);
    map_free(&v->map);
}

static void map_free(fr_mf_map *m)
{
    for (size_t i = 0; m->v != NULL && i < m->n; i++) {
        free(m->v[i].key);
        value_free(&m->v[i].value);
    }
    free(m->v);
    m->v = NULL;
    m->n = 0;
}

static void nodes_free(fr_mf_node *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++) {
        free(v[i].plugin_name);
        map_free(&v[i].config);
        nodes_free(v[i].process, v[i].nprocess);
        nodes_free(v[i].publish, v[i].npublish);
        free(v[i].path);
    }
    free(v);
}

static int b_nodes(mf_ctx *c, const mf_t *t, bool publish, fr_mf_node **out, size_t *n);

static int b_node(mf_ctx *c, const mf_t *t, bool publish, fr_mf_node *node)
{
    char shown[MF_SHOW_MAX];
    mf_key ks[] = {
        {"plugin_name", NULL, NULL}, {"plugin_version", NULL, NULL}, {"config", NULL, NULL},
        {"process", NULL, NULL},     {"publish", NULL, NULL},
    };
    size_t nks = sizeof(ks) / sizeof(ks[0]);
    int rv;
    node->pos = t->pos;
    if ((node->path = strdup(c->path.buf)) == NULL) {
        return mf_fail(c, t->pos, FR_ENOMEM, "out of memory");
    }
    if ((rv = want_map(c, t, "a mapping with plugin_name (and config)")) != 0) {
        return rv;
    }
    if ((rv = map_keys(c, t, ks, nks)) != 0) {
        return rv;
    }
    if (ks[0].val == NULL || tree_is_null(ks[0].val)) {
        return fail_missing(c, t, "plugin_name", "name the plugin, e.g. plugin_name: file");
    }
    size_t mark = path_key(&c->path, "plugin_name");
    if ((rv = b_text(c, ks[0].val, &node->plugin_name)) != 0) {
        return rv;
    }
    if (node->plugin_name[0] == '\0') {
        return mf_fail(c, ks[0].val->pos, FR_EINVAL, "must not be empty");
    }
    path_pop(&c->path, mark);
    if (ks[1].val != NULL && !tree_is_null(ks[1].val)) {
        mark = path_key(&c->path, "plugin_version");
        if ((rv = b_int(c, ks[1].val, &node->plugin_version)) != 0) {
            return rv;
        }
        if (node->plugin_version < 0) {
            return mf_fail(c, ks[1].val->pos, FR_EINVAL, "must be >= 0 (0: any), got %" PRId64,
                           node->plugin_version);
        }
        path_pop(&c->path, mark);
    }
    if (ks[2].val != NULL && !tree_is_null(ks[2].val)) {
        mark = path_key(&c->path, "config");
        if ((rv = want_map(c, ks[2].val, "a mapping of config keys")) != 0 ||
            (rv = b_map(c, ks[2].val, &node->config, MAP_NESTED)) != 0) {
            return rv;
        }
        path_pop(&c->path, mark);
    }
    for (size_t i = 3; i < 5; i++) {
        if (ks[i].val == NULL) {
            continue;
        }
        mark = path_key(&c->path, ks[i].name);
        if (publish) {
            return mf_fail(c, ks[i].key->pos, FR_EINVAL,
                           "a publish node ends its chain: it has no %s (plugin '%s')", ks[i].name,
                           show(shown, sizeof(shown), node->plugin_name));
        }
        rv = i == 3 ? b_nodes(c, ks[i].val, false, &node->process, &node->nprocess)
                    : b_nodes(c, ks[i].val, true, &node->publish, &node->npublish);
        if (rv != 0) {
            return rv;
        }
        path_pop(&c->path, mark);
    }
    return 0;
}

static int b_nodes(mf_ctx *c, const mf_t *t, bool publish, fr_mf_node **out, size_t *n)
{
    if (tree_is_null(t)) {
        return 0;
    }
    if (t->kind != MF_SEQ) {
        return mf_fail(c, t->pos, FR_ETYPE,
                       "expected a list of plugins (- plugin_name: ...), found %s", node_name(t));
    }
    if (t->n == 0) {
        return 0;
    }
    *out = calloc(t->n, sizeof(**out));
    if (*out == NULL) {
        return mf_fail(c, t->pos, FR_ENOMEM, "out of memory");
    }
    *n = t->n;
    for (size_t i = 0; i < t->n; i++) {
        size_t mark = path_index(&c->path, i);
        int rv = b_node(c, &t->kids[i], publish, &(*out)[i]);
        if (rv != 0) {
            return rv;
        }
        path_pop(&c->path, mark);
    }
    return 0;
}

/* A namespace prefix for config and tags: "/" or concrete elements. */
static const char *prefix_problem(const char *p)
{
    if (p[0] != '/') {
        return "a namespace prefix starts with '/'";
    }
    if (strcmp(p, "/") == 0) {
        return NULL;
    }
    for (const char *s = p; *s != '\0'; s++) {
        if (*s == '/' && (s[1] == '/' || s[1] == '\0')) {
            return "a namespace prefix has no empty elements";
        }
        if (*s == '*' || *s == '(' || *s == ')' || *s == ';') {
            return "a namespace prefix names elements exactly (no '*' or tuples)";
        }
    }
    return NULL;
}

/* config or tags: namespace prefix -> map. */
static int b_prefixed(mf_ctx *c, const mf_t *t, fr_mf_map *out, map_mode inner)
{
    int rv;
    if (tree_is_null(t)) {
        return 0;
    }
    if ((rv = want_map(c, t, "a mapping of namespace prefixes")) != 0) {
        return rv;
    }
    if (t->n == 0) {
        return 0;
    }
    out->v = calloc(t->n, sizeof(*out->v));
    if (out->v == NULL) {
        return mf_fail(c, t->pos, FR_ENOMEM, "out of memory");
    }
    out->n = t->n;
    for (size_t i = 0; i < t->n; i++) {
        const mf_t *k = &t->kids[2 * i], *v = &t->kids[2 * i + 1];
        fr_mf_entry *e = &out->v[i];
        size_t mark = path_key(&c->path, k->text);
        const char *why = prefix_problem(k->text);
        if (why != NULL) {
            return mf_fail(c, k->pos, FR_EINVAL, "%s", why);
        }
        if ((e->key = strdup(k->text)) == NULL) {
            return mf_fail(c, k->pos, FR_ENOMEM, "out of memory");
        }
        e->pos = k->pos;
        e->value = (fr_mf_value){.type = FR_MF_MAP, .pos = v->pos};
        if (!tree_is_null(v)) {
            if ((rv = want_map(c, v,
                               inner == MAP_STRINGS ? "a mapping of tag names to values"
                                                    : "a mapping of config keys")) != 0 ||
                (rv = b_map(c, v, &e->value.map, inner)) != 0) {
                return rv;
            }
        }
        path_pop(&c->path, mark);
    }
    return 0;
}

static int b_metrics(mf_ctx *c, const mf_t *t, fr_mf_map *out)
{
    char shown[MF_SHOW_MAX];
    int rv;
    if ((rv = want_map(c, t, "a mapping of namespaces (/intel/...: {})")) != 0) {
        return rv;
    }
    if (t->n == 0) {
        return mf_fail(c, t->pos, FR_EMISSING, "no metrics: name at least one namespace");
    }
    out->v = calloc(t->n, sizeof(*out->v));
    if (out->v == NULL) {
        return mf_fail(c, t->pos, FR_ENOMEM, "out of memory");
    }
    out->n = t->n;
    for (size_t i = 0; i < t->n; i++) {
        const mf_t *k = &t->kids[2 * i], *v = &t->kids[2 * i + 1];
        fr_mf_entry *e = &out->v[i];
        size_t mark = path_key(&c->path, k->text);
        fr_error nserr;
        fr_error_clear(&nserr);
        if (k->len > FR_MAX_NAMESPACE) {
            return mf_fail(c, k->pos, FR_ETOOBIG, "a namespace is at most %u bytes",
                           FR_MAX_NAMESPACE);
        }
        if ((rv = fr_ns_query_add(c->scratch, k->text, &nserr)) != 0) {
            if (rv == FR_ENOMEM) {
                return mf_fail(c, k->pos, rv, "out of memory");
            }
            return mf_fail(c, k->pos, rv, "not a namespace query: %s", nserr.message);
        }
        if ((e->key = strdup(k->text)) == NULL) {
            return mf_fail(c, k->pos, FR_ENOMEM, "out of memory");
        }
        e->pos = k->pos;
        e->value = (fr_mf_value){.type = FR_MF_MAP, .pos = v->pos};
        if (!tree_is_null(v)) {
            if (v->kind != MF_MAP) {
                return mf_fail(c, v->pos, FR_ETYPE, "expected {} or a mapping, found '%s'",
                               v->kind == MF_SCALAR ? show(shown, sizeof(shown), v->text)
                                                    : "a list");
            }
            if ((rv = b_map(c, v, &e->value.map, MAP_NESTED)) != 0) {
                return rv;
            }
        }
        path_pop(&c->path, mark);
    }
    return 0;
}

static int b_collect(mf_ctx *c, const mf_t *t, fr_mf_collect *out)
{
    mf_key ks[] = {
        {"metrics", NULL, NULL}, {"config", NULL, NULL},  {"tags", NULL, NULL},
        {"process", NULL, NULL}, {"publish", NULL, NULL},
    };
    int rv;
    if ((rv = want_map(c, t, "a mapping with metrics")) != 0 ||
        (rv = map_keys(c, t, ks, sizeof(ks) / sizeof(ks[0]))) != 0) {
        return rv;
    }
    if (ks[0].val == NULL) {
        return fail_missing(c, t, "metrics", "list the namespaces to collect");
    }
    size_t mark = path_key(&c->path, "metrics");
    if ((rv = b_metrics(c, ks[0].val, &out->metrics)) != 0) {
        return rv;
    }
    path_pop(&c->path, mark);
    if (ks[1].val != NULL) {
        mark = path_key(&c->path, "config");
        if ((rv = b_prefixed(c, ks[1].val, &out->config, MAP_SCALARS)) != 0) {
            return rv;
        }
        path_pop(&c->path, mark);
    }
    if (ks[2].val != NULL) {
        mark = path_key(&c->path, "tags");
        if ((rv = b_prefixed(c, ks[2].val, &out->tags, MAP_STRINGS)) != 0) {
            return rv;
        }
        path_pop(&c->path, mark);
    }
    if (ks[3].val != NULL) {
        mark = path_key(&c->path, "process");
        if ((rv = b_nodes(c, ks[3].val, false, &out->process, &out->nprocess)) != 0) {
            return rv;
        }
        path_pop(&c->path, mark);
    }
    if (ks[4].val != NULL) {
        mark = path_key(&c->path, "publish");
        if ((rv = b_nodes(c, ks[4].val, true, &out->publish, &out->npublish)) != 0) {
            return rv;
        }
        path_pop(&c->path, mark);
    }
    return 0;
}

static int b_workflow(mf_ctx *c, const mf_t *t, fr_mf_collect *out)
{
    mf_key ks[] = {{"collect", NULL, NULL}};
    int rv;
    if ((rv = want_map(c, t, "a mapping with collect")) != 0 || (rv = map_keys(c, t, ks, 1)) != 0) {
        return rv;
    }
    if (ks[0].val == NULL) {
        return fail_missing(c, t, "collect", "a workflow starts with collect: {metrics: ...}");
    }
    size_t mark = path_key(&c->path, "collect");
    if ((rv = b_collect(c, ks[0].val, out)) != 0) {
        return rv;
    }
    path_pop(&c->path, mark);
    return 0;
}

static int b_schedule(mf_ctx *c, const mf_t *t, fr_manifest *m)
{
    char shown[MF_SHOW_MAX];
    fr_schedule *s = &m->schedule;
    mf_key ks[] = {
        {"type", NULL, NULL},           {"interval", NULL, NULL}, {"start_timestamp", NULL, NULL},
        {"stop_timestamp", NULL, NULL}, {"count", NULL, NULL},
    };
    int rv;
    if ((rv = want_map(c, t, "a mapping with type and interval")) != 0 ||
        (rv = map_keys(c, t, ks, sizeof(ks) / sizeof(ks[0]))) != 0) {
        return rv;
    }
    if (ks[0].val == NULL || tree_is_null(ks[0].val)) {
        return fail_missing(c, t, "type", "one of simple, windowed, cron");
    }
    size_t mark = path_key(&c->path, "type");
    char *type = NULL;
    if ((rv = b_text(c, ks[0].val, &type)) != 0) {
        return rv;
    }
    m->pos.type = ks[0].val->pos;
    if (strcmp(type, "simple") == 0) {
        s->type = FR_SCHED_SIMPLE;
    } else if (strcmp(type, "windowed") == 0) {
        s->type = FR_SCHED_WINDOWED;
    } else if (strcmp(type, "cron") == 0) {
        s->type = FR_SCHED_CRON;
    } else {
        rv = mf_fail(c, ks[0].val->pos, FR_EINVAL,
                     strcmp(type, "streaming") == 0
                         ? "'%s' schedules are not supported; use simple, windowed or cron"
                         : "unknown type '%s'; one of simple, windowed, cron",
                     show(shown, sizeof(shown), type));
    }
    free(type);
    if (rv != 0) {
        return rv;
    }
    path_pop(&c->path, mark);

    if (ks[1].val == NULL || tree_is_null(ks[1].val)) {
        return fail_missing(c, t, "interval",
                            s->type == FR_SCHED_CRON
                                ? "give a cron expression with seconds, e.g. '0 */5 * * * *'"
                                : "give a duration, e.g. interval: 1s");
    }
    mark = path_key(&c->path, "interval");
    m->pos.interval = ks[1].val->pos;
    if (s->type == FR_SCHED_CRON) {
        fr_error cerr;
        fr_error_clear(&cerr);
        if ((rv = b_text(c, ks[1].val, &s->interval)) != 0) {
            return rv;
        }
        if (fr_cron_parse(s->interval, &s->cron, &cerr) != 0) {
            return mf_fail(c, ks[1].val->pos, FR_EINVAL, "not a cron expression: %s", cerr.message);
        }
    } else if ((rv = b_duration(c, ks[1].val, &s->interval_ms, &s->interval)) != 0) {
        return rv;
    }
    path_pop(&c->path, mark);

    const mf_t *start = ks[2].val, *stop = ks[3].val;
    if (start != NULL && !tree_is_null(start)) {
        mark = path_key(&c->path, "start_timestamp");
        if ((rv = b_time(c, start, &s->start_ns)) != 0) {
            return rv;
        }
        s->has_start = true;
        m->pos.start = start->pos;
        path_pop(&c->path, mark);
    }
    if (stop != NULL && !tree_is_null(stop)) {
        mark = path_key(&c->path, "stop_timestamp");
        if ((rv = b_time(c, stop, &s->stop_ns)) != 0) {
            return rv;
        }
        s->has_stop = true;
        m->pos.stop = stop->pos;
        if (s->has_start && s->stop_ns <= s->start_ns) {
            char a[40], b[40];
            fr_format_rfc3339(s->stop_ns, a, sizeof(a));
            fr_format_rfc3339(s->start_ns, b, sizeof(b));
            return mf_fail(c, stop->pos, FR_EINVAL, "%s is not after the start %s", a, b);
        }
        path_pop(&c->path, mark);
    }
    if (ks[4].val != NULL && !tree_is_null(ks[4].val)) {
        mark = path_key(&c->path, "count");
        if ((rv = b_int(c, ks[4].val, &s->count)) != 0) {
            return rv;
        }
        if (s->count < 0) {
            return mf_fail(c, ks[4].val->pos, FR_EINVAL, "must be >= 0 (0: no limit), got %" PRId64,
                           s->count);
        }
        m->pos.count = ks[4].val->pos;
        path_pop(&c->path, mark);
    }
    return 0;
}

static int b_manifest(mf_ctx *c, const mf_t *t, fr_manifest *m)
{
    mf_key ks[] = {
        {"version", NULL, NULL},  {"name", NULL, NULL},         {"deadline", NULL, NULL},
        {"schedule", NULL, NULL}, {"max-failures", NULL, NULL}, {"workflow", NULL, NULL},
    };
    int rv;
    if (t->kind != MF_MAP) {
        return mf_fail(c, t->pos, FR_ETYPE,
                       "a manifest is a mapping with version, schedule and workflow; found %s",
                       tree_is_null(t) ? "nothing" : node_name(t));
    }
    if ((rv = map_keys(c, t, ks, sizeof(ks) / sizeof(ks[0]))) != 0) {
        return rv;
    }
    if (ks[0].val == NULL || tree_is_null(ks[0].val)) {
        return fail_missing(c, t, "version", "write version: 1");
    }
    size_t mark = path_key(&c->path, "version");
    if ((rv = b_int(c, ks[0].val, &m->version)) != 0) {
        return rv;
    }
    if (m->version != 1) {
        return mf_fail(c, ks[0].val->pos, FR_EINVAL, "must be 1, got %" PRId64, m->version);
    }
    path_pop(&c->path, mark);

    if (ks[1].val != NULL && !tree_is_null(ks[1].val)) {
        mark = path_key(&c->path, "name");
        if ((rv = b_text(c, ks[1].val, &m->name)) != 0) {
            return rv;
        }
        if (m->name[0] == '\0') {
            return mf_fail(c, ks[1].val->pos, FR_EINVAL,
                           "must not be empty (leave it out instead)");
        }
        m->pos.name = ks[1].val->pos;
        path_pop(&c->path, mark);
    }
    if (ks[2].val != NULL && !tree_is_null(ks[2].val)) {
        mark = path_key(&c->path, "deadline");
        if ((rv = b_duration(c, ks[2].val, &m->deadline_ms, NULL)) != 0) {
            return rv;
        }
        m->pos.deadline = ks[2].val->pos;
        path_pop(&c->path, mark);
    }
    if (ks[3].val == NULL || tree_is_null(ks[3].val)) {
        return fail_missing(c, t, "schedule", "e.g. schedule: {type: simple, interval: 1s}");
    }
    mark = path_key(&c->path, "schedule");
    if ((rv = b_schedule(c, ks[3].val, m)) != 0) {
        return rv;
    }
    path_pop(&c->path, mark);
    if (ks[4].val != NULL && !tree_is_null(ks[4].val)) {
        mark = path_key(&c->path, "max-failures");
        if ((rv = b_int(c, ks[4].val, &m->max_failures)) != 0) {
            return rv;
        }
        if (m->max_failures < -1) {
            return mf_fail(c, ks[4].val->pos, FR_EINVAL,
                           "must be -1 (never disable) or >= 0, got %" PRId64, m->max_failures);
        }
        m->pos.max_failures = ks[4].val->pos;
        path_pop(&c->path, mark);
    }
    if (ks[5].val == NULL || tree_is_null(ks[5].val)) {
        return fail_missing(c, t, "workflow", "e.g. workflow: {collect: {metrics: ...}}");
    }
    mark = path_key(&c->path, "workflow");
    if ((rv = b_workflow(c, ks[5].val, &m->collect)) != 0) {
        return rv;
    }
    path_pop(&c->path, mark);
    return 0;
}

void fr_manifest_free(fr_manifest *m)
{
    if (m == NULL) {
        return;
    }
    free(m->name);
    free(m->schedule.interval);
    map_free(&m->collect.metrics);
    map_free(&m->collect.config);
    map_free(&m->collect.tags);
    nodes_free(m->collect.process, m->collect.nprocess);
    nodes_free(m->collect.publish, m->collect.npublish);
    free(m->source);
    free(m);
}

/* Builds *out from a tree; frees whatever it made on failure. */
static int build(mf_ctx *c, const mf_t *root, fr_manifest **out)
{
    fr_manifest *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return mf_fail(c, (fr_mf_pos){0, 0}, FR_ENOMEM, "out of memory");
    }
    m->deadline_ms = FR_MANIFEST_DEFAULT_DEADLINE_MS;
    m->max_failures = FR_MANIFEST_DEFAULT_MAX_FAILURES;
    int rv = 0;
    if (c->source != NULL && (m->source = strdup(c->source)) == NULL) {
        rv = mf_fail(c, (fr_mf_pos){0, 0}, FR_ENOMEM, "out of memory");
    }
    if (rv == 0 && (c->scratch = fr_ns_query_new()) == NULL) {
        rv = mf_fail(c, (fr_mf_pos){0, 0}, FR_ENOMEM, "out of memory");
    }
    if (rv == 0) {
        rv = b_manifest(c, root, m);
    }
    fr_ns_query_destroy(c->scratch);
    c->scratch = NULL;
    if (rv != 0) {
        fr_manifest_free(m);
        return rv;
    }
    *out = m;
    return 0;
}

int fr_manifest_parse(const void *text, size_t len, const char *source, fr_manifest **out,
                      fr_error *err)
{
    mf_ctx c = {
        .source = source != NULL ? source : "<memory>",
        .err = err,
        .max_nodes = FR_MANIFEST_MAX_NODES,
    };
    mf_t root = {0};
    fr_error_clear(err);
    if (out == NULL || (text == NULL && len > 0)) {
        return fr_error_set(err, FR_EINVAL, c.source, "no text or nowhere to put the manifest");
    }
    *out = NULL;
    if (len > FR_MANIFEST_MAX_BYTES) {
        return fr_error_set(err, FR_ETOOBIG, c.source, "a manifest is at most %u bytes, got %zu",
                            FR_MANIFEST_MAX_BYTES, len);
    }
    int rv = tree_from_text(&c, text != NULL ? text : "", len, &root);
    if (rv == 0) {
        c.path.len = 0;
        c.path.buf[0] = '\0';
        rv = build(&c, &root, out);
    }
    tree_free(&root);
    return rv;
}

int fr_manifest_unpack(const fr_node *n, fr_manifest **out, fr_error *err)
{
    /* Packing writes out the defaults (a few more values than the text had):
     * what parsed must always unpack. */
    mf_ctx c = {.source = NULL, .err = err, .max_nodes = FR_MANIFEST_MAX_NODES + 64};
    mf_t root = {0};
    fr_error_clear(err);
    if (out == NULL || n == NULL) {
        return fr_error_set(err, FR_EINVAL, NULL, "no document or nowhere to put the manifest");
    }
    *out = NULL;
    int rv = node_tree(&c, n, &root, 0);
    if (rv == 0) {
        c.path.len = 0;
        c.path.buf[0] = '\0';
        rv = build(&c, &root, out);
    }
    tree_free(&root);
    return rv;
}

int fr_manifest_load_file(const char *path, fr_manifest **out, fr_error *err)
{
    fr_error_clear(err);
    if (path == NULL || out == NULL) {
        return fr_error_set(err, FR_EINVAL, NULL, "no file");
    }
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return fr_error_set(err, FR_EIO, path, "cannot open the manifest: %s", strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        close(fd);
        return fr_error_set(err, FR_EIO, path, "cannot read the manifest: %s",
                            S_ISDIR(st.st_mode) ? "it is a directory" : strerror(e));
    }
    size_t cap = FR_MANIFEST_MAX_BYTES + 1, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL) {
        close(fd);
        return fr_error_set(err, FR_ENOMEM, path, "out of memory");
    }
    while (len < cap) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return fr_error_set(err, FR_EIO, path, "cannot read the manifest: %s", strerror(e));
        }
        if (r == 0) {
            break;
        }
        len += (size_t)r;
    }
    close(fd);
    int rv = fr_manifest_parse(buf, len, path, out, err);
    free(buf);
    return rv;
}

int fr_manifest_validate(const fr_manifest *m, int64_t now_ns, fr_error *err)
{
    fr_error_clear(err);
    if (m == NULL) {
        return fr_error_set(err, FR_EINVAL, NULL, "no manifest");
    }
    if (m->schedule.has_stop && m->schedule.stop_ns <= now_ns) {
        char a[40], b[40];
        fr_format_rfc3339(m->schedule.stop_ns, a, sizeof(a));
        fr_format_rfc3339(now_ns, b, sizeof(b));
        return fr_manifest_error(m, err, FR_EINVAL, m->pos.stop, "schedule.stop_timestamp",
                                 "%s is in the past (now %s)", a, b);
    }
    return 0;
}

const fr_mf_value *fr_mf_map_get(const fr_mf_map *map, const char *key)
{
    for (size_t i = 0; map != NULL && key != NULL && i < map->n; i++) {
        if (strcmp(map->v[i].key, key) == 0) {
            return &map->v[i].value;
        }
    }
    return NULL;
}

const char *fr_sched_type_name(fr_sched_type t)
{
    switch (t) {
    case FR_SCHED_SIMPLE:
        return "simple";
    case FR_SCHED_WINDOWED:
        return "windowed";
    case FR_SCHED_CRON:
        return "cron";
    }
    return "unknown";
}

/* ---- packing ---------------------------------------------------------- */

static int pk_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) == 0 && msgpack_pack_str_body(pk, s, n) == 0 ? 0 : FR_ENOMEM;
}

/* Milliseconds in Go's notation, read back by fr_parse_duration_ms. */
static void duration_text(int64_t ms, char *buf, size_t cap)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } parts[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t pos = 0;
    buf[0] = '\0';
    if (ms <= 0) {
        snprintf(buf, cap, "0s");
        return;
    }
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && pos < cap; i++) {
        int64_t q = ms / parts[i].ms;
        ms %= parts[i].ms;
        if (q != 0) {
            pos += (size_t)snprintf(buf + pos, cap - pos, "%" PRId64 "%s", q, parts[i].unit);
        }
    }
}

static int pk_map(msgpack_packer *pk, const fr_mf_map *m);

static int pk_value(msgpack_packer *pk, const fr_mf_value *v)
{
    const char *t = v->text != NULL ? v->text : "";
    double d;
    switch (v->type) {
    case FR_MF_NULL:
        return msgpack_pack_nil(pk) == 0 ? 0 : FR_ENOMEM;
    case FR_MF_BOOL:
        return (strcmp(t, "true") == 0 ? msgpack_pack_true(pk) : msgpack_pack_false(pk)) == 0
                   ? 0
                   : FR_ENOMEM;
    case FR_MF_INT: {
        int64_t i;
        if (fr_parse_int(t, &i) == 0) {
            return msgpack_pack_int64(pk, i) == 0 ? 0 : FR_ENOMEM;
        }
        if (t[0] != '-' && text_is_int(t)) {
            errno = 0;
            unsigned long long u = strtoull(t, NULL, 10);
            if (errno == 0) {
                return msgpack_pack_uint64(pk, u) == 0 ? 0 : FR_ENOMEM;
            }
        }
        return pk_str(pk, t); /* not an integer after all: keep the text */
    }
    case FR_MF_FLOAT:
        if (!text_is_float(t, &d)) {
            return pk_str(pk, t);
        }
        return msgpack_pack_double(pk, d) == 0 ? 0 : FR_ENOMEM;
    case FR_MF_STRING:
        return pk_str(pk, t);
    case FR_MF_MAP:
        return pk_map(pk, &v->map);
    }
    return pk_str(pk, t);
}

static int pk_map(msgpack_packer *pk, const fr_mf_map *m)
{
    if (msgpack_pack_map(pk, m->n) != 0) {
        return FR_ENOMEM;
    }
    for (size_t i = 0; i < m->n; i++) {
        int rv;
        if ((rv = pk_str(pk, m->v[i].key)) != 0 || (rv = pk_value(pk, &m->v[i].value)) != 0) {
            return rv;
        }
    }
    return 0;
}

static int pk_nodes(msgpack_packer *pk, const fr_mf_node *v, size_t n);

/* Only what differs from the defaults is written, as a person would. */
static int pk_node(msgpack_packer *pk, const fr_mf_node *nd)
{
    size_t n = 1 + (nd->plugin_version != 0) + (nd->config.n > 0) + (nd->nprocess > 0) +
               (nd->npublish > 0);
    if (msgpack_pack_map(pk, n) != 0 || pk_str(pk, "plugin_name") != 0 ||
        pk_str(pk, nd->plugin_name != NULL ? nd->plugin_name : "") != 0) {
        return FR_ENOMEM;
    }
    if (nd->plugin_version != 0 &&
        (pk_str(pk, "plugin_version") != 0 || msgpack_pack_int64(pk, nd->plugin_version) != 0)) {
        return FR_ENOMEM;
    }
    if (nd->config.n > 0 && (pk_str(pk, "config") != 0 || pk_map(pk, &nd->config) != 0)) {
        return FR_ENOMEM;
    }
    if (nd->nprocess > 0 &&
        (pk_str(pk, "process") != 0 || pk_nodes(pk, nd->process, nd->nprocess) != 0)) {
        return FR_ENOMEM;
    }
    if (nd->npublish > 0 &&
        (pk_str(pk, "publish") != 0 || pk_nodes(pk, nd->publish, nd->npublish) != 0)) {
        return FR_ENOMEM;
    }
    return 0;
}

static int pk_nodes(msgpack_packer *pk, const fr_mf_node *v, size_t n)
{
    if (msgpack_pack_array(pk, n) != 0) {
        return FR_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int rv = pk_node(pk, &v[i]);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

static int pk_schedule(msgpack_packer *pk, const fr_schedule *s)
{
    char buf[48];
    size_t n = 2 + s->has_start + s->has_stop + (s->count != 0);
    if (msgpack_pack_map(pk, n) != 0 || pk_str(pk, "type") != 0 ||
        pk_str(pk, fr_sched_type_name(s->type)) != 0 || pk_str(pk, "interval") != 0) {
        return FR_ENOMEM;
    }
    if (s->interval != NULL) {
        if (pk_str(pk, s->interval) != 0) {
            return FR_ENOMEM;
        }
    } else {
        duration_text(s->interval_ms, buf, sizeof(buf));
        if (pk_str(pk, buf) != 0) {
            return FR_ENOMEM;
        }
    }
    if (s->has_start) {
        fr_format_rfc3339(s->start_ns, buf, sizeof(buf));
        if (pk_str(pk, "start_timestamp") != 0 || pk_str(pk, buf) != 0) {
            return FR_ENOMEM;
        }
    }
    if (s->has_stop) {
        fr_format_rfc3339(s->stop_ns, buf, sizeof(buf));
        if (pk_str(pk, "stop_timestamp") != 0 || pk_str(pk, buf) != 0) {
            return FR_ENOMEM;
        }
    }
    if (s->count != 0 && (pk_str(pk, "count") != 0 || msgpack_pack_int64(pk, s->count) != 0)) {
        return FR_ENOMEM;
    }
    return 0;
}

int fr_manifest_pack(const fr_manifest *m, msgpack_packer *pk)
{
    char buf[48];
    if (m == NULL || pk == NULL) {
        return FR_EINVAL;
    }
    const fr_mf_collect *col = &m->collect;
    size_t n = 5 + (m->name != NULL);
    if (msgpack_pack_map(pk, n) != 0 || pk_str(pk, "version") != 0 ||
        msgpack_pack_int64(pk, m->version) != 0) {
        return FR_ENOMEM;
    }
    if (m->name != NULL && (pk_str(pk, "name") != 0 || pk_str(pk, m->name) != 0)) {
        return FR_ENOMEM;
    }
    duration_text(m->deadline_ms, buf, sizeof(buf));
    if (pk_str(pk, "deadline") != 0 || pk_str(pk, buf) != 0 || pk_str(pk, "schedule") != 0 ||
        pk_schedule(pk, &m->schedule) != 0) {
        return FR_ENOMEM;
    }
    if (pk_str(pk, "max-failures") != 0 || msgpack_pack_int64(pk, m->max_failures) != 0) {
        return FR_ENOMEM;
    }
    size_t nc =
        1 + (col->config.n > 0) + (col->tags.n > 0) + (col->nprocess > 0) + (col->npublish > 0);
    if (pk_str(pk, "workflow") != 0 || msgpack_pack_map(pk, 1) != 0 || pk_str(pk, "collect") != 0 ||
        msgpack_pack_map(pk, nc) != 0 || pk_str(pk, "metrics") != 0 ||
        pk_map(pk, &col->metrics) != 0) {
        return FR_ENOMEM;
    }
    if (col->config.n > 0 && (pk_str(pk, "config") != 0 || pk_map(pk, &col->config) != 0)) {
        return FR_ENOMEM;
    }
    if (col->tags.n > 0 && (pk_str(pk, "tags") != 0 || pk_map(pk, &col->tags) != 0)) {
        return FR_ENOMEM;
    }
    if (col->nprocess > 0 &&
        (pk_str(pk, "process") != 0 || pk_nodes(pk, col->process, col->nprocess) != 0)) {
        return FR_ENOMEM;
    }
    if (col->npublish > 0 &&
        (pk_str(pk, "publish") != 0 || pk_nodes(pk, col->publish, col->npublish) != 0)) {
        return FR_ENOMEM;
    }
    return 0;
}
