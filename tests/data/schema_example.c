/* Loads the wire contract's examples. */
#include "schema_example.h"

#include "testsupport.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hex_digit(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

uint8_t *example_load(const char *name, size_t *len)
{
    char rel[256], path[1024];
    snprintf(rel, sizeof(rel), "schemas/examples/%s.hex", name);
    tst_src(path, sizeof(path), rel);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fail_msg("cannot open %s (is FRESCO_TEST_SRC set?)", path);
    }
    size_t cap = 256, n = 0;
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    int c, line = 1, hi = -1;
    while ((c = fgetc(f)) != EOF) {
        if (c == '#') {
            while ((c = fgetc(f)) != EOF && c != '\n') {
            }
        }
        if (c == '\n') {
            line++;
        }
        if (c == EOF || isspace(c)) {
            if (hi >= 0) {
                fail_msg("%s:%d: odd number of hex digits", path, line);
            }
            continue;
        }
        int d = hex_digit(c);
        if (d < 0) {
            fail_msg("%s:%d: '%c' is not a hex digit", path, line, c);
        }
        if (hi < 0) {
            hi = d;
            continue;
        }
        if (n == cap) {
            cap *= 2;
            out = realloc(out, cap);
            assert_non_null(out);
        }
        out[n++] = (uint8_t)(hi << 4 | d);
        hi = -1;
    }
    fclose(f);
    if (hi >= 0) {
        fail_msg("%s: odd number of hex digits at the end", path);
    }
    *len = n;
    return out;
}

void example_assert_equal(const char *name, const void *got, size_t n)
{
    size_t len;
    uint8_t *want = example_load(name, &len);
    const uint8_t *g = got;
    size_t i = 0;
    while (i < n && i < len && g[i] == want[i]) {
        i++;
    }
    if (i != n || n != len) {
        unsigned gb = i < n ? g[i] : 0, wb = i < len ? want[i] : 0;
        free(want);
        fail_msg("%s: %zu bytes written, %zu in the example; first difference at byte %zu "
                 "(0x%02x, example 0x%02x)",
                 name, n, len, i, gb, wb);
    }
    free(want);
}
