/* SPDX-License-Identifier: MIT */
/* rnd_codec_rle.c: DICOM RLE Lossless (PS3.5 Annex G). Each frame holds one PackBits segment per
 * byte plane: for each sample, the most significant byte plane first. */
#include "rnd_internal.h"

#include <string.h>

static uint32_t
rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Unpacks one PackBits segment into every `step`-th byte of `out` (n bytes wanted). Returns
 * the number of bytes produced. Output beyond `n` is discarded, never written. */
static size_t
unpack_segment(const uint8_t *s, size_t len, uint8_t *out, size_t n, size_t step)
{
    size_t i = 0, k = 0;
    while (i < len && k < n) {
        int8_t h = (int8_t)s[i++];
        if (h >= 0) {
            size_t cnt = (size_t)h + 1;
            for (size_t j = 0; j < cnt && i < len && k < n; j++) {
                out[step * k++] = s[i++];
            }
        } else if (h != -128) {
            size_t cnt = (size_t)(1 - h);
            if (i >= len) {
                break;
            }
            uint8_t b = s[i++];
            for (size_t j = 0; j < cnt && k < n; j++) {
                out[step * k++] = b;
            }
        }
    }
    return k;
}

int
rnd__rle_decode(const rnd_info *info, const uint8_t *data, size_t len, rnd_frame *out,
                tsr_err *err)
{
    size_t bps = rnd_type_size(out->type);
    size_t px = (size_t)out->width * out->height;
    uint32_t want = (uint32_t)(bps * out->samples);
    if (len < 64) {
        return tsr_err_set(err, TSR_ECORRUPT, "RLE frame of %zu bytes has no header", len);
    }
    uint32_t nseg = rd32(data);
    if (nseg != want || nseg > 15) {
        return tsr_err_set(err, TSR_ECORRUPT, "RLE header has %u segments, %u expected",
                           (unsigned)nseg, (unsigned)want);
    }
    (void)info;
    uint8_t *o = out->data;
    for (uint32_t s = 0; s < nseg; s++) {
        uint32_t start = rd32(data + 4 + 4 * s);
        uint32_t end = s + 1 < nseg ? rd32(data + 8 + 4 * s) : (uint32_t)len;
        if (start < 64 || start > end || end > len) {
            return tsr_err_set(err, TSR_ECORRUPT, "RLE segment %u offsets are invalid",
                               (unsigned)s + 1);
        }
        /* Segment s is byte (bps - 1 - s % bps) of sample s / bps in little-endian memory. */
        size_t sample = s / bps, byte = bps - 1 - (s % bps);
        size_t got = unpack_segment(data + start, end - start, o + sample * bps + byte, px,
                                    bps * out->samples);
        if (got < px) {
            return tsr_err_set(err, TSR_ECORRUPT, "RLE segment %u holds %zu of %zu bytes",
                               (unsigned)s + 1, got, px);
        }
    }
    return TSR_OK;
}
