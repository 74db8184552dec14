/* postgresql: writes batches to PostgreSQL with binary COPY, each batch
 * exactly once (docs/plugins/sink-postgresql.md).
 *
 * One write() is one transaction per chunk of batches:
 *   BEGIN
 *   INSERT INTO fresco_batches (sink, stream, seq) VALUES ($1,$2,$3),...
 *       ON CONFLICT DO NOTHING RETURNING stream, seq
 *   COPY <table> (...) FROM STDIN (FORMAT binary)   -- new batches only
 *   COMMIT
 * A batch whose key is in fresco_batches was stored before (a resend, a
 * spool replay after a crash, another publisher with the same sink id) and
 * is skipped; when two transactions insert the same key at once, the second
 * waits for the first and, once it commits, finds the key taken. Rows and
 * keys commit together, so a crash anywhere leaves either both or neither.
 *
 * The connection is made lazily in write (init never waits on the server),
 * with the schema created idempotently under an advisory lock on each
 * connect. A lost connection fails the write with a retryable code; the
 * engine backs off and calls again with the same batches, and the next
 * write reconnects. Values travel only as COPY data or query parameters;
 * identifiers only through PQescapeIdentifier. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <msgpack.h>

#include "fresco/clock.h"
#include "fresco/log.h"
#include "fresco/pipeline.h"
#include "pg_conn.h"
#include "pg_names.h"
#include "pg_rows.h"

#define PG_LOG           "publisher/postgresql"
#define PG_DEFAULT_TABLE "fresco_metrics"
#define PG_TXN_BATCHES   1000         /* batches per transaction: 2n+1 parameters */
#define PG_TXN_ROWS      200000       /* rows per transaction, unless one batch has more */
#define PG_COPY_FLUSH    (256u << 10) /* bytes of COPY data buffered before sending */
/* The sink waits this much past the server's statement_timeout, so that a
 * statement the server gives up on ends with its error and a usable
 * connection, not with the sink cutting the connection. */
#define PG_GRACE_MS    500
#define PG_PRUNE_EVERY (3600 * 1000) /* ms between prunes of old batch keys */
/* pg_advisory_xact_lock key serialising schema creation: "fresco" in ASCII */
#define PG_SCHEMA_LOCK "111542088590191"

/* ---- config ----------------------------------------------------------- */

typedef struct pg_config {
    char *conninfo;
    char *hostname;
    char *host;
    int64_t port;
    char *username;
    char *password;
    char *database;
    char *table;
    char *table_name;
    bool table_per_task;
    int64_t connect_timeout_ms;
    int64_t timeout_ms;
    int64_t dedup_keep_ms;
} pg_config;

static const fr_cfg_field pg_policy[] = {
    {.key = "conninfo",
     .type = FR_CFG_STRING,
     .offset = offsetof(pg_config, conninfo),
     .help = "libpq connection string (\"host=db port=5432 dbname=telemetry user=fresco\" or a "
             "postgresql:// URI); the keys below override what it says"},
    {.key = "hostname",
     .type = FR_CFG_STRING,
     .offset = offsetof(pg_config, hostname),
     .help = "server host name, address or unix socket directory (snap's key; libpq's default "
             "when unset)"},
    {.key = "host",
     .type = FR_CFG_STRING,
     .offset = offsetof(pg_config, host),
     .help = "the same as hostname"},
    {.key = "port",
     .type = FR_CFG_INT,
     .offset = offsetof(pg_config, port),
     .help = "server port (libpq's default, 5432, when unset)",
     .min = 1,
     .max = 65535},
    {.key = "username",
     .type = FR_CFG_STRING,
     .offset = offsetof(pg_config, username),
     .help = "role to connect as"},
    {.key = "password",
     .type = FR_CFG_STRING,
     .offset = offsetof(pg_config, password),
     .help = "password of that role (or use a ~/.pgpass file)"},
    {.key = "database",
     .type = FR_CFG_STRING,
     .offset = offsetof(pg_config, database),
     .help = "database to write to"},
    {.key = "table",
     .type = FR_CFG_STRING,
     .offset = offsetof(pg_config, table),
     .help = "table for the metrics (default fresco_metrics), created when missing"},
    {.key = "table_name",
     .type = FR_CFG_STRING,
     .offset = offsetof(pg_config, table_name),
     .help = "the same as table (snap's key)"},
    {.key = "table_per_task",
     .type = FR_CFG_BOOL,
     .def = "false",
     .offset = offsetof(pg_config, table_per_task),
     .help = "a table per task: table + \"_\" + the task's name made an identifier"},
    {.key = "connect_timeout",
     .type = FR_CFG_DURATION,
     .def = "10s",
     .offset = offsetof(pg_config, connect_timeout_ms),
     .help = "longest a connection attempt may take",
     .min = 100,
     .max = 600000},
    {.key = "timeout",
     .type = FR_CFG_DURATION,
     .def = "30s",
     .offset = offsetof(pg_config, timeout_ms),
     .help = "longest one statement of a write may take (the session's statement_timeout); "
             "a server that says nothing for this long (+0.5s) is given up",
     .min = 100,
     .max = 3600000},
    {.key = "dedup_keep",
     .type = FR_CFG_DURATION,
     .def = "168h",
     .offset = offsetof(pg_config, dedup_keep_ms),
     .help = "how long the keys of written batches are kept to drop resent ones",
     .min = 1000,
     .max = 10LL * 366 * 24 * 3600 * 1000},
};

