/* The publisher's spool: see spool.h; the on-disk format is in docs/spool.md.
 *
 * Two locks: append_mu serialises appends (and owns the active segment's
 * descriptor), mu guards everything readers share (the segment list, the
 * head, the cursors, the counters). Appends write outside mu, so readers
 * only wait for an append while it publishes the new head. Lock order:
 * append_mu, then mu.
 *
 * Readers and spool_scan walk the segments through a scanner: one buffer
 * filled with large pread()s, records parsed in place, so a reader makes a
 * syscall per buffer, not per record. */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fresco/clock.h"
#include "fresco/log.h"
#include "fresco/path.h"

#define SPOOL_MAGIC     0x31505346u /* "FSP1" as bytes on disk */
#define SPOOL_VERSION   1
#define SPOOL_HDR       28
#define SPOOL_ALIGN     8
#define SPOOL_KEY_MAX   1024u
#define SPOOL_DATA_MAX  (1u << 30)
#define SPOOL_NAME_MAX  200
#define SPOOL_CHUNK     (256u * 1024u) /* a scanner's usual buffer and read size */
#define SPOOL_KEEP_MAX  (4u << 20)     /* a bigger buffer shrinks back after use */
#define SPOOL_DAMAGE    64             /* damaged stretches remembered (not logged twice) */
#define SPOOL_SEG_DEF   (64ll << 20)
#define SPOOL_CURSOR_MS 200
#define MOD             "spool"

/* ---- CRC-32C ---------------------------------------------------------- */

static uint32_t crc_table[8][256];
static bool crc_use_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        }
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) {
            uint32_t c = crc_table[t - 1][i];
            crc_table[t][i] = (c >> 8) ^ crc_table[0][c & 0xff];
        }
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc_use_hw = __builtin_cpu_supports("sse4.2");
#endif
}

/* Slicing-by-8 on the running (inverted) crc. */
static uint32_t crc_run_sw(uint32_t c, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        lo = __builtin_bswap32(lo);
        hi = __builtin_bswap32(hi);
#endif
        lo ^= c;
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xff] ^
            crc_table[2][(hi >> 8) & 0xff] ^ crc_table[1][(hi >> 16) & 0xff] ^
            crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n-- > 0) {
        c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xff];
    }
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_run_hw(uint32_t c, const uint8_t *p, size_t n)
{
    uint64_t c64 = c;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c64 = __builtin_ia32_crc32di(c64, v);
        p += 8;
        n -= 8;
    }
    c = (uint32_t)c64;
    while (n-- > 0) {
        c = __builtin_ia32_crc32qi(c, *p++);
    }
    return c;
}
#endif

uint32_t spool_crc32c_sw(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    return ~crc_run_sw(~crc, p, n);
}

uint32_t spool_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
    if (crc_use_hw) {
        return ~crc_run_hw(~crc, p, n);
    }
#endif
    return ~crc_run_sw(~crc, p, n);
}

/* ---- record header ---------------------------------------------------- */

typedef struct rec_hdr {
    uint32_t key_len, data_len, data_crc;
    uint64_t pos;
    uint64_t total; /* header, key, data and padding */
} rec_hdr;

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static uint64_t rec_total(uint64_t key_len, uint64_t data_len)
{
    return (SPOOL_HDR + key_len + data_len + SPOOL_ALIGN - 1) & ~(uint64_t)(SPOOL_ALIGN - 1);
}

static void hdr_encode(uint8_t *h, uint32_t key_len, uint32_t data_len, uint64_t pos,
                       uint32_t data_crc)
{
    put32(h, SPOOL_MAGIC);
    h[4] = SPOOL_VERSION;
    h[5] = 0;
    h[6] = (uint8_t)key_len;
    h[7] = (uint8_t)(key_len >> 8);
    put32(h + 8, data_len);
    put64(h + 12, pos);
    put32(h + 20, data_crc);
    put32(h + 24, spool_crc32c(0, h, 24));
}

enum { HDR_OK, HDR_BAD, HDR_PAST_END };

/* A header is good when its own checksum holds and it names the position
 * it sits at; HDR_PAST_END when such a record does not fit below limit. */
static int hdr_check(const uint8_t *h, uint64_t pos, uint64_t limit, rec_hdr *out)
{
    if (get32(h) != SPOOL_MAGIC || h[4] != SPOOL_VERSION || h[5] != 0 ||
        get32(h + 24) != spool_crc32c(0, h, 24)) {
        return HDR_BAD;
    }
    out->key_len = (uint32_t)h[6] | (uint32_t)h[7] << 8;
    out->data_len = get32(h + 8);
    out->pos = get64(h + 12);
    out->data_crc = get32(h + 20);
    if (out->key_len > SPOOL_KEY_MAX || out->data_len > SPOOL_DATA_MAX || out->pos != pos) {
        return HDR_BAD;
    }
    out->total = rec_total(out->key_len, out->data_len);
    return pos + out->total <= limit ? HDR_OK : HDR_PAST_END;
}

static bool hdr_decode(const uint8_t *h, uint64_t pos, uint64_t limit, rec_hdr *out)
{
    return hdr_check(h, pos, limit, out) == HDR_OK;
}

/* ---- the spool -------------------------------------------------------- */

typedef struct seg {
    uint64_t base; /* position of its first byte */
    uint64_t size; /* bytes of it that belong to the spool */
} seg;

typedef struct cursor_ent {
    char name[SPOOL_NAME_MAX + 1];
    uint64_t confirmed;
    spool_reader *open; /* NULL while closed */
} cursor_ent;

typedef struct damage {
    uint64_t start, end;
} damage;

