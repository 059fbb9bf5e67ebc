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

#define TS_IMPLICIT_LE   "1.2.840.10008.1.2"
#define TS_EXPLICIT_LE   "1.2.840.10008.1.2.1"
#define TS_DEFLATED      "1.2.840.10008.1.2.1.99"
#define TS_EXPLICIT_BE   "1.2.840.10008.1.2.2"
#define TS_DEFLATED_IFC  "1.2.840.10008.1.2.8.1"
#define TS_RLE           "1.2.840.10008.1.2.5"
#define TS_JPEG_BASELINE "1.2.840.10008.1.2.4.50"
#define TS_JPEG_EXTENDED "1.2.840.10008.1.2.4.51"
#define TS_JPEG_LL14     "1.2.840.10008.1.2.4.57"
#define TS_JPEG_LL14SV1  "1.2.840.10008.1.2.4.70"
#define TS_JPEGLS_LL     "1.2.840.10008.1.2.4.80"
#define TS_JPEGLS_NEAR   "1.2.840.10008.1.2.4.81"
#define TS_J2K_LL        "1.2.840.10008.1.2.4.90"
#define TS_J2K           "1.2.840.10008.1.2.4.91"
#define TS_J2K_P2_LL     "1.2.840.10008.1.2.4.92"
#define TS_J2K_P2        "1.2.840.10008.1.2.4.93"
#define TS_HTJ2K_LL      "1.2.840.10008.1.2.4.201"
#define TS_HTJ2K_LL_RPCL "1.2.840.10008.1.2.4.202"
#define TS_HTJ2K         "1.2.840.10008.1.2.4.203"

typedef enum codec {
    CODEC_NATIVE,
    CODEC_DEFLATE_FRAME,
    CODEC_RLE,
    CODEC_JPEG8,
    CODEC_J2K,
    CODEC_GDCM,
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
        /* libjpeg-turbo 2.1 decodes 8-bit JPEG only; 12-bit goes through GDCM's IJG build. */
        *out = info->bits_stored <= 8 ? CODEC_JPEG8 : CODEC_GDCM;
    } else if (ts_is(ts, TS_JPEG_LL14) || ts_is(ts, TS_JPEG_LL14SV1) || ts_is(ts, TS_JPEGLS_LL) ||
               ts_is(ts, TS_JPEGLS_NEAR)) {
        *out = CODEC_GDCM;
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

/* Reads the Transfer Syntax UID from the file meta information (Part 10 preamble, "DICM", then
 * group 0002 in explicit VR little endian) without GDCM, so that a file GDCM refuses because it
 * does not know the syntax gets an "unsupported transfer syntax" answer rather than "corrupt". */
static int
sniff_transfer_syntax(const uint8_t *p, size_t len, char *out, size_t cap)
{
    size_t i = 132;
    if (len < 132 || memcmp(p + 128, "DICM", 4) != 0) {
        return 0;
    }
    while (i + 8 <= len) {
        uint16_t group = (uint16_t)(p[i] | (p[i + 1] << 8));
        uint16_t elem = (uint16_t)(p[i + 2] | (p[i + 3] << 8));
        if (group != 0x0002) {
            return 0;
        }
        size_t vlen, hdr;
        const uint8_t *vr = p + i + 4;
        if ((vr[0] == 'O' && (vr[1] == 'B' || vr[1] == 'W')) || (vr[0] == 'U' && vr[1] == 'N') ||
            (vr[0] == 'S' && vr[1] == 'Q') || (vr[0] == 'U' && vr[1] == 'T')) {
            if (i + 12 > len) {
                return 0;
            }
            vlen = (size_t)p[i + 8] | ((size_t)p[i + 9] << 8) | ((size_t)p[i + 10] << 16) |
                   ((size_t)p[i + 11] << 24);
            hdr = 12;
        } else {
            vlen = (size_t)(p[i + 6] | (p[i + 7] << 8));
            hdr = 8;
        }
        if (vlen > len - i - hdr) {
            return 0;
        }
        if (elem == 0x0010) {
            size_t n = vlen < cap - 1 ? vlen : cap - 1;
            memcpy(out, p + i + hdr, n);
            while (n > 0 && (out[n - 1] == '\0' || out[n - 1] == ' ')) {
                n--;
            }
            out[n] = '\0';
            return n > 0;
        }
        i += hdr + vlen;
    }
    return 0;
}

/* GDCM 3.0.21 asserts (aborting the process) on some truncated file meta groups, so the meta
 * group is checked here first: every element of group 0002 must lie inside the buffer, and
 * something must follow the group. */
static int
check_meta(const uint8_t *p, size_t len, size_t *start, tsr_err *err)
{
    *start = 0;
    if (len >= 132 && memcmp(p + 128, "DICM", 4) == 0) {
        size_t i = 132;
        while (i + 8 <= len && p[i] == 0x02 && p[i + 1] == 0x00) {
            const uint8_t *vr = p + i + 4;
            size_t vlen, hdr = 8;
            if ((vr[0] == 'O' || vr[0] == 'S' || vr[0] == 'U') &&
                (vr[1] == 'B' || vr[1] == 'W' || vr[1] == 'N' || vr[1] == 'Q' || vr[1] == 'T')) {
                if (i + 12 > len) {
                    break;
                }
                vlen = (size_t)p[i + 8] | ((size_t)p[i + 9] << 8) | ((size_t)p[i + 10] << 16) |
                       ((size_t)p[i + 11] << 24);
                hdr = 12;
            } else {
                vlen = (size_t)(p[i + 6] | (p[i + 7] << 8));
            }
            if (vlen > len - i - hdr) {
                return tsr_err_set(err, TSR_ECORRUPT, "truncated file meta information");
            }
            i += hdr + vlen;
        }
        if (i + 8 > len) {
            return tsr_err_set(err, TSR_ECORRUPT, "truncated: no dataset after the meta group");
        }
        *start = i;
    } else if (len < 132) {
        /* Too short for Part 10, and a bare dataset this small holds no image anyway. */
        return tsr_err_set(err, TSR_ECORRUPT, "not a readable DICOM file (%zu bytes)", len);
    }
    return TSR_OK;
}

/* A structural pre-check of the dataset: every element, item and fragment must lie inside the
 * buffer and sequences must be closed. Debian's GDCM is built with assertions, and truncated
 * or inconsistent lengths reach assert() calls that would abort the whole server; input that
 * passes this walk keeps GDCM's readers on their checked paths. */
typedef struct walker {
    const uint8_t *p;
    size_t end;
    int explicit_vr, big_endian;
} walker;

static uint32_t
w16(const walker *w, size_t i)
{
    return w->big_endian ? (uint32_t)(w->p[i] << 8 | w->p[i + 1])
                         : (uint32_t)(w->p[i] | w->p[i + 1] << 8);
}

static uint32_t
w32(const walker *w, size_t i)
{
    return w->big_endian ? (w16(w, i) << 16 | w16(w, i + 2)) : (w16(w, i) | w16(w, i + 2) << 16);
}

static int
long_vr(const uint8_t *vr)
{
    static const char *k[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV",
                              "UC", "UN", "UR", "UT", "UV"};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        if (vr[0] == k[i][0] && vr[1] == k[i][1]) {
            return 1;
        }
    }
    return 0;
}