/* ---- state ------------------------------------------------------------ */

/* One batch's key in a transaction. */
typedef struct pg_key {
    size_t stream; /* offset of its stream in pg_sink.streams */
    int64_t seq;   /* the batch's seq as PostgreSQL's bigint (same 64 bits) */
    uint32_t index;
    bool fresh; /* not stored before: its rows go in */
} pg_key;

typedef struct pg_stats {
    uint64_t writes;       /* write() calls */
    uint64_t write_errors; /* write() calls that failed */
    uint64_t connects;     /* connections made */
    uint64_t batches;      /* batches stored */
    uint64_t duplicates;   /* batches skipped: stored before */
    uint64_t rows;         /* rows stored */
    uint64_t bytes;        /* COPY bytes sent */
    uint64_t prunes;       /* old batch keys deleted */
} pg_stats;

typedef struct pg_sink {
    const pg_config *cfg;
    const fr_sink_info *info;
    /* libpq connection parameters, NULL-terminated */
    const char *ckeys[12];
    const char *cvals[12];
    bool expand;
    char port[24];
    char step_ms[24];
    char table[PGNAME_MAX + 1]; /* unquoted */
    char idx_ns_time[PGNAME_MAX + 1];
    char idx_time[PGNAME_MAX + 1];
    char *schema_sql; /* built on the first connect (quoting needs one) */
    char *copy_sql;
    pgc conn;
    pgrows rows;
    fr_buf copy;    /* COPY data not yet sent */
    fr_buf streams; /* the chunk's stream keys, NUL-terminated */
    fr_buf sql;     /* the chunk's INSERT */
    pg_key *keys;
    const char **params;
    char (*seqs)[24];
    size_t cap; /* of keys, params (2 * cap + 1) and seqs */
    int64_t next_prune_ms;
    pg_stats st;
    char last_error[256];
} pg_sink;

/* ---- init ------------------------------------------------------------- */

static int pg_check_table(const char *key, const char *t, size_t max, fr_error *err)
{
    size_t n = strlen(t);
    if (n == 0) {
        return fr_error_set(err, FR_ECONFIG, key, "key '%s': empty table name", key);
    }
    if (n > max) {
        return fr_error_set(err, FR_ECONFIG, key,
                            "key '%s': table name of %zu bytes, over the %zu PostgreSQL keeps%s",
                            key, n, max, max < PGNAME_MAX ? " with table_per_task" : "");
    }
    return 0;
}

static int pg_check_conninfo(const char *conninfo, fr_error *err)
{
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
    if (opts == NULL) {
        char line[200];
        snprintf(line, sizeof(line), "%s", why != NULL ? why : "out of memory");
        line[strcspn(line, "\n")] = '\0';
        PQfreemem(why);
        return fr_error_set(err, FR_ECONFIG, "conninfo", "key 'conninfo': %s", line);
    }
    PQconninfoFree(opts);
    return 0;
}

