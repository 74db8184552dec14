/* Domain XML, cloud-config and seeds for a VM job's guests. */
#include "gen.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "seed.h"

int hpc_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c == 0) {
            return 0;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + len > n) {
            return 0;
        }
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        i += len;
    }
    return 1;
}

static int app(fr_buf *b, const char *s)
{
    return fr_buf_append(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static int appf(fr_buf *b, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        return FR_ETOOBIG;
    }
    return fr_buf_append(b, tmp, (size_t)n);
}

int hpc_xml_escape(fr_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (!hpc_utf8_valid(s, n)) {
        return FR_EINVAL;
    }
    int rv = 0;
    for (size_t i = 0; i < n && rv == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '&':
            rv = app(b, "&amp;");
            break;
        case '<':
            rv = app(b, "&lt;");
            break;
        case '>':
            rv = app(b, "&gt;");
            break;
        case '\'':
            rv = app(b, "&apos;");
            break;
        case '"':
            rv = app(b, "&quot;");
            break;
        default:
            if (c < 0x20 && c != '\t' && c != '\n') {
                return FR_EINVAL;
            }
            rv = fr_buf_append(b, &s[i], 1);
        }
    }
    return rv;
}

int hpc_shell_quote(fr_buf *b, const char *s)
{
    int rv = app(b, "'");
    for (const char *p = s; *p != '\0' && rv == 0; p++) {
        rv = *p == '\'' ? app(b, "'\\''") : fr_buf_append(b, p, 1);
    }
    return rv != 0 ? rv : app(b, "'");
}

static int node_ok(const char *node)
{
    size_t n = strlen(node);
    if (n == 0 || n > 48) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = node[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-')) {
            return 0;
        }
    }
    return 1;
}

static int jobid_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '[' || c == ']')) {
            return 0;
        }
    }
    return 1;
}

int hpc_vm_hostname(const char *node, int n, char *buf, size_t len)
{
    if (!node_ok(node)) {
        return FR_EINVAL;
    }
    int w = snprintf(buf, len, "v%s-%d", node, n);
    return w < 0 || (size_t)w >= len ? FR_ETOOBIG : 0;
}

int hpc_vm_domain_name(const char *jobid, const char *node, int n, char *buf, size_t len)
{
    if (!jobid_ok(jobid) || !node_ok(node)) {
        return FR_EINVAL;
    }
    int w = snprintf(buf, len, "fresco-%s-v%s-%d", jobid, node, n);
    return w < 0 || (size_t)w >= len ? FR_ETOOBIG : 0;
}

int hpc_env_allowed(const hpc_conf *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->env_allow.n; i++) {
        const char *a = c->env_allow.v[i];
        size_t al = strlen(a);
        if (al > 0 && a[al - 1] == '*') {
            if (len >= al - 1 && strncmp(name, a, al - 1) == 0) {
                return 1;
            }
        } else if (al == len && strncmp(name, a, len) == 0) {
            return 1;
        }
    }
    return 0;
}

static int env_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 128 || (s[0] >= '0' && s[0] <= '9')) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_')) {
            return 0;
        }
    }
    return 1;
}

/* ---- cloud-config through libyaml's emitter ---- */

typedef struct yout {
    yaml_emitter_t em;
    fr_buf *out;
    int failed;
} yout;

static int y_write(void *data, unsigned char *buffer, size_t size)
{
    yout *y = data;
    if (fr_buf_append(y->out, buffer, size) != 0) {
        y->failed = 1;
        return 0;
    }
    return 1;
}

static int y_emit(yout *y, yaml_event_t *ev)
{
    if (!yaml_emitter_emit(&y->em, ev)) {
        y->failed = 1;
        return FR_EINVAL;
    }
    return 0;
}

static int y_scalar(yout *y, const char *s, int quoted)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), 1, 1,
                                      quoted ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                             : YAML_PLAIN_SCALAR_STYLE)) {
        return FR_ENOMEM;
    }
    return y_emit(y, &ev);
}

static int y_map(yout *y, int start)
{
    yaml_event_t ev;
    if (start) {
        yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
    } else {
        yaml_mapping_end_event_initialize(&ev);
    }
    return y_emit(y, &ev);
}

