/* SPDX-License-Identifier: MIT */
/* rnd_attrs.c: reads the attributes the pipeline needs from a parsed dataset into rnd_info,
 * validating them and checking limits before anything is allocated from them. */
#include "rnd_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG(g, e) (((uint32_t)(g) << 16) | (uint32_t)(e))

enum {
    T_SOP_CLASS = TAG(0x0008, 0x0016),
    T_SOP_INSTANCE = TAG(0x0008, 0x0018),
    T_MODALITY = TAG(0x0008, 0x0060),
    T_IMAGER_SPACING = TAG(0x0018, 0x1164),
    T_POSITION = TAG(0x0020, 0x0032),
    T_ORIENTATION = TAG(0x0020, 0x0037),
    T_PLANE_POSITION_SEQ = TAG(0x0020, 0x9113),
    T_PLANE_ORIENTATION_SEQ = TAG(0x0020, 0x9116),
    T_SAMPLES = TAG(0x0028, 0x0002),
    T_PHOTOMETRIC = TAG(0x0028, 0x0004),
    T_PLANAR = TAG(0x0028, 0x0006),
    T_FRAMES = TAG(0x0028, 0x0008),
    T_ROWS = TAG(0x0028, 0x0010),
    T_COLUMNS = TAG(0x0028, 0x0011),
    T_PIXEL_SPACING = TAG(0x0028, 0x0030),
    T_ASPECT = TAG(0x0028, 0x0034),
    T_BITS_ALLOCATED = TAG(0x0028, 0x0100),
    T_BITS_STORED = TAG(0x0028, 0x0101),
    T_HIGH_BIT = TAG(0x0028, 0x0102),
    T_PIXEL_REP = TAG(0x0028, 0x0103),
    T_WINDOW_CENTER = TAG(0x0028, 0x1050),
    T_WINDOW_WIDTH = TAG(0x0028, 0x1051),
    T_INTERCEPT = TAG(0x0028, 0x1052),
    T_SLOPE = TAG(0x0028, 0x1053),
    T_VOI_FUNCTION = TAG(0x0028, 0x1056),
    T_PAL_DESC_R = TAG(0x0028, 0x1101),
    T_PAL_DATA_R = TAG(0x0028, 0x1201),
    T_PAL_SEG_R = TAG(0x0028, 0x1221),
    T_LUT_DESC = TAG(0x0028, 0x3002),
    T_LUT_DATA = TAG(0x0028, 0x3006),
    T_MODALITY_LUT_SEQ = TAG(0x0028, 0x3000),
    T_VOI_LUT_SEQ = TAG(0x0028, 0x3010),
    T_PIXEL_MEASURES_SEQ = TAG(0x0028, 0x9110),
    T_FRAME_VOI_SEQ = TAG(0x0028, 0x9132),
    T_PIXEL_TRANSFORM_SEQ = TAG(0x0028, 0x9145),
    T_PRESENTATION_SHAPE = TAG(0x2050, 0x0020),
    T_SHARED_FG = TAG(0x5200, 0x9229),
    T_PERFRAME_FG = TAG(0x5200, 0x9230),
    T_FLOAT_PIXELS = TAG(0x7fe0, 0x0008),
    T_DOUBLE_PIXELS = TAG(0x7fe0, 0x0009),
    T_PIXEL_DATA = TAG(0x7fe0, 0x0010),
};

/* ---------------------------------------------------------------- value readers */

static uint16_t
rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

/* Copies a string value into `out` without padding (spaces and NULs at either end). */
static void
get_str(const rnd__ds *ds, uint32_t tag, char *out, size_t cap)
{
    rnd__elem e;
    out[0] = '\0';
    if (!rnd__ds_get(ds, tag, &e) || !e.data) {
        return;
    }
    size_t b = 0, n = e.len;
    while (b < n && (e.data[b] == ' ' || e.data[b] == '\0')) {
        b++;
    }
    while (n > b && (e.data[n - 1] == ' ' || e.data[n - 1] == '\0')) {
        n--;
    }
    if (n - b >= cap) {
        n = b + cap - 1;
    }
    memcpy(out, e.data + b, n - b);
    out[n - b] = '\0';
}

/* Reads an unsigned short (US). Returns 1 when present with a value. */
static int
get_us(const rnd__ds *ds, uint32_t tag, uint32_t *out)
{
    rnd__elem e;
    if (!rnd__ds_get(ds, tag, &e) || e.len < 2) {
        return 0;
    }
    *out = rd16(e.data);
    return 1;
}

