/* SPDX-License-Identifier: MIT */
/* rnd_pipeline.c: the DICOM display pipeline (PS3.3 C.11, PS3.4 N.2) from decoded stored values
 * to an 8-bit image.
 *
 * Grayscale goes stored value -> Modality LUT stage (C.11.1) -> VOI stage (C.11.2) -> Presentation
 * (polarity) -> 8 bits. The three stages are folded into one function of the stored value
 * (gray_value), which both paths below call, so they cannot disagree:
 *
 *   - integer frames whose values span at most 65536 consecutive integers (every 8- and 16-bit
 *     frame, and 32-bit frames that happen to be narrow): one vectorized pass finds the frame's
 *     min and max, a uint8 table over [min, max] is filled (only the window's ramp is evaluated,
 *     see table_fill), and a second pass is a pure table lookup with no floating point per
 *     pixel;
 *   - F32 frames and wide 32-bit frames: gray_value per pixel.
 *
 * Decisions not spelled out in rnd.h:
 *   - DEFAULT skips candidates the file gets wrong (a window whose width is out of range for its
 *     function, a VOI LUT without entries) and falls through to the next one, ending at MINMAX:
 *     real files carry Window Width 0, and a viewable image beats an error. An explicitly
 *     requested FILE_WINDOW / FILE_LUT that is malformed is TSR_ECORRUPT instead.
 *   - A per-frame window (functional groups) is reported in rnd_voi_used as RND_VOI_MODE_WINDOW
 *     with its values, so feeding it back as a request reproduces the image.
 *   - MINMAX maps [min, max] of the modality values linearly onto [0, 255], y = (x - min) * 255
 *     / (max - min); mathematically that is LINEAR_EXACT with center (min + max) / 2 and width
 *     max - min, which is what rnd_voi_used reports. Non-finite values (F32 NaN, inf) are left out
 * of min and max. A constant frame (min == max, or no finite value) maps to 0 before the
 * presentation stage, so the minimum is shown as the minimum (black for MONOCHROME2, white for
 * MONOCHROME1); rnd_voi_used then says width 0.
 *   - Colour and palette images have no VOI stage: rnd_voi_used is zeroed (mode DEFAULT means
 *     "nothing applied").
 */
#include "rnd_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Largest span of stored values (max - min + 1) that gets a lookup table. */
#define TABLE_MAX_SPAN 65536

/* ---------------------------------------------------------------- helpers */

/* Rounds a real display value to the nearest integer (floor(y + 0.5)) and clamps it to 0..255.
 * NaN gives 0. */
static inline int
round_clamp_255(double y)
{
    if (!(y > 0.0)) {
        return 0;
    }
    if (y >= 255.0) {
        return 255;
    }
    /* y + 0.5 > 0 here, where truncation is floor (and cheaper than a libm call). */
    return (int)(y + 0.5);
}

/* One sample of a frame as a signed 64-bit integer (integer types only). */
static inline int64_t
sample_int(const void *data, rnd_type t, size_t i)
{
    switch (t) {
    case RND_T_U8:
        return ((const uint8_t *)data)[i];
    case RND_T_S8:
        return ((const int8_t *)data)[i];
    case RND_T_U16:
        return ((const uint16_t *)data)[i];
    case RND_T_S16:
        return ((const int16_t *)data)[i];
    case RND_T_U32:
        return ((const uint32_t *)data)[i];
    case RND_T_S32:
        return ((const int32_t *)data)[i];
    case RND_T_F32:
        break;
    }
    return 0;
}

/* One sample as a real number (any type; F32 NaN and infinities come through unchanged). */
static inline double
sample_real(const void *data, rnd_type t, size_t i)
{
    if (t == RND_T_F32) {
        return ((const float *)data)[i];
    }
    return (double)sample_int(data, t, i);
}

static int
type_is_valid(rnd_type t)
{
    return t == RND_T_U8 || t == RND_T_S8 || t == RND_T_U16 || t == RND_T_S16 || t == RND_T_U32 ||
           t == RND_T_S32 || t == RND_T_F32;
}

static const char *
type_name(rnd_type t)
{
    static const char *const names[] = {"U8", "S8", "U16", "S16", "U32", "S32", "F32"};
    return type_is_valid(t) ? names[t] : "unknown";
}

/* A LUT's entry for input `x` (a real value, rounded to the nearest integer for the lookup),
 * clamping below `first` to the first entry and above the last input to the last entry: the rule
 * PS3.3 C.11.1.1.1 (Modality LUT), C.11.2.1.1 (VOI LUT) and C.7.6.3.1.5 (palette) share. NaN
 * gives the first entry. */
static inline uint16_t
lut_entry_real(const rnd_lut *lut, double x)
{
    double r = floor(x + 0.5);
    if (!(r > (double)lut->first)) {
        return lut->data[0];
    }
    if (r >= (double)lut->first + (double)(lut->n_entries - 1)) {
        return lut->data[lut->n_entries - 1];
    }
    return lut->data[(int64_t)r - lut->first];
}

static inline uint16_t
lut_entry_int(const rnd_lut *lut, int64_t x)
{
    int64_t i = x - lut->first;
    if (i <= 0) {
        return lut->data[0];
    }
    if (i >= (int64_t)lut->n_entries - 1) {
        return lut->data[lut->n_entries - 1];
    }
    return lut->data[i];
}

