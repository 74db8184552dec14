/* A libpq connection driven in nonblocking mode, every wait bounded by
 * poll(): libpq's blocking calls would wait as long as the kernel lets them
 * on a server that stopped answering. */
#include "pg_conn.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "fresco/clock.h"
#include "fresco/log.h"

#define PGC_LOG        "publisher/postgresql"
#define PGC_COPY_CHUNK (1 << 20) /* bytes per PQputCopyData call */

/* libpq's messages end in a newline and may span lines: one line. */
static void pgc_oneline(char *dst, size_t cap, const char *msg)
{
    size_t n = 0;
    bool space = false;
    for (const char *p = msg != NULL ? msg : ""; *p != '\0' && n + 1 < cap; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < cap) {
            dst[n++] = ' ';
        }
        space = false;
        dst[n++] = *p;
    }
    dst[n] = '\0';
}

static void pgc_notice(void *arg, const char *message)
{
    char line[512];
    pgc_oneline(line, sizeof(line), message);
    fr_debug(PGC_LOG, "server says: %s", line);
}

static int pgc_fail(pgc *c, int code, const char *what, const char *why, fr_error *err)
{
    if (code == FR_EIO || code == FR_ETIMEDOUT) {
        c->dead = true;
    }
    char line[200];
    pgc_oneline(line, sizeof(line), why);
    return fr_error_set(err, code, "", "%s: %s", what, line[0] != '\0' ? line : fr_strerror(code));
}

static int pgc_lost(pgc *c, const char *what, fr_error *err)
{
    return pgc_fail(c, FR_EIO, what, PQerrorMessage(c->pg), err);
}

/* Waits for events on the connection's socket until deadline_ms
 * (monotonic). *revents gets what happened. */
static int pgc_wait(pgc *c, short events, int64_t deadline_ms, int64_t budget_ms, const char *what,
                    short *revents, fr_error *err)
{
    int fd = PQsocket(c->pg);
    if (fd < 0) {
        return pgc_fail(c, FR_EIO, what, "the connection has no socket", err);
    }
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        int64_t left = deadline_ms - fr_mono_ms();
        if (left <= 0) {
            char why[96];
            snprintf(why, sizeof(why), "no answer from the server within %.1f s",
                     (double)budget_ms / 1000.0);
            return pgc_fail(c, FR_ETIMEDOUT, what, why, err);
        }
        int r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (r > 0) {
            *revents = p.revents;
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            return pgc_fail(c, FR_EIO, what, strerror(errno), err);
        }
    }
}

/* Waits for the socket once, for at most step_ms, reading what arrived. */
static int pgc_step(pgc *c, bool want_write, const char *what, fr_error *err)
{
    short ev = 0;
    int rv = pgc_wait(c, (short)(POLLIN | (want_write ? POLLOUT : 0)), fr_mono_ms() + c->step_ms,
                      c->step_ms, what, &ev, err);
    if (rv != 0) {
        return rv;
    }
    if ((ev & (POLLIN | POLLHUP | POLLERR)) != 0 && !PQconsumeInput(c->pg)) {
        return pgc_lost(c, what, err);
    }
    return 0;
}

/* Sends everything libpq has queued. */
static int pgc_flush(pgc *c, const char *what, fr_error *err)
{
    for (;;) {
        int r = PQflush(c->pg);
        if (r == 0) {
            return 0;
        }
        if (r < 0) {
            return pgc_lost(c, what, err);
        }
        int rv = pgc_step(c, true, what, err);
        if (rv != 0) {
            return rv;
        }
    }
}

/* The next result of the command in progress (NULL: no more). */
static int pgc_next_result(pgc *c, const char *what, PGresult **out, fr_error *err)
{
    *out = NULL;
    while (PQisBusy(c->pg)) {
        int rv = pgc_step(c, false, what, err);
        if (rv != 0) {
            return rv;
        }
    }
    *out = PQgetResult(c->pg);
    return 0;
}

