/* Metric batches: the arena-backed model and its msgpack codec.
 * Wire form: schemas/batch.md. The encoder writes msgpack bytes itself and
 * the decoder reads them with a bounds-checked cursor: both sit on the data
 * path, where every metric crosses each stage once. */
#include "fresco/metric.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define FR_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FR_ASAN 1
#endif
#endif
#ifdef FR_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define LIKELY(x)   __builtin_expect(!!(x), 1)
#define UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HOT_INLINE  static inline __attribute__((always_inline))

/* ---- arena ---- */

typedef struct arena_chunk arena_chunk;
struct arena_chunk {
    arena_chunk *next;
    size_t cap;
    size_t used;
    max_align_t data[];
};

#define ARENA_MIN_CHUNK  4096u
#define ARENA_MAX_GROWTH (4u * 1024u * 1024u)

struct fr_arena {
    arena_chunk *head; /* first chunk; a reset rewinds to it */
    arena_chunk *cur;  /* chunk being filled; chunks after it are empty */
    /* Capacity of the last metric's tag array, so fr_batch_metric_tag can
     * grow it by doubling; 0 when that array is exactly full. */
    uint32_t last_tag_cap;
};

/* A stream of decodes allocates and frees the same few large chunks over
 * and over. Handed back to malloc, they soon go back to the kernel and are
 * faulted in again, page by page, for the next batch: freed chunks are
 * kept in a small process-wide pool instead, bounded in count and bytes.
 * Under AddressSanitizer a pooled chunk is poisoned, so a use of a batch
 * after fr_batch_destroy is still reported. */
#define POOL_MAX_CHUNKS 32
#define POOL_MAX_BYTES  (32u * 1024u * 1024u)
#define POOL_MAX_CHUNK  (8u * 1024u * 1024u)
/* A pooled chunk serves requests down to 1/POOL_MAX_WASTE of its size. */
#define POOL_MAX_WASTE 8
/* Fresh chunks over this are rounded up to a multiple of it, so that the
 * next batch of about the same size finds the same chunks in the pool. */
#define POOL_GRAIN (64u * 1024u)

static struct {
    pthread_mutex_t mu;
    arena_chunk *chunk[POOL_MAX_CHUNKS]; /* oldest first */
    int n;
    size_t bytes;
} chunk_pool = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The smallest pooled chunk of at least cap bytes (the most recently
 * pooled among equals, as the likeliest to be cached), or NULL. */
static arena_chunk *pool_take(size_t cap)
{
    arena_chunk *c = NULL;
    pthread_mutex_lock(&chunk_pool.mu);
    int best = -1;
    for (int i = chunk_pool.n - 1; i >= 0; i--) {
        size_t have = chunk_pool.chunk[i]->cap;
        if (have >= cap && have / POOL_MAX_WASTE <= cap &&
            (best < 0 || have < chunk_pool.chunk[best]->cap)) {
            best = i;
        }
    }
    if (best >= 0) {
        c = chunk_pool.chunk[best];
        memmove(&chunk_pool.chunk[best], &chunk_pool.chunk[best + 1],
                (size_t)(chunk_pool.n - best - 1) * sizeof(c));
        chunk_pool.n--;
        chunk_pool.bytes -= c->cap;
        UNPOISON(c->data, c->cap);
    }
    pthread_mutex_unlock(&chunk_pool.mu);
    return c;
}

/* Pools c, or frees it when the pool is full. */
static void pool_give(arena_chunk *c)
{
    if (c->cap <= POOL_MAX_CHUNK) {
        pthread_mutex_lock(&chunk_pool.mu);
        if (chunk_pool.n < POOL_MAX_CHUNKS && chunk_pool.bytes + c->cap <= POOL_MAX_BYTES) {
            POISON(c->data, c->cap);
            chunk_pool.chunk[chunk_pool.n++] = c;
            chunk_pool.bytes += c->cap;
            c = NULL;
        }
        pthread_mutex_unlock(&chunk_pool.mu);
    }
    free(c);
}

static arena_chunk *arena_chunk_new(size_t cap)
{
    arena_chunk *c = pool_take(cap);
    if (c == NULL) {
        if (cap > POOL_GRAIN && cap <= POOL_MAX_CHUNK) {
            cap = (cap + POOL_GRAIN - 1) / POOL_GRAIN * POOL_GRAIN;
        }
        if ((c = malloc(sizeof(*c) + cap)) == NULL) {
            return NULL;
        }
        c->cap = cap;
    }
    c->next = NULL;
    c->used = 0;
    return c;
}

/* Moves to a chunk with n free bytes at its (max-aligned) start. */
static void *arena_alloc_slow(fr_arena *a, size_t n)
{
    /* Chunks left over from before a reset are reused when big enough. */
    arena_chunk *c = a->cur != NULL ? a->cur->next : a->head;
    if (c != NULL && c->cap >= n) {
        a->cur = c;
        c->used = n;
        return c->data;
    }
    size_t cap = a->cur != NULL ? a->cur->cap * 2 : ARENA_MIN_CHUNK;
    if (cap > ARENA_MAX_GROWTH) {
        cap = ARENA_MAX_GROWTH;
    }
    if (cap < n) {
        cap = n;
    }
    arena_chunk *fresh = arena_chunk_new(cap);
    if (fresh == NULL) {
        return NULL;
    }
    if (a->cur == NULL) {
        fresh->next = a->head;
        a->head = fresh;
    } else {
        fresh->next = a->cur->next;
        a->cur->next = fresh;
    }
    a->cur = fresh;
    fresh->used = n;
    return fresh->data;
}

static inline void *arena_alloc(fr_arena *a, size_t n, size_t align)
{
    arena_chunk *c = a->cur;
    if (LIKELY(c != NULL)) {
        size_t off = (c->used + align - 1) & ~(align - 1);
        if (LIKELY(off <= c->cap && c->cap - off >= n)) {
            c->used = off + n;
            return (unsigned char *)c->data + off;
        }
    }
    return arena_alloc_slow(a, n);
}

/* Makes sure the current chunk has n free bytes, so a decode of a known
 * input size needs few chunk allocations. */
static int arena_reserve(fr_arena *a, size_t n)
{
    if (a->cur != NULL && a->cur->cap - a->cur->used >= n) {
        return 0;
    }
    if (arena_alloc_slow(a, n) == NULL) {
        return FR_ENOMEM;
    }
    a->cur->used = 0;
    return 0;
}

static void arena_rewind(fr_arena *a)
{
    for (arena_chunk *c = a->head; c != NULL; c = c->next) {
        c->used = 0;
    }
    a->cur = a->head;
    a->last_tag_cap = 0;
}

static void arena_free(fr_arena *a)
{
    if (a == NULL) {
        return;
    }
    arena_chunk *c = a->head;
    while (c != NULL) {
        arena_chunk *next = c->next;
        pool_give(c);
        c = next;
    }
    free(a);
}

static inline char *arena_strndup(fr_arena *a, const void *s, size_t n)
{
    char *p = arena_alloc(a, n + 1, 1);
    if (LIKELY(p != NULL)) {
        if (n > 0) {
            memcpy(p, s, n);
        }
        p[n] = '\0';
    }
    return p;
}

static inline char *arena_strdup(fr_arena *a, const char *s)
{
    return arena_strndup(a, s != NULL ? s : "", s != NULL ? strlen(s) : 0);
}

/* A string length for the model. One that does not fit is stored as
 * UINT32_MAX, which the encoder refuses like any string over the limits. */
static inline uint32_t len32(size_t n)
{
    return n <= UINT32_MAX ? (uint32_t)n : UINT32_MAX;
}

/* arena_strdup that also gives the length, for the model's length fields. */
static inline char *arena_strdup_len(fr_arena *a, const char *s, uint32_t *len)
{
    size_t n = s != NULL ? strlen(s) : 0;
    *len = len32(n);
    return arena_strndup(a, s != NULL ? s : "", n);
}

/* ---- the model ---- */

