/* Node metadata of an HPC job: a strict JSON reader and canonical writer,
 * the per-node collector, the job-level merge and the drift report. */
#include "nodemeta.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ================================================================
 * JSON tree
 * ================================================================ */

typedef struct hpc_json_member hpc_json_member;

struct hpc_json {
    unsigned char type;    /* hpc_json_type */
    unsigned char is_root; /* set only on a tree's root, which heads its doc */
    unsigned char boolean;
    size_t len; /* string or number bytes, array items, object members */
    union {
        char *s; /* string or number text, NUL-terminated */
        hpc_json *items;
        hpc_json_member *members; /* sorted by key */
    } u;
};

struct hpc_json_member {
    char *key;
    size_t klen;
    size_t pos; /* byte offset of the key's quote in the parsed text */
    hpc_json val;
};

/* All values, keys and strings of one tree come from one arena, freed at
 * once with the tree. */
typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    max_align_t data[];
} arena_block;

typedef struct arena {
    arena_block *head;
} arena;

typedef struct json_doc {
    hpc_json root; /* first, so a root pointer is its doc's pointer */
    arena a;
} json_doc;

#define ARENA_BLOCK (64u * 1024)

static void *arena_alloc(arena *a, size_t n)
{
    const size_t al = alignof(max_align_t);
    if (n > SIZE_MAX - al - sizeof(arena_block)) {
        return NULL;
    }
    n = (n + al - 1) & ~(al - 1);
    arena_block *b = a->head;
    if (b != NULL && b->cap - b->used >= n) {
        void *p = (char *)b->data + b->used;
        b->used += n;
        return p;
    }
    size_t cap = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK;
    arena_block *nb = malloc(sizeof(*nb) + cap);
    if (nb == NULL) {
        return NULL;
    }
    nb->cap = cap;
    nb->used = n;
    if (b != NULL && cap != ARENA_BLOCK) {
        /* a big one-off: keep filling the current block */
        nb->next = b->next;
        b->next = nb;
    } else {
        nb->next = b;
        a->head = nb;
    }
    return nb->data;
}

static void arena_free(arena *a)
{
    arena_block *b = a->head;
    while (b != NULL) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

static char *arena_strdup(arena *a, const void *p, size_t n)
{
    if (n == SIZE_MAX) {
        return NULL;
    }
    char *s = arena_alloc(a, n + 1);
    if (s != NULL) {
        if (n > 0) {
            memcpy(s, p, n);
        }
        s[n] = '\0';
    }
    return s;
}

void hpc_json_free(hpc_json *j)
{
    if (j == NULL || !j->is_root) {
        return;
    }
    json_doc *d = (json_doc *)j;
    arena_free(&d->a);
    free(d);
}

hpc_json_type hpc_json_type_of(const hpc_json *j)
{
    return j != NULL ? (hpc_json_type)j->type : HPC_JSON_NULL;
}

size_t hpc_json_count(const hpc_json *j)
{
    if (j == NULL || (j->type != HPC_JSON_ARRAY && j->type != HPC_JSON_OBJECT)) {
        return 0;
    }
    return j->len;
}

const hpc_json *hpc_json_at(const hpc_json *j, size_t i)
{
    if (j == NULL || i >= hpc_json_count(j)) {
        return NULL;
    }
    return j->type == HPC_JSON_ARRAY ? &j->u.items[i] : &j->u.members[i].val;
}

const char *hpc_json_key_at(const hpc_json *j, size_t i, size_t *len)
{
    if (j == NULL || j->type != HPC_JSON_OBJECT || i >= j->len) {
        return NULL;
    }
    if (len != NULL) {
        *len = j->u.members[i].klen;
    }
    return j->u.members[i].key;
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n > 0 ? memcmp(a, b, n) : 0;
    if (c != 0) {
        return c;
    }
    return alen < blen ? -1 : alen > blen;
}

static const hpc_json *json_get_n(const hpc_json *j, const char *key, size_t klen)
{
    if (j == NULL || j->type != HPC_JSON_OBJECT) {
        return NULL;
    }
    size_t lo = 0, hi = j->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const hpc_json_member *m = &j->u.members[mid];
        int c = key_cmp(m->key, m->klen, key, klen);
        if (c == 0) {
            return &m->val;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return NULL;
}

const hpc_json *hpc_json_get(const hpc_json *j, const char *key)
{
    return key != NULL ? json_get_n(j, key, strlen(key)) : NULL;
}

const char *hpc_json_str(const hpc_json *j, size_t *len)
{
    if (j == NULL || j->type != HPC_JSON_STRING) {
        return NULL;
    }
    if (len != NULL) {
        *len = j->len;
    }
    return j->u.s;
}

const char *hpc_json_number_text(const hpc_json *j)
{
    return j != NULL && j->type == HPC_JSON_NUMBER ? j->u.s : NULL;
}

int hpc_json_int64(const hpc_json *j, int64_t *v)
{
    const char *s = hpc_json_number_text(j);
    if (s == NULL || strpbrk(s, ".eE") != NULL) {
        return FR_ETYPE;
    }
    bool neg = s[0] == '-';
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t acc = 0;
    for (const char *p = s + neg; *p != '\0'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (acc > (limit - d) / 10) {
            return FR_ETYPE;
        }
        acc = acc * 10 + d;
    }
    if (neg) {
        *v = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
    } else {
        *v = (int64_t)acc;
    }
    return 0;
}

bool hpc_json_bool(const hpc_json *j)
{
    return j != NULL && j->type == HPC_JSON_BOOL && j->boolean;
}

bool hpc_json_equal(const hpc_json *a, const hpc_json *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    if (a->type != b->type) {
        return false;
    }
    switch (a->type) {
    case HPC_JSON_NULL:
        return true;
    case HPC_JSON_BOOL:
        return a->boolean == b->boolean;
    case HPC_JSON_NUMBER:
    case HPC_JSON_STRING:
        return a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0;
    case HPC_JSON_ARRAY:
        if (a->len != b->len) {
            return false;
        }
        for (size_t i = 0; i < a->len; i++) {
            if (!hpc_json_equal(&a->u.items[i], &b->u.items[i])) {
                return false;
            }
        }
        return true;
    case HPC_JSON_OBJECT:
        if (a->len != b->len) {
            return false;
        }
        for (size_t i = 0; i < a->len; i++) {
            const hpc_json_member *ma = &a->u.members[i], *mb = &b->u.members[i];
            if (key_cmp(ma->key, ma->klen, mb->key, mb->klen) != 0 ||
                !hpc_json_equal(&ma->val, &mb->val)) {
                return false;
            }
        }
        return true;
    default:
        return false;
    }
}

/* ================================================================
 * UTF-8
 * ================================================================ */

/* Length of the well-formed UTF-8 sequence at p (Unicode table 3-7: no
 * overlongs, no surrogates, nothing above U+10FFFF), or 0. *cp gets the
 * code point. */
static size_t utf8_decode(const unsigned char *p, size_t avail, uint32_t *cp)
{
    if (avail == 0) {
        return 0;
    }
    unsigned c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) {
            lo = 0xA0;
        } else if (c == 0xED) {
            hi = 0x9F;
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) {
            lo = 0x90;
        } else if (c == 0xF4) {
            hi = 0x8F;
        }
    } else {
        return 0;
    }
    if (avail < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    uint32_t v = c & (0xFFu >> (n + 1));
    v = (v << 6) | (p[1] & 0x3F);
    for (size_t i = 2; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
        v = (v << 6) | (p[i] & 0x3F);
    }
    *cp = v;
    return n;
}

static bool utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cp;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_decode(p + i, len - i, &cp);
        if (n == 0) {
            return false;
        }
        i += n;
    }
    return true;
}

static size_t utf8_encode(uint32_t cp, unsigned char *o)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ================================================================
 * Writer
 * ================================================================ */

/* Appends with a sticky error, so a long run of puts is checked once. */
typedef struct writer {
    fr_buf *b;
    int rv;
} writer;

static void w_put(writer *w, const void *p, size_t n)
{
    if (w->rv == 0) {
        w->rv = fr_buf_append(w->b, p, n);
    }
}

static void w_str(writer *w, const char *s)
{
    w_put(w, s, strlen(s));
}

static void w_printf(writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void w_printf(writer *w, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof(tmp)) {
        w_put(w, tmp, (size_t)n);
    }
}

