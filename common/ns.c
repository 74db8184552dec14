/* Namespace queries: compiled once, matched without allocating. */
#include "fresco/ns.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef enum ns_kind {
    NS_EXACT, /* one literal element */
    NS_ANY,   /* "*" not last: exactly one element */
    NS_TAIL,  /* "*" last: one or more elements */
    NS_ALT,   /* "(a;b;c)": any listed element */
} ns_kind;

/* An element as a range of the query text; for NS_ALT the range is the
 * text between the parentheses, alternatives split on ';' when matching. */
typedef struct ns_el {
    uint32_t off, len;
    ns_kind kind;
} ns_el;

/* A compiled query namespace; el and text are borrowed. */
typedef struct ns_pat {
    const char *text; /* the query as given */
    size_t nel;
    const ns_el *el;
} ns_pat;

/* One query namespace as stored: its elements, then a copy of its text,
 * in one block. */
typedef struct ns_entry {
    ns_pat pat;
    ns_el el[];
} ns_entry;

/* The last-element index: a chained hash table from each query's last
 * element (each name of a last tuple) to the query, so that a match tries
 * only the few queries that can end the way the namespace ends. Queries
 * ending in '*' are kept apart and always tried. */
typedef struct ns_link {
    const char *key; /* into the entry's text */
    uint32_t klen, hash;
    uint32_t entry;
    uint32_t next; /* index + 1 of the next link in the chain; 0 ends it */
} ns_link;

struct fr_ns_query {
    ns_entry **v;
    size_t n, cap;
    ns_link *links;
    size_t nlinks, caplinks;
    uint32_t *heads; /* per slot: index + 1 of the chain's first link */
    size_t nheads;   /* a power of two, or 0 */
    uint32_t *tails; /* entries whose last element is '*' */
    size_t ntails, captails;
};

/* A concrete element borrowed from a namespace string. */
typedef struct ns_span {
    const char *p;
    size_t len;
} ns_span;

/* ---- compiling -------------------------------------------------------- */

/* Text fit for an error message: at most cap - 4 bytes, cut at a
 * character boundary, control bytes as '?'. */
static const char *el_show(char *buf, size_t cap, const char *s, size_t len)
{
    size_t n = len;
    bool cut = false;
    if (n > cap - 4) {
        n = cap - 4;
        cut = true;
        cut = true;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) {
            n--;
        }
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (cut) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

static int el_error(fr_error *err, const char *query, size_t idx, const char *s, size_t len,
                    const char *why)
{
    char shown[48], where[64];
    el_show(where, sizeof(where), query, strlen(query));
    return fr_error_set(err, FR_EINVAL, where, "element %zu '%s' %s", idx,
                        el_show(shown, sizeof(shown), s, len), why);
}

/* Checks one tuple "(a;b)": every alternative non-empty, no '*', '/', or
 * nested parenthesis. */
static const char *alt_check(const char *s, size_t len)
{
    if (len < 2 || s[len - 1] != ')') {
        return "has no closing parenthesis";
    }
    size_t start = 1;
    for (size_t i = 1; i < len - 1; i++) {
        char c = s[i];
        if (c == '(' || c == ')') {
            return "has a parenthesis inside a tuple";
        }
        if (c == '*') {
            return "mixes '*' with a tuple";
        }
        if (c == ';') {
            if (i == start) {
                return "has an empty name in its tuple";
            }
            start = i + 1;
        }
    }
    if (start == len - 1) {
        return "has an empty name in its tuple";
    }
    return NULL;
}

static const char *el_check(const char *s, size_t len, ns_kind *kind)
{
    if (len == 0) {
        return "is empty";
    }
    if (s[0] == '(') {
        *kind = NS_ALT;
        return alt_check(s, len);
    }
    if (len == 1 && s[0] == '*') {
        *kind = NS_ANY;
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '*') {
            return "mixes '*' with other characters (a wildcard is a whole element)";
        }
        if (s[i] == '(' || s[i] == ')') {
            return "has a parenthesis outside a tuple (write a tuple as a whole element: (a;b))";
        }
        if (s[i] == ';') {
            return "has ';' outside a tuple (write a tuple as (a;b))";
        }
    }
    *kind = NS_EXACT;
    return NULL;
}

/* Compiles text into pat, with its elements in el (FR_NS_MAX_ELEMENTS of
 * them); pat borrows text and el. No allocation. */
