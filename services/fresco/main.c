/* fresco: the command line for every fresco service (like snap's snaptel).
 *
 *   fresco [options] status [--json] [--only NAME[,NAME...]]
 *   fresco [options] ping SERVICE
 *   fresco [options] stats SERVICE [--json]
 *   fresco [options] call SERVICE OP [key=value...] [--json]
 *   fresco [options] task|metric|plugin ...      (the collector's verbs)
 *   fresco [options] pipeline list|plugins, spool (the processor's and publisher's)
 *   fresco qsub [-list] [-gf] [-vm k=v,...] <qsub options> [script]   (VM batch jobs)
 *   fresco [options] hpc status|cancel|list|images|metadata|workload ...
 *
 * Options come from /etc/fresco/cli.yaml, FRESCO_CLI_<KEY> and --key=value,
 * in that order; `fresco --help` lists them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fresco/log.h"

const cli_service cli_services[] = {
    {"collector", "tcp://127.0.0.1:7400"},
    {"processor", "tcp://127.0.0.1:7410"},
    {"publisher", "tcp://127.0.0.1:7420"},
};
const size_t cli_nservices = sizeof(cli_services) / sizeof(cli_services[0]);

static const fr_cfg_field cli_fields[] = {
    {"collector", FR_CFG_STRING, "tcp://127.0.0.1:7400", offsetof(cli_conf, address[0]),
     "fresco-collector control address (\"\" = none)", 0, 0, NULL},
    {"processor", FR_CFG_STRING, "tcp://127.0.0.1:7410", offsetof(cli_conf, address[1]),
     "fresco-processor control address (\"\" = none)", 0, 0, NULL},
    {"publisher", FR_CFG_STRING, "tcp://127.0.0.1:7420", offsetof(cli_conf, address[2]),
     "fresco-publisher control address (\"\" = none)", 0, 0, NULL},
    {"timeout", FR_CFG_DURATION, "2s", offsetof(cli_conf, timeout_ms),
     "how long to wait for each service's answer", 1, 3600000, NULL},
    {"tls.cert", FR_CFG_STRING, NULL, offsetof(cli_conf, tls_cert),
     "PEM client certificate for tls+tcp:// addresses", 0, 0, NULL},
    {"tls.key", FR_CFG_STRING, NULL, offsetof(cli_conf, tls_key),
     "PEM private key (default: in tls.cert)", 0, 0, NULL},
    {"tls.ca", FR_CFG_STRING, NULL, offsetof(cli_conf, tls_ca),
     "PEM CA bundle to verify the services", 0, 0, NULL},
    {"tls.server_name", FR_CFG_STRING, NULL, offsetof(cli_conf, tls_server_name),
     "name expected in the services' certificates", 0, 0, NULL},
    {"hpc", FR_CFG_STRING, NULL, offsetof(cli_conf, hpc),
     "fresco-hpc control address (default: control in /etc/fresco/hpc.yaml)", 0, 0, NULL},
};

static const fr_cfg_spec cli_spec = {"cli", cli_fields, sizeof(cli_fields) / sizeof(cli_fields[0])};

static const struct {
    const char *name;
    int (*fn)(cli *c);
    const char *usage;
} verbs[] = {
    {"status", cli_cmd_status, "status [--json] [--only NAME[,NAME...]]  reach every service"},
    {"ping", cli_cmd_ping, "ping SERVICE                              is it answering?"},
    {"stats", cli_cmd_stats, "stats SERVICE [--json]                    its counters"},
    {"call", cli_cmd_call, "call SERVICE OP [key=value...] [--json]   any control op"},
    {"task", cli_cmd_task,
     "task create -t FILE [--no-start] | list | get|start|stop|enable|remove|watch ID"},
    {"metric", cli_cmd_metric, "metric list [--ns PREFIX] | get NS      the collector's catalog"},
    {"plugin", cli_cmd_plugin, "plugin list | load FILE | unload NAME     collector plugins"},
    {"pipeline", cli_cmd_pipeline,
     "pipeline list [TASK] | plugins             process nodes and sinks of every task"},
    {"spool", cli_cmd_spool, "spool                                     the publisher's spool"},
    {"hpc", cli_cmd_hpc,
     "hpc status|cancel ID | list | images | metadata collect|merge|diff | workload run FILE"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: fresco [options] VERB [arguments]\n\nverbs:\n");
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        fprintf(f, "  fresco %s\n", verbs[i].usage);
    }
    fprintf(f, "  fresco qsub [-list] [-gf] [-vm key=value,...]... <qsub options> [script]\n");
    fprintf(f, "\noptions (also /etc/fresco/cli.yaml and FRESCO_CLI_<KEY>):\n");
    fr_config_usage(&cli_spec, f);
}

const char *cli_address(const cli *c, const char *service)
{
    for (size_t i = 0; i < cli_nservices; i++) {
        if (strcmp(cli_services[i].name, service) == 0) {
            const char *a = c->conf.address[i];
            return a != NULL && a[0] != '\0' ? a : NULL;
        }
    }
    return NULL;
}

/* True when arg is --key or --key=value for a key of the option table;
 * *takes_value is set when the value is the next argument. */