/* The string's characters with JSON escapes, pure ASCII, no quotes. Bytes
 * that are not well-formed UTF-8 become U+FFFD, one per byte. */
static void w_escaped(writer *w, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t run = 0; /* bytes of plain ASCII waiting to be copied */
    for (size_t i = 0; i < len;) {
        unsigned c = p[i];
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            run++;
            i++;
            continue;
        }
        w_put(w, p + i - run, run);
        run = 0;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            w_put(w, esc, 2);
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = utf8_decode(p + i, len - i, &cp);
        if (n == 0) {
            cp = 0xFFFD;
            n = 1;
        }
        i += n;
        uint32_t units[2] = {cp, 0};
        size_t nunits = 1;
        if (cp >= 0x10000) {
            units[0] = 0xD800 + ((cp - 0x10000) >> 10);
            units[1] = 0xDC00 + ((cp - 0x10000) & 0x3FF);
            nunits = 2;
        }
        for (size_t k = 0; k < nunits; k++) {
            char esc[6] = {'\\',
                           'u',
                           hex[(units[k] >> 12) & 0xF],
                           hex[(units[k] >> 8) & 0xF],
                           hex[(units[k] >> 4) & 0xF],
                           hex[units[k] & 0xF]};
            w_put(w, esc, sizeof(esc));
        }
    }
    w_put(w, p + len - run, run);
}

static void w_string(writer *w, const char *s, size_t len)
{
    w_put(w, "\"", 1);
    w_escaped(w, s, len);
    w_put(w, "\"", 1);
}

static void w_indent(writer *w, int level)
{
    static const char spaces[] = "                                ";
    size_t n = (size_t)level * 2;
    while (n > 0) {
        size_t k = n < sizeof(spaces) - 1 ? n : sizeof(spaces) - 1;
        w_put(w, spaces, k);
        n -= k;
    }
}

/* level < 0: compact, on one line. */
static void w_value(writer *w, const hpc_json *j, int level)
{
    bool pretty = level >= 0;
    switch (j->type) {
    case HPC_JSON_NULL:
        w_str(w, "null");
        break;
    case HPC_JSON_BOOL:
        w_str(w, j->boolean ? "true" : "false");
        break;
    case HPC_JSON_NUMBER:
        w_put(w, j->u.s, j->len);
        break;
    case HPC_JSON_STRING:
        w_string(w, j->u.s, j->len);
        break;
    case HPC_JSON_ARRAY:
    case HPC_JSON_OBJECT: {
        bool obj = j->type == HPC_JSON_OBJECT;
        if (j->len == 0) {
            w_str(w, obj ? "{}" : "[]");
            break;
        }
        w_str(w, obj ? "{" : "[");
        for (size_t i = 0; i < j->len; i++) {
            if (i > 0) {
                w_str(w, pretty ? "," : ", ");
            }
            if (pretty) {
                w_str(w, "\n");
                w_indent(w, level + 1);
            }
            const hpc_json *v;
            if (obj) {
                const hpc_json_member *m = &j->u.members[i];
                w_string(w, m->key, m->klen);
                w_str(w, ": ");
                v = &m->val;
            } else {
                v = &j->u.items[i];
            }
            w_value(w, v, pretty ? level + 1 : -1);
        }
        if (pretty) {
            w_str(w, "\n");
            w_indent(w, level);
        }
        w_str(w, obj ? "}" : "]");
        break;
    }
    default:
        break;
    }
}

int hpc_json_write(const hpc_json *j, fr_buf *out)
{
    if (j == NULL || out == NULL) {
        return FR_EINVAL;
    }
    size_t mark = out->len;
    writer w = {out, 0};
    w_value(&w, j, 0);
    w_str(&w, "\n");
    if (w.rv != 0) {
        out->len = mark;
    }
    return w.rv;
}

/* ================================================================
 * Parser
 * ================================================================ */

typedef struct parser {
    const unsigned char *start, *p, *end;
    arena *a;
    hpc_json_member *stack; /* finished children of the open containers */
    size_t sn, scap;
    fr_buf sbuf; /* a string being decoded */
    int depth;
    fr_error *e;
} parser;