static void pg_param(pg_sink *s, size_t *n, const char *key, const char *val)
{
    if (val != NULL && val[0] != '\0') {
        s->ckeys[*n] = key;
        s->cvals[*n] = val;
        (*n)++;
    }
}

static void pg_destroy(void *state)
{
    pg_sink *s = state;
    if (s == NULL) {
        return;
    }
    pgc_close(&s->conn);
    pgrows_free(&s->rows);
    fr_buf_free(&s->copy);
    fr_buf_free(&s->streams);
    fr_buf_free(&s->sql);
    free(s->keys);
    free(s->params);
    free(s->seqs);
    free(s->schema_sql);
    free(s->copy_sql);
    free(s);
}

static int pg_init(void **state, const void *config, const fr_sink_info *info, fr_error *err)
{
    const pg_config *cfg = config;
    *state = NULL;
    if (cfg->conninfo != NULL && pg_check_conninfo(cfg->conninfo, err) != 0) {
        return err->code;
    }
    if (cfg->host != NULL && cfg->hostname != NULL && strcmp(cfg->host, cfg->hostname) != 0) {
        return fr_error_set(err, FR_ECONFIG, "host",
                            "key 'host': '%.60s' differs from hostname '%.60s' (give one)",
                            cfg->host, cfg->hostname);
    }
    if (cfg->table != NULL && cfg->table_name != NULL && strcmp(cfg->table, cfg->table_name) != 0) {
        return fr_error_set(err, FR_ECONFIG, "table_name",
                            "key 'table_name': '%.60s' differs from table '%.60s' (give one)",
                            cfg->table_name, cfg->table);
    }
    const char *tkey = cfg->table != NULL ? "table" : "table_name";
    const char *table = cfg->table != NULL ? cfg->table : cfg->table_name;
    if (table == NULL) {
        table = PG_DEFAULT_TABLE;
    }
    int rv = pg_check_table(tkey, table, cfg->table_per_task ? PGNAME_BASE_MAX : PGNAME_MAX, err);
    if (rv != 0) {
        return rv;
    }

    pg_sink *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return fr_error_set(err, FR_ENOMEM, "", "out of memory");
    }
    s->cfg = cfg;
    s->info = info;
    if (cfg->table_per_task) {
        pgname_task_table(s->table, table, info->task_name != NULL ? info->task_name : info->task);
    } else {
        snprintf(s->table, sizeof(s->table), "%s", table);
    }
    pgname_index(s->idx_ns_time, s->table, "_ns_time_idx");
    pgname_index(s->idx_time, s->table, "_time_idx");

    /* Later parameters win; only the first dbname is read as a conninfo. */
    size_t n = 0;
    pg_param(s, &n, "fallback_application_name", "fresco-publisher");
    pg_param(s, &n, "dbname", cfg->conninfo);
    s->expand = cfg->conninfo != NULL && cfg->conninfo[0] != '\0';
    pg_param(s, &n, "host", cfg->hostname != NULL ? cfg->hostname : cfg->host);
    if (cfg->port > 0) {
        snprintf(s->port, sizeof(s->port), "%" PRId64, cfg->port);
        pg_param(s, &n, "port", s->port);
    }
    pg_param(s, &n, "user", cfg->username);
    pg_param(s, &n, "password", cfg->password);
    pg_param(s, &n, "dbname", cfg->database); /* read as a conninfo only when first */
    pg_param(s, &n, "client_encoding", "UTF8");
    s->ckeys[n] = NULL;
    s->cvals[n] = NULL;
    snprintf(s->step_ms, sizeof(s->step_ms), "%" PRId64, cfg->timeout_ms);
    *state = s;
    return 0;
}

/* ---- connection ------------------------------------------------------- */

