/* SPDX-License-Identifier: MIT */
/* test_pipeline.c: the display pipeline (render/rnd_pipeline.c) stage by stage. Every expected
 * pixel value was worked out by hand from the formula of the cited PS3.3 section, with the
 * rounding rule floor(y + 0.5) clamped to 0..255; the arithmetic is shown next to each value. */
#include "tsr_test.h"

#include "rnd_internal.h"

#include <math.h>

/* ---------------------------------------------------------------- helpers */

static void
info_init(rnd_info *info, rnd_photometric pi)
{
    memset(info, 0, sizeof *info);
    info->frames = 1;
    info->samples_per_pixel = 1;
    info->photometric = pi;
}

/* A one-row frame over caller-owned `data` holding `n` samples. */
static void
frame_init(rnd_frame *f, void *data, size_t bytes, uint32_t width, uint16_t samples, rnd_type t,
           uint16_t bits, rnd_photometric pi)
{
    memset(f, 0, sizeof *f);
    f->width = width;
    f->height = 1;
    f->samples = samples;
    f->type = t;
    f->bits_stored = bits;
    f->is_signed = t == RND_T_S8 || t == RND_T_S16 || t == RND_T_S32;
    f->photometric = pi;
    f->data = data;
    f->bytes = bytes;
}

static rnd_voi_req
req_window(double c, double w, rnd_voi_fn fn)
{
    rnd_voi_req r;
    memset(&r, 0, sizeof r);
    r.mode = RND_VOI_MODE_WINDOW;
    r.center = c;
    r.width = w;
    r.fn = fn;
    return r;
}

static rnd_voi_req
req_mode(rnd_voi_mode mode, int index)
{
    rnd_voi_req r;
    memset(&r, 0, sizeof r);
    r.mode = mode;
    r.index = index;
    return r;
}

/* Renders and compares every output byte with `expected` (width * channels bytes). */
static void
expect_pixels(const rnd_info *info, uint32_t index, const rnd_frame *f, const rnd_voi_req *req,
              uint8_t channels, const uint8_t *expected, rnd_voi_used *used)
{
    rnd_image img;
    tsr_err err;
    memset(&img, 0, sizeof img);
    memset(&err, 0, sizeof err);
    int rc = rnd_render_frame(info, index, f, req, &img, used, &err);
    if (rc != TSR_OK) {
        fail_msg("rnd_render_frame: %s (%s)", tsr_status_name(rc), err.msg);
    }
    assert_int_equal(img.width, f->width);
    assert_int_equal(img.height, f->height);
    assert_int_equal(img.channels, channels);
    assert_int_equal(img.stride, (size_t)f->width * channels);
    for (size_t i = 0; i < (size_t)f->width * f->height * channels; i++) {
        if (img.data[i] != expected[i]) {
            fail_msg("byte %zu: got %u, expected %u", i, img.data[i], expected[i]);
        }
    }
    rnd_image_free(&img);
}

#define EXPECT_GRAY(info, index, f, req, used, ...)                                                \
    do {                                                                                           \
        const uint8_t exp_[] = {__VA_ARGS__};                                                      \
        assert_int_equal(sizeof exp_, (f)->width);                                                 \
        expect_pixels((info), (index), (f), (req), 1, exp_, (used));                               \
    } while (0)

#define EXPECT_RGB(info, f, ...)                                                                   \
    do {                                                                                           \
        const uint8_t exp_[] = {__VA_ARGS__};                                                      \
        assert_int_equal(sizeof exp_, (size_t)(f)->width * 3);                                     \
        expect_pixels((info), 0, (f), NULL, 3, exp_, NULL);                                        \
    } while (0)

/* Expects rnd_render_frame to fail with `code`, with err both NULL and non-NULL, leaving `out`
 * and `used` untouched. */
static void
expect_failure(const rnd_info *info, uint32_t index, const rnd_frame *f, const rnd_voi_req *req,
               int code)
{
    rnd_image img;
    rnd_voi_used used;
    tsr_err err;

    memset(&img, 0, sizeof img);
    memset(&used, 0xA5, sizeof used);
    assert_int_equal(rnd_render_frame(info, index, f, req, &img, &used, NULL), code);
    assert_null(img.data);

    memset(&err, 0, sizeof err);
    assert_int_equal(rnd_render_frame(info, index, f, req, &img, &used, &err), code);
    assert_int_equal(err.code, code);
    assert_true(strlen(err.msg) > 0);
    assert_null(img.data);
    assert_int_equal(img.width, 0);
    const uint8_t *b = (const uint8_t *)&used;
    for (size_t i = 0; i < sizeof used; i++) {
        assert_int_equal(b[i], 0xA5);
    }
}

/* ---------------------------------------------------------------- VOI functions */

/* PS3.3 C.11.2.1.2.1 and C.11.2.1.3: the real-valued functions before rounding. */
static void
voi_apply_formulas(void **state)
{
    (void)state;
    rnd_window lin = {40.0, 400.0, RND_VOI_LINEAR};
    /* ((40 - 39.5) / 399 + 0.5) * 255 = 127.5 + 127.5/399 */
    assert_float_equal(rnd__voi_apply(40.0, &lin, 0.0, 255.0), 127.5 + 127.5 / 399.0, 1e-9);
    /* lower edge c - 0.5 - (w-1)/2 = -160 -> ymin; upper c - 0.5 + (w-1)/2 = 239 -> ymax */
    assert_float_equal(rnd__voi_apply(-160.0, &lin, 0.0, 255.0), 0.0, 0.0);
    assert_float_equal(rnd__voi_apply(239.0, &lin, 0.0, 255.0), 255.0, 1e-9);
    assert_float_equal(rnd__voi_apply(239.01, &lin, 0.0, 255.0), 255.0, 0.0);
    /* Another output range: ((40 - 39.5)/399 + 0.5) * 100 + 10 */
    assert_float_equal(rnd__voi_apply(40.0, &lin, 10.0, 110.0), 60.0 + 50.0 / 399.0, 1e-9);

    /* Width 1: a threshold at c - 0.5, no division by w - 1 = 0. */
    rnd_window one = {100.0, 1.0, RND_VOI_LINEAR};
    assert_float_equal(rnd__voi_apply(99.5, &one, 0.0, 255.0), 0.0, 0.0);
    assert_float_equal(rnd__voi_apply(99.51, &one, 0.0, 255.0), 255.0, 0.0);

    /* C.11.2.1.3.2 LINEAR_EXACT: ((x - c) / w + 0.5) * 255; x = 110, c = 100, w = 50: 0.7 * 255 */
    rnd_window ex = {100.0, 50.0, RND_VOI_LINEAR_EXACT};
    assert_float_equal(rnd__voi_apply(110.0, &ex, 0.0, 255.0), 178.5, 1e-9);
    assert_float_equal(rnd__voi_apply(75.0, &ex, 0.0, 255.0), 0.0, 0.0);

    /* C.11.2.1.3.1 SIGMOID: 255 / (1 + exp(-4 (x - c) / w)); x = c gives 127.5 */
    rnd_window sg = {100.0, 50.0, RND_VOI_SIGMOID};
    assert_float_equal(rnd__voi_apply(100.0, &sg, 0.0, 255.0), 127.5, 1e-9);
    assert_float_equal(rnd__voi_apply(150.0, &sg, 0.0, 255.0), 255.0 / (1.0 + exp(-4.0)), 1e-9);

    /* NaN input, and widths callers should have rejected, stay finite. */
    assert_float_equal(rnd__voi_apply(NAN, &lin, 0.0, 255.0), 0.0, 0.0);
    rnd_window zero = {100.0, 0.0, RND_VOI_LINEAR_EXACT};
    assert_float_equal(rnd__voi_apply(100.0, &zero, 0.0, 255.0), 0.0, 0.0);
    assert_float_equal(rnd__voi_apply(101.0, &zero, 0.0, 255.0), 255.0, 0.0);
}

