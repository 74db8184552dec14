/* Event streams over nng PUB/SUB.
 *
 * Wire form (schemas/event.md): topic bytes, NUL, then the msgpack map
 * {"src", "seq", "ts", "body"} in that order. The publisher numbers events
 * per topic from 1; the subscriber keeps the last seq per (src, topic) and
 * sums the gaps, which is what pub/sub dropped under it. */
#include "fresco/event.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>

#include "fresco/clock.h"
#include "fresco/log.h"
#include "fresco/metric.h"

/* Streams a subscriber tracks for gap counting. A publisher inventing
 * endless topics must not grow it without bound: streams past this are
 * received but not tracked. */
#define EVENT_MAX_STREAMS 65536u

/* ---- a small string -> counter map ---- */

typedef struct seq_entry seq_entry;
struct seq_entry {
    seq_entry *next;
    uint64_t hash;
    uint64_t value;
    size_t keylen;
    char key[];
};

typedef struct seq_map {
    seq_entry **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
} seq_map;

static uint64_t key_hash(const char *key, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int seq_map_grow(seq_map *m)
{
    size_t n = m->nbuckets ? m->nbuckets * 2 : 16;
    seq_entry **nb = calloc(n, sizeof(*nb));
    if (nb == NULL) {
        return FR_ENOMEM;
    }
    for (size_t b = 0; b < m->nbuckets; b++) {
        seq_entry *e = m->buckets[b];
        while (e != NULL) {
            seq_entry *next = e->next;
            e->next = nb[e->hash & (n - 1)];
            nb[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = nb;
    m->nbuckets = n;
    return 0;
}

/* The counter for key (len bytes, may hold NULs), created at 0 when absent
 * and the map holds fewer than max entries. NULL when absent and not
 * created: *rv is then FR_ENOMEM or FR_ETOOBIG. */
static uint64_t *seq_map_get(seq_map *m, const char *key, size_t len, size_t max, int *rv)
{
    uint64_t h = key_hash(key, len);
    if (m->nbuckets > 0) {
        for (seq_entry *e = m->buckets[h & (m->nbuckets - 1)]; e != NULL; e = e->next) {
            if (e->hash == h && e->keylen == len && memcmp(e->key, key, len) == 0) {
                return &e->value;
            }
        }
    }
    if (m->count >= max) {
        *rv = FR_ETOOBIG;
        return NULL;
    }
    if (m->count >= m->nbuckets && seq_map_grow(m) != 0) {
        *rv = FR_ENOMEM;
        return NULL;
    }
    seq_entry *e = calloc(1, sizeof(*e) + len);
    if (e == NULL) {
        *rv = FR_ENOMEM;
        return NULL;
    }
    e->hash = h;
    e->keylen = len;
    memcpy(e->key, key, len);
    e->next = m->buckets[h & (m->nbuckets - 1)];
    m->buckets[h & (m->nbuckets - 1)] = e;
    m->count++;
    return &e->value;
}

static void seq_map_free(seq_map *m)
{
    for (size_t b = 0; b < m->nbuckets; b++) {
        seq_entry *e = m->buckets[b];
        while (e != NULL) {
            seq_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
}

/* ---- codec ---- */

static int pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    if (msgpack_pack_str(pk, n) != 0 || msgpack_pack_str_body(pk, s, n) != 0) {
        return FR_ENOMEM;
    }
    return 0;
}

int fr_event_encode(const char *topic, const char *src, uint64_t seq, int64_t ts, const void *body,
                    size_t len, fr_buf *out)
{
    if (topic == NULL || src == NULL || (body == NULL && len > 0)) {
        return FR_EINVAL;
    }
    size_t tlen = strnlen(topic, FR_TOPIC_MAX + 1);
    size_t slen = strlen(src);
    if (tlen == 0 || seq == 0) {
        return FR_EINVAL;
    }
    if (tlen > FR_TOPIC_MAX || slen > FR_MAX_STRING) {
        return FR_ETOOBIG;
    }
    size_t start = out->len;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, fr_buf_msgpack_write);
    int rv = FR_ENOMEM;
    if (fr_buf_append(out, topic, tlen + 1) != 0 || msgpack_pack_map(&pk, 4) != 0 ||
        pack_str(&pk, "src", 3) != 0 || pack_str(&pk, src, slen) != 0 ||
        pack_str(&pk, "seq", 3) != 0 || msgpack_pack_uint64(&pk, seq) != 0 ||
        pack_str(&pk, "ts", 2) != 0 || msgpack_pack_int64(&pk, ts) != 0 ||
        pack_str(&pk, "body", 4) != 0) {
        goto fail;
    }
    /* The body is packed by the caller already: one msgpack object. */
    if (len == 0 ? msgpack_pack_nil(&pk) != 0 : fr_buf_append(out, body, len) != 0) {
        goto fail;
    }
    return 0;
fail:
    out->len = start;
    return rv;
}

static void event_clear(fr_event *ev)
{
    memset(ev, 0, sizeof(*ev));
}

/* Unknown keys are let through, so that a newer publisher may add fields
 * without every older subscriber counting its events as malformed. */
int fr_event_decode(const void *data, size_t len, fr_event *ev, fr_error *err)
{
    event_clear(ev);
    fr_error_clear(err);
    if (data == NULL && len > 0) {
        return fr_error_set(err, FR_EINVAL, NULL, "no data");
    }
    size_t scan = len < FR_TOPIC_MAX + 1 ? len : FR_TOPIC_MAX + 1;
    const char *nul = scan > 0 ? memchr(data, '\0', scan) : NULL;
    if (nul == NULL) {
        if (len <= FR_TOPIC_MAX) {
            return fr_error_set(err, FR_ETRUNC, "topic",
                                "message ends before the NUL that ends the topic");
        }
        return fr_error_set(err, FR_ETOOBIG, "topic", "topic is not NUL-terminated within %u bytes",
                            FR_TOPIC_MAX + 1);
    }
    size_t tlen = (size_t)(nul - (const char *)data);
    if (tlen == 0) {
        return fr_error_set(err, FR_EINVAL, "topic", "empty topic");
    }
    memcpy(ev->topic, data, tlen);
    ev->topic[tlen] = '\0';

    const char *p = (const char *)data + tlen + 1;
    int rv = fr_doc_decode(p, len - tlen - 1, &ev->doc, err);
    if (rv != 0) {
        event_clear(ev);
        return rv;
    }
    const fr_node *root = ev->doc.root;
    const char *what = "src";
    if (root == NULL || root->type != FR_NODE_MAP) {
        rv = fr_error_set(err, FR_ETYPE, NULL, "an event is a map, not this");
        goto fail;
    }
    if ((rv = fr_node_get_str(root, "src", &ev->src)) != 0) {
        goto field;
    }
    what = "seq";
    if ((rv = fr_node_get_u64(root, "seq", &ev->seq)) != 0) {
        goto field;
    }
    if (ev->seq == 0) {
        rv = fr_error_set(err, FR_EINVAL, "seq", "seq starts at 1, got 0");
        goto fail;
    }
    what = "ts";
    if ((rv = fr_node_get_i64(root, "ts", &ev->ts)) != 0) {
        goto field;
    }
    if ((ev->body = fr_node_get(root, "body")) == NULL) {
        what = "body";
        rv = FR_EMISSING;
        goto field;
    }
    return 0;

field:
    fr_error_set(err, rv, what,
                 rv == FR_EMISSING ? "required field \"%s\" is missing"
                                   : "field \"%s\" has the wrong type",
                 what);
fail:
    fr_doc_free(&ev->doc);
    event_clear(ev);
    return rv;
}

void fr_event_free(fr_event *ev)
{
    if (ev != NULL) {
        fr_doc_free(&ev->doc);
        event_clear(ev);
    }
}

/* ---- publisher ---- */

struct fr_event_pub {
    nng_socket sock;
    bool sock_open;
    char *src;
    char *name; /* the url, for log lines */
    /* mu orders seq assignment and sending, so a topic's events leave in
     * seq order even when several threads publish. */
    pthread_mutex_t mu;
    bool mu_init;
    seq_map seqs; /* topic -> last seq published */
    fr_buf scratch;
    atomic_uint_fast64_t count;
};

int fr_event_pub_open(fr_event_pub **out, const char *url, const fr_tls_conf *tls, const char *src)
{
    *out = NULL;
    if (url == NULL || src == NULL || strlen(src) > FR_MAX_STRING) {
        return FR_EINVAL;
    }
    fr_event_pub *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return FR_ENOMEM;
    }
    int rv = FR_ENOMEM;
    if ((p->src = strdup(src)) == NULL || (p->name = strdup(url)) == NULL) {
        goto fail;
    }
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        goto fail;
    }
    p->mu_init = true;
    int nrv = nng_pub0_open(&p->sock);
    if (nrv != 0) {
        fr_error("event", "%s: cannot open a PUB socket: %s", url, nng_strerror(nrv));
        rv = fr_from_nng(nrv);
        goto fail;
    }
    p->sock_open = true;
    if ((rv = fr_listen(p->sock, url, tls, NULL)) != 0) {
        goto fail;
    }
    *out = p;
    return 0;
fail:
    fr_event_pub_close(p);
    return rv;
}

int fr_event_publish(fr_event_pub *p, const char *topic, const void *body, size_t len)
{
    if (p == NULL || topic == NULL || (body == NULL && len > 0)) {
        return FR_EINVAL;
    }
    size_t tlen = strnlen(topic, FR_TOPIC_MAX + 1);
    if (tlen == 0) {
        return FR_EINVAL;
    }
    if (tlen > FR_TOPIC_MAX || len > FR_MAX_MESSAGE) {
        return FR_ETOOBIG;
    }
    int64_t ts = fr_now_ns();
    int rv = 0;
    pthread_mutex_lock(&p->mu);
    uint64_t *last = seq_map_get(&p->seqs, topic, tlen, SIZE_MAX, &rv);
    if (last == NULL) {
        pthread_mutex_unlock(&p->mu);
        return rv;
    }
    fr_buf_reset(&p->scratch);
    rv = fr_event_encode(topic, p->src, *last + 1, ts, body, len, &p->scratch);
    if (rv == 0) {
        /* PUB never waits for subscribers: it drops for the slow ones. */
        int nrv = nng_send(p->sock, p->scratch.data, p->scratch.len, 0);
        if (nrv != 0) {
            fr_warn("event", "%s: cannot publish on %s: %s", p->name, topic, nng_strerror(nrv));
            rv = fr_from_nng(nrv);
        } else {
            /* Only a sent event takes a number: a failed one leaves no gap. */
            (*last)++;
            atomic_fetch_add(&p->count, 1);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return rv;
}

uint64_t fr_event_pub_count(fr_event_pub *p)
{
    return atomic_load(&p->count);
}

void fr_event_pub_close(fr_event_pub *p)
{
    if (p == NULL) {
        return;
    }
    if (p->sock_open) {
        nng_close(p->sock);
    }
    if (p->mu_init) {
        pthread_mutex_destroy(&p->mu);
    }
    seq_map_free(&p->seqs);
    fr_buf_free(&p->scratch);
    free(p->src);
    free(p->name);
    free(p);
}

/* ---- subscriber ---- */

struct fr_event_sub {
    nng_socket sock;
    bool sock_open;
    char *name;
    pthread_mutex_t mu; /* guards streams */
    bool mu_init;
    seq_map streams; /* src NUL topic -> last seq received */
    fr_buf key;      /* scratch for building stream keys, under mu */
    atomic_uint_fast64_t received;
    atomic_uint_fast64_t missed;
    atomic_uint_fast64_t malformed;
};

int fr_event_sub_open(fr_event_sub **out, const char *url, const fr_tls_conf *tls)
{
    *out = NULL;
    if (url == NULL) {
        return FR_EINVAL;
    }
    fr_event_sub *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return FR_ENOMEM;
    }
    int rv = FR_ENOMEM;
    if ((s->name = strdup(url)) == NULL) {
        goto fail;
    }
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        goto fail;
    }
    s->mu_init = true;
    int nrv = nng_sub0_open(&s->sock);
    if (nrv != 0) {
        fr_error("event", "%s: cannot open a SUB socket: %s", url, nng_strerror(nrv));
        rv = fr_from_nng(nrv);
        goto fail;
    }
    s->sock_open = true;
    /* nng's default 1 MiB limit would close the connection on a big event
     * instead of letting the decoder refuse it. */
    if ((nrv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, FR_MAX_MESSAGE)) != 0) {
        rv = fr_from_nng(nrv);
        goto fail;
    }
    if ((rv = fr_dial(s->sock, url, tls, NULL)) != 0) {
        goto fail;
    }
    *out = s;
    return 0;
fail:
    fr_event_sub_close(s);
    return rv;
}

int fr_event_subscribe(fr_event_sub *s, const char *topic_prefix)
{
    if (s == NULL || topic_prefix == NULL) {
        return FR_EINVAL;
    }
    int nrv = nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, topic_prefix, strlen(topic_prefix));
    if (nrv != 0) {
        fr_error("event", "%s: cannot subscribe to \"%s\": %s", s->name, topic_prefix,
                 nng_strerror(nrv));
        return fr_from_nng(nrv);
    }
    return 0;
}

