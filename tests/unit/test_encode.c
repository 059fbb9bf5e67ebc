/* SPDX-License-Identifier: MIT */
/* test_encode.c: rnd_encode round trips. JPEG is decoded back with TurboJPEG and compared within
 * a tolerance (never by hashing bytes); PNG is decoded with libpng's simplified API and must
 * match exactly. */
#include "tsr_test.h"

#include "rnd_internal.h"

#include <png.h>
#include <turbojpeg.h>

/* An image whose rows are `pad` bytes longer than needed, filled by `fill`. */
static rnd_image
make_image(uint32_t w, uint32_t h, uint8_t ch, size_t pad,
           uint8_t (*fill)(uint32_t x, uint32_t y, uint32_t c))
{
    rnd_image img = {0};
    img.width = w;
    img.height = h;
    img.channels = ch;
    img.stride = (size_t)w * ch + pad;
    img.data = malloc(img.stride * h);
    assert_non_null(img.data);
    memset(img.data, 0xA5, img.stride * h);
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++) {
            for (uint32_t c = 0; c < ch; c++) {
                img.data[y * img.stride + x * ch + c] = fill(x, y, c);
            }
        }
    }
    return img;
}

static uint8_t
fill_gradient(uint32_t x, uint32_t y, uint32_t c)
{
    return (uint8_t)(x * 2 + y + c * 30); /* no wrap-around for the sizes used here */
}

/* Deterministic noise: incompressible enough that lossless coding is really tested. */
static uint8_t
fill_noise(uint32_t x, uint32_t y, uint32_t c)
{
    uint32_t v = x * 2654435761u ^ (y + 1) * 40503u ^ (c + 7) * 2246822519u;
    v ^= v >> 13;
    v *= 0x5bd1e995u;
    return (uint8_t)(v >> 24);
}

/* A textured image with detail at every scale, so that quality matters for JPEG size. */
static uint8_t
fill_texture(uint32_t x, uint32_t y, uint32_t c)
{
    return (uint8_t)((x * y + (x ^ y) * 5 + c * 17) & 0xff);
}

/* Number of components in the JPEG's SOF segment, or -1. */
static int
jpeg_components(const rnd_buf *b)
{
    for (size_t i = 2; i + 9 < b->len; i++) {
        if (b->data[i] == 0xFF && b->data[i + 1] >= 0xC0 && b->data[i + 1] <= 0xC2) {
            return b->data[i + 9];
        }
    }
    return -1;
}

/* Decodes `b` with TurboJPEG into `ch` channels and returns the largest absolute difference
 * from `img`. Also checks the size and returns the chroma subsampling in *subsamp. */
static int
jpeg_max_diff(const rnd_buf *b, const rnd_image *img, int *subsamp)
{
    tjhandle h = tjInitDecompress();
    assert_non_null(h);
    int w, ht, ss, cs;
    assert_int_equal(tjDecompressHeader3(h, b->data, b->len, &w, &ht, &ss, &cs), 0);
    assert_int_equal(w, img->width);
    assert_int_equal(ht, img->height);
    *subsamp = ss;
    size_t row = (size_t)img->width * img->channels;
    uint8_t *px = malloc(row * img->height);
    assert_non_null(px);
    int pf = img->channels == 1 ? TJPF_GRAY : TJPF_RGB;
    assert_int_equal(tjDecompress2(h, b->data, b->len, px, w, (int)row, ht, pf, 0), 0);
    int worst = 0;
    for (uint32_t y = 0; y < img->height; y++) {
        for (size_t i = 0; i < row; i++) {
            int d = abs((int)px[y * row + i] - (int)img->data[y * img->stride + i]);
            if (d > worst) {
                worst = d;
            }
        }
    }
    free(px);
    tjDestroy(h);
    return worst;
}

/* Decodes PNG `b` with libpng's simplified API and asserts it equals `img` exactly, with the
 * expected colour type and 8-bit depth in the header. */