/* ---------------------------------------------------------------- LINEAR window */

/* C.11.1 rescale then C.11.2.1.2.1 LINEAR, a CT soft-tissue window c = 40, w = 400 on stored
 * U16 values with intercept -1024. Edges: x <= 39.5 - 199.5 = -160 -> 0, x > 39.5 + 199.5 = 239
 * -> 255; inside y = ((x - 39.5) / 399 + 0.5) * 255. */
static void
linear_ct_window(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    rnd_voi_used used;
    /* HU = stored - 1024:  -161  -160  -159     0    40   100   238   239   240 */
    uint16_t px[] = {863, 864, 865, 1024, 1064, 1124, 1262, 1263, 1264};
    info_init(&info, RND_PI_MONOCHROME2);
    info.has_rescale = 1;
    info.rescale_slope = 1.0;
    info.rescale_intercept = -1024.0;
    info.n_windows = 2;
    info.windows[0] = (rnd_window){40.0, 400.0, RND_VOI_LINEAR};
    info.windows[1] = (rnd_window){500.0, 2000.0, RND_VOI_LINEAR};
    frame_init(&f, px, sizeof px, 9, 1, RND_T_U16, 12, RND_PI_MONOCHROME2);

    /* -159: (-198.5/399 + 0.5) * 255 = 0.639 -> 1;   0: (-39.5/399 + 0.5) * 255 = 102.26 -> 102
     * 40: (0.5/399 + 0.5) * 255 = 127.82 -> 128;    100: (60.5/399 + 0.5) * 255 = 166.17 -> 166
     * 238: (198.5/399 + 0.5) * 255 = 254.36 -> 254; 239: (199.5/399 + 0.5) * 255 = 255 */
    EXPECT_GRAY(&info, 0, &f, NULL, &used, 0, 0, 1, 102, 128, 166, 254, 255, 255);
    assert_int_equal(used.mode, RND_VOI_MODE_FILE_WINDOW);
    assert_int_equal(used.index, 0);
    assert_float_equal(used.center, 40.0, 0.0);
    assert_float_equal(used.width, 400.0, 0.0);
    assert_int_equal(used.fn, RND_VOI_LINEAR);

    /* The same window given by the caller. */
    rnd_voi_req r = req_window(40.0, 400.0, RND_VOI_LINEAR);
    EXPECT_GRAY(&info, 0, &f, &r, &used, 0, 0, 1, 102, 128, 166, 254, 255, 255);
    assert_int_equal(used.mode, RND_VOI_MODE_WINDOW);

    /* The file's second window, c = 500, w = 2000: edges -500 and 1499, so every value is inside:
     * -161: (-660.5/1999 + 0.5) * 255 = 43.24 -> 43   -160: 43.37 -> 43   -159: 43.499 -> 43
     * 0: (-499.5/1999 + 0.5) * 255 = 63.78 -> 64      40: 68.88 -> 69     100: 76.54 -> 77
     * 238: 94.14 -> 94                                239: 94.27 -> 94    240: 94.39 -> 94 */
    r = req_mode(RND_VOI_MODE_FILE_WINDOW, 1);
    EXPECT_GRAY(&info, 0, &f, &r, &used, 43, 43, 43, 64, 69, 77, 94, 94, 94);
    assert_int_equal(used.mode, RND_VOI_MODE_FILE_WINDOW);
    assert_int_equal(used.index, 1);
    assert_float_equal(used.center, 500.0, 0.0);
}

/* C.11.2.1.2.1: width 1 is legal and is a threshold at c - 0.5 (x <= 99.5 -> 0, else 255). */
static void
linear_width_one_threshold(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint8_t px[] = {0, 98, 99, 100, 101, 255};
    info_init(&info, RND_PI_MONOCHROME2);
    frame_init(&f, px, sizeof px, 6, 1, RND_T_U8, 8, RND_PI_MONOCHROME2);
    rnd_voi_req r = req_window(100.0, 1.0, RND_VOI_LINEAR);
    EXPECT_GRAY(&info, 0, &f, &r, NULL, 0, 0, 0, 255, 255, 255);
}

/* C.11.1 with a negative slope: x = -1 * stored + 1000, then LINEAR c = 0, w = 2001 (edges
 * -1000.5 and 999.5). */
static void
linear_negative_slope(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint16_t px[] = {0, 500, 1000, 2000};
    info_init(&info, RND_PI_MONOCHROME2);
    info.has_rescale = 1;
    info.rescale_slope = -1.0;
    info.rescale_intercept = 1000.0;
    frame_init(&f, px, sizeof px, 4, 1, RND_T_U16, 16, RND_PI_MONOCHROME2);
    rnd_voi_req r = req_window(0.0, 2001.0, RND_VOI_LINEAR);
    /* 0 -> 1000 > 999.5 -> 255;  500 -> 500: (500.5/2000 + 0.5) * 255 = 191.31 -> 191
     * 1000 -> 0: (0.5/2000 + 0.5) * 255 = 127.56 -> 128;  2000 -> -1000: 0.064 -> 0 */
    EXPECT_GRAY(&info, 0, &f, &r, NULL, 255, 191, 128, 0);
}

/* C.11.1 and C.11.2.1.2.1 on the extremes of signed 16-bit storage: x = 2 * stored + 100, so
 * -32768 -> -65436 and 32767 -> 65634; window c = 100, w = 131072 has edges 99.5 -/+ 65535.5 =
 * -65436 and 65635. The table spans all 65536 stored values. */
static void
linear_s16_extremes(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    int16_t px[] = {-32768, -1, 0, 32767};
    info_init(&info, RND_PI_MONOCHROME2);
    info.has_rescale = 1;
    info.rescale_slope = 2.0;
    info.rescale_intercept = 100.0;
    frame_init(&f, px, sizeof px, 4, 1, RND_T_S16, 16, RND_PI_MONOCHROME2);
    rnd_voi_req r = req_window(100.0, 131072.0, RND_VOI_LINEAR);
    /* -65436 <= -65436 -> 0;  -1 -> 98: (-1.5/131071 + 0.5) * 255 = 127.497 -> 127
     * 0 -> 100: (0.5/131071 + 0.5) * 255 = 127.501 -> 128
     * 32767 -> 65634: (65534.5/131071 + 0.5) * 255 = 254.999 -> 255 */
    EXPECT_GRAY(&info, 0, &f, &r, NULL, 0, 127, 128, 255);
}

/* ---------------------------------------------------------------- LINEAR_EXACT and SIGMOID */

