/* A whole fresco pipeline started from the build tree for end-to-end
 * tests: one collector, one or two processors, one or two publishers,
 * wired to each other on loopback, each publisher with its own state
 * directory so it can be killed and started again where it was. Also a
 * throwaway PostgreSQL (scripts/pg-cluster.sh) and queries against it. */
#ifndef E2E_STACK_H
#define E2E_STACK_H

#include <stdbool.h>
#include <stdint.h>

#include "testsupport.h"

#define STACK_MAX 2

typedef struct stack {
    char *tmp;
    int nproc, npub;
    tst_service col;
    tst_service proc[STACK_MAX], pub[STACK_MAX];
    char proc_data[STACK_MAX][64], proc_ctl[STACK_MAX][64];
    char pub_data[STACK_MAX][64], pub_ctl[STACK_MAX][64], pub_events[STACK_MAX][64];
    char pub_state[STACK_MAX][600];
} stack;

/* Starts publishers, then processors, then the collector (with its state
 * in tmp/collector), every sender resending after resend_ms. */
void stack_start(stack *s, const char *tmp, int nproc, int npub);
void stack_stop(stack *s);

/* Publisher i: killed with SIGKILL / started again at its addresses. */
void stack_publisher_kill(stack *s, int i);
void stack_publisher_start(stack *s, int i);
void stack_processor_kill(stack *s, int i);

/* task.create of manifest text; fails the test when refused. The id is
 * static storage. */
const char *stack_create(stack *s, const char *manifest);
void stack_task_stop(stack *s, const char *id);
/* task.get's hits. */
uint64_t stack_task_hits(stack *s, const char *id);

/* One counter of a service's stats (0 when absent). */
uint64_t stack_counter(tst_service *svc, const char *name);

/* Pauses for ms as part of a test's scenario ("PostgreSQL stays down for
 * 10 s"), not to wait for something to happen. */
void scenario_pause(int ms);

/* ---- PostgreSQL ---- */

typedef struct pg {
    char *dir;
    int port;
    char conninfo[256];
} pg;

/* Starts a throwaway cluster; skips the test (returns false) when none can
 * be started here. */
bool pg_start(pg *p);
void pg_stop(pg *p);    /* fast shutdown: clients cut off */
void pg_restart(pg *p); /* start again after pg_stop */
void pg_destroy(pg *p);

/* The first column of the first row of sql as an integer (-1: no row or
 * NULL; fails the test when the query does). */
int64_t pg_int(pg *p, const char *sql);
/* As pg_int, but 0 when the query fails (a table not created yet). */
int64_t pg_int_or_zero(pg *p, const char *sql);

/* Checks that every series of a synthetic counter in table holds each of
 * 1..n exactly once: count, distinct count, sum and max per namespace, and
 * that there are `series` namespaces. */
void pg_check_counters(pg *p, const char *table, int series, uint64_t n);

#endif