static fr_batch *batch_alloc(void)
{
    fr_batch *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        return NULL;
    }
    b->arena = calloc(1, sizeof(*b->arena));
    if (b->arena == NULL) {
        free(b);
        return NULL;
    }
    b->version = FR_BATCH_VERSION;
    b->task = "";
    b->source = "";
    b->route = "";
    return b;
}

static int batch_set_envelope(fr_batch *b, const char *task, const char *source, uint64_t seq)
{
    const char *t = arena_strdup(b->arena, task);
    const char *s = arena_strdup(b->arena, source);
    if (t == NULL || s == NULL) {
        return FR_ENOMEM;
    }
    b->version = FR_BATCH_VERSION;
    b->task = t;
    b->source = s;
    b->seq = seq;
    return 0;
}

fr_batch *fr_batch_new(const char *task, const char *source, uint64_t seq)
{
    fr_batch *b = batch_alloc();
    if (b != NULL && batch_set_envelope(b, task, source, seq) != 0) {
        fr_batch_destroy(b);
        b = NULL;
    }
    return b;
}

void fr_batch_destroy(fr_batch *b)
{
    if (b == NULL) {
        return;
    }
    arena_free(b->arena);
    if (b->cap_metrics != 0) {
        free(b->metrics);
    }
    free(b->tags);
    free(b);
}

static bool arena_owns(const fr_arena *a, const char *p)
{
    for (const arena_chunk *c = a->head; p != NULL && c != NULL; c = c->next) {
        uintptr_t start = (uintptr_t)c->data;
        if ((uintptr_t)p >= start && (uintptr_t)p < start + c->cap) {
            return true;
        }
    }
    return false;
}

int fr_batch_reset(fr_batch *b, const char *task, const char *source, uint64_t seq)
{
    /* Resetting with the batch's own envelope (b->source...) is natural for
     * a reused batch: copy it out before its memory is reused. */
    char *keep = NULL;
    if (arena_owns(b->arena, task) || arena_owns(b->arena, source)) {
        size_t tl = task != NULL ? strlen(task) + 1 : 1;
        size_t sl = source != NULL ? strlen(source) + 1 : 1;
        if ((keep = malloc(tl + sl)) == NULL) {
            return FR_ENOMEM;
        }
        memcpy(keep, task != NULL ? task : "", tl);
        memcpy(keep + tl, source != NULL ? source : "", sl);
        task = keep;
        source = keep + tl;
    }
    arena_rewind(b->arena);
    b->nmetrics = 0;
    b->ntags = 0;
    b->task = "";
    b->source = "";
    b->route = "";
    int rv = batch_set_envelope(b, task, source, seq);
    free(keep);
    return rv;
}

int fr_batch_set_route(fr_batch *b, const char *route)
{
    if (route == NULL || route[0] == '\0') {
        b->route = "";
        return 0;
    }
    if (strlen(route) > FR_MAX_STRING) {
        return FR_ETOOBIG;
    }
    const char *r = arena_strdup(b->arena, route);
    if (r == NULL) {
        return FR_ENOMEM;
    }
    b->route = r;
    return 0;
}

size_t fr_batch_stream(const fr_batch *b, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s\x1f%s\x1f%s", b->source, b->task, b->route);
    return n < 0 ? 0 : (size_t)n;
}

int fr_batch_add_tag(fr_batch *b, const char *key, const char *value)
{
    if (b->ntags >= FR_MAX_TAGS) {
        return FR_ETOOBIG;
    }
    if (b->ntags == b->cap_tags) {
        uint32_t cap = b->cap_tags ? b->cap_tags * 2 : 4;
        fr_tag *t = realloc(b->tags, cap * sizeof(*t));
        if (t == NULL) {
            return FR_ENOMEM;
        }
        b->tags = t;
        b->cap_tags = cap;
    }
    fr_tag *t = &b->tags[b->ntags];
    t->key = arena_strdup_len(b->arena, key, &t->key_len);
    t->value = arena_strdup_len(b->arena, value, &t->value_len);
    if (t->key == NULL || t->value == NULL) {
        return FR_ENOMEM;
    }
    b->ntags++;
    return 0;
}

/* Makes room for one more metric. 0 or FR_ENOMEM. */
static int metrics_grow(fr_batch *b)
{
    if (b->nmetrics >= b->cap_metrics) {
        if (b->nmetrics >= UINT32_MAX / 2) {
            return FR_ENOMEM;
        }
        uint32_t cap = b->nmetrics ? b->nmetrics * 2 : 16;
        /* With cap_metrics 0 the array, if any, is a decoder's in the arena:
         * moved to the heap on the first append. */
        fr_metric *old = b->cap_metrics != 0 ? b->metrics : NULL;
        fr_metric *m = realloc(old, (size_t)cap * sizeof(*m));
        if (m == NULL) {
            return FR_ENOMEM;
        }
        if (old == NULL && b->nmetrics > 0) {
            memcpy(m, b->metrics, (size_t)b->nmetrics * sizeof(*m));
        }
        b->metrics = m;
        b->cap_metrics = cap;
    }
    return 0;
}

fr_metric *fr_batch_add_ref(fr_batch *b, const fr_metric *src)
{
    if (metrics_grow(b) != 0) {
        return NULL;
    }
    fr_metric *m = &b->metrics[b->nmetrics];
    *m = *src;
    /* The tag array is not b's: a later fr_batch_metric_tag must not
     * grow it in place. */
    b->arena->last_tag_cap = 0;
    b->nmetrics++;
    return m;
}

int fr_batch_metric_merge_tags(fr_batch *b, fr_metric *m, const fr_tag *tags, uint32_t n)
{
    if (n == 0) {
        return 0;
    }
    uint32_t total = m->ntags;
    for (uint32_t i = 0; i < n; i++) {
        bool found = false;
        for (uint32_t j = 0; j < m->ntags && !found; j++) {
            found = strcmp(m->tags[j].key, tags[i].key) == 0;
        }
        total += found ? 0 : 1;
    }
    if (total > FR_MAX_TAGS) {
        return FR_ETOOBIG;
    }
    fr_tag *t = arena_alloc(b->arena, total * sizeof(*t), alignof(fr_tag));
    if (t == NULL) {
        return FR_ENOMEM;
    }
    if (m->ntags > 0) {
        memcpy(t, m->tags, m->ntags * sizeof(*t));
    }
    uint32_t k = m->ntags;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = 0;
        while (j < k && strcmp(t[j].key, tags[i].key) != 0) {
            j++;
        }
        t[j] = tags[i];
        if (j == k) {
            k++;
        }
    }
    m->tags = t;
    m->ntags = k;
    if (b->nmetrics > 0 && m == &b->metrics[b->nmetrics - 1]) {
        b->arena->last_tag_cap = 0;
    }
    return 0;
}

fr_metric *fr_batch_add(fr_batch *b, const char *ns, int64_t ts, fr_value value, const char *unit)
{
    if (metrics_grow(b) != 0) {
        return NULL;
    }
    fr_metric *m = &b->metrics[b->nmetrics];
    m->ns = arena_strdup_len(b->arena, ns, &m->ns_len);
    m->unit = arena_strdup_len(b->arena, unit, &m->unit_len);
    if (m->ns == NULL || m->unit == NULL) {
        return NULL;
    }
    m->ts = ts;
    m->value = value;
    if (value.type == FR_VAL_STRING) {
        const char *s = value.v.s.ptr != NULL ? value.v.s.ptr : "";
        uint32_t n = value.v.s.ptr != NULL ? value.v.s.len : 0;
        m->value.v.s.ptr = arena_strndup(b->arena, s, n);
        m->value.v.s.len = n;
        if (m->value.v.s.ptr == NULL) {
            return NULL;
        }
    }
    m->tags = NULL;
    m->ntags = 0;
    b->arena->last_tag_cap = 0;
    b->nmetrics++;
    return m;
}