/* Parses up to `max` backslash-separated decimal numbers (DS or IS). Returns how many were
 * read, or -1 when a value is not a finite number. */
static int
parse_numbers(const uint8_t *p, uint32_t len, double *out, int max)
{
    char buf[1024];
    int n = 0;
    if (len >= sizeof buf) {
        len = sizeof buf - 1;
    }
    memcpy(buf, p, len);
    buf[len] = '\0';
    char *s = buf;
    while (n < max) {
        char *end = strchr(s, '\\');
        if (end) {
            *end = '\0';
        }
        while (*s == ' ') {
            s++;
        }
        char *stop;
        double v = strtod(s, &stop);
        while (*stop == ' ' || *stop == '\0') {
            if (*stop == '\0') {
                break;
            }
            stop++;
        }
        if (stop == s || *stop != '\0' || !isfinite(v)) {
            return -1;
        }
        out[n++] = v;
        if (!end) {
            break;
        }
        s = end + 1;
    }
    return n;
}

/* Reads numbers from a DS/IS element: count read, 0 when absent or empty, -1 when malformed. */
static int
get_numbers(const rnd__ds *ds, uint32_t tag, double *out, int max)
{
    rnd__elem e;
    if (!rnd__ds_get(ds, tag, &e) || e.len == 0) {
        return 0;
    }
    return parse_numbers(e.data, e.len, out, max);
}

/* ---------------------------------------------------------------- LUTs */

void
rnd__lut_free(rnd_lut *lut)
{
    free(lut->data);
    memset(lut, 0, sizeof *lut);
}

/* Number of bits needed for the largest entry (at least 8). */
static uint8_t
bits_for(const uint16_t *d, uint32_t n)
{
    uint16_t mx = 0;
    for (uint32_t i = 0; i < n; i++) {
        mx = d[i] > mx ? d[i] : mx;
    }
    uint8_t b = 8;
    while (b < 16 && mx >= (1u << b)) {
        b++;
    }
    return b;
}

int
rnd__lut_parse(const rnd__elem *desc, const rnd__elem *data, int first_signed, rnd_lut *lut,
               tsr_err *err)
{
    memset(lut, 0, sizeof *lut);
    if (!desc || !data || desc->len == 0 || data->len == 0 || !desc->data || !data->data) {
        return TSR_ENOTFOUND; /* empty items are ignored (they occur in real files) */
    }
    if (desc->len < 6) {
        return tsr_err_set(err, TSR_ECORRUPT, "LUT Descriptor has %u bytes, expected 6",
                           (unsigned)desc->len);
    }
    uint32_t n = rd16(desc->data);
    uint16_t first_raw = rd16(desc->data + 2);
    uint32_t bits = rd16(desc->data + 4);
    if (n == 0) {
        n = 65536; /* PS3.3 C.11.1.1.1: 0 means 2^16 entries */
    }
    /* The VR of the descriptor says how to read the first value when it is explicit; otherwise
     * the context decides (signed input values). */
    int is_signed = strcmp(desc->vr, "SS") == 0 || (strcmp(desc->vr, "US") != 0 && first_signed);
    lut->first = is_signed ? (int16_t)first_raw : (int32_t)first_raw;
    lut->n_entries = n;
    lut->data = malloc(sizeof(uint16_t) * n);
    if (!lut->data) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory for a %u-entry LUT", (unsigned)n);
    }
    if (data->len >= 2 * n) {
        /* One 16-bit word per entry (the normal encoding, also for 8-bit entries). */
        for (uint32_t i = 0; i < n; i++) {
            lut->data[i] = rd16(data->data + 2 * i);
        }
    } else if (data->len >= n && bits <= 8) {
        /* Quirk: 8-bit entries packed one per byte (OB, or OW with two entries per word). */
        for (uint32_t i = 0; i < n; i++) {
            lut->data[i] = data->data[i];
        }
    } else {
        rnd__lut_free(lut);
        return tsr_err_set(err, TSR_ECORRUPT, "LUT Data has %u bytes for %u entries",
                           (unsigned)data->len, (unsigned)n);
    }
    /* Quirk: the descriptor's bit depth is sometimes wrong (16 with 8-bit data or 8 with larger
     * values, or out of range). The largest entry decides when the stated depth cannot hold
     * the data; a stated depth larger than needed is kept (it scales the output). */
    uint8_t need = bits_for(lut->data, n);
    if (bits < 8 || bits > 16 || need > bits) {
        bits = need;
    }
    lut->bits = (uint8_t)bits;
    return TSR_OK;
}

