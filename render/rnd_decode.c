/* SPDX-License-Identifier: MIT */
/* rnd_decode.c: the rnd_dicom handle. Opens a file through the GDCM wrapper, maps frames to
 * their bytes (native offsets or encapsulated fragments) once, and decodes one frame at a time
 * through the fastest codec we have for its transfer syntax. */
#define _POSIX_C_SOURCE 200809L
#include "rnd_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

typedef enum codec {
    CODEC_NATIVE,
    CODEC_DEFLATE_FRAME,
    CODEC_RLE,
    CODEC_JPEG8,
    CODEC_J2K,
    CODEC_JLS,
    CODEC_LJPEG,
    CODEC_JPEG12,
} codec;

struct rnd_dicom {
    rnd__gdcm *g;
    rnd_info info;
    rnd_limits lim;
    codec codec;
    /* native: the pixel bytes */
    const uint8_t *native;
    size_t native_len;
    /* encapsulated: fragments [frag_first[f], frag_first[f] + frag_count[f]) make frame f */
    uint32_t *frag_first, *frag_count;
};

static int
ts_is(const char *ts, const char *uid)
{
    return strcmp(ts, uid) == 0;
}

/* The JPEG (ITU-T T.81) transfer syntaxes, whose frames rnd__jpeg_check vets. */
static int
is_jpeg_ts(const char *ts)
{
    return ts_is(ts, TS_JPEG_BASELINE) || ts_is(ts, TS_JPEG_EXTENDED) ||
           ts_is(ts, TS_JPEG_LL14) || ts_is(ts, TS_JPEG_LL14SV1);
}

static int
choose_codec(const rnd_info *info, codec *out, tsr_err *err)
{
    const char *ts = info->transfer_syntax;
    if (ts[0] == '\0' || ts_is(ts, TS_IMPLICIT_LE) || ts_is(ts, TS_EXPLICIT_LE) ||
        ts_is(ts, TS_DEFLATED) || ts_is(ts, TS_EXPLICIT_BE)) {
        *out = CODEC_NATIVE;
    } else if (ts_is(ts, TS_DEFLATED_IFC)) {
        *out = CODEC_DEFLATE_FRAME;
    } else if (ts_is(ts, TS_RLE)) {
        *out = CODEC_RLE;
    } else if (ts_is(ts, TS_JPEG_BASELINE) || ts_is(ts, TS_JPEG_EXTENDED)) {
        /* libjpeg-turbo 2.1 decodes 8-bit JPEG only; 12-bit has a decoder of our own. */
        *out = info->bits_stored <= 8 ? CODEC_JPEG8 : CODEC_JPEG12;
    } else if (ts_is(ts, TS_JPEGLS_LL) || ts_is(ts, TS_JPEGLS_NEAR)) {
        *out = CODEC_JLS;
    } else if (ts_is(ts, TS_JPEG_LL14) || ts_is(ts, TS_JPEG_LL14SV1)) {
        *out = CODEC_LJPEG;
    } else if (ts_is(ts, TS_J2K_LL) || ts_is(ts, TS_J2K) || ts_is(ts, TS_J2K_P2_LL) ||
               ts_is(ts, TS_J2K_P2) || ts_is(ts, TS_HTJ2K_LL) || ts_is(ts, TS_HTJ2K_LL_RPCL) ||
               ts_is(ts, TS_HTJ2K)) {
        *out = CODEC_J2K;
    } else {
        return tsr_err_set(err, TSR_EUNSUPP, "unsupported transfer syntax %s", ts);
    }
    return TSR_OK;
}

/* Bytes of one native frame (bits for BitsAllocated 1 are handled by the caller). */
static uint64_t
native_frame_bytes(const rnd_info *info)
{
    uint64_t px = (uint64_t)info->rows * info->columns;
    if (info->photometric == RND_PI_YBR_FULL_422 || info->photometric == RND_PI_YBR_PARTIAL_422) {
        /* PS3.3 C.7.6.3.1.2: two Y values share one Cb/Cr pair. */
        return px * 2 * (info->bits_allocated / 8);
    }
    return px * info->samples_per_pixel * (info->bits_allocated / 8);
}

