/* Incremental reading of a text file that another program appends to (a
 * solver log, a Spark CSV sink file, a benchmark client's output), one
 * collector tick at a time.
 *
 * Between ticks a logtail keeps the byte offset it has read up to, the
 * file's identity (device and inode), its first bytes, and an unfinished
 * last line. Each logtail_poll() hands every complete new line to a
 * callback and keeps the unfinished tail for the next tick, so a line the
 * writer is half-way through is never parsed. It notices:
 *   - rotation (the path names another inode): the rest of the old file is
 *     read first when it is still open, then the new one from its start;
 *   - truncation (the file shrank below the offset) and a file rewritten in
 *     place (its first bytes changed): read again from the start;
 *   - a backlog over max_read bytes: skipped up to the last max_read bytes,
 *     so one tick never reads without bound (line numbers are then unknown
 *     and errors give the byte offset instead).
 * Polling never blocks and never sleeps.
 *
 * Header-only (static inline) so that each plugin folder builds on its own.
 * Ownership: the logtail borrows `path` (it must outlive the logtail) and
 * owns its descriptor and line buffer; logtail_close() frees them and is
 * safe on a zeroed or closed logtail. */
#ifndef COLLECTOR_LOGTAIL_H
#define COLLECTOR_LOGTAIL_H

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fresco/err.h"

#define LOGTAIL_SIG      128         /* first bytes remembered to notice a rewrite */
#define LOGTAIL_MAX_LINE (64 * 1024) /* a longer line is an error and is skipped */
#define LOGTAIL_CHUNK    (64 * 1024) /* size of the scratch buffer a caller passes */

/* Called with each complete line, without its "\n" (or "\r\n"), NUL
 * terminated; the line may be modified in place. `where` names the file and
 * line ("run.log:42"). Returns 0, or a negative code with err filled: the
 * line is counted as malformed and reading goes on. */
typedef int (*logtail_line_fn)(void *arg, char *line, size_t len, const char *where, fr_error *err);

typedef struct logtail {
    const char *path;
    bool keep_open; /* hold the descriptor between polls (lets a rotated file be drained) */
    uint64_t max_read;
    int fd;     /* -1 when closed */
    bool known; /* dev/ino/off describe a file seen before */
    dev_t dev;
    ino_t ino;
    uint64_t off;         /* next byte to read */
    uint64_t lineno;      /* complete lines consumed */
    bool lineno_known;    /* false after a skip */
    uint64_t line_start;  /* byte offset of the line being assembled */
    bool drop_to_newline; /* after a skip or an overlong line: discard up to '\n' */
    char *part;           /* unfinished line */
    size_t npart, cappart;
    unsigned char sig[LOGTAIL_SIG];
    size_t nsig;
    /* Counters, for tests and the plugin's own log lines. */
    uint64_t rotations, truncations, skipped_bytes;
    /* Per poll: malformed lines and the first error. */
    uint64_t nbad;
    fr_error first;
} logtail;

static inline void logtail_init(logtail *lt, const char *path, uint64_t max_read, bool keep_open)
{
    memset(lt, 0, sizeof(*lt));
    lt->path = path;
    lt->max_read = max_read > 0 ? max_read : (uint64_t)4 << 20;
    lt->keep_open = keep_open;
    lt->fd = -1;
    lt->lineno_known = true;
}

static inline void logtail_reset_position(logtail *lt)
{
    lt->off = 0;
    lt->lineno = 0;
    lt->lineno_known = true;
    lt->line_start = 0;
    lt->drop_to_newline = false;
    lt->npart = 0;
    lt->nsig = 0;
}

static inline void logtail_close(logtail *lt)
{
    if (lt->fd >= 0) {
        close(lt->fd);
    }
    lt->fd = -1;
    free(lt->part);
    lt->part = NULL;
    lt->npart = lt->cappart = 0;
}

static inline void logtail_where(const logtail *lt, char *buf, size_t cap)
{
    if (lt->lineno_known) {
        snprintf(buf, cap, "%s:%" PRIu64, lt->path, lt->lineno);
    } else {
        snprintf(buf, cap, "%s@byte %" PRIu64, lt->path, lt->line_start);
    }
}

static inline void logtail_fail(logtail *lt, const fr_error *e)
{
    if (lt->nbad++ == 0) {
        lt->first = *e;
    }
}

static inline void logtail_emit(logtail *lt, char *line, size_t len, logtail_line_fn fn, void *arg)
{
    char where[160];
    lt->lineno++;
    if (len > 0 && line[len - 1] == '\r') {
        line[--len] = '\0';
    }
    logtail_where(lt, where, sizeof(where));
    fr_error e;
    fr_error_clear(&e);
    if (fn(arg, line, len, where, &e) != 0) {
        if (e.code == 0) {
            fr_error_set(&e, FR_EINVAL, where, "%s: malformed line", where);
        }
        logtail_fail(lt, &e);
    }
}

