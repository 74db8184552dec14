/* fresco qsub: plain jobs pass through, VM jobs are checked, prepared and
 * submitted. */
#include "job.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "fresco/buf.h"
#include "gen.h"
#include "qsub.h"

int hpc_ident_self(hpc_ident_buf *b, fr_error *e)
{
    memset(b, 0, sizeof *b);
    b->id.uid = getuid();
    b->id.gid = getgid();
    struct passwd *pw = getpwuid(b->id.uid);
    struct group *gr = getgrgid(b->id.gid);
    if (pw == NULL || gr == NULL) {
        return fr_error_set(e, FR_ENOTFOUND, "uid", "uid %u or gid %u has no name",
                            (unsigned)b->id.uid, (unsigned)b->id.gid);
    }
    snprintf(b->user, sizeof b->user, "%s", pw->pw_name);
    snprintf(b->group, sizeof b->group, "%s", gr->gr_name);
    b->id.user = b->user;
    b->id.group = b->group;
    return 0;
}

static int rmtree_at(int dfd, const char *name)
{
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return unlinkat(dfd, name, 0) == 0 || errno == ENOENT ? 0 : -1;
    }
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            rmtree_at(fd, de->d_name);
        }
    }
    closedir(d);
    return unlinkat(dfd, name, AT_REMOVEDIR) == 0 || errno == ENOENT ? 0 : -1;
}

int hpc_rmtree(const char *path)
{
    return rmtree_at(AT_FDCWD, path);
}

