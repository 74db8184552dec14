/* A targeted scanner for libvirt domain descriptions (see domxml.h). */
#include "domxml.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/err.h"

/* Element names are remembered this deep; the paths we read are at most
 * five levels, deeper elements are only counted. */
#define DOMXML_NAMES 16
/* A tag value longer than this is cut: Nova names and ids are short. */
#define DOMXML_TEXT_MAX 1024

typedef struct xml_span {
    const char *p;
    size_t len;
} xml_span;

typedef enum xml_kind {
    XML_END,
    XML_OPEN,  /* <name ...> */
    XML_EMPTY, /* <name .../> */
    XML_CLOSE, /* </name> */
    XML_TEXT,  /* character data, entities still encoded */
    XML_CDATA, /* <![CDATA[...]]>, taken as written */
} xml_kind;

typedef struct xml_tok {
    xml_kind kind;
    xml_span name;  /* OPEN, EMPTY, CLOSE */
    xml_span attrs; /* OPEN, EMPTY: the text between name and '>' */
    xml_span text;  /* TEXT, CDATA */
} xml_tok;

typedef struct xml_scan {
    const char *p, *end;
} xml_scan;

/* The Nova tags, in the order they are attached to metrics. */
enum nova_key {
    NOVA_UUID,
    NOVA_NAME,
    NOVA_FLAVOR,
    NOVA_VCPUS,
    NOVA_MEMORY,
    NOVA_DISK,
    NOVA_SWAP,
    NOVA_EPHEMERAL,
    NOVA_USER,
    NOVA_USER_ID,
    NOVA_PROJECT,
    NOVA_PROJECT_ID,
    NOVA_PACKAGE,
    NOVA_NKEYS,
};

/* Nova writes flavor memory and swap in MiB, disk and ephemeral in GiB. */
static const char *const nova_keys[NOVA_NKEYS] = {
    "nova_uuid",    "nova_name",       "nova_flavor",       "nova_vcpus", "nova_memory_mb",
    "nova_disk_gb", "nova_swap_mb",    "nova_ephemeral_gb", "nova_user",  "nova_user_id",
    "nova_project", "nova_project_id", "nova_package",
};

/* ---- tokens ----------------------------------------------------------- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool is_name_char(char c)
{
    return !is_space(c) && c != '/' && c != '>' && c != '=' && c != '<' && c != '\0' && c != '"' &&
           c != '\'';
}

static bool starts(const xml_scan *s, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(s->end - s->p) >= n && memcmp(s->p, lit, n) == 0;
}

/* Moves past the first occurrence of lit; false when there is none. */
static bool skip_past(xml_scan *s, const char *lit)
{
    size_t n = strlen(lit);
    for (const char *q = s->p; (size_t)(s->end - q) >= n; q++) {
        if (memcmp(q, lit, n) == 0) {
            s->p = q + n;
            return true;
        }
    }
    return false;
}

static bool span_eq(xml_span a, const char *lit)
{
    size_t n = strlen(lit);
    return a.len == n && memcmp(a.p, lit, n) == 0;
}

static xml_span span_local(xml_span name)
{
    const char *colon = memchr(name.p, ':', name.len);
    if (colon == NULL) {
        return name;
    }
    return (xml_span){colon + 1, name.len - (size_t)(colon + 1 - name.p)};
}

/* The prefix of a qualified name ("nova" of "nova:name"), empty when none. */
static xml_span span_prefix(xml_span name)
{
    const char *colon = memchr(name.p, ':', name.len);
    return (xml_span){name.p, colon != NULL ? (size_t)(colon - name.p) : 0};
}

static bool read_name(xml_scan *s, xml_span *name)
{
    const char *start = s->p;
    while (s->p < s->end && is_name_char(*s->p)) {
        s->p++;
    }
    *name = (xml_span){start, (size_t)(s->p - start)};
    return name->len > 0;
}

static void skip_space(xml_scan *s)
{
    while (s->p < s->end && is_space(*s->p)) {
        s->p++;
    }
}

/* One attribute at s->p: name, '=', quoted value. The value span excludes
 * the quotes. False when malformed. */
static bool read_attr(xml_scan *s, xml_span *name, xml_span *value)
{
    if (!read_name(s, name)) {
        return false;
    }
    skip_space(s);
    if (s->p >= s->end || *s->p != '=') {
        return false;
    }
    s->p++;
    skip_space(s);
    if (s->p >= s->end || (*s->p != '"' && *s->p != '\'')) {
        return false;
    }
    char quote = *s->p++;
    const char *start = s->p;
    const char *q = memchr(s->p, quote, (size_t)(s->end - s->p));
    if (q == NULL) {
        return false;
    }
    *value = (xml_span){start, (size_t)(q - start)};
    s->p = q + 1;
    return true;
}

