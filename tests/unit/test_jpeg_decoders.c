/* SPDX-License-Identifier: MIT */
/* Our JPEG decoders on streams made here.
 *
 * The lossless decoder (render/rnd_codec_ljpeg.c) on every predictor: a demo CT slice compressed
 * by DCMTK's dcmcjpeg with selection values 1..7 (and a point transform) decodes to the
 * original's samples exactly (with the low bits the point transform drops cleared).
 *
 * The sequential DCT decoder (render/rnd_codec_jpeg12.c) on streams made with libjpeg-turbo:
 * restart intervals, odd sizes, several scans, colour (to RGB, with its upsampling), and
 * corrupt streams.
 *
 * libjpeg-turbo writes 8-bit streams only, which the decoder reads too (PASS1_BITS 2 of the same
 * integer inverse DCT). Its entropy decoding, restart handling and block layout do not depend on
 * the precision, so these tests pin them down against libjpeg-turbo's own "islow" decode, bit for
 * bit; the 12-bit arithmetic is pinned against GDCM on the corpus files (test_data_decode.c,
 * jpeg12_equals_gdcm). */
#include "demo.h"
#include "rnd_internal.h"
#include "tsr_test.h"

#include <jpeglib.h>

/* ---------------------------------------------------------------- lossless, every predictor */

static rnd_frame *
decode_file(const char *path)
{
    rnd_dicom *d = NULL;
    rnd_frame *f = NULL;
    tsr_err err = {0};
    if (rnd_dicom_open(path, NULL, &d, &err) != TSR_OK ||
        rnd_dicom_decode_frame(d, 0, &f, &err) != TSR_OK) {
        fail_msg("%s: %s", path, err.msg);
    }
    rnd_dicom_close(d);
    return f;
}

static void
ljpeg_every_predictor_is_lossless(void **state)
{
    (void)state;
    if (system("command -v dcmcjpeg >/dev/null 2>&1") != 0) {
        if (getenv("CI")) {
            fail_msg("dcmcjpeg (Debian package dcmtk) is missing under CI");
        }
        skip();
    }
    char dir[256];
    assert_int_equal(tsr_test_tmpdir(dir, sizeof dir, "ljpeg"), 0);
    tsr_err err = {0};
    assert_int_equal(demo_ct_series(dir, 1, NULL, &err), TSR_OK);
    char src[512], dst[512], cmd[1400];
    snprintf(src, sizeof src, "%s/CT_0001.dcm", dir);
    rnd_frame *orig = decode_file(src);
    assert_int_equal(orig->type, RND_T_S16);
    for (int sv = 1; sv <= 8; sv++) {
        int pt = sv == 8 ? 3 : 0; /* the last round: predictor 1 with a point transform */
        snprintf(dst, sizeof dst, "%s/sv%d.dcm", dir, sv);
        snprintf(cmd, sizeof cmd, "dcmcjpeg +el +sv %d +pt %d '%s' '%s'", sv == 8 ? 1 : sv, pt, src,
                 dst);
        assert_int_equal(system(cmd), 0);
        rnd_frame *got = decode_file(dst);
        assert_int_equal(got->bytes, orig->bytes);
        const int16_t *a = orig->data, *b = got->data;
        size_t diffs = 0, n = (size_t)orig->width * orig->height;
        for (size_t i = 0; i < n; i++) {
            diffs += b[i] != (int16_t)(uint16_t)((uint16_t)a[i] & (uint16_t)(0xFFFFu << pt));
        }
        if (diffs) {
            fprintf(stderr, "selection value %d, point transform %d: %zu samples differ\n",
                    sv == 8 ? 1 : sv, pt, diffs);
        }
        assert_int_equal(diffs, 0);
        rnd_frame_free(got);
    }
    rnd_frame_free(orig);
    assert_int_equal(tsr_test_rmtree(dir), 0);
}

/* ---------------------------------------------------------------- sequential DCT */

typedef struct enc_opts {
    int comps;        /* 1 grey, 3 YCbCr */
    int h0, v0;       /* sampling of component 0 (colour) */
    int restart;      /* MCUs per interval, 0: none */
    int restart_rows; /* MCU rows per interval (libjpeg's restart_in_rows) */
    int per_comp_scans;
    int quality;
} enc_opts;

