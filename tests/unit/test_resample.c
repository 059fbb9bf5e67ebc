/* SPDX-License-Identifier: MIT */
/* test_resample.c: viewport parsing, pixel aspect and rnd_resample, with hand-computed pixels. */
#include "tsr_test.h"

#include "rnd_internal.h"

#include <math.h>

/* Makes a w x h image with `ch` channels from `px` (w*h*ch values, row-major), using a stride
 * `pad` bytes wider than needed so that stride handling is exercised. */
static rnd_image
make_image(uint32_t w, uint32_t h, uint8_t ch, size_t pad, const uint8_t *px)
{
    rnd_image img = {0};
    img.width = w;
    img.height = h;
    img.channels = ch;
    img.stride = (size_t)w * ch + pad;
    img.data = malloc(img.stride * h);
    assert_non_null(img.data);
    memset(img.data, 0xEE, img.stride * h);
    for (uint32_t y = 0; y < h; y++) {
        memcpy(img.data + y * img.stride, px + (size_t)y * w * ch, (size_t)w * ch);
    }
    return img;
}

/* Asserts that `img` is w x h with `ch` channels and holds exactly `expect` (row-major). */
static void
assert_pixels(const rnd_image *img, uint32_t w, uint32_t h, uint8_t ch, const uint8_t *expect)
{
    assert_int_equal(img->width, w);
    assert_int_equal(img->height, h);
    assert_int_equal(img->channels, ch);
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t i = 0; i < w * ch; i++) {
            int got = img->data[y * img->stride + i];
            int want = expect[(size_t)y * w * ch + i];
            if (got != want) {
                fail_msg("pixel (%u,%u) channel %u: got %d, want %d", i / ch, y, i % ch, got, want);
            }
        }
    }
}

static rnd_viewport
vp_of(const char *s)
{
    rnd_viewport vp;
    tsr_err err = {0};
    int rc = rnd_viewport_parse(s, &vp, &err);
    if (rc != TSR_OK) {
        fail_msg("viewport '%s' rejected: %s", s, err.msg);
    }
    return vp;
}

/* ---------------------------------------------------------------- viewport parsing */

static void
viewport_parse_good(void **state)
{
    (void)state;
    rnd_viewport vp;
    tsr_err err = {0};

    assert_int_equal(rnd_viewport_parse("512,256", &vp, &err), TSR_OK);
    assert_int_equal(vp.vw, 512);
    assert_int_equal(vp.vh, 256);
    assert_int_equal(vp.has_region, 0);

    assert_int_equal(rnd_viewport_parse("100,50,10.5,0,-20,3e1", &vp, &err), TSR_OK);
    assert_int_equal(vp.vw, 100);
    assert_int_equal(vp.vh, 50);
    assert_int_equal(vp.has_region, 1);
    assert_true(vp.sx == 10.5);
    assert_true(vp.sy == 0.0);
    assert_true(vp.sw == -20.0);
    assert_true(vp.sh == 30.0);

    assert_int_equal(rnd_viewport_parse("16384,1", &vp, NULL), TSR_OK);
    assert_int_equal(vp.vw, 16384);
    assert_int_equal(vp.vh, 1);
}

