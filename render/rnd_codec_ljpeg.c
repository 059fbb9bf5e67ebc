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
#include "rnd_jpeg_huff.h"

#include <stdlib.h>
#include <string.h>

#define LJ_MAX_COMPS 4
#define LJ_WHO       "lossless JPEG"

typedef struct ljpeg {
    unsigned precision, width, height, ncomp;
    uint8_t comp_id[LJ_MAX_COMPS];
    rnd__huff dc[4];
    unsigned restart; /* MCUs per restart interval, 0: none */
} ljpeg;

static int
corrupt(tsr_err *err, const char *what)
{
    return tsr_err_set(err, TSR_ECORRUPT, LJ_WHO ": %s", what);
}

/* The difference coded by category t (H.1.2.2, F.2.2.1 EXTEND; category 16 is 32768). */
static inline int32_t
decode_diff(rnd__bits *b, int t)
{
    if (t == 0) {
        return 0;
    }
    return t == 16 ? 32768 : rnd__bits_extend(b, t);
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
decode_scan(const ljpeg *j, const scan *s, rnd__bits *b, uint16_t *out, tsr_err *err)
{
    const unsigned w = j->width, h = j->height, nc = j->ncomp;
    const unsigned mask = 0xFFFFu;
    const int32_t init = (int32_t)1 << (j->precision - s->pt - 1);
    unsigned mcus = 0, rst = 0;
    int first_line = 1; /* the first row of the scan or after a restart */
    for (unsigned y = 0; y < h; y++) {
        for (unsigned x = 0; x < w; x++) {
            if (j->restart && mcus == j->restart) {
                int rc = rnd__bits_restart(b, rst++, LJ_WHO, err);
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
                int t = rnd__huff_decode(b, &j->dc[s->table[c]]);
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

/* decode_scan for the common case, one component and no restart interval (a CT or MR slice):
 * the same predictions with the per-sample branches hoisted out of each row. */
static int
decode_scan_grey(const ljpeg *j, const scan *s, rnd__bits *b, uint16_t *out, tsr_err *err)
{
    const unsigned w = j->width, h = j->height;
    const rnd__huff *tab = &j->dc[s->table[0]];
#define LJ_NEXT(dst, pred)                                                                         \
    do {                                                                                           \
        int t_ = rnd__huff_decode(b, tab);                                                         \
        if (t_ < 0) {                                                                              \
            return corrupt(err, "invalid Huffman code");                                           \
        }                                                                                          \
        (dst) = (uint16_t)((unsigned)((pred) + decode_diff(b, t_)) & 0xFFFFu);                     \
    } while (0)
    for (unsigned y = 0; y < h; y++) {
        uint16_t *px = out + (size_t)y * w;
        const uint16_t *up = px - w;
        if (y == 0) {
            LJ_NEXT(px[0], (int32_t)1 << (j->precision - s->pt - 1));
            for (unsigned x = 1; x < w; x++) {
                LJ_NEXT(px[x], px[x - 1]);
            }
            continue;
        }
        LJ_NEXT(px[0], up[0]);
        switch (s->predictor) {
        case 1:
            for (unsigned x = 1; x < w; x++) {
                LJ_NEXT(px[x], px[x - 1]);
            }
            break;
        case 2:
            for (unsigned x = 1; x < w; x++) {
                LJ_NEXT(px[x], up[x]);
            }
            break;
        case 3:
            for (unsigned x = 1; x < w; x++) {
                LJ_NEXT(px[x], up[x - 1]);
            }
            break;
        case 4:
            for (unsigned x = 1; x < w; x++) {
                LJ_NEXT(px[x], (int32_t)px[x - 1] + up[x] - up[x - 1]);
            }
            break;
        case 5:
            for (unsigned x = 1; x < w; x++) {
                LJ_NEXT(px[x], (int32_t)px[x - 1] + (((int32_t)up[x] - up[x - 1]) >> 1));
            }
            break;
        case 6:
            for (unsigned x = 1; x < w; x++) {
                LJ_NEXT(px[x], (int32_t)up[x] + (((int32_t)px[x - 1] - up[x - 1]) >> 1));
            }
            break;
        default:
            for (unsigned x = 1; x < w; x++) {
                LJ_NEXT(px[x], ((int32_t)px[x - 1] + up[x]) >> 1);
            }
            break;
        }
    }
#undef LJ_NEXT
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
        rnd__jpeg_seg seg;
        rc = rnd__jpeg_next_segment(data, len, &i, &seg, LJ_WHO, err);
        if (rc == TSR_ENOTFOUND) {
            rc = scans ? TSR_OK : corrupt(err, "no scan before the end of the data");
            break;
        }
        if (rc != TSR_OK || seg.marker == 0xD9) { /* EOI */
            break;
        }
        if (!seg.body) {
            continue; /* SOI, or a stray RSTn between scans */
        }
        unsigned m = seg.marker, sl = seg.len;
        const uint8_t *s = seg.body;
        if (m == 0xC3) { /* SOF3 */
            if (have_frame || sl < 6) {
                rc = corrupt(err, have_frame ? "two frame headers" : "short SOF3");
                break;
            }
            j.precision = s[0];
            j.height = rnd__be16(s + 1);
            j.width = rnd__be16(s + 3);
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
            rc = rnd__huff_parse_dht(j.dc, NULL, 16, s, sl, LJ_WHO, err);
        } else if (m == 0xDD) {
            if (sl != 2) {
                rc = corrupt(err, "DRI segment of the wrong length");
            } else {
                j.restart = rnd__be16(s);
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
            rnd__bits b = {data + i, data + len, 0, 0, 0};
            rc = j.ncomp == 1 && !j.restart ? decode_scan_grey(&j, &sc, &b, samples, err)
                                            : decode_scan(&j, &sc, &b, samples, err);
            if (rc != TSR_OK) {
                break;
            }
            for (unsigned c = 0; c < sc.n; c++) {
                done[sc.comp[c]] = 1 + sc.pt; /* remembered: the point transform of the scan */
            }
            scans++;
            /* continue after the entropy-coded data: the next marker that is not RSTn */
            i = rnd__jpeg_skip_entropy(data, len, (size_t)(b.p - data));
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
