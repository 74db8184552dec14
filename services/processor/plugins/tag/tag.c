/* tag: adds the configured tags to every metric (snap's tag processor),
 * replacing a tag of the same key. The tags are given as snap wrote them,
 * `tags: "rack1:rack,datacenter:dublin"` (key left of ':'), or as a map,
 * `tags: {rack: r1}`; a malformed pair is a config error naming it, where
 * snap dropped it silently. Batch-level tags are left as they are.
 *
 * Each output metric shares the input's strings and gets a merged tag
 * array in the output batch whose new strings live in the instance. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/pipeline.h"

typedef struct tag_pair {
    char *key, *value;
} tag_pair;

typedef struct tag_config {
    char *tags;    /* the string form, as written */
    tag_pair *map; /* the map form (config_map), in the order written */
    uint32_t nmap;
    bool have_map;
} tag_config;

static const fr_cfg_field tag_fields[] = {
    {"tags", FR_CFG_STRING, NULL, offsetof(tag_config, tags),
     "tags to add, \"key:value,key:value\" (snap's form) or a map {key: value}", 0, 0, NULL},
};

typedef struct tag_state {
    fr_tag *tags;
    uint32_t ntags;
    char *strings; /* every key and value, NUL-separated */
} tag_state;

static void tag_config_free(void *config)
{
    tag_config *c = config;
    for (uint32_t i = 0; i < c->nmap; i++) {
        free(c->map[i].key);
        free(c->map[i].value);
    }
    free(c->map);
    c->map = NULL;
    c->nmap = 0;
}

static int tag_config_map(void *config, const char *key, const fr_mf_map *value, fr_error *err)
{
    tag_config *c = config;
    if (strcmp(key, "tags") != 0) {
        return FR_EUNKNOWN;
    }
    if (c->have_map) {
        return fr_error_set(err, FR_ECONFIG, NULL, "tags given twice");
    }
    c->have_map = true;
    if (value->n > FR_MAX_TAGS) {
        return fr_error_set(err, FR_ECONFIG, NULL, "%zu tags, more than the %u a metric may carry",
                            value->n, FR_MAX_TAGS);
    }
    c->map = calloc(value->n > 0 ? value->n : 1, sizeof(*c->map));
    if (c->map == NULL) {
        return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
    }
    for (size_t i = 0; i < value->n; i++) {
        const fr_mf_entry *e = &value->v[i];
        if (e->key[0] == '\0') {
            return fr_error_set(err, FR_ECONFIG, NULL, "tag %zu has an empty key", i + 1);
        }
        if (e->value.type == FR_MF_MAP) {
            return fr_error_set(err, FR_ECONFIG, NULL,
                                "tag '%.64s': a tag value is a string, not a map", e->key);
        }
        if (e->value.type == FR_MF_NULL || e->value.text[0] == '\0') {
            return fr_error_set(err, FR_ECONFIG, NULL, "tag '%.64s' has an empty value", e->key);
        }
        c->map[i].key = strdup(e->key);
        c->map[i].value = strdup(e->value.text);
        c->nmap++;
        if (c->map[i].key == NULL || c->map[i].value == NULL) {
            return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
        }
    }
    return 0;
}

static void tag_destroy(void *state)
{
    tag_state *s = state;
    if (s == NULL) {
        return;
    }
    free(s->tags);
    free(s->strings);
    free(s);
}

/* Trims spaces and tabs from both ends of [*a, *b). */
static void tag_trim(const char **a, const char **b)
{
    while (*a < *b && (**a == ' ' || **a == '\t')) {
        (*a)++;
    }
    while (*b > *a && ((*b)[-1] == ' ' || (*b)[-1] == '\t')) {
        (*b)--;
    }
}

/* Appends key and value to s (strings already sized to hold them). */
static void tag_push(tag_state *s, char **p, const char *key, size_t klen, const char *value,
                     size_t vlen)
{
    fr_tag *t = &s->tags[s->ntags++];
    memcpy(*p, key, klen);
    (*p)[klen] = '\0';
    t->key = *p;
    t->key_len = (uint32_t)klen;
    *p += klen + 1;
    memcpy(*p, value, vlen);
    (*p)[vlen] = '\0';
    t->value = *p;
    t->value_len = (uint32_t)vlen;
    *p += vlen + 1;
}

