/* SPDX-License-Identifier: MIT */
/* test_data_decode.c: decoding real files from the shared corpus (../shared/dicom). Lossless
 * codecs must reproduce the uncompressed original exactly; bad input must fail cleanly. */
#include "tsr_test.h"

#include "rnd_internal.h"

#include <math.h>

static rnd_frame *
decode(const char *rel, uint32_t index, rnd_dicom **keep)
{
    rnd_dicom *d = NULL;
    rnd_frame *f = NULL;
    tsr_err err = {0};
    const char *path = tsr_test_data(rel);
    if (rnd_dicom_open(path, NULL, &d, &err) != TSR_OK) {
        fail_msg("%s: open: %s", rel, err.msg);
    }
    if (rnd_dicom_decode_frame(d, index, &f, &err) != TSR_OK) {
        fail_msg("%s: decode: %s", rel, err.msg);
    }
    if (keep) {
        *keep = d;
    } else {
        rnd_dicom_close(d);
    }
    return f;
}

static void
assert_frames_equal(const rnd_frame *a, const rnd_frame *b, const char *what)
{
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    assert_int_equal(a->samples, b->samples);
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->bytes, b->bytes);
    if (memcmp(a->data, b->data, a->bytes) != 0) {
        fail_msg("%s differs from the reference", what);
    }
}

/* Decodes frame 1 of two corpus files and asserts identical stored values. */
static void
assert_files_equal(const char *rel_a, const char *rel_b)
{
    rnd_frame *a = decode(rel_a, 0, NULL);
    rnd_frame *b = decode(rel_b, 0, NULL);
    assert_frames_equal(a, b, rel_b);
    rnd_frame_free(a);
    rnd_frame_free(b);
}

/* Reads a whole corpus file into a malloc'd buffer. */
static uint8_t *
read_file(const char *rel, size_t *len)
{
    FILE *fp = fopen(tsr_test_data(rel), "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

/* Decodes frame 1 of each file with rnd_dicom_decode_frame and again with GDCM's codecs
 * (rnd__gdcm_decode_frame, then the same interleaving and normalisation), and requires equal
 * bytes. For the codecs that replaced GDCM's. */
static void
assert_same_as_gdcm(const char *const *files, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        rnd_dicom *d = NULL;
        rnd_frame *f = decode(files[k], 0, &d);
        const rnd_info *info = rnd_dicom_info(d);
        const uint8_t *data = NULL;
        size_t len = 0;
        uint8_t *joined = NULL;
        tsr_err err = {0};
        assert_int_equal(rnd__dicom_frame_data(d, 0, &data, &len, &joined, &err), TSR_OK);
        rnd_frame *g = NULL;
        assert_int_equal(rnd_frame_alloc(f->width, f->height, f->samples, f->type, &g, &err),
                         TSR_OK);
        g->bits_stored = f->bits_stored;
        g->is_signed = f->is_signed;
        rnd_photometric pi = info->photometric;
        int planar = 0;
        assert_int_equal(rnd__gdcm_decode_frame(info, data, len, g->data, g->bytes, &pi, &planar,
                                                &err),
                         TSR_OK);
        if (planar && g->samples == 3) {
            size_t px = (size_t)g->width * g->height, bps = rnd_type_size(g->type);
            uint8_t *tmp = malloc(g->bytes);
            assert_non_null(tmp);
            memcpy(tmp, g->data, g->bytes);
            for (size_t i = 0; i < px; i++) {
                for (size_t c = 0; c < 3; c++) {
                    memcpy((uint8_t *)g->data + (i * 3 + c) * bps, tmp + (c * px + i) * bps, bps);
                }
            }
            free(tmp);
        }
        rnd__frame_normalize(g);
        assert_frames_equal(f, g, files[k]);
        free(joined);
        rnd_frame_free(f);
        rnd_frame_free(g);
        rnd_dicom_close(d);
    }
}

/* JPEG-LS is decoded by CharLS directly (rnd_codec_jls.c), since GDCM's codec leaks on corrupt
 * streams: lossless, near-lossless, signed 15-bit and RGB line-interleaved files. */
static void
jpegls_charls_equals_gdcm(void **state)
{
    (void)state;
    static const char *const files[] = {
        "color/jpegls_lossless_rgb__JLSL_RGB_ILV1.dcm",
        "large/cr_monochrome1_jpegls_near__RG1_JLSN.dcm",
        "syntax/jpegls_lossless__CT1_JLSL.dcm",
        "syntax/jpegls_lossless_signed15__JLSL_16_15_1_1F.dcm",
        "syntax/jpegls_near_lossless__CT1_JLSN.dcm",
    };
    assert_same_as_gdcm(files, sizeof files / sizeof files[0]);
}

/* Lossless JPEG (process 14) by our own decoder (rnd_codec_ljpeg.c): RGB 8-bit, signed 16-bit
 * PET, 12-bit in 16 with a selection value other than 1, and the CT1 image. */
static void
ljpeg_equals_gdcm(void **state)
{
    (void)state;
    static const char *const files[] = {
        "color/jpeg_lossless_rgb__SC_rgb_jpeg_gdcm.dcm",
        "grayscale/pet_rescale_slope__GH184.dcm",
        "syntax/jpeg_lossless_p14__JPEGLossless_1s_1f_u_16_12.dcm",
        "syntax/jpeg_lossless_sv1__CT1_JPLL.dcm",
    };
    assert_same_as_gdcm(files, sizeof files / sizeof files[0]);
}

/* 12-bit lossy JPEG by our own decoder (rnd_codec_jpeg12.c): IJG's integer inverse DCT, so
 * bit for bit what GDCM's IJG build gives; the NEMA MR sample has PVRG's Se = 0 quirk. */
static void
jpeg12_equals_gdcm(void **state)
{
    (void)state;
    static const char *const files[] = {
        "syntax/jpeg_extended_12bit__JPGExtended_NM1.dcm",
        "syntax/jpeg_extended_12bit__MR1_JPLY.dcm",
    };
    assert_same_as_gdcm(files, sizeof files / sizeof files[0]);
}

/* The NEMA CT1 image in every lossless codec equals its uncompressed original (corpus README). */
static void
lossless_ct1_equals_uncompressed(void **state)
{
    (void)state;
    rnd_frame *ref = decode("syntax/explicit_vr_le__CT1_UNC.dcm", 0, NULL);
    static const char *variants[] = {
        "syntax/jpeg_lossless_sv1__CT1_JPLL.dcm",
        "syntax/jpegls_lossless__CT1_JLSL.dcm",
        "syntax/j2k_lossless__CT1_J2KR.dcm",
        "edge/rle_multi_fragment__D_CLUNIE_CT1_RLE_FRAGS.dcm",
    };
    assert_int_equal(ref->type, RND_T_S16);
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        rnd_frame *f = decode(variants[i], 0, NULL);
        assert_frames_equal(f, ref, variants[i]);
        rnd_frame_free(f);
    }
    rnd_frame_free(ref);
}

