/* HTTP requests to InfluxDB over nng (see http.h). Each step is one aio
 * with what is left of the request's deadline, as the yarn collector's
 * GET does; answers are read raw from the connection and parsed here. */
#include "http.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/tls/tls.h>
#include <nng/supplemental/util/platform.h>

#define BODY_CAP 16384 /* bytes of an answer's body kept */

struct influx_http {
    char *base; /* "http://host:port" */
    nng_url *url;
    nng_http_client *client;
    nng_http_conn *conn; /* kept between requests; NULL when closed */
    nng_aio *aio;
    char *auth; /* "Basic ...", or NULL */
    int64_t timeout_ms;
    char body[BODY_CAP + 1];
};

const char *influx_http_base(const influx_http *h)
{
    return h->base;
}

static void conn_close(influx_http *h)
{
    if (h->conn != NULL) {
        nng_http_conn_close(h->conn);
        h->conn = NULL;
    }
}

void influx_http_destroy(influx_http *h)
{
    if (h == NULL) {
        return;
    }
    conn_close(h);
    if (h->aio != NULL) {
        nng_aio_free(h->aio);
    }
    if (h->client != NULL) {
        nng_http_client_free(h->client);
    }
    if (h->url != NULL) {
        nng_url_free(h->url);
    }
    free(h->base);
    free(h->auth);
    free(h);
}

/* "Basic " + base64(user ":" password), malloc'd. */
static char *basic_auth(const char *user, const char *password)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t ul = strlen(user), pl = password != NULL ? strlen(password) : 0;
    size_t n = ul + 1 + pl;
    unsigned char *raw = malloc(n);
    char *out = malloc(6 + 4 * ((n + 2) / 3) + 1);
    if (raw == NULL || out == NULL) {
        free(raw);
        free(out);
        return NULL;
    }
    memcpy(raw, user, ul);
    raw[ul] = ':';
    if (pl > 0) {
        memcpy(raw + ul + 1, password, pl);
    }
    memcpy(out, "Basic ", 6);
    char *o = out + 6;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)raw[i] << 16;
        v |= i + 1 < n ? (uint32_t)raw[i + 1] << 8 : 0;
        v |= i + 2 < n ? raw[i + 2] : 0;
        *o++ = abc[(v >> 18) & 63];
        *o++ = abc[(v >> 12) & 63];
        *o++ = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? abc[v & 63] : '=';
    }
    *o = '\0';
    free(raw);
    return out;
}

static int tls_setup(influx_http *h, const influx_http_conf *c, fr_error *err)
{
    nng_tls_config *cfg = NULL;
    int rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT);
    if (rv != 0) {
        return fr_error_set(err, rv == NNG_ENOMEM ? FR_ENOMEM : FR_ECONFIG, "https",
                            "TLS is not available: %s", nng_strerror(rv));
    }
    const char *name =
        c->server_name != NULL && c->server_name[0] != '\0' ? c->server_name : c->host;
    if (c->skip_verify) {
        rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_NONE);
    } else if ((rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) == 0 &&
               (rv = nng_tls_config_ca_file(cfg, c->ca_file)) != 0) {
        nng_tls_config_free(cfg);
        return fr_error_set(err, FR_ECONFIG, "ca_file", "cannot load CA file '%.120s': %s",
                            c->ca_file, nng_strerror(rv));
    }
    if (rv == 0 && (rv = nng_tls_config_server_name(cfg, name)) == 0) {
        rv = nng_http_client_set_tls(h->client, cfg);
    }
    nng_tls_config_free(cfg);
    if (rv != 0) {
        return fr_error_set(err, FR_ECONFIG, "https", "TLS setup failed: %s", nng_strerror(rv));
    }
    return 0;
}

