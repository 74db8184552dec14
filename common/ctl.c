/* The control protocol: a REP server with several contexts in flight and a
 * REQ client with a deadline. Wire form: schemas/control.md. */
#include "fresco/ctl.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>

#include "fresco/clock.h"
#include "fresco/log.h"

#define CTL_MAX_OP 64

static const fr_node empty_map = {.type = FR_NODE_MAP, .len = 0};

/* ---- message codec ---- */

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

int fr_ctl_request_encode(const char *op, const void *args_mp, size_t args_len, fr_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, fr_buf_msgpack_write);
    size_t start = out->len;
    bool args = args_mp != NULL && args_len > 0;
    if (msgpack_pack_map(&pk, args ? 2 : 1) != 0) {
        goto nomem;
    }
    pack_str(&pk, "op");
    pack_str(&pk, op);
    if (args) {
        pack_str(&pk, "args");
        if (fr_buf_append(out, args_mp, args_len) != 0) {
            goto nomem;
        }
    }
    if (out->len == start) {
        goto nomem;
    }
    return 0;
nomem:
    out->len = start;
    return FR_ENOMEM;
}

int fr_ctl_request_decode(const void *data, size_t len, fr_doc *doc, const char **op,
                          const fr_node **args, fr_error *err)
{
    *op = NULL;
    *args = NULL;
    int rv = fr_doc_decode(data, len, doc, err);
    if (rv != 0) {
        return rv;
    }
    const fr_node *root = doc->root;
    if (root->type != FR_NODE_MAP) {
        rv = fr_error_set(err, FR_ETYPE, "", "a request must be a map with \"op\" and \"args\"");
        goto fail;
    }
    for (uint32_t i = 0; i < root->len; i++) {
        const fr_node *k = &root->v.kv[2 * i];
        const fr_node *v = &root->v.kv[2 * i + 1];
        if (strcmp(k->v.str, "op") == 0) {
            if (v->type != FR_NODE_STR) {
                rv = fr_error_set(err, FR_ETYPE, "op", "\"op\" must be a string");
                goto fail;
            }
            if (v->len == 0 || v->len > CTL_MAX_OP || memchr(v->v.str, '\0', v->len) != NULL) {
                rv = fr_error_set(err, FR_EINVAL, "op",
                                  "\"op\" must be 1 to %d characters without NUL", CTL_MAX_OP);
                goto fail;
            }
            *op = v->v.str;
        } else if (strcmp(k->v.str, "args") == 0) {
            if (v->type == FR_NODE_NIL) {
                continue;
            }
            if (v->type != FR_NODE_MAP) {
                rv = fr_error_set(err, FR_ETYPE, "args", "\"args\" must be a map");
                goto fail;
            }
            *args = v;
        } else {
            rv = fr_error_set(err, FR_EUNKNOWN, k->v.str,
                              "unknown key \"%.64s\" in request (expected op, args)", k->v.str);
            goto fail;
        }
    }
    if (*op == NULL) {
        rv = fr_error_set(err, FR_EMISSING, "op", "the request has no \"op\"");
        goto fail;
    }
    if (*args == NULL) {
        *args = &empty_map;
    }
    return 0;
fail:
    *op = NULL;
    *args = NULL;
    fr_doc_free(doc);
    return rv;
}

static void copy_field(char *dst, size_t cap, const fr_node *map, const char *key)
{
    const char *s = NULL;
    if (fr_node_get_str(map, key, &s) == 0) {
        snprintf(dst, cap, "%s", s);
    } else {
        dst[0] = '\0';
    }
}

void fr_ctl_result_free(fr_ctl_result *res)
{
    if (res != NULL) {
        fr_doc_free(&res->doc);
        res->result = NULL;
    }
}

