/* Collector -> processor -> publisher -> PostgreSQL, for real: 30 s of
 * traffic from the synthetic counters (20 series every 50 ms), through a
 * tag processor to one table and straight from the collector to another,
 * while PostgreSQL is stopped for 10 s and the publisher is killed with
 * SIGKILL and started again once. Afterwards every metric the collector
 * emitted is in PostgreSQL exactly once: every series holds 1..n, n being
 * the task's ticks (count, distinct count, sum and max per series).
 *
 * A second test runs two processors and two publishers behind one
 * collector, kills one processor halfway, and checks the same. */
#include "stack.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>

#include "fresco/ctl.h"
#include "fresco/log.h"

#define SERIES 20

static pg db;
static char *tmp;

static int group_setup(void **state)
{
    if (!pg_start(&db)) {
        return -1;
    }
    tmp = tst_tmpdir("fresco-e2e");
    return 0;
}

static int group_teardown(void **state)
{
    pg_destroy(&db);
    tst_rmtree(tmp);
    free(tmp);
    return 0;
}

static void manifest(char *out, size_t cap, const char *tproc, const char *tdirect)
{
    int n = snprintf(out, cap,
                     "version: 1\n"
                     "schedule: {type: simple, interval: 50ms}\n"
                     "workflow:\n"
                     "  collect:\n"
                     "    metrics: {/fresco/synthetic/*/counter: {}}\n"
                     "    config: {/fresco/synthetic: {series: %d}}\n"
                     "    process:\n"
                     "      - plugin_name: tag\n"
                     "        config: {tags: \"run:e2e,stage:processed\"}\n"
                     "        publish:\n"
                     "          - plugin_name: postgresql\n"
                     "            config: {conninfo: \"%s\", table: %s, connect_timeout: 1s}\n",
                     SERIES, db.conninfo, tproc);
    if (tdirect != NULL && n > 0 && (size_t)n < cap) {
        snprintf(out + n, cap - (size_t)n,
                 "    publish:\n"
                 "      - plugin_name: postgresql\n"
                 "        config: {conninfo: \"%s\", table: %s, connect_timeout: 1s}\n",
                 db.conninfo, tdirect);
    }
}

typedef struct rows_arg {
    const char *table;
    int64_t at_least;
} rows_arg;

static bool rows_reach(void *arg)
{
    rows_arg *a = arg;
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", a->table);
    return pg_int_or_zero(&db, sql) >= a->at_least;
}

static int64_t rows(const char *table)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
    return pg_int_or_zero(&db, sql);
}

/* Some sink of the publisher says it is retrying. */
static bool publisher_retrying(void *arg)
{
    tst_service *pub = arg;
    fr_ctl_result res;
    if (fr_ctl_call(pub->cli, "pipeline.list", NULL, 0, 2000, &res) != 0) {
        fr_ctl_result_free(&res);
        return false;
    }
    bool retrying = false;
    for (uint32_t i = 0; i < res.result->len; i++) {
        const fr_node *sinks = fr_node_get(&res.result->v.arr[i], "sinks");
        for (uint32_t k = 0; sinks != NULL && k < sinks->len; k++) {
            const char *st = "";
            fr_node_get_str(&sinks->v.arr[k], "state", &st);
            retrying = retrying || strcmp(st, "retrying") == 0;
        }
    }
    fr_ctl_result_free(&res);
    return retrying;
}

