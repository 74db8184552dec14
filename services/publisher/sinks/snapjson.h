/* snapjson: one metric as a JSON object with the fields of snap's file
 * publisher, as the file and kafka sinks write it (docs/plugins/file.md,
 * "Lines", says what each field holds):
 *
 *   {"timestamp":"2016-07-25T09:27:59.795513984Z","namespace":"/intel/mock/foo",
 *    "data":72,"unit":"","tags":{"plugin_running_on":"my-machine"},"version":0}
 *
 * timestamp is RFC 3339 in UTC with nine fraction digits; data keeps the
 * value's type (integers in full, a double as the shortest decimal that
 * reads back as it, NaN and infinities as the strings "NaN", "+Inf",
 * "-Inf"); tags are the batch's with the metric's own merged over them,
 * one per key, sorted; version is 0. Strings are escaped as Go's
 * encoding/json escapes them (bar its HTML escaping of <, > and &), bytes
 * that are not UTF-8 becoming U+FFFD.
 *
 * The writer keeps the batch's tags sorted between metrics and the date of
 * the last second it wrote, so a batch costs one sort of its tags and a
 * metric in the same second as the one before no date arithmetic. */
#ifndef PUBLISHER_SNAPJSON_H
#define PUBLISHER_SNAPJSON_H

#include "fresco/buf.h"
#include "fresco/metric.h"

typedef struct snapjson snapjson;

/* A writer, or NULL when out of memory. The caller owns it. */
snapjson *snapjson_new(void);

/* Frees w; safe on NULL. */
void snapjson_destroy(snapjson *w);

/* Takes b's tags for the metrics written next, until the next call: w
 * points into b, which must outlive those writes. 0 or FR_ENOMEM. */
int snapjson_batch(snapjson *w, const fr_batch *b);

/* Appends metric m (of the batch last given to snapjson_batch) to out as
 * one JSON object; snapjson_line adds a '\n' after it. 0 or FR_ENOMEM
 * (then out holds what it held before). */
int snapjson_metric(snapjson *w, const fr_metric *m, fr_buf *out);
int snapjson_line(snapjson *w, const fr_metric *m, fr_buf *out);

#endif
