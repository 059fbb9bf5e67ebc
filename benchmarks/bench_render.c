/* SPDX-License-Identifier: MIT */
/* bench_render.c: per-stage timings of the render core on one 512x512 16-bit CT frame (NEMA CT1
 * in every codec from the shared corpus), single-threaded, medians over many runs.
 *
 * usage: bench_render [CORPUS_DIR] [RUNS]
 *
 * For the codecs where Tessera calls a library directly (JPEG 2000 via OpenJPEG, RLE via our own
 * decoder) the same frame is also decoded through GDCM's codec, so the faster path is a
 * measured choice. Whole render = decode (uncompressed) + VOI + JPEG q90, compared with the
 * TurboJPEG encode of the same 8-bit image alone. */
#define _POSIX_C_SOURCE 200809L
#include "rnd_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int g_runs = 200;

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double
median_ms(uint64_t *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_u64);
    return (n % 2 ? (double)t[n / 2] : 0.5 * (double)(t[n / 2 - 1] + t[n / 2])) / 1e6;
}

static void
die(const char *what, const tsr_err *e)
{
    fprintf(stderr, "bench_render: %s: %s\n", what, e ? e->msg : "");
    exit(1);
}

static rnd_dicom *
open_or_die(const char *corpus, const char *rel)
{
    char path[4096];
    tsr_err err = {0};
    rnd_dicom *d = NULL;
    snprintf(path, sizeof path, "%s/%s", corpus, rel);
    if (rnd_dicom_open(path, NULL, &d, &err) != TSR_OK) {
        die(path, &err);
    }
    return d;
}

/* Median time to decode frame 1 through rnd_dicom_decode_frame. */
static double
bench_decode(rnd_dicom *d)
{
    uint64_t *t = malloc(sizeof *t * (size_t)g_runs);
    tsr_err err = {0};
    for (int i = 0; i < g_runs; i++) {
        rnd_frame *f = NULL;
        uint64_t t0 = tsr_now_ns();
        if (rnd_dicom_decode_frame(d, 0, &f, &err) != TSR_OK) {
            die("decode", &err);
        }
        t[i] = tsr_now_ns() - t0;
        rnd_frame_free(f);
    }
    double m = median_ms(t, g_runs);
    free(t);
    return m;
}

/* Median time to decode the same frame's compressed bytes through GDCM's codecs. */
static double
bench_decode_gdcm(const rnd_dicom *d)
{
    const rnd_info *info = rnd_dicom_info(d);
    const uint8_t *data;
    uint8_t *joined;
    size_t len;
    tsr_err err = {0};
    if (rnd__dicom_frame_data(d, 0, &data, &len, &joined, &err) != TSR_OK) {
        die("frame data", &err);
    }
    size_t out_len = (size_t)info->rows * info->columns * info->samples_per_pixel *
                     (info->bits_allocated / 8);
    void *out = malloc(out_len);
    uint64_t *t = malloc(sizeof *t * (size_t)g_runs);
    for (int i = 0; i < g_runs; i++) {
        rnd_photometric pi;
        int planar;
        uint64_t t0 = tsr_now_ns();
        if (rnd__gdcm_decode_frame(info, data, len, out, out_len, &pi, &planar, &err) !=
            TSR_OK) {
            die("gdcm decode", &err);
        }
        t[i] = tsr_now_ns() - t0;
    }
    double m = median_ms(t, g_runs);
    free(t);
    free(out);
    free(joined);
    return m;
}

