/* The data path: batches over nng REQ/REP, the reply being the ack.
 *
 * Sender: `window` slots, each an nng REQ context with its own aio running
 * send -> recv ack -> done, so up to `window` batches are in flight. nng's
 * own REQ resend is disabled: the slot resends itself when no ack comes
 * within resend_ms (nng aborts the request on a receive timeout, so each
 * attempt is a fresh copy of the batch), which lets us count resends and
 * wait busy_retry_ms on a "busy" answer without holding any nng thread.
 * A slot keeps the batch's bytes in a plain buffer (fr_data_send_buf hands
 * the caller's over without a copy) and builds each attempt's nng message
 * from it: one allocation and one copy per attempt, as any nng sender.
 * Buffers are swapped between callers, slots and the queue rather than
 * freed, so a steady stream of batches allocates nothing of its own.
 *
 * With opts.queue, batches that find every slot busy wait in a queue, and
 * the callback that frees a slot sends the next one straight away: a busy
 * sender then calls into nng only from nng's own threads, as a bare REQ
 * loop does, instead of waking the caller for every ack and contending
 * with those threads for the socket's locks.
 *
 * Receiver: `workers` REP contexts, each running recv -> handler -> reply.
 *
 * Ack wire form (schemas/data.md): {"ok": true} or
 * {"ok": false, "error": {"code": ..., "message": ..., "where": ...}};
 * code "busy" means "try again later", anything else is a final refusal. */
#include "fresco/data.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "fresco/buf.h"
#include "fresco/log.h"
#include "fresco/metric.h"
#include "fresco/mpdoc.h"

#define DATA_DEFAULT_WINDOW        8
#define DATA_MAX_WINDOW            4096
#define DATA_DEFAULT_RESEND_MS     2000
#define DATA_DEFAULT_BUSY_RETRY_MS 200
#define DATA_MAX_WORKERS           1024
/* A slot keeps a buffer up to this size for its next batch; bigger ones
 * (rare giant batches) go back to malloc. */
#define DATA_KEEP_BYTES (4u * 1024u * 1024u)
/* A reply the peer never reads must not pin a worker forever. */
#define DATA_REPLY_TIMEOUT_MS 10000

/* {"ok": true} in canonical msgpack: the common ack, compared byte-wise
 * before falling back to a full decode. */
static const uint8_t ack_ok[] = {0x81, 0xa2, 'o', 'k', 0xc3};

/* nng_msg_free takes NULL in 1.5, but nothing documents it. */
static void msg_drop(nng_msg *m)
{
    if (m != NULL) {
        nng_msg_free(m);
    }
}

/* Deadline arithmetic on CLOCK_MONOTONIC (the condition variables use it). */
static struct timespec deadline_after(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static int cond_init_monotonic(pthread_cond_t *cv)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0) {
        return FR_ENOMEM;
    }
    int rv = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rv == 0) {
        rv = pthread_cond_init(cv, &attr);
    }
    pthread_condattr_destroy(&attr);
    return rv == 0 ? 0 : FR_ENOMEM;
}

/* ---- sender ---- */

typedef enum slot_state {
    SLOT_IDLE,
    SLOT_SENDING,  /* nng_ctx_send: waiting for a connected replica */
    SLOT_AWAITING, /* nng_ctx_recv: waiting for the ack, up to resend_ms */
    SLOT_BACKOFF,  /* nng_sleep_aio: the receiver said busy */
} slot_state;

typedef struct data_slot {
    fr_data_sender *s;
    nng_ctx ctx;
    nng_aio *aio;
    /* The state and batch belong to whoever runs the slot: the sender
     * thread that took it from the free list, then the aio callback. An
     * idle slot's batch is empty but keeps its memory. */
    slot_state state;
    fr_buf batch;         /* the batch's bytes; each attempt sends a copy */
    fr_data_done_fn done; /* told once how the batch ended; may be NULL */
    void *done_arg;
} data_slot;

/* A batch waiting in the queue, with whom to tell when it is done. */
typedef struct data_queued {
    fr_buf batch;
    fr_data_done_fn done;
    void *done_arg;
} data_queued;

struct fr_data_sender {
    nng_socket sock;
    bool sock_open;
    int window;
    int resend_ms;
    int busy_retry_ms;
    char *name; /* the first url, for log lines */
    data_slot *slots;
    int nslots; /* slots whose ctx and aio exist */

