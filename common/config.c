/* The config loader: one field table per service, filled from defaults, one
 * YAML file, FRESCO_<SERVICE>_<KEY> variables and --key=value flags. */
#include "fresco/config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#ifndef FRESCO_VERSION
#define FRESCO_VERSION "unknown"
#endif

extern char **environ;

/* Limits that keep every name in a fixed buffer and every message readable. */
#define CFG_SERVICE_MAX 32
#define CFG_KEY_MAX     100
#define CFG_ENV_MAX     (sizeof("FRESCO__") + CFG_SERVICE_MAX + CFG_KEY_MAX)
#define CFG_PATH_MAX    256
#define CFG_SHOW_MAX    64
#define CFG_FILE_MAX    (16u << 20) /* anything bigger is not a config file */
#define CFG_WHERE_MAX   sizeof(((fr_error *)0)->where)

#define NS_PER_MS  1000000ull
#define NS_PER_SEC 1000000000ull

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static char to_upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

/* ---- parsers ---------------------------------------------------------- */

int fr_parse_int(const char *s, int64_t *out)
{
    if (s == NULL || out == NULL) {
        return FR_EINVAL;
    }
    const char *p = s;
    bool neg = false;
    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    }
    if (*p == '\0') {
        return FR_EINVAL;
    }
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t v = 0;
    bool big = false;
    /* Scan to the end even after an overflow so "99999999999999999999x"
     * is reported as not a number rather than as too big. */
    for (; *p != '\0'; p++) {
        if (!is_digit(*p)) {
            return FR_EINVAL;
        }
        unsigned d = (unsigned)(*p - '0');
        if (big || v > (limit - d) / 10) {
            big = true;
        } else {
            v = v * 10 + d;
        }
    }
    if (big) {
        return FR_ETOOBIG;
    }
    if (neg) {
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        *out = (int64_t)v;
    }
    return 0;
}

int fr_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    if (s == NULL || out == NULL) {
        return FR_EINVAL;
    }
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return FR_EINVAL;
}

/* A decimal number with an optional fraction: "12", "1.5", ".5", "1.".
 * The fraction keeps at most 18 digits (f < scale <= 1e18); later digits
 * are below any unit we multiply by. */
typedef struct cfg_number {
    uint64_t whole, frac, scale;
} cfg_number;

static int number_parse(const char **sp, uint64_t limit, cfg_number *n)
{
    const char *p = *sp;
    bool digits = false;
    *n = (cfg_number){0, 0, 1};
    for (; is_digit(*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (n->whole > (limit - d) / 10) {
            return FR_ETOOBIG;
        }
        n->whole = n->whole * 10 + d;
        digits = true;
    }
    if (*p == '.') {
        p++;
        for (; is_digit(*p); p++) {
            if (n->scale < 1000000000000000000ull) {
                n->frac = n->frac * 10 + (unsigned)(*p - '0');
                n->scale *= 10;
            }
            digits = true;
        }
    }
    if (!digits) {
        return FR_EINVAL;
    }
    *sp = p;
    return 0;
}

/* n * unit, limited to `limit`; the fraction is truncated. */
static int number_scale(const cfg_number *n, uint64_t unit, uint64_t limit, uint64_t *out)
{
    if (n->whole > limit / unit) {
        return FR_ETOOBIG;
    }
    uint64_t v = n->whole * unit;
    if (n->frac != 0) {
        /* frac < scale, so this is below unit and fits comfortably. */
        uint64_t part = (uint64_t)((double)n->frac * ((double)unit / (double)n->scale));
        if (part > limit - v) {
            return FR_ETOOBIG;
        }
        v += part;
    }
    *out = v;
    return 0;
}

static int duration_parse(const char *s, int64_t *ms, const char **why)
{
    /* Nanoseconds as Go counts them, so the limits match Go's (~292 years). */
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1},           {"us", 1000},      {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000},                                         /* U+03BC Greek mu */
        {"ms", NS_PER_MS},   {"s", NS_PER_SEC}, {"m", 60 * NS_PER_SEC}, {"h", 3600 * NS_PER_SEC},
    };
    const uint64_t limit = (uint64_t)INT64_MAX;
    const char *p = s;
    bool neg = false;

    *why = "expected a number followed by a unit, e.g. 250ms, 10s, 1m30s, 2h";
    if (s == NULL || ms == NULL) {
        return FR_EINVAL;
    }
    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    }
    if (strcmp(p, "0") == 0) {
        *ms = 0;
        return 0;
    }
    if (*p == '\0') {
        return FR_EINVAL;
    }
    uint64_t total = 0;
    while (*p != '\0') {
        cfg_number n;
        int rv = number_parse(&p, limit, &n);
        if (rv != 0) {
            if (rv == FR_ETOOBIG) {
                *why = "too long";
            }
            return rv;
        }
        const char *u = p;
        while (*p != '\0' && *p != '.' && !is_digit(*p)) {
            p++;
        }
        size_t ulen = (size_t)(p - u);
        if (ulen == 0) {
            *why = "missing unit: use ns, us, ms, s, m or h, e.g. 10s";
            return FR_EINVAL;
        }
        uint64_t unit = 0;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (strlen(units[i].name) == ulen && memcmp(units[i].name, u, ulen) == 0) {
                unit = units[i].ns;
            }
        }
        if (unit == 0) {
            *why = "unknown unit: use ns, us, ms, s, m or h";
            return FR_EINVAL;
        }
        uint64_t v;
        if (number_scale(&n, unit, limit, &v) != 0 || v > limit - total) {
            *why = "too long";
            return FR_ETOOBIG;
        }
        total += v;
    }
    /* Round up so that "1us" is not silently the same as "0s". */
    uint64_t m = total / NS_PER_MS + (total % NS_PER_MS != 0);
    *ms = neg ? -(int64_t)m : (int64_t)m;
    return 0;
}

int fr_parse_duration_ms(const char *s, int64_t *ms)
{
    const char *why;
    return duration_parse(s, ms, &why);
}

static int size_parse(const char *s, int64_t *bytes, const char **why)
{
    static const struct {
        const char *name;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1ull << 10},
        {"kib", 1ull << 10},
        {"kb", 1000ull},
        {"m", 1ull << 20},
        {"mib", 1ull << 20},
        {"mb", 1000000ull},
        {"g", 1ull << 30},
        {"gib", 1ull << 30},
        {"gb", 1000000000ull},
        {"t", 1ull << 40},
        {"tib", 1ull << 40},
        {"tb", 1000000000000ull},
        {"p", 1ull << 50},
        {"pib", 1ull << 50},
        {"pb", 1000000000000000ull},
    };
    const uint64_t limit = (uint64_t)INT64_MAX;
    const char *p = s;

    *why = "expected a number of bytes with an optional unit, e.g. 4096, 64KiB, 10MB";
    if (s == NULL || bytes == NULL) {
        return FR_EINVAL;
    }
    if (*p == '-') {
        *why = "a size cannot be negative";
        return FR_EINVAL;
    }
    cfg_number n;
    int rv = number_parse(&p, limit, &n);
    if (rv != 0) {
        if (rv == FR_ETOOBIG) {
            *why = "too big";
        }
        return rv;
    }
    while (*p == ' ') {
        p++;
    }
    uint64_t mult = 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(units[i].name, p) == 0) {
            mult = units[i].mult;
        }
    }
    if (mult == 0) {
        *why = "unknown unit: use B, KiB, MiB, GiB, TiB (or K, M, G, T), KB, MB, GB, TB";
        return FR_EINVAL;
    }
    if (mult == 1 && n.frac != 0) {
        *why = "a number of bytes must be whole";
        return FR_EINVAL;
    }
    uint64_t v;
    if (number_scale(&n, mult, limit, &v) != 0) {
        *why = "too big";
        return FR_ETOOBIG;
    }
    *bytes = (int64_t)v;
    return 0;
}

