/* Control protocol: request/reply over inproc, ipc and tcp (one suite run
 * over each), concurrency, error replies, malformed requests, deadlines,
 * a server that dies mid-request, and tls+tcp with real certificates. */
#include "testsupport.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "fresco/clock.h"
#include "fresco/ctl.h"
#include "fresco/log.h"

/* ---- the ops the test server answers ---- */

static int op_echo(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    return fr_node_pack(args, fr_ctl_reply_packer(r));
}

static int op_fail(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    return fr_ctl_reply_error(r, FR_EINVAL, "bad_manifest", "workflow.collect.metrics[3]",
                              "no plugin offers %s", "/intel/nothing");
}

static int op_plain_error(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    return FR_ENOTFOUND;
}

/* Rendezvous: returns true once `want` handlers are inside at the same time,
 * false if that does not happen within 3 s. Proves requests run at once. */
static pthread_mutex_t rv_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rv_cond = PTHREAD_COND_INITIALIZER;
static int rv_inside;

static int op_rendezvous(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    int64_t want = 0;
    fr_node_get_i64(args, "want", &want);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 3;
    pthread_mutex_lock(&rv_lock);
    rv_inside++;
    pthread_cond_broadcast(&rv_cond);
    bool met = true;
    while (rv_inside < want) {
        if (pthread_cond_timedwait(&rv_cond, &rv_lock, &deadline) != 0) {
            met = rv_inside >= want;
            break;
        }
    }
    pthread_mutex_unlock(&rv_lock);
    if (met) {
        msgpack_pack_true(fr_ctl_reply_packer(r));
    } else {
        msgpack_pack_false(fr_ctl_reply_packer(r));
    }
    return 0;
}

static const fr_ctl_op test_ops[] = {
    {"echo", op_echo, NULL, "returns its args"},
    {"fail", op_fail, NULL, "always an error reply"},
    {"plain_error", op_plain_error, NULL, "returns a code without a reply"},
    {"rendezvous", op_rendezvous, NULL, "waits for others"},
};
#define NOPS (sizeof(test_ops) / sizeof(test_ops[0]))

/* ---- fixture: one transport per group ---- */

typedef struct fixture {
    const char *scheme;
    char url[256];
    fr_ctl_server *srv;
    fr_ctl_client *cli;
} fixture;

static int url_counter;

static void make_url(const char *scheme, char *buf, size_t len)
{
    int n = ++url_counter;
    if (strcmp(scheme, "inproc") == 0) {
        snprintf(buf, len, "inproc://ctl-test-%d", n);
    } else if (strcmp(scheme, "ipc") == 0) {
        snprintf(buf, len, "ipc:///tmp/fresco-ctl-test-%d-%d.sock", (int)getpid(), n);
    } else {
        snprintf(buf, len, "tcp://127.0.0.1:%d", tst_free_port());
    }
}

static int setup(void **state, const char *scheme)
{
    fixture *f = calloc(1, sizeof(*f));
    f->scheme = scheme;
    make_url(scheme, f->url, sizeof(f->url));
    if (fr_ctl_server_start(&f->srv, f->url, NULL, test_ops, NOPS, 4) != 0) {
        return -1;
    }
    if (fr_ctl_client_open(&f->cli, f->url, NULL) != 0) {
        return -1;
    }
    *state = f;
    return 0;
}
static int setup_inproc(void **state)
{
    return setup(state, "inproc");
}
static int setup_ipc(void **state)
{
    return setup(state, "ipc");
}
static int setup_tcp(void **state)
{
    return setup(state, "tcp");
}

static int teardown(void **state)
{
    fixture *f = *state;
    fr_ctl_client_close(f->cli);
    fr_ctl_server_destroy(f->srv);
    free(f);
    return 0;
}

/* Packs {"name": s, "n": i, "nested": {"list": [1, -2, 3.5, true, nil]}}. */
static void pack_args(fr_buf *b, const char *s, int64_t i)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, b, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str(&pk, 4);
    msgpack_pack_str_body(&pk, "name", 4);
    msgpack_pack_str(&pk, strlen(s));
    msgpack_pack_str_body(&pk, s, strlen(s));
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "n", 1);
    msgpack_pack_int64(&pk, i);
    msgpack_pack_str(&pk, 6);
    msgpack_pack_str_body(&pk, "nested", 6);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 4);
    msgpack_pack_str_body(&pk, "list", 4);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_int64(&pk, 1);
    msgpack_pack_int64(&pk, -2);
    msgpack_pack_double(&pk, 3.5);
    msgpack_pack_true(&pk);
    msgpack_pack_nil(&pk);
}