int influx_http_open(influx_http **out, const influx_http_conf *c, fr_error *err)
{
    *out = NULL;
    influx_http *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    h->timeout_ms = c->timeout_ms;
    bool v6 = strchr(c->host, ':') != NULL;
    size_t n = strlen(c->host) + 32;
    if ((h->base = malloc(n)) == NULL) {
        influx_http_destroy(h);
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    snprintf(h->base, n, "%s://%s%s%s:%d", c->https ? "https" : "http", v6 ? "[" : "", c->host,
             v6 ? "]" : "", c->port);
    int rv = nng_url_parse(&h->url, h->base);
    if (rv != 0) {
        fr_error_set(err, FR_ECONFIG, "host", "host '%.120s' makes no URL (%s): %s", c->host,
                     h->base, nng_strerror(rv));
        influx_http_destroy(h);
        return FR_ECONFIG;
    }
    if ((rv = nng_http_client_alloc(&h->client, h->url)) != 0 ||
        (rv = nng_aio_alloc(&h->aio, NULL, NULL)) != 0) {
        influx_http_destroy(h);
        return fr_error_set(err, rv == NNG_ENOMEM ? FR_ENOMEM : FR_ECONFIG, "host", "%s: %s",
                            c->host, nng_strerror(rv));
    }
    if (c->https && (rv = tls_setup(h, c, err)) != 0) {
        influx_http_destroy(h);
        return rv;
    }
    if (c->user != NULL && c->user[0] != '\0' &&
        (h->auth = basic_auth(c->user, c->password)) == NULL) {
        influx_http_destroy(h);
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    *out = h;
    return 0;
}

static int req_fail(const influx_http *h, fr_error *err, int code, const char *method,
                    const char *uri, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int req_fail(const influx_http *h, fr_error *err, int code, const char *method,
                    const char *uri, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    size_t path = strcspn(uri, "?");
    return fr_error_set(err, code, NULL, "%s %s%.*s: %s", method, h->base, (int)path, uri, why);
}

static int nng_fail(const influx_http *h, fr_error *err, const char *method, const char *uri,
                    const char *doing, int rv)
{
    int code;
    switch (rv) {
    case NNG_ETIMEDOUT:
        return req_fail(h, err, FR_ETIMEDOUT, method, uri, "no answer within %lld ms (%s)",
                        (long long)h->timeout_ms, doing);
    case NNG_ENOMEM:
        code = FR_ENOMEM;
        break;
    case NNG_ECRYPTO:
    case NNG_EPEERAUTH:
        code = FR_ETLS;
        break;
    case NNG_EPROTO:
        code = FR_EPROTO;
        break;
    default:
        code = FR_EIO;
        break;
    }
    return req_fail(h, err, code, method, uri, "%s: %s", doing, nng_strerror(rv));
}

static int step_wait(influx_http *h)
{
    nng_aio_wait(h->aio);
    return nng_aio_result(h->aio);
}

/* Gives the next step what is left of the deadline. */
static int step_begin(influx_http *h, nng_time deadline)
{
    nng_time now = nng_clock();
    if (now >= deadline) {
        return NNG_ETIMEDOUT;
    }
    nng_aio_set_timeout(h->aio, (nng_duration)(deadline - now));
    return 0;
}

/* A kept connection the server has closed since. */
static bool stale(int rv)
{
    return rv == NNG_ECLOSED || rv == NNG_ECONNSHUT || rv == NNG_ECONNRESET ||
           rv == NNG_ECONNABORTED;
}

static bool parse_length(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10) {
            return false;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

/* Reads what the connection has into dst (at most cap bytes). */
static int read_some(influx_http *h, nng_time deadline, char *dst, size_t cap, size_t *got)
{
    nng_iov iov = {.iov_buf = dst, .iov_len = cap};
    int rv;
    if ((rv = step_begin(h, deadline)) != 0 || (rv = nng_aio_set_iov(h->aio, 1, &iov)) != 0) {
        return rv;
    }
    nng_http_conn_read(h->conn, h->aio);
    if ((rv = step_wait(h)) != 0) {
        return rv;
    }
    *got = nng_aio_count(h->aio);
    return 0;
}

static bool name_is(const char *line, size_t n, const char *name)
{
    size_t l = strlen(name);
    return n > l && line[l] == ':' && strncasecmp(line, name, l) == 0;
}

/* One header line (no CRLF): only what framing needs is looked at. */
static void head_line(influx_http_head *hd, const char *line, size_t n)
{
    const char *colon = memchr(line, ':', n);
    if (colon == NULL) {
        return;
    }
    const char *v = colon + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    size_t vn = (size_t)(end - v);
    if (name_is(line, n, "Content-Length")) {
        hd->has_length = parse_length(v, vn, &hd->length);
        hd->close = hd->close || !hd->has_length;
    } else if (name_is(line, n, "Transfer-Encoding")) {
        hd->chunked = vn >= 7 && strncasecmp(end - 7, "chunked", 7) == 0;
    } else if (name_is(line, n, "X-Influxdb-Version")) {
        hd->influxdb = true;
    } else if (name_is(line, n, "Connection")) {
        hd->close = hd->close || (vn == 5 && strncasecmp(v, "close", 5) == 0);
    }
}

/* "HTTP/1.x NNN[ reason]" */
static bool status_line(influx_http_head *hd, const char *line, size_t n)
{
    if (n < 12 || memcmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') ||
        line[8] != ' ' || (n > 12 && line[12] != ' ')) {
        return false;
    }
    unsigned st = 0;
    for (int i = 9; i < 12; i++) {
        if (line[i] < '0' || line[i] > '9') {
            return false;
        }
        st = st * 10 + (unsigned)(line[i] - '0');
    }
    if (st < 100) {
        return false;
    }
    hd->status = st;
    hd->close = line[7] == '0'; /* HTTP/1.0 closes unless it says otherwise */
    return true;
}

int influx_http_head_feed(influx_http_head *hd, char *buf, size_t *len, size_t cap)
{
    size_t n0 = *len;
    char *nl;
    while ((nl = memchr(buf, '\n', n0)) != NULL) {
        size_t ll = (size_t)(nl - buf) + 1, n = ll - 1;
        if (n > 0 && buf[n - 1] == '\r') {
            n--;
        }
        bool end = false;
        if (hd->skipping) {
            hd->skipping = false;
        } else if (!hd->started) {
            if (!status_line(hd, buf, n)) {
                return FR_EPROTO;
            }
            hd->started = true;
        } else if (n == 0) {
            end = true;
        } else {
            head_line(hd, buf, n);
        }
        memmove(buf, buf + ll, n0 - ll);
        n0 -= ll;
        if (end) {
            *len = n0;
            return 1;
        }
    }
    if (n0 == cap) {
        if (!hd->started) {
            return FR_EPROTO; /* no status line in cap bytes */
        }
        hd->skipping = true; /* a header line longer than the buffer */
        n0 = 0;
    }
    *len = n0;
    return 0;
}

/* Reads the status line and headers into h->body, parsing them as they
 * come. On 0, h->body holds the first *have bytes of the body. */
static int read_head(influx_http *h, nng_time deadline, influx_http_head *hd, size_t *have)
{
    size_t len = 0;
    memset(hd, 0, sizeof(*hd));
    for (;;) {
        int rv = influx_http_head_feed(hd, h->body, &len, BODY_CAP);
        if (rv == 1) {
            *have = len;
            return 0;
        }
        if (rv != 0) {
            return NNG_EPROTO;
        }
        size_t got;
        if ((rv = read_some(h, deadline, h->body + len, BODY_CAP - len, &got)) != 0) {
            return rv;
        }
        len += got;
    }
}

bool influx_http_chunks_ended(const char *b, size_t n)
{
    static const char end[] = "\r\n0\r\n\r\n";
    if (n >= 5 && memcmp(b, end + 2, 5) == 0) {
        return true;
    }
    return n >= 7 && memcmp(b + n - 7, end, 7) == 0;
}

size_t influx_http_chunk_first(char *b, size_t n)
{
    size_t size = 0, i = 0;
    for (; i < n; i++) {
        char c = b[i];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0 || size > BODY_CAP) {
            break;
        }
        size = size * 16 + (size_t)v;
    }
    const char *lf = memchr(b + i, '\n', n - i);
    if (lf == NULL) {
        return 0;
    }
    size_t start = (size_t)(lf - b) + 1;
    size_t take = size < n - start ? size : n - start;
    memmove(b, b + start, take);
    return take;
}

/* Reads the rest of the body (have bytes are in h->body). Returns 0 or an
 * nng code, with the bytes kept in *len; hd->close is set when the
 * connection cannot be used again. */
static int read_body(influx_http *h, nng_time deadline, influx_http_head *hd, size_t have,
                     size_t *len)
{
    int rv;
    *len = 0;
    if (hd->status < 200 || hd->status == 204 || hd->status == 304) {
        return 0;
    }
    if (!hd->chunked && hd->has_length) {
        size_t want = hd->length > BODY_CAP ? BODY_CAP : (size_t)hd->length;
        if (hd->length > BODY_CAP) {
            hd->close = true;
        }
        while (have < want) {
            size_t got;
            if ((rv = read_some(h, deadline, h->body + have, want - have, &got)) != 0) {
                return rv;
            }
            have += got;
        }
        *len = want;
        return 0;
    }
    /* Chunked, or until the server closes: read what fits, then drop the
     * connection (such answers are rare errors). */
    hd->close = true;
    while (have < BODY_CAP && !(hd->chunked && influx_http_chunks_ended(h->body, have))) {
        size_t got;
        rv = read_some(h, deadline, h->body + have, BODY_CAP - have, &got);
        if (stale(rv)) {
            break;
        }
        if (rv != 0) {
            return rv;
        }
        have += got;
    }
    *len = hd->chunked ? influx_http_chunk_first(h->body, have) : have;
    return 0;
}

void influx_http_error_text(const char *body, size_t len, char *out, size_t cap)
{
    static const char key[] = "\"error\":\"";
    const size_t kl = sizeof(key) - 1;
    const char *p = NULL;
    for (size_t i = 0; i + kl <= len && p == NULL; i++) {
        if (memcmp(body + i, key, kl) == 0) {
            p = body + i + kl;
        }
    }
    const char *end = body + len;
    size_t o = 0;
    if (p != NULL) {
        /* The JSON string, its escapes undone enough to read. */
        for (; p < end && *p != '"' && o + 1 < cap; p++) {
            char c = *p;
            if (c == '\\' && p + 1 < end) {
                c = *++p;
                c = c == 'n' || c == 't' || c == 'r' ? ' ' : c;
            }
            out[o++] = c;
        }
    } else {
        for (const char *q = body; q < end && o + 1 < cap; q++) {
            out[o++] = (*q >= 0x20 && *q < 0x7f) ? *q : ' ';
        }
        while (o > 0 && out[o - 1] == ' ') {
            o--;
        }
    }
    out[o] = '\0';
    if (o == 0) {
        snprintf(out, cap, "(no text)");
    }
}

int influx_http_request(influx_http *h, const char *method, const char *uri,
                        const char *content_type, const char *content_encoding, const void *body,
                        size_t len, influx_http_res *res, fr_error *err)
{
    nng_time deadline = nng_clock() + (nng_time)h->timeout_ms;
    res->status = 0;
    res->body = h->body;
    res->len = 0;
    res->from_influxdb = false;
    h->body[0] = '\0';
    int rv;
    for (int attempt = 0;; attempt++) {
        bool reused = h->conn != NULL;
        if (!reused) {
            if ((rv = step_begin(h, deadline)) == 0) {
                nng_http_client_connect(h->client, h->aio);
                rv = step_wait(h);
            }
            if (rv != 0) {
                return nng_fail(h, err, method, uri, "connecting", rv);
            }
            h->conn = nng_aio_get_output(h->aio, 0);
        }
        nng_http_req *req = NULL;
        if ((rv = nng_http_req_alloc(&req, h->url)) != 0 ||
            (rv = nng_http_req_set_method(req, method)) != 0 ||
            (rv = nng_http_req_set_uri(req, uri)) != 0 ||
            (rv = nng_http_req_set_header(req, "User-Agent", "fresco-publisher")) != 0 ||
            (content_type != NULL &&
             (rv = nng_http_req_set_header(req, "Content-Type", content_type)) != 0) ||
            (content_encoding != NULL &&
             (rv = nng_http_req_set_header(req, "Content-Encoding", content_encoding)) != 0) ||
            (h->auth != NULL &&
             (rv = nng_http_req_set_header(req, "Authorization", h->auth)) != 0) ||
            (rv = nng_http_req_set_data(req, body, len)) != 0) {
            nng_http_req_free(req);
            return nng_fail(h, err, method, uri, "building the request", rv);
        }
        const char *doing = "sending the request";
        if ((rv = step_begin(h, deadline)) == 0) {
            nng_http_conn_write_req(h->conn, req, h->aio);
            rv = step_wait(h);
        }
        influx_http_head hd;
        size_t have = 0;
        if (rv == 0) {
            doing = "reading the answer";
            rv = read_head(h, deadline, &hd, &have);
        }
        nng_http_req_free(req);
        if (rv != 0) {
            conn_close(h);
            if (reused && attempt == 0 && stale(rv)) {
                continue; /* the server closed the kept connection: once more */
            }
            return nng_fail(h, err, method, uri, doing, rv);
        }
        size_t n;
        if ((rv = read_body(h, deadline, &hd, have, &n)) != 0) {
            conn_close(h);
            return nng_fail(h, err, method, uri, "reading the answer's body", rv);
        }
        if (hd.close) {
            conn_close(h);
        }
        h->body[n] = '\0';
        res->status = hd.status;
        res->from_influxdb = hd.influxdb;
        res->len = n;
        return 0;
    }
}
