/* The influxdb sink against a real InfluxDB 1.6 (one influxd for the
 * suite, from scripts/influxdb-test.sh). Every value type with hostile
 * names (spaces, commas, quotes, equals signs, backslashes, unicode) is
 * written, with and without gzip, and read back through /query as JSON:
 * measurement, every tag, the value with its field type and the ns
 * timestamp. Also: a batch sent again is stored once; points InfluxDB
 * cannot hold are dropped and counted while the rest goes in; a refused
 * point (field type conflict) is a permanent error; bodies split at
 * max_body; timestamps at a coarser precision; the database created on
 * the first write and again after it is dropped; the server killed (a
 * retryable error at once), stopped (a timeout within the sink's
 * timeout) and back (the same batch goes in, also over a connection
 * kept from before the restart); bad configs refused naming the key. */
#include "influx_fixture.h"

#include "fresco/clock.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define T0 1700000000123456789LL

static ifx_server srv;

static int group_setup(void **state)
{
    (void)state;
    ifx_start(&srv, NULL);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ifx_destroy(&srv);
    return 0;
}

static char port_text[16];

static const char *port_str(void)
{
    snprintf(port_text, sizeof(port_text), "%d", srv.port);
    return port_text;
}

/* Opens the sink on srv with database db and extra pairs; fails the test
 * when it does not open. */
static void sink_on(ifx_sink *k, const char *db, const char *const *extra)
{
    const char *kv[40] = {"host", "127.0.0.1", "port", port_str(), "database", db};
    size_t n = 6;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        kv[n++] = extra[i];
    }
    kv[n] = NULL;
    fr_error err;
    int rv = ifx_sink_open(k, kv, &err);
    if (rv != 0) {
        fail_msg("open: %s: %s", err.where, err.message);
    }
}

static void write_ok(ifx_sink *k, fr_batch *b)
{
    fr_error err;
    int rv = ifx_sink_write(k, &b, 1, &err);
    if (rv != 0) {
        fail_msg("write -> %d (%s): %s", rv, fr_strerror(rv), err.message);
    }
}

/* ---- what is written and what should come back ------------------------- */

typedef struct want_tag {
    const char *k, *v;
} want_tag;

typedef struct want {
    const char *ns;          /* as given to the batch */
    const char *measurement; /* as InfluxDB should hold it */
    int64_t ts;
    fr_value value;
    const char *unit;
    want_tag own[4];     /* the metric's own tags */
    char type;           /* 'i' integer, 'f' float, 'b' boolean, 's' string */
    double as_float;     /* 'f' */
    want_tag expect[10]; /* every tag InfluxDB should hold */
} want;

#define SRC "node ,=\"1"

static const char *long_string =
    "line1\nline2 \"quoted\" back\\slash, comma=equals \xe2\x98\x83 tab\there";

