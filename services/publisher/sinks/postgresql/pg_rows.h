/* Metrics as rows of PostgreSQL's binary COPY format, for the columns
 * PGROWS_COLUMNS of the metrics table:
 *   time        timestamptz       the metric's timestamp, in microseconds
 *                                 (nanoseconds cut toward the past)
 *   namespace   text
 *   value       double precision  int64, uint64, double; bool as 1/0;
 *                                 NULL for strings
 *   value_text  text              a string value; the exact digits of an
 *                                 integer beyond +-2^53 (value then holds the
 *                                 nearest double); NULL otherwise
 *   unit        text              NULL when the metric has none
 *   tags        jsonb             {"key": "value"}: the batch's tags, then the
 *                                 metric's, so a metric's own tag wins (jsonb
 *                                 keeps the last of duplicate keys)
 *   task        text
 *   source      text              the batch's source node
 * Binary COPY needs no escaping of the data and no parsing of numbers and
 * times by the server. Strings go as they are: one that is not valid UTF-8
 * (or holds a NUL) is refused by the server, for that COPY as a whole. */
#ifndef PUBLISHER_SINK_PG_ROWS_H
#define PUBLISHER_SINK_PG_ROWS_H

#include <stdint.h>

#include "fresco/buf.h"
#include "fresco/metric.h"

#define PGROWS_COLUMNS "time, namespace, value, value_text, unit, tags, task, source"

/* Scratch memory reused from batch to batch. Zero it to start;
 * pgrows_free releases it. */
typedef struct pgrows {
    fr_buf batch_tags; /* the batch's tags as JSON members: "k":"v","k2":"v2" */
} pgrows;

/* The binary COPY signature and header; then rows; then the trailer. */
int pgrows_header(fr_buf *out);
int pgrows_trailer(fr_buf *out);

/* Appends one row for each metric of b, with task as the task column
 * (task_len bytes). 0 or FR_ENOMEM. */
int pgrows_batch(pgrows *r, fr_buf *out, const fr_batch *b, const char *task, size_t task_len);

void pgrows_free(pgrows *r);

#endif
