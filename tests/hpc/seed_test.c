/* NoCloud seed images (services/hpc/seed.h) written to a temporary
 * directory: the ISO9660 image as blkid, an independent parser in this file
 * (descriptors, path tables, Rock Ridge and Joliet directories, extents),
 * isoinfo when it is installed and the kernel (loop mount, when the test is
 * root and the kernel can) see it; names and limits that must be refused;
 * the raw OSv layout written, read back, and damaged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fresco/err.h"
#include "seed.h"

extern char **environ;

#define BLOCK 2048u

#define assert_seed_ok(expr, err)                                                                  \
    do {                                                                                           \
        int rv_ = (expr);                                                                          \
        if (rv_ != 0) {                                                                            \
            fail_msg("%s -> %d (%s): %s: %s", #expr, rv_, fr_strerror(rv_), (err).where,           \
                     (err).message);                                                               \
        }                                                                                          \
    } while (0)

static const char USER_DATA[] = "#cloud-config\nhostname: node-7\nssh_pwauth: false\n";
static const char META_DATA[] = "instance-id: fresco-job-42\nlocal-hostname: node-7\n";

/* ---- fixture: a temporary directory ----------------------------------- */

typedef struct fx {
    char dir[256];
    char iso[300];
    char raw[300];
    char mnt[300];
} fx;

static int fx_setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        return -1;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof(f->dir), "%s/fresco-seed-XXXXXX", tmp != NULL && *tmp ? tmp : "/tmp");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->iso, sizeof(f->iso), "%s/seed.iso", f->dir);
    snprintf(f->raw, sizeof(f->raw), "%s/seed.raw", f->dir);
    snprintf(f->mnt, sizeof(f->mnt), "%s/mnt", f->dir);
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    fx *f = *state;
    DIR *d = opendir(f->dir);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
                continue;
            }
            char p[600];
            snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name);
            if (unlink(p) != 0) {
                rmdir(p);
            }
        }
        closedir(d);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long size = ftell(fp);
    assert_true(size >= 0);
    rewind(fp);
    uint8_t *b = malloc((size_t)size + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    *len = (size_t)size;
    return b;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void assert_nothing_written(const char *path)
{
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_false(exists(path));
    assert_false(exists(tmp));
}

/* ---- running system tools --------------------------------------------- */

/* Full path of an executable called name on $PATH or in /usr/sbin:/sbin
 * (blkid lives there and a test's PATH may lack it); NULL when absent. */
static const char *tool_path(const char *name, char *buf, size_t cap)
{
    const char *env = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof(dirs), "%s:/usr/sbin:/sbin:/usr/bin:/bin", env != NULL ? env : "");
    for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir != NULL;
         dir = strtok_r(NULL, ":", &save)) {
        snprintf(buf, cap, "%s/%s", dir, name);
        if (access(buf, X_OK) == 0) {
            return buf;
        }
    }
    return NULL;
}

/* Runs argv (argv[0] a full path, no shell) with stdout captured into
 * out (NUL-terminated, cut at cap) and stderr to /dev/null. Returns the
 * exit status, or -1 when it could not be started or was killed. */
static int run_capture(char *const argv[], char *out, size_t cap)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rv = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    size_t used = 0;
    if (rv == 0) {
        for (;;) {
            char chunk[512];
            ssize_t r = read(fds[0], chunk, sizeof(chunk));
            if (r < 0 && errno == EINTR) {
                continue;
            }
            if (r <= 0) {
                break;
            }
            size_t k = (size_t)r;
            if (k > cap - 1 - used) {
                k = cap - 1 - used;
            }
            memcpy(out + used, chunk, k);
            used += k;
        }
    }
    out[used] = '\0';
    close(fds[0]);
    if (rv != 0) {
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- an ISO9660 reader independent of seed.c -------------------------- */

typedef struct iso_file {
    char name[2 * HPC_SEED_NAME_MAX + 1]; /* Rock Ridge NM, Joliet name */
    char ident[40];                       /* the primary ISO9660 identifier */
    const uint8_t *data;
    size_t len;
    uint32_t mode; /* Rock Ridge PX, 0 when absent */
} iso_file;

typedef struct iso_tree {
    iso_file f[HPC_SEED_MAX_FILES + 1];
    size_t n;
    uint32_t dir_blocks;
} iso_tree;

typedef struct iso_view {
    iso_tree primary;
    iso_tree joliet;
    char label[33];
    char joliet_label[17];
    int rock_ridge; /* SP in the root '.', ER found through CE */
} iso_view;

static uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | (uint32_t)p[1];
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint32_t both16(const uint8_t *p)
{
    assert_int_equal(le16(p), be16(p + 2));
    return le16(p);
}

static uint32_t both32(const uint8_t *p)
{
    assert_int_equal(le32(p), be32(p + 4));
    return le32(p);
}

/* A field padded with spaces, into out without the padding. */
static void iso_str(const uint8_t *p, size_t field, char *out)
{
    size_t len = field;
    while (len > 0 && p[len - 1] == ' ') {
        len--;
    }
    memcpy(out, p, len);
    out[len] = '\0';
}

/* A UCS-2BE field of ASCII characters padded with U+0020. */
static void iso_ucs2(const uint8_t *p, size_t bytes, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i + 1 < bytes; i += 2) {
        assert_int_equal(p[i], 0);
        out[n++] = (char)p[i + 1];
    }
    while (n > 0 && out[n - 1] == ' ') {
        n--;
    }
    out[n] = '\0';
}