static inline void logtail_overlong(logtail *lt)
{
    char where[160];
    fr_error e;
    lt->lineno++;
    logtail_where(lt, where, sizeof(where));
    fr_error_set(&e, FR_ETOOBIG, where, "%s: line longer than %d bytes skipped", where,
                 LOGTAIL_MAX_LINE);
    logtail_fail(lt, &e);
}

/* Appends to the unfinished line; false when it grows past LOGTAIL_MAX_LINE
 * (or memory runs out), after which the caller discards the line. */
static inline bool logtail_part_add(logtail *lt, const char *p, size_t n)
{
    if (lt->npart + n + 1 > LOGTAIL_MAX_LINE + 1) {
        return false;
    }
    if (lt->npart + n + 1 > lt->cappart) {
        size_t cap = lt->cappart ? lt->cappart : 256;
        while (cap < lt->npart + n + 1) {
            cap *= 2;
        }
        char *np = realloc(lt->part, cap);
        if (np == NULL) {
            return false;
        }
        lt->part = np;
        lt->cappart = cap;
    }
    memcpy(lt->part + lt->npart, p, n);
    lt->npart += n;
    lt->part[lt->npart] = '\0';
    return true;
}

/* Splits n bytes read at lt->off (in buf, which has room for one more byte)
 * into lines. */
static inline void logtail_feed(logtail *lt, char *buf, size_t n, logtail_line_fn fn, void *arg)
{
    char *p = buf, *end = buf + n;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t seg = (size_t)((nl != NULL ? nl : end) - p);
        uint64_t seg_off = lt->off + (uint64_t)(p - buf);
        if (lt->drop_to_newline) {
            if (nl == NULL) {
                break;
            }
            lt->drop_to_newline = false;
            lt->line_start = seg_off + seg + 1;
            p = nl + 1;
            continue;
        }
        if (lt->npart == 0) {
            lt->line_start = seg_off;
        }
        if (nl == NULL) {
            if (!logtail_part_add(lt, p, seg)) {
                logtail_overlong(lt);
                lt->npart = 0;
                lt->drop_to_newline = true;
            }
            break;
        }
        if (lt->npart == 0) {
            if (seg > LOGTAIL_MAX_LINE) {
                logtail_overlong(lt);
            } else {
                *nl = '\0';
                logtail_emit(lt, p, seg, fn, arg);
            }
        } else if (logtail_part_add(lt, p, seg)) {
            logtail_emit(lt, lt->part, lt->npart, fn, arg);
            lt->npart = 0;
        } else {
            logtail_overlong(lt);
            lt->npart = 0;
        }
        lt->line_start = seg_off + seg + 1;
        p = nl + 1;
    }
    lt->off += n;
}

/* Reads [lt->off, limit) from the open descriptor. */
static inline int logtail_read_to(logtail *lt, uint64_t limit, char *scratch, size_t cap,
                                  logtail_line_fn fn, void *arg, fr_error *err)
{
    while (lt->off < limit) {
        size_t want = cap - 1;
        if (limit - lt->off < want) {
            want = (size_t)(limit - lt->off);
        }
        ssize_t got = pread(lt->fd, scratch, want, (off_t)lt->off);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fr_error_set(err, FR_EIO, lt->path, "%s: read: %s", lt->path, strerror(errno));
        }
        if (got == 0) {
            break; /* shrank while we read: the next poll sees the truncation */
        }
        logtail_feed(lt, scratch, (size_t)got, fn, arg);
    }
    return 0;
}

/* The writer has moved on from the file behind lt->fd: read what is left
 * of it, and take an unfinished last line as complete. */
static inline void logtail_drain(logtail *lt, char *scratch, size_t cap, logtail_line_fn fn,
                                 void *arg)
{
    struct stat st;
    fr_error e;
    fr_error_clear(&e);
    if (fstat(lt->fd, &st) == 0 && (uint64_t)st.st_size > lt->off) {
        uint64_t limit = (uint64_t)st.st_size;
        if (limit - lt->off > lt->max_read) {
            lt->skipped_bytes += limit - lt->off - lt->max_read;
            lt->off = limit - lt->max_read;
            lt->npart = 0;
            lt->drop_to_newline = true;
            lt->lineno_known = false;
        }
        if (logtail_read_to(lt, limit, scratch, cap, fn, arg, &e) != 0) {
            logtail_fail(lt, &e);
        }
    }
    if (lt->npart > 0 && !lt->drop_to_newline) {
        logtail_emit(lt, lt->part, lt->npart, fn, arg);
    }
    lt->npart = 0;
}

