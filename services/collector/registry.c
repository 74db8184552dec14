/* The collector's plugin registry. */
#include "registry.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/log.h"

typedef struct reg_entry {
    const fr_collector_plugin *p;
    bool builtin;
    char *path;   /* loaded: the shared object */
    void *handle; /* loaded: dlopen handle */
    int refs;     /* task instances using it */
} reg_entry;

struct registry {
    pthread_rwlock_t lock;
    reg_entry *v;
    size_t n, cap;
};

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s != NULL ? s : "", n);
}

static size_t count_stars(const char *ns)
{
    size_t n = 0;
    for (const char *e = ns; (e = strstr(e, "/*")) != NULL; e += 2) {
        if (e[2] == '/' || e[2] == '\0') {
            n++;
        }
    }
    return n;
}

int registry_check_plugin(const fr_collector_plugin *p, fr_error *err)
{
    if (p == NULL) {
        return fr_error_set(err, FR_EINVAL, "", "no plugin description");
    }
    if (p->abi != FR_PLUGIN_ABI) {
        return fr_error_set(err, FR_EUNSUPPORTED, "abi", "plugin ABI %u, this collector speaks %u",
                            p->abi, FR_PLUGIN_ABI);
    }
    if (p->name == NULL || p->name[0] == '\0' || strlen(p->name) > 64 ||
        strspn(p->name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(p->name)) {
        return fr_error_set(err, FR_EINVAL, "name", "plugin name must be 1-64 of [a-z0-9_]");
    }
    if (p->init == NULL || p->collect == NULL || p->destroy == NULL) {
        return fr_error_set(err, FR_EINVAL, p->name, "plugin %s lacks init, collect or destroy",
                            p->name);
    }
    if (p->ns_prefix == NULL || p->ns_prefix[0] != '/') {
        return fr_error_set(err, FR_EINVAL, p->name, "plugin %s: ns_prefix must start with /",
                            p->name);
    }
    if (p->ncatalog == 0 || p->catalog == NULL) {
        return fr_error_set(err, FR_EINVAL, p->name, "plugin %s offers no metrics", p->name);
    }
    for (size_t i = 0; i < p->ncatalog; i++) {
        const fr_metric_info *m = &p->catalog[i];
        if (m->ns == NULL || m->ns[0] != '/') {
            return fr_error_set(err, FR_EINVAL, p->name, "plugin %s: catalog[%zu] has no namespace",
                                p->name, i);
        }
        if (count_stars(m->ns) != m->ndyn) {
            return fr_error_set(err, FR_EINVAL, m->ns,
                                "plugin %s: %s has %zu dynamic elements but names %zu", p->name,
                                m->ns, count_stars(m->ns), m->ndyn);
        }
        if ((int)m->type < FR_VAL_INT64 || (int)m->type > FR_VAL_STRING) {
            return fr_error_set(err, FR_EINVAL, m->ns, "plugin %s: %s has an unknown type", p->name,
                                m->ns);
        }
    }
    for (size_t i = 0; i < p->npolicy; i++) {
        for (size_t j = i + 1; j < p->npolicy; j++) {
            if (strcmp(p->policy[i].key, p->policy[j].key) == 0) {
                return fr_error_set(err, FR_EINVAL, p->policy[i].key,
                                    "plugin %s: config key %s declared twice", p->name,
                                    p->policy[i].key);
            }
        }
    }
    return 0;
}

static int reg_add(registry *r, const reg_entry *e)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        reg_entry *v = realloc(r->v, cap * sizeof(*v));
        if (v == NULL) {
            return FR_ENOMEM;
        }
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n++] = *e;
    return 0;
}

static reg_entry *reg_find(registry *r, const char *name)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->v[i].p->name, name) == 0) {
            return &r->v[i];
        }
    }
    return NULL;
}

registry *registry_new(void)
{
    registry *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return NULL;
    }
    pthread_rwlock_init(&r->lock, NULL);
    for (size_t i = 0; i < fr_builtin_ncollectors; i++) {
        fr_error err;
        fr_error_clear(&err);
        const fr_collector_plugin *p = fr_builtin_collectors[i];
        if (registry_check_plugin(p, &err) != 0) {
            fr_error("plugins", "built-in plugin skipped: %s: %s", err.where, err.message);
            continue;
        }
        reg_entry e = {.p = p, .builtin = true};
        if (reg_add(r, &e) != 0) {
            registry_destroy(r);
            return NULL;
        }
    }
    return r;
}

