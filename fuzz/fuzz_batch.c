/* fr_batch_decode on anything. What decodes must encode, decode again to an
 * equal batch, re-encode to the same canonical bytes, and agree with
 * fr_batch_peek. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/metric.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fr_batch *b = (fr_batch *)1;
    fr_error err;
    if (fr_batch_decode(data, size, &b, &err) != 0) {
        /* A refusal always says why and leaves nothing behind. */
        if (b != NULL || err.code >= 0 || err.message[0] == '\0') {
            abort();
        }
        return 0;
    }
    fr_buf first = FR_BUF_INIT;
    fr_buf second = FR_BUF_INIT;
    fr_batch *again = NULL;
    if (fr_batch_encode(b, &first) != 0 ||
        fr_batch_decode(first.data, first.len, &again, &err) != 0 || !fr_batch_equal(b, again) ||
        fr_batch_encode(again, &second) != 0 || first.len != second.len ||
        memcmp(first.data, second.data, first.len) != 0) {
        abort();
    }
    char src[64];
    uint64_t seq;
    if (fr_batch_peek(data, size, src, sizeof(src), &seq, &err) != 0 || seq != b->seq ||
        strncmp(src, b->source, sizeof(src) - 1) != 0) {
        abort();
    }
    fr_buf_free(&first);
    fr_buf_free(&second);
    fr_batch_destroy(again);
    fr_batch_destroy(b);
    return 0;
}