/* Checks a LUT from the file before use: entries present and the descriptor in range. */
static int
lut_check(const rnd_lut *lut, const char *what, tsr_err *err)
{
    if (!lut->data || lut->n_entries < 1 || lut->n_entries > 65536) {
        return tsr_err_set(err, TSR_ECORRUPT, "%s has %u entries (1..65536 needed)", what,
                           (unsigned)lut->n_entries);
    }
    if (lut->bits < 1 || lut->bits > 16) {
        return tsr_err_set(err, TSR_ECORRUPT, "%s has %u-bit entries (1..16 supported)", what,
                           (unsigned)lut->bits);
    }
    return TSR_OK;
}

/* ---------------------------------------------------------------- VOI functions */

/* The edges of a LINEAR or LINEAR_EXACT window: inputs at or below `lo` give ymin, inputs above
 * `hi` give ymax, the ramp lies between. LINEAR (C.11.2.1.2.1): c - 0.5 -/+ (w - 1) / 2, which
 * meet at c - 0.5 for width 1 (a threshold, with no ramp to divide by w - 1 = 0). LINEAR_EXACT
 * (C.11.2.1.3.2): c -/+ w / 2. Invalid widths collapse to a threshold. */
static inline void
window_edges(const rnd_window *w, double *lo, double *hi)
{
    double c = w->center, width = w->width;
    if (w->fn == RND_VOI_LINEAR_EXACT) {
        if (width > 0.0) {
            *lo = c - width / 2.0;
            *hi = c + width / 2.0;
        } else {
            *lo = *hi = c;
        }
    } else if (width > 1.0) {
        *lo = c - 0.5 - (width - 1.0) / 2.0;
        *hi = c - 0.5 + (width - 1.0) / 2.0;
    } else {
        *lo = *hi = c - 0.5;
    }
}

static inline double
voi_apply(double x, const rnd_window *w, double ymin, double ymax)
{
    double c = w->center, width = w->width, range = ymax - ymin, lo, hi;
    if (isnan(x)) {
        return ymin;
    }
    if (w->fn == RND_VOI_SIGMOID) {
        /* C.11.2.1.3.1; exp() overflowing to inf correctly gives ymin. */
        if (!(width > 0.0)) {
            return x <= c ? ymin : ymax;
        }
        return range / (1.0 + exp(-4.0 * (x - c) / width)) + ymin;
    }
    window_edges(w, &lo, &hi);
    if (x <= lo) {
        return ymin;
    }
    if (x > hi) {
        return ymax;
    }
    if (w->fn == RND_VOI_LINEAR_EXACT) {
        return ((x - c) / width + 0.5) * range + ymin; /* C.11.2.1.3.2 */
    }
    return ((x - (c - 0.5)) / (width - 1.0) + 0.5) * range + ymin; /* C.11.2.1.2.1 */
}

double
rnd__voi_apply(double x, const rnd_window *w, double ymin, double ymax)
{
    return voi_apply(x, w, ymin, ymax);
}

/* Whether window `w` is usable: finite values, a known function, and the width its function
 * requires (LINEAR: >= 1, C.11.2.1.2.1; LINEAR_EXACT and SIGMOID: > 0, C.11.2.1.3). Returns NULL
 * when it is, else what is wrong. */
static const char *
window_problem(const rnd_window *w)
{
    if (w->fn != RND_VOI_LINEAR && w->fn != RND_VOI_LINEAR_EXACT && w->fn != RND_VOI_SIGMOID) {
        return "unknown VOI LUT function";
    }
    if (!isfinite(w->center) || !isfinite(w->width)) {
        return "center and width must be finite numbers";
    }
    if (w->fn == RND_VOI_LINEAR && w->width < 1.0) {
        return "width must be >= 1 for LINEAR";
    }
    if (w->fn != RND_VOI_LINEAR && w->width <= 0.0) {
        return "width must be > 0";
    }
    return NULL;
}

/* ---------------------------------------------------------------- grayscale mapping */

typedef enum voi_kind { VOI_WINDOW, VOI_LUT, VOI_MINMAX } voi_kind;

/* Modality, VOI and presentation stages resolved for one frame. */
typedef struct gray_map {
    const rnd_lut *modality_lut; /* NULL: rescale */
    double slope, intercept;

    voi_kind kind;
    rnd_window window;       /* VOI_WINDOW */
    const rnd_lut *voi_lut;  /* VOI_LUT */
    uint32_t lut_max;        /* VOI_LUT: 2^bits - 1 */
    double mm_low, mm_width; /* VOI_MINMAX: y = (x - mm_low) * 255 / mm_width */

    int invert;
} gray_map;

static inline double
modality_value(const gray_map *g, double stored)
{
    if (g->modality_lut) {
        return (double)lut_entry_real(g->modality_lut, stored);
    }
    return stored * g->slope + g->intercept;
}

