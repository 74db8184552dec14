/* influx_write: what the influxdb sink costs and how fast it writes.
 *
 * Starts a throwaway influxd (scripts/influxdb-test.sh) and, for S seconds
 * each (default 5):
 *   - writes through the sink: writes of 50 batches of 100 metrics (5000
 *     points, InfluxDB's advice for one request) with 3 tags each, plain
 *     and with gzip; beside it the baseline: the very same line protocol,
 *     encoded beforehand, POSTed over one kept-alive socket by a bare
 *     HTTP/1.1 client (InfluxDB's own ingest with nothing in front).
 *     Both cycle over the same 64 rounds of timestamps, so they overwrite
 *     alike once the rounds are used up. Client CPU from getrusage,
 *     influxd's from /proc/<pid>/stat.
 *   - encodes line protocol in-process, beside fr_batch_encode of the same
 *     batches (the bus's msgpack codec) as the reference;
 *   - compresses a 2 MiB body with the sink's gzip, beside the system's
 *     `gzip -1` and `gzip -6` on 16 MiB of the same text (wall time with
 *     the process start, amortised over the size).
 *
 *   influx_write [--seconds S]
 *
 * Figures are printed, never asserted. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <msgpack.h>

#include "fresco/buf.h"
#include "fresco/log.h"
#include "fresco/metric.h"
#include "fresco/pipeline.h"

#include "influxdb/gzip.h"
#include "influxdb/lineproto.h"

extern const fr_sink_plugin fr_sink_influxdb;

#define BATCHES   50
#define METRICS   100
#define ROUNDS    64
#define T_START   1700000000000000000LL
#define T_ROUND   60000000000LL /* a minute between rounds */
#define BODY_SIZE (2u << 20)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_self_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double cpu_pid_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (p == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) {
        return 0;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Runs argv to its end; its stdout to out (NULL: /dev/null). */
static int run(char *const argv[], const char *out)
{
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(out != NULL ? out : "/dev/null", "w", stdout);
        (void)f;
        execvp(argv[0], argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- data ------------------------------------------------------------ */

static fr_batch *batches[BATCHES];

static void make_batches(void)
{
    static const char *names[] = {"user", "nice", "system", "idle", "iowait"};
    for (int i = 0; i < BATCHES; i++) {
        char src[32];
        snprintf(src, sizeof(src), "node-%02d", i);
        batches[i] = fr_batch_new("task-1", src, (uint64_t)i);
        fr_batch_add_tag(batches[i], "dc", "eu-west");
        fr_batch_add_tag(batches[i], "rack", i % 2 ? "r1" : "r2");
        for (int j = 0; j < METRICS; j++) {
            char ns[96];
            snprintf(ns, sizeof(ns), "/intel/procfs/cpu/%d/%s_percentage", j / 5, names[j % 5]);
            fr_value v = j % 2 ? fr_val_f64(j * 1.25 + i) : fr_val_i64((int64_t)j * 1000003 + i);
            fr_batch_add(batches[i], ns, T_START + j, v, "percent");
        }
    }
}

static void set_round(int r)
{
    for (int i = 0; i < BATCHES; i++) {
        for (uint32_t j = 0; j < batches[i]->nmetrics; j++) {
            batches[i]->metrics[j].ts = T_START + (int64_t)r * T_ROUND + (int64_t)j;
        }
    }
}

/* The line protocol of one round, as the sink writes it. */
static void encode_round(influx_lp *lp, fr_buf *out)
{
    for (int i = 0; i < BATCHES; i++) {
        for (uint32_t j = 0; j < batches[i]->nmetrics; j++) {
            const char *why;
            influx_lp_line(lp, batches[i], &batches[i]->metrics[j], out, &why);
        }
    }
}

/* ---- the server ------------------------------------------------------ */

static char dir[256], script[4096];
static int port, rpc;
static pid_t influxd;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

static int http_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* POSTs body on fd (HTTP/1.1, kept alive); returns the status. */
static int raw_post(int fd, const char *uri, const char *ctype, const void *body, size_t len)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     uri, ctype, len);
    if (write(fd, head, (size_t)n) != n) {
        return -1;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, (const char *)body + off, len - off);
        if (w <= 0) {
            return -1;
        }
        off += (size_t)w;
    }
    /* Answers to writes are 204 (no body) or a short JSON with a length. */
    char buf[8192];
    size_t got = 0;
    char *end = NULL;
    while (end == NULL) {
        ssize_t r = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (r <= 0) {
            return -1;
        }
        got += (size_t)r;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    int status = atoi(buf + 9);
    const char *cl = strstr(buf, "Content-Length: ");
    size_t body_len = cl != NULL && cl < end ? (size_t)atol(cl + 16) : 0;
    size_t have = got - (size_t)(end + 4 - buf);
    while (have < body_len) {
        ssize_t r = read(fd, buf, sizeof(buf));
        if (r <= 0) {
            return -1;
        }
        have += (size_t)r;
    }
    return status;
}

