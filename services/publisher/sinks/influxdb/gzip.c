/* gzip and deflate compression (see gzip.h). */
#include "gzip.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fresco/err.h"

#define WSIZE      32768u /* how far back a match may reach */
#define WMASK      (WSIZE - 1)
#define HASH_BITS  15
#define HASH_SIZE  (1u << HASH_BITS)
#define MIN_MATCH  3
#define MAX_MATCH  258
#define BLOCK_SYMS 16384u /* symbols per block */
#define MAX_INPUT  0x7fffffffu

/* zlib's level 6 tuning. */
#define GOOD_LENGTH 8    /* past this, look at a quarter of the chain */
#define MAX_LAZY    16   /* past this, do not look for a better match */
#define NICE_LENGTH 128  /* stop looking once a match is this long */
#define MAX_CHAIN   128  /* candidates looked at per position */
#define TOO_FAR     4096 /* a 3-byte match further back costs more than literals */

#define LITLEN_CODES       286
#define FIXED_LITLEN_CODES 288
#define DIST_CODES         30
#define BL_CODES           19
#define MAX_BITS           15
#define MAX_BL_BITS        7
#define END_BLOCK          256

struct influx_gzip {
    uint32_t head[HASH_SIZE];        /* newest position + 1 with each hash; 0 = none */
    uint32_t prev[WSIZE];            /* older position + 1 with the same hash */
    uint16_t sym_litlen[BLOCK_SYMS]; /* literal byte, or match length */
    uint16_t sym_dist[BLOCK_SYMS];   /* 0 for a literal, else the distance */
    uint32_t nsyms;
    uint32_t freq_litlen[LITLEN_CODES];
    uint32_t freq_dist[DIST_CODES];
};

/* ---- CRC-32 ------------------------------------------------------------ */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        crc_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        for (int t = 1; t < 8; t++) {
            uint32_t c = crc_table[t - 1][n];
            crc_table[t][n] = crc_table[0][c & 0xff] ^ (c >> 8);
        }
    }
}

uint32_t influx_crc32(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&crc_once, crc_table_init);
    const uint8_t *p = data;
    uint32_t c = ~crc;
    /* Eight bytes at a time (slicing by 8), byte order independent. */
    while (len >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        c = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
            crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
            crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len-- > 0) {
        c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    }
    return ~c;
}

/* ---- symbols ------------------------------------------------------------ */

/* Length 3..258 -> litlen code 257..285 and its extra bits. */
static void length_code(unsigned len, unsigned *code, unsigned *nextra, unsigned *extra)
{
    unsigned x = len - MIN_MATCH;
    if (x < 8) {
        *code = 257 + x;
        *nextra = 0;
        *extra = 0;
    } else if (x == 255) {
        *code = 285;
        *nextra = 0;
        *extra = 0;
    } else {
        unsigned nb = 31u - (unsigned)__builtin_clz(x); /* 3..7 */
        *code = 257 + 4 * (nb - 1) + ((x >> (nb - 2)) & 3);
        *nextra = nb - 2;
        *extra = x & ((1u << (nb - 2)) - 1);
    }
}

/* Distance 1..32768 -> distance code 0..29 and its extra bits. */
static void dist_code(unsigned dist, unsigned *code, unsigned *nextra, unsigned *extra)
{
    unsigned x = dist - 1;
    if (x < 4) {
        *code = x;
        *nextra = 0;
        *extra = 0;
    } else {
        unsigned nb = 31u - (unsigned)__builtin_clz(x); /* 2..14 */
        *code = 2 * nb + ((x >> (nb - 1)) & 1);
        *nextra = nb - 1;
        *extra = x & ((1u << (nb - 1)) - 1);
    }
}

