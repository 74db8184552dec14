/* Per-series state for the processor plugins that remember the past
 * (anomaly, rate, window): a bounded hash table from a metric's series to
 * a fixed-size block of plugin state.
 *
 * A series is what identifies one stream of points: the batch's source and
 * batch-level tags, the metric's namespace, unit and tags (in any order).
 * Two metrics of one series, seen in different batches, therefore carry
 * the same envelope context, so a plugin may emit remembered points of a
 * series into any later output batch of that series.
 *
 * Bounds: at most `max` series. A new series beyond that evicts the least
 * recently seen one (counted in `evicted`). A series with no point for
 * `expire_ns` of metric time is dropped (counted in `expired`): on its next
 * point (it then starts afresh) or by series_table_expire(), which a plugin
 * calls after each batch with the batch's newest timestamp. "Least recently
 * seen" is arrival order, which for a collector's ticks is time order.
 *
 * Ownership: the table owns every series (one allocation each, holding its
 * state block and copies of its namespace, unit and tags).
 * series_table_free() frees them all. A series pointer is valid until the
 * next series_table_get() or series_table_expire() (either may evict it).
 *
 * Header-only (static inline) so that each plugin folder builds on its
 * own. */
#ifndef PROCESSOR_SERIES_H
#define PROCESSOR_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "fresco/metric.h"

typedef struct series series;
struct series {
    uint64_t hash; /* of everything below but ctx */
    uint64_t ctx;  /* series_ctx() of the batches it came in */
    series *newer, *older;
    int64_t last_ts; /* newest timestamp seen */
    const char *ns, *unit;
    fr_tag *tags;
    uint32_t ns_len, unit_len, ntags;
    unsigned char *state; /* the plugin's state block (zeroed when the series is new) */
    /* then the tags, the strings and the state block, in one allocation:
     * what every lookup compares comes first, next to the header */
};

typedef struct series_slot {
    uint64_t hash;
    series *s; /* NULL: empty */
} series_slot;

typedef struct series_table {
    series_slot *slots;
    uint32_t mask; /* slots - 1 (a power of two), or 0 before the first insert */
    uint32_t n, max;
    size_t state_size;
    int64_t expire_ns;
    series *newest, *oldest;
    uint64_t evicted, expired;
} series_table;

static inline uint32_t series_len(const char *s, uint32_t n)
{
    return n != 0 || s == NULL ? n : (uint32_t)strlen(s);
}

static inline uint64_t series_mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static inline uint64_t series_fold_word(uint64_t h, uint64_t w)
{
    w *= 0x87c37b91114253d5ULL;
    w = (w << 31) | (w >> 33);
    h = (h ^ w) * 0x4cf5ad432745937fULL;
    return (h << 27) | (h >> 37);
}

/* Folds n bytes into h, eight at a time; no final mixing (series_mix).
 * The last bytes are read as overlapping loads, not byte by byte: the
 * strings hashed are mostly short. */
static inline uint64_t series_fold(uint64_t h, const char *p, size_t n)
{
    h ^= n * 0x9e3779b97f4a7c15ULL;
    uint64_t w;
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            memcpy(&w, p + i, 8);
            h = series_fold_word(h, w);
        }
        if (i < n) {
            memcpy(&w, p + n - 8, 8);
            h = series_fold_word(h, w);
        }
        return h;
    }
    if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, p, 4);
        memcpy(&b, p + n - 4, 4);
        w = ((uint64_t)a << 32) | b;
    } else if (n > 0) {
        w = ((uint64_t)(uint8_t)p[0] << 16) | ((uint64_t)(uint8_t)p[n / 2] << 8) |
            (uint8_t)p[n - 1];
    } else {
        return h;
    }
    return series_fold_word(h, w);
}

/* An order-independent hash of a tag set: the sum of each tag's hash. */
static inline uint64_t series_hash_tags(const fr_tag *t, uint32_t n)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t h = series_fold(0x5bd1e995, t[i].key, series_len(t[i].key, t[i].key_len));
        h = series_fold(h, t[i].value, series_len(t[i].value, t[i].value_len));
        sum += series_mix(h);
    }
    return sum;
}

/* The envelope context of batch b's metrics: its source and batch-level
 * tags. Computed once per batch. */
