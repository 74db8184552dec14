/* Metrics as binary COPY rows. Each row's size is bounded before it is
 * written, so a row costs one reserve and straight stores. */
#include "pg_rows.h"

#include <endian.h>
#include <string.h>

#define PGROWS_NFIELDS 8
/* 2000-01-01T00:00:00Z, PostgreSQL's epoch, in microseconds since 1970 */
#define PGROWS_EPOCH_US 946684800000000LL
/* integers a double holds exactly */
#define PGROWS_EXACT (1LL << 53)

static const uint8_t copy_signature[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', 0xff, '\r', '\n', 0};

/* JSON escapes: 0 = as is, 'u' = \u00XX, else \<char>. */
static const uint8_t json_esc[256] = {
    ['\b'] = 'b',  ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r', ['"'] = '"',
    ['\\'] = '\\', [0] = 'u',    [1] = 'u',    [2] = 'u',    [3] = 'u',    [4] = 'u',
    [5] = 'u',     [6] = 'u',    [7] = 'u',    [11] = 'u',   [14] = 'u',   [15] = 'u',
    [16] = 'u',    [17] = 'u',   [18] = 'u',   [19] = 'u',   [20] = 'u',   [21] = 'u',
    [22] = 'u',    [23] = 'u',   [24] = 'u',   [25] = 'u',   [26] = 'u',   [27] = 'u',
    [28] = 'u',    [29] = 'u',   [30] = 'u',   [31] = 'u',
};

static inline uint32_t str_len(const char *s, uint32_t len)
{
    return len != 0 ? len : (uint32_t)strlen(s);
}

static inline uint8_t *put16(uint8_t *p, uint16_t v)
{
    v = htobe16(v);
    memcpy(p, &v, 2);
    return p + 2;
}

static inline uint8_t *put32(uint8_t *p, uint32_t v)
{
    v = htobe32(v);
    memcpy(p, &v, 4);
    return p + 4;
}

static inline uint8_t *put64(uint8_t *p, uint64_t v)
{
    v = htobe64(v);
    memcpy(p, &v, 8);
    return p + 8;
}

static inline uint8_t *put_null(uint8_t *p)
{
    return put32(p, UINT32_MAX);
}

static inline uint8_t *put_text(uint8_t *p, const char *s, uint32_t len)
{
    p = put32(p, len);
    memcpy(p, s, len);
    return p + len;
}

static inline uint8_t *put_double(uint8_t *p, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, 8);
    p = put32(p, 8);
    return put64(p, bits);
}

/* The decimal digits of v (at most 20), written at the end of buf[24];
 * returns where they start. */
static char *u64_digits(uint64_t v, char *end)
{
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return p;
}

/* Worst case of json_string for n bytes: quotes and \u00XX for each. */
static inline size_t json_string_max(size_t n)
{
    return 2 + 6 * n;
}

static uint8_t *json_string(uint8_t *p, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    *p++ = '"';
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        uint8_t e = json_esc[c];
        if (e == 0) {
            continue;
        }
        memcpy(p, s + run, i - run);
        p += i - run;
        run = i + 1;
        *p++ = '\\';
        if (e == 'u') {
            memcpy(p, "u00", 3);
            p[3] = (uint8_t)hex[c >> 4];
            p[4] = (uint8_t)hex[c & 15];
            p += 5;
        } else {
            *p++ = e;
        }
    }
    memcpy(p, s + run, n - run);
    p += n - run;
    *p++ = '"';
    return p;
}

/* "k":"v" members for n tags, comma separated; bound as json_members_max. */
static uint8_t *json_members(uint8_t *p, const fr_tag *tags, uint32_t n, bool comma)
{
    for (uint32_t i = 0; i < n; i++) {
        if (comma || i > 0) {
            *p++ = ',';
        }
        p = json_string(p, tags[i].key, str_len(tags[i].key, tags[i].key_len));
        *p++ = ':';
        p = json_string(p, tags[i].value, str_len(tags[i].value, tags[i].value_len));
    }
    return p;
}

static size_t json_members_max(const fr_tag *tags, uint32_t n)
{
    size_t max = 0;
    for (uint32_t i = 0; i < n; i++) {
        max += 2 + json_string_max(str_len(tags[i].key, tags[i].key_len)) +
               json_string_max(str_len(tags[i].value, tags[i].value_len));
    }
    return max;
}