static void test_echo_round_trip(void **state)
{
    fixture *f = *state;
    fr_buf args = FR_BUF_INIT;
    pack_args(&args, "héllo wörld", -42);
    fr_ctl_result res;
    assert_fr_ok(fr_ctl_call(f->cli, "echo", args.data, args.len, 5000, &res));
    const char *name = NULL;
    int64_t n = 0;
    assert_fr_ok(fr_node_get_str(res.result, "name", &name));
    assert_string_equal(name, "héllo wörld");
    assert_fr_ok(fr_node_get_i64(res.result, "n", &n));
    assert_int_equal(n, -42);
    const fr_node *list = fr_node_get(fr_node_get(res.result, "nested"), "list");
    assert_non_null(list);
    assert_int_equal(list->type, FR_NODE_ARRAY);
    assert_int_equal(list->len, 5);
    assert_int_equal(list->v.arr[1].type, FR_NODE_INT);
    assert_int_equal(list->v.arr[1].v.i, -2);
    assert_true(list->v.arr[2].v.f == 3.5);
    assert_int_equal(list->v.arr[4].type, FR_NODE_NIL);
    /* The echoed args re-pack to exactly the bytes sent. */
    fr_buf again = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &again, fr_buf_msgpack_write);
    assert_fr_ok(fr_node_pack(res.result, &pk));
    assert_int_equal(again.len, args.len);
    assert_memory_equal(again.data, args.data, args.len);
    fr_buf_free(&again);
    fr_ctl_result_free(&res);

    /* No args: the handler sees an empty map. */
    assert_fr_ok(fr_ctl_call(f->cli, "echo", NULL, 0, 5000, &res));
    assert_int_equal(res.result->type, FR_NODE_MAP);
    assert_int_equal(res.result->len, 0);
    fr_ctl_result_free(&res);
    fr_buf_free(&args);
}

static void test_error_replies(void **state)
{
    fixture *f = *state;
    fr_ctl_result res;
    assert_int_equal(fr_ctl_call(f->cli, "fail", NULL, 0, 5000, &res), FR_EREMOTE);
    assert_string_equal(res.error_code, "bad_manifest");
    assert_string_equal(res.error_where, "workflow.collect.metrics[3]");
    assert_string_equal(res.error_message, "no plugin offers /intel/nothing");
    fr_ctl_result_free(&res);

    assert_int_equal(fr_ctl_call(f->cli, "plain_error", NULL, 0, 5000, &res), FR_EREMOTE);
    assert_string_equal(res.error_code, "not_found");
    assert_non_null(strstr(res.error_message, "plain_error"));
    fr_ctl_result_free(&res);

    assert_int_equal(fr_ctl_call(f->cli, "no.such.op", NULL, 0, 5000, &res), FR_EREMOTE);
    assert_string_equal(res.error_code, "unknown_op");
    assert_non_null(strstr(res.error_message, "no.such.op"));
    fr_ctl_result_free(&res);

    fr_ctl_server_stats st;
    fr_ctl_server_stats_get(f->srv, &st);
    assert_int_equal(st.unknown_ops, 1);
    assert_true(st.errors >= 3);
}

/* Sends raw bytes on a REQ socket and decodes the reply. */
static int raw_request(const char *url, const void *data, size_t len, fr_ctl_result *res)
{
    nng_socket s;
    assert_int_equal(nng_req0_open(&s), 0);
    assert_int_equal(nng_dial(s, url, NULL, 0), 0);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
    assert_int_equal(nng_send(s, (void *)data, len, 0), 0);
    void *buf = NULL;
    size_t n = 0;
    int rv = nng_recv(s, &buf, &n, NNG_FLAG_ALLOC);
    assert_int_equal(rv, 0);
    rv = fr_ctl_reply_decode(buf, n, res);
    nng_free(buf, n);
    nng_close(s);
    return rv;
}