int fr_ctl_reply_decode(const void *data, size_t len, fr_ctl_result *res)
{
    memset(res, 0, sizeof(*res));
    fr_error e;
    fr_error_clear(&e);
    if (fr_doc_decode(data, len, &res->doc, &e) != 0) {
        snprintf(res->error_code, sizeof(res->error_code), "protocol");
        snprintf(res->error_message, sizeof(res->error_message), "reply does not decode: %.200s",
                 e.message);
        snprintf(res->error_where, sizeof(res->error_where), "%s", e.where);
        return FR_EPROTO;
    }
    const fr_node *root = res->doc.root;
    bool ok = false;
    if (root->type != FR_NODE_MAP || fr_node_get_bool(root, "ok", &ok) != 0) {
        snprintf(res->error_code, sizeof(res->error_code), "protocol");
        snprintf(res->error_message, sizeof(res->error_message),
                 "reply is not a map with a boolean \"ok\"");
        fr_doc_free(&res->doc);
        return FR_EPROTO;
    }
    if (ok) {
        res->result = fr_node_get(root, "result");
        if (res->result == NULL) {
            static const fr_node nil = {.type = FR_NODE_NIL};
            res->result = &nil;
        }
        return 0;
    }
    const fr_node *e2 = fr_node_get(root, "error");
    if (e2 == NULL || e2->type != FR_NODE_MAP) {
        snprintf(res->error_code, sizeof(res->error_code), "protocol");
        snprintf(res->error_message, sizeof(res->error_message),
                 "error reply without an \"error\" map");
        fr_doc_free(&res->doc);
        return FR_EPROTO;
    }
    copy_field(res->error_code, sizeof(res->error_code), e2, "code");
    copy_field(res->error_message, sizeof(res->error_message), e2, "message");
    copy_field(res->error_where, sizeof(res->error_where), e2, "where");
    if (res->error_code[0] == '\0') {
        snprintf(res->error_code, sizeof(res->error_code), "internal");
    }
    fr_doc_free(&res->doc);
    return FR_EREMOTE;
}

/* ---- server ---- */

struct fr_ctl_reply {
    fr_buf result;
    msgpack_packer pk;
    int64_t peer_uid; /* -1: the transport does not say */
    bool is_error;
    const char *code_name;
    int code;
    char where[160];
    char message[512];
};

msgpack_packer *fr_ctl_reply_packer(fr_ctl_reply *r)
{
    return &r->pk;
}

static int reply_verror(fr_ctl_reply *r, int code, const char *code_name, const char *where,
                        const char *fmt, va_list ap)
{
    r->is_error = true;
    r->code = code;
    r->code_name = code_name;
    snprintf(r->where, sizeof(r->where), "%s", where != NULL ? where : "");
    vsnprintf(r->message, sizeof(r->message), fmt, ap);
    fr_buf_reset(&r->result);
    return code;
}

int fr_ctl_reply_error(fr_ctl_reply *r, int code, const char *code_name, const char *where,
                       const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    reply_verror(r, code, code_name, where, fmt, ap);
    va_end(ap);
    return code;
}

int64_t fr_ctl_reply_peer_uid(const fr_ctl_reply *r)
{
    return r->peer_uid;
}

static void reply_init(fr_ctl_reply *r)
{
    r->peer_uid = -1;
    fr_buf_reset(&r->result);
    msgpack_packer_init(&r->pk, &r->result, fr_buf_msgpack_write);
    r->is_error = false;
    r->code_name = NULL;
    r->code = 0;
    r->where[0] = '\0';
    r->message[0] = '\0';
}

/* Writes the final reply message into out. */
static int reply_finish(fr_ctl_reply *r, fr_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, fr_buf_msgpack_write);
    fr_buf_reset(out);
    if (!r->is_error) {
        msgpack_pack_map(&pk, 2);
        pack_str(&pk, "ok");
        msgpack_pack_true(&pk);
        pack_str(&pk, "result");
        if (r->result.len == 0) {
            msgpack_pack_nil(&pk);
        } else {
            fr_buf_append(out, r->result.data, r->result.len);
        }
    } else {
        msgpack_pack_map(&pk, 2);
        pack_str(&pk, "ok");
        msgpack_pack_false(&pk);
        pack_str(&pk, "error");
        msgpack_pack_map(&pk, 3);
        pack_str(&pk, "code");
        pack_str(&pk, r->code_name != NULL ? r->code_name : fr_errcode(r->code));
        pack_str(&pk, "message");
        pack_str(&pk, r->message);
        pack_str(&pk, "where");
        pack_str(&pk, r->where);
    }
    return out->len > 0 ? 0 : FR_ENOMEM;
}