static bool is_option(const char *arg, bool *takes_value)
{
    if (strncmp(arg, "--", 2) != 0) {
        return false;
    }
    const char *key = arg + 2;
    size_t klen = strcspn(key, "=");
    if (klen == 6 && strncmp(key, "config", 6) == 0) {
        *takes_value = key[klen] == '\0';
        return true;
    }
    for (size_t i = 0; i < cli_spec.nfields; i++) {
        if (strlen(cli_fields[i].key) == klen && strncmp(cli_fields[i].key, key, klen) == 0) {
            *takes_value = key[klen] == '\0' && cli_fields[i].type != FR_CFG_BOOL;
            return true;
        }
    }
    return false;
}

int main(int argc, char **argv)
{
    fr_log_init("fresco", FR_LOG_WARN, false);
    cli c;
    memset(&c, 0, sizeof(c));
    /* Options may stand anywhere; split them from the verb and its words. */
    char **opts = calloc((size_t)argc + 1, sizeof(char *));
    char **words = calloc((size_t)argc + 1, sizeof(char *));
    if (opts == NULL || words == NULL) {
        fprintf(stderr, "fresco: out of memory\n");
        return 1;
    }
    if (argc == 2 && strcmp(argv[1], "--config-reference") == 0) {
        printf("### fresco (command line)\n\n");
        fr_config_markdown(&cli_spec, stdout);
        free(opts);
        free(words);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "qsub") == 0) {
        /* Torque's options, untouched by fresco's own option parsing */
        free(opts);
        free(words);
        return cli_cmd_qsub(argc - 2, argv + 2);
    }
    int nopts = 0, nwords = 0;
    opts[nopts++] = argv[0];
    int rc = 0;
    for (int i = 1; i < argc; i++) {
        bool takes = false;
        if (strcmp(argv[i], "--json") == 0) {
            c.json = true;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            c.only = argv[++i];
        } else if (strncmp(argv[i], "--only=", 7) == 0) {
            c.only = argv[i] + 7;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            goto out;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("fresco %s\n", FRESCO_VERSION);
            goto out;
        } else if (is_option(argv[i], &takes)) {
            opts[nopts++] = argv[i];
            if (takes && i + 1 < argc) {
                opts[nopts++] = argv[++i];
            }
        } else if (strncmp(argv[i], "--", 2) == 0 && nwords == 0) {
            fprintf(stderr, "fresco: unknown option %s (fresco --help lists them)\n", argv[i]);
            rc = 2;
            goto out;
        } else {
            words[nwords++] = argv[i];
        }
    }
    fr_error err;
    fr_error_clear(&err);
    int rv = fr_config_load(&cli_spec, &c.conf, "/etc/fresco/cli.yaml", nopts, opts, &err);
    if (rv < 0) {
        fprintf(stderr, "fresco: %s%s%s\n", err.where, err.where[0] ? ": " : "", err.message);
        rc = 2;
        goto out_conf;
    }
    c.tls = (fr_tls_conf){c.conf.tls_cert, c.conf.tls_key, c.conf.tls_ca, c.conf.tls_server_name,
                          false};
    if (nwords == 0) {
        usage(stderr);
        rc = 2;
        goto out_conf;
    }
    c.argc = nwords - 1;
    c.argv = words + 1;
    rc = -1;
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (strcmp(words[0], verbs[i].name) == 0) {
            rc = verbs[i].fn(&c);
            break;
        }
    }
    if (rc == -1) {
        fprintf(stderr, "fresco: unknown verb \"%s\" (fresco --help lists them)\n", words[0]);
        rc = 2;
    }
out_conf:
    fr_config_free(&cli_spec, &c.conf);
out:
    free(opts);
    free(words);
    return rc;
}
