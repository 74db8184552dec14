/* Node metadata: the strict JSON reader and canonical writer, collection
 * on this machine (real /proc, real dpkg status) and from a fixture tree,
 * the environment allow-list and escaping, mpirun probing, merging node
 * files into a job artefact, and the drift report. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nodemeta.h"

extern char **environ;

/* ---- helpers ---- */

static char *tmpdir_new(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof(tmpl), "%s/nodemeta-XXXXXX", base != NULL ? base : "/tmp");
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void tmpdir_remove(char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
}

static char *read_whole(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    fr_buf b = FR_BUF_INIT;
    char tmp[4096];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        assert_int_equal(fr_buf_append(&b, tmp, n), 0);
    }
    fclose(f);
    assert_int_equal(fr_buf_append(&b, "", 1), 0);
    return (char *)b.data;
}

static hpc_json *parse_ok(const char *text)
{
    hpc_json *j = NULL;
    fr_error e;
    fr_error_clear(&e);
    int rv = hpc_json_parse(text, strlen(text), &j, &e);
    if (rv != 0) {
        fail_msg("parse failed at %s: %s\n%s", e.where, e.message, text);
    }
    return j;
}

static hpc_json *parse_buf(const fr_buf *b)
{
    hpc_json *j = NULL;
    fr_error e;
    fr_error_clear(&e);
    int rv = hpc_json_parse((const char *)b->data, b->len, &j, &e);
    if (rv != 0) {
        fail_msg("parse failed at %s: %s\n%.*s", e.where, e.message, (int)b->len,
                 (const char *)b->data);
    }
    return j;
}

/* The string at path a.b.c (object keys only), or fails. */
static const char *str_at(const hpc_json *j, const char *k1, const char *k2)
{
    const hpc_json *v = hpc_json_get(hpc_json_get(j, k1), k2);
    const char *s = hpc_json_str(v, NULL);
    if (s == NULL) {
        fail_msg("%s.%s is not a string", k1, k2);
    }
    return s;
}