/* C.11.2.1.3.2: c = 100, w = 50: x <= 75 -> 0, x > 125 -> 255, else ((x - 100)/50 + 0.5) * 255. */
static void
linear_exact_window(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    rnd_voi_used used;
    uint8_t px[] = {75, 76, 100, 124, 125, 126};
    info_init(&info, RND_PI_MONOCHROME2);
    frame_init(&f, px, sizeof px, 6, 1, RND_T_U8, 8, RND_PI_MONOCHROME2);
    rnd_voi_req r = req_window(100.0, 50.0, RND_VOI_LINEAR_EXACT);
    /* 76: 0.02 * 255 = 5.1 -> 5; 100: 127.5 -> 128; 124: 0.98 * 255 = 249.9 -> 250; 125: 255 */
    EXPECT_GRAY(&info, 0, &f, &r, &used, 0, 5, 128, 250, 255, 255);
    assert_int_equal(used.fn, RND_VOI_LINEAR_EXACT);

    /* LINEAR_EXACT allows widths below 1 (> 0): c = 100, w = 0.5 -> edges 99.75 and 100.25,
     * 100 gives 127.5 -> 128. */
    r = req_window(100.0, 0.5, RND_VOI_LINEAR_EXACT);
    EXPECT_GRAY(&info, 0, &f, &r, NULL, 0, 0, 128, 255, 255, 255);
}

/* C.11.2.1.3.1: y = 255 / (1 + exp(-4 (x - 100) / 50)). */
static void
sigmoid_window(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint8_t px[] = {0, 50, 100, 125, 150};
    info_init(&info, RND_PI_MONOCHROME2);
    info.n_windows = 1;
    info.windows[0] = (rnd_window){100.0, 50.0, RND_VOI_SIGMOID};
    frame_init(&f, px, sizeof px, 5, 1, RND_T_U8, 8, RND_PI_MONOCHROME2);
    /* 0: 255/(1 + e^8) = 0.086 -> 0;   50: 255/(1 + e^4) = 4.59 -> 5;   100: 127.5 -> 128
     * 125: 255/(1 + e^-2) = 224.60 -> 225;   150: 255/(1 + e^-4) = 250.41 -> 250 */
    EXPECT_GRAY(&info, 0, &f, NULL, NULL, 0, 5, 128, 225, 250);
}

/* ---------------------------------------------------------------- VOI LUT */

/* C.11.2.1.1: below the first input value -> first entry, above the last -> last entry. The
 * input is the modality output (slope 0.5 here), rounded for the lookup. 8-bit entries over
 * 0..255 are used as they are. LUT: first = 10, entries {10, 20, 30, 40} for inputs 10..13. */
static void
voi_lut_first_and_last(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    rnd_voi_used used;
    uint16_t lut[] = {10, 20, 30, 40};
    /* x = stored / 2:   5   9.5  10  10.5  11  13  15  100 */
    uint16_t px[] = {10, 19, 20, 21, 22, 26, 30, 200};
    info_init(&info, RND_PI_MONOCHROME2);
    info.has_rescale = 1;
    info.rescale_slope = 0.5;
    info.n_voi_luts = 1;
    info.voi_luts[0] = (rnd_lut){4, 10, 8, lut};
    frame_init(&f, px, sizeof px, 8, 1, RND_T_U16, 16, RND_PI_MONOCHROME2);
    /* 5 < 10 -> 10; 9.5 rounds to 10 (first) -> 10; 10 -> 10; 10.5 -> 11 -> 20; 11 -> 20;
     * 13 (last) -> 40; 15 and 100 > 13 -> 40 */
    EXPECT_GRAY(&info, 0, &f, NULL, &used, 10, 10, 10, 20, 20, 40, 40, 40);
    assert_int_equal(used.mode, RND_VOI_MODE_FILE_LUT);
    assert_int_equal(used.index, 0);

    rnd_voi_req r = req_mode(RND_VOI_MODE_FILE_LUT, 0);
    EXPECT_GRAY(&info, 0, &f, &r, NULL, 10, 10, 10, 20, 20, 40, 40, 40);
}

/* C.11.2.1.1: 16-bit entries span 0..65535 and map to 8 bits as round(e * 255 / 65535); a signed
 * first input value (-2) on S16 data. Entries {0, 128, 129, 32768, 65535} for inputs -2..2. */
static void
voi_lut_16bit_signed_first(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint16_t lut[] = {0, 128, 129, 32768, 65535};
    int16_t px[] = {-5, -2, -1, 0, 1, 2, 100};
    info_init(&info, RND_PI_MONOCHROME2);
    info.n_voi_luts = 1;
    info.voi_luts[0] = (rnd_lut){5, -2, 16, lut};
    frame_init(&f, px, sizeof px, 7, 1, RND_T_S16, 16, RND_PI_MONOCHROME2);
    /* -5 -> entry 0 -> 0;  -2 -> 0;  -1 -> 128 * 255/65535 = 0.498 -> 0;
     * 0 -> 129: 0.502 -> 1;  1 -> 32768: 127.502 -> 128;  2, 100 -> 65535 -> 255 */
    EXPECT_GRAY(&info, 0, &f, NULL, NULL, 0, 0, 0, 1, 128, 255, 255);
}

/* ---------------------------------------------------------------- Modality LUT */

/* C.11.1.1: a Modality LUT Sequence wins over rescale (present here, slope 10, to show it is
 * ignored); input below first -> entry 0, above last -> last entry; the output is the raw entry.
 * LUT: first = 100, entries {1000, 2000, 3000}. Then LINEAR_EXACT c = 2000, w = 4000:
 * y = ((x - 2000) / 4000 + 0.5) * 255. */
static void
modality_lut_sequence(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint16_t lut[] = {1000, 2000, 3000};
    uint16_t px[] = {50, 100, 101, 102, 500};
    info_init(&info, RND_PI_MONOCHROME2);
    info.has_rescale = 1;
    info.rescale_slope = 10.0;
    info.modality_lut = (rnd_lut){3, 100, 16, lut};
    frame_init(&f, px, sizeof px, 5, 1, RND_T_U16, 16, RND_PI_MONOCHROME2);
    rnd_voi_req r = req_window(2000.0, 4000.0, RND_VOI_LINEAR_EXACT);
    /* 50, 100 -> 1000: 0.25 * 255 = 63.75 -> 64;  101 -> 2000: 127.5 -> 128;
     * 102, 500 -> 3000: 0.75 * 255 = 191.25 -> 191 */
    EXPECT_GRAY(&info, 0, &f, &r, NULL, 64, 64, 128, 191, 191);

    /* A non-monotonic LUT {0, 10000, 0, 5000} (first = 0) with C.11.2.1.3.1 SIGMOID c = 5000,
     * w = 100: 0 -> 255 / (1 + e^200) -> 0; 10000 -> 255 / (1 + e^-200) -> 255;
     * 5000 -> 127.5 -> 128. */
    uint16_t lut2[] = {0, 10000, 0, 5000};
    uint16_t px2[] = {0, 1, 2, 3};
    info.modality_lut = (rnd_lut){4, 0, 16, lut2};
    frame_init(&f, px2, sizeof px2, 4, 1, RND_T_U16, 16, RND_PI_MONOCHROME2);
    r = req_window(5000.0, 100.0, RND_VOI_SIGMOID);
    EXPECT_GRAY(&info, 0, &f, &r, NULL, 0, 255, 0, 128);
}

/* ---------------------------------------------------------------- presentation */