/* Parses the LUT of item `i` of sequence `seq`. Returns TSR_OK, TSR_ENOTFOUND (empty), or an
 * error. */
static int
seq_lut(const rnd__ds *ds, uint32_t seq, int i, int first_signed, rnd_lut *lut, tsr_err *err)
{
    const rnd__ds *item = rnd__ds_seq_item(ds, seq, i);
    rnd__elem desc, data;
    if (!item || !rnd__ds_get(item, T_LUT_DESC, &desc) || !rnd__ds_get(item, T_LUT_DATA, &data)) {
        return TSR_ENOTFOUND;
    }
    return rnd__lut_parse(&desc, &data, first_signed, lut, err);
}

/* PS3.3 C.7.9.2: expands a segmented palette LUT (16-bit words of opcodes) to `n` entries. */
static int
expand_segmented(const rnd__elem *seg, uint32_t n, uint16_t *out, tsr_err *err)
{
    uint32_t words = seg->len / 2, w = 0, k = 0;
    /* Indirect segments refer to earlier segments by their word offset; depth-1 only. */
    while (w < words && k <= n) {
        uint16_t op = rd16(seg->data + 2 * w);
        if (w + 1 >= words) {
            break;
        }
        uint16_t len = rd16(seg->data + 2 * (w + 1));
        if (op == 0) { /* discrete */
            if (w + 2 + len > words || k + len > n) {
                goto bad;
            }
            for (uint32_t j = 0; j < len; j++) {
                out[k++] = rd16(seg->data + 2 * (w + 2 + j));
            }
            w += 2 + len;
        } else if (op == 1) { /* linear from the previous value */
            if (k == 0 || w + 2 >= words || k + len > n) {
                goto bad;
            }
            double y0 = out[k - 1], y1 = rd16(seg->data + 2 * (w + 2));
            for (uint32_t j = 1; j <= len; j++) {
                out[k++] = (uint16_t)lround(y0 + (y1 - y0) * j / len);
            }
            w += 3;
        } else if (op == 2) { /* indirect: replay `len` segments starting at a word offset */
            if (w + 3 >= words) {
                goto bad;
            }
            uint32_t off = rd16(seg->data + 2 * (w + 2)) | ((uint32_t)rd16(seg->data + 2 * (w + 3)) << 16);
            uint32_t r = off;
            for (uint32_t s = 0; s < len; s++) {
                if (r + 1 >= words) {
                    goto bad;
                }
                uint16_t rop = rd16(seg->data + 2 * r), rlen = rd16(seg->data + 2 * (r + 1));
                if (rop == 0) {
                    if (r + 2 + rlen > words || k + rlen > n) {
                        goto bad;
                    }
                    for (uint32_t j = 0; j < rlen; j++) {
                        out[k++] = rd16(seg->data + 2 * (r + 2 + j));
                    }
                    r += 2 + rlen;
                } else if (rop == 1) {
                    if (k == 0 || r + 2 >= words || k + rlen > n) {
                        goto bad;
                    }
                    double y0 = out[k - 1], y1 = rd16(seg->data + 2 * (r + 2));
                    for (uint32_t j = 1; j <= rlen; j++) {
                        out[k++] = (uint16_t)lround(y0 + (y1 - y0) * j / rlen);
                    }
                    r += 3;
                } else {
                    goto bad;
                }
            }
            w += 4;
        } else {
            goto bad;
        }
    }
    if (k != n) {
        return tsr_err_set(err, TSR_ECORRUPT, "segmented palette has %u entries, descriptor %u",
                           (unsigned)k, (unsigned)n);
    }
    return TSR_OK;
bad:
    return tsr_err_set(err, TSR_ECORRUPT, "segmented palette LUT is malformed");
}

