/* Task manifests from anything: the bytes as YAML/JSON text, and as a
 * msgpack document. A manifest that parses must pack, decode, unpack and
 * pack again to the same bytes, and its metric queries are matched against
 * each other; the cron and RFC 3339 parsers get the same bytes as text.
 * Nothing may crash, leak or hang. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "fresco/manifest.h"
#include "fresco/mpdoc.h"
#include "fresco/ns.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* A few variables for $VAR and ${VAR} to find; others are unset. */
    setenv("A", "1s", 1);
    setenv("HOST", "node-1", 1);
    setenv("EMPTY", "", 1);
    return 0;
}

static void pack(const fr_manifest *m, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (fr_manifest_pack(m, &pk) != 0) {
        abort();
    }
}

static void round_trip(const fr_manifest *m)
{
    msgpack_sbuffer a, b;
    fr_doc doc;
    fr_error err;
    fr_manifest *u = NULL;
    pack(m, &a);
    if (fr_doc_decode(a.data, a.size, &doc, &err) != 0 ||
        fr_manifest_unpack(doc.root, &u, &err) != 0) {
        abort(); /* what we wrote, we must read */
    }
    pack(u, &b);
    if (a.size != b.size || memcmp(a.data, b.data, a.size) != 0) {
        abort();
    }
    (void)fr_manifest_validate(u, 0, &err);
    fr_manifest_free(u);
    fr_doc_free(&doc);
    msgpack_sbuffer_destroy(&a);
    msgpack_sbuffer_destroy(&b);
}

/* The manifest's queries, compiled together, asked about each query's
 * text as a namespace, a prefix and a catalog pattern. */
static void queries(const fr_manifest *m)
{
    const fr_mf_map *mx = &m->collect.metrics;
    fr_ns_query *q = fr_ns_query_new();
    if (q == NULL) {
        return;
    }
    for (size_t i = 0; i < mx->n; i++) {
        if (fr_ns_query_add(q, mx->v[i].key, NULL) != 0) {
            abort(); /* the manifest checked them */
        }
    }
    for (size_t i = 0; i < mx->n; i++) {
        const char *k = mx->v[i].key;
        bool exact = strpbrk(k, "*(") == NULL;
        if (exact && !fr_ns_query_match(q, k)) {
            abort(); /* a query with no wildcard matches its own text */
        }
        if (!fr_ns_query_wants_prefix(q, k) && exact) {
            abort();
        }
        for (size_t j = 0; j < mx->n && j < 8; j++) {
            (void)fr_ns_query_covers_pattern(q, j, k);
            (void)fr_ns_match(mx->v[j].key, k);
        }
    }
    fr_ns_query_destroy(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fr_manifest *m = NULL;
    fr_error err;
    if (fr_manifest_parse(data, size, "fuzz.yaml", &m, &err) == 0) {
        round_trip(m);
        queries(m);
        fr_manifest_free(m);
    } else if (m != NULL || err.code == 0 || err.message[0] == '\0') {
        abort(); /* a failure leaves nothing and says why */
    }

    fr_doc doc;
    if (fr_doc_decode(data, size, &doc, &err) == 0) {
        if (fr_manifest_unpack(doc.root, &m, &err) == 0) {
            round_trip(m);
            fr_manifest_free(m);
        }
        fr_doc_free(&doc);
    }

    char *s = malloc(size + 1);
    if (s == NULL) {
        return 0;
    }
    memcpy(s, data, size);
    s[size] = '\0';
    fr_cron c;
    int64_t ns;
    if (fr_cron_parse(s, &c, &err) == 0) {
        int64_t t = 0;
        for (int i = 0; i < 3 && t >= 0; i++) {
            int64_t next = fr_cron_next(&c, t);
            if (next >= 0 && next <= t) {
                abort(); /* strictly after, always */
            }
            t = next;
        }
    }
    if (fr_parse_rfc3339(s, &ns) == 0) {
        char buf[40];
        int64_t back;
        if (fr_format_rfc3339(ns, buf, sizeof(buf)) != 0 || fr_parse_rfc3339(buf, &back) != 0 ||
            back != ns) {
            abort();
        }
    }
    free(s);
    return 0;
}