/* Runs argv (PATH search) and returns its stdout, malloc'd. */
static char *run_capture(char *const argv[])
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    pid_t pid;
    assert_int_equal(posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    fr_buf b = FR_BUF_INIT;
    char tmp[1024];
    ssize_t n;
    while ((n = read(fds[0], tmp, sizeof(tmp))) > 0) {
        assert_int_equal(fr_buf_append(&b, tmp, (size_t)n), 0);
    }
    close(fds[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_int_equal(fr_buf_append(&b, "", 1), 0);
    return (char *)b.data;
}

static void short_hostname(char *h, size_t n)
{
    assert_int_equal(gethostname(h, n), 0);
    h[n - 1] = '\0';
    h[strcspn(h, ".")] = '\0';
}

static const char *const allow[] = {"PATH", "LD_LIBRARY_PATH", "PBS_*", "SLURM_*", "OMPI_*", NULL};

/* Collects with a fixture-free default setup but a given envp, under node
 * name "n1". */
static hpc_json *collect_env_doc(char *const *envp, fr_buf *text)
{
    hpc_nodemeta_opts o = {.node_name = "n1",
                           .fresco_version = "0.0-test",
                           .dpkg_status = "/nonexistent/status",
                           .env_allow = allow,
                           .envp = envp};
    fr_error e;
    fr_error_clear(&e);
    int rv = hpc_nodemeta_collect(&o, text, &e);
    if (rv != 0) {
        fail_msg("collect: %d %s: %s", rv, e.where, e.message);
    }
    return parse_buf(text);
}

/* ---- collection on this machine ---- */

static void test_collect_this_machine(void **state)
{
    (void)state;
    assert_int_equal(setenv("SECRET_TOKEN", "hunter2", 1), 0);
    assert_int_equal(setenv("SLURM_JOB_ID", "4242", 1), 0);
    assert_int_equal(setenv("OMPI_MCA_btl", "self,tcp", 1), 0);
    hpc_nodemeta_opts o = {.fresco_version = "1.2.3-test", .env_allow = allow};
    fr_buf out = FR_BUF_INIT;
    fr_error e;
    fr_error_clear(&e);
    int rv = hpc_nodemeta_collect(&o, &out, &e);
    if (rv != 0) {
        fail_msg("collect: %d %s: %s", rv, e.where, e.message);
    }
    hpc_json *doc = parse_buf(&out);

    /* one member, named after this host */
    char host[256];
    short_hostname(host, sizeof(host));
    assert_int_equal(hpc_json_count(doc), 1);
    assert_string_equal(hpc_json_key_at(doc, 0, NULL), host);
    const hpc_json *node = hpc_json_get(doc, host);
    assert_int_equal(hpc_json_type_of(node), HPC_JSON_OBJECT);

    /* pid 1 and this process with its own name */
    char self_name[17] = {0};
    assert_int_equal(prctl(PR_GET_NAME, self_name, 0, 0, 0), 0);
    const hpc_json *procs = hpc_json_get(node, "processes");
    assert_int_equal(hpc_json_type_of(procs), HPC_JSON_ARRAY);
    bool saw_init = false, saw_self = false;
    int64_t prev = 0;
    for (size_t i = 0; i < hpc_json_count(procs); i++) {
        const hpc_json *p = hpc_json_at(procs, i);
        int64_t pid;
        assert_int_equal(hpc_json_int64(hpc_json_get(p, "pid"), &pid), 0);
        assert_true(pid > prev); /* by pid */
        prev = pid;
        const char *name = hpc_json_str(hpc_json_get(p, "name"), NULL);
        assert_non_null(name);
        saw_init = saw_init || pid == 1;
        if (pid == (int64_t)getpid()) {
            assert_string_equal(name, self_name);
            saw_self = true;
        }
    }
    assert_true(saw_init);
    assert_true(saw_self);

    /* libc6 at the version dpkg-query reports */
    char *const q[] = {"dpkg-query", "-W", "-f=${Version}", "libc6", NULL};
    char *want = run_capture(q);
    assert_true(want[0] != '\0');
    assert_string_equal(str_at(node, "packages", "libc6"), want);
    free(want);
    assert_true(hpc_json_count(hpc_json_get(node, "packages")) > 10);

    /* cpu */
    int64_t count;
    assert_int_equal(hpc_json_int64(hpc_json_get(hpc_json_get(node, "cpu"), "count"), &count), 0);
    assert_int_equal(count, sysconf(_SC_NPROCESSORS_ONLN));
    (void)str_at(node, "cpu", "model");
    (void)str_at(node, "cpu", "mhz");
    (void)str_at(node, "cpu", "flags");

    /* env: allowed names only */
    const hpc_json *env = hpc_json_get(node, "env");
    assert_string_equal(str_at(node, "env", "PATH"), getenv("PATH"));
    assert_string_equal(str_at(node, "env", "SLURM_JOB_ID"), "4242");
    assert_string_equal(str_at(node, "env", "OMPI_MCA_btl"), "self,tcp");
    assert_null(hpc_json_get(env, "SECRET_TOKEN"));
    assert_null(strstr((const char *)out.data, "hunter2"));
    for (size_t i = 0; i < hpc_json_count(env); i++) {
        const char *k = hpc_json_key_at(env, i, NULL);
        assert_true(strcmp(k, "PATH") == 0 || strcmp(k, "LD_LIBRARY_PATH") == 0 ||
                    strncmp(k, "PBS_", 4) == 0 || strncmp(k, "SLURM_", 6) == 0 ||
                    strncmp(k, "OMPI_", 5) == 0);
    }

    /* time: "YYYY-MM-DD hh:mm:ss.uuuuuu", UTC, now */
    const char *t = hpc_json_str(hpc_json_get(node, "time"), NULL);
    assert_non_null(t);
    assert_int_equal(strlen(t), 26);
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *rest = strptime(t, "%Y-%m-%d %H:%M:%S", &tm);
    assert_non_null(rest);
    assert_true(rest[0] == '.' && strspn(rest + 1, "0123456789") == 6);
    time_t when = timegm(&tm);
    assert_true(llabs((long long)(when - time(NULL))) < 60);

    /* versions */
    struct utsname un;
    assert_int_equal(uname(&un), 0);
    assert_string_equal(str_at(node, "versions", "fresco"), "1.2.3-test");
    assert_string_equal(str_at(node, "versions", "kernel"), un.release);
    assert_true(str_at(node, "versions", "os")[0] != '\0');
    const hpc_json *mpi = hpc_json_get(node, "mpi");
    assert_int_equal(hpc_json_type_of(mpi), HPC_JSON_OBJECT);
    if (hpc_json_count(mpi) > 0) { /* this machine has an mpirun on PATH */
        const char *mp = str_at(node, "mpi", "path");
        size_t ml = strlen(mp);
        assert_true(ml > 7 && strcmp(mp + ml - 7, "/mpirun") == 0);
        assert_int_equal(access(mp, X_OK), 0);
        (void)str_at(node, "mpi", "version");
    }

    /* the output is canonical: writing the parsed tree gives the same bytes */
    fr_buf again = FR_BUF_INIT;
    assert_int_equal(hpc_json_write(doc, &again), 0);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.data, out.data, out.len);

    /* and a node compared with itself shows no drift */
    fr_buf report = FR_BUF_INIT;
    assert_int_equal(hpc_nodemeta_diff(doc, NULL, doc, host, &report, &e), 0);
    assert_int_equal(report.len, 0);

    fr_buf_free(&report);
    fr_buf_free(&again);
    hpc_json_free(doc);
    fr_buf_free(&out);
    unsetenv("SECRET_TOKEN");
    unsetenv("SLURM_JOB_ID");
    unsetenv("OMPI_MCA_btl");
}

/* ---- collection from a fixture tree ---- */

static const char fixture_status[] =
    "Package: libc6\n"
    "Status: install ok installed\n"
    "Architecture: amd64\n"
    "Multi-Arch: same\n"
    "Version: 2.36-9+deb12u4\n"
    "Description: GNU C Library: Shared libraries\n"
    " Contains the standard libraries that are used by nearly all programs on\n"
    " the system.\n"
    "\n"
    "Package: libc6\n"
    "Status: install ok installed\n"
    "Architecture: i386\n"
    "Version: 2.36-9+deb12u4\n"
    "\n"
    "Package: oldtool\n"
    "Status: deinstall ok config-files\n"
    "Architecture: amd64\n"
    "Version: 0.9\n"
    "\n"
    "package: bash\n"
    "status: install ok installed\n"
    "architecture: amd64\n"
    "version: 5.2.15-2+b2\n"
    "\n"
    "\n"
    "Package: half\n"
    "Status: install reinstreq half-installed\n"
    "Version: 1\n"
    "\n"
    "Package: zlib1g\n"
    "Status: hold ok installed\n"
    "Version: 1:1.2.13.dfsg-1\n";

static const char fixture_cpuinfo[] = "processor\t: 0\n"
                                      "vendor_id\t: GenuineIntel\n"
                                      "model name\t: Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz\n"
                                      "cpu MHz\t\t: 2500.000\n"
                                      "flags\t\t: fpu vme de pse\n"
                                      "\n"
                                      "processor\t: 1\n"
                                      "model name\t: something else\n"
                                      "cpu MHz\t\t: 1200.000\n"
                                      "flags\t\t: fpu\n"
                                      "\n";

static const char fixture_os[] = "NAME=\"Debian GNU/Linux\"\n"
                                 "# a comment\n"
                                 "PRETTY_NAME=\"Debian \\\"test\\\" \\\\ 12\"\n"
                                 "ID=debian\n";

typedef struct fixture {
    char *dir, *proc, *status, *os;
} fixture;

static void fixture_make(fixture *f)
{
    f->dir = tmpdir_new();
    f->proc = join(f->dir, "proc");
    assert_int_equal(mkdir(f->proc, 0755), 0);
    const char *pids[][2] = {{"1", "systemd\n"}, {"42", "bash\n"}, {"1000", "slurmstepd\n"}};
    for (size_t i = 0; i < 3; i++) {
        char *d = join(f->proc, pids[i][0]);
        assert_int_equal(mkdir(d, 0755), 0);
        char *c = join(d, "comm");
        write_file(c, pids[i][1], 0644);
        free(c);
        free(d);
    }
    char *gone = join(f->proc, "77"); /* a process that exited: no comm */
    assert_int_equal(mkdir(gone, 0755), 0);
    free(gone);
    char *self = join(f->proc, "self");
    assert_int_equal(mkdir(self, 0755), 0);
    free(self);
    char *ci = join(f->proc, "cpuinfo");
    write_file(ci, fixture_cpuinfo, 0644);
    free(ci);
    f->status = join(f->dir, "status");
    write_file(f->status, fixture_status, 0644);
    f->os = join(f->dir, "os-release");
    write_file(f->os, fixture_os, 0644);
}

static void fixture_free(fixture *f)
{
    free(f->proc);
    free(f->status);
    free(f->os);
    tmpdir_remove(f->dir);
}

static void test_collect_fixture(void **state)
{
    (void)state;
    fixture f;
    fixture_make(&f);
    char *envp[] = {"PATH=/usr/bin", "HOME=/root", NULL};
    hpc_nodemeta_opts o = {.node_name = "node07",
                           .fresco_version = "9.9",
                           .proc_root = f.proc,
                           .dpkg_status = f.status,
                           .os_release = f.os,
                           .env_allow = allow,
                           .envp = envp,
                           .mpirun = "/nonexistent/mpirun"};
    fr_buf out = FR_BUF_INIT;
    fr_error e;
    assert_int_equal(hpc_nodemeta_collect(&o, &out, &e), 0);
    hpc_json *doc = parse_buf(&out);
    const hpc_json *node = hpc_json_get(doc, "node07");
    assert_non_null(node);

    const hpc_json *procs = hpc_json_get(node, "processes");
    assert_int_equal(hpc_json_count(procs), 3);
    const char *names[] = {"systemd", "bash", "slurmstepd"};
    const int64_t pids[] = {1, 42, 1000};
    for (size_t i = 0; i < 3; i++) {
        int64_t pid;
        assert_int_equal(hpc_json_int64(hpc_json_get(hpc_json_at(procs, i), "pid"), &pid), 0);
        assert_int_equal(pid, pids[i]);
        assert_string_equal(hpc_json_str(hpc_json_get(hpc_json_at(procs, i), "name"), NULL),
                            names[i]);
    }

    /* installed only; two architectures of one name are told apart */
    const hpc_json *pk = hpc_json_get(node, "packages");
    assert_int_equal(hpc_json_count(pk), 4);
    assert_string_equal(str_at(node, "packages", "libc6:amd64"), "2.36-9+deb12u4");
    assert_string_equal(str_at(node, "packages", "libc6:i386"), "2.36-9+deb12u4");
    assert_string_equal(str_at(node, "packages", "bash"), "5.2.15-2+b2");
    assert_string_equal(str_at(node, "packages", "zlib1g"), "1:1.2.13.dfsg-1");
    assert_null(hpc_json_get(pk, "oldtool"));
    assert_null(hpc_json_get(pk, "half"));

    int64_t count;
    assert_int_equal(hpc_json_int64(hpc_json_get(hpc_json_get(node, "cpu"), "count"), &count), 0);
    assert_int_equal(count, 2);
    assert_string_equal(str_at(node, "cpu", "model"), "Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz");
    assert_string_equal(str_at(node, "cpu", "mhz"), "2500.000");
    assert_string_equal(str_at(node, "cpu", "flags"), "fpu vme de pse");

    assert_int_equal(hpc_json_count(hpc_json_get(node, "env")), 1);
    assert_string_equal(str_at(node, "env", "PATH"), "/usr/bin");
    assert_int_equal(hpc_json_count(hpc_json_get(node, "mpi")), 0);
    assert_string_equal(str_at(node, "versions", "os"), "Debian \"test\" \\ 12");
    assert_string_equal(str_at(node, "versions", "fresco"), "9.9");

    /* the exact layout of the start of a document */
    const char *head = "{\n"
                       "  \"node07\": {\n"
                       "    \"cpu\": {\n"
                       "      \"count\": 2,\n"
                       "      \"flags\": \"fpu vme de pse\",\n";
    assert_memory_equal(out.data, head, strlen(head));
    assert_true(out.data[out.len - 1] == '\n');
    hpc_json_free(doc);

    /* a missing dpkg status is no packages; a missing proc_root is an error */
    fr_buf_reset(&out);
    o.dpkg_status = "/nonexistent/dpkg/status";
    assert_int_equal(hpc_nodemeta_collect(&o, &out, &e), 0);
    doc = parse_buf(&out);
    assert_int_equal(hpc_json_count(hpc_json_get(hpc_json_get(doc, "node07"), "packages")), 0);
    hpc_json_free(doc);
    fr_buf_reset(&out);
    o.proc_root = "/nonexistent/proc";
    assert_int_equal(hpc_nodemeta_collect(&o, &out, &e), FR_EIO);
    assert_string_equal(e.where, "/nonexistent/proc");
    assert_non_null(strstr(e.message, "proc_root"));
    assert_int_equal(out.len, 0);

    o.proc_root = f.proc;
    o.fresco_version = NULL;
    assert_int_equal(hpc_nodemeta_collect(&o, &out, &e), FR_EINVAL);
    assert_string_equal(e.where, "fresco_version");
    o.fresco_version = "9.9";
    o.node_name = "";
    assert_int_equal(hpc_nodemeta_collect(&o, &out, &e), FR_EINVAL);
    assert_string_equal(e.where, "node_name");

    fr_buf_free(&out);
    fixture_free(&f);
}

/* ---- environment values ---- */

static void test_env_values_round_trip(void **state)
{
    (void)state;
    /* every control byte, DEL, quotes, backslashes, newlines, non-ASCII */
    char ctl[40];
    size_t k = 0;
    for (int c = 1; c < 0x20; c++) {
        ctl[k++] = (char)c;
    }
    ctl[k++] = 0x7f;
    ctl[k] = '\0';
    char ctl_entry[64];
    snprintf(ctl_entry, sizeof(ctl_entry), "SLURM_CTL=%s", ctl);
    char *envp[] = {"SLURM_Q=say \"hi\" and 'bye'",
                    "SLURM_NL=line one\nline two\r\n",
                    "SLURM_BS=C:\\path\\to\\\\share\\",
                    ctl_entry,
                    "SLURM_U8=caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
                    "SLURM_JSON={\"a\": [1, \"\\u0041\"]}",
                    "SLURM_EMPTY=",
                    "SLURM_EQ=a=b=c",
                    NULL};
    fr_buf text = FR_BUF_INIT;
    hpc_json *doc = collect_env_doc(envp, &text);
    const hpc_json *node = hpc_json_get(doc, "n1");
    for (size_t i = 0; envp[i] != NULL; i++) {
        const char *eq = strchr(envp[i], '=');
        char name[32];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - envp[i]), envp[i]);
        assert_string_equal(str_at(node, "env", name), eq + 1);
    }
    /* written as escapes: the text is ASCII without control bytes */
    for (size_t i = 0; i < text.len; i++) {
        unsigned char c = text.data[i];
        assert_true(c == '\n' || (c >= 0x20 && c < 0x7f));
    }
    assert_non_null(strstr((const char *)text.data, "\"SLURM_NL\": \"line one\\u000aline two"));
    assert_non_null(strstr((const char *)text.data, "\\u001f\\u007f\""));
    assert_non_null(strstr((const char *)text.data, "caf\\u00e9 \\u20ac \\ud83d\\ude00"));
    assert_non_null(strstr((const char *)text.data, "say \\\"hi\\\""));

    /* write + parse again gives the same values and bytes */
    fr_buf again = FR_BUF_INIT;
    assert_int_equal(hpc_json_write(doc, &again), 0);
    hpc_json *doc2 = parse_buf(&again);
    assert_true(hpc_json_equal(doc, doc2));
    assert_int_equal(again.len, text.len);
    assert_memory_equal(again.data, text.data, text.len);
    hpc_json_free(doc2);
    fr_buf_free(&again);
    hpc_json_free(doc);
    fr_buf_free(&text);
}