/* ECMA-119 9.3 order of two primary identifiers "NAME.EXT;1". */
static int ident_cmp(const char *a, const char *b)
{
    size_t an = strcspn(a, "."), bn = strcspn(b, ".");
    for (size_t i = 0; i < (an > bn ? an : bn); i++) {
        int ca = i < an ? (unsigned char)a[i] : ' ';
        int cb = i < bn ? (unsigned char)b[i] : ' ';
        if (ca != cb) {
            return ca - cb;
        }
    }
    const char *ae = a + an + 1, *be = b + bn + 1;
    size_t ael = strcspn(ae, ";"), bel = strcspn(be, ";");
    for (size_t i = 0; i < (ael > bel ? ael : bel); i++) {
        int ca = i < ael ? (unsigned char)ae[i] : ' ';
        int cb = i < bel ? (unsigned char)be[i] : ' ';
        if (ca != cb) {
            return ca - cb;
        }
    }
    return 0;
}

static void check_primary_ident(const char *id)
{
    size_t len = strlen(id);
    assert_true(len >= 4 && len <= 33);
    assert_string_equal(id + len - 2, ";1");
    const char *dot = strchr(id, '.');
    assert_non_null(dot);
    assert_null(strchr(dot + 1, '.'));
    for (size_t i = 0; i < len - 2; i++) {
        char c = id[i];
        assert_true((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.');
    }
}

/* Walks one system use area: SP, CE, ER, PX, NM. */
static void iso_susp(const uint8_t *img, size_t img_len, const uint8_t *su, size_t su_len,
                     iso_file *file, iso_view *v, int is_root_dot)
{
    size_t pos = 0;
    int first = 1;
    while (pos + 4 <= su_len) {
        const uint8_t *s = su + pos;
        size_t len = s[2];
        assert_true(len >= 4 && pos + len <= su_len);
        if (is_root_dot && first) {
            /* SUSP: "SP" must open the root's '.' system use field. */
            assert_memory_equal(s, "SP", 2);
            assert_int_equal(len, 7);
            assert_int_equal(s[4], 0xbe);
            assert_int_equal(s[5], 0xef);
            assert_int_equal(s[6], 0);
        }
        first = 0;
        if (memcmp(s, "CE", 2) == 0) {
            assert_int_equal(len, 28);
            uint32_t blk = both32(s + 4), off = both32(s + 12), n = both32(s + 20);
            assert_true(off + n <= BLOCK);
            assert_true(((size_t)blk + 1) * BLOCK <= img_len);
            iso_susp(img, img_len, img + (size_t)blk * BLOCK + off, n, file, v, 0);
        } else if (memcmp(s, "ER", 2) == 0) {
            size_t id_len = s[4];
            assert_true(8 + id_len + s[5] + s[6] <= len);
            if (id_len == 10 && memcmp(s + 8, "RRIP_1991A", 10) == 0) {
                v->rock_ridge = 1;
            }
        } else if (memcmp(s, "PX", 2) == 0) {
            assert_true(len == 36 || len == 44);
            if (file != NULL) {
                file->mode = both32(s + 4);
            }
        } else if (memcmp(s, "NM", 2) == 0 && file != NULL) {
            assert_int_equal(s[4], 0); /* no continuation, not '.' or '..' */
            size_t have = strlen(file->name);
            assert_true(have + len - 5 < sizeof(file->name));
            memcpy(file->name + have, s + 5, len - 5);
            file->name[have + len - 5] = '\0';
        }
        pos += len;
    }
}

static void iso_read_dir(const uint8_t *img, size_t img_len, uint32_t extent, uint32_t size,
                         int joliet, iso_tree *t, iso_view *v)
{
    assert_int_equal(size % BLOCK, 0);
    assert_true(((size_t)extent + size / BLOCK) * BLOCK <= img_len);
    const uint8_t *d = img + (size_t)extent * BLOCK;
    t->dir_blocks = size / BLOCK;
    size_t pos = 0;
    size_t k = 0;
    while (pos < size) {
        size_t len = d[pos];
        if (len == 0) {
            pos = (pos / BLOCK + 1) * BLOCK; /* the rest of this block is padding */
            continue;
        }
        const uint8_t *r = d + pos;
        assert_true(len >= 34);
        assert_true(pos % BLOCK + len <= BLOCK); /* a record never spans two blocks */
        assert_int_equal(r[1], 0);
        uint32_t rec_extent = both32(r + 2);
        uint32_t rec_size = both32(r + 10);
        assert_int_equal(r[18], 70); /* 1970-01-01 */
        assert_int_equal(r[19], 1);
        assert_int_equal(r[20], 1);
        uint8_t flags = r[25];
        assert_int_equal(both16(r + 28), 1);
        size_t id_len = r[32];
        assert_true(33 + id_len <= len);
        const uint8_t *id = r + 33;
        size_t su_off = 33 + id_len + (id_len % 2 == 0 ? 1 : 0);
        assert_true(su_off <= len);
        if (k < 2) {
            assert_int_equal(id_len, 1);
            assert_int_equal(id[0], k); /* '.' then '..' */
            assert_int_equal(flags, 0x02);
            assert_int_equal(rec_extent, extent); /* the root is its own parent */
            assert_int_equal(rec_size, size);
            if (!joliet) {
                iso_file dir;
                memset(&dir, 0, sizeof(dir));
                iso_susp(img, img_len, r + su_off, len - su_off, &dir, v, k == 0);
                assert_int_equal(dir.mode, 0040555);
            } else {
                assert_int_equal(su_off, len);
            }
        } else {
            assert_true(t->n < HPC_SEED_MAX_FILES + 1);
            iso_file *f = &t->f[t->n++];
            memset(f, 0, sizeof(*f));
            assert_int_equal(flags, 0);
            assert_true(rec_size == 0 || ((size_t)rec_extent * BLOCK + rec_size <= img_len));
            assert_true(rec_size == 0 || rec_extent >= extent + size / BLOCK);
            f->data = img + (size_t)rec_extent * BLOCK;
            f->len = rec_size;
            if (joliet) {
                assert_int_equal(id_len % 2, 0);
                iso_ucs2(id, id_len, f->name);
                assert_int_equal(strlen(f->name), id_len / 2);
                assert_int_equal(su_off, len);
                if (t->n > 1) {
                    assert_true(strcmp(t->f[t->n - 2].name, f->name) < 0);
                }
            } else {
                assert_true(id_len < sizeof(f->ident));
                memcpy(f->ident, id, id_len);
                f->ident[id_len] = '\0';
                check_primary_ident(f->ident);
                if (t->n > 1) {
                    assert_true(ident_cmp(t->f[t->n - 2].ident, f->ident) < 0);
                }
                iso_susp(img, img_len, r + su_off, len - su_off, f, v, 0);
                assert_int_equal(f->mode, 0100444);
            }
        }
        k++;
        pos += len;
    }
    assert_true(k >= 2);
}

static void iso_check_path_table(const uint8_t *img, size_t img_len, uint32_t blk, int big,
                                 uint32_t root)
{
    assert_true(((size_t)blk + 1) * BLOCK <= img_len);
    const uint8_t *p = img + (size_t)blk * BLOCK;
    assert_int_equal(p[0], 1);
    assert_int_equal(p[1], 0);
    assert_int_equal(big ? be32(p + 2) : le32(p + 2), root);
    assert_int_equal(big ? be16(p + 6) : le16(p + 6), 1);
    assert_int_equal(p[8], 0);
}

/* Parses a whole image: the descriptors from block 16 to the terminator,
 * both path tables of both trees and both root directories. */
static void iso_parse(const uint8_t *img, size_t len, iso_view *v)
{
    memset(v, 0, sizeof(*v));
    assert_int_equal(len % BLOCK, 0);
    assert_true(len >= 19 * BLOCK);
    for (size_t i = 0; i < 16 * BLOCK; i++) {
        assert_int_equal(img[i], 0);
    }
    int have_pvd = 0, have_joliet = 0, have_term = 0;
    for (uint32_t blk = 16; !have_term; blk++) {
        assert_true(((size_t)blk + 1) * BLOCK <= len);
        const uint8_t *vd = img + (size_t)blk * BLOCK;
        assert_memory_equal(vd + 1, "CD001", 5);
        assert_int_equal(vd[6], 1);
        if (vd[0] == 255) {
            have_term = 1;
            continue;
        }
        assert_true(vd[0] == 1 || vd[0] == 2);
        int joliet = vd[0] == 2;
        if (vd[0] == 1) {
            assert_int_equal(blk, 16);
            have_pvd = 1;
            iso_str(vd + 40, 32, v->label);
        } else {
            assert_memory_equal(vd + 88, "%/E", 3);
            have_joliet = 1;
            iso_ucs2(vd + 40, 32, v->joliet_label);
        }
        assert_int_equal((size_t)both32(vd + 80) * BLOCK, len); /* volume space size */
        assert_int_equal(both16(vd + 120), 1);
        assert_int_equal(both16(vd + 124), 1);
        assert_int_equal(both16(vd + 128), BLOCK);
        assert_int_equal(both32(vd + 132), 10);
        const uint8_t *root = vd + 156;
        assert_int_equal(root[0], 34);
        assert_int_equal(root[32], 1);
        assert_int_equal(root[33], 0);
        assert_int_equal(root[25], 0x02);
        uint32_t root_extent = both32(root + 2);
        uint32_t root_size = both32(root + 10);
        iso_check_path_table(img, len, le32(vd + 140), 0, root_extent);
        iso_check_path_table(img, len, be32(vd + 148), 1, root_extent);
        assert_memory_equal(vd + 813, "1970010100000000", 16);
        assert_int_equal(vd[829], 0);
        assert_int_equal(vd[881], 1);
        iso_read_dir(img, len, root_extent, root_size, joliet, joliet ? &v->joliet : &v->primary,
                     v);
    }
    assert_true(have_pvd);
    assert_true(have_joliet);
}

static const iso_file *tree_find(const iso_tree *t, const char *name)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->f[i].name, name) == 0) {
            return &t->f[i];
        }
    }
    return NULL;
}