/* Does this fragment start a new compressed frame (JPEG SOI, J2K SOC, JP2 signature box)? */
static int
starts_frame(const uint8_t *p, uint32_t len)
{
    if (len >= 2 && p[0] == 0xff && (p[1] == 0xd8 || p[1] == 0x4f)) {
        return 1;
    }
    return len >= 12 && memcmp(p, "\0\0\0\x0cjP  ", 8) == 0;
}

static int
map_fragments(rnd_dicom *d, tsr_err *err)
{
    uint32_t frames = d->info.frames;
    int n = rnd__gdcm_fragment_count(d->g);
    if (n <= 0) {
        return tsr_err_set(err, TSR_ECORRUPT, "encapsulated pixel data has no fragments");
    }
    d->frag_first = calloc(frames, sizeof(uint32_t));
    d->frag_count = calloc(frames, sizeof(uint32_t));
    uint64_t *pos = calloc((size_t)n + 1, sizeof(uint64_t));
    int rc = TSR_OK;
    if (!d->frag_first || !d->frag_count || !pos) {
        rc = tsr_err_set(err, TSR_ENOMEM, "out of memory mapping %d fragments", n);
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const uint8_t *p;
        uint32_t len;
        if (rnd__gdcm_fragment(d->g, i, &p, &len) != TSR_OK) {
            rc = tsr_err_set(err, TSR_ECORRUPT, "fragment %d is unreadable", i + 1);
            goto done;
        }
        pos[i + 1] = pos[i] + 8 + len; /* item tag + length, then the value */
    }
    if (frames == 1) {
        d->frag_first[0] = 0;
        d->frag_count[0] = (uint32_t)n;
        goto done;
    }
    /* 1. The Basic Offset Table, when present, gives each frame's first fragment. */
    const uint8_t *bot;
    uint32_t bot_len;
    rnd__gdcm_offset_table(d->g, &bot, &bot_len);
    if (bot_len >= 4 * frames) {
        int ok = 1, k = 0;
        for (uint32_t f = 0; f < frames && ok; f++) {
            uint32_t off = (uint32_t)bot[4 * f] | ((uint32_t)bot[4 * f + 1] << 8) |
                           ((uint32_t)bot[4 * f + 2] << 16) | ((uint32_t)bot[4 * f + 3] << 24);
            while (k < n && pos[k] < off) {
                k++;
            }
            ok = k < n && pos[k] == off && (f == 0 || (uint32_t)k > d->frag_first[f - 1]);
            d->frag_first[f] = (uint32_t)k;
        }
        if (ok) {
            for (uint32_t f = 0; f < frames; f++) {
                uint32_t end = f + 1 < frames ? d->frag_first[f + 1] : (uint32_t)n;
                d->frag_count[f] = end - d->frag_first[f];
            }
            goto done;
        }
    }
    /* 2. One fragment per frame. */
    if ((uint32_t)n == frames) {
        for (uint32_t f = 0; f < frames; f++) {
            d->frag_first[f] = f;
            d->frag_count[f] = 1;
        }
        goto done;
    }
    /* 3. Frames split over fragments without a table: codestream start markers separate them. */
    uint32_t f = 0;
    for (int i = 0; i < n; i++) {
        const uint8_t *p;
        uint32_t len;
        rnd__gdcm_fragment(d->g, i, &p, &len);
        if (i == 0 || starts_frame(p, len)) {
            if (f == frames) {
                f++;
                break;
            }
            d->frag_first[f++] = (uint32_t)i;
        }
    }
    if (f != frames) {
        rc = tsr_err_set(err, TSR_ECORRUPT,
                         "%d fragments cannot be mapped to %u frames (no offset table)", n,
                         (unsigned)frames);
        goto done;
    }
    for (f = 0; f < frames; f++) {
        uint32_t end = f + 1 < frames ? d->frag_first[f + 1] : (uint32_t)n;
        d->frag_count[f] = end - d->frag_first[f];
    }
done:
    free(pos);
    return rc;
}

