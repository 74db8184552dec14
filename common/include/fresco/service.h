/* The service main loop every fresco daemon runs.
 *
 * fr_service_main() loads the config (defaults < file < env < flags), sets up
 * logging, blocks SIGTERM/SIGINT in every thread and waits for them with
 * sigwait, starts the control server with the built-in ops
 *   ping   -> "pong"
 *   status -> {name, version, node, pid, uptime_ms, addresses:{...}}
 *   stats  -> {counters:{...}, control:{requests, errors, malformed, unknown_ops}}
 *   help   -> [{op, help}...]
 * plus the service's own, calls the service's start(), and on a signal calls
 * stop() (flush, close sockets), stops the control server and returns 0. */
#ifndef FRESCO_SERVICE_H
#define FRESCO_SERVICE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fresco/clock.h"
#include "fresco/config.h"
#include "fresco/ctl.h"
#include "fresco/tls.h"

/* The keys every service has. Embed as the first member of a service's
 * config struct and list FR_SERVICE_FIELDS(type) in its field table. */
typedef struct fr_service_conf {
    char *control;   /* control socket address (REP, listening) */
    char *events;    /* event socket address (PUB, listening) */
    char *node;      /* node name used as source in batches and events */
    char *state_dir; /* where the service persists state */
    char *log_level;
    char *log_format;
    int64_t workers; /* concurrent control requests */
    char *tls_cert;
    char *tls_key;
    char *tls_ca;
    char *tls_server_name;
    bool tls_require_client_cert;
} fr_service_conf;

extern const char *const fr_log_formats[];
extern const char *const fr_log_levels[];

/* Field-table rows for fr_service_conf `m` inside struct `type`; the
 * default addresses are given per service. */
#define FR_SERVICE_FIELDS(type, m, def_control, def_events)                                        \
    {"control",                                                                                    \
     FR_CFG_STRING,                                                                                \
     def_control,                                                                                  \
     offsetof(type, m.control),                                                                    \
     "control socket address (nng REP, listens)",                                                  \
     0,                                                                                            \
     0,                                                                                            \
     NULL},                                                                                        \
        {"events",                                                                                 \
         FR_CFG_STRING,                                                                            \
         def_events,                                                                               \
         offsetof(type, m.events),                                                                 \
         "event socket address (nng PUB, listens)",                                                \
         0,                                                                                        \
         0,                                                                                        \
         NULL},                                                                                    \
        {"node",                                                                                   \
         FR_CFG_STRING,                                                                            \
         NULL,                                                                                     \
         offsetof(type, m.node),                                                                   \
         "node name in batches and events (default: the host name)",                               \
         0,                                                                                        \
         0,                                                                                        \
         NULL},                                                                                    \
        {"state_dir",                                                                              \
         FR_CFG_STRING,                                                                            \
         NULL,                                                                                     \
         offsetof(type, m.state_dir),                                                              \
         "directory for persistent state (default: none, nothing persisted)",                      \
         0,                                                                                        \
         0,                                                                                        \
         NULL},                                                                                    \
        {"log.level",         FR_CFG_ENUM, "info", offsetof(type, m.log_level),                    \
         "minimum log level", 0,           0,      fr_log_levels},                                 \
        {"log.format",      FR_CFG_ENUM, "plain", offsetof(type, m.log_format),                    \
         "log line format", 0,           0,       fr_log_formats},                                 \
        {"workers", FR_CFG_INT, "4", offsetof(type, m.workers), "control requests served at once", \
         1,         256,        NULL},                                                             \
        {"tls.cert",                                                                               \
         FR_CFG_STRING,                                                                            \
         NULL,                                                                                     \
         offsetof(type, m.tls_cert),                                                               \
         "PEM certificate for tls+tcp:// addresses",                                               \
         0,                                                                                        \
         0,                                                                                        \
         NULL},                                                                                    \
        {"tls.key",                                                                                \
         FR_CFG_STRING,                                                                            \
         NULL,                                                                                     \
         offsetof(type, m.tls_key),                                                                \
         "PEM private key (default: in tls.cert)",                                                 \
         0,                                                                                        \
         0,                                                                                        \
         NULL},                                                                                    \
        {"tls.ca",                                                                                 \
         FR_CFG_STRING,                                                                            \
         NULL,                                                                                     \
         offsetof(type, m.tls_ca),                                                                 \
         "PEM CA bundle to verify peers",                                                          \
         0,                                                                                        \
         0,                                                                                        \
         NULL},                                                                                    \
        {"tls.server_name",                                                                        \
         FR_CFG_STRING,                                                                            \
         NULL,                                                                                     \
         offsetof(type, m.tls_server_name),                                                        \
         "name expected in the server certificate when dialing",                                   \
         0,                                                                                        \
         0,                                                                                        \
         NULL},                                                                                    \
    {                                                                                              \
        "tls.require_client_cert", FR_CFG_BOOL, "false",                                           \
            offsetof(type, m.tls_require_client_cert),                                             \
            "refuse clients without a certificate signed by tls.ca", 0, 0, NULL                    \
    }

typedef struct fr_service fr_service;

typedef struct fr_service_def {
    const char *name; /* "collector": binary fresco-<name>, env FRESCO_<NAME>_* */
    const fr_cfg_spec *spec;
    size_t conf_size; /* sizeof the service's config struct */
    /* Opens the service's sockets and adds its ops (fr_service_add_ops).
     * conf is the loaded config struct. Returning non-zero aborts startup
     * (stop() is then called to clean up what was opened: it must be safe on
     * a half-started service). */
    int (*start)(fr_service *svc, void *conf);
    /* Flushes and closes everything start() opened. */
    void (*stop)(fr_service *svc, void *conf);
} fr_service_def;

/* Runs the service until SIGTERM/SIGINT. Returns the process exit code:
 * 0 after a clean stop or --help; 2 for a config error (printed as
 * "<where>: <message>"); 1 when start failed. */
int fr_service_main(const fr_service_def *def, int argc, char **argv);

/* Inside start(): */
int fr_service_add_ops(fr_service *svc, const fr_ctl_op *ops, size_t nops);
const fr_service_conf *fr_service_conf_get(fr_service *svc);
const fr_tls_conf *fr_service_tls(fr_service *svc);
const char *fr_service_node(fr_service *svc); /* conf node or host name */

/* Lists a further address under its name in status's "addresses" map
 * (e.g. "data_in"). Both strings are copied; at most 8 per service. */
int fr_service_add_address(fr_service *svc, const char *name, const char *url);

/* The service's event publisher (on conf->events), for its own streams.
 * The service loop itself publishes "event/service" {state: started|stopping}. */
struct fr_event_pub *fr_service_events(fr_service *svc);

/* A named counter shown by `stats` (and usable as a metric). The pointer is
 * valid for the service's life; update with atomic_fetch_add. Same name ->
 * same counter. NULL when the registry (256 counters) is full. */
_Atomic uint64_t *fr_service_counter(fr_service *svc, const char *name);

/* Asks the service to stop, as SIGTERM would (e.g. from a fatal error in a
 * worker thread). */
void fr_service_request_stop(fr_service *svc);

#endif
