/* Appends numbered records to the spool in argv[1] until killed, writing
 * each index to stdout (one write(2) per line) only after spool_append
 * returned 0, so what it printed is what it acknowledged. Sizes vary from
 * a few bytes to 64 KiB so that a kill often lands inside a write.
 *   spool_crash_helper DIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spool.h"

/* The same contents as spool_test.c's crash check expects. */
static size_t crash_record(uint32_t i, uint8_t *buf)
{
    size_t len = 4 + (size_t)((i * 2654435761u) % 65536u);
    memcpy(buf, &i, 4);
    for (size_t j = 4; j < len; j++) {
        buf[j] = (uint8_t)(i * 31 + j);
    }
    return len;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: spool_crash_helper DIR\n");
        return 2;
    }
    spool_conf conf = {.dir = argv[1], .segment_bytes = 1 << 20};
    spool *s;
    fr_error err;
    if (spool_open(&s, &conf, &err) != 0) {
        fprintf(stderr, "spool_open: %s\n", err.message);
        return 1;
    }
    spool_reader *r;
    if (spool_reader_open(s, "check", &r, &err) != 0) {
        fprintf(stderr, "spool_reader_open: %s\n", err.message);
        return 1;
    }
    static uint8_t buf[65536 + 4];
    for (uint32_t i = 0;; i++) {
        size_t len = crash_record(i, buf);
        char key[32];
        snprintf(key, sizeof(key), "crash/%u", i);
        int rv = spool_append(s, key, buf, len);
        if (rv != 0) {
            fprintf(stderr, "spool_append %u: %s\n", i, fr_strerror(rv));
            return 1;
        }
        char line[16];
        int n = snprintf(line, sizeof(line), "%u\n", i);
        if (write(STDOUT_FILENO, line, (size_t)n) != n) {
            return 1;
        }
    }
}
