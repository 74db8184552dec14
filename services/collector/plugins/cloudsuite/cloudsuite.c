/* cloudsuite: the CloudSuite data-caching benchmark, from its client's
 * output.
 *
 * The client (the memcached loader) prints its statistics every interval
 * as a header line and a row of comma-separated values:
 *     timeDiff,     rps,        requests,     gets, ...,        avgGetSize
 *     1.000050, 83977.3,      84046,      67170, ..., 1000.420000
 * followed by the outstanding requests per worker; its stats CSV file has
 * the same shape with a leading "ts" column. The header names the columns,
 * so both are read by name. Rows are read incrementally; each tick emits
 * the latest row under /gwdg/cloudsuite/datacaching/<column>. Every other
 * line the client prints is ignored. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/plugin.h"
#include "logtail.h"

#define CS_PREFIX "/gwdg/cloudsuite/datacaching"

typedef struct cs_config {
    char *log_file;
    int64_t max_read;
} cs_config;

static const fr_cfg_field cs_policy[] = {
    {"log_file", FR_CFG_STRING, NULL, offsetof(cs_config, log_file),
     "the data-caching client's output (its stdout redirected to a file) or its stats CSV "
     "file; required",
     0, 0, NULL},
    {"max_read", FR_CFG_SIZE, "4MiB", offsetof(cs_config, max_read),
     "most bytes read per tick; an older backlog is skipped", 4096, (int64_t)1 << 30, NULL},
};

/* The columns of a stats row, in the client's order; catalog entries in
 * the same order. */
static const fr_metric_info cs_catalog[] = {
    {CS_PREFIX "/timeDiff", FR_VAL_DOUBLE, "s", "length of the interval the row covers", NULL, 0},
    {CS_PREFIX "/rps", FR_VAL_DOUBLE, "requests/s", "requests per second over the interval", NULL,
     0},
    {CS_PREFIX "/requests", FR_VAL_UINT64, "", "requests completed in the interval", NULL, 0},
    {CS_PREFIX "/gets", FR_VAL_UINT64, "", "get requests in the interval", NULL, 0},
    {CS_PREFIX "/sets", FR_VAL_UINT64, "", "set requests in the interval", NULL, 0},
    {CS_PREFIX "/hits", FR_VAL_UINT64, "", "gets that found their key in the interval", NULL, 0},
    {CS_PREFIX "/misses", FR_VAL_UINT64, "", "gets that missed in the interval", NULL, 0},
    {CS_PREFIX "/avg_lat", FR_VAL_DOUBLE, "ms", "mean response time in the interval", NULL, 0},
    {CS_PREFIX "/90th", FR_VAL_DOUBLE, "ms", "90th percentile of response time", NULL, 0},
    {CS_PREFIX "/95th", FR_VAL_DOUBLE, "ms", "95th percentile of response time", NULL, 0},
    {CS_PREFIX "/99th", FR_VAL_DOUBLE, "ms", "99th percentile of response time", NULL, 0},
    {CS_PREFIX "/std", FR_VAL_DOUBLE, "ms", "standard deviation of response time", NULL, 0},
    {CS_PREFIX "/min", FR_VAL_DOUBLE, "ms", "shortest response time in the interval", NULL, 0},
    {CS_PREFIX "/max", FR_VAL_DOUBLE, "ms", "longest response time in the interval", NULL, 0},
    {CS_PREFIX "/avgGetSize", FR_VAL_DOUBLE, "bytes", "mean size of the values gets returned", NULL,
     0},
};
#define CS_NCOLS      (sizeof(cs_catalog) / sizeof(cs_catalog[0]))
#define CS_MAX_HEADER 32 /* columns a header may have (the CSV file adds "ts") */

typedef struct cs_state {
    const cs_config *cfg;
    logtail tail;
    char *scratch;
    /* The latest header: for each of its columns, the catalog index or -1
     * for a column we do not publish (such as "ts"). */
    int header[CS_MAX_HEADER];
    size_t nheader;
    bool expect_row; /* rows of the latest header may follow */
    double row[CS_NCOLS];
    bool have[CS_NCOLS];
    bool fresh; /* a row arrived since the last tick */
} cs_state;

static const char *cs_column_name(size_t i)
{
    return cs_catalog[i].ns + sizeof(CS_PREFIX);
}

static char *cs_trim(char *s)
{
    while (isspace((unsigned char)*s)) {
        s++;
    }
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) {
        *--e = '\0';
    }
    return s;
}

/* A header is a line of names, among them timeDiff and rps. */
static bool cs_is_header(const char *line)
{
    return strstr(line, "timeDiff") != NULL && strstr(line, "rps") != NULL &&
           strstr(line, "avg_lat") != NULL;
}

