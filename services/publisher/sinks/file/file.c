/* file: metrics as JSON lines in a local file, with snap's file publisher's
 * fields (docs/plugins/file.md), one object per metric per line as
 * snapjson.h writes it (snap wrote one JSON array per publish call).
 *
 * Cost: each write call formats every line of every batch into one buffer
 * (snapjson.c says how a line is made fast) and writes it with one
 * write(2) per MiB.
 *
 * Delivery is at least once: write returns 0 once the lines are written
 * with write(2) (and fdatasync'd with `fsync`); a batch the engine replays
 * after a crash or a failed write can appear twice. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fresco/log.h"
#include "fresco/pipeline.h"
#include "snapjson.h"

#define FS_FLUSH (1u << 20) /* bytes gathered before a write(2) */
#define FS_KEEP  (4u << 20) /* a buffer grown past this is freed after the call */

/* ---- config ----------------------------------------------------------- */

typedef struct file_config {
    char *file;
    int64_t max_size;
    int64_t max_files;
    bool fsync;
} file_config;

static const fr_cfg_field file_policy[] = {
    {"file", FR_CFG_STRING, NULL, offsetof(file_config, file),
     "the file to append to (snap's key; required); created when missing", 0, 0, NULL},
    {"max_size", FR_CFG_SIZE, "0", offsetof(file_config, max_size),
     "rotate the file before it grows past this size (0: never)", 0, 0, NULL},
    {"max_files", FR_CFG_INT, "5", offsetof(file_config, max_files),
     "rotated files kept, as <file>.1 (newest) to <file>.N (0: none kept)", 0, 1000, NULL},
    {"fsync", FR_CFG_BOOL, "false", offsetof(file_config, fsync),
     "fdatasync the file before a write counts as done (survives power loss)", 0, 0, NULL},
};

/* ---- state ------------------------------------------------------------ */

typedef struct file_sink {
    const file_config *cfg;
    const char *id;
    int fd; /* -1 after a rotation that could not open the new file */
    uint64_t size;
    bool regular;      /* a regular file (a device or pipe is never rotated) */
    bool need_newline; /* the file ends inside a line (a crash, a failed write) */
    fr_buf out;
    snapjson *json;
    uint64_t lines, bytes, rotations, write_errors;
} file_sink;

/* ---- the file --------------------------------------------------------- */

static int file_open(file_sink *fs, fr_error *err)
{
    const char *path = fs->cfg->file;
    fs->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fs->fd < 0) {
        return fr_error_set(err, FR_EIO, "file", "cannot open '%s' for appending: %s", path,
                            strerror(errno));
    }
    struct stat sb;
    int st = fstat(fs->fd, &sb);
    int e = errno;
    if (st != 0 || !(S_ISREG(sb.st_mode) || S_ISCHR(sb.st_mode) || S_ISFIFO(sb.st_mode))) {
        close(fs->fd);
        fs->fd = -1;
        if (st != 0) {
            return fr_error_set(err, FR_EIO, "file", "cannot inspect '%s': %s", path, strerror(e));
        }
        return fr_error_set(err, FR_EIO, "file",
                            "'%s' is not a file, a device or a pipe to write lines to", path);
    }
    fs->regular = S_ISREG(sb.st_mode);
    fs->size = fs->regular ? (uint64_t)sb.st_size : 0;
    fs->need_newline = false;
    if (fs->size > 0) {
        int rfd = open(path, O_RDONLY | O_CLOEXEC);
        char last = '\n';
        if (rfd >= 0) {
            if (pread(rfd, &last, 1, (off_t)fs->size - 1) != 1) {
                last = '\n';
            }
            close(rfd);
        }
        fs->need_newline = last != '\n'; /* a line cut short: start on a new one */
    }
    return 0;
}

/* Writes out[0, len) to the file. */
static int file_put(file_sink *fs, size_t len, fr_error *err)
{
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fs->fd, fs->out.data + done, len - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            fs->size += done;
            fs->bytes += done;
            fs->write_errors++;
            if (done > 0 && fs->out.data[done - 1] != '\n') {
                fs->need_newline = true;
            }
            return fr_error_set(err, FR_EIO, "file", "write to '%s' failed: %s", fs->cfg->file,
                                strerror(e));
        }
        done += (size_t)w;
    }
    fs->size += len;
    fs->bytes += len;
    return 0;
}

/* file -> file.1 -> ... -> file.N, then a new empty file. */
static int file_rotate(file_sink *fs, fr_error *err)
{
    const char *path = fs->cfg->file;
    if (fs->cfg->fsync && fdatasync(fs->fd) != 0) {
        return fr_error_set(err, FR_EIO, "file", "fdatasync '%s': %s", path, strerror(errno));
    }
    close(fs->fd);
    fs->fd = -1;
    char from[PATH_MAX + 16], to[PATH_MAX + 16];
    int rv = 0;
    if (fs->cfg->max_files == 0) {
        if (unlink(path) != 0 && errno != ENOENT) {
            rv = errno;
        }
    } else {
        for (int64_t i = fs->cfg->max_files - 1; i >= 1 && rv == 0; i--) {
            snprintf(from, sizeof(from), "%s.%" PRId64, path, i);
            snprintf(to, sizeof(to), "%s.%" PRId64, path, i + 1);
            if (rename(from, to) != 0 && errno != ENOENT) {
                rv = errno;
            }
        }
        snprintf(to, sizeof(to), "%s.1", path);
        if (rv == 0 && rename(path, to) != 0) {
            rv = errno;
        }
    }
    if (rv != 0) {
        fr_error_set(err, FR_EIO, "file", "cannot rotate '%s': %s", path, strerror(rv));
        file_open(fs, NULL); /* go on in the old file */
        return FR_EIO;
    }
    fs->rotations++;
    return file_open(fs, err);
}