struct spool {
    char *dir;
    char *cursor_dir;
    int64_t max_bytes; /* 0: no limit */
    int64_t segment_bytes;
    int64_t cursor_ms;
    bool fsync;
    int lock_fd;

    pthread_mutex_t append_mu;
    int fd; /* the active (last) segment, O_APPEND; under append_mu */

    pthread_mutex_t mu;
    pthread_cond_t cond; /* broadcast on each append and wake */
    seg *segs;
    size_t nsegs, capsegs;
    uint64_t head;
    uint64_t bytes;
    cursor_ent **curs;
    size_t ncurs, capcurs;
    damage dmg[SPOOL_DAMAGE];
    size_t ndmg;
    spool_stats st;
};

typedef struct scanner {
    int fd;            /* the segment being read, or -1 */
    uint64_t seg_base; /* its base */
    uint8_t *buf;
    size_t cap;
    uint64_t buf_pos; /* position of buf[0] */
    size_t len;       /* bytes valid in buf */
    char key[SPOOL_KEY_MAX + 1];
} scanner;

struct spool_reader {
    spool *s;
    cursor_ent *ent;
    uint64_t pos;       /* read position */
    uint64_t confirmed; /* as ent->confirmed, without the lock */
    uint64_t written;   /* what the cursor file says */
    int64_t written_ms;
    _Atomic bool woken; /* set under s->mu, so a waiting read sees it */
    scanner sc;
};

static void seg_path(const spool *s, uint64_t base, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/seg-%016" PRIx64 ".fsp", s->dir, base);
}

static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > SPOOL_NAME_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Reads exactly n bytes at off unless the file ends first: the count read,
 * or -1. */
static ssize_t pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* ---- scanner ---------------------------------------------------------- */

static void sc_init(scanner *sc)
{
    memset(sc, 0, sizeof(*sc));
    sc->fd = -1;
}

static void sc_drop(scanner *sc)
{
    if (sc->fd >= 0) {
        close(sc->fd);
    }
    sc->fd = -1;
    sc->len = 0;
}

static void sc_free(scanner *sc)
{
    sc_drop(sc);
    free(sc->buf);
    sc->buf = NULL;
    sc->cap = 0;
}

/* Makes buf hold [pos, pos + need) of the segment sc->fd reads (base
 * sc->seg_base), reading ahead up to limit. 0; FR_ETRUNC when the file
 * ends first; FR_ENOMEM; FR_EIO. */
static int sc_ensure(scanner *sc, uint64_t pos, size_t need, uint64_t limit)
{
    if (pos >= sc->buf_pos && pos + need <= sc->buf_pos + sc->len) {
        return 0;
    }
    if (pos >= sc->buf_pos && pos <= sc->buf_pos + sc->len) {
        size_t skip = (size_t)(pos - sc->buf_pos);
        if (skip > 0) {
            memmove(sc->buf, sc->buf + skip, sc->len - skip);
            sc->len -= skip;
        }
    } else {
        sc->len = 0;
    }
    sc->buf_pos = pos;
    size_t want_cap = need > SPOOL_CHUNK ? need : SPOOL_CHUNK;
    if (want_cap < sc->len) {
        want_cap = sc->len; /* never shrink below what it holds */
    }
    if (sc->cap < want_cap || (sc->cap > SPOOL_KEEP_MAX && want_cap < sc->cap / 2)) {
        uint8_t *nb = realloc(sc->buf, want_cap);
        if (nb == NULL) {
            return FR_ENOMEM;
        }
        sc->buf = nb;
        sc->cap = want_cap;
    }
    while (sc->len < need) {
        uint64_t at = sc->buf_pos + sc->len;
        uint64_t room = sc->cap - sc->len;
        if (limit - at < room) {
            room = limit - at;
        }
        if (room == 0) {
            return FR_ETRUNC;
        }
        ssize_t r = pread(sc->fd, sc->buf + sc->len, (size_t)room, (off_t)(at - sc->seg_base));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return FR_EIO;
        }
        if (r == 0) {
            return FR_ETRUNC;
        }
        sc->len += (size_t)r;
    }
    return 0;
}

/* Looks for the next good header after pos (at SPOOL_ALIGN steps) below
 * limit. 0 with *found; FR_ENOTFOUND; FR_ENOMEM or FR_EIO. */
static int sc_resync(scanner *sc, uint64_t pos, uint64_t limit, uint64_t *found)
{
    for (uint64_t q = pos + SPOOL_ALIGN; q + SPOOL_HDR <= limit; q += SPOOL_ALIGN) {
        int rv = sc_ensure(sc, q, SPOOL_HDR, limit);
        if (rv == FR_ETRUNC) {
            return FR_ENOTFOUND;
        }
        if (rv != 0) {
            return rv;
        }
        const uint8_t *h = sc->buf + (q - sc->buf_pos);
        rec_hdr hd = {0};
        if (get32(h) == SPOOL_MAGIC && hdr_decode(h, q, limit, &hd)) {
            *found = q;
            return 0;
        }
    }
    return FR_ENOTFOUND;
}

/* The record at pos, fully checked. 1 (a good record: *hd, its bytes in
 * buf); 0 (damage from pos: *skip_to is where the next good record may
 * start, *why says what was wrong); FR_ENOMEM or FR_EIO. */
