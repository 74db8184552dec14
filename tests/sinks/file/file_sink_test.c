/* The file sink (services/publisher/sinks/file) writing real files in a
 * temporary directory: the JSON shape of every value type, doubles and
 * timestamps that read back exactly, string escaping, tag merging,
 * rotation, bad config and a failed write followed by a retry. */
#include "testsupport.h"

#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fresco/manifest.h"
#include "fresco/pipeline.h"

extern const fr_sink_plugin fr_sink_file;
static const fr_sink_plugin *const P = &fr_sink_file;

#define NODE "workflow.collect.publish[0]"

typedef struct fx {
    char *dir;
    char path[512];
    void *cfg;
    void *st;
} fx;

/* Parses key/value pairs (NULL-terminated) as the node's config map. */
static int config_load(const char *const *kv, void **cfg, fr_error *err)
{
    fr_mf_entry e[16];
    size_t n = 0;
    for (; kv != NULL && kv[2 * n] != NULL; n++) {
        assert_true(n < 16);
        memset(&e[n], 0, sizeof(e[n]));
        e[n].key = (char *)kv[2 * n];
        e[n].value.type = FR_MF_STRING;
        e[n].value.text = (char *)kv[2 * n + 1];
    }
    fr_mf_map map = {e, n};
    return fr_node_config_load(&P->config, P->name, &map, NODE, cfg, err);
}

static const fr_sink_info info = {"task-1/publish[0]", "task-1", "my-task", "publish[0]", NULL};

/* Starts the sink on f->path with the extra config pairs. */
static void sink_open(fx *f, const char *const *extra)
{
    const char *kv[16] = {"file", f->path};
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        kv[2 + i] = extra[i];
    }
    fr_error err;
    if (config_load(kv, &f->cfg, &err) != 0) {
        fail_msg("config: %s: %s", err.where, err.message);
    }
    if (P->init(&f->st, f->cfg, &info, &err) != 0) {
        fail_msg("init: %s: %s", err.where, err.message);
    }
}

