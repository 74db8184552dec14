/* Shared helpers of the influxdb sink's suites (see influx_fixture.h). */
#include "influx_fixture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <msgpack.h>

/* ---- the server ------------------------------------------------------------ */

static void script(ifx_server *s, const char *cmd)
{
    char path[4096], log[4096], port[16], rpc[16];
    tst_src(path, sizeof(path), "scripts/influxdb-test.sh");
    snprintf(log, sizeof(log), "%s/script.log", s->dir);
    snprintf(port, sizeof(port), "%d", s->port);
    snprintf(rpc, sizeof(rpc), "%d", s->rpc_port);
    char *argv[16] = {"/bin/bash", path, (char *)cmd, s->dir};
    int n = 4;
    if (strcmp(cmd, "start") == 0) {
        argv[n++] = port;
        argv[n++] = rpc;
        for (int i = 0; s->opts[i] != NULL; i++) {
            argv[n++] = (char *)s->opts[i];
        }
    }
    argv[n] = NULL;
    unlink(log);
    pid_t pid = tst_spawn(argv, log);
    assert_true(pid > 0);
    int st = tst_stop(pid, 0, 30000);
    if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char ilog[4096];
        snprintf(ilog, sizeof(ilog), "%s/influxd.log", s->dir);
        char *text = tst_slurp(log), *itext = tst_slurp(ilog);
        fail_msg("influxdb-test.sh %s %s failed (status %d):\n%s\ninfluxd.log:\n%s", cmd, s->dir,
                 st, text, itext);
    }
}

void ifx_start(ifx_server *s, const char *const *opts)
{
    memset(s, 0, sizeof(*s));
    s->dir = tst_tmpdir("fresco-influxdb");
    assert_non_null(s->dir);
    for (int i = 0; opts != NULL && opts[i] != NULL && i < 5; i++) {
        s->opts[i] = opts[i];
    }
    s->port = tst_free_port();
    do {
        s->rpc_port = tst_free_port();
    } while (s->rpc_port == s->port);
    script(s, "start");
}

void ifx_restart(ifx_server *s)
{
    script(s, "start");
}

void ifx_stop(ifx_server *s)
{
    script(s, "stop");
}

void ifx_destroy(ifx_server *s)
{
    if (s->dir == NULL) {
        return;
    }
    script(s, "stop");
    tst_rmtree(s->dir);
    free(s->dir);
    s->dir = NULL;
}

pid_t ifx_pid(const ifx_server *s)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/influxd.pid", s->dir);
    char *text = tst_slurp(path);
    pid_t pid = (pid_t)atoi(text);
    free(text);
    assert_true(pid > 0);
    return pid;
}

/* ---- plain HTTP ---------------------------------------------------------- */

void ifx_answer_free(ifx_answer *a)
{
    free(a->body);
    a->body = NULL;
}

ifx_answer ifx_http(int port, const char *method, const char *path, const char *query,
                    const char *content_type, const char *body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fail_msg("connect to 127.0.0.1:%d: %s", port, strerror(errno));
    }
    size_t blen = body != NULL ? strlen(body) : 0;
    char *req = NULL;
    int n = asprintf(&req,
                     "%s %s%s%s HTTP/1.0\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n"
                     "%s%s%sContent-Length: %zu\r\n\r\n%s",
                     method, path, query != NULL ? "?" : "", query != NULL ? query : "",
                     content_type != NULL ? "Content-Type: " : "",
                     content_type != NULL ? content_type : "", content_type != NULL ? "\r\n" : "",
                     blen, body != NULL ? body : "");
    assert_true(n > 0);
    assert_int_equal(write(fd, req, (size_t)n), n);
    free(req);
    size_t cap = 65536, len = 0;
    char *raw = malloc(cap);
    assert_non_null(raw);
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            raw = realloc(raw, cap);
            assert_non_null(raw);
        }
        ssize_t r = read(fd, raw + len, cap - len - 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            fail_msg("reading from 127.0.0.1:%d: %s", port, strerror(errno));
        }
        if (r == 0) {
            break;
        }
        len += (size_t)r;
    }
    close(fd);
    raw[len] = '\0';
    ifx_answer a = {0};
    const char *sep = strstr(raw, "\r\n\r\n");
    if (sep == NULL || sscanf(raw, "HTTP/%*s %d", &a.status) != 1) {
        fail_msg("malformed answer from 127.0.0.1:%d: %.200s", port, raw);
    }
    size_t off = (size_t)(sep + 4 - raw);
    a.len = len - off;
    a.body = malloc(a.len + 1);
    assert_non_null(a.body);
    memcpy(a.body, raw + off, a.len);
    a.body[a.len] = '\0';
    free(raw);
    return a;
}

void ifx_urlencode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        assert_true(o + 4 < cap);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
}

void ifx_ident(const char *name, char *out, size_t cap)
{
    size_t o = 0;
    out[o++] = '"';
    for (; *name != '\0'; name++) {
        assert_true(o + 4 < cap);
        if (*name == '"' || *name == '\\') {
            out[o++] = '\\';
        }
        out[o++] = *name;
    }
    out[o++] = '"';
    out[o] = '\0';
}

