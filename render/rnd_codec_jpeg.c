/* SPDX-License-Identifier: MIT */
/* rnd_codec_jpeg.c: 8-bit JPEG (baseline and extended process 2) through libjpeg-turbo's libjpeg
 * API. The libjpeg API rather than TurboJPEG because DICOM, not the JPEG markers, says whether
 * colour data is YCbCr: the decoder's colour-space guess is overridden from the photometric
 * interpretation. */
#include "rnd_internal.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

typedef struct jpeg_err {
    struct jpeg_error_mgr mgr;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
} jpeg_err;

static void
on_error(j_common_ptr cinfo)
{
    jpeg_err *e = (jpeg_err *)cinfo->err;
    e->mgr.format_message(cinfo, e->msg);
    longjmp(e->jump, 1);
}

static void
on_message(j_common_ptr cinfo)
{
    (void)cinfo; /* warnings (e.g. premature end of data) are not printed */
}

int
rnd__jpeg8_decode(const rnd_info *info, const uint8_t *data, size_t len, rnd_frame *out,
                  tsr_err *err)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_err jerr;
    volatile int rc = TSR_OK; /* survives longjmp */

    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.mgr);
    jerr.mgr.error_exit = on_error;
    jerr.mgr.output_message = on_message;
    if (setjmp(jerr.jump)) {
        rc = tsr_err_set(err, TSR_ECORRUPT, "JPEG: %s", jerr.msg);
        goto done;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    /* A smaller stream is accepted and drawn top-left on black: the edge tiles of some tiled
     * whole-slide images are stored cropped. A larger one would overflow the frame. */
    if (cinfo.image_width > out->width || cinfo.image_height > out->height) {
        rc = tsr_err_set(err, TSR_ECORRUPT, "JPEG is %ux%u but the image is %ux%u",
                         (unsigned)cinfo.image_width, (unsigned)cinfo.image_height,
                         (unsigned)out->width, (unsigned)out->height);
        goto done;
    }
    if (cinfo.num_components != out->samples) {
        rc = tsr_err_set(err, TSR_ECORRUPT, "JPEG has %d components, SamplesPerPixel is %u",
                         cinfo.num_components, (unsigned)out->samples);
        goto done;
    }
    if (out->samples == 3) {
        switch (info->photometric) {
        case RND_PI_YBR_FULL:
        case RND_PI_YBR_FULL_422:
        case RND_PI_YBR_PARTIAL_422:
        case RND_PI_YBR_PARTIAL_420:
        case RND_PI_YBR_ICT:
            cinfo.jpeg_color_space = JCS_YCbCr;
            break;
        default:
            /* RGB declared: trust the stream's own markers (JFIF or Adobe transform) when it
             * says YCbCr, as files labelled RGB but written by ordinary encoders are YCbCr. */
            if (!cinfo.saw_JFIF_marker &&
                !(cinfo.saw_Adobe_marker && cinfo.Adobe_transform != 0)) {
                cinfo.jpeg_color_space = JCS_RGB;
            }
            break;
        }
        cinfo.out_color_space = JCS_RGB;
    } else {
        cinfo.out_color_space = JCS_GRAYSCALE;
    }
    cinfo.dct_method = JDCT_ISLOW;
    jpeg_start_decompress(&cinfo);
    size_t stride = (size_t)out->width * out->samples;
    while (cinfo.output_scanline < cinfo.output_height) {
        /* A cropped tile's rows are shorter than the frame's and land at each row start. */
        JSAMPROW row = (uint8_t *)out->data + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    if (out->samples == 3) {
        out->photometric = RND_PI_RGB;
    }
done:
    jpeg_destroy_decompress(&cinfo);
    return rc;
}
