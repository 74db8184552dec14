/* fresco task / metric / plugin: the collector's verbs, as snaptel has them.
 *
 *   fresco task create -t FILE [--no-start]     fresco task list
 *   fresco task get|start|stop|enable|remove ID  fresco task watch ID [--processed]
 *   fresco metric list [--ns PREFIX]             fresco metric get NS
 *   fresco plugin list | load FILE | unload NAME
 * Every verb takes --json. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "fresco/event.h"
#include "fresco/metric.h"

static void pack_kv(msgpack_packer *pk, const char *k, const char *v)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
    msgpack_pack_str(pk, strlen(v));
    msgpack_pack_str_body(pk, v, strlen(v));
}

/* Calls a service with one string argument (or none); *res stays for the
 * caller to print. */
static int service_call(cli *c, const char *service, const char *op, const char *key,
                        const char *value, fr_ctl_result *res)
{
    fr_buf args = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &args, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, key != NULL ? 1 : 0);
    if (key != NULL) {
        pack_kv(&pk, key, value);
    }
    int rv = cli_call_service(c, service, op, args.data, args.len, res);
    fr_buf_free(&args);
    return rv;
}

static int collector_call(cli *c, const char *op, const char *key, const char *value,
                          fr_ctl_result *res)
{
    return service_call(c, "collector", op, key, value, res);
}

static void print_time(int64_t ns)
{
    if (ns <= 0) {
        printf("-");
        return;
    }
    time_t s = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char buf[32];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%s", buf);
}

static void print_task(const fr_node *t)
{
    int64_t created = 0, last = 0;
    fr_node_get_i64(t, "created_ns", &created);
    fr_node_get_i64(t, "last_run_ns", &last);
    printf("ID:             %s\n", cli_str(t, "id"));
    printf("Name:           %s\n", cli_str(t, "name"));
    printf("State:          %s\n", cli_str(t, "state"));
    printf("Hits:           %llu\n", cli_u64(t, "hits"));
    printf("Misses:         %llu\n", cli_u64(t, "misses"));
    printf("Failures:       %llu\n", cli_u64(t, "failures"));
    printf("Created:        ");
    print_time(created);
    printf("\nLast run:       ");
    print_time(last);
    printf("\n");
    if (cli_str(t, "last_failure")[0] != '\0') {
        printf("Last failure:   %s\n", cli_str(t, "last_failure"));
    }
    if (cli_str(t, "reason")[0] != '\0') {
        printf("Reason:         %s\n", cli_str(t, "reason"));
    }
}

static int print_result(cli *c, int rv, fr_ctl_result *res, void (*human)(const fr_node *))
{
    if (rv == 0) {
        if (c->json || human == NULL) {
            fr_node_write_json(res->result, stdout);
            putchar('\n');
        } else {
            human(res->result);
        }
    }
    fr_ctl_result_free(res);
    return rv == 0 ? 0 : 1;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fresco: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    fr_buf b = FR_BUF_INIT;
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (fr_buf_append(&b, chunk, n) != 0) {
            break;
        }
    }
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad) {
        fprintf(stderr, "fresco: cannot read %s\n", path);
        fr_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return (char *)b.data;
}

static int task_create(cli *c)
{
    const char *file = NULL;
    bool no_start = false;
    for (int i = 1; i < c->argc; i++) {
        if ((strcmp(c->argv[i], "-t") == 0 || strcmp(c->argv[i], "--task-manifest") == 0) &&
            i + 1 < c->argc) {
            file = c->argv[++i];
        } else if (strcmp(c->argv[i], "--no-start") == 0) {
            no_start = true;
        } else {
            fprintf(stderr, "fresco: task create: unexpected \"%s\"\n", c->argv[i]);
            return 2;
        }
    }
    if (file == NULL) {
        fprintf(stderr, "fresco: usage: fresco task create -t FILE [--no-start]\n");
        return 2;
    }
    size_t len = 0;
    char *text = read_file(file, &len);
    if (text == NULL) {
        return 1;
    }
    fr_buf args = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &args, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str(&pk, 8);
    msgpack_pack_str_body(&pk, "manifest", 8);
    msgpack_pack_str(&pk, len);
    msgpack_pack_str_body(&pk, text, len);
    pack_kv(&pk, "file", file);
    msgpack_pack_str(&pk, 8);
    msgpack_pack_str_body(&pk, "no_start", 8);
    if (no_start) {
        msgpack_pack_true(&pk);
    } else {
        msgpack_pack_false(&pk);
    }
    fr_ctl_result res;
    int rv = cli_call_service(c, "collector", "task.create", args.data, args.len, &res);
    fr_buf_free(&args);
    free(text);
    if (rv == 0 && !c->json) {
        printf("Task created\n");
    }
    return print_result(c, rv, &res, print_task);
}

