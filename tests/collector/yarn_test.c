/* The yarn plugin against a ResourceManager stand-in: an nng HTTP server
 * started in this process on a loopback port, answering
 * /ws/v1/cluster/scheduler with the fixtures of fixtures/yarn/ (a capacity
 * scheduler with nested queues, the same with a new queue, a truncated
 * answer, a 500). Also the JSON reader and the chunked decoder on their
 * own, and the failures a collect must report: refused connection,
 * timeout, bad status, bad JSON, unexpected shape, oversized answer. */
#include "file_plugin_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/util/platform.h>

#include "yarn/http_get.h"
#include "yarn/json.h"

extern const fr_collector_plugin fr_collector_yarn;

#define NS   "/intel/yarn/"
#define PATH "/ws/v1/cluster/scheduler"

/* The stand-in ResourceManager: serves whatever body and status the test
 * last set. */
typedef struct rm_server {
    nng_http_server *srv;
    nng_mtx *mtx;
    char *body;
    size_t len;
    uint16_t status;
    int hits;
    int port;
} rm_server;

static void rm_handle(nng_aio *aio)
{
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    rm_server *rm = nng_http_handler_get_data(h);
    nng_http_res *res = NULL;
    int rv = nng_http_res_alloc(&res);
    if (rv == 0) {
        nng_mtx_lock(rm->mtx);
        rm->hits++;
        if ((rv = nng_http_res_set_status(res, rm->status)) == 0 &&
            (rv = rm->len > 0 ? nng_http_res_copy_data(res, rm->body, rm->len)
                              : nng_http_res_set_header(res, "Content-Length", "0")) == 0) {
            rv = nng_http_res_set_header(res, "Content-Type", "application/json");
        }
        nng_mtx_unlock(rm->mtx);
    }
    if (rv != 0) {
        nng_http_res_free(res);
        nng_aio_finish(aio, rv);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

static void rm_serve_text(rm_server *rm, uint16_t status, const char *text)
{
    nng_mtx_lock(rm->mtx);
    free(rm->body);
    rm->body = strdup(text);
    assert_non_null(rm->body);
    rm->len = strlen(text);
    rm->status = status;
    nng_mtx_unlock(rm->mtx);
}

static void rm_serve(rm_server *rm, uint16_t status, const char *fixture)
{
    char rel[256], path[4096];
    snprintf(rel, sizeof(rel), "tests/collector/fixtures/yarn/%s", fixture);
    char *text = harness_slurp(tst_src(path, sizeof(path), rel));
    rm_serve_text(rm, status, text);
    free(text);
}

static void rm_start(rm_server *rm)
{
    memset(rm, 0, sizeof(*rm));
    assert_int_equal(nng_mtx_alloc(&rm->mtx), 0);
    nng_url *url;
    assert_int_equal(nng_url_parse(&url, "http://127.0.0.1:0"), 0);
    assert_int_equal(nng_http_server_hold(&rm->srv, url), 0);
    nng_url_free(url);
    nng_http_handler *h;
    assert_int_equal(nng_http_handler_alloc(&h, PATH, rm_handle), 0);
    assert_int_equal(nng_http_handler_set_data(h, rm, NULL), 0);
    assert_int_equal(nng_http_server_add_handler(rm->srv, h), 0);
    assert_int_equal(nng_http_server_start(rm->srv), 0);
    nng_sockaddr sa;
    assert_int_equal(nng_http_server_get_addr(rm->srv, &sa), 0);
    rm->port = ntohs(sa.s_in.sa_port);
    assert_true(rm->port > 0);
    rm_serve(rm, 200, "scheduler.json");
}

static void rm_stop(rm_server *rm)
{
    nng_http_server_stop(rm->srv);
    nng_http_server_release(rm->srv);
    nng_mtx_free(rm->mtx);
    free(rm->body);
    memset(rm, 0, sizeof(*rm));
}

typedef struct ctx {
    rm_server rm;
    char url_kv[160];
    char url[128];
    harness h;
} ctx;

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    rm_start(&c->rm);
    snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%d" PATH, c->rm.port);
    snprintf(c->url_kv, sizeof(c->url_kv), "url=%s", c->url);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    harness_close(&c->h);
    rm_stop(&c->rm);
    free(c);
    return 0;
}

static void open_plugin(ctx *c)
{
    const char *kv[] = {c->url_kv, NULL};
    assert_fr_ok(harness_open(&c->h, &fr_collector_yarn, kv));
}

static void test_description(void **state)
{
    (void)state;
    harness_check_description(&fr_collector_yarn);
    harness_check_docs(&fr_collector_yarn);
    assert_string_equal(fr_collector_yarn.name, "yarn");
    assert_string_equal(fr_collector_yarn.ns_prefix, "/intel/yarn");
    assert_int_equal(fr_collector_yarn.ncatalog, 21);
    const char *const names[] = {"absolutecapacity",
                                 "absolutemaxcapacity",
                                 "absoluteusedcapacity",
                                 "capacity",
                                 "maxactiveapplications",
                                 "maxactiveapplicationsperuser",
                                 "maxapplications",
                                 "maxapplicationsperuser",
                                 "maxcapacity",
                                 "numactiveapplications",
                                 "numapplications",
                                 "numcontainers",
                                 "numpendingapplications",
                                 "usedcapacity",
                                 "usedresources",
                                 "userlimit",
                                 "userlimitfactor",
                                 "resources_memory",
                                 "resources_vcores"};
    for (size_t i = 0; i < 19; i++) {
        char ns[128];
        snprintf(ns, sizeof(ns), NS "queue/*/%s", names[i]);
        assert_string_equal(fr_collector_yarn.catalog[i].ns, ns);
        assert_string_equal(fr_collector_yarn.catalog[i].dyn[0].name, "queue");
    }
    assert_string_equal(fr_collector_yarn.catalog[19].ns, NS "schedulerinfo/capacity");
    assert_string_equal(fr_collector_yarn.catalog[20].ns, NS "schedulerinfo/maxcapacity");
}

static void test_collect_everything(void **state)
{
    ctx *c = *state;
    open_plugin(c);
    assert_fr_ok(harness_collect1(&c->h, NS "*", HARNESS_SEC(100)));
    harness *h = &c->h;

    assert_true(harness_f64(h, NS "schedulerinfo/capacity") == 100.0);
    assert_true(harness_f64(h, NS "schedulerinfo/maxcapacity") == 100.0);

    /* A leaf below root. */
    assert_true(harness_f64(h, NS "queue/default/absolutecapacity") == 40.0);
    assert_true(harness_f64(h, NS "queue/default/absolutemaxcapacity") == 100.0);
    assert_true(harness_f64(h, NS "queue/default/absoluteusedcapacity") == 25.0);
    assert_true(harness_f64(h, NS "queue/default/capacity") == 40.0);
    assert_true(harness_f64(h, NS "queue/default/maxcapacity") == 100.0);
    assert_true(harness_f64(h, NS "queue/default/usedcapacity") == 62.5);
    assert_int_equal(harness_i64(h, NS "queue/default/maxactiveapplications"), 1);
    assert_int_equal(harness_i64(h, NS "queue/default/maxactiveapplicationsperuser"), 1);
    assert_int_equal(harness_i64(h, NS "queue/default/maxapplications"), 4000);
    assert_int_equal(harness_i64(h, NS "queue/default/maxapplicationsperuser"), 4000);
    assert_int_equal(harness_i64(h, NS "queue/default/numactiveapplications"), 2);
    assert_int_equal(harness_i64(h, NS "queue/default/numapplications"), 2);
    assert_int_equal(harness_i64(h, NS "queue/default/numcontainers"), 4);
    assert_int_equal(harness_i64(h, NS "queue/default/numpendingapplications"), 0);
    assert_true(harness_f64(h, NS "queue/default/userlimit") == 100.0);
    assert_true(harness_f64(h, NS "queue/default/userlimitfactor") == 1.0);
    assert_int_equal(harness_i64(h, NS "queue/default/resources_memory"), 4096);
    assert_int_equal(harness_i64(h, NS "queue/default/resources_vcores"), 4);
    const fr_metric *m = harness_get(h, NS "queue/default/usedresources");
    assert_int_equal(m->value.type, FR_VAL_STRING);
    assert_string_equal(m->value.v.s.ptr, "<memory:4096, vCores:4>");
    assert_int_equal(m->ts, HARNESS_SEC(100));
    assert_int_equal(m->ntags, 1);
    assert_string_equal(m->tags[0].key, "queue_path");
    assert_string_equal(m->tags[0].value, "root.default");

    /* A parent queue has only the common fields. */
    assert_true(harness_f64(h, NS "queue/analytics/capacity") == 60.0);
    assert_true(harness_f64(h, NS "queue/analytics/usedcapacity") == 20.833334);
    assert_int_equal(harness_i64(h, NS "queue/analytics/numapplications"), 1);
    assert_int_equal(harness_i64(h, NS "queue/analytics/resources_memory"), 2048);
    assert_null(harness_find(h, NS "queue/analytics/maxapplications"));
    assert_null(harness_find(h, NS "queue/analytics/numcontainers"));
    assert_null(harness_find(h, NS "queue/analytics/userlimit"));

    /* Leaves two levels down, named by their own names. */
    assert_true(harness_f64(h, NS "queue/batch/absolutecapacity") == 42.0);
    assert_true(harness_f64(h, NS "queue/batch/absolutemaxcapacity") == 60.0);
    assert_true(harness_f64(h, NS "queue/batch/userlimitfactor") == 2.0);
    assert_int_equal(harness_i64(h, NS "queue/batch/maxapplicationsperuser"), 8400);
    assert_int_equal(harness_i64(h, NS "queue/adhoc/numpendingapplications"), 3);
    assert_true(harness_f64(h, NS "queue/adhoc/userlimitfactor") == 1.5);
    assert_true(harness_f64(h, NS "queue/adhoc/maxcapacity") == 50.0);
    m = harness_get(h, NS "queue/adhoc/capacity");
    assert_string_equal(m->tags[0].value, "root.analytics.adhoc");
    assert_string_equal(m->unit, "percent");
    assert_string_equal(harness_get(h, NS "queue/adhoc/resources_memory")->unit, "MB");

    /* 3 leaves x 19 + the parent's 10 + 2 scheduler metrics; no root queue. */
    assert_int_equal(h->batch->nmetrics, 3 * 19 + 10 + 2);
    assert_null(harness_find(h, NS "queue/root/capacity"));
    assert_int_equal(c->rm.hits, 1);
}

static size_t count_prefix(const harness *h, const char *prefix)
{
    size_t n = 0;
    for (uint32_t i = 0; i < h->batch->nmetrics; i++) {
        n += strncmp(h->batch->metrics[i].ns, prefix, strlen(prefix)) == 0;
    }
    return n;
}

static void test_wildcards(void **state)
{
    ctx *c = *state;
    open_plugin(c);
    harness *h = &c->h;

    assert_fr_ok(harness_collect1(h, NS "queue/*/capacity", HARNESS_SEC(1)));
    assert_int_equal(h->batch->nmetrics, 4);
    assert_true(harness_f64(h, NS "queue/batch/capacity") == 70.0);
    assert_true(harness_f64(h, NS "queue/adhoc/capacity") == 30.0);

    assert_fr_ok(harness_collect1(h, NS "queue/(default;adhoc)/numapplications", HARNESS_SEC(2)));
    assert_int_equal(h->batch->nmetrics, 2);
    assert_int_equal(harness_i64(h, NS "queue/default/numapplications"), 2);
    assert_int_equal(harness_i64(h, NS "queue/adhoc/numapplications"), 0);

    assert_fr_ok(harness_collect1(h, NS "schedulerinfo/*", HARNESS_SEC(3)));
    assert_int_equal(h->batch->nmetrics, 2);

    assert_fr_ok(harness_collect1(h, NS "queue/batch/*", HARNESS_SEC(4)));
    assert_int_equal(h->batch->nmetrics, 19);
    assert_int_equal(count_prefix(h, NS "queue/batch/"), 19);

    const char *two[] = {NS "queue/*/resources_vcores", NS "schedulerinfo/maxcapacity", NULL};
    assert_fr_ok(harness_collect(h, two, HARNESS_SEC(5)));
    assert_int_equal(h->batch->nmetrics, 5);
    assert_int_equal(harness_i64(h, NS "queue/batch/resources_vcores"), 2);

    /* Nothing of ours asked for: no request at all. */
    int hits = c->rm.hits;
    assert_fr_ok(harness_collect1(h, "/intel/procfs/*", HARNESS_SEC(6)));
    assert_int_equal(h->batch->nmetrics, 0);
    assert_int_equal(c->rm.hits, hits);
}

static void test_new_queue_appears(void **state)
{
    ctx *c = *state;
    open_plugin(c);
    harness *h = &c->h;
    assert_fr_ok(harness_collect1(h, NS "queue/*/capacity", HARNESS_SEC(1)));
    assert_int_equal(h->batch->nmetrics, 4);
    assert_null(harness_find(h, NS "queue/ml/capacity"));

    rm_serve(&c->rm, 200, "scheduler-newqueue.json");
    assert_fr_ok(harness_collect1(h, NS "queue/*", HARNESS_SEC(2)));
    assert_true(harness_f64(h, NS "queue/ml/capacity") == 20.0);
    assert_true(harness_f64(h, NS "queue/ml/absolutecapacity") == 12.0);
    assert_int_equal(harness_i64(h, NS "queue/ml/maxapplications"), 1200);
    assert_true(harness_f64(h, NS "queue/batch/capacity") == 50.0);
    assert_int_equal(harness_i64(h, NS "queue/default/numapplications"), 3);
    assert_int_equal(harness_i64(h, NS "queue/default/numpendingapplications"), 1);
    assert_int_equal(h->batch->nmetrics, 4 * 19 + 10);
    assert_string_equal(harness_get(h, NS "queue/ml/usedcapacity")->tags[0].value,
                        "root.analytics.ml");

    /* And goes again when the ResourceManager drops it. */
    rm_serve(&c->rm, 200, "scheduler.json");
    assert_fr_ok(harness_collect1(h, NS "queue/*/capacity", HARNESS_SEC(3)));
    assert_null(harness_find(h, NS "queue/ml/capacity"));
    assert_int_equal(h->batch->nmetrics, 4);
}

static void test_same_name_twice_uses_paths(void **state)
{
    ctx *c = *state;
    open_plugin(c);
    rm_serve_text(&c->rm, 200,
                  "{\"scheduler\":{\"schedulerInfo\":{\"type\":\"capacityScheduler\","
                  "\"capacity\":100,\"maxCapacity\":100,\"queueName\":\"root\",\"queues\":{"
                  "\"queue\":[{\"queueName\":\"a\",\"capacity\":50,\"queues\":{\"queue\":"
                  "{\"queueName\":\"x\",\"capacity\":100}}},"
                  "{\"queueName\":\"b\",\"capacity\":50,\"queues\":{\"queue\":["
                  "{\"queueName\":\"x\",\"capacity\":40},{\"queueName\":\"y\",\"capacity\":60}"
                  "]}}]}}}}");
    assert_fr_ok(harness_collect1(&c->h, NS "queue/*/capacity", HARNESS_SEC(1)));
    harness *h = &c->h;
    assert_int_equal(h->batch->nmetrics, 5);
    assert_true(harness_f64(h, NS "queue/root.a.x/capacity") == 100.0);
    assert_true(harness_f64(h, NS "queue/root.b.x/capacity") == 40.0);
    assert_true(harness_f64(h, NS "queue/y/capacity") == 60.0);
    assert_true(harness_f64(h, NS "queue/a/capacity") == 50.0);
}

/* The failed collect names the URL and says what was wrong. */
static void expect_failure(ctx *c, int code, const char *says)
{
    int rv = harness_collect1(&c->h, NS "*", HARNESS_SEC(1));
    if (rv != code || strstr(c->h.err.message, says) == NULL ||
        strstr(c->h.err.message, c->url) == NULL || strncmp(c->h.err.message, "yarn: ", 6) != 0) {
        fail_msg("expected %d with '%s' and the url, got %d: %s", code, says, rv, c->h.err.message);
    }
    assert_string_equal(c->h.err.where, c->url);
}

static void test_http_500(void **state)
{
    ctx *c = *state;
    open_plugin(c);
    rm_serve(&c->rm, 500, "error500.json");
    expect_failure(c, FR_EREMOTE, "HTTP 500 Internal Server Error");
    rm_serve(&c->rm, 404, "error500.json");
    expect_failure(c, FR_EREMOTE, "HTTP 404");
    /* The next good answer collects again. */
    rm_serve(&c->rm, 200, "scheduler.json");
    assert_fr_ok(harness_collect1(&c->h, NS "schedulerinfo/capacity", HARNESS_SEC(2)));
}

static void test_bad_json(void **state)
{
    ctx *c = *state;
    open_plugin(c);
    rm_serve(&c->rm, 200, "malformed.json");
    expect_failure(c, FR_ETRUNC,
                   "answer is not JSON: line 53 column 26: input ends inside a string");
    rm_serve_text(&c->rm, 200, "<html><body>Not the REST API</body></html>");
    expect_failure(c, FR_EINVAL, "answer is not JSON: line 1 column 1: expected a value");
    rm_serve_text(&c->rm, 200, "");
    expect_failure(c, FR_ETRUNC, "answer is not JSON: line 1 column 1: no JSON value");
    rm_serve_text(&c->rm, 200, "{\"scheduler\":{}} x");
    expect_failure(c, FR_ETRAILING, "bytes after the JSON value");
}

static void test_unexpected_shape(void **state)
{
    ctx *c = *state;
    open_plugin(c);
    rm_serve_text(&c->rm, 200, "[1,2,3]");
    expect_failure(c, FR_EPROTO, "unexpected answer: no scheduler.schedulerInfo object");
    rm_serve_text(&c->rm, 200,
                  "{\"scheduler\":{\"schedulerInfo\":{\"type\":\"fairScheduler\","
                  "\"rootQueue\":{\"queueName\":\"root\"}}}}");
    expect_failure(c, FR_EPROTO, "scheduler type 'fairScheduler' is not supported");
    rm_serve_text(&c->rm, 200,
                  "{\"scheduler\":{\"schedulerInfo\":{\"type\":\"capacityScheduler\","
                  "\"capacity\":\"full\",\"maxCapacity\":100}}}");
    expect_failure(c, FR_EPROTO, "scheduler.schedulerInfo.capacity is string, expected a number");
    rm_serve_text(&c->rm, 200,
                  "{\"scheduler\":{\"schedulerInfo\":{\"type\":\"capacityScheduler\","
                  "\"capacity\":100,\"maxCapacity\":100,\"queues\":{\"queue\":["
                  "{\"queueName\":\"q\",\"numContainers\":2.5}]}}}}");
    expect_failure(c, FR_EPROTO, "queue root.q: numContainers is 2.5, expected a whole number");
    rm_serve_text(&c->rm, 200,
                  "{\"scheduler\":{\"schedulerInfo\":{\"type\":\"capacityScheduler\","
                  "\"capacity\":100,\"maxCapacity\":100,\"queues\":{\"queue\":["
                  "{\"capacity\":1}]}}}}");
    expect_failure(c, FR_EPROTO, "root: a child queue has no queueName");
    rm_serve_text(&c->rm, 200,
                  "{\"scheduler\":{\"schedulerInfo\":{\"type\":\"capacityScheduler\","
                  "\"capacity\":100,\"maxCapacity\":100,\"queues\":{\"queue\":["
                  "{\"queueName\":\"q\",\"resourcesUsed\":7}]}}}}");
    expect_failure(c, FR_EPROTO, "queue root.q: resourcesUsed is number, expected an object");
}

static void test_connection_refused(void **state)
{
    ctx *c = *state;
    int port = tst_free_port();
    assert_true(port > 0);
    snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%d" PATH, port);
    snprintf(c->url_kv, sizeof(c->url_kv), "url=%s", c->url);
    open_plugin(c);
    int rv = harness_collect1(&c->h, NS "*", HARNESS_SEC(1));
    assert_int_not_equal(rv, 0);
    if (strstr(c->h.err.message, c->url) == NULL ||
        strstr(c->h.err.message, "connecting: Connection refused") == NULL) {
        fail_msg("unclear: %s", c->h.err.message);
    }
    assert_int_equal(c->h.batch->nmetrics, 0);
}

static void test_timeout(void **state)
{
    ctx *c = *state;
    /* Listens, so the connection is made, but never answers. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 4), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    snprintf(c->url, sizeof(c->url), "http://127.0.0.1:%d" PATH, ntohs(sa.sin_port));
    snprintf(c->url_kv, sizeof(c->url_kv), "url=%s", c->url);
    const char *kv[] = {c->url_kv, "timeout=300ms", NULL};
    assert_fr_ok(harness_open(&c->h, &fr_collector_yarn, kv));
    int64_t t0 = tst_mono_ms();
    expect_failure(c, FR_ETIMEDOUT, "no answer within 300 ms");
    int64_t took = tst_mono_ms() - t0;
    assert_true(took >= 250 && took < 3000);
    close(fd);
}

static void test_max_size(void **state)
{
    ctx *c = *state;
    const char *kv[] = {c->url_kv, "max_size=1KiB", NULL};
    assert_fr_ok(harness_open(&c->h, &fr_collector_yarn, kv));
    expect_failure(c, FR_ETOOBIG, "is over max_size (1024 bytes)");
}

static void test_config(void **state)
{
    ctx *c = *state;
    void *cfg = NULL;
    fr_error err;
    const char *keys[] = {"url", "timout"};
    const char *values[] = {c->url, "1s"};
    assert_int_equal(fr_plugin_config_load(&fr_collector_yarn, keys, values, 2,
                                           "workflow.collect.config./intel/yarn", &cfg, &err),
                     FR_EUNKNOWN);
    assert_non_null(strstr(err.message, "timout"));
    assert_null(cfg);

    const char *bad_keys[] = {"timeout"};
    const char *bad_values[] = {"soon"};
    assert_int_equal(fr_plugin_config_load(&fr_collector_yarn, bad_keys, bad_values, 1,
                                           "workflow.collect.config./intel/yarn", &cfg, &err),
                     FR_ECONFIG);
    assert_null(cfg);

    /* Defaults: the local ResourceManager, 2 s. */
    assert_fr_ok(fr_plugin_config_load(&fr_collector_yarn, NULL, NULL, 0, "w", &cfg, &err));
    fr_plugin_config_free(&fr_collector_yarn, cfg);
    cfg = NULL;

    /* A URL nng cannot use is refused at init. */
    const char *https[] = {"url=https://rm:8090" PATH, NULL};
    assert_int_equal(harness_open(&c->h, &fr_collector_yarn, https), FR_ECONFIG);
    assert_string_equal(c->h.err.where, "url");
    assert_non_null(strstr(c->h.err.message, "scheme 'https' is not supported"));
    harness_close(&c->h);
    const char *junk[] = {"url=not a url", NULL};
    assert_int_equal(harness_open(&c->h, &fr_collector_yarn, junk), FR_ECONFIG);
    assert_non_null(strstr(c->h.err.message, "is not a URL"));
    harness_close(&c->h);
    const char *nohost[] = {"hostname=rm/x", NULL};
    assert_int_equal(harness_open(&c->h, &fr_collector_yarn, nohost), FR_ECONFIG);
    assert_string_equal(c->h.err.where, "hostname");
    harness_close(&c->h);
}

static void test_snap_hostname_port(void **state)
{
    ctx *c = *state;
    char port[32];
    snprintf(port, sizeof(port), "port=%d", c->rm.port);
    const char *kv[] = {"hostname=127.0.0.1", port, "url=http://unused:1/", NULL};
    assert_fr_ok(harness_open(&c->h, &fr_collector_yarn, kv));
    assert_fr_ok(harness_collect1(&c->h, NS "queue/default/capacity", HARNESS_SEC(1)));
    assert_true(harness_f64(&c->h, NS "queue/default/capacity") == 40.0);
}

/* The reader on its own. */
static void test_json_reader(void **state)
{
    (void)state;
    yarn_json_doc doc;
    fr_error err;
    const char *ok = " {\"a\": [1, -2.5e1, 0, true, false, null, \"x\\u00e9\\ud83d\\ude00\\n\"],"
                     " \"b\": {}, \"c\": [], \"big\": 12345678901234567890, \"a\": 9} ";
    assert_fr_ok(yarn_json_parse(ok, strlen(ok), &doc, &err));
    const yarn_json_node *root = yarn_json_root(&doc);
    assert_int_equal(root->type, YARN_JSON_OBJECT);
    assert_int_equal(root->count, 5);
    const yarn_json_node *a = yarn_json_get(&doc, root, "a");
    assert_int_equal(a->type, YARN_JSON_ARRAY);
    assert_int_equal(a->count, 7);
    const yarn_json_node *e = yarn_json_first(&doc, a);
    assert_true(e->is_int && e->i == 1);
    e = yarn_json_next(&doc, e);
    assert_false(e->is_int);
    assert_true(e->d == -25.0);
    e = yarn_json_next(&doc, e);
    assert_true(e->is_int && e->i == 0);
    e = yarn_json_next(&doc, e);
    assert_true(e->type == YARN_JSON_BOOL && e->b);
    e = yarn_json_next(&doc, e);
    assert_true(e->type == YARN_JSON_BOOL && !e->b);
    e = yarn_json_next(&doc, e);
    assert_int_equal(e->type, YARN_JSON_NULL);
    e = yarn_json_next(&doc, e);
    assert_string_equal(e->s, "x\xc3\xa9\xf0\x9f\x98\x80\n");
    assert_int_equal(e->len, 8);
    assert_null(yarn_json_next(&doc, e));
    assert_int_equal(yarn_json_get(&doc, root, "b")->count, 0);
    assert_null(yarn_json_first(&doc, yarn_json_get(&doc, root, "c")));
    const yarn_json_node *big = yarn_json_get(&doc, root, "big");
    assert_false(big->is_int);
    assert_true(big->d > 1.2e19);
    assert_null(yarn_json_get(&doc, root, "missing"));
    assert_null(yarn_json_get(&doc, a, "a"));
    yarn_json_free(&doc);

    static const struct {
        const char *text;
        int code;
        const char *says;
    } bad[] = {
        {"{\"a\":1,}", FR_EINVAL, "line 1 column 8: expected a member name in quotes"},
        {"[1,]", FR_EINVAL, "expected a value"},
        {"[01]", FR_EINVAL, "may not start with 0"},
        {"[1.]", FR_EINVAL, "expected a digit after '.'"},
        {"[NaN]", FR_EINVAL, "expected a value"},
        {"[1e999]", FR_EINVAL, "out of range"},
        {"{\"a\" 1}", FR_EINVAL, "expected ':'"},
        {"{\"a\":1 \"b\":2}", FR_EINVAL, "expected ',' or '}'"},
        {"[1 2]", FR_EINVAL, "expected ',' or ']'"},
        {"[\"a\tb\"]", FR_EINVAL, "control character"},
        {"[\"\\x\"]", FR_EINVAL, "unknown escape"},
        {"[\"\\ud800\"]", FR_EINVAL, "high surrogate"},
        {"[\"\\udc00\"]", FR_EINVAL, "lone low surrogate"},
        {"[\"\xc3\x28\"]", FR_EINVAL, "invalid UTF-8"},
        {"[\"\xed\xa0\x80\"]", FR_EINVAL, "invalid UTF-8"},
        {"[tru", FR_ETRUNC, "inside a literal"},
        {"{\"a\":[1,2", FR_ETRUNC, "input ends inside an object or array"},
        {"\"abc", FR_ETRUNC, "inside a string"},
        {"1 2", FR_ETRAILING, "line 1 column 3: bytes after the JSON value"},
        {"  \n ", FR_ETRUNC, "line 2 column 2: no JSON value"},
        {"{\n  \"a\": @}", FR_EINVAL, "line 2 column 8: expected a value"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fr_error_clear(&err);
        int rv = yarn_json_parse(bad[i].text, strlen(bad[i].text), &doc, &err);
        if (rv != bad[i].code || strstr(err.message, bad[i].says) == NULL) {
            fail_msg("'%s': expected %d '%s', got %d '%s'", bad[i].text, bad[i].code, bad[i].says,
                     rv, err.message);
        }
        assert_null(doc.nodes);
        yarn_json_free(&doc);
    }

    /* Depth is bounded without recursion. */
    char deep[300];
    memset(deep, '[', 129);
    memset(deep + 129, ']', 129);
    assert_int_equal(yarn_json_parse(deep, 258, &doc, &err), FR_EDEPTH);
    assert_fr_ok(yarn_json_parse(deep + 1, 256, &doc, &err));
    yarn_json_free(&doc);
    /* Only the given bytes are read: no NUL needed. */
    assert_fr_ok(yarn_json_parse("[7]xyz", 3, &doc, &err));
    assert_int_equal(yarn_json_first(&doc, yarn_json_root(&doc))->i, 7);
    yarn_json_free(&doc);
}

/* The chunked decoder on its own, fed whole and byte by byte. */
static void test_chunks(void **state)
{
    (void)state;
    const char *raw = "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: y\r\n\r\nextra";
    size_t body_len = strlen(raw) - strlen("extra");
    char buf[128];
    yarn_chunks ch = {0};
    for (size_t n = 0; n <= strlen(raw); n++) {
        memcpy(buf, raw, n);
        int rv = yarn_chunks_scan(&ch, buf, n);
        assert_int_equal(rv, n >= body_len ? 1 : 0);
    }
    assert_int_equal(ch.pos, body_len);
    size_t len = yarn_chunks_join(&ch, buf);
    assert_int_equal(len, 12);
    assert_memory_equal(buf, "hello, world", 12);

    static const char *const bad[] = {"z\r\nabc\r\n", "3\nabc\r\n", "3\r\nabcd\r\n",
                                      "ffffffffffffffff\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        yarn_chunks b = {0};
        snprintf(buf, sizeof(buf), "%s", bad[i]);
        assert_int_equal(yarn_chunks_scan(&b, buf, strlen(buf)), FR_EPROTO);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_description, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collect_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wildcards, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_queue_appears, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_name_twice_uses_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_500, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unexpected_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snap_hostname_port, setup, teardown),
        cmocka_unit_test(test_json_reader),
        cmocka_unit_test(test_chunks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
