/* SPDX-License-Identifier: MIT */
/* test_tile.c: the tile pyramid (rnd.h, section "tiles"): level counts and sizes, tile
 * rectangles, level rendering against rnd_resample, tiles against crops of their level, and the
 * exact-size resampling entry points. */
#include "tsr_test.h"

#include "rnd.h"

#include <math.h>

/* A w x h image with `ch` channels of deterministic noise (so that any misplaced weight shows),
 * with a stride 5 bytes wider than needed. */
static rnd_image
noise(uint32_t w, uint32_t h, uint8_t ch, uint32_t seed)
{
    rnd_image img = {0};
    img.width = w;
    img.height = h;
    img.channels = ch;
    img.stride = (size_t)w * ch + 5;
    img.data = malloc(img.stride * h);
    assert_non_null(img.data);
    uint32_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < img.stride * h; i++) {
        s = s * 1664525u + 1013904223u;
        img.data[i] = (uint8_t)(s >> 24);
    }
    return img;
}

static void
free_raw(rnd_image *img)
{
    free(img->data);
    memset(img, 0, sizeof *img);
}

/* Fails unless a and b have the same geometry and pixels. */
static void
assert_same(const rnd_image *a, const rnd_image *b, const char *what)
{
    if (a->width != b->width || a->height != b->height || a->channels != b->channels) {
        fail_msg("%s: %ux%ux%u vs %ux%ux%u", what, a->width, a->height, a->channels, b->width,
                 b->height, b->channels);
    }
    size_t row = (size_t)a->width * a->channels;
    for (uint32_t y = 0; y < a->height; y++) {
        const uint8_t *pa = a->data + y * a->stride, *pb = b->data + y * b->stride;
        for (size_t i = 0; i < row; i++) {
            if (pa[i] != pb[i]) {
                fail_msg("%s: pixel (%zu,%u) channel %zu: %d vs %d", what, i / a->channels, y,
                         i % a->channels, pa[i], pb[i]);
            }
        }
    }
}

/* ---------------------------------------------------------------- arithmetic */

typedef struct level_case {
    uint32_t w0, h0, tile;
    int count;
    uint32_t top_w, top_h; /* the last level */
} level_case;

