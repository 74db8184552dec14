/* fr_doc_decode on anything. What decodes must pack, decode again and pack
 * to the same canonical bytes; JSON output must not fail or hold raw
 * control characters. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "fresco/mpdoc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void pack(const fr_node *n, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (fr_node_pack(n, &pk) != 0) {
        abort();
    }
}

static void check_json(const fr_node *n)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL) {
        return;
    }
    if (fr_node_write_json(n, f) != 0) {
        abort();
    }
    fclose(f);
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)text[i] < 0x20) {
            abort();
        }
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fr_doc doc;
    fr_error err;
    if (fr_doc_decode(data, size, &doc, &err) != 0) {
        if (doc.root != NULL || err.code >= 0 || err.message[0] == '\0') {
            abort();
        }
        fr_doc_free(&doc);
        return 0;
    }
    msgpack_sbuffer first, second;
    pack(doc.root, &first);
    fr_doc again;
    if (fr_doc_decode(first.data, first.size, &again, &err) != 0) {
        abort();
    }
    pack(again.root, &second);
    if (first.size != second.size || memcmp(first.data, second.data, first.size) != 0) {
        abort();
    }
    check_json(doc.root);

    /* The getters on whatever came in. */
    const char *s;
    int64_t i;
    uint64_t u;
    bool b;
    double d;
    (void)fr_node_get_str(doc.root, "op", &s);
    (void)fr_node_get_i64(doc.root, "ts", &i);
    (void)fr_node_get_u64(doc.root, "seq", &u);
    (void)fr_node_get_bool(doc.root, "ok", &b);
    (void)fr_node_get_double(doc.root, "v", &d);

    msgpack_sbuffer_destroy(&first);
    msgpack_sbuffer_destroy(&second);
    fr_doc_free(&again);
    fr_doc_free(&doc);
    return 0;
}