/* Both trees hold exactly files[0..n), byte for byte. */
static void iso_expect(const iso_view *v, const hpc_seed_file *files, size_t n)
{
    assert_int_equal(v->primary.n, n);
    assert_int_equal(v->joliet.n, n);
    for (size_t i = 0; i < n; i++) {
        const iso_tree *trees[2] = {&v->primary, &v->joliet};
        for (int t = 0; t < 2; t++) {
            const iso_file *got = tree_find(trees[t], files[i].name);
            if (got == NULL) {
                fail_msg("%s tree has no file \"%s\"", t == 0 ? "Rock Ridge" : "Joliet",
                         files[i].name);
            }
            assert_int_equal(got->len, files[i].len);
            if (files[i].len > 0) {
                assert_memory_equal(got->data, files[i].data, files[i].len);
            }
        }
    }
    for (size_t i = 0; i < v->primary.n; i++) {
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(v->primary.f[i].ident, v->primary.f[j].ident);
        }
    }
}

/* ---- ISO tests -------------------------------------------------------- */

static const hpc_seed_file nocloud[] = {
    {"user-data", USER_DATA, sizeof(USER_DATA) - 1},
    {"meta-data", META_DATA, sizeof(META_DATA) - 1},
};

static void write_nocloud_iso(fx *f)
{
    fr_error e;
    assert_seed_ok(hpc_seed_write_iso(f->iso, "cidata", nocloud, 2, &e), e);
}

