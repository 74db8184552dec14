/* NoCloud seed images: ISO9660 with Rock Ridge and Joliet, and the raw
 * layout OSv reads. The formats are described in seed.h. */
#include "seed.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- checks shared by both formats ------------------------------------ */

#define ALLOWED_NAMES "names are 1..64 bytes of [a-z0-9._-], not \".\" or \"..\""

static int seed_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* The first bytes of a caller's name for a message, non-printable bytes
 * as \xNN, cut with "..." past HPC_SEED_NAME_MAX bytes. */
static void seed_quote(char *out, size_t cap, const char *name, size_t len)
{
    size_t o = 0;
    size_t shown = len > HPC_SEED_NAME_MAX ? HPC_SEED_NAME_MAX : len;
    out[0] = '\0';
    for (size_t i = 0; i < shown && o + 5 < cap; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            out[o++] = (char)c;
        } else {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        }
    }
    if (shown < len && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o < cap ? o : cap - 1] = '\0';
}

#define NO_BAD_BYTE ((size_t)-1)

/* Checks name[0..len): returns NULL when it is a good seed file name,
 * otherwise what is wrong with it; *bad_at is the offending byte's index
 * for a bad character, NO_BAD_BYTE otherwise. */
static const char *seed_name_problem(const char *name, size_t len, size_t *bad_at)
{
    *bad_at = NO_BAD_BYTE;
    if (len == 0) {
        return "is empty";
    }
    if (len > HPC_SEED_NAME_MAX) {
        return "is longer than 64 bytes";
    }
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) {
        return "names a directory";
    }
    for (size_t i = 0; i < len; i++) {
        if (!seed_name_char((unsigned char)name[i])) {
            *bad_at = i;
            return "has a character outside [a-z0-9._-]";
        }
    }
    return NULL;
}

static int seed_check_files(const hpc_seed_file *files, size_t n, fr_error *e)
{
    if (n > HPC_SEED_MAX_FILES) {
        return fr_error_set(e, FR_EINVAL, "n", "a seed holds at most %d files, not %zu",
                            HPC_SEED_MAX_FILES, n);
    }
    if (n > 0 && files == NULL) {
        return fr_error_set(e, FR_EINVAL, "files", "files is NULL but n is %zu", n);
    }
    char where[32];
    char q[HPC_SEED_NAME_MAX * 4 + 8];
    for (size_t i = 0; i < n; i++) {
        const hpc_seed_file *f = &files[i];
        if (f->name == NULL) {
            snprintf(where, sizeof(where), "files[%zu].name", i);
            return fr_error_set(e, FR_EINVAL, where, "files[%zu] has no name; " ALLOWED_NAMES, i);
        }
        size_t len = strnlen(f->name, HPC_SEED_NAME_MAX + 1);
        size_t bad_at;
        const char *problem = seed_name_problem(f->name, len, &bad_at);
        if (problem != NULL) {
            snprintf(where, sizeof(where), "files[%zu].name", i);
            seed_quote(q, sizeof(q), f->name, len);
            if (bad_at != NO_BAD_BYTE) {
                return fr_error_set(e, FR_EINVAL, where,
                                    "file name \"%s\" %s (byte %zu is 0x%02x); " ALLOWED_NAMES, q,
                                    problem, bad_at, (unsigned char)f->name[bad_at]);
            }
            return fr_error_set(e, FR_EINVAL, where, "file name \"%s\" %s; " ALLOWED_NAMES, q,
                                problem);
        }
        if (f->len > HPC_SEED_FILE_MAX) {
            snprintf(where, sizeof(where), "files[%zu].len", i);
            return fr_error_set(e, FR_EINVAL, where,
                                "file \"%s\" is %zu bytes; a seed file is at most %u bytes",
                                f->name, f->len, HPC_SEED_FILE_MAX);
        }
        if (f->len > 0 && f->data == NULL) {
            snprintf(where, sizeof(where), "files[%zu].data", i);
            return fr_error_set(e, FR_EINVAL, where, "file \"%s\" has %zu bytes but no data",
                                f->name, f->len);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(files[j].name, f->name) == 0) {
                snprintf(where, sizeof(where), "files[%zu].name", i);
                return fr_error_set(e, FR_EINVAL, where,
                                    "file name \"%s\" is given twice (files[%zu] and files[%zu])",
                                    f->name, j, i);
            }
        }
    }
    return 0;
}

static int seed_check_path(const char *path, fr_error *e)
{
    if (path == NULL || path[0] == '\0') {
        return fr_error_set(e, FR_EINVAL, "path", "the seed image needs a file path");
    }
    return 0;
}