int fr_parse_size(const char *s, int64_t *bytes)
{
    const char *why;
    return size_parse(s, bytes, &why);
}

/* ---- formatting ------------------------------------------------------- */

/* Milliseconds written so that fr_parse_duration_ms reads them back. */
static void duration_format(char *buf, size_t cap, int64_t ms)
{
    uint64_t m = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    size_t pos = 0;
    if (ms < 0) {
        pos += (size_t)snprintf(buf, cap, "-");
    }
    if (m == 0) {
        snprintf(buf + pos, cap - pos, "0s");
        return;
    }
    static const struct {
        const char *unit;
        uint64_t ms;
    } parts[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && pos < cap; i++) {
        uint64_t q = m / parts[i].ms;
        m %= parts[i].ms;
        if (q != 0) {
            pos += (size_t)snprintf(buf + pos, cap - pos, "%" PRIu64 "%s", q, parts[i].unit);
        }
    }
}

static void size_format(char *buf, size_t cap, int64_t bytes)
{
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {{"TiB", 1ll << 40}, {"GiB", 1ll << 30}, {"MiB", 1ll << 20}, {"KiB", 1ll << 10}};
    for (size_t i = 0; bytes > 0 && i < sizeof(units) / sizeof(units[0]); i++) {
        if (bytes % units[i].mult == 0) {
            snprintf(buf, cap, "%" PRId64 "%s", bytes / units[i].mult, units[i].unit);
            return;
        }
    }
    snprintf(buf, cap, "%" PRId64, bytes);
}

static void value_format(char *buf, size_t cap, const fr_cfg_field *f, int64_t v)
{
    if (f->type == FR_CFG_DURATION) {
        duration_format(buf, cap, v);
    } else if (f->type == FR_CFG_SIZE) {
        size_format(buf, cap, v);
    } else {
        snprintf(buf, cap, "%" PRId64, v);
    }
}

/* A user's value made fit for a one-line message: cut at a character
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

/* "name:line:col" from libyaml's 0-based mark; a long name loses its head,
 * not the position. */
static void where_file(char *buf, size_t cap, const char *name, size_t line0, size_t col0)
{
    char pos[48];
    snprintf(pos, sizeof(pos), ":%zu:%zu", line0 + 1, col0 + 1);
    size_t plen = strlen(pos), nlen = strlen(name), at = 0;
    if (nlen + plen >= cap) {
        size_t keep = cap - 1 - plen - 3;
        memcpy(buf, "...", 3);
        at = 3;
        name += nlen - keep;
        nlen = keep;
    }
    memcpy(buf + at, name, nlen);
    memcpy(buf + at + nlen, pos, plen + 1);
}

static void where_path(char *buf, size_t cap, const char *name)
{
    size_t nlen = strlen(name);
    if (nlen < cap) {
        snprintf(buf, cap, "%s", name);
    } else {
        snprintf(buf, cap, "...%s", name + nlen - (cap - 4));
    }
}

/* "one of a, b, c" written into buf. */
static const char *choices_join(char *buf, size_t cap, const char *const *choices, const char *sep)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; choices != NULL && choices[i] != NULL && pos < cap; i++) {
        pos += (size_t)snprintf(buf + pos, cap - pos, "%s%s", i > 0 ? sep : "", choices[i]);
    }
    return buf;
}

/* What a field takes, for "expected ..., found a mapping". */
static const char *field_expects(char *buf, size_t cap, const fr_cfg_field *f)
{
    switch (f->type) {
    case FR_CFG_STRING:
        return "a string";
    case FR_CFG_INT:
        return "an integer";
    case FR_CFG_BOOL:
        return "true or false";
    case FR_CFG_DURATION:
        return "a duration such as 10s";
    case FR_CFG_SIZE:
        return "a size such as 64MiB";
    case FR_CFG_LIST:
        return "a list of strings";
    case FR_CFG_ENUM: {
        char list[160];
        snprintf(buf, cap, "one of %s", choices_join(list, sizeof(list), f->choices, ", "));
        return buf;
    }
    }
    return "a value";
}

/* ---- the table -------------------------------------------------------- */

static void *field_ptr(void *obj, const fr_cfg_field *f)
{
    return (char *)obj + f->offset;
}

static void strlist_clear(fr_strlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int strlist_push(fr_strlist *l, size_t *cap, const char *s, size_t len)
{
    if (l->n == *cap) {
        size_t ncap = *cap != 0 ? *cap * 2 : 4;
        if (ncap > SIZE_MAX / sizeof(char *)) {
            return FR_ENOMEM;
        }
        char **v = realloc(l->v, ncap * sizeof(char *));
        if (v == NULL) {
            return FR_ENOMEM;
        }
        l->v = v;
        *cap = ncap;
    }
    char *c = strndup(s, len);
    if (c == NULL) {
        return FR_ENOMEM;
    }
    l->v[l->n++] = c;
    return 0;
}

/* Items split on commas, spaces around them trimmed, empty ones skipped
 * (so "" is the empty list and a trailing comma is harmless). */
static int strlist_split(fr_strlist *l, const char *s)
{
    size_t cap = 0;
    while (*s != '\0') {
        const char *end = strchr(s, ',');
        if (end == NULL) {
            end = s + strlen(s);
        }
        const char *a = s;
        const char *b = end;
        while (a < b && (*a == ' ' || *a == '\t')) {
            a++;
        }
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) {
            b--;
        }
        if (b > a) {
            int rv = strlist_push(l, &cap, a, (size_t)(b - a));
            if (rv != 0) {
                strlist_clear(l);
                return rv;
            }
        }
        s = *end == ',' ? end + 1 : end;
    }
    return 0;
}

static void field_unset(void *obj, const fr_cfg_field *f)
{
    void *p = field_ptr(obj, f);
    switch (f->type) {
    case FR_CFG_STRING:
    case FR_CFG_ENUM:
        free(*(char **)p);
        *(char **)p = NULL;
        break;
    case FR_CFG_INT:
    case FR_CFG_DURATION:
    case FR_CFG_SIZE:
        *(int64_t *)p = 0;
        break;
    case FR_CFG_BOOL:
        *(bool *)p = false;
        break;
    case FR_CFG_LIST:
        strlist_clear(p);
        break;
    }
}