static void test_malformed_requests(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *bytes;
        size_t len;
        const char *where;
    } bad[] = {
#define BYTES(s) s, sizeof(s) - 1
        {BYTES("\xff\x00\x13"), NULL},   /* not msgpack at all */
        {BYTES("\x81\xa2op"), NULL},     /* truncated */
        {BYTES("\x92\x01\x02"), ""},     /* an array, not a map */
        {BYTES("\x81\xa2op\x05"), "op"}, /* op is not a string */
        {BYTES("\x80"), "op"},           /* no op */
        {BYTES("\x82\xa2op\xa4ping\xa4"
               "args\x01"),
         "args"},                                        /* args not a map */
        {BYTES("\x82\xa2op\xa4ping\xa3xyz\xc0"), "xyz"}, /* unknown key */
        {BYTES("\x81\xa2op\xa4ping\x00"), NULL},         /* trailing bytes */
#undef BYTES
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fr_ctl_result res;
        assert_int_equal(raw_request(f->url, bad[i].bytes, bad[i].len, &res), FR_EREMOTE);
        assert_string_equal(res.error_code, "bad_request");
        if (bad[i].where != NULL) {
            assert_string_equal(res.error_where, bad[i].where);
        }
        fr_ctl_result_free(&res);
    }
    /* ... and it keeps serving. */
    fr_ctl_result res;
    assert_fr_ok(fr_ctl_call(f->cli, "echo", NULL, 0, 5000, &res));
    fr_ctl_result_free(&res);
    fr_ctl_server_stats st;
    fr_ctl_server_stats_get(f->srv, &st);
    assert_int_equal(st.malformed, sizeof(bad) / sizeof(bad[0]));
}

typedef struct call_arg {
    fr_ctl_client *cli;
    int want;
    int rv;
    bool met;
} call_arg;

static void *call_rendezvous(void *p)
{
    call_arg *a = p;
    fr_buf args = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &args, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 4);
    msgpack_pack_str_body(&pk, "want", 4);
    msgpack_pack_int64(&pk, a->want);
    fr_ctl_result res;
    a->rv = fr_ctl_call(a->cli, "rendezvous", args.data, args.len, 10000, &res);
    a->met = a->rv == 0 && res.result->type == FR_NODE_BOOL && res.result->v.b;
    fr_ctl_result_free(&res);
    fr_buf_free(&args);
    return NULL;
}

static void test_concurrent_requests(void **state)
{
    fixture *f = *state;
    pthread_mutex_lock(&rv_lock);
    rv_inside = 0;
    pthread_mutex_unlock(&rv_lock);
    /* Four callers on one client, four server workers: all four handlers
     * must be running at the same moment. */
    pthread_t th[4];
    call_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (call_arg){f->cli, 4, -1, false};
        pthread_create(&th[i], NULL, call_rendezvous, &a[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_fr_ok(a[i].rv);
        assert_true(a[i].met);
    }
}

static void test_deadline_without_server(void **state)
{
    fixture *f = *state;
    char url[256];
    make_url(f->scheme, url, sizeof(url));
    fr_ctl_client *cli = NULL;
    assert_fr_ok(fr_ctl_client_open(&cli, url, NULL));
    fr_ctl_result res;
    int64_t t0 = tst_mono_ms();
    assert_int_equal(fr_ctl_call(cli, "echo", NULL, 0, 300, &res), FR_ETIMEDOUT);
    int64_t took = tst_mono_ms() - t0;
    assert_true(took >= 250);
    assert_non_null(strstr(res.error_message, "within 300 ms"));
    assert_true(took < 5000);
    fr_ctl_client_close(cli);
}

/* ---- a server that dies mid-request (its own process) ---- */

static fr_ctl_client *peer_cli;
static bool peer_answers(void *arg)
{
    fr_ctl_result res;
    int rv = fr_ctl_call(peer_cli, "ping", NULL, 0, 200, &res);
    fr_ctl_result_free(&res);
    return rv == 0;
}

static void test_server_dies_mid_request(void **state)
{
    char url[128], bin[512];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", tst_free_port());
    char *argv[] = {(char *)tst_bin(bin, sizeof(bin), "tests/bus/ctl_peer"), url, NULL};
    pid_t pid = tst_spawn(argv, NULL);
    assert_true(pid > 0);
    assert_fr_ok(fr_ctl_client_open(&peer_cli, url, NULL));
    assert_true(tst_wait_until(peer_answers, NULL, 10000));

    fr_ctl_result res;
    int64_t t0 = tst_mono_ms();
    /* A long deadline: losing the connection must end the wait well
     * before it. */
    assert_int_equal(fr_ctl_call(peer_cli, "die", NULL, 0, 20000, &res), FR_ETIMEDOUT);
    assert_true(tst_mono_ms() - t0 < 10000);
    assert_string_equal(res.error_code, "timeout");
    assert_non_null(strstr(res.error_message, "connection lost"));
    int status = tst_stop(pid, SIGKILL, 5000);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 3);
    fr_ctl_client_close(peer_cli);
}