static void
level_counts(void **state)
{
    (void)state;
    static const level_case cases[] = {
        {1, 1, 256, 1, 1, 1},
        {256, 256, 256, 1, 256, 256},
        {257, 1, 256, 2, 129, 1},
        {255, 257, 256, 2, 128, 129},
        {513, 511, 256, 3, 129, 128},
        {4664, 3064, 256, 6, 146, 96},
        {3064, 4664, 256, 6, 96, 146},
        {4664, 3064, 4096, 2, 2332, 1532},
        {4664, 3064, 16, 10, 10, 6},
        {100000, 3, 4096, 6, 3125, 1},
        {UINT32_MAX, UINT32_MAX, 16, 29, 16, 16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const level_case *c = &cases[i];
        int n = rnd_level_count(c->w0, c->h0, c->tile);
        if (n != c->count) {
            fail_msg("%ux%u tile %u: %d levels, want %d", c->w0, c->h0, c->tile, n, c->count);
        }
        uint32_t w, h;
        rnd_level_size(c->w0, c->h0, n - 1, &w, &h);
        assert_int_equal(w, c->top_w);
        assert_int_equal(h, c->top_h);
        assert_true(w <= c->tile && h <= c->tile);
        if (n > 1) { /* the level before the last does not fit */
            rnd_level_size(c->w0, c->h0, n - 2, &w, &h);
            assert_true(w > c->tile || h > c->tile);
        }
    }
    assert_int_equal(rnd_level_count(0, 10, 256), TSR_EINVAL);
    assert_int_equal(rnd_level_count(10, 0, 256), TSR_EINVAL);
    assert_int_equal(rnd_level_count(10, 10, 15), TSR_EINVAL);
    assert_int_equal(rnd_level_count(10, 10, 4097), TSR_EINVAL);
    assert_int_equal(rnd_level_count(10, 10, RND_TILE_MIN), 1);
    assert_int_equal(rnd_level_count(10, 10, RND_TILE_MAX), 1);
}

static void
level_sizes(void **state)
{
    (void)state;
    /* 4664 x 3064, every level by hand. */
    static const uint32_t want[6][2] = {{4664, 3064}, {2332, 1532}, {1166, 766},
                                        {583, 383},   {292, 192},   {146, 96}};
    for (int k = 0; k < 6; k++) {
        uint32_t w, h;
        rnd_level_size(4664, 3064, k, &w, &h);
        assert_int_equal(w, want[k][0]);
        assert_int_equal(h, want[k][1]);
        rnd_level_size(3064, 4664, k, &w, &h);
        assert_int_equal(w, want[k][1]);
        assert_int_equal(h, want[k][0]);
    }
    uint32_t w, h;
    rnd_level_size(255, 257, 1, &w, &h);
    assert_int_equal(w, 128);
    assert_int_equal(h, 129);
    rnd_level_size(513, 511, 2, &w, &h);
    assert_int_equal(w, 129);
    assert_int_equal(h, 128);
    rnd_level_size(1, 1, 5, &w, &h);
    assert_int_equal(w, 1);
    assert_int_equal(h, 1);
    /* No overflow at the extremes. */
    rnd_level_size(UINT32_MAX, UINT32_MAX, 1, &w, &h);
    assert_int_equal(w, 2147483648u);
    rnd_level_size(UINT32_MAX, 7, 31, &w, &h);
    assert_int_equal(w, 2);
    assert_int_equal(h, 1);
    rnd_level_size(UINT32_MAX, 7, 40, &w, &h);
    assert_int_equal(w, 1);
    assert_int_equal(h, 1);
}

/* Every tile of every level: inside the level, at most tile x tile, only the last column and
 * row smaller, together covering each level pixel exactly once. */
static void
check_cover(uint32_t w0, uint32_t h0, uint32_t tile)
{
    int n = rnd_level_count(w0, h0, tile);
    assert_true(n >= 1);
    for (int k = 0; k < n; k++) {
        uint32_t lw, lh, cols, rows;
        rnd_level_size(w0, h0, k, &lw, &lh);
        assert_int_equal(rnd_tile_grid(w0, h0, tile, k, &cols, &rows), TSR_OK);
        uint8_t *seen = calloc((size_t)lw * lh, 1);
        assert_non_null(seen);
        uint64_t area = 0;
        for (uint32_t r = 0; r < rows; r++) {
            for (uint32_t c = 0; c < cols; c++) {
                uint32_t x, y, w, h;
                assert_int_equal(rnd_tile_rect(w0, h0, tile, k, c, r, &x, &y, &w, &h), TSR_OK);
                assert_int_equal(x, c * tile);
                assert_int_equal(y, r * tile);
                assert_true(w >= 1 && h >= 1 && w <= tile && h <= tile);
                assert_true(x + w <= lw && y + h <= lh);
                if (c + 1 < cols) {
                    assert_int_equal(w, tile);
                } else {
                    assert_int_equal(x + w, lw);
                }
                if (r + 1 < rows) {
                    assert_int_equal(h, tile);
                } else {
                    assert_int_equal(y + h, lh);
                }
                area += (uint64_t)w * h;
                for (uint32_t yy = y; yy < y + h; yy++) {
                    for (uint32_t xx = x; xx < x + w; xx++) {
                        if (seen[(size_t)yy * lw + xx]++) {
                            fail_msg("%ux%u tile %u level %d: pixel %u,%u covered twice", w0, h0,
                                     tile, k, xx, yy);
                        }
                    }
                }
            }
        }
        assert_int_equal(area, (uint64_t)lw * lh);
        for (size_t i = 0; i < (size_t)lw * lh; i++) {
            if (seen[i] != 1) {
                fail_msg("%ux%u tile %u level %d: pixel %zu not covered", w0, h0, tile, k, i);
            }
        }
        free(seen);
        /* One past the grid on each axis. */
        uint32_t x = 77, y = 77, w = 77, h = 77;
        assert_int_equal(rnd_tile_rect(w0, h0, tile, k, cols, 0, &x, &y, &w, &h), TSR_ENOTFOUND);
        assert_int_equal(rnd_tile_rect(w0, h0, tile, k, 0, rows, &x, &y, &w, &h), TSR_ENOTFOUND);
        assert_int_equal(rnd_tile_rect(w0, h0, tile, k, UINT32_MAX, UINT32_MAX, &x, &y, &w, &h),
                         TSR_ENOTFOUND);
        assert_int_equal(x, 77); /* untouched on failure */
        assert_int_equal(w, 77);
    }
    uint32_t x, y, w, h, cols, rows;
    assert_int_equal(rnd_tile_rect(w0, h0, tile, n, 0, 0, &x, &y, &w, &h), TSR_ENOTFOUND);
    assert_int_equal(rnd_tile_grid(w0, h0, tile, n, &cols, &rows), TSR_ENOTFOUND);
    assert_int_equal(rnd_tile_rect(w0, h0, tile, -1, 0, 0, &x, &y, &w, &h), TSR_EINVAL);
}

static void
tile_rects_cover(void **state)
{
    (void)state;
    static const uint32_t sizes[][2] = {{1, 1},       {255, 257},   {513, 511}, {256, 256},
                                        {4664, 3064}, {3064, 4664}, {1000, 17}, {17, 1000}};
    static const uint32_t tiles[] = {16, 100, 256, 4096};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        for (size_t t = 0; t < sizeof tiles / sizeof *tiles; t++) {
            if (tiles[t] == 16 && sizes[i][0] * sizes[i][1] > 1000000) {
                continue; /* 55000 tiles at level 0: slow under ASan, and nothing new */
            }
            check_cover(sizes[i][0], sizes[i][1], tiles[t]);
        }
    }
    uint32_t x, y, w, h;
    assert_int_equal(rnd_tile_rect(0, 10, 256, 0, 0, 0, &x, &y, &w, &h), TSR_EINVAL);
    assert_int_equal(rnd_tile_rect(10, 10, 8, 0, 0, 0, &x, &y, &w, &h), TSR_EINVAL);
    assert_int_equal(rnd_tile_rect(10, 10, 5000, 0, 0, 0, &x, &y, &w, &h), TSR_EINVAL);
}

