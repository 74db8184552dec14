/* The service main loop: config, logging, signals, control server with the
 * built-in ops, event socket, start/stop of the service's own parts. */
#include "fresco/service.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fresco/event.h"
#include "fresco/log.h"

#define SVC_MAX_COUNTERS  256
#define SVC_MAX_ADDRESSES 8

const char *const fr_log_formats[] = {"plain", "json", NULL};
const char *const fr_log_levels[] = {"debug", "info", "warn", "warning", "error", "off", NULL};

typedef struct svc_counter {
    char name[64];
    _Atomic uint64_t value;
} svc_counter;

struct fr_service {
    const fr_service_def *def;
    void *conf;
    fr_service_conf *sc;
    fr_tls_conf tls;
    char node[256];
    int64_t started_mono_ns;
    fr_ctl_server *ctl;
    fr_ctl_op *pending; /* ops added before the control socket opened */
    size_t npending;
    fr_event_pub *events;
    pthread_mutex_t lock;
    svc_counter counters[SVC_MAX_COUNTERS];
    _Atomic size_t ncounters;
    struct {
        char *name;
        char *url;
    } addresses[SVC_MAX_ADDRESSES];
    size_t naddresses;
};

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* ---- built-in ops ---- */

static int op_ping(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    pack_cstr(fr_ctl_reply_packer(r), "pong");
    return 0;
}

static int op_status(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    fr_service *svc = ctx;
    msgpack_packer *pk = fr_ctl_reply_packer(r);
    msgpack_pack_map(pk, 6);
    pack_cstr(pk, "name");
    pack_cstr(pk, svc->def->name);
    pack_cstr(pk, "version");
    pack_cstr(pk, FRESCO_VERSION);
    pack_cstr(pk, "node");
    pack_cstr(pk, svc->node);
    pack_cstr(pk, "pid");
    msgpack_pack_int64(pk, (int64_t)getpid());
    pack_cstr(pk, "uptime_ms");
    msgpack_pack_int64(pk, (fr_mono_ns() - svc->started_mono_ns) / 1000000);
    pack_cstr(pk, "addresses");
    pthread_mutex_lock(&svc->lock);
    msgpack_pack_map(pk, 2 + svc->naddresses);
    pack_cstr(pk, "control");
    pack_cstr(pk, svc->sc->control);
    pack_cstr(pk, "events");
    pack_cstr(pk, svc->sc->events != NULL ? svc->sc->events : "");
    for (size_t i = 0; i < svc->naddresses; i++) {
        pack_cstr(pk, svc->addresses[i].name);
        pack_cstr(pk, svc->addresses[i].url);
    }
    pthread_mutex_unlock(&svc->lock);
    return 0;
}

static int op_stats(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    fr_service *svc = ctx;
    msgpack_packer *pk = fr_ctl_reply_packer(r);
    size_t n = atomic_load(&svc->ncounters);
    msgpack_pack_map(pk, 2);
    pack_cstr(pk, "counters");
    msgpack_pack_map(pk, n);
    for (size_t i = 0; i < n; i++) {
        pack_cstr(pk, svc->counters[i].name);
        msgpack_pack_uint64(pk, atomic_load(&svc->counters[i].value));
    }
    fr_ctl_server_stats st;
    fr_ctl_server_stats_get(svc->ctl, &st);
    pack_cstr(pk, "control");
    msgpack_pack_map(pk, 4);
    pack_cstr(pk, "requests");
    msgpack_pack_uint64(pk, st.requests);
    pack_cstr(pk, "errors");
    msgpack_pack_uint64(pk, st.errors);
    pack_cstr(pk, "malformed");
    msgpack_pack_uint64(pk, st.malformed);
    pack_cstr(pk, "unknown_ops");
    msgpack_pack_uint64(pk, st.unknown_ops);
    return 0;
}

typedef struct help_acc {
    msgpack_packer *pk;
    size_t count;
    bool pack;
} help_acc;

static void help_each(void *arg, const fr_ctl_op *op)
{
    help_acc *acc = arg;
    if (!acc->pack) {
        acc->count++;
        return;
    }
    msgpack_pack_map(acc->pk, 2);
    pack_cstr(acc->pk, "op");
    pack_cstr(acc->pk, op->name);
    pack_cstr(acc->pk, "help");
    pack_cstr(acc->pk, op->help != NULL ? op->help : "");
}

