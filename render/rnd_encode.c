/* SPDX-License-Identifier: MIT */
/* rnd_encode.c: 8-bit images to JPEG (TurboJPEG) or PNG (libpng), into malloc'd buffers that
 * callers free with rnd_buf_free. */
#include "rnd_internal.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

/* ---------------------------------------------------------------- JPEG */

/* A TurboJPEG handle is made per call. Caching one per thread was measured and saves nothing
 * that shows: creating and destroying a compressor takes about 0.2 us, against 0.5 ms for a
 * 512x512 q90 encode (cached and fresh handles timed within noise of each other). Per-call
 * handles need no process-wide state and cannot carry a failed state into the next request. */

int
rnd__jpeg_encode(const rnd_image *img, int quality, rnd_buf *out, tsr_err *err)
{
    int rc = TSR_OK;
    tjhandle h = NULL;
    unsigned char *jpeg = NULL;

    /* TurboJPEG takes int sizes, and libjpeg stops at 65500 pixels per side. */
    if (img->width > 65500 || img->height > 65500 || img->stride > (size_t)INT32_MAX) {
        return tsr_err_set(err, TSR_ELIMIT, "jpeg: image %ux%u exceeds 65500x65500",
                           (unsigned)img->width, (unsigned)img->height);
    }
    /* Grey stays one component. For colour, 4:2:0 halves the chroma resolution, which is
     * invisible in photographs but blurs fine coloured structure (Doppler flow, overlays,
     * annotations, pathology stains); at diagnostic qualities (>= 90) keep full chroma. */
    int samp = img->channels == 1 ? TJSAMP_GRAY : (quality >= 90 ? TJSAMP_444 : TJSAMP_420);
    int pf = img->channels == 1 ? TJPF_GRAY : TJPF_RGB;

    /* A worst-case-sized malloc'd buffer with TJFLAG_NOREALLOC: TurboJPEG writes straight into
     * memory that rnd_buf_free can release, with no copy; it is shrunk to size afterwards. */
    unsigned long cap = tjBufSize((int)img->width, (int)img->height, samp);
    if (cap == (unsigned long)-1) {
        return tsr_err_set(err, TSR_ELIMIT, "jpeg: %s", tjGetErrorStr2(NULL));
    }
    jpeg = malloc(cap);
    if (!jpeg) {
        return tsr_err_set(err, TSR_ENOMEM, "jpeg: out of memory for %lu bytes", cap);
    }
    h = tjInitCompress();
    if (!h) {
        rc = tsr_err_set(err, TSR_ENOMEM, "jpeg: cannot create a compressor: %s",
                         tjGetErrorStr2(NULL));
        goto fail;
    }
    unsigned long len = cap;
    int failed;
    if (img->channels == 1) {
        /* Grey goes in as the Y plane of "YUV" data: libjpeg's raw-data path takes the rows
         * as they are, where tjCompress2 would run its grey "colour conversion", a byte-by-byte
         * strided copy that costs about 40% of a 512x512 q90 encode. The bytes are identical. */
        const unsigned char *planes[1] = {img->data};
        int strides[1] = {(int)img->stride};
        failed = tjCompressFromYUVPlanes(h, planes, (int)img->width, strides, (int)img->height,
                                         TJSAMP_GRAY, &jpeg, &len, quality, TJFLAG_NOREALLOC);
    } else {
        failed = tjCompress2(h, img->data, (int)img->width, (int)img->stride, (int)img->height, pf,
                             &jpeg, &len, samp, quality, TJFLAG_NOREALLOC);
    }
    if (failed) {
        rc = tsr_err_set(err, TSR_EINTERNAL, "jpeg: %s", tjGetErrorStr2(h));
        goto fail;
    }
    tjDestroy(h);
    unsigned char *shrunk = realloc(jpeg, len);
    out->data = shrunk ? shrunk : jpeg;
    out->len = len;
    return TSR_OK;

fail:
    free(jpeg);
    if (h) {
        tjDestroy(h);
    }
    return rc;
}

/* ---------------------------------------------------------------- PNG */

/* Settings (RND__PNG_ZLEVEL, RND__PNG_FILTERS in rnd_internal.h) measured on a real 512x512 head
 * CT slice, windowed 40/400, best of 15 runs of 10 encodes, zlib level 1:
 *
 *     filter     ms     bytes
 *     NONE       3.04   84622
 *     SUB        3.01   79894
 *     UP         2.73   73284
 *     NONE|SUB   3.23   79630
 *     PAETH      3.42   72861
 *
 * UP is both the fastest and, with PAETH, the smallest: CT rows change slowly from one to the
 * next. Adaptive filter choice (several filters at once) costs time for little gain. Level 2
 * saved about 1% for 7% more time, level 6 about 7% for three times the time. With a narrow window
 * (35/100, large flat areas) NONE was 15% faster than UP at a similar size; UP is the better
 * compromise across windows. */
_Static_assert(RND__PNG_FILTERS == PNG_FILTER_UP, "rnd_internal.h mirrors PNG_FILTER_UP");