/* Bytes that are not UTF-8 become U+FFFD, one per byte, written \ufffd;
 * names that are not UTF-8 are left out; the first of two entries counts. */
static void test_env_invalid_utf8(void **state)
{
    (void)state;
    char *envp[] = {"SLURM_BAD=a\xff"
                    "b\xc3",
                    "SLURM_OVERLONG=\xc0\xaf|\xed\xa0\x80",
                    "SLURM_\xfe=hidden",
                    "SLURM_TWICE=first",
                    "SLURM_TWICE=second",
                    "NOEQUALS",
                    "=novalue",
                    NULL};
    fr_buf text = FR_BUF_INIT;
    hpc_json *doc = collect_env_doc(envp, &text);
    const hpc_json *node = hpc_json_get(doc, "n1");
    assert_string_equal(str_at(node, "env", "SLURM_BAD"), "a\xef\xbf\xbd"
                                                          "b\xef\xbf\xbd");
    assert_non_null(strstr((const char *)text.data, "\"SLURM_BAD\": \"a\\ufffdb\\ufffd\""));
    assert_string_equal(str_at(node, "env", "SLURM_OVERLONG"),
                        "\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(str_at(node, "env", "SLURM_TWICE"), "first");
    assert_int_equal(hpc_json_count(hpc_json_get(node, "env")), 3);
    assert_null(strstr((const char *)text.data, "hidden"));
    hpc_json_free(doc);
    fr_buf_free(&text);
}

/* ---- mpirun ---- */

static hpc_json *collect_mpi(char *const *envp, const char *mpirun)
{
    hpc_nodemeta_opts o = {.node_name = "n1",
                           .fresco_version = "t",
                           .dpkg_status = "/nonexistent/status",
                           .env_allow = allow,
                           .envp = envp,
                           .mpirun = mpirun};
    fr_buf out = FR_BUF_INIT;
    fr_error e;
    int rv = hpc_nodemeta_collect(&o, &out, &e);
    if (rv != 0) {
        fail_msg("collect: %s: %s", e.where, e.message);
    }
    hpc_json *doc = parse_buf(&out);
    fr_buf_free(&out);
    return doc;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_mpirun(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    char *bin = join(dir, "bin");
    assert_int_equal(mkdir(bin, 0755), 0);
    char *mpirun = join(bin, "mpirun");
    write_file(mpirun,
               "#!/bin/sh\n"
               "[ \"$1\" = --version ] || exit 3\n"
               "echo 'mpirun (Open MPI) 4.1.4'\n"
               "echo\n"
               "echo 'Report bugs to https://www.open-mpi.org/community/help/'\n",
               0755);
    char path_entry[600];
    /* only the fixture's folder: this machine may have an mpirun of its own */
    snprintf(path_entry, sizeof(path_entry), "PATH=/nonexistent::%s", bin);
    char *envp[] = {path_entry, NULL};

    /* found on envp's PATH; first line of its --version */
    hpc_json *doc = collect_mpi(envp, NULL);
    const hpc_json *node = hpc_json_get(doc, "n1");
    assert_string_equal(str_at(node, "mpi", "path"), mpirun);
    assert_string_equal(str_at(node, "mpi", "version"), "mpirun (Open MPI) 4.1.4");
    hpc_json_free(doc);

    /* not executable: skipped */
    assert_int_equal(chmod(mpirun, 0644), 0);
    doc = collect_mpi(envp, mpirun);
    assert_int_equal(hpc_json_count(hpc_json_get(hpc_json_get(doc, "n1"), "mpi")), 0);
    hpc_json_free(doc);
    doc = collect_mpi(envp, NULL);
    assert_int_equal(hpc_json_count(hpc_json_get(hpc_json_get(doc, "n1"), "mpi")), 0);
    hpc_json_free(doc);

    /* no PATH at all: nothing searched */
    char *bare[] = {"HOME=/", NULL};
    doc = collect_mpi(bare, NULL);
    assert_int_equal(hpc_json_count(hpc_json_get(hpc_json_get(doc, "n1"), "mpi")), 0);
    hpc_json_free(doc);

    /* one that never answers is stopped at the 2 s deadline */
    char *hang = join(bin, "mpirun-hang");
    write_file(hang, "#!/bin/sh\nexec sleep 30\n", 0755);
    char *with_sleep[] = {"PATH=/usr/bin:/bin", NULL};
    int64_t t0 = now_ms();
    doc = collect_mpi(with_sleep, hang);
    int64_t took = now_ms() - t0;
    assert_true(took >= 1900 && took < 5000);
    assert_string_equal(str_at(hpc_json_get(doc, "n1"), "mpi", "path"), hang);
    assert_string_equal(str_at(hpc_json_get(doc, "n1"), "mpi", "version"), "");
    hpc_json_free(doc);

    free(hang);
    free(mpirun);
    free(bin);
    tmpdir_remove(dir);
}

/* ---- merge ---- */

static const char node01[] = "{\"node01\": {\"packages\": {\"libc6\": \"2.36-9\"}, "
                             "\"env\": {\"PATH\": \"/usr/bin\"}, \"time\": \"t1\"}}\n";
static const char node02[] = "{\"node02\": {\"packages\": {\"libc6\": \"2.36-9\"}},\n"
                             " \"node03\": {}}\n";
static const char node01_again[] = "{\"node00\": {},\n  \"node01\": {}}";

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        n += de->d_name[0] != '.';
    }
    closedir(d);
    return n;
}