typedef struct ctl_worker ctl_worker;

struct fr_ctl_server {
    nng_socket sock;
    pthread_rwlock_t ops_lock;
    fr_ctl_op *ops;
    size_t nops, cap;
    ctl_worker *workers;
    int nworkers;
    _Atomic uint64_t requests, errors, malformed, unknown_ops;
};

enum { CTL_RECV, CTL_SEND };

struct ctl_worker {
    fr_ctl_server *srv;
    nng_ctx ctx;
    nng_aio *aio;
    int state;
    fr_ctl_reply reply;
    fr_buf out;
};

static const fr_ctl_op *ops_find(fr_ctl_server *s, const char *name, fr_ctl_op *copy)
{
    const fr_ctl_op *found = NULL;
    pthread_rwlock_rdlock(&s->ops_lock);
    for (size_t i = 0; i < s->nops; i++) {
        if (strcmp(s->ops[i].name, name) == 0) {
            *copy = s->ops[i];
            found = copy;
            break;
        }
    }
    pthread_rwlock_unlock(&s->ops_lock);
    return found;
}

static void ctl_handle(ctl_worker *w, nng_msg *req)
{
    fr_ctl_server *s = w->srv;
    fr_ctl_reply *r = &w->reply;
    reply_init(r);
    uint64_t uid;
    if (nng_pipe_get_uint64(nng_msg_get_pipe(req), NNG_OPT_IPC_PEER_UID, &uid) == 0) {
        r->peer_uid = (int64_t)uid;
    }
    fr_doc doc = {0};
    const char *op = NULL;
    const fr_node *args = NULL;
    fr_error err;
    fr_error_clear(&err);
    int rv = fr_ctl_request_decode(nng_msg_body(req), nng_msg_len(req), &doc, &op, &args, &err);
    if (rv != 0) {
        atomic_fetch_add(&s->malformed, 1);
        fr_ctl_reply_error(r, rv, "bad_request", err.where, "malformed request: %s", err.message);
    } else {
        fr_ctl_op entry;
        if (ops_find(s, op, &entry) == NULL) {
            atomic_fetch_add(&s->unknown_ops, 1);
            fr_ctl_reply_error(r, FR_ENOTFOUND, "unknown_op", "op",
                               "unknown op \"%s\" (\"help\" lists the ops)", op);
        } else {
            rv = entry.fn(entry.ctx, args, r);
            if (rv != 0 && !r->is_error) {
                fr_ctl_reply_error(r, rv, NULL, NULL, "%s failed: %s", op, fr_strerror(rv));
            }
        }
    }
    fr_doc_free(&doc);
    if (r->is_error) {
        atomic_fetch_add(&s->errors, 1);
    }
    atomic_fetch_add(&s->requests, 1);
    reply_finish(r, &w->out);
}

static void ctl_worker_cb(void *arg)
{
    ctl_worker *w = arg;
    int rv = nng_aio_result(w->aio);
    if (w->state == CTL_RECV) {
        if (rv != 0) {
            if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
                return;
            }
            nng_ctx_recv(w->ctx, w->aio);
            return;
        }
        nng_msg *req = nng_aio_get_msg(w->aio);
        ctl_handle(w, req);
        nng_msg_clear(req);
        if (nng_msg_append(req, w->out.data, w->out.len) != 0) {
            nng_msg_free(req);
            nng_ctx_recv(w->ctx, w->aio);
            return;
        }
        nng_aio_set_msg(w->aio, req);
        w->state = CTL_SEND;
        nng_ctx_send(w->ctx, w->aio);
        return;
    }
    if (rv != 0) {
        nng_msg_free(nng_aio_get_msg(w->aio));
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) {
            return;
        }
    }
    w->state = CTL_RECV;
    nng_ctx_recv(w->ctx, w->aio);
}