/* The whole grayscale pipeline for one stored value. */
static inline uint8_t
gray_value(const gray_map *g, double stored)
{
    double x = modality_value(g, stored);
    int v = 0;
    switch (g->kind) {
    case VOI_WINDOW:
        v = round_clamp_255(voi_apply(x, &g->window, 0.0, 255.0));
        break;
    case VOI_LUT: {
        /* C.11.2.1.1: entries span 0..2^n-1; scale that range onto 0..255, rounding
         * (e * 255 / max + 1/2, in integers). */
        uint32_t e = lut_entry_real(g->voi_lut, x);
        uint32_t max = g->lut_max;
        v = (int)(((uint64_t)e * 510u + max) / (2u * (uint64_t)max));
        v = v > 255 ? 255 : v;
        break;
    }
    case VOI_MINMAX:
        /* Multiplying before dividing keeps exact halves exact: (350 - 150) * 255 / 400 is
         * 127.5, while 200 * (255.0 / 400) is 127.4999... */
        v = g->mm_width > 0.0 ? round_clamp_255((x - g->mm_low) * 255.0 / g->mm_width) : 0;
        break;
    }
    return (uint8_t)(g->invert ? 255 - v : v);
}

/* Modality LUT stage (C.11.1): the Modality LUT Sequence when present, else the frame's rescale
 * (Enhanced per-frame functional group, then the file's), else identity. */
static int
modality_resolve(const rnd_info *info, uint32_t index, gray_map *g, tsr_err *err)
{
    int rc = TSR_OK;
    g->modality_lut = NULL;
    g->slope = 1.0;
    g->intercept = 0.0;
    if (info->modality_lut.data) {
        rc = lut_check(&info->modality_lut, "Modality LUT", err);
        if (rc == TSR_OK) {
            g->modality_lut = &info->modality_lut;
        }
        return rc;
    }
    if (info->frame_meta && info->frame_meta[index].has_rescale) {
        g->slope = info->frame_meta[index].slope;
        g->intercept = info->frame_meta[index].intercept;
    } else if (info->has_rescale) {
        g->slope = info->rescale_slope;
        g->intercept = info->rescale_intercept;
    }
    if (!isfinite(g->slope) || !isfinite(g->intercept)) {
        rc = tsr_err_set(err, TSR_ECORRUPT, "rescale slope %g / intercept %g are not finite",
                         g->slope, g->intercept);
    }
    return rc;
}

static void
use_window(gray_map *g, const rnd_window *w, rnd_voi_mode mode, int index, rnd_voi_used *u)
{
    g->kind = VOI_WINDOW;
    g->window = *w;
    u->mode = mode;
    u->center = w->center;
    u->width = w->width;
    u->fn = w->fn;
    u->index = index;
}

static void
use_lut(gray_map *g, const rnd_lut *lut, int index, rnd_voi_used *u)
{
    g->kind = VOI_LUT;
    g->voi_lut = lut;
    g->lut_max = (1u << lut->bits) - 1u;
    u->mode = RND_VOI_MODE_FILE_LUT;
    u->center = 0.0;
    u->width = 0.0;
    u->fn = RND_VOI_LINEAR;
    u->index = index;
}

/* VOI stage (C.11.2): turns the request into a window, a LUT, or MINMAX (whose range is filled
 * in later by minmax_finish, once the frame has been scanned). */
static int
voi_resolve(const rnd_info *info, uint32_t index, const rnd_voi_req *req, gray_map *g,
            rnd_voi_used *u, tsr_err *err)
{
    rnd_voi_mode mode = req ? req->mode : RND_VOI_MODE_DEFAULT;
    const char *problem;
    int i;

    memset(u, 0, sizeof *u);
    switch (mode) {
    case RND_VOI_MODE_DEFAULT:
        if (info->frame_meta && info->frame_meta[index].has_window &&
            !window_problem(&info->frame_meta[index].window)) {
            use_window(g, &info->frame_meta[index].window, RND_VOI_MODE_WINDOW, 0, u);
            return TSR_OK;
        }
        if (info->n_windows > 0 && !window_problem(&info->windows[0])) {
            use_window(g, &info->windows[0], RND_VOI_MODE_FILE_WINDOW, 0, u);
            return TSR_OK;
        }
        if (info->n_voi_luts > 0 && lut_check(&info->voi_luts[0], "VOI LUT", NULL) == TSR_OK) {
            use_lut(g, &info->voi_luts[0], 0, u);
            return TSR_OK;
        }
        break;
    case RND_VOI_MODE_WINDOW: {
        rnd_window w = {req->center, req->width, req->fn};
        problem = window_problem(&w);
        if (problem) {
            return tsr_err_set(err, TSR_EINVAL, "window center %g width %g: %s", w.center, w.width,
                               problem);
        }
        use_window(g, &w, RND_VOI_MODE_WINDOW, 0, u);
        return TSR_OK;
    }
    case RND_VOI_MODE_FILE_WINDOW:
        i = req->index;
        if (i < 0 || i >= info->n_windows || i >= RND_MAX_WINDOWS) {
            return tsr_err_set(err, TSR_EINVAL, "window index %d out of range (the file has %d)", i,
                               info->n_windows);
        }
        problem = window_problem(&info->windows[i]);
        if (problem) {
            return tsr_err_set(err, TSR_ECORRUPT, "file window %d (center %g width %g): %s", i,
                               info->windows[i].center, info->windows[i].width, problem);
        }
        use_window(g, &info->windows[i], RND_VOI_MODE_FILE_WINDOW, i, u);
        return TSR_OK;
    case RND_VOI_MODE_FILE_LUT: {
        int rc;
        i = req->index;
        if (i < 0 || i >= info->n_voi_luts || i >= RND_MAX_VOI_LUTS) {
            return tsr_err_set(err, TSR_EINVAL, "VOI LUT index %d out of range (the file has %d)",
                               i, info->n_voi_luts);
        }
        rc = lut_check(&info->voi_luts[i], "VOI LUT", err);
        if (rc != TSR_OK) {
            return rc;
        }
        use_lut(g, &info->voi_luts[i], i, u);
        return TSR_OK;
    }
    case RND_VOI_MODE_MINMAX:
        break;
    default:
        return tsr_err_set(err, TSR_EINVAL, "unknown VOI mode %d", (int)mode);
    }
    g->kind = VOI_MINMAX;
    u->mode = RND_VOI_MODE_MINMAX;
    u->fn = RND_VOI_LINEAR_EXACT;
    return TSR_OK;
}

