/* SPDX-License-Identifier: MIT */
/* rnd_codec_jls.c: JPEG-LS (lossless and near-lossless) through CharLS's C API.
 *
 * These frames went through GDCM's JPEGLSCodec before, which leaks its output buffer (the
 * frame's size) every time CharLS rejects a corrupt stream: a server fed such files leaked
 * without bound. CharLS is the decoder GDCM used underneath; called directly, its decoder object
 * is released on every path. */
#include "rnd_internal.h"

#include <charls/charls.h>
#include <string.h>

int
rnd__jls_decode(const rnd_info *info, const uint8_t *data, size_t len, rnd_frame *out,
                int *planar, tsr_err *err)
{
    (void)info;
    *planar = 0;
    charls_jpegls_decoder *d = charls_jpegls_decoder_create();
    if (!d) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory decoding JPEG-LS");
    }
    int rc = TSR_OK;
    charls_frame_info fi;
    memset(&fi, 0, sizeof fi);
    charls_interleave_mode ilv = CHARLS_INTERLEAVE_MODE_NONE;
    charls_jpegls_errc e = charls_jpegls_decoder_set_source_buffer(d, data, len);
    if (e == CHARLS_JPEGLS_ERRC_SUCCESS) {
        e = charls_jpegls_decoder_read_header(d);
    }
    if (e == CHARLS_JPEGLS_ERRC_SUCCESS) {
        e = charls_jpegls_decoder_get_frame_info(d, &fi);
    }
    if (e == CHARLS_JPEGLS_ERRC_SUCCESS) {
        e = charls_jpegls_decoder_get_interleave_mode(d, &ilv);
    }
    if (e != CHARLS_JPEGLS_ERRC_SUCCESS) {
        rc = tsr_err_set(err, TSR_ECORRUPT, "JPEG-LS: %s", charls_get_error_message(e));
        goto done;
    }
    size_t bps = rnd_type_size(out->type);
    if (fi.width != out->width || fi.height != out->height ||
        fi.component_count != (int32_t)out->samples) {
        rc = tsr_err_set(err, TSR_ECORRUPT,
                         "JPEG-LS stream is %ux%u with %d component(s), the image %ux%u with %u",
                         (unsigned)fi.width, (unsigned)fi.height, (int)fi.component_count,
                         (unsigned)out->width, (unsigned)out->height, (unsigned)out->samples);
        goto done;
    }
    if (fi.bits_per_sample < 2 || fi.bits_per_sample > 16 ||
        (fi.bits_per_sample > 8) != (bps == 2) || bps > 2) {
        rc = tsr_err_set(err, TSR_ECORRUPT,
                         "JPEG-LS stream has %d bits per sample, BitsAllocated is %u",
                         (int)fi.bits_per_sample, (unsigned)(bps * 8));
        goto done;
    }
    size_t need = 0;
    e = charls_jpegls_decoder_get_destination_size(d, 0, &need);
    if (e != CHARLS_JPEGLS_ERRC_SUCCESS || need != out->bytes) {
        rc = tsr_err_set(err, TSR_ECORRUPT, "JPEG-LS: decoded size %zu, frame %zu bytes", need,
                         out->bytes);
        goto done;
    }
    e = charls_jpegls_decoder_decode_to_buffer(d, out->data, out->bytes, 0);
    if (e != CHARLS_JPEGLS_ERRC_SUCCESS) {
        rc = tsr_err_set(err, TSR_ECORRUPT, "JPEG-LS: %s", charls_get_error_message(e));
        goto done;
    }
    /* CharLS writes colour planes one after another for ILV=0, pixel-interleaved otherwise */
    *planar = out->samples == 3 && ilv == CHARLS_INTERLEAVE_MODE_NONE;
    out->photometric = info->photometric;
done:
    charls_jpegls_decoder_destroy(d);
    return rc;
}
