/* Generic msgpack documents: a strict, bounded decoder into a node tree,
 * canonical re-packing and JSON output.
 *
 * Decoding walks the input twice with the same code: the first walk
 * validates everything and counts nodes and string bytes, the second fills
 * one allocation of exactly that size. Nothing is allocated for a claim the
 * input cannot back. */
#include "fresco/mpdoc.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/metric.h"

/* ---- decoder ---- */

typedef struct doc_seg {
    const char *key; /* map member: key bytes; NULL for an array index */
    uint32_t klen;
    uint32_t index;
} doc_seg;

typedef struct doc_dec {
    const uint8_t *p;
    const uint8_t *end;
    fr_error *err;
    /* first walk: counts; second walk: where things go */
    bool build;
    size_t nnodes;
    size_t nstr;
    fr_node *nodes;
    size_t next_node;
    char *strs;
    /* path of the value being read */
    doc_seg path[FR_DOC_MAX_DEPTH + 1];
    int depth;
} doc_dec;

static void doc_where(const doc_dec *d, char *w, size_t cap)
{
    size_t pos = 0;
    w[0] = '\0';
    for (int i = 0; i < d->depth && pos + 1 < cap; i++) {
        const doc_seg *s = &d->path[i];
        if (s->key != NULL) {
            if (i > 0) {
                w[pos++] = '.';
            }
            for (uint32_t j = 0; j < s->klen && j < 64 && pos + 1 < cap; j++) {
                unsigned char c = (unsigned char)s->key[j];
                w[pos++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
            }
            w[pos] = '\0';
        } else {
            int n = snprintf(w + pos, cap - pos, "[%" PRIu32 "]", s->index);
            if (n < 0 || (size_t)n >= cap - pos) {
                w[cap - 1] = '\0';
                return;
            }
            pos += (size_t)n;
        }
    }
}

__attribute__((cold, noinline, format(printf, 3, 4))) static int doc_fail(doc_dec *d, int code,
                                                                          const char *fmt, ...)
{
    if (d->err == NULL) {
        return code;
    }
    char where[sizeof(d->err->where)];
    char what[200];
    doc_where(d, where, sizeof(where));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return fr_error_set(d->err, code, where, "%s%s%s", where, where[0] ? ": " : "", what);
}

static int doc_trunc(doc_dec *d)
{
    return doc_fail(d, FR_ETRUNC, "the message ends inside this value");
}

static size_t doc_left(const doc_dec *d)
{
    return (size_t)(d->end - d->p);
}

static uint32_t be(const uint8_t *p, unsigned width)
{
    uint32_t x = 0;
    for (unsigned i = 0; i < width; i++) {
        x = x << 8 | p[i];
    }
    return x;
}

static uint64_t be64(const uint8_t *p)
{
    return (uint64_t)be(p, 4) << 32 | be(p + 4, 4);
}

/* Reads width bytes into *out, big-endian. */
static int doc_take(doc_dec *d, unsigned width, const uint8_t **out)
{
    if (doc_left(d) < width) {
        return doc_trunc(d);
    }
    *out = d->p;
    d->p += width;
    return 0;
}

static int doc_count_node(doc_dec *d)
{
    if (d->nnodes >= FR_DOC_MAX_NODES) {
        return doc_fail(d, FR_ETOOBIG, "more than %u values in one document", FR_DOC_MAX_NODES);
    }
    d->nnodes++;
    return 0;
}

/* Reserves n consecutive nodes for a container's children. */
static fr_node *doc_children(doc_dec *d, size_t n)
{
    fr_node *c = &d->nodes[d->next_node];
    d->next_node += n;
    return c;
}

static int doc_bytes(doc_dec *d, fr_node *n, fr_node_type type, uint32_t len)
{
    if (len > FR_MAX_STRING) {
        return doc_fail(d, FR_ETOOBIG, "%s of %" PRIu32 " bytes is over the limit of %u",
                        type == FR_NODE_STR ? "a string" : "binary data", len, FR_MAX_STRING);
    }
    if (doc_left(d) < len) {
        return doc_trunc(d);
    }
    if (d->build) {
        char *s = d->strs;
        memcpy(s, d->p, len);
        s[len] = '\0';
        d->strs += len + 1;
        n->type = type;
        n->len = len;
        n->v.str = s;
    } else {
        d->nstr += (size_t)len + 1;
    }
    d->p += len;
    return 0;
}

static bool key_equal(const fr_node *a, const fr_node *b)
{
    return a->len == b->len && memcmp(a->v.str, b->v.str, a->len) == 0;
}

static uint32_t key_hash(const fr_node *k)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < k->len; i++) {
        h = (h ^ (unsigned char)k->v.str[i]) * 16777619u;
    }
    return h;
}

