/* SPDX-License-Identifier: MIT */
/* rnd_codec_jpeg12.c: 12-bit lossy JPEG (ITU-T T.81 extended sequential DCT with Huffman coding,
 * process 4: SOF1, or SOF0 as some encoders label it), the 12-bit half of transfer syntax
 * 1.2.840.10008.1.2.4.51, decoded here rather than by GDCM.
 *
 * Why our own: Debian's libjpeg-turbo 2.1 has no 12-bit build, and GDCM's IJG build leaks its
 * memory pools on every corrupt stream it gives up on (found by fuzzing; see
 * tests/fuzz/lsan.supp). The sequential process is small: per 8x8 block a DC difference and
 * run-length coded AC coefficients (F.2.2), dequantized and inverse transformed.
 *
 * The inverse DCT is IJG's integer "islow" algorithm (Loeffler, Ligtenberg and Moschytz, with
 * IJG's scaling and rounding), so that the samples are bit for bit those GDCM's IJG produces:
 * a lossy decode is only defined to within a tolerance (T.83), and an exact match lets the tests
 * compare without one. 8-bit precision is decoded the same way (PASS1_BITS 2), for the odd file
 * whose BitsStored says 12 but whose stream is 8-bit.
 *
 * Colour (three components) is upsampled and converted to RGB here too, as IJG does by default:
 * 4:2:2 (the YBR_FULL_422 of DICOM) and 4:2:0 with IJG's "fancy" triangle filters, bit for bit;
 * other ratios by replication (as IJG does for them); YCbCr to RGB with IJG's fixed-point
 * formula. The
 * stream is YCbCr when the DICOM header says YBR_*, or says RGB but the stream carries a JFIF
 * marker or an Adobe marker with a transform (as the 8-bit path decides). GDCM decoded colour
 * before, after our decoder had vetted the stream, but its 12-bit codec assert()s -- aborting the
 * server -- on some streams that decode cleanly here (found by fuzzing within 20 s once a 12-bit
 * colour seed existed); it decodes no pixel data any more.
 *
 * Stricter than IJG, which warns and carries on: an invalid Huffman code or a missing restart
 * marker is an error. Like IJG, data that ends early decodes as zero bits. */
#include "rnd_jpeg_huff.h"

#include <stdlib.h>
#include <string.h>

#define J12_WHO       "12-bit JPEG"
#define J12_MAX_COMPS 4

typedef struct comp {
    uint8_t id, h, v, tq;
    /* decoded samples, whole blocks: bw * 8 wide, bh * 8 high */
    uint16_t *plane;
    unsigned bw, bh;
    /* blocks of the component in a scan of it alone (A.2.2) */
    unsigned nbw, nbh;
    int done;
} comp;

typedef struct jpeg12 {
    unsigned precision, width, height, ncomp, hmax, vmax;
    comp c[J12_MAX_COMPS];
    uint16_t q[4][64]; /* natural order */
    int q_present[4];
    rnd__huff dc[4], ac[4];
    unsigned restart;
    /* islow parameters of the precision */
    int pass1_bits;
    int32_t maxj;
    /* colour markers (APP0 JFIF, APP14 Adobe and its transform flag) */
    int saw_jfif, saw_adobe, adobe_transform;
} jpeg12;

/* Zig-zag position k -> natural order, with IJG's 16 extra entries so that a run past 63 in a
 * corrupt block lands on coefficient 63 (as IJG's does) instead of outside the block. */
static const uint8_t natural_order[64 + 16] = {
    0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,  12, 19, 26, 33,
    40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36,
    29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54,
    47, 55, 62, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63, 63};

static int
corrupt(tsr_err *err, const char *what)
{
    return tsr_err_set(err, TSR_ECORRUPT, J12_WHO ": %s", what);
}

/* ---------------------------------------------------------------- inverse DCT */

#define CONST_BITS 13
#define FIX_0_298631336 2446
#define FIX_0_390180644 3196
#define FIX_0_541196100 4433
#define FIX_0_765366865 6270
#define FIX_0_899976223 7373
#define FIX_1_175875602 9633
#define FIX_1_501321110 12299
#define FIX_1_847759065 15137
#define FIX_1_961570560 16069
#define FIX_2_053119869 16819
#define FIX_2_562915447 20995
#define FIX_3_072711026 25172