static int y_seq(yout *y, int start, int flow)
{
    yaml_event_t ev;
    if (start) {
        yaml_sequence_start_event_initialize(
            &ev, NULL, NULL, 1, flow ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE);
    } else {
        yaml_sequence_end_event_initialize(&ev);
    }
    return y_emit(y, &ev);
}

static int y_kv(yout *y, const char *k, const char *v)
{
    int rv = y_scalar(y, k, 0);
    return rv != 0 ? rv : y_scalar(y, v, 1);
}

/* argv-form command: cloud-init runs it without a shell */
static int y_argv(yout *y, const char *const *argv)
{
    int rv = y_seq(y, 1, 1);
    for (size_t i = 0; argv[i] != NULL && rv == 0; i++) {
        rv = y_scalar(y, argv[i], 1);
    }
    return rv != 0 ? rv : y_seq(y, 0, 1);
}

static const char *const reserved_keys[] = {
    "hostname",     "fqdn",        "users",  "groups",           "mounts",
    "bootcmd",      "write_files", "runcmd", "manage_etc_hosts", "ssh_authorized_keys",
    "disable_root", "chpasswd",    NULL};

static int listed(const fr_strlist *l, const char *k)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->v[i], k) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Copies the whitelisted top-level keys of the user's cloud-config file
 * into the emitter (inside the open mapping). */