/* A test image: gradients, an edge and noise, so that blocks have many AC coefficients. */
static uint8_t *
make_pixels(unsigned w, unsigned h, int comps)
{
    uint8_t *p = malloc((size_t)w * h * comps);
    assert_non_null(p);
    uint32_t seed = 12345;
    for (unsigned y = 0; y < h; y++) {
        for (unsigned x = 0; x < w; x++) {
            for (int c = 0; c < comps; c++) {
                seed = seed * 1103515245u + 12345u;
                int v = (int)((x * 3 + y * 2 + (unsigned)c * 40) & 255);
                v = (x > w / 2 && y < h / 3) ? 255 - v : v;
                v += (int)((seed >> 16) % 21) - 10;
                p[((size_t)y * w + x) * comps + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
    }
    return p;
}

static uint8_t *
encode(const uint8_t *px, unsigned w, unsigned h, const enc_opts *o, size_t *len)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *out = NULL;
    unsigned long outlen = 0;
    jpeg_mem_dest(&c, &out, &outlen);
    c.image_width = w;
    c.image_height = h;
    c.input_components = o->comps;
    c.in_color_space = o->comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, o->quality, TRUE);
    if (o->comps == 3) {
        c.comp_info[0].h_samp_factor = o->h0;
        c.comp_info[0].v_samp_factor = o->v0;
    }
    c.restart_interval = (unsigned)o->restart;
    c.restart_in_rows = o->restart_rows;
    if (o->per_comp_scans && o->comps == 3) {
        static jpeg_scan_info scans[3];
        for (int k = 0; k < 3; k++) {
            scans[k].comps_in_scan = 1;
            scans[k].component_index[0] = k;
            scans[k].Ss = 0;
            scans[k].Se = 63;
            scans[k].Ah = scans[k].Al = 0;
        }
        c.scan_info = scans;
        c.num_scans = 3;
    }
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < h) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * o->comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    *len = outlen;
    return out;
}

/* libjpeg-turbo's decode with the integer inverse DCT, grey (comps 1) or RGB (comps 3, with its
 * default fancy upsampling). */
static uint8_t *
reference(const uint8_t *jpg, size_t len, unsigned w, unsigned h, int comps)
{
    struct jpeg_decompress_struct d;
    struct jpeg_error_mgr e;
    d.err = jpeg_std_error(&e);
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, jpg, (unsigned long)len);
    assert_int_equal(jpeg_read_header(&d, TRUE), JPEG_HEADER_OK);
    d.dct_method = JDCT_ISLOW;
    d.out_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&d);
    assert_int_equal(d.output_width, w);
    assert_int_equal(d.output_height, h);
    uint8_t *out = malloc((size_t)w * h * comps);
    assert_non_null(out);
    while (d.output_scanline < h) {
        JSAMPROW row = out + (size_t)d.output_scanline * w * comps;
        jpeg_read_scanlines(&d, &row, 1);
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    return out;
}

static rnd_info
info_for(unsigned w, unsigned h, int comps)
{
    rnd_info info;
    memset(&info, 0, sizeof info);
    snprintf(info.transfer_syntax, sizeof info.transfer_syntax, "%s", "1.2.840.10008.1.2.4.51");
    info.rows = h;
    info.columns = w;
    info.samples_per_pixel = (uint16_t)comps;
    info.bits_allocated = 16;
    info.bits_stored = 12;
    info.high_bit = 11;
    info.photometric = comps == 1 ? RND_PI_MONOCHROME2 : RND_PI_YBR_FULL;
    return info;
}

/* Decodes with rnd__jpeg12_decode into a 16-bit frame; returns its rc. */
static int
decode_ours(const uint8_t *jpg, size_t len, unsigned w, unsigned h, int comps, rnd_frame **out,
            tsr_err *err)
{
    rnd_info info = info_for(w, h, comps);
    tsr_err e0 = {0};
    assert_int_equal(rnd_frame_alloc(w, h, (uint16_t)comps, RND_T_U16, out, &e0), TSR_OK);
    return rnd__jpeg12_decode(&info, jpg, len, *out, err);
}