void registry_destroy(registry *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].handle != NULL) {
            dlclose(r->v[i].handle);
        }
        free(r->v[i].path);
    }
    free(r->v);
    pthread_rwlock_destroy(&r->lock);
    free(r);
}

int registry_load(registry *r, const char *path, const char **name, fr_error *err)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        return fr_error_set(err, FR_ENOTFOUND, path, "cannot load %s: %s", path, dlerror());
    }
    const fr_collector_plugin *p = dlsym(h, "fresco_collector_plugin");
    if (p == NULL) {
        dlclose(h);
        return fr_error_set(err, FR_EINVAL, path, "%s does not export fresco_collector_plugin",
                            path);
    }
    int rv = registry_check_plugin(p, err);
    if (rv != 0) {
        dlclose(h);
        return rv;
    }
    pthread_rwlock_wrlock(&r->lock);
    if (reg_find(r, p->name) != NULL) {
        pthread_rwlock_unlock(&r->lock);
        dlclose(h);
        return fr_error_set(err, FR_EEXIST, path, "a plugin named %s is loaded already", p->name);
    }
    reg_entry e = {.p = p, .builtin = false, .path = strdup(path), .handle = h};
    if (e.path == NULL || (rv = reg_add(r, &e)) != 0) {
        pthread_rwlock_unlock(&r->lock);
        free(e.path);
        dlclose(h);
        return FR_ENOMEM;
    }
    *name = p->name;
    pthread_rwlock_unlock(&r->lock);
    fr_info("plugins", "loaded %s %u from %s", p->name, p->version, path);
    return 0;
}

int registry_unload(registry *r, const char *name, fr_error *err)
{
    pthread_rwlock_wrlock(&r->lock);
    reg_entry *e = reg_find(r, name);
    int rv = 0;
    if (e == NULL) {
        rv = fr_error_set(err, FR_ENOTFOUND, name, "no plugin named %s", name);
    } else if (e->builtin) {
        rv = fr_error_set(err, FR_EINVAL, name, "%s is built in and cannot be unloaded", name);
    } else if (e->refs > 0) {
        rv = fr_error_set(err, FR_EBUSY, name, "%s is used by %d task(s): remove them first", name,
                          e->refs);
    } else {
        dlclose(e->handle);
        free(e->path);
        *e = r->v[--r->n];
        fr_info("plugins", "unloaded %s", name);
    }
    pthread_rwlock_unlock(&r->lock);
    return rv;
}

const fr_collector_plugin *registry_acquire_by_name(registry *r, const char *name)
{
    pthread_rwlock_wrlock(&r->lock);
    reg_entry *e = reg_find(r, name);
    const fr_collector_plugin *p = NULL;
    if (e != NULL) {
        e->refs++;
        p = e->p;
    }
    pthread_rwlock_unlock(&r->lock);
    return p;
}

void registry_release(registry *r, const fr_collector_plugin *p)
{
    if (p == NULL) {
        return;
    }
    pthread_rwlock_wrlock(&r->lock);
    for (size_t i = 0; i < r->n; i++) {
        if (r->v[i].p == p && r->v[i].refs > 0) {
            r->v[i].refs--;
            break;
        }
    }
    pthread_rwlock_unlock(&r->lock);
}

int registry_each(registry *r,
                  int (*fn)(void *arg, const fr_collector_plugin *p, bool builtin,
                            const char *path),
                  void *arg)
{
    int rv = 0;
    pthread_rwlock_rdlock(&r->lock);
    for (size_t i = 0; i < r->n && rv == 0; i++) {
        rv = fn(arg, r->v[i].p, r->v[i].builtin, r->v[i].path);
    }
    pthread_rwlock_unlock(&r->lock);
    return rv;
}