static inline int64_t
descale(int64_t x, int n)
{
    return (x + ((int64_t)1 << (n - 1))) >> n;
}

/* IJG's workspace holds ints: wrap as its (int) cast does on the corrupt input that overflows. */
static inline int32_t
to_int(int64_t x)
{
    return (int32_t)(uint32_t)(uint64_t)x;
}

/* IJG's post-IDCT range limit (jdmaster.c prepare_range_limit_table): x is the level-shifted
 * sample; in range it is x + 2^(P-1) clamped, far out of range IJG's table wraps, and so do we. */
static inline uint16_t
range_limit(int64_t x, int32_t maxj)
{
    const int32_t n = maxj + 1, center = n / 2;
    uint32_t idx = (uint32_t)(uint64_t)x & (uint32_t)(4 * n - 1);
    if (idx < (uint32_t)center) {
        return (uint16_t)(center + (int32_t)idx);
    }
    if (idx < (uint32_t)(2 * n)) {
        return (uint16_t)maxj;
    }
    if (idx < (uint32_t)(4 * n - center)) {
        return 0;
    }
    return (uint16_t)(idx - (uint32_t)(4 * n - center));
}

/* The odd part of one 1-D pass (shared by columns and rows): in[1], in[3], in[5], in[7] ->
 * t[0..3] as IJG names them tmp0..tmp3. */
static inline void
odd_part(int64_t i1, int64_t i3, int64_t i5, int64_t i7, int64_t t[4])
{
    int64_t tmp0 = i7, tmp1 = i5, tmp2 = i3, tmp3 = i1;
    int64_t z1 = tmp0 + tmp3, z2 = tmp1 + tmp2, z3 = tmp0 + tmp2, z4 = tmp1 + tmp3;
    int64_t z5 = (z3 + z4) * FIX_1_175875602;
    tmp0 *= FIX_0_298631336;
    tmp1 *= FIX_2_053119869;
    tmp2 *= FIX_3_072711026;
    tmp3 *= FIX_1_501321110;
    z1 *= -FIX_0_899976223;
    z2 *= -FIX_2_562915447;
    z3 *= -FIX_1_961570560;
    z4 *= -FIX_0_390180644;
    z3 += z5;
    z4 += z5;
    t[0] = tmp0 + z1 + z3;
    t[1] = tmp1 + z2 + z4;
    t[2] = tmp2 + z2 + z3;
    t[3] = tmp3 + z1 + z4;
}

/* The even part: in[0], in[2], in[4], in[6] -> tmp10, tmp11, tmp12, tmp13. */
static inline void
even_part(int64_t i0, int64_t i2, int64_t i4, int64_t i6, int64_t e[4])
{
    int64_t z1 = (i2 + i6) * FIX_0_541196100;
    int64_t tmp2 = z1 + i6 * -FIX_1_847759065;
    int64_t tmp3 = z1 + i2 * FIX_0_765366865;
    int64_t tmp0 = (i0 + i4) * ((int64_t)1 << CONST_BITS);
    int64_t tmp1 = (i0 - i4) * ((int64_t)1 << CONST_BITS);
    e[0] = tmp0 + tmp3;
    e[1] = tmp1 + tmp2;
    e[2] = tmp1 - tmp2;
    e[3] = tmp0 - tmp3;
}

/* One block: coefficients (natural order) times the quantization table, inverse transformed
 * into out (stride in samples). */