/* The rest of a start tag after its name: attributes up to '>' or '/>'. */
static int read_start_tag(xml_scan *s, xml_tok *t)
{
    const char *start = s->p;
    for (;;) {
        skip_space(s);
        if (s->p >= s->end) {
            return FR_EINVAL;
        }
        if (*s->p == '>' || (*s->p == '/' && s->end - s->p >= 2 && s->p[1] == '>')) {
            break;
        }
        xml_span n, v;
        if (!read_attr(s, &n, &v)) {
            return FR_EINVAL;
        }
    }
    t->attrs = (xml_span){start, (size_t)(s->p - start)};
    if (*s->p == '/') {
        t->kind = XML_EMPTY;
        s->p += 2;
    } else {
        t->kind = XML_OPEN;
        s->p += 1;
    }
    return 0;
}

/* A <!DOCTYPE ...> with an optional [internal subset]. */
static int skip_declaration(xml_scan *s)
{
    int depth = 0;
    char quote = 0;
    for (; s->p < s->end; s->p++) {
        char c = *s->p;
        if (quote != 0) {
            quote = c == quote ? 0 : quote;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else if (c == '[') {
            depth++;
        } else if (c == ']') {
            depth--;
        } else if (c == '>' && depth <= 0) {
            s->p++;
            return 0;
        }
    }
    return FR_EINVAL;
}

static int scan_next(xml_scan *s, xml_tok *t)
{
    for (;;) {
        memset(t, 0, sizeof(*t));
        if (s->p >= s->end) {
            t->kind = XML_END;
            return 0;
        }
        if (*s->p != '<') {
            const char *start = s->p;
            const char *lt = memchr(s->p, '<', (size_t)(s->end - s->p));
            s->p = lt != NULL ? lt : s->end;
            t->kind = XML_TEXT;
            t->text = (xml_span){start, (size_t)(s->p - start)};
            return 0;
        }
        if (starts(s, "<!--")) {
            s->p += 4;
            if (!skip_past(s, "-->")) {
                return FR_EINVAL;
            }
            continue;
        }
        if (starts(s, "<![CDATA[")) {
            s->p += 9;
            const char *start = s->p;
            if (!skip_past(s, "]]>")) {
                return FR_EINVAL;
            }
            t->kind = XML_CDATA;
            t->text = (xml_span){start, (size_t)(s->p - 3 - start)};
            return 0;
        }
        if (starts(s, "<?")) {
            s->p += 2;
            if (!skip_past(s, "?>")) {
                return FR_EINVAL;
            }
            continue;
        }
        if (starts(s, "<!")) {
            s->p += 2;
            int rv = skip_declaration(s);
            if (rv != 0) {
                return rv;
            }
            continue;
        }
        if (starts(s, "</")) {
            s->p += 2;
            if (!read_name(s, &t->name)) {
                return FR_EINVAL;
            }
            skip_space(s);
            if (s->p >= s->end || *s->p != '>') {
                return FR_EINVAL;
            }
            s->p++;
            t->kind = XML_CLOSE;
            return 0;
        }
        s->p++;
        if (!read_name(s, &t->name)) {
            return FR_EINVAL;
        }
        return read_start_tag(s, t);
    }
}

/* The value of attribute `name` in a start tag's attribute text. */
static bool attr_get(xml_span attrs, const char *name, xml_span *value)
{
    xml_scan s = {attrs.p, attrs.p + attrs.len};
    for (;;) {
        skip_space(&s);
        if (s.p >= s.end) {
            return false;
        }
        xml_span n, v;
        if (!read_attr(&s, &n, &v)) {
            return false;
        }
        if (span_eq(n, name)) {
            *value = v;
            return true;
        }
    }
}

/* ---- character data --------------------------------------------------- */

typedef struct text_buf {
    char *p;
    size_t len, cap;
} text_buf;

static int text_put(text_buf *b, const char *s, size_t n)
{
    if (b->len + n > DOMXML_TEXT_MAX) {
        n = DOMXML_TEXT_MAX - b->len;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 64;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            return FR_ENOMEM;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static size_t utf8_put(char out[4], uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the entity at s (just past '&', up to ';' within n bytes) into
 * out; returns the bytes consumed after '&', or 0 when it is not one we
 * know (then the '&' is kept as written). */
static size_t entity_decode(const char *s, size_t n, char out[4], size_t *outlen)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"lt;", '<'}, {"gt;", '>'}, {"amp;", '&'}, {"apos;", '\''}, {"quot;", '"'}};
    for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
        size_t k = strlen(named[i].name);
        if (n >= k && memcmp(s, named[i].name, k) == 0) {
            out[0] = named[i].c;
            *outlen = 1;
            return k;
        }
    }
    if (n < 3 || s[0] != '#') {
        return 0;
    }
    bool hex = s[1] == 'x';
    uint32_t cp = 0;
    size_t i = hex ? 2 : 1, digits = 0;
    for (; i < n && s[i] != ';'; i++, digits++) {
        char c = s[i];
        uint32_t d;
        if (c >= '0' && c <= '9') {
            d = (uint32_t)(c - '0');
        } else if (hex && c >= 'a' && c <= 'f') {
            d = (uint32_t)(c - 'a' + 10);
        } else if (hex && c >= 'A' && c <= 'F') {
            d = (uint32_t)(c - 'A' + 10);
        } else {
            return 0;
        }
        cp = cp * (hex ? 16u : 10u) + d;
        if (cp > 0x10FFFF) {
            return 0;
        }
    }
    if (i >= n || digits == 0 || cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    *outlen = utf8_put(out, cp);
    return i + 1;
}

static int text_put_decoded(text_buf *b, xml_span v)
{
    size_t i = 0;
    while (i < v.len) {
        const char *amp = memchr(v.p + i, '&', v.len - i);
        size_t plain = amp != NULL ? (size_t)(amp - (v.p + i)) : v.len - i;
        int rv = text_put(b, v.p + i, plain);
        if (rv != 0) {
            return rv;
        }
        i += plain;
        if (i >= v.len) {
            break;
        }
        char buf[4];
        size_t outlen = 0;
        size_t used = entity_decode(v.p + i + 1, v.len - i - 1, buf, &outlen);
        if (used == 0) {
            rv = text_put(b, "&", 1);
            i += 1;
        } else {
            rv = text_put(b, buf, outlen);
            i += 1 + used;
        }
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* A decoded, whitespace-trimmed copy of b's text; NULL when empty. */
static char *text_take(text_buf *b, int *rv)
{
    *rv = 0;
    size_t start = 0, end = b->len;
    while (start < end && is_space(b->p[start])) {
        start++;
    }
    while (end > start && is_space(b->p[end - 1])) {
        end--;
    }
    if (end == start) {
        b->len = 0;
        return NULL;
    }
    char *s = malloc(end - start + 1);
    if (s == NULL) {
        *rv = FR_ENOMEM;
        return NULL;
    }
    memcpy(s, b->p + start, end - start);
    s[end - start] = '\0';
    b->len = 0;
    return s;
}

static char *span_decode(xml_span v, int *rv)
{
    text_buf b = {0};
    *rv = text_put_decoded(&b, v);
    char *s = *rv == 0 ? text_take(&b, rv) : NULL;
    free(b.p);
    return s;
}

/* ---- the domain ------------------------------------------------------- */

typedef struct dom_scan {
    domxml *out;
    size_t depth; /* open elements; the root <domain> is depth 1 */
    xml_span names[DOMXML_NAMES + 1];
    bool disk_counts;  /* the open <disk> is one whose stats we read */
    size_t nova_depth; /* depth of Nova's <instance>, 0 outside it */
    bool nova_seen;
    xml_span nova_prefix; /* its namespace prefix, empty for a default namespace */
    int capture;          /* nova_key whose text is being read, -1 none */
    size_t capture_depth;
    text_buf text;
    char *nova[NOVA_NKEYS];
} dom_scan;

static int list_push(char ***v, size_t *n, char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(*nv));
    if (nv == NULL) {
        free(s);
        return FR_ENOMEM;
    }
    nv[(*n)++] = s;
    *v = nv;
    return 0;
}

/* Stores the decoded attribute as Nova tag k (a later value wins). */
static int nova_set_attr(dom_scan *d, int k, xml_span attrs, const char *attr)
{
    xml_span v;
    if (!attr_get(attrs, attr, &v)) {
        return 0;
    }
    int rv;
    char *s = span_decode(v, &rv);
    if (rv != 0) {
        return rv;
    }
    free(d->nova[k]);
    d->nova[k] = s;
    return 0;
}

static void capture_start(dom_scan *d, int key)
{
    d->capture = key;
    d->capture_depth = d->depth;
    d->text.len = 0;
}

/* Is the element named `name` at the current depth in Nova's namespace? */
static bool nova_elem(const dom_scan *d, xml_span name)
{
    xml_span pfx = span_prefix(name);
    return d->nova_depth != 0 && pfx.len == d->nova_prefix.len &&
           memcmp(pfx.p, d->nova_prefix.p, pfx.len) == 0;
}

/* True when the element opened at depth 3 under <metadata> is Nova's. */
static bool nova_instance(const dom_scan *d, xml_span name, xml_span attrs, xml_span *prefix)
{
    if (!span_eq(span_local(name), "instance")) {
        return false;
    }
    *prefix = span_prefix(name);
    char decl[128] = "xmlns";
    if (prefix->len > 0) {
        if (prefix->len + 7 > sizeof(decl)) {
            return false;
        }
        decl[5] = ':';
        memcpy(decl + 6, prefix->p, prefix->len);
        decl[6 + prefix->len] = '\0';
    }
    xml_span uri;
    return attr_get(attrs, decl, &uri) && span_eq(uri, DOMXML_NOVA_NS);
}

/* Elements inside Nova's <instance>: depth is the new element's depth. */
static int nova_open(dom_scan *d, xml_span name, xml_span attrs)
{
    if (!nova_elem(d, name)) {
        return 0;
    }
    xml_span local = span_local(name);
    size_t rel = d->depth - d->nova_depth; /* 1: child of <instance> */
    if (rel == 1) {
        if (span_eq(local, "name")) {
            capture_start(d, NOVA_NAME);
        } else if (span_eq(local, "flavor")) {
            return nova_set_attr(d, NOVA_FLAVOR, attrs, "name");
        } else if (span_eq(local, "package")) {
            return nova_set_attr(d, NOVA_PACKAGE, attrs, "version");
        }
        return 0;
    }
    if (rel != 2 || d->depth - 1 > DOMXML_NAMES) {
        return 0;
    }
    xml_span parent = span_local(d->names[d->depth - 1]);
    if (span_eq(parent, "flavor")) {
        static const struct {
            const char *name;
            int key;
        } flavor[] = {{"vcpus", NOVA_VCPUS},
                      {"memory", NOVA_MEMORY},
                      {"disk", NOVA_DISK},
                      {"swap", NOVA_SWAP},
                      {"ephemeral", NOVA_EPHEMERAL}};
        for (size_t i = 0; i < sizeof(flavor) / sizeof(flavor[0]); i++) {
            if (span_eq(local, flavor[i].name)) {
                capture_start(d, flavor[i].key);
            }
        }
    } else if (span_eq(parent, "owner")) {
        if (span_eq(local, "user")) {
            capture_start(d, NOVA_USER);
            return nova_set_attr(d, NOVA_USER_ID, attrs, "uuid");
        }
        if (span_eq(local, "project")) {
            capture_start(d, NOVA_PROJECT);
            return nova_set_attr(d, NOVA_PROJECT_ID, attrs, "uuid");
        }
    }
    return 0;
}

/* A start tag at the new depth d->depth (already counted). */
static int elem_open(dom_scan *d, xml_span name, xml_span attrs, bool want_nova)
{
    if (d->depth <= DOMXML_NAMES) {
        d->names[d->depth] = name;
    }
    if (d->depth == 1) {
        return span_eq(name, "domain") ? 0 : FR_EINVAL;
    }
    if (d->nova_depth != 0) {
        return nova_open(d, name, attrs);
    }
    if (d->depth == 2 && span_eq(name, "uuid")) {
        capture_start(d, NOVA_UUID);
        return 0;
    }
    if (d->depth == 3 && span_eq(d->names[2], "devices") && span_eq(name, "disk")) {
        xml_span dev;
        /* Stats of a cdrom or floppy are mostly absent or an error. */
        d->disk_counts =
            !attr_get(attrs, "device", &dev) || !(span_eq(dev, "cdrom") || span_eq(dev, "floppy"));
        return 0;
    }
    if (d->depth == 3 && want_nova && span_eq(d->names[2], "metadata")) {
        xml_span prefix;
        if (nova_instance(d, name, attrs, &prefix)) {
            d->nova_depth = d->depth;
            d->nova_prefix = prefix;
            d->nova_seen = true;
        }
        return 0;
    }
    if (d->depth == 4 && span_eq(name, "target") && span_eq(d->names[2], "devices")) {
        bool disk = span_eq(d->names[3], "disk") && d->disk_counts;
        bool iface = span_eq(d->names[3], "interface");
        xml_span dev;
        if ((!disk && !iface) || !attr_get(attrs, "dev", &dev)) {
            return 0;
        }
        int rv;
        char *s = span_decode(dev, &rv);
        if (s == NULL) {
            return rv;
        }
        return disk ? list_push(&d->out->disks, &d->out->ndisks, s)
                    : list_push(&d->out->ifaces, &d->out->nifaces, s);
    }
    return 0;
}

static int elem_close(dom_scan *d, xml_span name)
{
    if (d->depth == 0) {
        return FR_EINVAL;
    }
    if (d->depth <= DOMXML_NAMES && !(d->names[d->depth].len == name.len &&
                                      memcmp(d->names[d->depth].p, name.p, name.len) == 0)) {
        return FR_EINVAL;
    }
    if (d->capture >= 0 && d->depth == d->capture_depth) {
        int rv;
        char *s = text_take(&d->text, &rv);
        if (rv != 0) {
            return rv;
        }
        free(d->nova[d->capture]);
        d->nova[d->capture] = s;
        d->capture = -1;
    }
    if (d->depth == d->nova_depth) {
        d->nova_depth = 0;
    }
    d->depth--;
    return 0;
}

static int scan_domain(dom_scan *d, const char *xml, size_t len, bool want_nova)
{
    xml_scan s = {xml, xml + len};
    bool seen_root = false;
    for (;;) {
        xml_tok t;
        int rv = scan_next(&s, &t);
        if (rv != 0) {
            return rv;
        }
        switch (t.kind) {
        case XML_END:
            return seen_root && d->depth == 0 ? 0 : FR_EINVAL;
        case XML_OPEN:
        case XML_EMPTY:
            if (d->depth == 0 && seen_root) {
                return FR_EINVAL; /* a second root */
            }
            seen_root = true;
            d->depth++;
            rv = elem_open(d, t.name, t.attrs, want_nova);
            if (rv == 0 && t.kind == XML_EMPTY) {
                rv = elem_close(d, t.name);
            }
            break;
        case XML_CLOSE:
            rv = elem_close(d, t.name);
            break;
        case XML_TEXT:
            if (d->capture >= 0) {
                rv = text_put_decoded(&d->text, t.text);
            }
            break;
        case XML_CDATA:
            if (d->capture >= 0) {
                rv = text_put(&d->text, t.text.p, t.text.len);
            }
            break;
        }
        if (rv != 0) {
            return rv;
        }
    }
}

void domxml_free(domxml *d)
{
    if (d == NULL) {
        return;
    }
    for (size_t i = 0; i < d->ndisks; i++) {
        free(d->disks[i]);
    }
    for (size_t i = 0; i < d->nifaces; i++) {
        free(d->ifaces[i]);
    }
    for (size_t i = 0; i < d->nnova; i++) {
        free(d->nova[i].key);
        free(d->nova[i].value);
    }
    free(d->disks);
    free(d->ifaces);
    free(d->nova);
    memset(d, 0, sizeof(*d));
}

/* Moves the Nova values found into out->nova, in nova_keys order. Only a
 * domain that has Nova's metadata gets tags; its UUID is the instance's. */
static int nova_collect(dom_scan *d, bool found)
{
    if (!found) {
        return 0;
    }
    size_t n = 0;
    for (int k = 0; k < NOVA_NKEYS; k++) {
        n += d->nova[k] != NULL;
    }
    d->out->nova = calloc(n != 0 ? n : 1, sizeof(domxml_tag));
    if (d->out->nova == NULL) {
        return FR_ENOMEM;
    }
    for (int k = 0; k < NOVA_NKEYS; k++) {
        if (d->nova[k] == NULL) {
            continue;
        }
        char *key = strdup(nova_keys[k]);
        if (key == NULL) {
            return FR_ENOMEM;
        }
        d->out->nova[d->out->nnova++] = (domxml_tag){key, d->nova[k]};
        d->nova[k] = NULL;
    }
    return 0;
}

int domxml_parse(const char *xml, size_t len, bool want_nova, domxml *out)
{
    if (xml == NULL || out == NULL) {
        return FR_EINVAL;
    }
    dom_scan d = {.out = out, .capture = -1};
    int rv = scan_domain(&d, xml, len, want_nova);
    if (rv == 0) {
        rv = nova_collect(&d, d.nova_seen);
    }
    for (int k = 0; k < NOVA_NKEYS; k++) {
        free(d.nova[k]);
    }
    free(d.text.p);
    if (rv != 0) {
        domxml_free(out);
    }
    return rv;
}