static int
setup_native(rnd_dicom *d, tsr_err *err)
{
    const rnd_info *info = &d->info;
    uint32_t tag = info->float_pixels == 32   ? 0x7fe00008u
                   : info->float_pixels == 64 ? 0x7fe00009u
                                              : 0x7fe00010u;
    rnd__elem e;
    if (!rnd__ds_get(rnd__gdcm_root(d->g), tag, &e) || !e.data) {
        return tsr_err_set(err, TSR_ECORRUPT, "pixel data is empty");
    }
    uint64_t need;
    if (info->bits_allocated == 1) {
        need = ((uint64_t)info->rows * info->columns * info->frames + 7) / 8;
    } else {
        need = native_frame_bytes(info) * info->frames;
    }
    if (e.len < need) {
        return tsr_err_set(err, TSR_ECORRUPT,
                           "pixel data has %u bytes, %u frames of %ux%u need %llu",
                           (unsigned)e.len, (unsigned)info->frames, (unsigned)info->columns,
                           (unsigned)info->rows, (unsigned long long)need);
    }
    d->native = e.data;
    d->native_len = e.len;
    return TSR_OK;
}

static int
open_common(rnd_dicom *d, tsr_err *err)
{
    int rc = rnd__info_parse(d->g, &d->lim, &d->info, err);
    if (rc != TSR_OK) {
        return rc;
    }
    if ((rc = choose_codec(&d->info, &d->codec, err)) != TSR_OK) {
        return rc;
    }
    if (d->codec == CODEC_NATIVE) {
        return setup_native(d, err);
    }
    if (rnd__gdcm_fragment_count(d->g) < 0) {
        return tsr_err_set(err, TSR_ECORRUPT, "transfer syntax %s needs encapsulated pixel data",
                           d->info.transfer_syntax);
    }
    return map_fragments(d, err);
}

static int
finish_open(rnd_dicom *d, int rc, rnd_dicom **out)
{
    if (rc != TSR_OK) {
        rnd_dicom_close(d);
        return rc;
    }
    *out = d;
    return TSR_OK;
}

/* Parses `buf` with GDCM after the structural pre-check; when GDCM refuses a file whose transfer
 * syntax it does not know, says so rather than "corrupt". */
static int
parse_buffer(rnd_dicom *d, const uint8_t *buf, size_t len, tsr_err *err)
{
    char ts[65];
    int rc = rnd__precheck(buf, len, ts, sizeof ts, err);
    if (rc != TSR_OK) {
        return rc;
    }
    rc = rnd__gdcm_open_mem(buf, len, &d->g, err);
    if (rc == TSR_ECORRUPT && ts[0]) {
        codec c = CODEC_NATIVE;
        rnd_info probe;
        memset(&probe, 0, sizeof probe);
        snprintf(probe.transfer_syntax, sizeof probe.transfer_syntax, "%s", ts);
        if (choose_codec(&probe, &c, NULL) != TSR_OK || c == CODEC_DEFLATE_FRAME ||
            strncmp(ts, TS_HTJ2K_PREFIX, strlen(TS_HTJ2K_PREFIX)) == 0) {
            return tsr_err_set(err, TSR_EUNSUPP, "unsupported transfer syntax %s", ts);
        }
    }
    return rc;
}

/* A new handle with the given limits (NULL: defaults), or NULL when out of memory. */
static rnd_dicom *
dicom_new(const rnd_limits *lim)
{
    rnd_dicom *d = calloc(1, sizeof *d);
    if (d) {
        if (lim) {
            d->lim = *lim;
        } else {
            rnd_limits_default(&d->lim);
        }
    }
    return d;
}