/* JPEG-LS near-lossless stays within its NEAR bound of the original. */
static void
jpegls_near_within_bound(void **state)
{
    (void)state;
    rnd_frame *ref = decode("syntax/explicit_vr_le__CT1_UNC.dcm", 0, NULL);
    rnd_frame *f = decode("syntax/jpegls_near_lossless__CT1_JLSN.dcm", 0, NULL);
    int maxd = 0;
    const int16_t *a = ref->data, *b = f->data;
    for (size_t i = 0; i < (size_t)ref->width * ref->height; i++) {
        int dlt = abs(a[i] - b[i]);
        maxd = dlt > maxd ? dlt : maxd;
    }
    assert_true(maxd > 0);
    assert_true(maxd <= 4);
    rnd_frame_free(f);
    rnd_frame_free(ref);
}

/* Big endian, implicit VR, RLE and JPEG 2000 versions of MR_small decode to the same values. */
static void
mr_small_in_every_encoding(void **state)
{
    (void)state;
    rnd_frame *ref = decode("syntax/implicit_vr_le__MR_small_implicit.dcm", 0, NULL);
    static const char *variants[] = {
        "syntax/explicit_vr_be__MR_small_bigendian.dcm",
        "syntax/rle__MR_small_RLE.dcm",
        "syntax/j2k_lossless__MR_small_jp2klossless.dcm",
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        rnd_frame *f = decode(variants[i], 0, NULL);
        assert_frames_equal(f, ref, variants[i]);
        rnd_frame_free(f);
    }
    rnd_frame_free(ref);
}

/* Planar configuration 1 is returned interleaved: equal to the planar-0 version. */
static void
rgb_planar_configurations_agree(void **state)
{
    (void)state;
    assert_files_equal("color/rgb_planar0__color-px.dcm", "color/rgb_planar1__color-pl.dcm");
}

