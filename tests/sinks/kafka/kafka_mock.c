/* kafka_mock: librdkafka's mock cluster (rdkafka_mock.h), a real
 * Kafka-protocol broker, in a process of its own, for tests that need a
 * Kafka cluster they can take down and bring back.
 *
 *   kafka_mock --brokers N --partitions P --out FILE [--topic NAME]... [--slow MS]
 *
 *   --brokers N     brokers in the cluster (default 1); ids 1..N
 *   --partitions P  partitions of each --topic (default 4)
 *   --topic NAME    a topic created at start with P partitions (repeatable);
 *                   any other topic is created on first use with the mock's
 *                   own default of 4 partitions
 *   --slow MS       how late a produce answer comes after SIGHUP (default 3000)
 *   --out FILE      where the bootstrap list ("127.0.0.1:36411,...") is
 *                   written, once the cluster listens: FILE is removed
 *                   first, the list written to FILE.tmp and renamed, so a
 *                   reader that sees FILE sees all of it. Ports are random
 *                   on every start: read them from FILE.
 *
 * Signals:
 *   SIGTERM, SIGINT  stop (exit 0)
 *   SIGUSR1          every broker goes down: connections closed, new ones
 *                    refused (rd_kafka_mock_broker_set_down); the data is kept
 *   SIGUSR2          every broker comes up again on the same port
 *   SIGHUP           every broker answers its next produce request late,
 *                    after --slow MS (default 3000), having stored it at
 *                    once: a producer whose request or message times out
 *                    meanwhile cannot tell whether its messages are stored
 * Each signal is confirmed by a line on stderr once done ("kafka_mock: 1
 * broker(s) down", "... up", "... answer the next produce after 3000 ms"):
 * a test waits for that line rather than for time.
 *
 * Mind the mock's limits: each partition keeps about 5 MiB, older
 * messages are dropped silently; keep test volumes well below. Consumers
 * in a group should set session.timeout.ms=6000 and
 * max.poll.interval.ms=7000, or a rejoin stalls for about a minute.
 * Diagnostics go to stderr. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MOCK_MAX_TOPICS 64

static void mock_usage(void)
{
    fprintf(stderr, "usage: kafka_mock --brokers N --partitions P --out FILE [--topic NAME]... "
                    "[--slow MS]\n");
}

static int mock_parse_count(const char *s, int max, int *out)
{
    char *end = NULL;
    errno = 0;
    long v = s != NULL ? strtol(s, &end, 10) : 0;
    if (s == NULL || errno != 0 || end == s || *end != '\0' || v < 1 || v > max) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int mock_write_out(const char *path, const char *text)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        return -1;
    }
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        return -1;
    }
    int bad = fprintf(f, "%s\n", text) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void mock_slow_produce(rd_kafka_mock_cluster_t *mc, int brokers, int ms)
{
    const int16_t produce = 0; /* the Produce request's ApiKey */
    for (int id = 1; id <= brokers; id++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_broker_push_request_error_rtts(
            mc, id, produce, 1, RD_KAFKA_RESP_ERR_NO_ERROR, ms);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "kafka_mock: broker %d slow: %s\n", id, rd_kafka_err2str(e));
        }
    }
    fprintf(stderr, "kafka_mock: %d broker(s) answer the next produce after %d ms\n", brokers, ms);
}

static void mock_set_all(rd_kafka_mock_cluster_t *mc, int brokers, int up)
{
    for (int id = 1; id <= brokers; id++) {
        rd_kafka_resp_err_t e =
            up ? rd_kafka_mock_broker_set_up(mc, id) : rd_kafka_mock_broker_set_down(mc, id);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "kafka_mock: broker %d %s: %s\n", id, up ? "up" : "down",
                    rd_kafka_err2str(e));
        }
    }
    fprintf(stderr, "kafka_mock: %d broker(s) %s\n", brokers, up ? "up" : "down");
}

int main(int argc, char **argv)
{
    int brokers = 1, partitions = 4, ntopics = 0, slow_ms = 3000;
    const char *out = NULL;
    const char *topics[MOCK_MAX_TOPICS];
    for (int i = 1; i < argc; i += 2) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (strcmp(arg, "--brokers") == 0) {
            bad = mock_parse_count(val, 64, &brokers);
        } else if (strcmp(arg, "--partitions") == 0) {
            bad = mock_parse_count(val, 1024, &partitions);
        } else if (strcmp(arg, "--slow") == 0) {
            bad = mock_parse_count(val, 600000, &slow_ms);
        } else if (strcmp(arg, "--out") == 0) {
            out = val;
            bad = val == NULL;
        } else if (strcmp(arg, "--topic") == 0) {
            bad = val == NULL || ntopics == MOCK_MAX_TOPICS;
            if (!bad) {
                topics[ntopics++] = val;
            }
        } else {
            bad = 1;
        }
        if (bad) {
            mock_usage();
            return 2;
        }
    }
    if (out == NULL) {
        mock_usage();
        return 2;
    }
    if (unlink(out) != 0 && errno != ENOENT) {
        fprintf(stderr, "kafka_mock: cannot remove %s: %s\n", out, strerror(errno));
        return 1;
    }

    /* Blocked before librdkafka starts its threads, so they inherit the
     * mask and only sigwait below sees these signals. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* This instance only hosts the cluster: quiet its notice that it has
     * no bootstrap.servers of its own. */
    rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kafka_mock: %s\n", errstr);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (mc == NULL) {
        fprintf(stderr, "kafka_mock: cannot create a cluster of %d brokers\n", brokers);
        rd_kafka_destroy(rk);
        return 1;
    }
    int rc = 0;
    for (int t = 0; t < ntopics && rc == 0; t++) {
        int repl = brokers < 3 ? brokers : 3;
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, topics[t], partitions, repl);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "kafka_mock: topic %s: %s\n", topics[t], rd_kafka_err2str(e));
            rc = 1;
        }
    }
    const char *boot = rd_kafka_mock_cluster_bootstraps(mc);
    if (rc == 0 && mock_write_out(out, boot) != 0) {
        fprintf(stderr, "kafka_mock: cannot write %s: %s\n", out, strerror(errno));
        rc = 1;
    }
    if (rc == 0) {
        fprintf(stderr, "kafka_mock: %d broker(s) at %s\n", brokers, boot);
    }
    while (rc == 0) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) {
            continue;
        }
        if (sig == SIGUSR1 || sig == SIGUSR2) {
            mock_set_all(mc, brokers, sig == SIGUSR2);
        } else if (sig == SIGHUP) {
            mock_slow_produce(mc, brokers, slow_ms);
        } else {
            break;
        }
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return rc;
}