/* Index of the first key repeating an earlier one, -1 when none, or
 * FR_ENOMEM (less than -1). */
static int64_t map_find_dup(const fr_node *kv, uint32_t n)
{
    if (n <= 16) {
        for (uint32_t i = 1; i < n; i++) {
            for (uint32_t j = 0; j < i; j++) {
                if (key_equal(&kv[2 * i], &kv[2 * j])) {
                    return i;
                }
            }
        }
        return -1;
    }
    size_t size = 32;
    while (size < 2 * (size_t)n) {
        size *= 2;
    }
    uint32_t *slot = calloc(size, sizeof(*slot));
    if (slot == NULL) {
        return FR_ENOMEM;
    }
    int64_t dup = -1;
    for (uint32_t i = 0; i < n && dup < 0; i++) {
        size_t h = key_hash(&kv[2 * i]) & (size - 1);
        while (slot[h] != 0) {
            if (key_equal(&kv[2 * (slot[h] - 1)], &kv[2 * i])) {
                dup = i;
                break;
            }
            h = (h + 1) & (size - 1);
        }
        slot[h] = i + 1;
    }
    free(slot);
    return dup;
}

static int doc_value(doc_dec *d, fr_node *n, int level);

static int doc_array(doc_dec *d, fr_node *n, uint32_t count, int level)
{
    if (count > doc_left(d)) {
        return doc_fail(d, FR_ETRUNC,
                        "an array of %" PRIu32 " values claimed but only %zu bytes remain", count,
                        doc_left(d));
    }
    fr_node *c = NULL;
    if (d->build) {
        c = doc_children(d, count);
        n->type = FR_NODE_ARRAY;
        n->len = count;
        n->v.arr = c;
    }
    doc_seg *seg = &d->path[d->depth++];
    seg->key = NULL;
    for (uint32_t i = 0; i < count; i++) {
        seg->index = i;
        int rv = doc_value(d, c != NULL ? &c[i] : NULL, level);
        if (rv != 0) {
            return rv;
        }
    }
    d->depth--;
    return 0;
}

/* Reads a map key, which must be a string; *kp points at its bytes in the
 * input, for the path. */
static int doc_key(doc_dec *d, fr_node *k, const char **kp, uint32_t *kl)
{
    fr_node scratch;
    int rv;
    if (k == NULL) {
        if ((rv = doc_count_node(d)) != 0) {
            return rv;
        }
        k = &scratch;
    }
    if (d->p == d->end) {
        return doc_trunc(d);
    }
    uint8_t b = *d->p;
    uint32_t len;
    if (b >= 0xa0 && b <= 0xbf) {
        d->p++;
        len = b & 0x1f;
    } else if (b >= 0xd9 && b <= 0xdb) {
        const uint8_t *q = NULL;
        unsigned width = 1u << (b - 0xd9);
        d->p++;
        if ((rv = doc_take(d, width, &q)) != 0) {
            return rv;
        }
        len = be(q, width);
    } else {
        return doc_fail(d, FR_ETYPE, "map keys must be strings");
    }
    *kp = (const char *)d->p;
    *kl = len;
    return doc_bytes(d, k, FR_NODE_STR, len);
}