/* ---- the sink --------------------------------------------------------- */

static void file_destroy(void *state)
{
    file_sink *fs = state;
    if (fs == NULL) {
        return;
    }
    if (fs->fd >= 0) {
        close(fs->fd);
    }
    fr_buf_free(&fs->out);
    snapjson_destroy(fs->json);
    free(fs);
}

static int file_init(void **state, const void *config, const fr_sink_info *info, fr_error *err)
{
    const file_config *cfg = config;
    *state = NULL;
    if (cfg->file == NULL || cfg->file[0] == '\0') {
        return fr_error_set(err, FR_EMISSING, "file",
                            "key 'file' is required: the path of the file to write");
    }
    file_sink *fs = calloc(1, sizeof(*fs));
    if (fs == NULL) {
        return fr_error_set(err, FR_ENOMEM, "", "out of memory");
    }
    fs->cfg = cfg;
    fs->id = info != NULL && info->id != NULL ? info->id : "file";
    fs->json = snapjson_new();
    if (fs->json == NULL) {
        file_destroy(fs);
        return fr_error_set(err, FR_ENOMEM, "", "out of memory");
    }
    int rv = file_open(fs, err);
    if (rv != 0) {
        file_destroy(fs);
        return FR_ECONFIG;
    }
    *state = fs;
    return 0;
}

static int file_write(void *state, fr_batch *const *batches, size_t n, fr_error *err)
{
    file_sink *fs = state;
    if (fs->fd < 0) {
        int rv = file_open(fs, err);
        if (rv != 0) {
            fs->write_errors++;
            return rv;
        }
    }
    uint64_t max = fs->cfg->max_size > 0 && fs->regular ? (uint64_t)fs->cfg->max_size : 0;
    fr_buf_reset(&fs->out);
    if (fs->need_newline && fr_buf_append(&fs->out, "\n", 1) != 0) {
        return fr_error_set(err, FR_ENOMEM, "", "out of memory");
    }
    fs->need_newline = false;
    int rv = 0;
    uint64_t lines = 0;
    for (size_t b = 0; b < n && rv == 0; b++) {
        const fr_batch *bt = batches[b];
        rv = snapjson_batch(fs->json, bt);
        for (uint32_t i = 0; i < bt->nmetrics && rv == 0; i++) {
            size_t start = fs->out.len;
            if ((rv = snapjson_line(fs->json, &bt->metrics[i], &fs->out)) != 0) {
                break;
            }
            lines++;
            if (max > 0 && fs->size + fs->out.len > max && fs->size + start > 0) {
                /* the line goes into a new file: what came before, and
                 * the old file, are done */
                if ((start > 0 && (rv = file_put(fs, start, err)) != 0) ||
                    (rv = file_rotate(fs, err)) != 0) {
                    break;
                }
                memmove(fs->out.data, fs->out.data + start, fs->out.len - start);
                fs->out.len -= start;
            }
            if (fs->out.len >= FS_FLUSH) {
                if ((rv = file_put(fs, fs->out.len, err)) != 0) {
                    break;
                }
                fr_buf_reset(&fs->out);
            }
        }
        if (rv == FR_ENOMEM) { /* from snapjson; the file's errors are FR_EIO */
            fr_error_set(err, rv, "", "out of memory");
        }
    }
    if (rv == 0 && fs->out.len > 0) {
        rv = file_put(fs, fs->out.len, err);
    }
    if (rv == 0 && fs->cfg->fsync && fdatasync(fs->fd) != 0) {
        rv =
            fr_error_set(err, FR_EIO, "file", "fdatasync '%s': %s", fs->cfg->file, strerror(errno));
    }
    if (fs->out.cap > FS_KEEP) {
        fr_buf_free(&fs->out);
    }
    if (rv != 0) {
        fr_warn("file", "%s: %s", fs->id, err->message);
        return rv == FR_ENOMEM ? FR_ENOMEM : FR_EIO;
    }
    fs->lines += lines;
    return 0;
}

static void file_stats(void *state, msgpack_packer *pk)
{
    file_sink *fs = state;
    msgpack_pack_map(pk, 5);
    const struct {
        const char *k;
        uint64_t v;
    } kv[] = {{"lines", fs->lines},
              {"bytes", fs->bytes},
              {"file_bytes", fs->size},
              {"rotations", fs->rotations},
              {"write_errors", fs->write_errors}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) {
        msgpack_pack_str_with_body(pk, kv[i].k, strlen(kv[i].k));
        msgpack_pack_uint64(pk, kv[i].v);
    }
}

const fr_sink_plugin fr_sink_file = {
    .abi = FR_SINK_ABI,
    .name = "file",
    .version = 1,
    .description = "metrics as JSON lines (snap's file publisher fields) in a local file, "
                   "rotated by size",
    .config = {file_policy, sizeof(file_policy) / sizeof(file_policy[0]), sizeof(file_config), NULL,
               NULL},
    .init = file_init,
    .write = file_write,
    .destroy = file_destroy,
    .stats = file_stats,
};
