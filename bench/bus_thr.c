/* bus_thr: throughput of fresco's data path between two processes over tcp
 * loopback, beside raw nng moving messages of the same size in the same run.
 *
 * Like nng's local_thr/remote_thr, but one binary: for each run the parent
 * forks a receiver and a sender process and collects what they measured
 * through pipes. The parent itself never calls nng (a process that forks
 * while nng's threads run would hand its children a broken library).
 *
 * For each batch size (default 1, 100 and 1000 metrics):
 *   fresco     the sender fills an fr_batch of libvirt-like metrics, encodes
 *              it with fr_batch_encode and queues it with fr_data_send_buf
 *              (or fr_data_send with --copy): the same window of contexts
 *              in flight, plus a queue of batches waiting for a free one
 *              (--queue, by default as deep as the window), acks; the
 *              receiver (fr_data_receiver) decodes every batch with
 *              fr_batch_decode.
 *   req/rep    raw nng REQ/REP, the same window of contexts, messages of the
 *              same byte size as the encoded batches, empty replies, no codec.
 *   push/pull  raw nng PUSH/PULL, same byte size, no acks, no codec.
 *
 * Results are printed, not asserted; the exit code is non-zero only when a
 * run failed (an error, a batch that did not decode, nothing delivered). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "fresco/buf.h"
#include "fresco/data.h"
#include "fresco/err.h"
#include "fresco/metric.h"

#define BENCH_MAX_SIZES        16
#define BENCH_DEFAULT_WINDOW   16
#define BENCH_MAX_REPEAT       15
#define BENCH_SETUP_TIMEOUT_MS 10000
#define BENCH_DRAIN_TIMEOUT_MS 30000

typedef enum bench_kind {
    BENCH_FRESCO,
    BENCH_REQREP,
    BENCH_PUSHPULL,
} bench_kind;

static const char *const bench_kind_names[] = {"fresco", "req/rep", "push/pull"};

/* What the parent hands both children of one run (inherited through fork). */
typedef struct bench_run {
    bench_kind kind;
    uint32_t nmetrics; /* fresco: metrics per batch */
    size_t msg_bytes;  /* raw: bytes per message */
    double seconds;
    int window;
    int queue;        /* fresco: batches queued beyond the window */
    bool rebuild;     /* fresco: rebuild the batch from scratch for every send */
    bool copy;        /* fresco: fr_data_send (copies) instead of fr_data_send_buf */
    bool fresco_only; /* skip the raw nng runs (for profiling) */
    char url[64];
} bench_run;

typedef struct sender_result {
    int rc;           /* 0, or a failure described in error */
    uint64_t msgs;    /* messages acknowledged (req/rep) or sent (push/pull) while timed */
    uint64_t bytes;   /* their payload bytes */
    uint64_t resends; /* fresco: resends during the run */
    double elapsed;   /* s, first send to last ack */
    double cpu;       /* s of user+system CPU while timed */
    char error[160];
} sender_result;

typedef struct receiver_result {
    int rc;
    uint64_t msgs;    /* messages received (including warm-up) */
    uint64_t metrics; /* fresco: metrics decoded */
    uint64_t bad;     /* fresco: batches that failed to decode */
    double elapsed;   /* push/pull: first message to the end marker */
    double cpu;       /* s of user+system CPU over the receiver's life */
    char error[160];
} receiver_result;

/* ---- small helpers ---- */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes within timeout_ms (-1 = no limit). 0, or -1 on EOF,
 * error or timeout. */
static int read_all(int fd, void *p, size_t n, int timeout_ms)
{
    uint8_t *b = p;
    double deadline = mono_s() + timeout_ms / 1000.0;
    while (n > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int wait = -1;
        if (timeout_ms >= 0) {
            double left = deadline - mono_s();
            if (left <= 0) {
                return -1;
            }
            wait = (int)(left * 1000) + 1;
        }
        int pr = poll(&pfd, 1, wait);
        if (pr < 0 && errno == EINTR) {
            continue;
        }
        if (pr <= 0) {
            return -1;
        }
        ssize_t r = read(fd, b, n);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return -1;
        }
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Blocks until the parent closes its end of the control pipe. */
static void wait_for_parent(int ctl_fd)
{
    char c;
    while (read(ctl_fd, &c, 1) != 0) {
        if (errno != EINTR) {
            break;
        }
    }
}

/* A sender hands its result to the parent, then keeps its sockets open until
 * the parent says the receiver has reported: a PUSH socket closed at once
 * could drop the queued end marker, a REQ socket its last acks. */
static void sender_report(int res_fd, int ctl_fd, const sender_result *res)
{
    (void)write_all(res_fd, res, sizeof(*res));
    wait_for_parent(ctl_fd);
}

/* A tcp port free right now on 127.0.0.1 (the kernel picks it). */
static int free_tcp_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0) {
        port = ntohs(sa.sin_port);
    }
    close(fd);
    return port;
}

#define FAIL(res, ...)                                                                             \
    do {                                                                                           \
        (res)->rc = -1;                                                                            \
        snprintf((res)->error, sizeof((res)->error), __VA_ARGS__);                                 \
    } while (0)

/* ---- the batches: what a libvirt collector task sends ---- */

typedef struct metric_kind {
    const char *path; /* below /intel/libvirt/<domain>/ */
    const char *unit;
    bool is_double;
} metric_kind;

static const metric_kind libvirt_kinds[] = {
    {"cpu/cputime", "ns", false},          {"cpu/vcpu/0/cputime", "ns", false},
    {"cpu/vcpu/1/cputime", "ns", false},   {"cpu/utilization", "%", true},
    {"mem/actual", "KiB", false},          {"mem/available", "KiB", false},
    {"mem/unused", "KiB", false},          {"mem/rss", "KiB", false},
    {"mem/major_fault", "", false},        {"mem/utilization", "%", true},
    {"disk/vda/rdbytes", "B", false},      {"disk/vda/wrbytes", "B", false},
    {"disk/vda/rdreq", "", false},         {"disk/vda/wrreq", "", false},
    {"network/tap0/rxbytes", "B", false},  {"network/tap0/txbytes", "B", false},
    {"network/tap0/rxpackets", "", false}, {"network/tap0/txpackets", "", false},
    {"network/tap0/rxdrop", "", false},    {"network/tap0/load", "B/s", true},
};
#define NKINDS (sizeof(libvirt_kinds) / sizeof(libvirt_kinds[0]))