/* The DDL and the COPY statement, with quoted names. */
static int pg_build_sql(pg_sink *s, fr_error *err)
{
    char *t = PQescapeIdentifier(s->conn.pg, s->table, strlen(s->table));
    char *i1 = PQescapeIdentifier(s->conn.pg, s->idx_ns_time, strlen(s->idx_ns_time));
    char *i2 = PQescapeIdentifier(s->conn.pg, s->idx_time, strlen(s->idx_time));
    int rv = 0;
    if (t == NULL || i1 == NULL || i2 == NULL) {
        rv = fr_error_set(err, FR_EINVAL, "", "table name '%.80s': %s", s->table,
                          PQerrorMessage(s->conn.pg));
    } else {
        const char *fmt =
            "BEGIN;"
            "SELECT pg_advisory_xact_lock(" PG_SCHEMA_LOCK ");"
            "CREATE TABLE IF NOT EXISTS fresco_batches ("
            " sink text NOT NULL, stream text NOT NULL, seq bigint NOT NULL,"
            " committed_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (sink, stream, seq));"
            "CREATE INDEX IF NOT EXISTS fresco_batches_committed_at_idx"
            " ON fresco_batches (committed_at);"
            "CREATE TABLE IF NOT EXISTS %s ("
            " time timestamptz NOT NULL, namespace text NOT NULL,"
            " value double precision, value_text text, unit text,"
            " tags jsonb NOT NULL DEFAULT '{}', task text NOT NULL, source text NOT NULL);"
            "CREATE INDEX IF NOT EXISTS %s ON %s (namespace, time);"
            "CREATE INDEX IF NOT EXISTS %s ON %s USING brin (time);"
            "COMMIT";
        size_t len = strlen(fmt) + 3 * strlen(t) + strlen(i1) + strlen(i2) + 1;
        free(s->schema_sql);
        free(s->copy_sql);
        s->schema_sql = malloc(len);
        s->copy_sql = malloc(strlen(t) + sizeof(PGROWS_COLUMNS) + 64);
        if (s->schema_sql == NULL || s->copy_sql == NULL) {
            rv = fr_error_set(err, FR_ENOMEM, "", "out of memory");
        } else {
            snprintf(s->schema_sql, len, fmt, t, i1, t, i2, t);
            sprintf(s->copy_sql, "COPY %s (" PGROWS_COLUMNS ") FROM STDIN (FORMAT binary)", t);
        }
    }
    PQfreemem(t);
    PQfreemem(i1);
    PQfreemem(i2);
    return rv;
}

static int pg_connect(pg_sink *s, fr_error *err)
{
    int rv = pgc_open(&s->conn, s->ckeys, s->cvals, s->expand, s->cfg->connect_timeout_ms,
                      s->cfg->timeout_ms + PG_GRACE_MS, err);
    if (rv == 0 && s->schema_sql == NULL) {
        rv = pg_build_sql(s, err);
    }
    if (rv == 0) {
        /* The server gives up on a statement when the sink would. */
        const char *v[1] = {s->step_ms};
        rv = pgc_exec(&s->conn, "set statement_timeout",
                      "SELECT set_config('statement_timeout', $1, false)", 1, v, NULL, err);
    }
    if (rv == 0) {
        rv = pgc_exec(&s->conn, "create schema", s->schema_sql, 0, NULL, NULL, err);
    }
    if (rv != 0) {
        pgc_close(&s->conn);
        return rv;
    }
    s->st.connects++;
    fr_info(PG_LOG, "%s: connected to %s:%s, database %s, table %s", s->info->id,
            PQhost(s->conn.pg), PQport(s->conn.pg), PQdb(s->conn.pg), s->table);
    return 0;
}

/* ---- write ------------------------------------------------------------ */

static int pg_reserve(pg_sink *s, size_t n, fr_error *err)
{
    if (n <= s->cap) {
        return 0;
    }
    pg_key *k = realloc(s->keys, n * sizeof(*k));
    if (k != NULL) {
        s->keys = k;
    }
    const char **p = realloc(s->params, (2 * n + 1) * sizeof(*p));
    if (p != NULL) {
        s->params = p;
    }
    char(*q)[24] = realloc(s->seqs, n * sizeof(*q));
    if (q != NULL) {
        s->seqs = q;
    }
    if (k == NULL || p == NULL || q == NULL) {
        return fr_error_set(err, FR_ENOMEM, "", "out of memory");
    }
    s->cap = n;
    return 0;
}

static const char *pg_stream(const pg_sink *s, const pg_key *k)
{
    return (const char *)s->streams.data + k->stream;
}