static void where_of(const unsigned char *start, const unsigned char *at, char *where, size_t n)
{
    size_t line = 1, col = 1;
    for (const unsigned char *q = start; q < at; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    snprintf(where, n, "%zu:%zu", line, col);
}

static int perr(parser *ps, const unsigned char *at, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int perr(parser *ps, const unsigned char *at, int code, const char *fmt, ...)
{
    char where[48], msg[224];
    where_of(ps->start, at, where, sizeof(where));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return fr_error_set(ps->e, code, where, "%s", msg);
}

/* How a byte is shown in a message: 'x' when printable, else 0xNN. */
static const char *show_byte(unsigned c, char buf[8])
{
    if (c >= 0x21 && c < 0x7F) {
        snprintf(buf, 8, "'%c'", (char)c);
    } else if (c == ' ') {
        snprintf(buf, 8, "a space");
    } else {
        snprintf(buf, 8, "0x%02X", c);
    }
    return buf;
}

static int p_oom(parser *ps)
{
    return perr(ps, ps->p, FR_ENOMEM, "out of memory while parsing");
}

static void p_skip_ws(parser *ps)
{
    while (ps->p < ps->end &&
           (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) {
        ps->p++;
    }
}

static int p_push(parser *ps, const hpc_json_member *m)
{
    if (ps->sn == ps->scap) {
        size_t cap = ps->scap ? ps->scap * 2 : 64;
        hpc_json_member *s = realloc(ps->stack, cap * sizeof(*s));
        if (s == NULL) {
            return p_oom(ps);
        }
        ps->stack = s;
        ps->scap = cap;
    }
    ps->stack[ps->sn++] = *m;
    return 0;
}

static int hex4(const unsigned char *p, uint32_t *v)
{
    uint32_t acc = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        unsigned d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;
        } else {
            return -1;
        }
        acc = (acc << 4) | d;
    }
    *v = acc;
    return 0;
}

/* At a '"': decodes the string into ps->sbuf. */
static int p_string_raw(parser *ps)
{
    const unsigned char *open = ps->p;
    fr_buf_reset(&ps->sbuf);
    ps->p++;
    for (;;) {
        const unsigned char *run = ps->p;
        while (ps->p < ps->end && *ps->p >= 0x20 && *ps->p < 0x80 && *ps->p != '"' &&
               *ps->p != '\\') {
            ps->p++;
        }
        if (fr_buf_append(&ps->sbuf, run, (size_t)(ps->p - run)) != 0) {
            return p_oom(ps);
        }
        if (ps->p == ps->end) {
            return perr(ps, open, FR_ETRUNC,
                        "unterminated string: the input ends before its closing '\"'");
        }
        unsigned c = *ps->p;
        if (c == '"') {
            ps->p++;
            return 0;
        }
        if (c < 0x20) {
            return perr(ps, ps->p, FR_EINVAL,
                        "control character U+%04X in a string; write it as \\u%04X", c, c);
        }
        if (c >= 0x80) {
            uint32_t cp;
            size_t n = utf8_decode(ps->p, (size_t)(ps->end - ps->p), &cp);
            if (n == 0) {
                return perr(ps, ps->p, FR_EINVAL,
                            "invalid UTF-8: byte 0x%02X does not start a well-formed sequence "
                            "(overlong, surrogate, above U+10FFFF or truncated)",
                            c);
            }
            if (fr_buf_append(&ps->sbuf, ps->p, n) != 0) {
                return p_oom(ps);
            }
            ps->p += n;
            continue;
        }
        /* a backslash */
        const unsigned char *esc = ps->p;
        if (ps->end - ps->p < 2) {
            return perr(ps, open, FR_ETRUNC,
                        "unterminated string: the input ends before its closing '\"'");
        }
        unsigned char one;
        switch (ps->p[1]) {
        case '"':
            one = '"';
            break;
        case '\\':
            one = '\\';
            break;
        case '/':
            one = '/';
            break;
        case 'b':
            one = '\b';
            break;
        case 'f':
            one = '\f';
            break;
        case 'n':
            one = '\n';
            break;
        case 'r':
            one = '\r';
            break;
        case 't':
            one = '\t';
            break;
        case 'u': {
            uint32_t cp;
            if (ps->end - ps->p < 6 || hex4(ps->p + 2, &cp) != 0) {
                return perr(ps, esc, FR_EINVAL, "\\u must be followed by four hex digits");
            }
            ps->p += 6;
            if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return perr(ps, esc, FR_EINVAL,
                            "lone surrogate \\u%04X: a low surrogate must follow a high one "
                            "(\\uD800-\\uDBFF)",
                            cp);
            }
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (ps->end - ps->p < 6 || ps->p[0] != '\\' || ps->p[1] != 'u' ||
                    hex4(ps->p + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF) {
                    return perr(ps, esc, FR_EINVAL,
                                "lone surrogate \\u%04X: a high surrogate must be followed by "
                                "a low one (\\uDC00-\\uDFFF)",
                                cp);
                }
                ps->p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            unsigned char u8[4];
            size_t n = utf8_encode(cp, u8);
            if (fr_buf_append(&ps->sbuf, u8, n) != 0) {
                return p_oom(ps);
            }
            continue;
        }
        default: {
            char sb[8];
            return perr(ps, esc, FR_EINVAL,
                        "invalid escape \\%s; allowed: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX",
                        show_byte(ps->p[1], sb));
        }
        }
        if (fr_buf_append(&ps->sbuf, &one, 1) != 0) {
            return p_oom(ps);
        }
        ps->p += 2;
    }
}

static int p_value(parser *ps, hpc_json *v);

static int member_cmp(const void *x, const void *y)
{
    const hpc_json_member *a = x, *b = y;
    int c = key_cmp(a->key, a->klen, b->key, b->klen);
    if (c != 0) {
        return c;
    }
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

static int p_container(parser *ps, hpc_json *v, bool obj)
{
    const unsigned char *open = ps->p;
    char close = obj ? '}' : ']';
    const char *what = obj ? "object" : "array";
    if (++ps->depth > HPC_JSON_MAX_DEPTH) {
        return perr(ps, open, FR_EDEPTH, "arrays and objects nest deeper than %d levels",
                    HPC_JSON_MAX_DEPTH);
    }
    ps->p++;
    size_t base = ps->sn;
    p_skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
    } else {
        for (;;) {
            hpc_json_member m;
            memset(&m, 0, sizeof(m));
            p_skip_ws(ps);
            if (obj) {
                if (ps->p == ps->end) {
                    return perr(ps, ps->p, FR_ETRUNC,
                                "the input ends inside an object where a key is expected");
                }
                if (*ps->p != '"') {
                    char sb[8];
                    return perr(ps, ps->p, FR_EINVAL,
                                "expected a string key in double quotes, found %s",
                                show_byte(*ps->p, sb));
                }
                m.pos = (size_t)(ps->p - ps->start);
                int rv = p_string_raw(ps);
                if (rv != 0) {
                    return rv;
                }
                m.klen = ps->sbuf.len;
                m.key = arena_strdup(ps->a, ps->sbuf.data, ps->sbuf.len);
                if (m.key == NULL) {
                    return p_oom(ps);
                }
                p_skip_ws(ps);
                if (ps->p == ps->end) {
                    return perr(ps, ps->p, FR_ETRUNC,
                                "the input ends after a key where ':' is expected");
                }
                if (*ps->p != ':') {
                    char sb[8];
                    return perr(ps, ps->p, FR_EINVAL, "expected ':' after the key, found %s",
                                show_byte(*ps->p, sb));
                }
                ps->p++;
            }
            int rv = p_value(ps, &m.val);
            if (rv != 0) {
                return rv;
            }
            if ((rv = p_push(ps, &m)) != 0) {
                return rv;
            }
            p_skip_ws(ps);
            if (ps->p == ps->end) {
                return perr(ps, ps->p, FR_ETRUNC,
                            "the input ends inside an %s where ',' or '%c' is expected", what,
                            close);
            }
            if (*ps->p == ',') {
                ps->p++;
                continue;
            }
            if (*ps->p == close) {
                ps->p++;
                break;
            }
            char sb[8];
            return perr(ps, ps->p, FR_EINVAL, "expected ',' or '%c' in an %s, found %s", close,
                        what, show_byte(*ps->p, sb));
        }
    }
    ps->depth--;
    size_t n = ps->sn - base;
    memset(v, 0, sizeof(*v));
    v->type = obj ? HPC_JSON_OBJECT : HPC_JSON_ARRAY;
    v->len = n;
    if (n == 0) {
        return 0;
    }
    if (obj) {
        hpc_json_member *ms = arena_alloc(ps->a, n * sizeof(*ms));
        if (ms == NULL) {
            return p_oom(ps);
        }
        memcpy(ms, ps->stack + base, n * sizeof(*ms));
        qsort(ms, n, sizeof(*ms), member_cmp);
        for (size_t i = 1; i < n; i++) {
            if (key_cmp(ms[i - 1].key, ms[i - 1].klen, ms[i].key, ms[i].klen) == 0) {
                char first[48];
                where_of(ps->start, ps->start + ms[i - 1].pos, first, sizeof(first));
                fr_buf_reset(&ps->sbuf);
                writer w = {&ps->sbuf, 0};
                w_escaped(&w, ms[i].key, ms[i].klen > 64 ? 64 : ms[i].klen);
                w_put(&w, "", 1);
                return perr(ps, ps->start + ms[i].pos, FR_EDUP,
                            "duplicate key \"%s\" in an object (first at %s); each key may "
                            "appear once",
                            w.rv == 0 ? (const char *)ps->sbuf.data : "?", first);
            }
        }
        v->u.members = ms;
    } else {
        hpc_json *items = arena_alloc(ps->a, n * sizeof(*items));
        if (items == NULL) {
            return p_oom(ps);
        }
        for (size_t i = 0; i < n; i++) {
            items[i] = ps->stack[base + i].val;
        }
        v->u.items = items;
    }
    ps->sn = base;
    return 0;
}

static bool is_digit(unsigned c)
{
    return c >= '0' && c <= '9';
}

static int p_number(parser *ps, hpc_json *v)
{
    const unsigned char *s = ps->p;
    if (*ps->p == '-') {
        ps->p++;
    }
    if (ps->p == ps->end || !is_digit(*ps->p)) {
        return perr(ps, s, FR_EINVAL, "'-' must be followed by a digit");
    }
    if (*ps->p == '0') {
        ps->p++;
        if (ps->p < ps->end && is_digit(*ps->p)) {
            return perr(ps, s, FR_EINVAL,
                        "number with a leading zero; write 0, or 0.x, or drop the zero");
        }
    } else {
        while (ps->p < ps->end && is_digit(*ps->p)) {
            ps->p++;
        }
    }
    if (ps->p < ps->end && *ps->p == '.') {
        ps->p++;
        if (ps->p == ps->end || !is_digit(*ps->p)) {
            return perr(ps, ps->p, FR_EINVAL, "a digit must follow the '.' of a number");
        }
        while (ps->p < ps->end && is_digit(*ps->p)) {
            ps->p++;
        }
    }
    if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
        ps->p++;
        if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) {
            ps->p++;
        }
        if (ps->p == ps->end || !is_digit(*ps->p)) {
            return perr(ps, ps->p, FR_EINVAL, "a digit must follow the exponent of a number");
        }
        while (ps->p < ps->end && is_digit(*ps->p)) {
            ps->p++;
        }
    }
    memset(v, 0, sizeof(*v));
    v->type = HPC_JSON_NUMBER;
    v->len = (size_t)(ps->p - s);
    v->u.s = arena_strdup(ps->a, s, v->len);
    return v->u.s != NULL ? 0 : p_oom(ps);
}

static int p_literal(parser *ps, hpc_json *v, const char *word, hpc_json_type t, bool b)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) {
        return perr(ps, ps->p, FR_EINVAL,
                    "unknown literal; a value is a string, number, object, array, true, "
                    "false or null");
    }
    ps->p += n;
    memset(v, 0, sizeof(*v));
    v->type = (unsigned char)t;
    v->boolean = b;
    return 0;
}

