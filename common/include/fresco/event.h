/* Event streams: nng PUB (listening) / SUB (dialing).
 *
 * Message = topic bytes, one NUL byte, then a msgpack map
 *   {"src": <publisher's source name>, "seq": <uint>, "ts": <ns>, "body": <any>}
 * (schemas/event.md). SUB matches topics by prefix ("metrics/" gets every
 * task's metrics). seq counts per (source, topic) from 1, so a subscriber
 * counts what pub/sub dropped under it. */
#ifndef FRESCO_EVENT_H
#define FRESCO_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "fresco/err.h"
#include "fresco/mpdoc.h"
#include "fresco/tls.h"

#define FR_TOPIC_MAX 128

typedef struct fr_event_pub fr_event_pub;

/* Listens on url; src names this publisher in every event (copied). */
int fr_event_pub_open(fr_event_pub **out, const char *url, const fr_tls_conf *tls, const char *src);

/* Publishes body (one packed msgpack object, or NULL/0 for nil) on topic.
 * Never blocks on slow subscribers (pub/sub drops for them). Thread-safe. */
int fr_event_publish(fr_event_pub *p, const char *topic, const void *body, size_t len);

/* Events published so far. */
uint64_t fr_event_pub_count(fr_event_pub *p);

void fr_event_pub_close(fr_event_pub *p);

typedef struct fr_event_sub fr_event_sub;

typedef struct fr_event {
    char topic[FR_TOPIC_MAX + 1];
    const char *src; /* points into doc */
    uint64_t seq;
    int64_t ts;
    const fr_node *body; /* points into doc */
    fr_doc doc;          /* owns src and body: free with fr_event_free */
} fr_event;

typedef struct fr_event_sub_stats {
    uint64_t received;
    uint64_t missed;    /* seq gaps summed over (src, topic) */
    uint64_t malformed; /* messages that did not decode: counted, dropped */
} fr_event_sub_stats;

/* Dials url. Subscribe to at least one prefix ("" = everything). */
int fr_event_sub_open(fr_event_sub **out, const char *url, const fr_tls_conf *tls);
int fr_event_subscribe(fr_event_sub *s, const char *topic_prefix);

/* Waits up to timeout_ms (-1 = forever) for the next well-formed event.
 * 0 (fill ev; free with fr_event_free), FR_ETIMEDOUT or FR_ECLOSED.
 * Malformed messages are counted and skipped. */
int fr_event_recv(fr_event_sub *s, int timeout_ms, fr_event *ev);
void fr_event_free(fr_event *ev);

void fr_event_sub_stats_get(fr_event_sub *s, fr_event_sub_stats *st);
void fr_event_sub_close(fr_event_sub *s);

/* Encodes / decodes one event message (for tests and fuzzing). */
#include "fresco/buf.h"
int fr_event_encode(const char *topic, const char *src, uint64_t seq, int64_t ts, const void *body,
                    size_t len, fr_buf *out);
int fr_event_decode(const void *data, size_t len, fr_event *ev, fr_error *err);

#endif
