/* The postgresql sink against real PostgreSQL 15 clusters started by this
 * suite with scripts/pg-cluster.sh: one that stays up for most tests, a
 * second one that the outage tests stop and start. Every test writes into a
 * database of its own and checks the rows through libpq: times, values
 * (value_text for big integers and strings), tags merged with the batch's,
 * exactly once across resends, new instances and concurrent writers, the
 * errors a down, slow or mute server gives, table names, bad config and
 * schema creation racing with itself. */
#include "testsupport.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "fresco/metric.h"
#include "fresco/pipeline.h"

extern const fr_sink_plugin fr_sink_postgresql;

#define TS0 1700000000123456789LL /* 2023-11-14T22:13:20.123456789Z */

/* ---- clusters ------------------------------------------------------- */

typedef struct cluster {
    char *dir;
    int port;
} cluster;

static cluster MAIN; /* up for the whole suite */

static int cluster_cmd(const cluster *c, const char *cmd)
{
    char script[1024], line[2048];
    tst_src(script, sizeof(script), "scripts/pg-cluster.sh");
    if (strcmp(cmd, "start") == 0) {
        snprintf(line, sizeof(line), "sh '%s' start '%s' %d >/dev/null", script, c->dir, c->port);
    } else {
        snprintf(line, sizeof(line), "sh '%s' %s '%s' >/dev/null", script, cmd, c->dir);
    }
    int st = system(line);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void cluster_start(cluster *c)
{
    if (c->dir == NULL) {
        c->dir = tst_tmpdir("fresco-pg");
        c->port = tst_free_port();
    }
    assert_int_equal(cluster_cmd(c, "start"), 0);
}

static void cluster_stop(cluster *c)
{
    assert_int_equal(cluster_cmd(c, "stop"), 0);
}

static void cluster_destroy(cluster *c)
{
    if (c->dir != NULL) {
        cluster_cmd(c, "stop");
        tst_rmtree(c->dir);
        free(c->dir);
        c->dir = NULL;
    }
}

static const char *conninfo(const cluster *c, const char *db, char *buf, size_t cap)
{
    snprintf(buf, cap, "host=127.0.0.1 port=%d user=postgres dbname=%s", c->port, db);
    return buf;
}

static PGconn *db_connect(const cluster *c, const char *db)
{
    char ci[256];
    PGconn *pg = PQconnectdb(conninfo(c, db, ci, sizeof(ci)));
    if (PQstatus(pg) != CONNECTION_OK) {
        fail_msg("connect %s: %s", ci, PQerrorMessage(pg));
    }
    return pg;
}

static void db_exec(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    }
    PQclear(r);
}

/* A fresh database on c called name (dropped first when it exists). */
static void db_create(const cluster *c, const char *name)
{
    PGconn *pg = db_connect(c, "postgres");
    char sql[256];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", name);
    db_exec(pg, sql);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
    db_exec(pg, sql);
    PQfinish(pg);
}

/* The one value a query returns (with n text parameters); NULL for SQL
 * NULL. malloc'd. */
static char *q_text(PGconn *pg, const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1 || PQnfields(r) != 1) {
        fail_msg("%s: %s (%d rows)", sql, PQresultErrorMessage(r), PQntuples(r));
    }
    char *v = PQgetisnull(r, 0, 0) ? NULL : strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static long long q_int(PGconn *pg, const char *sql, int n, const char *const *params)
{
    char *v = q_text(pg, sql, n, params);
    assert_non_null(v);
    long long x = atoll(v);
    free(v);
    return x;
}

static long long q_count(PGconn *pg, const char *sql)
{
    return q_int(pg, sql, 0, NULL);
}

/* ---- sinks ---------------------------------------------------------- */

typedef struct sink {
    void *cfg;
    void *st;
    fr_sink_info info;
} sink;

/* Loads kv (key, value, ..., NULL) as the node's config and inits the sink.
 * Returns what failed (config load or init), with err filled. */
static int sink_try(sink *s, const char *id, const char *task_name, const char *const *kv,
                    fr_error *err)
{
    memset(s, 0, sizeof(*s));
    fr_mf_entry e[32];
    size_t n = 0;
    for (; kv[2 * n] != NULL; n++) {
        assert_true(n < 32);
        e[n] = (fr_mf_entry){.key = (char *)kv[2 * n],
                             .value = {.type = FR_MF_STRING, .text = (char *)kv[2 * n + 1]}};
    }
    fr_mf_map map = {.v = e, .n = n};
    const fr_node_policy *p = &fr_sink_postgresql.config;
    int rv =
        fr_node_config_load(p, "postgresql", &map, "workflow.collect.publish[0]", &s->cfg, err);
    if (rv != 0) {
        return rv;
    }
    s->info = (fr_sink_info){.id = id,
                             .task = "task-1",
                             .task_name = task_name,
                             .path = "publish[0]",
                             .state_dir = NULL};
    rv = fr_sink_postgresql.init(&s->st, s->cfg, &s->info, err);
    if (rv != 0) {
        fr_node_config_free(p, s->cfg);
        s->cfg = NULL;
    }
    return rv;
}