static int pg_key_order(const pg_sink *s, int64_t seq, const char *stream, uint32_t index,
                        const pg_key *k)
{
    if (seq != k->seq) {
        return seq < k->seq ? -1 : 1;
    }
    int c = strcmp(stream, pg_stream(s, k));
    if (c != 0) {
        return c;
    }
    return index < k->index ? -1 : (index > k->index ? 1 : 0);
}

/* (seq, stream, index): to find the keys the server returned. */
static int pg_key_cmp(const void *a, const void *b, void *arg)
{
    const pg_sink *s = arg;
    const pg_key *x = a;
    return pg_key_order(s, x->seq, pg_stream(s, x), x->index, b);
}

/* Spool order. */
static int pg_key_index_cmp(const void *a, const void *b)
{
    const pg_key *x = a, *y = b;
    return x->index < y->index ? -1 : (x->index > y->index ? 1 : 0);
}

/* Marks the first key equal to (seq, stream) as fresh. keys are sorted. */
static void pg_mark_fresh(pg_sink *s, size_t n, int64_t seq, const char *stream)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pg_key_order(s, seq, stream, 0, &s->keys[mid]) > 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < n && s->keys[lo].seq == seq && strcmp(pg_stream(s, &s->keys[lo]), stream) == 0) {
        s->keys[lo].fresh = true;
    }
}