static void
display_size(void **state)
{
    (void)state;
    rnd_info info;
    memset(&info, 0, sizeof info);
    info.columns = 100;
    info.rows = 50;
    uint32_t w0 = 0, h0 = 0;
    assert_int_equal(rnd_display_size(&info, &w0, &h0), TSR_OK);
    assert_int_equal(w0, 100);
    assert_int_equal(h0, 50);

    /* Rows 0.5 mm apart, columns 0.25 mm: pixels twice as high as wide, height stretched. */
    info.has_pixel_spacing = 1;
    info.pixel_spacing[0] = 0.5;
    info.pixel_spacing[1] = 0.25;
    assert_int_equal(rnd_display_size(&info, &w0, &h0), TSR_OK);
    assert_int_equal(w0, 100);
    assert_int_equal(h0, 100);

    /* Wide pixels: the width is stretched, never the height shrunk. */
    info.pixel_spacing[0] = 0.3;
    info.pixel_spacing[1] = 0.9;
    assert_int_equal(rnd_display_size(&info, &w0, &h0), TSR_OK);
    assert_int_equal(w0, 300);
    assert_int_equal(h0, 50);

    /* The same size rnd_resample gives without a viewport, odd aspect included. */
    static const double aspects[] = {1.0, 2.0, 0.5, 1.37, 0.731, 3.0001};
    rnd_image src = noise(37, 23, 1, 1);
    for (size_t i = 0; i < sizeof aspects / sizeof *aspects; i++) {
        rnd_image out = {0};
        assert_int_equal(rnd_resample(&src, aspects[i], NULL, &out, NULL), TSR_OK);
        assert_int_equal(rnd_square_size(37, 23, aspects[i], &w0, &h0), TSR_OK);
        assert_int_equal(w0, out.width);
        assert_int_equal(h0, out.height);
        rnd_image_free(&out);
    }
    free_raw(&src);

    w0 = h0 = 9;
    assert_int_equal(rnd_display_size(NULL, &w0, &h0), TSR_EINVAL);
    assert_int_equal(rnd_square_size(0, 5, 1.0, &w0, &h0), TSR_EINVAL);
    assert_int_equal(rnd_square_size(5, 5, 0.0, &w0, &h0), TSR_EINVAL);
    assert_int_equal(rnd_square_size(5, 5, NAN, &w0, &h0), TSR_EINVAL);
    assert_int_equal(rnd_square_size(5, 5, 1e12, &w0, &h0), TSR_ELIMIT);
    assert_int_equal(w0, 9);
    assert_int_equal(h0, 9);
}