/* Fills b with n metrics: 20 per domain (vm-0, vm-1, ...), uint64 counters
 * and double gauges, two tags per metric, one batch-level tag. */
static int batch_fill(fr_batch *b, uint32_t n, uint64_t seq)
{
    char ns[128], dom[32];
    int64_t now = wall_ns();
    int rv;
    if ((rv = fr_batch_reset(b, "bench-libvirt-1s", "compute-03", seq)) != 0 ||
        (rv = fr_batch_add_tag(b, "plugin_running_on", "compute-03")) != 0) {
        return rv;
    }
    for (uint32_t i = 0; i < n; i++) {
        const metric_kind *k = &libvirt_kinds[i % NKINDS];
        unsigned vm = (unsigned)(i / NKINDS);
        snprintf(dom, sizeof(dom), "vm-%u", vm);
        snprintf(ns, sizeof(ns), "/intel/libvirt/%s/%s", dom, k->path);
        fr_value v = k->is_double ? fr_val_f64(12.5 + (double)(i % 70) * 1.25)
                                  : fr_val_u64(1000000ULL * (i + 1) + seq);
        fr_metric *m = fr_batch_add(b, ns, now, v, k->unit);
        if (m == NULL) {
            return FR_ENOMEM;
        }
        if ((rv = fr_batch_metric_tag(b, m, "domain", dom)) != 0 ||
            (rv = fr_batch_metric_tag(b, m, "flavor", "m1.small")) != 0) {
            return rv;
        }
    }
    return 0;
}

/* The next tick of the same task: new timestamps, values and seq. */
static void batch_advance(fr_batch *b, uint64_t seq)
{
    int64_t now = wall_ns();
    b->seq = seq;
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        fr_metric *m = &b->metrics[i];
        m->ts = now;
        if (m->value.type == FR_VAL_DOUBLE) {
            m->value.v.d += 0.25;
        } else {
            m->value.v.u += 4096 + i;
        }
    }
}

/* ---- fresco: fr_data sender and receiver ---- */

typedef struct fresco_rx {
    uint32_t expect; /* metrics per batch */
    atomic_uint_fast64_t msgs;
    atomic_uint_fast64_t metrics;
    atomic_uint_fast64_t bad;
} fresco_rx;

static int fresco_rx_handle(void *ctx, const void *data, size_t len, fr_error *err)
{
    fresco_rx *rx = ctx;
    fr_batch *b = NULL;
    int rv = fr_batch_decode(data, len, &b, err);
    if (rv != 0) {
        atomic_fetch_add(&rx->bad, 1);
        return rv;
    }
    if (b->nmetrics != rx->expect) {
        atomic_fetch_add(&rx->bad, 1);
    }
    atomic_fetch_add(&rx->metrics, b->nmetrics);
    atomic_fetch_add(&rx->msgs, 1);
    fr_batch_destroy(b);
    return 0;
}

static void fresco_receive(const bench_run *run, int ready_fd, int ctl_fd, receiver_result *res)
{
    fresco_rx rx = {.expect = run->nmetrics};
    fr_data_receiver *r = NULL;
    int rv = fr_data_receiver_start(&r, run->url, true, NULL, run->window, fresco_rx_handle, &rx);
    if (rv != 0) {
        FAIL(res, "fr_data_receiver_start %s: %s", run->url, fr_strerror(rv));
        return;
    }
    (void)write_all(ready_fd, "r", 1);
    wait_for_parent(ctl_fd);
    fr_data_receiver_stop(r);
    res->msgs = atomic_load(&rx.msgs);
    res->metrics = atomic_load(&rx.metrics);
    res->bad = atomic_load(&rx.bad);
}

/* Queues the encoded batch in buf; buf may come back holding other memory. */
static int fresco_queue(fr_data_sender *s, const bench_run *run, fr_buf *buf, int timeout_ms)
{
    if (run->copy) {
        return fr_data_send(s, buf->data, buf->len, timeout_ms);
    }
    return fr_data_send_buf(s, buf, timeout_ms);
}

