/* SPDX-License-Identifier: MIT */
/* rnd.h: the Tessera render core. Decodes DICOM pixel data, applies the DICOM display pipeline
 * (PS3.3 C.11, PS3.4 N.2), resamples and encodes. Knows nothing of HTTP.
 *
 * The flow for one displayed frame:
 *
 *     rnd_dicom_open()            parse the file once; attributes in rnd_info
 *     rnd_dicom_decode_frame()    one frame to native stored values (rnd_frame)
 *     rnd_render_frame()          modality LUT, VOI, presentation LUT, colour -> 8-bit rnd_image
 *     rnd_resample()              aspect correction, viewport crop/scale/flip -> rnd_image
 *     rnd_encode()                JPEG or PNG bytes
 *
 * Conventions: functions return TSR_OK or a negative TSR_E* code and fill the optional tsr_err.
 * Out-parameters are written only on success. Memory handed out is freed only by this module's
 * own functions (rnd_frame_free, rnd_image_free, rnd_buf_free). */
#ifndef RND_H
#define RND_H

#include "tsr_base.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- limits */

/* Checked before any allocation that depends on the input. */
typedef struct rnd_limits {
    uint64_t max_pixels; /* rows * columns of one frame */
    uint32_t max_frames; /* NumberOfFrames */
    uint64_t max_bytes;  /* bytes of one decoded frame, and of one input file */
} rnd_limits;

/* Fills `l` with the defaults: 2^28 pixels, 100000 frames, 2 GiB. */
void rnd_limits_default(rnd_limits *l);

/* ---------------------------------------------------------------- attributes */

typedef enum rnd_photometric {
    RND_PI_UNKNOWN = 0,
    RND_PI_MONOCHROME1,
    RND_PI_MONOCHROME2,
    RND_PI_PALETTE_COLOR,
    RND_PI_RGB,
    RND_PI_YBR_FULL,
    RND_PI_YBR_FULL_422,
    RND_PI_YBR_PARTIAL_422,
    RND_PI_YBR_PARTIAL_420,
    RND_PI_YBR_ICT,
    RND_PI_YBR_RCT,
} rnd_photometric;

/* Parses a PhotometricInterpretation value (trailing spaces allowed). */
rnd_photometric rnd_photometric_parse(const char *s);
const char *rnd_photometric_name(rnd_photometric pi);

typedef enum rnd_voi_fn {
    RND_VOI_LINEAR = 0, /* PS3.3 C.11.2.1.2.1 */
    RND_VOI_LINEAR_EXACT,    /* C.11.2.1.3.2 */
    RND_VOI_SIGMOID,         /* C.11.2.1.3.1 */
} rnd_voi_fn;

/* Parses "LINEAR", "LINEAR_EXACT", "SIGMOID" (any case, trailing spaces allowed; also the CLI
 * spellings "linear-exact"). Returns 0 and writes *out, or -1. */
int rnd_voi_fn_parse(const char *s, rnd_voi_fn *out);
const char *rnd_voi_fn_name(rnd_voi_fn fn);

/* A DICOM lookup table (Modality LUT, VOI LUT, or one palette channel), descriptor already
 * interpreted: `n_entries` is 1..65536 (a descriptor value of 0 means 65536), `first` is the
 * first input value mapped (signed where the context says so), `bits` is the number of bits of
 * each entry (8..16) after the documented quirk fixes. `data` has n_entries values. */
typedef struct rnd_lut {
    uint32_t n_entries;
    int32_t first;
    uint8_t bits;
    uint16_t *data; /* NULL when the LUT is absent */
} rnd_lut;

typedef struct rnd_window {
    double center;
    double width;
    rnd_voi_fn fn;
} rnd_window;

#define RND_MAX_WINDOWS  8
#define RND_MAX_VOI_LUTS 4

/* Per-frame values from Enhanced multi-frame functional groups (per-frame item, falling back to
 * the shared item). Only the fields with has_* set were present. */
typedef struct rnd_frame_meta {
    int has_rescale;
    double slope, intercept;
    int has_window;
    rnd_window window;
    int has_position;
    double position[3]; /* ImagePositionPatient */
    int has_orientation;
    double orientation[6]; /* ImageOrientationPatient (PlaneOrientationSequence) */
} rnd_frame_meta;

/* Everything the pipeline needs, parsed once at open. Read-only for callers; owned by the
 * rnd_dicom handle and valid until rnd_dicom_close. */
typedef struct rnd_info {
    char transfer_syntax[65];
    char sop_class_uid[65];
    char sop_instance_uid[65];
    char modality[17];

    uint32_t rows, columns, frames; /* frames >= 1 */
    uint16_t samples_per_pixel;
    uint16_t bits_allocated, bits_stored, high_bit;
    uint8_t pixel_representation; /* 1 = two's complement */
    uint8_t planar_configuration;
    uint8_t float_pixels; /* 32: Float Pixel Data, 64: Double Float Pixel Data, 0: integer */
    rnd_photometric photometric;

    /* Modality LUT stage (C.11.1): a LUT when present, else rescale (identity if absent). */
    double rescale_slope, rescale_intercept;
    int has_rescale;
    rnd_lut modality_lut;

    /* VOI stage (C.11.2) in file order. */
    int n_windows;
    rnd_window windows[RND_MAX_WINDOWS];
    int n_voi_luts;
    rnd_lut voi_luts[RND_MAX_VOI_LUTS];

    int presentation_inverse; /* Presentation LUT Shape INVERSE */

    rnd_lut palette[3]; /* red, green, blue; segmented LUTs already expanded */

    /* Geometry. pixel_spacing is (row spacing, column spacing) = (vertical, horizontal) mm. */
    int has_pixel_spacing;
    double pixel_spacing[2];
    int has_aspect;
    uint32_t aspect[2]; /* PixelAspectRatio: vertical, horizontal */
    int has_position, has_orientation;
    double position[3], orientation[6];

    rnd_frame_meta *frame_meta; /* `frames` entries, or NULL when no functional groups */
} rnd_info;

/* ---------------------------------------------------------------- decode */

typedef struct rnd_dicom rnd_dicom;

/* Parses a DICOM file (Part 10, or a bare dataset that GDCM accepts). Pixel data is not decoded.
 * On success *out receives a handle the caller owns (free with rnd_dicom_close). `lim` may be
 * NULL for the defaults. Thread-safe (handles are independent). */