static inline uint64_t series_ctx(const fr_batch *b)
{
    uint64_t h = series_fold(0x27d4eb2f165667c5ULL, b->source, strlen(b->source));
    return series_mix(series_mix(h) + series_hash_tags(b->tags, b->ntags));
}

/* The hash of m's series (its namespace, unit and tags). */
static inline uint64_t series_hash(const fr_metric *m)
{
    uint64_t h = series_fold(0x165667b19e3779f9ULL, m->ns, series_len(m->ns, m->ns_len));
    h = series_fold(h, m->unit, series_len(m->unit, m->unit_len));
    return series_mix(series_mix(h) + series_hash_tags(m->tags, m->ntags));
}

/* The strings compared are short (tag keys and values, namespaces): an
 * inline loop beats a call to memcmp. */
static inline bool series_str_eq(const char *a, uint32_t alen, const char *b, uint32_t blen)
{
    if (alen != blen) {
        return false;
    }
    uint64_t x, y;
    if (alen >= 8) {
        uint32_t i = 0;
        for (; i + 8 <= alen; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, b + i, 8);
            if (x != y) {
                return false;
            }
        }
        if (i == alen) {
            return true;
        }
        memcpy(&x, a + alen - 8, 8); /* the rest, overlapping */
        memcpy(&y, b + alen - 8, 8);
        return x == y;
    }
    if (alen >= 4) {
        uint32_t p, q, r, t;
        memcpy(&p, a, 4);
        memcpy(&q, b, 4);
        memcpy(&r, a + alen - 4, 4);
        memcpy(&t, b + alen - 4, 4);
        return p == q && r == t;
    }
    for (uint32_t i = 0; i < alen; i++) {
        if (a[i] != b[i]) {
            return false;
        }
    }
    return true;
}

/* True when the tag sets hold the same pairs (in any order). Tag keys are
 * unique within a set. */
static inline bool series_tags_eq(const fr_tag *a, uint32_t na, const fr_tag *b, uint32_t nb)
{
    if (na != nb) {
        return false;
    }
    for (uint32_t i = 0; i < nb; i++) {
        uint32_t klen = series_len(b[i].key, b[i].key_len);
        uint32_t j = i; /* same order first: the usual case */
        for (uint32_t tries = 0; tries < na; tries++, j = j + 1 == na ? 0 : j + 1) {
            if (series_str_eq(a[j].key, a[j].key_len, b[i].key, klen)) {
                break;
            }
        }
        if (!series_str_eq(a[j].key, a[j].key_len, b[i].key, klen) ||
            !series_str_eq(a[j].value, a[j].value_len, b[i].value,
                           series_len(b[i].value, b[i].value_len))) {
            return false;
        }
    }
    return true;
}

static inline bool series_matches(const series *s, uint64_t ctx, const fr_metric *m)
{
    return s->ctx == ctx && series_str_eq(s->ns, s->ns_len, m->ns, series_len(m->ns, m->ns_len)) &&
           series_str_eq(s->unit, s->unit_len, m->unit, series_len(m->unit, m->unit_len)) &&
           series_tags_eq(s->tags, s->ntags, m->tags, m->ntags);
}

/* Sets up an empty table. max >= 1; state_size bytes of plugin state per
 * series. Allocates nothing yet. */
static inline void series_table_init(series_table *t, uint32_t max, size_t state_size,
                                     int64_t expire_ns)
{
    memset(t, 0, sizeof(*t));
    t->max = max;
    t->state_size = state_size;
    t->expire_ns = expire_ns;
}

static inline void series_table_free(series_table *t)
{
    for (series *s = t->newest; s != NULL;) {
        series *next = s->older;
        free(s);
        s = next;
    }
    free(t->slots);
    t->slots = NULL;
    t->mask = 0;
    t->n = 0;
    t->newest = t->oldest = NULL;
}

static inline void *series_state(series *s)
{
    return s->state;
}

static inline void series_unlink(series_table *t, series *s)
{
    if (s->newer != NULL) {
        s->newer->older = s->older;
    } else {
        t->newest = s->older;
    }
    if (s->older != NULL) {
        s->older->newer = s->newer;
    } else {
        t->oldest = s->newer;
    }
    s->newer = s->older = NULL;
}

static inline void series_push_newest(series_table *t, series *s)
{
    s->older = t->newest;
    s->newer = NULL;
    if (t->newest != NULL) {
        t->newest->newer = s;
    } else {
        t->oldest = s;
    }
    t->newest = s;
}

