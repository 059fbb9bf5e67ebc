/* SPDX-License-Identifier: MIT */
/* rnd_dataset.c: our own structural reader of DICOM datasets in memory (rnd.h, "dataset reader").
 *
 * One walker serves two masters: the render pre-check, which must prove a buffer safe before
 * GDCM (built with assertions that abort on bad lengths) sees it, and the store, which turns every
 * instance into DICOM JSON at ingest and needs offsets into the file for WADO-RS bulk data. The
 * reader is a pull parser with an explicit stack instead of recursion, so nesting depth costs
 * memory fixed at creation and a hostile file cannot exhaust the C stack. Every length is
 * compared with the bytes left in the innermost enclosing defined-length item or sequence (or the
 * buffer) before it is used, in size_t arithmetic that cannot wrap. */
#include "rnd_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNDEFINED      0xffffffffu
#define TAG_ITEM       0xfffee000u
#define TAG_ITEM_END   0xfffee00du
#define TAG_SEQ_END    0xfffee0ddu
#define TAG_PIXEL_DATA 0x7fe00010u
#define MAX_DEPTH      256

enum { F_DATASET = 0, F_SEQUENCE = 1 };

/* One open level: the top-level dataset, a sequence, or an item (a nested dataset). */
typedef struct frame {
    uint8_t kind;
    uint8_t explicit_vr, big_endian;
    uint8_t undefined; /* closed by a delimitation item, not by reaching `end` */
    uint32_t tag;      /* the sequence (an item's: its sequence's) */
    size_t end;        /* where it ends; for undefined lengths the limit inherited */
    size_t position;   /* offset of its header */
    const char *limit; /* what `end` is, for messages: "the data", "its item", ... */
    int items;         /* F_SEQUENCE: items opened so far; item: its number */
} frame;

struct rnd_ds_reader {
    const uint8_t *buf;
    size_t len, pos;
    int max_depth, depth; /* depth: open sequences */
    int top;              /* index of the innermost open frame */
    int pixel_rep;        /* top-level PixelRepresentation, -1 until seen */
    int status;           /* TSR_OK, or the error every later call returns */
    char msg[sizeof(((tsr_err *)0)->msg)];
    frame frames[]; /* 2 * max_depth + 1: a sequence and an item per level */
};

rnd_ds_encoding
rnd_ds_encoding_of(const char *ts)
{
    if (strcmp(ts, TS_IMPLICIT_LE) == 0) {
        return RND_DS_IMPLICIT_LE;
    }
    if (strcmp(ts, TS_EXPLICIT_BE) == 0) {
        return RND_DS_EXPLICIT_BE;
    }
    return RND_DS_EXPLICIT_LE;
}

/* Explicit VRs with the 12-byte header (PS3.5 7.1.2), and the others. */
static const char k_long_vrs[] = "OBODOFOLOVOWSQSVUCUNURUTUV";
static const char k_short_vrs[] = "AEASATCSDADSDTFDFLISLOLTPNSHSLSSSTTMUIULUS";

static int
vr_in(const uint8_t *vr, const char *list)
{
    for (; *list; list += 2) {
        if (vr[0] == (uint8_t)list[0] && vr[1] == (uint8_t)list[1]) {
            return 1;
        }
    }
    return 0;
}

static int
is_upper(uint8_t c)
{
    return c >= 'A' && c <= 'Z';
}

static uint32_t
read_tag(const uint8_t *p, int big_endian)
{
    return (uint32_t)rnd_ds_u16(p, big_endian) << 16 | rnd_ds_u16(p + 2, big_endian);
}