static void fresco_send(const bench_run *run, int ctl_fd, int res_fd, sender_result *res)
{
    fr_batch *b = fr_batch_new("", "", 0);
    fr_buf buf = FR_BUF_INIT;
    fr_data_sender *s = NULL;
    const char *urls[] = {run->url};
    fr_data_sender_opts opts = {.window = run->window, .queue = run->queue};
    fr_data_sender_stats st0, st1;
    uint64_t seq = 0;
    int rv;

    if (b == NULL || (rv = batch_fill(b, run->nmetrics, seq)) != 0) {
        FAIL(res, "building a batch of %u metrics failed", run->nmetrics);
        goto out;
    }
    if ((rv = fr_data_sender_open(&s, urls, 1, NULL, &opts)) != 0) {
        FAIL(res, "fr_data_sender_open %s: %s", run->url, fr_strerror(rv));
        goto out;
    }
    /* Warm-up: one batch through, so the connection is up before timing. */
    if ((rv = fr_batch_encode(b, &buf)) != 0 ||
        (rv = fresco_queue(s, run, &buf, BENCH_SETUP_TIMEOUT_MS)) != 0 ||
        (rv = fr_data_flush(s, BENCH_SETUP_TIMEOUT_MS)) != 0) {
        FAIL(res, "warm-up batch: %s", fr_strerror(rv));
        goto out;
    }
    fr_data_sender_stats_get(s, &st0);

    double cpu0 = cpu_s();
    double t0 = mono_s();
    double stop = t0 + run->seconds;
    uint64_t bytes = 0;
    do {
        seq++;
        if (run->rebuild) {
            rv = batch_fill(b, run->nmetrics, seq);
        } else {
            batch_advance(b, seq);
            rv = 0;
        }
        fr_buf_reset(&buf);
        if (rv != 0 || (rv = fr_batch_encode(b, &buf)) != 0) {
            FAIL(res, "encoding batch %llu: %s", (unsigned long long)seq, fr_strerror(rv));
            goto out;
        }
        size_t len = buf.len;
        if ((rv = fresco_queue(s, run, &buf, BENCH_DRAIN_TIMEOUT_MS)) != 0) {
            FAIL(res, "queueing batch %llu: %s", (unsigned long long)seq, fr_strerror(rv));
            goto out;
        }
        bytes += len;
    } while (mono_s() < stop);
    if ((rv = fr_data_flush(s, BENCH_DRAIN_TIMEOUT_MS)) != 0) {
        FAIL(res, "fr_data_flush: %s", fr_strerror(rv));
        goto out;
    }
    res->elapsed = mono_s() - t0;
    res->cpu = cpu_s() - cpu0;
    fr_data_sender_stats_get(s, &st1);
    res->msgs = st1.acked - st0.acked;
    res->bytes = bytes;
    res->resends = st1.resends - st0.resends;
    if (st1.rejected != st0.rejected) {
        FAIL(res, "the receiver rejected %llu batches",
             (unsigned long long)(st1.rejected - st0.rejected));
    } else if (res->msgs != seq) {
        FAIL(res, "%llu batches sent, %llu acknowledged", (unsigned long long)seq,
             (unsigned long long)res->msgs);
    }
out:
    sender_report(res_fd, ctl_fd, res);
    fr_data_sender_close(s);
    fr_buf_free(&buf);
    fr_batch_destroy(b);
}

/* ---- raw nng REQ/REP with a window of contexts ---- */

typedef struct raw_rep raw_rep;
typedef struct raw_rep_ctx {
    raw_rep *rep;
    nng_ctx ctx;
    nng_aio *aio;
    bool sending;
} raw_rep_ctx;

struct raw_rep {
    atomic_uint_fast64_t msgs;
    atomic_int error; /* first nng error other than closed */
};

static void raw_rep_cb(void *arg)
{
    raw_rep_ctx *c = arg;
    int rv = nng_aio_result(c->aio);
    if (c->sending) {
        c->sending = false;
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(c->aio));
            if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
                return;
            }
        }
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    if (rv != 0) {
        if (rv != NNG_ECLOSED && rv != NNG_ECANCELED) {
            int none = 0;
            atomic_compare_exchange_strong(&c->rep->error, &none, rv);
        }
        return;
    }
    nng_msg *m = nng_aio_get_msg(c->aio);
    atomic_fetch_add(&c->rep->msgs, 1);
    nng_msg_clear(m); /* the reply is the empty ack */
    nng_aio_set_msg(c->aio, m);
    c->sending = true;
    nng_ctx_send(c->ctx, c->aio);
}

static void raw_reqrep_receive(const bench_run *run, int ready_fd, int ctl_fd, receiver_result *res)
{
    raw_rep rep = {0};
    raw_rep_ctx *cs = calloc((size_t)run->window, sizeof(*cs));
    nng_socket sock = NNG_SOCKET_INITIALIZER;
    int opened = 0, rv;

    if (cs == NULL) {
        FAIL(res, "out of memory");
        return;
    }
    if ((rv = nng_rep0_open(&sock)) != 0 ||
        (rv = nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, 0)) != 0 ||
        (rv = nng_listen(sock, run->url, NULL, 0)) != 0) {
        FAIL(res, "rep listen %s: %s", run->url, nng_strerror(rv));
        goto out;
    }
    for (; opened < run->window; opened++) {
        raw_rep_ctx *c = &cs[opened];
        c->rep = &rep;
        if ((rv = nng_aio_alloc(&c->aio, raw_rep_cb, c)) != 0) {
            FAIL(res, "nng_aio_alloc: %s", nng_strerror(rv));
            goto out;
        }
        if ((rv = nng_ctx_open(&c->ctx, sock)) != 0) {
            nng_aio_free(c->aio);
            FAIL(res, "nng_ctx_open: %s", nng_strerror(rv));
            goto out;
        }
        nng_ctx_recv(c->ctx, c->aio);
    }
    (void)write_all(ready_fd, "r", 1);
    wait_for_parent(ctl_fd);
out:
    nng_close(sock);
    for (int i = 0; i < opened; i++) {
        nng_aio_free(cs[i].aio);
    }
    free(cs);
    res->msgs = atomic_load(&rep.msgs);
    if (res->rc == 0 && atomic_load(&rep.error) != 0) {
        FAIL(res, "rep: %s", nng_strerror(atomic_load(&rep.error)));
    }
}

typedef struct raw_req raw_req;
typedef struct raw_req_ctx {
    raw_req *req;
    nng_ctx ctx;
    nng_aio *aio;
    bool sending;
} raw_req_ctx;

struct raw_req {
    const uint8_t *payload;
    size_t len;
    atomic_bool stop;
    atomic_uint_fast64_t acked;
    atomic_int active; /* contexts still cycling */
    atomic_int error;
    _Atomic double t_end; /* when the last context finished */
};

static void raw_req_finish(raw_req_ctx *c, int rv)
{
    if (rv != 0) {
        int none = 0;
        atomic_compare_exchange_strong(&c->req->error, &none, rv);
    }
    if (atomic_fetch_sub(&c->req->active, 1) == 1) {
        atomic_store(&c->req->t_end, mono_s());
    }
}