int
rnd_dicom_open(const char *path, const rnd_limits *lim, rnd_dicom **out, tsr_err *err)
{
    rnd_dicom *d = dicom_new(lim);
    if (!d) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    int rc = TSR_OK;
    struct stat st;
    void *map = MAP_FAILED;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = tsr_err_set(err, errno == ENOENT ? TSR_ENOTFOUND : TSR_EIO, "cannot open: %s",
                         strerror(errno));
    } else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = tsr_err_set(err, TSR_EINVAL, "not a regular file");
    } else if ((uint64_t)st.st_size > d->lim.max_bytes) {
        rc = tsr_err_set(err, TSR_ELIMIT, "file of %lld bytes exceeds the %llu-byte limit",
                         (long long)st.st_size, (unsigned long long)d->lim.max_bytes);
    } else if (st.st_size == 0) {
        rc = tsr_err_set(err, TSR_ECORRUPT, "empty file");
    } else if ((map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0)) ==
               MAP_FAILED) {
        rc = tsr_err_set(err, TSR_EIO, "cannot map the file: %s", strerror(errno));
    }
    if (fd >= 0) {
        close(fd);
    }
    if (rc == TSR_OK) {
        rc = parse_buffer(d, map, (size_t)st.st_size, err);
        munmap(map, (size_t)st.st_size); /* GDCM holds its own copy of every value */
    }
    if (rc == TSR_OK) {
        rc = open_common(d, err);
    }
    return finish_open(d, rc, out);
}

int
rnd_dicom_open_mem(const void *buf, size_t len, const rnd_limits *lim, rnd_dicom **out,
                   tsr_err *err)
{
    rnd_dicom *d = dicom_new(lim);
    if (!d) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    int rc = len > d->lim.max_bytes
                 ? tsr_err_set(err, TSR_ELIMIT, "input of %zu bytes exceeds the limit", len)
                 : len == 0 ? tsr_err_set(err, TSR_ECORRUPT, "empty input")
                            : parse_buffer(d, buf, len, err);
    if (rc == TSR_OK) {
        rc = open_common(d, err);
    }
    return finish_open(d, rc, out);
}

void
rnd_dicom_close(rnd_dicom *d)
{
    if (!d) {
        return;
    }
    rnd__info_free(&d->info);
    rnd__gdcm_close(d->g);
    free(d->frag_first);
    free(d->frag_count);
    free(d);
}

const rnd_info *
rnd_dicom_info(const rnd_dicom *d)
{
    return &d->info;
}

/* ---------------------------------------------------------------- frame helpers */

static rnd_type
type_for(const rnd_info *info)
{
    if (info->float_pixels) {
        return RND_T_F32;
    }
    int s = info->pixel_representation;
    switch (info->bits_allocated) {
    case 1:
    case 8:
        return s ? RND_T_S8 : RND_T_U8;
    case 16:
        return s ? RND_T_S16 : RND_T_U16;
    default:
        return s ? RND_T_S32 : RND_T_U32;
    }
}

void
rnd__frame_normalize(rnd_frame *f)
{
    if (f->type == RND_T_F32) {
        return;
    }
    unsigned bits = f->bits_stored;
    size_t n = (size_t)f->width * f->height * f->samples;
    unsigned width = (unsigned)rnd_type_size(f->type) * 8;
    if (bits >= width) {
        return;
    }
    uint32_t mask = (1u << bits) - 1;
    uint32_t sign = 1u << (bits - 1);
    /* Unsigned: keep the low `bits` bits. Signed: (v & mask) ^ sign - sign sign-extends a
     * `bits`-bit two's complement value. */
#define MASK_LOOP(T, UT)                                                                           \
    do {                                                                                           \
        T *p = f->data;                                                                            \
        for (size_t i = 0; i < n; i++) {                                                           \
            p[i] = (T)(UT)((UT)p[i] & (UT)mask);                                                   \
        }                                                                                          \
    } while (0)
#define SIGN_LOOP(T, UT)                                                                           \
    do {                                                                                           \
        T *p = f->data;                                                                            \
        for (size_t i = 0; i < n; i++) {                                                           \
            p[i] = (T)((int32_t)(((UT)p[i] & mask) ^ sign) - (int32_t)sign);                       \
        }                                                                                          \
    } while (0)
    switch (f->type) {
    case RND_T_U8:
        MASK_LOOP(uint8_t, uint8_t);
        break;
    case RND_T_S8:
        SIGN_LOOP(int8_t, uint8_t);
        break;
    case RND_T_U16:
        MASK_LOOP(uint16_t, uint16_t);
        break;
    case RND_T_S16:
        SIGN_LOOP(int16_t, uint16_t);
        break;
    case RND_T_U32:
        MASK_LOOP(uint32_t, uint32_t);
        break;
    case RND_T_S32:
        SIGN_LOOP(int32_t, uint32_t);
        break;
    case RND_T_F32:
        break;
    }
#undef MASK_LOOP
#undef SIGN_LOOP
}

