/* SPDX-License-Identifier: MIT */
/* rnd_tile.c: the tile pyramid. Level and tile arithmetic, and rendering a level or one tile of
 * it through rnd_resample_grid, plus the small image operations a tile server needs (crop, grey,
 * mirror).
 *
 * Why levels are aligned blocks rather than the whole image stretched to the level size: a level
 * pixel then stands for exactly 2^k x 2^k display pixels (fewer at the far edges), which is what
 * IIIF's size arithmetic (size = ceil(region / scale factor)) and OpenSeadragon's tile placement
 * assume, so a tile request names exactly the pixels of one tile and levels stay registered with
 * each other when a viewer blends them. When 2^k divides W0 and H0 the two definitions agree.
 *
 * Why a tile is rendered with the weights of its position in the level (rnd_resample_grid's
 * x0, y0) rather than as a resampled region: a pixel's value then depends only on its level
 * coordinates, never on which tile asked for it, so neighbouring tiles join without seams and a
 * tile costs only its own pixels, not a whole level. */
#include "rnd_internal.h"

#include <stdlib.h>
#include <string.h>

int
rnd_display_size(const rnd_info *info, uint32_t *w0, uint32_t *h0)
{
    if (!info) {
        return TSR_EINVAL;
    }
    return rnd_square_size(info->columns, info->rows, rnd_pixel_aspect(info), w0, h0);
}

/* ceil(v / 2^k) without overflow, for any k >= 0. */
static uint32_t
ceil_shift(uint32_t v, int k)
{
    if (k >= 32) {
        return v ? 1 : 0;
    }
    return (uint32_t)(((uint64_t)v + ((UINT64_C(1) << k) - 1)) >> k);
}

void
rnd_level_size(uint32_t w0, uint32_t h0, int level, uint32_t *w, uint32_t *h)
{
    if (level < 0) {
        level = 0;
    }
    *w = ceil_shift(w0, level);
    *h = ceil_shift(h0, level);
}

static int
valid_pyramid(uint32_t w0, uint32_t h0, uint32_t tile)
{
    return w0 > 0 && h0 > 0 && tile >= RND_TILE_MIN && tile <= RND_TILE_MAX;
}

int
rnd_level_count(uint32_t w0, uint32_t h0, uint32_t tile)
{
    if (!valid_pyramid(w0, h0, tile)) {
        return TSR_EINVAL;
    }
    int k = 0;
    while (ceil_shift(w0, k) > tile || ceil_shift(h0, k) > tile) {
        k++;
    }
    return k + 1;
}

int
rnd_tile_grid(uint32_t w0, uint32_t h0, uint32_t tile, int level, uint32_t *cols, uint32_t *rows)
{
    if (!valid_pyramid(w0, h0, tile) || level < 0) {
        return TSR_EINVAL;
    }
    if (level >= rnd_level_count(w0, h0, tile)) {
        return TSR_ENOTFOUND;
    }
    uint32_t lw, lh;
    rnd_level_size(w0, h0, level, &lw, &lh);
    *cols = (lw + tile - 1) / tile;
    *rows = (lh + tile - 1) / tile;
    return TSR_OK;
}

int
rnd_tile_rect(uint32_t w0, uint32_t h0, uint32_t tile, int level, uint32_t col, uint32_t row,
              uint32_t *x, uint32_t *y, uint32_t *w, uint32_t *h)
{
    uint32_t cols, rows;
    int rc = rnd_tile_grid(w0, h0, tile, level, &cols, &rows);
    if (rc != TSR_OK) {
        return rc;
    }
    if (col >= cols || row >= rows) {
        return TSR_ENOTFOUND;
    }
    uint32_t lw, lh;
    rnd_level_size(w0, h0, level, &lw, &lh);
    /* col < cols = ceil(lw / tile), so col * tile < lw: no overflow, w > 0. */
    uint32_t tx = col * tile, ty = row * tile;
    *x = tx;
    *y = ty;
    *w = lw - tx < tile ? lw - tx : tile;
    *h = lh - ty < tile ? lh - ty : tile;
    return TSR_OK;
}

/* The display size of `frame`, with a message on failure. */
static int
frame_display_size(const rnd_image *frame, double pixel_aspect, uint32_t *w0, uint32_t *h0,
                   tsr_err *err)
{
    if (!frame || !frame->data || frame->width == 0 || frame->height == 0) {
        return tsr_err_set(err, TSR_EINVAL, "level: invalid source image");
    }
    int rc = rnd_square_size(frame->width, frame->height, pixel_aspect, w0, h0);
    if (rc != TSR_OK) {
        return tsr_err_set(err, rc, "level: pixel aspect %g is out of range", pixel_aspect);
    }
    return TSR_OK;
}

