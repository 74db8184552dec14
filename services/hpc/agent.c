/* The compute-node agent: guests booted and destroyed for batch jobs. */
#include "agent.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "fresco/ctl.h"
#include "fresco/log.h"
#include "fresco/mpdoc.h"
#include "gen.h"
#include "job.h"
#include "nodemeta.h"
#include "vmspec.h"

/* Every path built here is bounded: run_dir and spool are under 1024 bytes
 * (hpc_conf_check), job ids under 65 and node names under 49 (checked),
 * so the buffers below hold them whole. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#ifndef FRESCO_VERSION
#define FRESCO_VERSION "unknown"
#endif

struct hpc_agent {
    const hpc_conf *c;
    char node[64];
    virConnectPtr conn;
    pthread_mutex_t mu;
    hpc_agent_emit emit;
    void *ctx;
    size_t active;
};

static void quiet_errors(void *ud, virErrorPtr err)
{
    (void)ud;
    (void)err; /* reported through fr_error instead of stderr */
}

int hpc_agent_new(hpc_agent **out, const hpc_conf *c, const char *node, hpc_agent_emit emit,
                  void *ctx, fr_error *e)
{
    hpc_agent *a = calloc(1, sizeof *a);
    if (a == NULL) {
        return FR_ENOMEM;
    }
    a->c = c;
    snprintf(a->node, sizeof a->node, "%.*s", (int)strcspn(node, "."), node);
    a->emit = emit;
    a->ctx = ctx;
    pthread_mutex_init(&a->mu, NULL);
    virSetErrorFunc(NULL, quiet_errors);
    if (mkdir(c->run_dir, 0755) != 0 && errno != EEXIST) {
        int err = errno;
        hpc_agent_destroy(a);
        return fr_error_set(e, FR_EIO, "run_dir", "cannot make %s: %s", c->run_dir, strerror(err));
    }
    *out = a;
    return 0;
}

void hpc_agent_destroy(hpc_agent *a)
{
    if (a == NULL) {
        return;
    }
    if (a->conn != NULL) {
        virConnectClose(a->conn);
    }
    pthread_mutex_destroy(&a->mu);
    free(a);
}

size_t hpc_agent_active(hpc_agent *a)
{
    pthread_mutex_lock(&a->mu);
    size_t n = a->active;
    pthread_mutex_unlock(&a->mu);
    return n;
}

static int vir_err(fr_error *e, const char *where, const char *what)
{
    const char *m = virGetLastErrorMessage();
    return fr_error_set(e, FR_EIO, where, "%s: %s", what, m != NULL ? m : "libvirt error");
}

static int conn_get(hpc_agent *a, fr_error *e)
{
    if (a->conn != NULL && virConnectIsAlive(a->conn) == 1) {
        return 0;
    }
    if (a->conn != NULL) {
        virConnectClose(a->conn);
    }
    a->conn = virConnectOpen(a->c->libvirt_uri);
    if (a->conn == NULL) {
        return vir_err(e, "libvirt.uri", a->c->libvirt_uri);
    }
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int hpc_vm_boot(void *connp, const char *xml, int timeout_ms, char *name, size_t len, fr_error *e)
{
    virConnectPtr conn = connp;
    virDomainPtr d = virDomainDefineXML(conn, xml);
    if (d == NULL) {
        return vir_err(e, "domain", "libvirt refused the domain");
    }
    snprintf(name, len, "%s", virDomainGetName(d));
    if (virDomainCreate(d) != 0) {
        int rv = vir_err(e, name, "cannot start");
        virDomainUndefine(d);
        virDomainFree(d);
        return rv;
    }
    int64_t deadline = mono_ms() + timeout_ms;
    int rv = 0;
    for (;;) {
        int state = 0, reason = 0;
        if (virDomainGetState(d, &state, &reason, 0) == 0 && state == VIR_DOMAIN_RUNNING) {
            break;
        }
        if (mono_ms() >= deadline) {
            rv = fr_error_set(e, FR_ETIMEDOUT, name, "not running after %d ms (boot_timeout)",
                              timeout_ms);
            virDomainDestroy(d);
            virDomainUndefine(d);
            break;
        }
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL); /* libvirt has no wait-for-state call; polled */
    }
    virDomainFree(d);
    return rv;
}