static int op_help(void *ctx, const fr_node *args, fr_ctl_reply *r)
{
    fr_service *svc = ctx;
    help_acc acc = {fr_ctl_reply_packer(r), 0, false};
    /* Services add their ops in start(), before any request is served, so
     * the count cannot change between the two passes. */
    fr_ctl_server_each_op(svc->ctl, help_each, &acc);
    msgpack_pack_array(acc.pk, acc.count);
    acc.pack = true;
    fr_ctl_server_each_op(svc->ctl, help_each, &acc);
    return 0;
}

/* ---- registry ---- */

_Atomic uint64_t *fr_service_counter(fr_service *svc, const char *name)
{
    pthread_mutex_lock(&svc->lock);
    size_t n = atomic_load(&svc->ncounters);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(svc->counters[i].name, name) == 0) {
            pthread_mutex_unlock(&svc->lock);
            return &svc->counters[i].value;
        }
    }
    if (n == SVC_MAX_COUNTERS) {
        pthread_mutex_unlock(&svc->lock);
        fr_warn("service", "counter registry full: %s not registered", name);
        return NULL;
    }
    snprintf(svc->counters[n].name, sizeof(svc->counters[n].name), "%s", name);
    atomic_store(&svc->counters[n].value, 0);
    atomic_store(&svc->ncounters, n + 1);
    pthread_mutex_unlock(&svc->lock);
    return &svc->counters[n].value;
}

int fr_service_add_ops(fr_service *svc, const fr_ctl_op *ops, size_t nops)
{
    for (size_t i = 0; i < nops; i++) {
        if (svc->ctl != NULL) {
            int rv = fr_ctl_server_add_op(svc->ctl, &ops[i]);
            if (rv != 0) {
                return rv;
            }
            continue;
        }
        /* Before the control socket opens: kept until it does, so that no
         * request can arrive before every op is there. */
        fr_ctl_op *v = realloc(svc->pending, (svc->npending + 1) * sizeof(*v));
        if (v == NULL) {
            return FR_ENOMEM;
        }
        svc->pending = v;
        svc->pending[svc->npending++] = ops[i];
    }
    return 0;
}

int fr_service_add_address(fr_service *svc, const char *name, const char *url)
{
    pthread_mutex_lock(&svc->lock);
    if (svc->naddresses == SVC_MAX_ADDRESSES) {
        pthread_mutex_unlock(&svc->lock);
        return FR_ETOOBIG;
    }
    char *n = strdup(name), *u = strdup(url != NULL ? url : "");
    if (n == NULL || u == NULL) {
        free(n);
        free(u);
        pthread_mutex_unlock(&svc->lock);
        return FR_ENOMEM;
    }
    svc->addresses[svc->naddresses].name = n;
    svc->addresses[svc->naddresses].url = u;
    svc->naddresses++;
    pthread_mutex_unlock(&svc->lock);
    return 0;
}

const fr_service_conf *fr_service_conf_get(fr_service *svc)
{
    return svc->sc;
}

const fr_tls_conf *fr_service_tls(fr_service *svc)
{
    return &svc->tls;
}

const char *fr_service_node(fr_service *svc)
{
    return svc->node;
}

fr_event_pub *fr_service_events(fr_service *svc)
{
    return svc->events;
}

void fr_service_request_stop(fr_service *svc)
{
    (void)svc;
    kill(getpid(), SIGTERM);
}

static void publish_state(fr_service *svc, const char *state)
{
    if (svc->events == NULL) {
        return;
    }
    fr_buf body = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &body, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, 2);
    pack_cstr(&pk, "service");
    pack_cstr(&pk, svc->def->name);
    pack_cstr(&pk, "state");
    pack_cstr(&pk, state);
    fr_event_publish(svc->events, "event/service", body.data, body.len);
    fr_buf_free(&body);
}

/* ---- main loop ---- */

