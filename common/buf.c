/* Growable byte buffer. */
#include "fresco/buf.h"

#include <stdlib.h>

#include "fresco/err.h"

int fr_buf_reserve(fr_buf *b, size_t more)
{
    if (b->cap - b->len >= more) {
        return 0;
    }
    if (more > SIZE_MAX / 2 - b->len) {
        return FR_ENOMEM;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more) {
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) {
        return FR_ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int fr_buf_append(fr_buf *b, const void *p, size_t n)
{
    int rv = fr_buf_reserve(b, n);
    if (rv != 0) {
        return rv;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
    return 0;
}

void fr_buf_free(fr_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int fr_buf_msgpack_write(void *data, const char *buf, size_t len)
{
    return fr_buf_append(data, buf, len) == 0 ? 0 : -1;
}