static void
assert_png_equals(const rnd_buf *b, const rnd_image *img)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    assert_true(b->len > 33);
    assert_memory_equal(b->data, sig, 8);
    assert_int_equal(b->data[24], 8);                          /* bit depth */
    assert_int_equal(b->data[25], img->channels == 1 ? 0 : 2); /* colour type */

    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&pi, b->data, b->len)) {
        fail_msg("png_image_begin_read_from_memory: %s", pi.message);
    }
    assert_int_equal(pi.width, img->width);
    assert_int_equal(pi.height, img->height);
    pi.format = img->channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    size_t row = (size_t)img->width * img->channels;
    uint8_t *px = malloc(PNG_IMAGE_SIZE(pi));
    assert_non_null(px);
    if (!png_image_finish_read(&pi, NULL, px, (png_int_32)row, NULL)) {
        fail_msg("png_image_finish_read: %s", pi.message);
    }
    for (uint32_t y = 0; y < img->height; y++) {
        assert_memory_equal(px + y * row, img->data + y * img->stride, row);
    }
    free(px);
    png_image_free(&pi);
}

/* ---------------------------------------------------------------- JPEG */

static void
jpeg_grey_roundtrip(void **state)
{
    (void)state;
    rnd_image img = make_image(67, 45, 1, 5, fill_gradient);
    rnd_buf b = {0};
    tsr_err err = {0};
    assert_int_equal(rnd_encode(&img, RND_FMT_JPEG, 90, &b, &err), TSR_OK);
    assert_non_null(b.data);
    assert_true(b.len > 100);
    assert_int_equal(b.data[0], 0xFF);
    assert_int_equal(b.data[1], 0xD8);
    assert_int_equal(jpeg_components(&b), 1); /* grey stays one component */
    int ss;
    int diff = jpeg_max_diff(&b, &img, &ss);
    assert_int_equal(ss, TJSAMP_GRAY);
    if (diff > 8) {
        fail_msg("q90 grey max abs diff %d > 8", diff);
    }
    rnd_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    rnd_buf_free(NULL);
    rnd_image_free(&img);
}

static void
jpeg_rgb_roundtrip(void **state)
{
    (void)state;
    rnd_image img = make_image(64, 40, 3, 3, fill_gradient);
    rnd_buf b = {0};
    int ss;

    /* Diagnostic quality keeps full chroma resolution ... */
    assert_int_equal(rnd_encode(&img, RND_FMT_JPEG, 95, &b, NULL), TSR_OK);
    assert_int_equal(jpeg_components(&b), 3);
    int diff = jpeg_max_diff(&b, &img, &ss);
    assert_int_equal(ss, TJSAMP_444);
    if (diff > 8) {
        fail_msg("q95 RGB max abs diff %d > 8", diff);
    }
    rnd_buf_free(&b);

    /* ... lower qualities subsample it. */
    assert_int_equal(rnd_encode(&img, RND_FMT_JPEG, 89, &b, NULL), TSR_OK);
    assert_int_equal(jpeg_components(&b), 3);
    diff = jpeg_max_diff(&b, &img, &ss);
    assert_int_equal(ss, TJSAMP_420);
    if (diff > 16) {
        fail_msg("q89 RGB max abs diff %d > 16", diff);
    }
    rnd_buf_free(&b);
    rnd_image_free(&img);
}

static void
jpeg_quality_changes_size(void **state)
{
    (void)state;
    rnd_image img = make_image(128, 128, 1, 0, fill_texture);
    rnd_buf lo = {0}, hi = {0};
    assert_int_equal(rnd_encode(&img, RND_FMT_JPEG, 10, &lo, NULL), TSR_OK);
    assert_int_equal(rnd_encode(&img, RND_FMT_JPEG, 95, &hi, NULL), TSR_OK);
    if (!(lo.len * 2 < hi.len)) {
        fail_msg("q10 gave %zu bytes, q95 %zu", lo.len, hi.len);
    }
    rnd_buf_free(&lo);
    rnd_buf_free(&hi);
    /* Quality 1 and 100 are the valid extremes. */
    assert_int_equal(rnd_encode(&img, RND_FMT_JPEG, 1, &lo, NULL), TSR_OK);
    assert_int_equal(rnd_encode(&img, RND_FMT_JPEG, 100, &hi, NULL), TSR_OK);
    assert_true(lo.len < hi.len);
    rnd_buf_free(&lo);
    rnd_buf_free(&hi);
    rnd_image_free(&img);
}

