/* pipeline.put / pipeline.remove: requests, fan-out to every replica, and
 * a stage's saved copy of its tasks. */
#include "fresco/pipectl.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fresco/ctl.h"
#include "fresco/log.h"

#define TASK_ID_MAX 64

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) != 0 || msgpack_pack_str_body(pk, s, n) != 0 ? FR_ENOMEM : 0;
}

bool fr_task_id_valid(const char *id)
{
    size_t n = 0;
    for (; id != NULL && id[n] != '\0'; n++) {
        char c = id[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == '_';
        if (!ok || n >= TASK_ID_MAX) {
            return false;
        }
    }
    return n > 0 && !(n <= 2 && id[0] == '.' && (n == 1 || id[1] == '.'));
}

int fr_pipeline_put_pack(const char *task, const char *name, const fr_manifest *m, fr_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, fr_buf_msgpack_write);
    if (msgpack_pack_map(&pk, 3) != 0 || pack_str(&pk, "task") != 0 || pack_str(&pk, task) != 0 ||
        pack_str(&pk, "name") != 0 || pack_str(&pk, name != NULL ? name : "") != 0 ||
        pack_str(&pk, "manifest") != 0) {
        return FR_ENOMEM;
    }
    return fr_manifest_pack(m, &pk);
}

int fr_pipeline_remove_pack(const char *task, fr_buf *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, fr_buf_msgpack_write);
    if (msgpack_pack_map(&pk, 1) != 0 || pack_str(&pk, "task") != 0 || pack_str(&pk, task) != 0) {
        return FR_ENOMEM;
    }
    return 0;
}

int fr_pipeline_put_unpack(const fr_node *args, const char **task, const char **name,
                           fr_manifest **m, fr_error *err)
{
    *m = NULL;
    fr_error_clear(err);
    if (fr_node_get_str(args, "task", task) != 0) {
        return fr_error_set(err, FR_EMISSING, "task", "\"task\" (a string) is missing");
    }
    if (!fr_task_id_valid(*task)) {
        return fr_error_set(err, FR_EINVAL, "task",
                            "task id '%.64s' is not 1-64 bytes of letters, digits, '.', '-', '_'",
                            *task);
    }
    *name = "";
    if (fr_node_get(args, "name") != NULL && fr_node_get_str(args, "name", name) != 0) {
        return fr_error_set(err, FR_ETYPE, "name", "\"name\" must be a string");
    }
    const fr_node *mn = fr_node_get(args, "manifest");
    if (mn == NULL) {
        return fr_error_set(err, FR_EMISSING, "manifest", "\"manifest\" (a map) is missing");
    }
    return fr_manifest_unpack(mn, m, err);
}

/* ---- fan-out ---- */

struct fr_ctl_fanout {
    size_t n;
    fr_ctl_client **cli;
    char **url;
};

int fr_ctl_fanout_open(fr_ctl_fanout **out, const char *const *urls, size_t n,
                       const fr_tls_conf *tls)
{
    *out = NULL;
    fr_ctl_fanout *f = calloc(1, sizeof(*f));
    if (f == NULL || (n > 0 && ((f->cli = calloc(n, sizeof(*f->cli))) == NULL ||
                                (f->url = calloc(n, sizeof(*f->url))) == NULL))) {
        fr_ctl_fanout_close(f);
        return FR_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        f->n = i + 1;
        if ((f->url[i] = strdup(urls[i])) == NULL) {
            fr_ctl_fanout_close(f);
            return FR_ENOMEM;
        }
        int rv = fr_ctl_client_open(&f->cli[i], urls[i], tls);
        if (rv != 0) {
            fr_ctl_fanout_close(f);
            return rv;
        }
    }
    *out = f;
    return 0;
}

size_t fr_ctl_fanout_count(const fr_ctl_fanout *f)
{
    return f != NULL ? f->n : 0;
}

void fr_ctl_fanout_close(fr_ctl_fanout *f)
{
    if (f == NULL) {
        return;
    }
    for (size_t i = 0; i < f->n; i++) {
        fr_ctl_client_close(f->cli != NULL ? f->cli[i] : NULL);
        free(f->url != NULL ? f->url[i] : NULL);
    }
    free(f->cli);
    free(f->url);
    free(f);
}