static int
parse_palette(const rnd__ds *ds, rnd_info *info, tsr_err *err)
{
    static const char *names[3] = {"red", "green", "blue"};
    for (int c = 0; c < 3; c++) {
        rnd__elem desc, data, seg;
        rnd_lut *lut = &info->palette[c];
        if (!rnd__ds_get(ds, T_PAL_DESC_R + c, &desc)) {
            return tsr_err_set(err, TSR_ECORRUPT, "PALETTE COLOR without a %s descriptor",
                               names[c]);
        }
        /* The first value of a palette descriptor is unsigned unless SS (C.7.6.3.1.5). */
        if (rnd__ds_get(ds, T_PAL_DATA_R + c, &data) && data.len > 0) {
            int rc = rnd__lut_parse(&desc, &data, 0, lut, err);
            if (rc != TSR_OK) {
                return rc == TSR_ENOTFOUND
                           ? tsr_err_set(err, TSR_ECORRUPT, "empty %s palette", names[c])
                           : tsr_err_prefix(err, rc, "%s palette: ", names[c]);
            }
        } else if (rnd__ds_get(ds, T_PAL_SEG_R + c, &seg) && seg.len >= 4 && desc.len >= 6) {
            uint32_t n = rd16(desc.data);
            n = n ? n : 65536;
            lut->n_entries = n;
            lut->first = strcmp(desc.vr, "SS") == 0 ? (int16_t)rd16(desc.data + 2)
                                                    : (int32_t)rd16(desc.data + 2);
            lut->data = calloc(n, sizeof(uint16_t));
            if (!lut->data) {
                return tsr_err_set(err, TSR_ENOMEM, "out of memory for a palette");
            }
            int rc = expand_segmented(&seg, n, lut->data, err);
            if (rc != TSR_OK) {
                return tsr_err_prefix(err, rc, "%s palette: ", names[c]);
            }
            uint32_t bits = rd16(desc.data + 4);
            uint8_t need = bits_for(lut->data, n);
            lut->bits = (uint8_t)((bits < 8 || bits > 16 || need > bits) ? need : bits);
        } else {
            return tsr_err_set(err, TSR_ECORRUPT, "PALETTE COLOR without %s palette data",
                               names[c]);
        }
    }
    return TSR_OK;
}

/* ---------------------------------------------------------------- windows */

static int
parse_windows(const rnd__ds *ds, rnd_window *out, int max, tsr_err *err)
{
    double c[RND_MAX_WINDOWS], w[RND_MAX_WINDOWS];
    int nc = get_numbers(ds, T_WINDOW_CENTER, c, max);
    int nw = get_numbers(ds, T_WINDOW_WIDTH, w, max);
    if (nc < 0 || nw < 0) {
        return tsr_err_set(err, TSR_ECORRUPT, "Window Center/Width is not a number");
    }
    rnd_voi_fn fn = RND_VOI_LINEAR;
    char fname[32];
    get_str(ds, T_VOI_FUNCTION, fname, sizeof fname);
    if (fname[0] && rnd_voi_fn_parse(fname, &fn) != 0) {
        fn = RND_VOI_LINEAR; /* unknown functions fall back to the default (C.11.2.1.3) */
    }
    int n = 0;
    for (int i = 0; i < nc && i < nw; i++) {
        /* A window that its own function cannot use is skipped rather than failing the image. */
        if (w[i] < (fn == RND_VOI_LINEAR ? 1.0 : 1e-9)) {
            continue;
        }
        out[n].center = c[i];
        out[n].width = w[i];
        out[n].fn = fn;
        n++;
    }
    return n;
}

/* ---------------------------------------------------------------- functional groups */

/* The first item of `seq` in the per-frame item, else in the shared item. */
static const rnd__ds *
fg_item(const rnd__ds *per_frame, const rnd__ds *shared, uint32_t seq)
{
    if (per_frame && rnd__ds_seq_count(per_frame, seq) > 0) {
        return rnd__ds_seq_item(per_frame, seq, 0);
    }
    if (shared && rnd__ds_seq_count(shared, seq) > 0) {
        return rnd__ds_seq_item(shared, seq, 0);
    }
    return NULL;
}