static void
idct_islow(const jpeg12 *j, const int16_t coef[64], const uint16_t q[64], uint16_t *out,
           size_t stride)
{
    const int p1 = j->pass1_bits;
    int32_t ws[64];
    /* pass 1: columns */
    for (int col = 0; col < 8; col++) {
        const int16_t *in = coef + col;
        const uint16_t *qt = q + col;
        int32_t *w = ws + col;
        if (!in[8] && !in[16] && !in[24] && !in[32] && !in[40] && !in[48] && !in[56]) {
            int32_t dc = to_int((int64_t)in[0] * qt[0] * ((int64_t)1 << p1));
            for (int r = 0; r < 8; r++) {
                w[8 * r] = dc;
            }
            continue;
        }
        int64_t e[4], t[4];
        even_part((int64_t)in[0] * qt[0], (int64_t)in[16] * qt[16], (int64_t)in[32] * qt[32],
                  (int64_t)in[48] * qt[48], e);
        odd_part((int64_t)in[8] * qt[8], (int64_t)in[24] * qt[24], (int64_t)in[40] * qt[40],
                 (int64_t)in[56] * qt[56], t);
        const int sh = CONST_BITS - p1;
        w[0] = to_int(descale(e[0] + t[3], sh));
        w[56] = to_int(descale(e[0] - t[3], sh));
        w[8] = to_int(descale(e[1] + t[2], sh));
        w[48] = to_int(descale(e[1] - t[2], sh));
        w[16] = to_int(descale(e[2] + t[1], sh));
        w[40] = to_int(descale(e[2] - t[1], sh));
        w[24] = to_int(descale(e[3] + t[0], sh));
        w[32] = to_int(descale(e[3] - t[0], sh));
    }
    /* pass 2: rows */
    for (int row = 0; row < 8; row++) {
        const int32_t *w = ws + 8 * row;
        uint16_t *o = out + (size_t)row * stride;
        if (!w[1] && !w[2] && !w[3] && !w[4] && !w[5] && !w[6] && !w[7]) {
            uint16_t v = range_limit(to_int(descale(w[0], p1 + 3)), j->maxj);
            for (int k = 0; k < 8; k++) {
                o[k] = v;
            }
            continue;
        }
        int64_t e[4], t[4];
        even_part(w[0], w[2], w[4], w[6], e);
        odd_part(w[1], w[3], w[5], w[7], t);
        const int sh = CONST_BITS + p1 + 3;
        o[0] = range_limit(to_int(descale(e[0] + t[3], sh)), j->maxj);
        o[7] = range_limit(to_int(descale(e[0] - t[3], sh)), j->maxj);
        o[1] = range_limit(to_int(descale(e[1] + t[2], sh)), j->maxj);
        o[6] = range_limit(to_int(descale(e[1] - t[2], sh)), j->maxj);
        o[2] = range_limit(to_int(descale(e[2] + t[1], sh)), j->maxj);
        o[5] = range_limit(to_int(descale(e[2] - t[1], sh)), j->maxj);
        o[3] = range_limit(to_int(descale(e[3] + t[0], sh)), j->maxj);
        o[4] = range_limit(to_int(descale(e[3] - t[0], sh)), j->maxj);
    }
}

/* ---------------------------------------------------------------- entropy decoding */

/* One block's coefficients (F.2.2.1, F.2.2.2), natural order. *pred is the component's DC
 * predictor. IJG keeps coefficients as 16-bit JCOEF; so do we, wrapping a corrupt DC alike. */
static int
decode_block(rnd__bits *b, const rnd__huff *dc, const rnd__huff *ac, int32_t *pred,
             int16_t coef[64], tsr_err *err)
{
    memset(coef, 0, 64 * sizeof *coef);
    int s = rnd__huff_decode(b, dc);
    if (s < 0) {
        return corrupt(err, "invalid Huffman code");
    }
    if (s) {
        *pred = (int32_t)((uint32_t)*pred + (uint32_t)rnd__bits_extend(b, s));
    }
    coef[0] = (int16_t)(uint16_t)(uint32_t)*pred;
    for (int k = 1; k < 64; k++) {
        int rs = rnd__huff_decode(b, ac);
        if (rs < 0) {
            return corrupt(err, "invalid Huffman code");
        }
        int r = rs >> 4;
        s = rs & 15;
        if (s) {
            k += r;
            coef[natural_order[k]] = (int16_t)rnd__bits_extend(b, s);
        } else if (r == 15) {
            k += 15; /* ZRL: sixteen zeros */
        } else {
            break; /* EOB */
        }
    }
    return TSR_OK;
}

typedef struct scan {
    unsigned n;
    unsigned comp[J12_MAX_COMPS]; /* frame component index */
    unsigned td[J12_MAX_COMPS], ta[J12_MAX_COMPS];
} scan;