/* ---- request codec ---- */

static void test_request_codec(void **state)
{
    fr_buf args = FR_BUF_INIT, req = FR_BUF_INIT;
    pack_args(&args, "x", 7);
    assert_fr_ok(fr_ctl_request_encode("task.create", args.data, args.len, &req));
    fr_doc doc;
    const char *op = NULL;
    const fr_node *a = NULL;
    fr_error err;
    assert_fr_ok(fr_ctl_request_decode(req.data, req.len, &doc, &op, &a, &err));
    assert_string_equal(op, "task.create");
    int64_t n = 0;
    assert_fr_ok(fr_node_get_i64(a, "n", &n));
    assert_int_equal(n, 7);
    fr_doc_free(&doc);

    /* Every proper prefix fails cleanly. */
    for (size_t i = 0; i < req.len; i++) {
        assert_true(fr_ctl_request_decode(req.data, i, &doc, &op, &a, &err) < 0);
        assert_null(op);
        fr_doc_free(&doc);
    }
    /* An op that is too long. */
    char longop[100];
    memset(longop, 'x', sizeof(longop) - 1);
    longop[sizeof(longop) - 1] = '\0';
    fr_buf_reset(&req);
    assert_fr_ok(fr_ctl_request_encode(longop, NULL, 0, &req));
    assert_int_equal(fr_ctl_request_decode(req.data, req.len, &doc, &op, &a, &err), FR_EINVAL);
    assert_string_equal(err.where, "op");
    fr_buf_free(&req);
    fr_buf_free(&args);
}

/* ---- tls+tcp ---- */

static char *tls_dir;

static int run(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* A CA, a server certificate for localhost and a client certificate signed
 * by it, plus a second, unrelated CA. */
static int tls_setup(void **state)
{
    tls_dir = tst_tmpdir("fresco-tls");
    if (tls_dir == NULL) {
        return -1;
    }
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "cd %s && exec >openssl.log 2>&1 && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout ca.key -out ca.pem -days 2 -subj /CN=fresco-test-ca && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=other-ca && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout server.key -out server.csr -subj /CN=localhost && "
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext && "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out server.pem -days 2 -extfile san.ext && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout client.key -out client.csr -subj /CN=fresco-client && "
             "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out client.pem -days 2",
             tls_dir);
    return run(cmd) == 0 ? 0 : -1;
}

static int tls_teardown(void **state)
{
    tst_rmtree(tls_dir);
    free(tls_dir);
    return 0;
}

static char *tls_path(const char *name)
{
    static char paths[8][512];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 512, "%s/%s", tls_dir, name);
    return p;
}

/* Calls echo on a fresh client with the given TLS conf; returns the code. */
static int tls_call(const char *url, const fr_tls_conf *conf, int timeout_ms)
{
    fr_ctl_client *cli = NULL;
    int rv = fr_ctl_client_open(&cli, url, conf);
    if (rv != 0) {
        return rv;
    }
    fr_ctl_result res;
    rv = fr_ctl_call(cli, "echo", NULL, 0, timeout_ms, &res);
    fr_ctl_result_free(&res);
    fr_ctl_client_close(cli);
    return rv;
}

static void test_tls_server_auth(void **state)
{
    char url[128];
    snprintf(url, sizeof(url), "tls+tcp://localhost:%d", tst_free_port());
    fr_tls_conf server = {.cert_file = tls_path("server.pem"), .key_file = tls_path("server.key")};
    fr_ctl_server *srv = NULL;
    assert_fr_ok(fr_ctl_server_start(&srv, url, &server, test_ops, NOPS, 2));

    fr_tls_conf good = {.ca_file = tls_path("ca.pem"), .server_name = "localhost"};
    assert_fr_ok(tls_call(url, &good, 5000));

    /* A client that trusts another CA must not get through. */
    fr_tls_conf wrong = {.ca_file = tls_path("other-ca.pem"), .server_name = "localhost"};
    assert_int_not_equal(tls_call(url, &wrong, 1500), 0);

    /* A name the certificate does not carry is refused too. */
    fr_tls_conf badname = {.ca_file = tls_path("ca.pem"), .server_name = "evil.example"};
    assert_int_not_equal(tls_call(url, &badname, 1500), 0);

    /* A plain tcp client cannot talk to a TLS listener. */
    char plain[128];
    snprintf(plain, sizeof(plain), "tcp://localhost:%s", strrchr(url, ':') + 1);
    assert_int_not_equal(tls_call(plain, NULL, 1000), 0);
    fr_ctl_server_destroy(srv);
}

