/* Node metadata of an HPC job: just before a batch job runs, each of its
 * compute nodes records one JSON document describing itself (processes,
 * installed packages, cpu, an allowed part of the environment, time, MPI
 * and versions); fresco merges the per-node documents into one job
 * artefact and diffs two nodes or two jobs to show drift.
 *
 * One node's document:
 *
 *   {"node01": {
 *      "processes": [{"name": "systemd", "pid": 1}, ...],   (by pid)
 *      "packages": {"libc6": "2.36-9", ...},
 *      "cpu": {"count": 2, "flags": "...", "mhz": "...", "model": "..."},
 *      "env": {"PATH": "...", ...},
 *      "time": "2026-12-06 13:20:00.123456",                (UTC)
 *      "mpi": {"path": "/usr/bin/mpirun", "version": "..."}, (or {})
 *      "versions": {"fresco": "...", "kernel": "...", "os": "..."}}}
 *
 * A merged artefact is one object with one such member per node.
 *
 * The JSON reader and writer here are small and strict, with no
 * dependency beyond libc; see hpc_json_parse and hpc_json_write. */
#ifndef HPC_NODEMETA_H
#define HPC_NODEMETA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fresco/buf.h"
#include "fresco/err.h"

/* ---- JSON values ---- */

#define HPC_JSON_MAX_DEPTH 32                  /* nested arrays and objects */
#define HPC_JSON_MAX_SIZE  (64u * 1024 * 1024) /* bytes of JSON text */

typedef enum hpc_json_type {
    HPC_JSON_NULL,
    HPC_JSON_BOOL,
    HPC_JSON_NUMBER,
    HPC_JSON_STRING,
    HPC_JSON_ARRAY,
    HPC_JSON_OBJECT
} hpc_json_type;

/* A parsed JSON value. Every value of a tree lives in memory owned by the
 * tree's root; pointers to inner values stay valid until hpc_json_free on
 * the root. Object members are kept in key order (bytewise, which is code
 * point order), never in document order. Numbers keep their text exactly
 * as written. Strings are valid UTF-8 and may hold U+0000. */
typedef struct hpc_json hpc_json;

/* Parses len bytes of text as one JSON value, strictly by RFC 8259:
 * no BOM, no comments, no trailing commas, no leading zeros, strings valid
 * UTF-8 without raw control characters, \u escapes with surrogates only in
 * pairs, nesting at most HPC_JSON_MAX_DEPTH, text at most
 * HPC_JSON_MAX_SIZE, no key twice in an object, only whitespace after the
 * value. On success *out owns the tree (free with hpc_json_free) and 0 is
 * returned. Otherwise *out is NULL, nothing is left allocated, and e (may
 * be NULL) has the code, e->where = "line:col" (both from 1, col counting
 * bytes) of the offending byte, and a message saying what is wrong there
 * and what is allowed. Codes: FR_ETRUNC (input ends early), FR_EINVAL
 * (bad character, number, escape or UTF-8), FR_EDEPTH, FR_ETOOBIG,
 * FR_EDUP, FR_ETRAILING, FR_ENOMEM. */
int hpc_json_parse(const char *text, size_t len, hpc_json **out, fr_error *e);

/* Frees a tree returned by hpc_json_parse. Safe on NULL; does nothing for
 * an inner value (those belong to their root). */
void hpc_json_free(hpc_json *j);

/* Appends j to out as canonical JSON: object keys in sorted order, two
 * spaces of indentation per level, "key": value, a newline at the end.
 * The text is pure ASCII: '"' and '\' are escaped with a backslash,
 * control characters (U+0000-U+001F, U+007F) and every non-ASCII code
 * point as \uXXXX (lowercase hex, surrogate pairs above U+FFFF), so the
 * same tree always gives the same bytes. Numbers are written as they
 * were read. 0; FR_EINVAL when j or out is NULL; FR_ENOMEM with out as
 * it was. */
int hpc_json_write(const hpc_json *j, fr_buf *out);

/* Deep equality: same types, same strings, same number text, same items
 * in order, same members. NULL equals only NULL. */
bool hpc_json_equal(const hpc_json *a, const hpc_json *b);

/* Accessors. None allocates; returned pointers belong to the tree. */
hpc_json_type hpc_json_type_of(const hpc_json *j);
/* Items of an array or members of an object; 0 for anything else. */
size_t hpc_json_count(const hpc_json *j);
/* The i-th item of an array or the value of the i-th member (key order)
 * of an object; NULL when out of range or j is neither. */
const hpc_json *hpc_json_at(const hpc_json *j, size_t i);
/* The key of the i-th member of an object (NUL-terminated; *len, if not
 * NULL, gets its length, which counts any U+0000 inside); NULL if none. */
const char *hpc_json_key_at(const hpc_json *j, size_t i, size_t *len);
/* The value of member key of an object; NULL when absent or j is not an
 * object. */
const hpc_json *hpc_json_get(const hpc_json *j, const char *key);
/* A string's bytes (NUL-terminated, *len its length) or NULL if j is not a
 * string. */
