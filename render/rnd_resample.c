/* SPDX-License-Identifier: MIT */
/* rnd_resample.c: display geometry. Pixel aspect correction, the DICOMweb viewport (crop, scale,
 * flip) and the one resampling pass that applies all of it.
 *
 * Coordinates. The "logical" image is the source shown with square pixels: the short axis of a
 * non-square pixel is stretched, never the long one shrunk, so no source detail is lost. The
 * viewport region (sx, sy, sw, sh) is given in logical coordinates, so a client that asks for a
 * region of what it was shown (a logical-sized image) gets that region. For square pixels
 * logical and source coordinates are the same. As rnd.h documents, a negative sw selects
 * [sx + sw, sx) mirrored left to right (sh likewise, top to bottom). The region may be fractional,
 * is clipped to the image, and is an error (TSR_EINVAL) only when nothing is left of it.
 *
 * One pass. Aspect, crop, scale and flip compose into one affine map per axis from output pixel
 * to source coordinate, so the source is resampled exactly once (resampling twice would blur
 * twice). The filter is separable: a horizontal pass over each source row that is needed, into a
 * small ring of intermediate rows, then a vertical pass per output row. Per-axis weight tables
 * are computed once per call.
 *
 * Fixed point. Weights are 14-bit integers (each table entry sums to exactly 1 << 14, so flat
 * areas stay flat). The intermediate rows keep 7 fractional bits in uint16 (255 << 7 fits), and
 * the vertical accumulator fits in int32 (255 << 7 << 14 < 2^31). Both passes round to
 * nearest, so scale-1 mappings on integer pixel positions reproduce the input exactly.
 *
 * Exact sizes. rnd_resample derives its output size from the viewport; the pyramid and IIIF
 * need a size fixed by the caller. rnd_resample_region maps a region onto any output size with
 * the same expressions as rnd_resample (so the two agree where sizes do), and rnd_resample_grid
 * places the output on a grid of fixed pitch with an offset (axis_map.off), which is what makes
 * a tile identical to the matching part of its level. */
#include "rnd_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Largest output (and viewport) size accepted on either axis. */
#define MAX_OUT 16384u

#define W_BITS   14 /* weight precision */
#define W_ONE    (1 << W_BITS)
#define MID_BITS 7 /* fractional bits kept between the two passes */

/* ---------------------------------------------------------------- pixel aspect */

static int
positive_finite(double v)
{
    return isfinite(v) && v > 0.0;
}

double
rnd_pixel_aspect(const rnd_info *info)
{
    if (!info) {
        return 1.0;
    }
    if (info->has_pixel_spacing && positive_finite(info->pixel_spacing[0]) &&
        positive_finite(info->pixel_spacing[1])) {
        double a = info->pixel_spacing[0] / info->pixel_spacing[1];
        if (positive_finite(a)) {
            return a;
        }
    }
    if (info->has_aspect && info->aspect[0] > 0 && info->aspect[1] > 0) {
        return (double)info->aspect[0] / (double)info->aspect[1];
    }
    return 1.0;
}

/* ---------------------------------------------------------------- viewport parsing */

/* Copies at most 48 characters of `s` into `dst` for an error message, replacing anything
 * unprintable, so a hostile query string cannot put control characters into a response. */