static int cs_parse_header(cs_state *st, char *line, const char *where, fr_error *err)
{
    size_t n = 0;
    bool seen[CS_NCOLS] = {false};
    st->nheader = 0;
    st->expect_row = false;
    for (char *save = NULL, *tok = strtok_r(line, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (n == CS_MAX_HEADER) {
            return fr_error_set(err, FR_EINVAL, where, "%s: header has more than %d columns", where,
                                CS_MAX_HEADER);
        }
        const char *name = cs_trim(tok);
        int idx = -1;
        for (size_t i = 0; i < CS_NCOLS; i++) {
            if (strcmp(name, cs_column_name(i)) == 0) {
                idx = (int)i;
                break;
            }
        }
        if (idx >= 0) {
            if (seen[idx]) {
                return fr_error_set(err, FR_EINVAL, where, "%s: column %s given twice", where,
                                    name);
            }
            seen[idx] = true;
        }
        st->header[n++] = idx;
    }
    st->nheader = n;
    st->expect_row = true;
    return 0;
}

static int cs_parse_row(cs_state *st, char *line, const char *where, fr_error *err)
{
    double vals[CS_MAX_HEADER];
    size_t n = 0;
    char *p = line;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma != NULL) {
            *comma = '\0';
        }
        char *tok = cs_trim(p);
        if (n == st->nheader) {
            return fr_error_set(err, FR_EINVAL, where,
                                "%s: stats row has more values than the header's %zu columns",
                                where, st->nheader);
        }
        char *end;
        double v = strtod(tok, &end);
        if (*tok == '\0' || *end != '\0') {
            const char *col =
                st->header[n] >= 0 ? cs_column_name((size_t)st->header[n]) : "(unpublished)";
            return fr_error_set(err, FR_EINVAL, where, "%s: column %zu (%s): not a number: '%.40s'",
                                where, n + 1, col, tok);
        }
        vals[n++] = v;
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    if (n != st->nheader) {
        return fr_error_set(err, FR_EINVAL, where,
                            "%s: stats row has %zu values, the header %zu columns", where, n,
                            st->nheader);
    }
    /* Only a complete row replaces the previous one. */
    for (size_t i = 0; i < n; i++) {
        int idx = st->header[i];
        if (idx < 0) {
            continue;
        }
        if (cs_catalog[idx].type == FR_VAL_UINT64 &&
            !(vals[i] >= 0 && vals[i] < 1.8e19 && (double)(uint64_t)vals[i] == vals[i])) {
            return fr_error_set(err, FR_EINVAL, where, "%s: %s is not a count: %g", where,
                                cs_column_name((size_t)idx), vals[i]);
        }
    }
    memset(st->have, 0, sizeof(st->have));
    for (size_t i = 0; i < n; i++) {
        int idx = st->header[i];
        if (idx >= 0) {
            st->row[idx] = vals[i];
            st->have[idx] = true;
        }
    }
    st->fresh = true;
    return 0;
}

static int cs_parse_line(void *arg, char *line, size_t len, const char *where, fr_error *err)
{
    cs_state *st = arg;
    if (cs_is_header(line)) {
        return cs_parse_header(st, line, where, err);
    }
    if (!st->expect_row) {
        return 0; /* "Stats:", dashes, outstanding requests per worker */
    }
    /* Rows follow their header (one per header in the client's output,
     * all of them in its CSV file) until a line that is not a row. */
    const char *p = line + strspn(line, " \t");
    if (!isdigit((unsigned char)*p) && *p != '-' && *p != '+' && *p != '.') {
        st->expect_row = false;
        return 0;
    }
    return cs_parse_row(st, line, where, err);
}

static void cs_destroy(void *state)
{
    cs_state *st = state;
    if (st == NULL) {
        return;
    }
    logtail_close(&st->tail);
    free(st->scratch);
    free(st);
}

static int cs_init(void **state, const void *config, fr_error *err)
{
    const cs_config *cfg = config;
    *state = NULL;
    if (cfg->log_file == NULL || cfg->log_file[0] == '\0') {
        return fr_error_set(err, FR_ECONFIG, "log_file",
                            "cloudsuite: log_file is required (the data-caching client's output)");
    }
    cs_state *st = calloc(1, sizeof(*st));
    if (st == NULL || (st->scratch = malloc(LOGTAIL_CHUNK)) == NULL) {
        cs_destroy(st);
        return fr_error_set(err, FR_ENOMEM, "", "cloudsuite: out of memory");
    }
    st->cfg = cfg;
    logtail_init(&st->tail, cfg->log_file, (uint64_t)cfg->max_read, true);
    *state = st;
    return 0;
}

static int cs_collect(void *state, const fr_collect_req *req, fr_error *err)
{
    cs_state *st = state;
    int rv = logtail_poll(&st->tail, st->scratch, LOGTAIL_CHUNK, cs_parse_line, st, err);
    if (!st->fresh) {
        return rv;
    }
    st->fresh = false;
    for (size_t i = 0; i < CS_NCOLS; i++) {
        const fr_metric_info *m = &cs_catalog[i];
        if (!st->have[i] || !fr_ns_query_match(req->query, m->ns)) {
            continue;
        }
        fr_value v =
            m->type == FR_VAL_UINT64 ? fr_val_u64((uint64_t)st->row[i]) : fr_val_f64(st->row[i]);
        if (fr_batch_add(req->out, m->ns, req->now_ns, v, m->unit) == NULL) {
            return fr_error_set(err, FR_ENOMEM, m->ns, "cloudsuite: out of memory");
        }
    }
    return rv;
}

const fr_collector_plugin fr_collector_cloudsuite = {
    .abi = FR_PLUGIN_ABI,
    .name = "cloudsuite",
    .version = 1,
    .description = "CloudSuite data-caching benchmark statistics (throughput, hits, misses, "
                   "latency percentiles) from the client's output, read incrementally",
    .ns_prefix = CS_PREFIX,
    .catalog = cs_catalog,
    .ncatalog = CS_NCOLS,
    .policy = cs_policy,
    .npolicy = sizeof(cs_policy) / sizeof(cs_policy[0]),
    .config_size = sizeof(cs_config),
    .init = cs_init,
    .collect = cs_collect,
    .destroy = cs_destroy,
};
