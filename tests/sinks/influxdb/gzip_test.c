/* The influxdb sink's gzip compressor, checked by the system's gzip: every
 * output is decompressed by `gzip -dc` (which also checks the CRC-32 and
 * length) and compared with the input. Inputs: empty, one byte, runs,
 * small alphabets, random bytes (stored blocks), repeats at the window's
 * edge, text with long matches, 1 MiB of line protocol (its ratio is
 * printed beside `gzip -6`'s), and random mixes of all of these. The
 * length-limited Huffman code builder is also checked on its own (this
 * file includes gzip.c for that): skewed counts that want codes longer
 * than 15 (or 7) bits must get complete codes within the limit. */
#include "testsupport.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "fresco/err.h"

#include "../../../services/publisher/sinks/influxdb/gzip.c"

typedef struct ctx {
    char *dir;
    influx_gzip *z;
} ctx;

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->dir = tst_tmpdir("fresco-gzip");
    assert_non_null(c->dir);
    c->z = influx_gzip_new();
    assert_non_null(c->z);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    influx_gzip_destroy(c->z);
    tst_rmtree(c->dir);
    free(c->dir);
    free(c);
    return 0;
}

/* Runs argv (PATH searched through env) with stdout to out_path; returns
 * its exit status. */
static int run(const char *out_path, const char *a0, const char *a1, const char *a2)
{
    char *argv[] = {"/usr/bin/env", (char *)a0, (char *)a1, (char *)a2, NULL};
    unlink(out_path);
    pid_t pid = tst_spawn(argv, out_path);
    assert_true(pid > 0);
    int st = tst_stop(pid, 0, 30000);
    assert_true(st != -1);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* Compresses in, has gzip -dc decompress it, compares; returns the
 * compressed size. */
static size_t round_trip(ctx *c, const void *in, size_t len)
{
    fr_buf out = FR_BUF_INIT;
    assert_fr_ok(influx_gzip_compress(c->z, in, len, &out));
    assert_true(out.len >= 18);
    char gz[512], plain[512];
    snprintf(gz, sizeof(gz), "%s/in.gz", c->dir);
    snprintf(plain, sizeof(plain), "%s/out", c->dir);
    assert_int_equal(tst_write_file(gz, (const char *)out.data, out.len), 0);
    int st = run(plain, "gzip", "-dc", gz);
    size_t got_len;
    char *got = read_file(plain, &got_len);
    if (st != 0 || got_len != len || memcmp(got, in, len) != 0) {
        fail_msg("gzip -dc: exit %d, %zu bytes back of %zu (compressed %zu): %.200s", st, got_len,
                 len, out.len, st != 0 ? got : "");
    }
    free(got);
    size_t n = out.len;
    fr_buf_free(&out);
    return n;
}

static void test_crc32(void **state)
{
    (void)state;
    assert_int_equal(influx_crc32(0, "123456789", 9), 0xCBF43926u);
    assert_int_equal(influx_crc32(0, "", 0), 0);
    /* In pieces as in one go, across the 8-byte steps. */
    const char *s = "The quick brown fox jumps over the lazy dog";
    uint32_t whole = influx_crc32(0, s, strlen(s));
    assert_int_equal(whole, 0x414FA339u);
    uint32_t part = influx_crc32(influx_crc32(0, s, 5), s + 5, strlen(s) - 5);
    assert_int_equal(part, whole);
}

static void test_small(void **state)
{
    ctx *c = *state;
    assert_int_equal(round_trip(c, "", 0), 20); /* header, one fixed empty block, trailer */
    round_trip(c, "a", 1);
    round_trip(c, "\xff", 1);
    round_trip(c, "ab", 2);
    round_trip(c, "aaa", 3);
    round_trip(c, "abcabcabcabc", 12);
    unsigned char all[256];
    for (int i = 0; i < 256; i++) {
        all[i] = (unsigned char)i;
    }
    round_trip(c, all, sizeof(all));
}

static void test_runs_and_alphabets(void **state)
{
    ctx *c = *state;
    size_t n = 300000;
    char *b = malloc(n);
    assert_non_null(b);
    memset(b, 'x', n);
    size_t z = round_trip(c, b, n);
    assert_true(z < n / 200); /* 258-byte matches at distance 1 */
    srand(42);
    for (size_t i = 0; i < n; i++) {
        b[i] = "ab"[rand() % 2];
    }
    z = round_trip(c, b, n);
    assert_true(z < n / 6);
    for (size_t i = 0; i < n; i++) {
        b[i] = (char)(rand() % 5 == 0 ? rand() % 256 : 'q');
    }
    round_trip(c, b, n);
    free(b);
}

static void test_random(void **state)
{
    ctx *c = *state;
    size_t n = 200000;
    unsigned char *b = malloc(n);
    assert_non_null(b);
    srand(7);
    for (size_t i = 0; i < n; i++) {
        b[i] = (unsigned char)(rand() >> 7);
    }
    size_t z = round_trip(c, b, n);
    /* Stored blocks: a little over the input, never much more. */
    assert_true(z <= n + n / 1000 + 64);
    /* Random data repeated past the window: matches of 32767 back only. */
    memmove(b + 32767, b, 100000);
    round_trip(c, b, n);
    for (size_t len = 65530; len < 65540; len++) {
        round_trip(c, b, len); /* stored blocks around their 65535-byte limit */
    }
    free(b);
}

static void test_text(void **state)
{
    ctx *c = *state;
    /* Text with matches of every length and distance. */
    size_t cap = 400000, n = 0;
    char *b = malloc(cap);
    assert_non_null(b);
    srand(3);
    static const char *words[] = {"collector", "processor", "publisher", " ",  ",",
                                  "=",         "\n",        "\"",        "\\", "influx"};
    while (n + 300 < cap) {
        if (n > 1000 && rand() % 3 == 0) {
            size_t back = 1 + (size_t)rand() % (n < 40000 ? n : 40000);
            size_t len = 1 + (size_t)rand() % 300;
            for (size_t i = 0; i < len; i++, n++) {
                b[n] = b[n - back];
            }
        } else {
            const char *w = words[rand() % 10];
            memcpy(b + n, w, strlen(w));
            n += strlen(w);
        }
    }
    round_trip(c, b, n);
    free(b);
}

/* 1 MiB of line protocol as the sink writes it; the ratio against
 * gzip -6's on the same bytes. */
static void test_line_protocol(void **state)
{
    ctx *c = *state;
    size_t cap = 1u << 20, n = 0;
    char *b = malloc(cap + 512);
    assert_non_null(b);
    srand(11);
    int64_t ts = 1700000000000000000;
    while (n < cap) {
        int cpu = rand() % 32, node = rand() % 50;
        n += (size_t)snprintf(b + n, 512,
                              "intel/procfs/cpu/%d/user_jiffies,dc=eu-west,rack=r%d,source=node-%d,"
                              "unit=jiffies value=%di %lld\n",
                              cpu, node % 5, node, rand() % 1000000000, (long long)ts);
        ts += rand() % 1000000000;
    }
    n = cap;
    char path[512], gz[512];
    snprintf(path, sizeof(path), "%s/lp", c->dir);
    snprintf(gz, sizeof(gz), "%s/lp.gz", c->dir);
    assert_int_equal(tst_write_file(path, b, n), 0);
    int64_t t0 = tst_mono_ms();
    fr_buf out = FR_BUF_INIT;
    assert_fr_ok(influx_gzip_compress(c->z, b, n, &out));
    int64_t ms = tst_mono_ms() - t0;
    size_t ours = out.len;
    fr_buf_free(&out);
    round_trip(c, b, n);
    t0 = tst_mono_ms();
    assert_int_equal(run(gz, "gzip", "-6c", path), 0);
    int64_t gzip_ms = tst_mono_ms() - t0;
    size_t theirs;
    free(read_file(gz, &theirs));
    printf("# gzip ratio on 1 MiB of line protocol: %.2f (%zu bytes, %lld ms in-process); "
           "gzip -6: %.2f (%zu bytes, %lld ms with its start)\n",
           (double)n / (double)ours, ours, (long long)ms, (double)n / (double)theirs, theirs,
           (long long)gzip_ms);
    fflush(stdout);
    /* Within 5% of gzip -6. */
    assert_true(ours <= theirs + theirs / 20);
    free(b);
}

static void test_mixed(void **state)
{
    ctx *c = *state;
    srand(99);
    unsigned char *b = malloc(150000);
    assert_non_null(b);
    for (int it = 0; it < 40; it++) {
        size_t n = (size_t)rand() % 150000;
        size_t i = 0;
        while (i < n) {
            int kind = rand() % 4;
            size_t len = 1 + (size_t)rand() % 2000;
            if (len > n - i) {
                len = n - i;
            }
            for (size_t k = 0; k < len; k++, i++) {
                if (kind == 0 || i == 0) {
                    b[i] = (unsigned char)rand();
                } else if (kind == 1) {
                    b[i] = (unsigned char)('a' + rand() % 3);
                } else {
                    size_t back = 1 + (size_t)rand() % (i < 33000 ? i : 33000);
                    b[i] = b[i - back];
                }
            }
        }
        round_trip(c, b, n);
    }
    free(b);
}

/* Code lengths of huff_lengths: within limit, and the Kraft sum exactly
 * one (a complete code), for counts whose unlimited Huffman code is
 * deeper than the limit. */
static void check_lengths(const uint32_t *freq, unsigned n, unsigned limit)
{
    uint8_t len[LITLEN_CODES];
    huff_lengths(freq, n, limit, len);
    uint64_t kraft = 0;
    for (unsigned i = 0; i < n; i++) {
        assert_true((freq[i] == 0) == (len[i] == 0));
        assert_true(len[i] <= limit);
        if (len[i] != 0) {
            kraft += 1ull << (limit - len[i]);
        }
    }
    assert_int_equal(kraft, 1ull << limit);
}

static void test_length_limit(void **state)
{
    (void)state;
    uint32_t f[LITLEN_CODES] = {0};
    uint32_t a = 1, b = 1;
    for (unsigned i = 0; i < 30; i++) { /* Fibonacci: depth 29 unlimited */
        f[i * 7] = a;
        uint32_t s = a + b;
        a = b;
        b = s;
    }
    check_lengths(f, LITLEN_CODES, 15);
    check_lengths(f, LITLEN_CODES, 7);
    uint32_t g[BL_CODES] = {1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 0, 0, 1, 1};
    check_lengths(g, BL_CODES, 7);
    uint32_t two[DIST_CODES] = {0};
    two[3] = 1000;
    two[29] = 1;
    check_lengths(two, DIST_CODES, 15);
    for (unsigned i = 0; i < LITLEN_CODES; i++) {
        f[i] = 1 + (uint32_t)(i % 3);
    }
    check_lengths(f, LITLEN_CODES, 15);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32),
        cmocka_unit_test_setup_teardown(test_small, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runs_and_alphabets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text, setup, teardown),
        cmocka_unit_test_setup_teardown(test_line_protocol, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mixed, setup, teardown),
        cmocka_unit_test(test_length_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