/* Reorders planar samples (RRR..GGG..BBB..) of `px` pixels into interleaved order. */
static void
planar_to_interleaved(const uint8_t *src, uint8_t *dst, size_t px, size_t bps)
{
    for (size_t i = 0; i < px; i++) {
        for (size_t s = 0; s < 3; s++) {
            memcpy(dst + (i * 3 + s) * bps, src + (s * px + i) * bps, bps);
        }
    }
}

/* Copies native frame bytes `src` (as stored: planar or interleaved, 4:2:2 or full) into `f`,
 * interleaved. The in-memory value order is little-endian (the wrapper swaps big-endian). */
static void
copy_native(const rnd_info *info, const uint8_t *src, rnd_frame *f)
{
    size_t px = (size_t)f->width * f->height;
    size_t bps = rnd_type_size(f->type);
    if (f->samples == 1 || (info->planar_configuration == 0 &&
                            info->photometric != RND_PI_YBR_FULL_422 &&
                            info->photometric != RND_PI_YBR_PARTIAL_422)) {
        memcpy(f->data, src, f->bytes);
        return;
    }
    if (info->photometric == RND_PI_YBR_FULL_422 || info->photometric == RND_PI_YBR_PARTIAL_422) {
        /* Y1 Y2 Cb Cr per pixel pair, 8 bits (16-bit 4:2:2 does not occur in practice but is
         * handled sample-wise the same way). */
        for (size_t r = 0; r < f->height; r++) {
            for (size_t c = 0; c < f->width; c++) {
                size_t pair = (r * f->width + c) / 2, odd = (r * f->width + c) & 1;
                const uint8_t *q = src + pair * 4 * bps;
                uint8_t *o = (uint8_t *)f->data + (r * f->width + c) * 3 * bps;
                memcpy(o, q + odd * bps, bps);
                memcpy(o + bps, q + 2 * bps, bps);
                memcpy(o + 2 * bps, q + 3 * bps, bps);
            }
        }
        return;
    }
    planar_to_interleaved(src, f->data, px, bps);
}

static int
decode_native(rnd_dicom *d, uint32_t index, rnd_frame *f, tsr_err *err)
{
    const rnd_info *info = &d->info;
    if (info->bits_allocated == 1) {
        /* Frames of 1-bit data need not start on a byte boundary (PS3.5 8.1.1). */
        uint64_t bit = (uint64_t)index * info->rows * info->columns;
        uint8_t *o = f->data;
        for (size_t i = 0; i < (size_t)info->rows * info->columns; i++, bit++) {
            o[i] = (uint8_t)((d->native[bit >> 3] >> (bit & 7)) & 1);
        }
        return TSR_OK;
    }
    uint64_t fb = native_frame_bytes(info);
    const uint8_t *src = d->native + fb * index;
    if (info->float_pixels == 64) {
        float *o = f->data;
        for (size_t i = 0; i < (size_t)f->width * f->height; i++) {
            double v;
            memcpy(&v, src + 8 * i, 8);
            o[i] = (float)v;
        }
        return TSR_OK;
    }
    (void)err;
    copy_native(info, src, f);
    return TSR_OK;
}

/* Deflated Image Frame Compression (PS3.5 A.4.11): each frame is a raw deflate stream of the
 * native frame bytes. Inflating stops at the frame size, so a bomb cannot grow memory. */
