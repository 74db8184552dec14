/* Duplicate detection by (source, seq) for consumers of the data path.
 *
 * Each source keeps a sliding window of FR_SEQWIN_BITS sequence numbers
 * [lo, lo + FR_SEQWIN_BITS) as a ring bitmap indexed by seq % FR_SEQWIN_BITS;
 * below lo nothing is known, so a seq there counts as new. A seq beyond the window slides it
 * forward, forgetting the oldest bits. Sources live in a hash map split into
 * shards, each with its own lock, so that threads checking different sources
 * rarely contend: this sits on the publisher's hot path. */
#include "fresco/data.h"

#include <pthread.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#define SEQWIN_WORDS           (FR_SEQWIN_BITS / 64u)
#define SEQWIN_MASK            ((uint64_t)FR_SEQWIN_BITS - 1u)
#define SEQWIN_SHARDS          16u
#define SEQWIN_INITIAL_BUCKETS 8u

_Static_assert((FR_SEQWIN_BITS & (FR_SEQWIN_BITS - 1u)) == 0 && FR_SEQWIN_BITS >= 64u,
               "the ring index is a mask: FR_SEQWIN_BITS must be a power of two");

typedef struct seqwin_source seqwin_source;
struct seqwin_source {
    seqwin_source *next;
    uint64_t hash;
    uint64_t lo; /* every seq below lo counts as seen */
    uint64_t bits[SEQWIN_WORDS];
    char name[];
};

/* Aligned to a cache line so that two shards' locks never share one. */
typedef struct seqwin_shard {
    alignas(64) pthread_mutex_t mu;
    seqwin_source **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
} seqwin_shard;

struct fr_seqwin {
    seqwin_shard shards[SEQWIN_SHARDS];
    unsigned ninit; /* shards whose mutex is initialised */
};

/* FNV-1a: short names, no need for anything stronger. */
static uint64_t seqwin_hash(const char *s, size_t *len)
{
    uint64_t h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    for (; p[n] != '\0'; n++) {
        h ^= p[n];
        h *= 1099511628211ull;
    }
    *len = n;
    return h;
}

fr_seqwin *fr_seqwin_new(void)
{
    fr_seqwin *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        return NULL;
    }
    for (unsigned i = 0; i < SEQWIN_SHARDS; i++) {
        if (pthread_mutex_init(&w->shards[i].mu, NULL) != 0) {
            fr_seqwin_destroy(w);
            return NULL;
        }
        w->ninit++;
    }
    return w;
}

void fr_seqwin_destroy(fr_seqwin *w)
{
    if (w == NULL) {
        return;
    }
    for (unsigned i = 0; i < SEQWIN_SHARDS; i++) {
        seqwin_shard *sh = &w->shards[i];
        for (size_t b = 0; b < sh->nbuckets; b++) {
            seqwin_source *src = sh->buckets[b];
            while (src != NULL) {
                seqwin_source *next = src->next;
                free(src);
                src = next;
            }
        }
        free(sh->buckets);
        if (i < w->ninit) {
            pthread_mutex_destroy(&sh->mu);
        }
    }
    free(w);
}

static int shard_grow(seqwin_shard *sh)
{
    size_t n = sh->nbuckets ? sh->nbuckets * 2 : SEQWIN_INITIAL_BUCKETS;
    seqwin_source **nb = calloc(n, sizeof(*nb));
    if (nb == NULL) {
        return FR_ENOMEM;
    }
    for (size_t b = 0; b < sh->nbuckets; b++) {
        seqwin_source *src = sh->buckets[b];
        while (src != NULL) {
            seqwin_source *next = src->next;
            size_t i = (size_t)(src->hash >> 4) & (n - 1);
            src->next = nb[i];
            nb[i] = src;
            src = next;
        }
    }
    free(sh->buckets);
    sh->buckets = nb;
    sh->nbuckets = n;
    return 0;
}

