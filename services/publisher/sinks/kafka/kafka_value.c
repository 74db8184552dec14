/* Message values: one metric as JSON or msgpack (kafka_value.h). */
#include "kafka/kafka_value.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

static int buf_str(fr_buf *out, const char *s)
{
    return fr_buf_append(out, s, strlen(s));
}

int kafka_json_string(fr_buf *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (fr_buf_reserve(out, n + 2) != 0) {
        return FR_ENOMEM;
    }
    int rv = fr_buf_append(out, "\"", 1);
    size_t run = 0; /* bytes since the last escape, appended in one go */
    for (size_t i = 0; rv == 0 && i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t elen = 0;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            elen = 2;
        } else if (c < 0x20) {
            esc[0] = '\\';
            elen = 2;
            switch (c) {
            case '\n':
                esc[1] = 'n';
                break;
            case '\r':
                esc[1] = 'r';
                break;
            case '\t':
                esc[1] = 't';
                break;
            case '\b':
                esc[1] = 'b';
                break;
            case '\f':
                esc[1] = 'f';
                break;
            default:
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                elen = 6;
                break;
            }
        }
        if (elen == 0) {
            run++;
            continue;
        }
        rv = fr_buf_append(out, s + i - run, run);
        run = 0;
        if (rv == 0) {
            rv = fr_buf_append(out, esc, elen);
        }
    }
    if (rv == 0) {
        rv = fr_buf_append(out, s + n - run, run);
    }
    if (rv == 0) {
        rv = fr_buf_append(out, "\"", 1);
    }
    return rv;
}

/* The shortest of %.15g..%.17g that reads back as d. */
static int json_double(fr_buf *out, double d)
{
    if (!isfinite(d)) {
        return buf_str(out, "null");
    }
    char num[40];
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(num, sizeof(num), "%.*g", prec, d);
        if (strtod(num, NULL) == d) {
            break;
        }
    }
    return buf_str(out, num);
}

static int json_value(fr_buf *out, const fr_value *v)
{
    char num[32];
    switch (v->type) {
    case FR_VAL_INT64:
        snprintf(num, sizeof(num), "%" PRId64, v->v.i);
        return buf_str(out, num);
    case FR_VAL_UINT64:
        snprintf(num, sizeof(num), "%" PRIu64, v->v.u);
        return buf_str(out, num);
    case FR_VAL_DOUBLE:
        return json_double(out, v->v.d);
    case FR_VAL_BOOL:
        return buf_str(out, v->v.b ? "true" : "false");
    case FR_VAL_STRING:
        return kafka_json_string(out, v->v.s.ptr, str_len(v->v.s.ptr, v->v.s.len));
    }
    return FR_EINVAL;
}

static int json_tag(fr_buf *out, const fr_tag *t, int *first)
{
    int rv = *first ? 0 : fr_buf_append(out, ",", 1);
    *first = 0;
    if (rv == 0) {
        rv = kafka_json_string(out, t->key, str_len(t->key, t->key_len));
    }
    if (rv == 0) {
        rv = fr_buf_append(out, ":", 1);
    }
    if (rv == 0) {
        rv = kafka_json_string(out, t->value, str_len(t->value, t->value_len));
    }
    return rv;
}

int kafka_value_json(const fr_batch *b, const fr_metric *m, fr_buf *out)
{
    char ts[48];
    if (fr_format_rfc3339(m->ts, ts, sizeof(ts)) != 0) {
        return FR_EINVAL;
    }
    int rv = buf_str(out, "{\"timestamp\":\"");
    if (rv == 0) {
        rv = buf_str(out, ts);
    }
    if (rv == 0) {
        rv = buf_str(out, "\",\"namespace\":");
    }
    if (rv == 0) {
        rv = kafka_json_string(out, m->ns, str_len(m->ns, m->ns_len));
    }
    if (rv == 0) {
        rv = buf_str(out, ",\"data\":");
    }
    if (rv == 0) {
        rv = json_value(out, &m->value);
    }
    if (rv == 0) {
        rv = buf_str(out, ",\"unit\":");
    }
    if (rv == 0) {
        rv = kafka_json_string(out, m->unit, str_len(m->unit, m->unit_len));
    }
    if (rv == 0) {
        rv = buf_str(out, ",\"tags\":{");
    }
    int first = 1;
    for (uint32_t i = 0; rv == 0 && i < m->ntags; i++) {
        rv = json_tag(out, &m->tags[i], &first);
    }
    for (uint32_t i = 0; rv == 0 && i < b->ntags; i++) {
        if (!tag_shadowed(m, &b->tags[i])) {
            rv = json_tag(out, &b->tags[i], &first);
        }
    }
    if (rv == 0) {
        char tail[48];
        snprintf(tail, sizeof(tail), "},\"version\":%" PRIu32 "}", b->version);
        rv = buf_str(out, tail);
    }
    return rv;
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
