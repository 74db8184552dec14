#include "plugin_fixture.h"

#include "testsupport.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- fixture trees ---------------------------------------------------- */

static const char *overlay_src; /* nftw() takes no argument for its callback */
static const char *overlay_dst;

static void mkdirs_for(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
                fail_msg("mkdir %s: %s", tmp, strerror(errno));
            }
            *p = '/';
        }
    }
}

static int overlay_one(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (type != FTW_F) {
        return 0;
    }
    char dst[1024];
    snprintf(dst, sizeof(dst), "%s%s", overlay_dst, path + strlen(overlay_src));
    mkdirs_for(dst);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fail_msg("open %s: %s", path, strerror(errno));
    }
    static char data[1 << 20];
    size_t n = fread(data, 1, sizeof(data), f);
    fclose(f);
    if (tst_write_file(dst, data, n) != 0) {
        fail_msg("write %s", dst);
    }
    return 0;
}

void pf_overlay(const char *dir, const char *rel)
{
    char src[1024], sub[512];
    snprintf(sub, sizeof(sub), "tests/collector/fixtures/%s", rel);
    tst_src(src, sizeof(src), sub);
    overlay_src = src;
    overlay_dst = dir;
    if (nftw(src, overlay_one, 16, FTW_PHYS) != 0) {
        fail_msg("cannot copy fixture %s", src);
    }
}

/* ---- configs ---------------------------------------------------------- */

int pf_config_load(const fr_collector_plugin *p, const char *const *kv, void **cfg, fr_error *err)
{
    const char *keys[16], *values[16];
    size_t n = 0;
    for (; kv != NULL && kv[2 * n] != NULL; n++) {
        assert_true(n < 16);
        keys[n] = kv[2 * n];
        values[n] = kv[2 * n + 1];
    }
    char where[128];
    snprintf(where, sizeof(where), "workflow.collect.config.%s", p->ns_prefix);
    return fr_plugin_config_load(p, keys, values, n, where, cfg, err);
}

void *pf_config(const fr_collector_plugin *p, const char *const *kv)
{
    void *cfg;
    fr_error err;
    if (pf_config_load(p, kv, &cfg, &err) != 0) {
        fail_msg("%s config: %s: %s", p->name, err.where, err.message);
    }
    return cfg;
}

void pf_config_free(const fr_collector_plugin *p, void *cfg)
{
    fr_plugin_config_free(p, cfg);
}

/* ---- collecting ------------------------------------------------------- */

int pf_collect(const fr_collector_plugin *p, void *state, const char *const *queries, int64_t now,
               fr_batch **out, fr_error *err)
{
    fr_ns_query *q = fr_ns_query_new();
    assert_non_null(q);
    for (size_t i = 0; queries[i] != NULL; i++) {
        fr_error qe;
        if (fr_ns_query_add(q, queries[i], &qe) != 0) {
            fail_msg("query %s: %s", queries[i], qe.message);
        }
    }
    *out = fr_batch_new("task", "node", 1);
    assert_non_null(*out);
    fr_collect_req req = {.query = q, .now_ns = now, .out = *out};
    fr_error_clear(err);
    int rv = p->collect(state, &req, err);
    fr_ns_query_destroy(q);
    return rv;
}

const fr_metric *pf_find(const fr_batch *b, const char *ns)
{
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        if (strcmp(b->metrics[i].ns, ns) == 0) {
            return &b->metrics[i];
        }
    }
    return NULL;
}

static const fr_metric *find_typed(const fr_batch *b, const char *ns, fr_value_type type)
{
    const fr_metric *m = pf_find(b, ns);
    if (m == NULL) {
        fail_msg("no metric %s among %u", ns, b->nmetrics);
    }
    if (m->value.type != type) {
        fail_msg("%s is a %s, not a %s", ns, fr_value_type_name(m->value.type),
                 fr_value_type_name(type));
    }
    return m;
}