/* Walks elements from *pos up to `limit`, or up to the delimiter `stop` (0 = none). */
static int
walk_elements(const walker *w, size_t *pos, size_t limit, uint32_t stop, int depth)
{
    if (depth > 32) {
        return -1;
    }
    while (*pos < limit) {
        size_t i = *pos;
        if (i + 8 > limit) {
            return -1; /* a partial header: GDCM would assert on it */
        }
        uint32_t tag = w16(w, i) << 16 | w16(w, i + 2);
        if (tag == 0xfffee00d || tag == 0xfffee0dd) {
            *pos = i + 8;
            return tag == stop ? 0 : -1;
        }
        uint32_t len;
        size_t hdr;
        int is_sq = 0;
        if (w->explicit_vr && (tag >> 16) != 0xfffe) {
            const uint8_t *vr = w->p + i + 4;
            if (long_vr(vr)) {
                if (i + 12 > limit) {
                    return -1;
                }
                len = w32(w, i + 8);
                hdr = 12;
                is_sq = vr[0] == 'S' && vr[1] == 'Q';
            } else {
                len = w16(w, i + 6);
                hdr = 8;
            }
        } else {
            len = w32(w, i + 4);
            hdr = 8;
        }
        i += hdr;
        if (len != 0xffffffffu) {
            if (len > limit - i) {
                return -1;
            }
            *pos = i + len;
            continue;
        }
        /* Undefined length: a sequence of items, or encapsulated pixel data (fragments). */
        int encapsulated = tag == 0x7fe00010u && !is_sq;
        for (;;) {
            if (i + 8 > limit) {
                return -1;
            }
            uint32_t itag = w16(w, i) << 16 | w16(w, i + 2), ilen = w32(w, i + 4);
            i += 8;
            if (itag == 0xfffee0dd) {
                break;
            }
            if (itag != 0xfffee000) {
                return -1;
            }
            if (ilen == 0xffffffffu) {
                if (encapsulated || walk_elements(w, &i, limit, 0xfffee00d, depth + 1) != 0) {
                    return -1;
                }
            } else if (ilen > limit - i) {
                return -1;
            } else {
                i += ilen;
            }
        }
        *pos = i;
    }
    return stop ? -1 : 0;
}

