/* fresco ping / stats / call: one request to one service. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fresco/clock.h"

int cli_call_service(const cli *c, const char *service, const char *op, const void *args,
                     size_t len, fr_ctl_result *res)
{
    memset(res, 0, sizeof(*res));
    const char *addr = cli_address(c, service);
    if (addr == NULL) {
        fprintf(stderr, "fresco: no address for service \"%s\" (--%s=ADDR)\n", service, service);
        return FR_ENOTFOUND;
    }
    fr_ctl_client *cl = NULL;
    int rv = fr_ctl_client_open(&cl, addr, &c->tls);
    if (rv == 0) {
        rv = fr_ctl_call(cl, op, args, len, (int)c->conf.timeout_ms, res);
        fr_ctl_client_close(cl);
    }
    if (rv == FR_EREMOTE) {
        fprintf(stderr, "fresco: %s: %s: %s%s%s\n", service, res->error_code, res->error_message,
                res->error_where[0] ? " at " : "", res->error_where);
    } else if (rv == FR_ETIMEDOUT) {
        fprintf(stderr, "fresco: %s: no answer from %s: %s\n", service, addr, res->error_message);
    } else if (rv != 0) {
        fprintf(stderr, "fresco: %s: %s: %s\n", service, addr, fr_strerror(rv));
    }
    return rv;
}

static int need_service(const cli *c, const char *verb)
{
    if (c->argc < 1) {
        fprintf(stderr, "fresco: usage: fresco %s SERVICE\n", verb);
        return 2;
    }
    return 0;
}

int cli_cmd_ping(cli *c)
{
    if (need_service(c, "ping") != 0) {
        return 2;
    }
    fr_ctl_result res;
    int64_t t0 = fr_mono_ns();
    int rv = cli_call_service(c, c->argv[0], "ping", NULL, 0, &res);
    if (rv == 0) {
        printf("%s: %s in %.3f ms\n", c->argv[0],
               res.result->type == FR_NODE_STR ? res.result->v.str : "?",
               (double)(fr_mono_ns() - t0) / 1e6);
    }
    fr_ctl_result_free(&res);
    return rv == 0 ? 0 : 1;
}

static void print_counters(const fr_node *map, const char *prefix)
{
    for (uint32_t i = 0; map != NULL && map->type == FR_NODE_MAP && i < map->len; i++) {
        const fr_node *k = &map->v.kv[2 * i], *v = &map->v.kv[2 * i + 1];
        if (v->type == FR_NODE_UINT) {
            printf("%s%-32s %llu\n", prefix, k->v.str, (unsigned long long)v->v.u);
        } else if (v->type == FR_NODE_INT) {
            printf("%s%-32s %lld\n", prefix, k->v.str, (long long)v->v.i);
        } else if (v->type == FR_NODE_FLOAT) {
            printf("%s%-32s %g\n", prefix, k->v.str, v->v.f);
        } else if (v->type == FR_NODE_MAP) {
            char sub[128];
            snprintf(sub, sizeof(sub), "%s%s.", prefix, k->v.str);
            print_counters(v, sub);
        }
    }
}

int cli_cmd_stats(cli *c)
{
    if (need_service(c, "stats") != 0) {
        return 2;
    }
    fr_ctl_result res;
    int rv = cli_call_service(c, c->argv[0], "stats", NULL, 0, &res);
    if (rv == 0) {
        if (c->json) {
            fr_node_write_json(res.result, stdout);
            putchar('\n');
        } else {
            print_counters(fr_node_get(res.result, "counters"), "");
            print_counters(fr_node_get(res.result, "control"), "control.");
        }
    }
    fr_ctl_result_free(&res);
    return rv == 0 ? 0 : 1;
}

/* key=value -> a map entry; true/false become bools, integers and numbers
 * become numbers, anything else a string. */
static void pack_arg(msgpack_packer *pk, const char *kv)
{
    const char *eq = strchr(kv, '=');
    size_t klen = (size_t)(eq - kv);
    msgpack_pack_str(pk, klen);
    msgpack_pack_str_body(pk, kv, klen);
    const char *v = eq + 1;
    char *end = NULL;
    errno = 0;
    long long i = strtoll(v, &end, 10);
    if (*v != '\0' && *end == '\0' && errno == 0) {
        msgpack_pack_int64(pk, i);
        return;
    }
    errno = 0;
    double d = strtod(v, &end);
    if (*v != '\0' && *end == '\0' && errno == 0) {
        msgpack_pack_double(pk, d);
    } else if (strcmp(v, "true") == 0) {
        msgpack_pack_true(pk);
    } else if (strcmp(v, "false") == 0) {
        msgpack_pack_false(pk);
    } else {
        size_t n = strlen(v);
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, v, n);
    }
}

int cli_cmd_call(cli *c)
{
    if (c->argc < 2) {
        fprintf(stderr, "fresco: usage: fresco call SERVICE OP [key=value...]\n");
        return 2;
    }
    for (int i = 2; i < c->argc; i++) {
        if (strchr(c->argv[i], '=') == NULL || c->argv[i][0] == '=') {
            fprintf(stderr, "fresco: call: argument \"%s\" is not key=value\n", c->argv[i]);
            return 2;
        }
    }
    fr_buf args = FR_BUF_INIT;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &args, fr_buf_msgpack_write);
    msgpack_pack_map(&pk, (size_t)(c->argc - 2));
    for (int i = 2; i < c->argc; i++) {
        pack_arg(&pk, c->argv[i]);
    }
    fr_ctl_result res;
    int rv = cli_call_service(c, c->argv[0], c->argv[1], args.data, args.len, &res);
    if (rv == 0) {
        fr_node_write_json(res.result, stdout);
        putchar('\n');
    }
    fr_ctl_result_free(&res);
    fr_buf_free(&args);
    return rv == 0 ? 0 : 1;
}

const char *cli_str(const fr_node *n, const char *key)
{
    const char *s = "";
    fr_node_get_str(n, key, &s);
    return s;
}

unsigned long long cli_u64(const fr_node *n, const char *key)
{
    uint64_t v = 0;
    fr_node_get_u64(n, key, &v);
    return (unsigned long long)v;
}