    pthread_mutex_t mu;
    pthread_cond_t cv; /* a slot was freed, or the sender is closing */
    bool mu_init;
    bool cv_init;
    int *free_slots; /* stack of idle slot indexes, under mu */
    int nfree;
    /* Batches waiting for a slot (a ring, under mu); never waiting while a
     * slot is idle. Entries outside the ring are empty buffers. */
    data_queued *queue;
    int queue_cap;
    int queue_head;
    int queue_len;
    fr_buf spare; /* fr_data_send's copy buffer between calls, under mu */
    int callers;  /* threads inside fr_data_send / fr_data_flush, under mu */
    atomic_bool closing;

    atomic_uint_fast64_t sent;
    atomic_uint_fast64_t acked;
    atomic_uint_fast64_t resends;
    atomic_uint_fast64_t busy;
    atomic_uint_fast64_t rejected;
    atomic_uint_fast64_t inflight;
};

typedef enum ack_kind {
    ACK_OK,
    ACK_BUSY,
    ACK_REJECTED,
    ACK_MALFORMED,
} ack_kind;

/* Reads an ack. For a refusal, fills err with the receiver's words. */
static ack_kind ack_parse(const void *data, size_t len, fr_error *err)
{
    if (len == sizeof(ack_ok) && memcmp(data, ack_ok, len) == 0) {
        return ACK_OK;
    }
    fr_doc doc;
    fr_error derr;
    if (fr_doc_decode(data, len, &doc, &derr) != 0) {
        fr_error_set(err, FR_EPROTO, derr.where, "ack does not decode: %s", derr.message);
        return ACK_MALFORMED;
    }
    ack_kind kind = ACK_MALFORMED;
    bool ok;
    const fr_node *e;
    const char *code = NULL;
    const char *msg = "";
    const char *where = "";
    if (fr_node_get_bool(doc.root, "ok", &ok) != 0) {
        fr_error_set(err, FR_EPROTO, "ok", "ack has no boolean \"ok\"");
    } else if (ok) {
        kind = ACK_OK;
    } else if ((e = fr_node_get(doc.root, "error")) == NULL ||
               fr_node_get_str(e, "code", &code) != 0) {
        fr_error_set(err, FR_EPROTO, "error.code", "refusal without an error code");
    } else {
        (void)fr_node_get_str(e, "message", &msg);
        (void)fr_node_get_str(e, "where", &where);
        kind = strcmp(code, fr_errcode(FR_EBUSY)) == 0 ? ACK_BUSY : ACK_REJECTED;
        fr_error_set(err, FR_EREMOTE, where, "%s: %s", code, msg);
    }
    fr_doc_free(&doc);
    return kind;
}

/* Empties b for reuse, keeping its memory unless that is unusually big. */
static void buf_recycle(fr_buf *b)
{
    if (b->cap > DATA_KEEP_BYTES) {
        fr_buf_free(b);
    } else {
        fr_buf_reset(b);
    }
}

static void buf_swap(fr_buf *a, fr_buf *b)
{
    fr_buf t = *a;
    *a = *b;
    *b = t;
}

static void slot_attempt(data_slot *sl);

/* The slot's batch is done with (rv 0: acked; FR_EREMOTE: refused, err
 * says why): its sender is told, then the slot sends the next queued batch,
 * or goes idle. */