/* Counts the gap before ev in its (src, topic) stream. A seq at or below
 * the last one means the publisher started over: follow it, count nothing. */
static void sub_track(fr_event_sub *s, const fr_event *ev)
{
    size_t slen = strlen(ev->src);
    size_t tlen = strlen(ev->topic);
    pthread_mutex_lock(&s->mu);
    fr_buf_reset(&s->key);
    int rv = fr_buf_reserve(&s->key, slen + 1 + tlen);
    if (rv == 0) {
        (void)fr_buf_append(&s->key, ev->src, slen + 1);
        (void)fr_buf_append(&s->key, ev->topic, tlen);
        uint64_t *last =
            seq_map_get(&s->streams, (const char *)s->key.data, s->key.len, EVENT_MAX_STREAMS, &rv);
        if (last != NULL) {
            /* 0: first event seen on this stream; what came before we
             * joined was not ours to miss. */
            if (*last != 0 && ev->seq > *last) {
                atomic_fetch_add(&s->missed, ev->seq - *last - 1);
            }
            *last = ev->seq;
        }
    }
    pthread_mutex_unlock(&s->mu);
}

/* Milliseconds left until end_ms, for nng (-1 = forever). */
static nng_duration remaining_ms(int timeout_ms, int64_t end_ms)
{
    if (timeout_ms < 0) {
        return NNG_DURATION_INFINITE;
    }
    int64_t now = fr_mono_ms();
    return now >= end_ms ? 0 : (nng_duration)(end_ms - now);
}