static int
decode_scan(jpeg12 *j, const scan *s, rnd__bits *b, tsr_err *err)
{
    /* A.2.2 / A.2.3: one component alone is coded block by block over its own extent; several
     * are interleaved in MCUs of H x V blocks each. */
    unsigned mcux, mcuy;
    if (s->n == 1) {
        mcux = j->c[s->comp[0]].nbw;
        mcuy = j->c[s->comp[0]].nbh;
    } else {
        mcux = (j->width + 8 * j->hmax - 1) / (8 * j->hmax);
        mcuy = (j->height + 8 * j->vmax - 1) / (8 * j->vmax);
    }
    int32_t pred[J12_MAX_COMPS] = {0};
    int16_t coef[64];
    unsigned mcus = 0, rst = 0;
    for (unsigned my = 0; my < mcuy; my++) {
        for (unsigned mx = 0; mx < mcux; mx++) {
            if (j->restart && mcus == j->restart) {
                int rc = rnd__bits_restart(b, rst++, J12_WHO, err);
                if (rc != TSR_OK) {
                    return rc;
                }
                mcus = 0;
                memset(pred, 0, sizeof pred);
            }
            for (unsigned k = 0; k < s->n; k++) {
                comp *c = &j->c[s->comp[k]];
                unsigned h = s->n == 1 ? 1 : c->h, v = s->n == 1 ? 1 : c->v;
                for (unsigned by = 0; by < v; by++) {
                    for (unsigned bx = 0; bx < h; bx++) {
                        int rc = decode_block(b, &j->dc[s->td[k]], &j->ac[s->ta[k]], &pred[k],
                                              coef, err);
                        if (rc != TSR_OK) {
                            return rc;
                        }
                        size_t x = ((size_t)mx * h + bx) * 8, y = ((size_t)my * v + by) * 8;
                        size_t stride = (size_t)c->bw * 8;
                        idct_islow(j, coef, j->q[c->tq], c->plane + y * stride + x, stride);
                    }
                }
            }
            mcus++;
        }
    }
    return TSR_OK;
}

/* ---------------------------------------------------------------- headers */

static int
parse_sof(jpeg12 *j, const rnd__jpeg_seg *seg, const rnd_frame *out, tsr_err *err)
{
    const uint8_t *s = seg->body;
    if (seg->len < 6) {
        return corrupt(err, "short SOF segment");
    }
    j->precision = s[0];
    j->height = rnd__be16(s + 1);
    j->width = rnd__be16(s + 3);
    j->ncomp = s[5];
    if ((j->precision != 8 && j->precision != 12) || j->ncomp < 1 ||
        j->ncomp > J12_MAX_COMPS || seg->len < 6 + 3 * j->ncomp) {
        return corrupt(err, "SOF: precision, components or length out of range");
    }
    if (j->width != out->width || j->height != out->height) {
        return tsr_err_set(err, TSR_ECORRUPT, J12_WHO " is %ux%u, the image %ux%u", j->width,
                           j->height, (unsigned)out->width, (unsigned)out->height);
    }
    if (j->precision > 8 && rnd_type_size(out->type) != 2) {
        return tsr_err_set(err, TSR_ECORRUPT, J12_WHO " has %u-bit samples, BitsAllocated is 8",
                           j->precision);
    }
    j->pass1_bits = j->precision == 8 ? 2 : 1;
    j->maxj = (1 << j->precision) - 1;
    for (unsigned k = 0; k < j->ncomp; k++) {
        comp *c = &j->c[k];
        c->id = s[6 + 3 * k];
        c->h = s[7 + 3 * k] >> 4;
        c->v = s[7 + 3 * k] & 15;
        c->tq = s[8 + 3 * k];
        if (c->h < 1 || c->h > 4 || c->v < 1 || c->v > 4 || c->tq > 3) {
            return corrupt(err, "SOF: sampling factor or quantization table out of range");
        }
        j->hmax = c->h > j->hmax ? c->h : j->hmax;
        j->vmax = c->v > j->vmax ? c->v : j->vmax;
    }
    unsigned mcux = (j->width + 8 * j->hmax - 1) / (8 * j->hmax);
    unsigned mcuy = (j->height + 8 * j->vmax - 1) / (8 * j->vmax);
    for (unsigned k = 0; k < j->ncomp; k++) {
        comp *c = &j->c[k];
        c->bw = mcux * c->h;
        c->bh = mcuy * c->v;
        /* ceil(ceil(X * H / Hmax) / 8) (A.1.1) */
        c->nbw = (unsigned)(((uint64_t)j->width * c->h + (uint64_t)j->hmax * 8 - 1) / (j->hmax * 8));
        c->nbh =
            (unsigned)(((uint64_t)j->height * c->v + (uint64_t)j->vmax * 8 - 1) / (j->vmax * 8));
        c->plane = calloc((size_t)c->bw * c->bh * 64, sizeof *c->plane);
        if (!c->plane) {
            return tsr_err_set(err, TSR_ENOMEM, "out of memory decoding " J12_WHO);
        }
    }
    return TSR_OK;
}

