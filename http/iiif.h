/* SPDX-License-Identifier: MIT */
/* iiif.h: IIIF Image API 3.0 requests (https://iiif.io/api/image/3.0/). Parses and validates the
 * path of an image or info.json request, resolves it against an image size into a source region
 * and an output size, recognises requests that are exactly one tile of the render pyramid
 * (rnd.h, section "tiles"), and writes info.json. Pure computation: no I/O, no global state;
 * every function is thread-safe.
 *
 *     iiif_req q;  iiif_plan p;
 *     if (iiif_parse(path_after_prefix, &q, &err) != TSR_OK) -> 400 (err.msg says why)
 *     q.kind == IIIF_REQ_BASE -> 303 to {id}/info.json; IIIF_REQ_INFO -> iiif_info_json
 *     look q.identifier up (404), rnd_display_size -> w0, h0
 *     if (iiif_resolve(&q, w0, h0, &limits, &p, &err) != TSR_OK) -> 400
 *     if (iiif_plan_tile(&p, w0, h0, tile, &level, &col, &row)) -> rnd_render_tile (cacheable)
 *     else rnd_resample_region(frame, aspect, &(rnd_region){p.x, p.y, p.w, p.h}, p.out_w,
 *                              p.out_h, p.mirror, ...)
 *     then rnd_image_gray when p.quality is IIIF_QUALITY_GRAY, rnd_encode(p.format)
 *
 * Compliance: level 1 (regionByPx, regionSquare, sizeByW, sizeByH, sizeByWh) plus regionByPct,
 * sizeByPct, sizeByConfinedWh, sizeUpscaling, mirroring; quality gray; formats jpg and png.
 * Rotation other than 0 (and !0) is refused, which keeps it short of level 2
 * (rotationBy90s). */
#ifndef TSR_IIIF_H
#define TSR_IIIF_H

#include "rnd.h"
#include "tsr_base.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Longest identifier, after percent-decoding, plus its NUL. */
#define IIIF_ID_MAX 512

typedef enum iiif_kind {
    IIIF_REQ_IMAGE = 0, /* {id}/{region}/{size}/{rotation}/{quality}.{format} */
    IIIF_REQ_INFO,      /* {id}/info.json */
    IIIF_REQ_BASE,      /* {id} alone: answer 303 See Other to {id}/info.json */
} iiif_kind;

typedef enum iiif_region_kind {
    IIIF_REGION_FULL = 0, /* full */
    IIIF_REGION_SQUARE,   /* square: the centred square of side min(W0, H0) */
    IIIF_REGION_PIXELS,   /* x,y,w,h: integers, w and h > 0 */
    IIIF_REGION_PCT,      /* pct:x,y,w,h: percentages of W0 / H0, w and h > 0 */
} iiif_region_kind;

typedef struct iiif_region {
    iiif_region_kind kind;
    double x, y, w, h; /* PIXELS (whole numbers) and PCT only */
} iiif_region;

typedef enum iiif_size_kind {
    IIIF_SIZE_MAX = 0,  /* max */
    IIIF_SIZE_W,        /* w, */
    IIIF_SIZE_H,        /* ,h */
    IIIF_SIZE_PCT,      /* pct:n */
    IIIF_SIZE_WH,       /* w,h (may distort) */
    IIIF_SIZE_CONFINED, /* !w,h (fit inside, keep the aspect ratio) */
} iiif_size_kind;

typedef struct iiif_size {
    iiif_size_kind kind;
    int upscale;   /* the request started with '^' */
    uint32_t w, h; /* W, WH, CONFINED: w; H, WH, CONFINED: h; >= 1 */
    double pct;    /* PCT: > 0, <= 100 unless upscale */
} iiif_size;

typedef enum iiif_quality { IIIF_QUALITY_DEFAULT = 0, IIIF_QUALITY_GRAY } iiif_quality;

/* A parsed request. For INFO and BASE only `kind` and `identifier` are meaningful. */
typedef struct iiif_req {
    iiif_kind kind;
    char identifier[IIIF_ID_MAX]; /* percent-decoded: non-empty UTF-8, no control characters */
    iiif_region region;
    iiif_size size;
    int mirror; /* rotation "!0": mirror left to right */
    iiif_quality quality;
    rnd_format format; /* jpg: RND_FMT_JPEG, png: RND_FMT_PNG */
} iiif_req;

/* Parses `path`, the raw (still percent-encoded) request path after the service prefix, with or
 * without one leading '/' and without query string. The last segment decides the form:
 * "info.json" gives IIIF_REQ_INFO, four parameter segments give IIIF_REQ_IMAGE, and a path
 * without any other '/' gives IIIF_REQ_BASE. The identifier is everything before the parameters
 * (it may contain raw '/', though the specification asks clients to send %2F); each segment is
 * percent-decoded separately, so pass the raw path: a decoded one would turn %2F into a
 * separator. Keywords are case-sensitive; numbers are plain decimals (digits, and for
 * percentages and rotation an optional fraction: no sign, exponent, spaces or trailing
 * characters). Returns TSR_OK and fills *out, or TSR_EINVAL with a message naming the faulty
 * parameter (safe to show: input is quoted with unprintable bytes replaced) and *out untouched.
 * Refused: malformed syntax of any part; rotation other than 0, 360 and their mirrored forms
 * ("rotation 90 not supported"); qualities other than default and gray; formats other than jpg
 * and png; "pct:n" above 100 without '^'; zero sizes; IIIF 2 forms such as size "full". */