/* C.7.6.3.1.2: MONOCHROME1 shows the minimum as white, i.e. 255 - v after VOI. LINEAR_EXACT
 * c = 128, w = 256 gives y = x * 255/256: 0 -> 0, 100 -> 99.61 -> 100, 255 -> 254.00 -> 254. */
static void
monochrome1_inverts(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint8_t px[] = {0, 100, 255};
    rnd_voi_req r = req_window(128.0, 256.0, RND_VOI_LINEAR_EXACT);
    info_init(&info, RND_PI_MONOCHROME2);
    frame_init(&f, px, sizeof px, 3, 1, RND_T_U8, 8, RND_PI_MONOCHROME2);
    EXPECT_GRAY(&info, 0, &f, &r, NULL, 0, 100, 254);

    info.photometric = RND_PI_MONOCHROME1;
    f.photometric = RND_PI_MONOCHROME1;
    EXPECT_GRAY(&info, 0, &f, &r, NULL, 255, 155, 1);

    /* The frame's photometric interpretation is what counts; UNKNOWN falls back to the file's. */
    f.photometric = RND_PI_UNKNOWN;
    EXPECT_GRAY(&info, 0, &f, &r, NULL, 255, 155, 1);
}

/* Presentation LUT Shape INVERSE (Table C.11.6-1: "output values after inversion are P-Values";
 * DX Image Module C.8.11.7: INVERSE "shall be used if Photometric Interpretation is
 * MONOCHROME1"): it inverts MONOCHROME2, and with MONOCHROME1 it restates the same single
 * inversion rather than cancelling it. Same window as above. */
static void
presentation_inverse(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint8_t px[] = {0, 100, 255};
    rnd_voi_req r = req_window(128.0, 256.0, RND_VOI_LINEAR_EXACT);
    info_init(&info, RND_PI_MONOCHROME2);
    info.presentation_inverse = 1;
    frame_init(&f, px, sizeof px, 3, 1, RND_T_U8, 8, RND_PI_MONOCHROME2);
    EXPECT_GRAY(&info, 0, &f, &r, NULL, 255, 155, 1);

    info.photometric = RND_PI_MONOCHROME1;
    f.photometric = RND_PI_MONOCHROME1;
    EXPECT_GRAY(&info, 0, &f, &r, NULL, 255, 155, 1);
}

/* ---------------------------------------------------------------- per-frame values */

/* Enhanced multi-frame: frame 1's functional groups carry their own rescale and window (C.7.6.16
 * Pixel Value Transformation / Frame VOI LUT macros), overriding the file-level ones; frame 0
 * has none and uses the file's. */
static void
per_frame_override(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    rnd_voi_used used;
    rnd_frame_meta meta[2];
    uint8_t px[] = {0, 10, 20, 30};
    info_init(&info, RND_PI_MONOCHROME2);
    info.frames = 2;
    info.n_windows = 1;
    info.windows[0] = (rnd_window){15.0, 30.0, RND_VOI_LINEAR_EXACT};
    memset(meta, 0, sizeof meta);
    meta[1].has_rescale = 1;
    meta[1].slope = 2.0;
    meta[1].intercept = -10.0;
    meta[1].has_window = 1;
    meta[1].window = (rnd_window){10.0, 20.0, RND_VOI_LINEAR_EXACT};
    info.frame_meta = meta;
    frame_init(&f, px, sizeof px, 4, 1, RND_T_U8, 8, RND_PI_MONOCHROME2);

    /* Frame 0: identity rescale, c = 15, w = 30 (edges 0 and 30): 0 -> 0,
     * 10: (-5/30 + 0.5) * 255 = 85, 20: (5/30 + 0.5) * 255 = 170, 30 -> 255 */
    EXPECT_GRAY(&info, 0, &f, NULL, &used, 0, 85, 170, 255);
    assert_int_equal(used.mode, RND_VOI_MODE_FILE_WINDOW);

    /* Frame 1: x = 2s - 10 = -10, 10, 30, 50; c = 10, w = 20 (edges 0 and 20):
     * -10 -> 0, 10 -> 127.5 -> 128, 30 and 50 -> 255 */
    EXPECT_GRAY(&info, 1, &f, NULL, &used, 0, 128, 255, 255);
    assert_int_equal(used.mode, RND_VOI_MODE_WINDOW);
    assert_float_equal(used.center, 10.0, 0.0);
    assert_float_equal(used.width, 20.0, 0.0);

    /* An explicit file window still means info->windows[], with frame 1's rescale:
     * c = 15, w = 30: -10 -> 0, 10 -> 85, 30 -> 255 */
    rnd_voi_req r = req_mode(RND_VOI_MODE_FILE_WINDOW, 0);
    EXPECT_GRAY(&info, 1, &f, &r, NULL, 0, 85, 255, 255);
}

/* ---------------------------------------------------------------- min-max */

/* No window and no VOI LUT: DEFAULT is min-max of the modality values, mapped linearly min -> 0,
 * max -> 255. x = 2s - 50 = 150, 350, 550, 250; y = (x - 150) * 255 / 400. */
static void
minmax_default(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    rnd_voi_used used;
    uint16_t px[] = {100, 200, 300, 150};
    info_init(&info, RND_PI_MONOCHROME2);
    info.has_rescale = 1;
    info.rescale_slope = 2.0;
    info.rescale_intercept = -50.0;
    frame_init(&f, px, sizeof px, 4, 1, RND_T_U16, 16, RND_PI_MONOCHROME2);
    /* 150 -> 0; 350 -> 127.5 -> 128; 550 -> 255; 250 -> 63.75 -> 64 */
    EXPECT_GRAY(&info, 0, &f, NULL, &used, 0, 128, 255, 64);
    assert_int_equal(used.mode, RND_VOI_MODE_MINMAX);
    assert_int_equal(used.fn, RND_VOI_LINEAR_EXACT);
    assert_float_equal(used.center, 350.0, 0.0);
    assert_float_equal(used.width, 400.0, 0.0);

    /* Negative slope: x = 1000 - s = 900, 800, 700, 850 -> min 700 (from the largest stored
     * value), max 900: (x - 700) * 255 / 200 = 255, 127.5 -> 128, 0, 191.25 -> 191 */
    info.rescale_slope = -1.0;
    info.rescale_intercept = 1000.0;
    rnd_voi_req r = req_mode(RND_VOI_MODE_MINMAX, 0);
    EXPECT_GRAY(&info, 0, &f, &r, &used, 255, 128, 0, 191);
    assert_float_equal(used.center, 800.0, 0.0);
    assert_float_equal(used.width, 200.0, 0.0);
}

/* Min-max over the whole unsigned 16-bit range (values above 32767 included): y = x * 255 /
 * 65535: 0 -> 0, 40000 -> 155.64 -> 156, 32768 -> 127.50 -> 128, 65535 -> 255. */
static void
minmax_u16_full_range(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    rnd_voi_used used;
    uint16_t px[] = {0, 40000, 32768, 65535};
    info_init(&info, RND_PI_MONOCHROME2);
    frame_init(&f, px, sizeof px, 4, 1, RND_T_U16, 16, RND_PI_MONOCHROME2);
    EXPECT_GRAY(&info, 0, &f, NULL, &used, 0, 156, 128, 255);
    assert_float_equal(used.center, 32767.5, 0.0);
    assert_float_equal(used.width, 65535.0, 0.0);
}

