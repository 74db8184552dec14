/* The `fresco` command line: shared state of its verbs. */
#ifndef FRESCO_CLI_H
#define FRESCO_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include "fresco/config.h"
#include "fresco/ctl.h"
#include "fresco/tls.h"

/* Services the command line knows, in the order `status` lists them. */
typedef struct cli_service {
    const char *name;
    const char *default_address;
} cli_service;

extern const cli_service cli_services[];
extern const size_t cli_nservices;

typedef struct cli_conf {
    char *address[8]; /* per cli_services entry; "" = not configured */
    int64_t timeout_ms;
    char *tls_cert;
    char *tls_key;
    char *tls_ca;
    char *tls_server_name;
    char *hpc; /* fresco-hpc control address (NULL: the policy file's control) */
} cli_conf;

typedef struct cli {
    cli_conf conf;
    fr_tls_conf tls;
    bool json;
    const char *only; /* comma-separated service names, or NULL */
    int argc;         /* the verb's positional arguments */
    char **argv;
} cli;

/* The configured address of a service by name; NULL when unknown or "". */
const char *cli_address(const cli *c, const char *service);

/* One call to a service; prints "fresco: <service>: <why>" on failure. */
int cli_call_service(const cli *c, const char *service, const char *op, const void *args,
                     size_t len, fr_ctl_result *res);

/* A member of a reply map: the string ("" when absent or not a string),
 * the unsigned integer (0 likewise). */
const char *cli_str(const fr_node *n, const char *key);
unsigned long long cli_u64(const fr_node *n, const char *key);

int cli_cmd_status(cli *c);
int cli_cmd_ping(cli *c);
int cli_cmd_stats(cli *c);
int cli_cmd_call(cli *c);
int cli_cmd_task(cli *c);
int cli_cmd_metric(cli *c);
int cli_cmd_plugin(cli *c);
int cli_cmd_pipeline(cli *c);
int cli_cmd_spool(cli *c);
int cli_cmd_hpc(cli *c);
/* `fresco qsub ...`: its arguments are Torque's, taken before fresco's own. */
int cli_cmd_qsub(int argc, char **argv);

#endif
