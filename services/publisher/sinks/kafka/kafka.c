/* kafka: a sink that writes each metric as one Kafka message through
 * librdkafka's idempotent producer (docs/plugins/sink-kafka.md).
 *
 * A write produces the messages of its batches, then serves delivery
 * reports until every one is in or the timeout passes; only then are the
 * batches stored. The ledger (kafka_ledger.h) remembers, per batch, which
 * messages are stored or still in flight, so a batch given again (after a
 * failure, a resend or a restart) sends only what is not stored yet; after
 * a start, and after a failure that leaves a message's fate unknown, the
 * tail of the topic is read back (kafka_readback.c) to learn what got in. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/clock.h"
#include "fresco/log.h"
#include "kafka/kafka_sink.h"
#include "kafka/kafka_value.h"

#define KAFKA_VERSION 1
/* Produce calls retried on a full queue, each after a 100 ms poll. */
#define KAFKA_QUEUE_FULL_RETRIES 50
#define KAFKA_QUEUE_FULL_POLL_MS 100
#define KAFKA_POLL_MS            100
/* What destroy gives librdkafka to hand back purged messages. */
#define KAFKA_CLOSE_MS 2000

_Static_assert(UINTPTR_MAX >= UINT64_MAX, "a message's opaque packs slot and index in 64 bits");

static const char *const kafka_key_choices[] = {"namespace", "task", "none", NULL};
static const char *const kafka_format_choices[] = {"json", "msgpack", NULL};
static const char *const kafka_compression_choices[] = {"none", "gzip", "snappy",
                                                        "lz4",  "zstd", NULL};

static const fr_cfg_field kafka_policy[] = {
    {"brokers", FR_CFG_LIST, "localhost:9092", offsetof(kafka_config, brokers),
     "bootstrap brokers (host:port), a list or comma-separated", 0, 0, NULL},
    {"topic", FR_CFG_STRING, "fresco", offsetof(kafka_config, topic),
     "topic; {task} and {task_name} are replaced by the task's id and name", 0, 0, NULL},
    {"key", FR_CFG_ENUM, "namespace", offsetof(kafka_config, key),
     "message key: the metric's namespace, the task id, or none (spread at random)", 0, 0,
     kafka_key_choices},
    {"format", FR_CFG_ENUM, "json", offsetof(kafka_config, format),
     "message value: json or msgpack (a map with the same keys)", 0, 0, kafka_format_choices},
    {"timeout", FR_CFG_DURATION, "10s", offsetof(kafka_config, timeout_ms),
     "most time a write waits for its delivery reports before it asks to be retried", 10, 3600000,
     NULL},
    {"compression", FR_CFG_ENUM, "none", offsetof(kafka_config, compression),
     "compression of message sets: none, gzip, snappy, lz4, zstd", 0, 0, kafka_compression_choices},
    {"dedup_lookback", FR_CFG_INT, "20000", offsetof(kafka_config, dedup_lookback),
     "messages per partition read back from the end of the topic after a start, to find "
     "batches already stored (0: none)",
     0, 100000000, NULL},
    {"dedup_batches", FR_CFG_INT, "65536", offsetof(kafka_config, dedup_batches),
     "batches the sink remembers as stored (the oldest are forgotten past this)", 16, 16777216,
     NULL},
};

/* ---- config ---- */

/* librdkafka properties the sink sets itself, with why. */
static const char *kafka_reserved(const char *name, const char *value)
{
    if (strcmp(name, "bootstrap.servers") == 0 || strcmp(name, "metadata.broker.list") == 0) {
        return "set by the key 'brokers'";
    }
    if (strcmp(name, "compression.codec") == 0 || strcmp(name, "compression.type") == 0) {
        return "set by the key 'compression'";
    }
    if (strcmp(name, "enable.idempotence") == 0) {
        bool on = false;
        if (fr_parse_bool(value, &on) != 0 || !on) {
            return "always true: the sink relies on the idempotent producer";
        }
    }
    if (strcmp(name, "transactional.id") == 0) {
        return "the sink does not use transactions";
    }
    return NULL;
}

