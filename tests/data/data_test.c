/* The data path: send/ack over inproc, ipc, tcp and tls+tcp (one suite run
 * over each, both ways round, with and without a queue behind the window),
 * 100 000 real batches through a replica that is SIGKILLed and restarted
 * mid-stream, two replicas sharing the load, busy back-pressure, refusals, a
 * full window (and queue) with no receiver, resends to a slow receiver, and
 * closing with batches in every state. */
#include "testsupport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "fresco/clock.h"
#include "fresco/data.h"
#include "fresco/log.h"
#include "fresco/metric.h"
#include "replica_record.h"
#include "schema_example.h"

/* ---- test payloads: an index and some filler ---- */

#define PAYLOAD_MAGIC 0x66726573u /* "fres" */

/* Fills buf (len >= 8) with a payload carrying idx. */
static void payload_make(uint8_t *buf, size_t len, uint32_t idx)
{
    uint32_t head[2] = {PAYLOAD_MAGIC, idx};
    memcpy(buf, head, sizeof(head));
    for (size_t i = sizeof(head); i < len; i++) {
        buf[i] = (uint8_t)(idx + i);
    }
}

static bool payload_index(const void *data, size_t len, uint32_t *idx)
{
    uint32_t head[2];
    if (len < sizeof(head)) {
        return false;
    }
    memcpy(head, data, sizeof(head));
    const uint8_t *p = data;
    for (size_t i = sizeof(head); i < len; i += 4099) {
        if (p[i] != (uint8_t)(head[1] + i)) {
            return false;
        }
    }
    *idx = head[1];
    return head[0] == PAYLOAD_MAGIC;
}

/* ---- an in-process receiver with switchable behaviour ---- */

