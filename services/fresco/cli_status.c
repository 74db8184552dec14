/* fresco status: asks every configured service at once and prints a table
 * (or JSON). Exit 0 when all answered, 1 when one did not. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct status_row {
    const cli *c;
    const char *service;
    const char *address;
    int rv;
    fr_ctl_result res;
    char why[320];
    pthread_t thread;
} status_row;

static void *status_query(void *arg)
{
    status_row *row = arg;
    fr_ctl_client *cl = NULL;
    row->rv = fr_ctl_client_open(&cl, row->address, &row->c->tls);
    if (row->rv == 0) {
        row->rv = fr_ctl_call(cl, "status", NULL, 0, (int)row->c->conf.timeout_ms, &row->res);
        fr_ctl_client_close(cl);
    }
    if (row->rv == FR_EREMOTE) {
        snprintf(row->why, sizeof(row->why), "%s: %s", row->res.error_code, row->res.error_message);
    } else if (row->rv == FR_ETIMEDOUT) {
        snprintf(row->why, sizeof(row->why), "no answer: %s", row->res.error_message);
    } else if (row->rv != 0) {
        snprintf(row->why, sizeof(row->why), "%s", fr_strerror(row->rv));
    }
    return NULL;
}

static bool wanted(const char *only, const char *name)
{
    if (only == NULL) {
        return true;
    }
    size_t n = strlen(name);
    for (const char *p = only; *p != '\0';) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, name, n) == 0) {
            return true;
        }
        p += len + (p[len] == ',');
    }
    return false;
}

static void format_uptime(char *buf, size_t len, int64_t ms)
{
    int64_t s = ms / 1000;
    if (s < 60) {
        snprintf(buf, len, "%llds", (long long)s);
    } else if (s < 3600) {
        snprintf(buf, len, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    } else if (s < 86400) {
        snprintf(buf, len, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    } else {
        snprintf(buf, len, "%lldd%02lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
    }
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            printf("\\%c", ch);
        } else if (ch < 0x20) {
            printf("\\u%04x", ch);
        } else {
            putchar(ch);
        }
    }
    putchar('"');
}

int cli_cmd_status(cli *c)
{
    if (c->argc > 0) {
        fprintf(stderr, "fresco: status: unexpected \"%s\" (fresco --help lists the options)\n",
                c->argv[0]);
        return 2;
    }
    if (c->only != NULL) {
        for (const char *p = c->only; *p != '\0';) {
            size_t len = strcspn(p, ",");
            bool known = false;
            for (size_t i = 0; i < cli_nservices; i++) {
                known |= strlen(cli_services[i].name) == len &&
                         strncmp(cli_services[i].name, p, len) == 0;
            }
            if (!known) {
                fprintf(stderr, "fresco: status: unknown service \"%.*s\" in --only\n", (int)len,
                        p);
                return 2;
            }
            p += len + (p[len] == ',');
        }
    }
    status_row rows[8];
    size_t n = 0;
    for (size_t i = 0; i < cli_nservices; i++) {
        const char *addr = cli_address(c, cli_services[i].name);
        if (addr == NULL || !wanted(c->only, cli_services[i].name)) {
            continue;
        }
        memset(&rows[n], 0, sizeof(rows[n]));
        rows[n].c = c;
        rows[n].service = cli_services[i].name;
        rows[n].address = addr;
        if (pthread_create(&rows[n].thread, NULL, status_query, &rows[n]) != 0) {
            status_query(&rows[n]);
            rows[n].thread = 0;
        }
        n++;
    }
    int down = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].thread != 0) {
            pthread_join(rows[i].thread, NULL);
        }
        down += rows[i].rv != 0;
    }
    if (c->json) {
        printf("[");
        for (size_t i = 0; i < n; i++) {
            printf("%s{\"service\":", i ? "," : "");
            json_string(rows[i].service);
            printf(",\"address\":");
            json_string(rows[i].address);
            printf(",\"up\":%s,", rows[i].rv == 0 ? "true" : "false");
            if (rows[i].rv == 0) {
                printf("\"status\":");
                fr_node_write_json(rows[i].res.result, stdout);
            } else {
                printf("\"error\":");
                json_string(rows[i].why);
            }
            printf("}");
        }
        printf("]\n");
    } else {
        printf("%-10s %-28s %-5s %-8s %-16s %-8s %s\n", "SERVICE", "ADDRESS", "STATE", "VERSION",
               "NODE", "PID", "UPTIME");
        for (size_t i = 0; i < n; i++) {
            status_row *r = &rows[i];
            if (r->rv != 0) {
                printf("%-10s %-28s %-5s %s\n", r->service, r->address, "down", r->why);
                continue;
            }
            const char *version = "?", *node = "?";
            int64_t pid = 0, up = 0;
            fr_node_get_str(r->res.result, "version", &version);
            fr_node_get_str(r->res.result, "node", &node);
            fr_node_get_i64(r->res.result, "pid", &pid);
            fr_node_get_i64(r->res.result, "uptime_ms", &up);
            char upt[32];
            format_uptime(upt, sizeof(upt), up);
            printf("%-10s %-28s %-5s %-8s %-16s %-8lld %s\n", r->service, r->address, "up", version,
                   node, (long long)pid, upt);
        }
    }
    for (size_t i = 0; i < n; i++) {
        fr_ctl_result_free(&rows[i].res);
    }
    if (n == 0) {
        fprintf(stderr, "fresco: status: no service configured\n");
        return 2;
    }
    return down == 0 ? 0 : 1;
}