static void
assert_grey_equal(unsigned w, unsigned h, const enc_opts *o)
{
    uint8_t *px = make_pixels(w, h, 1);
    size_t len = 0;
    uint8_t *jpg = encode(px, w, h, o, &len);
    uint8_t *ref = reference(jpg, len, w, h, 1);
    rnd_frame *f = NULL;
    tsr_err err = {0};
    assert_int_equal(decode_ours(jpg, len, w, h, 1, &f, &err), TSR_OK);
    const uint16_t *got = f->data;
    size_t diffs = 0;
    for (size_t i = 0; i < (size_t)w * h; i++) {
        diffs += got[i] != ref[i];
    }
    if (diffs) {
        fprintf(stderr, "%ux%u restart %d: %zu samples differ from libjpeg-turbo\n", w, h,
                o->restart, diffs);
    }
    assert_int_equal(diffs, 0);
    rnd_frame_free(f);
    free(ref);
    free(jpg);
    free(px);
}

/* Odd sizes (partial blocks at the right and bottom), with and without restart intervals,
 * and at a high quality where most AC coefficients are coded. */
static void
grey_equals_libjpeg_islow(void **state)
{
    (void)state;
    const enc_opts plain = {.comps = 1, .quality = 85};
    assert_grey_equal(8, 8, &plain);
    assert_grey_equal(75, 53, &plain);
    assert_grey_equal(256, 130, &(enc_opts){.comps = 1, .quality = 100});
    assert_grey_equal(75, 53, &(enc_opts){.comps = 1, .quality = 85, .restart = 1});
    assert_grey_equal(75, 53, &(enc_opts){.comps = 1, .quality = 85, .restart = 7});
    assert_grey_equal(200, 37, &(enc_opts){.comps = 1, .quality = 60, .restart_rows = 1});
}

/* Colour to RGB against libjpeg-turbo, bit for bit: 4:4:4, 4:2:2 and 4:2:0 (IJG's fancy
 * upsampling filters), interleaved with restarts and one scan per component, odd sizes; and
 * 4:1:1, which IJG (and we) upsample by replication. */
static void
colour_equals_libjpeg(void **state)
{
    (void)state;
    const enc_opts cases[] = {
        {.comps = 3, .h0 = 1, .v0 = 1, .restart = 3, .quality = 90},
        {.comps = 3, .h0 = 2, .v0 = 1, .quality = 90},
        {.comps = 3, .h0 = 2, .v0 = 1, .per_comp_scans = 1, .restart = 2, .quality = 75},
        {.comps = 3, .h0 = 2, .v0 = 2, .restart = 3, .quality = 90},
        {.comps = 3, .h0 = 4, .v0 = 1, .quality = 90},
    };
    const unsigned w = 61, h = 45;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        uint8_t *px = make_pixels(w, h, 3);
        size_t len = 0;
        uint8_t *jpg = encode(px, w, h, &cases[k], &len);
        uint8_t *ref = reference(jpg, len, w, h, 3);
        rnd_frame *f = NULL;
        tsr_err err = {0};
        assert_int_equal(decode_ours(jpg, len, w, h, 3, &f, &err), TSR_OK);
        assert_int_equal(f->photometric, RND_PI_RGB);
        const uint16_t *got = f->data;
        size_t diffs = 0;
        for (size_t i = 0; i < (size_t)w * h * 3; i++) {
            diffs += got[i] != ref[i];
        }
        if (diffs) {
            fprintf(stderr, "colour case %zu: %zu samples differ from libjpeg-turbo\n", k, diffs);
        }
        assert_int_equal(diffs, 0);
        rnd_frame_free(f);
        free(ref);
        free(jpg);
        free(px);
    }
}

/* Finds the n-th (0-based) marker FF lo..hi after the first SOS. */
static size_t
find_marker(const uint8_t *p, size_t len, uint8_t lo, uint8_t hi, int n)
{
    size_t sos = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (p[i] == 0xFF && p[i + 1] == 0xDA) {
            sos = i;
            break;
        }
    }
    for (size_t i = sos + 2; i + 1 < len; i++) {
        if (p[i] == 0xFF && p[i + 1] >= lo && p[i + 1] <= hi && n-- == 0) {
            return i;
        }
    }
    fail_msg("marker not found");
    return 0;
}