typedef struct rx {
    uint32_t n;            /* payload indexes are below n */
    atomic_uint *count;    /* [n]: times each index was acknowledged */
    atomic_int busy_left;  /* answer "busy" this many times first */
    uint32_t reject_every; /* refuse indexes divisible by this (0 = none) */
    atomic_uint_fast64_t calls;
    /* When gated, handlers wait inside until the gate opens. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool gated;
    int inside;
} rx;

static rx *rx_new(uint32_t n)
{
    rx *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->n = n;
    r->count = calloc(n, sizeof(*r->count));
    assert_non_null(r->count);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    return r;
}

static void rx_free(rx *r)
{
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r->count);
    free(r);
}

static void rx_gate(rx *r, bool closed)
{
    pthread_mutex_lock(&r->mu);
    r->gated = closed;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static int rx_handle(void *ctx, const void *data, size_t len, fr_error *err)
{
    rx *r = ctx;
    atomic_fetch_add(&r->calls, 1);
    uint32_t idx;
    if (!payload_index(data, len, &idx) || idx >= r->n) {
        return fr_error_set(err, FR_EINVAL, NULL, "not a test payload");
    }
    pthread_mutex_lock(&r->mu);
    r->inside++;
    pthread_cond_broadcast(&r->cv);
    while (r->gated) {
        pthread_cond_wait(&r->cv, &r->mu);
    }
    r->inside--;
    pthread_mutex_unlock(&r->mu);

    int left = atomic_load(&r->busy_left);
    while (left > 0 && !atomic_compare_exchange_weak(&r->busy_left, &left, left - 1)) {
    }
    if (left > 0) {
        return FR_EBUSY;
    }
    if (r->reject_every != 0 && idx % r->reject_every == 0) {
        return fr_error_set(err, FR_EINVAL, "metrics[0].value", "batch %u is refused", idx);
    }
    atomic_fetch_add(&r->count[idx], 1);
    return 0;
}

static int rx_inside(rx *r)
{
    pthread_mutex_lock(&r->mu);
    int n = r->inside;
    pthread_mutex_unlock(&r->mu);
    return n;
}

/* Sends payloads [0, n) of `size` bytes, each within 20 s. */
static void send_payloads(fr_data_sender *s, uint32_t n, size_t size)
{
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    for (uint32_t i = 0; i < n; i++) {
        payload_make(buf, size, i);
        assert_fr_ok(fr_data_send(s, buf, size, 20000));
    }
    free(buf);
}

/* The same through fr_data_send_buf, one fr_buf reused for every payload:
 * each send hands back an empty buffer. */
static void send_payloads_buf(fr_data_sender *s, uint32_t n, size_t size)
{
    fr_buf buf = FR_BUF_INIT;
    for (uint32_t i = 0; i < n; i++) {
        assert_fr_ok(fr_buf_reserve(&buf, size));
        payload_make(buf.data, size, i);
        buf.len = size;
        assert_fr_ok(fr_data_send_buf(s, &buf, 20000));
        assert_int_equal(buf.len, 0);
    }
    fr_buf_free(&buf);
}

/* ---- conditions to wait on ---- */

typedef struct stat_wait {
    fr_data_sender *s;
    uint64_t resends, busy, acked;
} stat_wait;

static bool sender_resent(void *arg)
{
    stat_wait *w = arg;
    fr_data_sender_stats st;
    fr_data_sender_stats_get(w->s, &st);
    return st.resends >= w->resends;
}

static bool sender_busy_seen(void *arg)
{
    stat_wait *w = arg;
    fr_data_sender_stats st;
    fr_data_sender_stats_get(w->s, &st);
    return st.busy >= w->busy;
}

typedef struct inside_wait {
    rx *r;
    int n;
} inside_wait;

static bool rx_has_inside(void *arg)
{
    inside_wait *w = arg;
    return rx_inside(w->r) >= w->n;
}

/* ---- the transport suite ---- */

static char *tls_dir;
static char tls_server_cert[512], tls_server_key[512], tls_ca[512];
static const fr_tls_conf tls_server = {.cert_file = tls_server_cert, .key_file = tls_server_key};
static const fr_tls_conf tls_client = {.ca_file = tls_ca};

typedef struct fixture {
    const char *scheme;
    char url[256];
    const fr_tls_conf *listen_tls; /* for whichever side listens */
    const fr_tls_conf *dial_tls;
} fixture;

static int url_counter;

static void make_url(const char *scheme, char *buf, size_t len)
{
    int n = ++url_counter;
    if (strcmp(scheme, "inproc") == 0) {
        snprintf(buf, len, "inproc://data-test-%d", n);
    } else if (strcmp(scheme, "ipc") == 0) {
        snprintf(buf, len, "ipc:///tmp/fresco-data-test-%d-%d.sock", (int)getpid(), n);
    } else {
        snprintf(buf, len, "%s://127.0.0.1:%d", scheme, tst_free_port());
    }
}

static int setup(void **state, const char *scheme)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return -1;
    }
    f->scheme = scheme;
    make_url(scheme, f->url, sizeof(f->url));
    if (strcmp(scheme, "tls+tcp") == 0) {
        f->listen_tls = &tls_server;
        f->dial_tls = &tls_client;
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
static int setup_tls(void **state)
{
    return setup(state, "tls+tcp");
}
static int teardown(void **state)
{
    free(*state);
    return 0;
}

/* Sends n payloads of `size` bytes (through fr_data_send_buf when queue
 * is not 0) and checks every one arrived once. */
static void round_trip_queued(const fixture *f, bool sender_listens, uint32_t n, size_t size,
                              int window, int queue)
{
    rx *r = rx_new(n);
    fr_data_receiver *recv = NULL;
    fr_data_sender *s = NULL;
    fr_data_sender_opts o = {
        .window = window, .resend_ms = 5000, .listen = sender_listens, .queue = queue};
    const char *urls[] = {f->url};
    if (sender_listens) {
        assert_fr_ok(fr_data_sender_open(&s, urls, 1, f->listen_tls, &o));
        assert_fr_ok(fr_data_receiver_start(&recv, f->url, false, f->dial_tls, 4, rx_handle, r));
    } else {
        assert_fr_ok(fr_data_receiver_start(&recv, f->url, true, f->listen_tls, 4, rx_handle, r));
        assert_fr_ok(fr_data_sender_open(&s, urls, 1, f->dial_tls, &o));
    }
    if (queue > 0) {
        send_payloads_buf(s, n, size);
    } else {
        send_payloads(s, n, size);
    }
    assert_fr_ok(fr_data_flush(s, 30000));

    fr_data_sender_stats st;
    fr_data_sender_stats_get(s, &st);
    assert_int_equal(st.sent, n);
    assert_int_equal(st.acked, n);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(st.busy, 0);
    assert_int_equal(st.rejected, 0);
    for (uint32_t i = 0; i < n; i++) {
        if (atomic_load(&r->count[i]) < 1) {
            fail_msg("payload %u never arrived", i);
        }
        if (st.resends == 0 && atomic_load(&r->count[i]) != 1) {
            fail_msg("payload %u arrived %u times without a resend", i, atomic_load(&r->count[i]));
        }
    }
    fr_data_receiver_stats rs;
    fr_data_receiver_stats_get(recv, &rs);
    assert_true(rs.acked >= n);
    assert_int_equal(rs.rejected, 0);
    fr_data_sender_close(s);
    fr_data_receiver_stop(recv);
    rx_free(r);
}

static void round_trip(const fixture *f, bool sender_listens, uint32_t n, size_t size, int window)
{
    round_trip_queued(f, sender_listens, n, size, window, 0);
}

/* Batches handed over without a copy, most of them queued behind a small
 * window and sent by whichever slot frees up. */
static void test_queued_send_buf(void **state)
{
    round_trip_queued(*state, false, 3000, 200, 4, 8);
}

static void test_send_ack(void **state)
{
    round_trip(*state, false, 3000, 64, 16);
}

static void test_sender_listens(void **state)
{
    round_trip(*state, true, 1000, 64, 8);
}

/* Bigger than nng's default 1 MiB receive limit. */
static void test_large_batches(void **state)
{
    round_trip(*state, false, 6, 3u * 1024 * 1024 + 17, 4);
}

static void test_one_slot_window(void **state)
{
    round_trip(*state, false, 300, 200, 1);
}

/* A refusal travels back with the receiver's words, whatever the transport. */
static void test_refusal_round_trip(void **state)
{
    const fixture *f = *state;
    rx *r = rx_new(50);
    r->reject_every = 5;
    fr_data_receiver *recv = NULL;
    fr_data_sender *s = NULL;
    const char *urls[] = {f->url};
    assert_fr_ok(fr_data_receiver_start(&recv, f->url, true, f->listen_tls, 2, rx_handle, r));
    assert_fr_ok(fr_data_sender_open(&s, urls, 1, f->dial_tls, NULL));
    send_payloads(s, 50, 40);
    assert_fr_ok(fr_data_flush(s, 20000));
    fr_data_sender_stats st;
    fr_data_sender_stats_get(s, &st);
    assert_int_equal(st.rejected, 10);
    assert_int_equal(st.acked, 40);
    fr_data_sender_close(s);
    fr_data_receiver_stop(recv);
    rx_free(r);
}

/* ---- 100 000 real batches through a replica that is killed and restarted ---- */

#define KR_SOURCES    4
#define KR_BATCHES    100000u
#define KR_PER_SOURCE (KR_BATCHES / KR_SOURCES)

static fr_batch *kr_batch;

/* Batch i comes from source i % KR_SOURCES with seq i / KR_SOURCES + 1. */
static void batch_build(fr_buf *out, uint32_t i)
{
    char src[16];
    snprintf(src, sizeof(src), "node-%u", i % KR_SOURCES);
    uint64_t seq = i / KR_SOURCES + 1;
    if (kr_batch == NULL) {
        kr_batch = fr_batch_new("task-kr", src, seq);
        assert_non_null(kr_batch);
    } else {
        assert_fr_ok(fr_batch_reset(kr_batch, "task-kr", src, seq));
    }
    assert_fr_ok(fr_batch_add_tag(kr_batch, "plugin", "psutil"));
    int64_t ts = 1700000000000000000 + (int64_t)i * 1000;
    fr_metric *m = fr_batch_add(kr_batch, "/intel/psutil/load/load1", ts, fr_val_f64(i * 0.25), "");
    assert_non_null(m);
    assert_fr_ok(fr_batch_metric_tag(kr_batch, m, "host", src));
    assert_non_null(fr_batch_add(kr_batch, "/intel/psutil/vm/free", ts, fr_val_u64(i), "B"));
    assert_non_null(
        fr_batch_add(kr_batch, "/intel/procfs/cpu/0/user", ts, fr_val_i64(-(int64_t)i), "ns"));
    fr_buf_reset(out);
    assert_fr_ok(fr_batch_encode(kr_batch, out));
}

/* Replicas alive, so that a failing test does not leave them running. */
static pid_t replicas[4];

static pid_t replica_spawn(const char *url, const char *records, const char *log)
{
    char bin[512];
    tst_bin(bin, sizeof(bin), "tests/data/data_replica");
    char *argv[] = {bin, (char *)url, (char *)records, "8", NULL};
    pid_t pid = tst_spawn(argv, log);
    assert_true(pid > 0);
    for (size_t i = 0; i < sizeof(replicas) / sizeof(replicas[0]); i++) {
        if (replicas[i] == 0) {
            replicas[i] = pid;
            return pid;
        }
    }
    fail_msg("too many replicas");
    return -1;
}

/* tst_stop for a replica; forgets it. */
static int replica_stop(pid_t pid, int sig)
{
    for (size_t i = 0; i < sizeof(replicas) / sizeof(replicas[0]); i++) {
        if (replicas[i] == pid) {
            replicas[i] = 0;
        }
    }
    return tst_stop(pid, sig, sig == SIGKILL ? 5000 : 10000);
}

static int replicas_teardown(void **state)
{
    for (size_t i = 0; i < sizeof(replicas) / sizeof(replicas[0]); i++) {
        if (replicas[i] != 0) {
            tst_stop(replicas[i], SIGKILL, 5000);
            replicas[i] = 0;
        }
    }
    return 0;
}

static bool port_accepts(void *arg)
{
    int port = *(int *)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return false;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

/* Counts records per (source, seq) into counts[src][seq-1]. Returns the
 * number of records. */
static size_t records_read(const char *path, uint16_t *counts)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    struct stat sb;
    assert_int_equal(fstat(fileno(fp), &sb), 0);
    assert_int_equal(sb.st_size % (off_t)sizeof(replica_record), 0);
    replica_record rec;
    size_t n = 0;
    while (fread(&rec, sizeof(rec), 1, fp) == 1) {
        unsigned src;
        if (sscanf(rec.source, "node-%u", &src) != 1 || src >= KR_SOURCES || rec.seq < 1 ||
            rec.seq > KR_PER_SOURCE) {
            fail_msg("bad record %zu: %.56s %llu", n, rec.source, (unsigned long long)rec.seq);
        }
        counts[(size_t)src * KR_PER_SOURCE + rec.seq - 1]++;
        n++;
    }
    fclose(fp);
    return n;
}

/* Stops the replica with the window full of unacknowledged batches
 * (deterministically in flight), SIGKILLs it, waits for those batches to be resent and starts a
 * new replica on the same address. *next is the next batch to send. */
static pid_t kill_and_restart(fr_data_sender *s, pid_t pid, uint32_t *next, fr_buf *buf,
                              const char *url, const char *records, const char *log, int window)
{
    assert_int_equal(kill(pid, SIGSTOP), 0);
    for (;;) {
        batch_build(buf, *next);
        int rv = fr_data_send(s, buf->data, buf->len, 300);
        if (rv == FR_EBUSY) {
            break; /* batch *next is sent again after the restart */
        }
        assert_fr_ok(rv);
        (*next)++;
    }
    fr_data_sender_stats st;
    fr_data_sender_stats_get(s, &st);
    assert_int_equal(st.inflight, (uint64_t)window);
    assert_int_not_equal(replica_stop(pid, SIGKILL), -1);
    stat_wait w = {.s = s, .resends = st.resends + 1};
    assert_true(tst_wait_until(sender_resent, &w, 10000));
    return replica_spawn(url, records, log);
}

static void test_kill_restart(void **state)
{
    int64_t t0 = tst_mono_ms();
    char *dir = tst_tmpdir("fresco-data-kr");
    assert_non_null(dir);
    char records[512], log[512], url[64];
    snprintf(records, sizeof(records), "%s/records", dir);
    snprintf(log, sizeof(log), "%s/replica.log", dir);
    int port = tst_free_port();
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);

    pid_t pid = replica_spawn(url, records, log);
    const int window = 64;
    fr_data_sender_opts o = {.window = window, .resend_ms = 300, .busy_retry_ms = 50};
    fr_data_sender *s = NULL;
    const char *urls[] = {url};
    assert_fr_ok(fr_data_sender_open(&s, urls, 1, NULL, &o));

    fr_buf buf = FR_BUF_INIT;
    bool killed_mid_stream = false;
    for (uint32_t i = 0; i < KR_BATCHES;) {
        if (i == 30000) {
            pid = kill_and_restart(s, pid, &i, &buf, url, records, log, window);
        } else if (i >= 70000 && !killed_mid_stream) {
            /* Mid-stream, no pause, as soon as batches are out: the replica
             * is busy, and a new one starts at once, as a supervisor would
             * start it. */
            fr_data_sender_stats st;
            fr_data_sender_stats_get(s, &st);
            if (st.inflight > 0) {
                assert_int_not_equal(replica_stop(pid, SIGKILL), -1);
                pid = replica_spawn(url, records, log);
                killed_mid_stream = true;
            }
        }
        batch_build(&buf, i);
        assert_fr_ok(fr_data_send(s, buf.data, buf.len, 20000));
        i++;
    }
    assert_fr_ok(fr_data_flush(s, 30000));
    fr_data_sender_stats st;
    fr_data_sender_stats_get(s, &st);
    fr_data_sender_close(s);
    int status = replica_stop(pid, SIGTERM);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    uint16_t *counts = calloc(KR_BATCHES, sizeof(*counts));
    assert_non_null(counts);
    size_t nrec = records_read(records, counts);
    size_t missing = 0, dups = 0;
    for (size_t k = 0; k < KR_BATCHES; k++) {
        if (counts[k] == 0) {
            if (missing++ < 5) {
                print_error("missing: node-%zu seq %zu\n", k / KR_PER_SOURCE,
                            k % KR_PER_SOURCE + 1);
            }
        } else {
            dups += counts[k] - 1u;
        }
    }
    print_message("kill/restart: %u batches, %zu records, %zu duplicates, %llu resends, "
                  "2 kills, %.1f s\n",
                  KR_BATCHES, nrec, dups, (unsigned long long)st.resends,
                  (double)(tst_mono_ms() - t0) / 1000.0);
    assert_int_equal(missing, 0);
    assert_int_equal(nrec, KR_BATCHES + dups);
    assert_int_equal(st.sent, KR_BATCHES);
    assert_int_equal(st.acked, KR_BATCHES);
    assert_int_equal(st.rejected, 0);
    assert_int_equal(st.busy, 0);
    assert_int_equal(st.inflight, 0);
    assert_true(st.resends > 0);

    free(counts);
    fr_buf_free(&buf);
    fr_batch_destroy(kr_batch);
    kr_batch = NULL;
    tst_rmtree(dir);
    free(dir);
}

