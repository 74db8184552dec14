/* The Kafka sink's record of what it has stored: for each batch it was
 * given, keyed by (stream, seq), the state of each of its messages (one per
 * metric). A batch whose messages are all delivered is complete; one with
 * some delivered (before a failure, or found in the topic after a restart)
 * is partial, and a later write sends only the rest.
 *
 * Exact, not a sliding window: fr_seqwin counts a seq far below a stream's
 * newest as seen, and a collector that restarts numbers its batches from
 * the clock, so a batch that failed beside a much newer one of the same
 * stream would be taken as stored. Bounded instead by a number of batches:
 * when full, the oldest record with no message in flight is forgotten
 * (counted in evicted), and a batch written again after that may be stored
 * twice.
 *
 * Not thread-safe: the sink's write thread owns it (delivery reports are
 * served on that thread too, inside rd_kafka_poll). */
#ifndef KAFKA_LEDGER_H
#define KAFKA_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A message's state. */
enum {
    KL_UNSENT = 0,    /* not produced, or known not stored */
    KL_INFLIGHT = 1,  /* produced, delivery report pending */
    KL_DELIVERED = 2, /* stored in the topic */
    KL_UNKNOWN = 3,   /* failed after it may have reached the broker: a read
                         of the topic tells */
};

#define KL_NONE UINT32_MAX /* no record */

typedef struct kafka_rec {
    char *stream;
    uint64_t seq;
    uint32_t nmsgs;
    uint32_t ndelivered, ninflight, nunknown;
    uint8_t *state;  /* nmsgs states; NULL once complete */
    int last_err;    /* rd_kafka_resp_err_t of the last failed report, or 0 */
    bool too_big;    /* a message was refused as too large */
    uint64_t gen;    /* the write that last used it (see kafka_ledger_pin) */
    uint64_t serial; /* unique to this record: a slot is reused */
    /* private */
    uint32_t hnext;        /* hash chain */
    uint32_t older, newer; /* insertion order */
} kafka_rec;

typedef struct kafka_ledger kafka_ledger;

/* A ledger of at most max_batches records. NULL on out of memory. */
kafka_ledger *kafka_ledger_new(uint32_t max_batches);
void kafka_ledger_destroy(kafka_ledger *l);

/* The record of (stream, seq), or KL_NONE. */
uint32_t kafka_ledger_find(const kafka_ledger *l, const char *stream, uint64_t seq);

/* Adds a record of nmsgs unsent messages for (stream, seq), which must not
 * be recorded. Forgets the oldest record with nothing in flight when full.
 * Returns the record's slot, or KL_NONE: *rv is FR_ENOMEM, or FR_EBUSY
 * when every record has messages in flight or is pinned and incomplete. */
uint32_t kafka_ledger_add(kafka_ledger *l, const char *stream, uint64_t seq, uint32_t nmsgs,
                          int *rv);

/* Records whose gen is gen are forgotten to make room only once complete
 * and only when no other record can go (the current write holds their
 * slots: it checks a slot's serial to tell); 0 pins nothing. */
void kafka_ledger_pin(kafka_ledger *l, uint64_t gen);

/* Drops a record (must have nothing in flight). */
void kafka_ledger_remove(kafka_ledger *l, uint32_t slot);

/* The record in slot (valid until the next add or remove). */
kafka_rec *kafka_ledger_at(kafka_ledger *l, uint32_t slot);

static inline bool kafka_rec_complete(const kafka_rec *r)
{
    return r->state == NULL;
}

/* The state of message idx. */
static inline uint8_t kafka_rec_state(const kafka_rec *r, uint32_t idx)
{
    return r->state == NULL ? (uint8_t)KL_DELIVERED : r->state[idx];
}

/* Sets message idx's state, keeping the counts; a record whose messages
 * are all delivered becomes complete (its states are freed). */
void kafka_ledger_mark(kafka_ledger *l, uint32_t slot, uint32_t idx, uint8_t state);

/* Moves every message in state `from` to state `to`: KL_UNKNOWN to
 * KL_UNSENT before a read of the topic marks the ones it finds, KL_INFLIGHT
 * to KL_UNKNOWN when the producer went away with them. Returns how many
 * messages moved. */
size_t kafka_ledger_move(kafka_ledger *l, uint8_t from, uint8_t to);

/* Figures. */
size_t kafka_ledger_count(const kafka_ledger *l);
uint64_t kafka_ledger_evicted(const kafka_ledger *l);

#endif