static want wants[] = {
    {"/fresco test/int,64=x",
     "fresco test/int,64=x",
     T0 + 1,
     {.type = FR_VAL_INT64, .v.i = INT64_MIN},
     "B/s",
     {{"k ey", "v,al=ue"}, {"quote\"d", "ba\\ck"}},
     'i',
     0,
     {{"dc", "eu west"},
      {"rack", "r=1,\"2\""},
      {"k ey", "v,al=ue"},
      {"quote\"d", "ba\\ck"},
      {"source", SRC},
      {"unit", "B/s"}}},
    {"/fresco test/int max",
     "fresco test/int max",
     T0 + 2,
     {.type = FR_VAL_INT64, .v.i = INT64_MAX},
     "",
     {{0}},
     'i',
     0,
     {{"dc", "eu west"}, {"rack", "r=1,\"2\""}, {"source", SRC}}},
    {"/fresco test/uint big",
     "fresco test/uint big",
     T0 + 3,
     {.type = FR_VAL_UINT64, .v.u = UINT64_MAX},
     "count",
     {{0}},
     'f',
     18446744073709551615.0,
     {{"dc", "eu west"}, {"rack", "r=1,\"2\""}, {"source", SRC}, {"unit", "count"}}},
    {"/fresco test/uint small",
     "fresco test/uint small",
     T0 + 4,
     {.type = FR_VAL_UINT64, .v.u = 42},
     "",
     {{0}},
     'i',
     0,
     {{"dc", "eu west"}, {"rack", "r=1,\"2\""}, {"source", SRC}}},
    {"/fresco test/double \xc3\xbcn\xc3\xaf",
     "fresco test/double \xc3\xbcn\xc3\xaf",
     -1234567890123LL, /* before the epoch */
     {.type = FR_VAL_DOUBLE, .v.d = 0.1},
     "",
     {{"\xc3\xbcn\xc3\xaf", "\xc3\xa7\xc3\xb8"
                            "d\xc3\xa9 \xe2\x98\x83"}},
     'f',
     0.1,
     {{"dc", "eu west"},
      {"rack", "r=1,\"2\""},
      {"source", SRC},
      {"\xc3\xbcn\xc3\xaf", "\xc3\xa7\xc3\xb8"
                            "d\xc3\xa9 \xe2\x98\x83"}}},
    {"/fresco test/double tiny",
     "fresco test/double tiny",
     T0 + 6,
     {.type = FR_VAL_DOUBLE, .v.d = -4.9406564584124654e-324},
     "",
     {{0}},
     'f',
     -4.9406564584124654e-324,
     {{"dc", "eu west"}, {"rack", "r=1,\"2\""}, {"source", SRC}}},
    {"/fresco test/double big",
     "fresco test/double big",
     T0 + 7,
     {.type = FR_VAL_DOUBLE, .v.d = 1.7976931348623157e308},
     "",
     {{0}},
     'f',
     1.7976931348623157e308,
     {{"dc", "eu west"}, {"rack", "r=1,\"2\""}, {"source", SRC}}},
    {"/fresco test/double whole",
     "fresco test/double whole",
     T0 + 11,
     {.type = FR_VAL_DOUBLE, .v.d = -1048576.0}, /* written without a fraction: still a float */
     "",
     {{0}},
     'f',
     -1048576.0,
     {{"dc", "eu west"}, {"rack", "r=1,\"2\""}, {"source", SRC}}},
    {"/fresco test/bool",
     "fresco test/bool",
     T0 + 8,
     {.type = FR_VAL_BOOL, .v.b = true},
     "",
     {{"dc", "over, ride"}}, /* a metric's tag wins over the batch's */
     'b',
     0,
     {{"dc", "over, ride"}, {"rack", "r=1,\"2\""}, {"source", SRC}}},
    {"/fresco test/string",
     "fresco test/string",
     T0 + 9,
     {.type = FR_VAL_STRING},
     "",
     {{0}},
     's',
     0,
     {{"dc", "eu west"}, {"rack", "r=1,\"2\""}, {"source", SRC}}},
    {"/fresco test/back\\slash",
     "fresco test/back\\slash",
     T0 + 10,
     {.type = FR_VAL_INT64, .v.i = 7},
     "ms",
     /* snap's plugin_running_on becomes source; an explicit unit tag wins;
      * an empty tag is left out */
     {{"plugin_running_on", "host-9"}, {"unit", "explicit"}, {"empty", ""}},
     'i',
     0,
     {{"dc", "eu west"}, {"rack", "r=1,\"2\""}, {"source", "host-9"}, {"unit", "explicit"}}},
    {"/fresco test/bool false",
     "fresco test/bool false",
     0,
     {.type = FR_VAL_BOOL, .v.b = false},
     "",
     {{"source", "mine"}},
     'b',
     0,
     {{"dc", "eu west"}, {"rack", "r=1,\"2\""}, {"source", "mine"}}},
};

#define NWANTS (sizeof(wants) / sizeof(wants[0]))

