/* Configuration: a table of fields per service, loaded from one YAML file
 * (libyaml), then overridden by environment variables, then by flags.
 *
 *   defaults  <  file  <  FRESCO_<SERVICE>_<KEY>  <  --key=value
 *
 * Keys are dotted paths ("tls.cert"), written in YAML as nested maps
 * (tls: {cert: ...}) or as the dotted key itself. The environment variable
 * is the key upper-cased with '.' and '-' turned into '_'
 * (FRESCO_COLLECTOR_TLS_CERT). Flags are --key=value or --key value;
 * a bare --key sets a bool to true.
 * The file comes from --config=FILE, else FRESCO_<SERVICE>_CONFIG, else the
 * `file` argument (may be NULL: no file). A file named explicitly must exist;
 * the `file` argument may be missing (then there is no file). An empty name
 * (--config= or FRESCO_<SERVICE>_CONFIG=) means no file at all.
 * Unknown keys and bad values are errors naming the key and where it came
 * from: "collector.yaml:12:3: key 'tls.cetr': unknown key",
 * "environment FRESCO_COLLECTOR_WORKERS: key 'workers': not an integer: 'x'",
 * "flag --workers: ...". A FRESCO_<SERVICE>_* variable that names no key is
 * an error too, so a typo in a container's environment is not ignored.
 *
 * The YAML file holds one mapping (an empty file or only comments is fine);
 * a key given twice, an alias (*name) or a mapping or sequence where a
 * single value belongs is an error. `key: ~` or `key:` resets the key to
 * unset. Each layer replaces a list whole; it never appends.
 *
 * Errors: FR_EUNKNOWN for a key, flag or variable that names no key;
 * FR_ENOMEM; FR_EINVAL for a bad field table (a bug in the service);
 * FR_ECONFIG for everything else (bad value, YAML syntax, unreadable file).
 *
 * Ownership: strings and lists stored into the target struct are allocated
 * by the loader; fr_config_free() frees them (safe on a struct the loader
 * filled only partly, provided it started zeroed). */
#ifndef FRESCO_CONFIG_H
#define FRESCO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fresco/err.h"

typedef enum fr_cfg_type {
    FR_CFG_STRING,   /* char *            any scalar */
    FR_CFG_INT,      /* int64_t           decimal, optional sign; min..max */
    FR_CFG_BOOL,     /* bool              true/false/yes/no/on/off/1/0 */
    FR_CFG_DURATION, /* int64_t ms        Go style: "250ms", "1s", "1m30s", "2h"; min..max ms */
    FR_CFG_SIZE,     /* int64_t bytes     "4096", "64KiB", "8MiB", "1GiB", "10MB"; min..max */
    FR_CFG_LIST,     /* fr_strlist        YAML sequence of scalars, or comma-separated */
    FR_CFG_ENUM,     /* char *            one of `choices` (any case; stored as written
                                          in the table) */
} fr_cfg_type;

typedef struct fr_strlist {
    char **v;
    size_t n;
} fr_strlist;

typedef struct fr_cfg_field {
    const char *key; /* "tls.cert": lower-case letters, digits, '.', '-', '_'; at most
                        100 bytes; not "help", "version" or "config" */
    fr_cfg_type type;
    const char *def;            /* default, written as a user would write it; NULL = unset
                                   (NULL string / empty list / 0 / false) */
    size_t offset;              /* offsetof(target struct, field) */
    const char *help;           /* one line for --help and the README's reference */
    int64_t min, max;           /* bounds for INT/DURATION/SIZE; both 0 = no bounds */
    const char *const *choices; /* ENUM: NULL-terminated list */
} fr_cfg_field;

typedef struct fr_cfg_spec {
    const char *service; /* "collector": names env vars and messages */
    const fr_cfg_field *fields;
    size_t nfields;
} fr_cfg_spec;

/* Loads into obj (which must start zeroed). argv[0] is skipped; every other
 * argument must be a known flag, or --config, --help (-h), --version.
 * A bool flag takes its value only as --key=value; bare --key means true.
 * Flags are read left to right, so a later one wins.
 * Returns 0; 1 when --help or --version was printed to stdout (the caller
 * exits 0); or a negative code with err filled (where = "file:line:col",
 * "environment NAME", "flag --name", or "argument N" for a word that is not
 * a flag) and obj partly filled (free it).
 * Every error is also worth printing as "<where>: <message>".
 * Strings in obj point into memory the loader allocated, never into argv
 * or the environment. */
int fr_config_load(const fr_cfg_spec *spec, void *obj, const char *file, int argc, char **argv,
                   fr_error *err);

/* Applies YAML held in memory as the file layer alone: no defaults, no
 * environment, no flags. name stands for the file in err->where (NULL:
 * "<memory>"). Returns 0 or a negative code as fr_config_load; obj is
 * partly filled on error (free it). For tools and the fuzzer. */
int fr_config_load_yaml_buffer(const fr_cfg_spec *spec, void *obj, const char *name,
                               const void *data, size_t len, fr_error *err);

/* The layers one at a time, for tables that are not a service's (a
 * collector plugin's config policy, read from a task manifest).
 * fr_config_defaults sets every field of obj (which must start zeroed, or
 * hold values set by these calls) to its default. fr_config_set parses
 * value as the field named key, as a line of the YAML file would, leaving
 * the field as it was on error; a NULL value resets it to unset. Errors as
 * fr_config_load's: FR_EUNKNOWN for an unknown key (with a suggestion),
 * FR_ECONFIG for a bad value ("key 'interval': not a duration: 'x' (...)"),
 * FR_EINVAL for a bad table, FR_ENOMEM; err->where is the caller's where
 * (may be NULL), err->message names the key. Free obj with
 * fr_config_free. */
int fr_config_defaults(const fr_cfg_spec *spec, void *obj, fr_error *err);
int fr_config_set(const fr_cfg_spec *spec, void *obj, const char *key, const char *value,
                  const char *where, fr_error *err);

/* Frees what the loader allocated in obj and zeroes those fields. */
void fr_config_free(const fr_cfg_spec *spec, void *obj);

/* Writes --help text generated from the table: flag, env var, default, help. */
void fr_config_usage(const fr_cfg_spec *spec, FILE *f);

/* Writes the reference as a Markdown table (key, type, default, env, help):
 * the README's config reference is generated from this. */
void fr_config_markdown(const fr_cfg_spec *spec, FILE *f);

/* Parsers shared with manifests and the CLI. Each returns 0 or FR_EINVAL
 * (FR_ETOOBIG on overflow), leaving *out alone on error.
 *
 * duration: Go's syntax: an optional sign, then number-unit pairs with
 *   optional fractions ("1h30m", "1.5s", "-250ms"); units ns, us (µs), ms,
 *   s, m, h. Nonzero amounts below a millisecond round up (away from zero)
 *   to 1ms. A bare number is an error, except "0". Up to ~292 years.
 * size: a whole number of bytes, or a number with a unit, case-insensitive:
 *   K, KiB = 1024; KB = 1000; likewise M/MiB/MB, G/GiB/GB, T/TiB/TB, P/PiB/PB.
 *   "1.5KiB" = 1536 (the fraction of a byte dropped); never negative.
 * bool: true/false, yes/no, on/off, 1/0, any case.
 * int: decimal, optional sign, no spaces, the full int64 range. */
int fr_parse_duration_ms(const char *s, int64_t *ms);
int fr_parse_size(const char *s, int64_t *bytes);
int fr_parse_bool(const char *s, bool *out);
int fr_parse_int(const char *s, int64_t *out);

#endif