/* Reads and drops the results left of the command in progress. */
static int pgc_drain(pgc *c, const char *what, fr_error *err)
{
    for (;;) {
        PGresult *r;
        int rv = pgc_next_result(c, what, &r, err);
        if (rv != 0 || r == NULL) {
            return rv;
        }
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            /* cannot happen for the commands sent here; never loop on it */
            return pgc_fail(c, FR_EIO, what, "unexpected COPY state", err);
        }
    }
}

int pgc_result_error(pgc *c, const char *what, const PGresult *r, fr_error *err)
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    snprintf(c->sqlstate, sizeof(c->sqlstate), "%s", state != NULL ? state : "");
    if (state == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
        /* libpq's own error: the connection went away */
        const char *msg = PQresultErrorMessage(r);
        return pgc_fail(c, FR_EIO, what, msg[0] != '\0' ? msg : PQerrorMessage(c->pg), err);
    }
    int code = FR_EREMOTE;
    if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0 ||
        strncmp(state, "54", 2) == 0) {
        code = FR_EINVAL;
    } else if (strcmp(state, "57014") == 0) {
        code = FR_ETIMEDOUT; /* statement_timeout, on a usable connection */
    } else if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0) {
        code = FR_EIO; /* the server is going away */
        c->dead = true;
    } else if (strncmp(state, "53", 2) == 0 || strncmp(state, "40", 2) == 0 ||
               strncmp(state, "55", 2) == 0) {
        code = FR_EBUSY; /* out of resources, deadlock, lock not available */
    }
    char primary[160], context[96];
    pgc_oneline(primary, sizeof(primary), PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
    pgc_oneline(context, sizeof(context), PQresultErrorField(r, PG_DIAG_CONTEXT));
    return fr_error_set(err, code, "", "%s: %s (SQLSTATE %s%s%s)", what, primary, state,
                        context[0] != '\0' ? "; " : "", context);
}

int pgc_open(pgc *c, const char *const *keys, const char *const *vals, bool expand_dbname,
             int64_t connect_ms, int64_t step_ms, fr_error *err)
{
    memset(c, 0, sizeof(*c));
    c->step_ms = step_ms;
    c->pg = PQconnectStartParams(keys, vals, expand_dbname ? 1 : 0);
    if (c->pg == NULL) {
        return fr_error_set(err, FR_ENOMEM, "", "connect: out of memory");
    }
    int64_t deadline = fr_mono_ms() + connect_ms;
    int rv = 0;
    PostgresPollingStatusType st =
        PQstatus(c->pg) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
    while (rv == 0 && st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED) {
            rv = pgc_lost(c, "connect", err);
            break;
        }
        short ev = 0;
        rv = pgc_wait(c, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline, connect_ms,
                      "connect", &ev, err);
        if (rv == 0) {
            st = PQconnectPoll(c->pg);
        }
    }
    if (rv == 0 && PQsetnonblocking(c->pg, 1) != 0) {
        rv = pgc_lost(c, "connect", err);
    }
    if (rv != 0) {
        pgc_close(c);
        return rv;
    }
    PQsetNoticeProcessor(c->pg, pgc_notice, NULL);
    return 0;
}

void pgc_close(pgc *c)
{
    if (c->pg != NULL) {
        PQfinish(c->pg);
    }
    c->pg = NULL;
    c->dead = false;
}

int pgc_exec(pgc *c, const char *what, const char *sql, int nparams, const char *const *values,
             PGresult **res, fr_error *err)
{
    c->sqlstate[0] = '\0';
    if (res != NULL) {
        *res = NULL;
    }
    int sent = (nparams == 0 && values == NULL)
                   ? PQsendQuery(c->pg, sql)
                   : PQsendQueryParams(c->pg, sql, nparams, NULL, values, NULL, NULL, 0);
    if (!sent) {
        return pgc_lost(c, what, err);
    }
    int rv = pgc_flush(c, what, err);
    PGresult *keep = NULL;
    int failed = 0;
    while (rv == 0) {
        PGresult *r;
        rv = pgc_next_result(c, what, &r, err);
        if (rv != 0 || r == NULL) {
            break;
        }
        ExecStatusType st = PQresultStatus(r);
        if ((st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) && res != NULL && failed == 0) {
            PQclear(keep);
            keep = r;
            continue;
        }
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
            rv = pgc_fail(c, FR_EIO, what, "unexpected COPY state", err);
        } else if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && st != PGRES_EMPTY_QUERY &&
                   failed == 0) {
            failed = pgc_result_error(c, what, r, err);
        }
        PQclear(r);
    }
    if (rv == 0) {
        rv = failed;
    }
    if (rv != 0) {
        PQclear(keep);
        keep = NULL;
    }
    if (res != NULL) {
        *res = keep;
    } else {
        PQclear(keep);
    }
    return rv;
}