static void
viewport_parse_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "0,10",
        "10",
        "10,10,0,0,0,5",
        "10,10,0,0,5,0",
        "a,b",
        "10,10,1,2,3",
        "1e9,1",
        "10,10x",
        "10,10,",
        "",
        ",",
        "10,,",
        "10,10,1,2,3,4,5",
        " 10,10",
        "10,10 ",
        "-10,10",
        "+10,10",
        "16385,10",
        "10,99999999999",
        "10,10,nan,0,1,1",
        "10,10,0,0,inf,1",
        "10,10,-1,0,1,1",
        "10,10,0,-0.5,1,1",
        "10,10,1e400,0,1,1",
        "10,10,0x10,0,1,1",
        "10,10,1,1,1,1,",
        "10,10,1,,1,1",
        "10,10,1.2.3,0,1,1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rnd_viewport vp = {.vw = 77, .vh = 77};
        tsr_err err = {0};
        int rc = rnd_viewport_parse(bad[i], &vp, &err);
        if (rc != TSR_EINVAL) {
            fail_msg("'%s' accepted (rc %d)", bad[i], rc);
        }
        assert_int_equal(err.code, TSR_EINVAL);
        assert_non_null(strstr(err.msg, "viewport"));
        assert_int_equal(vp.vw, 77); /* untouched on failure */
        assert_int_equal(rnd_viewport_parse(bad[i], &vp, NULL), TSR_EINVAL);
    }

    tsr_err err = {0};
    rnd_viewport vp;
    assert_int_equal(rnd_viewport_parse("abc", &vp, &err), TSR_EINVAL);
    assert_string_equal(err.msg, "viewport: expected vw,vh[,sx,sy,sw,sh], got 'abc'");
    assert_int_equal(rnd_viewport_parse("10,10,0,0,nan,1", &vp, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "sw"));
    assert_int_equal(rnd_viewport_parse(NULL, &vp, &err), TSR_EINVAL);
    /* Control characters from a query string are not copied into the message. */
    assert_int_equal(rnd_viewport_parse("1\n2", &vp, &err), TSR_EINVAL);
    assert_null(strchr(err.msg, '\n'));
}

/* ---------------------------------------------------------------- pixel aspect */

static void
pixel_aspect_sources(void **state)
{
    (void)state;
    rnd_info info;

    memset(&info, 0, sizeof info);
    assert_true(rnd_pixel_aspect(&info) == 1.0);
    assert_true(rnd_pixel_aspect(NULL) == 1.0);

    /* PixelSpacing is (row spacing, column spacing): rows 0.5 mm apart, columns 0.25 mm. */
    info.has_pixel_spacing = 1;
    info.pixel_spacing[0] = 0.5;
    info.pixel_spacing[1] = 0.25;
    assert_true(rnd_pixel_aspect(&info) == 2.0);

    /* PixelSpacing wins over PixelAspectRatio. */
    info.has_aspect = 1;
    info.aspect[0] = 4;
    info.aspect[1] = 3;
    assert_true(rnd_pixel_aspect(&info) == 2.0);

    /* Nonsensical spacing falls back to the aspect ratio, then to 1. */
    info.pixel_spacing[0] = 0.0;
    assert_true(fabs(rnd_pixel_aspect(&info) - 4.0 / 3.0) < 1e-12);
    info.pixel_spacing[0] = NAN;
    assert_true(fabs(rnd_pixel_aspect(&info) - 4.0 / 3.0) < 1e-12);
    info.pixel_spacing[0] = -1.0;
    assert_true(fabs(rnd_pixel_aspect(&info) - 4.0 / 3.0) < 1e-12);
    info.aspect[1] = 0;
    assert_true(rnd_pixel_aspect(&info) == 1.0);

    memset(&info, 0, sizeof info);
    info.has_aspect = 1;
    info.aspect[0] = 1;
    info.aspect[1] = 2;
    assert_true(rnd_pixel_aspect(&info) == 0.5);
    info.has_pixel_spacing = 1;
    info.pixel_spacing[0] = INFINITY;
    info.pixel_spacing[1] = 1.0;
    assert_true(rnd_pixel_aspect(&info) == 0.5);
}

/* ---------------------------------------------------------------- resampling */