static int
parse_functional_groups(const rnd__ds *root, rnd_info *info, tsr_err *err)
{
    int n_per = rnd__ds_seq_count(root, T_PERFRAME_FG);
    const rnd__ds *shared =
        rnd__ds_seq_count(root, T_SHARED_FG) > 0 ? rnd__ds_seq_item(root, T_SHARED_FG, 0) : NULL;
    if (n_per <= 0 && !shared) {
        return TSR_OK;
    }
    info->frame_meta = calloc(info->frames, sizeof *info->frame_meta);
    if (!info->frame_meta) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory for per-frame attributes");
    }
    for (uint32_t f = 0; f < info->frames; f++) {
        const rnd__ds *pf = (int64_t)f < n_per ? rnd__ds_seq_item(root, T_PERFRAME_FG, (int)f) : NULL;
        rnd_frame_meta *m = &info->frame_meta[f];
        const rnd__ds *it = fg_item(pf, shared, T_PIXEL_TRANSFORM_SEQ);
        double v[3];
        if (it && get_numbers(it, T_SLOPE, v, 1) == 1) {
            m->slope = v[0];
            m->intercept = get_numbers(it, T_INTERCEPT, v, 1) == 1 ? v[0] : 0.0;
            m->has_rescale = 1;
        }
        it = fg_item(pf, shared, T_FRAME_VOI_SEQ);
        if (it) {
            rnd_window w[RND_MAX_WINDOWS];
            int nwin = parse_windows(it, w, RND_MAX_WINDOWS, err);
            if (nwin < 0) {
                return tsr_err_prefix(err, TSR_ECORRUPT, "frame %u: ", (unsigned)f + 1);
            }
            if (nwin > 0) {
                m->window = w[0];
                m->has_window = 1;
            }
        }
        it = fg_item(pf, shared, T_PLANE_POSITION_SEQ);
        if (it && get_numbers(it, T_POSITION, m->position, 3) == 3) {
            m->has_position = 1;
        }
        /* per frame: one enhanced object may hold stacks of several orientations */
        it = fg_item(pf, shared, T_PLANE_ORIENTATION_SEQ);
        if (it && get_numbers(it, T_ORIENTATION, m->orientation, 6) == 6) {
            m->has_orientation = 1;
        }
        if (f == 0) {
            it = fg_item(pf, shared, T_PLANE_ORIENTATION_SEQ);
            if (it && get_numbers(it, T_ORIENTATION, info->orientation, 6) == 6) {
                info->has_orientation = 1;
            }
            it = fg_item(pf, shared, T_PIXEL_MEASURES_SEQ);
            if (!info->has_pixel_spacing && it &&
                get_numbers(it, T_PIXEL_SPACING, info->pixel_spacing, 2) == 2) {
                info->has_pixel_spacing = 1;
            }
        }
    }
    return TSR_OK;
}

/* ---------------------------------------------------------------- main parse */

void
rnd__info_free(rnd_info *info)
{
    rnd__lut_free(&info->modality_lut);
    for (int i = 0; i < RND_MAX_VOI_LUTS; i++) {
        rnd__lut_free(&info->voi_luts[i]);
    }
    for (int c = 0; c < 3; c++) {
        rnd__lut_free(&info->palette[c]);
    }
    free(info->frame_meta);
    memset(info, 0, sizeof *info);
}

/* Checks pixel-format attributes and limits; fills nothing but returns the status. */
static int
check_format(const rnd_info *info, const rnd_limits *lim, tsr_err *err)
{
    if (info->rows == 0 || info->columns == 0) {
        return tsr_err_set(err, TSR_ECORRUPT, "Rows/Columns missing or zero (%ux%u)",
                           (unsigned)info->rows, (unsigned)info->columns);
    }
    if ((uint64_t)info->rows * info->columns > lim->max_pixels) {
        return tsr_err_set(err, TSR_ELIMIT, "frame of %ux%u pixels exceeds the %llu-pixel limit",
                           (unsigned)info->columns, (unsigned)info->rows,
                           (unsigned long long)lim->max_pixels);
    }
    if (info->frames > lim->max_frames) {
        return tsr_err_set(err, TSR_ELIMIT, "%u frames exceed the %u-frame limit",
                           (unsigned)info->frames, (unsigned)lim->max_frames);
    }
    if (info->samples_per_pixel != 1 && info->samples_per_pixel != 3) {
        return tsr_err_set(err, TSR_EUNSUPP, "SamplesPerPixel %u is not supported",
                           (unsigned)info->samples_per_pixel);
    }
    if (info->float_pixels == 0) {
        unsigned ba = info->bits_allocated;
        if (ba != 1 && ba != 8 && ba != 16 && ba != 32) {
            return tsr_err_set(err, TSR_EUNSUPP, "BitsAllocated %u is not supported", ba);
        }
        if (info->bits_stored == 0 || info->bits_stored > ba || info->high_bit >= ba ||
            info->high_bit + 1 < info->bits_stored) {
            return tsr_err_set(err, TSR_ECORRUPT,
                               "inconsistent pixel format: BitsAllocated %u, BitsStored %u, "
                               "HighBit %u",
                               ba, (unsigned)info->bits_stored, (unsigned)info->high_bit);
        }
        if (info->samples_per_pixel == 3 && ba != 8 && ba != 16) {
            return tsr_err_set(err, TSR_EUNSUPP, "colour with BitsAllocated %u is not supported",
                               ba);
        }
    }
    uint64_t frame_bytes = (uint64_t)info->rows * info->columns * info->samples_per_pixel *
                           (info->float_pixels ? 4 : (info->bits_allocated + 7) / 8);
    if (frame_bytes > lim->max_bytes) {
        return tsr_err_set(err, TSR_ELIMIT, "a decoded frame of %llu bytes exceeds the limit",
                           (unsigned long long)frame_bytes);
    }
    switch (info->photometric) {
    case RND_PI_MONOCHROME1:
    case RND_PI_MONOCHROME2:
    case RND_PI_PALETTE_COLOR:
        if (info->samples_per_pixel != 1) {
            return tsr_err_set(err, TSR_ECORRUPT, "%s with %u samples per pixel",
                               rnd_photometric_name(info->photometric),
                               (unsigned)info->samples_per_pixel);
        }
        break;
    case RND_PI_UNKNOWN:
        return tsr_err_set(err, TSR_EUNSUPP, "unsupported PhotometricInterpretation");
    default:
        if (info->samples_per_pixel != 3) {
            return tsr_err_set(err, TSR_ECORRUPT, "%s with %u samples per pixel",
                               rnd_photometric_name(info->photometric),
                               (unsigned)info->samples_per_pixel);
        }
    }
    return TSR_OK;
}