static int sc_record(scanner *sc, uint64_t pos, uint64_t limit, rec_hdr *hd, uint64_t *skip_to,
                     const char **why)
{
    int rv = limit - pos < SPOOL_HDR ? FR_ETRUNC : sc_ensure(sc, pos, SPOOL_HDR, limit);
    if (rv != 0 && rv != FR_ETRUNC) {
        return rv;
    }
    int hc = rv == 0 ? hdr_check(sc->buf + (pos - sc->buf_pos), pos, limit, hd) : HDR_BAD;
    if (hc == HDR_OK) {
        rv = sc_ensure(sc, pos, (size_t)hd->total, limit);
        if (rv == 0) {
            const uint8_t *p = sc->buf + (pos - sc->buf_pos) + SPOOL_HDR;
            if (spool_crc32c(0, p, hd->key_len + (size_t)hd->data_len) == hd->data_crc) {
                return 1;
            }
            *why = "checksum mismatch";
            *skip_to = pos + hd->total;
            return 0;
        }
        if (rv != FR_ETRUNC) {
            return rv;
        }
        *why = "the segment ends inside the record";
    } else if (hc == HDR_PAST_END) {
        *why = "the segment ends inside the record";
    } else {
        *why = rv == FR_ETRUNC ? "the segment ends inside a record header" : "bad record header";
    }
    rv = sc_resync(sc, pos, limit, skip_to);
    if (rv == FR_ENOTFOUND) {
        *skip_to = limit;
        return 0;
    }
    return rv < 0 ? rv : 0;
}

/* ---- damage ----------------------------------------------------------- */

/* Logs and counts damage [start, end) in the segment at base once, however
 * many readers come across it. Called with s->mu held. */
static void damage_report_locked(spool *s, uint64_t base, uint64_t start, uint64_t end,
                                 const char *why)
{
    for (size_t i = 0; i < s->ndmg; i++) {
        if (start >= s->dmg[i].start && start < s->dmg[i].end) {
            return;
        }
    }
    if (s->ndmg == SPOOL_DAMAGE) {
        memmove(s->dmg, s->dmg + 1, (SPOOL_DAMAGE - 1) * sizeof(s->dmg[0]));
        s->ndmg--;
    }
    s->dmg[s->ndmg++] = (damage){start, end};
    s->st.corrupt_records++;
    s->st.corrupt_bytes += end - start;
    char path[PATH_MAX];
    seg_path(s, base, path, sizeof(path));
    fr_warn(MOD, "%s: damaged data at offset %" PRIu64 ": %s; skipped %" PRIu64 " bytes", path,
            start - base, why, end - start);
}

static void damage_report(spool *s, uint64_t base, uint64_t start, uint64_t end, const char *why)
{
    pthread_mutex_lock(&s->mu);
    damage_report_locked(s, base, start, end, why);
    pthread_mutex_unlock(&s->mu);
}

/* ---- walking records -------------------------------------------------- */

/* The next good record at or after *pos: 1 with rec filled (*pos not
 * moved); 0 when *pos has reached the head; FR_ENOMEM, FR_EIO. Damage on
 * the way is reported and stepped over (*pos moves past it). */