static void
quote_input(char dst[52], const char *s)
{
    size_t i = 0;
    for (; s[i] && i < 48; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (s[i]) {
        memcpy(dst + i, "...", 3);
        i += 3;
    }
    dst[i] = '\0';
}

/* Parses a viewport size: decimal digits only, 1..MAX_OUT. */
static int
parse_size(const char *p, const char *end, uint32_t *out)
{
    uint32_t v = 0;
    if (p == end) {
        return -1;
    }
    for (; p < end; p++) {
        if (*p < '0' || *p > '9') {
            return -1;
        }
        v = v * 10 + (uint32_t)(*p - '0');
        if (v > MAX_OUT) {
            return -1;
        }
    }
    if (v == 0) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Parses a decimal number. Only [0-9+-.eE] are let through to strtod, which keeps out what
 * strtod would otherwise accept (spaces, "inf", "nan", hexadecimal). */
static int
parse_number(const char *p, const char *end, double *out)
{
    char buf[64];
    size_t n = (size_t)(end - p);
    if (n == 0 || n >= sizeof buf) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!strchr("0123456789+-.eE", p[i])) {
            return -1;
        }
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    char *e;
    errno = 0;
    double v = strtod(buf, &e);
    if (e != buf + n || errno == ERANGE || !isfinite(v)) {
        return -1;
    }
    *out = v;
    return 0;
}

int
rnd_viewport_parse(const char *s, rnd_viewport *vp, tsr_err *err)
{
    static const char *const names[6] = {"vw", "vh", "sx", "sy", "sw", "sh"};
    const char *start[6], *end[6];
    char q[52];
    int n = 0;

    if (!s) {
        return tsr_err_set(err, TSR_EINVAL, "viewport: missing value");
    }
    quote_input(q, s);
    const char *p = s;
    for (;;) {
        const char *c = strchr(p, ',');
        if (n == 6) {
            n = 7; /* too many fields */
            break;
        }
        start[n] = p;
        end[n] = c ? c : p + strlen(p);
        n++;
        if (!c) {
            break;
        }
        p = c + 1;
    }
    if (n != 2 && n != 6) {
        return tsr_err_set(err, TSR_EINVAL, "viewport: expected vw,vh[,sx,sy,sw,sh], got '%s'", q);
    }

    rnd_viewport v = {0};
    if (parse_size(start[0], end[0], &v.vw) || parse_size(start[1], end[1], &v.vh)) {
        return tsr_err_set(err, TSR_EINVAL,
                           "viewport: vw and vh must be integers in 1..%u, got '%s'", MAX_OUT, q);
    }
    if (n == 6) {
        /* PS3.18 8.3.5.1.3 lets the region's values be elided: an empty field takes its
         * default (0 for sx/sy, "to the edge" for sw/sh). */
        double r[4] = {0.0, 0.0, 0.0, 0.0};
        int elided[4];
        for (int i = 0; i < 4; i++) {
            elided[i] = start[i + 2] == end[i + 2];
            if (!elided[i] && parse_number(start[i + 2], end[i + 2], &r[i])) {
                return tsr_err_set(err, TSR_EINVAL, "viewport: %s is not a finite number in '%s'",
                                   names[i + 2], q);
            }
        }
        /* A half-given origin ("5,,") is far more likely a client bug than a request for
         * y = 0, so the origin is elided whole or not at all. */
        if (elided[0] != elided[1]) {
            return tsr_err_set(err, TSR_EINVAL,
                               "viewport: sx and sy must both be given or both elided, got '%s'",
                               q);
        }
        if (r[0] < 0 || r[1] < 0) {
            return tsr_err_set(err, TSR_EINVAL, "viewport: sx and sy must be >= 0, got '%s'", q);
        }
        if ((!elided[2] && r[2] == 0) || (!elided[3] && r[3] == 0)) {
            return tsr_err_set(err, TSR_EINVAL, "viewport: sw and sh must be nonzero, got '%s'", q);
        }
        v.has_region = 1;
        v.sx = r[0];
        v.sy = r[1];
        v.sw = r[2];
        v.sh = r[3];
        v.sw_to_edge = elided[2];
        v.sh_to_edge = elided[3];
    }
    *vp = v;
    return TSR_OK;
}

/* ---------------------------------------------------------------- weight tables */

/* One axis of the mapping: output pixel o (o = 0..n_out-1, before any flip) covers source
 * coordinates [src0 + (off + o) * step, src0 + (off + o + 1) * step), with source pixel k
 * covering [k, k+1). `off` places the output inside a larger grid (a tile inside its pyramid
 * level): the weights of a pixel then depend only on its index in that grid, so a tile is
 * bit-for-bit the same as the matching part of the whole level. */
typedef struct axis_map {
    uint32_t n_src, n_out;
    double src0, step;
    int flip;
    uint32_t off;
} axis_map;

/* Per output pixel (in output order, i.e. after the flip): the first source pixel, then `taps`
 * weights at w + o * stride. Every entry has the same number of taps (short ones are padded
 * with zero weights) so the inner loops have a fixed trip count that the compiler unrolls. */
typedef struct axis_tab {
    uint32_t *first;
    int16_t *w;
    uint32_t stride;
    uint32_t taps;
} axis_tab;

static void
axis_tab_free(axis_tab *t)
{
    free(t->first);
    free(t->w);
    memset(t, 0, sizeof *t);
}

/* Converts real weights `wd` (non-negative, summing to 1) to fixed point through their running
 * sum, so the result sums to exactly W_ONE, no weight is off by more than one unit and none is
 * negative, even for footprints of thousands of pixels where each weight rounds to 0 or 1. Zero
 * taps at either end are dropped: *first is advanced and the number of taps left is returned. */
static uint32_t
quantize(const double *wd, uint32_t n, uint32_t *first, int16_t *w)
{
    double cum = 0.0;
    long prev = 0;
    uint32_t lo = n, hi = 0;
    for (uint32_t i = 0; i < n; i++) {
        cum += wd[i];
        long q = (i + 1 == n) ? W_ONE : lround(cum * W_ONE);
        if (q > W_ONE) {
            q = W_ONE;
        }
        if (q < prev) {
            q = prev;
        }
        w[i] = (int16_t)(q - prev);
        prev = q;
        if (w[i] != 0) {
            if (lo == n) {
                lo = i;
            }
            hi = i + 1;
        }
    }
    if (lo == n) { /* cannot happen with a positive total; keep one tap to stay well defined */
        w[0] = W_ONE;
        return 1;
    }
    if (lo > 0) {
        memmove(w, w + lo, (hi - lo) * sizeof *w);
    }
    *first += lo;
    return hi - lo;
}

/* Pads entry `w` (n taps from *first) to `taps` taps with zero weights, at the end or, near the
 * far edge of the source, at the start, so that no tap reads past the source. */
static void
pad_entry(int16_t *w, uint32_t n, uint32_t taps, uint32_t n_src, uint32_t *first)
{
    if (*first + taps <= n_src) {
        memset(w + n, 0, (taps - n) * sizeof *w);
        return;
    }
    uint32_t shift = *first + taps - n_src; /* <= *first because taps <= n_src */
    memmove(w + shift, w, n * sizeof *w);
    memset(w, 0, shift * sizeof *w);
    memset(w + shift + n, 0, (taps - shift - n) * sizeof *w);
    *first -= shift;
}

/* Builds the weight table of one axis: area averaging over the exact footprint when the axis is
 * downscaled (step > 1), bilinear between pixel centres otherwise. */
static int
axis_tab_build(const axis_map *m, axis_tab *t, tsr_err *err)
{
    int rc = TSR_OK;
    double *wd = NULL;
    uint32_t *count = NULL;
    int area = m->step > 1.0;
    memset(t, 0, sizeof *t);

    double taps = area ? ceil(m->step) + 2.0 : 2.0;
    if (taps > (double)m->n_src) {
        taps = (double)m->n_src;
    }
    t->stride = (uint32_t)taps;
    size_t nw;
    if (tsr_mul_size(m->n_out, t->stride, &nw)) {
        rc = tsr_err_set(err, TSR_ELIMIT, "resample: weight table too large");
        goto fail;
    }
    t->first = malloc(m->n_out * sizeof *t->first);
    t->w = malloc(nw * sizeof *t->w);
    count = malloc(m->n_out * sizeof *count);
    wd = malloc(t->stride * sizeof *wd);
    if (!t->first || !t->w || !count || !wd) {
        rc = tsr_err_set(err, TSR_ENOMEM, "resample: out of memory for weight tables");
        goto fail;
    }

    const double n_src = (double)m->n_src;
    for (uint32_t o = 0; o < m->n_out; o++) {
        uint32_t dst = m->flip ? m->n_out - 1 - o : o;
        uint32_t first, n = 0;
        const double pos = (double)o + (double)m->off;
        double f0 = m->src0 + pos * m->step;
        double f1 = f0 + m->step;
        f0 = f0 < 0.0 ? 0.0 : (f0 > n_src ? n_src : f0);
        f1 = f1 < 0.0 ? 0.0 : (f1 > n_src ? n_src : f1);
        if (area && f1 - f0 > 1e-9) {
            double k0 = floor(f0);
            double k1 = ceil(f1);
            first = (uint32_t)k0;
            for (double k = k0; k < k1 && n < t->stride; k += 1.0) {
                double lo = k > f0 ? k : f0;
                double hi = k + 1.0 < f1 ? k + 1.0 : f1;
                wd[n++] = hi > lo ? (hi - lo) / (f1 - f0) : 0.0;
            }
        } else {
            /* Pixel centres: output centre o + 0.5 maps to source coordinate c + 0.5. */
            double c = m->src0 + (pos + 0.5) * m->step - 0.5;
            if (c < 0.0) {
                c = 0.0;
            }
            if (c > n_src - 1.0) {
                c = n_src - 1.0;
            }
            double k = floor(c);
            double frac = c - k;
            first = (uint32_t)k;
            wd[n++] = 1.0 - frac;
            if (frac > 0.0 && first + 1 < m->n_src) {
                wd[n++] = frac;
            }
        }
        n = quantize(wd, n, &first, t->w + (size_t)dst * t->stride);
        t->first[dst] = first;
        count[dst] = n;
        if (n > t->taps) {
            t->taps = n;
        }
    }
    for (uint32_t o = 0; o < m->n_out; o++) {
        pad_entry(t->w + (size_t)o * t->stride, count[o], t->taps, m->n_src, &t->first[o]);
    }
    free(count);
    free(wd);
    return TSR_OK;

fail:
    free(count);
    free(wd);
    axis_tab_free(t);
    return rc;
}

/* ---------------------------------------------------------------- passes */

/* Horizontal pass of one source row into `mid` (n_out * ch values with MID_BITS fraction).
 * Called with constant `ch` and `n` (taps) so that the compiler unrolls the tap loop; `n` is
 * t->taps. */
static inline __attribute__((always_inline)) void
hpass_n(const uint8_t *row, const axis_tab *t, uint32_t n_out, int ch, uint32_t n,
        uint16_t *restrict mid)
{
    const int32_t half = 1 << (W_BITS - MID_BITS - 1);
    const uint32_t *first = t->first;
    const int16_t *w = t->w;
    const size_t stride = t->stride;
    for (uint32_t x = 0; x < n_out; x++, w += stride) {
        const uint8_t *p = row + (size_t)first[x] * (size_t)ch;
        if (ch == 1) {
            int32_t a = half;
            for (uint32_t j = 0; j < n; j++) {
                a += w[j] * p[j];
            }
            mid[x] = (uint16_t)(a >> (W_BITS - MID_BITS));
        } else {
            int32_t a0 = half, a1 = half, a2 = half;
            for (uint32_t j = 0; j < n; j++) {
                a0 += w[j] * p[3 * j];
                a1 += w[j] * p[3 * j + 1];
                a2 += w[j] * p[3 * j + 2];
            }
            mid[3 * x] = (uint16_t)(a0 >> (W_BITS - MID_BITS));
            mid[3 * x + 1] = (uint16_t)(a1 >> (W_BITS - MID_BITS));
            mid[3 * x + 2] = (uint16_t)(a2 >> (W_BITS - MID_BITS));
        }
    }
}

static inline __attribute__((always_inline)) void
hpass_ch(const uint8_t *row, const axis_tab *t, uint32_t n_out, int ch, uint16_t *mid)
{
    switch (t->taps) {
    case 1:
        hpass_n(row, t, n_out, ch, 1, mid);
        break;
    case 2:
        hpass_n(row, t, n_out, ch, 2, mid);
        break;
    case 3:
        hpass_n(row, t, n_out, ch, 3, mid);
        break;
    case 4:
        hpass_n(row, t, n_out, ch, 4, mid);
        break;
    default:
        hpass_n(row, t, n_out, ch, t->taps, mid);
        break;
    }
}

static void
hpass(const uint8_t *row, const axis_tab *t, uint32_t n_out, int ch, uint16_t *mid)
{
    if (ch == 1) {
        hpass_ch(row, t, n_out, 1, mid);
    } else {
        hpass_ch(row, t, n_out, 3, mid);
    }
}

/* Vertical pass for a few taps: each output value is summed in a register. */
static inline __attribute__((always_inline)) void
vpass_n(uint16_t *const *rows, const int16_t *w, size_t len, uint32_t n, uint8_t *restrict dst)
{
    const int32_t half = 1 << (W_BITS + MID_BITS - 1);
    const uint16_t *r[4];
    int32_t wj[4];
    for (uint32_t j = 0; j < n; j++) {
        r[j] = rows[j];
        wj[j] = w[j];
    }
    for (size_t k = 0; k < len; k++) {
        int32_t a = half;
        for (uint32_t j = 0; j < n; j++) {
            a += wj[j] * r[j][k];
        }
        a >>= W_BITS + MID_BITS;
        dst[k] = (uint8_t)(a > 255 ? 255 : a);
    }
}

/* Vertical pass for many taps (strong downscaling): accumulate row by row, which streams
 * through each intermediate row once instead of hopping between `n` rows per value. */
static void
vpass_many(uint16_t *const *rows, const int16_t *w, size_t len, uint32_t n, int32_t *restrict acc,
           uint8_t *restrict dst)
{
    const int32_t half = 1 << (W_BITS + MID_BITS - 1);
    for (size_t k = 0; k < len; k++) {
        acc[k] = half;
    }
    for (uint32_t j = 0; j < n; j++) {
        const uint16_t *restrict r = rows[j];
        int32_t wj = w[j];
        for (size_t k = 0; k < len; k++) {
            acc[k] += wj * r[k];
        }
    }
    for (size_t k = 0; k < len; k++) {
        int32_t a = acc[k] >> (W_BITS + MID_BITS);
        dst[k] = (uint8_t)(a > 255 ? 255 : a);
    }
}

/* State of the two passes. `ring` holds `ring_rows` intermediate rows (ring_rows = the vertical
 * tap count); tag[i] is the source row held in slot i (-1: none). The rows one output row needs
 * are consecutive, so they always sit in distinct slots. */
typedef struct pass_ctx {
    const rnd_image *src;
    const axis_tab *tx, *ty;
    uint32_t out_w, out_h;
    int flip_y;
    uint16_t *ring;
    int64_t *tag;
    uint16_t **rows; /* ring_rows pointers: the current output row's inputs */
    uint32_t ring_rows;
    int32_t *acc; /* row accumulator for vpass_many */
} pass_ctx;

static void
run_passes(const pass_ctx *c, rnd_image *out)
{
    const int ch = c->src->channels;
    const size_t row_len = (size_t)c->out_w * (size_t)ch;
    const uint32_t n = c->ty->taps;

    /* Visit output rows in increasing source order so each intermediate row is computed once
     * (the table is stored in output order, which a vertical flip reverses). */
    for (uint32_t i = 0; i < c->out_h; i++) {
        uint32_t y = c->flip_y ? c->out_h - 1 - i : i;
        uint32_t first = c->ty->first[y];
        const int16_t *w = c->ty->w + (size_t)y * c->ty->stride;

        for (uint32_t j = 0; j < n; j++) {
            uint32_t r = first + j;
            uint32_t slot = r % c->ring_rows;
            uint16_t *mid = c->ring + (size_t)slot * row_len;
            if (c->tag[slot] != (int64_t)r) {
                hpass(c->src->data + (size_t)r * c->src->stride, c->tx, c->out_w, ch, mid);
                c->tag[slot] = r;
            }
            c->rows[j] = mid;
        }
        uint8_t *dst = out->data + (size_t)y * out->stride;
        switch (n) {
        case 1:
            vpass_n(c->rows, w, row_len, 1, dst);
            break;
        case 2:
            vpass_n(c->rows, w, row_len, 2, dst);
            break;
        case 3:
            vpass_n(c->rows, w, row_len, 3, dst);
            break;
        case 4:
            vpass_n(c->rows, w, row_len, 4, dst);
            break;
        default:
            vpass_many(c->rows, w, row_len, n, c->acc, dst);
            break;
        }
    }
}

/* ---------------------------------------------------------------- rnd_resample */

/* The logical (square-pixel) size of a sw x sh source: the short side of a pixel is stretched,
 * the long one never shrunk. Returns -1 when a side would exceed 1e9 pixels. rnd_resample and
 * rnd_square_size share it, so pyramid levels and rendered resources agree on the size. */
static int
logical_size(double sw, double sh, double pixel_aspect, double *lw, double *lh)
{
    *lw = sw;
    *lh = sh;
    if (pixel_aspect > 1.0) {
        *lh = round(sh * pixel_aspect);
    } else if (pixel_aspect < 1.0) {
        *lw = round(sw / pixel_aspect);
    }
    return (*lw > 1e9 || *lh > 1e9) ? -1 : 0;
}

/* Source interval [lo, hi) of a region side along one axis of logical length `len`; `s0` and
 * `sl` are the viewport's start and (signed) length. Returns the clipped length (<= 0: empty). */
static double
region_axis(double s0, double sl, double len, double *lo, int *flip)
{
    double a = sl >= 0 ? s0 : s0 + sl;
    double b = sl >= 0 ? s0 + sl : s0;
    *flip = sl < 0;
    if (a < 0.0) {
        a = 0.0;
    }
    if (b > len) {
        b = len;
    }
    *lo = a;
    return b - a;
}

/* Resamples `src` into the allocated `img` through the per-axis maps: weight tables, then the
 * two passes. */
static int
resample_general(const rnd_image *src, const axis_map *mx, const axis_map *my, rnd_image *img,
                 tsr_err *err)
{
    int rc = TSR_OK;
    axis_tab tx = {0}, ty = {0};
    pass_ctx pc = {0};

    rc = axis_tab_build(mx, &tx, err);
    if (rc == TSR_OK) {
        rc = axis_tab_build(my, &ty, err);
    }
    if (rc != TSR_OK) {
        goto done;
    }
    const size_t row_len = (size_t)img->width * img->channels;
    size_t ring_len;
    pc.ring_rows = ty.taps;
    if (tsr_mul_size(row_len, pc.ring_rows, &ring_len)) {
        rc = tsr_err_set(err, TSR_ELIMIT, "resample: intermediate buffer too large");
        goto done;
    }
    pc.src = src;
    pc.tx = &tx;
    pc.ty = &ty;
    pc.out_w = img->width;
    pc.out_h = img->height;
    pc.flip_y = my->flip;
    pc.ring = malloc(ring_len * sizeof *pc.ring);
    pc.tag = malloc(pc.ring_rows * sizeof *pc.tag);
    pc.rows = malloc(pc.ring_rows * sizeof *pc.rows);
    pc.acc = pc.ring_rows > 4 ? malloc(row_len * sizeof *pc.acc) : NULL;
    if (!pc.ring || !pc.tag || !pc.rows || (pc.ring_rows > 4 && !pc.acc)) {
        rc = tsr_err_set(err, TSR_ENOMEM, "resample: out of memory for intermediate rows");
        goto done;
    }
    for (uint32_t i = 0; i < pc.ring_rows; i++) {
        pc.tag[i] = -1;
    }
    run_passes(&pc, img);

done:
    free(pc.ring);
    free(pc.tag);
    free(pc.rows);
    free(pc.acc);
    axis_tab_free(&tx);
    axis_tab_free(&ty);
    return rc;
}

int
rnd_resample(const rnd_image *src, double pixel_aspect, const rnd_viewport *vp, rnd_image *out,
             tsr_err *err)
{
    int rc = TSR_OK;
    rnd_image img = {0};

    if (!src || !src->data || src->width == 0 || src->height == 0 ||
        (src->channels != 1 && src->channels != 3) ||
        src->stride < (size_t)src->width * src->channels) {
        return tsr_err_set(err, TSR_EINVAL, "resample: invalid source image");
    }
    if (!positive_finite(pixel_aspect)) {
        return tsr_err_set(err, TSR_EINVAL, "resample: invalid pixel aspect %g", pixel_aspect);
    }
    if (vp && (vp->vw == 0 || vp->vh == 0 || vp->vw > MAX_OUT || vp->vh > MAX_OUT)) {
        return tsr_err_set(err, TSR_EINVAL, "resample: viewport %ux%u outside 1..%u",
                           (unsigned)vp->vw, (unsigned)vp->vh, MAX_OUT);
    }
    if (vp && vp->has_region &&
        (!isfinite(vp->sx) || !isfinite(vp->sy) || vp->sx < 0 || vp->sy < 0 ||
         (!vp->sw_to_edge && (!isfinite(vp->sw) || vp->sw == 0)) ||
         (!vp->sh_to_edge && (!isfinite(vp->sh) || vp->sh == 0)))) {
        return tsr_err_set(err, TSR_EINVAL, "resample: invalid viewport region");
    }

    /* Step 1: the logical (square-pixel) size. */
    const double sw = (double)src->width, sh = (double)src->height;
    double lw, lh;
    if (logical_size(sw, sh, pixel_aspect, &lw, &lh) != 0) {
        return tsr_err_set(err, TSR_ELIMIT, "resample: pixel aspect %g is out of range",
                           pixel_aspect);
    }

    /* Step 2: the region (logical coordinates) and the output size. */
    double rx = 0.0, ry = 0.0, rw = lw, rh = lh;
    int flip_x = 0, flip_y = 0;
    if (vp && vp->has_region) {
        /* Elided sw/sh run to the far edge, measured in the same logical coordinates as the
         * rest of the region (for square pixels: columns - sx, rows - sy). */
        double vsw = vp->sw_to_edge ? lw - vp->sx : vp->sw;
        double vsh = vp->sh_to_edge ? lh - vp->sy : vp->sh;
        if ((vp->sw_to_edge && !(vsw > 0.0)) || (vp->sh_to_edge && !(vsh > 0.0))) {
            return tsr_err_set(err, TSR_EINVAL,
                               "viewport origin %g,%g lies outside the %.0fx%.0f image", vp->sx,
                               vp->sy, lw, lh);
        }
        rw = region_axis(vp->sx, vsw, lw, &rx, &flip_x);
        rh = region_axis(vp->sy, vsh, lh, &ry, &flip_y);
        if (!(rw > 1e-9) || !(rh > 1e-9)) {
            return tsr_err_set(err, TSR_EINVAL,
                               "viewport region %g,%g,%g,%g lies outside the %.0fx%.0f image",
                               vp->sx, vp->sy, vsw, vsh, lw, lh);
        }
    }
    double ow = rw, oh = rh;
    if (vp) {
        double s = fmin((double)vp->vw / rw, (double)vp->vh / rh);
        ow = fmax(1.0, round(rw * s));
        oh = fmax(1.0, round(rh * s));
    } else {
        ow = fmax(1.0, round(ow));
        oh = fmax(1.0, round(oh));
    }
    if (ow > MAX_OUT || oh > MAX_OUT) {
        return tsr_err_set(err, TSR_ELIMIT, "resample: output %.0fx%.0f exceeds %ux%u", ow, oh,
                           MAX_OUT, MAX_OUT);
    }

    rc = rnd_image_alloc(&img, (uint32_t)ow, (uint32_t)oh, src->channels, err);
    if (rc != TSR_OK) {
        goto fail;
    }

    /* One affine map per axis. Output pixel o starts at logical coordinate r0 + o * (rw / ow),
     * and a logical coordinate is a source coordinate times (logical size / source size). */
    axis_map mx = {src->width, img.width, rx * sw / lw, rw * sw / lw / ow, flip_x, 0};
    axis_map my = {src->height, img.height, ry * sh / lh, rh * sh / lh / oh, flip_y, 0};

    if (mx.n_out == mx.n_src && my.n_out == my.n_src && mx.src0 == 0.0 && my.src0 == 0.0 &&
        mx.step == 1.0 && my.step == 1.0 && !flip_x && !flip_y) {
        size_t row = (size_t)src->width * src->channels;
        for (uint32_t y = 0; y < src->height; y++) {
            memcpy(img.data + y * img.stride, src->data + y * src->stride, row);
        }
    } else {
        rc = resample_general(src, &mx, &my, &img, err);
        if (rc != TSR_OK) {
            goto fail;
        }
    }
    *out = img;
    return TSR_OK;

fail:
    rnd_image_free(&img);
    return rc;
}

/* ---------------------------------------------------------------- exact-size entry points */

int
rnd_square_size(uint32_t width, uint32_t height, double pixel_aspect, uint32_t *w0, uint32_t *h0)
{
    double lw, lh;
    if (width == 0 || height == 0 || !positive_finite(pixel_aspect)) {
        return TSR_EINVAL;
    }
    if (logical_size((double)width, (double)height, pixel_aspect, &lw, &lh) != 0) {
        return TSR_ELIMIT;
    }
    *w0 = (uint32_t)lw;
    *h0 = (uint32_t)lh;
    return TSR_OK;
}

static int
valid_source(const rnd_image *src)
{
    return src && src->data && src->width > 0 && src->height > 0 &&
           (src->channels == 1 || src->channels == 3) &&
           src->stride >= (size_t)src->width * src->channels;
}

/* Checks the common arguments of the exact-size entry points and gives the logical size. */
static int
check_exact(const char *what, const rnd_image *src, double pixel_aspect, uint32_t out_w,
            uint32_t out_h, double *lw, double *lh, tsr_err *err)
{
    if (!valid_source(src)) {
        return tsr_err_set(err, TSR_EINVAL, "%s: invalid source image", what);
    }
    if (!positive_finite(pixel_aspect)) {
        return tsr_err_set(err, TSR_EINVAL, "%s: invalid pixel aspect %g", what, pixel_aspect);
    }
    if (out_w == 0 || out_h == 0 || out_w > RND_RESAMPLE_MAX_SIDE ||
        out_h > RND_RESAMPLE_MAX_SIDE) {
        return tsr_err_set(err, TSR_ELIMIT, "%s: output %ux%u outside 1..%u", what, (unsigned)out_w,
                           (unsigned)out_h, RND_RESAMPLE_MAX_SIDE);
    }
    if (logical_size((double)src->width, (double)src->height, pixel_aspect, lw, lh) != 0) {
        return tsr_err_set(err, TSR_ELIMIT, "%s: pixel aspect %g is out of range", what,
                           pixel_aspect);
    }
    return TSR_OK;
}

/* Allocates the output of the two maps and fills it: a plain copy when both axes map output
 * pixels one to one onto source pixels, else the two passes. */
static int
resample_maps(const rnd_image *src, const axis_map *mx, const axis_map *my, rnd_image *out,
              tsr_err *err)
{
    rnd_image img = {0};
    int rc = rnd_image_alloc(&img, mx->n_out, my->n_out, src->channels, err);
    if (rc != TSR_OK) {
        return rc;
    }
    if (mx->step == 1.0 && my->step == 1.0 && mx->src0 == 0.0 && my->src0 == 0.0 && !mx->flip &&
        !my->flip && (uint64_t)mx->off + mx->n_out <= mx->n_src &&
        (uint64_t)my->off + my->n_out <= my->n_src) {
        const size_t ch = src->channels;
        for (uint32_t y = 0; y < img.height; y++) {
            memcpy(img.data + (size_t)y * img.stride,
                   src->data + (size_t)(my->off + y) * src->stride + (size_t)mx->off * ch,
                   (size_t)img.width * ch);
        }
    } else {
        rc = resample_general(src, mx, my, &img, err);
        if (rc != TSR_OK) {
            rnd_image_free(&img);
            return rc;
        }
    }
    *out = img;
    return TSR_OK;
}

int
rnd_resample_grid(const rnd_image *src, double pixel_aspect, double scale, uint32_t x0, uint32_t y0,
                  uint32_t out_w, uint32_t out_h, rnd_image *out, tsr_err *err)
{
    double lw = 0.0, lh = 0.0;
    int rc = check_exact("resample", src, pixel_aspect, out_w, out_h, &lw, &lh, err);
    if (rc != TSR_OK) {
        return rc;
    }
    if (!positive_finite(scale)) {
        return tsr_err_set(err, TSR_EINVAL, "resample: invalid scale %g", scale);
    }
    /* Every output pixel must start inside the image; only the last one may be cut short. */
    if (((double)x0 + (double)out_w - 1.0) * scale >= lw ||
        ((double)y0 + (double)out_h - 1.0) * scale >= lh) {
        return tsr_err_set(
            err, TSR_EINVAL, "resample: grid %ux%u at %u,%u (scale %g) leaves the %.0fx%.0f image",
            (unsigned)out_w, (unsigned)out_h, (unsigned)x0, (unsigned)y0, scale, lw, lh);
    }
    /* scale * n_src / logical: for the power-of-two scales of a pyramid the product is exact,
     * so the step equals rnd_resample's wherever the level size is what it would produce. */
    axis_map mx = {src->width, out_w, 0.0, scale * (double)src->width / lw, 0, x0};
    axis_map my = {src->height, out_h, 0.0, scale * (double)src->height / lh, 0, y0};
    return resample_maps(src, &mx, &my, out, err);
}

int
rnd_resample_region(const rnd_image *src, double pixel_aspect, const rnd_region *region,
                    uint32_t out_w, uint32_t out_h, int mirror, rnd_image *out, tsr_err *err)
{
    double lw = 0.0, lh = 0.0;
    int rc = check_exact("resample", src, pixel_aspect, out_w, out_h, &lw, &lh, err);
    if (rc != TSR_OK) {
        return rc;
    }
    double rx = 0.0, ry = 0.0, rw = lw, rh = lh;
    if (region) {
        if (!isfinite(region->x) || !isfinite(region->y) || !isfinite(region->w) ||
            !isfinite(region->h) || region->x < 0.0 || region->y < 0.0 || !(region->w > 0.0) ||
            !(region->h > 0.0)) {
            return tsr_err_set(err, TSR_EINVAL, "resample: invalid region");
        }
        int fx, fy;
        rw = region_axis(region->x, region->w, lw, &rx, &fx);
        rh = region_axis(region->y, region->h, lh, &ry, &fy);
        if (!(rw > 1e-9) || !(rh > 1e-9)) {
            return tsr_err_set(err, TSR_EINVAL,
                               "resample: region %g,%g,%g,%g lies outside the %.0fx%.0f image",
                               region->x, region->y, region->w, region->h, lw, lh);
        }
    }
    /* The same expressions as rnd_resample, so the two agree wherever their sizes do. */
    const double sw = (double)src->width, sh = (double)src->height;
    axis_map mx = {src->width, out_w, rx * sw / lw, rw * sw / lw / out_w, mirror != 0, 0};
    axis_map my = {src->height, out_h, ry * sh / lh, rh * sh / lh / out_h, 0, 0};
    return resample_maps(src, &mx, &my, out, err);
}