static void slot_release(data_slot *sl, int rv, const fr_error *err)
{
    fr_data_sender *s = sl->s;
    fr_data_done_fn done = sl->done;
    void *done_arg = sl->done_arg;
    sl->done = NULL;
    sl->done_arg = NULL;
    if (done != NULL) {
        done(done_arg, rv, err);
    }
    buf_recycle(&sl->batch);
    sl->state = SLOT_IDLE;
    pthread_mutex_lock(&s->mu);
    atomic_fetch_sub(&s->inflight, 1);
    bool next = s->queue_len > 0 && !atomic_load(&s->closing);
    if (next) {
        data_queued *q = &s->queue[s->queue_head];
        buf_swap(&sl->batch, &q->batch);
        sl->done = q->done;
        sl->done_arg = q->done_arg;
        q->done = NULL;
        q->done_arg = NULL;
        s->queue_head = (s->queue_head + 1) % s->queue_cap;
        s->queue_len--;
    } else {
        s->free_slots[s->nfree++] = (int)(sl - s->slots);
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (next) {
        slot_attempt(sl);
    }
}

static void slot_backoff(data_slot *sl, int ms)
{
    sl->state = SLOT_BACKOFF;
    /* nng_sleep_aio ends early with NNG_ETIMEDOUT when the aio's own
     * timeout is shorter than the sleep: take the timeout off. */
    nng_aio_set_timeout(sl->aio, NNG_DURATION_INFINITE);
    nng_sleep_aio(ms, sl->aio);
}

/* Sends a fresh copy of the batch. The send completes once nng has handed
 * the request to a connected replica, so it waits as long as none is
 * connected: there is nothing to resend until something was sent. */
static void slot_attempt(data_slot *sl)
{
    nng_msg *m;
    if (nng_msg_alloc(&m, sl->batch.len) != 0) {
        slot_backoff(sl, sl->s->busy_retry_ms);
        return;
    }
    if (sl->batch.len > 0) {
        memcpy(nng_msg_body(m), sl->batch.data, sl->batch.len);
    }
    sl->state = SLOT_SENDING;
    nng_aio_set_msg(sl->aio, m);
    nng_aio_set_timeout(sl->aio, NNG_DURATION_INFINITE);
    nng_ctx_send(sl->ctx, sl->aio);
}

static void slot_on_ack(data_slot *sl, nng_msg *reply)
{
    fr_data_sender *s = sl->s;
    fr_error err;
    fr_error_clear(&err);
    ack_kind kind = ack_parse(nng_msg_body(reply), nng_msg_len(reply), &err);
    nng_msg_free(reply);
    switch (kind) {
    case ACK_OK:
        atomic_fetch_add(&s->acked, 1);
        slot_release(sl, 0, NULL);
        return;
    case ACK_BUSY:
        atomic_fetch_add(&s->busy, 1);
        slot_backoff(sl, s->busy_retry_ms);
        return;
    case ACK_REJECTED:
        atomic_fetch_add(&s->rejected, 1);
        fr_warn("data", "%s: batch rejected by the receiver, dropped: %s%s%s", s->name, err.message,
                err.where[0] ? " at " : "", err.where);
        slot_release(sl, FR_EREMOTE, &err);
        return;
    case ACK_MALFORMED:
        /* A receiver that answers garbage may or may not have kept the
         * batch: resending is safe (consumers drop duplicates), dropping
         * is not. Pause so a broken peer is not hammered. */
        fr_warn("data", "%s: unreadable ack, resending the batch: %s", s->name, err.message);
        slot_backoff(sl, s->resend_ms);
        return;
    }
}

static void slot_cb(void *arg)
{
    data_slot *sl = arg;
    fr_data_sender *s = sl->s;
    int rv = nng_aio_result(sl->aio);
    nng_msg *m = nng_aio_get_msg(sl->aio);
    nng_aio_set_msg(sl->aio, NULL);

    if (atomic_load(&s->closing) || rv == NNG_ECLOSED) {
        /* The batch is abandoned; close counts it and frees it. (ECLOSED
         * without closing: the socket went with nng_fini; retrying would
         * spin.) */
        msg_drop(m);
        return;
    }
    switch (sl->state) {
    case SLOT_SENDING:
        if (rv != 0) {
            /* On failure the request comes back to us. */
            msg_drop(m);
            fr_debug("data", "%s: send failed (%s), retrying", s->name, nng_strerror(rv));
            slot_backoff(sl, s->busy_retry_ms);
            return;
        }
        sl->state = SLOT_AWAITING;
        nng_aio_set_timeout(sl->aio, s->resend_ms);
        nng_ctx_recv(sl->ctx, sl->aio);
        return;
    case SLOT_AWAITING:
        if (rv == 0) {
            slot_on_ack(sl, m);
            return;
        }
        msg_drop(m);
        if (rv != NNG_ETIMEDOUT) {
            fr_debug("data", "%s: waiting for an ack failed (%s), resending", s->name,
                     nng_strerror(rv));
        }
        atomic_fetch_add(&s->resends, 1);
        slot_attempt(sl);
        return;
    case SLOT_BACKOFF:
        msg_drop(m);
        atomic_fetch_add(&s->resends, 1);
        slot_attempt(sl);
        return;
    case SLOT_IDLE:
        msg_drop(m);
        return;
    }
}

static fr_data_sender_opts sender_opts_resolve(const fr_data_sender_opts *o)
{
    fr_data_sender_opts r = {0};
    if (o != NULL) {
        r = *o;
    }
    if (r.window <= 0) {
        r.window = DATA_DEFAULT_WINDOW;
    }
    if (r.resend_ms <= 0) {
        r.resend_ms = DATA_DEFAULT_RESEND_MS;
    }
    if (r.busy_retry_ms <= 0) {
        r.busy_retry_ms = DATA_DEFAULT_BUSY_RETRY_MS;
    }
    if (r.queue < 0) {
        r.queue = 0;
    }
    return r;
}

int fr_data_sender_open(fr_data_sender **out, const char *const *urls, size_t nurls,
                        const fr_tls_conf *tls, const fr_data_sender_opts *opts)
{
    *out = NULL;
    fr_data_sender_opts o = sender_opts_resolve(opts);
    if (urls == NULL || nurls == 0 || o.window > DATA_MAX_WINDOW || o.queue > DATA_MAX_WINDOW) {
        return FR_EINVAL;
    }
    fr_data_sender *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return FR_ENOMEM;
    }
    s->window = o.window;
    s->resend_ms = o.resend_ms;
    s->busy_retry_ms = o.busy_retry_ms;
    s->queue_cap = o.queue;
    int rv = FR_ENOMEM;
    if ((s->name = strdup(urls[0])) == NULL ||
        (s->slots = calloc((size_t)o.window, sizeof(*s->slots))) == NULL ||
        (s->free_slots = calloc((size_t)o.window, sizeof(int))) == NULL ||
        (o.queue > 0 && (s->queue = calloc((size_t)o.queue, sizeof(*s->queue))) == NULL)) {
        goto fail;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        goto fail;
    }
    s->mu_init = true;
    if (cond_init_monotonic(&s->cv) != 0) {
        goto fail;
    }
    s->cv_init = true;

    int nrv = nng_req0_open(&s->sock);
    if (nrv != 0) {
        fr_error("data", "%s: cannot open a REQ socket: %s", s->name, nng_strerror(nrv));
        rv = fr_from_nng(nrv);
        goto fail;
    }
    s->sock_open = true;
    /* Contexts copy the socket's resend time when they are opened, so this
     * must come first. */
    if ((nrv = nng_socket_set_ms(s->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0) {
        fr_error("data", "%s: cannot disable nng's resend: %s", s->name, nng_strerror(nrv));
        rv = fr_from_nng(nrv);
        goto fail;
    }
    for (int i = 0; i < o.window; i++) {
        data_slot *sl = &s->slots[i];
        sl->s = s;
        if ((nrv = nng_aio_alloc(&sl->aio, slot_cb, sl)) != 0) {
            rv = fr_from_nng(nrv);
            goto fail;
        }
        s->nslots = i + 1;
        if ((nrv = nng_ctx_open(&sl->ctx, s->sock)) != 0) {
            fr_error("data", "%s: cannot open a REQ context: %s", s->name, nng_strerror(nrv));
            rv = fr_from_nng(nrv);
            goto fail;
        }
        s->free_slots[s->nfree++] = i;
    }
    for (size_t i = 0; i < nurls; i++) {
        rv = o.listen ? fr_listen(s->sock, urls[i], tls, NULL)
                      : fr_dial(s->sock, urls[i], tls, NULL);
        if (rv != 0) {
            goto fail;
        }
    }
    fr_debug("data", "%s: sender up (%zu url(s), window %d, queue %d, resend %d ms)", s->name,
             nurls, s->window, s->queue_cap, s->resend_ms);
    *out = s;
    return 0;

fail:
    fr_data_sender_close(s);
    return rv;
}

/* Waits on s->cv (s->mu held) until `done` holds, the sender closes or the
 * deadline passes. Returns true when done holds. */
static bool sender_wait(fr_data_sender *s, bool (*done)(const fr_data_sender *), int timeout_ms)
{
    struct timespec until;
    if (timeout_ms > 0) {
        until = deadline_after(timeout_ms);
    }
    while (!done(s) && !atomic_load(&s->closing)) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&s->cv, &s->mu);
        } else if (timeout_ms == 0 || pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT) {
            break;
        }
    }
    return done(s);
}