static int pat_compile(ns_pat *pat, ns_el *el, const char *text, fr_error *err)
{
    size_t total = strlen(text);
    pat->text = text;
    pat->nel = 0;
    if (total == 0 || text[0] != '/') {
        char where[64];
        el_show(where, sizeof(where), text, total);
        return fr_error_set(err, FR_EINVAL, where, "a namespace starts with '/'");
    }
    if (total > UINT32_MAX) {
        return fr_error_set(err, FR_EINVAL, NULL, "namespace too long");
    }
    const char *p = text + 1;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        size_t idx = pat->nel + 1;
        ns_kind kind = NS_EXACT;
        if (pat->nel == FR_NS_MAX_ELEMENTS) {
            return el_error(err, text, idx, p, len, "is past the limit of 64 elements");
        }
        const char *why = el_check(p, len, &kind);
        if (why != NULL) {
            return el_error(err, text, idx, p, len, why);
        }
        ns_el *e = &el[pat->nel++];
        e->kind = kind;
        e->off = (uint32_t)(p - text);
        e->len = (uint32_t)len;
        if (kind == NS_ALT) {
            e->off++;
            e->len -= 2;
        }
        if (slash == NULL) {
            break;
        }
        p = slash + 1;
    }
    if (el[pat->nel - 1].kind == NS_ANY) {
        el[pat->nel - 1].kind = NS_TAIL;
    }
    pat->el = el;
    return 0;
}

/* ---- matching --------------------------------------------------------- */

/* Next element of a concrete namespace at *p (just past a '/').
 * False at the end. */
static bool span_next(const char **p, ns_span *out)
{
    if (*p == NULL) {
        return false;
    }
    const char *s = *p;
    const char *slash = strchr(s, '/');
    out->p = s;
    out->len = slash != NULL ? (size_t)(slash - s) : strlen(s);
    *p = slash != NULL ? slash + 1 : NULL;
    return true;
}

static bool alt_has(const char *alts, size_t len, const char *s, size_t slen)
{
    const char *end = alts + len;
    while (alts < end) {
        const char *semi = memchr(alts, ';', (size_t)(end - alts));
        size_t n = semi != NULL ? (size_t)(semi - alts) : (size_t)(end - alts);
        if (n == slen && memcmp(alts, s, n) == 0) {
            return true;
        }
        alts += n + 1;
    }
    return false;
}

/* Does the query element e accept the concrete element s? */
static bool el_accepts(const ns_pat *pat, const ns_el *e, const char *s, size_t slen)
{
    const char *t = pat->text + e->off;
    switch (e->kind) {
    case NS_EXACT:
        return slen == e->len && memcmp(t, s, slen) == 0;
    case NS_ANY:
    case NS_TAIL:
        return slen > 0;
    case NS_ALT:
        return alt_has(t, e->len, s, slen);
    }
    return false;
}

/* True when the rest of a namespace (after a '/') is one or more
 * non-empty elements. */
static bool rest_ok(const char *p)
{
    if (p == NULL || *p == '\0' || *p == '/') {
        return false;
    }
    for (; *p != '\0'; p++) {
        if (*p == '/' && (p[1] == '/' || p[1] == '\0')) {
            return false;
        }
    }
    return true;
}

/* A concrete namespace cut into elements once per match call, so each
 * query costs a count comparison and, usually, one short memcmp. */
typedef struct ns_split {
    size_t n; /* elements in all; only the first FR_NS_MAX_ELEMENTS are kept */
    ns_span el[FR_NS_MAX_ELEMENTS];
} ns_split;

/* False for a namespace that no query matches: not starting with '/', or
 * with an empty element. */
static bool ns_split_make(const char *ns, ns_split *out)
{
    const char *p = ns + 1;
    out->n = 0;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (len == 0) {
            return false;
        }
        if (out->n < FR_NS_MAX_ELEMENTS) {
            out->el[out->n] = (ns_span){p, len};
        }
        out->n++;
        if (slash == NULL) {
            return true;
        }
        p = slash + 1;
    }
}

static bool pat_match(const ns_pat *pat, const ns_split *sp)
{
    size_t n = pat->nel;
    if (pat->el[n - 1].kind == NS_TAIL) {
        if (sp->n < n) {
            return false;
        }
        n--; /* the tail takes the rest, which ns_split_make checked */
    } else if (sp->n != n) {
        return false;
    }
    /* Backwards: queries mostly share their head (/intel/libvirt/...) and
     * differ in their last element. */
    for (size_t i = n; i-- > 0;) {
        if (!el_accepts(pat, &pat->el[i], sp->el[i].p, sp->el[i].len)) {
            return false;
        }
    }
    return true;
}