/* Removes s from the table and frees it (linear probing: later entries of
 * the same run shift back, so no tombstones are left). */
static inline void series_remove(series_table *t, series *s)
{
    uint32_t i = (uint32_t)s->hash & t->mask;
    while (t->slots[i].s != s) {
        i = (i + 1) & t->mask;
    }
    t->slots[i].s = NULL;
    for (uint32_t j = (i + 1) & t->mask; t->slots[j].s != NULL; j = (j + 1) & t->mask) {
        uint32_t home = (uint32_t)t->slots[j].hash & t->mask;
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            t->slots[i] = t->slots[j];
            t->slots[j].s = NULL;
            i = j;
        }
    }
    series_unlink(t, s);
    free(s);
    t->n--;
}

/* Doubles the slot array (or creates it). 0 or FR_ENOMEM. */
static inline int series_grow(series_table *t)
{
    uint32_t cap = t->mask == 0 ? 64 : (t->mask + 1) * 2;
    series_slot *slots = calloc(cap, sizeof(*slots));
    if (slots == NULL) {
        return FR_ENOMEM;
    }
    uint32_t mask = cap - 1;
    if (t->slots != NULL) {
        for (uint32_t i = 0; i <= t->mask; i++) {
            if (t->slots[i].s == NULL) {
                continue;
            }
            uint32_t j = (uint32_t)t->slots[i].hash & mask;
            while (slots[j].s != NULL) {
                j = (j + 1) & mask;
            }
            slots[j] = t->slots[i];
        }
    }
    free(t->slots);
    t->slots = slots;
    t->mask = mask;
    return 0;
}

static inline size_t series_align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* A new series holding copies of m's namespace, unit and tags, with a
 * zeroed state block; NULL on out of memory. */
static inline series *series_new(const series_table *t, uint64_t hash, uint64_t ctx,
                                 const fr_metric *m)
{
    uint32_t ns_len = series_len(m->ns, m->ns_len);
    uint32_t unit_len = series_len(m->unit, m->unit_len);
    size_t strings = (size_t)ns_len + 1 + unit_len + 1;
    for (uint32_t i = 0; i < m->ntags; i++) {
        strings += (size_t)series_len(m->tags[i].key, m->tags[i].key_len) + 1 +
                   series_len(m->tags[i].value, m->tags[i].value_len) + 1;
    }
    size_t head = sizeof(series) + m->ntags * sizeof(fr_tag);
    size_t state_off = (head + strings + 15) & ~(size_t)15;
    series *s = calloc(1, state_off + series_align8(t->state_size));
    if (s == NULL) {
        return NULL;
    }
    s->hash = hash;
    s->ctx = ctx;
    s->tags = (fr_tag *)(void *)(s + 1);
    s->ntags = m->ntags;
    s->state = (unsigned char *)s + state_off;
    char *p = (char *)s + head;
    memcpy(p, m->ns, ns_len);
    s->ns = p;
    s->ns_len = ns_len;
    p += ns_len + 1;
    memcpy(p, m->unit, unit_len);
    s->unit = p;
    s->unit_len = unit_len;
    p += unit_len + 1;
    for (uint32_t i = 0; i < m->ntags; i++) {
        fr_tag *d = &s->tags[i];
        d->key_len = series_len(m->tags[i].key, m->tags[i].key_len);
        d->value_len = series_len(m->tags[i].value, m->tags[i].value_len);
        memcpy(p, m->tags[i].key, d->key_len);
        d->key = p;
        p += d->key_len + 1;
        memcpy(p, m->tags[i].value, d->value_len);
        d->value = p;
        p += d->value_len + 1;
    }
    return s;
}

/* The series of metric m (ctx: series_ctx() of its batch; hash:
 * series_hash(m)), made the most recently seen. A new series (or one whose last point is more than
 * expire_ns before m's) gets a zeroed state block and *fresh = true.
 * NULL on out of memory. */
