/* Sink `influxdb`: batches written as line protocol to InfluxDB 1.x's
 * /write over HTTP (nng's client), in request bodies of at most max_body
 * bytes, optionally gzip-compressed. Mapping and escaping: lineproto.h;
 * the reference: docs/plugins/sink-influxdb.md.
 *
 * Resends need no bookkeeping here: InfluxDB keys a point by measurement,
 * tag set and timestamp, and a point written again overwrites itself, so
 * a batch the engine sends twice is stored once. */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "fresco/log.h"
#include "fresco/pipeline.h"

#include "gzip.h"
#include "http.h"
#include "lineproto.h"

#define MOD             "influxdb"
#define DEFAULT_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
#define ERROR_TEXT_MAX  300

typedef struct influx_conf {
    char *host;
    int64_t port;
    char *database;
    char *user;
    char *password;
    char *retention;
    bool https;
    bool skip_verify;
    char *ca_file;
    char *server_name;
    char *precision;
    bool gzip;
    int64_t max_body;
    int64_t timeout_ms;
    bool create_database;
} influx_conf;

static const char *const precisions[] = {"ns", "n", "us", "u", "ms", "s", "m", "h", NULL};

static const fr_cfg_field influx_fields[] = {
    {"host", FR_CFG_STRING, "localhost", offsetof(influx_conf, host),
     "InfluxDB's host name or address", 0, 0, NULL},
    {"port", FR_CFG_INT, "8086", offsetof(influx_conf, port), "InfluxDB's HTTP port", 1, 65535,
     NULL},
    {"database", FR_CFG_STRING, NULL, offsetof(influx_conf, database),
     "database to write to (required)", 0, 0, NULL},
    {"user", FR_CFG_STRING, NULL, offsetof(influx_conf, user),
     "user for HTTP Basic authentication; none when unset", 0, 0, NULL},
    {"password", FR_CFG_STRING, NULL, offsetof(influx_conf, password), "the user's password", 0, 0,
     NULL},
    {"retention", FR_CFG_STRING, "autogen", offsetof(influx_conf, retention),
     "retention policy written to; empty for the database's default", 0, 0, NULL},
    {"https", FR_CFG_BOOL, "false", offsetof(influx_conf, https), "connect with HTTPS", 0, 0, NULL},
    {"skip-verify", FR_CFG_BOOL, "false", offsetof(influx_conf, skip_verify),
     "HTTPS: do not check the server's certificate", 0, 0, NULL},
    {"ca_file", FR_CFG_STRING, DEFAULT_CA_FILE, offsetof(influx_conf, ca_file),
     "HTTPS: PEM file of the CAs the server's certificate is checked against", 0, 0, NULL},
    {"server_name", FR_CFG_STRING, NULL, offsetof(influx_conf, server_name),
     "HTTPS: name the server's certificate must carry; host when unset", 0, 0, NULL},
    {"precision", FR_CFG_ENUM, "ns", offsetof(influx_conf, precision),
     "timestamp precision written: ns, us, ms, s, m, h (n and u as InfluxDB spells them)", 0, 0,
     precisions},
    {"gzip", FR_CFG_BOOL, "false", offsetof(influx_conf, gzip),
     "compress request bodies (Content-Encoding: gzip)", 0, 0, NULL},
    {"max_body", FR_CFG_SIZE, "2MiB", offsetof(influx_conf, max_body),
     "line protocol bytes in one request before the points go on in another", 1024,
     (int64_t)256 << 20, NULL},
    {"timeout", FR_CFG_DURATION, "10s", offsetof(influx_conf, timeout_ms),
     "most time one HTTP request may take, connecting included", 1, 600000, NULL},
    {"create_database", FR_CFG_BOOL, "false", offsetof(influx_conf, create_database),
     "CREATE DATABASE before the first write (and after InfluxDB says it is gone)", 0, 0, NULL},
};

