/* What the influxdb sink's suites share: a real influxd started and
 * stopped through scripts/influxdb-test.sh, plain-HTTP/1.0 requests to it
 * that do not go through the sink's own client (queries read back as
 * JSON, parsed by the yarn collector's strict JSON reader), and the sink
 * opened from a config given as key/value strings, as a task's publish
 * node would give it. */
#ifndef INFLUX_FIXTURE_H
#define INFLUX_FIXTURE_H

#include "testsupport.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fresco/metric.h"
#include "fresco/pipeline.h"

#include "yarn/json.h"

extern const fr_sink_plugin fr_sink_influxdb;

typedef struct ifx_server {
    char *dir;
    int port, rpc_port;
    const char *opts[6]; /* extra options of `start`, NULL-terminated */
} ifx_server;

/* Starts influxd in a new temporary directory on free ports with the
 * script's options (NULL-terminated list; may be NULL); fails the test
 * when the script does. */
void ifx_start(ifx_server *s, const char *const *opts);

/* Starts it again on the same directory, ports and options. */
void ifx_restart(ifx_server *s);

/* Stops it (the data stays). */
void ifx_stop(ifx_server *s);

/* Stops it and removes the directory. */
void ifx_destroy(ifx_server *s);

/* influxd's pid. */
pid_t ifx_pid(const ifx_server *s);

/* An answer of ifx_http. */
typedef struct ifx_answer {
    int status;
    char *body; /* malloc'd, NUL-terminated */
    size_t len;
} ifx_answer;

/* One HTTP/1.0 request (the server answers without chunks and closes).
 * query is appended after '?' as is (already encoded); body may be NULL.
 * Fails the test when there is no answer. Free with ifx_answer_free. */
ifx_answer ifx_http(int port, const char *method, const char *path, const char *query,
                    const char *content_type, const char *body);
void ifx_answer_free(ifx_answer *a);

/* Percent-encodes s into out (cap bytes). */
void ifx_urlencode(const char *s, char *out, size_t cap);

/* Runs InfluxQL q on db (NULL for none) with epoch=ns; fails unless the
 * answer is 200 with JSON. auth is "u=...&p=..." or NULL. */
void ifx_query(int port, const char *db, const char *q, const char *auth, yarn_json_doc *doc);

/* q as a POST (CREATE, DROP), checked for an answer without "error". */
void ifx_exec(int port, const char *q, const char *auth);

/* The InfluxQL identifier for name: double-quoted, '"' and '\' escaped. */
void ifx_ident(const char *name, char *out, size_t cap);

/* results[0].series of a query answer (NULL when there is none). */
const yarn_json_node *ifx_series(const yarn_json_doc *doc);

/* The sink under test. */
typedef struct ifx_sink {
    void *config;
    void *state;
    fr_sink_info info;
} ifx_sink;

/* Opens the sink from key/value pairs ("database", "db1", ..., NULL).
 * Returns init's (or the config loader's) code; on failure err says why
 * and nothing is left open. */
int ifx_sink_open(ifx_sink *k, const char *const *kv, fr_error *err);
void ifx_sink_close(ifx_sink *k);

/* Writes n batches; err filled on failure. */
int ifx_sink_write(ifx_sink *k, fr_batch *const *b, size_t n, fr_error *err);

/* A figure of the sink's stats map (fails the test when missing). */
uint64_t ifx_stat(ifx_sink *k, const char *key);

/* Points of measurement (COUNT of its field "value") in db. */
int64_t ifx_count(int port, const char *db, const char *measurement);

#endif