static void test_iso_blkid(void **state)
{
    fx *f = *state;
    write_nocloud_iso(f);
    char blkid[512];
    if (tool_path("blkid", blkid, sizeof(blkid)) == NULL) {
        skip();
    }
    char out[256];
    /* -c /dev/null: probe the file itself, leave the system's cache alone */
    char *label[] = {blkid, "-c", "/dev/null", "-o", "value", "-s", "LABEL", f->iso, NULL};
    assert_int_equal(run_capture(label, out, sizeof(out)), 0);
    assert_string_equal(out, "cidata\n");
    char *type[] = {blkid, "-c", "/dev/null", "-o", "value", "-s", "TYPE", f->iso, NULL};
    assert_int_equal(run_capture(type, out, sizeof(out)), 0);
    assert_string_equal(out, "iso9660\n");
}

static void test_iso_parse(void **state)
{
    fx *f = *state;
    write_nocloud_iso(f);
    size_t len;
    uint8_t *img = slurp(f->iso, &len);
    iso_view v;
    iso_parse(img, len, &v);
    assert_string_equal(v.label, "cidata");
    assert_string_equal(v.joliet_label, "cidata");
    assert_true(v.rock_ridge);
    iso_expect(&v, nocloud, 2);
    /* Sorted by identifier: META_DATA before USER_DATA. */
    assert_string_equal(v.primary.f[0].ident, "META_DATA.;1");
    assert_string_equal(v.primary.f[1].ident, "USER_DATA.;1");
    assert_string_equal(v.joliet.f[0].name, "meta-data");
    assert_string_equal(v.joliet.f[1].name, "user-data");
    struct stat st;
    assert_int_equal(stat(f->iso, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char tmp[320];
    snprintf(tmp, sizeof(tmp), "%s.tmp", f->iso);
    assert_false(exists(tmp));
    free(img);
}

static void test_iso_reproducible_and_replaced(void **state)
{
    fx *f = *state;
    write_nocloud_iso(f);
    size_t len1, len2;
    uint8_t *a = slurp(f->iso, &len1);
    write_nocloud_iso(f);
    uint8_t *b = slurp(f->iso, &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(a, b, len1);
    free(b);

    /* A new seed replaces the old one. */
    static const char other[] = "instance-id: other\n";
    hpc_seed_file one[] = {{"meta-data", other, sizeof(other) - 1}};
    fr_error e;
    assert_seed_ok(hpc_seed_write_iso(f->iso, "CIDATA", one, 1, &e), e);
    b = slurp(f->iso, &len2);
    iso_view v;
    iso_parse(b, len2, &v);
    assert_string_equal(v.label, "CIDATA");
    iso_expect(&v, one, 1);
    free(b);

    /* A refused seed leaves the file that was there. */
    hpc_seed_file bad[] = {{"a/b", "x", 1}};
    assert_int_equal(hpc_seed_write_iso(f->iso, "cidata", bad, 1, &e), FR_EINVAL);
    b = slurp(f->iso, &len1);
    assert_int_equal(len1, len2);
    free(b);
    free(a);
}

static void test_iso_many_files(void **state)
{
    fx *f = *state;
    /* 16 files with long names, names that clash once upper-cased and
     * mapped to d-characters, and sizes around block boundaries; the
     * directory needs more than one block. */
    static const size_t sizes[] = {0, 1, 2047, 2048, 2049, 5000, 70000, 3};
    char names[HPC_SEED_MAX_FILES][HPC_SEED_NAME_MAX + 1];
    hpc_seed_file files[HPC_SEED_MAX_FILES];
    uint8_t *bufs[HPC_SEED_MAX_FILES];
    const char *fixed[] = {"x-y.txt", "x_y.txt", "x.y.txt", "network-config", ".hidden", "a."};
    for (size_t i = 0; i < HPC_SEED_MAX_FILES; i++) {
        if (i < sizeof(fixed) / sizeof(fixed[0])) {
            snprintf(names[i], sizeof(names[i]), "%s", fixed[i]);
        } else {
            memset(names[i], 'a' + (int)(i % 3), HPC_SEED_NAME_MAX);
            names[i][HPC_SEED_NAME_MAX] = '\0';
            snprintf(names[i] + HPC_SEED_NAME_MAX - 6, 7, "-%02zu.cf", i);
        }
        size_t len = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
        bufs[i] = malloc(len + 1);
        assert_non_null(bufs[i]);
        for (size_t j = 0; j < len; j++) {
            bufs[i][j] = (uint8_t)(i * 131 + j * 7);
        }
        files[i] = (hpc_seed_file){names[i], bufs[i], len};
    }
    fr_error e;
    assert_seed_ok(hpc_seed_write_iso(f->iso, "cidata", files, HPC_SEED_MAX_FILES, &e), e);
    size_t len;
    uint8_t *img = slurp(f->iso, &len);
    iso_view v;
    iso_parse(img, len, &v);
    iso_expect(&v, files, HPC_SEED_MAX_FILES);
    assert_true(v.primary.dir_blocks >= 2);
    free(img);
    for (size_t i = 0; i < HPC_SEED_MAX_FILES; i++) {
        free(bufs[i]);
    }
}

static void test_iso_isoinfo(void **state)
{
    fx *f = *state;
    write_nocloud_iso(f);
    char isoinfo[512];
    if (tool_path("isoinfo", isoinfo, sizeof(isoinfo)) == NULL) {
        skip(); /* genisoimage is not installed */
    }
    static char out[16384];
    const char *modes[] = {"-R", "-J"};
    for (int m = 0; m < 2; m++) {
        char *argv[] = {isoinfo, (char *)modes[m], "-l", "-i", f->iso, NULL};
        assert_int_equal(run_capture(argv, out, sizeof(out)), 0);
        if (strstr(out, " user-data") == NULL || strstr(out, " meta-data") == NULL) {
            fail_msg("isoinfo %s -l does not list user-data and meta-data:\n%s", modes[m], out);
        }
    }
}

/* Loop-mounts the image read-only and compares what the kernel shows;
 * skipped when not root or when the kernel cannot mount it here. */
static void test_iso_mount(void **state)
{
    fx *f = *state;
    write_nocloud_iso(f);
    char mount_bin[512], umount_bin[512];
    if (geteuid() != 0 || tool_path("mount", mount_bin, sizeof(mount_bin)) == NULL ||
        tool_path("umount", umount_bin, sizeof(umount_bin)) == NULL) {
        skip();
    }
    assert_int_equal(mkdir(f->mnt, 0700), 0);
    char out[256];
    char *mnt_argv[] = {mount_bin, "-t", "iso9660", "-o", "loop,ro", f->iso, f->mnt, NULL};
    if (run_capture(mnt_argv, out, sizeof(out)) != 0) {
        skip();
    }
    /* Collect first and unmount before asserting, so a failure does not
     * leave the mount behind. */
    char seen[4][256];
    size_t nseen = 0;
    DIR *d = opendir(f->mnt);
    if (d != NULL) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] != '.' && nseen < 4) {
                snprintf(seen[nseen++], sizeof(seen[0]), "%s", de->d_name);
            }
        }
        closedir(d);
    }
    int same[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        char p[600];
        snprintf(p, sizeof(p), "%s/%s", f->mnt, nocloud[i].name);
        FILE *fp = fopen(p, "rb");
        if (fp != NULL) {
            char buf[256];
            size_t r = fread(buf, 1, sizeof(buf), fp);
            same[i] = r == nocloud[i].len && memcmp(buf, nocloud[i].data, r) == 0;
            fclose(fp);
        }
    }
    char *um_argv[] = {umount_bin, f->mnt, NULL};
    assert_int_equal(run_capture(um_argv, out, sizeof(out)), 0);
    assert_int_equal(nseen, 2);
    assert_true((strcmp(seen[0], "user-data") == 0 && strcmp(seen[1], "meta-data") == 0) ||
                (strcmp(seen[0], "meta-data") == 0 && strcmp(seen[1], "user-data") == 0));
    assert_true(same[0]);
    assert_true(same[1]);
}

