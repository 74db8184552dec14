/* Processor and sink plugins' node configs: the policy table applied as a
 * config spec to the node's config map, so a task's process and publish
 * config gets the same parsing and messages as a service's config file. */
#include "fresco/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies src into dst[cap], cut short when it does not fit. */
static void copy_cut(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap) {
        n = cap - 1;
    }
    memmove(dst, src, n);
    dst[n] = '\0';
}

/* snap's plugins spell config keys in camelCase (BufLength, procPath);
 * fresco's tables in snake_case. A key with capitals is read as its
 * snake_case form: "BufLength" -> "buf_length". */
static const char *node_key(const char *key, char *buf, size_t cap)
{
    bool upper = false;
    for (const char *c = key; *c != '\0' && !upper; c++) {
        upper = *c >= 'A' && *c <= 'Z';
    }
    if (!upper) {
        return key;
    }
    size_t n = 0;
    for (size_t i = 0; key[i] != '\0' && n + 2 < cap; i++) {
        char c = key[i];
        if (c >= 'A' && c <= 'Z') {
            bool after_lower = i > 0 && ((key[i - 1] >= 'a' && key[i - 1] <= 'z') ||
                                         (key[i - 1] >= '0' && key[i - 1] <= '9'));
            if (after_lower) {
                buf[n++] = '_';
            }
            c = (char)(c - 'A' + 'a');
        }
        buf[n++] = c;
    }
    buf[n] = '\0';
    return buf;
}

static fr_cfg_spec node_spec(const fr_node_policy *p, const char *plugin)
{
    return (fr_cfg_spec){plugin, p->fields, p->nfields};
}

void fr_node_config_free(const fr_node_policy *p, void *config)
{
    if (config == NULL) {
        return;
    }
    if (p != NULL) {
        if (p->config_free != NULL) {
            p->config_free(config);
        }
        fr_cfg_spec spec = node_spec(p, "");
        fr_config_free(&spec, config);
    }
    free(config);
}

int fr_node_config_load(const fr_node_policy *p, const char *plugin, const fr_mf_map *config,
                        const char *node_path, void **out, fr_error *err)
{
    fr_error_clear(err);
    *out = NULL;
    fr_cfg_spec spec = node_spec(p, plugin);
    void *obj = calloc(1, p->config_size != 0 ? p->config_size : 1);
    if (obj == NULL) {
        return fr_error_set(err, FR_ENOMEM, node_path, "out of memory");
    }
    char where[sizeof(err->where)];
    snprintf(where, sizeof(where), "%s.config", node_path);
    int rv = fr_config_defaults(&spec, obj, err);
    /* Scalars first, so a map handler sees the scalar settings. */
    for (size_t i = 0; rv == 0 && config != NULL && i < config->n; i++) {
        const fr_mf_entry *e = &config->v[i];
        if (e->value.type == FR_MF_MAP) {
            continue;
        }
        snprintf(where, sizeof(where), "%s.config.%s", node_path, e->key);
        char kbuf[128];
        rv = fr_config_set(&spec, obj, node_key(e->key, kbuf, sizeof(kbuf)),
                           e->value.type == FR_MF_NULL ? NULL : e->value.text, where, err);
    }
    for (size_t i = 0; rv == 0 && config != NULL && i < config->n; i++) {
        const fr_mf_entry *e = &config->v[i];
        if (e->value.type != FR_MF_MAP) {
            continue;
        }
        snprintf(where, sizeof(where), "%s.config.%s", node_path, e->key);
        char kbuf[128];
        const char *key = node_key(e->key, kbuf, sizeof(kbuf));
        rv = p->config_map != NULL ? p->config_map(obj, key, &e->value.map, err) : FR_EUNKNOWN;
        if (rv == FR_EUNKNOWN) {
            rv = fr_error_set(err, FR_EUNKNOWN, where, "%s: key '%s' takes no map", plugin, e->key);
        } else if (rv != 0) {
            char msg[sizeof(err->message)];
            copy_cut(msg, sizeof(msg), err->message[0] ? err->message : fr_strerror(rv));
            fr_error_set(err, rv, where, "%s: key '%s': %s", plugin, e->key, msg);
        }
    }
    if (rv != 0) {
        fr_node_config_free(p, obj);
        return rv;
    }
    *out = obj;
    return 0;
}

void fr_node_error_locate(fr_error *err, const char *plugin, const char *node_path)
{
    if (err == NULL) {
        return;
    }
    char where[2 * sizeof(err->where)];
    char msg[2 * sizeof(err->message)];
    if (err->where[0] != '\0') {
        snprintf(where, sizeof(where), "%s.config.%s", node_path, err->where);
    } else {
        copy_cut(where, sizeof(where), node_path);
    }
    snprintf(msg, sizeof(msg), "%s: %s", plugin,
             err->message[0] ? err->message : fr_strerror(err->code));
    copy_cut(err->where, sizeof(err->where), where);
    copy_cut(err->message, sizeof(err->message), msg);
}

bool fr_sink_retryable(int rv)
{
    switch (rv) {
    case FR_EINVAL:
    case FR_ETYPE:
    case FR_ETOOBIG:
    case FR_EUNSUPPORTED:
    case FR_ETRUNC:
    case FR_EDEPTH:
    case FR_ETRAILING:
    case FR_EMISSING:
    case FR_EUNKNOWN:
    case FR_EDUP:
        return false;
    default:
        return rv != 0;
    }
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void fr_plugin_entry_pack(msgpack_packer *pk, const char *name, uint32_t version,
                          const char *description, const fr_node_policy *config)
{
    msgpack_pack_map(pk, 4);
    pack_str(pk, "name");
    pack_str(pk, name);
    pack_str(pk, "version");
    msgpack_pack_uint32(pk, version);
    pack_str(pk, "description");
    pack_str(pk, description != NULL ? description : "");
    pack_str(pk, "config");
    msgpack_pack_array(pk, config->nfields);
    for (size_t k = 0; k < config->nfields; k++) {
        const fr_cfg_field *f = &config->fields[k];
        msgpack_pack_map(pk, 3);
        pack_str(pk, "key");
        pack_str(pk, f->key);
        pack_str(pk, "default");
        pack_str(pk, f->def != NULL ? f->def : "");
        pack_str(pk, "help");
        pack_str(pk, f->help != NULL ? f->help : "");
    }
}

void fr_names_join(char *out, size_t cap, size_t n, const char *(*name)(size_t i))
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && off + 1 < cap; i++) {
        int w = snprintf(out + off, cap - off, "%s%s", i ? ", " : "", name(i));
        off += w > 0 ? (size_t)w : 0;
    }
}