static int walk_next(spool *s, scanner *sc, uint64_t *pos, spool_record *rec)
{
    for (;;) {
        pthread_mutex_lock(&s->mu);
        if (s->nsegs == 0 || *pos >= s->head) {
            pthread_mutex_unlock(&s->mu);
            return 0;
        }
        if (*pos < s->segs[0].base) {
            *pos = s->segs[0].base;
        }
        size_t lo = 0, hi = s->nsegs; /* the last segment with base <= *pos */
        while (hi - lo > 1) {
            size_t mid = (lo + hi) / 2;
            if (s->segs[mid].base <= *pos) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        seg g = s->segs[lo];
        uint64_t limit = g.base + g.size;
        bool is_last = lo + 1 == s->nsegs;
        uint64_t next = is_last ? s->head : s->segs[lo + 1].base;
        if (*pos >= limit) {
            /* past what this segment holds: the next one goes on from its
             * base; anything between is missing */
            if (*pos < next) {
                damage_report_locked(s, g.base, *pos, next, "the segment is shorter than it was");
            }
            *pos = next;
            pthread_mutex_unlock(&s->mu);
            continue;
        }
        if (sc->fd < 0 || sc->seg_base != g.base) {
            sc_drop(sc);
            char path[PATH_MAX];
            seg_path(s, g.base, path, sizeof(path));
            /* under mu, so the file is not deleted before it is open */
            sc->fd = open(path, O_RDONLY | O_CLOEXEC);
            if (sc->fd < 0) {
                int e = errno;
                pthread_mutex_unlock(&s->mu);
                fr_error(MOD, "%s: cannot open: %s", path, strerror(e));
                return FR_EIO;
            }
            sc->seg_base = g.base;
        }
        pthread_mutex_unlock(&s->mu);

        rec_hdr hd = {0};
        uint64_t skip_to = limit;
        const char *why = "";
        int rv = sc_record(sc, *pos, limit, &hd, &skip_to, &why);
        if (rv < 0) {
            return rv;
        }
        if (rv == 0) {
            if (skip_to >= limit && !is_last) {
                skip_to = next; /* one stretch up to where the next segment begins */
            }
            damage_report(s, g.base, *pos, skip_to, why);
            *pos = skip_to;
            continue;
        }
        const uint8_t *p = sc->buf + (*pos - sc->buf_pos) + SPOOL_HDR;
        memcpy(sc->key, p, hd.key_len);
        sc->key[hd.key_len] = '\0';
        rec->key = sc->key;
        rec->data = p + hd.key_len;
        rec->len = hd.data_len;
        rec->pos = *pos;
        rec->end = *pos + hd.total;
        return 1;
    }
}

/* ---- segments --------------------------------------------------------- */

static int segs_push(spool *s, uint64_t base, uint64_t size)
{
    if (s->nsegs == s->capsegs) {
        size_t nc = s->capsegs ? s->capsegs * 2 : 16;
        seg *ns = realloc(s->segs, nc * sizeof(*ns));
        if (ns == NULL) {
            return FR_ENOMEM;
        }
        s->segs = ns;
        s->capsegs = nc;
    }
    s->segs[s->nsegs++] = (seg){base, size};
    return 0;
}

static int seg_cmp(const void *a, const void *b)
{
    const seg *x = a, *y = b;
    return x->base < y->base ? -1 : x->base > y->base;
}

/* Creates the segment file for base and makes it the active one (the old
 * descriptor is closed). Called with append_mu held, not mu. */
static int seg_create(spool *s, uint64_t base)
{
    char path[PATH_MAX];
    seg_path(s, base, path, sizeof(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        fr_error(MOD, "%s: cannot create: %s", path, strerror(errno));
        return FR_EIO;
    }
    if (s->fsync) {
        fsync_dir(s->dir);
    }
    if (s->fd >= 0) {
        if (s->fsync) {
            fdatasync(s->fd);
        }
        close(s->fd);
    }
    s->fd = fd;
    return 0;
}

/* The lowest confirmed position over every cursor. With no cursor at all
 * nothing is let go: the records wait for a reader. Called with mu held. */
static uint64_t min_confirmed_locked(const spool *s)
{
    if (s->ncurs == 0) {
        return s->segs[0].base;
    }
    uint64_t m = s->head;
    for (size_t i = 0; i < s->ncurs; i++) {
        if (s->curs[i]->confirmed < m) {
            m = s->curs[i]->confirmed;
        }
    }
    return m;
}

/* Deletes the segments (all but the active one) that every cursor is done
 * with. Called with mu held. */
static void collect_locked(spool *s)
{
    uint64_t m = min_confirmed_locked(s);
    size_t k = 0;
    while (k + 1 < s->nsegs && s->segs[k + 1].base <= m) {
        char path[PATH_MAX];
        seg_path(s, s->segs[k].base, path, sizeof(path));
        if (unlink(path) != 0 && errno != ENOENT) {
            fr_warn(MOD, "%s: cannot delete: %s", path, strerror(errno));
            break;
        }
        s->bytes -= s->segs[k].size;
        k++;
    }
    if (k == 0) {
        return;
    }
    memmove(s->segs, s->segs + k, (s->nsegs - k) * sizeof(s->segs[0]));
    s->nsegs -= k;
    uint64_t tail = s->segs[0].base;
    size_t j = 0;
    for (size_t i = 0; i < s->ndmg; i++) {
        if (s->dmg[i].end > tail) {
            s->dmg[j++] = s->dmg[i];
        }
    }
    s->ndmg = j;
}

/* ---- cursors ---------------------------------------------------------- */

#define CURSOR_TAG "fresco-spool-cursor v1"

static int cursor_write(spool *s, const char *name, uint64_t pos)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8], line[96];
    snprintf(path, sizeof(path), "%s/%s", s->cursor_dir, name);
    snprintf(tmp, sizeof(tmp), "%s~", path);
    int n = snprintf(line, sizeof(line), CURSOR_TAG " %" PRIu64, pos);
    uint32_t crc = spool_crc32c(0, line, (size_t)n);
    n += snprintf(line + n, sizeof(line) - (size_t)n, " %08" PRIx32 "\n", crc);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fr_error(MOD, "%s: cannot write the cursor: %s", tmp, strerror(errno));
        return FR_EIO;
    }
    bool ok = write(fd, line, (size_t)n) == n && (!s->fsync || fdatasync(fd) == 0);
    int e = errno;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        e = ok ? errno : e;
        unlink(tmp);
        fr_error(MOD, "%s: cannot write the cursor: %s", path, strerror(e));
        return FR_EIO;
    }
    return 0;
}

/* Reads a cursor file: 0 with *pos, or FR_EINVAL when it is damaged. */
static int cursor_read(const char *path, uint64_t *pos)
{
    char line[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return FR_EIO;
    }
    ssize_t n = pread_full(fd, line, sizeof(line) - 1, 0);
    close(fd);
    if (n <= 0) {
        return FR_EINVAL;
    }
    line[n] = '\0';
    size_t tag = strlen(CURSOR_TAG);
    if (strncmp(line, CURSOR_TAG " ", tag + 1) != 0) {
        return FR_EINVAL;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(line + tag + 1, &end, 10);
    if (errno != 0 || end == line + tag + 1 || *end != ' ') {
        return FR_EINVAL;
    }
    size_t body = (size_t)(end - line);
    char *cend;
    unsigned long crc = strtoul(end + 1, &cend, 16);
    if (cend != end + 9 || *cend != '\n' || crc != spool_crc32c(0, line, body)) {
        return FR_EINVAL;
    }
    *pos = v;
    return 0;
}

static cursor_ent *cursor_find_locked(spool *s, const char *name, size_t *idx)
{
    for (size_t i = 0; i < s->ncurs; i++) {
        if (strcmp(s->curs[i]->name, name) == 0) {
            if (idx != NULL) {
                *idx = i;
            }
            return s->curs[i];
        }
    }
    return NULL;
}

static cursor_ent *cursor_add_locked(spool *s, const char *name, uint64_t pos)
{
    if (s->ncurs == s->capcurs) {
        size_t nc = s->capcurs ? s->capcurs * 2 : 8;
        cursor_ent **n = realloc(s->curs, nc * sizeof(*n));
        if (n == NULL) {
            return NULL;
        }
        s->curs = n;
        s->capcurs = nc;
    }
    cursor_ent *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL;
    }
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->confirmed = pos;
    s->curs[s->ncurs++] = e;
    return e;
}

/* ---- open ------------------------------------------------------------- */