static int doc_map(doc_dec *d, fr_node *n, uint32_t count, int level)
{
    if ((uint64_t)count * 2 > doc_left(d)) {
        return doc_fail(d, FR_ETRUNC,
                        "a map of %" PRIu32 " pairs claimed but only %zu bytes remain", count,
                        doc_left(d));
    }
    fr_node *kv = NULL;
    if (d->build) {
        kv = doc_children(d, 2 * (size_t)count);
        n->type = FR_NODE_MAP;
        n->len = count;
        n->v.kv = kv;
    }
    doc_seg *seg = &d->path[d->depth];
    for (uint32_t i = 0; i < count; i++) {
        /* A key that fails is reported at the map's own path. */
        const char *key = NULL;
        uint32_t klen = 0;
        int rv = doc_key(d, kv != NULL ? &kv[2 * i] : NULL, &key, &klen);
        if (rv != 0) {
            return rv;
        }
        seg->key = key;
        seg->klen = klen;
        d->depth++;
        rv = doc_value(d, kv != NULL ? &kv[2 * i + 1] : NULL, level);
        d->depth--;
        if (rv != 0) {
            return rv;
        }
    }
    if (kv != NULL) {
        int64_t dup = map_find_dup(kv, count);
        if (dup < -1) {
            return doc_fail(d, FR_ENOMEM, "out of memory");
        }
        if (dup >= 0) {
            seg->key = kv[2 * dup].v.str;
            seg->klen = kv[2 * dup].len;
            d->depth++;
            return doc_fail(d, FR_EDUP, "key given twice");
        }
    }
    return 0;
}

/* Reads one value into n (NULL on the counting walk). level counts the
 * containers around it. */
static int doc_value(doc_dec *d, fr_node *n, int level)
{
    fr_node scratch;
    if (n == NULL) {
        int rv = doc_count_node(d);
        if (rv != 0) {
            return rv;
        }
        n = &scratch;
    }
    if (d->p == d->end) {
        return doc_trunc(d);
    }
    const uint8_t *q = NULL;
    uint8_t b = *d->p++;
    int rv = 0;
    n->len = 0;
    if (b <= 0x7f) {
        n->type = FR_NODE_UINT;
        n->v.u = b;
        return 0;
    }
    if (b >= 0xe0) {
        n->type = FR_NODE_INT;
        n->v.i = (int8_t)b;
        return 0;
    }
    if (b <= 0x9f || (b >= 0xdc && b <= 0xdf)) {
        uint32_t count;
        bool is_map = b <= 0x8f || b >= 0xde;
        if (b <= 0x9f) {
            count = b & 0x0f;
        } else {
            unsigned width = (b & 1) ? 4 : 2;
            if ((rv = doc_take(d, width, &q)) != 0) {
                return rv;
            }
            count = be(q, width);
        }
        if (level >= FR_DOC_MAX_DEPTH) {
            return doc_fail(d, FR_EDEPTH, "nesting deeper than %d", FR_DOC_MAX_DEPTH);
        }
        return is_map ? doc_map(d, n, count, level + 1) : doc_array(d, n, count, level + 1);
    }
    if (b <= 0xbf) {
        return doc_bytes(d, n, FR_NODE_STR, b & 0x1f);
    }
    switch (b) {
    case 0xc0:
        n->type = FR_NODE_NIL;
        return 0;
    case 0xc2:
    case 0xc3:
        n->type = FR_NODE_BOOL;
        n->v.b = b == 0xc3;
        return 0;
    case 0xc4:
    case 0xc5:
    case 0xc6:
    case 0xd9:
    case 0xda:
    case 0xdb: {
        unsigned width = b <= 0xc6 ? 1u << (b - 0xc4) : 1u << (b - 0xd9);
        if ((rv = doc_take(d, width, &q)) != 0) {
            return rv;
        }
        return doc_bytes(d, n, b <= 0xc6 ? FR_NODE_BIN : FR_NODE_STR, be(q, width));
    }
    case 0xca:
    case 0xcb: {
        if ((rv = doc_take(d, b == 0xca ? 4 : 8, &q)) != 0) {
            return rv;
        }
        n->type = FR_NODE_FLOAT;
        if (b == 0xca) {
            uint32_t bits = be(q, 4);
            float f;
            memcpy(&f, &bits, sizeof(f));
            n->v.f = f;
        } else {
            uint64_t bits = be64(q);
            memcpy(&n->v.f, &bits, sizeof(bits));
        }
        return 0;
    }
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        unsigned width = 1u << ((b - 0xcc) & 3);
        if ((rv = doc_take(d, width, &q)) != 0) {
            return rv;
        }
        uint64_t u = width == 8 ? be64(q) : be(q, width);
        if (b <= 0xcf) {
            n->type = FR_NODE_UINT;
            n->v.u = u;
            return 0;
        }
        int64_t x = width == 1   ? (int8_t)u
                    : width == 2 ? (int16_t)u
                    : width == 4 ? (int32_t)u
                                 : (int64_t)u;
        /* Canonical: a non-negative value is UINT whatever its format. */
        if (x >= 0) {
            n->type = FR_NODE_UINT;
            n->v.u = (uint64_t)x;
        } else {
            n->type = FR_NODE_INT;
            n->v.i = x;
        }
        return 0;
    }
    case 0xc1:
        d->p--;
        return doc_fail(d, FR_EINVAL, "the byte 0xc1 is not msgpack");
    default:
        d->p--;
        return doc_fail(d, FR_EUNSUPPORTED, "msgpack extension types are not accepted");
    }
}