/* Running min/max of the finite modality values. */
typedef struct range_acc {
    int any;
    double lo, hi;
} range_acc;

static inline void
range_add(range_acc *r, double x)
{
    if (!isfinite(x)) {
        return;
    }
    if (!r->any) {
        r->any = 1;
        r->lo = r->hi = x;
    } else if (x < r->lo) {
        r->lo = x;
    } else if (x > r->hi) {
        r->hi = x;
    }
}

/* Completes MINMAX once the range of modality values is known (see the file comment). */
static void
minmax_finish(gray_map *g, const range_acc *r, rnd_voi_used *u)
{
    double lo = r->any ? r->lo : 0.0, hi = r->any ? r->hi : 0.0;
    double w = hi - lo;
    g->mm_low = lo;
    g->mm_width = isfinite(w) ? w : 0.0;
    u->center = lo + w / 2.0;
    u->width = w;
}

/* ---------------------------------------------------------------- integer kernels */

/* Min/max of the samples, compared as type C after subtracting BIAS (which must bring every value
 * into C's range). The inner loop has a fixed trip count so that GCC's -O2 ("very cheap")
 * vectorizer accepts it. U16 is compared as int16 - 32768 because SSE2 has a signed 16-bit
 * min/max but no unsigned one; that halves its time. The lookup does four loads before four
 * stores: a store to dst might alias the table as far as the compiler knows, so one load per
 * store in program order runs about 2.3x slower (measured on a 512x512 CT frame). */
#define INT_KERNELS(sfx, T, C, CMIN, CMAX, BIAS)                                                   \
    static void minmax_##sfx(const void *data, size_t n, int64_t *lo_out, int64_t *hi_out)         \
    {                                                                                              \
        const T *p = data;                                                                         \
        C lo = CMAX, hi = CMIN;                                                                    \
        size_t i = 0;                                                                              \
        for (; i + 64 <= n; i += 64) {                                                             \
            C l = lo, h = hi;                                                                      \
            for (size_t j = 0; j < 64; j++) {                                                      \
                C v = (C)(p[i + j] - BIAS);                                                        \
                l = v < l ? v : l;                                                                 \
                h = v > h ? v : h;                                                                 \
            }                                                                                      \
            lo = l;                                                                                \
            hi = h;                                                                                \
        }                                                                                          \
        for (; i < n; i++) {                                                                       \
            C v = (C)(p[i] - BIAS);                                                                \
            lo = v < lo ? v : lo;                                                                  \
            hi = v > hi ? v : hi;                                                                  \
        }                                                                                          \
        *lo_out = (int64_t)lo + BIAS;                                                              \
        *hi_out = (int64_t)hi + BIAS;                                                              \
    }                                                                                              \
    static void lookup_##sfx(const void *data, size_t n, const uint8_t *table, int64_t first,      \
                             uint8_t *dst)                                                         \
    {                                                                                              \
        const T *p = data;                                                                         \
        size_t i = 0;                                                                              \
        for (; i + 4 <= n; i += 4) {                                                               \
            uint8_t a = table[(int64_t)p[i] - first], b = table[(int64_t)p[i + 1] - first];        \
            uint8_t c = table[(int64_t)p[i + 2] - first], d = table[(int64_t)p[i + 3] - first];    \
            dst[i] = a;                                                                            \
            dst[i + 1] = b;                                                                        \
            dst[i + 2] = c;                                                                        \
            dst[i + 3] = d;                                                                        \
        }                                                                                          \
        for (; i < n; i++) {                                                                       \
            dst[i] = table[(int64_t)p[i] - first];                                                 \
        }                                                                                          \
    }

INT_KERNELS(u8, uint8_t, uint8_t, 0, UINT8_MAX, 0)
INT_KERNELS(s8, int8_t, int8_t, INT8_MIN, INT8_MAX, 0)
INT_KERNELS(u16, uint16_t, int16_t, INT16_MIN, INT16_MAX, 32768)
INT_KERNELS(s16, int16_t, int16_t, INT16_MIN, INT16_MAX, 0)
INT_KERNELS(u32, uint32_t, uint32_t, 0, UINT32_MAX, 0)
INT_KERNELS(s32, int32_t, int32_t, INT32_MIN, INT32_MAX, 0)

#undef INT_KERNELS