static int write_str(const char *dir, const char *name, const void *data, size_t len, mode_t mode,
                     fr_error *e)
{
    char path[HPC_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return hpc_write_file(path, data, len, mode, e);
}

/* vcpus x vms_per_node plus the host's reserve, as Torque resources */
static void raise_resources(const hpc_conf *c, const hpc_vmspec *s, hpc_resources *r)
{
    if (r->nodes <= 0) {
        r->nodes = 1;
    }
    int64_t cores = s->vcpus * s->vms_per_node + c->host_cores + (s->iocm ? s->iocm_max_cores : 0);
    if (r->ppn < cores) {
        r->ppn = cores;
    }
    int64_t mem = (s->ram_mb << 20) * s->vms_per_node + c->host_ram;
    if (r->mem < mem) {
        r->mem = mem;
    }
}

static int generate_all(const hpc_conf *c, const hpc_vmspec *s, const hpc_ident *who,
                        const hpc_resources *r, const char *dir, size_t *files, fr_error *e)
{
    char gen[PATH_MAX + 8];
    snprintf(gen, sizeof gen, "%s/gen", dir);
    if (mkdir(gen, 0700) != 0) {
        return fr_error_set(e, FR_EIO, gen, "mkdir: %s", strerror(errno));
    }
    extern char **environ;
    int rv = 0;
    for (int64_t n = 0; n < r->nodes && rv == 0; n++) {
        char node[32], ndir[PATH_MAX + 48];
        snprintf(node, sizeof node, "node%" PRId64, n);
        snprintf(ndir, sizeof ndir, "%s/%s", gen, node);
        if (mkdir(ndir, 0700) != 0) {
            return fr_error_set(e, FR_EIO, ndir, "mkdir: %s", strerror(errno));
        }
        hpc_job j = {.id = "pending",
                     .user = who->user,
                     .uid = who->uid,
                     .gid = who->gid,
                     .group = who->group,
                     .node = node,
                     /* where the agent puts the copies (agent.c) */
                     .img_dir = strcmp(s->fs_type, "ramdisk") == 0 ? "/dev/shm/fresco-pending"
                                                                   : c->run_dir,
                     .env = environ,
                     .domain_type = "kvm"};
        hpc_gen_stats st = {0};
        rv = hpc_gen_node(c, s, &j, ndir, &st, e);
        *files += st.files;
    }
    return rv;
}

int hpc_submit(const hpc_conf *c, int argc, char *const *argv, const hpc_ident *who,
               const char *gf_dir, hpc_submit_result *res, fr_error *e)
{
    memset(res, 0, sizeof *res);
    hpc_qsub q = {0};
    hpc_resources r = {0};
    char **cmd = NULL;
    int rv = hpc_qsub_parse_args(&q, argc, argv, e);
    if (rv != 0) {
        goto out;
    }
    if (q.list) {
        res->kind = HPC_SUBMIT_LIST;
        goto out;
    }
    if (q.nvm == 0 && !q.gf && q.script == NULL) {
        res->kind = HPC_SUBMIT_PLAIN; /* stdin script without -vm: untouched */
        goto out;
    }
    if ((rv = hpc_qsub_read_script(&q, e)) != 0) {
        goto out;
    }
    if (q.nvm == 0) {
        if (q.gf) {
            rv = fr_error_set(e, FR_EINVAL, "-gf", "-gf needs a VM job: give -vm key=value");
        } else {
            res->kind = HPC_SUBMIT_PLAIN;
        }
        goto out;
    }
    res->quiet = hpc_qsub_has(&q, 'z');
    /* a VM job's options are written one per line (submit) and reach the
     * batch system as arguments: no control characters in them */
    for (size_t i = 0; i < q.nopts; i++) {
        const char *v = q.opts[i].value;
        for (size_t k = 0; v != NULL && v[k] != '\0'; k++) {
            if ((unsigned char)v[k] < 0x20 || v[k] == 0x7f) {
                char where[256];
                if (q.opts[i].line > 0) {
                    snprintf(where, sizeof where, "%.200s:%d: -%c", q.script ? q.script : "<stdin>",
                             q.opts[i].line, q.opts[i].letter);
                } else {
                    snprintf(where, sizeof where, "-%c", q.opts[i].letter);
                }
                rv = fr_error_set(e, FR_EINVAL, where,
                                  "option -%c: byte 0x%02x at %zu is a control character "
                                  "(newline, tab, ...): refused",
                                  q.opts[i].letter, (unsigned char)v[k], k);
                goto out;
            }
        }
    }
    hpc_vmspec *s = &res->spec;
    for (size_t i = 0; i < q.nvm && rv == 0; i++) {
        char where[HPC_PATH_MAX + 32];
        if (q.vm_line[i] > 0) {
            snprintf(where, sizeof where, "%s:%d: -vm", q.script ? q.script : "<stdin>",
                     q.vm_line[i]);
        } else {
            snprintf(where, sizeof where, "-vm");
        }
        rv = hpc_vmspec_apply(s, q.vm[i], where, e);
    }
    if (rv != 0 || (rv = hpc_vmspec_resolve(s, c, who->uid, who->gid, e)) != 0) {
        goto out;
    }
    if ((rv = hpc_resources_parse(&q, &r, e)) != 0) {
        goto out;
    }
    raise_resources(c, s, &r);
    if (q.gf && !c->allow_generate_files) {
        rv = fr_error_set(e, FR_EINVAL, "-gf",
                          "-gf is switched off by the admin (allow_generate_files)");
        goto out;
    }
    /* the job folder */
    if (q.gf) {
        if (gf_dir != NULL) {
            snprintf(res->dir, sizeof res->dir, "%s", gf_dir);
            if (mkdir(res->dir, 0700) != 0) {
                rv = fr_error_set(e, FR_EIO, res->dir, "mkdir: %s", strerror(errno));
                res->dir[0] = '\0';
                goto out;
            }
        } else {
            snprintf(res->dir, sizeof res->dir, "fresco-gf-XXXXXX");
            if (mkdtemp(res->dir) == NULL) {
                rv = fr_error_set(e, FR_EIO, "-gf", "cannot make a folder here: %s",
                                  strerror(errno));
                res->dir[0] = '\0';
                goto out;
            }
        }
    } else {
        snprintf(res->dir, sizeof res->dir, "%s/job-XXXXXX", c->spool);
        if (mkdtemp(res->dir) == NULL) {
            rv = fr_error_set(e, FR_EIO, c->spool, "cannot make a job folder in the spool: %s",
                              strerror(errno));
            res->dir[0] = '\0';
            goto out;
        }
    }
    char req[8192];
    int n = hpc_vmspec_format(s, req, sizeof req);
    if (n < 0) {
        rv = fr_error_set(e, n, "request", "request too long");
        goto fail;
    }
    if ((rv = write_str(res->dir, "request", req, (size_t)n, 0644, e)) != 0 ||
        (rv = write_str(res->dir, "script", q.script_text, q.script_len, 0700, e)) != 0) {
        goto fail;
    }
    char abs_dir[PATH_MAX];
    if (realpath(res->dir, abs_dir) == NULL) {
        rv = fr_error_set(e, FR_EIO, res->dir, "realpath: %s", strerror(errno));
        goto fail;
    }
    static const char head[] =
        "#!/bin/sh\n# fresco VM job: the node's fresco-hpc agent boots the job's VMs,\n"
        "# the job script runs in the first one, the VMs go when it ends.\n"
        "exec ";
    fr_buf w = FR_BUF_INIT;
    rv = fr_buf_append(&w, head, sizeof head - 1);
    rv = rv ? rv : hpc_shell_quote(&w, c->fresco_bin);
    rv = rv ? rv : fr_buf_puts(&w, " hpc job-run ");
    rv = rv ? rv : hpc_shell_quote(&w, abs_dir);
    rv = rv ? rv : fr_buf_puts(&w, " \"$@\"\n");
    if (rv == 0) {
        rv = write_str(res->dir, "job.sh", w.data, w.len, 0755, e);
    }
    fr_buf_free(&w);
    if (rv != 0) {
        goto fail;
    }
    res->files = 3;
    char wrapper[PATH_MAX + 8];
    snprintf(wrapper, sizeof wrapper, "%s/job.sh", abs_dir);
    if ((rv = hpc_backend_command(c, &q, &r, wrapper, &cmd, e)) != 0) {
        goto fail;
    }
    fr_buf sub = FR_BUF_INIT;
    for (size_t i = 0; cmd[i] != NULL && rv == 0; i++) {
        rv = fr_buf_append(&sub, cmd[i], strlen(cmd[i]));
        rv = rv ? rv : fr_buf_puts(&sub, "\n");
    }
    rv = rv ? rv : write_str(res->dir, "submit", sub.data, sub.len, 0644, e);
    fr_buf_free(&sub);
    res->files++;
    if (rv != 0 || (rv = generate_all(c, s, who, &r, abs_dir, &res->files, e)) != 0) {
        goto fail;
    }
    if (q.gf) {
        res->kind = HPC_SUBMIT_GENERATED;
        goto out;
    }
    if ((rv = hpc_backend_submit(c, cmd, res->id, sizeof res->id, e)) != 0) {
        goto fail;
    }
    size_t idl = strlen(res->id);
    res->id[idl] = '\n';
    rv = write_str(res->dir, "batch-id", res->id, idl + 1, 0644, e);
    res->id[idl] = '\0';
    /* the job is in: a lost batch-id file only costs the registry a lookup */
    rv = 0;
    res->kind = HPC_SUBMIT_VM;
    goto out;
fail:
    if (res->dir[0] != '\0') {
        hpc_rmtree(res->dir);
        res->dir[0] = '\0';
    }
out:
    hpc_argv_free(cmd);
    hpc_resources_free(&r);
    hpc_qsub_free(&q);
    return rv;
}

static int img_cmp(const void *a, const void *b)
{
    return strcmp(((const hpc_image *)a)->name, ((const hpc_image *)b)->name);
}

int hpc_images_list(const hpc_conf *c, int (*cb)(void *ctx, const hpc_image *img), void *ctx,
                    fr_error *e)
{
    DIR *d = opendir(c->image_pool);
    if (d == NULL) {
        return fr_error_set(e, FR_EIO, c->image_pool, "image pool: %s", strerror(errno));
    }
    hpc_image *v = NULL;
    size_t n = 0;
    int rv = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && rv == 0) {
        size_t l = strlen(de->d_name);
        bool ext = (l > 4 && strcmp(de->d_name + l - 4, ".img") == 0) ||
                   (l > 6 && strcmp(de->d_name + l - 6, ".qcow2") == 0);
        if (!ext || l >= 256) {
            continue;
        }
        hpc_vmspec s = {0};
        fr_error ignore;
        char real[HPC_PATH_MAX];
        if (hpc_image_resolve(de->d_name, c, "img", 0, 0, real, &ignore) != 0) {
            continue; /* symlinks out of the pool, folders */
        }
        hpc_conf strict = *c;
        strict.allow_user_images = false;
        if (hpc_image_resolve(de->d_name, &strict, "img", 0, 0, real, &ignore) != 0) {
            continue;
        }
        hpc_image *nv = realloc(v, (n + 1) * sizeof *v);
        if (nv == NULL) {
            rv = FR_ENOMEM;
            break;
        }
        v = nv;
        hpc_image *im = &v[n++];
        memset(im, 0, sizeof *im);
        snprintf(im->name, sizeof im->name, "%s", de->d_name);
        struct stat st;
        im->size = stat(real, &st) == 0 ? (long long)st.st_size : -1;
        /* distro from the name, as -vm does */
        snprintf(s.img, sizeof s.img, "%s", de->d_name);
        s.given = 1u << HPC_VM_IMG;
        snprintf(im->distro, sizeof im->distro, "%s", "");
        static const char *const ds[] = {"debian", "ubuntu", "redhat", "centos", "fedora", "osv"};
        for (size_t k = 0; k < 6 && im->distro[0] == '\0'; k++) {
            if (strcasestr(de->d_name, ds[k]) != NULL) {
                snprintf(im->distro, sizeof im->distro, "%s", ds[k]);
            }
        }
        char info[HPC_PATH_MAX + 300];
        snprintf(info, sizeof info, "%s/%s.info", c->image_pool, de->d_name);
        FILE *f = fopen(info, "r");
        if (f != NULL) {
            char line[512];
            while (fgets(line, sizeof line, f) != NULL) {
                line[strcspn(line, "\r\n")] = '\0';
                if (strncmp(line, "description:", 12) == 0) {
                    const char *p = line + 12;
                    p += strspn(p, " \t");
                    snprintf(im->description, sizeof im->description, "%s", p);
                } else if (strncmp(line, "distro:", 7) == 0) {
                    const char *p = line + 7;
                    p += strspn(p, " \t");
                    snprintf(im->distro, sizeof im->distro, "%s", p);
                }
            }
            fclose(f);
        }
        if (im->distro[0] == '\0') {
            snprintf(im->distro, sizeof im->distro, "%s", c->def_distro);
        }
    }
    closedir(d);
    if (rv == 0) {
        qsort(v, n, sizeof *v, img_cmp);
        for (size_t i = 0; i < n && rv == 0; i++) {
            rv = cb(ctx, &v[i]);
        }
    }
    free(v);
    return rv;
}
