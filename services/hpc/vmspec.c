/* The -vm request: parsing, defaults and the policy's checks. */
#include "vmspec.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const key_names[HPC_VM_NKEYS] = {
    "img",         "distro",   "ram",        "vcpus",          "vms_per_node",
    "disk",        "arch",     "hypervisor", "vcpu_pinning",   "vm_prologue",
    "vm_epilogue", "vrdma",    "iocm",       "iocm_min_cores", "iocm_max_cores",
    "fs_type",     "metadata",
};

static const char *const distros[] = {"debian", "ubuntu", "redhat", "centos",
                                      "fedora", "osv",    NULL};
static const char *const arches[] = {"x86_64", "x86_i386", "arm", NULL};
static const char *const hypervisors[] = {"kvm", "skvm", NULL};
static const char *const fs_types[] = {"sharedfs", "ramdisk", NULL};

const char *hpc_vmkey_name(int key)
{
    return key >= 0 && key < HPC_VM_NKEYS ? key_names[key] : NULL;
}

bool hpc_safe_path(const char *p, bool want_abs)
{
    size_t n = strlen(p);
    if (n == 0 || n >= HPC_PATH_MAX || (want_abs && p[0] != '/')) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!(isalnum(c) || strchr("._/+@-", c) != NULL) || c >= 0x80) {
            return false;
        }
    }
    if (strstr(p, "//") != NULL || (n > 1 && p[n - 1] == '/')) {
        return false;
    }
    /* no ".." component */
    for (const char *s = p; *s != '\0';) {
        const char *slash = strchr(s, '/');
        size_t len = slash != NULL ? (size_t)(slash - s) : strlen(s);
        if ((len == 2 && s[0] == '.' && s[1] == '.') || (len == 1 && s[0] == '.')) {
            return false;
        }
        s += len + (slash != NULL);
    }
    return true;
}

/* Quotes a user value for an error message: printable ASCII as is, other
 * bytes as \xNN, cut at 64 bytes. */
static const char *show(const char *v, char *buf, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; v[i] != '\0' && o + 8 < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (i == 64) {
            o += (size_t)snprintf(buf + o, len - o, "...");
            break;
        }
        if (c >= 0x20 && c < 0x7f) {
            buf[o++] = (char)c;
        } else {
            o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
        }
    }
    buf[o] = '\0';
    return buf;
}

static int bad(fr_error *e, const char *where, const char *key, const char *value,
               const char *allowed)
{
    char b[300];
    return fr_error_set(e, FR_EINVAL, where, "key '%s': value '%s' is not allowed (allowed: %s)",
                        key, show(value, b, sizeof b), allowed);
}

static int parse_bool(const char *v, bool *out)
{
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcmp(v, "yes") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0 || strcmp(v, "no") == 0) {
        *out = false;
        return 0;
    }
    return FR_EINVAL;
}

static int parse_uint(const char *v, int64_t min, int64_t max, int64_t *out)
{
    if (*v == '\0' || strlen(v) > 12) {
        return FR_EINVAL;
    }
    int64_t n = 0;
    for (const char *p = v; *p != '\0'; p++) {
        if (!isdigit((unsigned char)*p)) {
            return FR_EINVAL;
        }
        n = n * 10 + (*p - '0');
    }
    if (n < min || n > max) {
        return FR_EINVAL;
    }
    *out = n;
    return 0;
}

static const char *choice(const char *v, const char *const *list)
{
    for (size_t i = 0; list[i] != NULL; i++) {
        if (strcasecmp(v, list[i]) == 0) {
            return list[i];
        }
    }
    return NULL;
}

/* What img= and disk= accept: a safe path to an .img or .qcow2 file. */
static bool image_path_ok(const char *v)
{
    size_t n = strlen(v);
    bool ext =
        (n > 4 && strcmp(v + n - 4, ".img") == 0) || (n > 6 && strcmp(v + n - 6, ".qcow2") == 0);
    return ext && hpc_safe_path(v, false);
}

