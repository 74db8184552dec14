/* A libpq connection driven without blocking, every wait bounded: the
 * connect by its own deadline, each later step (a send, a result, a chunk
 * of COPY data) by step_ms without progress. libpq's own calls would wait
 * as long as the kernel lets them on a server that stopped answering.
 *
 * Errors fill err (where = "") and return:
 *   FR_EIO        the connection could not be made or was lost
 *   FR_ETIMEDOUT  the server gave no answer in time
 *   FR_EINVAL     the server refused the data for good (SQLSTATE class 22
 *                 data exception, 23 integrity, 54 program limit)
 *   FR_EREMOTE    any other error the server answered
 * After FR_EIO or FR_ETIMEDOUT the connection is unusable (pgc_dead is
 * true): close it. After the others it is usable, in the transaction
 * state the server left it (an open transaction is aborted). */
#ifndef PUBLISHER_SINK_PG_CONN_H
#define PUBLISHER_SINK_PG_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "fresco/err.h"

typedef struct pgc {
    PGconn *pg;
    int64_t step_ms;  /* longest wait without progress on an open connection */
    bool dead;        /* lost, timed out or out of protocol sync: close it */
    char sqlstate[6]; /* of the last error the server answered, "" when none */
} pgc;

/* Connects with PQconnectStartParams(keys, vals, expand_dbname) within
 * connect_ms. On success c is open in nonblocking mode, libpq's notices go
 * to the debug log, and step_ms bounds the waits that follow. On failure c
 * is closed. */
int pgc_open(pgc *c, const char *const *keys, const char *const *vals, bool expand_dbname,
             int64_t connect_ms, int64_t step_ms, fr_error *err);

/* Closes the connection; safe on one never opened or closed already. */
void pgc_close(pgc *c);

static inline bool pgc_is_open(const pgc *c)
{
    return c->pg != NULL;
}

/* Runs sql (several statements when nparams is 0 and values NULL: the
 * simple protocol; else one statement with text parameters $1..$n) and
 * reads every result. what names the step in messages ("BEGIN"). When res
 * is not NULL it receives the last successful result (rows or a command's
 * status), NULL on failure; the caller PQclear()s it. */
int pgc_exec(pgc *c, const char *what, const char *sql, int nparams, const char *const *values,
             PGresult **res, fr_error *err);

/* COPY ... FROM STDIN: begin sends sql and waits for the server to accept
 * data; put queues len bytes (flushing as the socket takes them); end
 * finishes the COPY and reads its result. After an error from put, call
 * end to learn the server's reason (it returns that error). */
int pgc_copy_begin(pgc *c, const char *what, const char *sql, fr_error *err);
int pgc_copy_put(pgc *c, const void *data, size_t len, fr_error *err);
int pgc_copy_end(pgc *c, fr_error *err);

/* The code for a failed result (as above), from its SQLSTATE; copies the
 * SQLSTATE into c->sqlstate. */
int pgc_result_error(pgc *c, const char *what, const PGresult *r, fr_error *err);

#endif