static void raw_req_issue(raw_req_ctx *c)
{
    nng_msg *m;
    int rv = nng_msg_alloc(&m, c->req->len);
    if (rv != 0) {
        raw_req_finish(c, rv);
        return;
    }
    memcpy(nng_msg_body(m), c->req->payload, c->req->len);
    nng_aio_set_msg(c->aio, m);
    c->sending = true;
    nng_ctx_send(c->ctx, c->aio);
}

static void raw_req_cb(void *arg)
{
    raw_req_ctx *c = arg;
    int rv = nng_aio_result(c->aio);
    if (c->sending) {
        c->sending = false;
        if (rv != 0) {
            nng_msg_free(nng_aio_get_msg(c->aio));
            raw_req_finish(c, rv);
            return;
        }
        nng_ctx_recv(c->ctx, c->aio);
        return;
    }
    if (rv != 0) {
        raw_req_finish(c, rv);
        return;
    }
    nng_msg_free(nng_aio_get_msg(c->aio));
    atomic_fetch_add(&c->req->acked, 1);
    if (atomic_load(&c->req->stop)) {
        raw_req_finish(c, 0);
        return;
    }
    raw_req_issue(c);
}

/* One synchronous round trip on a context, for the warm-up. */
static int raw_req_roundtrip(nng_socket sock, const uint8_t *payload, size_t len)
{
    nng_ctx ctx;
    nng_aio *aio = NULL;
    nng_msg *m = NULL;
    int rv;
    if ((rv = nng_ctx_open(&ctx, sock)) != 0) {
        return rv;
    }
    if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0 || (rv = nng_msg_alloc(&m, len)) != 0) {
        goto out;
    }
    memcpy(nng_msg_body(m), payload, len);
    nng_aio_set_timeout(aio, BENCH_SETUP_TIMEOUT_MS);
    nng_aio_set_msg(aio, m);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) != 0) {
        nng_msg_free(m);
        goto out;
    }
    nng_ctx_recv(ctx, aio);
    nng_aio_wait(aio);
    if ((rv = nng_aio_result(aio)) == 0) {
        nng_msg_free(nng_aio_get_msg(aio));
    }
out:
    nng_aio_free(aio);
    nng_ctx_close(ctx);
    return rv;
}