int pgc_copy_begin(pgc *c, const char *what, const char *sql, fr_error *err)
{
    c->sqlstate[0] = '\0';
    if (!PQsendQuery(c->pg, sql)) {
        return pgc_lost(c, what, err);
    }
    int rv = pgc_flush(c, what, err);
    PGresult *r = NULL;
    if (rv == 0) {
        rv = pgc_next_result(c, what, &r, err);
    }
    if (rv != 0) {
        return rv;
    }
    if (r == NULL) {
        return pgc_fail(c, FR_EIO, what, "the server did not start the COPY", err);
    }
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COPY_IN) {
        PQclear(r);
        return 0;
    }
    rv = st == PGRES_FATAL_ERROR
             ? pgc_result_error(c, what, r, err)
             : pgc_fail(c, FR_EIO, what, "the server did not start the COPY", err);
    PQclear(r);
    fr_error e2;
    if (!c->dead && pgc_drain(c, what, &e2) != 0) {
        c->dead = true;
    }
    return rv;
}

int pgc_copy_put(pgc *c, const void *data, size_t len, fr_error *err)
{
    const char *p = data;
    while (len > 0) {
        int n = len > PGC_COPY_CHUNK ? PGC_COPY_CHUNK : (int)len;
        int r = PQputCopyData(c->pg, p, n);
        if (r < 0) {
            if (PQstatus(c->pg) == CONNECTION_BAD) {
                return pgc_lost(c, "COPY", err);
            }
            /* the server ended the COPY (an error): copy_end tells why */
            return pgc_fail(c, FR_EREMOTE, "COPY", PQerrorMessage(c->pg), err);
        }
        if (r == 0) {
            int rv = pgc_step(c, true, "COPY", err);
            if (rv != 0) {
                return rv;
            }
            continue;
        }
        p += n;
        len -= (size_t)n;
        int rv = pgc_flush(c, "COPY", err);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

int pgc_copy_end(pgc *c, fr_error *err)
{
    int rv = 0;
    for (;;) {
        int r = PQputCopyEnd(c->pg, NULL);
        if (r > 0) {
            break;
        }
        if (r < 0) {
            if (PQstatus(c->pg) == CONNECTION_BAD) {
                return pgc_lost(c, "COPY", err);
            }
            break; /* no COPY in progress any more: the result says why */
        }
        if ((rv = pgc_step(c, true, "COPY", err)) != 0) {
            return rv;
        }
    }
    rv = pgc_flush(c, "COPY", err);
    int failed = 0;
    bool done = false;
    while (rv == 0) {
        PGresult *r;
        rv = pgc_next_result(c, "COPY", &r, err);
        if (rv != 0 || r == NULL) {
            break;
        }
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK) {
            done = true;
        } else if (st == PGRES_COPY_IN) {
            /* still in COPY: PQputCopyEnd did not go through */
            rv = pgc_fail(c, FR_EIO, "COPY", "the server did not end the COPY", err);
        } else if (failed == 0) {
            failed = pgc_result_error(c, "COPY", r, err);
        }
        PQclear(r);
    }
    if (rv == 0 && failed == 0 && !done) {
        rv = pgc_fail(c, FR_EIO, "COPY", "the server did not confirm the COPY", err);
    }
    return rv != 0 ? rv : failed;
}