static fr_batch *hostile_batch(uint64_t seq)
{
    fr_batch *b = fr_batch_new("task-1", SRC, seq);
    assert_non_null(b);
    assert_fr_ok(fr_batch_add_tag(b, "dc", "eu west"));
    assert_fr_ok(fr_batch_add_tag(b, "rack", "r=1,\"2\""));
    for (size_t i = 0; i < NWANTS; i++) {
        fr_value v = wants[i].value;
        if (v.type == FR_VAL_STRING) {
            v = fr_val_str(long_string);
        }
        fr_metric *m = fr_batch_add(b, wants[i].ns, wants[i].ts, v, wants[i].unit);
        assert_non_null(m);
        for (int t = 0; t < 4 && wants[i].own[t].k != NULL; t++) {
            assert_fr_ok(fr_batch_metric_tag(b, m, wants[i].own[t].k, wants[i].own[t].v));
        }
    }
    return b;
}

static const char *field_type(char t)
{
    return t == 'i' ? "integer" : t == 'f' ? "float" : t == 'b' ? "boolean" : "string";
}

/* Reads measurement w back from db and checks it. */
static void check_point(const char *db, const want *w)
{
    char id[1024], q[1300];
    ifx_ident(w->measurement, id, sizeof(id));
    snprintf(q, sizeof(q), "SELECT \"value\" FROM %s GROUP BY *", id);
    yarn_json_doc doc;
    ifx_query(srv.port, db, q, NULL, &doc);
    const yarn_json_node *series = ifx_series(&doc);
    if (series == NULL || series->count != 1) {
        fail_msg("%s: %u series back", w->measurement, series != NULL ? series->count : 0);
    }
    const yarn_json_node *s = yarn_json_first(&doc, series);
    const yarn_json_node *name = yarn_json_get(&doc, s, "name");
    assert_non_null(name);
    assert_string_equal(name->s, w->measurement);
    const yarn_json_node *tags = yarn_json_get(&doc, s, "tags");
    size_t nexpect = 0;
    while (nexpect < 10 && w->expect[nexpect].k != NULL) {
        nexpect++;
    }
    if (tags == NULL || tags->count != nexpect) {
        fail_msg("%s: %u tags back, %zu expected", w->measurement, tags ? tags->count : 0, nexpect);
    }
    for (size_t t = 0; t < nexpect; t++) {
        const yarn_json_node *v = yarn_json_get(&doc, tags, w->expect[t].k);
        if (v == NULL || v->type != YARN_JSON_STRING || strcmp(v->s, w->expect[t].v) != 0) {
            fail_msg("%s: tag '%s' is '%s', want '%s'", w->measurement, w->expect[t].k,
                     v != NULL && v->type == YARN_JSON_STRING ? v->s : "(none)", w->expect[t].v);
        }
    }
    const yarn_json_node *values = yarn_json_get(&doc, s, "values");
    assert_non_null(values);
    assert_int_equal(values->count, 1);
    const yarn_json_node *row = yarn_json_first(&doc, values);
    const yarn_json_node *ts = yarn_json_first(&doc, row);
    const yarn_json_node *val = yarn_json_next(&doc, ts);
    assert_true(ts->is_int);
    assert_int_equal(ts->i, w->ts);
    assert_non_null(val);
    switch (w->type) {
    case 'i':
        assert_true(val->is_int);
        assert_int_equal(val->i, w->value.v.i); /* u fits: same bits below 2^63 */
        break;
    case 'f':
        assert_int_equal(val->type, YARN_JSON_NUMBER);
        if (val->d != w->as_float) {
            fail_msg("%s: %.17g back, want %.17g", w->measurement, val->d, w->as_float);
        }
        break;
    case 'b':
        assert_int_equal(val->type, YARN_JSON_BOOL);
        assert_int_equal(val->b, w->value.v.b);
        break;
    default:
        assert_int_equal(val->type, YARN_JSON_STRING);
        assert_int_equal(val->len, strlen(long_string));
        assert_memory_equal(val->s, long_string, val->len);
    }
    yarn_json_free(&doc);

    snprintf(q, sizeof(q), "SHOW FIELD KEYS FROM %s", id);
    ifx_query(srv.port, db, q, NULL, &doc);
    series = ifx_series(&doc);
    assert_non_null(series);
    const yarn_json_node *fk =
        yarn_json_first(&doc, yarn_json_get(&doc, yarn_json_first(&doc, series), "values"));
    const yarn_json_node *fname = yarn_json_first(&doc, fk);
    const yarn_json_node *ftype = yarn_json_next(&doc, fname);
    assert_string_equal(fname->s, "value");
    assert_string_equal(ftype->s, field_type(w->type));
    yarn_json_free(&doc);
}

