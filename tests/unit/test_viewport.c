/* SPDX-License-Identifier: MIT */
/* test_viewport.c: elided viewport values (PS3.18 8.3.5.1.3): parsing, and how rnd_resample
 * resolves an elided sw/sh against the image it is given. */
#include "tsr_test.h"

#include "rnd_internal.h"

#include <math.h>

/* A w x h grey image whose pixel (x, y) is 10 * y + x. */
static rnd_image
grid(uint32_t w, uint32_t h)
{
    rnd_image img = {0};
    assert_int_equal(rnd_image_alloc(&img, w, h, 1, NULL), TSR_OK);
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++) {
            img.data[y * img.stride + x] = (uint8_t)(10 * y + x);
        }
    }
    return img;
}

static rnd_viewport
vp_of(const char *s)
{
    rnd_viewport vp;
    tsr_err err = {0};
    if (rnd_viewport_parse(s, &vp, &err) != TSR_OK) {
        fail_msg("viewport '%s' rejected: %s", s, err.msg);
    }
    return vp;
}

static void
assert_pixels(const rnd_image *img, uint32_t w, uint32_t h, const uint8_t *expect, const char *what)
{
    if (img->width != w || img->height != h) {
        fail_msg("%s: got %ux%u, want %ux%u", what, img->width, img->height, w, h);
    }
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++) {
            int got = img->data[y * img->stride + x], want = expect[y * w + x];
            if (got != want) {
                fail_msg("%s: pixel (%u,%u) got %d, want %d", what, x, y, got, want);
            }
        }
    }
}

/* ---------------------------------------------------------------- parsing */

static void
parse_elided_origin(void **state)
{
    (void)state;
    rnd_viewport vp = vp_of("100,50,,,20,-30");
    assert_int_equal(vp.vw, 100);
    assert_int_equal(vp.vh, 50);
    assert_int_equal(vp.has_region, 1);
    assert_true(vp.sx == 0.0);
    assert_true(vp.sy == 0.0);
    assert_true(vp.sw == 20.0);
    assert_true(vp.sh == -30.0);
    assert_int_equal(vp.sw_to_edge, 0);
    assert_int_equal(vp.sh_to_edge, 0);
}

static void
parse_elided_size(void **state)
{
    (void)state;
    rnd_viewport vp = vp_of("100,50,10.5,4,,");
    assert_int_equal(vp.has_region, 1);
    assert_true(vp.sx == 10.5);
    assert_true(vp.sy == 4.0);
    assert_int_equal(vp.sw_to_edge, 1);
    assert_int_equal(vp.sh_to_edge, 1);

    vp = vp_of("100,50,1,2,-7,");
    assert_true(vp.sw == -7.0);
    assert_int_equal(vp.sw_to_edge, 0);
    assert_int_equal(vp.sh_to_edge, 1);

    vp = vp_of("100,50,1,2,,9");
    assert_int_equal(vp.sw_to_edge, 1);
    assert_int_equal(vp.sh_to_edge, 0);
    assert_true(vp.sh == 9.0);

    vp = vp_of("8,8,,,,");
    assert_int_equal(vp.has_region, 1);
    assert_true(vp.sx == 0.0 && vp.sy == 0.0);
    assert_int_equal(vp.sw_to_edge, 1);
    assert_int_equal(vp.sh_to_edge, 1);

    /* The plain forms are unchanged. */
    vp = vp_of("8,8");
    assert_int_equal(vp.has_region, 0);
    assert_int_equal(vp.sw_to_edge, 0);
    vp = vp_of("8,8,1,2,3,4");
    assert_int_equal(vp.sw_to_edge, 0);
    assert_int_equal(vp.sh_to_edge, 0);
}