static void kafka_config_free(void *config)
{
    kafka_config *c = config;
    for (size_t i = 0; i < c->nprops; i++) {
        free(c->props[i].name);
        free(c->props[i].value);
    }
    free(c->props);
    c->props = NULL;
    c->nprops = 0;
}

/* rdkafka: {linger.ms: 5, ...}: each property checked by librdkafka
 * itself (name and value), kept for the producer. */
static int kafka_config_map(void *config, const char *key, const fr_mf_map *value, fr_error *err)
{
    kafka_config *c = config;
    if (strcmp(key, "rdkafka") != 0) {
        return FR_EUNKNOWN;
    }
    kafka_config_free(c);
    if (value->n == 0) {
        return 0;
    }
    c->props = calloc(value->n, sizeof(*c->props));
    if (c->props == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    rd_kafka_conf_t *scratch = rd_kafka_conf_new();
    if (scratch == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    int rv = 0;
    for (size_t i = 0; rv == 0 && i < value->n; i++) {
        const fr_mf_entry *e = &value->v[i];
        if (e->value.type == FR_MF_MAP) {
            rv = fr_error_set(err, FR_ECONFIG, NULL, "property '%s': takes a single value", e->key);
            break;
        }
        const char *why = kafka_reserved(e->key, e->value.text);
        if (why != NULL) {
            rv = fr_error_set(err, FR_ECONFIG, NULL, "property '%s': %s", e->key, why);
            break;
        }
        char errstr[256];
        if (rd_kafka_conf_set(scratch, e->key, e->value.text, errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            rv = fr_error_set(err, FR_ECONFIG, NULL, "property '%s': %s", e->key, errstr);
            break;
        }
        c->props[i].name = strdup(e->key);
        c->props[i].value = strdup(e->value.text);
        c->nprops = i + 1;
        if (c->props[i].name == NULL || c->props[i].value == NULL) {
            rv = fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
        }
    }
    rd_kafka_conf_destroy(scratch);
    return rv;
}

/* ---- librdkafka's callbacks ---- */

static void kafka_on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    const kafka_sink *ks = rd_kafka_opaque(rk);
    const char *id = ks != NULL ? ks->info->id : "?";
    fr_log_level lv = level <= 4 ? FR_LOG_WARN : level <= 6 ? FR_LOG_INFO : FR_LOG_DEBUG;
    /* The read-back consumer shares the producer's properties and warns
     * about each producer-only one. */
    if (rd_kafka_type(rk) == RD_KAFKA_CONSUMER && strcmp(fac, "CONFWARN") == 0) {
        lv = FR_LOG_DEBUG;
    }
    fr_log(lv, KAFKA_MODULE, "%s: %s %s: %s", id, rd_kafka_name(rk), fac, buf);
}

/* Called on the write thread, inside rd_kafka_poll. */
static void kafka_on_error(rd_kafka_t *rk, int e, const char *reason, void *opaque)
{
    kafka_sink *ks = opaque;
    snprintf(ks->last_error, sizeof(ks->last_error), "%s", reason);
    if (e == RD_KAFKA_RESP_ERR__FATAL && rd_kafka_type(rk) == RD_KAFKA_PRODUCER) {
        ks->fatal = true;
    }
    fr_debug(KAFKA_MODULE, "%s: %s: %s", ks->info->id, rd_kafka_err2name(e), reason);
}

static void *kafka_opaque(uint32_t slot, uint32_t idx)
{
    return (void *)(uintptr_t)(((uint64_t)slot << 32) | idx);
}

/* Called on the write thread, inside rd_kafka_poll. */
static void kafka_on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    kafka_sink *ks = opaque;
    (void)rk;
    uint64_t tok = (uint64_t)(uintptr_t)m->_private;
    uint32_t slot = (uint32_t)(tok >> 32), idx = (uint32_t)tok;
    kafka_rec *r = kafka_ledger_at(ks->ledger, slot);
    if (r == NULL || idx >= r->nmsgs || kafka_rec_state(r, idx) != KL_INFLIGHT) {
        return;
    }
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ks->n.delivered++;
        kafka_ledger_mark(ks->ledger, slot, idx, KL_DELIVERED);
        return;
    }
    ks->n.failed++;
    r->last_err = m->err;
    snprintf(ks->last_error, sizeof(ks->last_error), "%s", rd_kafka_err2str(m->err));
    uint8_t state = KL_UNSENT;
    if (m->err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
        m->err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE) {
        r->too_big = true;
        ks->n.too_big++;
    } else if (rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_PERSISTED) {
        state = KL_DELIVERED;
    } else if (rd_kafka_message_status(m) == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED) {
        ks->n.unknown++;
        /* Settled by reading the topic back; with no read back, sent again
         * (at least once). */
        if (ks->cfg->dedup_lookback > 0) {
            state = KL_UNKNOWN;
            ks->need_readback = true;
        }
    }
    kafka_ledger_mark(ks->ledger, slot, idx, state);
}