/* ---- two replicas share one sender ---- */

static void test_two_replicas(void **state)
{
    const uint32_t n = 20000;
    char *dir = tst_tmpdir("fresco-data-two");
    assert_non_null(dir);
    char records[2][512], log[2][512], url[2][64];
    int port[2];
    pid_t pid[2];
    for (int k = 0; k < 2; k++) {
        snprintf(records[k], sizeof(records[k]), "%s/records-%d", dir, k);
        snprintf(log[k], sizeof(log[k]), "%s/replica-%d.log", dir, k);
        port[k] = tst_free_port();
        snprintf(url[k], sizeof(url[k]), "tcp://127.0.0.1:%d", port[k]);
        pid[k] = replica_spawn(url[k], records[k], log[k]);
    }
    /* Both listening before the sender dials, so neither starts late. */
    for (int k = 0; k < 2; k++) {
        assert_true(tst_wait_until(port_accepts, &port[k], 10000));
    }
    fr_data_sender_opts o = {.window = 32, .resend_ms = 2000};
    fr_data_sender *s = NULL;
    const char *urls[] = {url[0], url[1]};
    assert_fr_ok(fr_data_sender_open(&s, urls, 2, NULL, &o));
    fr_buf buf = FR_BUF_INIT;
    for (uint32_t i = 0; i < n; i++) {
        batch_build(&buf, i);
        assert_fr_ok(fr_data_send(s, buf.data, buf.len, 20000));
    }
    assert_fr_ok(fr_data_flush(s, 30000));
    fr_data_sender_stats st;
    fr_data_sender_stats_get(s, &st);
    assert_int_equal(st.acked, n);
    fr_data_sender_close(s);

    uint16_t *counts = calloc(KR_BATCHES, sizeof(*counts));
    assert_non_null(counts);
    size_t share[2];
    for (int k = 0; k < 2; k++) {
        int status = replica_stop(pid[k], SIGTERM);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        share[k] = records_read(records[k], counts);
    }
    print_message("two replicas: %zu and %zu of %u batches\n", share[0], share[1], n);
    for (uint32_t i = 0; i < n; i++) {
        size_t k = (size_t)(i % KR_SOURCES) * KR_PER_SOURCE + i / KR_SOURCES;
        if (counts[k] == 0) {
            fail_msg("batch %u reached neither replica", i);
        }
    }
    assert_true(share[0] >= n / 4);
    assert_true(share[1] >= n / 4);
    free(counts);
    fr_buf_free(&buf);
    fr_batch_destroy(kr_batch);
    kr_batch = NULL;
    tst_rmtree(dir);
    free(dir);
}