static int set_key(hpc_vmspec *s, int key, const char *v, const char *where, fr_error *e)
{
    const char *k = key_names[key];
    const char *c;
    bool b;
    switch (key) {
    case HPC_VM_IMG:
    case HPC_VM_DISK:
        if (!image_path_ok(v)) {
            return bad(e, where, k, v,
                       "a file name or path ending in .img or .qcow2, of [A-Za-z0-9._/+@-], "
                       "without '..'");
        }
        snprintf(key == HPC_VM_IMG ? s->img : s->disk, HPC_PATH_MAX, "%s", v);
        break;
    case HPC_VM_VM_PROLOGUE:
    case HPC_VM_VM_EPILOGUE:
    case HPC_VM_METADATA:
        if (!hpc_safe_path(v, true)) {
            return bad(e, where, k, v, "an absolute path of [A-Za-z0-9._/+@-], without '..'");
        }
        snprintf(key == HPC_VM_VM_PROLOGUE   ? s->vm_prologue
                 : key == HPC_VM_VM_EPILOGUE ? s->vm_epilogue
                                             : s->metadata,
                 HPC_PATH_MAX, "%s", v);
        break;
    case HPC_VM_DISTRO:
        if ((c = choice(v, distros)) == NULL) {
            return bad(e, where, k, v, "debian, ubuntu, redhat, centos, fedora, osv");
        }
        snprintf(s->distro, sizeof s->distro, "%s", c);
        break;
    case HPC_VM_ARCH:
        if ((c = choice(v, arches)) == NULL) {
            return bad(e, where, k, v, "x86_64, x86_i386, arm");
        }
        snprintf(s->arch, sizeof s->arch, "%s", c);
        break;
    case HPC_VM_HYPERVISOR:
        if ((c = choice(v, hypervisors)) == NULL) {
            return bad(e, where, k, v, "kvm, skvm");
        }
        snprintf(s->hypervisor, sizeof s->hypervisor, "%s", c);
        break;
    case HPC_VM_FS_TYPE:
        if ((c = choice(v, fs_types)) == NULL) {
            return bad(e, where, k, v, "sharedfs, ramdisk");
        }
        snprintf(s->fs_type, sizeof s->fs_type, "%s", c);
        break;
    case HPC_VM_RAM:
        if (parse_uint(v, 64, INT64_C(1) << 30, &s->ram_mb) != 0) {
            return bad(e, where, k, v, "a whole number of MB from 64");
        }
        break;
    case HPC_VM_VCPUS:
        if (parse_uint(v, 1, 1024, &s->vcpus) != 0) {
            return bad(e, where, k, v, "a whole number from 1 to 1024");
        }
        break;
    case HPC_VM_VMS_PER_NODE:
        if (parse_uint(v, 1, 1024, &s->vms_per_node) != 0) {
            return bad(e, where, k, v, "a whole number from 1 to 1024");
        }
        break;
    case HPC_VM_IOCM_MIN_CORES:
        if (parse_uint(v, 0, 1024, &s->iocm_min_cores) != 0) {
            return bad(e, where, k, v, "a whole number from 0 to 1024");
        }
        break;
    case HPC_VM_IOCM_MAX_CORES:
        if (parse_uint(v, 1, 1024, &s->iocm_max_cores) != 0) {
            return bad(e, where, k, v, "a whole number from 1 to 1024");
        }
        break;
    case HPC_VM_VCPU_PINNING:
    case HPC_VM_VRDMA:
    case HPC_VM_IOCM:
        if (parse_bool(v, &b) != 0) {
            return bad(e, where, k, v, "true, false, 1, 0, yes, no");
        }
        if (key == HPC_VM_VCPU_PINNING) {
            s->vcpu_pinning = b;
        } else if (key == HPC_VM_VRDMA) {
            s->vrdma = b;
        } else {
            s->iocm = b;
        }
        break;
    default:
        return FR_EINVAL;
    }
    s->given |= 1u << key;
    return 0;
}