static int doc_walk(doc_dec *d, const uint8_t *data, size_t len, fr_node *root)
{
    d->p = data;
    d->end = data + len;
    d->depth = 0;
    if (root != NULL) {
        d->next_node = 1;
    }
    int rv = doc_value(d, root, 0);
    if (rv != 0) {
        return rv;
    }
    if (d->p != d->end) {
        d->depth = 0;
        return doc_fail(d, FR_ETRAILING, "%zu bytes after the document", doc_left(d));
    }
    return 0;
}

int fr_doc_decode(const void *data, size_t len, fr_doc *doc, fr_error *err)
{
    doc->root = NULL;
    doc->mem = NULL;
    fr_error_clear(err);
    if (len > FR_MAX_MESSAGE) {
        return fr_error_set(err, FR_ETOOBIG, "", "a document of %zu bytes is over the limit of %u",
                            len, FR_MAX_MESSAGE);
    }
    doc_dec d = {.err = err};
    int rv = doc_walk(&d, data, len, NULL);
    if (rv != 0) {
        return rv;
    }
    size_t node_bytes = d.nnodes * sizeof(fr_node);
    void *mem = malloc(node_bytes + d.nstr);
    if (mem == NULL) {
        return fr_error_set(err, FR_ENOMEM, "", "out of memory");
    }
    d.build = true;
    d.nodes = mem;
    d.strs = (char *)mem + node_bytes;
    if ((rv = doc_walk(&d, data, len, &d.nodes[0])) != 0) {
        free(mem);
        return rv;
    }
    doc->mem = mem;
    doc->root = &d.nodes[0];
    return 0;
}

void fr_doc_free(fr_doc *doc)
{
    if (doc != NULL) {
        free(doc->mem);
        doc->mem = NULL;
        doc->root = NULL;
    }
}

/* ---- lookups ---- */

const fr_node *fr_node_get(const fr_node *n, const char *key)
{
    if (n == NULL || n->type != FR_NODE_MAP || key == NULL) {
        return NULL;
    }
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < n->len; i++) {
        const fr_node *k = &n->v.kv[2 * i];
        if (k->type == FR_NODE_STR && k->len == klen && memcmp(k->v.str, key, klen) == 0) {
            return &n->v.kv[2 * i + 1];
        }
    }
    return NULL;
}

int fr_node_get_str(const fr_node *map, const char *key, const char **out)
{
    const fr_node *n = fr_node_get(map, key);
    if (n == NULL) {
        return FR_EMISSING;
    }
    if (n->type != FR_NODE_STR) {
        return FR_ETYPE;
    }
    *out = n->v.str;
    return 0;
}

int fr_node_get_i64(const fr_node *map, const char *key, int64_t *out)
{
    const fr_node *n = fr_node_get(map, key);
    if (n == NULL) {
        return FR_EMISSING;
    }
    if (n->type == FR_NODE_INT) {
        *out = n->v.i;
        return 0;
    }
    if (n->type == FR_NODE_UINT && n->v.u <= INT64_MAX) {
        *out = (int64_t)n->v.u;
        return 0;
    }
    return FR_ETYPE;
}

int fr_node_get_u64(const fr_node *map, const char *key, uint64_t *out)
{
    const fr_node *n = fr_node_get(map, key);
    if (n == NULL) {
        return FR_EMISSING;
    }
    if (n->type != FR_NODE_UINT) {
        return FR_ETYPE;
    }
    *out = n->v.u;
    return 0;
}