int
rnd_ds_read_meta(const uint8_t *buf, size_t len, rnd_ds_meta *meta, tsr_err *err)
{
    if (len < 132 || memcmp(buf + 128, "DICM", 4) != 0) {
        return TSR_ENOTFOUND;
    }
    char ts[65] = "";
    size_t i = 132, group_end = 0; /* group_end: where (0002,0000) says the group ends */
    while (len - i >= 8 && buf[i] == 0x02 && buf[i + 1] == 0x00) {
        uint32_t tag = read_tag(buf + i, 0), vlen;
        size_t hdr = 8;
        const uint8_t *vr = buf + i + 4;
        if (!is_upper(vr[0]) || !is_upper(vr[1])) {
            vlen = rnd_ds_u32(buf + i + 4, 0); /* some old writers used implicit VR here */
        } else if ((!vr_in(vr, k_long_vrs) && !vr_in(vr, k_short_vrs)) ||
                   (vr[0] == 'S' && vr[1] == 'Q')) {
            /* Unlike the dataset (where an unknown code reads as UN), GDCM's meta group reader
             * asserts on a VR code it does not know and on a sequence, aborting the process;
             * no meta element is either. */
            return tsr_err_set(err, TSR_ECORRUPT,
                               "file meta information: element (0002,%04X) at offset %zu has "
                               "%s VR '%c%c'",
                               tag & 0xffff, i,
                               vr[0] == 'S' && vr[1] == 'Q' ? "the sequence" : "an unknown", vr[0],
                               vr[1]);
        } else if (vr_in(vr, k_long_vrs)) {
            if (len - i < 12) {
                return tsr_err_set(err, TSR_ECORRUPT,
                                   "truncated file meta information: the header of (0002,%04X) "
                                   "at offset %zu runs past the end of the data",
                                   tag & 0xffff, i);
            }
            vlen = rnd_ds_u32(buf + i + 8, 0);
            hdr = 12;
        } else {
            vlen = rnd_ds_u16(buf + i + 6, 0);
        }
        if (vlen > len - i - hdr) {
            return tsr_err_set(err, TSR_ECORRUPT,
                               "truncated file meta information: element (0002,%04X) at offset "
                               "%zu runs past the end of the data (length %u, %zu bytes left)",
                               tag & 0xffff, i, vlen, len - i - hdr);
        }
        if (tag == 0x00020000u && vlen == 4) {
            group_end = i + hdr + 4 + rnd_ds_u32(buf + i + hdr, 0);
        }
        if (tag == 0x00020010u) {
            const uint8_t *v = buf + i + hdr;
            size_t n = vlen;
            while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\0')) {
                n--;
            }
            if (n >= sizeof ts) {
                return tsr_err_set(err, TSR_ECORRUPT,
                                   "the Transfer Syntax UID (0002,0010) at offset %zu is longer "
                                   "than 64 characters",
                                   i);
            }
            memcpy(ts, v, n);
            ts[n] = '\0';
        }
        i += hdr + vlen;
    }
    /* Writers get the group length wrong often enough that a shorter group is accepted, but one
     * that the data cannot hold means the file was cut inside it. */
    if (group_end > len) {
        return tsr_err_set(err, TSR_ECORRUPT,
                           "truncated file meta information: its group length ends at offset "
                           "%zu, past the end of the data (%zu bytes)",
                           group_end, len);
    }
    memcpy(meta->transfer_syntax, ts, sizeof ts);
    meta->dataset_offset = i;
    return TSR_OK;
}

int
rnd_ds_reader_new(const uint8_t *buf, size_t len, size_t start, rnd_ds_encoding enc, int max_depth,
                  rnd_ds_reader **out, tsr_err *err)
{
    if ((!buf && len) || start > len || max_depth < 1 || max_depth > MAX_DEPTH ||
        (enc != RND_DS_EXPLICIT_LE && enc != RND_DS_IMPLICIT_LE && enc != RND_DS_EXPLICIT_BE)) {
        return tsr_err_set(err, TSR_EINVAL, "bad dataset reader arguments");
    }
    size_t n = 2 * (size_t)max_depth + 1;
    rnd_ds_reader *r = calloc(1, sizeof *r + n * sizeof r->frames[0]);
    if (!r) {
        return tsr_err_set(err, TSR_ENOMEM, "out of memory");
    }
    r->buf = buf;
    r->len = len;
    r->pos = start;
    r->max_depth = max_depth;
    r->pixel_rep = -1;
    r->frames[0] = (frame){.kind = F_DATASET,
                           .explicit_vr = enc != RND_DS_IMPLICIT_LE,
                           .big_endian = enc == RND_DS_EXPLICIT_BE,
                           .end = len,
                           .position = start,
                           .limit = "the data"};
    *out = r;
    return TSR_OK;
}