typedef struct int_kernels {
    void (*minmax)(const void *data, size_t n, int64_t *lo, int64_t *hi);
    void (*lookup)(const void *data, size_t n, const uint8_t *table, int64_t first, uint8_t *dst);
} int_kernels;

static const int_kernels k_int_kernels[] = {
    [RND_T_U8] = {minmax_u8, lookup_u8},    [RND_T_S8] = {minmax_s8, lookup_s8},
    [RND_T_U16] = {minmax_u16, lookup_u16}, [RND_T_S16] = {minmax_s16, lookup_s16},
    [RND_T_U32] = {minmax_u32, lookup_u32}, [RND_T_S32] = {minmax_s32, lookup_s32},
};

void
rnd_frame_set_range(rnd_frame *f)
{
    if (!f || f->samples != 1 || f->type == RND_T_F32 || (int)f->type < 0 ||
        (size_t)f->type >= sizeof k_int_kernels / sizeof k_int_kernels[0]) {
        return;
    }
    k_int_kernels[f->type].minmax(f->data, (size_t)f->width * f->height, &f->range_lo,
                                  &f->range_hi);
    f->has_range = 1;
}

/* ---------------------------------------------------------------- grayscale */

/* SIGMOID never reaches its limits, but its rounded 8-bit output does: 255 / (1 + e^-t) < 0.5
 * when t < -ln(509) = -6.2324 and >= 254.5 when t > 6.2325, t = 4 (x - c) / w. Beyond
 * |x - c| > 1.575 w (|t| > 6.3) the output is 0 or 255 with a margin that no rounding error of
 * exp() comes near. The zones are used only when c -/+ 1.575 w, once rounded, still lie more
 * than 1.57 w (|t| = 6.28) from c, which fails only for absurd c / w ratios. */
#define SIGMOID_SATURATION     1.575
#define SIGMOID_SATURATION_MIN 1.57

/* Which part of the VOI function input `x` falls in: 0 and 2 are the two sides on which the
 * output no longer depends on x (SIGMOID saturated below / above [elo, ehi], before the first /
 * after the last VOI LUT entry), 1 is everything in between. Non-decreasing in x. */
static inline int
voi_zone(const gray_map *g, double x, double elo, double ehi)
{
    if (g->kind == VOI_LUT) {
        /* The same tests as lut_entry_real. */
        double r = floor(x + 0.5);
        if (!(r > (double)g->voi_lut->first)) {
            return 0;
        }
        return r >= (double)g->voi_lut->first + (double)(g->voi_lut->n_entries - 1) ? 2 : 1;
    }
    return x <= elo ? 0 : (x > ehi ? 2 : 1);
}

/* Fills table[0, span) where gray_value is known to be monotonic in the stored value, one run
 * of equal outputs at a time: a galloping search (1, 2, 4, ... entries ahead) then a binary
 * search find where each run ends. There are at most 256 runs, so this costs a few thousand
 * evaluations whatever the span, and gives exactly the entry-by-entry result. */
static void
fill_runs(const gray_map *g, int64_t lo, size_t span, uint8_t *table)
{
    size_t s = 0;
    while (s < span) {
        uint8_t v = gray_value(g, (double)(lo + (int64_t)s));
        size_t l = s + 1, h = span, step = 1;
        /* Invariant: entries [s, l) equal v; the first that differs, if any, is in [l, h). */
        while (s + step < span) {
            if (gray_value(g, (double)(lo + (int64_t)(s + step))) != v) {
                h = s + step;
                break;
            }
            l = s + step + 1;
            step *= 2;
        }
        while (l < h) {
            size_t m = l + (h - l) / 2;
            if (gray_value(g, (double)(lo + (int64_t)m)) != v) {
                h = m;
            } else {
                l = m + 1;
            }
        }
        memset(table + s, v, l - s);
        s = l;
    }
}

/* Fills table[0, span) for maps that fill_runs cannot take (see table_fill). With a Modality LUT
 * every entry is evaluated. With rescale, x is monotonic in the stored value, so the VOI zones
 * (voi_zone) follow one another in order: two binary searches find where they change, each
 * constant zone is filled with the value of one of its entries, and only the entries between
 * are evaluated. */
static void
fill_zones(const gray_map *g, int64_t lo, size_t span, uint8_t *table)
{
    size_t a = 0, b = span;
    double elo = 0.0, ehi = 0.0;
    int dir = g->slope > 0.0 ? 1 : (g->slope < 0.0 ? -1 : 0);
    int zoned = !g->modality_lut;

    if (zoned && g->kind == VOI_WINDOW) {
        double c = g->window.center, w = g->window.width;
        elo = c - SIGMOID_SATURATION * w;
        ehi = c + SIGMOID_SATURATION * w;
        zoned = c - elo > SIGMOID_SATURATION_MIN * w && ehi - c > SIGMOID_SATURATION_MIN * w;
    }
    if (zoned && dir == 0) {
        a = b = 0; /* x is the same for every entry: one constant zone */
    } else if (zoned) {
        /* With dir > 0 zones go 0, 1, 2 as s grows; with dir < 0, 2, 1, 0. `a` is the first
         * entry past the starting zone, `b` the first entry of the final zone. */
        int z0 = dir > 0 ? 0 : 2, z2 = dir > 0 ? 2 : 0;
        size_t l = 0, h = span;
        while (l < h) {
            size_t m = l + (h - l) / 2;
            int z = voi_zone(g, modality_value(g, (double)(lo + (int64_t)m)), elo, ehi);
            if (z != z0) {
                h = m;
            } else {
                l = m + 1;
            }
        }
        a = l;
        h = span;
        while (l < h) {
            size_t m = l + (h - l) / 2;
            int z = voi_zone(g, modality_value(g, (double)(lo + (int64_t)m)), elo, ehi);
            if (z == z2) {
                h = m;
            } else {
                l = m + 1;
            }
        }
        b = l;
    }
    if (a > 0) {
        memset(table, gray_value(g, (double)lo), a);
    }
    for (size_t s = a; s < b; s++) {
        table[s] = gray_value(g, (double)(lo + (int64_t)s));
    }
    if (b < span) {
        memset(table + b, gray_value(g, (double)(lo + (int64_t)b)), span - b);
    }
}