/* ---------------------------------------------------------------- rendering */

/* rnd_render_level equals rnd_resample with a viewport of the level size wherever the two
 * geometries coincide: the level divides the display size exactly. */
static void
level_equals_resample(void **state)
{
    (void)state;
    typedef struct {
        uint32_t w, h;
        double aspect;
        int levels;
    } rcase;
    static const rcase cases[] = {
        {64, 48, 1.0, 4},  /* square pixels: 64x48 .. 8x6 */
        {64, 24, 2.0, 4},  /* tall pixels: display 64x48 */
        {32, 48, 0.5, 4},  /* wide pixels: display 64x48 */
        {100, 60, 1.0, 3}, /* 100x60, 50x30, 25x15 */
        {96, 40, 1.2, 4},  /* display 96x48 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const rcase *c = &cases[i];
        for (uint8_t ch = 1; ch <= 3; ch += 2) {
            rnd_image src = noise(c->w, c->h, ch, (uint32_t)i + ch);
            uint32_t w0, h0;
            assert_int_equal(rnd_square_size(c->w, c->h, c->aspect, &w0, &h0), TSR_OK);
            for (int k = 0; k < c->levels; k++) {
                uint32_t lw, lh;
                rnd_level_size(w0, h0, k, &lw, &lh);
                assert_int_equal(lw << k, w0); /* the case really divides */
                assert_int_equal(lh << k, h0);
                rnd_image lev = {0}, ref = {0};
                tsr_err err = {0};
                if (rnd_render_level(&src, c->aspect, k, &lev, &err) != TSR_OK) {
                    fail_msg("case %zu level %d: %s", i, k, err.msg);
                }
                rnd_viewport vp = {0};
                vp.vw = lw;
                vp.vh = lh;
                assert_int_equal(rnd_resample(&src, c->aspect, k ? &vp : NULL, &ref, &err), TSR_OK);
                char what[64];
                snprintf(what, sizeof what, "case %zu ch %u level %d", i, ch, k);
                assert_same(&lev, &ref, what);
                rnd_image_free(&lev);
                rnd_image_free(&ref);
            }
            free_raw(&src);
        }
    }
}