static bool has_room(const fr_data_sender *s)
{
    return s->nfree > 0 || s->queue_len < s->queue_cap;
}

static bool all_free(const fr_data_sender *s)
{
    return s->nfree == s->window && s->queue_len == 0;
}

/* Callers inside fr_data_send / fr_data_flush; close waits for them. */
static void caller_leave(fr_data_sender *s)
{
    if (--s->callers == 0 && atomic_load(&s->closing)) {
        pthread_cond_broadcast(&s->cv);
    }
}

/* Hands the batch in buf to an idle slot, or to the queue, waiting up to
 * timeout_ms for room; on 0 buf gets an empty buffer back. Called and
 * returns with s->mu held, the caller counted in s->callers. */
static int sender_submit(fr_data_sender *s, fr_buf *buf, int timeout_ms, fr_data_done_fn done,
                         void *done_arg)
{
    if (!sender_wait(s, has_room, timeout_ms) || atomic_load(&s->closing)) {
        return atomic_load(&s->closing) ? FR_ECLOSED : FR_EBUSY;
    }
    atomic_fetch_add(&s->sent, 1);
    atomic_fetch_add(&s->inflight, 1);
    if (s->nfree == 0) {
        /* Every slot is busy: the first to free up sends it. */
        data_queued *q = &s->queue[(s->queue_head + s->queue_len) % s->queue_cap];
        buf_swap(buf, &q->batch);
        q->done = done;
        q->done_arg = done_arg;
        s->queue_len++;
        return 0;
    }
    data_slot *sl = &s->slots[s->free_slots[--s->nfree]];
    buf_swap(buf, &sl->batch);
    sl->done = done;
    sl->done_arg = done_arg;
    pthread_mutex_unlock(&s->mu);
    slot_attempt(sl);
    pthread_mutex_lock(&s->mu);
    return 0;
}