static void sink_open(sink *s, const char *id, const char *const *kv)
{
    fr_error err;
    int rv = sink_try(s, id, "Task One", kv, &err);
    if (rv != 0) {
        fail_msg("sink: %d %s: %s", rv, err.where, err.message);
    }
}

static void sink_close(sink *s)
{
    if (s->st != NULL) {
        fr_sink_postgresql.destroy(s->st);
    }
    fr_node_config_free(&fr_sink_postgresql.config, s->cfg);
    memset(s, 0, sizeof(*s));
}

static int sink_write(sink *s, fr_batch **b, size_t n, fr_error *err)
{
    fr_error_clear(err);
    return fr_sink_postgresql.write(s->st, b, n, err);
}

static void sink_write_ok(sink *s, fr_batch **b, size_t n)
{
    fr_error err;
    int rv = sink_write(s, b, n, &err);
    if (rv != 0) {
        fail_msg("write: %d (%s): %s", rv, fr_strerror(rv), err.message);
    }
}

/* A sink on database db of c, with extra config pairs. */
static void sink_open_db(sink *s, const cluster *c, const char *db, const char *id,
                         const char *const *extra)
{
    char ci[256];
    const char *kv[40] = {"conninfo", conninfo(c, db, ci, sizeof(ci))};
    size_t n = 2;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        kv[n++] = extra[i];
    }
    kv[n] = NULL;
    sink_open(s, id, kv);
}

/* A batch of n metrics as a collector sends them: cpu counters with a cpu
 * tag, the batch tagged with its host. */
static fr_batch *mk_batch(const char *source, uint64_t seq, uint32_t n)
{
    fr_batch *b = fr_batch_new("task-1", source, seq);
    assert_non_null(b);
    assert_fr_ok(fr_batch_add_tag(b, "host", source));
    for (uint32_t i = 0; i < n; i++) {
        char ns[96], cpu[16];
        snprintf(cpu, sizeof(cpu), "%u", i % 64);
        snprintf(ns, sizeof(ns), "/intel/procfs/cpu/%s/user_jiffies", cpu);
        /* a microsecond apart: PostgreSQL keeps no finer */
        fr_metric *m = fr_batch_add(b, ns, TS0 + (int64_t)seq * 1000000000LL + (int64_t)i * 1000,
                                    fr_val_u64(seq * 1000 + i), "jiffies");
        assert_non_null(m);
        assert_fr_ok(fr_batch_metric_tag(b, m, "cpu", cpu));
    }
    return b;
}

static void free_batches(fr_batch **b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        fr_batch_destroy(b[i]);
    }
}

/* ---- suite setup ---------------------------------------------------- */

static int suite_setup(void **state)
{
    cluster_start(&MAIN);
    return 0;
}

static int suite_teardown(void **state)
{
    cluster_destroy(&MAIN);
    return 0;
}

/* ---- values, times, tags -------------------------------------------- */

static void check_row(PGconn *pg, const char *ns, const char *us, const char *value,
                      const char *value_text, const char *unit, const char *tags)
{
    const char *p[1] = {ns};
    char *got = q_text(pg,
                       "SELECT concat_ws('|', (extract(epoch FROM time) * 1000000)::bigint,"
                       " coalesce(value::text, 'NULL'), coalesce(value_text, 'NULL'),"
                       " coalesce(unit, 'NULL'), task, source)"
                       " FROM fresco_metrics WHERE namespace = $1",
                       1, p);
    char want[512];
    snprintf(want, sizeof(want), "%s|%s|%s|%s|task-1|node-1", us, value, value_text, unit);
    assert_string_equal(got, want);
    free(got);
    const char *p2[2] = {ns, tags};
    assert_int_equal(q_int(pg,
                           "SELECT count(*) FROM fresco_metrics WHERE namespace = $1 AND"
                           " tags = $2::jsonb",
                           2, p2),
                     1);
}