static void
jpeg_quality_out_of_range(void **state)
{
    (void)state;
    rnd_image img = make_image(8, 8, 1, 0, fill_gradient);
    static const int bad[] = {0, 101, -1, 1000};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rnd_buf b = {(uint8_t *)&img, 12345}; /* sentinel: untouched on failure */
        tsr_err err = {0};
        assert_int_equal(rnd_encode(&img, RND_FMT_JPEG, bad[i], &b, &err), TSR_EINVAL);
        assert_int_equal(err.code, TSR_EINVAL);
        assert_non_null(strstr(err.msg, "quality"));
        assert_ptr_equal(b.data, (uint8_t *)&img);
        assert_int_equal(b.len, 12345);
        assert_int_equal(rnd_encode(&img, RND_FMT_JPEG, bad[i], &b, NULL), TSR_EINVAL);
    }
    /* PNG ignores quality. */
    rnd_buf b = {0};
    assert_int_equal(rnd_encode(&img, RND_FMT_PNG, 0, &b, NULL), TSR_OK);
    rnd_buf_free(&b);
    rnd_image_free(&img);
}

static void
jpeg_too_large(void **state)
{
    (void)state;
    rnd_image img = {0};
    img.width = 70000;
    img.height = 1;
    img.channels = 1;
    img.stride = 70000;
    img.data = calloc(1, 70000);
    assert_non_null(img.data);
    rnd_buf b = {0};
    tsr_err err = {0};
    assert_int_equal(rnd_encode(&img, RND_FMT_JPEG, 90, &b, &err), TSR_ELIMIT);
    assert_non_null(strstr(err.msg, "70000"));
    assert_null(b.data);
    assert_int_equal(rnd_encode(&img, RND_FMT_JPEG, 90, &b, NULL), TSR_ELIMIT);
    /* PNG has no such limit. */
    assert_int_equal(rnd_encode(&img, RND_FMT_PNG, 0, &b, &err), TSR_OK);
    assert_png_equals(&b, &img);
    rnd_buf_free(&b);
    rnd_image_free(&img);
}

/* ---------------------------------------------------------------- PNG */

static void
png_grey_lossless(void **state)
{
    (void)state;
    rnd_image img = make_image(131, 77, 1, 9, fill_noise);
    rnd_buf b = {0};
    tsr_err err = {0};
    assert_int_equal(rnd_encode(&img, RND_FMT_PNG, 90, &b, &err), TSR_OK);
    assert_png_equals(&b, &img);
    rnd_buf_free(&b);
    rnd_image_free(&img);

    /* A smooth image compresses well below its raw size. */
    img = make_image(256, 256, 1, 0, fill_gradient);
    assert_int_equal(rnd_encode(&img, RND_FMT_PNG, 90, &b, &err), TSR_OK);
    assert_png_equals(&b, &img);
    assert_true(b.len < 256 * 256 / 4);
    rnd_buf_free(&b);
    rnd_image_free(&img);

    img = make_image(1, 1, 1, 0, fill_noise);
    assert_int_equal(rnd_encode(&img, RND_FMT_PNG, 90, &b, &err), TSR_OK);
    assert_png_equals(&b, &img);
    rnd_buf_free(&b);
    rnd_image_free(&img);
}

static void
png_rgb_lossless(void **state)
{
    (void)state;
    rnd_image img = make_image(97, 61, 3, 2, fill_noise);
    rnd_buf b = {0};
    assert_int_equal(rnd_encode(&img, RND_FMT_PNG, 90, &b, NULL), TSR_OK);
    assert_png_equals(&b, &img);
    rnd_buf_free(&b);
    rnd_image_free(&img);
}

static void
png_settings_all_lossless(void **state)
{
    (void)state;
    /* The tuning entry point with other filters and levels still round-trips. */
    static const int filters[] = {PNG_FILTER_NONE, PNG_FILTER_SUB, PNG_FILTER_UP, PNG_FILTER_PAETH,
                                  PNG_ALL_FILTERS};
    rnd_image img = make_image(50, 30, 3, 1, fill_texture);
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++) {
        for (int level = 0; level <= 9; level += 3) {
            rnd_buf b = {0};
            assert_int_equal(rnd__png_encode(&img, level, filters[i], &b, NULL), TSR_OK);
            assert_png_equals(&b, &img);
            rnd_buf_free(&b);
        }
    }
    rnd_image_free(&img);
}