static int
decode_deflate_frame(const rnd_info *info, const uint8_t *data, size_t len, rnd_frame *f,
                     tsr_err *err)
{
    uint64_t need = info->bits_allocated == 1
                        ? ((uint64_t)info->rows * info->columns + 7) / 8
                        : native_frame_bytes(info);
    uint8_t *tmp = malloc(need);
    if (!tmp) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory inflating a frame");
    }
    z_stream z;
    memset(&z, 0, sizeof z);
    int rc = TSR_OK;
    if (inflateInit2(&z, -15) != Z_OK) {
        free(tmp);
        return tsr_err_set(err, TSR_EINTERNAL, "zlib initialisation failed");
    }
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)len;
    z.next_out = tmp;
    z.avail_out = (uInt)need;
    int zr = inflate(&z, Z_FINISH);
    if ((zr != Z_STREAM_END && zr != Z_BUF_ERROR && zr != Z_OK) || z.avail_out != 0) {
        rc = tsr_err_set(err, TSR_ECORRUPT, "deflated frame inflates to %llu of %llu bytes",
                         (unsigned long long)(need - z.avail_out), (unsigned long long)need);
    }
    inflateEnd(&z);
    if (rc == TSR_OK) {
        if (info->bits_allocated == 1) {
            uint8_t *o = f->data;
            for (size_t i = 0; i < (size_t)info->rows * info->columns; i++) {
                o[i] = (uint8_t)((tmp[i >> 3] >> (i & 7)) & 1);
            }
        } else {
            copy_native(info, tmp, f);
        }
    }
    free(tmp);
    return rc;
}

/* Interleaves a colour frame a codec wrote as planes (through a copy). */
static int
interleave_in_place(rnd_frame *f, tsr_err *err)
{
    uint8_t *tmp = malloc(f->bytes);
    if (!tmp) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory decoding a frame");
    }
    memcpy(tmp, f->data, f->bytes);
    planar_to_interleaved(tmp, f->data, (size_t)f->width * f->height, rnd_type_size(f->type));
    free(tmp);
    return TSR_OK;
}

static int
decode_jls(const rnd_info *info, const uint8_t *data, size_t len, rnd_frame *f, tsr_err *err)
{
    int planar = 0;
    int rc = rnd__jls_decode(info, data, len, f, &planar, err);
    return rc == TSR_OK && planar ? interleave_in_place(f, err) : rc;
}

int
rnd__dicom_frame_data(const rnd_dicom *d, uint32_t index, const uint8_t **data, size_t *len,
                      uint8_t **joined, tsr_err *err)
{
    *joined = NULL;
    if (!d->frag_first || index >= d->info.frames) {
        return tsr_err_set(err, TSR_EINVAL, "frame %u has no compressed data",
                           (unsigned)index + 1);
    }
    uint32_t first = d->frag_first[index], count = d->frag_count[index];
    const uint8_t *p = NULL;
    uint32_t l = 0;
    size_t total = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (rnd__gdcm_fragment(d->g, (int)(first + i), &p, &l) != TSR_OK) {
            return tsr_err_set(err, TSR_ECORRUPT, "fragment %u is unreadable",
                               (unsigned)(first + i) + 1);
        }
        total += l;
    }
    if (total == 0) {
        return tsr_err_set(err, TSR_ECORRUPT, "frame %u has no compressed data",
                           (unsigned)index + 1);
    }
    if (count == 1) {
        *data = p; /* used in place: no copy */
        *len = total;
        return TSR_OK;
    }
    uint8_t *buf = malloc(total);
    if (!buf) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory joining fragments");
    }
    for (uint32_t i = 0, at = 0; i < count; i++, at += l) {
        rnd__gdcm_fragment(d->g, (int)(first + i), &p, &l);
        memcpy(buf + at, p, l);
    }
    *data = buf;
    *len = total;
    *joined = buf;
    return TSR_OK;
}

/* Decodes frame `index` with up to `reduce` resolution levels discarded where the codec allows
 * it (JPEG 2000); *applied receives the number actually discarded. */