static const uint8_t len_extra_bits[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                           2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint8_t dist_extra_bits[30] = {0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
                                            6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};
static const uint8_t bl_order[BL_CODES] = {16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
                                           11, 4,  12, 3, 13, 2, 14, 1, 15};

/* A symbol is a literal byte (sym_litlen 0..255) or a match (256 + length
 * - 3, with sym_dist the distance - 1). */
static void sym_literal(influx_gzip *z, uint8_t c)
{
    z->sym_litlen[z->nsyms] = c;
    z->sym_dist[z->nsyms] = 0;
    z->nsyms++;
    z->freq_litlen[c]++;
}

static void sym_match(influx_gzip *z, unsigned len, unsigned dist)
{
    unsigned code, nextra, extra;
    z->sym_litlen[z->nsyms] = (uint16_t)(256 + len - MIN_MATCH);
    z->sym_dist[z->nsyms] = (uint16_t)(dist - 1);
    z->nsyms++;
    length_code(len, &code, &nextra, &extra);
    z->freq_litlen[code]++;
    dist_code(dist, &code, &nextra, &extra);
    z->freq_dist[code]++;
}

/* ---- bit output ---------------------------------------------------------- */

typedef struct bitw {
    fr_buf *out;
    uint64_t bits;
    unsigned n;
} bitw;

/* Room is reserved before each block, so these do not fail. */
static void bits_put(bitw *w, uint32_t value, unsigned n)
{
    w->bits |= (uint64_t)value << w->n;
    w->n += n;
    if (w->n >= 32) {
        uint8_t *d = w->out->data + w->out->len;
        d[0] = (uint8_t)w->bits;
        d[1] = (uint8_t)(w->bits >> 8);
        d[2] = (uint8_t)(w->bits >> 16);
        d[3] = (uint8_t)(w->bits >> 24);
        w->out->len += 4;
        w->bits >>= 32;
        w->n -= 32;
    }
}

/* Pads to a byte boundary and writes out what is pending. */
static void bits_flush(bitw *w)
{
    while (w->n > 0) {
        w->out->data[w->out->len++] = (uint8_t)w->bits;
        w->bits >>= 8;
        w->n = w->n >= 8 ? w->n - 8 : 0;
    }
    w->bits = 0;
}

/* ---- Huffman codes -------------------------------------------------------- */

typedef struct huff {
    uint8_t len[FIXED_LITLEN_CODES];
    uint16_t code[FIXED_LITLEN_CODES]; /* bit-reversed, ready to write LSB first */
} huff;

/* Code lengths for freq[0..n) (at least two nonzero), optimal without a
 * limit, then brought under limit keeping the code complete. */
static void huff_lengths(const uint32_t *freq, unsigned n, unsigned limit, uint8_t *len)
{
    unsigned sym[LITLEN_CODES];
    uint32_t weight[2 * LITLEN_CODES];
    int parent[2 * LITLEN_CODES];
    unsigned m = 0;
    memset(len, 0, n);
    for (unsigned i = 0; i < n; i++) {
        if (freq[i] != 0) {
            sym[m++] = i;
        }
    }
    /* Sort the leaves by weight (insertion sort: n <= 286). */
    for (unsigned i = 1; i < m; i++) {
        unsigned s = sym[i], j = i;
        while (j > 0 && freq[sym[j - 1]] > freq[s]) {
            sym[j] = sym[j - 1];
            j--;
        }
        sym[j] = s;
    }
    for (unsigned i = 0; i < m; i++) {
        weight[i] = freq[sym[i]];
    }
    /* Two queues: sorted leaves [0, m) and internal nodes [m, ...), which
     * are made in order of weight. */
    unsigned leaf = 0, node = m, next = m;
    for (unsigned k = 0; k + 1 < m; k++) {
        unsigned pick[2];
        for (int t = 0; t < 2; t++) {
            if (leaf < m && (node >= next || weight[leaf] <= weight[node])) {
                pick[t] = leaf++;
            } else {
                pick[t] = node++;
            }
        }
        weight[next] = weight[pick[0]] + weight[pick[1]];
        parent[pick[0]] = (int)next;
        parent[pick[1]] = (int)next;
        next++;
    }
    /* Depths from the root (the last node) down. */
    unsigned depth[2 * LITLEN_CODES];
    depth[next - 1] = 0;
    for (unsigned i = next - 1; i-- > 0;) {
        depth[i] = depth[parent[i]] + 1;
    }
    unsigned over = 0;
    for (unsigned i = 0; i < m; i++) {
        unsigned d = depth[i];
        if (d > limit) {
            d = limit;
            over++;
        }
        len[sym[i]] = (uint8_t)d;
    }
    if (over == 0) {
        return; /* a Huffman code is complete */
    }
    /* Kraft sum in units of 2^-limit; must end at exactly 2^limit. sym is
     * sorted by rising frequency. */
    uint32_t target = 1u << limit, kraft = 0;
    for (unsigned i = 0; i < m; i++) {
        kraft += 1u << (limit - len[sym[i]]);
    }
    while (kraft > target) {
        /* Lengthen the rarest of the longest codes still under the limit. */
        for (unsigned l = limit - 1; l >= 1; l--) {
            unsigned i = 0;
            while (i < m && len[sym[i]] != l) {
                i++;
            }
            if (i < m) {
                len[sym[i]]++;
                kraft -= 1u << (limit - l - 1);
                break;
            }
        }
    }
    while (kraft < target) {
        /* Shorten the most frequent of the longest codes that fits. */
        for (unsigned l = limit; l >= 2; l--) {
            if ((1u << (limit - l)) > target - kraft) {
                continue;
            }
            unsigned i = m;
            while (i > 0 && len[sym[i - 1]] != l) {
                i--;
            }
            if (i > 0) {
                len[sym[i - 1]]--;
                kraft += 1u << (limit - l);
                break;
            }
        }
    }
}

static uint16_t reverse_bits(unsigned code, unsigned n)
{
    unsigned r = 0;
    for (unsigned i = 0; i < n; i++) {
        r = (r << 1) | (code & 1);
        code >>= 1;
    }
    return (uint16_t)r;
}

/* Canonical codes (RFC 1951 3.2.2) from lengths. */
static void huff_codes(huff *h, unsigned n)
{
    unsigned count[MAX_BITS + 1] = {0}, next[MAX_BITS + 2];
    for (unsigned i = 0; i < n; i++) {
        count[h->len[i]]++;
    }
    count[0] = 0;
    unsigned code = 0;
    for (unsigned b = 1; b <= MAX_BITS; b++) {
        code = (code + count[b - 1]) << 1;
        next[b] = code;
    }
    for (unsigned i = 0; i < n; i++) {
        unsigned l = h->len[i];
        h->code[i] = l != 0 ? reverse_bits(next[l]++, l) : 0;
    }
}

static void huff_fixed(huff *lit, huff *dist)
{
    /* All 288 codes take part in the canonical numbering, 286 and 287
     * included, though they never occur. */
    for (unsigned i = 0; i < FIXED_LITLEN_CODES; i++) {
        lit->len[i] = i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8;
    }
    huff_codes(lit, FIXED_LITLEN_CODES);
    for (unsigned i = 0; i < DIST_CODES; i++) {
        dist->len[i] = 5;
    }
    huff_codes(dist, DIST_CODES);
}

/* Makes sure a table has two used symbols (inflaters want complete codes,
 * and one symbol cannot make one). */
static void freq_min_two(uint32_t *freq, unsigned n)
{
    unsigned used = 0;
    for (unsigned i = 0; i < n && used < 2; i++) {
        used += freq[i] != 0;
    }
    for (unsigned i = 0; i < n && used < 2; i++) {
        if (freq[i] == 0) {
            freq[i] = 1;
            used++;
        }
    }
}

/* The code-length sequence of a dynamic header, run-length coded. */
typedef struct bl_seq {
    uint8_t sym[LITLEN_CODES + DIST_CODES];
    uint8_t extra[LITLEN_CODES + DIST_CODES];
    unsigned n;
} bl_seq;

static void bl_encode(const uint8_t *lens, unsigned n, bl_seq *s, uint32_t *freq)
{
    s->n = 0;
    for (unsigned i = 0; i < n;) {
        uint8_t v = lens[i];
        unsigned run = 1;
        while (i + run < n && lens[i + run] == v) {
            run++;
        }
        i += run;
        if (v == 0) {
            while (run >= 11) {
                unsigned r = run > 138 ? 138 : run;
                s->sym[s->n] = 18;
                s->extra[s->n++] = (uint8_t)(r - 11);
                run -= r;
            }
            if (run >= 3) {
                s->sym[s->n] = 17;
                s->extra[s->n++] = (uint8_t)(run - 3);
                run = 0;
            }
        } else {
            s->sym[s->n] = v;
            s->extra[s->n++] = 0;
            run--;
            while (run >= 3) {
                unsigned r = run > 6 ? 6 : run;
                s->sym[s->n] = 16;
                s->extra[s->n++] = (uint8_t)(r - 3);
                run -= r;
            }
        }
        while (run-- > 0) {
            s->sym[s->n] = v;
            s->extra[s->n++] = 0;
        }
    }
    for (unsigned i = 0; i < s->n; i++) {
        freq[s->sym[i]]++;
    }
}

static unsigned bl_extra_bits(unsigned sym)
{
    return sym == 16 ? 2 : sym == 17 ? 3 : sym == 18 ? 7 : 0;
}

/* Bits the block's symbols take with these codes (EOB included). */
static uint64_t data_bits(const influx_gzip *z, const huff *lit, const huff *dist)
{
    uint64_t bits = lit->len[END_BLOCK];
    for (unsigned c = 0; c < 256; c++) {
        bits += (uint64_t)z->freq_litlen[c] * lit->len[c];
    }
    for (unsigned c = 257; c < LITLEN_CODES; c++) {
        bits += (uint64_t)z->freq_litlen[c] * (lit->len[c] + len_extra_bits[c - 257]);
    }
    for (unsigned c = 0; c < DIST_CODES; c++) {
        bits += (uint64_t)z->freq_dist[c] * (dist->len[c] + dist_extra_bits[c]);
    }
    return bits;
}

static void write_symbols(const influx_gzip *z, bitw *w, const huff *lit, const huff *dist)
{
    for (uint32_t i = 0; i < z->nsyms; i++) {
        unsigned l = z->sym_litlen[i];
        if (l < 256) {
            bits_put(w, lit->code[l], lit->len[l]);
            continue;
        }
        l = l - 256 + MIN_MATCH;
        unsigned d = z->sym_dist[i] + 1u;
        unsigned code, nextra, extra;
        length_code(l, &code, &nextra, &extra);
        bits_put(w, lit->code[code], lit->len[code]);
        if (nextra != 0) {
            bits_put(w, extra, nextra);
        }
        dist_code(d, &code, &nextra, &extra);
        bits_put(w, dist->code[code], dist->len[code]);
        if (nextra != 0) {
            bits_put(w, extra, nextra);
        }
    }
    bits_put(w, lit->code[END_BLOCK], lit->len[END_BLOCK]);
}

/* Writes in[start..end) as stored blocks. */
static void write_stored(bitw *w, const uint8_t *in, size_t start, size_t end, bool last)
{
    do {
        size_t n = end - start > 65535 ? 65535 : end - start;
        bool fin = last && start + n == end;
        bits_put(w, fin ? 1 : 0, 3);
        bits_flush(w);
        uint8_t *d = w->out->data + w->out->len;
        d[0] = (uint8_t)n;
        d[1] = (uint8_t)(n >> 8);
        d[2] = (uint8_t)~n;
        d[3] = (uint8_t)(~n >> 8);
        memcpy(d + 4, in + start, n);
        w->out->len += 4 + n;
        start += n;
    } while (start < end);
}

/* Writes the block of the symbols gathered, which cover in[start..end). */
static int block_flush(influx_gzip *z, bitw *w, const uint8_t *in, size_t start, size_t end,
                       bool last)
{
    z->freq_litlen[END_BLOCK] = 1;
    huff lit_dyn, dist_dyn, lit_fix, dist_fix, bl;
    uint32_t freq_lit[LITLEN_CODES], freq_dist[DIST_CODES];
    memcpy(freq_lit, z->freq_litlen, sizeof(freq_lit));
    memcpy(freq_dist, z->freq_dist, sizeof(freq_dist));
    freq_min_two(freq_lit, LITLEN_CODES);
    freq_min_two(freq_dist, DIST_CODES);
    huff_lengths(freq_lit, LITLEN_CODES, MAX_BITS, lit_dyn.len);
    huff_lengths(freq_dist, DIST_CODES, MAX_BITS, dist_dyn.len);
    huff_codes(&lit_dyn, LITLEN_CODES);
    huff_codes(&dist_dyn, DIST_CODES);

    unsigned hlit = LITLEN_CODES, hdist = DIST_CODES;
    while (hlit > 257 && lit_dyn.len[hlit - 1] == 0) {
        hlit--;
    }
    while (hdist > 1 && dist_dyn.len[hdist - 1] == 0) {
        hdist--;
    }
    uint8_t lens[LITLEN_CODES + DIST_CODES];
    memcpy(lens, lit_dyn.len, hlit);
    memcpy(lens + hlit, dist_dyn.len, hdist);
    bl_seq seq;
    uint32_t freq_bl[BL_CODES] = {0};
    bl_encode(lens, hlit + hdist, &seq, freq_bl);
    freq_min_two(freq_bl, BL_CODES);
    huff_lengths(freq_bl, BL_CODES, MAX_BL_BITS, bl.len);
    huff_codes(&bl, BL_CODES);
    unsigned hclen = BL_CODES;
    while (hclen > 4 && bl.len[bl_order[hclen - 1]] == 0) {
        hclen--;
    }

    uint64_t dyn_bits = 3 + 5 + 5 + 4 + 3ull * hclen + data_bits(z, &lit_dyn, &dist_dyn);
    for (unsigned i = 0; i < seq.n; i++) {
        dyn_bits += bl.len[seq.sym[i]] + bl_extra_bits(seq.sym[i]);
    }
    huff_fixed(&lit_fix, &dist_fix);
    uint64_t fix_bits = 3 + data_bits(z, &lit_fix, &dist_fix);
    size_t raw = end - start;
    size_t nstored = raw == 0 ? 1 : (raw + 65534) / 65535;
    uint64_t stored_bits = (uint64_t)raw * 8 + nstored * (3 + 7 + 32);

    uint64_t best = dyn_bits < fix_bits ? dyn_bits : fix_bits;
    if (stored_bits < best) {
        best = stored_bits;
    }
    if (fr_buf_reserve(w->out, (size_t)(best / 8) + 16) != 0) {
        return FR_ENOMEM;
    }
    if (best == stored_bits) {
        write_stored(w, in, start, end, last);
    } else if (best == fix_bits) {
        bits_put(w, (last ? 1u : 0u) | 1u << 1, 3);
        write_symbols(z, w, &lit_fix, &dist_fix);
    } else {
        bits_put(w, (last ? 1u : 0u) | 2u << 1, 3);
        bits_put(w, hlit - 257, 5);
        bits_put(w, hdist - 1, 5);
        bits_put(w, hclen - 4, 4);
        for (unsigned i = 0; i < hclen; i++) {
            bits_put(w, bl.len[bl_order[i]], 3);
        }
        for (unsigned i = 0; i < seq.n; i++) {
            unsigned s = seq.sym[i];
            bits_put(w, bl.code[s], bl.len[s]);
            if (bl_extra_bits(s) != 0) {
                bits_put(w, seq.extra[i], bl_extra_bits(s));
            }
        }
        write_symbols(z, w, &lit_dyn, &dist_dyn);
    }
    z->nsyms = 0;
    memset(z->freq_litlen, 0, sizeof(z->freq_litlen));
    memset(z->freq_dist, 0, sizeof(z->freq_dist));
    return 0;
}

/* ---- LZ77 ---------------------------------------------------------------- */

static inline uint32_t hash3(const uint8_t *p)
{
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
    return (v * 2654435761u) >> (32 - HASH_BITS);
}

static inline void hash_insert(influx_gzip *z, const uint8_t *in, size_t len, size_t pos)
{
    if (pos + MIN_MATCH <= len) {
        uint32_t h = hash3(in + pos);
        z->prev[pos & WMASK] = z->head[h];
        z->head[h] = (uint32_t)pos + 1;
    }
}

/* Length of the common prefix of a and b, at most max. */
static inline unsigned match_length(const uint8_t *a, const uint8_t *b, unsigned max)
{
    unsigned n = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    while (n + 8 <= max) {
        uint64_t x, y;
        memcpy(&x, a + n, 8);
        memcpy(&y, b + n, 8);
        if (x != y) {
            return n + (unsigned)__builtin_ctzll(x ^ y) / 8;
        }
        n += 8;
    }
#endif
    while (n < max && a[n] == b[n]) {
        n++;
    }
    return n;
}

/* The longest match for in[pos..] among earlier positions with its hash
 * (pos is already inserted). Returns its length (0 when under
 * MIN_MATCH), with its distance. */
static unsigned longest_match(const influx_gzip *z, const uint8_t *in, size_t len, size_t pos,
                              unsigned prev_len, unsigned *dist)
{
    size_t avail = len - pos;
    unsigned max = avail > MAX_MATCH ? MAX_MATCH : (unsigned)avail;
    unsigned chain = prev_len >= GOOD_LENGTH ? MAX_CHAIN / 4 : MAX_CHAIN;
    unsigned best = prev_len > MIN_MATCH - 1 ? prev_len : MIN_MATCH - 1;
    unsigned best_dist = 0;
    if (max <= best) {
        return 0;
    }
    uint32_t cand = z->prev[pos & WMASK];
    while (cand != 0 && chain-- > 0) {
        size_t c = cand - 1;
        if (pos - c >= WSIZE) {
            break; /* (distance 32768 is left out: its prev slot is pos's own) */
        }
        /* Cheap rejection: the byte that would make it longer. */
        if (in[c + best] == in[pos + best] && in[c] == in[pos]) {
            unsigned l = match_length(in + c, in + pos, max);
            if (l > best) {
                best = l;
                best_dist = (unsigned)(pos - c);
                if (l >= NICE_LENGTH || l == max) {
                    break;
                }
            }
        }
        cand = z->prev[c & WMASK];
    }
    if (best_dist == 0) {
        return 0;
    }
    *dist = best_dist;
    return best;
}

static int lz77(influx_gzip *z, bitw *w, const uint8_t *in, size_t len)
{
    size_t block_start = 0;
    size_t pos = 0;
    unsigned prev_len = 0, prev_dist = 0;
    bool pending = false; /* in[pos - 1] is not yet coded */
    int rv;
    while (pos < len) {
        hash_insert(z, in, len, pos);
        unsigned cur_len = 0, cur_dist = 0;
        if (prev_len < MAX_LAZY) {
            cur_len = longest_match(z, in, len, pos, prev_len, &cur_dist);
            if (cur_len == MIN_MATCH && cur_dist > TOO_FAR) {
                cur_len = 0;
            }
        }
        if (pending && prev_len >= MIN_MATCH && cur_len <= prev_len) {
            /* The match at pos - 1 wins: code it and skip what it covers. */
            sym_match(z, prev_len, prev_dist);
            size_t stop = pos - 1 + prev_len;
            for (size_t p = pos + 1; p < stop; p++) {
                hash_insert(z, in, len, p);
            }
            pos = stop;
            pending = false;
            prev_len = 0;
        } else {
            if (pending) {
                sym_literal(z, in[pos - 1]);
            }
            pending = true;
            prev_len = cur_len;
            prev_dist = cur_dist;
            pos++;
        }
        if (z->nsyms >= BLOCK_SYMS - 1) {
            size_t end = pending ? pos - 1 : pos;
            if ((rv = block_flush(z, w, in, block_start, end, false)) != 0) {
                return rv;
            }
            block_start = end;
        }
    }
    if (pending) {
        sym_literal(z, in[pos - 1]);
    }
    return block_flush(z, w, in, block_start, len, true);
}

/* ---- gzip ---------------------------------------------------------------- */

influx_gzip *influx_gzip_new(void)
{
    return calloc(1, sizeof(influx_gzip));
}

void influx_gzip_destroy(influx_gzip *z)
{
    free(z);
}

int influx_gzip_compress(influx_gzip *z, const void *in, size_t len, fr_buf *out)
{
    if (len > MAX_INPUT) {
        return FR_ETOOBIG;
    }
    static const uint8_t header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    if (fr_buf_reserve(out, sizeof(header) + 16) != 0) {
        return FR_ENOMEM;
    }
    memcpy(out->data + out->len, header, sizeof(header));
    out->len += sizeof(header);
    memset(z->head, 0, sizeof(z->head));
    memset(z->freq_litlen, 0, sizeof(z->freq_litlen));
    memset(z->freq_dist, 0, sizeof(z->freq_dist));
    z->nsyms = 0;
    bitw w = {.out = out};
    int rv = lz77(z, &w, in, len);
    if (rv != 0) {
        return rv;
    }
    if (fr_buf_reserve(out, 16) != 0) {
        return FR_ENOMEM;
    }
    bits_flush(&w);
    uint32_t crc = influx_crc32(0, in, len);
    uint32_t isize = (uint32_t)len;
    uint8_t *d = out->data + out->len;
    for (int i = 0; i < 4; i++) {
        d[i] = (uint8_t)(crc >> (8 * i));
        d[4 + i] = (uint8_t)(isize >> (8 * i));
    }
    out->len += 8;
    return 0;
}