int fr_ctl_fanout_call(fr_ctl_fanout *f, const char *op, const void *args, size_t len,
                       int timeout_ms, size_t *accepted, char *code, fr_error *err)
{
    fr_error_clear(err);
    size_t ok = 0;
    bool refused = false;
    char missed[256] = "";
    size_t moff = 0;
    for (size_t i = 0; f != NULL && i < f->n; i++) {
        fr_ctl_result res;
        int rv = fr_ctl_call(f->cli[i], op, args, len, timeout_ms, &res);
        if (rv == 0) {
            ok++;
        } else if (rv == FR_EREMOTE && !refused) {
            /* The refusal is about the request, not the replica: its words
             * as they are (the log names who said it). */
            refused = true;
            fr_debug("pipelines", "%s refused %s: %s", f->url[i], op, res.error_message);
            fr_error_set(err, FR_EREMOTE, res.error_where, "%s", res.error_message);
            if (code != NULL) {
                snprintf(code, 48, "%s", res.error_code);
            }
        } else if (rv != FR_EREMOTE && moff < sizeof(missed)) {
            int w = snprintf(missed + moff, sizeof(missed) - moff, "%s%s (%s)", moff ? ", " : "",
                             f->url[i], res.error_message[0] ? res.error_message : fr_strerror(rv));
            moff += w > 0 ? (size_t)w : 0;
        }
        fr_ctl_result_free(&res);
    }
    if (accepted != NULL) {
        *accepted = ok;
    }
    if (refused) {
        return FR_EREMOTE;
    }
    if (ok == 0) {
        if (code != NULL) {
            snprintf(code, 48, "%s", "unavailable");
        }
        return fr_error_set(err, FR_ETIMEDOUT, NULL, "%s: nobody answered: %s", op,
                            f != NULL && f->n > 0 ? missed : "no address configured");
    }
    return 0;
}

/* ---- removed tasks ---- */

bool fr_tombstones_has(const fr_tombstones *t, const char *task)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i], task) == 0) {
            return true;
        }
    }
    return false;
}

void fr_tombstones_set(fr_tombstones *t, const char *task, bool on)
{
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i], task) == 0) {
            if (!on) {
                t->v[i][0] = '\0';
            }
            return;
        }
    }
    char *c = on ? strdup(task) : NULL;
    if (c == NULL) {
        return;
    }
    size_t i = t->n < FR_TOMBSTONES ? t->n++ : t->next++ % FR_TOMBSTONES;
    free(t->v[i]);
    t->v[i] = c;
}

void fr_tombstones_free(fr_tombstones *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i]);
    }
    *t = (fr_tombstones){.n = 0};
}

/* ---- the stage's saved tasks ---- */

static int store_path(char *buf, size_t cap, const char *dir, const char *task, const char *ext)
{
    int n = snprintf(buf, cap, "%s/pipelines%s%s%s", dir, task != NULL ? "/" : "",
                     task != NULL ? task : "", ext);
    return n > 0 && (size_t)n < cap ? 0 : FR_ETOOBIG;
}

int fr_pipeline_store_save(const char *dir, const char *task, const void *args, size_t len,
                           fr_error *err)
{
    char folder[4096], path[4096], tmp[4096];
    if (!fr_task_id_valid(task) || store_path(folder, sizeof(folder), dir, NULL, "") != 0 ||
        store_path(path, sizeof(path), dir, task, ".mp") != 0 ||
        store_path(tmp, sizeof(tmp), dir, task, ".mp.tmp") != 0) {
        return fr_error_set(err, FR_EINVAL, "task", "cannot name a file after task '%.64s'", task);
    }
    if ((mkdir(dir, 0700) != 0 && errno != EEXIST) ||
        (mkdir(folder, 0700) != 0 && errno != EEXIST)) {
        return fr_error_set(err, FR_EIO, folder, "cannot create %s: %s", folder, strerror(errno));
    }
    FILE *f = fopen(tmp, "wb");
    if (f == NULL) {
        return fr_error_set(err, FR_EIO, tmp, "cannot write %s: %s", tmp, strerror(errno));
    }
    bool ok = fwrite(args, 1, len, f) == len;
    ok = fflush(f) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return fr_error_set(err, FR_EIO, path, "cannot write %s: %s", path, strerror(e));
    }
    return 0;
}

int fr_pipeline_store_delete(const char *dir, const char *task)
{
    char path[4096];
    if (!fr_task_id_valid(task) || store_path(path, sizeof(path), dir, task, ".mp") != 0) {
        return FR_EINVAL;
    }
    return unlink(path) == 0 || errno == ENOENT ? 0 : FR_EIO;
}

static void *file_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n == cap) {
            char *nb = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            break;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

void fr_pipeline_store_load(const char *dir,
                            void (*fn)(void *arg, const char *file, const fr_node *args), void *arg)
{
    char folder[4096];
    if (dir == NULL || dir[0] == '\0' || store_path(folder, sizeof(folder), dir, NULL, "") != 0) {
        return;
    }
    DIR *d = opendir(folder);
    if (d == NULL) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl < 4 || strcmp(e->d_name + nl - 3, ".mp") != 0) {
            continue;
        }
        char path[4096];
        if (snprintf(path, sizeof(path), "%s/%s", folder, e->d_name) >= (int)sizeof(path)) {
            continue;
        }
        size_t len = 0;
        void *data = file_read(path, &len);
        fr_doc doc = {0};
        fr_error err;
        fr_error_clear(&err);
        if (data == NULL || fr_doc_decode(data, len, &doc, &err) != 0) {
            char bad[4200];
            snprintf(bad, sizeof(bad), "%s.bad", path);
            fr_error("pipelines", "%s does not decode (%s%s%s), moved to %s", path, err.where,
                     err.where[0] ? ": " : "", data == NULL ? strerror(errno) : err.message, bad);
            rename(path, bad);
        } else {
            fn(arg, path, doc.root);
        }
        fr_doc_free(&doc);
        free(data);
    }
    closedir(d);
}
