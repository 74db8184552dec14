/* The strict, bounded JSON reader of json.h: one pass over the input with
 * an explicit stack of open containers, nodes in one growing array linked
 * by index, decoded strings in one buffer no larger than the input (an
 * escape never decodes longer than it is written, and each string's two
 * quotes pay for its NUL). */
#include "yarn/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_NUMBER_MAX 64 /* characters of one number */

typedef enum json_want {
    WANT_VALUE,
    WANT_VALUE_OR_CLOSE, /* just after '[' */
    WANT_KEY,
    WANT_KEY_OR_CLOSE, /* just after '{' */
    WANT_SEP_OR_CLOSE, /* after a value */
} json_want;

typedef struct json_parser {
    const char *start, *p, *end;
    yarn_json_doc *doc;
    char *sp; /* next free byte of doc->strings */
    fr_error *err;
} json_parser;

/* Fills err with the line and column of p. */
static int json_fail(json_parser *jp, const char *at, int code, const char *what)
{
    unsigned line = 1, col = 1;
    for (const char *c = jp->start; c < at && c < jp->end; c++) {
        if (*c == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char where[48];
    snprintf(where, sizeof(where), "%u:%u", line, col);
    return fr_error_set(jp->err, code, where, "line %u column %u: %s", line, col, what);
}

static void json_skip_ws(json_parser *jp)
{
    while (jp->p < jp->end &&
           (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r')) {
        jp->p++;
    }
}

static int json_node_new(json_parser *jp, yarn_json_type type, uint32_t *idx)
{
    yarn_json_doc *doc = jp->doc;
    if (doc->nnodes == YARN_JSON_MAX_NODES) {
        return json_fail(jp, jp->p, FR_ETOOBIG, "more values than the reader accepts");
    }
    if (doc->nnodes == doc->cap) {
        uint32_t cap = doc->cap == 0 ? 64 : doc->cap * 2;
        if (cap > YARN_JSON_MAX_NODES) {
            cap = YARN_JSON_MAX_NODES;
        }
        yarn_json_node *n = realloc(doc->nodes, (size_t)cap * sizeof(*n));
        if (n == NULL) {
            return fr_error_set(jp->err, FR_ENOMEM, "", "out of memory");
        }
        doc->nodes = n;
        doc->cap = cap;
    }
    *idx = doc->nnodes++;
    yarn_json_node *n = &doc->nodes[*idx];
    memset(n, 0, sizeof(*n));
    n->type = type;
    n->next = YARN_JSON_NONE;
    n->first = YARN_JSON_NONE;
    return 0;
}

static int json_hex4(const char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (uint32_t)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= (uint32_t)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= (uint32_t)(c - 'A' + 10);
        } else {
            return -1;
        }
    }
    *out = v;
    return 0;
}

static char *json_put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* Length of the valid UTF-8 sequence at p (2..4), or 0. */
static size_t json_utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF) {
            return 0;
        }
    }
    return n;
}