/* ---- back-pressure and refusals ---- */

static void test_busy_backpressure(void **state)
{
    const uint32_t n = 400;
    rx *r = rx_new(n);
    atomic_store(&r->busy_left, 150);
    fr_data_receiver *recv = NULL;
    fr_data_sender *s = NULL;
    const char *urls[] = {"inproc://data-busy"};
    assert_fr_ok(fr_data_receiver_start(&recv, urls[0], true, NULL, 2, rx_handle, r));
    fr_data_sender_opts o = {.window = 16, .resend_ms = 5000, .busy_retry_ms = 20};
    assert_fr_ok(fr_data_sender_open(&s, urls, 1, NULL, &o));
    send_payloads(s, n, 100);
    assert_fr_ok(fr_data_flush(s, 30000));
    fr_data_sender_stats st;
    fr_data_sender_stats_get(s, &st);
    assert_int_equal(st.acked, n);
    assert_int_equal(st.busy, 150);
    assert_int_equal(st.resends, 150); /* one per busy answer, none by timeout */
    assert_int_equal(st.rejected, 0);
    assert_int_equal(st.inflight, 0);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(atomic_load(&r->count[i]), 1);
    }
    fr_data_receiver_stats rs;
    fr_data_receiver_stats_get(recv, &rs);
    assert_int_equal(rs.busy, 150);
    assert_int_equal(rs.acked, n);
    assert_int_equal(rs.received, n + 150);
    fr_data_sender_close(s);
    fr_data_receiver_stop(recv);
    rx_free(r);
}

