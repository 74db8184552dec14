/* A small, strict JSON reader for the ResourceManager's REST answers.
 *
 * RFC 8259 only: no comments, no trailing commas, no NaN, no leading
 * zeros, no bytes after the value but whitespace; strings must be valid
 * UTF-8 without raw control characters, \u escapes must pair surrogates.
 * The parser is iterative (no recursion): nesting deeper than
 * YARN_JSON_MAX_DEPTH or more than YARN_JSON_MAX_NODES values are refused,
 * so any input costs time and memory linear in its size.
 * Member names are not checked for duplicates; lookups find the first.
 *
 * Ownership: yarn_json_parse fills a caller-owned yarn_json_doc whose
 * nodes and strings the doc owns; yarn_json_free releases them (safe on a
 * zeroed doc and on one a failed parse left behind). The input is not
 * referenced after the call. Node pointers stay valid until the free. */
#ifndef YARN_JSON_H
#define YARN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fresco/err.h"

#define YARN_JSON_MAX_DEPTH 128
#define YARN_JSON_MAX_NODES (1u << 20)
#define YARN_JSON_NONE      UINT32_MAX

typedef enum yarn_json_type {
    YARN_JSON_NULL,
    YARN_JSON_BOOL,
    YARN_JSON_NUMBER,
    YARN_JSON_STRING,
    YARN_JSON_ARRAY,
    YARN_JSON_OBJECT,
} yarn_json_type;

typedef struct yarn_json_node {
    yarn_json_type type;
    uint32_t next;   /* next sibling's index, or YARN_JSON_NONE */
    uint32_t first;  /* ARRAY/OBJECT: first child's index, or YARN_JSON_NONE */
    uint32_t count;  /* ARRAY/OBJECT: number of children */
    const char *key; /* member name (NUL-terminated) in an object; NULL otherwise */
    size_t key_len;
    bool b;        /* BOOL */
    bool is_int;   /* NUMBER written without fraction or exponent, fits int64 */
    int64_t i;     /* NUMBER when is_int */
    double d;      /* NUMBER, always */
    const char *s; /* STRING (NUL-terminated; may hold \u0000 inside) */
    size_t len;    /* STRING length in bytes */
} yarn_json_node;

typedef struct yarn_json_doc {
    yarn_json_node *nodes; /* nodes[0] is the root */
    uint32_t nnodes, cap;
    char *strings; /* decoded strings, back to back */
} yarn_json_doc;

/* Parses exactly len bytes. Returns 0, or FR_ENOMEM, FR_EDEPTH, FR_ETOOBIG
 * (too many values), FR_ETRUNC (input ends inside a value), FR_ETRAILING,
 * FR_EINVAL (anything else) with err->message saying what was expected at
 * which line:column ("line 3 column 7: expected ':' after a member name")
 * and err->where "line:column". */
int yarn_json_parse(const char *text, size_t len, yarn_json_doc *doc, fr_error *err);

void yarn_json_free(yarn_json_doc *doc);

/* The root value; NULL for a doc that holds none. */
const yarn_json_node *yarn_json_root(const yarn_json_doc *doc);

/* The first member named key of obj; NULL when obj is NULL, not an
 * object, or has no such member. */
const yarn_json_node *yarn_json_get(const yarn_json_doc *doc, const yarn_json_node *obj,
                                    const char *key);

/* Children of an array or object in order: first, then next until NULL. */
const yarn_json_node *yarn_json_first(const yarn_json_doc *doc, const yarn_json_node *n);
const yarn_json_node *yarn_json_next(const yarn_json_doc *doc, const yarn_json_node *n);

/* "null", "bool", "number", "string", "array", "object". */
const char *yarn_json_type_name(yarn_json_type t);

#endif