static int
parse_dqt(jpeg12 *j, const uint8_t *s, unsigned len, tsr_err *err)
{
    while (len > 0) {
        unsigned pq = s[0] >> 4, tq = s[0] & 15, n = pq ? 129 : 65;
        if (pq > 1 || tq > 3 || len < n) {
            return corrupt(err, "DQT: bad precision, table number or length");
        }
        for (unsigned k = 0; k < 64; k++) {
            j->q[tq][natural_order[k]] =
                pq ? (uint16_t)rnd__be16(s + 1 + 2 * k) : (uint16_t)s[1 + k];
        }
        j->q_present[tq] = 1;
        s += n;
        len -= n;
    }
    return TSR_OK;
}

static int
parse_sos(jpeg12 *j, const rnd__jpeg_seg *seg, scan *sc, tsr_err *err)
{
    const uint8_t *s = seg->body;
    memset(sc, 0, sizeof *sc);
    if (!j->ncomp) {
        return corrupt(err, "a scan before the frame header");
    }
    if (seg->len < 1 || s[0] < 1 || s[0] > j->ncomp || seg->len != 4 + 2u * s[0]) {
        return corrupt(err, "bad SOS header");
    }
    sc->n = s[0];
    unsigned blocks = 0;
    for (unsigned k = 0; k < sc->n; k++) {
        unsigned id = s[1 + 2 * k], td = s[2 + 2 * k] >> 4, ta = s[2 + 2 * k] & 15, c;
        for (c = 0; c < j->ncomp && j->c[c].id != id; c++) {
        }
        if (c == j->ncomp || j->c[c].done || td > 3 || ta > 3 || !j->dc[td].present ||
            !j->ac[ta].present) {
            return corrupt(err, "SOS names an unknown component or Huffman table");
        }
        if (!j->q_present[j->c[c].tq]) {
            return corrupt(err, "a component's quantization table is missing");
        }
        j->c[c].done = 1;
        sc->comp[k] = c;
        sc->td[k] = td;
        sc->ta[k] = ta;
        blocks += j->c[c].h * j->c[c].v;
    }
    if (sc->n > 1 && blocks > 10) {
        return corrupt(err, "more than 10 blocks in an MCU"); /* B.2.3 */
    }
    /* Ss, Se, Ah, Al are those of a sequential scan (0, 63, 0, 0); IJG ignores them with a
     * warning, and NEMA's PVRG-coded samples have Se = 0, so do we (without the warning). */
    return TSR_OK;
}

/* ---------------------------------------------------------------- colour */

/* Component c's samples for output row y, upsampled to the frame's width into row[] (IJG's
 * fancy filters for 2:1 horizontal, and 2:1 both ways, with more than two samples a row; else
 * replication). */