static void raw_reqrep_send(const bench_run *run, int ctl_fd, int res_fd, sender_result *res)
{
    raw_req req = {.len = run->msg_bytes};
    raw_req_ctx *cs = calloc((size_t)run->window, sizeof(*cs));
    uint8_t *payload = malloc(run->msg_bytes);
    nng_socket sock = NNG_SOCKET_INITIALIZER;
    int opened = 0, rv;

    if (cs == NULL || payload == NULL) {
        FAIL(res, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < run->msg_bytes; i++) {
        payload[i] = (uint8_t)(i * 31u);
    }
    req.payload = payload;
    /* no resends in the baseline: an ack that takes long is still counted */
    if ((rv = nng_req0_open(&sock)) != 0 ||
        (rv = nng_socket_set_ms(sock, NNG_OPT_REQ_RESENDTIME, 60000)) != 0 ||
        (rv = nng_dial(sock, run->url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
        FAIL(res, "req dial %s: %s", run->url, nng_strerror(rv));
        goto out;
    }
    if ((rv = raw_req_roundtrip(sock, payload, run->msg_bytes)) != 0) {
        FAIL(res, "req warm-up: %s", nng_strerror(rv));
        goto out;
    }
    for (; opened < run->window; opened++) {
        raw_req_ctx *c = &cs[opened];
        c->req = &req;
        if ((rv = nng_aio_alloc(&c->aio, raw_req_cb, c)) != 0) {
            FAIL(res, "nng_aio_alloc: %s", nng_strerror(rv));
            goto out;
        }
        if ((rv = nng_ctx_open(&c->ctx, sock)) != 0) {
            nng_aio_free(c->aio);
            FAIL(res, "nng_ctx_open: %s", nng_strerror(rv));
            goto out;
        }
    }
    double cpu0 = cpu_s();
    double t0 = mono_s();
    atomic_store(&req.active, run->window);
    for (int i = 0; i < run->window; i++) {
        raw_req_issue(&cs[i]);
    }
    sleep_ms((int)(run->seconds * 1000));
    atomic_store(&req.stop, true);
    double deadline = mono_s() + BENCH_DRAIN_TIMEOUT_MS / 1000.0;
    while (atomic_load(&req.active) > 0 && mono_s() < deadline) {
        sleep_ms(1);
    }
    if (atomic_load(&req.active) > 0) {
        FAIL(res, "req: replies still missing after %d ms", BENCH_DRAIN_TIMEOUT_MS);
        goto out;
    }
    res->elapsed = atomic_load(&req.t_end) - t0;
    res->cpu = cpu_s() - cpu0;
    res->msgs = atomic_load(&req.acked);
    res->bytes = res->msgs * run->msg_bytes;
    if (atomic_load(&req.error) != 0) {
        FAIL(res, "req: %s", nng_strerror(atomic_load(&req.error)));
    }
out:
    sender_report(res_fd, ctl_fd, res);
    nng_close(sock);
    for (int i = 0; i < opened; i++) {
        nng_aio_free(cs[i].aio);
    }
    free(cs);
    free(payload);
}

/* ---- raw nng PUSH/PULL ---- */

typedef struct raw_pull {
    nng_socket sock;
    uint64_t msgs;
    double t_first, t_end;
    int error;
    atomic_bool done;
} raw_pull;

static void *raw_pull_loop(void *arg)
{
    raw_pull *p = arg;
    for (;;) {
        nng_msg *m;
        int rv = nng_recvmsg(p->sock, &m, 0);
        if (rv != 0) {
            if (rv != NNG_ECLOSED) {
                p->error = rv;
            }
            break;
        }
        size_t len = nng_msg_len(m);
        nng_msg_free(m);
        if (len == 0) { /* the end marker */
            p->t_end = mono_s();
            break;
        }
        if (p->msgs++ == 0) {
            p->t_first = mono_s();
        }
    }
    atomic_store(&p->done, true);
    return NULL;
}

static void raw_pushpull_receive(const bench_run *run, int ready_fd, int ctl_fd,
                                 receiver_result *res)
{
    raw_pull p = {.sock = NNG_SOCKET_INITIALIZER};
    pthread_t th;
    int rv;
    if ((rv = nng_pull0_open(&p.sock)) != 0 ||
        (rv = nng_socket_set_size(p.sock, NNG_OPT_RECVMAXSZ, 0)) != 0 ||
        (rv = nng_listen(p.sock, run->url, NULL, 0)) != 0) {
        FAIL(res, "pull listen %s: %s", run->url, nng_strerror(rv));
        nng_close(p.sock);
        return;
    }
    (void)nng_socket_set_int(p.sock, NNG_OPT_RECVBUF, run->window);
    if (pthread_create(&th, NULL, raw_pull_loop, &p) != 0) {
        FAIL(res, "pthread_create failed");
        nng_close(p.sock);
        return;
    }
    (void)write_all(ready_fd, "r", 1);
    wait_for_parent(ctl_fd);
    /* the sender has sent its end marker by now: give it time to arrive */
    double deadline = mono_s() + BENCH_SETUP_TIMEOUT_MS / 1000.0;
    while (!atomic_load(&p.done) && mono_s() < deadline) {
        sleep_ms(1);
    }
    nng_close(p.sock);
    pthread_join(th, NULL);
    res->msgs = p.msgs;
    if (p.error != 0) {
        FAIL(res, "pull: %s", nng_strerror(p.error));
    } else if (p.t_end == 0 || p.msgs == 0) {
        FAIL(res, "pull: the end marker never came");
    } else {
        res->elapsed = p.t_end - p.t_first;
    }
}

static void raw_pushpull_send(const bench_run *run, int ctl_fd, int res_fd, sender_result *res)
{
    nng_socket sock = NNG_SOCKET_INITIALIZER;
    uint8_t *payload = malloc(run->msg_bytes);
    int rv;
    if (payload == NULL) {
        FAIL(res, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < run->msg_bytes; i++) {
        payload[i] = (uint8_t)(i * 31u);
    }
    if ((rv = nng_push0_open(&sock)) != 0 ||
        (rv = nng_dial(sock, run->url, NULL, NNG_FLAG_NONBLOCK)) != 0) {
        FAIL(res, "push dial %s: %s", run->url, nng_strerror(rv));
        goto out;
    }
    (void)nng_socket_set_int(sock, NNG_OPT_SENDBUF, run->window);
    double cpu0 = cpu_s();
    double t0 = mono_s();
    double stop = t0 + run->seconds;
    uint64_t n = 0;
    do {
        nng_msg *m;
        if ((rv = nng_msg_alloc(&m, run->msg_bytes)) != 0) {
            FAIL(res, "nng_msg_alloc: %s", nng_strerror(rv));
            goto out;
        }
        memcpy(nng_msg_body(m), payload, run->msg_bytes);
        if ((rv = nng_sendmsg(sock, m, 0)) != 0) {
            nng_msg_free(m);
            FAIL(res, "push: %s", nng_strerror(rv));
            goto out;
        }
        n++;
    } while (mono_s() < stop);
    nng_msg *end;
    if ((rv = nng_msg_alloc(&end, 0)) != 0 || (rv = nng_sendmsg(sock, end, 0)) != 0) {
        FAIL(res, "push end marker: %s", nng_strerror(rv));
        goto out;
    }
    res->elapsed = mono_s() - t0;
    res->cpu = cpu_s() - cpu0;
    res->msgs = n;
    res->bytes = n * run->msg_bytes;
out:
    sender_report(res_fd, ctl_fd, res);
    nng_close(sock);
    free(payload);
}

/* ---- one run: fork a receiver and a sender ---- */

static void run_receiver(const bench_run *run, int ready_fd, int ctl_fd, int res_fd)
{
    receiver_result res = {0};
    switch (run->kind) {
    case BENCH_FRESCO:
        fresco_receive(run, ready_fd, ctl_fd, &res);
        break;
    case BENCH_REQREP:
        raw_reqrep_receive(run, ready_fd, ctl_fd, &res);
        break;
    case BENCH_PUSHPULL:
        raw_pushpull_receive(run, ready_fd, ctl_fd, &res);
        break;
    }
    res.cpu = cpu_s();
    (void)write_all(res_fd, &res, sizeof(res));
}

static void run_sender(const bench_run *run, int ctl_fd, int res_fd)
{
    sender_result res = {0};
    switch (run->kind) {
    case BENCH_FRESCO:
        fresco_send(run, ctl_fd, res_fd, &res);
        break;
    case BENCH_REQREP:
        raw_reqrep_send(run, ctl_fd, res_fd, &res);
        break;
    case BENCH_PUSHPULL:
        raw_pushpull_send(run, ctl_fd, res_fd, &res);
        break;
    }
}

typedef struct child {
    pid_t pid;
    int ctl_fd; /* write end; closing it lets the child finish */
    int res_fd; /* read end of the child's result */
} child;

/* Closes every descriptor above stderr but a, b and c (-1: none). */
static void keep_only_fds(int a, int b, int c)
{
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) {
        max = 65536;
    }
    for (int fd = 3; fd < (int)max; fd++) {
        if (fd != a && fd != b && fd != c) {
            close(fd);
        }
    }
}

/* Forks the receiver or the sender of run. For the receiver, *ready_fd gets
 * the read end of a pipe it writes one byte to once it listens. */
static int spawn(child *c, const bench_run *run, bool is_receiver, int *ready_fd)
{
    int ctl[2], res[2], ready[2] = {-1, -1};
    if (pipe(ctl) != 0) {
        return -1;
    }
    if (pipe(res) != 0) {
        close(ctl[0]);
        close(ctl[1]);
        return -1;
    }
    if (is_receiver && pipe(ready) != 0) {
        close(ctl[0]);
        close(ctl[1]);
        close(res[0]);
        close(res[1]);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        /* Keep only our own pipe ends: an inherited write end of the other
         * child's control pipe would keep it from ever seeing EOF. */
        keep_only_fds(ctl[0], res[1], ready[1]);
        if (is_receiver) {
            run_receiver(run, ready[1], ctl[0], res[1]);
        } else {
            run_sender(run, ctl[0], res[1]);
        }
        /* exit(), not _exit(): under ASan the leak check runs here */
        exit(0);
    }
    close(ctl[0]);
    close(res[1]);
    if (is_receiver) {
        close(ready[1]);
        *ready_fd = ready[0];
    }
    c->pid = pid;
    c->ctl_fd = ctl[1];
    c->res_fd = res[0];
    return 0;
}

/* Ends a child: lets it finish, and kills it if it does not within 10 s. */
static int reap(child *c)
{
    int status = 0;
    if (c->pid <= 0) {
        return 0;
    }
    if (c->ctl_fd >= 0) {
        close(c->ctl_fd);
        c->ctl_fd = -1;
    }
    double deadline = mono_s() + 10.0;
    for (;;) {
        pid_t w = waitpid(c->pid, &status, WNOHANG);
        if (w == c->pid) {
            break;
        }
        if (w < 0 && errno != EINTR) {
            break;
        }
        if (mono_s() > deadline) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &status, 0);
            status = -1;
            break;
        }
        sleep_ms(5);
    }
    if (c->res_fd >= 0) {
        close(c->res_fd);
        c->res_fd = -1;
    }
    c->pid = 0;
    return (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) ? 0 : -1;
}

static int run_once(const bench_run *tmpl, sender_result *sr, receiver_result *rr)
{
    bench_run run = *tmpl;
    child rx = {.ctl_fd = -1, .res_fd = -1}, tx = {.ctl_fd = -1, .res_fd = -1};
    int ready_fd = -1, rc = 0;
    char c;

    memset(sr, 0, sizeof(*sr));
    memset(rr, 0, sizeof(*rr));
    int port = free_tcp_port();
    if (port < 0) {
        FAIL(sr, "no free tcp port");
        return -1;
    }
    snprintf(run.url, sizeof(run.url), "tcp://127.0.0.1:%d", port);

    if (spawn(&rx, &run, true, &ready_fd) != 0) {
        FAIL(sr, "fork: %s", strerror(errno));
        return -1;
    }
    if (read_all(ready_fd, &c, 1, BENCH_SETUP_TIMEOUT_MS) != 0) {
        /* it failed to listen: its result says why */
        close(rx.ctl_fd);
        rx.ctl_fd = -1;
        if (read_all(rx.res_fd, rr, sizeof(*rr), BENCH_SETUP_TIMEOUT_MS) != 0) {
            FAIL(rr, "the receiver did not start");
        }
        close(ready_fd);
        reap(&rx);
        return -1;
    }
    close(ready_fd);

    if (spawn(&tx, &run, false, NULL) != 0) {
        FAIL(sr, "fork: %s", strerror(errno));
        reap(&rx);
        return -1;
    }
    int budget = (int)(run.seconds * 1000) + BENCH_DRAIN_TIMEOUT_MS + BENCH_SETUP_TIMEOUT_MS;
    if (read_all(tx.res_fd, sr, sizeof(*sr), budget) != 0) {
        FAIL(sr, "the sender did not report within %d ms", budget);
        rc = -1;
    }
    close(rx.ctl_fd);
    rx.ctl_fd = -1;
    if (read_all(rx.res_fd, rr, sizeof(*rr), BENCH_SETUP_TIMEOUT_MS * 2) != 0) {
        FAIL(rr, "the receiver did not report");
        rc = -1;
    }
    if (reap(&tx) != 0 && rc == 0 && sr->rc == 0) {
        FAIL(sr, "the sender exited abnormally");
    }
    if (reap(&rx) != 0 && rc == 0 && rr->rc == 0) {
        FAIL(rr, "the receiver exited abnormally");
    }
    if (sr->rc != 0 || rr->rc != 0) {
        rc = -1;
    }
    return rc;
}

/* ---- the table ---- */

/* One measurement: messages/s and the CPU share of each process. */
typedef struct sample {
    double msgs;      /* messages (batches) per second */
    double bytes;     /* per message */
    double cpu_tx;    /* CPU share of the sender, 1.0 = one core */
    double cpu_rx;    /* ... of the receiver */
    uint64_t resends; /* fresco */
} sample;

typedef struct row {
    uint32_t nmetrics;
    sample fr, rr, pp;     /* fresco, raw REQ/REP, raw PUSH/PULL */
    double enc_ns, dec_ns; /* codec alone, one thread: ns per metric */
} row;

static void report_failure(bench_kind kind, uint32_t n, const sender_result *sr,
                           const receiver_result *rr)
{
    if (sr->rc != 0) {
        fprintf(stderr, "bus_thr: %s, batch %u: sender: %s\n", bench_kind_names[kind], n,
                sr->error);
    }
    if (rr->rc != 0) {
        fprintf(stderr, "bus_thr: %s, batch %u: receiver: %s\n", bench_kind_names[kind], n,
                rr->error);
    }
}

/* Runs one kind once; false (with the reason on stderr) when it failed or
 * delivered nothing, or when fresco's receiver did not decode every batch. */
static bool measure(const bench_run *run, sample *out)
{
    sender_result sr;
    receiver_result rr;
    memset(out, 0, sizeof(*out));
    if (run_once(run, &sr, &rr) != 0) {
        report_failure(run->kind, run->nmetrics, &sr, &rr);
        return false;
    }
    if (run->kind == BENCH_FRESCO &&
        (rr.bad != 0 || rr.msgs < sr.msgs || rr.metrics < sr.msgs * run->nmetrics)) {
        fprintf(stderr,
                "bus_thr: fresco, batch %u: %llu acked, receiver decoded %llu batches "
                "(%llu metrics), %llu bad\n",
                run->nmetrics, (unsigned long long)sr.msgs, (unsigned long long)rr.msgs,
                (unsigned long long)rr.metrics, (unsigned long long)rr.bad);
        return false;
    }
    if (run->kind == BENCH_PUSHPULL) {
        /* no acks: the receiver's clock, first message to the end marker */
        if (rr.msgs == 0 || rr.elapsed <= 0) {
            fprintf(stderr, "bus_thr: push/pull: nothing received\n");
            return false;
        }
        out->msgs = (double)rr.msgs / rr.elapsed;
        out->bytes = (double)run->msg_bytes;
        out->cpu_tx = sr.cpu / sr.elapsed;
        out->cpu_rx = rr.cpu / rr.elapsed;
        return true;
    }
    if (sr.msgs == 0) {
        fprintf(stderr, "bus_thr: %s: nothing acknowledged\n", bench_kind_names[run->kind]);
        return false;
    }
    out->msgs = (double)sr.msgs / sr.elapsed;
    out->bytes = (double)sr.bytes / (double)sr.msgs;
    out->cpu_tx = sr.cpu / sr.elapsed;
    out->cpu_rx = rr.cpu / sr.elapsed;
    out->resends = sr.resends;
    return true;
}

static int sample_cmp(const void *a, const void *b)
{
    double x = ((const sample *)a)->msgs, y = ((const sample *)b)->msgs;
    return (x > y) - (x < y);
}

/* The median of `repeat` measurements (by messages/s). */
static bool measure_median(const bench_run *run, int repeat, sample *out)
{
    sample v[BENCH_MAX_REPEAT];
    for (int i = 0; i < repeat; i++) {
        if (!measure(run, &v[i])) {
            return false;
        }
    }
    qsort(v, (size_t)repeat, sizeof(v[0]), sample_cmp);
    *out = v[repeat / 2];
    return true;
}

/* The codec alone in this process, one thread: ns per metric to encode and
 * to decode the benchmark's batch. No nng involved (the parent stays
 * nng-free). */
static bool codec_alone(uint32_t n, double seconds, double *enc_ns, double *dec_ns)
{
    fr_batch *b = fr_batch_new("", "", 0);
    fr_buf buf = FR_BUF_INIT;
    bool ok = false;
    uint64_t rounds = 0;
    double budget = seconds / 4 > 0.05 ? seconds / 4 : 0.05;
    if (b == NULL || batch_fill(b, n, 1) != 0) {
        goto out;
    }
    /* the clock is read every 64 rounds: it would weigh on small batches */
    double t0 = mono_s();
    do {
        for (int k = 0; k < 64; k++) {
            batch_advance(b, ++rounds);
            fr_buf_reset(&buf);
            if (fr_batch_encode(b, &buf) != 0) {
                goto out;
            }
        }
    } while (mono_s() - t0 < budget);
    *enc_ns = (mono_s() - t0) * 1e9 / ((double)rounds * n);
    rounds = 0;
    t0 = mono_s();
    do {
        for (int k = 0; k < 64; k++) {
            fr_batch *d = NULL;
            if (fr_batch_decode(buf.data, buf.len, &d, NULL) != 0) {
                goto out;
            }
            fr_batch_destroy(d);
            rounds++;
        }
    } while (mono_s() - t0 < budget);
    *dec_ns = (mono_s() - t0) * 1e9 / ((double)rounds * n);
    ok = true;
out:
    fr_buf_free(&buf);
    fr_batch_destroy(b);
    return ok;
}

static bool run_size(const bench_run *base, int repeat, uint32_t n, row *out)
{
    bench_run run = *base;
    memset(out, 0, sizeof(*out));
    out->nmetrics = n;
    run.nmetrics = n;

    run.kind = BENCH_FRESCO;
    if (!measure_median(&run, repeat, &out->fr)) {
        return false;
    }
    if (base->fresco_only) {
        out->rr = out->fr;
        out->pp = out->fr;
        return codec_alone(n, base->seconds, &out->enc_ns, &out->dec_ns);
    }
    /* the raw runs move messages of the encoded batches' mean size */
    run.msg_bytes = (size_t)(out->fr.bytes + 0.5);
    run.kind = BENCH_REQREP;
    if (!measure_median(&run, repeat, &out->rr)) {
        return false;
    }
    run.kind = BENCH_PUSHPULL;
    if (!measure_median(&run, repeat, &out->pp)) {
        return false;
    }
    if (!codec_alone(n, base->seconds, &out->enc_ns, &out->dec_ns)) {
        fprintf(stderr, "bus_thr: batch %u: the codec alone failed\n", n);
        return false;
    }
    return true;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bus_thr [--seconds S] [--sizes N,N,...] [--window N] [--queue N] "
            "[--repeat N] [--rebuild] [--copy] [--fresco-only]\n"
            "  --seconds S   duration of each run (default 5)\n"
            "  --sizes LIST  metrics per batch (default 1,100,1000)\n"
            "  --window N    batches in flight / REQ contexts (default %d)\n"
            "  --queue N     fresco: batches queued beyond the window while it is full\n"
            "                (fr_data_sender_opts.queue; default: the window)\n"
            "  --repeat N    run each measurement N times and report the median (default 1)\n"
            "  --rebuild     rebuild each batch from scratch before encoding it\n"
            "                (default: update timestamps, values and seq in place)\n"
            "  --copy        queue batches with fr_data_send, which copies them\n"
            "                (default: fr_data_send_buf, which takes the buffer over)\n"
            "  --fresco-only skip the raw nng runs (for profiling fresco alone)\n",
            BENCH_DEFAULT_WINDOW);
}