int fr_service_main(const fr_service_def *def, int argc, char **argv)
{
    /* Signals are taken by sigwait below; every thread nng starts inherits
     * this mask, so none of them is interrupted. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    fr_service *svc = calloc(1, sizeof(*svc));
    void *conf = calloc(1, def->conf_size);
    if (svc == NULL || conf == NULL) {
        fprintf(stderr, "fresco-%s: out of memory\n", def->name);
        free(svc);
        free(conf);
        return 1;
    }
    pthread_mutex_init(&svc->lock, NULL);
    svc->def = def;
    svc->conf = conf;
    svc->sc = conf;
    svc->started_mono_ns = fr_mono_ns();

    /* The README's reference tables are printed from the same table. */
    if (argc == 2 && strcmp(argv[1], "--config-reference") == 0) {
        printf("### fresco-%s\n\n", def->name);
        fr_config_markdown(def->spec, stdout);
        free(svc);
        free(conf);
        return 0;
    }

    char default_file[256];
    snprintf(default_file, sizeof(default_file), "/etc/fresco/%s.yaml", def->name);
    fr_error err;
    fr_error_clear(&err);
    int exit_code = 0;
    int rv = fr_config_load(def->spec, conf, default_file, argc, argv, &err);
    if (rv != 0) {
        if (rv < 0) {
            fprintf(stderr, "fresco-%s: %s%s%s\n", def->name, err.where,
                    err.where[0] != '\0' ? ": " : "", err.message);
            exit_code = 2;
        }
        goto out_conf;
    }

    fr_service_conf *sc = svc->sc;
    fr_log_level level = FR_LOG_INFO;
    fr_log_level_parse(sc->log_level, &level);
    fr_log_init(def->name, level, sc->log_format != NULL && strcmp(sc->log_format, "json") == 0);
    if (sc->node != NULL && sc->node[0] != '\0') {
        snprintf(svc->node, sizeof(svc->node), "%s", sc->node);
    } else if (gethostname(svc->node, sizeof(svc->node) - 1) != 0) {
        snprintf(svc->node, sizeof(svc->node), "localhost");
    }
    svc->tls = (fr_tls_conf){
        .cert_file = sc->tls_cert,
        .key_file = sc->tls_key,
        .ca_file = sc->tls_ca,
        .server_name = sc->tls_server_name,
        .require_client_cert = sc->tls_require_client_cert,
    };

    const fr_ctl_op builtins[] = {
        {"ping", op_ping, svc, "answers \"pong\""},
        {"status", op_status, svc, "name, version, node, pid, uptime and addresses"},
        {"stats", op_stats, svc, "the service's counters"},
        {"help", op_help, svc, "the ops this service answers"},
    };
    if (sc->events != NULL && sc->events[0] != '\0') {
        rv = fr_event_pub_open(&svc->events, sc->events, &svc->tls, svc->node);
        if (rv != 0) {
            fr_error("service", "cannot publish events on %s: %s", sc->events, fr_strerror(rv));
            exit_code = 1;
            goto out_conf;
        }
    }
    if (def->start != NULL && (rv = def->start(svc, conf)) != 0) {
        fr_error("service", "start failed: %s", fr_strerror(rv));
        exit_code = 1;
        goto out_stop;
    }
    /* The control socket opens last: whoever gets an answer to ping finds
     * every op in place. */
    rv = fr_ctl_server_start(&svc->ctl, sc->control, &svc->tls, builtins,
                             sizeof(builtins) / sizeof(builtins[0]), (int)sc->workers);
    for (size_t i = 0; rv == 0 && i < svc->npending; i++) {
        rv = fr_ctl_server_add_op(svc->ctl, &svc->pending[i]);
    }
    if (rv != 0) {
        fr_error("service", "cannot serve control requests on %s: %s", sc->control,
                 fr_strerror(rv));
        exit_code = 1;
        goto out_stop;
    }
    fr_info("service", "fresco-%s %s up on %s (node %s)", def->name, FRESCO_VERSION, sc->control,
            svc->node);
    publish_state(svc, "started");

    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) == 0 && (sig == SIGTERM || sig == SIGINT)) {
            fr_info("service", "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
    }
    publish_state(svc, "stopping");

out_stop:
    /* No request may run while the service takes its state apart. */
    fr_ctl_server_destroy(svc->ctl);
    svc->ctl = NULL;
    if (def->stop != NULL) {
        def->stop(svc, conf);
    }
    fr_event_pub_close(svc->events);
out_conf:
    fr_config_free(def->spec, conf);
    for (size_t i = 0; i < svc->naddresses; i++) {
        free(svc->addresses[i].name);
        free(svc->addresses[i].url);
    }
    pthread_mutex_destroy(&svc->lock);
    free(svc->pending);
    free(conf);
    free(svc);
    return exit_code;
}
