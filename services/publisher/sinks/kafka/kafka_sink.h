/* The Kafka sink's insides, shared by its files: kafka.c (config, the
 * producer, write), kafka_readback.c (reading the tail of the topic back
 * after a start or an unclear failure), kafka_ledger.c (what is stored),
 * kafka_value.c (msgpack message values; JSON ones are snapjson.h's). */
#ifndef KAFKA_SINK_H
#define KAFKA_SINK_H

#include <stdbool.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "fresco/buf.h"
#include "fresco/config.h"
#include "fresco/pipeline.h"
#include "kafka/kafka_ledger.h"
#include "snapjson.h"

#define KAFKA_MODULE "publisher/kafka"

/* Headers on every message. */
#define KAFKA_H_STREAM "fresco-stream" /* fr_batch_stream of the batch */
#define KAFKA_H_SEQ    "fresco-seq"    /* the batch's seq, decimal */
#define KAFKA_H_SINK   "fresco-sink"   /* fr_sink_info.id */
#define KAFKA_H_INDEX  "fresco-index"  /* the metric's index in the batch, decimal */
#define KAFKA_H_COUNT  "fresco-count"  /* metrics in the batch, decimal */

typedef struct kafka_prop {
    char *name;
    char *value;
} kafka_prop;

typedef struct kafka_config {
    fr_strlist brokers;
    char *topic;
    char *key;
    char *format;
    int64_t timeout_ms;
    char *compression;
    int64_t dedup_lookback;
    int64_t dedup_batches;
    kafka_prop *props; /* the rdkafka map, in the order written */
    size_t nprops;
} kafka_config;

typedef enum kafka_key_mode {
    KAFKA_KEY_NAMESPACE,
    KAFKA_KEY_TASK,
    KAFKA_KEY_NONE,
} kafka_key_mode;

typedef struct kafka_counters {
    uint64_t batches;         /* batches written and stored */
    uint64_t batches_skipped; /* batches given again once stored: not sent */
    uint64_t produced;        /* messages handed to librdkafka */
    uint64_t delivered;       /* delivery reports that said stored */
    uint64_t failed;          /* delivery reports that said not stored */
    uint64_t unknown;         /* failed after maybe reaching the broker */
    uint64_t queue_full;      /* produce calls retried on a full queue */
    uint64_t too_big;         /* messages refused as too large */
    uint64_t readbacks;       /* reads of the topic's tail done */
    uint64_t readback_msgs;   /* messages read back */
    uint64_t readback_found;  /* of them, this sink's not yet recorded */
    uint64_t readback_bad;    /* of them, this sink's with bad headers */
    uint64_t producer_resets; /* producers replaced after a fatal error */
} kafka_counters;

typedef struct kafka_sink {
    const kafka_config *cfg;
    const fr_sink_info *info;
    char *brokers; /* the list joined with ',' */
    char *topic;   /* the template expanded */
    kafka_key_mode key_mode;
    bool msgpack;
    snapjson *json; /* the JSON writer, unless msgpack */
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    int64_t max_msg_bytes; /* the producer's message.max.bytes */
    bool fatal;            /* the producer reported a fatal error */
    kafka_ledger *ledger;
    bool need_readback;
    uint64_t write_gen;
    char last_error[256]; /* librdkafka's last error report */
    /* reused by write */
    fr_buf values;
    uint32_t *offsets; /* value i is values.data[offsets[i], offsets[i + 1]) */
    size_t offsets_cap;
    uint32_t *slots;   /* this write's records, one per batch */
    uint64_t *serials; /* and their serials, to tell a slot reused */
    size_t slots_cap;
    char *stream;
    size_t stream_cap;
    kafka_counters n;
} kafka_sink;

/* A librdkafka config with the brokers, the rdkafka map, logging into
 * fresco's log and ks as opaque; NULL with errstr filled. */
rd_kafka_conf_t *kafka_conf_new(kafka_sink *ks, char *errstr, size_t cap);

/* Reads the last dedup_lookback messages of every partition of the topic
 * and records in the ledger those this sink wrote (fresco-sink = its id),
 * before deadline_ms (fr_mono_ms). Messages whose fate was unknown
 * (KL_UNKNOWN) become unsent first, then delivered if found. Returns 0, or
 * FR_ETIMEDOUT / FR_EIO with err filled (retry later: nothing may be sent
 * before a read back succeeds). */
int kafka_readback(kafka_sink *ks, int64_t deadline_ms, fr_error *err);

#endif
