/* The two policies the fresco-hpc fuzz targets check requests against,
 * built once per process:
 *
 *   hpc_fuzz_defaults  the defaults alone, image_pool in a folder that does
 *                      not exist (every resolve stops at the pool)
 *   hpc_fuzz_open      a real pool (a fresh folder under $TMPDIR holding
 *                      debian-12.qcow2, osv-0.57.img, a folder named
 *                      dir.qcow2 and a symlink leaving the pool), user
 *                      images, vRDMA and IOcm allowed, node size set, and
 *                      backend pbs, so a request gets through every check
 *
 * The pool is removed when the process exits. Both stay allocated for the
 * process's life (reachable, so no leak report). */
#ifndef HPC_FUZZ_POLICY_H
#define HPC_FUZZ_POLICY_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"
#include "vmspec.h"

static hpc_conf hpc_fuzz_defaults;
static hpc_conf hpc_fuzz_open;
static char hpc_fuzz_pool[512];

/* The uid/gid requests are resolved for: not root, so hpc_readable_by walks
 * the folders instead of saying yes at once. */
#define HPC_FUZZ_UID 65534
#define HPC_FUZZ_GID 65534

static void hpc_fuzz_die(const char *what, const fr_error *e)
{
    fprintf(stderr, "fuzz policy: %s: %s: %s\n", what, e->where, e->message);
    abort();
}

static void hpc_fuzz_set(hpc_conf *c, const char *key, const char *value)
{
    fr_error e;
    fr_error_clear(&e);
    if (fr_config_set(&hpc_spec, c, key, value, "fuzz", &e) != 0) {
        hpc_fuzz_die(key, &e);
    }
}

static void hpc_fuzz_pool_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", hpc_fuzz_pool, name);
}

static void hpc_fuzz_pool_remove(void)
{
    static const char *const names[] = {"debian-12.qcow2", "osv-0.57.img", "outside.qcow2"};
    char path[600];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        hpc_fuzz_pool_path(path, sizeof path, names[i]);
        unlink(path);
    }
    hpc_fuzz_pool_path(path, sizeof path, "dir.qcow2");
    rmdir(path);
    rmdir(hpc_fuzz_pool);
}

static void hpc_fuzz_pool_make(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(hpc_fuzz_pool, sizeof hpc_fuzz_pool, "%s/fresco-fuzz-pool-XXXXXX",
             tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (mkdtemp(hpc_fuzz_pool) == NULL) {
        perror("fuzz policy: mkdtemp");
        abort();
    }
    atexit(hpc_fuzz_pool_remove);
    char path[600];
    static const char *const images[] = {"debian-12.qcow2", "osv-0.57.img"};
    for (size_t i = 0; i < sizeof images / sizeof images[0]; i++) {
        hpc_fuzz_pool_path(path, sizeof path, images[i]);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0 || close(fd) != 0) {
            perror(path);
            abort();
        }
    }
    hpc_fuzz_pool_path(path, sizeof path, "dir.qcow2");
    if (mkdir(path, 0755) != 0) {
        perror(path);
        abort();
    }
    hpc_fuzz_pool_path(path, sizeof path, "outside.qcow2");
    if (symlink("/etc/passwd", path) != 0) {
        perror(path);
        abort();
    }
}

/* Builds both policies on the first call; later calls do nothing. */
static void hpc_fuzz_policies(void)
{
    static int ready;
    if (ready) {
        return;
    }
    ready = 1;
    fr_error e;
    fr_error_clear(&e);
    if (fr_config_defaults(&hpc_spec, &hpc_fuzz_defaults, &e) != 0) {
        hpc_fuzz_die("defaults", &e);
    }
    hpc_fuzz_set(&hpc_fuzz_defaults, "image_pool", "/nonexistent/fresco-fuzz/images");
    if (hpc_conf_check(&hpc_fuzz_defaults, &e) != 0) {
        hpc_fuzz_die("defaults", &e);
    }

    hpc_fuzz_pool_make();
    if (fr_config_defaults(&hpc_spec, &hpc_fuzz_open, &e) != 0) {
        hpc_fuzz_die("open", &e);
    }
    hpc_fuzz_set(&hpc_fuzz_open, "image_pool", hpc_fuzz_pool);
    hpc_fuzz_set(&hpc_fuzz_open, "defaults.img", "debian-12.qcow2");
    hpc_fuzz_set(&hpc_fuzz_open, "allow_user_images", "true");
    hpc_fuzz_set(&hpc_fuzz_open, "iocm.enabled", "true");
    hpc_fuzz_set(&hpc_fuzz_open, "vrdma.enabled", "true");
    hpc_fuzz_set(&hpc_fuzz_open, "max_vms_per_node", "16");
    hpc_fuzz_set(&hpc_fuzz_open, "compute.cores", "64");
    hpc_fuzz_set(&hpc_fuzz_open, "compute.ram", "256GiB");
    hpc_fuzz_set(&hpc_fuzz_open, "backend", "pbs");
    if (hpc_conf_check(&hpc_fuzz_open, &e) != 0) {
        hpc_fuzz_die("open", &e);
    }
}

/* A failed call must say what failed: its code in e, and a message (out of
 * memory may come back bare). */
static void hpc_fuzz_check_error(int rv, const fr_error *e)
{
    if (rv >= 0 || rv == FR_ENOMEM) {
        return;
    }
    if (e->code != rv || e->message[0] == '\0') {
        fprintf(stderr, "error %d without its code or message (code %d, '%s')\n", rv, e->code,
                e->message);
        abort();
    }
}

/* A resolved request written as request lines must read back the same and
 * write the same bytes again: the agent re-reads that file. */
static void hpc_fuzz_check_request(const hpc_vmspec *s)
{
    char text[8192], again[8192];
    int n = hpc_vmspec_format(s, text, sizeof text);
    if (n < 0) {
        abort();
    }
    hpc_vmspec back = {0};
    fr_error e;
    fr_error_clear(&e);
    if (hpc_vmspec_parse_lines(&back, text, (size_t)n, "request", &e) != 0) {
        fprintf(stderr, "request does not read back: %s: %s\n%s", e.where, e.message, text);
        abort();
    }
    int m = hpc_vmspec_format(&back, again, sizeof again);
    if (m != n || memcmp(text, again, (size_t)n) != 0) {
        fprintf(stderr, "request changed on reading back:\n%s---\n%.*s", text, m < 0 ? 0 : m,
                again);
        abort();
    }
}

#endif