/* Decodes the string at jp->p (on its opening quote) into doc->strings. */
static int json_string(json_parser *jp, const char **out, size_t *out_len)
{
    const char *open = jp->p++;
    char *o = jp->sp;
    *out = o;
    for (;;) {
        if (jp->p == jp->end) {
            return json_fail(jp, open, FR_ETRUNC, "input ends inside a string");
        }
        unsigned char c = (unsigned char)*jp->p;
        if (c == '"') {
            jp->p++;
            break;
        }
        if (c < 0x20) {
            return json_fail(jp, jp->p, FR_EINVAL, "control character inside a string");
        }
        if (c >= 0x80) {
            size_t n = json_utf8_len((const unsigned char *)jp->p, (const unsigned char *)jp->end);
            if (n == 0) {
                return json_fail(jp, jp->p, FR_EINVAL, "invalid UTF-8 inside a string");
            }
            memcpy(o, jp->p, n);
            o += n;
            jp->p += n;
            continue;
        }
        if (c != '\\') {
            *o++ = (char)c;
            jp->p++;
            continue;
        }
        if (jp->end - jp->p < 2) {
            return json_fail(jp, open, FR_ETRUNC, "input ends inside a string");
        }
        const char *esc = jp->p;
        char e = jp->p[1];
        jp->p += 2;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            *o++ = e;
            continue;
        case 'b':
            *o++ = '\b';
            continue;
        case 'f':
            *o++ = '\f';
            continue;
        case 'n':
            *o++ = '\n';
            continue;
        case 'r':
            *o++ = '\r';
            continue;
        case 't':
            *o++ = '\t';
            continue;
        case 'u':
            break;
        default:
            return json_fail(jp, esc, FR_EINVAL, "unknown escape in a string");
        }
        uint32_t cp;
        if (jp->end - jp->p < 4) {
            return json_fail(jp, open, FR_ETRUNC, "input ends inside a string");
        }
        if (json_hex4(jp->p, &cp) != 0) {
            return json_fail(jp, esc, FR_EINVAL, "\\u needs four hex digits");
        }
        jp->p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return json_fail(jp, esc, FR_EINVAL, "\\u escape is a lone low surrogate");
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t lo;
            if (jp->end - jp->p < 6 || jp->p[0] != '\\' || jp->p[1] != 'u' ||
                json_hex4(jp->p + 2, &lo) != 0 || lo < 0xDC00 || lo > 0xDFFF) {
                return json_fail(jp, esc, FR_EINVAL,
                                 "\\u escape is a high surrogate without its low half");
            }
            jp->p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        o = json_put_utf8(o, cp);
    }
    *out_len = (size_t)(o - *out);
    *o++ = '\0';
    jp->sp = o;
    return 0;
}

static bool json_digit(const json_parser *jp, const char *p)
{
    return p < jp->end && *p >= '0' && *p <= '9';
}

static int json_number(json_parser *jp, yarn_json_node *n)
{
    const char *s = jp->p, *p = jp->p;
    bool integral = true;
    if (p < jp->end && *p == '-') {
        p++;
    }
    if (!json_digit(jp, p)) {
        return json_fail(jp, s, p == jp->end ? FR_ETRUNC : FR_EINVAL, "expected a digit");
    }
    if (*p == '0') {
        p++;
        if (json_digit(jp, p)) {
            return json_fail(jp, s, FR_EINVAL, "a number may not start with 0");
        }
    } else {
        while (json_digit(jp, p)) {
            p++;
        }
    }
    if (p < jp->end && *p == '.') {
        integral = false;
        p++;
        if (!json_digit(jp, p)) {
            return json_fail(jp, p, FR_EINVAL, "expected a digit after '.'");
        }
        while (json_digit(jp, p)) {
            p++;
        }
    }
    if (p < jp->end && (*p == 'e' || *p == 'E')) {
        integral = false;
        p++;
        if (p < jp->end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (!json_digit(jp, p)) {
            return json_fail(jp, p, FR_EINVAL, "expected a digit in the exponent");
        }
        while (json_digit(jp, p)) {
            p++;
        }
    }
    size_t len = (size_t)(p - s);
    if (len > JSON_NUMBER_MAX) {
        return json_fail(jp, s, FR_EINVAL, "number longer than 64 characters");
    }
    char buf[JSON_NUMBER_MAX + 1];
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    n->d = strtod(buf, NULL);
    if (errno == ERANGE && (n->d > 1.0 || n->d < -1.0)) {
        return json_fail(jp, s, FR_EINVAL, "number out of range");
    }
    if (integral) {
        errno = 0;
        long long v = strtoll(buf, NULL, 10);
        if (errno == 0) {
            n->is_int = true;
            n->i = v;
        }
    }
    jp->p = p;
    return 0;
}

static int json_literal(json_parser *jp, yarn_json_node *n)
{
    static const struct {
        const char *text;
        yarn_json_type type;
        bool b;
    } lits[] = {{"true", YARN_JSON_BOOL, true},
                {"false", YARN_JSON_BOOL, false},
                {"null", YARN_JSON_NULL, false}};
    for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++) {
        size_t len = strlen(lits[i].text);
        size_t have = (size_t)(jp->end - jp->p);
        if (jp->p[0] != lits[i].text[0]) {
            continue;
        }
        if (have < len) {
            if (memcmp(jp->p, lits[i].text, have) == 0) {
                return json_fail(jp, jp->p, FR_ETRUNC, "input ends inside a literal");
            }
            break;
        }
        if (memcmp(jp->p, lits[i].text, len) != 0) {
            break;
        }
        n->type = lits[i].type;
        n->b = lits[i].b;
        jp->p += len;
        return 0;
    }
    return json_fail(jp, jp->p, FR_EINVAL, "expected a value");
}