static void types_and_names(const char *db, bool gzip)
{
    ifx_exec(srv.port, "CREATE DATABASE types_plain", NULL);
    ifx_exec(srv.port, "CREATE DATABASE types_gzip", NULL);
    ifx_sink k;
    const char *extra[] = {"gzip", gzip ? "true" : "false", NULL};
    sink_on(&k, db, extra);
    fr_batch *b = hostile_batch(1);
    write_ok(&k, b);
    fr_batch_destroy(b);
    for (size_t i = 0; i < NWANTS; i++) {
        check_point(db, &wants[i]);
    }
    assert_int_equal(ifx_stat(&k, "points"), NWANTS);
    assert_int_equal(ifx_stat(&k, "points_dropped"), 0);
    assert_int_equal(ifx_stat(&k, "requests"), 1);
    uint64_t raw = ifx_stat(&k, "bytes_raw"), sent = ifx_stat(&k, "bytes_sent");
    if (gzip) {
        assert_true(sent < raw);
        printf("# gzip: %llu bytes of line protocol sent as %llu\n", (unsigned long long)raw,
               (unsigned long long)sent);
        fflush(stdout);
    } else {
        assert_int_equal(sent, raw);
    }
    ifx_sink_close(&k);
}

static void test_types_plain(void **state)
{
    (void)state;
    types_and_names("types_plain", false);
}

static void test_types_gzip(void **state)
{
    (void)state;
    types_and_names("types_gzip", true);
}

/* The same batch again, in a later write and twice in one: one point. */
static void test_resend_stored_once(void **state)
{
    (void)state;
    ifx_exec(srv.port, "CREATE DATABASE resend", NULL);
    ifx_sink k;
    sink_on(&k, "resend", NULL);
    fr_batch *b = hostile_batch(5);
    write_ok(&k, b);
    write_ok(&k, b);
    fr_batch *two[] = {b, b};
    fr_error err;
    assert_fr_ok(ifx_sink_write(&k, two, 2, &err));
    assert_int_equal(ifx_stat(&k, "points"), 4 * NWANTS);
    for (size_t i = 0; i < NWANTS; i++) {
        assert_int_equal(ifx_count(srv.port, "resend", wants[i].measurement), 1);
    }
    fr_batch_destroy(b);
    ifx_sink_close(&k);
}

/* Points InfluxDB cannot hold are left out and counted; the others go. */
static void test_unstorable_dropped(void **state)
{
    (void)state;
    ifx_exec(srv.port, "CREATE DATABASE drops", NULL);
    ifx_sink k;
    sink_on(&k, "drops", NULL);
    fr_batch *b = fr_batch_new("t", "n1", 1);
    assert_non_null(b);
    assert_non_null(fr_batch_add(b, "/d/nan", T0, fr_val_f64(NAN), ""));
    assert_non_null(fr_batch_add(b, "/d/inf", T0, fr_val_f64(INFINITY), ""));
    assert_non_null(fr_batch_add(b, "/d/ninf", T0, fr_val_f64(-INFINITY), ""));
    fr_metric *m = fr_batch_add(b, "/d/newline", T0, fr_val_i64(1), "");
    assert_fr_ok(fr_batch_metric_tag(b, m, "k", "two\nlines"));
    m = fr_batch_add(b, "/d/trailing", T0, fr_val_i64(1), "");
    assert_fr_ok(fr_batch_metric_tag(b, m, "k", "ends\\"));
    m = fr_batch_add(b, "/d/timekey", T0, fr_val_i64(1), "");
    assert_fr_ok(fr_batch_metric_tag(b, m, "time", "x"));
    assert_non_null(fr_batch_add(b, "/#comment", T0, fr_val_i64(1), ""));
    assert_non_null(fr_batch_add(b, "/d/late", INT64_MAX, fr_val_i64(1), ""));
    assert_non_null(fr_batch_add(b, "/d/early", INT64_MIN, fr_val_i64(1), ""));
    assert_non_null(fr_batch_add(b, "/d/good", T0, fr_val_i64(5), ""));
    write_ok(&k, b);
    assert_int_equal(ifx_stat(&k, "dropped_nonfinite"), 3);
    assert_int_equal(ifx_stat(&k, "dropped_name"), 4);
    assert_int_equal(ifx_stat(&k, "dropped_time"), 2);
    assert_int_equal(ifx_stat(&k, "points_dropped"), 9);
    assert_int_equal(ifx_stat(&k, "points"), 1);
    assert_int_equal(ifx_count(srv.port, "drops", "d/good"), 1);
    /* Nothing but the good point reached the database. */
    yarn_json_doc doc;
    ifx_query(srv.port, "drops", "SHOW MEASUREMENTS", NULL, &doc);
    const yarn_json_node *s = yarn_json_first(&doc, ifx_series(&doc));
    assert_int_equal(yarn_json_get(&doc, s, "values")->count, 1);
    yarn_json_free(&doc);
    fr_batch_destroy(b);
    ifx_sink_close(&k);
}