/* Indices of files[0..n) sorted by name (n <= HPC_SEED_MAX_FILES). */
static void seed_sort_by_name(const hpc_seed_file *files, size_t n, size_t *order)
{
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j > 0 && strcmp(files[order[j - 1]].name, files[i].name) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
}

/* ---- atomic file writing ---------------------------------------------- */

static int seed_write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int seed_write_zeros(int fd, size_t n)
{
    static const uint8_t zeros[2048];
    while (n > 0) {
        size_t k = n < sizeof(zeros) ? n : sizeof(zeros);
        if (seed_write_all(fd, zeros, k) != 0) {
            return -1;
        }
        n -= k;
    }
    return 0;
}

/* Writes the image body into fd; returns 0, or -1 with errno set. */
typedef int (*seed_emit_fn)(int fd, void *ctx);

static int seed_fsync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    if (slash == NULL) {
        dir = strdup(".");
    } else if (slash == path) {
        dir = strdup("/");
    } else {
        dir = strndup(path, (size_t)(slash - path));
    }
    if (dir == NULL) {
        errno = ENOMEM;
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0) {
        return -1;
    }
    int rv = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rv;
}

/* Writes path atomically through path.tmp (see seed.h). */
static int seed_commit(const char *path, seed_emit_fn emit, void *ctx, fr_error *e)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof(".tmp"));
    if (tmp == NULL) {
        return fr_error_set(e, FR_ENOMEM, path, "out of memory");
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", sizeof(".tmp"));

    const char *step;
    const char *what = tmp;
    int rc;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        step = "create";
        goto fail;
    }
    if (emit(fd, ctx) != 0) {
        step = "write";
        goto fail;
    }
    if (fsync(fd) != 0) {
        step = "fsync";
        goto fail;
    }
    rc = close(fd);
    fd = -1;
    if (rc != 0) {
        step = "close";
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        step = "rename";
        goto fail;
    }
    if (seed_fsync_dir(path) != 0) {
        int saved = errno;
        unlink(path);
        errno = saved;
        step = "fsync the directory of";
        what = path;
        goto fail;
    }
    free(tmp);
    return 0;

fail:
    rc = errno;
    if (fd >= 0) {
        close(fd);
    }
    unlink(tmp);
    rc = fr_error_set(e, rc == ENOMEM ? FR_ENOMEM : FR_EIO, path, "cannot %s %s: %s", step, what,
                      strerror(rc));
    free(tmp);
    return rc;
}

/* ---- ISO9660 ---------------------------------------------------------- */

#define ISO_BLOCK        2048u
#define ISO_B_PVD        16u
#define ISO_B_SVD        17u
#define ISO_B_TERM       18u
#define ISO_B_LPATH      19u
#define ISO_B_MPATH      20u
#define ISO_B_JLPATH     21u
#define ISO_B_JMPATH     22u
#define ISO_B_ROOT       23u
#define ISO_PATH_TABLE   10u /* one entry: the root, identifier 0x00 plus padding */
#define ISO_IDENT_STEM   30u /* level 2: name plus extension at most 30 */
#define ISO_IDENT_EXT    8u
#define ISO_IDENT_MAX    (ISO_IDENT_STEM + 3u) /* with '.' and ";1" */
#define ISO_RR_PX_LEN    36u                   /* RRIP 1.10 PX: mode, links, uid, gid */
#define ISO_MODE_FILE    0100444u
#define ISO_MODE_DIR     0040555u
#define ISO_APPLICATION  "FRESCO HPC NOCLOUD SEED"
#define ISO_DATE_17      "1970010100000000" /* plus a zero time-zone byte */
#define ISO_DATE_17_NONE "0000000000000000"

/* The RRIP 1.10 extension identifier and the texts that standard gives for
 * the "ER" entry. */
#define RRIP_ID "RRIP_1991A"
#define RRIP_DES                                                                                   \
    "THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS"
#define RRIP_SRC                                                                                   \
    "PLEASE CONTACT DISC PUBLISHER FOR SPECIFICATION SOURCE.  SEE PUBLISHER IDENTIFIER IN "        \
    "PRIMARY VOLUME DESCRIPTOR FOR CONTACT INFORMATION."
#define RRIP_ER_LEN (8u + sizeof(RRIP_ID) - 1 + sizeof(RRIP_DES) - 1 + sizeof(RRIP_SRC) - 1)

typedef struct iso_entry {
    const hpc_seed_file *f;
    char ident[ISO_IDENT_MAX + 1]; /* primary identifier, "USER_DATA.;1" */
    uint32_t extent;               /* first block of the contents; 0 when empty */
} iso_entry;