static int user_metadata(const hpc_conf *c, const char *path, uid_t uid, gid_t gid, yout *y,
                         fr_error *e)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return fr_error_set(e, FR_EIO, path, "metadata: cannot open: %s", strerror(errno));
    }
    /* The agent reads this as root: what it opened (whatever a symlink
     * swapped since the request was checked) must be a regular file the
     * job's user may read by its own mode bits. */
    struct stat st;
    bool may = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
               (uid == 0 || (st.st_uid == uid   ? (st.st_mode & S_IRUSR) != 0
                             : st.st_gid == gid ? (st.st_mode & S_IRGRP) != 0
                                                : (st.st_mode & S_IROTH) != 0));
    if (!may) {
        fclose(f);
        return fr_error_set(e, FR_EINVAL, "metadata",
                            "key 'metadata': '%s' is not a regular file uid %u can read", path,
                            (unsigned)uid);
    }
    yaml_parser_t p;
    yaml_parser_initialize(&p);
    yaml_parser_set_input_file(&p, f);
    int rv = 0, depth = 0, top_key = 1, done = 0, skipping_doc = 0;
    while (!done && rv == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            char w[HPC_PATH_MAX + 32];
            snprintf(w, sizeof w, "%s:%zu:%zu", path, p.problem_mark.line + 1,
                     p.problem_mark.column + 1);
            rv = fr_error_set(e, FR_EINVAL, w, "metadata: %s", p.problem ? p.problem : "bad YAML");
            break;
        }
        char w[HPC_PATH_MAX + 32];
        snprintf(w, sizeof w, "%s:%zu:%zu", path, ev.start_mark.line + 1, ev.start_mark.column + 1);
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
            if (ev.type == YAML_DOCUMENT_START_EVENT && skipping_doc++) {
                rv = fr_error_set(e, FR_EINVAL, w, "metadata: one YAML document only");
            }
            yaml_event_delete(&ev);
            continue;
        case YAML_STREAM_END_EVENT:
            done = 1;
            yaml_event_delete(&ev);
            continue;
        case YAML_ALIAS_EVENT:
            rv = fr_error_set(e, FR_EINVAL, w, "metadata: aliases (*name) are not accepted");
            yaml_event_delete(&ev);
            continue;
        default:
            break;
        }
        if (depth == 0) {
            if (ev.type != YAML_MAPPING_START_EVENT) {
                rv = fr_error_set(e, FR_EINVAL, w,
                                  "metadata: the file must hold one mapping "
                                  "of cloud-config keys");
            }
            depth = 1;
            yaml_event_delete(&ev);
            continue;
        }
        if (depth == 1 && ev.type == YAML_MAPPING_END_EVENT) {
            depth = 0;
            yaml_event_delete(&ev);
            continue;
        }
        if (depth == 1 && top_key) {
            if (ev.type != YAML_SCALAR_EVENT) {
                rv = fr_error_set(e, FR_EINVAL, w, "metadata: keys must be plain names");
                yaml_event_delete(&ev);
                continue;
            }
            const char *k = (const char *)ev.data.scalar.value;
            int reserved = 0;
            for (size_t i = 0; reserved_keys[i] != NULL; i++) {
                reserved |= strcmp(k, reserved_keys[i]) == 0;
            }
            if (reserved || !listed(&c->metadata_whitelist, k)) {
                char allowed[512] = "";
                for (size_t i = 0; i < c->metadata_whitelist.n; i++) {
                    size_t l = strlen(allowed);
                    snprintf(allowed + l, sizeof allowed - l, "%s%s", i ? ", " : "",
                             c->metadata_whitelist.v[i]);
                }
                char shown[80];
                snprintf(shown, sizeof shown, "%.64s", k);
                rv = fr_error_set(
                    e, FR_EINVAL, w, "metadata: key '%s' is not allowed (%s; allowed: %s)", shown,
                    reserved ? "fresco sets it itself" : "not on the admin's whitelist",
                    allowed[0] ? allowed : "none");
                yaml_event_delete(&ev);
                continue;
            }
            top_key = 0;
        } else if (depth == 1) {
            top_key = 1; /* a value: scalar, or a collection that follows */
        }
        if (ev.type == YAML_MAPPING_START_EVENT || ev.type == YAML_SEQUENCE_START_EVENT) {
            if (++depth > 16) {
                rv = fr_error_set(e, FR_EDEPTH, w, "metadata: nested deeper than 16");
                yaml_event_delete(&ev);
                continue;
            }
            if (depth == 2) {
                top_key = 1;
            }
        } else if (ev.type == YAML_MAPPING_END_EVENT || ev.type == YAML_SEQUENCE_END_EVENT) {
            depth--;
        }
        /* anchors and tags are dropped: aliases are refused anyway, and a
         * tag could ask cloud-init's loader for more than plain data */
        if (ev.type == YAML_SCALAR_EVENT) {
            free(ev.data.scalar.anchor);
            free(ev.data.scalar.tag);
            ev.data.scalar.anchor = ev.data.scalar.tag = NULL;
            ev.data.scalar.plain_implicit = ev.data.scalar.quoted_implicit = 1;
        } else if (ev.type == YAML_MAPPING_START_EVENT) {
            free(ev.data.mapping_start.anchor);
            free(ev.data.mapping_start.tag);
            ev.data.mapping_start.anchor = ev.data.mapping_start.tag = NULL;
            ev.data.mapping_start.implicit = 1;
        } else if (ev.type == YAML_SEQUENCE_START_EVENT) {
            free(ev.data.sequence_start.anchor);
            free(ev.data.sequence_start.tag);
            ev.data.sequence_start.anchor = ev.data.sequence_start.tag = NULL;
            ev.data.sequence_start.implicit = 1;
        }
        if (!yaml_emitter_emit(&y->em, &ev)) { /* the emitter owns ev now */
            rv = fr_error_set(e, FR_EINVAL, w, "metadata: cannot re-emit: %s",
                              y->em.problem ? y->em.problem : "?");
        }
    }
    yaml_parser_delete(&p);
    fclose(f);
    return rv;
}