static void test_value_types(void **state)
{
    db_create(&MAIN, "types");
    sink s;
    sink_open_db(&s, &MAIN, "types", "task-1/publish[0]", NULL);

    fr_batch *b = fr_batch_new("task-1", "node-1", 1);
    assert_non_null(b);
    assert_fr_ok(fr_batch_add_tag(b, "rack", "r1"));
    assert_fr_ok(fr_batch_add_tag(b, "dc", "batch-dc"));
    fr_metric *m = fr_batch_add(b, "/t/int", TS0, fr_val_i64(-42), "");
    assert_fr_ok(fr_batch_metric_tag(b, m, "dc", "own-dc")); /* the metric's wins */
    fr_batch_add(b, "/t/int_big", TS0 + 1000, fr_val_i64(-(1LL << 53) - 1), "");
    fr_batch_add(b, "/t/int_min", TS0, fr_val_i64(INT64_MIN), "");
    fr_batch_add(b, "/t/uint_exact", TS0, fr_val_u64(1ULL << 53), "");
    fr_batch_add(b, "/t/uint_max", TS0, fr_val_u64(UINT64_MAX), "bytes");
    fr_batch_add(b, "/t/double", TS0, fr_val_f64(3.25), "percent");
    fr_batch_add(b, "/t/nan", TS0, fr_val_f64(NAN), "");
    fr_batch_add(b, "/t/true", TS0, fr_val_bool(true), "");
    fr_batch_add(b, "/t/false", TS0, fr_val_bool(false), "");
    m = fr_batch_add(b, "/t/string", TS0, fr_val_str("h\xc3\xa9llo \"w\"\n\\ \t"), "");
    assert_fr_ok(fr_batch_metric_tag(b, m, "q\"uote", "back\\slash \x01 ctl \xe2\x82\xac"));
    fr_batch_add(b, "/t/empty", TS0, fr_val_str(""), "");
    fr_batch_add(b, "/t/before_1970", -1500, fr_val_i64(7), "");
    sink_write_ok(&s, &b, 1);

    PGconn *pg = db_connect(&MAIN, "types");
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_metrics"), 12);
    const char *bt = "{\"rack\": \"r1\", \"dc\": \"batch-dc\"}";
    check_row(pg, "/t/int", "1700000000123456", "-42", "NULL", "NULL",
              "{\"rack\": \"r1\", \"dc\": \"own-dc\"}");
    check_row(pg, "/t/int_big", "1700000000123457", "-9.007199254740992e+15", "-9007199254740993",
              "NULL", bt);
    check_row(pg, "/t/int_min", "1700000000123456", "-9.223372036854776e+18",
              "-9223372036854775808", "NULL", bt);
    check_row(pg, "/t/uint_exact", "1700000000123456", "9.007199254740992e+15", "NULL", "NULL", bt);
    check_row(pg, "/t/uint_max", "1700000000123456", "1.8446744073709552e+19",
              "18446744073709551615", "bytes", bt);
    check_row(pg, "/t/double", "1700000000123456", "3.25", "NULL", "percent", bt);
    check_row(pg, "/t/nan", "1700000000123456", "NaN", "NULL", "NULL", bt);
    check_row(pg, "/t/true", "1700000000123456", "1", "NULL", "NULL", bt);
    check_row(pg, "/t/false", "1700000000123456", "0", "NULL", "NULL", bt);
    check_row(pg, "/t/string", "1700000000123456", "NULL", "h\xc3\xa9llo \"w\"\n\\ \t", "NULL",
              "{\"rack\": \"r1\", \"dc\": \"batch-dc\","
              " \"q\\\"uote\": \"back\\\\slash \\u0001 ctl \xe2\x82\xac\"}");
    check_row(pg, "/t/empty", "1700000000123456", "NULL", "", "NULL", bt);
    /* -1500 ns is 2 us before the epoch: times are cut toward the past */
    check_row(pg, "/t/before_1970", "-2", "7", "NULL", "NULL", bt);
    /* the metric's own time, to the microsecond */
    char *t = q_text(pg,
                     "SELECT to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
                     " FROM fresco_metrics WHERE namespace = '/t/int'",
                     0, NULL);
    assert_string_equal(t, "2023-11-14 22:13:20.123456");
    free(t);
    /* the batch key */
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_batches WHERE sink ="
                                 " 'task-1/publish[0]' AND stream = E'node-1\\x1ftask-1\\x1f'"
                                 " AND seq = 1"),
                     1);
    PQfinish(pg);
    fr_batch_destroy(b);
    sink_close(&s);
}

/* snap's keys instead of a conninfo. */
static void test_snap_keys(void **state)
{
    db_create(&MAIN, "snapkeys");
    char port[16];
    snprintf(port, sizeof(port), "%d", MAIN.port);
    const char *kv[] = {"hostname",   "127.0.0.1",  "port",   port,       "username",
                        "postgres",   "password",   "unused", "database", "snapkeys",
                        "table_name", "snap_table", NULL};
    sink s;
    sink_open(&s, "snap/publish[0]", kv);
    fr_batch *b[2] = {mk_batch("node-1", 1, 10), mk_batch("node-1", 2, 10)};
    sink_write_ok(&s, b, 2);
    PGconn *pg = db_connect(&MAIN, "snapkeys");
    assert_int_equal(q_count(pg, "SELECT count(*) FROM snap_table"), 20);
    assert_int_equal(q_count(pg, "SELECT count(*) FROM snap_table WHERE tags = "
                                 "'{\"host\": \"node-1\", \"cpu\": \"3\"}'"),
                     2);
    PQfinish(pg);
    free_batches(b, 2);
    sink_close(&s);
}