static void
identity_is_bit_exact(void **state)
{
    (void)state;
    uint8_t px[7 * 5 * 3];
    for (size_t i = 0; i < sizeof px; i++) {
        px[i] = (uint8_t)(i * 37 + 11);
    }
    for (uint8_t ch = 1; ch <= 3; ch += 2) {
        rnd_image src = make_image(7, 5, ch, 3, px);
        rnd_image out = {0};
        assert_int_equal(rnd_resample(&src, 1.0, NULL, &out, NULL), TSR_OK);
        assert_pixels(&out, 7, 5, ch, px);
        rnd_image_free(&out);

        /* A viewport whose size equals the image is an identity too. */
        rnd_viewport vp = vp_of("7,5");
        assert_int_equal(rnd_resample(&src, 1.0, &vp, &out, NULL), TSR_OK);
        assert_pixels(&out, 7, 5, ch, px);
        rnd_image_free(&out);

        /* So is a larger viewport of another shape, as long as the limiting axis matches. */
        vp = vp_of("7,500");
        assert_int_equal(rnd_resample(&src, 1.0, &vp, &out, NULL), TSR_OK);
        assert_pixels(&out, 7, 5, ch, px);
        rnd_image_free(&out);
        rnd_image_free(&src);
    }
}

static void
downscale_2x_exact_averages(void **state)
{
    (void)state;
    static const uint8_t px[16] = {
        10,  20,  30,  40,  /* */
        50,  60,  70,  80,  /* */
        90,  100, 110, 120, /* */
        130, 141, 150, 162,
    };
    /* (10+20+50+60)/4 = 35, (30+40+70+80)/4 = 55, (90+100+130+141)/4 = 115.25,
     * (110+120+150+162)/4 = 135.5 rounds up. */
    static const uint8_t expect[4] = {35, 55, 115, 136};
    rnd_image src = make_image(4, 4, 1, 1, px);
    rnd_image out = {0};
    rnd_viewport vp = vp_of("2,2");
    assert_int_equal(rnd_resample(&src, 1.0, &vp, &out, NULL), TSR_OK);
    assert_pixels(&out, 2, 2, 1, expect);
    rnd_image_free(&out);
    rnd_image_free(&src);
}

static void
downscale_fractional_footprint(void **state)
{
    (void)state;
    /* 5 -> 2: each output pixel covers 2.5 source pixels, weights 0.4, 0.4, 0.2 and
     * 0.2, 0.4, 0.4. out0 = 0.4*10 + 0.4*200 + 0.2*30 = 90,
     * out1 = 0.2*30 + 0.4*255 + 0.4*0 = 108. */
    static const uint8_t row[5] = {10, 200, 30, 255, 0};
    static const uint8_t expect_row[2] = {90, 108};
    rnd_image src = make_image(5, 1, 1, 0, row);
    rnd_image out = {0};
    rnd_viewport vp = vp_of("2,2");
    assert_int_equal(rnd_resample(&src, 1.0, &vp, &out, NULL), TSR_OK);
    assert_pixels(&out, 2, 1, 1, expect_row);
    rnd_image_free(&out);
    rnd_image_free(&src);

    /* Both axes at once: p(x, y) = a[x] + b[y] averages to A[i] + B[j] with
     * A = {0.4*0 + 0.4*100 + 0.2*20, 0.2*20 + 0.4*120 + 0.4*40} = {44, 68} and
     * B = {0.4*0 + 0.4*50 + 0.2*100, 0.2*100 + 0.4*10 + 0.4*60} = {40, 48}. */
    static const uint8_t a[5] = {0, 100, 20, 120, 40}, b[5] = {0, 50, 100, 10, 60};
    uint8_t px[25];
    for (int y = 0; y < 5; y++) {
        for (int x = 0; x < 5; x++) {
            px[y * 5 + x] = (uint8_t)(a[x] + b[y]);
        }
    }
    static const uint8_t expect[4] = {84, 108, 92, 116};
    src = make_image(5, 5, 1, 2, px);
    assert_int_equal(rnd_resample(&src, 1.0, &vp, &out, NULL), TSR_OK);
    assert_pixels(&out, 2, 2, 1, expect);
    rnd_image_free(&out);
    rnd_image_free(&src);
}

