/* SPDX-License-Identifier: MIT */
/* fuzz_codec.c: our own pixel decoders straight on hostile compressed frames, without the DICOM
 * file around them: the JPEG header check (rnd_jpeg_check.c) and then the 12-bit lossy JPEG
 * decoder (rnd_codec_jpeg12.c) or the lossless JPEG decoder (rnd_codec_ljpeg.c), and the RLE
 * decoder (rnd_codec_rle.c). The `dicom` target reaches them too, but slowly (every input is a
 * whole file parsed by GDCM first) and rarely with a well-formed frame; here every run is a frame.
 *
 * Input: byte 0 picks the decoder (low two bits) and, for JPEG, the frame's sample size (bit 2:
 * 16-bit samples, as BitsAllocated 16). The rest is the frame. A JPEG frame's geometry is read
 * from its SOF marker, as the DICOM header would have to agree with it; RLE takes it from bytes
 * 1-4 (width and height up to 256, one or three samples, 8 or 16 bits). Frames are limited to
 * 2^18 pixels. Checks the decoders' contract: an error has a message, a success fills the frame
 * (every byte is read) and says what it holds (RGB for colour). */
#include "rnd_internal.h"

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

/* The geometry in the first SOF marker (any SOFn), or 0. */
static int
jpeg_geometry(const uint8_t *p, size_t n, unsigned *w, unsigned *h, unsigned *nc)
{
    for (size_t i = 0; i + 9 < n; i++) {
        if (p[i] == 0xFF && p[i + 1] >= 0xC0 && p[i + 1] <= 0xCF && p[i + 1] != 0xC4 &&
            p[i + 1] != 0xC8 && p[i + 1] != 0xCC) {
            *h = ((unsigned)p[i + 5] << 8) | p[i + 6];
            *w = ((unsigned)p[i + 7] << 8) | p[i + 8];
            *nc = p[i + 9];
            return 1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 5) {
        return 0;
    }
    const unsigned which = data[0] & 3, wide = (data[0] >> 2) & 1;
    const uint8_t *s = data + 1;
    size_t n = size - 1;
    rnd_info info;
    memset(&info, 0, sizeof info);
    info.photometric = RND_PI_MONOCHROME2;
    unsigned w = 0, h = 0, nc = 0;
    rnd_type type = wide ? RND_T_U16 : RND_T_U8;
    if (which == 2 || which == 3) { /* RLE */
        w = (unsigned)s[0] + 1;
        h = (unsigned)s[1] + 1;
        nc = (s[2] & 1) ? 3 : 1;
        type = (s[3] & 1) ? RND_T_U16 : RND_T_U8;
        s += 4;
        n -= 4;
    } else if (!jpeg_geometry(s, n, &w, &h, &nc)) {
        return 0;
    }
    if (w == 0 || h == 0 || (uint64_t)w * h > (1u << 18) || (nc != 1 && nc != 3)) {
        return 0;
    }
    info.columns = w;
    info.rows = h;
    info.samples_per_pixel = (uint16_t)nc;
    info.bits_allocated = (uint16_t)(rnd_type_size(type) * 8);
    info.bits_stored = info.bits_allocated == 16 ? 12 : 8;
    info.high_bit = (uint16_t)(info.bits_stored - 1);
    if (nc == 3) {
        info.photometric = RND_PI_RGB;
    }
    rnd_frame *f = NULL;
    tsr_err err = {0};
    CHECK(rnd_frame_alloc(w, h, (uint16_t)nc, type, &f, &err) == TSR_OK);
    int rc;
    if (which == 0 || which == 1) {
        rc = rnd__jpeg_check(s, n, &err);
        if (rc == TSR_OK && which == 0) {
            rc = rnd__jpeg12_decode(&info, s, n, f, &err);
            CHECK(rc != TSR_OK || f->photometric == (nc == 3 ? RND_PI_RGB : info.photometric));
        } else if (rc == TSR_OK) {
            rc = rnd__ljpeg_decode(&info, s, n, f, &err);
        }
    } else {
        rc = rnd__rle_decode(&info, s, n, f, &err);
    }
    if (rc == TSR_OK) {
        touch(f->data, f->bytes);
    } else {
        CHECK(err.code != 0 && err.msg[0]);
    }
    rnd_frame_free(f);
    return 0;
}