static void print_task_list(const fr_node *list)
{
    printf("%-36s  %-24s %-8s %10s %8s %8s  %s\n", "ID", "NAME", "STATE", "HITS", "MISSES",
           "FAILURES", "CREATED");
    for (uint32_t i = 0; list->type == FR_NODE_ARRAY && i < list->len; i++) {
        const fr_node *t = &list->v.arr[i];
        int64_t created = 0;
        fr_node_get_i64(t, "created_ns", &created);
        printf("%-36s  %-24.24s %-8s %10llu %8llu %8llu  ", cli_str(t, "id"), cli_str(t, "name"),
               cli_str(t, "state"), cli_u64(t, "hits"), cli_u64(t, "misses"),
               cli_u64(t, "failures"));
        print_time(created);
        printf("\n");
    }
}

static volatile sig_atomic_t watch_stop;
static void watch_signal(int sig)
{
    watch_stop = 1;
}

/* A service's event address, from its status; a wildcard host is
 * replaced by the host the control address names. */
static int events_address(cli *c, const char *service, char *out, size_t cap)
{
    fr_ctl_result res;
    int rv = service_call(c, service, "status", NULL, NULL, &res);
    if (rv != 0) {
        return rv;
    }
    const char *ev = "";
    fr_node_get_str(fr_node_get(res.result, "addresses"), "events", &ev);
    if (ev[0] == '\0') {
        fprintf(stderr, "fresco: the %s publishes no events\n", service);
        fr_ctl_result_free(&res);
        return FR_ENOTFOUND;
    }
    const char *wild = strstr(ev, "0.0.0.0");
    const char *ctl = cli_address(c, service);
    if (wild != NULL && ctl != NULL) {
        const char *h = strstr(ctl, "://");
        const char *port = h != NULL ? strrchr(h + 3, ':') : NULL;
        if (port != NULL) {
            snprintf(out, cap, "%.*s%.*s%s", (int)(wild - ev), ev, (int)(port - (h + 3)), h + 3,
                     wild + 7);
        } else {
            snprintf(out, cap, "%s", ev);
        }
    } else {
        snprintf(out, cap, "%s", ev);
    }
    fr_ctl_result_free(&res);
    return 0;
}

static void print_value(const fr_metric *m)
{
    switch (m->value.type) {
    case FR_VAL_INT64:
        printf("%-20lld", (long long)m->value.v.i);
        break;
    case FR_VAL_UINT64:
        printf("%-20llu", (unsigned long long)m->value.v.u);
        break;
    case FR_VAL_DOUBLE:
        printf("%-20.10g", m->value.v.d);
        break;
    case FR_VAL_BOOL:
        printf("%-20s", m->value.v.b ? "true" : "false");
        break;
    case FR_VAL_STRING:
        printf("%-20s", m->value.v.s.ptr);
        break;
    }
}

/* Opens a subscription to a service's events with one topic prefix. */
static int watch_open(cli *c, const char *service, const char *topic, fr_event_sub **sub)
{
    char addr[512];
    if (events_address(c, service, addr, sizeof(addr)) != 0) {
        return 1;
    }
    int rv;
    if ((rv = fr_event_sub_open(sub, addr, &c->tls)) != 0 ||
        (rv = fr_event_subscribe(*sub, topic)) != 0) {
        fprintf(stderr, "fresco: cannot watch %s: %s\n", addr, fr_strerror(rv));
        fr_event_sub_close(*sub);
        *sub = NULL;
        return 1;
    }
    return 0;
}

/* fresco task watch ID [--processed]: the task's batches as the collector
 * emits them, or (--processed) as the processor's nodes pass them on. */