static void
png_errors_do_not_leak(void **state)
{
    (void)state;
    rnd_image img = make_image(40, 20, 1, 0, fill_noise);
    rnd_buf b = {0};
    tsr_err err = {0};
    /* zlib refuses level 42, libpng calls png_error and longjmps back: a clean error, and
     * (under AddressSanitizer) no leak of the output buffer or the libpng structs. */
    assert_int_equal(rnd__png_encode(&img, 42, PNG_FILTER_UP, &b, &err), TSR_EINTERNAL);
    assert_int_equal(strncmp(err.msg, "png: ", 5), 0);
    assert_true(strlen(err.msg) > 5);
    assert_null(b.data);
    assert_int_equal(rnd__png_encode(&img, 42, PNG_FILTER_UP, &b, NULL), TSR_EINTERNAL);
    rnd_image_free(&img);

    /* Wider than libpng writes: a limit, not an internal error. */
    img = make_image(1000001, 1, 1, 0, fill_noise);
    assert_int_equal(rnd_encode(&img, RND_FMT_PNG, 0, &b, &err), TSR_ELIMIT);
    assert_non_null(strstr(err.msg, "1000001"));
    assert_null(b.data);
    rnd_image_free(&img);
}

/* ---------------------------------------------------------------- errors */

static void
invalid_images_rejected(void **state)
{
    (void)state;
    rnd_image good = make_image(4, 4, 1, 0, fill_gradient);
    rnd_buf b = {0};
    tsr_err err = {0};

    rnd_image bad = good;
    bad.channels = 2;
    assert_int_equal(rnd_encode(&bad, RND_FMT_JPEG, 90, &b, &err), TSR_EINVAL);
    assert_int_equal(rnd_encode(&bad, RND_FMT_PNG, 90, &b, NULL), TSR_EINVAL);
    bad = good;
    bad.width = 0;
    assert_int_equal(rnd_encode(&bad, RND_FMT_PNG, 90, &b, &err), TSR_EINVAL);
    bad = good;
    bad.stride = 3;
    assert_int_equal(rnd_encode(&bad, RND_FMT_JPEG, 90, &b, &err), TSR_EINVAL);
    bad = good;
    bad.data = NULL;
    assert_int_equal(rnd_encode(&bad, RND_FMT_PNG, 90, &b, NULL), TSR_EINVAL);
    assert_int_equal(rnd_encode(NULL, RND_FMT_PNG, 90, &b, &err), TSR_EINVAL);
    assert_int_equal(rnd_encode(&good, (rnd_format)7, 90, &b, &err), TSR_EINVAL);
    assert_non_null(strstr(err.msg, "format"));
    assert_null(b.data);
    rnd_image_free(&good);
}

/* Grey images go through TurboJPEG's raw (YUV plane) path; the bytes must be those of the
 * ordinary grey path, for padded rows and sizes that are not multiples of the 8x8 block. */
static void
jpeg_grey_same_bytes_as_compress2(void **state)
{
    (void)state;
    static const uint32_t sizes[][2] = {{67, 45}, {8, 8}, {1, 1}, {513, 77}, {16, 9}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        for (int q = 50; q <= 100; q += 25) {
            rnd_image img = make_image(sizes[k][0], sizes[k][1], 1, k % 2 ? 3 : 0, fill_texture);
            rnd_buf b = {0};
            tsr_err err = {0};
            assert_int_equal(rnd_encode(&img, RND_FMT_JPEG, q, &b, &err), TSR_OK);
            tjhandle h = tjInitCompress();
            assert_non_null(h);
            unsigned char *ref = NULL;
            unsigned long len = 0;
            assert_int_equal(tjCompress2(h, img.data, (int)img.width, (int)img.stride,
                                         (int)img.height, TJPF_GRAY, &ref, &len, TJSAMP_GRAY, q, 0),
                             0);
            assert_int_equal(b.len, len);
            assert_memory_equal(b.data, ref, len);
            tjFree(ref);
            tjDestroy(h);
            rnd_buf_free(&b);
            rnd_image_free(&img);
        }
    }
}

TSR_TEST_MAIN(cmocka_unit_test(jpeg_grey_roundtrip),
              cmocka_unit_test(jpeg_grey_same_bytes_as_compress2),
              cmocka_unit_test(jpeg_rgb_roundtrip), cmocka_unit_test(jpeg_quality_changes_size),
              cmocka_unit_test(jpeg_quality_out_of_range), cmocka_unit_test(jpeg_too_large),
              cmocka_unit_test(png_grey_lossless), cmocka_unit_test(png_rgb_lossless),
              cmocka_unit_test(png_settings_all_lossless), cmocka_unit_test(png_errors_do_not_leak),
              cmocka_unit_test(invalid_images_rejected))
