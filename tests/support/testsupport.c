/* Helpers shared by the cmocka suites. */
#include "testsupport.h"

#include "fresco/ctl.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t tst_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool tst_wait_until(bool (*cond)(void *arg), void *arg, int deadline_ms)
{
    int64_t end = tst_mono_ms() + deadline_ms;
    for (;;) {
        if (cond(arg)) {
            return true;
        }
        if (tst_mono_ms() >= end) {
            return cond(arg);
        }
        struct timespec d = {0, 1000000};
        nanosleep(&d, NULL);
    }
}

char *tst_tmpdir(const char *prefix)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0') {
        base = "/tmp";
    }
    char *path = NULL;
    if (asprintf(&path, "%s/%s.XXXXXX", base, prefix) < 0) {
        return NULL;
    }
    if (mkdtemp(path) == NULL) {
        free(path);
        return NULL;
    }
    return path;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tst_rmtree(const char *path)
{
    if (path != NULL) {
        nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

int tst_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        port = ntohs(sa.sin_port);
    }
    close(fd);
    return port;
}

const char *tst_bin(char *buf, size_t len, const char *rel)
{
    const char *base = getenv("FRESCO_TEST_BIN");
    snprintf(buf, len, "%s/%s", base != NULL ? base : ".", rel);
    return buf;
}

const char *tst_src(char *buf, size_t len, const char *rel)
{
    const char *base = getenv("FRESCO_TEST_SRC");
    snprintf(buf, len, "%s/%s", base != NULL ? base : ".", rel);
    return buf;
}

pid_t tst_spawn(char *const argv[], const char *log_path)
{
    pid_t pid = fork();
    if (pid != 0) {
        return pid;
    }
    if (log_path != NULL) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int tst_stop(pid_t pid, int sig, int deadline_ms)
{
    if (pid <= 0) {
        return -1;
    }
    kill(pid, sig);
    int64_t end = tst_mono_ms() + deadline_ms;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            return status;
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
        if (tst_mono_ms() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        struct timespec d = {0, 2000000};
        nanosleep(&d, NULL);
    }
}

int tst_write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        return -1;
    }
    size_t w = fwrite(data, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

char *tst_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return strdup("");
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf != NULL && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 4096) {
            char *p = realloc(buf, cap * 2);
            if (p == NULL) {
                break;
            }
            buf = p;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf != NULL) {
        buf[len] = '\0';
    }
    return buf;
}

static bool service_answers(void *arg)
{
    tst_service *s = arg;
    fr_ctl_result res;
    int rv = fr_ctl_call(s->cli, "ping", NULL, 0, 200, &res);
    fr_ctl_result_free(&res);
    return rv == 0;
}

void tst_service_start(tst_service *s, const char *name, const char *logdir,
                       const char *const *extra)
{
    tst_service_start_at(s, name, logdir, NULL, NULL, extra);
}

void tst_service_start_at(tst_service *s, const char *name, const char *logdir, const char *control,
                          const char *events, const char *const *extra)
{
    memset(s, 0, sizeof(*s));
    if (control != NULL) {
        snprintf(s->control, sizeof(s->control), "%s", control);
    } else {
        snprintf(s->control, sizeof(s->control), "tcp://127.0.0.1:%d", tst_free_port());
    }
    if (events != NULL) {
        snprintf(s->events, sizeof(s->events), "%s", events);
    } else {
        snprintf(s->events, sizeof(s->events), "tcp://127.0.0.1:%d", tst_free_port());
    }
    /* One log per start: a restarted service's earlier log stays. */
    static int starts;
    const char *port = strrchr(s->control, ':');
    if (port != NULL && strchr(port, '/') != NULL) {
        port = ":ipc"; /* ipc:///path: no port to name the log by */
    }
    snprintf(s->log, sizeof(s->log), "%s/%s-%s-%d.log", logdir, name, port ? port + 1 : "x",
             ++starts);
    char bin[512], rel[128], a1[128], a2[128];
    snprintf(rel, sizeof(rel), "services/%s/fresco-%s", name, name);
    snprintf(a1, sizeof(a1), "--control=%s", s->control);
    snprintf(a2, sizeof(a2), "--events=%s", s->events);
    char *argv[32] = {(char *)tst_bin(bin, sizeof(bin), rel), a1, a2};
    int n = 3;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 31; i++) {
        argv[n++] = (char *)extra[i];
    }
    argv[n] = NULL;
    s->pid = tst_spawn(argv, s->log);
    assert_true(s->pid > 0);
    assert_int_equal(fr_ctl_client_open(&s->cli, s->control, NULL), 0);
    if (!tst_wait_until(service_answers, s, 15000)) {
        char *log = tst_slurp(s->log);
        fail_msg("fresco-%s did not answer on %s; its log:\n%s", name, s->control, log);
    }
}

void tst_service_stop(tst_service *s, int deadline_ms)
{
    fr_ctl_client_close(s->cli);
    s->cli = NULL;
    int status = tst_stop(s->pid, SIGTERM, deadline_ms);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        static char tail[16384];
        char *log = tst_slurp(s->log);
        size_t len = strlen(log);
        snprintf(tail, sizeof(tail), "%s",
                 log + (len > sizeof(tail) - 1 ? len - (sizeof(tail) - 1) : 0));
        free(log);
        fail_msg("%s: not a clean exit (status %d); log:\n%s", s->log, status, tail);
    }
}