typedef struct iso_image {
    const char *label;
    iso_entry ent[HPC_SEED_MAX_FILES];
    size_t n;
    size_t by_ident[HPC_SEED_MAX_FILES]; /* primary directory order */
    size_t by_name[HPC_SEED_MAX_FILES];  /* Joliet directory and data order */
    uint32_t root_extent, root_bytes;
    uint32_t jroot_extent, jroot_bytes;
    uint32_t ce_extent;   /* Rock Ridge continuation area: the "ER" entry */
    uint32_t data_extent; /* first block after the metadata */
    uint32_t total_blocks;
} iso_image;

static void put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ECMA-119 7.2.3 and 7.3.3: little-endian then big-endian. */
static void put_both16(uint8_t *p, uint16_t v)
{
    put_le16(p, v);
    put_be16(p + 2, v);
}

static void put_both32(uint8_t *p, uint32_t v)
{
    put_le32(p, v);
    put_be32(p + 4, v);
}

static uint32_t iso_blocks(size_t bytes)
{
    return (uint32_t)((bytes + ISO_BLOCK - 1) / ISO_BLOCK);
}

static char iso_d_char(char c)
{
    if (c >= 'a' && c <= 'z') {
        return (char)(c - 'a' + 'A');
    }
    if (c >= '0' && c <= '9') {
        return c;
    }
    return '_';
}

/* The primary identifier for name, before clashes are resolved: mapped
 * stem, '.', mapped extension, ";1". suffix >= 0 replaces the stem's tail
 * with "_NN". */
static void iso_make_ident(const char *name, int suffix, char *out)
{
    const char *dot = strrchr(name, '.');
    size_t stem_len = dot != NULL ? (size_t)(dot - name) : strlen(name);
    const char *ext = dot != NULL ? dot + 1 : "";
    size_t ext_len = strlen(ext);
    if (ext_len > ISO_IDENT_EXT) {
        ext_len = ISO_IDENT_EXT;
    }
    size_t stem_max = ISO_IDENT_STEM - ext_len;
    if (suffix >= 0) {
        stem_max -= 3;
    }
    if (stem_len > stem_max) {
        stem_len = stem_max;
    }
    size_t o = 0;
    for (size_t i = 0; i < stem_len; i++) {
        out[o++] = iso_d_char(name[i]);
    }
    if (suffix >= 0) {
        out[o++] = '_';
        out[o++] = (char)('0' + suffix / 10);
        out[o++] = (char)('0' + suffix % 10);
    }
    out[o++] = '.';
    for (size_t i = 0; i < ext_len; i++) {
        out[o++] = iso_d_char(ext[i]);
    }
    out[o++] = ';';
    out[o++] = '1';
    out[o] = '\0';
}

/* ECMA-119 9.3: identifiers ordered by file name, then extension, the
 * shorter one padded with spaces (all versions are 1). */
static int iso_ident_cmp(const char *a, const char *b)
{
    const char *ad = strchr(a, '.');
    const char *bd = strchr(b, '.');
    const char *as[2] = {a, ad + 1};
    const char *bs[2] = {b, bd + 1};
    size_t al[2] = {(size_t)(ad - a), strcspn(ad + 1, ";")};
    size_t bl[2] = {(size_t)(bd - b), strcspn(bd + 1, ";")};
    for (int part = 0; part < 2; part++) {
        size_t len = al[part] > bl[part] ? al[part] : bl[part];
        for (size_t i = 0; i < len; i++) {
            unsigned char ca = i < al[part] ? (unsigned char)as[part][i] : ' ';
            unsigned char cb = i < bl[part] ? (unsigned char)bs[part][i] : ' ';
            if (ca != cb) {
                return ca < cb ? -1 : 1;
            }
        }
    }
    return 0;
}

static void iso_assign_idents(iso_image *im)
{
    for (size_t i = 0; i < im->n; i++) {
        iso_make_ident(im->ent[i].f->name, -1, im->ent[i].ident);
        for (int suffix = 1;; suffix++) {
            int clash = 0;
            for (size_t j = 0; j < i && !clash; j++) {
                clash = strcmp(im->ent[j].ident, im->ent[i].ident) == 0;
            }
            if (!clash || suffix > 99) {
                break; /* 16 files cannot use up 99 suffixes */
            }
            iso_make_ident(im->ent[i].f->name, suffix, im->ent[i].ident);
        }
    }
    for (size_t i = 0; i < im->n; i++) {
        size_t j = i;
        while (j > 0 && iso_ident_cmp(im->ent[im->by_ident[j - 1]].ident, im->ent[i].ident) > 0) {
            im->by_ident[j] = im->by_ident[j - 1];
            j--;
        }
        im->by_ident[j] = i;
    }
}

