/* A whole pipeline and a throwaway PostgreSQL for end-to-end tests. */
#include "stack.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <libpq-fe.h>

#include "fresco/ctl.h"

static void publisher_args(stack *s, int i, char args[][700], const char **extra)
{
    int n = 0;
    snprintf(args[n], 700, "--data_in=%s", s->pub_data[i]);
    extra[n] = args[n];
    n++;
    snprintf(args[n], 700, "--state_dir=%s", s->pub_state[i]);
    extra[n] = args[n];
    n++;
    /* quick retries, so a sink that is back is found soon */
    extra[n++] = "--sink.backoff_max=500ms";
    extra[n] = NULL;
}

void stack_publisher_start(stack *s, int i)
{
    char args[4][700];
    const char *extra[8];
    publisher_args(s, i, args, extra);
    tst_service_start_at(&s->pub[i], "publisher", s->tmp, s->pub_ctl[i], s->pub_events[i], extra);
}

void stack_publisher_kill(stack *s, int i)
{
    fr_ctl_client_close(s->pub[i].cli);
    s->pub[i].cli = NULL;
    assert_int_not_equal(tst_stop(s->pub[i].pid, SIGKILL, 5000), -1);
    s->pub[i].pid = 0;
}

void stack_processor_kill(stack *s, int i)
{
    fr_ctl_client_close(s->proc[i].cli);
    s->proc[i].cli = NULL;
    assert_int_not_equal(tst_stop(s->proc[i].pid, SIGKILL, 5000), -1);
    s->proc[i].pid = 0;
}

/* "--key=a,b" from a list of addresses. */
static void list_arg(char *out, size_t cap, const char *key, char addrs[][64], int n)
{
    size_t off = (size_t)snprintf(out, cap, "--%s=", key);
    for (int i = 0; i < n && off < cap; i++) {
        off += (size_t)snprintf(out + off, cap - off, "%s%s", i ? "," : "", addrs[i]);
    }
}

void stack_start(stack *s, const char *base, int nproc, int npub)
{
    memset(s, 0, sizeof(*s));
    /* A folder per stack: one a failed test left running keeps its own. */
    static int stacks;
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/stack-%d", base, ++stacks);
    assert_int_equal(mkdir(dir, 0700), 0);
    s->tmp = strdup(dir);
    const char *tmp = s->tmp;
    s->nproc = nproc;
    s->npub = npub;
    for (int i = 0; i < npub; i++) {
        snprintf(s->pub_data[i], 64, "tcp://127.0.0.1:%d", tst_free_port());
        snprintf(s->pub_ctl[i], 64, "tcp://127.0.0.1:%d", tst_free_port());
        snprintf(s->pub_events[i], 64, "tcp://127.0.0.1:%d", tst_free_port());
        snprintf(s->pub_state[i], sizeof(s->pub_state[i]), "%s/publisher-%d", tmp, i);
        stack_publisher_start(s, i);
    }
    char pubs[512], pubctls[512];
    list_arg(pubs, sizeof(pubs), "publishers", s->pub_data, npub);
    list_arg(pubctls, sizeof(pubctls), "publisher_controls", s->pub_ctl, npub);
    for (int i = 0; i < nproc; i++) {
        snprintf(s->proc_data[i], 64, "tcp://127.0.0.1:%d", tst_free_port());
        snprintf(s->proc_ctl[i], 64, "tcp://127.0.0.1:%d", tst_free_port());
        char din[128], sd[700];
        snprintf(din, sizeof(din), "--data_in=%s", s->proc_data[i]);
        snprintf(sd, sizeof(sd), "--state_dir=%s/processor-%d", tmp, i);
        const char *extra[] = {din, pubs, pubctls, sd, "--resend=1s", NULL};
        tst_service_start_at(&s->proc[i], "processor", tmp, s->proc_ctl[i], NULL, extra);
    }
    char procs[512], procctls[512], sd[700];
    list_arg(procs, sizeof(procs), "processors", s->proc_data, nproc);
    list_arg(procctls, sizeof(procctls), "processor_controls", s->proc_ctl, nproc);
    snprintf(sd, sizeof(sd), "--state_dir=%s/collector", tmp);
    /* Ticks may wait long for room downstream: in these tests nothing the
     * collector makes may be given up. */
    const char *extra[] = {
        procs, procctls, pubs, pubctls, sd, "--send_timeout=60s", "--pipeline_sync=1s", NULL};
    tst_service_start(&s->col, "collector", tmp, extra);
}

void stack_stop(stack *s)
{
    if (s->col.pid > 0) {
        tst_service_stop(&s->col, 10000);
    }
    for (int i = 0; i < s->nproc; i++) {
        if (s->proc[i].pid > 0) {
            tst_service_stop(&s->proc[i], 10000);
        }
    }
    for (int i = 0; i < s->npub; i++) {
        if (s->pub[i].pid > 0) {
            tst_service_stop(&s->pub[i], 10000);
        }
    }
    free(s->tmp);
    s->tmp = NULL;
}

static int col_call(stack *s, const char *op, const char *key, const char *value,
                    fr_ctl_result *res)
{
    fr_buf args = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &args, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, strlen(key));
    msgpack_pack_str_body(&pk, key, strlen(key));
    msgpack_pack_str(&pk, strlen(value));
    msgpack_pack_str_body(&pk, value, strlen(value));
    int rv = fr_ctl_call(s->col.cli, op, args.data, args.len, 15000, res);
    fr_buf_free(&args);
    return rv;
}