/* A growing output buffer for png_set_write_fn. */
typedef struct pngw_mem {
    uint8_t *data;
    size_t len, cap;
} pngw_mem;

/* Where libpng's error text goes before the longjmp. */
typedef struct pngw_errctx {
    char msg[128];
} pngw_errctx;

static void
pngw_write(png_structp png, png_bytep data, size_t len)
{
    pngw_mem *m = png_get_io_ptr(png);
    if (len > m->cap - m->len) {
        size_t cap = m->cap ? m->cap : 4096;
        while (len > cap - m->len) {
            if (cap > SIZE_MAX / 2) {
                png_error(png, "output too large");
            }
            cap *= 2;
        }
        uint8_t *p = realloc(m->data, cap);
        if (!p) {
            png_error(png, "out of memory");
        }
        m->data = p;
        m->cap = cap;
    }
    memcpy(m->data + m->len, data, len);
    m->len += len;
}

static void
pngw_flush(png_structp png)
{
    (void)png;
}

static void
pngw_error(png_structp png, png_const_charp msg)
{
    pngw_errctx *e = png_get_error_ptr(png);
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void
pngw_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* The part of the encoder that may longjmp. It is a function of its own so that no local it
 * changes after setjmp is read after the jump (C11 7.13.2.1p3): everything that must survive a
 * libpng error lives in the caller or in `m`. Returns 0, or -1 after a libpng error. */
static int
pngw_rows(png_structp png, png_infop info, const rnd_image *img, int zlevel, int filters)
{
    if (setjmp(png_jmpbuf(png))) {
        return -1;
    }
    png_set_IHDR(png, info, img->width, img->height, 8,
                 img->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, zlevel);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, filters);
    png_write_info(png, info);
    for (uint32_t y = 0; y < img->height; y++) {
        png_write_row(png, img->data + (size_t)y * img->stride);
    }
    png_write_end(png, info);
    return 0;
}

int
rnd__png_encode(const rnd_image *img, int zlevel, int filters, rnd_buf *out, tsr_err *err)
{
    int rc = TSR_OK;
    pngw_errctx ectx = {{0}};
    pngw_mem m = {0};
    png_structp png = NULL;
    png_infop info = NULL;

    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ectx, pngw_error, pngw_warning);
    if (png) {
        info = png_create_info_struct(png);
    }
    if (!png || !info) {
        rc = tsr_err_set(err, TSR_ENOMEM, "png: cannot create the encoder");
        goto done;
    }
    /* libpng's own size limits (1000000 per side by default) would otherwise surface as an
     * opaque "Invalid IHDR data". */
    if (img->width > png_get_user_width_max(png) || img->height > png_get_user_height_max(png)) {
        rc = tsr_err_set(err, TSR_ELIMIT, "png: image %ux%u exceeds %ux%u", (unsigned)img->width,
                         (unsigned)img->height, (unsigned)png_get_user_width_max(png),
                         (unsigned)png_get_user_height_max(png));
        goto done;
    }
    /* Compressed size is usually well under the raw size; start at a quarter of it. */
    m.cap = (size_t)img->width * img->channels * img->height / 4 + 1024;
    m.data = malloc(m.cap);
    if (!m.data) {
        rc = tsr_err_set(err, TSR_ENOMEM, "png: out of memory");
        goto done;
    }
    png_set_write_fn(png, &m, pngw_write, pngw_flush);
    if (pngw_rows(png, info, img, zlevel, filters) != 0) {
        rc = tsr_err_set(err, strstr(ectx.msg, "memory") ? TSR_ENOMEM : TSR_EINTERNAL, "png: %s",
                         ectx.msg);
        goto done;
    }
    uint8_t *shrunk = realloc(m.data, m.len ? m.len : 1);
    out->data = shrunk ? shrunk : m.data;
    out->len = m.len;
    m.data = NULL;

done:
    png_destroy_write_struct(&png, &info);
    free(m.data);
    return rc;
}

/* ---------------------------------------------------------------- rnd_encode */

int
rnd_encode(const rnd_image *img, rnd_format fmt, int quality, rnd_buf *out, tsr_err *err)
{
    if (!img || !img->data || img->width == 0 || img->height == 0 ||
        (img->channels != 1 && img->channels != 3) ||
        img->stride < (size_t)img->width * img->channels) {
        return tsr_err_set(err, TSR_EINVAL, "encode: invalid image");
    }
    switch (fmt) {
    case RND_FMT_JPEG:
        if (quality < 1 || quality > 100) {
            return tsr_err_set(err, TSR_EINVAL, "jpeg quality must be 1..100 (got %d)", quality);
        }
        return rnd__jpeg_encode(img, quality, out, err);
    case RND_FMT_PNG:
        return rnd__png_encode(img, RND__PNG_ZLEVEL, RND__PNG_FILTERS, out, err);
    }
    return tsr_err_set(err, TSR_EINVAL, "encode: unknown format %d", (int)fmt);
}