int fr_data_send_notify(fr_data_sender *s, fr_buf *buf, int timeout_ms, fr_data_done_fn done,
                        void *arg)
{
    if (s == NULL || buf == NULL || (buf->data == NULL && buf->len > 0)) {
        return FR_EINVAL;
    }
    if (buf->len > FR_MAX_MESSAGE) {
        return FR_ETOOBIG;
    }
    pthread_mutex_lock(&s->mu);
    s->callers++;
    int rv = sender_submit(s, buf, timeout_ms, done, arg);
    caller_leave(s);
    pthread_mutex_unlock(&s->mu);
    return rv;
}

int fr_data_send_buf(fr_data_sender *s, fr_buf *buf, int timeout_ms)
{
    if (s == NULL || buf == NULL || (buf->data == NULL && buf->len > 0)) {
        return FR_EINVAL;
    }
    if (buf->len > FR_MAX_MESSAGE) {
        return FR_ETOOBIG;
    }
    pthread_mutex_lock(&s->mu);
    s->callers++;
    int rv = sender_submit(s, buf, timeout_ms, NULL, NULL);
    caller_leave(s);
    pthread_mutex_unlock(&s->mu);
    return rv;
}

int fr_data_send(fr_data_sender *s, const void *data, size_t len, int timeout_ms)
{
    if (s == NULL || (data == NULL && len > 0)) {
        return FR_EINVAL;
    }
    if (len > FR_MAX_MESSAGE) {
        return FR_ETOOBIG;
    }
    /* The bytes are copied into a buffer the sender keeps between calls,
     * then handed over as by fr_data_send_buf. */
    pthread_mutex_lock(&s->mu);
    s->callers++;
    fr_buf b = s->spare;
    s->spare = (fr_buf)FR_BUF_INIT;
    pthread_mutex_unlock(&s->mu);
    int copied = fr_buf_append(&b, data, len);
    pthread_mutex_lock(&s->mu);
    int rv = copied == 0 ? sender_submit(s, &b, timeout_ms, NULL, NULL) : FR_ENOMEM;
    buf_recycle(&b);
    buf_swap(&b, &s->spare); /* b: whatever another caller left there */
    caller_leave(s);
    pthread_mutex_unlock(&s->mu);
    fr_buf_free(&b);
    return rv;
}

int fr_data_flush(fr_data_sender *s, int timeout_ms)
{
    pthread_mutex_lock(&s->mu);
    s->callers++;
    int rv = 0;
    if (!sender_wait(s, all_free, timeout_ms)) {
        rv = atomic_load(&s->closing) ? FR_ECLOSED : FR_ETIMEDOUT;
    }
    caller_leave(s);
    pthread_mutex_unlock(&s->mu);
    return rv;
}

void fr_data_sender_stats_get(fr_data_sender *s, fr_data_sender_stats *st)
{
    st->sent = atomic_load(&s->sent);
    st->acked = atomic_load(&s->acked);
    st->resends = atomic_load(&s->resends);
    st->busy = atomic_load(&s->busy);
    st->rejected = atomic_load(&s->rejected);
    st->inflight = atomic_load(&s->inflight);
}

