/* Bounded HTTP GET over nng (see http_get.h). The steps are done one aio
 * at a time rather than with nng_http_client_transact, which would
 * allocate whatever Content-Length or chunk sizes the server announces:
 * here the headers are read first and the body is read into a buffer
 * that never grows past max_size. */
#include "yarn/http_get.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/util/platform.h>

#define HTTP_FIRST_BUF  (64u * 1024u)
#define HTTP_CHUNK_LINE 4096 /* bytes of one chunk-size or trailer line */

struct yarn_http {
    char *url_text;
    nng_url *url;
    nng_http_client *client;
    nng_http_req *req;
    int64_t timeout_ms;
    size_t max_size;
};

const char *yarn_http_url(const yarn_http *h)
{
    return h->url_text;
}

void yarn_http_destroy(yarn_http *h)
{
    if (h == NULL) {
        return;
    }
    if (h->req != NULL) {
        nng_http_req_free(h->req);
    }
    if (h->client != NULL) {
        nng_http_client_free(h->client);
    }
    if (h->url != NULL) {
        nng_url_free(h->url);
    }
    free(h->url_text);
    free(h);
}

int yarn_http_open(yarn_http **out, const char *url, int64_t timeout_ms, size_t max_size,
                   fr_error *err)
{
    *out = NULL;
    yarn_http *h = calloc(1, sizeof(*h));
    if (h == NULL || (h->url_text = strdup(url)) == NULL) {
        yarn_http_destroy(h);
        return fr_error_set(err, FR_ENOMEM, "url", "out of memory");
    }
    h->timeout_ms = timeout_ms;
    h->max_size = max_size;
    int rv = nng_url_parse(&h->url, url);
    if (rv != 0) {
        yarn_http_destroy(h);
        return fr_error_set(err, FR_ECONFIG, "url", "url '%.120s' is not a URL: %s", url,
                            nng_strerror(rv));
    }
    if (strcmp(h->url->u_scheme, "http") != 0) {
        fr_error_set(err, FR_ECONFIG, "url",
                     "url '%.120s': scheme '%s' is not supported, only http", url,
                     h->url->u_scheme);
        yarn_http_destroy(h);
        return FR_ECONFIG;
    }
    if ((rv = nng_http_client_alloc(&h->client, h->url)) != 0 ||
        (rv = nng_http_req_alloc(&h->req, h->url)) != 0 ||
        (rv = nng_http_req_set_header(h->req, "Accept", "application/json")) != 0 ||
        (rv = nng_http_req_set_header(h->req, "Connection", "close")) != 0) {
        yarn_http_destroy(h);
        return fr_error_set(err, fr_from_nng(rv), "url", "url '%.120s': %s", url, nng_strerror(rv));
    }
    *out = h;
    return 0;
}

static int http_fail(const yarn_http *h, fr_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int http_fail(const yarn_http *h, fr_error *err, int code, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    return fr_error_set(err, code, h->url_text, "GET %s: %s", h->url_text, why);
}

/* Runs one step on aio with what is left of the deadline. */
static int http_step(nng_aio *aio, nng_time deadline)
{
    nng_time now = nng_clock();
    if (now >= deadline) {
        return NNG_ETIMEDOUT;
    }
    nng_aio_set_timeout(aio, (nng_duration)(deadline - now));
    return 0;
}

static int http_nng_fail(const yarn_http *h, fr_error *err, const char *doing, int rv)
{
    if (rv == NNG_ETIMEDOUT) {
        return http_fail(h, err, FR_ETIMEDOUT, "no answer within %lld ms (%s)",
                         (long long)h->timeout_ms, doing);
    }
    return http_fail(h, err, fr_from_nng(rv), "%s: %s", doing, nng_strerror(rv));
}

/* Parses a Content-Length value: digits only. */
static bool http_parse_length(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10) {
            return false;
        }
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return true;
}

typedef struct http_body {
    char *buf;
    size_t len, cap;
} http_body;

/* Makes room for more bytes, up to limit. False when full at limit. */
static bool http_body_grow(http_body *b, size_t limit, bool *nomem)
{
    if (b->len < b->cap) {
        return true;
    }
    if (b->cap >= limit) {
        return false;
    }
    size_t cap = b->cap == 0 ? HTTP_FIRST_BUF : b->cap * 2;
    if (cap > limit) {
        cap = limit;
    }
    char *n = realloc(b->buf, cap + 1);
    if (n == NULL) {
        *nomem = true;
        return false;
    }
    b->buf = n;
    b->cap = cap;
    return true;
}