/* The low 4 bits of the hash pick the shard, the rest the bucket. */
static seqwin_source *shard_find(seqwin_shard *sh, uint64_t h, const char *name, size_t len)
{
    if (sh->nbuckets == 0) {
        return NULL;
    }
    for (seqwin_source *src = sh->buckets[(size_t)(h >> 4) & (sh->nbuckets - 1)]; src != NULL;
         src = src->next) {
        if (src->hash == h && memcmp(src->name, name, len + 1) == 0) {
            return src;
        }
    }
    return NULL;
}

static seqwin_source *shard_add(seqwin_shard *sh, uint64_t h, const char *name, size_t len)
{
    if (sh->count >= sh->nbuckets && shard_grow(sh) != 0) {
        return NULL;
    }
    seqwin_source *src = calloc(1, sizeof(*src) + len + 1);
    if (src == NULL) {
        return NULL;
    }
    src->hash = h;
    memcpy(src->name, name, len + 1);
    size_t i = (size_t)(h >> 4) & (sh->nbuckets - 1);
    src->next = sh->buckets[i];
    sh->buckets[i] = src;
    sh->count++;
    return src;
}

/* Clears n ring bits starting at ring index `from` (n < FR_SEQWIN_BITS). */
static void ring_clear(uint64_t *bits, uint64_t from, uint64_t n)
{
    while (n > 0) {
        uint64_t idx = from & SEQWIN_MASK;
        uint64_t off = idx & 63u;
        uint64_t take = 64u - off;
        if (take > n) {
            take = n;
        }
        if (take == 64u) {
            bits[idx >> 6] = 0;
        } else {
            bits[idx >> 6] &= ~(((UINT64_C(1) << take) - 1u) << off);
        }
        from += take;
        n -= take;
    }
}

static int source_check(seqwin_source *src, uint64_t seq)
{
    if (seq < src->lo) {
        /* Below the window: too old to tell, so new (not recorded). */
        return 1;
    }
    if (seq - src->lo >= FR_SEQWIN_BITS) {
        uint64_t lo = seq - (FR_SEQWIN_BITS - 1u);
        uint64_t drop = lo - src->lo;
        if (drop >= FR_SEQWIN_BITS) {
            memset(src->bits, 0, sizeof(src->bits));
        } else {
            ring_clear(src->bits, src->lo, drop);
        }
        src->lo = lo;
    }
    uint64_t idx = seq & SEQWIN_MASK;
    uint64_t bit = UINT64_C(1) << (idx & 63u);
    uint64_t *word = &src->bits[idx >> 6];
    if (*word & bit) {
        return 0;
    }
    *word |= bit;
    return 1;
}

int fr_seqwin_check(fr_seqwin *w, const char *source, uint64_t seq)
{
    size_t len;
    uint64_t h = seqwin_hash(source, &len);
    seqwin_shard *sh = &w->shards[h & (SEQWIN_SHARDS - 1u)];
    pthread_mutex_lock(&sh->mu);
    seqwin_source *src = shard_find(sh, h, source, len);
    if (src == NULL && (src = shard_add(sh, h, source, len)) == NULL) {
        pthread_mutex_unlock(&sh->mu);
        return FR_ENOMEM;
    }
    int rv = source_check(src, seq);
    pthread_mutex_unlock(&sh->mu);
    return rv;
}

bool fr_seqwin_seen(fr_seqwin *w, const char *source, uint64_t seq)
{
    size_t len;
    uint64_t h = seqwin_hash(source, &len);
    seqwin_shard *sh = &w->shards[h & (SEQWIN_SHARDS - 1u)];
    pthread_mutex_lock(&sh->mu);
    const seqwin_source *src = shard_find(sh, h, source, len);
    bool seen = false;
    if (src != NULL && seq >= src->lo) {
        if (seq - src->lo < FR_SEQWIN_BITS) {
            uint64_t idx = seq & SEQWIN_MASK;
            seen = (src->bits[idx >> 6] >> (idx & 63u)) & 1u;
        }
    }
    pthread_mutex_unlock(&sh->mu);
    return seen;
}