void
rnd_ds_reader_free(rnd_ds_reader *r)
{
    free(r);
}

/* Records an error: this call and every later one return it with the same message. */
static int fail(rnd_ds_reader *r, int code, tsr_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
fail(rnd_ds_reader *r, int code, tsr_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    r->status = code;
    return tsr_err_set(err, code, "%s", r->msg);
}

#define TAG_ARGS(t) (unsigned)((t) >> 16), (unsigned)((t)&0xffff)

/* The VR of an implicit VR element: the dictionary's, with PS3.5 A.1 c applied to "US or SS"
 * (SS when the pixel data is signed; the LUT descriptors stay US, whose first and third values
 * are unsigned whatever the pixels), LO for private creators (PS3.5 7.8.1), else UN. */
static void
implicit_vr(const rnd_ds_reader *r, uint32_t tag, char vr[3])
{
    if ((tag >> 16) & 1) {
        uint32_t el = tag & 0xffff;
        memcpy(vr, el >= 0x0010 && el <= 0x00ff ? "LO" : "UN", 3);
        return;
    }
    if (rnd_dict_lookup(tag, vr, NULL) != 0) {
        memcpy(vr, "UN", 3);
        return;
    }
    int descriptor = tag == 0x00283002u || (tag >= 0x00281100u && tag <= 0x00281103u) ||
                     (tag >= 0x00281111u && tag <= 0x00281113u);
    if (r->pixel_rep == 1 && vr[0] == 'U' && vr[1] == 'S' && !descriptor &&
        rnd__dict_us_or_ss(tag)) {
        memcpy(vr, "SS", 3);
    }
}

/* Opens a sequence whose header is at `position` and whose first item is at `value`. */
static int
open_sequence(rnd_ds_reader *r, const frame *f, uint32_t tag, size_t position, size_t value,
              uint32_t length, int explicit_vr, int big_endian, rnd_ds_event *ev, rnd_ds_elem *e,
              tsr_err *err)
{
    if (r->depth >= r->max_depth) {
        return fail(r, TSR_ELIMIT, err,
                    "sequence (%04X,%04X) at offset %zu nests deeper than %d levels", TAG_ARGS(tag),
                    position, r->max_depth);
    }
    int undefined = length == UNDEFINED;
    frame *s = &r->frames[++r->top];
    *s = (frame){.kind = F_SEQUENCE,
                 .explicit_vr = (uint8_t)explicit_vr,
                 .big_endian = (uint8_t)big_endian,
                 .undefined = (uint8_t)undefined,
                 .tag = tag,
                 .end = undefined ? f->end : value + length,
                 .position = position,
                 .limit = undefined ? f->limit : "its sequence"};
    e->depth = r->depth++;
    memcpy(e->vr, "SQ", 3);
    r->pos = value;
    *ev = RND_DS_SEQUENCE;
    return TSR_OK;
}

/* Checks the items of encapsulated pixel data (PS3.5 A.4) and steps over them. */
static int
skip_fragments(rnd_ds_reader *r, const frame *f, uint32_t tag, size_t position, size_t value,
               tsr_err *err)
{
    size_t p = value;
    for (;;) {
        if (f->end - p < 8) {
            return fail(r, TSR_ECORRUPT, err,
                        "encapsulated pixel data (%04X,%04X) at offset %zu runs past the end of "
                        "%s (no Sequence Delimitation Item)",
                        TAG_ARGS(tag), position, f->limit);
        }
        uint32_t itag = read_tag(r->buf + p, f->big_endian);
        uint32_t ilen = rnd_ds_u32(r->buf + p + 4, f->big_endian);
        if (itag == TAG_SEQ_END) {
            if (ilen != 0) {
                /* PS3.5 7.5: a delimiter's length is 0; GDCM would read this one as a value */
                return fail(r, TSR_ECORRUPT, err,
                            "the Sequence Delimitation Item closing pixel data (%04X,%04X) at "
                            "offset %zu has length %u, not 0",
                            TAG_ARGS(tag), p, ilen);
            }
            r->pos = p + 8;
            return TSR_OK;
        }
        if (itag != TAG_ITEM) {
            return fail(r, TSR_ECORRUPT, err,
                        "encapsulated pixel data (%04X,%04X) at offset %zu: expected an item at "
                        "offset %zu, found (%04X,%04X)",
                        TAG_ARGS(tag), position, p, TAG_ARGS(itag));
        }
        if (ilen > f->end - p - 8) {
            return fail(r, TSR_ECORRUPT, err,
                        "fragment at offset %zu of pixel data (%04X,%04X) runs past the end of %s "
                        "(length %u, %zu bytes left)",
                        p, TAG_ARGS(tag), f->limit, ilen, f->end - p - 8);
        }
        p += 8 + (size_t)ilen;
    }
}

/* Closes the innermost frame (an item or a sequence) and reports its end. */
static int
close_frame(rnd_ds_reader *r, size_t pos, rnd_ds_event *ev, rnd_ds_elem *e)
{
    const frame *f = &r->frames[r->top--];
    r->pos = pos;
    e->tag = f->tag;
    e->position = f->position;
    e->offset = pos;
    if (f->kind == F_SEQUENCE) {
        e->depth = --r->depth;
        memcpy(e->vr, "SQ", 3);
        *ev = RND_DS_SEQUENCE_END;
    } else {
        e->depth = r->depth;
        e->item = f->items;
        *ev = RND_DS_ITEM_END;
    }
    return TSR_OK;
}

static int
next_in_sequence(rnd_ds_reader *r, frame *f, rnd_ds_event *ev, rnd_ds_elem *e, tsr_err *err)
{
    size_t i = r->pos;
    if (!f->undefined && i >= f->end) {
        return close_frame(r, i, ev, e);
    }
    if (f->end - i < 8) {
        return fail(r, TSR_ECORRUPT, err,
                    "sequence (%04X,%04X) at offset %zu runs past the end of %s (%s)",
                    TAG_ARGS(f->tag), f->position, f->limit,
                    f->undefined ? "no Sequence Delimitation Item" : "a partial item header");
    }
    uint32_t itag = read_tag(r->buf + i, f->big_endian);
    uint32_t ilen = rnd_ds_u32(r->buf + i + 4, f->big_endian);
    if (itag == TAG_SEQ_END && f->undefined) {
        if (ilen != 0) {
            return fail(r, TSR_ECORRUPT, err,
                        "the Sequence Delimitation Item of (%04X,%04X) at offset %zu has length "
                        "%u, not 0",
                        TAG_ARGS(f->tag), i, ilen);
        }
        return close_frame(r, i + 8, ev, e);
    }
    if (itag != TAG_ITEM) {
        return fail(r, TSR_ECORRUPT, err,
                    "sequence (%04X,%04X) at offset %zu: expected an item at offset %zu, found "
                    "(%04X,%04X)",
                    TAG_ARGS(f->tag), f->position, i, TAG_ARGS(itag));
    }
    if (ilen != UNDEFINED && ilen > f->end - i - 8) {
        return fail(r, TSR_ECORRUPT, err,
                    "item %d of sequence (%04X,%04X) at offset %zu runs past the end of %s "
                    "(length %u, %zu bytes left)",
                    f->items, TAG_ARGS(f->tag), i, f->limit, ilen, f->end - i - 8);
    }
    frame *it = &r->frames[++r->top];
    *it = (frame){.kind = F_DATASET,
                  .explicit_vr = f->explicit_vr,
                  .big_endian = f->big_endian,
                  .undefined = ilen == UNDEFINED,
                  .tag = f->tag,
                  .end = ilen == UNDEFINED ? f->end : i + 8 + ilen,
                  .position = i,
                  .limit = ilen == UNDEFINED ? f->limit : "its item",
                  .items = f->items++};
    r->pos = i + 8;
    e->tag = f->tag;
    e->length = ilen;
    e->offset = i + 8;
    e->position = i;
    e->depth = r->depth;
    e->item = it->items;
    *ev = RND_DS_ITEM;
    return TSR_OK;
}

static int
next_in_dataset(rnd_ds_reader *r, frame *f, rnd_ds_event *ev, rnd_ds_elem *e, tsr_err *err)
{
    size_t i = r->pos;
    if (i >= f->end) {
        if (r->top == 0) {
            *ev = RND_DS_END;
            e->offset = i;
            return TSR_OK;
        }
        if (!f->undefined) {
            return close_frame(r, i, ev, e);
        }
        return fail(r, TSR_ECORRUPT, err,
                    "item %d of sequence (%04X,%04X) at offset %zu runs past the end of %s (no "
                    "Item Delimitation Item)",
                    f->items, TAG_ARGS(f->tag), f->position, f->limit);
    }
    size_t left = f->end - i;
    if (left < 8) {
        if (left < 4) {
            return fail(r, TSR_ECORRUPT, err,
                        "the element header at offset %zu runs past the end of %s (%zu bytes "
                        "left)",
                        i, f->limit, left);
        }
        return fail(r, TSR_ECORRUPT, err,
                    "the header of element (%04X,%04X) at offset %zu runs past the end of %s (%zu "
                    "bytes left)",
                    TAG_ARGS(read_tag(r->buf + i, f->big_endian)), i, f->limit, left);
    }
    const uint8_t *p = r->buf + i;
    uint32_t tag = read_tag(p, f->big_endian), len;
    if (tag >> 16 == 0xfffe) {
        if (tag == TAG_ITEM_END && r->top > 0 && f->undefined) {
            if (rnd_ds_u32(p + 4, f->big_endian) != 0) {
                return fail(r, TSR_ECORRUPT, err,
                            "the Item Delimitation Item at offset %zu has length %u, not 0", i,
                            rnd_ds_u32(p + 4, f->big_endian));
            }
            return close_frame(r, i + 8, ev, e);
        }
        return fail(r, TSR_ECORRUPT, err, "unexpected (%04X,%04X) at offset %zu in %s",
                    TAG_ARGS(tag), i, r->top ? "an item" : "the dataset");
    }
    size_t hdr = 8;
    e->explicit_vr = f->explicit_vr;
    if (f->explicit_vr) {
        const uint8_t *vr = p + 4;
        if (!is_upper(vr[0]) || !is_upper(vr[1])) {
            return fail(r, TSR_ECORRUPT, err,
                        "element (%04X,%04X) at offset %zu has an invalid VR (0x%02X 0x%02X)",
                        TAG_ARGS(tag), i, vr[0], vr[1]);
        }
        if (vr_in(vr, k_long_vrs)) {
            if (left < 12) {
                return fail(r, TSR_ECORRUPT, err,
                            "the header of element (%04X,%04X) at offset %zu runs past the end "
                            "of %s (%zu bytes left)",
                            TAG_ARGS(tag), i, f->limit, left);
            }
            len = rnd_ds_u32(p + 8, f->big_endian);
            hdr = 12;
        } else {
            len = rnd_ds_u16(p + 6, f->big_endian);
        }
        if (vr_in(vr, k_long_vrs) || vr_in(vr, k_short_vrs)) {
            e->vr[0] = (char)vr[0];
            e->vr[1] = (char)vr[1];
            e->vr[2] = '\0';
        } else {
            memcpy(e->vr, "UN", 3); /* an unknown code: read with the short header (PS3.5
                                     * 7.1.2 reserves the long one for the listed VRs) */
        }
    } else {
        len = rnd_ds_u32(p + 4, 0);
        implicit_vr(r, tag, e->vr);
    }
    size_t value = i + hdr;
    e->tag = tag;
    e->length = len;
    e->offset = value;
    e->position = i;
    e->depth = r->depth;
    e->big_endian = f->big_endian;
    int is_sq = e->vr[0] == 'S' && e->vr[1] == 'Q';
    int is_un = e->vr[0] == 'U' && e->vr[1] == 'N';
    if (len == UNDEFINED) {
        int ob_ow = e->vr[0] == 'O' && (e->vr[1] == 'B' || e->vr[1] == 'W');
        if (tag == TAG_PIXEL_DATA && f->explicit_vr && !ob_ow) {
            /* PS3.5 A.4: encapsulated Pixel Data is OB (OW in old files); GDCM asserts on any
             * other VR here */
            return fail(r, TSR_ECORRUPT, err,
                        "Pixel Data at offset %zu has an undefined length with VR %s (only OB "
                        "or OW may be encapsulated)",
                        i, e->vr);
        }
        if (tag == TAG_PIXEL_DATA || (f->explicit_vr && ob_ow)) {
            int rc = skip_fragments(r, f, tag, i, value, err);
            *ev = RND_DS_FRAGMENTS;
            return rc;
        }
        if (is_sq || is_un || !f->explicit_vr) {
            /* PS3.5 6.2.2: a UN value of undefined length is a sequence in implicit VR LE. */
            int inner_explicit = is_sq ? f->explicit_vr : 0;
            int inner_be = is_sq ? f->big_endian : 0;
            return open_sequence(r, f, tag, i, value, len, inner_explicit, inner_be, ev, e, err);
        }
        return fail(r, TSR_ECORRUPT, err,
                    "element (%04X,%04X) at offset %zu has an undefined length, which VR %s does "
                    "not allow",
                    TAG_ARGS(tag), i, e->vr);
    }
    if (len > f->end - value) {
        return fail(r, TSR_ECORRUPT, err,
                    "element (%04X,%04X) at offset %zu runs past the end of %s (length %u, %zu "
                    "bytes left)",
                    TAG_ARGS(tag), i, f->limit, len, f->end - value);
    }
    if (is_sq) {
        return open_sequence(r, f, tag, i, value, len, f->explicit_vr, f->big_endian, ev, e, err);
    }
    if (tag == 0x00280103u && r->top == 0 && len >= 2) {
        r->pixel_rep = rnd_ds_u16(r->buf + value, f->big_endian);
    }
    r->pos = value + len;
    *ev = RND_DS_ELEMENT;
    return TSR_OK;
}

int
rnd_ds_next(rnd_ds_reader *r, rnd_ds_event *ev, rnd_ds_elem *e, tsr_err *err)
{
    if (r->status != TSR_OK) {
        return tsr_err_set(err, r->status, "%s", r->msg);
    }
    memset(e, 0, sizeof *e);
    frame *f = &r->frames[r->top];
    if (f->kind == F_SEQUENCE) {
        return next_in_sequence(r, f, ev, e, err);
    }
    return next_in_dataset(r, f, ev, e, err);
}

int
rnd_ds_skip(rnd_ds_reader *r, tsr_err *err)
{
    int target = r->top;
    rnd_ds_event ev;
    rnd_ds_elem e;
    while (r->top >= target) {
        int rc = rnd_ds_next(r, &ev, &e, err);
        if (rc != TSR_OK) {
            return rc;
        }
        if (ev == RND_DS_END) {
            break;
        }
    }
    return TSR_OK;
}