static void test_rejected(void **state)
{
    const uint32_t n = 300;
    rx *r = rx_new(n);
    r->reject_every = 10;
    fr_data_receiver *recv = NULL;
    fr_data_sender *s = NULL;
    const char *urls[] = {"inproc://data-reject"};
    assert_fr_ok(fr_data_receiver_start(&recv, urls[0], true, NULL, 2, rx_handle, r));
    assert_fr_ok(fr_data_sender_open(&s, urls, 1, NULL, NULL));
    send_payloads(s, n, 64);
    /* Something that is not a payload at all is refused too. */
    assert_fr_ok(fr_data_send(s, "junk", 4, 1000));
    assert_fr_ok(fr_data_flush(s, 20000));
    fr_data_sender_stats st;
    fr_data_sender_stats_get(s, &st);
    assert_int_equal(st.sent, n + 1);
    assert_int_equal(st.rejected, n / 10 + 1);
    assert_int_equal(st.acked, n - n / 10);
    assert_int_equal(st.resends, 0);
    assert_int_equal(st.inflight, 0);
    fr_data_receiver_stats rs;
    fr_data_receiver_stats_get(recv, &rs);
    assert_int_equal(rs.rejected, n / 10 + 1);
    fr_data_sender_close(s);
    fr_data_receiver_stop(recv);
    rx_free(r);
}

/* A handler that returns a code outside fr_err is a refusal, not an ack. */
static int odd_handler(void *ctx, const void *data, size_t len, fr_error *err)
{
    return 7;
}

static void test_odd_handler_code(void **state)
{
    fr_data_receiver *recv = NULL;
    fr_data_sender *s = NULL;
    const char *urls[] = {"inproc://data-odd"};
    assert_fr_ok(fr_data_receiver_start(&recv, urls[0], true, NULL, 1, odd_handler, NULL));
    assert_fr_ok(fr_data_sender_open(&s, urls, 1, NULL, NULL));
    assert_fr_ok(fr_data_send(s, "x", 1, 1000));
    assert_fr_ok(fr_data_flush(s, 10000));
    fr_data_sender_stats st;
    fr_data_sender_stats_get(s, &st);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.acked, 0);
    fr_data_sender_close(s);
    fr_data_receiver_stop(recv);
}

/* ---- no receiver: the window fills and fr_data_send gives up in time ---- */

static void test_full_window_without_receiver(void **state)
{
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", tst_free_port());
    const char *urls[] = {url};
    fr_data_sender_opts o = {.window = 4, .resend_ms = 100};
    fr_data_sender *s = NULL;
    assert_fr_ok(fr_data_sender_open(&s, urls, 1, NULL, &o));
    uint8_t buf[32];
    for (uint32_t i = 0; i < 4; i++) {
        payload_make(buf, sizeof(buf), i);
        assert_fr_ok(fr_data_send(s, buf, sizeof(buf), 0));
    }
    payload_make(buf, sizeof(buf), 4);
    assert_int_equal(fr_data_send(s, buf, sizeof(buf), 0), FR_EBUSY);
    int64_t t0 = tst_mono_ms();
    assert_int_equal(fr_data_send(s, buf, sizeof(buf), 300), FR_EBUSY);
    int64_t dt = tst_mono_ms() - t0;
    assert_true(dt >= 290);
    assert_true(dt < 2000);
    t0 = tst_mono_ms();
    assert_int_equal(fr_data_flush(s, 200), FR_ETIMEDOUT);
    dt = tst_mono_ms() - t0;
    assert_true(dt >= 190 && dt < 2000);

    fr_data_sender_stats st;
    fr_data_sender_stats_get(s, &st);
    assert_int_equal(st.sent, 4);
    assert_int_equal(st.inflight, 4);
    assert_int_equal(st.acked, 0);
    /* Nothing went on the wire, so there was nothing to resend. */
    assert_int_equal(st.resends, 0);
    t0 = tst_mono_ms();
    fr_data_sender_close(s);
    assert_true(tst_mono_ms() - t0 < 1000);
}

/* A sender blocked on a full window wakes when a receiver appears. */
typedef struct late_receiver {
    const char *url;
    rx *r;
    fr_data_receiver *recv;
} late_receiver;

static void *late_receiver_run(void *arg)
{
    late_receiver *lr = arg;
    struct timespec d = {0, 200 * 1000000};
    nanosleep(&d, NULL); /* the point of the test: the receiver is late */
    if (fr_data_receiver_start(&lr->recv, lr->url, true, NULL, 2, rx_handle, lr->r) != 0) {
        return (void *)1;
    }
    return NULL;
}

static void test_blocked_send_resumes(void **state)
{
    const char *urls[] = {"inproc://data-late"};
    late_receiver lr = {.url = urls[0], .r = rx_new(40)};
    fr_data_sender_opts o = {.window = 2};
    fr_data_sender *s = NULL;
    assert_fr_ok(fr_data_sender_open(&s, urls, 1, NULL, &o));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, late_receiver_run, &lr), 0);
    send_payloads(s, 40, 16); /* blocks at the third until the receiver is up */
    assert_fr_ok(fr_data_flush(s, 10000));
    void *ret;
    pthread_join(th, &ret);
    assert_null(ret);
    fr_data_sender_stats st;
    fr_data_sender_stats_get(s, &st);
    assert_int_equal(st.acked, 40);
    fr_data_sender_close(s);
    fr_data_receiver_stop(lr.recv);
    rx_free(lr.r);
}

/* The queue takes what the window cannot; once both are full a send gives
 * up, leaving the caller's buffer as it was. Closing abandons both. */