static int apply_one(hpc_vmspec *s, const char *item, size_t len, const char *where, fr_error *e)
{
    char buf[HPC_PATH_MAX + 64];
    char sb[300];
    if (len >= sizeof buf) {
        return fr_error_set(e, FR_ETOOBIG, where, "'%.40s...' is longer than %zu bytes", item,
                            sizeof buf - 1);
    }
    memcpy(buf, item, len);
    buf[len] = '\0';
    char *eq = strchr(buf, '=');
    if (eq == NULL) {
        return fr_error_set(e, FR_EINVAL, where, "'%s' is not key=value", show(buf, sb, sizeof sb));
    }
    *eq = '\0';
    for (int k = 0; k < HPC_VM_NKEYS; k++) {
        if (strcmp(buf, key_names[k]) == 0) {
            return set_key(s, k, eq + 1, where, e);
        }
    }
    if (strcmp(buf, "uid") == 0 || strcmp(buf, "gid") == 0 || strcmp(buf, "user") == 0) {
        return fr_error_set(e, FR_EINVAL, where,
                            "key '%s': users cannot choose it: guests run with the job's own "
                            "uid and gid from the batch system",
                            buf);
    }
    return fr_error_set(e, FR_EUNKNOWN, where,
                        "unknown key '%s' (keys: img, distro, ram, vcpus, vms_per_node, disk, "
                        "arch, hypervisor, vcpu_pinning, vm_prologue, vm_epilogue, vrdma, iocm, "
                        "iocm_min_cores, iocm_max_cores, fs_type, metadata)",
                        show(buf, sb, sizeof sb));
}

int hpc_vmspec_apply(hpc_vmspec *s, const char *text, const char *where, fr_error *e)
{
    if (*text == '\0') {
        return fr_error_set(e, FR_EINVAL, where, "empty -vm value: give key=value[,key=value]");
    }
    for (const char *p = text;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (len == 0) {
            return fr_error_set(e, FR_EINVAL, where, "empty item in '%.64s'", text);
        }
        int rv = apply_one(s, p, len, where, e);
        if (rv != 0) {
            return rv;
        }
        if (comma == NULL) {
            return 0;
        }
        p = comma + 1;
    }
}

