/* file: metrics as JSON lines in a local file, with snap's file publisher's
 * fields (docs/plugins/file.md):
 *
 *   {"timestamp":"2016-07-25T09:27:59.795513984Z","namespace":"/intel/mock/foo",
 *    "data":72,"unit":"","tags":{"plugin_running_on":"my-machine"},"version":0}
 *
 * one object per metric per line (snap wrote one JSON array per publish
 * call). Tags are the batch's tags with the metric's own merged over them
 * (the metric's wins on the same key), keys sorted as Go writes a map.
 *
 * Cost: each write call formats every line of every batch into one buffer
 * and writes it with one write(2) per MiB; timestamps reuse the date of the
 * previous metric when the second is the same, and doubles with a short
 * decimal form are written without printf.
 *
 * Delivery is at least once: write returns 0 once the lines are written
 * with write(2) (and fdatasync'd with `fsync`); a batch the engine replays
 * after a crash or a failed write can appear twice. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fresco/log.h"
#include "fresco/pipeline.h"

#define FS_FLUSH    (1u << 20) /* bytes gathered before a write(2) */
#define FS_KEEP     (4u << 20) /* a buffer grown past this is freed after the call */
#define FS_LINE_FIX 192        /* a line's bytes besides its strings and tags */

/* ---- config ----------------------------------------------------------- */

typedef struct file_config {
    char *file;
    int64_t max_size;
    int64_t max_files;
    bool fsync;
} file_config;

static const fr_cfg_field file_policy[] = {
    {"file", FR_CFG_STRING, NULL, offsetof(file_config, file),
     "the file to append to (snap's key; required); created when missing", 0, 0, NULL},
    {"max_size", FR_CFG_SIZE, "0", offsetof(file_config, max_size),
     "rotate the file before it grows past this size (0: never)", 0, 0, NULL},
    {"max_files", FR_CFG_INT, "5", offsetof(file_config, max_files),
     "rotated files kept, as <file>.1 (newest) to <file>.N (0: none kept)", 0, 1000, NULL},
    {"fsync", FR_CFG_BOOL, "false", offsetof(file_config, fsync),
     "fdatasync the file before a write counts as done (survives power loss)", 0, 0, NULL},
};

/* ---- state ------------------------------------------------------------ */

typedef struct ftag {
    const char *k, *v;
    uint32_t kl, vl;
    uint32_t order; /* place in the input: a later tag replaces an earlier one */
} ftag;

typedef struct tagvec {
    ftag *v;
    size_t n, cap;
} tagvec;

typedef struct file_sink {
    const file_config *cfg;
    const char *id;
    int fd; /* -1 after a rotation that could not open the new file */
    uint64_t size;
    bool regular;      /* a regular file (a device or pipe is never rotated) */
    bool need_newline; /* the file ends inside a line (a crash, a failed write) */
    fr_buf out;
    tagvec btags, mtags;
    int64_t cached_sec;
    char cached_date[20]; /* "2016-07-25T09:27:59" */
    uint64_t lines, bytes, rotations, write_errors;
} file_sink;

/* ---- JSON ------------------------------------------------------------- */

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
    int a = e < 0 ? -e : e;
    if (e >= 0 && a < 10) {
        *p++ = '0';
    }
    char tmp[4];
    int k = 0;
    do {
        tmp[k++] = (char)('0' + a % 10);
        a /= 10;
    } while (a != 0);
    while (k > 0) {
        *p++ = tmp[--k];
    }
    return p;
}

/* The shortest of d's correctly rounded 17 digits, rounded to fewer, that
 * still reads back as d (fewer digits stop working at some count and never
 * work again below it). One printf and a strtod per count tried. */
static char *json_double_digits(char *p, double d)
{
    char e17[40];
    snprintf(e17, sizeof(e17), "%.16e", d); /* "-1.2345678901234567e+05" */
    const char *q = e17;
    bool neg = *q == '-';
    q += neg;
    char dig[17];
    dig[0] = q[0];
    memcpy(dig + 1, q + 2, 16);
    int e = atoi(q + 19);
    char best[17];
    int best_n = 17, best_e = e;
    memcpy(best, dig, 17);
    for (int n = 16; n >= 1; n--) {
        char t[17];
        int te = e;
        memcpy(t, dig, (size_t)n);
        if (dig[n] >= '5') {
            int i = n - 1;
            while (i >= 0 && t[i] == '9') {
                t[i--] = '0';
            }
            if (i >= 0) {
                t[i]++;
            } else {
                t[0] = '1';
                memset(t + 1, '0', (size_t)n - 1);
                te++;
            }
        }
        int m = n;
        while (m > 1 && t[m - 1] == '0') {
            m--;
        }
        char s[40];
        *json_decimal(s, neg, t, m, te) = '\0';
        if (strtod(s, NULL) != d) {
            break;
        }
        memcpy(best, t, (size_t)m);
        best_n = m;
        best_e = te;
    }
    while (best_n > 1 && best[best_n - 1] == '0') {
        best_n--;
    }
    return json_decimal(p, neg, best, best_n, best_e);
}