static void test_merge(void **state)
{
    (void)state;
    char *dir = tmpdir_new();
    char *a = join(dir, "a.json"), *b = join(dir, "b.json"), *c = join(dir, "c.json");
    char *bad = join(dir, "bad.json"), *out = join(dir, "job.json");
    write_file(a, node01, 0644);
    write_file(b, node02, 0644);
    write_file(c, node01_again, 0644);
    write_file(bad, "{\"node09\": {\n  \"cpu\": {\"count\": 02}}}", 0644);
    fr_error e;

    const char *ok[] = {b, a};
    assert_int_equal(hpc_nodemeta_merge(ok, 2, out, &e), 0);
    char *merged = read_whole(out);
    assert_non_null(merged);
    hpc_json *doc = parse_ok(merged);
    assert_int_equal(hpc_json_count(doc), 3);
    assert_string_equal(hpc_json_key_at(doc, 0, NULL), "node01");
    assert_string_equal(hpc_json_key_at(doc, 1, NULL), "node02");
    assert_string_equal(hpc_json_key_at(doc, 2, NULL), "node03");
    assert_string_equal(str_at(hpc_json_get(doc, "node01"), "env", "PATH"), "/usr/bin");
    /* canonical text */
    fr_buf again = FR_BUF_INIT;
    assert_int_equal(hpc_json_write(doc, &again), 0);
    assert_int_equal(again.len, strlen(merged));
    assert_memory_equal(again.data, merged, again.len);
    struct stat st;
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    fr_buf_free(&again);
    hpc_json_free(doc);
    free(merged);
    assert_int_equal(count_entries(dir), 5);

    /* a node in two files: refused, the old artefact stays, no temporary */
    write_file(out, "old", 0644);
    const char *dup[] = {a, b, c};
    assert_int_equal(hpc_nodemeta_merge(dup, 3, out, &e), FR_EDUP);
    assert_non_null(strstr(e.message, "node01"));
    assert_non_null(strstr(e.message, a));
    assert_non_null(strstr(e.message, c));
    char want_where[600];
    snprintf(want_where, sizeof(want_where), "%s:2:3", c);
    assert_string_equal(e.where, want_where);
    char *kept = read_whole(out);
    assert_string_equal(kept, "old");
    free(kept);
    assert_int_equal(count_entries(dir), 5);

    /* and with no artefact before, none after */
    assert_int_equal(unlink(out), 0);
    assert_int_equal(hpc_nodemeta_merge(dup, 3, out, &e), FR_EDUP);
    assert_int_equal(access(out, F_OK), -1);
    assert_int_equal(count_entries(dir), 4);

    /* bad JSON: the file and line:col */
    const char *withbad[] = {a, bad};
    assert_int_equal(hpc_nodemeta_merge(withbad, 2, out, &e), FR_EINVAL);
    snprintf(want_where, sizeof(want_where), "%s:2:20", bad);
    assert_string_equal(e.where, want_where);
    assert_non_null(strstr(e.message, bad));
    assert_non_null(strstr(e.message, "leading zero"));
    assert_int_equal(access(out, F_OK), -1);

    /* not a node file */
    write_file(bad, "  [1]", 0644);
    assert_int_equal(hpc_nodemeta_merge(withbad, 2, out, &e), FR_ETYPE);
    snprintf(want_where, sizeof(want_where), "%s:1:3", bad);
    assert_string_equal(e.where, want_where);
    write_file(bad, "{\"n\": [1]}", 0644);
    assert_int_equal(hpc_nodemeta_merge(withbad, 2, out, &e), FR_ETYPE);
    write_file(bad, "{}", 0644);
    assert_int_equal(hpc_nodemeta_merge(withbad, 2, out, &e), FR_EMISSING);

    /* unreadable input */
    char *missing = join(dir, "missing.json");
    const char *withmissing[] = {a, missing};
    assert_int_equal(hpc_nodemeta_merge(withmissing, 2, out, &e), FR_EIO);
    assert_string_equal(e.where, missing);
    assert_int_equal(access(out, F_OK), -1);
    assert_int_equal(count_entries(dir), 4);

    free(missing);
    free(a);
    free(b);
    free(c);
    free(bad);
    free(out);
    tmpdir_remove(dir);
}