int fr_batch_metric_tag(fr_batch *b, fr_metric *m, const char *key, const char *value)
{
    if (b->nmetrics == 0 || m != &b->metrics[b->nmetrics - 1]) {
        return FR_EINVAL;
    }
    if (m->ntags >= FR_MAX_TAGS) {
        return FR_ETOOBIG;
    }
    fr_arena *a = b->arena;
    if (m->ntags >= a->last_tag_cap) {
        /* The old array stays in the arena: doubling keeps the waste under
         * the size of the final array. */
        uint32_t cap = m->ntags ? m->ntags * 2 : 4;
        fr_tag *t = arena_alloc(a, cap * sizeof(*t), alignof(fr_tag));
        if (t == NULL) {
            return FR_ENOMEM;
        }
        if (m->ntags > 0) {
            memcpy(t, m->tags, m->ntags * sizeof(*t));
        }
        m->tags = t;
        a->last_tag_cap = cap;
    }
    fr_tag *t = &m->tags[m->ntags];
    t->key = arena_strdup_len(a, key, &t->key_len);
    t->value = arena_strdup_len(a, value, &t->value_len);
    if (t->key == NULL || t->value == NULL) {
        return FR_ENOMEM;
    }
    m->ntags++;
    return 0;
}

fr_value fr_val_str(const char *s)
{
    fr_value v = {.type = FR_VAL_STRING};
    v.v.s.ptr = s != NULL ? s : "";
    v.v.s.len = s != NULL ? (uint32_t)strlen(s) : 0;
    return v;
}

const char *fr_value_type_name(fr_value_type t)
{
    switch (t) {
    case FR_VAL_INT64:
        return "int64";
    case FR_VAL_UINT64:
        return "uint64";
    case FR_VAL_DOUBLE:
        return "double";
    case FR_VAL_BOOL:
        return "bool";
    case FR_VAL_STRING:
        return "string";
    }
    return "unknown";
}

static bool tags_equal(const fr_tag *a, uint32_t na, const fr_tag *b, uint32_t nb)
{
    if (na != nb) {
        return false;
    }
    for (uint32_t i = 0; i < na; i++) {
        if (strcmp(a[i].key, b[i].key) != 0 || strcmp(a[i].value, b[i].value) != 0) {
            return false;
        }
    }
    return true;
}

static bool value_equal(const fr_value *a, const fr_value *b)
{
    if (a->type != b->type) {
        return false;
    }
    switch (a->type) {
    case FR_VAL_INT64:
        return a->v.i == b->v.i;
    case FR_VAL_UINT64:
        return a->v.u == b->v.u;
    case FR_VAL_DOUBLE:
        /* Bit patterns, so that a NaN survives a round trip as equal. */
        return memcmp(&a->v.d, &b->v.d, sizeof(double)) == 0;
    case FR_VAL_BOOL:
        return a->v.b == b->v.b;
    case FR_VAL_STRING:
        return a->v.s.len == b->v.s.len && memcmp(a->v.s.ptr, b->v.s.ptr, a->v.s.len) == 0;
    }
    return false;
}

bool fr_batch_equal(const fr_batch *a, const fr_batch *b)
{
    if (a == NULL || b == NULL) {
        return a == b;
    }
    if (a->version != b->version || a->seq != b->seq || strcmp(a->task, b->task) != 0 ||
        strcmp(a->source, b->source) != 0 || strcmp(a->route, b->route) != 0 ||
        a->nmetrics != b->nmetrics || !tags_equal(a->tags, a->ntags, b->tags, b->ntags)) {
        return false;
    }
    for (uint32_t i = 0; i < a->nmetrics; i++) {
        const fr_metric *x = &a->metrics[i];
        const fr_metric *y = &b->metrics[i];
        if (x->ts != y->ts || strcmp(x->ns, y->ns) != 0 || strcmp(x->unit, y->unit) != 0 ||
            !value_equal(&x->value, &y->value) ||
            !tags_equal(x->tags, x->ntags, y->tags, y->ntags)) {
            return false;
        }
    }
    return true;
}

/* ---- encoder ----
 * Writers that assume the room was reserved beforehand; each returns the
 * position after what it wrote. They produce the smallest msgpack form,
 * byte for byte what msgpack-c's packer writes. */

#define MP_STR_HDR_MAX 5
#define MP_INT_MAX     9

static inline uint8_t *put_be16(uint8_t *p, uint16_t x)
{
    p[0] = (uint8_t)(x >> 8);
    p[1] = (uint8_t)x;
    return p + 2;
}

static inline uint8_t *put_be32(uint8_t *p, uint32_t x)
{
    p[0] = (uint8_t)(x >> 24);
    p[1] = (uint8_t)(x >> 16);
    p[2] = (uint8_t)(x >> 8);
    p[3] = (uint8_t)x;
    return p + 4;
}

static inline uint8_t *put_be64(uint8_t *p, uint64_t x)
{
    put_be32(p, (uint32_t)(x >> 32));
    return put_be32(p + 4, (uint32_t)x);
}

static inline uint8_t *put_uint(uint8_t *p, uint64_t x)
{
    if (x < 0x80) {
        *p++ = (uint8_t)x;
    } else if (x <= UINT8_MAX) {
        *p++ = 0xcc;
        *p++ = (uint8_t)x;
    } else if (x <= UINT16_MAX) {
        *p++ = 0xcd;
        p = put_be16(p, (uint16_t)x);
    } else if (x <= UINT32_MAX) {
        *p++ = 0xce;
        p = put_be32(p, (uint32_t)x);
    } else {
        *p++ = 0xcf;
        p = put_be64(p, x);
    }
    return p;
}

static inline uint8_t *put_int(uint8_t *p, int64_t x)
{
    if (x >= 0) {
        return put_uint(p, (uint64_t)x);
    }
    if (x >= -32) {
        *p++ = (uint8_t)(int8_t)x;
    } else if (x >= INT8_MIN) {
        *p++ = 0xd0;
        *p++ = (uint8_t)(int8_t)x;
    } else if (x >= INT16_MIN) {
        *p++ = 0xd1;
        p = put_be16(p, (uint16_t)(int16_t)x);
    } else if (x >= INT32_MIN) {
        *p++ = 0xd2;
        p = put_be32(p, (uint32_t)(int32_t)x);
    } else {
        *p++ = 0xd3;
        p = put_be64(p, (uint64_t)x);
    }
    return p;
}

static inline uint8_t *put_double(uint8_t *p, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    *p++ = 0xcb;
    return put_be64(p, bits);
}

/* Copies n bytes between buffers that do not overlap. Most strings in a
 * batch are short, where a few overlapping moves of fixed size (each range
 * covered from its start and from its end) beat a call into libc. */
HOT_INLINE void copy_short(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (n >= 16) {
        if (n > 64) {
            memcpy(d, s, n);
        } else if (n > 32) {
            memcpy(d, s, 32);
            memcpy(d + n - 32, s + n - 32, 32);
        } else {
            memcpy(d, s, 16);
            memcpy(d + n - 16, s + n - 16, 16);
        }
    } else if (n >= 8) {
        uint64_t x, y;
        memcpy(&x, s, 8);
        memcpy(&y, s + n - 8, 8);
        memcpy(d, &x, 8);
        memcpy(d + n - 8, &y, 8);
    } else if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, s, 4);
        memcpy(&y, s + n - 4, 4);
        memcpy(d, &x, 4);
        memcpy(d + n - 4, &y, 4);
    } else if (n > 0) {
        uint8_t x = s[0], y = s[n / 2], z = s[n - 1];
        d[0] = x;
        d[n / 2] = y;
        d[n - 1] = z;
    }
}

HOT_INLINE uint8_t *put_str(uint8_t *p, const char *s, size_t n)
{
    if (n < 32) {
        *p++ = (uint8_t)(0xa0 | n);
    } else if (n <= UINT8_MAX) {
        *p++ = 0xd9;
        *p++ = (uint8_t)n;
    } else if (n <= UINT16_MAX) {
        *p++ = 0xda;
        p = put_be16(p, (uint16_t)n);
    } else {
        *p++ = 0xdb;
        p = put_be32(p, (uint32_t)n);
    }
    copy_short(p, s, n);
    return p + n;
}

