/* fr_event_decode, which every subscriber runs on every message. An event
 * that decodes must encode again with fr_event_encode and decode to the
 * same topic, envelope and body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "fresco/event.h"

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
    fr_event ev;
    fr_error err;
    if (fr_event_decode(data, size, &ev, &err) != 0) {
        if (ev.doc.root != NULL || err.code >= 0) {
            abort();
        }
        return 0;
    }
    if (ev.src == NULL || ev.body == NULL || ev.topic[0] == '\0') {
        abort();
    }
    msgpack_sbuffer b1, b2;
    pack(ev.body, &b1);
    fr_buf msg = FR_BUF_INIT;
    if (fr_event_encode(ev.topic, ev.src, ev.seq, ev.ts, b1.data, b1.size, &msg) != 0) {
        abort();
    }
    fr_event ev2;
    if (fr_event_decode(msg.data, msg.len, &ev2, &err) != 0 || strcmp(ev.topic, ev2.topic) != 0 ||
        strcmp(ev.src, ev2.src) != 0 || ev.seq != ev2.seq || ev.ts != ev2.ts) {
        abort();
    }
    pack(ev2.body, &b2);
    if (b1.size != b2.size || memcmp(b1.data, b2.data, b1.size) != 0) {
        abort();
    }
    msgpack_sbuffer_destroy(&b1);
    msgpack_sbuffer_destroy(&b2);
    fr_buf_free(&msg);
    fr_event_free(&ev2);
    fr_event_free(&ev);
    return 0;
}