static int task_watch(cli *c, const char *id, bool processed)
{
    fr_ctl_result res;
    int rv = collector_call(c, "task.get", "id", id, &res);
    if (rv != 0) {
        return 1;
    }
    char tid[64];
    snprintf(tid, sizeof(tid), "%s", cli_str(res.result, "id"));
    fr_ctl_result_free(&res);
    fr_event_sub *sub = NULL, *tasks = NULL;
    char topic[128];
    snprintf(topic, sizeof(topic), processed ? "metrics/%s/" : "metrics/%s", tid);
    if (watch_open(c, "collector", "event/task", &tasks) != 0 ||
        watch_open(c, processed ? "processor" : "collector", topic, &sub) != 0) {
        fr_event_sub_close(tasks);
        return 1;
    }
    signal(SIGINT, watch_signal);
    signal(SIGTERM, watch_signal);
    if (!c->json) {
        printf("Watching task %s%s (Ctrl-C to stop)\n", tid, processed ? " after processing" : "");
        printf("%-60s %-20s %-10s %-26s %s\n", "NAMESPACE", "DATA", "UNIT", "TIMESTAMP",
               processed ? "TAGS (NODE)" : "TAGS");
    }
    fflush(stdout);
    int code = 0;
    while (!watch_stop) {
        fr_event ev;
        rv = fr_event_recv(tasks, 0, &ev);
        if (rv == FR_ETIMEDOUT) {
            rv = fr_event_recv(sub, 250, &ev);
        }
        if (rv == FR_ETIMEDOUT) {
            continue;
        }
        if (rv != 0) {
            code = 1;
            break;
        }
        if (strcmp(ev.topic, "event/task") == 0) {
            if (strcmp(cli_str(ev.body, "id"), tid) == 0) {
                const char *st = cli_str(ev.body, "state");
                fprintf(stderr, "Task %s is %s %s\n", tid, st, cli_str(ev.body, "reason"));
                if (strcmp(st, "Running") != 0 && strcmp(st, "Stopped") != 0) {
                    watch_stop = 1;
                }
            }
            fr_event_free(&ev);
            continue;
        }
        if (c->json) {
            fr_node_write_json(ev.body, stdout);
            putchar('\n');
        } else {
            fr_buf wire = FR_BUF_INIT;
            msgpack_packer pk;
            msgpack_packer_init(&pk, &wire, fr_buf_msgpack_write);
            fr_batch *b = NULL;
            fr_error err;
            if (fr_node_pack(ev.body, &pk) == 0 &&
                fr_batch_decode(wire.data, wire.len, &b, &err) == 0) {
                for (uint32_t i = 0; i < b->nmetrics; i++) {
                    const fr_metric *m = &b->metrics[i];
                    printf("%-60s ", m->ns);
                    print_value(m);
                    printf(" %-10s ", m->unit);
                    print_time(m->ts);
                    printf("        ");
                    for (uint32_t t = 0; t < m->ntags; t++) {
                        printf("%s%s=%s", t ? "," : "", m->tags[t].key, m->tags[t].value);
                    }
                    if (b->route[0] != '\0') {
                        printf(" (%s)", b->route);
                    }
                    printf("\n");
                }
            }
            fr_batch_destroy(b);
            fr_buf_free(&wire);
        }
        fflush(stdout);
        fr_event_free(&ev);
    }
    fr_event_sub_stats st;
    fr_event_sub_stats_get(sub, &st);
    if (st.missed > 0) {
        fprintf(stderr, "fresco: %llu batches were dropped for this slow watcher\n",
                (unsigned long long)st.missed);
    }
    fr_event_sub_close(sub);
    fr_event_sub_close(tasks);
    return code;
}

int cli_cmd_task(cli *c)
{
    if (c->argc < 1) {
        fprintf(stderr, "fresco: usage: fresco task create|list|get|start|stop|enable|remove|"
                        "watch ...\n");
        return 2;
    }
    const char *sub = c->argv[0];
    fr_ctl_result res;
    if (strcmp(sub, "create") == 0) {
        return task_create(c);
    }
    if (strcmp(sub, "list") == 0) {
        return print_result(c, collector_call(c, "task.list", NULL, NULL, &res), &res,
                            print_task_list);
    }
    static const struct {
        const char *verb, *op;
    } by_id[] = {{"get", "task.get"},       {"start", "task.start"},   {"stop", "task.stop"},
                 {"enable", "task.enable"}, {"remove", "task.remove"}, {"watch", NULL}};
    for (size_t i = 0; i < sizeof(by_id) / sizeof(by_id[0]); i++) {
        if (strcmp(sub, by_id[i].verb) != 0) {
            continue;
        }
        bool processed =
            by_id[i].op == NULL && c->argc == 3 && strcmp(c->argv[2], "--processed") == 0;
        if (c->argc != 2 && !processed) {
            fprintf(stderr, "fresco: usage: fresco task %s ID%s\n", sub,
                    by_id[i].op == NULL ? " [--processed]" : "");
            return 2;
        }
        if (by_id[i].op == NULL) {
            return task_watch(c, c->argv[1], processed);
        }
        int rv = collector_call(c, by_id[i].op, "id", c->argv[1], &res);
        if (rv == 0 && !c->json && strcmp(sub, "remove") == 0) {
            printf("Task removed: %s\n", c->argv[1]);
            fr_ctl_result_free(&res);
            return 0;
        }
        return print_result(c, rv, &res, print_task);
    }
    fprintf(stderr, "fresco: unknown task verb \"%s\"\n", sub);
    return 2;
}

