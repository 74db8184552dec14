/* How a task's processing and publishing reach the processors and
 * publishers: the control ops pipeline.put and pipeline.remove
 * (schemas/pipeline.md), sent to every replica of a stage, and the copy
 * each stage keeps in its state directory so it knows its tasks again
 * after a restart.
 *
 *   pipeline.put    {task: <id>, name: <task name>, manifest: <the manifest,
 *                   as fr_manifest_pack writes it>}
 *   pipeline.remove {task: <id>}
 *
 * A stage checks the nodes it runs (plugin names, configs) and refuses a
 * task with code "bad_manifest" and `where` the manifest path of the node
 * or key at fault; the collector turns that into the manifest's line
 * (fr_manifest_locate). Putting the same task again with the same
 * manifest changes nothing (the collector re-puts every task now and then,
 * so a stage that restarted or was added later learns them). */
#ifndef FRESCO_PIPECTL_H
#define FRESCO_PIPECTL_H

#include <stdbool.h>
#include <stddef.h>

#include "fresco/buf.h"
#include "fresco/err.h"
#include "fresco/manifest.h"
#include "fresco/mpdoc.h"
#include "fresco/tls.h"

/* ---- requests ---- */

/* Packs pipeline.put's args into out (appended). 0 or FR_ENOMEM. */
int fr_pipeline_put_pack(const char *task, const char *name, const fr_manifest *m, fr_buf *out);

/* Packs pipeline.remove's args. 0 or FR_ENOMEM. */
int fr_pipeline_remove_pack(const char *task, fr_buf *out);

/* Reads pipeline.put's args: *task and *name point into args; *m is a new
 * manifest (free with fr_manifest_free). A task id must be 1-64 bytes of
 * [A-Za-z0-9._-] (it names a file). Errors fill err (where = the key). */
int fr_pipeline_put_unpack(const fr_node *args, const char **task, const char **name,
                           fr_manifest **m, fr_error *err);

/* True when id is a usable task id (see above). */
bool fr_task_id_valid(const char *id);

/* ---- calling every replica ---- */

typedef struct fr_ctl_fanout fr_ctl_fanout;

/* Dials every url (nothing needs to be listening yet). n may be 0: then
 * every call reaches nobody. */
int fr_ctl_fanout_open(fr_ctl_fanout **out, const char *const *urls, size_t n,
                       const fr_tls_conf *tls);
size_t fr_ctl_fanout_count(const fr_ctl_fanout *f);
void fr_ctl_fanout_close(fr_ctl_fanout *f);

/* Calls op with args (one packed map) on every address, each within
 * timeout_ms. Returns:
 *   0            at least one accepted and none refused (*accepted says how
 *                many; the others did not answer);
 *   FR_EREMOTE   one refused: err has its where and message, code (if not
 *                NULL, 48 bytes) its error code;
 *   FR_ETIMEDOUT nobody answered (or n is 0): err names the addresses and
 *                why. */
int fr_ctl_fanout_call(fr_ctl_fanout *f, const char *op, const void *args, size_t len,
                       int timeout_ms, size_t *accepted, char *code, fr_error *err);

/* ---- removed tasks ---- */

/* The last FR_TOMBSTONES tasks a stage removed, so that their late batches
 * are refused rather than retried as "not known yet". Not thread-safe: the
 * stage's task table lock covers it. Zero it to start. */
#define FR_TOMBSTONES 256

typedef struct fr_tombstones {
    char *v[FR_TOMBSTONES];
    size_t n, next;
} fr_tombstones;

bool fr_tombstones_has(const fr_tombstones *t, const char *task);
/* Marks (on) or clears (off) task; marking forgets the oldest past the limit. */
void fr_tombstones_set(fr_tombstones *t, const char *task, bool on);
void fr_tombstones_free(fr_tombstones *t);

/* ---- a stage's copy of its tasks ---- */

/* Saves args (pipeline.put's, packed) as <dir>/pipelines/<task>.mp,
 * atomically (temporary file + rename); creates the folder. */
int fr_pipeline_store_save(const char *dir, const char *task, const void *args, size_t len,
                           fr_error *err);

/* Deletes <dir>/pipelines/<task>.mp. 0 (also when there was none) or FR_EIO. */
int fr_pipeline_store_delete(const char *dir, const char *task);

/* Calls fn for every saved task (args decoded). A file that does not
 * decode is logged and moved aside (<task>.mp.bad). fn's return is
 * ignored past logging. */
void fr_pipeline_store_load(const char *dir,
                            void (*fn)(void *arg, const char *file, const fr_node *args),
                            void *arg);

#endif