/* ---- refused input ---------------------------------------------------- */

typedef int (*writer_fn)(const char *path, const hpc_seed_file *files, size_t n, fr_error *e);

static int write_iso_cidata(const char *path, const hpc_seed_file *files, size_t n, fr_error *e)
{
    return hpc_seed_write_iso(path, "cidata", files, n, e);
}

static void expect_refused(writer_fn w, const char *path, const hpc_seed_file *files, size_t n,
                           const char *where)
{
    fr_error e;
    fr_error_clear(&e);
    int rv = w(path, files, n, &e);
    if (rv != FR_EINVAL) {
        fail_msg("expected FR_EINVAL, got %d (%s)", rv, e.message);
    }
    assert_int_equal(e.code, FR_EINVAL);
    assert_string_equal(e.where, where);
    assert_true(strlen(e.message) > 0);
    assert_nothing_written(path);
}

static void check_bad_input(writer_fn w, const char *path)
{
    char long_name[HPC_SEED_NAME_MAX + 2];
    memset(long_name, 'a', HPC_SEED_NAME_MAX + 1);
    long_name[HPC_SEED_NAME_MAX + 1] = '\0';
    const char *bad_names[] = {"../x",      "a/b",       "",  long_name, "caf\xc3\xa9",
                               "User-Data", "user data", ".", "..",      "tab\tname"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        hpc_seed_file files[] = {{"meta-data", "x", 1}, {bad_names[i], "y", 1}};
        expect_refused(w, path, files, 2, "files[1].name");
    }
    fr_error e;
    hpc_seed_file named[] = {{"meta-data", "x", 1}, {"a/b", "y", 1}};
    assert_int_equal(w(path, named, 2, &e), FR_EINVAL);
    assert_non_null(strstr(e.message, "\"a/b\""));

    /* 64 bytes is still allowed. */
    long_name[HPC_SEED_NAME_MAX] = '\0';
    hpc_seed_file ok[] = {{long_name, "z", 1}};
    assert_seed_ok(w(path, ok, 1, &e), e);
    assert_int_equal(unlink(path), 0);

    hpc_seed_file noname[] = {{NULL, "x", 1}};
    expect_refused(w, path, noname, 1, "files[0].name");
    hpc_seed_file twice[] = {{"user-data", "x", 1}, {"meta-data", "x", 1}, {"user-data", "y", 1}};
    expect_refused(w, path, twice, 3, "files[2].name");
    hpc_seed_file nodata[] = {{"user-data", NULL, 3}};
    expect_refused(w, path, nodata, 1, "files[0].data");

    uint8_t *big = calloc(1, HPC_SEED_FILE_MAX + 1);
    assert_non_null(big);
    hpc_seed_file too_big[] = {{"user-data", big, HPC_SEED_FILE_MAX + 1}};
    expect_refused(w, path, too_big, 1, "files[0].len");
    free(big);

    hpc_seed_file many[HPC_SEED_MAX_FILES + 1];
    char many_names[HPC_SEED_MAX_FILES + 1][8];
    for (size_t i = 0; i <= HPC_SEED_MAX_FILES; i++) {
        snprintf(many_names[i], sizeof(many_names[i]), "f%zu", i);
        many[i] = (hpc_seed_file){many_names[i], "x", 1};
    }
    expect_refused(w, path, many, HPC_SEED_MAX_FILES + 1, "n");
    expect_refused(w, path, NULL, 1, "files");

    assert_int_equal(w(NULL, nocloud, 2, &e), FR_EINVAL);
    assert_string_equal(e.where, "path");
    assert_int_equal(w("", nocloud, 2, &e), FR_EINVAL);

    /* An OS error: the directory does not exist. */
    char missing[600];
    snprintf(missing, sizeof(missing), "%s.d/none/seed", path);
    assert_int_equal(w(missing, nocloud, 2, &e), FR_EIO);
    assert_string_equal(e.where, missing);
    assert_nothing_written(missing);

    /* Failing after path.tmp was written (rename onto a directory): the
     * temporary file is removed. */
    char inside[600];
    snprintf(inside, sizeof(inside), "%s/keep", path);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(mkdir(inside, 0700), 0);
    assert_int_equal(w(path, nocloud, 2, &e), FR_EIO);
    assert_string_equal(e.where, path);
    assert_non_null(strstr(e.message, "rename"));
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_false(exists(tmp));
    assert_int_equal(rmdir(inside), 0);
    assert_int_equal(rmdir(path), 0);
}