/* A directory record (ECMA-119 9.1) into out (NULL: only measure).
 * Returns its length. */
static size_t iso_record(uint8_t *out, uint32_t extent, uint32_t size, uint8_t flags,
                         const uint8_t *id, size_t id_len, const uint8_t *su, size_t su_len)
{
    size_t pad = (id_len % 2 == 0) ? 1 : 0;
    size_t len = 33 + id_len + pad + su_len;
    if (out == NULL) {
        return len;
    }
    memset(out, 0, len);
    out[0] = (uint8_t)len;
    out[1] = 0; /* no extended attribute record */
    put_both32(out + 2, extent);
    put_both32(out + 10, size);
    out[18] = 70; /* 1970-01-01 00:00:00 UTC */
    out[19] = 1;
    out[20] = 1;
    out[25] = flags;
    put_both16(out + 28, 1); /* volume sequence number */
    out[32] = (uint8_t)id_len;
    memcpy(out + 33, id, id_len);
    if (su_len > 0) {
        memcpy(out + 33 + id_len + pad, su, su_len);
    }
    return len;
}

static size_t rr_px(uint8_t *p, uint32_t mode, uint32_t links)
{
    p[0] = 'P';
    p[1] = 'X';
    p[2] = ISO_RR_PX_LEN;
    p[3] = 1;
    put_both32(p + 4, mode);
    put_both32(p + 12, links);
    put_both32(p + 20, 0); /* uid */
    put_both32(p + 28, 0); /* gid */
    return ISO_RR_PX_LEN;
}

/* Builds one root directory (primary with Rock Ridge, or Joliet) into out,
 * or only measures it when out is NULL. Returns its size in bytes, a
 * multiple of the block size; records never cross a block boundary. */
static uint32_t iso_build_dir(const iso_image *im, int joliet, uint8_t *out)
{
    uint8_t rec[255];
    uint8_t su[255];
    size_t pos = 0;
    uint32_t self = joliet ? im->jroot_extent : im->root_extent;
    uint32_t self_bytes = joliet ? im->jroot_bytes : im->root_bytes;

    for (size_t k = 0; k < im->n + 2; k++) {
        size_t su_len = 0;
        uint8_t id[2 * HPC_SEED_NAME_MAX];
        size_t id_len;
        uint32_t extent = self;
        uint32_t size = self_bytes;
        uint8_t flags = 0x02; /* directory */
        if (k < 2) {
            id[0] = (uint8_t)k; /* 0x00 is '.', 0x01 is '..' */
            id_len = 1;
            if (!joliet) {
                if (k == 0) {
                    /* SUSP "SP": Rock Ridge starts at offset 0 of each
                     * system use field. */
                    const uint8_t sp[7] = {'S', 'P', 7, 1, 0xbe, 0xef, 0};
                    memcpy(su, sp, sizeof(sp));
                    su_len = sizeof(sp);
                }
                su_len += rr_px(su + su_len, ISO_MODE_DIR, 2);
                if (k == 0) {
                    /* "CE": the "ER" entry is too long for the record. */
                    uint8_t *ce = su + su_len;
                    ce[0] = 'C';
                    ce[1] = 'E';
                    ce[2] = 28;
                    ce[3] = 1;
                    put_both32(ce + 4, im->ce_extent);
                    put_both32(ce + 12, 0);
                    put_both32(ce + 20, RRIP_ER_LEN);
                    su_len += 28;
                }
            }
        } else {
            const iso_entry *ent = &im->ent[joliet ? im->by_name[k - 2] : im->by_ident[k - 2]];
            const char *name = ent->f->name;
            size_t name_len = strlen(name);
            extent = ent->extent;
            size = (uint32_t)ent->f->len;
            flags = 0;
            if (joliet) {
                for (size_t i = 0; i < name_len; i++) {
                    id[2 * i] = 0;
                    id[2 * i + 1] = (uint8_t)name[i];
                }
                id_len = 2 * name_len;
            } else {
                id_len = strlen(ent->ident);
                memcpy(id, ent->ident, id_len);
                su_len = rr_px(su, ISO_MODE_FILE, 1);
                uint8_t *nm = su + su_len;
                nm[0] = 'N';
                nm[1] = 'M';
                nm[2] = (uint8_t)(5 + name_len);
                nm[3] = 1;
                nm[4] = 0;
                memcpy(nm + 5, name, name_len);
                su_len += 5 + name_len;
            }
        }
        size_t len = iso_record(NULL, 0, 0, 0, id, id_len, su, su_len);
        if (pos % ISO_BLOCK + len > ISO_BLOCK) {
            pos += ISO_BLOCK - pos % ISO_BLOCK;
        }
        if (out != NULL) {
            iso_record(rec, extent, size, flags, id, id_len, su, su_len);
            memcpy(out + pos, rec, len);
        }
        pos += len;
    }
    return iso_blocks(pos) * ISO_BLOCK;
}

