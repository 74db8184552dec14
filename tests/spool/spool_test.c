/* The publisher's spool (services/publisher/spool.h) on real files in a
 * temporary directory: framing and CRC-32C, readers, cursors and segment
 * deletion, the size limit, concurrent appends, damage made by flipping
 * bytes and cutting files, and a child process SIGKILLed while it
 * appends. */
#include "testsupport.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fresco/err.h"
#include "spool.h"

#define HDR 28 /* docs/spool.md */

/* ---- helpers ---------------------------------------------------------- */

typedef struct fx {
    char *dir;
    spool *s;
} fx;

static spool *sp_open(const char *dir, int64_t max_bytes, int64_t segment_bytes)
{
    spool_conf conf = {.dir = dir, .max_bytes = max_bytes, .segment_bytes = segment_bytes};
    spool *s = NULL;
    fr_error err;
    int rv = spool_open(&s, &conf, &err);
    if (rv != 0) {
        fail_msg("spool_open %s: %s: %s", dir, err.where, err.message);
    }
    return s;
}

static spool_reader *rd_open(spool *s, const char *name)
{
    spool_reader *r = NULL;
    fr_error err;
    int rv = spool_reader_open(s, name, &r, &err);
    if (rv != 0) {
        fail_msg("spool_reader_open %s: %s", name, err.message);
    }
    return r;
}

/* Record i: 4 bytes of i, then a pattern; 4 to 703 bytes. */
static size_t rec_make(uint32_t i, uint8_t *buf, char *key, size_t keycap)
{
    size_t len = 4 + (size_t)(i * 37u) % 700u;
    memcpy(buf, &i, 4);
    for (size_t j = 4; j < len; j++) {
        buf[j] = (uint8_t)(i + j * 7);
    }
    snprintf(key, keycap, "task-%u/route", i % 5);
    return len;
}

static void rec_append(spool *s, uint32_t i)
{
    uint8_t buf[1024];
    char key[64];
    size_t len = rec_make(i, buf, key, sizeof(key));
    assert_fr_ok(spool_append(s, key, buf, len));
}

static void rec_check(const spool_record *rec, uint32_t i)
{
    uint8_t buf[1024];
    char key[64];
    size_t len = rec_make(i, buf, key, sizeof(key));
    if (rec->len != len || memcmp(rec->data, buf, len) != 0) {
        uint32_t got = 0;
        if (rec->len >= 4) {
            memcpy(&got, rec->data, 4);
        }
        fail_msg("record %u: got %zu bytes (index %u), want %zu", i, rec->len, got, len);
    }
    assert_string_equal(rec->key, key);
}

/* The index a record carries. */
static uint32_t rec_index(const spool_record *rec)
{
    uint32_t i;
    assert_true(rec->len >= 4);
    memcpy(&i, rec->data, 4);
    return i;
}

static spool_stats stats(spool *s)
{
    spool_stats st;
    spool_stats_get(s, &st);
    return st;
}

/* Segment files in dir, and the path of the n-th (sorted by name). */
static int seg_files(const char *dir, int n, char *path, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "ls %s | grep -E '^seg-[0-9a-f]{16}\\.fsp$' | sort", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[256];
    int count = 0;
    while (fgets(line, sizeof(line), p) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (count == n && path != NULL) {
            snprintf(path, cap, "%s/%s", dir, line);
        }
        count++;
    }
    pclose(p);
    return count;
}

static off_t file_size(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_size;
}