/* ---- diff ---- */

static const char old_node[] =
    "{\"node01\": {\n"
    "  \"processes\": [{\"pid\": 1, \"name\": \"systemd\"}, {\"pid\": 9, \"name\": \"bash\"},\n"
    "                {\"pid\": 10, \"name\": \"bash\"}, {\"pid\": 11, \"name\": \"cron\"}],\n"
    "  \"packages\": {\"libc6\": \"2.36-9\", \"libfoo\": \"1.0\", \"libgone\": \"3.1\"},\n"
    "  \"cpu\": {\"count\": 2, \"model\": \"EPYC\", \"mhz\": \"2000\", \"flags\": \"fpu\"},\n"
    "  \"env\": {\"PATH\": \"/usr/bin\", \"SLURM_JOB_ID\": \"1\"},\n"
    "  \"time\": \"2026-12-06 13:20:00.123456\",\n"
    "  \"mpi\": {},\n"
    "  \"versions\": {\"fresco\": \"1.0\", \"kernel\": \"6.1.0\", \"os\": \"Debian 12\"}}}";

static const char new_node[] =
    "{\"node02\": {\n"
    "  \"processes\": [{\"pid\": 1, \"name\": \"systemd\"}, {\"pid\": 7, \"name\": \"bash\"},\n"
    "                {\"pid\": 12, \"name\": \"sshd\"}],\n"
    "  \"packages\": {\"libc6\": \"2.36-10\", \"libfoo\": \"1.0\", \"libnew\": \"2.0\"},\n"
    "  \"cpu\": {\"count\": 4, \"model\": \"EPYC\", \"mhz\": \"2000\", \"flags\": \"fpu\"},\n"
    "  \"env\": {\"PATH\": \"/opt/mpi/bin:/usr/bin\", \"SLURM_JOB_ID\": \"1\", \"X\": \"a\\nb\"},\n"
    "  \"time\": \"2026-12-07 08:00:00.000001\",\n"
    "  \"mpi\": {\"path\": \"/usr/bin/mpirun\", \"version\": \"\"},\n"
    "  \"versions\": {\"fresco\": \"1.0\", \"kernel\": \"6.1.0\", \"os\": \"Debian 12\"}}}";