/* A string field padded with spaces: one byte a character, or UCS-2BE
 * (space 0x0020) for Joliet, an odd last byte left 0. */
static void iso_put_str(uint8_t *p, size_t field, const char *s, int ucs2)
{
    size_t len = strlen(s);
    if (!ucs2) {
        memset(p, ' ', field);
        memcpy(p, s, len < field ? len : field);
        return;
    }
    memset(p, 0, field);
    for (size_t i = 0; i + 1 < field; i += 2) {
        p[i] = 0;
        p[i + 1] = i / 2 < len ? (uint8_t)s[i / 2] : ' ';
    }
}

/* The Primary (joliet = 0) or Joliet Supplementary Volume Descriptor. */
static void iso_volume_descriptor(const iso_image *im, int joliet, uint8_t *b)
{
    memset(b, 0, ISO_BLOCK);
    b[0] = joliet ? 2 : 1;
    memcpy(b + 1, "CD001", 5);
    b[6] = 1;
    iso_put_str(b + 8, 32, "", joliet);         /* system identifier */
    iso_put_str(b + 40, 32, im->label, joliet); /* volume identifier */
    put_both32(b + 80, im->total_blocks);
    if (joliet) {
        memcpy(b + 88, "%/E", 3); /* UCS-2 level 3 */
    }
    put_both16(b + 120, 1); /* volume set size */
    put_both16(b + 124, 1); /* volume sequence number */
    put_both16(b + 128, ISO_BLOCK);
    put_both32(b + 132, ISO_PATH_TABLE);
    put_le32(b + 140, joliet ? ISO_B_JLPATH : ISO_B_LPATH);
    put_be32(b + 148, joliet ? ISO_B_JMPATH : ISO_B_MPATH);
    const uint8_t root_id = 0;
    iso_record(b + 156, joliet ? im->jroot_extent : im->root_extent,
               joliet ? im->jroot_bytes : im->root_bytes, 0x02, &root_id, 1, NULL, 0);
    iso_put_str(b + 190, 128, "", joliet);              /* volume set */
    iso_put_str(b + 318, 128, "", joliet);              /* publisher */
    iso_put_str(b + 446, 128, "", joliet);              /* data preparer */
    iso_put_str(b + 574, 128, ISO_APPLICATION, joliet); /* application */
    iso_put_str(b + 702, 37, "", joliet);               /* copyright file */
    iso_put_str(b + 739, 37, "", joliet);               /* abstract file */
    iso_put_str(b + 776, 37, "", joliet);               /* bibliographic file */
    memcpy(b + 813, ISO_DATE_17, 16);                   /* creation */
    memcpy(b + 830, ISO_DATE_17, 16);                   /* modification */
    memcpy(b + 847, ISO_DATE_17_NONE, 16);              /* expiration: none */
    memcpy(b + 864, ISO_DATE_17, 16);                   /* effective */
    b[881] = 1;                                         /* file structure version */
}

static void iso_path_table(uint8_t *b, uint32_t root, int big_endian)
{
    b[0] = 1; /* identifier length */
    b[1] = 0;
    if (big_endian) {
        put_be32(b + 2, root);
        put_be16(b + 6, 1);
    } else {
        put_le32(b + 2, root);
        put_le16(b + 6, 1);
    }
    b[8] = 0; /* the root's identifier, then one byte of padding */
    b[9] = 0;
}

static void iso_er(uint8_t *b)
{
    b[0] = 'E';
    b[1] = 'R';
    b[2] = (uint8_t)RRIP_ER_LEN;
    b[3] = 1;
    b[4] = sizeof(RRIP_ID) - 1;
    b[5] = sizeof(RRIP_DES) - 1;
    b[6] = sizeof(RRIP_SRC) - 1;
    b[7] = 1; /* extension version */
    uint8_t *p = b + 8;
    memcpy(p, RRIP_ID, sizeof(RRIP_ID) - 1);
    p += sizeof(RRIP_ID) - 1;
    memcpy(p, RRIP_DES, sizeof(RRIP_DES) - 1);
    p += sizeof(RRIP_DES) - 1;
    memcpy(p, RRIP_SRC, sizeof(RRIP_SRC) - 1);
}