int fr_ctl_server_add_op(fr_ctl_server *s, const fr_ctl_op *op)
{
    pthread_rwlock_wrlock(&s->ops_lock);
    for (size_t i = 0; i < s->nops; i++) {
        if (strcmp(s->ops[i].name, op->name) == 0) {
            s->ops[i] = *op;
            pthread_rwlock_unlock(&s->ops_lock);
            return 0;
        }
    }
    if (s->nops == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        fr_ctl_op *p = realloc(s->ops, cap * sizeof(*p));
        if (p == NULL) {
            pthread_rwlock_unlock(&s->ops_lock);
            return FR_ENOMEM;
        }
        s->ops = p;
        s->cap = cap;
    }
    s->ops[s->nops++] = *op;
    pthread_rwlock_unlock(&s->ops_lock);
    return 0;
}

void fr_ctl_server_each_op(fr_ctl_server *s, void (*fn)(void *arg, const fr_ctl_op *op), void *arg)
{
    pthread_rwlock_rdlock(&s->ops_lock);
    for (size_t i = 0; i < s->nops; i++) {
        fn(arg, &s->ops[i]);
    }
    pthread_rwlock_unlock(&s->ops_lock);
}

void fr_ctl_server_stats_get(fr_ctl_server *s, fr_ctl_server_stats *st)
{
    st->requests = atomic_load(&s->requests);
    st->errors = atomic_load(&s->errors);
    st->malformed = atomic_load(&s->malformed);
    st->unknown_ops = atomic_load(&s->unknown_ops);
}

int fr_ctl_server_start(fr_ctl_server **out, const char *url, const fr_tls_conf *tls,
                        const fr_ctl_op *ops, size_t nops, int workers)
{
    *out = NULL;
    if (workers < 1) {
        workers = 1;
    }
    fr_ctl_server *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return FR_ENOMEM;
    }
    pthread_rwlock_init(&s->ops_lock, NULL);
    s->sock = (nng_socket)NNG_SOCKET_INITIALIZER;
    int rv = 0;
    for (size_t i = 0; i < nops; i++) {
        if ((rv = fr_ctl_server_add_op(s, &ops[i])) != 0) {
            goto fail;
        }
    }
    s->workers = calloc((size_t)workers, sizeof(*s->workers));
    if (s->workers == NULL) {
        rv = FR_ENOMEM;
        goto fail;
    }
    int nrv = nng_rep0_open(&s->sock);
    if (nrv != 0) {
        fr_error("ctl", "cannot open control socket: %s", nng_strerror(nrv));
        rv = fr_from_nng(nrv);
        goto fail;
    }
    nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, 64u * 1024 * 1024);
    for (int i = 0; i < workers; i++) {
        ctl_worker *w = &s->workers[i];
        w->srv = s;
        if ((nrv = nng_aio_alloc(&w->aio, ctl_worker_cb, w)) != 0 ||
            (nrv = nng_ctx_open(&w->ctx, s->sock)) != 0) {
            rv = fr_from_nng(nrv);
            goto fail;
        }
        s->nworkers = i + 1;
    }
    if ((rv = fr_listen(s->sock, url, tls, NULL)) != 0) {
        goto fail;
    }
    for (int i = 0; i < workers; i++) {
        ctl_worker *w = &s->workers[i];
        w->state = CTL_RECV;
        nng_ctx_recv(w->ctx, w->aio);
    }
    *out = s;
    return 0;
fail:
    fr_ctl_server_destroy(s);
    return rv;
}

void fr_ctl_server_destroy(fr_ctl_server *s)
{
    if (s == NULL) {
        return;
    }
    if (s->workers != NULL) {
        for (int i = 0; i < s->nworkers; i++) {
            if (s->workers[i].aio != NULL) {
                nng_aio_stop(s->workers[i].aio);
            }
        }
    }
    if (nng_socket_id(s->sock) > 0) {
        nng_close(s->sock);
    }
    if (s->workers != NULL) {
        for (int i = 0; i < s->nworkers; i++) {
            ctl_worker *w = &s->workers[i];
            if (w->aio != NULL) {
                nng_aio_free(w->aio);
            }
            fr_buf_free(&w->reply.result);
            fr_buf_free(&w->out);
        }
        free(s->workers);
    }
    pthread_rwlock_destroy(&s->ops_lock);
    free(s->ops);
    free(s);
}

/* ---- client ---- */

struct fr_ctl_client {
    nng_socket sock;
};