/* Map and array headers: fix form below 16, then 16 and 32 bits. */
static inline uint8_t *put_container(uint8_t *p, uint8_t fix, uint8_t b16, uint32_t n)
{
    if (n < 16) {
        *p++ = (uint8_t)(fix | n);
    } else if (n <= UINT16_MAX) {
        *p++ = b16;
        p = put_be16(p, (uint16_t)n);
    } else {
        *p++ = (uint8_t)(b16 + 1);
        p = put_be32(p, n);
    }
    return p;
}

#define put_map(p, n)   put_container((p), 0x80, 0xde, (n))
#define put_array(p, n) put_container((p), 0x90, 0xdc, (n))
#define put_lit(p, s)   put_str((p), (s), sizeof(s) - 1)

/* Makes room for n more bytes; the common case stays inline. */
HOT_INLINE int room_for(fr_buf *out, size_t n)
{
    if (LIKELY(out->cap - out->len >= n)) {
        return 0;
    }
    return fr_buf_reserve(out, n);
}

/* The length of a string of the model: the stored one, or, when that is 0
 * and the string is not empty, its measure (see "Lengths" in metric.h). */
HOT_INLINE size_t model_len(const char *s, uint32_t len)
{
    if (LIKELY(len != 0) || s[0] == '\0') {
        return len;
    }
    return strlen(s);
}

static int write_tags(fr_buf *out, const fr_tag *tags, uint32_t n)
{
    if (n > FR_MAX_TAGS) {
        return FR_EINVAL;
    }
    if (room_for(out, 5) != 0) {
        return FR_ENOMEM;
    }
    out->len = (size_t)(put_map(out->data + out->len, n) - out->data);
    for (uint32_t i = 0; i < n; i++) {
        size_t kl = model_len(tags[i].key, tags[i].key_len);
        size_t vl = model_len(tags[i].value, tags[i].value_len);
        if (kl > FR_MAX_STRING || vl > FR_MAX_STRING) {
            return FR_EINVAL;
        }
        if (room_for(out, 2 * MP_STR_HDR_MAX + kl + vl) != 0) {
            return FR_ENOMEM;
        }
        uint8_t *p = out->data + out->len;
        p = put_str(p, tags[i].key, kl);
        p = put_str(p, tags[i].value, vl);
        out->len = (size_t)(p - out->data);
    }
    return 0;
}

/* One metric: its whole size is known from the model's lengths, so room is
 * made once and the writers run unchecked. */
static int encode_metric(const fr_metric *m, fr_buf *out)
{
    size_t nsl = model_len(m->ns, m->ns_len);
    size_t ul = model_len(m->unit, m->unit_len);
    if (nsl > FR_MAX_NAMESPACE || ul > FR_MAX_STRING || m->ntags > FR_MAX_TAGS) {
        return FR_EINVAL;
    }
    /* array header, ns, ts, type, value (or its string header), unit, map
     * header */
    size_t room = 1 + MP_STR_HDR_MAX + nsl + MP_INT_MAX + 1 + MP_INT_MAX + MP_STR_HDR_MAX + ul + 3;
    if (m->value.type == FR_VAL_STRING) {
        if (m->value.v.s.len > FR_MAX_STRING) {
            return FR_EINVAL;
        }
        room += m->value.v.s.len;
    } else if ((unsigned)m->value.type > FR_VAL_STRING) {
        return FR_EINVAL;
    }
    const fr_tag *t = m->tags;
    for (uint32_t i = 0; i < m->ntags; i++) {
        size_t kl = model_len(t[i].key, t[i].key_len);
        size_t vl = model_len(t[i].value, t[i].value_len);
        if (kl > FR_MAX_STRING || vl > FR_MAX_STRING) {
            return FR_EINVAL;
        }
        room += 2 * MP_STR_HDR_MAX + kl + vl;
    }
    if (room_for(out, room) != 0) {
        return FR_ENOMEM;
    }
    uint8_t *p = out->data + out->len;
    *p++ = 0x96;
    p = put_str(p, m->ns, nsl);
    p = put_int(p, m->ts);
    *p++ = (uint8_t)m->value.type;
    switch (m->value.type) {
    case FR_VAL_INT64:
        p = put_int(p, m->value.v.i);
        break;
    case FR_VAL_UINT64:
        p = put_uint(p, m->value.v.u);
        break;
    case FR_VAL_DOUBLE:
        p = put_double(p, m->value.v.d);
        break;
    case FR_VAL_BOOL:
        *p++ = m->value.v.b ? 0xc3 : 0xc2;
        break;
    case FR_VAL_STRING:
        p = put_str(p, m->value.v.s.ptr, m->value.v.s.len);
        break;
    }
    p = put_str(p, m->unit, ul);
    p = put_map(p, m->ntags);
    for (uint32_t i = 0; i < m->ntags; i++) {
        p = put_str(p, t[i].key, model_len(t[i].key, t[i].key_len));
        p = put_str(p, t[i].value, model_len(t[i].value, t[i].value_len));
    }
    out->len = (size_t)(p - out->data);
    return 0;
}

int fr_batch_encode(const fr_batch *b, fr_buf *out)
{
    size_t start = out->len;
    size_t tl = strlen(b->task);
    size_t sl = strlen(b->source);
    size_t rl = b->route != NULL ? strlen(b->route) : 0;
    if (b->version != FR_BATCH_VERSION || tl > FR_MAX_STRING || sl > FR_MAX_STRING ||
        rl > FR_MAX_STRING || b->nmetrics > FR_MAX_METRICS) {
        return FR_EINVAL;
    }
    /* A guess at the whole size saves most of the growing on the way. */
    size_t guess = 64 + tl + sl + rl + (size_t)b->nmetrics * 64;
    if (fr_buf_reserve(out, guess) != 0) {
        return FR_ENOMEM;
    }
    uint8_t *p = out->data + out->len;
    /* "route" only when there is one: a collector's batch keeps the six
     * keys of version 1 byte for byte. */
    p = put_map(p, rl > 0 ? 7 : 6);
    p = put_lit(p, "v");
    p = put_uint(p, FR_BATCH_VERSION);
    p = put_lit(p, "task");
    p = put_str(p, b->task, tl);
    p = put_lit(p, "src");
    p = put_str(p, b->source, sl);
    p = put_lit(p, "seq");
    p = put_uint(p, b->seq);
    if (rl > 0) {
        p = put_lit(p, "route");
        p = put_str(p, b->route, rl);
    }
    p = put_lit(p, "tags");
    out->len = (size_t)(p - out->data);
    int rv = write_tags(out, b->tags, b->ntags);
    if (rv == 0 && (rv = room_for(out, 16)) == 0) {
        p = out->data + out->len;
        p = put_lit(p, "metrics");
        p = put_array(p, b->nmetrics);
        out->len = (size_t)(p - out->data);
    }
    for (uint32_t i = 0; rv == 0 && i < b->nmetrics; i++) {
        rv = encode_metric(&b->metrics[i], out);
    }
    if (rv == 0 && out->len - start > FR_MAX_MESSAGE) {
        rv = FR_EINVAL;
    }
    if (rv != 0) {
        out->len = start;
        return rv == FR_EINVAL ? FR_EINVAL : FR_ENOMEM;
    }
    return 0;
}

/* ---- decoder ---- */

/* A cursor over the input plus the path of the element being read; the
 * path is only formatted into words when something fails. */
typedef struct batch_dec {
    const uint8_t *p;
    const uint8_t *end;
    fr_arena *arena;
    /* Where decoded strings go, NUL added: a string of n bytes takes n + 1
     * there and at least as many in the input (its header is one byte or
     * more), so an area as long as the input holds them all. */
    char *str;
    char *str_end;
    fr_error *err;
    const char *field; /* envelope key being read, NULL at the top */
    int64_t mi;        /* metric index, or -1 */
    int ei;            /* element of the metric, or -1 */
    const char *tkey;  /* tag key whose value is being read, or NULL */
} batch_dec;

