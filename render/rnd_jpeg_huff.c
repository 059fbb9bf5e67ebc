/* SPDX-License-Identifier: MIT */
/* rnd_jpeg_huff.c: marker segments, Huffman tables and the bit reader of our JPEG decoders
 * (see rnd_jpeg_huff.h). */
#include "rnd_jpeg_huff.h"

#include <string.h>

int
rnd__jpeg_next_segment(const uint8_t *data, size_t len, size_t *pos, rnd__jpeg_seg *seg,
                       const char *who, tsr_err *err)
{
    size_t i = *pos;
    while (i + 1 < len && data[i] == 0xFF && data[i + 1] == 0xFF) {
        i++; /* fill bytes (B.1.1.2) */
    }
    if (i + 1 >= len || data[i] != 0xFF) {
        return TSR_ENOTFOUND;
    }
    seg->marker = data[i + 1];
    seg->body = NULL;
    seg->len = 0;
    i += 2;
    if (seg->marker == 0xD8 || seg->marker == 0xD9 || (seg->marker >= 0xD0 && seg->marker <= 0xD7)) {
        *pos = i; /* SOI, EOI, RSTn: no segment */
        return TSR_OK;
    }
    if (i + 2 > len) {
        return tsr_err_set(err, TSR_ECORRUPT, "%s: truncated marker segment", who);
    }
    unsigned seglen = rnd__be16(data + i);
    if (seglen < 2 || i + seglen > len) {
        return tsr_err_set(err, TSR_ECORRUPT, "%s: a marker segment runs past the end of the data",
                           who);
    }
    seg->body = data + i + 2;
    seg->len = seglen - 2;
    *pos = i + seglen;
    return TSR_OK;
}

size_t
rnd__jpeg_skip_entropy(const uint8_t *data, size_t len, size_t from)
{
    size_t i = from;
    while (i + 1 < len &&
           !(data[i] == 0xFF && data[i + 1] != 0x00 && !(data[i + 1] >= 0xD0 && data[i + 1] <= 0xD7))) {
        i++;
    }
    return i + 1 < len ? i : len;
}

/* Builds one table from its 16 code counts and symbols (C.2, F.2.2.3). */
static int
build(rnd__huff *h, const uint8_t counts[16], const uint8_t *vals, unsigned total, unsigned max_sym,
      const char *who, tsr_err *err)
{
    memset(h, 0, sizeof *h);
    memcpy(h->vals, vals, total);
    for (unsigned i = 0; i < total; i++) {
        if (vals[i] > max_sym) {
            return tsr_err_set(err, TSR_ECORRUPT, "%s: DHT: a magnitude category above %u", who,
                               max_sym);
        }
    }
    int32_t code = 0;
    unsigned k = 0;
    for (int l = 1; l <= 16; l++) {
        unsigned cnt = counts[l - 1];
        if (cnt) {
            h->valptr[l] = (int32_t)k;
            h->mincode[l] = code;
            code += (int32_t)cnt;
            k += cnt;
            h->maxcode[l] = code - 1;
            if (code - 1 >= (1 << l)) {
                return tsr_err_set(err, TSR_ECORRUPT, "%s: DHT: more codes than lengths allow",
                                   who);
            }
            if (l <= RND_HUFF_LOOKAHEAD) { /* lookahead entries for short codes */
                int shift = RND_HUFF_LOOKAHEAD - l;
                for (int32_t c = h->mincode[l]; c <= h->maxcode[l]; c++) {
                    for (int32_t x = c << shift; x < ((c + 1) << shift); x++) {
                        h->look_len[x] = (uint8_t)l;
                        h->look_val[x] = h->vals[h->valptr[l] + (c - h->mincode[l])];
                    }
                }
            }
        } else {
            h->maxcode[l] = -1;
        }
        code <<= 1;
    }
    h->maxcode[17] = INT32_MAX;
    h->present = 1;
    return TSR_OK;
}

int
rnd__huff_parse_dht(rnd__huff dc[4], rnd__huff ac[4], unsigned max_dc, const uint8_t *s,
                    unsigned len, const char *who, tsr_err *err)
{
    while (len > 0) {
        if (len < 17) {
            return tsr_err_set(err, TSR_ECORRUPT, "%s: short DHT segment", who);
        }
        unsigned tc = s[0] >> 4, th = s[0] & 15;
        if (tc > (ac ? 1u : 0u) || th > 3) {
            return tsr_err_set(err, TSR_ECORRUPT, ac ? "%s: DHT: table class or number out of range"
                                                     : "%s: DHT: only DC tables 0..3 are used by "
                                                       "the lossless process",
                               who);
        }
        unsigned total = 0;
        for (int l = 1; l <= 16; l++) {
            total += s[l];
        }
        if (total > 256 || 17 + total > len) {
            return tsr_err_set(err, TSR_ECORRUPT, "%s: DHT: table longer than its segment", who);
        }
        int rc = build(tc ? &ac[th] : &dc[th], s + 1, s + 17, total, tc ? 255 : max_dc, who, err);
        if (rc != TSR_OK) {
            return rc;
        }
        s += 17 + total;
        len -= 17 + total;
    }
    return TSR_OK;
}

int
rnd__bits_restart(rnd__bits *b, unsigned expect, const char *who, tsr_err *err)
{
    /* What is buffered beyond the consumed bits is discarded: the bytes read ahead are found
     * again from p, which stops at the marker (or is past it only by whole bytes of data). */
    b->acc = 0;
    b->n = 0;
    if (!b->marker) {
        while (b->p < b->end && !(b->p[0] == 0xFF && b->p + 1 < b->end && b->p[1] != 0x00)) {
            b->p++;
        }
    }
    if (b->end - b->p < 2 || b->p[0] != 0xFF || b->p[1] != (uint8_t)(0xD0 + (expect & 7))) {
        return tsr_err_set(err, TSR_ECORRUPT, "%s: missing or out-of-order restart marker", who);
    }
    b->p += 2;
    b->marker = 0;
    return TSR_OK;
}