/* A point of another field type than the series has: HTTP 400, a
 * permanent error naming InfluxDB's reason. */
static void test_refused_points_permanent(void **state)
{
    (void)state;
    ifx_exec(srv.port, "CREATE DATABASE conflict", NULL);
    ifx_sink k;
    sink_on(&k, "conflict", NULL);
    fr_batch *b = fr_batch_new("t", "n1", 1);
    assert_non_null(fr_batch_add(b, "/c/x", T0, fr_val_i64(1), ""));
    write_ok(&k, b);
    fr_batch_reset(b, "t", "n1", 2);
    assert_non_null(fr_batch_add(b, "/c/x", T0 + 1, fr_val_f64(1.5), ""));
    fr_error err;
    int rv = ifx_sink_write(&k, &b, 1, &err);
    assert_int_equal(rv, FR_EINVAL);
    assert_false(fr_sink_retryable(rv));
    assert_non_null(strstr(err.message, "HTTP 400"));
    assert_non_null(strstr(err.message, "field type conflict"));
    assert_int_equal(ifx_stat(&k, "last_status"), 400);
    fr_batch_destroy(b);
    ifx_sink_close(&k);
}

/* A retention policy that does not exist: InfluxDB answers 500, which is
 * retried (the policy may be made); once it exists the points go there. */
static void test_retention_policy(void **state)
{
    (void)state;
    ifx_exec(srv.port, "CREATE DATABASE rpdb", NULL);
    ifx_sink k;
    const char *extra[] = {"retention", "week ly", NULL};
    sink_on(&k, "rpdb", extra);
    fr_batch *b = fr_batch_new("t", "n1", 1);
    assert_non_null(fr_batch_add(b, "/rp/x", fr_now_ns(), fr_val_i64(1), "")); /* within 7 days */
    fr_error err;
    int rv = ifx_sink_write(&k, &b, 1, &err);
    assert_int_equal(rv, FR_EIO);
    assert_true(fr_sink_retryable(rv));
    assert_non_null(strstr(err.message, "HTTP 500"));
    assert_non_null(strstr(err.message, "retention policy not found"));
    ifx_exec(srv.port, "CREATE RETENTION POLICY \"week ly\" ON rpdb DURATION 7d REPLICATION 1",
             NULL);
    write_ok(&k, b);
    yarn_json_doc doc;
    ifx_query(srv.port, "rpdb", "SELECT COUNT(\"value\") FROM \"week ly\".\"rp/x\"", NULL, &doc);
    const yarn_json_node *s = yarn_json_first(&doc, ifx_series(&doc));
    assert_non_null(s);
    const yarn_json_node *row = yarn_json_first(&doc, yarn_json_get(&doc, s, "values"));
    assert_int_equal(yarn_json_next(&doc, yarn_json_first(&doc, row))->i, 1);
    yarn_json_free(&doc);
    assert_int_equal(ifx_count(srv.port, "rpdb", "rp/x"), 0); /* not in autogen */
    fr_batch_destroy(b);
    ifx_sink_close(&k);
}

