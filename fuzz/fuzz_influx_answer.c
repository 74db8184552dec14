/* The influxdb sink's HTTP answer parser on arbitrary bytes: the first
 * byte sets the size of the pieces the rest arrives in (as reads from a
 * socket would cut it), the head is fed piece by piece into a small
 * buffer, then the body helpers and the error-text reader run on what is
 * left, and the error-text reader on the whole input. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "influxdb/http.h"

#define CAP 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t step = 1 + data[0] % 97;
    data++;
    size--;
    char buf[CAP];
    influx_http_head hd;
    memset(&hd, 0, sizeof(hd));
    size_t len = 0, pos = 0;
    int rv = 0;
    while (rv == 0 && pos < size) {
        size_t n = size - pos;
        if (n > step) {
            n = step;
        }
        if (n > CAP - len) {
            n = CAP - len;
        }
        memcpy(buf + len, data + pos, n);
        len += n;
        pos += n;
        rv = influx_http_head_feed(&hd, buf, &len, CAP);
        if (len >= CAP && rv == 0) {
            __builtin_trap(); /* no room left for the next read */
        }
    }
    if (rv == 1) {
        if (hd.status < 100 || hd.status > 999) {
            __builtin_trap();
        }
        (void)influx_http_chunks_ended(buf, len);
        size_t k = influx_http_chunk_first(buf, len);
        if (k > len) {
            __builtin_trap();
        }
        char text[128];
        influx_http_error_text(buf, k, text, sizeof(text));
        if (strlen(text) >= sizeof(text)) {
            __builtin_trap();
        }
    }
    char text[64];
    influx_http_error_text((const char *)data, size, text, sizeof(text));
    return 0;
}
