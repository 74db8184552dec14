/* The processor's and publisher's verbs:
 *   fresco pipeline list [TASK]   every task's process nodes and sinks, with counts
 *   fresco pipeline plugins       the processor plugins and sinks built in
 *   fresco spool                  the publisher's spool
 * Every verb takes --json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int call_with_task(cli *c, const char *service, const char *op, const char *task,
                          fr_ctl_result *res)
{
    fr_buf args = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &args, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, task != NULL ? 1 : 0);
    if (task != NULL) {
        msgpack_pack_str(&pk, 4);
        msgpack_pack_str_body(&pk, "task", 4);
        msgpack_pack_str(&pk, strlen(task));
        msgpack_pack_str_body(&pk, task, strlen(task));
    }
    int rv = cli_call_service(c, service, op, args.data, args.len, res);
    fr_buf_free(&args);
    return rv;
}

static void print_processor(const fr_node *list)
{
    for (uint32_t i = 0; list->type == FR_NODE_ARRAY && i < list->len; i++) {
        const fr_node *t = &list->v.arr[i];
        printf("Task %s (%s)\n", cli_str(t, "task"), cli_str(t, "name"));
        printf("  %-32s %-12s %10s %12s %12s %8s  %s\n", "NODE", "PLUGIN", "BATCHES", "METRICS IN",
               "METRICS OUT", "ERRORS", "LAST ERROR");
        const fr_node *nodes = fr_node_get(t, "nodes");
        for (uint32_t k = 0; nodes != NULL && k < nodes->len; k++) {
            const fr_node *n = &nodes->v.arr[k];
            printf("  %-32s %-12s %10llu %12llu %12llu %8llu  %s\n", cli_str(n, "path"),
                   cli_str(n, "plugin"), cli_u64(n, "batches"), cli_u64(n, "metrics_in"),
                   cli_u64(n, "metrics_out"), cli_u64(n, "errors"), cli_str(n, "last_error"));
        }
    }
}

static void print_publisher(const fr_node *list)
{
    for (uint32_t i = 0; list->type == FR_NODE_ARRAY && i < list->len; i++) {
        const fr_node *t = &list->v.arr[i];
        printf("Task %s (%s)\n", cli_str(t, "task"), cli_str(t, "name"));
        printf("  %-32s %-12s %-9s %10s %12s %8s %8s %12s  %s\n", "SINK", "PLUGIN", "STATE",
               "BATCHES", "METRICS", "RETRIES", "REJECTED", "BACKLOG", "LAST ERROR");
        const fr_node *sinks = fr_node_get(t, "sinks");
        for (uint32_t k = 0; sinks != NULL && k < sinks->len; k++) {
            const fr_node *s = &sinks->v.arr[k];
            printf("  %-32s %-12s %-9s %10llu %12llu %8llu %8llu %12llu  %s\n", cli_str(s, "path"),
                   cli_str(s, "plugin"), cli_str(s, "state"), cli_u64(s, "batches"),
                   cli_u64(s, "metrics"), cli_u64(s, "retries"), cli_u64(s, "rejected"),
                   cli_u64(s, "backlog_bytes"), cli_str(s, "last_error"));
        }
    }
}

static void print_plugins(const char *kind, const fr_node *list)
{
    for (uint32_t i = 0; list->type == FR_NODE_ARRAY && i < list->len; i++) {
        const fr_node *p = &list->v.arr[i];
        printf("%-10s %-14s %-4llu %s\n", kind, cli_str(p, "name"), cli_u64(p, "version"),
               cli_str(p, "description"));
    }
}

static void print_spool(const fr_node *s)
{
    bool accepting = true;
    fr_node_get_bool(s, "accepting", &accepting);
    printf("Spool %s: %llu of %llu bytes in %llu segment(s), %s\n", cli_str(s, "dir"),
           cli_u64(s, "bytes"), cli_u64(s, "max_bytes"), cli_u64(s, "segments"),
           accepting ? "taking batches" : "FULL: answering busy");
    printf("  records appended %llu (%llu bytes), refused when full %llu\n", cli_u64(s, "records"),
           cli_u64(s, "appended_bytes"), cli_u64(s, "full"));
    printf("  damaged records skipped %llu (%llu bytes), torn tail cut %llu bytes\n",
           cli_u64(s, "corrupt_records"), cli_u64(s, "corrupt_bytes"), cli_u64(s, "torn_bytes"));
}

/* Prints one service's answer, as JSON or through human; 0, or 1 when it
 * failed (cli_call_service said why). */
static int show(cli *c, int rv, fr_ctl_result *res, void (*human)(const fr_node *))
{
    if (rv == 0) {
        if (c->json) {
            fr_node_write_json(res->result, stdout);
            putchar('\n');
        } else {
            human(res->result);
        }
    }
    fr_ctl_result_free(res);
    return rv == 0 ? 0 : 1;
}

int cli_cmd_pipeline(cli *c)
{
    fr_ctl_result res;
    if (c->argc >= 1 && c->argc <= 2 && strcmp(c->argv[0], "list") == 0) {
        const char *task = c->argc == 2 ? c->argv[1] : NULL;
        if (!c->json) {
            printf("== processor ==\n");
        }
        int a = show(c, call_with_task(c, "processor", "pipeline.list", task, &res), &res,
                     print_processor);
        if (!c->json) {
            printf("== publisher ==\n");
        }
        int b = show(c, call_with_task(c, "publisher", "pipeline.list", task, &res), &res,
                     print_publisher);
        return a | b;
    }
    if (c->argc == 1 && strcmp(c->argv[0], "plugins") == 0) {
        int rc = 0;
        const char *svc[] = {"processor", "publisher"};
        for (int i = 0; i < 2; i++) {
            int rv = call_with_task(c, svc[i], "plugin.list", NULL, &res);
            if (rv == 0 && c->json) {
                fr_node_write_json(res.result, stdout);
                putchar('\n');
            } else if (rv == 0) {
                print_plugins(svc[i], res.result);
            }
            rc |= rv != 0;
            fr_ctl_result_free(&res);
        }
        return rc;
    }
    fprintf(stderr, "fresco: usage: fresco pipeline list [TASK] | pipeline plugins\n");
    return 2;
}

int cli_cmd_spool(cli *c)
{
    if (c->argc != 0) {
        fprintf(stderr, "fresco: usage: fresco spool\n");
        return 2;
    }
    fr_ctl_result res;
    return show(c, call_with_task(c, "publisher", "spool.stats", NULL, &res), &res, print_spool);
}