static void
upsample_row(const jpeg12 *j, const comp *c, unsigned y, int32_t *row)
{
    const unsigned rx = j->hmax / c->h, ry = j->vmax / c->v;
    const uint16_t *in = c->plane + (size_t)(y / ry) * c->bw * 8;
    const unsigned dw = (unsigned)(((uint64_t)j->width * c->h + j->hmax - 1) / j->hmax);
    if (rx == 1) {
        for (unsigned x = 0; x < j->width; x++) {
            row[x] = in[x];
        }
    } else if (rx == 2 && ry == 2 && dw > 2) {
        /* jdsample.c h2v2_fancy_upsample: the nearer and further input rows weighted 3:1, then
         * the columns likewise; the rows above the first and below the last repeat them */
        const unsigned dh = (unsigned)(((uint64_t)j->height * c->v + j->vmax - 1) / j->vmax);
        const unsigned r0 = y / 2;
        const unsigned r1 = y % 2 == 0 ? (r0 == 0 ? 0 : r0 - 1) : (r0 + 1 >= dh ? dh - 1 : r0 + 1);
        const uint16_t *a = c->plane + (size_t)r0 * c->bw * 8,
                       *b = c->plane + (size_t)r1 * c->bw * 8;
        int32_t *o = row;
        int32_t this_sum = a[0] * 3 + b[0], next_sum = a[1] * 3 + b[1], last_sum;
        o[0] = (this_sum * 4 + 8) >> 4;
        o[1] = (this_sum * 3 + next_sum + 7) >> 4;
        o += 2;
        last_sum = this_sum;
        this_sum = next_sum;
        for (unsigned k = 2; k < dw; k++) {
            next_sum = a[k] * 3 + b[k];
            o[0] = (this_sum * 3 + last_sum + 8) >> 4;
            o[1] = (this_sum * 3 + next_sum + 7) >> 4;
            o += 2;
            last_sum = this_sum;
            this_sum = next_sum;
        }
        o[0] = (this_sum * 3 + last_sum + 8) >> 4;
        o[1] = (this_sum * 4 + 7) >> 4;
    } else if (rx == 2 && ry == 1 && dw > 2) {
        /* jdsample.c h2v1_fancy_upsample: 3/4 of the nearer sample, 1/4 of the further */
        int32_t *o = row;
        o[0] = in[0];
        o[1] = (in[0] * 3 + in[1] + 2) >> 2;
        o += 2;
        for (unsigned k = 1; k + 1 < dw; k++) {
            int32_t v = in[k] * 3;
            o[0] = (v + in[k - 1] + 1) >> 2;
            o[1] = (v + in[k + 1] + 2) >> 2;
            o += 2;
        }
        o[0] = (in[dw - 1] * 3 + in[dw - 2] + 1) >> 2;
        o[1] = in[dw - 1];
        /* row has room for 2 * dw >= width samples */
    } else {
        for (unsigned x = 0; x < j->width; x++) {
            row[x] = in[x / rx];
        }
    }
}

/* Three components into interleaved RGB samples of the frame's type. */
static int
write_colour(const jpeg12 *j, int ycc, rnd_frame *out, tsr_err *err)
{
    for (unsigned k = 0; k < 3; k++) {
        if (j->hmax % j->c[k].h || j->vmax % j->c[k].v) {
            return tsr_err_set(err, TSR_EUNSUPP,
                               J12_WHO " with sampling factors that do not divide each other");
        }
    }
    const int64_t maxj = j->maxj, center = (maxj + 1) / 2, half = (int64_t)1 << 15;
    int32_t *rows = malloc(sizeof *rows * 3 * ((size_t)j->width + 2 * 8 * 4));
    if (!rows) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory decoding " J12_WHO);
    }
    const size_t rw = (size_t)j->width + 2 * 8 * 4;
    const int wide = rnd_type_size(out->type) == 2;
    for (unsigned y = 0; y < j->height; y++) {
        for (unsigned k = 0; k < 3; k++) {
            upsample_row(j, &j->c[k], y, rows + k * rw);
        }
        const int32_t *c0 = rows, *c1 = rows + rw, *c2 = rows + 2 * rw;
        for (unsigned x = 0; x < j->width; x++) {
            int64_t r = c0[x], g = c1[x], b = c2[x];
            if (ycc) {
                /* jdcolor.c ycc_rgb_convert: SCALEBITS 16, FIX(1.40200) etc. */
                int64_t yy = c0[x], cb = c1[x] - center, cr = c2[x] - center;
                r = yy + ((91881 * cr + half) >> 16);
                g = yy + ((-22554 * cb + half - 46802 * cr) >> 16);
                b = yy + ((116130 * cb + half) >> 16);
            }
            int64_t v[3] = {r, g, b};
            for (int k = 0; k < 3; k++) {
                int64_t t = v[k] < 0 ? 0 : v[k] > maxj ? maxj : v[k];
                size_t at = ((size_t)y * j->width + x) * 3 + (size_t)k;
                if (wide) {
                    ((uint16_t *)out->data)[at] = (uint16_t)t;
                } else {
                    ((uint8_t *)out->data)[at] = (uint8_t)t;
                }
            }
        }
    }
    free(rows);
    out->photometric = RND_PI_RGB;
    return TSR_OK;
}

/* ---------------------------------------------------------------- frame */

