/* The control protocol: every service's request/reply socket.
 *
 *   request: {"op": "task.create", "args": {...}}        (args optional)
 *   reply:   {"ok": true,  "result": <any>}
 *            {"ok": false, "error": {"code": "...", "message": "...",
 *                                    "where": "..."}}
 * Schemas: schemas/control.md.
 *
 * The server (nng REP, listening) runs several requests at once with nng
 * contexts and aios, and dispatches by op name from a table. A malformed
 * request gets an error reply and the server keeps serving.
 * The client (nng REQ, dialing) sends one request per call with a deadline,
 * and is safe to use from several threads at once (one nng context per call). */
#ifndef FRESCO_CTL_H
#define FRESCO_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "fresco/buf.h"
#include "fresco/err.h"
#include "fresco/mpdoc.h"
#include "fresco/tls.h"

/* ---- server side ---- */

/* Handed to an op handler to build its reply. Owned by the server. */
typedef struct fr_ctl_reply fr_ctl_reply;

/* The packer for the result: the handler packs exactly one msgpack object
 * (the "result") with it, or calls fr_ctl_reply_error() instead. A handler
 * that packs nothing and returns 0 replies with result nil. */
msgpack_packer *fr_ctl_reply_packer(fr_ctl_reply *r);

/* Turns the reply into an error reply (discarding anything packed):
 * code is an FR_E* code (its fr_errcode() goes on the wire, or code_name
 * when not NULL, e.g. "bad_manifest"), where may be NULL. Returns code. */
int fr_ctl_reply_error(fr_ctl_reply *r, int code, const char *code_name, const char *where,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The caller's uid when the request came over ipc:// (the kernel's word
 * for it), or -1 over tcp:// and tls+tcp://, where nothing vouches for the
 * caller. Handlers that act for users check it. */
int64_t fr_ctl_reply_peer_uid(const fr_ctl_reply *r);

/* An op handler. args is the request's "args" node (an empty map when the
 * request had none); it is valid only during the call. Returning a negative
 * code without calling fr_ctl_reply_error() replies with that code and
 * fr_strerror() as the message. Handlers run on nng's threads, several at
 * once: they must be thread-safe and must not block for long. */
typedef int (*fr_ctl_handler)(void *ctx, const fr_node *args, fr_ctl_reply *r);

typedef struct fr_ctl_op {
    const char *name; /* "task.create" */
    fr_ctl_handler fn;
    void *ctx;        /* passed to fn */
    const char *help; /* one line, for `fresco help` and docs */
} fr_ctl_op;

typedef struct fr_ctl_server fr_ctl_server;

typedef struct fr_ctl_server_stats {
    uint64_t requests;  /* requests answered */
    uint64_t errors;    /* error replies sent (bad requests included) */
    uint64_t malformed; /* requests that did not decode */
    uint64_t unknown_ops;
} fr_ctl_server_stats;

/* Starts listening on url with `workers` concurrent contexts (>= 1).
 * The ops table is copied; an op may be added later with
 * fr_ctl_server_add_op() (before or after start). Returns 0 and *out,
 * or a negative code (then nothing is left open). */
int fr_ctl_server_start(fr_ctl_server **out, const char *url, const fr_tls_conf *tls,
                        const fr_ctl_op *ops, size_t nops, int workers);

/* Adds or replaces an op. Thread-safe. 0 or FR_ENOMEM. */
int fr_ctl_server_add_op(fr_ctl_server *s, const fr_ctl_op *op);

/* Calls fn(arg, op) for each op (for `help`). */
void fr_ctl_server_each_op(fr_ctl_server *s, void (*fn)(void *arg, const fr_ctl_op *op), void *arg);

void fr_ctl_server_stats_get(fr_ctl_server *s, fr_ctl_server_stats *st);

/* Stops serving, waits for running handlers to return, closes the socket and
 * frees s. Safe on NULL. */
void fr_ctl_server_destroy(fr_ctl_server *s);

/* ---- client side ---- */

typedef struct fr_ctl_client fr_ctl_client;

/* Dials url (non-blocking: the server may start later). 0 or negative. */
int fr_ctl_client_open(fr_ctl_client **out, const char *url, const fr_tls_conf *tls);

/* Closes and frees. Safe on NULL. No call may be in progress. */
void fr_ctl_client_close(fr_ctl_client *c);

/* The outcome of one call. On success (0 returned) `doc` owns the decoded
 * reply and `result` points into it. On FR_EREMOTE the error fields are set
 * from the reply. Free with fr_ctl_result_free(). */
typedef struct fr_ctl_result {
    fr_doc doc;
    const fr_node *result;
    char error_code[48];
    char error_message[256];
    char error_where[160];
} fr_ctl_result;

void fr_ctl_result_free(fr_ctl_result *res);

/* Sends {op, args} and waits up to timeout_ms for the reply. args_mp is one
 * packed msgpack object (a map), or NULL/0 for none. The request is never
 * resent (control ops need not be idempotent).
 * Returns 0 (res->result set), FR_EREMOTE (the server said no: res->error_*),
 * FR_ETIMEDOUT (no reply: the server is down or slow and the deadline
 * passed, or it died after taking the request - then this comes at once;
 * either way the op's outcome is unknown; res->error_message says which),
 * FR_EPROTO (reply did not decode) or another negative code. */
int fr_ctl_call(fr_ctl_client *c, const char *op, const void *args_mp, size_t args_len,
                int timeout_ms, fr_ctl_result *res);

/* Encodes a request into out (for tests and tools that speak raw nng). */
int fr_ctl_request_encode(const char *op, const void *args_mp, size_t args_len, fr_buf *out);

/* Decodes a request: *op points into doc, *args is the args node (or NULL).
 * Fills err with what is wrong ("op" missing, not a string, unknown key...).
 * This is what the server runs on every request; it is fuzzed. */
int fr_ctl_request_decode(const void *data, size_t len, fr_doc *doc, const char **op,
                          const fr_node **args, fr_error *err);

/* Decodes a reply into res (see fr_ctl_call's return codes). */
int fr_ctl_reply_decode(const void *data, size_t len, fr_ctl_result *res);

#endif