int yarn_json_parse(const char *text, size_t len, yarn_json_doc *doc, fr_error *err)
{
    memset(doc, 0, sizeof(*doc));
    json_parser jp = {.start = text, .p = text, .end = text + len, .doc = doc, .err = err};
    if ((doc->strings = malloc(len + 1)) == NULL) {
        return fr_error_set(err, FR_ENOMEM, "", "out of memory");
    }
    jp.sp = doc->strings;

    uint32_t stack[YARN_JSON_MAX_DEPTH], last[YARN_JSON_MAX_DEPTH];
    size_t depth = 0;
    json_want want = WANT_VALUE;
    const char *key = NULL;
    size_t key_len = 0;
    int rv;
    for (;;) {
        if (want == WANT_SEP_OR_CLOSE && depth == 0) {
            break;
        }
        json_skip_ws(&jp);
        if (jp.p == jp.end) {
            rv = depth == 0
                     ? json_fail(&jp, jp.p, FR_ETRUNC, "no JSON value")
                     : json_fail(&jp, jp.p, FR_ETRUNC, "input ends inside an object or array");
            goto fail;
        }
        char c = *jp.p;
        bool in_object = depth > 0 && doc->nodes[stack[depth - 1]].type == YARN_JSON_OBJECT;
        switch (want) {
        case WANT_KEY_OR_CLOSE:
        case WANT_KEY:
            if (c == '}' && want == WANT_KEY_OR_CLOSE) {
                jp.p++;
                depth--;
                want = WANT_SEP_OR_CLOSE;
                continue;
            }
            if (c != '"') {
                rv = json_fail(&jp, jp.p, FR_EINVAL, "expected a member name in quotes");
                goto fail;
            }
            if ((rv = json_string(&jp, &key, &key_len)) != 0) {
                goto fail;
            }
            json_skip_ws(&jp);
            if (jp.p == jp.end) {
                rv = json_fail(&jp, jp.p, FR_ETRUNC, "input ends after a member name");
                goto fail;
            }
            if (*jp.p != ':') {
                rv = json_fail(&jp, jp.p, FR_EINVAL, "expected ':' after a member name");
                goto fail;
            }
            jp.p++;
            want = WANT_VALUE;
            continue;
        case WANT_VALUE_OR_CLOSE:
            if (c == ']') {
                jp.p++;
                depth--;
                want = WANT_SEP_OR_CLOSE;
                continue;
            }
            /* fallthrough */
        case WANT_VALUE: {
            uint32_t idx = 0;
            if ((rv = json_node_new(&jp, YARN_JSON_NULL, &idx)) != 0) {
                goto fail;
            }
            yarn_json_node *n = &doc->nodes[idx];
            if (in_object) {
                n->key = key;
                n->key_len = key_len;
            }
            if (depth > 0) {
                yarn_json_node *parent = &doc->nodes[stack[depth - 1]];
                if (last[depth - 1] == YARN_JSON_NONE) {
                    parent->first = idx;
                } else {
                    doc->nodes[last[depth - 1]].next = idx;
                }
                parent->count++;
                last[depth - 1] = idx;
            }
            if (c == '{' || c == '[') {
                if (depth == YARN_JSON_MAX_DEPTH) {
                    rv = json_fail(&jp, jp.p, FR_EDEPTH, "nested deeper than 128 levels");
                    goto fail;
                }
                n->type = c == '{' ? YARN_JSON_OBJECT : YARN_JSON_ARRAY;
                stack[depth] = idx;
                last[depth] = YARN_JSON_NONE;
                depth++;
                jp.p++;
                want = c == '{' ? WANT_KEY_OR_CLOSE : WANT_VALUE_OR_CLOSE;
                continue;
            }
            if (c == '"') {
                n->type = YARN_JSON_STRING;
                rv = json_string(&jp, &n->s, &n->len);
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                n->type = YARN_JSON_NUMBER;
                rv = json_number(&jp, n);
            } else {
                rv = json_literal(&jp, n);
            }
            if (rv != 0) {
                goto fail;
            }
            want = WANT_SEP_OR_CLOSE;
            continue;
        }
        case WANT_SEP_OR_CLOSE:
            if (c == ',') {
                jp.p++;
                want = in_object ? WANT_KEY : WANT_VALUE;
            } else if (c == (in_object ? '}' : ']')) {
                jp.p++;
                depth--;
            } else {
                rv = json_fail(&jp, jp.p, FR_EINVAL,
                               in_object ? "expected ',' or '}' after a member"
                                         : "expected ',' or ']' after an element");
                goto fail;
            }
            continue;
        }
    }
    json_skip_ws(&jp);
    if (jp.p != jp.end) {
        rv = json_fail(&jp, jp.p, FR_ETRAILING, "bytes after the JSON value");
        goto fail;
    }
    return 0;

fail:
    yarn_json_free(doc);
    return rv;
}