/* YBR_FULL (PS3.3 C.7.6.3.1.2) rendered to RGB is close to the RGB original of the same
 * picture, closer than DCMTK's 127.5-centred conversion (mean 0.90, measured). */
static void
ybr_full_close_to_rgb_original(void **state)
{
    (void)state;
    rnd_dicom *dy = NULL, *dr = NULL;
    rnd_frame *fy = decode("color/ybr_full__SC_ybr_full_uncompressed.dcm", 0, &dy);
    rnd_frame *fr = decode("color/rle_rgb__SC_rgb_rle.dcm", 0, &dr);
    rnd_image iy = {0}, ir = {0};
    tsr_err err = {0};
    assert_int_equal(rnd_render_frame(rnd_dicom_info(dy), 0, fy, NULL, &iy, NULL, &err), TSR_OK);
    assert_int_equal(rnd_render_frame(rnd_dicom_info(dr), 0, fr, NULL, &ir, NULL, &err), TSR_OK);
    assert_int_equal(iy.width, ir.width);
    long sum = 0;
    size_t n = (size_t)iy.width * iy.height * 3;
    for (size_t i = 0; i < n; i++) {
        sum += abs(iy.data[i] - ir.data[i]);
    }
    assert_true((double)sum / (double)n < 0.7);
    rnd_image_free(&iy);
    rnd_image_free(&ir);
    rnd_frame_free(fy);
    rnd_frame_free(fr);
    rnd_dicom_close(dy);
    rnd_dicom_close(dr);
}

/* One frame of a 96-frame JPEG cine decodes alone; frames differ; past the end is ENOTFOUND. */
static void
multiframe_single_frame_access(void **state)
{
    (void)state;
    rnd_dicom *d = NULL;
    rnd_frame *first = decode("multiframe/xa_cine_jpeg_96f__HasFragmentSequence.dcm", 0, &d);
    rnd_frame *last = NULL;
    tsr_err err = {0};
    assert_int_equal(rnd_dicom_info(d)->frames, 96);
    assert_int_equal(rnd_dicom_decode_frame(d, 95, &last, &err), TSR_OK);
    assert_int_not_equal(memcmp(first->data, last->data, first->bytes), 0);
    rnd_frame *none = NULL;
    assert_int_equal(rnd_dicom_decode_frame(d, 96, &none, &err), TSR_ENOTFOUND);
    assert_null(none);
    assert_non_null(strstr(err.msg, "frame 97"));
    assert_int_equal(rnd_dicom_decode_frame(d, 96, &none, NULL), TSR_ENOTFOUND);
    rnd_frame_free(first);
    rnd_frame_free(last);
    rnd_dicom_close(d);
}

/* BitsAllocated 1 frames are not byte aligned (PS3.5 8.1.1): every frame holds only 0/1. */
static void
one_bit_segmentation(void **state)
{
    (void)state;
    rnd_dicom *d = NULL;
    rnd_frame *f = decode("edge/seg_1bit_3f__liver_nonbyte_aligned.dcm", 2, &d);
    size_t ones = 0;
    const uint8_t *p = f->data;
    for (size_t i = 0; i < f->bytes; i++) {
        assert_true(p[i] <= 1);
        ones += p[i];
    }
    assert_true(ones > 0);
    rnd_frame_free(f);
    rnd_dicom_close(d);
}

/* Opening from memory gives the same attributes and pixels as opening the file. */
static void
open_mem_equals_open_file(void **state)
{
    (void)state;
    size_t n;
    uint8_t *buf = read_file("syntax/j2k_lossless__CT1_J2KR.dcm", &n);
    rnd_dicom *d = NULL;
    tsr_err err = {0};
    assert_int_equal(rnd_dicom_open_mem(buf, n, NULL, &d, &err), TSR_OK);
    free(buf); /* the handle must not depend on the caller's buffer */
    rnd_frame *a = NULL;
    assert_int_equal(rnd_dicom_decode_frame(d, 0, &a, &err), TSR_OK);
    rnd_frame *b = decode("syntax/j2k_lossless__CT1_J2KR.dcm", 0, NULL);
    assert_frames_equal(a, b, "open_mem");
    rnd_frame_free(a);
    rnd_frame_free(b);
    rnd_dicom_close(d);
}

