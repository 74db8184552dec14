/* Task manifests, as snap writes them, in YAML or JSON.
 *
 *   version: 1                      required, must be 1
 *   name: my-task                   optional (NULL here: the collector names it)
 *   deadline: 5s                    optional Go duration, default 5s
 *   schedule:
 *     type: simple                  simple | windowed | cron
 *     interval: 1s                  Go duration; for cron a 6-field expression
 *     start_timestamp: 2017-...Z    optional RFC 3339
 *     stop_timestamp: 2017-...Z     optional RFC 3339, after the start
 *     count: 100                    optional, runs before the task ends (0: no limit)
 *   max-failures: 10                optional, default 10; -1 never disables
 *   workflow:
 *     collect:
 *       metrics: {/intel/psutil/load/load1: {}, /intel/libvirt/ * /cpu/cputime: {}}
 *       config: {/intel/libvirt: {uri: "qemu:///system"}}    prefix -> key -> scalar
 *       tags: {/intel/psutil: {rack: r1}}                     prefix -> key -> string
 *       process: [{plugin_name: tag, config: {...}, process: [...], publish: [...]}]
 *       publish: [{plugin_name: file, config: {file: /tmp/x}}]
 *
 * (The '*' above is written with spaces only to keep this comment closed.)
 *
 * Durations have millisecond resolution: Go's units down to ns are read,
 * and a part of a millisecond rounds up ("500us" is 1ms, "1500us" 2ms;
 * fr_parse_duration_ms).
 *
 * Scalars: "$VAR" and "${VAR}" in scalar values (not keys) are replaced from
 * the environment when text is parsed (not on unpack); "$$" is a literal '$';
 * a '$' followed by anything else stays as written. An unset variable is an
 * error naming it. Types follow YAML 1.2's core schema after expansion: a
 * plain (unquoted) scalar is null ("", ~, null), a bool (true/false in any of
 * YAML's three spellings), an integer ([-+]?[0-9]+; one that does not fit
 * 64 bits is a float), a float (1.5, 1e3, .inf, .nan), else a string; quoted
 * scalars are strings; the standard tags (!!str, !!int, !!float, !!bool,
 * !!null) are honoured, others refused. yes/no/on/off are strings (YAML
 * 1.2), which fresco's config parsers still read as booleans.
 * Plugin config values (fr_mf_value) keep their type, with the text of a
 * non-string written canonically ("007" -> "7", "1.50" -> "1.5",
 * "True" -> "true", null -> ""), so what a plugin sees is the same after
 * a pack/unpack round trip, and typed as snap's Go YAML reader would. Where a
 * manifest wants text (name, tag values, keys) the text is kept as written.
 *
 * Errors: every function that fills an fr_error writes err->where as
 * "<source>:<line>:<col>" when the position is known (text input) or as the
 * key path when it is not (unpack), and err->message as
 * "<key path>: <what is wrong>", e.g. where "task.yaml:7:15", message
 * "schedule.interval: must be > 0, got '0s'". Key paths are dotted keys with
 * sequence indices in brackets: "workflow.collect.process[0].config.file";
 * a namespace key is written as is: "workflow.collect.metrics./intel/x*".
 *
 * Ownership: a manifest owns every string, map and node reachable from it;
 * fr_manifest_free() frees it all. On error nothing is returned and nothing
 * is left allocated. */
#ifndef FRESCO_MANIFEST_H
#define FRESCO_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "fresco/err.h"
#include "fresco/mpdoc.h"

/* Containers nested in a manifest, counted as the msgpack decoder counts
 * them; kept below FR_DOC_MAX_DEPTH so a packed manifest still decodes
 * inside a control request's envelope. */
#define FR_MANIFEST_MAX_DEPTH 24
/* Text accepted by fr_manifest_parse, and values (keys, scalars, map
 * entries, list items) in one manifest. */
#define FR_MANIFEST_MAX_BYTES (4u << 20)
#define FR_MANIFEST_MAX_NODES (1u << 18)

#define FR_MANIFEST_DEFAULT_DEADLINE_MS  5000
#define FR_MANIFEST_DEFAULT_MAX_FAILURES 10

/* ---- timestamps and cron ---------------------------------------------- */

/* RFC 3339: "2017-06-01T12:00:00Z", "2017-06-01T14:00:00.25+02:00" ('T' or
 * 't', 'Z' or 'z', 1..9 fraction digits, later ones dropped; second 60 is
 * taken as the next second). Returns 0 and ns since the epoch, or FR_EINVAL
 * (FR_ETOOBIG outside int64 ns, i.e. before 1678 or after 2262). */