/* Fills s->keys, streams and the INSERT of the chunk's keys. */
static int pg_prepare_keys(pg_sink *s, fr_batch *const *batches, size_t n, fr_error *err)
{
    int rv = pg_reserve(s, n, err);
    if (rv != 0) {
        return rv;
    }
    fr_buf_reset(&s->streams);
    fr_buf_reset(&s->sql);
    static const char head[] = "INSERT INTO fresco_batches (sink, stream, seq) VALUES ";
    static const char tail[] = " ON CONFLICT DO NOTHING RETURNING stream, seq";
    if (fr_buf_append(&s->sql, head, sizeof(head) - 1) != 0) {
        return fr_error_set(err, FR_ENOMEM, "", "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const fr_batch *b = batches[i];
        size_t need = fr_batch_stream(b, NULL, 0) + 1;
        if (fr_buf_reserve(&s->streams, need) != 0) {
            return fr_error_set(err, FR_ENOMEM, "", "out of memory");
        }
        pg_key *k = &s->keys[i];
        k->stream = s->streams.len;
        fr_batch_stream(b, (char *)s->streams.data + s->streams.len, need);
        s->streams.len += need;
        k->seq = (int64_t)b->seq;
        k->index = (uint32_t)i;
        k->fresh = false;
        snprintf(s->seqs[i], sizeof(s->seqs[i]), "%" PRId64, k->seq);
        char row[64];
        int len =
            snprintf(row, sizeof(row), "%s($1,$%zu,$%zu)", i > 0 ? "," : "", 2 * i + 2, 2 * i + 3);
        if (fr_buf_append(&s->sql, row, (size_t)len) != 0) {
            return fr_error_set(err, FR_ENOMEM, "", "out of memory");
        }
    }
    if (fr_buf_append(&s->sql, tail, sizeof(tail)) != 0) { /* with its NUL */
        return fr_error_set(err, FR_ENOMEM, "", "out of memory");
    }
    s->params[0] = s->info->id;
    for (size_t i = 0; i < n; i++) {
        s->params[2 * i + 1] = pg_stream(s, &s->keys[i]);
        s->params[2 * i + 2] = s->seqs[i];
    }
    return 0;
}

/* Streams the rows of the fresh batches. */
static int pg_copy_rows(pg_sink *s, fr_batch *const *batches, size_t n, uint64_t *rows,
                        fr_error *err)
{
    int rv = pgc_copy_begin(&s->conn, "COPY", s->copy_sql, err);
    if (rv != 0) {
        return rv;
    }
    fr_buf_reset(&s->copy);
    if (pgrows_header(&s->copy) != 0) {
        rv = fr_error_set(err, FR_ENOMEM, "", "out of memory");
    }
    for (size_t i = 0; i < n && rv == 0; i++) {
        if (!s->keys[i].fresh) {
            continue;
        }
        const fr_batch *b = batches[s->keys[i].index];
        const char *task = b->task[0] != '\0' ? b->task : s->info->task;
        if (pgrows_batch(&s->rows, &s->copy, b, task, strlen(task)) != 0) {
            rv = fr_error_set(err, FR_ENOMEM, "", "out of memory");
            break;
        }
        *rows += b->nmetrics;
        if (s->copy.len >= PG_COPY_FLUSH) {
            s->st.bytes += s->copy.len;
            rv = pgc_copy_put(&s->conn, s->copy.data, s->copy.len, err);
            fr_buf_reset(&s->copy);
        }
    }
    if (rv == 0 && pgrows_trailer(&s->copy) != 0) {
        rv = fr_error_set(err, FR_ENOMEM, "", "out of memory");
    }
    if (rv == 0) {
        s->st.bytes += s->copy.len;
        rv = pgc_copy_put(&s->conn, s->copy.data, s->copy.len, err);
    }
    if (s->conn.dead) {
        return rv;
    }
    /* End the COPY even after a failure: the server's reason is in its
     * result, and the connection must leave the COPY state. */
    fr_error e2;
    int erv = pgc_copy_end(&s->conn, rv == 0 ? err : &e2);
    if (rv == FR_EREMOTE && erv != 0) {
        *err = e2; /* the server's reason beats "no COPY in progress" */
        rv = erv;
    } else if (rv == 0) {
        rv = erv;
    }
    return rv;
}

/* One transaction: the chunk's keys, the rows of its new batches. */
static int pg_txn(pg_sink *s, fr_batch *const *batches, size_t n, fr_error *err)
{
    int rv = pg_prepare_keys(s, batches, n, err);
    if (rv != 0) {
        return rv;
    }
    rv = pgc_exec(&s->conn, "BEGIN", "BEGIN", 0, NULL, NULL, err);
    if (rv != 0) {
        return rv;
    }
    PGresult *res = NULL;
    rv = pgc_exec(&s->conn, "record batch keys", (const char *)s->sql.data, (int)(2 * n + 1),
                  s->params, &res, err);
    size_t fresh = 0;
    uint64_t rows = 0;
    if (rv == 0) {
        qsort_r(s->keys, n, sizeof(*s->keys), pg_key_cmp, s);
        int nt = res != NULL ? PQntuples(res) : 0;
        for (int r = 0; r < nt; r++) {
            int64_t seq = strtoll(PQgetvalue(res, r, 1), NULL, 10);
            pg_mark_fresh(s, n, seq, PQgetvalue(res, r, 0));
        }
        for (size_t i = 0; i < n; i++) {
            fresh += s->keys[i].fresh;
        }
        qsort(s->keys, n, sizeof(*s->keys), pg_key_index_cmp);
    }
    PQclear(res);
    if (rv == 0 && fresh > 0) {
        rv = pg_copy_rows(s, batches, n, &rows, err);
    }
    if (rv == 0) {
        /* COMMIT of a transaction the server aborted answers ROLLBACK */
        PGresult *cr = NULL;
        rv = pgc_exec(&s->conn, "COMMIT", "COMMIT", 0, NULL, &cr, err);
        if (rv == 0 && (cr == NULL || strcmp(PQcmdStatus(cr), "COMMIT") != 0)) {
            rv = fr_error_set(err, FR_EREMOTE, "", "COMMIT: the server rolled back (%s)",
                              cr != NULL ? PQcmdStatus(cr) : "no answer");
        }
        PQclear(cr);
    }
    if (rv != 0) {
        if (!s->conn.dead) {
            fr_error e2;
            if (pgc_exec(&s->conn, "ROLLBACK", "ROLLBACK", 0, NULL, NULL, &e2) != 0) {
                s->conn.dead = true;
            }
        }
        return rv;
    }
    s->st.batches += fresh;
    s->st.duplicates += n - fresh;
    s->st.rows += rows;
    return 0;
}

static int pg_write_all(pg_sink *s, fr_batch *const *batches, size_t n, fr_error *err)
{
    size_t i = 0;
    while (i < n) {
        size_t k = 0;
        uint64_t rows = 0;
        while (i + k < n && k < PG_TXN_BATCHES &&
               (k == 0 || rows + batches[i + k]->nmetrics <= PG_TXN_ROWS)) {
            rows += batches[i + k]->nmetrics;
            k++;
        }
        int rv = pg_txn(s, batches + i, k, err);
        if (rv != 0) {
            return rv;
        }
        i += k;
    }
    return 0;
}

static void pg_disconnect(pg_sink *s, const char *why)
{
    fr_warn(PG_LOG, "%s: connection to the server closed: %s", s->info->id, why);
    pgc_close(&s->conn);
}

/* Deletes batch keys older than dedup_keep, whichever sink wrote them. */
static void pg_prune(pg_sink *s)
{
    int64_t now = fr_mono_ms();
    if (now < s->next_prune_ms) {
        return;
    }
    s->next_prune_ms = now + PG_PRUNE_EVERY;
    char keep[32];
    snprintf(keep, sizeof(keep), "%.3f", (double)s->cfg->dedup_keep_ms / 1000.0);
    const char *v[1] = {keep};
    fr_error e;
    fr_error_clear(&e);
    int rv = pgc_exec(&s->conn, "prune batch keys",
                      "DELETE FROM fresco_batches WHERE committed_at < now() - "
                      "make_interval(secs => $1)",
                      1, v, NULL, &e);
    if (rv != 0) {
        fr_warn(PG_LOG, "%s: %s", s->info->id, e.message);
        if (s->conn.dead) {
            pg_disconnect(s, e.message);
        }
        return;
    }
    s->st.prunes++;
}

static int pg_write(void *state, fr_batch *const *batches, size_t n, fr_error *err)
{
    pg_sink *s = state;
    s->st.writes++;
    int rv = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool fresh = false;
        if (!pgc_is_open(&s->conn)) {
            rv = pg_connect(s, err);
            if (rv != 0) {
                break;
            }
            fresh = true;
        }
        rv = n > 0 ? pg_write_all(s, batches, n, err) : 0;
        if (rv == 0 || !s->conn.dead) {
            break;
        }
        pg_disconnect(s, err->message);
        /* A connection from an earlier write may have died while idle (a
         * server restart): one try on a new one before giving up. */
        if (fresh) {
            break;
        }
    }
    if (rv != 0) {
        s->st.write_errors++;
        snprintf(s->last_error, sizeof(s->last_error), "%s", err->message);
        return rv;
    }
    pg_prune(s);
    return 0;
}