uint64_t pf_u64(const fr_batch *b, const char *ns)
{
    return find_typed(b, ns, FR_VAL_UINT64)->value.v.u;
}

double pf_f64(const fr_batch *b, const char *ns)
{
    return find_typed(b, ns, FR_VAL_DOUBLE)->value.v.d;
}

const char *pf_tag(const fr_metric *m, const char *key)
{
    for (uint32_t i = 0; i < m->ntags; i++) {
        if (strcmp(m->tags[i].key, key) == 0) {
            return m->tags[i].value;
        }
    }
    return NULL;
}

size_t pf_count(const fr_batch *b, const char *query)
{
    size_t n = 0;
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        n += fr_ns_match(query, b->metrics[i].ns);
    }
    return n;
}

/* ---- catalogs --------------------------------------------------------- */

void pf_check_catalog(const fr_collector_plugin *p, const char *const *prefixes)
{
    assert_int_equal(p->abi, FR_PLUGIN_ABI);
    assert_non_null(p->init);
    assert_non_null(p->collect);
    assert_non_null(p->destroy);
    assert_true(p->ncatalog > 0);
    for (size_t i = 0; i < p->ncatalog; i++) {
        const fr_metric_info *m = &p->catalog[i];
        bool under = false;
        for (size_t k = 0; prefixes[k] != NULL; k++) {
            size_t n = strlen(prefixes[k]);
            under = under || (strncmp(m->ns, prefixes[k], n) == 0 && m->ns[n] == '/');
        }
        if (!under) {
            fail_msg("%s: %s is outside its namespaces", p->name, m->ns);
        }
        size_t stars = 0;
        for (const char *s = m->ns; *s != '\0'; s++) {
            stars += *s == '*';
        }
        if (stars != m->ndyn || (stars > 0 && m->dyn == NULL)) {
            fail_msg("%s: %s has %zu '*' but names %zu", p->name, m->ns, stars, m->ndyn);
        }
        for (size_t k = 0; k < m->ndyn; k++) {
            assert_non_null(m->dyn[k].name);
            assert_true(strlen(m->dyn[k].description) > 0);
        }
        assert_non_null(m->unit);
        if (m->description == NULL || strlen(m->description) < 8) {
            fail_msg("%s: %s has no description", p->name, m->ns);
        }
        for (size_t j = i + 1; j < p->ncatalog; j++) {
            if (strcmp(m->ns, p->catalog[j].ns) == 0) {
                fail_msg("%s: %s listed twice", p->name, m->ns);
            }
        }
    }
    for (size_t i = 0; i < p->npolicy; i++) {
        assert_non_null(p->policy[i].help);
        for (size_t j = i + 1; j < p->npolicy; j++) {
            assert_string_not_equal(p->policy[i].key, p->policy[j].key);
        }
    }
}

void pf_check_covered(const fr_collector_plugin *p, const fr_batch *b)
{
    for (uint32_t i = 0; i < b->nmetrics; i++) {
        const fr_metric *m = &b->metrics[i];
        bool offered = false, typed = false;
        for (size_t j = 0; j < p->ncatalog && !typed; j++) {
            const fr_metric_info *c = &p->catalog[j];
            if (!fr_ns_match(c->ns, m->ns)) {
                continue;
            }
            offered = true;
            /* A generic entry (a field newer than the catalog) cannot know
             * the unit of every field it stands for. */
            bool generic = c->ns[strlen(c->ns) - 1] == '*';
            typed = c->type == m->value.type && (generic || strcmp(c->unit, m->unit) == 0);
        }
        if (!offered) {
            fail_msg("%s emitted %s, which its catalog does not offer", p->name, m->ns);
        }
        if (!typed) {
            fail_msg("%s emitted %s as %s '%s', unlike its catalog", p->name, m->ns,
                     fr_value_type_name(m->value.type), m->unit);
        }
    }
}