static const double pow10d[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
static const uint64_t pow10u[] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

/* The shortest decimal that reads back as d. NaN and infinities, which
 * JSON has no number for, are the strings "NaN", "+Inf" and "-Inf" (Go's
 * strconv spelling). */
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
         * decimal n·10^-k, so the check below is a true round trip */
        for (int k = 0; k <= 8; k++) {
            double v = a * pow10d[k];
            if (v >= 9007199254740992.0) {
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

/* "YYYY-MM-DDTHH:MM:SS" for a second since the epoch (UTC, proleptic
 * Gregorian calendar). */
static void civil_time(int64_t sec, char *out)
{
    int64_t days = sec / 86400, sod = sec % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1;
    int64_t mon = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (mon <= 2);
    int64_t f[6] = {year, mon, day, sod / 3600, sod / 60 % 60, sod % 60};
    /* the year is 1677..2262 for an int64 of ns */
    out[0] = (char)('0' + year / 1000 % 10);
    out[1] = (char)('0' + year / 100 % 10);
    out[2] = (char)('0' + year / 10 % 10);
    out[3] = (char)('0' + year % 10);
    static const char sep[] = "--T::";
    for (int k = 1; k < 6; k++) {
        out[3 * k + 1] = sep[k - 1];
        out[3 * k + 2] = (char)('0' + f[k] / 10);
        out[3 * k + 3] = (char)('0' + f[k] % 10);
    }
    out[19] = '\0';
}

/* RFC 3339 in UTC with nine fraction digits, quoted: 32 bytes. */
static char *json_time(file_sink *fs, char *p, int64_t ns)
{
    int64_t sec = ns / 1000000000, frac = ns % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        sec--;
    }
    if (sec != fs->cached_sec) {
        civil_time(sec, fs->cached_date);
        fs->cached_sec = sec;
    }
    *p++ = '"';
    memcpy(p, fs->cached_date, 19);
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

static int tag_cmp(const ftag *a, const ftag *b)
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
    const ftag *a = x, *b = y;
    int c = tag_cmp(a, b);
    return c != 0 ? c : a->order < b->order ? -1 : a->order > b->order;
}

/* tags sorted by key, one per key (the last given wins). Bytes their JSON
 * may take in *bound. */
static int tags_prepare(tagvec *tv, const fr_tag *tags, uint32_t n, size_t *bound)
{
    tv->n = 0;
    *bound = 0;
    if (n == 0) {
        return 0;
    }
    if (tv->cap < n) {
        ftag *nv = realloc(tv->v, n * sizeof(*nv));
        if (nv == NULL) {
            return FR_ENOMEM;
        }
        tv->v = nv;
        tv->cap = n;
    }
    bool sorted = true;
    for (uint32_t i = 0; i < n; i++) {
        const fr_tag *t = &tags[i];
        ftag *f = &tv->v[i];
        f->k = t->key;
        f->v = t->value;
        f->kl = t->key_len != 0 ? t->key_len : (uint32_t)strlen(t->key);
        f->vl = t->value_len != 0 ? t->value_len : (uint32_t)strlen(t->value);
        f->order = i;
        *bound += 6 * ((size_t)f->kl + f->vl) + 6;
        sorted = sorted && (i == 0 || tag_cmp(&tv->v[i - 1], f) < 0);
    }
    tv->n = n;
    if (sorted) {
        return 0;
    }
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) { /* stable */
            ftag x = tv->v[i];
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

static char *json_tag(char *p, const ftag *t, bool *first)
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
static char *json_tags(char *p, const tagvec *b, const tagvec *m)
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

/* ---- the file --------------------------------------------------------- */

static int file_open(file_sink *fs, fr_error *err)
{
    const char *path = fs->cfg->file;
    fs->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fs->fd < 0) {
        return fr_error_set(err, FR_EIO, "file", "cannot open '%s' for appending: %s", path,
                            strerror(errno));
    }
    struct stat sb;
    int st = fstat(fs->fd, &sb);
    int e = errno;
    if (st != 0 || !(S_ISREG(sb.st_mode) || S_ISCHR(sb.st_mode) || S_ISFIFO(sb.st_mode))) {
        close(fs->fd);
        fs->fd = -1;
        if (st != 0) {
            return fr_error_set(err, FR_EIO, "file", "cannot inspect '%s': %s", path, strerror(e));
        }
        return fr_error_set(err, FR_EIO, "file",
                            "'%s' is not a file, a device or a pipe to write lines to", path);
    }
    fs->regular = S_ISREG(sb.st_mode);
    fs->size = fs->regular ? (uint64_t)sb.st_size : 0;
    fs->need_newline = false;
    if (fs->size > 0) {
        int rfd = open(path, O_RDONLY | O_CLOEXEC);
        char last = '\n';
        if (rfd >= 0) {
            if (pread(rfd, &last, 1, (off_t)fs->size - 1) != 1) {
                last = '\n';
            }
            close(rfd);
        }
        fs->need_newline = last != '\n'; /* a line cut short: start on a new one */
    }
    return 0;
}

/* Writes out[0, len) to the file. */
static int file_put(file_sink *fs, size_t len, fr_error *err)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fs->fd, fs->out.data + done, len - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            fs->size += done;
            fs->bytes += done;
            fs->write_errors++;
            if (done > 0 && fs->out.data[done - 1] != '\n') {
                fs->need_newline = true;
            }
            return fr_error_set(err, FR_EIO, "file", "write to '%s' failed: %s", fs->cfg->file,
                                strerror(e));
        }
        done += (size_t)w;
    }
    fs->size += len;
    fs->bytes += len;
    return 0;
}