int rnd_dicom_open(const char *path, const rnd_limits *lim, rnd_dicom **out, tsr_err *err);

/* The same from memory. `buf` is borrowed for the duration of the call only. */
int rnd_dicom_open_mem(const void *buf, size_t len, const rnd_limits *lim, rnd_dicom **out,
                       tsr_err *err);

/* Frees the handle. NULL is a no-op. */
void rnd_dicom_close(rnd_dicom *d);

/* The parsed attributes, borrowed: valid until rnd_dicom_close. */
const rnd_info *rnd_dicom_info(const rnd_dicom *d);

typedef enum rnd_type {
    RND_T_U8 = 0,
    RND_T_S8,
    RND_T_U16,
    RND_T_S16,
    RND_T_U32,
    RND_T_S32,
    RND_T_F32,
} rnd_type;

size_t rnd_type_size(rnd_type t);

/* One decoded frame: native stored values, interleaved (sample-by-pixel) whatever the planar
 * configuration of the file. Integer values are already masked to BitsStored and sign-extended
 * when `is_signed`. Colour data converted by a codec (JPEG YCbCr, JPEG 2000 MCT) carries the
 * photometric interpretation of what is in `data` (e.g. RND_PI_RGB), not the file's. YBR_*_422
 * data is expanded to one Y/Cb/Cr triplet per pixel. */
typedef struct rnd_frame {
    uint32_t width, height;
    uint16_t samples; /* 1 or 3 */
    rnd_type type;
    uint16_t bits_stored;
    uint8_t is_signed;
    rnd_photometric photometric;
    void *data;
    size_t bytes;
    /* The smallest and largest sample of a one-sample integer frame, when has_range is set
     * (rnd_dicom_decode_frame sets it). rnd_render_frame then skips its own pass over the
     * pixels, which is a third of a window change on a frame that has left the CPU caches.
     * Whoever changes `data` afterwards must clear has_range. */
    int has_range;
    int64_t range_lo, range_hi;
} rnd_frame;

/* Decodes frame `index` (0-based) into a new frame the caller owns (free with rnd_frame_free).
 * Decodes only that frame where the transfer syntax allows it. Thread-safe: several threads may
 * decode frames of the same handle at once. */
int rnd_dicom_decode_frame(rnd_dicom *d, uint32_t index, rnd_frame **out, tsr_err *err);

/* rnd_dicom_decode_frame at a lower resolution where the codec gives one without decoding the
 * rest: a JPEG 2000 frame is decoded with r <= `reduce` wavelet resolution levels discarded
 * (OpenJPEG's reduce factor; r is at most the codestream's decomposition levels), so the frame
 * is ceil(columns / 2^r) x ceil(rows / 2^r), each pixel the codec's low-pass of a 2^r x 2^r
 * block. Other transfer syntaxes decode at full size (r = 0). r goes to *applied (may be NULL).
 * For zoomed-out tile levels and thumbnails. Thread-safe as rnd_dicom_decode_frame. */
int rnd_dicom_decode_frame_reduced(rnd_dicom *d, uint32_t index, int reduce, rnd_frame **out,
                                   int *applied, tsr_err *err);

/* Allocates a frame with zeroed data of the given geometry (limits are the caller's job). */
int rnd_frame_alloc(uint32_t width, uint32_t height, uint16_t samples, rnd_type type,
                    rnd_frame **out, tsr_err *err);
void rnd_frame_free(rnd_frame *f); /* NULL: no-op */

/* Computes and records the sample range of a one-sample integer frame (has_range, range_lo,
 * range_hi); other frames are left as they are. Not thread-safe on the same frame: call it
 * before the frame is shared. */
void rnd_frame_set_range(rnd_frame *f);

/* ---------------------------------------------------------------- 8-bit images */

/* An 8-bit display image, rows `stride` bytes apart, 1 (grey) or 3 (RGB) channels. */
typedef struct rnd_image {
    uint32_t width, height;
    uint8_t channels;
    size_t stride;
    uint8_t *data;
} rnd_image;

/* Allocates img->data (width*channels stride). On failure `img` is left zeroed. */
int rnd_image_alloc(rnd_image *img, uint32_t width, uint32_t height, uint8_t channels,
                    tsr_err *err);
void rnd_image_free(rnd_image *img); /* frees data and zeroes the struct; NULL: no-op */

/* ---------------------------------------------------------------- display pipeline */

typedef enum rnd_voi_mode {
    RND_VOI_MODE_DEFAULT = 0, /* first window, else first VOI LUT, else min-max */
    RND_VOI_MODE_WINDOW,      /* center/width/fn given by the caller */
    RND_VOI_MODE_FILE_WINDOW, /* the file's window number `index` (0-based) */
    RND_VOI_MODE_FILE_LUT,    /* the file's VOI LUT number `index` (0-based) */
    RND_VOI_MODE_MINMAX,      /* min-max of the frame after the modality LUT */
} rnd_voi_mode;

typedef struct rnd_voi_req {
    rnd_voi_mode mode;
    double center, width;
    rnd_voi_fn fn;
    int index;
} rnd_voi_req;

/* What the pipeline actually applied, for headers and overlays. */
typedef struct rnd_voi_used {
    rnd_voi_mode mode; /* never DEFAULT: what DEFAULT resolved to */
    double center, width;
    rnd_voi_fn fn;
    int index;
} rnd_voi_used;

/* Turns decoded frame `f` (frame number `index`, 0-based, of `info`) into an 8-bit image:
 * grayscale through modality LUT, VOI and presentation LUT (MONOCHROME1 and INVERSE shown
 * inverted); colour to RGB. `voi` may be NULL (default). `used` may be NULL. `out` must be
 * zeroed or freed; on success it owns new data. Thread-safe. */
int rnd_render_frame(const rnd_info *info, uint32_t index, const rnd_frame *f,
                     const rnd_voi_req *voi, rnd_image *out, rnd_voi_used *used, tsr_err *err);

/* ---------------------------------------------------------------- geometry */