static void test_full_queue_without_receiver(void **state)
{
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", tst_free_port());
    const char *urls[] = {url};
    fr_data_sender_opts o = {.window = 2, .queue = 3, .resend_ms = 100};
    fr_data_sender *s = NULL;
    assert_fr_ok(fr_data_sender_open(&s, urls, 1, NULL, &o));
    fr_buf buf = FR_BUF_INIT;
    for (uint32_t i = 0; i < 5; i++) {
        assert_fr_ok(fr_buf_reserve(&buf, 32));
        payload_make(buf.data, 32, i);
        buf.len = 32;
        assert_fr_ok(fr_data_send_buf(s, &buf, 0));
        assert_int_equal(buf.len, 0);
    }
    assert_fr_ok(fr_buf_reserve(&buf, 32));
    payload_make(buf.data, 32, 5);
    buf.len = 32;
    uint8_t *keep = buf.data;
    assert_int_equal(fr_data_send_buf(s, &buf, 0), FR_EBUSY);
    assert_int_equal(fr_data_send(s, buf.data, buf.len, 100), FR_EBUSY);
    assert_ptr_equal(buf.data, keep);
    assert_int_equal(buf.len, 32);
    uint32_t idx;
    assert_true(payload_index(buf.data, buf.len, &idx) && idx == 5);
    assert_int_equal(fr_data_flush(s, 100), FR_ETIMEDOUT);

    fr_data_sender_stats st;
    fr_data_sender_stats_get(s, &st);
    assert_int_equal(st.sent, 5);
    assert_int_equal(st.inflight, 5);
    assert_int_equal(st.acked, 0);
    int64_t t0 = tst_mono_ms();
    fr_data_sender_close(s);
    assert_true(tst_mono_ms() - t0 < 1000);
    fr_buf_free(&buf);
}

/* Queued batches go out once a late receiver appears, the busy ones among
 * them resent. */
static void test_queue_drains_to_late_receiver(void **state)
{
    const char *urls[] = {"inproc://data-late-queue"};
    late_receiver lr = {.url = urls[0], .r = rx_new(200)};
    atomic_store(&lr.r->busy_left, 20);
    fr_data_sender_opts o = {.window = 2, .queue = 6, .busy_retry_ms = 10};
    fr_data_sender *s = NULL;
    assert_fr_ok(fr_data_sender_open(&s, urls, 1, NULL, &o));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, late_receiver_run, &lr), 0);
    send_payloads_buf(s, 100, 16);
    send_payloads(s, 100, 16); /* the copying path, through the same queue */
    assert_fr_ok(fr_data_flush(s, 10000));
    void *ret;
    pthread_join(th, &ret);
    assert_null(ret);
    fr_data_sender_stats st;
    fr_data_sender_stats_get(s, &st);
    assert_int_equal(st.sent, 200);
    assert_int_equal(st.acked, 200);
    assert_int_equal(st.inflight, 0);
    assert_int_equal(st.busy, 20);
    for (uint32_t i = 0; i < 100; i++) {
        /* both loops sent indexes 0..99 */
        assert_int_equal(atomic_load(&lr.r->count[i]), 2);
    }
    fr_data_sender_close(s);
    fr_data_receiver_stop(lr.recv);
    rx_free(lr.r);
}

/* ---- a slow receiver: acks come after resend_ms, so batches are resent ---- */

static void test_resend_to_slow_receiver(void **state)
{
    const uint32_t n = 8;
    rx *r = rx_new(n);
    rx_gate(r, true);
    fr_data_receiver *recv = NULL;
    fr_data_sender *s = NULL;
    /* tcp: its pipe stays writable while the handler is stuck, so every
     * batch is on the wire and waiting for its ack. (Over inproc a pipe
     * whose peer does not read stays busy, and REQ keeps later requests
     * queued instead.) */
    char url[64];
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", tst_free_port());
    const char *urls[] = {url};
    /* One worker: a blocked handler holds one of nng's threads. */
    assert_fr_ok(fr_data_receiver_start(&recv, urls[0], true, NULL, 1, rx_handle, r));
    fr_data_sender_opts o = {.window = 4, .resend_ms = 100};
    assert_fr_ok(fr_data_sender_open(&s, urls, 1, NULL, &o));
    send_payloads(s, 4, 32);
    stat_wait w = {.s = s, .resends = 8};
    assert_true(tst_wait_until(sender_resent, &w, 10000));
    rx_gate(r, false);
    uint8_t buf[32];
    for (uint32_t i = 4; i < n; i++) {
        payload_make(buf, sizeof(buf), i);
        assert_fr_ok(fr_data_send(s, buf, sizeof(buf), 10000));
    }
    assert_fr_ok(fr_data_flush(s, 20000));
    fr_data_sender_stats st;
    fr_data_sender_stats_get(s, &st);
    assert_int_equal(st.acked, n);
    assert_true(st.resends >= 8);
    uint32_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        assert_true(atomic_load(&r->count[i]) >= 1);
        total += atomic_load(&r->count[i]);
    }
    /* The resends reached the receiver too: consumers must drop duplicates. */
    assert_true(total > n);
    fr_data_sender_close(s);
    fr_data_receiver_stop(recv);
    rx_free(r);
}

/* ---- closing with batches in flight ---- */

static void test_close_while_awaiting_ack(void **state)
{
    rx *r = rx_new(16);
    rx_gate(r, true);
    fr_data_receiver *recv = NULL;
    fr_data_sender *s = NULL;
    const char *urls[] = {"inproc://data-close-ack"};
    assert_fr_ok(fr_data_receiver_start(&recv, urls[0], true, NULL, 1, rx_handle, r));
    fr_data_sender_opts o = {.window = 4, .resend_ms = 60000};
    assert_fr_ok(fr_data_sender_open(&s, urls, 1, NULL, &o));
    send_payloads(s, 4, 32);
    inside_wait w = {r, 1};
    assert_true(tst_wait_until(rx_has_inside, &w, 10000));
    int64_t t0 = tst_mono_ms();
    fr_data_sender_close(s);
    assert_true(tst_mono_ms() - t0 < 1000);
    rx_gate(r, false);
    fr_data_receiver_stop(recv);
    rx_free(r);
}

static void test_close_while_backing_off(void **state)
{
    rx *r = rx_new(16);
    atomic_store(&r->busy_left, 1000000);
    fr_data_receiver *recv = NULL;
    fr_data_sender *s = NULL;
    const char *urls[] = {"inproc://data-close-busy"};
    assert_fr_ok(fr_data_receiver_start(&recv, urls[0], true, NULL, 2, rx_handle, r));
    fr_data_sender_opts o = {.window = 4, .busy_retry_ms = 60000};
    assert_fr_ok(fr_data_sender_open(&s, urls, 1, NULL, &o));
    send_payloads(s, 4, 32);
    stat_wait w = {.s = s, .busy = 4};
    assert_true(tst_wait_until(sender_busy_seen, &w, 10000));
    int64_t t0 = tst_mono_ms();
    fr_data_sender_close(s);
    assert_true(tst_mono_ms() - t0 < 1000);
    fr_data_receiver_stop(recv);
    rx_free(r);
}