/* Min-max of a constant frame: min == max maps everything to 0 before presentation (the
 * minimum shown as the minimum), so 255 for MONOCHROME1. */
static void
minmax_constant_frame(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    rnd_voi_used used;
    int16_t px[] = {-7, -7, -7};
    info_init(&info, RND_PI_MONOCHROME2);
    frame_init(&f, px, sizeof px, 3, 1, RND_T_S16, 16, RND_PI_MONOCHROME2);
    EXPECT_GRAY(&info, 0, &f, NULL, &used, 0, 0, 0);
    assert_int_equal(used.mode, RND_VOI_MODE_MINMAX);
    assert_float_equal(used.width, 0.0, 0.0);
    assert_float_equal(used.center, -7.0, 0.0);

    f.photometric = RND_PI_MONOCHROME1;
    EXPECT_GRAY(&info, 0, &f, NULL, NULL, 255, 255, 255);
}

/* Min-max through a non-monotonic Modality LUT counts only values that occur: LUT first = 0,
 * entries {500, 0, 900, 100}; stored {1, 3} -> x = {0, 100}: the 900 of the absent value 2 must
 * not stretch the range. y = x * 255 / 100. */
static void
minmax_modality_lut_present_values(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    rnd_voi_used used;
    uint16_t lut[] = {500, 0, 900, 100};
    uint8_t px[] = {1, 3, 3, 1};
    info_init(&info, RND_PI_MONOCHROME2);
    info.modality_lut = (rnd_lut){4, 0, 16, lut};
    frame_init(&f, px, sizeof px, 4, 1, RND_T_U8, 8, RND_PI_MONOCHROME2);
    EXPECT_GRAY(&info, 0, &f, NULL, &used, 0, 255, 255, 0);
    assert_float_equal(used.center, 50.0, 0.0);
    assert_float_equal(used.width, 100.0, 0.0);
}

/* ---------------------------------------------------------------- per-pixel paths */

/* F32 frames take the per-pixel path. LINEAR_EXACT c = 0, w = 2: -1.5 <= -1 -> 0;
 * 0.25: (0.125 + 0.5) * 255 = 159.375 -> 159; NaN -> 0; +inf -> 255; -inf -> 0. */
static void
f32_frame(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    rnd_voi_used used;
    float px[] = {-1.5f, 0.25f, NAN, INFINITY, -INFINITY};
    info_init(&info, RND_PI_MONOCHROME2);
    frame_init(&f, px, sizeof px, 5, 1, RND_T_F32, 32, RND_PI_MONOCHROME2);
    rnd_voi_req r = req_window(0.0, 2.0, RND_VOI_LINEAR_EXACT);
    EXPECT_GRAY(&info, 0, &f, &r, NULL, 0, 159, 0, 255, 0);

    /* Min-max ignores NaN and infinities: {-1, 3, NaN, 1, inf} -> min -1, max 3,
     * y = (x + 1) * 255 / 4: 0, 255, (NaN) 0, 127.5 -> 128, (inf) 255 */
    float px2[] = {-1.0f, 3.0f, NAN, 1.0f, INFINITY};
    frame_init(&f, px2, sizeof px2, 5, 1, RND_T_F32, 32, RND_PI_MONOCHROME2);
    EXPECT_GRAY(&info, 0, &f, NULL, &used, 0, 255, 0, 128, 255);
    assert_float_equal(used.center, 1.0, 0.0);
    assert_float_equal(used.width, 4.0, 0.0);
}

/* 32-bit frames: a span over 65536 values goes per pixel, a narrow one through the table; both
 * follow the same formulas. Min-max {-100000, 0, 100000}: 0, 127.5 -> 128, 255. */
static void
s32_wide_and_narrow(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    int32_t wide[] = {-100000, 0, 100000};
    int32_t narrow[] = {-10, 0, 10};
    info_init(&info, RND_PI_MONOCHROME2);
    frame_init(&f, wide, sizeof wide, 3, 1, RND_T_S32, 32, RND_PI_MONOCHROME2);
    EXPECT_GRAY(&info, 0, &f, NULL, NULL, 0, 128, 255);
    frame_init(&f, narrow, sizeof narrow, 3, 1, RND_T_S32, 32, RND_PI_MONOCHROME2);
    EXPECT_GRAY(&info, 0, &f, NULL, NULL, 0, 128, 255);

    /* LINEAR c = 0.5, w = 100000 over the wide frame: edges 0 -/+ 49999.5; -100000 -> 0,
     * 0: (0/99999 + 0.5) * 255 = 127.5 -> 128, 100000 -> 255 */
    rnd_voi_req r = req_window(0.5, 100000.0, RND_VOI_LINEAR);
    frame_init(&f, wide, sizeof wide, 3, 1, RND_T_S32, 32, RND_PI_MONOCHROME2);
    EXPECT_GRAY(&info, 0, &f, &r, NULL, 0, 128, 255);
}

/* Full 512x512 S16 frames through the table path (with its constant zones found by binary
 * search) give, pixel for pixel, what the formulas give applied one value at a time: rescale
 * (C.11.1), the window function (C.11.2.1.2.1 / C.11.2.1.3, through rnd__voi_apply, checked by
 * hand in voi_apply_formulas), floor(y + 0.5) clamped, and 255 - v for MONOCHROME1. The values
 * include the -32768 padding many CT files use, so the table spans all 65536 values. */
static void
table_matches_formula_full_frame(void **state)
{
    (void)state;
    enum { W = 512, H = 512 };
    static const struct {
        double slope, intercept;
        rnd_window w;
        rnd_photometric pi;
    } cases[] = {
        {1.0, -1024.0, {-600.0, 1500.0, RND_VOI_LINEAR}, RND_PI_MONOCHROME2},
        {1.0, -1024.0, {40.0, 1.0, RND_VOI_LINEAR}, RND_PI_MONOCHROME2},
        {-0.75, 300.0, {100.0, 900.0, RND_VOI_LINEAR}, RND_PI_MONOCHROME2},
        {-0.75, 300.0, {100.0, 900.0, RND_VOI_LINEAR_EXACT}, RND_PI_MONOCHROME1},
        {2.5, 7.0, {1000.0, 3000.0, RND_VOI_SIGMOID}, RND_PI_MONOCHROME2},
        {-2.5, 7.0, {1000.0, 3000.0, RND_VOI_SIGMOID}, RND_PI_MONOCHROME1},
        {0.0, 42.0, {40.0, 10.0, RND_VOI_LINEAR}, RND_PI_MONOCHROME2},
        /* c so large that c -/+ 1.575 w rounds back to c: no saturated zones may be assumed. */
        {1.0, 1e17, {1e17, 1.0, RND_VOI_SIGMOID}, RND_PI_MONOCHROME2},
    };
    rnd_info info;
    rnd_frame f;
    rnd_image img;
    int16_t *px = malloc(sizeof(int16_t) * W * H);
    uint32_t seed = 12345;
    assert_non_null(px);
    for (size_t i = 0; i < (size_t)W * H; i++) {
        seed = seed * 1664525u + 1013904223u;
        px[i] = (int16_t)((seed >> 16) % 4096) - 1024;
    }
    px[0] = -32768;
    px[1] = 32767;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        info_init(&info, cases[k].pi);
        info.has_rescale = 1;
        info.rescale_slope = cases[k].slope;
        info.rescale_intercept = cases[k].intercept;
        frame_init(&f, px, sizeof(int16_t) * W * H, W, 1, RND_T_S16, 16, cases[k].pi);
        f.height = H;
        rnd_voi_req r = req_window(cases[k].w.center, cases[k].w.width, cases[k].w.fn);
        memset(&img, 0, sizeof img);
        assert_int_equal(rnd_render_frame(&info, 0, &f, &r, &img, NULL, NULL), TSR_OK);
        for (size_t i = 0; i < (size_t)W * H; i++) {
            double x = px[i] * cases[k].slope + cases[k].intercept;
            double y = rnd__voi_apply(x, &cases[k].w, 0.0, 255.0);
            int v = (int)floor(y + 0.5);
            v = v < 0 ? 0 : (v > 255 ? 255 : v);
            v = cases[k].pi == RND_PI_MONOCHROME1 ? 255 - v : v;
            if (img.data[i] != v) {
                fail_msg("case %zu pixel %zu (stored %d): got %u, expected %d", k, i, px[i],
                         img.data[i], v);
            }
        }
        rnd_image_free(&img);
    }
    free(px);
}