/* Matches "--name=value" or "--name value"; *val points at the value. */
static bool opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) {
        return false;
    }
    if (argv[*i][n] == '=') {
        *val = argv[*i] + n + 1;
        return true;
    }
    if (argv[*i][n] == '\0' && *i + 1 < argc) {
        *val = argv[++*i];
        return true;
    }
    return false;
}

static int parse_sizes(const char *s, uint32_t *sizes, int max)
{
    int n = 0;
    while (*s != '\0') {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || errno != 0 || v == 0 || v > FR_MAX_METRICS || n == max ||
            (*end != ',' && *end != '\0')) {
            return -1;
        }
        sizes[n++] = (uint32_t)v;
        s = *end == ',' ? end + 1 : end;
    }
    return n;
}

int main(int argc, char **argv)
{
    bench_run base = {.seconds = 5.0, .window = BENCH_DEFAULT_WINDOW, .queue = -1};
    uint32_t sizes[BENCH_MAX_SIZES] = {1, 100, 1000};
    int nsizes = 3;
    int repeat = 1;

    for (int i = 1; i < argc; i++) {
        const char *v;
        char *end;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--rebuild") == 0) {
            base.rebuild = true;
        } else if (strcmp(argv[i], "--copy") == 0) {
            base.copy = true;
        } else if (strcmp(argv[i], "--fresco-only") == 0) {
            base.fresco_only = true;
        } else if (opt_value(argc, argv, &i, "--seconds", &v)) {
            base.seconds = strtod(v, &end);
            if (*end != '\0' || !(base.seconds > 0 && base.seconds <= 3600)) {
                fprintf(stderr, "bus_thr: --seconds: not a duration in (0, 3600]: '%s'\n", v);
                return 2;
            }
        } else if (opt_value(argc, argv, &i, "--sizes", &v)) {
            if ((nsizes = parse_sizes(v, sizes, BENCH_MAX_SIZES)) <= 0) {
                fprintf(stderr, "bus_thr: --sizes: not a list of batch sizes: '%s'\n", v);
                return 2;
            }
        } else if (opt_value(argc, argv, &i, "--window", &v)) {
            long w = strtol(v, &end, 10);
            if (*end != '\0' || w < 1 || w > 1024) {
                fprintf(stderr, "bus_thr: --window: not a number in 1..1024: '%s'\n", v);
                return 2;
            }
            base.window = (int)w;
        } else if (opt_value(argc, argv, &i, "--queue", &v)) {
            long q = strtol(v, &end, 10);
            if (*end != '\0' || q < 0 || q > 1024) {
                fprintf(stderr, "bus_thr: --queue: not a number in 0..1024: '%s'\n", v);
                return 2;
            }
            base.queue = (int)q;
        } else if (opt_value(argc, argv, &i, "--repeat", &v)) {
            long r = strtol(v, &end, 10);
            if (*end != '\0' || r < 1 || r > BENCH_MAX_REPEAT) {
                fprintf(stderr, "bus_thr: --repeat: not a number in 1..%d: '%s'\n",
                        BENCH_MAX_REPEAT, v);
                return 2;
            }
            repeat = (int)r;
        } else {
            fprintf(stderr, "bus_thr: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (base.queue < 0) {
        base.queue = base.window;
    }
    signal(SIGPIPE, SIG_IGN);

    printf("fresco bus throughput: tcp loopback, 2 processes, window %d, %.1f s per run%s\n"
           "fresco: fr_batch_encode + %s (queue %d) -> fr_data_receiver + fr_batch_decode, "
           "acked\n"
           "raw:    nng REQ/REP (same window of contexts, empty replies) and PUSH/PULL,\n"
           "        messages of the same byte size, no codec\n\n",
           base.window, base.seconds, repeat > 1 ? ", median of several runs" : "",
           base.copy ? "fr_data_send" : "fr_data_send_buf", base.queue);
    printf("%6s %9s %11s %7s %9s %9s %11s %9s %6s  %s\n", "batch", "bytes/msg", "metrics/s", "MB/s",
           "batches/s", "r/r msg/s", "r/r metr/s", "p/p msg/s", "fr/rr",
           "cpu fresco tx/rx  r/r tx/rx");
    row rows[BENCH_MAX_SIZES];
    bool ok[BENCH_MAX_SIZES];
    int failed = 0;
    for (int i = 0; i < nsizes; i++) {
        row *r = &rows[i];
        ok[i] = run_size(&base, repeat, sizes[i], r);
        if (!ok[i]) {
            printf("%6u  failed (see above)\n", sizes[i]);
            failed++;
            continue;
        }
        printf("%6u %9.0f %11.0f %7.1f %9.0f %9.0f %11.0f %9.0f %6.2f  %4.0f%% %4.0f%%  %4.0f%% "
               "%4.0f%%",
               r->nmetrics, r->fr.bytes, r->fr.msgs * r->nmetrics, r->fr.msgs * r->fr.bytes / 1e6,
               r->fr.msgs, r->rr.msgs, r->rr.msgs * r->nmetrics, r->pp.msgs,
               r->fr.msgs / r->rr.msgs, r->fr.cpu_tx * 100, r->fr.cpu_rx * 100, r->rr.cpu_tx * 100,
               r->rr.cpu_rx * 100);
        if (r->fr.resends > 0) {
            printf("  (%llu resends)", (unsigned long long)r->fr.resends);
        }
        printf("\n");
        fflush(stdout);
    }
    printf("\nfr/rr: fresco batches/s over raw REQ/REP messages/s of the same size "
           "(1.00 = no overhead)\n\n");
    printf("codec alone, one thread (ns per metric):\n%6s %8s %8s\n", "batch", "encode", "decode");
    for (int i = 0; i < nsizes; i++) {
        if (ok[i]) {
            printf("%6u %8.0f %8.0f\n", rows[i].nmetrics, rows[i].enc_ns, rows[i].dec_ns);
        }
    }
    return failed == 0 ? 0 : 1;
}
