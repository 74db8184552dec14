/* The yarn plugin's readers of untrusted input on anything: the JSON
 * reader and the chunked-body decoder. A parse that succeeds must give a
 * well-formed tree (every child reachable once, counts matching, strings
 * terminated); one that fails must say why and leave nothing behind. The
 * chunked decoder must give the same answer fed whole or in two parts,
 * and never produce more bytes than it was given. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "yarn/http_get.h"
#include "yarn/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_tree(const yarn_json_doc *doc)
{
    uint32_t seen = 0;
    for (uint32_t i = 0; i < doc->nnodes; i++) {
        const yarn_json_node *n = &doc->nodes[i];
        if (n->type == YARN_JSON_STRING && n->s[n->len] != '\0') {
            abort();
        }
        if (n->key != NULL && n->key[n->key_len] != '\0') {
            abort();
        }
        if (n->type != YARN_JSON_ARRAY && n->type != YARN_JSON_OBJECT) {
            continue;
        }
        uint32_t count = 0;
        for (const yarn_json_node *c = yarn_json_first(doc, n); c != NULL;
             c = yarn_json_next(doc, c)) {
            if ((c->key != NULL) != (n->type == YARN_JSON_OBJECT)) {
                abort();
            }
            if (n->type == YARN_JSON_OBJECT && yarn_json_get(doc, n, c->key) == NULL &&
                strlen(c->key) == c->key_len) {
                abort();
            }
            count++;
        }
        if (count != n->count) {
            abort();
        }
        seen += count;
    }
    if (seen + 1 != doc->nnodes) {
        abort();
    }
}

static void check_chunks(const uint8_t *data, size_t size)
{
    char *whole = malloc(size + 1);
    char *parts = malloc(size + 1);
    if (whole == NULL || parts == NULL) {
        abort();
    }
    memcpy(whole, data, size);
    memcpy(parts, data, size);
    yarn_chunks a = {0}, b = {0};
    int ra = yarn_chunks_scan(&a, whole, size);
    int rb = yarn_chunks_scan(&b, parts, size / 2);
    if (rb == 0) {
        rb = yarn_chunks_scan(&b, parts, size);
    }
    if (ra != rb || (ra == 1 && a.pos != b.pos)) {
        abort();
    }
    if (ra == 1) {
        size_t n = yarn_chunks_join(&a, whole);
        if (n > a.pos) {
            abort();
        }
    }
    free(whole);
    free(parts);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    yarn_json_doc doc;
    fr_error err;
    fr_error_clear(&err);
    int rv = yarn_json_parse((const char *)data, size, &doc, &err);
    if (rv != 0) {
        if (doc.nodes != NULL || doc.strings != NULL || err.message[0] == '\0') {
            abort();
        }
    } else {
        if (doc.nnodes == 0 || yarn_json_root(&doc) == NULL) {
            abort();
        }
        check_tree(&doc);
        yarn_json_free(&doc);
    }
    check_chunks(data, size);
    return 0;
}
