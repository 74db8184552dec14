/* The data path between pipeline stages (collector -> processor ->
 * publisher): encoded batches over nng REQ/REP, the reply being the
 * acknowledgement. Wire form of the ack: schemas/data.md.
 *
 * The sender keeps up to `window` batches in flight (one nng context each),
 * resends a batch whose ack has not come within `resend_ms` (to whichever
 * replica is connected: nng's REQ spreads requests over every pipe), and
 * blocks the caller when the window (plus an optional queue) is full
 * (back-pressure). A receiver may
 * therefore see a batch more than once: consumers drop duplicates by the
 * batch's (source, seq) with fr_seqwin.
 *
 * Either side may listen or dial ("node-local agents dial; aggregating
 * services listen"); several replicas of a receiver share one sender's load. */
#ifndef FRESCO_DATA_H
#define FRESCO_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fresco/buf.h"
#include "fresco/err.h"
#include "fresco/tls.h"

/* ---- sender ---- */

typedef struct fr_data_sender fr_data_sender;

typedef struct fr_data_sender_opts {
    int window;        /* batches in flight; default 8 (0 = default) */
    int resend_ms;     /* resend when no ack within this; default 2000 */
    int busy_retry_ms; /* wait before resending a batch the receiver
                          answered "busy"; default 200 */
    bool listen;       /* listen on the urls instead of dialing them */
    int queue;         /* batches accepted beyond the window while every slot
                          is busy, each sent as soon as a slot frees up;
                          default 0. Lets a busy sender keep the window full
                          without a round trip through the caller's thread
                          per ack. */
} fr_data_sender_opts;

typedef struct fr_data_sender_stats {
    uint64_t sent;     /* batches handed to fr_data_send */
    uint64_t acked;    /* batches acknowledged */
    uint64_t resends;  /* sends after a timeout or a busy answer */
    uint64_t busy;     /* "busy" answers (receiver back-pressure) */
    uint64_t rejected; /* batches the receiver refused as malformed: dropped */
    uint64_t inflight; /* batches queued or sent, not yet acked or rejected */
} fr_data_sender_stats;

/* Opens a sender on nurls addresses (dialed, or listened on with
 * opts->listen). opts may be NULL for defaults. */
int fr_data_sender_open(fr_data_sender **out, const char *const *urls, size_t nurls,
                        const fr_tls_conf *tls, const fr_data_sender_opts *opts);

/* Queues one encoded batch (the bytes are copied). Blocks while the window
 * (and the queue, if any) is full, up to timeout_ms (-1 = forever): then
 * returns FR_EBUSY and the batch is not queued. 0 means the sender now owns
 * delivery of the batch: it retries until acked, rejected or the sender is
 * closed. */
int fr_data_send(fr_data_sender *s, const void *data, size_t len, int timeout_ms);

/* fr_data_send without the copy, for a batch encoded into an fr_buf: on 0
 * the sender owns buf's bytes, and buf is left empty but holding the memory
 * of an earlier batch, ready for the next encode (a loop that encodes into
 * and sends the same fr_buf allocates nothing once warm). On failure buf is
 * unchanged and still the caller's. */
int fr_data_send_buf(fr_data_sender *s, fr_buf *buf, int timeout_ms);

/* How a batch handed to fr_data_send_notify ended: rv 0 when acknowledged,
 * FR_EREMOTE when the receiver refused it for good (err holds its words),
 * FR_ECLOSED when the sender closed with it still in flight (err NULL).
 * Called exactly once, on one of nng's threads (or in
 * fr_data_sender_close's); it must not block or call back into this
 * sender. */
typedef void (*fr_data_done_fn)(void *arg, int rv, const fr_error *err);

/* fr_data_send_buf that also says how the batch ends: on 0, done(arg, ...)
 * is called once later; on failure it is never called. done may be NULL. */
int fr_data_send_notify(fr_data_sender *s, fr_buf *buf, int timeout_ms, fr_data_done_fn done,
                        void *arg);

/* Waits until every queued batch is acked or rejected, up to timeout_ms
 * (-1 = forever). 0 or FR_ETIMEDOUT. */