static void server_stop(void)
{
    static bool stopped;
    if (stopped) {
        return;
    }
    stopped = true;
    char *argv[] = {"bash", script, "stop", dir, NULL};
    run(argv, NULL);
    char *rm[] = {"rm", "-rf", dir, NULL};
    run(rm, NULL);
}

static void server_start(void)
{
    snprintf(dir, sizeof(dir), "/tmp/fresco-influx-bench.XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    port = free_port();
    do {
        rpc = free_port();
    } while (rpc == port);
    char ps[16], rs[16];
    snprintf(ps, sizeof(ps), "%d", port);
    snprintf(rs, sizeof(rs), "%d", rpc);
    snprintf(script, sizeof(script), "%s/scripts/influxdb-test.sh", FRESCO_SOURCE_DIR);
    char *argv[] = {"bash", script, "start", dir, ps, rs, NULL};
    if (run(argv, NULL) != 0) {
        fprintf(stderr, "influx_write: influxd did not start (see %s/influxd.log)\n", dir);
        exit(1);
    }
    char path[512];
    snprintf(path, sizeof(path), "%s/influxd.pid", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL || fscanf(f, "%d", &influxd) != 1) {
        fprintf(stderr, "influx_write: no pid in %s\n", path);
        exit(1);
    }
    fclose(f);
    atexit(server_stop); /* also when a run fails and exits */
    int fd = http_connect();
    const char *q = "q=CREATE+DATABASE+bench_raw";
    if (fd < 0 ||
        raw_post(fd, "/query", "application/x-www-form-urlencoded", q, strlen(q)) != 200) {
        fprintf(stderr, "influx_write: CREATE DATABASE failed\n");
        exit(1);
    }
    close(fd);
}

/* ---- runs ------------------------------------------------------------ */

typedef struct result {
    double points, seconds, bytes, requests, cpu, server_cpu;
} result;

static void print_row(const char *name, const result *r)
{
    printf("  %-26s %10.0f %9.1f %9.0f %11.1f %12.1f\n", name, r->points / r->seconds,
           r->bytes / r->seconds / 1e6, r->requests, 100 * r->cpu / r->seconds,
           100 * r->server_cpu / r->seconds);
}

static result run_raw(double seconds, fr_buf *bodies)
{
    result r = {0};
    int fd = http_connect();
    const char *uri = "/write?db=bench_raw&precision=n&rp=autogen";
    double c0 = cpu_self_s(), s0 = cpu_pid_s(influxd), t0 = now_s();
    for (int i = 0; now_s() - t0 < seconds; i++) {
        fr_buf *b = &bodies[i % ROUNDS];
        int st = raw_post(fd, uri, "text/plain; charset=utf-8", b->data, b->len);
        if (st != 204) {
            fprintf(stderr, "influx_write: raw POST answered %d\n", st);
            exit(1);
        }
        r.points += BATCHES * METRICS;
        r.bytes += (double)b->len;
        r.requests++;
    }
    r.seconds = now_s() - t0;
    r.cpu = cpu_self_s() - c0;
    r.server_cpu = cpu_pid_s(influxd) - s0;
    close(fd);
    return r;
}

static result run_sink(double seconds, bool gzip)
{
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    fr_mf_entry e[] = {
        {.key = "host", .value = {.type = FR_MF_STRING, .text = "127.0.0.1"}},
        {.key = "port", .value = {.type = FR_MF_STRING, .text = ps}},
        {.key = "database",
         .value = {.type = FR_MF_STRING, .text = gzip ? "bench_gzip" : "bench_sink"}},
        {.key = "gzip", .value = {.type = FR_MF_STRING, .text = gzip ? "true" : "false"}},
        {.key = "create_database", .value = {.type = FR_MF_STRING, .text = "true"}},
    };
    fr_mf_map map = {.v = e, .n = sizeof(e) / sizeof(e[0])};
    fr_sink_info info = {
        .id = "bench/publish[0]", .task = "bench", .task_name = "bench", .path = "publish[0]"};
    void *cfg = NULL, *state = NULL;
    fr_error err;
    if (fr_node_config_load(&fr_sink_influxdb.config, "influxdb", &map, "publish[0]", &cfg, &err) !=
            0 ||
        fr_sink_influxdb.init(&state, cfg, &info, &err) != 0) {
        fprintf(stderr, "influx_write: sink: %s\n", err.message);
        exit(1);
    }
    result r = {0};
    double c0 = cpu_self_s(), s0 = cpu_pid_s(influxd), t0 = now_s();
    for (int i = 0; now_s() - t0 < seconds; i++) {
        set_round(i % ROUNDS);
        if (fr_sink_influxdb.write(state, batches, BATCHES, &err) != 0) {
            fprintf(stderr, "influx_write: write: %s\n", err.message);
            exit(1);
        }
        r.points += BATCHES * METRICS;
    }
    r.seconds = now_s() - t0;
    r.cpu = cpu_self_s() - c0;
    r.server_cpu = cpu_pid_s(influxd) - s0;
    /* requests and bytes from the sink's own stats */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    fr_sink_influxdb.stats(state, &pk);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS) {
        for (uint32_t i = 0; i < u.data.via.map.size; i++) {
            const msgpack_object_kv *p = &u.data.via.map.ptr[i];
            if (p->key.via.str.size == 8 && memcmp(p->key.via.str.ptr, "requests", 8) == 0) {
                r.requests = (double)p->val.via.u64;
            } else if (p->key.via.str.size == 9 &&
                       memcmp(p->key.via.str.ptr, "bytes_raw", 9) == 0) {
                r.bytes = (double)p->val.via.u64;
            }
        }
    }
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    fr_sink_influxdb.destroy(state);
    fr_node_config_free(&fr_sink_influxdb.config, cfg);
    return r;
}