_Static_assert(RRIP_ER_LEN <= 255, "the ER entry must fit its length byte");

static void iso_layout(iso_image *im)
{
    iso_assign_idents(im);
    im->root_extent = ISO_B_ROOT;
    im->root_bytes = iso_build_dir(im, 0, NULL);
    im->jroot_extent = im->root_extent + im->root_bytes / ISO_BLOCK;
    im->jroot_bytes = iso_build_dir(im, 1, NULL);
    /* After both directories: readers that go through the image in order
     * (libarchive) want a continuation area after the record naming it. */
    im->ce_extent = im->jroot_extent + im->jroot_bytes / ISO_BLOCK;
    im->data_extent = im->ce_extent + 1;
    uint32_t next = im->data_extent;
    for (size_t k = 0; k < im->n; k++) {
        iso_entry *ent = &im->ent[im->by_name[k]];
        ent->extent = ent->f->len > 0 ? next : 0;
        next += iso_blocks(ent->f->len);
    }
    im->total_blocks = next;
}

static int iso_emit(int fd, void *ctx)
{
    const iso_image *im = ctx;
    size_t meta_len = (size_t)im->data_extent * ISO_BLOCK;
    uint8_t *meta = calloc(1, meta_len);
    if (meta == NULL) {
        errno = ENOMEM;
        return -1;
    }
    iso_volume_descriptor(im, 0, meta + ISO_B_PVD * ISO_BLOCK);
    iso_volume_descriptor(im, 1, meta + ISO_B_SVD * ISO_BLOCK);
    uint8_t *term = meta + ISO_B_TERM * ISO_BLOCK;
    term[0] = 255;
    memcpy(term + 1, "CD001", 5);
    term[6] = 1;
    iso_path_table(meta + ISO_B_LPATH * ISO_BLOCK, im->root_extent, 0);
    iso_path_table(meta + ISO_B_MPATH * ISO_BLOCK, im->root_extent, 1);
    iso_path_table(meta + ISO_B_JLPATH * ISO_BLOCK, im->jroot_extent, 0);
    iso_path_table(meta + ISO_B_JMPATH * ISO_BLOCK, im->jroot_extent, 1);
    iso_er(meta + (size_t)im->ce_extent * ISO_BLOCK);
    iso_build_dir(im, 0, meta + (size_t)im->root_extent * ISO_BLOCK);
    iso_build_dir(im, 1, meta + (size_t)im->jroot_extent * ISO_BLOCK);
    int rv = seed_write_all(fd, meta, meta_len);
    int saved = errno;
    free(meta);
    errno = saved;
    for (size_t k = 0; rv == 0 && k < im->n; k++) {
        const hpc_seed_file *f = im->ent[im->by_name[k]].f;
        if (f->len == 0) {
            continue;
        }
        rv = seed_write_all(fd, f->data, f->len);
        if (rv == 0) {
            rv = seed_write_zeros(fd, (size_t)iso_blocks(f->len) * ISO_BLOCK - f->len);
        }
    }
    return rv;
}

static int seed_check_label(const char *label, fr_error *e)
{
    if (label == NULL || label[0] == '\0') {
        return fr_error_set(e, FR_EINVAL, "label",
                            "the volume label is empty; use 1..%d bytes of [A-Za-z0-9._-] "
                            "(cloud-init looks for \"cidata\")",
                            HPC_SEED_LABEL_MAX);
    }
    size_t len = strnlen(label, HPC_SEED_LABEL_MAX + 1);
    int bad = len > HPC_SEED_LABEL_MAX;
    for (size_t i = 0; i < len && !bad; i++) {
        char c = label[i];
        bad = !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-');
    }
    if (bad) {
        char q[HPC_SEED_NAME_MAX * 4 + 8];
        seed_quote(q, sizeof(q), label, len);
        return fr_error_set(e, FR_EINVAL, "label",
                            "volume label \"%s\" is not allowed; use 1..%d bytes of "
                            "[A-Za-z0-9._-] (cloud-init looks for \"cidata\")",
                            q, HPC_SEED_LABEL_MAX);
    }
    return 0;
}

int hpc_seed_write_iso(const char *path, const char *label, const hpc_seed_file *files, size_t n,
                       fr_error *e)
{
    int rv;
    if ((rv = seed_check_path(path, e)) != 0 || (rv = seed_check_label(label, e)) != 0 ||
        (rv = seed_check_files(files, n, e)) != 0) {
        return rv;
    }
    iso_image im;
    memset(&im, 0, sizeof(im));
    im.label = label;
    im.n = n;
    for (size_t i = 0; i < n; i++) {
        im.ent[i].f = &files[i];
    }
    seed_sort_by_name(files, n, im.by_name);
    iso_layout(&im);
    return seed_commit(path, iso_emit, &im, e);
}