static int field_set_string(void *obj, const fr_cfg_field *f, const char *s)
{
    char *c = strdup(s);
    if (c == NULL) {
        return FR_ENOMEM;
    }
    char **p = field_ptr(obj, f);
    free(*p);
    *p = c;
    return 0;
}

static void field_set_list(void *obj, const fr_cfg_field *f, fr_strlist *l)
{
    fr_strlist *p = field_ptr(obj, f);
    strlist_clear(p);
    *p = *l;
    *l = (fr_strlist){0};
}

static int field_check_range(const fr_cfg_field *f, int64_t v, const char *where, fr_error *err)
{
    char a[48], b[48];
    if (f->min == 0 && f->max == 0) {
        return 0;
    }
    if (v < f->min) {
        value_format(a, sizeof(a), f, v);
        value_format(b, sizeof(b), f, f->min);
        return fr_error_set(err, FR_ECONFIG, where, "key '%s': %s is below the minimum %s", f->key,
                            a, b);
    }
    if (v > f->max) {
        value_format(a, sizeof(a), f, v);
        value_format(b, sizeof(b), f, f->max);
        return fr_error_set(err, FR_ECONFIG, where, "key '%s': %s is above the maximum %s", f->key,
                            a, b);
    }
    return 0;
}

/* Parses text as f's type into obj; on error obj keeps its old value. */
static int field_set_text(void *obj, const fr_cfg_field *f, const char *text, const char *where,
                          fr_error *err)
{
    char shown[CFG_SHOW_MAX];
    const char *why = NULL;
    int64_t v = 0;
    int rv;

    switch (f->type) {
    case FR_CFG_STRING:
        rv = field_set_string(obj, f, text);
        break;
    case FR_CFG_ENUM:
        for (size_t i = 0; f->choices != NULL && f->choices[i] != NULL; i++) {
            if (strcasecmp(text, f->choices[i]) == 0) {
                rv = field_set_string(obj, f, f->choices[i]);
                goto done;
            }
        }
        char list[160];
        return fr_error_set(err, FR_ECONFIG, where, "key '%s': '%s' is not one of %s", f->key,
                            show(shown, sizeof(shown), text),
                            choices_join(list, sizeof(list), f->choices, ", "));
    case FR_CFG_BOOL: {
        bool b;
        if (fr_parse_bool(text, &b) != 0) {
            return fr_error_set(err, FR_ECONFIG, where,
                                "key '%s': not a boolean (true/false, yes/no, on/off, 1/0): '%s'",
                                f->key, show(shown, sizeof(shown), text));
        }
        *(bool *)field_ptr(obj, f) = b;
        rv = 0;
        break;
    }
    case FR_CFG_INT:
        rv = fr_parse_int(text, &v);
        if (rv == FR_ETOOBIG) {
            return fr_error_set(err, FR_ECONFIG, where,
                                "key '%s': '%s' does not fit in a 64-bit integer", f->key,
                                show(shown, sizeof(shown), text));
        }
        if (rv != 0) {
            return fr_error_set(err, FR_ECONFIG, where, "key '%s': not an integer: '%s'", f->key,
                                show(shown, sizeof(shown), text));
        }
        goto number;
    case FR_CFG_DURATION:
        if (duration_parse(text, &v, &why) != 0) {
            return fr_error_set(err, FR_ECONFIG, where, "key '%s': not a duration: '%s' (%s)",
                                f->key, show(shown, sizeof(shown), text), why);
        }
        goto number;
    case FR_CFG_SIZE:
        if (size_parse(text, &v, &why) != 0) {
            return fr_error_set(err, FR_ECONFIG, where, "key '%s': not a size: '%s' (%s)", f->key,
                                show(shown, sizeof(shown), text), why);
        }
        goto number;
    case FR_CFG_LIST: {
        fr_strlist l = {0};
        rv = strlist_split(&l, text);
        if (rv == 0) {
            field_set_list(obj, f, &l);
        }
        break;
    }
    default:
        return fr_error_set(err, FR_EINVAL, where, "key '%s': unknown field type %d", f->key,
                            (int)f->type);
    }
done:
    if (rv == FR_ENOMEM) {
        return fr_error_set(err, rv, where, "key '%s': out of memory", f->key);
    }
    return rv;
number:
    if ((rv = field_check_range(f, v, where, err)) != 0) {
        return rv;
    }
    *(int64_t *)field_ptr(obj, f) = v;
    return 0;
}

static const fr_cfg_field *field_find_n(const fr_cfg_spec *spec, const char *key, size_t len)
{
    for (size_t i = 0; i < spec->nfields; i++) {
        const char *k = spec->fields[i].key;
        if (strncmp(k, key, len) == 0 && k[len] == '\0') {
            return &spec->fields[i];
        }
    }
    return NULL;
}

static const fr_cfg_field *field_find(const fr_cfg_spec *spec, const char *key)
{
    return field_find_n(spec, key, strlen(key));
}

/* True when path names a group of keys: "tls" for "tls.cert". */
static bool section_exists(const fr_cfg_spec *spec, const char *path)
{
    size_t len = strlen(path);
    for (size_t i = 0; i < spec->nfields; i++) {
        const char *k = spec->fields[i].key;
        if (strncmp(k, path, len) == 0 && k[len] == '.') {
            return true;
        }
    }
    return false;
}

/* "FRESCO_<SERVICE>_" plus name upper-cased, '.' and '-' turned into '_'. */
static void env_name(char *buf, size_t cap, const char *service, const char *name)
{
    size_t pos = (size_t)snprintf(buf, cap, "FRESCO_");
    for (int part = 0; part < 2; part++) {
        for (const char *s = part == 0 ? service : name; *s != '\0' && pos + 1 < cap; s++) {
            buf[pos++] = (*s == '.' || *s == '-') ? '_' : to_upper(*s);
        }
        if (part == 0 && pos + 1 < cap) {
            buf[pos++] = '_';
        }
    }
    buf[pos < cap ? pos : cap - 1] = '\0';
}

