/* The metric and batch model, and its msgpack codec.
 *
 * A metric follows snap's model: a namespace ("/intel/psutil/load/load1"),
 * a timestamp in ns since the epoch, a typed value, a unit and string tags.
 * A batch carries envelope fields once (format version, task id, source
 * node, sequence number, batch-level tags) and many metrics.
 * The wire form is described in schemas/batch.md.
 *
 * Ownership: a batch owns every string, tag and metric reachable from it.
 * They live in the batch's arena and are freed together by
 * fr_batch_destroy(). Strings passed to the fr_batch_* builders are copied.
 * Strings in a batch are NUL-terminated UTF-8 (not checked) with known
 * lengths.
 *
 * Lengths: metrics and tags carry the lengths of their strings (ns_len,
 * unit_len, key_len, value_len), which the builders and the decoder fill
 * and the encoder uses instead of measuring every string on every encode.
 * A length of 0 with a non-empty string means "not known": the encoder
 * measures that string, so structs filled by hand (or zeroed) still
 * encode. Code that points one of these strings elsewhere sets its length
 * too, or 0. */
#ifndef FRESCO_METRIC_H
#define FRESCO_METRIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fresco/buf.h"
#include "fresco/err.h"

#define FR_BATCH_VERSION 1

/* Decoder limits. A message over any of them is refused with FR_ETOOBIG. */
#define FR_MAX_STRING    (64u * 1024u)          /* bytes in one string */
#define FR_MAX_NAMESPACE 4096u                  /* bytes in a namespace */
#define FR_MAX_TAGS      256u                   /* tags on one metric or batch */
#define FR_MAX_METRICS   (1024u * 1024u)        /* metrics in one batch */
#define FR_MAX_MESSAGE   (256u * 1024u * 1024u) /* bytes in one message */

typedef enum fr_value_type {
    FR_VAL_INT64 = 0,
    FR_VAL_UINT64 = 1,
    FR_VAL_DOUBLE = 2,
    FR_VAL_BOOL = 3,
    FR_VAL_STRING = 4,
} fr_value_type;

typedef struct fr_value {
    fr_value_type type;
    union {
        int64_t i;
        uint64_t u;
        double d;
        bool b;
        struct {
            const char *ptr; /* NUL-terminated */
            uint32_t len;
        } s;
    } v;
} fr_value;

typedef struct fr_tag {
    const char *key;
    const char *value;
    uint32_t key_len;   /* strlen(key), or 0 (see "Lengths" above) */
    uint32_t value_len; /* strlen(value), or 0 */
} fr_tag;

typedef struct fr_metric {
    const char *ns; /* "/intel/psutil/load/load1"; never NULL */
    int64_t ts;     /* ns since the epoch */
    fr_value value;
    const char *unit; /* "" when none; never NULL */
    fr_tag *tags;
    uint32_t ntags;
    uint32_t ns_len;   /* strlen(ns), or 0 (see "Lengths" above) */
    uint32_t unit_len; /* strlen(unit), or 0 */
} fr_metric;

typedef struct fr_arena fr_arena;

typedef struct fr_batch {
    uint32_t version;   /* FR_BATCH_VERSION */
    const char *task;   /* task id; "" when none; never NULL */
    const char *source; /* source node; never NULL */
    uint64_t seq;       /* per-source sequence number */
    const char *route;  /* "" for a collector's batch; a processor's output
                           names the process node it came out of, as a path
                           below workflow.collect ("process[0].process[1]");
                           never NULL */
    fr_tag *tags;       /* batch-level tags, apply to every metric */
    uint32_t ntags;
    fr_metric *metrics;
    uint32_t nmetrics;
    /* private */
    uint32_t cap_metrics; /* 0 while metrics is in the arena (decoded) */
    uint32_t cap_tags;
    fr_arena *arena;
} fr_batch;

/* Creates an empty batch with the given envelope (strings copied).
 * Returns NULL on out of memory. Free with fr_batch_destroy(). */
fr_batch *fr_batch_new(const char *task, const char *source, uint64_t seq);

/* Frees the batch and everything it owns. Safe on NULL and on a batch a
 * failed decode left half-built. Large blocks of a batch's memory are kept
 * in a small process-wide pool (at most 32 MiB) for the next batches. */
void fr_batch_destroy(fr_batch *b);

/* Empties the batch for reuse (keeps its memory), with a new envelope. */
int fr_batch_reset(fr_batch *b, const char *task, const char *source, uint64_t seq);

