/* SPDX-License-Identifier: MIT */
/* fuzz_dicom.c: the render core's DICOM path on hostile bytes — rnd_dicom_open_mem (our
 * pre-check, then GDCM, then the attribute reader) and, for every frame, rnd_dicom_decode_frame
 * and the display pipeline; JPEG 2000 frames also through the reduced-resolution decode. Limits
 * are small (the style guide's <= 1 MP rule) so that a header declaring a huge image is refused
 * before anything is allocated from it, and every output byte is read so that MSan (or ASan on a
 * short buffer) sees it. Checks the decoder's own contract: a decoded frame has the geometry of
 * the file and the byte count of its type. */
#include "rnd.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

static volatile uint8_t g_sink;

static void
touch(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint8_t x = 0;
    for (size_t i = 0; i < n; i++) {
        x ^= b[i];
    }
    g_sink ^= x;
}

static void
check_frame(const rnd_info *info, const rnd_frame *f, int reduce)
{
    CHECK(f->samples == 1 || f->samples == 3);
    if (!reduce) {
        CHECK(f->width == info->columns && f->height == info->rows);
    }
    CHECK(f->bytes == (size_t)f->width * f->height * f->samples * rnd_type_size(f->type));
    touch(f->data, f->bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rnd_limits lim;
    rnd_limits_default(&lim);
    lim.max_pixels = 1u << 18; /* 512 x 512: the shared corpus's CT seeds still open */
    lim.max_frames = 16;
    lim.max_bytes = 8u << 20;
    rnd_dicom *d = NULL;
    tsr_err err = {0};
    if (rnd_dicom_open_mem(data, size, &lim, &d, &err) != TSR_OK) {
        CHECK(d == NULL);
        CHECK(err.code != 0 && err.msg[0]);
        return 0;
    }
    const rnd_info *info = rnd_dicom_info(d);
    CHECK(info->frames >= 1 && info->frames <= lim.max_frames);
    CHECK((uint64_t)info->rows * info->columns <= lim.max_pixels);
    touch(info, sizeof *info);
    for (uint32_t i = 0; i < info->frames; i++) {
        rnd_frame *f = NULL;
        tsr_err ferr = {0};
        if (rnd_dicom_decode_frame(d, i, &f, &ferr) != TSR_OK) {
            CHECK(f == NULL && ferr.msg[0]);
            continue;
        }
        check_frame(info, f, 0);
        /* The display pipeline with the file's own VOI, then a window of our choosing. */
        rnd_image img = {0};
        if (rnd_render_frame(info, i, f, NULL, &img, NULL, NULL) == TSR_OK) {
            CHECK(img.width == f->width && img.height == f->height);
            touch(img.data, img.stride * img.height);
            rnd_image_free(&img);
        }
        rnd_voi_req voi = {RND_VOI_MODE_WINDOW, 40, 400, RND_VOI_SIGMOID, 0};
        if (rnd_render_frame(info, i, f, &voi, &img, NULL, NULL) == TSR_OK) {
            rnd_image_free(&img);
        }
        rnd_frame_free(f);
        if (i == 0) {
            int applied = -1;
            if (rnd_dicom_decode_frame_reduced(d, i, 2, &f, &applied, NULL) == TSR_OK) {
                CHECK(applied >= 0 && applied <= 2);
                check_frame(info, f, applied);
                rnd_frame_free(f);
            }
        }
    }
    rnd_frame *f = NULL;
    CHECK(rnd_dicom_decode_frame(d, info->frames, &f, NULL) != TSR_OK && f == NULL);
    rnd_dicom_close(d);
    return 0;
}