int hpc_gen_user_data(const hpc_conf *c, const hpc_vmspec *s, const hpc_job *j, int n, fr_buf *out,
                      hpc_gen_stats *st, fr_error *e)
{
    char host[80];
    if (hpc_vm_hostname(j->node, n, host, sizeof host) != 0) {
        return fr_error_set(e, FR_EINVAL, "node", "node name '%.64s' is not [A-Za-z0-9-]", j->node);
    }
    int osv = strcmp(s->distro, "osv") == 0;
    char uid[24], gid[24];
    snprintf(uid, sizeof uid, "%u", (unsigned)j->uid);
    snprintf(gid, sizeof gid, "%u", (unsigned)j->gid);
    if (app(out, "#cloud-config\n") != 0) {
        return FR_ENOMEM;
    }
    yout y = {.out = out};
    yaml_emitter_initialize(&y.em);
    yaml_emitter_set_output(&y.em, y_write, &y);
    yaml_emitter_set_unicode(&y.em, 1);
    yaml_emitter_set_width(&y.em, -1);
    yaml_event_t ev;
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    int rv = y_emit(&y, &ev);
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
    rv = rv ? rv : y_emit(&y, &ev);
    rv = rv ? rv : y_map(&y, 1);
    rv = rv ? rv : y_kv(&y, "hostname", host);
    if (!osv) {
        rv = rv ? rv : y_scalar(&y, "manage_etc_hosts", 0);
        rv = rv ? rv : y_scalar(&y, "true", 0);
        /* the job's group and user with the batch system's ids, made before
         * the users module runs */
        const char *groupadd[] = {"groupadd", "-f", "-g", gid, j->group, NULL};
        const char *useradd[] = {"useradd", "-M", "-u",        uid,     "-g",
                                 gid,       "-s", "/bin/bash", j->user, NULL};
        rv = rv ? rv : y_scalar(&y, "bootcmd", 0);
        rv = rv ? rv : y_seq(&y, 1, 0);
        rv = rv ? rv : y_argv(&y, groupadd);
        rv = rv ? rv : y_argv(&y, useradd);
        rv = rv ? rv : y_seq(&y, 0, 0);
    }
    if (c->shared_mounts.n > 0) {
        rv = rv ? rv : y_scalar(&y, "mounts", 0);
        rv = rv ? rv : y_seq(&y, 1, 0);
        for (size_t i = 0; i < c->shared_mounts.n && rv == 0; i++) {
            char src[HPC_PATH_MAX], dst[HPC_PATH_MAX], fs[32] = "nfs";
            int k = sscanf(c->shared_mounts.v[i], "%1023s %1023s %31s", src, dst, fs);
            if (k < 2) {
                rv = fr_error_set(e, FR_ECONFIG, "shared_mounts", "bad entry '%s'",
                                  c->shared_mounts.v[i]);
                break;
            }
            if (osv && strcmp(fs, "nfs") != 0) {
                rv = fr_error_set(e, FR_EINVAL, "shared_mounts",
                                  "OSv guests mount NFS only, '%s' is %s", src, fs);
                break;
            }
            /* NFS with the job's ids: the guest's user is the batch system's.
             * A Linux guest gets that user (bootcmd above); OSv has no users,
             * so its NFS client is told the ids to use. */
            char opts[128];
            if (osv) {
                snprintf(opts, sizeof opts, "uid=%u,gid=%u", (unsigned)j->uid, (unsigned)j->gid);
            } else {
                snprintf(opts, sizeof opts, "defaults,_netdev,nosuid,nodev");
            }
            const char *m[] = {src, dst, fs, opts, "0", "0", NULL};
            rv = y_argv(&y, m);
        }
        rv = rv ? rv : y_seq(&y, 0, 0);
    }
    /* the job environment, as a profile script of single-quoted words */
    fr_buf env = FR_BUF_INIT;
    rv = rv ? rv : app(&env, "# the batch job's environment, written by fresco\n");
    for (size_t i = 0; j->env != NULL && j->env[i] != NULL && rv == 0; i++) {
        const char *kv = j->env[i];
        const char *eq = strchr(kv, '=');
        if (eq == NULL) {
            continue;
        }
        size_t nl = (size_t)(eq - kv);
        if (!hpc_env_allowed(c, kv, nl)) {
            continue;
        }
        if (!env_name_ok(kv, nl) || !hpc_utf8_valid(eq + 1, strlen(eq + 1))) {
            if (st != NULL) {
                st->env_skipped++;
            }
            continue;
        }
        rv = app(&env, "export ");
        rv = rv ? rv : fr_buf_append(&env, kv, nl + 1);
        rv = rv ? rv : hpc_shell_quote(&env, eq + 1);
        rv = rv ? rv : app(&env, "\n");
    }
    rv = rv ? rv : fr_buf_append(&env, "", 1);
    if (rv == 0) {
        rv = y_scalar(&y, "write_files", 0);
        rv = rv ? rv : y_seq(&y, 1, 0);
        rv = rv ? rv : y_map(&y, 1);
        rv = rv ? rv : y_kv(&y, "path", "/etc/profile.d/fresco-job.sh");
        rv = rv ? rv : y_kv(&y, "permissions", "0644");
        rv = rv ? rv : y_kv(&y, "content", (const char *)env.data);
        rv = rv ? rv : y_map(&y, 0);
        rv = rv ? rv : y_seq(&y, 0, 0);
    }
    fr_buf_free(&env);
    if (rv == 0 && s->metadata[0] != '\0') {
        rv = user_metadata(c, s->metadata, j->uid, j->gid, &y, e);
    }
    rv = rv ? rv : y_map(&y, 0);
    yaml_document_end_event_initialize(&ev, 1);
    rv = rv ? rv : y_emit(&y, &ev);
    yaml_stream_end_event_initialize(&ev);
    rv = rv ? rv : y_emit(&y, &ev);
    if (rv == 0 && !yaml_emitter_flush(&y.em)) {
        rv = FR_EIO;
    }
    if (rv != 0 && e != NULL && e->code == 0) {
        fr_error_set(e, rv, "user-data", "cannot write the cloud-config: %s",
                     y.em.problem ? y.em.problem : fr_strerror(rv));
    }
    yaml_emitter_delete(&y.em);
    return rv;
}