/* file -> file.1 -> ... -> file.N, then a new empty file. */
static int file_rotate(file_sink *fs, fr_error *err)
{
    const char *path = fs->cfg->file;
    if (fs->cfg->fsync && fdatasync(fs->fd) != 0) {
        return fr_error_set(err, FR_EIO, "file", "fdatasync '%s': %s", path, strerror(errno));
    }
    close(fs->fd);
    fs->fd = -1;
    char from[PATH_MAX + 16], to[PATH_MAX + 16];
    int rv = 0;
    if (fs->cfg->max_files == 0) {
        if (unlink(path) != 0 && errno != ENOENT) {
            rv = errno;
        }
    } else {
        for (int64_t i = fs->cfg->max_files - 1; i >= 1 && rv == 0; i--) {
            snprintf(from, sizeof(from), "%s.%" PRId64, path, i);
            snprintf(to, sizeof(to), "%s.%" PRId64, path, i + 1);
            if (rename(from, to) != 0 && errno != ENOENT) {
                rv = errno;
            }
        }
        snprintf(to, sizeof(to), "%s.1", path);
        if (rv == 0 && rename(path, to) != 0) {
            rv = errno;
        }
    }
    if (rv != 0) {
        fr_error_set(err, FR_EIO, "file", "cannot rotate '%s': %s", path, strerror(rv));
        file_open(fs, NULL); /* go on in the old file */
        return FR_EIO;
    }
    fs->rotations++;
    return file_open(fs, err);
}

/* ---- the sink --------------------------------------------------------- */

static void file_destroy(void *state)
{
    file_sink *fs = state;
    if (fs == NULL) {
        return;
    }
    if (fs->fd >= 0) {
        close(fs->fd);
    }
    fr_buf_free(&fs->out);
    free(fs->btags.v);
    free(fs->mtags.v);
    free(fs);
}

static int file_init(void **state, const void *config, const fr_sink_info *info, fr_error *err)
{
    const file_config *cfg = config;
    *state = NULL;
    if (cfg->file == NULL || cfg->file[0] == '\0') {
        return fr_error_set(err, FR_EMISSING, "file",
                            "key 'file' is required: the path of the file to write");
    }
    file_sink *fs = calloc(1, sizeof(*fs));
    if (fs == NULL) {
        return fr_error_set(err, FR_ENOMEM, "", "out of memory");
    }
    fs->cfg = cfg;
    fs->id = info != NULL && info->id != NULL ? info->id : "file";
    fs->cached_sec = INT64_MIN;
    int rv = file_open(fs, err);
    if (rv != 0) {
        file_destroy(fs);
        return FR_ECONFIG;
    }
    *state = fs;
    return 0;
}