static const char *mp_kind(uint8_t b)
{
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3)) {
        return "an integer";
    }
    if (b <= 0x8f || b == 0xde || b == 0xdf) {
        return "a map";
    }
    if (b <= 0x9f || b == 0xdc || b == 0xdd) {
        return "an array";
    }
    if (b <= 0xbf || (b >= 0xd9 && b <= 0xdb)) {
        return "a string";
    }
    switch (b) {
    case 0xc0:
        return "nil";
    case 0xc2:
    case 0xc3:
        return "a boolean";
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return "binary";
    case 0xca:
    case 0xcb:
        return "a float";
    case 0xc1:
        return "the unused byte 0xc1";
    default:
        return "an extension";
    }
}

/* Appends s to the path, with anything unprintable as '?'. */
static size_t where_add(char *w, size_t pos, size_t cap, const char *s, size_t n)
{
    for (size_t i = 0; i < n && pos + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        w[pos++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    w[pos] = '\0';
    return pos;
}

static void dec_where(const batch_dec *d, char *w, size_t cap)
{
    size_t pos = 0;
    char idx[32];
    w[0] = '\0';
    if (d->field != NULL) {
        pos = where_add(w, pos, cap, d->field, strlen(d->field));
    }
    if (d->mi >= 0) {
        int n = snprintf(idx, sizeof(idx), "[%lld]", (long long)d->mi);
        pos = where_add(w, pos, cap, idx, (size_t)n);
    }
    if (d->ei >= 0) {
        int n = snprintf(idx, sizeof(idx), "[%d]", d->ei);
        pos = where_add(w, pos, cap, idx, (size_t)n);
    }
    if (d->tkey != NULL) {
        pos = where_add(w, pos, cap, ".", 1);
        where_add(w, pos, cap, d->tkey, strnlen(d->tkey, 64));
    }
}

__attribute__((cold, noinline, format(printf, 3, 4))) static int dec_fail(batch_dec *d, int code,
                                                                          const char *fmt, ...)
{
    if (d->err == NULL) {
        return code;
    }
    char where[sizeof(d->err->where)];
    char what[200];
    dec_where(d, where, sizeof(where));
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return fr_error_set(d->err, code, where, "%s%s%s", where, where[0] ? ": " : "", what);
}

static int dec_trunc(batch_dec *d)
{
    return dec_fail(d, FR_ETRUNC, "the message ends inside this value");
}

static inline size_t dec_left(const batch_dec *d)
{
    return (size_t)(d->end - d->p);
}

static inline uint16_t ld16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t ld64(const uint8_t *p)
{
    return (uint64_t)ld32(p) << 32 | ld32(p + 4);
}

/* Reads a length of 1, 2 or 4 bytes after the type byte. */
static inline int rd_len(batch_dec *d, unsigned width, uint32_t *n)
{
    if (UNLIKELY(dec_left(d) < width)) {
        return dec_trunc(d);
    }
    *n = width == 1 ? d->p[0] : width == 2 ? ld16(d->p) : ld32(d->p);
    d->p += width;
    return 0;
}

/* Reads a string's header and body span, refusing it over max bytes. */
HOT_INLINE int rd_str(batch_dec *d, const uint8_t **s, uint32_t *n, uint32_t max)
{
    if (UNLIKELY(d->p == d->end)) {
        return dec_trunc(d);
    }
    uint8_t b = *d->p++;
    int rv;
    if (LIKELY(b >= 0xa0 && b <= 0xbf)) {
        *n = b & 0x1f;
    } else if (b >= 0xd9 && b <= 0xdb) {
        if ((rv = rd_len(d, 1u << (b - 0xd9), n)) != 0) {
            return rv;
        }
    } else {
        d->p--;
        return dec_fail(d, FR_ETYPE, "expected a string, got %s", mp_kind(b));
    }
    if (UNLIKELY(*n > max)) {
        return dec_fail(d, FR_ETOOBIG, "a string of %u bytes is over the limit of %u", *n, max);
    }
    if (UNLIKELY(dec_left(d) < *n)) {
        return dec_trunc(d);
    }
    *s = d->p;
    d->p += *n;
    return 0;
}

/* Non-zero when a byte of x is zero. */
#define HAS_ZERO64(x) (((x)-0x0101010101010101ull) & ~(x)&0x8080808080808080ull)
#define HAS_ZERO32(x) (((x)-0x01010101u) & ~(x)&0x80808080u)

/* Copies n bytes and tells whether any was NUL. Most strings in a batch
 * are short: words at a time, the last one overlapping the one before, as
 * in copy_short, beat two calls into libc. */
HOT_INLINE bool copy_has_nul(char *dst, const uint8_t *src, size_t n)
{
    if (n > 64) {
        memcpy(dst, src, n);
        return memchr(src, 0, n) != NULL;
    }
    if (n >= 8) {
        uint64_t seen = 0, x;
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&x, src + i, 8);
            memcpy(dst + i, &x, 8);
            seen |= HAS_ZERO64(x);
        }
        memcpy(&x, src + n - 8, 8);
        memcpy(dst + n - 8, &x, 8);
        return (seen | HAS_ZERO64(x)) != 0;
    }
    if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, src, 4);
        memcpy(&y, src + n - 4, 4);
        memcpy(dst, &x, 4);
        memcpy(dst + n - 4, &y, 4);
        return (HAS_ZERO32(x) | HAS_ZERO32(y)) != 0;
    }
    if (n > 0) {
        uint8_t x = src[0], y = src[n / 2], z = src[n - 1];
        dst[0] = (char)x;
        dst[n / 2] = (char)y;
        dst[n - 1] = (char)z;
        return x == 0 || y == 0 || z == 0;
    }
    return false;
}

/* For a string of n <= 16 bytes read as two little-endian words: the bits
 * of the bytes past its end, set so that they never look like a NUL. */
#define PAST_LO(n) ((n) >= 8 ? 0 : ~0ull << (8 * ((n)&7)))
#define PAST_HI(n) ((n) >= 16 ? 0 : (n) <= 8 ? ~0ull : ~0ull << (8 * (((n)-8) & 7)))
static const uint64_t past_lo[17] = {
    PAST_LO(0),  PAST_LO(1),  PAST_LO(2),  PAST_LO(3),  PAST_LO(4),  PAST_LO(5),
    PAST_LO(6),  PAST_LO(7),  PAST_LO(8),  PAST_LO(9),  PAST_LO(10), PAST_LO(11),
    PAST_LO(12), PAST_LO(13), PAST_LO(14), PAST_LO(15), PAST_LO(16),
};
static const uint64_t past_hi[17] = {
    PAST_HI(0),  PAST_HI(1),  PAST_HI(2),  PAST_HI(3),  PAST_HI(4),  PAST_HI(5),
    PAST_HI(6),  PAST_HI(7),  PAST_HI(8),  PAST_HI(9),  PAST_HI(10), PAST_HI(11),
    PAST_HI(12), PAST_HI(13), PAST_HI(14), PAST_HI(15), PAST_HI(16),
};

/* Room for a decoded string of n bytes and its NUL. NULL cannot happen
 * (see batch_dec.str), but is checked all the same. */
HOT_INLINE char *str_take(batch_dec *d, uint32_t n)
{
    if (UNLIKELY((size_t)(d->str_end - d->str) <= n)) {
        return NULL;
    }
    char *c = d->str;
    d->str += (size_t)n + 1;
    return c;
}

/* Reads one of the model's NUL-terminated strings (all but string values):
 * refuses NUL bytes inside, which would cut it short. */