/* Fills table[s] = gray_value(stored value lo + s) for s in [0, span), evaluating only the entries
 * it cannot prove equal to others. A 16-bit frame with padding at -32768 spans 35000 values or
 * more, and evaluating each would cost more than the lookup pass itself.
 *
 * Rescale with LINEAR, LINEAR_EXACT or MINMAX: x = s * slope + intercept and every later step
 * (subtracting a constant, multiplying or dividing by a positive constant, comparing with fixed
 * edges, rounding, clamping, inverting) is monotonic in IEEE arithmetic, so the whole map is
 * monotonic in s and fill_runs applies. SIGMOID (exp() is not guaranteed monotonic to the last
 * bit), a VOI LUT (arbitrary entries) and a Modality LUT go to fill_zones. */
static void
table_fill(const gray_map *g, int64_t lo, size_t span, uint8_t *table)
{
    if (!g->modality_lut &&
        (g->kind == VOI_MINMAX || (g->kind == VOI_WINDOW && g->window.fn != RND_VOI_SIGMOID))) {
        fill_runs(g, lo, span, table);
    } else {
        fill_zones(g, lo, span, table);
    }
}

/* Table path: the frame's values span [lo, hi], at most TABLE_MAX_SPAN values. */
static int
gray_table(const rnd_frame *f, size_t n, int64_t lo, int64_t hi, gray_map *g, rnd_voi_used *u,
           uint8_t *dst, tsr_err *err)
{
    size_t span = (size_t)(hi - lo) + 1;
    uint8_t *table = malloc(span);
    int rc = TSR_OK;

    if (!table) {
        rc = tsr_err_set(err, TSR_ENOMEM, "out of memory for a %zu-entry display table", span);
        goto done;
    }
    if (g->kind == VOI_MINMAX) {
        range_acc r = {0, 0.0, 0.0};
        if (g->modality_lut) {
            /* A Modality LUT need not be monotonic, so only the values that occur count. The
             * table doubles as the "seen" marks before it is filled. */
            memset(table, 0, span);
            for (size_t i = 0; i < n; i++) {
                table[sample_int(f->data, f->type, i) - lo] = 1;
            }
            for (size_t s = 0; s < span; s++) {
                if (table[s]) {
                    range_add(&r, modality_value(g, (double)(lo + (int64_t)s)));
                }
            }
        } else {
            /* Rescale is linear, so its extremes are at the stored extremes. */
            range_add(&r, modality_value(g, (double)lo));
            range_add(&r, modality_value(g, (double)hi));
        }
        minmax_finish(g, &r, u);
    }
    table_fill(g, lo, span, table);
    k_int_kernels[f->type].lookup(f->data, n, table, lo, dst);

done:
    free(table);
    return rc;
}

/* Per-pixel path for F32 frames and 32-bit frames too wide for a table. */
static void
gray_direct(const rnd_frame *f, size_t n, gray_map *g, rnd_voi_used *u, uint8_t *dst)
{
    if (g->kind == VOI_MINMAX) {
        range_acc r = {0, 0.0, 0.0};
        for (size_t i = 0; i < n; i++) {
            range_add(&r, modality_value(g, sample_real(f->data, f->type, i)));
        }
        minmax_finish(g, &r, u);
    }
    for (size_t i = 0; i < n; i++) {
        dst[i] = gray_value(g, sample_real(f->data, f->type, i));
    }
}