/* Odd sizes: the last column and row of a level average the partial block they cover. */
static void
level_partial_blocks(void **state)
{
    (void)state;
    static const uint8_t row5[5] = {10, 20, 30, 40, 50};
    rnd_image src = {0};
    assert_int_equal(rnd_image_alloc(&src, 5, 1, 1, NULL), TSR_OK);
    memcpy(src.data, row5, 5);
    static const struct {
        int level;
        uint32_t w;
        uint8_t px[3];
    } want[] = {{0, 5, {10, 20, 30}}, {1, 3, {15, 35, 50}}, {2, 2, {25, 50, 0}}, {3, 1, {30}}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        rnd_image lev = {0};
        assert_int_equal(rnd_render_level(&src, 1.0, want[i].level, &lev, NULL), TSR_OK);
        assert_int_equal(lev.width, want[i].w);
        assert_int_equal(lev.height, 1);
        for (uint32_t x = 0; x < want[i].w && x < 3; x++) {
            assert_int_equal(lev.data[x], want[i].px[x]);
        }
        rnd_image_free(&lev);
    }
    rnd_image_free(&src);

    /* 3 x 3 at level 1: 2 x 2 with blocks of 4, 2, 2 and 1 pixels. */
    static const uint8_t sq[9] = {0, 40, 100, 80, 120, 200, 10, 30, 7};
    assert_int_equal(rnd_image_alloc(&src, 3, 3, 1, NULL), TSR_OK);
    memcpy(src.data, sq, 9);
    rnd_image lev = {0};
    assert_int_equal(rnd_render_level(&src, 1.0, 1, &lev, NULL), TSR_OK);
    assert_int_equal(lev.width, 2);
    assert_int_equal(lev.height, 2);
    assert_int_equal(lev.data[0], 60);  /* (0 + 40 + 80 + 120) / 4 */
    assert_int_equal(lev.data[1], 150); /* (100 + 200) / 2 */
    assert_int_equal(lev.data[2], 20);  /* (10 + 30) / 2 */
    assert_int_equal(lev.data[3], 7);
    rnd_image_free(&lev);
    rnd_image_free(&src);
}

/* Non-square pixels: a frame of 4 x 2 pixels twice as high as wide shows as 4 x 4, each source
 * row becoming two display rows. */
static void
level_pixel_aspect(void **state)
{
    (void)state;
    rnd_image src = {0};
    assert_int_equal(rnd_image_alloc(&src, 4, 2, 1, NULL), TSR_OK);
    static const uint8_t px[8] = {0, 100, 200, 60, 20, 40, 80, 250};
    memcpy(src.data, px, 8);
    rnd_image lev = {0};
    assert_int_equal(rnd_render_level(&src, 2.0, 1, &lev, NULL), TSR_OK);
    assert_int_equal(lev.width, 2);
    assert_int_equal(lev.height, 2);
    assert_int_equal(lev.data[0], 50);  /* (0 + 100) / 2 over both display rows of row 0 */
    assert_int_equal(lev.data[1], 130); /* (200 + 60) / 2 */
    assert_int_equal(lev.data[2], 30);
    assert_int_equal(lev.data[3], 165);
    rnd_image_free(&lev);
    /* Level 2: one pixel, the mean of all eight. */
    assert_int_equal(rnd_render_level(&src, 2.0, 2, &lev, NULL), TSR_OK);
    assert_int_equal(lev.width, 1);
    assert_int_equal(lev.height, 1);
    assert_int_equal(lev.data[0], 94); /* 750 / 8 = 93.75 */
    rnd_image_free(&lev);
    rnd_image_free(&src);
}

/* Every tile equals the crop of its level, bit for bit: no seams. */
static void
check_tiles(const rnd_image *src, double aspect, uint32_t tile, int min_level)
{
    uint32_t w0, h0;
    assert_int_equal(rnd_square_size(src->width, src->height, aspect, &w0, &h0), TSR_OK);
    int n = rnd_level_count(w0, h0, tile);
    for (int k = min_level; k < n; k++) {
        rnd_image lev = {0};
        tsr_err err = {0};
        if (rnd_render_level(src, aspect, k, &lev, &err) != TSR_OK) {
            fail_msg("level %d: %s", k, err.msg);
        }
        uint32_t lw, lh, cols, rows;
        rnd_level_size(w0, h0, k, &lw, &lh);
        assert_int_equal(lev.width, lw);
        assert_int_equal(lev.height, lh);
        assert_int_equal(rnd_tile_grid(w0, h0, tile, k, &cols, &rows), TSR_OK);
        for (uint32_t r = 0; r < rows; r++) {
            for (uint32_t c = 0; c < cols; c++) {
                uint32_t x, y, w, h;
                assert_int_equal(rnd_tile_rect(w0, h0, tile, k, c, r, &x, &y, &w, &h), TSR_OK);
                rnd_image t = {0}, crop = {0};
                if (rnd_render_tile(src, aspect, tile, k, c, r, &t, &err) != TSR_OK) {
                    fail_msg("tile %d/%u/%u: %s", k, c, r, err.msg);
                }
                assert_int_equal(rnd_image_crop(&lev, x, y, w, h, &crop, NULL), TSR_OK);
                char what[96];
                snprintf(what, sizeof what, "aspect %g tile %u: level %d col %u row %u", aspect,
                         tile, k, c, r);
                assert_same(&t, &crop, what);
                rnd_image_free(&t);
                rnd_image_free(&crop);
            }
        }
        rnd_image_free(&lev);
    }
}

