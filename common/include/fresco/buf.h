/* A growable byte buffer. The buffer owns its bytes; fr_buf_free() releases
 * them. Used for encoding messages before they are handed to nng. */
#ifndef FRESCO_BUF_H
#define FRESCO_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct fr_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} fr_buf;

#define FR_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* Makes room for at least `more` further bytes. Returns 0 or FR_ENOMEM. */
int fr_buf_reserve(fr_buf *b, size_t more);

/* Appends n bytes. Returns 0 or FR_ENOMEM (then b is unchanged). */
int fr_buf_append(fr_buf *b, const void *p, size_t n);

/* Appends the string s without its terminating NUL. */
static inline int fr_buf_puts(fr_buf *b, const char *s)
{
    return fr_buf_append(b, s, strlen(s));
}

/* Empties the buffer, keeping its memory for reuse. */
static inline void fr_buf_reset(fr_buf *b)
{
    b->len = 0;
}

/* Releases the bytes; b is then empty and reusable. Safe on an empty buffer. */
void fr_buf_free(fr_buf *b);

/* A msgpack-c write callback (msgpack_packer_write) that appends to the
 * fr_buf passed as `data`; lets msgpack_packer write into an fr_buf. */
int fr_buf_msgpack_write(void *data, const char *buf, size_t len);

#endif
