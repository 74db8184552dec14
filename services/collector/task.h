/* Tasks: what the collector runs. A task binds the plugins whose catalogs
 * cover its requested metrics, ticks on its schedule on its own thread,
 * collects with a deadline, counts hits, misses and failures as snap does,
 * and hands each tick's batch down the pipeline and to `task watch`.
 *
 * States (snap's): Stopped -> Running (start) -> Stopped (stop);
 * Running -> Disabled when consecutive failures exceed max-failures (the
 * reason is kept; enable takes it back to Stopped); Running -> Ended when
 * `count` runs are done or stop_timestamp passes. */
#ifndef COLLECTOR_TASK_H
#define COLLECTOR_TASK_H

#include <stdbool.h>
#include <stdint.h>

#include <msgpack.h>

#include "fresco/data.h"
#include "fresco/event.h"
#include "fresco/manifest.h"
#include "registry.h"

typedef enum task_state {
    TASK_STOPPED,
    TASK_RUNNING,
    TASK_DISABLED,
    TASK_ENDED,
} task_state;

const char *task_state_name(task_state s);

typedef struct tasks tasks;

typedef struct tasks_env {
    registry *reg;
    fr_event_pub *events;   /* metrics/<id> and event/task; may be NULL */
    fr_data_sender *down;   /* to the processors (tasks with process nodes); may be NULL */
    fr_data_sender *direct; /* to the publishers (tasks with publish nodes of their own); may
                               be NULL */
    /* Called by tasks_create once the task's collect part is checked, with
     * its new id, before it exists: hands the process and publish parts to
     * the stages that run them, which check them; non-zero (err filled)
     * refuses the task. May be NULL. */
    int (*pipeline_put)(void *arg, const char *id, const char *name, const fr_manifest *m,
                        fr_error *err);
    /* Called by tasks_remove after the task is gone. May be NULL. */
    void (*pipeline_remove)(void *arg, const char *id, const fr_manifest *m);
    void *pipeline_arg;
    const char *node;      /* source of every batch */
    const char *state_dir; /* NULL: nothing persisted */
    int send_timeout_ms;
    _Atomic uint64_t *ticks, *misses, *failures, *batches_sent, *metrics_collected,
        *collect_ns_total, *send_busy, *resends;
} tasks_env;

/* Creates the task table; loads persisted tasks from state_dir/tasks and
 * restarts those that were Running. Errors in one persisted file are logged
 * and that file is moved aside (…/tasks/<id>.bad), the rest load. */
int tasks_open(tasks **out, const tasks_env *env);

/* Stops every task (joins their threads; a collect stuck in a plugin is
 * abandoned) and frees. Safe on NULL. */
void tasks_close(tasks *t);

/* Creates a task from a parsed manifest (ownership passes to the task on
 * success only). Validates against the catalog and the plugins' config
 * policies; on failure nothing is created and err names what and where.
 * Starts it unless no_start. *id receives the new id (37 bytes). */
int tasks_create(tasks *t, fr_manifest *m, bool no_start, char id[37], fr_error *err);

int tasks_start(tasks *t, const char *id, fr_error *err);
int tasks_stop(tasks *t, const char *id, fr_error *err);
int tasks_enable(tasks *t, const char *id, fr_error *err);
int tasks_remove(tasks *t, const char *id, fr_error *err);

/* Calls fn for every task (outside the table's lock; the manifest stays
 * valid during the call). */
void tasks_each(tasks *t,
                void (*fn)(void *arg, const char *id, const char *name, const fr_manifest *m),
                void *arg);

/* Packs task.get's result for one task, or task.list's array. */
int tasks_pack_get(tasks *t, const char *id, msgpack_packer *pk, fr_error *err);
void tasks_pack_list(tasks *t, msgpack_packer *pk);

#endif