/* Finds where the last segment's good records end, so a torn write (a
 * crash in the middle of an append) is cut off. Damage followed by good
 * records is left for the readers to report. */
static int last_segment_end(spool *s, int fd, uint64_t base, uint64_t fsize, uint64_t *end)
{
    scanner sc;
    sc_init(&sc);
    sc.fd = fd;
    sc.seg_base = base;
    sc.buf_pos = base;
    uint64_t limit = base + fsize, pos = base, last = UINT64_MAX;
    int rv = 0;
    rec_hdr hd = {0}, last_hd = {0};
    while (pos < limit) {
        rv = limit - pos < SPOOL_HDR ? FR_ETRUNC : sc_ensure(&sc, pos, SPOOL_HDR, limit);
        if (rv != 0 && rv != FR_ETRUNC) {
            break;
        }
        if (rv == 0 && hdr_decode(sc.buf + (pos - sc.buf_pos), pos, limit, &hd)) {
            last = pos;
            last_hd = hd;
            pos += hd.total;
            continue;
        }
        uint64_t q;
        rv = sc_resync(&sc, pos, limit, &q);
        if (rv == FR_ENOTFOUND) {
            rv = 0;
            break;
        }
        if (rv != 0) {
            break;
        }
        pos = q;
    }
    if (rv == FR_ETRUNC) {
        rv = 0;
    }
    /* the last record's bytes may not all have reached the file */
    if (rv == 0 && last != UINT64_MAX && last + last_hd.total == pos) {
        rv = sc_ensure(&sc, last, (size_t)last_hd.total, limit);
        if (rv == 0) {
            const uint8_t *p = sc.buf + (last - sc.buf_pos) + SPOOL_HDR;
            if (spool_crc32c(0, p, last_hd.key_len + (size_t)last_hd.data_len) !=
                last_hd.data_crc) {
                pos = last;
            }
        }
    }
    sc.fd = -1;
    sc_free(&sc);
    *end = pos;
    return rv;
}

static int load_segments(spool *s, fr_error *err)
{
    DIR *d = opendir(s->dir);
    if (d == NULL) {
        return fr_error_set(err, FR_EIO, s->dir, "cannot list the spool directory %s: %s", s->dir,
                            strerror(errno));
    }
    struct dirent *de;
    int rv = 0;
    while (rv == 0 && (de = readdir(d)) != NULL) {
        const char *n = de->d_name;
        if (strlen(n) != 24 || strncmp(n, "seg-", 4) != 0 || strcmp(n + 20, ".fsp") != 0) {
            continue;
        }
        uint64_t base = 0;
        bool hex = true;
        for (int i = 4; i < 20 && hex; i++) {
            char c = n[i];
            int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            hex = v >= 0;
            base = base << 4 | (uint64_t)(v & 0xf);
        }
        if (!hex) {
            continue;
        }
        char path[PATH_MAX];
        seg_path(s, base, path, sizeof(path));
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            continue;
        }
        if (segs_push(s, base, (uint64_t)sb.st_size) != 0) {
            rv = fr_error_set(err, FR_ENOMEM, s->dir, "out of memory");
        }
    }
    closedir(d);
    if (rv != 0) {
        return rv;
    }
    if (s->nsegs > 1) {
        qsort(s->segs, s->nsegs, sizeof(s->segs[0]), seg_cmp);
    }
    /* segments that overlap the next one: what overlaps is not theirs */
    for (size_t i = 0; i + 1 < s->nsegs; i++) {
        seg *g = &s->segs[i];
        if (g->base + g->size > s->segs[i + 1].base) {
            char path[PATH_MAX];
            seg_path(s, g->base, path, sizeof(path));
            fr_warn(MOD, "%s: runs into the next segment; its last %" PRIu64 " bytes are ignored",
                    path, g->base + g->size - s->segs[i + 1].base);
            g->size = s->segs[i + 1].base - g->base;
        }
    }
    /* empty segments before the last hold nothing */
    size_t j = 0;
    for (size_t i = 0; i < s->nsegs; i++) {
        if (s->segs[i].size == 0 && i + 1 < s->nsegs) {
            char path[PATH_MAX];
            seg_path(s, s->segs[i].base, path, sizeof(path));
            unlink(path);
            continue;
        }
        s->segs[j++] = s->segs[i];
    }
    s->nsegs = j;
    for (size_t i = 0; i < s->nsegs; i++) {
        s->bytes += s->segs[i].size;
    }
    return 0;
}

static int load_cursors(spool *s, fr_error *err)
{
    DIR *d = opendir(s->cursor_dir);
    if (d == NULL) {
        return fr_error_set(err, FR_EIO, s->cursor_dir, "cannot list %s: %s", s->cursor_dir,
                            strerror(errno));
    }
    struct dirent *de;
    int rv = 0;
    while (rv == 0 && (de = readdir(d)) != NULL) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s/%s", s->cursor_dir, de->d_name);
        size_t n = strlen(de->d_name);
        if (n > 1 && de->d_name[n - 1] == '~') {
            unlink(path); /* a cursor write cut short */
            continue;
        }
        if (!name_ok(de->d_name)) {
            continue;
        }
        uint64_t pos;
        int crv = cursor_read(path, &pos);
        if (crv == FR_EIO) {
            continue;
        }
        if (crv != 0) {
            fr_warn(MOD, "%s: damaged cursor; the reader starts again from the oldest record",
                    path);
            pos = 0;
        }
        if (cursor_add_locked(s, de->d_name, pos) == NULL) {
            rv = fr_error_set(err, FR_ENOMEM, s->cursor_dir, "out of memory");
        }
    }
    closedir(d);
    return rv;
}