static int
check_dataset(const uint8_t *p, size_t len, size_t start, const char *ts, tsr_err *err)
{
    walker w = {p, len, 1, 0};
    if (strcmp(ts, TS_DEFLATED) == 0) {
        return TSR_OK; /* compressed: GDCM inflates it; the inflated form is not at hand here */
    }
    if (strcmp(ts, TS_IMPLICIT_LE) == 0) {
        w.explicit_vr = 0;
    } else if (strcmp(ts, TS_EXPLICIT_BE) == 0) {
        w.big_endian = 1;
    } else if (!ts[0]) {
        /* No meta: guess the encoding as GDCM does, from whether a VR follows the first tag. */
        w.explicit_vr = start + 6 <= len && p[start + 4] >= 'A' && p[start + 4] <= 'Z' &&
                        p[start + 5] >= 'A' && p[start + 5] <= 'Z';
    }
    size_t pos = start;
    if (walk_elements(&w, &pos, len, 0, 0) != 0) {
        return tsr_err_set(err, TSR_ECORRUPT,
                           "truncated or malformed: an element runs past the end of the data");
    }
    return TSR_OK;
}

/* Parses `buf` with GDCM; when GDCM refuses it, says why as precisely as we can. */
static int
parse_buffer(rnd_dicom *d, const uint8_t *buf, size_t len, tsr_err *err)
{
    size_t start;
    char ts[65] = "";
    int rc = check_meta(buf, len, &start, err);
    if (rc != TSR_OK) {
        return rc;
    }
    if (start > 0) {
        sniff_transfer_syntax(buf, len, ts, sizeof ts);
    }
    if ((rc = check_dataset(buf, len, start, ts, err)) != TSR_OK) {
        return rc;
    }
    rc = rnd__gdcm_open_mem(buf, len, &d->g, err);
    if (rc == TSR_ECORRUPT) {
        codec c = CODEC_NATIVE;
        rnd_info probe;
        memset(&probe, 0, sizeof probe);
        if (sniff_transfer_syntax(buf, len, ts, sizeof ts)) {
            snprintf(probe.transfer_syntax, sizeof probe.transfer_syntax, "%s", ts);
            if (choose_codec(&probe, &c, NULL) != TSR_OK || c == CODEC_DEFLATE_FRAME ||
                strncmp(ts, "1.2.840.10008.1.2.4.20", 22) == 0) {
                return tsr_err_set(err, TSR_EUNSUPP, "unsupported transfer syntax %s", ts);
            }
        }
    }
    return rc;
}