static int
render_gray(const rnd_info *info, uint32_t index, const rnd_frame *f, size_t n, rnd_photometric pi,
            const rnd_voi_req *req, rnd_image *img, rnd_voi_used *u, tsr_err *err)
{
    gray_map g;
    int64_t lo = 0, hi = 0;
    int rc;

    memset(&g, 0, sizeof g);
    rc = modality_resolve(info, index, &g, err);
    if (rc != TSR_OK) {
        goto fail;
    }
    rc = voi_resolve(info, index, req, &g, u, err);
    if (rc != TSR_OK) {
        goto fail;
    }
    /* Polarity. PS3.3 C.7.6.3.1.2: MONOCHROME1 shows the minimum value as white. Presentation
     * LUT Shape (2050,0020) in image IODs (e.g. the DX Image Module, C.8.11.7) says INVERSE
     * "shall be used if Photometric Interpretation (0028,0004) is MONOCHROME1" and IDENTITY if
     * it is MONOCHROME2: there INVERSE restates the one inversion MONOCHROME1 implies, it does
     * not undo it. So the two are OR-ed, not XOR-ed: MONOCHROME1 with INVERSE (the conformant
     * pair) is shown inverted once, and INVERSE on a MONOCHROME2 image inverts it (Table
     * C.11.6-1: INVERSE, "output values after inversion are P-Values"). */
    g.invert = pi == RND_PI_MONOCHROME1 || info->presentation_inverse;

    rc = rnd_image_alloc(img, f->width, f->height, 1, err);
    if (rc != TSR_OK) {
        goto fail;
    }
    if (f->type != RND_T_F32 && f->has_range) {
        lo = f->range_lo;
        hi = f->range_hi;
    } else if (f->type != RND_T_F32) {
        k_int_kernels[f->type].minmax(f->data, n, &lo, &hi);
    }
    if (f->type != RND_T_F32 && hi - lo < TABLE_MAX_SPAN) {
        rc = gray_table(f, n, lo, hi, &g, u, img->data, err);
    } else {
        gray_direct(f, n, &g, u, img->data);
    }

fail:
    if (rc != TSR_OK) {
        rnd_image_free(img);
    }
    return rc;
}

/* ---------------------------------------------------------------- colour */

/* The significant bits of colour samples: bits_stored when plausible, else the type's width. */
static unsigned
colour_bits(const rnd_frame *f)
{
    unsigned tb = (unsigned)rnd_type_size(f->type) * 8u;
    return (f->bits_stored >= 1 && f->bits_stored <= tb) ? f->bits_stored : tb;
}

/* Floor division by 4 for negative numerators too (C division truncates). */
static inline int64_t
floor_div4(int64_t a)
{
    int64_t q = a / 4;
    return (a % 4 < 0) ? q - 1 : q;
}

static int
render_colour(const rnd_frame *f, size_t n, rnd_photometric pi, rnd_image *img, tsr_err *err)
{
    unsigned bits = colour_bits(f);
    double maxv = ldexp(1.0, (int)bits) - 1.0;
    double half = ldexp(1.0, (int)bits - 1);
    double to8 = 255.0 / maxv;
    /* Partial-range black and chroma offsets (16 and 128 at 8 bits), scaled to `bits`. */
    double k = ldexp(1.0, (int)bits - 8);
    uint8_t *dst;
    int rc = rnd_image_alloc(img, f->width, f->height, 3, err);

    if (rc != TSR_OK) {
        return rc;
    }
    dst = img->data;
    if (pi == RND_PI_RGB && f->type == RND_T_U8 && bits == 8) {
        memcpy(dst, f->data, n * 3);
        return TSR_OK;
    }
    for (size_t i = 0; i < n; i++) {
        double a = (double)sample_int(f->data, f->type, 3 * i);
        double b = (double)sample_int(f->data, f->type, 3 * i + 1);
        double c = (double)sample_int(f->data, f->type, 3 * i + 2);
        double r, g, bl;
        switch (pi) {
        case RND_PI_YBR_FULL:
        case RND_PI_YBR_FULL_422:
        case RND_PI_YBR_ICT:
            /* PS3.3 C.7.6.3.1.2 YBR_FULL: the full-range ITU-R BT.601 transform, inverted. ICT
             * (C.7.6.3.1.2 YBR_ICT) uses the same coefficients. */
            r = a + 1.402 * (c - half);
            g = a - 0.344136 * (b - half) - 0.714136 * (c - half);
            bl = a + 1.772 * (b - half);
            break;
        case RND_PI_YBR_PARTIAL_422:
        case RND_PI_YBR_PARTIAL_420: {
            /* C.7.6.3.1.2 YBR_PARTIAL_*: BT.601 studio range, Y in 16..235, Cb/Cr in 16..240
             * (the standard's forward coefficients are these exact ratios, rounded: e.g.
             * 0.2568 = 0.299 * 219/255). Inverse: scale 255/219 and 255/224. */
            double y = (a - 16.0 * k) * (255.0 / 219.0);
            double cb = (b - 128.0 * k) * (255.0 / 224.0);
            double cr = (c - 128.0 * k) * (255.0 / 224.0);
            r = y + 1.402 * cr;
            g = y - 0.344136 * cb - 0.714136 * cr;
            bl = y + 1.772 * cb;
            break;
        }
        case RND_PI_YBR_RCT: {
            /* C.7.6.3.1.2 YBR_RCT (JPEG 2000 reversible transform): Y = floor((R + 2G + B) / 4),
             * Cb = B - G, Cr = R - G; inverse G = Y - floor((Cb + Cr) / 4), R = Cr + G,
             * B = Cb + G. Undecoded components carry the JPEG 2000 DC level shift, so Cb and Cr
             * are centred on 2^(bits-1); Y's shift cancels out. */
            int64_t cb = (int64_t)b - (int64_t)half, cr = (int64_t)c - (int64_t)half;
            int64_t gi = (int64_t)a - floor_div4(cb + cr);
            r = (double)(cr + gi);
            g = (double)gi;
            bl = (double)(cb + gi);
            break;
        }
        case RND_PI_RGB:
        default:
            r = a;
            g = b;
            bl = c;
            break;
        }
        dst[3 * i] = (uint8_t)round_clamp_255(r * to8);
        dst[3 * i + 1] = (uint8_t)round_clamp_255(g * to8);
        dst[3 * i + 2] = (uint8_t)round_clamp_255(bl * to8);
    }
    return TSR_OK;
}