/* A body over max_body goes on in more requests; all points arrive. */
static void test_split_at_max_body(void **state)
{
    (void)state;
    ifx_exec(srv.port, "CREATE DATABASE split", NULL);
    for (int gz = 0; gz < 2; gz++) {
        ifx_sink k;
        const char *extra[] = {"max_body", "1KiB", "gzip", gz ? "true" : "false", NULL};
        sink_on(&k, "split", extra);
        fr_batch *b[3];
        for (int i = 0; i < 3; i++) {
            b[i] = fr_batch_new("t", "n1", (uint64_t)i);
            assert_fr_ok(fr_batch_add_tag(b[i], "batch", i == 0 ? "a" : i == 1 ? "b" : "c"));
            for (int j = 0; j < 300; j++) {
                assert_non_null(fr_batch_add(b[i], gz ? "/split/gz" : "/split/plain", T0 + j * 1000,
                                             fr_val_i64(j), "B"));
            }
        }
        fr_error err;
        assert_fr_ok(ifx_sink_write(&k, b, 3, &err));
        uint64_t raw = ifx_stat(&k, "bytes_raw"), req = ifx_stat(&k, "requests");
        assert_true(req >= raw / 1024);
        assert_true(req <= raw / 900 + 1);
        assert_int_equal(ifx_stat(&k, "points"), 900);
        assert_int_equal(ifx_count(srv.port, "split", gz ? "split/gz" : "split/plain"), 900);
        for (int i = 0; i < 3; i++) {
            fr_batch_destroy(b[i]);
        }
        ifx_sink_close(&k);
    }
}

static void test_precision(void **state)
{
    (void)state;
    ifx_exec(srv.port, "CREATE DATABASE prec", NULL);
    static const struct {
        const char *p;
        int64_t ns;
    } cases[] = {{"s", 1000000000}, {"ms", 1000000}, {"u", 1000}, {"h", 3600000000000LL}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ifx_sink k;
        const char *extra[] = {"precision", cases[i].p, NULL};
        sink_on(&k, "prec", extra);
        char ns[64];
        snprintf(ns, sizeof(ns), "/prec/%s", cases[i].p);
        fr_batch *b = fr_batch_new("t", "n1", 1);
        assert_non_null(fr_batch_add(b, ns, T0, fr_val_i64(1), ""));
        assert_non_null(fr_batch_add(b, ns, -1500000001LL, fr_val_i64(2), ""));
        write_ok(&k, b);
        char id[128], q[256];
        ifx_ident(ns + 1, id, sizeof(id));
        snprintf(q, sizeof(q), "SELECT \"value\" FROM %s", id);
        yarn_json_doc doc;
        ifx_query(srv.port, "prec", q, NULL, &doc);
        const yarn_json_node *s = yarn_json_first(&doc, ifx_series(&doc));
        const yarn_json_node *vals = yarn_json_get(&doc, s, "values");
        assert_int_equal(vals->count, 2);
        const yarn_json_node *r0 = yarn_json_first(&doc, vals);
        const yarn_json_node *r1 = yarn_json_next(&doc, r0);
        /* Rounded down: before the epoch too. */
        int64_t p = cases[i].ns;
        int64_t early = -1500000001LL / p * p - (-1500000001LL % p != 0 ? p : 0);
        assert_int_equal(yarn_json_first(&doc, r0)->i, early);
        assert_int_equal(yarn_json_first(&doc, r1)->i, T0 / p * p);
        yarn_json_free(&doc);
        fr_batch_destroy(b);
        ifx_sink_close(&k);
    }
}

static bool db_exists(const char *name)
{
    yarn_json_doc doc;
    ifx_query(srv.port, NULL, "SHOW DATABASES", NULL, &doc);
    const yarn_json_node *s = yarn_json_first(&doc, ifx_series(&doc));
    bool found = false;
    const yarn_json_node *vals = yarn_json_get(&doc, s, "values");
    for (const yarn_json_node *r = yarn_json_first(&doc, vals); r != NULL;
         r = yarn_json_next(&doc, r)) {
        found = found || strcmp(yarn_json_first(&doc, r)->s, name) == 0;
    }
    yarn_json_free(&doc);
    return found;
}