int iiif_parse(const char *path, iiif_req *out, tsr_err *err);

/* Server limits on output sizes (advertised in info.json as maxWidth, maxHeight, maxArea).
 * 0 means none; as the specification says, max_height 0 with max_width set means max_width. */
typedef struct iiif_limits {
    uint32_t max_width, max_height;
    uint64_t max_area;
} iiif_limits;

/* The defaults: 16384 x 16384 and 2^28 pixels (the render core's frame limit). */
void iiif_limits_default(iiif_limits *l);

/* What to render for an image request. */
typedef struct iiif_plan {
    uint32_t x, y, w, h;   /* source region in level-0 (display) pixels, inside the image */
    uint32_t out_w, out_h; /* output size, >= 1 each, within the limits */
    int mirror;
    iiif_quality quality;
    rnd_format format;
} iiif_plan;

/* Resolves image request `r` (kind IIIF_REQ_IMAGE) against a w0 x h0 display image (level 0 of
 * the pyramid: rnd_display_size) under `lim` (NULL: iiif_limits_default). Regions are clipped
 * to the image; percentages become whole pixels by rounding each edge. Sizes: "max" is the
 * region scaled down to fit the limits; "^max" scaled up or down to the limits; "w,", ",h" keep
 * the region's aspect ratio, the other side rounded to the nearest pixel -- or, when the given
 * side is what a pyramid level makes of the region (ceil(side / 2^k)), that level's size of the
 * other side if within a pixel, so that tiles requested this way come out tile-sized; "!w,h" is
 * the largest size within w x h keeping the ratio; without '^' no size may exceed the region. A
 * side that would round to 0 is 1. Whatever the form, every side is kept within
 * RND_RESAMPLE_MAX_SIDE. Returns TSR_OK and fills *plan, or TSR_EINVAL with a message and *plan
 * untouched: a region outside the image or of zero area, a size larger than the region without
 * '^', a size beyond the limits, r not an image request. */
int iiif_resolve(const iiif_req *r, uint32_t w0, uint32_t h0, const iiif_limits *lim,
                 iiif_plan *plan, tsr_err *err);

/* Whether `p` asks for exactly one tile of the w0 x h0 pyramid cut in tile x tile tiles (as
 * OpenSeadragon and other IIIF viewers do): for some level k with scale s = 2^k, the region
 * starts at a multiple of tile * s, is tile * s wide and high clipped to the image, and the
 * output is ceil(region / s) -- the rnd_tile_rect of (k, col, row). Mirroring and quality are
 * not looked at: apply rnd_image_mirror / rnd_image_gray to the tile. Returns 1 and writes
 * *level, *col, *row (the lowest level when several match, which only happens for tiles of a
 * pixel or two); 0 when no tile matches or the arguments are invalid. */
int iiif_plan_tile(const iiif_plan *p, uint32_t w0, uint32_t h0, uint32_t tile, int *level,
                   uint32_t *col, uint32_t *row);

/* The canonical form of `p` relative to the identifier (IIIF 3.0 section 4.7):
 * "{full|x,y,w,h}/{max|w,h|^w,h}/{0|!0}/{default|gray}.{jpg|png}" ("^w,h" when the output is
 * larger than the region on either side), for a Link rel="canonical" header. Writes a
 * NUL-terminated string into buf (`size` bytes). Returns TSR_OK, or TSR_ELIMIT when it does not
 * fit (buf then holds an empty string if size > 0). */
int iiif_canonical(const iiif_plan *p, uint32_t w0, uint32_t h0, char *buf, size_t size);

/* The media type of a format: "image/jpeg" or "image/png". */
const char *iiif_format_mime(rnd_format f);

/* Writes the info.json of a w0 x h0 image served at `id_url` (the base URI, without a trailing
 * '/', valid UTF-8) into *out: IIIF 3 context, id, type ImageService3, protocol, profile level1,
 * width, height, tiles [{width, height: tile, scaleFactors 1, 2, ..., 2^(levels-1)}], sizes
 * (the whole image at each level, smallest first), extraFormats ["png"], extraQualities
 * ["gray"], extraFeatures (those beyond level 1, see above). `tile` is RND_TILE_MIN..
 * RND_TILE_MAX and `levels` 1..RND_LEVEL_MAX + 1 (normally rnd_level_count). On success *out
 * owns a new NUL-terminated string (free with iiif_free). Returns TSR_OK, TSR_EINVAL (bad
 * arguments, id_url not UTF-8) or TSR_ENOMEM; *out is written only on success. */
int iiif_info_json(const char *id_url, uint32_t w0, uint32_t h0, uint32_t tile, int levels,
                   char **out);

/* The same, advertising `lim` (NULL: none) as maxWidth, maxHeight and maxArea, and leaving out
 * of sizes those beyond it. */
int iiif_info_json_limits(const char *id_url, uint32_t w0, uint32_t h0, uint32_t tile, int levels,
                          const iiif_limits *lim, char **out);

/* Frees a string from iiif_info_json. NULL: no-op. */
void iiif_free(char *s);

#ifdef __cplusplus
}
#endif

#endif