/* DEFAULT skips a file window the file gets wrong (LINEAR width 0, C.11.2.1.2.1 needs >= 1)
 * and falls through to min-max; asking for that window explicitly is an error. */
static void
default_skips_invalid_file_window(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    rnd_voi_used used;
    uint8_t px[] = {10, 20, 30};
    info_init(&info, RND_PI_MONOCHROME2);
    info.n_windows = 1;
    info.windows[0] = (rnd_window){20.0, 0.0, RND_VOI_LINEAR};
    frame_init(&f, px, sizeof px, 3, 1, RND_T_U8, 8, RND_PI_MONOCHROME2);
    /* min-max: (x - 10) * 255 / 20 = 0, 127.5 -> 128, 255 */
    EXPECT_GRAY(&info, 0, &f, NULL, &used, 0, 128, 255);
    assert_int_equal(used.mode, RND_VOI_MODE_MINMAX);
    rnd_voi_req r = req_mode(RND_VOI_MODE_FILE_WINDOW, 0);
    expect_failure(&info, 0, &f, &r, TSR_ECORRUPT);
}

/* ---------------------------------------------------------------- palette */

/* C.7.6.3.1.5/6: the stored value indexes each palette LUT (below first -> entry 0, beyond the
 * last -> last entry); 8-bit entries are used as they are. first = 10, three entries. */
static void
palette_8bit_entries(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint16_t red[] = {10, 20, 30}, green[] = {0, 128, 255}, blue[] = {200, 100, 0};
    uint8_t px[] = {0, 10, 11, 12, 200};
    info_init(&info, RND_PI_PALETTE_COLOR);
    info.palette[0] = (rnd_lut){3, 10, 8, red};
    info.palette[1] = (rnd_lut){3, 10, 8, green};
    info.palette[2] = (rnd_lut){3, 10, 8, blue};
    frame_init(&f, px, sizeof px, 5, 1, RND_T_U8, 8, RND_PI_PALETTE_COLOR);
    EXPECT_RGB(&info, &f, 10, 0, 200, /* 0 < first -> entry 0 */
               10, 0, 200,            /* 10 = first -> entry 0 */
               20, 128, 100,          /* 11 -> entry 1 */
               30, 255, 0,            /* 12 -> entry 2 (last) */
               30, 255, 0);           /* 200 > last -> entry 2 */
}

/* C.7.6.3.1.5: 16-bit entries span 0..65535; the 8-bit value is the high byte (e >> 8).
 * first = 1000 on U16 data, two entries. */
static void
palette_16bit_entries(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint16_t red[] = {0xFFFF, 0x0100}, green[] = {0x80FF, 0x00FF}, blue[] = {0x1234, 0xABCD};
    uint16_t px[] = {0, 1000, 1001, 60000};
    info_init(&info, RND_PI_PALETTE_COLOR);
    info.palette[0] = (rnd_lut){2, 1000, 16, red};
    info.palette[1] = (rnd_lut){2, 1000, 16, green};
    info.palette[2] = (rnd_lut){2, 1000, 16, blue};
    frame_init(&f, px, sizeof px, 4, 1, RND_T_U16, 16, RND_PI_PALETTE_COLOR);
    EXPECT_RGB(&info, &f, 0xFF, 0x80, 0x12, /* 0 < first -> entry 0 */
               0xFF, 0x80, 0x12,            /* 1000 -> entry 0 */
               0x01, 0x00, 0xAB,            /* 1001 -> entry 1 */
               0x01, 0x00, 0xAB);           /* 60000 -> entry 1 (last) */
}

/* ---------------------------------------------------------------- colour */

/* C.7.6.3.1.2 YBR_FULL: R = Y + 1.402 (Cr - 128), G = Y - 0.344136 (Cb - 128) - 0.714136
 * (Cr - 128), B = Y + 1.772 (Cb - 128), rounded and clamped. YBR_FULL_422 (already expanded)
 * and YBR_ICT use the same equations. */
static void
ybr_full_to_rgb(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint8_t px[] = {128, 128, 128, 76, 85, 255, 150, 44, 21, 100, 150, 90, 90, 128, 239};
    info_init(&info, RND_PI_YBR_FULL);
    frame_init(&f, px, sizeof px, 5, 3, RND_T_U8, 8, RND_PI_YBR_FULL);
    /* (76, 85, 255): R = 76 + 178.054 = 254.05 -> 254; G = 76 + 14.798 - 90.695 = 0.10 -> 0;
     *                B = 76 - 76.196 = -0.196 -> 0
     * (150, 44, 21): R = 150 - 150.014 -> 0; G = 150 + 28.907 + 76.413 = 255.32 -> 255;
     *                B = 150 - 148.848 = 1.152 -> 1
     * (100, 150, 90): R = 100 - 53.276 = 46.72 -> 47; G = 100 - 7.571 + 27.137 = 119.57 -> 120;
     *                 B = 100 + 38.984 = 138.98 -> 139
     * (90, 128, 239): R = 90 + 1.402 * 111 = 245.622 -> 246 (1.4 would give 245);
     *                 G = 90 - 0.714136 * 111 = 10.73 -> 11; B = 90 */
    EXPECT_RGB(&info, &f, 128, 128, 128, 254, 0, 0, 0, 255, 1, 47, 120, 139, 246, 11, 90);
    f.photometric = RND_PI_YBR_FULL_422;
    EXPECT_RGB(&info, &f, 128, 128, 128, 254, 0, 0, 0, 255, 1, 47, 120, 139, 246, 11, 90);
    f.photometric = RND_PI_YBR_ICT;
    EXPECT_RGB(&info, &f, 128, 128, 128, 254, 0, 0, 0, 255, 1, 47, 120, 139, 246, 11, 90);
}

/* C.7.6.3.1.2 YBR_PARTIAL_422/420: BT.601 studio range, black Y = 16, white Y = 235, chroma
 * centred on 128. R = 255/219 (Y - 16) + 1.402 * 255/224 (Cr - 128), etc. */
