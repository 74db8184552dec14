/* Running fresco's services as processes for the benchmarks. */
#include "stack_util.h"

#include <arpa/inet.h>
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

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int bench_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0) {
        port = ntohs(a.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}

char *bench_tmpdir(const char *prefix)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "/tmp/%s-XXXXXX", prefix);
    return mkdtemp(buf) != NULL ? strdup(buf) : NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

void bench_rmtree(const char *path)
{
    if (path != NULL) {
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    }
}

static bool answers(bench_svc *s)
{
    fr_ctl_result res;
    int rv = fr_ctl_call(s->cli, "ping", NULL, 0, 200, &res);
    fr_ctl_result_free(&res);
    return rv == 0;
}

bool bench_svc_start(bench_svc *s, const char *build, const char *dir, const char *name,
                     bool data_in, const char *const *extra)
{
    memset(s, 0, sizeof(*s));
    int port = bench_free_port();
    snprintf(s->control, sizeof(s->control), "tcp://127.0.0.1:%d", port);
    snprintf(s->data_in, sizeof(s->data_in), "tcp://127.0.0.1:%d", bench_free_port());
    snprintf(s->log, sizeof(s->log), "%s/%s-%d.log", dir, name, port);
    char bin[600], a1[128], a2[128], a3[128];
    snprintf(bin, sizeof(bin), "%s/services/%s/fresco-%s", build, name, name);
    snprintf(a1, sizeof(a1), "--control=%s", s->control);
    snprintf(a2, sizeof(a2), "--data_in=%s", s->data_in);
    snprintf(a3, sizeof(a3), "--events=tcp://127.0.0.1:%d", bench_free_port());
    char *argv[40] = {bin, a1, a3};
    int n = 3;
    if (data_in) {
        argv[n++] = a2;
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL && n < 38; i++) {
        argv[n++] = (char *)extra[i];
    }
    argv[n] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(bin, argv);
        _exit(127);
    }
    s->pid = pid;
    if (pid < 0 || fr_ctl_client_open(&s->cli, s->control, NULL) != 0) {
        return false;
    }
    double until = bench_now() + 15;
    while (bench_now() < until) {
        if (answers(s)) {
            return true;
        }
    }
    fprintf(stderr, "fresco-%s did not answer; see %s\n", name, s->log);
    return false;
}

void bench_svc_stop(bench_svc *s)
{
    fr_ctl_client_close(s->cli);
    s->cli = NULL;
    if (s->pid <= 0) {
        return;
    }
    kill(s->pid, SIGTERM);
    double until = bench_now() + 10;
    int status;
    while (waitpid(s->pid, &status, WNOHANG) == 0) {
        if (bench_now() > until) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            break;
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    s->pid = 0;
}

uint64_t bench_counter(bench_svc *s, const char *name)
{
    fr_ctl_result res;
    uint64_t v = 0;
    if (fr_ctl_call(s->cli, "stats", NULL, 0, 2000, &res) == 0) {
        fr_node_get_u64(fr_node_get(res.result, "counters"), name, &v);
    }
    fr_ctl_result_free(&res);
    return v;
}

bool bench_call(bench_svc *s, const char *op, const void *args, size_t len, int timeout_ms)
{
    fr_ctl_result res;
    int rv = fr_ctl_call(s->cli, op, args, len, timeout_ms, &res);
    if (rv != 0) {
        fprintf(stderr, "%s: %s: %s %s\n", op, fr_strerror(rv), res.error_where, res.error_message);
    }
    fr_ctl_result_free(&res);
    return rv == 0;
}

double bench_cpu_of(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* fields 14 and 15 (utime, stime), after the ")" that ends comm */
    const char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) {
        return 0;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int bench_run_out(const char *cmd, char *out, size_t cap)
{
    FILE *f = popen(cmd, "r");
    if (f == NULL) {
        return -1;
    }
    size_t n = out != NULL ? fread(out, 1, cap - 1, f) : 0;
    if (out != NULL) {
        out[n] = '\0';
        out[strcspn(out, "\n")] = '\0';
    } else {
        char sink[512];
        while (fread(sink, 1, sizeof(sink), f) > 0) {
        }
    }
    return pclose(f);
}

bool bench_pg_start(bench_pg *p, const char *source)
{
    memset(p, 0, sizeof(*p));
    p->source = source;
    char *d = bench_tmpdir("fresco-bench-pg");
    if (d == NULL) {
        return false;
    }
    snprintf(p->dir, sizeof(p->dir), "%s", d);
    free(d);
    char cmd[800];
    snprintf(cmd, sizeof(cmd), "%s/scripts/pg-cluster.sh start %s %d 2>/dev/null", source, p->dir,
             bench_free_port());
    return bench_run_out(cmd, p->conninfo, sizeof(p->conninfo)) == 0 && p->conninfo[0] != '\0';
}

void bench_pg_destroy(bench_pg *p)
{
    char cmd[800];
    snprintf(cmd, sizeof(cmd), "%s/scripts/pg-cluster.sh destroy %s >/dev/null 2>&1", p->source,
             p->dir);
    bench_run_out(cmd, NULL, 0);
}