static void
tiles_equal_level_crops(void **state)
{
    (void)state;
    static const double aspects[] = {1.0, 1.3, 0.77, 2.0};
    for (size_t i = 0; i < sizeof aspects / sizeof *aspects; i++) {
        rnd_image g = noise(203, 137, 1, 7 + (uint32_t)i);
        rnd_image c = noise(131, 97, 3, 11 + (uint32_t)i);
        check_tiles(&g, aspects[i], 16, 0);
        check_tiles(&g, aspects[i], 50, 0);
        check_tiles(&c, aspects[i], 16, 0);
        check_tiles(&c, aspects[i], 64, 0);
        free_raw(&g);
        free_raw(&c);
    }
}

/* The image of the IIIF tests: 4664 x 3064 in 256 tiles, all levels but the largest two. */
static void
tiles_large_image(void **state)
{
    (void)state;
    rnd_image g = noise(4664, 3064, 1, 3);
    check_tiles(&g, 1.0, 256, 2);
    /* Level 0 is a copy; its edge tiles too. */
    rnd_image t = {0}, crop = {0};
    assert_int_equal(rnd_render_tile(&g, 1.0, 256, 0, 18, 11, &t, NULL), TSR_OK);
    assert_int_equal(t.width, 56);
    assert_int_equal(t.height, 248);
    assert_int_equal(rnd_image_crop(&g, 4608, 2816, 56, 248, &crop, NULL), TSR_OK);
    assert_same(&t, &crop, "level 0 corner tile");
    rnd_image_free(&t);
    rnd_image_free(&crop);
    free_raw(&g);
}

