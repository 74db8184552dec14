/* A Kafka message's value: one metric, as JSON or as a msgpack map, with
 * the fields of snap's file publisher:
 *   {"timestamp": "2017-06-01T12:00:00.123456789Z", "namespace": "/a/b",
 *    "data": 42, "unit": "B", "tags": {"k": "v"}, "version": 1}
 * timestamp is RFC 3339 in UTC with as many fraction digits as the ns need
 * (fr_format_rfc3339, as Go's RFC3339Nano); data keeps the value's type
 * (a double that is not finite is null in JSON); tags are the metric's own
 * then the batch's whose keys the metric does not have; version is the
 * batch's format version (fresco metrics carry no plugin version).
 *
 * The JSON writer is the sink's own for now; the file sink writes the
 * same fields, and the two can share one writer later. */
#ifndef KAFKA_VALUE_H
#define KAFKA_VALUE_H

#include "fresco/buf.h"
#include "fresco/metric.h"

/* Append metric m of batch b to out. 0, FR_ENOMEM, or FR_EINVAL for a
 * timestamp RFC 3339 cannot write. */
int kafka_value_json(const fr_batch *b, const fr_metric *m, fr_buf *out);
int kafka_value_msgpack(const fr_batch *b, const fr_metric *m, fr_buf *out);

/* Appends s (n bytes) as a JSON string with its quotes. */
int kafka_json_string(fr_buf *out, const char *s, size_t n);

#endif