/* ---- stats ------------------------------------------------------------ */

static void pg_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pg_pack_u64(msgpack_packer *pk, const char *k, uint64_t v)
{
    pg_pack_str(pk, k);
    msgpack_pack_uint64(pk, v);
}

static void pg_stats_pack(void *state, msgpack_packer *pk)
{
    const pg_sink *s = state;
    msgpack_pack_map(pk, 11);
    pg_pack_str(pk, "table");
    pg_pack_str(pk, s->table);
    pg_pack_str(pk, "connected");
    if (pgc_is_open(&s->conn)) {
        msgpack_pack_true(pk);
    } else {
        msgpack_pack_false(pk);
    }
    pg_pack_u64(pk, "connects", s->st.connects);
    pg_pack_u64(pk, "writes", s->st.writes);
    pg_pack_u64(pk, "write_errors", s->st.write_errors);
    pg_pack_u64(pk, "batches", s->st.batches);
    pg_pack_u64(pk, "duplicates", s->st.duplicates);
    pg_pack_u64(pk, "rows", s->st.rows);
    pg_pack_u64(pk, "bytes", s->st.bytes);
    pg_pack_u64(pk, "prunes", s->st.prunes);
    pg_pack_str(pk, "last_error");
    pg_pack_str(pk, s->last_error);
}

const fr_sink_plugin fr_sink_postgresql = {
    .abi = FR_SINK_ABI,
    .name = "postgresql",
    .version = 1,
    .description = "writes metrics to PostgreSQL with COPY, each batch exactly once",
    .config = {.fields = pg_policy,
               .nfields = sizeof(pg_policy) / sizeof(pg_policy[0]),
               .config_size = sizeof(pg_config)},
    .init = pg_init,
    .write = pg_write,
    .destroy = pg_destroy,
    .stats = pg_stats_pack,
};