/* Sets the batch's route (copied; NULL or "" for none). 0, FR_ENOMEM or
 * FR_ETOOBIG (over FR_MAX_STRING). Reset clears it. */
int fr_batch_set_route(fr_batch *b, const char *route);

/* The stream a batch belongs to, for duplicate detection: source, task and
 * route joined by the unit separator 0x1f ("node-1\x1ftask\x1fprocess[0]").
 * Writes at most cap bytes (NUL included) into out and returns the length
 * it needed (as snprintf): a return >= cap means out was truncated. */
size_t fr_batch_stream(const fr_batch *b, char *out, size_t cap);

/* Adds a batch-level tag (copied). 0, FR_ENOMEM or FR_ETOOBIG. */
int fr_batch_add_tag(fr_batch *b, const char *key, const char *value);

/* Appends a metric (ns, unit and a string value are copied; unit may be NULL
 * for none). Returns a pointer to the stored metric, valid until the next
 * append, reset or destroy; NULL on out of memory. */
fr_metric *fr_batch_add(fr_batch *b, const char *ns, int64_t ts, fr_value value, const char *unit);

/* Adds a tag to the most recently appended metric m (copied).
 * 0, FR_ENOMEM or FR_ETOOBIG. */
int fr_batch_metric_tag(fr_batch *b, fr_metric *m, const char *key, const char *value);

/* Appends a copy of m that shares m's strings and tag array instead of
 * copying them: they must stay valid and unchanged as long as b is used
 * (typically m lives in an input batch that outlives its output batch).
 * Returns the stored metric (valid until the next append, reset or
 * destroy), or NULL on out of memory. */
fr_metric *fr_batch_add_ref(fr_batch *b, const fr_metric *m);

/* Gives metric m of batch b (any metric of b) a new tag array in b's
 * memory: m's tags with the n given ones merged in, a given tag replacing
 * one with the same key, new keys appended in the order given. Tag strings
 * are shared, not copied (both m's and the given ones must outlive b's
 * use). 0, FR_ENOMEM, or FR_ETOOBIG when the result would have more than
 * FR_MAX_TAGS tags (m unchanged). */
int fr_batch_metric_merge_tags(fr_batch *b, fr_metric *m, const fr_tag *tags, uint32_t n);

/* Value constructors. fr_val_str does not copy: the string must live until
 * it is passed to fr_batch_add (which copies it). */
static inline fr_value fr_val_i64(int64_t x)
{
    fr_value v = {.type = FR_VAL_INT64};
    v.v.i = x;
    return v;
}
static inline fr_value fr_val_u64(uint64_t x)
{
    fr_value v = {.type = FR_VAL_UINT64};
    v.v.u = x;
    return v;
}
static inline fr_value fr_val_f64(double x)
{
    fr_value v = {.type = FR_VAL_DOUBLE};
    v.v.d = x;
    return v;
}
static inline fr_value fr_val_bool(bool x)
{
    fr_value v = {.type = FR_VAL_BOOL};
    v.v.b = x;
    return v;
}
fr_value fr_val_str(const char *s);

/* Encodes b in the canonical wire form (schemas/batch.md), appending to out.
 * Returns 0, FR_ENOMEM, or FR_EINVAL for an unencodable batch. */
int fr_batch_encode(const fr_batch *b, fr_buf *out);

/* Decodes exactly len bytes into a new batch (*out; free with
 * fr_batch_destroy). Validates types, lengths, nesting and the limits above;
 * never reads outside [data, data+len). On failure returns a negative code,
 * sets *out to NULL and fills err (if not NULL) with the path of the failing
 * element, e.g. "metrics[3].tags". Does not keep a reference to data. */
int fr_batch_decode(const void *data, size_t len, fr_batch **out, fr_error *err);

/* Reads only the envelope's source and seq (for dedup before a full decode).
 * source is copied into src (NUL-terminated, truncated to srclen-1).
 * Same validation of what it reads as fr_batch_decode. */
int fr_batch_peek(const void *data, size_t len, char *src, size_t srclen, uint64_t *seq,
                  fr_error *err);

/* True when a and b hold the same envelope and metrics (for tests). */
bool fr_batch_equal(const fr_batch *a, const fr_batch *b);

/* Type name: "int64", "uint64", "double", "bool", "string". */
const char *fr_value_type_name(fr_value_type t);

#endif