int spool_open(spool **out, const spool_conf *conf, fr_error *err)
{
    fr_error_clear(err);
    *out = NULL;
    if (conf == NULL || conf->dir == NULL || conf->dir[0] == '\0') {
        return fr_error_set(err, FR_EINVAL, "dir", "the spool needs a directory");
    }
    pthread_once(&crc_once, crc_init);
    spool *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return fr_error_set(err, FR_ENOMEM, conf->dir, "out of memory");
    }
    s->fd = -1;
    s->lock_fd = -1;
    s->max_bytes = conf->max_bytes > 0 ? conf->max_bytes : 0;
    s->segment_bytes = conf->segment_bytes > 0 ? conf->segment_bytes : SPOOL_SEG_DEF;
    s->cursor_ms = conf->cursor_interval_ms > 0 ? conf->cursor_interval_ms : SPOOL_CURSOR_MS;
    s->fsync = conf->fsync;
    pthread_mutex_init(&s->append_mu, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);

    int rv = 0;
    char path[PATH_MAX];
    s->dir = strdup(conf->dir);
    if (s->dir == NULL || asprintf(&s->cursor_dir, "%s/cursors", conf->dir) < 0) {
        s->cursor_dir = NULL;
        rv = fr_error_set(err, FR_ENOMEM, conf->dir, "out of memory");
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/rejected", s->dir);
    if (fr_mkdirs(s->dir) != 0 || fr_mkdirs(s->cursor_dir) != 0 || fr_mkdirs(path) != 0) {
        rv = fr_error_set(err, FR_EIO, conf->dir, "cannot use %s as the spool directory: %s",
                          conf->dir, strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof(path), "%s/lock", s->dir);
    s->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd < 0) {
        rv = fr_error_set(err, FR_EIO, path, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        rv = fr_error_set(err, FR_EBUSY, path, "the spool %s is in use by another process",
                          conf->dir);
        goto fail;
    }
    if ((rv = load_segments(s, err)) != 0 || (rv = load_cursors(s, err)) != 0) {
        goto fail;
    }

    uint64_t head = 0;
    if (s->nsegs > 0) {
        seg *last = &s->segs[s->nsegs - 1];
        seg_path(s, last->base, path, sizeof(path));
        int fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
        uint64_t end = 0;
        if (fd < 0 || last_segment_end(s, fd, last->base, last->size, &end) != 0) {
            rv = fr_error_set(err, FR_EIO, path, "cannot read %s: %s", path, strerror(errno));
            if (fd >= 0) {
                close(fd);
            }
            goto fail;
        }
        if (end < last->base + last->size) {
            uint64_t torn = last->base + last->size - end;
            if (ftruncate(fd, (off_t)(end - last->base)) != 0) {
                rv = fr_error_set(err, FR_EIO, path, "cannot cut the torn end off %s: %s", path,
                                  strerror(errno));
                close(fd);
                goto fail;
            }
            fr_warn(MOD,
                    "%s: cut off %" PRIu64
                    " bytes of a record not fully written at offset %" PRIu64,
                    path, torn, end - last->base);
            s->st.torn_bytes += torn;
            s->bytes -= torn;
            last->size = end - last->base;
        }
        s->fd = fd;
        head = end;
    }
    /* positions never go back: a cursor past the last record (data lost
     * with the machine) moves the head on */
    for (size_t i = 0; i < s->ncurs; i++) {
        if (s->curs[i]->confirmed > head) {
            if (s->nsegs > 0) {
                fr_warn(MOD, "%s: cursor %s is past the last record; new records start there",
                        s->dir, s->curs[i]->name);
            }
            head = s->curs[i]->confirmed;
        }
    }
    head = (head + SPOOL_ALIGN - 1) & ~(uint64_t)(SPOOL_ALIGN - 1);
    if (s->nsegs == 0 || head > s->segs[s->nsegs - 1].base + s->segs[s->nsegs - 1].size) {
        if ((rv = seg_create(s, head)) != 0 || (rv = segs_push(s, head, 0)) != 0) {
            fr_error_set(err, rv, s->dir, "cannot create a segment in %s", s->dir);
            goto fail;
        }
    }
    s->head = head;
    for (size_t i = 0; i < s->ncurs; i++) {
        if (s->curs[i]->confirmed < s->segs[0].base) {
            s->curs[i]->confirmed = s->segs[0].base;
        }
    }
    *out = s;
    return 0;
fail:
    spool_close(s);
    return rv;
}

/* ---- append ----------------------------------------------------------- */

static const uint8_t zeros[SPOOL_ALIGN];

bool spool_has_room(spool *s, size_t len)
{
    if (len > SPOOL_DATA_MAX) {
        return false;
    }
    pthread_mutex_lock(&s->mu);
    bool room = s->max_bytes == 0 || s->bytes < (uint64_t)s->max_bytes ||
                (s->segs[s->nsegs - 1].size > 0 &&
                 s->bytes - s->segs[s->nsegs - 1].size < (uint64_t)s->max_bytes &&
                 min_confirmed_locked(s) >= s->head);
    pthread_mutex_unlock(&s->mu);
    return room;
}

int spool_append(spool *s, const char *key, const void *data, size_t len)
{
    size_t klen = key != NULL ? strlen(key) : 0;
    if (klen > SPOOL_KEY_MAX) {
        return FR_EINVAL;
    }
    if (len > SPOOL_DATA_MAX) {
        return FR_ETOOBIG;
    }
    uint64_t total = rec_total(klen, len);
    uint8_t head_buf[SPOOL_HDR + SPOOL_KEY_MAX];
    if (klen > 0) {
        memcpy(head_buf + SPOOL_HDR, key, klen);
    }
    uint32_t crc = spool_crc32c(0, key, klen);
    crc = spool_crc32c(crc, data, len);

    pthread_mutex_lock(&s->append_mu);
    pthread_mutex_lock(&s->mu);
    seg *last = &s->segs[s->nsegs - 1];
    bool roll = last->size > 0 && last->size + total > (uint64_t)s->segment_bytes;
    bool full = s->max_bytes > 0 && s->bytes >= (uint64_t)s->max_bytes;
    if (full && last->size > 0 && min_confirmed_locked(s) >= s->head &&
        s->bytes - last->size < (uint64_t)s->max_bytes) {
        /* everything is confirmed: a new segment lets the active one go */
        roll = true;
        full = false;
    }
    if (full) {
        s->st.full++;
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_unlock(&s->append_mu);
        return FR_EBUSY;
    }
    uint64_t pos = s->head;
    pthread_mutex_unlock(&s->mu);

    int rv = 0;
    if (roll) {
        rv = seg_create(s, pos);
        if (rv == 0) {
            pthread_mutex_lock(&s->mu);
            rv = segs_push(s, pos, 0);
            if (rv == 0) {
                collect_locked(s);
            }
            pthread_mutex_unlock(&s->mu);
        }
        if (rv != 0) {
            pthread_mutex_unlock(&s->append_mu);
            return rv == FR_ENOMEM ? FR_ENOMEM : FR_EIO;
        }
    }

    hdr_encode(head_buf, (uint32_t)klen, (uint32_t)len, pos, crc);
    struct iovec iov[3] = {{head_buf, SPOOL_HDR + klen},
                           {(void *)data, len},
                           {(void *)zeros, (size_t)(total - SPOOL_HDR - klen - len)}};
    int niov = 3;
    struct iovec *v = iov;
    size_t done = 0;
    while (done < total) {
        ssize_t w = writev(s->fd, v, niov);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            rv = FR_EIO;
            break;
        }
        done += (size_t)w;
        while (niov > 0 && (size_t)w >= v->iov_len) {
            w -= (ssize_t)v->iov_len;
            v++;
            niov--;
        }
        if (niov > 0) {
            v->iov_base = (uint8_t *)v->iov_base + w;
            v->iov_len -= (size_t)w;
        }
    }
    if (rv == 0 && s->fsync && fdatasync(s->fd) != 0) {
        rv = FR_EIO;
    }
    if (rv != 0) {
        char path[PATH_MAX];
        seg_path(s, s->segs[s->nsegs - 1].base, path, sizeof(path));
        int e = errno;
        /* take back what part of the record made it, so the segment stays
         * clean for the next append */
        pthread_mutex_lock(&s->mu);
        uint64_t keep = s->head - s->segs[s->nsegs - 1].base;
        pthread_mutex_unlock(&s->mu);
        if (done > 0 && ftruncate(s->fd, (off_t)keep) != 0) {
            fr_error(MOD, "%s: cannot cut off a failed append: %s", path, strerror(errno));
        }
        fr_error(MOD, "%s: append of %" PRIu64 " bytes failed: %s", path, total, strerror(e));
        pthread_mutex_unlock(&s->append_mu);
        return FR_EIO;
    }
    pthread_mutex_lock(&s->mu);
    s->head = pos + total;
    s->segs[s->nsegs - 1].size += total;
    s->bytes += total;
    s->st.records++;
    s->st.appended_bytes += total;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_unlock(&s->append_mu);
    return 0;
}