int fr_parse_rfc3339(const char *s, int64_t *ns);

/* Writes ns as RFC 3339 in UTC ("2017-06-01T12:00:00.25Z", the fraction
 * only when nonzero, without trailing zeros) into buf (cap >= 36 is always
 * enough). Returns 0 or FR_ETOOBIG when buf is too small. */
int fr_format_rfc3339(int64_t ns, char *buf, size_t cap);

/* A cron schedule, evaluated in UTC. The expression has 6 fields:
 *   second minute hour day-of-month month day-of-week
 * each "*" or "?" (any), a value, a range a-b, a list a,b-c, or a step
 * ("*" or a-b, then "/n"; a/n runs from a to the end by n); months 1-12 or JAN-DEC, days of the
 * week 0-6 (7 is Sunday too) or SUN-SAT, names in any case. As in Vixie
 * cron and snap's cron library: when both day fields are restricted, a
 * day fires if either matches; when one is '*' or '?' (without a step),
 * the other decides. Also accepted: @yearly (@annually), @monthly,
 * @weekly, @daily (@midnight), @hourly and "@every <duration>" (whole
 * seconds, at least 1s, counted from the previous fire). */
typedef struct fr_cron {
    uint64_t sec;  /* bit n: second n fires (0-59) */
    uint64_t min;  /* bit n: minute n (0-59) */
    uint32_t hour; /* bit n: hour n (0-23) */
    uint32_t dom;  /* bit n: day of the month n (1-31) */
    uint16_t mon;  /* bit n: month n (1-12) */
    uint8_t dow;   /* bit n: day of the week n (0-6, 0 = Sunday) */
    bool dom_any, dow_any;
    int64_t every_s; /* "@every": > 0, and the fields above are unused */
} fr_cron;

/* Parses expr into *out. FR_EINVAL with err->message naming the field, e.g.
 * "field 3 (hour): 25 is out of range 0-23" (err->where left empty), and
 * for an expression that can never fire ("0 0 0 30 2 *"). */
int fr_cron_parse(const char *expr, fr_cron *out, fr_error *err);

/* The first fire time strictly after after_ns (whole seconds, ns since the
 * epoch), or -1 when there is none before year 2262. */
int64_t fr_cron_next(const fr_cron *c, int64_t after_ns);

/* ---- the manifest ----------------------------------------------------- */

/* A position in the manifest's text, 1-based; {0, 0} when unknown (a
 * manifest that came from fr_manifest_unpack). */
typedef struct fr_mf_pos {
    uint32_t line, col;
} fr_mf_pos;

typedef enum fr_mf_type {
    FR_MF_NULL,
    FR_MF_BOOL,
    FR_MF_INT,
    FR_MF_FLOAT,
    FR_MF_STRING,
    FR_MF_MAP,
} fr_mf_type;

typedef struct fr_mf_entry fr_mf_entry;

/* Key -> value pairs in the order written; keys are unique. */
typedef struct fr_mf_map {
    fr_mf_entry *v;
    size_t n;
} fr_mf_map;

/* A config value: a scalar (text plus its type) or a nested map. */
typedef struct fr_mf_value {
    fr_mf_type type;
    char *text;    /* scalars: never NULL ("" for null); MAP: NULL */
    fr_mf_map map; /* MAP only */
    fr_mf_pos pos; /* of the value */
} fr_mf_value;

struct fr_mf_entry {
    char *key;
    fr_mf_pos pos; /* of the key */
    fr_mf_value value;
};

/* A process or publish node. Publish nodes have no children. */
typedef struct fr_mf_node fr_mf_node;
struct fr_mf_node {
    char *plugin_name;
    int64_t plugin_version; /* 0 = any */
    fr_mf_map config;       /* key -> scalar or nested map */
    fr_mf_node *process;
    size_t nprocess;
    fr_mf_node *publish;
    size_t npublish;
    char *path;    /* "workflow.collect.process[0].publish[1]", for messages */
    fr_mf_pos pos; /* of the node's mapping */
};

typedef enum fr_sched_type {
    FR_SCHED_SIMPLE,
    FR_SCHED_WINDOWED,
    FR_SCHED_CRON,
} fr_sched_type;

/* "simple", "windowed", "cron". */
const char *fr_sched_type_name(fr_sched_type t);

