/* Message values: one metric as a msgpack map (kafka_value.h). */
#include "kafka/kafka_value.h"

#include <string.h>

#include <msgpack.h>

#include "fresco/manifest.h"

static size_t str_len(const char *s, uint32_t known)
{
    return known != 0 || s == NULL ? known : strlen(s);
}

/* True when batch tag t is overridden by one of m's own. */
static int tag_shadowed(const fr_metric *m, const fr_tag *t)
{
    size_t kl = str_len(t->key, t->key_len);
    for (uint32_t i = 0; i < m->ntags; i++) {
        const fr_tag *o = &m->tags[i];
        if (str_len(o->key, o->key_len) == kl && memcmp(o->key, t->key, kl) == 0) {
            return 1;
        }
    }
    return 0;
}

static uint32_t tags_merged_count(const fr_batch *b, const fr_metric *m)
{
    uint32_t n = m->ntags;
    for (uint32_t i = 0; i < b->ntags; i++) {
        n += !tag_shadowed(m, &b->tags[i]);
    }
    return n;
}

static int mp_str(msgpack_packer *pk, const char *s, size_t n)
{
    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
}

static int mp_key(msgpack_packer *pk, const char *s)
{
    return mp_str(pk, s, strlen(s));
}

static int mp_data(msgpack_packer *pk, const fr_value *v)
{
    switch (v->type) {
    case FR_VAL_INT64:
        return msgpack_pack_int64(pk, v->v.i);
    case FR_VAL_UINT64:
        return msgpack_pack_uint64(pk, v->v.u);
    case FR_VAL_DOUBLE:
        return msgpack_pack_double(pk, v->v.d);
    case FR_VAL_BOOL:
        return v->v.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case FR_VAL_STRING:
        return mp_str(pk, v->v.s.ptr, str_len(v->v.s.ptr, v->v.s.len));
    }
    return msgpack_pack_nil(pk);
}

static int mp_tag(msgpack_packer *pk, const fr_tag *t)
{
    return mp_str(pk, t->key, str_len(t->key, t->key_len)) |
           mp_str(pk, t->value, str_len(t->value, t->value_len));
}

int kafka_value_msgpack(const fr_batch *b, const fr_metric *m, fr_buf *out)
{
    char ts[48];
    if (fr_format_rfc3339(m->ts, ts, sizeof(ts)) != 0) {
        return FR_EINVAL;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, fr_buf_msgpack_write);
    /* Each call is -1 when the buffer could not grow. */
    int bad = msgpack_pack_map(&pk, 6);
    bad |= mp_key(&pk, "timestamp") | mp_key(&pk, ts);
    bad |= mp_key(&pk, "namespace") | mp_str(&pk, m->ns, str_len(m->ns, m->ns_len));
    bad |= mp_key(&pk, "data") | mp_data(&pk, &m->value);
    bad |= mp_key(&pk, "unit") | mp_str(&pk, m->unit, str_len(m->unit, m->unit_len));
    bad |= mp_key(&pk, "tags") | msgpack_pack_map(&pk, tags_merged_count(b, m));
    for (uint32_t i = 0; i < m->ntags; i++) {
        bad |= mp_tag(&pk, &m->tags[i]);
    }
    for (uint32_t i = 0; i < b->ntags; i++) {
        if (!tag_shadowed(m, &b->tags[i])) {
            bad |= mp_tag(&pk, &b->tags[i]);
        }
    }
    bad |= mp_key(&pk, "version") | msgpack_pack_uint32(&pk, b->version);
    return bad != 0 ? FR_ENOMEM : 0;
}