int
rnd_dicom_open(const char *path, const rnd_limits *lim, rnd_dicom **out, tsr_err *err)
{
    rnd_dicom *d = calloc(1, sizeof *d);
    if (!d) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    if (lim) {
        d->lim = *lim;
    } else {
        rnd_limits_default(&d->lim);
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
    rnd_dicom *d = calloc(1, sizeof *d);
    if (!d) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    if (lim) {
        d->lim = *lim;
    } else {
        rnd_limits_default(&d->lim);
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
    /* (v & mask) ^ sign - sign sign-extends a `bits`-bit two's complement value. */
    switch (f->type) {
    case RND_T_U8: {
        uint8_t *p = f->data;
        for (size_t i = 0; i < n; i++) {
            p[i] &= (uint8_t)mask;
        }
        break;
    }
    case RND_T_S8: {
        int8_t *p = f->data;
        for (size_t i = 0; i < n; i++) {
            p[i] = (int8_t)((int32_t)(((uint8_t)p[i] & mask) ^ sign) - (int32_t)sign);
        }
        break;
    }
    case RND_T_U16: {
        uint16_t *p = f->data;
        for (size_t i = 0; i < n; i++) {
            p[i] &= (uint16_t)mask;
        }
        break;
    }
    case RND_T_S16: {
        int16_t *p = f->data;
        for (size_t i = 0; i < n; i++) {
            p[i] = (int16_t)((int32_t)(((uint16_t)p[i] & mask) ^ sign) - (int32_t)sign);
        }
        break;
    }
    case RND_T_U32: {
        uint32_t *p = f->data;
        for (size_t i = 0; i < n; i++) {
            p[i] &= mask;
        }
        break;
    }
    case RND_T_S32: {
        int32_t *p = f->data;
        for (size_t i = 0; i < n; i++) {
            p[i] = (int32_t)(((uint32_t)p[i] & mask) ^ sign) - (int32_t)sign;
        }
        break;
    }
    case RND_T_F32:
        break;
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
    /* planar configuration 1: RRR..GGG..BBB.. */
    uint8_t *o = f->data;
    for (size_t i = 0; i < px; i++) {
        for (size_t s = 0; s < 3; s++) {
            memcpy(o + (i * 3 + s) * bps, src + (s * px + i) * bps, bps);
        }
    }
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

/* Decodes through GDCM's codecs, then converts its output (planar as the codec left it) into the
 * interleaved frame. */
static int
decode_gdcm(const rnd_info *info, const uint8_t *data, size_t len, rnd_frame *f, tsr_err *err)
{
    rnd_photometric pi = info->photometric;
    int planar = 0;
    void *tmp = malloc(f->bytes);
    if (!tmp) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory decoding a frame");
    }
    int rc = rnd__gdcm_decode_frame(info, data, len, tmp, f->bytes, &pi, &planar, err);
    if (rc == TSR_OK) {
        if (f->samples == 3 && planar) {
            size_t px = (size_t)f->width * f->height, bps = rnd_type_size(f->type);
            for (size_t i = 0; i < px; i++) {
                for (size_t s = 0; s < 3; s++) {
                    memcpy((uint8_t *)f->data + (i * 3 + s) * bps,
                           (uint8_t *)tmp + (s * px + i) * bps, bps);
                }
            }
        } else {
            memcpy(f->data, tmp, f->bytes);
        }
        /* GDCM's JPEG codecs convert 4:2:2 / YBR to RGB for lossy data and say so. */
        f->photometric = pi != RND_PI_UNKNOWN ? pi : info->photometric;
    }
    free(tmp);
    return rc;
}

int
rnd_dicom_decode_frame(rnd_dicom *d, uint32_t index, rnd_frame **out, tsr_err *err)
{
    const rnd_info *info = &d->info;
    if (index >= info->frames) {
        return tsr_err_set(err, TSR_ENOTFOUND, "frame %u does not exist (the image has %u)",
                           (unsigned)index + 1, (unsigned)info->frames);
    }
    rnd_frame *f = NULL;
    int rc = rnd_frame_alloc(info->columns, info->rows, info->samples_per_pixel, type_for(info),
                             &f, err);
    if (rc != TSR_OK) {
        return rc;
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
        /* Gather the frame's fragments; a single fragment is used in place. */
        uint32_t first = d->frag_first[index], count = d->frag_count[index];
        const uint8_t *data = NULL;
        uint8_t *joined = NULL;
        size_t len = 0;
        if (count == 1) {
            uint32_t l32;
            rc = rnd__gdcm_fragment(d->g, (int)first, &data, &l32);
            len = l32;
        } else {
            for (uint32_t i = 0; i < count && rc == TSR_OK; i++) {
                const uint8_t *p;
                uint32_t l32;
                rc = rnd__gdcm_fragment(d->g, (int)(first + i), &p, &l32);
                len += l32;
            }
            joined = rc == TSR_OK && len > 0 ? malloc(len) : NULL;
            if (rc == TSR_OK && len > 0 && !joined) {
                rc = tsr_err_set(err, TSR_ENOMEM, "out of memory joining fragments");
            }
            for (uint32_t i = 0, at = 0; i < count && joined; i++) {
                const uint8_t *p;
                uint32_t l32;
                rnd__gdcm_fragment(d->g, (int)(first + i), &p, &l32);
                memcpy(joined + at, p, l32);
                at += l32;
            }
            data = joined;
        }
        if (rc == TSR_OK && (!data || len == 0)) {
            rc = tsr_err_set(err, TSR_ECORRUPT, "frame %u has no compressed data",
                             (unsigned)index + 1);
        }
        if (rc == TSR_OK) {
            switch (d->codec) {
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
                rc = rnd__j2k_decode(info, data, len, 0, f, err);
                break;
            default:
                rc = decode_gdcm(info, data, len, f, err);
                break;
            }
        }
        free(joined);
    }
    if (rc != TSR_OK) {
        rnd_frame_free(f);
        if (info->frames > 1) {
            tsr_err_prefix(err, rc, "frame %u: ", (unsigned)index + 1);
        }
        return rc;
    }
    rnd__frame_normalize(f);
    *out = f;
    return TSR_OK;
}