static void print_catalog(const fr_node *list)
{
    printf("%-64s %-8s %-10s %s\n", "NAMESPACE", "TYPE", "UNIT", "DESCRIPTION");
    for (uint32_t i = 0; list->type == FR_NODE_ARRAY && i < list->len; i++) {
        const fr_node *m = &list->v.arr[i];
        printf("%-64s %-8s %-10s %s\n", cli_str(m, "namespace"), cli_str(m, "type"),
               cli_str(m, "unit"), cli_str(m, "description"));
    }
}

int cli_cmd_metric(cli *c)
{
    fr_ctl_result res;
    if (c->argc >= 1 && strcmp(c->argv[0], "list") == 0) {
        const char *ns = NULL;
        for (int i = 1; i < c->argc; i++) {
            if (strcmp(c->argv[i], "--ns") == 0 && i + 1 < c->argc) {
                ns = c->argv[++i];
            } else if (strncmp(c->argv[i], "--ns=", 5) == 0) {
                ns = c->argv[i] + 5;
            } else {
                fprintf(stderr, "fresco: metric list: unexpected \"%s\"\n", c->argv[i]);
                return 2;
            }
        }
        return print_result(c, collector_call(c, "metric.list", ns ? "ns" : NULL, ns, &res), &res,
                            print_catalog);
    }
    if (c->argc == 2 && strcmp(c->argv[0], "get") == 0) {
        return print_result(c, collector_call(c, "metric.get", "ns", c->argv[1], &res), &res,
                            print_catalog);
    }
    fprintf(stderr, "fresco: usage: fresco metric list [--ns PREFIX] | metric get NS\n");
    return 2;
}

static void print_plugins(const fr_node *list)
{
    printf("%-14s %-8s %-8s %-22s %-6s %s\n", "NAME", "VERSION", "METRICS", "NAMESPACE", "TASKS",
           "FROM");
    for (uint32_t i = 0; list->type == FR_NODE_ARRAY && i < list->len; i++) {
        const fr_node *p = &list->v.arr[i];
        bool builtin = false;
        fr_node_get_bool(p, "builtin", &builtin);
        printf("%-14s %-8llu %-8llu %-22s %-6llu %s\n", cli_str(p, "name"), cli_u64(p, "version"),
               cli_u64(p, "metrics"), cli_str(p, "ns_prefix"), cli_u64(p, "tasks"),
               builtin ? "built in" : cli_str(p, "path"));
    }
}

int cli_cmd_plugin(cli *c)
{
    fr_ctl_result res;
    if (c->argc == 1 && strcmp(c->argv[0], "list") == 0) {
        return print_result(c, collector_call(c, "plugin.list", NULL, NULL, &res), &res,
                            print_plugins);
    }
    if (c->argc == 2 && strcmp(c->argv[0], "load") == 0) {
        char abs[PATH_MAX];
        if (realpath(c->argv[1], abs) == NULL) {
            fprintf(stderr, "fresco: plugin load: %s: %s\n", c->argv[1], strerror(errno));
            return 1;
        }
        int rv = collector_call(c, "plugin.load", "path", abs, &res);
        if (rv == 0 && !c->json) {
            printf("Plugin loaded: %s\n", res.result->v.str);
            fr_ctl_result_free(&res);
            return 0;
        }
        return print_result(c, rv, &res, NULL);
    }
    if (c->argc == 2 && strcmp(c->argv[0], "unload") == 0) {
        int rv = collector_call(c, "plugin.unload", "name", c->argv[1], &res);
        if (rv == 0 && !c->json) {
            printf("Plugin unloaded: %s\n", c->argv[1]);
            fr_ctl_result_free(&res);
            return 0;
        }
        return print_result(c, rv, &res, NULL);
    }
    fprintf(stderr, "fresco: usage: fresco plugin list | load FILE | unload NAME\n");
    return 2;
}