/* The receiver stops while a handler runs: stop waits for it. */
typedef struct gate_opener {
    rx *r;
    atomic_bool opened;
} gate_opener;

static void *gate_open_later(void *arg)
{
    gate_opener *g = arg;
    struct timespec d = {0, 150 * 1000000};
    nanosleep(&d, NULL); /* the point of the test: stop must wait this long */
    atomic_store(&g->opened, true);
    rx_gate(g->r, false);
    return NULL;
}

static void test_receiver_stop_waits_for_handler(void **state)
{
    rx *r = rx_new(4);
    rx_gate(r, true);
    fr_data_receiver *recv = NULL;
    fr_data_sender *s = NULL;
    const char *urls[] = {"inproc://data-stop-wait"};
    assert_fr_ok(fr_data_receiver_start(&recv, urls[0], true, NULL, 1, rx_handle, r));
    assert_fr_ok(fr_data_sender_open(&s, urls, 1, NULL, NULL));
    send_payloads(s, 1, 32);
    inside_wait w = {r, 1};
    assert_true(tst_wait_until(rx_has_inside, &w, 10000));
    gate_opener g = {.r = r};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, gate_open_later, &g), 0);
    fr_data_receiver_stop(recv);
    assert_true(atomic_load(&g.opened));
    assert_int_equal(rx_inside(r), 0);
    pthread_join(th, NULL);
    fr_data_sender_close(s);
    rx_free(r);
}

static void test_bad_arguments(void **state)
{
    fr_data_sender *s = (fr_data_sender *)1;
    const char *urls[] = {"inproc://data-args"};
    assert_int_equal(fr_data_sender_open(&s, urls, 0, NULL, NULL), FR_EINVAL);
    assert_null(s);
    fr_data_sender_opts o = {.window = 1 << 20};
    assert_int_equal(fr_data_sender_open(&s, urls, 1, NULL, &o), FR_EINVAL);
    o = (fr_data_sender_opts){.queue = 1 << 20};
    assert_int_equal(fr_data_sender_open(&s, urls, 1, NULL, &o), FR_EINVAL);
    assert_int_equal(fr_data_send_buf(NULL, NULL, 0), FR_EINVAL);
    const char *bad[] = {"nosuch://x"};
    assert_int_equal(fr_data_sender_open(&s, bad, 1, NULL, NULL), FR_EADDR);
    assert_null(s);
    fr_data_receiver *r = (fr_data_receiver *)1;
    assert_int_equal(fr_data_receiver_start(&r, urls[0], true, NULL, 0, rx_handle, NULL),
                     FR_EINVAL);
    assert_null(r);
    assert_int_equal(fr_data_receiver_start(&r, "nosuch://x", true, NULL, 1, rx_handle, NULL),
                     FR_EADDR);
    assert_null(r);
    /* Two listeners on one address: the second fails cleanly. */
    fr_data_receiver *r1 = NULL;
    assert_fr_ok(fr_data_receiver_start(&r1, urls[0], true, NULL, 1, rx_handle, NULL));
    assert_int_not_equal(fr_data_receiver_start(&r, urls[0], true, NULL, 1, rx_handle, NULL), 0);
    fr_data_receiver_stop(r1);
    fr_data_sender_close(NULL);
    fr_data_receiver_stop(NULL);
}

/* ---- the ack's wire form against schemas/data.md ---- */

/* Answers by the request's text, with the examples' words. */
static int schema_handler(void *ctx, const void *data, size_t len, fr_error *err)
{
    if (len == 4 && memcmp(data, "busy", 4) == 0) {
        return fr_error_set(err, FR_EBUSY, "", "spool full (1024 MiB)");
    }
    if (len == 3 && memcmp(data, "bad", 3) == 0) {
        return fr_error_set(err, FR_ETYPE, "metrics[3][3]",
                            "metrics[3][3]: a double value cannot be a string");
    }
    return 0;
}

static void raw_request(nng_socket req, const char *text, const char *example)
{
    assert_int_equal(nng_send(req, (void *)text, strlen(text), 0), 0);
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(nng_recv(req, &buf, &len, NNG_FLAG_ALLOC), 0);
    example_assert_equal(example, buf, len);
    nng_free(buf, len);
}

static void test_receiver_writes_schema_examples(void **state)
{
    const char *url = "inproc://data-schema-rx";
    fr_data_receiver *recv = NULL;
    assert_fr_ok(fr_data_receiver_start(&recv, url, true, NULL, 1, schema_handler, NULL));
    nng_socket req;
    assert_int_equal(nng_req0_open(&req), 0);
    assert_int_equal(nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, 5000), 0);
    assert_int_equal(nng_dial(req, url, NULL, 0), 0);
    raw_request(req, "ok", "data-ack");
    raw_request(req, "busy", "data-busy");
    raw_request(req, "bad", "data-reject");
    nng_close(req);
    fr_data_receiver_stop(recv);
}

/* A raw REP socket answers the sender with the examples' bytes. */
static void raw_reply(nng_socket rep, const char *want, const void *reply, size_t len)
{
    char *buf = NULL;
    size_t n = 0;
    assert_int_equal(nng_recv(rep, &buf, &n, NNG_FLAG_ALLOC), 0);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(buf, want, n);
    nng_free(buf, n);
    assert_int_equal(nng_send(rep, (void *)reply, len, 0), 0);
}

static void raw_reply_example(nng_socket rep, const char *want, const char *example)
{
    size_t len;
    uint8_t *bytes = example_load(example, &len);
    raw_reply(rep, want, bytes, len);
    free(bytes);
}