static void test_outage_and_kill(void **state)
{
    stack s;
    stack_start(&s, tmp, 1, 1);
    char text[4096];
    manifest(text, sizeof(text), "e2e_processed", "e2e_direct");
    const char *id = stack_create(&s, text);
    char task[64];
    snprintf(task, sizeof(task), "%s", id);
    int64_t t0 = tst_mono_ms();

    rows_arg flowing = {"e2e_processed", SERIES * 10};
    assert_true(tst_wait_until(rows_reach, &flowing, 20000));
    rows_arg direct = {"e2e_direct", SERIES * 10};
    assert_true(tst_wait_until(rows_reach, &direct, 20000));

    /* PostgreSQL goes away for 10 s: the sinks retry, the spool fills. */
    pg_stop(&db);
    assert_true(tst_wait_until(publisher_retrying, &s.pub[0], 10000));
    scenario_pause(10000);
    int64_t before = stack_counter(&s.pub[0], "metrics_in");
    pg_restart(&db);
    rows_arg back = {"e2e_processed", rows("e2e_processed") + SERIES * 10};
    assert_true(tst_wait_until(rows_reach, &back, 30000));
    assert_true(before > 0);

    /* The publisher is killed and started again where it was. */
    scenario_pause(2000);
    stack_publisher_kill(&s, 0);
    scenario_pause(500);
    stack_publisher_start(&s, 0);
    rows_arg after = {"e2e_processed", rows("e2e_processed") + SERIES * 10};
    assert_true(tst_wait_until(rows_reach, &after, 30000));

    /* 30 s of traffic in all, then the task stops. */
    int64_t left = 30000 - (tst_mono_ms() - t0);
    if (left > 0) {
        scenario_pause((int)left);
    }
    stack_task_stop(&s, task);
    uint64_t n = stack_task_hits(&s, task);
    assert_true(n > 100);
    assert_int_equal(stack_counter(&s.col, "batches_not_taken"), 0);
    assert_int_equal(stack_counter(&s.col, "metrics_collected"), n * SERIES);

    rows_arg all_proc = {"e2e_processed", (int64_t)(n * SERIES)};
    rows_arg all_direct = {"e2e_direct", (int64_t)(n * SERIES)};
    assert_true(tst_wait_until(rows_reach, &all_proc, 60000));
    assert_true(tst_wait_until(rows_reach, &all_direct, 60000));
    pg_check_counters(&db, "e2e_processed", SERIES, n);
    pg_check_counters(&db, "e2e_direct", SERIES, n);
    /* the processed rows went through the tag processor, the direct ones not */
    assert_int_equal(pg_int(&db, "SELECT count(*) FROM e2e_processed WHERE tags->>'run' = 'e2e'"),
                     (int64_t)(n * SERIES));
    assert_int_equal(pg_int(&db, "SELECT count(*) FROM e2e_direct WHERE tags ? 'run'"), 0);
    /* The replay after the kill went through the sinks' own check: the
     * publisher logged nothing refused. */
    fprintf(stderr, "e2e: %llu ticks x %d series, %lld rows per table, %.1f s\n",
            (unsigned long long)n, SERIES, (long long)rows("e2e_processed"),
            (double)(tst_mono_ms() - t0) / 1000.0);
    stack_stop(&s);
}

static void test_two_of_each(void **state)
{
    stack s;
    stack_start(&s, tmp, 2, 2);
    char text[4096];
    manifest(text, sizeof(text), "e2e_scaled", NULL);
    const char *id = stack_create(&s, text);
    char task[64];
    snprintf(task, sizeof(task), "%s", id);
    rows_arg flowing = {"e2e_scaled", SERIES * 40};
    assert_true(tst_wait_until(rows_reach, &flowing, 20000));
    /* Both replicas of each stage take batches. */
    assert_true(stack_counter(&s.proc[0], "batches_in") > 0);
    assert_true(stack_counter(&s.proc[1], "batches_in") > 0);
    assert_true(stack_counter(&s.pub[0], "batches_in") > 0);
    assert_true(stack_counter(&s.pub[1], "batches_in") > 0);
    /* One processor dies: the other takes everything. */
    stack_processor_kill(&s, 0);
    uint64_t p1 = stack_counter(&s.proc[1], "batches_in");
    rows_arg more = {"e2e_scaled", rows("e2e_scaled") + SERIES * 40};
    assert_true(tst_wait_until(rows_reach, &more, 30000));
    assert_true(stack_counter(&s.proc[1], "batches_in") > p1);
    stack_task_stop(&s, task);
    uint64_t n = stack_task_hits(&s, task);
    assert_int_equal(stack_counter(&s.col, "batches_not_taken"), 0);
    rows_arg all = {"e2e_scaled", (int64_t)(n * SERIES)};
    assert_true(tst_wait_until(rows_reach, &all, 60000));
    pg_check_counters(&db, "e2e_scaled", SERIES, n);
    stack_stop(&s);
}

int main(void)
{
    fr_log_init("pg_e2e_test", FR_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outage_and_kill),
        cmocka_unit_test(test_two_of_each),
    };
    int failed = cmocka_run_group_tests_name("pg_e2e", tests, group_setup, group_teardown);
    nng_fini();
    return failed;
}