/* Edits between a and b, a swap of neighbours counting as one: "nmae"
 * is one edit from "name". */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t rows[3][CFG_ENV_MAX + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    if (lb > CFG_ENV_MAX) {
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

/* The key a typo most likely meant, or NULL. With env set, compares
 * environment names (got is the whole variable name). */
static const fr_cfg_field *field_suggest(const fr_cfg_spec *spec, const char *got, bool env)
{
    const fr_cfg_field *best = NULL;
    size_t bestd = SIZE_MAX;
    if (strlen(got) > CFG_PATH_MAX) {
        return NULL;
    }
    for (size_t i = 0; i < spec->nfields; i++) {
        char name[CFG_ENV_MAX];
        const char *cand = spec->fields[i].key;
        if (env) {
            env_name(name, sizeof(name), spec->service, cand);
            cand = name;
        }
        size_t d = edit_distance(got, cand);
        if (d < bestd && d <= 2 && 3 * d <= strlen(spec->fields[i].key)) {
            best = &spec->fields[i];
            bestd = d;
        }
    }
    return best;
}

static int error_unknown_key(const fr_cfg_spec *spec, const char *key, const char *where,
                             fr_error *err)
{
    char shown[CFG_SHOW_MAX];
    const fr_cfg_field *near = field_suggest(spec, key, false);
    if (near != NULL) {
        return fr_error_set(err, FR_EUNKNOWN, where, "key '%s': unknown key (did you mean '%s'?)",
                            show(shown, sizeof(shown), key), near->key);
    }
    return fr_error_set(err, FR_EUNKNOWN, where, "key '%s': unknown key",
                        show(shown, sizeof(shown), key));
}

static bool key_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || is_digit(c) || c == '.' || c == '-' || c == '_';
}

/* Catches table mistakes early: they would otherwise show up as confusing
 * errors blamed on the user's file. */
static int spec_check(const fr_cfg_spec *spec, fr_error *err)
{
    const char *where = "config table";
    if (spec == NULL || spec->service == NULL || spec->service[0] == '\0' ||
        strlen(spec->service) > CFG_SERVICE_MAX || (spec->fields == NULL && spec->nfields > 0)) {
        return fr_error_set(err, FR_EINVAL, where, "no service name or no fields");
    }
    char cfgenv[CFG_ENV_MAX];
    env_name(cfgenv, sizeof(cfgenv), spec->service, "config");
    for (size_t i = 0; i < spec->nfields; i++) {
        const fr_cfg_field *f = &spec->fields[i];
        const char *k = f->key;
        size_t len = k != NULL ? strlen(k) : 0;
        if (len == 0 || len > CFG_KEY_MAX) {
            return fr_error_set(err, FR_EINVAL, where, "field %zu: key empty or too long", i);
        }
        bool ok = (k[0] >= 'a' && k[0] <= 'z') && k[len - 1] != '.' && strstr(k, "..") == NULL;
        for (size_t j = 0; ok && j < len; j++) {
            ok = key_char_ok(k[j]);
        }
        if (!ok) {
            return fr_error_set(err, FR_EINVAL, where,
                                "key '%s': keys are lower-case letters, digits, '.', '-', '_'", k);
        }
        if (strcmp(k, "help") == 0 || strcmp(k, "version") == 0) {
            return fr_error_set(err, FR_EINVAL, where, "key '%s': reserved for the flag --%s", k,
                                k);
        }
        if ((unsigned)f->type > FR_CFG_ENUM) {
            return fr_error_set(err, FR_EINVAL, where, "key '%s': unknown type %d", k,
                                (int)f->type);
        }
        if (f->type == FR_CFG_ENUM && (f->choices == NULL || f->choices[0] == NULL)) {
            return fr_error_set(err, FR_EINVAL, where, "key '%s': an enum needs choices", k);
        }
        if (f->min > f->max) {
            return fr_error_set(err, FR_EINVAL, where, "key '%s': min is above max", k);
        }
        char ei[CFG_ENV_MAX];
        env_name(ei, sizeof(ei), spec->service, k);
        if (strcmp(ei, cfgenv) == 0) {
            return fr_error_set(err, FR_EINVAL, where, "key '%s': %s names the config file", k,
                                cfgenv);
        }
        for (size_t j = i + 1; j < spec->nfields; j++) {
            const char *o = spec->fields[j].key;
            char ej[CFG_ENV_MAX];
            if (o == NULL) {
                continue; /* reported when j's turn comes */
            }
            env_name(ej, sizeof(ej), spec->service, o);
            if (strcmp(ei, ej) == 0) {
                return fr_error_set(err, FR_EINVAL, where,
                                    "keys '%s' and '%s' share the variable %s", k, o, ei);
            }
            size_t lo = strlen(o);
            if ((lo < len && strncmp(k, o, lo) == 0 && k[lo] == '.') ||
                (len < lo && strncmp(o, k, len) == 0 && o[len] == '.')) {
                return fr_error_set(err, FR_EINVAL, where,
                                    "keys '%s' and '%s': one cannot be a group of the other", k, o);
            }
        }
    }
    return 0;
}

/* ---- YAML ------------------------------------------------------------- */

typedef struct cfg_mark {
    bool set;
    size_t line, col;
} cfg_mark;

/* A group key ("tls") met in one mapping, to catch it given twice there. */
typedef struct cfg_group {
    unsigned map;
    char *path;
    cfg_mark mark;
} cfg_group;

typedef struct cfg_yaml {
    const fr_cfg_spec *spec;
    void *obj;
    const char *name;
    const unsigned char *data;
    size_t len;
    fr_error *err;
    yaml_parser_t parser;
    yaml_event_t ev;
    bool have_ev;
    cfg_mark *seen; /* per field: where the file set it */
    cfg_group *groups;
    size_t ngroups, capgroups;
    unsigned nmaps;
} cfg_yaml;

static void yaml_where(cfg_yaml *y, char *buf, size_t cap, yaml_mark_t m)
{
    where_file(buf, cap, y->name, m.line, m.column);
}

static int yaml_syntax_error(cfg_yaml *y)
{
    yaml_parser_t *p = &y->parser;
    char where[CFG_WHERE_MAX];
    const char *problem = p->problem != NULL ? p->problem : "syntax error";

    if (p->error == YAML_MEMORY_ERROR) {
        where_path(where, sizeof(where), y->name);
        return fr_error_set(y->err, FR_ENOMEM, where, "out of memory while reading YAML");
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
        where_file(where, sizeof(where), y->name, line, col);
        return fr_error_set(y->err, FR_ECONFIG, where, "invalid YAML: %s", problem);
    }
    yaml_where(y, where, sizeof(where), p->problem_mark);
    if (p->context != NULL) {
        return fr_error_set(y->err, FR_ECONFIG, where, "invalid YAML: %s (%s at %zu:%zu)", problem,
                            p->context, p->context_mark.line + 1, p->context_mark.column + 1);
    }
    return fr_error_set(y->err, FR_ECONFIG, where, "invalid YAML: %s", problem);
}

static int yaml_next(cfg_yaml *y)
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

static const char *yaml_found(yaml_event_type_t t)
{
    switch (t) {
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    case YAML_SEQUENCE_START_EVENT:
        return "a sequence";
    case YAML_SCALAR_EVENT:
        return "a scalar";
    case YAML_ALIAS_EVENT:
        return "an alias";
    default:
        return "something else";
    }
}

/* `key:`, `key: ~` and `key: null` unquoted; "~" quoted is a string. */
static bool yaml_is_null(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    const char *tag = (const char *)ev->data.scalar.tag;
    if (tag != NULL && strcmp(tag, YAML_NULL_TAG) == 0) {
        return true;
    }
    if (tag != NULL || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        return false;
    }
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* Aliases would let a small file expand into a huge one, and a config file
 * has no need of them. */
static int yaml_error_alias(cfg_yaml *y, const char *key)
{
    char where[CFG_WHERE_MAX], shown[CFG_SHOW_MAX];
    yaml_where(y, where, sizeof(where), y->ev.start_mark);
    return fr_error_set(y->err, FR_ECONFIG, where,
                        "key '%s': aliases (*name) are not supported; write the value out",
                        show(shown, sizeof(shown), key));
}

static int yaml_error_nul(cfg_yaml *y, const char *key)
{
    char where[CFG_WHERE_MAX], shown[CFG_SHOW_MAX];
    yaml_where(y, where, sizeof(where), y->ev.start_mark);
    return fr_error_set(y->err, FR_ECONFIG, where, "key '%s': contains a NUL character",
                        show(shown, sizeof(shown), key));
}

static bool yaml_scalar_has_nul(const yaml_event_t *ev)
{
    return strlen((const char *)ev->data.scalar.value) != ev->data.scalar.length;
}

static int yaml_list(cfg_yaml *y, const fr_cfg_field *f)
{
    fr_strlist l = {0};
    size_t cap = 0;
    int rv;
    for (;;) {
        if ((rv = yaml_next(y)) != 0) {
            goto fail;
        }
        yaml_event_t *ev = &y->ev;
        if (ev->type == YAML_SEQUENCE_END_EVENT) {
            break;
        }
        if (ev->type == YAML_ALIAS_EVENT) {
            rv = yaml_error_alias(y, f->key);
            goto fail;
        }
        char where[CFG_WHERE_MAX];
        yaml_where(y, where, sizeof(where), ev->start_mark);
        if (ev->type != YAML_SCALAR_EVENT) {
            rv = fr_error_set(y->err, FR_ECONFIG, where,
                              "key '%s': expected a list of strings, item %zu is %s", f->key,
                              l.n + 1, yaml_found(ev->type));
            goto fail;
        }
        if (yaml_is_null(ev)) {
            rv = fr_error_set(y->err, FR_ECONFIG, where, "key '%s': item %zu is empty", f->key,
                              l.n + 1);
            goto fail;
        }
        if (yaml_scalar_has_nul(ev)) {
            rv = yaml_error_nul(y, f->key);
            goto fail;
        }
        rv = strlist_push(&l, &cap, (const char *)ev->data.scalar.value, ev->data.scalar.length);
        if (rv != 0) {
            rv = fr_error_set(y->err, rv, where, "key '%s': out of memory", f->key);
            goto fail;
        }
    }
    field_set_list(y->obj, f, &l);
    return 0;
fail:
    strlist_clear(&l);
    return rv;
}

/* A group key given twice in the same mapping; a leaf is tracked in seen. */
static int yaml_group_seen(cfg_yaml *y, unsigned map, const char *path, yaml_mark_t m)
{
    for (size_t i = 0; i < y->ngroups; i++) {
        cfg_group *g = &y->groups[i];
        if (g->map == map && strcmp(g->path, path) == 0) {
            char where[CFG_WHERE_MAX];
            yaml_where(y, where, sizeof(where), m);
            return fr_error_set(y->err, FR_ECONFIG, where,
                                "key '%s': given twice (first on line %zu, column %zu)", path,
                                g->mark.line + 1, g->mark.col + 1);
        }
    }
    if (y->ngroups == y->capgroups) {
        size_t ncap = y->capgroups != 0 ? y->capgroups * 2 : 8;
        cfg_group *g = realloc(y->groups, ncap * sizeof(*g));
        if (g == NULL) {
            return fr_error_set(y->err, FR_ENOMEM, y->name, "out of memory");
        }
        y->groups = g;
        y->capgroups = ncap;
    }
    char *c = strdup(path);
    if (c == NULL) {
        return fr_error_set(y->err, FR_ENOMEM, y->name, "out of memory");
    }
    y->groups[y->ngroups++] = (cfg_group){map, c, {true, m.line, m.column}};
    return 0;
}

static int yaml_leaf(cfg_yaml *y, const fr_cfg_field *f, yaml_mark_t keymark)
{
    char where[CFG_WHERE_MAX];
    cfg_mark *seen = &y->seen[f - y->spec->fields];
    if (seen->set) {
        yaml_where(y, where, sizeof(where), keymark);
        return fr_error_set(y->err, FR_ECONFIG, where,
                            "key '%s': given twice (first on line %zu, column %zu)", f->key,
                            seen->line + 1, seen->col + 1);
    }
    *seen = (cfg_mark){true, keymark.line, keymark.column};

    int rv = yaml_next(y);
    if (rv != 0) {
        return rv;
    }
    yaml_event_t *ev = &y->ev;
    yaml_where(y, where, sizeof(where), ev->start_mark);
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        if (yaml_is_null(ev)) {
            field_unset(y->obj, f);
            return 0;
        }
        if (yaml_scalar_has_nul(ev)) {
            return yaml_error_nul(y, f->key);
        }
        return field_set_text(y->obj, f, (const char *)ev->data.scalar.value, where, y->err);
    case YAML_SEQUENCE_START_EVENT:
        if (f->type == FR_CFG_LIST) {
            return yaml_list(y, f);
        }
        break;
    case YAML_ALIAS_EVENT:
        return yaml_error_alias(y, f->key);
    default:
        break;
    }
    char buf[192];
    return fr_error_set(y->err, FR_ECONFIG, where, "key '%s': expected %s, found %s", f->key,
                        field_expects(buf, sizeof(buf), f), yaml_found(ev->type));
}

/* Reads one mapping's keys, the MAPPING_START already consumed. Nesting is
 * bounded by the table: a mapping is only entered for a known group. */
static int yaml_mapping(cfg_yaml *y, const char *prefix, unsigned map)
{
    char path[CFG_PATH_MAX], shown[CFG_SHOW_MAX], where[CFG_WHERE_MAX];
    int rv;
    for (;;) {
        if ((rv = yaml_next(y)) != 0) {
            return rv;
        }
        yaml_event_t *ev = &y->ev;
        if (ev->type == YAML_MAPPING_END_EVENT) {
            return 0;
        }
        yaml_mark_t keymark = ev->start_mark;
        if (ev->type != YAML_SCALAR_EVENT) {
            yaml_where(y, where, sizeof(where), keymark);
            return fr_error_set(y->err, FR_ECONFIG, where,
                                "%s%s%skeys must be plain strings, found %s",
                                prefix[0] != '\0' ? "under key '" : "", prefix,
                                prefix[0] != '\0' ? "': " : "", yaml_found(ev->type));
        }
        if (yaml_scalar_has_nul(ev)) {
            yaml_where(y, where, sizeof(where), keymark);
            return fr_error_set(y->err, FR_EUNKNOWN, where, "a key contains a NUL character");
        }
        const char *key = (const char *)ev->data.scalar.value;
        int n = snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] != '\0' ? "." : "", key);
        yaml_where(y, where, sizeof(where), keymark);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            return fr_error_set(y->err, FR_EUNKNOWN, where, "key '%s': unknown key",
                                show(shown, sizeof(shown), path));
        }
        const fr_cfg_field *f = field_find(y->spec, path);
        if (f != NULL) {
            if ((rv = yaml_leaf(y, f, keymark)) != 0) {
                return rv;
            }
            continue;
        }
        if (!section_exists(y->spec, path)) {
            return error_unknown_key(y->spec, path, where, y->err);
        }
        if ((rv = yaml_group_seen(y, map, path, keymark)) != 0 || (rv = yaml_next(y)) != 0) {
            return rv;
        }
        ev = &y->ev;
        if (ev->type == YAML_MAPPING_START_EVENT) {
            if ((rv = yaml_mapping(y, path, ++y->nmaps)) != 0) {
                return rv;
            }
        } else if (ev->type == YAML_ALIAS_EVENT) {
            return yaml_error_alias(y, path);
        } else if (ev->type != YAML_SCALAR_EVENT || !yaml_is_null(ev)) {
            /* An empty group (`tls:`) is harmless; anything else is not. */
            yaml_where(y, where, sizeof(where), ev->start_mark);
            return fr_error_set(y->err, FR_ECONFIG, where,
                                "key '%s': expected a mapping of %s.* keys, found %s", path, path,
                                yaml_found(ev->type));
        }
    }
}