int hpc_vm_destroy(void *connp, const char *name, fr_error *e)
{
    virConnectPtr conn = connp;
    virDomainPtr d = virDomainLookupByName(conn, name);
    if (d == NULL) {
        return 0;
    }
    int rv = 0;
    if (virDomainIsActive(d) == 1 && virDomainDestroy(d) != 0) {
        rv = vir_err(e, name, "cannot destroy");
    }
    if (rv == 0 && virDomainUndefine(d) != 0) {
        rv = vir_err(e, name, "cannot undefine");
    }
    virDomainFree(d);
    return rv;
}

/* ---- files of a running job: run_dir/<id>/ ---- */

static void job_path(const hpc_agent *a, const char *id, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s%s%s", a->c->run_dir, id, name ? "/" : "", name ? name : "");
}

static int read_small(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        return -1;
    }
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0) {
        return -1;
    }
    buf[n] = '\0';
    return (int)n;
}

static int append_line(const char *path, const char *line)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        return FR_EIO;
    }
    size_t n = strlen(line);
    int rv = write(fd, line, n) == (ssize_t)n && write(fd, "\n", 1) == 1 ? 0 : FR_EIO;
    close(fd);
    return rv;
}

static int copy_file(const char *src, const char *dst, fr_error *e)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        return fr_error_set(e, FR_EIO, src, "cannot open the image: %s", strerror(errno));
    }
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        int err = errno;
        close(in);
        return fr_error_set(e, FR_EIO, dst, "cannot create the image copy: %s", strerror(err));
    }
    int rv = 0;
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
        if (n == 0) {
            break;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            /* fall back to read/write (other file systems) */
            char buf[65536];
            ssize_t r;
            while ((r = read(in, buf, sizeof buf)) > 0) {
                if (write(out, buf, (size_t)r) != r) {
                    rv = FR_EIO;
                    break;
                }
            }
            if (r < 0) {
                rv = FR_EIO;
            }
            break;
        }
    }
    close(in);
    if (close(out) != 0 || rv != 0) {
        unlink(dst);
        return fr_error_set(e, FR_EIO, dst, "copying the image failed");
    }
    return 0;
}

/* ---- the job's collector task ---- */

/* YAML double-quoted scalar of s (escapes quotes, backslashes, controls). */
static int yq(fr_buf *b, const char *s)
{
    int rv = fr_buf_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0' && rv == 0; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            rv = fr_buf_append(b, esc, 2);
        } else if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", *p);
            rv = fr_buf_append(b, esc, 4);
        } else {
            rv = fr_buf_append(b, p, 1);
        }
    }
    return rv != 0 ? rv : fr_buf_puts(b, "\"");
}