static void test_diff(void **state)
{
    (void)state;
    hpc_json *a = parse_ok(old_node), *b = parse_ok(new_node);
    fr_buf out = FR_BUF_INIT;
    fr_error e;
    int n = hpc_nodemeta_diff(a, NULL, b, NULL, &out, &e);
    assert_int_equal(fr_buf_append(&out, "", 1), 0);
    assert_string_equal((const char *)out.data,
                        "packages: changed libc6: 2.36-9 -> 2.36-10\n"
                        "packages: removed libgone: 3.1\n"
                        "packages: added libnew: 2.0\n"
                        "cpu: changed count: 2 -> 4\n"
                        "env: changed PATH: /usr/bin -> /opt/mpi/bin:/usr/bin\n"
                        "env: added X: a\\u000ab\n"
                        "mpi: added path: /usr/bin/mpirun\n"
                        "mpi: added version: \"\"\n"
                        "processes: removed cron\n"
                        "processes: added sshd\n");
    assert_int_equal(n, 10);

    /* identical nodes, and the same node at another time: no drift */
    fr_buf_reset(&out);
    assert_int_equal(hpc_nodemeta_diff(a, "node01", a, "node01", &out, &e), 0);
    assert_int_equal(out.len, 0);
    char *later = strdup(old_node);
    memcpy(strstr(later, "2026-12-06"), "2027-01-01", 10);
    hpc_json *a2 = parse_ok(later);
    assert_int_equal(hpc_nodemeta_diff(a, NULL, a2, NULL, &out, &e), 0);
    assert_int_equal(out.len, 0);

    /* named nodes in a merged artefact; a missing one */
    hpc_json *job = parse_ok("{\"x\": {\"packages\": {\"p\": \"1\"}}, \"y\": {}}");
    assert_int_equal(hpc_nodemeta_diff(job, "y", job, "x", &out, &e), 1);
    assert_int_equal(fr_buf_append(&out, "", 1), 0);
    assert_string_equal((const char *)out.data, "packages: added p: 1\n");
    fr_buf_reset(&out);
    assert_int_equal(hpc_nodemeta_diff(job, "z", job, "x", &out, &e), FR_ENOTFOUND);
    assert_non_null(strstr(e.message, "\"z\""));

    /* wrong shapes are named */
    hpc_json *odd = parse_ok("{\"n\": {\"packages\": [1]}}");
    assert_int_equal(hpc_nodemeta_diff(odd, NULL, a, NULL, &out, &e), FR_ETYPE);
    assert_string_equal(e.where, "n.packages");
    hpc_json_free(odd);
    odd = parse_ok("{\"n\": {\"processes\": [{\"pid\": 1}]}}");
    assert_int_equal(hpc_nodemeta_diff(a, NULL, odd, NULL, &out, &e), FR_ETYPE);
    assert_string_equal(e.where, "n.processes[0].name");
    hpc_json_free(odd);
    odd = parse_ok("[]");
    assert_int_equal(hpc_nodemeta_diff(odd, NULL, a, NULL, &out, &e), FR_ETYPE);
    hpc_json_free(odd);
    odd = parse_ok("{}");
    assert_int_equal(hpc_nodemeta_diff(a, NULL, odd, NULL, &out, &e), FR_EMISSING);
    assert_int_equal(out.len, 0);

    hpc_json_free(odd);
    hpc_json_free(job);
    hpc_json_free(a2);
    free(later);
    hpc_json_free(a);
    hpc_json_free(b);
    fr_buf_free(&out);
}

