/* SPDX-License-Identifier: MIT */
/* rnd_jpeg_huff.h: what our two JPEG decoders share (rnd_codec_ljpeg.c, rnd_codec_jpeg12.c):
 * marker segments, Huffman tables (ITU-T T.81 Annex C, F.2.2.3) and the entropy-coded bit reader
 * (F.2.2.5, with byte stuffing and restart markers). The hot functions are inline. */
#ifndef RND_JPEG_HUFF_H
#define RND_JPEG_HUFF_H

#include "rnd_internal.h"

#include <stddef.h>
#include <stdint.h>

#define RND_HUFF_LOOKAHEAD 9

typedef struct rnd__huff {
    int present;
    /* canonical code per length (F.2.2.3): maxcode[l] = -1 when no code of length l */
    int32_t mincode[17], maxcode[18], valptr[17];
    uint8_t vals[256];
    /* codes of up to RND_HUFF_LOOKAHEAD bits: length (0: longer or invalid) and value */
    uint8_t look_len[1 << RND_HUFF_LOOKAHEAD], look_val[1 << RND_HUFF_LOOKAHEAD];
} rnd__huff;

typedef struct rnd__bits {
    const uint8_t *p, *end;
    uint64_t acc;
    int n;      /* valid bits in acc (the top n) */
    int marker; /* a marker was reached: only zero bits follow (as IJG does) */
} rnd__bits;

/* One marker segment of a JPEG stream, read by rnd__jpeg_next_segment. */
typedef struct rnd__jpeg_seg {
    unsigned marker;      /* the byte after 0xFF */
    const uint8_t *body;  /* after the length field; NULL for SOI/EOI/RSTn */
    unsigned len;         /* bytes in body */
} rnd__jpeg_seg;

static inline unsigned
rnd__be16(const uint8_t *p)
{
    return ((unsigned)p[0] << 8) | p[1];
}

/* Reads the marker at *pos (fill bytes allowed) and its segment; *pos moves past it. Returns
 * TSR_OK, TSR_ENOTFOUND at the end of the data (no further marker), or TSR_ECORRUPT with
 * `who` leading the message. */
int rnd__jpeg_next_segment(const uint8_t *data, size_t len, size_t *pos, rnd__jpeg_seg *seg,
                           const char *who, tsr_err *err);

/* The offset of the first marker after entropy-coded data starting at `from` that is not RSTn
 * (len when there is none). */
size_t rnd__jpeg_skip_entropy(const uint8_t *data, size_t len, size_t from);

/* Parses one DHT segment body into dc[0..3] / ac[0..3]. ac may be NULL (lossless: DC tables
 * only). DC symbols above max_dc are refused (they are magnitude categories). */
int rnd__huff_parse_dht(rnd__huff dc[4], rnd__huff ac[4], unsigned max_dc, const uint8_t *s,
                        unsigned len, const char *who, tsr_err *err);

/* Tops the bit buffer up to at least 57 bits. */
static inline void
rnd__bits_fill(rnd__bits *b)
{
    while (b->n <= 56) {
        unsigned byte = 0;
        if (!b->marker && b->p < b->end) {
            byte = *b->p;
            if (byte == 0xFF) {
                if (b->p + 1 < b->end && b->p[1] == 0x00) {
                    b->p += 2; /* stuffed zero byte */
                } else {
                    b->marker = 1; /* a marker (RSTn, EOI): feed zeros until it is consumed */
                    byte = 0;
                }
            } else {
                b->p++;
            }
        }
        b->acc |= (uint64_t)byte << (56 - b->n);
        b->n += 8;
    }
}

/* At a restart marker: drops the bits left in the last byte and expects RST(expect & 7). */
int rnd__bits_restart(rnd__bits *b, unsigned expect, const char *who, tsr_err *err);

static inline unsigned
rnd__bits_peek(rnd__bits *b, int n)
{
    if (b->n < n) {
        rnd__bits_fill(b);
    }
    return (unsigned)(b->acc >> (64 - n));
}

static inline void
rnd__bits_skip(rnd__bits *b, int n)
{
    b->acc <<= n;
    b->n -= n;
}

/* n (1..16) raw bits. */
static inline unsigned
rnd__bits_get(rnd__bits *b, int n)
{
    unsigned v = rnd__bits_peek(b, n);
    rnd__bits_skip(b, n);
    return v;
}

/* The next Huffman-coded symbol, or -1 for an invalid code. */
static inline int
rnd__huff_decode(rnd__bits *b, const rnd__huff *h)
{
    unsigned look = rnd__bits_peek(b, RND_HUFF_LOOKAHEAD);
    int l = h->look_len[look];
    if (l) {
        rnd__bits_skip(b, l);
        return h->look_val[look];
    }
    unsigned code = rnd__bits_peek(b, 16);
    for (l = RND_HUFF_LOOKAHEAD + 1; l <= 16; l++) {
        int32_t c = (int32_t)(code >> (16 - l));
        if (h->maxcode[l] >= 0 && c <= h->maxcode[l] && c >= h->mincode[l]) {
            rnd__bits_skip(b, l);
            return h->vals[h->valptr[l] + (c - h->mincode[l])];
        }
    }
    return -1;
}

/* The value of t extra bits (F.2.2.1 EXTEND), t in 1..15. */
static inline int32_t
rnd__bits_extend(rnd__bits *b, int t)
{
    int32_t v = (int32_t)rnd__bits_get(b, t);
    return v < (1 << (t - 1)) ? v - (1 << t) + 1 : v;
}

#endif