HOT_INLINE int rd_cstr(batch_dec *d, const char **out, uint32_t *len, uint32_t max)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    /* Most such strings are fixstrs of 16 bytes or less (keys, units, tag
     * values): with more than 16 bytes of input left they move as two
     * words, the bytes past the string masked out of the NUL test. There is
     * room for the words in the strings' area, which has more bytes left
     * than the input (see batch_dec.str); the next strings overwrite what
     * was copied past this one. */
    _Static_assert(FR_MAX_NAMESPACE >= 16 && FR_MAX_STRING >= 16, "fast path within limits");
    if (LIKELY(dec_left(d) > 16 && (uint8_t)(*d->p - 0xa0) <= 16)) {
        uint32_t n = *d->p & 0x1f;
        uint64_t x, y;
        memcpy(&x, d->p + 1, 8);
        memcpy(&y, d->p + 9, 8);
        char *c = d->str;
        memcpy(c, &x, 8);
        memcpy(c + 8, &y, 8);
        if (UNLIKELY((HAS_ZERO64(x | past_lo[n]) | HAS_ZERO64(y | past_hi[n])) != 0)) {
            return dec_fail(d, FR_EINVAL, "a NUL byte inside the string");
        }
        c[n] = '\0';
        d->p += 1 + n;
        d->str += n + 1;
        *out = c;
        *len = n;
        return 0;
    }
#endif
    const uint8_t *s = NULL;
    uint32_t n = 0;
    int rv = rd_str(d, &s, &n, max);
    if (UNLIKELY(rv != 0)) {
        return rv;
    }
    char *c = str_take(d, n);
    if (UNLIKELY(c == NULL)) {
        return dec_fail(d, FR_ENOMEM, "out of memory");
    }
    if (UNLIKELY(copy_has_nul(c, s, n))) {
        return dec_fail(d, FR_EINVAL, "a NUL byte inside the string");
    }
    c[n] = '\0';
    *out = c;
    *len = n;
    return 0;
}

/* Reads any msgpack integer: *neg tells whether *u holds a negative int64's
 * bits. Positive values in signed formats count as non-negative. */
HOT_INLINE int rd_int(batch_dec *d, bool *neg, uint64_t *u)
{
    if (UNLIKELY(d->p == d->end)) {
        return dec_trunc(d);
    }
    uint8_t b = *d->p;
    if (LIKELY(b <= 0x7f)) {
        d->p++;
        *neg = false;
        *u = b;
        return 0;
    }
    if (b >= 0xe0) {
        d->p++;
        *neg = true;
        *u = (uint64_t)(int64_t)(int8_t)b;
        return 0;
    }
    if (b < 0xcc || b > 0xd3) {
        return dec_fail(d, FR_ETYPE, "expected an integer, got %s", mp_kind(b));
    }
    unsigned width = 1u << ((b - 0xcc) & 3);
    if (UNLIKELY(dec_left(d) < 1 + width)) {
        return dec_trunc(d);
    }
    const uint8_t *q = d->p + 1;
    d->p += 1 + width;
    if (b <= 0xcf) {
        *u = width == 1 ? q[0] : width == 2 ? ld16(q) : width == 4 ? ld32(q) : ld64(q);
        *neg = false;
        return 0;
    }
    int64_t x = width == 1   ? (int8_t)q[0]
                : width == 2 ? (int16_t)ld16(q)
                : width == 4 ? (int32_t)ld32(q)
                             : (int64_t)ld64(q);
    *neg = x < 0;
    *u = (uint64_t)x;
    return 0;
}

HOT_INLINE int rd_uint(batch_dec *d, uint64_t *u)
{
    bool neg = false;
    int rv = rd_int(d, &neg, u);
    if (rv == 0 && UNLIKELY(neg)) {
        return dec_fail(d, FR_ETYPE, "expected an unsigned integer, got a negative one");
    }
    return rv;
}

HOT_INLINE int rd_i64(batch_dec *d, int64_t *x)
{
    bool neg = false;
    uint64_t u = 0;
    int rv = rd_int(d, &neg, &u);
    if (UNLIKELY(rv != 0)) {
        return rv;
    }
    if (UNLIKELY(!neg && u > INT64_MAX)) {
        return dec_fail(d, FR_ETYPE, "%llu does not fit an int64", (unsigned long long)u);
    }
    *x = (int64_t)u;
    return 0;
}

/* Reads a map or array header (kind 0x80 for maps, 0x90 for arrays). */
HOT_INLINE int rd_container(batch_dec *d, uint8_t fix, uint8_t b16, uint32_t *n)
{
    if (UNLIKELY(d->p == d->end)) {
        return dec_trunc(d);
    }
    uint8_t b = *d->p;
    if (LIKELY((b & 0xf0) == fix)) {
        d->p++;
        *n = b & 0x0f;
        return 0;
    }
    if (b == b16 || b == b16 + 1) {
        d->p++;
        return rd_len(d, b == b16 ? 2 : 4, n);
    }
    return dec_fail(d, FR_ETYPE, "expected %s, got %s", fix == 0x80 ? "a map" : "an array",
                    mp_kind(b));
}

#define rd_map(d, n)   rd_container((d), 0x80, 0xde, (n))
#define rd_array(d, n) rd_container((d), 0x90, 0xdc, (n))

/* Refuses a container claiming more elements than the bytes left could
 * hold (min_size bytes each), before anything is allocated for it. */
static inline int check_claim(batch_dec *d, uint32_t n, size_t min_size, const char *what)
{
    if (UNLIKELY((uint64_t)n * min_size > dec_left(d))) {
        return dec_fail(d, FR_ETRUNC, "%u %s claimed but only %zu bytes remain", n, what,
                        dec_left(d));
    }
    return 0;
}

static uint32_t str_hash(const char *s, uint32_t n)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    }
    return h;
}

static inline bool tag_keys_equal(const fr_tag *a, const fr_tag *b)
{
    /* Keys of the same length mostly differ in their first byte (the NUL
     * of an empty key included): test it before calling memcmp. */
    return a->key_len == b->key_len && a->key[0] == b->key[0] &&
           memcmp(a->key, b->key, a->key_len) == 0;
}

/* tags_find_dup for many tags: open addressing, at most half full since
 * n <= FR_MAX_TAGS. */
static int tags_find_dup_hashed(const fr_tag *t, uint32_t n)
{
    uint16_t slot[2 * FR_MAX_TAGS];
    const uint32_t mask = 2 * FR_MAX_TAGS - 1;
    memset(slot, 0, sizeof(slot));
    for (uint32_t i = 0; i < n; i++) {
        uint32_t h = str_hash(t[i].key, t[i].key_len) & mask;
        while (slot[h] != 0) {
            if (tag_keys_equal(&t[slot[h] - 1], &t[i])) {
                return (int)i;
            }
            h = (h + 1) & mask;
        }
        slot[h] = (uint16_t)(i + 1);
    }
    return -1;
}

#define TAGS_SCAN_MAX 12

/* Index of the first key that repeats an earlier one, or -1. The decoder
 * has set every key_len. */
static inline int tags_find_dup(const fr_tag *t, uint32_t n)
{
    if (n > TAGS_SCAN_MAX) {
        return tags_find_dup_hashed(t, n);
    }
    for (uint32_t i = 1; i < n; i++) {
        for (uint32_t j = 0; j < i; j++) {
            if (tag_keys_equal(&t[i], &t[j])) {
                return (int)i;
            }
        }
    }
    return -1;
}