int
main(int argc, char **argv)
{
    const char *corpus = argc > 1 ? argv[1] : "../shared/dicom";
    if (argc > 2) {
        g_runs = atoi(argv[2]);
        if (g_runs < 5) {
            g_runs = 5;
        }
    }
    static const struct {
        const char *name, *rel;
        int gdcm_peer;
    } k_codecs[] = {
        {"uncompressed (explicit VR LE)", "syntax/explicit_vr_le__CT1_UNC.dcm", 0},
        {"RLE lossless (Tessera)", "edge/rle_multi_fragment__D_CLUNIE_CT1_RLE_FRAGS.dcm", 1},
        {"JPEG lossless SV1 (Tessera)", "syntax/jpeg_lossless_sv1__CT1_JPLL.dcm", 1},
        {"JPEG-LS lossless (CharLS)", "syntax/jpegls_lossless__CT1_JLSL.dcm", 1},
        {"JPEG 2000 lossless (OpenJPEG)", "syntax/j2k_lossless__CT1_J2KR.dcm", 1},
        /* not CT1: the NEMA MR1 sample, 512x512 12-bit, the only lossy 12-bit one at that size */
        {"12-bit lossy JPEG, MR1 (Tessera)", "syntax/jpeg_extended_12bit__MR1_JPLY.dcm", 1},
    };
    printf("Tessera render-core benchmark: 512x512 16-bit CT (NEMA CT1), 1 thread, median of %d "
           "runs\n\n",
           g_runs);
    printf("%-40s %10s\n", "stage", "median ms");
    for (size_t i = 0; i < sizeof k_codecs / sizeof k_codecs[0]; i++) {
        rnd_dicom *d = open_or_die(corpus, k_codecs[i].rel);
        printf("decode %-33s %10.3f\n", k_codecs[i].name, bench_decode(d));
        if (k_codecs[i].gdcm_peer) {
            printf("decode %-33s %10.3f\n", "  same frame through GDCM's codec",
                   bench_decode_gdcm(d));
        }
        rnd_dicom_close(d);
    }

    /* Stages on the uncompressed frame. */
    rnd_dicom *d = open_or_die(corpus, "syntax/explicit_vr_le__CT1_UNC.dcm");
    const rnd_info *info = rnd_dicom_info(d);
    tsr_err err = {0};
    rnd_frame *f = NULL;
    if (rnd_dicom_decode_frame(d, 0, &f, &err) != TSR_OK) {
        die("decode", &err);
    }
    rnd_voi_req voi = {.mode = RND_VOI_MODE_WINDOW, .center = 40, .width = 400};
    uint64_t *t = malloc(sizeof *t * (size_t)g_runs);
    uint64_t *tj = malloc(sizeof *tj * (size_t)g_runs);
    uint64_t *tp = malloc(sizeof *tp * (size_t)g_runs);
    uint64_t *tw = malloc(sizeof *tw * (size_t)g_runs);
    /* The VOI and PNG stages run in loops of their own, each with its data in cache, as when a
     * server renders a run of frames. */
    rnd_image img = {0};
    for (int i = 0; i < g_runs; i++) {
        rnd_image_free(&img);
        uint64_t t0 = tsr_now_ns();
        if (rnd_render_frame(info, 0, f, &voi, &img, NULL, &err) != TSR_OK) {
            die("voi", &err);
        }
        t[i] = tsr_now_ns() - t0;
    }
    for (int i = 0; i < g_runs; i++) {
        rnd_buf b = {0};
        uint64_t t0 = tsr_now_ns();
        if (rnd_encode(&img, RND_FMT_PNG, 0, &b, &err) != TSR_OK) {
            die("png", &err);
        }
        tp[i] = tsr_now_ns() - t0;
        rnd_buf_free(&b);
    }
    /* The JPEG encode alone and the whole render alternate in one loop, so that their ratio
     * is not skewed by the machine's speed drifting between two loops. */
    rnd_image encoded = img;
    memset(&img, 0, sizeof img);
    for (int i = 0; i < g_runs; i++) {
        rnd_buf b = {0};
        uint64_t t0 = tsr_now_ns();
        if (rnd_encode(&encoded, RND_FMT_JPEG, 90, &b, &err) != TSR_OK) {
            die("jpeg", &err);
        }
        tj[i] = tsr_now_ns() - t0;
        rnd_buf_free(&b);

        /* Whole render from the parsed file: decode, VOI, square pixels, JPEG q90. */
        rnd_frame *f2 = NULL;
        rnd_image shown = {0};
        t0 = tsr_now_ns();
        if (rnd_dicom_decode_frame(d, 0, &f2, &err) != TSR_OK ||
            rnd_render_frame(info, 0, f2, &voi, &img, NULL, &err) != TSR_OK ||
            rnd_resample(&img, rnd_pixel_aspect(info), NULL, &shown, &err) != TSR_OK ||
            rnd_encode(&shown, RND_FMT_JPEG, 90, &b, &err) != TSR_OK) {
            die("render", &err);
        }
        tw[i] = tsr_now_ns() - t0;
        rnd_buf_free(&b);
        rnd_image_free(&shown);
        rnd_image_free(&img);
        rnd_frame_free(f2);
    }
    rnd_image_free(&encoded);
    double voi_ms = median_ms(t, g_runs), jpeg_ms = median_ms(tj, g_runs);
    double png_ms = median_ms(tp, g_runs), whole_ms = median_ms(tw, g_runs);
    double px = (double)info->rows * info->columns;
    printf("%-40s %10.3f   (%.2f Gpixel/s)\n", "VOI stage (window 40/400 -> 8 bit)", voi_ms,
           px / (voi_ms * 1e-3) / 1e9);
    printf("%-40s %10.3f\n", "JPEG q90 encode (TurboJPEG)", jpeg_ms);
    printf("%-40s %10.3f\n", "PNG encode (libpng, zlib 1, UP)", png_ms);
    printf("%-40s %10.3f   (%.2fx the JPEG encode alone)\n", "whole render, uncompressed -> JPEG",
           whole_ms, whole_ms / jpeg_ms);
    free(t);
    free(tj);
    free(tp);
    free(tw);
    rnd_frame_free(f);
    rnd_dicom_close(d);
    return 0;
}