void registry_pack_list(registry *r, msgpack_packer *pk)
{
    pthread_rwlock_rdlock(&r->lock);
    msgpack_pack_array(pk, r->n);
    for (size_t i = 0; i < r->n; i++) {
        const reg_entry *e = &r->v[i];
        msgpack_pack_map(pk, 8);
        pack_str(pk, "name");
        pack_str(pk, e->p->name);
        pack_str(pk, "version");
        msgpack_pack_uint32(pk, e->p->version);
        pack_str(pk, "description");
        pack_str(pk, e->p->description);
        pack_str(pk, "ns_prefix");
        pack_str(pk, e->p->ns_prefix);
        pack_str(pk, "builtin");
        if (e->builtin) {
            msgpack_pack_true(pk);
        } else {
            msgpack_pack_false(pk);
        }
        pack_str(pk, "path");
        pack_str(pk, e->path != NULL ? e->path : "");
        pack_str(pk, "metrics");
        msgpack_pack_uint64(pk, e->p->ncatalog);
        pack_str(pk, "tasks");
        msgpack_pack_int(pk, e->refs);
    }
    pthread_rwlock_unlock(&r->lock);
}

/* "/intel/libvirt/ * /cpu/cputime" with dyn {domain} -> "/intel/libvirt/[domain]/cpu/cputime" */
static void display_ns(const fr_metric_info *m, char *out, size_t cap)
{
    size_t o = 0, d = 0;
    for (const char *s = m->ns; *s != '\0' && o + 1 < cap;) {
        if (s[0] == '*' && s > m->ns && s[-1] == '/' && (s[1] == '/' || s[1] == '\0') &&
            d < m->ndyn) {
            int n = snprintf(out + o, cap - o, "[%s]", m->dyn[d++].name);
            o += n > 0 ? (size_t)n : 0;
            s++;
        } else {
            out[o++] = *s++;
        }
    }
    out[o < cap ? o : cap - 1] = '\0';
}

int registry_pack_catalog(registry *r, const char *query, msgpack_packer *pk, fr_error *err)
{
    fr_ns_query *q = NULL;
    if (query != NULL && query[0] != '\0') {
        q = fr_ns_query_new();
        if (q == NULL) {
            return FR_ENOMEM;
        }
        /* A plain prefix lists everything below it, as snaptel does. */
        char buf[1024];
        size_t len = strlen(query);
        bool has_glob = strchr(query, '*') != NULL || strchr(query, '(') != NULL;
        snprintf(buf, sizeof(buf), "%s%s", query,
                 has_glob || (len > 0 && query[len - 1] == '/') ? "" : "/*");
        if (!has_glob && len > 0 && query[len - 1] == '/') {
            snprintf(buf, sizeof(buf), "%s*", query);
        }
        int rv = fr_ns_query_add(q, buf, err);
        if (rv == 0 && !has_glob) {
            rv = fr_ns_query_add(q, query, err);
        }
        if (rv != 0) {
            fr_ns_query_destroy(q);
            return rv;
        }
    }
    pthread_rwlock_rdlock(&r->lock);
    size_t count = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            msgpack_pack_array(pk, count);
        }
        for (size_t i = 0; i < r->n; i++) {
            const fr_collector_plugin *p = r->v[i].p;
            for (size_t j = 0; j < p->ncatalog; j++) {
                const fr_metric_info *m = &p->catalog[j];
                bool hit = q == NULL;
                for (size_t k = 0; !hit && k < fr_ns_query_count(q); k++) {
                    hit = fr_ns_query_covers_pattern(q, k, m->ns);
                }
                if (!hit) {
                    continue;
                }
                if (pass == 0) {
                    count++;
                    continue;
                }
                char shown[1024];
                display_ns(m, shown, sizeof(shown));
                msgpack_pack_map(pk, 7);
                pack_str(pk, "namespace");
                pack_str(pk, shown);
                pack_str(pk, "pattern");
                pack_str(pk, m->ns);
                pack_str(pk, "plugin");
                pack_str(pk, p->name);
                pack_str(pk, "type");
                pack_str(pk, fr_value_type_name(m->type));
                pack_str(pk, "unit");
                pack_str(pk, m->unit);
                pack_str(pk, "description");
                pack_str(pk, m->description);
                pack_str(pk, "dynamic");
                msgpack_pack_array(pk, m->ndyn);
                for (size_t d = 0; d < m->ndyn; d++) {
                    msgpack_pack_map(pk, 2);
                    pack_str(pk, "name");
                    pack_str(pk, m->dyn[d].name);
                    pack_str(pk, "description");
                    pack_str(pk, m->dyn[d].description);
                }
            }
        }
    }
    pthread_rwlock_unlock(&r->lock);
    fr_ns_query_destroy(q);
    return 0;
}