static int yaml_document(cfg_yaml *y)
{
    char where[CFG_WHERE_MAX];
    int rv;
    if ((rv = yaml_next(y)) != 0 || (rv = yaml_next(y)) != 0) { /* stream start, then */
        return rv;
    }
    if (y->ev.type == YAML_STREAM_END_EVENT) {
        return 0; /* empty, or only comments */
    }
    if ((rv = yaml_next(y)) != 0) { /* past the document start */
        return rv;
    }
    yaml_event_t *ev = &y->ev;
    if (ev->type == YAML_MAPPING_START_EVENT) {
        if ((rv = yaml_mapping(y, "", ++y->nmaps)) != 0) {
            return rv;
        }
    } else if (ev->type != YAML_SCALAR_EVENT || !yaml_is_null(ev)) {
        yaml_where(y, where, sizeof(where), ev->start_mark);
        return fr_error_set(y->err, FR_ECONFIG, where,
                            "the top level must be a mapping of keys (key: value), found %s",
                            yaml_found(ev->type));
    }
    if ((rv = yaml_next(y)) != 0 || (rv = yaml_next(y)) != 0) { /* document end, then */
        return rv;
    }
    if (y->ev.type != YAML_STREAM_END_EVENT) {
        yaml_where(y, where, sizeof(where), y->ev.start_mark);
        return fr_error_set(y->err, FR_ECONFIG, where,
                            "a config file holds one YAML document; found a second one");
    }
    return 0;
}