static void
downscale_keeps_flat_areas_flat(void **state)
{
    (void)state;
    /* Large and odd ratios must not drift: weights sum to exactly one. */
    uint8_t *px = malloc(997 * 13);
    assert_non_null(px);
    memset(px, 77, 997 * 13);
    rnd_image src = make_image(997, 13, 1, 0, px);
    rnd_image out = {0};
    rnd_viewport vp = vp_of("3,3");
    assert_int_equal(rnd_resample(&src, 1.0, &vp, &out, NULL), TSR_OK);
    assert_int_equal(out.width, 3);
    assert_int_equal(out.height, 1);
    for (uint32_t x = 0; x < out.width; x++) {
        assert_int_equal(out.data[x], 77);
    }
    rnd_image_free(&out);
    rnd_image_free(&src);
    free(px);
}

static void
upscale_bilinear(void **state)
{
    (void)state;
    /* Output centres (o + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped 0, 0.25, 0.75, 1:
     * 0, 63.75, 191.25, 255. */
    static const uint8_t row[2] = {0, 255};
    static const uint8_t expect_row[4] = {0, 64, 191, 255};
    rnd_image src = make_image(2, 1, 1, 0, row);
    rnd_image out = {0};

    /* Through the viewport: 2x1 fits 4x4 as 4x2 (both rows the same). */
    rnd_viewport vp = vp_of("4,4");
    assert_int_equal(rnd_resample(&src, 1.0, &vp, &out, NULL), TSR_OK);
    static const uint8_t expect2[8] = {0, 64, 191, 255, 0, 64, 191, 255};
    assert_pixels(&out, 4, 2, 1, expect2);
    rnd_image_free(&out);

    /* Through the pixel aspect: pixels half as tall as wide stretch 2x1 to 4x1. */
    assert_int_equal(rnd_resample(&src, 0.5, NULL, &out, NULL), TSR_OK);
    assert_pixels(&out, 4, 1, 1, expect_row);
    rnd_image_free(&out);
    rnd_image_free(&src);
}

