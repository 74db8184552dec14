/* filter: keeps the metrics whose namespace matches an include pattern
 * (every metric when there is none) and no exclude pattern. Patterns are
 * snap's namespace queries (fresco/ns.h): exact elements, "*" for one
 * element (as the last one, for everything below), "(a;b)" for any of a
 * list. Kept metrics share the input's strings. */
#include <stdlib.h>
#include <string.h>

#include "fresco/ns.h"
#include "fresco/pipeline.h"

typedef struct filter_config {
    fr_strlist include;
    fr_strlist exclude;
} filter_config;

static const fr_cfg_field filter_fields[] = {
    {"include", FR_CFG_LIST, NULL, offsetof(filter_config, include),
     "namespace patterns to keep, comma-separated; none keeps every metric", 0, 0, NULL},
    {"exclude", FR_CFG_LIST, NULL, offsetof(filter_config, exclude),
     "namespace patterns to drop, comma-separated; applied after include", 0, 0, NULL},
};

typedef struct filter_state {
    fr_ns_query *include; /* NULL: keep every metric */
    fr_ns_query *exclude; /* NULL: drop none */
    uint64_t kept, dropped;
} filter_state;

static void filter_destroy(void *state)
{
    filter_state *s = state;
    if (s == NULL) {
        return;
    }
    fr_ns_query_destroy(s->include);
    fr_ns_query_destroy(s->exclude);
    free(s);
}

/* Compiles the patterns of key into *q (left NULL when there are none). */
static int filter_compile(const fr_strlist *l, const char *key, fr_ns_query **q, fr_error *err)
{
    if (l->n == 0) {
        return 0;
    }
    if ((*q = fr_ns_query_new()) == NULL) {
        return fr_error_set(err, FR_ENOMEM, key, "out of memory");
    }
    for (size_t i = 0; i < l->n; i++) {
        fr_error why;
        fr_error_clear(&why);
        int rv = fr_ns_query_add(*q, l->v[i], &why);
        if (rv != 0) {
            return fr_error_set(err, rv, key, "key '%s': pattern %zu '%.100s': %s", key, i + 1,
                                l->v[i], why.message[0] ? why.message : fr_strerror(rv));
        }
    }
    return 0;
}

static int filter_init(void **state, const void *config, fr_error *err)
{
    const filter_config *c = config;
    *state = NULL;
    filter_state *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    int rv = filter_compile(&c->include, "include", &s->include, err);
    if (rv == 0) {
        rv = filter_compile(&c->exclude, "exclude", &s->exclude, err);
    }
    if (rv != 0) {
        filter_destroy(s);
        return rv;
    }
    *state = s;
    return 0;
}

static int filter_process(void *state, const fr_process_req *req, fr_error *err)
{
    filter_state *s = state;
    const fr_batch *in = req->in;
    for (uint32_t i = 0; i < in->nmetrics; i++) {
        const fr_metric *m = &in->metrics[i];
        bool keep = (s->include == NULL || fr_ns_query_match(s->include, m->ns)) &&
                    (s->exclude == NULL || !fr_ns_query_match(s->exclude, m->ns));
        if (!keep) {
            s->dropped++;
            continue;
        }
        if (fr_batch_add_ref(req->out, m) == NULL) {
            return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
        }
        s->kept++;
    }
    return 0;
}

static void filter_stats(void *state, msgpack_packer *pk)
{
    const filter_state *s = state;
    msgpack_pack_map(pk, 2);
    msgpack_pack_str(pk, 4);
    msgpack_pack_str_body(pk, "kept", 4);
    msgpack_pack_uint64(pk, s->kept);
    msgpack_pack_str(pk, 7);
    msgpack_pack_str_body(pk, "dropped", 7);
    msgpack_pack_uint64(pk, s->dropped);
}

const fr_processor_plugin fr_processor_filter = {
    .abi = FR_PROCESSOR_ABI,
    .name = "filter",
    .version = 1,
    .description = "keeps the metrics whose namespace matches include and not exclude",
    .config =
        {
            .fields = filter_fields,
            .nfields = sizeof(filter_fields) / sizeof(filter_fields[0]),
            .config_size = sizeof(filter_config),
        },
    .init = filter_init,
    .process = filter_process,
    .destroy = filter_destroy,
    .stats = filter_stats,
};
