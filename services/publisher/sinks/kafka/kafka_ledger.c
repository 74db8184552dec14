/* The Kafka sink's record of stored batches: a hash map of records kept in
 * one array (slots, grown as needed), chained through slot numbers so the
 * sink can name a record in a message's opaque, plus a list in insertion
 * order to forget the oldest when full. */
#include "kafka/kafka_ledger.h"

#include <stdlib.h>
#include <string.h>

#include "fresco/err.h"

struct kafka_ledger {
    kafka_rec *recs; /* cap slots */
    uint32_t cap;    /* slots allocated */
    uint32_t max;    /* most records */
    uint32_t used;   /* slots ever handed out (<= cap) */
    uint32_t count;  /* live records */
    uint32_t free;   /* free slot list through hnext, or KL_NONE */
    uint32_t *buckets;
    uint32_t nbuckets; /* a power of two */
    uint32_t oldest, newest;
    uint64_t evicted;
    uint64_t pin;
    uint64_t serials;
};

static uint64_t ledger_hash(const char *stream, uint64_t seq)
{
    uint64_t h = 1469598103934665603ull;
    for (const unsigned char *p = (const unsigned char *)stream; *p != '\0'; p++) {
        h = (h ^ *p) * 1099511628211ull;
    }
    h ^= seq + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

kafka_ledger *kafka_ledger_new(uint32_t max_batches)
{
    if (max_batches == 0 || max_batches > (1u << 30)) {
        return NULL;
    }
    kafka_ledger *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        return NULL;
    }
    l->max = max_batches;
    l->nbuckets = 16;
    while (l->nbuckets < max_batches) {
        l->nbuckets <<= 1;
    }
    l->buckets = malloc(sizeof(*l->buckets) * l->nbuckets);
    if (l->buckets == NULL) {
        free(l);
        return NULL;
    }
    memset(l->buckets, 0xff, sizeof(*l->buckets) * l->nbuckets);
    l->free = KL_NONE;
    l->oldest = l->newest = KL_NONE;
    return l;
}

static void rec_clear(kafka_rec *r)
{
    free(r->stream);
    free(r->state);
    r->stream = NULL;
    r->state = NULL;
}

void kafka_ledger_destroy(kafka_ledger *l)
{
    if (l == NULL) {
        return;
    }
    for (uint32_t i = 0; i < l->used; i++) {
        rec_clear(&l->recs[i]);
    }
    free(l->recs);
    free(l->buckets);
    free(l);
}

kafka_rec *kafka_ledger_at(kafka_ledger *l, uint32_t slot)
{
    return slot < l->used && l->recs[slot].stream != NULL ? &l->recs[slot] : NULL;
}

uint32_t kafka_ledger_find(const kafka_ledger *l, const char *stream, uint64_t seq)
{
    uint64_t h = ledger_hash(stream, seq);
    for (uint32_t s = l->buckets[h & (l->nbuckets - 1)]; s != KL_NONE; s = l->recs[s].hnext) {
        const kafka_rec *r = &l->recs[s];
        if (r->seq == seq && strcmp(r->stream, stream) == 0) {
            return s;
        }
    }
    return KL_NONE;
}

void kafka_ledger_remove(kafka_ledger *l, uint32_t slot)
{
    kafka_rec *r = kafka_ledger_at(l, slot);
    if (r == NULL) {
        return;
    }
    uint32_t *link = &l->buckets[ledger_hash(r->stream, r->seq) & (l->nbuckets - 1)];
    while (*link != slot && *link != KL_NONE) {
        link = &l->recs[*link].hnext;
    }
    if (*link == slot) {
        *link = r->hnext;
    }
    if (r->older != KL_NONE) {
        l->recs[r->older].newer = r->newer;
    } else {
        l->oldest = r->newer;
    }
    if (r->newer != KL_NONE) {
        l->recs[r->newer].older = r->older;
    } else {
        l->newest = r->older;
    }
    rec_clear(r);
    r->hnext = l->free;
    l->free = slot;
    l->count--;
}

void kafka_ledger_pin(kafka_ledger *l, uint64_t gen)
{
    l->pin = gen;
}

/* Forgets the oldest record with nothing in flight that is not victim,
 * else the oldest victim complete one. False when none can go. */