static int p_value(parser *ps, hpc_json *v)
{
    p_skip_ws(ps);
    if (ps->p == ps->end) {
        return perr(ps, ps->p, FR_ETRUNC, "the input ends where a value is expected");
    }
    unsigned c = *ps->p;
    switch (c) {
    case '{':
        return p_container(ps, v, true);
    case '[':
        return p_container(ps, v, false);
    case '"': {
        int rv = p_string_raw(ps);
        if (rv != 0) {
            return rv;
        }
        memset(v, 0, sizeof(*v));
        v->type = HPC_JSON_STRING;
        v->len = ps->sbuf.len;
        v->u.s = arena_strdup(ps->a, ps->sbuf.data, ps->sbuf.len);
        return v->u.s != NULL ? 0 : p_oom(ps);
    }
    case 't':
        return p_literal(ps, v, "true", HPC_JSON_BOOL, true);
    case 'f':
        return p_literal(ps, v, "false", HPC_JSON_BOOL, false);
    case 'n':
        return p_literal(ps, v, "null", HPC_JSON_NULL, false);
    default:
        if (c == '-' || is_digit(c)) {
            return p_number(ps, v);
        }
        if (c == 0xEF && ps->p == ps->start) {
            return perr(ps, ps->p, FR_EINVAL,
                        "byte 0xEF where a value is expected (a byte order mark is not allowed)");
        }
        char sb[8];
        return perr(ps, ps->p, FR_EINVAL,
                    "unexpected %s where a value (string, number, object, array, true, false, "
                    "null) is expected",
                    show_byte(c, sb));
    }
}

int hpc_json_parse(const char *text, size_t len, hpc_json **out, fr_error *e)
{
    if (out == NULL || (text == NULL && len > 0)) {
        return fr_error_set(e, FR_EINVAL, NULL, "hpc_json_parse: out and text are required");
    }
    *out = NULL;
    if (text == NULL) {
        text = "";
    }
    if (len > HPC_JSON_MAX_SIZE) {
        return fr_error_set(e, FR_ETOOBIG, "1:1", "JSON text of %zu bytes is over the limit of %u",
                            len, HPC_JSON_MAX_SIZE);
    }
    json_doc *d = calloc(1, sizeof(*d));
    if (d == NULL) {
        return fr_error_set(e, FR_ENOMEM, "1:1", "out of memory while parsing");
    }
    parser ps;
    memset(&ps, 0, sizeof(ps));
    ps.start = ps.p = (const unsigned char *)text;
    ps.end = ps.start + len;
    ps.a = &d->a;
    ps.e = e;
    int rv = p_value(&ps, &d->root);
    if (rv == 0) {
        p_skip_ws(&ps);
        if (ps.p != ps.end) {
            char sb[8];
            rv = perr(&ps, ps.p, FR_ETRAILING,
                      "unexpected %s after the value; only whitespace may follow it",
                      show_byte(*ps.p, sb));
        }
    }
    free(ps.stack);
    fr_buf_free(&ps.sbuf);
    if (rv != 0) {
        arena_free(&d->a);
        free(d);
        return rv;
    }
    d->root.is_root = 1;
    *out = &d->root;
    return 0;
}

/* ================================================================
 * Files
 * ================================================================ */

/* Reads at most max bytes of path into b (appending). 0 or -errno. */
static int read_file(const char *path, size_t max, fr_buf *b)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
    size_t got = 0;
    int rv = 0;
    while (got < max) {
        size_t want = max - got < 65536 ? max - got : 65536;
        if (fr_buf_reserve(b, want) != 0) {
            rv = -ENOMEM;
            break;
        }
        ssize_t n = read(fd, b->data + b->len, want);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            rv = -errno;
            break;
        }
        if (n == 0) {
            break;
        }
        b->len += (size_t)n;
        got += (size_t)n;
    }
    close(fd);
    return rv;
}

static int io_error(fr_error *e, int err, const char *what, const char *path)
{
    if (err == -ENOMEM) {
        return fr_error_set(e, FR_ENOMEM, path, "out of memory reading %s", path);
    }
    return fr_error_set(e, FR_EIO, path, "%s: cannot read %s: %s", what, path, strerror(-err));
}

static char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p != NULL) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

/* ================================================================
 * Collect
 * ================================================================ */

const char *const hpc_nodemeta_env_default[] = {
    "PATH", "LD_LIBRARY_PATH", "PBS_*", "SLURM_*", "OMPI_*", NULL,
};

#define MPI_DEADLINE_MS 2000

typedef struct proc_entry {
    long pid;
    char name[64];
    size_t len;
} proc_entry;

static int proc_cmp(const void *x, const void *y)
{
    const proc_entry *a = x, *b = y;
    return a->pid < b->pid ? -1 : a->pid > b->pid;
}

static int collect_processes(writer *w, const char *root, fr_error *e)
{
    DIR *dir = opendir(root);
    if (dir == NULL) {
        return fr_error_set(e, FR_EIO, root, "proc_root: cannot open %s: %s", root,
                            strerror(errno));
    }
    proc_entry *v = NULL;
    size_t n = 0, cap = 0;
    int rv = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        const char *s = de->d_name;
        if (s[0] < '1' || s[0] > '9' || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9) {
            continue;
        }
        char path[4096];
        if ((size_t)snprintf(path, sizeof(path), "%s/%s/comm", root, s) >= sizeof(path)) {
            continue;
        }
        fr_buf b = FR_BUF_INIT;
        int r = read_file(path, sizeof(v->name) - 1, &b);
        if (r != 0) {
            fr_buf_free(&b);
            if (r == -ENOMEM) {
                rv = fr_error_set(e, FR_ENOMEM, path, "out of memory reading %s", path);
                break;
            }
            continue; /* exited meanwhile, or hidden from us */
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            proc_entry *nv = realloc(v, ncap * sizeof(*nv));
            if (nv == NULL) {
                fr_buf_free(&b);
                rv = fr_error_set(e, FR_ENOMEM, root, "out of memory listing processes");
                break;
            }
            v = nv;
            cap = ncap;
        }
        proc_entry *pe = &v[n++];
        pe->pid = strtol(s, NULL, 10);
        pe->len = b.len;
        if (pe->len > 0 && b.data[pe->len - 1] == '\n') {
            pe->len--;
        }
        if (pe->len > 0) {
            memcpy(pe->name, b.data, pe->len);
        }
        fr_buf_free(&b);
    }
    closedir(dir);
    if (rv == 0) {
        qsort(v, n, sizeof(*v), proc_cmp);
        w_str(w, "\"processes\":[");
        for (size_t i = 0; i < n; i++) {
            w_printf(w, "%s{\"pid\":%ld,\"name\":", i > 0 ? "," : "", v[i].pid);
            w_string(w, v[i].name, v[i].len);
            w_str(w, "}");
        }
        w_str(w, "],");
    }
    free(v);
    return rv;
}

typedef struct pkg_entry {
    char *name, *arch, *version;
    size_t idx;
} pkg_entry;

static int pkg_cmp(const void *x, const void *y)
{
    const pkg_entry *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    if (c == 0) {
        c = strcmp(a->arch, b->arch);
    }
    if (c == 0) {
        c = a->idx < b->idx ? -1 : a->idx > b->idx;
    }
    return c;
}

static void pkg_clear(pkg_entry *p)
{
    free(p->name);
    free(p->arch);
    free(p->version);
    memset(p, 0, sizeof(*p));
}

/* "Field: value" of a deb822 line: the value when the field matches. */
static const char *deb_field(const char *line, const char *field)
{
    size_t n = strlen(field);
    if (strncasecmp(line, field, n) != 0 || line[n] != ':') {
        return NULL;
    }
    line += n + 1;
    while (*line == ' ' || *line == '\t') {
        line++;
    }
    return line;
}

static bool status_installed(const char *status)
{
    /* "want flag status": the last word is the package's state */
    const char *last = strrchr(status, ' ');
    last = last != NULL ? last + 1 : status;
    return strcmp(last, "installed") == 0;
}