static void test_iso_refuses_bad_input(void **state)
{
    fx *f = *state;
    check_bad_input(write_iso_cidata, f->iso);

    const char *bad_labels[] = {"", "ci/data", "cidata-but-far-too-long", "ci data"};
    fr_error e;
    for (size_t i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++) {
        assert_int_equal(hpc_seed_write_iso(f->iso, bad_labels[i], nocloud, 2, &e), FR_EINVAL);
        assert_string_equal(e.where, "label");
        assert_nothing_written(f->iso);
    }
    assert_int_equal(hpc_seed_write_iso(f->iso, NULL, nocloud, 2, &e), FR_EINVAL);
    assert_nothing_written(f->iso);
}

static void test_raw_refuses_bad_input(void **state)
{
    fx *f = *state;
    check_bad_input(hpc_seed_write_raw, f->raw);
}

/* ---- raw layout ------------------------------------------------------- */

typedef struct got_files {
    size_t n;
    char name[HPC_SEED_MAX_FILES][HPC_SEED_NAME_MAX + 1];
    const uint8_t *data[HPC_SEED_MAX_FILES];
    size_t len[HPC_SEED_MAX_FILES];
    int stop_after; /* return 7 after this many calls; 0: never */
} got_files;

static int collect(void *ctx, const char *name, const void *data, size_t n)
{
    got_files *g = ctx;
    if (g->n == HPC_SEED_MAX_FILES) {
        return -100;
    }
    snprintf(g->name[g->n], sizeof(g->name[0]), "%s", name);
    g->data[g->n] = data;
    g->len[g->n] = n;
    g->n++;
    return g->stop_after > 0 && (int)g->n == g->stop_after ? 7 : 0;
}