/* ---- raw seed disk ---------------------------------------------------- */

#define RAW_SECTOR HPC_SEED_RAW_SECTOR

typedef struct raw_image {
    const hpc_seed_file *files;
    size_t n;
    size_t order[HPC_SEED_MAX_FILES];
    char header[HPC_SEED_RAW_HEADER_MAX];
    size_t header_len; /* bytes of header[] written: the text plus its NULs */
} raw_image;

static size_t raw_round(size_t n)
{
    return (n + RAW_SECTOR - 1) / RAW_SECTOR * RAW_SECTOR;
}

static void raw_layout(raw_image *im)
{
    /* The offsets depend on the header's size and its size on the offsets'
     * digits: start from the largest header and shrink it while the text
     * fits in fewer sectors (smaller offsets only make the text shorter). */
    size_t header_sectors = HPC_SEED_RAW_HEADER_MAX / RAW_SECTOR;
    for (;;) {
        size_t off = header_sectors * RAW_SECTOR;
        size_t o = 0;
        memset(im->header, 0, sizeof(im->header));
        memcpy(im->header, HPC_SEED_RAW_MAGIC, sizeof(HPC_SEED_RAW_MAGIC) - 1);
        o = sizeof(HPC_SEED_RAW_MAGIC) - 1;
        for (size_t k = 0; k < im->n; k++) {
            const hpc_seed_file *f = &im->files[im->order[k]];
            o += (size_t)snprintf(im->header + o, sizeof(im->header) - o, "%s %zu %zu\n", f->name,
                                  off, f->len);
            off += raw_round(f->len);
        }
        size_t need = raw_round(o + 1) / RAW_SECTOR;
        if (need >= header_sectors) {
            im->header_len = header_sectors * RAW_SECTOR;
            return;
        }
        header_sectors = need;
    }
}

static int raw_emit(int fd, void *ctx)
{
    const raw_image *im = ctx;
    if (seed_write_all(fd, im->header, im->header_len) != 0) {
        return -1;
    }
    for (size_t k = 0; k < im->n; k++) {
        const hpc_seed_file *f = &im->files[im->order[k]];
        if (f->len == 0) {
            continue;
        }
        if (seed_write_all(fd, f->data, f->len) != 0 ||
            seed_write_zeros(fd, raw_round(f->len) - f->len) != 0) {
            return -1;
        }
    }
    return 0;
}

int hpc_seed_write_raw(const char *path, const hpc_seed_file *files, size_t n, fr_error *e)
{
    int rv;
    if ((rv = seed_check_path(path, e)) != 0 || (rv = seed_check_files(files, n, e)) != 0) {
        return rv;
    }
    raw_image *im = calloc(1, sizeof(*im));
    if (im == NULL) {
        return fr_error_set(e, FR_ENOMEM, path, "out of memory");
    }
    im->files = files;
    im->n = n;
    seed_sort_by_name(files, n, im->order);
    raw_layout(im);
    rv = seed_commit(path, raw_emit, im, e);
    free(im);
    return rv;
}

/* ---- raw seed reader -------------------------------------------------- */

typedef struct raw_entry {
    char name[HPC_SEED_NAME_MAX + 1];
    size_t off;
    size_t len;
} raw_entry;

/* A decimal field ending at `stop`: digits only, no leading zero, at most
 * 10 digits. Advances *p past the stop character. */
static int raw_number(const char **p, const char *end, char stop, size_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    size_t digits = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        if (digits == 10) {
            return -1;
        }
        v = v * 10 + (uint64_t)(*s - '0');
        digits++;
        s++;
    }
    if (digits == 0 || (digits > 1 && **p == '0') || s == end || *s != stop || v > SIZE_MAX) {
        return -1;
    }
    *out = (size_t)v;
    *p = s + 1;
    return 0;
}

