/* SPDX-License-Identifier: MIT */
/* rnd_codec_ljpeg.c: lossless JPEG (ITU-T T.81 process 14, Annex H: Huffman coding, SOF3) of the
 * transfer syntaxes 1.2.840.10008.1.2.4.57 and .70, decoded here rather than by GDCM.
 *
 * Why our own: libjpeg-turbo 2.1 has no lossless mode, and GDCM's IJG build leaks its memory
 * pools on every corrupt stream it gives up on (found by fuzzing). Process 14 is small: per
 * sample, a Huffman-coded magnitude category, that many extra bits for the difference, and one
 * of seven predictors from the left, upper and upper-left neighbours (H.1.2.1), with the first
 * row, the first column and every restart predicted from fewer neighbours.
 *
 * Supported: 2..16 bit precision, 1..4 components each sampled 1x1, interleaved or one scan per
 * component, restart intervals, point transform. Not supported (TSR_EUNSUPP): arithmetic coding
 * (SOF11) and subsampled components, which no DICOM encoder we know writes. */
#include "rnd_internal.h"

#include <stdlib.h>
#include <string.h>

#define LJ_MAX_COMPS 4
#define LJ_LOOKAHEAD 9

typedef struct huff {
    int present;
    /* canonical code per length (F.2.2.3): maxcode[l] = -1 when no code of length l */
    int32_t mincode[17], maxcode[18], valptr[17];
    uint8_t vals[256];
    /* codes of up to LJ_LOOKAHEAD bits: length (0: longer or invalid) and value */
    uint8_t look_len[1 << LJ_LOOKAHEAD], look_val[1 << LJ_LOOKAHEAD];
} huff;

typedef struct bits {
    const uint8_t *p, *end;
    uint64_t acc;
    int n;      /* valid bits in acc (the top n) */
    int marker; /* a marker was reached: only zero bits follow */
} bits;

typedef struct ljpeg {
    unsigned precision, width, height, ncomp;
    uint8_t comp_id[LJ_MAX_COMPS];
    huff dc[4];
    unsigned restart; /* MCUs per restart interval, 0: none */
} ljpeg;

static unsigned
be16(const uint8_t *p)
{
    return ((unsigned)p[0] << 8) | p[1];
}

static int
corrupt(tsr_err *err, const char *what)
{
    return tsr_err_set(err, TSR_ECORRUPT, "lossless JPEG: %s", what);
}