/* A palette entry in 8 bits. PS3.3 C.7.6.3.1.5: entries are 8 or 16 bits; 16-bit entries span
 * 0..65535, so the high byte is the 8-bit value (more generally, drop bits - 8 low bits). */
static inline uint8_t
palette8(const rnd_lut *lut, int64_t v)
{
    unsigned e = lut_entry_int(lut, v);
    if (lut->bits > 8) {
        return (uint8_t)(e >> (lut->bits - 8));
    }
    return (uint8_t)(e > 255 ? 255 : e);
}

static int
render_palette(const rnd_info *info, const rnd_frame *f, size_t n, rnd_image *img, tsr_err *err)
{
    static const char *const names[3] = {"red palette LUT", "green palette LUT",
                                         "blue palette LUT"};
    uint8_t *dst;
    int rc;

    if (f->type == RND_T_F32) {
        return tsr_err_set(err, TSR_EUNSUPP, "PALETTE COLOR with floating-point pixels");
    }
    for (int c = 0; c < 3; c++) {
        rc = lut_check(&info->palette[c], names[c], err);
        if (rc != TSR_OK) {
            return rc;
        }
    }
    rc = rnd_image_alloc(img, f->width, f->height, 3, err);
    if (rc != TSR_OK) {
        return rc;
    }
    dst = img->data;
    for (size_t i = 0; i < n; i++) {
        int64_t v = sample_int(f->data, f->type, i);
        dst[3 * i] = palette8(&info->palette[0], v);
        dst[3 * i + 1] = palette8(&info->palette[1], v);
        dst[3 * i + 2] = palette8(&info->palette[2], v);
    }
    return TSR_OK;
}

/* ---------------------------------------------------------------- entry point */

int
rnd_render_frame(const rnd_info *info, uint32_t index, const rnd_frame *f, const rnd_voi_req *voi,
                 rnd_image *out, rnd_voi_used *used, tsr_err *err)
{
    rnd_image img;
    rnd_voi_used u;
    rnd_photometric pi;
    size_t n, bytes;
    int rc = TSR_OK;

    memset(&img, 0, sizeof img);
    memset(&u, 0, sizeof u);
    if (!info || !f || !out) {
        rc = tsr_err_set(err, TSR_EINVAL, "rnd_render_frame: info, frame and out are required");
        goto done;
    }
    if (!f->data || f->width == 0 || f->height == 0 || (f->samples != 1 && f->samples != 3) ||
        !type_is_valid(f->type)) {
        rc = tsr_err_set(err, TSR_EINVAL, "invalid frame (%ux%u, %u samples, type %s%s)",
                         (unsigned)f->width, (unsigned)f->height, (unsigned)f->samples,
                         type_name(f->type), f->data ? "" : ", no data");
        goto done;
    }
    if (tsr_mul_size(f->width, f->height, &n) ||
        tsr_mul_size(n, (size_t)f->samples * rnd_type_size(f->type), &bytes) || bytes > f->bytes) {
        rc = tsr_err_set(err, TSR_EINVAL, "frame data (%zu bytes) is too short for %ux%ux%u %s",
                         f->bytes, (unsigned)f->width, (unsigned)f->height, (unsigned)f->samples,
                         type_name(f->type));
        goto done;
    }
    if (info->frame_meta && index >= info->frames) {
        rc = tsr_err_set(err, TSR_EINVAL, "frame index %u out of range (%u frames)",
                         (unsigned)index, (unsigned)info->frames);
        goto done;
    }

    pi = f->photometric != RND_PI_UNKNOWN ? f->photometric : info->photometric;
    if (f->samples == 1 && (pi == RND_PI_MONOCHROME1 || pi == RND_PI_MONOCHROME2)) {
        rc = render_gray(info, index, f, n, pi, voi, &img, &u, err);
    } else if (f->samples == 1 && pi == RND_PI_PALETTE_COLOR) {
        rc = render_palette(info, f, n, &img, err);
    } else if (f->samples == 3 &&
               (pi == RND_PI_RGB || pi == RND_PI_YBR_FULL || pi == RND_PI_YBR_FULL_422 ||
                pi == RND_PI_YBR_PARTIAL_422 || pi == RND_PI_YBR_PARTIAL_420 ||
                pi == RND_PI_YBR_ICT || pi == RND_PI_YBR_RCT)) {
        if (f->type != RND_T_U8 && f->type != RND_T_U16) {
            rc = tsr_err_set(err, TSR_EUNSUPP, "%s colour samples of type %s",
                             rnd_photometric_name(pi), type_name(f->type));
        } else {
            rc = render_colour(f, n, pi, &img, err);
        }
    } else {
        rc =
            tsr_err_set(err, TSR_EUNSUPP, "photometric interpretation %s with %u samples per pixel",
                        rnd_photometric_name(pi), (unsigned)f->samples);
    }
    if (rc == TSR_OK) {
        *out = img;
        if (used) {
            *used = u;
        }
    }

done:
    return rc;
}
