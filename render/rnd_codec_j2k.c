/* SPDX-License-Identifier: MIT */
/* rnd_codec_j2k.c: JPEG 2000 (Part 1, and High-Throughput JPEG 2000 which OpenJPEG 2.5 decodes)
 * through OpenJPEG directly: single-threaded per frame, optional resolution reduction, and no
 * copy of the codestream. DICOM attributes, not the codestream, decide signedness: the bits are
 * reinterpreted as PixelRepresentation says (the codestream and the header disagree in real
 * files). */
#include "rnd_internal.h"

#include <string.h>
#include <unistd.h>

#include <openjpeg.h>

typedef struct mem_src {
    const uint8_t *data;
    size_t len, pos;
} mem_src;

static OPJ_SIZE_T
src_read(void *buf, OPJ_SIZE_T n, void *user)
{
    mem_src *m = user;
    if (m->pos >= m->len) {
        return (OPJ_SIZE_T)-1;
    }
    size_t k = m->len - m->pos < n ? m->len - m->pos : n;
    memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return k;
}

static OPJ_OFF_T
src_skip(OPJ_OFF_T n, void *user)
{
    mem_src *m = user;
    if (n < 0) {
        size_t back = (size_t)(-n);
        m->pos = back > m->pos ? 0 : m->pos - back;
    } else {
        m->pos = (size_t)n > m->len - m->pos ? m->len : m->pos + (size_t)n;
    }
    return n;
}

static OPJ_BOOL
src_seek(OPJ_OFF_T n, void *user)
{
    mem_src *m = user;
    if (n < 0 || (size_t)n > m->len) {
        return OPJ_FALSE;
    }
    m->pos = (size_t)n;
    return OPJ_TRUE;
}

static void
opj_quiet(const char *msg, void *user)
{
    (void)msg;
    (void)user;
}

/* Keeps OpenJPEG's last error so that the message reaches the caller. */
static void
opj_keep_error(const char *msg, void *user)
{
    char *dst = user;
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) {
        n--;
    }
    if (n > 200) {
        n = 200;
    }
    memcpy(dst, msg, n);
    dst[n] = '\0';
}

int
rnd__j2k_threads(void)
{
    static int n; /* racy first write of the same value: harmless */
    if (n == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c < 1 ? 1 : (c > 8 ? 8 : (int)c);
    }
    return n;
}

/* Big-endian 16-bit value. */
static unsigned
be16(const uint8_t *p)
{
    return (unsigned)p[0] << 8 | p[1];
}

int
rnd__j2k_reduce_levels(const uint8_t *data, size_t len, int want)
{
    /* The codestream starts with SOC (FF4F) SIZ (FF51); in a JP2 file it is in the jp2c box,
     * so look for that pair within the first kilobytes. */
    size_t i = 0, end = len < 65536 ? len : 65536;
    while (i + 4 <= end && !(data[i] == 0xFF && data[i + 1] == 0x4F && data[i + 2] == 0xFF &&
                             data[i + 3] == 0x51)) {
        i++;
    }
    if (i + 4 > end || want <= 0) {
        return 0;
    }
    /* Main header marker segments up to the first tile (SOT, FF90): the decomposition levels
     * of COD (FF52) and of any COC (FF53) override. Each is the byte after Scod/Scoc and the
     * progression order, layer count and MCT (COD) or after the component index (COC). */
    int levels = -1, wide = 0;
    i += 2;
    while (i + 4 <= len) {
        unsigned marker = be16(data + i), seg = be16(data + i + 2);
        if (marker == 0xFF90 || (marker >> 8) != 0xFF || seg < 2 || i + 2 + seg > len) {
            break;
        }
        const uint8_t *v = data + i + 4; /* after the length */
        int lv = -1;
        if (marker == 0xFF51 && seg >= 2 + 36) {
            wide = be16(v + 34) >= 257; /* Csiz: component indices take two bytes */
        } else if (marker == 0xFF52 && seg >= 2 + 6) {
            lv = v[5];
        } else if (marker == 0xFF53 && seg >= 2u + 4u + (unsigned)wide) {
            lv = v[2 + wide]; /* after Ccoc (1 or 2 bytes) and Scoc */
        }
        if (lv >= 0 && (levels < 0 || lv < levels)) {
            levels = lv;
        }
        i += 2 + seg;
    }
    if (levels <= 0) {
        return 0;
    }
    return want < levels ? want : levels;
}