void fr_data_sender_close(fr_data_sender *s)
{
    if (s == NULL) {
        return;
    }
    atomic_store(&s->closing, true);
    if (s->mu_init && s->cv_init) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->cv);
        while (s->callers > 0) {
            pthread_cond_wait(&s->cv, &s->mu);
        }
        pthread_mutex_unlock(&s->mu);
    }
    /* Every slot is stopped before the socket closes. A callback that has
     * just started an operation may still be inside nng_ctx_send after
     * that operation completed elsewhere, and nng 1.5 frees the socket
     * under a context call that races with nng_close. nng_aio_stop waits
     * for the callback, so once all are stopped no thread is inside nng
     * for this socket. An operation a callback submits after its aio is
     * stopped is dropped by nng with its request left in the aio. */
    for (int i = 0; i < s->nslots; i++) {
        nng_aio_stop(s->slots[i].aio);
    }
    if (s->sock_open) {
        nng_close(s->sock);
    }
    /* Abandoned batches: their senders hear FR_ECLOSED, oldest first. */
    int abandoned = 0;
    for (int i = 0; i < s->nslots; i++) {
        data_slot *sl = &s->slots[i];
        msg_drop(nng_aio_get_msg(sl->aio));
        nng_aio_set_msg(sl->aio, NULL);
        if (sl->state != SLOT_IDLE) {
            abandoned++;
            if (sl->done != NULL) {
                sl->done(sl->done_arg, FR_ECLOSED, NULL);
            }
        }
        fr_buf_free(&sl->batch);
        nng_aio_free(sl->aio);
    }
    for (int i = 0; i < s->queue_len; i++) {
        data_queued *q = &s->queue[(s->queue_head + i) % s->queue_cap];
        abandoned++;
        if (q->done != NULL) {
            q->done(q->done_arg, FR_ECLOSED, NULL);
        }
    }
    for (int i = 0; s->queue != NULL && i < s->queue_cap; i++) {
        fr_buf_free(&s->queue[i].batch);
    }
    fr_buf_free(&s->spare);
    if (abandoned > 0) {
        fr_warn("data", "%s: closed with %d batch(es) in flight, abandoned", s->name, abandoned);
    }
    if (s->cv_init) {
        pthread_cond_destroy(&s->cv);
    }
    if (s->mu_init) {
        pthread_mutex_destroy(&s->mu);
    }
    free(s->slots);
    free(s->free_slots);
    free(s->queue);
    free(s->name);
    free(s);
}

/* ---- receiver ---- */

typedef enum worker_state {
    WORKER_RECEIVING,
    WORKER_DEFERRED, /* the handler answers later (fr_data_answer) */
    WORKER_REPLYING,
} worker_state;

/* A worker is also the fr_data_call of the request it holds. */
struct fr_data_call {
    fr_data_receiver *r;
    nng_ctx ctx;
    nng_aio *aio;
    worker_state state;
    nng_msg *held; /* the request while deferred */
    fr_buf reply;  /* refusal encoding scratch, reused */
};
typedef struct fr_data_call data_worker;

struct fr_data_receiver {
    nng_socket sock;
    bool sock_open;
    char *name;
    fr_data_handler fn;
    fr_data_deferring_handler dfn;
    void *fn_ctx;
    data_worker *workers;
    int nworkers; /* workers whose aio exists */
    atomic_bool stopping;
    pthread_mutex_t mu; /* deferred and its cv */
    pthread_cond_t cv;
    bool sync_init;
    int deferred; /* calls a handler still has to answer */

    atomic_uint_fast64_t received;
    atomic_uint_fast64_t acked;
    atomic_uint_fast64_t busy;
    atomic_uint_fast64_t rejected;
};

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    if (msgpack_pack_str(pk, n) != 0 || msgpack_pack_str_body(pk, s, n) != 0) {
        return FR_ENOMEM;
    }
    return 0;
}

/* {"ok": false, "error": {"code", "message", "where"}} */
static int refusal_encode(fr_buf *out, int code, const fr_error *err)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, fr_buf_msgpack_write);
    const char *msg = err->message[0] != '\0' ? err->message : fr_strerror(code);
    if (msgpack_pack_map(&pk, 2) != 0 || pack_str(&pk, "ok") != 0 || msgpack_pack_false(&pk) != 0 ||
        pack_str(&pk, "error") != 0 || msgpack_pack_map(&pk, 3) != 0 ||
        pack_str(&pk, "code") != 0 || pack_str(&pk, fr_errcode(code)) != 0 ||
        pack_str(&pk, "message") != 0 || pack_str(&pk, msg) != 0 || pack_str(&pk, "where") != 0 ||
        pack_str(&pk, err->where) != 0) {
        return FR_ENOMEM;
    }
    return 0;
}