void spool_stats_get(spool *s, spool_stats *st)
{
    pthread_mutex_lock(&s->mu);
    *st = s->st;
    st->bytes = s->bytes;
    st->segments = s->nsegs;
    st->head = s->head;
    st->tail = s->nsegs > 0 ? s->segs[0].base : s->head;
    pthread_mutex_unlock(&s->mu);
}

int spool_scan(spool *s, int (*fn)(void *arg, const char *key, const void *data, size_t len),
               void *arg)
{
    scanner sc;
    sc_init(&sc);
    uint64_t pos = 0;
    spool_record rec;
    int rv;
    while ((rv = walk_next(s, &sc, &pos, &rec)) == 1) {
        pos = rec.end;
        rv = fn(arg, rec.key, rec.data, rec.len);
        if (rv != 0) {
            break;
        }
    }
    sc_free(&sc);
    return rv;
}

/* ---- readers ---------------------------------------------------------- */

static int reader_flush(spool_reader *r)
{
    if (r->written == r->confirmed) {
        return 0;
    }
    int rv = cursor_write(r->s, r->ent->name, r->confirmed);
    if (rv == 0) {
        r->written = r->confirmed;
        r->written_ms = fr_mono_ms();
    }
    return rv;
}

int spool_reader_open(spool *s, const char *name, spool_reader **out, fr_error *err)
{
    fr_error_clear(err);
    *out = NULL;
    if (name == NULL || !name_ok(name)) {
        return fr_error_set(err, FR_EINVAL, "name",
                            "reader name '%s' must be 1 to %d of [A-Za-z0-9._-]",
                            name != NULL ? name : "", SPOOL_NAME_MAX);
    }
    spool_reader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return fr_error_set(err, FR_ENOMEM, name, "out of memory");
    }
    sc_init(&r->sc);
    r->s = s;
    pthread_mutex_lock(&s->mu);
    cursor_ent *e = cursor_find_locked(s, name, NULL);
    if (e != NULL && e->open != NULL) {
        pthread_mutex_unlock(&s->mu);
        free(r);
        return fr_error_set(err, FR_EEXIST, name, "reader '%s' is open already", name);
    }
    bool fresh = e == NULL;
    if (fresh && (e = cursor_add_locked(s, name, s->head)) == NULL) {
        pthread_mutex_unlock(&s->mu);
        free(r);
        return fr_error_set(err, FR_ENOMEM, name, "out of memory");
    }
    e->open = r;
    r->ent = e;
    r->pos = r->confirmed = e->confirmed;
    pthread_mutex_unlock(&s->mu);
    r->written = fresh ? UINT64_MAX : r->confirmed;
    /* a new reader holds records from now on, across a crash too */
    if (reader_flush(r) != 0) {
        pthread_mutex_lock(&s->mu);
        size_t idx;
        if (cursor_find_locked(s, name, &idx) == e) {
            s->ncurs--;
            s->curs[idx] = s->curs[s->ncurs];
        }
        pthread_mutex_unlock(&s->mu);
        free(e);
        free(r);
        return fr_error_set(err, FR_EIO, name, "cannot write the cursor of reader '%s' in %s", name,
                            s->cursor_dir);
    }
    *out = r;
    return 0;
}