int hpc_seed_read_raw(const void *buf, size_t len,
                      int (*cb)(void *ctx, const char *name, const void *data, size_t n), void *ctx,
                      fr_error *e)
{
    const char *b = buf;
    const size_t magic_len = sizeof(HPC_SEED_RAW_MAGIC) - 1;
    if (buf == NULL || len < RAW_SECTOR) {
        return fr_error_set(e, FR_EPROTO, "header",
                            "raw seed is %zu bytes; it needs at least its %d-byte header", len,
                            RAW_SECTOR);
    }
    if (memcmp(b, HPC_SEED_RAW_MAGIC, magic_len) != 0) {
        return fr_error_set(e, FR_EPROTO, "header",
                            "raw seed does not start with the magic \"FRSEED1\\n\"");
    }
    size_t scan = len < HPC_SEED_RAW_HEADER_MAX ? len : HPC_SEED_RAW_HEADER_MAX;
    const char *nul = memchr(b, '\0', scan);
    if (nul == NULL) {
        return fr_error_set(e, FR_EPROTO, "header",
                            "raw seed header has no NUL terminator in its first %zu bytes", scan);
    }
    size_t text_len = (size_t)(nul - b);
    size_t header_end = raw_round(text_len + 1);
    if (header_end > len) {
        return fr_error_set(e, FR_EPROTO, "header",
                            "raw seed header needs %zu bytes but the seed is %zu", header_end, len);
    }
    for (size_t i = text_len; i < header_end; i++) {
        if (b[i] != '\0') {
            return fr_error_set(e, FR_EPROTO, "header",
                                "raw seed header padding has a non-NUL byte at offset %zu", i);
        }
    }

    raw_entry ent[HPC_SEED_MAX_FILES];
    size_t n = 0;
    const char *p = b + magic_len;
    char where[32];
    char q[HPC_SEED_NAME_MAX * 4 + 8];
    for (unsigned line = 2; p < nul; line++) {
        snprintf(where, sizeof(where), "header line %u", line);
        if (n == HPC_SEED_MAX_FILES) {
            return fr_error_set(e, FR_EPROTO, where, "raw seed lists more than %d files",
                                HPC_SEED_MAX_FILES);
        }
        const char *sp = memchr(p, ' ', (size_t)(nul - p));
        const char *nl = memchr(p, '\n', (size_t)(nul - p));
        if (nl == NULL) {
            return fr_error_set(e, FR_EPROTO, where, "header line does not end with a newline");
        }
        if (sp == NULL || sp > nl) {
            return fr_error_set(e, FR_EPROTO, where,
                                "header line is not \"<name> <offset> <length>\"");
        }
        size_t name_len = (size_t)(sp - p);
        size_t bad_at;
        const char *problem = seed_name_problem(p, name_len, &bad_at);
        if (problem != NULL) {
            seed_quote(q, sizeof(q), p, name_len);
            return fr_error_set(e, FR_EPROTO, where, "file name \"%s\" %s; " ALLOWED_NAMES, q,
                                problem);
        }
        raw_entry *r = &ent[n];
        memcpy(r->name, p, name_len);
        r->name[name_len] = '\0';
        p = sp + 1;
        if (raw_number(&p, nl + 1, ' ', &r->off) != 0 ||
            raw_number(&p, nl + 1, '\n', &r->len) != 0) {
            return fr_error_set(e, FR_EPROTO, where,
                                "file \"%s\": offset and length must be decimal numbers without "
                                "leading zeros, separated by one space, ending the line",
                                r->name);
        }
        if (r->len > HPC_SEED_FILE_MAX) {
            return fr_error_set(e, FR_EPROTO, where, "file \"%s\" is %zu bytes; at most %u allowed",
                                r->name, r->len, HPC_SEED_FILE_MAX);
        }
        if (r->off % RAW_SECTOR != 0) {
            return fr_error_set(e, FR_EPROTO, where,
                                "file \"%s\" starts at %zu, not on a 512-byte boundary", r->name,
                                r->off);
        }
        if (r->off < header_end) {
            return fr_error_set(e, FR_EPROTO, where,
                                "file \"%s\" starts at %zu, inside the %zu-byte header", r->name,
                                r->off, header_end);
        }
        if (r->off > len || r->len > len - r->off) {
            return fr_error_set(e, FR_EPROTO, where,
                                "file \"%s\" (%zu bytes at %zu) ends past the seed's %zu bytes",
                                r->name, r->len, r->off, len);
        }
        for (size_t j = 0; j < n; j++) {
            if (strcmp(ent[j].name, r->name) == 0) {
                return fr_error_set(e, FR_EPROTO, where, "file \"%s\" is listed twice", r->name);
            }
            if (r->len > 0 && ent[j].len > 0 && r->off < ent[j].off + ent[j].len &&
                ent[j].off < r->off + r->len) {
                return fr_error_set(e, FR_EPROTO, where, "file \"%s\" overlaps file \"%s\"",
                                    r->name, ent[j].name);
            }
        }
        n++;
    }
    if (cb == NULL) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        int rv = cb(ctx, ent[i].name, b + ent[i].off, ent[i].len);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}