int
rnd_render_level(const rnd_image *frame, double pixel_aspect, int level, rnd_image *out,
                 tsr_err *err)
{
    uint32_t w0, h0, lw, lh;
    if (level < 0 || level > RND_LEVEL_MAX) {
        return tsr_err_set(err, TSR_EINVAL, "level %d outside 0..%d", level, RND_LEVEL_MAX);
    }
    int rc = frame_display_size(frame, pixel_aspect, &w0, &h0, err);
    if (rc != TSR_OK) {
        return rc;
    }
    rnd_level_size(w0, h0, level, &lw, &lh);
    return rnd_resample_grid(frame, pixel_aspect, (double)(UINT64_C(1) << level), 0, 0, lw, lh, out,
                             err);
}

int
rnd_render_tile(const rnd_image *frame, double pixel_aspect, uint32_t tile, int level, uint32_t col,
                uint32_t row, rnd_image *out, tsr_err *err)
{
    uint32_t w0, h0, x, y, w, h;
    int rc = frame_display_size(frame, pixel_aspect, &w0, &h0, err);
    if (rc != TSR_OK) {
        return rc;
    }
    rc = rnd_tile_rect(w0, h0, tile, level, col, row, &x, &y, &w, &h);
    if (rc == TSR_EINVAL) {
        return tsr_err_set(err, rc, "tile size %u outside %u..%u or level %d negative",
                           (unsigned)tile, RND_TILE_MIN, RND_TILE_MAX, level);
    }
    if (rc != TSR_OK) {
        return tsr_err_set(err, rc, "no tile %u,%u at level %d of a %ux%u image in %u tiles",
                           (unsigned)col, (unsigned)row, level, (unsigned)w0, (unsigned)h0,
                           (unsigned)tile);
    }
    return rnd_resample_grid(frame, pixel_aspect, (double)(UINT64_C(1) << level), x, y, w, h, out,
                             err);
}

static int
valid_image(const rnd_image *img)
{
    return img && img->data && img->width > 0 && img->height > 0 &&
           (img->channels == 1 || img->channels == 3) &&
           img->stride >= (size_t)img->width * img->channels;
}

int
rnd_image_crop(const rnd_image *src, uint32_t x, uint32_t y, uint32_t w, uint32_t h, rnd_image *out,
               tsr_err *err)
{
    if (!valid_image(src)) {
        return tsr_err_set(err, TSR_EINVAL, "crop: invalid source image");
    }
    if (w == 0 || h == 0 || x >= src->width || y >= src->height || w > src->width - x ||
        h > src->height - y) {
        return tsr_err_set(err, TSR_EINVAL, "crop: %ux%u at %u,%u is not inside the %ux%u image",
                           (unsigned)w, (unsigned)h, (unsigned)x, (unsigned)y, (unsigned)src->width,
                           (unsigned)src->height);
    }
    rnd_image img;
    int rc = rnd_image_alloc(&img, w, h, src->channels, err);
    if (rc != TSR_OK) {
        return rc;
    }
    const size_t ch = src->channels;
    for (uint32_t r = 0; r < h; r++) {
        memcpy(img.data + (size_t)r * img.stride,
               src->data + (size_t)(y + r) * src->stride + x * ch, (size_t)w * ch);
    }
    *out = img;
    return TSR_OK;
}

int
rnd_image_gray(const rnd_image *src, rnd_image *out, tsr_err *err)
{
    if (!valid_image(src)) {
        return tsr_err_set(err, TSR_EINVAL, "gray: invalid source image");
    }
    if (src->channels == 1) {
        return rnd_image_crop(src, 0, 0, src->width, src->height, out, err);
    }
    rnd_image img;
    int rc = rnd_image_alloc(&img, src->width, src->height, 1, err);
    if (rc != TSR_OK) {
        return rc;
    }
    for (uint32_t r = 0; r < src->height; r++) {
        const uint8_t *s = src->data + (size_t)r * src->stride;
        uint8_t *d = img.data + (size_t)r * img.stride;
        for (uint32_t c = 0; c < src->width; c++, s += 3) {
            /* Rec. 601 luma (0.299, 0.587, 0.114) in 16-bit fixed point; weights sum to 65536,
             * so white stays 255. */
            d[c] = (uint8_t)((19595u * s[0] + 38470u * s[1] + 7471u * s[2] + 32768u) >> 16);
        }
    }
    *out = img;
    return TSR_OK;
}

void
rnd_image_mirror(rnd_image *img)
{
    if (!img || !img->data || img->width < 2) {
        return;
    }
    const size_t ch = img->channels;
    for (uint32_t r = 0; r < img->height; r++) {
        uint8_t *row = img->data + (size_t)r * img->stride;
        for (uint32_t a = 0, b = img->width - 1; a < b; a++, b--) {
            for (size_t k = 0; k < ch; k++) {
                uint8_t t = row[a * ch + k];
                row[a * ch + k] = row[b * ch + k];
                row[b * ch + k] = t;
            }
        }
    }
}