static inline series *series_table_get_hashed(series_table *t, uint64_t hash, uint64_t ctx,
                                              const fr_metric *m, bool *fresh)
{
    *fresh = false;
    if (t->mask != 0) {
        for (uint32_t i = (uint32_t)hash & t->mask; t->slots[i].s != NULL; i = (i + 1) & t->mask) {
            series *s = t->slots[i].s;
            if (t->slots[i].hash != hash || !series_matches(s, ctx, m)) {
                continue;
            }
            if (t->expire_ns > 0 && m->ts - s->last_ts > t->expire_ns) {
                memset(s->state, 0, t->state_size);
                t->expired++;
                *fresh = true;
            }
            if (s->last_ts < m->ts || *fresh) {
                s->last_ts = m->ts;
            }
            if (t->newest != s) {
                series_unlink(t, s);
                series_push_newest(t, s);
            }
            return s;
        }
    }
    if (t->n >= t->max && t->oldest != NULL) {
        series_remove(t, t->oldest);
        t->evicted++;
    }
    if ((uint64_t)(t->n + 1) * 2 > (uint64_t)t->mask + 1 && series_grow(t) != 0) {
        return NULL;
    }
    series *s = series_new(t, hash, ctx, m);
    if (s == NULL) {
        return NULL;
    }
    s->last_ts = m->ts;
    uint32_t i = (uint32_t)hash & t->mask;
    while (t->slots[i].s != NULL) {
        i = (i + 1) & t->mask;
    }
    t->slots[i].hash = hash;
    t->slots[i].s = s;
    series_push_newest(t, s);
    t->n++;
    *fresh = true;
    return s;
}

static inline series *series_table_get(series_table *t, uint64_t ctx, const fr_metric *m,
                                       bool *fresh)
{
    return series_table_get_hashed(t, series_hash(m), ctx, m, fresh);
}

/* Hints that the series of hash will be looked up soon, so that the
 * lookups of a batch do not wait on memory one after another: a plugin
 * fetches the slot a few metrics ahead (series_table_prefetch_slot), then,
 * closer, the first `bytes` of the series it names (..._series; reads the
 * slot, which should be in the cache by then). */
static inline void series_table_prefetch_slot(const series_table *t, uint64_t hash)
{
    if (t->mask != 0) {
        __builtin_prefetch(&t->slots[(uint32_t)hash & t->mask]);
    }
}

static inline void series_table_prefetch_series(const series_table *t, uint64_t hash, size_t bytes)
{
    if (t->mask == 0) {
        return;
    }
    const series_slot *slot = &t->slots[(uint32_t)hash & t->mask];
    if (slot->hash == hash && slot->s != NULL) {
        for (size_t off = 0; off < bytes; off += 64) {
            __builtin_prefetch((const char *)slot->s + off);
        }
    }
}

/* Drops the series, from the least recently seen on, whose newest point is
 * more than expire_ns before now (a batch's newest timestamp). */
static inline void series_table_expire(series_table *t, int64_t now)
{
    if (t->expire_ns <= 0) {
        return;
    }
    while (t->oldest != NULL && now - t->oldest->last_ts > t->expire_ns) {
        series_remove(t, t->oldest);
        t->expired++;
    }
}

/* True for the value types the numeric plugins work on. */
static inline bool series_numeric(const fr_value *v)
{
    return v->type == FR_VAL_INT64 || v->type == FR_VAL_UINT64 || v->type == FR_VAL_DOUBLE;
}

static inline double series_value_f64(const fr_value *v)
{
    switch (v->type) {
    case FR_VAL_INT64:
        return (double)v->v.i;
    case FR_VAL_UINT64:
        return (double)v->v.u;
    default:
        return v->v.d;
    }
}

/* Appends a copy of metric m (its strings copied into b) with ts and
 * value replaced; NULL on out of memory. For points a plugin emits from
 * its own state, whose strings may not outlive b. */
static inline fr_metric *series_emit_copy(fr_batch *b, const char *ns, const char *unit,
                                          const fr_tag *tags, uint32_t ntags, int64_t ts,
                                          fr_value value)
{
    fr_metric *m = fr_batch_add(b, ns, ts, value, unit);
    for (uint32_t i = 0; m != NULL && i < ntags; i++) {
        if (fr_batch_metric_tag(b, m, tags[i].key, tags[i].value) != 0) {
            return NULL;
        }
    }
    return m;
}

/* Writes "key": u with pk (the stats() maps). */
static inline void series_pack_u64(msgpack_packer *pk, const char *key, uint64_t u)
{
    size_t n = strlen(key);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, key, n);
    msgpack_pack_uint64(pk, u);
}

#endif