static void test_create_database(void **state)
{
    (void)state;
    const char *name = "fresco \"db\" \xc3\xbcn\xc3\xaf, 1=1";
    assert_false(db_exists(name));
    /* Without create_database: a retryable "not found" that says what to do. */
    ifx_sink k;
    sink_on(&k, name, NULL);
    fr_batch *b = hostile_batch(9);
    fr_error err;
    int rv = ifx_sink_write(&k, &b, 1, &err);
    if (rv != FR_ENOTFOUND) {
        fail_msg("-> %d: %s", rv, err.message);
    }
    assert_true(fr_sink_retryable(rv));
    assert_non_null(strstr(err.message, "HTTP 404"));
    assert_non_null(strstr(err.message, "create_database"));
    ifx_sink_close(&k);
    assert_false(db_exists(name));

    const char *extra[] = {"create_database", "true", NULL};
    sink_on(&k, name, extra);
    write_ok(&k, b);
    assert_true(db_exists(name));
    check_point(name, &wants[0]);
    /* Dropped behind the sink's back: the next write says so, the one
     * after creates it again. */
    char id[256], q[300];
    ifx_ident(name, id, sizeof(id));
    snprintf(q, sizeof(q), "DROP DATABASE %s", id);
    ifx_exec(srv.port, q, NULL);
    rv = ifx_sink_write(&k, &b, 1, &err);
    assert_int_equal(rv, FR_ENOTFOUND);
    write_ok(&k, b);
    assert_true(db_exists(name));
    assert_int_equal(ifx_count(srv.port, name, wants[1].measurement), 1);
    fr_batch_destroy(b);
    ifx_sink_close(&k);
}

/* Killed: a retryable error at once, on the connection kept from the
 * last write and on new ones. Back: the same batch goes in, and a kept
 * connection the restart broke is replaced without an error. Stopped
 * (SIGSTOP): a timeout within the sink's timeout. */
static void test_server_down_and_back(void **state)
{
    (void)state;
    ifx_exec(srv.port, "CREATE DATABASE downup", NULL);
    ifx_sink k;
    const char *extra[] = {"timeout", "400ms", NULL};
    sink_on(&k, "downup", extra);
    fr_batch *b = hostile_batch(20);
    write_ok(&k, b);

    ifx_stop(&srv);
    fr_error err;
    for (int i = 0; i < 2; i++) {
        int64_t t0 = tst_mono_ms();
        int rv = ifx_sink_write(&k, &b, 1, &err);
        int64_t ms = tst_mono_ms() - t0;
        assert_int_equal(rv, FR_EIO);
        assert_true(fr_sink_retryable(rv));
        assert_true(ms < 400);
        assert_non_null(strstr(err.message, "onnect"));
    }
    ifx_restart(&srv);
    write_ok(&k, b);
    assert_int_equal(ifx_count(srv.port, "downup", wants[0].measurement), 1);

    /* Restarted under a kept connection. */
    uint64_t errors = ifx_stat(&k, "request_errors");
    ifx_stop(&srv);
    ifx_restart(&srv);
    write_ok(&k, b);
    assert_int_equal(ifx_stat(&k, "request_errors"), errors);

    pid_t pid = ifx_pid(&srv);
    assert_int_equal(kill(pid, SIGSTOP), 0);
    int64_t t0 = tst_mono_ms();
    int rv = ifx_sink_write(&k, &b, 1, &err);
    int64_t ms = tst_mono_ms() - t0;
    assert_int_equal(kill(pid, SIGCONT), 0);
    assert_int_equal(rv, FR_ETIMEDOUT);
    assert_true(fr_sink_retryable(rv));
    assert_true(ms >= 390 && ms < 1500);
    assert_non_null(strstr(err.message, "400 ms"));
    write_ok(&k, b);
    assert_int_equal(ifx_count(srv.port, "downup", wants[0].measurement), 1);
    fr_batch_destroy(b);
    ifx_sink_close(&k);
}