static int collect_packages(writer *w, const char *path, fr_error *e)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        if (errno == ENOENT || errno == ENOTDIR) {
            w_str(w, "\"packages\":{},");
            return 0;
        }
        return fr_error_set(e, FR_EIO, path, "dpkg_status: cannot open %s: %s", path,
                            strerror(errno));
    }
    pkg_entry *v = NULL, cur;
    memset(&cur, 0, sizeof(cur));
    size_t n = 0, cap = 0;
    char *status = NULL;
    char *line = NULL;
    size_t lcap = 0;
    int rv = 0;
    bool eof = false;
    while (!eof && rv == 0) {
        ssize_t ll = getline(&line, &lcap, f);
        if (ll < 0) {
            if (ferror(f)) {
                rv = fr_error_set(e, FR_EIO, path, "dpkg_status: cannot read %s: %s", path,
                                  strerror(errno));
                break;
            }
            eof = true;
        } else {
            while (ll > 0 && (line[ll - 1] == '\n' || line[ll - 1] == '\r' || line[ll - 1] == ' ' ||
                              line[ll - 1] == '\t')) {
                line[--ll] = '\0';
            }
        }
        if (eof || ll == 0) {
            /* end of a stanza */
            if (cur.name != NULL && cur.version != NULL && status != NULL &&
                status_installed(status) && utf8_valid(cur.name, strlen(cur.name))) {
                if (cur.arch == NULL && (cur.arch = strdup("")) == NULL) {
                    rv = FR_ENOMEM;
                    break;
                }
                if (n == cap) {
                    size_t ncap = cap ? cap * 2 : 1024;
                    pkg_entry *nv = realloc(v, ncap * sizeof(*nv));
                    if (nv == NULL) {
                        rv = FR_ENOMEM;
                        break;
                    }
                    v = nv;
                    cap = ncap;
                }
                cur.idx = n;
                v[n++] = cur;
                memset(&cur, 0, sizeof(cur));
            }
            pkg_clear(&cur);
            free(status);
            status = NULL;
            continue;
        }
        if (line[0] == ' ' || line[0] == '\t') {
            continue; /* a continuation line */
        }
        const char *val;
        char **slot = NULL;
        if ((val = deb_field(line, "Package")) != NULL) {
            slot = &cur.name;
        } else if ((val = deb_field(line, "Version")) != NULL) {
            slot = &cur.version;
        } else if ((val = deb_field(line, "Architecture")) != NULL) {
            slot = &cur.arch;
        } else if ((val = deb_field(line, "Status")) != NULL) {
            slot = &status;
        }
        if (slot != NULL && *slot == NULL && (*slot = strdup(val)) == NULL) {
            rv = FR_ENOMEM;
        }
    }
    free(line);
    free(status);
    pkg_clear(&cur);
    fclose(f);
    if (rv == FR_ENOMEM) {
        fr_error_set(e, rv, path, "out of memory reading %s", path);
    }
    if (rv == 0) {
        qsort(v, n, sizeof(*v), pkg_cmp);
        w_str(w, "\"packages\":{");
        bool first = true, multiarch = false;
        for (size_t i = 0; i < n; i++) {
            bool same_prev = i > 0 && strcmp(v[i - 1].name, v[i].name) == 0;
            if (same_prev && strcmp(v[i - 1].arch, v[i].arch) == 0) {
                continue; /* the same package twice: the first stanza counts */
            }
            if (!same_prev) {
                /* a new name: is it installed for more than one architecture? */
                multiarch = false;
                for (size_t k = i + 1; k < n && strcmp(v[k].name, v[i].name) == 0; k++) {
                    multiarch = multiarch || strcmp(v[k].arch, v[i].arch) != 0;
                }
            }
            w_str(w, first ? "\"" : ",\"");
            first = false;
            w_escaped(w, v[i].name, strlen(v[i].name));
            if (multiarch) {
                w_str(w, ":");
                w_escaped(w, v[i].arch, strlen(v[i].arch));
            }
            w_str(w, "\":");
            w_string(w, v[i].version, strlen(v[i].version));
        }
        w_str(w, "},");
    }
    for (size_t i = 0; i < n; i++) {
        pkg_clear(&v[i]);
    }
    free(v);
    return rv;
}

/* Which cpuinfo keys give model, mhz and flags, best first. */
static const char *const cpu_keys[3][4] = {
    {"model name", "cpu model", "Processor", NULL},
    {"cpu MHz", "clock", NULL, NULL},
    {"flags", "Features", NULL, NULL},
};

static int collect_cpu(writer *w, const char *root, fr_error *e)
{
    char *path = path_join(root, "cpuinfo");
    if (path == NULL) {
        return fr_error_set(e, FR_ENOMEM, root, "out of memory");
    }
    fr_buf b = FR_BUF_INIT;
    int r = read_file(path, 16u << 20, &b);
    if (r == -ENOMEM) {
        free(path);
        fr_buf_free(&b);
        return fr_error_set(e, FR_ENOMEM, root, "out of memory reading cpuinfo");
    }
    free(path);
    long count = 0;
    const char *val[3] = {NULL, NULL, NULL};
    size_t vlen[3] = {0, 0, 0};
    int rank[3] = {99, 99, 99};
    char *text = (char *)b.data;
    size_t len = r == 0 ? b.len : 0;
    for (size_t i = 0; i < len;) {
        char *ln = text + i;
        char *nl = memchr(ln, '\n', len - i);
        size_t ll = nl != NULL ? (size_t)(nl - ln) : len - i;
        i += ll + 1;
        char *colon = memchr(ln, ':', ll);
        if (colon == NULL) {
            continue;
        }
        size_t kl = (size_t)(colon - ln);
        while (kl > 0 && (ln[kl - 1] == ' ' || ln[kl - 1] == '\t')) {
            kl--;
        }
        const char *v = colon + 1;
        size_t vl = ll - (size_t)(v - ln);
        while (vl > 0 && (*v == ' ' || *v == '\t')) {
            v++;
            vl--;
        }
        while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t' || v[vl - 1] == '\r')) {
            vl--;
        }
        if (kl == 9 && memcmp(ln, "processor", 9) == 0) {
            count++;
            continue;
        }
        for (int f = 0; f < 3; f++) {
            for (int k = 0; k < 4 && cpu_keys[f][k] != NULL && k < rank[f]; k++) {
                if (strlen(cpu_keys[f][k]) == kl && memcmp(ln, cpu_keys[f][k], kl) == 0) {
                    val[f] = v;
                    vlen[f] = vl;
                    rank[f] = k;
                    break;
                }
            }
        }
    }
    if (count == 0) {
        /* no processor lines (some architectures): count cpuN in stat */
        fr_buf s = FR_BUF_INIT;
        char *sp = path_join(root, "stat");
        if (sp != NULL && read_file(sp, 16u << 20, &s) == 0) {
            for (size_t i = 0; i + 4 < s.len; i++) {
                if ((i == 0 || s.data[i - 1] == '\n') && memcmp(s.data + i, "cpu", 3) == 0 &&
                    is_digit(s.data[i + 3])) {
                    count++;
                }
            }
        }
        free(sp);
        fr_buf_free(&s);
    }
    w_printf(w, "\"cpu\":{\"count\":%ld,\"model\":", count);
    w_string(w, val[0] != NULL ? val[0] : "", vlen[0]);
    w_str(w, ",\"mhz\":");
    w_string(w, val[1] != NULL ? val[1] : "", vlen[1]);
    w_str(w, ",\"flags\":");
    w_string(w, val[2] != NULL ? val[2] : "", vlen[2]);
    w_str(w, "},");
    fr_buf_free(&b);
    return 0;
}

static bool env_allowed(const char *name, size_t len, const char *const *allow)
{
    for (size_t i = 0; allow[i] != NULL; i++) {
        size_t al = strlen(allow[i]);
        if (al > 0 && allow[i][al - 1] == '*') {
            if (len >= al - 1 && memcmp(name, allow[i], al - 1) == 0) {
                return true;
            }
        } else if (al == len && memcmp(name, allow[i], len) == 0) {
            return true;
        }
    }
    return false;
}

static void collect_env(writer *w, char *const *envp, const char *const *allow)
{
    w_str(w, "\"env\":{");
    bool first = true;
    for (size_t i = 0; envp[i] != NULL; i++) {
        const char *eq = strchr(envp[i], '=');
        if (eq == NULL || eq == envp[i]) {
            continue;
        }
        size_t nl = (size_t)(eq - envp[i]);
        if (!env_allowed(envp[i], nl, allow) || !utf8_valid(envp[i], nl)) {
            continue;
        }
        bool seen = false;
        for (size_t k = 0; k < i && !seen; k++) {
            seen = strncmp(envp[k], envp[i], nl + 1) == 0;
        }
        if (seen) {
            continue; /* getenv() sees the first one too */
        }
        w_str(w, first ? "" : ",");
        first = false;
        w_string(w, envp[i], nl);
        w_str(w, ":");
        w_string(w, eq + 1, strlen(eq + 1));
    }
    w_str(w, "},");
}