/* Parses snap's "key:value,key:value" into s. */
static int tag_parse_string(tag_state *s, const char *text, fr_error *err)
{
    size_t npairs = 1;
    for (const char *c = text; *c != '\0'; c++) {
        npairs += *c == ',';
    }
    if (npairs > FR_MAX_TAGS) {
        return fr_error_set(err, FR_ECONFIG, "tags",
                            "%zu pairs, more than the %u tags a metric "
                            "may carry",
                            npairs, FR_MAX_TAGS);
    }
    s->tags = calloc(npairs, sizeof(*s->tags));
    s->strings = malloc(strlen(text) + npairs + 1);
    if (s->tags == NULL || s->strings == NULL) {
        return fr_error_set(err, FR_ENOMEM, "tags", "out of memory");
    }
    char *p = s->strings;
    const char *pair = text;
    for (uint32_t pos = 1;; pos++) {
        const char *end = strchr(pair, ',');
        if (end == NULL) {
            end = pair + strlen(pair);
        }
        const char *a = pair, *b = end;
        tag_trim(&a, &b);
        int len = (int)(b - a);
        if (a == b) {
            return fr_error_set(err, FR_ECONFIG, "tags",
                                "pair %u is empty (pairs are key:value, separated by ',')", pos);
        }
        const char *colon = memchr(a, ':', (size_t)(b - a));
        if (colon == NULL) {
            return fr_error_set(err, FR_ECONFIG, "tags",
                                "pair %u '%.*s' has no ':' (write key:value)", pos,
                                len > 64 ? 64 : len, a);
        }
        if (memchr(colon + 1, ':', (size_t)(b - colon - 1)) != NULL) {
            return fr_error_set(err, FR_ECONFIG, "tags",
                                "pair %u '%.*s' has more than one ':' (a value with ':' can be "
                                "given in the map form, tags: {key: value})",
                                pos, len > 64 ? 64 : len, a);
        }
        const char *ka = a, *kb = colon, *va = colon + 1, *vb = b;
        tag_trim(&ka, &kb);
        tag_trim(&va, &vb);
        if (ka == kb || va == vb) {
            return fr_error_set(err, FR_ECONFIG, "tags", "pair %u '%.*s' has an empty %s", pos,
                                len > 64 ? 64 : len, a, ka == kb ? "key" : "value");
        }
        for (uint32_t j = 0; j < s->ntags; j++) {
            if (s->tags[j].key_len == (uint32_t)(kb - ka) &&
                memcmp(s->tags[j].key, ka, (size_t)(kb - ka)) == 0) {
                return fr_error_set(err, FR_ECONFIG, "tags",
                                    "pair %u '%.*s': key '%.*s' is given in pair %u already", pos,
                                    len > 64 ? 64 : len, a,
                                    (int)(kb - ka) > 64 ? 64 : (int)(kb - ka), ka, j + 1);
            }
        }
        tag_push(s, &p, ka, (size_t)(kb - ka), va, (size_t)(vb - va));
        if (*end == '\0') {
            return 0;
        }
        pair = end + 1;
    }
}

static int tag_init(void **state, const void *config, fr_error *err)
{
    const tag_config *c = config;
    *state = NULL;
    if (c->tags != NULL && c->have_map) {
        return fr_error_set(err, FR_ECONFIG, "tags", "tags given both as a string and as a map");
    }
    if (c->tags == NULL && c->nmap == 0) {
        return fr_error_set(err, FR_EMISSING, "tags",
                            "no tags: give tags: \"key:value,key:value\" or tags: {key: value}");
    }
    tag_state *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return fr_error_set(err, FR_ENOMEM, "tags", "out of memory");
    }
    int rv = 0;
    if (c->tags != NULL) {
        rv = tag_parse_string(s, c->tags, err);
    } else {
        size_t bytes = 0;
        for (uint32_t i = 0; i < c->nmap; i++) {
            bytes += strlen(c->map[i].key) + strlen(c->map[i].value) + 2;
        }
        s->tags = calloc(c->nmap, sizeof(*s->tags));
        s->strings = malloc(bytes);
        if (s->tags == NULL || s->strings == NULL) {
            rv = fr_error_set(err, FR_ENOMEM, "tags", "out of memory");
        }
        char *p = s->strings;
        for (uint32_t i = 0; rv == 0 && i < c->nmap; i++) {
            tag_push(s, &p, c->map[i].key, strlen(c->map[i].key), c->map[i].value,
                     strlen(c->map[i].value));
        }
    }
    if (rv != 0) {
        tag_destroy(s);
        return rv;
    }
    *state = s;
    return 0;
}

static int tag_process(void *state, const fr_process_req *req, fr_error *err)
{
    const tag_state *s = state;
    const fr_batch *in = req->in;
    for (uint32_t i = 0; i < in->nmetrics; i++) {
        fr_metric *m = fr_batch_add_ref(req->out, &in->metrics[i]);
        if (m == NULL) {
            return fr_error_set(err, FR_ENOMEM, NULL, "out of memory");
        }
        int rv = fr_batch_metric_merge_tags(req->out, m, s->tags, s->ntags);
        if (rv == FR_ETOOBIG) {
            return fr_error_set(err, rv, NULL, "metric %u (%.200s) would carry more than %u tags",
                                i, m->ns, FR_MAX_TAGS);
        }
        if (rv != 0) {
            return fr_error_set(err, rv, NULL, "out of memory");
        }
    }
    return 0;
}

const fr_processor_plugin fr_processor_tag = {
    .abi = FR_PROCESSOR_ABI,
    .name = "tag",
    .version = 1,
    .description = "adds tags to every metric",
    .config =
        {
            .fields = tag_fields,
            .nfields = sizeof(tag_fields) / sizeof(tag_fields[0]),
            .config_size = sizeof(tag_config),
            .config_map = tag_config_map,
            .config_free = tag_config_free,
        },
    .init = tag_init,
    .process = tag_process,
    .destroy = tag_destroy,
};