static int rd_tags(batch_dec *d, fr_tag **out, uint32_t *nout)
{
    uint32_t n = 0;
    int rv = rd_map(d, &n);
    if (UNLIKELY(rv != 0)) {
        return rv;
    }
    *out = NULL;
    *nout = 0;
    if (LIKELY(n == 0)) {
        return 0;
    }
    if (n > FR_MAX_TAGS) {
        return dec_fail(d, FR_ETOOBIG, "%u tags are over the limit of %u", n, FR_MAX_TAGS);
    }
    if ((rv = check_claim(d, n, 2, "tags")) != 0) {
        return rv;
    }
    fr_tag *t = arena_alloc(d->arena, n * sizeof(*t), alignof(fr_tag));
    if (t == NULL) {
        return dec_fail(d, FR_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < n; i++) {
        d->tkey = NULL;
        if (UNLIKELY((rv = rd_cstr(d, &t[i].key, &t[i].key_len, FR_MAX_STRING)) != 0)) {
            return rv;
        }
        d->tkey = t[i].key;
        if (UNLIKELY((rv = rd_cstr(d, &t[i].value, &t[i].value_len, FR_MAX_STRING)) != 0)) {
            return rv;
        }
    }
    d->tkey = NULL;
    int dup = tags_find_dup(t, n);
    if (dup >= 0) {
        d->tkey = t[dup].key;
        return dec_fail(d, FR_EDUP, "tag key given twice");
    }
    *out = t;
    *nout = n;
    return 0;
}

static int rd_value(batch_dec *d, fr_value *v)
{
    if (UNLIKELY(d->p == d->end)) {
        return dec_trunc(d);
    }
    uint8_t b = *d->p;
    switch (v->type) {
    case FR_VAL_INT64:
        return rd_i64(d, &v->v.i);
    case FR_VAL_UINT64:
        return rd_uint(d, &v->v.u);
    case FR_VAL_DOUBLE:
        if (b == 0xcb) {
            if (UNLIKELY(dec_left(d) < 9)) {
                return dec_trunc(d);
            }
            uint64_t bits = ld64(d->p + 1);
            memcpy(&v->v.d, &bits, sizeof(bits));
            d->p += 9;
            return 0;
        }
        if (b == 0xca) {
            if (UNLIKELY(dec_left(d) < 5)) {
                return dec_trunc(d);
            }
            uint32_t bits = ld32(d->p + 1);
            float f;
            memcpy(&f, &bits, sizeof(bits));
            v->v.d = f;
            d->p += 5;
            return 0;
        }
        break;
    case FR_VAL_BOOL:
        if (b == 0xc2 || b == 0xc3) {
            v->v.b = b == 0xc3;
            d->p++;
            return 0;
        }
        break;
    case FR_VAL_STRING: {
        const uint8_t *s = NULL;
        uint32_t n = 0;
        int rv = rd_str(d, &s, &n, FR_MAX_STRING);
        if (rv != 0) {
            return rv;
        }
        char *c = str_take(d, n);
        if (c == NULL) {
            return dec_fail(d, FR_ENOMEM, "out of memory");
        }
        copy_short(c, s, n);
        c[n] = '\0';
        v->v.s.ptr = c;
        v->v.s.len = n;
        return 0;
    }
    }
    return dec_fail(d, FR_ETYPE, "a %s value cannot be %s", fr_value_type_name(v->type),
                    mp_kind(b));
}

static int rd_metric(batch_dec *d, fr_metric *m)
{
    uint32_t n = 0;
    int rv;
    d->ei = -1;
    if (UNLIKELY((rv = rd_array(d, &n)) != 0)) {
        return rv;
    }
    if (UNLIKELY(n != 6)) {
        if (n < 6) {
            d->ei = (int)n;
            return dec_fail(d, FR_EMISSING,
                            "a metric is [namespace, timestamp, type, value, unit, tags]: "
                            "this one has %u elements",
                            n);
        }
        d->ei = 6;
        return dec_fail(d, FR_EUNKNOWN,
                        "a metric is [namespace, timestamp, type, value, unit, tags]: "
                        "this one has %u elements",
                        n);
    }
    d->ei = 0;
    if (UNLIKELY((rv = rd_cstr(d, &m->ns, &m->ns_len, FR_MAX_NAMESPACE)) != 0)) {
        return rv;
    }
    d->ei = 1;
    if (UNLIKELY((rv = rd_i64(d, &m->ts)) != 0)) {
        return rv;
    }
    d->ei = 2;
    uint64_t type = 0;
    if (UNLIKELY((rv = rd_uint(d, &type)) != 0)) {
        return rv;
    }
    if (UNLIKELY(type > FR_VAL_STRING)) {
        return dec_fail(d, FR_EINVAL, "unknown value type %llu (0 to 4)", (unsigned long long)type);
    }
    m->value.type = (fr_value_type)type;
    d->ei = 3;
    if (UNLIKELY((rv = rd_value(d, &m->value)) != 0)) {
        return rv;
    }
    d->ei = 4;
    if (UNLIKELY((rv = rd_cstr(d, &m->unit, &m->unit_len, FR_MAX_STRING)) != 0)) {
        return rv;
    }
    d->ei = 5;
    return rd_tags(d, &m->tags, &m->ntags);
}

/* The smallest possible metric: [ "", 0, 0, 0, "", {} ]. */
#define METRIC_MIN_BYTES 7

static int rd_metrics(batch_dec *d, fr_batch *b)
{
    uint32_t n = 0;
    int rv = rd_array(d, &n);
    if (rv != 0) {
        return rv;
    }
    if (n > FR_MAX_METRICS) {
        return dec_fail(d, FR_ETOOBIG, "%u metrics are over the limit of %u", n, FR_MAX_METRICS);
    }
    if ((rv = check_claim(d, n, METRIC_MIN_BYTES, "metrics")) != 0) {
        return rv;
    }
    if (n == 0) {
        return 0;
    }
    /* In the arena with the rest (cap_metrics stays 0): one allocation
     * less per batch, and fr_batch_add moves it out if it must grow. */
    b->metrics = arena_alloc(d->arena, (size_t)n * sizeof(*b->metrics), alignof(fr_metric));
    if (b->metrics == NULL) {
        return dec_fail(d, FR_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < n; i++) {
        d->mi = i;
        if (UNLIKELY((rv = rd_metric(d, &b->metrics[i])) != 0)) {
            return rv;
        }
        b->nmetrics = i + 1;
    }
    d->mi = -1;
    d->ei = -1;
    return 0;
}

enum {
    KEY_V,
    KEY_TASK,
    KEY_SRC,
    KEY_SEQ,
    KEY_TAGS,
    KEY_METRICS,
    KEY_ROUTE, /* optional */
    KEY_COUNT,
};

static const char *const key_names[KEY_COUNT] = {"v",    "task",    "src",  "seq",
                                                 "tags", "metrics", "route"};
#define KEYS_REQUIRED ((1u << KEY_ROUTE) - 1u)

static int key_lookup(const uint8_t *s, uint32_t n)
{
    for (int k = 0; k < KEY_COUNT; k++) {
        if (strlen(key_names[k]) == n && memcmp(key_names[k], s, n) == 0) {
            return k;
        }
    }
    return -1;
}

/* Reads a top-level key; fails on unknown and repeated ones. */
static int rd_key(batch_dec *d, unsigned *seen, int *key)
{
    const uint8_t *s = NULL;
    uint32_t n = 0;
    d->field = NULL;
    int rv = rd_str(d, &s, &n, FR_MAX_STRING);
    if (rv != 0) {
        return rv;
    }
    int k = key_lookup(s, n);
    if (k < 0) {
        char name[65];
        size_t len = n < sizeof(name) - 1 ? n : sizeof(name) - 1;
        where_add(name, 0, sizeof(name), (const char *)s, len);
        d->field = name;
        rv = dec_fail(d, FR_EUNKNOWN,
                      "unknown key (expected v, task, src, seq, route, tags, metrics)");
        d->field = NULL;
        return rv;
    }
    d->field = key_names[k];
    if (*seen & (1u << k)) {
        return dec_fail(d, FR_EDUP, "key given twice");
    }
    *seen |= 1u << k;
    *key = k;
    return 0;
}

static int rd_version(batch_dec *d, uint32_t *version)
{
    uint64_t v = 0;
    int rv = rd_uint(d, &v);
    if (rv != 0) {
        return rv;
    }
    if (v != FR_BATCH_VERSION) {
        return dec_fail(d, FR_EUNSUPPORTED, "batch version %llu is not supported (only %d)",
                        (unsigned long long)v, FR_BATCH_VERSION);
    }
    *version = (uint32_t)v;
    return 0;
}

static int check_missing(batch_dec *d, unsigned seen, unsigned needed)
{
    for (int k = 0; k < KEY_COUNT; k++) {
        if ((needed & (1u << k)) && !(seen & (1u << k))) {
            d->field = key_names[k];
            return dec_fail(d, FR_EMISSING, "required key missing");
        }
    }
    return 0;
}

static int rd_envelope_map(batch_dec *d, uint32_t *npairs)
{
    if (d->p == d->end) {
        return dec_trunc(d);
    }
    int rv = rd_map(d, npairs);
    if (rv != 0) {
        if (rv == FR_ETYPE) {
            return dec_fail(d, FR_ETYPE, "a batch must be a map, not %s", mp_kind(*d->p));
        }
        return rv;
    }
    return check_claim(d, *npairs, 2, "keys");
}

static int batch_decode(batch_dec *d, fr_batch *b)
{
    uint32_t npairs;
    int rv = rd_envelope_map(d, &npairs);
    if (rv != 0) {
        return rv;
    }
    unsigned seen = 0;
    uint32_t len;
    for (uint32_t i = 0; i < npairs; i++) {
        int k;
        if ((rv = rd_key(d, &seen, &k)) != 0) {
            return rv;
        }
        switch (k) {
        case KEY_V:
            rv = rd_version(d, &b->version);
            break;
        case KEY_TASK:
            rv = rd_cstr(d, &b->task, &len, FR_MAX_STRING);
            break;
        case KEY_SRC:
            rv = rd_cstr(d, &b->source, &len, FR_MAX_STRING);
            break;
        case KEY_SEQ:
            rv = rd_uint(d, &b->seq);
            break;
        case KEY_ROUTE:
            rv = rd_cstr(d, &b->route, &len, FR_MAX_STRING);
            break;
        case KEY_TAGS:
            rv = rd_tags(d, &b->tags, &b->ntags);
            /* The batch's tags array is malloc'd so fr_batch_add_tag can
             * grow it: move the decoded ones out of the arena. */
            if (rv == 0 && b->ntags > 0) {
                fr_tag *t = malloc(b->ntags * sizeof(*t));
                if (t == NULL) {
                    b->tags = NULL;
                    b->ntags = 0;
                    return dec_fail(d, FR_ENOMEM, "out of memory");
                }
                memcpy(t, b->tags, b->ntags * sizeof(*t));
                b->tags = t;
                b->cap_tags = b->ntags;
            }
            break;
        case KEY_METRICS:
            rv = rd_metrics(d, b);
            break;
        }
        if (rv != 0) {
            return rv;
        }
    }
    d->field = NULL;
    if ((rv = check_missing(d, seen, KEYS_REQUIRED)) != 0) {
        return rv;
    }
    if (d->p != d->end) {
        d->field = NULL;
        return dec_fail(d, FR_ETRAILING, "%zu bytes after the batch", dec_left(d));
    }
    return 0;
}

int fr_batch_decode(const void *data, size_t len, fr_batch **out, fr_error *err)
{
    *out = NULL;
    fr_error_clear(err);
    if (len > FR_MAX_MESSAGE) {
        return fr_error_set(err, FR_ETOOBIG, "", "a batch of %zu bytes is over the limit of %u",
                            len, FR_MAX_MESSAGE);
    }
    /* The strings' area, then room for the metrics and tags arrays: about
     * 1.5 times the input for common batches; more comes as needed. */
    size_t arrays = len + len / 2 < ARENA_MAX_GROWTH ? len + len / 2 : ARENA_MAX_GROWTH;
    fr_batch *b = batch_alloc();
    char *str = NULL;
    if (b == NULL || arena_reserve(b->arena, len + 1 + arrays + 256) != 0 ||
        (str = arena_alloc(b->arena, len + 1, 1)) == NULL) {
        fr_batch_destroy(b);
        return fr_error_set(err, FR_ENOMEM, "", "out of memory");
    }
    batch_dec d = {
        .p = data,
        .end = (const uint8_t *)data + len,
        .arena = b->arena,
        .str = str,
        .str_end = str + len + 1,
        .err = err,
        .mi = -1,
        .ei = -1,
    };
    int rv = batch_decode(&d, b);
    if (rv != 0) {
        fr_batch_destroy(b);
        return rv;
    }
    /* A metric tag added after decoding must not write into the arena-sized
     * array of the last decoded metric. */
    b->arena->last_tag_cap = 0;
    *out = b;
    return 0;
}

/* Steps over one value of any type without keeping it (for fr_batch_peek,
 * which only wants the envelope). Iterative, so nesting costs no stack. */
static int skip_value(batch_dec *d)
{
    uint64_t pending = 1;
    while (pending > 0) {
        if (d->p == d->end) {
            return dec_trunc(d);
        }
        uint8_t b = *d->p++;
        pending--;
        uint32_t n = 0;
        size_t skip = 0;
        int rv = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            continue;
        } else if (b <= 0x8f) {
            pending += 2u * (b & 0x0f);
        } else if (b <= 0x9f) {
            pending += b & 0x0f;
        } else if (b <= 0xbf) {
            skip = b & 0x1f;
        } else if (b >= 0xcc && b <= 0xd3) {
            skip = 1u << ((b - 0xcc) & 3);
        } else if (b == 0xca || b == 0xcb) {
            skip = b == 0xca ? 4 : 8;
        } else if ((b >= 0xc4 && b <= 0xc6) || (b >= 0xd9 && b <= 0xdb)) {
            unsigned w = b <= 0xc6 ? 1u << (b - 0xc4) : 1u << (b - 0xd9);
            if ((rv = rd_len(d, w, &n)) != 0) {
                return rv;
            }
            skip = n;
        } else if (b >= 0xdc && b <= 0xdf) {
            if ((rv = rd_len(d, (b & 1) ? 4 : 2, &n)) != 0) {
                return rv;
            }
            pending += b >= 0xde ? 2 * (uint64_t)n : n;
        } else {
            d->p--;
            return dec_fail(d, FR_ETYPE, "unexpected %s", mp_kind(b));
        }
        if (dec_left(d) < skip || pending > dec_left(d)) {
            return dec_trunc(d);
        }
        d->p += skip;
    }
    return 0;
}

int fr_batch_peek(const void *data, size_t len, char *src, size_t srclen, uint64_t *seq,
                  fr_error *err)
{
    fr_error_clear(err);
    if (len > FR_MAX_MESSAGE) {
        return fr_error_set(err, FR_ETOOBIG, "", "a batch of %zu bytes is over the limit of %u",
                            len, FR_MAX_MESSAGE);
    }
    batch_dec d = {
        .p = data,
        .end = (const uint8_t *)data + len,
        .err = err,
        .mi = -1,
        .ei = -1,
    };
    uint32_t npairs;
    int rv = rd_envelope_map(&d, &npairs);
    if (rv != 0) {
        return rv;
    }
    unsigned seen = 0;
    const uint8_t *s = NULL;
    uint32_t slen = 0;
    uint64_t sq = 0;
    for (uint32_t i = 0; i < npairs; i++) {
        int k;
        if ((rv = rd_key(&d, &seen, &k)) != 0) {
            return rv;
        }
        uint32_t version;
        switch (k) {
        case KEY_V:
            rv = rd_version(&d, &version);
            break;
        case KEY_SRC:
            if ((rv = rd_str(&d, &s, &slen, FR_MAX_STRING)) == 0 && memchr(s, 0, slen) != NULL) {
                rv = dec_fail(&d, FR_EINVAL, "a NUL byte inside the string");
            }
            break;
        case KEY_SEQ:
            rv = rd_uint(&d, &sq);
            break;
        default:
            rv = skip_value(&d);
            break;
        }
        if (rv != 0) {
            return rv;
        }
        if ((seen & (1u << KEY_SRC)) && (seen & (1u << KEY_SEQ))) {
            break;
        }
    }
    d.field = NULL;
    if ((rv = check_missing(&d, seen, 1u << KEY_SRC | 1u << KEY_SEQ)) != 0) {
        return rv;
    }
    if (srclen > 0) {
        size_t n = slen < srclen - 1 ? slen : srclen - 1;
        memcpy(src, s, n);
        src[n] = '\0';
    }
    *seq = sq;
    return 0;
}