static void collect_time(writer *w)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char s[64];
    snprintf(s, sizeof(s), "%04d-%02d-%02d %02d:%02d:%02d.%06ld", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
    w_str(w, "\"time\":");
    w_string(w, s, strlen(s));
    w_str(w, ",");
}

static bool is_executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The first executable dir/mpirun along envp's PATH (malloc'd), or NULL.
 * Empty entries (the current directory) are skipped. */
static char *mpirun_on_path(char *const *envp)
{
    const char *path = NULL;
    for (size_t i = 0; envp[i] != NULL && path == NULL; i++) {
        if (strncmp(envp[i], "PATH=", 5) == 0) {
            path = envp[i] + 5;
        }
    }
    while (path != NULL && *path != '\0') {
        const char *colon = strchr(path, ':');
        size_t dl = colon != NULL ? (size_t)(colon - path) : strlen(path);
        if (dl > 0) {
            char *cand = malloc(dl + sizeof("/mpirun"));
            if (cand == NULL) {
                return NULL;
            }
            memcpy(cand, path, dl);
            memcpy(cand + dl, "/mpirun", sizeof("/mpirun"));
            if (is_executable(cand)) {
                return cand;
            }
            free(cand);
        }
        path = colon != NULL ? colon + 1 : NULL;
    }
    return NULL;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The first line "<path> --version" prints within MPI_DEADLINE_MS, into
 * line (empty when it prints none, cannot start, or runs out of time). */
static int mpirun_version(const char *path, char *const *envp, fr_buf *line)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        return 0;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    char *argv[] = {(char *)path, (char *)"--version", NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, path, &fa, &at, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return 0;
    }
    int64_t deadline = mono_ms() + MPI_DEADLINE_MS;
    fr_buf got = FR_BUF_INIT;
    bool complete = false; /* a newline or the end of output seen */
    int rv = 0;
    while (!complete && got.len < 4096) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            break;
        }
        struct pollfd pfd = {fds[0], POLLIN, 0};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR) {
            continue;
        }
        if (pr <= 0) {
            break;
        }
        char tmp[512];
        ssize_t n = read(fds[0], tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            complete = true;
            break;
        }
        if (fr_buf_append(&got, tmp, (size_t)n) != 0) {
            rv = FR_ENOMEM;
            break;
        }
        complete = memchr(tmp, '\n', (size_t)n) != NULL;
    }
    close(fds[0]);
    /* reap it; the group goes when the deadline passes first */
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR)) {
            break;
        }
        if (w == 0 && mono_ms() >= deadline) {
            kill(-pid, SIGKILL);
            while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
            }
            break;
        }
        if (w == 0) {
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    if (rv == 0 && complete) {
        size_t n = 0;
        while (n < got.len && got.data[n] != '\n') {
            n++;
        }
        if (n > 0 && got.data[n - 1] == '\r') {
            n--;
        }
        rv = fr_buf_append(line, got.data, n);
    }
    fr_buf_free(&got);
    return rv;
}

static int collect_mpi(writer *w, const char *mpirun, char *const *envp, fr_error *e)
{
    char *found = NULL;
    const char *path = mpirun;
    if (path == NULL) {
        path = found = mpirun_on_path(envp);
    }
    if (path == NULL || !is_executable(path)) {
        free(found);
        w_str(w, "\"mpi\":{},");
        return 0;
    }
    fr_buf ver = FR_BUF_INIT;
    int rv = mpirun_version(path, envp, &ver);
    if (rv == 0) {
        w_str(w, "\"mpi\":{\"path\":");
        w_string(w, path, strlen(path));
        w_str(w, ",\"version\":");
        w_string(w, ver.len > 0 ? (const char *)ver.data : "", ver.len);
        w_str(w, "},");
    } else {
        fr_error_set(e, rv, "mpirun", "out of memory reading %s --version", path);
    }
    fr_buf_free(&ver);
    free(found);
    return rv;
}

/* PRETTY_NAME of an os-release file (shell-like assignment, quotes and
 * backslash escapes undone) into out. */