/* Flips every bit of the byte at off in path. */
static void flip_byte(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0xff;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

/* stderr captured to a file while a test provokes log lines. */
typedef struct capture {
    int saved;
    char path[512];
} capture;

static void capture_start(capture *c, const char *dir)
{
    snprintf(c->path, sizeof(c->path), "%s/stderr.log", dir);
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0 && c->saved >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
}

static char *capture_end(capture *c)
{
    fflush(stderr);
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    return tst_slurp(c->path);
}

/* Reads everything available (timeout 0) into idx[]; returns the count. */
static size_t read_all(spool_reader *r, uint32_t *idx, size_t cap, uint64_t *last_end)
{
    size_t n = 0;
    spool_record rec;
    int rv;
    while ((rv = spool_read(r, &rec, 0)) == 0) {
        assert_true(n < cap);
        idx[n] = rec_index(&rec);
        rec_check(&rec, idx[n]);
        n++;
        if (last_end != NULL) {
            *last_end = rec.end;
        }
    }
    assert_int_equal(rv, FR_ETIMEDOUT);
    return n;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    f->dir = tst_tmpdir("spool");
    assert_non_null(f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    spool_close(f->s);
    tst_rmtree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* ---- CRC-32C ---------------------------------------------------------- */

static uint32_t crc_bitwise(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        }
    }
    return ~c;
}

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(spool_crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(spool_crc32c_sw(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(spool_crc32c(0, "", 0), 0);
    static uint8_t zeros32[32], ones32[32];
    memset(ones32, 0xff, sizeof(ones32));
    assert_int_equal(spool_crc32c(0, zeros32, 32), 0x8a9136aau); /* RFC 3720 B.4 */
    assert_int_equal(spool_crc32c(0, ones32, 32), 0x62a8ab43u);
    uint8_t buf[4099];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    /* every alignment and length near the word sizes, and chaining */
    for (size_t off = 0; off < 9; off++) {
        for (size_t n = 0; n + off <= sizeof(buf); n += (n < 40 ? 1 : 997)) {
            uint32_t want = crc_bitwise(buf + off, n);
            assert_int_equal(spool_crc32c(0, buf + off, n), want);
            assert_int_equal(spool_crc32c_sw(0, buf + off, n), want);
            size_t half = n / 3;
            assert_int_equal(
                spool_crc32c(spool_crc32c(0, buf + off, half), buf + off + half, n - half), want);
        }
    }
}

/* ---- basics ----------------------------------------------------------- */

static void test_append_read_confirm(void **state)
{
    fx *f = *state;
    f->s = sp_open(f->dir, 0, 0);
    spool_reader *r = rd_open(f->s, "sink-a");
    spool_record rec;
    assert_int_equal(spool_read(r, &rec, 0), FR_ETIMEDOUT);
    int64_t t0 = tst_mono_ms();
    assert_int_equal(spool_read(r, &rec, 30), FR_ETIMEDOUT);
    assert_true(tst_mono_ms() - t0 >= 29);

    for (uint32_t i = 0; i < 200; i++) {
        rec_append(f->s, i);
    }
    assert_fr_ok(spool_append(f->s, "", NULL, 0)); /* empty key and data */
    uint64_t prev_end = 0;
    for (uint32_t i = 0; i < 200; i++) {
        assert_fr_ok(spool_read(r, &rec, 0));
        rec_check(&rec, i);
        assert_true(rec.pos == prev_end);
        assert_true(rec.end > rec.pos && rec.end % 8 == 0);
        prev_end = rec.end;
        spool_confirm(r, rec.end);
    }
    assert_fr_ok(spool_read(r, &rec, 0));
    assert_int_equal(rec.len, 0);
    assert_string_equal(rec.key, "");
    assert_int_equal(spool_read(r, &rec, 0), FR_ETIMEDOUT);
    spool_stats st = stats(f->s);
    assert_int_equal(st.records, 201);
    assert_int_equal(st.head, rec.end);
    assert_int_equal(st.appended_bytes, st.head);
    assert_int_equal(st.bytes, st.head);
    assert_int_equal(st.segments, 1);
    assert_int_equal(st.corrupt_records + st.torn_bytes, 0);

    /* limits */
    char key[1100];
    memset(key, 'k', sizeof(key));
    key[1024] = '\0';
    assert_fr_ok(spool_append(f->s, key, "x", 1));
    key[1024] = 'k';
    key[1025] = '\0';
    assert_int_equal(spool_append(f->s, key, "x", 1), FR_EINVAL);
    assert_int_equal(spool_append(f->s, "k", "x", (size_t)1 << 31), FR_ETOOBIG);
    assert_false(spool_has_room(f->s, (size_t)1 << 31));
    assert_true(spool_has_room(f->s, 100));
    assert_fr_ok(spool_read(r, &rec, 0));
    assert_int_equal(strlen(rec.key), 1024);

    /* a new reader starts at the head */
    spool_reader *late = rd_open(f->s, "late");
    assert_int_equal(spool_read(late, &rec, 0), FR_ETIMEDOUT);
    rec_append(f->s, 7);
    assert_fr_ok(spool_read(late, &rec, 0));
    rec_check(&rec, 7);

    /* names */
    spool_reader *x = NULL;
    fr_error err;
    assert_int_equal(spool_reader_open(f->s, "sink-a", &x, &err), FR_EEXIST);
    assert_int_equal(spool_reader_open(f->s, "a/b", &x, &err), FR_EINVAL);
    assert_int_equal(spool_reader_open(f->s, "..", &x, &err), FR_EINVAL);
    assert_int_equal(spool_reader_open(f->s, "", &x, &err), FR_EINVAL);
    assert_null(x);
    spool_reader_close(late);
    spool_reader_close(r);
    spool_reader_close(NULL);
}

static int scan_collect(void *arg, const char *key, const void *data, size_t len)
{
    uint32_t *n = arg;
    uint32_t i;
    memcpy(&i, data, 4);
    if (i != *n) {
        fail_msg("scan: record %u where %u was expected", i, *n);
    }
    spool_record rec = {.key = key, .data = data, .len = len};
    rec_check(&rec, i);
    (*n)++;
    return *n == 1000 ? 42 : 0;
}

static void test_scan(void **state)
{
    fx *f = *state;
    f->s = sp_open(f->dir, 0, 16384);
    for (uint32_t i = 0; i < 300; i++) {
        rec_append(f->s, i);
    }
    uint32_t n = 0;
    assert_fr_ok(spool_scan(f->s, scan_collect, &n));
    assert_int_equal(n, 300);
    assert_true(stats(f->s).segments > 3);
    for (uint32_t i = 300; i < 1200; i++) {
        rec_append(f->s, i);
    }
    n = 0;
    assert_int_equal(spool_scan(f->s, scan_collect, &n), 42); /* fn stops the walk */
    assert_int_equal(n, 1000);
}

static void test_bad_dir(void **state)
{
    fx *f = *state;
    char path[512];
    snprintf(path, sizeof(path), "%s/plain-file", f->dir);
    assert_int_equal(tst_write_file(path, "x", 1), 0);
    spool_conf conf = {.dir = path};
    spool *s = NULL;
    fr_error err;
    assert_int_equal(spool_open(&s, &conf, &err), FR_EIO);
    assert_null(s);
    assert_non_null(strstr(err.message, path));

    /* one process at a time */
    snprintf(path, sizeof(path), "%s/sub/dir/spool", f->dir);
    conf.dir = path;
    f->s = sp_open(path, 0, 0);
    assert_int_equal(spool_open(&s, &conf, &err), FR_EBUSY);
    assert_non_null(strstr(err.message, "in use"));
    struct stat sb;
    snprintf(path, sizeof(path), "%s/sub/dir/spool/rejected", f->dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
}

/* Records bigger than a segment and than a reader's usual buffer, mixed
 * with small ones: each gets a segment of its own, and the reader's buffer
 * grows for them and shrinks back after. */
static void test_large_records(void **state)
{
    fx *f = *state;
    f->s = sp_open(f->dir, 0, 1 << 20);
    spool_reader *r = rd_open(f->s, "r");
    const size_t sizes[] = {5u << 20, 10, 300, (9u << 20) + 3, 7, 6u << 20, 1};
    size_t n = sizeof(sizes) / sizeof(sizes[0]);
    uint8_t *big = malloc(9u << 21);
    for (size_t k = 0; k < n; k++) {
        for (size_t j = 0; j < sizes[k]; j++) {
            big[j] = (uint8_t)(j * 13 + k);
        }
        assert_fr_ok(spool_append(f->s, "big", big, sizes[k]));
    }
    assert_true(stats(f->s).segments >= 4);
    spool_record rec;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < n; k++) {
            assert_fr_ok(spool_read(r, &rec, 0));
            assert_int_equal(rec.len, sizes[k]);
            const uint8_t *d = rec.data;
            for (size_t j = 0; j < sizes[k]; j++) {
                if (d[j] != (uint8_t)(j * 13 + k)) {
                    fail_msg("record %zu byte %zu", k, j);
                }
            }
        }
        assert_int_equal(spool_read(r, &rec, 0), FR_ETIMEDOUT);
        spool_reader_rewind(r);
    }
    free(big);
    spool_reader_close(r);
}

/* ---- segments and readers --------------------------------------------- */

static void test_rollover_and_deletion(void **state)
{
    fx *f = *state;
    f->s = sp_open(f->dir, 0, 4096);
    spool_reader *a = rd_open(f->s, "a");
    spool_reader *b = rd_open(f->s, "b");
    spool_reader_close(b); /* closed, but its cursor holds records */
    for (uint32_t i = 0; i < 100; i++) {
        rec_append(f->s, i);
    }
    spool_stats st = stats(f->s);
    assert_true(st.segments >= 8);
    assert_int_equal(seg_files(f->dir, 0, NULL, 0), (int)st.segments);
    assert_int_equal(st.tail, 0);

    uint32_t idx[200];
    uint64_t end = 0;
    assert_int_equal(read_all(a, idx, 200, &end), 100);
    for (uint32_t i = 0; i < 100; i++) {
        assert_int_equal(idx[i], i);
    }
    spool_confirm(a, end);
    assert_int_equal(stats(f->s).segments, st.segments); /* b still wants them */
    assert_int_equal(stats(f->s).tail, 0);

    b = rd_open(f->s, "b");
    spool_record rec;
    uint64_t half = 0;
    for (uint32_t i = 0; i < 50; i++) {
        assert_fr_ok(spool_read(b, &rec, 0));
        rec_check(&rec, i);
        half = rec.end;
    }
    spool_confirm(b, half);
    spool_stats mid = stats(f->s);
    assert_true(mid.segments < st.segments && mid.segments > 1);
    assert_true(mid.tail > 0 && mid.tail <= half);
    assert_true(mid.bytes < st.bytes);
    assert_int_equal(seg_files(f->dir, 0, NULL, 0), (int)mid.segments);
    /* what b has not confirmed is all still there */
    spool_reader_rewind(b);
    assert_fr_ok(spool_read(b, &rec, 0));
    rec_check(&rec, 50);
    assert_int_equal(rec.pos, half);
    assert_int_equal(read_all(b, idx, 200, &end), 49);
    spool_confirm(b, end);
    spool_stats done = stats(f->s);
    assert_int_equal(done.segments, 1); /* only the active one */
    assert_int_equal(seg_files(f->dir, 0, NULL, 0), 1);
    assert_int_equal(done.bytes, done.head - done.tail);
    spool_reader_close(a);
    spool_reader_close(b);
}

static void test_reopen_keeps_cursors(void **state)
{
    fx *f = *state;
    f->s = sp_open(f->dir, 0, 8192);
    spool_reader *a = rd_open(f->s, "a");
    spool_reader *b = rd_open(f->s, "b");
    for (uint32_t i = 0; i < 60; i++) {
        rec_append(f->s, i);
    }
    spool_record rec;
    for (uint32_t i = 0; i < 25; i++) {
        assert_fr_ok(spool_read(a, &rec, 0));
    }
    spool_confirm(a, rec.end);
    assert_fr_ok(spool_read(a, &rec, 0)); /* read, not confirmed */
    spool_reader_close(a);
    spool_reader_close(b);
    spool_stats before = stats(f->s);
    spool_close(f->s);

    f->s = sp_open(f->dir, 0, 8192);
    spool_stats after = stats(f->s);
    assert_int_equal(after.head, before.head);
    assert_int_equal(after.tail, before.tail);
    assert_int_equal(after.bytes, before.bytes);
    a = rd_open(f->s, "a");
    b = rd_open(f->s, "b");
    uint32_t idx[100];
    assert_int_equal(read_all(a, idx, 100, NULL), 35);
    assert_int_equal(idx[0], 25);
    assert_int_equal(read_all(b, idx, 100, NULL), 60);
    assert_int_equal(idx[0], 0);
    rec_append(f->s, 60); /* appends go on after the old ones */
    assert_fr_ok(spool_read(a, &rec, 0));
    rec_check(&rec, 60);
    spool_reader_close(a);
    spool_reader_close(b);
}

static void test_rewind(void **state)
{
    fx *f = *state;
    f->s = sp_open(f->dir, 0, 0);
    spool_reader *r = rd_open(f->s, "r");
    for (uint32_t i = 0; i < 10; i++) {
        rec_append(f->s, i);
    }
    spool_record rec;
    spool_reader_rewind(r); /* nothing confirmed: from the start */
    for (uint32_t i = 0; i < 5; i++) {
        assert_fr_ok(spool_read(r, &rec, 0));
        rec_check(&rec, i);
        if (i == 1) {
            spool_confirm(r, rec.end);
        }
    }
    spool_reader_rewind(r);
    assert_fr_ok(spool_read(r, &rec, 0));
    rec_check(&rec, 2);
    /* confirming past what was read goes no further than the read */
    spool_confirm(r, UINT64_MAX);
    spool_reader_rewind(r);
    assert_fr_ok(spool_read(r, &rec, 0));
    rec_check(&rec, 3);
    /* confirming backwards changes nothing */
    spool_confirm(r, 0);
    spool_reader_rewind(r);
    assert_fr_ok(spool_read(r, &rec, 0));
    rec_check(&rec, 3);
    spool_reader_close(r);
}

typedef struct waiter {
    spool_reader *r;
    int timeout;
    int rv;
    uint32_t idx;
    _Atomic int state; /* 1 waiting, 2 returned */
} waiter;

static void *wait_thread(void *arg)
{
    waiter *w = arg;
    spool_record rec;
    w->state = 1;
    w->rv = spool_read(w->r, &rec, w->timeout);
    if (w->rv == 0) {
        w->idx = rec_index(&rec);
    }
    w->state = 2;
    return NULL;
}

static bool waiter_returned(void *arg)
{
    return ((waiter *)arg)->state == 2;
}

static void test_wake_and_wait(void **state)
{
    fx *f = *state;
    f->s = sp_open(f->dir, 0, 0);
    spool_reader *r = rd_open(f->s, "r");
    waiter w = {.r = r, .timeout = -1};
    pthread_t t;
    pthread_create(&t, NULL, wait_thread, &w);
    /* an append wakes a reader waiting forever */
    assert_false(tst_wait_until(waiter_returned, &w, 50));
    rec_append(f->s, 3);
    assert_true(tst_wait_until(waiter_returned, &w, 5000));
    pthread_join(t, NULL);
    assert_int_equal(w.rv, 0);
    assert_int_equal(w.idx, 3);

    /* and spool_reader_wake makes it return FR_ECLOSED */
    w.state = 0;
    pthread_create(&t, NULL, wait_thread, &w);
    assert_false(tst_wait_until(waiter_returned, &w, 50));
    spool_reader_wake(r);
    assert_true(tst_wait_until(waiter_returned, &w, 5000));
    pthread_join(t, NULL);
    assert_int_equal(w.rv, FR_ECLOSED);

    /* a wake with nobody waiting is kept for the next read, once */
    spool_record rec;
    rec_append(f->s, 4);
    spool_reader_wake(r);
    assert_int_equal(spool_read(r, &rec, 1000), FR_ECLOSED);
    assert_fr_ok(spool_read(r, &rec, 0));
    rec_check(&rec, 4);
    spool_reader_close(r);
}

static void test_reader_remove(void **state)
{
    fx *f = *state;
    f->s = sp_open(f->dir, 0, 4096);
    spool_reader *a = rd_open(f->s, "a");
    spool_reader *gone = rd_open(f->s, "gone");
    assert_int_equal(spool_reader_remove(f->s, "gone"), FR_EBUSY);
    spool_reader_close(gone);
    for (uint32_t i = 0; i < 80; i++) {
        rec_append(f->s, i);
    }
    uint32_t idx[100];
    uint64_t end = 0;
    assert_int_equal(read_all(a, idx, 100, &end), 80);
    spool_confirm(a, end);
    uint64_t held = stats(f->s).segments;
    assert_true(held > 5);
    char cpath[600];
    snprintf(cpath, sizeof(cpath), "%s/cursors/gone", f->dir);
    assert_true(access(cpath, F_OK) == 0);
    assert_fr_ok(spool_reader_remove(f->s, "gone"));
    assert_true(access(cpath, F_OK) != 0);
    assert_int_equal(stats(f->s).segments, 1);
    assert_int_equal(seg_files(f->dir, 0, NULL, 0), 1);
    assert_int_equal(spool_reader_remove(f->s, "gone"), FR_ENOTFOUND);
    assert_int_equal(spool_reader_remove(f->s, "never"), FR_ENOTFOUND);
    /* it stays gone after a reopen */
    spool_reader_close(a);
    spool_close(f->s);
    f->s = sp_open(f->dir, 0, 4096);
    assert_int_equal(spool_reader_remove(f->s, "gone"), FR_ENOTFOUND);
    assert_fr_ok(spool_reader_remove(f->s, "a"));
}

static void test_full_then_room(void **state)
{
    fx *f = *state;
    f->s = sp_open(f->dir, 8192, 2048);
    spool_reader *r = rd_open(f->s, "r");
    uint32_t n = 0;
    int rv;
    uint8_t buf[1024];
    char key[64];
    while ((rv = spool_append(f->s, key, buf, rec_make(n, buf, key, sizeof(key)))) == 0) {
        n++;
        assert_true(n < 1000);
    }
    assert_int_equal(rv, FR_EBUSY);
    assert_false(spool_has_room(f->s, 10));
    spool_stats st = stats(f->s);
    assert_int_equal(st.full, 1);
    assert_true(st.bytes >= 8192 && st.bytes < 8192 + 2048);
    assert_int_equal(st.records, n);
    assert_int_equal(spool_append(f->s, "k", "x", 1), FR_EBUSY);
    assert_int_equal(stats(f->s).full, 2);

    /* what was taken is all readable; confirming it makes room */
    spool_record rec;
    for (uint32_t i = 0; i < n / 2; i++) {
        assert_fr_ok(spool_read(r, &rec, 0));
        rec_check(&rec, i);
    }
    spool_confirm(r, rec.end);
    assert_true(spool_has_room(f->s, 10));
    assert_true(stats(f->s).bytes < st.bytes);
    rec_append(f->s, n);
    for (uint32_t i = n / 2; i <= n; i++) {
        assert_fr_ok(spool_read(r, &rec, 0));
        rec_check(&rec, i);
    }
    /* fill it again, then confirm everything: the active segment goes too */
    uint32_t m = n + 1;
    while (spool_append(f->s, key, buf, rec_make(m, buf, key, sizeof(key))) == 0) {
        m++;
    }
    uint32_t idx[1000];
    uint64_t end = 0;
    assert_int_equal(read_all(r, idx, 1000, &end), m - n - 1);
    spool_confirm(r, end);
    assert_true(spool_has_room(f->s, 10));
    rec_append(f->s, m);
    assert_true(stats(f->s).bytes <= 2048);
    assert_fr_ok(spool_read(r, &rec, 0));
    rec_check(&rec, m);
    spool_reader_close(r);
    spool_close(f->s);

    /* a limit below the segment size: the full active segment, once
     * confirmed, is let go for a new one */
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/small", f->dir);
    f->s = sp_open(dir, 4096, 1 << 20);
    r = rd_open(f->s, "r");
    n = 0;
    while (spool_append(f->s, key, buf, rec_make(n, buf, key, sizeof(key))) == 0) {
        n++;
    }
    assert_int_equal(stats(f->s).segments, 1);
    assert_false(spool_has_room(f->s, 10));
    assert_int_equal(read_all(r, idx, 1000, &end), n);
    spool_confirm(r, end);
    assert_true(spool_has_room(f->s, 10));
    rec_append(f->s, n);
    st = stats(f->s);
    assert_int_equal(st.segments, 1);
    assert_int_equal(st.tail, end);
    assert_int_equal(st.bytes, st.head - end);
    assert_int_equal(seg_files(dir, 0, NULL, 0), 1);
    assert_fr_ok(spool_read(r, &rec, 0));
    rec_check(&rec, n);
    spool_reader_close(r);
}

/* ---- threads ---------------------------------------------------------- */

#define THREADS     4
#define PER_THREAD  5000
#define ALL_RECORDS (THREADS * PER_THREAD)

typedef struct appender {
    spool *s;
    uint32_t thread;
} appender;

static void *append_thread(void *arg)
{
    appender *a = arg;
    uint8_t buf[2048];
    for (uint32_t i = 0; i < PER_THREAD; i++) {
        uint32_t v[2] = {a->thread, i};
        size_t len = 8 + (i * 131u + a->thread * 17u) % 1500u;
        memcpy(buf, v, 8);
        memset(buf + 8, (int)(a->thread * 64 + i % 64), len - 8);
        char key[32];
        snprintf(key, sizeof(key), "t%u", a->thread);
        if (spool_append(a->s, key, buf, len) != 0) {
            return (void *)1;
        }
    }
    return NULL;
}

/* Checks one record of append_thread's and the order per thread. */
static void check_threaded(const spool_record *rec, uint32_t *next)
{
    uint32_t v[2];
    assert_true(rec->len >= 8);
    memcpy(v, rec->data, 8);
    assert_true(v[0] < THREADS);
    assert_int_equal(v[1], next[v[0]]);
    next[v[0]]++;
    size_t len = 8 + (v[1] * 131u + v[0] * 17u) % 1500u;
    assert_int_equal(rec->len, len);
    const uint8_t *p = rec->data;
    for (size_t j = 8; j < len; j++) {
        assert_int_equal(p[j], (uint8_t)(v[0] * 64 + v[1] % 64));
    }
    char key[32];
    snprintf(key, sizeof(key), "t%u", v[0]);
    assert_string_equal(rec->key, key);
}

typedef struct slow_reader {
    spool_reader *r;
    int confirm_every;
    int pause_us;
    uint32_t got;
    int rv;
} slow_reader;

static void *read_thread(void *arg)
{
    slow_reader *sr = arg;
    uint32_t next[THREADS] = {0};
    spool_record rec;
    while (sr->got < ALL_RECORDS) {
        int rv = spool_read(sr->r, &rec, 10000);
        if (rv != 0) {
            sr->rv = rv;
            return NULL;
        }
        check_threaded(&rec, next);
        sr->got++;
        if (sr->got % (uint32_t)sr->confirm_every == 0 || sr->got == ALL_RECORDS) {
            spool_confirm(sr->r, rec.end);
            if (sr->pause_us > 0) {
                usleep((useconds_t)sr->pause_us);
            }
        }
    }
    return NULL;
}

/* Four threads append at once while a fast and a slow reader follow:
 * nothing lost, nothing interleaved, each thread's records in order. */
static void test_concurrent_appends_and_readers(void **state)
{
    fx *f = *state;
    f->s = sp_open(f->dir, 0, 256 * 1024);
    slow_reader fast = {.r = rd_open(f->s, "fast"), .confirm_every = 1};
    slow_reader slow = {.r = rd_open(f->s, "slow"), .confirm_every = 500, .pause_us = 2000};
    pthread_t rt[2], at[THREADS];
    appender ap[THREADS];
    pthread_create(&rt[0], NULL, read_thread, &fast);
    pthread_create(&rt[1], NULL, read_thread, &slow);
    for (uint32_t t = 0; t < THREADS; t++) {
        ap[t] = (appender){f->s, t};
        pthread_create(&at[t], NULL, append_thread, &ap[t]);
    }
    for (uint32_t t = 0; t < THREADS; t++) {
        void *res;
        pthread_join(at[t], &res);
        assert_null(res);
    }
    pthread_join(rt[0], NULL);
    pthread_join(rt[1], NULL);
    assert_int_equal(fast.rv, 0);
    assert_int_equal(slow.rv, 0);
    assert_int_equal(fast.got, ALL_RECORDS);
    assert_int_equal(slow.got, ALL_RECORDS);
    spool_stats st = stats(f->s);
    assert_int_equal(st.records, ALL_RECORDS);
    assert_int_equal(st.segments, 1); /* both confirmed everything */

    /* and the file holds them the same way: read again after a reopen */
    spool_reader_close(fast.r);
    spool_reader_close(slow.r);
    spool_close(f->s);
    f->s = sp_open(f->dir, 0, 256 * 1024);
    assert_int_equal(stats(f->s).head, st.head);
    assert_int_equal(stats(f->s).torn_bytes, 0);
}

/* ---- damage ----------------------------------------------------------- */

/* 40 records in one segment, their positions in pos[] (and pos[40] the
 * head); the spool closed. */
static void make_segment(fx *f, uint64_t *pos, int64_t segment_bytes, uint32_t n)
{
    f->s = sp_open(f->dir, 0, segment_bytes);
    spool_reader *r = rd_open(f->s, "r");
    spool_reader_close(r);
    r = rd_open(f->s, "r2");
    spool_reader_close(r);
    for (uint32_t i = 0; i < n; i++) {
        pos[i] = stats(f->s).head;
        rec_append(f->s, i);
    }
    pos[n] = stats(f->s).head;
    spool_close(f->s);
    f->s = NULL;
}

static void test_torn_tail_cut(void **state)
{
    fx *f = *state;
    uint64_t pos[41];
    make_segment(f, pos, 0, 40);
    char seg[600];
    assert_int_equal(seg_files(f->dir, 0, seg, sizeof(seg)), 1);
    /* a crash in the middle of the last append: half a record */
    assert_int_equal(truncate(seg, (off_t)(pos[39] + (pos[40] - pos[39]) / 2)), 0);
    capture c;
    capture_start(&c, f->dir);
    f->s = sp_open(f->dir, 0, 0);
    char *log = capture_end(&c);
    spool_stats st = stats(f->s);
    assert_int_equal(st.torn_bytes, (pos[40] - pos[39]) / 2);
    assert_int_equal(st.head, pos[39]);
    assert_int_equal(file_size(seg), (off_t)pos[39]);
    assert_int_equal(st.corrupt_records, 0);
    assert_non_null(strstr(log, "seg-0000000000000000.fsp"));
    free(log);
    spool_reader *r = rd_open(f->s, "r");
    uint32_t idx[64];
    assert_int_equal(read_all(r, idx, 64, NULL), 39);
    rec_append(f->s, 100); /* appends go where the torn record was */
    spool_record rec;
    assert_fr_ok(spool_read(r, &rec, 0));
    rec_check(&rec, 100);
    assert_int_equal(rec.pos, pos[39]);
    spool_reader_close(r);
    spool_close(f->s);

    /* a power loss can leave zeros after the last record */
    int fd = open(seg, O_WRONLY | O_APPEND);
    static const uint8_t zeros[5000];
    assert_int_equal(write(fd, zeros, sizeof(zeros)), (ssize_t)sizeof(zeros));
    close(fd);
    /* or a header whose record never followed */
    f->s = sp_open(f->dir, 0, 0);
    assert_int_equal(stats(f->s).torn_bytes, sizeof(zeros));
    r = rd_open(f->s, "r2");
    assert_int_equal(read_all(r, idx, 64, NULL), 40);
    spool_reader_close(r);
}

static void test_torn_header_only(void **state)
{
    fx *f = *state;
    uint64_t pos[11];
    make_segment(f, pos, 0, 10);
    char seg[600];
    seg_files(f->dir, 0, seg, sizeof(seg));
    /* the last record's header made it, its data did not */
    assert_int_equal(truncate(seg, (off_t)pos[9] + HDR), 0);
    f->s = sp_open(f->dir, 0, 0);
    assert_int_equal(stats(f->s).torn_bytes, HDR);
    assert_int_equal(stats(f->s).head, pos[9]);
    spool_close(f->s);
    /* the last record is whole in length but its data is wrong */
    flip_byte(seg, (off_t)pos[8] + HDR + 6);
    f->s = sp_open(f->dir, 0, 0);
    assert_int_equal(stats(f->s).torn_bytes, pos[9] - pos[8]);
    spool_reader *r = rd_open(f->s, "r");
    uint32_t idx[16];
    assert_int_equal(read_all(r, idx, 16, NULL), 8);
    assert_int_equal(stats(f->s).corrupt_records, 0);
    spool_reader_close(r);
}

static int scan_skip(void *arg, const char *key, const void *data, size_t len)
{
    (void)key;
    (void)data;
    (void)len;
    (*(uint32_t *)arg)++;
    return 0;
}

/* Two readers read a segment with damage in it: every good record
 * arrives, the damage is logged once (file and offset) and counted once. */
static void read_damaged(fx *f, uint32_t n, uint32_t bad, uint64_t bad_off, uint64_t bad_bytes,
                         const char *why)
{
    capture c;
    capture_start(&c, f->dir);
    f->s = sp_open(f->dir, 0, 0);
    spool_reader *r = rd_open(f->s, "r");
    spool_reader *r2 = rd_open(f->s, "r2");
    uint32_t idx[64], idx2[64];
    size_t got = read_all(r, idx, 64, NULL);
    size_t got2 = read_all(r2, idx2, 64, NULL);
    uint32_t scanned = 0;
    assert_fr_ok(spool_scan(f->s, scan_skip, &scanned));
    char *log = capture_end(&c);
    assert_int_equal(scanned, n - 1);
    assert_int_equal(got, n - 1);
    assert_int_equal(got2, n - 1);
    for (uint32_t i = 0, k = 0; i < n; i++) {
        if (i != bad) {
            assert_int_equal(idx[k], i);
            assert_int_equal(idx2[k], i);
            k++;
        }
    }
    spool_stats st = stats(f->s);
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(st.corrupt_bytes, bad_bytes);
    assert_int_equal(st.torn_bytes, 0);
    char want[128];
    snprintf(want, sizeof(want), "seg-0000000000000000.fsp: damaged data at offset %llu: %s",
             (unsigned long long)bad_off, why);
    if (strstr(log, want) == NULL) {
        fail_msg("no '%s' in the log:\n%s", want, log);
    }
    assert_null(strstr(strstr(log, want) + strlen(want), "damaged")); /* once */
    free(log);
    spool_reader_close(r);
    spool_reader_close(r2);
}

static void test_corrupt_record_skipped(void **state)
{
    fx *f = *state;
    uint64_t pos[41];
    make_segment(f, pos, 0, 40);
    char seg[600];
    seg_files(f->dir, 0, seg, sizeof(seg));
    flip_byte(seg, (off_t)(pos[17] + HDR + 10));
    capture c;
    capture_start(&c, f->dir);
    f->s = sp_open(f->dir, 0, 0);
    uint32_t n = 0;
    assert_fr_ok(spool_scan(f->s, scan_skip, &n));
    char *log = capture_end(&c);
    free(log);
    assert_int_equal(n, 39);
    spool_close(f->s);
    f->s = NULL;
    read_damaged(f, 40, 17, pos[17], pos[18] - pos[17], "checksum mismatch");
}

static void test_corrupt_header_skipped(void **state)
{
    fx *f = *state;
    uint64_t pos[41];
    make_segment(f, pos, 0, 40);
    char seg[600];
    seg_files(f->dir, 0, seg, sizeof(seg));
    flip_byte(seg, (off_t)(pos[23] + 9)); /* data length */
    flip_byte(seg, (off_t)(pos[23] + 2)); /* magic */
    f->s = NULL;
    capture c;
    capture_start(&c, f->dir);
    f->s = sp_open(f->dir, 0, 0);
    spool_reader *r = rd_open(f->s, "r");
    spool_reader *r2 = rd_open(f->s, "r2");
    uint32_t idx[64], idx2[64];
    size_t got = read_all(r, idx, 64, NULL);
    size_t got2 = read_all(r2, idx2, 64, NULL);
    char *log = capture_end(&c);
    assert_int_equal(got, 39);
    assert_int_equal(got2, 39);
    assert_int_equal(idx[22], 22);
    assert_int_equal(idx[23], 24);
    spool_stats st = stats(f->s);
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(st.corrupt_bytes, pos[24] - pos[23]);
    char want[128];
    snprintf(want, sizeof(want), "damaged data at offset %llu: bad record header",
             (unsigned long long)pos[23]);
    assert_non_null(strstr(log, want));
    free(log);
    spool_reader_close(r);
    spool_reader_close(r2);
}

static void test_truncated_segment_not_last(void **state)
{
    fx *f = *state;
    uint64_t pos[121];
    make_segment(f, pos, 4096, 120);
    char first[600], second[600];
    int nseg = seg_files(f->dir, 0, first, sizeof(first));
    assert_true(nseg >= 3);
    seg_files(f->dir, 1, second, sizeof(second));
    uint64_t second_base = strtoull(strrchr(second, '-') + 1, NULL, 16);
    /* cut the first segment in the middle of a record */
    uint32_t cut = 0;
    while (pos[cut + 1] < second_base / 2) {
        cut++;
    }
    assert_int_equal(truncate(first, (off_t)(pos[cut] + 40)), 0);
    capture c;
    capture_start(&c, f->dir);
    f->s = sp_open(f->dir, 0, 4096);
    assert_int_equal(stats(f->s).torn_bytes, 0); /* only the last segment is cut at open */
    spool_reader *r = rd_open(f->s, "r");
    uint32_t idx[200];
    size_t got = read_all(r, idx, 200, NULL);
    char *log = capture_end(&c);
    uint32_t first_after = 0;
    while (pos[first_after] < second_base) {
        first_after++;
    }
    /* everything before the cut, and all of the later segments */
    assert_int_equal(got, cut + (120 - first_after));
    for (uint32_t i = 0; i < cut; i++) {
        assert_int_equal(idx[i], i);
    }
    assert_int_equal(idx[cut], first_after);
    assert_int_equal(idx[got - 1], 119);
    spool_stats st = stats(f->s);
    assert_int_equal(st.corrupt_records, 1);
    assert_int_equal(st.corrupt_bytes, second_base - pos[cut]);
    assert_non_null(strstr(log, "seg-0000000000000000.fsp: damaged data at offset"));
    assert_non_null(strstr(log, "the segment ends inside the record"));
    free(log);
    spool_reader_close(r);
}

/* ---- crash ------------------------------------------------------------ */

static size_t crash_record(uint32_t i, uint8_t *buf)
{
    size_t len = 4 + (size_t)((i * 2654435761u) % 65536u);
    memcpy(buf, &i, 4);
    for (size_t j = 4; j < len; j++) {
        buf[j] = (uint8_t)(i * 31 + j);
    }
    return len;
}

/* Lines the helper finished writing: the last index it acknowledged + 1. */
static long acked(const char *log)
{
    char *text = tst_slurp(log);
    long n = 0;
    for (char *p = text; *p != '\0'; p++) {
        n += *p == '\n';
    }
    free(text);
    return n;
}

typedef struct crash_wait {
    const char *log;
    long want;
} crash_wait;

static bool helper_acked(void *arg)
{
    crash_wait *w = arg;
    return acked(w->log) >= w->want;
}

typedef struct crash_check {
    uint32_t next;
    uint8_t *buf;
} crash_check;

static int crash_collect(void *arg, const char *key, const void *data, size_t len)
{
    crash_check *c = arg;
    uint32_t i;
    memcpy(&i, data, 4);
    if (i != c->next) {
        fail_msg("after the crash: record %u where %u was expected", i, c->next);
    }
    size_t want = crash_record(i, c->buf);
    char k[32];
    snprintf(k, sizeof(k), "crash/%u", i);
    if (len != want || memcmp(data, c->buf, len) != 0 || strcmp(key, k) != 0) {
        fail_msg("after the crash: record %u is not what was appended", i);
    }
    c->next++;
    return 0;
}

static void test_crash_replays_acknowledged(void **state)
{
    fx *f = *state;
    char bin[512], dir[600], log[600];
    tst_bin(bin, sizeof(bin), "tests/spool/spool_crash_helper");
    snprintf(dir, sizeof(dir), "%s/spool", f->dir);
    snprintf(log, sizeof(log), "%s/helper.log", f->dir);
    crash_check c = {.buf = malloc(65536 + 4)};
    uint64_t torn = 0;
    long total_acked = 0;
    for (int round = 0; round < 3; round++) {
        char *argv[] = {bin, dir, NULL};
        unlink(log);
        pid_t pid = tst_spawn(argv, log);
        assert_true(pid > 0);
        crash_wait w = {log, 300 + round * 97};
        if (!tst_wait_until(helper_acked, &w, 20000)) {
            char *text = tst_slurp(log);
            tst_stop(pid, SIGKILL, 5000);
            fail_msg("the helper acknowledged too little:\n%.2000s", text);
        }
        int status = tst_stop(pid, SIGKILL, 5000);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        long n = acked(log);
        total_acked += n;

        spool *s = sp_open(dir, 0, 1 << 20);
        spool_stats st = stats(s);
        torn += st.torn_bytes;
        assert_int_equal(st.corrupt_records, 0);
        /* every acknowledged record, in order, and nothing damaged after */
        c.next = 0;
        assert_fr_ok(spool_scan(s, crash_collect, &c));
        assert_true((long)c.next >= n);
        assert_true((long)c.next <= n + 1); /* at most the one being acknowledged */
        /* the helper's reader sees the same */
        spool_reader *r = rd_open(s, "check");
        spool_record rec;
        uint32_t k = 0;
        while (spool_read(r, &rec, 0) == 0) {
            assert_int_equal(rec_index(&rec), k);
            k++;
        }
        assert_int_equal(k, c.next);
        spool_reader_close(r);
        spool_close(s);
        /* start afresh for the next round */
        tst_rmtree(dir);
    }
    print_message("crash: %ld records acknowledged over 3 kills, %llu torn bytes cut\n",
                  total_acked, (unsigned long long)torn);
    free(c.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test_setup_teardown(test_append_read_confirm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollover_and_deletion, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_cursors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wake_and_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reader_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_then_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_appends_and_readers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_header_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_header_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_segment_not_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_replays_acknowledged, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