static int task_create(hpc_agent *a, const char *id, const char *user, char *task_id, size_t idlen,
                       fr_error *e)
{
    const hpc_conf *c = a->c;
    char tag[256];
    if (hpc_task_tag(c, user, id, tag, sizeof tag) != 0) {
        return fr_error_set(e, FR_ETOOBIG, "monitoring.tag", "task tag too long");
    }
    fr_buf m = FR_BUF_INIT;
    char line[128];
    int rv = fr_buf_puts(&m, "version: 1\nname: ");
    rv = rv ? rv : yq(&m, tag);
    snprintf(line, sizeof line,
             "\nschedule:\n  type: simple\n  interval: %" PRId64 "ms\nworkflow:\n  collect:\n"
             "    metrics:\n",
             c->monitoring_interval_ms);
    rv = rv ? rv : fr_buf_append(&m, line, strlen(line));
    for (size_t i = 0; i < c->monitoring_metrics.n && rv == 0; i++) {
        rv = fr_buf_puts(&m, "      ");
        rv = rv ? rv : yq(&m, c->monitoring_metrics.v[i]);
        rv = rv ? rv : fr_buf_puts(&m, ": {}\n");
    }
    rv = rv ? rv : fr_buf_puts(&m, "    tags:\n      \"/\":\n        hpc_job: ");
    rv = rv ? rv : yq(&m, id);
    rv = rv ? rv : fr_buf_puts(&m, "\n        hpc_user: ");
    rv = rv ? rv : yq(&m, user);
    rv = rv ? rv : fr_buf_puts(&m, "\n        hpc_node: ");
    rv = rv ? rv : yq(&m, a->node);
    rv = rv ? rv : fr_buf_puts(&m, "\n        snap_task: ");
    rv = rv ? rv : yq(&m, tag);
    rv = rv ? rv : fr_buf_puts(&m, "\n");
    if (rv != 0) {
        fr_buf_free(&m);
        return rv;
    }
    fr_buf args = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &args, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "manifest", 8);
    msgpack_pack_str_with_body(&pk, m.data, m.len);
    msgpack_pack_str_with_body(&pk, "file", 4);
    char file[128];
    snprintf(file, sizeof file, "hpc-job-%s", id);
    msgpack_pack_str_with_body(&pk, file, strlen(file));
    fr_buf_free(&m);
    fr_ctl_client *cli = NULL;
    fr_ctl_result res = {0};
    rv = fr_ctl_client_open(&cli, c->monitoring_collector, NULL);
    if (rv == 0) {
        rv = fr_ctl_call(cli, "task.create", args.data, args.len, 5000, &res);
    }
    fr_buf_free(&args);
    if (rv == 0) {
        const char *tid = NULL;
        if (fr_node_get_str(res.result, "id", &tid) == 0) {
            snprintf(task_id, idlen, "%s", tid);
        } else {
            rv = fr_error_set(e, FR_EPROTO, "monitoring.collector", "task.create gave no id");
        }
    } else {
        fr_error_set(e, rv, "monitoring.collector", "task.create on %s: %s",
                     c->monitoring_collector,
                     res.error_message[0] ? res.error_message : fr_strerror(rv));
    }
    fr_ctl_result_free(&res);
    fr_ctl_client_close(cli);
    return rv;
}

static int task_remove(const hpc_conf *c, const char *task_id)
{
    fr_buf args = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &args, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_str_with_body(&pk, task_id, strlen(task_id));
    fr_ctl_client *cli = NULL;
    fr_ctl_result res = {0};
    int rv = fr_ctl_client_open(&cli, c->monitoring_collector, NULL);
    if (rv == 0) {
        rv = fr_ctl_call(cli, "task.remove", args.data, args.len, 5000, &res);
    }
    if (rv != 0) {
        fr_warn("hpc", "removing collector task %s: %s", task_id,
                res.error_message[0] ? res.error_message : fr_strerror(rv));
    }
    fr_ctl_result_free(&res);
    fr_ctl_client_close(cli);
    fr_buf_free(&args);
    return rv;
}

/* ---- teardown ---- */

static int teardown(hpc_agent *a, const char *id, size_t *nvms)
{
    char path[8192], buf[16384];
    *nvms = 0;
    job_path(a, id, NULL, path, sizeof path);
    struct stat st;
    if (lstat(path, &st) != 0) {
        return 0;
    }
    int rv = 0;
    job_path(a, id, "domains", path, sizeof path);
    if (read_small(path, buf, sizeof buf) > 0 && conn_get(a, NULL) == 0) {
        char *save = NULL;
        for (char *name = strtok_r(buf, "\n", &save); name != NULL;
             name = strtok_r(NULL, "\n", &save)) {
            fr_error err;
            fr_error_clear(&err);
            if (hpc_vm_destroy(a->conn, name, &err) != 0) {
                fr_warn("hpc", "job %s: %s: %s", id, err.where, err.message);
                rv = FR_EIO;
            } else {
                (*nvms)++;
            }
        }
    }
    if (*nvms > a->active) {
        a->active = 0;
    } else {
        a->active -= *nvms;
    }
    job_path(a, id, "task", path, sizeof path);
    if (read_small(path, buf, 256) > 0) {
        buf[strcspn(buf, "\n")] = '\0';
        task_remove(a->c, buf);
    }
    char shm[256];
    snprintf(shm, sizeof shm, "/dev/shm/fresco-%s", id);
    hpc_rmtree(shm);
    job_path(a, id, NULL, path, sizeof path);
    if (rv == 0) {
        hpc_rmtree(path);
    }
    return rv;
}