/* ---- the producer ---- */

rd_kafka_conf_t *kafka_conf_new(kafka_sink *ks, char *errstr, size_t cap)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf == NULL) {
        snprintf(errstr, cap, "out of memory");
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, ks);
    rd_kafka_conf_set_log_cb(conf, kafka_on_log);
    rd_kafka_conf_set_error_cb(conf, kafka_on_error);
    if (rd_kafka_conf_set(conf, "bootstrap.servers", ks->brokers, errstr, cap) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "client.id", "fresco-publisher", errstr, cap) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    for (size_t i = 0; i < ks->cfg->nprops; i++) {
        const kafka_prop *p = &ks->cfg->props[i];
        char why[200];
        if (rd_kafka_conf_set(conf, p->name, p->value, why, sizeof(why)) != RD_KAFKA_CONF_OK) {
            snprintf(errstr, cap, "property '%s': %s", p->name, why);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

/* Serves the reports of what librdkafka still holds (after a purge they
 * come back at once), then drops the producer. */
static void kafka_producer_close(kafka_sink *ks)
{
    if (ks->rk == NULL) {
        return;
    }
    rd_kafka_purge(ks->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(ks->rk, KAFKA_CLOSE_MS);
    if (ks->rkt != NULL) {
        rd_kafka_topic_destroy(ks->rkt);
        ks->rkt = NULL;
    }
    rd_kafka_destroy(ks->rk);
    ks->rk = NULL;
    /* A message purged in flight may have reached the broker. */
    bool lookback = ks->cfg->dedup_lookback > 0;
    if (kafka_ledger_move(ks->ledger, KL_INFLIGHT, lookback ? KL_UNKNOWN : KL_UNSENT) > 0) {
        ks->need_readback = lookback;
    }
}

static int kafka_producer_open(kafka_sink *ks, fr_error *err)
{
    char errstr[512];
    rd_kafka_conf_t *conf = kafka_conf_new(ks, errstr, sizeof(errstr));
    if (conf == NULL) {
        return fr_error_set(err, FR_ECONFIG, "rdkafka", "%s", errstr);
    }
    rd_kafka_conf_set_dr_msg_cb(conf, kafka_on_delivery);
    /* Properties given in rdkafka were set last; these are the sink's own
     * (the config map refuses them). */
    if (rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "compression.codec", ks->cfg->compression, errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return fr_error_set(err, FR_ECONFIG, "compression", "%s", errstr);
    }
    char max[32];
    size_t maxlen = sizeof(max);
    ks->max_msg_bytes = 1000000;
    if (rd_kafka_conf_get(conf, "message.max.bytes", max, &maxlen) == RD_KAFKA_CONF_OK) {
        ks->max_msg_bytes = strtoll(max, NULL, 10);
    }
    ks->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (ks->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return fr_error_set(err, FR_ECONFIG, "rdkafka", "librdkafka refuses the producer: %s",
                            errstr);
    }
    ks->rkt = rd_kafka_topic_new(ks->rk, ks->topic, NULL);
    if (ks->rkt == NULL) {
        int rv = fr_error_set(err, FR_ECONFIG, "topic", "topic '%s': %s", ks->topic,
                              rd_kafka_err2str(rd_kafka_last_error()));
        kafka_producer_close(ks);
        return rv;
    }
    ks->fatal = false;
    return 0;
}

/* ---- init and destroy ---- */

static bool kafka_topic_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* Expands {task} and {task_name} in the topic template. */
static int kafka_topic_expand(kafka_sink *ks, fr_error *err)
{
    const char *t = ks->cfg->topic != NULL ? ks->cfg->topic : "";
    fr_buf out = FR_BUF_INIT;
    int rv = 0;
    while (rv == 0 && *t != '\0') {
        if (*t == '{') {
            const char *end = strchr(t, '}');
            size_t n = end != NULL ? (size_t)(end - t + 1) : strlen(t);
            const char *with = NULL;
            if (n == 6 && memcmp(t, "{task}", 6) == 0) {
                with = ks->info->task;
            } else if (n == 11 && memcmp(t, "{task_name}", 11) == 0) {
                with = ks->info->task_name;
            } else {
                rv = fr_error_set(err, FR_ECONFIG, "topic",
                                  "unknown placeholder '%.*s' in '%s' (known: {task}, "
                                  "{task_name})",
                                  (int)(n > 40 ? 40 : n), t, ks->cfg->topic);
                break;
            }
            rv = fr_buf_append(&out, with != NULL ? with : "", with != NULL ? strlen(with) : 0);
            t += n;
        } else {
            rv = fr_buf_append(&out, t, 1);
            t++;
        }
    }
    if (rv == 0) {
        rv = fr_buf_append(&out, "", 1);
    }
    if (rv == FR_ENOMEM) {
        fr_error_set(err, rv, "topic", "out of memory");
    }
    if (rv != 0) {
        fr_buf_free(&out);
        return rv;
    }
    const char *name = (const char *)out.data;
    size_t len = out.len - 1;
    bool ok = len > 0 && len <= 249 && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
    for (size_t i = 0; ok && i < len; i++) {
        ok = kafka_topic_char(name[i]);
    }
    if (!ok) {
        rv = fr_error_set(err, FR_ECONFIG, "topic",
                          "'%s' is not a Kafka topic name (1 to 249 letters, digits, '.', "
                          "'_', '-')",
                          name);
        fr_buf_free(&out);
        return rv;
    }
    ks->topic = (char *)out.data;
    return 0;
}

static int kafka_brokers_join(kafka_sink *ks, fr_error *err)
{
    const fr_strlist *l = &ks->cfg->brokers;
    fr_buf out = FR_BUF_INIT;
    int rv = 0;
    for (size_t i = 0; rv == 0 && i < l->n; i++) {
        if (l->v[i][0] == '\0') {
            continue;
        }
        if (out.len > 0) {
            rv = fr_buf_append(&out, ",", 1);
        }
        if (rv == 0) {
            rv = fr_buf_append(&out, l->v[i], strlen(l->v[i]));
        }
    }
    if (rv == 0 && out.len == 0) {
        return fr_error_set(err, FR_ECONFIG, "brokers", "no broker given");
    }
    if (rv == 0) {
        rv = fr_buf_append(&out, "", 1);
    }
    if (rv != 0) {
        fr_buf_free(&out);
        return fr_error_set(err, rv, "brokers", "out of memory");
    }
    ks->brokers = (char *)out.data;
    return 0;
}

static void kafka_destroy(void *state)
{
    kafka_sink *ks = state;
    if (ks == NULL) {
        return;
    }
    if (ks->ledger != NULL) {
        kafka_producer_close(ks);
    }
    kafka_ledger_destroy(ks->ledger);
    snapjson_destroy(ks->json);
    fr_buf_free(&ks->values);
    free(ks->offsets);
    free(ks->slots);
    free(ks->serials);
    free(ks->stream);
    free(ks->brokers);
    free(ks->topic);
    free(ks);
}

static int kafka_init(void **state, const void *config, const fr_sink_info *info, fr_error *err)
{
    *state = NULL;
    kafka_sink *ks = calloc(1, sizeof(*ks));
    if (ks == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    ks->cfg = config;
    ks->info = info;
    ks->key_mode = strcmp(ks->cfg->key, "task") == 0   ? KAFKA_KEY_TASK
                   : strcmp(ks->cfg->key, "none") == 0 ? KAFKA_KEY_NONE
                                                       : KAFKA_KEY_NAMESPACE;
    ks->msgpack = strcmp(ks->cfg->format, "msgpack") == 0;
    ks->need_readback = ks->cfg->dedup_lookback > 0;
    int rv = kafka_brokers_join(ks, err);
    if (rv == 0) {
        rv = kafka_topic_expand(ks, err);
    }
    if (rv == 0 && (ks->ledger = kafka_ledger_new((uint32_t)ks->cfg->dedup_batches)) == NULL) {
        rv = fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    if (rv == 0 && !ks->msgpack && (ks->json = snapjson_new()) == NULL) {
        rv = fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    /* librdkafka connects in the background: this does not wait. */
    if (rv == 0) {
        rv = kafka_producer_open(ks, err);
    }
    if (rv != 0) {
        kafka_destroy(ks);
        return rv;
    }
    fr_info(KAFKA_MODULE, "%s: topic %s at %s, %s values keyed by %s", info->id, ks->topic,
            ks->brokers, ks->cfg->format, ks->cfg->key);
    *state = ks;
    return 0;
}

/* ---- write ---- */

static int kafka_grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) {
        return 0;
    }
    size_t n = *cap ? *cap : 16;
    while (n < need) {
        n *= 2;
    }
    void *q = realloc(*p, n * size);
    if (q == NULL) {
        return FR_ENOMEM;
    }
    *p = q;
    *cap = n;
    return 0;
}

static size_t kafka_len(const char *s, uint32_t known)
{
    return known != 0 ? known : strlen(s);
}

/* Produces message idx of batch b (record slot), its value at
 * [value, value + len). A full queue is polled and retried. */
static int kafka_produce(kafka_sink *ks, const fr_batch *b, uint32_t slot, uint32_t idx,
                         const void *value, size_t len, int64_t deadline, fr_error *err)
{
    const fr_metric *m = &b->metrics[idx];
    const char *key = NULL;
    size_t klen = 0;
    if (ks->key_mode == KAFKA_KEY_NAMESPACE) {
        key = m->ns;
        klen = kafka_len(m->ns, m->ns_len);
    } else if (ks->key_mode == KAFKA_KEY_TASK) {
        key = b->task[0] != '\0' ? b->task : ks->info->task;
        klen = strlen(key);
    }
    char seq[24], index[12], count[12];
    int seqlen = snprintf(seq, sizeof(seq), "%" PRIu64, b->seq);
    int idxlen = snprintf(index, sizeof(index), "%" PRIu32, idx);
    int cntlen = snprintf(count, sizeof(count), "%" PRIu32, b->nmetrics);
    size_t slen = strlen(ks->stream);
    for (int attempt = 0;; attempt++) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            ks->rk, RD_KAFKA_V_RKT(ks->rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_KEY(key, klen),
            RD_KAFKA_V_HEADER(KAFKA_H_STREAM, ks->stream, (ssize_t)slen),
            RD_KAFKA_V_HEADER(KAFKA_H_SEQ, seq, (ssize_t)seqlen),
            RD_KAFKA_V_HEADER(KAFKA_H_SINK, ks->info->id, (ssize_t)strlen(ks->info->id)),
            RD_KAFKA_V_HEADER(KAFKA_H_INDEX, index, (ssize_t)idxlen),
            RD_KAFKA_V_HEADER(KAFKA_H_COUNT, count, (ssize_t)cntlen),
            RD_KAFKA_V_OPAQUE(kafka_opaque(slot, idx)), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            ks->n.produced++;
            kafka_ledger_mark(ks->ledger, slot, idx, KL_INFLIGHT);
            return 0;
        }
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && attempt < KAFKA_QUEUE_FULL_RETRIES &&
            fr_mono_ms() < deadline) {
            ks->n.queue_full++;
            rd_kafka_poll(ks->rk, KAFKA_QUEUE_FULL_POLL_MS);
            continue;
        }
        if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            return fr_error_set(err, FR_EBUSY, NULL,
                                "topic %s: the producer's queue stayed full after %d polls "
                                "(%s)",
                                ks->topic, attempt, ks->last_error);
        }
        if (e == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) {
            ks->n.too_big++;
            return fr_error_set(err, FR_ETOOBIG, NULL,
                                "metric %" PRIu32 " of batch %" PRIu64 " (%s) is too large "
                                "for a message",
                                idx, b->seq, m->ns);
        }
        if (e == RD_KAFKA_RESP_ERR__FATAL) {
            ks->fatal = true;
        }
        return fr_error_set(err, FR_EIO, NULL, "topic %s: produce: %s", ks->topic,
                            rd_kafka_err2str(e));
    }
}

/* Produces the messages of b not stored or in flight yet. *slot_out is b's
 * record, or KL_NONE when there is nothing to wait for. */
static int kafka_batch_produce(kafka_sink *ks, const fr_batch *b, uint32_t *slot_out,
                               int64_t deadline, fr_error *err)
{
    *slot_out = KL_NONE;
    if (b->nmetrics == 0) {
        return 0;
    }
    size_t need = fr_batch_stream(b, ks->stream, ks->stream_cap);
    if (need >= ks->stream_cap) {
        if (kafka_grow((void **)&ks->stream, &ks->stream_cap, need + 1, 1) != 0) {
            return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
        }
        fr_batch_stream(b, ks->stream, ks->stream_cap);
    }
    uint32_t slot = kafka_ledger_find(ks->ledger, ks->stream, b->seq);
    kafka_rec *r = slot != KL_NONE ? kafka_ledger_at(ks->ledger, slot) : NULL;
    if (r != NULL && kafka_rec_complete(r)) {
        ks->n.batches_skipped++;
        return 0;
    }
    if (r != NULL && r->nmsgs != b->nmetrics) {
        if (r->ninflight > 0) {
            return fr_error_set(err, FR_EBUSY, NULL,
                                "batch %" PRIu64 " came back with %" PRIu32
                                " metrics while %" PRIu32 " messages of its first form "
                                "are in flight",
                                b->seq, b->nmetrics, r->ninflight);
        }
        fr_warn(KAFKA_MODULE,
                "%s: batch %" PRIu64 " came back with %" PRIu32 " metrics, not %" PRIu32
                ": written whole again",
                ks->info->id, b->seq, b->nmetrics, r->nmsgs);
        kafka_ledger_remove(ks->ledger, slot);
        slot = KL_NONE;
    }
    if (slot == KL_NONE) {
        int rv;
        /* When every remembered batch is in flight, wait for one to be
         * stored so it can be forgotten. */
        while ((slot = kafka_ledger_add(ks->ledger, ks->stream, b->seq, b->nmetrics, &rv)) ==
                   KL_NONE &&
               rv == FR_EBUSY && fr_mono_ms() < deadline) {
            rd_kafka_poll(ks->rk, 10);
        }
        if (slot == KL_NONE) {
            return fr_error_set(err, rv, NULL,
                                rv == FR_EBUSY ? "every remembered batch (dedup_batches) has "
                                                 "messages in flight"
                                               : "out of memory");
        }
    }
    r = kafka_ledger_at(ks->ledger, slot);
    r->gen = ks->write_gen;
    r->too_big = false;
    *slot_out = slot;

    /* Every value first, so a metric too large for a message fails the
     * batch before any of it is sent. */
    if (kafka_grow((void **)&ks->offsets, &ks->offsets_cap, (size_t)b->nmetrics + 1,
                   sizeof(*ks->offsets)) != 0) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    fr_buf_reset(&ks->values);
    if (!ks->msgpack && snapjson_batch(ks->json, b) != 0) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        ks->offsets[i] = (uint32_t)ks->values.len;
        if (kafka_rec_state(r, i) != KL_UNSENT) {
            continue;
        }
        const fr_metric *m = &b->metrics[i];
        int rv = ks->msgpack ? kafka_value_msgpack(b, m, &ks->values)
                             : snapjson_metric(ks->json, m, &ks->values);
        if (rv != 0) {
            return fr_error_set(
                err, rv, NULL, "batch %" PRIu64 ", metric %" PRIu32 " (%s): %s", b->seq, i, m->ns,
                rv == FR_EINVAL ? "timestamp out of RFC 3339's range" : "out of memory");
        }
        size_t vlen = ks->values.len - ks->offsets[i];
        size_t klen = ks->key_mode == KAFKA_KEY_NAMESPACE ? kafka_len(m->ns, m->ns_len) : 0;
        if (ks->values.len > UINT32_MAX || (int64_t)(vlen + klen) > ks->max_msg_bytes) {
            ks->n.too_big++;
            r->too_big = true;
            return fr_error_set(err, FR_ETOOBIG, NULL,
                                "batch %" PRIu64 ", metric %" PRIu32 " (%s): %zu bytes as a "
                                "message, over message.max.bytes (%" PRId64 ")",
                                b->seq, i, m->ns, vlen + klen, ks->max_msg_bytes);
        }
    }
    ks->offsets[b->nmetrics] = (uint32_t)ks->values.len;
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        if (kafka_rec_state(kafka_ledger_at(ks->ledger, slot), i) != KL_UNSENT) {
            continue;
        }
        int rv = kafka_produce(ks, b, slot, i, ks->values.data + ks->offsets[i],
                               ks->offsets[i + 1] - ks->offsets[i], deadline, err);
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* The record of this write's batch i, or NULL when there is nothing to
 * wait for (nothing to send, or complete and forgotten since). */
static kafka_rec *kafka_write_rec(kafka_sink *ks, size_t i)
{
    kafka_rec *r = ks->slots[i] != KL_NONE ? kafka_ledger_at(ks->ledger, ks->slots[i]) : NULL;
    return r != NULL && r->serial == ks->serials[i] ? r : NULL;
}

/* True while a message of this write's records awaits its report. */
static bool kafka_write_waiting(kafka_sink *ks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        kafka_rec *r = kafka_write_rec(ks, i);
        if (r != NULL && r->ninflight > 0) {
            return true;
        }
    }
    return false;
}