int fr_data_flush(fr_data_sender *s, int timeout_ms);

void fr_data_sender_stats_get(fr_data_sender *s, fr_data_sender_stats *st);

/* Closes and frees; batches still in flight are abandoned (counted in the
 * log line; fr_data_send_notify's are told FR_ECLOSED). Safe on NULL. */
void fr_data_sender_close(fr_data_sender *s);

/* ---- receiver ---- */

/* Called for each batch received, on one of nng's threads (up to `workers`
 * at once). data is valid only during the call.
 * Return 0 to acknowledge; FR_EBUSY to make the sender retry later (e.g. a
 * full spool); any other negative code to reject the batch for good (e.g. it
 * does not decode) - then fill err, whose text goes back in the reply. */
typedef int (*fr_data_handler)(void *ctx, const void *data, size_t len, fr_error *err);

typedef struct fr_data_receiver fr_data_receiver;

typedef struct fr_data_receiver_stats {
    uint64_t received; /* batches handed to the handler */
    uint64_t acked;
    uint64_t busy;
    uint64_t rejected;
} fr_data_receiver_stats;

/* Starts a receiver on url (listening, or dialing when listen is false) with
 * `workers` contexts (>= 1). */
int fr_data_receiver_start(fr_data_receiver **out, const char *url, bool listen,
                           const fr_tls_conf *tls, int workers, fr_data_handler fn, void *ctx);

/* A receiver whose handler may answer later, for a stage that acknowledges
 * a batch only once the next stage has (end-to-end acks: a batch survives
 * the death of the stage in the middle).
 *
 * The handler gets the request's call handle. It returns 0, FR_EBUSY or a
 * refusal as an fr_data_handler does (answered at once), or FR_DATA_LATER
 * and then calls fr_data_answer(call, ...) exactly once, from any thread,
 * maybe before the handler itself returns. Until then data stays valid
 * and the call holds one of the `workers` contexts, so `workers` bounds
 * the batches held. */
typedef struct fr_data_call fr_data_call;
#define FR_DATA_LATER 1
typedef int (*fr_data_deferring_handler)(void *ctx, fr_data_call *call, const void *data,
                                         size_t len, fr_error *err);

int fr_data_receiver_start_deferring(fr_data_receiver **out, const char *url, bool listen,
                                     const fr_tls_conf *tls, int workers,
                                     fr_data_deferring_handler fn, void *ctx);

/* Answers a deferred call: rv and err as a handler's return and err (err
 * may be NULL). After fr_data_receiver_stop has begun no answer is sent
 * (the sender resends the batch). The call handle is invalid afterwards. */
void fr_data_answer(fr_data_call *call, int rv, const fr_error *err);

void fr_data_receiver_stats_get(fr_data_receiver *r, fr_data_receiver_stats *st);

/* Stops, waits for running handlers and for every deferred call to be
 * answered, frees. Safe on NULL. */
void fr_data_receiver_stop(fr_data_receiver *r);

/* ---- duplicate detection by (source, seq) ---- */

/* Remembers which sequence numbers of each source were seen: a bitmap of
 * the FR_SEQWIN_BITS numbers up to the newest seen. A seq further below
 * the newest cannot be told apart and counts as new (a number jump, such
 * as a restarted collector's clock-based numbers, must not make the
 * previous run's late batches look like duplicates and be lost; the sinks
 * drop exact duplicates). Thread-safe. */
#define FR_SEQWIN_BITS 65536u

typedef struct fr_seqwin fr_seqwin;

fr_seqwin *fr_seqwin_new(void);
void fr_seqwin_destroy(fr_seqwin *w);

/* Records (source, seq). Returns 1 when it was new, 0 when already seen,
 * FR_ENOMEM on allocation failure. */
int fr_seqwin_check(fr_seqwin *w, const char *source, uint64_t seq);

/* Whether (source, seq) was recorded, without recording it (false for
 * one below the window). */
bool fr_seqwin_seen(fr_seqwin *w, const char *source, uint64_t seq);

#endif