static void
crop_and_flip(void **state)
{
    (void)state;
    uint8_t px[4 * 4];
    for (int y = 0; y < 4; y++) {
        for (int x = 0; x < 4; x++) {
            px[y * 4 + x] = (uint8_t)(10 * y + x);
        }
    }
    rnd_image src = make_image(4, 4, 1, 5, px);
    static const struct {
        const char *vp;
        uint8_t expect[4];
    } cases[] = {
        {"2,2,1,1,2,2", {11, 12, 21, 22}},   /* region [1,3) x [1,3) */
        {"2,2,3,1,-2,2", {12, 11, 22, 21}},  /* [1,3) flipped horizontally */
        {"2,2,1,3,2,-2", {21, 22, 11, 12}},  /* flipped vertically */
        {"2,2,3,3,-2,-2", {22, 21, 12, 11}}, /* both */
        {"2,2,2,2,5,9", {22, 23, 32, 33}},   /* clipped to the image: [2,4) x [2,4) */
        {"2,2,4,4,-2,-2", {33, 32, 23, 22}}, /* flip starting at the far edge */
        {"2,2,0,0,2,2", {0, 1, 10, 11}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rnd_image out = {0};
        rnd_viewport vp = vp_of(cases[i].vp);
        tsr_err err = {0};
        int rc = rnd_resample(&src, 1.0, &vp, &out, &err);
        if (rc != TSR_OK) {
            fail_msg("%s: %s", cases[i].vp, err.msg);
        }
        assert_pixels(&out, 2, 2, 1, cases[i].expect);
        rnd_image_free(&out);
    }

    /* A region entirely outside the image is an error, with and without err. */
    rnd_image out = {0};
    rnd_viewport vp = vp_of("2,2,4,0,3,3");
    tsr_err err = {0};
    assert_int_equal(rnd_resample(&src, 1.0, &vp, &out, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "outside"));
    assert_null(out.data);
    assert_int_equal(rnd_resample(&src, 1.0, &vp, &out, NULL), TSR_EINVAL);
    vp = vp_of("2,2,0,9,3,-3"); /* [6,9) vertically: outside the 4 rows */
    assert_int_equal(rnd_resample(&src, 1.0, &vp, &out, &err), TSR_EINVAL);
    rnd_image_free(&src);
}

static void
non_square_pixels(void **state)
{
    (void)state;
    /* Pixels twice as tall as wide: 2x2 shows as 2x4. Rows are sampled at source
     * y = 0 (clamped), 0.25, 0.75, 1 (clamped). Column 0: 0, 50, 150, 200;
     * column 1: 100, 87.5 -> 88, 62.5 -> 63, 50. */
    static const uint8_t px[4] = {0, 100, 200, 50};
    static const uint8_t expect[8] = {0, 100, 50, 88, 150, 63, 200, 50};
    rnd_image src = make_image(2, 2, 1, 0, px);
    rnd_image out = {0};
    assert_int_equal(rnd_resample(&src, 2.0, NULL, &out, NULL), TSR_OK);
    assert_pixels(&out, 2, 4, 1, expect);
    rnd_image_free(&out);

    /* Pixels half as tall: 2x2 shows as 4x2. */
    assert_int_equal(rnd_resample(&src, 0.5, NULL, &out, NULL), TSR_OK);
    assert_int_equal(out.width, 4);
    assert_int_equal(out.height, 2);
    rnd_image_free(&out);
    rnd_image_free(&src);
}

static void
aspect_and_viewport_in_one_pass(void **state)
{
    (void)state;
    /* 4x2 with aspect 2 is 4x4 logically; into 2x2 that is a 2:1 horizontal average and a
     * scale of exactly 1 vertically, so the rows must not blend. Resampling twice (stretch,
     * then shrink) would mix 1/8 of the other row into each. */
    static const uint8_t px[8] = {0, 0, 100, 100, 200, 200, 40, 40};
    static const uint8_t expect[4] = {0, 100, 200, 40};
    rnd_image src = make_image(4, 2, 1, 0, px);
    rnd_image out = {0};
    rnd_viewport vp = vp_of("2,2");
    assert_int_equal(rnd_resample(&src, 2.0, &vp, &out, NULL), TSR_OK);
    assert_pixels(&out, 2, 2, 1, expect);
    rnd_image_free(&out);

    /* Regions are in logical (square-pixel) coordinates: logical rows 2..3 of the 4x4 image
     * are the lower half of source row 1. Their centres are source y = 1.25 and 1.75, i.e.
     * 0.75 and 1.25 in pixel-centre terms: 0.25 * row 0 + 0.75 * row 1, then row 1 (clamped). */
    vp = vp_of("4,2,0,2,4,2");
    static const uint8_t expect_row1[8] = {150, 150, 55, 55, 200, 200, 40, 40};
    assert_int_equal(rnd_resample(&src, 2.0, &vp, &out, NULL), TSR_OK);
    assert_pixels(&out, 4, 2, 1, expect_row1);
    rnd_image_free(&out);
    rnd_image_free(&src);
}

static void
rgb_channels_stay_separate(void **state)
{
    (void)state;
    /* R constant, G a horizontal ramp, B a vertical ramp. */
    uint8_t px[4 * 4 * 3];
    for (int y = 0; y < 4; y++) {
        for (int x = 0; x < 4; x++) {
            uint8_t *p = px + (y * 4 + x) * 3;
            p[0] = 200;
            p[1] = (uint8_t)(x * 60);
            p[2] = (uint8_t)(y * 80);
        }
    }
    /* G: (0+60)/2 = 30, (120+180)/2 = 150. B: (0+80)/2 = 40, (160+240)/2 = 200. */
    static const uint8_t expect[12] = {200, 30, 40, 200, 150, 40, 200, 30, 200, 200, 150, 200};
    rnd_image src = make_image(4, 4, 3, 4, px);
    rnd_image out = {0};
    rnd_viewport vp = vp_of("2,2");
    assert_int_equal(rnd_resample(&src, 1.0, &vp, &out, NULL), TSR_OK);
    assert_pixels(&out, 2, 2, 3, expect);
    assert_int_equal(out.stride, 6);
    rnd_image_free(&out);

    /* Upscaling keeps channels apart too: (255,0,10) and (0,255,10) to 4 pixels. */
    static const uint8_t two[6] = {255, 0, 10, 0, 255, 10};
    static const uint8_t expect_up[12] = {255, 0, 10, 191, 64, 10, 64, 191, 10, 0, 255, 10};
    rnd_image_free(&src);
    src = make_image(2, 1, 3, 0, two);
    assert_int_equal(rnd_resample(&src, 0.5, NULL, &out, NULL), TSR_OK);
    assert_pixels(&out, 4, 1, 3, expect_up);
    rnd_image_free(&out);
    rnd_image_free(&src);
}

static void
limits_and_errors(void **state)
{
    (void)state;
    uint8_t *px = calloc(200 * 200, 1);
    assert_non_null(px);
    rnd_image src = make_image(200, 200, 1, 0, px);
    rnd_image out = {0};
    tsr_err err = {0};

    /* 200 rows at aspect 100 would be 20000 rows: over the 16384 limit. */
    assert_int_equal(rnd_resample(&src, 100.0, NULL, &out, &err), TSR_ELIMIT);
    assert_int_equal(err.code, TSR_ELIMIT);
    assert_non_null(strstr(err.msg, "16384"));
    assert_null(out.data);
    assert_int_equal(rnd_resample(&src, 100.0, NULL, &out, NULL), TSR_ELIMIT);
    /* ... while through a viewport the same image is fine. */
    rnd_viewport vp = vp_of("100,100");
    assert_int_equal(rnd_resample(&src, 100.0, &vp, &out, &err), TSR_OK);
    assert_int_equal(out.width, 1);
    assert_int_equal(out.height, 100);
    rnd_image_free(&out);
    /* The largest allowed output along one axis. */
    assert_int_equal(rnd_resample(&src, 81.92, NULL, &out, &err), TSR_OK);
    assert_int_equal(out.height, 16384);
    rnd_image_free(&out);

    assert_int_equal(rnd_resample(&src, 0.0, NULL, &out, &err), TSR_EINVAL);
    assert_int_equal(rnd_resample(&src, NAN, NULL, &out, NULL), TSR_EINVAL);
    assert_int_equal(rnd_resample(&src, -1.0, NULL, &out, &err), TSR_EINVAL);

    rnd_viewport bad = {.vw = 0, .vh = 10};
    assert_int_equal(rnd_resample(&src, 1.0, &bad, &out, &err), TSR_EINVAL);
    bad = (rnd_viewport){.vw = 20000, .vh = 10};
    assert_int_equal(rnd_resample(&src, 1.0, &bad, &out, NULL), TSR_EINVAL);
    bad = (rnd_viewport){.vw = 10, .vh = 10, .has_region = 1, .sw = NAN, .sh = 1};
    assert_int_equal(rnd_resample(&src, 1.0, &bad, &out, &err), TSR_EINVAL);

    src.channels = 2;
    assert_int_equal(rnd_resample(&src, 1.0, NULL, &out, &err), TSR_EINVAL);
    src.channels = 1;
    src.stride = 10;
    assert_int_equal(rnd_resample(&src, 1.0, NULL, &out, NULL), TSR_EINVAL);
    assert_int_equal(rnd_resample(NULL, 1.0, NULL, &out, &err), TSR_EINVAL);
    assert_null(out.data);
    src.stride = 200;
    rnd_image_free(&src);
    free(px);
}

TSR_TEST_MAIN(cmocka_unit_test(viewport_parse_good), cmocka_unit_test(viewport_parse_bad),
              cmocka_unit_test(pixel_aspect_sources), cmocka_unit_test(identity_is_bit_exact),
              cmocka_unit_test(downscale_2x_exact_averages),
              cmocka_unit_test(downscale_fractional_footprint),
              cmocka_unit_test(downscale_keeps_flat_areas_flat), cmocka_unit_test(upscale_bilinear),
              cmocka_unit_test(crop_and_flip), cmocka_unit_test(non_square_pixels),
              cmocka_unit_test(aspect_and_viewport_in_one_pass),
              cmocka_unit_test(rgb_channels_stay_separate), cmocka_unit_test(limits_and_errors))