static void test_tls_client_certs(void **state)
{
    char url[128];
    snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", tst_free_port());
    fr_tls_conf server = {.cert_file = tls_path("server.pem"),
                          .key_file = tls_path("server.key"),
                          .ca_file = tls_path("ca.pem"),
                          .require_client_cert = true};
    fr_ctl_server *srv = NULL;
    assert_fr_ok(fr_ctl_server_start(&srv, url, &server, test_ops, NOPS, 2));

    fr_tls_conf with_cert = {.cert_file = tls_path("client.pem"),
                             .key_file = tls_path("client.key"),
                             .ca_file = tls_path("ca.pem"),
                             .server_name = "localhost"};
    assert_fr_ok(tls_call(url, &with_cert, 5000));

    fr_tls_conf no_cert = {.ca_file = tls_path("ca.pem"), .server_name = "localhost"};
    assert_int_not_equal(tls_call(url, &no_cert, 1500), 0);

    /* A client certificate from an untrusted CA: its own self-signed one. */
    fr_tls_conf foreign = {.cert_file = tls_path("other-ca.pem"),
                           .key_file = tls_path("other-ca.key"),
                           .ca_file = tls_path("ca.pem"),
                           .server_name = "localhost"};
    assert_int_not_equal(tls_call(url, &foreign, 1500), 0);
    fr_ctl_server_destroy(srv);
}

static void test_tls_bad_config(void **state)
{
    char url[128];
    snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%d", tst_free_port());
    fr_ctl_server *srv = NULL;
    /* no certificate for a TLS listener */
    assert_int_equal(fr_ctl_server_start(&srv, url, NULL, test_ops, NOPS, 1), FR_ECONFIG);
    assert_null(srv);
    /* a certificate file that does not exist */
    fr_tls_conf missing = {.cert_file = "/nonexistent/fresco.pem"};
    assert_int_equal(fr_ctl_server_start(&srv, url, &missing, test_ops, NOPS, 1), FR_ETLS);
    /* a file that is not a certificate */
    fr_tls_conf garbage = {.cert_file = tls_path("san.ext"), .key_file = tls_path("san.ext")};
    assert_int_equal(fr_ctl_server_start(&srv, url, &garbage, test_ops, NOPS, 1), FR_ETLS);
    /* client certs required but no CA to check them */
    fr_tls_conf noca = {.cert_file = tls_path("server.pem"),
                        .key_file = tls_path("server.key"),
                        .require_client_cert = true};
    assert_int_equal(fr_ctl_server_start(&srv, url, &noca, test_ops, NOPS, 1), FR_ECONFIG);
}

#define TRANSPORT_SUITE                                                                            \
    cmocka_unit_test(test_echo_round_trip), cmocka_unit_test(test_error_replies),                  \
        cmocka_unit_test(test_malformed_requests), cmocka_unit_test(test_concurrent_requests),     \
        cmocka_unit_test(test_deadline_without_server)

int main(void)
{
    fr_log_init("ctl_test", FR_LOG_ERROR, false);
    const struct CMUnitTest suite[] = {TRANSPORT_SUITE};
    const struct CMUnitTest other[] = {
        cmocka_unit_test(test_request_codec),
        cmocka_unit_test(test_server_dies_mid_request),
    };
    const struct CMUnitTest tls[] = {
        cmocka_unit_test(test_tls_server_auth),
        cmocka_unit_test(test_tls_client_certs),
        cmocka_unit_test(test_tls_bad_config),
    };
    int failed = 0;
    const char *schemes[] = {"inproc", "ipc", "tcp"};
    int (*setups[])(void **) = {setup_inproc, setup_ipc, setup_tcp};
    for (int i = 0; i < 3; i++) {
        struct CMUnitTest t[sizeof(suite) / sizeof(suite[0])];
        for (size_t j = 0; j < sizeof(suite) / sizeof(suite[0]); j++) {
            t[j] = suite[j];
            t[j].setup_func = setups[i];
            t[j].teardown_func = teardown;
        }
        char name[32];
        snprintf(name, sizeof(name), "ctl over %s", schemes[i]);
        failed += _cmocka_run_group_tests(name, t, sizeof(t) / sizeof(t[0]), NULL, NULL);
    }
    failed += cmocka_run_group_tests_name("ctl", other, NULL, NULL);
    failed += cmocka_run_group_tests_name("ctl over tls+tcp", tls, tls_setup, tls_teardown);
    nng_fini();
    return failed;
}