const char *stack_create(stack *s, const char *manifest)
{
    static char id[64];
    fr_ctl_result res;
    if (col_call(s, "task.create", "manifest", manifest, &res) != 0) {
        fail_msg("task.create: %s: %s at %s\n%s", res.error_code, res.error_message,
                 res.error_where, manifest);
    }
    const char *v = NULL;
    assert_fr_ok(fr_node_get_str(res.result, "id", &v));
    snprintf(id, sizeof(id), "%s", v);
    fr_ctl_result_free(&res);
    return id;
}

void stack_task_stop(stack *s, const char *id)
{
    fr_ctl_result res;
    if (col_call(s, "task.stop", "id", id, &res) != 0) {
        fail_msg("task.stop: %s", res.error_message);
    }
    fr_ctl_result_free(&res);
}

uint64_t stack_task_hits(stack *s, const char *id)
{
    fr_ctl_result res;
    if (col_call(s, "task.get", "id", id, &res) != 0) {
        fail_msg("task.get: %s", res.error_message);
    }
    uint64_t hits = 0;
    fr_node_get_u64(res.result, "hits", &hits);
    fr_ctl_result_free(&res);
    return hits;
}

uint64_t stack_counter(tst_service *svc, const char *name)
{
    fr_ctl_result res;
    if (fr_ctl_call(svc->cli, "stats", NULL, 0, 5000, &res) != 0) {
        fr_ctl_result_free(&res);
        return 0;
    }
    uint64_t v = 0;
    fr_node_get_u64(fr_node_get(res.result, "counters"), name, &v);
    fr_ctl_result_free(&res);
    return v;
}

void scenario_pause(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- PostgreSQL ---- */

static int pg_script(pg *p, const char *verb, char *out, size_t cap)
{
    char script[512], port[16] = "", cmd[1400];
    tst_src(script, sizeof(script), "scripts/pg-cluster.sh");
    if (strcmp(verb, "start") == 0) {
        snprintf(port, sizeof(port), "%d", p->port);
    }
    snprintf(cmd, sizeof(cmd), "%s %s %s %s 2>>%s/script.log", script, verb, p->dir, port, p->dir);
    FILE *f = popen(cmd, "r");
    if (f == NULL) {
        return -1;
    }
    size_t n = 0;
    if (out != NULL) {
        n = fread(out, 1, cap - 1, f);
        out[n] = '\0';
        out[strcspn(out, "\n")] = '\0';
    } else {
        char sink[256];
        while (fread(sink, 1, sizeof(sink), f) > 0) {
        }
    }
    return pclose(f);
}

bool pg_start(pg *p)
{
    memset(p, 0, sizeof(*p));
    p->dir = tst_tmpdir("fresco-e2e-pg");
    p->port = tst_free_port();
    if (pg_script(p, "start", p->conninfo, sizeof(p->conninfo)) != 0 || p->conninfo[0] == '\0') {
        char log[700];
        snprintf(log, sizeof(log), "%s/script.log", p->dir);
        char *text = tst_slurp(log);
        fprintf(stderr, "no PostgreSQL here (scripts/pg-cluster.sh): %s\n", text);
        free(text);
        return false;
    }
    return true;
}

void pg_stop(pg *p)
{
    assert_int_equal(pg_script(p, "stop", NULL, 0), 0);
}

void pg_restart(pg *p)
{
    char again[256];
    assert_int_equal(pg_script(p, "start", again, sizeof(again)), 0);
}

void pg_destroy(pg *p)
{
    if (p->dir != NULL) {
        pg_script(p, "destroy", NULL, 0);
        tst_rmtree(p->dir);
        free(p->dir);
        p->dir = NULL;
    }
}

static int64_t pg_query(pg *p, const char *sql, bool must)
{
    PGconn *c = PQconnectdb(p->conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        if (must) {
            fail_msg("cannot connect to %s: %s", p->conninfo, PQerrorMessage(c));
        }
        PQfinish(c);
        return 0;
    }
    PGresult *r = PQexec(c, sql);
    int64_t v = -1;
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        if (must) {
            fail_msg("%s: %s", sql, PQerrorMessage(c));
        }
        v = 0;
    } else if (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    }
    PQclear(r);
    PQfinish(c);
    return v;
}

int64_t pg_int(pg *p, const char *sql)
{
    return pg_query(p, sql, true);
}

int64_t pg_int_or_zero(pg *p, const char *sql)
{
    return pg_query(p, sql, false);
}

void pg_check_counters(pg *p, const char *table, int series, uint64_t n)
{
    char sql[1024];
    snprintf(sql, sizeof(sql), "SELECT count(DISTINCT namespace) FROM %s", table);
    assert_int_equal(pg_int(p, sql), series);
    /* A series that is off: any count, distinct count, sum or max that is
     * not what 1..n gives. */
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM (SELECT namespace, count(*) AS c, count(DISTINCT value) AS d, "
             "sum(value)::numeric AS s, max(value) AS m FROM %s GROUP BY namespace) x "
             "WHERE c <> %llu OR d <> %llu OR s <> %llu OR m <> %llu",
             table, (unsigned long long)n, (unsigned long long)n,
             (unsigned long long)(n * (n + 1) / 2), (unsigned long long)n);
    int64_t off = pg_int(p, sql);
    if (off != 0) {
        snprintf(sql, sizeof(sql),
                 "SELECT string_agg(namespace || ': ' || c || ' rows, ' || d || ' distinct, max ' "
                 "|| m, '; ') FROM (SELECT namespace, count(*) AS c, count(DISTINCT value) AS d, "
                 "max(value) AS m FROM %s GROUP BY namespace ORDER BY namespace LIMIT 5) x",
                 table);
        PGconn *c = PQconnectdb(p->conninfo);
        PGresult *r = PQexec(c, sql);
        fail_msg("%s: %lld series are not 1..%llu exactly once; first ones: %s", table,
                 (long long)off, (unsigned long long)n,
                 PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "?");
    }
}