int main(int argc, char **argv)
{
    double seconds = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else {
            fprintf(stderr, "usage: influx_write [--seconds S]\n");
            return 2;
        }
    }
    fr_log_init("bench", FR_LOG_WARN, false);
    make_batches();
    static influx_lp lp;
    influx_lp_init(&lp, 1);

    /* Encoding, beside the msgpack batch codec. */
    fr_buf body = FR_BUF_INIT;
    double t0 = now_s();
    double points = 0, bytes = 0;
    while (now_s() - t0 < seconds / 4) {
        fr_buf_reset(&body);
        encode_round(&lp, &body);
        points += BATCHES * METRICS;
        bytes += (double)body.len;
    }
    double enc_s = now_s() - t0;
    fr_buf mp = FR_BUF_INIT;
    double mpoints = 0, mbytes = 0;
    t0 = now_s();
    while (now_s() - t0 < seconds / 4) {
        for (int i = 0; i < BATCHES; i++) {
            fr_buf_reset(&mp);
            fr_batch_encode(batches[i], &mp);
            mbytes += (double)mp.len;
        }
        mpoints += BATCHES * METRICS;
    }
    double mp_s = now_s() - t0;

    /* gzip: ours on a 2 MiB body; the system's on 16 MiB of the same. */
    fr_buf big = FR_BUF_INIT;
    for (int r = 0; big.len < 16u << 20; r++) {
        set_round(r);
        encode_round(&lp, &big);
    }
    influx_gzip *z = influx_gzip_new();
    fr_buf zout = FR_BUF_INIT;
    double zbytes = 0;
    size_t zlen = 0;
    t0 = now_s();
    while (now_s() - t0 < seconds / 4 || zbytes == 0) {
        fr_buf_reset(&zout);
        influx_gzip_compress(z, big.data, BODY_SIZE, &zout);
        zbytes += BODY_SIZE;
        zlen = zout.len;
    }
    double z_s = now_s() - t0;
    char path[256], gzpath[300];
    snprintf(path, sizeof(path), "/tmp/fresco-influx-bench-lp.%d", (int)getpid());
    snprintf(gzpath, sizeof(gzpath), "%s.gz", path);
    FILE *f = fopen(path, "w");
    fwrite(big.data, 1, big.len, f);
    fclose(f);
    double sys_s[2], sys_ratio[2];
    const char *levels[2] = {"-1c", "-6c"};
    for (int l = 0; l < 2; l++) {
        char *gz[] = {"gzip", (char *)levels[l], path, NULL};
        t0 = now_s();
        run(gz, gzpath);
        sys_s[l] = now_s() - t0;
        FILE *g = fopen(gzpath, "r");
        fseek(g, 0, SEEK_END);
        sys_ratio[l] = (double)big.len / (double)ftell(g);
        fclose(g);
    }
    unlink(path);
    unlink(gzpath);

    /* Writes. */
    server_start();
    fr_buf bodies[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        bodies[r] = (fr_buf)FR_BUF_INIT;
        set_round(r);
        encode_round(&lp, &bodies[r]);
    }
    result raw = run_raw(seconds, bodies);
    result plain = run_sink(seconds, false);
    result gz = run_sink(seconds, true);
    server_stop();

    printf("influx_write: %d points per write (%d batches of %d metrics, 3 tags each), %.1f s "
           "per run, influxd on loopback\n",
           BATCHES * METRICS, BATCHES, METRICS, seconds);
    printf("  %-26s %10s %9s %9s %11s %12s\n", "", "points/s", "LP MB/s", "requests", "client CPU%",
           "influxd CPU%");
    print_row("raw POST (baseline)", &raw);
    print_row("sink", &plain);
    print_row("sink, gzip", &gz);
    printf("  encode line protocol      %10.0f points/s %6.1f MB/s\n", points / enc_s,
           bytes / enc_s / 1e6);
    printf("  fr_batch_encode (baseline) %9.0f points/s %6.1f MB/s\n", mpoints / mp_s,
           mbytes / mp_s / 1e6);
    printf("  gzip (sink), 2 MiB        %10.1f MB/s   ratio %.2f\n", zbytes / z_s / 1e6,
           (double)BODY_SIZE / (double)zlen);
    for (int l = 0; l < 2; l++) {
        printf("  gzip -%c (system), 16 MiB %9.1f MB/s   ratio %.2f\n", levels[l][1],
               (double)big.len / sys_s[l] / 1e6, sys_ratio[l]);
    }
    for (int r = 0; r < ROUNDS; r++) {
        fr_buf_free(&bodies[r]);
    }
    for (int i = 0; i < BATCHES; i++) {
        fr_batch_destroy(batches[i]);
    }
    fr_buf_free(&body);
    fr_buf_free(&mp);
    fr_buf_free(&big);
    fr_buf_free(&zout);
    influx_gzip_destroy(z);
    return 0;
}