int hpc_vmspec_parse_lines(hpc_vmspec *s, const char *text, size_t len, const char *where,
                           fr_error *e)
{
    size_t pos = 0;
    int line = 0;
    while (pos < len) {
        line++;
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t l = nl != NULL ? (size_t)(nl - start) : len - pos;
        pos += l + (nl != NULL);
        if (l == 0) {
            continue;
        }
        if (memchr(start, '\0', l) != NULL || memchr(start, ',', l) != NULL) {
            char w[200];
            snprintf(w, sizeof w, "%s:%d", where, line);
            return fr_error_set(e, FR_EINVAL, w, "bad byte in request line");
        }
        char w[200];
        snprintf(w, sizeof w, "%s:%d", where, line);
        int rv = apply_one(s, start, l, w, e);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* Whether uid/gid have the want bits (4 read, 2 write) on the regular file
 * at path, and may search every folder on the way. */
static bool access_by(const char *path, uid_t uid, gid_t gid, mode_t want)
{
    if (uid == 0) {
        return true;
    }
    char buf[HPC_PATH_MAX];
    if (strlen(path) >= sizeof buf || path[0] != '/') {
        return false;
    }
    snprintf(buf, sizeof buf, "%s", path);
    struct stat st;
    /* every folder on the way must be searchable */
    for (char *s = strchr(buf + 1, '/');; s = strchr(s + 1, '/')) {
        if (s != NULL) {
            *s = '\0';
        }
        const char *dir = buf;
        if (stat(dir, &st) != 0) {
            return false;
        }
        bool last = s == NULL;
        mode_t need = last ? want : 1; /* r (and w) for the file, x for folders */
        mode_t bits = st.st_uid == uid   ? (st.st_mode >> 6) & 7
                      : st.st_gid == gid ? (st.st_mode >> 3) & 7
                                         : st.st_mode & 7;
        if ((bits & need) != need) {
            return false;
        }
        if (last) {
            return S_ISREG(st.st_mode);
        }
        *s = '/';
    }
}

bool hpc_readable_by(const char *path, uid_t uid, gid_t gid)
{
    return access_by(path, uid, gid, 4);
}

int hpc_image_resolve(const char *name, const hpc_conf *c, const char *key, uid_t uid, gid_t gid,
                      char *out, fr_error *e)
{
    char want[HPC_PATH_MAX * 2];
    if (name[0] == '/') {
        snprintf(want, sizeof want, "%s", name);
    } else {
        snprintf(want, sizeof want, "%s/%s", c->image_pool, name);
    }
    char pool[PATH_MAX], real[PATH_MAX];
    if (realpath(c->image_pool, pool) == NULL) {
        return fr_error_set(e, FR_ECONFIG, "image_pool", "image pool '%s': %s", c->image_pool,
                            strerror(errno));
    }
    if (realpath(want, real) == NULL) {
        return fr_error_set(e, FR_ENOTFOUND, key, "key '%s': image '%s' not found (%s)%s", key,
                            name, strerror(errno),
                            name[0] == '/' ? "" : "; `fresco qsub -list` shows the pool");
    }
    size_t pl = strlen(pool);
    bool inside = strncmp(real, pool, pl) == 0 && real[pl] == '/';
    if (!inside) {
        if (!c->allow_user_images) {
            return fr_error_set(e, FR_EINVAL, key,
                                "key '%s': value '%s' is not allowed: it resolves to '%s', outside "
                                "the image pool %s, and the admin does not allow user images "
                                "(allowed: images in the pool, see `fresco qsub -list`)",
                                key, name, real, pool);
        }
        if (!hpc_readable_by(real, uid, gid)) {
            return fr_error_set(e, FR_EINVAL, key,
                                "key '%s': '%s' is not a regular file you can read", key, name);
        }
    }
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
        return fr_error_set(e, FR_EINVAL, key, "key '%s': '%s' is not a regular file", key, name);
    }
    /* the request file names the image by this path, and the agent reads it
     * back with set_key's check */
    if (!image_path_ok(real)) {
        char sb[300];
        return fr_error_set(e, FR_EINVAL, key,
                            "key '%s': '%s' resolves to '%s', not a path of [A-Za-z0-9._/+@-] "
                            "ending in .img or .qcow2",
                            key, name, show(real, sb, sizeof sb));
    }
    if (strlen(real) >= HPC_PATH_MAX) {
        return fr_error_set(e, FR_ETOOBIG, key, "key '%s': path too long", key);
    }
    memcpy(out, real, strlen(real) + 1);
    return 0;
}

static int user_file(const char *key, const char *path, uid_t uid, gid_t gid, fr_error *e)
{
    if (path[0] != '\0' && !hpc_readable_by(path, uid, gid)) {
        return fr_error_set(e, FR_EINVAL, key,
                            "key '%s': '%s' is not a regular file the job's user (uid %u) can read",
                            key, path, (unsigned)uid);
    }
    return 0;
}

static bool given(const hpc_vmspec *s, int key)
{
    return (s->given & (1u << key)) != 0;
}

int hpc_vmspec_resolve(hpc_vmspec *s, const hpc_conf *c, uid_t uid, gid_t gid, fr_error *e)
{
    if (c->disabled) {
        return fr_error_set(e, FR_EINVAL, "-vm",
                            "virtualised jobs are disabled on this cluster (admin key 'disabled'); "
                            "submit without -vm");
    }
    if (!given(s, HPC_VM_IMG)) {
        if (c->def_img == NULL) {
            return fr_error_set(e, FR_EMISSING, "img",
                                "key 'img' missing and the admin sets no defaults.img "
                                "(`fresco qsub -list` shows the images)");
        }
        snprintf(s->img, sizeof s->img, "%s", c->def_img);
    }
    char name[HPC_PATH_MAX];
    snprintf(name, sizeof name, "%s", s->img);
    int rv = hpc_image_resolve(name, c, "img", uid, gid, s->img, e);
    if (rv != 0) {
        return rv;
    }
    const char *base = strrchr(s->img, '/');
    snprintf(s->img_name, sizeof s->img_name, "%.255s", base != NULL ? base + 1 : s->img);
    if (!given(s, HPC_VM_DISTRO)) {
        const char *d = NULL;
        char lower[256];
        size_t i = 0;
        for (; s->img_name[i] != '\0' && i + 1 < sizeof lower; i++) {
            lower[i] = (char)tolower((unsigned char)s->img_name[i]);
        }
        lower[i] = '\0';
        for (size_t k = 0; distros[k] != NULL && d == NULL; k++) {
            if (strstr(lower, distros[k]) != NULL) {
                d = distros[k];
            }
        }
        snprintf(s->distro, sizeof s->distro, "%s", d != NULL ? d : c->def_distro);
    }
    if (!given(s, HPC_VM_ARCH)) {
        snprintf(s->arch, sizeof s->arch, "%s", c->def_arch);
    }
    if (!given(s, HPC_VM_HYPERVISOR)) {
        snprintf(s->hypervisor, sizeof s->hypervisor, "%s", c->def_hypervisor);
    }
    if (!given(s, HPC_VM_FS_TYPE)) {
        snprintf(s->fs_type, sizeof s->fs_type, "%s", c->def_fs_type);
    }
    if (!given(s, HPC_VM_RAM)) {
        s->ram_mb = c->def_ram >> 20;
    }
    if (!given(s, HPC_VM_VCPUS)) {
        s->vcpus = c->def_vcpus;
    }
    if (!given(s, HPC_VM_VMS_PER_NODE)) {
        s->vms_per_node = c->def_vms_per_node;
    }
    if (!given(s, HPC_VM_VCPU_PINNING)) {
        s->vcpu_pinning = c->def_vcpu_pinning;
    }
    if (!given(s, HPC_VM_VRDMA)) {
        s->vrdma = c->def_vrdma && c->vrdma_enabled;
    }
    if (!given(s, HPC_VM_IOCM)) {
        s->iocm = c->def_iocm && c->iocm_enabled;
    }
    if (!given(s, HPC_VM_DISK) && c->def_disk != NULL) {
        snprintf(s->disk, sizeof s->disk, "%s", c->def_disk);
    }
    char num[32];
    if (s->vms_per_node > c->max_vms_per_node) {
        snprintf(num, sizeof num, "%" PRId64, s->vms_per_node);
        char allowed[64];
        snprintf(allowed, sizeof allowed, "1 to %" PRId64 " (admin's max_vms_per_node)",
                 c->max_vms_per_node);
        return bad(e, "vms_per_node", "vms_per_node", num, allowed);
    }
    if (s->vrdma && !c->vrdma_enabled) {
        return bad(e, "vrdma", "vrdma", "true", "false: the admin has disabled vRDMA");
    }
    if (s->iocm) {
        if (!c->iocm_enabled) {
            return bad(e, "iocm", "iocm", "true", "false: the admin has disabled IOcm");
        }
        if (strcmp(s->hypervisor, "skvm") != 0) {
            return fr_error_set(e, FR_EINVAL, "iocm",
                                "key 'iocm': value 'true' needs hypervisor=skvm (got '%s')",
                                s->hypervisor);
        }
        if (!given(s, HPC_VM_IOCM_MIN_CORES)) {
            s->iocm_min_cores = c->def_iocm_min_cores;
        }
        if (!given(s, HPC_VM_IOCM_MAX_CORES)) {
            s->iocm_max_cores = c->def_iocm_max_cores;
        }
        char allowed[96];
        snprintf(allowed, sizeof allowed, "%" PRId64 " to %" PRId64 " (admin's iocm bounds)",
                 c->iocm_min_cores, c->iocm_max_cores);
        if (s->iocm_min_cores < c->iocm_min_cores || s->iocm_min_cores > c->iocm_max_cores) {
            snprintf(num, sizeof num, "%" PRId64, s->iocm_min_cores);
            return bad(e, "iocm_min_cores", "iocm_min_cores", num, allowed);
        }
        if (s->iocm_max_cores < s->iocm_min_cores || s->iocm_max_cores > c->iocm_max_cores) {
            snprintf(num, sizeof num, "%" PRId64, s->iocm_max_cores);
            return bad(e, "iocm_max_cores", "iocm_max_cores", num, allowed);
        }
    } else {
        s->iocm_min_cores = s->iocm_max_cores = 0; /* skipped when iocm is off */
    }
    if (c->node_cores > 0) {
        int64_t avail = c->node_cores - c->host_cores - (s->iocm ? s->iocm_max_cores : 0);
        if (s->vcpus * s->vms_per_node > avail) {
            return fr_error_set(e, FR_EINVAL, "vcpus",
                                "keys 'vcpus' x 'vms_per_node' (%" PRId64 " x %" PRId64
                                ") need more than the %" PRId64
                                " cores a node has for guests (compute.cores %" PRId64
                                " less host.cores %" PRId64 "%s)",
                                s->vcpus, s->vms_per_node, avail, c->node_cores, c->host_cores,
                                s->iocm ? " less IOcm cores" : "");
        }
    }
    if (c->node_ram > 0) {
        int64_t avail_mb = (c->node_ram - c->host_ram) >> 20;
        if (s->ram_mb * s->vms_per_node > avail_mb) {
            return fr_error_set(e, FR_EINVAL, "ram",
                                "keys 'ram' x 'vms_per_node' (%" PRId64 " MB x %" PRId64
                                ") need more than the %" PRId64
                                " MB a node has for guests (compute.ram less host.ram)",
                                s->ram_mb, s->vms_per_node, avail_mb);
        }
    }
    if (s->disk[0] != '\0') {
        char real[PATH_MAX];
        if (s->disk[0] != '/' || realpath(s->disk, real) == NULL) {
            return fr_error_set(e, FR_EINVAL, "disk",
                                "key 'disk': '%s' must be an absolute path to an existing file",
                                s->disk);
        }
        /* attached read-write: the user must be able to write it too */
        if (!access_by(real, uid, gid, 6)) {
            return fr_error_set(e, FR_EINVAL, "disk",
                                "key 'disk': '%s' is not a regular file the job's user (uid %u) "
                                "can read and write",
                                s->disk, (unsigned)uid);
        }
        if (strlen(real) >= sizeof s->disk || !hpc_safe_path(real, true)) {
            return fr_error_set(e, FR_EINVAL, "disk", "key 'disk': '%s' resolves to '%.200s'",
                                s->disk, real);
        }
        /* the domain names the file that was checked, not the link to it */
        snprintf(s->disk, sizeof s->disk, "%s", real);
    }
    if ((rv = user_file("vm_prologue", s->vm_prologue, uid, gid, e)) != 0 ||
        (rv = user_file("vm_epilogue", s->vm_epilogue, uid, gid, e)) != 0 ||
        (rv = user_file("metadata", s->metadata, uid, gid, e)) != 0) {
        return rv;
    }
    return 0;
}

int hpc_vmspec_format(const hpc_vmspec *s, char *buf, size_t len)
{
    int n = snprintf(buf, len,
                     "img=%s\ndistro=%s\nram=%" PRId64 "\nvcpus=%" PRId64 "\nvms_per_node=%" PRId64
                     "\narch=%s\nhypervisor=%s\nvcpu_pinning=%s\nvrdma=%s\niocm=%s\nfs_type=%s\n",
                     s->img, s->distro, s->ram_mb, s->vcpus, s->vms_per_node, s->arch,
                     s->hypervisor, s->vcpu_pinning ? "true" : "false", s->vrdma ? "true" : "false",
                     s->iocm ? "true" : "false", s->fs_type);
    if (n < 0 || (size_t)n >= len) {
        return FR_ETOOBIG;
    }
    size_t o = (size_t)n;
    struct {
        const char *k;
        const char *v;
    } opt[] = {{"disk", s->disk},
               {"vm_prologue", s->vm_prologue},
               {"vm_epilogue", s->vm_epilogue},
               {"metadata", s->metadata}};
    for (size_t i = 0; i < sizeof opt / sizeof opt[0]; i++) {
        if (opt[i].v[0] != '\0') {
            n = snprintf(buf + o, len - o, "%s=%s\n", opt[i].k, opt[i].v);
            if (n < 0 || (size_t)n >= len - o) {
                return FR_ETOOBIG;
            }
            o += (size_t)n;
        }
    }
    if (s->iocm) {
        n = snprintf(buf + o, len - o, "iocm_min_cores=%" PRId64 "\niocm_max_cores=%" PRId64 "\n",
                     s->iocm_min_cores, s->iocm_max_cores);
        if (n < 0 || (size_t)n >= len - o) {
            return FR_ETOOBIG;
        }
        o += (size_t)n;
    }
    return (int)o;
}