static const char *img_ext(const char *img)
{
    size_t n = strlen(img);
    return n > 6 && strcmp(img + n - 6, ".qcow2") == 0 ? "qcow2" : "raw";
}

int hpc_gen_domain(const hpc_conf *c, const hpc_vmspec *s, const hpc_job *j, int n, const char *dir,
                   fr_buf *out, fr_error *e)
{
    char host[80], dom[160];
    if (hpc_vm_hostname(j->node, n, host, sizeof host) != 0 ||
        hpc_vm_domain_name(j->id, j->node, n, dom, sizeof dom) != 0) {
        return fr_error_set(e, FR_EINVAL, "job",
                            "job id '%.64s' or node '%.64s' has characters "
                            "outside [A-Za-z0-9._-]",
                            j->id, j->node);
    }
    int osv = strcmp(s->distro, "osv") == 0;
    const char *arch = strcmp(s->arch, "x86_i386") == 0 ? "i686"
                       : strcmp(s->arch, "arm") == 0    ? "aarch64"
                                                        : "x86_64";
    const char *machine = strcmp(s->arch, "arm") == 0 ? "virt" : "pc";
    int rv = 0;
#define X(str)  (rv = rv ? rv : hpc_xml_escape(out, (str)))
#define A(str)  (rv = rv ? rv : app(out, (str)))
#define AF(...) (rv = rv ? rv : appf(out, __VA_ARGS__))
    A("<domain type='");
    X(j->domain_type != NULL ? j->domain_type : "kvm");
    A("'>\n  <name>");
    X(dom);
    A("</name>\n  <title>");
    X(host);
    A("</title>\n  <metadata>\n    <fresco:job xmlns:fresco='urn:fresco:hpc:1' id='");
    X(j->id);
    A("' user='");
    X(j->user);
    AF("' uid='%u' vm='%d' hypervisor='", (unsigned)j->uid, n);
    X(s->hypervisor);
    A("' distro='");
    X(s->distro);
    A("'/>\n  </metadata>\n");
    AF("  <memory unit='MiB'>%" PRId64 "</memory>\n", s->ram_mb);
    AF("  <vcpu placement='static'>%" PRId64 "</vcpu>\n", s->vcpus);
    if (s->iocm) {
        AF("  <iothreads>%" PRId64 "</iothreads>\n", s->iocm_max_cores);
    }
    if (s->vcpu_pinning || s->iocm) {
        A("  <cputune>\n");
        int64_t first = c->host_cores + (s->iocm ? s->iocm_max_cores : 0);
        if (s->vcpu_pinning) {
            for (int64_t v = 0; v < s->vcpus; v++) {
                AF("    <vcpupin vcpu='%" PRId64 "' cpuset='%" PRId64 "'/>\n", v,
                   first + n * s->vcpus + v);
            }
        }
        for (int64_t t = 0; s->iocm && t < s->iocm_max_cores; t++) {
            AF("    <iothreadpin iothread='%" PRId64 "' cpuset='%" PRId64 "'/>\n", t + 1,
               c->host_cores + t);
        }
        A("  </cputune>\n");
    }
    AF("  <os>\n    <type arch='%s' machine='%s'>hvm</type>\n    <boot dev='hd'/>\n  </os>\n", arch,
       machine);
    A("  <features>\n    <acpi/>\n  </features>\n  <on_poweroff>destroy</on_poweroff>\n"
      "  <on_crash>destroy</on_crash>\n  <devices>\n");
    A("    <disk type='file' device='disk'>\n      <driver name='qemu' type='");
    A(img_ext(s->img));
    A("'/>\n      <source file='");
    X(j->img_dir);
    A("/");
    X(host);
    A(".");
    A(img_ext(s->img));
    A("'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>\n");
    if (osv) {
        A("    <disk type='file' device='disk'>\n      <driver name='qemu' type='raw'/>\n"
          "      <source file='");
        X(dir);
        A("/");
        X(host);
        A(".seed.raw'/>\n      <target dev='vdb' bus='virtio'/>\n      <readonly/>\n    </disk>\n");
    } else {
        A("    <disk type='file' device='cdrom'>\n      <driver name='qemu' type='raw'/>\n"
          "      <source file='");
        X(dir);
        A("/");
        X(host);
        A(".seed.iso'/>\n      <target dev='sda' bus='sata'/>\n      <readonly/>\n    </disk>\n");
    }
    if (n == 0 && s->disk[0] != '\0') {
        A("    <disk type='file' device='disk'>\n      <driver name='qemu' type='");
        A(img_ext(s->disk));
        A("'/>\n      <source file='");
        X(s->disk);
        A("'/>\n      <target dev='vdc' bus='virtio'/>\n    </disk>\n");
    }
    /* a stable MAC per job, node and VM */
    uint32_t h = 2166136261u;
    for (const char *p = dom; *p != '\0'; p++) {
        h = (h ^ (unsigned char)*p) * 16777619u;
    }
    A("    <interface type='network'>\n      <source network='");
    X(c->network);
    AF("'/>\n      <mac address='52:54:00:%02x:%02x:%02x'/>\n      <model type='virtio'/>\n"
       "    </interface>\n",
       (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
    A("    <serial type='file'>\n      <source path='");
    X(dir);
    A("/");
    X(host);
    A(".console.log'/>\n      <target port='0'/>\n    </serial>\n    <console type='file'>\n"
      "      <source path='");
    X(dir);
    A("/");
    X(host);
    A(".console.log'/>\n      <target type='serial' port='0'/>\n    </console>\n");
    if (s->vrdma) {
        A("    <shmem name='fresco-vrdma-");
        X(j->id);
        A("'>\n      <model type='ivshmem-plain'/>\n      <size unit='M'>64</size>\n"
          "    </shmem>\n");
    }
    A("  </devices>\n</domain>\n");
#undef X
#undef A
#undef AF
    if (rv == FR_EINVAL) {
        return fr_error_set(e, rv, "domain", "a value is not valid UTF-8 text for the domain XML");
    }
    return rv;
}

int hpc_write_file(const char *path, const void *data, size_t len, mode_t mode, fr_error *e)
{
    char tmp[HPC_PATH_MAX + 16];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        return fr_error_set(e, FR_ETOOBIG, path, "path too long");
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        return fr_error_set(e, FR_EIO, path, "cannot create: %s", strerror(errno));
    }
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            int err = errno;
            close(fd);
            unlink(tmp);
            return fr_error_set(e, FR_EIO, path, "write: %s", strerror(err));
        }
        p += w;
        left -= (size_t)w;
    }
    if (close(fd) != 0) {
        unlink(tmp);
        return fr_error_set(e, FR_EIO, path, "close: %s", strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        return fr_error_set(e, FR_EIO, path, "rename: %s", strerror(err));
    }
    return 0;
}