/* ---- job start ---- */

typedef struct boot_arg {
    hpc_agent *a;
    char xml_path[8192];
    char name[256];
    int rv;
    fr_error err;
} boot_arg;

static void *boot_one(void *p)
{
    boot_arg *b = p;
    fr_error_clear(&b->err);
    char *xml = malloc(1 << 20);
    if (xml == NULL) {
        b->rv = FR_ENOMEM;
        return NULL;
    }
    if (read_small(b->xml_path, xml, 1 << 20) <= 0) {
        b->rv = fr_error_set(&b->err, FR_EIO, b->xml_path, "cannot read the domain XML");
    } else {
        b->rv = hpc_vm_boot(b->a->conn, xml, (int)b->a->c->boot_timeout_ms, b->name, sizeof b->name,
                            &b->err);
    }
    free(xml);
    return NULL;
}

static int starts_with_dir(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && path[n] == '/' && strchr(path + n + 1, '/') == NULL;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* Writes this node's metadata into the job folder as metadata/<node>.json,
 * owned by the job's user: the folder is the user's, so nothing on the way
 * is followed if it is a symlink (the folder itself, metadata/, the file),
 * and the file is written whole (tmp + rename inside metadata/). The job
 * wrapper merges what every node of the job wrote. */
static int meta_to_job_dir(const char *dir, const char *node, uid_t uid, gid_t gid,
                           const fr_buf *meta, fr_error *e)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        return fr_error_set(e, FR_EIO, dir, "open: %s", strerror(errno));
    }
    int rv = 0, mfd = -1, fd = -1;
    if (mkdirat(dfd, "metadata", 0755) == 0) {
        if (fchownat(dfd, "metadata", uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
            rv = fr_error_set(e, FR_EIO, dir, "metadata/: chown: %s", strerror(errno));
        }
    } else if (errno != EEXIST) {
        rv = fr_error_set(e, FR_EIO, dir, "metadata/: mkdir: %s", strerror(errno));
    }
    if (rv == 0 &&
        (mfd = openat(dfd, "metadata", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
        rv = fr_error_set(e, FR_EIO, dir, "metadata/: %s", strerror(errno));
    }
    char name[96], tmp[112];
    snprintf(name, sizeof name, "%s.json", node);
    snprintf(tmp, sizeof tmp, ".%s.json.tmp", node);
    if (rv == 0) {
        unlinkat(mfd, tmp, 0);
        fd = openat(mfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0) {
            rv = fr_error_set(e, FR_EIO, dir, "metadata/%s: %s", tmp, strerror(errno));
        }
    }
    for (size_t off = 0; rv == 0 && off < meta->len;) {
        ssize_t w = write(fd, meta->data + off, meta->len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            rv = fr_error_set(e, FR_EIO, dir, "metadata/%s: write: %s", tmp, strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    if (rv == 0 && fchown(fd, uid, gid) != 0) {
        rv = fr_error_set(e, FR_EIO, dir, "metadata/%s: chown: %s", tmp, strerror(errno));
    }
    if (fd >= 0 && close(fd) != 0 && rv == 0) {
        rv = fr_error_set(e, FR_EIO, dir, "metadata/%s: close: %s", tmp, strerror(errno));
    }
    if (rv == 0 && renameat(mfd, tmp, mfd, name) != 0) {
        rv = fr_error_set(e, FR_EIO, dir, "metadata/%s: rename: %s", name, strerror(errno));
    }
    if (rv != 0 && mfd >= 0) {
        unlinkat(mfd, tmp, 0);
    }
    if (mfd >= 0) {
        close(mfd);
    }
    close(dfd);
    return rv;
}

bool hpc_job_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64 || id[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("._-[]", ch) != NULL)) {
            return false;
        }
    }
    return true;
}

static int caller_may(int64_t caller, const hpc_jobinfo *ji, const char *id, fr_error *e)
{
    if (caller < 0 || caller == 0 || (ji != NULL && ji->have_ids && caller == (int64_t)ji->uid)) {
        return 0;
    }
    return fr_error_set(e, FR_EINVAL, "caller", "uid %lld may not act on job %s (%s)",
                        (long long)caller, id,
                        ji != NULL ? "it is another user's" : "the batch system does not know it");
}

static int jobstart_locked(hpc_agent *a, const char *id, const char *dir_in, char *const *env,
                           int64_t caller, msgpack_packer *pk, fr_error *e)
{
    const hpc_conf *c = a->c;
    hpc_jobinfo ji;
    int rv = hpc_backend_info(c, id, &ji, e);
    if (rv != 0) {
        return rv;
    }
    if ((rv = caller_may(caller, &ji, id, e)) != 0) {
        return rv;
    }
    if (ji.state != HPC_RUNNING && strcmp(ji.raw_state, "CONFIGURING") != 0) {
        return fr_error_set(e, FR_EINVAL, id, "job %s is %s, not running: nothing is booted", id,
                            ji.raw_state);
    }
    char dir[4096], spool[4096];
    const char *want = dir_in;
    char from_cmd[HPC_PATH_MAX];
    if (want == NULL) {
        size_t n = strlen(ji.command);
        char cmd_dir[HPC_PATH_MAX], real_cmd_dir[4096] = "", real_spool[4096];
        snprintf(cmd_dir, sizeof cmd_dir, "%.*s", n > 7 ? (int)(n - 7) : 0, ji.command);
        if (realpath(cmd_dir, real_cmd_dir) == NULL) {
            real_cmd_dir[0] = '\0';
        }
        /* fresco's VM jobs run <spool>/job-XXXXXX/job.sh; anything else
         * (a user's own job.sh included) is a plain job: nothing to do */
        if (n < 7 || strcmp(ji.command + n - 7, "/job.sh") != 0 ||
            realpath(c->spool, real_spool) == NULL || !starts_with_dir(real_cmd_dir, real_spool)) {
            msgpack_pack_map(pk, 2);
            pack_str(pk, "job");
            pack_str(pk, id);
            pack_str(pk, "vm_job");
            msgpack_pack_false(pk);
            return 0;
        }
        snprintf(from_cmd, sizeof from_cmd, "%.*s", (int)(n - 7), ji.command);
        want = from_cmd;
    }
    if (realpath(c->spool, spool) == NULL || realpath(want, dir) == NULL ||
        !starts_with_dir(dir, spool)) {
        return fr_error_set(e, FR_EINVAL, "dir", "'%.200s' is not a job folder in the spool %s",
                            want, c->spool);
    }
    if (ji.command[0] != '\0') {
        char expect[8192];
        snprintf(expect, sizeof expect, "%s/job.sh", dir);
        if (strcmp(expect, ji.command) != 0) {
            return fr_error_set(e, FR_EINVAL, "dir", "job %s runs %s, not this folder's wrapper %s",
                                id, ji.command, expect);
        }
    }
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return fr_error_set(e, FR_EINVAL, "dir", "%s is not a folder", dir);
    }
    if (!ji.have_ids) {
        return fr_error_set(e, FR_EPROTO, id, "the batch system gave no uid/gid for job %s", id);
    }
    if (st.st_uid != ji.uid) {
        return fr_error_set(e, FR_EINVAL, "dir",
                            "job folder %s belongs to uid %u, job %s to uid %u: refused", dir,
                            (unsigned)st.st_uid, id, (unsigned)ji.uid);
    }
    if (hpc_regex_match(c->disabled_hosts, a->node)) {
        return fr_error_set(e, FR_EINVAL, "disabled_hosts", "node %s runs no VMs (disabled_hosts)",
                            a->node);
    }
    if (ji.nnodes > 0) {
        bool mine = false;
        for (size_t i = 0; i < ji.nnodes; i++) {
            mine |= strncmp(ji.nodes[i], a->node, strlen(a->node)) == 0 &&
                    (ji.nodes[i][strlen(a->node)] == '\0' || ji.nodes[i][strlen(a->node)] == '.');
        }
        if (!mine) {
            return fr_error_set(e, FR_EINVAL, id, "job %s does not run on node %s", id, a->node);
        }
    }
    /* the request again, against this node's policy */
    char path[8192], text[16384];
    snprintf(path, sizeof path, "%s/request", dir);
    int n = read_small(path, text, sizeof text);
    if (n <= 0) {
        return fr_error_set(e, FR_EIO, path, "cannot read the job's request");
    }
    hpc_vmspec s = {0};
    if ((rv = hpc_vmspec_parse_lines(&s, text, (size_t)n, path, e)) != 0 ||
        (rv = hpc_vmspec_resolve(&s, c, ji.uid, ji.gid, e)) != 0) {
        return rv;
    }
    if (s.vrdma && c->vrdma_nodes != NULL && c->vrdma_nodes[0] != '\0' &&
        !hpc_regex_match(c->vrdma_nodes, a->node)) {
        return fr_error_set(e, FR_EINVAL, "vrdma", "node %s has no vRDMA (vrdma.nodes)", a->node);
    }
    /* already started here (the wrapper after the prologue): same answer */
    char rdir[8192];
    job_path(a, id, NULL, rdir, sizeof rdir);
    bool fresh = mkdir(rdir, 0755) == 0;
    if (!fresh && errno != EEXIST) {
        return fr_error_set(e, FR_EIO, rdir, "mkdir: %s", strerror(errno));
    }
    char domains[16384] = "";
    char meta_path[8192];
    snprintf(meta_path, sizeof meta_path, "%s/metadata-%s.json", rdir, a->node);
    fr_buf meta = FR_BUF_INIT;
    if (fresh) {
        if ((rv = conn_get(a, e)) != 0) {
            hpc_rmtree(rdir);
            return rv;
        }
        char img_dir[8192];
        if (strcmp(s.fs_type, "ramdisk") == 0) {
            snprintf(img_dir, sizeof img_dir, "/dev/shm/fresco-%s", id);
            if (mkdir(img_dir, 0700) != 0) {
                rv = fr_error_set(e, FR_EIO, img_dir, "mkdir: %s", strerror(errno));
            }
        } else {
            snprintf(img_dir, sizeof img_dir, "%s", rdir);
        }
        struct group *gr = getgrgid(ji.gid);
        char gname[64];
        snprintf(gname, sizeof gname, "%s", gr != NULL ? gr->gr_name : ji.user);
        /* the job's environment as the caller gave it; gen filters by env_allow */
        hpc_job j = {.id = id,
                     .user = ji.user,
                     .uid = ji.uid,
                     .gid = ji.gid,
                     .group = gname,
                     .node = a->node,
                     .img_dir = img_dir,
                     .env = env,
                     .domain_type = "kvm"};
        hpc_gen_stats gst = {0};
        char dirfile[8192];
        snprintf(dirfile, sizeof dirfile, "%s/dir", rdir);
        rv = rv ? rv : hpc_write_file(dirfile, dir, strlen(dir), 0644, e);
        rv = rv ? rv : hpc_gen_node(c, &s, &j, rdir, &gst, e);
        /* node metadata, just before the job runs */
        if (rv == 0) {
            const char *allow[65];
            size_t na = 0;
            for (; na < c->env_allow.n && na < 64; na++) {
                allow[na] = c->env_allow.v[na];
            }
            allow[na] = NULL;
            hpc_nodemeta_opts mo = {.node_name = a->node,
                                    .fresco_version = FRESCO_VERSION,
                                    .env_allow = allow,
                                    .envp = env};
            fr_error merr;
            fr_error_clear(&merr);
            if (hpc_nodemeta_collect(&mo, &meta, &merr) == 0) {
                hpc_write_file(meta_path, meta.data, meta.len, 0644, NULL);
                if (meta_to_job_dir(dir, a->node, ji.uid, ji.gid, &meta, &merr) != 0) {
                    fr_warn("hpc", "job %s: node metadata: %s: %s", id, merr.where, merr.message);
                }
            } else {
                fr_warn("hpc", "job %s: node metadata: %s", id, merr.message);
            }
        }
        if (rv == 0 && c->monitoring_enabled) {
            char tid[64], tpath[8192];
            fr_error terr;
            fr_error_clear(&terr);
            if (task_create(a, id, ji.user, tid, sizeof tid, &terr) == 0) {
                snprintf(tpath, sizeof tpath, "%s/task", rdir);
                hpc_write_file(tpath, tid, strlen(tid), 0644, NULL);
            } else {
                fr_warn("hpc", "job %s: collector task: %s", id, terr.message);
            }
        }
        boot_arg *b = rv == 0 ? calloc((size_t)s.vms_per_node, sizeof *b) : NULL;
        if (rv == 0 && b == NULL) {
            rv = FR_ENOMEM;
        }
        const char *ext =
            strlen(s.img) > 6 && strcmp(s.img + strlen(s.img) - 6, ".qcow2") == 0 ? "qcow2" : "raw";
        for (int64_t k = 0; k < s.vms_per_node && rv == 0; k++) {
            char host[80], copy[8192];
            hpc_vm_hostname(a->node, (int)k, host, sizeof host);
            snprintf(copy, sizeof copy, "%s/%s.%s", img_dir, host, ext);
            rv = copy_file(s.img, copy, e);
            b[k].a = a;
            snprintf(b[k].xml_path, sizeof b[k].xml_path, "%s/%s.xml", rdir, host);
        }
        pthread_t th[64];
        bool started[64] = {false};
        for (int64_t k = 0; k < s.vms_per_node && rv == 0; k++) {
            if (c->parallel && k < 64 && pthread_create(&th[k], NULL, boot_one, &b[k]) == 0) {
                started[k] = true;
                continue;
            }
            boot_one(&b[k]); /* no thread: this guest boots here */
        }
        for (int64_t k = 0; k < s.vms_per_node && k < 64; k++) {
            if (started[k]) {
                pthread_join(th[k], NULL);
            }
        }
        char dpath[8192];
        snprintf(dpath, sizeof dpath, "%s/domains", rdir);
        for (int64_t k = 0; rv == 0 && k < s.vms_per_node; k++) {
            if (b[k].name[0] != '\0' && b[k].rv == 0) {
                append_line(dpath, b[k].name);
                a->active++;
            }
        }
        for (int64_t k = 0; rv == 0 && k < s.vms_per_node; k++) {
            if (b[k].rv != 0) {
                rv = b[k].rv;
                if (e != NULL) {
                    *e = b[k].err;
                }
            }
        }
        free(b);
        if (rv != 0) {
            size_t nv;
            fr_error keep;
            if (e != NULL) {
                keep = *e;
            }
            teardown(a, id, &nv);
            hpc_rmtree(rdir);
            if (e != NULL) {
                *e = keep;
            }
            fr_buf_free(&meta);
            return rv;
        }
        if (a->emit != NULL) {
            a->emit(a->ctx, id, dir, HPC_RUNNING, -1, a->node);
        }
    } else {
        char mtext[1 << 16];
        int mn = read_small(meta_path, mtext, sizeof mtext);
        if (mn > 0) {
            fr_buf_append(&meta, mtext, (size_t)mn);
        }
    }
    snprintf(path, sizeof path, "%s/domains", rdir);
    int dn = read_small(path, domains, sizeof domains);
    size_t count = 0;
    for (int i = 0; i < dn; i++) {
        count += domains[i] == '\n';
    }
    msgpack_pack_map(pk, 6);
    pack_str(pk, "job");
    pack_str(pk, id);
    pack_str(pk, "vm_job");
    msgpack_pack_true(pk);
    pack_str(pk, "node");
    pack_str(pk, a->node);
    pack_str(pk, "dir");
    pack_str(pk, dir);
    pack_str(pk, "vms");
    msgpack_pack_array(pk, (uint32_t)count);
    char *save = NULL;
    for (char *name = dn > 0 ? strtok_r(domains, "\n", &save) : NULL; name != NULL;
         name = strtok_r(NULL, "\n", &save)) {
        /* the guest's host name: the domain name after "fresco-<id>-" */
        pack_str(pk, name + 8 + strlen(id));
    }
    pack_str(pk, "metadata");
    msgpack_pack_str_with_body(pk, meta.data, meta.len);
    fr_buf_free(&meta);
    return 0;
}

int hpc_agent_jobstart(hpc_agent *a, const char *batch_id, const char *dir, char *const *env,
                       int64_t caller, msgpack_packer *pk, fr_error *e)
{
    if (!hpc_job_id_ok(batch_id)) {
        return fr_error_set(e, FR_EINVAL, "id", "'%.64s' is not a job id", batch_id);
    }
    pthread_mutex_lock(&a->mu);
    int rv = jobstart_locked(a, batch_id, dir, env, caller, pk, e);
    pthread_mutex_unlock(&a->mu);
    return rv;
}

int hpc_agent_jobend(hpc_agent *a, const char *batch_id, int exit_code, int64_t caller,
                     msgpack_packer *pk, fr_error *e)
{
    /* the id names a folder under run_dir: checked before anything else */
    if (!hpc_job_id_ok(batch_id)) {
        return fr_error_set(e, FR_EINVAL, "id", "'%.64s' is not a job id", batch_id);
    }
    hpc_jobinfo ji;
    fr_error ignore;
    bool known = hpc_backend_info(a->c, batch_id, &ji, &ignore) == 0;
    if (!known) {
        memset(&ji, 0, sizeof ji);
        ji.exit_code = -1;
    }
    int crv = caller_may(caller, known ? &ji : NULL, batch_id, e);
    if (crv != 0) {
        return crv;
    }
    pthread_mutex_lock(&a->mu);
    char rdir[8192], dir[HPC_PATH_MAX] = "";
    job_path(a, batch_id, "dir", rdir, sizeof rdir);
    read_small(rdir, dir, sizeof dir);
    job_path(a, batch_id, NULL, rdir, sizeof rdir);
    struct stat st;
    bool had = lstat(rdir, &st) == 0;
    size_t nvms = 0;
    int rv = had ? teardown(a, batch_id, &nvms) : 0;
    pthread_mutex_unlock(&a->mu);
    if (rv != 0) {
        return fr_error_set(e, rv, batch_id, "job %s: some guests could not be removed (see log)",
                            batch_id);
    }
    if (had && a->emit != NULL) {
        int code = exit_code >= 0 ? exit_code : ji.exit_code;
        a->emit(a->ctx, batch_id, dir, code == 0 ? HPC_DONE : HPC_FAILED, code, a->node);
    }
    msgpack_pack_map(pk, 3);
    pack_str(pk, "job");
    pack_str(pk, batch_id);
    pack_str(pk, "torn_down");
    if (had) {
        msgpack_pack_true(pk);
    } else {
        msgpack_pack_false(pk);
    }
    pack_str(pk, "vms");
    msgpack_pack_uint64(pk, nvms);
    return 0;
}