typedef struct influx_sink {
    const influx_conf *conf;
    const fr_sink_info *info;
    influx_http *http;
    influx_gzip *gz;
    char *write_uri;
    char *create_body; /* the form body of CREATE DATABASE */
    int64_t precision_ns;
    bool db_ready;
    fr_buf body;  /* line protocol of the request being built */
    fr_buf zbody; /* its gzip form */
    size_t *ends; /* where each line of body ends */
    size_t nends, cap_ends;
    /* figures */
    uint64_t points, requests, request_errors, splits, bytes_raw, bytes_sent;
    uint64_t dropped[INFLUX_DROP_COUNT];
    bool drop_told[INFLUX_DROP_COUNT];
    bool auth_told, create_told;
    unsigned last_status;
    influx_lp lp;
} influx_sink;

/* ---- helpers ------------------------------------------------------------ */

/* Appends s percent-encoded (all but RFC 3986's unreserved characters). */
static int url_encode(fr_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~';
        char e[3] = {'%', hex[c >> 4], hex[c & 15]};
        int rv = plain ? fr_buf_append(b, &c, 1) : fr_buf_append(b, e, 3);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* NUL-terminates b and hands its bytes over (NULL on out of memory, b
 * still the caller's to free). */
static char *buf_string(fr_buf *b)
{
    if (fr_buf_append(b, "", 1) != 0) {
        return NULL;
    }
    return (char *)b->data;
}

/* The code and message for an answer other than 2xx. */
static int answer_error(influx_sink *s, const influx_http_res *res, const char *path, size_t len,
                        fr_error *err)
{
    char text[ERROR_TEXT_MAX];
    influx_http_error_text(res->body, res->len, text, sizeof(text));
    const char *base = influx_http_base(s->http);
    unsigned st = res->status;
    if (st == 400 && !res->from_influxdb) {
        /* Not InfluxDB's verdict on the points (a proxy, or plain HTTP to
         * an HTTPS port): the points may well be fine. */
        return fr_error_set(err, FR_EREMOTE, NULL,
                            "POST %s%s: HTTP 400 not from InfluxDB (no X-Influxdb-Version header; "
                            "plain HTTP to an HTTPS port?): %s",
                            base, path, text);
    }
    switch (st) {
    case 400:
        return fr_error_set(err, FR_EINVAL, NULL,
                            "POST %s%s: HTTP 400, InfluxDB refused points: %s", base, path, text);
    case 401:
    case 403:
        if (!s->auth_told) {
            s->auth_told = true;
            fr_warn(MOD,
                    "%s: POST %s%s: HTTP %u, not allowed: check user and password (and the "
                    "user's rights on database '%s'): %s",
                    s->info->id, base, path, st, s->conf->database, text);
        }
        return fr_error_set(err, FR_EREMOTE, NULL,
                            "POST %s%s: HTTP %u, not allowed: check user and password: %s", base,
                            path, st, text);
    case 404:
        if (s->conf->create_database) {
            s->db_ready = false; /* created again before the next try */
        }
        return fr_error_set(err, FR_ENOTFOUND, NULL, "POST %s%s: HTTP 404 for database '%s'%s: %s",
                            base, path, s->conf->database,
                            s->conf->create_database ? " (it will be created)"
                                                     : " (create it, or set create_database)",
                            text);
    case 413:
        return fr_error_set(err, FR_ETOOBIG, NULL,
                            "POST %s%s: HTTP 413, a body of %zu bytes is over the server's "
                            "max-body-size: %s",
                            base, path, len, text);
    default:
        if (st >= 500) {
            return fr_error_set(err, FR_EIO, NULL, "POST %s%s: HTTP %u: %s", base, path, st, text);
        }
        return fr_error_set(err, FR_EREMOTE, NULL, "POST %s%s: unexpected HTTP %u: %s", base, path,
                            st, text);
    }
}

/* ---- writing ------------------------------------------------------------ */

static int db_create(influx_sink *s, fr_error *err)
{
    influx_http_res res;
    const char *body = s->create_body;
    int rv = influx_http_request(s->http, "POST", "/query", "application/x-www-form-urlencoded",
                                 NULL, body, strlen(body), &res, err);
    if (rv != 0) {
        s->request_errors++;
        return rv;
    }
    s->requests++;
    s->last_status = res.status;
    if (res.status >= 200 && res.status < 300 && strstr(res.body, "\"error\"") == NULL) {
        s->db_ready = true;
        return 0;
    }
    if (res.status >= 500) {
        return answer_error(s, &res, "/query (CREATE DATABASE)", 0, err);
    }
    /* Not allowed, or refused: write anyway (the database may exist); a
     * write that finds none says so. */
    if (!s->create_told) {
        char text[ERROR_TEXT_MAX];
        influx_http_error_text(res.body, res.len, text, sizeof(text));
        s->create_told = true;
        fr_warn(MOD, "%s: CREATE DATABASE \"%s\" at %s: HTTP %u: %s; writing anyway", s->info->id,
                s->conf->database, influx_http_base(s->http), res.status, text);
    }
    s->db_ready = true;
    return 0;
}

/* POSTs bytes [from, to) of body to /write; 0 once InfluxDB has them. */
static int post(influx_sink *s, size_t from, size_t to, fr_error *err)
{
    const void *p = s->body.data + from;
    size_t n = to - from;
    const char *enc = NULL;
    if (s->conf->gzip) {
        fr_buf_reset(&s->zbody);
        int rv = influx_gzip_compress(s->gz, p, n, &s->zbody);
        if (rv != 0) {
            return fr_error_set(err, rv, NULL, "compressing %zu bytes: %s", n, fr_strerror(rv));
        }
        p = s->zbody.data;
        n = s->zbody.len;
        enc = "gzip";
    }
    influx_http_res res;
    int rv = influx_http_request(s->http, "POST", s->write_uri, "text/plain; charset=utf-8", enc, p,
                                 n, &res, err);
    if (rv != 0) {
        s->request_errors++;
        return rv;
    }
    s->requests++;
    s->bytes_raw += to - from;
    s->bytes_sent += n;
    s->last_status = res.status;
    if (res.status >= 200 && res.status < 300) {
        return 0;
    }
    return answer_error(s, &res, "/write", to - from, err);
}

/* Sends lines [first, last) of body. A body the server finds too big
 * (413) goes again in two halves, down to single lines. */
static int send_lines(influx_sink *s, size_t first, size_t last, fr_error *err)
{
    size_t from = first == 0 ? 0 : s->ends[first - 1];
    int rv = post(s, from, s->ends[last - 1], err);
    if (rv == FR_ETOOBIG && last - first > 1) {
        size_t mid = first + (last - first) / 2;
        s->splits++;
        if ((rv = send_lines(s, first, mid, err)) == 0) {
            rv = send_lines(s, mid, last, err);
        }
        return rv;
    }
    if (rv == 0) {
        s->points += last - first;
    }
    return rv;
}

static int line_mark(influx_sink *s)
{
    if (s->nends == s->cap_ends) {
        size_t cap = s->cap_ends == 0 ? 1024 : s->cap_ends * 2;
        size_t *e = realloc(s->ends, cap * sizeof(*e));
        if (e == NULL) {
            return FR_ENOMEM;
        }
        s->ends = e;
        s->cap_ends = cap;
    }
    s->ends[s->nends++] = s->body.len;
    return 0;
}

static void drop_point(influx_sink *s, int reason, const char *why, const fr_metric *m)
{
    s->dropped[reason]++;
    if (!s->drop_told[reason]) {
        s->drop_told[reason] = true;
        fr_warn(MOD, "%s: point of '%.200s' not written: %s (counted in dropped_%s; said once)",
                s->info->id, m->ns, why, influx_drop_name((influx_drop)reason));
    }
}

static int sink_write(void *state, fr_batch *const *batches, size_t n, fr_error *err)
{
    influx_sink *s = state;
    int rv;
    if (s->conf->create_database && !s->db_ready && (rv = db_create(s, err)) != 0) {
        return rv;
    }
    size_t max_body = (size_t)s->conf->max_body;
    fr_buf_reset(&s->body);
    s->nends = 0;
    for (size_t i = 0; i < n; i++) {
        const fr_batch *b = batches[i];
        for (uint32_t j = 0; j < b->nmetrics; j++) {
            const char *why;
            rv = influx_lp_line(&s->lp, b, &b->metrics[j], &s->body, &why);
            if (rv > 0) {
                drop_point(s, rv, why, &b->metrics[j]);
                continue;
            }
            if (rv != 0 || (rv = line_mark(s)) != 0) {
                return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
            }
            /* Over max_body: what came before goes now; a line over it on
             * its own goes alone. */
            while (s->body.len > max_body) {
                size_t keep = s->nends > 1 ? 1 : 0;
                if ((rv = send_lines(s, 0, s->nends - keep, err)) != 0) {
                    return rv;
                }
                size_t sent = s->ends[s->nends - keep - 1];
                memmove(s->body.data, s->body.data + sent, s->body.len - sent);
                s->body.len -= sent;
                s->nends = keep;
                if (keep != 0) {
                    s->ends[0] = s->body.len;
                }
            }
        }
    }
    if (s->nends > 0 && (rv = send_lines(s, 0, s->nends, err)) != 0) {
        return rv;
    }
    return 0;
}

/* ---- life ---------------------------------------------------------------- */

static void sink_destroy(void *state)
{
    influx_sink *s = state;
    if (s == NULL) {
        return;
    }
    influx_http_destroy(s->http);
    influx_gzip_destroy(s->gz);
    fr_buf_free(&s->body);
    fr_buf_free(&s->zbody);
    free(s->ends);
    free(s->write_uri);
    free(s->create_body);
    free(s);
}

static int64_t precision_ns(const char *p, const char **param)
{
    static const struct {
        const char *name, *param;
        int64_t ns;
    } t[] = {{"ns", "n", 1},          {"n", "n", 1},
             {"us", "u", 1000},       {"u", "u", 1000},
             {"ms", "ms", 1000000},   {"s", "s", 1000000000},
             {"m", "m", 60000000000}, {"h", "h", 3600000000000}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        if (strcmp(p, t[i].name) == 0) {
            *param = t[i].param;
            return t[i].ns;
        }
    }
    *param = "n";
    return 1;
}

/* "/write?db=...&precision=...[&rp=...]" and CREATE DATABASE's body. */
static int build_requests(influx_sink *s)
{
    const influx_conf *c = s->conf;
    const char *param;
    s->precision_ns = precision_ns(c->precision, &param);
    fr_buf b = FR_BUF_INIT;
    if (fr_buf_append(&b, "/write?db=", 10) != 0 || url_encode(&b, c->database) != 0 ||
        fr_buf_append(&b, "&precision=", 11) != 0 || url_encode(&b, param) != 0 ||
        (c->retention != NULL && c->retention[0] != '\0' &&
         (fr_buf_append(&b, "&rp=", 4) != 0 || url_encode(&b, c->retention) != 0)) ||
        (s->write_uri = buf_string(&b)) == NULL) {
        fr_buf_free(&b);
        return FR_ENOMEM;
    }
    /* q=CREATE DATABASE "<name>", the name quoted as InfluxQL wants. */
    fr_buf q = FR_BUF_INIT;
    int rv = fr_buf_append(&q, "CREATE DATABASE \"", 17);
    for (const char *p = c->database; rv == 0 && *p != '\0'; p++) {
        rv = (*p == '"' || *p == '\\') ? fr_buf_append(&q, "\\", 1) : 0;
        rv = rv == 0 ? fr_buf_append(&q, p, 1) : rv;
    }
    char *qs = NULL;
    if (rv == 0 && fr_buf_append(&q, "\"", 1) == 0 && (qs = buf_string(&q)) != NULL) {
        fr_buf f = FR_BUF_INIT;
        if (fr_buf_append(&f, "q=", 2) == 0 && url_encode(&f, qs) == 0) {
            s->create_body = buf_string(&f);
        } else {
            fr_buf_free(&f);
        }
    } else {
        fr_buf_free(&q);
    }
    free(qs);
    return s->create_body != NULL ? 0 : FR_ENOMEM;
}

/* InfluxDB's rule for database and retention policy names (they are
 * directory names). */
static bool valid_name(const char *s)
{
    return strcmp(s, ".") != 0 && strcmp(s, "..") != 0 && strpbrk(s, "/\\") == NULL;
}

static int sink_init(void **state, const void *config, const fr_sink_info *info, fr_error *err)
{
    const influx_conf *c = config;
    *state = NULL;
    if (c->database == NULL || c->database[0] == '\0') {
        return fr_error_set(err, FR_ECONFIG, "database",
                            "key 'database': required: the database to write to");
    }
    if (!valid_name(c->database)) {
        return fr_error_set(err, FR_ECONFIG, "database",
                            "key 'database': '%.100s' is not a name InfluxDB takes (no '/' or "
                            "'\\', not '.' or '..')",
                            c->database);
    }
    if (c->retention != NULL && c->retention[0] != '\0' && !valid_name(c->retention)) {
        return fr_error_set(err, FR_ECONFIG, "retention",
                            "key 'retention': '%.100s' is not a name InfluxDB takes (no '/' or "
                            "'\\', not '.' or '..')",
                            c->retention);
    }
    if (c->host == NULL || c->host[0] == '\0') {
        return fr_error_set(err, FR_ECONFIG, "host", "key 'host': must not be empty");
    }
    if (c->https && !c->skip_verify && (c->ca_file == NULL || c->ca_file[0] == '\0')) {
        return fr_error_set(err, FR_ECONFIG, "ca_file",
                            "key 'ca_file': required with https unless skip-verify is set");
    }
    influx_sink *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    s->conf = c;
    s->info = info;
    int rv = build_requests(s);
    if (rv != 0) {
        sink_destroy(s);
        return fr_error_set(err, rv, NULL, "out of memory");
    }
    influx_lp_init(&s->lp, s->precision_ns);
    if (c->gzip && (s->gz = influx_gzip_new()) == NULL) {
        sink_destroy(s);
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    influx_http_conf hc = {
        .host = c->host,
        .port = (int)c->port,
        .https = c->https,
        .skip_verify = c->skip_verify,
        .ca_file = c->ca_file,
        .server_name = c->server_name,
        .user = c->user,
        .password = c->password,
        .timeout_ms = c->timeout_ms,
    };
    if ((rv = influx_http_open(&s->http, &hc, err)) != 0) {
        sink_destroy(s);
        return rv;
    }
    *state = s;
    return 0;
}

static void pack_u64(msgpack_packer *pk, const char *key, uint64_t v)
{
    msgpack_pack_str_with_body(pk, key, strlen(key));
    msgpack_pack_uint64(pk, v);
}

static void sink_stats(void *state, msgpack_packer *pk)
{
    const influx_sink *s = state;
    uint64_t dropped = 0;
    for (int i = 1; i < INFLUX_DROP_COUNT; i++) {
        dropped += s->dropped[i];
    }
    msgpack_pack_map(pk, 12 + INFLUX_DROP_COUNT - 1);
    pack_u64(pk, "points", s->points);
    pack_u64(pk, "points_dropped", dropped);
    for (int i = 1; i < INFLUX_DROP_COUNT; i++) {
        char key[32];
        snprintf(key, sizeof(key), "dropped_%s", influx_drop_name((influx_drop)i));
        pack_u64(pk, key, s->dropped[i]);
    }
    pack_u64(pk, "requests", s->requests);
    pack_u64(pk, "request_errors", s->request_errors);
    pack_u64(pk, "splits", s->splits);
    pack_u64(pk, "bytes_raw", s->bytes_raw);
    pack_u64(pk, "bytes_sent", s->bytes_sent);
    pack_u64(pk, "last_status", s->last_status);
    msgpack_pack_str_with_body(pk, "gzip", 4);
    s->conf->gzip ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    msgpack_pack_str_with_body(pk, "database", 8);
    msgpack_pack_str_with_body(pk, s->conf->database, strlen(s->conf->database));
    msgpack_pack_str_with_body(pk, "url", 3);
    const char *base = influx_http_base(s->http);
    msgpack_pack_str_with_body(pk, base, strlen(base));
    msgpack_pack_str_with_body(pk, "db_ready", 8);
    s->db_ready ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
}

const fr_sink_plugin fr_sink_influxdb = {
    .abi = FR_SINK_ABI,
    .name = "influxdb",
    .version = 1,
    .description = "InfluxDB 1.x: line protocol over HTTP(S) to /write, batched, optionally "
                   "gzip-compressed",
    .config =
        {
            .fields = influx_fields,
            .nfields = sizeof(influx_fields) / sizeof(influx_fields[0]),
            .config_size = sizeof(influx_conf),
        },
    .init = sink_init,
    .write = sink_write,
    .destroy = sink_destroy,
    .stats = sink_stats,
};