/* ---- exactly once --------------------------------------------------- */

static void test_resend_no_duplicates(void **state)
{
    db_create(&MAIN, "resend");
    PGconn *pg = db_connect(&MAIN, "resend");
    fr_batch *b[12];
    for (int i = 0; i < 10; i++) {
        b[i] = mk_batch("node-1", (uint64_t)i + 1, 100);
    }
    sink s;
    sink_open_db(&s, &MAIN, "resend", "task-1/publish[0]", NULL);
    sink_write_ok(&s, b, 10);
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_metrics"), 1000);
    /* the same batches again, and again in two groups */
    sink_write_ok(&s, b, 10);
    sink_write_ok(&s, b, 4);
    sink_write_ok(&s, b + 4, 6);
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_metrics"), 1000);
    sink_close(&s);

    /* a new instance with the same id (a restarted publisher replaying its
     * spool): old batches skipped, new ones stored, one batch twice in one
     * write stored once */
    b[10] = mk_batch("node-1", 11, 100);
    b[11] = mk_batch("node-2", 1, 100); /* same seq as b[0], another stream */
    sink_open_db(&s, &MAIN, "resend", "task-1/publish[0]", NULL);
    fr_batch *mixed[] = {b[8], b[9], b[10], b[10], b[11]};
    sink_write_ok(&s, mixed, 5);
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_metrics"), 1200);
    assert_int_equal(q_count(pg, "SELECT count(DISTINCT (time, namespace, source))"
                                 " FROM fresco_metrics"),
                     1200);
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_batches"), 12);
    sink_close(&s);

    /* another sink (another publish node) stores its own copy */
    sink_open_db(&s, &MAIN, "resend", "task-1/publish[1]", NULL);
    sink_write_ok(&s, b, 1);
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_metrics"), 1300);
    sink_close(&s);
    PQfinish(pg);
    free_batches(b, 12);
}

#define CONC_BATCHES 40
#define CONC_GROUP   4

typedef struct conc_arg {
    sink *s;
    fr_batch **b;
    bool reverse;
    pthread_barrier_t *start;
    int retries;
    int fails;
} conc_arg;

static void *conc_writer(void *p)
{
    conc_arg *a = p;
    pthread_barrier_wait(a->start);
    int64_t deadline = tst_mono_ms() + 60000;
    for (int g = 0; g < CONC_BATCHES / CONC_GROUP; g++) {
        int gi = a->reverse ? CONC_BATCHES / CONC_GROUP - 1 - g : g;
        fr_batch *grp[CONC_GROUP];
        for (int i = 0; i < CONC_GROUP; i++) {
            /* reversed within the group too, to cross the other's locks */
            int bi = gi * CONC_GROUP + (a->reverse ? CONC_GROUP - 1 - i : i);
            grp[i] = a->b[bi];
        }
        for (;;) {
            fr_error err;
            int rv = sink_write(a->s, grp, CONC_GROUP, &err);
            if (rv == 0) {
                break;
            }
            if (!fr_sink_retryable(rv) || tst_mono_ms() > deadline) {
                a->fails++;
                break;
            }
            a->retries++; /* a deadlock the server broke: the engine retries */
        }
    }
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    db_create(&MAIN, "conc");
    fr_batch *b[CONC_BATCHES];
    for (int i = 0; i < CONC_BATCHES; i++) {
        b[i] = mk_batch("node-1", (uint64_t)i + 1, 250);
    }
    sink s1, s2;
    sink_open_db(&s1, &MAIN, "conc", "task-1/publish[0]", NULL);
    sink_open_db(&s2, &MAIN, "conc", "task-1/publish[0]", NULL);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, 2);
    conc_arg a1 = {.s = &s1, .b = b, .reverse = false, .start = &start};
    conc_arg a2 = {.s = &s2, .b = b, .reverse = true, .start = &start};
    pthread_t t1, t2;
    assert_int_equal(pthread_create(&t1, NULL, conc_writer, &a1), 0);
    assert_int_equal(pthread_create(&t2, NULL, conc_writer, &a2), 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    pthread_barrier_destroy(&start);
    assert_int_equal(a1.fails + a2.fails, 0);

    PGconn *pg = db_connect(&MAIN, "conc");
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_metrics"), CONC_BATCHES * 250);
    assert_int_equal(q_count(pg, "SELECT count(DISTINCT (time, namespace)) FROM fresco_metrics"),
                     CONC_BATCHES * 250);
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_batches"), CONC_BATCHES);
    PQfinish(pg);
    print_message("concurrent writers: %d retries\n", a1.retries + a2.retries);
    sink_close(&s1);
    sink_close(&s2);
    free_batches(b, CONC_BATCHES);
}