/* Compares the file's first bytes with those seen before; refreshes them.
 * False when the file was rewritten in place. */
static inline bool logtail_same_head(logtail *lt, uint64_t size)
{
    unsigned char head[LOGTAIL_SIG];
    size_t want = size < LOGTAIL_SIG ? (size_t)size : LOGTAIL_SIG;
    ssize_t got = pread(lt->fd, head, want, 0);
    if (got < 0) {
        return true; /* cannot tell: keep reading where we were */
    }
    size_t cmp = lt->nsig < (size_t)got ? lt->nsig : (size_t)got;
    if ((size_t)got < lt->nsig || memcmp(head, lt->sig, cmp) != 0) {
        return false;
    }
    memcpy(lt->sig, head, (size_t)got);
    lt->nsig = (size_t)got;
    return true;
}

/* Reads what was appended since the last poll, calling fn for each new
 * complete line. scratch is a caller-owned buffer of cap bytes (at least
 * 2; LOGTAIL_CHUNK is a good size) that may be shared by many logtails.
 * Returns 0; FR_ENOTFOUND or FR_EIO (err names the file) when the file
 * cannot be opened or read; or, when lines were malformed, the first line's
 * error (with how many more there were) after every line has been read. */
static inline int logtail_poll(logtail *lt, char *scratch, size_t cap, logtail_line_fn fn,
                               void *arg, fr_error *err)
{
    struct stat st;
    lt->nbad = 0;
    fr_error_clear(&lt->first);

    if (stat(lt->path, &st) != 0) {
        int e = errno;
        if (lt->fd >= 0) {
            logtail_drain(lt, scratch, cap, fn, arg);
            close(lt->fd);
            lt->fd = -1;
            lt->rotations++;
        }
        lt->known = false;
        logtail_reset_position(lt);
        return fr_error_set(err, e == ENOENT ? FR_ENOTFOUND : FR_EIO, lt->path, "%s: %s", lt->path,
                            strerror(e));
    }
    if (lt->fd >= 0 && (st.st_dev != lt->dev || st.st_ino != lt->ino)) {
        logtail_drain(lt, scratch, cap, fn, arg);
        close(lt->fd);
        lt->fd = -1;
        lt->known = false;
        lt->rotations++;
    }
    if (lt->fd < 0) {
        lt->fd = open(lt->path, O_RDONLY | O_CLOEXEC);
        if (lt->fd < 0) {
            int e = errno;
            return fr_error_set(err, e == ENOENT ? FR_ENOTFOUND : FR_EIO, lt->path, "%s: %s",
                                lt->path, strerror(e));
        }
    }
    if (fstat(lt->fd, &st) != 0) {
        int e = errno;
        logtail_close(lt);
        return fr_error_set(err, FR_EIO, lt->path, "%s: %s", lt->path, strerror(e));
    }
    uint64_t size = (uint64_t)st.st_size;
    if (lt->known && (st.st_dev != lt->dev || st.st_ino != lt->ino)) {
        /* Replaced between two polls that each opened it afresh. */
        lt->rotations++;
        lt->known = false;
    }
    if (!lt->known) {
        logtail_reset_position(lt);
        lt->dev = st.st_dev;
        lt->ino = st.st_ino;
        lt->known = true;
    } else if (size < lt->off || !logtail_same_head(lt, size)) {
        lt->truncations++;
        logtail_reset_position(lt);
    }
    if (lt->nsig == 0) {
        (void)logtail_same_head(lt, size);
    }
    if (size - lt->off > lt->max_read) {
        lt->skipped_bytes += size - lt->off - lt->max_read;
        lt->off = size - lt->max_read;
        lt->npart = 0;
        lt->drop_to_newline = true;
        lt->lineno_known = false;
        lt->line_start = lt->off;
    }
    int rv = logtail_read_to(lt, size, scratch, cap, fn, arg, err);
    if (!lt->keep_open) {
        close(lt->fd);
        lt->fd = -1;
    }
    if (rv != 0) {
        return rv;
    }
    if (lt->nbad > 0) {
        *err = lt->first;
        if (lt->nbad > 1) {
            size_t used = strlen(err->message);
            snprintf(err->message + used, sizeof(err->message) - used,
                     " (and %" PRIu64 " more malformed lines)", lt->nbad - 1);
        }
        return err->code != 0 ? err->code : FR_EINVAL;
    }
    return 0;
}

#endif