static int write_buf(const char *dir, const char *host, const char *suffix, const fr_buf *b,
                     hpc_gen_stats *st, fr_error *e)
{
    char path[HPC_PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s%s", dir, host, suffix) >= (int)sizeof path) {
        return fr_error_set(e, FR_ETOOBIG, dir, "path too long");
    }
    int rv = hpc_write_file(path, b->data, b->len, 0644, e);
    if (rv == 0 && st != NULL) {
        st->files++;
    }
    return rv;
}

int hpc_gen_node(const hpc_conf *c, const hpc_vmspec *s, const hpc_job *j, const char *dir,
                 hpc_gen_stats *st, fr_error *e)
{
    int osv = strcmp(s->distro, "osv") == 0;
    fr_buf ud = FR_BUF_INIT, md = FR_BUF_INIT, dom = FR_BUF_INIT;
    int rv = 0;
    for (int n = 0; n < s->vms_per_node && rv == 0; n++) {
        char host[80], iid[200];
        if (hpc_vm_hostname(j->node, n, host, sizeof host) != 0 ||
            hpc_vm_domain_name(j->id, j->node, n, iid, sizeof iid) != 0) {
            rv = fr_error_set(e, FR_EINVAL, "job",
                              "job id '%.64s' or node '%.64s' has characters outside "
                              "[A-Za-z0-9._-]",
                              j->id, j->node);
            break;
        }
        fr_buf_reset(&ud);
        fr_buf_reset(&md);
        fr_buf_reset(&dom);
        rv = hpc_gen_user_data(c, s, j, n, &ud, st, e);
        rv = rv ? rv : hpc_gen_domain(c, s, j, n, dir, &dom, e);
        if (rv == 0) {
            /* both values are [A-Za-z0-9._-], checked above */
            rv = appf(&md, "instance-id: %s\nlocal-hostname: %s\n", iid, host);
        }
        rv = rv ? rv : write_buf(dir, host, ".user-data", &ud, st, e);
        rv = rv ? rv : write_buf(dir, host, ".meta-data", &md, st, e);
        rv = rv ? rv : write_buf(dir, host, ".xml", &dom, st, e);
        if (rv == 0) {
            char path[HPC_PATH_MAX];
            snprintf(path, sizeof path, "%s/%s%s", dir, host, osv ? ".seed.raw" : ".seed.iso");
            hpc_seed_file files[2] = {{"user-data", ud.data, ud.len},
                                      {"meta-data", md.data, md.len}};
            rv = osv ? hpc_seed_write_raw(path, files, 2, e)
                     : hpc_seed_write_iso(path, "cidata", files, 2, e);
            if (rv == 0 && st != NULL) {
                st->files++;
            }
        }
    }
    fr_buf_free(&ud);
    fr_buf_free(&md);
    fr_buf_free(&dom);
    return rv;
}