/* Keys older than dedup_keep are pruned, whoever wrote them. */
static void test_prune_old_keys(void **state)
{
    db_create(&MAIN, "prune");
    sink s;
    sink_open_db(&s, &MAIN, "prune", "task-1/publish[0]", NULL);
    fr_batch *b = mk_batch("node-1", 1, 1);
    sink_write_ok(&s, &b, 1);
    sink_close(&s);
    PGconn *pg = db_connect(&MAIN, "prune");
    db_exec(pg, "INSERT INTO fresco_batches (sink, stream, seq, committed_at) VALUES"
                " ('gone/publish[0]', 's', 1, now() - interval '8 days'),"
                " ('gone/publish[0]', 's', 2, now() - interval '6 days')");
    const char *extra[] = {"dedup_keep", "168h", NULL};
    sink_open_db(&s, &MAIN, "prune", "task-1/publish[0]", extra);
    sink_write_ok(&s, &b, 1); /* a duplicate; the first write prunes */
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_batches WHERE sink = "
                                 "'gone/publish[0]'"),
                     1);
    assert_int_equal(q_count(pg, "SELECT seq FROM fresco_batches WHERE sink = "
                                 "'gone/publish[0]'"),
                     2);
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_metrics"), 1);
    PQfinish(pg);
    sink_close(&s);
    fr_batch_destroy(b);
}

/* ---- refused data --------------------------------------------------- */

static void test_refused_row(void **state)
{
    db_create(&MAIN, "refused");
    sink s;
    sink_open_db(&s, &MAIN, "refused", "task-1/publish[0]", NULL);
    fr_batch *good = mk_batch("node-1", 1, 5);
    fr_batch *bad = fr_batch_new("task-1", "node-1", 2);
    fr_batch_add(bad, "/t/ok", TS0, fr_val_i64(1), "");
    fr_batch_add(bad, "/t/bad", TS0, fr_val_str("not utf-8: \xff\xfe"), "");
    fr_batch *both[] = {good, bad};
    fr_error err;
    int rv = sink_write(&s, both, 2, &err);
    assert_int_equal(rv, FR_EINVAL);
    assert_false(fr_sink_retryable(rv));
    assert_non_null(strstr(err.message, "UTF8"));
    /* as the engine isolates it: the good one alone goes in, the bad one
     * alone is refused again, on the same connection */
    sink_write_ok(&s, &good, 1);
    assert_int_equal(sink_write(&s, &bad, 1, &err), FR_EINVAL);
    PGconn *pg = db_connect(&MAIN, "refused");
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_metrics"), 5);
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_batches"), 1);
    PQfinish(pg);
    sink_close(&s);
    fr_batch_destroy(good);
    fr_batch_destroy(bad);
}

/* ---- a down, mute or slow server ------------------------------------ */

typedef struct outage {
    sink *s;
    atomic_int ok;    /* batches stored */
    atomic_int fails; /* retryable failures seen */
    atomic_int bad;   /* other failures */
    atomic_llong max_fail_ms;
    int n;
    fr_batch **b;
} outage;

static void *outage_writer(void *p)
{
    outage *o = p;
    int64_t deadline = tst_mono_ms() + 90000;
    for (int i = 0; i < o->n && tst_mono_ms() < deadline; i++) {
        for (;;) {
            fr_error err;
            int64_t t0 = tst_mono_ms();
            int rv = sink_write(o->s, &o->b[i], 1, &err);
            int64_t took = tst_mono_ms() - t0;
            if (rv == 0) {
                atomic_fetch_add(&o->ok, 1);
                break;
            }
            if (!fr_sink_retryable(rv)) {
                atomic_fetch_add(&o->bad, 1);
                break;
            }
            atomic_fetch_add(&o->fails, 1);
            if (took > atomic_load(&o->max_fail_ms)) {
                atomic_store(&o->max_fail_ms, took);
            }
            /* the engine's backoff */
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
            if (tst_mono_ms() > deadline) {
                break;
            }
        }
    }
    return NULL;
}

static bool outage_seen_ok(void *p)
{
    return atomic_load(&((outage *)p)->ok) >= 5;
}

static bool outage_seen_fail(void *p)
{
    return atomic_load(&((outage *)p)->fails) >= 3;
}