int fr_ctl_client_open(fr_ctl_client **out, const char *url, const fr_tls_conf *tls)
{
    *out = NULL;
    fr_ctl_client *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return FR_ENOMEM;
    }
    int nrv = nng_req0_open(&c->sock);
    if (nrv != 0) {
        free(c);
        return fr_from_nng(nrv);
    }
    /* Control ops need not be idempotent: never resend behind the caller. */
    nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, 256u * 1024 * 1024);
    int rv = fr_dial(c->sock, url, tls, NULL);
    if (rv != 0) {
        nng_close(c->sock);
        free(c);
        return rv;
    }
    *out = c;
    return 0;
}

void fr_ctl_client_close(fr_ctl_client *c)
{
    if (c != NULL) {
        nng_close(c->sock);
        free(c);
    }
}

int fr_ctl_call(fr_ctl_client *c, const char *op, const void *args_mp, size_t args_len,
                int timeout_ms, fr_ctl_result *res)
{
    memset(res, 0, sizeof(*res));
    fr_buf req = FR_BUF_INIT;
    int rv = fr_ctl_request_encode(op, args_mp, args_len, &req);
    if (rv != 0) {
        return rv;
    }
    nng_ctx ctx;
    nng_aio *aio = NULL;
    nng_msg *msg = NULL;
    int nrv = nng_ctx_open(&ctx, c->sock);
    if (nrv != 0) {
        fr_buf_free(&req);
        return fr_from_nng(nrv);
    }
    if ((nrv = nng_aio_alloc(&aio, NULL, NULL)) != 0 || (nrv = nng_msg_alloc(&msg, 0)) != 0 ||
        (nrv = nng_msg_append(msg, req.data, req.len)) != 0) {
        rv = fr_from_nng(nrv);
        goto done;
    }
    nng_ctx_set_ms(ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    nng_duration t = timeout_ms < 0 ? NNG_DURATION_INFINITE : (nng_duration)timeout_ms;
    int64_t start = fr_mono_ms();
    nng_aio_set_msg(aio, msg);
    nng_aio_set_timeout(aio, t);
    nng_ctx_send(ctx, aio);
    nng_aio_wait(aio);
    if ((nrv = nng_aio_result(aio)) != 0) {
        /* msg still belongs to the aio on failure */
        nng_msg_free(nng_aio_get_msg(aio));
        msg = NULL;
        rv = fr_from_nng(nrv);
        if (rv == FR_ETIMEDOUT) {
            /* REQ holds a send until some server is connected. */
            snprintf(res->error_code, sizeof(res->error_code), "timeout");
            snprintf(res->error_message, sizeof(res->error_message),
                     "no server reachable within %d ms", timeout_ms);
        }
        goto done;
    }
    msg = NULL;
    if (timeout_ms >= 0) {
        int64_t left = timeout_ms - (fr_mono_ms() - start);
        t = left > 0 ? (nng_duration)left : 1;
    }
    nng_aio_set_timeout(aio, t);
    nng_ctx_recv(ctx, aio);
    nng_aio_wait(aio);
    if ((nrv = nng_aio_result(aio)) != 0) {
        rv = fr_from_nng(nrv);
        if (nrv == NNG_ECONNRESET || nrv == NNG_ECONNSHUT || nrv == NNG_ECLOSED) {
            /* The server went away after taking the request: like a missed
             * deadline, the op's outcome is unknown. Say so at once. */
            rv = FR_ETIMEDOUT;
            snprintf(res->error_message, sizeof(res->error_message),
                     "connection lost before the reply");
        } else if (rv == FR_ETIMEDOUT) {
            snprintf(res->error_message, sizeof(res->error_message), "no reply within %d ms",
                     timeout_ms);
        }
        if (rv == FR_ETIMEDOUT) {
            snprintf(res->error_code, sizeof(res->error_code), "timeout");
        }
        goto done;
    }
    msg = nng_aio_get_msg(aio);
    rv = fr_ctl_reply_decode(nng_msg_body(msg), nng_msg_len(msg), res);
done:
    if (msg != NULL) {
        nng_msg_free(msg);
    }
    if (aio != NULL) {
        nng_aio_free(aio);
    }
    nng_ctx_close(ctx);
    fr_buf_free(&req);
    return rv;
}