static void
parse_elided_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "10,10,5,,1,1", /* half an origin */
        "10,10,,5,1,1", /* likewise */
        "10,10,,,0,",   /* an explicit zero size is still an error */
        "10,10,,,,0",   /* likewise */
        "10,10,,,x,",   /* garbage next to an elided value */
        "10,10,,,, ",   /* a space is not an elided value */
        "10,10,,,,,",   /* seven fields */
        "10,10,,,",     /* five */
        ",10,,,,",      /* vw and vh can never be elided */
        "10,,,,,",      /* likewise */
        "10,10,-1,0,,", /* a negative origin stays an error */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rnd_viewport vp = {.vw = 77, .vh = 77, .sw_to_edge = 5};
        tsr_err err = {0};
        if (rnd_viewport_parse(bad[i], &vp, &err) != TSR_EINVAL) {
            fail_msg("'%s' accepted", bad[i]);
        }
        assert_non_null(strstr(err.msg, "viewport"));
        assert_int_equal(vp.vw, 77); /* untouched on failure */
        assert_int_equal(vp.sw_to_edge, 5);
        assert_int_equal(rnd_viewport_parse(bad[i], &vp, NULL), TSR_EINVAL);
    }
    tsr_err err = {0};
    rnd_viewport vp;
    assert_int_equal(rnd_viewport_parse("10,10,5,,1,1", &vp, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "both"));
}

/* ---------------------------------------------------------------- resampling */

static void
elided_size_runs_to_the_edge(void **state)
{
    (void)state;
    rnd_image src = grid(4, 4);
    static const struct {
        const char *vp;
        uint32_t w, h;
        uint8_t expect[16];
    } cases[] = {
        {"2,2,2,2,,", 2, 2, {22, 23, 32, 33}}, /* [2,4) x [2,4) */
        {"4,2,0,2,,", 4, 2, {20, 21, 22, 23, 30, 31, 32, 33}},
        {"2,4,2,0,,", 2, 4, {2, 3, 12, 13, 22, 23, 32, 33}},
        {"2,2,2,2,,-2", 2, 2, {12, 13, 2, 3}},   /* sh explicit, flipped: rows [0,2) */
        {"2,2,4,2,-2,", 2, 2, {23, 22, 33, 32}}, /* sw explicit, flipped: cols [2,4) */
        {"2,2,,,2,2", 2, 2, {0, 1, 10, 11}},     /* elided origin is 0,0 */
        {"4,4,,,,", 4, 4, {0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23, 30, 31, 32, 33}},
        {"1,1,3,3,,", 1, 1, {33}}, /* a one-pixel remainder */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rnd_viewport vp = vp_of(cases[i].vp);
        rnd_image out = {0};
        tsr_err err = {0};
        if (rnd_resample(&src, 1.0, &vp, &out, &err) != TSR_OK) {
            fail_msg("%s: %s", cases[i].vp, err.msg);
        }
        assert_pixels(&out, cases[i].w, cases[i].h, cases[i].expect, cases[i].vp);
        rnd_image_free(&out);
    }
    rnd_image_free(&src);
}

/* An elided size gives exactly the pixels of the explicit columns - sx, rows - sy, including
 * fractional origins and downscaling. */
static void
elided_equals_explicit(void **state)
{
    (void)state;
    rnd_image src = {0};
    assert_int_equal(rnd_image_alloc(&src, 97, 61, 3, NULL), TSR_OK);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < src.stride * src.height; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        src.data[i] = (uint8_t)x;
    }
    static const char *const pairs[][2] = {
        {"40,40,10,5,,", "40,40,10,5,87,56"},
        {"13,29,0.5,7.25,,", "13,29,0.5,7.25,96.5,53.75"},
        {"50,50,20,40,,-30", "50,50,20,40,77,-30"},
        {"200,100,,,,", "200,100,0,0,97,61"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        rnd_viewport a = vp_of(pairs[i][0]), b = vp_of(pairs[i][1]);
        rnd_image oa = {0}, ob = {0};
        assert_int_equal(rnd_resample(&src, 1.0, &a, &oa, NULL), TSR_OK);
        assert_int_equal(rnd_resample(&src, 1.0, &b, &ob, NULL), TSR_OK);
        assert_int_equal(oa.width, ob.width);
        assert_int_equal(oa.height, ob.height);
        for (uint32_t y = 0; y < oa.height; y++) {
            if (memcmp(oa.data + y * oa.stride, ob.data + y * ob.stride, (size_t)oa.width * 3) !=
                0) {
                fail_msg("%s differs from %s in row %u", pairs[i][0], pairs[i][1], y);
            }
        }
        rnd_image_free(&oa);
        rnd_image_free(&ob);
    }
    rnd_image_free(&src);
}