static void test_server_down(void **state)
{
    cluster c = {.dir = tst_tmpdir("fresco-pg-down"), .port = tst_free_port()};
    const char *extra[] = {"connect_timeout", "2s", NULL};
    sink s;
    /* init with no server: at once, no waiting */
    int64_t t0 = tst_mono_ms();
    sink_open_db(&s, &c, "postgres", "task-1/publish[0]", extra);
    assert_true(tst_mono_ms() - t0 < 500);
    fr_batch *b[60];
    for (int i = 0; i < 60; i++) {
        b[i] = mk_batch("node-1", (uint64_t)i + 1, 200);
    }
    fr_error err;
    t0 = tst_mono_ms();
    int rv = sink_write(&s, b, 1, &err);
    assert_true(fr_sink_retryable(rv));
    assert_int_equal(rv, FR_EIO);
    assert_true(tst_mono_ms() - t0 < 2500);
    assert_non_null(strstr(err.message, "connect"));

    /* the server comes: the same batch goes in */
    cluster_start(&c);
    sink_write_ok(&s, b, 1);

    /* stopped and started again while a writer keeps writing (retrying
     * each batch as the engine would) */
    outage o = {.s = &s, .n = 59, .b = b + 1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, outage_writer, &o), 0);
    assert_true(tst_wait_until(outage_seen_ok, &o, 30000));
    cluster_stop(&c);
    assert_true(tst_wait_until(outage_seen_fail, &o, 30000));
    cluster_start(&c);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&o.bad), 0);
    assert_int_equal(atomic_load(&o.ok), 59);
    /* each failure came back within connect_timeout (and some slack) */
    print_message("outage: %d failed writes, slowest %lld ms\n", atomic_load(&o.fails),
                  (long long)atomic_load(&o.max_fail_ms));
    assert_true(atomic_load(&o.max_fail_ms) < 3000);

    PGconn *pg = db_connect(&c, "postgres");
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_metrics"), 60 * 200);
    assert_int_equal(q_count(pg, "SELECT count(DISTINCT (time, namespace)) FROM fresco_metrics"),
                     60 * 200);
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_batches"), 60);
    PQfinish(pg);
    sink_close(&s);
    free_batches(b, 60);
    cluster_destroy(&c);
}

/* A server that accepts the TCP connection and never answers: the write
 * gives up after connect_timeout. */
static void test_mute_server(void **state)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 16), 0);
    socklen_t sl = sizeof(sa);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    char ci[160];
    snprintf(ci, sizeof(ci), "host=127.0.0.1 port=%d user=postgres sslmode=disable",
             ntohs(sa.sin_port));
    const char *kv[] = {"conninfo", ci, "connect_timeout", "1s", NULL};
    sink s;
    sink_open(&s, "task-1/publish[0]", kv);
    fr_batch *b = mk_batch("node-1", 1, 1);
    fr_error err;
    int64_t t0 = tst_mono_ms();
    int rv = sink_write(&s, &b, 1, &err);
    int64_t took = tst_mono_ms() - t0;
    assert_int_equal(rv, FR_ETIMEDOUT);
    assert_true(fr_sink_retryable(rv));
    assert_true(took >= 900 && took < 2500);
    assert_non_null(strstr(err.message, "connect"));
    sink_close(&s);
    fr_batch_destroy(b);
    close(fd);
}

/* A server that stops making progress (the table locked by someone else):
 * the write gives up after timeout and the batch goes in later. */
static void test_slow_server(void **state)
{
    db_create(&MAIN, "slow");
    const char *extra[] = {"timeout", "1s", NULL};
    sink s;
    sink_open_db(&s, &MAIN, "slow", "task-1/publish[0]", extra);
    fr_batch *b[2] = {mk_batch("node-1", 1, 10), mk_batch("node-1", 2, 10)};
    sink_write_ok(&s, b, 1);
    PGconn *pg = db_connect(&MAIN, "slow");
    db_exec(pg, "BEGIN");
    db_exec(pg, "LOCK TABLE fresco_metrics IN ACCESS EXCLUSIVE MODE");
    fr_error err;
    int64_t t0 = tst_mono_ms();
    int rv = sink_write(&s, b + 1, 1, &err);
    int64_t took = tst_mono_ms() - t0;
    assert_true(fr_sink_retryable(rv));
    assert_true(rv == FR_ETIMEDOUT);
    assert_true(took >= 900 && took < 3000);
    db_exec(pg, "COMMIT");
    sink_write_ok(&s, b + 1, 1);
    sink_write_ok(&s, b, 2);
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_metrics"), 20);
    PQfinish(pg);
    sink_close(&s);
    free_batches(b, 2);
}

/* ---- tables --------------------------------------------------------- */

static long long table_rows(PGconn *pg, const char *table)
{
    const char *p[1] = {table};
    char *q = q_text(pg, "SELECT format('SELECT count(*) FROM %I', $1::text)", 1, p);
    long long n = q_count(pg, q);
    free(q);
    return n;
}