static bool ledger_evict(kafka_ledger *l)
{
    uint32_t victim = KL_NONE;
    for (uint32_t s = l->oldest; s != KL_NONE; s = l->recs[s].newer) {
        const kafka_rec *r = &l->recs[s];
        if (r->ninflight != 0) {
            continue;
        }
        if (l->pin == 0 || r->gen != l->pin) {
            victim = s;
            break;
        }
        if (victim == KL_NONE && r->state == NULL) {
            victim = s;
        }
    }
    if (victim == KL_NONE) {
        return false;
    }
    kafka_ledger_remove(l, victim);
    l->evicted++;
    return true;
}

static uint32_t ledger_slot(kafka_ledger *l)
{
    if (l->free != KL_NONE) {
        uint32_t s = l->free;
        l->free = l->recs[s].hnext;
        return s;
    }
    if (l->used == l->cap) {
        uint32_t ncap = l->cap ? l->cap * 2 : 64;
        if (ncap > l->max) {
            ncap = l->max;
        }
        kafka_rec *n = realloc(l->recs, sizeof(*n) * ncap);
        if (n == NULL) {
            return KL_NONE;
        }
        memset(n + l->cap, 0, sizeof(*n) * (ncap - l->cap));
        l->recs = n;
        l->cap = ncap;
    }
    return l->used++;
}

uint32_t kafka_ledger_add(kafka_ledger *l, const char *stream, uint64_t seq, uint32_t nmsgs,
                          int *rv)
{
    *rv = 0;
    if (l->count >= l->max && !ledger_evict(l)) {
        *rv = FR_EBUSY;
        return KL_NONE;
    }
    char *name = strdup(stream);
    uint8_t *state = calloc(nmsgs ? nmsgs : 1, 1);
    uint32_t s = name != NULL && state != NULL ? ledger_slot(l) : KL_NONE;
    if (s == KL_NONE) {
        free(name);
        free(state);
        *rv = FR_ENOMEM;
        return KL_NONE;
    }
    kafka_rec *r = &l->recs[s];
    memset(r, 0, sizeof(*r));
    r->stream = name;
    r->seq = seq;
    r->nmsgs = nmsgs;
    r->state = state;
    r->serial = ++l->serials;
    uint32_t *bucket = &l->buckets[ledger_hash(stream, seq) & (l->nbuckets - 1)];
    r->hnext = *bucket;
    *bucket = s;
    r->newer = KL_NONE;
    r->older = l->newest;
    if (l->newest != KL_NONE) {
        l->recs[l->newest].newer = s;
    } else {
        l->oldest = s;
    }
    l->newest = s;
    l->count++;
    if (nmsgs == 0) {
        free(r->state);
        r->state = NULL;
    }
    return s;
}

void kafka_ledger_mark(kafka_ledger *l, uint32_t slot, uint32_t idx, uint8_t state)
{
    kafka_rec *r = kafka_ledger_at(l, slot);
    if (r == NULL || r->state == NULL || idx >= r->nmsgs || r->state[idx] == state) {
        return;
    }
    switch (r->state[idx]) {
    case KL_INFLIGHT:
        r->ninflight--;
        break;
    case KL_DELIVERED:
        r->ndelivered--;
        break;
    case KL_UNKNOWN:
        r->nunknown--;
        break;
    default:
        break;
    }
    r->state[idx] = state;
    switch (state) {
    case KL_INFLIGHT:
        r->ninflight++;
        break;
    case KL_DELIVERED:
        r->ndelivered++;
        break;
    case KL_UNKNOWN:
        r->nunknown++;
        break;
    default:
        break;
    }
    if (r->ndelivered == r->nmsgs) {
        free(r->state);
        r->state = NULL;
    }
}

size_t kafka_ledger_move(kafka_ledger *l, uint8_t from, uint8_t to)
{
    size_t moved = 0;
    for (uint32_t s = l->oldest; s != KL_NONE; s = l->recs[s].newer) {
        kafka_rec *r = &l->recs[s];
        uint32_t have = from == KL_UNKNOWN    ? r->nunknown
                        : from == KL_INFLIGHT ? r->ninflight
                                              : r->nmsgs;
        for (uint32_t i = 0; r->state != NULL && have > 0 && i < r->nmsgs; i++) {
            if (r->state[i] == from) {
                kafka_ledger_mark(l, s, i, to);
                moved++;
                have--;
            }
        }
    }
    return moved;
}

size_t kafka_ledger_count(const kafka_ledger *l)
{
    return l->count;
}

uint64_t kafka_ledger_evicted(const kafka_ledger *l)
{
    return l->evicted;
}