const char *hpc_json_str(const hpc_json *j, size_t *len);
/* A number's text as written, or NULL if j is not a number. */
const char *hpc_json_number_text(const hpc_json *j);
/* A number that is an integer in int64_t range (no fraction or exponent)
 * into *v: 0, FR_ETYPE otherwise. */
int hpc_json_int64(const hpc_json *j, int64_t *v);
/* true for the literal true, false for anything else. */
bool hpc_json_bool(const hpc_json *j);

/* ---- node metadata ---- */

/* The environment recorded when hpc_nodemeta_opts.env_allow is NULL. */
extern const char *const hpc_nodemeta_env_default[];

/* What hpc_nodemeta_collect reads. The caller owns every string; none is
 * kept after the call. */
typedef struct hpc_nodemeta_opts {
    const char *node_name;        /* NULL: gethostname() up to the first '.' */
    const char *fresco_version;   /* required: versions.fresco */
    const char *proc_root;        /* NULL: "/proc"; tests may point at a fixture */
    const char *dpkg_status;      /* NULL: "/var/lib/dpkg/status"; missing -> no packages */
    const char *os_release;       /* NULL: "/etc/os-release", then "/usr/lib/os-release" */
    const char *const *env_allow; /* NULL-terminated names, or prefixes ending in '*', of
                                     the variables to record; NULL: hpc_nodemeta_env_default.
                                     Everything else is left out (secrets). */
    char *const *envp;            /* environment to read; NULL: environ */
    const char *mpirun;           /* NULL: the first executable "mpirun" on envp's PATH */
} hpc_nodemeta_opts;

/* Collects this node's document and appends it to out as canonical JSON
 * (hpc_json_write). What is recorded:
 *  - processes: every numeric entry of proc_root with its comm, by pid;
 *    processes that exit while being read are left out;
 *  - packages: dpkg status entries whose Status is "... installed", name
 *    -> Version; a name installed for several architectures is recorded
 *    once per architecture as "name:arch";
 *  - cpu: "processor" lines of proc_root/cpuinfo (or cpuN lines of
 *    proc_root/stat) as count, and the first model name, cpu MHz and
 *    flags lines (ARM: Features) as strings, "" when absent;
 *  - env: the first entry of each allowed name in envp; names that are not
 *    valid UTF-8 are left out. Bytes of a value (or of a process name,
 *    package field or version line) that are not valid UTF-8 are recorded
 *    as U+FFFD, one per byte, written "\ufffd";
 *  - time: the wall clock in UTC with microseconds;
 *  - mpi: {} when mpirun is absent or not an executable regular file;
 *    otherwise its path and the first line "<mpirun> --version" prints on
 *    stdout. That runs through posix_spawn (never a shell) in its own
 *    process group, stdin and stderr on /dev/null, with envp; after 2 s
 *    the group is killed and version is "" (as when it prints nothing);
 *  - versions: fresco_version, uname's release, os-release PRETTY_NAME
 *    ("Linux" when the file lacks it, "" when there is no file).
 * 0, or a negative code with e naming the option or file: FR_EINVAL
 * (missing fresco_version, empty node name), FR_EIO (proc_root or a
 * present file unreadable), FR_ENOMEM. On failure out is as it was. */
int hpc_nodemeta_collect(const hpc_nodemeta_opts *o, fr_buf *out, fr_error *e);

/* Merges n per-node files (each one JSON object of one or more nodes, as
 * collected) into one artefact at out_path: all nodes, keys sorted,
 * canonical JSON, written to "<out_path>.XXXXXX" (mode 0644), fsynced and
 * renamed over out_path, so readers see the old file or the whole new one.
 * Errors leave out_path untouched and no temporary file behind: a file
 * that cannot be read (FR_EIO, where = the path), bad JSON (its code,
 * where = "path:line:col"), a file that is not an object of node objects
 * (FR_ETYPE) or holds no node (FR_EMISSING), and a node in two files
 * (FR_EDUP naming the node and both files, where = the second file's
 * "path:line:col"). */
int hpc_nodemeta_merge(const char *const *paths, size_t n, const char *out_path, fr_error *e);

/* Compares node a_node of document a with node b_node of document b
 * (NULL: the document's first node in key order) and appends one line per
 * difference to out, sections in this order: packages, cpu, env, mpi,
 * versions, processes. Lines read (a is the old side, b the new):
 *   packages: changed libc6: 2.36-9 -> 2.36-10
 *   env: added SLURM_JOB_ID: 42
 *   cpu: removed flags: fpu vme
 *   processes: added sshd           (names running on one side only)
 * Keys and string values are shown with JSON escapes and without quotes
 * (an empty string as ""), other values as compact JSON. time is ignored,
 * as are members of a node not listed above; a missing section counts as
 * empty. Returns the number of differences (0: same), or a negative code
 * with e filled and out as it was: FR_ETYPE (a document is not an object,
 * a section has the wrong type, a process has no string name; where =
 * "node.section"), FR_EMISSING (no node), FR_ENOTFOUND (no such node),
 * FR_ENOMEM. */
int hpc_nodemeta_diff(const hpc_json *a, const char *a_node, const hpc_json *b, const char *b_node,
                      fr_buf *out, fr_error *e);

#endif