static void bad_config(const char *const *kv, int code, const char *key, const char *words)
{
    ifx_sink k;
    fr_error err;
    int rv = ifx_sink_open(&k, kv, &err);
    if (rv != code || strstr(err.message, words) == NULL) {
        fail_msg("%s: -> %d (want %d): %s: %s", key, rv, code, err.where, err.message);
    }
    char where[200];
    snprintf(where, sizeof(where), "workflow.collect.publish[0].config.%s", key);
    assert_string_equal(err.where, where);
}

static void test_bad_config(void **state)
{
    (void)state;
    const char *no_db[] = {"host", "127.0.0.1", NULL};
    bad_config(no_db, FR_ECONFIG, "database", "required");
    const char *empty_db[] = {"database", "", NULL};
    bad_config(empty_db, FR_ECONFIG, "database", "required");
    const char *slash[] = {"database", "a/b", NULL};
    bad_config(slash, FR_ECONFIG, "database", "not a name");
    const char *dots[] = {"database", "..", NULL};
    bad_config(dots, FR_ECONFIG, "database", "not a name");
    const char *rp[] = {"database", "x", "retention", "a\\b", NULL};
    bad_config(rp, FR_ECONFIG, "retention", "not a name");
    const char *port0[] = {"database", "x", "port", "0", NULL};
    bad_config(port0, FR_ECONFIG, "port", "port");
    const char *port_big[] = {"database", "x", "port", "70000", NULL};
    bad_config(port_big, FR_ECONFIG, "port", "port");
    const char *unknown[] = {"database", "x", "hots", "a", NULL};
    bad_config(unknown, FR_EUNKNOWN, "hots", "hots");
    const char *prec[] = {"database", "x", "precision", "ps", NULL};
    bad_config(prec, FR_ECONFIG, "precision", "precision");
    const char *body[] = {"database", "x", "max_body", "10", NULL};
    bad_config(body, FR_ECONFIG, "max_body", "max_body");
    const char *gz[] = {"database", "x", "gzip", "maybe", NULL};
    bad_config(gz, FR_ECONFIG, "gzip", "gzip");
    const char *timeout[] = {"database", "x", "timeout", "soon", NULL};
    bad_config(timeout, FR_ECONFIG, "timeout", "timeout");
    const char *ca[] = {"database", "x", "https", "true", "ca_file", "/nonexistent/ca.pem", NULL};
    bad_config(ca, FR_ECONFIG, "ca_file", "/nonexistent/ca.pem");
    const char *noca[] = {"database", "x", "https", "true", "ca_file", "", NULL};
    bad_config(noca, FR_ECONFIG, "ca_file", "skip-verify");
    const char *host[] = {"database", "x", "host", "", NULL};
    bad_config(host, FR_ECONFIG, "host", "host");
    /* snap's spellings arrive as fresco's: isMultiFields is not taken,
     * skip-verify and createDatabase are. */
    const char *snap[] = {"database", "x", "isMultiFields", "true", NULL};
    bad_config(snap, FR_EUNKNOWN, "isMultiFields", "is_multi_fields");
    ifx_sink k;
    fr_error err;
    const char *ok[] = {"database",  "x",    "skip-verify", "true",     "createDatabase",
                        "true",      "user", "u",           "password", "p",
                        "retention", "",     "MaxBody",     "4MiB",     NULL};
    int rv = ifx_sink_open(&k, ok, &err);
    if (rv != 0) {
        fail_msg("%s: %s", err.where, err.message);
    }
    ifx_sink_close(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types_plain),
        cmocka_unit_test(test_types_gzip),
        cmocka_unit_test(test_resend_stored_once),
        cmocka_unit_test(test_unstorable_dropped),
        cmocka_unit_test(test_refused_points_permanent),
        cmocka_unit_test(test_retention_policy),
        cmocka_unit_test(test_split_at_max_body),
        cmocka_unit_test(test_precision),
        cmocka_unit_test(test_create_database),
        cmocka_unit_test(test_server_down_and_back),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