int fr_event_recv(fr_event_sub *s, int timeout_ms, fr_event *ev)
{
    event_clear(ev);
    int64_t end_ms = fr_mono_ms() + timeout_ms;
    for (;;) {
        int nrv = nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, remaining_ms(timeout_ms, end_ms));
        nng_msg *m = NULL;
        if (nrv == 0) {
            nrv = nng_recvmsg(s->sock, &m, 0);
        }
        if (nrv != 0) {
            return fr_from_nng(nrv);
        }
        fr_error err;
        int rv = fr_event_decode(nng_msg_body(m), nng_msg_len(m), ev, &err);
        nng_msg_free(m);
        if (rv == 0) {
            atomic_fetch_add(&s->received, 1);
            sub_track(s, ev);
            return 0;
        }
        uint64_t n = atomic_fetch_add(&s->malformed, 1) + 1;
        /* Logged at 1, 2, 4, 8, ...: a broken publisher must not flood. */
        if ((n & (n - 1)) == 0) {
            fr_warn("event", "%s: malformed event dropped (%llu so far): %s%s%s", s->name,
                    (unsigned long long)n, err.message, err.where[0] ? " at " : "", err.where);
        }
    }
}

void fr_event_sub_stats_get(fr_event_sub *s, fr_event_sub_stats *st)
{
    st->received = atomic_load(&s->received);
    st->missed = atomic_load(&s->missed);
    st->malformed = atomic_load(&s->malformed);
}

void fr_event_sub_close(fr_event_sub *s)
{
    if (s == NULL) {
        return;
    }
    if (s->sock_open) {
        nng_close(s->sock);
    }
    if (s->mu_init) {
        pthread_mutex_destroy(&s->mu);
    }
    seq_map_free(&s->streams);
    fr_buf_free(&s->key);
    free(s->name);
    free(s);
}