/* Reads the body after the headers of res. */
static int http_read_body(const yarn_http *h, nng_http_conn *conn, nng_http_res *res, nng_aio *aio,
                          nng_time deadline, http_body *b, fr_error *err)
{
    const char *te = nng_http_res_get_header(res, "Transfer-Encoding");
    const char *cl = nng_http_res_get_header(res, "Content-Length");
    bool chunked = false;
    int rv;
    if (te != NULL) {
        if (strcasecmp(te, "chunked") != 0) {
            return http_fail(h, err, FR_EPROTO, "transfer coding '%.40s' is not supported", te);
        }
        chunked = true;
    } else if (cl != NULL) {
        uint64_t n;
        if (!http_parse_length(cl, &n)) {
            return http_fail(h, err, FR_EPROTO, "bad Content-Length '%.40s'", cl);
        }
        if (n > h->max_size) {
            return http_fail(h, err, FR_ETOOBIG,
                             "answer of %llu bytes is over max_size (%zu bytes)",
                             (unsigned long long)n, h->max_size);
        }
        if ((b->buf = malloc((size_t)n + 1)) == NULL) {
            return http_fail(h, err, FR_ENOMEM, "out of memory");
        }
        b->cap = (size_t)n;
        if (n == 0) {
            return 0;
        }
        nng_iov iov = {.iov_buf = b->buf, .iov_len = (size_t)n};
        if ((rv = http_step(aio, deadline)) == 0 && (rv = nng_aio_set_iov(aio, 1, &iov)) == 0) {
            nng_http_conn_read_all(conn, aio);
            nng_aio_wait(aio);
            rv = nng_aio_result(aio);
        }
        if (rv != 0) {
            return http_nng_fail(h, err, "reading the body", rv);
        }
        b->len = (size_t)n;
        return 0;
    }

    /* Chunked, or no length at all: read until the end of the chunks or
     * until the server closes the connection. */
    yarn_chunks ch = {0};
    for (;;) {
        bool nomem = false;
        if (!http_body_grow(b, h->max_size, &nomem)) {
            if (nomem) {
                return http_fail(h, err, FR_ENOMEM, "out of memory");
            }
            return http_fail(h, err, FR_ETOOBIG, "answer is over max_size (%zu bytes)",
                             h->max_size);
        }
        nng_iov iov = {.iov_buf = b->buf + b->len, .iov_len = b->cap - b->len};
        if ((rv = http_step(aio, deadline)) == 0 && (rv = nng_aio_set_iov(aio, 1, &iov)) == 0) {
            nng_http_conn_read(conn, aio);
            nng_aio_wait(aio);
            rv = nng_aio_result(aio);
        }
        if (rv == NNG_ECLOSED || rv == NNG_ECONNSHUT || rv == NNG_ECONNRESET) {
            if (chunked) {
                return http_fail(h, err, FR_EPROTO, "connection closed inside a chunked body");
            }
            return 0;
        }
        if (rv != 0) {
            return http_nng_fail(h, err, "reading the body", rv);
        }
        b->len += nng_aio_count(aio);
        if (chunked) {
            rv = yarn_chunks_scan(&ch, b->buf, b->len);
            if (rv < 0) {
                return http_fail(h, err, FR_EPROTO, "malformed chunked body near byte %zu", ch.pos);
            }
            if (rv == 1) {
                b->len = yarn_chunks_join(&ch, b->buf);
                return 0;
            }
        }
    }
}