int pgrows_header(fr_buf *out)
{
    uint8_t h[19];
    memcpy(h, copy_signature, sizeof(copy_signature));
    uint8_t *p = put32(h + sizeof(copy_signature), 0); /* flags: no OIDs */
    put32(p, 0);                                       /* no header extension */
    return fr_buf_append(out, h, sizeof(h));
}

int pgrows_trailer(fr_buf *out)
{
    uint8_t t[2];
    put16(t, UINT16_MAX); /* -1 */
    return fr_buf_append(out, t, sizeof(t));
}

int pgrows_batch(pgrows *r, fr_buf *out, const fr_batch *b, const char *task, size_t task_len)
{
    /* The batch's tags as JSON members, once for all its metrics. */
    fr_buf *bt = &r->batch_tags;
    fr_buf_reset(bt);
    if (b->ntags > 0) {
        if (fr_buf_reserve(bt, json_members_max(b->tags, b->ntags)) != 0) {
            return FR_ENOMEM;
        }
        bt->len = (size_t)(json_members(bt->data, b->tags, b->ntags, false) - bt->data);
    }
    uint32_t src_len = (uint32_t)strlen(b->source);
    size_t fixed = 2 + PGROWS_NFIELDS * 4 + 8 + 8 + 24 + 3 + bt->len + task_len + src_len;

    for (uint32_t i = 0; i < b->nmetrics; i++) {
        const fr_metric *m = &b->metrics[i];
        uint32_t ns_len = str_len(m->ns, m->ns_len);
        uint32_t unit_len = str_len(m->unit, m->unit_len);
        uint32_t sv_len = 0;
        if (m->value.type == FR_VAL_STRING) {
            sv_len = m->value.v.s.ptr != NULL ? str_len(m->value.v.s.ptr, m->value.v.s.len) : 0;
        }
        size_t max = fixed + ns_len + unit_len + sv_len + 1 + json_members_max(m->tags, m->ntags);
        if (fr_buf_reserve(out, max) != 0) {
            return FR_ENOMEM;
        }
        uint8_t *p = out->data + out->len;
        p = put16(p, PGROWS_NFIELDS);

        /* time */
        int64_t us = m->ts / 1000;
        if (m->ts % 1000 < 0) {
            us--;
        }
        p = put32(p, 8);
        p = put64(p, (uint64_t)(us - PGROWS_EPOCH_US));

        p = put_text(p, m->ns, ns_len);

        /* value, value_text */
        char digits[24];
        char *dend = digits + sizeof(digits);
        switch (m->value.type) {
        case FR_VAL_INT64: {
            int64_t v = m->value.v.i;
            p = put_double(p, (double)v);
            if (v > PGROWS_EXACT || v < -PGROWS_EXACT) {
                uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
                char *d = u64_digits(mag, dend);
                if (v < 0) {
                    *--d = '-';
                }
                p = put_text(p, d, (uint32_t)(dend - d));
            } else {
                p = put_null(p);
            }
            break;
        }
        case FR_VAL_UINT64: {
            uint64_t v = m->value.v.u;
            p = put_double(p, (double)v);
            if (v > (uint64_t)PGROWS_EXACT) {
                char *d = u64_digits(v, dend);
                p = put_text(p, d, (uint32_t)(dend - d));
            } else {
                p = put_null(p);
            }
            break;
        }
        case FR_VAL_DOUBLE:
            p = put_double(p, m->value.v.d);
            p = put_null(p);
            break;
        case FR_VAL_BOOL:
            p = put_double(p, m->value.v.b ? 1.0 : 0.0);
            p = put_null(p);
            break;
        case FR_VAL_STRING:
        default:
            p = put_null(p);
            p = put_text(p, sv_len > 0 ? m->value.v.s.ptr : "", sv_len);
            break;
        }

        p = unit_len > 0 ? put_text(p, m->unit, unit_len) : put_null(p);

        /* tags: jsonb's binary input is a version byte and the JSON text */
        uint8_t *lenp = p;
        p += 4;
        uint8_t *start = p;
        *p++ = 1;
        *p++ = '{';
        if (bt->len > 0) {
            memcpy(p, bt->data, bt->len);
            p += bt->len;
        }
        p = json_members(p, m->tags, m->ntags, bt->len > 0);
        *p++ = '}';
        put32(lenp, (uint32_t)(p - start));

        p = put_text(p, task, (uint32_t)task_len);
        p = put_text(p, b->source, src_len);
        out->len = (size_t)(p - out->data);
    }
    return 0;
}

void pgrows_free(pgrows *r)
{
    fr_buf_free(&r->batch_tags);
}