void ifx_query(int port, const char *db, const char *q, const char *auth, yarn_json_doc *doc)
{
    char eq[8192], edb[512], query[9000];
    ifx_urlencode(q, eq, sizeof(eq));
    ifx_urlencode(db != NULL ? db : "", edb, sizeof(edb));
    snprintf(query, sizeof(query), "epoch=ns&db=%s&q=%s%s%s", edb, eq, auth != NULL ? "&" : "",
             auth != NULL ? auth : "");
    ifx_answer a = ifx_http(port, "GET", "/query", query, NULL, NULL);
    if (a.status != 200) {
        fail_msg("query %s: HTTP %d: %s", q, a.status, a.body);
    }
    fr_error err;
    memset(doc, 0, sizeof(*doc));
    if (yarn_json_parse(a.body, a.len, doc, &err) != 0) {
        fail_msg("query %s: bad JSON (%s): %.300s", q, err.message, a.body);
    }
    ifx_answer_free(&a);
}

void ifx_exec(int port, const char *q, const char *auth)
{
    char eq[8192], body[9000];
    ifx_urlencode(q, eq, sizeof(eq));
    snprintf(body, sizeof(body), "q=%s", eq);
    ifx_answer a =
        ifx_http(port, "POST", "/query", auth, "application/x-www-form-urlencoded", body);
    if (a.status != 200 || strstr(a.body, "\"error\"") != NULL) {
        fail_msg("%s: HTTP %d: %s", q, a.status, a.body);
    }
    ifx_answer_free(&a);
}

const yarn_json_node *ifx_series(const yarn_json_doc *doc)
{
    const yarn_json_node *res = yarn_json_get(doc, yarn_json_root(doc), "results");
    const yarn_json_node *r0 = yarn_json_first(doc, res);
    const yarn_json_node *e = yarn_json_get(doc, r0, "error");
    if (e != NULL) {
        fail_msg("query error: %s", e->s);
    }
    return yarn_json_get(doc, r0, "series");
}

int64_t ifx_count(int port, const char *db, const char *measurement)
{
    char id[1024], q[1200];
    ifx_ident(measurement, id, sizeof(id));
    snprintf(q, sizeof(q), "SELECT COUNT(\"value\") FROM %s", id);
    yarn_json_doc doc;
    ifx_query(port, db, q, NULL, &doc);
    const yarn_json_node *series = ifx_series(&doc);
    int64_t n = 0;
    if (series != NULL) {
        const yarn_json_node *s0 = yarn_json_first(&doc, series);
        const yarn_json_node *row = yarn_json_first(&doc, yarn_json_get(&doc, s0, "values"));
        const yarn_json_node *cell = yarn_json_next(&doc, yarn_json_first(&doc, row));
        assert_non_null(cell);
        assert_true(cell->is_int);
        n = cell->i;
    }
    yarn_json_free(&doc);
    return n;
}

/* ---- the sink ---------------------------------------------------------- */

int ifx_sink_open(ifx_sink *k, const char *const *kv, fr_error *err)
{
    memset(k, 0, sizeof(*k));
    size_t n = 0;
    while (kv[2 * n] != NULL) {
        n++;
    }
    fr_mf_entry *e = calloc(n + 1, sizeof(*e));
    assert_non_null(e);
    for (size_t i = 0; i < n; i++) {
        e[i].key = (char *)kv[2 * i];
        e[i].value.type = FR_MF_STRING;
        e[i].value.text = (char *)kv[2 * i + 1];
    }
    fr_mf_map map = {.v = e, .n = n};
    const char *path = "workflow.collect.publish[0]";
    int rv = fr_node_config_load(&fr_sink_influxdb.config, "influxdb", &map, path, &k->config, err);
    free(e);
    if (rv != 0) {
        return rv;
    }
    k->info = (fr_sink_info){.id = "task-1/publish[0]",
                             .task = "task-1",
                             .task_name = "influx-test",
                             .path = "publish[0]",
                             .state_dir = NULL};
    rv = fr_sink_influxdb.init(&k->state, k->config, &k->info, err);
    if (rv != 0) {
        fr_node_error_locate(err, "influxdb", path);
        fr_sink_influxdb.destroy(k->state);
        fr_node_config_free(&fr_sink_influxdb.config, k->config);
        memset(k, 0, sizeof(*k));
    }
    return rv;
}

void ifx_sink_close(ifx_sink *k)
{
    if (k->config == NULL) {
        return;
    }
    fr_sink_influxdb.destroy(k->state);
    fr_node_config_free(&fr_sink_influxdb.config, k->config);
    memset(k, 0, sizeof(*k));
}

int ifx_sink_write(ifx_sink *k, fr_batch *const *b, size_t n, fr_error *err)
{
    fr_error_clear(err);
    return fr_sink_influxdb.write(k->state, b, n, err);
}

uint64_t ifx_stat(ifx_sink *k, const char *key)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    fr_sink_influxdb.stats(k->state, &pk);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
    bool found = false;
    uint64_t v = 0;
    for (uint32_t i = 0; i < u.data.via.map.size; i++) {
        const msgpack_object_kv *p = &u.data.via.map.ptr[i];
        if (p->key.via.str.size == strlen(key) &&
            memcmp(p->key.via.str.ptr, key, p->key.via.str.size) == 0) {
            found = true;
            if (p->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                v = p->val.via.u64;
            } else if (p->val.type == MSGPACK_OBJECT_BOOLEAN) {
                v = p->val.via.boolean;
            }
        }
    }
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    if (!found) {
        fail_msg("stats have no '%s'", key);
    }
    return v;
}