static void worker_recv(data_worker *w)
{
    w->state = WORKER_RECEIVING;
    nng_aio_set_timeout(w->aio, NNG_DURATION_INFINITE);
    nng_ctx_recv(w->ctx, w->aio);
}

/* Turns the request m into its answer (rv and err as a handler's) in place
 * and sends it. */
static void worker_reply(data_worker *w, nng_msg *m, int rv, const fr_error *errp)
{
    fr_data_receiver *r = w->r;
    fr_error err;
    if (errp != NULL) {
        err = *errp;
    } else {
        fr_error_clear(&err);
    }
    const void *reply = ack_ok;
    size_t len = sizeof(ack_ok);
    if (rv == 0) {
        atomic_fetch_add(&r->acked, 1);
    } else {
        if (rv == FR_EBUSY) {
            atomic_fetch_add(&r->busy, 1);
        } else {
            atomic_fetch_add(&r->rejected, 1);
            if (rv > 0) {
                /* Not an fr_err code: a handler bug, but never an ack. */
                fr_warn("data", "%s: handler returned %d; refusing the batch", r->name, rv);
                rv = FR_EINVAL;
            }
        }
        fr_buf_reset(&w->reply);
        if (refusal_encode(&w->reply, rv, &err) != 0) {
            /* No reply at all: the sender resends later, which is the
             * safe side of a refusal we could not say. */
            msg_drop(m);
            worker_recv(w);
            return;
        }
        reply = w->reply.data;
        len = w->reply.len;
    }
    nng_msg_clear(m);
    if (nng_msg_append(m, reply, len) != 0) {
        msg_drop(m);
        worker_recv(w);
        return;
    }
    w->state = WORKER_REPLYING;
    nng_aio_set_msg(w->aio, m);
    nng_aio_set_timeout(w->aio, DATA_REPLY_TIMEOUT_MS);
    nng_ctx_send(w->ctx, w->aio);
}

/* Runs the handler; answers now, or leaves the worker holding the request
 * until the handler's fr_data_answer. */
static void worker_handle(data_worker *w, nng_msg *m)
{
    fr_data_receiver *r = w->r;
    fr_error err;
    fr_error_clear(&err);
    atomic_fetch_add(&r->received, 1);
    if (r->dfn == NULL) {
        int rv = r->fn(r->fn_ctx, nng_msg_body(m), nng_msg_len(m), &err);
        worker_reply(w, m, rv, &err);
        return;
    }
    /* Deferred before the call: the handler may answer from another
     * thread before it returns. */
    w->state = WORKER_DEFERRED;
    w->held = m;
    pthread_mutex_lock(&r->mu);
    r->deferred++;
    pthread_mutex_unlock(&r->mu);
    int rv = r->dfn(r->fn_ctx, w, nng_msg_body(m), nng_msg_len(m), &err);
    if (rv != FR_DATA_LATER) {
        fr_data_answer(w, rv, &err);
    }
}

