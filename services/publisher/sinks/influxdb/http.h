/* HTTP/1.1 requests to one InfluxDB server over nng's HTTP client, with
 * TLS (nng's, mbedTLS) for https.
 *
 * The connection is kept open between requests (InfluxDB keeps it alive)
 * and opened again when it breaks: a request that fails on a kept
 * connection before any answer (the server closed it while idle, or was
 * restarted) is sent once more on a new one, which is safe for InfluxDB's
 * writes (a point sent twice overwrites itself). Each request, including
 * connecting, must finish within timeout_ms. nng writes the request; the
 * answer's status line and headers are read here (nng's parser refuses
 * header values that are not ASCII, and InfluxDB copies its error
 * message, names and all, into a header). At most 16 KiB of an answer's
 * body are kept (InfluxDB's answers to writes are empty or a short JSON
 * error); a longer, chunked or unframed body closes the connection.
 * One influx_http is used by one thread at a time. */
#ifndef INFLUX_HTTP_H
#define INFLUX_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fresco/err.h"

typedef struct influx_http influx_http;

typedef struct influx_http_conf {
    const char *host; /* name or address; an IPv6 address without brackets */
    int port;
    bool https;
    bool skip_verify;        /* https: do not check the server's certificate */
    const char *ca_file;     /* https: PEM CAs to check it with */
    const char *server_name; /* https: name expected in it; NULL or "": host */
    const char *user;        /* HTTP Basic authentication when not NULL or "" */
    const char *password;
    int64_t timeout_ms;
} influx_http_conf;

/* Prepares the client (no connection yet). The strings are copied.
 * FR_ECONFIG with err->where the key at fault ("host", "ca_file") and the
 * reason; FR_ENOMEM. On 0, *out is the caller's (influx_http_destroy). */
int influx_http_open(influx_http **out, const influx_http_conf *conf, fr_error *err);

/* Closes the connection and frees. Safe on NULL. */
void influx_http_destroy(influx_http *h);

/* "http://127.0.0.1:8086", for messages. */
const char *influx_http_base(const influx_http *h);

/* One answer. */
typedef struct influx_http_res {
    unsigned status; /* 204, 400, ... */
    char *body;      /* the body's first bytes, NUL-terminated (chunked bodies:
                        the first chunk); owned by the influx_http, valid
                        until the next request */
    size_t len;
    bool from_influxdb; /* the answer carries InfluxDB's X-Influxdb-Version
                           header (a proxy's or a TLS port's own error does not) */
} influx_http_res;

/* Sends method uri (path and query, already encoded) with the body
 * (may be NULL when len is 0) and the headers Content-Type
 * (content_type, if not NULL), Content-Encoding (content_encoding, if not
 * NULL) and the Authorization of the conf. Returns 0 when an answer came,
 * whatever its status, with *res filled; otherwise a negative code with
 * err->message "<method> <base><path>: <what failed>":
 *   FR_ETIMEDOUT  no answer within timeout_ms
 *   FR_ETLS       the TLS handshake failed (certificate not trusted...)
 *   FR_EIO        could not connect (refused, unreachable, unknown host)
 *                 or the connection broke
 *   FR_EPROTO     a malformed answer
 *   FR_ENOMEM */
int influx_http_request(influx_http *h, const char *method, const char *uri,
                        const char *content_type, const char *content_encoding, const void *body,
                        size_t len, influx_http_res *res, fr_error *err);

/* InfluxDB's error text from an answer's body: the "error" member of its
 * JSON ({"error":"..."}), else the body made printable; "(no text)" for
 * none. Writes at most cap bytes (NUL included) to out. */
void influx_http_error_text(const char *body, size_t len, char *out, size_t cap);

/* ---- the answer parser, on its own for the fuzzer ---- */

/* An answer's framing, from its status line and headers. Start zeroed. */
typedef struct influx_http_head {
    unsigned status;
    bool has_length; /* a valid Content-Length */
    uint64_t length;
    bool chunked;           /* Transfer-Encoding ending in chunked */
    bool close;             /* Connection: close, HTTP/1.0, or a bad Content-Length */
    bool influxdb;          /* X-Influxdb-Version present */
    bool started, skipping; /* parser state */
} influx_http_head;

/* Consumes the complete lines at the front of buf[0..*len), cap being
 * buf's size, moving what is left to the front and updating *len.
 * Returns 1 once the empty line that ends the head is consumed (buf then
 * starts with the body's first *len bytes), 0 when more bytes are needed
 * (append them after *len), FR_EPROTO for a malformed status line or none
 * in cap bytes. A header line longer than cap is skipped. */
int influx_http_head_feed(influx_http_head *hd, char *buf, size_t *len, size_t cap);

/* True when a chunked body read into b[0..n) has come to its last chunk. */
bool influx_http_chunks_ended(const char *b, size_t n);

/* Moves the first chunk's data of the chunked body in b[0..n) to the
 * front; returns its length (0 when malformed). */
size_t influx_http_chunk_first(char *b, size_t n);

#endif