/* Every file in bad/ fails to open or to decode with a message; nothing crashes. */
static void
bad_files_fail_cleanly(void **state)
{
    (void)state;
    static const struct {
        const char *rel;
        const char *expect; /* a substring of the message */
    } k_bad[] = {
        {"bad/bad_vr__badVR.dcm", "NumberOfFrames"},
        {"bad/bits_allocated_12__GH340.dcm", "BitsAllocated 12"},
        {"bad/j2k_pixeldata_too_short__emri_small_jpeg_2k_lossless_too_short.dcm", "truncated"},
        {"bad/j2k_sequence_delimiter_in_codestream__JPEG2000-embedded-sequence-delimiter.dcm",
         "JPEG 2000"},
        {"bad/no_file_meta__no_meta.dcm", "malformed"},
        {"bad/not_dicom_gzip__zipMR.gz", "malformed"},
        {"bad/truncated_nonimage__rtplan_truncated.dcm", "truncated"},
        {"bad/truncated_pixeldata__MR_truncated.dcm", "truncated"},
        {"syntax/htj2k_lossless__HTJ2KLossless_08_RGB.dcm", "unsupported transfer syntax"},
        {"syntax/deflated_image_frame__liver_nonbyte_aligned_deflate.dcm",
         "unsupported transfer syntax 1.2.840.10008.1.2.8.1"},
    };
    for (size_t i = 0; i < sizeof k_bad / sizeof k_bad[0]; i++) {
        rnd_dicom *d = NULL;
        rnd_frame *f = NULL;
        tsr_err err = {0};
        int rc = rnd_dicom_open(tsr_test_data(k_bad[i].rel), NULL, &d, &err);
        if (rc == TSR_OK) {
            rc = rnd_dicom_decode_frame(d, 0, &f, &err);
            assert_null(f);
        } else {
            assert_null(d);
        }
        if (rc == TSR_OK || !strstr(err.msg, k_bad[i].expect)) {
            fail_msg("%s: rc %d, message '%s', expected '%s'", k_bad[i].rel, rc, err.msg,
                     k_bad[i].expect);
        }
        rnd_dicom_close(d);
    }
}

/* The bad JPEG 12-bit file with SOS Se=0 is decoded anyway, as DCMTK and GDCM do. */
static void
jpeg_sos_quirk_still_decodes(void **state)
{
    (void)state;
    assert_files_equal("syntax/jpeg_extended_12bit__JPGExtended_NM1.dcm",
                       "bad/jpeg_sos_se0__JPEG-lossy_NM1.dcm");
}

/* Garbage and truncated buffers never crash and always say why. */
static void
garbage_and_truncation(void **state)
{
    (void)state;
    size_t n;
    uint8_t *buf = read_file("syntax/explicit_vr_le__CT_small.dcm", &n);
    tsr_err err = {0};
    rnd_dicom *d = NULL;
    /* every truncation length on a coarse grid, plus the last bytes one by one */
    for (size_t len = 0; len < n; len += (len < n - 64 ? 97 : 1)) {
        memset(&err, 0, sizeof err);
        int rc = rnd_dicom_open_mem(buf, len, NULL, &d, &err);
        if (rc == TSR_OK) {
            rnd_frame *f = NULL;
            rc = rnd_dicom_decode_frame(d, 0, &f, &err);
            rnd_frame_free(f);
            rnd_dicom_close(d);
            d = NULL;
        }
        if (rc != TSR_OK) {
            assert_true(err.msg[0] != '\0');
        }
    }
    uint8_t junk[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (uint8_t)(x >> 16);
    }
    assert_int_not_equal(rnd_dicom_open_mem(junk, sizeof junk, NULL, &d, &err), TSR_OK);
    assert_null(d);
    assert_int_not_equal(rnd_dicom_open_mem(junk, sizeof junk, NULL, &d, NULL), TSR_OK);
    assert_int_equal(rnd_dicom_open("/nonexistent/file.dcm", NULL, &d, &err), TSR_ENOTFOUND);
    assert_int_equal(rnd_dicom_open("/nonexistent/file.dcm", NULL, &d, NULL), TSR_ENOTFOUND);
    free(buf);
}