/* DICOMweb viewport (PS3.18 8.3.5.1.3): scale the source region (sx, sy, sw, sh) to fit within
 * vw x vh keeping its aspect ratio. Negative sw/sh flip horizontally/vertically; the region is
 * then [sx + sw, sx) (resp. rows). has_region = 0 means the whole image.
 * sw_to_edge (sh_to_edge) set means sw (sh) was elided: the region runs from sx (sy) to the
 * right (bottom) edge of the image, i.e. sw = columns - sx, resolved by rnd_resample against
 * the image it is given, and the sw (sh) field is ignored. Zero-initialised structs keep the
 * explicit meaning. */
typedef struct rnd_viewport {
    uint32_t vw, vh;
    int has_region;
    double sx, sy, sw, sh;
    int sw_to_edge, sh_to_edge;
} rnd_viewport;

/* Parses "vw,vh" or "vw,vh,sx,sy,sw,sh" where the last four may be elided (left empty):
 * "vw,vh,,,sw,sh", "vw,vh,sx,sy,,", "vw,vh,,,,". Elided sx and sy are 0 (they are elided
 * together or not at all: "vw,vh,5,,sw,sh" is refused); an elided sw or sh sets sw_to_edge or
 * sh_to_edge. Returns TSR_OK, or TSR_EINVAL with a message and *vp untouched. */
int rnd_viewport_parse(const char *s, rnd_viewport *vp, tsr_err *err);

/* The display aspect of a pixel (height / width) from PixelSpacing or PixelAspectRatio; 1.0 when
 * neither says otherwise. */
double rnd_pixel_aspect(const rnd_info *info);

/* Resamples `src` into a new image `out`: first to square pixels using `pixel_aspect` (height /
 * width of one source pixel, see rnd_pixel_aspect), then through the viewport `vp` (NULL: none).
 * Downscaling averages areas; upscaling is bilinear; nothing is nearest-neighbour. `out` must be
 * zeroed or freed. Thread-safe. */
int rnd_resample(const rnd_image *src, double pixel_aspect, const rnd_viewport *vp,
                 rnd_image *out, tsr_err *err);

/* ---------------------------------------------------------------- encode */

typedef enum rnd_format { RND_FMT_JPEG = 0, RND_FMT_PNG } rnd_format;

typedef struct rnd_buf {
    uint8_t *data;
    size_t len;
} rnd_buf;

/* Encodes `img` as JPEG (quality 1..100; grey stays one component) or PNG (fast settings).
 * On success `out` owns new bytes (free with rnd_buf_free). Thread-safe. */
int rnd_encode(const rnd_image *img, rnd_format fmt, int quality, rnd_buf *out, tsr_err *err);
void rnd_buf_free(rnd_buf *b); /* NULL: no-op */

/* ---------------------------------------------------------------- dictionary */

/* Looks `tag` ((group << 16) | element) up in the DICOM data dictionary (GDCM's public dictionary,
 * PS3.6). On success writes its VR into `vr` (two letters and a NUL) and a static keyword
 * ("PatientName"; "" for a few retired attributes that have none) into *keyword; either may be
 * NULL. Where the dictionary allows several VRs, gives the one implicit VR data holds: OW for
 * "OB or OW", "US or OW" and "US or SS or OW", US for "US or SS" (rnd_ds_next picks SS from
 * PixelRepresentation). Repeating groups 50xx/60xx resolve to their 5000/6000 entries; group
 * lengths (gggg,0000) are UL. Returns 0, or -1 for private tags (odd groups), item tags
 * (FFFE,xxxx) and unknown tags. Thread-safe; the first call builds the tables (a few ms). */
int rnd_dict_lookup(uint32_t tag, char vr[3], const char **keyword);

/* The tag of a dictionary keyword ("PatientName" -> 0x00100010; repeating-group attributes give
 * group 5000/6000). Case-sensitive. Returns 0 and writes *tag, or -1 when the keyword is unknown.
 * Thread-safe. */
int rnd_dict_find_keyword(const char *keyword, uint32_t *tag);

/* ---------------------------------------------------------------- dataset reader
 * Our own structural reader of a DICOM dataset in memory (GDCM is not involved): the Part 10
 * header, then the dataset as a stream of events (element, sequence, item, their ends, and
 * encapsulated pixel data as one event). Every header and length is checked against the buffer
 * and against the enclosing item or sequence before anything is read, so hostile input can
 * only produce an error. The render pre-check and the store's DICOM JSON both walk files with
 * it. Values are not copied: events give offsets into the caller's buffer. */

typedef enum rnd_ds_encoding {
    RND_DS_EXPLICIT_LE = 0,
    RND_DS_IMPLICIT_LE,
    RND_DS_EXPLICIT_BE,
} rnd_ds_encoding;

/* The dataset encoding of a Transfer Syntax UID: implicit VR little endian for
 * 1.2.840.10008.1.2, explicit VR big endian for 1.2.840.10008.1.2.2, explicit VR little endian
 * for everything else (the native syntax, encapsulated ones, the deflated one once inflated). */
rnd_ds_encoding rnd_ds_encoding_of(const char *transfer_syntax);

typedef struct rnd_ds_meta {
    char transfer_syntax[65]; /* trailing NUL/space padding removed; "" when absent */
    size_t dataset_offset;    /* offset of the dataset's first byte, after the meta group */
} rnd_ds_meta;

/* Reads the Part 10 header of `buf` (borrowed for the call): the 128-byte preamble, "DICM" and
 * the file meta group (every group 0002 element, explicit VR little endian). Returns TSR_OK and
 * fills *meta; TSR_ENOTFOUND when `buf` has no "DICM" prefix (*meta untouched, err unset); or
 * TSR_ECORRUPT when an element of the meta group (or the group length it declares) runs past
 * the end of the data, or the Transfer Syntax UID is longer than 64 characters. Thread-safe. */
int rnd_ds_read_meta(const uint8_t *buf, size_t len, rnd_ds_meta *meta, tsr_err *err);

typedef enum rnd_ds_event {
    RND_DS_END = 0,      /* the dataset ended; later calls return it again */
    RND_DS_ELEMENT,      /* an element whose value is buf[offset, offset + length) */
    RND_DS_SEQUENCE,     /* a sequence opens: its items follow, then RND_DS_SEQUENCE_END */
    RND_DS_ITEM,         /* an item opens: its elements follow, then RND_DS_ITEM_END */
    RND_DS_ITEM_END,     /* the item closes */
    RND_DS_SEQUENCE_END, /* the sequence closes */
    RND_DS_FRAGMENTS,    /* encapsulated pixel data: its items were checked and skipped */
} rnd_ds_event;