static int
decode_frame(rnd_dicom *d, uint32_t index, int reduce, rnd_frame **out, int *applied,
             tsr_err *err)
{
    const rnd_info *info = &d->info;
    if (index >= info->frames) {
        return tsr_err_set(err, TSR_ENOTFOUND, "frame %u does not exist (the image has %u)",
                           (unsigned)index + 1, (unsigned)info->frames);
    }
    const uint8_t *data = NULL;
    uint8_t *joined = NULL;
    size_t len = 0;
    int r = 0, rc = TSR_OK;
    if (d->codec != CODEC_NATIVE) {
        rc = rnd__dicom_frame_data(d, index, &data, &len, &joined, err);
        if (rc != TSR_OK) {
            goto fail_data;
        }
        if (reduce > 0 && d->codec == CODEC_J2K) {
            r = rnd__j2k_reduce_levels(data, len, reduce);
        }
    }
    /* a reduced J2K image of an origin-0 codestream (the size check in the decoder says if
     * not) is ceil(size / 2^r) per side */
    uint32_t fw = (uint32_t)(((uint64_t)info->columns + ((uint64_t)1 << r) - 1) >> r);
    uint32_t fh = (uint32_t)(((uint64_t)info->rows + ((uint64_t)1 << r) - 1) >> r);
    rnd_frame *f = NULL;
    rc = rnd_frame_alloc(fw, fh, info->samples_per_pixel, type_for(info), &f, err);
    if (rc != TSR_OK) {
        goto fail_data;
    }
    f->bits_stored = info->float_pixels ? 32 : (info->bits_allocated == 1 ? 1 : info->bits_stored);
    f->is_signed = info->pixel_representation && !info->float_pixels;
    f->photometric = info->photometric;
    if (f->photometric == RND_PI_YBR_FULL_422 || f->photometric == RND_PI_YBR_PARTIAL_422) {
        /* Expanded to full resolution by every path below. */
        f->photometric =
            f->photometric == RND_PI_YBR_FULL_422 ? RND_PI_YBR_FULL : RND_PI_YBR_PARTIAL_422;
    }

    if (d->codec == CODEC_NATIVE) {
        rc = decode_native(d, index, f, err);
    } else {
        if (is_jpeg_ts(info->transfer_syntax)) {
            rc = rnd__jpeg_check(data, len, err); /* IJG only warns about bad headers */
        }
        switch (rc != TSR_OK ? CODEC_NATIVE : d->codec) {
        case CODEC_NATIVE:
            break; /* rc holds the error */
        case CODEC_DEFLATE_FRAME:
            rc = decode_deflate_frame(info, data, len, f, err);
            break;
        case CODEC_RLE:
            rc = rnd__rle_decode(info, data, len, f, err);
            break;
        case CODEC_JPEG8:
            rc = rnd__jpeg8_decode(info, data, len, f, err);
            break;
        case CODEC_J2K:
            rc = rnd__j2k_decode(info, data, len, r, f, err);
            break;
        case CODEC_JLS:
            rc = decode_jls(info, data, len, f, err);
            break;
        case CODEC_LJPEG:
            rc = rnd__ljpeg_decode(info, data, len, f, err);
            break;
        case CODEC_JPEG12:
            rc = rnd__jpeg12_decode(info, data, len, f, err);
            break;
        }
    }
    free(joined);
    joined = NULL;
    if (rc != TSR_OK) {
        rnd_frame_free(f);
        if (info->frames > 1) {
            tsr_err_prefix(err, rc, "frame %u: ", (unsigned)index + 1);
        }
        return rc;
    }
    rnd__frame_normalize(f);
    rnd_frame_set_range(f);
    *out = f;
    if (applied) {
        *applied = r;
    }
    return TSR_OK;

fail_data:
    free(joined);
    if (info->frames > 1) {
        tsr_err_prefix(err, rc, "frame %u: ", (unsigned)index + 1);
    }
    return rc;
}

int
rnd_dicom_decode_frame(rnd_dicom *d, uint32_t index, rnd_frame **out, tsr_err *err)
{
    return decode_frame(d, index, 0, out, NULL, err);
}

int
rnd_dicom_decode_frame_reduced(rnd_dicom *d, uint32_t index, int reduce, rnd_frame **out,
                               int *applied, tsr_err *err)
{
    return decode_frame(d, index, reduce < 0 ? 0 : reduce, out, applied, err);
}