int
rnd__info_parse(const rnd__gdcm *g, const rnd_limits *lim, rnd_info *info, tsr_err *err)
{
    const rnd__ds *ds = rnd__gdcm_root(g);
    int rc = TSR_OK;
    uint32_t u;
    double v[6];
    char pi[32];

    memset(info, 0, sizeof *info);
    snprintf(info->transfer_syntax, sizeof info->transfer_syntax, "%s",
             rnd__gdcm_transfer_syntax(g));
    get_str(ds, T_SOP_CLASS, info->sop_class_uid, sizeof info->sop_class_uid);
    get_str(ds, T_SOP_INSTANCE, info->sop_instance_uid, sizeof info->sop_instance_uid);
    get_str(ds, T_MODALITY, info->modality, sizeof info->modality);

    rnd__elem pix;
    int has_pixels = rnd__ds_get(ds, T_PIXEL_DATA, &pix) || rnd__gdcm_fragment_count(g) >= 0;
    if (rnd__ds_get(ds, T_FLOAT_PIXELS, &pix)) {
        info->float_pixels = 32;
        has_pixels = 1;
    } else if (rnd__ds_get(ds, T_DOUBLE_PIXELS, &pix)) {
        info->float_pixels = 64;
        has_pixels = 1;
    }
    if (!has_pixels) {
        return tsr_err_set(err, TSR_EUNSUPP, "no pixel data (not an image)");
    }

    info->rows = get_us(ds, T_ROWS, &u) ? u : 0;
    info->columns = get_us(ds, T_COLUMNS, &u) ? u : 0;
    info->samples_per_pixel = get_us(ds, T_SAMPLES, &u) ? (uint16_t)u : 1;
    info->bits_allocated = get_us(ds, T_BITS_ALLOCATED, &u) ? (uint16_t)u : 0;
    info->bits_stored = get_us(ds, T_BITS_STORED, &u) ? (uint16_t)u : info->bits_allocated;
    info->high_bit = get_us(ds, T_HIGH_BIT, &u) ? (uint16_t)u : (uint16_t)(info->bits_stored - 1);
    info->pixel_representation = get_us(ds, T_PIXEL_REP, &u) ? (uint8_t)(u != 0) : 0;
    info->planar_configuration = get_us(ds, T_PLANAR, &u) ? (uint8_t)(u != 0) : 0;
    if (info->float_pixels) {
        info->bits_allocated = info->float_pixels;
        info->bits_stored = info->float_pixels;
        info->high_bit = (uint16_t)(info->float_pixels - 1);
    }

    get_str(ds, T_PHOTOMETRIC, pi, sizeof pi);
    info->photometric = pi[0] ? rnd_photometric_parse(pi)
                              : (info->samples_per_pixel == 3 ? RND_PI_RGB : RND_PI_MONOCHROME2);

    int nf = get_numbers(ds, T_FRAMES, v, 1);
    if (nf < 0 || (nf == 1 && (v[0] < 1 || v[0] != floor(v[0]) || v[0] > 4294967295.0))) {
        char s[32];
        get_str(ds, T_FRAMES, s, sizeof s);
        return tsr_err_set(err, TSR_ECORRUPT, "NumberOfFrames '%s' is not a positive integer", s);
    }
    info->frames = nf == 1 ? (uint32_t)v[0] : 1;

    if ((rc = check_format(info, lim, err)) != TSR_OK) {
        return rc;
    }

    /* Modality LUT stage. */
    if (get_numbers(ds, T_SLOPE, v, 1) == 1) {
        info->rescale_slope = v[0];
        info->has_rescale = 1;
    } else {
        info->rescale_slope = 1.0;
    }
    if (get_numbers(ds, T_INTERCEPT, v, 1) == 1) {
        info->rescale_intercept = v[0];
        info->has_rescale = 1;
    }
    if (info->rescale_slope == 0.0) {
        info->rescale_slope = 1.0; /* a zero slope would erase the image; treat as absent */
    }
    int n = rnd__ds_seq_count(ds, T_MODALITY_LUT_SEQ);
    if (n > 0) {
        rc = seq_lut(ds, T_MODALITY_LUT_SEQ, 0, info->pixel_representation, &info->modality_lut,
                     err);
        if (rc == TSR_ENOTFOUND) {
            rc = TSR_OK;
        } else if (rc != TSR_OK) {
            tsr_err_prefix(err, rc, "Modality LUT: ");
            goto fail;
        }
    }

    /* VOI stage. The VOI LUT input is the modality output, signed when that can be negative. */
    int nw = parse_windows(ds, info->windows, RND_MAX_WINDOWS, err);
    if (nw < 0) {
        rc = TSR_ECORRUPT;
        goto fail;
    }
    info->n_windows = nw;
    int voi_signed = info->pixel_representation || info->rescale_intercept < 0 ||
                     info->rescale_slope < 0;
    n = rnd__ds_seq_count(ds, T_VOI_LUT_SEQ);
    for (int i = 0; i < n && info->n_voi_luts < RND_MAX_VOI_LUTS; i++) {
        rc = seq_lut(ds, T_VOI_LUT_SEQ, i, voi_signed, &info->voi_luts[info->n_voi_luts], err);
        if (rc == TSR_OK) {
            info->n_voi_luts++;
        } else if (rc != TSR_ENOTFOUND) {
            tsr_err_prefix(err, rc, "VOI LUT %d: ", i + 1);
            goto fail;
        }
        rc = TSR_OK;
    }

    char shape[32];
    get_str(ds, T_PRESENTATION_SHAPE, shape, sizeof shape);
    info->presentation_inverse = strcmp(shape, "INVERSE") == 0;

    if (info->photometric == RND_PI_PALETTE_COLOR && (rc = parse_palette(ds, info, err)) != TSR_OK) {
        goto fail;
    }

    /* Geometry. */
    if (get_numbers(ds, T_PIXEL_SPACING, v, 2) == 2 && v[0] > 0 && v[1] > 0) {
        info->pixel_spacing[0] = v[0];
        info->pixel_spacing[1] = v[1];
        info->has_pixel_spacing = 1;
    } else if (get_numbers(ds, T_IMAGER_SPACING, v, 2) == 2 && v[0] > 0 && v[1] > 0) {
        info->pixel_spacing[0] = v[0];
        info->pixel_spacing[1] = v[1];
        info->has_pixel_spacing = 1;
    }
    if (get_numbers(ds, T_ASPECT, v, 2) == 2 && v[0] >= 1 && v[1] >= 1 && v[0] < 1e6 &&
        v[1] < 1e6) {
        info->aspect[0] = (uint32_t)v[0];
        info->aspect[1] = (uint32_t)v[1];
        info->has_aspect = 1;
    }
    if (get_numbers(ds, T_POSITION, info->position, 3) == 3) {
        info->has_position = 1;
    }
    if (get_numbers(ds, T_ORIENTATION, info->orientation, 6) == 6) {
        info->has_orientation = 1;
    }
    if ((rc = parse_functional_groups(ds, info, err)) != TSR_OK) {
        goto fail;
    }
    return TSR_OK;
fail:
    rnd__info_free(info);
    return rc;
}