/* Could some namespace starting with prefix's elements match pat? */
static bool pat_wants_prefix(const ns_pat *pat, const char *prefix)
{
    const char *p = prefix + 1;
    ns_span sp;
    if (*p == '\0') {
        return true; /* "/" is the root: everything is below it */
    }
    for (size_t i = 0; i < pat->nel; i++) {
        const ns_el *e = &pat->el[i];
        if (!span_next(&p, &sp) || (sp.len == 0 && p == NULL)) {
            /* The prefix ends (a trailing '/' included): later elements
             * may be anything. */
            return true;
        }
        if (e->kind == NS_TAIL) {
            return sp.len > 0 && (p == NULL || rest_ok(p));
        }
        if (!el_accepts(pat, e, sp.p, sp.len)) {
            return false;
        }
    }
    /* A prefix longer than the query matches nothing. */
    return p == NULL || *p == '\0';
}

/* Can query element e and catalog element c ("*" = dynamic) name the same
 * concrete element? */
static bool el_meets(const ns_pat *q, const ns_el *e, const ns_span *c)
{
    if (c->len == 1 && c->p[0] == '*') {
        return true; /* a dynamic element takes any name the query gives */
    }
    return c->len > 0 && el_accepts(q, e, c->p, c->len);
}

static bool pat_covers(const ns_pat *q, const char *pattern)
{
    if (pattern == NULL || pattern[0] != '/') {
        return false;
    }
    const char *p = pattern + 1;
    ns_span sp;
    for (size_t i = 0; i < q->nel; i++) {
        const ns_el *e = &q->el[i];
        if (!span_next(&p, &sp)) {
            return false;
        }
        if (e->kind == NS_TAIL) {
            return sp.len > 0 && (p == NULL || rest_ok(p));
        }
        if (!el_meets(q, e, &sp)) {
            return false;
        }
    }
    return p == NULL;
}

/* ---- the index -------------------------------------------------------- */

static uint32_t ns_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    }
    return h;
}

/* v with room for need items of size bytes (perhaps moved), or NULL with
 * v untouched when out of memory. */
static void *grow(void *v, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) {
        return v;
    }
    size_t ncap = *cap != 0 ? *cap : 8;
    while (ncap < need) {
        ncap *= 2;
    }
    void *p = realloc(v, ncap * size);
    if (p != NULL) {
        *cap = ncap;
    }
    return p;
}

/* Room for nkeys more links, the table kept at most half full. Leaves the
 * index as it was (only bigger) on failure. */
static bool index_reserve(fr_ns_query *q, size_t nkeys)
{
    size_t need = q->nlinks + nkeys;
    if (nkeys == 0) {
        return true;
    }
    if (need > UINT32_MAX / 2) {
        return false;
    }
    ns_link *links = grow(q->links, &q->caplinks, need, sizeof(*links));
    if (links == NULL) {
        return false;
    }
    q->links = links;
    size_t want = q->nheads != 0 ? q->nheads : 16;
    while (need * 2 > want) {
        want *= 2;
    }
    if (want == q->nheads) {
        return true;
    }
    uint32_t *heads = calloc(want, sizeof(*heads));
    if (heads == NULL) {
        return false;
    }
    free(q->heads);
    q->heads = heads;
    q->nheads = want;
    for (size_t i = 0; i < q->nlinks; i++) {
        uint32_t *slot = &heads[q->links[i].hash & (want - 1)];
        q->links[i].next = *slot;
        *slot = (uint32_t)i + 1;
    }
    return true;
}

static void index_put(fr_ns_query *q, const char *key, size_t klen, uint32_t entry)
{
    ns_link *l = &q->links[q->nlinks];
    l->key = key;
    l->klen = (uint32_t)klen;
    l->hash = ns_hash(key, klen);
    l->entry = entry;
    uint32_t *slot = &q->heads[l->hash & (q->nheads - 1)];
    l->next = *slot;
    *slot = (uint32_t)++q->nlinks;
}

/* Index keys for a pattern: its last element's names (0 for a tail). */
static size_t pat_nkeys(const ns_pat *pat)
{
    const ns_el *e = &pat->el[pat->nel - 1];
    if (e->kind == NS_TAIL) {
        return 0;
    }
    size_t n = 1;
    for (uint32_t i = 0; e->kind == NS_ALT && i < e->len; i++) {
        n += pat->text[e->off + i] == ';';
    }
    return n;
}

/* ---- the public API --------------------------------------------------- */

fr_ns_query *fr_ns_query_new(void)
{
    return calloc(1, sizeof(fr_ns_query));
}

void fr_ns_query_destroy(fr_ns_query *q)
{
    if (q == NULL) {
        return;
    }
    for (size_t i = 0; i < q->n; i++) {
        free(q->v[i]);
    }
    free(q->v);
    free(q->links);
    free(q->heads);
    free(q->tails);
    free(q);
}

