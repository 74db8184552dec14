/* fr_ctl_request_decode, which every control server runs on every request.
 * A request that decodes must encode again with fr_ctl_request_encode and
 * decode to the same op and args. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "fresco/ctl.h"

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fr_doc doc = {0};
    const char *op;
    const fr_node *args;
    fr_error err;
    if (fr_ctl_request_decode(data, size, &doc, &op, &args, &err) != 0) {
        if (doc.root != NULL || op != NULL || err.code >= 0) {
            abort();
        }
        fr_doc_free(&doc);
        return 0;
    }
    if (op == NULL || args == NULL || args->type != FR_NODE_MAP) {
        abort();
    }
    msgpack_sbuffer a1, a2;
    pack(args, &a1);
    fr_buf req = FR_BUF_INIT;
    if (fr_ctl_request_encode(op, a1.data, a1.size, &req) != 0) {
        abort();
    }
    fr_doc doc2 = {0};
    const char *op2;
    const fr_node *args2;
    if (fr_ctl_request_decode(req.data, req.len, &doc2, &op2, &args2, &err) != 0 ||
        strcmp(op, op2) != 0) {
        abort();
    }
    pack(args2, &a2);
    if (a1.size != a2.size || memcmp(a1.data, a2.data, a1.size) != 0) {
        abort();
    }
    msgpack_sbuffer_destroy(&a1);
    msgpack_sbuffer_destroy(&a2);
    fr_buf_free(&req);
    fr_doc_free(&doc2);
    fr_doc_free(&doc);
    return 0;
}