typedef struct fr_schedule {
    fr_sched_type type;
    char *interval;      /* as written (after $VAR): "1s", or the cron expression */
    int64_t interval_ms; /* simple, windowed: > 0; cron: 0 */
    fr_cron cron;        /* cron only */
    bool has_start, has_stop;
    int64_t start_ns, stop_ns; /* ns since the epoch, when has_* */
    int64_t count;             /* runs before the task ends; 0 = no limit */
} fr_schedule;

typedef struct fr_mf_collect {
    fr_mf_map metrics; /* namespace query -> MAP (usually empty: {}) */
    fr_mf_map config;  /* namespace prefix -> MAP of key -> scalar */
    fr_mf_map tags;    /* namespace prefix -> MAP of key -> STRING */
    fr_mf_node *process;
    size_t nprocess;
    fr_mf_node *publish;
    size_t npublish;
} fr_mf_collect;

typedef struct fr_manifest {
    int64_t version; /* 1 */
    char *name;      /* NULL when not given */
    int64_t deadline_ms;
    fr_schedule schedule;
    int64_t max_failures; /* -1: never disable */
    fr_mf_collect collect;

    /* Where things were written, for errors found later (fr_manifest_error). */
    char *source; /* the name errors cite: "task.yaml", "<memory>" */
    struct {
        fr_mf_pos name, deadline, type, interval, start, stop, count, max_failures;
    } pos;
} fr_manifest;

/* Parses a manifest from YAML or JSON text (len bytes; need not be
 * NUL-terminated; at most FR_MANIFEST_MAX_BYTES). source names the text in
 * errors (NULL: "<memory>"). Checks everything that does not depend on the
 * time: see fr_manifest_validate for the rest. On success *out owns a new
 * manifest. On failure returns a negative code (FR_ECONFIG for bad YAML,
 * FR_EMISSING, FR_EUNKNOWN, FR_EDUP, FR_ETYPE, FR_EINVAL, FR_ETOOBIG,
 * FR_EDEPTH, FR_ENOMEM), fills err and leaves *out NULL. */
int fr_manifest_parse(const void *text, size_t len, const char *source, fr_manifest **out,
                      fr_error *err);

/* Reads the file at path and parses it, path naming it in errors.
 * FR_EIO when it cannot be read. */
int fr_manifest_load_file(const char *path, fr_manifest **out, fr_error *err);

/* The checks that depend on the time now_ns (ns since the epoch): a stop
 * time that has passed. Returns 0 or FR_EINVAL with err filled. */
int fr_manifest_validate(const fr_manifest *m, int64_t now_ns, fr_error *err);

/* Writes the manifest as one msgpack map with snap's keys, which
 * fr_manifest_unpack reads back into an equal manifest (positions and
 * source aside): durations as text ("5s"), timestamps as RFC 3339 text in
 * UTC, config scalars as msgpack values of their type. Defaults are
 * written out. Returns 0 or FR_ENOMEM. */
int fr_manifest_pack(const fr_manifest *m, msgpack_packer *pk);

/* Builds a manifest from a decoded msgpack map, as fr_manifest_parse does
 * from text (the same checks, no $VAR expansion; errors name the key path
 * in where). On success *out owns a new manifest with source NULL and
 * zero positions; it does not point into n. */
int fr_manifest_unpack(const fr_node *n, fr_manifest **out, fr_error *err);

/* Frees m and everything it owns. Safe on NULL. */
void fr_manifest_free(fr_manifest *m);

/* The value under key in map, or NULL. */
const fr_mf_value *fr_mf_map_get(const fr_mf_map *map, const char *key);

/* Fills err for something found wrong in m after parsing (a metric no
 * plugin offers, a config value a plugin refuses): where from m->source and
 * pos (or path when pos is unknown), message "<path>: <fmt...>". Returns
 * code. */
int fr_manifest_error(const fr_manifest *m, fr_error *err, int code, fr_mf_pos pos,
                      const char *path, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* The position of what a path below workflow.collect names: a process or
 * publish node ("workflow.collect.process[0].publish[1]") or a key of a
 * node's config ("workflow.collect.process[0].config.tags"; the deepest
 * key found). 0, or FR_ENOTFOUND when the path names nothing in m. */
int fr_manifest_pos_of(const fr_manifest *m, const char *path, fr_mf_pos *pos);

/* Rewrites an error whose where is such a path (a processor's or
 * publisher's refusal of a node) into the manifest's own terms: where
 * "<source>:<line>:<col>", message "<path>: <message>". An error whose
 * where names nothing in m is left as it is. Returns err->code. */
int fr_manifest_locate(const fr_manifest *m, fr_error *err);

#endif