static void
ybr_partial_to_rgb(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint8_t px[] = {16, 128, 128, 235, 128, 128, 126, 128, 128, 126, 128, 160};
    info_init(&info, RND_PI_YBR_PARTIAL_420);
    frame_init(&f, px, sizeof px, 4, 3, RND_T_U8, 8, RND_PI_YBR_PARTIAL_420);
    /* (16,128,128) -> 0; (235,128,128) -> 219 * 255/219 = 255;
     * (126,128,128) -> 110 * 255/219 = 128.08 -> 128;
     * (126,128,160): Y' = 128.08, Cr' = 32 * 255/224 = 36.43:
     *   R = 128.08 + 1.402 * 36.43 = 179.16 -> 179; G = 128.08 - 0.714136 * 36.43 = 102.07 -> 102;
     *   B = 128 */
    EXPECT_RGB(&info, &f, 0, 0, 0, 255, 255, 255, 128, 128, 128, 179, 102, 128);
}

/* C.7.6.3.1.2 YBR_RCT: G = Y - floor((Cb + Cr) / 4), R = Cr + G, B = Cb + G, with Cb and Cr
 * centred on 128. (100, 138, 108): Cb = 10, Cr = -20, floor(-10/4) = -3 -> G = 103, R = 83,
 * B = 113. (50, 128, 128): G = R = B = 50. */
static void
ybr_rct_to_rgb(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint8_t px[] = {100, 138, 108, 50, 128, 128};
    info_init(&info, RND_PI_YBR_RCT);
    frame_init(&f, px, sizeof px, 2, 3, RND_T_U8, 8, RND_PI_YBR_RCT);
    EXPECT_RGB(&info, &f, 83, 103, 113, 50, 50, 50);
}

/* RGB 8-bit is copied as it is; the VOI request is ignored and rnd_voi_used zeroed. */
static void
rgb_passthrough(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    rnd_image img;
    rnd_voi_used used;
    uint8_t px[] = {1, 2, 3, 250, 128, 0, 255, 255, 255};
    info_init(&info, RND_PI_RGB);
    frame_init(&f, px, sizeof px, 3, 3, RND_T_U8, 8, RND_PI_RGB);
    EXPECT_RGB(&info, &f, 1, 2, 3, 250, 128, 0, 255, 255, 255);

    rnd_voi_req r = req_window(10.0, 0.0, RND_VOI_LINEAR);
    memset(&img, 0, sizeof img);
    memset(&used, 0xFF, sizeof used);
    assert_int_equal(rnd_render_frame(&info, 0, &f, &r, &img, &used, NULL), TSR_OK);
    assert_memory_equal(img.data, px, sizeof px);
    assert_int_equal(used.mode, RND_VOI_MODE_DEFAULT);
    rnd_image_free(&img);
}

/* 16-bit RGB samples with BitsStored 12 scale by 255 / 4095: 1000 -> 62.27 -> 62,
 * 2048 -> 127.53 -> 128, 4095 -> 255. */
static void
rgb_16bit_scaled(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint16_t px[] = {0, 1000, 2048, 4095, 4095, 0};
    info_init(&info, RND_PI_RGB);
    frame_init(&f, px, sizeof px, 2, 3, RND_T_U16, 12, RND_PI_RGB);
    EXPECT_RGB(&info, &f, 0, 62, 128, 255, 255, 0);
}

/* ---------------------------------------------------------------- errors */

/* C.11.2.1.2.1: LINEAR needs width >= 1; C.11.2.1.3: LINEAR_EXACT and SIGMOID need > 0. */
static void
error_bad_width(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint8_t px[] = {1, 2};
    info_init(&info, RND_PI_MONOCHROME2);
    frame_init(&f, px, sizeof px, 2, 1, RND_T_U8, 8, RND_PI_MONOCHROME2);
    rnd_voi_req r = req_window(10.0, 0.5, RND_VOI_LINEAR);
    expect_failure(&info, 0, &f, &r, TSR_EINVAL);
    r = req_window(10.0, 0.0, RND_VOI_LINEAR_EXACT);
    expect_failure(&info, 0, &f, &r, TSR_EINVAL);
    r = req_window(10.0, -5.0, RND_VOI_SIGMOID);
    expect_failure(&info, 0, &f, &r, TSR_EINVAL);
    r = req_window(NAN, 100.0, RND_VOI_LINEAR);
    expect_failure(&info, 0, &f, &r, TSR_EINVAL);
    r = req_window(10.0, 100.0, (rnd_voi_fn)42);
    expect_failure(&info, 0, &f, &r, TSR_EINVAL);
}

static void
error_index_out_of_range(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    rnd_frame_meta meta[1];
    uint16_t lut[] = {0, 255};
    uint8_t px[] = {1, 2};
    info_init(&info, RND_PI_MONOCHROME2);
    info.n_windows = 1;
    info.windows[0] = (rnd_window){1.0, 10.0, RND_VOI_LINEAR};
    info.n_voi_luts = 1;
    info.voi_luts[0] = (rnd_lut){2, 0, 8, lut};
    frame_init(&f, px, sizeof px, 2, 1, RND_T_U8, 8, RND_PI_MONOCHROME2);
    rnd_voi_req r = req_mode(RND_VOI_MODE_FILE_WINDOW, 1);
    expect_failure(&info, 0, &f, &r, TSR_EINVAL);
    r = req_mode(RND_VOI_MODE_FILE_WINDOW, -1);
    expect_failure(&info, 0, &f, &r, TSR_EINVAL);
    r = req_mode(RND_VOI_MODE_FILE_LUT, 1);
    expect_failure(&info, 0, &f, &r, TSR_EINVAL);
    r = req_mode((rnd_voi_mode)99, 0);
    expect_failure(&info, 0, &f, &r, TSR_EINVAL);

    /* Frame index beyond the per-frame metadata. */
    memset(meta, 0, sizeof meta);
    info.frame_meta = meta;
    expect_failure(&info, 1, &f, NULL, TSR_EINVAL);
}

/* Samples and photometric interpretation that do not go together, and colour sample types the
 * pipeline does not take. */
static void
error_unsupported(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint8_t px[6] = {0};
    float fpx[3] = {0};
    info_init(&info, RND_PI_MONOCHROME2);
    frame_init(&f, px, sizeof px, 2, 3, RND_T_U8, 8, RND_PI_MONOCHROME2);
    expect_failure(&info, 0, &f, NULL, TSR_EUNSUPP);
    frame_init(&f, px, sizeof px, 2, 1, RND_T_U8, 8, RND_PI_RGB);
    expect_failure(&info, 0, &f, NULL, TSR_EUNSUPP);
    info.photometric = RND_PI_UNKNOWN;
    frame_init(&f, px, sizeof px, 2, 1, RND_T_U8, 8, RND_PI_UNKNOWN);
    expect_failure(&info, 0, &f, NULL, TSR_EUNSUPP);
    frame_init(&f, fpx, sizeof fpx, 1, 3, RND_T_F32, 32, RND_PI_RGB);
    expect_failure(&info, 0, &f, NULL, TSR_EUNSUPP);
    /* PALETTE COLOR without its LUTs. */
    frame_init(&f, px, sizeof px, 2, 1, RND_T_U8, 8, RND_PI_PALETTE_COLOR);
    expect_failure(&info, 0, &f, NULL, TSR_ECORRUPT);
}