/* What an event is about. */
typedef struct rnd_ds_elem {
    uint32_t tag;    /* the element; the sequence for ITEM, ITEM_END, SEQUENCE_END */
    char vr[3];      /* from the file in explicit VR ("UN" for a code no VR has); from the
                      * dictionary in implicit VR (SS for "US or SS" when PixelRepresentation is
                      * 1, LO for private creators, UN when unknown); "SQ" for every sequence,
                      * also UN or implicit elements of undefined length read as one */
    uint32_t length; /* value length as encoded, 0xFFFFFFFF for undefined */
    size_t offset;   /* ELEMENT: the value; SEQUENCE, ITEM: their first item or element;
                      * FRAGMENTS: the first item (the Basic Offset Table); ends: their end */
    size_t position; /* offset of the element's or item's header (for messages) */
    int depth;       /* number of enclosing sequences (0: top level); a sequence's own items are
                      * at its depth + 1 */
    int item;        /* ITEM, ITEM_END: 0-based number of the item in its sequence */
    int big_endian;  /* ELEMENT: the value's binary numbers are big endian */
    int explicit_vr; /* vr was read from the file */
} rnd_ds_elem;

typedef struct rnd_ds_reader rnd_ds_reader;

/* Creates a reader of the dataset that starts at buf[start] and ends at buf[len], encoded as
 * `enc`. `buf` is borrowed and must outlive the reader. Sequences may nest `max_depth` deep
 * (1..256). On success *out receives a reader the caller owns (free with rnd_ds_reader_free).
 * Returns TSR_OK, TSR_EINVAL (bad arguments) or TSR_ENOMEM. One reader is used by one thread;
 * several readers may share a buffer. */
int rnd_ds_reader_new(const uint8_t *buf, size_t len, size_t start, rnd_ds_encoding enc,
                      int max_depth, rnd_ds_reader **out, tsr_err *err);
void rnd_ds_reader_free(rnd_ds_reader *r); /* NULL: no-op */

/* Reads the next event into *ev and *e. Returns TSR_OK; TSR_ECORRUPT when the data is malformed
 * (the message names the tag and offset, e.g. "element (0028,0010) at offset 1234 runs past
 * the end of the data (length 4294967294, 200 bytes left)"); TSR_ELIMIT when sequences nest
 * deeper than max_depth. After an error every call returns that error again. */
int rnd_ds_next(rnd_ds_reader *r, rnd_ds_event *ev, rnd_ds_elem *e, tsr_err *err);

/* Skips the rest of the innermost open sequence or item (call it after RND_DS_SEQUENCE or
 * RND_DS_ITEM): the next event is the one after its end. The skipped part is still checked.
 * Returns as rnd_ds_next. */
int rnd_ds_skip(rnd_ds_reader *r, tsr_err *err);