/* One line for m, appended to out. */
static int file_line(file_sink *fs, const fr_metric *m, size_t btag_bound)
{
    size_t tbound;
    int rv = tags_prepare(&fs->mtags, m->tags, m->ntags, &tbound);
    if (rv != 0) {
        return rv;
    }
    size_t nsl = m->ns_len != 0 ? m->ns_len : strlen(m->ns);
    size_t ul = m->unit_len != 0 ? m->unit_len : strlen(m->unit);
    size_t sl = 0;
    if (m->value.type == FR_VAL_STRING) {
        sl = m->value.v.s.len != 0 ? m->value.v.s.len : strlen(m->value.v.s.ptr);
    }
    if (fr_buf_reserve(&fs->out, FS_LINE_FIX + 6 * (nsl + ul + sl) + btag_bound + tbound) != 0) {
        return FR_ENOMEM;
    }
    char *p = (char *)fs->out.data + fs->out.len;
    memcpy(p, "{\"timestamp\":", 13);
    p = json_time(fs, p + 13, m->ts);
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
    p = json_tags(p + 8, &fs->btags, &fs->mtags);
    memcpy(p, ",\"version\":0}\n", 14);
    p += 14;
    fs->out.len = (size_t)(p - (char *)fs->out.data);
    return 0;
}

static int file_write(void *state, fr_batch *const *batches, size_t n, fr_error *err)
{
    file_sink *fs = state;
    if (fs->fd < 0) {
        int rv = file_open(fs, err);
        if (rv != 0) {
            fs->write_errors++;
            return rv;
        }
    }
    uint64_t max = fs->cfg->max_size > 0 && fs->regular ? (uint64_t)fs->cfg->max_size : 0;
    fr_buf_reset(&fs->out);
    if (fs->need_newline && fr_buf_append(&fs->out, "\n", 1) != 0) {
        return fr_error_set(err, FR_ENOMEM, "", "out of memory");
    }
    fs->need_newline = false;
    int rv = 0;
    uint64_t lines = 0;
    for (size_t b = 0; b < n && rv == 0; b++) {
        const fr_batch *bt = batches[b];
        size_t bbound;
        rv = tags_prepare(&fs->btags, bt->tags, bt->ntags, &bbound);
        for (uint32_t i = 0; i < bt->nmetrics && rv == 0; i++) {
            size_t start = fs->out.len;
            rv = file_line(fs, &bt->metrics[i], bbound);
            if (rv != 0) {
                fr_error_set(err, rv, "", "out of memory");
                break;
            }
            lines++;
            if (max > 0 && fs->size + fs->out.len > max && fs->size + start > 0) {
                /* the line goes into a new file: what came before, and
                 * the old file, are done */
                if ((start > 0 && (rv = file_put(fs, start, err)) != 0) ||
                    (rv = file_rotate(fs, err)) != 0) {
                    break;
                }
                memmove(fs->out.data, fs->out.data + start, fs->out.len - start);
                fs->out.len -= start;
            }
            if (fs->out.len >= FS_FLUSH) {
                if ((rv = file_put(fs, fs->out.len, err)) != 0) {
                    break;
                }
                fr_buf_reset(&fs->out);
            }
        }
    }
    if (rv == 0 && fs->out.len > 0) {
        rv = file_put(fs, fs->out.len, err);
    }
    if (rv == 0 && fs->cfg->fsync && fdatasync(fs->fd) != 0) {
        rv =
            fr_error_set(err, FR_EIO, "file", "fdatasync '%s': %s", fs->cfg->file, strerror(errno));
    }
    if (fs->out.cap > FS_KEEP) {
        fr_buf_free(&fs->out);
    }
    if (rv != 0) {
        fr_warn("file", "%s: %s", fs->id, err->message);
        return rv == FR_ENOMEM ? FR_ENOMEM : FR_EIO;
    }
    fs->lines += lines;
    return 0;
}

static void file_stats(void *state, msgpack_packer *pk)
{
    file_sink *fs = state;
    msgpack_pack_map(pk, 5);
    const struct {
        const char *k;
        uint64_t v;
    } kv[] = {{"lines", fs->lines},
              {"bytes", fs->bytes},
              {"file_bytes", fs->size},
              {"rotations", fs->rotations},
              {"write_errors", fs->write_errors}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
        msgpack_pack_str_with_body(pk, kv[i].k, strlen(kv[i].k));
        msgpack_pack_uint64(pk, kv[i].v);
    }
}

const fr_sink_plugin fr_sink_file = {
    .abi = FR_SINK_ABI,
    .name = "file",
    .version = 1,
    .description = "metrics as JSON lines (snap's file publisher fields) in a local file, "
                   "rotated by size",
    .config = {file_policy, sizeof(file_policy) / sizeof(file_policy[0]), sizeof(file_config), NULL,
               NULL},
    .init = file_init,
    .write = file_write,
    .destroy = file_destroy,
    .stats = file_stats,
};