static void raw_expect(const uint8_t *img, size_t len, const hpc_seed_file *files, size_t n)
{
    got_files g;
    memset(&g, 0, sizeof(g));
    fr_error e;
    assert_seed_ok(hpc_seed_read_raw(img, len, collect, &g, &e), e);
    assert_int_equal(g.n, n);
    for (size_t i = 0; i < g.n; i++) {
        assert_int_equal((size_t)(g.data[i] - img) % 512, 0);
        assert_true(g.data[i] - img >= 512);
        if (i > 0) {
            assert_true(strcmp(g.name[i - 1], g.name[i]) < 0); /* name order */
        }
        const hpc_seed_file *want = NULL;
        for (size_t j = 0; j < n; j++) {
            if (strcmp(files[j].name, g.name[i]) == 0) {
                want = &files[j];
            }
        }
        assert_non_null(want);
        assert_int_equal(g.len[i], want->len);
        if (want->len > 0) {
            assert_memory_equal(g.data[i], want->data, want->len);
        }
    }
}

static void test_raw_roundtrip(void **state)
{
    fx *f = *state;
    static const char vendor[] = "#cloud-config\n";
    hpc_seed_file files[] = {
        {"user-data", USER_DATA, sizeof(USER_DATA) - 1},
        {"meta-data", META_DATA, sizeof(META_DATA) - 1},
        {"network-config", NULL, 0},
        {"vendor-data", vendor, sizeof(vendor) - 1},
    };
    fr_error e;
    assert_seed_ok(hpc_seed_write_raw(f->raw, files, 4, &e), e);
    size_t len;
    uint8_t *img = slurp(f->raw, &len);
    assert_int_equal(len % 512, 0);
    assert_memory_equal(img, "FRSEED1\nmeta-data 512 ", 22);
    raw_expect(img, len, files, 4);
    /* Checking only, and a disk bigger than the seed. */
    assert_seed_ok(hpc_seed_read_raw(img, len, NULL, NULL, &e), e);
    uint8_t *bigger = calloc(1, len + 4096);
    assert_non_null(bigger);
    memcpy(bigger, img, len);
    raw_expect(bigger, len + 4096, files, 4);
    free(bigger);

    /* A non-zero return from the callback stops the walk. */
    got_files g;
    memset(&g, 0, sizeof(g));
    g.stop_after = 2;
    assert_int_equal(hpc_seed_read_raw(img, len, collect, &g, &e), 7);
    assert_int_equal(g.n, 2);
    free(img);

    /* No files at all: the header alone. */
    assert_seed_ok(hpc_seed_write_raw(f->raw, NULL, 0, &e), e);
    img = slurp(f->raw, &len);
    assert_int_equal(len, 512);
    raw_expect(img, len, NULL, 0);
    free(img);
}

static void test_raw_large(void **state)
{
    fx *f = *state;
    /* 16 files with 64-byte names need a header of more than one sector;
     * one file is as large as allowed. */
    char names[HPC_SEED_MAX_FILES][HPC_SEED_NAME_MAX + 1];
    hpc_seed_file files[HPC_SEED_MAX_FILES];
    uint8_t *big = malloc(HPC_SEED_FILE_MAX);
    assert_non_null(big);
    for (size_t j = 0; j < HPC_SEED_FILE_MAX; j++) {
        big[j] = (uint8_t)(j * 2654435761u >> 24);
    }
    static const uint8_t small[600] = {1, 2, 3};
    for (size_t i = 0; i < HPC_SEED_MAX_FILES; i++) {
        memset(names[i], 'k', HPC_SEED_NAME_MAX);
        names[i][HPC_SEED_NAME_MAX] = '\0';
        snprintf(names[i] + HPC_SEED_NAME_MAX - 3, 4, "-%02zu", i);
        files[i] = (hpc_seed_file){names[i], i == 5 ? big : small, i == 5 ? HPC_SEED_FILE_MAX : i};
    }
    fr_error e;
    assert_seed_ok(hpc_seed_write_raw(f->raw, files, HPC_SEED_MAX_FILES, &e), e);
    size_t len;
    uint8_t *img = slurp(f->raw, &len);
    assert_int_equal(len % 512, 0);
    const uint8_t *nul = memchr(img, 0, len);
    assert_non_null(nul);
    assert_true(nul - img > 512);
    assert_true(nul - img < HPC_SEED_RAW_HEADER_MAX);
    raw_expect(img, len, files, HPC_SEED_MAX_FILES);
    free(img);
    free(big);
}