int spool_read(spool_reader *r, spool_record *rec, int timeout_ms)
{
    spool *s = r->s;
    int64_t deadline = timeout_ms > 0 ? fr_mono_ns() + (int64_t)timeout_ms * 1000000 : 0;
    for (;;) {
        if (atomic_exchange(&r->woken, false)) {
            return FR_ECLOSED;
        }
        int rv = walk_next(s, &r->sc, &r->pos, rec);
        if (rv == 1) {
            r->pos = rec->end;
            return 0;
        }
        if (rv < 0) {
            return rv;
        }
        int64_t now = fr_mono_ns();
        if (timeout_ms == 0 || (timeout_ms > 0 && now >= deadline)) {
            return FR_ETIMEDOUT;
        }
        /* idle: the cursor is written when it is due, not before */
        int64_t wake_at = timeout_ms > 0 ? deadline : INT64_MAX;
        if (r->written != r->confirmed) {
            int64_t due = (r->written_ms + s->cursor_ms) * 1000000;
            if (now >= due) {
                reader_flush(r);
            } else if (due < wake_at) {
                wake_at = due;
            }
        }
        pthread_mutex_lock(&s->mu);
        while (s->head <= r->pos && !atomic_load(&r->woken)) {
            if (wake_at == INT64_MAX) {
                pthread_cond_wait(&s->cond, &s->mu);
                continue;
            }
            struct timespec ts = {(time_t)(wake_at / 1000000000), (long)(wake_at % 1000000000)};
            if (pthread_cond_timedwait(&s->cond, &s->mu, &ts) == ETIMEDOUT) {
                break;
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
}

void spool_confirm(spool_reader *r, uint64_t pos)
{
    if (pos > r->pos) {
        pos = r->pos;
    }
    if (pos <= r->confirmed) {
        return;
    }
    r->confirmed = pos;
    spool *s = r->s;
    pthread_mutex_lock(&s->mu);
    r->ent->confirmed = pos;
    collect_locked(s);
    pthread_mutex_unlock(&s->mu);
    if (fr_mono_ms() - r->written_ms >= s->cursor_ms) {
        reader_flush(r);
    }
}

void spool_reader_rewind(spool_reader *r)
{
    r->pos = r->confirmed;
}

uint64_t spool_reader_position(const spool_reader *r)
{
    return r->pos;
}

void spool_reader_wake(spool_reader *r)
{
    pthread_mutex_lock(&r->s->mu);
    atomic_store(&r->woken, true);
    pthread_cond_broadcast(&r->s->cond);
    pthread_mutex_unlock(&r->s->mu);
}

void spool_reader_close(spool_reader *r)
{
    if (r == NULL) {
        return;
    }
    reader_flush(r);
    pthread_mutex_lock(&r->s->mu);
    r->ent->open = NULL;
    pthread_mutex_unlock(&r->s->mu);
    sc_free(&r->sc);
    free(r);
}

int spool_reader_remove(spool *s, const char *name)
{
    if (name == NULL || !name_ok(name)) {
        return FR_ENOTFOUND;
    }
    pthread_mutex_lock(&s->mu);
    size_t idx;
    cursor_ent *e = cursor_find_locked(s, name, &idx);
    if (e == NULL) {
        pthread_mutex_unlock(&s->mu);
        return FR_ENOTFOUND;
    }
    if (e->open != NULL) {
        pthread_mutex_unlock(&s->mu);
        return FR_EBUSY;
    }
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", s->cursor_dir, name);
    if (unlink(path) != 0 && errno != ENOENT) {
        fr_error(MOD, "%s: cannot delete the cursor: %s", path, strerror(errno));
        pthread_mutex_unlock(&s->mu);
        return FR_EIO;
    }
    s->ncurs--;
    s->curs[idx] = s->curs[s->ncurs];
    free(e);
    collect_locked(s);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void spool_close(spool *s)
{
    if (s == NULL) {
        return;
    }
    for (size_t i = 0; i < s->ncurs; i++) {
        if (s->curs[i]->open != NULL) {
            fr_warn(MOD, "%s: reader %s still open at close", s->dir, s->curs[i]->name);
            spool_reader_close(s->curs[i]->open);
        }
        free(s->curs[i]);
    }
    free(s->curs);
    if (s->fd >= 0) {
        if (s->fsync) {
            fdatasync(s->fd);
        }
        close(s->fd);
    }
    if (s->lock_fd >= 0) {
        close(s->lock_fd);
    }
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    pthread_mutex_destroy(&s->append_mu);
    free(s->segs);
    free(s->cursor_dir);
    free(s->dir);
    free(s);
}