/* ---- the JSON reader ---- */

typedef struct bad_case {
    const char *text;
    size_t len; /* 0: strlen */
    int code;
    const char *where;
    const char *says; /* a word the message must contain */
} bad_case;

static void check_bad(const bad_case *c)
{
    hpc_json *j = (hpc_json *)&j; /* must be reset to NULL */
    fr_error e;
    fr_error_clear(&e);
    size_t len = c->len != 0 ? c->len : strlen(c->text);
    int rv = hpc_json_parse(c->text, len, &j, &e);
    if (rv != c->code || strcmp(e.where, c->where) != 0 || strstr(e.message, c->says) == NULL) {
        fail_msg("%.40s: got %d at %s (%s), want %d at %s (%s)", c->text, rv, e.where, e.message,
                 c->code, c->where, c->says);
    }
    assert_null(j);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    static const bad_case cases[] = {
        /* trailing garbage */
        {"{\"a\": 1}\n x", 0, FR_ETRAILING, "2:2", "after the value"},
        {"1 2", 0, FR_ETRAILING, "1:3", "after the value"},
        {"truex", 0, FR_ETRAILING, "1:5", "after the value"},
        /* duplicate keys */
        {"{\"a\": 1,\n \"a\": 2}", 0, FR_EDUP, "2:2", "duplicate key \"a\""},
        {"{\"b\": {\"x\": 1, \"y\": 2, \"x\": 3}}", 0, FR_EDUP, "1:24", "first at 1:8"},
        {"{\"\\u0041\": 1, \"A\": 2}", 0, FR_EDUP, "1:15", "duplicate"},
        /* bad UTF-8 */
        {"[\"\xc3\x28\"]", 0, FR_EINVAL, "1:3", "UTF-8"},
        {"\"\xc0\xaf\"", 0, FR_EINVAL, "1:2", "UTF-8"},
        {"\"ok \xed\xa0\x80\"", 0, FR_EINVAL, "1:5", "UTF-8"},
        {"\"\xf4\x90\x80\x80\"", 0, FR_EINVAL, "1:2", "UTF-8"},
        {"\"\xe2\x82\"", 0, FR_EINVAL, "1:2", "UTF-8"},
        {"\"\xff\"", 0, FR_EINVAL, "1:2", "UTF-8"},
        {"[\xc3\xa9]", 0, FR_EINVAL, "1:2", "0xC3"},
        /* lone surrogates */
        {"\"\\ud800\"", 0, FR_EINVAL, "1:2", "lone surrogate"},
        {"\"ab\\uDC00\"", 0, FR_EINVAL, "1:4", "lone surrogate"},
        {"[\n\"\\ud83d\\u0041\"]", 0, FR_EINVAL, "2:2", "lone surrogate"},
        {"\"\\ud83d\\ud83d\"", 0, FR_EINVAL, "1:2", "lone surrogate"},
        /* leading zeros and other bad numbers */
        {"{\n  \"a\": 01\n}", 0, FR_EINVAL, "2:8", "leading zero"},
        {"-012", 0, FR_EINVAL, "1:1", "leading zero"},
        {"[1, 00]", 0, FR_EINVAL, "1:5", "leading zero"},
        {"-", 0, FR_EINVAL, "1:1", "digit"},
        {"1.", 0, FR_EINVAL, "1:3", "digit"},
        {"1e+", 0, FR_EINVAL, "1:4", "digit"},
        {".5", 0, FR_EINVAL, "1:1", "unexpected"},
        {"+1", 0, FR_EINVAL, "1:1", "unexpected"},
        /* unterminated strings */
        {"{\"a\": \"abc", 0, FR_ETRUNC, "1:7", "unterminated string"},
        {"[\n  \"x\\", 0, FR_ETRUNC, "2:3", "unterminated string"},
        {"{\"ab", 0, FR_ETRUNC, "1:2", "unterminated string"},
        /* more */
        {"", 0, FR_ETRUNC, "1:1", "ends"},
        {"  \n ", 0, FR_ETRUNC, "2:2", "ends"},
        {"[1, 2", 0, FR_ETRUNC, "1:6", "ends"},
        {"[1,]", 0, FR_EINVAL, "1:4", "unexpected ']'"},
        {"{\"a\": 1,}", 0, FR_EINVAL, "1:9", "expected a string key"},
        {"{'a': 1}", 0, FR_EINVAL, "1:2", "double quotes"},
        {"{\"a\" 1}", 0, FR_EINVAL, "1:6", "':'"},
        {"[1 2]", 0, FR_EINVAL, "1:4", "','"},
        {"\"tab\there\"", 0, FR_EINVAL, "1:5", "control character U+0009"},
        {"\"\\x\"", 0, FR_EINVAL, "1:2", "invalid escape"},
        {"\"\\u12G4\"", 0, FR_EINVAL, "1:2", "four hex digits"},
        {"\xef\xbb\xbf{}", 0, FR_EINVAL, "1:1", "byte order mark"},
        {"nul", 0, FR_EINVAL, "1:1", "literal"},
        {"[\0]", 3, FR_EINVAL, "1:2", "0x00"},
        {"// c\n{}", 0, FR_EINVAL, "1:1", "'/'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_bad(&cases[i]);
    }
}

static void test_parse_depth_and_size(void **state)
{
    (void)state;
    char deep[80];
    /* 32 levels are fine, 33 are not */
    for (int levels = 32; levels <= 33; levels++) {
        memset(deep, '[', (size_t)levels);
        memset(deep + levels, ']', (size_t)levels);
        deep[2 * levels] = '\0';
        hpc_json *j = NULL;
        fr_error e;
        int rv = hpc_json_parse(deep, strlen(deep), &j, &e);
        if (levels == 32) {
            assert_int_equal(rv, 0);
            hpc_json_free(j);
        } else {
            assert_int_equal(rv, FR_EDEPTH);
            assert_string_equal(e.where, "1:33");
            assert_non_null(strstr(e.message, "32"));
            assert_null(j);
        }
    }
    /* objects count too */
    char obj[400] = "";
    for (int i = 0; i < 33; i++) {
        strcat(obj, "{\"k\":");
    }
    strcat(obj, "1");
    for (int i = 0; i < 33; i++) {
        strcat(obj, "}");
    }
    hpc_json *j = NULL;
    fr_error e;
    assert_int_equal(hpc_json_parse(obj, strlen(obj), &j, &e), FR_EDEPTH);
    assert_string_equal(e.where, "1:161");

    /* over 64 MiB */
    size_t big = (size_t)HPC_JSON_MAX_SIZE + 1;
    char *text = malloc(big);
    assert_non_null(text);
    memset(text, ' ', big);
    text[0] = '0';
    assert_int_equal(hpc_json_parse(text, big, &j, &e), FR_ETOOBIG);
    assert_string_equal(e.where, "1:1");
    assert_null(j);
    free(text);
}

static void test_parse_and_write(void **state)
{
    (void)state;
    const char *text = " {\"z\": [1, -0.5, 2e10, 1E-3, true, false, null, {}, []],\r\n"
                       "\t\"a\\u0000b\": \"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\","
                       " \"m\": {\"y\": \"\xe2\x82\xac\", \"x\": {\"w\": []}}} ";
    hpc_json *j = parse_ok(text);
    assert_int_equal(hpc_json_type_of(j), HPC_JSON_OBJECT);
    assert_int_equal(hpc_json_count(j), 3);
    size_t klen;
    const char *k = hpc_json_key_at(j, 0, &klen); /* members in key order */
    assert_int_equal(klen, 3);
    assert_memory_equal(k, "a\0b", 3);
    size_t slen;
    const char *s = hpc_json_str(hpc_json_at(j, 0), &slen);
    assert_int_equal(slen, 8 + 2 + 4);
    assert_memory_equal(s, "\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80", slen);
    const hpc_json *z = hpc_json_get(j, "z");
    assert_int_equal(hpc_json_count(z), 9);
    assert_string_equal(hpc_json_number_text(hpc_json_at(z, 1)), "-0.5");
    int64_t v;
    assert_int_equal(hpc_json_int64(hpc_json_at(z, 0), &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(hpc_json_int64(hpc_json_at(z, 2), &v), FR_ETYPE);
    assert_true(hpc_json_bool(hpc_json_at(z, 4)));
    assert_false(hpc_json_bool(hpc_json_at(z, 5)));
    assert_int_equal(hpc_json_type_of(hpc_json_at(z, 6)), HPC_JSON_NULL);
    assert_null(hpc_json_at(z, 9));
    assert_null(hpc_json_get(z, "a"));

    fr_buf out = FR_BUF_INIT;
    assert_int_equal(fr_buf_append(&out, "X", 1), 0); /* write appends */
    assert_int_equal(hpc_json_write(j, &out), 0);
    assert_int_equal(fr_buf_append(&out, "", 1), 0);
    assert_string_equal((const char *)out.data,
                        "X{\n"
                        "  \"a\\u0000b\": \"\\\"\\\\/\\u0008\\u000c\\u000a\\u000d\\u0009\\u00e9"
                        "\\ud83d\\ude00\",\n"
                        "  \"m\": {\n"
                        "    \"x\": {\n"
                        "      \"w\": []\n"
                        "    },\n"
                        "    \"y\": \"\\u20ac\"\n"
                        "  },\n"
                        "  \"z\": [\n"
                        "    1,\n"
                        "    -0.5,\n"
                        "    2e10,\n"
                        "    1E-3,\n"
                        "    true,\n"
                        "    false,\n"
                        "    null,\n"
                        "    {},\n"
                        "    []\n"
                        "  ]\n"
                        "}\n");
    hpc_json *j2 = parse_ok((const char *)out.data + 1);
    assert_true(hpc_json_equal(j, j2));
    hpc_json_free(j2);
    hpc_json_free(j);

    /* scalars at the top, int64 edges */
    j = parse_ok("-9223372036854775808");
    assert_int_equal(hpc_json_int64(j, &v), 0);
    assert_true(v == INT64_MIN);
    hpc_json_free(j);
    j = parse_ok("9223372036854775808");
    assert_int_equal(hpc_json_int64(j, &v), FR_ETYPE);
    hpc_json_free(j);
    j = parse_ok("\"\"");
    fr_buf_reset(&out);
    assert_int_equal(hpc_json_write(j, &out), 0);
    assert_int_equal(out.len, 3);
    assert_memory_equal(out.data, "\"\"\n", 3);
    hpc_json_free(j);
    hpc_json_free(NULL);
    fr_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_depth_and_size),
        cmocka_unit_test(test_parse_and_write),
        cmocka_unit_test(test_collect_this_machine),
        cmocka_unit_test(test_collect_fixture),
        cmocka_unit_test(test_env_values_round_trip),
        cmocka_unit_test(test_env_invalid_utf8),
        cmocka_unit_test(test_mpirun),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_diff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
