/* A delivery: one sink instance (a publish node of a task) and the thread
 * that feeds it from the spool, in order: it reads the records that are
 * for its task and route, hands them to the sink's write() in groups,
 * confirms them in the spool when the sink has them, and when the sink is
 * down keeps the group and tries again with backoff (the spool keeps
 * filling; the engine, not the sink, owns retry). A batch the sink can
 * never take is found by writing the group one batch at a time, saved in
 * the spool's rejected/ folder and counted; the rest go on.
 *
 * The engine (publisher) owns the retry policy, the sink only says whether
 * a write may succeed later (fr_sink_retryable). */
#ifndef PUBLISHER_DELIVERY_H
#define PUBLISHER_DELIVERY_H

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "fresco/manifest.h"
#include "fresco/pipeline.h"
#include "spool.h"

typedef struct delivery delivery;

typedef struct delivery_opts {
    spool *sp;
    const char *rejected_dir; /* where refused batches go (exists) */
    const char *state_dir;    /* parent of the sinks' own folders; NULL: none */
    int64_t group_metrics;    /* metrics handed to one write, at most */
    int64_t backoff_min_ms, backoff_max_ms;
} delivery_opts;

/* Checks a publish node (plugin known here, config loads, sink inits):
 * err->where is the node's manifest path or its config key. On success
 * *out holds a delivery that is ready but not running: start it with
 * delivery_start (or throw it away with delivery_destroy). task/name/path
 * are copied; path is below workflow.collect ("process[0].publish[1]"),
 * route is the path of the node whose output it publishes ("" for the
 * collector's batches). */
int delivery_build(const fr_mf_node *node, const char *task, const char *task_name,
                   const char *path, const char *route, const delivery_opts *o, delivery **out,
                   fr_error *err);

/* Opens the delivery's spool reader (named after the sink, so a restarted
 * publisher goes on where it stopped) and starts its thread. */
int delivery_start(delivery *d, fr_error *err);

/* Asks the delivery to finish once it has delivered everything appended
 * so far (its task was removed); it then closes its reader and drops its
 * cursor. With drop, it stops at once and the undelivered records are
 * given up. delivery_finished() tells when it is done. */
void delivery_retire(delivery *d, bool drop);
bool delivery_finished(delivery *d);

/* Stops the thread (a write in progress is let finish), closes the reader
 * (keeping its cursor unless retired), destroys the sink, frees. Safe on
 * NULL and on a delivery never started. */
void delivery_destroy(delivery *d);

const char *delivery_id(const delivery *d);
const char *delivery_route(const delivery *d);

/* Packs {id, plugin, path, state, batches, metrics, writes, retries,
 * rejected, backlog_bytes, last_error, stats?}. */
void delivery_pack(delivery *d, msgpack_packer *pk);

#endif
