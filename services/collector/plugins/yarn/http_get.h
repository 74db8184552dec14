/* A bounded HTTP GET of one URL over nng's HTTP client.
 *
 * One yarn_http per URL, made once and used for any number of GETs from
 * one thread at a time. Each GET opens a connection, sends the request
 * with "Connection: close", reads the status line and headers, then the
 * body (Content-Length, chunked, or until the server closes), all within
 * one deadline of timeout_ms and at most max_size body bytes.
 * Only http:// URLs are accepted. */
#ifndef YARN_HTTP_GET_H
#define YARN_HTTP_GET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fresco/err.h"

typedef struct yarn_http yarn_http;

/* Parses url and prepares the client and request. FR_ECONFIG (err->where
 * "url") for a URL nng cannot parse or one that is not http://;
 * FR_ENOMEM. On success *out is the caller's, freed by yarn_http_destroy. */
int yarn_http_open(yarn_http **out, const char *url, int64_t timeout_ms, size_t max_size,
                   fr_error *err);

/* Safe on NULL. */
void yarn_http_destroy(yarn_http *h);

/* The URL as given to yarn_http_open. */
const char *yarn_http_url(const yarn_http *h);

/* GETs the URL. On 0, *body (malloc'd, NUL-terminated, the caller frees
 * it) holds *len bytes of an HTTP 200 answer. Otherwise *body is NULL and
 * err says, after "GET <url>: ", what went wrong, with err->where the URL:
 *   FR_ETIMEDOUT  no complete answer within timeout_ms
 *   FR_EREMOTE    a status other than 200 ("HTTP 500 Internal Server Error")
 *   FR_ETOOBIG    a body over max_size
 *   FR_EPROTO     a malformed chunked body, an unknown transfer coding
 *   FR_ENNG and the other codes of fr_from_nng for connection failures
 *                 (nng's reason in the message: "Connection refused") */
int yarn_http_get(yarn_http *h, char **body, size_t *len, fr_error *err);

/* Chunked transfer coding (RFC 9112 section 7.1), decoded in two steps so
 * a body can be checked for completeness as it arrives without scanning
 * it twice. Start with a zeroed yarn_chunks. */
typedef struct yarn_chunks {
    size_t pos; /* raw offset of the next chunk not yet scanned */
    bool done;  /* the last chunk and the trailer section are in */
} yarn_chunks;

/* Scans raw[c->pos..len) over every complete chunk. Returns 1 once the
 * body is complete (c->pos is then its raw length; bytes after it are not
 * part of it), 0 when more bytes are needed, FR_EPROTO when malformed. */
int yarn_chunks_scan(yarn_chunks *c, const char *raw, size_t len);

/* After yarn_chunks_scan returned 1: moves the chunk data to the front of
 * raw and returns its length. */
size_t yarn_chunks_join(const yarn_chunks *c, char *raw);

#endif
