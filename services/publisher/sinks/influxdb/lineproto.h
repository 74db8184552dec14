/* InfluxDB 1.x line protocol for fresco metrics, mapped as snap's influxdb
 * publisher maps snap metrics:
 *
 *   <measurement>[,<tag>=<value>...] value=<v> <timestamp>\n
 *
 *   measurement  the namespace without its leading '/' (snap joins the
 *                namespace's elements with '/': "intel/psutil/load/load1")
 *   tags         the batch's tags, then the metric's own (a metric's tag
 *                wins over a batch tag of the same key); "unit" = the
 *                metric's unit unless a tag "unit" exists; "source" = the
 *                batch's source node unless a tag "source" exists (a tag
 *                "plugin_running_on", snap's standard tag, is renamed
 *                "source" when there is no "source"). Tags with an empty
 *                value are left out (InfluxDB stores none); tags are
 *                written sorted by key, as InfluxDB keeps them.
 *   value        one field: int64 -> integer (123i); uint64 -> integer when
 *                it fits int64, else float (InfluxDB 1.x has no unsigned
 *                field type unless built with it); double -> float in the
 *                shortest form that reads back to the same double; bool ->
 *                true/false; string -> quoted.
 *   timestamp    ns since the epoch, or divided down to the precision.
 *
 * Escaping is what InfluxDB 1.6's parser undoes: in the measurement ','
 * and ' ' get a backslash; in tag keys and values ',', ' ' and '='; in the
 * string value '"' and '\'. A backslash elsewhere in a name is written as
 * it is (the parser keeps it). Some names cannot be written at all, and
 * their points are dropped (nothing is written for them) with a reason:
 *   NONFINITE  a double that is NaN or infinite
 *   NAME       a measurement, tag key or tag value with a newline, or
 *              ending in a backslash (it would escape the separator
 *              after it); a measurement that is empty, or starts with '#'
 *              (a comment line) or a tab (skipped as blank); a tag key
 *              "time" (refused by InfluxDB)
 *   TIME       a timestamp outside InfluxDB's range
 *              (-9223372036854775806 .. 9223372036854775806 ns)
 *   KEY        a series key (measurement and tags, escaped) over 65535
 *              bytes, InfluxDB's limit. */
#ifndef INFLUX_LINEPROTO_H
#define INFLUX_LINEPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "fresco/buf.h"
#include "fresco/metric.h"

typedef enum influx_drop {
    INFLUX_DROP_NONE = 0,
    INFLUX_DROP_NONFINITE,
    INFLUX_DROP_NAME,
    INFLUX_DROP_TIME,
    INFLUX_DROP_KEY,
    INFLUX_DROP_COUNT,
} influx_drop;

/* "nonfinite", "name", "time", "key". */
const char *influx_drop_name(influx_drop d);

/* The encoder's scratch space (merged tag lists); no allocation. */
typedef struct influx_lp {
    int64_t precision_ns; /* 1 for ns, 1000 for us, ... */
    fr_tag tags[2 * FR_MAX_TAGS + 2];
    fr_tag scratch[2 * FR_MAX_TAGS];
} influx_lp;

/* precision_ns: nanoseconds per timestamp unit (1, 1000, 1000000, ...). */
void influx_lp_init(influx_lp *lp, int64_t precision_ns);

/* Appends the line of metric m of batch b to out. Returns 0 (line
 * appended), FR_ENOMEM (out unchanged), or a positive influx_drop (out
 * unchanged) with *why (static) saying what could not be written. */
int influx_lp_line(influx_lp *lp, const fr_batch *b, const fr_metric *m, fr_buf *out,
                   const char **why);

#endif
