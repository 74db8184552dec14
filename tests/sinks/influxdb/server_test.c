/* The influxdb sink against InfluxDB servers set up otherwise, one per
 * test: with authentication (no credentials and a wrong password are
 * retryable errors that say so; a user who may write but not create
 * databases still writes, with create_database on), over HTTPS (a
 * certificate not checked, checked against its CA, refused by another
 * CA; plain HTTP to the HTTPS port is not taken for refused points), and
 * with a small max-body-size (a body the server finds too big goes again
 * in halves; a single point over it is a permanent error). */
#include "influx_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "influxdb/http.h"

#define T0 1700000000000000000LL

typedef struct ctx {
    ifx_server srv;
    char port[16];
    char *certs;
} ctx;

static int teardown(void **state)
{
    ctx *c = *state;
    ifx_destroy(&c->srv);
    if (c->certs != NULL) {
        tst_rmtree(c->certs);
        free(c->certs);
    }
    free(c);
    return 0;
}

static ctx *start(const char *const *opts)
{
    ctx *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    ifx_start(&c->srv, opts);
    snprintf(c->port, sizeof(c->port), "%d", c->srv.port);
    return c;
}

static void sink_on(ctx *c, ifx_sink *k, const char *const *extra)
{
    const char *kv[40] = {"host", "127.0.0.1", "port", c->port};
    size_t n = 4;
    for (size_t i = 0; extra[i] != NULL; i++) {
        kv[n++] = extra[i];
    }
    kv[n] = NULL;
    fr_error err;
    int rv = ifx_sink_open(k, kv, &err);
    if (rv != 0) {
        fail_msg("open: %s: %s", err.where, err.message);
    }
}

static fr_batch *small_batch(const char *ns, int n)
{
    fr_batch *b = fr_batch_new("t", "node-1", 1);
    assert_non_null(b);
    for (int i = 0; i < n; i++) {
        assert_non_null(fr_batch_add(b, ns, T0 + i, fr_val_i64(i), "B"));
    }
    return b;
}

/* ---- authentication ------------------------------------------------------ */

static int auth_setup(void **state)
{
    static const char *const opts[] = {"--auth", NULL};
    *state = start(opts);
    return 0;
}

static void test_auth(void **state)
{
    ctx *c = *state;
    fr_batch *b = small_batch("/auth/x", 3);
    fr_error err;

    /* The first user may be made without credentials (until then the
     * server lets every request through). */
    ifx_exec(c->srv.port, "CREATE USER \"admin\" WITH PASSWORD 'pw' WITH ALL PRIVILEGES", NULL);
    const char *admin = "u=admin&p=pw";
    ifx_exec(c->srv.port, "CREATE USER \"writer\" WITH PASSWORD 'w p:\xc3\xa4'", admin);
    ifx_exec(c->srv.port, "CREATE DATABASE authdb", admin);
    ifx_exec(c->srv.port, "GRANT WRITE ON authdb TO \"writer\"", admin);

    ifx_sink k;
    const char *anon[] = {"database", "authdb", NULL};
    sink_on(c, &k, anon);
    int rv = ifx_sink_write(&k, &b, 1, &err);
    if (rv != FR_EREMOTE) {
        fail_msg("write -> %d: %s", rv, err.message);
    }
    assert_true(fr_sink_retryable(rv));
    assert_non_null(strstr(err.message, "HTTP 401"));
    assert_non_null(strstr(err.message, "check user and password"));
    ifx_sink_close(&k);

    const char *wrong[] = {"database", "authdb", "user", "writer", "password", "nope", NULL};
    sink_on(c, &k, wrong);
    rv = ifx_sink_write(&k, &b, 1, &err);
    assert_int_equal(rv, FR_EREMOTE);
    assert_non_null(strstr(err.message, "HTTP 401"));
    assert_non_null(strstr(err.message, "authorization failed"));
    ifx_sink_close(&k);

    /* May write, may not create databases: CREATE DATABASE is refused
     * (403), the write goes in all the same. */
    const char *writer[] = {"database",     "authdb",          "user", "writer", "password",
                            "w p:\xc3\xa4", "create_database", "true", NULL};
    sink_on(c, &k, writer);
    if ((rv = ifx_sink_write(&k, &b, 1, &err)) != 0) {
        fail_msg("write -> %d: %s", rv, err.message);
    }
    assert_int_equal(ifx_stat(&k, "points"), 3);
    ifx_sink_close(&k);

    yarn_json_doc doc;
    ifx_query(c->srv.port, "authdb", "SELECT COUNT(\"value\") FROM \"auth/x\"", admin, &doc);
    const yarn_json_node *s = yarn_json_first(&doc, ifx_series(&doc));
    const yarn_json_node *row = yarn_json_first(&doc, yarn_json_get(&doc, s, "values"));
    assert_int_equal(yarn_json_next(&doc, yarn_json_first(&doc, row))->i, 3);
    yarn_json_free(&doc);
    fr_batch_destroy(b);
}

/* ---- HTTPS -------------------------------------------------------------- */

/* A self-signed EC certificate for localhost and 127.0.0.1 in dir. */
static void make_cert(const char *dir, const char *name)
{
    char key[512], crt[512], log[512];
    snprintf(key, sizeof(key), "%s/%s.key", dir, name);
    snprintf(crt, sizeof(crt), "%s/%s.pem", dir, name);
    snprintf(log, sizeof(log), "%s/openssl.log", dir);
    char *argv[] = {"/usr/bin/env",
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=localhost",
                    "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout",
                    key,
                    "-out",
                    crt,
                    NULL};
    pid_t pid = tst_spawn(argv, log);
    assert_true(pid > 0);
    int st = tst_stop(pid, 0, 20000);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fail_msg("openssl req failed: %s", tst_slurp(log));
    }
}