int hpc_guest_command(fr_buf *out, const char *const *env, char *const *args, size_t nargs)
{
    static const char body[] =
        "if [ -r /etc/profile.d/fresco-job.sh ]; then . /etc/profile.d/fresco-job.sh; fi; "
        "f=$(mktemp) && cat >\"$f\" && chmod 700 \"$f\" && exec \"$f\" \"$@\"";
    int rv = fr_buf_puts(out, "env");
    for (size_t i = 0; env != NULL && env[i] != NULL && rv == 0; i++) {
        const char *eq = strchr(env[i], '=');
        size_t nl = eq != NULL ? (size_t)(eq - env[i]) : 0;
        bool ok = nl > 0 && !isdigit((unsigned char)env[i][0]);
        for (size_t k = 0; ok && k < nl; k++) {
            ok = isalnum((unsigned char)env[i][k]) || env[i][k] == '_';
        }
        if (!ok) {
            return FR_EINVAL;
        }
        rv = fr_buf_puts(out, " ");
        rv = rv ? rv : fr_buf_append(out, env[i], nl + 1);
        rv = rv ? rv : hpc_shell_quote(out, eq + 1);
    }
    rv = rv ? rv : fr_buf_puts(out, " sh -c ");
    rv = rv ? rv : hpc_shell_quote(out, body);
    rv = rv ? rv : fr_buf_puts(out, " fresco-job");
    for (size_t i = 0; i < nargs && rv == 0; i++) {
        rv = fr_buf_puts(out, " ");
        rv = rv ? rv : hpc_shell_quote(out, args[i]);
    }
    return rv;
}