static void sink_close(fx *f)
{
    P->destroy(f->st);
    fr_node_config_free(&P->config, f->cfg);
    f->st = NULL;
    f->cfg = NULL;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    f->dir = tst_tmpdir("filesink");
    snprintf(f->path, sizeof(f->path), "%s/out.json", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->st != NULL) {
        sink_close(f);
    }
    tst_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void write_ok(fx *f, fr_batch *const *b, size_t n)
{
    fr_error err;
    int rv = P->write(f->st, b, n, &err);
    if (rv != 0) {
        fail_msg("write: %s", err.message);
    }
}

/* The file's lines, split in place (free *text). */
static size_t file_lines(const char *path, char **text, char **lines, size_t cap)
{
    *text = tst_slurp(path);
    size_t n = 0;
    char *p = *text;
    while (*p != '\0') {
        char *nl = strchr(p, '\n');
        assert_non_null(nl); /* every line is whole */
        *nl = '\0';
        assert_true(n < cap);
        lines[n++] = p;
        p = nl + 1;
    }
    return n;
}

static void assert_lines(const char *path, const char *const *want)
{
    char *text, *lines[64];
    size_t n = file_lines(path, &text, lines, 64);
    size_t w = 0;
    while (want[w] != NULL) {
        w++;
    }
    for (size_t i = 0; i < n && i < w; i++) {
        if (strcmp(lines[i], want[i]) != 0) {
            fail_msg("line %zu:\n got  %s\n want %s", i, lines[i], want[i]);
        }
    }
    assert_int_equal(n, w);
    free(text);
}

/* ---- shapes ----------------------------------------------------------- */

static void test_every_value_type(void **state)
{
    fx *f = *state;
    sink_open(f, NULL);
    fr_batch *b = fr_batch_new("task-1", "node-1", 7);
    const int64_t t = 1469438879795513984; /* 2016-07-25T09:27:59.795513984Z */
    fr_metric *m = fr_batch_add(b, "/intel/mock/host0/baz", t, fr_val_i64(86), "");
    fr_batch_metric_tag(b, m, "plugin_running_on", "my-machine");
    fr_batch_add(b, "/i/min", t + 1, fr_val_i64(INT64_MIN), "B");
    fr_batch_add(b, "/u/max", t, fr_val_u64(UINT64_MAX), "bytes");
    fr_batch_add(b, "/d/quarter", 0, fr_val_f64(0.25), "s");
    fr_batch_add(b, "/d/negative", -1, fr_val_f64(-1234.5), "");
    fr_batch_add(b, "/d/whole", t, fr_val_f64(3.0), "");
    fr_batch_add(b, "/d/tenth", t, fr_val_f64(0.1), "");
    fr_batch_add(b, "/d/tiny", t, fr_val_f64(1e-7), "");
    fr_batch_add(b, "/d/huge", t, fr_val_f64(1e300), "");
    fr_batch_add(b, "/d/third", t, fr_val_f64(1.0 / 3.0), "");
    fr_batch_add(b, "/d/negzero", t, fr_val_f64(-0.0), "");
    fr_batch_add(b, "/d/nan", t, fr_val_f64(NAN), "");
    fr_batch_add(b, "/d/inf", t, fr_val_f64(INFINITY), "");
    fr_batch_add(b, "/d/-inf", t, fr_val_f64(-INFINITY), "");
    fr_batch_add(b, "/b/true", t, fr_val_bool(true), "");
    fr_batch_add(b, "/b/false", t, fr_val_bool(false), "");
    fr_batch_add(b, "/s/hello", t, fr_val_str("hello world"), "");
    fr_batch_add(b, "/s/empty", t, fr_val_str(""), "");
    write_ok(f, &b, 1);
#define T  "\"2016-07-25T09:27:59.795513984Z\""
#define E  ",\"unit\":\"\",\"tags\":{},\"version\":0}"
#define L_ "{\"timestamp\":" T ",\"namespace\":"
    const char *want[] = {
        L_ "\"/intel/mock/host0/baz\",\"data\":86,\"unit\":\"\",\"tags\":"
           "{\"plugin_running_on\":\"my-machine\"},\"version\":0}",
        "{\"timestamp\":\"2016-07-25T09:27:59.795513985Z\",\"namespace\":\"/i/min\","
        "\"data\":-9223372036854775808,\"unit\":\"B\",\"tags\":{},\"version\":0}",
        L_ "\"/u/max\",\"data\":18446744073709551615,\"unit\":\"bytes\",\"tags\":{},"
           "\"version\":0}",
        "{\"timestamp\":\"1970-01-01T00:00:00.000000000Z\",\"namespace\":\"/d/quarter\","
        "\"data\":0.25,\"unit\":\"s\",\"tags\":{},\"version\":0}",
        "{\"timestamp\":\"1969-12-31T23:59:59.999999999Z\",\"namespace\":\"/d/negative\","
        "\"data\":-1234.5" E,
        L_ "\"/d/whole\",\"data\":3" E,
        L_ "\"/d/tenth\",\"data\":0.1" E,
        L_ "\"/d/tiny\",\"data\":1e-7" E,
        L_ "\"/d/huge\",\"data\":1e+300" E,
        L_ "\"/d/third\",\"data\":0.3333333333333333" E,
        L_ "\"/d/negzero\",\"data\":-0" E,
        L_ "\"/d/nan\",\"data\":\"NaN\"" E,
        L_ "\"/d/inf\",\"data\":\"+Inf\"" E,
        L_ "\"/d/-inf\",\"data\":\"-Inf\"" E,
        L_ "\"/b/true\",\"data\":true" E,
        L_ "\"/b/false\",\"data\":false" E,
        L_ "\"/s/hello\",\"data\":\"hello world\"" E,
        L_ "\"/s/empty\",\"data\":\"\"" E,
        NULL,
    };
    assert_lines(f->path, want);
    fr_batch_destroy(b);
}

/* The number after "data": in a line; its significant digits in dig. */
static double line_double(const char *line, char *dig, size_t cap)
{
    const char *p = strstr(line, "\"data\":");
    assert_non_null(p);
    char *end;
    double d = strtod(p + 7, &end);
    assert_true(*end == ',');
    size_t n = 0;
    for (const char *q = p + 7; q < end && *q != 'e'; q++) {
        if (*q >= '0' && *q <= '9' && (n > 0 || *q != '0')) {
            assert_true(n + 1 < cap);
            dig[n++] = *q;
        }
    }
    while (n > 1 && dig[n - 1] == '0') { /* "1000" */
        n--;
    }
    dig[n] = '\0';
    return d;
}

/* d correctly rounded to n significant digits, as the C library prints
 * it: those digits and what strtod makes of them. */
static double rounded(double d, int n, char *dig)
{
    char s[64];
    snprintf(s, sizeof(s), "%.*e", n - 1, d);
    const char *q = s + (s[0] == '-');
    size_t k = 0;
    for (; *q != 'e'; q++) {
        if (*q != '.') {
            dig[k++] = *q;
        }
    }
    while (k > 1 && dig[k - 1] == '0') {
        k--;
    }
    dig[k] = '\0';
    return strtod(s, NULL);
}

static bool power_of_two(double d)
{
    int e;
    return frexp(fabs(d), &e) == 0.5;
}

static void test_doubles_round_trip(void **state)
{
    fx *f = *state;
    sink_open(f, NULL);
    enum { N = 20000 };
    static double vals[N];
    const double fixed[] = {0.1, 0.2, 0.3, 1e-6, 1e-5, 123456.789, 1e15, 1e15 + 1, 1e16,
                            9007199254740993.0, 5e-324, DBL_MIN, DBL_MAX, 1e21, 1e22, 2.5e-8, 42.0,
                            -17.125, 99.99, 1.05, 0.0001, 3.14159265358979,
                            /* shortest and nearest as Go and Python write
                             * them; rounding the 17 digits again gives
                             * 8.5163899723200005e-13 and 0.6197842113155903 */
                            8.51638997232e-13, 0.6197842113155902,
                            /* 2^26 + 2^-26: 67108864.00000002 reads back too */
                            67108864.00000001,
                            /* 2^-1017: the nearest 16 digits (...044) do not
                             * read back, the next ones up do */
                            7.120236347223045e-307};
    size_t nf = sizeof(fixed) / sizeof(fixed[0]);
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < N; i++) {
        if (i < nf) {
            vals[i] = fixed[i];
            continue;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        if (i % 3 == 0) {
            uint64_t bits = x;
            memcpy(&d, &bits, 8);
            if (!isfinite(d)) {
                d = (double)(x >> 11);
            }
        } else if (i % 3 == 1) {
            d = (double)(int64_t)(x % 2000000) / 100.0; /* two decimals, as meters write */
        } else {
            d = (double)(x >> 11) / 9007199254740992.0 * 1e4;
        }
        vals[i] = d;
    }
    fr_batch *b = fr_batch_new("t", "n", 1);
    for (size_t i = 0; i < N; i++) {
        fr_batch_add(b, "/d", 1, fr_val_f64(vals[i]), "");
    }
    write_ok(f, &b, 1);
    char *text;
    static char *lines[N];
    assert_int_equal(file_lines(f->path, &text, lines, N), N);
    for (size_t i = 0; i < N; i++) {
        char dig[32], near[32], shorter[32];
        double got = line_double(lines[i], dig, sizeof(dig));
        if (memcmp(&got, &vals[i], 8) != 0) {
            fail_msg("%.17g written as %s", vals[i], strstr(lines[i], "\"data\""));
        }
        if (vals[i] == 0) {
            continue;
        }
        /* the fewest digits that read back, and of those the nearest: one
         * digit fewer does not read back, and the digits are d correctly
         * rounded (at a power of two, whose neighbour below is nearer,
         * the next decimal up may be what reads back) */
        int n = (int)strlen(dig);
        rounded(vals[i], n, near);
        if (strcmp(dig, near) != 0 && !power_of_two(vals[i])) {
            fail_msg("%.17g written as %s, not the nearest %d digits %s", vals[i],
                     strstr(lines[i], "\"data\""), n, near);
        }
        if (n > 1 && rounded(vals[i], n - 1, shorter) == vals[i]) {
            fail_msg("%.17g written as %s, but %.*e reads back", vals[i],
                     strstr(lines[i], "\"data\""), n - 2, vals[i]);
        }
    }
    /* short forms stay short */
    assert_non_null(strstr(lines[0], "\"data\":0.1,"));
    assert_non_null(strstr(lines[5], "\"data\":123456.789,"));
    assert_non_null(strstr(lines[18], "\"data\":99.99,"));
    assert_non_null(strstr(lines[22], "\"data\":8.51638997232e-13,"));
    assert_non_null(strstr(lines[23], "\"data\":0.6197842113155902,"));
    assert_non_null(strstr(lines[24], "\"data\":67108864.00000001,"));
    assert_non_null(strstr(lines[25], "\"data\":7.120236347223045e-307,"));
    /* plain from 1e-6 up to 1e21, exponents outside, as Go writes them */
    const struct {
        size_t i;
        const char *want;
    } forms[] = {{3, "0.000001"}, {6, "1000000000000000"},         {8, "10000000000000000"},
                 {10, "5e-324"},  {12, "1.7976931348623157e+308"}, {13, "1e+21"},
                 {17, "-17.125"}, {9, "9007199254740992"}};
    for (size_t k = 0; k < sizeof(forms) / sizeof(forms[0]); k++) {
        char want[64];
        snprintf(want, sizeof(want), "\"data\":%s,", forms[k].want);
        if (strstr(lines[forms[k].i], want) == NULL) {
            fail_msg("%.17g: %s, want %s", vals[forms[k].i], strstr(lines[forms[k].i], "\"data"),
                     want);
        }
    }
    free(text);
    fr_batch_destroy(b);
}

static void test_timestamps(void **state)
{
    fx *f = *state;
    sink_open(f, NULL);
    fr_batch *b = fr_batch_new("t", "n", 1);
    enum { N = 3000 };
    static int64_t ts[N];
    uint64_t x = 12345;
    for (size_t i = 0; i < N; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        /* 1678 to 2261, both sides of the epoch, with leap days in */
        int64_t v = (int64_t)(x % 9200000000000000000ull);
        ts[i] = (x >> 63) != 0 ? -v : v;
        if (i % 7 == 0) {
            ts[i] = ts[i] / 1000000000 * 1000000000; /* whole seconds */
        }
        fr_batch_add(b, "/t", ts[i], fr_val_i64((int64_t)i), "");
    }
    write_ok(f, &b, 1);
    char *text;
    static char *lines[N];
    assert_int_equal(file_lines(f->path, &text, lines, N), N);
    for (size_t i = 0; i < N; i++) {
        const char *p = strstr(lines[i], "\"timestamp\":\"");
        assert_non_null(p);
        char stamp[40];
        memcpy(stamp, p + 13, 30);
        stamp[30] = '\0';
        assert_int_equal(stamp[29], 'Z');
        assert_int_equal(stamp[19], '.');
        int64_t back;
        assert_fr_ok(fr_parse_rfc3339(stamp, &back));
        assert_int_equal(back, ts[i]);
        /* the date as the C library has it */
        time_t sec = (time_t)(ts[i] >= 0 ? ts[i] / 1000000000 : (ts[i] - 999999999) / 1000000000);
        struct tm tm;
        gmtime_r(&sec, &tm);
        char want[24];
        strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S", &tm);
        if (strncmp(stamp, want, 19) != 0) {
            fail_msg("ts %lld: %s, want %s", (long long)ts[i], stamp, want);
        }
    }
    free(text);
    fr_batch_destroy(b);
}

/* ---- escaping --------------------------------------------------------- */

static void test_escaping(void **state)
{
    fx *f = *state;
    sink_open(f, NULL);
    fr_batch *b = fr_batch_new("t", "n", 1);
    fr_metric *m =
        fr_batch_add(b, "/a\"b\\c/d\ne", 5, fr_val_str("tab\there \x01\x1f\x7f \b\f\r"), "%\"");
    fr_batch_metric_tag(b, m, "k\"ey", "v\\al\nue");
    fr_batch_add(b, "/utf8", 5, fr_val_str("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "");
    fr_batch_add(b, "/bad", 5,
                 fr_val_str("a\xff"
                            "b\xc0\x80"
                            "c\xed\xa0\x80"
                            "d\xe2\x82"),
                 "");
    fr_batch_add(b, "/sep", 5, fr_val_str("x\xe2\x80\xa8y\xe2\x80\xa9z\xf4\x90\x80\x80"), "");
    write_ok(f, &b, 1);
#define TS "{\"timestamp\":\"1970-01-01T00:00:00.000000005Z\",\"namespace\":"
    const char *want[] = {
        TS "\"/a\\\"b\\\\c/d\\ne\",\"data\":\"tab\\there \\u0001\\u001f\x7f \\b\\f\\r\","
           "\"unit\":\"%\\\"\",\"tags\":{\"k\\\"ey\":\"v\\\\al\\nue\"},\"version\":0}",
        TS "\"/utf8\",\"data\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"" E,
        TS "\"/bad\",\"data\":\"a\\ufffdb\\ufffd\\ufffdc\\ufffd\\ufffd\\ufffdd\\ufffd\\ufffd\"" E,
        TS "\"/sep\",\"data\":\"x\\u2028y\\u2029z\\ufffd\\ufffd\\ufffd\\ufffd\"" E,
        NULL,
    };
    assert_lines(f->path, want);
    fr_batch_destroy(b);
}

/* ---- tags ------------------------------------------------------------- */

static void test_tags_merge(void **state)
{
    fx *f = *state;
    sink_open(f, NULL);
    fr_batch *b = fr_batch_new("t", "n", 1);
    fr_batch_add_tag(b, "zone", "z1");
    fr_batch_add_tag(b, "host", "batch-host");
    fr_batch_add_tag(b, "a", "1");
    fr_metric *m = fr_batch_add(b, "/m/own", 0, fr_val_i64(1), "");
    fr_batch_metric_tag(b, m, "host", "metric-host");
    fr_batch_metric_tag(b, m, "cpu", "3");
    fr_batch_add(b, "/m/none", 0, fr_val_i64(2), "");
    m = fr_batch_add(b, "/m/twice", 0, fr_val_i64(3), "");
    fr_batch_metric_tag(b, m, "k", "first");
    fr_batch_metric_tag(b, m, "k", "second");
    /* many tags, out of order */
    m = fr_batch_add(b, "/m/many", 0, fr_val_i64(4), "");
    for (int i = 24; i >= 0; i--) {
        char k[8], v[8];
        snprintf(k, sizeof(k), "t%02d", i);
        snprintf(v, sizeof(v), "%d", i);
        fr_batch_metric_tag(b, m, k, v);
    }
    fr_batch_metric_tag(b, m, "t07", "again");
    fr_batch *plain = fr_batch_new("t", "n", 2);
    fr_batch_add(plain, "/p", 0, fr_val_i64(5), "");
    fr_batch *both[] = {b, plain};
    write_ok(f, both, 2);

    char *text, *lines[8];
    assert_int_equal(file_lines(f->path, &text, lines, 8), 5);
    assert_non_null(strstr(lines[0], "\"tags\":{\"a\":\"1\",\"cpu\":\"3\",\"host\":\"metric-host\","
                                     "\"zone\":\"z1\"}"));
    assert_non_null(strstr(lines[1], "\"tags\":{\"a\":\"1\",\"host\":\"batch-host\","
                                     "\"zone\":\"z1\"}"));
    assert_non_null(
        strstr(lines[2], "\"tags\":{\"a\":\"1\",\"host\":\"batch-host\",\"k\":\"second\","));
    char want[1024];
    int n = snprintf(want, sizeof(want), "\"tags\":{\"a\":\"1\",\"host\":\"batch-host\",");
    for (int i = 0; i <= 24; i++) {
        char v[8];
        snprintf(v, sizeof(v), "%d", i);
        n += snprintf(want + n, sizeof(want) - (size_t)n, "\"t%02d\":\"%s\",", i,
                      i == 7 ? "again" : v);
    }
    snprintf(want + n, sizeof(want) - (size_t)n, "\"zone\":\"z1\"}");
    if (strstr(lines[3], want) == NULL) {
        fail_msg("got  %s\nwant %s", lines[3], want);
    }
    assert_non_null(strstr(lines[4], "\"tags\":{}")); /* the next batch has none */
    free(text);
    fr_batch_destroy(b);
    fr_batch_destroy(plain);
}

/* ---- files ------------------------------------------------------------ */

static off_t size_of(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

/* Batches of metrics numbered from *next, one line each of about 150
 * bytes. */
static fr_batch *numbered(uint32_t *next, uint32_t n)
{
    fr_batch *b = fr_batch_new("t", "n", *next);
    for (uint32_t i = 0; i < n; i++) {
        fr_batch_add(b, "/seq", 1, fr_val_u64((*next)++), "");
    }
    return b;
}

static uint64_t line_u64(const char *line)
{
    const char *p = strstr(line, "\"data\":");
    assert_non_null(p);
    return strtoull(p + 7, NULL, 10);
}

static void test_rotation(void **state)
{
    fx *f = *state;
    sink_open(f, (const char *[]){"max_size", "1KiB", "MaxFiles", "2", NULL});
    uint32_t next = 0;
    for (int round = 0; round < 12; round++) {
        fr_batch *b[3] = {numbered(&next, 3), numbered(&next, 1), numbered(&next, 2)};
        write_ok(f, b, 3);
        for (int i = 0; i < 3; i++) {
            fr_batch_destroy(b[i]);
        }
    }
    char p1[600], p2[600], p3[600];
    snprintf(p1, sizeof(p1), "%s.1", f->path);
    snprintf(p2, sizeof(p2), "%s.2", f->path);
    snprintf(p3, sizeof(p3), "%s.3", f->path);
    assert_true(size_of(f->path) > 0 && size_of(f->path) <= 1024);
    assert_true(size_of(p1) > 900 && size_of(p1) <= 1024);
    assert_true(size_of(p2) > 900 && size_of(p2) <= 1024);
    assert_int_equal(size_of(p3), -1);
    /* the newest lines, unbroken and in order, across .2, .1 and the file */
    const char *order[] = {p2, p1, f->path};
    uint64_t expect = UINT64_MAX;
    for (int k = 0; k < 3; k++) {
        char *text, *lines[64];
        size_t n = file_lines(order[k], &text, lines, 64);
        for (size_t i = 0; i < n; i++) {
            uint64_t v = line_u64(lines[i]);
            if (expect != UINT64_MAX) {
                assert_int_equal(v, expect);
            }
            expect = v + 1;
        }
        free(text);
    }
    assert_int_equal(expect, next);
    sink_close(f);

    /* max_files 0: the old file goes */
    tst_rmtree(f->dir);
    mkdir(f->dir, 0700);
    sink_open(f, (const char *[]){"max_size", "600", "max_files", "0", NULL});
    for (int round = 0; round < 6; round++) {
        fr_batch *b = numbered(&next, 2);
        write_ok(f, &b, 1);
        fr_batch_destroy(b);
    }
    assert_true(size_of(f->path) <= 600);
    assert_int_equal(size_of(p1), -1);
}

static void test_appends_and_mends_a_cut_line(void **state)
{
    fx *f = *state;
    assert_int_equal(tst_write_file(f->path, "{\"old\":1}\n{\"cut\":", 17), 0);
    sink_open(f, (const char *[]){"fsync", "true", NULL});
    uint32_t next = 0;
    fr_batch *b = numbered(&next, 2);
    write_ok(f, &b, 1);
    fr_batch_destroy(b);
    char *text, *lines[8];
    assert_int_equal(file_lines(f->path, &text, lines, 8), 4);
    assert_string_equal(lines[0], "{\"old\":1}");
    assert_string_equal(lines[1], "{\"cut\":");
    assert_int_equal(line_u64(lines[2]), 0);
    assert_int_equal(line_u64(lines[3]), 1);
    free(text);

    /* stats */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    P->stats(f->st, &pk);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
    bool found = false;
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        msgpack_object_kv *kv = &u.data.via.map.ptr[i];
        if (kv->key.via.str.size == 5 && memcmp(kv->key.via.str.ptr, "lines", 5) == 0) {
            assert_int_equal(kv->val.via.u64, 2);
            found = true;
        }
    }
    assert_true(found);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

/* A write that fails part way (the file size limit) is retryable, and the
 * retry starts on a new line: the lines written before the failure appear
 * twice, none is broken. */
static void test_failed_write_then_retry(void **state)
{
    fx *f = *state;
    sink_open(f, NULL);
    uint32_t next = 0;
    fr_batch *b = numbered(&next, 40);
    struct rlimit old, small = {3000, 0};
    getrlimit(RLIMIT_FSIZE, &old);
    small.rlim_max = old.rlim_max;
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    fr_error err;
    int rv = P->write(f->st, &b, 1, &err);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(rv, FR_EIO);
    assert_true(fr_sink_retryable(rv));
    assert_non_null(strstr(err.message, f->path));
    assert_int_equal(size_of(f->path), 3000);
    write_ok(f, &b, 1);
    fr_batch_destroy(b);
    char *text, *lines[128];
    size_t n = file_lines(f->path, &text, lines, 128);
    size_t cut = 0;
    while (strstr(lines[cut], "\"version\":0}") != NULL) {
        assert_int_equal(line_u64(lines[cut]), cut);
        cut++;
    }
    assert_true(cut > 5 && cut < 40);
    size_t partial = n - cut - 40; /* the line the failure cut, on its own */
    assert_true(partial <= 1);
    for (size_t i = 0; i < 40; i++) {
        assert_int_equal(line_u64(lines[cut + partial + i]), i);
    }
    free(text);
}

/* ---- config ----------------------------------------------------------- */

static void test_bad_config(void **state)
{
    fx *f = *state;
    void *cfg = NULL;
    fr_error err;
    /* unknown key */
    assert_int_equal(config_load((const char *[]){"file", f->path, "fiel", "x", NULL}, &cfg, &err),
                     FR_EUNKNOWN);
    assert_string_equal(err.where, NODE ".config.fiel");
    assert_non_null(strstr(err.message, "fiel"));
    assert_null(cfg);
    /* bad values */
    assert_true(
        config_load((const char *[]){"file", f->path, "max_size", "big", NULL}, &cfg, &err) != 0);
    assert_string_equal(err.where, NODE ".config.max_size");
    assert_true(
        config_load((const char *[]){"file", f->path, "max_files", "-1", NULL}, &cfg, &err) != 0);
    /* no file */
    assert_fr_ok(config_load((const char *[]){"max_size", "1MiB", NULL}, &cfg, &err));
    void *st = NULL;
    assert_int_equal(P->init(&st, cfg, &info, &err), FR_EMISSING);
    assert_string_equal(err.where, "file");
    assert_non_null(strstr(err.message, "'file' is required"));
    fr_node_config_free(&P->config, cfg);
    /* a file that cannot be written: a missing directory, a directory */
    char bad[600];
    snprintf(bad, sizeof(bad), "%s/no/such/dir/out.json", f->dir);
    const char *dirs[] = {bad, f->dir};
    for (int i = 0; i < 2; i++) {
        assert_fr_ok(config_load((const char *[]){"file", dirs[i], NULL}, &cfg, &err));
        assert_int_equal(P->init(&st, cfg, &info, &err), FR_ECONFIG);
        assert_null(st);
        assert_string_equal(err.where, "file");
        assert_non_null(strstr(err.message, dirs[i]));
        assert_non_null(strstr(err.message, i == 0 ? "No such file" : "Is a directory"));
        fr_node_error_locate(&err, P->name, NODE);
        assert_string_equal(err.where, NODE ".config.file");
        fr_node_config_free(&P->config, cfg);
    }
    P->destroy(NULL);
}

/* A device takes lines too (/dev/null, to try a task out), and is never
 * rotated however small max_size is. */
static void test_device(void **state)
{
    void *cfg = NULL;
    fr_error err;
    assert_fr_ok(
        config_load((const char *[]){"file", "/dev/null", "max_size", "100", NULL}, &cfg, &err));
    void *st = NULL;
    assert_fr_ok(P->init(&st, cfg, &info, &err));
    uint32_t next = 0;
    for (int i = 0; i < 5; i++) {
        fr_batch *b = numbered(&next, 10);
        assert_fr_ok(P->write(st, &b, 1, &err));
        fr_batch_destroy(b);
    }
    P->destroy(st);
    fr_node_config_free(&P->config, cfg);
    struct stat sb;
    assert_int_equal(stat("/dev/null", &sb), 0);
    assert_true(S_ISCHR(sb.st_mode));
    assert_int_not_equal(access("/dev/null.1", F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_value_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doubles_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timestamps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tags_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_appends_and_mends_a_cut_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_write_then_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