static char cert[512], key[512], other[512];

static int https_setup(void **state)
{
    char *dir = tst_tmpdir("fresco-influx-certs");
    assert_non_null(dir);
    make_cert(dir, "server");
    make_cert(dir, "other");
    snprintf(cert, sizeof(cert), "%s/server.pem", dir);
    snprintf(key, sizeof(key), "%s/server.key", dir);
    snprintf(other, sizeof(other), "%s/other.pem", dir);
    const char *const opts[] = {"--https", cert, key, NULL};
    ctx *c = start(opts);
    c->certs = dir;
    *state = c;
    return 0;
}

/* SELECT through the sink's own client (the plain helper has no TLS). */
static void check_over_tls(ctx *c, const char *db, const char *want)
{
    influx_http *h;
    influx_http_conf hc = {.host = "127.0.0.1",
                           .port = c->srv.port,
                           .https = true,
                           .skip_verify = true,
                           .timeout_ms = 5000};
    fr_error err;
    assert_fr_ok(influx_http_open(&h, &hc, &err));
    char q[256], eq[512], uri[700];
    snprintf(q, sizeof(q), "SELECT COUNT(\"value\") FROM \"tls/x\"");
    ifx_urlencode(q, eq, sizeof(eq));
    snprintf(uri, sizeof(uri), "/query?epoch=ns&db=%s&q=%s", db, eq);
    influx_http_res res;
    assert_fr_ok(influx_http_request(h, "GET", uri, NULL, NULL, NULL, 0, &res, &err));
    assert_int_equal(res.status, 200);
    assert_true(res.from_influxdb);
    if (strstr(res.body, want) == NULL) {
        fail_msg("%s: want %s in %s", q, want, res.body);
    }
    influx_http_destroy(h);
}

static void test_https(void **state)
{
    ctx *c = *state;
    fr_batch *b = small_batch("/tls/x", 4);
    fr_error err;
    ifx_sink k;

    const char *nocheck[] = {"database",        "tlsdb", "https", "true", "skip-verify", "true",
                             "create_database", "true",  "gzip",  "true", NULL};
    sink_on(c, &k, nocheck);
    int rv = ifx_sink_write(&k, &b, 1, &err);
    if (rv != 0) {
        fail_msg("write -> %d: %s", rv, err.message);
    }
    ifx_sink_close(&k);
    check_over_tls(c, "tlsdb", "[[0,4]]");

    const char *checked[] = {"database", "tlsdb",       "https",     "true", "ca_file",
                             cert,       "server_name", "localhost", NULL};
    sink_on(c, &k, checked);
    if ((rv = ifx_sink_write(&k, &b, 1, &err)) != 0) {
        fail_msg("write -> %d: %s", rv, err.message);
    }
    ifx_sink_close(&k);

    const char *wrong_ca[] = {"database", "tlsdb", "https", "true", "ca_file", other, NULL};
    sink_on(c, &k, wrong_ca);
    rv = ifx_sink_write(&k, &b, 1, &err);
    assert_int_equal(rv, FR_ETLS);
    assert_true(fr_sink_retryable(rv));
    ifx_sink_close(&k);

    /* Plain HTTP to the HTTPS port: Go's TLS server answers 400 itself. */
    const char *plain[] = {"database", "tlsdb", NULL};
    sink_on(c, &k, plain);
    rv = ifx_sink_write(&k, &b, 1, &err);
    assert_int_equal(rv, FR_EREMOTE);
    assert_true(fr_sink_retryable(rv));
    assert_non_null(strstr(err.message, "not from InfluxDB"));
    ifx_sink_close(&k);

    check_over_tls(c, "tlsdb", "[[0,4]]");
    fr_batch_destroy(b);
}

/* ---- a small max-body-size ---------------------------------------------- */

static int small_body_setup(void **state)
{
    static const char *const opts[] = {"--max-body", "2000", NULL};
    ctx *c = start(opts);
    ifx_exec(c->srv.port, "CREATE DATABASE bodydb", NULL);
    *state = c;
    return 0;
}

static void test_server_body_limit(void **state)
{
    ctx *c = *state;
    ifx_sink k;
    const char *cfg[] = {"database", "bodydb", "max_body", "64KiB", NULL};
    sink_on(c, &k, cfg);
    fr_batch *b = small_batch("/body/x", 300); /* ~15 KB of line protocol */
    fr_error err;
    int rv = ifx_sink_write(&k, &b, 1, &err);
    if (rv != 0) {
        fail_msg("write -> %d: %s", rv, err.message);
    }
    assert_true(ifx_stat(&k, "splits") >= 7);
    assert_int_equal(ifx_stat(&k, "points"), 300);
    assert_int_equal(ifx_count(c->srv.port, "bodydb", "body/x"), 300);

    /* One point over the server's limit can never go in. */
    char big[3001];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    fr_batch *one = fr_batch_new("t", "node-1", 2);
    assert_non_null(fr_batch_add(one, "/body/big", T0, fr_val_str(big), ""));
    rv = ifx_sink_write(&k, &one, 1, &err);
    assert_int_equal(rv, FR_ETOOBIG);
    assert_false(fr_sink_retryable(rv));
    assert_non_null(strstr(err.message, "HTTP 413"));
    fr_batch_destroy(one);
    fr_batch_destroy(b);
    ifx_sink_close(&k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_auth, auth_setup, teardown),
        cmocka_unit_test_setup_teardown(test_https, https_setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_body_limit, small_body_setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