static int yaml_load(const fr_cfg_spec *spec, void *obj, const char *name, const void *data,
                     size_t len, fr_error *err)
{
    cfg_yaml y = {
        .spec = spec,
        .obj = obj,
        .name = name,
        .data = data != NULL ? data : (const void *)"",
        .len = data != NULL ? len : 0,
        .err = err,
    };
    int rv;
    y.seen = calloc(spec->nfields != 0 ? spec->nfields : 1, sizeof(*y.seen));
    if (y.seen == NULL) {
        return fr_error_set(err, FR_ENOMEM, name, "out of memory");
    }
    if (!yaml_parser_initialize(&y.parser)) {
        free(y.seen);
        return fr_error_set(err, FR_ENOMEM, name, "out of memory");
    }
    yaml_parser_set_input_string(&y.parser, y.data, y.len);
    rv = yaml_document(&y);
    if (y.have_ev) {
        yaml_event_delete(&y.ev);
    }
    yaml_parser_delete(&y.parser);
    for (size_t i = 0; i < y.ngroups; i++) {
        free(y.groups[i].path);
    }
    free(y.groups);
    free(y.seen);
    return rv;
}

int fr_config_load_yaml_buffer(const fr_cfg_spec *spec, void *obj, const char *name,
                               const void *data, size_t len, fr_error *err)
{
    int rv;
    fr_error_clear(err);
    if ((rv = spec_check(spec, err)) != 0) {
        return rv;
    }
    if (obj == NULL || (data == NULL && len != 0)) {
        return fr_error_set(err, FR_EINVAL, NULL, "no object to load into or no data");
    }
    char where[CFG_WHERE_MAX];
    where_path(where, sizeof(where), name != NULL ? name : "<memory>");
    return yaml_load(spec, obj, where, data, len, err);
}

/* Reads a whole file; errno-style failure in *errnum. */
static int file_read(const char *path, unsigned char **data, size_t *len, int *errnum)
{
    struct stat st;
    unsigned char *buf = NULL;
    size_t n = 0, cap = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *errnum = errno;
        return FR_EIO;
    }
    if (fstat(fd, &st) != 0) {
        *errnum = errno;
        close(fd);
        return FR_EIO;
    }
    if (S_ISDIR(st.st_mode)) {
        *errnum = EISDIR;
        close(fd);
        return FR_EIO;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= CFG_FILE_MAX) {
                *errnum = EFBIG;
                goto fail;
            }
            cap = cap != 0 ? cap * 2 : 4096;
            unsigned char *b = realloc(buf, cap);
            if (b == NULL) {
                *errnum = ENOMEM;
                goto fail;
            }
            buf = b;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            *errnum = errno;
            goto fail;
        }
        if (r == 0) {
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    *data = buf;
    *len = n;
    return 0;
fail:
    free(buf);
    close(fd);
    return *errnum == ENOMEM ? FR_ENOMEM : FR_EIO;
}

/* ---- environment and flags -------------------------------------------- */

typedef struct cfg_flag {
    const fr_cfg_field *field;
    const char *value;
    const char *name; /* as written after "--", up to '=' */
    size_t namelen;
} cfg_flag;

static const char *prog_name(char *buf, size_t cap, const fr_cfg_spec *spec)
{
    /* The command line is plain `fresco`, every service `fresco-<name>`. */
    if (strcmp(spec->service, "fresco") == 0) {
        snprintf(buf, cap, "fresco");
    } else {
        snprintf(buf, cap, "fresco-%s", spec->service);
    }
    return buf;
}

static int env_check_unknown(const fr_cfg_spec *spec, fr_error *err)
{
    char prefix[CFG_ENV_MAX], cfgenv[CFG_ENV_MAX], where[CFG_WHERE_MAX], prog[64];
    env_name(prefix, sizeof(prefix), spec->service, "");
    env_name(cfgenv, sizeof(cfgenv), spec->service, "config");
    size_t plen = strlen(prefix);
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, prefix, plen) != 0) {
            continue;
        }
        const char *eq = strchr(*e, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - *e) : strlen(*e);
        char name[CFG_PATH_MAX];
        snprintf(name, sizeof(name), "%.*s", (int)(nlen < sizeof(name) ? nlen : sizeof(name) - 1),
                 *e);
        if (strcmp(name, cfgenv) == 0) {
            continue;
        }
        bool known = false;
        for (size_t i = 0; i < spec->nfields && !known; i++) {
            char en[CFG_ENV_MAX];
            env_name(en, sizeof(en), spec->service, spec->fields[i].key);
            known = strcmp(en, name) == 0;
        }
        if (known) {
            continue;
        }
        snprintf(where, sizeof(where), "environment %.147s", name);
        prog_name(prog, sizeof(prog), spec);
        const fr_cfg_field *near = field_suggest(spec, name, true);
        if (near != NULL) {
            char en[CFG_ENV_MAX];
            env_name(en, sizeof(en), spec->service, near->key);
            return fr_error_set(err, FR_EUNKNOWN, where,
                                "unknown variable: %s has no such key (did you mean %s?)", prog,
                                en);
        }
        return fr_error_set(err, FR_EUNKNOWN, where, "unknown variable: %s has no such key", prog);
    }
    return 0;
}