int yarn_http_get(yarn_http *h, char **body, size_t *len, fr_error *err)
{
    *body = NULL;
    *len = 0;
    nng_aio *aio = NULL;
    nng_http_conn *conn = NULL;
    nng_http_res *res = NULL;
    http_body b = {0};
    nng_time deadline = nng_clock() + (nng_time)h->timeout_ms;
    int rv;

    if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0 || (rv = nng_http_res_alloc(&res)) != 0) {
        rv = http_fail(h, err, fr_from_nng(rv), "%s", nng_strerror(rv));
        goto out;
    }
    if ((rv = http_step(aio, deadline)) == 0) {
        nng_http_client_connect(h->client, aio);
        nng_aio_wait(aio);
        rv = nng_aio_result(aio);
    }
    if (rv != 0) {
        rv = http_nng_fail(h, err, "connecting", rv);
        goto out;
    }
    conn = nng_aio_get_output(aio, 0);
    if ((rv = http_step(aio, deadline)) == 0) {
        nng_http_conn_write_req(conn, h->req, aio);
        nng_aio_wait(aio);
        rv = nng_aio_result(aio);
    }
    if (rv != 0) {
        rv = http_nng_fail(h, err, "sending the request", rv);
        goto out;
    }
    if ((rv = http_step(aio, deadline)) == 0) {
        nng_http_conn_read_res(conn, res, aio);
        nng_aio_wait(aio);
        rv = nng_aio_result(aio);
    }
    if (rv != 0) {
        rv = http_nng_fail(h, err, "reading the answer", rv);
        goto out;
    }
    uint16_t status = nng_http_res_get_status(res);
    if (status != NNG_HTTP_STATUS_OK) {
        const char *reason = nng_http_res_get_reason(res);
        rv = http_fail(h, err, FR_EREMOTE, "HTTP %u %.80s", (unsigned)status,
                       reason != NULL ? reason : "");
        goto out;
    }
    if ((rv = http_read_body(h, conn, res, aio, deadline, &b, err)) != 0) {
        goto out;
    }
    if (b.buf == NULL && (b.buf = malloc(1)) == NULL) {
        rv = http_fail(h, err, FR_ENOMEM, "out of memory");
        goto out;
    }
    b.buf[b.len] = '\0';
    *body = b.buf;
    *len = b.len;
    b.buf = NULL;
    rv = 0;

out:
    free(b.buf);
    if (conn != NULL) {
        nng_http_conn_close(conn);
    }
    if (res != NULL) {
        nng_http_res_free(res);
    }
    if (aio != NULL) {
        nng_aio_free(aio);
    }
    return rv;
}

/* Finds the CRLF ending the line at raw[pos]; returns the offset after
 * it, 0 when not all there yet, or -1 when the line is too long or has a
 * bare LF. */
static long chunks_line_end(const char *raw, size_t len, size_t pos)
{
    size_t avail = len - pos;
    size_t scan = avail < HTTP_CHUNK_LINE ? avail : HTTP_CHUNK_LINE;
    const char *nl = memchr(raw + pos, '\n', scan);
    if (nl == NULL) {
        return avail >= HTTP_CHUNK_LINE ? -1 : 0;
    }
    if (nl == raw + pos || nl[-1] != '\r') {
        return -1;
    }
    return (long)(nl - raw) + 1;
}

/* Parses the chunk at raw[pos]: 1 with its data offset and size and the
 * offset after it, 2 for the last chunk with the offset after the
 * trailers, 0 when incomplete, -1 when malformed. */
static int chunks_next(const char *raw, size_t len, size_t pos, size_t *data, size_t *size,
                       size_t *next)
{
    long eol = chunks_line_end(raw, len, pos);
    if (eol <= 0) {
        return (int)eol;
    }
    uint64_t n = 0;
    size_t i = pos, digits = 0;
    for (; i < (size_t)eol - 2; i++, digits++) {
        char c = raw[i];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0) {
            break;
        }
        if (digits == 15) {
            return -1;
        }
        n = n * 16 + (uint64_t)v;
    }
    if (digits == 0 || (i < (size_t)eol - 2 && raw[i] != ';' && raw[i] != ' ' && raw[i] != '\t')) {
        return -1;
    }
    size_t p = (size_t)eol;
    if (n == 0) {
        /* Trailer lines, then an empty line. */
        for (;;) {
            if (len - p >= 2 && raw[p] == '\r' && raw[p + 1] == '\n') {
                *next = p + 2;
                return 2;
            }
            long t = chunks_line_end(raw, len, p);
            if (t <= 0) {
                return (int)t;
            }
            p = (size_t)t;
        }
    }
    if (n > len - p || len - p - n < 2) {
        return 0;
    }
    if (raw[p + n] != '\r' || raw[p + n + 1] != '\n') {
        return -1;
    }
    *data = p;
    *size = (size_t)n;
    *next = p + (size_t)n + 2;
    return 1;
}

int yarn_chunks_scan(yarn_chunks *c, const char *raw, size_t len)
{
    while (!c->done) {
        size_t data, size, next;
        int rv = chunks_next(raw, len, c->pos, &data, &size, &next);
        if (rv < 0) {
            return FR_EPROTO;
        }
        if (rv == 0) {
            return 0;
        }
        c->pos = next;
        c->done = rv == 2;
    }
    return 1;
}

size_t yarn_chunks_join(const yarn_chunks *c, char *raw)
{
    size_t pos = 0, out = 0;
    for (;;) {
        size_t data, size, next;
        if (chunks_next(raw, c->pos, pos, &data, &size, &next) != 1) {
            return out;
        }
        memmove(raw + out, raw + data, size);
        out += size;
        pos = next;
    }
}