static void test_sender_reads_schema_examples(void **state)
{
    const char *urls[] = {"inproc://data-schema-tx"};
    nng_socket rep;
    assert_int_equal(nng_rep0_open(&rep), 0);
    assert_int_equal(nng_socket_set_ms(rep, NNG_OPT_RECVTIMEO, 5000), 0);
    assert_int_equal(nng_listen(rep, urls[0], NULL, 0), 0);
    /* An unreadable ack is resent after resend_ms. */
    fr_data_sender_opts o = {.window = 1, .resend_ms = 1000, .busy_retry_ms = 10};
    fr_data_sender *s = NULL;
    assert_fr_ok(fr_data_sender_open(&s, urls, 1, NULL, &o));

    /* busy, then accepted */
    assert_fr_ok(fr_data_send(s, "one", 3, 1000));
    raw_reply_example(rep, "one", "data-busy");
    raw_reply_example(rep, "one", "data-ack");
    assert_fr_ok(fr_data_flush(s, 5000));
    /* refused for good */
    assert_fr_ok(fr_data_send(s, "two", 3, 1000));
    raw_reply_example(rep, "two", "data-reject");
    assert_fr_ok(fr_data_flush(s, 5000));
    /* an ack that is not an ack: sent again, not taken as accepted */
    assert_fr_ok(fr_data_send(s, "three", 5, 1000));
    raw_reply(rep, "three", "\xc1", 1);
    raw_reply(rep, "three", "\x81\xa2ok\xa3yes", 8);
    raw_reply_example(rep, "three", "data-ack");
    assert_fr_ok(fr_data_flush(s, 20000));

    fr_data_sender_stats st;
    fr_data_sender_stats_get(s, &st);
    assert_int_equal(st.sent, 3);
    assert_int_equal(st.acked, 2);
    assert_int_equal(st.busy, 1);
    assert_int_equal(st.rejected, 1);
    assert_int_equal(st.resends, 3);
    fr_data_sender_close(s);
    nng_close(rep);
}

/* ---- tls ---- */

static int run(const char *cmd)
{
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static int tls_group_setup(void **state)
{
    tls_dir = tst_tmpdir("fresco-data-tls");
    if (tls_dir == NULL) {
        return -1;
    }
    snprintf(tls_server_cert, sizeof(tls_server_cert), "%s/server.pem", tls_dir);
    snprintf(tls_server_key, sizeof(tls_server_key), "%s/server.key", tls_dir);
    snprintf(tls_ca, sizeof(tls_ca), "%s/ca.pem", tls_dir);
    char cmd[4096];
    snprintf(cmd, sizeof(cmd),
             "cd %s && exec >openssl.log 2>&1 && "
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout ca.key -out ca.pem -days 2 -subj /CN=fresco-data-test-ca && "
             "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout server.key -out server.csr -subj /CN=localhost && "
             "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext && "
             "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
             "-out server.pem -days 2 -extfile san.ext",
             tls_dir);
    return run(cmd) == 0 ? 0 : -1;
}

static int tls_group_teardown(void **state)
{
    tst_rmtree(tls_dir);
    free(tls_dir);
    return 0;
}

#define TRANSPORT_SUITE                                                                            \
    cmocka_unit_test(test_send_ack), cmocka_unit_test(test_sender_listens),                        \
        cmocka_unit_test(test_large_batches), cmocka_unit_test(test_one_slot_window),              \
        cmocka_unit_test(test_refusal_round_trip), cmocka_unit_test(test_queued_send_buf)

int main(void)
{
    fr_log_init("data_test", FR_LOG_ERROR, false);
    /* FRESCO_TEST_FILTER=test_kill_restart runs just that one. */
    if (getenv("FRESCO_TEST_FILTER") != NULL) {
        cmocka_set_test_filter(getenv("FRESCO_TEST_FILTER"));
    }
    const struct CMUnitTest suite[] = {TRANSPORT_SUITE};
    const struct CMUnitTest other[] = {
        cmocka_unit_test(test_busy_backpressure),
        cmocka_unit_test(test_rejected),
        cmocka_unit_test(test_odd_handler_code),
        cmocka_unit_test(test_full_window_without_receiver),
        cmocka_unit_test(test_blocked_send_resumes),
        cmocka_unit_test(test_full_queue_without_receiver),
        cmocka_unit_test(test_queue_drains_to_late_receiver),
        cmocka_unit_test(test_resend_to_slow_receiver),
        cmocka_unit_test(test_close_while_awaiting_ack),
        cmocka_unit_test(test_close_while_backing_off),
        cmocka_unit_test(test_receiver_stop_waits_for_handler),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_receiver_writes_schema_examples),
        cmocka_unit_test(test_sender_reads_schema_examples),
        cmocka_unit_test_teardown(test_two_replicas, replicas_teardown),
        cmocka_unit_test_teardown(test_kill_restart, replicas_teardown),
    };
    int failed = 0;
    const char *schemes[] = {"inproc", "ipc", "tcp", "tls+tcp"};
    int (*setups[])(void **) = {setup_inproc, setup_ipc, setup_tcp, setup_tls};
    for (int i = 0; i < 4; i++) {
        struct CMUnitTest t[sizeof(suite) / sizeof(suite[0])];
        for (size_t j = 0; j < sizeof(suite) / sizeof(suite[0]); j++) {
            t[j] = suite[j];
            t[j].setup_func = setups[i];
            t[j].teardown_func = teardown;
        }
        char name[32];
        snprintf(name, sizeof(name), "data over %s", schemes[i]);
        bool tls = strcmp(schemes[i], "tls+tcp") == 0;
        failed +=
            _cmocka_run_group_tests(name, t, sizeof(t) / sizeof(t[0]), tls ? tls_group_setup : NULL,
                                    tls ? tls_group_teardown : NULL);
    }
    failed += cmocka_run_group_tests_name("data", other, NULL, NULL);
    nng_fini();
    return failed;
}