/* A raw seed of total bytes whose header text is hdr. */
static uint8_t *raw_craft(const char *hdr, size_t total)
{
    uint8_t *b = calloc(1, total);
    assert_non_null(b);
    memcpy(b, hdr, strlen(hdr));
    return b;
}

static void expect_proto(const uint8_t *img, size_t len, const char *why)
{
    got_files g;
    memset(&g, 0, sizeof(g));
    fr_error e;
    fr_error_clear(&e);
    int rv = hpc_seed_read_raw(img, len, collect, &g, &e);
    if (rv != FR_EPROTO) {
        fail_msg("%s: expected FR_EPROTO, got %d", why, rv);
    }
    assert_int_equal(e.code, FR_EPROTO);
    assert_true(strlen(e.message) > 0);
    assert_int_equal(g.n, 0); /* nothing is handed out from a bad seed */
}

static void test_raw_damaged(void **state)
{
    fx *f = *state;
    fr_error e;
    assert_seed_ok(hpc_seed_write_raw(f->raw, nocloud, 2, &e), e);
    size_t len;
    uint8_t *img = slurp(f->raw, &len);
    assert_int_equal(len, 512 * 3);

    expect_proto(img, 0, "empty");
    expect_proto(NULL, 0, "NULL");
    expect_proto(img, 100, "truncated in the header");
    expect_proto(img, 512, "truncated after the header");
    expect_proto(img, 1024 + 10, "truncated in the last file");

    img[0] = 'X';
    expect_proto(img, len, "bad magic");
    img[0] = 'F';
    img[300] = 'x';
    expect_proto(img, len, "garbage in the header padding");
    img[300] = 0;
    raw_expect(img, len, nocloud, 2); /* repaired */
    free(img);

    uint8_t *nonul = raw_craft("FRSEED1\n", 4096);
    memset(nonul + 8, 'a', 4096 - 8);
    expect_proto(nonul, 4096, "no NUL in the header");
    free(nonul);

    static const struct {
        const char *hdr;
        size_t total;
        const char *why;
    } bad[] = {
        {"FRSEED1\nuser-data 512 100000\n", 1024, "offset past the end"},
        {"FRSEED1\nuser-data 99999999999 1\n", 1024, "offset too long"},
        {"FRSEED1\nuser-data 4096 0\n", 1024, "empty file past the end"},
        {"FRSEED1\na 512 600\nb 1024 10\n", 2048, "overlap"},
        {"FRSEED1\na 512 10\nb 512 10\n", 2048, "same offset"},
        {"FRSEED1\na 513 10\n", 2048, "unaligned offset"},
        {"FRSEED1\na 0 10\n", 2048, "offset in the header"},
        {"FRSEED1\na 0512 10\n", 2048, "leading zero"},
        {"FRSEED1\na 512 -1\n", 2048, "negative length"},
        {"FRSEED1\na 512 16777217\n", 17u << 20, "file over the limit"},
        {"FRSEED1\na 512 10", 2048, "no final newline"},
        {"FRSEED1\na  512 10\n", 2048, "two spaces"},
        {"FRSEED1\na 512 10 \n", 2048, "trailing space"},
        {"FRSEED1\na 512\n", 2048, "no length"},
        {"FRSEED1\n../x 512 10\n", 2048, "bad name"},
        {"FRSEED1\nA 512 10\n", 2048, "upper-case name"},
        {"FRSEED1\n 512 10\n", 2048, "empty name"},
        {"FRSEED1\n.. 512 10\n", 2048, "dot-dot"},
        {"FRSEED1\na 512 10\na 1024 10\n", 2048, "name twice"},
        {"FRSEED1\r\na 512 10\n", 2048, "bad magic line"},
        {"FRSEED2\na 512 10\n", 2048, "other version"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t *b = raw_craft(bad[i].hdr, bad[i].total);
        expect_proto(b, bad[i].total, bad[i].why);
        free(b);
    }

    /* 17 entries is one too many (each a zero-length file). */
    char hdr[HPC_SEED_RAW_HEADER_MAX];
    size_t o = (size_t)snprintf(hdr, sizeof(hdr), "FRSEED1\n");
    for (int i = 0; i <= HPC_SEED_MAX_FILES; i++) {
        o += (size_t)snprintf(hdr + o, sizeof(hdr) - o, "f%d 512 0\n", i);
    }
    uint8_t *b = raw_craft(hdr, 1024);
    expect_proto(b, 1024, "17 files");
    free(b);

    /* A well-formed crafted header is accepted: files out of order,
     * touching but not overlapping, an empty one anywhere. */
    b = raw_craft("FRSEED1\nz 1024 512\na 512 512\ne 1536 0\n", 1536);
    got_files g;
    memset(&g, 0, sizeof(g));
    assert_seed_ok(hpc_seed_read_raw(b, 1536, collect, &g, &e), e);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.name[0], "z");
    assert_int_equal(g.len[2], 0);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_iso_blkid, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_iso_parse, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_iso_reproducible_and_replaced, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_iso_many_files, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_iso_isoinfo, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_iso_mount, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_iso_refuses_bad_input, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_raw_refuses_bad_input, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_raw_roundtrip, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_raw_large, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_raw_damaged, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests_name("hpc_seed", tests, NULL, NULL);
}
