/* A decoded msgpack document: a read-only tree of nodes, used for control
 * requests and replies and event bodies (anything that is not a metric
 * batch, which has its own decoder in metric.h).
 *
 * The decoder is strict and bounded: it never reads outside its input, refuses
 * nesting deeper than FR_DOC_MAX_DEPTH, containers claiming more elements than
 * bytes remain, strings over FR_MAX_STRING, map keys that are not strings,
 * duplicate map keys, msgpack ext types, and trailing bytes.
 *
 * Ownership: the document owns every node and string (one allocation,
 * copied out of the input). fr_doc_free() frees it all. Nodes are valid until
 * then. */
#ifndef FRESCO_MPDOC_H
#define FRESCO_MPDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "fresco/err.h"

#define FR_DOC_MAX_DEPTH 32
#define FR_DOC_MAX_NODES (1u << 20)

typedef enum fr_node_type {
    FR_NODE_NIL,
    FR_NODE_BOOL,
    FR_NODE_INT,  /* negative integer */
    FR_NODE_UINT, /* non-negative integer */
    FR_NODE_FLOAT,
    FR_NODE_STR,
    FR_NODE_BIN,
    FR_NODE_ARRAY,
    FR_NODE_MAP,
} fr_node_type;

typedef struct fr_node fr_node;
struct fr_node {
    fr_node_type type;
    uint32_t len; /* bytes of STR/BIN; elements of ARRAY; pairs of MAP */
    union {
        bool b;
        int64_t i;
        uint64_t u;
        double f;
        const char *str;    /* STR: NUL-terminated; BIN: raw bytes */
        const fr_node *arr; /* ARRAY: len nodes */
        const fr_node *kv;  /* MAP: 2*len nodes, key then value */
    } v;
};

typedef struct fr_doc {
    const fr_node *root;
    /* private */
    void *mem;
} fr_doc;

/* Decodes exactly len bytes. On failure returns a negative code, leaves doc
 * empty (root NULL; fr_doc_free is still safe) and fills err with the path
 * of the failing element ("args.metrics[2]"). */
int fr_doc_decode(const void *data, size_t len, fr_doc *doc, fr_error *err);

/* Frees everything the document owns; doc is then empty. Safe twice. */
void fr_doc_free(fr_doc *doc);

/* Map lookup by key; NULL when n is not a map or has no such key. */
const fr_node *fr_node_get(const fr_node *n, const char *key);

/* Typed accessors for map members. Each returns 0 and sets *out; FR_EMISSING
 * when the key is absent (and *out untouched); FR_ETYPE when present with
 * another type (or an integer out of range). They never allocate. */
int fr_node_get_str(const fr_node *map, const char *key, const char **out);
int fr_node_get_i64(const fr_node *map, const char *key, int64_t *out);
int fr_node_get_u64(const fr_node *map, const char *key, uint64_t *out);
int fr_node_get_bool(const fr_node *map, const char *key, bool *out);
/* fr_node_get_double also takes an integer (converted). */
int fr_node_get_double(const fr_node *map, const char *key, double *out);

/* Writes n (and everything below it) with pk, in canonical form: smallest
 * encodings, map pairs in stored order. Returns 0 or FR_ENOMEM. */
int fr_node_pack(const fr_node *n, msgpack_packer *pk);

/* Writes n as JSON text to f (for the command line's --json and for logs);
 * BIN becomes a base64 string. Returns 0 or FR_EIO. */
#include <stdio.h>
int fr_node_write_json(const fr_node *n, FILE *f);

#endif