int
rnd__j2k_decode(const rnd_info *info, const uint8_t *data, size_t len, int reduce,
                rnd_frame *out, tsr_err *err)
{
    int rc = TSR_OK;
    char opj_msg[256] = "";
    mem_src src = {data, len, 0};
    opj_image_t *img = NULL;
    opj_stream_t *st = NULL;
    int jp2 = len >= 12 && memcmp(data, "\0\0\0\x0cjP  ", 8) == 0;
    opj_codec_t *codec = opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
    if (!codec) {
        return tsr_err_set(err, TSR_EINTERNAL, "OpenJPEG: cannot create a decoder");
    }
    opj_set_info_handler(codec, opj_quiet, NULL);
    opj_set_warning_handler(codec, opj_quiet, NULL);
    opj_set_error_handler(codec, opj_keep_error, opj_msg);
    /* Code-blocks decode in parallel: one thread per core halves a 512x512 lossless frame on two
     * cores when the server is otherwise idle (a first image, a cold stack), and costs next to
     * nothing when every core is busy anyway. */
    int threads = rnd__j2k_threads();
    if (threads > 1 && opj_has_thread_support()) {
        opj_codec_set_threads(codec, threads);
    }

    opj_dparameters_t params;
    opj_set_default_decoder_parameters(&params);
    params.cp_reduce = (OPJ_UINT32)reduce;
    if (!opj_setup_decoder(codec, &params)) {
        rc = tsr_err_set(err, TSR_EINTERNAL, "OpenJPEG: decoder setup failed");
        goto done;
    }
    st = opj_stream_create(64 * 1024, OPJ_TRUE);
    if (!st) {
        rc = tsr_err_set(err, TSR_ENOMEM, "OpenJPEG: cannot create a stream");
        goto done;
    }
    opj_stream_set_user_data(st, &src, NULL);
    opj_stream_set_user_data_length(st, len);
    opj_stream_set_read_function(st, src_read);
    opj_stream_set_skip_function(st, src_skip);
    opj_stream_set_seek_function(st, src_seek);

    if (!opj_read_header(st, codec, &img)) {
        rc = tsr_err_set(err, TSR_ECORRUPT, "JPEG 2000 header: %s",
                         opj_msg[0] ? opj_msg : "unreadable");
        goto done;
    }
    /* Refuse a codestream whose size disagrees with the DICOM header before decoding it, so a
     * hostile stream cannot make the decoder allocate more than the frame we checked. */
    uint32_t full_w = img->x1 - img->x0, full_h = img->y1 - img->y0;
    if (full_w != info->columns || full_h != info->rows) {
        rc = tsr_err_set(err, TSR_ECORRUPT, "JPEG 2000 is %ux%u but the image is %ux%u",
                         (unsigned)full_w, (unsigned)full_h, (unsigned)info->columns,
                         (unsigned)info->rows);
        goto done;
    }
    if (img->numcomps < out->samples) {
        rc = tsr_err_set(err, TSR_ECORRUPT, "JPEG 2000 has %u components, %u expected",
                         (unsigned)img->numcomps, (unsigned)out->samples);
        goto done;
    }
    if (!opj_decode(codec, st, img) || !opj_end_decompress(codec, st)) {
        rc = tsr_err_set(err, TSR_ECORRUPT, "JPEG 2000: %s",
                         opj_msg[0] ? opj_msg : "the codestream could not be decoded");
        goto done;
    }
    for (uint32_t c = 0; c < out->samples; c++) {
        const opj_image_comp_t *cp = &img->comps[c];
        if (cp->w != out->width || cp->h != out->height || !cp->data) {
            rc = tsr_err_set(err, TSR_EUNSUPP,
                             "JPEG 2000 component %u is %ux%u (subsampled components are not "
                             "supported)",
                             (unsigned)c, (unsigned)cp->w, (unsigned)cp->h);
            goto done;
        }
    }
    size_t px = (size_t)out->width * out->height;
    unsigned ns = out->samples;
    for (unsigned c = 0; c < ns; c++) {
        const OPJ_INT32 *s = img->comps[c].data;
        switch (out->type) {
        case RND_T_U8:
        case RND_T_S8: {
            uint8_t *o = (uint8_t *)out->data + c;
            for (size_t i = 0; i < px; i++) {
                o[i * ns] = (uint8_t)s[i];
            }
            break;
        }
        case RND_T_U16:
        case RND_T_S16: {
            uint16_t *o = (uint16_t *)out->data + c;
            for (size_t i = 0; i < px; i++) {
                o[i * ns] = (uint16_t)s[i];
            }
            break;
        }
        default: {
            uint32_t *o = (uint32_t *)out->data + c;
            for (size_t i = 0; i < px; i++) {
                o[i * ns] = (uint32_t)s[i];
            }
            break;
        }
        }
    }
    /* The inverse component transform (RCT/ICT) is applied by OpenJPEG. */
    if (ns == 3 && (info->photometric == RND_PI_YBR_RCT || info->photometric == RND_PI_YBR_ICT)) {
        out->photometric = RND_PI_RGB;
    }
done:
    opj_image_destroy(img);
    opj_stream_destroy(st);
    opj_destroy_codec(codec);
    return rc;
}