static int os_pretty_name(const char *path, bool fallback, fr_buf *out, fr_error *e)
{
    FILE *f = fopen(path, "re");
    if (f == NULL && fallback && errno == ENOENT) {
        f = fopen("/usr/lib/os-release", "re");
    }
    if (f == NULL) {
        if (errno == ENOENT || errno == ENOTDIR) {
            return 0;
        }
        return fr_error_set(e, FR_EIO, path, "os_release: cannot open %s: %s", path,
                            strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t ll;
    bool found = false;
    int rv = 0;
    while (!found && rv == 0 && (ll = getline(&line, &cap, f)) >= 0) {
        const char *s = line;
        while (*s == ' ' || *s == '\t') {
            s++;
        }
        if (strncmp(s, "PRETTY_NAME=", 12) != 0) {
            continue;
        }
        found = true;
        s += 12;
        size_t n = strcspn(s, "\r\n");
        char q = (*s == '"' || *s == '\'') ? *s : 0;
        if (q == 0) {
            while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t')) {
                n--;
            }
            rv = fr_buf_append(out, s, n);
            break;
        }
        for (size_t i = 1; i < n && rv == 0; i++) {
            if (s[i] == q) {
                break;
            }
            if (q == '"' && s[i] == '\\' && i + 1 < n && strchr("\"\\$`", s[i + 1]) != NULL) {
                i++;
            }
            rv = fr_buf_append(out, &s[i], 1);
        }
    }
    free(line);
    fclose(f);
    if (rv == 0 && !found) {
        rv = fr_buf_puts(out, "Linux");
    }
    if (rv != 0) {
        return fr_error_set(e, FR_ENOMEM, path, "out of memory reading %s", path);
    }
    return 0;
}

static int collect_versions(writer *w, const hpc_nodemeta_opts *o, fr_error *e)
{
    struct utsname un;
    if (uname(&un) != 0) {
        un.release[0] = '\0';
    }
    fr_buf os = FR_BUF_INIT;
    int rv = os_pretty_name(o->os_release != NULL ? o->os_release : "/etc/os-release",
                            o->os_release == NULL, &os, e);
    if (rv == 0) {
        w_str(w, "\"versions\":{\"fresco\":");
        w_string(w, o->fresco_version, strlen(o->fresco_version));
        w_str(w, ",\"kernel\":");
        w_string(w, un.release, strlen(un.release));
        w_str(w, ",\"os\":");
        w_string(w, os.len > 0 ? (const char *)os.data : "", os.len);
        w_str(w, "}");
    }
    fr_buf_free(&os);
    return rv;
}

int hpc_nodemeta_collect(const hpc_nodemeta_opts *o, fr_buf *out, fr_error *e)
{
    if (o == NULL || out == NULL) {
        return fr_error_set(e, FR_EINVAL, NULL, "hpc_nodemeta_collect: opts and out are required");
    }
    if (o->fresco_version == NULL) {
        return fr_error_set(e, FR_EINVAL, "fresco_version",
                            "fresco_version is required: the version string of this fresco");
    }
    char host[256];
    const char *node = o->node_name;
    if (node == NULL) {
        if (gethostname(host, sizeof(host)) != 0) {
            return fr_error_set(e, FR_EIO, "node_name", "node_name: gethostname failed: %s",
                                strerror(errno));
        }
        host[sizeof(host) - 1] = '\0';
        host[strcspn(host, ".")] = '\0';
        node = host;
    }
    if (node[0] == '\0') {
        return fr_error_set(e, FR_EINVAL, "node_name",
                            "node_name is empty; a node needs a non-empty name");
    }
    const char *proc = o->proc_root != NULL ? o->proc_root : "/proc";
    const char *dpkg = o->dpkg_status != NULL ? o->dpkg_status : "/var/lib/dpkg/status";
    const char *const *allow = o->env_allow != NULL ? o->env_allow : hpc_nodemeta_env_default;
    char *const *envp = o->envp != NULL ? o->envp : environ;

    fr_buf raw = FR_BUF_INIT;
    writer w = {&raw, 0};
    w_str(&w, "{");
    w_string(&w, node, strlen(node));
    w_str(&w, ":{");
    int rv = collect_processes(&w, proc, e);
    if (rv == 0) {
        rv = collect_packages(&w, dpkg, e);
    }
    if (rv == 0) {
        rv = collect_cpu(&w, proc, e);
    }
    if (rv == 0) {
        collect_env(&w, envp, allow);
        collect_time(&w);
        rv = collect_mpi(&w, o->mpirun, envp, e);
    }
    if (rv == 0) {
        rv = collect_versions(&w, o, e);
    }
    w_str(&w, "}}");
    if (rv == 0 && w.rv != 0) {
        rv = fr_error_set(e, w.rv, NULL, "out of memory building the node document");
    }
    if (rv == 0) {
        /* through the parser, for key order and as a check of the text */
        hpc_json *doc;
        fr_error pe;
        rv = hpc_json_parse((const char *)raw.data, raw.len, &doc, &pe);
        if (rv != 0) {
            fr_error_set(e, rv, pe.where, "the collected document does not parse: %s", pe.message);
        } else {
            rv = hpc_json_write(doc, out);
            if (rv != 0) {
                fr_error_set(e, rv, NULL, "out of memory writing the node document");
            }
            hpc_json_free(doc);
        }
    }
    fr_buf_free(&raw);
    return rv;
}

/* ================================================================
 * Merge
 * ================================================================ */

typedef struct node_ref {
    const hpc_json_member *m;
    size_t file;
} node_ref;

static int node_ref_cmp(const void *x, const void *y)
{
    const node_ref *a = x, *b = y;
    int c = key_cmp(a->m->key, a->m->klen, b->m->key, b->m->klen);
    if (c == 0) {
        c = a->file < b->file ? -1 : a->file > b->file;
    }
    return c;
}

static const char *type_name(const hpc_json *j)
{
    static const char *const names[] = {"null",     "a boolean", "a number",
                                        "a string", "an array",  "an object"};
    return j != NULL && j->type <= HPC_JSON_OBJECT ? names[j->type] : "nothing";
}

static int file_where(fr_error *e, int code, const char *path, const fr_buf *text, size_t pos,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int file_where(fr_error *e, int code, const char *path, const fr_buf *text, size_t pos,
                      const char *fmt, ...)
{
    char lc[48], where[sizeof(e->where)], msg[sizeof(e->message)];
    where_of(text->data, text->data + pos, lc, sizeof(lc));
    snprintf(where, sizeof(where), "%s:%s", path, lc);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return fr_error_set(e, code, where, "%s:%s: %s", path, lc, msg);
}

/* Writes data to path through a temporary beside it, fsynced and renamed. */
static int write_atomic(const char *path, const void *data, size_t len, fr_error *e)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 8);
    if (tmp == NULL) {
        return fr_error_set(e, FR_ENOMEM, path, "out of memory");
    }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".XXXXXX", 8);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        int rv = fr_error_set(e, FR_EIO, path, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return rv;
    }
    const char *what = "write";
    int err = 0;
    if (fchmod(fd, 0644) != 0) {
        what = "chmod";
        err = errno;
    }
    const char *p = data;
    while (err == 0 && len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            err = errno;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    if (err == 0 && fsync(fd) != 0) {
        what = "fsync";
        err = errno;
    }
    if (close(fd) != 0 && err == 0) {
        what = "close";
        err = errno;
    }
    if (err == 0 && rename(tmp, path) != 0) {
        what = "rename";
        err = errno;
    }
    if (err != 0) {
        unlink(tmp);
        free(tmp);
        return fr_error_set(e, FR_EIO, path, "cannot write %s (%s: %s)", path, what, strerror(err));
    }
    free(tmp);
    /* make the rename itself durable */
    char *dir = strdup(path);
    if (dir != NULL) {
        char *slash = strrchr(dir, '/');
        const char *d = dir;
        if (slash == NULL) {
            d = ".";
        } else if (slash == dir) {
            d = "/";
        } else {
            *slash = '\0';
        }
        int dfd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    return 0;
}

int hpc_nodemeta_merge(const char *const *paths, size_t n, const char *out_path, fr_error *e)
{
    if (out_path == NULL || out_path[0] == '\0') {
        return fr_error_set(e, FR_EINVAL, "out_path", "out_path is required");
    }
    if (n == 0 || paths == NULL) {
        return fr_error_set(e, FR_EINVAL, "paths", "no node files to merge; give at least one");
    }
    fr_buf *texts = calloc(n, sizeof(*texts));
    hpc_json **docs = calloc(n, sizeof(*docs));
    node_ref *refs = NULL;
    size_t nrefs = 0;
    int rv = 0;
    if (texts == NULL || docs == NULL) {
        rv = fr_error_set(e, FR_ENOMEM, out_path, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n && rv == 0; i++) {
        const char *path = paths[i];
        if (path == NULL) {
            rv = fr_error_set(e, FR_EINVAL, "paths", "paths[%zu] is NULL", i);
            break;
        }
        int r = read_file(path, (size_t)HPC_JSON_MAX_SIZE + 1, &texts[i]);
        if (r != 0) {
            rv = io_error(e, r, "node file", path);
            break;
        }
        fr_error pe;
        fr_error_clear(&pe);
        r = hpc_json_parse((const char *)texts[i].data, texts[i].len, &docs[i], &pe);
        if (r != 0) {
            char where[sizeof(e->where)];
            snprintf(where, sizeof(where), "%.110s:%.40s", path, pe.where);
            rv = fr_error_set(e, r, where, "%s:%s: %s", path, pe.where, pe.message);
            break;
        }
        const hpc_json *root = docs[i];
        size_t first = 0;
        while (first < texts[i].len && strchr(" \t\r\n", texts[i].data[first]) != NULL) {
            first++;
        }
        if (root->type != HPC_JSON_OBJECT) {
            rv = file_where(e, FR_ETYPE, path, &texts[i], first,
                            "a node file is an object with one member per node, not %s",
                            type_name(root));
            break;
        }
        if (root->len == 0) {
            rv = file_where(e, FR_EMISSING, path, &texts[i], first,
                            "the file holds no node; expected {\"<node>\": {...}}");
            break;
        }
        node_ref *nr = realloc(refs, (nrefs + root->len) * sizeof(*nr));
        if (nr == NULL) {
            rv = fr_error_set(e, FR_ENOMEM, path, "out of memory");
            break;
        }
        refs = nr;
        for (size_t k = 0; k < root->len; k++) {
            const hpc_json_member *m = &root->u.members[k];
            if (m->klen == 0) {
                rv = file_where(e, FR_EINVAL, path, &texts[i], m->pos,
                                "a node needs a non-empty name");
                break;
            }
            if (m->val.type != HPC_JSON_OBJECT) {
                rv = file_where(e, FR_ETYPE, path, &texts[i], m->pos,
                                "node \"%.60s\" must be an object, not %s", m->key,
                                type_name(&m->val));
                break;
            }
            refs[nrefs].m = m;
            refs[nrefs].file = i;
            nrefs++;
        }
    }
    if (rv != 0) {
        goto done;
    }
    qsort(refs, nrefs, sizeof(*refs), node_ref_cmp);
    for (size_t i = 1; i < nrefs; i++) {
        const node_ref *a = &refs[i - 1], *b = &refs[i];
        if (key_cmp(a->m->key, a->m->klen, b->m->key, b->m->klen) == 0) {
            char lc[48];
            where_of(texts[a->file].data, texts[a->file].data + a->m->pos, lc, sizeof(lc));
            fr_buf kb = FR_BUF_INIT;
            writer w = {&kb, 0};
            w_escaped(&w, a->m->key, a->m->klen > 40 ? 40 : a->m->klen);
            w_put(&w, "", 1);
            rv = file_where(e, FR_EDUP, paths[b->file], &texts[b->file], b->m->pos,
                            "node \"%s\" is in both %s (%s) and %s; each node may be given once",
                            w.rv == 0 ? (const char *)kb.data : "?", paths[a->file], lc,
                            paths[b->file]);
            fr_buf_free(&kb);
            goto done;
        }
    }
    {
        hpc_json_member *ms = malloc(nrefs * sizeof(*ms));
        if (ms == NULL) {
            rv = fr_error_set(e, FR_ENOMEM, out_path, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < nrefs; i++) {
            ms[i] = *refs[i].m; /* shallow: values stay in their documents */
        }
        hpc_json all;
        memset(&all, 0, sizeof(all));
        all.type = HPC_JSON_OBJECT;
        all.len = nrefs;
        all.u.members = ms;
        fr_buf text = FR_BUF_INIT;
        if (hpc_json_write(&all, &text) != 0) {
            rv = fr_error_set(e, FR_ENOMEM, out_path, "out of memory writing %s", out_path);
        } else {
            rv = write_atomic(out_path, text.data, text.len, e);
        }
        fr_buf_free(&text);
        free(ms);
    }
done:
    for (size_t i = 0; texts != NULL && docs != NULL && i < n; i++) {
        hpc_json_free(docs[i]);
        fr_buf_free(&texts[i]);
    }
    free(texts);
    free(docs);
    free(refs);
    return rv;
}

/* ================================================================
 * Diff
 * ================================================================ */

static const hpc_json empty_object = {HPC_JSON_OBJECT, 0, 0, 0, {NULL}};

static int pick_node(const hpc_json *doc, const char *name, const char *side, const hpc_json **node,
                     const char **key, fr_error *e)
{
    if (doc == NULL || doc->type != HPC_JSON_OBJECT) {
        return fr_error_set(e, FR_ETYPE, side,
                            "document %s must be an object with one member per node, not %s", side,
                            type_name(doc));
    }
    if (name == NULL) {
        if (doc->len == 0) {
            return fr_error_set(e, FR_EMISSING, side, "document %s holds no node", side);
        }
        *node = &doc->u.members[0].val;
        *key = doc->u.members[0].key;
    } else {
        *node = hpc_json_get(doc, name);
        *key = name;
        if (*node == NULL) {
            return fr_error_set(e, FR_ENOTFOUND, name, "document %s has no node \"%s\"", side,
                                name);
        }
    }
    if ((*node)->type != HPC_JSON_OBJECT) {
        return fr_error_set(e, FR_ETYPE, *key, "document %s: node \"%s\" must be an object, not %s",
                            side, *key, type_name(*node));
    }
    return 0;
}

/* A node's section, the empty object when absent. */
static int section(const hpc_json *node, const char *key, const char *sec, hpc_json_type want,
                   const char *side, const hpc_json **out, fr_error *e)
{
    const hpc_json *s = hpc_json_get(node, sec);
    if (s == NULL) {
        *out = want == HPC_JSON_OBJECT ? &empty_object : NULL;
        return 0;
    }
    if (s->type != want) {
        char where[sizeof(e->where)];
        snprintf(where, sizeof(where), "%.100s.%s", key, sec);
        return fr_error_set(e, FR_ETYPE, where, "document %s: %.100s.%s must be %s, not %s", side,
                            key, sec, want == HPC_JSON_OBJECT ? "an object" : "an array",
                            type_name(s));
    }
    *out = s;
    return 0;
}

/* A value in a report line: strings bare with escapes, "" when empty. */
static void w_shown(writer *w, const hpc_json *v)
{
    if (v->type == HPC_JSON_STRING && v->len > 0) {
        w_escaped(w, v->u.s, v->len);
    } else {
        w_value(w, v, -1);
    }
}

static size_t diff_members(writer *w, const char *sec, const hpc_json *a, const hpc_json *b)
{
    size_t i = 0, k = 0, count = 0;
    while (i < a->len || k < b->len) {
        const hpc_json_member *ma = i < a->len ? &a->u.members[i] : NULL;
        const hpc_json_member *mb = k < b->len ? &b->u.members[k] : NULL;
        int c = ma == NULL ? 1 : mb == NULL ? -1 : key_cmp(ma->key, ma->klen, mb->key, mb->klen);
        if (c == 0) {
            i++;
            k++;
            if (hpc_json_equal(&ma->val, &mb->val)) {
                continue;
            }
        } else if (c < 0) {
            i++;
        } else {
            k++;
        }
        const hpc_json_member *m = c > 0 ? mb : ma;
        w_str(w, sec);
        w_str(w, c == 0 ? ": changed " : c < 0 ? ": removed " : ": added ");
        w_escaped(w, m->key, m->klen);
        w_str(w, ": ");
        w_shown(w, &m->val);
        if (c == 0) {
            w_str(w, " -> ");
            w_shown(w, &mb->val);
        }
        w_str(w, "\n");
        count++;
    }
    return count;
}

typedef struct name_ref {
    const char *s;
    size_t len;
} name_ref;

static int name_cmp(const void *x, const void *y)
{
    const name_ref *a = x, *b = y;
    return key_cmp(a->s, a->len, b->s, b->len);
}

/* The distinct process names of a processes array, sorted, into *out. */
static int process_names(const hpc_json *procs, const char *key, const char *side, name_ref **out,
                         size_t *n, fr_error *e)
{
    *out = NULL;
    *n = 0;
    if (procs == NULL || procs->len == 0) {
        return 0;
    }
    name_ref *v = malloc(procs->len * sizeof(*v));
    if (v == NULL) {
        return fr_error_set(e, FR_ENOMEM, NULL, "out of memory");
    }
    for (size_t i = 0; i < procs->len; i++) {
        const hpc_json *name = hpc_json_get(&procs->u.items[i], "name");
        if (name == NULL || name->type != HPC_JSON_STRING) {
            char where[sizeof(e->where)];
            snprintf(where, sizeof(where), "%.100s.processes[%zu].name", key, i);
            free(v);
            return fr_error_set(e, FR_ETYPE, where,
                                "document %s: %s must be a string (each process is "
                                "{\"pid\": N, \"name\": \"...\"})",
                                side, where);
        }
        v[i].s = name->u.s;
        v[i].len = name->len;
    }
    qsort(v, procs->len, sizeof(*v), name_cmp);
    size_t u = 0;
    for (size_t i = 0; i < procs->len; i++) {
        if (u == 0 || name_cmp(&v[u - 1], &v[i]) != 0) {
            v[u++] = v[i];
        }
    }
    *out = v;
    *n = u;
    return 0;
}

int hpc_nodemeta_diff(const hpc_json *a, const char *a_node, const hpc_json *b, const char *b_node,
                      fr_buf *out, fr_error *e)
{
    static const char *const sections[] = {"packages", "cpu", "env", "mpi", "versions"};
    if (out == NULL) {
        return fr_error_set(e, FR_EINVAL, NULL, "hpc_nodemeta_diff: out is required");
    }
    const hpc_json *na, *nb;
    const char *ka, *kb;
    int rv = pick_node(a, a_node, "a", &na, &ka, e);
    if (rv == 0) {
        rv = pick_node(b, b_node, "b", &nb, &kb, e);
    }
    if (rv != 0) {
        return rv;
    }
    const hpc_json *sa[5], *sb[5], *pa, *pb;
    for (size_t i = 0; i < 5 && rv == 0; i++) {
        rv = section(na, ka, sections[i], HPC_JSON_OBJECT, "a", &sa[i], e);
        if (rv == 0) {
            rv = section(nb, kb, sections[i], HPC_JSON_OBJECT, "b", &sb[i], e);
        }
    }
    if (rv == 0) {
        rv = section(na, ka, "processes", HPC_JSON_ARRAY, "a", &pa, e);
    }
    if (rv == 0) {
        rv = section(nb, kb, "processes", HPC_JSON_ARRAY, "b", &pb, e);
    }
    name_ref *names_a = NULL, *names_b = NULL;
    size_t nna = 0, nnb = 0;
    if (rv == 0) {
        rv = process_names(pa, ka, "a", &names_a, &nna, e);
    }
    if (rv == 0) {
        rv = process_names(pb, kb, "b", &names_b, &nnb, e);
    }
    if (rv != 0) {
        free(names_a);
        free(names_b);
        return rv;
    }
    size_t mark = out->len, count = 0;
    writer w = {out, 0};
    for (size_t i = 0; i < 5; i++) {
        count += diff_members(&w, sections[i], sa[i], sb[i]);
    }
    size_t i = 0, k = 0;
    while (i < nna || k < nnb) {
        int c = i == nna ? 1 : k == nnb ? -1 : name_cmp(&names_a[i], &names_b[k]);
        if (c == 0) {
            i++;
            k++;
            continue;
        }
        const name_ref *nr = c < 0 ? &names_a[i++] : &names_b[k++];
        w_str(&w, c < 0 ? "processes: removed " : "processes: added ");
        w_escaped(&w, nr->s, nr->len);
        w_str(&w, "\n");
        count++;
    }
    free(names_a);
    free(names_b);
    if (w.rv != 0) {
        out->len = mark;
        return fr_error_set(e, w.rv, NULL, "out of memory writing the report");
    }
    return count > (size_t)INT32_MAX ? INT32_MAX : (int)count;
}