int fr_node_get_bool(const fr_node *map, const char *key, bool *out)
{
    const fr_node *n = fr_node_get(map, key);
    if (n == NULL) {
        return FR_EMISSING;
    }
    if (n->type != FR_NODE_BOOL) {
        return FR_ETYPE;
    }
    *out = n->v.b;
    return 0;
}

int fr_node_get_double(const fr_node *map, const char *key, double *out)
{
    const fr_node *n = fr_node_get(map, key);
    if (n == NULL) {
        return FR_EMISSING;
    }
    /* A number written as 3 in JSON or YAML arrives as an integer. */
    if (n->type == FR_NODE_FLOAT) {
        *out = n->v.f;
    } else if (n->type == FR_NODE_INT) {
        *out = (double)n->v.i;
    } else if (n->type == FR_NODE_UINT) {
        *out = (double)n->v.u;
    } else {
        return FR_ETYPE;
    }
    return 0;
}

/* ---- packing ---- */

int fr_node_pack(const fr_node *n, msgpack_packer *pk)
{
    int rv = 0;
    switch (n->type) {
    case FR_NODE_NIL:
        rv = msgpack_pack_nil(pk);
        break;
    case FR_NODE_BOOL:
        rv = n->v.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        break;
    case FR_NODE_INT:
        rv = msgpack_pack_int64(pk, n->v.i);
        break;
    case FR_NODE_UINT:
        rv = msgpack_pack_uint64(pk, n->v.u);
        break;
    case FR_NODE_FLOAT:
        rv = msgpack_pack_double(pk, n->v.f);
        break;
    case FR_NODE_STR:
        rv = msgpack_pack_str(pk, n->len);
        if (rv == 0) {
            rv = msgpack_pack_str_body(pk, n->v.str, n->len);
        }
        break;
    case FR_NODE_BIN:
        rv = msgpack_pack_bin(pk, n->len);
        if (rv == 0) {
            rv = msgpack_pack_bin_body(pk, n->v.str, n->len);
        }
        break;
    case FR_NODE_ARRAY:
        rv = msgpack_pack_array(pk, n->len);
        for (uint32_t i = 0; rv == 0 && i < n->len; i++) {
            rv = fr_node_pack(&n->v.arr[i], pk);
        }
        break;
    case FR_NODE_MAP:
        rv = msgpack_pack_map(pk, n->len);
        for (uint32_t i = 0; rv == 0 && i < 2 * n->len; i++) {
            rv = fr_node_pack(&n->v.kv[i], pk);
        }
        break;
    }
    return rv == 0 ? 0 : FR_ENOMEM;
}

/* ---- JSON ---- */

/* Output goes through a small buffer: a tree is many tiny writes. */
typedef struct json_out {
    FILE *f;
    size_t len;
    bool failed;
    char buf[4096];
} json_out;

static void json_flush(json_out *o)
{
    if (o->len > 0 && !o->failed && fwrite(o->buf, 1, o->len, o->f) != o->len) {
        o->failed = true;
    }
    o->len = 0;
}

static void json_put(json_out *o, const char *s, size_t n)
{
    while (n > 0) {
        if (o->len == sizeof(o->buf)) {
            json_flush(o);
        }
        size_t k = sizeof(o->buf) - o->len;
        if (k > n) {
            k = n;
        }
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
    }
}

static void json_putc(json_out *o, char c)
{
    json_put(o, &c, 1);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;
    if (s[0] < 0x80) {
        return 1;
    } else if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = cp << 6 | (s[i] & 0x3f);
    }
    /* Overlong forms, UTF-16 surrogates and beyond U+10FFFF are not text. */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return len;
}

/* A JSON string: quotes, backslashes and control characters escaped;
 * bytes that are not UTF-8 become U+FFFD so the output stays valid. */
static void json_string(json_out *o, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    json_putc(o, '"');
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            size_t j = i + 1;
            while (j < n && s[j] >= 0x20 && s[j] != '"' && s[j] != '\\' && s[j] < 0x80) {
                j++;
            }
            json_put(o, str + i, j - i);
            i = j;
            continue;
        }
        char esc[8];
        switch (c) {
        case '"':
            json_put(o, "\\\"", 2);
            break;
        case '\\':
            json_put(o, "\\\\", 2);
            break;
        case '\n':
            json_put(o, "\\n", 2);
            break;
        case '\r':
            json_put(o, "\\r", 2);
            break;
        case '\t':
            json_put(o, "\\t", 2);
            break;
        case '\b':
            json_put(o, "\\b", 2);
            break;
        case '\f':
            json_put(o, "\\f", 2);
            break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                json_put(o, esc, 6);
            } else {
                size_t k = utf8_seq(s + i, n - i);
                if (k == 0) {
                    json_put(o, "\\ufffd", 6);
                    k = 1;
                } else {
                    json_put(o, str + i, k);
                }
                i += k;
                continue;
            }
        }
        i++;
    }
    json_putc(o, '"');
}