void yarn_json_free(yarn_json_doc *doc)
{
    if (doc == NULL) {
        return;
    }
    free(doc->nodes);
    free(doc->strings);
    memset(doc, 0, sizeof(*doc));
}

const yarn_json_node *yarn_json_root(const yarn_json_doc *doc)
{
    return doc->nnodes > 0 ? &doc->nodes[0] : NULL;
}

const yarn_json_node *yarn_json_first(const yarn_json_doc *doc, const yarn_json_node *n)
{
    if (n == NULL || (n->type != YARN_JSON_ARRAY && n->type != YARN_JSON_OBJECT) ||
        n->first == YARN_JSON_NONE) {
        return NULL;
    }
    return &doc->nodes[n->first];
}

const yarn_json_node *yarn_json_next(const yarn_json_doc *doc, const yarn_json_node *n)
{
    return n == NULL || n->next == YARN_JSON_NONE ? NULL : &doc->nodes[n->next];
}

const yarn_json_node *yarn_json_get(const yarn_json_doc *doc, const yarn_json_node *obj,
                                    const char *key)
{
    if (obj == NULL || obj->type != YARN_JSON_OBJECT) {
        return NULL;
    }
    size_t klen = strlen(key);
    for (const yarn_json_node *c = yarn_json_first(doc, obj); c != NULL;
         c = yarn_json_next(doc, c)) {
        if (c->key_len == klen && memcmp(c->key, key, klen) == 0) {
            return c;
        }
    }
    return NULL;
}

const char *yarn_json_type_name(yarn_json_type t)
{
    switch (t) {
    case YARN_JSON_NULL:
        return "null";
    case YARN_JSON_BOOL:
        return "bool";
    case YARN_JSON_NUMBER:
        return "number";
    case YARN_JSON_STRING:
        return "string";
    case YARN_JSON_ARRAY:
        return "array";
    case YARN_JSON_OBJECT:
        return "object";
    }
    return "?";
}
