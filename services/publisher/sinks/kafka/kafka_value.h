/* A Kafka message's value as msgpack: one metric as a map with the keys of
 * snap's file publisher, in this order:
 *   {"timestamp": "2017-06-01T12:00:00.123456789Z", "namespace": "/a/b",
 *    "data": 42, "unit": "B", "tags": {"k": "v"}, "version": 1}
 * timestamp is RFC 3339 in UTC with as many fraction digits as the ns need
 * (fr_format_rfc3339, as Go's RFC3339Nano); data keeps the value's type (a
 * NaN stays a NaN); tags are the metric's own then the batch's whose keys
 * the metric does not have; version is the batch's format version.
 *
 * The JSON value is snapjson.h's, as the file sink writes it. */
#ifndef KAFKA_VALUE_H
#define KAFKA_VALUE_H

#include "fresco/buf.h"
#include "fresco/metric.h"

/* Appends metric m of batch b to out. 0, FR_ENOMEM, or FR_EINVAL for a
 * timestamp RFC 3339 cannot write. */
int kafka_value_msgpack(const fr_batch *b, const fr_metric *m, fr_buf *out);

#endif