/* The edge is that of the logical (square-pixel) image, like the rest of the region: 4x2 with
 * pixels twice as tall is 4x4, so "0,2,," is the lower half, as "0,2,4,2" is. */
static void
elided_with_non_square_pixels(void **state)
{
    (void)state;
    static const uint8_t expect[8] = {150, 150, 55, 55, 200, 200, 40, 40};
    rnd_image src = {0};
    assert_int_equal(rnd_image_alloc(&src, 4, 2, 1, NULL), TSR_OK);
    static const uint8_t px[8] = {0, 0, 100, 100, 200, 200, 40, 40};
    memcpy(src.data, px, 4);
    memcpy(src.data + src.stride, px + 4, 4);
    rnd_viewport vp = vp_of("4,2,0,2,,");
    rnd_image out = {0};
    assert_int_equal(rnd_resample(&src, 2.0, &vp, &out, NULL), TSR_OK);
    assert_pixels(&out, 4, 2, expect, "4,2,0,2,, at aspect 2");
    rnd_image_free(&out);
    rnd_image_free(&src);
}

static void
elided_origin_outside(void **state)
{
    (void)state;
    rnd_image src = grid(4, 4);
    static const char *const bad[] = {"2,2,4,0,,", "2,2,9,0,,", "2,2,0,4,,", "2,2,0,7,3,"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rnd_viewport vp = vp_of(bad[i]);
        rnd_image out = {0};
        tsr_err err = {0};
        if (rnd_resample(&src, 1.0, &vp, &out, &err) != TSR_EINVAL) {
            fail_msg("%s accepted", bad[i]);
        }
        assert_non_null(strstr(err.msg, "outside"));
        assert_null(out.data);
        assert_int_equal(rnd_resample(&src, 1.0, &vp, &out, NULL), TSR_EINVAL);
    }
    rnd_image_free(&src);
}

/* Hand-built structs: an elided size ignores whatever sw/sh hold; a zeroed struct keeps the
 * old explicit meaning, so sw = 0 there is still an error. */
static void
struct_flags(void **state)
{
    (void)state;
    rnd_image src = grid(4, 4);
    rnd_image out = {0};
    rnd_viewport vp = {.vw = 2,
                       .vh = 2,
                       .has_region = 1,
                       .sx = 2,
                       .sy = 2,
                       .sw = NAN,
                       .sh = -1e300,
                       .sw_to_edge = 1,
                       .sh_to_edge = 1};
    static const uint8_t expect[4] = {22, 23, 32, 33};
    assert_int_equal(rnd_resample(&src, 1.0, &vp, &out, NULL), TSR_OK);
    assert_pixels(&out, 2, 2, expect, "flags with junk sizes");
    rnd_image_free(&out);

    vp = (rnd_viewport){.vw = 2, .vh = 2, .has_region = 1, .sx = 2, .sy = 2};
    assert_int_equal(rnd_resample(&src, 1.0, &vp, &out, NULL), TSR_EINVAL);
    vp.sw_to_edge = 1;
    assert_int_equal(rnd_resample(&src, 1.0, &vp, &out, NULL), TSR_EINVAL); /* sh still 0 */
    vp.sh_to_edge = 1;
    vp.sx = NAN;
    assert_int_equal(rnd_resample(&src, 1.0, &vp, &out, NULL), TSR_EINVAL);
    assert_null(out.data);
    rnd_image_free(&src);
}

TSR_TEST_MAIN(cmocka_unit_test(parse_elided_origin), cmocka_unit_test(parse_elided_size),
              cmocka_unit_test(parse_elided_bad), cmocka_unit_test(elided_size_runs_to_the_edge),
              cmocka_unit_test(elided_equals_explicit),
              cmocka_unit_test(elided_with_non_square_pixels),
              cmocka_unit_test(elided_origin_outside), cmocka_unit_test(struct_flags))