/* What became of this write: 0 when every record is complete. */
static int kafka_write_verdict(kafka_sink *ks, fr_batch *const *batches, size_t n, fr_error *err)
{
    size_t waiting = 0, unsent = 0, unknown = 0;
    const fr_batch *big = NULL;
    int last = 0;
    for (size_t i = 0; i < n; i++) {
        kafka_rec *r = kafka_write_rec(ks, i);
        if (r == NULL || kafka_rec_complete(r)) {
            continue;
        }
        waiting += r->ninflight;
        unknown += r->nunknown;
        unsent += r->nmsgs - r->ndelivered - r->ninflight - r->nunknown;
        if (r->too_big && big == NULL) {
            big = batches[i];
        }
        if (r->last_err != 0) {
            last = r->last_err;
        }
    }
    if (big != NULL) {
        return fr_error_set(err, FR_ETOOBIG, NULL,
                            "topic %s: a message of batch %" PRIu64 " is too large for the "
                            "broker (%s)",
                            ks->topic, big->seq, rd_kafka_err2str(last));
    }
    if (waiting > 0) {
        return fr_error_set(err, FR_ETIMEDOUT, NULL,
                            "topic %s: %zu messages await their delivery reports after %" PRId64
                            "ms (%s)",
                            ks->topic, waiting, ks->cfg->timeout_ms,
                            ks->last_error[0] ? ks->last_error : "no error reported");
    }
    if (unsent + unknown > 0) {
        return fr_error_set(err, FR_EIO, NULL, "topic %s: %zu messages not delivered%s: %s",
                            ks->topic, unsent + unknown,
                            unknown > 0 ? " (some may be stored: the topic is read back)" : "",
                            last != 0 ? rd_kafka_err2str(last) : ks->last_error);
    }
    return 0;
}