/* Writes one batch of 3 metrics through a table_per_task sink of its own. */
static void write_as_task(const char *db, const char *task_name, const char *const *extra)
{
    static int nsinks;
    char ci[256];
    const char *kv[16] = {"conninfo", conninfo(&MAIN, db, ci, sizeof(ci)), "table_per_task",
                          "true"};
    size_t n = 4;
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
        kv[n++] = extra[i];
    }
    kv[n] = NULL;
    sink s;
    fr_error err;
    char id[512];
    snprintf(id, sizeof(id), "%s/publish[%d]", task_name, nsinks++);
    int rv = sink_try(&s, id, task_name, kv, &err);
    if (rv != 0) {
        fail_msg("%s", err.message);
    }
    fr_batch *b = mk_batch("node-1", 1, 3);
    sink_write_ok(&s, &b, 1);
    fr_batch_destroy(b);
    sink_close(&s);
}

static void test_table_per_task(void **state)
{
    db_create(&MAIN, "pertask");
    PGconn *pg = db_connect(&MAIN, "pertask");
    write_as_task("pertask", "Web-Frontend/EU", NULL);
    assert_int_equal(table_rows(pg, "fresco_metrics_web_frontend_eu"), 3);
    assert_int_equal(q_count(pg, "SELECT count(*) FROM pg_class WHERE relname ="
                                 " 'fresco_metrics'"),
                     0);

    /* hostile names stay names */
    write_as_task("pertask", "x\"; DROP TABLE fresco_batches; --", NULL);
    assert_int_equal(table_rows(pg, "fresco_metrics_x_drop_table_fresco_batches_"), 3);
    assert_int_equal(table_rows(pg, "fresco_batches"), 2);

    /* a long name is cut to 63 bytes with a hash: two names alike in their
     * first 63 bytes get two tables */
    char long1[200], long2[200];
    memset(long1, 'a', 150);
    long1[150] = '\0';
    memcpy(long2, long1, 151);
    long2[149] = 'b';
    write_as_task("pertask", long1, NULL);
    write_as_task("pertask", long2, NULL);
    assert_int_equal(q_count(pg, "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND"
                                 " relname LIKE 'fresco_metrics_aaaa%' AND length(relname) = 63"),
                     2);
    /* and each long table has both its indexes */
    assert_int_equal(q_count(pg, "SELECT count(*) FROM pg_indexes WHERE tablename LIKE"
                                 " 'fresco_metrics_aaaa%'"),
                     4);
    /* a task name with nothing left of it */
    write_as_task("pertask", "\xc3\xa9\xc3\xa9", NULL);
    assert_int_equal(q_count(pg, "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND"
                                 " relname ~ '^fresco_metrics_[0-9a-f]{8}$'"),
                     1);
    /* the task's table under another base */
    const char *extra[] = {"table", "m", NULL};
    write_as_task("pertask", "Web-Frontend/EU", extra);
    assert_int_equal(table_rows(pg, "m_web_frontend_eu"), 3);

    /* a hostile table name, quoted as it is */
    char ci[256];
    const char *kv[] = {"conninfo", conninfo(&MAIN, "pertask", ci, sizeof(ci)), "table",
                        "evil\"; DROP TABLE fresco_batches; --", NULL};
    sink s;
    sink_open(&s, "evil/publish[0]", kv);
    fr_batch *b = mk_batch("node-1", 1, 4);
    sink_write_ok(&s, &b, 1);
    assert_int_equal(table_rows(pg, "evil\"; DROP TABLE fresco_batches; --"), 4);
    assert_int_equal(table_rows(pg, "fresco_batches"), 7);
    fr_batch_destroy(b);
    sink_close(&s);
    PQfinish(pg);
}

/* ---- config ------------------------------------------------------- */

static void expect_bad(const char *const *kv, const char *where, const char *in_message)
{
    sink s;
    fr_error err;
    int rv = sink_try(&s, "bad/publish[0]", "bad", kv, &err);
    if (rv == 0) {
        sink_close(&s);
        fail_msg("config accepted; wanted an error at %s", where);
    }
    assert_true(rv == FR_ECONFIG || rv == FR_EUNKNOWN);
    if (strstr(err.where, where) == NULL || strstr(err.message, in_message) == NULL) {
        fail_msg("error '%s: %s', wanted '%s' and '%s'", err.where, err.message, where, in_message);
    }
}

static void test_bad_config(void **state)
{
    const char *c1[] = {"conninfo", "host=127.0.0.1 bogus=1", NULL};
    expect_bad(c1, "conninfo", "bogus");
    const char *c2[] = {"conninfo", "postgresql://[::1", NULL};
    expect_bad(c2, "conninfo", "conninfo");
    const char *c3[] = {"port", "70000", NULL};
    expect_bad(c3, "config.port", "port");
    const char *c4[] = {"table", "", NULL};
    expect_bad(c4, "table", "empty");
    char longname[80];
    memset(longname, 't', 64);
    longname[64] = '\0';
    const char *c5[] = {"table", longname, NULL};
    expect_bad(c5, "table", "63");
    longname[60] = '\0';
    const char *c6[] = {"table", longname, "table_per_task", "yes", NULL};
    expect_bad(c6, "table", "table_per_task");
    const char *c7[] = {"table", "a", "table_name", "b", NULL};
    expect_bad(c7, "table_name", "table");
    const char *c8[] = {"tabel", "a", NULL};
    expect_bad(c8, "config.tabel", "tabel");
    const char *c9[] = {"connect_timeout", "5", NULL};
    expect_bad(c9, "config.connect_timeout", "connect_timeout");
    const char *c10[] = {"dedup_keep", "10ms", NULL};
    expect_bad(c10, "config.dedup_keep", "minimum");
    const char *c11[] = {"table_per_task", "maybe", NULL};
    expect_bad(c11, "config.table_per_task", "table_per_task");
    const char *c12[] = {"host", "a", "hostname", "b", NULL};
    expect_bad(c12, "host", "hostname");
}