static void json_base64(json_out *o, const unsigned char *s, size_t n)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    json_putc(o, '"');
    for (size_t i = 0; i < n; i += 3) {
        uint32_t x = (uint32_t)s[i] << 16;
        if (i + 1 < n) {
            x |= (uint32_t)s[i + 1] << 8;
        }
        if (i + 2 < n) {
            x |= s[i + 2];
        }
        char q[4] = {alphabet[x >> 18 & 63], alphabet[x >> 12 & 63],
                     i + 1 < n ? alphabet[x >> 6 & 63] : '=', i + 2 < n ? alphabet[x & 63] : '='};
        json_put(o, q, 4);
    }
    json_putc(o, '"');
}

/* The shortest text that reads back as the same double, marked as a float
 * (a ".0" on integral values) so that readers keep its type. */
static void json_double(json_out *o, double d)
{
    if (!isfinite(d)) {
        json_put(o, "null", 4);
        return;
    }
    char s[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(s, sizeof(s), "%.*g", prec, d);
        if (strtod(s, NULL) == d) {
            break;
        }
    }
    json_put(o, s, strlen(s));
    if (strpbrk(s, ".e") == NULL) {
        json_put(o, ".0", 2);
    }
}

static void json_node(json_out *o, const fr_node *n);

/* JSON keys are strings; a hand-built map may hold other keys, which are
 * written as the text of their value. */
static void json_key(json_out *o, const fr_node *k)
{
    if (k->type == FR_NODE_STR || k->type == FR_NODE_BIN) {
        json_node(o, k);
        return;
    }
    json_putc(o, '"');
    if (k->type != FR_NODE_ARRAY && k->type != FR_NODE_MAP) {
        json_node(o, k);
    }
    json_putc(o, '"');
}

static void json_node(json_out *o, const fr_node *n)
{
    char num[32];
    int len;
    switch (n->type) {
    case FR_NODE_NIL:
        json_put(o, "null", 4);
        break;
    case FR_NODE_BOOL:
        if (n->v.b) {
            json_put(o, "true", 4);
        } else {
            json_put(o, "false", 5);
        }
        break;
    case FR_NODE_INT:
        len = snprintf(num, sizeof(num), "%" PRId64, n->v.i);
        json_put(o, num, (size_t)len);
        break;
    case FR_NODE_UINT:
        len = snprintf(num, sizeof(num), "%" PRIu64, n->v.u);
        json_put(o, num, (size_t)len);
        break;
    case FR_NODE_FLOAT:
        json_double(o, n->v.f);
        break;
    case FR_NODE_STR:
        json_string(o, n->v.str, n->len);
        break;
    case FR_NODE_BIN:
        json_base64(o, (const unsigned char *)n->v.str, n->len);
        break;
    case FR_NODE_ARRAY:
        json_putc(o, '[');
        for (uint32_t i = 0; i < n->len; i++) {
            if (i > 0) {
                json_putc(o, ',');
            }
            json_node(o, &n->v.arr[i]);
        }
        json_putc(o, ']');
        break;
    case FR_NODE_MAP:
        json_putc(o, '{');
        for (uint32_t i = 0; i < n->len; i++) {
            const fr_node *k = &n->v.kv[2 * i];
            if (i > 0) {
                json_putc(o, ',');
            }
            json_key(o, k);
            json_putc(o, ':');
            json_node(o, &n->v.kv[2 * i + 1]);
        }
        json_putc(o, '}');
        break;
    }
}

int fr_node_write_json(const fr_node *n, FILE *f)
{
    json_out o = {.f = f};
    json_node(&o, n);
    json_flush(&o);
    return o.failed || ferror(f) ? FR_EIO : 0;
}