/* Limits are checked before allocation: a frame over max_pixels is refused at open. */
static void
limits_refuse_before_allocation(void **state)
{
    (void)state;
    rnd_limits lim;
    rnd_limits_default(&lim);
    lim.max_pixels = 512 * 511;
    rnd_dicom *d = NULL;
    tsr_err err = {0};
    assert_int_equal(
        rnd_dicom_open(tsr_test_data("syntax/explicit_vr_le__CT1_UNC.dcm"), &lim, &d, &err),
        TSR_ELIMIT);
    assert_null(d);
    assert_non_null(strstr(err.msg, "limit"));
    rnd_limits_default(&lim);
    lim.max_frames = 10;
    assert_int_equal(
        rnd_dicom_open(tsr_test_data("multiframe/xa_cine_jpeg_96f__HasFragmentSequence.dcm"), &lim,
                       &d, &err),
        TSR_ELIMIT);
    rnd_limits_default(&lim);
    lim.max_bytes = 1000;
    assert_int_equal(
        rnd_dicom_open(tsr_test_data("syntax/explicit_vr_le__CT_small.dcm"), &lim, &d, &err),
        TSR_ELIMIT);
}

/* Attributes read from real files: windows, VOI LUT, modality LUT, palette, per-frame. */
static void
attributes_of_real_files(void **state)
{
    (void)state;
    rnd_dicom *d = NULL;
    tsr_err err = {0};
    assert_int_equal(
        rnd_dicom_open(tsr_test_data("grayscale/voi_lut_sequence__vlut_04.dcm"), NULL, &d, &err),
        TSR_OK);
    assert_true(rnd_dicom_info(d)->n_voi_luts >= 1);
    rnd_dicom_close(d);
    assert_int_equal(rnd_dicom_open(tsr_test_data("grayscale/modality_lut_sequence__mlut_18.dcm"),
                                    NULL, &d, &err),
                     TSR_OK);
    assert_non_null(rnd_dicom_info(d)->modality_lut.data);
    rnd_dicom_close(d);
    /* empty LUT items are ignored, not applied */
    assert_int_equal(
        rnd_dicom_open(tsr_test_data("syntax/rle_gray16__leadtools-flowers-16-mono2-rle.dcm"), NULL,
                       &d, &err),
        TSR_OK);
    assert_null(rnd_dicom_info(d)->modality_lut.data);
    assert_int_equal(rnd_dicom_info(d)->n_voi_luts, 0);
    rnd_dicom_close(d);
    assert_int_equal(
        rnd_dicom_open(tsr_test_data("color/palette_16bit_segmented__gdcm-US-ALOKA-16.dcm"), NULL,
                       &d, &err),
        TSR_OK);
    const rnd_info *in = rnd_dicom_info(d);
    assert_int_equal(in->photometric, RND_PI_PALETTE_COLOR);
    for (int c = 0; c < 3; c++) {
        assert_non_null(in->palette[c].data);
        assert_int_equal(in->palette[c].bits, 16);
    }
    rnd_dicom_close(d);
    assert_int_equal(
        rnd_dicom_open(tsr_test_data("multiframe/enhanced_mr_12f__BRMULTI.dcm"), NULL, &d, &err),
        TSR_OK);
    in = rnd_dicom_info(d);
    assert_non_null(in->frame_meta);
    assert_true(in->frame_meta[0].has_window);
    assert_true(in->frame_meta[0].window.center == 308.0);
    assert_true(in->frame_meta[0].window.width == 545.0);
    rnd_dicom_close(d);
}

/* The mean of the k x k block of S16 frame `f` at (x0, y0), clipped to the frame. */
static double
box_average(const rnd_frame *f, uint32_t x0, uint32_t y0, uint32_t k)
{
    const int16_t *a = f->data;
    double box = 0.0;
    int n = 0;
    for (uint32_t v = y0; v < y0 + k && v < f->height; v++) {
        for (uint32_t u = x0; u < x0 + k && u < f->width; u++) {
            box += a[(size_t)v * f->width + u];
            n++;
        }
    }
    return n ? box / n : 0.0;
}

/* A reduced JPEG 2000 decode (OpenJPEG's reduce factor) is ceil(size / 2^r) per side, clamped
 * to the codestream's decomposition levels, and close to the box average of the full decode
 * (the 5/3 wavelet's low-pass is not a box filter, so "close" is a bound on the mean error).
 * Other codecs ignore the request and decode at full size. */