int fr_ns_query_add(fr_ns_query *q, const char *query, fr_error *err)
{
    if (q == NULL || query == NULL) {
        return fr_error_set(err, FR_EINVAL, NULL, "no query");
    }
    ns_pat probe;
    ns_el el[FR_NS_MAX_ELEMENTS];
    int rv = pat_compile(&probe, el, query, err);
    if (rv != 0) {
        return rv;
    }
    /* Everything that can fail comes first, so a failed add changes nothing. */
    size_t nkeys = pat_nkeys(&probe);
    ns_entry **v = q->n < UINT32_MAX ? grow(q->v, &q->cap, q->n + 1, sizeof(*v)) : NULL;
    if (v == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    q->v = v;
    if (nkeys == 0) {
        uint32_t *t = grow(q->tails, &q->captails, q->ntails + 1, sizeof(*t));
        if (t == NULL) {
            return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
        }
        q->tails = t;
    }
    if (!index_reserve(q, nkeys)) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    size_t len = strlen(query);
    size_t textoff = sizeof(ns_entry) + probe.nel * sizeof(ns_el);
    ns_entry *e = malloc(textoff + len + 1);
    if (e == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    char *text = (char *)e + textoff;
    memcpy(text, query, len + 1);
    memcpy(e->el, el, probe.nel * sizeof(ns_el));
    e->pat = (ns_pat){text, probe.nel, e->el};
    uint32_t idx = (uint32_t)q->n;
    q->v[q->n++] = e;
    const ns_el *last = &e->el[e->pat.nel - 1];
    if (nkeys == 0) {
        q->tails[q->ntails++] = idx;
    } else if (last->kind == NS_EXACT) {
        index_put(q, text + last->off, last->len, idx);
    } else {
        const char *a = text + last->off, *end = a + last->len;
        while (a < end) {
            const char *semi = memchr(a, ';', (size_t)(end - a));
            size_t n = semi != NULL ? (size_t)(semi - a) : (size_t)(end - a);
            index_put(q, a, n, idx);
            a += n + 1;
        }
    }
    return 0;
}

size_t fr_ns_query_count(const fr_ns_query *q)
{
    return q != NULL ? q->n : 0;
}

const char *fr_ns_query_get(const fr_ns_query *q, size_t i)
{
    return q != NULL && i < q->n ? q->v[i]->pat.text : NULL;
}

bool fr_ns_query_match(const fr_ns_query *q, const char *ns)
{
    ns_split sp;
    if (q == NULL || q->n == 0 || ns == NULL || ns[0] != '/' || !ns_split_make(ns, &sp)) {
        return false;
    }
    /* A namespace longer than any query only matches one ending in '*'. */
    if (sp.n <= FR_NS_MAX_ELEMENTS && q->nheads != 0) {
        const ns_span *last = &sp.el[sp.n - 1];
        uint32_t h = ns_hash(last->p, last->len);
        for (uint32_t l = q->heads[h & (q->nheads - 1)]; l != 0; l = q->links[l - 1].next) {
            const ns_link *k = &q->links[l - 1];
            if (k->hash == h && k->klen == last->len && memcmp(k->key, last->p, last->len) == 0 &&
                pat_match(&q->v[k->entry]->pat, &sp)) {
                return true;
            }
        }
    }
    for (size_t i = 0; i < q->ntails; i++) {
        if (pat_match(&q->v[q->tails[i]]->pat, &sp)) {
            return true;
        }
    }
    return false;
}

bool fr_ns_query_wants_prefix(const fr_ns_query *q, const char *prefix)
{
    if (q == NULL || prefix == NULL || prefix[0] != '/') {
        return false;
    }
    for (size_t i = 0; i < q->n; i++) {
        if (pat_wants_prefix(&q->v[i]->pat, prefix)) {
            return true;
        }
    }
    return false;
}

bool fr_ns_query_covers_pattern(const fr_ns_query *q, size_t i, const char *pattern)
{
    if (q == NULL || i >= q->n) {
        return false;
    }
    return pat_covers(&q->v[i]->pat, pattern);
}

bool fr_ns_match(const char *query, const char *ns)
{
    ns_pat pat;
    ns_el el[FR_NS_MAX_ELEMENTS];
    ns_split sp;
    if (query == NULL || ns == NULL || ns[0] != '/' || pat_compile(&pat, el, query, NULL) != 0 ||
        !ns_split_make(ns, &sp)) {
        return false;
    }
    return pat_match(&pat, &sp);
}
