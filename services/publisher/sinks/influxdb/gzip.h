/* gzip (RFC 1952) around a deflate (RFC 1951) compressor, for request
 * bodies sent with Content-Encoding: gzip.
 *
 * One-shot: the whole input is in memory, so the LZ77 window is the input
 * itself (matches up to 32 KiB back, hash chains, one step of lazy
 * matching, as zlib's level 6). Each block is written the cheapest of
 * three ways, counted exactly before it is written: dynamic Huffman codes
 * built from the block's own symbol counts (length-limited to 15 bits,
 * complete codes as every inflater requires), the fixed codes, or stored
 * as is (random data grows by 5 bytes per 64 KiB, plus the 18 of the gzip
 * header and trailer).
 *
 * Ownership: an influx_gzip holds only working memory (~330 KiB), reused
 * by every call; one thread at a time. */
#ifndef INFLUX_GZIP_H
#define INFLUX_GZIP_H

#include <stddef.h>
#include <stdint.h>

#include "fresco/buf.h"

typedef struct influx_gzip influx_gzip;

/* NULL on out of memory. */
influx_gzip *influx_gzip_new(void);

/* Safe on NULL. */
void influx_gzip_destroy(influx_gzip *z);

/* Appends one gzip member holding in[0..len) to out (mtime 0, no name,
 * OS unix). Returns 0, FR_ENOMEM (out may hold a partial member; reset
 * it), or FR_ETOOBIG for an input of 2 GiB or more. */
int influx_gzip_compress(influx_gzip *z, const void *in, size_t len, fr_buf *out);

/* CRC-32 (IEEE 802.3, reflected 0xEDB88320, as gzip and zlib): pass 0 to
 * start, then the previous result to continue. */
uint32_t influx_crc32(uint32_t crc, const void *data, size_t len);

#endif