static int kafka_write(void *state, fr_batch *const *batches, size_t n, fr_error *err)
{
    kafka_sink *ks = state;
    int64_t deadline = fr_mono_ms() + ks->cfg->timeout_ms;
    fr_error_clear(err);
    if (ks->rk != NULL) {
        rd_kafka_poll(ks->rk, 0);
    }
    if (ks->rk == NULL || ks->fatal) {
        if (ks->rk != NULL) {
            char why[256];
            rd_kafka_fatal_error(ks->rk, why, sizeof(why));
            fr_error(KAFKA_MODULE, "%s: the producer failed for good (%s): starting another",
                     ks->info->id, why);
            kafka_producer_close(ks);
            ks->n.producer_resets++;
        }
        int rv = kafka_producer_open(ks, err);
        if (rv != 0) {
            return rv == FR_ECONFIG ? FR_EIO : rv;
        }
    }
    if (ks->need_readback) {
        int rv = kafka_readback(ks, deadline, err);
        if (rv != 0) {
            return rv;
        }
        ks->need_readback = false;
    }
    size_t cap = ks->slots_cap;
    if (kafka_grow((void **)&ks->slots, &cap, n ? n : 1, sizeof(*ks->slots)) != 0 ||
        kafka_grow((void **)&ks->serials, &ks->slots_cap, n ? n : 1, sizeof(*ks->serials)) != 0) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    kafka_ledger_pin(ks->ledger, ++ks->write_gen);
    int prv = 0;
    size_t done = 0;
    for (; done < n && prv == 0; done++) {
        prv = kafka_batch_produce(ks, batches[done], &ks->slots[done], deadline, err);
        kafka_rec *r = kafka_ledger_at(ks->ledger, ks->slots[done]);
        ks->serials[done] = r != NULL ? r->serial : 0;
    }
    for (size_t i = done; i < n; i++) {
        ks->slots[i] = KL_NONE;
    }
    int64_t left;
    while (kafka_write_waiting(ks, done) && (left = deadline - fr_mono_ms()) > 0) {
        rd_kafka_poll(ks->rk, (int)(left < KAFKA_POLL_MS ? left : KAFKA_POLL_MS));
    }
    kafka_ledger_pin(ks->ledger, 0);
    if (prv != 0) {
        return prv;
    }
    int rv = kafka_write_verdict(ks, batches, done, err);
    if (rv == 0) {
        ks->n.batches += n;
    }
    return rv;
}