void fr_data_answer(fr_data_call *call, int rv, const fr_error *err)
{
    data_worker *w = call;
    fr_data_receiver *r = w->r;
    nng_msg *m = w->held;
    w->held = NULL;
    if (atomic_load(&r->stopping)) {
        /* No answer: the sender resends the batch elsewhere or later. */
        msg_drop(m);
    } else {
        worker_reply(w, m, rv, err);
    }
    pthread_mutex_lock(&r->mu);
    if (--r->deferred == 0) {
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
}

static void worker_cb(void *arg)
{
    data_worker *w = arg;
    fr_data_receiver *r = w->r;
    int rv = nng_aio_result(w->aio);
    nng_msg *m = nng_aio_get_msg(w->aio);
    nng_aio_set_msg(w->aio, NULL);

    if (atomic_load(&r->stopping) || rv == NNG_ECLOSED) {
        msg_drop(m);
        return;
    }
    if (w->state == WORKER_RECEIVING && rv == 0) {
        worker_handle(w, m);
        return;
    }
    /* A failed reply (its sender gone) or a failed receive: the sender
     * resends what was not acked, so just take the next request. */
    msg_drop(m);
    if (rv != 0) {
        fr_debug("data", "%s: %s failed: %s", r->name,
                 w->state == WORKER_RECEIVING ? "receive" : "reply", nng_strerror(rv));
    }
    worker_recv(w);
}

static int receiver_start(fr_data_receiver **out, const char *url, bool listen,
                          const fr_tls_conf *tls, int workers, fr_data_handler fn,
                          fr_data_deferring_handler dfn, void *ctx)
{
    *out = NULL;
    if (url == NULL || (fn == NULL) == (dfn == NULL) || workers < 1 || workers > DATA_MAX_WORKERS) {
        return FR_EINVAL;
    }
    fr_data_receiver *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return FR_ENOMEM;
    }
    r->fn = fn;
    r->dfn = dfn;
    r->fn_ctx = ctx;
    int rv = FR_ENOMEM;
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        return FR_ENOMEM;
    }
    if (cond_init_monotonic(&r->cv) != 0) {
        pthread_mutex_destroy(&r->mu);
        free(r);
        return FR_ENOMEM;
    }
    r->sync_init = true;
    if ((r->name = strdup(url)) == NULL ||
        (r->workers = calloc((size_t)workers, sizeof(*r->workers))) == NULL) {
        goto fail;
    }
    int nrv = nng_rep0_open(&r->sock);
    if (nrv != 0) {
        fr_error("data", "%s: cannot open a REP socket: %s", url, nng_strerror(nrv));
        rv = fr_from_nng(nrv);
        goto fail;
    }
    r->sock_open = true;
    /* nng's default limit (1 MiB) would silently drop big batches and the
     * sender would resend them forever; the batch decoder has its own. */
    if ((nrv = nng_socket_set_size(r->sock, NNG_OPT_RECVMAXSZ, FR_MAX_MESSAGE)) != 0) {
        rv = fr_from_nng(nrv);
        goto fail;
    }
    for (int i = 0; i < workers; i++) {
        data_worker *w = &r->workers[i];
        w->r = r;
        if ((nrv = nng_aio_alloc(&w->aio, worker_cb, w)) != 0) {
            rv = fr_from_nng(nrv);
            goto fail;
        }
        r->nworkers = i + 1;
        if ((nrv = nng_ctx_open(&w->ctx, r->sock)) != 0) {
            fr_error("data", "%s: cannot open a REP context: %s", url, nng_strerror(nrv));
            rv = fr_from_nng(nrv);
            goto fail;
        }
    }
    rv = listen ? fr_listen(r->sock, url, tls, NULL) : fr_dial(r->sock, url, tls, NULL);
    if (rv != 0) {
        goto fail;
    }
    for (int i = 0; i < workers; i++) {
        worker_recv(&r->workers[i]);
    }
    fr_debug("data", "%s: receiver up (%d workers)", url, workers);
    *out = r;
    return 0;

fail:
    fr_data_receiver_stop(r);
    return rv;
}

int fr_data_receiver_start(fr_data_receiver **out, const char *url, bool listen,
                           const fr_tls_conf *tls, int workers, fr_data_handler fn, void *ctx)
{
    return receiver_start(out, url, listen, tls, workers, fn, NULL, ctx);
}

int fr_data_receiver_start_deferring(fr_data_receiver **out, const char *url, bool listen,
                                     const fr_tls_conf *tls, int workers,
                                     fr_data_deferring_handler fn, void *ctx)
{
    return receiver_start(out, url, listen, tls, workers, NULL, fn, ctx);
}

void fr_data_receiver_stats_get(fr_data_receiver *r, fr_data_receiver_stats *st)
{
    st->received = atomic_load(&r->received);
    st->acked = atomic_load(&r->acked);
    st->busy = atomic_load(&r->busy);
    st->rejected = atomic_load(&r->rejected);
}

void fr_data_receiver_stop(fr_data_receiver *r)
{
    if (r == NULL) {
        return;
    }
    atomic_store(&r->stopping, true);
    /* Deferred calls hold their workers until answered. */
    if (r->sync_init) {
        pthread_mutex_lock(&r->mu);
        while (r->deferred > 0) {
            pthread_cond_wait(&r->cv, &r->mu);
        }
        pthread_mutex_unlock(&r->mu);
    }
    /* Workers first, then the socket, for the reason given in
     * fr_data_sender_close. Stopping a worker waits for its handler. */
    for (int i = 0; i < r->nworkers; i++) {
        nng_aio_stop(r->workers[i].aio);
    }
    if (r->sock_open) {
        nng_close(r->sock);
    }
    for (int i = 0; i < r->nworkers; i++) {
        data_worker *w = &r->workers[i];
        msg_drop(nng_aio_get_msg(w->aio));
        nng_aio_free(w->aio);
        fr_buf_free(&w->reply);
    }
    free(r->workers);
    free(r->name);
    if (r->sync_init) {
        pthread_cond_destroy(&r->cv);
        pthread_mutex_destroy(&r->mu);
    }
    free(r);
}