/* ---- schema --------------------------------------------------------- */

typedef struct schema_arg {
    sink s;
    pthread_barrier_t *start;
    uint64_t seq;
    int rv;
} schema_arg;

static void *schema_writer(void *p)
{
    schema_arg *a = p;
    fr_batch *b = mk_batch("node-1", a->seq, 10);
    pthread_barrier_wait(a->start);
    fr_error err;
    a->rv = sink_write(&a->s, &b, 1, &err);
    if (a->rv != 0) {
        print_error("schema writer: %s\n", err.message);
    }
    fr_batch_destroy(b);
    return NULL;
}

static void test_schema_idempotent(void **state)
{
    db_create(&MAIN, "schema");
    enum { N = 4 };
    schema_arg a[N];
    pthread_t t[N];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N);
    char ids[N][32]; /* outlive the sinks */
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "t%d/publish[0]", i);
        a[i] = (schema_arg){.start = &start, .seq = (uint64_t)i + 1};
        sink_open_db(&a[i].s, &MAIN, "schema", ids[i], NULL);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, schema_writer, &a[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].rv, 0);
        sink_close(&a[i].s);
    }
    pthread_barrier_destroy(&start);
    PGconn *pg = db_connect(&MAIN, "schema");
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_metrics"), N * 10);
    assert_int_equal(q_count(pg, "SELECT count(*) FROM pg_indexes WHERE tablename ="
                                 " 'fresco_metrics' AND indexname IN"
                                 " ('fresco_metrics_ns_time_idx', 'fresco_metrics_time_idx')"),
                     2);
    assert_int_equal(q_count(pg, "SELECT count(*) FROM pg_indexes WHERE tablename ="
                                 " 'fresco_batches'"),
                     2);
    /* the column types a query relies on */
    assert_int_equal(q_count(pg, "SELECT count(*) FROM information_schema.columns WHERE"
                                 " table_name = 'fresco_metrics' AND (column_name, data_type) IN"
                                 " (('time', 'timestamp with time zone'), ('namespace', 'text'),"
                                 " ('value', 'double precision'), ('value_text', 'text'),"
                                 " ('unit', 'text'), ('tags', 'jsonb'), ('task', 'text'),"
                                 " ('source', 'text'))"),
                     8);
    /* once more on the schema that exists, with rows kept */
    sink s;
    sink_open_db(&s, &MAIN, "schema", "t9/publish[0]", NULL);
    fr_batch *b = mk_batch("node-1", 9, 10);
    sink_write_ok(&s, &b, 1);
    assert_int_equal(q_count(pg, "SELECT count(*) FROM fresco_metrics"), N * 10 + 10);
    /* the query the indexes are for uses one */
    db_exec(pg, "ANALYZE fresco_metrics");
    db_exec(pg, "SET enable_seqscan = off");
    PGresult *r = PQexec(pg, "EXPLAIN SELECT count(*) FROM fresco_metrics WHERE"
                             " namespace = '/intel/procfs/cpu/1/user_jiffies' AND time >="
                             " '2023-11-14' AND time < '2023-11-16'");
    bool uses = false;
    for (int i = 0; i < PQntuples(r); i++) {
        uses = uses || strstr(PQgetvalue(r, i, 0), "fresco_metrics_ns_time_idx") != NULL;
    }
    PQclear(r);
    assert_true(uses);
    fr_batch_destroy(b);
    sink_close(&s);
    PQfinish(pg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_types),          cmocka_unit_test(test_snap_keys),
        cmocka_unit_test(test_resend_no_duplicates), cmocka_unit_test(test_concurrent_writers),
        cmocka_unit_test(test_prune_old_keys),       cmocka_unit_test(test_refused_row),
        cmocka_unit_test(test_server_down),          cmocka_unit_test(test_mute_server),
        cmocka_unit_test(test_slow_server),          cmocka_unit_test(test_table_per_task),
        cmocka_unit_test(test_bad_config),           cmocka_unit_test(test_schema_idempotent),
    };
    return cmocka_run_group_tests_name("postgresql_sink", tests, suite_setup, suite_teardown);
}