static void
render_errors(void **state)
{
    (void)state;
    rnd_image src = noise(40, 30, 1, 5);
    rnd_image out = {0};
    tsr_err err = {0};
    assert_int_equal(rnd_render_level(&src, 1.0, -1, &out, &err), TSR_EINVAL);
    assert_true(strlen(err.msg) > 0);
    assert_int_equal(rnd_render_level(&src, 1.0, RND_LEVEL_MAX + 1, &out, NULL), TSR_EINVAL);
    assert_int_equal(rnd_render_level(NULL, 1.0, 0, &out, &err), TSR_EINVAL);
    assert_int_equal(rnd_render_level(&src, 0.0, 0, &out, &err), TSR_EINVAL);
    assert_int_equal(rnd_render_level(&src, -1.0, 0, &out, NULL), TSR_EINVAL);
    assert_null(out.data);

    /* Far past the pyramid still has a size: 1 x 1, the mean. */
    assert_int_equal(rnd_render_level(&src, 1.0, RND_LEVEL_MAX, &out, NULL), TSR_OK);
    assert_int_equal(out.width, 1);
    assert_int_equal(out.height, 1);
    rnd_image_free(&out);

    memset(&err, 0, sizeof err);
    assert_int_equal(rnd_render_tile(&src, 1.0, 16, 0, 3, 0, &out, &err), TSR_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no tile"));
    assert_int_equal(rnd_render_tile(&src, 1.0, 16, 3, 0, 0, &out, NULL), TSR_ENOTFOUND);
    assert_int_equal(rnd_render_tile(&src, 1.0, 8, 0, 0, 0, &out, &err), TSR_EINVAL);
    assert_int_equal(rnd_render_tile(&src, 1.0, 16, -1, 0, 0, &out, NULL), TSR_EINVAL);
    assert_null(out.data);

    /* The grid must stay on the image. */
    assert_int_equal(rnd_resample_grid(&src, 1.0, 2.0, 0, 0, 21, 15, &out, &err), TSR_EINVAL);
    assert_int_equal(rnd_resample_grid(&src, 1.0, 2.0, 20, 0, 1, 1, &out, NULL), TSR_EINVAL);
    assert_int_equal(rnd_resample_grid(&src, 1.0, 0.0, 0, 0, 1, 1, &out, NULL), TSR_EINVAL);
    assert_int_equal(rnd_resample_grid(&src, 1.0, 1.0, 0, 0, 0, 1, &out, NULL), TSR_ELIMIT);
    assert_int_equal(rnd_resample_grid(&src, 1.0, 2.0, 0, 0, 20, 15, &out, NULL), TSR_OK);
    rnd_image_free(&out);
    free_raw(&src);
}

/* ---------------------------------------------------------------- rnd_resample_region */

static void
region_equals_resample(void **state)
{
    (void)state;
    rnd_image src = noise(40, 30, 3, 9);
    static const char *const vps[] = {"10,5,10,5,20,10", "10,5,30,5,-20,10", "40,30",
                                      "7,9,3,1,13,17",   "80,60,0,0,40,30",  "25,25,5,5,10,10"};
    static const double aspects[] = {1.0, 1.5};
    for (size_t a = 0; a < 2; a++) {
        for (size_t i = 0; i < sizeof vps / sizeof *vps; i++) {
            rnd_viewport vp;
            assert_int_equal(rnd_viewport_parse(vps[i], &vp, NULL), TSR_OK);
            rnd_image ref = {0}, out = {0};
            assert_int_equal(rnd_resample(&src, aspects[a], &vp, &ref, NULL), TSR_OK);
            rnd_region r = {vp.sx, vp.sy, vp.sw, vp.sh};
            int mirror = 0;
            if (r.w < 0) {
                r.x += r.w;
                r.w = -r.w;
                mirror = 1;
            }
            tsr_err err = {0};
            int rc = rnd_resample_region(&src, aspects[a], vp.has_region ? &r : NULL, ref.width,
                                         ref.height, mirror, &out, &err);
            if (rc != TSR_OK) {
                fail_msg("%s: %s", vps[i], err.msg);
            }
            assert_same(&out, &ref, vps[i]);
            rnd_image_free(&ref);
            rnd_image_free(&out);
        }
    }
    /* Exact size, distorting: a flat image stays flat at any size. */
    rnd_image flat = {0};
    assert_int_equal(rnd_image_alloc(&flat, 17, 5, 1, NULL), TSR_OK);
    memset(flat.data, 77, 17 * 5);
    rnd_image out = {0};
    assert_int_equal(rnd_resample_region(&flat, 1.0, NULL, 3, 40, 0, &out, NULL), TSR_OK);
    assert_int_equal(out.width, 3);
    assert_int_equal(out.height, 40);
    for (size_t i = 0; i < 3 * 40; i++) {
        assert_int_equal(out.data[i], 77);
    }
    rnd_image_free(&out);

    rnd_region outside = {40, 0, 5, 5}, zero = {0, 0, 0, 5};
    tsr_err err = {0};
    assert_int_equal(rnd_resample_region(&flat, 1.0, &outside, 3, 3, 0, &out, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "outside"));
    assert_int_equal(rnd_resample_region(&flat, 1.0, &zero, 3, 3, 0, &out, NULL), TSR_EINVAL);
    assert_int_equal(
        rnd_resample_region(&flat, 1.0, NULL, RND_RESAMPLE_MAX_SIDE + 1, 3, 0, &out, NULL),
        TSR_ELIMIT);
    assert_null(out.data);
    rnd_image_free(&flat);
    free_raw(&src);
}

/* ---------------------------------------------------------------- crop, gray, mirror */

static void
crop_gray_mirror(void **state)
{
    (void)state;
    rnd_image src = noise(9, 7, 3, 4);
    rnd_image c = {0};
    assert_int_equal(rnd_image_crop(&src, 2, 3, 5, 4, &c, NULL), TSR_OK);
    assert_int_equal(c.width, 5);
    assert_int_equal(c.height, 4);
    for (uint32_t y = 0; y < 4; y++) {
        assert_memory_equal(c.data + y * c.stride, src.data + (y + 3) * src.stride + 2 * 3, 15);
    }
    rnd_image_free(&c);
    tsr_err err = {0};
    assert_int_equal(rnd_image_crop(&src, 5, 0, 5, 1, &c, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "not inside"));
    assert_int_equal(rnd_image_crop(&src, 0, 0, 0, 1, &c, NULL), TSR_EINVAL);
    assert_int_equal(rnd_image_crop(&src, 9, 0, 1, 1, &c, NULL), TSR_EINVAL);
    assert_int_equal(rnd_image_crop(&src, 1, 1, UINT32_MAX, 1, &c, NULL), TSR_EINVAL);
    assert_int_equal(rnd_image_crop(NULL, 0, 0, 1, 1, &c, NULL), TSR_EINVAL);
    assert_null(c.data);
    free_raw(&src);

    rnd_image rgb = {0};
    assert_int_equal(rnd_image_alloc(&rgb, 5, 1, 3, NULL), TSR_OK);
    static const uint8_t px[15] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0};
    memcpy(rgb.data, px, 15);
    rnd_image g = {0};
    assert_int_equal(rnd_image_gray(&rgb, &g, NULL), TSR_OK);
    assert_int_equal(g.channels, 1);
    static const uint8_t luma[5] = {76, 150, 29, 255, 0};
    assert_memory_equal(g.data, luma, 5);
    rnd_image g2 = {0};
    assert_int_equal(rnd_image_gray(&g, &g2, NULL), TSR_OK); /* grey is copied */
    assert_memory_equal(g2.data, luma, 5);
    rnd_image_free(&g2);

    rnd_image_mirror(&g);
    static const uint8_t flipped[5] = {0, 255, 29, 150, 76};
    assert_memory_equal(g.data, flipped, 5);
    rnd_image_mirror(&rgb);
    static const uint8_t rgb_flipped[15] = {0,   0, 0,   255, 255, 255, 0, 0,
                                            255, 0, 255, 0,   255, 0,   0};
    assert_memory_equal(rgb.data, rgb_flipped, 15);
    rnd_image_mirror(NULL);
    rnd_image_free(&g);
    rnd_image_free(&rgb);
    assert_int_equal(rnd_image_gray(NULL, &g, NULL), TSR_EINVAL);

    /* Mirroring matches rnd_resample_region's mirror flag. */
    rnd_image n = noise(23, 11, 3, 8), a = {0}, b = {0};
    assert_int_equal(rnd_resample_region(&n, 1.0, NULL, 23, 11, 1, &a, NULL), TSR_OK);
    assert_int_equal(rnd_resample_region(&n, 1.0, NULL, 23, 11, 0, &b, NULL), TSR_OK);
    rnd_image_mirror(&b);
    assert_same(&a, &b, "mirror");
    rnd_image_free(&a);
    rnd_image_free(&b);
    free_raw(&n);
}

TSR_TEST_MAIN(cmocka_unit_test(level_counts), cmocka_unit_test(level_sizes),
              cmocka_unit_test(tile_rects_cover), cmocka_unit_test(display_size),
              cmocka_unit_test(level_equals_resample), cmocka_unit_test(level_partial_blocks),
              cmocka_unit_test(level_pixel_aspect), cmocka_unit_test(tiles_equal_level_crops),
              cmocka_unit_test(tiles_large_image), cmocka_unit_test(render_errors),
              cmocka_unit_test(region_equals_resample), cmocka_unit_test(crop_gray_mirror))
