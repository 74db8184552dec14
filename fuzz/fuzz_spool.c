/* The spool opening a segment file with any bytes in it. The input becomes
 * seg-0000000000000000.fsp in a fresh directory with one reader whose
 * cursor is at 0; the spool is opened, scanned and read to the end. It must
 * open, the scan and the reader must see the same records, and a record
 * appended afterwards must read back whole. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fresco/log.h"
#include "spool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || (n > 0 && write(fd, p, n) != (ssize_t)n)) {
        abort();
    }
    close(fd);
}

static void empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            continue;
        }
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (unlink(path) != 0) {
            empty_dir(path);
            rmdir(path);
        }
    }
    closedir(d);
}

static int count_record(void *arg, const char *key, const void *data, size_t len)
{
    size_t *n = arg;
    (*n)++;
    /* touch every byte, so a bad length would show under ASan */
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < len; i++) {
        sink ^= ((const uint8_t *)data)[i];
    }
    (void)sink;
    return strlen(key) <= 1024 ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char base[256];
    if (base[0] == '\0') {
        fr_log_set_level(FR_LOG_OFF);
        const char *tmp = getenv("TMPDIR");
        snprintf(base, sizeof(base), "%s/fuzz_spool.XXXXXX", tmp != NULL ? tmp : "/tmp");
        if (mkdtemp(base) == NULL) {
            abort();
        }
    }
    char path[512], cursors[512];
    snprintf(cursors, sizeof(cursors), "%s/cursors", base);
    mkdir(cursors, 0700);
    char line[64];
    int n = snprintf(line, sizeof(line), "fresco-spool-cursor v1 0");
    snprintf(line + n, sizeof(line) - (size_t)n, " %08x\n", spool_crc32c(0, line, (size_t)n));
    snprintf(path, sizeof(path), "%s/fz", cursors);
    write_file(path, line, strlen(line));
    snprintf(path, sizeof(path), "%s/seg-0000000000000000.fsp", base);
    write_file(path, data, size);

    spool_conf conf = {.dir = base};
    spool *s;
    fr_error err;
    if (spool_open(&s, &conf, &err) != 0) {
        abort();
    }
    size_t scanned = 0;
    if (spool_scan(s, count_record, &scanned) != 0) {
        abort();
    }
    spool_reader *r;
    if (spool_reader_open(s, "fz", &r, &err) != 0) {
        abort();
    }
    size_t read = 0;
    spool_record rec;
    uint64_t last_end = 0;
    int rv;
    while ((rv = spool_read(r, &rec, 0)) == 0) {
        if (rec.pos < last_end || rec.end <= rec.pos) {
            abort();
        }
        last_end = rec.end;
        count_record(&read, rec.key, rec.data, rec.len);
    }
    spool_stats st;
    spool_stats_get(s, &st);
    if (rv != FR_ETIMEDOUT || read != scanned || st.torn_bytes > size || st.corrupt_bytes > size) {
        abort();
    }
    if (spool_append(s, "fz/after", "after", 5) != 0 || spool_read(r, &rec, 0) != 0 ||
        rec.len != 5 || memcmp(rec.data, "after", 5) != 0 || strcmp(rec.key, "fz/after") != 0) {
        abort();
    }
    spool_confirm(r, rec.end);
    spool_reader_close(r);
    spool_close(s);
    empty_dir(base);
    return 0;
}