static int env_apply(const fr_cfg_spec *spec, void *obj, fr_error *err)
{
    int rv = env_check_unknown(spec, err);
    for (size_t i = 0; rv == 0 && i < spec->nfields; i++) {
        const fr_cfg_field *f = &spec->fields[i];
        char name[CFG_ENV_MAX], where[CFG_WHERE_MAX];
        env_name(name, sizeof(name), spec->service, f->key);
        const char *v = getenv(name);
        if (v != NULL) {
            snprintf(where, sizeof(where), "environment %.147s", name);
            rv = field_set_text(obj, f, v, where, err);
        }
    }
    return rv;
}

static void flag_where(char *buf, size_t cap, const char *name, size_t len)
{
    char shown[CFG_SHOW_MAX];
    char tmp[CFG_PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%.*s", (int)(len < sizeof(tmp) ? len : sizeof(tmp) - 1), name);
    snprintf(buf, cap, "flag --%s", show(shown, sizeof(shown), tmp));
}

/* Splits argv into flags without applying them, so --help, --version and
 * --config act before any layer is loaded. Returns 1 after --help or
 * --version. */
static int args_scan(const fr_cfg_spec *spec, int argc, char **argv, cfg_flag *flags,
                     size_t *nflags, const char **config, fr_error *err)
{
    char where[CFG_WHERE_MAX], shown[CFG_SHOW_MAX], prog[64];
    prog_name(prog, sizeof(prog), spec);
    for (int i = 1; i < argc && argv[i] != NULL; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fr_config_usage(spec, stdout);
            fflush(stdout);
            return 1;
        }
        if (strcmp(a, "--version") == 0) {
            printf("%s %s\n", prog, FRESCO_VERSION);
            fflush(stdout);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0' || a[2] == '=') {
            snprintf(where, sizeof(where), "argument %d", i);
            return fr_error_set(err, FR_ECONFIG, where,
                                "unexpected argument '%s': %s takes only --key=value flags",
                                show(shown, sizeof(shown), a), prog);
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
        const char *value = eq != NULL ? eq + 1 : NULL;
        flag_where(where, sizeof(where), name, nlen);
        const fr_cfg_field *f = NULL;
        bool is_config = nlen == 6 && strncmp(name, "config", 6) == 0;
        if (!is_config && (f = field_find_n(spec, name, nlen)) == NULL) {
            char key[CFG_PATH_MAX];
            snprintf(key, sizeof(key), "%.*s", (int)(nlen < sizeof(key) ? nlen : sizeof(key) - 1),
                     name);
            return error_unknown_key(spec, key, where, err);
        }
        if (value == NULL && f != NULL && f->type == FR_CFG_BOOL) {
            value = "true";
        }
        if (value == NULL) {
            /* A following "--x" is the next flag, not this one's value. */
            if (i + 1 >= argc || argv[i + 1] == NULL || strncmp(argv[i + 1], "--", 2) == 0) {
                return fr_error_set(err, FR_ECONFIG, where, "%s%s%smissing value (write --%s=%s)",
                                    f != NULL ? "key '" : "", f != NULL ? f->key : "",
                                    f != NULL ? "': " : "", f != NULL ? f->key : "config",
                                    f != NULL ? "VALUE" : "FILE");
            }
            value = argv[++i];
        }
        if (is_config) {
            *config = value;
        } else {
            flags[(*nflags)++] = (cfg_flag){f, value, name, nlen};
        }
    }
    return 0;
}

static int defaults_apply(const fr_cfg_spec *spec, void *obj, fr_error *err)
{
    for (size_t i = 0; i < spec->nfields; i++) {
        const fr_cfg_field *f = &spec->fields[i];
        if (f->def == NULL) {
            field_unset(obj, f);
            continue;
        }
        int rv = field_set_text(obj, f, f->def, "config table default", err);
        if (rv == FR_ENOMEM) {
            return rv;
        }
        if (rv != 0) {
            /* A default that does not parse is a bug in the table, not in
             * anything the user wrote. */
            if (err != NULL) {
                err->code = FR_EINVAL;
            }
            return FR_EINVAL;
        }
    }
    return 0;
}

static int file_apply(const fr_cfg_spec *spec, void *obj, const char *path, const char *namedby,
                      fr_error *err)
{
    unsigned char *data = NULL;
    size_t len = 0;
    int errnum = 0;
    char where[CFG_WHERE_MAX];
    int rv = file_read(path, &data, &len, &errnum);
    if (rv != 0) {
        if (namedby == NULL && errnum == ENOENT) {
            return 0; /* the service's default path: no file means defaults */
        }
        where_path(where, sizeof(where), path);
        return fr_error_set(err, rv == FR_ENOMEM ? rv : FR_ECONFIG, where,
                            "cannot read the config file%s%s%s: %s",
                            namedby != NULL ? " (named by " : "", namedby != NULL ? namedby : "",
                            namedby != NULL ? ")" : "", strerror(errnum));
    }
    rv = yaml_load(spec, obj, path, data, len, err);
    free(data);
    return rv;
}

int fr_config_load(const fr_cfg_spec *spec, void *obj, const char *file, int argc, char **argv,
                   fr_error *err)
{
    int rv;
    fr_error_clear(err);
    if ((rv = spec_check(spec, err)) != 0) {
        return rv;
    }
    if (obj == NULL || argc < 0 || (argc > 0 && argv == NULL)) {
        return fr_error_set(err, FR_EINVAL, NULL, "no object to load into or bad argv");
    }
    cfg_flag *flags = calloc(argc > 0 ? (size_t)argc : 1, sizeof(*flags));
    size_t nflags = 0;
    const char *config = NULL;
    if (flags == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    if ((rv = args_scan(spec, argc, argv, flags, &nflags, &config, err)) != 0) {
        goto out;
    }
    if ((rv = defaults_apply(spec, obj, err)) != 0) {
        goto out;
    }

    char cfgenv[CFG_ENV_MAX];
    env_name(cfgenv, sizeof(cfgenv), spec->service, "config");
    const char *namedby = NULL;
    const char *fromenv = getenv(cfgenv);
    if (config != NULL) {
        file = config;
        namedby = "--config";
    } else if (fromenv != NULL) {
        file = fromenv;
        namedby = cfgenv;
    }
    /* An empty name asks for no file at all, not even the default one. */
    if (file != NULL && file[0] != '\0' && (rv = file_apply(spec, obj, file, namedby, err)) != 0) {
        goto out;
    }
    if ((rv = env_apply(spec, obj, err)) != 0) {
        goto out;
    }
    for (size_t i = 0; i < nflags; i++) {
        char where[CFG_WHERE_MAX];
        flag_where(where, sizeof(where), flags[i].name, flags[i].namelen);
        if ((rv = field_set_text(obj, flags[i].field, flags[i].value, where, err)) != 0) {
            goto out;
        }
    }
out:
    free(flags);
    return rv;
}

int fr_config_defaults(const fr_cfg_spec *spec, void *obj, fr_error *err)
{
    int rv;
    fr_error_clear(err);
    if ((rv = spec_check(spec, err)) != 0) {
        return rv;
    }
    if (obj == NULL) {
        return fr_error_set(err, FR_EINVAL, NULL, "no object to load into");
    }
    return defaults_apply(spec, obj, err);
}

int fr_config_set(const fr_cfg_spec *spec, void *obj, const char *key, const char *value,
                  const char *where, fr_error *err)
{
    int rv;
    fr_error_clear(err);
    if ((rv = spec_check(spec, err)) != 0) {
        return rv;
    }
    if (obj == NULL || key == NULL) {
        return fr_error_set(err, FR_EINVAL, where, "no object or no key");
    }
    const fr_cfg_field *f = field_find(spec, key);
    if (f == NULL) {
        return error_unknown_key(spec, key, where, err);
    }
    if (value == NULL) {
        field_unset(obj, f);
        return 0;
    }
    return field_set_text(obj, f, value, where, err);
}

void fr_config_free(const fr_cfg_spec *spec, void *obj)
{
    if (spec == NULL || obj == NULL || (spec->fields == NULL && spec->nfields > 0)) {
        return;
    }
    for (size_t i = 0; i < spec->nfields; i++) {
        if ((unsigned)spec->fields[i].type <= FR_CFG_ENUM) {
            field_unset(obj, &spec->fields[i]);
        }
    }
}

/* ---- help and reference ----------------------------------------------- */

static const char *type_name(const fr_cfg_field *f)
{
    switch (f->type) {
    case FR_CFG_STRING:
        return "string";
    case FR_CFG_INT:
        return "integer";
    case FR_CFG_BOOL:
        return "bool";
    case FR_CFG_DURATION:
        return "duration";
    case FR_CFG_SIZE:
        return "size";
    case FR_CFG_LIST:
        return "list";
    case FR_CFG_ENUM:
        return "enum";
    }
    return "?";
}

static bool field_bounded(const fr_cfg_field *f)
{
    return (f->type == FR_CFG_INT || f->type == FR_CFG_DURATION || f->type == FR_CFG_SIZE) &&
           !(f->min == 0 && f->max == 0);
}

static void bounds_format(char *buf, size_t cap, const fr_cfg_field *f)
{
    char lo[48], hi[48];
    value_format(lo, sizeof(lo), f, f->min);
    value_format(hi, sizeof(hi), f, f->max);
    snprintf(buf, cap, "%s..%s", lo, hi);
}

void fr_config_usage(const fr_cfg_spec *spec, FILE *f)
{
    char prog[64], env[CFG_ENV_MAX];
    if (spec == NULL || spec->service == NULL || f == NULL) {
        return;
    }
    prog_name(prog, sizeof(prog), spec);
    env_name(env, sizeof(env), spec->service, "");
    fprintf(f, "Usage: %s [--config FILE] [--KEY=VALUE ...]\n\n", prog);
    fprintf(f,
            "Each setting is taken from, last one winning: its default, the config file,\n"
            "the environment variable %s<KEY>, the flag --KEY.\n"
            "In variable names KEY is upper-cased with '.' and '-' written '_'.\n\n",
            env);
    env_name(env, sizeof(env), spec->service, "config");
    fprintf(f, "  --config FILE         the YAML config file (or %s)\n", env);
    fprintf(f, "  --help, -h            print this help and exit\n");
    fprintf(f, "  --version             print the version and exit\n\n");
    fprintf(f, "Settings:\n");
    for (size_t i = 0; spec->fields != NULL && i < spec->nfields; i++) {
        const fr_cfg_field *fl = &spec->fields[i];
        char arg[192], list[160];
        switch (fl->type) {
        case FR_CFG_BOOL:
            snprintf(arg, sizeof(arg), "--%s[=BOOL]", fl->key);
            break;
        case FR_CFG_ENUM:
            snprintf(arg, sizeof(arg), "--%s=%s", fl->key,
                     choices_join(list, sizeof(list), fl->choices, "|"));
            break;
        case FR_CFG_LIST:
            snprintf(arg, sizeof(arg), "--%s=A,B,...", fl->key);
            break;
        case FR_CFG_INT:
            snprintf(arg, sizeof(arg), "--%s=N", fl->key);
            break;
        default:
            snprintf(arg, sizeof(arg), "--%s=%s", fl->key,
                     fl->type == FR_CFG_STRING     ? "TEXT"
                     : fl->type == FR_CFG_DURATION ? "DURATION"
                                                   : "SIZE");
            break;
        }
        fprintf(f, "  %s\n", arg);
        fprintf(f, "      %s", fl->help != NULL ? fl->help : "");
        if (field_bounded(fl)) {
            char b[100];
            bounds_format(b, sizeof(b), fl);
            fprintf(f, " (%s)", b);
        }
        env_name(env, sizeof(env), spec->service, fl->key);
        if (fl->def != NULL) {
            fprintf(f, "\n      default %s%s%s, env %s\n", fl->def[0] == '\0' ? "\"" : "", fl->def,
                    fl->def[0] == '\0' ? "\"" : "", env);
        } else {
            fprintf(f, "\n      env %s\n", env);
        }
    }
}

/* A Markdown table cell: '|' would end the cell and a newline the row. */
static void md_cell(FILE *f, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        if (*s == '|') {
            fputs("\\|", f);
        } else if (*s == '\n' || *s == '\r') {
            fputc(' ', f);
        } else {
            fputc(*s, f);
        }
    }
}

void fr_config_markdown(const fr_cfg_spec *spec, FILE *f)
{
    if (spec == NULL || spec->service == NULL || f == NULL) {
        return;
    }
    fputs("| key | type | default | environment | description |\n", f);
    fputs("|---|---|---|---|---|\n", f);
    for (size_t i = 0; spec->fields != NULL && i < spec->nfields; i++) {
        const fr_cfg_field *fl = &spec->fields[i];
        char env[CFG_ENV_MAX];
        env_name(env, sizeof(env), spec->service, fl->key);
        fputs("| `", f);
        md_cell(f, fl->key);
        fputs("` | ", f);
        if (fl->type == FR_CFG_ENUM) {
            fputs("one of ", f);
            for (size_t c = 0; fl->choices != NULL && fl->choices[c] != NULL; c++) {
                fprintf(f, "%s`", c > 0 ? ", " : "");
                md_cell(f, fl->choices[c]);
                fputc('`', f);
            }
        } else {
            fputs(type_name(fl), f);
        }
        if (field_bounded(fl)) {
            char b[100];
            bounds_format(b, sizeof(b), fl);
            fprintf(f, " (%s)", b);
        }
        fputs(" | ", f);
        if (fl->def != NULL) {
            fputc('`', f);
            md_cell(f, fl->def[0] != '\0' ? fl->def : "\"\"");
            fputc('`', f);
        }
        fprintf(f, " | `%s` | ", env);
        md_cell(f, fl->help);
        fputs(" |\n", f);
    }
}
