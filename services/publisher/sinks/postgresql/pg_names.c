/* Table and index names that fit PostgreSQL's 63 bytes. */
#include "pg_names.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s != '\0'; s++) {
        h = (h ^ (uint8_t)*s) * 16777619u;
    }
    return h;
}

/* Appends n bytes of s to out[PGNAME_MAX + 1] holding *len bytes, as far
 * as they fit. */
static void name_put(char *out, size_t *len, const char *s, size_t n)
{
    if (n > PGNAME_MAX - *len) {
        n = PGNAME_MAX - *len;
    }
    memcpy(out + *len, s, n);
    *len += n;
    out[*len] = '\0';
}

static void name_put_hash(char *out, size_t *len, const char *of)
{
    char hex[9];
    snprintf(hex, sizeof(hex), "%08x", (unsigned)fnv1a(of));
    name_put(out, len, hex, 8);
}

/* The longest prefix of s, at most max bytes, that ends on a UTF-8
 * character boundary. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max) {
        return len;
    }
    size_t n = max;
    while (n > 0 && ((uint8_t)s[n] & 0xc0) == 0x80) {
        n--;
    }
    return n;
}

void pgname_task_table(char out[PGNAME_MAX + 1], const char *base, const char *task_name)
{
    char ident[PGNAME_MAX + 1];
    size_t n = 0;
    bool cut = false;
    bool gap = false;
    bool any = false; /* a letter or digit kept: separators alone name nothing */
    for (const char *p = task_name; *p != '\0'; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
        if (!keep) {
            if (!gap) {
                c = '_';
                gap = true;
            } else {
                continue;
            }
        } else {
            gap = false;
            any = any || c != '_';
        }
        if (n == PGNAME_MAX) {
            cut = true;
            break;
        }
        ident[n++] = c;
    }
    if (!any) {
        n = 0;
    }
    ident[n] = '\0';
    size_t blen = strlen(base);
    size_t len = 0;
    out[0] = '\0';
    name_put(out, &len, base, blen);
    name_put(out, &len, "_", 1);
    if (!cut && n > 0 && blen + 1 + n <= PGNAME_MAX) {
        name_put(out, &len, ident, n);
        return;
    }
    /* base "_" ident[:room] "_" 8 hex */
    size_t room = blen + 10 <= PGNAME_MAX ? PGNAME_MAX - blen - 10 : 0;
    if (n > room) {
        n = room;
    }
    if (n > 0) {
        name_put(out, &len, ident, n);
        name_put(out, &len, "_", 1);
    }
    name_put_hash(out, &len, task_name);
}

void pgname_index(char out[PGNAME_MAX + 1], const char *table, const char *suffix)
{
    size_t tlen = strlen(table);
    size_t slen = strlen(suffix);
    size_t len = 0;
    out[0] = '\0';
    if (tlen + slen <= PGNAME_MAX) {
        name_put(out, &len, table, tlen);
        name_put(out, &len, suffix, slen);
        return;
    }
    name_put(out, &len, table, utf8_cut(table, tlen, PGNAME_MAX - slen - 9));
    name_put(out, &len, "_", 1);
    name_put_hash(out, &len, table);
    name_put(out, &len, suffix, slen);
}