static void kafka_pack_u64(msgpack_packer *pk, const char *key, uint64_t v)
{
    msgpack_pack_str(pk, strlen(key));
    msgpack_pack_str_body(pk, key, strlen(key));
    msgpack_pack_uint64(pk, v);
}

static void kafka_stats(void *state, msgpack_packer *pk)
{
    kafka_sink *ks = state;
    const kafka_counters *c = &ks->n;
    msgpack_pack_map(pk, 17);
    kafka_pack_u64(pk, "batches", c->batches);
    kafka_pack_u64(pk, "batches_skipped", c->batches_skipped);
    kafka_pack_u64(pk, "produced", c->produced);
    kafka_pack_u64(pk, "delivered", c->delivered);
    kafka_pack_u64(pk, "failed", c->failed);
    kafka_pack_u64(pk, "unknown", c->unknown);
    kafka_pack_u64(pk, "queue_full", c->queue_full);
    kafka_pack_u64(pk, "too_big", c->too_big);
    kafka_pack_u64(pk, "readbacks", c->readbacks);
    kafka_pack_u64(pk, "readback_msgs", c->readback_msgs);
    kafka_pack_u64(pk, "readback_found", c->readback_found);
    kafka_pack_u64(pk, "readback_bad", c->readback_bad);
    kafka_pack_u64(pk, "producer_resets", c->producer_resets);
    kafka_pack_u64(pk, "remembered", kafka_ledger_count(ks->ledger));
    kafka_pack_u64(pk, "forgotten", kafka_ledger_evicted(ks->ledger));
    kafka_pack_u64(pk, "queued", ks->rk != NULL ? (uint64_t)rd_kafka_outq_len(ks->rk) : 0);
    kafka_pack_u64(pk, "dedup_window", (uint64_t)ks->cfg->dedup_batches);
}

const fr_sink_plugin fr_sink_kafka = {
    .abi = FR_SINK_ABI,
    .name = "kafka",
    .version = KAFKA_VERSION,
    .description = "each metric as one Kafka message (JSON or msgpack), through librdkafka's "
                   "idempotent producer",
    .config =
        {
            .fields = kafka_policy,
            .nfields = sizeof(kafka_policy) / sizeof(kafka_policy[0]),
            .config_size = sizeof(kafka_config),
            .config_map = kafka_config_map,
            .config_free = kafka_config_free,
        },
    .init = kafka_init,
    .write = kafka_write,
    .destroy = kafka_destroy,
    .stats = kafka_stats,
};