/* Byte order helpers for values read from events. */
static inline uint16_t
rnd_ds_u16(const uint8_t *p, int big_endian)
{
    return big_endian ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t
rnd_ds_u32(const uint8_t *p, int big_endian)
{
    return big_endian ? (uint32_t)rnd_ds_u16(p, 1) << 16 | rnd_ds_u16(p + 2, 1)
                      : (uint32_t)rnd_ds_u16(p + 2, 0) << 16 | rnd_ds_u16(p, 0);
}

/* ---------------------------------------------------------------- annotation
 * Burned-in text for DICOMweb rendered resources (PS3.18 8.3.5.1.4, annotation=patient,
 * technique). White text with a 1-pixel black outline, so it reads on any grey level, drawn with
 * a built-in bitmap font of the printable ASCII characters (0x20..0x7E) in a 6 x 10 pixel cell;
 * any other code point of the UTF-8 input is drawn as '?'. */

typedef enum rnd_corner {
    RND_CORNER_TOP_LEFT = 0, /* by convention: patient */
    RND_CORNER_TOP_RIGHT,    /* study, series */
    RND_CORNER_BOTTOM_LEFT,  /* technique: "W 400 L 40", "Frame 3/30" */
    RND_CORNER_BOTTOM_RIGHT, /* spare */
    RND_CORNER_COUNT
} rnd_corner;

#define RND_ANNOTATION_LINES 8 /* lines per corner */

/* What to draw: n[c] lines in corner c, lines[c][0] nearest the top. A zeroed struct draws
 * nothing. Lines are borrowed UTF-8 strings (NULL: an empty line, which still takes its place);
 * nothing is copied or allocated, so there is no free function. */
typedef struct rnd_annotation {
    const char *lines[RND_CORNER_COUNT][RND_ANNOTATION_LINES];
    int n[RND_CORNER_COUNT];
} rnd_annotation;

/* Cell size of one character at scale 1 (5 x 9 glyph plus one column and one row of spacing). */
#define RND_FONT_W 6
#define RND_FONT_H 10

/* The integer scale rnd_annotate uses for a width x height image: max(1, min(w, h) / 512), so
 * glyphs are 6x10 pixels up to 1023 pixels and 24x40 at 2048. */
int rnd_annotate_scale(uint32_t width, uint32_t height);

/* The glyph of code point `cp` at scale 1: row y (0..RND_FONT_H-1) in rows[y], pixel x
 * (0..RND_FONT_W-1) in bit (RND_FONT_W - 1 - x). Returns 1 when `cp` has its own glyph, 0 when
 * it is drawn as '?' (and rows holds '?'). Thread-safe. */
int rnd_font_glyph(uint32_t cp, uint8_t rows[RND_FONT_H]);

/* Draws `a` into `img` (1 or 3 channels) in place, at rnd_annotate_scale: left corners
 * left-aligned, right corners right-aligned, top corners from the top down, bottom corners
 * ending at the bottom, a few pixels from each edge. A line is truncated to the characters that
 * fit across the image (no wrapping); whatever still falls outside the image is clipped, and
 * nothing is written outside the image's rows and columns (stride padding included). `a` NULL
 * draws nothing. Returns TSR_OK, or TSR_EINVAL (image invalid, a count outside
 * 0..RND_ANNOTATION_LINES) with the image untouched. Thread-safe on distinct images. */
int rnd_annotate(rnd_image *img, const rnd_annotation *a, tsr_err *err);

/* ---------------------------------------------------------------- tiles
 * A frame is shown as a pyramid of levels. Level 0 is the display image: the rendered frame with
 * square pixels, W0 x H0 as rnd_square_size gives it (what rnd_resample produces without a
 * viewport). Level k is ceil(W0 / 2^k) x ceil(H0 / 2^k); its pixel (i, j) covers the level-0
 * pixels [i * 2^k, (i + 1) * 2^k) x [j * 2^k, (j + 1) * 2^k), clipped to the image, so the last
 * column and row of a level average a partial block (the geometry IIIF clients such as
 * OpenSeadragon assume). The pyramid ends at the first level that fits in one tile. Levels are
 * cut into tile x tile tiles at (col, row) from the top left; edge tiles are clipped, never
 * padded. A tile is computed with the weights of its pixels' positions in the whole level, so
 * it is bit-for-bit the matching crop of the level image: tiles never show seams.
 *
 * Coordinates of tile rectangles are level-k pixels; rnd_tile_rect times 2^k gives level-0
 * pixels (clipped to W0 x H0). All functions here are thread-safe. */

#define RND_TILE_DEFAULT 256
#define RND_TILE_MIN     16
#define RND_TILE_MAX     4096
#define RND_LEVEL_MAX    31 /* levels are 0..RND_LEVEL_MAX; 2^31 exceeds any side */

/* Largest side of an image made by the exact-size entry points below. */
#define RND_RESAMPLE_MAX_SIDE 65536u

/* The square-pixel size of a width x height source whose pixels are `pixel_aspect` (height /
 * width, see rnd_pixel_aspect): the short side of a pixel is stretched, never the long one
 * shrunk, exactly as rnd_resample does. Returns TSR_OK and writes *w0, *h0; TSR_EINVAL for a
 * zero side or an aspect that is not a positive finite number; TSR_ELIMIT when a side would
 * exceed 1e9. */
int rnd_square_size(uint32_t width, uint32_t height, double pixel_aspect, uint32_t *w0,
                    uint32_t *h0);

/* rnd_square_size of a file's frames: columns x rows at rnd_pixel_aspect(info). Returns as
 * rnd_square_size (TSR_EINVAL also for info NULL). */
int rnd_display_size(const rnd_info *info, uint32_t *w0, uint32_t *h0);

/* Number of levels of a w0 x h0 pyramid cut in tile x tile tiles: 1 + the first level k at
 * which ceil(w0 / 2^k) and ceil(h0 / 2^k) are both <= tile (1 when the image fits in one tile).
 * Returns TSR_EINVAL (negative) when w0 or h0 is 0 or tile is outside
 * RND_TILE_MIN..RND_TILE_MAX. */
int rnd_level_count(uint32_t w0, uint32_t h0, uint32_t tile);

/* The size of level `level` (0..RND_LEVEL_MAX) of a w0 x h0 pyramid: ceil(w0 / 2^level) x
 * ceil(h0 / 2^level); a level past RND_LEVEL_MAX gives its size too (1 x 1 for any w0, h0). */
void rnd_level_size(uint32_t w0, uint32_t h0, int level, uint32_t *w, uint32_t *h);

/* The number of tile columns and rows of level `level`. Returns TSR_OK; TSR_EINVAL for a zero
 * size, a tile outside RND_TILE_MIN..RND_TILE_MAX or a negative level; TSR_ENOTFOUND for a
 * level >= rnd_level_count. Outputs are written only on success. */
int rnd_tile_grid(uint32_t w0, uint32_t h0, uint32_t tile, int level, uint32_t *cols,
                  uint32_t *rows);

/* The rectangle of tile (col, row) of level `level` in that level's pixels: x = col * tile,
 * y = row * tile, w and h clipped to the level. Returns as rnd_tile_grid, and TSR_ENOTFOUND for
 * a column or row past the grid. Outputs are written only on success. */
int rnd_tile_rect(uint32_t w0, uint32_t h0, uint32_t tile, int level, uint32_t col, uint32_t row,
                  uint32_t *x, uint32_t *y, uint32_t *w, uint32_t *h);

/* Resamples `src` shown with square pixels (its display image, W0 x H0) onto a grid of output
 * pixels `scale` display pixels wide: output pixel (i, j) covers display pixels
 * [(x0 + i) * scale, (x0 + i + 1) * scale) x [(y0 + j) * scale, ...), clipped to the image.
 * The output is exactly out_w x out_h (1..RND_RESAMPLE_MAX_SIDE); every output pixel must start
 * inside the image. Area averaging where the grid is coarser than the source, bilinear where
 * finer, as rnd_resample. The building block of rnd_render_level and rnd_render_tile. `out`
 * must be zeroed or freed; on success it owns new data. Returns TSR_OK, TSR_EINVAL (bad image,
 * aspect or scale, a grid leaving the image), TSR_ELIMIT or TSR_ENOMEM. Thread-safe. */
int rnd_resample_grid(const rnd_image *src, double pixel_aspect, double scale, uint32_t x0,
                      uint32_t y0, uint32_t out_w, uint32_t out_h, rnd_image *out, tsr_err *err);

/* A rectangle in display (square-pixel) coordinates; may be fractional. */
typedef struct rnd_region {
    double x, y, w, h;
} rnd_region;

/* Resamples the region `region` of `src`'s display image (NULL: all of it; clipped to the
 * image, an error only when nothing is left) to exactly out_w x out_h
 * (1..RND_RESAMPLE_MAX_SIDE), distorting when the aspect ratios differ (IIIF `w,h`), mirrored
 * left to right when `mirror` is set. Where rnd_resample with a viewport of the same region
 * gives an image of the same size, the two are identical. `out` must be zeroed or freed; on
 * success it owns new data. Returns TSR_OK, TSR_EINVAL, TSR_ELIMIT or TSR_ENOMEM. Thread-safe. */
int rnd_resample_region(const rnd_image *src, double pixel_aspect, const rnd_region *region,
                        uint32_t out_w, uint32_t out_h, int mirror, rnd_image *out, tsr_err *err);

/* Renders level `level` (0..RND_LEVEL_MAX) of the pyramid of `frame`, an 8-bit rendered frame
 * (rnd_render_frame's output) whose pixels are `pixel_aspect`: aspect correction and
 * downscaling in one pass, at exactly rnd_level_size(W0, H0, level). Level 0 equals
 * rnd_resample(frame, pixel_aspect, NULL). `out` must be zeroed or freed; on success it owns
 * new data. Returns TSR_OK, TSR_EINVAL, TSR_ELIMIT (level 0 sides above
 * RND_RESAMPLE_MAX_SIDE) or TSR_ENOMEM. Thread-safe. */
int rnd_render_level(const rnd_image *frame, double pixel_aspect, int level, rnd_image *out,
                     tsr_err *err);

/* Renders tile (col, row) of level `level` (pyramid cut in tile x tile tiles) of `frame` as
 * rnd_render_level would, reading only the source pixels under the tile: the result is
 * bit-for-bit the rnd_tile_rect crop of rnd_render_level's image. Returns as rnd_render_level,
 * and TSR_ENOTFOUND for a level, column or row outside the pyramid. Thread-safe. */
int rnd_render_tile(const rnd_image *frame, double pixel_aspect, uint32_t tile, int level,
                    uint32_t col, uint32_t row, rnd_image *out, tsr_err *err);

/* Copies the w x h rectangle at (x, y) of `src` into a new image `out` (zeroed or freed; on
 * success it owns new data). Returns TSR_OK; TSR_EINVAL when the rectangle is empty or not
 * inside `src`, or `src` is invalid; TSR_ENOMEM. Thread-safe. */
int rnd_image_crop(const rnd_image *src, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
                   rnd_image *out, tsr_err *err);

/* A one-channel copy of `src` (an RGB image becomes its Rec. 601 luma, rounded; a grey image
 * is copied), for IIIF quality `gray`. `out` as rnd_image_crop. Returns TSR_OK, TSR_EINVAL or
 * TSR_ENOMEM. Thread-safe. */
int rnd_image_gray(const rnd_image *src, rnd_image *out, tsr_err *err);

/* Mirrors `img` left to right in place (IIIF rotation `!0`). NULL or an empty image: no-op. */
void rnd_image_mirror(rnd_image *img);

/* ---------------------------------------------------------------- volumes and reformats
 * Multiplanar reformats (MPR) of a series. Coordinates are DICOM patient coordinates (LPS, mm).
 * The slices of a series are planes sharing their row and column direction cosines r and c
 * (ImageOrientationPatient) with arbitrary origins (ImagePositionPatient): with gantry tilt the
 * origins do not lie along the normal n = r x c (a sheared stack), and steps along n may differ.
 * Nothing here assumes a regular grid: every slice keeps its own origin and a point is placed
 * between the two slices that bracket it along n.
 *
 *     rnd_volume_plan()        slice geometries -> rnd_vol_geom (sorted, checked; no pixels)
 *     rnd_volume_new()         an empty volume of that geometry
 *     rnd_volume_set_slice()   fill each slice from its decoded frame (modality values)
 *     rnd_plane_standard()     an axial, coronal or sagittal plane (or rnd_plane_oblique, ...)
 *     rnd_mpr_render()         sample the plane (thin, or a MIP/MinIP/average slab)
 *
 * An enhanced multi-frame object is one rnd_vol_slice per frame: position from
 * rnd_info.frame_meta[f].position, orientation and spacing from rnd_info (the frame's rescale
 * from frame_meta when present), orientation from frame_meta[f].orientation when the frame has
 * its own (an enhanced object may hold stacks of several orientations: the planner keeps the
 * largest consistent one). */

/* One slice as the planner sees it. pixel_spacing is (row spacing, column spacing) =
 * (vertical, horizontal) mm as rnd_info; orientation is ImageOrientationPatient (row cosines,
 * then column cosines); position is ImagePositionPatient (centre of the first pixel). `id` is
 * the caller's own (e.g. an index into its instance list) and is handed back in sorted order. */
typedef struct rnd_vol_slice {
    uint32_t rows, columns;
    double pixel_spacing[2];
    double orientation[6];
    double position[3];
    uint32_t id;
} rnd_vol_slice;

/* The checked geometry of a stack of slices, sorted along the normal. Immutable once made, so
 * it may be read from several threads at once. */
typedef struct rnd_vol_geom rnd_vol_geom;

/* Plans a volume from `n` slices (`s` is borrowed for the call):
 *   - Slices with unusable geometry are left out: a zero size, a pixel spacing that is missing
 *     (zero), negative or not finite, cosines that are not unit vectors (|norm - 1| > 1e-3) or
 *     not orthogonal (|r.c| > 1e-3), a position that is not finite.
 *   - The others are grouped by equal rows and columns, pixel spacing equal within 1e-3
 *     (relative) and cosines equal within 1e-4; the largest group is kept (on a tie, the one
 *     whose first slice comes first in `s`). Localizers and other stacks are left out.
 *   - The kept slices are sorted by d = position . n, with r and c orthonormalised (c made
 *     orthogonal to r, both unit) and n = r x c. Slices less than 1e-3 mm apart along n are
 *     duplicates: the one that comes first in `s` is kept, the others are left out and counted
 *     (a caller that would rather refuse such series checks rnd_vol_summary.duplicates).
 * On success *out receives a geometry the caller owns (free with rnd_vol_geom_free). Returns
 * TSR_OK; TSR_EINVAL with a message saying why when fewer than 2 distinct slices remain (none
 * usable: the first slice's problem is named), or `s` is NULL with n > 0; TSR_ENOMEM.
 * Thread-safe. */
int rnd_volume_plan(const rnd_vol_slice *s, size_t n, rnd_vol_geom **out, tsr_err *err);
void rnd_vol_geom_free(rnd_vol_geom *g); /* NULL: no-op */

/* What the planner found. Directions are the orthonormalised ones used for sampling. */
typedef struct rnd_vol_summary {
    uint32_t rows, columns;
    size_t slices;           /* kept, sorted slices (>= 2) */
    double pixel_spacing[2]; /* (row spacing, column spacing) mm, of the first kept slice */
    double row_dir[3];       /* r: direction of increasing column index */
    double col_dir[3];       /* c: direction of increasing row index */
    double normal[3];        /* n = r x c: direction of increasing slice index */
    double min_gap, max_gap; /* smallest and largest step along n between neighbours, mm */
    int uniform;             /* every step within 1% of the mean, and not sheared */
    int sheared;             /* some origin lies off the line through the first along n by
                              * more than 1% of the smaller pixel spacing */
    double tilt_deg;         /* angle between n and the line from the first origin to the
                              * last (the gantry tilt of a sheared CT stack); 0 when straight */
    double extent_min[3];    /* bounding box (LPS) of the footprints of all slices, pixels */
    double extent_max[3];    /* counted half a pixel beyond their centres */
    size_t dropped;          /* slices left out: unusable, or not in the kept group */
    size_t duplicates;       /* slices left out as duplicate positions */
} rnd_vol_summary;

/* Fills *out. Thread-safe. */
void rnd_vol_geom_summary(const rnd_vol_geom *g, rnd_vol_summary *out);

/* Slice k (0-based, in sorted order): the caller's id, its origin (ImagePositionPatient) and its
 * position d along the normal (mm); any of them may be NULL. Returns TSR_OK, or TSR_ENOTFOUND
 * when k >= the number of slices (outputs untouched). Thread-safe. */
int rnd_vol_geom_slice(const rnd_vol_geom *g, size_t k, uint32_t *id, double origin[3], double *d);

/* A volume: the voxels of a planned geometry, in modality values (after rescale), stored as
 * int16 or float. Filled slice by slice, then read-only. */
typedef struct rnd_volume rnd_volume;

/* rnd_volume_new's voxel memory bound when the caller passes 0 (1 GiB). */
#define RND_VOLUME_MAX_BYTES_DEFAULT ((uint64_t)1 << 30)

/* Whether every value of a file whose attributes are `info`, rescaled by `slope` and
 * `intercept`, is an integer in int16 range, i.e. whether its slices may go into a volume made
 * with float_values = 0: integer pixels, integer slope and intercept, and the whole stored range
 * (BitsStored, PixelRepresentation) maps inside [-32768, 32767]. Returns 1 or 0. Pure. */
int rnd_volume_fits_int16(const rnd_info *info, double slope, double intercept);

/* Creates an empty volume of geometry `g` (borrowed for the call: the volume keeps its own
 * copy). Voxels are float when `float_values` is set, else int16 (half the memory; every slice
 * must then hold integers in int16 range, see rnd_volume_fits_int16). `max_bytes` (0: the
 * default, RND_VOLUME_MAX_BYTES_DEFAULT) bounds the voxel memory, checked before allocating.
 * On success *out receives a volume the caller owns (free with rnd_volume_free). Returns TSR_OK,
 * TSR_EINVAL (g NULL), TSR_ELIMIT (over max_bytes) or TSR_ENOMEM. Thread-safe. */
int rnd_volume_new(const rnd_vol_geom *g, int float_values, uint64_t max_bytes, rnd_volume **out,
                   tsr_err *err);

/* Fills sorted slice k from decoded frame `f` (borrowed; any integer type or F32, one sample,
 * width x height = the geometry's columns x rows): value = stored * slope + intercept. Returns
 * TSR_OK; TSR_ENOTFOUND for k out of range; TSR_EINVAL for a frame of the wrong size, colour
 * (samples != 1), a non-finite value or slope/intercept, or (int16 volumes) a value that is not
 * an integer in int16 range — the message names the pixel; on failure the slice counts as not
 * filled. Thread safety: different slices of one volume may be filled from different threads at
 * once; one slice from one thread at a time. Readers (rnd_mpr_*, rnd_volume_range) may start
 * once every slice is set and the filling threads are joined (or otherwise synchronised).
 * Only a linear rescale is applied: for a file with a Modality LUT Sequence, pass an F32 frame
 * of LUT outputs with slope 1, intercept 0 (into a float volume). */
int rnd_volume_set_slice(rnd_volume *v, size_t k, const rnd_frame *f, double slope,
                         double intercept, tsr_err *err);

/* 1 when every slice has been filled, else 0. */
int rnd_volume_complete(const rnd_volume *v);

/* The volume's geometry, borrowed: valid until rnd_volume_free. */
const rnd_vol_geom *rnd_volume_geom(const rnd_volume *v);

/* RND_T_S16 or RND_T_F32: how voxels are stored. */
rnd_type rnd_volume_type(const rnd_volume *v);

/* The voxels of sorted slice k, borrowed (valid until rnd_volume_free): rows x columns values
 * of rnd_volume_type, row by row. NULL when k is out of range. */
const void *rnd_volume_voxels(const rnd_volume *v, size_t k);

/* Smallest and largest voxel value. Returns TSR_OK, or TSR_EINVAL (outputs untouched) while the
 * volume is not complete. Thread-safe once complete. */
int rnd_volume_range(const rnd_volume *v, float *min, float *max);

/* Bytes held by the volume (voxels and geometry), for cache budgets. */
size_t rnd_volume_bytes(const rnd_volume *v);

void rnd_volume_free(rnd_volume *v); /* NULL: no-op */

/* An output plane. Output pixel (x, y) is centred on patient point
 * origin + x * spacing * row + y * spacing * col: `origin` is the centre of the top-left pixel,
 * `row` (unit) the direction of increasing x, `col` (unit, orthogonal to row) the direction of
 * increasing y. Pixels are square, `spacing` mm. The plane's normal is row x col. */
typedef struct rnd_plane {
    double origin[3];
    double row[3];
    double col[3];
    double spacing;
    uint32_t width, height;
} rnd_plane;

#define RND_MPR_MAX_SIDE 4096u /* largest plane width or height */

/* Writes the patient position of plane point (x, y) (pixel units, fractional allowed) into
 * out: origin + x * spacing * row + y * spacing * col. Pure. */
void rnd_plane_point(const rnd_plane *p, double x, double y, double out[3]);

typedef enum rnd_plane_axis {
    RND_AXIS_AXIAL = 0, /* row +x (patient left), col +y (posterior): seen from the feet */
    RND_AXIS_CORONAL,   /* row +x, col -z (head at the top): seen from the front */
    RND_AXIS_SAGITTAL,  /* row +y (anterior on the left), col -z: seen from the patient's left */
} rnd_plane_axis;

/* How the plane constructors size a plane. The plane passes through a point P (given, or the
 * middle of the volume's bounding box with the normal coordinate replaced). Every footprint
 * corner of every slice is projected onto the plane, and the plane is the smallest grid of
 * `spacing` pitch that covers those projections and has P exactly on a pixel centre. So its size
 * depends on its orientation and spacing only, not on where along its normal it lies: scrolling
 * keeps the image size and P's pixel. `spacing` <= 0 means the volume's smaller pixel spacing.
 * They return TSR_OK and write *out; TSR_EINVAL (with a message) for NULL or non-finite inputs
 * and degenerate directions; TSR_ENOTFOUND ("plane outside the volume") when the plane misses
 * the volume's footprint corners entirely; TSR_ELIMIT when a side would exceed
 * RND_MPR_MAX_SIDE (spacing too small). *out is written only on success. Thread-safe. */

/* A standard plane `axis` at `position_mm` along the axis normal to it: z for axial, y for
 * coronal, x for sagittal (patient mm, LPS). P is the middle of the bounding box with that
 * coordinate set to position_mm. */
int rnd_plane_standard(const rnd_vol_geom *g, rnd_plane_axis axis, double position_mm,
                       double spacing, rnd_plane *out, tsr_err *err);

/* An oblique plane through `point` spanned by `row` and `col`, which need not be unit vectors:
 * both must have a norm above 1e-6 and |cos(angle)| below 0.9999. row is normalised and col is
 * made orthogonal to it (Gram-Schmidt: col - (col . row) row, normalised), so row keeps its
 * direction exactly and col keeps its side of row. */
int rnd_plane_oblique(const rnd_vol_geom *g, const double point[3], const double row[3],
                      const double col[3], double spacing, rnd_plane *out, tsr_err *err);

/* The same from a normal and an "up" vector (the direction towards the top of the image):
 * col = -(up without its component along normal), normalised; row = col x normal, so that
 * row x col = normal. Axial is normal (0,0,1), up (0,-1,0). */
int rnd_plane_from_normal(const rnd_vol_geom *g, const double point[3], const double normal[3],
                          const double up[3], double spacing, rnd_plane *out, tsr_err *err);

typedef enum rnd_interp {
    RND_INTERP_LINEAR = 0, /* trilinear: bilinear in each bracketing slice, linear between */
    RND_INTERP_NEAREST,    /* the nearest pixel of the nearest slice (ties: lower index) */
} rnd_interp;

typedef enum rnd_slab_mode {
    RND_SLAB_MIP = 0, /* maximum intensity projection */
    RND_SLAB_MINIP,   /* minimum */
    RND_SLAB_AVERAGE, /* mean */
} rnd_slab_mode;

/* A thick slab centred on the plane. thickness_mm 0 is a thin plane. */
typedef struct rnd_slab {
    double thickness_mm;
    rnd_slab_mode mode;
} rnd_slab;

#define RND_SLAB_MAX_SAMPLES 1024 /* samples along the normal of one slab pixel */

/* Renders plane `p` of volume `v` (complete) into a new frame the caller owns (free with
 * rnd_frame_free): width x height, one sample, modality values, MONOCHROME2.
 *
 * Sampling a point P (thin plane): d = P . n places P between the sorted slices k, k+1 with
 * d_k <= d <= d_k+1 (any spacing). In slice k, P falls at column (P - origin_k) . r / column
 * spacing and row (P - origin_k) . c / row spacing (each slice's own origin, so sheared stacks
 * are exact); LINEAR interpolates bilinearly there and linearly in d between the two slices, so
 * a linear function of patient position is reproduced exactly. A point within 1e-4 mm of a
 * slice reads that slice alone, and within 1e-6 pixel of a pixel centre that pixel alone (so
 * planes through voxel centres return the voxels exactly despite rounding). Edges: a slice covers
 * its pixel centres plus half a pixel on every side (inside that margin the edge value is held);
 * along n the volume ends at the first and last slice (1e-4 mm tolerance). A point outside either,
 * or whose bracketing slice with a non-zero weight does not cover it, is padding: the volume's
 * minimum value (rnd_volume_range), never garbage.
 *
 * `slab` (NULL or thickness 0: thin) samples the plane's normal at N equally spaced offsets from
 * -t/2 to +t/2 inclusive: N = ceil(t / step) + 1 (at most RND_SLAB_MAX_SAMPLES) where step is
 * the volume's finest resolution, min(smaller pixel spacing, smallest slice gap); each offset is
 * sampled as a thin plane, and the pixel is the max (MIP), min (MINIP) or mean (AVERAGE) of the
 * samples inside the volume, padding when none is.
 *
 * Output type: RND_T_S16 when the volume is int16, `interp` is NEAREST and the slab is thin, MIP
 * or MINIP (the values are then voxel values); RND_T_F32 otherwise.
 *
 * Returns TSR_OK; TSR_EINVAL with a message for a NULL or incomplete volume, a plane that is
 * not finite, not orthonormal (1e-4), of zero size or spacing, a slab whose thickness is
 * negative, not finite or deeper than the volume along the plane normal ("slab too thick"), an
 * unknown mode or interp; TSR_ELIMIT for a side over RND_MPR_MAX_SIDE; TSR_ENOTFOUND ("plane
 * outside the volume") when the plane (or slab) does not meet the volume's footprint corners;
 * TSR_ENOMEM. Thread-safe: any number of renders may read one complete volume at once. */
int rnd_mpr_render(const rnd_volume *v, const rnd_plane *p, const rnd_slab *slab, rnd_interp interp,
                   rnd_frame **out, tsr_err *err);

/* The same for the w x h rectangle at (x, y) of the plane only (a tile or a band of rows, for
 * callers that split the work): the result is bit for bit that rectangle of rnd_mpr_render's
 * frame, whatever the rectangle. The rectangle must lie inside the plane (else TSR_EINVAL).
 * Returns as rnd_mpr_render. Thread-safe. */
int rnd_mpr_render_rect(const rnd_volume *v, const rnd_plane *p, const rnd_slab *slab,
                        rnd_interp interp, uint32_t x, uint32_t y, uint32_t w, uint32_t h,
                        rnd_frame **out, tsr_err *err);

/* The frame type rnd_mpr_render gives for these settings (see there). */
rnd_type rnd_mpr_output_type(const rnd_volume *v, const rnd_slab *slab, rnd_interp interp);

#ifdef __cplusplus
}
#endif

#endif