/* Frames with no pixels, no data, too few bytes or an unknown type are rejected. */
static void
error_invalid_frame(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint16_t px[4] = {0};
    info_init(&info, RND_PI_MONOCHROME2);
    frame_init(&f, px, sizeof px, 0, 1, RND_T_U16, 16, RND_PI_MONOCHROME2);
    expect_failure(&info, 0, &f, NULL, TSR_EINVAL);
    frame_init(&f, px, sizeof px, 4, 1, RND_T_U16, 16, RND_PI_MONOCHROME2);
    f.height = 0;
    expect_failure(&info, 0, &f, NULL, TSR_EINVAL);
    frame_init(&f, NULL, sizeof px, 4, 1, RND_T_U16, 16, RND_PI_MONOCHROME2);
    expect_failure(&info, 0, &f, NULL, TSR_EINVAL);
    frame_init(&f, px, sizeof px - 1, 4, 1, RND_T_U16, 16, RND_PI_MONOCHROME2);
    expect_failure(&info, 0, &f, NULL, TSR_EINVAL);
    frame_init(&f, px, sizeof px, 4, 2, RND_T_U16, 16, RND_PI_MONOCHROME2);
    expect_failure(&info, 0, &f, NULL, TSR_EINVAL);
    frame_init(&f, px, sizeof px, 2, 1, (rnd_type)17, 16, RND_PI_MONOCHROME2);
    expect_failure(&info, 0, &f, NULL, TSR_EINVAL);
    frame_init(&f, px, sizeof px, UINT32_MAX, 1, RND_T_U16, 16, RND_PI_MONOCHROME2);
    f.height = UINT32_MAX;
    expect_failure(&info, 0, &f, NULL, TSR_EINVAL);
    frame_init(&f, px, sizeof px, 4, 1, RND_T_U16, 16, RND_PI_MONOCHROME2);
    expect_failure(NULL, 0, &f, NULL, TSR_EINVAL);
    expect_failure(&info, 0, NULL, NULL, TSR_EINVAL);
}

/* Malformed LUTs from the file: a VOI LUT without entries asked for by index, and a Modality
 * LUT with a zero entry count. */
static void
error_malformed_luts(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint16_t lut[] = {0, 1};
    uint8_t px[] = {1, 2};
    info_init(&info, RND_PI_MONOCHROME2);
    info.n_voi_luts = 1;
    info.voi_luts[0] = (rnd_lut){0, 0, 8, lut};
    frame_init(&f, px, sizeof px, 2, 1, RND_T_U8, 8, RND_PI_MONOCHROME2);
    rnd_voi_req r = req_mode(RND_VOI_MODE_FILE_LUT, 0);
    expect_failure(&info, 0, &f, &r, TSR_ECORRUPT);
    info.voi_luts[0] = (rnd_lut){2, 0, 0, lut};
    expect_failure(&info, 0, &f, &r, TSR_ECORRUPT);
    /* DEFAULT passes over the broken VOI LUT to min-max: 1 -> 0, 2 -> 255. */
    EXPECT_GRAY(&info, 0, &f, NULL, NULL, 0, 255);

    info.modality_lut = (rnd_lut){0, 0, 16, lut};
    expect_failure(&info, 0, &f, NULL, TSR_ECORRUPT);
}

/* rnd_frame_set_range records the sample extremes of one-sample integer frames (unsigned 16-bit
 * ones through the signed-compare bias too), and rendering with a recorded range gives the same
 * bytes as rendering without one. Colour and float frames get no range. */
static void
recorded_range_same_pixels(void **state)
{
    (void)state;
    rnd_info info;
    rnd_frame f;
    uint16_t u16[] = {863, 65535, 0, 1024, 40000, 1124};
    int16_t s16[] = {-2000, 3071, -1024, 0, 40, -32768};
    uint8_t u8[] = {7, 200, 13, 255, 1, 99};
    struct {
        void *px;
        size_t bytes;
        rnd_type t;
        int64_t lo, hi;
    } c[] = {{u16, sizeof u16, RND_T_U16, 0, 65535},
             {s16, sizeof s16, RND_T_S16, -32768, 3071},
             {u8, sizeof u8, RND_T_U8, 1, 255}};
    info_init(&info, RND_PI_MONOCHROME2);
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        frame_init(&f, c[k].px, c[k].bytes, 6, 1, c[k].t, 16, RND_PI_MONOCHROME2);
        rnd_voi_req r = req_window(100.0, 700.0, RND_VOI_LINEAR);
        rnd_image a = {0}, b = {0};
        assert_int_equal(rnd_render_frame(&info, 0, &f, &r, &a, NULL, NULL), TSR_OK);
        rnd_frame_set_range(&f);
        assert_true(f.has_range);
        assert_int_equal(f.range_lo, c[k].lo);
        assert_int_equal(f.range_hi, c[k].hi);
        assert_int_equal(rnd_render_frame(&info, 0, &f, &r, &b, NULL, NULL), TSR_OK);
        assert_memory_equal(a.data, b.data, 6);
        rnd_image_free(&a);
        rnd_image_free(&b);
    }
    uint8_t rgb[6] = {1, 2, 3, 4, 5, 6};
    frame_init(&f, rgb, sizeof rgb, 2, 3, RND_T_U8, 8, RND_PI_RGB);
    rnd_frame_set_range(&f);
    assert_false(f.has_range);
    float fl[2] = {1.5f, -3.0f};
    frame_init(&f, fl, sizeof fl, 2, 1, RND_T_F32, 32, RND_PI_MONOCHROME2);
    rnd_frame_set_range(&f);
    assert_false(f.has_range);
    rnd_frame_set_range(NULL);
}

TSR_TEST_MAIN(cmocka_unit_test(voi_apply_formulas), cmocka_unit_test(recorded_range_same_pixels),
              cmocka_unit_test(linear_ct_window), cmocka_unit_test(linear_width_one_threshold),
              cmocka_unit_test(linear_negative_slope), cmocka_unit_test(linear_s16_extremes),
              cmocka_unit_test(linear_exact_window), cmocka_unit_test(sigmoid_window),
              cmocka_unit_test(voi_lut_first_and_last),
              cmocka_unit_test(voi_lut_16bit_signed_first), cmocka_unit_test(modality_lut_sequence),
              cmocka_unit_test(monochrome1_inverts), cmocka_unit_test(presentation_inverse),
              cmocka_unit_test(per_frame_override), cmocka_unit_test(minmax_default),
              cmocka_unit_test(minmax_u16_full_range), cmocka_unit_test(minmax_constant_frame),
              cmocka_unit_test(minmax_modality_lut_present_values), cmocka_unit_test(f32_frame),
              cmocka_unit_test(s32_wide_and_narrow),
              cmocka_unit_test(table_matches_formula_full_frame),
              cmocka_unit_test(default_skips_invalid_file_window),
              cmocka_unit_test(palette_8bit_entries), cmocka_unit_test(palette_16bit_entries),
              cmocka_unit_test(ybr_full_to_rgb), cmocka_unit_test(ybr_partial_to_rgb),
              cmocka_unit_test(ybr_rct_to_rgb), cmocka_unit_test(rgb_passthrough),
              cmocka_unit_test(rgb_16bit_scaled), cmocka_unit_test(error_bad_width),
              cmocka_unit_test(error_index_out_of_range), cmocka_unit_test(error_unsupported),
              cmocka_unit_test(error_invalid_frame), cmocka_unit_test(error_malformed_luts))