/* DHT segment body (B.2.4.2). */
static int
parse_dht(ljpeg *j, const uint8_t *s, unsigned len, tsr_err *err)
{
    while (len > 0) {
        if (len < 17) {
            return corrupt(err, "short DHT segment");
        }
        unsigned tc = s[0] >> 4, th = s[0] & 15;
        if (tc != 0 || th > 3) {
            return corrupt(err, "DHT: only DC tables 0..3 are used by the lossless process");
        }
        huff *h = &j->dc[th];
        memset(h, 0, sizeof *h);
        unsigned total = 0;
        for (int l = 1; l <= 16; l++) {
            total += s[l];
        }
        if (total > 256 || 17 + total > len) {
            return corrupt(err, "DHT: table longer than its segment");
        }
        memcpy(h->vals, s + 17, total);
        int32_t code = 0;
        unsigned k = 0;
        for (int l = 1; l <= 16; l++) {
            unsigned cnt = s[l];
            if (cnt) {
                h->valptr[l] = (int32_t)k;
                h->mincode[l] = code;
                code += (int32_t)cnt;
                k += cnt;
                h->maxcode[l] = code - 1;
                if (code - 1 >= (1 << l)) {
                    return corrupt(err, "DHT: more codes than lengths allow");
                }
                /* lookahead entries for short codes */
                if (l <= LJ_LOOKAHEAD) {
                    for (int32_t c = h->mincode[l]; c <= h->maxcode[l]; c++) {
                        int shift = LJ_LOOKAHEAD - l;
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
        for (unsigned i = 0; i < total; i++) {
            if (h->vals[i] > 16) {
                return corrupt(err, "DHT: a magnitude category above 16");
            }
        }
        h->present = 1;
        s += 17 + total;
        len -= 17 + total;
    }
    return TSR_OK;
}

/* ---------------------------------------------------------------- bits */

static void
fill(bits *b)
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

static inline unsigned
peek(bits *b, int n)
{
    if (b->n < n) {
        fill(b);
    }
    return (unsigned)(b->acc >> (64 - n));
}

static inline void
skip(bits *b, int n)
{
    b->acc <<= n;
    b->n -= n;
}

/* The next Huffman-coded category, or -1 for an invalid code. */
static int
decode_cat(bits *b, const huff *h)
{
    unsigned look = peek(b, LJ_LOOKAHEAD);
    int l = h->look_len[look];
    if (l) {
        skip(b, l);
        return h->look_val[look];
    }
    unsigned code = peek(b, 16);
    for (l = LJ_LOOKAHEAD + 1; l <= 16; l++) {
        int32_t c = (int32_t)(code >> (16 - l));
        if (h->maxcode[l] >= 0 && c <= h->maxcode[l] && c >= h->mincode[l]) {
            skip(b, l);
            return h->vals[h->valptr[l] + (c - h->mincode[l])];
        }
    }
    return -1;
}

/* The difference coded by category t (H.1.2.2, F.2.2.1 EXTEND; category 16 is 32768). */
static inline int32_t
decode_diff(bits *b, int t)
{
    if (t == 0) {
        return 0;
    }
    if (t == 16) {
        return 32768;
    }
    int32_t v = (int32_t)peek(b, t);
    skip(b, t);
    return v < (1 << (t - 1)) ? v - (1 << t) + 1 : v;
}

/* At a restart marker: drop the bits of the last byte, expect RSTn, continue after it. */
static int
restart(bits *b, unsigned expect, tsr_err *err)
{
    /* back to the byte boundary: what is buffered beyond the consumed bits is discarded, so
     * rewind the reader to the first byte not fully consumed */
    b->acc = 0;
    b->n = 0;
    if (!b->marker) {
        /* the buffered bytes were consumed past the boundary: find the marker from p */
        while (b->p < b->end && !(b->p[0] == 0xFF && b->p + 1 < b->end && b->p[1] != 0x00)) {
            b->p++;
        }
    }
    if (b->end - b->p < 2 || b->p[0] != 0xFF || b->p[1] != (uint8_t)(0xD0 + (expect & 7))) {
        return corrupt(err, "missing or out-of-order restart marker");
    }
    b->p += 2;
    b->marker = 0;
    return TSR_OK;
}

/* ---------------------------------------------------------------- scans */

typedef struct scan {
    unsigned n;
    unsigned comp[LJ_MAX_COMPS]; /* frame component index */
    unsigned table[LJ_MAX_COMPS];
    unsigned predictor, pt;
} scan;

/* Decodes one scan into out (interleaved samples of ncomp components, 16 bits each). */
static int
decode_scan(const ljpeg *j, const scan *s, bits *b, uint16_t *out, tsr_err *err)
{
    const unsigned w = j->width, h = j->height, nc = j->ncomp;
    const unsigned mask = 0xFFFFu;
    const int32_t init = (int32_t)1 << (j->precision - s->pt - 1);
    unsigned mcus = 0, rst = 0;
    int first_line = 1; /* the first row of the scan or after a restart */
    for (unsigned y = 0; y < h; y++) {
        for (unsigned x = 0; x < w; x++) {
            if (j->restart && mcus == j->restart) {
                int rc = restart(b, rst++, err);
                if (rc != TSR_OK) {
                    return rc;
                }
                mcus = 0;
                first_line = 1;
            }
            int first_of_interval = j->restart ? mcus == 0 : (x == 0 && y == 0);
            for (unsigned c = 0; c < s->n; c++) {
                unsigned ci = s->comp[c];
                uint16_t *px = out + ((size_t)y * w + x) * nc + ci;
                int32_t pred;
                if (first_of_interval) {
                    pred = init;
                } else if (first_line) {
                    pred = x > 0 ? px[-(ptrdiff_t)nc] : px[-(ptrdiff_t)w * nc];
                } else if (x == 0) {
                    pred = px[-(ptrdiff_t)w * nc];
                } else {
                    int32_t ra = px[-(ptrdiff_t)nc], rb = px[-(ptrdiff_t)w * nc],
                            rc_ = px[-(ptrdiff_t)w * nc - nc];
                    switch (s->predictor) {
                    case 1: pred = ra; break;
                    case 2: pred = rb; break;
                    case 3: pred = rc_; break;
                    case 4: pred = ra + rb - rc_; break;
                    case 5: pred = ra + ((rb - rc_) >> 1); break;
                    case 6: pred = rb + ((ra - rc_) >> 1); break;
                    default: pred = (ra + rb) >> 1; break;
                    }
                }
                int t = decode_cat(b, &j->dc[s->table[c]]);
                if (t < 0) {
                    return corrupt(err, "invalid Huffman code");
                }
                *px = (uint16_t)((unsigned)(pred + decode_diff(b, t)) & mask);
            }
            mcus++;
        }
        /* the next row has upper neighbours, unless a restart falls at its start (H.1.1:
         * restart intervals are whole rows; the restart above sets first_line again) */
        first_line = 0;
    }
    return TSR_OK;
}

int
rnd__ljpeg_decode(const rnd_info *info, const uint8_t *data, size_t len, rnd_frame *out,
                  tsr_err *err)
{
    (void)info;
    ljpeg j;
    memset(&j, 0, sizeof j);
    if (len < 4 || data[0] != 0xFF || data[1] != 0xD8) {
        return corrupt(err, "no SOI marker");
    }
    size_t i = 2;
    uint16_t *samples = NULL;
    int rc = TSR_OK, have_frame = 0, scans = 0;
    unsigned done[LJ_MAX_COMPS] = {0};
    while (rc == TSR_OK) {
        /* next marker (fill bytes 0xFF allowed) */
        while (i < len && data[i] == 0xFF && i + 1 < len && data[i + 1] == 0xFF) {
            i++;
        }
        if (i + 1 >= len || data[i] != 0xFF) {
            rc = scans ? TSR_OK : corrupt(err, "no scan before the end of the data");
            break;
        }
        unsigned m = data[i + 1];
        i += 2;
        if (m == 0xD9) { /* EOI */
            break;
        }
        if (m >= 0xD0 && m <= 0xD7) {
            continue; /* a stray RSTn between scans */
        }
        if (i + 2 > len) {
            rc = corrupt(err, "truncated marker segment");
            break;
        }
        unsigned seglen = be16(data + i);
        if (seglen < 2 || i + seglen > len) {
            rc = corrupt(err, "a marker segment runs past the end of the data");
            break;
        }
        const uint8_t *s = data + i + 2;
        unsigned sl = seglen - 2;
        i += seglen;
        if (m == 0xC3) { /* SOF3 */
            if (have_frame || sl < 6) {
                rc = corrupt(err, have_frame ? "two frame headers" : "short SOF3");
                break;
            }
            j.precision = s[0];
            j.height = be16(s + 1);
            j.width = be16(s + 3);
            j.ncomp = s[5];
            if (j.precision < 2 || j.precision > 16 || j.ncomp < 1 || j.ncomp > LJ_MAX_COMPS ||
                sl < 6 + 3 * j.ncomp) {
                rc = corrupt(err, "SOF3: precision, components or length out of range");
                break;
            }
            for (unsigned c = 0; c < j.ncomp; c++) {
                j.comp_id[c] = s[6 + 3 * c];
                if (s[7 + 3 * c] != 0x11) {
                    rc = tsr_err_set(err, TSR_EUNSUPP,
                                     "lossless JPEG with subsampled components");
                    break;
                }
            }
            if (rc != TSR_OK) {
                break;
            }
            if (j.width != out->width || j.height != out->height || j.ncomp != out->samples) {
                rc = tsr_err_set(err, TSR_ECORRUPT,
                                 "lossless JPEG is %ux%u with %u component(s), the image %ux%u "
                                 "with %u",
                                 j.width, j.height, j.ncomp, (unsigned)out->width,
                                 (unsigned)out->height, (unsigned)out->samples);
                break;
            }
            if ((j.precision > 8) != (rnd_type_size(out->type) == 2)) {
                rc = tsr_err_set(err, TSR_ECORRUPT,
                                 "lossless JPEG has %u-bit samples, BitsAllocated is %u",
                                 j.precision, (unsigned)rnd_type_size(out->type) * 8);
                break;
            }
            samples = calloc((size_t)j.width * j.height * j.ncomp, sizeof *samples);
            if (!samples) {
                rc = tsr_err_set(err, TSR_ENOMEM, "out of memory decoding lossless JPEG");
                break;
            }
            have_frame = 1;
        } else if ((m >= 0xC0 && m <= 0xCF) && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            rc = tsr_err_set(err, TSR_EUNSUPP, "JPEG process SOF%u in a lossless transfer syntax",
                             m - 0xC0);
        } else if (m == 0xC4) {
            rc = parse_dht(&j, s, sl, err);
        } else if (m == 0xDD) {
            if (sl != 2) {
                rc = corrupt(err, "DRI segment of the wrong length");
            } else {
                j.restart = be16(s);
            }
        } else if (m == 0xDA) { /* SOS */
            scan sc;
            memset(&sc, 0, sizeof sc);
            if (!have_frame || sl < 1 || s[0] < 1 || s[0] > j.ncomp || sl != 4 + 2u * s[0]) {
                rc = corrupt(err, have_frame ? "bad SOS header" : "a scan before the frame");
                break;
            }
            sc.n = s[0];
            for (unsigned c = 0; c < sc.n && rc == TSR_OK; c++) {
                unsigned id = s[1 + 2 * c], td = s[2 + 2 * c] >> 4, k;
                for (k = 0; k < j.ncomp && j.comp_id[k] != id; k++) {
                }
                if (k == j.ncomp || done[k] || td > 3 || !j.dc[td].present) {
                    rc = corrupt(err, "SOS names an unknown component or Huffman table");
                    break;
                }
                sc.comp[c] = k;
                sc.table[c] = td;
            }
            if (rc != TSR_OK) {
                break;
            }
            sc.predictor = s[1 + 2 * sc.n];
            sc.pt = s[3 + 2 * sc.n] & 15;
            if (sc.predictor < 1 || sc.predictor > 7 || sc.pt >= j.precision) {
                rc = corrupt(err, "SOS: predictor or point transform out of range");
                break;
            }
            bits b = {data + i, data + len, 0, 0, 0};
            rc = decode_scan(&j, &sc, &b, samples, err);
            if (rc != TSR_OK) {
                break;
            }
            for (unsigned c = 0; c < sc.n; c++) {
                done[sc.comp[c]] = 1 + sc.pt; /* remembered: the point transform of the scan */
            }
            scans++;
            /* continue after the entropy-coded data: the next marker that is not RSTn */
            const uint8_t *p = b.p;
            while (p + 1 < data + len &&
                   !(p[0] == 0xFF && p[1] != 0x00 && !(p[1] >= 0xD0 && p[1] <= 0xD7))) {
                p++;
            }
            i = (size_t)(p - data);
        }
        /* APPn, COM, DQT and others: skipped */
    }
    if (rc == TSR_OK) {
        for (unsigned c = 0; c < j.ncomp; c++) {
            if (!done[c]) {
                rc = corrupt(err, "a component has no scan");
                break;
            }
        }
    }
    if (rc == TSR_OK) {
        size_t n = (size_t)j.width * j.height * j.ncomp;
        if (rnd_type_size(out->type) == 1) {
            uint8_t *o = out->data;
            for (size_t k = 0; k < n; k++) {
                o[k] = (uint8_t)(samples[k] << (done[k % j.ncomp] - 1));
            }
        } else {
            uint16_t *o = out->data;
            for (size_t k = 0; k < n; k++) {
                o[k] = (uint16_t)(samples[k] << (done[k % j.ncomp] - 1));
            }
        }
        out->photometric = info->photometric;
    }
    free(samples);
    return rc;
}