static void
expect_error(const uint8_t *jpg, size_t len, unsigned w, unsigned h, int comps, int code,
             const char *text)
{
    rnd_frame *f = NULL;
    tsr_err err = {0};
    int rc = decode_ours(jpg, len, w, h, comps, &f, &err);
    if (rc != code || !strstr(err.msg, text)) {
        fprintf(stderr, "want %d \"%s\", got %d \"%s\"\n", code, text, rc, err.msg);
    }
    assert_int_equal(rc, code);
    assert_non_null(strstr(err.msg, text));
    rnd_frame_free(f);
}

/* Every malformation gives its own error (and, under ASan, leaks nothing). */
static void
corrupt_streams_fail_cleanly(void **state)
{
    (void)state;
    const unsigned w = 75, h = 53;
    uint8_t *px = make_pixels(w, h, 1);
    size_t len = 0;
    uint8_t *jpg = encode(px, w, h, &(enc_opts){.comps = 1, .quality = 85, .restart = 5}, &len);
    uint8_t *bad = malloc(len);
    assert_non_null(bad);

    /* a restart marker out of order (RST1 where RST0 belongs) */
    memcpy(bad, jpg, len);
    bad[find_marker(bad, len, 0xD0, 0xD7, 0) + 1] = 0xD1;
    expect_error(bad, len, w, h, 1, TSR_ECORRUPT, "restart marker");

    /* a Huffman code no table has: all-ones bits right after SOS's header */
    memcpy(bad, jpg, len);
    for (size_t i = 0; i + 1 < len; i++) {
        if (bad[i] == 0xFF && bad[i + 1] == 0xDA) {
            size_t data = i + 2 + ((size_t)bad[i + 2] << 8 | bad[i + 3]);
            bad[data] = 0xFF;
            bad[data + 1] = 0x00; /* stuffed: 8 one bits */
            bad[data + 2] = 0xFF;
            bad[data + 3] = 0x00;
            break;
        }
    }
    expect_error(bad, len, w, h, 1, TSR_ECORRUPT, "invalid Huffman code");

    /* the image size disagrees with the DICOM header */
    expect_error(jpg, len, w + 1, h, 1, TSR_ECORRUPT, "the image 76x53");
    /* three components expected, one present */
    expect_error(jpg, len, w, h, 3, TSR_ECORRUPT, "component");
    /* cut just before the scan */
    size_t sos_at = 0;
    while (!(jpg[sos_at] == 0xFF && jpg[sos_at + 1] == 0xDA)) {
        sos_at++;
    }
    expect_error(jpg, sos_at, w, h, 1, TSR_ECORRUPT, "no scan before the end");
    /* no SOI */
    expect_error(jpg + 2, len - 2, w, h, 1, TSR_ECORRUPT, "no SOI marker");

    /* a progressive frame: not this transfer syntax's process */
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    unsigned char *prog = NULL;
    unsigned long plen = 0;
    jpeg_mem_dest(&c, &prog, &plen);
    c.image_width = w;
    c.image_height = h;
    c.input_components = 1;
    c.in_color_space = JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < h) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    expect_error(prog, plen, w, h, 1, TSR_EUNSUPP, "SOF2");
    free(prog);

    /* the quantization table the frame names is missing: DQT renamed to COM */
    memcpy(bad, jpg, len);
    for (size_t i = 0; i + 1 < len; i++) {
        if (bad[i] == 0xFF && bad[i + 1] == 0xDB) {
            bad[i + 1] = 0xFE;
            break;
        }
    }
    expect_error(bad, len, w, h, 1, TSR_ECORRUPT, "quantization table is missing");

    /* every truncation either decodes (zero bits, as IJG) or fails with an error */
    for (size_t cut = 0; cut < len; cut += 7) {
        rnd_frame *f = NULL;
        tsr_err err = {0};
        int rc = decode_ours(jpg, cut, w, h, 1, &f, &err);
        assert_true(rc == TSR_OK || (rc == TSR_ECORRUPT && err.msg[0]));
        rnd_frame_free(f);
    }
    free(bad);
    free(jpg);
    free(px);
}

TSR_TEST_MAIN(cmocka_unit_test(ljpeg_every_predictor_is_lossless),
              cmocka_unit_test(grey_equals_libjpeg_islow), cmocka_unit_test(colour_equals_libjpeg),
              cmocka_unit_test(corrupt_streams_fail_cleanly))