int
rnd__jpeg12_decode(const rnd_info *info, const uint8_t *data, size_t len, rnd_frame *out,
                   tsr_err *err)
{
    if (len < 4 || data[0] != 0xFF || data[1] != 0xD8) {
        return corrupt(err, "no SOI marker");
    }
    jpeg12 *j = calloc(1, sizeof *j);
    if (!j) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory decoding " J12_WHO);
    }
    size_t i = 2;
    int rc = TSR_OK, scans = 0;
    while (rc == TSR_OK) {
        rnd__jpeg_seg seg;
        rc = rnd__jpeg_next_segment(data, len, &i, &seg, J12_WHO, err);
        if (rc == TSR_ENOTFOUND) {
            rc = scans ? TSR_OK : corrupt(err, "no scan before the end of the data");
            break;
        }
        if (rc != TSR_OK || seg.marker == 0xD9) { /* EOI */
            break;
        }
        unsigned m = seg.marker;
        if (!seg.body) {
            continue; /* SOI, or a stray RSTn between scans */
        }
        if (m == 0xC0 || m == 0xC1) {
            rc = j->ncomp ? corrupt(err, "two frame headers") : parse_sof(j, &seg, out, err);
        } else if (m >= 0xC2 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            rc = tsr_err_set(err, TSR_EUNSUPP,
                             "JPEG process SOF%u is not sequential DCT with Huffman coding "
                             "(transfer syntax 1.2.840.10008.1.2.4.51)",
                             m - 0xC0);
        } else if (m == 0xC4) {
            rc = rnd__huff_parse_dht(j->dc, j->ac, 15, seg.body, seg.len, J12_WHO, err);
        } else if (m == 0xDB) {
            rc = parse_dqt(j, seg.body, seg.len, err);
        } else if (m == 0xE0 && seg.len >= 5 && memcmp(seg.body, "JFIF", 5) == 0) {
            j->saw_jfif = 1;
        } else if (m == 0xEE && seg.len >= 12 && memcmp(seg.body, "Adobe", 5) == 0) {
            j->saw_adobe = 1;
            j->adobe_transform = seg.body[11];
        } else if (m == 0xDD) {
            rc = seg.len == 2 ? (j->restart = rnd__be16(seg.body), TSR_OK)
                              : corrupt(err, "DRI segment of the wrong length");
        } else if (m == 0xDA) {
            scan sc;
            rc = parse_sos(j, &seg, &sc, err);
            if (rc == TSR_OK) {
                rnd__bits b = {data + i, data + len, 0, 0, 0};
                rc = decode_scan(j, &sc, &b, err);
                i = rnd__jpeg_skip_entropy(data, len, (size_t)(b.p - data));
                scans++;
            }
        }
        /* APPn, COM and others: skipped */
    }
    for (unsigned k = 0; rc == TSR_OK && k < j->ncomp; k++) {
        if (!j->c[k].done) {
            rc = corrupt(err, "a component has no scan");
        }
    }
    if (rc == TSR_OK && j->ncomp != out->samples) {
        rc = tsr_err_set(err, TSR_ECORRUPT, J12_WHO " has %u component(s), the image %u",
                         j->ncomp, (unsigned)out->samples);
    }
    if (rc == TSR_OK && j->ncomp == 3) {
        int ycc;
        switch (info->photometric) {
        case RND_PI_YBR_FULL:
        case RND_PI_YBR_FULL_422:
        case RND_PI_YBR_PARTIAL_422:
        case RND_PI_YBR_PARTIAL_420:
        case RND_PI_YBR_ICT:
            ycc = 1;
            break;
        default:
            ycc = j->saw_jfif || (j->saw_adobe && j->adobe_transform != 0);
            break;
        }
        rc = write_colour(j, ycc, out, err);
    } else if (rc == TSR_OK && j->ncomp != 1) {
        rc = tsr_err_set(err, TSR_EUNSUPP, J12_WHO " with %u components", j->ncomp);
    } else if (rc == TSR_OK) {
        const comp *c = &j->c[0];
        size_t stride = (size_t)c->bw * 8;
        for (unsigned y = 0; y < j->height; y++) {
            const uint16_t *src = c->plane + y * stride;
            if (rnd_type_size(out->type) == 2) {
                memcpy((uint16_t *)out->data + (size_t)y * j->width, src, j->width * 2u);
            } else {
                uint8_t *dst = (uint8_t *)out->data + (size_t)y * j->width;
                for (unsigned x = 0; x < j->width; x++) {
                    dst[x] = (uint8_t)src[x];
                }
            }
        }
        out->photometric = info->photometric;
    }
    for (unsigned k = 0; k < J12_MAX_COMPS; k++) {
        free(j->c[k].plane);
    }
    free(j);
    return rc;
}
