/* Reading the tail of the sink's topic back: after a start (the publisher
 * may have died between a delivery and its confirmation, and will write
 * the same batches again) and after a failure that left a message's fate
 * unknown. A consumer of its own, outside any group (librdkafka's simple
 * consumer: nothing is committed), reads each partition from
 * max(low watermark, high watermark - dedup_lookback) to the high
 * watermark, and every message this sink wrote (its fresco-sink header is
 * the sink's id) is marked stored in the ledger. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/clock.h"
#include "fresco/log.h"
#include "kafka/kafka_sink.h"

#define READBACK_POLL_MS    100
#define READBACK_MAX_STREAM 4096

typedef struct readback_part {
    int64_t end; /* the high watermark when the read began */
    bool started, done;
} readback_part;

/* The last header called name, NUL-terminated into buf. False when it is
 * missing or does not fit. */
static bool readback_header(rd_kafka_headers_t *h, const char *name, char *buf, size_t cap)
{
    const void *v = NULL;
    size_t n = 0;
    if (rd_kafka_header_get_last(h, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR || v == NULL ||
        n >= cap) {
        return false;
    }
    memcpy(buf, v, n);
    buf[n] = '\0';
    return true;
}

static bool readback_u64(rd_kafka_headers_t *h, const char *name, uint64_t max, uint64_t *out)
{
    char buf[24];
    if (!readback_header(h, name, buf, sizeof(buf)) || buf[0] < '0' || buf[0] > '9') {
        return false;
    }
    char *end = NULL;
    unsigned long long v = strtoull(buf, &end, 10);
    if (*end != '\0' || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* Records message m when this sink wrote it. */
static void readback_record(kafka_sink *ks, const rd_kafka_message_t *m, char *stream)
{
    rd_kafka_headers_t *h = NULL;
    const void *sink = NULL;
    size_t sink_len = 0;
    size_t id_len = strlen(ks->info->id);
    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(h, KAFKA_H_SINK, &sink, &sink_len) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        sink_len != id_len || memcmp(sink, ks->info->id, id_len) != 0) {
        return;
    }
    uint64_t seq = 0, idx = 0, count = 0;
    if (!readback_header(h, KAFKA_H_STREAM, stream, READBACK_MAX_STREAM) ||
        !readback_u64(h, KAFKA_H_SEQ, UINT64_MAX, &seq) ||
        !readback_u64(h, KAFKA_H_COUNT, FR_MAX_METRICS, &count) ||
        !readback_u64(h, KAFKA_H_INDEX, count == 0 ? 0 : count - 1, &idx) || count == 0) {
        ks->n.readback_bad++;
        return;
    }
    uint32_t slot = kafka_ledger_find(ks->ledger, stream, seq);
    if (slot == KL_NONE) {
        int rv;
        slot = kafka_ledger_add(ks->ledger, stream, seq, (uint32_t)count, &rv);
        if (slot == KL_NONE) {
            return;
        }
    }
    kafka_rec *r = kafka_ledger_at(ks->ledger, slot);
    if (r->nmsgs != count) {
        ks->n.readback_bad++;
        return;
    }
    /* A message in flight is left to its delivery report. */
    if (kafka_rec_state(r, (uint32_t)idx) == KL_UNSENT) {
        kafka_ledger_mark(ks->ledger, slot, (uint32_t)idx, KL_DELIVERED);
        ks->n.readback_found++;
    }
}

static int readback_left(int64_t deadline)
{
    int64_t left = deadline - fr_mono_ms();
    return left <= 0 ? 0 : left > 1000000 ? 1000000 : (int)left;
}

static int readback_err(rd_kafka_resp_err_t e)
{
    return e == RD_KAFKA_RESP_ERR__TIMED_OUT ? FR_ETIMEDOUT : FR_EIO;
}

int kafka_readback(kafka_sink *ks, int64_t deadline, fr_error *err)
{
    kafka_ledger_move(ks->ledger, KL_UNKNOWN, KL_UNSENT);
    char errstr[512];
    rd_kafka_conf_t *conf = kafka_conf_new(ks, errstr, sizeof(errstr));
    if (conf == NULL) {
        return fr_error_set(err, FR_EIO, NULL, "reading back topic %s: %s", ks->topic, errstr);
    }
    if (rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return fr_error_set(err, FR_EIO, NULL, "reading back topic %s: %s", ks->topic, errstr);
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return fr_error_set(err, FR_EIO, NULL, "reading back topic %s: %s", ks->topic, errstr);
    }
    int rv = 0;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, ks->topic, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    const struct rd_kafka_metadata *md = NULL;
    readback_part *parts = NULL;
    int nparts = 0;
    char *stream = malloc(READBACK_MAX_STREAM);
    int64_t t0 = fr_mono_ms();
    uint64_t msgs0 = ks->n.readback_msgs, found0 = ks->n.readback_found;
    if (rkt == NULL || q == NULL || stream == NULL) {
        rv = fr_error_set(err, FR_ENOMEM, NULL, "reading back topic %s: out of memory", ks->topic);
        goto out;
    }
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, readback_left(deadline));
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rv = fr_error_set(err, readback_err(e), NULL, "reading back topic %s: metadata: %s (%s)",
                          ks->topic, rd_kafka_err2str(e), ks->last_error);
        goto out;
    }
    if (md->topic_cnt != 1 || md->topics[0].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        /* Nothing written yet. */
        goto out;
    }
    if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rv = fr_error_set(err, FR_EIO, NULL, "reading back topic %s: %s", ks->topic,
                          rd_kafka_err2str(md->topics[0].err));
        goto out;
    }
    nparts = md->topics[0].partition_cnt;
    parts = calloc(nparts > 0 ? (size_t)nparts : 1, sizeof(*parts));
    if (parts == NULL) {
        rv = fr_error_set(err, FR_ENOMEM, NULL, "reading back topic %s: out of memory", ks->topic);
        goto out;
    }
    int pending = 0;
    for (int i = 0; i < nparts; i++) {
        int32_t p = md->topics[0].partitions[i].id;
        int64_t lo = 0, hi = 0;
        if (p < 0 || p >= nparts) {
            rv = fr_error_set(err, FR_EIO, NULL, "reading back topic %s: partition id %" PRId32,
                              ks->topic, p);
            goto out;
        }
        e = rd_kafka_query_watermark_offsets(rk, ks->topic, p, &lo, &hi, readback_left(deadline));
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rv = fr_error_set(err, readback_err(e), NULL,
                              "reading back topic %s: partition %" PRId32 " watermarks: %s",
                              ks->topic, p, rd_kafka_err2str(e));
            goto out;
        }
        int64_t from = hi - ks->cfg->dedup_lookback;
        if (from < lo) {
            from = lo;
        }
        parts[p].end = hi;
        if (from >= hi) {
            parts[p].done = true;
            continue;
        }
        if (rd_kafka_consume_start_queue(rkt, p, from, q) != 0) {
            rv = fr_error_set(err, FR_EIO, NULL, "reading back topic %s: partition %" PRId32 ": %s",
                              ks->topic, p, rd_kafka_err2str(rd_kafka_last_error()));
            goto out;
        }
        parts[p].started = true;
        pending++;
    }
    while (pending > 0) {
        int left = readback_left(deadline);
        if (left == 0) {
            rv = fr_error_set(err, FR_ETIMEDOUT, NULL,
                              "reading back topic %s: %d partition(s) not read to their end in "
                              "time (%s)",
                              ks->topic, pending, ks->last_error);
            goto out;
        }
        rd_kafka_message_t *m =
            rd_kafka_consume_queue(q, left < READBACK_POLL_MS ? left : READBACK_POLL_MS);
        if (m == NULL) {
            continue;
        }
        int32_t p = m->partition;
        bool ours = p >= 0 && p < nparts && parts[p].started && !parts[p].done;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            ks->n.readback_msgs++;
            readback_record(ks, m, stream);
        } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            snprintf(ks->last_error, sizeof(ks->last_error), "%s", rd_kafka_message_errstr(m));
        }
        if (ours && (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF ||
                     m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE ||
                     (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->offset + 1 >= parts[p].end))) {
            parts[p].done = true;
            pending--;
        }
        rd_kafka_message_destroy(m);
    }
    ks->n.readbacks++;
    fr_info(KAFKA_MODULE,
            "%s: read back %" PRIu64 " messages of topic %s in %" PRId64 " ms: %" PRIu64
            " of this sink's not yet known",
            ks->info->id, ks->n.readback_msgs - msgs0, ks->topic, fr_mono_ms() - t0,
            ks->n.readback_found - found0);
out:
    for (int i = 0; parts != NULL && i < nparts; i++) {
        if (parts[i].started) {
            rd_kafka_consume_stop(rkt, i);
        }
    }
    free(parts);
    free(stream);
    if (md != NULL) {
        rd_kafka_metadata_destroy(md);
    }
    if (q != NULL) {
        rd_kafka_queue_destroy(q);
    }
    if (rkt != NULL) {
        rd_kafka_topic_destroy(rkt);
    }
    rd_kafka_destroy(rk);
    if (rv == 0 && md != NULL && nparts == 0) {
        ks->n.readbacks++;
    }
    return rv;
}