static void
j2k_reduced_decode(void **state)
{
    (void)state;
    rnd_dicom *d = NULL;
    rnd_frame *full = decode("syntax/j2k_lossless__CT1_J2KR.dcm", 0, &d);
    assert_int_equal(full->type, RND_T_S16);
    for (int want = 1; want <= 20; want += want < 3 ? 1 : 17) {
        rnd_frame *f = NULL;
        int r = -1;
        tsr_err err = {0};
        assert_int_equal(rnd_dicom_decode_frame_reduced(d, 0, want, &f, &r, &err), TSR_OK);
        if (want <= 3) {
            assert_int_equal(r, want);
        } else {
            assert_true(r >= 3 && r < want); /* clamped to the decomposition levels */
        }
        uint32_t k = 1u << r;
        assert_int_equal(f->width, (full->width + k - 1) / k);
        assert_int_equal(f->height, (full->height + k - 1) / k);
        assert_true(f->has_range);
        /* Where the reduced pixels sit: the wavelet's low-pass sample i is centred on full
         * resolution sample k * i (the even samples), so it matches the k x k box centred
         * there (offset -k/2), not the box [k i, k (i + 1)) of the pyramid's own levels, which
         * is half a reduced pixel further right and down. Measured on CT1, mean |difference|
         * for offsets -k/2, 0, +k/2: r = 1: 26, 26, 60; r = 2: 37, 62, 114; r = 3: 60, 118,
         * 198; r = 5: 162, 335, 548. The assertions: the centred box fits within r% of the value
         * range (the filters part more at coarser levels), and the
         * boxes displaced by a further k/2 each fit clearly worse. */
        double e[3] = {0.0, 0.0, 0.0};
        int half = (int)k / 2;
        for (uint32_t y = 1; y + 1 < f->height; y++) {
            for (uint32_t x = 1; x + 1 < f->width; x++) {
                double bv = ((const int16_t *)f->data)[y * f->width + x];
                e[0] +=
                    fabs(bv - box_average(full, x * k - (uint32_t)half, y * k - (uint32_t)half, k));
                e[1] += fabs(bv - box_average(full, x * k, y * k, k));
                e[2] +=
                    fabs(bv - box_average(full, x * k + (uint32_t)half, y * k + (uint32_t)half, k));
            }
        }
        double range = (double)(full->range_hi - full->range_lo);
        double n = (double)(f->width - 2) * (f->height - 2);
        if (e[0] / n > 0.01 * r * range || e[2] < 1.4 * e[0] || (r >= 2 && e[1] < 1.4 * e[0])) {
            fail_msg("reduce %d: mean |reduced - box| at offsets -k/2, 0, +k/2: %.2f %.2f %.2f "
                     "(range %.0f)",
                     r, e[0] / n, e[1] / n, e[2] / n, range);
        }
        rnd_frame_free(f);
    }
    rnd_frame_free(full);
    rnd_dicom_close(d);

    /* not JPEG 2000: full size, nothing applied */
    rnd_frame *u = decode("syntax/explicit_vr_le__CT1_UNC.dcm", 0, &d);
    rnd_frame *f = NULL;
    int r = -1;
    assert_int_equal(rnd_dicom_decode_frame_reduced(d, 0, 3, &f, &r, NULL), TSR_OK);
    assert_int_equal(r, 0);
    assert_frames_equal(f, u, "reduce on an uncompressed file");
    rnd_frame_free(f);
    rnd_frame_free(u);
    rnd_dicom_close(d);
}

TSR_TEST_MAIN(
    cmocka_unit_test(lossless_ct1_equals_uncompressed), cmocka_unit_test(j2k_reduced_decode),
    cmocka_unit_test(jpegls_charls_equals_gdcm), cmocka_unit_test(ljpeg_equals_gdcm),
    cmocka_unit_test(jpeg12_equals_gdcm), cmocka_unit_test(jpegls_near_within_bound),
    cmocka_unit_test(mr_small_in_every_encoding), cmocka_unit_test(rgb_planar_configurations_agree),
    cmocka_unit_test(ybr_full_close_to_rgb_original),
    cmocka_unit_test(multiframe_single_frame_access), cmocka_unit_test(one_bit_segmentation),
    cmocka_unit_test(open_mem_equals_open_file), cmocka_unit_test(bad_files_fail_cleanly),
    cmocka_unit_test(jpeg_sos_quirk_still_decodes), cmocka_unit_test(garbage_and_truncation),
    cmocka_unit_test(limits_refuse_before_allocation), cmocka_unit_test(attributes_of_real_files))
